//! The OAuth exchange inspector: routes in front of an identity provider
//! (`inspect = "token" | "discovery" | "jwks" | "introspection"`) have the
//! upstream's responses judged by the doctor's rules, so "the IdP sends
//! `expires_in` as a string" shows up in the gateway's logs and counters
//! before clients fail on it. With `repair = true` on a token route, the
//! two repairs clients need most are made, and each is recorded.
//!
//! Bodies are buffered only for these routes and only up to [`MAX_INSPECTED`];
//! a larger or streaming-forever body passes through uninspected.

use crate::body::{self, Body};
use bytes::Bytes;
use gatewise_config::model::Inspect;
use gatewise_core::capture;
use gatewise_core::diagnose::{self, Context, Expect};
use gatewise_core::finding::{Finding, Severity};
use http::header::{self, HeaderMap, HeaderValue};
use http::request::Parts as RequestParts;
use http::response::Parts;
use http_body_util::BodyExt;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// Largest upstream body the inspector buffers.
pub const MAX_INSPECTED: usize = 256 * 1024;

/// What the inspector saw for one response.
#[derive(Debug, Clone, Default)]
pub struct Inspection {
    /// The doctor's findings (evidence masked).
    pub findings: Vec<Finding>,
    /// Repairs made to the body, by name.
    pub repairs: Vec<&'static str>,
    /// True when the body was too large to inspect.
    pub skipped: bool,
}

/// Counts findings by code and logs the first of each at warning level.
#[derive(Debug, Default)]
pub struct InspectorStats {
    by_code: Mutex<HashMap<&'static str, u64>>,
    repairs: Mutex<HashMap<&'static str, u64>>,
    logged: Mutex<HashSet<&'static str>>,
}

impl InspectorStats {
    fn record(&self, route: &str, i: &Inspection) {
        if let Ok(mut m) = self.by_code.lock() {
            for f in &i.findings {
                *m.entry(f.code).or_default() += 1;
            }
        }
        if let Ok(mut m) = self.repairs.lock() {
            for r in &i.repairs {
                *m.entry(r).or_default() += 1;
            }
        }
        if let Ok(mut logged) = self.logged.lock() {
            for f in &i.findings {
                if f.severity != Severity::Info && logged.insert(f.code) {
                    tracing::warn!(
                        route,
                        rule = f.rule,
                        code = f.code,
                        "the upstream's OAuth response breaks a rule (first occurrence): {}; evidence: {}; fix: {}",
                        f.title,
                        f.evidence,
                        f.fix
                    );
                }
            }
        }
    }

    /// Findings seen so far, by code.
    pub fn findings(&self) -> Vec<(&'static str, u64)> {
        let mut v: Vec<_> = self
            .by_code
            .lock()
            .map(|m| m.iter().map(|(k, v)| (*k, *v)).collect())
            .unwrap_or_default();
        v.sort_unstable();
        v
    }

    /// Repairs made so far, by name.
    pub fn repairs(&self) -> Vec<(&'static str, u64)> {
        let mut v: Vec<_> = self
            .repairs
            .lock()
            .map(|m| m.iter().map(|(k, v)| (*k, *v)).collect())
            .unwrap_or_default();
        v.sort_unstable();
        v
    }
}

fn expect(kind: Inspect) -> Expect {
    match kind {
        Inspect::Token => Expect::Token,
        Inspect::Discovery => Expect::Discovery,
        Inspect::Jwks => Expect::Jwks,
        Inspect::Introspection => Expect::Introspection,
    }
}

/// Judges (and, when asked, repairs) an upstream response. Returns the
/// response to send on and what was found.
pub async fn inspect(
    kind: Inspect,
    repair: bool,
    request: &RequestParts,
    mut parts: Parts,
    upstream: Body,
    stats: &InspectorStats,
    route: &str,
) -> (Parts, Body, Inspection) {
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_INSPECTED) {
        let i = Inspection {
            skipped: true,
            ..Inspection::default()
        };
        return (parts, upstream, i);
    }
    let bytes = match read_capped(upstream, MAX_INSPECTED).await {
        Ok(b) => b,
        Err(e) => {
            // Too large without a Content-Length, or the upstream broke off:
            // what was read is gone, so the client gets a clean error.
            tracing::warn!(route, "inspected upstream body could not be read: {e}");
            let i = Inspection {
                skipped: true,
                ..Inspection::default()
            };
            parts.headers.remove(header::CONTENT_LENGTH);
            return (parts, body::empty(), i);
        }
    };
    let capture_bytes = as_capture(request, &parts, &bytes);
    let cap = capture::parse(&capture_bytes);
    let findings = diagnose::response(&cap, &Context::new(expect(kind)));
    let mut inspection = Inspection {
        findings,
        ..Inspection::default()
    };
    let mut out = bytes;
    if repair
        && kind == Inspect::Token
        && let Some((fixed, repairs)) = repair_token(&parts.headers, &out)
    {
        out = Bytes::from(fixed);
        inspection.repairs = repairs;
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        parts.headers.remove(header::CONTENT_ENCODING);
        if let Ok(v) = HeaderValue::from_str(&inspection.repairs.join(", ")) {
            parts.headers.insert("x-gatewise-repaired", v);
        }
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(out.len()));
    stats.record(route, &inspection);
    (parts, body::full(out), inspection)
}

