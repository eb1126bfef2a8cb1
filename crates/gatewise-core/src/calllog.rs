//! The call record: what the gateway remembers of one request, for the call
//! log, its analytics and "diagnose this call".
//!
//! A [`CallRecord`] is a plain value. The gateway builds it when a request
//! ends and hands it to the store's writer (`gatewise-store`); nothing here
//! performs I/O. Secrets are masked *before* a record exists: headers only
//! enter a record through [`mask_headers`] (the [`MaskedHeaders`] type has no
//! other constructor), the token only as a [`token_fingerprint`], and a kept
//! query string through [`record_path`], which masks secret parameters.
//!
//! The record is versioned (`v`, currently [`RECORD_VERSION`]); a change of
//! meaning bumps it, new optional fields do not.

use core::net::IpAddr;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::finding::Finding;
use crate::secret;

/// The version of [`CallRecord`] this build writes.
pub const RECORD_VERSION: u8 = 1;

/// One request through the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    /// Record format version ([`RECORD_VERSION`] when built by this build).
    pub v: u8,
    /// When the request started, Unix milliseconds.
    pub start_ms: u64,
    /// The request id the gateway used (and returned in `X-Request-Id`).
    pub request_id: String,
    /// W3C trace id (32 lowercase hex digits), when the request was traced:
    /// the client's (from its `traceparent`) or one the gateway started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// The gateway's own span id in that trace (16 lowercase hex digits):
    /// the `parent-id` of the `traceparent` sent upstream (W3C Trace
    /// Context §3.2.2.4) and the id of the exported SERVER span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    /// The client's span id (the `parent-id` of the `traceparent` it sent),
    /// when it sent a valid one; `None` when the gateway started the trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    /// The `sampled` trace flag (W3C Trace Context §3.2.2.5): the client's,
    /// or the gateway's decision for a trace it started. Only sampled calls
    /// are exported as spans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampled: Option<bool>,
    /// The route that matched, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The upstream pool the request was sent to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// The address of the target within the pool (`host:port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_addr: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Request path, with the query string only when configured (see
    /// [`record_path`]). The record holds what it is given.
    pub path: String,
    /// Status sent to the client.
    pub status: u16,
    /// Request body bytes received from the client.
    #[serde(default)]
    pub bytes_in: u64,
    /// Response body bytes sent to the client.
    #[serde(default)]
    pub bytes_out: u64,
    /// Total time in the gateway, microseconds.
    #[serde(default)]
    pub total_us: u64,
    /// Time spent authenticating (JWT check or introspection), microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_us: Option<u64>,
    /// Time until the upstream's response head arrived, microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_first_byte_us: Option<u64>,
    /// Time until the upstream's response ended, microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_total_us: Option<u64>,
    /// The client's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<IpAddr>,
    /// Token issuer (`iss`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Key id the token was signed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// OAuth client (`client_id` or `azp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Subject (`sub`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Scopes the token carried.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// A hash prefix of the token ([`token_fingerprint`]), never the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_fingerprint: Option<String>,
    /// Stable reason code when the gateway refused or failed the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The decision trace: each policy step, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trace: Vec<TraceStep>,
    /// What the exchange inspector found.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<FindingRef>,
    /// Request headers, secrets masked.
    #[serde(default, skip_serializing_if = "MaskedHeaders::is_empty")]
    pub request_headers: MaskedHeaders,
    /// Response headers, secrets masked.
    #[serde(default, skip_serializing_if = "MaskedHeaders::is_empty")]
    pub response_headers: MaskedHeaders,
}

