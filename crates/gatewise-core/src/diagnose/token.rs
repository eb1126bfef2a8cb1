//! Token endpoint responses (RFC 6749 §5.1, §5.2; OpenID Connect Core §3.1.3.3).
//!
//! The status decides which rules apply: 2xx is judged as a success (unless
//! its body is an error in disguise, TR-11), 3xx as a misrouted call (TR-01),
//! anything else as an error response (ER-*).

use super::body::{self, Json, check, token_kind};
use super::{Context, error, request};
use crate::capture::{Request, Response};
use crate::finding::{Check, Finding, Severity};
use crate::jose::jwt;
use crate::secret;
use serde_json::{Map, Value};

check!(
    STATUS_NOT_200,
    "TR-01",
    "token-status-not-200",
    Warn,
    "RFC 6749 §5.1",
    "A successful token response uses a 2xx status other than 200."
);
check!(
    REDIRECT,
    "TR-01",
    "token-redirect",
    Error,
    "RFC 6749 §5.1",
    "The token endpoint answered with a redirect (usually to a login page)."
);
check!(
    ACCESS_TOKEN_MISSING,
    "TR-04",
    "token-access-token-missing",
    Error,
    "RFC 6749 §5.1",
    "A 2xx token response has no access_token."
);
check!(
    ACCESS_TOKEN_INVALID,
    "TR-04",
    "token-access-token-not-string",
    Error,
    "RFC 6749 §5.1",
    "access_token is not a non-empty string."
);
check!(
    TYPE_MISSING,
    "TR-05",
    "token-type-missing",
    Error,
    "RFC 6749 §5.1",
    "token_type is missing."
);
check!(
    TYPE_NOT_STRING,
    "TR-05",
    "token-type-not-string",
    Error,
    "RFC 6749 §5.1",
    "token_type is not a string."
);
check!(
    TYPE_CASE,
    "TR-05",
    "token-type-case",
    Info,
    "RFC 6749 §5.1; RFC 6750 §1",
    "token_type differs from the registered value only in case (legal; the value is case-insensitive)."
);
check!(
    TYPE_UNKNOWN,
    "TR-05",
    "token-type-unknown",
    Warn,
    "RFC 6749 §7.1, §11.1",
    "token_type is not a registered type (Bearer, DPoP, N_A)."
);
check!(
    TYPE_DPOP,
    "TR-13",
    "token-type-dpop",
    Info,
    "RFC 9449 §5",
    "The token is DPoP-bound: it must be presented with the DPoP scheme and a proof."
);
check!(
    EXPIRES_MISSING,
    "TR-06",
    "token-expires-in-missing",
    Warn,
    "RFC 6749 §5.1",
    "expires_in is absent (RECOMMENDED), so clients cannot know the lifetime."
);
check!(
    EXPIRES_STRING,
    "TR-06",
    "token-expires-in-string",
    Error,
    "RFC 6749 §5.1, App. A.14",
    "expires_in is a JSON string instead of a number."
);
check!(
    EXPIRES_INVALID,
    "TR-06",
    "token-expires-in-invalid",
    Error,
    "RFC 6749 §5.1, App. A.14",
    "expires_in is not a non-negative integer."
);
check!(
    ISSUED_AT_MS,
    "TR-06",
    "token-issued-at-milliseconds",
    Info,
    "RFC 6749 §5.1",
    "issued_at is a millisecond timestamp (Salesforce): do not mistake it for seconds."
);
check!(
    SCOPE_ARRAY,
    "TR-07",
    "token-scope-array",
    Warn,
    "RFC 6749 §3.3, §5.1",
    "scope is a JSON array instead of a space-delimited string."
);
check!(
    SCOPE_COMMA,
    "TR-07",
    "token-scope-comma",
    Warn,
    "RFC 6749 §3.3",
    "scope is a comma-separated list instead of space-delimited."
);
check!(
    SCOPE_NOT_STRING,
    "TR-07",
    "token-scope-not-string",
    Warn,
    "RFC 6749 §3.3",
    "scope is neither a string nor an array."
);
check!(
    SCOPE_CHANGED,
    "TR-07",
    "token-scope-changed",
    Info,
    "RFC 6749 §3.3",
    "The granted scope differs from the requested scope (legal; some clients raise on it)."
);
check!(
    SCOPE_OMITTED,
    "TR-07",
    "token-scope-omitted",
    Info,
    "RFC 6749 §5.1",
    "scope is omitted; the client must assume it equals the requested scope."
);
check!(
    REFRESH_NOT_STRING,
    "TR-08",
    "token-refresh-token-not-string",
    Warn,
    "RFC 6749 §5.1",
    "refresh_token is present but not a string."
);
check!(
    NO_STORE,
    "TR-09",
    "token-cache-control-missing",
    Warn,
    "RFC 6749 §5.1",
    "A response carrying tokens lacks Cache-Control: no-store."
);
check!(
    EXTRA_MEMBERS,
    "TR-10",
    "token-extra-members",
    Info,
    "RFC 6749 §5.1",
    "The response carries members beyond RFC 6749 (legal: clients must ignore them)."
);
check!(
    ERROR_IN_2XX,
    "TR-11",
    "token-error-in-success",
    Error,
    "RFC 6749 §5.1, §5.2",
    "A 2xx response carries an OAuth error: the error is mis-signalled as success."
);
check!(
    ID_TOKEN_MISSING,
    "TR-12",
    "token-id-token-missing",
    Error,
    "OpenID Connect Core §3.1.3.3",
    "The request asked for scope openid but the response has no id_token."
);
check!(
    ID_TOKEN_MALFORMED,
    "TR-12",
    "token-id-token-malformed",
    Error,
    "OpenID Connect Core §2, §3.1.3.3",
    "id_token is present but is not a decodable JWT."
);
check!(
    WWW_AUTH_ON_SUCCESS,
    "BR-06",
    "token-www-authenticate-on-success",
    Warn,
    "RFC 9110 §11.6.1",
    "A successful token response carries WWW-Authenticate (a gateway artefact that strict clients reject)."
);
check!(
    ISSUER_CLOCK_AHEAD,
    "CK-02",
    "token-iat-ahead-of-date",
    Warn,
    "RFC 7519 §4.1.6; RFC 9110 §6.6.1",
    "A token in the response was issued after the response's Date: the issuer's clock is ahead."
);

