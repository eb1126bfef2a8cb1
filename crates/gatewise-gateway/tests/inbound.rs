//! HTTP/1.1 connections from clients as `inbound` serves them, over raw
//! TCP on 127.0.0.1: pipelining, keep-alive, the hand-over to hyper in the
//! middle of a connection, response framing, and shutdown.

use gatewise_config::model::*;
use gatewise_gateway::FixedClock;
use gatewise_gateway::server::Running;
use gatewise_test_support::servers;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const NOW: u64 = 1_767_225_600;

async fn gateway_to(upstream: SocketAddr) -> Running {
    let up = Upstream {
        first_byte_timeout: Duration::from_secs(3),
        ..Upstream::new("up", vec![format!("http://{upstream}")])
    };
    Running::local(
        DynamicConfig {
            issuers: vec![],
            upstreams: vec![up],
            routes: vec![Route::new("all", PathMatch::Prefix("/".into()), "up")],
            introspectors: vec![],
            max_body_bytes: 1024,
        },
        Arc::new(FixedClock(NOW)),
    )
    .await
    .unwrap()
}

/// Reads more of the answer into `buf`.
async fn more(s: &mut TcpStream, buf: &mut Vec<u8>, deadline: tokio::time::Instant) {
    let mut chunk = [0u8; 4096];
    let n = tokio::time::timeout_at(deadline, s.read(&mut chunk))
        .await
        .expect("an answer in time")
        .unwrap();
    assert!(n > 0, "the connection closed inside an answer");
    buf.extend_from_slice(&chunk[..n]);
}

/// One response read off a connection: status code, head (lower-cased),
/// and body (de-chunked).
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// Reads one response from `s`; `buf` keeps what was read past it.
async fn answer(s: &mut TcpStream, buf: &mut Vec<u8>, head_request: bool) -> Answer {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        more(s, buf, deadline).await;
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    buf.drain(..end);
    let status = head[9..12].parse().unwrap();
    let field = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
    };
    let mut body = Vec::new();
    if head_request || status == 204 || status == 304 {
        // No body.
    } else if let Some(n) = field("content-length") {
        let n: usize = n.trim().parse().unwrap();
        while buf.len() < n {
            more(s, buf, deadline).await;
        }
        body.extend(buf.drain(..n));
    } else {
        assert_eq!(
            field("transfer-encoding").as_deref(),
            Some("chunked"),
            "{head}"
        );
        loop {
            let line_end = loop {
                if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                more(s, buf, deadline).await;
            };
            let size =
                usize::from_str_radix(std::str::from_utf8(&buf[..line_end]).unwrap().trim(), 16)
                    .unwrap();
            buf.drain(..line_end + 2);
            if size == 0 {
                while !buf.starts_with(b"\r\n") {
                    more(s, buf, deadline).await;
                }
                buf.drain(..2);
                break;
            }
            while buf.len() < size + 2 {
                more(s, buf, deadline).await;
            }
            body.extend(buf.drain(..size));
            buf.drain(..2);
        }
    }
    Answer { status, head, body }
}

/// What the echo upstream says it got (method, path, headers, body).
fn echoed(a: &Answer) -> Value {
    serde_json::from_slice(&a.body).unwrap()
}

