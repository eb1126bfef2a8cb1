//! The dashboard in a real browser: Debian's Chromium, headless, driven by
//! `tests/browser/dashboard.mjs` (playwright-core with `executablePath`, no
//! downloaded browser) against an admin listener on 127.0.0.1 over a SQLite
//! call log of varied calls and a gateway with two issuers (one failing).
//!
//! Needs `node`, `/usr/bin/chromium` and
//! `npm ci --prefix crates/gatewise-admin/tests/browser`. Without them the
//! test prints a notice and passes, except with `CI=true`, where it fails.
//! Screenshots go to `target/dashboard-screenshots/`; with
//! `UPDATE_SCREENSHOT=1` the overview is also saved to `docs/dashboard.png`.

use gatewise_admin::Admin;
use gatewise_config::model::*;
use gatewise_core::calllog::{
    CallRecord, FindingRef, Outcome, Step, TraceStep, mask_headers, token_fingerprint,
};
use gatewise_core::clock::FixedClock;
use gatewise_gateway::Gateway;
use gatewise_gateway::server::Running;
use gatewise_store::{CallLog, KeyedRecord, RecordKey, SqliteCallLog};
use gatewise_test_support::mint::TestKey;
use gatewise_test_support::servers::{self, DocServer};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// 2026-01-01T12:00:00Z: the admin's clock, so the page shows the same
/// hour on every run.
const NOW_S: u64 = 1_767_268_800;
const NOW_MS: u64 = NOW_S * 1000;
const CHROMIUM: &str = "/usr/bin/chromium";
const TOKEN: &str = "browser-test-admin-token";
/// A bearer token seen by the gateway: the record keeps only its fingerprint.
const USER_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJl";
/// A path an attacker chose: must show as text, never run.
const XSS_PATH: &str = "/orders/<img src=x onerror=\"window.__gwPwned=1\">";

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn workspace_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `(CI=true, UPDATE_SCREENSHOT=1)`.
// Reading the environment is banned by clippy.toml outside the CLI's env
// module; a test's CI and update switches are the exception.
#[allow(clippy::disallowed_methods)]
fn switches() -> (bool, bool) {
    (
        std::env::var("CI").is_ok_and(|v| v == "true"),
        std::env::var("UPDATE_SCREENSHOT").is_ok_and(|v| v == "1"),
    )
}

/// Writes past libtest's output capture, so the line shows in every run.
fn loud(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// What is missing to run the browser test, if anything.
fn missing() -> Option<String> {
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => return Some(format!("`node --version` failed ({})", out.status)),
        Err(e) => return Some(format!("cannot run `node` ({e})")),
    }
    if !Path::new(CHROMIUM).is_file() {
        return Some(format!(
            "{CHROMIUM} is missing (Debian: `apt-get install chromium`)"
        ));
    }
    if !browser_dir()
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        return Some(
            "playwright-core is not installed: run `npm ci --prefix crates/gatewise-admin/tests/browser`"
                .into(),
        );
    }
    None
}

/// A small deterministic generator, so every run has the same calls.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn finding(rule: &str, code: &str, severity: &str) -> FindingRef {
    FindingRef {
        rule: rule.into(),
        code: code.into(),
        severity: severity.into(),
    }
}

fn step(step: Step, outcome: Outcome, micros: u32) -> TraceStep {
    TraceStep::new(step, outcome, micros)
}

fn refused(s: Step, reason: &str, detail: &str, micros: u32) -> TraceStep {
    TraceStep {
        reason: Some(reason.into()),
        detail: Some(detail.into()),
        ..TraceStep::new(s, Outcome::Refused, micros)
    }
}

/// The known call the test opens: a token that expired.
fn expired_call() -> CallRecord {
    let mut r = CallRecord::new("req-expired-demo", NOW_MS - 95_000, "GET", "/orders/1042");
    r.route = Some("orders".into());
    r.status = 401;
    r.reason = Some("jwt-expired".into());
    r.total_us = 412;
    r.auth_us = Some(301);
    r.client_ip = "10.0.0.7".parse().ok();
    r.issuer = Some("https://login.example.com".into());
    r.kid = Some("k1".into());
    r.client_id = Some("mobile-app".into());
    r.sub = Some("user-42".into());
    r.scopes = vec!["orders.read".into(), "profile".into()];
    r.token_fingerprint = Some(token_fingerprint(USER_TOKEN));
    r.trace = vec![
        step(Step::Route, Outcome::Ok, 4),
        refused(
            Step::Jwt,
            "jwt-expired",
            "exp 1767268500 is 205 s before now (leeway 60 s)",
            301,
        ),
    ];
    r.request_headers = mask_headers([
        ("host", "api.example.com"),
        ("authorization", &*format!("Bearer {USER_TOKEN}")),
        ("accept", "application/json"),
        ("user-agent", "orders-ios/5.2"),
    ]);
    r.response_headers = mask_headers([
        (
            "www-authenticate",
            "Bearer error=\"invalid_token\", error_description=\"the token expired\"",
        ),
        ("content-type", "application/problem+json"),
    ]);
    r
}

