//! `gatewise authz`: the embedded authorization server on its own.

use anyhow::{Context as _, bail};
use clap::Args;
use gatewise_authz::{Authz, AuthzConfig};
use gatewise_core::jose::Alg;
use std::net::SocketAddr;
use std::sync::Arc;

/// `gatewise authz`.
#[derive(Debug, Args)]
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
            if c.opaque_tokens {
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
    say!("Press Ctrl-C to stop.");
    axum::serve(listener, Arc::clone(&authz).router())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("the authorization server failed")?;
    Ok(0)
}
