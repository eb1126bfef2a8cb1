//! The dashboard's routes on 127.0.0.1: the page and its assets are served
//! with their content types and security headers, without the admin token,
//! while the data routes still require it.

use gatewise_admin::Admin;
use gatewise_admin::dashboard::CONTENT_SECURITY_POLICY;
use gatewise_core::clock::FixedClock;
use std::sync::Arc;

const TOKEN: &str = "dashboard-admin-token";

async fn serve(admin: Admin) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(admin.serve(listener, std::future::pending()));
    base
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_without_a_token_with_a_strict_policy() {
    let base = serve(Admin::new(Arc::new(FixedClock(0))).with_token(TOKEN)).await;
    let http = reqwest::Client::new();
    for (path, content_type, needle) in [
        (
            "/",
            "text/html; charset=utf-8",
            "<script src=\"dashboard.js\"",
        ),
        (
            "/dashboard.js",
            "text/javascript; charset=utf-8",
            "sessionStorage",
        ),
        ("/dashboard.css", "text/css; charset=utf-8", ".chart"),
        ("/favicon.svg", "image/svg+xml", "<svg"),
    ] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(header(&r, "content-type"), content_type, "{path}");
        assert_eq!(
            header(&r, "content-security-policy"),
            CONTENT_SECURITY_POLICY,
            "{path}"
        );
        assert!(
            header(&r, "content-security-policy").starts_with("default-src 'self'"),
            "{path}"
        );
        assert_eq!(header(&r, "x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header(&r, "referrer-policy"), "no-referrer", "{path}");
        let body = r.text().await.unwrap();
        assert!(body.contains(needle), "{path} lacks {needle:?}");
    }

    // A query string (a bookmarked view) still gets the page; HEAD too.
    let r = http.get(format!("{base}/?x=1")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = http.head(format!("{base}/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8");

    // Nothing else is public: a near-miss is the API's 404, and the data
    // routes keep their token.
    let r = http
        .get(format!("{base}/dashboard.jsx"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(header(&r, "content-type"), "application/problem+json");
    for path in ["/api/v1/calls", "/api/v1/stats", "/api/v1/state"] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} must still require the token");
        let r = http
            .get(format!("{base}{path}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        // 503 for the call log: this admin has none; but the token passed.
        assert_ne!(r.status(), 401, "{path} refused the right token");
    }
}

#[tokio::test]
async fn without_a_token_configured_the_page_is_served_the_same() {
    let base = serve(Admin::new(Arc::new(FixedClock(0)))).await;
    let r = reqwest::get(format!("{base}/")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "content-security-policy"),
        CONTENT_SECURITY_POLICY
    );
    let r = reqwest::get(format!("{base}/api/v1/state")).await.unwrap();
    assert_eq!(r.status(), 200);
}
