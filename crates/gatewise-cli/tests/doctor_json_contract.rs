//! `docs/doctor-json.md` against the real binary: the member table between
//! its `members:begin`/`members:end` markers is parsed, every doctor
//! command's `--format json` is run (the live ones against the embedded
//! authorization server and small servers on 127.0.0.1), and each output
//! must have the documented members with the documented types, and no
//! member the page does not list. The document cannot drift silently.

mod common;

use common::gatewise;
use gatewise_authz::{Authz, AuthzConfig};
use gatewise_core::clock::Clock;
use serde_json::Value;
use std::net::SocketAddr;
use std::process::Output;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const DOC: &str = include_str!("../../../docs/doctor-json.md");

/// One row of the member table.
#[derive(Debug)]
struct Member {
    path: String,
    ty: String,
    presence: String,
}

fn members() -> Vec<Member> {
    let begin = DOC
        .find("<!-- members:begin -->")
        .expect("members:begin marker");
    let end = DOC
        .find("<!-- members:end -->")
        .expect("members:end marker");
    let rows: Vec<Member> = DOC[begin..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 4, "a member row has 4 cells: {l}");
            assert!(
                matches!(cells[3], "stable" | "informative"),
                "stability of {l}"
            );
            Member {
                path: cells[0].trim_matches('`').to_string(),
                ty: cells[1].to_string(),
                presence: cells[2].to_string(),
            }
        })
        .collect();
    assert!(rows.len() > 50, "the member table was not found");
    rows
}

/// The transcript labels the page lists, `N` standing for a number.
fn label_patterns() -> Vec<String> {
    let start = DOC.find("| `label` | made by |").expect("the label table");
    DOC[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .flat_map(|l| {
            let first = l.trim_matches('|').split('|').next().unwrap_or("");
            first
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn label_documented(label: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|p| match p.split_once('N') {
        Some((pre, post)) if p.contains(" N") || p.contains("#N") => label
            .strip_prefix(pre)
            .and_then(|rest| rest.strip_suffix(post))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
        _ => p == label,
    })
}

fn type_ok(v: &Value, ty: &str) -> bool {
    ty.split(" or ").map(str::trim).any(|alt| match alt {
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_u64() || v.is_i64(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "null" => v.is_null(),
        lit if lit.starts_with('"') => v.as_str() == Some(lit.trim_matches('"')),
        other => panic!("unknown type {other:?} in docs/doctor-json.md"),
    })
}

/// Every member of `v` with its path, descending only where the page
/// documents members below (a JWT's claims are the token's, not ours).
fn walk<'a>(v: &'a Value, path: &str, doc: &[Member], out: &mut Vec<(String, &'a Value)>) {
    let below = |p: &str| {
        doc.iter().any(|m| {
            m.path.len() > p.len()
                && m.path.starts_with(p)
                && (m.path[p.len()..].starts_with('.') || m.path[p.len()..].starts_with("[]"))
        })
    };
    if !path.is_empty() && !below(path) {
        return;
    }
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                out.push((p.clone(), x));
                walk(x, &p, doc, out);
            }
        }
        Value::Array(items) => {
            let p = format!("{path}[]");
            for x in items {
                out.push((p.clone(), x));
                walk(x, &p, doc, out);
            }
        }
        _ => {}
    }
}

/// Which command produced an output, for the presence column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Response,
    Jwt,
    JwtLive,
    AuthorizeUrl,
    Explain,
    Discovery,
    Token,
    Rules,
}

impl Kind {
    fn has(self, presence: &str) -> Option<bool> {
        match presence {
            "always" => Some(true),
            "optional" => None,
            "live" => Some(matches!(
                self,
                Kind::JwtLive | Kind::Discovery | Kind::Token
            )),
            "jwt" => Some(matches!(self, Kind::Jwt | Kind::JwtLive)),
            "authorize-url" => Some(self == Kind::AuthorizeUrl),
            "explain" => Some(self == Kind::Explain),
            "rules" => Some(self == Kind::Rules),
            other => panic!("unknown presence {other:?} in docs/doctor-json.md"),
        }
    }
}

