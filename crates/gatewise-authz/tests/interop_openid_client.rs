//! A real Node.js client nobody here wrote against `gatewise authz` on
//! 127.0.0.1: panva's openid-client, pinned in `interop/openid-client`
//! (`npm ci --prefix interop/openid-client`): 5.x, which runs on every
//! Node.js from 18 (Debian 12's), by `client.mjs`, and 6.x, which needs
//! Node.js 20 and escapes even `-` in Basic credentials, by `client6.mjs`.
//! The scripts print a JSON summary (tokens only as fingerprints) that is
//! checked here.
//!
//! Skipped with a notice when Node.js or `node_modules` is missing; failing
//! then under `CI=true`.

#[macro_use]
mod support;

use support::Backend;

mod interop_support;

use interop_support::{
    TRICKY_ID, TRICKY_SECRET, client_env, interop_dir, node, node20, run, start,
};
use serde_json::Value;

fn script() -> std::path::PathBuf {
    interop_dir().join("openid-client/client.mjs")
}

async fn openid_client_discovers_the_server(backend: &Backend) {
    let Some(node) = node("openid_client_discovers_the_server") else {
        return;
    };
    let s = start(backend).await;
    let out = run(
        node,
        script(),
        &s.base,
        "discovery",
        &client_env("demo-client", s.secret("demo-client")),
    )
    .await
    .expect_ok("openid-client discovery");
    // Issuer.discover refuses a document whose issuer differs from the URL.
    assert_eq!(out["issuer"], s.base.as_str(), "{out}");
    assert_eq!(out["rfc8414_issuer"], s.base.as_str(), "{out}");
    assert_eq!(out["token_endpoint"], format!("{}/token", s.base), "{out}");
    assert_eq!(out["iss_parameter_supported"], true, "{out}");
}

async fn openid_client_client_credentials_with_encoded_basic_credentials(backend: &Backend) {
    let Some(node) = node("openid_client_client_credentials_with_encoded_basic_credentials") else {
        return;
    };
    let s = start(backend).await;
    // openid-client 5 form-urlencodes id and secret with encodeURIComponent
    // (RFC 6749 §2.3.1; `-_.!~*'()` stay as they are, a space becomes `+`).
    for (id, secret) in [
        ("demo-client", s.secret("demo-client")),
        (TRICKY_ID, TRICKY_SECRET),
    ] {
        let out = run(
            node.clone(),
            script(),
            &s.base,
            "client_credentials",
            &client_env(id, secret),
        )
        .await
        .expect_ok(&format!("openid-client client_credentials as {id}"));
        assert_eq!(out["token_type"], "Bearer", "{out}");
        assert_eq!(out["expires_in"], 3600, "{out}");
        assert_eq!(out["scope"], "orders.read", "{out}");
        assert_eq!(out["claims"]["client_id"], id, "{out}");
        assert_eq!(out["claims"]["iss"], s.base.as_str(), "{out}");
        assert_eq!(out["claims"]["aud"], "https://api.example.test", "{out}");
    }
    // And a wrong secret is refused (the client reports invalid_client).
    let r = run(
        node,
        script(),
        &s.base,
        "client_credentials",
        &client_env("demo-client", "not-the-secret"),
    )
    .await;
    assert!(!r.ok, "a token with a wrong secret: {}", r.json);
    assert!(r.stderr.contains("invalid_client"), "{}", r.stderr);
}

