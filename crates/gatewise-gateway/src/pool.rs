//! Connections to one upstream target, kept alive and reused.
//!
//! HTTP/1.1 connections are made with hyper's low-level
//! `client::conn::http1` over TCP (or rustls for `https` targets); each
//! connection's driver runs in its own task, spawned once. Idle senders wait
//! in a short LIFO list behind a mutex (no hashing, no channels): a request
//! takes the most recently used one that is ready, and the response body
//! puts it back when it ends. An `https` target that picks h2 by ALPN gets
//! one multiplexed HTTP/2 connection whose sender every request clones.
//! Upgrade requests (WebSocket and others) get a dedicated HTTP/1.1
//! connection that never returns to the pool.
//!
//! Plain `http` targets skip hyper's client for everything but upgrades:
//! their HTTP/1.1 connections are written and read by the request's own
//! task ([`crate::h1`]) and wait in a second idle list.

use crate::body::{Body, BoxError};
use crate::h1;
use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, Uri, Version, header};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::ServerName;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Idle connections kept per target at most (the oldest goes first).
pub const MAX_IDLE: usize = 256;

/// How long an idle connection is kept before it is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A failed [`Conns::send_back`]: why, and the request when it was not
/// consumed and may go again.
pub struct Failed {
    /// Why no response came.
    pub error: SendError,
    /// The request, untouched but for its origin-form URI and `Host`.
    pub request: Option<Request<Body>>,
}

impl Failed {
    fn new(error: SendError, request: Option<Box<Request<Body>>>) -> Failed {
        Failed {
            error,
            request: request.map(|r| *r),
        }
    }
}

// By hand: the request carries `Authorization`, which may not reach a log.
impl std::fmt::Debug for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Failed")
            .field("error", &self.error)
            .field("request_back", &self.request.is_some())
            .finish()
    }
}

