//! The device authorization grant (RFC 8628) as a client meets it: the
//! metadata's `device_authorization_endpoint` (§4), the device
//! authorization response (§3.2: `device_code`, `user_code`,
//! `verification_uri`, `expires_in`, optionally `verification_uri_complete`
//! and `interval`), and the polling answers of the token endpoint (§3.5:
//! `authorization_pending`, `slow_down`, `access_denied`,
//! `expired_token`). What `gatewise doctor token --grant device_code`
//! checks while it plays the device.
//!
//! Pure: `gatewise-probe` makes the requests, waits between polls and
//! hands the values in; the device code never appears in evidence.

use super::body::check;
use crate::finding::{Check, Finding, Severity};
use serde_json::{Map, Value};

check!(
    ENDPOINT_MISSING,
    "DV-01",
    "device-endpoint-missing",
    Error,
    "RFC 8628 §4",
    "The metadata has no usable `device_authorization_endpoint`: the device flow cannot start."
);
check!(
    GRANT_NOT_ADVERTISED,
    "DV-01",
    "device-grant-not-advertised",
    Warn,
    "RFC 8628 §4; RFC 8414 §2",
    "The metadata has a device authorization endpoint, but `grant_types_supported` lacks `urn:ietf:params:oauth:grant-type:device_code`."
);
check!(
    REFUSED,
    "DV-02",
    "device-authorization-refused",
    Error,
    "RFC 8628 §3.2",
    "The device authorization request was answered with an error instead of codes."
);
check!(
    NOT_JSON,
    "DV-02",
    "device-response-not-json",
    Error,
    "RFC 8628 §3.2",
    "The device authorization response is not a JSON object."
);
check!(
    MEMBER_MISSING,
    "DV-03",
    "device-member-missing",
    Error,
    "RFC 8628 §3.2",
    "A required member of the device authorization response (`device_code`, `user_code`, `verification_uri`, `expires_in`) is missing."
);
check!(
    MEMBER_TYPE,
    "DV-03",
    "device-member-type",
    Error,
    "RFC 8628 §3.2",
    "A member of the device authorization response has the wrong type: codes and URIs are non-empty strings, `expires_in` and `interval` positive integers."
);
check!(
    VERIFICATION_URI_INVALID,
    "DV-04",
    "device-verification-uri-invalid",
    Error,
    "RFC 8628 §3.2",
    "`verification_uri` or `verification_uri_complete` is not an absolute http(s) URL the user can open."
);
check!(
    COMPLETE_MISSING,
    "DV-04",
    "device-verification-uri-complete-missing",
    Info,
    "RFC 8628 §3.3.1",
    "No `verification_uri_complete`: the user has to type the code (no link or QR code that carries it)."
);
check!(
    INTERVAL_DEFAULT,
    "DV-05",
    "device-interval-default",
    Info,
    "RFC 8628 §3.2",
    "No `interval` in the device authorization response: clients poll every 5 seconds."
);
check!(
    USER_CODE_WEAK,
    "DV-06",
    "device-user-code-weak",
    Warn,
    "RFC 8628 §6.1, §5.1",
    "The user code is short (fewer than 6 letters or digits): it can be guessed while it is valid."
);
check!(
    DENIED,
    "DV-07",
    "device-access-denied",
    Error,
    "RFC 8628 §3.5",
    "Polling ended with `access_denied`: the user (or a policy) denied the device's request."
);
check!(
    EXPIRED,
    "DV-07",
    "device-expired-token",
    Error,
    "RFC 8628 §3.5",
    "Polling ended with `expired_token`: the device code expired before the user approved."
);
check!(
    PENDING_AFTER_EXPIRY,
    "DV-08",
    "device-pending-after-expiry",
    Error,
    "RFC 8628 §3.5",
    "The token endpoint kept answering `authorization_pending` after `expires_in` had passed, instead of `expired_token`."
);
check!(
    SLOW_DOWN_UNPROVOKED,
    "DV-09",
    "device-slow-down-unprovoked",
    Warn,
    "RFC 8628 §3.5",
    "The token endpoint answered `slow_down` although the client had waited the interval it was given: the server does not honour its own `interval`."
);

/// Every check of this module.
pub const CHECKS: &[&Check] = &[
    &ENDPOINT_MISSING,
    &GRANT_NOT_ADVERTISED,
    &REFUSED,
    &NOT_JSON,
    &MEMBER_MISSING,
    &MEMBER_TYPE,
    &VERIFICATION_URI_INVALID,
    &COMPLETE_MISSING,
    &INTERVAL_DEFAULT,
    &USER_CODE_WEAK,
    &DENIED,
    &EXPIRED,
    &PENDING_AFTER_EXPIRY,
    &SLOW_DOWN_UNPROVOKED,
];

