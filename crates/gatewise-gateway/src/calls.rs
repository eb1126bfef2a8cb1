//! The call record of each request: built along the request path (route,
//! policy steps, upstream), finished when the response body has been sent
//! (or the client went away), and handed to a [`CallSink`] that never
//! blocks.
//!
//! Nothing secret is kept: headers go through
//! [`gatewise_core::calllog::mask_headers`], the token only as its
//! fingerprint, the query string only when configured (and then with secret
//! parameters masked).

use crate::auth::{BearerHash, Principal};
use crate::body::{Body, BoxError};
use crate::proxy::Peer;
use bytes::Bytes;
use gatewise_core::calllog::{
    CallRecord, FindingRef, MaskedHeaders, Outcome, Step, TraceStep, mask_headers,
    mask_request_headers_hashed, record_path,
};
use gatewise_core::secret;
use http::{HeaderMap, HeaderValue};
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt as _;
use std::borrow::Cow;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::time::Instant;

/// Where finished call records go. Implementations must not block: the
/// request path calls this (the store's `RecordSender` queues or spools).
pub trait CallSink: Send + Sync + 'static {
    /// Takes one finished record (by reference: the store encodes it
    /// where it is, and the request's thread frees it).
    fn record(&self, record: &CallRecord);
}

/// Call logging as the gateway runs it.
#[derive(Clone)]
pub struct CallLogging {
    sink: Arc<dyn CallSink>,
    keep_query: bool,
    trace_sample_ratio: f64,
}

/// The gateway's place in a request's trace (W3C Trace Context §3.2): the
/// trace, the gateway's own span, the client's span when it sent one, and
/// whether the trace is sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TraceContext {
    /// The trace id (the client's, or new).
    pub(crate) trace_id: [u8; 16],
    /// The gateway's span id, sent upstream as the `parent-id`.
    pub(crate) span_id: [u8; 8],
    /// The client's span id, when its `traceparent` was valid.
    pub(crate) parent_id: Option<[u8; 8]>,
    /// The `sampled` flag (§3.2.2.5).
    pub(crate) sampled: bool,
}

impl std::fmt::Debug for CallLogging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallLogging")
            .field("keep_query", &self.keep_query)
            .field("trace_sample_ratio", &self.trace_sample_ratio)
            .finish_non_exhaustive()
    }
}

impl CallLogging {
    /// Records go to `sink`; query strings are kept in recorded paths only
    /// when `keep_query` (`call_log.keep_query`).
    pub fn new(sink: Arc<dyn CallSink>, keep_query: bool) -> Self {
        CallLogging {
            sink,
            keep_query,
            trace_sample_ratio: 1.0,
        }
    }

    /// Traces the gateway starts (the client sent no valid `traceparent`)
    /// are sampled with this probability (0 to 1; default 1): OpenTelemetry's
    /// `TraceIdRatioBased` rule over the new trace id. A client's `sampled`
    /// flag is always followed.
    pub fn with_trace_sample_ratio(mut self, ratio: f64) -> Self {
        self.trace_sample_ratio = if ratio.is_nan() {
            1.0
        } else {
            ratio.clamp(0.0, 1.0)
        };
        self
    }

    /// The sampling ratio for traces the gateway starts.
    pub fn trace_sample_ratio(&self) -> f64 {
        self.trace_sample_ratio
    }

    /// Starts the record of a request that arrived at `started` (the
    /// gateway's own reading of the clock for the request, not read again).
    pub(crate) fn begin<B>(
        &self,
        parts: &http::Request<B>,
        peer: &Peer,
        request_id: &str,
        start_ms: u64,
        started: Instant,
    ) -> Pending {
        let pq = parts.uri().path_and_query().map_or("/", |p| p.as_str());
        let mut record = CallRecord::new(
            request_id,
            start_ms,
            parts.method().as_str(),
            record_path(pq, self.keep_query),
        );
        record.client_ip = Some(peer.addr.ip());
        record.bytes_in = content_length(parts.headers()).unwrap_or(0);
        // Refused requests get a fingerprint too (the policy may not have
        // got as far as a principal): the same digits the masked header
        // shows. The token is hashed once per request: the masked header,
        // the record's fingerprint and the route's verified-token cache key
        // (`auth`) all use this digest.
        let bearer = crate::auth::bearer_hash(parts.headers());
        let (headers, fingerprint) = mask_request_headers_hashed(
            parts
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str(), header_text(v))),
            bearer.as_ref(),
        );
        record.request_headers = headers;
        record.token_fingerprint = fingerprint;
        Pending {
            record: Box::new(record),
            started,
            upstream_started: None,
            bearer,
            principal: None,
            sink: Arc::clone(&self.sink),
            sent: false,
        }
    }
}

