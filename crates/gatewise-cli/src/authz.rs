//! `gatewise authz`: the embedded authorization server on its own.

use anyhow::{Context as _, bail};
use clap::Args;
use gatewise_authz::clients::ClientSpec;
use gatewise_authz::faults::{Endpoint, Fault};
use gatewise_authz::{Authz, AuthzConfig};
use gatewise_core::jose::Alg;
use std::net::SocketAddr;
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

/// `gatewise authz`.
#[derive(Debug, Args)]
#[command(after_long_help = FAULT_HELP, after_help = "Fault mode (--fault, --fault-client, --fault-header): see `gatewise authz --help`.")]
pub(crate) struct AuthzArgs {
    /// Start with ready-made development clients (fresh secrets, printed).
    /// Required for now: configuration files for the server come later.
    #[arg(long)]
    dev: bool,
    /// Where to listen; the issuer is `http://` + this address unless `--issuer` says otherwise.
    #[arg(long, default_value = "127.0.0.1:9100")]
    listen: SocketAddr,
    /// The issuer identifier (the URL clients use), when it differs from the listen address.
    #[arg(long)]
    issuer: Option<String>,
    /// Signing algorithm for access tokens.
    #[arg(long, default_value = "RS256", value_parser = ["RS256", "ES256", "EdDSA"])]
    alg: String,
    /// Fault mode: serve these faults wherever they fit, to every client
    /// (comma-separated or repeated; e.g. `--fault bom,slow:2000`).
    #[arg(long, value_name = "MODE", value_delimiter = ',')]
    fault: Vec<Fault>,
    /// Fault mode: give one client's token requests these faults (repeatable;
    /// e.g. `--fault-client broken=wrong-audience,expires-in-string`). An ID
    /// that is not a dev client registers a new machine client with a fresh
    /// secret and demo-client's scopes and resources.
    #[arg(long, value_name = "ID=MODE[,MODE...]", value_parser = fault_client)]
    fault_client: Vec<FaultClient>,
    /// Fault mode: honour the `Gatewise-Fault: MODE` request header, which
    /// picks one fault for one request (on with any other fault option too).
    #[arg(long)]
    fault_header: bool,
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
    if !args.dev {
        bail!(
            "only `gatewise authz --dev` is available so far (configuration files for the server are planned)"
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve(args))
}

async fn serve(args: AuthzArgs) -> anyhow::Result<u8> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (pick another with --listen)",
                args.listen
            )
        })?;
    let addr = listener.local_addr()?;
    let issuer = args
        .issuer
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let mut config = AuthzConfig::dev(&issuer);
    config.alg = Alg::parse(&args.alg).unwrap_or(Alg::RS256);
    apply_faults(&mut config, &args);
    let fault_mode = config.fault_mode();
    let server_faults: Vec<String> = config.faults.iter().map(Fault::to_string).collect();
    let clients = config.clients.clone();
    let users = config.users.clone();
    let authz = Arc::new(Authz::new(config, Arc::new(crate::clock::SystemClock))?);
    say!("gatewise authz (development): {issuer}");
    say!("  discovery  {issuer}/.well-known/openid-configuration");
    say!(
        "  jwks       {issuer}/jwks.json   (signing with {})",
        args.alg
    );
    say!("  token      {issuer}/token   introspect {issuer}/introspect   revoke {issuer}/revoke\n");
    for c in &clients {
        say!(
            "  client {} / {}   scopes: {}   resources: {}{}",
            c.id,
            if c.public {
                "(no secret)"
            } else {
                c.secret.as_str()
            },
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
            "  user   {} / {}   (sign in at {issuer}/authorize)",
            u.username,
            u.password
        );
    }
    if let Some(c) = clients.first() {
        say!(
            "\nGet a token:\n\n  curl -s -u {}:{} -d grant_type=client_credentials -d scope={} {issuer}/token\n",
            c.id,
            c.secret,
            c.scopes.first().map(String::as_str).unwrap_or("")
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
    axum::serve(listener, Arc::clone(&authz).router())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("the authorization server failed")?;
    Ok(0)
}
