//! The edge check: what the gateway runs on every request carrying a JWT
//! (RFC 8725 §3, RFC 7519 §7.2, RFC 9068 §4).
//!
//! It is the hot path, so unlike [`super::jwt::inspect`] (which explains
//! everything wrong with a token) it stops at the first reason to refuse,
//! parses the header and the registered claims into typed structs that borrow
//! from the decoded bytes, and keeps the full payload only as raw JSON for
//! policies that need other claims.
//!
//! Checking happens in two steps so the caller can fetch keys in between:
//! [`parse`] does the structural and header checks (no key needed; forged
//! `kid`s and unknown `alg`s are refused here before any signature math), then
//! [`Parsed::verify`] checks the signature with the key the caller found and
//! validates the claims against a [`Policy`] at a given time.

use super::Alg;
use super::jwk::VerifyingKey;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// The largest token accepted (larger input is refused as malformed).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// What a route requires of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Algorithms accepted; a token with another `alg` is refused before any
    /// key lookup (RFC 8725 §3.1). Must not be empty.
    pub algorithms: Vec<Alg>,
    /// Exact `iss` required (RFC 9068 §4), when set.
    pub issuer: Option<String>,
    /// `aud` must contain at least one of these (RFC 7519 §4.1.3); not checked when empty.
    pub audiences: Vec<String>,
    /// Seconds of clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway: u64,
    /// Require `typ: at+jwt` (RFC 9068 §2.1).
    pub require_at_jwt: bool,
    /// Refuse tokens without `exp` (RFC 9068 §2.2 makes it required).
    pub require_exp: bool,
}

impl Policy {
    /// A policy accepting `algorithms` with a 60 s leeway and `exp` required.
    pub fn new(algorithms: Vec<Alg>) -> Policy {
        Policy {
            algorithms,
            issuer: None,
            audiences: Vec::new(),
            leeway: 60,
            require_at_jwt: false,
            require_exp: true,
        }
    }
}

/// Why a token was refused. [`Rejection::reason`] is a stable code for
/// challenges, logs and metrics; `Display` is the sentence for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Not a compact JWS: wrong segment count, bad base64url, not JSON objects.
    #[error("the token is malformed: {0}")]
    Malformed(String),
    /// The header has `crit`, and no extension is understood (RFC 7515 §4.1.11).
    #[error("the token header has `crit` parameters this server does not understand")]
    CritUnsupported,
    /// `alg` is not in the route's allow-list (this covers `none`).
    #[error("alg `{0}` is not accepted here")]
    AlgNotAllowed(String),
    /// No key for the header's `kid` (after any refetch the caller did).
    #[error("no key with kid `{0}` is known for this issuer")]
    KidUnknown(String),
    /// The key found is for another algorithm or key type (RFC 8725 §3.1).
    #[error("the key for this token is a {key} key, but the token says alg `{alg}`")]
    KeyMismatch {
        /// The key's algorithm.
        key: Alg,
        /// The token's algorithm.
        alg: Alg,
    },
    /// The signature does not verify.
    #[error("the signature does not verify")]
    SignatureInvalid,
    /// A required claim is absent or has the wrong JSON type.
    #[error("claim `{0}` is missing or not of the right type")]
    ClaimMissing(&'static str),
    /// `exp` is past, beyond the leeway.
    #[error("the token expired {by} s ago")]
    Expired {
        /// Seconds since `exp`.
        by: u64,
    },
    /// `nbf` is ahead, beyond the leeway.
    #[error("the token is not valid for another {by} s")]
    NotYetValid {
        /// Seconds until `nbf`.
        by: u64,
    },
    /// `iat` is ahead, beyond the leeway: the issuer's clock runs ahead.
    #[error("the token was issued {by} s in the future: the issuer's clock is ahead")]
    IssuedInFuture {
        /// Seconds `iat` is ahead.
        by: u64,
    },
    /// `iss` differs from the configured issuer.
    #[error("iss is `{found}`, not the configured issuer")]
    IssuerMismatch {
        /// The token's `iss`.
        found: String,
    },
    /// `aud` holds none of the accepted audiences.
    #[error("aud {found:?} holds none of the accepted audiences")]
    AudienceMismatch {
        /// The token's audiences.
        found: Vec<String>,
    },
    /// `typ` is not `at+jwt` where RFC 9068 access tokens are required.
    #[error("typ is `{0}`, not at+jwt")]
    TypMismatch(String),
    /// The token carries ID-token claims (`nonce`, `at_hash`): an ID token sent as an access token.
    #[error("this is an ID token; send the access token instead")]
    IdTokenAsAccessToken,
}

