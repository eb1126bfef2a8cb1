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
    fingerprint_of_sha256(&sha256(secret))
}

/// [`fingerprint`] of a secret whose SHA-256 is known: the first 8 hex
/// digits of `sha256`.
pub fn fingerprint_of_sha256(sha256: &[u8; 32]) -> String {
    let mut out = String::with_capacity(8);
    push_hex(&mut out, sha256.get(..4).unwrap_or_default());
    out
}

/// A secret and its SHA-256, hashed once for every use of the digest on
/// one request (the call log's fingerprint, a cache key). `S` is whatever
/// holds the secret's bytes. `Debug` shows the fingerprint, never the
/// secret.
#[derive(Clone)]
pub struct Hashed<S> {
    secret: S,
    sha256: [u8; 32],
}

impl<S: AsRef<[u8]>> Hashed<S> {
    /// Hashes `secret`.
    pub fn new(secret: S) -> Self {
        let sha256 = sha256(secret.as_ref());
        Hashed { secret, sha256 }
    }

    /// Hashes `secret`, or takes its digest from `memo` when the memo has
    /// seen it.
    pub fn new_in(secret: S, memo: &mut DigestMemo) -> Self {
        let sha256 = memo.sha256(secret.as_ref());
        Hashed { secret, sha256 }
    }

    /// The secret's bytes.
    pub fn secret(&self) -> &[u8] {
        self.secret.as_ref()
    }

    /// The secret's SHA-256.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }

    /// The SHA-256 of `secret`: the digest of `known` when `secret` is
    /// byte for byte the secret it holds (a comparison costs far less than
    /// the hash), else computed now. So a digest is never reused for
    /// another value.
    pub fn sha256_of(known: Option<&Self>, secret: &[u8]) -> [u8; 32] {
        match known {
            Some(k) if k.secret.as_ref() == secret => k.sha256,
            _ => sha256(secret),
        }
    }

    /// [`Hashed::sha256_of`], with `memo` asked before hashing.
    pub fn sha256_of_in(known: Option<&Self>, secret: &[u8], memo: &mut DigestMemo) -> [u8; 32] {
        match known {
            Some(k) if k.secret.as_ref() == secret => k.sha256,
            _ => memo.sha256(secret),
        }
    }
}

impl<S> std::fmt::Debug for Hashed<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut fp = String::with_capacity(8);
        push_hex(&mut fp, self.sha256.get(..4).unwrap_or_default());
        f.debug_struct("Hashed")
            .field("fingerprint", &fp)
            .finish_non_exhaustive()
    }
}

/// The SHA-256 of recently seen secrets (a bounded four-way set-associative
/// table), so that a token presented again is not hashed again: hashing a
/// 700-byte JWT costs far more than finding it here. A secret is found
/// only when it equals a remembered one byte for byte, compared in
/// constant time (the table holds other callers' tokens; how much of one
/// matched must not show in the time taken). Secrets longer than
/// [`DigestMemo::MAX_SECRET`] are hashed and not kept, which bounds the
/// memory to `capacity * MAX_SECRET`. Meant to be kept per thread: no locks.
#[derive(Default)]
pub struct DigestMemo {
    /// `WAYS * sets` entries; a set is `WAYS` adjacent entries, newest
    /// filled first.
    entries: Vec<Option<Memo>>,
}

struct Memo {
    /// [`tag_of`] the secret: a different tag means a different secret, so
    /// the whole compare (which reads the secret from memory, a cache miss
    /// per 64 bytes once the table outgrows the CPU cache) runs only for
    /// the entry that may match. The tag mixes 16 bytes and the length: a
    /// caller guessing another's tag learns nothing short of all of them.
    tag: u64,
    secret: Box<[u8]>,
    sha256: [u8; 32],
}

impl DigestMemo {
    /// Longest secret kept (longer ones are hashed every time).
    pub const MAX_SECRET: usize = 2048;