/// The grant type of the token request (RFC 8628 §3.4).
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The polling interval when the server gives none (RFC 8628 §3.2).
pub const DEFAULT_INTERVAL: u64 = 5;

/// What `slow_down` adds to the interval (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP: u64 = 5;

/// A usable device authorization response (RFC 8628 §3.2). `Debug` does
/// not show the device code.
#[derive(Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The device code, for the token requests.
    pub device_code: String,
    /// The code the user types.
    pub user_code: String,
    /// Where the user goes.
    pub verification_uri: String,
    /// The same with the code in it, when given.
    pub verification_uri_complete: Option<String>,
    /// Seconds the codes are valid.
    pub expires_in: u64,
    /// Seconds to wait between polls.
    pub interval: u64,
}

impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorization")
            .field("device_code", &"…")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("verification_uri_complete", &self.verification_uri_complete)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish()
    }
}

/// The verdict on a device authorization response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    /// What is wrong or notable.
    pub findings: Vec<Finding>,
    /// The codes, when the flow can go on.
    pub authorization: Option<Authorization>,
}

/// The metadata's device authorization endpoint, with findings when it is
/// missing or the grant is not advertised.
pub fn endpoint(metadata: &Map<String, Value>, issuer: &str) -> (Option<String>, Vec<Finding>) {
    let mut findings = Vec::new();
    let url = metadata
        .get("device_authorization_endpoint")
        .and_then(Value::as_str)
        .filter(|u| is_http_url(u))
        .map(str::to_owned);
    if url.is_none() {
        findings.push(
            Finding::new(&ENDPOINT_MISSING, "no usable device_authorization_endpoint in the metadata: the device flow was not started")
                .evidence(format!("issuer {issuer}: device_authorization_endpoint is {}", match metadata.get("device_authorization_endpoint") {
                    None => "absent".to_owned(),
                    Some(v) => format!("{v}, not an absolute http(s) URL"),
                }))
                .cause("the server does not offer the device authorization grant, or does not advertise it (RFC 8628 §4)")
                .fix("enable the device flow at the server and publish device_authorization_endpoint; check the issuer URL"),
        );
    } else if let Some(grants) = metadata
        .get("grant_types_supported")
        .and_then(Value::as_array)
        && !grants.iter().any(|g| g.as_str() == Some(GRANT_TYPE))
    {
        findings.push(
            Finding::new(&GRANT_NOT_ADVERTISED, "the metadata offers a device endpoint but not the device_code grant")
                .evidence("grant_types_supported lacks urn:ietf:params:oauth:grant-type:device_code")
                .cause("the metadata is incomplete, or the grant is disabled at the token endpoint")
                .fix("list urn:ietf:params:oauth:grant-type:device_code in grant_types_supported (RFC 8414 §2)"),
        );
    }
    (url, findings)
}

fn is_http_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && !r.contains(char::is_whitespace)
    })
}

