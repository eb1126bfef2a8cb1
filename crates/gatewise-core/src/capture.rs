//! Captured HTTP exchanges: raw HTTP/1.x text (optionally a request, then the
//! response), HAR files, or a bare body.
//!
//! Parsing is lenient: CRLF or bare LF, folded header lines, curl's interim
//! responses (`100 Continue`, a proxy's `200 Connection established`). What is
//! odd about the framing is recorded as [`FramingIssue`]s for the diagnosis to
//! judge, never an error here. The raw bytes are kept so the doctor can show
//! what was really there.

use crate::media::{self, ContentCoding};

/// The largest capture the doctor reads by default (16 MiB).
pub const DEFAULT_MAX_INPUT: usize = 16 * 1024 * 1024;

/// An ordered, case-preserving header list (names compared case-insensitively).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// Builds a header list from name/value pairs.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        Headers(
            pairs
                .into_iter()
                .map(|(n, v)| (n.into(), v.into()))
                .collect(),
        )
    }

    /// The first value of `name`, case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// True when `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// All headers in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Number of header lines.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no headers.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn push(&mut self, name: String, value: String) {
        self.0.push((name, value));
    }

    fn append_to_last(&mut self, more: &str) {
        if let Some((_, v)) = self.0.last_mut() {
            v.push(' ');
            v.push_str(more.trim());
        }
    }
}

/// Something odd about how a message body was framed or encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FramingIssue {
    /// Fewer body bytes than `Content-Length` declares.
    ShortBody {
        /// Declared length.
        declared: usize,
        /// Bytes present in the capture.
        received: usize,
    },
    /// More body bytes than `Content-Length` declares (beyond trailing whitespace).
    LongBody {
        /// Declared length.
        declared: usize,
        /// Bytes present in the capture.
        received: usize,
    },
    /// `Content-Length` is not a number, or appears twice with different values.
    BadContentLength(String),
    /// Both `Transfer-Encoding: chunked` and `Content-Length` (RFC 9112 §6.3).
    ChunkedWithContentLength,
    /// The chunked stream ends without the terminating zero-length chunk.
    ChunkedUnterminated,
    /// A chunk-size line is not hexadecimal, or a chunk runs past the end.
    ChunkedMalformed {
        /// Byte offset in the wire body.
        offset: usize,
    },
    /// `Content-Encoding` names a coding the body could not be decoded with.
    ContentDecodingFailed {
        /// The coding named.
        coding: String,
        /// What the decoder said.
        error: String,
    },
    /// `Content-Encoding` names a coding the doctor does not know.
    UnknownContentCoding(String),
    /// A header line without a colon was skipped.
    MalformedHeaderLine {
        /// 1-based line number in the capture.
        line: usize,
        /// The line, cut to 80 characters.
        text: String,
    },
}

/// A message body: the bytes on the wire and the bytes after decoding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Body {
    /// The bytes as captured after the header block.
    pub wire: Vec<u8>,
    /// The payload after transfer decoding (chunked) and content decoding
    /// (gzip, deflate); equal to `wire` when neither applies.
    pub decoded: Vec<u8>,
    /// Content codings that were successfully removed, in order.
    pub decoded_codings: Vec<ContentCoding>,
    /// True when the capture tool had already decoded the body (HAR files).
    pub predecoded: bool,
    /// Framing and encoding oddities found while reading the body.
    pub issues: Vec<FramingIssue>,
}

/// A captured request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Method, e.g. `POST`.
    pub method: String,
    /// Request target as written (origin form or absolute URL).
    pub target: String,
    /// Protocol version, e.g. `HTTP/1.1`.
    pub version: String,
    /// Header lines.
    pub headers: Headers,
    /// Body.
    pub body: Body,
    /// 1-based line where the request starts in the capture.
    pub line: usize,
}