/// Why a request got no response from the upstream.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection could be made (address, TCP, TLS, handshake, connect
    /// timeout), or a new connection closed before the request was written:
    /// nothing reached the upstream, so any request may be sent again.
    #[error("could not connect: {0}")]
    Connect(#[source] BoxError),
    /// The request was written on a kept-alive connection that closed before
    /// any response came: the upstream may have closed it while idle. An
    /// idempotent request may be sent again (RFC 9112 §9.3.1, RFC 9110
    /// §9.2.2); others may not.
    #[error("the kept-alive connection closed before answering: {0}")]
    Stale(#[source] BoxError),
    /// The request failed after it was sent (no valid response).
    #[error("{0}")]
    Request(#[source] BoxError),
}

impl SendError {
    /// Whether nothing reached the upstream (retrying is safe for any request).
    pub fn is_connect(&self) -> bool {
        matches!(self, SendError::Connect(_))
    }

    fn connect(e: impl Into<BoxError>) -> SendError {
        SendError::Connect(e.into())
    }
}

/// How a request is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// On an idle kept-alive connection when there is one, else a new one.
    Pooled,
    /// On a new connection (a retry after a stale one).
    Fresh,
    /// On a dedicated HTTP/1.1 connection that can be upgraded (after a 101
    /// its bytes belong to the upgrade) and is never pooled.
    Upgrade,
}

/// What every target of one pool shares: TLS settings and limits.
pub struct Connector {
    /// TLS offering h2 and http/1.1 by ALPN.
    tls: tokio_rustls::TlsConnector,
    /// TLS offering only http/1.1 (upgrades are HTTP/1.1 only).
    tls_h1: tokio_rustls::TlsConnector,
    connect_timeout: Duration,
    max_idle: usize,
    idle_timeout: Duration,
}

impl Connector {
    /// A connector verifying `https` targets with `tls` (its ALPN list is
    /// set here), bounding TCP connect plus TLS handshake by
    /// `connect_timeout`, and keeping at most `max_idle` connections per
    /// target, each for at most `idle_timeout`.
    pub fn new(
        tls: rustls::ClientConfig,
        connect_timeout: Duration,
        max_idle: usize,
        idle_timeout: Duration,
    ) -> Connector {
        let mut h1 = tls.clone();
        h1.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut any = tls;
        any.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Connector {
            tls: tokio_rustls::TlsConnector::from(Arc::new(any)),
            tls_h1: tokio_rustls::TlsConnector::from(Arc::new(h1)),
            connect_timeout,
            max_idle,
            idle_timeout,
        }
    }
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("connect_timeout", &self.connect_timeout)
            .field("max_idle", &self.max_idle)
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

const PROTO_UNKNOWN: u8 = 0;
const PROTO_H1: u8 = 1;
const PROTO_H2: u8 = 2;

/// An idle connection and since when it waits.
struct Idle<C> {
    conn: C,
    since: Instant,
}

/// Idle connections of one kind, the most recently used at the back,
/// behind a mutex held only to push or pop (connections are closed
/// outside it).
struct IdleList<C>(Mutex<VecDeque<Idle<C>>>);

impl<C> IdleList<C> {
    fn new() -> Self {
        IdleList(Mutex::new(VecDeque::new()))
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Idle<C>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    /// The most recently used connection that `usable` accepts; the others
    /// on the way are closed.
    fn pop(&self, usable: impl Fn(&C) -> bool) -> Option<C> {
        loop {
            let idle = self.lock().pop_back()?;
            if usable(&idle.conn) {
                return Some(idle.conn);
            }
        }
    }

    /// Keeps `conn`; past `max` connections the oldest is closed.
    fn push(&self, conn: C, max: usize) {
        let since = Instant::now();
        let evicted = {
            let mut idle = self.lock();
            let evicted = if idle.len() >= max {
                idle.pop_front()
            } else {
                None
            };
            idle.push_back(Idle { conn, since });
            evicted
        };
        drop(evicted);
    }

    /// Closes the connections idle for `timeout` or longer at `now`.
    fn expire(&self, now: Instant, timeout: Duration) {
        let expired: Vec<Idle<C>> = {
            let mut idle = self.lock();
            let n = idle
                .iter()
                .take_while(|i| now.saturating_duration_since(i.since) >= timeout)
                .count();
            idle.drain(..n).collect()
        };
        drop(expired);
    }
}

/// The connections of one target.
pub struct Conns {
    connector: Arc<Connector>,
    scheme: Scheme,
    authority: Authority,
    /// The host to resolve (IPv6 without brackets) and its port.
    host: String,
    port: u16,
    /// The TLS server name (`https` targets).
    server_name: Option<ServerName<'static>>,
    /// `Host` for HTTP/1.1 requests that have none (RFC 9112 §3.2).
    host_header: HeaderValue,
    /// Idle HTTP/1.1 connections; the most recently used at the back.
    idle: IdleList<http1::SendRequest<Body>>,
    /// Idle connections of `http` targets ([`crate::h1`]).
    inline_idle: IdleList<h1::Conn>,
    /// The shared HTTP/2 connection, once ALPN picked h2.
    h2: Mutex<Option<http2::SendRequest<Body>>>,
    /// What the target's last new connection spoke (`PROTO_*`).
    proto: AtomicU8,
    /// Whether the idle reaper runs.
    reaper: AtomicBool,
}

impl std::fmt::Debug for Conns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conns")
            .field("authority", &self.authority)
            .field("idle", &self.idle_count())
            .finish_non_exhaustive()
    }
}

impl Conns {
    /// The connections of the target at `scheme://authority` (`https`
    /// targets use TLS).
    pub fn new(
        connector: Arc<Connector>,
        scheme: Scheme,
        authority: Authority,
    ) -> Result<Conns, String> {
        let tls = scheme == Scheme::HTTPS;
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let server_name = if tls {
            Some(
                ServerName::try_from(host.clone())
                    .map_err(|e| format!("{host} is no TLS server name: {e}"))?,
            )
        } else {
            None
        };
        // As a client writes it: the port only when not the scheme's default.
        let default_port = authority
            .port_u16()
            .is_none_or(|p| p == if tls { 443 } else { 80 });
        let host_header = if default_port {
            HeaderValue::from_str(authority.host())
        } else {
            HeaderValue::from_str(authority.as_str())
        }
        .map_err(|e| format!("{authority}: {e}"))?;
        Ok(Conns {
            connector,
            scheme,
            authority,
            host,
            port,
            server_name,
            host_header,
            idle: IdleList::new(),
            inline_idle: IdleList::new(),
            h2: Mutex::new(None),
            proto: AtomicU8::new(PROTO_UNKNOWN),
            reaper: AtomicBool::new(false),
        })
    }

    /// Idle HTTP/1.1 connections waiting for a request.
    pub fn idle_count(&self) -> usize {
        self.idle.len() + self.inline_idle.len()
    }

    /// Sends on a connection of the request-driven client (`http` targets):
    /// an idle one that is still open, else a new one.
    async fn send_inline(
        self: &Arc<Self>,
        mut req: Request<Body>,
        mode: Mode,
    ) -> Result<Response<UpstreamBody>, Failed> {
        self.h1_form(&mut req);
        if mode == Mode::Pooled {
            while let Some(conn) = self.checkout_inline() {
                match conn.send(req).await {
                    Ok((head, reader)) => return Ok(self.inline_response(head, reader)),
                    Err(h1::Failure::Unsent(back, _)) => req = *back,
                    Err(h1::Failure::Stale(e, back)) => {
                        return Err(Failed::new(SendError::Stale(Box::new(e)), back));
                    }
                    Err(h1::Failure::Failed(e)) => {
                        return Err(Failed::new(SendError::Request(Box::new(e)), None));
                    }
                }
            }
        }
        let limit = self.connector.connect_timeout;
        let tcp = match tokio::time::timeout(limit, self.tcp()).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Err(Failed::new(SendError::connect(e), Some(Box::new(req)))),
            Err(_) => {
                let e = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection within {} ms", limit.as_millis()),
                );
                return Err(Failed::new(SendError::connect(e), Some(Box::new(req))));
            }
        };
        let _ = tcp.set_nodelay(true);
        match h1::Conn::new(tcp).send(req).await {
            Ok((head, reader)) => Ok(self.inline_response(head, reader)),
            // Nothing reached the upstream: as good as no connection.
            Err(h1::Failure::Unsent(back, e)) => {
                Err(Failed::new(SendError::connect(e), Some(back)))
            }
            Err(h1::Failure::Stale(e, _) | h1::Failure::Failed(e)) => {
                Err(Failed::new(SendError::Request(Box::new(e)), None))
            }
        }
    }

    /// Whether a failed [`Conns::send_back`] gives the request back when
    /// it may go again (a connection failure, a stale kept-alive
    /// connection): plain-`http` targets, not upgrades. Otherwise a caller
    /// that may resend keeps a copy.
    pub fn returns_requests(&self, mode: Mode) -> bool {
        mode != Mode::Upgrade && self.server_name.is_none()
    }

    fn inline_response(
        self: &Arc<Self>,
        head: Response<()>,
        mut reader: h1::Reader,
    ) -> Response<UpstreamBody> {
        // A body that is empty returns the connection at once.
        if let Some(conn) = reader.take_reusable() {
            self.put_inline(conn);
        }
        let conns = Arc::clone(self);
        head.map(|()| UpstreamBody {
            kind: Kind::Inline { reader, conns },
        })
    }

    fn checkout_inline(&self) -> Option<h1::Conn> {
        self.inline_idle.pop(h1::Conn::is_usable)
    }

    fn put_inline(self: &Arc<Self>, conn: h1::Conn) {
        let max = self.connector.max_idle;
        if max == 0 {
            return;
        }
        self.inline_idle.push(conn, max);
        self.ensure_reaper();
    }

    /// Sends `req` (its URI in origin form, path and query) and returns the
    /// response head; the body streams from the connection, which goes
    /// back to the pool when the body has ended.
    pub async fn send(
        self: &Arc<Self>,
        req: Request<Body>,
        mode: Mode,
    ) -> Result<Response<UpstreamBody>, SendError> {
        self.send_back(req, mode).await.map_err(|f| f.error)
    }

    /// [`Conns::send`], with the request back on a failure it survived
    /// (see [`Conns::returns_requests`]).
    pub async fn send_back(
        self: &Arc<Self>,
        req: Request<Body>,
        mode: Mode,
    ) -> Result<Response<UpstreamBody>, Failed> {
        if self.returns_requests(mode) {
            return self.send_inline(req, mode).await;
        }
        self.send_hyper(req, mode)
            .await
            .map_err(|error| Failed::new(error, None))
    }

    /// TLS targets, HTTP/2 and upgrades: through hyper's client.
    async fn send_hyper(
        self: &Arc<Self>,
        mut req: Request<Body>,
        mode: Mode,
    ) -> Result<Response<UpstreamBody>, SendError> {
        if mode == Mode::Upgrade {
            let Fresh::H1(mut tx) = self.connect(true).await? else {
                return Err(SendError::connect(
                    "the upstream picked HTTP/2 for an upgrade",
                ));
            };
            self.h1_form(&mut req);
            return match tx.send_request(req).await {
                Ok(resp) => Ok(resp.map(UpstreamBody::unpooled)),
                Err(e) => Err(SendError::Request(Box::new(e))),
            };
        }
        if mode == Mode::Pooled {
            if self.proto.load(Ordering::Relaxed) == PROTO_H2 {
                if let Some(tx) = self.h2_sender() {
                    match self.send_h2(tx, req).await {
                        Ok(resp) => return Ok(resp),
                        // The shared connection is closing (GOAWAY); nothing
                        // was sent, so a new connection takes the request.
                        Err(Err(back)) => {
                            req = back;
                            self.forget_h2();
                        }
                        Err(Ok(e)) => return Err(e),
                    }
                }
            } else {
                self.h1_form(&mut req);
                while let Some(mut tx) = self.checkout() {
                    match tx.try_send_request(req).await {
                        Ok(resp) => return Ok(self.pooled(resp, tx)),
                        Err(mut e) => match e.take_message() {
                            // Closed before the request was written: the
                            // next idle connection, or a new one, takes it.
                            Some(back) => req = back,
                            None if lost(e.error()) => {
                                return Err(SendError::Stale(Box::new(e.into_error())));
                            }
                            None => return Err(SendError::Request(Box::new(e.into_error()))),
                        },
                    }
                }
            }
        }
        match self.connect(false).await? {
            Fresh::H1(mut tx) => {
                self.h1_form(&mut req);
                match tx.try_send_request(req).await {
                    Ok(resp) => Ok(self.pooled(resp, tx)),
                    Err(mut e) => match e.take_message() {
                        Some(_) => Err(SendError::connect(e.into_error())),
                        None => Err(SendError::Request(Box::new(e.into_error()))),
                    },
                }
            }
            Fresh::H2(tx) => {
                let old = self
                    .h2
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .replace(tx.clone());
                drop(old);
                match self.send_h2(tx, req).await {
                    Ok(resp) => Ok(resp),
                    Err(Err(_)) => Err(SendError::connect("the new HTTP/2 connection closed")),
                    Err(Ok(e)) => Err(e),
                }
            }
        }
    }

    /// HTTP/1.1 requests carry the origin form and a `Host` (RFC 9112 §3.2).
    fn h1_form(&self, req: &mut Request<Body>) {
        if req.uri().scheme().is_some() || req.uri().authority().is_some() {
            let pq = req
                .uri()
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/"));
            *req.uri_mut() = Uri::from(pq);
        }
        if !req.headers().contains_key(header::HOST) {
            req.headers_mut()
                .insert(header::HOST, self.host_header.clone());
        }
        *req.version_mut() = Version::HTTP_11;
    }

    /// Sends on the shared HTTP/2 connection; `Err(Err(req))` gives the
    /// request back when the connection took none.
    async fn send_h2(
        &self,
        mut tx: http2::SendRequest<Body>,
        mut req: Request<Body>,
    ) -> Result<Response<UpstreamBody>, Result<SendError, Request<Body>>> {
        // HTTP/2 carries the target as :scheme and :authority.
        if req.uri().scheme().is_none() {
            let pq = req
                .uri()
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/"));
            let mut parts = http::uri::Parts::default();
            parts.scheme = Some(self.scheme.clone());
            parts.authority = Some(self.authority.clone());
            parts.path_and_query = Some(pq);
            if let Ok(uri) = Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
        *req.version_mut() = Version::HTTP_2;
        match tx.try_send_request(req).await {
            Ok(resp) => Ok(resp.map(UpstreamBody::unpooled)),
            Err(mut e) => match e.take_message() {
                Some(back) => Err(Err(back)),
                None => Err(Ok(SendError::Request(Box::new(e.into_error())))),
            },
        }
    }

    fn h2_sender(&self) -> Option<http2::SendRequest<Body>> {
        let g = self.h2.lock().unwrap_or_else(PoisonError::into_inner);
        g.as_ref().filter(|tx| !tx.is_closed()).cloned()
    }

    fn forget_h2(&self) {
        let old = self
            .h2
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(old);
    }

    /// The most recently used idle connection that can take a request;
    /// closed ones are dropped on the way.
    fn checkout(&self) -> Option<http1::SendRequest<Body>> {
        self.idle.pop(http1::SendRequest::is_ready)
    }

    fn pooled(
        self: &Arc<Self>,
        resp: Response<Incoming>,
        tx: http1::SendRequest<Body>,
    ) -> Response<UpstreamBody> {
        let conns = Arc::clone(self);
        resp.map(|inner| UpstreamBody {
            kind: Kind::Hyper {
                inner,
                back: Some(Checkin { tx, conns }),
            },
        })
    }

    /// Takes back a connection whose response has ended: into the idle list
    /// when it can take the next request, else once it can (the driver may
    /// not have seen the end yet), unless it closes.
    fn checkin(self: &Arc<Self>, tx: http1::SendRequest<Body>) {
        if tx.is_ready() {
            self.put(tx);
        } else if !tx.is_closed() {
            let Ok(rt) = tokio::runtime::Handle::try_current() else {
                return;
            };
            let conns = Arc::clone(self);
            rt.spawn(async move {
                let mut tx = tx;
                if tx.ready().await.is_ok() {
                    conns.put(tx);
                }
            });
        }
    }

    fn put(self: &Arc<Self>, tx: http1::SendRequest<Body>) {
        let max = self.connector.max_idle;
        if max == 0 {
            return;
        }
        self.idle.push(tx, max);
        self.ensure_reaper();
    }

    fn ensure_reaper(self: &Arc<Self>) {
        if !self.reaper.load(Ordering::Relaxed) && !self.reaper.swap(true, Ordering::Relaxed) {
            self.start_reaper();
        }
    }

    /// Closes connections idle for longer than the idle timeout, checking
    /// every half of it; ends when the target is gone (reload).
    fn start_reaper(self: &Arc<Self>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak: Weak<Conns> = Arc::downgrade(self);
        let timeout = self.connector.idle_timeout;
        let every = (timeout / 2).max(Duration::from_millis(10));
        rt.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(conns) = weak.upgrade() else { break };
                conns.reap(Instant::now(), timeout);
            }
        });
    }

    fn reap(&self, now: Instant, timeout: Duration) {
        self.idle.expire(now, timeout);
        self.inline_idle.expire(now, timeout);
    }

    /// A new connection: TCP (and TLS for `https`) within the connect
    /// timeout, then the HTTP handshake, its driver spawned.
    async fn connect(&self, upgrade: bool) -> Result<Fresh, SendError> {
        let limit = self.connector.connect_timeout;
        match tokio::time::timeout(limit, self.open(upgrade)).await {
            Ok(Ok(Io::Tcp(tcp))) => h1(TokioIo::new(tcp), upgrade).await,
            Ok(Ok(Io::Tls(tls))) => {
                if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                    self.proto.store(PROTO_H2, Ordering::Relaxed);
                    let (mut tx, conn) = http2::Builder::new(TokioExecutor::new())
                        .handshake(TokioIo::new(tls))
                        .await
                        .map_err(SendError::connect)?;
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!("upstream h2 connection ended: {e}");
                        }
                    });
                    tx.ready().await.map_err(SendError::connect)?;
                    return Ok(Fresh::H2(tx));
                }
                if !upgrade {
                    self.proto.store(PROTO_H1, Ordering::Relaxed);
                }
                h1(TokioIo::new(tls), upgrade).await
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(SendError::connect(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no connection within {} ms", limit.as_millis()),
            ))),
        }
    }

    async fn open(&self, upgrade: bool) -> Result<Io, SendError> {
        let tcp = self.tcp().await.map_err(SendError::connect)?;
        // Requests are written whole; Nagle would only delay them.
        let _ = tcp.set_nodelay(true);
        let Some(name) = &self.server_name else {
            return Ok(Io::Tcp(tcp));
        };
        let tls = if upgrade {
            &self.connector.tls_h1
        } else {
            &self.connector.tls
        };
        let stream = tls
            .connect(name.clone(), tcp)
            .await
            .map_err(SendError::connect)?;
        Ok(Io::Tls(Box::new(stream)))
    }

    /// Each resolved address in turn, the first that accepts.
    async fn tcp(&self) -> std::io::Result<TcpStream> {
        let mut last = None;
        for addr in tokio::net::lookup_host((self.host.as_str(), self.port)).await? {
            match TcpStream::connect(addr).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} resolves to no address", self.host),
            )
        }))
    }
}

