//! Every request leaves one call record, with its decision trace and no
//! secret in clear: a real echo upstream, a real JWKS server, the gateway,
//! a real client, and (last test) the real SQLite store behind the writer.

use gatewise_config::model::*;
use gatewise_core::calllog::{CallRecord, Outcome, Step, token_fingerprint};
use gatewise_gateway::calls::{CallLogging, CallSink};
use gatewise_gateway::server::Running;
use gatewise_gateway::{FixedClock, Gateway};
use gatewise_test_support::mint::TestKey;
use gatewise_test_support::servers::{self, DocServer};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const NOW: u64 = 1_767_225_600;
const ISS: &str = "https://as.test";
const AUD: &str = "https://api.test";

/// Collects records in memory.
#[derive(Default)]
struct Collect(Mutex<Vec<CallRecord>>);

impl CallSink for Collect {
    fn record(&self, record: &CallRecord) {
        let record = record.clone();
        self.0.lock().unwrap().push(record);
    }
}

impl Collect {
    /// Waits (bounded) until `n` records arrived: a record is handed over
    /// when the response body has been sent, which may be just after the
    /// client has read it.
    async fn wait_for(&self, n: usize) -> Vec<CallRecord> {
        for _ in 0..200 {
            if self.0.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn config(jwks: SocketAddr, echo: SocketAddr, dead: SocketAddr) -> DynamicConfig {
    let jwt = JwtPolicy {
        issuers: vec!["main".into()],
        audiences: vec![AUD.into()],
        require_at_jwt: false,
        scopes: ScopeRule::AllOf(vec!["orders.read".into()]),
        claims: vec![],
        token_sources: vec![],
        forward_claims: true,
        strip_authorization: false,
    };
    let fast = |name: &str, target: SocketAddr| Upstream {
        connect_timeout: Duration::from_millis(500),
        first_byte_timeout: Duration::from_secs(2),
        total_timeout: Duration::from_secs(5),
        retries: 0,
        ..Upstream::new(name, vec![format!("http://{target}")])
    };
    DynamicConfig {
        issuers: vec![Issuer::new(
            "main",
            ISS,
            KeySource::JwksUri(format!("http://{jwks}/jwks.json")),
        )],
        upstreams: vec![fast("echo", echo), fast("dead", dead)],
        routes: vec![
            Route {
                jwt: Some(jwt.clone()),
                ..Route::new("orders", PathMatch::Prefix("/orders".into()), "echo")
            },
            Route {
                strip_prefix: true,
                ..Route::new("public", PathMatch::Prefix("/public".into()), "echo")
            },
            Route {
                jwt: Some(JwtPolicy {
                    token_sources: vec![TokenSource::Cookie("at".into())],
                    ..jwt
                }),
                rate_limit: Some(RateLimit {
                    key: RateKey::Subject,
                    requests: 1,
                    per: Duration::from_secs(3600),
                    burst: 1,
                }),
                ..Route::new("cookie", PathMatch::Prefix("/cookie".into()), "echo")
            },
            Route::new("dead", PathMatch::Exact("/dead".into()), "dead"),
            Route {
                rate_limit: Some(RateLimit {
                    key: RateKey::ClientIp,
                    requests: 1,
                    per: Duration::from_secs(3600),
                    burst: 1,
                }),
                ..Route::new("limited", PathMatch::Exact("/limited".into()), "echo")
            },
        ],
        introspectors: vec![],
        max_body_bytes: 1024,
    }
}

struct World {
    gw: SocketAddr,
    running: Running,
    _jwks: DocServer,
    key: TestKey,
    http: reqwest::Client,
}

async fn world(logging: CallLogging) -> World {
    let key = TestKey::new("RS256", "k1");
    let (jwks, jwks_addr) = DocServer::start(TestKey::jwks(&[&key]).to_string()).await;
    let echo = servers::echo().await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let gateway = Gateway::new(config(jwks_addr, echo, dead), Arc::new(FixedClock(NOW)))
        .unwrap()
        .with_call_log(logging);
    let running = Running::local_gateway(gateway).await.unwrap();
    assert!(running.gateway.load_keys().await.is_empty());
    World {
        gw: running.addr,
        running,
        _jwks: jwks,
        key,
        http: reqwest::Client::new(),
    }
}

impl World {
    fn token(&self, exp: u64) -> String {
        self.key.sign(
            json!({}),
            json!({"iss": ISS, "sub": "user-1", "aud": AUD, "client_id": "c1",
                   "iat": NOW - 10, "exp": exp, "scope": "orders.read profile"}),
        )
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (u16, usize) {
        let mut req = self
            .http
            .get(format!("http://{}{path}", self.gw))
            .header("cookie", "session=cookie-secret-value; theme=dark");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap();
        (status, body.len())
    }
}

fn steps(r: &CallRecord) -> Vec<(String, Outcome, Option<String>)> {
    r.trace
        .iter()
        .map(|s| (s.step.as_str().to_owned(), s.outcome, s.reason.clone()))
        .collect()
}

#[tokio::test]
async fn an_allowed_call_is_recorded_with_its_principal_trace_and_masked_headers() {
    let sink = Arc::new(Collect::default());
    let w = world(CallLogging::new(sink.clone(), false)).await;
    let token = w.token(NOW + 600);
    let (status, len) = w
        .get("/orders/42?access_token=leaky&page=2", Some(&token))
        .await;
    assert_eq!(status, 200);
    let records = sink.wait_for(1).await;
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!(r.status, 200);
    assert_eq!(r.method, "GET");
    // The query string is not kept by default.
    assert_eq!(r.path, "/orders/42");
    assert_eq!(r.route.as_deref(), Some("orders"));
    assert_eq!(r.upstream.as_deref(), Some("echo"));
    assert!(
        r.upstream_addr
            .as_deref()
            .is_some_and(|a| a.starts_with("127.0.0.1:"))
    );
    assert_eq!(r.issuer.as_deref(), Some("main"));
    assert_eq!(r.kid.as_deref(), Some("k1"));
    assert_eq!(r.client_id.as_deref(), Some("c1"));
    assert_eq!(r.sub.as_deref(), Some("user-1"));
    assert_eq!(r.scopes, ["orders.read", "profile"]);
    assert_eq!(r.token_fingerprint, Some(token_fingerprint(&token)));
    assert_eq!(r.bytes_out, len as u64);
    assert!(r.bytes_out > 100);
    assert_eq!(r.start_ms, NOW * 1000);
    assert!(r.auth_us.is_some() && r.upstream_first_byte_us.is_some());
    assert!(r.upstream_total_us.is_some());
    assert!(r.total_us >= r.upstream_total_us.unwrap_or(0));
    assert_eq!(r.client_ip, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(r.reason, None);
    assert_eq!(
        steps(r),
        [
            ("route".into(), Outcome::Ok, None),
            ("jwt".into(), Outcome::Ok, None),
            ("upstream".into(), Outcome::Ok, None),
        ]
    );
    // Secrets: the token, the cookie value and the query secret appear
    // nowhere in the record; the header names and the scheme do.
    let text = serde_json::to_string(r).unwrap();
    for secret in [token.as_str(), "cookie-secret-value", "leaky"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    let auth = r
        .request_headers
        .get("authorization")
        .map(str::to_owned)
        .unwrap();
    assert!(auth.starts_with("Bearer «"), "{auth}");
    assert!(auth.contains(&token_fingerprint(&token)), "{auth}");
    assert!(
        r.response_headers
            .iter()
            .any(|(n, v)| n == "content-type" && v == "application/json")
    );
}

#[tokio::test]
async fn refusals_are_recorded_with_the_step_and_reason_that_refused() {
    let sink = Arc::new(Collect::default());
    let w = world(CallLogging::new(sink.clone(), true)).await;
    let expired = w.token(NOW - 3600);
    assert_eq!(w.get("/orders/1", Some(&expired)).await.0, 401);
    assert_eq!(w.get("/orders/1", None).await.0, 401);
    assert_eq!(w.get("/nowhere", None).await.0, 404);
    assert_eq!(w.get("/dead", None).await.0, 502);
    assert_eq!(w.get("/limited", None).await.0, 200);
    assert_eq!(w.get("/limited", None).await.0, 429);
    assert_eq!(w.get("/public/x?code=abc&page=2", None).await.0, 200);
    let records = sink.wait_for(7).await;
    assert_eq!(records.len(), 7, "{records:#?}");
    let by = |i: usize| &records[i];

    let r = by(0);
    assert_eq!((r.status, r.reason.as_deref()), (401, Some("jwt-expired")));
    assert_eq!(
        steps(r).last().cloned(),
        Some(("jwt".into(), Outcome::Refused, Some("jwt-expired".into())))
    );
    assert!(r.trace.last().unwrap().detail.is_some());
    // The refused token is identified, never kept.
    assert_eq!(r.token_fingerprint, Some(token_fingerprint(&expired)));
    assert!(!serde_json::to_string(r).unwrap().contains(&expired));
    assert!(r.upstream.is_none() && r.bytes_out > 0);

    let r = by(1);
    assert_eq!(r.status, 401);
    assert_eq!(r.token_fingerprint, None);
    assert!(
        r.response_headers
            .iter()
            .any(|(n, v)| n == "www-authenticate" && v.starts_with("Bearer"))
    );

    let r = by(2);
    assert_eq!(
        (r.status, r.reason.as_deref()),
        (404, Some("route-not-found"))
    );
    assert_eq!(r.route, None);
    assert_eq!(
        steps(r),
        [(
            "route".into(),
            Outcome::Refused,
            Some("route-not-found".into())
        )]
    );

    let r = by(3);
    assert_eq!(
        (r.status, r.reason.as_deref()),
        (502, Some("upstream-unavailable"))
    );
    let last = r.trace.last().unwrap();
    assert_eq!(last.step, Step::Upstream);
    assert_eq!(last.outcome, Outcome::Error);
    assert!(
        last.detail
            .as_deref()
            .is_some_and(|d| d.contains("127.0.0.1:")),
        "{last:?}"
    );

    assert_eq!(by(4).status, 200);
    let r = by(5);
    assert_eq!((r.status, r.reason.as_deref()), (429, Some("rate-limited")));
    assert_eq!(
        steps(r).last().cloned(),
        Some((
            "rate_limit".into(),
            Outcome::Refused,
            Some("rate-limited".into())
        ))
    );

    // keep_query: the query stays, secret parameters masked.
    let r = by(6);
    assert!(r.path.starts_with("/public/x?code=«"), "{}", r.path);
    assert!(r.path.ends_with("&page=2"), "{}", r.path);
    assert!(!r.path.contains("code=abc"));
}

#[tokio::test]
async fn a_client_that_leaves_before_the_answer_still_leaves_a_record() {
    let sink = Arc::new(Collect::default());
    let w = world(CallLogging::new(sink.clone(), false)).await;
    // The echo upstream waits before answering; the client gives up first.
    let short = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let r = short
        .get(format!("http://{}/public/sleep/1500", w.gw))
        .send()
        .await;
    assert!(r.is_err());
    // hyper drops the request's handling when the connection closes; the
    // record is still written, as nginx's 499.
    let records = sink.wait_for(1).await;
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!(r.route.as_deref(), Some("public"));
    assert_eq!(
        (r.status, r.reason.as_deref()),
        (499, Some("client-closed"))
    );
    assert_eq!(r.upstream.as_deref(), Some("echo"));
    assert_eq!(
        r.trace.last().map(|s| s.step.as_str()),
        Some("client_closed")
    );
}

#[tokio::test]
async fn records_reach_sqlite_through_the_writer_without_secrets() {
    use gatewise_store::{CallLog as _, CallQuery, SqliteCallLog, Writer, WriterConfig};
    let dir = std::env::temp_dir().join(format!("gatewise-calllog-gw-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("calls.db");
    let store = SqliteCallLog::open(&db).unwrap();
    let (sender, handle) = Writer::start(
        store,
        WriterConfig::new(dir.join("spool"), Arc::new(FixedClock(NOW))),
    )
    .unwrap();
    struct Sender(gatewise_store::RecordSender);
    impl CallSink for Sender {
        fn record(&self, r: &CallRecord) {
            self.0.send(r);
        }
    }
    let w = world(CallLogging::new(Arc::new(Sender(sender)), false)).await;
    let token = w.token(NOW + 600);
    let n = 25;
    for i in 0..n {
        let t = if i % 5 == 0 {
            None
        } else {
            Some(token.as_str())
        };
        w.get(&format!("/orders/{i}"), t).await;
    }
    // Records are handed over as bodies end; give the last ones a moment.
    for _ in 0..200 {
        if handle.counters().queued >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let counters = tokio::task::spawn_blocking(move || handle.shutdown().unwrap())
        .await
        .unwrap();
    assert_eq!(counters.stored(), n, "{counters:?}");
    let mut reader = SqliteCallLog::open(&db).unwrap();
    let page = reader
        .query(&CallQuery {
            limit: 100,
            ..CallQuery::default()
        })
        .unwrap();
    assert_eq!(page.calls.len() as u64, n);
    let refused = page.calls.iter().filter(|c| c.record.status == 401).count();
    assert_eq!(refused, 5);
    // Not the token, nor its base64 payload, anywhere in the file (WAL
    // included).
    let payload = token.split('.').nth(1).unwrap().to_owned();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(&token), "token in {}", path.display());
            assert!(!text.contains(&payload), "payload in {}", path.display());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_trace_id_is_shared_by_the_record_and_the_upstream() {
    let sink = Arc::new(Collect::default());
    let w = world(CallLogging::new(sink.clone(), false)).await;
    let seen = |body: serde_json::Value| {
        body["headers"]["traceparent"]
            .as_str()
            .unwrap()
            .split('-')
            .nth(1)
            .unwrap()
            .to_owned()
    };
    // No traceparent: the gateway starts a trace.
    let body: serde_json::Value = w
        .http
        .get(format!("http://{}/public/x", w.gw))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let started = seen(body);
    // A client's trace is continued.
    let mine = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let body: serde_json::Value = w
        .http
        .get(format!("http://{}/public/y", w.gw))
        .header("traceparent", mine)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen(body), "4bf92f3577b34da6a3ce929d0e0e4736");
    let records = sink.wait_for(2).await;
    assert_eq!(records[0].trace_id.as_deref(), Some(started.as_str()));
    assert_eq!(
        records[1].trace_id.as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    assert_ne!(started, "4bf92f3577b34da6a3ce929d0e0e4736");
    // The recorded headers are the client's: the trace the gateway started
    // is in the record's fields, not in a `traceparent` the client never
    // sent; a client's own `traceparent` is kept as it came. The request id
    // the gateway adds to the response is a field too, not a header.
    assert_eq!(records[0].request_headers.get("traceparent"), None);
    assert_eq!(records[1].request_headers.get("traceparent"), Some(mine));
    assert_eq!(
        records[1].parent_span_id.as_deref(),
        Some("00f067aa0ba902b7")
    );
    for r in &records {
        assert_eq!(r.response_headers.get("x-request-id"), None);
        assert!(!r.request_id.is_empty());
    }
}

#[tokio::test]
async fn a_logged_token_keys_the_cache_and_its_principal_is_recorded_on_every_path() {
    use std::sync::atomic::Ordering::Relaxed;
    let sink = Arc::new(Collect::default());
    let w = world(CallLogging::new(sink.clone(), false)).await;
    let counters = w.running.gateway.counters();
    // The call log's digest of the bearer token is the cache key: the
    // second request is a cache hit, another token is not.
    let token = w.token(NOW + 600);
    let other = w.token(NOW + 601);
    for t in [&token, &token, &other] {
        assert_eq!(w.get("/orders/1", Some(t)).await.0, 200);
    }
    assert_eq!(counters.signature_checks.load(Relaxed), 2);
    assert_eq!(counters.token_cache_hits.load(Relaxed), 1);
    let records = sink.wait_for(3).await;
    let fingerprints: Vec<_> = records
        .iter()
        .map(|r| r.token_fingerprint.clone())
        .collect();
    assert_eq!(
        fingerprints,
        [
            Some(token_fingerprint(&token)),
            Some(token_fingerprint(&token)),
            Some(token_fingerprint(&other)),
        ]
    );

    // A token from a cookie: no `Authorization` header, so the record's
    // fingerprint comes from the principal (same digits); the principal is
    // recorded for an allowed call and for one refused after it (the
    // route's rate limit).
    let cookie = |t: &str| {
        w.http
            .get(format!("http://{}/cookie/1", w.gw))
            .header("cookie", format!("at={t}"))
            .send()
    };
    assert_eq!(cookie(&token).await.unwrap().status(), 200);
    assert_eq!(cookie(&token).await.unwrap().status(), 429);
    let records = sink.wait_for(2).await;
    assert_eq!(records.len(), 2, "{records:#?}");
    for r in &records {
        assert_eq!(r.token_fingerprint, Some(token_fingerprint(&token)));
        assert_eq!(r.issuer.as_deref(), Some("main"));
        assert_eq!(r.sub.as_deref(), Some("user-1"));
        assert_eq!(r.client_id.as_deref(), Some("c1"));
        assert_eq!(r.kid.as_deref(), Some("k1"));
        assert_eq!(r.scopes, ["orders.read", "profile"]);
        assert!(!serde_json::to_string(r).unwrap().contains(&token));
    }
    assert_eq!(
        (records[1].status, records[1].reason.as_deref()),
        (429, Some("rate-limited"))
    );
}
