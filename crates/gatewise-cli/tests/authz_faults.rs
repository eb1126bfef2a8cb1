//! `gatewise authz` fault mode as a user runs it: the help teaches it, a bad
//! mode is a usage error naming the valid ones, and the built binary serves
//! a per-client fault and honours the `Gatewise-Fault` header.

use gatewise_authz::faults::MODES;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

fn gatewise(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gatewise"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn help_teaches_fault_mode_with_every_mode_and_an_example() {
    let out = gatewise(&["authz", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "Fault mode",
        "--fault <MODE>",
        "--fault-client",
        "--fault-header",
        "Gatewise-Fault: MODE",
        "docs/faults.md",
        "Example:",
    ] {
        assert!(text.contains(needle), "`{needle}` is not in:\n{text}");
    }
    for mode in MODES {
        assert!(text.contains(mode), "mode `{mode}` is not in:\n{text}");
    }
}

#[test]
fn a_bad_mode_is_a_usage_error_that_lists_the_valid_ones() {
    let out = gatewise(&["authz", "--dev", "--fault", "bom,html-eror-page"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`html-eror-page`"), "{err}");
    assert!(err.contains("discovery-issuer-mismatch"), "{err}");
    let out = gatewise(&["authz", "--dev", "--fault-client", "svc=jwks-down"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--fault jwks-down"), "{err}");
}

/// The running server, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_serves_a_clients_fault_and_the_header() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatewise"))
        .args([
            "authz",
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--fault-client",
            "broken=missing-token-type",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Running(child);
    // The banner: the issuer, then one line per client with its secret.
    let lines = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let done = line.starts_with("Press Ctrl-C");
            lines.push(line);
            if done {
                break;
            }
        }
        lines
    })
    .await
    .unwrap();
    let issuer = lines[0].rsplit(' ').next().unwrap().to_owned();
    assert!(issuer.starts_with("http://127.0.0.1:"), "{lines:#?}");
    let secret = |id: &str| {
        lines
            .iter()
            .find(|l| l.trim_start().starts_with(&format!("client {id} / ")))
            .and_then(|l| l.split_whitespace().nth(3))
            .unwrap_or_else(|| panic!("no client {id} in {lines:#?}"))
            .to_owned()
    };
    let broken_line = lines.iter().find(|l| l.contains("client broken")).unwrap();
    assert!(
        broken_line.contains("(faults: missing-token-type)"),
        "{broken_line}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("FAULT MODE")),
        "{lines:#?}"
    );

    let http = reqwest::Client::new();
    let token = |id: &str, fault: Option<&str>| {
        let mut r = http
            .post(format!("{issuer}/token"))
            .basic_auth(id, Some(secret(id)))
            .form(&[("grant_type", "client_credentials")]);
        if let Some(f) = fault {
            r = r.header("Gatewise-Fault", f);
        }
        r.send()
    };
    let broken: serde_json::Value = token("broken", None).await.unwrap().json().await.unwrap();
    assert!(broken["access_token"].is_string(), "{broken}");
    assert!(broken.get("token_type").is_none(), "{broken}");
    let fine: serde_json::Value = token("demo-client", None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fine["token_type"], "Bearer", "{fine}");
    // Fault mode is on (a client has faults): the header picks one fault.
    let r = token("demo-client", Some("error-in-200")).await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
    drop(server);
}
