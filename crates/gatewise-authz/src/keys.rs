//! Signing keys: generated once and kept in the state store (PKCS#8,
//! sealed with AES-256-GCM when a key-encryption key is configured, see
//! [`Sealer`]), published in the JWKS, rotated with overlap (the previous
//! public keys stay published so tokens signed before a rotation keep
//! verifying until they expire). `kid` is the RFC 7638 thumbprint of the
//! public key.

use crate::AuthzError;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use gatewise_core::jose::{Alg, b64url_encode};
use serde_json::{Value, json};
use std::sync::{Arc, RwLock};

enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A private signing key with its public JWK.
pub struct SigningKey {
    /// RFC 7638 thumbprint, used as `kid`.
    pub kid: String,
    /// The JWS algorithm.
    pub alg: Alg,
    signer: Signer,
    jwk: Value,
    /// The private key as PKCS#8 DER, for the state store.
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key.
        write!(f, "SigningKey({}, {})", self.alg, self.kid)
    }
}

fn thumbprint(required: &Value) -> String {
    // RFC 7638 §3: the required members, lexicographic order, no whitespace;
    // serde_json keeps insertion order here, so build them sorted.
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, required.to_string().as_bytes());
    b64url_encode(d.as_ref())
}

impl SigningKey {
    /// Generates a key for `alg` (RS256: RSA-2048; ES256: P-256; EdDSA: Ed25519).
    pub fn generate(alg: Alg) -> Result<SigningKey, AuthzError> {
        let crypto = |e: &dyn std::fmt::Display| AuthzError::Crypto(e.to_string());
        let rng = SystemRandom::new();
        let pkcs8: Vec<u8> = match alg {
            Alg::RS256 => {
                use aws_lc_rs::encoding::AsDer as _;
                let k = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|e| crypto(&e))?;
                k.as_der().map_err(|e| crypto(&e))?.as_ref().to_vec()
            }
            Alg::ES256 => {
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|e| crypto(&e))?
                    .as_ref()
                    .to_vec()
            }
            Alg::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|e| crypto(&e))?
                .as_ref()
                .to_vec(),
            other => return Err(unsupported(other)),
        };
        SigningKey::from_pkcs8(alg, &pkcs8)
    }

    /// A key from its PKCS#8 DER (as [`SigningKey::pkcs8`] gives it).
    pub fn from_pkcs8(alg: Alg, pkcs8: &[u8]) -> Result<SigningKey, AuthzError> {
        let crypto = |e: &dyn std::fmt::Display| {
            AuthzError::Crypto(format!("the stored {alg} private key is unusable: {e}"))
        };
        let (signer, required) = match alg {
            Alg::RS256 => {
                let k = RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| crypto(&e))?;
                let c: signature::RsaPublicKeyComponents<Vec<u8>> = k.public_key().into();
                let req = json!({"e": b64url_encode(&c.e), "kty": "RSA", "n": b64url_encode(&c.n)});
                (Signer::Rsa(k), req)
            }
            Alg::ES256 => {
                let k =
                    EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                        .map_err(|e| crypto(&e))?;
                let p = k.public_key().as_ref();
                let (x, y) = (
                    p.get(1..33).unwrap_or_default(),
                    p.get(33..65).unwrap_or_default(),
                );
                let req = json!({"crv": "P-256", "kty": "EC", "x": b64url_encode(x), "y": b64url_encode(y)});
                (Signer::Ec(k), req)
            }
            Alg::EdDSA => {
                let k = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| crypto(&e))?;
                let req = json!({"crv": "Ed25519", "kty": "OKP", "x": b64url_encode(k.public_key().as_ref())});
                (Signer::Ed(k), req)
            }
            other => return Err(unsupported(other)),
        };
        let kid = thumbprint(&required);
        let mut jwk = required;
        if let Some(m) = jwk.as_object_mut() {
            m.insert("kid".into(), json!(kid));
            m.insert("use".into(), json!("sig"));
            m.insert("alg".into(), json!(alg.name()));
        }
        Ok(SigningKey {
            kid,
            alg,
            signer,
            jwk,
            pkcs8: pkcs8.to_vec(),
        })
    }

    /// The private key as PKCS#8 DER (what the state store keeps, sealed
    /// when a key-encryption key is configured).
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public JWK (`kid`, `use: sig`, `alg` included).
    pub fn public_jwk(&self) -> &Value {
        &self.jwk
    }

    /// Signs a compact JWS with header `{alg, kid, typ}` over `claims`.
    pub fn sign(&self, typ: &str, claims: &Value) -> Result<String, AuthzError> {
        self.sign_with_kid(typ, claims, &self.kid)
    }

    /// Signs like [`SigningKey::sign`] but names `kid` in the header (the
    /// `unknown-kid` fault: a valid signature under a `kid` no JWKS has).
    pub fn sign_with_kid(
        &self,
        typ: &str,
        claims: &Value,
        kid: &str,
    ) -> Result<String, AuthzError> {
        let header = json!({"alg": self.alg.name(), "kid": kid, "typ": typ});
        let input = format!(
            "{}.{}",
            b64url_encode(header.to_string().as_bytes()),
            b64url_encode(claims.to_string().as_bytes())
        );
        let rng = SystemRandom::new();
        let sig = match &self.signer {
            Signer::Rsa(k) => {
                let mut out = vec![0u8; k.public_modulus_len()];
                k.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &rng,
                    input.as_bytes(),
                    &mut out,
                )
                .map_err(|e| AuthzError::Crypto(e.to_string()))?;
                out
            }
            Signer::Ec(k) => k
                .sign(&rng, input.as_bytes())
                .map_err(|e| AuthzError::Crypto(e.to_string()))?
                .as_ref()
                .to_vec(),
            Signer::Ed(k) => k.sign(input.as_bytes()).as_ref().to_vec(),
        };
        Ok(format!("{input}.{}", b64url_encode(&sig)))
    }
}

