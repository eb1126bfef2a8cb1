//! The live doctor as a user runs it: the built binary against the
//! project's own authorization server and a misbehaving token endpoint,
//! both on 127.0.0.1.

mod common;

use common::gatewise;
use gatewise_authz::{Authz, AuthzConfig};
use gatewise_core::clock::Clock;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Output;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

struct Wall;

impl Clock for Wall {
    #[allow(clippy::disallowed_methods)]
    fn unix_now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }
}

/// The embedded authorization server on 127.0.0.1: (issuer, demo-client's secret).
async fn authz() -> (String, String) {
    let (issuer, secrets) = authz_clients().await;
    (issuer, secrets["demo-client"].clone())
}

/// The embedded authorization server on 127.0.0.1: (issuer, every client's secret).
async fn authz_clients() -> (String, std::collections::HashMap<String, String>) {
    let (issuer, secrets, _) = authz_handle().await;
    (issuer, secrets)
}

/// The embedded authorization server on 127.0.0.1, with its handle (to
/// rotate keys and mint tokens).
async fn authz_handle() -> (
    String,
    std::collections::HashMap<String, String>,
    Arc<Authz>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let config = AuthzConfig::dev(&issuer);
    let secrets = config
        .clients
        .iter()
        .map(|c| (c.id.clone(), c.secret.clone()))
        .collect();
    let authz = Arc::new(Authz::new(config, Arc::new(Wall)).unwrap());
    let router = Arc::clone(&authz).router();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (issuer, secrets, authz)
}

/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const WEB_REDIRECT: &str = "http://127.0.0.1:8000/callback";

