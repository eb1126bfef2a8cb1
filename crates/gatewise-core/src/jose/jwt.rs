//! JWT inspection: decode without trusting, then judge header, claims and
//! (when keys are given) the signature, saying things a person needs
//! ("expired 47 s ago; with a 60 s leeway it would pass").
//!
//! Order of checks follows RFC 8725 §3: structure and `alg` first, keys
//! and `kid` before any signature math, claims last.

use super::jwk::{self, Material, VerifyingKey};
use super::{Alg, B64Error, b64url_decode, b64url_encode};
use crate::diagnose::body::check;
use crate::finding::{Check, Finding, Severity};
use crate::secret;
use serde_json::{Map, Value};

check!(
    MALFORMED,
    "JW-01",
    "jwt-malformed",
    Error,
    "RFC 7519 §7.2; RFC 7515 §7.1",
    "The token is not a well-formed compact JWS (three base64url segments of JSON)."
);
check!(
    IS_JWE,
    "JW-02",
    "jwt-is-jwe",
    Warn,
    "RFC 7516 §7.1",
    "The token is an encrypted JWT (JWE, five segments): it needs the recipient's key."
);
check!(
    OPAQUE,
    "JW-03",
    "jwt-opaque",
    Info,
    "RFC 6749 §1.4; RFC 7662",
    "The token is opaque (not a JWT): only introspection can tell what it means."
);
check!(
    CRIT,
    "JW-04",
    "jwt-crit-unsupported",
    Error,
    "RFC 7515 §4.1.11",
    "The header lists `crit` extensions a verifier must understand or reject."
);
check!(
    SIG_INVALID,
    "JW-05",
    "jwt-signature-invalid",
    Error,
    "RFC 7515 §5.2",
    "The signature does not verify with the key given."
);
check!(
    SIG_VERIFIED,
    "JW-05",
    "jwt-signature-verified",
    Info,
    "RFC 7515 §5.2",
    "The signature verifies with the key given."
);
check!(
    SIG_UNCHECKED,
    "JW-06",
    "jwt-signature-not-checked",
    Info,
    "RFC 7515 §5.2",
    "No key was given, so the signature was not checked."
);
check!(
    ALG_NONE,
    "JB-01",
    "jwt-alg-none",
    Error,
    "RFC 8725 §3.1; RFC 7518 §3.6",
    "The token is unsecured (`alg: none`)."
);
check!(
    ALG_UNKNOWN,
    "JB-01",
    "jwt-alg-unknown",
    Error,
    "RFC 8725 §3.1",
    "`alg` is missing or not a JWS algorithm a verifier should accept."
);
check!(
    KEY_CONFUSION,
    "JB-02",
    "jwt-alg-key-confusion",
    Error,
    "RFC 8725 §2.1, §3.1",
    "The token's `alg` family does not match the key type (RS256-to-HS256 confusion and kin)."
);
check!(
    HMAC_SHORT,
    "JB-03",
    "jwt-hmac-secret-short",
    Warn,
    "RFC 7518 §3.2; RFC 8725 §3.5",
    "The HMAC secret is shorter than the hash output."
);
check!(
    HEADER_KEY_REF,
    "JB-05",
    "jwt-header-key-reference",
    Warn,
    "RFC 8725 §3.10",
    "The header carries `jku`, `x5u`, `jwk` or `x5c`: never fetch or trust keys from the token."
);
check!(
    KID_SUSPICIOUS,
    "JB-05",
    "jwt-kid-suspicious",
    Warn,
    "RFC 8725 §3.10",
    "The `kid` contains path, SQL or shell characters (injection attempts)."
);
check!(
    TYP_ID_AS_ACCESS,
    "JB-06",
    "jwt-typ-confusion",
    Warn,
    "RFC 8725 §3.11; RFC 9068 §4",
    "The token's type does not match its use (an ID token presented as an access token, or the reverse)."
);
check!(
    KID_UNKNOWN,
    "JK-03",
    "jwt-kid-not-in-jwks",
    Error,
    "RFC 7517 §4.5; OpenID Connect Core §10.1.1",
    "The token's `kid` is not in the JWKS."
);
check!(
    KID_ABSENT,
    "JK-03",
    "jwt-kid-absent",
    Info,
    "RFC 7515 §4.1.4",
    "The token has no `kid`; every key of the right type was tried."
);
check!(
    JWK_ALG_DIFFERS,
    "JK-05",
    "jwt-alg-differs-from-jwk",
    Error,
    "RFC 7517 §4.4",
    "The token's `alg` differs from the `alg` of the key its `kid` names."
);
check!(
    KEY_USE_ENC,
    "JK-04",
    "jwt-key-use-enc",
    Warn,
    "RFC 7517 §4.2",
    "The key the `kid` names is an encryption key."
);
check!(
    AT_TYP,
    "AT-01",
    "jwt-at-typ-missing",
    Error,
    "RFC 9068 §2.1, §4",
    "An RFC 9068 access token must have `typ: at+jwt`."
);
check!(
    AT_CLAIMS,
    "AT-02",
    "jwt-at-claims-missing",
    Error,
    "RFC 9068 §2.2",
    "An RFC 9068 access token lacks required claims (iss, exp, aud, sub, client_id, iat, jti)."
);
check!(
    AT_HEADER_NONCE,
    "AT-05",
    "jwt-header-nonce",
    Info,
    "— (Microsoft Graph quirk)",
    "The header has a `nonce` (Microsoft Graph): such tokens are not verifiable by third parties."
);
check!(
    ID_CLAIMS,
    "ID-01",
    "jwt-id-claims-missing",
    Error,
    "OpenID Connect Core §2",
    "An ID token lacks required claims (iss, sub, aud, exp, iat)."
);
check!(
    ISS_MISSING,
    "JB-04",
    "jwt-iss-missing",
    Error,
    "RFC 8725 §3.8",
    "The token has no `iss` to validate."
);
check!(
    ISS_MISMATCH,
    "JB-04",
    "jwt-iss-mismatch",
    Error,
    "RFC 8725 §3.8; OpenID Connect Core §3.1.3.7 step 2",
    "`iss` is not exactly the expected issuer."
);
check!(
    AUD_MISSING,
    "JB-04",
    "jwt-aud-missing",
    Error,
    "RFC 8725 §3.9; RFC 7519 §4.1.3",
    "The token has no `aud`, but an audience is expected."
);
check!(
    AUD_MISMATCH,
    "JB-04",
    "jwt-aud-mismatch",
    Error,
    "RFC 8725 §3.9; RFC 7519 §4.1.3",
    "`aud` does not contain the expected audience."
);
check!(
    AZP,
    "ID-04",
    "jwt-azp",
    Warn,
    "OpenID Connect Core §3.1.3.7 steps 4-5",
    "Multiple audiences without `azp`, or `azp` not the client."
);
check!(
    EXPIRED,
    "ID-06",
    "jwt-expired",
    Error,
    "RFC 7519 §4.1.4",
    "The token has expired, beyond the leeway."
);
check!(
    EXPIRED_LEEWAY,
    "CK-01",
    "jwt-expired-within-leeway",
    Warn,
    "RFC 7519 §4.1.4",
    "The token has expired but passes thanks to the leeway."
);
check!(
    NOT_YET_VALID,
    "CK-02",
    "jwt-not-yet-valid",
    Error,
    "RFC 7519 §4.1.5",
    "`nbf` is in the future beyond the leeway: clocks disagree."
);
check!(
    NBF_LEEWAY,
    "CK-01",
    "jwt-nbf-within-leeway",
    Warn,
    "RFC 7519 §4.1.5",
    "`nbf` is in the future but within the leeway."
);
check!(
    IAT_FUTURE,
    "CK-02",
    "jwt-iat-in-future",
    Warn,
    "RFC 7519 §4.1.6; OpenID Connect Core §3.1.3.7 step 10",
    "`iat` is in the future: the issuer's clock is ahead."
);
check!(
    EXP_MISSING,
    "JW-07",
    "jwt-exp-missing",
    Warn,
    "RFC 7519 §4.1.4; RFC 9068 §2.2",
    "The token has no `exp`: it never expires."
);
check!(
    TIME_TYPE,
    "JW-08",
    "jwt-time-claim-invalid",
    Error,
    "RFC 7519 §2 (NumericDate)",
    "A time claim is not a NumericDate (a string, or milliseconds)."
);
check!(
    NONCE,
    "ID-08",
    "jwt-nonce-mismatch",
    Error,
    "OpenID Connect Core §3.1.3.7 step 11",
    "`nonce` is missing or differs from the one sent."
);
check!(
    AT_HASH,
    "ID-10",
    "jwt-at-hash-mismatch",
    Error,
    "OpenID Connect Core §3.1.3.8, §3.2.2.9",
    "`at_hash` does not match the access token."
);