/// Checks defined in this module.
pub const CHECKS: &[&Check] = &[
    &ISSUER_CLOCK_AHEAD,
    &STATUS_NOT_200,
    &REDIRECT,
    &ACCESS_TOKEN_MISSING,
    &ACCESS_TOKEN_INVALID,
    &TYPE_MISSING,
    &TYPE_NOT_STRING,
    &TYPE_CASE,
    &TYPE_UNKNOWN,
    &TYPE_DPOP,
    &EXPIRES_MISSING,
    &EXPIRES_STRING,
    &EXPIRES_INVALID,
    &ISSUED_AT_MS,
    &SCOPE_ARRAY,
    &SCOPE_COMMA,
    &SCOPE_NOT_STRING,
    &SCOPE_CHANGED,
    &SCOPE_OMITTED,
    &REFRESH_NOT_STRING,
    &NO_STORE,
    &EXTRA_MEMBERS,
    &ERROR_IN_2XX,
    &ID_TOKEN_MISSING,
    &ID_TOKEN_MALFORMED,
    &WWW_AUTH_ON_SUCCESS,
];

/// Members RFC 6749 §5.1 and its registered extensions define.
const KNOWN_MEMBERS: &[&str] = &[
    "access_token",
    "token_type",
    "expires_in",
    "refresh_token",
    "scope",
    "id_token",
    "issued_token_type",
    "authorization_details",
];

