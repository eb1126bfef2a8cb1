//! The live doctor against a real, certified identity provider: npm
//! `oidc-provider` (panva) run by `interop/oidc-provider/server.mjs` on
//! 127.0.0.1. What a healthy provider serves must come out with verdict
//! `ok`; a wrong secret must be named. Every grant the doctor runs is
//! covered: client_credentials (secrets and private_key_jwt),
//! authorization_code (interactive, and with a code the test got itself),
//! refresh_token (rotation reported) and device_code. The test plays the
//! browser over HTTP: oidc-provider's devInteractions sign-in and consent
//! forms and its device verification page, with a small cookie jar.
//!
//! Needs `node` (18+) and `npm ci --prefix interop/oidc-provider` (the
//! `.ci/run` script installs both); fails with that advice when they are
//! missing, unless `GATEWISE_SKIP_INTEROP=1`.

use gatewise_test_support::oidc_provider::{API, OidcProvider, preflight};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

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

// ------------------------------------------------------------ the browser

/// Where a walk through the provider's pages ended.
#[derive(Debug)]
enum Landing {
    /// A redirect to the URL the walk was told to stop at (not followed).
    Redirect(String),
    /// A page without a form (the device flow's "Sign-in Success").
    Page(String),
}

/// Just enough of a browser for oidc-provider's pages: a cookie jar (names
/// only; the flows are sequential, so paths do not matter), redirects
/// followed by hand, and the first form of each page submitted with its
/// hidden inputs and the values given for the visible ones.
struct Browser {
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    async fn send(
        &mut self,
        url: &str,
        form: Option<&[(String, String)]>,
    ) -> (u16, Option<String>, String) {
        let mut req = match form {
            Some(f) => self.http.post(url).form(f),
            None => self.http.get(url),
        };
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.header("cookie", jar.join("; "));
        }
        let r = req.send().await.unwrap();
        for c in r.headers().get_all("set-cookie") {
            let pair = c.to_str().unwrap().split(';').next().unwrap_or("");
            if let Some((k, v)) = pair.split_once('=') {
                if v.is_empty() {
                    self.cookies.remove(k.trim());
                } else {
                    self.cookies.insert(k.trim().to_owned(), v.to_owned());
                }
            }
        }
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        (status, location, r.text().await.unwrap())
    }

    /// From `start`, follows redirects and submits forms (with `fill` for
    /// inputs that have no value) until a redirect to a URL starting with
    /// `stop`, or a page without a form.
    async fn walk(&mut self, start: &str, stop: &str, fill: &[(&str, &str)]) -> Landing {
        let mut url = url::Url::parse(start).unwrap();
        let mut form: Option<Vec<(String, String)>> = None;
        for _ in 0..25 {
            let (status, location, body) = self.send(url.as_str(), form.as_deref()).await;
            form = None;
            if (300..400).contains(&status) {
                let next = url.join(&location.unwrap()).unwrap();
                if next.as_str().starts_with(stop) {
                    return Landing::Redirect(next.into());
                }
                url = next;
                continue;
            }
            assert_eq!(status, 200, "{url}: {body}");
            let Some((action, fields)) = first_form(&body, fill) else {
                return Landing::Page(body);
            };
            url = url.join(&action).unwrap();
            form = Some(fields);
        }
        panic!("no end after 25 pages (last: {url})");
    }
}

/// The value of `name="…"` in an HTML tag.
fn attr(tag: &str, name: &str) -> Option<String> {
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let rest = tag.get(at..)?;
    Some(rest[..rest.find('"')?].replace("&amp;", "&"))
}

/// The first form's action and fields: every `<input>` with a name, its
/// value or else the one `fill` gives.
fn first_form(html: &str, fill: &[(&str, &str)]) -> Option<(String, Vec<(String, String)>)> {
    let start = html.find("<form")?;
    let end = html[start..]
        .find("</form>")
        .map_or(html.len(), |e| start + e);
    let form = &html[start..end];
    let action = attr(&form[..form.find('>')?], "action")?;
    let mut fields = Vec::new();
    for piece in form.split("<input").skip(1) {
        let tag = &piece[..piece.find('>').unwrap_or(piece.len())];
        let tag = format!(" {}", tag.replace(['\n', '\t'], " "));
        let Some(name) = attr(&tag, "name") else {
            continue;
        };
        let value = attr(&tag, "value").or_else(|| {
            fill.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        });
        fields.push((name, value.unwrap_or_default()));
    }
    Some((action, fields))
}

