//! Checks on JWTs a client sends to authenticate itself: `client_assertion`
//! (RFC 7523 §3, `private_key_jwt`) and a `client_secret` that is itself a
//! JWT (Sign in with Apple). An expired or over-long one is the usual reason
//! behind a bare `invalid_client`.

use super::body::check;
use crate::finding::{Check, Finding, Severity};
use crate::jose::jwt;
use crate::secret;
use serde_json::{Map, Value};

check!(
    ASSERTION_TYPE,
    "CA-06",
    "client-assertion-type-wrong",
    Error,
    "RFC 7523 §2.2; RFC 7521 §4.2",
    "client_assertion is sent without client_assertion_type urn:ietf:params:oauth:client-assertion-type:jwt-bearer."
);
check!(
    ASSERTION_MALFORMED,
    "CA-06",
    "client-assertion-malformed",
    Error,
    "RFC 7523 §3",
    "client_assertion is not a decodable JWT."
);
check!(
    ASSERTION_CLAIMS,
    "CA-06",
    "client-assertion-claims-missing",
    Error,
    "RFC 7523 §3",
    "A client authentication JWT lacks iss, sub, aud or exp."
);
check!(
    ASSERTION_EXPIRED,
    "CA-06",
    "client-assertion-expired",
    Error,
    "RFC 7523 §3 item 4",
    "The client authentication JWT had expired when the request was sent."
);
check!(
    APPLE_LIFETIME,
    "CA-06",
    "apple-client-secret-lifetime",
    Error,
    "Apple: Creating a client secret (exp at most 15777000 s after iat)",
    "An Apple client_secret JWT valid for more than 6 months: Apple answers invalid_client."
);
check!(
    ASSERTION_IAT_AHEAD,
    "CK-02",
    "client-assertion-iat-ahead",
    Warn,
    "RFC 7523 §3 item 6; RFC 9110 §6.6.1",
    "The client authentication JWT was issued after the server's Date: the client's clock is ahead."
);

/// Checks defined in this module.
pub const CHECKS: &[&Check] = &[
    &ASSERTION_TYPE,
    &ASSERTION_MALFORMED,
    &ASSERTION_CLAIMS,
    &ASSERTION_EXPIRED,
    &APPLE_LIFETIME,
    &ASSERTION_IAT_AHEAD,
];

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const APPLE_AUD: &str = "https://appleid.apple.com";
/// Apple's documented maximum lifetime of a client secret JWT.
const APPLE_MAX_LIFETIME: i64 = 15_777_000;
/// Skew tolerated before a future `iat` is reported.
const SKEW: i64 = 60;

/// Judges the client authentication JWTs in a token request's form. `at`
/// is when the request was made (the response's `Date`, else `--now`).
pub fn judge(form: &[(String, String)], at: Option<u64>, findings: &mut Vec<Finding>) {
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if let Some(assertion) = get("client_assertion") {
        let kind = get("client_assertion_type");
        if kind != Some(JWT_BEARER) {
            findings.push(
                Finding::new(&ASSERTION_TYPE, "client_assertion_type is not the JWT bearer URN")
                    .evidence(format!("client_assertion_type: {}", kind.unwrap_or("(absent)")))
                    .cause("the client library sends the assertion without its type, or with a typo; the server cannot tell how to read it")
                    .fix(format!("send client_assertion_type={JWT_BEARER}")),
            );
        }
        one("client_assertion", assertion, at, findings);
    }
    if let Some(s) = get("client_secret")
        && s.matches('.').count() == 2
        && s.starts_with("eyJ")
    {
        one("client_secret", s, at, findings);
    }
}