/// Judges a token endpoint response, with its request when captured.
pub fn judge(req: Option<&Request>, resp: &Response, ctx: &Context, findings: &mut Vec<Finding>) {
    // When the exchange happened: the server's Date, else the caller's clock.
    let at = resp.headers.get("date").and_then(http_date).or(ctx.now);
    if let Some(r) = req {
        request::token_request(r, at, findings);
    }
    super::provider::token(req, resp, findings);
    let sniffed = body::transport(req, resp, &super::body::BODY_BOM, findings);
    match resp.status {
        Some(300..=399) => {
            redirect(resp, &sniffed, findings);
            return;
        }
        Some(s) if !(200..300).contains(&s) => {
            error::judge(req, resp, &sniffed, findings);
            return;
        }
        _ => {}
    }
    if let Some(s) = resp.status.filter(|s| *s != 200) {
        findings.push(
            Finding::new(&STATUS_NOT_200, format!("the token response has status {s}, not 200"))
                .evidence(format!("HTTP {s} {}", resp.reason))
                .cause(if s == 204 { "the server (or a proxy) answers without a body; no token can be in it" } else { "the server uses another success status; clients that test for 200 treat it as a failure" })
                .fix("answer a successful token request with 200 (RFC 6749 §5.1)"),
        );
    }
    let Json::Object(map) = body::json_object(&token_kind::KIND, resp, &sniffed, &[], findings)
    else {
        if let crate::media::Shape::Form(pairs) = &sniffed.shape {
            super::provider::github_form_answer(req, findings);
            form_members(pairs, findings);
        }
        return;
    };
    if error_in_success(resp, map, findings) {
        return;
    }
    members(req, resp, map, ctx, findings);
}

fn redirect(resp: &Response, sniffed: &crate::media::Sniffed, findings: &mut Vec<Finding>) {
    let status = resp.status.unwrap_or(0);
    let location = resp
        .headers
        .get("location")
        .unwrap_or("(no Location header)");
    let lower = location.to_ascii_lowercase();
    let cause = if ["login", "signin", "sign_in", "sso", "auth"]
        .iter()
        .any(|k| lower.contains(k))
    {
        "an authentication proxy or SSO layer in front of the authorization server sent the client to a login page; token calls are machine calls and must not pass through it"
    } else if lower.starts_with("https://") && resp.headers.get("location").is_some() {
        "the endpoint moved or the client called http:// and was redirected to https://; a redirected POST loses its body or becomes a GET"
    } else {
        "the URL is not the token endpoint (a trailing slash, a wrong path or host), so a web application redirected it"
    };
    findings.push(
        Finding::new(&REDIRECT, format!("the token endpoint redirected ({status}) to {location}"))
            .evidence(format!("HTTP {status} {}; Location: {location}; body: {}", resp.reason, body::body_evidence(sniffed, &resp.body.decoded, 100)))
            .cause(cause)
            .fix("use the exact token_endpoint from the server's metadata (https, no redirect); exempt the token endpoint from SSO proxies"),
    );
}

/// TR-11: an OAuth error (or a provider envelope such as Slack's `ok:false`)
/// inside a 2xx response.
fn error_in_success(
    resp: &Response,
    map: &Map<String, Value>,
    findings: &mut Vec<Finding>,
) -> bool {
    let status = resp
        .status
        .map(|s| format!("HTTP {s}; "))
        .unwrap_or_default();
    let has_token = map
        .get("access_token")
        .is_some_and(|v| v.as_str().is_some_and(|s| !s.is_empty()));
    if let Some(err) = map.get("error").filter(|_| !has_token) {
        let code = err
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| err.to_string());
        findings.push(
            Finding::new(&ERROR_IN_2XX, format!("the response is an OAuth error (`{code}`) sent with a success status"))
                .evidence(format!("{status}body: {}", secret::json_evidence(&Value::Object(map.clone()), 200)))
                .cause("the server signals errors with HTTP 200 (GitHub does this for its OAuth errors); clients parse it as a token and fail on the missing access_token")
                .fix("send OAuth errors with status 400 (401 for invalid_client), per RFC 6749 §5.2; on the client side, check for an `error` member before reading the token"),
        );
        if let Some(code) = err.as_str() {
            error::classify(code, map, findings);
        }
        return true;
    }
    if map.get("ok") == Some(&Value::Bool(false)) && !has_token {
        findings.push(
            Finding::new(&ERROR_IN_2XX, "the response is a provider error envelope (`ok: false`) with a success status")
                .evidence(format!("{status}body: {}", secret::json_evidence(&Value::Object(map.clone()), 200)))
                .cause("the provider (Slack's oauth.v2.access does this) wraps results in its own envelope instead of RFC 6749 responses")
                .fix("use the provider's own SDK or a compliance hook that maps `ok:false` to an OAuth error; the user token may be nested (authed_user.access_token)"),
        );
        return true;
    }
    false
}