/// Signs alice in at the embedded server as `demo-web` (PKCE S256) and
/// returns the authorization code from the redirect.
async fn sign_in(issuer: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = [
        ("response_type", "code"),
        ("client_id", "demo-web"),
        ("redirect_uri", WEB_REDIRECT),
        ("scope", "openid orders.read"),
        ("state", "st-123"),
        ("nonce", "n-0S6_WzA2Mj"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("username", "alice"),
        ("password", "wonderland"),
    ];
    let r = http
        .post(format!("{issuer}/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    url::Url::parse(&loc)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned()
}

/// A refresh token for `demo-web`, redeemed directly (not by the doctor).
async fn refresh_token(issuer: &str, web_secret: &str) -> String {
    let code = sign_in(issuer).await;
    let body: Value = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .basic_auth("demo-web", Some(web_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", WEB_REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["refresh_token"].as_str().unwrap().to_owned()
}

/// A token endpoint that answers every request with `expires_in` as a string.
async fn misbehaving() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let body = br#"{"access_token":"opaque-secret-token-0123456789","token_type":"Bearer","expires_in":"3599"}"#;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(body).await;
            });
        }
    });
    addr
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn codes(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gatewise-live-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_of_the_embedded_server() {
    let (issuer, _) = authz().await;
    let out = gatewise(&["doctor", "discovery", &issuer, "--format", "json"], &[]).await;
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert!(
        matches!(v["verdict"].as_str(), Some("ok" | "warn")),
        "{v:#}"
    );
    assert_eq!(v["subject"], issuer.as_str());
    // Both well-known forms and the JWK Set were fetched; they agree.
    let t = v["transcript"].as_array().unwrap();
    assert_eq!(t.len(), 3, "{v:#}");
    assert_eq!(t[2]["label"], "jwks");
    assert_eq!(t[2]["hops"][0]["response"]["status"], 200);
    let c = codes(&v);
    assert!(c.contains(&"jwks-cache-headers".to_string()), "{c:?}");
    assert!(
        !c.contains(&"discovery-forms-disagree".to_string()),
        "{c:?}"
    );
    assert!(!c.contains(&"jwks-alg-without-key".to_string()), "{c:?}");
    // Timings per phase are in the transcript.
    assert!(t[0]["hops"][0]["timings"]["total_ms"].is_number());

    // Human output names the exchanges and the verdict.
    let out = gatewise(&["doctor", "discovery", &issuer], &[]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("/.well-known/oauth-authorization-server → 200"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{issuer}  OK")) || text.contains(&format!("{issuer}  WARN")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn token_by_issuer_is_verified() {
    let (issuer, secret) = authz().await;
    let dir = temp_dir("token");
    let out = gatewise(
        &[
            "doctor",
            "token",
            "--issuer",
            &issuer,
            "--grant",
            "client_credentials",
            "--client-id",
            "demo-client",
            "--client-secret-env",
            "GW_TEST_SECRET",
            "--scope",
            "orders.read",
            "--resource",
            "https://api.example.test",
            "--format",
            "json",
            "--save-capture",
            dir.to_str().unwrap(),
        ],
        &[("GW_TEST_SECRET", &secret)],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    let c = codes(&v);
    assert!(c.contains(&"jwt-signature-verified".to_string()), "{c:?}");
    assert!(c.contains(&"clock-skew-iat".to_string()), "{c:?}");
    assert!(!stdout.contains(&secret), "the client secret is in stdout");
    let token_t = v["transcript"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(token_t["label"], "token");
    assert_eq!(token_t["masked"], true);
    let body = token_t["hops"][0]["response"]["body"]["text"]
        .as_str()
        .unwrap();
    assert!(body.contains("\"access_token\":\"«"), "{body}");

    // The saved token capture reads back with the offline doctor: same verdict.
    let saved = dir.join("04-token.http");
    let text = std::fs::read_to_string(&saved).unwrap();
    assert!(!text.contains(&secret));
    let out = gatewise(
        &[
            "doctor",
            "response",
            saved.to_str().unwrap(),
            "--format",
            "json",
        ],
        &[],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn misbehaving_endpoint_in_json() {
    let addr = misbehaving().await;
    let secret = "cli-s3cr3t+/=value";
    let url = format!("http://{addr}/oauth/token");
    let out = gatewise(
        &[
            "doctor",
            "token",
            "--token-url",
            &url,
            "--client-id",
            "svc",
            "--client-secret-env",
            "GW_TEST_SECRET",
            "--format",
            "json",
        ],
        &[("GW_TEST_SECRET", secret)],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let v = json(&out);
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    assert_eq!(v["verdict"], "error");
    assert!(codes(&v).contains(&"token-expires-in-string".to_string()));
    // The transcript: the request as sent (credentials masked) and the response.
    let hop = &v["transcript"][0]["hops"][0];
    assert_eq!(hop["request"]["method"], "POST");
    let auth = hop["request"]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == "Authorization")
        .unwrap()[1]
        .as_str()
        .unwrap()
        .to_string();
    assert!(auth.starts_with("Basic "));
    assert_eq!(hop["response"]["status"], 200);
    assert!(!stdout.contains(secret), "the client secret is in stdout");
    assert!(
        !stdout.contains("opaque-secret-token-0123456789"),
        "the access token is in stdout"
    );

    // --show-secrets shows them in the transcript.
    let out = gatewise(
        &[
            "doctor",
            "token",
            "--token-url",
            &url,
            "--client-id",
            "svc",
            "--auth",
            "client_secret_post",
            "--client-secret-env",
            "GW_TEST_SECRET",
            "--format",
            "json",
            "--show-secrets",
        ],
        &[("GW_TEST_SECRET", secret)],
    )
    .await;
    let v = json(&out);
    let body = v["transcript"][0]["hops"][0]["request"]["body"]["text"]
        .as_str()
        .unwrap();
    assert!(
        body.contains("client_secret=cli-s3cr3t%2B%2F%3Dvalue"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_exits_3_and_usage_errors_exit_2() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let url = format!("http://{addr}/token");
    let out = gatewise(
        &[
            "doctor",
            "token",
            "--token-url",
            &url,
            "--client-id",
            "svc",
            "--client-secret",
            "x",
            "--format",
            "json",
        ],
        &[],
    )
    .await;
    let v = json(&out);
    assert_eq!(out.status.code(), Some(3), "{v:#}");
    assert_eq!(v["verdict"], "unreachable");
    assert!(codes(&v).contains(&"connect-refused".to_string()));
    // --client-secret works but warns.
    assert!(String::from_utf8_lossy(&out.stderr).contains("shell history"));

    // No secret for client_secret_basic; the password grant without
    // --username; a grant's value missing or given to another grant; no
    // endpoint; a bad issuer.
    for args in [
        vec!["doctor", "token", "--token-url", &url, "--client-id", "svc"],
        vec![
            "doctor",
            "token",
            "--token-url",
            &url,
            "--client-id",
            "svc",
            "--grant",
            "password",
        ],
        vec!["doctor", "token", "--client-id", "svc"],
        vec![
            "doctor",
            "token",
            "--token-url",
            &url,
            "--client-id",
            "svc",
            "--auth",
            "none",
            "--grant",
            "refresh_token",
        ],
        vec![
            "doctor",
            "token",
            "--token-url",
            &url,
            "--client-id",
            "svc",
            "--auth",
            "none",
            "--code",
            "abc",
        ],
        vec![
            "doctor",
            "token",
            "--token-url",
            &url,
            "--client-id",
            "svc",
            "--auth",
            "none",
            "--grant",
            "authorization_code",
            "--refresh-token-env",
            "NOT_SET_ANYWHERE_GW",
        ],
        vec!["doctor", "discovery", "not a url"],
    ] {
        let out = gatewise(&args, &[]).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn authorization_code_is_redeemed_and_the_id_token_verified() {
    let (issuer, secrets) = authz_clients().await;
    let code = sign_in(&issuer).await;
    let web_secret = secrets["demo-web"].clone();
    let out = gatewise(
        &[
            "doctor",
            "token",
            "--issuer",
            &issuer,
            "--grant",
            "authorization_code",
            "--client-id",
            "demo-web",
            "--client-secret-env",
            "GW_TEST_SECRET",
            "--code-env",
            "GW_TEST_CODE",
            "--redirect-uri",
            WEB_REDIRECT,
            "--code-verifier-env",
            "GW_TEST_VERIFIER",
            "--format",
            "json",
            "--show-secrets",
        ],
        &[
            ("GW_TEST_SECRET", &web_secret),
            ("GW_TEST_CODE", &code),
            ("GW_TEST_VERIFIER", VERIFIER),
        ],
    )
    .await;
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    // The request carried the grant's parameters (shown: --show-secrets).
    let token_t = v["transcript"].as_array().unwrap().last().unwrap().clone();
    let body = token_t["hops"][0]["request"]["body"]["text"]
        .as_str()
        .unwrap();
    assert!(
        body.starts_with("grant_type=authorization_code&code="),
        "{body}"
    );
    assert!(
        body.contains(&format!("code_verifier={VERIFIER}")),
        "{body}"
    );
    // Both tokens verified against the discovered JWK Set.
    let verified: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "jwt-signature-verified")
        .map(|f| f["title"].as_str().unwrap())
        .collect();
    assert!(
        verified.iter().any(|t| t.starts_with("id_token: "))
            && verified.iter().any(|t| t.starts_with("access_token: ")),
        "{verified:?}"
    );
    // Findings never show the code or the verifier, even with --show-secrets.
    let findings = v["findings"].to_string();
    assert!(!findings.contains(&code) && !findings.contains(VERIFIER));

    // The code is single use: a second redemption is invalid_grant, and
    // without --show-secrets nothing secret is printed.
    let dir = temp_dir("verifier");
    std::fs::create_dir_all(&dir).unwrap();
    let verifier_file = dir.join("verifier");
    std::fs::write(&verifier_file, format!("{VERIFIER}\n")).unwrap();
    let out = gatewise(
        &[
            "doctor",
            "token",
            "--issuer",
            &issuer,
            "--grant",
            "authorization_code",
            "--client-id",
            "demo-web",
            "--client-secret-env",
            "GW_TEST_SECRET",
            "--code",
            &code,
            "--redirect-uri",
            WEB_REDIRECT,
            "--code-verifier-file",
            verifier_file.to_str().unwrap(),
        ],
        &[("GW_TEST_SECRET", &web_secret)],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("invalid_grant"),
        "exit {:?}\nstdout: {text}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains(&code) && !text.contains(&web_secret),
        "{text}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--code puts the secret in shell history")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_rotation_is_reported() {
    let (issuer, secrets) = authz_clients().await;
    let web_secret = secrets["demo-web"].clone();
    let refresh = refresh_token(&issuer, &web_secret).await;
    let out = gatewise(
        &[
            "doctor",
            "token",
            "--token-url",
            &format!("{issuer}/token"),
            "--grant",
            "refresh_token",
            "--client-id",
            "demo-web",
            "--client-secret-env",
            "GW_TEST_SECRET",
            "--refresh-token-env",
            "GW_TEST_REFRESH",
            "--format",
            "json",
        ],
        &[
            ("GW_TEST_SECRET", &web_secret),
            ("GW_TEST_REFRESH", &refresh),
        ],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    let rotated = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "refresh-token-rotated")
        .unwrap_or_else(|| panic!("no rotation finding: {:?}", codes(&v)));
    assert_eq!(rotated["rule"], "RT-01");
    assert!(rotated["evidence"].as_str().unwrap().contains("sent «"));
    assert!(!stdout.contains(&refresh), "the refresh token is in stdout");
    // The request sent the refresh token (masked in the transcript).
    let body = v["transcript"][0]["hops"][0]["request"]["body"]["text"]
        .as_str()
        .unwrap();
    assert!(
        body.starts_with("grant_type=refresh_token&refresh_token=%C2%AB"),
        "{body}"
    );

    // The old refresh token again: the server detects reuse (invalid_grant).
    let dir = temp_dir("refresh");
    std::fs::create_dir_all(&dir).unwrap();
    let refresh_file = dir.join("refresh");
    std::fs::write(&refresh_file, &refresh).unwrap();
    let out = gatewise(
        &[
            "doctor",
            "token",
            "--token-url",
            &format!("{issuer}/token"),
            "--grant",
            "refresh_token",
            "--client-id",
            "demo-web",
            "--client-secret-env",
            "GW_TEST_SECRET",
            "--refresh-token-file",
            refresh_file.to_str().unwrap(),
            "--format",
            "json",
        ],
        &[("GW_TEST_SECRET", &web_secret)],
    )
    .await;
    let v = json(&out);
    assert!(v.to_string().contains("invalid_grant"), "{v:#}");
    assert!(
        !codes(&v).iter().any(|c| c.starts_with("refresh-token-")),
        "{v:#}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn password_grant_is_flagged() {
    let (issuer, secrets) = authz_clients().await;
    let password = "wonderland-pa55";
    let out = gatewise(
        &[
            "doctor",
            "token",
            "--issuer",
            &issuer,
            "--grant",
            "password",
            "--client-id",
            "demo-web",
            "--client-secret-env",
            "GW_TEST_SECRET",
            "--username",
            "alice",
            "--password-env",
            "GW_TEST_PASSWORD",
            "--format",
            "json",
        ],
        &[
            ("GW_TEST_SECRET", &secrets["demo-web"]),
            ("GW_TEST_PASSWORD", password),
        ],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let v = json(&out);
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "grant-password-removed")
        .unwrap_or_else(|| panic!("{v:#}"))
        .clone();
    assert_eq!(f["severity"], "warn");
    assert_eq!(f["spec"], "RFC 9700 §2.4");
    // The server does not support it: its error is judged too.
    assert!(stdout.contains("unsupported_grant_type"), "{stdout}");
    assert!(!stdout.contains(password), "the password is in stdout");
}

/// A JWK Set server: the first request gets `first`, every later one `later`.
async fn jwks_server(first: Value, later: Value) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let n = hits.fetch_add(1, Ordering::SeqCst);
            let doc = if n == 0 { first.clone() } else { later.clone() };
            async move { axum::Json(doc) }
        }),
    );
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    url
}

#[tokio::test(flavor = "multi_thread")]
async fn jwt_kid_rotated_is_told_from_never_published() {
    use gatewise_test_support::mint::TestKey;
    let old = TestKey::new("ES256", "old-key");
    let new = TestKey::new("ES256", "new-key");
    let now = Wall.unix_now();
    let token = new.sign(
        serde_json::json!({"typ": "at+jwt"}),
        serde_json::json!({"iss": "https://as.test", "sub": "svc", "aud": "https://api.test",
            "client_id": "svc", "iat": now, "exp": now + 300, "jti": "j1"}),
    );
    let args = |url: &str| {
        vec![
            "doctor".to_string(),
            "jwt".into(),
            token.clone(),
            "--jwks".into(),
            url.to_string(),
            "--issuer".into(),
            "https://as.test".into(),
            "--audience".into(),
            "https://api.test".into(),
            "--format".into(),
            "json".into(),
        ]
    };
    // Rotated: the first fetch is stale, the refetch has the key.
    let url = jwks_server(TestKey::jwks(&[&old]), TestKey::jwks(&[&old, &new])).await;
    let a = args(&url);
    let out = gatewise(&a.iter().map(String::as_str).collect::<Vec<_>>(), &[]).await;
    let v = json(&out);
    let c = codes(&v);
    assert!(
        c.contains(&"jwks-kid-found-after-refetch".to_string()),
        "{c:?}"
    );
    assert!(c.contains(&"jwt-signature-verified".to_string()), "{c:?}");
    assert!(!c.contains(&"jwt-kid-not-in-jwks".to_string()), "{c:?}");
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert_eq!(v["verdict"], "warn");
    let t = v["transcript"].as_array().unwrap();
    assert_eq!(t.len(), 2, "{v:#}");
    assert_eq!(t[1]["label"], "jwks (refetch)");
    assert!(
        t[1]["hops"][0]["request"]["headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h[0] == "Cache-Control" && h[1] == "no-cache"),
        "{v:#}"
    );
    assert!(v["decoded"]["claims"]["iss"] == "https://as.test", "{v:#}");

    // Never published: the kid is missing from both fetches.
    let url = jwks_server(TestKey::jwks(&[&old]), TestKey::jwks(&[&old])).await;
    let a = args(&url);
    let out = gatewise(&a.iter().map(String::as_str).collect::<Vec<_>>(), &[]).await;
    let v = json(&out);
    let c = codes(&v);
    assert!(c.contains(&"jwks-kid-never-published".to_string()), "{c:?}");
    assert!(
        !c.contains(&"jwks-kid-found-after-refetch".to_string()),
        "{c:?}"
    );
    assert!(!c.contains(&"jwt-kid-not-in-jwks".to_string()), "{c:?}");
    assert_eq!(out.status.code(), Some(1), "{v:#}");

    // The key is there at once: one fetch, no refetch finding.
    let url = jwks_server(TestKey::jwks(&[&new]), TestKey::jwks(&[&new])).await;
    let a = args(&url);
    let out = gatewise(&a.iter().map(String::as_str).collect::<Vec<_>>(), &[]).await;
    let v = json(&out);
    assert_eq!(v["transcript"].as_array().unwrap().len(), 1, "{v:#}");
    assert!(
        !codes(&v).iter().any(|c| c.starts_with("jwks-kid-")),
        "{v:#}"
    );
    assert_eq!(out.status.code(), Some(0), "{v:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn jwt_with_discovery_after_a_key_rotation() {
    let (issuer, _, authz) = authz_handle().await;
    // The client's saved copy of the keys, from before the rotation.
    let dir = temp_dir("jwks-file");
    std::fs::create_dir_all(&dir).unwrap();
    let saved = dir.join("jwks.json");
    std::fs::write(&saved, authz.jwks().to_string()).unwrap();
    authz.rotate_keys(true).unwrap();
    let token = authz
        .mint_access_token(
            "demo-client",
            "https://api.example.test",
            "orders.read",
            300,
        )
        .unwrap();
    let out = gatewise(
        &[
            "doctor",
            "jwt",
            &token,
            "--jwks",
            saved.to_str().unwrap(),
            "--issuer",
            &issuer,
            "--discover",
            "--audience",
            "https://api.example.test",
            "--format",
            "json",
        ],
        &[],
    )
    .await;
    let v = json(&out);
    let c = codes(&v);
    assert!(
        c.contains(&"jwks-kid-found-after-refetch".to_string()),
        "{c:?}"
    );
    assert!(c.contains(&"jwt-signature-verified".to_string()), "{c:?}");
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "jwks-kid-found-after-refetch")
        .unwrap();
    assert!(
        f["evidence"].as_str().unwrap().contains("jwks.json"),
        "{f:#}"
    );

    // Discovery alone: the current set verifies the token; human output
    // shows the exchanges and the decoded token.
    let out = gatewise(
        &["doctor", "jwt", &token, "--issuer", &issuer, "--discover"],
        &[],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("GET ") && text.contains("/jwks.json → 200"),
        "{text}"
    );
    assert!(text.contains("signature verifies"), "{text}");
    assert!(text.contains("claims: "), "{text}");
    assert!(!text.contains(&token), "the token is printed in clear");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn authorize_url_lint_agrees_with_the_server() {
    let (issuer, _) = authz_clients().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let authorize = |client: &str, redirect: &str| {
        let mut u = url::Url::parse(&format!("{issuer}/authorize")).unwrap();
        u.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client)
            .append_pair("redirect_uri", redirect)
            .append_pair("scope", "orders.read")
            .append_pair("state", "st-1")
            .append_pair("code_challenge", CHALLENGE)
            .append_pair("code_challenge_method", "S256");
        u.to_string()
    };
    // A native client on a port of its own: the lint and the server accept it.
    let good = authorize("demo-native", "http://127.0.0.1:53111/callback");
    let out = gatewise(
        &[
            "doctor",
            "authorize-url",
            &good,
            "--registered-redirect-uri",
            "http://127.0.0.1/callback",
            "--code-verifier-env",
            "GW_TEST_VERIFIER",
            "--format",
            "json",
        ],
        &[("GW_TEST_VERIFIER", VERIFIER)],
    )
    .await;
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert_eq!(v["verdict"], "ok", "{v:#}");
    let c = codes(&v);
    assert!(
        c.contains(&"redirect-uri-loopback-port".to_string()),
        "{c:?}"
    );
    assert!(c.contains(&"authorize-pkce-s256".to_string()), "{c:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(VERIFIER));
    assert!(v["parameters"].as_array().unwrap().len() >= 7, "{v:#}");
    assert_eq!(http.get(&good).send().await.unwrap().status(), 200);

    // A trailing slash the registration lacks: the lint names it, the server refuses.
    let bad = authorize("demo-web", "http://127.0.0.1:8000/callback/");
    let out = gatewise(
        &[
            "doctor",
            "authorize-url",
            &bad,
            "--registered-redirect-uri",
            WEB_REDIRECT,
        ],
        &[],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("redirect_uri differs from the registered one: trailing slash"),
        "{text}"
    );
    assert!(text.contains("^ character 31: trailing slash"), "{text}");
    let refused = http.get(&bad).send().await.unwrap().status();
    assert!(refused.is_client_error(), "{refused}");

    // A verifier that does not belong to the challenge; markdown output.
    let out = gatewise(
        &[
            "doctor",
            "authorize-url",
            &good,
            "--registered-redirect-uri",
            "http://127.0.0.1/callback",
            "--code-verifier-env",
            "GW_TEST_VERIFIER",
            "--format",
            "markdown",
        ],
        &[(
            "GW_TEST_VERIFIER",
            "another-verifier-0123456789-0123456789-abcdefgh",
        )],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("`authorize-pkce-verifier-mismatch`"),
        "{text}"
    );
}

/// A token endpoint behind a "load balancer" whose second instance is
/// broken: every fourth request, starting with the second, gets an HTML 502.
async fn flaky() -> SocketAddr {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let n = hits.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => got.extend_from_slice(&buf[..k]),
                    }
                }
                let (status, ct, body): (&str, &str, &[u8]) = if n % 4 == 1 {
                    ("502 Bad Gateway", "text/html", b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>")
                } else {
                    ("200 OK", "application/json", br#"{"access_token":"opaque-token-0123456789abcdef","token_type":"Bearer","expires_in":3600}"#)
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {ct}\r\nCache-Control: no-store\r\nPragma: no-cache\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(body).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn repeat_groups_the_outcomes() {
    let addr = flaky().await;
    let url = format!("http://{addr}/token");
    let out = gatewise(
        &[
            "doctor",
            "token",
            "--token-url",
            &url,
            "--client-id",
            "svc",
            "--client-secret-env",
            "GW_TEST_SECRET",
            "--repeat",
            "4",
            "--format",
            "json",
        ],
        &[("GW_TEST_SECRET", "s3cr3t")],
    )
    .await;
    let v = json(&out);
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "repeat-outcomes-differ")
        .unwrap_or_else(|| panic!("{v:#}"))
        .clone();
    assert_eq!(
        f["evidence"],
        "3 of 4: HTTP 200 with a JSON token response; 1 of 4: HTTP 502 with an HTML page titled \"502 Bad Gateway\": error-response-html-page",
        "{f:#}"
    );
    // The bad run's findings say which runs they come from.
    let html = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "error-response-html-page")
        .unwrap_or_else(|| panic!("{:?}", codes(&v)));
    assert!(
        html["title"]
            .as_str()
            .unwrap()
            .starts_with("1 of 4 runs (like #2): "),
        "{html:#}"
    );
    let labels: Vec<&str> = v["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["token #1", "token #2", "token #3", "token #4"]);

    // Human output: the grouped outcomes are the finding's evidence.
    let out = gatewise(
        &[
            "doctor",
            "token",
            "--token-url",
            &url,
            "--client-id",
            "svc",
            "--auth",
            "none",
            "--repeat",
            "2",
        ],
        &[],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("sent 2 times, gave 2 different outcomes"),
        "{text}"
    );
    // --repeat 0 is a usage error.
    let out = gatewise(
        &[
            "doctor",
            "token",
            "--token-url",
            &url,
            "--client-id",
            "svc",
            "--auth",
            "none",
            "--repeat",
            "0",
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
}

/// A small well-formedness check (no XML crate in the tree): tags nest and
/// close, `&` starts an entity, attribute values are quoted.
fn well_formed_xml(x: &str) -> Result<(), String> {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = x.trim_start();
    rest = rest
        .strip_prefix("<?xml")
        .and_then(|r| r.split_once("?>"))
        .map(|(_, r)| r)
        .ok_or("no XML declaration")?;
    while let Some(i) = rest.find('<') {
        let text = &rest[..i];
        for (j, _) in text.match_indices('&') {
            let ent = &text[j..];
            if !["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                .iter()
                .any(|e| ent.starts_with(e))
            {
                return Err(format!("bare & in {text:?}"));
            }
        }
        let end = rest[i..].find('>').ok_or("unclosed tag")? + i;
        let tag = &rest[i + 1..end];
        if let Some(name) = tag.strip_prefix('/') {
            match stack.pop() {
                Some(open) if open == name => {}
                other => return Err(format!("</{name}> closes {other:?}")),
            }
        } else {
            let name = tag
                .split_whitespace()
                .next()
                .unwrap_or("")
                .trim_end_matches('/');
            if !tag.matches('"').count().is_multiple_of(2) || tag.contains('<') {
                return Err(format!("bad tag <{tag}>"));
            }
            if !tag.ends_with('/') {
                stack.push(name.to_string());
            }
        }
        rest = &rest[end + 1..];
    }
    if stack.is_empty() && rest.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("unclosed: {stack:?}"))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn junit_for_ci() {
    let addr = misbehaving().await;
    let url = format!("http://{addr}/oauth/token?a=1&b=2");
    let out = gatewise(
        &[
            "doctor",
            "token",
            "--token-url",
            &url,
            "--client-id",
            "svc",
            "--client-secret-env",
            "GW_TEST_SECRET",
            "--format",
            "junit",
        ],
        &[("GW_TEST_SECRET", "s3cr3t-for-junit")],
    )
    .await;
    let x = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{x}");
    well_formed_xml(&x).unwrap_or_else(|e| panic!("{e}:\n{x}"));
    assert!(
        x.contains("<failure type=\"token-expires-in-string\""),
        "{x}"
    );
    assert!(
        x.contains("<property name=\"verdict\" value=\"error\"/>"),
        "{x}"
    );
    assert!(x.contains("/oauth/token?a=1&amp;b=2"), "{x}");
    assert!(
        x.contains("token: POST http://"),
        "the exchanges are in system-out: {x}"
    );
    assert!(!x.contains("s3cr3t-for-junit"));
    let failures = x.matches("<failure ").count();
    assert!(x.contains(&format!("failures=\"{failures}\"")), "{x}");

    // An ok run still has a test case (the verdict), and passes.
    let (issuer, _) = authz().await;
    let out = gatewise(&["doctor", "discovery", &issuer, "--format", "junit"], &[]).await;
    let x = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{x}");
    well_formed_xml(&x).unwrap_or_else(|e| panic!("{e}:\n{x}"));
    assert!(x.contains("failures=\"0\""), "{x}");
    assert!(x.contains("name=\"verdict\""), "{x}");

    // The offline commands take it too.
    let out = gatewise(
        &[
            "doctor",
            "authorize-url",
            "https://as.test/authorize?response_type=code&client_id=c&redirect_uri=https%3A%2F%2Fapp.test%2Fcb%2F",
            "--registered-redirect-uri",
            "https://app.test/cb",
            "--format",
            "junit",
        ],
        &[],
    )
    .await;
    let x = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{x}");
    well_formed_xml(&x).unwrap_or_else(|e| panic!("{e}:\n{x}"));
    assert!(x.contains("<failure type=\"redirect-uri-mismatch\""), "{x}");
}

/// A reverse proxy in front of `upstream` that rewrites token responses the
/// way misconfigured gateways do: `expires_in` becomes a string, the
/// Content-Type text/plain, and it adds `Via`.
async fn rewriting_proxy(upstream: String) -> String {
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let upstream = upstream.clone();
        async move {
            let (parts, body) = req.into_parts();
            let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
            let mut r = reqwest::Client::new()
                .post(format!("{upstream}{}", parts.uri.path()))
                .body(bytes);
            for (n, v) in &parts.headers {
                if n != "host" && n != "content-length" {
                    r = r.header(n, v);
                }
            }
            let resp = r.send().await.unwrap();
            let status = resp.status().as_u16();
            let mut doc: Value = resp.json().await.unwrap();
            if let Some(e) = doc.get_mut("expires_in") {
                *e = Value::String(e.to_string());
            }
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                [("content-type", "text/plain"), ("via", "1.1 rewriter")],
                doc.to_string(),
            )
        }
    });
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    url
}

/// A gateway that answers every request itself with an HTML 403 page.
async fn html_wall() -> String {
    let app = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::FORBIDDEN,
            [("content-type", "text/html")],
            "<html><head><title>403 Forbidden</title></head><body>Access denied by policy</body></html>",
        )
    });
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/edge", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    url
}

#[tokio::test(flavor = "multi_thread")]
async fn via_diffs_direct_and_intermediary() {
    let (issuer, secret) = authz().await;
    let run = |via: String| {
        let (issuer, secret) = (issuer.clone(), secret.clone());
        async move {
            gatewise(
                &[
                    "doctor",
                    "token",
                    "--issuer",
                    &issuer,
                    "--client-id",
                    "demo-client",
                    "--client-secret-env",
                    "GW_TEST_SECRET",
                    "--scope",
                    "orders.read",
                    "--via",
                    &via,
                    "--format",
                    "json",
                ],
                &[("GW_TEST_SECRET", &secret)],
            )
            .await
        }
    };
    // A proxy that rewrites the body and Content-Type: both named.
    let out = run(rewriting_proxy(issuer.clone()).await).await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let v = json(&out);
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    let find = |code: &str| {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["code"] == code)
            .unwrap_or_else(|| panic!("no {code}: {:?}", codes(&v)))
            .clone()
    };
    let body = find("via-response-differs");
    assert_eq!(
        body["title"], "through the intermediary: expires_in is a string instead of a number",
        "{body:#}"
    );
    let headers = find("via-headers-differ");
    assert!(
        headers["evidence"]
            .as_str()
            .unwrap()
            .contains("content-type: application/json → text/plain"),
        "{headers:#}"
    );
    assert!(
        headers["evidence"]
            .as_str()
            .unwrap()
            .contains("other headers added: via")
    );
    // The run through the proxy is judged too, and says so.
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "token-expires-in-string"
                && f["title"].as_str().unwrap().starts_with("via 127.0.0.1: ")),
        "{v:#}"
    );
    let labels: Vec<&str> = v["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["label"].as_str().unwrap())
        .collect();
    assert_eq!(&labels[3..], ["token (direct)", "token (via)"]);
    assert!(!stdout.contains(&secret));

    // A gateway that answers with its own HTML page: "replaced".
    let wall = html_wall().await;
    let out = run(wall.clone()).await;
    let v = json(&out);
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "via-response-differs")
        .unwrap_or_else(|| panic!("{v:#}"))
        .clone();
    assert!(
        f["title"].as_str().unwrap().starts_with(
            "the intermediary replaced the response: HTTP 403 with an HTML page titled \"403 Forbidden\" instead of HTTP 200"
        ),
        "{f:#}"
    );
    // The request went to the gateway's base path plus the token path.
    let via_t = v["transcript"].as_array().unwrap().last().unwrap().clone();
    assert!(
        via_t["hops"][0]["request"]["url"]
            .as_str()
            .unwrap()
            .ends_with("/edge/token"),
        "{via_t:#}"
    );

    // Through the server itself: the same.
    let out = run(issuer.clone()).await;
    let v = json(&out);
    assert!(
        codes(&v).contains(&"via-response-same".to_string()),
        "{v:#}"
    );
    assert_eq!(out.status.code(), Some(0), "{v:#}");
}

/// Runs `doctor token --grant authorization_code` without a code: the
/// doctor prints the sign-in URL on stderr; this test plays the browser
/// (signs alice in through the form, then follows the redirect to the
/// doctor's loopback listener, after `tamper` had its say on the redirect
/// URL) and returns the doctor's JSON report and exit status.
async fn interactive_sign_in(
    issuer: &str,
    tamper: impl FnOnce(url::Url) -> url::Url,
) -> (Value, i32) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gatewise"))
        .args([
            "doctor",
            "token",
            "--issuer",
            issuer,
            "--client-id",
            "demo-native",
            "--auth",
            "none",
            "--grant",
            "authorization_code",
            "--scope",
            "openid orders.read",
            "--no-browser",
            "--wait",
            "30",
            "--format",
            "json",
        ])
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    // The sign-in URL, from the doctor's stderr.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            // The URL has a line of its own, after "Sign in through this URL:".
            if line.trim_start().starts_with("http") {
                let _ = tx.send(line.trim().to_owned());
            }
        }
    });
    let authorize = tokio::task::spawn_blocking(move || {
        rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap()
    })
    .await
    .unwrap();
    let authorize = url::Url::parse(&authorize).unwrap();
    assert!(authorize.as_str().starts_with(issuer), "{authorize}");
    let mut form: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    // What the doctor asked for: PKCE S256, state, nonce (openid), a
    // loopback redirect URI.
    assert_eq!(get("code_challenge_method"), "S256");
    assert_eq!(get("code_challenge").len(), 43);
    assert!(get("state").len() >= 22 && get("nonce").len() >= 22);
    assert!(get("redirect_uri").starts_with("http://127.0.0.1:"));
    form.push(("username".into(), "alice".into()));
    form.push(("password".into(), "wonderland".into()));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .post(format!("{issuer}/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let back = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let page = http.get(tamper(back)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    (json(&out), out.status.code().unwrap_or(-1))
}

#[tokio::test(flavor = "multi_thread")]
async fn interactive_sign_in_redeems_the_code_and_verifies_the_tokens() {
    let (issuer, _) = authz().await;
    let (v, code) = interactive_sign_in(&issuer, |u| u).await;
    let found = codes(&v);
    assert_eq!(code, 0, "{v:#}");
    assert!(
        !found.iter().any(|c| c.starts_with("callback-")),
        "{found:?}"
    );
    // The code was redeemed: the token exchange is in the transcript, and
    // the ID token (with the nonce) verified against the discovered keys.
    let labels: Vec<&str> = v["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["label"].as_str())
        .collect();
    assert!(labels.contains(&"token"), "{labels:?}");
    let text = v.to_string();
    assert!(!found.iter().any(|c| c.contains("nonce")), "{found:?}");
    assert!(!text.contains("wonderland"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_state_is_caught_and_the_code_not_redeemed() {
    let (issuer, _) = authz().await;
    let (v, code) = interactive_sign_in(&issuer, |mut u| {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .into_owned()
            .map(|(k, v)| {
                if k == "state" {
                    (k, "forged".into())
                } else {
                    (k, v)
                }
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
        u
    })
    .await;
    assert_eq!(code, 1, "{v:#}");
    assert!(
        codes(&v).contains(&"callback-state-mismatch".to_owned()),
        "{v:#}"
    );
    let redeemed = v["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["label"] == "token");
    assert!(!redeemed, "a code with a forged state must not be redeemed");
}

/// The embedded server with a one-second device polling interval (the
/// doctor waits before every poll), on 127.0.0.1: its issuer.
async fn authz_fast_device() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let mut config = AuthzConfig::dev(&issuer);
    config.device_interval = 1;
    let authz = Arc::new(Authz::new(config, Arc::new(Wall)).unwrap());
    let router = Arc::clone(&authz).router();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    issuer
}

/// Runs `doctor token --grant device_code`; this test plays the user: it
/// reads the user code and the verification URIs from the doctor's stderr,
/// opens the complete URI, signs alice in at the verification form and
/// chooses `decision`. Returns the doctor's JSON report and exit status.
async fn device_flow(issuer: &str, decision: &str) -> (Value, i32) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gatewise"))
        .args([
            "doctor",
            "token",
            "--issuer",
            issuer,
            "--client-id",
            "demo-native",
            "--auth",
            "none",
            "--grant",
            "device_code",
            "--scope",
            "openid orders.read",
            "--format",
            "json",
        ])
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<(String, String)>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some((k, v)) = line.split_once(": ")
                && matches!(k, "User code" | "Verification URI" | "Complete URI")
            {
                let _ = tx.send((k.to_owned(), v.trim().to_owned()));
            }
        }
    });
    let shown = tokio::task::spawn_blocking(move || {
        (0..3)
            .map(|_| rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap())
            .collect::<std::collections::HashMap<String, String>>()
    })
    .await
    .unwrap();
    let user_code = &shown["User code"];
    assert_eq!(shown["Verification URI"], format!("{issuer}/device"));
    let complete = &shown["Complete URI"];
    assert!(
        complete.starts_with(issuer) && complete.contains(&user_code.replace('-', "")[..4]),
        "{complete}"
    );
    let http = reqwest::Client::new();
    let page = http.get(complete).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let r = http
        .post(format!("{issuer}/device"))
        .form(&[
            ("user_code", user_code.as_str()),
            ("username", "alice"),
            ("password", "wonderland"),
            ("decision", decision),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    (json(&out), out.status.code().unwrap_or(-1))
}

#[tokio::test(flavor = "multi_thread")]
async fn device_code_is_polled_until_approved_and_redeemed() {
    let issuer = authz_fast_device().await;
    let (v, code) = device_flow(&issuer, "approve").await;
    let found = codes(&v);
    assert_eq!(code, 0, "{v:#}");
    // The server's responses follow RFC 8628 and the doctor honoured the
    // interval: no DV finding at all.
    assert!(!found.iter().any(|c| c.starts_with("device-")), "{found:?}");
    let labels: Vec<&str> = v["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["label"].as_str())
        .collect();
    assert!(labels.contains(&"device authorization"), "{labels:?}");
    let last = v["transcript"].as_array().unwrap().last().unwrap();
    assert!(
        last["label"].as_str().unwrap().starts_with("token (poll "),
        "{labels:?}"
    );
    // The tokens were judged like any grant's: both verified against the
    // discovered keys, nothing worse than a note.
    let verified = found
        .iter()
        .filter(|c| *c == "jwt-signature-verified")
        .count();
    assert_eq!(verified, 2, "access and ID token: {found:?}");
    assert_eq!(v["verdict"], "ok", "{v:#}");
    let text = v.to_string();
    assert!(
        text.contains("id_token"),
        "the token response is in the transcript"
    );
    assert!(!text.contains("wonderland"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_device_request_is_explained() {
    let issuer = authz_fast_device().await;
    let (v, code) = device_flow(&issuer, "deny").await;
    assert_eq!(code, 1, "{v:#}");
    assert!(
        codes(&v).contains(&"device-access-denied".to_owned()),
        "{v:#}"
    );
}

/// An authorization server whose metadata we control: both well-known
/// forms, a JWK Set (RFC 7517 App. A.1's EC key and a test RSA key), and a token endpoint
/// that answers `token_status` with `token_body`. `methods` is
/// `token_endpoint_auth_methods_supported` (absent when `None`).
async fn metadata_server(methods: Option<Value>, token_status: u16, token_body: Value) -> String {
    use axum::routing::{get, post};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let mut meta = serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "code_challenge_methods_supported": ["S256"],
    });
    if let Some(m) = methods {
        meta["token_endpoint_auth_methods_supported"] = m;
    }
    let rsa: Value = serde_json::from_str(include_str!(
        "../../gatewise-probe/tests/fixtures/rsa-private.jwk.json"
    ))
    .unwrap();
    let jwks = serde_json::json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "1", "use": "sig", "alg": "ES256",
        "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
        "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"
    }, {
        "kty": "RSA", "kid": "2", "use": "sig", "alg": "RS256", "n": rsa["n"], "e": rsa["e"]
    }]});
    let json_response = |status: u16, v: Value| {
        (
            axum::http::StatusCode::from_u16(status).unwrap(),
            [
                ("content-type", "application/json"),
                ("cache-control", "no-store"),
            ],
            v.to_string(),
        )
    };
    let m1 = meta.clone();
    let m2 = meta.clone();
    let router = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || async move { json_response(200, m1) }),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(move || async move { json_response(200, m2) }),
        )
        .route(
            "/jwks",
            get(move || async move {
                (
                    [
                        ("content-type", "application/jwk-set+json"),
                        ("cache-control", "public, max-age=300"),
                    ],
                    jwks.to_string(),
                )
            }),
        )
        .route(
            "/token",
            post(move || async move {
                let mut r = json_response(token_status, token_body);
                if token_status == 401 {
                    return (
                        r.0,
                        [
                            ("content-type", "application/json"),
                            ("www-authenticate", "Basic realm=\"token\""),
                        ],
                        std::mem::take(&mut r.2),
                    );
                }
                r
            }),
        );
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    issuer
}

fn finding<'a>(v: &'a Value, code: &str) -> &'a Value {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {:?}", codes(v)))
}

/// CA-03 (RFC 8414 §2): the method used is compared with the metadata's
/// token_endpoint_auth_methods_supported, absent meaning client_secret_basic.
#[tokio::test(flavor = "multi_thread")]
async fn an_auth_method_the_metadata_does_not_list_is_named() {
    let ok = serde_json::json!({
        "access_token": "opaque-access-token-0123456789",
        "token_type": "Bearer",
        "expires_in": 3600
    });
    let run = |issuer: String, auth: &'static str| async move {
        let out = gatewise(
            &[
                "doctor",
                "token",
                "--issuer",
                &issuer,
                "--client-id",
                "svc",
                "--client-secret-env",
                "GW_TEST_SECRET",
                "--auth",
                auth,
                "--format",
                "json",
            ],
            &[("GW_TEST_SECRET", "s3cr3t")],
        )
        .await;
        (out.status.code(), json(&out))
    };

    // Basic, but only client_secret_post is listed: a warning, exit 0.
    let issuer = metadata_server(
        Some(serde_json::json!(["client_secret_post", "private_key_jwt"])),
        200,
        ok.clone(),
    )
    .await;
    let (code, v) = run(issuer.clone(), "client_secret_basic").await;
    let f = finding(&v, "client-auth-method-not-advertised");
    assert_eq!(
        (f["rule"].as_str(), f["severity"].as_str()),
        (Some("CA-03"), Some("warn")),
        "{f:#}"
    );
    assert_eq!(f["spec"], "RFC 8414 §2");
    assert_eq!(
        f["evidence"],
        "used: client_secret_basic; token_endpoint_auth_methods_supported: [client_secret_post, private_key_jwt]"
    );
    assert!(
        f["fix"]
            .as_str()
            .unwrap()
            .contains("--auth client_secret_post"),
        "{f:#}"
    );
    assert!(f["cause"].as_str().unwrap().len() > 20);
    assert_eq!(
        (code, v["verdict"].as_str()),
        (Some(0), Some("warn")),
        "{v:#}"
    );

    // The listed method: no CA-03 finding.
    let (code, v) = run(issuer, "client_secret_post").await;
    assert!(
        !codes(&v)
            .iter()
            .any(|c| c.starts_with("client-auth-method")),
        "{v:#}"
    );
    assert_eq!(
        (code, v["verdict"].as_str()),
        (Some(0), Some("ok")),
        "{v:#}"
    );

    // Member absent: client_secret_basic only (RFC 8414 §2 default).
    let issuer = metadata_server(None, 200, ok).await;
    let (_, v) = run(issuer.clone(), "client_secret_post").await;
    let f = finding(&v, "client-auth-method-not-advertised");
    assert!(
        f["evidence"]
            .as_str()
            .unwrap()
            .contains("absent, so only client_secret_basic"),
        "{f:#}"
    );
    assert!(
        f["fix"]
            .as_str()
            .unwrap()
            .contains("--auth client_secret_basic"),
        "{f:#}"
    );
    let (_, v) = run(issuer, "client_secret_basic").await;
    assert!(
        !codes(&v).contains(&"client-auth-method-not-advertised".to_string()),
        "{v:#}"
    );
}

