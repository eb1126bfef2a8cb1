//! The gateway end to end on 127.0.0.1: a real echo upstream, a real JWKS
//! server, the gateway between them, and a real HTTP client.

use gatewise_config::model::*;
use gatewise_gateway::server::Running;
use gatewise_gateway::{FixedClock, Gateway};
use gatewise_test_support::mint::{TestKey, sign_raw};
use gatewise_test_support::servers::{self, DocServer};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const NOW: u64 = 1_767_225_600;
const ISS: &str = "https://as.test";
const AUD: &str = "https://api.test";

fn issuer(jwks: SocketAddr) -> Issuer {
    Issuer {
        algorithms: vec!["RS256".into(), "ES256".into()],
        ..Issuer::new(
            "main",
            ISS,
            KeySource::JwksUri(format!("http://{jwks}/jwks.json")),
        )
    }
}

fn upstream(name: &str, targets: Vec<String>) -> Upstream {
    Upstream {
        connect_timeout: Duration::from_millis(500),
        first_byte_timeout: Duration::from_millis(800),
        total_timeout: Duration::from_secs(5),
        ..Upstream::new(name, targets)
    }
}

fn route(name: &str, path: PathMatch, upstream: &str, jwt: Option<JwtPolicy>) -> Route {
    Route {
        jwt,
        ..Route::new(name, path, upstream)
    }
}

fn jwt_policy(scopes: ScopeRule) -> JwtPolicy {
    JwtPolicy {
        issuers: vec!["main".into()],
        audiences: vec![AUD.into()],
        require_at_jwt: true,
        scopes,
        claims: vec![],
        token_sources: vec![],
        forward_claims: true,
        strip_authorization: false,
    }
}

fn claims() -> Value {
    json!({"iss": ISS, "sub": "user-1", "aud": AUD, "client_id": "c1", "iat": NOW - 10,
           "exp": NOW + 600, "jti": "j1", "scope": "orders.read profile"})
}

struct World {
    gw: SocketAddr,
    gateway: Arc<Gateway>,
    /// Keeps the gateway serving; dropping it stops the server.
    _running: Running,
    jwks: DocServer,
    key: TestKey,
    http: reqwest::Client,
}

impl World {
    async fn start() -> World {
        let key = TestKey::new("RS256", "k1");
        let (jwks, jwks_addr) = DocServer::start(TestKey::jwks(&[&key]).to_string()).await;
        let echo = servers::echo().await;
        // A port nothing listens on.
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let config = DynamicConfig {
            issuers: vec![issuer(jwks_addr)],
            upstreams: vec![
                upstream("echo", vec![format!("http://{echo}")]),
                upstream("dead", vec![format!("http://{dead}")]),
            ],
            routes: vec![
                Route {
                    strip_prefix: true,
                    ..route("public", PathMatch::Prefix("/public".into()), "echo", None)
                },
                route(
                    "orders",
                    PathMatch::Prefix("/orders".into()),
                    "echo",
                    Some(jwt_policy(ScopeRule::AllOf(vec!["orders.read".into()]))),
                ),
                route(
                    "admin",
                    PathMatch::Prefix("/orders/admin".into()),
                    "echo",
                    Some(jwt_policy(ScopeRule::AnyOf(vec!["orders.admin".into()]))),
                ),
                route("dead", PathMatch::Exact("/dead".into()), "dead", None),
                Route {
                    rate_limit: Some(RateLimit {
                        key: RateKey::Header("x-api-key".into()),
                        requests: 3,
                        per: Duration::from_secs(60),
                        burst: 3,
                    }),
                    strip_prefix: true,
                    ..route(
                        "limited",
                        PathMatch::Prefix("/limited".into()),
                        "echo",
                        None,
                    )
                },
            ],
            introspectors: vec![],
            max_body_bytes: 1024,
        };
        let running = Running::local(config, Arc::new(FixedClock(NOW)))
            .await
            .unwrap();
        assert!(running.gateway.load_keys().await.is_empty());
        let gw = running.addr;
        let gateway = Arc::clone(&running.gateway);
        World {
            gw,
            gateway,
            _running: running,
            jwks,
            key,
            http: reqwest::Client::new(),
        }
    }