/// When a step starts, if the request is being recorded.
pub(crate) fn mark(call: &Option<Pending>) -> Option<Instant> {
    call.as_ref().map(|_| Instant::now())
}

/// When the request arrived, if it is being recorded: the start of its
/// first step (routing begins at once; no second clock reading).
pub(crate) fn arrival(call: &Option<Pending>) -> Option<Instant> {
    call.as_ref().map(|p| p.started)
}

/// Adds a step to the decision trace of a recorded request. Returns when
/// the step ended (the clock is read once): the start of the next step.
pub(crate) fn note(
    call: &mut Option<Pending>,
    since: Option<Instant>,
    step: Step,
    outcome: Outcome,
    reason: Option<&str>,
) -> Option<Instant> {
    let (Some(p), Some(t)) = (call.as_mut(), since) else {
        return None;
    };
    let now = Instant::now();
    p.step_at(step, outcome, reason, t, now);
    Some(now)
}

/// Adds a refused or failed step with the operator's detail. Returns when
/// the step ended.
pub(crate) fn note_denial(
    call: &mut Option<Pending>,
    since: Option<Instant>,
    step: Step,
    outcome: Outcome,
    denial: &crate::problem::Denial,
) -> Option<Instant> {
    let (Some(p), Some(t)) = (call.as_mut(), since) else {
        return None;
    };
    let now = Instant::now();
    p.step_at(step, outcome, Some(denial.reason), t, now);
    if let Some(last) = p.record.trace.last_mut() {
        last.detail = Some(denial.detail.clone());
    }
    Some(now)
}

/// A record under construction.
pub(crate) struct Pending {
    /// Boxed: the record (over 600 bytes) would otherwise be copied at
    /// every move of the pending call (into the request's future, the
    /// response body, its box) and make each of them that much bigger.
    pub(crate) record: Box<CallRecord>,
    started: Instant,
    upstream_started: Option<Instant>,
    /// The `Authorization` bearer token and its SHA-256 (hashed once).
    bearer: Option<BearerHash>,
    /// Who the token says the caller is: moved into the record when it is
    /// handed over (the request path borrows it until then; no copies).
    principal: Option<Principal>,
    sink: Arc<dyn CallSink>,
    /// Handed to the sink already (finished, or dropped unfinished).
    sent: bool,
}

impl Pending {
    /// The request's `Authorization` bearer token with its SHA-256, when it
    /// has one: the verified-token cache uses the digest instead of hashing
    /// the token again.
    pub(crate) fn bearer(&self) -> Option<&BearerHash> {
        self.bearer.as_ref()
    }

    /// The request's place in its trace (the client's `traceparent`, or
    /// the trace the gateway started).
    pub(crate) fn trace(&mut self, trace: &TraceContext) {
        let r = &mut self.record;
        r.trace_id = Some(hex(&trace.trace_id));
        r.span_id = Some(hex(&trace.span_id));
        r.parent_span_id = trace.parent_id.as_ref().map(|p| hex(p));
        r.sampled = Some(trace.sampled);
    }

    /// The request's principal; the record takes it when it is finished.
    pub(crate) fn set_principal(&mut self, p: Principal) {
        self.principal = Some(p);
    }

    /// The principal given to [`Pending::set_principal`].
    pub(crate) fn principal(&self) -> Option<&Principal> {
        self.principal.as_ref()
    }

    /// Adds a step to the decision trace; `since` is when the step began.
    pub(crate) fn step(
        &mut self,
        step: Step,
        outcome: Outcome,
        reason: Option<&str>,
        since: Instant,
    ) {
        self.step_at(step, outcome, reason, since, Instant::now());
    }

