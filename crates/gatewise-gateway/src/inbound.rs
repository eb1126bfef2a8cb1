//! HTTP/1.1 from clients (plain TCP, or TLS when ALPN did not choose h2)
//! for the requests most traffic is made of, served without hyper's server
//! dispatch; anything else hands the connection to hyper.
//!
//! hyper's server connection is general: a dispatcher between the
//! connection and the service, a request body channel, a header-read timer
//! armed for every request, and a date check per response. For a proxied
//! GET that was the largest user-space cost left in the gateway (about
//! 2.6 µs of its 7 µs, `bench/run.sh` scenario B under perf). Here the
//! connection's task reads the head, parses it with `httparse` (what hyper
//! uses), calls [`Gateway::handle`] and writes the response itself.
//!
//! Served here: HTTP/1.1 requests in origin form without `Transfer-Encoding`,
//! `Expect` or `Upgrade`, with `Connection` absent or `keep-alive`, whose
//! head parses and, with the body its one `Content-Length` announces, fits
//! the head size limit: the body is read whole before the request is
//! handled (within the header-read timeout, as the head). The first
//! request that is anything else hands the connection, with every byte
//! read and not used, to hyper, which serves it from then on: chunked or
//! longer bodies, upgrades, HTTP/1.0, `Expect:
//! 100-continue`, h2c prior knowledge, and every malformed, oversized or
//! smuggling-shaped head keep hyper's handling and hyper's answers (400,
//! 431, ...). TLS connections that chose h2 by ALPN go to hyper at once.
//!
//! The response is framed as RFC 9112 §6 says: no body for `HEAD`, 204 and
//! 304 (§6.3); else the length the response has (§8.6), or chunked (§7.1).
//! Trailers are dropped (as through hyper). A body that breaks its length
//! or fails closes the connection (§9.6: the client can only see the
//! failure that way); a client that leaves while the body waits ends it.
//!
//! The header-read timeout (slowloris) runs on one timer per connection:
//! waiting for a head notes the time, and the timer, when it fires, either
//! finds the wait too long (the connection closes) or is set to the current
//! wait's deadline. A request costs one clock reading, not a timer.

use crate::body::Body;
use crate::h1::SpareMap;
use crate::proxy::{Gateway, Peer};
use bytes::{Buf as _, Bytes, BytesMut};
use http::header::{
    CONNECTION, CONTENT_LENGTH, DATE, EXPECT, HeaderName, HeaderValue, TRANSFER_ENCODING, UPGRADE,
};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body as _;
use http_body_util::Full;
use std::future::poll_fn;
use std::io::{self, Write as _};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::time::Instant;

/// Most request headers read (hyper's default limit: more is handed to
/// hyper, which answers 431).
const MAX_HEADERS: usize = 100;

/// Read buffer size.
const READ_CHUNK: usize = 8 << 10;

/// Headers the proxy may add to a request before it goes upstream
/// (`X-Forwarded-*`, `Forwarded`, `traceparent`, `X-Request-Id`, the four
/// `X-Auth-*`): a request's map is made with room for them.
const ADDED_HEADERS: usize = 10;

/// Response bytes gathered before they are written.
const WRITE_BATCH: usize = 64 << 10;

/// A response body piece at least this large is written as it is.
const DIRECT_WRITE: usize = 16 << 10;

/// Longest wait for a connection's orderly close after its last answer.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// The write buffer's capacity kept between requests.
const KEEP_OUT: usize = 16 << 10;

/// What a connection served here needs from the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest wait for a complete request head.
    pub header_read_timeout: Duration,
    /// Longest request head (status line and headers), in bytes.
    pub max_head: usize,
}

