//! Introspection (RFC 7662) for opaque tokens and the OAuth exchange
//! inspector, against real servers on 127.0.0.1.

use bytes::Bytes;
use gatewise_config::model::*;
use gatewise_gateway::server::Running;
use gatewise_gateway::{FixedClock, Gateway};
use gatewise_test_support::servers;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const NOW: u64 = 1_767_225_600;

fn upstream(name: &str, target: SocketAddr) -> Upstream {
    Upstream {
        connect_timeout: Duration::from_millis(500),
        first_byte_timeout: Duration::from_secs(2),
        total_timeout: Duration::from_secs(5),
        retries: 0,
        ..Upstream::new(name, vec![format!("http://{target}")])
    }
}

fn route(path: &str, upstream: &str) -> Route {
    Route {
        strip_prefix: true,
        ..Route::new(
            path.trim_start_matches('/'),
            PathMatch::Prefix(path.into()),
            upstream,
        )
    }
}

async fn start(config: DynamicConfig) -> (SocketAddr, Arc<Gateway>, Running) {
    let running = Running::local(config, Arc::new(FixedClock(NOW)))
        .await
        .unwrap();
    (running.addr, Arc::clone(&running.gateway), running)
}

/// An introspection endpoint that requires Basic `gateway:s3cr3t+/=` (form-
/// urlencoded before Base64) and knows three tokens.
async fn introspection_endpoint(calls: Arc<AtomicU64>) -> SocketAddr {
    servers::spawn(move |req: hyper::Request<hyper::body::Incoming>| {
        let calls = Arc::clone(&calls);
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            // base64("gateway:s3cr3t%2B%2F%3D")
            let want = "Basic Z2F0ZXdheTpzM2NyM3QlMkIlMkYlM0Q=";
            let auth_ok = req.headers().get("authorization").is_some_and(|v| v == want);
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
            let token = form.iter().find(|(k, _)| k == "token").map(|(_, v)| v.as_str()).unwrap_or("");
            let (status, doc) = if !auth_ok {
                (401, json!({"error": "invalid_client"}))
            } else {
                match token {
                    "opaque-good" => (200, json!({"active": true, "sub": "u-7", "client_id": "svc", "scope": "orders.read", "aud": "https://api.test", "exp": NOW + 600})),
                    "opaque-other-aud" => (200, json!({"active": true, "sub": "u-8", "scope": "orders.read", "aud": ["https://other.test"], "exp": NOW + 600})),
                    _ => (200, json!({"active": false})),
                }
            };
            hyper::Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(doc.to_string())))
                .unwrap()
        }
    })
    .await
}

