//! Token endpoint error responses (RFC 6749 §5.2) and their classification.
//!
//! A conformant error is not a format problem: it is classified (what the
//! server refused and the usual reasons) at `warn`, so the verdict says the
//! exchange failed without blaming the response's shape.

use super::body::{self, Json, check, error_kind};
use crate::capture::{Request, Response};
use crate::finding::{Check, Finding, Severity};
use crate::media::Sniffed;
use crate::secret;
use serde_json::{Map, Value};

check!(
    CODE_MISSING,
    "ER-02",
    "error-code-missing",
    Error,
    "RFC 6749 §5.2",
    "An error response has no `error` member."
);
check!(
    CODE_NOT_STRING,
    "ER-02",
    "error-code-not-string",
    Error,
    "RFC 6749 §5.2",
    "The `error` member is not a string."
);
check!(
    CODE_UNREGISTERED,
    "ER-02",
    "error-code-unregistered",
    Warn,
    "RFC 6749 §5.2, §11.4",
    "The `error` code is not one RFC 6749 or a registered extension defines."
);
check!(
    DESCRIPTION_CHARSET,
    "ER-03",
    "error-description-charset",
    Info,
    "RFC 6749 §5.2",
    "error_description uses characters outside printable ASCII (or `\"` or `\\`)."
);
check!(
    STATUS_UNEXPECTED,
    "ER-01",
    "error-status-unexpected",
    Warn,
    "RFC 6749 §5.2",
    "An OAuth error is sent with a status other than 400 (or 401 for invalid_client)."
);
check!(
    MISSING_CHALLENGE,
    "ER-01",
    "error-401-without-challenge",
    Error,
    "RFC 6749 §5.2",
    "401 invalid_client to a Basic-authenticated request without WWW-Authenticate."
);
check!(
    KEEP_POLLING,
    "ER-05",
    "error-device-keep-polling",
    Info,
    "RFC 8628 §3.5",
    "authorization_pending / slow_down: the device flow client must keep polling."
);
check!(
    DPOP_NONCE,
    "DP-07",
    "error-use-dpop-nonce",
    Info,
    "RFC 9449 §8",
    "The server demands a DPoP nonce: the client must retry once with it."
);
check!(
    RATE_LIMITED,
    "HT-10",
    "error-rate-limited",
    Warn,
    "RFC 6585 §4; RFC 9110 §10.2.3",
    "The server answered 429 Too Many Requests: the client is rate limited and must wait (Retry-After) before retrying."
);
check!(
    REFUSED,
    "ER-02",
    "error-request-refused",
    Warn,
    "RFC 6749 §5.2",
    "A conformant OAuth error: the server refused the request (the causes are listed)."
);

/// Checks defined in this module.
pub const CHECKS: &[&Check] = &[
    &CODE_MISSING,
    &CODE_NOT_STRING,
    &CODE_UNREGISTERED,
    &DESCRIPTION_CHARSET,
    &STATUS_UNEXPECTED,
    &MISSING_CHALLENGE,
    &KEEP_POLLING,
    &DPOP_NONCE,
    &RATE_LIMITED,
    &REFUSED,
];

/// Error codes of RFC 6749 §5.2 and registered extensions (RFC 8628, 9449, 8693, 8707).
const REGISTERED: &[&str] = &[
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "authorization_pending",
    "slow_down",
    "access_denied",
    "expired_token",
    "invalid_dpop_proof",
    "use_dpop_nonce",
    "invalid_target",
    "invalid_authorization_details",
    "server_error",
    "temporarily_unavailable",
];

/// Judges a non-2xx, non-3xx token endpoint response.
pub fn judge(
    req: Option<&Request>,
    resp: &Response,
    sniffed: &Sniffed,
    findings: &mut Vec<Finding>,
) {
    let status = resp.status.unwrap_or(0);
    if status == 429 {
        rate_limited(resp, findings);
    }
    let Json::Object(map) = body::json_object(&error_kind::KIND, resp, sniffed, &[], findings)
    else {
        return;
    };
    let Some(err) = map.get("error") else {
        let hint = if map.contains_key("errors") || map.contains_key("message") {
            "the server (Strava did) or an API gateway reports errors in its own format"
        } else {
            "the response comes from something other than the OAuth server (an API gateway, a framework error handler)"
        };
        findings.push(
            Finding::new(&CODE_MISSING, format!("the HTTP {status} error body has no `error` member"))
                .evidence(format!("body: {}", secret::json_evidence(&Value::Object(map.clone()), 240)))
                .cause(format!("{hint}; oauthlib reports this as MissingTokenError, Dart oauth2 as a FormatException"))
                .fix("return {\"error\": \"<code>\", \"error_description\": \"...\"} (RFC 6749 §5.2); the details above usually name the real problem (for Strava: client_id must be in the body)"),
        );
        return;
    };
    let Some(code) = err.as_str() else {
        findings.push(
            Finding::new(&CODE_NOT_STRING, format!("`error` is {}, not a string", super::token::json_kind(err)))
                .evidence(format!("error: {err}"))
                .cause("the server puts an HTTP status or numeric code in `error` (Reddit sends \"error\": 400)")
                .fix("send one of the RFC 6749 §5.2 string codes; put numbers elsewhere"),
        );
        return;
    };
    if !REGISTERED.contains(&code) {
        findings.push(
            Finding::new(&CODE_UNREGISTERED, format!("`{code}` is not a registered OAuth error code"))
                .evidence(format!("error: \"{code}\""))
                .cause("a provider-specific code; clients map unknown codes to a generic failure")
                .fix("use the RFC 6749 §5.2 codes (invalid_request, invalid_client, invalid_grant, unauthorized_client, unsupported_grant_type, invalid_scope)"),
        );
    }
    if let Some(Value::String(d)) = map.get("error_description")
        && d.chars()
            .any(|c| !(' '..='~').contains(&c) || c == '"' || c == '\\')
    {
        findings.push(
            Finding::new(
                &DESCRIPTION_CHARSET,
                "error_description has characters outside the RFC 6749 set",
            )
            .evidence(format!(
                "error_description: {}",
                secret::mask_text(&d.chars().take(160).collect::<String>())
            ))
            .cause("localized or multi-line messages")
            .fix("keep error_description to printable ASCII without `\"` and `\\`"),
        );
    }
    status_rules(req, resp, code, findings);
    classify(code, map, findings);
}