/// How a connection served here ended.
#[derive(Debug)]
pub enum Ended<IO> {
    /// Closed: by the client, the header-read timeout, shutdown, or an error.
    Closed,
    /// To be served by hyper from here on; the bytes read and not used
    /// come first.
    HandOff {
        /// The connection.
        io: Prefixed<IO>,
        /// No request was served on it yet: it may still turn out to be
        /// h2c, whose preface must be a connection's first bytes (RFC 9113
        /// §3.3) and nowhere else.
        fresh: bool,
    },
}

/// Serves requests on `io` until it closes or a request is one to hand to
/// hyper. `stop` turning true closes the connection between requests (a
/// request under way is answered, with `Connection: close`); the client
/// closing its side drops the request under way.
pub async fn serve<IO>(
    mut io: IO,
    gateway: Arc<Gateway>,
    peer: Peer,
    limits: Limits,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Ended<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut out: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    // The last answer's header map, emptied: the next request's headers go
    // into it (no map allocated per request).
    let mut spare = SpareMap::default();
    let mut timer = HeadTimer::new(limits.header_read_timeout);
    // Made once: a `changed()` made per wait registered and unregistered
    // with the channel every request. Polled only while idle, and the
    // connection closes as soon as it is ready, so never polled after.
    let mut stopping = {
        let mut stop = stop.clone();
        Box::pin(async move {
            let _ = stop.changed().await;
        })
    };
    let mut served = false;
    let hand_off = |prefix: Bytes, io: IO, served: bool| Ended::HandOff {
        io: Prefixed::new(prefix, io),
        fresh: !served,
    };
    loop {
        // Where the last look for the head's end stopped: a head arriving
        // in small pieces is parsed again only once its end is there, not
        // per piece (which would cost quadratic time).
        let mut looked = 0;
        // A head read whose body is still coming (offsets into `buf`, which
        // only grows meanwhile).
        let mut pending: Option<Spans> = None;
        let req = loop {
            if pending.is_none() && !buf.is_empty() && (looked == 0 || head_may_end(&buf, looked)) {
                match scan(&buf, limits.max_head) {
                    Scan::Complete(spans) => {
                        // The body gets a wait of its own: the head's may
                        // have begun long ago, on an idle connection.
                        if buf.len() < spans.len + spans.body {
                            timer.done();
                        }
                        pending = Some(spans);
                    }
                    Scan::Partial => {}
                    Scan::HandOff => return hand_off(buf.freeze(), io, served),
                }
            }
            if let Some(spans) = pending.take_if(|p| buf.len() >= p.len + p.body) {
                match build(&mut buf, spans, &mut spare) {
                    Ok(req) => break req,
                    Err(read) => return hand_off(read, io, served),
                }
            }
            if pending.is_none() && buf.len() >= limits.max_head {
                return hand_off(buf.freeze(), io, served);
            }
            looked = buf.len();
            if buf.is_empty() && *stop.borrow() {
                return Ended::Closed;
            }
            timer.waiting();
            if buf.capacity() - buf.len() < READ_CHUNK / 4 {
                buf.reserve(READ_CHUNK);
            }
            tokio::select! {
                biased;
                read = io.read_buf(&mut buf) => match read {
                    Ok(0) | Err(_) => return Ended::Closed,
                    Ok(_) => {}
                },
                () = timer.expired() => return Ended::Closed,
                () = &mut stopping, if buf.is_empty() => return Ended::Closed,
            }
        };
        timer.done();
        served = true;
        let head_request = req.method() == Method::HEAD;
        let handling = Arc::clone(&gateway).handle(req, peer.clone());
        tokio::pin!(handling);
        // A client that closes its connection gives up the request: its
        // handling is dropped (upstream call included), as hyper does, and
        // the call is recorded as 499. While pipelined requests wait in the
        // buffer nothing more is read (as hyper does): a client that sent
        // them and half-closed gets its answers.
        let resp = loop {
            tokio::select! {
                biased;
                resp = &mut handling => break resp,
                read = io.read_buf(&mut buf), if buf.is_empty() => match read {
                    Ok(0) | Err(_) => return Ended::Closed,
                    Ok(_) => {}
                },
            }
        };
        let close = *stop.borrow();
        let now = gateway.clock().unix_now();
        let mut exchange = Exchange {
            io: &mut io,
            out: &mut out,
            spare: &mut spare,
            buf: &mut buf,
        };
        match exchange.respond(resp, head_request, close, now).await {
            Ok(true) if !close => {}
            Ok(_) => {
                // Ends the stream properly (TLS: close_notify after what
                // rustls still holds), briefly: the client may not read.
                let _ = tokio::time::timeout(CLOSE_WAIT, io.shutdown()).await;
                return Ended::Closed;
            }
            Err(_) => return Ended::Closed,
        }
        if out.capacity() > KEEP_OUT {
            out = Vec::with_capacity(READ_CHUNK);
        }
    }
}

