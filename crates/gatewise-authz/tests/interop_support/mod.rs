//! What the interop tests share: the server on 127.0.0.1 under the wall
//! clock, its clients' credentials, the login form, and running a client
//! script (Python in `interop/python/.venv`, Node.js with
//! `interop/openid-client/node_modules`) with the credentials in its
//! environment, never on its command line.
//!
//! A missing venv or `node_modules` skips the tests with a notice on stderr;
//! with `CI=true` it fails them instead (`.ci/run` installs both).

#![allow(dead_code)] // each interop test file uses part of this module

use gatewise_authz::AuthzConfig;
use gatewise_authz::clients::ClientSpec;
use gatewise_core::clock::Clock;
use serde_json::Value;
use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

/// A client whose id and secret hold every character that form-urlencoding
/// (RFC 6749 §2.3.1) changes, a `-` that openid-client escapes as `%2D`, and
/// a `:` and `%` that break clients that do not encode (or servers that do
/// not split at the first colon, RFC 7617 §2).
pub(crate) const TRICKY_ID: &str = "interop-client_1.x";
/// The secret of [`TRICKY_ID`].
pub(crate) const TRICKY_SECRET: &str = "s3cr3t-+/=:%~!*'() x";

/// The loopback redirect URI of `demo-web`: nothing listens there, the
/// clients read the code from the `Location` that points at it.
pub(crate) const WEB_REDIRECT: &str = "http://127.0.0.1:8000/callback";

/// Real clients check `exp` and `iat` against the wall clock, so the
/// server under test reads it too.
#[derive(Debug)]
pub(crate) struct WallClock;

impl Clock for WallClock {
    // Reading the clock is banned outside the CLI's clock module; a server
    // that real clients judge needs the real time.
    #[allow(clippy::disallowed_methods)]
    fn unix_now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

/// `gatewise authz` on 127.0.0.1 with the development configuration, plus
/// [`TRICKY_ID`].
#[derive(Debug)]
pub(crate) struct Server {
    /// The issuer, `http://127.0.0.1:PORT`.
    pub(crate) base: String,
    /// The client secrets by client id.
    pub(crate) secrets: HashMap<String, String>,
}

impl Server {
    /// The secret of a client.
    pub(crate) fn secret(&self, id: &str) -> &str {
        &self.secrets[id]
    }
}

/// Starts the server.
pub(crate) async fn start(backend: &crate::support::Backend) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = AuthzConfig::dev(&base);
    config.clients.push(ClientSpec::machine(
        TRICKY_ID,
        TRICKY_SECRET,
        &["orders.read"],
        &["https://api.example.test"],
    ));
    let secrets = config
        .clients
        .iter()
        .map(|c| (c.id.clone(), c.secret.clone()))
        .collect();
    let authz = backend.authz(config, Arc::new(WallClock)).await;
    let router = Arc::clone(&authz).router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Server { base, secrets }
}

/// The repository's `interop/` folder.
pub(crate) fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop")
}

