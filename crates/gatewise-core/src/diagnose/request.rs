//! Checks on a captured token request (RFC 6749 §2.3, §4.1.3; RFC 7636 §4.1).

use super::body::check;
use crate::capture::Request;
use crate::finding::{Check, Finding, Severity};
use crate::media::MediaType;
use crate::secret;
use base64::Engine as _;

check!(
    NOT_POST,
    "CA-04",
    "token-request-not-post",
    Error,
    "RFC 6749 §3.2",
    "The token request does not use POST."
);
check!(
    JSON_BODY,
    "CA-04",
    "token-request-json-body",
    Error,
    "RFC 6749 §4.1.3, App. B",
    "The token request body is JSON instead of application/x-www-form-urlencoded."
);
check!(
    GRANT_TYPE_MISSING,
    "CA-04",
    "token-request-grant-type-missing",
    Warn,
    "RFC 6749 §4.1.3",
    "The token request has no grant_type parameter."
);
check!(
    TWO_METHODS,
    "CA-02",
    "token-request-two-auth-methods",
    Warn,
    "RFC 6749 §2.3",
    "The client authenticates with more than one method in one request."
);
check!(
    BASIC_NOT_ENCODED,
    "CA-01",
    "token-request-basic-not-form-encoded",
    Warn,
    "RFC 6749 §2.3.1",
    "Basic credentials contain characters that should have been form-urlencoded first."
);
check!(
    BASIC_UNDECODABLE,
    "CA-01",
    "token-request-basic-malformed",
    Error,
    "RFC 7617 §2",
    "The Basic credentials are not base64 of `id:secret`."
);
check!(
    REDIRECT_URI_MISSING,
    "CA-05",
    "token-request-redirect-uri-missing",
    Info,
    "RFC 6749 §4.1.3",
    "An authorization_code request without redirect_uri: fine only if the authorization request had none."
);
check!(
    VERIFIER_INVALID,
    "PK-01",
    "pkce-verifier-invalid",
    Error,
    "RFC 7636 §4.1",
    "code_verifier is not 43-128 characters of [A-Za-z0-9-._~]."
);

/// Checks defined in this module.
pub const CHECKS: &[&Check] = &[
    &NOT_POST,
    &JSON_BODY,
    &GRANT_TYPE_MISSING,
    &TWO_METHODS,
    &BASIC_NOT_ENCODED,
    &BASIC_UNDECODABLE,
    &REDIRECT_URI_MISSING,
    &VERIFIER_INVALID,
];