/// Signs in (any login) and consents on the provider's pages, starting at
/// an authorization URL; returns the redirect to `redirect_uri`.
async fn sign_in(authorization_url: &str, redirect_uri: &str) -> url::Url {
    match Browser::new()
        .walk(
            authorization_url,
            redirect_uri,
            &[("login", "alice"), ("password", "any")],
        )
        .await
    {
        Landing::Redirect(u) => url::Url::parse(&u).unwrap(),
        Landing::Page(p) => panic!("no redirect to {redirect_uri}; last page:\n{p}"),
    }
}

fn query(u: &url::Url, name: &str) -> Option<String> {
    u.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

// ------------------------------------------------------------ the doctor, running

/// A `gatewise doctor` run whose stderr the test reads while it runs (the
/// sign-in URL, the user code).
struct Running {
    lines: std::sync::mpsc::Receiver<String>,
    done: tokio::task::JoinHandle<(i32, Vec<u8>, String)>,
}

fn spawn_doctor(args: &[&str], env: &[(&str, &str)]) -> Running {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gatewise"));
    c.args(args).args(["--format", "json"]);
    for v in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"] {
        c.env_remove(v);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    let err = child.stderr.take().unwrap();
    let all_err = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = std::sync::Arc::clone(&all_err);
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push_str(&format!("{line}\n"));
            let _ = tx.send(line);
        }
    });
    let mut out = child.stdout.take().unwrap();
    let done = tokio::task::spawn_blocking(move || {
        let mut stdout = Vec::new();
        out.read_to_end(&mut stdout).unwrap();
        let status = child.wait().unwrap();
        let _ = reader.join();
        let stderr = all_err.lock().unwrap().clone();
        (status.code().unwrap_or(-1), stdout, stderr)
    });
    Running { lines, done }
}

impl Running {
    /// The first stderr line for which `pick` says something (30 s at most).
    async fn wait_for(&self, pick: impl Fn(&str) -> Option<String>) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            match self.lines.try_recv() {
                Ok(line) => {
                    if let Some(v) = pick(&line) {
                        return v;
                    }
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "the doctor printed nothing usable"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    panic!("the doctor's stderr ended before the line the test waits for")
                }
            }
        }
    }

    async fn finish(self) -> (i32, Value) {
        let (code, stdout, stderr) = self.done.await.unwrap();
        let v = serde_json::from_slice(&stdout).unwrap_or_else(|e| {
            panic!(
                "not one JSON report ({e}):\n{}\n{stderr}",
                String::from_utf8_lossy(&stdout)
            )
        });
        (code, v)
    }
}

fn ok(code: i32, v: &Value, what: &str, idp: &OidcProvider) {
    assert_eq!(
        (code, v["verdict"].as_str()),
        (0, Some("ok")),
        "{what}: {v:#}\nprovider stderr:\n{}",
        idp.stderr()
    );
}

/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// Registered as http://127.0.0.1/callback for the native client: any port
/// goes (RFC 8252 §7.3). Nothing listens here; the test reads the code
/// from the redirect.
const NATIVE_REDIRECT: &str = "http://127.0.0.1:7/callback";