impl Rejection {
    /// The stable reason code.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Malformed(_) => "jwt-malformed",
            Rejection::CritUnsupported => "jwt-crit-unsupported",
            Rejection::AlgNotAllowed(_) => "jwt-alg-not-allowed",
            Rejection::KidUnknown(_) => "jwt-kid-unknown",
            Rejection::KeyMismatch { .. } => "jwt-key-mismatch",
            Rejection::SignatureInvalid => "jwt-signature-invalid",
            Rejection::ClaimMissing(_) => "jwt-claim-missing",
            Rejection::Expired { .. } => "jwt-expired",
            Rejection::NotYetValid { .. } => "jwt-not-yet-valid",
            Rejection::IssuedInFuture { .. } => "jwt-iat-future",
            Rejection::IssuerMismatch { .. } => "jwt-iss-mismatch",
            Rejection::AudienceMismatch { .. } => "jwt-aud-mismatch",
            Rejection::TypMismatch(_) => "jwt-typ-mismatch",
            Rejection::IdTokenAsAccessToken => "jwt-id-token-as-access-token",
        }
    }

    /// Every reason code, for documentation and metrics pre-registration.
    pub const REASONS: &'static [&'static str] = &[
        "jwt-malformed",
        "jwt-crit-unsupported",
        "jwt-alg-not-allowed",
        "jwt-kid-unknown",
        "jwt-key-mismatch",
        "jwt-signature-invalid",
        "jwt-claim-missing",
        "jwt-expired",
        "jwt-not-yet-valid",
        "jwt-iat-future",
        "jwt-iss-mismatch",
        "jwt-aud-mismatch",
        "jwt-typ-mismatch",
        "jwt-id-token-as-access-token",
    ];
}

/// The JOSE header fields the check reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// `alg`, parsed.
    pub alg: Alg,
    /// `kid`, if present.
    pub kid: Option<String>,
    /// `typ`, if present.
    pub typ: Option<String>,
}

#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    alg: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    typ: Option<Cow<'a, str>>,
    crit: Option<IgnoredAny>,
}

/// A token that passed the structural and header checks. The claims are
/// parsed but not yet trusted: use them only to pick the issuer and key.
#[derive(Debug, Clone)]
pub struct Parsed<'t> {
    /// The header.
    pub header: Header,
    /// The claims, unverified.
    pub claims: Claims,
    signing_input: &'t str,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

/// Structural and header checks: three base64url segments, JSON-object
/// header and payload, `alg` in the allow-list, no `crit`.
pub fn parse<'t>(token: &'t str, policy: &Policy) -> Result<Parsed<'t>, Rejection> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Rejection::Malformed(format!(
            "{} bytes, over the {MAX_TOKEN_LEN}-byte limit",
            token.len()
        )));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        let n = token.split('.').count();
        return Err(Rejection::Malformed(if n == 5 {
            "five segments: an encrypted JWE, not a signed JWT".to_string()
        } else {
            format!("{n} segments; a signed JWT has 3")
        }));
    };
    let seg = |name: &str, b64: &str| {
        super::b64url_decode(b64).map_err(|e| Rejection::Malformed(format!("{name}: {e}")))
    };
    let header_bytes = seg("header", h)?;
    let raw: RawHeader<'_> = serde_json::from_slice(&header_bytes)
        .map_err(|e| Rejection::Malformed(format!("header is not a JSON object: {e}")))?;
    if raw.crit.is_some() {
        return Err(Rejection::CritUnsupported);
    }
    let alg_name = raw
        .alg
        .ok_or_else(|| Rejection::Malformed("the header has no alg".into()))?;
    let alg = Alg::parse(&alg_name)
        .filter(|a| *a != Alg::None && policy.algorithms.contains(a))
        .ok_or_else(|| Rejection::AlgNotAllowed(alg_name.chars().take(32).collect()))?;
    let header = Header {
        alg,
        kid: raw.kid.map(Cow::into_owned),
        typ: raw.typ.map(Cow::into_owned),
    };
    let payload = seg("payload", p)?;
    if payload.first() != Some(&b'{') {
        return Err(Rejection::Malformed("payload is not a JSON object".into()));
    }
    let claims: Claims = serde_json::from_slice(&payload)
        .map_err(|e| Rejection::Malformed(format!("claims: {e}")))?;
    let signature = seg("signature", s)?;
    let signing_input = token.get(..h.len() + 1 + p.len()).unwrap_or_default();
    Ok(Parsed {
        header,
        claims,
        signing_input,
        payload,
        signature,
    })
}

/// The registered claims, typed. Audiences and scopes accept both the string
/// and the array form; `scp` (Entra, Okta) is read when `scope` is absent.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Claims {
    /// `iss`.
    pub iss: Option<String>,
    /// `sub`.
    pub sub: Option<String>,
    /// `aud`, one or many.
    #[serde(default, deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    /// `exp` (NumericDate; fractions allowed).
    pub exp: Option<f64>,
    /// `nbf`.
    pub nbf: Option<f64>,
    /// `iat`.
    pub iat: Option<f64>,
    /// `jti`.
    pub jti: Option<String>,
    /// `client_id` (RFC 9068 §2.2).
    pub client_id: Option<String>,
    /// `azp` (OpenID Connect).
    pub azp: Option<String>,
    /// `scope` as a space-separated string (RFC 9068 §2.2.3), or an array.
    #[serde(default, deserialize_with = "one_or_many")]
    pub scope: Vec<String>,
    /// `scp`, the array form some providers use.
    #[serde(default, deserialize_with = "one_or_many")]
    pub scp: Vec<String>,
    /// `nonce`: present only in ID tokens.
    pub nonce: Option<IgnoredAnyPresent>,
    /// `at_hash`: present only in ID tokens.
    pub at_hash: Option<IgnoredAnyPresent>,
}