fn unsupported(alg: Alg) -> AuthzError {
    AuthzError::Config(format!(
        "signing with {alg} is not supported; use RS256, ES256 or EdDSA"
    ))
}

/// An unsecured JWT (RFC 7519 §6.1: `alg: none`, empty signature), for
/// the `alg-none` fault. RFC 9068 §2.1 and RFC 8725 §3.1 forbid accepting it.
pub fn unsecured(typ: &str, claims: &Value) -> String {
    let header = json!({"alg": "none", "typ": typ});
    format!(
        "{}.{}.",
        b64url_encode(header.to_string().as_bytes()),
        b64url_encode(claims.to_string().as_bytes())
    )
}

/// The active key and the previous ones still published.
#[derive(Debug)]
pub struct KeyRing {
    alg: Alg,
    inner: RwLock<Ring>,
}

#[derive(Debug)]
struct Ring {
    active: Arc<SigningKey>,
    previous: Vec<Arc<SigningKey>>,
}

/// How many retired keys stay published after rotations.
pub const KEEP_PREVIOUS: usize = 2;

impl KeyRing {
    /// A ring with one fresh key.
    pub fn new(alg: Alg) -> Result<KeyRing, AuthzError> {
        Ok(KeyRing {
            alg,
            inner: RwLock::new(Ring {
                active: Arc::new(SigningKey::generate(alg)?),
                previous: Vec::new(),
            }),
        })
    }

    /// A ring of keys loaded from the state store: `active`, then the
    /// previous ones still published, newest first.
    pub fn from_keys(alg: Alg, active: SigningKey, previous: Vec<SigningKey>) -> KeyRing {
        KeyRing {
            alg,
            inner: RwLock::new(Ring {
                active: Arc::new(active),
                previous: previous.into_iter().map(Arc::new).collect(),
            }),
        }
    }

    /// The algorithm of the ring.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// Replaces the keys (after a rotation, or what another instance
    /// stored). Keys already loaded are kept as they are.
    pub fn replace(&self, active: SigningKey, previous: Vec<SigningKey>) {
        let keep =
            |k: SigningKey| -> Arc<SigningKey> { self.find(&k.kid).unwrap_or_else(|| Arc::new(k)) };
        let active = keep(active);
        let previous: Vec<Arc<SigningKey>> = previous.into_iter().map(keep).collect();
        let mut w = match self.inner.write() {
            Ok(w) => w,
            Err(p) => p.into_inner(),
        };
        w.active = active;
        w.previous = previous;
    }

    /// The `kid`s published, the active one first.
    pub fn kids(&self) -> Vec<String> {
        let r = match self.inner.read() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        std::iter::once(&r.active)
            .chain(r.previous.iter())
            .map(|k| k.kid.clone())
            .collect()
    }

    /// The key new tokens are signed with.
    pub fn active(&self) -> Arc<SigningKey> {
        match self.inner.read() {
            Ok(r) => Arc::clone(&r.active),
            Err(p) => Arc::clone(&p.into_inner().active),
        }
    }

    /// Generates a new active key; the old one stays published
    /// (`overlap = true`) or is dropped at once (the `rotated-keys-no-overlap` fault).
    pub fn rotate(&self, overlap: bool) -> Result<String, AuthzError> {
        let fresh = Arc::new(SigningKey::generate(self.alg)?);
        let kid = fresh.kid.clone();
        let mut w = self
            .inner
            .write()
            .map_err(|_| AuthzError::Crypto("key ring lock poisoned".into()))?;
        let old = std::mem::replace(&mut w.active, fresh);
        if overlap {
            w.previous.insert(0, old);
            w.previous.truncate(KEEP_PREVIOUS);
        } else {
            w.previous.clear();
        }
        Ok(kid)
    }

    /// The JWK Set: the active key, then the previous ones.
    pub fn jwks(&self) -> Value {
        let r = match self.inner.read() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        let keys: Vec<Value> = std::iter::once(&r.active)
            .chain(r.previous.iter())
            .map(|k| k.public_jwk().clone())
            .collect();
        json!({ "keys": keys })
    }

