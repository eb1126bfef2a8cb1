//! HTTP/1.1 to plain-TCP upstreams, written and read by the request's own
//! task.
//!
//! hyper's client connection runs in a task of its own and exchanges each
//! request and response with the caller through channels: a proxied request
//! paid for a channel send, a oneshot, two more task wake-ups and the
//! connection task's polls (callgrind: about 14,000 of the 45,000
//! instructions of a proxied GET). Here the task that handles the request
//! writes the request head (and body) on the connection, parses the
//! response head with `httparse` (what hyper uses) and hands back a body
//! that reads the rest from the same connection; at the body's end the
//! connection goes back to the pool. TLS targets, HTTP/2 and upgrades keep
//! hyper's connections ([`crate::pool`]).
//!
//! Framing follows RFC 9112: the request body is sent with the length it is
//! known to have, else chunked (§7.1); the response body's length is decided
//! as §6.3 says, and a response with both `Transfer-Encoding` and
//! `Content-Length` is refused (§6.3 ¶3: a sign of response smuggling), as
//! is a `Content-Length` that is not one number (§8.6). A connection is
//! reused only after an HTTP/1.1 response read to its end without
//! `Connection: close` (§9.3, §9.6).

use crate::body::{Body, BoxError};
use bytes::{Buf as _, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, HeaderName, HeaderValue, TRANSFER_ENCODING};
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body::{Body as _, Frame, SizeHint};
use std::future::poll_fn;
use std::io::{self, Write as _};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Longest response head accepted (status line and headers).
const MAX_HEAD: usize = 64 << 10;

/// Most response headers accepted.
const MAX_HEADERS: usize = 128;

/// Longest chunk-size line (with extensions) accepted.
const MAX_CHUNK_LINE: usize = 4096;

/// Request body bytes gathered before they are written.
const WRITE_BATCH: usize = 64 << 10;

/// A request body piece at least this large is written as it is.
const DIRECT_WRITE: usize = 16 << 10;

/// The request buffer's capacity kept while a connection is idle.
const KEEP_OUT: usize = 8 << 10;

/// Largest header map (in fields it holds without growing) a connection
/// keeps between exchanges.
const SPARE_MAX: usize = 96;

/// A connection's header map kept, emptied, between exchanges: the next
/// head is read into it instead of a new map (upstream answers here, client
/// requests in `inbound`).
#[derive(Debug, Default)]
pub(crate) struct SpareMap(HeaderMap);

impl SpareMap {
    /// The kept map if it holds `room` fields without growing, else a new
    /// one that does.
    pub(crate) fn take(&mut self, room: usize) -> HeaderMap {
        if self.0.capacity() >= room {
            std::mem::take(&mut self.0)
        } else {
            HeaderMap::with_capacity(room)
        }
    }

    /// Keeps `headers`, emptied, when larger than the map kept (and not
    /// past [`SPARE_MAX`] fields).
    pub(crate) fn keep(&mut self, mut headers: HeaderMap) {
        if headers.capacity() <= SPARE_MAX && headers.capacity() > self.0.capacity() {
            headers.clear();
            self.0 = headers;
        }
    }
}

/// Read buffer size (grows while a head is longer).
const READ_CHUNK: usize = 8 << 10;

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The connection ended before any byte of a response. On a reused
    /// connection the upstream may have closed it while it was idle.
    #[error("the connection closed before a response")]
    Closed,
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The response head is not HTTP/1.1 (RFC 9112 §2-§6).
    #[error("invalid response from the upstream: {0}")]
    Invalid(&'static str),
    /// The request body failed while it was being sent.
    #[error("the request body failed: {0}")]
    Body(BoxError),
}

/// An HTTP/1.1 connection to an upstream, idle between exchanges.
pub struct Conn {
    stream: TcpStream,
    /// Bytes read and not yet used (none while idle).
    buf: BytesMut,
    /// The request head is written here (kept: its capacity is reused).
    out: Vec<u8>,
    /// Has carried an exchange before.
    reused: bool,
    /// The last request's header map, emptied: the next answer's head is
    /// read into it (no map allocated per exchange).
    spare: SpareMap,
}

