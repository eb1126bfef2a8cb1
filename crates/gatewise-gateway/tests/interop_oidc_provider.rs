//! End to end with a real, certified identity provider: npm `oidc-provider`
//! (panva), run by `interop/oidc-provider/server.mjs` on 127.0.0.1.
//!
//! The gateway finds the provider's keys by discovery, judges the JWT access
//! tokens (RFC 9068, by resource indicator, RFC 8707) and introspects the
//! opaque ones (RFC 7662) the provider really issues, and keeps serving
//! through a key rotation.
//!
//! Needs `node` (18+) and `npm ci --prefix interop/oidc-provider`; fails with
//! that advice when they are missing, unless `GATEWISE_SKIP_INTEROP=1`.

use gatewise_config::model::*;
use gatewise_core::jose::{b64url_decode, b64url_encode};
use gatewise_gateway::{Clock, Gateway, server};
use gatewise_test_support::servers;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatewise_test_support::oidc_provider::{API, OTHER_API};
/// The introspection client's secret in `server.mjs`: RFC 6749 §2.3.1 says
/// it is form-urlencoded before Base64, and these characters show whether it was.
const INTROSPECTOR_SECRET: &str = "intro:spect+/=%secret";

// ------------------------------------------------------------ preflight

use gatewise_test_support::oidc_provider::{OidcProvider, preflight};

// ------------------------------------------------------------ the IdP

/// The provider (killed when dropped, also on panic) and a client for it.
struct Idp {
    provider: OidcProvider,
    http: reqwest::Client,
}

/// The confidential clients of `server.mjs` that get access tokens.
#[derive(Clone, Copy, Debug)]
enum Client {
    /// `gateway-test`: `client_secret_basic`, RS256 access tokens.
    Rs256Basic,
    /// `gateway-test-es256`: `client_secret_post`, ES256 access tokens.
    Es256Post,
}

impl Idp {
    async fn start() -> Idp {
        Idp {
            provider: OidcProvider::start().await,
            http: reqwest::Client::new(),
        }
    }

    fn stderr(&self) -> String {
        self.provider.stderr()
    }