/// A call whose attacker-controlled strings look like markup.
fn hostile_call() -> CallRecord {
    let mut r = CallRecord::new("req-xss", NOW_MS - 20_000, "GET", XSS_PATH);
    r.route = Some("orders".into());
    r.status = 404;
    r.reason = Some("route-not-found".into());
    r.total_us = 95;
    r.trace = vec![TraceStep {
        detail: Some("<b>no route</b> for <script>window.__gwPwned=2</script>".into()),
        ..refused(Step::Route, "route-not-found", "", 12)
    }];
    r.request_headers = mask_headers([
        ("host", "api.example.com"),
        ("x-note", "<script>window.__gwPwned=3</script>"),
    ]);
    r
}

/// About 600 calls over the last hour, in waves: four routes, successes,
/// refusals of several kinds, a rare upstream timeout, and an outage of the
/// writing endpoints between 24 and 18 minutes ago.
fn calls() -> Vec<CallRecord> {
    let mut rng = Lcg(7);
    let mut starts = Vec::new();
    for m in 0..60u64 {
        let wave = 10.0 + 5.0 * (m as f64 / 7.0).sin() + 2.0 * (m as f64 / 2.3).sin();
        for _ in 0..(wave.round() as u64 + rng.below(3)) {
            starts.push(NOW_MS - 3_600_000 + m * 60_000 + rng.below(60_000));
        }
    }
    starts.sort_unstable();
    let routes = [
        ("orders", "GET", "/orders/"),
        ("orders", "POST", "/orders"),
        ("payments", "POST", "/payments/"),
        ("profile", "GET", "/me"),
        ("public", "GET", "/public/status"),
    ];
    let clients = ["mobile-app", "web-portal", "billing-batch", "partner-sync"];
    let mut out = Vec::new();
    for (i, start) in starts.into_iter().enumerate() {
        let (route, method, prefix) = routes[rng.below(routes.len() as u64) as usize];
        let path = if prefix.ends_with('/') {
            format!("{prefix}{}", 1000 + rng.below(9000))
        } else {
            prefix.to_owned()
        };
        let mut r = CallRecord::new(format!("req-{i:04}"), start, method, path);
        r.route = Some(route.into());
        r.client_ip = format!("10.0.{}.{}", rng.below(4), 2 + rng.below(200))
            .parse()
            .ok();
        let client = clients[rng.below(clients.len() as u64) as usize];
        let authed = route != "public";
        if authed {
            r.issuer = Some("https://login.example.com".into());
            r.kid = Some(if rng.below(5) == 0 { "k2" } else { "k1" }.into());
            r.client_id = Some(client.into());
            r.sub = Some(format!("user-{}", rng.below(40)));
            r.scopes = vec![format!("{route}.read")];
            r.token_fingerprint = Some(token_fingerprint(&format!("token-{i}")));
        }
        let ago_min = (NOW_MS - start) / 60_000;
        let outage = method == "POST" && (18..24).contains(&ago_min);
        let roll = rng.below(100);
        let base = 300 + rng.below(900);
        let upstream = 2_000 + rng.below(18_000) + if rng.below(20) == 0 { 120_000 } else { 0 };
        let route_ok = step(Step::Route, Outcome::Ok, 3);
        let (status, reason, trace, total): (u16, Option<&str>, Vec<TraceStep>, u64) =
            if outage && roll < 85 {
                let mut t = vec![route_ok, step(Step::Jwt, Outcome::Ok, 180)];
                t.push(TraceStep {
                    reason: Some("upstream-unavailable".into()),
                    detail: Some("connect to 10.1.0.9:8443: connection refused".into()),
                    ..TraceStep::new(Step::Upstream, Outcome::Error, 1_900)
                });
                (502, Some("upstream-unavailable"), t, base + 2_100)
            } else if authed && roll < 6 {
                let t = vec![
                    route_ok,
                    refused(
                        Step::Jwt,
                        "jwt-expired",
                        "exp is 340 s before now (leeway 60 s)",
                        190,
                    ),
                ];
                (401, Some("jwt-expired"), t, base)
            } else if authed && roll < 8 {
                let t = vec![
                    route_ok,
                    refused(
                        Step::Jwt,
                        "jwt-kid-unknown",
                        "kid \"2024-rotated\" not in the key set after a refetch",
                        2_400,
                    ),
                ];
                (401, Some("jwt-kid-unknown"), t, base + 2_400)
            } else if authed && roll < 10 {
                let t = vec![
                    route_ok,
                    refused(
                        Step::Jwt,
                        "jwt-aud-mismatch",
                        "aud \"https://staging.example.com\" is not https://api.example.com",
                        160,
                    ),
                ];
                (401, Some("jwt-aud-mismatch"), t, base)
            } else if authed && roll < 12 {
                let t = vec![
                    route_ok,
                    step(Step::Jwt, Outcome::Ok, 150),
                    refused(
                        Step::Scope,
                        "scope-missing",
                        &format!("needs {route}.write"),
                        2,
                    ),
                ];
                (403, Some("scope-missing"), t, base)
            } else if roll < 14 {
                let t = vec![
                    route_ok,
                    step(Step::Jwt, Outcome::Ok, 150),
                    refused(
                        Step::RateLimit,
                        "rate-limited",
                        "60 requests per minute per client",
                        1,
                    ),
                ];
                (429, Some("rate-limited"), t, base)
            } else if roll == 14 && rng.below(4) == 0 {
                let t = vec![
                    route_ok,
                    step(Step::Jwt, Outcome::Ok, 150),
                    TraceStep {
                        reason: Some("upstream-timeout".into()),
                        detail: Some("no response head within 2 s".into()),
                        ..TraceStep::new(Step::Upstream, Outcome::Error, 2_000_000)
                    },
                ];
                (504, Some("upstream-timeout"), t, 2_000_000 + base)
            } else {
                let mut t = vec![route_ok];
                if authed {
                    t.push(step(Step::Jwt, Outcome::Ok, 140));
                    t.push(step(Step::Scope, Outcome::Ok, 1));
                }
                t.push(step(
                    Step::Upstream,
                    Outcome::Ok,
                    u32::try_from(upstream).unwrap(),
                ));
                r.upstream = Some(format!("{route}-api"));
                r.upstream_addr = Some("10.1.0.4:8443".into());
                r.upstream_first_byte_us = Some(upstream * 8 / 10);
                r.upstream_total_us = Some(upstream);
                r.bytes_out = 200 + rng.below(4000);
                let ok = if method == "POST" { 201 } else { 200 };
                (ok, None, t, base + upstream)
            };
        r.status = status;
        r.reason = reason.map(str::to_owned);
        r.trace = trace;
        r.total_us = total;
        if authed && r.trace.iter().any(|t| t.step == Step::Jwt) {
            r.auth_us = Some(150);
        }
        r.request_headers = mask_headers([
            ("host", "api.example.com"),
            ("authorization", &*format!("Bearer token-{i}")),
            ("accept", "application/json"),
        ]);
        r.response_headers = mask_headers([("content-type", "application/json")]);
        // Every ninth call's answer drew an inspector finding; every
        // eighteenth a second one.
        if i % 9 == 0 {
            r.findings
                .push(finding("TR-02", "token-content-type", "error"));
            if i % 18 == 0 {
                r.findings
                    .push(finding("ER-02", "error-code-unregistered", "warn"));
            }
        }
        out.push(r);
    }
    out.push(expired_call());
    out.push(hostile_call());
    out
}

