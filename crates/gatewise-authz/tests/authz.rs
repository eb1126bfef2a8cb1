//! The authorization server over real HTTP on 127.0.0.1, with its own
//! responses judged by the doctor's rules: what it emits must pass them.

#[macro_use]
mod support;

use support::Backend;

use gatewise_authz::clients::ClientSpec;
use gatewise_authz::{Authz, AuthzConfig};
use gatewise_core::capture;
use gatewise_core::clock::FixedClock;
use gatewise_core::diagnose::{self, Context, Expect};
use gatewise_core::finding::Severity;
use gatewise_core::jose::Alg;
use gatewise_core::jose::check::{self, Policy};
use gatewise_core::jose::keyset::KeySet;
use serde_json::Value;
use std::sync::Arc;

const NOW: u64 = 1_767_225_600;

struct Server {
    base: String,
    authz: Arc<Authz>,
    http: reqwest::Client,
}

async fn start(backend: &Backend, alg: Alg) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = AuthzConfig::dev(&base);
    config.alg = alg;
    config.clients = vec![
        ClientSpec::machine(
            "svc",
            "s3cr3t+/=",
            &["orders.read", "orders.write"],
            &["https://api.test"],
        ),
        ClientSpec {
            opaque_tokens: true,
            ..ClientSpec::machine(
                "legacy",
                "legacy-secret",
                &["orders.read"],
                &["https://api.test"],
            )
        },
        ClientSpec {
            redirect_uris: vec!["https://app.test/cb".into()],
            ..ClientSpec::machine("web", "web-secret", &["orders.read"], &["https://api.test"])
        },
        ClientSpec {
            redirect_uris: vec!["http://127.0.0.1/callback".into()],
            public: true,
            ..ClientSpec::machine("native", "", &["orders.read"], &["https://api.test"])
        },
    ];
    let authz = backend.authz(config, Arc::new(FixedClock(NOW))).await;
    let router = Arc::clone(&authz).router();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Server {
        base,
        authz,
        http: reqwest::Client::new(),
    }
}

/// The doctor's verdict on a live response: no error-level finding allowed.
async fn judged_ok(resp: reqwest::Response, expect: Expect, issuer: Option<&str>) -> Value {
    let status = resp.status();
    let mut raw = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    for (n, v) in resp.headers() {
        raw.push_str(&format!("{n}: {}\r\n", v.to_str().unwrap()));
    }
    raw.push_str("\r\n");
    let body = resp.bytes().await.unwrap();
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(&body);
    let cap = capture::parse(&bytes);
    let mut ctx = Context::new(expect);
    ctx.issuer = issuer.map(str::to_owned);
    let findings = diagnose::response(&cap, &ctx);
    let errors: Vec<String> = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| format!("{} {}: {}", f.rule, f.code, f.title))
        .collect();
    assert!(
        errors.is_empty(),
        "the doctor found errors in our own {expect:?} response: {errors:#?}"
    );
    serde_json::from_slice(&body).unwrap_or(Value::Null)
}

impl Server {
    async fn token(&self, user: &str, pass: &str, extra: &[(&str, &str)]) -> reqwest::Response {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(extra);
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        self.http
            .post(format!("{}/token", self.base))
            .basic_auth(enc(user), Some(enc(pass)))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    async fn introspect(&self, token: &str) -> Value {
        self.http
            .post(format!("{}/introspect", self.base))
            .basic_auth("svc", Some("s3cr3t%2B%2F%3D"))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

async fn discovery_and_jwks_pass_the_doctor_at_both_well_known_paths(backend: &Backend) {
    let s = start(backend, Alg::ES256).await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let r = s
            .http
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .unwrap();
        let doc = judged_ok(r, Expect::Discovery, Some(&s.base)).await;
        assert_eq!(doc["issuer"], s.base);
    }
    let r = s
        .http
        .get(format!("{}/jwks.json", s.base))
        .send()
        .await
        .unwrap();
    let jwks = judged_ok(r, Expect::Jwks, None).await;
    assert_eq!(jwks["keys"][0]["kid"], s.authz.keys().active().kid);
}

async fn client_credentials_issues_rfc9068_tokens_that_verify(backend: &Backend) {
    for alg in [Alg::RS256, Alg::ES256, Alg::EdDSA] {
        let s = start(backend, alg).await;
        let r = s
            .token(
                "svc",
                "s3cr3t+/=",
                &[("scope", "orders.read"), ("resource", "https://api.test")],
            )
            .await;
        assert_eq!(r.status(), 200);
        let body = judged_ok(r, Expect::Token, None).await;
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["scope"], "orders.read");
        let token = body["access_token"].as_str().unwrap();
        let jwks = s
            .http
            .get(format!("{}/jwks.json", s.base))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let keys = KeySet::from_jwks(&jwks, &[alg]).unwrap();
        let policy = Policy {
            issuer: Some(s.base.clone()),
            audiences: vec!["https://api.test".into()],
            require_at_jwt: true,
            ..Policy::new(vec![alg])
        };
        let parsed = check::parse(token, &policy).unwrap();
        let key = keys
            .candidates(parsed.header.kid.as_deref(), alg)
            .pop()
            .unwrap();
        let v = parsed.verify(&key, &policy, NOW).unwrap();
        assert_eq!(v.claims.client_id.as_deref(), Some("svc"));
        assert_eq!(v.claims.scopes().collect::<Vec<_>>(), ["orders.read"]);
        assert!(v.claims.jti.is_some());
    }
}

async fn refusals_are_rfc6749_errors_with_the_basic_challenge(backend: &Backend) {
    let s = start(backend, Alg::ES256).await;
    let r = s.token("svc", "wrong", &[]).await;
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic ")
    );
    let e = judged_ok(r, Expect::Token, None).await;
    assert_eq!(e["error"], "invalid_client");
    let r = s
        .token("svc", "s3cr3t+/=", &[("resource", "https://evil.test")])
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_target");
    let r = s
        .token("svc", "s3cr3t+/=", &[("scope", "orders.admin")])
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_scope");
    // A JSON body is not a token request.
    let r = s
        .http
        .post(format!("{}/token", s.base))
        .basic_auth("svc", Some("s3cr3t%2B%2F%3D"))
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
}

