//! The live doctor against a misbehaving token endpoint on 127.0.0.1: each
//! failure mode of `oauth-rules.md` §2 that a live exchange can show, and
//! the rule the probe + core name for it. Plus refused connections, a DNS
//! failure (`.invalid` never resolves), redirects and proxies.
//!
//! The server is raw TCP rather than hyper's: the misbehaviours (a
//! Content-Length larger than the body, a chunked body with no last chunk)
//! are exactly what a correct HTTP library refuses to produce.

use gatewise_core::clock::FixedClock;
use gatewise_core::{Report, Verdict};
use gatewise_probe::doctor::{self, Quiet, TokenEndpoint};
use gatewise_probe::oauth::{ClientAuth, Grant, TokenParams};
use gatewise_probe::tls::Trust;
use gatewise_probe::{Options, ProxySettings, Request, Transcript, fetch};
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SECRET: &str = "s3cr3t+/=sUp3r";
mod common;

use common::read_request;

const NOW: u64 = 1_767_225_600;

fn response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\n").into_bytes();
    for (n, v) in headers {
        out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

async fn handle(mut s: TcpStream) {
    let Some((_, path)) = read_request(&mut s).await else {
        return;
    };
    let json = [("Content-Type", "application/json")];
    let bytes = match path.as_str() {
        "/html-502" => response(
            "502 Bad Gateway",
            &[("Content-Type", "text/html")],
            b"<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>",
        ),
        "/truncated" => {
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"access_token\":\"eyJhbGciOiJSUzI1NiJ9.abc\",\"token_type\":\"Bea".to_vec()
        }
        "/expires-string" => response(
            "200 OK",
            &[("Content-Type", "application/json"), ("Cache-Control", "no-store")],
            br#"{"access_token":"opaque-token-value-1234567890","token_type":"Bearer","expires_in":"3599"}"#,
        ),
        "/form" => response(
            "200 OK",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            b"access_token=gho_16C7e42F292c6912E7710c838347Ae178B4a&scope=repo%2Cgist&token_type=bearer",
        ),
        "/redirect" => response(
            "302 Found",
            &[("Location", "/login?rd=%2Ftoken"), ("Content-Type", "text/html")],
            b"<a href=\"/login\">Found</a>",
        ),
        "/login" => response(
            "200 OK",
            &[("Content-Type", "text/html; charset=utf-8")],
            b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><form></form></body></html>",
        ),
        "/loop" => response("302 Found", &[("Location", "/loop")], b""),
        "/gzip" => response(
            "200 OK",
            &json,
            &gzip(br#"{"access_token":"opaque-token-value-1234567890","token_type":"Bearer","expires_in":3599}"#),
        ),
        "/basic-401" => response(
            "401 Unauthorized",
            &json,
            br#"{"error":"invalid_client","error_description":"client authentication failed"}"#,
        ),
        "/error-200" => response(
            "200 OK",
            &json,
            br#"{"error":"invalid_grant","error_description":"bad credentials"}"#,
        ),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            response("200 OK", &json, b"{}")
        }
        "/never-ends" => {
            let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"access_token\":\r\n";
            let _ = s.write_all(head).await;
            // ... and nothing more, ever (until the test ends).
            tokio::time::sleep(Duration::from_secs(60)).await;
            return;
        }
        // NOW (2026-01-01T00:00:00Z) minus two hours, and a good token response.
        "/date-behind" => response(
            "200 OK",
            &[
                ("Content-Type", "application/json"),
                ("Cache-Control", "no-store"),
                ("Date", "Wed, 31 Dec 2025 22:00:00 GMT"),
            ],
            br#"{"access_token":"opaque-token-value-1234567890","token_type":"Bearer","expires_in":3599}"#,
        ),
        // NOW plus 20 seconds: within a minute, a note only.
        "/date-close" => response(
            "200 OK",
            &[
                ("Content-Type", "application/json"),
                ("Cache-Control", "no-store"),
                ("Date", "Thu, 01 Jan 2026 00:00:20 GMT"),
            ],
            br#"{"access_token":"opaque-token-value-1234567890","token_type":"Bearer","expires_in":3599}"#,
        ),
        "/ok" => response("200 OK", &[("Content-Type", "text/plain")], b"ok"),
        _ => response("404 Not Found", &[], b""),
    };
    let _ = s.write_all(&bytes).await;
    let _ = s.shutdown().await;
}

async fn server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            tokio::spawn(handle(s));
        }
    });
    addr
}

