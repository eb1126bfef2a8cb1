//! `gatewise authz` with a configuration file, as a user runs it: the help
//! teaches it, `config validate` reports every error with its position,
//! and the binary serves from the file, rotates keys in its store and keeps
//! them (and the tokens they signed) across a restart.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const EXAMPLE: &str = include_str!("../../../examples/authz.toml");

fn gatewise(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gatewise"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn help_teaches_the_configuration_file_with_examples() {
    let out = gatewise(&["authz", "--help"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--config <FILE>",
        "--ephemeral",
        "gatewise authz --dev",
        "gatewise authz --config examples/authz.toml",
        "gatewise authz config validate examples/authz.toml",
        "gatewise authz keys rotate --config examples/authz.toml",
        "docs/authz-config.md",
        "postgres://",
    ] {
        assert!(text.contains(needle), "`{needle}` is not in:\n{text}");
    }
    let out = gatewise(&["authz", "keys", "rotate", "--help"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("--no-overlap"), "{text}");
    // Neither --dev nor --config: a usage error.
    assert_eq!(gatewise(&["authz"], &[]).status.code(), Some(2));
}

#[test]
fn validate_reports_every_error_with_file_line_and_column() {
    let dir = TempDir::new();
    let good = dir.path().join("authz.toml");
    std::fs::write(&good, EXAMPLE).unwrap();
    let out = gatewise(
        &["authz", "config", "validate", good.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("valid (4 clients, 1 users"), "{text}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[clients]]\nid = \"svc\"\nsecret = \"hunter2\"\n\n[tokens]\naccess = \"soon\"\n",
    )
    .unwrap();
    let out = gatewise(&["authz", "config", "validate", bad.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let name = bad.display().to_string();
    assert!(
        err.contains(&format!(
            "error: {name}:3:10: clients[0].secret: secrets are never written"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "error: {name}:6:10: tokens.access: invalid duration"
        )),
        "{err}"
    );
    assert!(err.contains("2 errors in"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

/// A directory of the test's own, removed when dropped (the CLI crate's
/// tests do without the tempfile crate).
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "gatewise-authz-cli-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The running server, killed when dropped.
struct Running(Child, Vec<String>);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const SECRETS: [(&str, &str); 4] = [
    ("ORDERS_SERVICE_SECRET", "orders-secret-+/=:x"),
    ("WEB_APP_SECRET", "web-secret"),
    ("ALICE_PASSWORD", "wonderland"),
    (
        "GATEWISE_AUTHZ_KEY",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ),
];

/// `gatewise authz --config FILE` on a free port; returns after its banner.
fn start(config: &Path) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatewise"))
        .args(["authz", "--config", config.to_str().unwrap()])
        .envs(SECRETS)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let done = line.starts_with("Press Ctrl-C");
        lines.push(line);
        if done {
            break;
        }
    }
    Running(child, lines)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_serves_from_the_file_and_keeps_keys_across_restarts() {
    let dir = TempDir::new();
    let port = free_port();
    let config = dir.path().join("authz.toml");
    std::fs::write(
        &config,
        EXAMPLE.replace("127.0.0.1:9100", &format!("127.0.0.1:{port}")),
    )
    .unwrap();
    let issuer = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let server = tokio::task::spawn_blocking({
        let config = config.clone();
        move || start(&config)
    })
    .await
    .unwrap();
    let banner = server.1.join("\n");
    assert!(banner.contains(&issuer), "{banner}");
    // Configured secrets are never printed.
    for (_, secret) in SECRETS {
        assert!(!banner.contains(secret), "{banner}");
    }
    let token: serde_json::Value = http
        .post(format!("{issuer}/token"))
        .basic_auth("orders-service", Some("orders-secret-%2B%2F%3D%3Ax"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "orders.read"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = token["access_token"].as_str().unwrap().to_owned();
    let kids = async || -> Vec<String> {
        let jwks: serde_json::Value = http
            .get(format!("{issuer}/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let before = kids().await;
    drop(server);

    // Rotate in the store while the server is down, then start again.
    let out = gatewise(
        &[
            "authz",
            "keys",
            "rotate",
            "--config",
            config.to_str().unwrap(),
        ],
        &SECRETS,
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&format!("{} -> ", before[0])), "{said}");
    let server = tokio::task::spawn_blocking(move || start(&config))
        .await
        .unwrap();
    let after = kids().await;
    assert_ne!(after[0], before[0], "a new active key");
    for kid in &before {
        assert!(after.contains(kid), "{kid} is still published: {after:?}");
    }
    // The token signed before the rotation and the restart is still active.
    let active: serde_json::Value = http
        .post(format!("{issuer}/introspect"))
        .basic_auth("orders-service", Some("orders-secret-%2B%2F%3D%3Ax"))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(active["active"], true, "{active}");
    drop(server);
    // The state file is the owner's only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("gatewise-authz.db"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