/// invalid_client with an advertised method while others are advertised
/// too: the CA-03 hint says the client may be registered for another.
#[tokio::test(flavor = "multi_thread")]
async fn invalid_client_hints_at_the_other_advertised_methods() {
    let issuer = metadata_server(
        Some(serde_json::json!(["client_secret_basic", "client_secret_post"])),
        401,
        serde_json::json!({"error": "invalid_client", "error_description": "client authentication failed"}),
    )
    .await;
    let out = gatewise(
        &[
            "doctor",
            "token",
            "--issuer",
            &issuer,
            "--client-id",
            "svc",
            "--client-secret-env",
            "GW_TEST_SECRET",
            "--format",
            "json",
        ],
        &[("GW_TEST_SECRET", "s3cr3t")],
    )
    .await;
    let v = json(&out);
    let f = finding(&v, "client-auth-method-others-advertised");
    assert_eq!(
        (f["rule"].as_str(), f["severity"].as_str()),
        (Some("CA-03"), Some("info"))
    );
    assert!(
        f["title"]
            .as_str()
            .unwrap()
            .contains("also accepts client_secret_post"),
        "{f:#}"
    );
    assert!(
        f["fix"]
            .as_str()
            .unwrap()
            .contains("--auth client_secret_post"),
        "{f:#}"
    );
    assert!(!codes(&v).contains(&"client-auth-method-not-advertised".to_string()));
    assert!(
        codes(&v).contains(&"error-request-refused".to_string()),
        "{v:#}"
    );
    assert_eq!(
        (out.status.code(), v["verdict"].as_str()),
        (Some(0), Some("warn")),
        "{v:#}"
    );
}

