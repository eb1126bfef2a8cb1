//! `gatewise demo`: the embedded authorization server, the gateway and a
//! small API behind it, in one process, with the call log (SQLite in a
//! temporary directory, removed at exit) and the admin listener with the
//! dashboard. It prints the curls that get a token, call the API, and fail
//! (with the problem document the gateway answers and the doctor command
//! that explains it), and where to see every call. `--check` makes those
//! calls itself, reads them back through the admin API, and exits 0 only
//! when each gives the expected answer.

use anyhow::{Context as _, bail};
use axum::Json;
use axum::http::HeaderMap;
use axum::routing::get;
use clap::Args;
use gatewise_authz::{Authz, AuthzConfig};
use gatewise_config::model::*;
use gatewise_gateway::{Clock, Gateway, server};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// `gatewise demo`.
#[derive(Debug, Args)]
pub(crate) struct Demo {
    /// Gateway address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Embedded authorization server address.
    #[arg(long, default_value = "127.0.0.1:9100")]
    authz: SocketAddr,
    /// Demo API (upstream) address.
    #[arg(long, default_value = "127.0.0.1:9000")]
    api: SocketAddr,
    /// Admin listener (API and dashboard) address.
    #[arg(long, default_value = "127.0.0.1:9901")]
    admin: SocketAddr,
    /// Do not open the dashboard in a browser.
    #[arg(long)]
    no_open: bool,
    /// Run the demo's calls, report, and exit (0 when all behave as
    /// described). Uses free ports unless addresses are given.
    #[arg(long)]
    check: bool,
}

const RESOURCE: &str = "https://api.example.test";

async fn bind(
    addr: SocketAddr,
    check: bool,
    default_port: u16,
) -> anyhow::Result<tokio::net::TcpListener> {
    // In --check mode, default ports become free ones so CI never collides.
    let addr = if check && addr.port() == default_port {
        SocketAddr::new(addr.ip(), 0)
    } else {
        addr
    };
    tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} (use --listen/--authz/--api/--admin to pick other ports)")
    })
}

/// The demo API: `GET /orders` lists orders and says who called.
fn api_router() -> axum::Router {
    async fn orders(headers: HeaderMap) -> Json<Value> {
        let h = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        Json(json!({
            "orders": [{"id": 1042, "item": "espresso beans", "qty": 2}, {"id": 1043, "item": "grinder", "qty": 1}],
            "caller": {"subject": h("x-auth-subject"), "client_id": h("x-auth-client-id"), "scopes": h("x-auth-scopes")},
        }))
    }
    axum::Router::new().route("/orders", get(orders))
}

fn config(issuer: &str, api: SocketAddr) -> DynamicConfig {
    let discovery = format!("{issuer}/.well-known/openid-configuration");
    DynamicConfig {
        issuers: vec![Issuer::new("demo", issuer, KeySource::Discovery(discovery))],
        upstreams: vec![Upstream {
            first_byte_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(30),
            host_header: HostHeader::Target,
            ..Upstream::new("orders-api", vec![format!("http://{api}")])
        }],
        routes: vec![Route {
            strip_prefix: true,
            jwt: Some(JwtPolicy {
                issuers: vec!["demo".into()],
                audiences: vec![RESOURCE.into()],
                require_at_jwt: true,
                scopes: ScopeRule::AllOf(vec!["orders.read".into()]),
                claims: vec![],
                token_sources: vec![],
                forward_claims: true,
                strip_authorization: true,
            }),
            ..Route::new("orders", PathMatch::Prefix("/api".into()), "orders-api")
        }],
        max_body_bytes: 1 << 20,
        ..DynamicConfig::default()
    }
}

pub(crate) fn run(args: Demo) -> anyhow::Result<u8> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(demo(args))
}

