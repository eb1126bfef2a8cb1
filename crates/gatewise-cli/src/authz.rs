//! `gatewise authz`: the embedded authorization server on its own.

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use gatewise_authz::clients::ClientSpec;
use gatewise_authz::config::{self as authz_config, SecretRef, Settings};
use gatewise_authz::faults::{Endpoint, Fault};
use gatewise_authz::keys::Sealer;
use gatewise_authz::store::{self, StoreUrl};
use gatewise_authz::{Authz, AuthzConfig};
use gatewise_core::jose::Alg;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What `gatewise authz --help` says about fault mode, after the options.
const FAULT_HELP: &str = "\
Fault mode: reproduce a broken authorization server

  The server serves, on demand, the broken responses that make OAuth clients fail
  (\"an invalid OAuth response was received\"), so you can see what your client
  does before your users do. Any of the three options turns fault mode on.

  --fault MODE[,MODE...]        every request the faults fit gets them
  --fault-client ID=MODE[,...]  only this client's token requests (a new client
                                with a fresh secret, or one of the dev clients)
  --fault-header                only requests that ask, with the header below
  Gatewise-Fault: MODE          request header: this one fault for this request
                                (replaces the configured ones; ignored unless
                                fault mode is on)

  Token endpoint: html-error-page, invalid-json, truncated-json, empty-body,
    missing-access-token, missing-token-type, expires-in-string, form-encoded,
    wrong-content-type, bom, error-in-200, redirect-to-login, slow:<ms>,
    rate-limited, invalid-client-no-challenge, and in the JWT itself
    wrong-audience, wrong-issuer, expired-token, clock-skew:<s>, unknown-kid,
    rotated-keys-no-overlap, alg-none
  JWKS: jwks-down          Discovery: discovery-issuer-mismatch

  docs/faults.md says, for each, what is served, the rule it breaks and what
  common client libraries print.

Example: a client whose tokens carry the wrong audience, and one request that
gets an HTML error page:

  gatewise authz --dev --fault-client broken=wrong-audience --fault-header
  curl -s -u demo-client:SECRET -H 'Gatewise-Fault: html-error-page' \\
       -d grant_type=client_credentials http://127.0.0.1:9100/token
  gatewise doctor token --issuer http://127.0.0.1:9100 --client-id broken \\
       --client-secret-env SECRET_VAR --resource https://api.example.test";

/// What `gatewise authz --help` says first, after the options: how to run it.
const USAGE_HELP: &str = "\
Examples

  # Development: ready-made clients and a user, fresh secrets printed, state in memory
  gatewise authz --dev

  # From a configuration file (clients, users, scopes, lifetimes, keys, storage)
  export ORDERS_SERVICE_SECRET=$(openssl rand -base64 32) WEB_APP_SECRET=$(openssl rand -base64 32)
  export ALICE_PASSWORD=wonderland GATEWISE_AUTHZ_KEY=$(openssl rand -hex 32)
  gatewise authz config validate examples/authz.toml
  gatewise authz --config examples/authz.toml
  curl -s -u orders-service:$ORDERS_SERVICE_SECRET -d grant_type=client_credentials \\
       -d scope=orders.read http://127.0.0.1:9100/token

  # The same file, nothing kept after exit
  gatewise authz --config examples/authz.toml --ephemeral

  # Rotate the signing keys (the previous key stays published; a running server
  # picks the new one up within 30 s)
  gatewise authz keys rotate --config examples/authz.toml

State (signing keys, codes, refresh tokens, revocations) lives where `storage`
says: a SQLite file (default `gatewise-authz.db` next to the configuration,
mode 0600), `sqlite::memory:`, or `postgres://user:password@host/db`. The file
format is described in docs/authz-config.md.
";

