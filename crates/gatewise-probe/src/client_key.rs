//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, OpenID
//! Connect Core §9): the client's private key, read from a PEM file
//! (PKCS#8, PKCS#1 RSA, SEC1 EC) or a private JWK (or a JWK Set holding
//! one), and the client assertion signed with it for each request.
//!
//! Keys are parsed and checked with aws-lc-rs when loaded (a bad file is a
//! clear error naming what is wrong, never a panic later); assertions are
//! signed with `jsonwebtoken`, the workspace's JOSE library. The key never
//! shows in `Debug`, only its algorithm, `kid` and a fingerprint of its
//! public part.

use crate::ProbeError;
use aws_lc_rs::signature::{self as sig, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value};

/// The `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is valid: short, since a fresh one is signed for
/// every request (RFC 7523 §3 item 4 asks for an `exp`; servers commonly
/// cap the lifetime at a few minutes).
pub const LIFETIME_SECS: u64 = 60;

/// The key family, which fixes the algorithms it can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Family::Rsa => "an RSA key",
            Family::P256 => "an EC P-256 key",
            Family::P384 => "an EC P-384 key",
            Family::Ed25519 => "an Ed25519 key",
        }
    }

    /// The algorithm used when none is asked for.
    fn default_alg(self) -> Algorithm {
        match self {
            Family::Rsa => Algorithm::RS256,
            Family::P256 => Algorithm::ES256,
            Family::P384 => Algorithm::ES384,
            Family::Ed25519 => Algorithm::EdDSA,
        }
    }

    fn allows(self, alg: Algorithm) -> bool {
        match self {
            Family::Rsa => matches!(
                alg,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ),
            Family::P256 => alg == Algorithm::ES256,
            Family::P384 => alg == Algorithm::ES384,
            Family::Ed25519 => alg == Algorithm::EdDSA,
        }
    }

    fn algs(self) -> &'static str {
        match self {
            Family::Rsa => "RS256, RS384, RS512, PS256, PS384 or PS512",
            Family::P256 => "ES256",
            Family::P384 => "ES384",
            Family::Ed25519 => "EdDSA",
        }
    }
}

/// The JWS algorithm names a client assertion may use (RFC 7518 §3.1,
/// RFC 8037 §3.1); `none` and the HMAC ones are not private-key algorithms.
pub const ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

fn parse_alg(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::EdDSA => "EdDSA",
        // Never chosen: `parse` only picks private-key algorithms.
        _ => "unsupported",
    }
}