async fn demo(args: Demo) -> anyhow::Result<u8> {
    let authz_l = bind(args.authz, args.check, 9100).await?;
    let api_l = bind(args.api, args.check, 9000).await?;
    let gw_l = bind(args.listen, args.check, 8080).await?;
    let admin_l = bind(args.admin, args.check, 9901).await?;
    let (authz_addr, api_addr, gw_addr, admin_addr) = (
        authz_l.local_addr()?,
        api_l.local_addr()?,
        gw_l.local_addr()?,
        admin_l.local_addr()?,
    );
    let issuer = format!("http://{authz_addr}");
    let clock: Arc<dyn Clock> = Arc::new(crate::clock::SystemClock);

    let authz_config = AuthzConfig::dev(&issuer);
    let secret = authz_config
        .clients
        .iter()
        .find(|c| c.id == "demo-client")
        .map(|c| c.secret.clone())
        .unwrap_or_default();
    let authz = Arc::new(Authz::new(authz_config, Arc::clone(&clock))?);
    let router = Arc::clone(&authz).router();
    tokio::spawn(async move { axum::serve(authz_l, router).await });
    tokio::spawn(async move { axum::serve(api_l, api_router()).await });

    // The call log in a temporary directory, removed when the demo ends.
    let data = tempdir()?;
    let log_config = CallLogConfig {
        path: data.0.join("calls.db"),
        spool_dir: data.0.join("spool"),
        ..CallLogConfig::default()
    };
    let call_log = crate::calls::start(&log_config).await?;
    let gateway = Arc::new(
        Gateway::new(config(&issuer, api_addr), Arc::clone(&clock))?
            .with_call_log(call_log.logging.clone()),
    );
    if let Some((name, e)) = gateway.load_keys().await.into_iter().next() {
        bail!("the demo gateway could not load the keys of issuer {name}: {e}");
    }
    let admin = gatewise_admin::Admin::new(Arc::clone(&clock))
        .with_gateway(Arc::clone(&gateway))
        .with_calls(Box::new(gatewise_store::SqliteCallLog::open(
            &log_config.path,
        )?))
        .with_writer(Arc::clone(&call_log.counters));
    let admin_task = tokio::spawn(admin.serve(admin_l, std::future::pending()));
    let mut stat = StaticConfig::local(gw_addr);
    stat.shutdown_grace = Duration::from_secs(2);
    let running = server::Running::spawn(gw_l, gateway, stat, None)?;

    let expired = authz.mint_access_token("demo-client", RESOURCE, "orders.read", -300)?;
    let other_aud = authz.mint_access_token(
        "demo-client",
        "https://other.example.test",
        "orders.read",
        600,
    )?;
    let api = format!("http://{gw_addr}/api/orders");
    let dashboard = format!("http://{admin_addr}");
    let get_token = format!(
        "curl -s -u demo-client:{secret} -d grant_type=client_credentials -d scope=orders.read -d resource={RESOURCE} http://{authz_addr}/token"
    );

    let code = if args.check {
        check(
            &api,
            &issuer,
            &secret,
            &expired,
            &other_aud,
            &authz_addr.to_string(),
            &dashboard,
        )
        .await
    } else {
        say!(
            "gatewise demo: an authorization server, a gateway and an API, all on this machine.\n"
        );
        say!(
            "  authorization server  {issuer}  (discovery: {issuer}/.well-known/openid-configuration)"
        );
        say!(
            "  gateway               http://{gw_addr}  (route /api -> http://{api_addr}, needs a token for {RESOURCE} with scope orders.read)"
        );
        say!("  client                demo-client / {secret}\n");
        say!(
            "1. Get a token:\n\n  TOKEN=$({get_token} | sed 's/.*\"access_token\":\"\\([^\"]*\\)\".*/\\1/')\n"
        );
        say!(
            "2. Call the API through the gateway (200):\n\n  curl -s -H \"Authorization: Bearer $TOKEN\" {api}\n"
        );
        say!(
            "3. Call it with an expired token (401 jwt-expired, with the reason in WWW-Authenticate and application/problem+json):\n\n  curl -si -H \"Authorization: Bearer {expired}\" {api}\n"
        );
        say!(
            "   and ask the doctor why:\n\n  gatewise doctor jwt {expired} --issuer {issuer} --audience {RESOURCE}\n"
        );
        say!(
            "4. Or a token for another audience (401 jwt-aud-mismatch):\n\n  curl -si -H \"Authorization: Bearer {other_aud}\" {api}\n"
        );
        say!(
            "5. See every call, its decision trace and the doctor's diagnosis in the dashboard:\n\n  {dashboard}/\n\n   or ask the admin API:\n\n  curl -s '{dashboard}/api/v1/calls?status=error'\n  curl -s {dashboard}/api/v1/calls/REQUEST_ID/diagnosis   (REQUEST_ID: the x-request-id of a call)\n"
        );
        if !args.no_open {
            crate::browser::open(&format!("{dashboard}/"));
        }
        say!("Press Ctrl-C to stop.");
        let _ = tokio::signal::ctrl_c().await;
        0
    };
    running.stop().await?;
    admin_task.abort();
    call_log.shutdown().await;
    drop(data);
    Ok(code)
}