fn status_rules(req: Option<&Request>, resp: &Response, code: &str, findings: &mut Vec<Finding>) {
    let Some(status) = resp.status else { return };
    let used_basic = req
        .and_then(|r| r.headers.get("authorization"))
        .is_some_and(|a| a.trim_start().to_ascii_lowercase().starts_with("basic "));
    if status == 401
        && code == "invalid_client"
        && used_basic
        && !resp.headers.contains("www-authenticate")
    {
        findings.push(
            Finding::new(
                &MISSING_CHALLENGE,
                "401 invalid_client to a Basic-authenticated request has no WWW-Authenticate",
            )
            .evidence(
                "request: Authorization: Basic …; response: HTTP 401 without WWW-Authenticate",
            )
            .cause("the server or a gateway dropped the challenge header")
            .fix("answer with `WWW-Authenticate: Basic realm=\"...\"` (RFC 6749 §5.2 MUST)"),
        );
    }
    let expected = match code {
        "invalid_client" => matches!(status, 400 | 401),
        "temporarily_unavailable" => matches!(status, 400 | 503),
        "server_error" => matches!(status, 400 | 500),
        _ => status == 400,
    };
    // 429 is explained by `rate_limited`, whatever the error code.
    if !expected && status != 429 {
        let cause = match status {
            500..=599 => {
                "the server maps OAuth errors to 5xx (or crashed while building the error); clients and proxies may retry or hide the body"
            }
            401 | 403 => "the server uses 401/403 for every authentication-related error",
            _ => "the server picks its own status codes for OAuth errors",
        };
        findings.push(
            Finding::new(&STATUS_UNEXPECTED, format!("`{code}` is sent with status {status}, not 400"))
                .evidence(format!("HTTP {status}; error: \"{code}\""))
                .cause(cause)
                .fix("send token endpoint errors with 400, and 401 only for invalid_client (RFC 6749 §5.2)"),
        );
    }
}

/// HT-10: 429 Too Many Requests (RFC 6585 §4), with or without the
/// `Retry-After` that says when to try again (RFC 9110 §10.2.3).
fn rate_limited(resp: &Response, findings: &mut Vec<Finding>) {
    let retry = resp.headers.get("retry-after").map(str::trim);
    let (title, evidence) = match retry {
        Some(r) => (
            format!(
                "the server answered 429 Too Many Requests and asks to retry after {}",
                if r.bytes().all(|b| b.is_ascii_digit()) {
                    format!("{r} s")
                } else {
                    r.to_owned()
                }
            ),
            format!("HTTP 429; Retry-After: {r}"),
        ),
        None => (
            "the server answered 429 Too Many Requests without Retry-After".to_owned(),
            "HTTP 429; no Retry-After header".to_owned(),
        ),
    };
    findings.push(
        Finding::new(&RATE_LIMITED, title)
            .evidence(evidence)
            .cause("the client (or every client behind the same address or client_id) sent more token requests than the authorization server or a gateway in front of it allows; clients that request a new token per API call instead of reusing it until expires_in run into this")
            .fix("reuse tokens until shortly before expires_in; after a 429 wait as long as Retry-After says (then back off) before retrying; ask for a higher limit if the volume is legitimate"),
    );
}