async fn introspection_and_revocation(backend: &Backend) {
    let s = start(backend, Alg::RS256).await;
    let jwt = s
        .token("svc", "s3cr3t+/=", &[])
        .await
        .json::<Value>()
        .await
        .unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let opaque = s
        .token("legacy", "legacy-secret", &[])
        .await
        .json::<Value>()
        .await
        .unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!opaque.contains('.'), "an opaque token was expected");
    for t in [&jwt, &opaque] {
        let i = s.introspect(t).await;
        assert_eq!(i["active"], true, "{i}");
        assert_eq!(i["aud"], "https://api.test");
    }
    assert_eq!(
        s.introspect("never-issued").await,
        serde_json::json!({"active": false})
    );
    // Unauthenticated introspection is refused.
    let r = s
        .http
        .post(format!("{}/introspect", s.base))
        .form(&[("token", &jwt)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Revocation by the owning client.
    for (t, id, secret) in [
        (&opaque, "legacy", "legacy-secret"),
        (&jwt, "svc", "s3cr3t+/="),
    ] {
        let r = s
            .http
            .post(format!("{}/revoke", s.base))
            .form(&[
                ("token", t.as_str()),
                ("client_id", id),
                ("client_secret", secret),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(s.introspect(t).await["active"], false);
    }
}

async fn rotation_keeps_the_previous_key_published(backend: &Backend) {
    let s = start(backend, Alg::ES256).await;
    let before = s
        .token("svc", "s3cr3t+/=", &[])
        .await
        .json::<Value>()
        .await
        .unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let old_kid = s.authz.keys().active().kid.clone();
    let new_kid = s.authz.rotate_stored_keys(true).await.unwrap();
    assert_ne!(old_kid, new_kid);
    let jwks: Value = s
        .http
        .get(format!("{}/jwks.json", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    // Access-token keys first (new, then previous); ES256 servers also
    // publish RS256 keys for ID tokens after them.
    assert_eq!(
        kids.get(..2),
        Some(&[new_kid.as_str(), old_kid.as_str()][..])
    );
    assert_eq!(s.introspect(&before).await["active"], true);
    // Without overlap the old key is gone at once (a fault the server can play).
    s.authz.rotate_stored_keys(false).await.unwrap();
    assert_eq!(s.introspect(&before).await["active"], false);
}

async fn device_endpoint_responses_pass_the_doctor(backend: &Backend) {
    let s = start(backend, Alg::RS256).await;
    let authorize = |scope: &'static str| {
        s.http
            .post(format!("{}/device_authorization", s.base))
            .form(&[("client_id", "native"), ("scope", scope)])
            .send()
    };
    // The device authorization response, by the doctor's RFC 8628 judge.
    let r = authorize("openid orders.read").await.unwrap();
    let status = r.status().as_u16();
    let body = r.bytes().await.unwrap();
    let judged = gatewise_core::diagnose::device::judge_authorization(status, &body);
    assert!(judged.findings.is_empty(), "{:#?}", judged.findings);
    let device_code = judged.authorization.unwrap().device_code;
    // Its error responses, and the polling answers, by the token judge.
    judged_ok(
        authorize("orders.admin").await.unwrap(),
        Expect::Token,
        None,
    )
    .await;
    for want in ["authorization_pending", "slow_down"] {
        let r = s
            .http
            .post(format!("{}/token", s.base))
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", device_code.as_str()),
                ("client_id", "native"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(judged_ok(r, Expect::Token, None).await["error"], want);
    }
}

on_both_stores!(
    device_endpoint_responses_pass_the_doctor,
    discovery_and_jwks_pass_the_doctor_at_both_well_known_paths,
    client_credentials_issues_rfc9068_tokens_that_verify,
    refusals_are_rfc6749_errors_with_the_basic_challenge,
    introspection_and_revocation,
    rotation_keeps_the_previous_key_published,
);
