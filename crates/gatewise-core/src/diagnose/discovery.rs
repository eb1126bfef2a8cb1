//! Authorization server metadata (RFC 8414) and OpenID Connect Discovery 1.0.

use super::Context;
use super::body::{self, Json, check, discovery_kind};
use crate::capture::{Request, Response};
use crate::finding::{Check, Finding, Severity};
use serde_json::{Map, Value};

check!(
    STATUS_NOT_200,
    "MD-06",
    "discovery-status-not-200",
    Error,
    "RFC 8414 §3.2; OpenID Connect Discovery §4.2",
    "The metadata document was not served with status 200."
);
check!(
    ISSUER_MISSING,
    "MD-03",
    "discovery-issuer-missing",
    Error,
    "RFC 8414 §2",
    "The metadata has no `issuer`."
);
check!(
    ISSUER_INVALID,
    "MD-03",
    "discovery-issuer-invalid",
    Error,
    "RFC 8414 §2",
    "`issuer` is not an https URL without query or fragment."
);
check!(
    ISSUER_MISMATCH,
    "MD-02",
    "discovery-issuer-mismatch",
    Error,
    "RFC 8414 §3.3",
    "`issuer` is not identical to the issuer the metadata URL was built from."
);
check!(
    OIDC_ISSUER_MISMATCH,
    "MD-04",
    "oidc-issuer-mismatch",
    Error,
    "OpenID Connect Discovery §4.3",
    "`issuer` is not identical to the URL prefix the configuration was fetched from."
);
check!(
    ISSUER_TEMPLATED,
    "MD-07",
    "discovery-issuer-templated",
    Warn,
    "OpenID Connect Discovery §4.3",
    "`issuer` is a template (Microsoft `{tenantid}`): no token's `iss` can equal it."
);
check!(
    WELL_KNOWN_FORM,
    "MD-01",
    "discovery-well-known-form",
    Warn,
    "RFC 8414 §3.1",
    "The well-known suffix was appended where RFC 8414 inserts it (or the reverse)."
);
check!(
    MEMBER_MISSING,
    "MD-03",
    "discovery-required-member-missing",
    Error,
    "RFC 8414 §2",
    "A member RFC 8414 requires is missing."
);
check!(
    OIDC_MEMBER_MISSING,
    "MD-05",
    "oidc-required-member-missing",
    Error,
    "OpenID Connect Discovery §3",
    "A member OpenID Connect Discovery requires is missing."
);
check!(
    OIDC_RS256_MISSING,
    "MD-05",
    "oidc-rs256-missing",
    Error,
    "OpenID Connect Discovery §3",
    "id_token_signing_alg_values_supported does not include RS256."
);
check!(
    MEMBER_TYPE,
    "MD-03",
    "discovery-member-type",
    Error,
    "RFC 8414 §2",
    "A metadata member has the wrong JSON type."
);
check!(
    ENDPOINT_NOT_HTTPS,
    "MD-03",
    "discovery-endpoint-not-https",
    Error,
    "RFC 8414 §2",
    "An endpoint URL is not https (loopback hosts excepted)."
);
check!(
    PKCE_NOT_ADVERTISED,
    "PK-06",
    "discovery-pkce-not-advertised",
    Info,
    "RFC 8414 §2; RFC 7636",
    "code_challenge_methods_supported is absent: PKCE support is not advertised."
);
check!(
    PKCE_NO_S256,
    "PK-03",
    "discovery-pkce-s256-missing",
    Warn,
    "RFC 7636 §4.2",
    "code_challenge_methods_supported lacks S256."
);
check!(
    ALG_NONE,
    "JB-01",
    "discovery-alg-none-advertised",
    Warn,
    "RFC 8725 §3.1",
    "The metadata advertises `none` as a signing algorithm."
);