fn opts() -> Options {
    let mut o = Options::new(Trust::new(false, None).unwrap());
    o.timeout = Duration::from_millis(700);
    o
}

fn params() -> TokenParams {
    TokenParams {
        grant: Grant::ClientCredentials,
        client_id: "svc".into(),
        client_secret: Some(SECRET.into()),
        auth: ClientAuth::Basic,
        scope: Some("orders.read".into()),
        resources: vec![],
        audience: None,
    }
}

async fn token(addr: SocketAddr, path: &str, opts: &Options) -> (Report, Vec<Transcript>) {
    let url = url::Url::parse(&format!("http://{addr}{path}")).unwrap();
    let live = doctor::token(
        &TokenEndpoint::Url(url),
        &params(),
        opts,
        &FixedClock(NOW),
        &Quiet,
    )
    .await
    .unwrap();
    (live.report(path), live.transcripts)
}

fn rules(r: &Report) -> Vec<String> {
    r.findings
        .iter()
        .map(|f| format!("{} {}", f.rule, f.code))
        .collect()
}

/// The masked transcript never shows the secret, and its saved capture,
/// read back by the offline doctor, still shows `rule`.
fn saved_capture_keeps(t: &Transcript, rule: &str) {
    let masked = t.masked();
    let json = serde_json::to_string(&masked).unwrap();
    assert!(!json.contains(SECRET), "secret in transcript JSON");
    let basic = gatewise_probe::oauth::basic_authorization("svc", SECRET);
    assert!(
        !json.contains(&basic[6..]),
        "Basic credentials in transcript JSON"
    );
    let text = masked.capture_text();
    assert!(!String::from_utf8_lossy(&text).contains(SECRET));
    let cap = gatewise_core::capture::parse(&text);
    let ctx = gatewise_core::diagnose::Context::new(gatewise_core::diagnose::Expect::Token);
    let f = gatewise_core::diagnose::response(&cap, &ctx);
    assert!(
        !f.iter().any(|x| x.rule == "CA-01"),
        "masking broke the Basic credentials: {:?}",
        f.iter().map(|x| x.code).collect::<Vec<_>>()
    );
    assert!(
        f.iter().any(|x| x.rule == rule),
        "saved capture lost {rule}: {:?}\n{}",
        f.iter().map(|x| x.code).collect::<Vec<_>>(),
        String::from_utf8_lossy(&text)
    );
}

#[tokio::test]
async fn html_502_is_an_html_error_page() {
    let addr = server().await;
    let (r, t) = token(addr, "/html-502", &opts()).await;
    assert!(r.has_rule("ER-04"), "{:?}", rules(&r));
    assert_eq!(r.verdict, Verdict::Error);
    saved_capture_keeps(&t[0], "ER-04");
}

#[tokio::test]
async fn json_cut_short_is_truncated() {
    let addr = server().await;
    let (r, t) = token(addr, "/truncated", &opts()).await;
    assert!(r.has_code("body-truncated"), "{:?}", rules(&r));
    let resp = t[0].response().unwrap();
    assert!(!resp.complete && resp.body_error.is_some());
    saved_capture_keeps(&t[0], "HT-03");
}