fn form_members(pairs: &[(String, String)], findings: &mut Vec<Finding>) {
    if !pairs.iter().any(|(k, _)| k == "access_token") {
        let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        findings.push(
            Finding::new(
                &ACCESS_TOKEN_MISSING,
                "the form-encoded response has no access_token either",
            )
            .evidence(format!("members: {}", names.join(", ")))
            .cause(if names.contains(&"error") {
                "it is an error in form encoding, sent with a success status"
            } else {
                "the response is not a token response"
            })
            .fix("send errors as JSON with status 400, and tokens as JSON with status 200"),
        );
    }
}

/// CK-02: `iat` of the JWTs in the response against the response's `Date`.
/// Both come from the server side, so a gap beyond a minute means the token
/// signer's clock differs from the web tier's, and clients with little leeway
/// refuse the token as issued in the future.
fn issuer_clock(resp: &Response, map: &Map<String, Value>, findings: &mut Vec<Finding>) {
    let Some(date) = resp.headers.get("date").and_then(http_date) else {
        return;
    };
    let Ok(date) = i64::try_from(date) else {
        return;
    };
    for member in ["access_token", "id_token"] {
        let Some(t) = map.get(member).and_then(Value::as_str) else {
            continue;
        };
        let Ok(j) = jwt::decode(t) else { continue };
        let Some(iat) = j.claims.get("iat").and_then(Value::as_f64) else {
            continue;
        };
        let ahead = iat as i64 - date;
        if ahead > 60 {
            findings.push(
                Finding::new(&ISSUER_CLOCK_AHEAD, format!("{member} was issued {ahead} s after the response's Date: the issuer's clock is ahead"))
                    .evidence(format!("{member} iat {} ({}); Date: {}", iat as i64, jwt::iso(iat as i64), resp.headers.get("date").unwrap_or_default()))
                    .cause("the token signer's clock runs ahead of the web server's; clients that check iat or nbf with a small leeway refuse the token (PyJWT's default leeway is 0 s, openid-client v6 allows 30 s, Nimbus 60 s, Microsoft.IdentityModel 300 s)")
                    .fix("synchronise the authorization server's clocks (NTP); clients can allow a leeway of a minute or two"),
            );
        }
    }
}

