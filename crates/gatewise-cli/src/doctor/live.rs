//! `gatewise doctor discovery` and `gatewise doctor token`: the live doctor.
//! Reads flags, the environment (proxies, the client secret) and the clock,
//! hands the work to `gatewise-probe` (network) and `gatewise-core`
//! (findings), and renders. No protocol logic lives here.

use crate::input;
use crate::render::{self, Format};
use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use gatewise_probe::doctor::{self, Live, Progress, TokenEndpoint};
use gatewise_probe::oauth::{ClientAuth, Grant, TokenParams};
use gatewise_probe::tls::Trust;
use gatewise_probe::{Options, ProxySettings, Transcript};
use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Flags every live command shares.
#[derive(Debug, Args)]
pub(crate) struct NetArgs {
    /// Output format (json: the contract object plus a `transcript` member
    /// with every request and response, secrets masked; junit: one test
    /// case per finding, failures for errors, for CI pipelines).
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
    #[command(flatten)]
    conn: Conn,
}

/// How the live doctor connects, and what it keeps of the exchanges.
#[derive(Debug, Args)]
pub(crate) struct Conn {
    /// Write each exchange into DIR as a capture file that `gatewise doctor
    /// response` reads back (secrets masked unless --show-secrets).
    #[arg(long, value_name = "DIR")]
    save_capture: Option<PathBuf>,
    /// Show tokens, client secrets and Authorization values in the transcript
    /// and saved captures (findings always mask them).
    #[arg(long)]
    show_secrets: bool,
    /// Time limit per request in seconds: connect, TLS, response and body.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    timeout: f64,
    /// An extra CA certificate file (PEM) to trust besides the system's
    /// roots (a private CA, or a TLS-inspection proxy's root).
    #[arg(long, value_name = "FILE")]
    ca_file: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct DiscoveryArgs {
    /// The issuer, e.g. https://as.example.com or https://host/realms/x.
    issuer: String,
    #[command(flatten)]
    net: NetArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GrantArg {
    /// RFC 6749 §4.4: a service authenticates as itself.
    #[value(name = "client_credentials")]
    ClientCredentials,
    /// RFC 6749 §6: redeem a refresh token (--refresh-token-env or
    /// --refresh-token-file); rotation is reported.
    #[value(name = "refresh_token")]
    RefreshToken,
    /// RFC 6749 §4.1.3: redeem an authorization code (--code-env or
    /// --code-file, --redirect-uri, and --code-verifier-env for PKCE).
    #[value(name = "authorization_code")]
    AuthorizationCode,
    /// RFC 6749 §4.3 (removed in OAuth 2.1, forbidden by RFC 9700 §2.4;
    /// the doctor runs it and says so): --username and --password-env.
    Password,
    /// RFC 8628: the device flow (needs --issuer); the user code is shown
    /// on stderr, the token endpoint polled as `interval` and `slow_down` say.
    #[value(name = "device_code")]
    DeviceCode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AuthArg {
    /// HTTP Basic with the form-urlencoded id and secret (RFC 6749 §2.3.1).
    #[value(name = "client_secret_basic")]
    ClientSecretBasic,
    /// client_id and client_secret in the form body.
    #[value(name = "client_secret_post")]
    ClientSecretPost,
    /// A public client: client_id in the body, no secret.
    None,
    /// A JWT client assertion signed with the client's private key
    /// (RFC 7523 §2.2, OpenID Connect Core §9): --client-key-file.
    #[value(name = "private_key_jwt")]
    PrivateKeyJwt,
}

#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// The token endpoint.
    #[arg(
        long,
        value_name = "URL",
        required_unless_present = "issuer",
        conflicts_with = "issuer"
    )]
    token_url: Option<String>,
    /// The issuer: discover the token endpoint and the JWK Set (to verify a JWT access token).
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// The client id.
    #[arg(long, value_name = "ID")]
    client_id: String,
    /// Read the client secret from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with_all = ["client_secret_file", "client_secret"])]
    client_secret_env: Option<String>,
    /// Read the client secret from this file (one line).
    #[arg(long, value_name = "FILE", conflicts_with = "client_secret")]
    client_secret_file: Option<String>,
    /// The client secret itself (leaks into shell history and process lists:
    /// prefer --client-secret-env or --client-secret-file).
    #[arg(long, value_name = "SECRET")]
    client_secret: Option<String>,
    /// The grant to run.
    #[arg(long, value_enum, default_value = "client_credentials")]
    grant: GrantArg,
    /// refresh_token grant: read the refresh token from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with_all = ["refresh_token_file", "refresh_token"])]
    refresh_token_env: Option<String>,
    /// refresh_token grant: read the refresh token from this file.
    #[arg(long, value_name = "FILE", conflicts_with = "refresh_token")]
    refresh_token_file: Option<String>,
    /// refresh_token grant: the refresh token itself (leaks into shell
    /// history: prefer --refresh-token-env).
    #[arg(long, value_name = "TOKEN")]
    refresh_token: Option<String>,
    /// authorization_code grant: read the code from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with_all = ["code_file", "code"])]
    code_env: Option<String>,
    /// authorization_code grant: read the code from this file.
    #[arg(long, value_name = "FILE", conflicts_with = "code")]
    code_file: Option<String>,
    /// authorization_code grant: the code itself (leaks into shell history:
    /// prefer --code-env).
    #[arg(long, value_name = "CODE")]
    code: Option<String>,
    /// authorization_code grant: the redirect_uri of the authorization
    /// request, exactly as sent there (RFC 6749 §4.1.3).
    #[arg(long, value_name = "URI")]
    redirect_uri: Option<String>,
    /// authorization_code grant: read the PKCE code_verifier from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with_all = ["code_verifier_file", "code_verifier"])]
    code_verifier_env: Option<String>,
    /// authorization_code grant: read the PKCE code_verifier from this file.
    #[arg(long, value_name = "FILE", conflicts_with = "code_verifier")]
    code_verifier_file: Option<String>,
    /// authorization_code grant: the PKCE code_verifier itself (leaks into
    /// shell history: prefer --code-verifier-env).
    #[arg(long, value_name = "VERIFIER")]
    code_verifier: Option<String>,
    /// password grant: the resource owner's user name.
    #[arg(long, value_name = "NAME")]
    username: Option<String>,
    /// password grant: read the password from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with_all = ["password_file", "password"])]
    password_env: Option<String>,
    /// password grant: read the password from this file.
    #[arg(long, value_name = "FILE", conflicts_with = "password")]
    password_file: Option<String>,
    /// password grant: the password itself (leaks into shell history:
    /// prefer --password-env).
    #[arg(long, value_name = "PASSWORD")]
    password: Option<String>,
    /// The scope to request (space-delimited).
    #[arg(long)]
    scope: Option<String>,
    /// A resource indicator (RFC 8707); repeat for several.
    #[arg(long, value_name = "URI")]
    resource: Vec<String>,
    /// The `audience` parameter some servers want (Auth0, Okta).
    #[arg(long, value_name = "AUD")]
    audience: Option<String>,
    /// How the client authenticates. When discovery found the server's
    /// metadata, a method its token_endpoint_auth_methods_supported does not
    /// list is reported (CA-03, RFC 8414 §2).
    #[arg(long, value_enum, default_value = "client_secret_basic")]
    auth: AuthArg,
    /// --auth private_key_jwt: the client's private key, a PEM file (PKCS#8
    /// RSA, EC P-256/P-384 or Ed25519; also RSA PRIVATE KEY, EC PRIVATE KEY)
    /// or a private JWK (or a JWK Set holding it). A fresh assertion is
    /// signed for every request: iss = sub = the client id, aud = the token
    /// endpoint URL, a random jti, exp 60 s ahead (RFC 7523 §3).
    #[arg(long, value_name = "FILE")]
    client_key_file: Option<String>,
    /// --auth private_key_jwt: the kid to put in the assertion's header
    /// (default: the JWK's kid; none for a PEM key). Also picks the key
    /// out of a JWK Set.
    #[arg(long, value_name = "KID", requires = "client_key_file")]
    client_key_id: Option<String>,
    /// --auth private_key_jwt: the signing algorithm (default: the JWK's
    /// alg, else RS256 for RSA, ES256 for P-256, ES384 for P-384, EdDSA for
    /// Ed25519).
    #[arg(long, value_name = "ALG", requires = "client_key_file",
          value_parser = clap::builder::PossibleValuesParser::new(gatewise_probe::client_key::ALGORITHMS))]
    client_assertion_alg: Option<String>,
    /// Send the token request N times and group the distinct outcomes (one
    /// bad instance behind a load balancer shows as 1 of 4 failing). Codes
    /// and refresh tokens are single-use or rotated: repeat those grants
    /// only to see how the server treats reuse.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=100))]
    repeat: u16,
    /// Also send the token request through this gateway or reverse proxy
    /// (its base URL: scheme, host, port and an optional path prefix) and
    /// compare the two responses: status, the headers clients rely on, and
    /// the body's shape and members.
    #[arg(long, value_name = "URL", conflicts_with = "repeat")]
    via: Option<String>,
    /// authorization_code grant without --code: the sign-in runs in a
    /// browser and comes back to this port on 127.0.0.1 (0: any free port;
    /// loopback redirect URIs may use any port, RFC 8252 §7.3).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    redirect_port: u16,
    /// authorization_code grant without --code: the path of the loopback
    /// redirect URI, as registered for the client.
    #[arg(long, value_name = "PATH", default_value = "/callback")]
    redirect_path: String,
    /// authorization_code grant without --code: how long to wait for the
    /// browser, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    wait: u64,
    /// authorization_code grant without --code: print the sign-in URL but
    /// do not open a browser.
    #[arg(long)]
    no_browser: bool,
    #[command(flatten)]
    net: NetArgs,
}

