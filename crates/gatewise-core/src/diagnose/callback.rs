//! The authorization response as the client's redirect URI receives it
//! (RFC 6749 §4.1.2, RFC 9207): a code or an error, the `state` echoed
//! exactly, and the issuer identifier when the server sends or promises
//! one. What `gatewise doctor token --grant authorization_code` checks on
//! its loopback redirect before it redeems the code.
//!
//! Pure: the query pairs and what the request sent are handed in.

use super::body::check;
use crate::finding::{Check, Finding, Severity};

check!(
    CODE_MISSING,
    "AZ-01",
    "callback-code-missing",
    Error,
    "RFC 6749 §4.1.2",
    "The authorization response carries neither `code` nor `error`."
);
check!(
    STATE_MISSING,
    "AZ-02",
    "callback-state-missing",
    Error,
    "RFC 6749 §4.1.2, §10.12",
    "The request sent `state` and the response does not return it."
);
check!(
    STATE_MISMATCH,
    "AZ-02",
    "callback-state-mismatch",
    Error,
    "RFC 6749 §4.1.2, §10.12",
    "The response's `state` differs from the request's: a forged or crossed response (CSRF)."
);
check!(
    ERROR_RESPONSE,
    "AZ-03",
    "callback-error",
    Error,
    "RFC 6749 §4.1.2.1",
    "The authorization server redirected back with an error instead of a code."
);
check!(
    ERROR_CODE_UNKNOWN,
    "AZ-03",
    "callback-error-code-unknown",
    Warn,
    "RFC 6749 §4.1.2.1",
    "The error redirect's `error` is not one RFC 6749 §4.1.2.1 defines."
);
check!(
    ISS_MISMATCH,
    "AZ-04",
    "callback-iss-mismatch",
    Error,
    "RFC 9207 §2.4",
    "The response's `iss` is not the expected issuer: the code must not be redeemed (mix-up attack)."
);
check!(
    ISS_MISSING,
    "AZ-05",
    "callback-iss-missing",
    Error,
    "RFC 9207 §2.4; RFC 8414 §2",
    "The server promises `iss` in authorization responses (`authorization_response_iss_parameter_supported`) and this one has none."
);
check!(
    ISS_ABSENT_INFO,
    "AZ-05",
    "callback-iss-not-sent",
    Info,
    "RFC 9207 §2",
    "The response has no `iss` and the server does not promise one: mix-up attacks are not detectable."
);

/// Every check of this module.
pub const CHECKS: &[&Check] = &[
    &CODE_MISSING,
    &STATE_MISSING,
    &STATE_MISMATCH,
    &ERROR_RESPONSE,
    &ERROR_CODE_UNKNOWN,
    &ISS_MISMATCH,
    &ISS_MISSING,
    &ISS_ABSENT_INFO,
];

/// The error codes of RFC 6749 §4.1.2.1, with what usually causes each.
const ERRORS: &[(&str, &str, &str)] = &[
    (
        "invalid_request",
        "a parameter is missing, repeated or malformed (often `code_challenge` or `code_challenge_method`, or a `redirect_uri` the server parsed differently)",
        "compare the authorization URL with `gatewise doctor authorize-url URL --registered-redirect-uri URI`",
    ),
    (
        "unauthorized_client",
        "the client is not allowed the authorization code grant",
        "enable the authorization code grant for the client at the authorization server",
    ),
    (
        "access_denied",
        "the user declined, or a policy (consent, conditional access, group membership) refused",
        "sign in again and accept; check the server's consent and access policies for this user and client",
    ),
    (
        "unsupported_response_type",
        "the server does not offer `response_type=code` to this client",
        "check `response_types_supported` in the metadata and the client's registration",
    ),
    (
        "invalid_scope",
        "a requested scope is unknown or not allowed for the client",
        "request only scopes from `scopes_supported` that the client is allowed",
    ),
    (
        "server_error",
        "the authorization server failed",
        "try again; the server's logs have the cause",
    ),
    (
        "temporarily_unavailable",
        "the authorization server is overloaded or in maintenance",
        "try again later",
    ),
];