/// Classifies a conformant error code: what was refused and the usual causes.
pub fn classify(code: &str, map: &Map<String, Value>, findings: &mut Vec<Finding>) {
    let desc = map
        .get("error_description")
        .and_then(Value::as_str)
        .map(|d| {
            format!(
                ": {}",
                secret::mask_text(&d.chars().take(200).collect::<String>())
            )
        })
        .unwrap_or_default();
    let evidence = format!("error: \"{code}\"{desc}");
    let ld = desc.to_ascii_lowercase();
    match code {
        "authorization_pending" | "slow_down" => {
            findings.push(
                Finding::new(&KEEP_POLLING, format!("`{code}`: the device flow is still waiting for the user"))
                    .evidence(evidence)
                    .cause("normal RFC 8628 polling answer; a client whose HTTP layer raises on 400 aborts here")
                    .fix(if code == "slow_down" { "keep polling, adding 5 seconds to the interval (RFC 8628 §3.5)" } else { "keep polling at the advertised interval until success or another error" }),
            );
            return;
        }
        "use_dpop_nonce" => {
            findings.push(
                Finding::new(&DPOP_NONCE, "the server wants a DPoP nonce")
                    .evidence(evidence)
                    .cause("RFC 9449 §8 nonce challenge; the client did not implement the retry")
                    .fix("retry once with the value of the DPoP-Nonce response header in the proof's `nonce` claim"),
            );
            return;
        }
        _ => {}
    }
    let (title, cause, fix) = match code {
        "invalid_grant" => {
            let mut causes = vec![
                "the authorization code was already used or has expired (codes are single-use and live about a minute)",
                "redirect_uri in the token request differs from the authorization request, or is missing although the authorization request had one (RFC 6749 §4.1.3)",
                "the PKCE code_verifier does not match the code_challenge (wrong verifier stored, or one shorter than 43 characters)",
                "a refresh token was revoked, rotated or expired (Salesforce also revokes the oldest beyond 5 grants)",
                "clock skew: a JWT assertion's iat/nbf is ahead of the server's clock",
            ];
            if ld.contains("pkce") || ld.contains("verifier") { causes.swap(0, 2); }
            if ld.contains("redirect") { causes.swap(0, 1); }
            ("the server refused the grant (invalid_grant)", format!("usual causes, most likely first: {}", numbered(&causes)), "capture the authorization request and the token request together and run `gatewise doctor response` on both; compare code age, redirect_uri and verifier")
        }
        "invalid_client" => ("the server could not authenticate the client (invalid_client)",
            format!("usual causes: {}", numbered(&[
                "wrong client_id or secret, or the secret expired (Apple client_secret JWTs expire after at most 6 months)",
                "client_secret_basic encoding: RFC 6749 §2.3.1 requires form-urlencoding id and secret before Base64; secrets with + / : = % break between clients and servers that disagree",
                "the authentication method differs from the one registered (basic vs post vs private_key_jwt)",
            ])),
            "check the secret; if it contains special characters, try client_secret_post; compare the method with token_endpoint_auth_methods_supported"),
        "unauthorized_client" => ("the client is not allowed this grant type (unauthorized_client)", "the client registration does not enable this grant".to_string(), "enable the grant for the client at the authorization server"),
        "unsupported_grant_type" => ("the server does not support this grant type (unsupported_grant_type)", "the grant_type value is misspelled or the server lacks that grant; a JSON request body also makes grant_type invisible".to_string(), "send grant_type in an application/x-www-form-urlencoded body; check grant_types_supported in the metadata"),
        "invalid_scope" => ("the requested scope was refused (invalid_scope)", "a scope is unknown, not allowed for the client, or malformed (commas instead of spaces)".to_string(), "request only scopes registered for the client, separated by spaces"),
        "invalid_request" => ("the request was malformed (invalid_request)", if ld.contains("aadsts900144") { "a required parameter is missing: Azure AD reports this when the body is JSON instead of form-encoded, or scope is missing on v2 refresh".to_string() } else { "a required parameter is missing or repeated, or the body is not form-encoded".to_string() }, "send an application/x-www-form-urlencoded body with grant_type and the grant's parameters"),
        "invalid_target" => ("the resource/audience was refused (invalid_target)", "the resource or audience parameter names something the client may not get tokens for".to_string(), "check the resource indicator (RFC 8707) against what the client is allowed"),
        "access_denied" | "expired_token" => ("the user denied the request or the device code expired", "the user declined, or did not finish in time".to_string(), "start the flow again"),
        "invalid_dpop_proof" => ("the DPoP proof was rejected (invalid_dpop_proof)", "htm/htu do not match the request, iat is out of window, or the jti was replayed".to_string(), "build a fresh proof per request with the exact method and URL (RFC 9449 §4.2)"),
        other => {
            findings.push(
                Finding::new(&REFUSED, format!("the server refused the request (`{other}`)"))
                    .evidence(evidence)
                    .cause("the error description, if any, names the reason")
                    .fix("see the provider's documentation for this code"),
            );
            return;
        }
    };
    findings.push(
        Finding::new(&REFUSED, title)
            .evidence(evidence)
            .cause(cause)
            .fix(fix),
    );
}

fn numbered(items: &[&str]) -> String {
    items
        .iter()
        .enumerate()
        .map(|(i, s)| format!("({}) {s}", i + 1))
        .collect::<Vec<_>>()
        .join("; ")
}