/// `--auth private_key_jwt` against the project's own server (RFC 7523
/// there too): a private RSA JWK file, the public half registered; the
/// server checks aud (token endpoint or issuer), exp (at most 5 min) and
/// jti replay, so two runs also show a fresh jti each time.
#[tokio::test(flavor = "multi_thread")]
async fn private_key_jwt_against_the_embedded_server() {
    let key_file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../gatewise-probe/tests/fixtures/rsa-private.jwk.json");
    let private: Value =
        serde_json::from_str(&std::fs::read_to_string(&key_file).unwrap()).unwrap();
    let public = serde_json::json!({"keys": [{
        "kty": "RSA", "kid": private["kid"], "alg": "RS256", "use": "sig",
        "n": private["n"], "e": private["e"]
    }]});
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let mut config = AuthzConfig::dev(&issuer);
    config.clients.push(gatewise_authz::clients::ClientSpec {
        secret: String::new(),
        jwks: Some(public.to_string()),
        ..gatewise_authz::clients::ClientSpec::machine(
            "key-client",
            "",
            &["orders.read"],
            &["https://api.example.test"],
        )
    });
    let authz = Arc::new(Authz::new(config, Arc::new(Wall)).unwrap());
    let router = Arc::clone(&authz).router();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    for _ in 0..2 {
        let out = gatewise(
            &[
                "doctor",
                "token",
                "--issuer",
                &issuer,
                "--client-id",
                "key-client",
                "--auth",
                "private_key_jwt",
                "--client-key-file",
                key_file.to_str().unwrap(),
                "--scope",
                "orders.read",
                "--format",
                "json",
            ],
            &[],
        )
        .await;
        let v = json(&out);
        assert_eq!(
            (out.status.code(), v["verdict"].as_str()),
            (Some(0), Some("ok")),
            "{v:#}"
        );
        assert!(
            codes(&v).contains(&"jwt-signature-verified".to_string()),
            "{v:#}"
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("eyJ"),
            "an unmasked JWT in the output"
        );
    }

    // A bad key file: exit 2, one line naming the file and the problem.
    let dir = temp_dir("bad-key");
    std::fs::create_dir_all(&dir).unwrap();
    let public_only = dir.join("public.jwk.json");
    std::fs::write(&public_only, public["keys"][0].to_string()).unwrap();
    let out = gatewise(
        &[
            "doctor",
            "token",
            "--issuer",
            &issuer,
            "--client-id",
            "key-client",
            "--auth",
            "private_key_jwt",
            "--client-key-file",
            public_only.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("public.jwk.json") && err.contains("public key (no \"d\")"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A token endpoint with one misbehaviour per path (the failure modes of
/// `oauth-rules.md` §2 a live exchange shows, as in gatewise-probe's
/// `tests/misbehaving.rs`), raw TCP so that a Content-Length larger than
/// the body can be sent. Every answer closes the connection.
async fn misbehaving_modes() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&got).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                let plain = |status: &str, ct: &str, body: &[u8]| {
                    let mut out = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: {ct}\r\nCache-Control: no-store\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    out.extend_from_slice(body);
                    out
                };
                let bytes = match path.as_str() {
                    "/html-502" => plain(
                        "502 Bad Gateway",
                        "text/html",
                        b"<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>",
                    ),
                    // Content-Length promises 200 bytes; the connection closes after 60.
                    "/truncated" => b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: 200\r\n\r\n{\"access_token\":\"opaque-secret-token-0123456789\",\"token_type\":\"Bea".to_vec(),
                    "/form" => plain(
                        "200 OK",
                        "application/x-www-form-urlencoded",
                        b"access_token=gho_16C7e42F292c6912E7710c838347Ae178B4a&scope=repo%2Cgist&token_type=bearer",
                    ),
                    "/error-200" => plain(
                        "200 OK",
                        "application/json",
                        br#"{"error":"invalid_grant","error_description":"bad credentials"}"#,
                    ),
                    "/basic-401" => plain(
                        "401 Unauthorized",
                        "application/json",
                        br#"{"error":"invalid_client","error_description":"client authentication failed"}"#,
                    ),
                    "/redirect" => plain(
                        "302 Found\r\nLocation: /login?rd=%2Ftoken",
                        "text/html",
                        b"<a href=\"/login\">Found</a>",
                    ),
                    "/login?rd=%2Ftoken" => plain(
                        "200 OK",
                        "text/html; charset=utf-8",
                        b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><form></form></body></html>",
                    ),
                    _ => plain("404 Not Found", "text/plain", b"not found"),
                };
                let _ = s.write_all(&bytes).await;
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// The binary names the rule of each misbehaviour in `--format json`, with
/// the exit code of an `error` verdict, and never prints the secret.
#[tokio::test(flavor = "multi_thread")]
async fn misbehaving_modes_are_named_by_the_binary() {
    let addr = misbehaving_modes().await;
    let secret = "modes-s3cr3t+/=";
    for (path, rule, code) in [
        ("/html-502", "ER-04", "error-response-html-page"),
        ("/truncated", "HT-03", "body-truncated"),
        ("/form", "TR-02", "token-not-json"),
        ("/error-200", "TR-11", "token-error-in-success"),
        ("/basic-401", "ER-01", "error-401-without-challenge"),
        ("/redirect", "TR-01", "token-redirect"),
    ] {
        let url = format!("http://{addr}{path}");
        let out = gatewise(
            &[
                "doctor",
                "token",
                "--token-url",
                &url,
                "--client-id",
                "svc",
                "--client-secret-env",
                "GW_TEST_SECRET",
                "--timeout",
                "5",
                "--format",
                "json",
            ],
            &[("GW_TEST_SECRET", secret)],
        )
        .await;
        let v = json(&out);
        assert_eq!(out.status.code(), Some(1), "{path}: {v:#}");
        assert_eq!(v["verdict"], "error", "{path}");
        assert_eq!(v["subject"], url.as_str());
        let f = finding(&v, code);
        assert_eq!(f["rule"], rule, "{path}: {f:#}");
        assert_eq!(f["severity"], "error", "{path}: {f:#}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stdout.contains(secret), "{path}: the secret is in stdout");
        assert!(
            !stdout.contains("opaque-secret-token-0123456789")
                && !stdout.contains("gho_16C7e42F292c6912E7710c838347Ae178B4a"),
            "{path}: an access token is in stdout"
        );
    }
}

/// `--format markdown` for a ticket: the verdict in the heading, a table of
/// findings, one section per finding, and the exchanges with their timings.
#[tokio::test(flavor = "multi_thread")]
async fn token_in_markdown() {
    let addr = misbehaving().await;
    let url = format!("http://{addr}/oauth/token");
    let secret = "md-s3cr3t-value";
    let out = gatewise(
        &[
            "doctor",
            "token",
            "--token-url",
            &url,
            "--client-id",
            "svc",
            "--client-secret-env",
            "GW_TEST_SECRET",
            "--format",
            "markdown",
        ],
        &[("GW_TEST_SECRET", secret)],
    )
    .await;
    let md = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(out.status.code(), Some(1), "{md}");
    assert!(
        md.starts_with(&format!("### gatewise doctor: `{url}` — **error**\n")),
        "{md}"
    );
    assert!(
        md.contains("| severity | rule | code | finding |\n|---|---|---|---|\n"),
        "{md}"
    );
    assert!(
        md.lines()
            .any(|l| l.starts_with("| error | TR-06 | `token-expires-in-string` |")),
        "{md}"
    );
    assert!(
        md.contains("#### TR-06 `token-expires-in-string` (error)"),
        "{md}"
    );
    assert!(md.contains("- **Spec:** RFC 6749 §5.1"), "{md}");
    // The exchanges table: the request, the response, the per-phase timings.
    assert!(
        md.contains("#### Exchanges\n\n| exchange | request → response | timings |"),
        "{md}"
    );
    let row = md
        .lines()
        .find(|l| l.starts_with("| token | `POST "))
        .unwrap_or_else(|| panic!("no exchange row: {md}"));
    assert!(row.contains(&format!("`POST {url} → 200 OK`")), "{row}");
    for phase in ["dns ", "connect ", "tls –", "first byte ", "total "] {
        assert!(row.contains(phase), "{phase}: {row}");
    }
    assert!(!md.contains(secret));
    assert!(!md.contains("opaque-secret-token-0123456789"));
    // Nothing but Markdown on stdout: no JSON, no ANSI colour.
    assert!(!md.contains('\u{1b}'));
}

/// A CONNECT proxy on 127.0.0.1 that tunnels to the requested authority;
/// counts the CONNECTs it served.
async fn connect_proxy() -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let served = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&served);
    tokio::spawn(async move {
        loop {
            let Ok((mut c, _)) = l.accept().await else {
                return;
            };
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if c.read(&mut b).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(b[0]);
                }
                let text = String::from_utf8_lossy(&head).to_string();
                let mut parts = text.split_whitespace();
                if parts.next() != Some("CONNECT") {
                    let _ = c
                        .write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                        .await;
                    return;
                }
                count.fetch_add(1, Ordering::SeqCst);
                let target = parts.next().unwrap_or("").to_string();
                let Ok(mut up) = tokio::net::TcpStream::connect(&target).await else {
                    let _ = c
                        .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                        .await;
                    return;
                };
                let _ = c
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await;
                let _ = tokio::io::copy_bidirectional(&mut c, &mut up).await;
            });
        }
    });
    (addr, served)
}

/// A server on 127.0.0.1 that speaks plain HTTP where TLS is expected: it
/// answers 400 to whatever arrives (a TLS ClientHello) and closes. Counts
/// its connections.
async fn not_tls() -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
                let _ = s.shutdown().await;
            });
        }
    });
    (addr, seen)
}