/// True when the flags ask for the interactive authorization code grant:
/// no code given, so the doctor runs the sign-in itself.
fn interactive(a: &TokenArgs) -> bool {
    a.grant == GrantArg::AuthorizationCode
        && a.code.is_none()
        && a.code_env.is_none()
        && a.code_file.is_none()
}

/// The wall clock, for the core's time-dependent checks.
fn warn(msg: &str) {
    let _ = writeln!(std::io::stderr(), "gatewise: warning: {msg}");
}

fn options(net: &Conn) -> anyhow::Result<Options> {
    if !(net.timeout > 0.0 && net.timeout <= 3600.0) {
        bail!("--timeout must be between 0 and 3600 seconds");
    }
    let pem = match &net.ca_file {
        Some(path) => Some(input::read_capped(path, 1024 * 1024)?),
        None => None,
    };
    let trust = Trust::new(true, pem.as_deref())
        .with_context(|| format!("--ca-file {}", net.ca_file.as_deref().unwrap_or("")))?;
    let mut o = Options::new(trust);
    o.timeout = Duration::from_secs_f64(net.timeout);
    // curl's conventions: lower-case http_proxy wins for http (the upper-case
    // one can be injected by CGI), either case for the others.
    o.proxy = ProxySettings {
        https: input::env("HTTPS_PROXY").or_else(|| input::env("https_proxy")),
        http: input::env("http_proxy").or_else(|| input::env("HTTP_PROXY")),
        no_proxy: input::env("NO_PROXY").or_else(|| input::env("no_proxy")),
    };
    Ok(o)
}

