//! The authorization code grant with PKCE, driven through the login form
//! over real HTTP, and refresh token rotation; the ID token is checked by
//! the doctor's JWT rules (nonce, at_hash, azp, signature).

#[macro_use]
mod support;

use support::Backend;

use gatewise_authz::AuthzConfig;
use gatewise_core::clock::FixedClock;
use gatewise_core::finding::Severity;
use gatewise_core::jose::b64url_encode;
use gatewise_core::jose::jwt::{self, Keys, Options, TokenKind};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

const NOW: u64 = 1_767_225_600;
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

struct S {
    base: String,
    http: reqwest::Client,
    web_secret: String,
}

async fn start(backend: &Backend) -> S {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = AuthzConfig::dev(&base);
    let web_secret = config
        .clients
        .iter()
        .find(|c| c.id == "demo-web")
        .unwrap()
        .secret
        .clone();
    let authz = backend.authz(config, Arc::new(FixedClock(NOW))).await;
    let router = Arc::clone(&authz).router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    S {
        base,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        web_secret,
    }
}

fn challenge(verifier: &str) -> String {
    b64url_encode(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()).as_ref(),
    )
}

fn query(location: &str) -> HashMap<String, String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

impl S {
    fn authorize_params(
        &self,
        client: &str,
        redirect: &str,
        method: &str,
    ) -> Vec<(String, String)> {
        [
            ("response_type", "code"),
            ("client_id", client),
            ("redirect_uri", redirect),
            ("scope", "openid orders.read"),
            ("state", "st-123"),
            ("nonce", "n-0S6_WzA2Mj"),
            ("code_challenge", &challenge(VERIFIER)),
            ("code_challenge_method", method),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    /// Signs in as alice through the form; returns the redirect's query.
    async fn sign_in(&self, client: &str, redirect: &str, password: &str) -> reqwest::Response {
        let mut form = self.authorize_params(client, redirect, "S256");
        form.push(("username".into(), "alice".into()));
        form.push(("password".into(), password.into()));
        self.http
            .post(format!("{}/authorize", self.base))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    async fn token(&self, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> (u16, Value) {
        let mut r = self.http.post(format!("{}/token", self.base)).form(form);
        if let Some((id, secret)) = basic {
            r = r.basic_auth(id, Some(secret));
        }
        let resp = r.send().await.unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }
}

async fn code_flow_with_pkce_issues_tokens_the_doctor_accepts(backend: &Backend) {
    let s = start(backend).await;
    let redirect = "http://127.0.0.1:8000/callback";
    // The login page.
    let page = s
        .http
        .get(format!("{}/authorize", s.base))
        .query(&s.authorize_params("demo-web", redirect, "S256"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<form method=\"post\" action=\"/authorize\">"),
        "{html}"
    );
    assert!(html.contains("openid orders.read"));
    // Wrong password: the form again, no redirect.
    assert_eq!(s.sign_in("demo-web", redirect, "nope").await.status(), 401);
    // Right password: 303 to the client with code, state and iss (RFC 9207).
    let r = s.sign_in("demo-web", redirect, "wonderland").await;
    assert_eq!(r.status(), 303);
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(loc.starts_with(redirect), "{loc}");
    let q = query(&loc);
    assert_eq!(q["state"], "st-123");
    assert_eq!(q["iss"], s.base);
    let code = q["code"].clone();

    let basic = Some(("demo-web", s.web_secret.as_str()));
    let (status, body) = s
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("code_verifier", VERIFIER),
            ],
            basic,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap();
    let id_token = body["id_token"].as_str().unwrap();
    assert!(body["refresh_token"].is_string());

    // The doctor checks the ID token: signature, iss, aud, azp, nonce, at_hash, times.
    let jwks: Value = s
        .http
        .get(format!("{}/jwks.json", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let opts = Options {
        issuer: Some(s.base.clone()),
        audiences: vec!["demo-web".into()],
        kind: TokenKind::Id,
        nonce: Some("n-0S6_WzA2Mj".into()),
        access_token: Some(access.to_owned()),
        client_id: Some("demo-web".into()),
        keys: Keys::Jwks(jwks),
        ..Options::at(NOW + 5)
    };
    let findings = jwt::inspect(id_token, &opts);
    let bad: Vec<_> = findings
        .iter()
        .filter(|f| f.severity != Severity::Info)
        .map(|f| format!("{} {}", f.code, f.title))
        .collect();
    assert!(
        bad.is_empty(),
        "the doctor objects to our ID token: {bad:#?}"
    );

    // The code is single use; reuse also revokes the refresh token it produced.
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, e) = s
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("code_verifier", VERIFIER),
            ],
            basic,
        )
        .await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_grant")));
    let (status, e) = s
        .token(
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
            basic,
        )
        .await;
    assert_eq!(
        (status, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "{e}"
    );
}

async fn pkce_and_redirect_rules(backend: &Backend) {
    let s = start(backend).await;
    let redirect = "http://127.0.0.1:8000/callback";
    // plain is refused with an error redirect.
    let r = s
        .http
        .get(format!("{}/authorize", s.base))
        .query(&s.authorize_params("demo-web", redirect, "plain"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let q = query(r.headers()["location"].to_str().unwrap());
    assert_eq!(q["error"], "invalid_request");
    assert_eq!(q["state"], "st-123");
    // An unregistered redirect URI is never redirected to.
    let r = s
        .http
        .get(format!("{}/authorize", s.base))
        .query(&s.authorize_params("demo-web", "https://evil.test/cb", "S256"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    // A wrong verifier and a different redirect_uri fail the exchange.
    let q = query(
        s.sign_in("demo-web", redirect, "wonderland")
            .await
            .headers()["location"]
            .to_str()
            .unwrap(),
    );
    let basic = Some(("demo-web", s.web_secret.as_str()));
    let (_, e) = s
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &q["code"]),
                ("redirect_uri", redirect),
                ("code_verifier", &"x".repeat(43)),
            ],
            basic,
        )
        .await;
    assert_eq!(e["error"], "invalid_grant");
    assert!(
        e["error_description"]
            .as_str()
            .unwrap()
            .contains("code_verifier")
    );

    // Public native client on any loopback port (RFC 8252 §7.3), no secret.
    let native = "http://127.0.0.1:54321/callback";
    let r = s.sign_in("demo-native", native, "wonderland").await;
    assert_eq!(r.status(), 303);
    let q = query(r.headers()["location"].to_str().unwrap());
    let (status, body) = s
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "demo-native"),
                ("code", &q["code"]),
                ("redirect_uri", native),
                ("code_verifier", VERIFIER),
            ],
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn refresh_tokens_rotate_and_reuse_revokes_the_family(backend: &Backend) {
    let s = start(backend).await;
    let native = "http://127.0.0.1:50000/callback";
    let q = query(
        s.sign_in("demo-native", native, "wonderland")
            .await
            .headers()["location"]
            .to_str()
            .unwrap(),
    );
    let (_, body) = s
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "demo-native"),
                ("code", &q["code"]),
                ("redirect_uri", native),
                ("code_verifier", VERIFIER),
            ],
            None,
        )
        .await;
    let rt1 = body["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |t: String| {
        let s = &s;
        async move {
            s.token(
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", "demo-native"),
                    ("refresh_token", &t),
                ],
                None,
            )
            .await
        }
    };
    let (status, b2) = refresh(rt1.clone()).await;
    assert_eq!(status, 200, "{b2}");
    let rt2 = b2["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2, "refresh tokens rotate");
    assert!(
        b2["id_token"].is_string(),
        "openid scope: a new ID token on refresh"
    );
    // Reusing the rotated token: refused, and the whole family is revoked.
    let (status, e) = refresh(rt1).await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_grant")));
    assert!(e["error_description"].as_str().unwrap().contains("reuse"));
    let (status, _) = refresh(rt2).await;
    assert_eq!(
        status, 400,
        "the newest token of a revoked family must not work either"
    );
}

