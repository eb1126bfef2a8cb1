//! The spool's record format: a compact binary encoding of a
//! [`KeyedRecord`], framed so that a torn or damaged frame is detected and
//! skipped.
//!
//! Under load every record may pass through the spool (the indexer that
//! fills the store runs at background priority, see [`crate::Writer`]), so
//! encoding is on the gateway's CPU budget: this format costs a fraction of
//! JSON (no escaping, no field names, one allocation-free pass), and every
//! byte it saves is a byte less to copy on the request thread and to write
//! from the writer thread.
//!
//! A frame is `len: u32 LE | crc32(payload): u32 LE | payload`. The payload
//! starts with [`FORMAT`]; integers are LEB128 varints, strings a varint
//! length and UTF-8 bytes, lists a varint count. The field order is
//! [`encode`]'s; [`encode`] destructures the record without `..`, so a field
//! added to [`CallRecord`] does not compile until it is encoded here (and
//! then `FORMAT` goes up, and [`decode`] keeps reading the older formats).
//!
//! Formats:
//!
//! - 1, the first: the key as two `i64 LE`, `Option`s as a 0/1 tag and the
//!   value, header names, step names and the method as strings.
//! - 2 appends the span fields (`span_id`, `parent_span_id`, `sampled`)
//!   after the response headers. A format-1 payload reads back with those
//!   fields `None`.
//! - 3 (written now) has format 2's fields in format 2's order, with smaller
//!   encodings for what every record carries:
//!   - the key's `seq` is a varint (of its two's complement: a negative
//!     `seq`, which the writer never assigns, takes ten bytes); `writer`
//!     stays 8 bytes (it is random, a varint would not be shorter);
//!   - a header name is a varint `k`: `0` and the name as a string, or entry
//!     `k - 1` of [`HEADER_NAMES`];
//!   - `trace_id`, `span_id`, `parent_span_id` and `token_fingerprint` are a
//!     tag: `0` none, `1` a string, `2` the bytes of lower-case hex of the
//!     usual length (16, 8, 8 and 4 bytes), read back as that hex;
//!   - other optional strings are a varint: `0` none, `n + 1` a string of
//!     `n` bytes (one byte less than a tag and a length);
//!   - a trace step is a byte: `0` and its name as a string, or one of
//!     [`Step`]'s named variants ([`step_code`]);
//!   - the method is a byte: `0` and the method as a string, or entry
//!     `k - 1` of [`METHODS`].
//!
//! The tables ([`HEADER_NAMES`], [`METHODS`], [`step_code`]) are part of the
//! format: an entry is never reordered or removed, and adding one needs a
//! new `FORMAT`, since a build that reads only format 3 takes an index it
//! does not know for damage.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use gatewise_core::calllog::{CallRecord, FindingRef, MaskedHeaders, Outcome, Step, TraceStep};

use crate::calllog::{KeyedRecord, RecordKey};

/// The payload format this build writes.
pub(crate) const FORMAT: u8 = 3;

/// The format with span fields and everything as strings, still read.
const FORMAT_2: u8 = 2;

/// The first format (no span fields), still read.
const FORMAT_1: u8 = 1;

/// Bytes before the payload: its length and its CRC-32.
pub(crate) const HEADER: usize = 8;

/// Largest payload accepted when reading (a larger length is damage).
pub(crate) const MAX_PAYLOAD: usize = 16 << 20;

/// Header names written as an index in format 3 (entry `k - 1` as varint
/// `k`): the names of the HPACK static table (RFC 7541, Appendix A), in its
/// order without repeats, then names common on gateway traffic. Lower case,
/// as the gateway records them (HTTP/2 and `http` lower-case names); a name
/// is matched exactly, so `Host` is written as a string.
///
/// Part of the on-disk format: append only, and only with a new [`FORMAT`].
pub(crate) const HEADER_NAMES: [&str; 85] = [
    // RFC 7541, Appendix A.
    ":authority",
    ":method",
    ":path",
    ":scheme",
    ":status",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "accept",
    "access-control-allow-origin",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-range",
    "content-type",
    "cookie",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "link",
    "location",
    "max-forwards",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "refresh",
    "retry-after",
    "server",
    "set-cookie",
    "strict-transport-security",
    "transfer-encoding",
    "user-agent",
    "vary",
    "via",
    "www-authenticate",
    // Tracing, proxies, browsers, security and rate-limit headers.
    "traceparent",
    "tracestate",
    "x-request-id",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
    "x-real-ip",
    "x-correlation-id",
    "x-amzn-trace-id",
    "dpop",
    "x-api-key",
    "origin",
    "sec-fetch-mode",
    "sec-fetch-site",
    "sec-fetch-dest",
    "sec-ch-ua",
    "sec-ch-ua-mobile",
    "sec-ch-ua-platform",
    "upgrade-insecure-requests",
    "x-frame-options",
    "x-content-type-options",
    "content-security-policy",
    "x-xss-protection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "pragma",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "ratelimit-policy",
];

/// Methods written as an index in format 3 (entry `k - 1` as byte `k`): RFC
/// 9110's, then PATCH (RFC 5789). Part of the format, as [`HEADER_NAMES`].
pub(crate) const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// Bits of a slot's number in [`NAME_SLOTS`].
const SLOT_BITS: u32 = 8;

/// Slots of [`NAME_SLOTS`]: three times the table's size, so that most
/// lookups take one probe.
const SLOTS: usize = 1 << SLOT_BITS;

// A slot holds an index plus one in a byte, which is also format 3's
// one-byte varint range; and a lookup ends at an empty slot, so one must be
// left.
const _: () = assert!(HEADER_NAMES.len() < 128 && HEADER_NAMES.len() < SLOTS / 2);

/// [`HEADER_NAMES`] by [`name_slot`], open addressing with linear probing:
/// a slot holds an entry's index plus one, `0` is empty. Built at compile
/// time, so a lookup is a few byte loads and one comparison (no hashing of
/// the whole name, no allocation).
static NAME_SLOTS: [u8; SLOTS] = {
    let mut slots = [0u8; SLOTS];
    let mut i = 0;
    while i < HEADER_NAMES.len() {
        let mut s = name_slot(HEADER_NAMES[i].as_bytes());
        while slots[s] != 0 {
            s = (s + 1) % SLOTS;
        }
        // In range: the assertion above.
        slots[s] = i as u8 + 1;
        i += 1;
    }
    slots
};