/// `HTTPS_PROXY` from the binary's environment is used for an https token
/// endpoint (a CONNECT tunnel, NET-11 and the transcript's `proxy`), and
/// `NO_PROXY` then bypasses it. The test binary has no TLS server, so the
/// endpoint behind the tunnel is a plain-HTTP port: the handshake fails
/// (TLS-06) both ways, which is enough to see which path the bytes took.
#[tokio::test(flavor = "multi_thread")]
async fn https_proxy_is_used_and_no_proxy_bypasses_it() {
    use std::sync::atomic::Ordering;
    let (proxy, connects) = connect_proxy().await;
    let (target, reached) = not_tls().await;
    let url = format!("https://127.0.0.1:{}/token", target.port());
    let proxy_url = format!("http://{proxy}");
    let args = [
        "doctor",
        "token",
        "--token-url",
        &url,
        "--client-id",
        "svc",
        "--client-secret-env",
        "GW_TEST_SECRET",
        "--timeout",
        "5",
        "--format",
        "json",
    ];
    let out = gatewise(
        &args,
        &[
            ("GW_TEST_SECRET", "s3cr3t"),
            ("HTTPS_PROXY", &proxy_url),
            ("NO_PROXY", "example.invalid,.corp.test"),
        ],
    )
    .await;
    let v = json(&out);
    assert_eq!(connects.load(Ordering::SeqCst), 1, "{v:#}");
    assert_eq!(reached.load(Ordering::SeqCst), 1, "{v:#}");
    let used = finding(&v, "proxy-used");
    assert_eq!(used["rule"], "NET-11");
    assert!(
        used["evidence"].as_str().unwrap().contains("CONNECT"),
        "{used:#}"
    );
    let t = &v["transcript"][0];
    assert_eq!(t["proxy"]["proxy"], proxy_url.as_str(), "{t:#}");
    assert_eq!(t["proxy"]["tunnel"], true);
    assert_eq!(t["hops"][0]["remote"], proxy.to_string().as_str());
    assert!(t["hops"][0]["timings"]["tunnel_ms"].is_number(), "{t:#}");
    assert_eq!(t["failure"]["rule"], "TLS-06", "{t:#}");
    assert_eq!(out.status.code(), Some(3), "{v:#}");

    // NO_PROXY names the host: straight to it, the proxy is not asked.
    let out = gatewise(
        &args,
        &[
            ("GW_TEST_SECRET", "s3cr3t"),
            ("HTTPS_PROXY", &proxy_url),
            ("NO_PROXY", "example.invalid,127.0.0.1"),
        ],
    )
    .await;
    let v = json(&out);
    assert_eq!(connects.load(Ordering::SeqCst), 1, "{v:#}");
    assert_eq!(reached.load(Ordering::SeqCst), 2, "{v:#}");
    assert!(!codes(&v).contains(&"proxy-used".to_string()), "{v:#}");
    let t = &v["transcript"][0];
    assert!(t["proxy"].is_null(), "{t:#}");
    assert_eq!(t["hops"][0]["remote"], target.to_string().as_str());
    assert!(t["hops"][0]["timings"]["tunnel_ms"].is_null(), "{t:#}");
    assert_eq!(t["failure"]["rule"], "TLS-06", "{t:#}");
}