fn members(
    req: Option<&Request>,
    resp: &Response,
    map: &Map<String, Value>,
    ctx: &Context,
    findings: &mut Vec<Finding>,
) {
    issuer_clock(resp, map, findings);
    // TR-04: access_token.
    match map.get("access_token") {
        None => findings.push(
            Finding::new(&ACCESS_TOKEN_MISSING, "the success response has no access_token")
                .evidence(format!("members present: {}", names(map)))
                .cause(if map.contains_key("message") || map.contains_key("errors") { "the body is an API error in the provider's own format, sent with a success status" } else { "the response is not a token response (wrong URL), or the token is nested in a provider envelope" })
                .fix("the token endpoint must return access_token at the top level (RFC 6749 §5.1); check the URL against the metadata's token_endpoint"),
        ),
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        Some(v) => findings.push(
            Finding::new(&ACCESS_TOKEN_INVALID, format!("access_token is {}", json_kind(v)))
                .evidence(format!("access_token: {}", secret::mask_text(&v.to_string())))
                .cause("the server serializes a token object or an empty value")
                .fix("return access_token as a non-empty string"),
        ),
    }
    // TR-05: token_type.
    match map.get("token_type") {
        None => findings.push(
            Finding::new(&TYPE_MISSING, "token_type is missing")
                .evidence(format!("members present: {}", names(map)))
                .cause("the provider omits token_type (VK, Foursquare, LinkedIn, Twitch kraken and Slack did); Spring Security, openid-client and the Rust oauth2 crate reject the response")
                .fix("return \"token_type\": \"Bearer\"; on the client, a lenient token type (e.g. a custom TokenResponse in oauth2-rs) works around it"),
        ),
        Some(Value::String(t)) => token_type(t, findings),
        Some(v) => findings.push(
            Finding::new(&TYPE_NOT_STRING, format!("token_type is {}", json_kind(v)))
                .evidence(format!("token_type: {v}"))
                .cause("the server serializes token_type with the wrong type")
                .fix("return \"token_type\": \"Bearer\""),
        ),
    }
    // TR-06: expires_in.
    expires_in(map, findings);
    // TR-07: scope.
    let requested = req
        .and_then(|r| r.form_value("scope"))
        .or_else(|| ctx.request_scope.clone());
    scope(map, requested.as_deref(), findings);
    // TR-08.
    if let Some(v) = map
        .get("refresh_token")
        .filter(|v| !v.is_string() && !v.is_null())
    {
        findings.push(
            Finding::new(
                &REFRESH_NOT_STRING,
                format!("refresh_token is {}", json_kind(v)),
            )
            .evidence("refresh_token is not a string")
            .cause("the server serializes the refresh token with the wrong type")
            .fix("return refresh_token as a string, or omit it"),
        );
    }
    // TR-12: id_token.
    id_token(map, requested.as_deref(), findings);
    // TR-09: caching headers on a response that carries tokens.
    if resp.has_head() && map.contains_key("access_token") {
        let cc = resp
            .headers
            .get_all("cache-control")
            .collect::<Vec<_>>()
            .join(", ");
        if !cc.to_ascii_lowercase().contains("no-store") {
            findings.push(
                Finding::new(&NO_STORE, "the token response may be cached: Cache-Control: no-store is missing")
                    .evidence(if cc.is_empty() { "no Cache-Control header".to_string() } else { format!("Cache-Control: {cc}") })
                    .cause("the server or a caching proxy does not mark credential responses as uncacheable")
                    .fix("send Cache-Control: no-store (and Pragma: no-cache for HTTP/1.0 caches) with every response that carries tokens"),
            );
        }
    }
    // BR-06: WWW-Authenticate on success.
    if let Some(w) = resp.headers.get("www-authenticate") {
        findings.push(
            Finding::new(&WWW_AUTH_ON_SUCCESS, "the successful token response carries a WWW-Authenticate challenge")
                .evidence(format!("HTTP {}; WWW-Authenticate: {w}", resp.status.unwrap_or(200)))
                .cause("a gateway in front of the authorization server (Kong adds `Key realm=\"kong\"`) adds its challenge to every response; openid-client v6 / oauth4webapi then raise WWWAuthenticateError")
                .fix("configure the gateway not to add WWW-Authenticate to successful responses (RFC 9110 §11.6.1 allows it only as a challenge)"),
        );
    }
    // Salesforce's issued_at in milliseconds.
    if let Some(ia) = map.get("issued_at") {
        let digits = match ia {
            Value::String(s) => s.len(),
            Value::Number(n) => n.to_string().len(),
            _ => 0,
        };
        if digits >= 13 {
            findings.push(
                Finding::new(&ISSUED_AT_MS, "issued_at is in milliseconds")
                    .evidence(format!("issued_at: {ia}"))
                    .cause("Salesforce reports issued_at in milliseconds since the epoch, as a string")
                    .fix("divide by 1000 before comparing with seconds; the session lifetime is org policy, not in the response"),
            );
        }
    }
    // TR-10: unknown members.
    let extra: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|k| !KNOWN_MEMBERS.contains(k) && *k != "issued_at")
        .collect();
    if !extra.is_empty() {
        findings.push(
            Finding::new(&EXTRA_MEMBERS, format!("{} extra member(s) beyond RFC 6749", extra.len()))
                .evidence(format!("extra: {}", extra.join(", ")))
                .cause("provider extensions (ext_expires_in, refresh_expires_in, not-before-policy, instance_url, ...)")
                .fix("nothing to fix: clients must ignore members they do not know (RFC 6749 §5.1)"),
        );
    }
}