/// `gatewise authz`.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_long_help = format!("{USAGE_HELP}\n{FAULT_HELP}"),
    after_help = "Examples: `gatewise authz --dev`, `gatewise authz --config examples/authz.toml`.\nFault mode (--fault, --fault-client, --fault-header): see `gatewise authz --help`."
)]
pub(crate) struct AuthzArgs {
    #[command(subcommand)]
    command: Option<AuthzCommand>,
    /// Start with ready-made development clients and a user (fresh secrets,
    /// printed); state in memory unless `--storage` says otherwise.
    #[arg(long, conflicts_with = "config", required_unless_present = "config")]
    dev: bool,
    /// The configuration file (`authz.toml`; see examples/authz.toml and
    /// docs/authz-config.md).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Keep nothing: state in memory, whatever the configuration's `storage`
    /// says (the default with `--dev`).
    #[arg(long, conflicts_with = "storage")]
    ephemeral: bool,
    /// Where the state lives, instead of the configuration's `storage`:
    /// `sqlite:PATH`, `sqlite::memory:` or `postgres://user:password@host/db`.
    #[arg(long, value_name = "URL")]
    storage: Option<String>,
    /// Where to listen (default: the configuration's `listen`, else
    /// 127.0.0.1:9100); with `--dev` the issuer is `http://` + this address
    /// unless `--issuer` says otherwise.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// The issuer identifier (the URL clients use), when it differs from the listen address.
    #[arg(long)]
    issuer: Option<String>,
    /// Signing algorithm for access tokens (`--dev`; a configuration file
    /// says it in `[keys] algorithm`).
    #[arg(long, default_value = "RS256", value_parser = ["RS256", "ES256", "EdDSA"])]
    alg: String,
    /// Fault mode: serve these faults wherever they fit, to every client
    /// (comma-separated or repeated; e.g. `--fault bom,slow:2000`).
    #[arg(long, value_name = "MODE", value_delimiter = ',')]
    fault: Vec<Fault>,
    /// Fault mode: give one client's token requests these faults (repeatable;
    /// e.g. `--fault-client broken=wrong-audience,expires-in-string`). An ID
    /// that is not a configured client registers a new machine client with a
    /// fresh secret and the first client's scopes and resources.
    #[arg(long, value_name = "ID=MODE[,MODE...]", value_parser = fault_client)]
    fault_client: Vec<FaultClient>,
    /// Fault mode: honour the `Gatewise-Fault: MODE` request header, which
    /// picks one fault for one request (on with any other fault option too).
    #[arg(long)]
    fault_header: bool,
}

/// `gatewise authz <COMMAND>`.
#[derive(Debug, Subcommand)]
enum AuthzCommand {
    /// Signing keys in the configured storage.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// `gatewise authz keys ...`.
#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Make a new signing key active. The previous one stays published in
    /// the JWKS (the two before it too), so tokens it signed keep verifying;
    /// a running server signs with the new key within 30 s.
    #[command(after_help = "Example:\n  gatewise authz keys rotate --config examples/authz.toml")]
    Rotate {
        /// The configuration file (its `storage` and `[keys]`).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Unpublish the previous keys at once: tokens they signed stop
        /// verifying (what a key compromise calls for).
        #[arg(long)]
        no_overlap: bool,
    },
}

/// `gatewise authz config ...`.
#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Check a configuration file: every error with its line, column and
    /// TOML path. Exit status 0 when valid, 1 when not. Secrets are not read.
    #[command(after_help = "Example:\n  gatewise authz config validate examples/authz.toml")]
    Validate {
        /// The configuration file.
        file: PathBuf,
        /// Treat warnings as errors.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Print the complete, commented example configuration.
    Example,
}

/// One `--fault-client` value.
#[derive(Debug, Clone)]
struct FaultClient {
    id: String,
    faults: Vec<Fault>,
}

fn fault_client(s: &str) -> Result<FaultClient, String> {
    let (id, modes) = s
        .split_once('=')
        .ok_or_else(|| "expected ID=MODE[,MODE...], e.g. `broken=wrong-audience`".to_owned())?;
    let id = id.trim();
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    {
        return Err(format!(
            "client id `{id}` must be non-empty letters, digits and -._~"
        ));
    }
    let faults = Fault::parse_list(modes).map_err(|e| e.to_string())?;
    if let Some(f) = faults.iter().find(|f| f.endpoint() != Endpoint::Token) {
        return Err(format!(
            "`{f}` applies to the {}, which is fetched without client authentication; use --fault {f}",
            f.endpoint()
        ));
    }
    Ok(FaultClient {
        id: id.to_owned(),
        faults,
    })
}

