//! JWK Sets (RFC 7517 §5, RFC 8725).

use super::body::{self, Json, check, jwks_kind};
use crate::capture::Response;
use crate::finding::{Check, Finding, Severity};
use crate::jose::Alg;
use crate::jose::jwk::{self, KeyError, Material, PRIVATE_MEMBERS};
use serde_json::Value;
use std::collections::BTreeMap;

check!(
    NO_KEYS,
    "JK-01",
    "jwks-keys-missing",
    Error,
    "RFC 7517 §5",
    "The document has no `keys` array (a bare JWK, or something else)."
);
check!(
    EMPTY,
    "JK-01",
    "jwks-empty",
    Error,
    "RFC 7517 §5",
    "The `keys` array is empty: nothing can be verified."
);
check!(
    KTY_MISSING,
    "JK-02",
    "jwk-kty-missing",
    Error,
    "RFC 7517 §4.1",
    "A key has no `kty`."
);
check!(
    KTY_UNKNOWN,
    "JK-02",
    "jwk-kty-unknown",
    Info,
    "RFC 7517 §5",
    "A key has a `kty` clients ignore."
);
check!(
    KID_DUPLICATE,
    "JK-03",
    "jwks-kid-duplicate",
    Warn,
    "RFC 7517 §4.5",
    "Two keys share a `kid`, so a token's `kid` does not pick one key."
);
check!(
    KID_MISSING,
    "JK-03",
    "jwks-kid-missing",
    Warn,
    "RFC 7517 §4.5",
    "A set of several keys has keys without `kid`."
);
check!(
    USE_ENC,
    "JK-04",
    "jwk-use-enc",
    Warn,
    "RFC 7517 §4.2",
    "A key is marked `use: enc` and must not verify signatures."
);
check!(
    USE_AND_OPS,
    "JK-04",
    "jwk-use-and-key-ops",
    Warn,
    "RFC 7517 §4.3",
    "A key has both `use` and `key_ops`."
);
check!(
    ALG_MISMATCH,
    "JB-02",
    "jwk-alg-kty-mismatch",
    Error,
    "RFC 7517 §4.4; RFC 8725 §2.1, §3.1",
    "A key's `alg` does not fit its key type or curve."
);
check!(
    PRIVATE_PUBLISHED,
    "JK-07",
    "jwks-private-key-published",
    Error,
    "RFC 7517 §9.2; RFC 7518 §6",
    "A published key includes private key members."
);
check!(
    SYMMETRIC_PUBLISHED,
    "JK-08",
    "jwks-symmetric-key-published",
    Error,
    "RFC 7517 §9.3",
    "A published key is symmetric (`kty: oct`): anyone can forge tokens with it."
);
check!(
    BOM,
    "JK-06",
    "jwks-bom",
    Warn,
    "RFC 8259 §8.1",
    "The JWK Set starts with a UTF-8 byte order mark (Canvas LMS rejected such a JWKS)."
);
check!(
    KEY_INVALID,
    "JB-03",
    "jwk-material-invalid",
    Error,
    "RFC 8725 §3.4; RFC 7518 §6",
    "A key's material is invalid (point not on the curve, bad encoding, wrong length)."
);
check!(
    RSA_WEAK,
    "JB-03",
    "jwk-rsa-too-short",
    Error,
    "RFC 7518 §3.3",
    "An RSA key is shorter than 2048 bits."
);

/// Checks defined in this module.
pub const CHECKS: &[&Check] = &[
    &NO_KEYS,
    &EMPTY,
    &KTY_MISSING,
    &KTY_UNKNOWN,
    &KID_DUPLICATE,
    &KID_MISSING,
    &USE_ENC,
    &USE_AND_OPS,
    &ALG_MISMATCH,
    &BOM,
    &PRIVATE_PUBLISHED,
    &SYMMETRIC_PUBLISHED,
    &KEY_INVALID,
    &RSA_WEAK,
];

/// Findings of one code beyond this many are summarised in one line.
const PER_CODE_LIMIT: usize = 10;