/// Checks one output against the page; returns it for further asserts.
fn conforms(out: &Output, kind: Kind) -> Value {
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{kind:?}: stdout is not one JSON value ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let doc = members();
    // The contract's members first, in its order.
    let keys: Vec<&String> = v.as_object().expect("a JSON object").keys().collect();
    assert_eq!(keys[..3], ["subject", "verdict", "findings"], "{kind:?}");
    // The exit code the verdict maps to (shared/contracts.md).
    let expected = match v["verdict"].as_str() {
        // Explaining never fails the command: its findings are hypotheses.
        Some(_) if kind == Kind::Explain => 0,
        Some("ok" | "warn") => 0,
        Some("error") => 1,
        Some("unreachable") => 3,
        other => panic!("{kind:?}: verdict {other:?}"),
    };
    assert_eq!(out.status.code(), Some(expected), "{kind:?}: {v:#}");

    let mut seen = Vec::new();
    walk(&v, "", &doc, &mut seen);
    for (path, value) in &seen {
        let m = doc
            .iter()
            .find(|m| &m.path == path)
            .unwrap_or_else(|| panic!("{kind:?}: `{path}` is not in docs/doctor-json.md"));
        assert!(
            type_ok(value, &m.ty),
            "{kind:?}: `{path}` is {value}, documented as {}",
            m.ty
        );
    }
    for m in &doc {
        let (parent, name) = match m.path.rsplit_once('.') {
            Some((p, n)) if !n.contains("[]") => (Some(p), n),
            Some(_) => continue,
            None if m.path.contains("[]") => continue,
            None => (None, m.path.as_str()),
        };
        match parent {
            None => {
                if let Some(want) = kind.has(&m.presence) {
                    assert_eq!(
                        v.get(name).is_some(),
                        want,
                        "{kind:?}: top-level `{name}` ({}): {v:#}",
                        m.presence
                    );
                }
            }
            Some(parent) => {
                if m.presence != "always" {
                    continue;
                }
                for (_, obj) in seen.iter().filter(|(p, x)| p == parent && x.is_object()) {
                    assert!(
                        obj.get(name).is_some(),
                        "{kind:?}: `{}` missing in {obj}",
                        m.path
                    );
                }
            }
        }
    }
    // A body has `text` or `base64`, exactly one.
    for (path, body) in seen.iter().filter(|(p, _)| p.ends_with(".body")) {
        let n = ["text", "base64"]
            .iter()
            .filter(|k| body.get(**k).is_some())
            .count();
        assert_eq!(n, 1, "{kind:?}: `{path}` = {body}");
    }
    // Transcript labels are the documented ones.
    let labels = label_patterns();
    for (_, label) in seen.iter().filter(|(p, _)| p == "transcript[].label") {
        let label = label.as_str().unwrap();
        assert!(
            label_documented(label, &labels),
            "{kind:?}: label {label:?} is not documented ({labels:?})"
        );
    }
    v
}

/// Finds `«N chars, sha256:xxxxxxxx»` in `s`; returns how many.
fn masks(s: &str) -> usize {
    let mut n = 0;
    for (i, _) in s.match_indices('«') {
        let rest = &s[i + '«'.len_utf8()..];
        let Some(end) = rest.find('»') else { continue };
        let inner = &rest[..end];
        let ok = inner
            .split_once(" chars, sha256:")
            .is_some_and(|(len, fp)| {
                !len.is_empty()
                    && len.bytes().all(|b| b.is_ascii_digit())
                    && fp.len() == 8
                    && fp.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            });
        if ok {
            n += 1;
        }
    }
    n
}

struct Wall;

impl Clock for Wall {
    #[allow(clippy::disallowed_methods)]
    fn unix_now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }
}

/// The embedded authorization server on 127.0.0.1: issuer, demo-client's
/// secret, and its handle.
async fn authz() -> (String, String, Arc<Authz>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let config = AuthzConfig::dev(&issuer);
    let secret = config
        .clients
        .iter()
        .find(|c| c.id == "demo-client")
        .unwrap()
        .secret
        .clone();
    let authz = Arc::new(Authz::new(config, Arc::new(Wall)).unwrap());
    let router = Arc::clone(&authz).router();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (issuer, secret, authz)
}

/// A token endpoint that answers with bytes that are not UTF-8 (the
/// transcript shows them as `base64`).
async fn binary_endpoint() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let body = [0xffu8, 0xfe, 0x00, 0x80, 0x81];
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(&body).await;
            });
        }
    });
    addr
}

fn codes(v: &Value) -> Vec<&str> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect()
}