/// Applies the fault options to the development configuration.
fn apply_faults(config: &mut AuthzConfig, args: &AuthzArgs) {
    config.faults = args.fault.clone();
    config.fault_header = args.fault_header;
    for fc in &args.fault_client {
        if let Some(c) = config.clients.iter_mut().find(|c| c.id == fc.id) {
            c.faults = fc.faults.clone();
            continue;
        }
        let template = config.clients.first().cloned();
        let (scopes, resources) = template
            .map(|t| (t.scopes, t.resources))
            .unwrap_or_default();
        config.clients.push(ClientSpec {
            scopes,
            resources,
            faults: fc.faults.clone(),
            ..ClientSpec::machine(
                &fc.id,
                &gatewise_authz::clients::generate_secret(),
                &[],
                &[],
            )
        });
    }
}

pub(crate) fn run(args: AuthzArgs) -> anyhow::Result<u8> {
    match &args.command {
        Some(AuthzCommand::Config(ConfigCommand::Validate {
            file,
            deny_warnings,
        })) => return validate(file, *deny_warnings),
        Some(AuthzCommand::Config(ConfigCommand::Example)) => {
            #[allow(clippy::print_stdout)]
            {
                print!("{}", authz_config::EXAMPLE);
            }
            return Ok(0);
        }
        _ => {}
    }
    let rt = crate::runtime::for_this_machine()?;
    match &args.command {
        Some(AuthzCommand::Keys(KeysCommand::Rotate { config, no_overlap })) => {
            rt.block_on(rotate(config, !no_overlap))
        }
        _ => rt.block_on(serve(args)),
    }
}

/// Reads and compiles a configuration file; the report (every error with
/// `file:line:column: path: message`, and the warnings) on failure.
fn load(path: &Path, deny_warnings: bool) -> anyhow::Result<Result<Settings, String>> {
    crate::config_file::load(
        path,
        deny_warnings,
        Some("warnings are errors here (--deny-warnings)"),
        "",
        |text, name| {
            authz_config::compile(text)
                .map(|c| {
                    let w = c
                        .warnings
                        .iter()
                        .map(|w| w.display_with(name).to_string())
                        .collect();
                    (c.settings, w)
                })
                .map_err(|es| {
                    es.iter()
                        .map(|e| e.display_with(name).to_string())
                        .collect()
                })
        },
    )
}

fn validate(file: &Path, deny_warnings: bool) -> anyhow::Result<u8> {
    match load(file, deny_warnings)? {
        Ok(s) => {
            say!(
                "{}: valid ({} clients, {} users, {} scopes, {} resources; storage {})",
                file.display(),
                s.clients.len(),
                s.users.len(),
                s.scopes.len(),
                s.resources.len(),
                store::redact_url(&s.storage)
            );
            Ok(0)
        }
        Err(report) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("{report}");
            }
            Ok(1)
        }
    }
}

