//! The live doctor against a real, certified identity provider: npm
//! `oidc-provider` (panva) run by `interop/oidc-provider/server.mjs` on
//! 127.0.0.1. What a healthy provider serves must come out with verdict
//! `ok`; a wrong secret must be named.
//!
//! Needs `node` (18+) and `npm ci --prefix interop/oidc-provider` (the
//! `.ci/run` script installs both); fails with that advice when they are
//! missing, unless `GATEWISE_SKIP_INTEROP=1`.

use gatewise_test_support::oidc_provider::{API, OidcProvider, preflight};
use serde_json::Value;
use std::process::Command;

/// Runs the built binary with `env`; returns (exit code, JSON report).
async fn doctor(args: &[&str], env: &[(&str, &str)]) -> (i32, Value) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let out = tokio::task::spawn_blocking(move || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_gatewise"));
        c.args(&args).args(["--format", "json"]);
        for v in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"] {
            c.env_remove(v);
        }
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    })
    .await
    .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not one JSON report ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

fn codes(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_and_client_credentials_against_oidc_provider() {
    if !preflight("discovery_and_client_credentials_against_oidc_provider") {
        return;
    }
    let idp = OidcProvider::start().await;
    let issuer = idp.issuer();

    let (code, v) = doctor(&["doctor", "discovery", &issuer], &[]).await;
    assert_eq!((code, v["verdict"].as_str()), (0, Some("ok")), "{v:#}");

    // Both clients of server.mjs: Basic with RS256 tokens, form-post with
    // ES256 tokens; JWT access tokens for the API (RFC 8707), verified
    // against the discovered keys.
    for (client, secret, auth) in [
        ("gateway-test", "gateway-test-secret", "client_secret_basic"),
        (
            "gateway-test-es256",
            "gateway-test-es256-secret",
            "client_secret_post",
        ),
    ] {
        let (code, v) = doctor(
            &[
                "doctor",
                "token",
                "--issuer",
                &issuer,
                "--client-id",
                client,
                "--client-secret-env",
                "GW_TEST_SECRET",
                "--auth",
                auth,
                "--scope",
                "orders.read",
                "--resource",
                API,
            ],
            &[("GW_TEST_SECRET", secret)],
        )
        .await;
        assert_eq!(
            (code, v["verdict"].as_str()),
            (0, Some("ok")),
            "{client}: {v:#}"
        );
        assert!(
            codes(&v).contains(&"jwt-signature-verified".to_owned()),
            "{client}: {v:#}"
        );
        assert!(
            !v.to_string().contains(secret),
            "{client}: the secret leaked"
        );
    }

    // A wrong secret: refused, and named.
    let (_, v) = doctor(
        &[
            "doctor",
            "token",
            "--issuer",
            &issuer,
            "--client-id",
            "gateway-test",
            "--client-secret-env",
            "GW_TEST_SECRET",
            "--scope",
            "orders.read",
            "--resource",
            API,
        ],
        &[("GW_TEST_SECRET", "not-the-secret")],
    )
    .await;
    assert_ne!(v["verdict"], "ok", "{v:#}");
    let refused = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "error-request-refused")
        .unwrap_or_else(|| panic!("{:?}\nprovider stderr:\n{}", codes(&v), idp.stderr()));
    assert!(
        refused["title"]
            .as_str()
            .unwrap()
            .contains("invalid_client"),
        "{refused:#}"
    );
}