/// A client's private signing key for `private_key_jwt`.
#[derive(Clone)]
pub struct ClientKey {
    key: EncodingKey,
    alg: Algorithm,
    kid: Option<String>,
    /// The first hex digits of the SHA-256 of the public key (for `Debug`
    /// and equality: two loads of one key are equal).
    fingerprint: String,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("alg", &self.alg_name())
            .field("kid", &self.kid)
            .field("public_key_sha256", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl PartialEq for ClientKey {
    fn eq(&self, other: &Self) -> bool {
        self.alg == other.alg && self.kid == other.kid && self.fingerprint == other.fingerprint
    }
}

impl Eq for ClientKey {}

/// A key read from a file, before the algorithm is chosen.
struct Loaded {
    family: Family,
    /// What `jsonwebtoken` signs with: PKCS#1 DER for RSA, PKCS#8 DER else.
    der: Vec<u8>,
    /// The public key's bytes (for the fingerprint).
    public: Vec<u8>,
    /// `kid` and `alg` a JWK carried.
    kid: Option<String>,
    alg: Option<String>,
}

impl ClientKey {
    /// Reads a private key. `name` names the file in errors; `bytes` is
    /// its content: a PEM private key (`PRIVATE KEY` PKCS#8 with RSA, EC
    /// P-256/P-384 or Ed25519; `RSA PRIVATE KEY`; `EC PRIVATE KEY`), a
    /// private JWK, or a JWK Set holding private keys (the one whose `kid`
    /// is `kid`, or its only one). `kid` (else the JWK's) goes into the
    /// assertion's header; `alg` (else the JWK's, else RS256 / ES256 /
    /// ES384 / EdDSA by key type) signs it.
    pub fn parse(
        name: &str,
        bytes: &[u8],
        kid: Option<&str>,
        alg: Option<&str>,
    ) -> Result<ClientKey, ProbeError> {
        let bad = |reason: String| ProbeError::ClientKey {
            file: name.to_string(),
            reason,
        };
        let text = std::str::from_utf8(bytes).map_err(|_| {
            bad("not text: expected a PEM private key or a private JWK (JSON)".into())
        })?;
        let text = text.trim_start_matches('\u{feff}').trim();
        let loaded = if text.starts_with('{') {
            let doc: Value = serde_json::from_str(text)
                .map_err(|e| bad(format!("not valid JSON ({e}): expected a private JWK")))?;
            jwk_document(&doc, kid).map_err(bad)?
        } else if text.contains("-----BEGIN ") {
            pem(text).map_err(bad)?
        } else if text.is_empty() {
            return Err(bad("the file is empty".into()));
        } else {
            return Err(bad(
                "neither a PEM private key (-----BEGIN PRIVATE KEY-----) nor a private JWK (JSON)"
                    .into(),
            ));
        };
        let alg_wanted = alg.map(str::to_string).or(loaded.alg.clone());
        let alg = match alg_wanted.as_deref() {
            None => loaded.family.default_alg(),
            Some(a) => {
                let parsed = parse_alg(a).ok_or_else(|| {
                    bad(format!(
                        "algorithm {a:?} cannot sign a client assertion: use one of {}",
                        ALGORITHMS.join(", ")
                    ))
                })?;
                if !loaded.family.allows(parsed) {
                    return Err(bad(format!(
                        "{} cannot sign {a}: use {}",
                        loaded.family.name(),
                        loaded.family.algs()
                    )));
                }
                parsed
            }
        };
        let key = match loaded.family {
            Family::Rsa => EncodingKey::from_rsa_der(&loaded.der),
            Family::P256 | Family::P384 => EncodingKey::from_ec_der(&loaded.der),
            Family::Ed25519 => EncodingKey::from_ed_der(&loaded.der),
        };
        let digest = gatewise_core::secret::sha256(&loaded.public);
        let fingerprint = digest
            .get(..8)
            .unwrap_or_default()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let key = ClientKey {
            key,
            alg,
            kid: kid.map(str::to_string).or(loaded.kid),
            fingerprint,
        };
        // Sign once now, so a key that cannot sign fails here, naming the file.
        key.sign(&Map::new())
            .map_err(|e| bad(format!("the key cannot sign {}: {e}", key.alg_name())))?;
        Ok(key)
    }

    /// The JWS algorithm the assertions are signed with.
    pub fn alg_name(&self) -> &'static str {
        alg_name(self.alg)
    }

    /// The `kid` put in the assertions' header, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The client assertion for one request (RFC 7523 §3): `iss` = `sub` =
    /// `client_id`, `aud` = `audience` (the token endpoint URL: RFC 7523 §3
    /// item 3, OpenID Connect Core §9), a random `jti` (item 7; servers
    /// refuse a replayed one), `iat` = `now` and `exp` [`LIFETIME_SECS`]
    /// later.
    pub fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        now: u64,
    ) -> Result<String, ProbeError> {
        let mut jti = [0u8; 18];
        aws_lc_rs::rand::fill(&mut jti)
            .map_err(|_| ProbeError::Setup("no random numbers from the operating system".into()))?;
        let mut claims = Map::new();
        claims.insert("iss".into(), Value::from(client_id));
        claims.insert("sub".into(), Value::from(client_id));
        claims.insert("aud".into(), Value::from(audience));
        claims.insert("jti".into(), Value::from(URL_SAFE_NO_PAD.encode(jti)));
        claims.insert("iat".into(), Value::from(now));
        claims.insert("exp".into(), Value::from(now.saturating_add(LIFETIME_SECS)));
        self.sign(&claims)
            .map_err(|e| ProbeError::Setup(format!("cannot sign the client assertion: {e}")))
    }

    fn sign(&self, claims: &Map<String, Value>) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(self.alg);
        header.typ = Some("JWT".into());
        header.kid = self.kid.clone();
        jsonwebtoken::encode(&header, claims, &self.key)
    }
}

// ------------------------------------------------------------------ PEM

