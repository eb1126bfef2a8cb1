//! Token introspection responses (RFC 7662 §2.2, §2.3) and requests (§2.1).

use super::body::{self, Json, check, introspection_kind};
use crate::capture::{Request, Response};
use crate::finding::{Check, Finding, Severity};
use crate::secret;
use serde_json::Value;

check!(
    REQUEST_NOT_POST,
    "IN-01",
    "introspection-request-not-post",
    Error,
    "RFC 7662 §2.1",
    "The introspection request is not a POST with a form-encoded `token`."
);
check!(
    REQUEST_UNAUTHENTICATED,
    "IN-01",
    "introspection-request-unauthenticated",
    Error,
    "RFC 7662 §2.1",
    "The introspection request carries no caller authentication."
);
check!(
    ACTIVE_MISSING,
    "IN-02",
    "introspection-active-missing",
    Error,
    "RFC 7662 §2.2",
    "The introspection response has no `active` member."
);
check!(
    ACTIVE_NOT_BOOL,
    "IN-02",
    "introspection-active-not-boolean",
    Error,
    "RFC 7662 §2.2",
    "`active` is not a JSON boolean."
);
check!(
    STATUS_NOT_200,
    "IN-02",
    "introspection-status-not-200",
    Error,
    "RFC 7662 §2.2",
    "A successful introspection uses a status other than 200."
);
check!(
    MEMBER_TYPE,
    "IN-02",
    "introspection-member-type",
    Warn,
    "RFC 7662 §2.2",
    "A member has the wrong JSON type (scope not a string, exp not a number, ...)."
);
check!(
    INACTIVE_WITH_CLAIMS,
    "IN-03",
    "introspection-inactive-with-claims",
    Warn,
    "RFC 7662 §2.2",
    "An inactive token's response carries claims besides `active`."
);
check!(
    ERROR_FOR_INACTIVE,
    "IN-03",
    "introspection-error-for-inactive",
    Warn,
    "RFC 7662 §2.2",
    "An unknown or invalid token is answered with an error instead of 200 {\"active\":false}."
);
check!(
    CALLER_REJECTED,
    "IN-04",
    "introspection-caller-rejected",
    Warn,
    "RFC 7662 §2.3",
    "The caller's credentials were rejected (401)."
);

/// Checks defined in this module.
pub const CHECKS: &[&Check] = &[
    &REQUEST_NOT_POST,
    &REQUEST_UNAUTHENTICATED,
    &ACTIVE_MISSING,
    &ACTIVE_NOT_BOOL,
    &STATUS_NOT_200,
    &MEMBER_TYPE,
    &INACTIVE_WITH_CLAIMS,
    &ERROR_FOR_INACTIVE,
    &CALLER_REJECTED,
];