impl Request {
    /// The body's form parameters when it is `application/x-www-form-urlencoded`
    /// (or looks like it).
    pub fn form(&self) -> Vec<(String, String)> {
        let ct = self
            .headers
            .get("content-type")
            .map(media::MediaType::parse);
        let looks_form = self.body.decoded.contains(&b'=') && !self.body.decoded.starts_with(b"{");
        match ct {
            Some(mt) if mt.essence == "application/x-www-form-urlencoded" => {
                media::parse_form(&self.body.decoded)
            }
            _ if looks_form => media::parse_form(&self.body.decoded),
            _ => Vec::new(),
        }
    }

    /// One form parameter's value.
    pub fn form_value(&self, name: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The request URL's path, without query.
    pub fn path(&self) -> &str {
        let t = self.target.as_str();
        let after_authority = match t.find("://") {
            Some(i) => {
                let rest = t.get(i + 3..).unwrap_or("");
                rest.find('/').and_then(|j| rest.get(j..)).unwrap_or("/")
            }
            None => t,
        };
        after_authority
            .split(['?', '#'])
            .next()
            .unwrap_or(after_authority)
    }

    /// The absolute URL of the request when it can be known (absolute target,
    /// or origin form plus a `Host` header; the scheme is assumed https).
    pub fn url(&self) -> Option<String> {
        if self.target.contains("://") {
            return Some(self.target.clone());
        }
        let host = self.headers.get("host")?;
        Some(format!("https://{}{}", host.trim(), self.target))
    }
}

/// A captured response. `status` is `None` when the input was a bare body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Protocol version, e.g. `HTTP/1.1`; empty for a bare body.
    pub version: String,
    /// Status code; `None` for a bare body with no status line.
    pub status: Option<u16>,
    /// Reason phrase.
    pub reason: String,
    /// Header lines (empty for a bare body).
    pub headers: Headers,
    /// Body.
    pub body: Body,
    /// 1-based line where the response starts in the capture.
    pub line: usize,
}

impl Response {
    /// The parsed `Content-Type`, if present.
    pub fn media_type(&self) -> Option<media::MediaType> {
        self.headers
            .get("content-type")
            .map(media::MediaType::parse)
    }

    /// True when the capture had a status line and headers.
    pub fn has_head(&self) -> bool {
        self.status.is_some()
    }
}

/// One request/response pair (the request may be missing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// A short label: `response`, or `entry 3 (POST https://…/token)` for HAR.
    pub label: String,
    /// The request, when captured.
    pub request: Option<Request>,
    /// The response; `None` when only a request was captured.
    pub response: Option<Response>,
}

/// What kind of input the capture was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureKind {
    /// Raw HTTP/1.x text.
    Http,
    /// A HAR (HTTP Archive) file.
    Har,
    /// Neither: the whole input is one response body with unknown status and headers.
    BareBody,
    /// Nothing but whitespace.
    Empty,
}

/// A parsed capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// What the input was.
    pub kind: CaptureKind,
    /// The exchanges found, in order.
    pub exchanges: Vec<Exchange>,
    /// Issues with the capture itself (header lines skipped, HAR entries unreadable).
    pub issues: Vec<FramingIssue>,
}

/// Parses a capture. Never fails: anything unrecognisable becomes a bare body.
pub fn parse(input: &[u8]) -> Capture {
    if input.iter().all(u8::is_ascii_whitespace) {
        return Capture {
            kind: CaptureKind::Empty,
            exchanges: Vec::new(),
            issues: Vec::new(),
        };
    }
    if let Some(har) = crate::har::parse(input) {
        return har;
    }
    let start = input
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    let mut reader = Reader::new(input, start);
    match reader.peek_start_line() {
        StartLine::Other => bare_body(input),
        _ => reader.read_all(),
    }
}

fn bare_body(input: &[u8]) -> Capture {
    let body = Body {
        wire: input.to_vec(),
        decoded: input.to_vec(),
        ..Body::default()
    };
    Capture {
        kind: CaptureKind::BareBody,
        exchanges: vec![Exchange {
            label: "body".to_string(),
            request: None,
            response: Some(Response {
                version: String::new(),
                status: None,
                reason: String::new(),
                headers: Headers::default(),
                body,
                line: 1,
            }),
        }],
        issues: Vec::new(),
    }
}

