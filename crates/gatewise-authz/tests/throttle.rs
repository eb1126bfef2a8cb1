//! Failed client authentication is limited per client: after ten failures
//! in a minute the client is refused (429, Retry-After) even with the right
//! secret, other clients are not affected, and the next window works again.
//! The server's clock is a parameter the test moves.

use gatewise_authz::throttle::{MAX_FAILURES, WINDOW};
use gatewise_authz::{Authz, AuthzConfig};
use gatewise_core::clock::Clock;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const NOW: u64 = 1_767_225_600;

struct Steps(AtomicU64);

impl Clock for Steps {
    fn unix_now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_failures_block_one_client_for_the_rest_of_the_window() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = AuthzConfig::dev(&base);
    let secret = |id: &str| {
        config
            .clients
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.secret.clone())
            .unwrap()
    };
    let (demo, web) = (secret("demo-client"), secret("demo-web"));
    let clock = Arc::new(Steps(AtomicU64::new(NOW)));
    let authz = Arc::new(Authz::new(config, clock.clone()).unwrap());
    let router = Arc::clone(&authz).router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let http = reqwest::Client::new();
    let token = |id: &'static str, secret: String| {
        let http = http.clone();
        let url = format!("{base}/token");
        async move {
            http.post(url)
                .basic_auth(id, Some(secret))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("scope", "orders.read"),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(token("demo-client", demo.clone()).await.status(), 200);
    for _ in 0..MAX_FAILURES {
        assert_eq!(token("demo-client", "wrong".into()).await.status(), 401);
    }
    // Blocked now, even with the right secret.
    let r = token("demo-client", demo.clone()).await;
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=WINDOW).contains(&wait), "{wait}");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    // Another client is not affected, nor is an unknown id counted.
    assert_eq!(token("demo-web", web).await.status(), 200);
    for _ in 0..(MAX_FAILURES + 2) {
        assert_eq!(token("nobody", "x".into()).await.status(), 401);
    }
    // The next window.
    clock.0.fetch_add(WINDOW, Ordering::SeqCst);
    assert_eq!(token("demo-client", demo).await.status(), 200);
}