/// Whether the bytes after the first `looked` may complete a head: an end
/// of line followed by an empty line is among them.
fn head_may_end(buf: &[u8], looked: usize) -> bool {
    buf.get(looked.saturating_sub(3)..).is_some_and(|new| {
        new.windows(2).any(|w| w == b"\n\n") || new.windows(3).any(|w| w == b"\n\r\n")
    })
}

/// Where a request head is, found without changing the buffer.
struct Spans {
    len: usize,
    /// The body's length (`Content-Length`), which follows the head.
    body: usize,
    method: Method,
    target: (usize, usize),
    headers: Vec<(HeaderName, usize, usize)>,
}

enum Scan {
    Complete(Spans),
    Partial,
    HandOff,
}

/// Reads the head at the start of `buf`: complete and one served here,
/// incomplete, or one for hyper (anything else, errors included).
fn scan(buf: &[u8], max_head: usize) -> Scan {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut slots);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= max_head => len,
        Ok(httparse::Status::Partial) if buf.len() < max_head => return Scan::Partial,
        _ => return Scan::HandOff,
    };
    let (Some(method), Some(target), Some(1)) = (parsed.method, parsed.path, parsed.version) else {
        return Scan::HandOff;
    };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return Scan::HandOff;
    };
    // Origin form only (RFC 9112 §3.2.1); CONNECT and `*` go to hyper.
    if method == Method::CONNECT || !target.starts_with('/') {
        return Scan::HandOff;
    }
    let base = buf.as_ptr() as usize;
    let offset = |s: &[u8]| s.as_ptr() as usize - base;
    let mut headers = Vec::with_capacity(parsed.headers.len());
    let mut lengths = 0;
    let mut body = Some(0);
    for h in parsed.headers.iter() {
        let Ok(name) = HeaderName::from_bytes(h.name.as_bytes()) else {
            return Scan::HandOff;
        };
        let served = if name == CONTENT_LENGTH {
            lengths += 1;
            body = content_length(h.value);
            lengths == 1 && body.is_some()
        } else if name == CONNECTION {
            h.value.eq_ignore_ascii_case(b"keep-alive")
        } else {
            name != TRANSFER_ENCODING && name != EXPECT && name != UPGRADE
        };
        if !served {
            return Scan::HandOff;
        }
        let start = offset(h.value);
        headers.push((name, start, start + h.value.len()));
    }
    // A body is read here only when the whole message fits in what a head
    // may take; a longer one goes to hyper, which streams it.
    let Some(body) = body.filter(|b| len.saturating_add(*b) <= max_head) else {
        return Scan::HandOff;
    };
    let start = offset(target.as_bytes());
    Scan::Complete(Spans {
        len,
        body,
        method,
        target: (start, start + target.len()),
        headers,
    })
}