async fn openid_client_introspection(backend: &Backend) {
    let Some(node) = node("openid_client_introspection") else {
        return;
    };
    let s = start(backend).await;
    for id in ["demo-client", "demo-opaque"] {
        let out = run(
            node.clone(),
            script(),
            &s.base,
            "introspect",
            &client_env(id, s.secret(id)),
        )
        .await
        .expect_ok(&format!("openid-client introspection as {id}"));
        let i = &out["introspection"];
        assert_eq!(i["active"], true, "{out}");
        assert_eq!(i["client_id"], id, "{out}");
        assert_eq!(i["scope"], "orders.read", "{out}");
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

async fn openid_client_revocation(backend: &Backend) {
    let Some(node) = node("openid_client_revocation") else {
        return;
    };
    let s = start(backend).await;
    for id in ["demo-client", "demo-opaque"] {
        let out = run(
            node.clone(),
            script(),
            &s.base,
            "revoke",
            &client_env(id, s.secret(id)),
        )
        .await
        .expect_ok(&format!("openid-client revocation as {id}"));
        assert_eq!(out["active_before"], true, "{out}");
        // RFC 7009 §2.1: revoked, so introspection says inactive.
        assert_eq!(out["active_after"], false, "{out}");
        assert_eq!(out["unknown_revoked"], true, "{out}");
    }
}

async fn openid_client_revokes_a_refresh_token(backend: &Backend) {
    let Some(node) = node("openid_client_revokes_a_refresh_token") else {
        return;
    };
    let s = start(backend).await;
    let out = run(
        node,
        script(),
        &s.base,
        "revoke_refresh",
        &client_env("demo-web", s.secret("demo-web")),
    )
    .await
    .expect_ok("openid-client refresh token revocation");
    assert!(out["token"]["refresh_token_fp"].is_string(), "{out}");
    // RFC 7009 §2: revoking refresh tokens is a MUST (the server used to
    // answer 200 and leave them working).
    assert_eq!(out["refresh_error"], "invalid_grant", "{out}");
}

async fn openid_client_code_flow_validates_the_id_token(backend: &Backend) {
    let Some(node) = node("openid_client_code_flow_validates_the_id_token") else {
        return;
    };
    let s = start(backend).await;
    let out = run(
        node,
        script(),
        &s.base,
        "code",
        &client_env("demo-web", s.secret("demo-web")),
    )
    .await
    .expect_ok("openid-client authorization_code + PKCE");
    // callback() validated the ID token (signature, iss, aud, azp, nonce,
    // at_hash) and the RFC 9207 `iss` of the authorization response.
    let c = &out["id_token_claims"];
    assert_eq!(c["iss"], s.base.as_str(), "{out}");
    assert_eq!(c["sub"], "alice", "{out}");
    assert_eq!(c["aud"], "demo-web", "{out}");
    assert!(c["nonce"].is_string(), "{out}");
    assert_eq!(out["id_token_alg"], "RS256", "{out}");
    assert_eq!(out["token"]["claims"]["sub"], "alice", "{out}");
    assert_eq!(out["refreshed"]["claims"]["sub"], "alice", "{out}");
    assert_eq!(out["refresh_rotated"], true, "{out}");
}

// ------------------------------------------------- openid-client 6 (Node.js 20+)

fn script6() -> std::path::PathBuf {
    interop_dir().join("openid-client/client6.mjs")
}

async fn openid_client_6_client_credentials_with_percent_encoded_dashes(backend: &Backend) {
    let Some(node) = node20("openid_client_6_client_credentials_with_percent_encoded_dashes")
    else {
        return;
    };
    let s = start(backend).await;
    // openid-client 6 escapes even `-` (`demo-client` goes out as
    // `demo%2Dclient`): RFC 6749 §2.3.1 decoding turns it back.
    for (id, secret) in [
        ("demo-client", s.secret("demo-client")),
        (TRICKY_ID, TRICKY_SECRET),
    ] {
        let out = run(
            node.clone(),
            script6(),
            &s.base,
            "client_credentials",
            &client_env(id, secret),
        )
        .await
        .expect_ok(&format!("openid-client 6 client_credentials as {id}"));
        assert!(out["version"].as_str().unwrap().starts_with("6."), "{out}");
        // oauth4webapi lowercases token_type.
        assert_eq!(out["token_type"], "bearer", "{out}");
        assert_eq!(out["expires_in"], 3600, "{out}");
        assert_eq!(out["claims"]["client_id"], id, "{out}");
        assert_eq!(out["claims"]["iss"], s.base.as_str(), "{out}");
    }
    // A wrong secret: 401 with `WWW-Authenticate: Basic` (RFC 6749 §5.2
    // requires it after Basic authentication), which openid-client 6 reports
    // as a challenge error; the body still says invalid_client.
    let r = run(
        node,
        script6(),
        &s.base,
        "client_credentials",
        &client_env("demo-client", "not-the-secret"),
    )
    .await;
    assert!(!r.ok, "a token with a wrong secret: {}", r.json);
    assert!(
        r.stderr.contains("WWWAuthenticateChallengeError"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("server: invalid_client"), "{}", r.stderr);
}

async fn openid_client_6_introspection_revocation_and_code_flow(backend: &Backend) {
    let Some(node) = node20("openid_client_6_introspection_revocation_and_code_flow") else {
        return;
    };
    let s = start(backend).await;
    let machine = client_env("demo-opaque", s.secret("demo-opaque"));
    let out = run(node.clone(), script6(), &s.base, "introspect", &machine)
        .await
        .expect_ok("openid-client 6 introspection");
    assert_eq!(out["introspection"]["active"], true, "{out}");
    assert_eq!(out["introspection"]["client_id"], "demo-opaque", "{out}");
    assert_eq!(out["unknown"]["active"], false, "{out}");
    let out = run(node.clone(), script6(), &s.base, "revoke", &machine)
        .await
        .expect_ok("openid-client 6 revocation");
    assert_eq!(
        (&out["active_before"], &out["active_after"]),
        (&Value::Bool(true), &Value::Bool(false)),
        "{out}"
    );
    let out = run(
        node,
        script6(),
        &s.base,
        "code",
        &client_env("demo-web", s.secret("demo-web")),
    )
    .await
    .expect_ok("openid-client 6 authorization_code + PKCE");
    assert_eq!(out["id_token_claims"]["sub"], "alice", "{out}");
    assert_eq!(out["id_token_claims"]["aud"], "demo-web", "{out}");
    assert_eq!(out["id_token_alg"], "RS256", "{out}");
    assert_eq!(out["refresh_rotated"], true, "{out}");
}

on_both_stores!(
    openid_client_discovers_the_server,
    openid_client_client_credentials_with_encoded_basic_credentials,
    openid_client_introspection,
    openid_client_revocation,
    openid_client_revokes_a_refresh_token,
    openid_client_code_flow_validates_the_id_token,
    openid_client_6_client_credentials_with_percent_encoded_dashes,
    openid_client_6_introspection_revocation_and_code_flow,
);