/// The directory relative paths of a configuration file are resolved in.
fn base_dir(config: &Path) -> PathBuf {
    config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Reads a secret: an environment variable, or a file (trimmed) relative to
/// `base`. Messages name the variable or file, never the value.
fn read_secret(base: &Path, r: &SecretRef) -> Result<String, String> {
    match r {
        SecretRef::Env(name) => {
            crate::input::env(name).ok_or_else(|| format!("environment variable {name} is not set"))
        }
        SecretRef::File(p) => {
            let path = base.join(p);
            std::fs::read_to_string(&path)
                .map(|s| s.trim().to_owned())
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
        }
    }
}

/// The storage URL with a relative SQLite path resolved against `base`.
fn storage_url(url: &str, base: &Path) -> anyhow::Result<String> {
    Ok(match StoreUrl::parse(url)? {
        StoreUrl::SqliteFile(p) if p.is_relative() => format!("sqlite:{}", base.join(p).display()),
        _ => url.to_owned(),
    })
}

/// The key-encryption key, when the configuration names one.
fn sealer(settings: &Settings, base: &Path) -> anyhow::Result<Option<Sealer>> {
    match &settings.keys.encryption_key {
        None => Ok(None),
        Some(r) => {
            let text =
                read_secret(base, r).map_err(|e| anyhow::anyhow!("keys.encryption_key: {e}"))?;
            Ok(Some(Sealer::from_text(&text).with_context(|| {
                format!("keys.encryption_key ({})", authz_config::describe_ref(r))
            })?))
        }
    }
}

async fn rotate(path: &Path, overlap: bool) -> anyhow::Result<u8> {
    let settings = match load(path, false)? {
        Ok(s) => s,
        Err(report) => bail!("{report}"),
    };
    let base = base_dir(path);
    let url = storage_url(&settings.storage, &base)?;
    if StoreUrl::parse(&url)? == StoreUrl::SqliteMemory {
        bail!("storage is sqlite::memory:, which no running server shares: nothing to rotate");
    }
    let sealer = sealer(&settings, &base)?;
    let st = store::open(&url).await?;
    // Only the keys matter here: no clients or users (their secrets are
    // not read).
    let mut config = AuthzConfig::dev(&settings.issuer);
    config.clients.clear();
    config.users.clear();
    config.alg = settings.keys.alg;
    let authz = Authz::open(config, Arc::new(crate::clock::SystemClock), st, sealer).await?;
    let before = authz.keys().active().kid.clone();
    let after = authz.rotate_stored_keys(overlap).await?;
    say!(
        "signing keys rotated in {}: {} -> {}{}",
        store::redact_url(&url),
        before,
        after,
        if overlap {
            " (the previous key stays published)"
        } else {
            " (previous keys unpublished: tokens they signed no longer verify)"
        }
    );
    say!("published kids: {}", authz.keys().kids().join(", "));
    Ok(0)
}

/// The configuration to serve and where its state lives.
fn prepare(
    args: &AuthzArgs,
    issuer_default: &str,
) -> anyhow::Result<(AuthzConfig, String, Option<Sealer>)> {
    let Some(path) = &args.config else {
        let issuer = args
            .issuer
            .clone()
            .unwrap_or_else(|| issuer_default.to_owned());
        let mut config = AuthzConfig::dev(&issuer);
        config.alg = Alg::parse(&args.alg).unwrap_or(Alg::RS256);
        let storage = args
            .storage
            .clone()
            .unwrap_or_else(|| "sqlite::memory:".to_owned());
        return Ok((config, storage, None));
    };
    let settings = match load(path, false)? {
        Ok(s) => s,
        Err(report) => bail!("{report}\nnothing was started"),
    };
    let base = base_dir(path);
    let mut config = settings
        .authz_config(&mut |r| read_secret(&base, r))
        .map_err(|errors| {
            let lines: Vec<String> = errors
                .iter()
                .map(|e| format!("  {}: {e}", path.display()))
                .collect();
            anyhow::anyhow!(
                "cannot read the secrets the configuration names:\n{}",
                lines.join("\n")
            )
        })?;
    if let Some(i) = &args.issuer {
        config.issuer = i.trim_end_matches('/').to_owned();
    }
    let storage = if args.ephemeral {
        "sqlite::memory:".to_owned()
    } else {
        storage_url(args.storage.as_deref().unwrap_or(&settings.storage), &base)?
    };
    Ok((config, storage, sealer(&settings, &base)?))
}

async fn serve(args: AuthzArgs) -> anyhow::Result<u8> {
    let listen = match (&args.listen, &args.config) {
        (Some(l), _) => *l,
        (None, Some(path)) => match load(path, false)? {
            Ok(s) => s.listen,
            Err(report) => bail!("{report}\nnothing was started"),
        },
        (None, None) => SocketAddr::from(([127, 0, 0, 1], 9100)),
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (pick another with --listen)"))?;
    let addr = listener.local_addr()?;
    let (mut config, storage, sealer) = prepare(&args, &format!("http://{addr}"))?;
    let issuer = config.issuer.clone();
    let dev = args.config.is_none();
    apply_faults(&mut config, &args);
    let fault_mode = config.fault_mode();
    let server_faults: Vec<String> = config.faults.iter().map(Fault::to_string).collect();
    let clients = config.clients.clone();
    let users = config.users.clone();
    let alg = config.alg;
    let st = store::open(&storage).await.with_context(|| {
        format!(
            "cannot open the state store {}",
            store::redact_url(&storage)
        )
    })?;
    let authz =
        Arc::new(Authz::open(config, Arc::new(crate::clock::SystemClock), st, sealer).await?);
    say!(
        "gatewise authz{}: {issuer}",
        if dev { " (development)" } else { "" }
    );
    say!("  discovery  {issuer}/.well-known/openid-configuration");
    say!(
        "  jwks       {issuer}/jwks.json   (signing with {}, kid {})",
        alg,
        authz.keys().active().kid
    );
    say!("  token      {issuer}/token   introspect {issuer}/introspect   revoke {issuer}/revoke");
    say!(
        "  device     {issuer}/device_authorization   (users approve at {issuer}/device)   userinfo {issuer}/userinfo"
    );
    say!("  state      {}\n", store::redact_url(&storage));
    for c in &clients {
        // Configured secrets come from the environment or files and are
        // never printed; dev secrets are fresh and printed to be used.
        let secret = if c.public {
            "(no secret)".to_owned()
        } else if c.jwks.is_some() {
            "(private_key_jwt)".to_owned()
        } else if dev || c.secret.is_empty() && c.secret_sha256.is_none() {
            c.secret.clone()
        } else {
            "(configured secret)".to_owned()
        };
        say!(
            "  client {} / {}   scopes: {}   resources: {}{}",
            c.id,
            secret,
            c.scopes.join(" "),
            c.resources.join(" "),
            if !c.faults.is_empty() {
                format!(
                    "   (faults: {})",
                    c.faults
                        .iter()
                        .map(Fault::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                )
            } else if c.opaque_tokens {
                "   (opaque tokens)".to_owned()
            } else if c.public {
                format!("   (public, PKCE; redirect {})", c.redirect_uris.join(" "))
            } else if !c.redirect_uris.is_empty() {
                format!("   (redirect {})", c.redirect_uris.join(" "))
            } else {
                String::new()
            }
        );
    }
    for u in &users {
        say!(
            "  user   {}{}   (sign in at {issuer}/authorize)",
            u.username,
            if dev {
                format!(" / {}", u.password)
            } else {
                String::new()
            }
        );
    }
    if let Some(c) = clients.iter().find(|c| !c.public) {
        let secret = if dev {
            c.secret.clone()
        } else {
            "SECRET".to_owned()
        };
        say!(
            "\nGet a token:\n\n  curl -s -u {}:{} -d grant_type=client_credentials -d scope={} {issuer}/token\n",
            c.id,
            secret,
            c.scopes.first().map(String::as_str).unwrap_or("")
        );
    }
    if let Some(c) = clients
        .iter()
        .find(|c| c.public && c.allows(gatewise_authz::device::GRANT_TYPE))
    {
        say!(
            "Device flow (RFC 8628): ask for a user code, approve it at verification_uri_complete, then poll:\n\n  curl -s -d client_id={id} -d scope=openid {issuer}/device_authorization\n  curl -s -d grant_type={grant} -d client_id={id} -d device_code=DEVICE_CODE {issuer}/token\n",
            id = c.id,
            grant = gatewise_authz::device::GRANT_TYPE,
        );
    }
    if fault_mode {
        say!(
            "FAULT MODE: this server misbehaves on purpose (docs/faults.md).\n  server-wide faults: {}\n  per request: header `Gatewise-Fault: MODE`, e.g.\n\n  curl -si -H 'Gatewise-Fault: expires-in-string' -u demo-client:SECRET -d grant_type=client_credentials {issuer}/token\n",
            if server_faults.is_empty() {
                "none".to_owned()
            } else {
                server_faults.join(",")
            }
        );
    }
    say!("Press Ctrl-C to stop.");
    let upkeep = tokio::spawn(Arc::clone(&authz).maintain(std::time::Duration::from_secs(30)));
    let served = axum::serve(listener, Arc::clone(&authz).router())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("the authorization server failed");
    upkeep.abort();
    served?;
    Ok(0)
}