/// Replaces (or adds) query parameters of the redirect back to the doctor.
fn with_query(mut u: url::Url, set: &[(&str, &str)], drop: &[&str]) -> url::Url {
    let mut pairs: Vec<(String, String)> = u
        .query_pairs()
        .into_owned()
        .filter(|(k, _)| !drop.contains(&k.as_str()) && !set.iter().any(|(n, _)| n == k))
        .collect();
    pairs.extend(set.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u
}

fn redeemed(v: &Value) -> bool {
    v["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["label"] == "token")
}

/// RFC 9207 §2.4: a redirect whose `iss` names another issuer (a mix-up)
/// is refused before the code is redeemed, and the finding says so.
#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_iss_in_the_callback_stops_before_redeeming() {
    let (issuer, _) = authz().await;
    let (v, code) = interactive_sign_in(&issuer, |u| {
        // The embedded server sends iss (and promises it in its metadata).
        assert!(u.query_pairs().any(|(k, _)| k == "iss"), "{u}");
        with_query(u, &[("iss", "https://attacker.example.test")], &[])
    })
    .await;
    assert_eq!(code, 1, "{v:#}");
    let f = finding(&v, "callback-iss-mismatch");
    assert_eq!(f["rule"], "AZ-04");
    assert_eq!(f["severity"], "error");
    let ev = f["evidence"].as_str().unwrap();
    assert!(
        ev.contains("https://attacker.example.test") && ev.contains(&issuer),
        "{ev}"
    );
    assert!(
        !redeemed(&v),
        "a code from another issuer must not be redeemed"
    );
}

/// RFC 6749 §4.1.2.1: an error redirect (`error=access_denied`) ends the
/// run with the error named; there is no code to redeem.
#[tokio::test(flavor = "multi_thread")]
async fn an_access_denied_callback_is_named_and_nothing_redeemed() {
    let (issuer, _) = authz().await;
    let (v, code) = interactive_sign_in(&issuer, |u| {
        with_query(
            u,
            &[
                ("error", "access_denied"),
                ("error_description", "The user denied the request"),
            ],
            &["code"],
        )
    })
    .await;
    assert_eq!(code, 1, "{v:#}");
    let f = finding(&v, "callback-error");
    assert_eq!(f["rule"], "AZ-03");
    let text = format!("{} {}", f["title"], f["evidence"]);
    assert!(text.contains("access_denied"), "{f:#}");
    // state and iss came back intact: only the error is reported.
    let c = codes(&v);
    assert!(
        !c.iter()
            .any(|c| c.starts_with("callback-state") || c.starts_with("callback-iss")),
        "{c:?}"
    );
    assert!(!redeemed(&v), "an error redirect has nothing to redeem");
}

/// What a discovery test server publishes: the two well-known documents
/// (absent: 404) and the JWK Set's keys.
struct Published {
    rfc8414: Option<Value>,
    oidc: Option<Value>,
    keys: Value,
}

/// A metadata server on 127.0.0.1; `publish` gets the issuer and says
/// what to serve.
async fn discovery_server(publish: impl FnOnce(&str) -> Published) -> String {
    use axum::routing::get;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let p = publish(&issuer);
    let doc = |d: Option<Value>| {
        move || async move {
            match d {
                Some(v) => (
                    axum::http::StatusCode::OK,
                    [("content-type", "application/json")],
                    v.to_string(),
                ),
                None => (
                    axum::http::StatusCode::NOT_FOUND,
                    [("content-type", "text/plain")],
                    "not found".to_string(),
                ),
            }
        }
    };
    let jwks = serde_json::json!({ "keys": p.keys }).to_string();
    let router = axum::Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(doc(p.rfc8414)),
        )
        .route("/.well-known/openid-configuration", get(doc(p.oidc)))
        .route(
            "/jwks",
            get(move || async move {
                (
                    [
                        ("content-type", "application/jwk-set+json"),
                        ("cache-control", "public, max-age=300"),
                    ],
                    jwks,
                )
            }),
        );
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    issuer
}