impl CallRecord {
    /// A record of the current version with the required parts; the rest
    /// empty, to be filled in by the caller.
    pub fn new(
        request_id: impl Into<String>,
        start_ms: u64,
        method: impl Into<String>,
        path: impl Into<String>,
    ) -> Self {
        CallRecord {
            v: RECORD_VERSION,
            start_ms,
            request_id: request_id.into(),
            trace_id: None,
            span_id: None,
            parent_span_id: None,
            sampled: None,
            route: None,
            upstream: None,
            upstream_addr: None,
            method: method.into(),
            path: path.into(),
            status: 0,
            bytes_in: 0,
            bytes_out: 0,
            total_us: 0,
            auth_us: None,
            upstream_first_byte_us: None,
            upstream_total_us: None,
            client_ip: None,
            issuer: None,
            kid: None,
            client_id: None,
            sub: None,
            scopes: Vec::new(),
            token_fingerprint: None,
            reason: None,
            trace: Vec::new(),
            findings: Vec::new(),
            request_headers: MaskedHeaders::default(),
            response_headers: MaskedHeaders::default(),
        }
    }

    /// True when the client got an error status (4xx or 5xx).
    pub fn is_error(&self) -> bool {
        self.status >= 400
    }
}

/// A policy step of the decision trace. Written as its name ([`Step::as_str`]);
/// a name this build does not know reads back as [`Step::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(from = "String")]
pub enum Step {
    /// Route matching.
    Route,
    /// The body size limit.
    BodyLimit,
    /// JWT validation (signature and claims).
    Jwt,
    /// Token introspection (RFC 7662).
    Introspection,
    /// Scope and claim requirements.
    Scope,
    /// Rate limiting.
    RateLimit,
    /// Forwarding to the upstream.
    Upstream,
    /// A step this build does not name (kept as written).
    Other(String),
}

impl Step {
    /// The step's name in records: `route`, `jwt`, `rate_limit`, ...
    pub fn as_str(&self) -> &str {
        match self {
            Step::Route => "route",
            Step::BodyLimit => "body_limit",
            Step::Jwt => "jwt",
            Step::Introspection => "introspection",
            Step::Scope => "scope",
            Step::RateLimit => "rate_limit",
            Step::Upstream => "upstream",
            Step::Other(s) => s,
        }
    }
}

impl From<String> for Step {
    fn from(s: String) -> Self {
        match s.as_str() {
            "route" => Step::Route,
            "body_limit" => Step::BodyLimit,
            "jwt" => Step::Jwt,
            "introspection" => Step::Introspection,
            "scope" => Step::Scope,
            "rate_limit" => Step::RateLimit,
            "upstream" => Step::Upstream,
            _ => Step::Other(s),
        }
    }
}

impl Serialize for Step {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl From<Step> for String {
    fn from(s: Step) -> Self {
        match s {
            Step::Other(s) => s,
            known => known.as_str().to_owned(),
        }
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The step passed.
    Ok,
    /// The step refused the request (a policy decision).
    Refused,
    /// The step failed (the gateway or a dependency could not decide).
    Error,
    /// The step did not apply.
    Skipped,
}

/// One step of the decision trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceStep {
    /// Which step.
    pub step: Step,
    /// How it ended.
    pub outcome: Outcome,
    /// Stable reason code, when refused or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A short human detail (no secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Time the step took, microseconds.
    #[serde(default)]
    pub micros: u32,
}

impl TraceStep {
    /// A step with its outcome and duration; no reason or detail.
    pub fn new(step: Step, outcome: Outcome, micros: u32) -> Self {
        TraceStep {
            step,
            outcome,
            reason: None,
            detail: None,
            micros,
        }
    }
}

/// A finding as the call log keeps it: which check, not its prose (the
/// catalogue has the words).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingRef {
    /// Rule id, e.g. `TR-04`.
    pub rule: String,
    /// Stable code, e.g. `token-access-token-missing`.
    pub code: String,
    /// `info`, `warn` or `error`.
    pub severity: String,
}

impl From<&Finding> for FindingRef {
    fn from(f: &Finding) -> Self {
        FindingRef {
            rule: f.rule.to_owned(),
            code: f.code.to_owned(),
            severity: f.severity.as_str().to_owned(),
        }
    }
}

/// Header pairs whose secrets are masked. The only ways to build one are
/// [`mask_headers`] and [`mask_request_headers`] (and reading back a stored
/// record, [`MaskedHeaders::from_stored`]).
///
/// Names and values live back to back in one string (two allocations per
/// header set, not two per header: every logged request builds two of
/// these). Serialized as a list of `[name, value]` pairs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MaskedHeaders {
    /// Names and values, back to back.
    text: String,
    /// Per pair: where its name ends and where its value ends in `text`.
    /// Inline up to [`INLINE_PAIRS`] pairs: a request's headers usually fit,
    /// so a set costs one allocation (the text), not two.
    ends: SmallVec<[(u32, u32); INLINE_PAIRS]>,
}