/// Where a name's probe starts in [`NAME_SLOTS`]: its length and first,
/// middle and last bytes, mixed by a Fibonacci multiply (they tell the
/// table's names apart well: 1.2 probes on average, at most 3).
const fn name_slot(n: &[u8]) -> usize {
    const fn byte(b: Option<&u8>) -> u32 {
        match b {
            Some(b) => *b as u32,
            None => 0,
        }
    }
    let (first, last) = (byte(n.first()), byte(n.last()));
    let mid = match n.split_at_checked(n.len() / 2) {
        Some((_, rest)) => byte(rest.first()),
        None => 0,
    };
    let key = (n.len() as u32 & 0xff) | first << 8 | mid << 16 | last << 24;
    (key.wrapping_mul(0x9e37_79b1) >> (32 - SLOT_BITS)) as usize
}

/// The varint a header name is written as in format 3: its index in
/// [`HEADER_NAMES`] plus one, or `0` when it is not there.
fn name_code(name: &str) -> u8 {
    let mut s = name_slot(name.as_bytes());
    // Ends at an empty slot: fewer than half of them are taken.
    loop {
        let k = NAME_SLOTS.get(s).copied().unwrap_or(0);
        if k == 0 || HEADER_NAMES.get(usize::from(k - 1)) == Some(&name) {
            return k;
        }
        s = (s + 1) % SLOTS;
    }
}

/// A step's code in format 3: `0` for a name written as a string
/// ([`Step::Other`]). Part of the format, as [`HEADER_NAMES`].
fn step_code(s: &Step) -> u8 {
    match s {
        Step::Other(_) => 0,
        Step::Route => 1,
        Step::BodyLimit => 2,
        Step::Jwt => 3,
        Step::Introspection => 4,
        Step::Scope => 5,
        Step::RateLimit => 6,
        Step::Upstream => 7,
    }
}

/// The named step of a [`step_code`] other than `0`.
fn step_from(code: u8) -> Result<Step, Damage> {
    Ok(match code {
        1 => Step::Route,
        2 => Step::BodyLimit,
        3 => Step::Jwt,
        4 => Step::Introspection,
        5 => Step::Scope,
        6 => Step::RateLimit,
        7 => Step::Upstream,
        _ => return Err(Damage::Malformed),
    })
}

/// Why a frame could not be read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Damage {
    /// The payload does not match its checksum (torn or damaged write).
    Checksum,
    /// The payload ended early or holds an impossible value.
    Malformed,
    /// A format this build does not read.
    UnknownFormat(u8),
}

/// Appends one framed record to `out`.
#[cfg(test)]
pub(crate) fn encode_keyed(k: &KeyedRecord, out: &mut Vec<u8>) {
    encode(k.key, &k.record, out);
}

/// Appends one framed record, `record` under `key`, to `out`.
pub(crate) fn encode(key: RecordKey, record: &CallRecord, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    let CallRecord {
        v,
        start_ms,
        request_id,
        trace_id,
        span_id,
        parent_span_id,
        sampled,
        route,
        upstream,
        upstream_addr,
        method,
        path,
        status,
        bytes_in,
        bytes_out,
        total_us,
        auth_us,
        upstream_first_byte_us,
        upstream_total_us,
        client_ip,
        issuer,
        kid,
        client_id,
        sub,
        scopes,
        token_fingerprint,
        reason,
        trace,
        findings,
        request_headers,
        response_headers,
    } = record;
    out.push(FORMAT);
    out.extend_from_slice(&key.writer.to_le_bytes());
    uint(out, key.seq.cast_unsigned());
    out.push(*v);
    uint(out, *start_ms);
    string(out, request_id);
    hex_id::<16>(out, trace_id.as_deref());
    opt_str(out, route.as_deref());
    opt_str(out, upstream.as_deref());
    opt_str(out, upstream_addr.as_deref());
    match METHODS.iter().position(|m| m == method) {
        // At most `METHODS.len()`.
        Some(i) => out.push(i as u8 + 1),
        None => {
            out.push(0);
            string(out, method);
        }
    }
    string(out, path);
    uint(out, u64::from(*status));
    uint(out, *bytes_in);
    uint(out, *bytes_out);
    uint(out, *total_us);
    opt_uint(out, *auth_us);
    opt_uint(out, *upstream_first_byte_us);
    opt_uint(out, *upstream_total_us);
    match client_ip {
        None => out.push(0),
        Some(IpAddr::V4(a)) => {
            out.push(4);
            out.extend_from_slice(&a.octets());
        }
        Some(IpAddr::V6(a)) => {
            out.push(6);
            out.extend_from_slice(&a.octets());
        }
    }
    opt_str(out, issuer.as_deref());
    opt_str(out, kid.as_deref());
    opt_str(out, client_id.as_deref());
    opt_str(out, sub.as_deref());
    uint(out, scopes.len() as u64);
    for s in scopes {
        string(out, s);
    }
    hex_id::<4>(out, token_fingerprint.as_deref());
    opt_str(out, reason.as_deref());
    uint(out, trace.len() as u64);
    for TraceStep {
        step,
        outcome,
        reason,
        detail,
        micros,
    } in trace
    {
        match step_code(step) {
            0 => {
                out.push(0);
                string(out, step.as_str());
            }
            code => out.push(code),
        }
        out.push(outcome_code(*outcome));
        opt_str(out, reason.as_deref());
        opt_str(out, detail.as_deref());
        uint(out, u64::from(*micros));
    }
    uint(out, findings.len() as u64);
    for FindingRef {
        rule,
        code,
        severity,
    } in findings
    {
        string(out, rule);
        string(out, code);
        string(out, severity);
    }
    headers(out, request_headers);
    headers(out, response_headers);
    // Added in format 2.
    hex_id::<8>(out, span_id.as_deref());
    hex_id::<8>(out, parent_span_id.as_deref());
    out.push(match sampled {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    });
    let len = out.len() - start - HEADER;
    let crc = crc32fast::hash(&out[start + HEADER..]);
    // A record never nears 4 GiB (headers and bodies are capped upstream);
    // saturate rather than wrap so a reader sees damage, not a short frame.
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + HEADER].copy_from_slice(&crc.to_le_bytes());
}