/// Whether this is CI (`CI=true`, as `.ci/run` sets it): then a missing
/// client is a failure, not a skip.
// Reading the environment is banned outside the CLI's env module; this
// switch of the tests is the exception (as in the gateway's interop test).
#[allow(clippy::disallowed_methods)]
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Writes past libtest's output capture, so the line shows in every run.
fn loud(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// `false` (after a notice) when `what` is missing outside CI; panics with
/// `how` in CI.
fn present(test: &str, ok: bool, what: &str, how: &str) -> bool {
    if ok {
        return true;
    }
    assert!(
        !in_ci(),
        "{test}: {what} is missing and CI=true: {how} (.ci/run does it)"
    );
    loud(&format!(
        "\n*** SKIPPED {test}: {what} is missing; to run it: {how} ***\n"
    ));
    false
}

/// The venv's Python when it is there.
pub(crate) fn python(test: &str) -> Option<PathBuf> {
    let py = interop_dir().join("python/.venv/bin/python");
    present(
        test,
        py.is_file(),
        "interop/python/.venv",
        "python3 -m venv interop/python/.venv && interop/python/.venv/bin/pip install -r interop/python/requirements.txt",
    )
    .then_some(py)
}

/// `node` when it runs and openid-client is installed.
pub(crate) fn node(test: &str) -> Option<PathBuf> {
    let runs = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let installed = interop_dir()
        .join("openid-client/node_modules/openid-client/package.json")
        .is_file();
    present(
        test,
        runs && installed,
        "Node.js or interop/openid-client/node_modules",
        "install Node.js 18+ (Debian: apt-get install nodejs npm), then npm ci --prefix interop/openid-client",
    )
    .then(|| PathBuf::from("node"))
}

/// `node` when [`node`] has it and it is Node.js 20 or newer, the baseline
/// of openid-client 6 (on Node.js 18 its code flow fails with `crypto is not
/// defined`). An older Node.js skips with a notice, in CI too: Debian 12
/// ships Node.js 18, where openid-client 5 ([`node`]) still runs.
pub(crate) fn node20(test: &str) -> Option<PathBuf> {
    let node = node(test)?;
    let installed = interop_dir()
        .join("openid-client/node_modules/openid-client-v6/package.json")
        .is_file();
    if !present(
        test,
        installed,
        "interop/openid-client/node_modules/openid-client-v6",
        "npm ci --prefix interop/openid-client",
    ) {
        return None;
    }
    let version = Command::new(&node)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major >= 20 {
        return Some(node);
    }
    loud(&format!(
        "\n*** SKIPPED {test}: openid-client 6 needs Node.js 20 or newer, this is {version} ***\n"
    ));
    None
}

/// What a client script did.
#[derive(Debug)]
pub(crate) struct Run {
    /// Its exit status was 0.
    pub(crate) ok: bool,
    /// Its stdout as JSON (`Null` when it printed none).
    pub(crate) json: Value,
    /// Its stderr (never holds a secret: the scripts print fingerprints).
    pub(crate) stderr: String,
}

impl Run {
    /// The JSON of a successful run; panics with the script's stderr.
    pub(crate) fn expect_ok(self, what: &str) -> Value {
        assert!(self.ok, "{what} failed:\n{}", self.stderr);
        self.json
    }
}

/// Runs `program script issuer flow` with `env` added (the credentials go
/// there, not on the command line) on a blocking thread, so the server on
/// this runtime keeps serving.
pub(crate) async fn run(
    program: PathBuf,
    script: PathBuf,
    issuer: &str,
    flow: &str,
    env: &[(&str, &str)],
) -> Run {
    let mut cmd = Command::new(program);
    cmd.arg(&script)
        .arg(issuer)
        .arg(flow)
        .current_dir(script.parent().unwrap());
    // Python's requests honours proxy variables: the server is on loopback.
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = match stdout.trim() {
        "" => Value::Null,
        s => serde_json::from_str(s)
            .unwrap_or_else(|e| panic!("{flow}: stdout is not JSON ({e}): {s}\nstderr: {stderr}")),
    };
    Run {
        ok: out.status.success(),
        json,
        stderr,
    }
}

/// The environment for a client: id, secret and the user.
pub(crate) fn client_env<'a>(id: &'a str, secret: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("GW_CLIENT_ID", id),
        ("GW_CLIENT_SECRET", secret),
        ("GW_REDIRECT_URI", WEB_REDIRECT),
        ("GW_USERNAME", "alice"),
        ("GW_PASSWORD", "wonderland"),
    ]
}

/// One attribute of an HTML tag (double-quoted, as the server writes them),
/// unescaped.
fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag.get(start..)?.find('"')? + start;
    Some(
        tag.get(start..end)?
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// Plays the user's browser: opens `authorization_url`, fills in the login
/// form as served (hidden fields included) as alice, submits it and
/// follows redirects until one points at `redirect_uri`, which is never
/// requested. Returns that URL.
pub(crate) async fn sign_in(authorization_url: &str, redirect_uri: &str) -> url::Url {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http.get(authorization_url).send().await.unwrap();
    assert_eq!(page.status(), 200, "the login page");
    let page_url = page.url().clone();
    let html = page.text().await.unwrap();
    let start = html.find("<form").expect("a <form> on the login page");
    let form = &html[start..start + html[start..].find("</form>").unwrap()];
    let form_tag = &form[..form.find('>').unwrap()];
    assert_eq!(
        attr(form_tag, "method").as_deref(),
        Some("post"),
        "{form_tag}"
    );
    let action = page_url
        .join(&attr(form_tag, "action").unwrap_or_default())
        .unwrap();
    let mut fields = Vec::new();
    for piece in form.split("<input").skip(1) {
        let tag = &piece[..piece.find('>').unwrap()];
        let Some(name) = attr(tag, "name") else {
            continue;
        };
        let value = match name.as_str() {
            "username" => "alice".to_owned(),
            "password" => "wonderland".to_owned(),
            _ => attr(tag, "value").unwrap_or_default(),
        };
        fields.push((name, value));
    }
    assert!(
        fields.iter().any(|(n, _)| n == "username") && fields.iter().any(|(n, _)| n == "password"),
        "the login form has no username/password: {fields:?}"
    );
    let mut resp = http.post(action).form(&fields).send().await.unwrap();
    for _ in 0..5 {
        assert!(
            resp.status().is_redirection(),
            "signing in answered {} instead of a redirect",
            resp.status()
        );
        let location = resp
            .url()
            .join(resp.headers()["location"].to_str().unwrap())
            .unwrap();
        if location.as_str().split('?').next() == redirect_uri.split('?').next() {
            return location;
        }
        resp = http.get(location).send().await.unwrap();
    }
    panic!("more than five redirects after signing in");
}