impl Claims {
    /// The granted scopes: `scope` split on spaces, else `scp`.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        let from_scope = self.scope.iter().flat_map(|s| s.split(' '));
        let from_scp = self
            .scope
            .is_empty()
            .then_some(self.scp.iter())
            .into_iter()
            .flatten()
            .map(String::as_str);
        from_scope.chain(from_scp).filter(|s| !s.is_empty())
    }
}

/// Marks a claim as present without keeping its value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IgnoredAnyPresent;

impl<'de> Deserialize<'de> for IgnoredAnyPresent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(d).map(|_| IgnoredAnyPresent)
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or an array of strings")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(vec![v.to_owned()])
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(16));
            while let Some(s) = seq.next_element::<String>()? {
                out.push(s);
            }
            Ok(out)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
    }
    d.deserialize_any(V)
}

/// A token that passed every check.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The header.
    pub header: Header,
    /// The registered claims.
    pub claims: Claims,
    /// The whole payload as JSON, for policies on other claims.
    pub payload: Vec<u8>,
}

impl Parsed<'_> {
    /// Checks the signature with `key` (the key the caller found for
    /// `header.kid`), then the claims against `policy` at Unix time `now`.
    pub fn verify(
        self,
        key: &VerifyingKey,
        policy: &Policy,
        now: u64,
    ) -> Result<Verified, Rejection> {
        let verified = self.verify_signature(key)?;
        validate(&verified.header, &verified.claims, policy, now)?;
        Ok(verified)
    }

    /// Checks only the signature, consuming the token. The gateway caches
    /// the result and runs [`validate`] with each route's policy, on hits too.
    pub fn verify_signature(self, key: &VerifyingKey) -> Result<Verified, Rejection> {
        self.check_signature(key)?;
        Ok(self.into_verified())
    }

    /// Checks the signature with `key` without consuming the token (to try
    /// several candidate keys).
    pub fn check_signature(&self, key: &VerifyingKey) -> Result<(), Rejection> {
        if key.alg() != self.header.alg {
            return Err(Rejection::KeyMismatch {
                key: key.alg(),
                alg: self.header.alg,
            });
        }
        key.verify(self.signing_input.as_bytes(), &self.signature)
            .map_err(|_| Rejection::SignatureInvalid)
    }

    /// The token as verified; call only after [`Parsed::check_signature`] succeeded.
    pub fn into_verified(self) -> Verified {
        Verified {
            header: self.header,
            claims: self.claims,
            payload: self.payload,
        }
    }
}

/// Claim rules, in the order a person fixes them: type, issuer, audience,
/// time. Run it on every request, also when the signature check was cached.
pub fn validate(
    header: &Header,
    claims: &Claims,
    policy: &Policy,
    now: u64,
) -> Result<(), Rejection> {
    if claims.nonce.is_some() || claims.at_hash.is_some() {
        return Err(Rejection::IdTokenAsAccessToken);
    }
    if policy.require_at_jwt {
        let typ = header.typ.as_deref().unwrap_or("");
        if !typ.eq_ignore_ascii_case("at+jwt") && !typ.eq_ignore_ascii_case("application/at+jwt") {
            return Err(Rejection::TypMismatch(if typ.is_empty() {
                "(absent)".into()
            } else {
                typ.chars().take(40).collect()
            }));
        }
    }
    if let Some(want) = &policy.issuer {
        match &claims.iss {
            None => return Err(Rejection::ClaimMissing("iss")),
            Some(iss) if iss != want => {
                return Err(Rejection::IssuerMismatch {
                    found: iss.chars().take(200).collect(),
                });
            }
            Some(_) => {}
        }
    }
    if !policy.audiences.is_empty() && !claims.aud.iter().any(|a| policy.audiences.contains(a)) {
        if claims.aud.is_empty() {
            return Err(Rejection::ClaimMissing("aud"));
        }
        return Err(Rejection::AudienceMismatch {
            found: claims.aud.iter().take(8).cloned().collect(),
        });
    }
    let now_f = now as f64;
    let leeway = policy.leeway as f64;
    match claims.exp {
        Some(exp) if now_f >= exp + leeway => {
            return Err(Rejection::Expired {
                by: (now_f - exp).max(0.0) as u64,
            });
        }
        None if policy.require_exp => return Err(Rejection::ClaimMissing("exp")),
        _ => {}
    }
    if let Some(nbf) = claims.nbf
        && nbf > now_f + leeway
    {
        return Err(Rejection::NotYetValid {
            by: (nbf - now_f) as u64,
        });
    }
    if let Some(iat) = claims.iat
        && iat > now_f + leeway
    {
        return Err(Rejection::IssuedInFuture {
            by: (iat - now_f) as u64,
        });
    }
    Ok(())
}
