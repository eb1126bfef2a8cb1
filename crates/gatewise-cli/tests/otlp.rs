//! `[telemetry.otlp]` with the real binary: `gatewise serve` in front of an
//! echo upstream, exporting spans to a small OTLP/HTTP receiver written
//! here (hyper; the protobuf decoded with `opentelemetry-proto`'s types).
//! Everything on 127.0.0.1.

use bytes::Bytes;
use gatewise_test_support::servers;
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span, span, status};
use prost::Message as _;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";
const UNSAMPLED_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const BAD_TOKEN: &str = "not.a-jwt.S3CRET-do-not-export-1b2c";
const OTLP_SECRET: &str = "otlp-collector-secret-9f8e7d";

fn free_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// What the receiver got: each export's body and its `x-otlp-token` header.
#[derive(Default)]
struct Received {
    bodies: Vec<Bytes>,
    tokens: Vec<Option<String>>,
}

/// An OTLP/HTTP trace receiver (OTLP spec, "OTLP/HTTP"): `POST /v1/traces`
/// with `application/x-protobuf`, answered with an empty
/// `ExportTraceServiceResponse`.
async fn receiver() -> (std::net::SocketAddr, Arc<Mutex<Received>>) {
    let got = Arc::new(Mutex::new(Received::default()));
    let g = Arc::clone(&got);
    let addr = servers::spawn(move |req: hyper::Request<hyper::body::Incoming>| {
        let g = Arc::clone(&g);
        async move {
            let ok = req.method() == "POST"
                && req.uri().path() == "/v1/traces"
                && req
                    .headers()
                    .get("content-type")
                    .is_some_and(|v| v == "application/x-protobuf");
            let token = req
                .headers()
                .get("x-otlp-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = req.into_body().collect().await.unwrap().to_bytes();
            if !ok {
                return hyper::Response::builder()
                    .status(400)
                    .body(Full::new(Bytes::new()))
                    .unwrap();
            }
            let mut r = g.lock().unwrap();
            r.bodies.push(body);
            r.tokens.push(token);
            hyper::Response::builder()
                .header("content-type", "application/x-protobuf")
                .body(Full::new(Bytes::new()))
                .unwrap()
        }
    })
    .await;
    (addr, got)
}

fn config(listen: &str, admin: &str, echo: &str, jwks: &str, otlp: &str) -> String {
    format!(
        r#"[server]
listen = "{listen}"
shutdown_grace = "2s"

[admin]
listen = "{admin}"

[call_log]
enabled = false

[[issuers]]
name = "dev"
issuer = "http://{jwks}"
jwks_uri = "http://{jwks}/jwks.json"

[[upstreams]]
name = "echo"
targets = ["http://{echo}"]

[[routes]]
name = "open"
path_prefix = "/open"
upstream = "echo"

[[routes]]
name = "secure"
path_prefix = "/secure"
upstream = "echo"

[routes.jwt]
issuers = ["dev"]
audiences = ["https://api.example"]

{otlp}
"#
    )
}

fn serve(file: &std::path::Path, dir: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_gatewise"))
        .args(["serve", "--config"])
        .arg(file)
        .current_dir(dir)
        .env("GATEWISE_LOG", "info")
        .env("GATEWISE_TEST_OTLP_TOKEN", OTLP_SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// SIGTERM, then the log once the process has stopped.
async fn stop(mut child: Child) -> String {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    for _ in 0..200 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if child.try_wait().unwrap().is_none() {
        let _ = child.kill();
        panic!("the gateway did not stop on SIGTERM");
    }
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    log
}

async fn wait_until_up(http: &reqwest::Client, url: &str) {
    for _ in 0..200 {
        if http.get(url).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the gateway did not come up");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

fn str_attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attr(attrs, key) {
        Some(any_value::Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn int_attr(attrs: &[KeyValue], key: &str) -> Option<i64> {
    match attr(attrs, key) {
        Some(any_value::Value::IntValue(i)) => Some(*i),
        _ => None,
    }
}

/// Every span received so far, with its resource's `service.name`.
fn spans(got: &Mutex<Received>) -> Vec<(String, Span)> {
    let got = got.lock().unwrap();
    let mut out = Vec::new();
    for body in &got.bodies {
        let req = ExportTraceServiceRequest::decode(body.as_ref()).unwrap();
        for rs in req.resource_spans {
            let service = rs
                .resource
                .as_ref()
                .and_then(|r| str_attr(&r.attributes, "service.name"))
                .unwrap_or_default()
                .to_owned();
            for ss in rs.scope_spans {
                for s in ss.spans {
                    out.push((service.clone(), s));
                }
            }
        }
    }
    out
}

/// Polls until `pred` holds for the spans received (15 s at most: the
/// exporter sends every second).
async fn wait_for_spans(got: &Mutex<Received>, pred: impl Fn(&[(String, Span)]) -> bool) {
    for _ in 0..150 {
        if pred(&spans(got)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("spans never arrived: {:#?}", spans(got));
}

/// The traceparent the echo upstream received, split in its four parts.
fn upstream_traceparent(body: &serde_json::Value) -> Vec<String> {
    body["headers"]["traceparent"]
        .as_str()
        .unwrap_or_else(|| panic!("no traceparent upstream: {body}"))
        .split('-')
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn spans_are_exported_and_the_trace_reaches_the_upstream() {
    let echo = servers::echo().await.to_string();
    let (_jwks, jwks_addr) = servers::DocServer::start(r#"{"keys":[]}"#.into()).await;
    let (collector, got) = receiver().await;
    let listen = free_port();
    let admin = free_port();
    let dir = std::env::temp_dir().join(format!("gatewise-otlp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("gatewise.toml");
    let otlp = format!(
        "[telemetry.otlp]\nendpoint = \"http://{collector}\"\nservice_name = \"gatewise-test\"\n\
         timeout = \"2s\"\nheaders_env = {{ \"X-Otlp-Token\" = \"GATEWISE_TEST_OTLP_TOKEN\" }}\n"
    );
    std::fs::write(
        &file,
        config(&listen, &admin, &echo, &jwks_addr.to_string(), &otlp),
    )
    .unwrap();
    let child = serve(&file, &dir);
    let http = reqwest::Client::new();
    let base = format!("http://{listen}");
    wait_until_up(&http, &format!("{base}/open/up")).await;

    // 1. The client's trace, sampled: continued, with the gateway's span
    //    as the upstream's parent.
    let sent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let body: serde_json::Value = http
        .get(format!("{base}/open/orders?page=2"))
        .header("traceparent", &sent)
        .header("authorization", format!("Bearer {BAD_TOKEN}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let up = upstream_traceparent(&body);
    assert_eq!(up[0], "00");
    assert_eq!(up[1], CLIENT_TRACE, "the client's trace id goes on");
    assert_ne!(up[2], CLIENT_SPAN, "the parent is the gateway's span");
    assert_eq!(up[3], "01");
    let gateway_span = up[2].clone();

    // 2. No traceparent: the gateway starts a sampled trace.
    let body: serde_json::Value = http
        .get(format!("{base}/open/new"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let started = upstream_traceparent(&body);
    assert_eq!(started[3], "01", "sample_ratio defaults to 1");

    // 3. The client's trace, not sampled: forwarded as such, not exported.
    let body: serde_json::Value = http
        .get(format!("{base}/open/quiet"))
        .header(
            "traceparent",
            format!("00-{UNSAMPLED_TRACE}-{CLIENT_SPAN}-00"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let quiet = upstream_traceparent(&body);
    assert_eq!(
        (quiet[1].as_str(), quiet[3].as_str()),
        (UNSAMPLED_TRACE, "00")
    );

    // 4. A refusal: the gateway answers 401 itself.
    let refused = http
        .get(format!("{base}/secure/x"))
        .header("authorization", format!("Bearer {BAD_TOKEN}"))
        .header("traceparent", format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    let started_trace = started[1].clone();
    wait_for_spans(&got, |spans| {
        let servers = spans
            .iter()
            .filter(|(_, s)| s.kind == span::SpanKind::Server as i32)
            .count();
        servers >= 3
    })
    .await;
    // One more interval: anything else that was going to come has come.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let all = spans(&got);
    let find = |trace: &str, path: &str, kind: span::SpanKind| {
        all.iter()
            .map(|(_, s)| s)
            .find(|s| {
                hex(&s.trace_id) == trace
                    && s.kind == kind as i32
                    && (kind == span::SpanKind::Client
                        || str_attr(&s.attributes, "url.path") == Some(path))
            })
            .unwrap_or_else(|| panic!("no {kind:?} span for {trace} {path}: {all:#?}"))
    };

    // The continued trace: SERVER span = the gateway span sent upstream,
    // child of the client's span.
    let server = find(CLIENT_TRACE, "/open/orders", span::SpanKind::Server);
    assert_eq!(hex(&server.span_id), gateway_span);
    assert_eq!(hex(&server.parent_span_id), CLIENT_SPAN);
    assert_eq!(server.name, "GET open");
    let a = &server.attributes;
    assert_eq!(str_attr(a, "http.request.method"), Some("GET"));
    assert_eq!(str_attr(a, "url.path"), Some("/open/orders"));
    assert_eq!(str_attr(a, "url.query"), None, "keep_query is off");
    assert_eq!(int_attr(a, "http.response.status_code"), Some(200));
    assert_eq!(str_attr(a, "http.route"), Some("open"));
    assert_eq!(str_attr(a, "client.address"), Some("127.0.0.1"));
    assert_eq!(
        str_attr(a, "server.address").map(|h| h.starts_with("127.0.0.1")),
        Some(true)
    );
    assert!(server.end_time_unix_nano > server.start_time_unix_nano);
    assert_ne!(
        server.status.as_ref().map(|s| s.code),
        Some(status::StatusCode::Error as i32)
    );
    // Its upstream call: a CLIENT child inside it.
    let client = all
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.kind == span::SpanKind::Client as i32 && s.parent_span_id == server.span_id)
        .unwrap_or_else(|| panic!("no CLIENT span under {gateway_span}: {all:#?}"));
    assert_eq!(client.trace_id, server.trace_id);
    assert!(client.start_time_unix_nano >= server.start_time_unix_nano);
    assert!(client.end_time_unix_nano <= server.end_time_unix_nano);
    assert_eq!(
        str_attr(&client.attributes, "server.address"),
        Some("127.0.0.1")
    );

    // The trace the gateway started: a root span.
    let root = find(&started_trace, "/open/new", span::SpanKind::Server);
    assert!(root.parent_span_id.is_empty(), "{root:?}");
    assert_eq!(hex(&root.span_id), started[2]);

    // The refusal: an error with the reason, no upstream call.
    let denied = all
        .iter()
        .map(|(_, s)| s)
        .find(|s| str_attr(&s.attributes, "url.path") == Some("/secure/x"))
        .unwrap_or_else(|| panic!("no span for the refusal: {all:#?}"));
    assert_eq!(
        int_attr(&denied.attributes, "http.response.status_code"),
        Some(401)
    );
    let reason = str_attr(&denied.attributes, "gatewise.reason").unwrap();
    assert!(
        reason.starts_with("jwt-") || reason.starts_with("token-"),
        "{reason}"
    );
    let st = denied.status.as_ref().unwrap();
    assert_eq!(st.code, status::StatusCode::Error as i32);
    assert_eq!(st.message, reason);
    assert!(!all.iter().any(
        |(_, s)| s.kind == span::SpanKind::Client as i32 && s.parent_span_id == denied.span_id
    ));

    // Not sampled: nothing exported for it.
    assert!(
        !all.iter().any(|(_, s)| hex(&s.trace_id) == UNSAMPLED_TRACE),
        "{all:#?}"
    );
    // The resource and the collector's header.
    assert!(all.iter().all(|(svc, _)| svc == "gatewise-test"));
    {
        let r = got.lock().unwrap();
        assert!(r.tokens.iter().all(|t| t.as_deref() == Some(OTLP_SECRET)));
        // No token or secret in what was exported.
        for body in &r.bodies {
            let text = String::from_utf8_lossy(body);
            assert!(!text.contains(BAD_TOKEN), "{text}");
            assert!(!text.contains("S3CRET"), "{text}");
            assert!(!text.contains(OTLP_SECRET), "{text}");
        }
    }

    // The admin API counts what went out.
    let metrics = http
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let exported: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("gatewise_otlp_spans_exported_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no gatewise_otlp_spans_exported in:\n{metrics}"));
    assert!(exported > 0, "{metrics}");
    assert!(
        metrics.contains("gatewise_otlp_spans_failed_total 0"),
        "{metrics}"
    );
    let state: serde_json::Value = http
        .get(format!("http://{admin}/api/v1/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        state["span_export"]["exported"].as_u64() > Some(0),
        "{state}"
    );

    let log = stop(child).await;
    assert!(log.contains("exporting spans over OTLP"), "{log}");
    assert!(log.contains("OTLP span export stopped"), "{log}");
    assert!(!log.contains(OTLP_SECRET), "{log}");
    assert!(!log.contains(BAD_TOKEN), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A collector that is not there (connections refused): requests are
/// neither slowed nor failed, and the spans that could not wait are counted.
#[tokio::test]
async fn an_unreachable_collector_neither_slows_nor_fails_requests() {
    // A port nothing listens on.
    collector_down(free_port()).await;
}

/// A collector that accepts connections and never answers: the export
/// thread waits out its timeout, the requests do not.
#[tokio::test]
async fn a_hanging_collector_neither_slows_nor_fails_requests() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    collector_down(addr).await;
}

async fn collector_down(dead: String) {
    let echo = servers::echo().await.to_string();
    let (_jwks, jwks_addr) = servers::DocServer::start(r#"{"keys":[]}"#.into()).await;
    let listen = free_port();
    let admin = free_port();
    let dir = std::env::temp_dir().join(format!(
        "gatewise-otlp-down-{}-{}",
        std::process::id(),
        dead.replace(':', "-")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("gatewise.toml");
    let otlp =
        format!("[telemetry.otlp]\nendpoint = \"http://{dead}\"\ntimeout = \"5s\"\nqueue = 4\n");
    std::fs::write(
        &file,
        config(&listen, &admin, &echo, &jwks_addr.to_string(), &otlp),
    )
    .unwrap();
    let child = serve(&file, &dir);
    let http = reqwest::Client::new();
    let base = format!("http://{listen}");
    wait_until_up(&http, &format!("{base}/open/up")).await;
    let t = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..60 {
        let start = Instant::now();
        let r = http.get(format!("{base}/open/{i}")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        slowest = slowest.max(start.elapsed());
    }
    // Not a speed check: a request that waited for an export attempt
    // would take the collector's whole 5 s timeout, which no request here
    // comes near otherwise; the total guards against a hang.
    assert!(slowest < Duration::from_secs(5), "{slowest:?}");
    assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
    let log = strip_ansi(&stop(child).await);
    let counter = |name: &str| -> u64 {
        let line = log
            .lines()
            .find(|l| l.contains("OTLP span export stopped"))
            .unwrap_or_else(|| panic!("no final counters:\n{log}"));
        line.split(&format!("{name}="))
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line}"))
    };
    assert_eq!(counter("exported"), 0, "{log}");
    assert!(counter("dropped") > 0, "{log}");
    assert!(counter("failed") > 0, "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The log without its colour codes (field names are styled).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ ... final byte in @..~
            for d in chars.by_ref() {
                if ('@'..='~').contains(&d) && d != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