impl MaskedHeaders {
    fn with_capacity(pairs: usize, bytes: usize) -> Self {
        MaskedHeaders {
            text: String::with_capacity(bytes),
            ends: SmallVec::with_capacity(pairs),
        }
    }

    /// Appends a pair whose value the caller writes into `text` through
    /// `value` (already masked).
    fn push_with(&mut self, name: &str, value: impl FnOnce(&mut String)) {
        self.text.push_str(name);
        let name_end = self.text.len();
        value(&mut self.text);
        // Offsets past 4 GiB cannot happen: a header set that large is
        // refused long before (the text is the header section).
        self.ends.push((to_u32(name_end), to_u32(self.text.len())));
    }

    /// The pairs, in the order given.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&(n, v)| {
            let (n, v) = (n as usize, v as usize);
            let name = self.text.get(start..n).unwrap_or_default();
            let value = self.text.get(n..v).unwrap_or_default();
            start = v;
            (name, value)
        })
    }

    /// The value of the first header with this name (ASCII case ignored).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// True when there are no headers.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The number of pairs.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// The pairs, by value.
    pub fn into_vec(self) -> Vec<(String, String)> {
        self.iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect()
    }

    /// Pairs read back from a store that wrote a [`MaskedHeaders`]: they
    /// are masked already (masking again would hash the masks).
    pub fn from_stored<N: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut h = MaskedHeaders::default();
        for (n, v) in pairs {
            h.push_with(n.as_ref(), |t| t.push_str(v.as_ref()));
        }
        h
    }
}

impl Serialize for MaskedHeaders {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for MaskedHeaders {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<(String, String)>::deserialize(deserializer).map(MaskedHeaders::from_stored)
    }
}

/// Header pairs a [`MaskedHeaders`] holds without allocating.
const INLINE_PAIRS: usize = 12;

/// An offset in a header set's text, saturated (never reached: see
/// [`MaskedHeaders::push_with`]).
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// True when a header of this name carries a secret: `Authorization`,
/// `Proxy-Authorization`, `Cookie`, `Set-Cookie`, or a name containing
/// `token`, `secret`, `key` or `password` (case-insensitive): `X-Api-Key`,
/// `X-Client-Secret`, `X-Access-Token`, ...
///
/// Every header of every logged request comes through here: one pass over
/// the name, a comparison only where one of the words could start.
pub fn is_secret_header(name: &str) -> bool {
    // The everyday names, as hyper and HTTP/2 give them (lower case): no
    // scan needed.
    if matches!(
        name,
        "host"
            | "user-agent"
            | "accept"
            | "accept-encoding"
            | "accept-language"
            | "content-type"
            | "content-length"
            | "content-encoding"
            | "transfer-encoding"
            | "connection"
            | "date"
            | "server"
            | "vary"
            | "etag"
            | "cache-control"
            | "last-modified"
            | "location"
            | "x-request-id"
            | "x-forwarded-for"
            | "traceparent"
            | "tracestate"
    ) {
        return false;
    }
    let b = name.as_bytes();
    if b.eq_ignore_ascii_case(b"authorization")
        || b.eq_ignore_ascii_case(b"proxy-authorization")
        || b.eq_ignore_ascii_case(b"cookie")
        || b.eq_ignore_ascii_case(b"set-cookie")
    {
        return true;
    }
    (0..b.len()).any(|i| {
        let rest = b.get(i..).unwrap_or_default();
        let word: &[u8] = match rest.first().map(u8::to_ascii_lowercase) {
            Some(b't') => b"token",
            Some(b's') => b"secret",
            Some(b'k') => b"key",
            Some(b'p') => b"password",
            _ => return false,
        };
        rest.get(..word.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(word))
    })
}

