//! The upstream connection pool on 127.0.0.1: connections are reused, a
//! connection the upstream closed is not, a request lost on a kept-alive
//! connection is sent again only when that is safe, and the idle limit
//! holds. The upstreams here speak HTTP/1.1 by hand and count the
//! connections they accept and the requests they read.
//!
//! The tests run on Tokio's current-thread runtime (`#[tokio::test]`): a
//! connection's driver finishes its turn before the response body is read,
//! so a connection is back in the pool before the next request.

use gatewise_config::model::*;
use gatewise_gateway::FixedClock;
use gatewise_gateway::body;
use gatewise_gateway::pool::{Mode, SendError};
use gatewise_gateway::server::Running;
use gatewise_gateway::upstream::Pool;
use http_body_util::BodyExt as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// What the test upstream does with each connection.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Answers every request, keeps the connection open.
    KeepAlive,
    /// Answers one request (without `Connection: close`), then closes.
    CloseAfterOne,
    /// Answers the first request; reads the second and closes unanswered
    /// (as when an idle timeout and a new request cross).
    HangUpOnSecond,
}

#[derive(Default)]
struct Seen {
    accepted: AtomicUsize,
    /// `METHOD /path` of every request read, in order.
    requests: Mutex<Vec<String>>,
}

impl Seen {
    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

async fn upstream(behaviour: Behaviour) -> (SocketAddr, Arc<Seen>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let counter = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            counter.accepted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(s, behaviour, Arc::clone(&counter)));
        }
    });
    (addr, seen)
}

/// One request's head and body; `None` when the peer closed first.
async fn read_request(s: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).await.ok()? == 0 {
            return None;
        }
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.ok()?;
    let line = head.lines().next().unwrap_or_default();
    Some(line.rsplit_once(' ').map_or(line, |(l, _)| l).to_owned())
}

async fn serve(mut s: TcpStream, behaviour: Behaviour, seen: Arc<Seen>) {
    let mut n = 0;
    while let Some(req) = read_request(&mut s).await {
        seen.requests.lock().unwrap().push(req.clone());
        n += 1;
        if matches!(behaviour, Behaviour::HangUpOnSecond) && n == 2 {
            return;
        }
        // A HEAD response has no body (RFC 9110 §9.3.2).
        let answer: &[u8] = if req.starts_with("HEAD ") {
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"
        } else {
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
        };
        let ok = s.write_all(answer).await;
        if ok.is_err() || matches!(behaviour, Behaviour::CloseAfterOne) {
            return;
        }
    }
}

async fn gateway(target: SocketAddr) -> Running {
    let up = Upstream {
        connect_timeout: Duration::from_secs(2),
        first_byte_timeout: Duration::from_secs(5),
        total_timeout: Duration::from_secs(10),
        // The pool's own resend after a lost kept-alive connection is not a
        // retry of the target: it happens with retries off.
        retries: 0,
        ..Upstream::new("up", vec![format!("http://{target}")])
    };
    let config = DynamicConfig {
        upstreams: vec![up],
        routes: vec![Route::new("all", PathMatch::Prefix("/".into()), "up")],
        max_body_bytes: 1 << 20,
        ..DynamicConfig::default()
    };
    Running::local(config, Arc::new(FixedClock(0)))
        .await
        .unwrap()
}

async fn call(http: &reqwest::Client, gw: SocketAddr, method: &str, path: &str) -> u16 {
    let req = match method {
        "POST" => http.post(format!("http://{gw}{path}")).body("payload"),
        _ => http.get(format!("http://{gw}{path}")),
    };
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let _ = resp.bytes().await.unwrap();
    status
}