async fn revoking_a_refresh_token_revokes_its_family(backend: &Backend) {
    let s = start(backend).await;
    let native = "http://127.0.0.1:50001/callback";
    let q = query(
        s.sign_in("demo-native", native, "wonderland")
            .await
            .headers()["location"]
            .to_str()
            .unwrap(),
    );
    let (_, body) = s
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "demo-native"),
                ("code", &q["code"]),
                ("redirect_uri", native),
                ("code_verifier", VERIFIER),
            ],
            None,
        )
        .await;
    let rt1 = body["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |t: String| {
        let s = &s;
        async move {
            s.token(
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", "demo-native"),
                    ("refresh_token", &t),
                ],
                None,
            )
            .await
        }
    };
    let (status, b2) = refresh(rt1).await;
    assert_eq!(status, 200, "{b2}");
    let rt2 = b2["refresh_token"].as_str().unwrap().to_owned();
    let revoke = |client: Vec<(&'static str, String)>, basic: Option<(String, String)>| {
        let s = &s;
        let token = rt2.clone();
        async move {
            let mut form = client;
            form.push(("token", token));
            form.push(("token_type_hint", "refresh_token".into()));
            let mut r = s.http.post(format!("{}/revoke", s.base)).form(&form);
            if let Some((id, secret)) = basic {
                r = r.basic_auth(id, Some(secret));
            }
            r.send().await.unwrap().status().as_u16()
        }
    };
    // Another client may not revoke it (RFC 7009 §2.1); the answer is 200
    // all the same (§2.2), and the token still works afterwards.
    assert_eq!(
        revoke(vec![], Some(("demo-web".into(), s.web_secret.clone()))).await,
        200
    );
    let (status, b3) = refresh(rt2.clone()).await;
    assert_eq!(
        status, 200,
        "another client's revocation must not count: {b3}"
    );
    let rt3 = b3["refresh_token"].as_str().unwrap().to_owned();
    // RFC 7662 §2.1: refresh tokens are introspected for their own client only
    // (tests/interop_python.rs has a confidential client's positive case).
    let introspect = |form: Vec<(&'static str, String)>, basic: Option<(String, String)>| {
        let s = &s;
        async move {
            let mut r = s.http.post(format!("{}/introspect", s.base)).form(&form);
            if let Some((id, secret)) = basic {
                r = r.basic_auth(id, Some(secret));
            }
            r.send().await.unwrap().json::<Value>().await.unwrap()
        }
    };
    // A public client cannot introspect: RFC 7662 §2.1 requires the caller
    // to be authorized, and a bare client_id proves nothing.
    let i = introspect(
        vec![
            ("client_id", "demo-native".to_owned()),
            ("token", rt3.clone()),
        ],
        None,
    )
    .await;
    assert_eq!(i["error"], "invalid_client", "{i}");
    let i = introspect(
        vec![("token", rt3.clone())],
        Some(("demo-web".into(), s.web_secret.clone())),
    )
    .await;
    assert_eq!(i, serde_json::json!({"active": false}), "another client's");
    // Its own client revokes the (now rotated) rt2: RFC 7009 §2 makes
    // revoking refresh tokens a MUST; the whole family goes, rt3 included.
    assert_eq!(
        revoke(vec![("client_id", "demo-native".into())], None).await,
        200
    );
    let (status, e) = refresh(rt3).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "{e}"
    );
    assert!(
        e["error_description"].as_str().unwrap().contains("revoked"),
        "{e}"
    );
}

on_both_stores!(
    code_flow_with_pkce_issues_tokens_the_doctor_accepts,
    pkce_and_redirect_rules,
    refresh_tokens_rotate_and_reuse_revokes_the_family,
    revoking_a_refresh_token_revokes_its_family,
);