/// Judges an introspection response, with its request when captured.
pub fn judge(req: Option<&Request>, resp: &Response, findings: &mut Vec<Finding>) {
    if let Some(r) = req {
        request(r, findings);
    }
    let sniffed = body::transport(req, resp, &super::body::BODY_BOM, findings);
    match resp.status {
        Some(401) => {
            findings.push(
                Finding::new(&CALLER_REJECTED, "the introspection caller was not authenticated (401)")
                    .evidence(format!("HTTP 401; WWW-Authenticate: {}", resp.headers.get("www-authenticate").unwrap_or("(none)")))
                    .cause("the resource server's introspection credentials are wrong or missing")
                    .fix("configure the resource server's client id and secret (or bearer token) for the introspection endpoint"),
            );
            return;
        }
        Some(s) if s != 200 => {
            let lower = String::from_utf8_lossy(&resp.body.decoded).to_ascii_lowercase();
            let token_error = lower.contains("invalid_token")
                || lower.contains("not found")
                || matches!(s, 400 | 404);
            if token_error {
                findings.push(
                    Finding::new(&ERROR_FOR_INACTIVE, format!("the endpoint answered {s} where an inactive token needs 200 {{\"active\":false}}"))
                        .evidence(format!("HTTP {s}; body: {}", body::body_evidence(&sniffed, &resp.body.decoded, 160)))
                        .cause("the server treats an unknown or expired token as an error; resource servers then cannot tell 'token invalid' from 'introspection broken'")
                        .fix("answer 200 with {\"active\": false} for any token that is not active (RFC 7662 §2.2)"),
                );
            } else {
                findings.push(
                    Finding::new(&STATUS_NOT_200, format!("the introspection endpoint answered {s}"))
                        .evidence(format!("HTTP {s}; body: {}", body::body_evidence(&sniffed, &resp.body.decoded, 160)))
                        .cause("the endpoint failed, or the request reached something else")
                        .fix("introspection answers 200 with a JSON object for every well-formed request"),
                );
            }
            return;
        }
        _ => {}
    }
    let Json::Object(map) =
        body::json_object(&introspection_kind::KIND, resp, &sniffed, &[], findings)
    else {
        return;
    };
    let active = match map.get("active") {
        None => {
            findings.push(
                Finding::new(&ACTIVE_MISSING, "the introspection response has no `active` member")
                    .evidence(format!("members: {}", super::token::names(map)))
                    .cause("the endpoint is not an RFC 7662 endpoint (a userinfo or token-info endpoint), or a proxy rewrote the body")
                    .fix("return `active` (boolean) in every response; point the resource server at the real introspection_endpoint"),
            );
            return;
        }
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            findings.push(
                Finding::new(&ACTIVE_NOT_BOOL, format!("`active` is {}, not a boolean", super::token::json_kind(v)))
                    .evidence(format!("active: {v}"))
                    .cause("the server serializes booleans as strings; a resource server testing `active == true` refuses every token, one testing truthiness accepts \"false\"")
                    .fix("return `\"active\": true` or `false` as a JSON boolean"),
            );
            return;
        }
    };
    if !active {
        let others: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "active")
            .collect();
        if !others.is_empty() {
            findings.push(
                Finding::new(&INACTIVE_WITH_CLAIMS, "an inactive token's response still carries claims")
                    .evidence(format!("active: false; also: {}", others.join(", ")))
                    .cause("the server leaks information about tokens that are not valid")
                    .fix("return only {\"active\": false} for inactive tokens (RFC 7662 §2.2 SHOULD NOT)"),
            );
        }
        return;
    }
    for (name, want_number) in [
        ("exp", true),
        ("iat", true),
        ("nbf", true),
        ("scope", false),
        ("client_id", false),
        ("username", false),
        ("sub", false),
        ("iss", false),
        ("token_type", false),
        ("jti", false),
    ] {
        let Some(v) = map.get(name) else { continue };
        let ok = if want_number {
            v.is_u64() || v.is_i64()
        } else {
            v.is_string()
        };
        if !ok {
            let expected = if want_number {
                "a number (seconds since the epoch)"
            } else {
                "a string"
            };
            let extra = if name == "scope" && v.is_array() {
                " (space-delimited, not an array)"
            } else {
                ""
            };
            findings.push(
                Finding::new(&MEMBER_TYPE, format!("`{name}` is {}, not {expected}{extra}", super::token::json_kind(v)))
                    .evidence(format!("{name}: {}", secret::mask_text(&v.to_string())))
                    .cause("the server serializes this member with the wrong type; resource servers then misread it")
                    .fix(format!("return `{name}` as {expected} (RFC 7662 §2.2)")),
            );
        }
    }
    if let Some(v) = map.get("aud").filter(|v| {
        !(v.is_string() || v.as_array().is_some_and(|a| a.iter().all(Value::is_string)))
    }) {
        findings.push(
            Finding::new(
                &MEMBER_TYPE,
                "`aud` is neither a string nor an array of strings",
            )
            .evidence(format!("aud: {v}"))
            .cause("the server serializes the audience with the wrong type")
            .fix("return aud as a string or an array of strings"),
        );
    }
}

fn request(req: &Request, findings: &mut Vec<Finding>) {
    let has_token = req.form_value("token").is_some();
    if !req.method.eq_ignore_ascii_case("POST") || !has_token {
        findings.push(
            Finding::new(
                &REQUEST_NOT_POST,
                "the introspection request is not a form POST with `token`",
            )
            .evidence(format!(
                "{} {}; token parameter {}",
                req.method,
                req.target,
                if has_token { "present" } else { "absent" }
            ))
            .cause("the token was sent in the query, a header or JSON")
            .fix("POST application/x-www-form-urlencoded `token=...` (RFC 7662 §2.1)"),
        );
    }
    let authed = req.headers.contains("authorization")
        || req.form_value("client_secret").is_some()
        || req.form_value("client_assertion").is_some();
    if !authed {
        findings.push(
            Finding::new(&REQUEST_UNAUTHENTICATED, "the introspection request carries no caller authentication")
                .evidence("no Authorization header, no client_secret or client_assertion")
                .cause("an open introspection endpoint lets anyone probe tokens; RFC 7662 §2.1 requires caller authorization")
                .fix("authenticate the resource server to the introspection endpoint"),
        );
    }
}