enum StartLine {
    Request,
    Response,
    Other,
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(input: &'a [u8], pos: usize) -> Self {
        Reader { input, pos }
    }

    fn rest(&self) -> &'a [u8] {
        self.input.get(self.pos..).unwrap_or(&[])
    }

    fn line_number(&self, at: usize) -> usize {
        1 + self
            .input
            .get(..at)
            .map_or(0, |s| s.iter().filter(|&&b| b == b'\n').count())
    }

    /// The current line without its terminator, and the position after it.
    fn line_at(&self, at: usize) -> (&'a [u8], usize) {
        let rest = self.input.get(at..).unwrap_or(&[]);
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let line = rest.get(..i).unwrap_or(&[]);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                (line, at + i + 1)
            }
            None => (rest, self.input.len()),
        }
    }

    fn peek_start_line(&self) -> StartLine {
        let (line, _) = self.line_at(self.pos);
        classify_start_line(line)
    }

    fn skip_blank_lines(&mut self) {
        while self.pos < self.input.len() {
            let (line, next) = self.line_at(self.pos);
            if line.iter().all(u8::is_ascii_whitespace) {
                self.pos = next;
            } else {
                break;
            }
        }
    }

    /// Reads header lines up to and including the blank line.
    fn read_headers(&mut self, issues: &mut Vec<FramingIssue>) -> Headers {
        let mut headers = Headers::default();
        while self.pos < self.input.len() {
            let at = self.pos;
            let (line, next) = self.line_at(at);
            self.pos = next;
            if line.is_empty() {
                break;
            }
            let text = String::from_utf8_lossy(line);
            if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') && !headers.is_empty() {
                headers.append_to_last(&text);
                continue;
            }
            match text.split_once(':') {
                Some((name, value)) if !name.trim().is_empty() && !name.contains(' ') => {
                    headers.push(name.trim().to_string(), value.trim().to_string());
                }
                _ => issues.push(FramingIssue::MalformedHeaderLine {
                    line: self.line_number(at),
                    text: text.chars().take(80).collect(),
                }),
            }
        }
        headers
    }

    fn read_all(&mut self) -> Capture {
        let mut exchanges = Vec::new();
        let mut issues = Vec::new();
        let mut pending: Option<Request> = None;
        loop {
            self.skip_blank_lines();
            if self.pos >= self.input.len() {
                break;
            }
            let at = self.pos;
            let (line, next) = self.line_at(at);
            match classify_start_line(line) {
                StartLine::Request => {
                    if let Some(req) = pending.take() {
                        exchanges.push(request_only(req, exchanges.len()));
                    }
                    self.pos = next;
                    pending = Some(self.read_request(line, at, &mut issues));
                }
                StartLine::Response => {
                    self.pos = next;
                    let resp = self.read_response(line, at, &mut issues);
                    let Some(resp) = resp else { continue };
                    let n = exchanges.len();
                    exchanges.push(Exchange {
                        label: if n == 0 {
                            "response".to_string()
                        } else {
                            format!("response {}", n + 1)
                        },
                        request: pending.take(),
                        response: Some(resp),
                    });
                }
                StartLine::Other => {
                    // Text between messages that is neither: treat it as the
                    // previous response's trailing body would be guesswork, so
                    // stop here; it was already counted as that body.
                    break;
                }
            }
        }
        if let Some(req) = pending.take() {
            exchanges.push(request_only(req, exchanges.len()));
        }
        Capture {
            kind: CaptureKind::Http,
            exchanges,
            issues,
        }
    }

    fn read_request(&mut self, line: &[u8], at: usize, issues: &mut Vec<FramingIssue>) -> Request {
        let text = String::from_utf8_lossy(line);
        let mut parts = text.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let version = parts.next().unwrap_or_default().to_string();
        let headers = self.read_headers(issues);
        // The request body runs to the response's status line; Content-Length
        // is not trusted because captures are often re-typed or re-wrapped.
        let rest = self.rest();
        let end = find_status_line(rest, true).unwrap_or(rest.len());
        let raw = rest.get(..end).unwrap_or(&[]);
        let trimmed = trim_trailing_newlines(raw);
        self.pos += end;
        let body = Body {
            wire: trimmed.to_vec(),
            decoded: trimmed.to_vec(),
            ..Body::default()
        };
        Request {
            method,
            target,
            version,
            headers,
            body,
            line: self.line_number(at),
        }
    }

    fn read_response(
        &mut self,
        line: &[u8],
        at: usize,
        issues: &mut Vec<FramingIssue>,
    ) -> Option<Response> {
        let text = String::from_utf8_lossy(line);
        let mut parts = text.splitn(3, ' ');
        let version = parts.next().unwrap_or_default().to_string();
        let status = parts.next().and_then(|s| s.trim().parse::<u16>().ok());
        let reason = parts.next().unwrap_or_default().trim().to_string();
        let headers = self.read_headers(issues);
        // Interim responses (1xx) and a proxy's CONNECT answer carry no body
        // and precede the real response, as in `curl -i` output.
        let interim = status.is_some_and(|s| (100..200).contains(&s))
            || (status == Some(200)
                && reason
                    .to_ascii_lowercase()
                    .contains("connection established"));
        if interim {
            let mut probe = Reader::new(self.input, self.pos);
            probe.skip_blank_lines();
            if matches!(probe.peek_start_line(), StartLine::Response) {
                self.pos = probe.pos;
                return None;
            }
        }
        let body = self.read_response_body(&headers);
        Some(Response {
            version,
            status,
            reason,
            headers,
            body,
            line: self.line_number(at),
        })
    }

    fn read_response_body(&mut self, headers: &Headers) -> Body {
        let rest = self.rest();
        let mut body = Body::default();
        let chunked = headers
            .get_all("transfer-encoding")
            .any(|v| v.to_ascii_lowercase().contains("chunked"));
        let content_length = content_length(headers, &mut body.issues);
        // A later response in the same capture ends this body.
        let end = find_status_line(rest, false).unwrap_or(rest.len());
        let wire = rest.get(..end).unwrap_or(&[]);
        self.pos += end;
        let wire = if end < rest.len() {
            trim_trailing_newlines(wire)
        } else {
            wire
        };
        body.wire = wire.to_vec();
        let payload = if chunked {
            if content_length.is_some() {
                body.issues.push(FramingIssue::ChunkedWithContentLength);
            }
            dechunk(wire, &mut body.issues)
        } else if let Some(declared) = content_length {
            let received = wire.len();
            if received < declared {
                body.issues
                    .push(FramingIssue::ShortBody { declared, received });
                wire.to_vec()
            } else {
                let (head, tail) = wire.split_at(declared.min(wire.len()));
                if !tail.iter().all(u8::is_ascii_whitespace) {
                    body.issues
                        .push(FramingIssue::LongBody { declared, received });
                    wire.to_vec()
                } else {
                    head.to_vec()
                }
            }
        } else {
            wire.to_vec()
        };
        body.decoded = payload;
        decode_content(headers, &mut body);
        body
    }
}