fn token_type(t: &str, findings: &mut Vec<Finding>) {
    const REGISTERED: &[&str] = &["Bearer", "DPoP", "N_A", "MAC"];
    if let Some(canon) = REGISTERED.iter().find(|r| r.eq_ignore_ascii_case(t)) {
        if *canon != t {
            findings.push(
                Finding::new(&TYPE_CASE, format!("token_type is \"{t}\" rather than \"{canon}\""))
                    .evidence(format!("token_type: \"{t}\""))
                    .cause("legal: the value is case-insensitive (older Keycloak, GitHub and Dropbox send lower case)")
                    .fix(format!("nothing required; but a client that copies it into `Authorization: {t} …` meets resource servers that compare the scheme case-sensitively (Spring Web, Gravitee): always send `{canon}`")),
            );
        }
        if *canon == "DPoP" {
            findings.push(
                Finding::new(&TYPE_DPOP, "the access token is DPoP-bound")
                    .evidence("token_type: DPoP")
                    .cause("the client asked for (or the server enforces) sender-constrained tokens")
                    .fix("present the token as `Authorization: DPoP <token>` with a `DPoP` proof header on every call (RFC 9449 §7.1)"),
            );
        }
    } else {
        findings.push(
            Finding::new(&TYPE_UNKNOWN, format!("token_type \"{t}\" is not a registered type"))
                .evidence(format!("token_type: \"{t}\""))
                .cause("a provider-specific token type; clients that check it (Dart oauth2, openid-client) reject unknown values")
                .fix("use \"Bearer\" for bearer tokens (RFC 6750)"),
        );
    }
}

fn expires_in(map: &Map<String, Value>, findings: &mut Vec<Finding>) {
    match map.get("expires_in") {
        None => findings.push(
            Finding::new(&EXPIRES_MISSING, "expires_in is missing")
                .evidence(format!("members present: {}", names(map)))
                .cause(if map.contains_key("issued_at") { "Salesforce omits expires_in: the session lifetime is an org policy" } else { "the server does not say how long the token lives" })
                .fix("return expires_in (seconds) so clients refresh before expiry; clients must otherwise expect a 401 and refresh then"),
        ),
        Some(Value::Number(n)) => {
            if n.as_u64().is_none() {
                findings.push(
                    Finding::new(&EXPIRES_INVALID, format!("expires_in is {n}, not a non-negative integer"))
                        .evidence(format!("expires_in: {n}"))
                        .cause("the server computes the lifetime as a float or a negative value")
                        .fix("return whole seconds as a JSON integer (RFC 6749 App. A.14: 1*DIGIT)"),
                );
            }
        }
        Some(Value::String(s)) => {
            let numeric = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            findings.push(
                Finding::new(&EXPIRES_STRING, format!("expires_in is the string \"{s}\", not a number"))
                    .evidence(format!("expires_in: \"{s}\""))
                    .cause(if numeric {
                        "the server serializes numbers as strings (Azure AD v1 /oauth2/token, older Spring Authorization Server, PayPal); the Rust oauth2 and openidconnect crates and Dart oauth2 reject it, Python clients and x/oauth2 accept it"
                    } else {
                        "the server writes a non-numeric lifetime"
                    })
                    .fix("serialize expires_in as a JSON number; for Azure AD use the v2.0 endpoint"),
            );
        }
        Some(v) => findings.push(
            Finding::new(&EXPIRES_INVALID, format!("expires_in is {}", json_kind(v)))
                .evidence(format!("expires_in: {v}"))
                .cause("the server serializes expires_in with the wrong type")
                .fix("return expires_in as a JSON integer"),
        ),
    }
}

