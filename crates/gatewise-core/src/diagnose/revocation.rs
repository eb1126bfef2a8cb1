//! Token revocation (RFC 7009 §2.1, §2.2).

use super::body::check;
use crate::capture::{Request, Response};
use crate::finding::{Check, Finding, Severity};
use crate::media;

check!(
    REQUEST_MALFORMED,
    "RV-01",
    "revocation-request-malformed",
    Error,
    "RFC 7009 §2.1",
    "The revocation request is not a form POST with `token` and client authentication."
);
check!(
    HINT_UNKNOWN,
    "RV-01",
    "revocation-token-type-hint-unknown",
    Warn,
    "RFC 7009 §2.1",
    "token_type_hint is neither access_token nor refresh_token."
);
check!(
    STATUS_NOT_200,
    "RV-02",
    "revocation-status-not-200",
    Warn,
    "RFC 7009 §2.2",
    "Revocation answered with a 2xx other than 200."
);
check!(
    ERROR_FOR_INVALID,
    "RV-02",
    "revocation-error-for-invalid-token",
    Warn,
    "RFC 7009 §2.2",
    "An invalid token was answered with an error instead of 200."
);
check!(
    UNAVAILABLE_NO_RETRY,
    "RV-03",
    "revocation-unavailable-without-retry-after",
    Info,
    "RFC 7009 §2.2.1",
    "503 without Retry-After: the client cannot know when to retry."
);
check!(
    UNSUPPORTED_TYPE,
    "RV-03",
    "revocation-unsupported-token-type",
    Info,
    "RFC 7009 §2.2.1",
    "The server does not revoke this token type."
);
check!(
    FAILED,
    "RV-02",
    "revocation-failed",
    Warn,
    "RFC 7009 §2.2.1",
    "Revocation failed with an error status."
);

/// Checks defined in this module.
pub const CHECKS: &[&Check] = &[
    &REQUEST_MALFORMED,
    &HINT_UNKNOWN,
    &STATUS_NOT_200,
    &ERROR_FOR_INVALID,
    &UNAVAILABLE_NO_RETRY,
    &UNSUPPORTED_TYPE,
    &FAILED,
];

/// Judges a revocation response, with its request when captured.
pub fn judge(req: Option<&Request>, resp: &Response, findings: &mut Vec<Finding>) {
    if let Some(r) = req {
        request(r, findings);
    }
    let sniffed = super::body::transport(req, resp, &super::body::BODY_BOM, findings);
    let Some(status) = resp.status else { return };
    let body_text = String::from_utf8_lossy(&resp.body.decoded).to_ascii_lowercase();
    let evidence = format!(
        "HTTP {status}; body: {}",
        super::body::body_evidence(&sniffed, &resp.body.decoded, 160)
    );
    match status {
        200 => {}
        201..=299 => findings.push(
            Finding::new(&STATUS_NOT_200, format!("revocation answered {status}, not 200"))
                .evidence(evidence)
                .cause("the server uses 204 for 'done'; RFC 7009 §2.2 specifies 200")
                .fix("answer 200 (the client ignores the body)"),
        ),
        503 if !resp.headers.contains("retry-after") => findings.push(
            Finding::new(&UNAVAILABLE_NO_RETRY, "503 without Retry-After")
                .evidence(evidence)
                .cause("the server is temporarily unable to revoke and does not say when to retry")
                .fix("add Retry-After to 503 responses (RFC 7009 §2.2.1)"),
        ),
        _ if body_text.contains("unsupported_token_type") => findings.push(
            Finding::new(&UNSUPPORTED_TYPE, "the server does not revoke this token type")
                .evidence(evidence)
                .cause("the server cannot revoke access tokens (self-contained JWTs) or this type")
                .fix("revoke the refresh token instead, and keep access tokens short-lived"),
        ),
        _ if body_text.contains("invalid_token") || body_text.contains("invalid_grant") || status == 404 => findings.push(
            Finding::new(&ERROR_FOR_INVALID, format!("an invalid token was answered with {status}"))
                .evidence(evidence)
                .cause("the server reports unknown tokens as errors; RFC 7009 §2.2 says invalid tokens do not cause an error, since the goal (the token is unusable) is met")
                .fix("answer 200 for unknown, expired or already revoked tokens"),
        ),
        _ => findings.push(
            Finding::new(&FAILED, format!("revocation failed with {status}"))
                .evidence(evidence)
                .cause(if media::sniff(&resp.body.decoded).shape == media::Shape::Empty { "no error body to say why" } else { "see the error in the body" })
                .fix("check client authentication and the token parameter"),
        ),
    }
}

fn request(req: &Request, findings: &mut Vec<Finding>) {
    let token = req.form_value("token");
    let authed = req.headers.contains("authorization") || req.form_value("client_id").is_some();
    if !req.method.eq_ignore_ascii_case("POST") || token.is_none() || !authed {
        let mut missing = Vec::new();
        if !req.method.eq_ignore_ascii_case("POST") {
            missing.push(format!("method is {}", req.method));
        }
        if token.is_none() {
            missing.push("no `token` form parameter".to_string());
        }
        if !authed {
            missing.push("no client authentication".to_string());
        }
        findings.push(
            Finding::new(&REQUEST_MALFORMED, "the revocation request is malformed")
                .evidence(missing.join("; "))
                .cause("the client sends the token in the URL or without credentials")
                .fix("POST application/x-www-form-urlencoded `token=...` with client authentication (RFC 7009 §2.1)"),
        );
    }
    if let Some(h) = req.form_value("token_type_hint")
        && h != "access_token"
        && h != "refresh_token"
    {
        findings.push(
            Finding::new(
                &HINT_UNKNOWN,
                format!("token_type_hint \"{h}\" is not registered"),
            )
            .evidence(format!("token_type_hint={h}"))
            .cause("a typo or a provider-specific hint")
            .fix("use access_token or refresh_token, or omit the hint"),
        );
    }
}
