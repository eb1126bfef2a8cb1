//! Real Python clients nobody here wrote against `gatewise authz` on
//! 127.0.0.1: Authlib (requests integration) and requests-oauthlib, pinned in
//! `interop/python/requirements.txt`, run from `interop/python/.venv` by the
//! scripts next to it. Each script prints a JSON summary (tokens only as
//! fingerprints) that is checked here.
//!
//! Skipped with a notice when the venv is missing; failing then under
//! `CI=true`.

#[macro_use]
mod support;

use support::Backend;

mod interop_support;

use interop_support::{TRICKY_ID, TRICKY_SECRET, client_env, interop_dir, python, run, start};
use serde_json::Value;

fn script(name: &str) -> std::path::PathBuf {
    interop_dir().join("python").join(name)
}

/// The claims every client_credentials access token of these tests carries.
fn assert_machine_token(out: &Value, issuer: &str, client: &str) {
    assert!(
        out["token_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer")),
        "{out}"
    );
    assert_eq!(out["expires_in"], 3600, "{out}");
    let claims = &out["claims"];
    assert_eq!(claims["iss"], issuer, "{out}");
    assert_eq!(claims["client_id"], client, "{out}");
    assert_eq!(claims["sub"], client, "{out}");
    assert_eq!(claims["aud"], "https://api.example.test", "{out}");
    assert_eq!(claims["scope"], "orders.read", "{out}");
}

async fn authlib_validates_the_discovery_metadata(backend: &Backend) {
    let Some(py) = python("authlib_validates_the_discovery_metadata") else {
        return;
    };
    let s = start(backend).await;
    let out = run(
        py,
        script("authlib_client.py"),
        &s.base,
        "discovery",
        &client_env("demo-client", s.secret("demo-client")),
    )
    .await
    .expect_ok("authlib discovery");
    assert_eq!(out["issuer"], s.base.as_str());
    assert_eq!(out["library"], "authlib");
}

async fn authlib_client_credentials(backend: &Backend) {
    let Some(py) = python("authlib_client_credentials") else {
        return;
    };
    let s = start(backend).await;
    for (id, secret) in [
        ("demo-client", s.secret("demo-client")),
        // Authlib (1.9) sends `id:secret` as they are, without the
        // form-urlencoding of RFC 6749 §2.3.1, like requests-oauthlib: the
        // server falls back to the raw values.
        (TRICKY_ID, TRICKY_SECRET),
    ] {
        let out = run(
            py.clone(),
            script("authlib_client.py"),
            &s.base,
            "client_credentials",
            &client_env(id, secret),
        )
        .await
        .expect_ok(&format!("authlib client_credentials as {id}"));
        assert_machine_token(&out, &s.base, id);
        assert_eq!(out["scope"], "orders.read");
        assert_eq!(out["refresh_token_fp"], Value::Null, "{out}");
    }
}

async fn authlib_code_flow_with_pkce_the_login_form_and_refresh(backend: &Backend) {
    let Some(py) = python("authlib_code_flow_with_pkce_the_login_form_and_refresh") else {
        return;
    };
    let s = start(backend).await;
    let out = run(
        py,
        script("authlib_client.py"),
        &s.base,
        "code",
        &client_env("demo-web", s.secret("demo-web")),
    )
    .await
    .expect_ok("authlib authorization_code + PKCE");
    // Authlib verified the ID token (signature from the JWKS, iss, aud,
    // nonce, at_hash); here its claims are checked once more.
    let id = &out["id_token"];
    assert_eq!(id["verified"], true, "{out}");
    assert_eq!(id["alg"], "RS256", "{out}");
    assert_eq!(id["claims"]["iss"], s.base.as_str(), "{out}");
    assert_eq!(id["claims"]["sub"], "alice", "{out}");
    assert_eq!(id["claims"]["aud"], "demo-web", "{out}");
    assert_eq!(id["claims"]["azp"], "demo-web", "{out}");
    assert!(id["claims"]["nonce"].is_string(), "{out}");
    assert!(id["claims"]["at_hash"].is_string(), "{out}");
    // The access token is the user's, for the default resource.
    let at = &out["token"]["claims"];
    assert_eq!(at["sub"], "alice", "{out}");
    assert_eq!(at["client_id"], "demo-web", "{out}");
    assert_eq!(at["aud"], "https://api.example.test", "{out}");
    assert_eq!(out["token"]["scope"], "openid orders.read", "{out}");
    assert!(out["token"]["refresh_token_fp"].is_string(), "{out}");
    // Refresh: a new access token and a rotated refresh token; the old one
    // presented again is refused (reuse detection).
    assert_eq!(out["refreshed"]["claims"]["sub"], "alice", "{out}");
    assert_ne!(
        out["refreshed"]["access_token_fp"], out["token"]["access_token_fp"],
        "{out}"
    );
    assert_eq!(out["refresh_rotated"], true, "{out}");
    assert_eq!(out["reuse_error"], "invalid_grant", "{out}");
    // RFC 7662 §2.1: a refresh token can be introspected (the server used to
    // say inactive for every refresh token); once rotated, it is inactive.
    let ri = &out["refresh_introspection"];
    assert_eq!(ri["active"], true, "{out}");
    assert_eq!(ri["client_id"], "demo-web", "{out}");
    assert_eq!(ri["sub"], "alice", "{out}");
    assert_eq!(ri["scope"], "openid orders.read", "{out}");
    assert_eq!(
        out["rotated_refresh_introspection"],
        serde_json::json!({"active": false}),
        "{out}"
    );
}