#[tokio::test]
async fn opaque_tokens_are_introspected_cached_and_checked_per_route() {
    let calls = Arc::new(AtomicU64::new(0));
    let endpoint = introspection_endpoint(Arc::clone(&calls)).await;
    let echo = servers::echo().await;
    let dir = std::env::temp_dir().join(format!("gatewise-introspect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("secret");
    std::fs::write(&secret, "s3cr3t+/=\n").unwrap();
    let policy = |scopes: ScopeRule| IntrospectionPolicy {
        introspector: "as".into(),
        audiences: vec!["https://api.test".into()],
        scopes,
        token_sources: vec![],
        forward_claims: true,
        strip_authorization: true,
    };
    let config = DynamicConfig {
        issuers: vec![],
        upstreams: vec![upstream("echo", echo)],
        routes: vec![
            Route {
                introspection: Some(policy(ScopeRule::AllOf(vec!["orders.read".into()]))),
                ..route("/orders", "echo")
            },
            Route {
                introspection: Some(policy(ScopeRule::AllOf(vec!["orders.write".into()]))),
                ..route("/admin", "echo")
            },
        ],
        introspectors: vec![Introspector {
            name: "as".into(),
            endpoint: format!("http://{endpoint}/introspect"),
            client_id: "gateway".into(),
            client_secret: SecretRef::File(secret),
            auth: ClientAuth::Basic,
            cache_ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
        }],
        max_body_bytes: 1024,
    };
    let (gw, _, _running) = start(config).await;
    let http = reqwest::Client::new();
    let get = |path: &str, token: &str| {
        http.get(format!("http://{gw}{path}"))
            .header("authorization", format!("Bearer {token}"))
            .send()
    };
    let r = get("/orders/1", "opaque-good").await.unwrap();
    assert_eq!(r.status(), 200);
    let echoed: Value = r.json().await.unwrap();
    assert_eq!(echoed["headers"]["x-auth-subject"], "u-7");
    assert_eq!(echoed["headers"]["x-auth-client-id"], "svc");
    assert!(
        echoed["headers"].get("authorization").is_none(),
        "strip_authorization"
    );
    // Cached: the same token again makes no call.
    assert_eq!(get("/orders/2", "opaque-good").await.unwrap().status(), 200);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // The cached result does not open a stricter route: scopes are checked on hits.
    let r = get("/admin/x", "opaque-good").await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["reason"], "scope-missing");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Inactive and wrong-audience tokens.
    let r = get("/orders/1", "revoked").await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    assert_eq!(
        r.json::<Value>().await.unwrap()["reason"],
        "introspection-inactive"
    );
    let r = get("/orders/1", "opaque-other-aud").await.unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["reason"],
        "introspection-aud-mismatch"
    );
    // Negative caching: the inactive token is not asked about again.
    let before = calls.load(Ordering::SeqCst);
    assert_eq!(get("/orders/1", "revoked").await.unwrap().status(), 401);
    assert_eq!(calls.load(Ordering::SeqCst), before);
    // Single-flight: 20 concurrent requests with a new token, one call.
    let before = calls.load(Ordering::SeqCst);
    let all = futures_join(20, || get("/orders/9", "never-seen"));
    for r in all.await {
        assert_eq!(r.unwrap().status(), 401);
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        before + 1,
        "concurrent misses were not coalesced"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

async fn futures_join<F, Fut, T>(n: usize, f: F) -> Vec<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|_| tokio::spawn(f())).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn introspection_endpoint_down_is_503_not_401() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let echo = servers::echo().await;
    let dir = std::env::temp_dir().join(format!("gatewise-introspect-down-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("secret"), "x").unwrap();
    let config = DynamicConfig {
        issuers: vec![],
        upstreams: vec![upstream("echo", echo)],
        routes: vec![Route {
            introspection: Some(IntrospectionPolicy {
                introspector: "as".into(),
                audiences: vec![],
                scopes: ScopeRule::None,
                token_sources: vec![],
                forward_claims: true,
                strip_authorization: false,
            }),
            ..route("/orders", "echo")
        }],
        introspectors: vec![Introspector {
            name: "as".into(),
            endpoint: format!("http://{dead}/introspect"),
            client_id: "gateway".into(),
            client_secret: SecretRef::File(dir.join("secret")),
            auth: ClientAuth::Post,
            cache_ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(10),
            timeout: Duration::from_secs(1),
        }],
        max_body_bytes: 1024,
    };
    let (gw, _, _running) = start(config).await;
    let r = reqwest::Client::new()
        .get(format!("http://{gw}/orders/1"))
        .header("authorization", "Bearer some-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(
        r.json::<Value>().await.unwrap()["reason"],
        "introspection-unavailable"
    );
    // A missing secret file is refused when the gateway is built.
    let mut bad = DynamicConfig {
        issuers: vec![],
        upstreams: vec![],
        routes: vec![],
        introspectors: vec![],
        max_body_bytes: 1,
    };
    bad.introspectors.push(Introspector {
        name: "as".into(),
        endpoint: "http://127.0.0.1:1/x".into(),
        client_id: "g".into(),
        client_secret: SecretRef::Env("GATEWISE_NOT_SET_ANYWHERE".into()),
        auth: ClientAuth::Basic,
        cache_ttl: Duration::from_secs(1),
        negative_ttl: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
    });
    let e = Gateway::new(bad, Arc::new(FixedClock(NOW)))
        .unwrap_err()
        .to_string();
    assert!(e.contains("GATEWISE_NOT_SET_ANYWHERE is not set"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_inspector_judges_and_repairs_token_responses() {
    // An IdP that answers the GitHub way: form-encoded, expires_in as text.
    let idp = servers::spawn(|_req| async {
        hyper::Response::builder()
            .status(200)
            .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
            .body(Full::new(Bytes::from_static(
                b"access_token=gho_16C7e42F292c6912E7710c838347Ae178B4a&scope=repo%2Cgist&token_type=bearer&expires_in=28800",
            )))
            .unwrap()
    })
    .await;
    let config = DynamicConfig {
        issuers: vec![],
        upstreams: vec![upstream("idp", idp)],
        routes: vec![
            Route {
                inspect: Some(Inspect::Token),
                repair: true,
                ..route("/repaired", "idp")
            },
            Route {
                inspect: Some(Inspect::Token),
                ..route("/watched", "idp")
            },
        ],
        introspectors: vec![],
        max_body_bytes: 4096,
    };
    let (gw, gateway, _running) = start(config).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("http://{gw}/repaired/login/oauth/access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(
        r.headers()["x-gatewise-repaired"],
        "form-to-json, expires-in-number"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["expires_in"], 28800);
    assert_eq!(v["token_type"], "bearer");

    // Watched only: the body passes unchanged, the finding is counted.
    let r = http
        .post(format!("http://{gw}/watched/token"))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/x-www-form-urlencoded")
    );
    assert!(r.text().await.unwrap().starts_with("access_token=gho_"));
    let seen = gateway.inspector().findings();
    assert!(
        seen.iter()
            .any(|(code, n)| *code == "token-not-json" && *n == 2),
        "{seen:?}"
    );
    assert_eq!(
        gateway.inspector().repairs(),
        [("expires-in-number", 1), ("form-to-json", 1)]
    );
}