/// Checks defined in this module.
pub const CHECKS: &[&Check] = &[
    &STATUS_NOT_200,
    &ISSUER_MISSING,
    &ISSUER_INVALID,
    &ISSUER_MISMATCH,
    &OIDC_ISSUER_MISMATCH,
    &ISSUER_TEMPLATED,
    &WELL_KNOWN_FORM,
    &MEMBER_MISSING,
    &OIDC_MEMBER_MISSING,
    &OIDC_RS256_MISSING,
    &MEMBER_TYPE,
    &ENDPOINT_NOT_HTTPS,
    &PKCE_NOT_ADVERTISED,
    &PKCE_NO_S256,
    &ALG_NONE,
];

const OIDC_WELL_KNOWN: &str = "/.well-known/openid-configuration";
const OAUTH_WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";

/// Judges a metadata document, with its request when captured.
pub fn judge(req: Option<&Request>, resp: &Response, ctx: &Context, findings: &mut Vec<Finding>) {
    let sniffed = body::transport(req, resp, &super::body::BODY_BOM, findings);
    if let Some(s) = resp.status.filter(|s| *s != 200) {
        findings.push(
            Finding::new(&STATUS_NOT_200, format!("the metadata document answered {s}"))
                .evidence(format!("HTTP {s} {}; Location: {}; body: {}", resp.reason, resp.headers.get("location").unwrap_or("(none)"), body::body_evidence(&sniffed, &resp.body.decoded, 120)))
                .cause(if (300..400).contains(&s) { "the well-known URL redirects; RFC 8414 clients do not follow redirects for metadata" } else { "there is no metadata at this URL: try the other well-known form (RFC 8414 inserts the suffix before the path, OpenID Connect appends it)" })
                .fix("serve the metadata with 200 at the well-known URL derived from the issuer"),
        );
        return;
    }
    let Json::Object(map) = body::json_object(&discovery_kind::KIND, resp, &sniffed, &[], findings)
    else {
        return;
    };
    let url = req.and_then(Request::url);
    let oidc = url.as_deref().is_some_and(|u| u.contains(OIDC_WELL_KNOWN))
        || [
            "id_token_signing_alg_values_supported",
            "subject_types_supported",
            "userinfo_endpoint",
        ]
        .iter()
        .any(|k| map.contains_key(*k));
    issuer(map, url.as_deref(), oidc, ctx, findings);
    required(map, oidc, findings);
    types_and_endpoints(map, findings);
    pkce_and_algs(map, findings);
}

/// The issuer a metadata URL implies, and whether it was built the RFC 8414 way.
fn issuer_from_url(url: &str) -> Option<(String, &'static str)> {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    if let Some(i) = url.find(OIDC_WELL_KNOWN) {
        let prefix = url.get(..i)?;
        let after = url.get(i + OIDC_WELL_KNOWN.len()..)?;
        // Some servers (and RFC 8414 §5) insert the OIDC suffix too.
        return Some((format!("{prefix}{after}"), "openid-configuration"));
    }
    if let Some(i) = url.find(OAUTH_WELL_KNOWN) {
        let prefix = url.get(..i)?;
        let after = url.get(i + OAUTH_WELL_KNOWN.len()..)?;
        return Some((format!("{prefix}{after}"), "oauth-authorization-server"));
    }
    None
}