/// What the request sent, and what the server promised, to judge the
/// response against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    /// The `state` the request carried.
    pub state: Option<String>,
    /// The issuer the client talks to (the metadata's `issuer`).
    pub issuer: Option<String>,
    /// The metadata's `authorization_response_iss_parameter_supported`.
    pub iss_promised: bool,
}

/// The verdict on an authorization response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    /// What is wrong or notable.
    pub findings: Vec<Finding>,
    /// The code, when it may be redeemed: present, `state` matching, `iss`
    /// acceptable (RFC 9207 §2.4: a mismatch MUST NOT be redeemed).
    pub code: Option<String>,
}

/// Judges the query pairs of an authorization response.
pub fn judge(query: &[(String, String)], expect: &Expect) -> Judged {
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let mut findings = Vec::new();
    let mut redeemable = true;

    // RFC 9207 §2.4: iss is checked on success and error responses alike.
    match (get("iss"), &expect.issuer) {
        (Some(iss), Some(want)) if iss != want => {
            redeemable = false;
            findings.push(
                Finding::new(&ISS_MISMATCH, "the authorization response came from another issuer")
                    .evidence(format!("iss {iss:?}, expected {want:?}"))
                    .cause("the response is from a different authorization server than the one the client started with (a mix-up attack, or a client configured with two servers' endpoints)")
                    .fix("discard the code; check that the authorization and token endpoints belong to the same issuer"),
            );
        }
        (None, _) if expect.iss_promised => {
            redeemable = false;
            findings.push(
                Finding::new(&ISS_MISSING, "the response lacks the promised `iss`")
                    .evidence("metadata: authorization_response_iss_parameter_supported = true; the redirect has no iss")
                    .cause("a proxy or the client's router dropped the parameter, or the server does not keep its promise")
                    .fix("keep every query parameter of the redirect; fix the server if it omits iss"),
            );
        }
        (None, _) => findings.push(
            Finding::new(&ISS_ABSENT_INFO, "no `iss` in the authorization response")
                .evidence("the redirect has no iss and the metadata does not promise one")
                .cause("the server does not implement RFC 9207")
                .fix("servers: send iss and advertise authorization_response_iss_parameter_supported (RFC 9207 §3)"),
        ),
        _ => {}
    }

    match (get("state"), &expect.state) {
        (None, Some(_)) => {
            redeemable = false;
            findings.push(
                Finding::new(&STATE_MISSING, "the response does not return `state`")
                    .evidence("the request sent state; the redirect has none")
                    .cause("the server drops state, or something between rewrote the redirect")
                    .fix("return state unchanged (RFC 6749 §4.1.2)"),
            );
        }
        (Some(got), Some(sent)) if got != sent => {
            redeemable = false;
            findings.push(
                Finding::new(&STATE_MISMATCH, "`state` differs from the one sent")
                    .evidence(format!("{} chars sent, {} chars received", sent.chars().count(), got.chars().count()))
                    .cause("the response belongs to another request (two sign-ins at once, a stale tab) or was forged")
                    .fix("start again; clients must refuse such a response (RFC 6749 §10.12)"),
            );
        }
        _ => {}
    }

    if let Some(error) = get("error") {
        redeemable = false;
        let description = get("error_description").unwrap_or("");
        match ERRORS.iter().find(|(e, ..)| *e == error) {
            Some((_, cause, fix)) => findings.push(
                Finding::new(&ERROR_RESPONSE, format!("the authorization server answered `{error}`"))
                    .evidence(if description.is_empty() {
                        format!("error={error}")
                    } else {
                        format!("error={error}, error_description={description:?}")
                    })
                    .cause(*cause)
                    .fix(*fix),
            ),
            None => findings.push(
                Finding::new(&ERROR_CODE_UNKNOWN, format!("the error `{error}` is not an RFC 6749 code"))
                    .evidence(format!("error={error} {description}"))
                    .cause("a provider-specific error (or a typo in the server)")
                    .fix("read the provider's documentation for this code; servers: use the codes of RFC 6749 §4.1.2.1"),
            ),
        }
    } else if get("code").is_none_or(str::is_empty) {
        redeemable = false;
        findings.push(
            Finding::new(&CODE_MISSING, "the redirect carries no code and no error")
                .evidence(format!(
                    "parameters: {}",
                    query.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(", ")
                ))
                .cause("the server used another response mode (fragment or form_post) or the redirect was rewritten")
                .fix("request response_type=code with the default query response mode"),
        );
    }

    let code = get("code")
        .filter(|c| redeemable && !c.is_empty())
        .map(str::to_owned);
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    Judged { findings, code }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn expect(promised: bool) -> Expect {
        Expect {
            state: Some("st-1".into()),
            issuer: Some("https://as.example".into()),
            iss_promised: promised,
        }
    }

    fn codes(j: &Judged) -> Vec<&str> {
        j.findings.iter().map(|f| f.code).collect()
    }

    #[test]
    fn a_good_response_yields_its_code() {
        let j = judge(
            &q(&[
                ("code", "c1"),
                ("state", "st-1"),
                ("iss", "https://as.example"),
            ]),
            &expect(true),
        );
        assert_eq!(j.code.as_deref(), Some("c1"));
        assert!(j.findings.is_empty(), "{:?}", codes(&j));
    }

    #[test]
    fn state_and_issuer_problems_stop_the_redemption() {
        let j = judge(
            &q(&[
                ("code", "c1"),
                ("state", "other"),
                ("iss", "https://as.example"),
            ]),
            &expect(true),
        );
        assert_eq!(
            (j.code.clone(), codes(&j)),
            (None, vec!["callback-state-mismatch"])
        );
        let j = judge(
            &q(&[("code", "c1"), ("iss", "https://as.example")]),
            &expect(true),
        );
        assert_eq!(codes(&j), ["callback-state-missing"]);
        let j = judge(
            &q(&[
                ("code", "c1"),
                ("state", "st-1"),
                ("iss", "https://evil.example"),
            ]),
            &expect(false),
        );
        assert_eq!(
            (j.code.clone(), codes(&j)),
            (None, vec!["callback-iss-mismatch"])
        );
        let j = judge(&q(&[("code", "c1"), ("state", "st-1")]), &expect(true));
        assert_eq!(
            (j.code.clone(), codes(&j)),
            (None, vec!["callback-iss-missing"])
        );
        // Not promised: noted, and the code may be redeemed.
        let j = judge(&q(&[("code", "c1"), ("state", "st-1")]), &expect(false));
        assert_eq!(j.code.as_deref(), Some("c1"));
        assert_eq!(codes(&j), ["callback-iss-not-sent"]);
    }

    #[test]
    fn error_redirects_are_explained() {
        let j = judge(
            &q(&[
                ("error", "access_denied"),
                ("error_description", "the user said no"),
                ("state", "st-1"),
                ("iss", "https://as.example"),
            ]),
            &expect(true),
        );
        assert_eq!((j.code.clone(), codes(&j)), (None, vec!["callback-error"]));
        assert!(j.findings[0].evidence.contains("the user said no"));
        let j = judge(
            &q(&[
                ("error", "consent_required"),
                ("state", "st-1"),
                ("iss", "https://as.example"),
            ]),
            &expect(true),
        );
        assert_eq!(codes(&j), ["callback-error-code-unknown"]);
        let j = judge(
            &q(&[("state", "st-1"), ("iss", "https://as.example")]),
            &expect(true),
        );
        assert_eq!(codes(&j), ["callback-code-missing"]);
    }

    #[test]
    fn the_state_value_never_appears_in_evidence() {
        let j = judge(
            &q(&[
                ("code", "c1"),
                ("state", "secret-state-received"),
                ("iss", "https://as.example"),
            ]),
            &Expect {
                state: Some("secret-state-sent".into()),
                ..expect(true)
            },
        );
        let text = format!("{:?}", j.findings);
        assert!(!text.contains("secret-state"), "{text}");
    }
}