#[test]
fn the_page_parses() {
    let doc = members();
    // Every path's parent is documented too.
    for m in &doc {
        let parent = if let Some(p) = m.path.strip_suffix("[]") {
            Some(p)
        } else {
            m.path.rsplit_once('.').map(|(p, _)| p)
        };
        if let Some(p) = parent {
            assert!(
                doc.iter().any(|x| x.path == p),
                "`{}` has no documented parent `{p}`",
                m.path
            );
        }
        assert!(
            type_ok(&Value::Null, &m.ty) || !m.ty.is_empty(),
            "{}",
            m.path
        );
    }
    let labels = label_patterns();
    for l in [
        "metadata (RFC 8414)",
        "jwks",
        "token",
        "token #3",
        "token (poll 12)",
    ] {
        assert!(label_documented(l, &labels), "{l}: {labels:?}");
    }
    assert!(!label_documented("token #", &labels));
    assert_eq!(masks("a «12 chars, sha256:0a1b2c3d» b «x»"), 1);
}

/// `doctor token` with client credentials against `url`, in JSON.
async fn client_credentials_json(url: &str) -> std::process::Output {
    gatewise(
        &[
            "doctor",
            "token",
            "--token-url",
            url,
            "--client-id",
            "svc",
            "--client-secret-env",
            "GW_CONTRACT_SECRET",
            "--format",
            "json",
        ],
        &[("GW_CONTRACT_SECRET", "s3cr3t")],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn live_token_run_matches_the_page() {
    let (issuer, secret, _) = authz().await;
    let out = gatewise(
        &[
            "doctor",
            "token",
            "--issuer",
            &issuer,
            "--client-id",
            "demo-client",
            "--client-secret-env",
            "GW_CONTRACT_SECRET",
            "--scope",
            "orders.read",
            "--resource",
            "https://api.example.test",
            "--format",
            "json",
        ],
        &[("GW_CONTRACT_SECRET", &secret)],
    )
    .await;
    let v = conforms(&out, Kind::Token);
    assert_eq!(v["subject"], issuer.as_str());
    let t = v["transcript"].as_array().unwrap();
    let labels: Vec<&str> = t.iter().map(|x| x["label"].as_str().unwrap()).collect();
    assert_eq!(
        labels,
        [
            "metadata (RFC 8414)",
            "metadata (OpenID Connect)",
            "jwks",
            "token"
        ]
    );
    let token = &t[3];
    assert_eq!(token["masked"], true);
    assert!(token["proxy"].is_null() && token["failure"].is_null());
    let hop = &token["hops"][0];
    assert_eq!(hop["request"]["method"], "POST");
    assert_eq!(hop["response"]["status"], 200);
    assert_eq!(hop["response"]["complete"], true);
    // Timings per phase: plain http on 127.0.0.1, no proxy.
    let tm = &hop["timings"];
    for phase in ["dns_ms", "connect_ms", "first_byte_ms", "total_ms"] {
        assert!(tm[phase].is_number(), "{phase}: {tm}");
    }
    assert!(tm["tls_ms"].is_null() && tm["tunnel_ms"].is_null(), "{tm}");
    // Secrets: the documented format, never the value.
    let body = hop["response"]["body"]["text"].as_str().unwrap();
    assert!(body.contains("\"access_token\":\"«"), "{body}");
    assert!(masks(body) >= 1, "{body}");
    assert!(!v.to_string().contains(&secret));
    // Every finding's members are the contract's.
    for f in v["findings"].as_array().unwrap() {
        assert_eq!(f.as_object().unwrap().len(), 8, "{f}");
    }

    // --show-secrets: `masked` false and the real values.
    let out = gatewise(
        &[
            "doctor",
            "token",
            "--issuer",
            &issuer,
            "--client-id",
            "demo-client",
            "--client-secret-env",
            "GW_CONTRACT_SECRET",
            "--auth",
            "client_secret_post",
            "--repeat",
            "2",
            "--show-secrets",
            "--format",
            "json",
        ],
        &[("GW_CONTRACT_SECRET", &secret)],
    )
    .await;
    let v = conforms(&out, Kind::Token);
    let t = v["transcript"].as_array().unwrap();
    let last: Vec<&str> = t[3..]
        .iter()
        .map(|x| x["label"].as_str().unwrap())
        .collect();
    assert_eq!(last, ["token #1", "token #2"]);
    assert_eq!(t[3]["masked"], false);
    let sent = t[3]["hops"][0]["request"]["body"]["text"].as_str().unwrap();
    assert!(sent.contains("client_secret="), "{sent}");
    assert_eq!(masks(sent), 0, "{sent}");
    // --repeat shows as LV-01, not as a member.
    assert!(codes(&v).contains(&"repeat-outcomes-same"), "{v:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn other_live_runs_match_the_page() {
    let (issuer, _, authz) = authz().await;
    let out = gatewise(&["doctor", "discovery", &issuer, "--format", "json"], &[]).await;
    conforms(&out, Kind::Discovery);

    // doctor jwt with the keys fetched: `decoded` and `transcript`.
    let token = authz
        .mint_access_token(
            "demo-client",
            "https://api.example.test",
            "orders.read",
            300,
        )
        .unwrap();
    let out = gatewise(
        &[
            "doctor",
            "jwt",
            &token,
            "--issuer",
            &issuer,
            "--discover",
            "--audience",
            "https://api.example.test",
            "--format",
            "json",
        ],
        &[],
    )
    .await;
    let v = conforms(&out, Kind::JwtLive);
    assert_eq!(v["subject"], "token");
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["subject", "verdict", "findings", "decoded", "transcript"]
    );
    assert!(codes(&v).contains(&"jwt-signature-verified"), "{v:#}");

    // A body that is not UTF-8 is `base64`.
    let addr = binary_endpoint().await;
    let url = format!("http://{addr}/token");
    let out = client_credentials_json(&url).await;
    let v = conforms(&out, Kind::Token);
    let body = &v["transcript"][0]["hops"][0]["response"]["body"];
    assert_eq!(body["bytes"], 5);
    assert_eq!(body["base64"], "//4AgIE=");

    // Unreachable: exit 3, the failure object, no response.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = l.local_addr().unwrap();
    drop(l);
    let url = format!("http://{closed}/token");
    let out = client_credentials_json(&url).await;
    let v = conforms(&out, Kind::Token);
    assert_eq!(v["verdict"], "unreachable");
    let t = &v["transcript"][0];
    assert_eq!(t["failure"]["rule"], "NET-02");
    assert_eq!(t["failure"]["code"], "connect-refused");
    assert_eq!(t["failure"]["unreachable"], true);
    assert!(t["hops"][0]["response"].is_null());
    assert!(t["hops"][0]["timings"]["first_byte_ms"].is_null());
    // The reachability finding is still listed.
    assert!(codes(&v).contains(&"connect-refused"));

    // A usage error: exit 2, nothing on stdout.
    let out = gatewise(
        &["doctor", "discovery", "not a url", "--format", "json"],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn offline_commands_match_the_page() {
    let dir = std::env::temp_dir().join(format!("gatewise-contract-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let capture = dir.join("token.http");
    std::fs::write(
        &capture,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n\r\n{\"access_token\":\"abc\",\"token_type\":\"Bearer\",\"expires_in\":\"3600\"}",
    )
    .unwrap();
    let out = gatewise(
        &[
            "doctor",
            "response",
            capture.to_str().unwrap(),
            "--format",
            "json",
        ],
        &[],
    )
    .await;
    let v = conforms(&out, Kind::Response);
    assert_eq!(v.as_object().unwrap().len(), 3);

    let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    let out = gatewise(&["doctor", "jwt", token, "--format", "json"], &[]).await;
    let v = conforms(&out, Kind::Jwt);
    assert_eq!(v["decoded"]["claims"]["sub"], "1234567890");

    let url = "https://as.example.test/authorize?response_type=code&client_id=web&redirect_uri=https%3A%2F%2Fapp.example.test%2Fcb&state=xyz&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256";
    let out = gatewise(
        &[
            "doctor",
            "authorize-url",
            url,
            "--registered-redirect-uri",
            "https://app.example.test/cb",
            "--format",
            "json",
        ],
        &[],
    )
    .await;
    let v = conforms(&out, Kind::AuthorizeUrl);
    assert_eq!(v["subject"], "https://as.example.test/authorize");
    assert_eq!(
        v["parameters"][0],
        serde_json::json!(["response_type", "code"])
    );

    let out = gatewise(
        &[
            "doctor",
            "explain",
            "missing field `token_type` at line 1 column 44",
            "--format",
            "json",
        ],
        &[],
    )
    .await;
    conforms(&out, Kind::Explain);

    let out = gatewise(&["doctor", "rules", "--format", "json"], &[]).await;
    let v = conforms(&out, Kind::Rules);
    assert_eq!(v["verdict"], "ok");
    let _ = std::fs::remove_dir_all(&dir);
}