/// A `Content-Length` value as RFC 9110 §8.6 writes it: decimal digits
/// only (no sign, no list, no spaces; anything else is hyper's to refuse).
fn content_length(v: &[u8]) -> Option<usize> {
    if v.is_empty() || v.len() > 12 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Takes the head `spans` found off `buf` and makes the request, its
/// values sharing the head's bytes. Should a value not convert (httparse
/// and `http` accept the same bytes, so it should not happen), every byte
/// read goes back for hyper.
fn build(
    buf: &mut BytesMut,
    spans: Spans,
    spare: &mut SpareMap,
) -> Result<Request<Full<Bytes>>, Bytes> {
    let head = buf.split_to(spans.len).freeze();
    let made = (|| {
        let uri = Uri::from_maybe_shared(head.slice(spans.target.0..spans.target.1)).ok()?;
        // Room for what the proxy adds (forwarding, trace, request id,
        // identity): growing a map re-indexes every entry.
        let mut headers = spare.take(spans.headers.len() + ADDED_HEADERS);
        for (name, start, end) in spans.headers {
            headers.append(
                name,
                HeaderValue::from_maybe_shared(head.slice(start..end)).ok()?,
            );
        }
        let mut req = Request::new(Full::new(Bytes::new()));
        *req.method_mut() = spans.method;
        *req.uri_mut() = uri;
        *req.version_mut() = Version::HTTP_11;
        *req.headers_mut() = headers;
        Some(req)
    })();
    let Some(mut req) = made else {
        let mut all = BytesMut::with_capacity(head.len() + buf.len());
        all.extend_from_slice(&head);
        all.extend_from_slice(buf);
        return Err(all.freeze());
    };
    if spans.body > 0 {
        *req.body_mut() = Full::new(buf.split_to(spans.body).freeze());
    }
    Ok(req)
}

/// How the response body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body (HEAD, 1xx, 204, 304).
    None,
    /// `Content-Length`, this much left.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A connection while a response is written.
struct Exchange<'a, IO> {
    io: &'a mut IO,
    out: &'a mut Vec<u8>,
    /// The answer's header map goes here once its head is written, emptied,
    /// for the connection's next request.
    spare: &'a mut SpareMap,
    /// What the client sends meanwhile (pipelined requests).
    buf: &'a mut BytesMut,
}

/// A response body's next frame, as `poll_frame` gives it.
type NextFrame = Option<Result<http_body::Frame<Bytes>, crate::body::BoxError>>;