/// Checks defined in this module.
pub const CHECKS: &[&Check] = &[
    &MALFORMED,
    &IS_JWE,
    &OPAQUE,
    &CRIT,
    &SIG_INVALID,
    &SIG_VERIFIED,
    &SIG_UNCHECKED,
    &ALG_NONE,
    &ALG_UNKNOWN,
    &KEY_CONFUSION,
    &HMAC_SHORT,
    &HEADER_KEY_REF,
    &KID_SUSPICIOUS,
    &TYP_ID_AS_ACCESS,
    &KID_UNKNOWN,
    &KID_ABSENT,
    &JWK_ALG_DIFFERS,
    &KEY_USE_ENC,
    &AT_TYP,
    &AT_CLAIMS,
    &AT_HEADER_NONCE,
    &ID_CLAIMS,
    &ISS_MISSING,
    &ISS_MISMATCH,
    &AUD_MISSING,
    &AUD_MISMATCH,
    &AZP,
    &EXPIRED,
    &EXPIRED_LEEWAY,
    &NOT_YET_VALID,
    &NBF_LEEWAY,
    &IAT_FUTURE,
    &EXP_MISSING,
    &TIME_TYPE,
    &NONCE,
    &AT_HASH,
];

/// The largest token decoded (larger input is refused as malformed).
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