/// The payload length and checksum of a frame header.
pub(crate) fn frame_header(h: [u8; HEADER]) -> (usize, u32) {
    let [a, b, c, d, e, f, g, i] = h;
    (
        u32::from_le_bytes([a, b, c, d]) as usize,
        u32::from_le_bytes([e, f, g, i]),
    )
}

/// The frames of an in-memory run of [`encode`]d records, as the byte
/// range of each whole frame (header included), in order. A frame whose
/// length runs past the end (never written so by [`encode`]) ends the walk.
pub(crate) fn frames(buf: &[u8]) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let header: [u8; HEADER] = buf.get(at..at + HEADER)?.try_into().ok()?;
        let (len, _) = frame_header(header);
        let end = at.checked_add(HEADER + len).filter(|&e| e <= buf.len())?;
        let range = at..end;
        at = end;
        Some(range)
    })
}

/// Reads back one whole frame (header and payload), as [`frames`] yields
/// them.
pub(crate) fn decode_frame(frame: &[u8]) -> Result<KeyedRecord, Damage> {
    let header: [u8; HEADER] = frame
        .get(..HEADER)
        .and_then(|h| h.try_into().ok())
        .ok_or(Damage::Malformed)?;
    let (len, crc) = frame_header(header);
    let payload = frame.get(HEADER..).ok_or(Damage::Malformed)?;
    if payload.len() != len {
        return Err(Damage::Malformed);
    }
    decode(payload, crc)
}

/// Reads back one payload (without its frame header) whose checksum was
/// `crc`.
pub(crate) fn decode(payload: &[u8], crc: u32) -> Result<KeyedRecord, Damage> {
    if crc32fast::hash(payload) != crc {
        return Err(Damage::Checksum);
    }
    let mut r = Reader {
        b: payload,
        compact: false,
    };
    let format = r.byte()?;
    if !matches!(format, FORMAT_1 | FORMAT_2 | FORMAT) {
        return Err(Damage::UnknownFormat(format));
    }
    r.compact = format >= FORMAT;
    let writer = i64::from_le_bytes(r.array()?);
    let seq = match r.compact {
        true => r.uint()?.cast_signed(),
        false => i64::from_le_bytes(r.array()?),
    };
    let key = RecordKey { writer, seq };
    let v = r.byte()?;
    let start_ms = r.uint()?;
    let request_id = r.string()?;
    let mut rec = CallRecord::new(request_id, start_ms, String::new(), String::new());
    rec.v = v;
    rec.trace_id = r.hex_id::<16>()?;
    rec.route = r.opt_str()?;
    rec.upstream = r.opt_str()?;
    rec.upstream_addr = r.opt_str()?;
    rec.method = r.method()?;
    rec.path = r.string()?;
    rec.status = u16::try_from(r.uint()?).map_err(|_| Damage::Malformed)?;
    rec.bytes_in = r.uint()?;
    rec.bytes_out = r.uint()?;
    rec.total_us = r.uint()?;
    rec.auth_us = r.opt_uint()?;
    rec.upstream_first_byte_us = r.opt_uint()?;
    rec.upstream_total_us = r.opt_uint()?;
    rec.client_ip = match r.byte()? {
        0 => None,
        4 => Some(IpAddr::V4(Ipv4Addr::from(r.array::<4>()?))),
        6 => Some(IpAddr::V6(Ipv6Addr::from(r.array::<16>()?))),
        _ => return Err(Damage::Malformed),
    };
    rec.issuer = r.opt_str()?;
    rec.kid = r.opt_str()?;
    rec.client_id = r.opt_str()?;
    rec.sub = r.opt_str()?;
    let n = r.count()?;
    rec.scopes = (0..n).map(|_| r.string()).collect::<Result<_, _>>()?;
    rec.token_fingerprint = r.hex_id::<4>()?;
    rec.reason = r.opt_str()?;
    let n = r.count()?;
    rec.trace = (0..n)
        .map(|_| {
            let step = r.step()?;
            let outcome = outcome_from(r.byte()?)?;
            let reason = r.opt_str()?;
            let detail = r.opt_str()?;
            let micros = u32::try_from(r.uint()?).map_err(|_| Damage::Malformed)?;
            Ok(TraceStep {
                step,
                outcome,
                reason,
                detail,
                micros,
            })
        })
        .collect::<Result<_, Damage>>()?;
    let n = r.count()?;
    rec.findings = (0..n)
        .map(|_| {
            Ok(FindingRef {
                rule: r.string()?,
                code: r.string()?,
                severity: r.string()?,
            })
        })
        .collect::<Result<_, Damage>>()?;
    rec.request_headers = r.headers()?;
    rec.response_headers = r.headers()?;
    if format >= FORMAT_2 {
        rec.span_id = r.hex_id::<8>()?;
        rec.parent_span_id = r.hex_id::<8>()?;
        rec.sampled = match r.byte()? {
            0 => None,
            1 => Some(false),
            2 => Some(true),
            _ => return Err(Damage::Malformed),
        };
    }
    if !r.b.is_empty() {
        return Err(Damage::Malformed);
    }
    Ok(KeyedRecord { key, record: rec })
}

fn outcome_code(o: Outcome) -> u8 {
    match o {
        Outcome::Ok => 0,
        Outcome::Refused => 1,
        Outcome::Error => 2,
        Outcome::Skipped => 3,
    }
}

fn outcome_from(b: u8) -> Result<Outcome, Damage> {
    Ok(match b {
        0 => Outcome::Ok,
        1 => Outcome::Refused,
        2 => Outcome::Error,
        3 => Outcome::Skipped,
        _ => return Err(Damage::Malformed),
    })
}

fn uint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn opt_uint(out: &mut Vec<u8>, v: Option<u64>) {
    match v {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            uint(out, v);
        }
    }
}