impl<IO: AsyncRead + AsyncWrite + Unpin> Exchange<'_, IO> {
    /// Writes what was gathered.
    async fn flush(&mut self) -> io::Result<()> {
        self.io.write_all(self.out).await?;
        self.out.clear();
        // Nothing on TCP; over TLS what rustls took is only sent by a
        // flush (or a later write).
        self.io.flush().await
    }

    /// Sends what was gathered and gives up the connection.
    async fn broken(&mut self) -> io::Result<bool> {
        let _ = self.flush().await;
        Ok(false)
    }

    /// The body's next frame. While the body waits, the client's side is
    /// watched as while the request was handled: a client that leaves ends
    /// a long poll or an event stream (`None`: the body is dropped) rather
    /// than leaving the upstream call open until its timeout.
    async fn next_frame(&mut self, body: &mut Body) -> Option<NextFrame> {
        loop {
            tokio::select! {
                biased;
                frame = poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)) => return Some(frame),
                read = self.io.read_buf(self.buf), if self.buf.is_empty() => match read {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                },
            }
        }
    }

    /// Writes `resp`; `Ok(true)` when the connection can take another
    /// request.
    async fn respond(
        &mut self,
        resp: Response<Body>,
        head_request: bool,
        close: bool,
        now: u64,
    ) -> io::Result<bool> {
        let (mut parts, mut body) = resp.into_parts();
        // A 1xx is never a final answer (RFC 9110 §15.2). The gateway makes
        // none, but a client must not be left waiting after one.
        if parts.status.is_informational() {
            parts.status = StatusCode::INTERNAL_SERVER_ERROR;
            parts.headers.clear();
            parts
                .headers
                .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
            write_head(self.out, &parts, &body, head_request, true, now);
            return self.broken().await;
        }
        let framing = write_head(self.out, &parts, &body, head_request, close, now);
        self.spare.keep(std::mem::take(&mut parts.headers));
        let mut left = match framing {
            Framing::None => {
                self.flush().await?;
                return Ok(true);
            }
            Framing::Length(n) => n,
            Framing::Chunked => 0,
        };
        let chunked = framing == Framing::Chunked;
        loop {
            // What is gathered goes out as soon as the body has nothing
            // more at once: the head of a streamed response is not held
            // back.
            let frame = match poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await {
                Poll::Ready(frame) => frame,
                Poll::Pending => {
                    if !self.out.is_empty() {
                        self.flush().await?;
                    }
                    match self.next_frame(&mut body).await {
                        Some(frame) => frame,
                        None => return Ok(false),
                    }
                }
            };
            let frame = match frame {
                None => break,
                Some(Ok(frame)) => frame,
                // Nothing can tell the client but an unfinished message.
                Some(Err(_)) => return self.broken().await,
            };
            // Trailers are dropped, as hyper drops them unless the client
            // asked for them (`TE: trailers`) and the response declared
            // them: trailer fields are not header fields (RFC 9110 §6.5).
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if data.is_empty() {
                continue;
            }
            if chunked {
                let _ = write!(self.out, "{:x}\r\n", data.len());
            } else {
                match left.checked_sub(data.len() as u64) {
                    Some(l) => left = l,
                    // More than the length said: the rest would read as
                    // another response (RFC 9112 §6.3).
                    None => return self.broken().await,
                }
            }
            if data.len() >= DIRECT_WRITE {
                self.flush().await?;
                self.io.write_all(&data).await?;
            } else {
                self.out.extend_from_slice(&data);
            }
            if chunked {
                self.out.extend_from_slice(b"\r\n");
            }
            if self.out.len() >= WRITE_BATCH {
                self.flush().await?;
            }
            if body.is_end_stream() {
                break;
            }
        }
        if chunked {
            self.out.extend_from_slice(b"0\r\n\r\n");
        } else if left > 0 {
            return self.broken().await;
        }
        self.flush().await?;
        Ok(true)
    }
}

/// Writes the status line and header section into `out`: the response's
/// fields but its framing ones, then the framing chosen, `Date` when the
/// response has none (RFC 9110 §6.6.1; `now` in Unix seconds) and
/// `Connection: close` when the connection ends after it.
fn write_head(
    out: &mut Vec<u8>,
    parts: &http::response::Parts,
    body: &Body,
    head_request: bool,
    close: bool,
    now: u64,
) -> Framing {
    out.clear();
    let status = parts.status;
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut has_date = false;
    let mut length = None;
    for (name, value) in &parts.headers {
        if name == CONTENT_LENGTH {
            length = std::str::from_utf8(value.as_bytes())
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok());
            continue;
        }
        if name == TRANSFER_ENCODING || name == CONNECTION {
            continue;
        }
        has_date |= name == DATE;
        push_field(out, name, value);
    }
    let framing = if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        // §8.6: a 304 may carry the length a 200 would have had.
        if status == StatusCode::NOT_MODIFIED
            && let Some(n) = length
        {
            let _ = write!(out, "content-length: {n}\r\n");
        }
        Framing::None
    } else if head_request {
        // Only the length the response has: the empty body of a HEAD
        // response says nothing of what a GET would get (RFC 9110 §9.3.2).
        if let Some(n) = length {
            let _ = write!(out, "content-length: {n}\r\n");
        }
        Framing::None
    } else if let Some(n) = length.or_else(|| body.size_hint().exact()) {
        let _ = write!(out, "content-length: {n}\r\n");
        Framing::Length(n)
    } else {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
        Framing::Chunked
    };
    if !has_date {
        out.extend_from_slice(b"date: ");
        push_date(out, now);
        out.extend_from_slice(b"\r\n");
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    framing
}