/// How an exchange failed.
pub enum Failure {
    /// Nothing was written (the first write failed before any of the body
    /// was taken): the request, to be sent on another connection.
    Unsent(Box<Request<Body>>, io::Error),
    /// The connection had carried an exchange before and ended before any
    /// byte of a response: the upstream may have closed it while idle, so an
    /// idempotent request may go again (RFC 9112 §9.3.1). The request comes
    /// back when it had no body (nothing of it was consumed).
    Stale(Error, Option<Box<Request<Body>>>),
    /// The exchange failed after it began.
    Failed(Error),
}

// `Debug` by hand: the buffers hold request heads (`Authorization`) and
// `Failure::Unsent` a whole request; neither may reach a log.
impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("peer", &self.stream.peer_addr().ok())
            .field("reused", &self.reused)
            .field("buffered", &self.buf.len())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unsent(_, e) => f.debug_tuple("Unsent").field(e).finish_non_exhaustive(),
            Failure::Stale(e, _) => f.debug_tuple("Stale").field(e).finish_non_exhaustive(),
            Failure::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
        }
    }
}

impl Conn {
    /// A connection over `stream` (connected, `TCP_NODELAY` set).
    pub fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            buf: BytesMut::new(),
            out: Vec::new(),
            reused: false,
            spare: SpareMap::default(),
        }
    }

    /// Whether an idle connection can take a request: the upstream has not
    /// closed it and sent nothing unasked (a byte here would be read as the
    /// next response's).
    pub fn is_usable(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Sends `req` (origin-form URI, `Host` set) and reads the response
    /// head; the [`Reader`] has the connection and reads the body.
    pub async fn send(mut self, req: Request<Body>) -> Result<(Response<()>, Reader), Failure> {
        let head_request = req.method() == Method::HEAD;
        let reused = std::mem::replace(&mut self.reused, true);
        let out_framing = self.write_head(&req);
        let (parts, mut body) = req.into_parts();
        // Let the other requests that are ready parse first, so that the
        // upstream gets this tick's requests together: each write wakes the
        // upstream, and a woken upstream on the same CPU preempts the
        // gateway to answer what it has. Writing at once, one request at a
        // time, raised the gateway's involuntary context switches from 0.48
        // to 0.74 per request (bench/run.sh scenario B, /proc/PID/status);
        // with this yield they are 0.47, and the CPU per request 9% lower
        // than through hyper's client.
        tokio::task::yield_now().await;
        if body.is_end_stream() {
            // Small requests (every GET) go in one write.
            match out_framing {
                OutFraming::Chunked => self.out.extend_from_slice(b"0\r\n\r\n"),
                OutFraming::Length(0) | OutFraming::Empty => {}
                OutFraming::Length(_) => {
                    return Err(Failure::Failed(Error::Invalid(
                        "the request body ended before its length",
                    )));
                }
            }
            if let Err(e) = self.stream.write_all(&self.out).await {
                return Err(Failure::Unsent(
                    Box::new(Request::from_parts(parts, body)),
                    e,
                ));
            }
            self.out.clear();
            if self.out.capacity() > KEEP_OUT {
                self.out = Vec::new();
            }
            // The request is kept until the answer begins: it goes back to
            // the caller if the connection turns out stale.
            return match self.read_head(head_request).await {
                Ok((resp, framing, keep_alive)) => {
                    self.spare.keep(parts.headers);
                    Ok((resp, self.into_reader(framing, keep_alive)))
                }
                Err(Error::Closed) if reused => Err(Failure::Stale(
                    Error::Closed,
                    Some(Box::new(Request::from_parts(parts, body))),
                )),
                Err(e) => Err(Failure::Failed(e)),
            };
        } else {
            let mut sent_any = false;
            let mut left = match out_framing {
                OutFraming::Length(n) => Some(n),
                _ => None,
            };
            let chunked = out_framing == OutFraming::Chunked;
            loop {
                // What is gathered goes out as soon as the body has nothing
                // more at once: a streamed body is not held back.
                let frame =
                    match poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await {
                        Poll::Ready(frame) => frame,
                        Poll::Pending => {
                            if !self.out.is_empty()
                                && let Some((resp, framing)) =
                                    self.flush(&[], &mut sent_any, reused, head_request).await?
                            {
                                return Ok((resp, self.into_reader(framing, false)));
                            }
                            poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
                        }
                    };
                let ended = frame.is_none();
                let data = match frame {
                    None => None,
                    Some(Err(e)) => return Err(Failure::Failed(Error::Body(e))),
                    // Trailers are dropped: few upstreams read them.
                    Some(Ok(frame)) => frame.into_data().ok(),
                };
                if let Some(data) = data.filter(|d| !d.is_empty()) {
                    // The length sent in the head is the length sent: more
                    // would be read as another request (RFC 9112 §6.2).
                    if let Some(l) = left.as_mut() {
                        *l = l.checked_sub(data.len() as u64).ok_or(Failure::Failed(
                            Error::Invalid("the request body is longer than its length"),
                        ))?;
                    }
                    if chunked {
                        let _ = write!(self.out, "{:x}\r\n", data.len());
                    }
                    if data.len() >= DIRECT_WRITE {
                        // Large pieces are written as they are, not copied.
                        if let Some((resp, framing)) = self
                            .flush(&data, &mut sent_any, reused, head_request)
                            .await?
                        {
                            return Ok((resp, self.into_reader(framing, false)));
                        }
                    } else {
                        self.out.extend_from_slice(&data);
                    }
                    if chunked {
                        self.out.extend_from_slice(b"\r\n");
                    }
                }
                let end = ended || body.is_end_stream();
                if end {
                    if chunked {
                        self.out.extend_from_slice(b"0\r\n\r\n");
                    }
                    if left.is_some_and(|l| l > 0) {
                        return Err(Failure::Failed(Error::Invalid(
                            "the request body ended before its length",
                        )));
                    }
                }
                if (end || self.out.len() >= WRITE_BATCH)
                    && let Some((resp, framing)) =
                        self.flush(&[], &mut sent_any, reused, head_request).await?
                {
                    return Ok((resp, self.into_reader(framing, false)));
                }
                if end {
                    break;
                }
            }
        }
        self.out.clear();
        // Not kept large while idle.
        if self.out.capacity() > KEEP_OUT {
            self.out = Vec::new();
        }
        match self.read_head(head_request).await {
            Ok((resp, framing, keep_alive)) => Ok((resp, self.into_reader(framing, keep_alive))),
            Err(Error::Closed) if reused => Err(Failure::Stale(Error::Closed, None)),
            Err(e) => Err(Failure::Failed(e)),
        }
    }

    /// Writes what `out` gathered, then `extra`. When a write fails, an
    /// upstream may have answered before reading the whole body (a 413, a
    /// 401) and stopped reading: that answer is the one to pass on (RFC 9112
    /// §9.5), on a connection not reused after it.
    async fn flush(
        &mut self,
        extra: &[u8],
        sent_any: &mut bool,
        reused: bool,
        head_request: bool,
    ) -> Result<Option<(Response<()>, Framing)>, Failure> {
        let mut written = self.stream.write_all(&self.out).await;
        self.out.clear();
        if written.is_ok() && !extra.is_empty() {
            written = self.stream.write_all(extra).await;
        }
        let Err(e) = written else {
            *sent_any = true;
            return Ok(None);
        };
        if (*sent_any || !reused)
            && let Ok((resp, framing, _)) = self.read_head(head_request).await
        {
            return Ok(Some((resp, framing)));
        }
        // Nothing went out on a connection that had been idle: lost to an
        // upstream that closed it (the body is partly taken, so only the
        // caller's rule for idempotent requests may send it again).
        if !*sent_any && reused {
            return Err(Failure::Stale(Error::Io(e), None));
        }
        Err(Failure::Failed(Error::Io(e)))
    }

    fn into_reader(self, framing: Framing, keep_alive: bool) -> Reader {
        Reader {
            conn: Some(self),
            framing,
            keep_alive,
            failed: false,
        }
    }

    /// The request head, in `self.out`, and how its body is framed.
    fn write_head(&mut self, req: &Request<Body>) -> OutFraming {
        let out = &mut self.out;
        out.clear();
        out.extend_from_slice(req.method().as_str().as_bytes());
        out.push(b' ');
        let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
        out.extend_from_slice(target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        for (name, value) in req.headers() {
            // Framing is this connection's to decide (RFC 9112 §6.1, §6.2).
            if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
                continue;
            }
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        let body = req.body();
        let had_length = req.headers().contains_key(CONTENT_LENGTH);
        let framing = match body.size_hint().exact() {
            // No body: a length only where one is expected (RFC 9110 §8.6:
            // a request without content need not say so).
            Some(0) if body.is_end_stream() => {
                if had_length || matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH)
                {
                    out.extend_from_slice(b"content-length: 0\r\n");
                }
                OutFraming::Empty
            }
            Some(n) => {
                let _ = write!(out, "content-length: {n}\r\n");
                OutFraming::Length(n)
            }
            None => {
                out.extend_from_slice(b"transfer-encoding: chunked\r\n");
                OutFraming::Chunked
            }
        };
        out.extend_from_slice(b"\r\n");
        framing
    }

    /// Reads until a final response head (1xx answers are skipped, RFC 9110
    /// §15.2) and decides how its body is framed.
    async fn read_head(
        &mut self,
        head_request: bool,
    ) -> Result<(Response<()>, Framing, bool), Error> {
        let mut received = false;
        loop {
            if !self.buf.is_empty() {
                received = true;
                if let Some(done) = self.parse_head(head_request)? {
                    match done {
                        Parsed::Interim => continue,
                        Parsed::Final(resp, framing, keep_alive) => {
                            return Ok((resp, framing, keep_alive));
                        }
                    }
                }
                if self.buf.len() > MAX_HEAD {
                    return Err(Error::Invalid("the response head is too large"));
                }
            }
            self.buf.reserve(READ_CHUNK);
            let n = match self.stream.read_buf(&mut self.buf).await {
                Ok(n) => n,
                // A reset before any byte of an answer is the same loss as a
                // close (an idle connection the upstream dropped).
                Err(e) if !received && is_lost(&e) => return Err(Error::Closed),
                Err(e) => return Err(e.into()),
            };
            if n == 0 {
                return Err(if received {
                    Error::Invalid("the connection closed inside the response head")
                } else {
                    Error::Closed
                });
            }
        }
    }

    /// Parses a complete head from the buffer; `None` while incomplete.
    fn parse_head(&mut self, head_request: bool) -> Result<Option<Parsed>, Error> {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut slots);
        let len = match parsed.parse(&self.buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Error::Invalid("too many response headers"));
            }
            Err(_) => return Err(Error::Invalid("the response head does not parse")),
        };
        let code = parsed.code.unwrap_or(0);
        let status =
            StatusCode::from_u16(code).map_err(|_| Error::Invalid("the status code is invalid"))?;
        if status.is_informational() {
            if status == StatusCode::SWITCHING_PROTOCOLS {
                return Err(Error::Invalid(
                    "a 101 answer to a request that asked no upgrade",
                ));
            }
            self.buf.advance(len);
            return Ok(Some(Parsed::Interim));
        }
        let http11 = parsed.version == Some(1);
        // Offsets into the head, so the values can share its bytes.
        let base = self.buf.as_ptr() as usize;
        let mut spans = Vec::with_capacity(parsed.headers.len());
        for h in parsed.headers.iter() {
            let name = HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|_| Error::Invalid("a header name is invalid"))?;
            let start = h.value.as_ptr() as usize - base;
            spans.push((name, start, start + h.value.len()));
        }
        let head = self.buf.split_to(len).freeze();
        // Room for the headers the gateway adds to an answer (request id,
        // rate limits): growing a map re-indexes every entry.
        let mut headers = self.spare.take(spans.len() + 6);
        for (name, start, end) in spans {
            let value = HeaderValue::from_maybe_shared(head.slice(start..end))
                .map_err(|_| Error::Invalid("a header value is invalid"))?;
            headers.append(name, value);
        }
        let framing = framing(&headers, status, head_request)?;
        let keep_alive = http11 && !has_token(&headers, "close") && framing != Framing::Close;
        let mut resp = Response::new(());
        *resp.status_mut() = status;
        *resp.version_mut() = if http11 {
            Version::HTTP_11
        } else {
            Version::HTTP_10
        };
        *resp.headers_mut() = headers;
        Ok(Some(Parsed::Final(resp, framing, keep_alive)))
    }
}