fn metadata(issuer: &str) -> Value {
    serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "code_challenge_methods_supported": ["S256"],
    })
}

fn rsa_key() -> Value {
    let rsa: Value = serde_json::from_str(include_str!(
        "../../gatewise-probe/tests/fixtures/rsa-private.jwk.json"
    ))
    .unwrap();
    serde_json::json!({"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256", "n": rsa["n"], "e": rsa["e"]})
}

/// RFC 7517 Appendix A.1's EC key.
fn ec_key() -> Value {
    serde_json::json!({
        "kty": "EC", "crv": "P-256", "kid": "ec-1", "use": "sig", "alg": "ES256",
        "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
        "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"
    })
}

/// MD-08: only the OpenID Connect form exists (RFC 8414 §3.1's URL is a
/// 404), so the doctor says which URL works; JK-10: ES256 is advertised
/// (RFC 8414 §2) but the JWK Set has only an RSA key.
#[tokio::test(flavor = "multi_thread")]
async fn one_well_known_form_and_an_algorithm_without_a_key() {
    let issuer = discovery_server(|iss| Published {
        rfc8414: None,
        oidc: Some(metadata(iss)),
        keys: serde_json::json!([rsa_key()]),
    })
    .await;
    let out = gatewise(&["doctor", "discovery", &issuer, "--format", "json"], &[]).await;
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    assert_eq!(v["verdict"], "warn", "{v:#}");
    let missing = finding(&v, "discovery-form-missing");
    assert_eq!(missing["rule"], "MD-08");
    let rfc_url = format!("{issuer}/.well-known/oauth-authorization-server");
    assert_eq!(
        missing["title"],
        format!("no metadata at {rfc_url}").as_str(),
        "{missing:#}"
    );
    let ev = missing["evidence"].as_str().unwrap();
    assert!(
        ev.contains("HTTP 404") && ev.contains("/.well-known/openid-configuration"),
        "{ev}"
    );
    let alg = finding(&v, "jwks-alg-without-key");
    assert_eq!(alg["rule"], "JK-10");
    assert_eq!(alg["severity"], "warn");
    let title = alg["title"].as_str().unwrap();
    assert!(
        title.contains("id_token_signing_alg_values_supported") && title.contains("ES256"),
        "{title}"
    );
    // RS256 has its key: one JK-10 only.
    let jk10 = codes(&v)
        .iter()
        .filter(|c| *c == "jwks-alg-without-key")
        .count();
    assert_eq!(jk10, 1, "{v:#}");
    assert!(!codes(&v).contains(&"discovery-forms-disagree".to_string()));
    // The JWK Set was found through the form that exists.
    let labels: Vec<&str> = v["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["label"].as_str())
        .collect();
    assert_eq!(
        labels,
        ["metadata (RFC 8414)", "metadata (OpenID Connect)", "jwks"]
    );
}

/// MD-09 (RFC 8414 §3.3, OpenID Connect Discovery §4.3): both forms exist
/// but name different token endpoints; the evidence shows both values.
/// Every advertised algorithm has a key here: no JK-10.
#[tokio::test(flavor = "multi_thread")]
async fn the_two_well_known_forms_disagree() {
    let issuer = discovery_server(|iss| {
        let mut other = metadata(iss);
        other["token_endpoint"] = Value::String(format!("{iss}/oauth2/v2/token"));
        Published {
            rfc8414: Some(other),
            oidc: Some(metadata(iss)),
            keys: serde_json::json!([rsa_key(), ec_key()]),
        }
    })
    .await;
    let out = gatewise(&["doctor", "discovery", &issuer, "--format", "json"], &[]).await;
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    let f = finding(&v, "discovery-forms-disagree");
    assert_eq!(f["rule"], "MD-09");
    assert_eq!(f["severity"], "warn");
    let ev = f["evidence"].as_str().unwrap();
    assert!(ev.contains("token_endpoint"), "{ev}");
    assert!(
        ev.contains(&format!("{issuer}/oauth2/v2/token"))
            && ev.contains(&format!("{issuer}/token")),
        "{ev}"
    );
    assert!(!ev.contains("jwks_uri") && !ev.contains("issuer:"), "{ev}");
    let c = codes(&v);
    assert!(!c.contains(&"discovery-form-missing".to_string()), "{c:?}");
    assert!(!c.contains(&"jwks-alg-without-key".to_string()), "{c:?}");
}

/// A listener on 127.0.0.1 whose accept queue is full (backlog 0, filled
/// with connections never accepted): Linux drops further SYNs, so a
/// connect times out. The listener and the connections must stay alive.
async fn full_backlog() -> (SocketAddr, TcpListener, Vec<tokio::net::TcpStream>) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..64 {
        match tokio::time::timeout(
            std::time::Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            Ok(Ok(s)) => held.push(s),
            Ok(Err(e)) => panic!("filling the backlog: {e}"),
            Err(_) => return (addr, listener, held),
        }
    }
    panic!("the accept queue never filled");
}