fn scope(map: &Map<String, Value>, requested: Option<&str>, findings: &mut Vec<Finding>) {
    match map.get("scope") {
        None => {
            if let Some(r) = requested {
                findings.push(
                    Finding::new(&SCOPE_OMITTED, "scope is omitted; it means the requested scope was granted")
                        .evidence(format!("requested: \"{r}\""))
                        .cause("the server omits scope when it grants exactly what was asked (RFC 6749 §5.1)")
                        .fix("nothing required"),
                );
            }
        }
        Some(Value::String(s)) => {
            if s.contains(',') && !s.contains(' ') {
                findings.push(
                    Finding::new(&SCOPE_COMMA, "scope is a comma-separated list")
                        .evidence(format!("scope: \"{s}\""))
                        .cause("GitHub returns comma-separated scopes; RFC 6749 §3.3 uses spaces, so strict clients see one scope named \"a,b\"")
                        .fix("separate scopes with spaces; on the client, split on commas for this provider"),
                );
            } else if let Some(r) = requested {
                let want: std::collections::BTreeSet<&str> = r.split_whitespace().collect();
                let got: std::collections::BTreeSet<&str> = s.split_whitespace().collect();
                if want != got {
                    let added: Vec<&str> = got.difference(&want).copied().collect();
                    let dropped: Vec<&str> = want.difference(&got).copied().collect();
                    findings.push(
                        Finding::new(&SCOPE_CHANGED, "the granted scope differs from the requested scope")
                            .evidence(format!("requested: \"{r}\"; granted: \"{s}\"; added: [{}]; dropped: [{}]", added.join(" "), dropped.join(" ")))
                            .cause("the server may grant a different scope (Google adds openid, Microsoft drops offline_access); oauthlib raises \"Scope has changed\" unless OAUTHLIB_RELAX_TOKEN_SCOPE is set")
                            .fix("accept the granted scope on the client; request only scopes the client is allowed"),
                    );
                }
            }
        }
        Some(Value::Array(items)) => findings.push(
            Finding::new(&SCOPE_ARRAY, "scope is a JSON array, not a space-delimited string")
                .evidence(format!("scope: {}", Value::Array(items.clone())))
                .cause("the provider returns scopes as an array (Twitch does); Dart oauth2 and other strict clients reject it")
                .fix("join the scopes with spaces into one string (RFC 6749 §3.3)"),
        ),
        Some(v) => findings.push(
            Finding::new(&SCOPE_NOT_STRING, format!("scope is {}", json_kind(v)))
                .evidence(format!("scope: {v}"))
                .cause("the server serializes scope with the wrong type")
                .fix("return scope as a space-delimited string"),
        ),
    }
}

fn id_token(map: &Map<String, Value>, requested: Option<&str>, findings: &mut Vec<Finding>) {
    let wants_openid = requested.is_some_and(|s| s.split_whitespace().any(|x| x == "openid"));
    match map.get("id_token") {
        None if wants_openid => findings.push(
            Finding::new(&ID_TOKEN_MISSING, "scope openid was requested but there is no id_token")
                .evidence(format!("requested scope: \"{}\"; members: {}", requested.unwrap_or(""), names(map)))
                .cause("the server is plain OAuth 2.0 (not OpenID Connect) for this client, or the client is not allowed the openid scope, or a refresh grant is being judged by authorization-code rules")
                .fix("enable OpenID Connect for the client; OpenID Connect Core §3.1.3.3 requires id_token in this response"),
        ),
        Some(Value::String(t))
            if jwt::decode(t).is_err() => {
                findings.push(
                    Finding::new(&ID_TOKEN_MALFORMED, "id_token is not a decodable JWT")
                        .evidence(format!("id_token: {}", secret::mask(t)))
                        .cause("the server returns an opaque or encrypted value, or it was mangled on the way")
                        .fix(format!("inspect it with `gatewise doctor jwt`; ID tokens are signed JWTs (OpenID Connect Core §2){}", if t.split('.').count() == 5 { "; five segments means JWE, which needs the client's decryption key" } else { "" })),
                );
            }
        Some(v) if !v.is_null() && !v.is_string() => findings.push(
            Finding::new(&ID_TOKEN_MALFORMED, format!("id_token is {}", json_kind(v)))
                .evidence("id_token is not a string")
                .cause("the server serializes the ID token with the wrong type")
                .fix("return id_token as a compact JWS string"),
        ),
        _ => {}
    }
}

/// The member names of an object, comma-separated.
pub(crate) fn names(map: &Map<String, Value>) -> String {
    if map.is_empty() {
        return "(none)".to_string();
    }
    map.keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// "a string", "a number", ... for messages.
pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(s) if s.trim().is_empty() => "an empty string",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses an HTTP-date (RFC 9110 §5.6.7) into Unix seconds.
pub fn http_date(s: &str) -> Option<u64> {
    let t = httpdate::parse_http_date(s.trim()).ok()?;
    t.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}