    fn token(&self, claims: Value) -> String {
        self.key.sign(json!({"typ": "at+jwt"}), claims)
    }

    async fn get(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut r = self.http.get(format!("http://{}{path}", self.gw));
        if let Some(t) = token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, headers, body)
    }
}

fn challenge(h: &reqwest::header::HeaderMap) -> String {
    h.get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn public_route_proxies_and_cleans_headers() {
    let w = World::start().await;
    let resp = w
        .http
        .get(format!("http://{}/public/hello?x=1", w.gw))
        .header("x-auth-subject", "spoofed")
        .header("connection", "x-secret-hop")
        .header("x-secret-hop", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-request-id").is_some());
    assert!(
        resp.headers().get("x-hop").is_none(),
        "hop-by-hop header named in Connection leaked to the client"
    );
    let echoed: Value = resp.json().await.unwrap();
    assert_eq!(echoed["path"], "/hello?x=1");
    let h = &echoed["headers"];
    assert!(
        h.get("x-auth-subject").is_none(),
        "a client-sent identity header reached the upstream"
    );
    assert!(h.get("x-secret-hop").is_none());
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    // The Host the client sent, port included (RFC 7239 §5.3).
    let authority = w.gw.to_string();
    assert_eq!(h["x-forwarded-host"], authority.as_str());
    assert_eq!(
        h["forwarded"],
        format!("for=127.0.0.1;proto=http;host=\"{authority}\"").as_str()
    );
    assert!(h["x-request-id"].is_string());
}

#[tokio::test]
async fn valid_token_passes_and_identity_is_forwarded() {
    let w = World::start().await;
    let token = w.token(claims());
    // The first use verifies; the second and third are cache hits (the
    // identity is made at the first hit and shared from then on).
    for use_ in 1..=3 {
        let (status, _, body) = w.get("/orders/42", Some(&token)).await;
        assert_eq!(status, 200, "use {use_}: {body}");
        let h = &body["headers"];
        assert_eq!(h["x-auth-subject"], "user-1", "use {use_}");
        assert_eq!(h["x-auth-client-id"], "c1", "use {use_}");
        assert_eq!(h["x-auth-scopes"], "orders.read profile", "use {use_}");
        assert!(h["x-auth-issuer"].is_string(), "use {use_}: {h}");
    }
    let hits = w
        .gateway
        .counters()
        .token_cache_hits
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(hits, 2);
}

#[tokio::test]
async fn issuer_clock_skew_is_estimated_from_iat() {
    let w = World::start().await;
    let mut c = claims();
    c["iat"] = json!(NOW + 45);
    c["jti"] = json!("skewed");
    let (status, _, body) = w.get("/orders/42", Some(&w.token(c))).await;
    assert_eq!(status, 200, "45 s ahead is within the 60 s leeway: {body}");
    let state = w.gateway.state();
    let issuer = state.issuers().next().unwrap();
    assert_eq!(
        issuer
            .counters
            .clock_ahead_max
            .load(std::sync::atomic::Ordering::Relaxed),
        45
    );
}

#[tokio::test]
async fn refusals_carry_the_right_status_challenge_and_reason() {
    let w = World::start().await;
    // No token: 401 and a challenge without an error attribute (RFC 6750 §3.1).
    let (s, h, b) = w.get("/orders/1", None).await;
    assert_eq!((s, b["reason"].as_str()), (401, Some("token-missing")));
    assert_eq!(challenge(&h), "Bearer realm=\"gatewise\"");
    assert_eq!(h["content-type"], "application/problem+json");

    let cases: Vec<(Value, &str)> = vec![
        (json!({"exp": NOW - 61}), "jwt-expired"),
        (json!({"aud": "api://default"}), "jwt-aud-mismatch"),
        (json!({"iss": "https://evil.test"}), "jwt-iss-mismatch"),
        (json!({"nonce": "n1"}), "jwt-id-token-as-access-token"),
        (json!({"nbf": NOW + 120}), "jwt-not-yet-valid"),
    ];
    for (patch, reason) in cases {
        let mut c = claims();
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        let (s, h, b) = w.get("/orders/1", Some(&w.token(c))).await;
        assert_eq!((s, b["reason"].as_str()), (401, Some(reason)), "{b}");
        assert!(
            challenge(&h).contains("error=\"invalid_token\""),
            "{}",
            challenge(&h)
        );
        assert!(b["request_id"].is_string());
    }

    // Tampered signature: one bit flipped, still valid base64url.
    let t = w.token(claims());
    let (head, sig) = t.rsplit_once('.').unwrap();
    let mut bytes = gatewise_core::jose::b64url_decode(sig).unwrap();
    bytes[7] ^= 1;
    let tampered = format!("{head}.{}", gatewise_core::jose::b64url_encode(&bytes));
    let (s, _, b) = w.get("/orders/1", Some(&tampered)).await;
    assert_eq!(
        (s, b["reason"].as_str()),
        (401, Some("jwt-signature-invalid")),
        "{b}"
    );

    // alg none.
    let none = sign_raw(&json!({"alg": "none", "typ": "at+jwt"}), &claims(), |_| {
        Vec::new()
    });
    let (s, _, b) = w.get("/orders/1", Some(&none)).await;
    assert_eq!(
        (s, b["reason"].as_str()),
        (401, Some("jwt-alg-not-allowed")),
        "{b}"
    );

    // typ JWT where at+jwt is required.
    let plain = w.key.sign(json!({"typ": "JWT"}), claims());
    let (s, _, b) = w.get("/orders/1", Some(&plain)).await;
    assert_eq!(
        (s, b["reason"].as_str()),
        (401, Some("jwt-typ-mismatch")),
        "{b}"
    );

    // Missing scope: 403 with the scope named, on the more specific route.
    let (s, h, b) = w.get("/orders/admin/x", Some(&w.token(claims()))).await;
    assert_eq!(
        (s, b["reason"].as_str()),
        (403, Some("scope-missing")),
        "{b}"
    );
    assert!(challenge(&h).contains("error=\"insufficient_scope\""));
    assert!(challenge(&h).contains("scope=\"orders.admin\""));

    // Garbage in the header: invalid_request for two tokens, invalid_token for junk.
    let (s, _, b) = w.get("/orders/1", Some("not a token")).await;
    assert_eq!(
        (s, b["reason"].as_str()),
        (400, Some("authorization-malformed")),
        "{b}"
    );
    let (s, _, b) = w.get("/orders/1", Some("abc.def")).await;
    assert_eq!(
        (s, b["reason"].as_str()),
        (401, Some("jwt-malformed")),
        "{b}"
    );
}

#[tokio::test]
async fn route_miss_is_404_never_403() {
    let w = World::start().await;
    for path in ["/nothing", "/dead/not-exact", "/publicity", "/order"] {
        let (s, h, b) = w.get(path, None).await;
        assert_eq!(
            (s, b["reason"].as_str()),
            (404, Some("route-not-found")),
            "{path}: {b}"
        );
        assert!(h.get("www-authenticate").is_none());
    }
}

#[tokio::test]
async fn rotated_keys_are_fetched_once_and_forged_kids_cost_nothing() {
    let w = World::start().await;
    let hits = w.jwks.hits();
    // The IdP rotates: a new key k2 appears alongside k1.
    let k2 = TestKey::new("RS256", "k2");
    w.jwks.set(TestKey::jwks(&[&w.key, &k2]).to_string());
    let t2 = k2.sign(json!({"typ": "at+jwt"}), claims());
    let (s, _, b) = w.get("/orders/1", Some(&t2)).await;
    assert_eq!(
        s, 200,
        "a token signed with the rotated key was refused: {b}"
    );
    assert_eq!(
        w.jwks.hits(),
        hits + 1,
        "exactly one refetch for the new kid"
    );

    // A flood of forged kids: one more refetch at most (the interval has not
    // passed, so none), and every one refused as unknown.
    for i in 0..40 {
        let forged = TestKey::new("HS256", &format!("forged-{i}"));
        let mut c = claims();
        c["jti"] = json!(format!("f{i}"));
        let t = sign_raw(
            &json!({"alg": "RS256", "kid": format!("forged-{i}"), "typ": "at+jwt"}),
            &c,
            |m| forged.sign_bytes(m),
        );
        let (s, _, b) = w.get("/orders/1", Some(&t)).await;
        assert_eq!(
            (s, b["reason"].as_str()),
            (401, Some("jwt-kid-unknown")),
            "{b}"
        );
    }
    assert_eq!(
        w.jwks.hits(),
        hits + 1,
        "forged kids made the gateway refetch"
    );
}

#[tokio::test]
async fn idp_down_keeps_cached_keys_and_unknown_kids_fail_fast() {
    let w = World::start().await;
    w.jwks.down(true);
    let (s, _, b) = w.get("/orders/1", Some(&w.token(claims()))).await;
    assert_eq!(
        s, 200,
        "cached keys must keep serving while the IdP is down: {b}"
    );
    let other = TestKey::new("RS256", "k9");
    let t = other.sign(json!({"typ": "at+jwt"}), claims());
    let (s, _, b) = w.get("/orders/1", Some(&t)).await;
    assert_eq!(
        (s, b["reason"].as_str()),
        (401, Some("jwt-kid-unknown")),
        "{b}"
    );
}

#[tokio::test]
async fn upstream_down_is_502_and_slow_is_504() {
    let w = World::start().await;
    let (s, _, b) = w.get("/dead", None).await;
    assert_eq!(
        (s, b["reason"].as_str()),
        (502, Some("upstream-unavailable")),
        "{b}"
    );
    let (s, _, b) = w.get("/public/sleep/2000", None).await;
    assert_eq!(
        (s, b["reason"].as_str()),
        (504, Some("upstream-timeout")),
        "{b}"
    );
    let (s, _, _) = w.get("/public/status/503", None).await;
    assert_eq!(s, 503, "an upstream's own error passes through unchanged");
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let w = World::start().await;
    let resp = w
        .http
        .post(format!("http://{}/public/upload", w.gw))
        .body(vec![b'x'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let b: Value = resp.json().await.unwrap();
    assert_eq!(b["reason"], "body-too-large");
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_and_ratelimit_fields() {
    let w = World::start().await;
    let call = |key: &'static str| {
        w.http
            .get(format!("http://{}/limited/x", w.gw))
            .header("x-api-key", key)
            .send()
    };
    for remaining in [2, 1, 0] {
        let r = call("alice").await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["ratelimit-limit"], "3");
        assert_eq!(
            r.headers()["ratelimit-remaining"],
            remaining.to_string().as_str()
        );
    }
    let r = call("alice").await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "retry-after {retry}");
    assert_eq!(r.headers()["ratelimit-remaining"], "0");
    assert!(
        r.headers().get("www-authenticate").is_none(),
        "a 429 is not an authentication problem"
    );
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["reason"], "rate-limited");
    // Another key has its own bucket.
    assert_eq!(call("bob").await.unwrap().status(), 200);
}

/// Sends raw bytes and reads until the server closes or `wait` passes.
async fn raw(addr: SocketAddr, bytes: &[u8], wait: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn request_smuggling_and_oversized_heads_are_refused() {
    let w = World::start().await;
    // CL + TE: read as chunked (RFC 9112 §6.3), Content-Length dropped, the
    // connection closed after the response; the smuggled request that
    // follows in the same bytes never reaches the upstream.
    let cl_te = b"POST /public/a HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /public/smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    let out = raw(w.gw, cl_te, Duration::from_secs(1)).await;
    assert!(out.contains("connection: close"), "{out}");
    assert!(out.contains("\"path\":\"/a\""), "{out}");
    assert!(
        !out.contains("\"content-length\":\"6\""),
        "the upstream saw the conflicting Content-Length: {out}"
    );
    assert_eq!(
        out.matches("HTTP/1.1 ").count(),
        1,
        "a second (smuggled) response came back: {out}"
    );
    assert!(!out.contains("smuggled"), "{out}");
    // Two different Content-Lengths.
    let dup = b"POST /public/a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde";
    assert!(
        raw(w.gw, dup, Duration::from_secs(1))
            .await
            .starts_with("HTTP/1.1 400")
    );
    // A Transfer-Encoding that does not end in chunked.
    let te = b"POST /public/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n";
    assert!(
        raw(w.gw, te, Duration::from_secs(1))
            .await
            .starts_with("HTTP/1.1 400")
    );
    // A head over max_header_bytes (16 KiB here).
    let big = format!(
        "GET /public/a HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(40_000)
    );
    assert!(
        raw(w.gw, big.as_bytes(), Duration::from_secs(1))
            .await
            .starts_with("HTTP/1.1 431")
    );
}

#[tokio::test]
async fn slow_clients_are_cut_off_after_the_header_read_timeout() {
    let w = World::start().await;
    let started = tokio::time::Instant::now();
    // Half a request head, then silence: the gateway closes the connection
    // (header_read_timeout is 2 s here) instead of holding it open.
    let out = raw(
        w.gw,
        b"GET /public/a HTTP/1.1\r\nHost: x\r\n",
        Duration::from_secs(6),
    )
    .await;
    assert!(!out.contains("200 OK"), "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the connection stayed open past the header read timeout"
    );
}

/// A port nothing listens on (bound, then closed).
fn dead_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Every path to the upstream `up` (named "pair"), no policy.
fn all_to_pair(up: Upstream) -> DynamicConfig {
    DynamicConfig {
        issuers: vec![],
        upstreams: vec![up],
        routes: vec![route("all", PathMatch::Prefix("/".into()), "pair", None)],
        introspectors: vec![],
        max_body_bytes: 1024,
    }
}

#[tokio::test]
async fn failing_health_checks_take_a_target_out_of_rotation() {
    let echo = servers::echo().await;
    let dead = dead_port();
    let mut up = upstream(
        "pair",
        vec![format!("http://{echo}"), format!("http://{dead}")],
    );
    up.retries = 0;
    up.health_check = Some(HealthCheck {
        path: "/status/204".into(),
        interval: Duration::from_millis(50),
        timeout: Duration::from_millis(200),
    });
    let running = Running::local(all_to_pair(up), Arc::new(FixedClock(NOW)))
        .await
        .unwrap();
    let addr = running.addr;
    // Let a few checks run; then every request must land on the live target
    // (with retries off, round-robin onto the dead one would be a 502).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let http = reqwest::Client::new();
    for i in 0..10 {
        let r = http
            .get(format!("http://{addr}/n{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "request {i} went to the unhealthy target");
    }
}

#[tokio::test]
async fn a_get_refused_by_one_target_goes_whole_to_the_next() {
    let echo = servers::echo().await;
    let dead = dead_port();
    let start = || async {
        let mut up = upstream(
            "pair",
            vec![format!("http://{dead}"), format!("http://{echo}")],
        );
        up.retries = 1;
        Running::local(all_to_pair(up), Arc::new(FixedClock(NOW)))
            .await
            .unwrap()
    };
    // Without a Host (HTTP/1.0), each target gets its own: the request
    // that came back from the dead target (tried first: round robin starts
    // there, and nothing has ejected it yet) must not keep the dead one's.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let running = start().await;
        let mut s = tokio::net::TcpStream::connect(running.addr).await.unwrap();
        s.write_all(b"GET /h HTTP/1.0\r\n\r\n").await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        let out = String::from_utf8_lossy(&out);
        assert!(out.starts_with("HTTP/1.0 200"), "{out}");
        let body = out.split("\r\n\r\n").nth(1).unwrap_or_default();
        let echoed: Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            echoed["headers"]["host"],
            echo.to_string().as_str(),
            "{echoed}"
        );
    }
    let running = start().await;
    let http = reqwest::Client::new();
    // Round robin sends some of these to the dead target first: the
    // request that failed to connect goes to the live one with every
    // header it had (the headers were not copied for the retry; the
    // request came back whole).
    for i in 0..6 {
        let r = http
            .get(format!("http://{}/n{i}", running.addr))
            .header("x-custom", format!("v{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "request {i}");
        let echoed: Value = r.json().await.unwrap();
        let h = &echoed["headers"];
        assert_eq!(h["x-custom"], format!("v{i}").as_str(), "request {i}: {h}");
        assert_eq!(h["x-forwarded-for"], "127.0.0.1", "request {i}: {h}");
        assert!(h["x-request-id"].is_string(), "request {i}: {h}");
    }
}

#[tokio::test]
async fn upgrades_are_spliced_through() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // An upstream that switches to an "echo" protocol and echoes bytes back.
    let up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = up.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = up.accept().await.unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut b).await.unwrap();
            head.push(b[0]);
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        assert!(head.contains("upgrade: echo"), "{head}");
        assert!(head.contains("connection: upgrade"), "{head}");
        s.write_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n",
        )
        .await
        .unwrap();
        let mut buf = [0u8; 64];
        loop {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            s.write_all(&buf[..n]).await.unwrap();
        }
    });
    let config = DynamicConfig {
        issuers: vec![],
        upstreams: vec![upstream("ws", vec![format!("http://{up_addr}")])],
        routes: vec![route("ws", PathMatch::Prefix("/ws".into()), "ws", None)],
        introspectors: vec![],
        max_body_bytes: 1024,
    };
    let running = Running::local(config, Arc::new(FixedClock(NOW)))
        .await
        .unwrap();
    let addr = running.addr;
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        c.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: echo"), "{head}");
    for msg in [&b"ping"[..], b"a longer frame of bytes \x00\x01\x02"] {
        c.write_all(msg).await.unwrap();
        let mut got = vec![0u8; msg.len()];
        tokio::time::timeout(Duration::from_secs(2), c.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, msg);
    }
}