fn request_only(req: Request, n: usize) -> Exchange {
    Exchange {
        label: if n == 0 {
            "request".to_string()
        } else {
            format!("request {}", n + 1)
        },
        request: Some(req),
        response: None,
    }
}

fn classify_start_line(line: &[u8]) -> StartLine {
    let text = String::from_utf8_lossy(line);
    let text = text.trim();
    if let Some(rest) = text.strip_prefix("HTTP/") {
        let mut it = rest.split_whitespace();
        let _version = it.next();
        if it
            .next()
            .is_some_and(|s| s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()))
        {
            return StartLine::Response;
        }
        return StartLine::Other;
    }
    let parts: Vec<&str> = text.split_whitespace().collect();
    let is_method = |m: &str| !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase());
    match parts.as_slice() {
        [m, _target, v] if is_method(m) && v.starts_with("HTTP/") => StartLine::Request,
        _ => StartLine::Other,
    }
}

/// Offset of the next line that starts a response (`HTTP/x NNN`) at a line
/// start; `at_start` allows one at offset 0 (a request with no body).
fn find_status_line(data: &[u8], at_start: bool) -> Option<usize> {
    let mut at = 0;
    while at < data.len() {
        let rest = data.get(at..).unwrap_or(&[]);
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let line = rest.get(..end).unwrap_or(&[]);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if (at > 0 || at_start) && matches!(classify_start_line(line), StartLine::Response) {
            return Some(at);
        }
        at += end + 1;
    }
    None
}

