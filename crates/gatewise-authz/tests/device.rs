//! The device authorization grant (RFC 8628) played over real HTTP (the
//! user through the verification form), `private_key_jwt` client
//! authentication (RFC 7523) and the UserInfo endpoint (OpenID Connect Core
//! §5.3). The server's clock is a parameter the tests move, so `slow_down`
//! and expiry are tested without waiting.

#[macro_use]
mod support;

use support::Backend;

use gatewise_authz::AuthzConfig;
use gatewise_authz::clients::ClientSpec;
use gatewise_core::capture;
use gatewise_core::clock::Clock;
use gatewise_core::diagnose::{self, Context, Expect, device};
use gatewise_core::finding::Severity;
use gatewise_test_support::mint::TestKey;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const NOW: u64 = 1_767_225_600;
const DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A clock the test moves.
struct Steps(AtomicU64);

impl Clock for Steps {
    fn unix_now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

struct S {
    base: String,
    clock: Arc<Steps>,
    http: reqwest::Client,
}

impl S {
    fn advance(&self, secs: u64) {
        self.clock.0.fetch_add(secs, Ordering::SeqCst);
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// A device authorization for the public client `tv`.
    async fn authorize_device(&self, scope: &str) -> Value {
        let r = self
            .post(
                "/device_authorization",
                &[("client_id", "tv"), ("scope", scope)],
            )
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let body = r.bytes().await.unwrap();
        // The doctor's RFC 8628 judge finds nothing to say about it.
        let judged = device::judge_authorization(200, &body);
        assert!(
            judged.findings.is_empty(),
            "the doctor found problems in our device authorization response: {:#?}",
            judged.findings
        );
        assert!(judged.authorization.is_some());
        serde_json::from_slice(&body).unwrap()
    }

    async fn poll(&self, device_code: &str) -> reqwest::Response {
        self.post(
            "/token",
            &[
                ("grant_type", DEVICE),
                ("device_code", device_code),
                ("client_id", "tv"),
            ],
        )
        .await
    }

    /// The user's turn at the verification page.
    async fn decide(&self, user_code: &str, password: &str, decision: &str) -> reqwest::Response {
        self.post(
            "/device",
            &[
                ("user_code", user_code),
                ("username", "alice"),
                ("password", password),
                ("decision", decision),
            ],
        )
        .await
    }
}

async fn start(backend: &Backend, extra: Vec<ClientSpec>) -> S {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = AuthzConfig::dev(&base);
    config.clients.push(ClientSpec {
        public: true,
        grant_types: vec![DEVICE.into(), "refresh_token".into()],
        ..ClientSpec::machine("tv", "", &["orders.read"], &["https://api.test"])
    });
    config.clients.push(ClientSpec {
        grant_types: vec!["client_credentials".into()],
        ..ClientSpec::machine("batch", "batch-secret", &["orders.read"], &[])
    });
    config.clients.extend(extra);
    let clock = Arc::new(Steps(AtomicU64::new(NOW)));
    let authz = backend.authz(config, clock.clone()).await;
    let router = Arc::clone(&authz).router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    S {
        base,
        clock,
        http: reqwest::Client::new(),
    }
}

/// The doctor's verdict on a token endpoint response: no error-level finding.
async fn judged_ok(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status();
    let mut raw = format!("HTTP/1.1 {} X\r\n", status.as_u16());
    for (n, v) in resp.headers() {
        raw.push_str(&format!("{n}: {}\r\n", v.to_str().unwrap()));
    }
    raw.push_str("\r\n");
    let body = resp.bytes().await.unwrap();
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(&body);
    let findings = diagnose::response(&capture::parse(&bytes), &Context::new(Expect::Token));
    let errors: Vec<String> = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| format!("{} {}: {}", f.rule, f.code, f.title))
        .collect();
    assert!(errors.is_empty(), "errors in our own response: {errors:#?}");
    (
        status.as_u16(),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

async fn device_flow_with_slow_down_approval_and_single_use(backend: &Backend) {
    let s = start(backend, Vec::new()).await;
    let meta: Value = s
        .http
        .get(format!("{}/.well-known/openid-configuration", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        meta["device_authorization_endpoint"],
        format!("{}/device_authorization", s.base)
    );
    assert!(
        meta["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(DEVICE))
    );
    let d = s.authorize_device("openid profile email orders.read").await;
    let device_code = d["device_code"].as_str().unwrap();
    let user_code = d["user_code"].as_str().unwrap();
    // RFC 8628 §6.1: 8 characters of a readable alphabet, shown in two groups.
    assert_eq!(user_code.len(), 9, "{user_code}");
    assert!(
        user_code
            .replace('-', "")
            .bytes()
            .all(|b| b"BCDFGHJKLMNPQRSTVWXZ".contains(&b))
    );
    assert_eq!(d["verification_uri"], format!("{}/device", s.base));
    assert_eq!(d["interval"], 5);
    assert_eq!(d["expires_in"], 600);

    // Pending, then too fast: slow_down, and 5 s more from then on.
    let (st, e) = judged_ok(s.poll(device_code).await).await;
    assert_eq!(
        (st, e["error"].as_str()),
        (400, Some("authorization_pending"))
    );
    let (_, e) = judged_ok(s.poll(device_code).await).await;
    assert_eq!(e["error"], "slow_down");
    s.advance(5);
    let (_, e) = judged_ok(s.poll(device_code).await).await;
    assert_eq!(e["error"], "slow_down", "the interval is 10 s now");
    s.advance(15);
    let (_, e) = judged_ok(s.poll(device_code).await).await;
    assert_eq!(e["error"], "authorization_pending");

    // The user: the page from verification_uri_complete shows the request.
    let page = s
        .http
        .get(d["verification_uri_complete"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("tv") && html.contains("orders.read"),
        "{html}"
    );
    assert!(!html.contains("<script"));
    let r = s
        .decide(&user_code.to_lowercase(), "wrong", "approve")
        .await;
    assert_eq!(r.status(), 401);
    // Typed in lower case without the dash: the same code.
    let r = s
        .decide(
            &user_code.replace('-', "").to_lowercase(),
            "wonderland",
            "approve",
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Device connected"));
    // Decided once.
    let r = s.decide(user_code, "wonderland", "deny").await;
    assert_eq!(r.status(), 400);

    s.advance(20);
    let (st, t) = judged_ok(s.poll(device_code).await).await;
    assert_eq!(st, 200, "{t}");
    assert_eq!(t["token_type"], "Bearer");
    assert!(t["id_token"].is_string(), "openid was granted: {t}");
    assert!(t["refresh_token"].is_string(), "tv may refresh: {t}");
    let access = t["access_token"].as_str().unwrap().to_owned();
    // Single use.
    let (_, e) = judged_ok(s.poll(device_code).await).await;
    assert_eq!(e["error"], "invalid_grant");
    // Another client cannot redeem it.
    let d2 = s.authorize_device("orders.read").await;
    let r = s
        .post(
            "/token",
            &[
                ("grant_type", DEVICE),
                ("device_code", d2["device_code"].as_str().unwrap()),
                ("client_id", "demo-native"),
            ],
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");

    // Neither code is in the SQLite files in clear (RFC 8628 §5.2: the
    // device code is a bearer credential).
    if let Backend::Sqlite(dir) = backend {
        let mut bytes = Vec::new();
        for e in std::fs::read_dir(dir.path()).unwrap() {
            bytes.extend(std::fs::read(e.unwrap().path()).unwrap());
        }
        assert!(bytes.len() > 4096);
        let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        for secret in [device_code, &user_code.replace('-', ""), user_code] {
            assert!(!contains(secret.as_bytes()), "a code in clear: {secret}");
        }
    }

    // UserInfo with the device flow's access token.
    let r = s
        .http
        .get(format!("{}/userinfo", s.base))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let u: Value = r.json().await.unwrap();
    assert_eq!(
        u,
        json!({"sub": "alice", "name": "Alice Liddell", "email": "alice@example.test"})
    );
}

async fn denied_expired_and_unauthorized_clients(backend: &Backend) {
    let s = start(backend, Vec::new()).await;
    let d = s.authorize_device("orders.read").await;
    let r = s
        .decide(d["user_code"].as_str().unwrap(), "wonderland", "deny")
        .await;
    assert_eq!(r.status(), 200);
    let (_, e) = judged_ok(s.poll(d["device_code"].as_str().unwrap()).await).await;
    assert_eq!(e["error"], "access_denied");

    let d = s.authorize_device("orders.read").await;
    s.advance(600);
    let (_, e) = judged_ok(s.poll(d["device_code"].as_str().unwrap()).await).await;
    assert_eq!(e["error"], "expired_token");
    // The page refuses the expired code too.
    let r = s
        .http
        .get(format!("{}/device", s.base))
        .query(&[("user_code", d["user_code"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // A client whose grant_types lack the device grant.
    let r = s
        .post(
            "/device_authorization",
            &[("client_id", "batch"), ("client_secret", "batch-secret")],
        )
        .await;
    assert_eq!(r.status(), 400);
    let body = r.bytes().await.unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["error"],
        "unauthorized_client"
    );
    assert_eq!(
        device::judge_authorization(400, &body).findings[0].code,
        "device-authorization-refused"
    );
    // Unknown scope; unauthenticated.
    let r = s
        .post(
            "/device_authorization",
            &[("client_id", "tv"), ("scope", "orders.admin")],
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_scope");
    let r = s.post("/device_authorization", &[("scope", "x")]).await;
    assert_eq!(r.status(), 401);
}

async fn userinfo_refuses_what_is_not_a_user_token(backend: &Backend) {
    let s = start(backend, Vec::new()).await;
    let url = format!("{}/userinfo", s.base);
    let r = s.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer realm=\"gatewise-authz\""
    );
    for token in ["garbage", "a.b.c"] {
        let r = s.http.get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(
            challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""),
            "{challenge}"
        );
    }
    // A client's own token (no user, no openid): insufficient_scope.
    let t: Value = s
        .post(
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "batch"),
                ("client_secret", "batch-secret"),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    let r = s
        .http
        .post(&url)
        .form(&[("access_token", t["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    // A user token with openid but neither profile nor email: sub only, by POST.
    let d = s.authorize_device("openid").await;
    s.decide(d["user_code"].as_str().unwrap(), "wonderland", "approve")
        .await;
    let t: Value = s
        .poll(d["device_code"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let access = t["access_token"].as_str().unwrap();
    let u: Value = s
        .http
        .post(&url)
        .form(&[("access_token", access)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(u, json!({"sub": "alice"}));
    // One method per request (RFC 6750 §2).
    let r = s
        .http
        .post(&url)
        .bearer_auth(access)
        .form(&[("access_token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

fn assertion(key: &TestKey, iss: &str, sub: &str, aud: &str, exp: u64, jti: &str) -> String {
    key.sign(
        json!({}),
        json!({"iss": iss, "sub": sub, "aud": aud, "iat": NOW, "exp": exp, "jti": jti}),
    )
}

async fn private_key_jwt_authenticates_once_per_assertion(backend: &Backend) {
    let keys = [
        TestKey::new("ES256", "es"),
        TestKey::new("RS256", "rs"),
        TestKey::new("EdDSA", "ed"),
    ];
    let jwks = TestKey::jwks(&[&keys[0], &keys[1], &keys[2]]);
    let signer = ClientSpec {
        jwks: Some(jwks.to_string()),
        ..ClientSpec::machine("signer", "", &["orders.read"], &["https://api.test"])
    };
    let s = start(backend, vec![signer]).await;
    let meta: Value = s
        .http
        .get(format!("{}/.well-known/oauth-authorization-server", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        meta["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("private_key_jwt"))
    );
    assert_eq!(
        meta["token_endpoint_auth_signing_alg_values_supported"],
        json!(["RS256", "ES256", "EdDSA"])
    );
    let token_url = format!("{}/token", s.base);
    let sr = &s;
    let request = |a: String| async move {
        sr.post(
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", a.as_str()),
            ],
        )
        .await
    };
    for (i, key) in keys.iter().enumerate() {
        // aud: the token endpoint, or the issuer.
        let aud = if i == 1 {
            s.base.clone()
        } else {
            token_url.clone()
        };
        let a = assertion(key, "signer", "signer", &aud, NOW + 60, &format!("j{i}"));
        let (st, t) = judged_ok(request(a.clone()).await).await;
        assert_eq!(st, 200, "{} {t}", key.alg);
        // The same jti again: a replay.
        let r = request(a).await;
        assert_eq!(r.status(), 401, "{}", key.alg);
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"], "invalid_client");
        assert!(e["error_description"].as_str().unwrap().contains("replay"));
    }
    let k = &keys[0];
    let refused = [
        assertion(
            k,
            "signer",
            "signer",
            "https://elsewhere.test/token",
            NOW + 60,
            "a1",
        ),
        assertion(k, "signer", "signer", &token_url, NOW + 3600, "a2"),
        assertion(k, "signer", "someone", &token_url, NOW + 60, "a3"),
        assertion(k, "signer", "signer", &token_url, NOW - 3600, "a4"),
        assertion(
            &TestKey::new("ES256", "es"),
            "signer",
            "signer",
            &token_url,
            NOW + 60,
            "a5",
        ),
        k.sign(
            json!({}),
            json!({"iss": "signer", "sub": "signer", "aud": token_url, "exp": NOW + 60}),
        ),
    ];
    for (i, a) in refused.into_iter().enumerate() {
        let r = request(a).await;
        assert_eq!(r.status(), 401, "assertion #{i}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    }
    // One method per request: an assertion with a secret.
    let a = assertion(k, "signer", "signer", &token_url, NOW + 60, "b1");
    let r = s
        .post(
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", a.as_str()),
                ("client_secret", "x"),
            ],
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    // A client with keys has no secret; a secret client cannot assert.
    let r = s
        .post(
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "signer"),
                ("client_secret", ""),
            ],
        )
        .await;
    assert_eq!(r.status(), 401);
    let a = assertion(k, "batch", "batch", &token_url, NOW + 60, "c1");
    assert_eq!(request(a).await.status(), 401);
    // Introspection accepts it too (aud: the token endpoint).
    let a = assertion(k, "signer", "signer", &token_url, NOW + 60, "d1");
    let r = s
        .post(
            "/introspect",
            &[
                ("token", "x"),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", a.as_str()),
            ],
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"active": false}));
}

on_both_stores!(
    device_flow_with_slow_down_approval_and_single_use,
    denied_expired_and_unauthorized_clients,
    userinfo_refuses_what_is_not_a_user_token,
    private_key_jwt_authenticates_once_per_assertion,
);