    /// The published key with `kid`, if any.
    pub fn find(&self, kid: &str) -> Option<Arc<SigningKey>> {
        let r = match self.inner.read() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        std::iter::once(&r.active)
            .chain(r.previous.iter())
            .find(|k| k.kid == kid)
            .cloned()
    }
}

/// Seals private keys at rest: AES-256-GCM under a key-encryption key
/// from the environment or a file (`keys.encryption_key_env`,
/// `keys.encryption_key_file`), with the key's `kid` as associated data so
/// a sealed key cannot be swapped for another row's. A sealed key is
/// `GWK1` + 12-byte nonce + ciphertext and tag; a plain one is the PKCS#8
/// DER itself (it starts with a DER `SEQUENCE`, `0x30`, never with `G`).
pub struct Sealer {
    key: aws_lc_rs::aead::LessSafeKey,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(AES-256-GCM)")
    }
}

const SEALED: &[u8] = b"GWK1";

impl Sealer {
    /// A sealer from the key-encryption key as written in its variable or
    /// file: 32 bytes as 64 hex digits or as base64 / base64url (43 or 44
    /// characters). Surrounding whitespace is ignored.
    pub fn from_text(text: &str) -> Result<Sealer, AuthzError> {
        let t = text.trim();
        let bytes = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(t.get(i * 2..i * 2 + 2).unwrap_or("zz"), 16))
                .collect::<Result<Vec<u8>, _>>()
                .ok()
        } else {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(t.trim_end_matches('='))
                .ok()
                .or_else(|| base64::engine::general_purpose::STANDARD.decode(t).ok())
        };
        let bytes = bytes.filter(|b| b.len() == 32).ok_or_else(|| {
            AuthzError::Config(
                "the key-encryption key must be 32 bytes, written as 64 hex digits or base64 (e.g. `openssl rand -hex 32`)"
                    .into(),
            )
        })?;
        let unbound = aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, &bytes)
            .map_err(|e| AuthzError::Crypto(e.to_string()))?;
        Ok(Sealer {
            key: aws_lc_rs::aead::LessSafeKey::new(unbound),
        })
    }

    /// Seals `pkcs8` for the key `kid`.
    pub fn seal(&self, kid: &str, pkcs8: &[u8]) -> Result<Vec<u8>, AuthzError> {
        let mut nonce = [0u8; 12];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|e| AuthzError::Crypto(e.to_string()))?;
        let mut in_out = pkcs8.to_vec();
        self.key
            .seal_in_place_append_tag(
                aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
                aws_lc_rs::aead::Aad::from(kid.as_bytes()),
                &mut in_out,
            )
            .map_err(|e| AuthzError::Crypto(e.to_string()))?;
        let mut out = SEALED.to_vec();
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&in_out);
        Ok(out)
    }

    /// Whether `stored` is a sealed key (rather than plain PKCS#8).
    pub fn is_sealed(stored: &[u8]) -> bool {
        stored.starts_with(SEALED)
    }

    /// Opens what [`Sealer::seal`] produced for `kid`.
    pub fn open(&self, kid: &str, stored: &[u8]) -> Result<Vec<u8>, AuthzError> {
        let fail = || {
            AuthzError::Crypto(format!(
                "the stored private key {kid} cannot be decrypted: wrong key-encryption key, or the row was altered"
            ))
        };
        let rest = stored.strip_prefix(SEALED).ok_or_else(fail)?;
        let (nonce, sealed) = rest.split_at_checked(12).ok_or_else(fail)?;
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| fail())?;
        let mut in_out = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(
                aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
                aws_lc_rs::aead::Aad::from(kid.as_bytes()),
                &mut in_out,
            )
            .map_err(|_| fail())?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_survive_pkcs8_and_sealing() {
        for alg in [Alg::RS256, Alg::ES256, Alg::EdDSA] {
            let k = SigningKey::generate(alg).unwrap();
            let again = SigningKey::from_pkcs8(alg, k.pkcs8()).unwrap();
            assert_eq!(k.kid, again.kid);
            assert_eq!(k.public_jwk(), again.public_jwk());
            let sealer = Sealer::from_text(&"ab".repeat(32)).unwrap();
            let sealed = sealer.seal(&k.kid, k.pkcs8()).unwrap();
            assert!(Sealer::is_sealed(&sealed));
            assert!(!Sealer::is_sealed(k.pkcs8()));
            assert!(
                !sealed
                    .windows(16)
                    .any(|w| k.pkcs8().windows(16).any(|p| p == w)),
                "no 16 bytes of the key in clear"
            );
            assert_eq!(sealer.open(&k.kid, &sealed).unwrap(), k.pkcs8());
            // Another kid (a swapped row) or another key-encryption key fails.
            assert!(sealer.open("other", &sealed).is_err());
            let other = Sealer::from_text(&"cd".repeat(32)).unwrap();
            assert!(other.open(&k.kid, &sealed).is_err());
        }
        assert!(Sealer::from_text("short").is_err());
        assert!(Sealer::from_text("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").is_ok());
    }
}
