//! JSON Web Keys (RFC 7517, RFC 7518 §6, RFC 8037): lenient reading of key
//! sets, validation of key material, and verification keys.

use super::{Alg, Family, b64url_decode};
use aws_lc_rs::{hmac, signature};
use serde_json::{Map, Value};

/// Public key material read from a JWK.
#[derive(Clone, PartialEq, Eq)]
pub enum Material {
    /// RSA modulus and exponent, big-endian, leading zeros stripped.
    Rsa {
        /// Modulus.
        n: Vec<u8>,
        /// Exponent.
        e: Vec<u8>,
    },
    /// An EC point, as the uncompressed SEC1 encoding `04 || x || y`.
    Ec {
        /// `P-256`, `P-384` or `P-521`.
        crv: &'static str,
        /// The uncompressed point.
        point: Vec<u8>,
    },
    /// An Ed25519 public key.
    Ed25519(Vec<u8>),
    /// A symmetric key (never in a public JWKS).
    Oct(Vec<u8>),
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Material::Rsa { n, .. } => write!(f, "Rsa({} bits)", n.len() * 8),
            Material::Ec { crv, .. } => write!(f, "Ec({crv})"),
            Material::Ed25519(_) => f.write_str("Ed25519"),
            Material::Oct(k) => write!(f, "Oct([redacted; {} bytes])", k.len()),
        }
    }
}

impl Material {
    /// The JWK `kty` of this material.
    pub fn kty(&self) -> &'static str {
        match self {
            Material::Rsa { .. } => "RSA",
            Material::Ec { .. } => "EC",
            Material::Ed25519(_) => "OKP",
            Material::Oct(_) => "oct",
        }
    }

    /// True when `alg` can be used with this key at all (family and curve).
    pub fn fits(&self, alg: Alg) -> bool {
        match (self, alg.family()) {
            (Material::Rsa { .. }, Family::Rsa)
            | (Material::Ed25519(_), Family::Okp)
            | (Material::Oct(_), Family::Hmac) => true,
            (Material::Ec { crv, .. }, Family::Ec(c)) => *crv == c,
            _ => false,
        }
    }

    /// RSA modulus size in bits.
    pub fn rsa_bits(&self) -> Option<usize> {
        match self {
            Material::Rsa { n, .. } => {
                Some(n.len() * 8 - n.first().map_or(0, |b| b.leading_zeros() as usize))
            }
            _ => None,
        }
    }
}

/// Why a JWK's material could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// `kty` is absent.
    #[error("the key has no kty")]
    NoKty,
    /// A `kty` this doctor does not verify with.
    #[error("kty {0:?} is not a signing key type")]
    UnknownKty(String),
    /// A required member is missing or not a string.
    #[error("member `{0}` is missing or not a string")]
    Missing(&'static str),
    /// A member is not base64url.
    #[error("member `{member}`: {error}")]
    Encoding {
        /// The member.
        member: &'static str,
        /// What is wrong.
        error: super::B64Error,
    },
    /// The curve is not supported.
    #[error("curve {0:?} is not supported")]
    Curve(String),
    /// A coordinate has the wrong length for the curve.
    #[error("coordinate `{member}` is {got} bytes, {crv} needs {want}")]
    CoordinateLength {
        /// `x` or `y`.
        member: &'static str,
        /// Curve.
        crv: &'static str,
        /// Bytes present.
        got: usize,
        /// Bytes required.
        want: usize,
    },
    /// The crypto library rejected the key (point not on the curve, bad modulus).
    #[error("the key is invalid: {0}")]
    Rejected(String),
    /// The algorithm does not fit this key.
    #[error("{alg} cannot be used with a {kty} key")]
    AlgMismatch {
        /// The algorithm.
        alg: Alg,
        /// The key type.
        kty: &'static str,
    },
}

fn member_bytes(map: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, KeyError> {
    let s = map
        .get(name)
        .and_then(Value::as_str)
        .ok_or(KeyError::Missing(name))?;
    b64url_decode(s).map_err(|error| KeyError::Encoding {
        member: name,
        error,
    })
}

/// Reads the public material of a JWK object.
pub fn material(map: &Map<String, Value>) -> Result<Material, KeyError> {
    let kty = map
        .get("kty")
        .and_then(Value::as_str)
        .ok_or(KeyError::NoKty)?;
    match kty {
        "RSA" => {
            let mut n = member_bytes(map, "n")?;
            let mut e = member_bytes(map, "e")?;
            // RFC 7518 §6.3.1.1 forbids leading zeros, but they are common; strip them.
            let lead = n.iter().take_while(|b| **b == 0).count();
            n.drain(..lead);
            let lead = e.iter().take_while(|b| **b == 0).count();
            e.drain(..lead);
            if n.is_empty() || e.is_empty() {
                return Err(KeyError::Rejected("empty modulus or exponent".to_string()));
            }
            Ok(Material::Rsa { n, e })
        }
        "EC" => {
            let crv = map
                .get("crv")
                .and_then(Value::as_str)
                .ok_or(KeyError::Missing("crv"))?;
            let (crv, len): (&'static str, usize) = match crv {
                "P-256" => ("P-256", 32),
                "P-384" => ("P-384", 48),
                "P-521" => ("P-521", 66),
                other => return Err(KeyError::Curve(other.to_string())),
            };
            let x = member_bytes(map, "x")?;
            let y = member_bytes(map, "y")?;
            for (member, v) in [("x", &x), ("y", &y)] {
                if v.len() != len {
                    return Err(KeyError::CoordinateLength {
                        member,
                        crv,
                        got: v.len(),
                        want: len,
                    });
                }
            }
            let mut point = Vec::with_capacity(1 + 2 * len);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            Ok(Material::Ec { crv, point })
        }
        "OKP" => {
            let crv = map
                .get("crv")
                .and_then(Value::as_str)
                .ok_or(KeyError::Missing("crv"))?;
            if crv != "Ed25519" {
                return Err(KeyError::Curve(crv.to_string()));
            }
            let x = member_bytes(map, "x")?;
            if x.len() != 32 {
                return Err(KeyError::CoordinateLength {
                    member: "x",
                    crv: "Ed25519",
                    got: x.len(),
                    want: 32,
                });
            }
            Ok(Material::Ed25519(x))
        }
        "oct" => Ok(Material::Oct(member_bytes(map, "k")?)),
        other => Err(KeyError::UnknownKty(other.to_string())),
    }
}

/// A key ready to verify signatures of one algorithm: parsed once, used many
/// times (the JWKS cache keeps these per `kid`).
pub struct VerifyingKey {
    alg: Alg,
    inner: Inner,
}

enum Inner {
    Public(signature::ParsedPublicKey),
    Hmac(Box<hmac::Key>),
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey({})", self.alg)
    }
}

