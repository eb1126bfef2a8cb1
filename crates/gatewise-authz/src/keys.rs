//! Signing keys: generated at start, published in the JWKS, rotated with
//! overlap (the previous public keys stay published so tokens signed before
//! a rotation keep verifying until they expire). `kid` is the RFC 7638
//! thumbprint of the public key.

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
        let (signer, required) = match alg {
            Alg::RS256 => {
                let k = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|e| crypto(&e))?;
                let c: signature::RsaPublicKeyComponents<Vec<u8>> = k.public_key().into();
                let req = json!({"e": b64url_encode(&c.e), "kty": "RSA", "n": b64url_encode(&c.n)});
                (Signer::Rsa(k), req)
            }
            Alg::ES256 => {
                let k = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
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
                let k = Ed25519KeyPair::generate().map_err(|e| crypto(&e))?;
                let req = json!({"crv": "Ed25519", "kty": "OKP", "x": b64url_encode(k.public_key().as_ref())});
                (Signer::Ed(k), req)
            }
            other => {
                return Err(AuthzError::Config(format!(
                    "signing with {other} is not supported; use RS256, ES256 or EdDSA"
                )));
            }
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
        })
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
const KEEP_PREVIOUS: usize = 2;

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