/// A decoded but unverified JWT.
#[derive(Debug, Clone, PartialEq)]
pub struct UnverifiedJwt {
    /// The JOSE header.
    pub header: Map<String, Value>,
    /// The claims.
    pub claims: Map<String, Value>,
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`, the signed bytes.
    pub signing_input: String,
    /// The signature bytes.
    pub signature: Vec<u8>,
}

impl UnverifiedJwt {
    /// `alg` from the header, as written.
    pub fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    /// `kid` from the header.
    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }
}

/// Why a string is not a decodable JWT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Over [`MAX_TOKEN_LEN`].
    #[error("the token is {0} bytes, over the 64 KiB limit")]
    TooLong(usize),
    /// No dots at all.
    #[error("the token has no `.`: it is opaque, not a JWT")]
    Opaque,
    /// Five segments.
    #[error("the token has five segments: it is a JWE (encrypted)")]
    Jwe,
    /// Another number of segments.
    #[error("the token has {0} segments; a JWS has 3")]
    Segments(usize),
    /// A segment is not base64url.
    #[error("the {segment} segment: {error}")]
    Base64 {
        /// `header`, `payload` or `signature`.
        segment: &'static str,
        /// What is wrong.
        error: B64Error,
    },
    /// A segment is not a JSON object.
    #[error("the {segment} is not a JSON object: {error}")]
    Json {
        /// `header` or `payload`.
        segment: &'static str,
        /// What the parser said.
        error: String,
    },
}

/// Decodes a compact JWS without verifying anything.
pub fn decode(token: &str) -> Result<UnverifiedJwt, DecodeError> {
    let token = token.trim();
    let token = token
        .strip_prefix("Bearer ")
        .or_else(|| token.strip_prefix("bearer "))
        .unwrap_or(token)
        .trim();
    if token.len() > MAX_TOKEN_LEN {
        return Err(DecodeError::TooLong(token.len()));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(match token.split('.').count() {
            1 => DecodeError::Opaque,
            5 => DecodeError::Jwe,
            n => DecodeError::Segments(n),
        });
    };
    let object = |segment: &'static str, b64: &str| -> Result<Map<String, Value>, DecodeError> {
        let bytes = b64url_decode(b64).map_err(|error| DecodeError::Base64 { segment, error })?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(other) => Err(DecodeError::Json {
                segment,
                error: format!("it is {}", crate::diagnose::token::json_kind(&other)),
            }),
            Err(e) => Err(DecodeError::Json {
                segment,
                error: e.to_string(),
            }),
        }
    };
    let header = object("header", h)?;
    let claims = object("payload", p)?;
    let signature = b64url_decode(s).map_err(|error| DecodeError::Base64 {
        segment: "signature",
        error,
    })?;
    Ok(UnverifiedJwt {
        header,
        claims,
        // The signed bytes are the token up to the second dot.
        signing_input: token
            .get(..h.len() + 1 + p.len())
            .unwrap_or_default()
            .to_owned(),
        signature,
    })
}

/// What kind of token the caller says this is (`--expect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Decide from the token (`typ`, `nonce`, `at_hash`, ...).
    Auto,
    /// An OAuth access token (RFC 9068 rules apply).
    Access,
    /// An OpenID Connect ID token.
    Id,
}

/// Keys to verify with.
#[derive(Debug, Clone, PartialEq)]
pub enum Keys {
    /// No key: the signature is not checked.
    None,
    /// A JWK Set document (parsed JSON).
    Jwks(Value),
    /// An HMAC secret (`--secret`).
    Secret(Vec<u8>),
}

/// What the inspection checks against.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Current Unix time (seconds).
    pub now: u64,
    /// Leeway for `exp`, `nbf` and `iat` in seconds.
    pub leeway: u64,
    /// Expected issuer.
    pub issuer: Option<String>,
    /// Acceptable audiences (any of).
    pub audiences: Vec<String>,
    /// Expected kind.
    pub kind: TokenKind,
    /// The nonce sent in the authentication request.
    pub nonce: Option<String>,
    /// The access token issued with this ID token (for `at_hash`).
    pub access_token: Option<String>,
    /// The client id (ID token audience and `azp`).
    pub client_id: Option<String>,
    /// Keys.
    pub keys: Keys,
}

impl Options {
    /// Options with only the time set and a 60 s leeway.
    pub fn at(now: u64) -> Options {
        Options {
            now,
            leeway: 60,
            issuer: None,
            audiences: Vec::new(),
            kind: TokenKind::Auto,
            nonce: None,
            access_token: None,
            client_id: None,
            keys: Keys::None,
        }
    }
}

/// Inspects a token and returns findings (worst-first ordering is the
/// caller's, via [`crate::Report`]).
pub fn inspect(token: &str, opts: &Options) -> Vec<Finding> {
    let mut findings = Vec::new();
    let jwt = match decode(token) {
        Ok(j) => j,
        Err(e) => {
            findings.push(decode_finding(token, &e));
            return findings;
        }
    };
    let Some(alg) = header(&jwt, &mut findings) else {
        claims(&jwt, opts, TokenKind::Auto, &mut findings);
        return findings;
    };
    let kind = kind_of(&jwt, opts.kind);
    token_type(&jwt, opts.kind, kind, &mut findings);
    signature(&jwt, alg, opts, &mut findings);
    claims(&jwt, opts, kind, &mut findings);
    if kind == TokenKind::Id {
        id_token(&jwt, alg, opts, &mut findings);
    }
    findings
}

fn decode_finding(token: &str, e: &DecodeError) -> Finding {
    match e {
        DecodeError::Opaque => Finding::new(&OPAQUE, "the token is opaque, not a JWT")
            .evidence(format!("token {} has no `.` separators", secret::mask(token.trim())))
            .cause("the authorization server issues reference tokens (random strings) for this client or resource")
            .fix("validate it by introspection (RFC 7662), or configure the server to issue JWT access tokens (RFC 9068)"),
        DecodeError::Jwe => Finding::new(&IS_JWE, "the token is encrypted (JWE)")
            .evidence("five dot-separated segments")
            .cause("the server encrypts tokens for a specific recipient (an ID token encrypted for the client, or an access token for the API)")
            .fix("decrypt with the recipient's private key first; a resource server that is not the recipient must introspect instead"),
        other => Finding::new(&MALFORMED, format!("the token is not a well-formed JWT: {other}"))
            .evidence(format!("token {}", secret::mask(token.trim())))
            .cause(match other {
                DecodeError::Base64 { error: B64Error::StandardAlphabet | B64Error::Padding, .. } => "the issuer encodes with standard base64 instead of base64url without padding, or the token was URL-decoded on the way (`+` from `-`)",
                DecodeError::Base64 { .. } => "the token was cut or mangled (copied with a line break, truncated by a header size limit, quoted)",
                DecodeError::Segments(_) => "the token was truncated or concatenated, or a prefix such as `Bearer` was doubled",
                DecodeError::TooLong(_) => "this is not a token, or far too many claims are packed into it (headers over 8 KiB are refused by many proxies)",
                _ => "the header or payload is not JSON: not a JWT, or corrupted",
            })
            .fix("copy the token exactly as sent (from the Authorization header, after `Bearer `) and inspect again"),
    }
}