/// How a request body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutFraming {
    /// No body.
    Empty,
    /// `Content-Length`, this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

enum Parsed {
    Interim,
    Final(Response<()>, Framing, bool),
}

/// How a response body ends (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// This many bytes are left.
    Length(u64),
    /// Chunked, in this state.
    Chunked(Chunk),
    /// Until the connection closes.
    Close,
}

/// Where a chunked body's reader is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// At a chunk-size line.
    Size,
    /// Inside a chunk's data, this much left.
    Data(u64),
    /// At the CRLF after a chunk's data.
    DataEnd,
    /// In the trailer section, after the last chunk.
    Trailers,
    /// Read to the end.
    Done,
}

fn framing(h: &HeaderMap, status: StatusCode, head_request: bool) -> Result<Framing, Error> {
    // §6.3 ¶1: no content whatever the headers say.
    if head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok(Framing::Length(0));
    }
    let te = h.get_all(TRANSFER_ENCODING);
    if te.iter().next().is_some() {
        if h.contains_key(CONTENT_LENGTH) {
            return Err(Error::Invalid(
                "both Transfer-Encoding and Content-Length (RFC 9112 §6.3)",
            ));
        }
        // Chunked must be the final coding; otherwise the body runs to
        // the close (§6.3 ¶4).
        let last = te
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|c| !c.is_empty());
        return Ok(match last {
            Some(c) if c.eq_ignore_ascii_case("chunked") => Framing::Chunked(Chunk::Size),
            _ => Framing::Close,
        });
    }
    let mut length: Option<u64> = None;
    for v in h.get_all(CONTENT_LENGTH) {
        // A list of equal values is one value (RFC 9110 §8.6).
        for part in v.as_bytes().split(|&b| b == b',') {
            let part = part.trim_ascii();
            if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
                return Err(Error::Invalid("Content-Length is not a number"));
            }
            let n = std::str::from_utf8(part)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or(Error::Invalid("Content-Length is out of range"))?;
            if length.is_some_and(|l| l != n) {
                return Err(Error::Invalid("Content-Length values differ"));
            }
            length = Some(n);
        }
    }
    Ok(length.map_or(Framing::Close, Framing::Length))
}