/// A code for doctor-native (PKCE S256 with [`VERIFIER`], scope openid),
/// obtained by signing in on the provider's pages.
async fn native_code(issuer: &str) -> String {
    let mut u = url::Url::parse(&format!("{issuer}/auth")).unwrap();
    u.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "doctor-native")
        .append_pair("redirect_uri", NATIVE_REDIRECT)
        .append_pair("scope", "openid")
        .append_pair("state", "st-0123456789")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    let back = sign_in(u.as_str(), NATIVE_REDIRECT).await;
    assert_eq!(
        query(&back, "state").as_deref(),
        Some("st-0123456789"),
        "{back}"
    );
    query(&back, "code").unwrap_or_else(|| panic!("no code in {back}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn authorization_code_interactive_against_oidc_provider() {
    if !preflight("authorization_code_interactive_against_oidc_provider") {
        return;
    }
    let idp = OidcProvider::start().await;
    let issuer = idp.issuer();
    let run = spawn_doctor(
        &[
            "doctor",
            "token",
            "--issuer",
            &issuer,
            "--client-id",
            "doctor-native",
            "--auth",
            "none",
            "--grant",
            "authorization_code",
            "--scope",
            "openid",
            "--no-browser",
            "--wait",
            "60",
        ],
        &[],
    );
    // "Sign in through this URL:", a blank line, then the URL indented.
    let url = run
        .wait_for(|l| {
            l.trim_start()
                .starts_with("http")
                .then(|| l.trim().to_owned())
        })
        .await;
    let redirect = query(&url::Url::parse(&url).unwrap(), "redirect_uri").unwrap();
    assert!(redirect.starts_with("http://127.0.0.1:"), "{redirect}");
    // The browser's last step: the provider's redirect, followed to the
    // doctor's loopback listener.
    let back = sign_in(&url, &redirect).await;
    let page = reqwest::get(back.as_str()).await.unwrap();
    assert_eq!(page.status(), 200);
    let (code, v) = run.finish().await;
    ok(code, &v, "interactive authorization_code", &idp);
    let c = codes(&v);
    assert!(c.contains(&"jwt-signature-verified".to_owned()), "{c:?}");
    // The code and the tokens are masked in the transcript.
    let text = v["transcript"].to_string();
    let sent_code = query(&back, "code").unwrap();
    assert!(!text.contains(&sent_code), "the code leaked");
    assert!(text.contains("code=%C2%AB"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn authorization_code_with_a_code_refresh_and_rotation_against_oidc_provider() {
    if !preflight("authorization_code_with_a_code_refresh_and_rotation_against_oidc_provider") {
        return;
    }
    let idp = OidcProvider::start().await;
    let issuer = idp.issuer();

    // A code the test got itself, redeemed by the doctor.
    let code = native_code(&issuer).await;
    let (exit, v) = doctor(
        &[
            "doctor",
            "token",
            "--issuer",
            &issuer,
            "--client-id",
            "doctor-native",
            "--auth",
            "none",
            "--grant",
            "authorization_code",
            "--code-env",
            "GW_CODE",
            "--redirect-uri",
            NATIVE_REDIRECT,
            "--code-verifier-env",
            "GW_VERIFIER",
            "--scope",
            "openid",
        ],
        &[("GW_CODE", &code), ("GW_VERIFIER", VERIFIER)],
    )
    .await;
    ok(exit, &v, "authorization_code --code", &idp);
    assert!(
        codes(&v).contains(&"jwt-signature-verified".to_owned()),
        "{v:#}"
    );
    assert!(!v.to_string().contains(&code), "the code leaked");

    // A refresh token from a code exchange of the test's own; the doctor
    // redeems it and reports the rotation (oidc-provider rotates a public
    // client's refresh tokens).
    let code = native_code(&issuer).await;
    let tokens: Value = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", NATIVE_REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", "doctor-native"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh = tokens["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no refresh token: {tokens:#}"))
        .to_owned();
    let (exit, v) = doctor(
        &[
            "doctor",
            "token",
            "--issuer",
            &issuer,
            "--client-id",
            "doctor-native",
            "--auth",
            "none",
            "--grant",
            "refresh_token",
            "--refresh-token-env",
            "GW_RT",
        ],
        &[("GW_RT", &refresh)],
    )
    .await;
    ok(exit, &v, "refresh_token", &idp);
    let rotated = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "refresh-token-rotated")
        .unwrap_or_else(|| panic!("rotation not reported: {:?}", codes(&v)));
    assert_eq!(rotated["rule"], "RT-01");
    assert!(
        !v.to_string().contains(&refresh),
        "the refresh token leaked"
    );

    // The old refresh token again: rotation means it is spent now.
    let (_, v) = doctor(
        &[
            "doctor",
            "token",
            "--issuer",
            &issuer,
            "--client-id",
            "doctor-native",
            "--auth",
            "none",
            "--grant",
            "refresh_token",
            "--refresh-token-env",
            "GW_RT",
        ],
        &[("GW_RT", &refresh)],
    )
    .await;
    assert_ne!(
        v["verdict"], "ok",
        "a spent refresh token was accepted: {v:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn device_code_against_oidc_provider() {
    if !preflight("device_code_against_oidc_provider") {
        return;
    }
    let idp = OidcProvider::start().await;
    let issuer = idp.issuer();
    let run = spawn_doctor(
        &[
            "doctor",
            "token",
            "--issuer",
            &issuer,
            "--client-id",
            "doctor-device",
            "--auth",
            "none",
            "--grant",
            "device_code",
            "--scope",
            "openid",
        ],
        &[],
    );
    let complete = run
        .wait_for(|l| l.strip_prefix("Complete URI: ").map(str::to_owned))
        .await;
    // The user, on another device: the verification page, sign-in, consent.
    match Browser::new()
        .walk(
            &complete,
            "http://never.invalid/",
            &[("login", "alice"), ("password", "any")],
        )
        .await
    {
        Landing::Page(p) => assert!(p.contains("Sign-in Success"), "{p}"),
        Landing::Redirect(u) => panic!("unexpected redirect to {u}"),
    }
    let (code, v) = run.finish().await;
    ok(code, &v, "device_code", &idp);
    let c = codes(&v);
    assert!(c.contains(&"jwt-signature-verified".to_owned()), "{c:?}");
    assert!(
        v["transcript"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["label"] == "device authorization"),
        "{v:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn private_key_jwt_against_oidc_provider() {
    if !preflight("private_key_jwt_against_oidc_provider") {
        return;
    }
    let idp = OidcProvider::start().await;
    let issuer = idp.issuer();
    let keys: Value = reqwest::get(format!("{issuer}/_test/client-keys"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("gatewise-pkjwt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rsa_pem = dir.join("rsa.pem");
    std::fs::write(&rsa_pem, keys["rsa"]["pem"].as_str().unwrap()).unwrap();
    let ec_jwk = dir.join("ec.jwk.json");
    std::fs::write(&ec_jwk, keys["ec"]["jwk"].to_string()).unwrap();
    let rsa_kid = keys["rsa"]["kid"].as_str().unwrap();

    // RSA from PKCS#8 PEM (kid given: the provider picks the key by it),
    // EC P-256 from a private JWK (kid and alg from the JWK).
    for (file, extra) in [
        (rsa_pem.to_str().unwrap(), vec!["--client-key-id", rsa_kid]),
        (ec_jwk.to_str().unwrap(), vec![]),
    ] {
        let mut args = vec![
            "doctor",
            "token",
            "--issuer",
            &issuer,
            "--client-id",
            "doctor-pkjwt",
            "--auth",
            "private_key_jwt",
            "--client-key-file",
            file,
            "--scope",
            "orders.read",
            "--resource",
            API,
        ];
        args.extend(extra);
        let (code, v) = doctor(&args, &[]).await;
        ok(code, &v, file, &idp);
        assert!(
            codes(&v).contains(&"jwt-signature-verified".to_owned()),
            "{v:#}"
        );
        // The assertion is masked like a secret.
        let token = v["transcript"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["label"] == "token")
            .unwrap();
        let body = token["hops"][0]["request"]["body"]["text"]
            .as_str()
            .unwrap();
        assert!(body.contains("client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"), "{body}");
        assert!(body.contains("client_assertion=%C2%AB"), "{body}");
        assert!(!body.contains("eyJ"), "{body}");
    }

    // The EC key with the RSA key's kid: refused, and the doctor says so.
    let (_, v) = doctor(
        &[
            "doctor",
            "token",
            "--issuer",
            &issuer,
            "--client-id",
            "doctor-pkjwt",
            "--auth",
            "private_key_jwt",
            "--client-key-file",
            ec_jwk.to_str().unwrap(),
            "--client-key-id",
            rsa_kid,
            "--client-assertion-alg",
            "ES256",
            "--scope",
            "orders.read",
            "--resource",
            API,
        ],
        &[],
    )
    .await;
    assert_ne!(v["verdict"], "ok", "{v:#}");
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["title"].as_str().unwrap().contains("invalid_client")),
        "{v:#}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