/// Header rules. Returns the algorithm when it is usable.
fn header(jwt: &UnverifiedJwt, findings: &mut Vec<Finding>) -> Option<Alg> {
    let h = &jwt.header;
    for (k, what) in [
        ("jku", "a URL to fetch keys from"),
        ("x5u", "a URL to fetch a certificate from"),
        ("jwk", "an embedded public key"),
        ("x5c", "an embedded certificate chain"),
    ] {
        if let Some(v) = h.get(k) {
            findings.push(
                Finding::new(&HEADER_KEY_REF, format!("the header carries `{k}`: {what}"))
                    .evidence(format!("{k}: {}", v.to_string().chars().take(100).collect::<String>()))
                    .cause("an attacker controls the header; a verifier that follows it verifies the token with the attacker's key (and jku/x5u enable SSRF)")
                    .fix("verify only with keys from the issuer's configured jwks_uri; ignore these header members"),
            );
        }
    }
    if let Some(kid) = jwt.kid()
        && (kid.contains("..")
            || kid.contains('/')
            || kid.contains('\\')
            || kid.contains('\'')
            || kid.contains(';')
            || kid.contains('|')
            || kid.contains('$')
            || kid.contains('\0'))
    {
        findings.push(
                Finding::new(&KID_SUSPICIOUS, "the kid contains path, SQL or shell characters")
                    .evidence(format!("kid: {:?}", kid.chars().take(80).collect::<String>()))
                    .cause("a kid injection attempt (e.g. `../../dev/null` to make an empty HMAC key, or SQL in a key lookup)")
                    .fix("treat kid as an opaque lookup key in the JWKS only; never as a path or query fragment"),
            );
    }
    if h.contains_key("nonce") {
        findings.push(
            Finding::new(&AT_HEADER_NONCE, "the header has a nonce: a Microsoft Graph access token")
                .evidence("header member `nonce` present")
                .cause("Graph tokens are signed over a transformed nonce and are meant for Graph only")
                .fix("do not validate Graph tokens in your API; request a token for your own API's audience"),
        );
    }
    if let Some(crit) = h.get("crit") {
        findings.push(
            Finding::new(&CRIT, "the header lists critical extensions")
                .evidence(format!("crit: {crit}"))
                .cause("the issuer uses JWS extensions (RFC 7515 §4.1.11) that a verifier must understand; generic verifiers must reject the token")
                .fix("remove crit unless every verifier implements the listed extensions"),
        );
    }
    let alg_text = h.get("alg").and_then(Value::as_str);
    match alg_text.map(|a| (a, Alg::parse(a))) {
        Some((_, Some(Alg::None))) => {
            findings.push(
                Finding::new(&ALG_NONE, "the token is unsigned (alg: none)")
                    .evidence(format!("header: {}", Value::Object(h.clone())))
                    .cause("an attacker stripped the signature, or a test issuer signs nothing; a verifier that honours `none` accepts any claims")
                    .fix("reject alg none: verify with an allow-list of algorithms (RFC 8725 §3.1)"),
            );
            None
        }
        Some((_, Some(alg))) => Some(alg),
        Some((a, None)) => {
            let hint = Alg::ALL
                .iter()
                .find(|x| x.name().eq_ignore_ascii_case(a))
                .map(|x| format!("; did you mean {x}? alg is case-sensitive"))
                .unwrap_or_default();
            findings.push(
                Finding::new(&ALG_UNKNOWN, format!("alg \"{a}\" is not a JWS algorithm{hint}"))
                    .evidence(format!("alg: \"{a}\""))
                    .cause("a non-standard or mistyped algorithm name (or `none` in another case, an attack)")
                    .fix("sign with a registered algorithm: RS256, PS256, ES256 or EdDSA"),
            );
            None
        }
        None => {
            findings.push(
                Finding::new(&ALG_UNKNOWN, "the header has no alg")
                    .evidence(format!("header: {}", Value::Object(h.clone())))
                    .cause("the token was built by hand")
                    .fix("every JWS header needs alg (RFC 7515 §4.1.1)"),
            );
            None
        }
    }
}

fn kind_of(jwt: &UnverifiedJwt, asked: TokenKind) -> TokenKind {
    if asked != TokenKind::Auto {
        return asked;
    }
    let typ = jwt
        .header
        .get("typ")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    if typ == "at+jwt" || typ == "application/at+jwt" {
        return TokenKind::Access;
    }
    let c = &jwt.claims;
    if c.contains_key("nonce")
        || c.contains_key("at_hash")
        || c.contains_key("c_hash")
        || (c.contains_key("auth_time") && !c.contains_key("scope") && !c.contains_key("scp"))
    {
        return TokenKind::Id;
    }
    if c.contains_key("scope") || c.contains_key("scp") || c.contains_key("client_id") {
        return TokenKind::Access;
    }
    TokenKind::Auto
}

