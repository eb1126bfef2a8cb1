//! The spool's record format: a compact binary encoding of a
//! [`KeyedRecord`], framed so that a torn or damaged frame is detected and
//! skipped.
//!
//! Under load every record may pass through the spool (the indexer that
//! fills the store runs at background priority, see [`crate::Writer`]), so
//! encoding is on the gateway's CPU budget: this format costs a fraction of
//! JSON (no escaping, no field names, one allocation-free pass).
//!
//! A frame is `len: u32 LE | crc32(payload): u32 LE | payload`. The payload
//! starts with [`FORMAT`]; integers are LEB128 varints, strings a varint
//! length and UTF-8 bytes, `Option`s a 0/1 tag, lists a varint count. The
//! field order is [`encode`]'s; [`encode`] destructures the record without
//! `..`, so a field added to [`CallRecord`] does not compile until it is
//! encoded here (and then `FORMAT` goes up, and [`decode`] keeps reading the
//! older format).
//!
//! Formats: 1, the first; 2 appends the span fields (`span_id`,
//! `parent_span_id`, `sampled`) after the response headers. A format-1
//! payload reads back with those fields `None`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use gatewise_core::calllog::{CallRecord, FindingRef, MaskedHeaders, Outcome, Step, TraceStep};

use crate::calllog::{KeyedRecord, RecordKey};

/// The payload format this build writes.
pub(crate) const FORMAT: u8 = 2;

/// The first format (no span fields), still read.
const FORMAT_1: u8 = 1;

/// Bytes before the payload: its length and its CRC-32.
pub(crate) const HEADER: usize = 8;

/// Largest payload accepted when reading (a larger length is damage).
pub(crate) const MAX_PAYLOAD: usize = 16 << 20;

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
    out.extend_from_slice(&key.seq.to_le_bytes());
    out.push(*v);
    uint(out, *start_ms);
    string(out, request_id);
    opt_str(out, trace_id.as_deref());
    opt_str(out, route.as_deref());
    opt_str(out, upstream.as_deref());
    opt_str(out, upstream_addr.as_deref());
    string(out, method);
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
    opt_str(out, token_fingerprint.as_deref());
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
        string(out, step.as_str());
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
    // Format 2.
    opt_str(out, span_id.as_deref());
    opt_str(out, parent_span_id.as_deref());
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
    let mut r = Reader { b: payload };
    let format = r.byte()?;
    if format != FORMAT && format != FORMAT_1 {
        return Err(Damage::UnknownFormat(format));
    }
    let key = RecordKey {
        writer: i64::from_le_bytes(r.array()?),
        seq: i64::from_le_bytes(r.array()?),
    };
    let v = r.byte()?;
    let start_ms = r.uint()?;
    let request_id = r.string()?;
    let mut rec = CallRecord::new(request_id, start_ms, String::new(), String::new());
    rec.v = v;
    rec.trace_id = r.opt_str()?;
    rec.route = r.opt_str()?;
    rec.upstream = r.opt_str()?;
    rec.upstream_addr = r.opt_str()?;
    rec.method = r.string()?;
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
    rec.token_fingerprint = r.opt_str()?;
    rec.reason = r.opt_str()?;
    let n = r.count()?;
    rec.trace = (0..n)
        .map(|_| {
            let step = Step::from(r.string()?);
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
    if format >= 2 {
        rec.span_id = r.opt_str()?;
        rec.parent_span_id = r.opt_str()?;
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

fn opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            string(out, s);
        }
    }
}

fn headers(out: &mut Vec<u8>, h: &MaskedHeaders) {
    uint(out, h.len() as u64);
    for (n, v) in h.iter() {
        string(out, n);
        string(out, v);
    }
}

struct Reader<'a> {
    b: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Damage> {
        if n > self.b.len() {
            return Err(Damage::Malformed);
        }
        let (head, rest) = self.b.split_at(n);
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

    fn string(&mut self) -> Result<String, Damage> {
        let n = self.count()?;
        let bytes = self.take(n)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| Damage::Malformed)
    }

    fn opt_str(&mut self) -> Result<Option<String>, Damage> {
        match self.byte()? {
            0 => Ok(None),
            1 => self.string().map(Some),
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

    fn headers(&mut self) -> Result<MaskedHeaders, Damage> {
        let n = self.count()?;
        let pairs = (0..n)
            .map(|_| Ok((self.string()?, self.string()?)))
            .collect::<Result<Vec<_>, Damage>>()?;
        Ok(MaskedHeaders::from_stored(pairs))
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
        encode_keyed(&a, &mut buf);
        encode_keyed(&b, &mut buf);
        encode_keyed(&c, &mut buf);
        let back = frames(&buf);
        assert_eq!(back, vec![Ok(a), Ok(b), Ok(c)]);
    }

    /// A format-1 payload (as written before the span fields): the same
    /// bytes without the trailing span fields, format byte 1.
    #[test]
    fn format_1_still_reads_with_no_span_fields() {
        let mut buf = Vec::new();
        let k = full();
        encode_keyed(&k, &mut buf);
        let mut payload = buf[HEADER..].to_vec();
        // The span fields: two present strings (tag, 1-byte length, 16
        // digits each) and the flag byte.
        let tail = 2 * (1 + 1 + 16) + 1;
        payload.truncate(payload.len() - tail);
        payload[0] = 1;
        let back = decode(&payload, crc32fast::hash(&payload)).unwrap();
        let mut expected = k;
        expected.record.span_id = None;
        expected.record.parent_span_id = None;
        expected.record.sampled = None;
        assert_eq!(back, expected);
        // A format-1 payload with bytes after it is damage, as before.
        payload.push(0);
        assert_eq!(
            decode(&payload, crc32fast::hash(&payload)),
            Err(Damage::Malformed)
        );
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
        let mut buf = Vec::new();
        encode_keyed(&full(), &mut buf);
        let payload = &buf[HEADER..];
        // Every prefix, checksummed as if whole: malformed, never a panic.
        for n in 0..payload.len() {
            let p = &payload[..n];
            let got = decode(p, crc32fast::hash(p));
            assert!(got.is_err(), "prefix {n} decoded");
        }
        // A huge list count.
        let mut p = vec![FORMAT];
        p.extend_from_slice(&[0; 17]);
        p.extend_from_slice(&[0xff; 10]);
        assert_eq!(decode(&p, crc32fast::hash(&p)), Err(Damage::Malformed));
        let p = [9u8, 1, 2];
        assert_eq!(
            decode(&p, crc32fast::hash(&p)),
            Err(Damage::UnknownFormat(9))
        );
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