/// The gateway whose state the Issuers view shows: `main` with two keys,
/// `partner` whose JWKS answers 503, and a refused reload.
async fn gateway() -> (Arc<Gateway>, DocServer, DocServer) {
    let k1 = TestKey::new("RS256", "k1");
    let k2 = TestKey::new("RS256", "k2");
    let (main_jwks, main_addr) = DocServer::start(TestKey::jwks(&[&k1, &k2]).to_string()).await;
    let (partner_jwks, partner_addr) = DocServer::start("{}".into()).await;
    partner_jwks.down(true);
    let echo = servers::echo().await;
    let config = DynamicConfig {
        issuers: vec![
            Issuer::new(
                "main",
                "https://login.example.com",
                KeySource::JwksUri(format!("http://{main_addr}/jwks.json")),
            ),
            Issuer::new(
                "partner",
                "https://idp.partner.example",
                KeySource::JwksUri(format!("http://{partner_addr}/jwks.json")),
            ),
        ],
        upstreams: vec![
            Upstream::new("orders-api", vec![format!("http://{echo}")]),
            Upstream::new(
                "payments-api",
                vec![format!("http://{echo}"), "http://10.1.0.9:8443".into()],
            ),
        ],
        routes: vec![
            Route::new("orders", PathMatch::Prefix("/orders".into()), "orders-api"),
            Route::new(
                "payments",
                PathMatch::Prefix("/payments".into()),
                "payments-api",
            ),
            Route::new("profile", PathMatch::Exact("/me".into()), "orders-api"),
            Route {
                rate_limit: Some(RateLimit {
                    key: RateKey::ClientIp,
                    requests: 2,
                    per: std::time::Duration::from_secs(60),
                    burst: 2,
                }),
                ..Route::new("public", PathMatch::Prefix("/public".into()), "orders-api")
            },
        ],
        introspectors: vec![],
        max_body_bytes: 1 << 20,
    };
    let gw = Arc::new(Gateway::new(config, Arc::new(FixedClock(NOW_S))).unwrap());
    let failures = gw.load_keys().await;
    assert_eq!(failures.len(), 1, "only partner fails: {failures:?}");
    gw.note_reload(
        "SIGHUP",
        Some("routes[4].upstream: no upstream named \"billing-api\"".into()),
    );
    (gw, main_jwks, partner_jwks)
}