fn token_type(jwt: &UnverifiedJwt, asked: TokenKind, kind: TokenKind, findings: &mut Vec<Finding>) {
    let typ = jwt.header.get("typ").and_then(Value::as_str);
    let is_at = typ.is_some_and(|t| {
        t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
    });
    let looks_id = jwt.claims.contains_key("nonce") || jwt.claims.contains_key("at_hash");
    match asked {
        TokenKind::Access if looks_id && !is_at => findings.push(
            Finding::new(&TYP_ID_AS_ACCESS, "this looks like an ID token, presented as an access token")
                .evidence(format!("typ: {}; claims include nonce/at_hash", typ.unwrap_or("(none)")))
                .cause("the client sends the ID token to the API instead of the access token")
                .fix("send the access_token from the token response; ID tokens are for the client only (RFC 8725 §3.11)"),
        ),
        TokenKind::Access if !is_at => findings.push(
            Finding::new(&AT_TYP, format!("typ is {}, not at+jwt", typ.map(|t| format!("\"{t}\"")).unwrap_or_else(|| "absent".to_string())))
                .evidence(format!("header typ: {}", typ.unwrap_or("(none)")))
                .cause("the issuer does not implement RFC 9068 JWT access tokens (most issue typ JWT)")
                .fix("have the issuer set typ at+jwt, or do not require RFC 9068 on this route"),
        ),
        TokenKind::Id if is_at => findings.push(
            Finding::new(&TYP_ID_AS_ACCESS, "an access token (typ at+jwt) is being used as an ID token")
                .evidence("header typ: at+jwt")
                .cause("the client confused the access token with the ID token")
                .fix("use the id_token member of the token response"),
        ),
        _ => {}
    }
    if kind == TokenKind::Access {
        let missing: Vec<&str> = ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"]
            .into_iter()
            .filter(|c| !jwt.claims.contains_key(*c))
            .collect();
        if !missing.is_empty() && (is_at || asked == TokenKind::Access) {
            findings.push(
                Finding::new(&AT_CLAIMS, format!("RFC 9068 claims missing: {}", missing.join(", ")))
                    .evidence(format!("claims present: {}", jwt.claims.keys().cloned().collect::<Vec<_>>().join(", ")))
                    .cause("the issuer's access-token profile predates RFC 9068 or omits claims")
                    .fix("issue iss, exp, aud, sub, client_id, iat and jti in JWT access tokens (RFC 9068 §2.2)"),
            );
        }
    }
}

fn signature(jwt: &UnverifiedJwt, alg: Alg, opts: &Options, findings: &mut Vec<Finding>) {
    match &opts.keys {
        Keys::None => findings.push(
            Finding::new(
                &SIG_UNCHECKED,
                "the signature was not checked (no key given)",
            )
            .evidence(format!(
                "alg {alg}; kid {}",
                jwt.kid()
                    .map(|k| format!("\"{k}\""))
                    .unwrap_or_else(|| "(none)".to_string())
            ))
            .cause("claims were judged without trusting them")
            .fix("pass --jwks FILE (or --secret for HS*) to verify the signature"),
        ),
        Keys::Secret(secret_bytes) => {
            if alg.family() != super::Family::Hmac {
                findings.push(
                    Finding::new(
                        &KEY_CONFUSION,
                        format!("a shared secret was given but the token is {alg}"),
                    )
                    .evidence(format!("alg {alg} needs a {} key", alg.family().kty()))
                    .cause("verify asymmetric tokens with the issuer's public keys, not a secret")
                    .fix("pass --jwks with the issuer's JWK Set"),
                );
                return;
            }
            let min = match alg {
                Alg::HS384 => 48,
                Alg::HS512 => 64,
                _ => 32,
            };
            if secret_bytes.len() < min {
                findings.push(
                    Finding::new(
                        &HMAC_SHORT,
                        format!(
                            "the HMAC secret is {} bytes; {alg} needs at least {min}",
                            secret_bytes.len()
                        ),
                    )
                    .evidence(format!("secret length {} bytes", secret_bytes.len()))
                    .cause(
                        "a short or human-chosen secret can be brute-forced offline from any token",
                    )
                    .fix("use a random secret at least as long as the hash output (RFC 7518 §3.2)"),
                );
            }
            verify_with(
                jwt,
                alg,
                &Material::Oct(secret_bytes.clone()),
                "the shared secret",
                findings,
            );
        }
        Keys::Jwks(doc) => jwks_signature(jwt, alg, doc, findings),
    }
}