#[tokio::test]
async fn expires_in_as_string() {
    let addr = server().await;
    let (r, t) = token(addr, "/expires-string", &opts()).await;
    assert!(r.has_code("token-expires-in-string"), "{:?}", rules(&r));
    assert!(r.has_rule("TR-06"));
    // The request was in the capture: the core judged client authentication too.
    assert!(
        !r.has_rule("CA-01"),
        "Basic credentials are form-encoded first"
    );
    saved_capture_keeps(&t[0], "TR-06");
}

#[tokio::test]
async fn form_encoded_body() {
    let addr = server().await;
    let (r, t) = token(addr, "/form", &opts()).await;
    assert!(r.has_rule("TR-02"), "{:?}", rules(&r));
    let json = serde_json::to_string(&t[0].masked()).unwrap();
    assert!(
        !json.contains("gho_16C7e42F"),
        "access token in masked JSON"
    );
    saved_capture_keeps(&t[0], "TR-02");
}

#[tokio::test]
async fn redirect_to_a_login_page() {
    let addr = server().await;
    let (r, t) = token(addr, "/redirect", &opts()).await;
    assert!(r.has_code("token-redirect"), "{:?}", rules(&r));
    assert!(r.has_code("redirects-followed"), "{:?}", rules(&r));
    let hops = &t[0].hops;
    assert_eq!(hops.len(), 2);
    assert_eq!(hops[0].response.as_ref().unwrap().status, 302);
    // A 302 after a POST is followed with a GET, without the body.
    assert_eq!(hops[1].request.method, "GET");
    assert!(hops[1].request.url.ends_with("/login?rd=%2Ftoken"));
    saved_capture_keeps(&t[0], "TR-01");
}

#[tokio::test]
async fn redirect_loop_stops_at_five() {
    let addr = server().await;
    let (r, t) = token(addr, "/loop", &opts()).await;
    assert!(r.has_code("too-many-redirects"), "{:?}", rules(&r));
    assert_eq!(t[0].hops.len(), 6);
}

#[tokio::test]
async fn gzip_without_content_encoding() {
    let addr = server().await;
    let (r, t) = token(addr, "/gzip", &opts()).await;
    assert!(r.has_code("gzip-unlabelled"), "{:?}", rules(&r));
    saved_capture_keeps(&t[0], "HT-02");
}

#[tokio::test]
async fn invalid_client_without_challenge_to_basic() {
    let addr = server().await;
    let (r, t) = token(addr, "/basic-401", &opts()).await;
    assert!(r.has_code("error-401-without-challenge"), "{:?}", rules(&r));
    saved_capture_keeps(&t[0], "ER-01");
}

#[tokio::test]
async fn error_in_a_200() {
    let addr = server().await;
    let (r, t) = token(addr, "/error-200", &opts()).await;
    assert!(r.has_code("token-error-in-success"), "{:?}", rules(&r));
    saved_capture_keeps(&t[0], "TR-11");
}

#[tokio::test]
async fn slow_response_times_out() {
    let addr = server().await;
    let started = tokio::time::Instant::now();
    let (r, t) = token(addr, "/slow", &opts()).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(r.has_code("response-timeout"), "{:?}", rules(&r));
    assert_eq!(r.verdict, Verdict::Unreachable);
    assert_eq!(r.verdict.exit_code(), 3);
    assert!(t[0].hops[0].timings.connect_ms.is_some());
    assert!(t[0].hops[0].timings.first_byte_ms.is_none());
}

#[tokio::test]
async fn body_that_never_ends() {
    let addr = server().await;
    let (r, t) = token(addr, "/never-ends", &opts()).await;
    assert!(r.has_code("body-timeout"), "{:?}", rules(&r));
    assert!(r.has_code("chunked-unterminated"), "{:?}", rules(&r));
    assert_eq!(r.verdict, Verdict::Error);
    let resp = t[0].response().unwrap();
    assert_eq!(resp.body, b"{\"access_token\":");
    assert!(!resp.complete);
}