/// The first PEM block's label and DER content.
fn pem_block(text: &str) -> Result<(String, Vec<u8>), String> {
    let start = text
        .find("-----BEGIN ")
        .ok_or_else(|| "no -----BEGIN line".to_string())?;
    let rest = text.get(start + "-----BEGIN ".len()..).unwrap_or("");
    let (label, rest) = rest
        .split_once("-----")
        .ok_or_else(|| "the -----BEGIN line is not closed by -----".to_string())?;
    let end_marker = format!("-----END {label}-----");
    let body = rest
        .split_once(&end_marker)
        .map(|(b, _)| b)
        .ok_or_else(|| format!("no {end_marker} line: the file is cut short"))?;
    if body.contains("Proc-Type:") {
        return Err(format!(
            "the {label} is encrypted (legacy OpenSSL encryption): decrypt it first, e.g. `openssl pkey -in FILE -out key.pem`"
        ));
    }
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD
        .decode(b64.as_bytes())
        .map_err(|e| format!("the {label} block is not valid base64 ({e})"))?;
    Ok((label.to_string(), der))
}

fn pem(text: &str) -> Result<Loaded, String> {
    let (label, der) = pem_block(text)?;
    match label.as_str() {
        "PRIVATE KEY" => pkcs8(&der),
        "RSA PRIVATE KEY" => {
            let pair = sig::RsaKeyPair::from_der(&der)
                .map_err(|e| format!("the RSA PRIVATE KEY (PKCS#1) is not a usable RSA key: {e}"))?;
            Ok(Loaded {
                family: Family::Rsa,
                public: pair.public_key().as_ref().to_vec(),
                der,
                kid: None,
                alg: None,
            })
        }
        "EC PRIVATE KEY" => {
            for (family, alg) in [
                (Family::P256, &sig::ECDSA_P256_SHA256_FIXED_SIGNING),
                (Family::P384, &sig::ECDSA_P384_SHA384_FIXED_SIGNING),
            ] {
                if let Ok(pair) = sig::EcdsaKeyPair::from_private_key_der(alg, &der) {
                    let doc = pair
                        .to_pkcs8v1()
                        .map_err(|_| "the EC key cannot be converted to PKCS#8".to_string())?;
                    return Ok(Loaded {
                        family,
                        public: pair.public_key().as_ref().to_vec(),
                        der: doc.as_ref().to_vec(),
                        kid: None,
                        alg: None,
                    });
                }
            }
            Err("the EC PRIVATE KEY is not a usable P-256 or P-384 key (other curves, such as secp256k1, are not supported)".into())
        }
        "ENCRYPTED PRIVATE KEY" => Err(
            "the key is encrypted (PKCS#8 with a password): decrypt it first, e.g. `openssl pkcs8 -in FILE -out key.pem` (and keep the result private)"
                .into(),
        ),
        "PUBLIC KEY" | "RSA PUBLIC KEY" => Err(format!(
            "it holds a {label}: the client assertion is signed with the private key (the public key is what the server registers)"
        )),
        "CERTIFICATE" => Err(
            "it holds a CERTIFICATE: the client assertion is signed with the private key that belongs to it"
                .into(),
        ),
        other => Err(format!(
            "its PEM block is {other:?}, not a private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)"
        )),
    }
}

/// A PKCS#8 `PrivateKeyInfo` (RFC 5958): RSA, EC P-256/P-384 or Ed25519.
fn pkcs8(der: &[u8]) -> Result<Loaded, String> {
    if let Ok(pair) = sig::RsaKeyPair::from_pkcs8(der) {
        return Ok(Loaded {
            family: Family::Rsa,
            public: pair.public_key().as_ref().to_vec(),
            der: pkcs1_of_pkcs8(der).ok_or_else(|| {
                "the RSA PRIVATE KEY inside the PKCS#8 cannot be read".to_string()
            })?,
            kid: None,
            alg: None,
        });
    }
    for (family, alg) in [
        (Family::P256, &sig::ECDSA_P256_SHA256_FIXED_SIGNING),
        (Family::P384, &sig::ECDSA_P384_SHA384_FIXED_SIGNING),
    ] {
        if let Ok(pair) = sig::EcdsaKeyPair::from_pkcs8(alg, der) {
            return Ok(Loaded {
                family,
                public: pair.public_key().as_ref().to_vec(),
                der: der.to_vec(),
                kid: None,
                alg: None,
            });
        }
    }
    if let Ok(pair) = sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
        let doc = pair
            .to_pkcs8()
            .map_err(|_| "the Ed25519 key cannot be re-encoded".to_string())?;
        return Ok(Loaded {
            family: Family::Ed25519,
            public: pair.public_key().as_ref().to_vec(),
            der: doc.as_ref().to_vec(),
            kid: None,
            alg: None,
        });
    }
    Err("the PKCS#8 PRIVATE KEY is not a usable RSA (2048 bits or more), EC P-256/P-384 or Ed25519 key".into())
}