    fn issuer(&self) -> String {
        self.provider.issuer()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer())
    }

    /// The token endpoint's answer to a client_credentials request.
    async fn token_response(
        &self,
        client: Client,
        resource: Option<&str>,
        scope: &str,
    ) -> (u16, Value) {
        let mut form = vec![("grant_type", "client_credentials"), ("scope", scope)];
        if let Some(r) = resource {
            form.push(("resource", r));
        }
        let req = self.http.post(self.url("/token"));
        let req = match client {
            Client::Rs256Basic => req.basic_auth("gateway-test", Some("gateway-test-secret")),
            Client::Es256Post => {
                form.push(("client_id", "gateway-test-es256"));
                form.push(("client_secret", "gateway-test-es256-secret"));
                req
            }
        };
        let resp = req.form(&form).send().await.expect("token endpoint");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// A fresh access token (JWT with a resource, opaque without).
    async fn token(&self, client: Client, resource: Option<&str>, scope: &str) -> String {
        let (status, body) = self.token_response(client, resource, scope).await;
        assert_eq!(
            status,
            200,
            "the token endpoint refused {client:?} resource={resource:?} scope={scope:?}: {body}\nIdP stderr:\n{}",
            self.stderr()
        );
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// Revokes a token of `gateway-test` (RFC 7009).
    async fn revoke(&self, token: &str) {
        let resp = self
            .http
            .post(self.url("/token/revocation"))
            .basic_auth("gateway-test", Some("gateway-test-secret"))
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "revocation: {:?}", resp.text().await);
    }

    /// Rotates the signing keys; returns the new signing `kid`s.
    async fn rotate(&self) -> Vec<String> {
        let resp = self
            .http
            .post(self.url("/_test/rotate"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let v: Value = resp.json().await.unwrap();
        v["signing_kids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect()
    }
}

/// A JWT's header and payload, decoded without checking anything.
fn decode(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut part = || -> Value {
        serde_json::from_slice(&b64url_decode(parts.next().unwrap()).unwrap()).unwrap()
    };
    let header = part();
    let payload = part();
    (header, payload)
}

// ------------------------------------------------------------ the gateway

/// The provider's time: `iat` of a token it issued, advanced by a monotonic
/// clock, plus a skew the test can set (to see tokens expire).
struct IdpClock {
    base: u64,
    started: tokio::time::Instant,
    skew: AtomicU64,
}

impl Clock for IdpClock {
    fn unix_now(&self) -> u64 {
        self.base + self.started.elapsed().as_secs() + self.skew.load(Ordering::SeqCst)
    }
}

struct Secret(PathBuf);

impl Drop for Secret {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct World {
    gw: SocketAddr,
    gateway: Arc<Gateway>,
    clock: Arc<IdpClock>,
    http: reqwest::Client,
    _secret: Secret,
}

static WORLDS: AtomicUsize = AtomicUsize::new(0);

impl World {
    async fn start(idp: &Idp) -> World {
        // Anchor the gateway's clock to the provider's.
        let t = idp
            .token(Client::Rs256Basic, Some(API), "orders.read")
            .await;
        let iat = decode(&t).1["iat"].as_u64().expect("iat");
        let clock = Arc::new(IdpClock {
            base: iat,
            started: tokio::time::Instant::now(),
            skew: AtomicU64::new(0),
        });

        let dir = std::env::temp_dir().join(format!(
            "gatewise-interop-{}-{}",
            std::process::id(),
            WORLDS.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let secret_file = dir.join("introspector-secret");
        std::fs::write(&secret_file, format!("{INTROSPECTOR_SECRET}\n")).unwrap();

        let echo = servers::echo().await;
        let jwt = |scopes: Vec<&str>| JwtPolicy {
            issuers: vec!["op".into()],
            audiences: vec![API.into()],
            require_at_jwt: true,
            scopes: ScopeRule::AllOf(scopes.into_iter().map(str::to_owned).collect()),
            claims: vec![],
            token_sources: vec![],
            forward_claims: true,
            strip_authorization: true,
        };
        let route = |path: &str| {
            Route::new(
                path.trim_start_matches('/'),
                PathMatch::Prefix(path.into()),
                "echo",
            )
        };
        let config = DynamicConfig {
            issuers: vec![Issuer {
                algorithms: vec!["RS256".into(), "ES256".into()],
                leeway: Duration::from_secs(30),
                ..Issuer::new(
                    "op",
                    &idp.issuer(),
                    KeySource::Discovery(idp.url("/.well-known/openid-configuration")),
                )
            }],
            upstreams: vec![Upstream {
                connect_timeout: Duration::from_millis(500),
                first_byte_timeout: Duration::from_secs(2),
                total_timeout: Duration::from_secs(5),
                retries: 0,
                ..Upstream::new("echo", vec![format!("http://{echo}")])
            }],
            routes: vec![
                Route {
                    jwt: Some(jwt(vec!["orders.read"])),
                    ..route("/orders")
                },
                Route {
                    jwt: Some(jwt(vec!["orders.admin"])),
                    ..route("/admin")
                },
                Route {
                    introspection: Some(IntrospectionPolicy {
                        introspector: "op".into(),
                        audiences: vec![],
                        scopes: ScopeRule::AllOf(vec!["orders.read".into()]),
                        token_sources: vec![],
                        forward_claims: true,
                        strip_authorization: true,
                    }),
                    ..route("/opaque")
                },
            ],
            introspectors: vec![Introspector {
                name: "op".into(),
                endpoint: idp.url("/token/introspection"),
                client_id: "gateway-introspector".into(),
                client_secret: SecretRef::File(secret_file),
                auth: ClientAuth::Basic,
                cache_ttl: Duration::from_secs(1),
                negative_ttl: Duration::from_secs(1),
                timeout: Duration::from_secs(3),
            }],
            max_body_bytes: 4096,
        };
        let gateway =
            Arc::new(Gateway::new(config, Arc::clone(&clock) as Arc<dyn Clock>).expect("gateway"));
        let failures = gateway.load_keys().await;
        assert!(
            failures.is_empty(),
            "loading keys by discovery failed: {failures:?}"
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gw = listener.local_addr().unwrap();
        let stat = StaticConfig {
            listen: gw,
            tls: None,
            header_read_timeout: Duration::from_secs(2),
            max_header_bytes: 16 * 1024,
            shutdown_grace: Duration::from_secs(1),
            call_log: gatewise_config::model::CallLogConfig::disabled(),
            admin: gatewise_config::model::AdminConfig::disabled(),
            telemetry: gatewise_config::model::TelemetryConfig::default(),
        };
        let g = Arc::clone(&gateway);
        tokio::spawn(async move {
            let _ = server::serve(listener, g, &stat, None, std::future::pending()).await;
        });
        World {
            gw,
            gateway,
            clock,
            http: reqwest::Client::new(),
            _secret: Secret(dir),
        }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        let mut r = self.http.get(format!("http://{}{path}", self.gw));
        if let Some(t) = token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        let resp = r.send().await.expect("gateway request");
        let status = resp.status().as_u16();
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        Answer {
            status,
            challenge,
            body,
        }
    }

    /// The `(kid_refetches, fetches, fetch_errors)` of the one issuer.
    fn key_counters(&self) -> (u64, u64, u64) {
        let state = self.gateway.state();
        let i = state.issuers().next().expect("one issuer");
        (
            i.counters.kid_refetches.load(Ordering::SeqCst),
            i.counters.fetches.load(Ordering::SeqCst),
            i.counters.fetch_errors.load(Ordering::SeqCst),
        )
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    challenge: String,
    body: Value,
}

impl Answer {
    fn reason(&self) -> &str {
        self.body["reason"].as_str().unwrap_or("")
    }

    /// Asserts a refusal: status, reason, and the RFC 6750 challenge's error.
    fn assert_refused(&self, what: &str, status: u16, reason: &str, error: &str) {
        assert_eq!(
            (self.status, self.reason()),
            (status, reason),
            "{what}: the gateway answered {self:?}"
        );
        assert!(
            self.challenge
                .starts_with("Bearer realm=\"gatewise\", error=\"")
                && self.challenge.contains(&format!("error=\"{error}\"")),
            "{what}: challenge {:?}",
            self.challenge
        );
        assert!(self.body["request_id"].is_string(), "{what}: {self:?}");
    }
}

// ------------------------------------------------------------ the tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_access_tokens_from_oidc_provider_are_judged_right() {
    if !preflight("jwt_access_tokens_from_oidc_provider_are_judged_right") {
        return;
    }
    let idp = Idp::start().await;
    let w = World::start(&idp).await;

    // Valid RS256 (client_secret_basic) and ES256 (client_secret_post) JWT
    // access tokens for the resource: 200, identity forwarded.
    let rs = idp
        .token(Client::Rs256Basic, Some(API), "orders.read orders.write")
        .await;
    let (h, p) = decode(&rs);
    assert_eq!(
        (h["alg"].as_str(), h["typ"].as_str()),
        (Some("RS256"), Some("at+jwt"))
    );
    assert_eq!(p["aud"], API);
    let a = w.get("/orders/42", Some(&rs)).await;
    assert_eq!(a.status, 200, "a valid RS256 token was refused: {a:?}");
    let seen = &a.body["headers"];
    assert_eq!(seen["x-auth-subject"], "gateway-test", "{seen}");
    assert_eq!(seen["x-auth-client-id"], "gateway-test", "{seen}");
    assert_eq!(seen["x-auth-scopes"], "orders.read orders.write", "{seen}");
    assert!(
        seen.get("authorization").is_none(),
        "strip_authorization: {seen}"
    );

    let es = idp.token(Client::Es256Post, Some(API), "orders.read").await;
    assert_eq!(decode(&es).0["alg"], "ES256");
    let a = w.get("/orders/43", Some(&es)).await;
    assert_eq!(a.status, 200, "a valid ES256 token was refused: {a:?}");
    assert_eq!(a.body["headers"]["x-auth-client-id"], "gateway-test-es256");
    assert_eq!(a.body["headers"]["x-auth-scopes"], "orders.read");

    // No token: 401 and a bare challenge (RFC 6750 §3.1).
    let a = w.get("/orders/1", None).await;
    assert_eq!((a.status, a.reason()), (401, "token-missing"), "{a:?}");
    assert_eq!(a.challenge, "Bearer realm=\"gatewise\"");

    // The other API's token.
    let other = idp
        .token(Client::Rs256Basic, Some(OTHER_API), "orders.read")
        .await;
    assert_eq!(decode(&other).1["aud"], OTHER_API);
    w.get("/orders/1", Some(&other)).await.assert_refused(
        "token for another resource",
        401,
        "jwt-aud-mismatch",
        "invalid_token",
    );

    // A token of another provider (another port, so another issuer).
    {
        let stranger = Idp::start().await;
        let t = stranger
            .token(Client::Rs256Basic, Some(API), "orders.read")
            .await;
        w.get("/orders/1", Some(&t)).await.assert_refused(
            "token of another issuer",
            401,
            "jwt-iss-mismatch",
            "invalid_token",
        );
    }

    // Tampered signatures: one bit flipped, still valid base64url.
    for (name, token) in [("RS256", &rs), ("ES256", &es)] {
        let (head, sig) = token.rsplit_once('.').unwrap();
        let mut bytes = b64url_decode(sig).unwrap();
        bytes[10] ^= 0x01;
        let tampered = format!("{head}.{}", b64url_encode(&bytes));
        w.get("/orders/1", Some(&tampered)).await.assert_refused(
            &format!("tampered {name} signature"),
            401,
            "jwt-signature-invalid",
            "invalid_token",
        );
    }
    // A payload changed under a real signature.
    {
        let mut parts = rs.split('.');
        let (h, _, s) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let mut claims = decode(&rs).1;
        claims["scope"] = json!("orders.read orders.write orders.admin");
        let forged = format!("{h}.{}.{s}", b64url_encode(claims.to_string().as_bytes()));
        w.get("/admin/x", Some(&forged)).await.assert_refused(
            "payload changed under a real signature",
            401,
            "jwt-signature-invalid",
            "invalid_token",
        );
    }

    // alg none: the real token's header and payload, re-encoded unsigned.
    {
        let (mut header, _) = decode(&rs);
        header["alg"] = json!("none");
        let payload = rs.split('.').nth(1).unwrap();
        let none = format!(
            "{}.{payload}.",
            b64url_encode(header.to_string().as_bytes())
        );
        w.get("/orders/1", Some(&none)).await.assert_refused(
            "alg none",
            401,
            "jwt-alg-not-allowed",
            "invalid_token",
        );
    }

    // Missing scope: 403 insufficient_scope naming it.
    let a = w.get("/admin/x", Some(&rs)).await;
    a.assert_refused(
        "missing orders.admin",
        403,
        "scope-missing",
        "insufficient_scope",
    );
    assert!(a.challenge.contains("scope=\"orders.admin\""), "{a:?}");
    let write_only = idp
        .token(Client::Rs256Basic, Some(API), "orders.write")
        .await;
    let a = w.get("/orders/1", Some(&write_only)).await;
    a.assert_refused(
        "missing orders.read",
        403,
        "scope-missing",
        "insufficient_scope",
    );
    assert!(a.challenge.contains("scope=\"orders.read\""), "{a:?}");

    // Expired: the gateway's clock two hours ahead. The first token's
    // signature is cached; the time rules must run anyway.
    w.clock.skew.store(2 * 3600, Ordering::SeqCst);
    w.get("/orders/1", Some(&rs)).await.assert_refused(
        "expired (verification cached)",
        401,
        "jwt-expired",
        "invalid_token",
    );
    let fresh = idp.token(Client::Es256Post, Some(API), "orders.read").await;
    w.get("/orders/1", Some(&fresh)).await.assert_refused(
        "expired (never seen)",
        401,
        "jwt-expired",
        "invalid_token",
    );
    w.clock.skew.store(0, Ordering::SeqCst);
    let a = w.get("/orders/1", Some(&fresh)).await;
    assert_eq!(a.status, 200, "back in time, the token is good: {a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opaque_tokens_are_introspected_and_revocation_shows_after_the_cache() {
    if !preflight("opaque_tokens_are_introspected_and_revocation_shows_after_the_cache") {
        return;
    }
    let idp = Idp::start().await;
    let w = World::start(&idp).await;

    // Without a resource indicator the provider issues an opaque token.
    let opaque = idp
        .token(Client::Rs256Basic, None, "orders.read orders.write")
        .await;
    assert!(
        !opaque.contains('.'),
        "expected an opaque token, got {opaque}"
    );
    let a = w.get("/opaque/1", Some(&opaque)).await;
    assert_eq!(
        a.status,
        200,
        "an active opaque token was refused: {a:?}\nIdP stderr:\n{}",
        idp.stderr()
    );
    let seen = &a.body["headers"];
    assert_eq!(seen["x-auth-client-id"], "gateway-test", "{seen}");
    assert_eq!(seen["x-auth-scopes"], "orders.read orders.write", "{seen}");
    assert!(seen.get("authorization").is_none(), "{seen}");

    // The route's scope rule applies to introspected tokens too.
    let write_only = idp.token(Client::Es256Post, None, "orders.write").await;
    let a = w.get("/opaque/1", Some(&write_only)).await;
    a.assert_refused(
        "opaque token without orders.read",
        403,
        "scope-missing",
        "insufficient_scope",
    );
    assert!(a.challenge.contains("scope=\"orders.read\""), "{a:?}");

    // A token the provider never issued.
    w.get("/opaque/1", Some("not-a-token-the-provider-issued"))
        .await
        .assert_refused(
            "unknown opaque token",
            401,
            "introspection-inactive",
            "invalid_token",
        );

    // Revoked at the provider: refused once the cached answer (cache_ttl 1 s) is gone.
    idp.revoke(&opaque).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    w.get("/opaque/2", Some(&opaque)).await.assert_refused(
        "revoked opaque token",
        401,
        "introspection-inactive",
        "invalid_token",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_under_traffic_costs_no_401_and_no_restart() {
    if !preflight("key_rotation_under_traffic_costs_no_401_and_no_restart") {
        return;
    }
    const TOTAL: usize = 300;
    const WORKERS: usize = 4;
    let idp = Arc::new(Idp::start().await);
    let w = Arc::new(World::start(&idp).await);
    let (refetches_before, _, _) = w.key_counters();
    assert_eq!(refetches_before, 0, "keys were loaded at start");
    let first_kids: Vec<String> = {
        let state = w.gateway.state();
        state.issuers().next().unwrap().kids()
    };

    let sent = Arc::new(AtomicUsize::new(0));
    // (request number, client, kid, status, reason), one per request.
    let log = Arc::new(Mutex::new(
        Vec::<(usize, Client, String, u16, String)>::new(),
    ));
    let mut workers = Vec::new();
    for n in 0..WORKERS {
        let (idp, w, sent, log) = (
            Arc::clone(&idp),
            Arc::clone(&w),
            Arc::clone(&sent),
            Arc::clone(&log),
        );
        workers.push(tokio::spawn(async move {
            let client = if n % 2 == 0 {
                Client::Rs256Basic
            } else {
                Client::Es256Post
            };
            // A token from before the rotation, replayed now and then: the
            // old key stays published, so it stays good.
            let old = idp.token(client, Some(API), "orders.read").await;
            for mine in 0.. {
                let i = sent.fetch_add(1, Ordering::SeqCst);
                if i >= TOTAL {
                    break;
                }
                let token = if mine % 5 == 4 {
                    old.clone()
                } else {
                    idp.token(client, Some(API), "orders.read").await
                };
                let kid = decode(&token).0["kid"].as_str().unwrap_or("").to_owned();
                let a = w.get(&format!("/orders/{i}"), Some(&token)).await;
                let reason = a.reason().to_owned();
                log.lock().unwrap().push((i, client, kid, a.status, reason));
            }
        }));
    }
    // Rotate midway, while the workers run.
    while sent.load(Ordering::SeqCst) < TOTAL / 2 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Two tokens of the old keys that the gateway sees only after the
    // rotation (so their signatures are not in its cache).
    let unseen = [
        idp.token(Client::Rs256Basic, Some(API), "orders.read")
            .await,
        idp.token(Client::Es256Post, Some(API), "orders.read").await,
    ];
    let new_kids = idp.rotate().await;
    let rotated_at = sent.load(Ordering::SeqCst);
    for h in workers {
        h.await.unwrap();
    }
    for t in &unseen {
        let a = w.get("/orders/unseen", Some(t)).await;
        assert_eq!(
            a.status,
            200,
            "a token of the previous key ({}), first shown after the rotation, was refused: {a:?}",
            decode(t).0["kid"]
        );
    }

    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), TOTAL);
    let refused: Vec<_> = log.iter().filter(|e| e.3 != 200).collect();
    assert!(
        refused.is_empty(),
        "{} of {TOTAL} requests with valid tokens were refused during the rotation \
         (rotated at request {rotated_at}, old kids {first_kids:?}, new kids {new_kids:?}): {:?}",
        refused.len(),
        refused.iter().take(10).collect::<Vec<_>>()
    );
    for kid in &new_kids {
        assert!(
            log.iter().any(|e| &e.2 == kid),
            "no request carried a token signed with the new key {kid}: the rotation came too late \
             (rotated at request {rotated_at})"
        );
    }
    for kid in &first_kids {
        assert!(
            log.iter().any(|e| e.0 > rotated_at && &e.2 == kid),
            "no token of the old key {kid} was sent after the rotation"
        );
    }
    let (refetches, fetches, errors) = w.key_counters();
    assert_eq!(
        refetches, 1,
        "the new kids should cost exactly one JWKS refetch (single-flight), got {refetches}"
    );
    assert_eq!(errors, 0, "JWKS fetch errors: {fetches} fetches");
    let mut kids = {
        let state = w.gateway.state();
        state.issuers().next().unwrap().kids()
    };
    kids.sort();
    let mut want: Vec<String> = new_kids.iter().chain(&first_kids).cloned().collect();
    want.sort();
    assert_eq!(kids, want, "the gateway's keys after the rotation");
    assert!(
        w.gateway.counters().requests.load(Ordering::SeqCst) >= TOTAL as u64,
        "the same gateway served all requests"
    );
}