/// Whether the connection went away under the request (closed, reset),
/// rather than the upstream answering something unreadable.
fn lost(e: &hyper::Error) -> bool {
    e.is_incomplete_message()
        || e.is_canceled()
        || e.is_closed()
        || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

enum Io {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

enum Fresh {
    H1(http1::SendRequest<Body>),
    H2(http2::SendRequest<Body>),
}

/// The HTTP/1.1 handshake on `io`, its driver spawned (with upgrades when
/// asked: after a 101 the connection's bytes go to the upgrade).
async fn h1<T>(io: T, upgrade: bool) -> Result<Fresh, SendError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (tx, conn) = http1::handshake(io).await.map_err(SendError::connect)?;
    if upgrade {
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!("upstream connection ended: {e}");
            }
        });
    } else {
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("upstream connection ended: {e}");
            }
        });
    }
    Ok(Fresh::H1(tx))
}

struct Checkin {
    tx: http1::SendRequest<Body>,
    conns: Arc<Conns>,
}

/// An upstream response body; a pooled connection goes back to its pool
/// when the body has ended (a body dropped before its end closes it, as
/// its unread rest would be in the way).
pub struct UpstreamBody {
    kind: Kind,
}

enum Kind {
    /// From a hyper client connection.
    Hyper {
        inner: Incoming,
        back: Option<Checkin>,
    },
    /// Read by the request's task from its connection ([`crate::h1`]).
    Inline {
        reader: h1::Reader,
        conns: Arc<Conns>,
    },
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pooled = match &self.kind {
            Kind::Hyper { back, .. } => back.is_some(),
            Kind::Inline { .. } => true,
        };
        f.debug_struct("UpstreamBody")
            .field("pooled", &pooled)
            .finish_non_exhaustive()
    }
}