/// A header value as the call log keeps it: the scheme of an
/// `Authorization` header, the cookie names of a `Cookie` header and the
/// attributes of a `Set-Cookie` header stay readable; every secret becomes
/// `«length, sha256 prefix»` ([`secret::mask`]). Other headers pass as they
/// are.
pub fn mask_header_value(name: &str, value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    if name.eq_ignore_ascii_case("authorization")
        || name.eq_ignore_ascii_case("proxy-authorization")
    {
        secret::push_masked_authorization::<&[u8]>(&mut out, value, None);
    } else {
        push_masked_value(&mut out, name, value);
    }
    out
}

/// [`mask_header_value`], appended to `out` (no allocation of its own:
/// every header of every logged request comes through here).
fn push_masked_value(out: &mut String, name: &str, value: &str) {
    // `eq_ignore_ascii_case` compares lengths first: a name that is none of
    // these costs a few length checks. The authorization names are handled
    // by the caller, with the bearer fingerprint.
    if name.eq_ignore_ascii_case("cookie") {
        for (i, c) in value.split(';').enumerate() {
            if i > 0 {
                out.push_str("; ");
            }
            push_masked_cookie_pair(out, c.trim());
        }
    } else if name.eq_ignore_ascii_case("set-cookie") {
        let mut parts = value.split(';');
        if let Some(c) = parts.next() {
            push_masked_cookie_pair(out, c.trim());
        }
        for a in parts {
            out.push_str("; ");
            out.push_str(a.trim());
        }
    } else if is_secret_header(name) {
        secret::push_mask(out, value);
    } else {
        out.push_str(value);
    }
}

fn push_masked_cookie_pair(out: &mut String, pair: &str) {
    match pair.split_once('=') {
        Some((name, value)) => {
            out.push_str(name.trim());
            out.push('=');
            secret::push_mask(out, value.trim());
        }
        None => secret::push_mask(out, pair),
    }
}

/// Headers as the call log keeps them: names as given, values masked by
/// [`mask_header_value`]. The gateway passes `(name, value)` pairs, e.g.
/// `headers.iter().map(|(n, v)| (n.as_str(), String::from_utf8_lossy(v.as_bytes())))`.
pub fn mask_headers<N, V>(headers: impl IntoIterator<Item = (N, V)>) -> MaskedHeaders
where
    N: AsRef<str>,
    V: AsRef<str>,
{
    mask_request_headers(headers).0
}

/// [`mask_headers`] for a request, also returning the fingerprint of a
/// `Bearer` credential in `Authorization` (the same 8 hex digits as
/// [`token_fingerprint`]), hashed once for both.
pub fn mask_request_headers<N, V>(
    headers: impl IntoIterator<Item = (N, V)>,
) -> (MaskedHeaders, Option<String>)
where
    N: AsRef<str>,
    V: AsRef<str>,
{
    mask_request_headers_hashed::<N, V, &[u8]>(headers, None)
}

/// [`mask_request_headers`] when the bearer token was hashed already (the
/// gateway hashes it once per request, for this and for its
/// verified-token cache): when the `Authorization` credential is
/// `bearer`'s secret, its digest is used instead of hashing again. The
/// result is the same as [`mask_request_headers`] gives.
pub fn mask_request_headers_hashed<N, V, S>(
    headers: impl IntoIterator<Item = (N, V)>,
    bearer: Option<&secret::Hashed<S>>,
) -> (MaskedHeaders, Option<String>)
where
    N: AsRef<str>,
    V: AsRef<str>,
    S: AsRef<[u8]>,
{
    let headers = headers.into_iter();
    let pairs = headers.size_hint().0;
    // Room for typical names and values; the string grows if needed.
    let mut out = MaskedHeaders::with_capacity(pairs, pairs * 48);
    let mut fingerprint = None;
    for (n, v) in headers {
        let (n, v) = (n.as_ref(), v.as_ref());
        if n.eq_ignore_ascii_case("authorization") {
            out.push_with(n, |t| {
                let sha256 = secret::push_masked_authorization(t, v, bearer);
                if fingerprint.is_none()
                    && v.split_once(' ')
                        .is_some_and(|(s, _)| s.eq_ignore_ascii_case("bearer"))
                {
                    fingerprint = Some(secret::fingerprint_of_sha256(&sha256));
                }
            });
        } else if n.eq_ignore_ascii_case("proxy-authorization") {
            out.push_with(n, |t| {
                secret::push_masked_authorization(t, v, None::<&secret::Hashed<S>>);
            });
        } else {
            out.push_with(n, |t| push_masked_value(t, n, v));
        }
    }
    (out, fingerprint)
}