async fn authlib_introspection_of_jwt_and_opaque_tokens(backend: &Backend) {
    let Some(py) = python("authlib_introspection_of_jwt_and_opaque_tokens") else {
        return;
    };
    let s = start(backend).await;
    for id in ["demo-client", "demo-opaque"] {
        let out = run(
            py.clone(),
            script("authlib_client.py"),
            &s.base,
            "introspect",
            &client_env(id, s.secret(id)),
        )
        .await
        .expect_ok(&format!("authlib introspection as {id}"));
        let i = &out["introspection"];
        assert_eq!(i["active"], true, "{out}");
        assert_eq!(i["client_id"], id, "{out}");
        assert_eq!(i["scope"], "orders.read", "{out}");
        assert_eq!(i["aud"], "https://api.example.test", "{out}");
        // RFC 7662 §2.2: anything unknown is just inactive.
        assert_eq!(
            out["unknown"],
            serde_json::json!({"active": false}),
            "{out}"
        );
        if id == "demo-opaque" {
            assert_eq!(
                out["token"]["claims"],
                Value::Null,
                "opaque, not a JWT: {out}"
            );
        }
    }
}

async fn requests_oauthlib_client_credentials_with_raw_basic_credentials(backend: &Backend) {
    let Some(py) = python("requests_oauthlib_client_credentials_with_raw_basic_credentials") else {
        return;
    };
    let s = start(backend).await;
    for (id, secret) in [
        ("demo-client", s.secret("demo-client")),
        // requests-oauthlib sends `id:secret` through requests' HTTPBasicAuth
        // without the form-urlencoding of RFC 6749 §2.3.1: the server falls
        // back to the raw values (split at the first colon, RFC 7617 §2).
        (TRICKY_ID, TRICKY_SECRET),
    ] {
        let out = run(
            py.clone(),
            script("requests_oauthlib_client.py"),
            &s.base,
            "client_credentials",
            &client_env(id, secret),
        )
        .await
        .expect_ok(&format!("requests-oauthlib client_credentials as {id}"));
        assert_machine_token(&out, &s.base, id);
        // oauthlib turns `scope` into a list.
        assert_eq!(out["scope"], serde_json::json!(["orders.read"]), "{out}");
        assert_eq!(out["library"], "requests-oauthlib");
    }
}

async fn a_wrong_secret_fails_both_python_clients(backend: &Backend) {
    let Some(py) = python("a_wrong_secret_fails_both_python_clients") else {
        return;
    };
    let s = start(backend).await;
    for name in ["authlib_client.py", "requests_oauthlib_client.py"] {
        let r = run(
            py.clone(),
            script(name),
            &s.base,
            "client_credentials",
            &client_env("demo-client", "not-the-secret"),
        )
        .await;
        assert!(!r.ok, "{name} got a token with a wrong secret: {}", r.json);
        assert!(r.stderr.contains("invalid_client"), "{name}: {}", r.stderr);
    }
}

on_both_stores!(
    authlib_validates_the_discovery_metadata,
    authlib_client_credentials,
    authlib_code_flow_with_pkce_the_login_form_and_refresh,
    authlib_introspection_of_jwt_and_opaque_tokens,
    requests_oauthlib_client_credentials_with_raw_basic_credentials,
    a_wrong_secret_fails_both_python_clients,
);
