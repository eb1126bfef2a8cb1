//! Provider rules: what one provider documents beyond the RFCs, recognised
//! from the request's host in a single capture. Each names the provider and
//! its documentation, so a reader can tell them from RFC rules.

use super::body::check;
use crate::capture::{Request, Response};
use crate::finding::{Check, Finding, Severity};
use crate::secret;
use serde_json::Value;

check!(
    ENTRA_REFRESH_SCOPE,
    "PV-01",
    "entra-v2-refresh-scope-missing",
    Error,
    "Microsoft identity platform: refresh an access token (v2.0 token endpoint)",
    "A refresh_token request to Entra's v2.0 token endpoint without scope (AADSTS900144)."
);
check!(
    SALESFORCE_REFRESH,
    "PV-02",
    "salesforce-refresh-token-revoked",
    Warn,
    "Salesforce: Connected App refresh token policy; OAuth grant limit per user and app",
    "Salesforce refused a refresh token: the Connected App policy or the 5-grant limit revoked it."
);
check!(
    GITHUB_ACCEPT,
    "TR-02",
    "github-accept-json-missing",
    Error,
    "RFC 6749 §5.1; GitHub: Authorizing OAuth apps (Accept header)",
    "GitHub answered in form encoding because the request did not send Accept: application/json."
);

/// Checks defined in this module.
pub const CHECKS: &[&Check] = &[&ENTRA_REFRESH_SCOPE, &SALESFORCE_REFRESH, &GITHUB_ACCEPT];

/// Which provider a request went to, from its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    Entra,
    Salesforce,
    GitHub,
}

fn provider(req: &Request) -> Option<Provider> {
    let url = req.url()?;
    let parsed = url::Url::parse(&url).ok()?;
    let host = parsed.host_str()?.to_ascii_lowercase();
    let under = |d: &str| host == d || host.ends_with(&format!(".{d}"));
    if [
        "login.microsoftonline.com",
        "login.microsoft.com",
        "login.microsoftonline.us",
        "login.partner.microsoftonline.cn",
        "ciamlogin.com",
    ]
    .iter()
    .any(|d| under(d))
    {
        Some(Provider::Entra)
    } else if ["salesforce.com", "force.com", "salesforce-setup.com"]
        .iter()
        .any(|d| under(d))
    {
        Some(Provider::Salesforce)
    } else if host == "github.com" || host.starts_with("github.") {
        Some(Provider::GitHub)
    } else {
        None
    }
}

/// Provider rules on a token request and its response.
pub fn token(req: Option<&Request>, resp: &Response, findings: &mut Vec<Finding>) {
    let Some(req) = req else { return };
    let Some(p) = provider(req) else { return };
    let grant = req.form_value("grant_type");
    match p {
        Provider::Entra => {
            if grant.as_deref() == Some("refresh_token")
                && req
                    .path()
                    .to_ascii_lowercase()
                    .contains("/oauth2/v2.0/token")
                && req.form_value("scope").is_none_or(|s| s.trim().is_empty())
            {
                findings.push(
                    Finding::new(&ENTRA_REFRESH_SCOPE, "the Entra v2.0 refresh request has no scope")
                        .evidence(format!("POST {}; body: {}", req.path(), secret::mask_form(&req.form())))
                        .cause("the v2.0 endpoint needs scope on refresh too (v1.0 did not); Entra answers 400 invalid_request AADSTS900144 \"The request body must contain the following parameter: 'scope'\"")
                        .fix("send the same scope as the original request (e.g. `https://outlook.office.com/SMTP.Send offline_access`) with grant_type=refresh_token"),
                );
            }
        }
        Provider::Salesforce => {
            if grant.as_deref() == Some("refresh_token")
                && error_code(resp).as_deref() == Some("invalid_grant")
            {
                findings.push(
                    Finding::new(&SALESFORCE_REFRESH, "Salesforce refused the refresh token (invalid_grant)")
                        .evidence(format!("HTTP {} to a refresh_token request; error: invalid_grant", resp.status.unwrap_or(0)))
                        .cause("at Salesforce the usual causes are: (1) the Connected App's refresh token policy is \"Immediately expire refresh token\" or a fixed lifetime; (2) the user authorised the app more than 5 times, and Salesforce revoked the oldest grant; (3) an admin revoked the app's access or the user was deactivated or changed password (with a policy that revokes tokens)")
                        .fix("in Setup, Connected App > Manage > OAuth Policies, set the refresh token policy to \"valid until revoked\"; reuse one refresh token per user instead of authorising again; then have the user re-authorise once"),
                );
            }
        }
        Provider::GitHub => {}
    }
}

/// After a form-encoded token response: when the request went to GitHub
/// without `Accept: application/json`, say so precisely instead of the
/// generic TR-02 finding it replaces.
pub fn github_form_answer(req: Option<&Request>, findings: &mut [Finding]) {
    let Some(req) = req else { return };
    if provider(req) != Some(Provider::GitHub) {
        return;
    }
    let accept = req.headers.get("accept");
    if accept.is_some_and(|a| a.to_ascii_lowercase().contains("json")) {
        return;
    }
    let Some(pos) = findings
        .iter()
        .position(|f| f.rule == "TR-02" && f.code == "token-not-json")
    else {
        return;
    };
    let evidence = format!(
        "request to {} has {}; response: {}",
        req.headers.get("host").unwrap_or("github.com"),
        match accept {
            Some(a) => format!("`Accept: {a}`"),
            None => "no Accept header".to_string(),
        },
        findings
            .get(pos)
            .map(|f| f.evidence.as_str())
            .unwrap_or_default()
    );
    let replacement = Finding::new(
        &GITHUB_ACCEPT,
        "GitHub answered in form encoding: the request did not ask for JSON",
    )
    .evidence(evidence)
    .cause("GitHub's token endpoint returns `access_token=...&scope=...&token_type=bearer` unless the request sends `Accept: application/json`; JSON-only clients then fail with \"invalid OAuth response\" or a JSON syntax error at position 0")
    .fix("add `Accept: application/json` to the token request (GitHub documents it), or parse the form-encoded answer");
    if let Some(slot) = findings.get_mut(pos) {
        *slot = replacement;
    }
}

fn error_code(resp: &Response) -> Option<String> {
    let v: Value = serde_json::from_slice(&resp.body.decoded).ok()?;
    v.get("error")?.as_str().map(str::to_owned)
}
