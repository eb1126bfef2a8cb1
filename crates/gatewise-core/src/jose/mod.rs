//! JOSE: JWS algorithms, JWK keys and JWT inspection.
//!
//! Signature verification calls aws-lc-rs directly (the project's single
//! crypto provider) with keys parsed once per (key, algorithm), so a check
//! costs the raw verify and little more. Everything that is not the signature
//! math (decoding, header and claim rules) is ours, because the doctor must
//! explain malformed input that a strict JOSE library would only reject.

pub mod check;
pub mod jwk;
pub mod jwt;
pub mod keyset;

use std::fmt;

/// A JWS algorithm (RFC 7518 §3.1, RFC 8037 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Alg {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    ES512,
    EdDSA,
    /// `none`: unsecured JWS, never accepted.
    None,
}

/// The key family an algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// HMAC with a shared secret (`kty: oct`).
    Hmac,
    /// RSA (`kty: RSA`).
    Rsa,
    /// ECDSA on the named curve (`kty: EC`).
    Ec(&'static str),
    /// EdDSA (`kty: OKP`).
    Okp,
    /// No key.
    None,
}

impl Family {
    /// The JWK `kty` this family uses.
    pub fn kty(self) -> &'static str {
        match self {
            Family::Hmac => "oct",
            Family::Rsa => "RSA",
            Family::Ec(_) => "EC",
            Family::Okp => "OKP",
            Family::None => "none",
        }
    }
}

impl Alg {
    /// Every algorithm, for listings.
    pub const ALL: [Alg; 14] = [
        Alg::HS256,
        Alg::HS384,
        Alg::HS512,
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::ES512,
        Alg::EdDSA,
        Alg::None,
    ];

    /// Parses an `alg` header value (exact, case-sensitive as RFC 7515 requires).
    pub fn parse(s: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.name() == s)
    }

    /// The registered name.
    pub fn name(self) -> &'static str {
        match self {
            Alg::HS256 => "HS256",
            Alg::HS384 => "HS384",
            Alg::HS512 => "HS512",
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::ES512 => "ES512",
            Alg::EdDSA => "EdDSA",
            Alg::None => "none",
        }
    }

    /// The key family.
    pub fn family(self) -> Family {
        match self {
            Alg::HS256 | Alg::HS384 | Alg::HS512 => Family::Hmac,
            Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512 => {
                Family::Rsa
            }
            Alg::ES256 => Family::Ec("P-256"),
            Alg::ES384 => Family::Ec("P-384"),
            Alg::ES512 => Family::Ec("P-521"),
            Alg::EdDSA => Family::Okp,
            Alg::None => Family::None,
        }
    }

    /// The hash used for OIDC `at_hash` / `c_hash` (OpenID Connect Core §3.1.3.6).
    pub fn hash(self) -> Option<&'static aws_lc_rs::digest::Algorithm> {
        use aws_lc_rs::digest;
        match self {
            Alg::HS256 | Alg::RS256 | Alg::PS256 | Alg::ES256 => Some(&digest::SHA256),
            Alg::HS384 | Alg::RS384 | Alg::PS384 | Alg::ES384 => Some(&digest::SHA384),
            Alg::HS512 | Alg::RS512 | Alg::PS512 | Alg::ES512 | Alg::EdDSA => Some(&digest::SHA512),
            Alg::None => None,
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// base64url without padding (RFC 7515 §2), strictly.
pub fn b64url_decode(s: &str) -> Result<Vec<u8>, B64Error> {
    use base64::Engine as _;
    // Fast path: well-formed input decodes in one pass; the slower checks
    // below only run to explain a failure precisely.
    if let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s) {
        return Ok(bytes);
    }
    if s.contains('=') {
        return Err(B64Error::Padding);
    }
    if s.contains('+') || s.contains('/') {
        return Err(B64Error::StandardAlphabet);
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(B64Error::BadChar(c));
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|e| B64Error::Invalid(e.to_string()))
}

/// base64url-encodes without padding.
pub fn b64url_encode(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// Why a base64url value did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum B64Error {
    /// `=` padding, which base64url in JOSE omits.
    #[error("it has `=` padding, which JOSE base64url omits")]
    Padding,
    /// `+` or `/`: standard base64, not base64url.
    #[error("it uses `+` or `/`: standard base64, not base64url")]
    StandardAlphabet,
    /// A character outside the alphabet.
    #[error("it contains {0:?}, which is not a base64url character")]
    BadChar(char),
    /// Decoding failed otherwise (bad length).
    #[error("it is not valid base64url ({0})")]
    Invalid(String),
}