fn one(field: &'static str, token: &str, at: Option<u64>, findings: &mut Vec<Finding>) {
    let decoded = match jwt::decode(token) {
        Ok(d) => d,
        Err(e) => {
            findings.push(
                Finding::new(
                    &ASSERTION_MALFORMED,
                    format!("{field} is not a decodable JWT"),
                )
                .evidence(format!("{field}: {} ({e})", secret::mask(token)))
                .cause("the client builds the assertion by hand or truncates it")
                .fix("sign a compact JWS with iss, sub, aud, exp and jti (RFC 7523 §3)"),
            );
            return;
        }
    };
    let c = &decoded.claims;
    let num = |k: &str| c.get(k).and_then(Value::as_f64).map(|f| f as i64);
    let missing: Vec<&str> = ["iss", "sub", "aud", "exp"]
        .into_iter()
        .filter(|k| match c.get(*k) {
            Some(Value::String(s)) => s.is_empty(),
            Some(Value::Array(a)) => *k != "aud" || a.is_empty(),
            Some(Value::Number(_)) => *k != "exp",
            _ => true,
        })
        .collect();
    if !missing.is_empty() {
        findings.push(
            Finding::new(&ASSERTION_CLAIMS, format!("the {field} JWT lacks {}", missing.join(", ")))
                .evidence(format!("claims: {}", claims_evidence(c)))
                .cause("RFC 7523 §3 requires iss and sub (the client_id), aud (the authorization server) and exp; servers answer invalid_client without saying which")
                .fix("set iss = sub = client_id, aud = the issuer or token endpoint URL, exp a few minutes ahead"),
        );
    }
    let apple = match c.get("aud") {
        Some(Value::String(a)) => a.trim_end_matches('/') == APPLE_AUD,
        Some(Value::Array(a)) => a.iter().any(|v| {
            v.as_str()
                .is_some_and(|s| s.trim_end_matches('/') == APPLE_AUD)
        }),
        _ => false,
    };
    let (exp, iat) = (num("exp"), num("iat"));
    if let (Some(at), Some(exp)) = (at.and_then(|a| i64::try_from(a).ok()), exp)
        && exp <= at
    {
        let ago = at - exp;
        let (cause, fix) = if apple {
            (
                "Sign in with Apple's client_secret is a JWT the developer signs with the .p8 key; it expires (at most 6 months after iat) and Apple then answers a bare invalid_client",
                "generate a new client_secret JWT (ES256 with the .p8 key, iss = Team ID, sub = Services ID, aud = https://appleid.apple.com) and automate its renewal before exp",
            )
        } else {
            (
                "the assertion is signed once and reused, or its lifetime is shorter than the time between signing and sending",
                "sign a fresh assertion for every token request with exp a few minutes ahead",
            )
        };
        findings.push(
            Finding::new(
                &ASSERTION_EXPIRED,
                format!(
                    "the {field} JWT expired {} before the request",
                    human_duration(ago)
                ),
            )
            .evidence(format!(
                "exp {} ({}); request sent {}",
                exp,
                jwt::iso(exp),
                jwt::iso(at)
            ))
            .cause(cause)
            .fix(fix),
        );
    }
    if apple
        && let (Some(exp), Some(iat)) = (exp, iat)
        && exp - iat > APPLE_MAX_LIFETIME
    {
        findings.push(
            Finding::new(&APPLE_LIFETIME, format!("the Apple client_secret is valid for {}, over Apple's 6-month limit", human_duration(exp - iat)))
                .evidence(format!("iat {} ({}); exp {} ({}); exp - iat = {} s > {APPLE_MAX_LIFETIME} s", iat, jwt::iso(iat), exp, jwt::iso(exp), exp - iat))
                .cause("Apple refuses client secrets whose exp is more than 15777000 s (6 months) after iat, with a bare invalid_client")
                .fix("set exp at most 15777000 s after iat and regenerate the secret before it expires"),
        );
    }
    if let (Some(at), Some(iat)) = (at.and_then(|a| i64::try_from(a).ok()), iat)
        && iat > at + SKEW
    {
        findings.push(
            Finding::new(&ASSERTION_IAT_AHEAD, format!("the {field} JWT was issued {} after the server's Date", human_duration(iat - at)))
                .evidence(format!("iat {} ({}); response Date {}", iat, jwt::iso(iat), jwt::iso(at)))
                .cause("the client's clock runs ahead of the server's; servers refuse assertions issued in the future (invalid_client or invalid_grant)")
                .fix("synchronise the client's clock (NTP); some libraries allow back-dating iat by a few seconds"),
        );
    }
}

fn claims_evidence(c: &Map<String, Value>) -> String {
    let keys: Vec<&str> = c.keys().map(String::as_str).collect();
    format!(
        "present: {}",
        if keys.is_empty() {
            "(none)".to_string()
        } else {
            keys.join(", ")
        }
    )
}

/// "3 days", "47 s": the unit a person would use.
pub(crate) fn human_duration(secs: i64) -> String {
    let s = secs.unsigned_abs();
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}