fn issuer(
    map: &Map<String, Value>,
    url: Option<&str>,
    oidc: bool,
    ctx: &Context,
    findings: &mut Vec<Finding>,
) {
    let Some(iss_v) = map.get("issuer") else {
        findings.push(
            Finding::new(&ISSUER_MISSING, "the metadata has no issuer")
                .evidence(format!("members: {}", super::token::names(map)))
                .cause("this is not an OAuth/OIDC metadata document, or it is incomplete")
                .fix("publish `issuer`, identical to the URL the metadata is derived from"),
        );
        return;
    };
    let Some(iss) = iss_v.as_str() else {
        findings.push(
            Finding::new(&MEMBER_TYPE, "issuer is not a string")
                .evidence(format!("issuer: {iss_v}"))
                .cause("the server serializes issuer with the wrong type")
                .fix("publish issuer as a string URL"),
        );
        return;
    };
    if iss.contains('{') {
        findings.push(
            Finding::new(&ISSUER_TEMPLATED, format!("issuer \"{iss}\" is a template"))
                .evidence(format!("issuer: \"{iss}\""))
                .cause("Microsoft's multi-tenant endpoints (common, organizations) publish `{tenantid}` and tokens carry the real tenant id; strict clients (go-oidc, openid-client, IdentityModel) fail the issuer check")
                .fix("use the tenant-specific metadata (https://login.microsoftonline.com/<tenant-id>/v2.0), or validate iss against the tenant pattern in the client"),
        );
        return;
    }
    match url::Url::parse(iss) {
        Ok(u)
            if (u.scheme() == "https" || is_loopback(&u))
                && u.query().is_none()
                && u.fragment().is_none() => {}
        _ => findings.push(
            Finding::new(
                &ISSUER_INVALID,
                format!("issuer \"{iss}\" is not an https URL without query or fragment"),
            )
            .evidence(format!("issuer: \"{iss}\""))
            .cause("the server publishes an http, relative or decorated issuer")
            .fix("publish an https issuer URL with no query or fragment (RFC 8414 §2)"),
        ),
    }
    let derived = url.and_then(issuer_from_url);
    let expected = ctx
        .issuer
        .clone()
        .or_else(|| derived.as_ref().map(|(i, _)| i.clone()));
    if let Some(exp) = expected
        && exp != iss
    {
        let check = if oidc {
            &OIDC_ISSUER_MISMATCH
        } else {
            &ISSUER_MISMATCH
        };
        let source = if ctx.issuer.is_some() {
            "the expected issuer (--issuer)"
        } else {
            "the issuer the metadata URL was built from"
        };
        findings.push(
                Finding::new(check, format!("issuer \"{iss}\" is not identical to {source}"))
                    .evidence(format!("expected \"{exp}\"; metadata says \"{iss}\"; {}", describe_difference(&exp, iss)))
                    .cause(mismatch_cause(&exp, iss))
                    .fix("configure the client with exactly the issuer the metadata publishes (character for character), or fix the server's public URL setting; clients must not use metadata whose issuer differs (RFC 8414 §3.3)"),
            );
    }
    if let (Some(u), Some((_, form))) = (url, derived.as_ref())
        && let Ok(parsed) = url::Url::parse(iss)
    {
        let has_path = !parsed.path().trim_end_matches('/').is_empty();
        let wk = if *form == "openid-configuration" {
            OIDC_WELL_KNOWN
        } else {
            OAUTH_WELL_KNOWN
        };
        let appended = u.split(['?', '#']).next().unwrap_or(u).ends_with(wk);
        if has_path && *form == "oauth-authorization-server" && appended {
            findings.push(
                    Finding::new(&WELL_KNOWN_FORM, "the RFC 8414 suffix was appended after the issuer's path")
                        .evidence(format!("fetched {u}; issuer \"{iss}\""))
                        .cause("RFC 8414 §3.1 inserts /.well-known/oauth-authorization-server between host and path; appending is the OpenID Connect form (Okta serves it that way)")
                        .fix(format!("try https://{}{}{}; clients should try both forms", parsed.host_str().unwrap_or(""), OAUTH_WELL_KNOWN, parsed.path().trim_end_matches('/'))),
                );
        }
    }
}

fn is_loopback(u: &url::Url) -> bool {
    matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
}

