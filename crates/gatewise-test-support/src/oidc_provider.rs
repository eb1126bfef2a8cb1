//! npm `oidc-provider` (panva, OpenID Certified), run by
//! `interop/oidc-provider/server.mjs` on 127.0.0.1: a real identity
//! provider for the gateway's and the doctor's interop tests (its clients,
//! the development sign-in pages and `GET /_test/client-keys` are described
//! at the top of `server.mjs`).
//!
//! Needs `node` (18+) and `npm ci --prefix interop/oidc-provider`; the
//! tests fail with that advice when they are missing, unless
//! `GATEWISE_SKIP_INTEROP=1`.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The resource (RFC 8707) `server.mjs` issues JWT access tokens for.
pub const API: &str = "https://api.gatewise.test";
/// A second resource, for wrong-audience tokens.
pub const OTHER_API: &str = "https://other.gatewise.test";

/// `interop/oidc-provider` in the repository.
pub fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop/oidc-provider")
}

/// Whether the interop tests are to be skipped (`GATEWISE_SKIP_INTEROP=1`).
// Reading the environment is banned by clippy.toml outside the CLI's env
// module; this one opt-out switch of the tests is the exception.
#[allow(clippy::disallowed_methods)]
fn skip_requested() -> bool {
    std::env::var("GATEWISE_SKIP_INTEROP").is_ok_and(|v| v == "1")
}

/// Writes past libtest's output capture, so the line shows in every run.
fn loud(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// `true` when the tests can run; `false` (after a loud line) when skipped;
/// panics with what to do when Node.js or the provider is missing.
pub fn preflight(test: &str) -> bool {
    if skip_requested() {
        loud(&format!(
            "\n*** SKIPPED {test}: GATEWISE_SKIP_INTEROP=1, the oidc-provider interop test did not run ***\n"
        ));
        return false;
    }
    let advice = "the oidc-provider interop tests need Node.js 18 or newer. Install it (Debian: \
                  `apt-get install nodejs npm`), then run `npm ci --prefix interop/oidc-provider`; \
                  or set GATEWISE_SKIP_INTEROP=1 to skip these tests";
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!("`node --version` failed ({}): {advice}", out.status),
        Err(e) => panic!("cannot run `node` ({e}): {advice}"),
    }
    let dir = interop_dir();
    assert!(
        dir.join("node_modules/oidc-provider/package.json")
            .is_file(),
        "{} has no node_modules/oidc-provider: run `npm ci --prefix interop/oidc-provider` \
         (or set GATEWISE_SKIP_INTEROP=1 to skip these tests)",
        dir.display()
    );
    true
}

/// One `node server.mjs` process; killed when dropped (also on panic).
pub struct OidcProvider {
    child: Child,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    stderr: Arc<Mutex<String>>,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OidcProvider {
    /// Starts the provider on a free port and waits (30 s at most) for its
    /// `READY <port>` line.
    pub async fn start() -> OidcProvider {
        let dir = interop_dir();
        let mut child = Command::new("node")
            .arg(dir.join("server.mjs"))
            .args(["--port", "0", "--exit-with-stdin"])
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning node interop/oidc-provider/server.mjs");
        let stderr = Arc::new(Mutex::new(String::new()));
        {
            let mut pipe = child.stderr.take().unwrap();
            let sink = Arc::clone(&stderr);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    sink.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<u16>();
        {
            let pipe = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                let mut ready_tx = Some(ready_tx);
                // Read every line, so the child never blocks on a full pipe.
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if let Some(port) = line
                        .strip_prefix("READY ")
                        .and_then(|p| p.trim().parse().ok())
                        && let Some(tx) = ready_tx.take()
                    {
                        let _ = tx.send(port);
                    }
                }
            });
        }
        let mut p = OidcProvider {
            child,
            port: 0,
            stderr,
        };
        match tokio::time::timeout(Duration::from_secs(30), ready_rx).await {
            Ok(Ok(port)) => p.port = port,
            Ok(Err(_)) => panic!(
                "server.mjs exited before printing READY; its stderr:\n{}",
                p.stderr()
            ),
            Err(_) => panic!(
                "server.mjs printed no READY line within 30 s; its stderr:\n{}",
                p.stderr()
            ),
        }
        p
    }

    /// What the provider printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}