/// True when the `Connection` header lists `token`.
fn has_token(h: &HeaderMap, token: &str) -> bool {
    h.get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Reads a response body from its connection; gives the connection back
/// through [`Reader::take_reusable`] once the body has been read to the
/// end on a connection that stays open.
#[derive(Debug)]
pub struct Reader {
    conn: Option<Conn>,
    framing: Framing,
    keep_alive: bool,
    failed: bool,
}

impl Reader {
    /// The connection, when the body has been read to its end and the
    /// connection can carry another exchange.
    pub fn take_reusable(&mut self) -> Option<Conn> {
        if self.is_done() && self.keep_alive && !self.failed {
            self.conn.take().filter(|c| c.buf.is_empty())
        } else {
            None
        }
    }

    /// The body has been read to its end.
    pub fn is_done(&self) -> bool {
        matches!(
            self.framing,
            Framing::Length(0) | Framing::Chunked(Chunk::Done)
        )
    }

    /// The body's size when known.
    pub fn size_hint(&self) -> SizeHint {
        match self.framing {
            Framing::Length(n) => SizeHint::with_exact(n),
            Framing::Chunked(Chunk::Done) => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }

    /// The next piece of the body.
    pub fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let polled = self.poll_data(cx);
        if let Poll::Ready(Some(Err(_))) = &polled {
            self.failed = true;
            self.conn = None;
        }
        polled.map(|o| o.map(|r| r.map(Frame::data)))
    }

    fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match self.framing {
                Framing::Length(0) => return Poll::Ready(None),
                Framing::Length(left) => {
                    if conn.buf.is_empty() {
                        match ready!(fill(conn, cx)) {
                            Ok(0) => {
                                return Poll::Ready(Some(Err(Error::Invalid(
                                    "the connection closed inside the body",
                                ))));
                            }
                            Ok(_) => {}
                            Err(e) => return Poll::Ready(Some(Err(e.into()))),
                        }
                    }
                    let n = take_len(conn.buf.len(), left);
                    self.framing = Framing::Length(left - n as u64);
                    return Poll::Ready(Some(Ok(conn.buf.split_to(n).freeze())));
                }
                Framing::Close => {
                    if conn.buf.is_empty() {
                        match ready!(fill(conn, cx)) {
                            Ok(0) => {
                                self.conn = None;
                                return Poll::Ready(None);
                            }
                            Ok(_) => {}
                            Err(e) => return Poll::Ready(Some(Err(e.into()))),
                        }
                    }
                    return Poll::Ready(Some(Ok(conn.buf.split().freeze())));
                }
                Framing::Chunked(state) => {
                    match chunk_step(&mut conn.buf, state) {
                        Ok(Step::Next(next, data)) => {
                            self.framing = Framing::Chunked(next);
                            if let Some(d) = data {
                                return Poll::Ready(Some(Ok(d)));
                            }
                            if next == Chunk::Done {
                                return Poll::Ready(None);
                            }
                            continue;
                        }
                        Ok(Step::NeedMore) => {}
                        Err(e) => return Poll::Ready(Some(Err(e))),
                    }
                    match ready!(fill(conn, cx)) {
                        Ok(0) => {
                            return Poll::Ready(Some(Err(Error::Invalid(
                                "the connection closed inside a chunked body",
                            ))));
                        }
                        Ok(_) => {}
                        Err(e) => return Poll::Ready(Some(Err(e.into()))),
                    }
                }
            }
        }
    }
}