/// A gateway over `config` on 127.0.0.1 (serving while the handle lives).
async fn serve_config(config: DynamicConfig) -> Running {
    Running::local(config, Arc::new(FixedClock(NOW)))
        .await
        .unwrap()
}

#[tokio::test]
async fn total_timeout_cuts_a_body_that_streams_too_long() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = up.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = up.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).await;
        s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .await
            .unwrap();
        for _ in 0..20 {
            if s.write_all(b"5\r\nhello\r\n").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let _ = s.write_all(b"0\r\n\r\n").await;
    });
    let mut slow = upstream("slow", vec![format!("http://{up_addr}")]);
    slow.first_byte_timeout = Duration::from_millis(500);
    slow.total_timeout = Duration::from_millis(900);
    let running = serve_config(DynamicConfig {
        issuers: vec![],
        upstreams: vec![slow],
        routes: vec![route("all", PathMatch::Prefix("/".into()), "slow", None)],
        introspectors: vec![],
        max_body_bytes: 1024,
    })
    .await;
    let addr = running.addr;
    let started = tokio::time::Instant::now();
    let r = reqwest::get(format!("http://{addr}/stream")).await.unwrap();
    assert_eq!(r.status(), 200, "the head came in time");
    assert!(
        r.bytes().await.is_err(),
        "a body streaming past total_timeout must be cut"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn routes_match_by_host_and_method_and_claims_and_token_sources_apply() {
    let key = TestKey::new("RS256", "k1");
    let (_jwks, jwks_addr) = DocServer::start(TestKey::jwks(&[&key]).to_string()).await;
    let echo = servers::echo().await;
    let mut by_host = route("by-host", PathMatch::Prefix("/".into()), "echo", None);
    by_host.matcher.host = Some("api.test".into());
    by_host.headers.request_set = vec![("x-route".into(), "by-host".into())];
    let mut by_method = route("by-method", PathMatch::Prefix("/".into()), "echo", None);
    by_method.matcher.methods = vec!["DELETE".into()];
    by_method.headers.request_set = vec![("x-route".into(), "by-method".into())];
    let mut any = route("any", PathMatch::Prefix("/".into()), "echo", None);
    any.headers.request_set = vec![("x-route".into(), "any".into())];
    any.headers.response_remove = vec!["x-hop".into()];
    let mut tenant = jwt_policy(ScopeRule::None);
    tenant.claims = vec![ClaimCondition {
        claim: "tenant".into(),
        test: ClaimTest::Equals(json!("acme")),
    }];
    tenant.token_sources = vec![
        TokenSource::Cookie("at".into()),
        TokenSource::Query("access_token".into()),
    ];
    let claims_route = route(
        "tenant",
        PathMatch::Exact("/tenant".into()),
        "echo",
        Some(tenant),
    );
    let running = serve_config(DynamicConfig {
        issuers: vec![issuer(jwks_addr)],
        upstreams: vec![upstream("echo", vec![format!("http://{echo}")])],
        routes: vec![any, by_method, by_host, claims_route],
        introspectors: vec![],
        max_body_bytes: 1024,
    })
    .await;
    let addr = running.addr;
    let http = reqwest::Client::new();
    let route_of = |r: Value| r["headers"]["x-route"].as_str().unwrap_or("").to_owned();
    let h = http
        .get(format!("http://{addr}/x"))
        .header("host", "API.test:8443")
        .send()
        .await
        .unwrap();
    assert_eq!(
        route_of(h.json().await.unwrap()),
        "by-host",
        "host matches case-insensitively, port ignored"
    );
    let m = http
        .delete(format!("http://{addr}/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(route_of(m.json().await.unwrap()), "by-method");
    let a = http.get(format!("http://{addr}/x")).send().await.unwrap();
    assert_eq!(route_of(a.json().await.unwrap()), "any");

    let mut good = claims();
    good["tenant"] = json!("acme");
    let good = key.sign(json!({"typ": "at+jwt"}), good);
    let mut other = claims();
    other["tenant"] = json!("globex");
    let other = key.sign(json!({"typ": "at+jwt"}), other);
    let call = |req: reqwest::RequestBuilder| async move {
        let r = req.send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json::<Value>().await.unwrap_or(Value::Null))
    };
    let (s, _) = call(http.get(format!("http://{addr}/tenant")).bearer_auth(&good)).await;
    assert_eq!(s, 200);
    let (s, b) = call(
        http.get(format!("http://{addr}/tenant"))
            .bearer_auth(&other),
    )
    .await;
    assert_eq!(
        (s, b["reason"].as_str()),
        (403, Some("claim-condition-failed"))
    );
    // Opted-in cookie and query parameter.
    let (s, _) = call(
        http.get(format!("http://{addr}/tenant"))
            .header("cookie", format!("theme=dark; at={good}")),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(http.get(format!("http://{addr}/tenant?access_token={good}"))).await;
    assert_eq!(s, 200);
    // Two ways at once is invalid_request (RFC 6750 §2).
    let (s, b) = call(
        http.get(format!("http://{addr}/tenant?access_token={good}"))
            .bearer_auth(&good),
    )
    .await;
    assert_eq!(
        (s, b["reason"].as_str()),
        (400, Some("token-multiple-methods"))
    );
}

/// The verified-token cache is shared by every route: a token verified on
/// one route must be judged on another by its own issuer, whatever the
/// order in which each route lists its issuers.
#[tokio::test]
async fn a_cached_token_is_judged_by_its_issuer_on_every_route() {
    const OTHER_ISS: &str = "https://other-as.test";
    let main_key = TestKey::new("RS256", "k1");
    let other_key = TestKey::new("RS256", "k2");
    let (_main_jwks, main_addr) = DocServer::start(TestKey::jwks(&[&main_key]).to_string()).await;
    let (_other_jwks, other_addr) =
        DocServer::start(TestKey::jwks(&[&other_key]).to_string()).await;
    let other = Issuer {
        algorithms: vec!["RS256".into()],
        ..Issuer::new(
            "other",
            OTHER_ISS,
            KeySource::JwksUri(format!("http://{other_addr}/jwks.json")),
        )
    };
    let echo = servers::echo().await;
    let policy = |issuers: [&str; 2]| JwtPolicy {
        issuers: issuers.iter().map(|s| (*s).to_owned()).collect(),
        ..jwt_policy(ScopeRule::None)
    };
    let running = serve_config(DynamicConfig {
        issuers: vec![issuer(main_addr), other],
        upstreams: vec![upstream("echo", vec![format!("http://{echo}")])],
        routes: vec![
            route(
                "main-first",
                PathMatch::Exact("/a".into()),
                "echo",
                Some(policy(["main", "other"])),
            ),
            route(
                "other-first",
                PathMatch::Exact("/b".into()),
                "echo",
                Some(policy(["other", "main"])),
            ),
        ],
        introspectors: vec![],
        max_body_bytes: 1024,
    })
    .await;
    let addr = running.addr;
    let http = reqwest::Client::new();
    let mut c = claims();
    c["iss"] = json!(OTHER_ISS);
    let from_other = other_key.sign(json!({"typ": "at+jwt"}), c);
    let from_main = main_key.sign(json!({"typ": "at+jwt"}), claims());
    for (token, label) in [(&from_other, "other"), (&from_main, "main")] {
        for path in ["/a", "/b", "/a", "/b"] {
            let r = http
                .get(format!("http://{addr}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let s = r.status().as_u16();
            let b: Value = r.json().await.unwrap_or(Value::Null);
            assert_eq!(s, 200, "{label}'s token on {path}: {b}");
        }
    }
    let hits = running
        .gateway
        .counters()
        .token_cache_hits
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(hits, 6, "each token verified once, then found in the cache");
}

/// A clock the test moves.
struct MovingClock(std::sync::atomic::AtomicU64);

impl gatewise_gateway::Clock for MovingClock {
    fn unix_now(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A verified signature is reused until `exp` and for at most
/// `MAX_CACHE_TTL`: after that the token is verified again (a key the IdP
/// withdrew stops working within that bound).
#[tokio::test]
async fn verified_tokens_are_reused_for_at_most_the_cache_ttl() {
    use std::sync::atomic::Ordering::Relaxed;
    let key = TestKey::new("RS256", "k1");
    let (_jwks, jwks_addr) = DocServer::start(TestKey::jwks(&[&key]).to_string()).await;
    let echo = servers::echo().await;
    let clock = Arc::new(MovingClock(std::sync::atomic::AtomicU64::new(NOW)));
    let running = Running::local(
        DynamicConfig {
            issuers: vec![issuer(jwks_addr)],
            upstreams: vec![upstream("echo", vec![format!("http://{echo}")])],
            routes: vec![route(
                "orders",
                PathMatch::Prefix("/orders".into()),
                "echo",
                Some(jwt_policy(ScopeRule::None)),
            )],
            introspectors: vec![],
            max_body_bytes: 1024,
        },
        Arc::clone(&clock) as Arc<dyn gatewise_gateway::Clock>,
    )
    .await
    .unwrap();
    let addr = running.addr;
    let http = reqwest::Client::new();
    let mut c = claims();
    c["exp"] = json!(NOW + 3600);
    let token = key.sign(json!({"typ": "at+jwt"}), c);
    let checks = || running.gateway.counters().signature_checks.load(Relaxed);
    let mut seen = Vec::new();
    let ttl = gatewise_gateway::auth::MAX_CACHE_TTL.as_secs();
    for at in [0, 1, ttl - 1, ttl, ttl + 1] {
        clock.0.store(NOW + at, Relaxed);
        let r = http
            .get(format!("http://{addr}/orders/1"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "at +{at} s");
        seen.push(checks());
    }
    assert_eq!(
        seen,
        [1, 1, 1, 2, 2],
        "verified once, reused until MAX_CACHE_TTL, then verified again"
    );
}
