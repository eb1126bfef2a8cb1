//! Masking a transcript's secrets with the core's `secret` fingerprints:
//! `Authorization` values, form and JSON members named like secrets
//! (`client_secret`, `access_token`, ...), and JWT-like words anywhere.
//!
//! Masking is lexical, so a body that is cut short or is not valid JSON is
//! still masked, and everything that is not a secret stays byte for byte
//! (the saved capture must show the same defects). Compressed bodies are
//! decompressed, masked and compressed again with the same coding.

use gatewise_core::media::{self, ContentCoding};
use gatewise_core::secret;
use std::io::Write as _;

/// Headers with credential values masked.
pub(crate) fn headers(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            let lower = n.to_ascii_lowercase();
            let v = match lower.as_str() {
                "authorization" | "proxy-authorization" => authorization(v),
                "cookie" => cookie_pairs(v, "; "),
                "set-cookie" => match v.split_once(';') {
                    Some((pair, attrs)) => format!("{};{attrs}", cookie_pairs(pair, "")),
                    None => cookie_pairs(v, ""),
                },
                "dpop" | "x-api-key" | "api-key" => secret::mask(v),
                _ => v.clone(),
            };
            (n.clone(), v)
        })
        .collect()
}

/// `Basic` credentials stay well-formed (base64 of `id:secret`, RFC 6749
/// §2.3.1 encoding) with the secret replaced by its percent-encoded
/// fingerprint, so a saved capture read back is judged like the original;
/// other schemes show their scheme and a fingerprint.
fn authorization(v: &str) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let basic = v
        .trim()
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(scheme, cred)| Some((scheme, b64.decode(cred.trim()).ok()?)))
        .and_then(|(scheme, raw)| Some((scheme, String::from_utf8(raw).ok()?)));
    let Some((scheme, pair)) = basic else {
        return secret::mask_authorization(v);
    };
    let Some((id, encoded_secret)) = pair.split_once(':') else {
        return secret::mask_authorization(v);
    };
    let plain: String = url::form_urlencoded::parse(format!("x={encoded_secret}").as_bytes())
        .next()
        .map(|(_, s)| s.into_owned())
        .unwrap_or_default();
    let masked: String = url::form_urlencoded::byte_serialize(secret::mask(&plain).as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    format!("{scheme} {}", b64.encode(format!("{id}:{masked}")))
}

fn cookie_pairs(v: &str, sep: &str) -> String {
    v.split(';')
        .map(|p| match p.trim().split_once('=') {
            Some((k, val)) => format!("{k}={}", secret::mask(val)),
            None => p.trim().to_string(),
        })
        .collect::<Vec<_>>()
        .join(if sep.is_empty() { "; " } else { sep })
}

/// A URL with secret-named query parameters masked.
pub(crate) fn url(u: &str) -> String {
    match u.split_once('?') {
        Some((base, query)) => format!("{base}?{}", form_text(query)),
        None => u.to_string(),
    }
}

/// A body with its secrets masked, and `Content-Length` kept true to it.
/// `headers` are the message's headers (already masked or not).
pub(crate) fn body(headers: &mut [(String, String)], body: &[u8]) -> Vec<u8> {
    let codings: Vec<String> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-encoding"))
        .flat_map(|(_, v)| v.split(','))
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect();
    let coding = match codings.as_slice() {
        [] if body.starts_with(&[0x1f, 0x8b]) => Some(ContentCoding::Gzip),
        [] => None,
        [one] => match ContentCoding::from_name(one) {
            Some(c) => Some(c),
            // br, zstd: the doctor cannot look inside; keep as is.
            None => return body.to_vec(),
        },
        _ => return body.to_vec(),
    };
    let masked = match coding {
        None => text_bytes(body),
        Some(c) => {
            let Ok(plain) = media::decompress(c, body) else {
                return body.to_vec();
            };
            let m = text_bytes(&plain);
            if m == plain {
                return body.to_vec();
            }
            match compress(c, &m) {
                Some(z) => z,
                None => return body.to_vec(),
            }
        }
    };
    if masked != body {
        fix_length(headers, body.len(), masked.len());
    }
    masked
}

fn compress(c: ContentCoding, data: &[u8]) -> Option<Vec<u8>> {
    match c {
        ContentCoding::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).ok()?;
            e.finish().ok()
        }
        ContentCoding::Deflate => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).ok()?;
            e.finish().ok()
        }
    }
}

/// Keeps a declared `Content-Length` as far from the new body as it was
/// from the old one (a truncated body stays truncated by as much).
fn fix_length(headers: &mut [(String, String)], old: usize, new: usize) {
    for (n, v) in headers.iter_mut() {
        if !n.eq_ignore_ascii_case("content-length") {
            continue;
        }
        let Ok(declared) = v.trim().parse::<usize>() else {
            continue;
        };
        let missing = declared.saturating_sub(old);
        let extra = old.saturating_sub(declared);
        *v = (new + missing).saturating_sub(extra).to_string();
    }
}

fn text_bytes(body: &[u8]) -> Vec<u8> {
    match std::str::from_utf8(body) {
        Ok(s) => text(s).into_bytes(),
        // Not UTF-8: mask the valid prefix's secrets only if it changes
        // nothing else; binary bodies are kept.
        Err(_) => body.to_vec(),
    }
}