fn trim_trailing_newlines(data: &[u8]) -> &[u8] {
    let mut end = data.len();
    while end > 0 && matches!(data.get(end - 1), Some(b'\n' | b'\r')) {
        end -= 1;
    }
    data.get(..end).unwrap_or(&[])
}

fn content_length(headers: &Headers, issues: &mut Vec<FramingIssue>) -> Option<usize> {
    let values: Vec<&str> = headers.get_all("content-length").collect();
    let first = values.first()?;
    if values.iter().any(|v| v.trim() != first.trim()) {
        issues.push(FramingIssue::BadContentLength(values.join(", ")));
        return None;
    }
    match first.trim().parse::<usize>() {
        Ok(n) => Some(n),
        Err(_) => {
            issues.push(FramingIssue::BadContentLength((*first).to_string()));
            None
        }
    }
}

/// Decodes the chunked transfer coding (RFC 9112 §7.1), leniently: bare LF
/// line ends are accepted; a missing final chunk is recorded, not fatal.
fn dechunk(wire: &[u8], issues: &mut Vec<FramingIssue>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let rest = wire.get(at..).unwrap_or(&[]);
        if rest.iter().all(u8::is_ascii_whitespace) {
            issues.push(FramingIssue::ChunkedUnterminated);
            return out;
        }
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            issues.push(FramingIssue::ChunkedMalformed { offset: at });
            return out;
        };
        let size_line = String::from_utf8_lossy(rest.get(..nl).unwrap_or(&[]));
        let size_text = size_line.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            issues.push(FramingIssue::ChunkedMalformed { offset: at });
            return out;
        };
        at += nl + 1;
        if size == 0 {
            return out;
        }
        let Some(chunk) = wire.get(at..at.saturating_add(size)) else {
            issues.push(FramingIssue::ChunkedMalformed { offset: at });
            out.extend_from_slice(wire.get(at..).unwrap_or(&[]));
            issues.push(FramingIssue::ChunkedUnterminated);
            return out;
        };
        out.extend_from_slice(chunk);
        at += size;
        // Skip the CRLF (or LF) after the chunk data.
        if wire.get(at) == Some(&b'\r') {
            at += 1;
        }
        if wire.get(at) == Some(&b'\n') {
            at += 1;
        }
    }
}

/// Removes the content codings `Content-Encoding` names, last applied first.
fn decode_content(headers: &Headers, body: &mut Body) {
    let codings: Vec<String> = headers
        .get_all("content-encoding")
        .flat_map(|v| v.split(','))
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect();
    for name in codings.iter().rev() {
        let Some(coding) = ContentCoding::from_name(name) else {
            body.issues
                .push(FramingIssue::UnknownContentCoding(name.clone()));
            return;
        };
        match media::decompress(coding, &body.decoded) {
            Ok(plain) => {
                body.decoded = plain;
                body.decoded_codings.push(coding);
            }
            Err(error) => {
                body.issues.push(FramingIssue::ContentDecodingFailed {
                    coding: name.clone(),
                    error,
                });
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;