/// `min(available, left)` as a buffer length.
fn take_len(available: usize, left: u64) -> usize {
    usize::try_from(left).map_or(available, |l| available.min(l))
}

enum Step {
    Next(Chunk, Option<Bytes>),
    NeedMore,
}

/// One step of chunked decoding (RFC 9112 §7.1) over what is buffered.
fn chunk_step(buf: &mut BytesMut, state: Chunk) -> Result<Step, Error> {
    match state {
        Chunk::Size => {
            let Some(eol) = find_crlf(buf) else {
                return if buf.len() > MAX_CHUNK_LINE {
                    Err(Error::Invalid("a chunk-size line is too long"))
                } else {
                    Ok(Step::NeedMore)
                };
            };
            let line = buf.get(..eol).unwrap_or_default();
            // chunk-size [ chunk-ext ]: the extensions are ignored (§7.1.1).
            let digits = line
                .split(|&b| b == b';')
                .next()
                .unwrap_or_default()
                .trim_ascii();
            if digits.is_empty() || digits.len() > 15 {
                return Err(Error::Invalid("a chunk size is invalid"));
            }
            let mut size = 0u64;
            for &d in digits {
                let v = (d as char)
                    .to_digit(16)
                    .ok_or(Error::Invalid("a chunk size is not hexadecimal"))?;
                size = size * 16 + u64::from(v);
            }
            buf.advance(eol + 2);
            Ok(Step::Next(
                if size == 0 {
                    Chunk::Trailers
                } else {
                    Chunk::Data(size)
                },
                None,
            ))
        }
        Chunk::Data(left) => {
            if buf.is_empty() {
                return Ok(Step::NeedMore);
            }
            let n = take_len(buf.len(), left);
            let data = buf.split_to(n).freeze();
            let rest = left - n as u64;
            Ok(Step::Next(
                if rest == 0 {
                    Chunk::DataEnd
                } else {
                    Chunk::Data(rest)
                },
                Some(data),
            ))
        }
        Chunk::DataEnd => {
            if buf.len() < 2 {
                return Ok(Step::NeedMore);
            }
            if buf.get(..2) != Some(b"\r\n".as_slice()) {
                return Err(Error::Invalid("a chunk does not end with CRLF"));
            }
            buf.advance(2);
            Ok(Step::Next(Chunk::Size, None))
        }
        Chunk::Trailers => {
            // Trailer fields are read and dropped, up to the empty line.
            let Some(eol) = find_crlf(buf) else {
                return if buf.len() > MAX_HEAD {
                    Err(Error::Invalid("the trailer section is too large"))
                } else {
                    Ok(Step::NeedMore)
                };
            };
            buf.advance(eol + 2);
            Ok(Step::Next(
                if eol == 0 {
                    Chunk::Done
                } else {
                    Chunk::Trailers
                },
                None,
            ))
        }
        Chunk::Done => Ok(Step::Next(Chunk::Done, None)),
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

/// Reads more into the connection's buffer.
fn fill(conn: &mut Conn, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
    loop {
        conn.buf.reserve(READ_CHUNK);
        match conn.stream.try_read_buf(&mut conn.buf) {
            Ok(n) => return Poll::Ready(Ok(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                ready!(conn.stream.poll_read_ready(cx))?;
            }
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

/// An I/O error that means the peer is gone.
fn is_lost(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(s: &[u8]) -> BytesMut {
        BytesMut::from(s)
    }

    /// Decodes a whole chunked body, or fails.
    fn dechunk(input: &[u8]) -> Result<Vec<u8>, Error> {
        let mut b = buf(input);
        let mut state = Chunk::Size;
        let mut out = Vec::new();
        loop {
            match chunk_step(&mut b, state)? {
                Step::Next(next, data) => {
                    if let Some(d) = data {
                        out.extend_from_slice(&d);
                    }
                    state = next;
                    if state == Chunk::Done {
                        return Ok(out);
                    }
                }
                Step::NeedMore => return Err(Error::Invalid("incomplete")),
            }
        }
    }

    #[test]
    fn chunked_bodies_decode() {
        assert_eq!(
            dechunk(b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nX-T: 1\r\n\r\n").unwrap(),
            b"Wikipedia"
        );
        assert_eq!(dechunk(b"0\r\n\r\n").unwrap(), b"");
        assert_eq!(
            dechunk(b"A\r\n0123456789\r\n0\r\n\r\n").unwrap(),
            b"0123456789"
        );
    }

    #[test]
    fn bad_chunked_bodies_fail() {
        for bad in [
            b"x\r\nab\r\n0\r\n\r\n".as_slice(),
            b"2\r\nabc\r\n0\r\n\r\n",
            b"\r\n",
            b"1000000000000000\r\n",
            b"4\r\nWiki",
        ] {
            assert!(dechunk(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn response_framing_follows_rfc_9112() {
        let ok = StatusCode::OK;
        let f = |pairs: &[(&str, &str)]| framing(&headers(pairs), ok, false);
        assert_eq!(f(&[("content-length", "12")]).unwrap(), Framing::Length(12));
        assert_eq!(
            f(&[("content-length", "7, 7")]).unwrap(),
            Framing::Length(7)
        );
        assert_eq!(
            f(&[("content-length", "7"), ("content-length", "7")]).unwrap(),
            Framing::Length(7)
        );
        assert!(f(&[("content-length", "7, 8")]).is_err());
        assert!(f(&[("content-length", "-1")]).is_err());
        assert!(f(&[("content-length", "+7")]).is_err());
        assert!(f(&[("content-length", "")]).is_err());
        assert_eq!(
            f(&[("transfer-encoding", "gzip, chunked")]).unwrap(),
            Framing::Chunked(Chunk::Size)
        );
        assert_eq!(f(&[("transfer-encoding", "gzip")]).unwrap(), Framing::Close);
        assert!(f(&[("transfer-encoding", "chunked"), ("content-length", "3")]).is_err());
        assert_eq!(f(&[]).unwrap(), Framing::Close);
        let h = headers(&[("content-length", "12")]);
        assert_eq!(framing(&h, ok, true).unwrap(), Framing::Length(0));
        assert_eq!(
            framing(&h, StatusCode::NOT_MODIFIED, false).unwrap(),
            Framing::Length(0)
        );
        assert_eq!(
            framing(&h, StatusCode::NO_CONTENT, false).unwrap(),
            Framing::Length(0)
        );
    }
}