impl UpstreamBody {
    fn unpooled(inner: Incoming) -> UpstreamBody {
        UpstreamBody {
            kind: Kind::Hyper { inner, back: None },
        }
    }

    /// Gives the connection back when the body has ended on a connection
    /// that stays open.
    fn checkin(&mut self) {
        match &mut self.kind {
            Kind::Hyper { back, .. } => {
                if let Some(c) = back.take() {
                    c.conns.checkin(c.tx);
                }
            }
            Kind::Inline { reader, conns } => {
                if let Some(conn) = reader.take_reusable() {
                    conns.put_inline(conn);
                }
            }
        }
    }
}

impl http_body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match &mut this.kind {
            Kind::Hyper { inner, back } => {
                let polled = Pin::new(&mut *inner).poll_frame(cx);
                let ended = match &polled {
                    Poll::Ready(None) => true,
                    Poll::Ready(Some(Ok(_))) => inner.is_end_stream(),
                    Poll::Ready(Some(Err(_))) => {
                        *back = None;
                        false
                    }
                    Poll::Pending => false,
                };
                if ended && let Some(c) = back.take() {
                    c.conns.checkin(c.tx);
                }
                polled.map_err(Into::into)
            }
            Kind::Inline { reader, conns } => {
                let polled = reader.poll_frame(cx);
                // The last bytes of a body return the connection with them:
                // the next request may want it before this body is polled
                // again.
                let ended = match &polled {
                    Poll::Ready(None) => true,
                    Poll::Ready(Some(Ok(_))) => reader.is_done(),
                    _ => false,
                };
                if ended && let Some(conn) = reader.take_reusable() {
                    conns.put_inline(conn);
                }
                polled.map_err(Into::into)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Hyper { inner, .. } => inner.is_end_stream(),
            Kind::Inline { reader, .. } => reader.is_done(),
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match &self.kind {
            Kind::Hyper { inner, .. } => inner.size_hint(),
            Kind::Inline { reader, .. } => reader.size_hint(),
        }
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        if self.is_end_stream() {
            self.checkin();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;
    use std::future::Future as _;
    use std::sync::Mutex;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// An upstream answering every request on a connection with `ok`.
    async fn upstream() -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut b = [0u8; 1];
                    while s.read(&mut b).await.is_ok_and(|n| n == 1) {
                        head.push(b[0]);
                        if head.ends_with(b"\r\n\r\n") {
                            head.clear();
                            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                            if s.write_all(answer).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        addr
    }

    fn conns(addr: std::net::SocketAddr, idle_timeout: Duration) -> Arc<Conns> {
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        let connector = Arc::new(Connector::new(tls, Duration::from_secs(2), 8, idle_timeout));
        let authority: Authority = addr.to_string().parse().unwrap();
        Arc::new(Conns::new(connector, Scheme::HTTP, authority).unwrap())
    }

    fn get() -> Request<Body> {
        let mut req = Request::new(crate::body::empty());
        *req.uri_mut() = Uri::from_static("/");
        req
    }

    /// An upstream that answers the requests on each connection with
    /// `answers`, in turn, and keeps what it read. A request's body is read
    /// by its `content-length` or to the end of its chunks. After an answer
    /// that ends with the connection (no length, or `connection: close`) the
    /// connection is closed.
    async fn scripted(
        answers: Vec<&'static [u8]>,
    ) -> (std::net::SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let answers = answers.clone();
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    for answer in answers {
                        let mut req = Vec::new();
                        let mut b = [0u8; 1];
                        while !req.ends_with(b"\r\n\r\n") {
                            if !s.read(&mut b).await.is_ok_and(|n| n == 1) {
                                return;
                            }
                            req.push(b[0]);
                        }
                        let head = String::from_utf8_lossy(&req).to_lowercase();
                        if let Some(n) = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length: "))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                        {
                            let mut body = vec![0u8; n];
                            s.read_exact(&mut body).await.unwrap();
                            req.extend_from_slice(&body);
                        } else if head.contains("transfer-encoding: chunked") {
                            while !req.ends_with(b"0\r\n\r\n") {
                                s.read_exact(&mut b).await.unwrap();
                                req.push(b[0]);
                            }
                        }
                        log.lock().unwrap().push(req);
                        s.write_all(answer).await.unwrap();
                        let text = String::from_utf8_lossy(answer).to_lowercase();
                        if text.contains("connection: close")
                            || !(text.contains("content-length") || text.contains("chunked"))
                        {
                            return;
                        }
                    }
                });
            }
        });
        (addr, seen)
    }

    async fn body_of(resp: Response<UpstreamBody>) -> Result<Vec<u8>, BoxError> {
        Ok(resp.into_body().collect().await?.to_bytes().to_vec())
    }

    #[tokio::test]
    async fn chunked_interim_and_close_delimited_answers_pass_through() {
        let (addr, _) = scripted(vec![
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc",
            b"HTTP/1.0 200 OK\r\n\r\nuntil the end",
        ])
        .await;
        let conns = conns(addr, Duration::from_secs(60));
        let resp = conns.send(get(), Mode::Pooled).await.unwrap();
        assert_eq!(body_of(resp).await.unwrap(), b"Wikipedia");
        assert_eq!(
            conns.idle_count(),
            1,
            "a chunked answer read to its end keeps the connection"
        );
        let resp = conns.send(get(), Mode::Pooled).await.unwrap();
        assert_eq!(resp.body().size_hint().exact(), Some(3));
        assert_eq!(body_of(resp).await.unwrap(), b"abc");
        let resp = conns.send(get(), Mode::Pooled).await.unwrap();
        assert_eq!(resp.version(), Version::HTTP_10);
        assert_eq!(body_of(resp).await.unwrap(), b"until the end");
        assert_eq!(
            conns.idle_count(),
            0,
            "a body that ends with the connection takes it along"
        );
    }

    #[tokio::test]
    async fn smuggling_shaped_answers_are_refused() {
        for answer in [
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n0\r\n\r\n"
                .as_slice(),
            b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\nabcd",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0x3\r\n\r\nabc",
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
        ] {
            let (addr, _) = scripted(vec![answer]).await;
            let conns = conns(addr, Duration::from_secs(60));
            let err = conns.send(get(), Mode::Pooled).await.unwrap_err();
            assert!(
                matches!(err, SendError::Request(_)),
                "{}: {err}",
                String::from_utf8_lossy(answer)
            );
        }
    }

    #[tokio::test]
    async fn request_bodies_are_framed_by_their_length_or_chunked() {
        let ok: &'static [u8] = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
        let (addr, seen) = scripted(vec![ok, ok, ok]).await;
        let conns = conns(addr, Duration::from_secs(60));
        // A known length.
        let mut req = Request::new(crate::body::full("hello"));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = Uri::from_static("/a?b=c");
        req.headers_mut().insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        let resp = conns.send(req, Mode::Pooled).await.unwrap();
        assert_eq!(resp.status(), http::StatusCode::NO_CONTENT);
        assert!(body_of(resp).await.unwrap().is_empty());
        // An unknown length: chunked.
        let stream = Pieces {
            data: vec![
                Bytes::from_static(b"part one, "),
                Bytes::from_static(b"part two"),
            ],
            said: None,
        };
        let mut req = Request::new(crate::body::boxed(stream));
        *req.method_mut() = http::Method::PUT;
        *req.uri_mut() = Uri::from_static("/up");
        let resp = conns.send(req, Mode::Pooled).await.unwrap();
        let _ = body_of(resp).await.unwrap();
        // No body: no length on a GET.
        let resp = conns.send(get(), Mode::Pooled).await.unwrap();
        let _ = body_of(resp).await.unwrap();
        let seen = seen.lock().unwrap().clone();
        let text: Vec<String> = seen
            .iter()
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect();
        assert!(
            text[0].starts_with("POST /a?b=c HTTP/1.1\r\n"),
            "{}",
            text[0]
        );
        assert!(text[0].contains("content-length: 5\r\n"), "{}", text[0]);
        assert!(
            !text[0].contains("chunked"),
            "the client's framing is not passed on: {}",
            text[0]
        );
        assert!(text[0].ends_with("\r\n\r\nhello"), "{}", text[0]);
        assert!(
            text[1].contains("transfer-encoding: chunked\r\n"),
            "{}",
            text[1]
        );
        assert!(
            text[1].ends_with("\r\n\r\na\r\npart one, \r\n8\r\npart two\r\n0\r\n\r\n"),
            "{}",
            text[1]
        );
        assert!(text[2].starts_with("GET / HTTP/1.1\r\n"), "{}", text[2]);
        assert!(!text[2].contains("content-length"), "{}", text[2]);
        assert!(
            text[2].contains(&format!("host: {addr}\r\n")),
            "{}",
            text[2]
        );
        assert_eq!(conns.idle_count(), 1, "all three went over one connection");
    }

    /// A body of pieces that says it has `said` bytes (which may be untrue),
    /// or nothing about its length.
    struct Pieces {
        data: Vec<Bytes>,
        said: Option<u64>,
    }

    impl http_body::Body for Pieces {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            if self.data.is_empty() {
                return Poll::Ready(None);
            }
            Poll::Ready(Some(Ok(http_body::Frame::data(self.data.remove(0)))))
        }

        fn size_hint(&self) -> http_body::SizeHint {
            self.said.map_or_else(
                http_body::SizeHint::default,
                http_body::SizeHint::with_exact,
            )
        }
    }

    /// A body that gives `first`, then waits for `gate`, then gives
    /// `second`; its length is not known in advance.
    struct Gated {
        first: Option<Bytes>,
        gate: Option<tokio::sync::oneshot::Receiver<()>>,
        second: Option<Bytes>,
    }

    impl http_body::Body for Gated {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            if let Some(b) = self.first.take() {
                return Poll::Ready(Some(Ok(http_body::Frame::data(b))));
            }
            if let Some(gate) = self.gate.as_mut() {
                let _ = std::task::ready!(Pin::new(gate).poll(cx));
                self.gate = None;
            }
            Poll::Ready(self.second.take().map(|b| Ok(http_body::Frame::data(b))))
        }
    }

    #[tokio::test]
    async fn a_streamed_body_goes_out_as_it_comes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (open_tx, open_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut b = [0u8; 1];
            // The first piece arrives while the body still waits for more.
            while !seen.ends_with(b"5\r\nfirst\r\n") {
                s.read_exact(&mut b).await.unwrap();
                seen.push(b[0]);
            }
            open_tx.send(()).unwrap();
            while !seen.ends_with(b"6\r\nsecond\r\n0\r\n\r\n") {
                s.read_exact(&mut b).await.unwrap();
                seen.push(b[0]);
            }
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await
                .unwrap();
        });
        let conns = conns(addr, Duration::from_secs(60));
        let body = Gated {
            first: Some(Bytes::from_static(b"first")),
            gate: Some(open_rx),
            second: Some(Bytes::from_static(b"second")),
        };
        let mut req = Request::new(crate::body::boxed(body));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = Uri::from_static("/stream");
        let resp = tokio::time::timeout(Duration::from_secs(10), conns.send(req, Mode::Pooled))
            .await
            .expect("the first piece was held back")
            .unwrap();
        assert_eq!(body_of(resp).await.unwrap(), b"ok");
    }

    #[tokio::test]
    async fn a_body_that_breaks_its_length_is_not_sent_on() {
        let ok: &'static [u8] = b"HTTP/1.1 204 No Content\r\n\r\n";
        for (said, data) in [(3, "hello"), (8, "hello")] {
            let (addr, seen) = scripted(vec![ok]).await;
            let conns = conns(addr, Duration::from_secs(60));
            let body = Pieces {
                data: vec![Bytes::from_static(data.as_bytes())],
                said: Some(said),
            };
            let mut req = Request::new(crate::body::boxed(body));
            *req.method_mut() = http::Method::POST;
            *req.uri_mut() = Uri::from_static("/x");
            let err = tokio::time::timeout(Duration::from_secs(10), conns.send(req, Mode::Pooled))
                .await
                .unwrap()
                .unwrap_err();
            assert!(matches!(err, SendError::Request(_)), "{said}: {err}");
            assert_eq!(conns.idle_count(), 0);
            assert!(
                seen.lock().unwrap().iter().all(|r| !r.ends_with(b"hello")),
                "{said}: the body went out"
            );
        }
    }

    #[tokio::test]
    async fn an_answer_sent_before_the_body_was_read_is_passed_on() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                s.read_exact(&mut b).await.unwrap();
                head.push(b[0]);
            }
            s.write_all(b"HTTP/1.1 413 Content Too Large\r\ncontent-length: 4\r\nconnection: close\r\n\r\nbig!")
                .await
                .unwrap();
            // Stop reading; closing with unread data resets the connection.
            drop(s);
        });
        let conns = conns(addr, Duration::from_secs(60));
        let mut req = Request::new(crate::body::full(vec![b'x'; 8 << 20]));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = Uri::from_static("/upload");
        let resp = conns.send(req, Mode::Pooled).await.unwrap();
        assert_eq!(resp.status(), http::StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body_of(resp).await.unwrap(), b"big!");
        assert_eq!(conns.idle_count(), 0);
    }

    #[tokio::test]
    async fn idle_connections_past_the_timeout_are_closed() {
        let addr = upstream().await;
        let conns = conns(addr, Duration::from_secs(60));
        let a = conns.send(get(), Mode::Pooled).await.unwrap();
        let b = conns.send(get(), Mode::Pooled).await.unwrap();
        for resp in [a, b] {
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], b"ok");
        }
        assert_eq!(conns.idle_count(), 2);
        let now = Instant::now();
        // Not yet idle for long enough: kept.
        conns.reap(now, Duration::from_secs(60));
        assert_eq!(conns.idle_count(), 2);
        // An hour later: both closed.
        conns.reap(now + Duration::from_secs(3600), Duration::from_secs(60));
        assert_eq!(conns.idle_count(), 0);
    }

    #[tokio::test]
    async fn an_upgrade_connection_is_never_pooled() {
        let addr = upstream().await;
        let conns = conns(addr, Duration::from_secs(60));
        let resp = conns.send(get(), Mode::Upgrade).await.unwrap();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"ok");
        assert_eq!(conns.idle_count(), 0);
        // A pooled request's connection is kept.
        let resp = conns.send(get(), Mode::Pooled).await.unwrap();
        let _ = resp.into_body().collect().await.unwrap();
        assert_eq!(conns.idle_count(), 1);
    }
}
