//! Small real HTTP/1.1 servers on 127.0.0.1 for tests: an echo upstream that
//! answers with what it received, and a document server (JWKS, discovery)
//! whose body can be replaced while it runs and that counts its hits.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// Spawns a server on 127.0.0.1 with an ephemeral port running `handler`.
pub async fn spawn<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let h = Arc::clone(&handler);
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let h = Arc::clone(&h);
                    async move { Ok::<_, std::convert::Infallible>(h(req).await) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// An upstream that answers `200` with JSON describing the request it got:
/// `{"method", "path", "headers": {name: value}, "body"}`. A path starting
/// with `/status/NNN` answers that status; `/sleep/MS` waits first.
pub async fn echo() -> SocketAddr {
    spawn(|req: Request<Incoming>| async move {
        let method = req.method().to_string();
        let path = req
            .uri()
            .path_and_query()
            .map_or("/".to_owned(), |p| p.to_string());
        let mut headers = serde_json::Map::new();
        for (n, v) in req.headers() {
            headers.insert(
                n.to_string(),
                json!(String::from_utf8_lossy(v.as_bytes())),
            );
        }
        if let Some(ms) = path.strip_prefix("/sleep/").and_then(|s| s.parse::<u64>().ok()) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let status = path
            .strip_prefix("/status/")
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(200);
        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let doc = json!({"method": method, "path": path, "headers": headers, "body": String::from_utf8_lossy(&body)});
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .header("connection", "keep-alive, x-hop")
            .header("x-hop", "must not pass")
            .body(Full::new(Bytes::from(doc.to_string())))
            .unwrap()
    })
    .await
}

/// A document server: `GET` any path returns the current document with the
/// current `Cache-Control`, or `503` while it is "down".
#[derive(Clone, Debug, Default)]
pub struct DocServer {
    state: Arc<Mutex<(String, String, bool)>>,
    hits: Arc<AtomicU64>,
}

impl DocServer {
    /// Starts serving `doc`; returns the handle and the address.
    pub async fn start(doc: String) -> (DocServer, SocketAddr) {
        let s = DocServer {
            state: Arc::new(Mutex::new((doc, "max-age=300".to_owned(), false))),
            hits: Arc::new(AtomicU64::new(0)),
        };
        let me = s.clone();
        let addr = spawn(move |_req| {
            let me = me.clone();
            async move {
                me.hits.fetch_add(1, Ordering::SeqCst);
                let (doc, cc, down) = me.state.lock().unwrap().clone();
                let b = Response::builder();
                if down {
                    b.status(503)
                        .body(Full::new(Bytes::from_static(b"down")))
                        .unwrap()
                } else {
                    b.header("content-type", "application/json")
                        .header("cache-control", cc)
                        .body(Full::new(Bytes::from(doc)))
                        .unwrap()
                }
            }
        })
        .await;
        (s, addr)
    }

    /// Replaces the document.
    pub fn set(&self, doc: String) {
        self.state.lock().unwrap().0 = doc;
    }

    /// Replaces the `Cache-Control` value.
    pub fn cache_control(&self, v: &str) {
        self.state.lock().unwrap().1 = v.to_owned();
    }

    /// Makes the server answer 503 (`true`) or recover.
    pub fn down(&self, down: bool) {
        self.state.lock().unwrap().2 = down;
    }

    /// Requests served so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }
}
