//! The live doctor as a user runs it: the built binary against the
//! project's own authorization server and a misbehaving token endpoint,
//! both on 127.0.0.1.

use gatewise_authz::{Authz, AuthzConfig};
use gatewise_core::clock::Clock;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output};
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
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let config = AuthzConfig::dev(&issuer);
    let secret = config
        .clients
        .iter()
        .find(|c| c.id == "demo-client")
        .map(|c| c.secret.clone())
        .unwrap();
    let authz = Arc::new(Authz::new(config, Arc::new(Wall)).unwrap());
    let router = authz.router();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (issuer, secret)
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

/// Runs the binary (off the async threads), without proxy settings from the
/// machine, with `env` set.
async fn gatewise(args: &[&str], env: &[(&str, &str)]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_gatewise"));
        c.args(&args);
        for v in [
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "NO_PROXY",
            "no_proxy",
        ] {
            c.env_remove(v);
        }
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    })
    .await
    .unwrap()
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

    // No secret for client_secret_basic; a grant this version lacks; no endpoint.
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