/// NET-03 through the binary: `--timeout 0.4` and a connect that gets no
/// answer: exit 3, verdict unreachable, the failure in the transcript.
#[tokio::test(flavor = "multi_thread")]
async fn connect_timeout_exits_3() {
    let (addr, _listener, _held) = full_backlog().await;
    let url = format!("http://{addr}/token");
    let out = gatewise(
        &[
            "doctor",
            "token",
            "--token-url",
            &url,
            "--client-id",
            "svc",
            "--client-secret-env",
            "GW_TEST_SECRET",
            "--timeout",
            "0.4",
            "--format",
            "json",
        ],
        &[("GW_TEST_SECRET", "s3cr3t")],
    )
    .await;
    let v = json(&out);
    assert_eq!(out.status.code(), Some(3), "{v:#}");
    assert_eq!(v["verdict"], "unreachable");
    let f = finding(&v, "connect-timeout");
    assert_eq!(f["rule"], "NET-03");
    assert!(f["evidence"].as_str().unwrap().contains("0.4 s"), "{f:#}");
    let t = &v["transcript"][0];
    assert_eq!(t["failure"]["code"], "connect-timeout");
    assert!(t["hops"][0]["response"].is_null());
    assert!(t["hops"][0]["timings"]["connect_ms"].is_number());
}

/// An HTTP date (RFC 9110 §5.6.7) for Unix seconds.
fn http_date(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(m - 1) as usize];
    format!(
        "{weekday}, {d:02} {month} {y} {:02}:{:02}:{:02} GMT",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// CK-02 through the binary: a token endpoint whose `Date` is an hour
/// ahead of the wall clock; the finding gives the skew in seconds.
#[tokio::test(flavor = "multi_thread")]
async fn clock_skew_from_the_date_header_is_reported() {
    assert_eq!(http_date(1_767_225_600), "Thu, 01 Jan 2026 00:00:00 GMT");
    assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let body = br#"{"access_token":"opaque-token-0123456789abcdef","token_type":"Bearer","expires_in":3600}"#;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nDate: {}\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    http_date(Wall.unix_now() + 3600),
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(body).await;
            });
        }
    });
    let url = format!("http://{addr}/token");
    let out = gatewise(
        &[
            "doctor",
            "token",
            "--token-url",
            &url,
            "--client-id",
            "svc",
            "--client-secret-env",
            "GW_TEST_SECRET",
            "--format",
            "json",
        ],
        &[("GW_TEST_SECRET", "s3cr3t")],
    )
    .await;
    let v = json(&out);
    let f = finding(&v, "clock-skew-date-large");
    assert_eq!(f["rule"], "CK-02");
    assert_eq!(f["severity"], "warn");
    assert!(
        f["title"]
            .as_str()
            .unwrap()
            .contains("ahead of the local clock"),
        "{f:#}"
    );
    // "…; skew +3600 s" (a second either way: the two clocks were read apart).
    let ev = f["evidence"].as_str().unwrap();
    let skew: i64 = ev
        .rsplit_once("skew ")
        .and_then(|(_, s)| s.strip_suffix(" s"))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no skew in seconds: {ev}"));
    assert!((3599..=3601).contains(&skew), "{ev}");
    assert_eq!(out.status.code(), Some(0), "{v:#}");
}
