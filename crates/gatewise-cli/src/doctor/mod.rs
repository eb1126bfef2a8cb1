//! `gatewise doctor`: offline diagnosis of captured responses, tokens and
//! client error messages.

use crate::input;
use crate::render::{self, Format};
use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};
use gatewise_core::capture::{self, DEFAULT_MAX_INPUT};
use gatewise_core::diagnose::{self, Context, Expect};
use gatewise_core::jose::jwt::{self, Keys, Options, TokenKind};
use gatewise_core::{Report, catalogue, explain};
use std::io::Write as _;

mod live;

#[derive(Debug, Subcommand)]
pub(crate) enum Doctor {
    /// Judge a captured HTTP response (token, introspection, discovery, JWKS, revocation).
    ///
    /// FILE is raw HTTP text as `curl -si` prints it (an optional request, then
    /// the response), a HAR file, or a bare body. Use `-` for stdin.
    ///
    /// Example: curl -si -X POST https://as.example.com/token -d grant_type=client_credentials
    ///   -u "$ID:$SECRET" > capture.http && gatewise doctor response capture.http
    Response(ResponseArgs),
    /// Decode and judge a JWT without trusting it; verify it with --jwks or --secret-env.
    ///
    /// --jwks takes a file or a URL; --issuer with --discover finds the JWK
    /// Set through the issuer's metadata. When the token's kid is not in the
    /// set, the doctor fetches it once more and says whether the key was
    /// rotated (there now) or never published.
    ///
    /// Example: gatewise doctor jwt "$TOKEN" --jwks jwks.json --issuer https://as.example.com
    ///   --audience https://api.example.com
    ///
    /// Example: gatewise doctor jwt - --issuer https://as.example.com --discover < token.txt
    Jwt(Box<JwtArgs>),
    /// Lint an authorization request URL before a browser is sent to it.
    ///
    /// Checks response_type, client_id, PKCE (S256, not plain; with the
    /// verifier, that it matches the challenge), state, and the redirect_uri
    /// against each registered URI by exact string comparison: the first
    /// difference is shown character by character and named (scheme, host,
    /// port, path, trailing slash, case, percent-encoding), and a loopback
    /// IP URI may differ in the port (RFC 8252 §7.3). Nothing is sent.
    ///
    /// Example: gatewise doctor authorize-url
    ///   "https://as.example.com/authorize?response_type=code&client_id=web&redirect_uri=..."
    ///   --registered-redirect-uri https://app.example.com/callback
    AuthorizeUrl(AuthorizeUrlArgs),
    /// Explain what an OAuth client library printed: likely causes, ranked, and what to run next.
    ///
    /// Example: gatewise doctor explain "missing field `token_type` at line 1 column 44"
    Explain(ExplainArgs),
    /// List every rule and finding code the doctor knows.
    Rules(RulesArgs),
    /// Fetch an issuer's metadata (both well-known forms), its JWK Set, and judge them live.
    ///
    /// Example: gatewise doctor discovery https://as.example.com
    Discovery(live::DiscoveryArgs),
    /// Run a real token request and say where it breaks (transport, response, token).
    ///
    /// Grants: client_credentials (default), refresh_token (rotation is
    /// reported), authorization_code (interactive: without --code the doctor
    /// runs the sign-in in your browser with PKCE S256, state and nonce,
    /// receives the redirect on 127.0.0.1, checks state and the RFC 9207
    /// iss, then redeems the code; or a code you got yourself, with its
    /// redirect_uri and PKCE verifier) and password (flagged: RFC 9700
    /// §2.4). Secrets come from environment variables or files; a value on
    /// the command line works but leaks into shell history. JWT access tokens
    /// and ID tokens are verified against the JWK Set found with --issuer.
    ///
    /// Example: gatewise doctor token --issuer https://as.example.com --client-id svc
    ///   --client-secret-env CLIENT_SECRET --scope orders.read
    ///
    /// Example: gatewise doctor token --issuer https://as.example.com --client-id web
    ///   --client-secret-env CLIENT_SECRET --grant refresh_token --refresh-token-env RT
    ///
    /// Example (sign in through the browser): gatewise doctor token
    ///   --issuer https://as.example.com --client-id native-app --auth none
    ///   --grant authorization_code --scope "openid profile"
    ///
    /// Example: gatewise doctor token --issuer https://as.example.com --client-id web
    ///   --auth none --grant authorization_code --code-env CODE
    ///   --redirect-uri http://127.0.0.1:8000/callback --code-verifier-env VERIFIER
    Token(Box<live::TokenArgs>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ExpectArg {
    Token,
    Introspection,
    Discovery,
    Jwks,
    Revocation,
}

#[derive(Debug, Args)]
pub(crate) struct ResponseArgs {
    /// The capture file, or `-` for stdin.
    file: String,
    /// What the response should be; the default judges token success and error responses.
    #[arg(long, value_enum, default_value = "token")]
    expect: ExpectArg,
    /// The scope the client requested (when the request is not in the capture); `openid` makes id_token required.
    #[arg(long, value_name = "SCOPE")]
    request_scope: Option<String>,
    /// The issuer the client expects (for discovery documents).
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// Current time as Unix seconds (default: the clock).
    #[arg(long, value_name = "UNIX")]
    now: Option<u64>,
    /// Largest input accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_INPUT)]
    max_input: usize,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum KindArg {
    /// Decide from the token.
    Auto,
    /// An OAuth access token (RFC 9068 rules).
    Access,
    /// An OpenID Connect ID token.
    Id,
}

#[derive(Debug, Args)]
pub(crate) struct JwtArgs {
    /// The token, or `-` to read it from stdin (keeps it out of shell history).
    token: String,
    /// The JWK Set to verify the signature with: a file, or an http(s) URL
    /// to fetch. A URL is fetched once more when the token's kid is not in
    /// it, to tell a rotated key from one that was never there.
    #[arg(long, value_name = "FILE|URL")]
    jwks: Option<String>,
    /// Find the JWK Set through the --issuer's metadata (both well-known
    /// forms); with --jwks FILE, the discovered set is the fresh copy the
    /// file is compared with when the token's kid is missing from it.
    #[arg(long, requires = "issuer", conflicts_with_all = ["secret_env", "secret_file", "secret"])]
    discover: bool,
    /// Read the HMAC secret for HS* tokens from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with_all = ["secret_file", "secret"])]
    secret_env: Option<String>,
    /// Read the HMAC secret for HS* tokens from this file.
    #[arg(long, value_name = "FILE", conflicts_with = "secret")]
    secret_file: Option<String>,
    /// The HMAC secret itself (leaks into shell history: prefer --secret-env).
    #[arg(long, value_name = "SECRET")]
    secret: Option<String>,
    /// The expected issuer (exact match); with --discover, also where the
    /// metadata is fetched from.
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// An acceptable audience (repeat for any-of).
    #[arg(long, value_name = "AUD")]
    audience: Vec<String>,
    /// The client id (ID token audience and azp).
    #[arg(long, value_name = "ID")]
    client_id: Option<String>,
    /// The nonce sent in the authentication request.
    #[arg(long)]
    nonce: Option<String>,
    /// The access token issued with this ID token, to check at_hash.
    #[arg(long, value_name = "TOKEN")]
    access_token: Option<String>,
    /// What the token is supposed to be.
    #[arg(long, value_enum, default_value = "auto")]
    expect: KindArg,
    /// Current time as Unix seconds (default: the clock).
    #[arg(long, value_name = "UNIX")]
    now: Option<u64>,
    /// Leeway for exp, nbf and iat, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    leeway: u64,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
    /// Network options (used with --jwks URL or --discover).
    #[command(flatten)]
    conn: live::Conn,
}

#[derive(Debug, Args)]
pub(crate) struct AuthorizeUrlArgs {
    /// The authorization request URL (quote it: it contains '&'), or `-` to read it from stdin.
    url: String,
    /// A redirect URI registered for the client, exactly as registered (repeat for several).
    #[arg(long, value_name = "URI")]
    registered_redirect_uri: Vec<String>,
    /// Read the client's PKCE code_verifier from this environment variable,
    /// to check it against the code_challenge.
    #[arg(long, value_name = "VAR", conflicts_with = "code_verifier_file")]
    code_verifier_env: Option<String>,
    /// Read the client's PKCE code_verifier from this file.
    #[arg(long, value_name = "FILE")]
    code_verifier_file: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

#[derive(Debug, Args)]
pub(crate) struct ExplainArgs {
    /// The message the client printed (quote it), or `-` to read it from stdin.
    message: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

#[derive(Debug, Args)]
pub(crate) struct RulesArgs {
    /// Output format (markdown prints the catalogue as docs/findings.md has it).
    #[arg(long, value_enum, default_value = "markdown")]
    format: Format,
}

/// Runs a doctor subcommand; returns the exit code.
pub(crate) fn run(cmd: Doctor) -> anyhow::Result<u8> {
    match cmd {
        Doctor::Response(a) => response(a),
        Doctor::Jwt(a) => jwt_cmd(*a),
        Doctor::AuthorizeUrl(a) => authorize_url(a),
        Doctor::Explain(a) => explain_cmd(a),
        Doctor::Rules(a) => rules(a),
        Doctor::Discovery(a) => live::discovery(a),
        Doctor::Token(a) => live::token(*a),
    }
}

fn response(a: ResponseArgs) -> anyhow::Result<u8> {
    let bytes = input::read_capped(&a.file, a.max_input)?;
    let capture = capture::parse(&bytes);
    let expect = match a.expect {
        ExpectArg::Token => Expect::Token,
        ExpectArg::Introspection => Expect::Introspection,
        ExpectArg::Discovery => Expect::Discovery,
        ExpectArg::Jwks => Expect::Jwks,
        ExpectArg::Revocation => Expect::Revocation,
    };
    let ctx = Context {
        expect,
        request_scope: a.request_scope,
        issuer: a.issuer,
        now: Some(a.now.unwrap_or_else(crate::clock::now)),
    };
    let report = Report::new(a.file.clone(), diagnose::response(&capture, &ctx));
    render::report(&report, a.format, None)?;
    Ok(report.verdict.exit_code())
}

fn read_arg_or_stdin(v: &str, what: &str) -> anyhow::Result<String> {
    if v == "-" {
        let bytes = input::read_capped("-", 1024 * 1024)?;
        let s = String::from_utf8(bytes)
            .with_context(|| format!("the {what} on stdin is not UTF-8"))?;
        Ok(s.trim().to_string())
    } else {
        Ok(v.to_string())
    }
}

fn jwt_cmd(a: JwtArgs) -> anyhow::Result<u8> {
    let token = read_arg_or_stdin(&a.token, "token")?;
    let jwks_url = a
        .jwks
        .as_deref()
        .and_then(|j| url::Url::parse(j).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"));
    let keys = if jwks_url.is_some() {
        Keys::None
    } else if let Some(path) = &a.jwks {
        let bytes = input::read_capped(path, DEFAULT_MAX_INPUT)?;
        let bytes = bytes
            .strip_prefix(b"\xEF\xBB\xBF".as_slice())
            .unwrap_or(&bytes);
        let doc: serde_json::Value = serde_json::from_slice(bytes).with_context(|| {
            format!(
                "{path} is not JSON; judge it with `gatewise doctor response --expect jwks {path}`"
            )
        })?;
        Keys::Jwks(doc)
    } else if let Some(var) = &a.secret_env {
        match input::env(var) {
            Some(s) => Keys::Secret(s.into_bytes()),
            None => bail!("environment variable {var} is not set"),
        }
    } else if let Some(path) = &a.secret_file {
        let mut s = input::read_capped(path, 64 * 1024)?;
        while s.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            s.pop();
        }
        Keys::Secret(s)
    } else if let Some(s) = &a.secret {
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "gatewise: warning: --secret puts the secret in shell history and process lists; prefer --secret-env VAR or --secret-file FILE"
            );
        }
        Keys::Secret(s.clone().into_bytes())
    } else {
        Keys::None
    };
    let opts = Options {
        now: a.now.unwrap_or_else(crate::clock::now),
        leeway: a.leeway,
        issuer: a.issuer,
        audiences: a.audience,
        kind: match a.expect {
            KindArg::Auto => TokenKind::Auto,
            KindArg::Access => TokenKind::Access,
            KindArg::Id => TokenKind::Id,
        },
        nonce: a.nonce,
        access_token: a.access_token,
        client_id: a.client_id,
        keys,
    };
    let subject = if a.token == "-" {
        "-".to_string()
    } else {
        "token".to_string()
    };
    let decoded = jwt::decode(&token).ok().map(|j| {
        serde_json::json!({
            "header": serde_json::Value::Object(j.header),
            "claims": gatewise_core::secret::mask_json(&serde_json::Value::Object(j.claims)),
        })
    });
    if jwks_url.is_some() || a.discover {
        let source = match (jwks_url, &opts.keys) {
            (Some(u), _) => gatewise_probe::doctor::KeySource::Url(u),
            (None, Keys::Jwks(doc)) => gatewise_probe::doctor::KeySource::Document(
                a.jwks.clone().unwrap_or_default(),
                doc.clone(),
            ),
            (None, _) => gatewise_probe::doctor::KeySource::Discovered,
        };
        let discover = if a.discover {
            opts.issuer.clone()
        } else {
            None
        };
        let run = live::JwtRun {
            token,
            subject,
            inspect: opts,
            source,
            discover,
            decoded,
        };
        return live::jwt(run, a.format, &a.conn);
    }
    let report = Report::new(subject, jwt::inspect(&token, &opts));
    if a.format == Format::Human
        && let Some(d) = &decoded
    {
        writeln!(
            anstream::stdout(),
            "header: {}\nclaims: {}\n",
            d["header"],
            d["claims"]
        )?;
    }
    render::report(&report, a.format, decoded.map(|d| ("decoded", d)))?;
    Ok(report.verdict.exit_code())
}

fn authorize_url(a: AuthorizeUrlArgs) -> anyhow::Result<u8> {
    let url = read_arg_or_stdin(&a.url, "URL")?;
    let verifier = if let Some(var) = &a.code_verifier_env {
        match input::env(var) {
            Some(v) => Some(v),
            None => bail!("environment variable {var} (--code-verifier-env) is not set"),
        }
    } else if let Some(path) = &a.code_verifier_file {
        let bytes = input::read_capped(path, 64 * 1024)?;
        let s = String::from_utf8(bytes).with_context(|| format!("{path} is not UTF-8"))?;
        Some(s.trim().to_string())
    } else {
        None
    };
    let findings = diagnose::authorize::lint(&url, &a.registered_redirect_uri, verifier.as_deref());
    let subject = if a.url == "-" {
        "-".to_string()
    } else {
        url.split('?').next().unwrap_or("").to_string()
    };
    let report = Report::new(subject, findings);
    // The parameters as the server decodes them (secrets masked).
    let plain = url::Url::parse(url.trim())
        .map(|u| {
            u.query_pairs()
                .into_owned()
                .collect::<Vec<(String, String)>>()
        })
        .unwrap_or_default();
    let pkce_plain = !plain
        .iter()
        .any(|(n, v)| n == "code_challenge_method" && v != "plain");
    let params: Vec<(String, String)> = plain
        .into_iter()
        .map(|(n, v)| {
            let secret = gatewise_core::secret::is_secret_member(&n)
                || (pkce_plain && n == "code_challenge");
            let v = if secret {
                gatewise_core::secret::mask(&v)
            } else {
                v
            };
            (n, v)
        })
        .collect();
    if a.format == Format::Human && !params.is_empty() {
        let mut out = anstream::stdout().lock();
        writeln!(out, "parameters")?;
        for (n, v) in &params {
            writeln!(out, "  {n} = {v}")?;
        }
        writeln!(out)?;
    }
    let json_params = serde_json::Value::Array(
        params
            .iter()
            .map(|(n, v)| serde_json::json!([n, v]))
            .collect(),
    );
    render::report(&report, a.format, Some(("parameters", json_params)))?;
    Ok(report.verdict.exit_code())
}

fn explain_cmd(a: ExplainArgs) -> anyhow::Result<u8> {
    let message = read_arg_or_stdin(&a.message, "message")?;
    let ex = explain::explain(&message);
    let subject: String = message.chars().take(80).collect();
    let report = Report::new(subject, ex.findings);
    let libs: Vec<serde_json::Value> = ex
        .recognised
        .iter()
        .map(|r| serde_json::json!({"library": r.library, "pattern": r.pattern}))
        .collect();
    if a.format == Format::Human && !ex.recognised.is_empty() {
        let names: Vec<&str> = ex.recognised.iter().map(|r| r.library).collect();
        writeln!(anstream::stdout(), "recognised: {}\n", names.join(", "))?;
    }
    render::report(
        &report,
        a.format,
        Some(("recognised", serde_json::Value::Array(libs))),
    )?;
    // Explaining never fails the command: the findings are hypotheses.
    Ok(0)
}

fn rules(a: RulesArgs) -> anyhow::Result<u8> {
    match a.format {
        Format::Json => {
            let all: Vec<serde_json::Value> = catalogue::checks()
                .iter()
                .map(|c| serde_json::json!({"rule": c.rule, "code": c.code, "severity": c.severity, "spec": c.spec, "summary": c.summary}))
                .collect();
            // One JSON object, as every doctor command prints (the shared
            // contract): the report's three members, then the catalogue.
            let report = serde_json::json!({
                "subject": "rules",
                "verdict": "ok",
                "findings": [],
                "rules": all,
            });
            writeln!(
                anstream::stdout(),
                "{}",
                serde_json::to_string_pretty(&report)?
            )?;
        }
        _ => {
            write!(anstream::stdout(), "{}", catalogue::markdown())?;
        }
    }
    Ok(0)
}