/// Says in words how two URLs that should be identical differ.
pub fn describe_difference(expected: &str, actual: &str) -> String {
    if expected.trim_end_matches('/') == actual.trim_end_matches('/') {
        return if actual.ends_with('/') {
            "they differ only by a trailing slash in the metadata".to_string()
        } else {
            "they differ only by a trailing slash in the expected value".to_string()
        };
    }
    if expected.eq_ignore_ascii_case(actual) {
        return "they differ only in letter case".to_string();
    }
    match (url::Url::parse(expected), url::Url::parse(actual)) {
        (Ok(e), Ok(a)) => {
            let mut diffs = Vec::new();
            if e.scheme() != a.scheme() {
                diffs.push(format!("scheme {} vs {}", e.scheme(), a.scheme()));
            }
            if e.host_str() != a.host_str() {
                diffs.push(format!(
                    "host {} vs {}",
                    e.host_str().unwrap_or(""),
                    a.host_str().unwrap_or("")
                ));
            }
            if e.port_or_known_default() != a.port_or_known_default() {
                diffs.push(format!(
                    "port {:?} vs {:?}",
                    e.port_or_known_default(),
                    a.port_or_known_default()
                ));
            }
            if e.path() != a.path() {
                diffs.push(format!("path {} vs {}", e.path(), a.path()));
            }
            if diffs.is_empty() {
                "they differ in encoding".to_string()
            } else {
                format!("differs in {}", diffs.join(", "))
            }
        }
        _ => first_difference(expected, actual),
    }
}

fn first_difference(a: &str, b: &str) -> String {
    let i = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    format!("first difference at character {}", i + 1)
}

fn mismatch_cause(expected: &str, actual: &str) -> String {
    if expected.trim_end_matches('/') == actual.trim_end_matches('/') {
        "the trailing slash differs: issuer comparison is exact (Auth0 issuers end with `/`, many configurations strip it)".to_string()
    } else if let (Ok(e), Ok(a)) = (url::Url::parse(expected), url::Url::parse(actual)) {
        if e.host_str() != a.host_str() || e.port() != a.port() {
            "the server stamps its issuer from a different public host name than the one the client uses (Keycloak's KC_HOSTNAME / frontend URL, a custom domain vs the tenant domain, an internal vs external host)".to_string()
        } else if e.scheme() != a.scheme() {
            "the server runs behind a TLS-terminating proxy and builds http:// URLs (X-Forwarded-Proto not passed)".to_string()
        } else {
            "the issuer path differs (a realm, tenant or version segment)".to_string()
        }
    } else {
        "the configured issuer is not a URL".to_string()
    }
}

fn required(map: &Map<String, Value>, oidc: bool, findings: &mut Vec<Finding>) {
    let (check, members): (&'static Check, &[&str]) = if oidc {
        (
            &OIDC_MEMBER_MISSING,
            &[
                "authorization_endpoint",
                "token_endpoint",
                "jwks_uri",
                "response_types_supported",
                "subject_types_supported",
                "id_token_signing_alg_values_supported",
            ],
        )
    } else {
        (
            &MEMBER_MISSING,
            &["response_types_supported", "token_endpoint"],
        )
    };
    let missing: Vec<&str> = members
        .iter()
        .copied()
        .filter(|m| !map.contains_key(*m))
        .collect();
    if !missing.is_empty() {
        let spec = if oidc {
            "OpenID Connect Discovery §3"
        } else {
            "RFC 8414 §2"
        };
        findings.push(
            Finding::new(
                check,
                format!("required metadata missing: {}", missing.join(", ")),
            )
            .evidence(format!("members present: {}", super::token::names(map)))
            .cause(if missing.contains(&"jwks_uri") {
                "without jwks_uri no client can verify ID tokens or JWT access tokens"
            } else {
                "the server publishes incomplete metadata"
            })
            .fix(format!("publish the members {spec} requires")),
        );
    }
    if oidc
        && let Some(Value::Array(algs)) = map.get("id_token_signing_alg_values_supported")
        && !algs.iter().any(|a| a == "RS256")
    {
        findings.push(
                    Finding::new(&OIDC_RS256_MISSING, "RS256 is not among the ID token signing algorithms")
                        .evidence(format!("id_token_signing_alg_values_supported: {}", Value::Array(algs.clone())))
                        .cause("the provider signs only with other algorithms (Logto uses ES384); clients that default to RS256 (Spring's NimbusJwtDecoder) fail")
                        .fix("support RS256 (OpenID Connect Discovery §3 requires it), or configure the client's algorithm explicitly"),
                );
    }
}