/// The signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signature verification failed")]
pub struct BadSignature;

impl VerifyingKey {
    /// Parses `material` for `alg`, validating it (EC points on the curve,
    /// RSA moduli of at least 2048 bits).
    pub fn new(alg: Alg, material: &Material) -> Result<VerifyingKey, KeyError> {
        if !material.fits(alg) {
            return Err(KeyError::AlgMismatch {
                alg,
                kty: material.kty(),
            });
        }
        let rejected = |e: aws_lc_rs::error::KeyRejected| KeyError::Rejected(e.to_string());
        let inner = match (alg, material) {
            (Alg::HS256 | Alg::HS384 | Alg::HS512, Material::Oct(k)) => {
                let h = match alg {
                    Alg::HS384 => hmac::HMAC_SHA384,
                    Alg::HS512 => hmac::HMAC_SHA512,
                    _ => hmac::HMAC_SHA256,
                };
                Inner::Hmac(Box::new(hmac::Key::new(h, k)))
            }
            (_, Material::Rsa { n, e }) => {
                if material.rsa_bits().unwrap_or(0) < 2048 {
                    return Err(KeyError::Rejected(format!(
                        "RSA modulus is {} bits; at least 2048 are required",
                        material.rsa_bits().unwrap_or(0)
                    )));
                }
                let params: &'static signature::RsaParameters = match alg {
                    Alg::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    Alg::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    Alg::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
                    Alg::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
                    Alg::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
                    _ => &signature::RSA_PKCS1_2048_8192_SHA256,
                };
                let comps = signature::RsaPublicKeyComponents {
                    n: n.as_slice(),
                    e: e.as_slice(),
                };
                Inner::Public(comps.to_parsed_public_key(params).map_err(rejected)?)
            }
            (_, Material::Ec { point, .. }) => {
                let a: &'static signature::EcdsaVerificationAlgorithm = match alg {
                    Alg::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
                    Alg::ES512 => &signature::ECDSA_P521_SHA512_FIXED,
                    _ => &signature::ECDSA_P256_SHA256_FIXED,
                };
                Inner::Public(signature::ParsedPublicKey::new(a, point).map_err(rejected)?)
            }
            (_, Material::Ed25519(x)) => Inner::Public(
                signature::ParsedPublicKey::new(&signature::ED25519, x).map_err(rejected)?,
            ),
            _ => {
                return Err(KeyError::AlgMismatch {
                    alg,
                    kty: material.kty(),
                });
            }
        };
        Ok(VerifyingKey { alg, inner })
    }

    /// The algorithm this key verifies.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// Verifies `signature` over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), BadSignature> {
        match &self.inner {
            Inner::Public(k) => k.verify_sig(message, signature).map_err(|_| BadSignature),
            Inner::Hmac(k) => hmac::verify(k, message, signature).map_err(|_| BadSignature),
        }
    }
}

/// One member of a JWK Set, read leniently.
#[derive(Debug, Clone)]
pub struct SetKey<'a> {
    /// Position in the `keys` array.
    pub index: usize,
    /// The raw object.
    pub raw: &'a Map<String, Value>,
    /// `kid`, when a string.
    pub kid: Option<&'a str>,
    /// `alg`, when a string.
    pub alg: Option<&'a str>,
    /// `use`, when a string.
    pub use_: Option<&'a str>,
    /// The material, or why it could not be read.
    pub material: Result<Material, KeyError>,
}

/// Reads the `keys` of a JWK Set object; `None` when there is no `keys` array.
pub fn set_keys(doc: &Map<String, Value>) -> Option<Vec<SetKey<'_>>> {
    let keys = doc.get("keys")?.as_array()?;
    Some(
        keys.iter()
            .enumerate()
            .filter_map(|(index, k)| {
                let raw = k.as_object()?;
                Some(SetKey {
                    index,
                    raw,
                    kid: raw.get("kid").and_then(Value::as_str),
                    alg: raw.get("alg").and_then(Value::as_str),
                    use_: raw.get("use").and_then(Value::as_str),
                    material: material(raw),
                })
            })
            .collect(),
    )
}

/// Private members of RSA, EC and OKP keys (RFC 7518 §6.3.2, §6.2.2; RFC 8037 §2).
pub const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth"];