    /// Adds a step that began at `since` and ended at `now` (a clock
    /// reading the caller has already made).
    pub(crate) fn step_at(
        &mut self,
        step: Step,
        outcome: Outcome,
        reason: Option<&str>,
        since: Instant,
        now: Instant,
    ) {
        let micros =
            u32::try_from(now.saturating_duration_since(since).as_micros()).unwrap_or(u32::MAX);
        let mut s = TraceStep::new(step, outcome, micros);
        s.reason = reason.map(str::to_owned);
        self.record.trace.push(s);
    }

    /// Adds a step with a detail for the operator.
    pub(crate) fn step_detail(
        &mut self,
        step: Step,
        outcome: Outcome,
        reason: Option<&str>,
        detail: String,
        since: Instant,
    ) {
        self.step(step, outcome, reason, since);
        if let Some(last) = self.record.trace.last_mut() {
            last.detail = Some(detail);
        }
    }

    /// The request is about to go, at `at`, to `addr` of upstream `name`.
    pub(crate) fn upstream(&mut self, name: &str, addr: &str, at: Instant) {
        self.record.upstream = Some(name.to_owned());
        self.record.upstream_addr = Some(addr.to_owned());
        self.upstream_started.get_or_insert(at);
    }

    /// The upstream's response head arrived at `now`.
    pub(crate) fn first_byte(&mut self, now: Instant) {
        if let Some(t) = self.upstream_started {
            self.record.upstream_first_byte_us = Some(micros(now.saturating_duration_since(t)));
        }
    }

    /// Findings of the exchange inspector.
    pub(crate) fn findings(&mut self, findings: &[gatewise_core::Finding]) {
        self.record
            .findings
            .extend(findings.iter().map(FindingRef::from));
    }

    /// Finishes a response whose body is still to be sent: the record is
    /// completed and handed over when the body ends or is dropped.
    pub(crate) fn finish_with_body(
        mut self,
        status: http::StatusCode,
        headers: &HeaderMap,
        body: Body,
    ) -> Body {
        self.record.status = status.as_u16();
        self.record.response_headers = masked(headers);
        if body.is_end_stream() {
            self.finish(0, false);
            return body;
        }
        Recorded {
            inner: body,
            bytes: 0,
            pending: Some(self),
        }
        .boxed()
    }

    fn finish(&mut self, bytes_out: u64, aborted: bool) {
        if self.sent {
            return;
        }
        self.sent = true;
        let r = &mut self.record;
        r.bytes_out = bytes_out;
        // One reading of the clock for both durations.
        let now = Instant::now();
        r.total_us = micros(now.saturating_duration_since(self.started));
        if let Some(t) = self.upstream_started {
            r.upstream_total_us = Some(micros(now.saturating_duration_since(t)));
        }
        if let Some(p) = self.principal.take() {
            principal(r, &p);
        }
        if aborted {
            r.trace.push(TraceStep {
                detail: Some(format!(
                    "the response body ended early after {bytes_out} bytes (client gone or upstream failed)"
                )),
                ..TraceStep::new(Step::Other("response_body".into()), Outcome::Error, 0)
            });
        }
        self.sink.record(r);
    }
}

impl Drop for Pending {
    /// A request whose handling was abandoned before the response head
    /// was ready (the client closed the connection): recorded as status
    /// 499 with reason `client-closed`, as nginx logs it, so that no call
    /// goes unrecorded.
    fn drop(&mut self) {
        if self.sent {
            return;
        }
        if self.record.status == 0 {
            self.record.status = 499;
            self.record
                .reason
                .get_or_insert_with(|| "client-closed".to_owned());
            self.record.trace.push(TraceStep {
                detail: Some(
                    "the client closed the connection before the response was ready".into(),
                ),
                ..TraceStep::new(Step::Other("client_closed".into()), Outcome::Error, 0)
            });
        }
        self.finish(0, false);
    }
}