fn types_and_endpoints(map: &Map<String, Value>, findings: &mut Vec<Finding>) {
    for (k, v) in map {
        if k.ends_with("_supported")
            && k != "authorization_response_iss_parameter_supported"
            && !k.ends_with("parameter_supported")
            && !k.starts_with("claims_parameter")
            && !k.starts_with("request_")
            && !k.ends_with("session_supported")
            && !k.ends_with("logout_supported")
            && !k.starts_with("tls_")
        {
            let ok = v.as_array().is_some_and(|a| a.iter().all(Value::is_string));
            if !ok && !v.is_boolean() {
                findings.push(
                    Finding::new(&MEMBER_TYPE, format!("`{k}` is not an array of strings"))
                        .evidence(format!(
                            "{k}: {}",
                            v.to_string().chars().take(120).collect::<String>()
                        ))
                        .cause("the server serializes a list as a single string or object")
                        .fix("publish *_supported members as JSON arrays of strings"),
                );
            }
        }
        if (k.ends_with("_endpoint") || k == "jwks_uri") && !k.starts_with("mtls") {
            let Some(s) = v.as_str() else {
                findings.push(
                    Finding::new(&MEMBER_TYPE, format!("`{k}` is not a string"))
                        .evidence(format!("{k}: {v}"))
                        .cause("the server serializes an endpoint with the wrong type")
                        .fix("publish endpoints as absolute https URLs"),
                );
                continue;
            };
            match url::Url::parse(s) {
                Ok(u) if u.scheme() == "https" || is_loopback(&u) => {}
                _ => findings.push(
                    Finding::new(&ENDPOINT_NOT_HTTPS, format!("`{k}` is not an absolute https URL"))
                        .evidence(format!("{k}: \"{s}\""))
                        .cause("the server builds URLs from its internal address behind a TLS-terminating proxy (X-Forwarded-Proto/Host not honoured)")
                        .fix("configure the server's public base URL so every endpoint is https"),
                ),
            }
        }
    }
}

fn pkce_and_algs(map: &Map<String, Value>, findings: &mut Vec<Finding>) {
    let has_code_flow = map
        .get("response_types_supported")
        .and_then(Value::as_array)
        .is_none_or(|a| {
            a.iter().any(|t| {
                t.as_str()
                    .is_some_and(|s| s.split(' ').any(|p| p == "code"))
            })
        });
    match map
        .get("code_challenge_methods_supported")
        .and_then(Value::as_array)
    {
        None if has_code_flow && map.contains_key("authorization_endpoint") => findings.push(
            Finding::new(&PKCE_NOT_ADVERTISED, "PKCE support is not advertised")
                .evidence("no code_challenge_methods_supported")
                .cause("the server may not support PKCE, or does not say so")
                .fix("advertise code_challenge_methods_supported: [\"S256\"] (RFC 8414 §2)"),
        ),
        Some(m) if !m.iter().any(|x| x == "S256") => findings.push(
            Finding::new(&PKCE_NO_S256, "PKCE S256 is not supported")
                .evidence(format!(
                    "code_challenge_methods_supported: {}",
                    Value::Array(m.clone())
                ))
                .cause("only `plain` is offered, which does not protect the code")
                .fix("support S256 (RFC 7636 §4.2 makes it mandatory to implement)"),
        ),
        _ => {}
    }
    for k in [
        "id_token_signing_alg_values_supported",
        "token_endpoint_auth_signing_alg_values_supported",
        "userinfo_signing_alg_values_supported",
    ] {
        if map
            .get(k)
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x == "none"))
            && k != "userinfo_signing_alg_values_supported"
        {
            findings.push(
                Finding::new(&ALG_NONE, format!("`{k}` includes none"))
                    .evidence(format!("{k}: {}", map.get(k).map(Value::to_string).unwrap_or_default()))
                    .cause("unsigned tokens are offered; a client that follows the metadata blindly may accept them")
                    .fix("do not offer `none` (RFC 8725 §3.1)"),
            );
        }
    }
}
