//! Masking secrets in evidence: tokens, client secrets, codes and
//! `Authorization` headers never appear in clear in a finding.

use aws_lc_rs::digest;

/// Form or JSON member names whose values are secrets.
pub const SECRET_MEMBERS: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "client_assertion",
    "assertion",
    "code",
    "code_verifier",
    "device_code",
    "password",
    "token",
    "subject_token",
    "actor_token",
    "issued_token",
];

/// True when a member of this name holds a secret.
pub fn is_secret_member(name: &str) -> bool {
    SECRET_MEMBERS.contains(&name)
}

/// SHA-256 of a secret: the form tokens, codes and secrets are stored and
/// cached under (a hash prefix is what evidence and logs show).
pub fn sha256(secret: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, secret).as_ref());
    out
}

/// A short, stable fingerprint of a secret: the first 8 hex digits of its
/// SHA-256, so two captures can be compared without showing the value.
pub fn fingerprint(secret: &[u8]) -> String {
    let d = digest::digest(&digest::SHA256, secret);
    let mut out = String::with_capacity(8);
    push_hex(&mut out, d.as_ref().get(..4).unwrap_or_default());
    out
}

/// Appends `bytes` as lower-case hex (the call log masks every request's
/// headers: `format!` per byte would cost more than the hash).
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digit = |n: u8| char::from(DIGITS.get(usize::from(n)).copied().unwrap_or(b'0'));
    for b in bytes {
        out.push(digit(b >> 4));
        out.push(digit(b & 15));
    }
}

/// Masks a secret value: its length and fingerprint, never its content.
pub fn mask(secret: &str) -> String {
    let mut out = String::with_capacity(32);
    push_mask(&mut out, secret, &fingerprint(secret.as_bytes()));
    out
}

/// Appends `«N chars, sha256:FP»` for a secret whose fingerprint is known.
fn push_mask(out: &mut String, secret: &str, fp: &str) {
    use std::fmt::Write as _;
    out.push('«');
    let _ = write!(out, "{}", secret.chars().count());
    out.push_str(" chars, sha256:");
    out.push_str(fp);
    out.push('»');
}

/// Masks an `Authorization` header value, keeping the scheme.
pub fn mask_authorization(value: &str) -> String {
    mask_authorization_with_fingerprint(value).0
}

/// Masks an `Authorization` header value, keeping the scheme, and returns
/// the credential's fingerprint too (hashed once: the call log keeps both).
pub fn mask_authorization_with_fingerprint(value: &str) -> (String, String) {
    match value.split_once(' ') {
        Some((scheme, cred)) => {
            let cred = cred.trim();
            let fp = fingerprint(cred.as_bytes());
            let mut out = String::with_capacity(scheme.len() + 32);
            out.push_str(scheme);
            out.push(' ');
            push_mask(&mut out, cred, &fp);
            (out, fp)
        }
        None => {
            let fp = fingerprint(value.as_bytes());
            let mut out = String::with_capacity(32);
            push_mask(&mut out, value, &fp);
            (out, fp)
        }
    }
}

/// A copy of a JSON value with secret members masked, at any depth.
pub fn mask_json(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) if is_secret_member(k) => Value::String(mask(s)),
                        other => mask_json(other),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(mask_json).collect()),
        other => other.clone(),
    }
}

/// Renders form pairs with secret values masked.
pub fn mask_form(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            if is_secret_member(k) {
                format!("{k}={}", mask(v))
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Compact JSON of a value with secrets masked, cut to `max` characters.
pub fn json_evidence(value: &serde_json::Value, max: usize) -> String {
    let text = mask_json(value).to_string();
    if text.chars().count() > max {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// Masks anything that looks like a JWT or a long opaque token inside free
/// text (used for bodies that are not JSON or form, before they are shown).
pub fn mask_text(text: &str) -> String {
    text.split_inclusive(|c: char| c.is_whitespace() || "\"'<>,;&=".contains(c))
        .map(|piece| {
            let word =
                piece.trim_end_matches(|c: char| c.is_whitespace() || "\"'<>,;&=".contains(c));
            let tail = piece.get(word.len()..).unwrap_or("");
            let jwt_like =
                word.split('.').count() == 3 && word.len() > 40 && word.starts_with("eyJ");
            if jwt_like {
                format!("{}{tail}", mask(word))
            } else {
                piece.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_nested_secrets() {
        let v = serde_json::json!({"access_token": "abc", "nested": {"refresh_token": "def"}, "token_type": "Bearer"});
        let m = mask_json(&v).to_string();
        assert!(!m.contains("\"abc\""));
        assert!(!m.contains("\"def\""));
        assert!(m.contains("Bearer"));
    }

    #[test]
    fn masks_authorization() {
        let m = mask_authorization("Basic Y2xpZW50OnNlY3JldA==");
        assert!(m.starts_with("Basic «"));
        assert!(!m.contains("Y2xpZW50"));
    }

    #[test]
    fn masks_jwts_in_text() {
        let t =
            "token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlc2lnbmF0dXJl here";
        let m = mask_text(t);
        assert!(!m.contains("eyJhbGci"));
        assert!(m.ends_with(" here"));
    }
}
