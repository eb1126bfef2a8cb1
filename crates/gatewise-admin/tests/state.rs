//! `/api/v1/state` and `/metrics` count what the gateway's rate limits and
//! caches did: a real gateway on 127.0.0.1 (a JWKS server, an
//! introspection endpoint, an echo upstream), a few requests through it,
//! then the admin API's answer.

use gatewise_admin::Admin;
use gatewise_config::model::*;
use gatewise_core::clock::FixedClock;
use gatewise_gateway::Gateway;
use gatewise_gateway::server::Running;
use gatewise_test_support::mint::TestKey;
use gatewise_test_support::servers::{self, DocServer};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// 2026-01-01T00:00:00Z.
const NOW: u64 = 1_767_225_600;
const ISS: &str = "https://as.test";
const AUD: &str = "https://api.test";

/// A directory removed on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn jwt_policy() -> JwtPolicy {
    JwtPolicy {
        issuers: vec!["main".into()],
        audiences: vec![AUD.into()],
        require_at_jwt: false,
        scopes: ScopeRule::None,
        claims: vec![],
        token_sources: vec![],
        forward_claims: true,
        strip_authorization: false,
    }
}

fn token(key: &TestKey, client: &str) -> String {
    key.sign(
        json!({}),
        json!({"iss": ISS, "sub": format!("user-of-{client}"), "aud": AUD, "client_id": client,
               "iat": NOW - 10, "exp": NOW + 600}),
    )
}

/// The gateway's part of `/api/v1/state`.
async fn state(http: &reqwest::Client, admin: &str) -> Value {
    let r = http
        .get(format!("{admin}/api/v1/state"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["gateway"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_caches_count_what_requests_did() {
    let key = TestKey::new("RS256", "k1");
    let (_jwks, jwks_addr) = DocServer::start(TestKey::jwks(&[&key]).to_string()).await;
    let (introspection, introspection_addr) = DocServer::start(
        json!({"active": true, "sub": "u-7", "client_id": "svc", "scope": "read", "exp": NOW + 600})
            .to_string(),
    )
    .await;
    let echo = servers::echo().await;
    let dir =
        TempDir(std::env::temp_dir().join(format!("gatewise-admin-state-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let secret = dir.0.join("introspection-secret");
    std::fs::write(&secret, "not-a-real-secret\n").unwrap();

    let config = DynamicConfig {
        issuers: vec![Issuer::new(
            "main",
            ISS,
            KeySource::JwksUri(format!("http://{jwks_addr}/jwks.json")),
        )],
        upstreams: vec![Upstream::new("echo", vec![format!("http://{echo}")])],
        routes: vec![
            Route {
                jwt: Some(jwt_policy()),
                rate_limit: Some(RateLimit {
                    key: RateKey::ClientId,
                    requests: 3,
                    per: Duration::from_secs(3600),
                    burst: 3,
                }),
                ..Route::new("orders", PathMatch::Prefix("/orders".into()), "echo")
            },
            Route {
                introspection: Some(IntrospectionPolicy {
                    introspector: "as".into(),
                    audiences: vec![],
                    scopes: ScopeRule::None,
                    token_sources: vec![],
                    forward_claims: true,
                    strip_authorization: false,
                }),
                ..Route::new("opaque", PathMatch::Prefix("/opaque".into()), "echo")
            },
            Route::new("public", PathMatch::Prefix("/public".into()), "echo"),
        ],
        introspectors: vec![Introspector {
            name: "as".into(),
            endpoint: format!("http://{introspection_addr}/introspect"),
            client_id: "gateway".into(),
            client_secret: SecretRef::File(secret),
            auth: ClientAuth::Basic,
            cache_ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
        }],
        max_body_bytes: 1 << 20,
    };
    let clock = Arc::new(FixedClock(NOW));
    let gw = Gateway::new(config, clock.clone()).unwrap();
    assert!(gw.load_keys().await.is_empty());
    let running = Running::local_gateway(gw).await.unwrap();
    let admin = Admin::new(clock).with_gateway(Arc::clone(&running.gateway));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(admin.serve(listener, std::future::pending()));
    let http = reqwest::Client::new();

    // Before any request: the policy, and nothing counted.
    let before = state(&http, &admin_url).await;
    assert_eq!(
        before["rate_limits"],
        json!([{"route": "orders", "key": "client_id", "requests": 3, "per_ms": 3_600_000,
                "burst": 3, "allowed": 0, "limited": 0, "keys": 0}])
    );
    assert_eq!(
        before["caches"],
        json!([
            {"cache": "verified_tokens", "name": "", "entries": 0, "capacity": 20_000, "hits": 0, "misses": 0},
            {"cache": "introspection", "name": "as", "entries": 0, "capacity": 100_000, "hits": 0, "misses": 0},
        ])
    );

    let gw_url = format!("http://{}", running.addr);
    let get = |path: &str, token: &str| {
        http.get(format!("{gw_url}{path}"))
            .bearer_auth(token)
            .send()
    };
    // Client a: five calls, the first verifies the signature, four are
    // cache hits; the limit lets three through. Client b: one call.
    let a = token(&key, "client-a");
    let mut statuses = Vec::new();
    for i in 0..5 {
        statuses.push(
            get(&format!("/orders/{i}"), &a)
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    let b = token(&key, "client-b");
    assert_eq!(get("/orders/9", &b).await.unwrap().status(), 200);
    // An opaque token three times: one introspection call, two hits.
    for _ in 0..3 {
        assert_eq!(
            get("/opaque/1", "opaque-token-1").await.unwrap().status(),
            200
        );
    }
    assert_eq!(introspection.hits(), 1);
    // A route without a limit or a token policy counts nowhere.
    assert_eq!(get("/public/x", "ignored").await.unwrap().status(), 200);

    let after = state(&http, &admin_url).await;
    assert_eq!(
        after["rate_limits"],
        json!([{"route": "orders", "key": "client_id", "requests": 3, "per_ms": 3_600_000,
                "burst": 3, "allowed": 4, "limited": 2, "keys": 2}])
    );
    assert_eq!(
        after["caches"],
        json!([
            {"cache": "verified_tokens", "name": "", "entries": 2, "capacity": 20_000, "hits": 4, "misses": 2},
            {"cache": "introspection", "name": "as", "entries": 1, "capacity": 100_000, "hits": 2, "misses": 1},
        ])
    );
    // The gateway-wide counters agree.
    assert_eq!(after["counters"]["rate_limited"], 2);
    assert_eq!(after["counters"]["token_cache_hits"], 4);

    // The same figures in Prometheus.
    let metrics = http
        .get(format!("{admin_url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "gatewise_rate_limit_decisions_total{route=\"orders\",decision=\"allowed\"} 4",
        "gatewise_rate_limit_decisions_total{route=\"orders\",decision=\"limited\"} 2",
        "gatewise_rate_limit_keys{route=\"orders\"} 2",
        "gatewise_cache_lookups_total{cache=\"verified_tokens\",name=\"\",result=\"hit\"} 4",
        "gatewise_cache_lookups_total{cache=\"verified_tokens\",name=\"\",result=\"miss\"} 2",
        "gatewise_cache_lookups_total{cache=\"introspection\",name=\"as\",result=\"hit\"} 2",
        "gatewise_cache_lookups_total{cache=\"introspection\",name=\"as\",result=\"miss\"} 1",
        "gatewise_cache_entries{cache=\"verified_tokens\",name=\"\"} 2",
        "gatewise_cache_entries{cache=\"introspection\",name=\"as\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
    assert!(metrics.trim_end().ends_with("# EOF"));
    running.stop().await.unwrap();
}