/// Fills the principal's part of a record (copies: the principal's
/// identity is shared with the verified-token cache).
fn principal(record: &mut CallRecord, p: &Principal) {
    record.issuer = Some(p.issuer.clone());
    record.kid.clone_from(&p.kid);
    record.client_id.clone_from(&p.client_id);
    record.sub.clone_from(&p.subject);
    record.scopes.clone_from(&p.scopes);
    if record.token_fingerprint.is_none() {
        // A token from a cookie or the query: the principal's fingerprint
        // is a longer prefix of the same SHA-256.
        let mut fingerprint = p.fingerprint();
        fingerprint.truncate(8);
        record.token_fingerprint = Some(fingerprint);
    }
}

/// A response body that counts what it passes and completes the record at
/// its end (or when dropped before it: the client went away).
struct Recorded {
    inner: Body,
    bytes: u64,
    pending: Option<Pending>,
}

impl http_body::Body for Recorded {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    self.bytes += d.len() as u64;
                }
                if self.inner.is_end_stream() {
                    let bytes = self.bytes;
                    if let Some(mut p) = self.pending.take() {
                        p.finish(bytes, false);
                    }
                }
            }
            Poll::Ready(None) => {
                let bytes = self.bytes;
                if let Some(mut p) = self.pending.take() {
                    p.finish(bytes, false);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                let bytes = self.bytes;
                if let Some(mut p) = self.pending.take() {
                    p.finish(bytes, true);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Recorded {
    fn drop(&mut self) {
        let bytes = self.bytes;
        if let Some(mut p) = self.pending.take() {
            p.finish(bytes, true);
        }
    }
}

/// The record of a request the gateway answered itself (a refusal).
pub(crate) fn refused(mut pending: Pending, reason: &str, resp: &http::Response<Body>) {
    pending.record.status = resp.status().as_u16();
    pending.record.reason = Some(reason.to_owned());
    pending.record.response_headers = masked(resp.headers());
    let len = resp.body().size_hint().exact().unwrap_or(0);
    pending.finish(len, false);
}

fn masked(h: &HeaderMap) -> MaskedHeaders {
    mask_headers(h.iter().map(|(n, v)| (n.as_str(), header_text(v))))
}

/// A header value as text: borrowed when it is UTF-8 (always, in practice:
/// `from_utf8` checks ASCII a word at a time), else with U+FFFD for the
/// bytes that are not (what `from_utf8_lossy` gives, at its cost).
fn header_text(v: &HeaderValue) -> Cow<'_, str> {
    match std::str::from_utf8(v.as_bytes()) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(v.as_bytes()),
    }
}

fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Lowercase hex, as trace ids are written (W3C Trace Context §3.2.2).
fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    secret::push_hex(&mut s, bytes);
    s
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatewise_core::calllog::token_fingerprint;

    #[test]
    fn masked_authorization_carries_the_fingerprint() {
        let token = "abc.def.ghi";
        let masked = secret::mask_authorization(&format!("Bearer {token}"));
        assert!(masked.contains(&token_fingerprint(token)), "{masked}");
    }

    #[test]
    fn header_text_is_lossless_for_utf8_and_lossy_otherwise() {
        let v = HeaderValue::from_static("Bearer abc");
        assert!(matches!(header_text(&v), Cow::Borrowed("Bearer abc")));
        let raw = HeaderValue::from_bytes(b"caf\xe9 ok").unwrap();
        assert_eq!(header_text(&raw), String::from_utf8_lossy(raw.as_bytes()));
        assert_eq!(header_text(&raw), "caf\u{fffd} ok");
    }

    #[test]
    fn ids_are_lowercase_hex() {
        assert_eq!(hex(&[0x00, 0xf0, 0x67, 0xaa]), "00f067aa");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn sample_ratio_is_clamped() {
        struct Nowhere;
        impl CallSink for Nowhere {
            fn record(&self, _: &CallRecord) {}
        }
        let l = CallLogging::new(Arc::new(Nowhere), false);
        assert_eq!(l.trace_sample_ratio(), 1.0);
        assert_eq!(
            l.clone().with_trace_sample_ratio(2.0).trace_sample_ratio(),
            1.0
        );
        assert_eq!(
            l.clone().with_trace_sample_ratio(-1.0).trace_sample_ratio(),
            0.0
        );
        assert_eq!(
            l.with_trace_sample_ratio(f64::NAN).trace_sample_ratio(),
            1.0
        );
    }
}