/// Reads a whole body, refusing more than `max` bytes.
async fn read_capped(mut b: Body, max: usize) -> Result<Bytes, String> {
    let mut out = bytes::BytesMut::new();
    while let Some(frame) = b.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > max {
                return Err(format!("the body is over {max} bytes"));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out.freeze())
}

/// The exchange as the doctor reads captures: request head, then response.
fn as_capture(req: &RequestParts, resp: &Parts, body: &[u8]) -> Vec<u8> {
    let mut s = format!("{} {} HTTP/1.1\r\n", req.method, req.uri);
    push_headers(&mut s, &req.headers);
    s.push_str("\r\n");
    let reason = resp.status.canonical_reason().unwrap_or("");
    s.push_str(&format!("HTTP/1.1 {} {reason}\r\n", resp.status.as_u16()));
    push_headers(&mut s, &resp.headers);
    s.push_str("\r\n");
    let mut v = s.into_bytes();
    v.extend_from_slice(body);
    v
}

fn push_headers(s: &mut String, h: &HeaderMap) {
    for (n, v) in h {
        if n == header::TRANSFER_ENCODING {
            continue; // the body here is already de-chunked
        }
        s.push_str(n.as_str());
        s.push_str(": ");
        s.push_str(&String::from_utf8_lossy(v.as_bytes()));
        s.push_str("\r\n");
    }
}

/// Repairs a token response: a form-encoded body becomes JSON; string
/// `expires_in` becomes a number. `None` when nothing needed repair (or the
/// body is compressed, which is left alone).
fn repair_token(headers: &HeaderMap, body: &[u8]) -> Option<(Vec<u8>, Vec<&'static str>)> {
    if headers.contains_key(header::CONTENT_ENCODING) {
        return None;
    }
    let mut repairs = Vec::new();
    let trimmed = body.trim_ascii();
    let mut map: Map<String, Value> = if trimmed.starts_with(b"{") {
        serde_json::from_slice(trimmed).ok()?
    } else if !trimmed.is_empty()
        && trimmed.iter().all(|b| b.is_ascii_graphic())
        && trimmed.contains(&b'=')
    {
        let pairs: Map<String, Value> = url::form_urlencoded::parse(trimmed)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        if !pairs.contains_key("access_token") && !pairs.contains_key("error") {
            return None;
        }
        repairs.push("form-to-json");
        pairs
    } else {
        return None;
    };
    if let Some(Value::String(s)) = map.get("expires_in")
        && let Ok(n) = s.trim().parse::<u64>()
    {
        map.insert("expires_in".into(), Value::from(n));
        repairs.push("expires-in-number");
    }
    if repairs.is_empty() {
        return None;
    }
    serde_json::to_vec(&map).ok().map(|v| (v, repairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_become_json_and_string_numbers_numbers() {
        let h = HeaderMap::new();
        let (out, r) = repair_token(
            &h,
            b"access_token=gho_x&scope=repo%2Cgist&token_type=bearer&expires_in=3600",
        )
        .unwrap();
        assert_eq!(r, ["form-to-json", "expires-in-number"]);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["expires_in"], 3600);
        assert_eq!(v["scope"], "repo,gist");
        let (out, r) = repair_token(&h, br#"{"access_token":"a","expires_in":"60"}"#).unwrap();
        assert_eq!(r, ["expires-in-number"]);
        assert_eq!(
            serde_json::from_slice::<Value>(&out).unwrap()["expires_in"],
            60
        );
        assert!(repair_token(&h, br#"{"access_token":"a","expires_in":60}"#).is_none());
        assert!(repair_token(&h, b"<html>").is_none());
    }
}
