//! HAR (HTTP Archive 1.2) files, detected by content: an object with
//! `log.entries`. Browsers store bodies already decoded, so bodies from a HAR
//! are marked [`Body::predecoded`](crate::capture::Body::predecoded).

use crate::capture::{Body, Capture, CaptureKind, Exchange, Headers, Request, Response};
use base64::Engine as _;
use serde_json::Value;

/// Parses `input` as a HAR file; `None` when it is not one.
pub fn parse(input: &[u8]) -> Option<Capture> {
    let text = input.strip_prefix(crate::media::UTF8_BOM).unwrap_or(input);
    if !text.trim_ascii_start().starts_with(b"{") {
        return None;
    }
    let doc: Value = serde_json::from_slice(text).ok()?;
    let entries = doc.get("log")?.get("entries")?.as_array()?;
    let exchanges = entries
        .iter()
        .enumerate()
        .map(|(i, e)| entry(i + 1, e))
        .collect();
    Some(Capture {
        kind: CaptureKind::Har,
        exchanges,
        issues: Vec::new(),
    })
}

fn headers(v: Option<&Value>) -> Headers {
    let pairs = v
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|h| {
                    Some((
                        h.get("name")?.as_str()?.to_string(),
                        h.get("value")?.as_str()?.to_string(),
                    ))
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    Headers::from_pairs(pairs)
}

fn text_body(text: Option<&str>, base64: bool) -> Body {
    let bytes = match text {
        Some(t) if base64 => base64::engine::general_purpose::STANDARD
            .decode(t.trim())
            .unwrap_or_else(|_| t.as_bytes().to_vec()),
        Some(t) => t.as_bytes().to_vec(),
        None => Vec::new(),
    };
    Body {
        wire: bytes.clone(),
        decoded: bytes,
        predecoded: true,
        ..Body::default()
    }
}

fn entry(n: usize, e: &Value) -> Exchange {
    let req = e.get("request");
    let request = req.map(|r| {
        let str_of = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let post = r.get("postData");
        let mut body = text_body(
            post.and_then(|p| p.get("text")).and_then(Value::as_str),
            false,
        );
        if body.decoded.is_empty() {
            // Some tools store only `params` for form posts.
            if let Some(params) = post.and_then(|p| p.get("params")).and_then(Value::as_array) {
                let mut ser = url::form_urlencoded::Serializer::new(String::new());
                for p in params {
                    if let (Some(k), Some(v)) = (
                        p.get("name").and_then(Value::as_str),
                        p.get("value").and_then(Value::as_str),
                    ) {
                        ser.append_pair(k, v);
                    }
                }
                body = text_body(Some(&ser.finish()), false);
            }
        }
        Request {
            method: str_of("method"),
            target: str_of("url"),
            version: str_of("httpVersion"),
            headers: headers(r.get("headers")),
            body,
            line: 0,
        }
    });
    let response = e.get("response").map(|r| {
        let content = r.get("content");
        let b64 = content
            .and_then(|c| c.get("encoding"))
            .and_then(Value::as_str)
            == Some("base64");
        Response {
            version: r
                .get("httpVersion")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            status: r
                .get("status")
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok())
                .filter(|s| *s != 0),
            reason: r
                .get("statusText")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            headers: headers(r.get("headers")),
            body: text_body(
                content.and_then(|c| c.get("text")).and_then(Value::as_str),
                b64,
            ),
            line: 0,
        }
    });
    let label = match &request {
        Some(r) => format!("entry {n} ({} {})", r.method, r.target),
        None => format!("entry {n}"),
    };
    // A HAR entry with status 0 is a request that got no response.
    let response = response.filter(|r| r.status.is_some());
    Exchange {
        label,
        request,
        response,
    }
}