/// A directory removed on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir() -> anyhow::Result<TempDir> {
    let dir = std::env::temp_dir().join(format!("gatewise-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the demo's directory {}", dir.display()))?;
    Ok(TempDir(dir))
}

/// The demo's calls, made and checked; prints one line per step.
async fn check(
    api: &str,
    issuer: &str,
    secret: &str,
    expired: &str,
    other_aud: &str,
    authz: &str,
    dashboard: &str,
) -> u8 {
    let http = reqwest::Client::new();
    let mut failures = 0;
    let mut step = |ok: bool, what: String| {
        say!("{} {what}", if ok { "ok  " } else { "FAIL" });
        if !ok {
            failures += 1;
        }
    };
    let token: Option<String> = async {
        let r = http
            .post(format!("http://{authz}/token"))
            .basic_auth("demo-client", Some(secret))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "orders.read"),
                ("resource", RESOURCE),
            ])
            .send()
            .await
            .ok()?;
        let v: Value = r.json().await.ok()?;
        v.get("access_token")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }
    .await;
    step(
        token.is_some(),
        format!("token from {issuer}/token (client_credentials)"),
    );
    let call = |t: String| {
        let http = http.clone();
        let api = api.to_owned();
        async move {
            let r = http.get(&api).bearer_auth(t).send().await.ok()?;
            let status = r.status().as_u16();
            let challenge = r
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            Some((status, challenge, body))
        }
    };
    let ok = match &token {
        Some(t) => call(t.clone()).await,
        None => None,
    };
    step(
        ok.as_ref()
            .is_some_and(|(s, _, b)| *s == 200 && b["caller"]["client_id"] == "demo-client"),
        format!(
            "GET {api} with the token: {}",
            ok.as_ref()
                .map_or("no answer".to_owned(), |(s, _, _)| s.to_string())
        ),
    );
    for (token, reason) in [(expired, "jwt-expired"), (other_aud, "jwt-aud-mismatch")] {
        let got = call(token.to_owned()).await;
        let good = got.as_ref().is_some_and(|(s, c, b)| {
            *s == 401 && c.contains("error=\"invalid_token\"") && b["reason"] == reason
        });
        step(
            good,
            format!(
                "GET {api} with a bad token: {}",
                got.as_ref()
                    .map_or("no answer".to_owned(), |(s, _, b)| format!(
                        "{s} {}",
                        b["reason"]
                    ))
            ),
        );
    }
    // The call log, read back through the admin API: the four calls, the
    // refusals with their reasons, and the doctor's diagnosis of one.
    let mut calls: Vec<Value> = Vec::new();
    for _ in 0..50 {
        let page: Option<Value> = async {
            http.get(format!("{dashboard}/api/v1/calls?limit=100"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()
        }
        .await;
        calls = page
            .and_then(|p| p["calls"].as_array().cloned())
            .unwrap_or_default();
        if calls.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reasons: Vec<&str> = calls.iter().filter_map(|c| c["reason"].as_str()).collect();
    step(
        reasons.contains(&"jwt-expired") && reasons.contains(&"jwt-aud-mismatch"),
        format!(
            "{dashboard}/api/v1/calls: {} calls recorded, reasons {reasons:?}",
            calls.len()
        ),
    );
    let expired_id = calls
        .iter()
        .find(|c| c["reason"] == "jwt-expired")
        .and_then(|c| c["request_id"].as_str())
        .unwrap_or("none");
    let diagnosis: Option<Value> = async {
        http.get(format!("{dashboard}/api/v1/calls/{expired_id}/diagnosis"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()
    }
    .await;
    let first = diagnosis
        .as_ref()
        .and_then(|d| d["findings"][0]["code"].as_str())
        .unwrap_or("none")
        .to_owned();
    step(
        first == "call-jwt-expired",
        format!("diagnosis of the expired-token call: {first}"),
    );
    let metrics = async {
        http.get(format!("{dashboard}/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()
    }
    .await
    .unwrap_or_default();
    step(
        metrics.contains("reason=\"jwt-expired\"} 1"),
        format!("{dashboard}/metrics counts the refusals by reason"),
    );
    let page = async {
        let r = http.get(format!("{dashboard}/")).send().await.ok()?;
        let html = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/html"));
        let body = r.text().await.ok()?;
        Some(html && body.contains("dashboard.js"))
    }
    .await
    .unwrap_or(false);
    step(page, format!("{dashboard}/ serves the dashboard"));
    if failures == 0 { 0 } else { 1 }
}