fn push_field(out: &mut Vec<u8>, name: &HeaderName, value: &HeaderValue) {
    out.extend_from_slice(name.as_str().as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

thread_local! {
    /// The IMF-fixdate of the current second, rendered once a second.
    static NOW_DATE: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((0, String::new())) };
}

/// Appends `secs` (Unix time) as an HTTP date (RFC 9110 §5.6.7).
fn push_date(out: &mut Vec<u8>, secs: u64) {
    NOW_DATE.with(|d| {
        let mut d = d.borrow_mut();
        if d.0 != secs || d.1.is_empty() {
            let at = std::time::UNIX_EPOCH + Duration::from_secs(secs);
            *d = (secs, httpdate::fmt_http_date(at));
        }
        out.extend_from_slice(d.1.as_bytes());
    });
}

/// The header-read timeout of one connection (see the module's notes).
struct HeadTimer {
    timeout: Duration,
    /// When the wait for the current head began; `None` between heads.
    since: Option<Instant>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl HeadTimer {
    fn new(timeout: Duration) -> HeadTimer {
        HeadTimer {
            timeout,
            since: None,
            sleep: None,
        }
    }

    /// A head is awaited: the wait starts now unless it started already.
    fn waiting(&mut self) {
        if self.since.is_none() {
            self.since = Some(Instant::now());
        }
    }

    /// The head came.
    fn done(&mut self) {
        self.since = None;
    }

    /// Resolves when the current wait has lasted the timeout. The timer
    /// may fire early (set for an earlier wait): it is then set again.
    async fn expired(&mut self) {
        let Some(since) = self.since else {
            return std::future::pending().await;
        };
        let deadline = since + self.timeout;
        loop {
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            sleep.as_mut().await;
            if Instant::now() >= deadline {
                return;
            }
            sleep.as_mut().reset(deadline);
        }
    }
}

/// An I/O object whose first bytes to read are `prefix` (read before it
/// was handed over), then its own. `Debug` shows only how many bytes wait:
/// they are a client's request, `Authorization` header included.
pub struct Prefixed<IO> {
    prefix: Bytes,
    io: IO,
}

impl<IO> std::fmt::Debug for Prefixed<IO> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prefixed")
            .field("prefix_len", &self.prefix.len())
            .finish_non_exhaustive()
    }
}