#[tokio::test]
async fn connection_refused_is_unreachable() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let (r, t) = token(addr, "/token", &opts()).await;
    assert!(r.has_code("connect-refused"), "{:?}", rules(&r));
    assert_eq!(r.verdict, Verdict::Unreachable);
    assert!(t[0].hops[0].response.is_none());
    // The request that could not be sent is still in the transcript (masked).
    let json = serde_json::to_value(t[0].masked()).unwrap();
    assert_eq!(json["failure"]["rule"], "NET-02");
    assert!(!json.to_string().contains(SECRET));
}

/// A listener on 127.0.0.1 whose accept queue is full: listen backlog 0,
/// and connections that are never accepted until one more connect gets no
/// answer. Linux then drops further SYNs (the client retransmits them), so
/// a connect to it times out, as behind a firewall that drops packets.
/// Returns the address, and what must stay alive while it is used.
async fn full_backlog() -> (SocketAddr, TcpListener, Vec<TcpStream>) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..64 {
        match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => held.push(s),
            Ok(Err(e)) => panic!("filling the backlog: {e}"),
            // No SYN-ACK: the queue is full.
            Err(_) => return (addr, listener, held),
        }
    }
    panic!("the accept queue never filled ({} connections)", held.len());
}

/// NET-03 (RFC 9293 §3.5): the TCP connection is not established within
/// `--timeout`. Told apart from a refused connection (NET-02), and the
/// verdict is `unreachable`.
#[tokio::test]
async fn connect_timeout_is_unreachable() {
    let (addr, _listener, _held) = full_backlog().await;
    let mut o = opts();
    o.timeout = Duration::from_millis(300);
    let (r, t) = token(addr, "/token", &o).await;
    assert!(r.has_code("connect-timeout"), "{:?}", rules(&r));
    assert!(!r.has_code("connect-refused"), "{:?}", rules(&r));
    assert_eq!(r.verdict, Verdict::Unreachable);
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "connect-timeout")
        .unwrap();
    assert_eq!(f.rule, "NET-03");
    assert!(f.evidence.contains(&addr.to_string()), "{}", f.evidence);
    assert!(
        f.evidence.contains("timed out after 0.3 s"),
        "{}",
        f.evidence
    );
    // How far it got: resolved, never connected.
    let hop = &t[0].hops[0];
    assert!(hop.response.is_none() && hop.remote.is_none());
    assert!(hop.timings.dns_ms.is_some() && hop.timings.connect_ms.is_some());
    assert!(hop.timings.first_byte_ms.is_none());
    let json = serde_json::to_value(t[0].masked()).unwrap();
    assert_eq!(json["failure"]["rule"], "NET-03");
    assert_eq!(json["failure"]["unreachable"], true);
}

/// CK-02 (RFC 9110 §6.6.1): the server's `Date` against the local clock,
/// the skew in seconds in the evidence. Two hours behind is a warning
/// (clients with a small leeway reject its tokens); 20 s is a note.
#[tokio::test]
async fn clock_skew_from_the_date_header() {
    let addr = server().await;
    let (r, _) = token(addr, "/date-behind", &opts()).await;
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "clock-skew-date-large")
        .unwrap_or_else(|| panic!("{:?}", rules(&r)));
    assert_eq!(
        (f.rule, f.severity),
        ("CK-02", gatewise_core::Severity::Warn)
    );
    assert!(f.evidence.contains("skew -7200 s"), "{}", f.evidence);
    assert!(
        f.evidence.contains("Date: Wed, 31 Dec 2025 22:00:00 GMT"),
        "{}",
        f.evidence
    );
    assert!(
        f.title.contains("behind the local clock") && f.title.contains("2 h"),
        "{}",
        f.title
    );
    // The response itself is fine: the skew is the only warning.
    assert_eq!(r.verdict, Verdict::Warn, "{:?}", rules(&r));

    let (r, _) = token(addr, "/date-close", &opts()).await;
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "clock-skew-date")
        .unwrap_or_else(|| panic!("{:?}", rules(&r)));
    assert_eq!(f.severity, gatewise_core::Severity::Info);
    assert!(f.evidence.contains("skew +20 s"), "{}", f.evidence);
    assert!(!r.has_code("clock-skew-date-large"));
}