fn string(out: &mut Vec<u8>, s: &str) {
    uint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// An optional string in format 3: `0`, or its length plus one and its
/// bytes.
fn opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            uint(out, s.len() as u64 + 1);
            out.extend_from_slice(s.as_bytes());
        }
    }
}

/// An optional id that is lower-case hex of `N` bytes when the gateway set
/// it: `0`, `1` and a string, or `2` and the `N` bytes.
fn hex_id<const N: usize>(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => match unhex::<N>(s) {
            Some(bytes) => {
                out.push(2);
                out.extend_from_slice(&bytes);
            }
            None => {
                out.push(1);
                string(out, s);
            }
        },
    }
}

/// Lower-case hex digits by value.
const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// The value of each byte as a lower-case hex digit, `0xff` for bytes that
/// are not one (upper-case digits included: they would not read back as
/// written).
static HEX_VALUES: [u8; 256] = {
    let mut t = [0xff; 256];
    let mut i = 0;
    while i < HEX_DIGITS.len() {
        t[HEX_DIGITS[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// The `N` bytes `s` is the lower-case hex of, if it is exactly that.
fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let (pairs, []) = s.as_bytes().as_chunks::<2>() else {
        return None;
    };
    if pairs.len() != N {
        return None;
    }
    let mut out = [0u8; N];
    // No branch per digit: a byte that is not a digit sets the high bits,
    // checked once at the end.
    let mut bad = 0;
    for (o, &[h, l]) in out.iter_mut().zip(pairs) {
        let (h, l) = (HEX_VALUES[usize::from(h)], HEX_VALUES[usize::from(l)]);
        bad |= h | l;
        *o = (h << 4) | (l & 0x0f);
    }
    (bad & 0xf0 == 0).then_some(out)
}

fn headers(out: &mut Vec<u8>, h: &MaskedHeaders) {
    uint(out, h.len() as u64);
    for (n, v) in h.iter() {
        match name_code(n) {
            0 => {
                out.push(0);
                string(out, n);
            }
            k => out.push(k),
        }
        string(out, v);
    }
}

struct Reader<'a> {
    b: &'a [u8],
    /// Format 3's encodings ([`FORMAT`]): header names, steps and methods
    /// by index, ids as bytes, optional strings without a tag.
    compact: bool,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Damage> {
        let (head, rest) = self.b.split_at_checked(n).ok_or(Damage::Malformed)?;
        self.b = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Damage> {
        self.take(N)?.try_into().map_err(|_| Damage::Malformed)
    }

    fn byte(&mut self) -> Result<u8, Damage> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }

    fn uint(&mut self) -> Result<u64, Damage> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Damage::Malformed)
    }

    /// A list length, bounded by the bytes left (each element takes at
    /// least one), so damage cannot ask for a huge allocation.
    fn count(&mut self) -> Result<usize, Damage> {
        let n = usize::try_from(self.uint()?).map_err(|_| Damage::Malformed)?;
        if n > self.b.len() {
            return Err(Damage::Malformed);
        }
        Ok(n)
    }

    /// A string's bytes, borrowed from the payload.
    fn text(&mut self) -> Result<&'a str, Damage> {
        let n = self.count()?;
        std::str::from_utf8(self.take(n)?).map_err(|_| Damage::Malformed)
    }

    fn string(&mut self) -> Result<String, Damage> {
        self.text().map(str::to_owned)
    }

    fn opt_str(&mut self) -> Result<Option<String>, Damage> {
        let n = match self.compact {
            true => self.uint()?,
            false => match self.byte()? {
                0 => 0,
                1 => return self.string().map(Some),
                _ => return Err(Damage::Malformed),
            },
        };
        let Some(n) = n.checked_sub(1) else {
            return Ok(None);
        };
        let n = usize::try_from(n).map_err(|_| Damage::Malformed)?;
        std::str::from_utf8(self.take(n)?)
            .map(|s| Some(s.to_owned()))
            .map_err(|_| Damage::Malformed)
    }

    /// An id [`hex_id`] wrote (a plain optional string before format 3).
    fn hex_id<const N: usize>(&mut self) -> Result<Option<String>, Damage> {
        if !self.compact {
            return self.opt_str();
        }
        match self.byte()? {
            0 => Ok(None),
            1 => self.string().map(Some),
            2 => {
                let bytes = self.take(N)?;
                let mut s = String::with_capacity(2 * N);
                for &b in bytes {
                    for d in [b >> 4, b & 0x0f] {
                        s.push(char::from(HEX_DIGITS[usize::from(d)]));
                    }
                }
                Ok(Some(s))
            }
            _ => Err(Damage::Malformed),
        }
    }

    fn opt_uint(&mut self) -> Result<Option<u64>, Damage> {
        match self.byte()? {
            0 => Ok(None),
            1 => self.uint().map(Some),
            _ => Err(Damage::Malformed),
        }
    }

    fn method(&mut self) -> Result<String, Damage> {
        if !self.compact {
            return self.string();
        }
        match self.byte()?.checked_sub(1) {
            None => self.string(),
            Some(i) => METHODS
                .get(usize::from(i))
                .map(|m| (*m).to_owned())
                .ok_or(Damage::Malformed),
        }
    }

    fn step(&mut self) -> Result<Step, Damage> {
        if !self.compact {
            return self.string().map(Step::from);
        }
        match self.byte()? {
            0 => self.string().map(Step::from),
            code => step_from(code),
        }
    }

    /// A header name: the table's `&'static str` or the payload's bytes.
    fn header_name(&mut self) -> Result<&'a str, Damage> {
        if !self.compact {
            return self.text();
        }
        match self.uint()?.checked_sub(1) {
            None => self.text(),
            Some(i) => usize::try_from(i)
                .ok()
                .and_then(|i| HEADER_NAMES.get(i))
                .copied()
                .ok_or(Damage::Malformed),
        }
    }

    fn headers(&mut self) -> Result<MaskedHeaders, Damage> {
        let n = self.count()?;
        // Pairs borrowed from the payload and the table, copied once into
        // the headers' one string (no `String` per name and value); the
        // first damage stops the walk and is returned.
        let mut damage = Ok(());
        let headers = MaskedHeaders::from_stored((0..n).map_while(|_| {
            let pair = self.header_name().and_then(|name| Ok((name, self.text()?)));
            pair.map_err(|e| damage = Err(e)).ok()
        }));
        damage.map(|()| headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatewise_core::calllog::mask_headers;

    fn full() -> KeyedRecord {
        let mut r = CallRecord::new("req-1", 1_700_000_000_123, "POST", "/api/orders?x=1");
        r.trace_id = Some("4bf92f3577b34da6a3ce929d0e0e4736".into());
        r.span_id = Some("53995c3f42cd8ad8".into());
        r.parent_span_id = Some("00f067aa0ba902b7".into());
        r.sampled = Some(false);
        r.route = Some("orders".into());
        r.upstream = Some("backend".into());
        r.upstream_addr = Some("127.0.0.1:8080".into());
        r.status = 403;
        r.bytes_in = 12;
        r.bytes_out = 1 << 40;
        r.total_us = 1234;
        r.auth_us = Some(56);
        r.upstream_first_byte_us = Some(0);
        r.upstream_total_us = None;
        r.client_ip = Some("2001:db8::1".parse().unwrap());
        r.issuer = Some("https://idp.example".into());
        r.kid = Some("k1".into());
        r.client_id = Some("svc".into());
        r.sub = Some("alice é".into());
        r.scopes = vec!["orders.read".into(), "orders.write".into()];
        r.token_fingerprint = Some("0a1b2c3d".into());
        r.reason = Some("scope-missing".into());
        r.trace = vec![
            TraceStep::new(Step::Route, Outcome::Ok, 1),
            TraceStep {
                reason: Some("scope-missing".into()),
                detail: Some("needs orders.admin".into()),
                ..TraceStep::new(Step::Other("custom_step".into()), Outcome::Refused, 9)
            },
            TraceStep::new(Step::Upstream, Outcome::Skipped, 0),
            TraceStep::new(Step::Jwt, Outcome::Error, u32::MAX),
        ];
        r.findings = vec![FindingRef {
            rule: "TR-04".into(),
            code: "token-access-token-missing".into(),
            severity: "error".into(),
        }];
        r.request_headers = mask_headers([("authorization", "Bearer abc"), ("host", "x")]);
        r.response_headers = mask_headers([("content-type", "application/json")]);
        KeyedRecord {
            key: RecordKey {
                writer: i64::MAX,
                seq: -3,
            },
            record: r,
        }
    }

    /// A proxied GET as the gateway records it: a verified bearer token,
    /// the client's `traceparent`, a few headers each way.
    fn typical() -> KeyedRecord {
        let mut r = CallRecord::new("4f1c2a9e-1b7f3", 1_760_000_000_123, "GET", "/api/orders/42");
        r.trace_id = Some("4bf92f3577b34da6a3ce929d0e0e4736".into());
        r.span_id = Some("53995c3f42cd8ad8".into());
        r.parent_span_id = Some("00f067aa0ba902b7".into());
        r.sampled = Some(true);
        r.route = Some("orders".into());
        r.upstream = Some("orders".into());
        r.upstream_addr = Some("10.0.3.7:8080".into());
        r.status = 200;
        r.bytes_out = 512;
        r.total_us = 850;
        r.auth_us = Some(41);
        r.upstream_first_byte_us = Some(612);
        r.upstream_total_us = Some(780);
        r.client_ip = Some("192.0.2.10".parse().unwrap());
        r.issuer = Some("https://idp.example.com".into());
        r.kid = Some("rsa-1".into());
        r.client_id = Some("orders-web".into());
        r.sub = Some("user-1234".into());
        r.scopes = vec!["orders.read".into()];
        r.token_fingerprint = Some("9f86d081".into());
        r.trace = vec![
            TraceStep::new(Step::Route, Outcome::Ok, 2),
            TraceStep::new(Step::Jwt, Outcome::Ok, 35),
            TraceStep::new(Step::Scope, Outcome::Ok, 1),
            TraceStep::new(Step::Upstream, Outcome::Ok, 780),
        ];
        // Stored as masked already, so the fixtures below do not depend on
        // how masking words its output.
        r.request_headers = MaskedHeaders::from_stored([
            ("authorization", "Bearer «683 chars, sha256:9f86d081»"),
            ("host", "api.example.com"),
            ("user-agent", "curl/8.5.0"),
            ("accept", "*/*"),
        ]);
        r.response_headers = MaskedHeaders::from_stored([
            ("server", "nginx"),
            ("date", "Tue, 14 Oct 2025 09:12:01 GMT"),
            ("content-type", "application/json"),
            ("content-length", "512"),
        ]);
        KeyedRecord {
            key: RecordKey {
                writer: 1_760_000_000_000_001,
                seq: 48_213,
            },
            record: r,
        }
    }

    /// [`full`] as the build that wrote format 2 (121a4ae) encoded it:
    /// the payload, without the frame header.
    const FULL_FORMAT_2: &str = "02ffffffffffffff7ffdffffffffffffff01fbd095ffbc31057265712d310120346266393266333537376233\
        346461366133636539323964306530653437333601066f726465727301076261636b656e64010e3132372e30\
        2e302e313a3830383004504f53540f2f6170692f6f72646572733f783d3193030c808080808020d209013801\
        00000620010db8000000000000000000000001011368747470733a2f2f6964702e6578616d706c6501026b31\
        01037376630108616c69636520c3a9020b6f72646572732e726561640c6f72646572732e7772697465010830\
        61316232633364010d73636f70652d6d697373696e670405726f757465000000010b637573746f6d5f737465\
        7001010d73636f70652d6d697373696e6701126e65656473206f72646572732e61646d696e09087570737472\
        65616d03000000036a7774020000ffffffff0f010554522d30341a746f6b656e2d6163636573732d746f6b65\
        6e2d6d697373696e67056572726f72020d617574686f72697a6174696f6e2342656172657220c2ab33206368\
        6172732c207368613235363a6261373831366266c2bb04686f73740178010c636f6e74656e742d7479706510\
        6170706c69636174696f6e2f6a736f6e01103533393935633366343263643861643801103030663036376161\
        306261393032623701";

    /// [`typical`] as the build that wrote format 2 (121a4ae) encoded it:
    /// the payload, without the frame header.
    const TYPICAL_FORMAT_2: &str = "020100ceeeb540060055bc00000000000001fb80b3c19c330e34663163326139652d31623766330120346266\
        393266333537376233346461366133636539323964306530653437333601066f726465727301066f72646572\
        73010d31302e302e332e373a38303830034745540e2f6170692f6f72646572732f3432c801008004d2060129\
        01e404018c0604c000020a011768747470733a2f2f6964702e6578616d706c652e636f6d01057273612d3101\
        0a6f72646572732d7765620109757365722d31323334010b6f72646572732e72656164010839663836643038\
        31000405726f75746500000002036a7774000000230573636f70650000000108757073747265616d0000008c\
        0600040d617574686f72697a6174696f6e2542656172657220c2ab3638332063686172732c20736861323536\
        3a3966383664303831c2bb04686f73740f6170692e6578616d706c652e636f6d0a757365722d6167656e740a\
        6375726c2f382e352e3006616363657074032a2f2a0406736572766572056e67696e7804646174651d547565\
        2c203134204f637420323032352030393a31323a303120474d540c636f6e74656e742d74797065106170706c\
        69636174696f6e2f6a736f6e0e636f6e74656e742d6c656e6774680335313201103533393935633366343263\
        643861643801103030663036376161306261393032623702";

    fn unhex_fixture(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The payload [`encode`] writes for `k`, without its frame header.
    fn payload(k: &KeyedRecord) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_keyed(k, &mut buf);
        buf.split_off(HEADER)
    }

    /// Decodes a payload with its checksum computed.
    fn read(p: &[u8]) -> Result<KeyedRecord, Damage> {
        decode(p, crc32fast::hash(p))
    }

    fn position(haystack: &[u8], needle: &[u8]) -> usize {
        haystack
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap()
    }

    /// A record with nothing in it but `edit`'s changes.
    fn bare(edit: impl FnOnce(&mut CallRecord)) -> KeyedRecord {
        let mut record = CallRecord::new("", 0, "", "");
        edit(&mut record);
        KeyedRecord {
            key: RecordKey { writer: 1, seq: 1 },
            record,
        }
    }

    fn frames(buf: &[u8]) -> Vec<Result<KeyedRecord, Damage>> {
        let mut out = Vec::new();
        let mut rest = buf;
        while rest.len() >= HEADER {
            let (len, crc) = frame_header(rest[..HEADER].try_into().unwrap());
            let payload = &rest[HEADER..HEADER + len];
            out.push(decode(payload, crc));
            rest = &rest[HEADER + len..];
        }
        out
    }

    #[test]
    fn round_trip_of_every_field() {
        let mut buf = Vec::new();
        let a = full();
        let mut b = full();
        b.record = CallRecord::new("", 0, "", "");
        b.record.client_ip = Some("10.1.2.3".parse().unwrap());
        let mut c = full();
        c.record.sampled = Some(true);
        c.record.parent_span_id = None;
        let d = typical();
        encode_keyed(&a, &mut buf);
        encode_keyed(&b, &mut buf);
        encode_keyed(&c, &mut buf);
        encode_keyed(&d, &mut buf);
        let back = frames(&buf);
        assert_eq!(back, vec![Ok(a), Ok(b), Ok(c), Ok(d)]);
    }

    #[test]
    fn every_table_name_is_found_and_no_other() {
        for (i, name) in HEADER_NAMES.iter().enumerate() {
            assert_eq!(usize::from(name_code(name)), i + 1, "{name}");
            assert_eq!(*name, name.to_ascii_lowercase(), "{name}");
            assert!(!HEADER_NAMES[..i].contains(name), "{name} twice");
        }
        // The HPACK names first, in RFC 7541's order (its 61 entries repeat
        // `:method`, `:path`, `:scheme` and `:status`), then the others.
        assert_eq!(
            HEADER_NAMES[..6],
            [
                ":authority",
                ":method",
                ":path",
                ":scheme",
                ":status",
                "accept-charset"
            ]
        );
        assert_eq!(HEADER_NAMES[51..53], ["www-authenticate", "traceparent"]);
        for name in [
            "",
            "a",
            "Host",
            "HOST",
            "hos",
            "hostx",
            "x-request-i",
            "x-unknown",
            "accept ",
            "é",
            "content-typf",
        ] {
            assert_eq!(name_code(name), 0, "{name:?}");
        }
        // Every name is found within three probes, as `name_slot` says.
        for (i, name) in HEADER_NAMES.iter().enumerate() {
            let start = name_slot(name.as_bytes());
            let at = NAME_SLOTS
                .iter()
                .position(|&k| usize::from(k) == i + 1)
                .unwrap();
            assert!((at + SLOTS - start) % SLOTS < 3, "{name}");
        }
    }

    #[test]
    fn round_trip_of_table_and_literal_header_names() {
        let response = [
            ("x-unknown-header", "a"),
            ("Content-Type", "text/plain"),
            ("HOST", "h"),
            ("", "empty name"),
            ("x-ünïcode", "é"),
            ("content-type", ""),
        ];
        let k = bare(|r| {
            r.request_headers = MaskedHeaders::from_stored(
                HEADER_NAMES
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n.to_string(), format!("v{i}"))),
            );
            r.response_headers = MaskedHeaders::from_stored(response);
        });
        let p = payload(&k);
        assert_eq!(read(&p), Ok(k));
        // Table names take their index only; the others are written out.
        for name in HEADER_NAMES.iter().filter(|n| n.len() > 4) {
            assert!(
                !p.windows(name.len()).any(|w| w == name.as_bytes()),
                "{name}"
            );
        }
        for name in ["x-unknown-header", "Content-Type", "HOST", "x-ünïcode"] {
            position(&p, name.as_bytes());
        }
        // Table names take one byte, others their code, length and bytes;
        // values their length and bytes.
        let table: usize = (0..HEADER_NAMES.len())
            .map(|i| 1 + 1 + format!("v{i}").len())
            .sum();
        let literal: usize = response
            .iter()
            .map(|(n, v)| match *n {
                "content-type" => 1 + 1 + v.len(),
                n => 2 + n.len() + 1 + v.len(),
            })
            .sum();
        assert_eq!(p.len(), payload(&bare(|_| {})).len() + table + literal);
    }

    #[test]
    fn round_trip_of_ids_in_binary_and_as_strings() {
        let hex = |trace: &str, span: &str, parent: &str, fingerprint: &str| {
            bare(|r| {
                r.trace_id = Some(trace.into());
                r.span_id = Some(span.into());
                r.parent_span_id = Some(parent.into());
                r.token_fingerprint = Some(fingerprint.into());
            })
        };
        let none = payload(&bare(|_| {})).len();
        // Lower-case hex of the usual length: the bytes, after a tag.
        let binary = hex(
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "0123456789abcdef",
            "ffffffffffffffff",
            "00000000",
        );
        let p = payload(&binary);
        assert_eq!(p.len(), none + 16 + 8 + 8 + 4);
        position(&p, &[2, 0x4b, 0xf9, 0x2f, 0x35]);
        assert_eq!(read(&p), Ok(binary));
        // Anything else: the string, as before.
        for k in [
            hex(
                "4BF92F3577B34DA6A3CE929D0E0E4736",
                "0123456789ABCDEF",
                "0123456789abcdeF",
                "9F86D081",
            ),
            hex(
                "4bf92f3577b34da6a3ce929d0e0e473",
                "0123456789abcde",
                "",
                "9f86d08",
            ),
            hex(
                "4bf92f3577b34da6a3ce929d0e0e47361",
                "0123456789abcdef0",
                "0123456789abcdeg",
                "9f86d0811",
            ),
            hex(
                "4bf92f3577b34da6a3ce929d0e0e473g",
                "00f067aa0ba902b7 ",
                "-0f067aa0ba902b7",
                "9f86 081",
            ),
            hex("é", "0x0123456789abcd", "zzzzzzzzzzzzzzzz", "    "),
        ] {
            let p = payload(&k);
            let strings = [
                &k.record.trace_id,
                &k.record.span_id,
                &k.record.parent_span_id,
            ]
            .iter()
            .chain([&&k.record.token_fingerprint])
            .map(|s| 2 + s.as_deref().unwrap().len())
            .sum::<usize>();
            assert_eq!(p.len(), none + strings - 4, "{k:?}");
            assert_eq!(read(&p), Ok(k));
        }
        // Mixed: some in binary, some not, some absent.
        let k = bare(|r| {
            r.trace_id = Some("00000000000000000000000000000000".into());
            r.span_id = None;
            r.parent_span_id = Some("not hex".into());
            r.token_fingerprint = None;
        });
        assert_eq!(read(&payload(&k)), Ok(k));
    }

    #[test]
    fn round_trip_of_methods_and_steps() {
        let steps = [
            Step::Route,
            Step::BodyLimit,
            Step::Jwt,
            Step::Introspection,
            Step::Scope,
            Step::RateLimit,
            Step::Upstream,
            Step::Other("custom_step".into()),
            Step::Other(String::new()),
        ];
        let methods = METHODS
            .iter()
            .copied()
            .chain(["get", "PROPFIND", "", "GET "]);
        for method in methods {
            let k = bare(|r| {
                r.method = method.into();
                r.trace = steps
                    .iter()
                    .map(|s| TraceStep::new(s.clone(), Outcome::Ok, 7))
                    .collect();
            });
            assert_eq!(read(&payload(&k)), Ok(k), "{method}");
        }
        // One byte each when named.
        let get = payload(&bare(|r| r.method = "GET".into())).len();
        let propfind = payload(&bare(|r| r.method = "PROPFIND".into())).len();
        assert_eq!(propfind, get + 1 + "PROPFIND".len());
    }

    #[test]
    fn seq_is_a_varint() {
        // The bare record's `seq` is 1: one byte.
        let one = payload(&bare(|_| {})).len();
        for (seq, bytes) in [
            (0, 1),
            (127, 1),
            (128, 2),
            (48_213, 3),
            (i64::MAX, 9),
            // Never assigned by the writer, but read back all the same.
            (-1, 10),
            (i64::MIN, 10),
        ] {
            let mut k = bare(|_| {});
            k.key.seq = seq;
            let p = payload(&k);
            assert_eq!(p.len(), one - 1 + bytes, "{seq}");
            assert_eq!(read(&p), Ok(k));
        }
    }

    /// The record of a proxied GET in format 3 is at least a quarter
    /// smaller than in format 2.
    #[test]
    fn typical_record_is_a_quarter_smaller_than_in_format_2() {
        let old = unhex_fixture(TYPICAL_FORMAT_2);
        // The fixture is this record.
        assert_eq!(read(&old), Ok(typical()));
        let new = payload(&typical());
        let (old, new) = (HEADER + old.len(), HEADER + new.len());
        assert!(new * 4 <= old * 3, "format 3: {new} bytes, format 2: {old}");
    }

    #[test]
    fn format_2_payloads_still_read() {
        assert_eq!(read(&unhex_fixture(FULL_FORMAT_2)), Ok(full()));
        assert_eq!(read(&unhex_fixture(TYPICAL_FORMAT_2)), Ok(typical()));
    }

    /// A format-1 payload (as written before the span fields): the
    /// format-2 bytes without the trailing span fields, format byte 1.
    #[test]
    fn format_1_still_reads_with_no_span_fields() {
        let mut payload = unhex_fixture(FULL_FORMAT_2);
        // The span fields: two present strings (tag, 1-byte length, 16
        // digits each) and the flag byte.
        let tail = 2 * (1 + 1 + 16) + 1;
        payload.truncate(payload.len() - tail);
        payload[0] = 1;
        let back = read(&payload).unwrap();
        let mut expected = full();
        expected.record.span_id = None;
        expected.record.parent_span_id = None;
        expected.record.sampled = None;
        assert_eq!(back, expected);
        // A format-1 payload with bytes after it is damage, as before.
        payload.push(0);
        assert_eq!(read(&payload), Err(Damage::Malformed));
    }

    #[test]
    fn damage_is_detected_not_misread() {
        let mut buf = Vec::new();
        encode_keyed(&full(), &mut buf);
        for i in HEADER..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            let (len, crc) = frame_header(bad[..HEADER].try_into().unwrap());
            assert_eq!(
                decode(&bad[HEADER..HEADER + len], crc),
                Err(Damage::Checksum),
                "byte {i}"
            );
        }
    }

    #[test]
    fn malformed_payloads_fail_without_panicking() {
        for k in [full(), typical()] {
            let payload = payload(&k);
            // Every prefix, checksummed as if whole: malformed, never a panic.
            for n in 0..payload.len() {
                assert!(read(&payload[..n]).is_err(), "prefix {n} decoded");
            }
        }
        // A huge list count, in format 2 (the key in 16 bytes) ...
        let mut p = vec![FORMAT_2];
        p.extend_from_slice(&[0; 17]);
        p.extend_from_slice(&[0xff; 10]);
        assert_eq!(read(&p), Err(Damage::Malformed));
        // ... and in format 3: the request headers' count of a bare record
        // (before the response headers' count, two id tags and `sampled`).
        let mut p = payload(&bare(|_| {}));
        let at = p.len() - 5;
        p.splice(at..=at, [0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(read(&p), Err(Damage::Malformed));
        let p = [9u8, 1, 2];
        assert_eq!(read(&p), Err(Damage::UnknownFormat(9)));
    }

    /// Format 3's tables and tags hold no value a build does not know.
    #[test]
    fn unknown_indexes_and_tags_are_malformed() {
        // A header name past the table's end; the last entry reads.
        let named = payload(&bare(|r| {
            r.request_headers = MaskedHeaders::from_stored([("host", "MARK")]);
        }));
        let at = position(&named, b"\x04MARK") - 1;
        let last = u8::try_from(HEADER_NAMES.len()).unwrap();
        let mut p = named.clone();
        p[at] = last;
        let back = read(&p).unwrap();
        assert_eq!(
            back.record.request_headers.get("ratelimit-policy"),
            Some("MARK")
        );
        for index in [&[last + 1][..], &[0x7f], &[0xff, 0x7f], &[0xff; 10]] {
            let mut p = named.clone();
            p.splice(at..=at, index.iter().copied());
            assert_eq!(read(&p), Err(Damage::Malformed), "{index:?}");
        }
        // An id tag other than 0, 1 and 2, and a binary id cut short.
        let ids = bare(|r| {
            r.trace_id = Some("4bf92f3577b34da6a3ce929d0e0e4736".into());
            r.span_id = Some("53995c3f42cd8ad8".into());
        });
        let ids = payload(&ids);
        for raw in [&[0x4b, 0xf9, 0x2f][..], &[0x53, 0x99, 0x5c]] {
            let at = position(&ids, raw) - 1;
            assert_eq!(ids[at], 2);
            for tag in [3, 4, 0x80, 0xff] {
                let mut p = ids.clone();
                p[at] = tag;
                assert_eq!(read(&p), Err(Damage::Malformed), "tag {tag}");
            }
            for keep in 0..if raw[0] == 0x4b { 16 } else { 8 } {
                assert_eq!(read(&ids[..at + 1 + keep]), Err(Damage::Malformed));
            }
        }
        // The span id is last but two bytes: cutting them leaves it whole
        // and the record short.
        assert_eq!(read(&ids[..ids.len() - 1]), Err(Damage::Malformed));
        // A method or a step past its table.
        let coded = payload(&bare(|r| {
            r.method = "PATCH".into();
            r.path = "PATH".into();
            r.trace = vec![TraceStep::new(Step::Upstream, Outcome::Ok, 0x55)];
        }));
        let method = position(&coded, b"\x04PATH") - 1;
        assert_eq!(coded[method], 9);
        // Step, outcome, no reason, no detail, micros.
        let step = position(&coded, &[7, 0, 0, 0, 0x55]);
        for (at, bad) in [(method, 10), (method, 0xff), (step, 8), (step, 0xff)] {
            let mut p = coded.clone();
            p[at] = bad;
            assert_eq!(read(&p), Err(Damage::Malformed), "byte {at}: {bad}");
        }
        // An optional string longer than what is left.
        let route = payload(&bare(|r| r.route = Some("ROUTE".into())));
        let at = position(&route, b"ROUTE") - 1;
        assert_eq!(route[at], 6);
        for len in [7, 0x7f] {
            let mut p = route.clone();
            p[at] = len;
            assert_eq!(read(&p), Err(Damage::Malformed), "length {len}");
        }
    }

    /// Whatever one byte is changed to (the checksum made to match), a
    /// payload reads back or is refused: no panic, no huge allocation.
    #[test]
    fn any_changed_byte_decodes_or_fails_without_panicking() {
        for k in [full(), typical()] {
            let p = payload(&k);
            for at in 0..p.len() {
                for b in [0, 1, 2, 3, 0x3f, 0x7f, 0x80, 0xfe, 0xff] {
                    let mut q = p.clone();
                    q[at] = b;
                    let _ = read(&q);
                }
            }
        }
    }

    #[test]
    fn frames_walk_an_in_memory_run_and_stop_at_a_cut() {
        let mut a = full();
        let mut buf = Vec::new();
        for seq in 1..=3 {
            a.key.seq = seq;
            encode_keyed(&a, &mut buf);
        }
        let ranges: Vec<_> = super::frames(&buf).collect();
        assert_eq!(ranges.len(), 3);
        assert_eq!(ranges[0].start, 0);
        assert_eq!(ranges[2].end, buf.len());
        for (i, r) in ranges.iter().enumerate() {
            let k = decode_frame(&buf[r.clone()]).unwrap();
            assert_eq!(k.key.seq, i as i64 + 1);
            assert_eq!(k.record, a.record);
        }
        // A run cut inside its last frame yields the whole frames only.
        let cut = &buf[..buf.len() - 3];
        assert_eq!(super::frames(cut).count(), 2);
        assert_eq!(super::frames(&buf[..5]).count(), 0);
        // A frame with a byte changed is refused, not misread.
        let mut bad = buf[ranges[1].clone()].to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(decode_frame(&bad), Err(Damage::Checksum));
    }
}