/// Judges a JWK Set response.
pub fn judge(resp: &Response, findings: &mut Vec<Finding>) {
    let sniffed = body::transport(None, resp, &BOM, findings);
    if let Some(s) = resp.status.filter(|s| *s != 200) {
        findings.push(
            Finding::new(&NO_KEYS, format!("the JWKS URL answered {s}"))
                .evidence(format!(
                    "HTTP {s}; body: {}",
                    body::body_evidence(&sniffed, &resp.body.decoded, 120)
                ))
                .cause("the jwks_uri is wrong or the key endpoint is down")
                .fix("serve the JWK Set with 200 at the jwks_uri the metadata names"),
        );
        return;
    }
    let Json::Object(doc) = body::json_object(
        &jwks_kind::KIND,
        resp,
        &sniffed,
        &["application/jwk-set+json"],
        findings,
    ) else {
        return;
    };
    let Some(keys) = jwk::set_keys(doc) else {
        let bare = doc.contains_key("kty");
        findings.push(
            Finding::new(&NO_KEYS, if bare { "the document is a single JWK, not a JWK Set" } else { "the document has no `keys` array" })
                .evidence(format!("members: {}", super::token::names(doc)))
                .cause(if bare { "the server publishes one key instead of a set" } else { "the URL serves something other than a JWK Set (metadata, a PEM wrapped in JSON, an x5c map)" })
                .fix("publish {\"keys\": [ ... ]} (RFC 7517 §5)"),
        );
        return;
    };
    if keys.is_empty() {
        findings.push(
            Finding::new(&EMPTY, "the JWK Set has no keys")
                .evidence("keys: []")
                .cause("signing keys were not provisioned, or all were filtered out")
                .fix("publish the current (and next) signing keys"),
        );
        return;
    }
    let mut per_code: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut push = |f: Finding, findings: &mut Vec<Finding>| {
        let n = per_code.entry(f.code).or_insert(0);
        *n += 1;
        if *n <= PER_CODE_LIMIT {
            findings.push(f);
        }
    };
    let mut kids: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut without_kid = 0usize;
    for k in &keys {
        let label = match k.kid {
            Some(kid) => format!("key {} (kid \"{kid}\")", k.index),
            None => format!("key {}", k.index),
        };
        match k.kid {
            Some(kid) => kids.entry(kid).or_default().push(k.index),
            None => without_kid += 1,
        }
        let private: Vec<&str> = PRIVATE_MEMBERS
            .iter()
            .copied()
            .filter(|m| k.raw.contains_key(*m))
            .collect();
        if !private.is_empty() {
            push(
                Finding::new(
                    &PRIVATE_PUBLISHED,
                    format!("{label} publishes private key material"),
                )
                .evidence(format!("private members present: {}", private.join(", ")))
                .cause("the server serialized the whole key pair instead of the public part")
                .fix("publish only public members; rotate this key now: it is compromised"),
                findings,
            );
        }
        match &k.material {
            Err(KeyError::NoKty) => push(
                Finding::new(&KTY_MISSING, format!("{label} has no kty"))
                    .evidence(format!("members: {}", k.raw.keys().cloned().collect::<Vec<_>>().join(", ")))
                    .cause("the key was serialized incompletely")
                    .fix("every JWK needs kty (RFC 7517 §4.1)"),
                findings,
            ),
            Err(KeyError::UnknownKty(t)) => push(
                Finding::new(&KTY_UNKNOWN, format!("{label} has kty \"{t}\", which clients ignore"))
                    .evidence(format!("kty: \"{t}\""))
                    .cause("an unregistered key type")
                    .fix("nothing required: clients must ignore keys with unknown kty (RFC 7517 §5)"),
                findings,
            ),
            Err(e) => push(
                Finding::new(&KEY_INVALID, format!("{label} is invalid: {e}"))
                    .evidence(format!("kty: {}", k.raw.get("kty").map(Value::to_string).unwrap_or_default()))
                    .cause("the key was encoded wrongly (standard base64, padding, wrong coordinate length) or is not a valid key; an EC point off the curve is the invalid-curve attack")
                    .fix("re-export the key with a JOSE library"),
                findings,
            ),
            Ok(Material::Oct(_)) => push(
                Finding::new(&SYMMETRIC_PUBLISHED, format!("{label} is a symmetric key, published"))
                    .evidence("kty: oct")
                    .cause("an HMAC secret was put into the public key set; anyone can mint valid HS* tokens")
                    .fix("remove it and rotate the secret; publish only asymmetric public keys"),
                findings,
            ),
            Ok(m) => {
                if let Some(bits) = m.rsa_bits().filter(|b| *b < 2048) {
                    push(
                        Finding::new(&RSA_WEAK, format!("{label} is a {bits}-bit RSA key"))
                            .evidence(format!("modulus: {bits} bits"))
                            .cause("a legacy key size; strict verifiers (aws-lc, ring) refuse it")
                            .fix("rotate to a key of at least 2048 bits (RFC 7518 §3.3)"),
                        findings,
                    );
                } else if let Some(alg) = k.alg.and_then(Alg::parse) {
                    if let Err(e) = jwk::VerifyingKey::new(alg, m) {
                        if matches!(e, KeyError::AlgMismatch { .. }) {
                            push(alg_mismatch(&label, alg, m), findings);
                        } else {
                            push(
                                Finding::new(&KEY_INVALID, format!("{label} is invalid: {e}"))
                                    .evidence(format!("kty: {}; alg: {alg}", m.kty()))
                                    .cause("the key material is not a valid public key (for EC: the point is not on the curve)")
                                    .fix("re-export the key with a JOSE library"),
                                findings,
                            );
                        }
                    }
                } else if k.alg.is_none() {
                    // No alg: validate EC points and Ed25519 keys with their natural algorithm.
                    let natural = match m {
                        Material::Ec { crv: "P-384", .. } => Some(Alg::ES384),
                        Material::Ec { crv: "P-521", .. } => Some(Alg::ES512),
                        Material::Ec { .. } => Some(Alg::ES256),
                        Material::Ed25519(_) => Some(Alg::EdDSA),
                        _ => None,
                    };
                    if let Some(Err(e)) = natural.map(|a| jwk::VerifyingKey::new(a, m)) {
                        push(
                            Finding::new(&KEY_INVALID, format!("{label} is invalid: {e}"))
                                .evidence(format!("kty: {}", m.kty()))
                                .cause("the key material is not a valid public key (for EC: the point is not on the curve)")
                                .fix("re-export the key with a JOSE library"),
                            findings,
                        );
                    }
                }
            }
        }
        if k.use_ == Some("enc") {
            push(
                Finding::new(&USE_ENC, format!("{label} is an encryption key (use: enc)"))
                    .evidence("use: \"enc\"")
                    .cause("the set mixes encryption and signing keys; verifiers must skip this one for signatures")
                    .fix("nothing wrong if a separate signing key exists; never sign with it"),
                findings,
            );
        }
        if k.raw.contains_key("use") && k.raw.contains_key("key_ops") {
            push(
                Finding::new(&USE_AND_OPS, format!("{label} has both use and key_ops"))
                    .evidence(format!(
                        "use: {}; key_ops: {}",
                        k.raw.get("use").map(Value::to_string).unwrap_or_default(),
                        k.raw
                            .get("key_ops")
                            .map(Value::to_string)
                            .unwrap_or_default()
                    ))
                    .cause("the exporter writes both")
                    .fix("keep one of them (RFC 7517 §4.3 SHOULD NOT use both)"),
                findings,
            );
        }
    }
    for (kid, idx) in &kids {
        if idx.len() > 1 {
            push(
                Finding::new(&KID_DUPLICATE, format!("kid \"{kid}\" is used by {} keys", idx.len()))
                    .evidence(format!("keys at positions {}", idx.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")))
                    .cause("keys were rotated by copying the kid, or the same key was published twice with different parameters")
                    .fix("give every key a distinct kid (a thumbprint per RFC 7638 works well)"),
                findings,
            );
        }
    }
    if without_kid > 0 && keys.len() > 1 {
        push(
            Finding::new(
                &KID_MISSING,
                format!("{without_kid} of {} keys have no kid", keys.len()),
            )
            .evidence("keys without kid in a multi-key set")
            .cause("verifiers must then try every key, and cannot tell a rotation from a forgery")
            .fix("give every key a kid and put it in the tokens' headers"),
            findings,
        );
    }
    for (code, n) in per_code {
        if n > PER_CODE_LIMIT
            && let Some(check) = CHECKS.iter().find(|c| c.code == code)
        {
            findings.push(
                Finding::new(
                    check,
                    format!("{} more keys with the same problem", n - PER_CODE_LIMIT),
                )
                .evidence(format!("{n} keys in all"))
                .cause("see the findings above")
                .fix("see the findings above"),
            );
        }
    }
}

fn alg_mismatch(label: &str, alg: Alg, m: &Material) -> Finding {
    Finding::new(
        &ALG_MISMATCH,
        format!(
            "{label} says alg {alg} but is a {} key",
            match m {
                Material::Ec { crv, .. } => format!("{} {crv}", m.kty()),
                _ => m.kty().to_string(),
            }
        ),
    )
    .evidence(format!(
        "kty: {}; alg: {alg} (needs kty {})",
        m.kty(),
        alg.family().kty()
    ))
    .cause("the key's metadata was written by hand or copied from another key")
    .fix("set alg to match the key (RS256 for RSA, ES256 for P-256, EdDSA for Ed25519)")
}