/// Judges a device authorization response: `status` and the decoded
/// `body`. Error responses (RFC 6749 §5.2 format) are named here and
/// classified by the token error judge the caller also runs.
pub fn judge_authorization(status: u16, body: &[u8]) -> Judged {
    let mut findings = Vec::new();
    let body = body
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .unwrap_or(body);
    let parsed: Option<Map<String, Value>> = match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    };
    if !(200..300).contains(&status) {
        let code = parsed
            .as_ref()
            .and_then(|m| m.get("error"))
            .and_then(Value::as_str)
            .map(|e| e.chars().take(60).collect::<String>());
        findings.push(
            Finding::new(&REFUSED, format!("the device authorization request was refused (HTTP {status}{})", code.as_deref().map(|c| format!(", {c}")).unwrap_or_default()))
                .evidence(format!("HTTP {status}; error: {}", code.as_deref().unwrap_or("(none)")))
                .cause(match code.as_deref() {
                    Some("unauthorized_client") => "the client is not allowed the device grant",
                    Some("invalid_client") => "the client could not be authenticated (public clients send client_id only; confidential ones authenticate as at the token endpoint)",
                    Some("invalid_scope") => "a requested scope is unknown or not allowed for the client",
                    _ => "the server refused the request; the error classification below says more",
                })
                .fix("enable urn:ietf:params:oauth:grant-type:device_code for the client, and request only its scopes"),
        );
        return Judged {
            findings,
            authorization: None,
        };
    }
    let Some(m) = parsed else {
        findings.push(
            Finding::new(
                &NOT_JSON,
                "the device authorization response is not a JSON object",
            )
            .evidence(format!("HTTP {status}, {} bytes", body.len()))
            .cause("an error page or a proxy answered, or the server wrote another format")
            .fix("servers: answer application/json with the members of RFC 8628 §3.2"),
        );
        return Judged {
            findings,
            authorization: None,
        };
    };
    let mut usable = true;
    let mut string = |name: &str, findings: &mut Vec<Finding>| -> Option<String> {
        match m.get(name) {
            None => {
                usable = false;
                findings.push(
                    Finding::new(
                        &MEMBER_MISSING,
                        format!("`{name}` is missing from the device authorization response"),
                    )
                    .evidence(format!(
                        "members: {}",
                        m.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
                    ))
                    .cause(
                        if name == "verification_uri" && m.contains_key("verification_url") {
                            "the server uses the draft name verification_url (Google did)"
                        } else {
                            "the server does not follow RFC 8628 §3.2"
                        },
                    )
                    .fix(format!("servers: send `{name}` (RFC 8628 §3.2)")),
                );
                None
            }
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(other) => {
                usable = false;
                findings.push(
                    Finding::new(&MEMBER_TYPE, format!("`{name}` is not a non-empty string"))
                        .evidence(format!("{name}: {}", type_name(other)))
                        .cause("the server writes the member with another type")
                        .fix(format!("servers: send `{name}` as a JSON string")),
                );
                None
            }
        }
    };
    let device_code = string("device_code", &mut findings);
    let user_code = string("user_code", &mut findings);
    let verification_uri = string("verification_uri", &mut findings);
    let complete = match m.get("verification_uri_complete") {
        None => {
            findings.push(
                Finding::new(&COMPLETE_MISSING, "no verification_uri_complete: the user types the code")
                    .evidence("the response has verification_uri only")
                    .cause("the server does not offer the optional link with the code in it")
                    .fix("nothing to fix for clients; servers may add verification_uri_complete (RFC 8628 §3.3.1)"),
            );
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            findings.push(
                Finding::new(&MEMBER_TYPE, "`verification_uri_complete` is not a string")
                    .evidence(format!("verification_uri_complete: {}", type_name(other)))
                    .cause("the server writes the member with another type")
                    .fix("servers: send verification_uri_complete as a JSON string"),
            );
            None
        }
    };
    for (name, value) in [
        ("verification_uri", verification_uri.as_deref()),
        ("verification_uri_complete", complete.as_deref()),
    ] {
        if let Some(v) = value
            && !is_http_url(v)
        {
            if name == "verification_uri" {
                usable = false;
            }
            findings.push(
                Finding::new(&VERIFICATION_URI_INVALID, format!("`{name}` is not an absolute http(s) URL"))
                    .evidence(format!("{name}: {:?}", v.chars().take(120).collect::<String>()))
                    .cause("a relative path, a missing scheme, or a placeholder the server did not fill in")
                    .fix(format!("servers: send `{name}` as the absolute URL of the verification page")),
            );
        }
    }
    let number = |name: &str, findings: &mut Vec<Finding>| -> Option<Option<u64>> {
        match m.get(name) {
            None => Some(None),
            Some(Value::Number(n)) if n.as_u64().is_some_and(|v| v > 0) => Some(n.as_u64()),
            Some(other) => {
                findings.push(
                    Finding::new(&MEMBER_TYPE, format!("`{name}` is not a positive integer"))
                        .evidence(format!("{name}: {}", type_name(other)))
                        .cause(if other.is_string() {
                            "the server sends the number as a string; strict clients refuse the response"
                        } else {
                            "the server writes the member with another type or value"
                        })
                        .fix(format!("servers: send `{name}` as a JSON number of seconds (RFC 8628 §3.2)")),
                );
                None
            }
        }
    };
    let expires_in = match number("expires_in", &mut findings) {
        Some(Some(v)) => Some(v),
        Some(None) => {
            usable = false;
            findings.push(
                Finding::new(
                    &MEMBER_MISSING,
                    "`expires_in` is missing from the device authorization response",
                )
                .evidence(format!(
                    "members: {}",
                    m.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
                ))
                .cause("the server does not follow RFC 8628 §3.2")
                .fix("servers: send expires_in (seconds the codes are valid)"),
            );
            None
        }
        None => {
            usable = false;
            None
        }
    };
    let interval = match number("interval", &mut findings) {
        Some(Some(v)) => v,
        Some(None) => {
            findings.push(
                Finding::new(&INTERVAL_DEFAULT, "no interval: polling every 5 seconds")
                    .evidence("the response has no interval member")
                    .cause("interval is optional; 5 seconds is the default (RFC 8628 §3.2)")
                    .fix("nothing to fix; servers may send interval explicitly"),
            );
            DEFAULT_INTERVAL
        }
        None => DEFAULT_INTERVAL,
    };
    if let Some(code) = &user_code {
        let significant = code.chars().filter(char::is_ascii_alphanumeric).count();
        if significant < 6 {
            findings.push(
                Finding::new(&USER_CODE_WEAK, format!("the user code has only {significant} letters or digits"))
                    .evidence(format!("user_code: {code:?}"))
                    .cause("a short code can be guessed by someone trying codes while it is valid (RFC 8628 §5.1)")
                    .fix("servers: use 8 characters from a 20-letter alphabet or 9 digits (RFC 8628 §6.1), and rate-limit entry"),
            );
        }
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let authorization = match (device_code, user_code, verification_uri, expires_in) {
        (Some(device_code), Some(user_code), Some(verification_uri), Some(expires_in))
            if usable =>
        {
            Some(Authorization {
                device_code,
                user_code,
                verification_uri,
                verification_uri_complete: complete.filter(|c| is_http_url(c)),
                expires_in,
                interval,
            })
        }
        _ => None,
    };
    Judged {
        findings,
        authorization,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number out of range",
        Value::String(s) if s.is_empty() => "an empty string",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// What a poll's answer means for the client (RFC 8628 §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `authorization_pending`: wait `interval` seconds and poll again.
    Wait(u64),
    /// `slow_down`: the interval is now this (5 s more), wait it and poll again.
    SlowDown(u64),
    /// `access_denied`: stop.
    Denied,
    /// `expired_token`: stop.
    Expired,
    /// Tokens, or another answer: stop, and judge it as a token response.
    Done,
}

/// The next step after a poll answered with `error` (none: a success or a
/// response without an error code), at the current `interval`.
pub fn step(error: Option<&str>, interval: u64) -> Step {
    match error {
        Some("authorization_pending") => Step::Wait(interval),
        Some("slow_down") => Step::SlowDown(interval.saturating_add(SLOW_DOWN_STEP)),
        Some("access_denied") => Step::Denied,
        Some("expired_token") => Step::Expired,
        _ => Step::Done,
    }
}

/// The poll ended with `access_denied`.
pub fn denied(description: Option<&str>) -> Finding {
    Finding::new(&DENIED, "the device's request was denied (access_denied)")
        .evidence(describe("access_denied", description))
        .cause("the user chose Deny on the verification page, or a policy (consent, conditional access, the client's allowed users) refused")
        .fix("run again and approve on the verification page; if you did approve, check the server's policies for this user and client")
}

/// The poll ended with `expired_token`.
pub fn expired(description: Option<&str>, expires_in: u64) -> Finding {
    Finding::new(
        &EXPIRED,
        "the device code expired before the request was approved (expired_token)",
    )
    .evidence(format!(
        "{}; the codes were valid {expires_in} s",
        describe("expired_token", description)
    ))
    .cause("nobody entered the user code and approved within expires_in, or the approval happened at another server's verification page")
    .fix("run again and approve sooner; the client must start a new device authorization request, not keep polling")
}

/// The server still answered `authorization_pending` after the codes expired.
pub fn pending_after_expiry(expires_in: u64, polls: u32) -> Finding {
    Finding::new(
        &PENDING_AFTER_EXPIRY,
        "the server still said authorization_pending after the codes expired",
    )
    .evidence(format!(
        "expires_in {expires_in} s passed; {polls} poll(s) answered authorization_pending"
    ))
    .cause("nobody approved, and the server does not expire its device codes (or its clock is far behind)")
    .fix("servers: answer expired_token once expires_in has passed (RFC 8628 §3.5); clients: stop polling after expires_in")
}

/// `slow_down` although the client waited `waited` seconds (at least the
/// interval it had been given).
pub fn slow_down_unprovoked(waited: u64, interval: u64) -> Finding {
    Finding::new(
        &SLOW_DOWN_UNPROVOKED,
        "the server asked to slow down although the interval was honoured",
    )
    .evidence(format!(
        "waited {waited} s before the poll, interval {interval} s; answer: slow_down"
    ))
    .cause("the server measures the interval differently (from the previous response, or per client instead of per device code), or its interval is longer than the one it advertised")
    .fix("servers: compare against the interval given to this device code (RFC 8628 §3.5); clients: add 5 s on every slow_down, as the doctor did")
}

fn describe(code: &str, description: Option<&str>) -> String {
    match description {
        Some(d) if !d.is_empty() => format!(
            "error: \"{code}\": {}",
            crate::secret::mask_text(&d.chars().take(200).collect::<String>())
        ),
        _ => format!("error: \"{code}\""),
    }
}

/// The severity a poll answer carries in a report (for callers that
/// summarise polls without findings).
pub fn severity(step: Step) -> Severity {
    match step {
        Step::Denied | Step::Expired => Severity::Error,
        _ => Severity::Info,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn codes(j: &Judged) -> Vec<&str> {
        j.findings.iter().map(|f| f.code).collect()
    }

    fn body(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn a_complete_response_is_usable_and_quiet() {
        let j = judge_authorization(
            200,
            &body(json!({
                "device_code": "GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS",
                "user_code": "WDJB-MJHT",
                "verification_uri": "https://example.com/device",
                "verification_uri_complete": "https://example.com/device?user_code=WDJB-MJHT",
                "expires_in": 1800,
                "interval": 5
            })),
        );
        assert!(j.findings.is_empty(), "{:?}", codes(&j));
        let a = j.authorization.unwrap();
        assert_eq!((a.expires_in, a.interval), (1800, 5));
        assert!(!format!("{a:?}").contains("GmRhmh"));
    }

    #[test]
    fn missing_and_mistyped_members_stop_the_flow() {
        let j = judge_authorization(
            200,
            &body(
                json!({"device_code": "d", "user_code": "WDJB-MJHT", "verification_url": "https://example.com/device", "expires_in": "1800"}),
            ),
        );
        assert!(j.authorization.is_none());
        let c = codes(&j);
        assert!(c.contains(&"device-member-missing"), "{c:?}");
        assert!(c.contains(&"device-member-type"), "{c:?}");
        assert!(c.contains(&"device-interval-default"), "{c:?}");
        assert!(
            j.findings
                .iter()
                .any(|f| f.cause.contains("verification_url"))
        );
        let j = judge_authorization(
            200,
            &body(
                json!({"device_code": "d", "user_code": "1234", "verification_uri": "/device", "expires_in": 600, "interval": 5}),
            ),
        );
        assert!(j.authorization.is_none());
        let c = codes(&j);
        assert!(c.contains(&"device-verification-uri-invalid"), "{c:?}");
        assert!(c.contains(&"device-user-code-weak"), "{c:?}");
        assert!(
            c.contains(&"device-verification-uri-complete-missing"),
            "{c:?}"
        );
    }

    #[test]
    fn errors_and_non_json_are_named() {
        let j = judge_authorization(400, &body(json!({"error": "unauthorized_client"})));
        assert_eq!(codes(&j), ["device-authorization-refused"]);
        assert!(j.findings[0].title.contains("unauthorized_client"));
        let j = judge_authorization(200, b"<html>login</html>");
        assert_eq!(codes(&j), ["device-response-not-json"]);
    }

    #[test]
    fn polling_follows_rfc_8628_section_3_5() {
        assert_eq!(step(Some("authorization_pending"), 5), Step::Wait(5));
        assert_eq!(step(Some("slow_down"), 5), Step::SlowDown(10));
        assert_eq!(step(Some("access_denied"), 5), Step::Denied);
        assert_eq!(step(Some("expired_token"), 5), Step::Expired);
        assert_eq!(step(None, 5), Step::Done);
        assert_eq!(step(Some("invalid_client"), 5), Step::Done);
        assert_eq!(severity(Step::Denied), Severity::Error);
    }

    #[test]
    fn the_metadata_must_name_the_endpoint() {
        let m =
            json!({"issuer": "https://as.test", "grant_types_supported": ["client_credentials"]});
        let (u, f) = endpoint(m.as_object().unwrap(), "https://as.test");
        assert!(u.is_none());
        assert_eq!(f[0].code, "device-endpoint-missing");
        let m = json!({"device_authorization_endpoint": "https://as.test/device", "grant_types_supported": ["client_credentials"]});
        let (u, f) = endpoint(m.as_object().unwrap(), "https://as.test");
        assert_eq!(u.as_deref(), Some("https://as.test/device"));
        assert_eq!(f[0].code, "device-grant-not-advertised");
        let m = json!({"device_authorization_endpoint": "https://as.test/device", "grant_types_supported": [GRANT_TYPE]});
        assert!(endpoint(m.as_object().unwrap(), "x").1.is_empty());
    }

    #[test]
    fn findings_explain_the_end_of_polling() {
        assert_eq!(
            denied(Some("the user said no")).code,
            "device-access-denied"
        );
        assert!(expired(None, 600).evidence.contains("600"));
        assert_eq!(pending_after_expiry(600, 3).severity, Severity::Error);
        assert_eq!(slow_down_unprovoked(5, 5).severity, Severity::Warn);
    }
}