fn jwks_signature(jwt: &UnverifiedJwt, alg: Alg, doc: &Value, findings: &mut Vec<Finding>) {
    let Some(keys) = doc.as_object().and_then(jwk::set_keys) else {
        findings.push(
            Finding::new(
                &SIG_UNCHECKED,
                "the key file is not a JWK Set; the signature was not checked",
            )
            .evidence("no `keys` array")
            .cause("the file holds a single JWK, a PEM, or metadata")
            .fix("pass the issuer's JWK Set ({\"keys\": [...]}), e.g. the document at jwks_uri"),
        );
        return;
    };
    let present: Vec<String> = keys
        .iter()
        .map(|k| {
            k.kid
                .map(|s| format!("\"{s}\""))
                .unwrap_or_else(|| "(no kid)".to_string())
        })
        .collect();
    let candidates: Vec<&jwk::SetKey<'_>> = match jwt.kid() {
        Some(kid) => {
            let found: Vec<_> = keys.iter().filter(|k| k.kid == Some(kid)).collect();
            if found.is_empty() {
                findings.push(
                    Finding::new(&KID_UNKNOWN, format!("kid \"{kid}\" is not in the JWKS"))
                        .evidence(format!("keys present: {}", if present.is_empty() { "(none)".to_string() } else { present.join(", ") }))
                        .cause("the keys were rotated: the token was signed with a key the JWKS no longer (or not yet) lists; or the token comes from another issuer or environment (an org vs custom authorization server, staging vs production, a development key regenerated at restart)")
                        .fix("refetch the JWKS from the issuer's jwks_uri; if the kid is still missing, check the token's iss against the JWKS source (OpenID Connect Core §10.1.1)"),
                );
                return;
            }
            found
        }
        None => {
            findings.push(
                Finding::new(&KID_ABSENT, "the token has no kid; every key of the right type was tried")
                    .evidence(format!("{} keys in the JWKS", keys.len()))
                    .cause("the issuer does not set kid")
                    .fix("have the issuer put kid in the header so verifiers can pick the key and notice rotation"),
            );
            keys.iter()
                .filter(|k| {
                    k.material
                        .as_ref()
                        .is_ok_and(|m| m.kty() == alg.family().kty())
                })
                .collect()
        }
    };
    // RS256-to-HS256: an HMAC token whose kid names a public key.
    if alg.family() == super::Family::Hmac
        && let Some(k) = candidates
            .iter()
            .find(|k| k.material.as_ref().is_ok_and(|m| m.kty() != "oct"))
    {
        findings.push(
                Finding::new(&KEY_CONFUSION, format!("the token uses {alg} but its key is a public {} key", k.material.as_ref().map(Material::kty).unwrap_or("?")))
                    .evidence(format!("header alg {alg}; JWKS key {} is kty {}", k.kid.unwrap_or("(no kid)"), k.material.as_ref().map(Material::kty).unwrap_or("?")))
                    .cause("an algorithm-confusion attack: the token is MACed with the public key as the secret, which a verifier that trusts the header's alg accepts")
                    .fix("pin the algorithm per key (RFC 8725 §3.1); never use a public key as an HMAC secret"),
            );
        return;
    }
    let mut tried = 0;
    for k in &candidates {
        let Ok(m) = &k.material else { continue };
        if let Some(kalg) = k.alg
            && kalg != alg.name()
        {
            findings.push(
                    Finding::new(&JWK_ALG_DIFFERS, format!("the token says {alg} but the key says {kalg}"))
                        .evidence(format!("header alg {alg}; JWK {} alg {kalg}", k.kid.unwrap_or("(no kid)")))
                        .cause("the issuer signs with another algorithm than the key declares, or the token was altered")
                        .fix("sign with the key's declared algorithm; verifiers must use the JWK's alg (RFC 7517 §4.4)"),
                );
            return;
        }
        if !m.fits(alg) {
            findings.push(
                Finding::new(
                    &KEY_CONFUSION,
                    format!("the token uses {alg} but the key is kty {}", m.kty()),
                )
                .evidence(format!(
                    "header alg {alg} needs kty {}; key {} is {}",
                    alg.family().kty(),
                    k.kid.unwrap_or("(no kid)"),
                    m.kty()
                ))
                .cause("the token's alg does not match the key family (RFC 8725 §2.1)")
                .fix("verify each key with exactly one algorithm of its family"),
            );
            return;
        }
        if k.use_ == Some("enc") {
            findings.push(
                Finding::new(&KEY_USE_ENC, "the key the kid names is an encryption key")
                    .evidence(format!("key {} has use: enc", k.kid.unwrap_or("(no kid)")))
                    .cause("the issuer signs with a key published for encryption")
                    .fix("publish signing keys with use: sig"),
            );
        }
        tried += 1;
        let label = k
            .kid
            .map(|s| format!("kid \"{s}\""))
            .unwrap_or_else(|| format!("key {}", k.index));
        if verify_with(jwt, alg, m, &label, findings) {
            return;
        }
    }
    if tried == 0 && !candidates.is_empty() {
        findings.push(
            Finding::new(&SIG_UNCHECKED, "no usable key for this token in the JWKS")
                .evidence(format!("keys present: {}", present.join(", ")))
                .cause("the matching keys could not be read")
                .fix("see the JWKS findings: `gatewise doctor response --expect jwks FILE`"),
        );
    }
}

/// Verifies with one key; pushes the outcome; true when verified.
fn verify_with(
    jwt: &UnverifiedJwt,
    alg: Alg,
    m: &Material,
    label: &str,
    findings: &mut Vec<Finding>,
) -> bool {
    match VerifyingKey::new(alg, m) {
        Err(e) => {
            findings.push(
                Finding::new(&SIG_INVALID, format!("{label} cannot verify {alg}: {e}"))
                    .evidence(format!("key: {m:?}"))
                    .cause("the key is unusable for this algorithm")
                    .fix("publish a valid key of the right type and size"),
            );
            false
        }
        Ok(vk) => match vk.verify(jwt.signing_input.as_bytes(), &jwt.signature) {
            Ok(()) => {
                findings.push(
                    Finding::new(
                        &SIG_VERIFIED,
                        format!("the {alg} signature verifies with {label}"),
                    )
                    .evidence(format!("key: {m:?}"))
                    .cause("the token was signed by the holder of this key and not altered")
                    .fix("nothing to fix"),
                );
                true
            }
            Err(_) => {
                findings.push(
                    Finding::new(&SIG_INVALID, format!("the {alg} signature does not verify with {label}"))
                        .evidence(format!("signature {} bytes; key: {m:?}", jwt.signature.len()))
                        .cause("the token was altered, or signed by another key with the same kid (a key regenerated under an old kid), or the secret differs")
                        .fix("compare the issuer's current keys; re-issue the token"),
                );
                false
            }
        },
    }
}

fn numeric_date(jwt: &UnverifiedJwt, name: &str, findings: &mut Vec<Finding>) -> Option<i64> {
    let v = jwt.claims.get(name)?;
    let n = match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        _ => None,
    };
    match n {
        Some(n) if n > 100_000_000_000 => {
            findings.push(
                Finding::new(&TIME_TYPE, format!("`{name}` looks like milliseconds"))
                    .evidence(format!("{name}: {n}"))
                    .cause("the issuer writes milliseconds since the epoch; RFC 7519 NumericDate is seconds")
                    .fix(format!("write {name} in seconds")),
            );
            None
        }
        Some(n) => Some(n),
        None => {
            findings.push(
                Finding::new(
                    &TIME_TYPE,
                    format!(
                        "`{name}` is {}, not a NumericDate",
                        crate::diagnose::token::json_kind(v)
                    ),
                )
                .evidence(format!("{name}: {v}"))
                .cause("the issuer serializes the time as a string or date text")
                .fix(format!(
                    "write {name} as a JSON number of seconds since the epoch (RFC 7519 §2)"
                )),
            );
            None
        }
    }
}