async fn serve(admin: Admin) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(admin.serve(listener, std::future::pending()));
    base
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_headless_chromium() {
    let (ci, update_screenshot) = switches();
    if let Some(what) = missing() {
        assert!(
            !ci,
            "the dashboard browser test cannot run with CI=true: {what}"
        );
        loud(&format!(
            "\n*** SKIPPED the_dashboard_works_in_headless_chromium: {what} ***\n"
        ));
        return;
    }

    let dir = TempDir(
        std::env::temp_dir().join(format!("gatewise-admin-browser-{}", std::process::id())),
    );
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).unwrap();
    let db = dir.0.join("calls.db");
    let mut store = SqliteCallLog::open(&db).unwrap();
    let batch: Vec<KeyedRecord> = calls()
        .into_iter()
        .enumerate()
        .map(|(i, record)| KeyedRecord {
            key: RecordKey {
                writer: 1,
                seq: i64::try_from(i).unwrap(),
            },
            record,
        })
        .collect();
    let n = batch.len();
    store.append(&batch).unwrap();
    assert_eq!(store.count().unwrap(), n as u64);

    let (gw, _main_jwks, _partner_jwks) = gateway().await;
    // Three requests through the gateway: the public route's limit lets
    // two through (the Issuers view shows the counts).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw_addr = listener.local_addr().unwrap();
    let running = Running::spawn(
        listener,
        Arc::clone(&gw),
        StaticConfig::local(gw_addr),
        None,
    )
    .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = reqwest::get(format!("http://{gw_addr}/public/status"))
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429]);
    let clock = Arc::new(FixedClock(NOW_S));
    let open = Admin::new(clock.clone())
        .with_calls(Box::new(SqliteCallLog::open(&db).unwrap()))
        .with_gateway(Arc::clone(&gw))
        .with_writer(Arc::new(move || gatewise_store::Counters {
            queued: n as u64,
            written: n as u64,
            ..Default::default()
        }));
    let guarded = Admin::new(clock)
        .with_calls(Box::new(SqliteCallLog::open(&db).unwrap()))
        .with_gateway(gw)
        .with_token(TOKEN);
    let url = serve(open).await;
    let token_url = serve(guarded).await;

    let screenshots = workspace_dir().join("target/dashboard-screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    let config = json!({
        "url": url,
        "token_url": token_url,
        "token": TOKEN,
        "chromium": CHROMIUM,
        "screenshots": screenshots,
        "docs_screenshot": update_screenshot.then(|| workspace_dir().join("docs/dashboard.png")),
        "expired_call": "req-expired-demo",
        "hostile_call": "req-xss",
        "hostile_path": XSS_PATH,
        "user_token": USER_TOKEN,
        "user_token_fingerprint": token_fingerprint(USER_TOKEN),
        "profile_dir": dir.0.join("chromium-profile"),
    });
    let config_file = dir.0.join("config.json");
    std::fs::write(&config_file, config.to_string()).unwrap();

    let script = browser_dir().join("dashboard.mjs");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(&script)
            .arg(&config_file)
            .current_dir(browser_dir())
            .output()
    })
    .await
    .unwrap()
    .expect("running node tests/browser/dashboard.mjs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "dashboard.mjs failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("DASHBOARD OK"),
        "dashboard.mjs did not finish:\n{stdout}\n{stderr}"
    );
    running.stop().await.unwrap();
    for png in ["overview.png", "call-detail.png", "issuers.png"] {
        let meta = std::fs::metadata(screenshots.join(png)).unwrap();
        assert!(meta.len() > 10_000, "{png} is only {} bytes", meta.len());
    }
    loud(&format!(
        "dashboard screenshots in {}{}",
        screenshots.display(),
        if update_screenshot {
            " and docs/dashboard.png"
        } else {
            ""
        }
    ));
}