/// A progress line per network step on stderr, with a spinner, only when
/// stderr is a terminal.
struct Spinner {
    current: Arc<Mutex<Option<String>>>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Spinner {
    fn start() -> Spinner {
        let current: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let ticker = std::io::stderr().is_terminal().then(|| {
            let current = Arc::clone(&current);
            tokio::spawn(async move {
                let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
                let mut i = 0usize;
                loop {
                    if let Some(step) = current.lock().ok().and_then(|g| g.clone()) {
                        let frame = frames.get(i % frames.len()).copied().unwrap_or('·');
                        let _ = write!(std::io::stderr(), "\r{frame} {step}\x1b[K");
                        i += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(80)).await;
                }
            })
        });
        Spinner { current, ticker }
    }

    fn stop(&self) {
        if let Some(t) = &self.ticker {
            t.abort();
        }
    }
}

impl Progress for Spinner {
    fn begin(&self, step: &str) {
        if let Ok(mut g) = self.current.lock() {
            *g = Some(step.to_string());
        }
    }

    fn end(&self, step: &str, outcome: &str) {
        if let Ok(mut g) = self.current.lock() {
            *g = None;
        }
        if self.ticker.is_some() {
            let _ = writeln!(std::io::stderr(), "\r✓ {step} → {outcome}\x1b[K");
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// `gatewise doctor discovery ISSUER`.
pub(crate) fn discovery(a: DiscoveryArgs) -> anyhow::Result<u8> {
    let opts = options(&a.net.conn)?;
    let live = runtime()?.block_on(async {
        let spinner = Spinner::start();
        let r = doctor::discovery(&a.issuer, &opts, &crate::clock::SystemClock, &spinner).await;
        spinner.stop();
        r
    })?;
    finish(&a.issuer, &live, a.net.format, &a.net.conn, Vec::new())
}

/// A secret from an environment variable, a file (first line's end
/// trimmed) or the command line (with a warning); `None` when none is given.
fn secret_input(
    flag: &str,
    env: Option<&str>,
    file: Option<&str>,
    value: Option<&str>,
) -> anyhow::Result<Option<String>> {
    if let Some(var) = env {
        match input::env(var) {
            Some(s) => Ok(Some(s)),
            None => bail!("environment variable {var} (--{flag}-env) is not set"),
        }
    } else if let Some(path) = file {
        let bytes = input::read_capped(path, 64 * 1024)?;
        let s = String::from_utf8(bytes).with_context(|| format!("{path} is not UTF-8"))?;
        Ok(Some(s.trim_end_matches(['\r', '\n']).to_string()))
    } else if let Some(s) = value {
        warn(&format!(
            "--{flag} puts the secret in shell history and process lists; prefer --{flag}-env VAR or --{flag}-file FILE"
        ));
        Ok(Some(s.to_string()))
    } else {
        Ok(None)
    }
}

/// The grant and its values from the flags; usage errors name the flag.
fn grant(a: &TokenArgs) -> anyhow::Result<Grant> {
    let refresh = secret_input(
        "refresh-token",
        a.refresh_token_env.as_deref(),
        a.refresh_token_file.as_deref(),
        a.refresh_token.as_deref(),
    )?;
    let code = secret_input(
        "code",
        a.code_env.as_deref(),
        a.code_file.as_deref(),
        a.code.as_deref(),
    )?;
    let verifier = secret_input(
        "code-verifier",
        a.code_verifier_env.as_deref(),
        a.code_verifier_file.as_deref(),
        a.code_verifier.as_deref(),
    )?;
    let password = secret_input(
        "password",
        a.password_env.as_deref(),
        a.password_file.as_deref(),
        a.password.as_deref(),
    )?;
    let misplaced = |given: bool, flag: &str, grant: &str| -> anyhow::Result<()> {
        if given {
            bail!("{flag} is for --grant {grant}");
        }
        Ok(())
    };
    if a.grant != GrantArg::RefreshToken {
        misplaced(refresh.is_some(), "--refresh-token", "refresh_token")?;
    }
    if a.grant != GrantArg::AuthorizationCode {
        misplaced(code.is_some(), "--code", "authorization_code")?;
        misplaced(verifier.is_some(), "--code-verifier", "authorization_code")?;
        misplaced(
            a.redirect_uri.is_some(),
            "--redirect-uri",
            "authorization_code",
        )?;
    }
    if a.grant != GrantArg::Password {
        misplaced(password.is_some(), "--password", "password")?;
        misplaced(a.username.is_some(), "--username", "password")?;
    }
    Ok(match a.grant {
        // Replaced by the device code the device authorization brings.
        GrantArg::DeviceCode => Grant::ClientCredentials,
        GrantArg::ClientCredentials => Grant::ClientCredentials,
        GrantArg::RefreshToken => Grant::RefreshToken {
            refresh_token: refresh.context(
                "--grant refresh_token needs the refresh token: --refresh-token-env VAR or --refresh-token-file FILE",
            )?,
        },
        GrantArg::AuthorizationCode => Grant::AuthorizationCode {
            code: code.context(
                "--grant authorization_code needs the code: --code-env VAR or --code-file FILE",
            )?,
            redirect_uri: a.redirect_uri.clone(),
            code_verifier: verifier,
        },
        GrantArg::Password => Grant::Password {
            username: a
                .username
                .clone()
                .context("--grant password needs --username NAME")?,
            password: password.context(
                "--grant password needs the password: --password-env VAR or --password-file FILE",
            )?,
        },
    })
}

/// `gatewise doctor token`.
pub(crate) fn token(a: TokenArgs) -> anyhow::Result<u8> {
    let secret = secret_input(
        "client-secret",
        a.client_secret_env.as_deref(),
        a.client_secret_file.as_deref(),
        a.client_secret.as_deref(),
    )?;
    let grant = if interactive(&a) {
        if a.code_verifier.is_some()
            || a.code_verifier_env.is_some()
            || a.code_verifier_file.is_some()
        {
            bail!(
                "--code-verifier is for a code you got yourself (--code-env/--code-file); the interactive sign-in makes its own"
            );
        }
        if a.redirect_uri.is_some() {
            bail!(
                "the interactive sign-in makes its own loopback redirect URI: use --redirect-port and --redirect-path instead of --redirect-uri"
            );
        }
        if a.issuer.is_none() {
            bail!(
                "the interactive sign-in needs --issuer URL (to find the authorization endpoint); or give the code with --code-env VAR"
            );
        }
        if a.via.is_some() || a.repeat > 1 {
            bail!("--via and --repeat need a code you got yourself: a code is single-use");
        }
        // Replaced by the code the sign-in brings back.
        Grant::ClientCredentials
    } else {
        grant(&a)?
    };
    let auth = match a.auth {
        AuthArg::ClientSecretBasic => ClientAuth::Basic,
        AuthArg::ClientSecretPost => ClientAuth::Post,
        AuthArg::None => ClientAuth::None,
        AuthArg::PrivateKeyJwt => {
            let Some(path) = &a.client_key_file else {
                bail!(
                    "--auth private_key_jwt needs the client's private key: --client-key-file FILE (PEM or JWK)"
                );
            };
            let bytes = input::read_capped(path, 1024 * 1024)
                .with_context(|| format!("--client-key-file {path}"))?;
            let key = gatewise_probe::client_key::ClientKey::parse(
                path,
                &bytes,
                a.client_key_id.as_deref(),
                a.client_assertion_alg.as_deref(),
            )
            .context("--client-key-file")?;
            ClientAuth::PrivateKeyJwt(std::sync::Arc::new(key))
        }
    };
    if a.client_key_file.is_some() && !matches!(auth, ClientAuth::PrivateKeyJwt(_)) {
        bail!(
            "--client-key-file is for --auth private_key_jwt (this run uses --auth {})",
            auth.name()
        );
    }
    match (&auth, &secret) {
        (ClientAuth::None, Some(_)) => warn("--auth none: the client secret is not sent"),
        (ClientAuth::PrivateKeyJwt(_), Some(_)) => {
            warn("--auth private_key_jwt: the client secret is not sent")
        }
        (ClientAuth::Basic | ClientAuth::Post, None) => bail!(
            "--auth {} needs the client secret: --client-secret-env VAR or --client-secret-file FILE",
            auth.name()
        ),
        _ => {}
    }
    let params = TokenParams {
        grant,
        client_id: a.client_id.clone(),
        client_secret: secret,
        auth,
        scope: a.scope.clone(),
        resources: a.resource.clone(),
        audience: a.audience.clone(),
    };
    let (endpoint, subject) = match (&a.token_url, &a.issuer) {
        (Some(u), _) => (
            TokenEndpoint::Url(
                url::Url::parse(u).with_context(|| format!("--token-url {u} is not a URL"))?,
            ),
            u.clone(),
        ),
        (None, Some(i)) => (TokenEndpoint::Issuer(i.clone()), i.clone()),
        (None, None) => bail!("give --token-url URL or --issuer URL"),
    };
    let via = match &a.via {
        Some(v) => {
            let u = url::Url::parse(v).with_context(|| format!("--via {v} is not a URL"))?;
            if !matches!(u.scheme(), "http" | "https") {
                bail!("--via {v}: give the gateway's http(s) base URL");
            }
            Some(u)
        }
        None => None,
    };
    let opts = options(&a.net.conn)?;
    if a.grant == GrantArg::DeviceCode {
        let Some(issuer) = a.issuer.clone() else {
            bail!(
                "--grant device_code needs --issuer URL (to find the device authorization endpoint)"
            );
        };
        if a.via.is_some() || a.repeat > 1 {
            bail!(
                "--via and --repeat do not apply to --grant device_code: a device code is single-use"
            );
        }
        let show = |p: &gatewise_probe::device::Prompt| {
            let mut text = format!(
                "To approve, open {uri} and enter the user code.\n\nUser code: {code}\nVerification URI: {uri}\n",
                uri = p.verification_uri,
                code = p.user_code
            );
            if let Some(c) = &p.verification_uri_complete {
                text.push_str(&format!("Complete URI: {c}\n"));
            }
            text.push_str(&format!(
                "\n(polling every {} s; the code expires in {} s)\n",
                p.interval, p.expires_in
            ));
            let _ = write!(std::io::stderr(), "{text}");
        };
        let live = runtime()?.block_on(async {
            let spinner = Spinner::start();
            let clock = crate::clock::SystemClock;
            let r = gatewise_probe::device::device_code(
                &issuer,
                &params,
                gatewise_probe::device::Pacing::default(),
                &opts,
                &clock,
                &spinner,
                &show,
            )
            .await;
            spinner.stop();
            r
        })?;
        return finish(&subject, &live, a.net.format, &a.net.conn, Vec::new());
    }
    if interactive(&a) {
        let loopback = gatewise_probe::interactive::Loopback {
            port: a.redirect_port,
            path: a.redirect_path.clone(),
            wait: std::time::Duration::from_secs(a.wait),
        };
        let no_browser = a.no_browser;
        let show = move |url: &url::Url| {
            let _ = writeln!(
                std::io::stderr(),
                "Sign in through this URL{}:\n\n  {url}\n",
                if no_browser {
                    ""
                } else {
                    " (opening it in your browser)"
                }
            );
            if !no_browser {
                crate::browser::open(url.as_str());
            }
        };
        let issuer = a.issuer.clone().unwrap_or_else(|| subject.clone());
        let live = runtime()?.block_on(async {
            let spinner = Spinner::start();
            let clock = crate::clock::SystemClock;
            let r = gatewise_probe::interactive::authorization_code(
                &issuer, &params, &loopback, &opts, &clock, &spinner, &show,
            )
            .await;
            spinner.stop();
            r
        })?;
        return finish(&subject, &live, a.net.format, &a.net.conn, Vec::new());
    }
    let live = runtime()?.block_on(async {
        let spinner = Spinner::start();
        let clock = crate::clock::SystemClock;
        let r = match &via {
            Some(via) => doctor::token_via(&endpoint, &params, via, &opts, &clock, &spinner).await,
            None => {
                doctor::token_repeated(
                    &endpoint,
                    &params,
                    usize::from(a.repeat),
                    &opts,
                    &clock,
                    &spinner,
                )
                .await
            }
        };
        spinner.stop();
        r
    })?;
    finish(&subject, &live, a.net.format, &a.net.conn, Vec::new())
}

fn shown(live: &Live, conn: &Conn) -> Vec<Transcript> {
    live.transcripts
        .iter()
        .map(|t| {
            if conn.show_secrets {
                t.clone()
            } else {
                t.masked()
            }
        })
        .collect()
}

/// Renders a live report: the exchanges, the findings, and `extra` JSON
/// members (besides `transcript`) for `--format json`.
fn finish(
    subject: &str,
    live: &Live,
    format: Format,
    conn: &Conn,
    extra: Vec<(&str, serde_json::Value)>,
) -> anyhow::Result<u8> {
    let report = live.report(subject);
    let transcripts = shown(live, conn);
    if let Some(dir) = &conn.save_capture {
        save(dir, &transcripts)?;
    }
    match format {
        Format::Json => {
            let mut members = extra;
            members.push(("transcript", serde_json::to_value(&transcripts)?));
            render::report_with(&report, Format::Json, members)?;
        }
        Format::Human => {
            exchanges_human(&transcripts)?;
            render::report(&report, Format::Human, None)?;
        }
        Format::Markdown => {
            render::report(&report, Format::Markdown, None)?;
            exchanges_markdown(&transcripts)?;
        }
        Format::Junit => {
            let mut text = String::new();
            for t in &transcripts {
                for (line, timing) in hop_lines(t) {
                    text.push_str(&format!("{}: {line} ({timing})\n", t.label));
                }
            }
            write!(
                anstream::stdout(),
                "{}",
                render::junit(&report, Some(&text))
            )?;
        }
    }
    Ok(report.verdict.exit_code())
}

fn slug(label: &str) -> String {
    let s: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    s.split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

fn save(dir: &PathBuf, transcripts: &[Transcript]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut names = Vec::new();
    for (i, t) in transcripts.iter().enumerate() {
        let path = dir.join(format!("{:02}-{}.http", i + 1, slug(&t.label)));
        std::fs::write(&path, t.capture_text())
            .with_context(|| format!("cannot write {}", path.display()))?;
        names.push(path.display().to_string());
    }
    let _ = writeln!(
        std::io::stderr(),
        "gatewise: saved {} capture{} ({}); read one back with `gatewise doctor response FILE`",
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        names.join(", ")
    );
    Ok(())
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_string(), |m| format!("{m:.1} ms"))
}

fn hop_lines(t: &Transcript) -> Vec<(String, String)> {
    t.hops
        .iter()
        .map(|h| {
            let outcome = match &h.response {
                Some(r) => format!("{} {}", r.status, r.reason),
                None => "no response".to_string(),
            };
            let tm = &h.timings;
            let mut timing = format!(
                "dns {} · connect {} · tls {} · first byte {} · total {}",
                ms(tm.dns_ms),
                ms(tm.connect_ms),
                ms(tm.tls_ms),
                ms(tm.first_byte_ms),
                ms(tm.total_ms)
            );
            if tm.tunnel_ms.is_some() {
                timing.push_str(&format!(" · proxy tunnel {}", ms(tm.tunnel_ms)));
            }
            (
                format!("{} {} → {outcome}", h.request.method, h.request.url),
                timing,
            )
        })
        .collect()
}

fn exchanges_human(transcripts: &[Transcript]) -> anyhow::Result<()> {
    let mut out = anstream::stdout().lock();
    let dim = anstyle::Style::new().dimmed();
    writeln!(out, "exchanges")?;
    for t in transcripts {
        let via = t
            .proxy
            .as_ref()
            .map(|p| format!(" (via {})", p.proxy))
            .unwrap_or_default();
        writeln!(out, "  {}{via}", t.label)?;
        for (line, timing) in hop_lines(t) {
            writeln!(out, "    {line}")?;
            writeln!(out, "      {dim}{timing}{dim:#}")?;
        }
    }
    writeln!(out)?;
    Ok(())
}

fn exchanges_markdown(transcripts: &[Transcript]) -> anyhow::Result<()> {
    let mut s = String::from(
        "\n#### Exchanges\n\n| exchange | request → response | timings |\n|---|---|---|\n",
    );
    for t in transcripts {
        for (line, timing) in hop_lines(t) {
            s.push_str(&format!(
                "| {} | `{}` | {} |\n",
                t.label,
                line.replace('|', "\\|"),
                timing
            ));
        }
    }
    write!(anstream::stdout(), "{s}")?;
    Ok(())
}

/// What `gatewise doctor jwt` checks when the keys come from the network.
pub(crate) struct JwtRun {
    /// The token.
    pub(crate) token: String,
    /// The report's subject (`token` or `-`).
    pub(crate) subject: String,
    /// What the core checks the token against (keys replaced by the fetched set).
    pub(crate) inspect: gatewise_core::jose::jwt::Options,
    /// Where the keys come from.
    pub(crate) source: doctor::KeySource,
    /// The issuer to discover the JWK Set from (`--discover`).
    pub(crate) discover: Option<String>,
    /// The decoded header and claims (secrets masked), for the output.
    pub(crate) decoded: Option<serde_json::Value>,
}

/// `gatewise doctor jwt` when the keys come from the network (`--jwks URL`,
/// or `--issuer URL --discover`).
pub(crate) fn jwt(run: JwtRun, format: Format, conn: &Conn) -> anyhow::Result<u8> {
    let opts = options(conn)?;
    let live = runtime()?.block_on(async {
        let spinner = Spinner::start();
        let r = doctor::jwt(
            &run.token,
            run.inspect,
            run.source,
            run.discover.as_deref(),
            &opts,
            &crate::clock::SystemClock,
            &spinner,
        )
        .await;
        spinner.stop();
        r
    })?;
    if format == Format::Human
        && let Some(d) = &run.decoded
    {
        writeln!(
            anstream::stdout(),
            "header: {}\nclaims: {}\n",
            d["header"],
            d["claims"]
        )?;
    }
    let extra = run
        .decoded
        .map(|d| vec![("decoded", d)])
        .unwrap_or_default();
    finish(&run.subject, &live, format, conn, extra)
}