    /// Entries per set: a secret can be in any of them. Four keep a
    /// 1,000-token rotation in 2,048 entries with few conflict misses
    /// (with two, about one lookup in 14 missed and hashed); the tags make
    /// looking at four as cheap as at one.
    const WAYS: usize = 4;

    /// A memo of about `capacity` secrets (rounded up to a power of two, at
    /// least [`Self::WAYS`]). Nothing is allocated before the first secret.
    pub fn new(capacity: usize) -> Self {
        let n = capacity.max(Self::WAYS).next_power_of_two();
        let mut entries = Vec::new();
        entries.resize_with(n, || None);
        DigestMemo { entries }
    }

    /// The SHA-256 of `secret`: remembered, or computed and remembered.
    pub fn sha256(&mut self, secret: &[u8]) -> [u8; 32] {
        let sets = self.entries.len() / Self::WAYS;
        if sets == 0 || secret.len() > Self::MAX_SECRET {
            return sha256(secret);
        }
        let tag = tag_of(secret);
        // The high bits are the well-mixed ones.
        let first = ((tag >> 32) as usize & (sets - 1)) * Self::WAYS;
        let Some(set) = self.entries.get_mut(first..first + Self::WAYS) else {
            return sha256(secret);
        };
        for m in set.iter().flatten() {
            if m.tag == tag && same_secret(&m.secret, secret) {
                return m.sha256;
            }
        }
        let digest = sha256(secret);
        // The newest entry goes first, the others move down one; the
        // oldest goes.
        set.rotate_right(1);
        if let Some(slot) = set.first_mut() {
            *slot = Some(Memo {
                tag,
                secret: secret.into(),
                sha256: digest,
            });
        }
        digest
    }
}

impl std::fmt::Debug for DigestMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestMemo")
            .field("capacity", &self.entries.len())
            .field("kept", &self.entries.iter().flatten().count())
            .finish()
    }
}

/// Whether `a` and `b` are equal, in time that depends on their lengths
/// only: every byte is compared (eight at a time, which the compiler turns
/// into vector instructions), with no early exit. A byte-at-a-time
/// constant-time compare (`CRYPTO_memcmp`) cost as much as a third of the
/// hash it saves.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u64;
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        let x = u64::from_ne_bytes(x.try_into().unwrap_or_default());
        let y = u64::from_ne_bytes(y.try_into().unwrap_or_default());
        diff |= x ^ y;
    }
    for (x, y) in ra.iter().zip(rb) {
        diff |= u64::from(x ^ y);
    }
    // Keeps the compiler from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