#[tokio::test]
async fn dns_failure_is_unreachable() {
    let url = url::Url::parse("http://no-such-host.invalid/token").unwrap();
    let live = doctor::token(
        &TokenEndpoint::Url(url),
        &params(),
        &opts(),
        &FixedClock(NOW),
        &Quiet,
    )
    .await
    .unwrap();
    let r = live.report("dns");
    assert!(r.has_code("dns-failed"), "{:?}", rules(&r));
    assert_eq!(r.verdict, Verdict::Unreachable);
}

/// A forward proxy on 127.0.0.1: CONNECT tunnels, absolute-form requests
/// piped as they are, and a 407 for a request without credentials when
/// `require_auth` is set. Counts what it served.
async fn proxy(require_auth: bool) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let served = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&served);
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = l.accept().await else {
                return;
            };
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut b).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(b[0]);
                }
                let text = String::from_utf8_lossy(&head).to_string();
                if require_auth
                    && !text
                        .to_ascii_lowercase()
                        .contains("proxy-authorization: basic")
                {
                    let _ = client
                        .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 0\r\n\r\n")
                        .await;
                    return;
                }
                count.fetch_add(1, Ordering::SeqCst);
                let mut parts = text.split_whitespace();
                let method = parts.next().unwrap_or("").to_string();
                let target = parts.next().unwrap_or("").to_string();
                let authority = if method == "CONNECT" {
                    target
                } else {
                    let rest = target.strip_prefix("http://").unwrap_or(&target);
                    rest.split('/').next().unwrap_or("").to_string()
                };
                let Ok(mut upstream) = TcpStream::connect(&authority).await else {
                    let _ = client
                        .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                        .await;
                    return;
                };
                if method == "CONNECT" {
                    let _ = client
                        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .await;
                } else {
                    let _ = upstream.write_all(&head).await;
                }
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (addr, served)
}

#[tokio::test]
async fn http_proxy_is_used_and_reported() {
    let target = server().await;
    let (p, served) = proxy(false).await;
    let mut o = opts();
    o.proxy = ProxySettings {
        https: None,
        http: Some(format!("http://{p}")),
        no_proxy: Some("example.invalid".into()),
    };
    let (r, t) = token(target, "/expires-string", &o).await;
    assert_eq!(served.load(Ordering::SeqCst), 1);
    assert!(r.has_code("proxy-used"), "{:?}", rules(&r));
    assert!(r.has_code("token-expires-in-string"), "{:?}", rules(&r));
    // Absolute form on the wire, the proxy named in the transcript.
    assert!(t[0].hops[0].request.target.starts_with("http://127.0.0.1:"));
    assert_eq!(t[0].proxy.as_ref().unwrap().proxy, format!("http://{p}"));

    // NO_PROXY excludes the target: direct, no proxy finding.
    o.proxy.no_proxy = Some("127.0.0.1".into());
    let (r, _) = token(target, "/expires-string", &o).await;
    assert_eq!(served.load(Ordering::SeqCst), 1);
    assert!(!r.has_code("proxy-used"));
}

#[tokio::test]
async fn proxy_demanding_credentials_is_named() {
    let (p, _) = proxy(true).await;
    let mut o = opts();
    o.proxy = ProxySettings {
        https: Some(format!("http://{p}")),
        http: None,
        no_proxy: None,
    };
    let url = url::Url::parse("https://as.example.test/token").unwrap();
    let t = fetch("token", Request::get(url), &o).await.unwrap();
    let f = t.transport_findings();
    let failure = f.iter().find(|x| x.code == "proxy-connect-failed").unwrap();
    assert!(failure.title.contains("407"), "{}", failure.title);
    assert!(failure.cause.contains("credentials"));
    assert!(t.unreachable());
    assert!(t.hops[0].timings.tunnel_ms.is_some());
}