/// The token's fingerprint for a record: the first 8 hex digits of its
/// SHA-256, the same prefix [`secret::mask`] shows, so a masked
/// `Authorization` header and the record's fingerprint can be matched.
pub fn token_fingerprint(token: &str) -> String {
    secret::fingerprint(token.as_bytes())
}

/// The path a record keeps: without the query string unless `keep_query`;
/// when kept, the values of secret parameters (`access_token`, `code`,
/// `client_secret`, ... see [`secret::is_secret_member`], and names a
/// header would be masked for: `api_key`, `x-auth-token`, see
/// [`is_secret_header`]) are masked.
pub fn record_path(path_and_query: &str, keep_query: bool) -> String {
    let Some((path, query)) = path_and_query.split_once('?') else {
        return path_and_query.to_owned();
    };
    if !keep_query {
        return path.to_owned();
    }
    let query = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            // The OAuth parameter names, and any name a header of that
            // name would be masked for (`api_key`, `x-auth-token`, ...).
            Some((k, v)) if secret::is_secret_member(k) || is_secret_header(k) => {
                format!("{k}={}", secret::mask(v))
            }
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&");
    format!("{path}?{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_headers_are_masked_and_the_bearer_fingerprinted_once() {
        let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
        let (h, fp) = mask_request_headers([
            ("Authorization", format!("Bearer {token}")),
            ("X-Api-KEY", "k-123".to_owned()),
            ("accept", "application/json".to_owned()),
        ]);
        assert_eq!(fp.as_deref(), Some(token_fingerprint(token).as_str()));
        let v = h.into_vec();
        assert_eq!(
            v[0].1,
            format!(
                "Bearer «{} chars, sha256:{}»",
                token.len(),
                token_fingerprint(token)
            )
        );
        assert!(v[1].1.starts_with("«5 chars, sha256:"), "{}", v[1].1);
        assert_eq!(v[2].1, "application/json");
        // Another scheme is masked but gives no bearer fingerprint.
        let (_, fp) = mask_request_headers([("authorization", "Basic dTpw")]);
        assert_eq!(fp, None);
        assert!(is_secret_header("X-CLIENT-SECRET") && !is_secret_header("x-request-id"));
    }

    #[test]
    fn a_known_bearer_digest_gives_the_same_record() {
        let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
        let headers = [
            ("host", "api.test".to_owned()),
            ("Authorization", format!("Bearer {token}")),
            ("Proxy-Authorization", "Basic dTpw".to_owned()),
            ("cookie", "a=1; b=2".to_owned()),
            ("Set-Cookie", "sid=x; Path=/".to_owned()),
            ("x-api-key", "k".to_owned()),
        ];
        let plain = mask_request_headers(headers.clone());
        let known = secret::Hashed::new(token.as_bytes());
        assert_eq!(
            mask_request_headers_hashed(headers.clone(), Some(&known)),
            plain
        );
        // A digest of another token is not used for this one.
        let other = secret::Hashed::new(b"another-token".as_slice());
        assert_eq!(mask_request_headers_hashed(headers, Some(&other)), plain);
        assert_eq!(plain.1, Some(token_fingerprint(token)));
        for (n, v) in plain.0.iter() {
            let original = match n {
                "host" => "api.test".to_owned(),
                "Authorization" => format!("Bearer {token}"),
                "Proxy-Authorization" => "Basic dTpw".to_owned(),
                "cookie" => "a=1; b=2".to_owned(),
                "Set-Cookie" => "sid=x; Path=/".to_owned(),
                _ => "k".to_owned(),
            };
            assert_eq!(v, mask_header_value(n, &original), "{n}");
        }
    }

    const BEARER: &str =
        "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVlLWhlcmU";

    fn full_record() -> CallRecord {
        let mut r = CallRecord::new("req-1", 1_700_000_000_123, "POST", "/api/orders");
        r.trace_id = Some("4bf92f3577b34da6a3ce929d0e0e4736".into());
        r.span_id = Some("53995c3f42cd8ad8".into());
        r.parent_span_id = Some("00f067aa0ba902b7".into());
        r.sampled = Some(true);
        r.route = Some("orders".into());
        r.upstream = Some("orders-pool".into());
        r.upstream_addr = Some("10.0.0.7:8080".into());
        r.status = 403;
        r.bytes_in = 12;
        r.bytes_out = 345;
        r.total_us = 1_234;
        r.auth_us = Some(56);
        r.upstream_first_byte_us = Some(700);
        r.upstream_total_us = Some(900);
        r.client_ip = Some(IpAddr::from([127, 0, 0, 1]));
        r.issuer = Some("https://issuer.test".into());
        r.kid = Some("k1".into());
        r.client_id = Some("app".into());
        r.sub = Some("alice".into());
        r.scopes = vec!["read".into(), "write".into()];
        r.token_fingerprint = Some(token_fingerprint(BEARER));
        r.reason = Some("insufficient-scope".into());
        r.trace = vec![
            TraceStep::new(Step::Route, Outcome::Ok, 1),
            TraceStep::new(Step::Jwt, Outcome::Ok, 40),
            TraceStep {
                step: Step::Scope,
                outcome: Outcome::Refused,
                reason: Some("insufficient-scope".into()),
                detail: Some("needs admin".into()),
                micros: 2,
            },
            TraceStep::new(Step::Other("waf".into()), Outcome::Skipped, 0),
        ];
        r.findings = vec![FindingRef {
            rule: "TR-04".into(),
            code: "token-access-token-missing".into(),
            severity: "error".into(),
        }];
        r.request_headers = mask_headers([("Authorization", format!("Bearer {BEARER}"))]);
        r.response_headers = mask_headers([("content-type", "application/json")]);
        r
    }

    #[test]
    fn json_round_trip_keeps_every_field() {
        let r = full_record();
        let text = serde_json::to_string(&r).unwrap();
        let back: CallRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        assert!(text.contains("\"step\":\"scope\""), "{text}");
        assert!(text.contains("\"step\":\"waf\""), "{text}");
        assert!(text.contains("\"outcome\":\"refused\""), "{text}");
        assert!(text.contains("\"v\":1"), "{text}");
        assert!(text.contains("\"span_id\":\"53995c3f42cd8ad8\""), "{text}");
        assert!(text.contains("\"sampled\":true"), "{text}");
        assert!(!text.contains(BEARER));
    }

    #[test]
    fn records_without_trace_fields_read_back_as_none() {
        // What builds before the span fields wrote.
        let text = r#"{"v":1,"start_ms":1,"request_id":"r","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","method":"GET","path":"/","status":200}"#;
        let back: CallRecord = serde_json::from_str(text).unwrap();
        assert_eq!(
            back.trace_id.as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(
            (back.span_id, back.parent_span_id, back.sampled),
            (None, None, None)
        );
    }

    #[test]
    fn minimal_record_is_compact_and_reads_back() {
        let r = CallRecord::new("r", 1, "GET", "/");
        let text = serde_json::to_string(&r).unwrap();
        assert!(!text.contains("trace_id"), "{text}");
        assert!(
            !text.contains("span_id") && !text.contains("sampled"),
            "{text}"
        );
        assert!(!text.contains("request_headers"), "{text}");
        let back: CallRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.v, RECORD_VERSION);
    }

    #[test]
    fn steps_read_known_and_unknown_names() {
        for s in [
            Step::Route,
            Step::BodyLimit,
            Step::Jwt,
            Step::Introspection,
            Step::Scope,
            Step::RateLimit,
            Step::Upstream,
        ] {
            assert_eq!(Step::from(s.as_str().to_owned()), s);
        }
        assert_eq!(Step::from("cors".to_owned()), Step::Other("cors".into()));
        assert_eq!(String::from(Step::RateLimit), "rate_limit");
    }

    #[test]
    fn masks_secret_headers() {
        let secret = "s3cr3t-Value-0123456789";
        let h = mask_headers([
            ("Authorization", format!("Bearer {BEARER}")),
            ("proxy-authorization", "Basic dXNlcjpwYXNz".to_owned()),
            ("Cookie", format!("session={secret}; theme=dark")),
            (
                "Set-Cookie",
                format!("sid={secret}; Path=/; HttpOnly; Secure"),
            ),
            ("X-Client-Secret", secret.to_owned()),
            ("x-api-key", secret.to_owned()),
            ("X-Access-Token", secret.to_owned()),
            ("X-Password", secret.to_owned()),
            ("Accept", "application/json".to_owned()),
            ("Content-Length", "12".to_owned()),
        ]);
        let text = serde_json::to_string(&h).unwrap();
        assert!(!text.contains(BEARER), "{text}");
        assert!(!text.contains(secret), "{text}");
        assert!(!text.contains("dXNlcjpwYXNz"), "{text}");
        let get = |name: &str| {
            h.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_owned())
                .unwrap()
        };
        assert!(get("Authorization").starts_with("Bearer «"));
        assert!(
            get("Authorization").contains(&token_fingerprint(BEARER)),
            "the header's mask and the record's fingerprint match"
        );
        assert!(get("proxy-authorization").starts_with("Basic «"));
        let cookie = get("Cookie");
        assert!(
            cookie.starts_with("session=«") && cookie.contains("; theme=«"),
            "{cookie}"
        );
        let set = get("Set-Cookie");
        assert!(
            set.starts_with("sid=«") && set.ends_with("; Path=/; HttpOnly; Secure"),
            "{set}"
        );
        assert_eq!(get("Accept"), "application/json");
        assert_eq!(get("Content-Length"), "12");
        assert_eq!(h.len(), 10);
    }

    #[test]
    fn secret_header_names() {
        for n in [
            "Authorization",
            "PROXY-AUTHORIZATION",
            "cookie",
            "Set-Cookie",
            "X-Api-Key",
            "X-Amz-Security-Token",
            "client-secret",
            "Sec-WebSocket-Key",
        ] {
            assert!(is_secret_header(n), "{n}");
        }
        for n in ["Accept", "Keep-Alive", "X-Auth-Sub", "X-Request-Id", "Host"] {
            assert!(!is_secret_header(n), "{n}");
        }
    }

    #[test]
    fn record_path_drops_or_masks_the_query() {
        assert_eq!(record_path("/a/b?x=1", false), "/a/b");
        assert_eq!(record_path("/a/b", true), "/a/b");
        let kept = record_path(
            "/cb?code=SplxlOBeZQQYbYS6WxSbIA&state=xyz&access_token=abc",
            true,
        );
        assert!(kept.starts_with("/cb?code=«"), "{kept}");
        assert!(kept.contains("&state=xyz&access_token=«"), "{kept}");
        assert!(!kept.contains("SplxlOBeZQQYbYS6WxSbIA"), "{kept}");
        assert!(!kept.contains("=abc"), "{kept}");
        let kept = record_path("/v1?api_key=k-123&X-Auth-Token=t-9&page=2", true);
        assert!(!kept.contains("k-123") && !kept.contains("t-9"), "{kept}");
        assert!(kept.ends_with("&page=2"), "{kept}");
    }

    #[test]
    fn finding_ref_from_finding() {
        let f = crate::diagnose::token::CHECKS
            .first()
            .map(|c| Finding::new(c, "t"))
            .unwrap();
        let r = FindingRef::from(&f);
        assert_eq!(r.rule, f.rule);
        assert_eq!(r.code, f.code);
        assert_eq!(r.severity, f.severity.as_str());
    }

    #[test]
    fn is_error_by_status() {
        let mut r = CallRecord::new("r", 0, "GET", "/");
        r.status = 200;
        assert!(!r.is_error());
        r.status = 401;
        assert!(r.is_error());
    }
}