/// Judges a captured token request.
///
/// `at` is when the request was made (Unix seconds), for the time checks on
/// client authentication JWTs.
pub fn token_request(req: &Request, at: Option<u64>, findings: &mut Vec<Finding>) {
    if !req.method.eq_ignore_ascii_case("POST") {
        findings.push(
            Finding::new(&NOT_POST, format!("the token request uses {}, not POST", req.method))
                .evidence(format!("{} {}", req.method, req.target))
                .cause("the client (or a redirect that turned POST into GET) calls the token endpoint with the wrong method; servers answer 405 or an HTML page")
                .fix("POST the request to the token endpoint (RFC 6749 §3.2)"),
        );
    }
    let ct = req.headers.get("content-type").map(MediaType::parse);
    if ct.as_ref().is_some_and(|m| m.is_json())
        || req.body.decoded.trim_ascii_start().starts_with(b"{")
    {
        findings.push(
            Finding::new(&JSON_BODY, "the token request body is JSON")
                .evidence(format!("Content-Type: {}", req.headers.get("content-type").unwrap_or("(none)")))
                .cause("the client sends JSON; token endpoints only read form encoding, so grant_type looks missing (Azure AD: AADSTS900144)")
                .fix("send the parameters as application/x-www-form-urlencoded (RFC 6749 App. B)"),
        );
        return;
    }
    let form = req.form();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("grant_type").is_none() && req.method.eq_ignore_ascii_case("POST") {
        findings.push(
            Finding::new(&GRANT_TYPE_MISSING, "the token request has no grant_type")
                .evidence(format!("body: {}", secret::mask_form(&form)))
                .cause("the client builds the body wrongly, or the capture lost it; a few providers (GitHub's web flow) do not need it, every RFC 6749 server does")
                .fix("send grant_type (authorization_code, client_credentials, refresh_token, ...)"),
        );
    }
    let basic = req
        .headers
        .get("authorization")
        .and_then(|a| {
            a.trim()
                .strip_prefix("Basic ")
                .or_else(|| a.trim().strip_prefix("basic "))
        })
        .map(str::trim);
    if let Some(b64) = basic {
        basic_credentials(b64, findings);
        if get("client_secret").is_some() || get("client_assertion").is_some() {
            findings.push(
                Finding::new(
                    &TWO_METHODS,
                    "the client sends Basic credentials and credentials in the body",
                )
                .evidence("Authorization: Basic … and client_secret/client_assertion in the body")
                .cause("the client library adds both; servers may reject it as ambiguous")
                .fix("use exactly one method: the one registered for the client (RFC 6749 §2.3)"),
            );
        }
    }
    super::assertion::judge(&form, at, findings);
    if get("grant_type") == Some("authorization_code") && get("redirect_uri").is_none() {
        findings.push(
            Finding::new(&REDIRECT_URI_MISSING, "the code exchange has no redirect_uri")
                .evidence(format!("body: {}", secret::mask_form(&form)))
                .cause("if the authorization request carried redirect_uri, the token request must repeat it exactly (Azure AD: AADSTS70000)")
                .fix("send the same redirect_uri as in the authorization request"),
        );
    }
    if let Some(v) = get("code_verifier") {
        let len = v.chars().count();
        let bad: Vec<char> = v
            .chars()
            .filter(|c| !(c.is_ascii_alphanumeric() || "-._~".contains(*c)))
            .collect();
        if !(43..=128).contains(&len) || !bad.is_empty() {
            let what = if bad.is_empty() {
                format!("{len} characters long")
            } else {
                format!(
                    "{len} characters with characters outside the allowed set ({:?})",
                    bad.iter().take(5).collect::<String>()
                )
            };
            findings.push(
                Finding::new(&VERIFIER_INVALID, format!("the PKCE code_verifier is {what}"))
                    .evidence(format!("code_verifier: {}", secret::mask(v)))
                    .cause("the client generates a short or base64 (not base64url) verifier; lax servers accept it, Keycloak and Authentik answer invalid_grant")
                    .fix("use 32 random bytes encoded base64url without padding (43 characters), RFC 7636 §4.1"),
            );
        }
    }
}

fn basic_credentials(b64: &str, findings: &mut Vec<Finding>) {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let Some(pair) = decoded else {
        findings.push(
            Finding::new(
                &BASIC_UNDECODABLE,
                "the Basic credentials are not valid base64 of UTF-8 text",
            )
            .evidence(format!(
                "Authorization: {}",
                secret::mask_authorization(&format!("Basic {b64}"))
            ))
            .cause("the client built the header by hand")
            .fix("send base64(urlencode(client_id) \":\" urlencode(client_secret))"),
        );
        return;
    };
    let Some((id, secret_value)) = pair.split_once(':') else {
        findings.push(
            Finding::new(
                &BASIC_UNDECODABLE,
                "the Basic credentials have no `:` between id and secret",
            )
            .evidence("decoded credentials contain no colon")
            .cause("the client sent only the id or only the secret")
            .fix("send base64(urlencode(client_id) \":\" urlencode(client_secret))"),
        );
        return;
    };
    // RFC 6749 §2.3.1: each part is form-urlencoded before Base64. Raw
    // reserved characters mean the client skipped that step.
    let raw_specials = |s: &str| -> Vec<char> {
        let mut v: Vec<char> = s
            .chars()
            .filter(|c| " +/:=&$@!,;?#[]".contains(*c))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let in_id = raw_specials(id);
    let in_secret = raw_specials(secret_value);
    if !in_id.is_empty() || !in_secret.is_empty() {
        findings.push(
            Finding::new(&BASIC_NOT_ENCODED, "the Basic credentials were not form-urlencoded before Base64")
                .evidence(format!(
                    "client_id \"{id}\"; secret {}; raw characters that must be percent-encoded: id {:?}, secret {:?}",
                    secret::mask(secret_value),
                    in_id.iter().collect::<String>(),
                    in_secret.iter().collect::<String>()
                ))
                .cause("Authlib and requests-oauthlib send credentials unencoded; servers that decode per RFC 6749 §2.3.1 then see a different secret (invalid_client only for secrets with + / : = %)")
                .fix("percent-encode id and secret before Base64, or switch to client_secret_post"),
        );
    }
}