fn path_of(a: &Answer) -> String {
    echoed(a)["path"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn one_connection_serves_pipelined_requests_then_hyper_takes_over_for_a_body() {
    let echo = servers::echo().await;
    let gw = gateway_to(echo).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let mut buf = Vec::new();
    // Three requests in one write: answered in order, framed, dated.
    s.write_all(
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c?q=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    )
    .await
    .unwrap();
    let a = answer(&mut s, &mut buf, false).await;
    assert_eq!((a.status, path_of(&a).as_str()), (200, "/a"), "{}", a.head);
    assert!(a.head.contains("\r\ndate: "), "{}", a.head);
    assert!(
        !a.head.contains("x-hop"),
        "hop-by-hop fields stay out: {}",
        a.head
    );
    let b = answer(&mut s, &mut buf, true).await;
    assert_eq!(b.status, 200);
    assert!(
        b.head.contains("content-length: "),
        "HEAD keeps the length: {}",
        b.head
    );
    let c = answer(&mut s, &mut buf, false).await;
    assert_eq!(path_of(&c), "/c?q=1");
    assert!(buf.is_empty(), "nothing after the third answer");
    // A small body is read here; a chunked one (below) goes to hyper.
    s.write_all(b"POST /d HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        .await
        .unwrap();
    let d = answer(&mut s, &mut buf, false).await;
    let v = echoed(&d);
    assert_eq!((d.status, v["body"].as_str()), (200, Some("hello")));
    s.write_all(b"GET /e HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let e = answer(&mut s, &mut buf, false).await;
    assert_eq!((e.status, path_of(&e).as_str()), (200, "/e"));
    // Half a head then the body-carrying rest, split across writes.
    let mut t = TcpStream::connect(gw.addr).await.unwrap();
    t.write_all(b"POST /f HTTP/1.1\r\nHo").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    t.write_all(b"st: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        .await
        .unwrap();
    let mut tbuf = Vec::new();
    let f = answer(&mut t, &mut tbuf, false).await;
    let v = echoed(&f);
    assert_eq!((f.status, v["body"].as_str()), (200, Some("abc")));
}

#[tokio::test]
async fn an_answer_of_unknown_length_streams_chunked_and_the_connection_goes_on() {
    let up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = up.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut u, _) = up.accept().await.unwrap();
        let mut b = [0u8; 4096];
        for _ in 0..2 {
            let _ = u.read(&mut b).await;
            // Close-delimited would end the connection; chunked keeps it.
            u.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n")
                .await
                .unwrap();
            for piece in ["one-", "two-", "three"] {
                u.write_all(format!("{:x}\r\n{piece}\r\n", piece.len()).as_bytes())
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            // A trailer: not passed on (as through hyper).
            u.write_all(b"0\r\nx-sum: 13\r\n\r\n").await.unwrap();
        }
    });
    let gw = gateway_to(up_addr).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let mut buf = Vec::new();
    for _ in 0..2 {
        s.write_all(b"GET /s HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let a = answer(&mut s, &mut buf, false).await;
        assert_eq!(a.status, 200);
        assert!(a.head.contains("transfer-encoding: chunked"), "{}", a.head);
        assert_eq!(a.body, b"one-two-three");
    }
}

#[tokio::test]
async fn shutdown_answers_the_request_under_way_and_closes_idle_connections() {
    let echo = servers::echo().await;
    let gw = gateway_to(echo).await;
    // An idle kept-alive connection.
    let mut idle = TcpStream::connect(gw.addr).await.unwrap();
    let mut ibuf = Vec::new();
    idle.write_all(b"GET /i HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(answer(&mut idle, &mut ibuf, false).await.status, 200);
    // A request under way when the shutdown starts.
    let mut busy = TcpStream::connect(gw.addr).await.unwrap();
    busy.write_all(b"GET /sleep/300 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopping = tokio::spawn(gw.stop());
    let mut bbuf = Vec::new();
    let a = answer(&mut busy, &mut bbuf, false).await;
    assert_eq!((a.status, path_of(&a).as_str()), (200, "/sleep/300"));
    assert!(a.head.contains("connection: close"), "{}", a.head);
    for s in [&mut busy, &mut idle] {
        let mut b = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut b))
            .await
            .expect("closed by the gateway")
            .unwrap_or(0);
        assert_eq!(n, 0, "the connection is closed after shutdown");
    }
    stopping.await.unwrap().unwrap();
}

#[tokio::test]
async fn h2c_with_prior_knowledge_is_handed_to_hyper() {
    let echo = servers::echo().await;
    let gw = gateway_to(echo).await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    for path in ["/one", "/two"] {
        let r = h2
            .get(format!("http://{}{path}", gw.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(r.version(), reqwest::Version::HTTP_2);
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["path"], path);
    }
}

#[tokio::test]
async fn a_head_in_single_bytes_and_a_pipeline_before_a_half_close_are_answered() {
    let echo = servers::echo().await;
    let gw = gateway_to(echo).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    for b in b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n" {
        s.write_all(&[*b]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut buf = Vec::new();
    assert_eq!(path_of(&answer(&mut s, &mut buf, false).await), "/slow");
    // Two requests, then the client's side closed. The first is answered:
    // while a pipelined request waits, nothing more is read, so the close
    // is not seen. Seen while the last is handled, a close gives up that
    // request (as hyper and nginx do: a client's FIN reads as leaving).
    s.write_all(b"GET /p1 HTTP/1.1\r\nHost: x\r\n\r\nGET /p2 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    s.shutdown().await.unwrap();
    assert_eq!(path_of(&answer(&mut s, &mut buf, false).await), "/p1");
    // After requests were served here, an HTTP/2 preface is not HTTP/2
    // (RFC 9113 §3.3): hyper's HTTP/1.1 refuses it.
    let mut t = TcpStream::connect(gw.addr).await.unwrap();
    let mut tbuf = Vec::new();
    t.write_all(b"GET /h1 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(path_of(&answer(&mut t, &mut tbuf, false).await), "/h1");
    t.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), t.read_to_end(&mut rest)).await;
    let rest = String::from_utf8_lossy(&rest);
    assert!(
        rest.is_empty() || rest.starts_with("HTTP/1.1 4") || rest.starts_with("HTTP/1.1 5"),
        "{rest:?}"
    );
}

#[tokio::test]
async fn a_client_leaving_a_streamed_answer_ends_the_upstream_call() {
    let up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = up.local_addr().unwrap();
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut u, _) = up.accept().await.unwrap();
        let mut b = [0u8; 4096];
        let _ = u.read(&mut b).await;
        u.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
            .await
            .unwrap();
        // An event stream with nothing more to say for a while: the
        // gateway must hang up once its client has gone.
        let gone = tokio::time::timeout(Duration::from_secs(10), u.read(&mut b)).await;
        let _ = closed_tx.send(matches!(gone, Ok(Ok(0)) | Ok(Err(_))));
    });
    let gw = gateway_to(up_addr).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("first") {
        let mut b = [0u8; 1024];
        let n = s.read(&mut b).await.unwrap();
        assert!(n > 0);
        got.extend_from_slice(&b[..n]);
    }
    drop(s);
    assert!(
        closed_rx.await.unwrap(),
        "the upstream connection was closed when the client left"
    );
}

#[tokio::test]
async fn a_request_whose_head_completes_during_shutdown_is_answered() {
    let echo = servers::echo().await;
    let gw = gateway_to(echo).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"POST /late HTTP/1.1\r\nHost: x\r\nContent-Le")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopping = tokio::spawn(gw.stop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.write_all(b"ngth: 5\r\n\r\nhello").await.unwrap();
    let mut buf = Vec::new();
    let a = answer(&mut s, &mut buf, false).await;
    let v = echoed(&a);
    assert_eq!((a.status, v["body"].as_str()), (200, Some("hello")));
    assert!(a.head.contains("connection: close"), "{}", a.head);
    stopping.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_header_read_timeout() {
    let echo = servers::echo().await;
    // `Running::local` reads heads for at most 2 s.
    let gw = gateway_to(echo).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let mut buf = Vec::new();
    s.write_all(b"GET /once HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(path_of(&answer(&mut s, &mut buf, false).await), "/once");
    let mut b = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(8), s.read(&mut b))
        .await
        .expect("closed by the gateway, not left open")
        .unwrap_or(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn small_bodies_are_read_whole_and_large_ones_streamed_by_hyper() {
    let echo = servers::echo().await;
    let gw = gateway_to(echo).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let mut buf = Vec::new();
    // The body after the head, in a later write.
    s.write_all(b"PUT /late HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nab")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.write_all(b"cdef").await.unwrap();
    let a = answer(&mut s, &mut buf, false).await;
    let v = echoed(&a);
    assert_eq!((a.status, v["body"].as_str()), (200, Some("abcdef")));
    assert_eq!(v["headers"]["content-length"], "6");
    // A body and the next request in one write: each where it belongs.
    s.write_all(
        b"POST /one HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyzGET /two HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await
    .unwrap();
    let one = answer(&mut s, &mut buf, false).await;
    let v = echoed(&one);
    assert_eq!(
        (v["path"].as_str(), v["body"].as_str()),
        (Some("/one"), Some("xyz"))
    );
    let two = answer(&mut s, &mut buf, false).await;
    let v = echoed(&two);
    assert_eq!(
        (v["path"].as_str(), v["body"].as_str()),
        (Some("/two"), Some(""))
    );
    // Longer than a head may be (16 KiB here): hyper streams it, and the
    // gateway's body limit (1 KiB here) answers 413.
    let big = "a".repeat(20_000);
    s.write_all(
        format!(
            "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{big}",
            big.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let a = answer(&mut s, &mut buf, false).await;
    assert_eq!(a.status, 413, "{}", a.head);
}

#[tokio::test]
async fn a_body_has_a_wait_of_its_own_after_an_idle_spell() {
    let echo = servers::echo().await;
    // `Running::local` reads heads for at most 2 s.
    let gw = gateway_to(echo).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let mut buf = Vec::new();
    s.write_all(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(path_of(&answer(&mut s, &mut buf, false).await), "/first");
    // Idle for most of the head's wait, then a head, then its body later:
    // 2.5 s after the wait began, but 1 s after the head.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.write_all(b"POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    s.write_all(b"body").await.unwrap();
    let a = answer(&mut s, &mut buf, false).await;
    let v = echoed(&a);
    assert_eq!((a.status, v["body"].as_str()), (200, Some("body")));
}