/// One DER TLV: tag, content, rest.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&len0, rest) = rest.split_first()?;
    let (len, rest) = if len0 < 0x80 {
        (usize::from(len0), rest)
    } else {
        let n = usize::from(len0 & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, rest) = rest.split_at_checked(n)?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    let (content, rest) = rest.split_at_checked(len)?;
    Some((tag, content, rest))
}

/// The `privateKey` OCTET STRING of a PKCS#8 `PrivateKeyInfo`: for RSA, the
/// PKCS#1 `RSAPrivateKey` that `jsonwebtoken` signs with.
fn pkcs1_of_pkcs8(der: &[u8]) -> Option<Vec<u8>> {
    let (0x30, info, _) = tlv(der)? else {
        return None;
    };
    let (0x02, _version, rest) = tlv(info)? else {
        return None;
    };
    let (0x30, _algorithm, rest) = tlv(rest)? else {
        return None;
    };
    let (0x04, key, _) = tlv(rest)? else {
        return None;
    };
    Some(key.to_vec())
}

/// DER of `SEQUENCE { INTEGER... }`: a PKCS#1 `RSAPrivateKey` (RFC 8017
/// App. A.1.2) from its big-endian components.
fn der_rsa_private_key(parts: &[&[u8]]) -> Vec<u8> {
    fn len(out: &mut Vec<u8>, n: usize) {
        if n < 0x80 {
            out.push(n as u8);
        } else {
            let bytes: Vec<u8> = n
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
    }
    let mut body = vec![0x02, 0x01, 0x00]; // version two-prime
    for p in parts {
        let trimmed: &[u8] = {
            let skip = p.iter().take_while(|b| **b == 0).count();
            p.get(skip..).unwrap_or_default()
        };
        let pad = trimmed.first().is_none_or(|b| b & 0x80 != 0);
        body.push(0x02);
        len(&mut body, trimmed.len() + usize::from(pad));
        if pad {
            body.push(0);
        }
        body.extend_from_slice(trimmed);
    }
    let mut out = vec![0x30];
    len(&mut out, body.len());
    out.extend(body);
    out
}

// ------------------------------------------------------------------ JWK

/// A private JWK, or the right private key of a JWK Set.
fn jwk_document(doc: &Value, kid: Option<&str>) -> Result<Loaded, String> {
    let Some(obj) = doc.as_object() else {
        return Err("the JSON is not an object: expected a private JWK".into());
    };
    let Some(keys) = obj.get("keys") else {
        return jwk(obj);
    };
    let Some(keys) = keys.as_array() else {
        return Err("\"keys\" is not an array: expected a JWK Set (RFC 7517 §5)".into());
    };
    let private: Vec<&Map<String, Value>> = keys
        .iter()
        .filter_map(Value::as_object)
        .filter(|k| k.contains_key("d"))
        .collect();
    let kid_of = |k: &Map<String, Value>| k.get("kid").and_then(Value::as_str).map(str::to_string);
    match (kid, private.as_slice()) {
        (_, []) => Err(format!(
            "the JWK Set holds {} key(s), none of them private (no \"d\"): the client assertion is signed with the private key",
            keys.len()
        )),
        (Some(want), many) => match many.iter().find(|k| kid_of(k).as_deref() == Some(want)) {
            Some(k) => jwk(k),
            None => Err(format!(
                "no private key with kid {want:?} in the JWK Set (private keys: {})",
                many.iter()
                    .map(|k| kid_of(k).unwrap_or_else(|| "(no kid)".into()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        },
        (None, [one]) => jwk(one),
        (None, many) => Err(format!(
            "the JWK Set holds {} private keys: choose one with --client-key-id (kids: {})",
            many.len(),
            many.iter()
                .map(|k| kid_of(k).unwrap_or_else(|| "(no kid)".into()))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn jwk(k: &Map<String, Value>) -> Result<Loaded, String> {
    let field = |name: &str| -> Result<Vec<u8>, String> {
        let s = k
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("the JWK has no \"{name}\""))?;
        URL_SAFE_NO_PAD
            .decode(s.trim_end_matches('=').as_bytes())
            .map_err(|e| format!("the JWK's \"{name}\" is not base64url ({e})"))
    };
    let kty = k.get("kty").and_then(Value::as_str).unwrap_or("");
    if !k.contains_key("d") {
        return Err(
            "the JWK is a public key (no \"d\"): the client assertion is signed with the private key"
                .into(),
        );
    }
    let kid = k.get("kid").and_then(Value::as_str).map(str::to_string);
    let alg = k.get("alg").and_then(Value::as_str).map(str::to_string);
    let loaded = match kty {
        "RSA" => {
            let missing: Vec<&str> = ["n", "e", "d", "p", "q", "dp", "dq", "qi"]
                .into_iter()
                .filter(|m| !k.contains_key(*m))
                .collect();
            if !missing.is_empty() {
                return Err(format!(
                    "the RSA JWK lacks {} (RFC 7518 §6.3.2; keys without the prime factors and CRT values are not supported)",
                    missing.join(", ")
                ));
            }
            let parts = ["n", "e", "d", "p", "q", "dp", "dq", "qi"]
                .into_iter()
                .map(field)
                .collect::<Result<Vec<_>, _>>()?;
            let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            let der = der_rsa_private_key(&refs);
            let pair = sig::RsaKeyPair::from_der(&der).map_err(|e| {
                format!(
                    "the RSA JWK is not a usable key (2048 bits or more, consistent values): {e}"
                )
            })?;
            Loaded {
                family: Family::Rsa,
                public: pair.public_key().as_ref().to_vec(),
                der,
                kid,
                alg,
            }
        }
        "EC" => {
            let crv = k.get("crv").and_then(Value::as_str).unwrap_or("");
            let (family, signing) = match crv {
                "P-256" => (Family::P256, &sig::ECDSA_P256_SHA256_FIXED_SIGNING),
                "P-384" => (Family::P384, &sig::ECDSA_P384_SHA384_FIXED_SIGNING),
                other => {
                    return Err(format!(
                        "the EC JWK's curve {other:?} is not supported (P-256 or P-384)"
                    ));
                }
            };
            let (d, x, y) = (field("d")?, field("x")?, field("y")?);
            let mut point = vec![0x04];
            point.extend(&x);
            point.extend(&y);
            let pair = sig::EcdsaKeyPair::from_private_key_and_public_key(signing, &d, &point)
                .map_err(|e| format!("the EC JWK is not a usable {crv} key (d, x and y must belong together): {e}"))?;
            let doc = pair
                .to_pkcs8v1()
                .map_err(|_| "the EC key cannot be converted to PKCS#8".to_string())?;
            Loaded {
                family,
                public: point,
                der: doc.as_ref().to_vec(),
                kid,
                alg,
            }
        }
        "OKP" => {
            let crv = k.get("crv").and_then(Value::as_str).unwrap_or("");
            if crv != "Ed25519" {
                return Err(format!(
                    "the OKP JWK's curve {crv:?} is not supported (Ed25519)"
                ));
            }
            let (d, x) = (field("d")?, field("x")?);
            let pair = sig::Ed25519KeyPair::from_seed_and_public_key(&d, &x)
                .map_err(|e| format!("the Ed25519 JWK is not a usable key: {e}"))?;
            let doc = pair
                .to_pkcs8()
                .map_err(|_| "the Ed25519 key cannot be converted to PKCS#8".to_string())?;
            Loaded {
                family: Family::Ed25519,
                public: x,
                der: doc.as_ref().to_vec(),
                kid,
                alg,
            }
        }
        "oct" => {
            return Err(
                "the JWK is a symmetric key (kty oct): that is client_secret_jwt, not private_key_jwt"
                    .into(),
            );
        }
        other => {
            return Err(format!("the JWK's kty {other:?} is not RSA, EC or OKP"));
        }
    };
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::{AsBigEndian as _, AsDer as _};

    fn pem_of(label: &str, der: &[u8]) -> String {
        let b64 = STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    fn claims(token: &str) -> (Value, Value) {
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let dec = |s: &str| -> Value {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).unwrap()).unwrap()
        };
        (dec(parts[0]), dec(parts[1]))
    }

    /// Verifies with the core's own JOSE (an independent path from the
    /// signer) against `jwk`.
    fn verifies(token: &str, jwk: Value) -> bool {
        let mut options = gatewise_core::jose::jwt::Options::at(1_700_000_010);
        options.keys = gatewise_core::jose::jwt::Keys::Jwks(serde_json::json!({ "keys": [jwk] }));
        gatewise_core::jose::jwt::inspect(token, &options)
            .iter()
            .any(|f| f.code == "jwt-signature-verified")
    }

    fn ec_public_jwk(public: &[u8], kid: &str) -> Value {
        let (x, y) = public[1..].split_at(32);
        serde_json::json!({"kty": "EC", "crv": "P-256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)})
    }

    #[test]
    fn ec_pkcs8_pem_signs_es256_assertions() {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let doc =
            sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            sig::EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref())
                .unwrap();
        let pem = pem_of("PRIVATE KEY", doc.as_ref());
        let key = ClientKey::parse("key.pem", pem.as_bytes(), Some("k1"), None).unwrap();
        assert_eq!(key.alg_name(), "ES256");
        let a = key
            .assertion("svc", "https://as.test/token", 1_700_000_000)
            .unwrap();
        let b = key
            .assertion("svc", "https://as.test/token", 1_700_000_000)
            .unwrap();
        let (h, c) = claims(&a);
        assert_eq!(h["alg"], "ES256");
        assert_eq!(h["kid"], "k1");
        assert_eq!(c["iss"], "svc");
        assert_eq!(c["sub"], "svc");
        assert_eq!(c["aud"], "https://as.test/token");
        assert_eq!(c["iat"], 1_700_000_000);
        assert_eq!(c["exp"], 1_700_000_060);
        assert_ne!(c["jti"], claims(&b).1["jti"], "jti is fresh each time");
        assert!(verifies(
            &a,
            ec_public_jwk(pair.public_key().as_ref(), "k1")
        ));
        // Debug never shows the key.
        let dbg = format!("{key:?}");
        assert!(dbg.contains("ES256") && !dbg.contains("MIG"), "{dbg}");
    }

    #[test]
    fn ec_private_jwk_and_sec1_pem() {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let doc =
            sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            sig::EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref())
                .unwrap();
        let public = pair.public_key().as_ref().to_vec();
        let d = pair.private_key().as_be_bytes().unwrap();
        let mut jwk = ec_public_jwk(&public, "from-jwk");
        jwk["d"] = Value::from(URL_SAFE_NO_PAD.encode(d.as_ref()));
        let key = ClientKey::parse("key.json", jwk.to_string().as_bytes(), None, None).unwrap();
        assert_eq!((key.alg_name(), key.kid()), ("ES256", Some("from-jwk")));
        let a = key
            .assertion("svc", "https://as.test/token", 1_700_000_000)
            .unwrap();
        assert!(verifies(&a, ec_public_jwk(&public, "from-jwk")));

        // The same key in a JWK Set, and as SEC1 `EC PRIVATE KEY`.
        let set = serde_json::json!({"keys": [jwk.clone()]});
        let from_set =
            ClientKey::parse("set.json", set.to_string().as_bytes(), None, None).unwrap();
        assert_eq!(from_set, key);
        let sec1 = pair.private_key().as_der().unwrap();
        let pem = pem_of("EC PRIVATE KEY", sec1.as_ref());
        let from_sec1 = ClientKey::parse("ec.pem", pem.as_bytes(), Some("from-jwk"), None).unwrap();
        assert_eq!(from_sec1, key);
    }

    #[test]
    fn rsa_pkcs8_pem_and_alg_override() {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs8 = pair.as_der().unwrap();
        let pem = pem_of("PRIVATE KEY", pkcs8.as_ref());
        let key = ClientKey::parse("rsa.pem", pem.as_bytes(), None, None).unwrap();
        assert_eq!(key.alg_name(), "RS256");
        let ps = ClientKey::parse("rsa.pem", pem.as_bytes(), None, Some("PS256")).unwrap();
        let a = ps
            .assertion("svc", "https://as.test/token", 1_700_000_000)
            .unwrap();
        assert_eq!(claims(&a).0["alg"], "PS256");
        let err = ClientKey::parse("rsa.pem", pem.as_bytes(), None, Some("ES256"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("rsa.pem: an RSA key cannot sign ES256"),
            "{err}"
        );
        // Verified against the public key the pair holds.
        let public = sig::UnparsedPublicKey::new(
            &sig::RSA_PKCS1_2048_8192_SHA256,
            pair.public_key().as_ref().to_vec(),
        );
        let (signed, s) = a.rsplit_once('.').unwrap();
        let a256 = key.assertion("svc", "aud", 1).unwrap();
        let (signed256, s256) = a256.rsplit_once('.').unwrap();
        public
            .verify(signed256.as_bytes(), &URL_SAFE_NO_PAD.decode(s256).unwrap())
            .unwrap();
        let _ = (signed, s);
    }

    #[test]
    fn rsa_private_jwk_is_rebuilt_as_pkcs1() {
        // A 2048-bit RSA key in JWK form, generated with Node.js's
        // crypto.generateKeyPairSync for this test only.
        let jwk: Value =
            serde_json::from_str(include_str!("../tests/fixtures/rsa-private.jwk.json")).unwrap();
        let key = ClientKey::parse("rsa.json", jwk.to_string().as_bytes(), None, None).unwrap();
        assert_eq!(key.alg_name(), "RS256");
        let a = key
            .assertion("svc", "https://as.test/token", 1_700_000_000)
            .unwrap();
        let public =
            serde_json::json!({"kty": "RSA", "kid": "test-rsa", "n": jwk["n"], "e": jwk["e"]});
        assert!(verifies(&a, public));
        // Without the CRT values: named.
        let mut short = jwk.as_object().unwrap().clone();
        short.remove("qi");
        short.remove("dp");
        let err = ClientKey::parse(
            "rsa.json",
            Value::Object(short).to_string().as_bytes(),
            None,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("lacks dp, qi"), "{err}");
    }

    #[test]
    fn bad_files_are_named_and_explained() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "the file is empty"),
            (b"hello", "neither a PEM private key"),
            (b"{\"kty\":\"EC\"", "not valid JSON"),
            (b"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}", "a public key (no \"d\")"),
            (b"{\"kty\":\"oct\",\"k\":\"AA\",\"d\":\"x\"}", "client_secret_jwt"),
            (b"{\"keys\":[]}", "none of them private"),
            (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "holds a PUBLIC KEY"),
            (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "CERTIFICATE"),
            (b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n", "encrypted"),
            (b"-----BEGIN PRIVATE KEY-----\nAAAA\n", "cut short"),
            (b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n", "not valid base64"),
            (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "not a usable RSA"),
            (b"\xff\xfe", "not text"),
        ];
        for (bytes, want) in cases {
            let err = ClientKey::parse("/keys/client.pem", bytes, None, None)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("/keys/client.pem: "), "{err}");
            assert!(err.contains(want), "{want:?} not in {err:?}");
        }
        let err = ClientKey::parse(
            "k.pem",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            None,
            Some("HS256"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not a usable"), "{err}");
    }

    #[test]
    fn a_jwk_set_with_several_private_keys_needs_a_kid() {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let mut keys = Vec::new();
        for kid in ["a", "b"] {
            let doc =
                sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .unwrap();
            let pair =
                sig::EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref())
                    .unwrap();
            let mut jwk = ec_public_jwk(pair.public_key().as_ref(), kid);
            jwk["d"] = Value::from(
                URL_SAFE_NO_PAD.encode(pair.private_key().as_be_bytes().unwrap().as_ref()),
            );
            keys.push(jwk);
        }
        let set = serde_json::json!({ "keys": keys }).to_string();
        let err = ClientKey::parse("set.json", set.as_bytes(), None, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--client-key-id (kids: a, b)"), "{err}");
        let b = ClientKey::parse("set.json", set.as_bytes(), Some("b"), None).unwrap();
        assert_eq!(b.kid(), Some("b"));
        let err = ClientKey::parse("set.json", set.as_bytes(), Some("c"), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no private key with kid \"c\""), "{err}");
    }
}