/// Masks secrets in free text: JSON members, form pairs, JWT-like words.
pub(crate) fn text(s: &str) -> String {
    let t = s.trim_start_matches('\u{feff}').trim_start();
    let s = if !t.starts_with(['{', '[', '<']) && looks_like_form(t) {
        form_text(s)
    } else {
        json_members(s)
    };
    secret::mask_text(&s)
}

fn looks_like_form(t: &str) -> bool {
    !t.is_empty() && !t.contains(char::is_whitespace) && t.split('&').all(|p| p.contains('='))
}

/// `a=b&client_secret=…` with secret values masked (kept form-encoded).
fn form_text(s: &str) -> String {
    s.split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => {
                let name: String = url::form_urlencoded::parse(format!("{k}=").as_bytes())
                    .next()
                    .map(|(n, _)| n.into_owned())
                    .unwrap_or_default();
                if secret::is_secret_member(&name) {
                    let plain = url::form_urlencoded::parse(format!("x={v}").as_bytes())
                        .next()
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default();
                    let m: String =
                        url::form_urlencoded::byte_serialize(secret::mask(&plain).as_bytes())
                            .collect();
                    format!("{k}={m}")
                } else {
                    pair.to_string()
                }
            }
            None => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Masks the string values of secret-named JSON members, lexically (works
/// on truncated or otherwise broken JSON).
fn json_members(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(q) = rest.find('"') {
        let (before, from_quote) = rest.split_at(q);
        out.push_str(before);
        // A string token: find its end.
        let Some(end) = string_end(from_quote) else {
            out.push_str(from_quote);
            return out;
        };
        let (token, after) = from_quote.split_at(end);
        out.push_str(token);
        rest = after;
        let name = token.get(1..token.len().saturating_sub(1)).unwrap_or("");
        if !secret::is_secret_member(name) {
            continue;
        }
        // `"name"` then `:` then a string value?
        let trimmed = rest.trim_start();
        let Some(after_colon) = trimmed.strip_prefix(':') else {
            continue;
        };
        let value_start = after_colon.trim_start();
        if !value_start.starts_with('"') {
            continue;
        }
        let skipped = rest.len() - value_start.len();
        out.push_str(rest.get(..skipped).unwrap_or(""));
        let (value_token, after_value) = match string_end(value_start) {
            Some(e) => value_start.split_at(e),
            None => (value_start, ""),
        };
        let inner = value_token
            .strip_prefix('"')
            .map(|v| v.strip_suffix('"').unwrap_or(v))
            .unwrap_or("");
        out.push('"');
        out.push_str(&secret::mask(inner));
        if value_token.len() > 1 && value_token.ends_with('"') {
            out.push('"');
        }
        rest = after_value;
    }
    out.push_str(rest);
    out
}

/// The byte length of the JSON string token at the start of `s` (which
/// starts with `"`), including both quotes; `None` when it does not end.
fn string_end(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i + 1),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_json_members_even_when_cut_short() {
        let m = text(r#"{"access_token": "abc123", "token_type":"Bearer", "refresh_token":"xyz"#);
        assert!(!m.contains("abc123") && !m.contains("xyz"), "{m}");
        assert!(m.contains(r#""token_type":"Bearer""#), "{m}");
        assert!(m.starts_with(r#"{"access_token": "«6 chars"#), "{m}");
    }

    #[test]
    fn basic_stays_well_formed() {
        use base64::Engine as _;
        let h = crate::oauth::basic_authorization("svc", "s3cr3t+/=");
        let m = authorization(&h);
        let raw = base64::engine::general_purpose::STANDARD
            .decode(m.strip_prefix("Basic ").unwrap())
            .unwrap();
        let pair = String::from_utf8(raw).unwrap();
        assert!(
            pair.starts_with("svc:%C2%AB9%20chars%2C%20sha256%3A"),
            "{pair}"
        );
        assert!(!pair.contains("s3cr3t"));
        assert_eq!(
            authorization("Bearer abc.def"),
            secret::mask_authorization("Bearer abc.def")
        );
    }

    #[test]
    fn masks_form_pairs() {
        let m = text("grant_type=client_credentials&client_id=svc&client_secret=s%2B3cr3t");
        assert!(m.starts_with("grant_type=client_credentials&client_id=svc&client_secret=%C2%AB"));
        assert!(!m.contains("3cr3t"));
    }

    #[test]
    fn keeps_length_honest() {
        let mut h = vec![("Content-Length".to_string(), "100".to_string())];
        let b = body(&mut h, br#"{"access_token":"a"}"#);
        let declared: usize = h[0].1.parse().unwrap();
        // 100 declared, 20 sent: 80 missing before and after masking.
        assert_eq!(declared - b.len(), 80);
    }

    #[test]
    fn masks_inside_gzip() {
        let z = compress(ContentCoding::Gzip, br#"{"access_token":"sekrit"}"#).unwrap();
        let mut h = vec![("Content-Type".to_string(), "application/json".to_string())];
        let b = body(&mut h, &z);
        let plain = media::decompress(ContentCoding::Gzip, &b).unwrap();
        assert!(!String::from_utf8_lossy(&plain).contains("sekrit"));
    }
}