/// A secret's tag (its set is from the high bits): its length and its last
/// 16 bytes (a JWT ends with its signature, an opaque token is random),
/// mixed by a multiplication. Not a cryptographic hash: tokens chosen to
/// share a tag only evict each other, they cannot be confused (the full
/// secret is compared).
fn tag_of(secret: &[u8]) -> u64 {
    let tail = secret
        .get(secret.len().saturating_sub(16)..)
        .unwrap_or(secret);
    let mut word = [0u8; 16];
    if let Some(dst) = word.get_mut(..tail.len()) {
        dst.copy_from_slice(tail);
    }
    let (a, b) = word.split_at(8);
    let a = u64::from_le_bytes(a.try_into().unwrap_or_default());
    let b = u64::from_le_bytes(b.try_into().unwrap_or_default());
    (a ^ b.rotate_left(29) ^ secret.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Appends `bytes` as lower-case hex (the call log writes trace ids and
/// fingerprints on every request: no `format!`, no per-digit push).
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digit = |n: u8| DIGITS.get(usize::from(n)).copied().unwrap_or(b'0');
    let mut buf = [0u8; 64];
    for chunk in bytes.chunks(buf.len() / 2) {
        for (b, pair) in chunk.iter().zip(buf.chunks_exact_mut(2)) {
            if let [hi, lo] = pair {
                *hi = digit(b >> 4);
                *lo = digit(b & 15);
            }
        }
        let hex = buf.get(..chunk.len() * 2).unwrap_or_default();
        // Hex digits are ASCII: this never fails.
        out.push_str(std::str::from_utf8(hex).unwrap_or_default());
    }
}

/// `n` in decimal, appended to `out` (without the formatting machinery).
fn push_decimal(out: &mut String, mut n: usize) {
    let mut buf = [0u8; 20];
    let mut len = 0;
    for slot in buf.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
        len += 1;
        if n == 0 {
            break;
        }
    }
    let digits = buf.get(buf.len() - len..).unwrap_or_default();
    out.push_str(std::str::from_utf8(digits).unwrap_or_default());
}

/// Masks a secret value: its length and fingerprint, never its content.
pub fn mask(secret: &str) -> String {
    let mut out = String::with_capacity(32);
    push_mask(&mut out, secret);
    out
}

/// [`mask`], appended to `out`.
pub fn push_mask(out: &mut String, secret: &str) {
    push_mask_sha256(out, secret, &sha256(secret.as_bytes()));
}

/// Appends `«N chars, sha256:FP»` for a secret whose SHA-256 is known.
fn push_mask_sha256(out: &mut String, secret: &str, sha256: &[u8; 32]) {
    out.push('«');
    push_decimal(out, secret.chars().count());
    out.push_str(" chars, sha256:");
    push_hex(out, sha256.get(..4).unwrap_or_default());
    out.push('»');
}

/// Masks an `Authorization` header value, keeping the scheme.
pub fn mask_authorization(value: &str) -> String {
    mask_authorization_with_fingerprint(value).0
}

/// Masks an `Authorization` header value, keeping the scheme, and returns
/// the credential's fingerprint too (hashed once: the call log keeps both).
pub fn mask_authorization_with_fingerprint(value: &str) -> (String, String) {
    let mut out = String::with_capacity(value.split_once(' ').map_or(0, |(s, _)| s.len()) + 32);
    let sha256 = push_masked_authorization::<&[u8]>(&mut out, value, None);
    (out, fingerprint_of_sha256(&sha256))
}

/// [`mask_authorization`], appended to `out`; returns the SHA-256 of the
/// credential it masked (the part after the scheme, or the whole value
/// when there is no scheme). When `known` holds that credential, its
/// digest is used instead of hashing again.
pub fn push_masked_authorization<S: AsRef<[u8]>>(
    out: &mut String,
    value: &str,
    known: Option<&Hashed<S>>,
) -> [u8; 32] {
    let cred = match value.split_once(' ') {
        Some((scheme, cred)) => {
            out.push_str(scheme);
            out.push(' ');
            cred.trim()
        }
        None => value,
    };
    let sha256 = Hashed::sha256_of(known, cred.as_bytes());
    push_mask_sha256(out, cred, &sha256);
    sha256
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

    #[test]
    fn the_digest_memo_gives_the_digest_and_remembers_it() {
        let mut memo = DigestMemo::new(4);
        let a = b"token-a".as_slice();
        assert_eq!(memo.sha256(a), sha256(a));
        let kept = |memo: &DigestMemo, s: &[u8]| {
            memo.entries
                .iter()
                .flatten()
                .any(|m| &*m.secret == s && m.sha256 == sha256(s))
        };
        assert!(kept(&memo, a), "remembered with its own digest");
        assert_eq!(memo.sha256(a), sha256(a));
        assert_eq!(format!("{memo:?}"), "DigestMemo { capacity: 4, kept: 1 }");
        // Same length, same tail set: never confused with another secret.
        for i in 0..64u8 {
            let s = [b'x', i, b'y'];
            assert_eq!(memo.sha256(&s), sha256(&s));
            assert_eq!(memo.sha256(a), sha256(a));
        }
        assert!(memo.entries.iter().flatten().count() <= 4, "bounded");
        // Same length and last 16 bytes (a JWT with another's signature):
        // the same tag, never the same digest.
        let tail = "0123456789abcdef";
        let (x, y) = (format!("header.x.{tail}"), format!("header.y.{tail}"));
        assert_eq!(tag_of(x.as_bytes()), tag_of(y.as_bytes()));
        assert_eq!(memo.sha256(x.as_bytes()), sha256(x.as_bytes()));
        assert_eq!(memo.sha256(y.as_bytes()), sha256(y.as_bytes()));
        assert_eq!(memo.sha256(x.as_bytes()), sha256(x.as_bytes()));
    }

    #[test]
    fn secrets_are_compared_whole() {
        assert!(same_secret(b"", b""));
        assert!(same_secret(b"0123456789abcdefX", b"0123456789abcdefX"));
        assert!(!same_secret(b"0123456789abcdefX", b"0123456789abcdefY"));
        assert!(!same_secret(b"x123456789abcdefX", b"0123456789abcdefX"));
        assert!(!same_secret(b"abc", b"abcd"));
        let long: Vec<u8> = (0..=255).collect();
        let mut other = long.clone();
        assert!(same_secret(&long, &other));
        other[200] ^= 1;
        assert!(!same_secret(&long, &other));
    }

    #[test]
    fn the_digest_memo_keeps_no_long_secrets() {
        let mut memo = DigestMemo::new(8);
        let long = vec![b'a'; DigestMemo::MAX_SECRET + 1];
        assert_eq!(memo.sha256(&long), sha256(&long));
        assert_eq!(memo.entries.iter().flatten().count(), 0);
        let mut empty = DigestMemo::default();
        assert_eq!(empty.sha256(b"x"), sha256(b"x"));
        assert_eq!(memo.sha256(b""), sha256(b""));
    }
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
    fn masks_are_unchanged() {
        // The exact text records and evidence have always shown.
        let fp = fingerprint(b"abc");
        assert_eq!(fp, "ba7816bf");
        assert_eq!(mask("abc"), "«3 chars, sha256:ba7816bf»");
        assert_eq!(mask(""), format!("«0 chars, sha256:{}»", fingerprint(b"")));
        assert_eq!(
            mask_authorization("Bearer  abc "),
            "Bearer «3 chars, sha256:ba7816bf»"
        );
        assert_eq!(mask_authorization("abc"), "«3 chars, sha256:ba7816bf»");
        let (m, f) = mask_authorization_with_fingerprint("Basic abc");
        assert_eq!(
            (m.as_str(), f.as_str()),
            ("Basic «3 chars, sha256:ba7816bf»", "ba7816bf")
        );
        let long = "é".repeat(1234);
        assert!(mask(&long).starts_with("«1234 chars, sha256:"));
    }

    #[test]
    fn hex_and_decimal() {
        let mut s = String::new();
        push_hex(&mut s, &[0x00, 0xf0, 0x67, 0xaa]);
        assert_eq!(s, "00f067aa");
        let bytes: Vec<u8> = (0..=255).collect();
        let mut long = String::new();
        push_hex(&mut long, &bytes);
        let expected: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(long, expected);
        for n in [0, 7, 10, 99, 100, 12345, usize::MAX] {
            let mut d = String::new();
            push_decimal(&mut d, n);
            assert_eq!(d, n.to_string());
        }
    }

    #[test]
    fn a_known_digest_is_used_only_for_its_own_secret() {
        let known = Hashed::new(b"token-a".as_slice());
        assert_eq!(known.sha256(), &sha256(b"token-a"));
        assert_eq!(
            Hashed::sha256_of(Some(&known), b"token-a"),
            sha256(b"token-a")
        );
        assert_eq!(
            Hashed::sha256_of(Some(&known), b"token-b"),
            sha256(b"token-b")
        );
        assert_eq!(
            Hashed::sha256_of(None::<&Hashed<&[u8]>>, b"x"),
            sha256(b"x")
        );
        let mut out = String::new();
        let d = push_masked_authorization(&mut out, "Bearer token-a", Some(&known));
        assert_eq!(d, sha256(b"token-a"));
        assert_eq!(out, mask_authorization("Bearer token-a"));
        let debug = format!("{known:?}");
        assert!(
            !debug.contains("token-a") && debug.contains(&fingerprint(b"token-a")),
            "{debug}"
        );
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