impl<IO> Prefixed<IO> {
    /// `io`, to be read after `prefix`.
    pub fn new(prefix: Bytes, io: IO) -> Self {
        Prefixed { prefix, io }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Prefixed<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.prefix.is_empty() {
            return Pin::new(&mut self.io).poll_read(cx, buf);
        }
        let n = self.prefix.len().min(buf.remaining());
        if let Some(piece) = self.prefix.get(..n) {
            buf.put_slice(piece);
        }
        self.prefix.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Prefixed<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    fn scanned(head: &str) -> Option<(usize, Vec<String>)> {
        match scan(head.as_bytes(), 16 << 10) {
            Scan::Complete(s) => Some((
                s.len,
                s.headers
                    .iter()
                    .map(|(n, a, b)| format!("{n}={}", &head[*a..*b]))
                    .collect(),
            )),
            Scan::Partial | Scan::HandOff => None,
        }
    }

    fn handed_off(head: &str) -> bool {
        matches!(scan(head.as_bytes(), 16 << 10), Scan::HandOff)
    }

    #[test]
    fn plain_requests_are_served_here() {
        let head = "GET /a?b=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\n";
        let (len, headers) = scanned(head).unwrap();
        assert_eq!(len, head.len());
        assert_eq!(headers, ["host=x", "authorization=Bearer t"]);
        assert!(scanned("DELETE /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n").is_some());
        // A body, whole message within the head limit: read here.
        let Scan::Complete(spans) = scan(b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\na", 64)
        else {
            panic!("a body that fits is read here")
        };
        assert_eq!((spans.len, spans.body), (39, 3));
        // Longer than the head limit allows: hyper streams it.
        assert!(matches!(
            scan(b"POST /a HTTP/1.1\r\nContent-Length: 30\r\n\r\n", 64),
            Scan::HandOff
        ));
        assert!(scanned("HEAD / HTTP/1.1\r\nConnection: Keep-Alive\r\n\r\n").is_some());
        assert!(matches!(
            scan(b"GET /a HTTP/1.1\r\nHost: x\r\n", 1024),
            Scan::Partial
        ));
    }

    #[test]
    fn everything_else_goes_to_hyper() {
        for head in [
            // Chunked bodies, framing conflicts and smuggling shapes.
            "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "POST /a HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
            "POST /a HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc",
            "POST /a HTTP/1.1\r\nContent-Length: 0x3\r\n\r\nabc",
            "POST /a HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
            "POST /a HTTP/1.1\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /a HTTP/1.1\r\nContent-Length: +0\r\n\r\n",
            // Asking for something else of the connection.
            "GET /a HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            "GET /a HTTP/1.1\r\nConnection: close\r\n\r\n",
            "GET /a HTTP/1.0\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "CONNECT x:443 HTTP/1.1\r\n\r\n",
            "OPTIONS * HTTP/1.1\r\n\r\n",
            "GET http://x/a HTTP/1.1\r\n\r\n",
            // Heads that do not parse.
            "GET /a HTTP/1.1\r\nBad Name: x\r\n\r\n",
            "GET /a\x01 HTTP/1.1\r\n\r\n",
        ] {
            assert!(handed_off(head), "{head:?}");
        }
        // Too long: complete or not, hyper answers 431.
        let long = format!("GET /a HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(100));
        assert!(matches!(scan(long.as_bytes(), 64), Scan::HandOff));
        assert!(matches!(scan(&long.as_bytes()[..80], 64), Scan::HandOff));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: 1\r\n")).collect();
        assert!(handed_off(&format!("GET / HTTP/1.1\r\n{many}\r\n")));
    }

    #[test]
    fn a_head_is_looked_for_again_only_when_its_end_may_have_come() {
        let head = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        for looked in 1..head.len() {
            assert!(head_may_end(head, looked), "{looked}");
        }
        assert!(!head_may_end(b"GET / HTTP/1.1\r\nHost: x\r\n", 5));
        assert!(!head_may_end(b"GET / HTTP/1.1\r\nHost: x\r\nX: y", 20));
        assert!(head_may_end(b"GET / HTTP/1.1\nHost: x\n\n", 24));
    }

    #[test]
    fn handed_over_bytes_do_not_show_in_debug() {
        let p = Prefixed::new(
            Bytes::from_static(b"GET / HTTP/1.1\r\nAuthorization: Bearer secret-token\r\n"),
            (),
        );
        let shown = format!("{p:?}");
        assert!(!shown.contains("secret-token"), "{shown}");
        assert!(shown.contains("prefix_len: 52"), "{shown}");
    }

    #[test]
    fn requests_share_the_head_and_leave_what_follows() {
        let mut buf = BytesMut::from(&b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b"[..]);
        let Scan::Complete(spans) = scan(&buf, 1024) else {
            panic!("complete")
        };
        // A spare map with room is used (and so taken).
        let mut spare = SpareMap::default();
        spare.keep(http::HeaderMap::with_capacity(64));
        let req = build(&mut buf, spans, &mut spare).unwrap();
        assert_eq!(spare.take(0).capacity(), 0);
        assert!(req.headers().capacity() >= 64);
        assert_eq!(req.uri(), "/a");
        assert_eq!(req.headers().len(), 1);
        assert_eq!(req.headers()["host"], "x");
        assert_eq!(&buf[..], b"GET /b");
        let mut buf =
            BytesMut::from(&b"PUT /c HTTP/1.1\r\nContent-Length: 4\r\n\r\nbodyGET /d"[..]);
        let Scan::Complete(spans) = scan(&buf, 1024) else {
            panic!("complete")
        };
        let req = build(&mut buf, spans, &mut spare).unwrap();
        let body = req.into_body();
        assert_eq!(body.size_hint().exact(), Some(4));
        assert_eq!(&buf[..], b"GET /d");
    }

    fn head_of(
        status: u16,
        headers: &[(&str, &str)],
        body: Body,
        head_request: bool,
    ) -> (String, Framing) {
        let mut resp = Response::new(body);
        *resp.status_mut() = StatusCode::from_u16(status).unwrap();
        for (n, v) in headers {
            resp.headers_mut().append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let (parts, body) = resp.into_parts();
        let mut out = Vec::new();
        let f = write_head(&mut out, &parts, &body, head_request, false, 1_767_225_600);
        (String::from_utf8(out).unwrap(), f)
    }

    #[test]
    fn responses_are_framed_as_rfc_9112_says() {
        let (h, f) = head_of(200, &[("x-a", "1")], crate::body::full("abc"), false);
        assert!(
            h.starts_with("HTTP/1.1 200 OK\r\nx-a: 1\r\ncontent-length: 3\r\ndate: "),
            "{h}"
        );
        assert!(
            h.ends_with("date: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\n"),
            "{h}"
        );
        assert_eq!(f, Framing::Length(3));
        // The response's own length and date are kept, its framing
        // headers replaced.
        let (h, f) = head_of(
            200,
            &[
                ("content-length", "10"),
                ("transfer-encoding", "chunked"),
                ("connection", "x"),
                ("date", "D"),
            ],
            crate::body::full("0123456789"),
            false,
        );
        assert_eq!(
            h,
            "HTTP/1.1 200 OK\r\ndate: D\r\ncontent-length: 10\r\n\r\n"
        );
        assert_eq!(f, Framing::Length(10));
        // HEAD without a length of its own: none made up from the empty
        // body (RFC 9110 §9.3.2).
        let (h, f) = head_of(200, &[("date", "D")], crate::body::empty(), true);
        assert_eq!(h, "HTTP/1.1 200 OK\r\ndate: D\r\n\r\n");
        assert_eq!(f, Framing::None);
        // HEAD: the length a GET would have, no body.
        let (h, f) = head_of(
            200,
            &[("content-length", "10"), ("date", "D")],
            crate::body::empty(),
            true,
        );
        assert_eq!(
            h,
            "HTTP/1.1 200 OK\r\ndate: D\r\ncontent-length: 10\r\n\r\n"
        );
        assert_eq!(f, Framing::None);
        // 204 and 304: no body, and no length but a 304's.
        let (h, f) = head_of(
            204,
            &[("date", "D"), ("content-length", "0")],
            crate::body::empty(),
            false,
        );
        assert_eq!(
            (h.as_str(), f),
            ("HTTP/1.1 204 No Content\r\ndate: D\r\n\r\n", Framing::None)
        );
        let (h, _) = head_of(
            304,
            &[("date", "D"), ("content-length", "7")],
            crate::body::empty(),
            false,
        );
        assert_eq!(
            h,
            "HTTP/1.1 304 Not Modified\r\ndate: D\r\ncontent-length: 7\r\n\r\n"
        );
        // Unknown length: chunked.
        let (h, f) = head_of(200, &[("date", "D")], Unsized.boxed(), false);
        assert_eq!(
            h,
            "HTTP/1.1 200 OK\r\ndate: D\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        assert_eq!(f, Framing::Chunked);
    }

    /// An empty body that does not say its length.
    struct Unsized;

    impl http_body::Body for Unsized {
        type Data = Bytes;
        type Error = crate::body::BoxError;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            Poll::Ready(None)
        }
    }
}