#[tokio::test]
async fn connections_are_reused() {
    let (addr, seen) = upstream(Behaviour::KeepAlive).await;
    let gw = gateway(addr).await;
    let http = reqwest::Client::new();
    for i in 0..20 {
        assert_eq!(call(&http, gw.addr, "GET", &format!("/r{i}")).await, 200);
    }
    // A POST with a body and a HEAD (no body at all) reuse it too.
    assert_eq!(call(&http, gw.addr, "POST", "/p").await, 200);
    let head = http
        .head(format!("http://{}/h", gw.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    // Header maps are reused from one exchange to the next (an answer's
    // head is read into the last request's map, a request's into the last
    // answer's): nothing of one may show in another.
    let last = http
        .get(format!("http://{}/last", gw.addr))
        .header("x-request-only", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(last.status(), 200);
    let names: Vec<&str> = last.headers().keys().map(|k| k.as_str()).collect();
    assert!(
        names
            .iter()
            .all(|n| ["content-length", "x-request-id", "date"].contains(n)),
        "{names:?}"
    );
    assert_eq!(seen.requests().len(), 23);
    assert_eq!(
        seen.accepted(),
        1,
        "every request should share one connection"
    );
}

#[tokio::test]
async fn a_connection_the_upstream_closed_is_not_reused() {
    let (addr, seen) = upstream(Behaviour::CloseAfterOne).await;
    let gw = gateway(addr).await;
    let http = reqwest::Client::new();
    for (i, method) in ["GET", "POST", "GET", "POST", "GET"].iter().enumerate() {
        assert_eq!(
            call(&http, gw.addr, method, &format!("/r{i}")).await,
            200,
            "{method} /r{i}"
        );
    }
    // Each request on a new connection, each read exactly once.
    assert_eq!(seen.accepted(), 5);
    assert_eq!(
        seen.requests(),
        ["GET /r0", "POST /r1", "GET /r2", "POST /r3", "GET /r4"]
    );
}

#[tokio::test]
async fn a_get_lost_on_a_kept_alive_connection_is_sent_again() {
    let (addr, seen) = upstream(Behaviour::HangUpOnSecond).await;
    let gw = gateway(addr).await;
    let http = reqwest::Client::new();
    assert_eq!(call(&http, gw.addr, "GET", "/one").await, 200);
    // Goes out on the kept-alive connection, which closes unanswered: sent
    // again on a new connection (idempotent, no body: RFC 9112 §9.3.1).
    assert_eq!(call(&http, gw.addr, "GET", "/two").await, 200);
    assert_eq!(seen.accepted(), 2);
    assert_eq!(seen.requests(), ["GET /one", "GET /two", "GET /two"]);
}

#[tokio::test]
async fn a_post_lost_on_a_kept_alive_connection_is_not_sent_again() {
    let (addr, seen) = upstream(Behaviour::HangUpOnSecond).await;
    let gw = gateway(addr).await;
    let http = reqwest::Client::new();
    assert_eq!(call(&http, gw.addr, "POST", "/one").await, 200);
    // The upstream may have acted on it: not repeated, 502.
    assert_eq!(call(&http, gw.addr, "POST", "/two").await, 502);
    assert_eq!(seen.requests(), ["POST /one", "POST /two"]);
    // The broken connection is gone; the next request gets a new one.
    assert_eq!(call(&http, gw.addr, "POST", "/three").await, 200);
    assert_eq!(seen.accepted(), 2);
    assert_eq!(seen.requests(), ["POST /one", "POST /two", "POST /three"]);
}

fn get(path: &str) -> http::Request<body::Body> {
    let mut req = http::Request::new(body::empty());
    *req.uri_mut() = path.parse().unwrap();
    req
}

#[tokio::test]
async fn the_idle_limit_holds() {
    let (addr, seen) = upstream(Behaviour::KeepAlive).await;
    let pool = Pool::with_limits(
        Upstream::new("up", vec![format!("http://{addr}")]),
        2,
        Duration::from_secs(3600),
    )
    .unwrap();
    let target = &pool.targets[0];
    // Five responses held unread: five connections busy at once.
    let mut held = Vec::new();
    for i in 0..5 {
        let resp = target
            .send(get(&format!("/{i}")), Mode::Pooled)
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        held.push(resp);
    }
    assert_eq!(seen.accepted(), 5);
    assert_eq!(target.idle_connections(), 0);
    // Read to the end, each goes back; only two are kept.
    for resp in held {
        assert_eq!(
            &resp.into_body().collect().await.unwrap().to_bytes()[..],
            b"ok"
        );
    }
    assert_eq!(target.idle_connections(), 2);
    // The two kept ones serve the next two requests; a third needs a new one.
    let a = target.send(get("/a"), Mode::Pooled).await.unwrap();
    let b = target.send(get("/b"), Mode::Pooled).await.unwrap();
    assert_eq!(seen.accepted(), 5);
    assert_eq!(target.idle_connections(), 0);
    let c = target.send(get("/c"), Mode::Pooled).await.unwrap();
    assert_eq!(seen.accepted(), 6);
    drop((a, b, c));
    // Dropped unread, they are closed rather than pooled.
    assert_eq!(target.idle_connections(), 0);
}

#[tokio::test]
async fn connect_failures_are_told_apart_from_request_failures() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let pool = Pool::new(Upstream::new("dead", vec![format!("http://{dead}")])).unwrap();
    let err = pool.targets[0]
        .send(get("/"), Mode::Pooled)
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err}");

    let (addr, _) = upstream(Behaviour::HangUpOnSecond).await;
    let pool = Pool::new(Upstream::new("up", vec![format!("http://{addr}")])).unwrap();
    let target = &pool.targets[0];
    let resp = target.send(get("/one"), Mode::Pooled).await.unwrap();
    let _ = resp.into_body().collect().await.unwrap();
    let err = target.send(get("/two"), Mode::Pooled).await.unwrap_err();
    assert!(matches!(err, SendError::Stale(_)), "{err}");
    assert!(!err.is_connect());
}