fn claims(jwt: &UnverifiedJwt, opts: &Options, kind: TokenKind, findings: &mut Vec<Finding>) {
    let c = &jwt.claims;
    // Issuer (RFC 8725 §3.8).
    match (c.get("iss").and_then(Value::as_str), &opts.issuer) {
        (None, Some(exp)) => findings.push(
            Finding::new(&ISS_MISSING, "the token has no iss")
                .evidence(format!("expected issuer \"{exp}\""))
                .cause("the issuer does not stamp iss")
                .fix("issue tokens with iss"),
        ),
        (Some(iss), Some(exp)) if iss != exp => findings.push(
            Finding::new(&ISS_MISMATCH, format!("iss is \"{iss}\" but you expect \"{exp}\""))
                .evidence(format!("iss \"{iss}\"; expected \"{exp}\"; {}", crate::diagnose::discovery::describe_difference(exp, iss)))
                .cause(issuer_cause(exp, iss))
                .fix("configure the expected issuer exactly as the tokens carry it (character for character), or fix the issuer's public URL"),
        ),
        _ => {}
    }
    // Audience (RFC 8725 §3.9).
    let auds: Vec<&str> = match c.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !opts.audiences.is_empty() {
        if c.get("aud").is_none() {
            findings.push(
                Finding::new(&AUD_MISSING, "the token has no aud")
                    .evidence(format!("expected one of: {}", opts.audiences.join(", ")))
                    .cause("the client did not ask for an audience (resource / audience parameter), so the issuer minted a token for no API")
                    .fix("request the token with resource (RFC 8707) or the provider's audience parameter"),
            );
        } else if !auds.iter().any(|a| opts.audiences.iter().any(|e| e == a)) {
            let near = auds.iter().find(|a| {
                opts.audiences
                    .iter()
                    .any(|e| e.trim_end_matches('/') == a.trim_end_matches('/'))
            });
            findings.push(
                Finding::new(&AUD_MISMATCH, format!("aud is {} but you expect {}", quote_list(&auds), quote_list(&opts.audiences.iter().map(String::as_str).collect::<Vec<_>>())))
                    .evidence(format!("aud: {}", c.get("aud").map(Value::to_string).unwrap_or_default()))
                    .cause(if near.is_some() { "the values differ only by a trailing slash: audience comparison is exact" } else { "the token was requested for another API (a default audience such as `api://default`, or Microsoft Graph), or the API's identifier differs from what the issuer knows" })
                    .fix("request the token for this API's identifier (resource / audience / scope `api://<id>/.default`), or configure the API with the identifier the issuer uses"),
            );
        }
    }
    // Times (RFC 7519 §4.1.4-4.1.6) with leeway.
    let now = i64::try_from(opts.now).unwrap_or(i64::MAX);
    let leeway = i64::try_from(opts.leeway).unwrap_or(i64::MAX);
    match numeric_date(jwt, "exp", findings) {
        Some(exp) if now > exp => {
            let ago = now - exp;
            if ago <= leeway {
                findings.push(
                    Finding::new(
                        &EXPIRED_LEEWAY,
                        format!(
                            "expired {} ago; passes only thanks to the {leeway} s leeway",
                            secs(ago)
                        ),
                    )
                    .evidence(format!("exp {exp}; now {now}"))
                    .cause("the client uses the token until the last moment")
                    .fix("refresh tokens a little before expires_in runs out"),
                );
            } else {
                findings.push(
                    Finding::new(&EXPIRED, format!("expired {} ago{}", secs(ago), if ago <= 300 { format!("; with a {} s leeway it would pass", round_up(ago)) } else { String::new() }))
                        .evidence(format!("exp {exp} ({}); now {now}; leeway {leeway} s", iso(exp)))
                        .cause(if ago <= 300 { "a small difference: clock skew between issuer and verifier, or a token used right at its end" } else { "the client keeps using a token after expires_in instead of refreshing" })
                        .fix("refresh the token when it expires; if clocks differ, sync them (NTP) rather than raising leeway beyond a few minutes"),
                );
            }
        }
        None if !c.contains_key("exp") && (kind != TokenKind::Auto || !c.is_empty()) => {
            findings.push(
                Finding::new(&EXP_MISSING, "the token has no exp: it never expires")
                    .evidence(format!(
                        "claims: {}",
                        c.keys().cloned().collect::<Vec<_>>().join(", ")
                    ))
                    .cause("the issuer mints non-expiring tokens")
                    .fix("issue short-lived tokens with exp (RFC 9068 §2.2 requires it)"),
            );
        }
        _ => {}
    }
    if let Some(nbf) = numeric_date(jwt, "nbf", findings)
        && nbf > now
    {
        let ahead = nbf - now;
        if ahead <= leeway {
            findings.push(
                    Finding::new(&NBF_LEEWAY, format!("nbf is {} in the future; passes thanks to the leeway", secs(ahead)))
                        .evidence(format!("nbf {nbf}; now {now}; leeway {leeway} s"))
                        .cause("the issuer's clock is slightly ahead, or it rounds nbf up")
                        .fix("sync clocks; verifiers with zero leeway (PyJWT, node jsonwebtoken defaults) reject this token"),
                );
        } else {
            findings.push(
                Finding::new(
                    &NOT_YET_VALID,
                    format!("nbf is {} in the future: not valid yet", secs(ahead)),
                )
                .evidence(format!(
                    "nbf {nbf} ({}); now {now}; leeway {leeway} s",
                    iso(nbf)
                ))
                .cause(
                    "the issuer's clock is ahead of this machine's (or this machine's is behind)",
                )
                .fix("sync both clocks with NTP; a leeway of a few seconds covers rounding"),
            );
        }
    }
    if let Some(iat) = numeric_date(jwt, "iat", findings)
        && iat > now + leeway.min(5)
    {
        findings.push(
                Finding::new(&IAT_FUTURE, format!("iat is {} in the future: the issuer's clock is ahead", secs(iat - now)))
                    .evidence(format!("iat {iat} ({}); now {now}", iso(iat)))
                    .cause("clock skew between the issuer and this machine; libraries with zero leeway report 'issued in the future'")
                    .fix("sync clocks with NTP on both sides"),
            );
    }
    if kind == TokenKind::Id {
        let missing: Vec<&str> = ["iss", "sub", "aud", "exp", "iat"]
            .into_iter()
            .filter(|k| !c.contains_key(*k))
            .collect();
        if !missing.is_empty() {
            findings.push(
                Finding::new(
                    &ID_CLAIMS,
                    format!("ID token claims missing: {}", missing.join(", ")),
                )
                .evidence(format!(
                    "claims present: {}",
                    c.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
                .cause("the issuer's ID token is incomplete")
                .fix("issue iss, sub, aud, exp and iat (OpenID Connect Core §2)"),
            );
        }
    }
}

fn id_token(jwt: &UnverifiedJwt, alg: Alg, opts: &Options, findings: &mut Vec<Finding>) {
    let c = &jwt.claims;
    let auds: Vec<&str> = match c.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let azp = c.get("azp").and_then(Value::as_str);
    if let Some(client) = &opts.client_id {
        if !auds.contains(&client.as_str()) && opts.audiences.is_empty() {
            findings.push(
                Finding::new(&AUD_MISMATCH, format!("the ID token's aud {} does not contain the client id \"{client}\"", quote_list(&auds)))
                    .evidence(format!("aud: {}", c.get("aud").map(Value::to_string).unwrap_or_default()))
                    .cause("the ID token was issued to another client")
                    .fix("use the client id the token was issued to (OpenID Connect Core §3.1.3.7 step 3)"),
            );
        }
        if let Some(a) = azp.filter(|a| a != client) {
            findings.push(
                Finding::new(&AZP, format!("azp \"{a}\" is not the client \"{client}\""))
                    .evidence(format!("azp: \"{a}\""))
                    .cause("the token was obtained by another party")
                    .fix("reject ID tokens whose azp is another client"),
            );
        }
    }
    if auds.len() > 1 && azp.is_none() {
        findings.push(
            Finding::new(&AZP, "several audiences but no azp")
                .evidence(format!("aud: {}", quote_list(&auds)))
                .cause(
                    "the issuer adds audiences without saying which party the token was issued to",
                )
                .fix("issue azp when aud has several values (OpenID Connect Core §2)"),
        );
    }
    if let Some(sent) = &opts.nonce {
        match c.get("nonce").and_then(Value::as_str) {
            Some(n) if n == sent => {}
            Some(n) => findings.push(
                Finding::new(&NONCE, "the nonce differs from the one sent")
                    .evidence(format!("token nonce {}; sent {}", secret::mask(n), secret::mask(sent)))
                    .cause("a replayed ID token, or the client lost its session (two tabs, a second pod without shared sessions)")
                    .fix("bind the nonce to the user's session and compare it exactly"),
            ),
            None => findings.push(
                Finding::new(&NONCE, "the ID token has no nonce though one was sent")
                    .evidence(format!("sent {}", secret::mask(sent)))
                    .cause("the issuer drops the nonce (some do on refresh), or the token is not from this login")
                    .fix("the issuer must echo nonce in the ID token (OpenID Connect Core §3.1.3.7 step 11)"),
            ),
        }
    }
    if let (Some(at), Some(claimed)) =
        (&opts.access_token, c.get("at_hash").and_then(Value::as_str))
        && let Some(h) = alg.hash()
    {
        let d = aws_lc_rs::digest::digest(h, at.as_bytes());
        let half = d.as_ref().get(..d.as_ref().len() / 2).unwrap_or(&[]);
        let expect = b64url_encode(half);
        if expect != claimed {
            findings.push(
                    Finding::new(&AT_HASH, "at_hash does not match the access token")
                        .evidence(format!("at_hash \"{claimed}\"; computed \"{expect}\" with {alg}'s hash"))
                        .cause("the access token is not the one issued with this ID token (mixed responses), or the issuer hashes with the wrong algorithm")
                        .fix("use the access token from the same response; at_hash is the left half of the alg's hash, base64url (OpenID Connect Core §3.1.3.8)"),
                );
        }
    }
}

fn issuer_cause(expected: &str, actual: &str) -> String {
    if expected.trim_end_matches('/') == actual.trim_end_matches('/') {
        return "only the trailing slash differs: issuer comparison is exact (Auth0 issuers end with `/`)".to_string();
    }
    if actual.strip_prefix("https://") == Some(expected)
        || expected.strip_prefix("https://") == Some(actual)
    {
        return "one side lacks the scheme (Google may send iss `accounts.google.com`)".to_string();
    }
    if actual.contains("sts.windows.net") || expected.contains("sts.windows.net") {
        return "Azure AD v1 vs v2 tokens: the token version follows the API's accessTokenAcceptedVersion, not the endpoint used".to_string();
    }
    "the token was minted by another issuer, or the issuer stamps a different public URL (internal vs external host, realm or tenant path)".to_string()
}

fn quote_list(items: &[&str]) -> String {
    if items.is_empty() {
        return "(none)".to_string();
    }
    items
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn secs(n: i64) -> String {
    if n < 120 {
        format!("{n} s")
    } else if n < 7200 {
        format!("{} min {} s", n / 60, n % 60)
    } else if n < 172_800 {
        format!("{} h {} min", n / 3600, (n % 3600) / 60)
    } else {
        format!("{} days", n / 86_400)
    }
}

fn round_up(n: i64) -> i64 {
    ((n + 9) / 10) * 10
}

/// A NumericDate as ISO 8601 UTC (civil-from-days, H. Hinnant's algorithm).
pub fn iso(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let rem = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}
