//! What the live doctor learns from its own runs rather than from one
//! response: the grant it was asked to use (the password grant, RFC 9700
//! §2.4), what a refresh did to the refresh token (rotation, RFC 9700
//! §4.14.2), a `kid` that only a second fetch of the JWK Set knows (key
//! rotation, OpenID Connect Core §10.1.1), outcomes that differ when the same
//! exchange is repeated, a response an intermediary changed (`--via`), and
//! the client authentication method used against the one the server's
//! metadata lists (CA-03, RFC 8414 §2).
//!
//! Pure like the rest of the core: `gatewise-probe` makes the exchanges and
//! hands the values in; this module compares them and words the findings.

use super::body::check;
use crate::finding::{Check, Finding, Severity};
use crate::media::{self, Shape};
use crate::secret;
use serde_json::{Map, Value};

check!(
    PASSWORD_GRANT,
    "GR-01",
    "grant-password-removed",
    Warn,
    "RFC 9700 §2.4",
    "The resource owner password credentials grant was used: RFC 9700 says it MUST NOT be, and OAuth 2.1 removes it."
);
check!(
    REFRESH_ROTATED,
    "RT-01",
    "refresh-token-rotated",
    Info,
    "RFC 6749 §6; RFC 9700 §4.14.2",
    "The refresh returned a new refresh token: the client must store it and discard the old one."
);
check!(
    REFRESH_NOT_ROTATED,
    "RT-02",
    "refresh-token-not-rotated",
    Info,
    "RFC 6749 §6; RFC 9700 §4.14.2",
    "A confidential client's refresh returned the same refresh token, or none: the old one stays in use."
);
check!(
    REFRESH_NOT_ROTATED_PUBLIC,
    "RT-03",
    "refresh-token-not-rotated-public-client",
    Warn,
    "RFC 9700 §4.14.2",
    "A public client's refresh token was not rotated (and nothing shows it is sender-constrained)."
);
check!(
    KID_FOUND_AFTER_REFETCH,
    "JK-03",
    "jwks-kid-found-after-refetch",
    Warn,
    "RFC 7517 §4.5; OpenID Connect Core §10.1.1",
    "The token's kid was missing from the first JWK Set and present after one refetch: the keys were rotated and the first copy is stale."
);
check!(
    KID_NEVER_PUBLISHED,
    "JK-03",
    "jwks-kid-never-published",
    Error,
    "RFC 7517 §4.5; OpenID Connect Core §10.1.1",
    "The token's kid is missing from the JWK Set even after one refetch: the key was never published there (another issuer or environment) or was withdrawn."
);
check!(
    REPEAT_DIFFERS,
    "LV-01",
    "repeat-outcomes-differ",
    Warn,
    "RFC 6749 §5.1, §5.2",
    "The same exchange, repeated, gave different outcomes (one bad instance behind a load balancer, a flaky intermediary)."
);
check!(
    REPEAT_SAME,
    "LV-01",
    "repeat-outcomes-same",
    Info,
    "RFC 6749 §5.1, §5.2",
    "Every repetition of the exchange gave the same outcome."
);

check!(
    VIA_RESPONSE_DIFFERS,
    "LV-02",
    "via-response-differs",
    Error,
    "RFC 9110 §7.6, §15",
    "Sent through the intermediary (`--via`), the same request got a different status or body than sent directly."
);
check!(
    VIA_HEADERS_DIFFER,
    "LV-03",
    "via-headers-differ",
    Warn,
    "RFC 9110 §7.6; RFC 6749 §5.1",
    "Through the intermediary, headers a client relies on (Content-Type, Content-Encoding, Cache-Control, Pragma, WWW-Authenticate) changed."
);
check!(
    VIA_SAME,
    "LV-02",
    "via-response-same",
    Info,
    "RFC 9110 §7.6",
    "Directly and through the intermediary, the responses agree (status, body shape, the headers clients rely on)."
);

check!(
    AUTH_METHOD_NOT_ADVERTISED,
    "CA-03",
    "client-auth-method-not-advertised",
    Warn,
    "RFC 8414 §2",
    "The client authenticates with a method the server's token_endpoint_auth_methods_supported does not list (absent: only client_secret_basic)."
);
check!(
    AUTH_METHOD_OTHERS_ADVERTISED,
    "CA-03",
    "client-auth-method-others-advertised",
    Info,
    "RFC 8414 §2; RFC 7591 §2",
    "The token endpoint answered invalid_client and its metadata lists other authentication methods: the client may be registered for another one."
);

/// Checks defined in this module.
pub const CHECKS: &[&Check] = &[
    &VIA_RESPONSE_DIFFERS,
    &VIA_HEADERS_DIFFER,
    &VIA_SAME,
    &PASSWORD_GRANT,
    &REFRESH_ROTATED,
    &REFRESH_NOT_ROTATED,
    &REFRESH_NOT_ROTATED_PUBLIC,
    &KID_FOUND_AFTER_REFETCH,
    &KID_NEVER_PUBLISHED,
    &REPEAT_DIFFERS,
    &REPEAT_SAME,
    &AUTH_METHOD_NOT_ADVERTISED,
    &AUTH_METHOD_OTHERS_ADVERTISED,
];

/// GR-01: the doctor was asked to run the password grant (RFC 9700 §2.4).
pub fn password_grant(username: &str) -> Finding {
    Finding::new(
        &PASSWORD_GRANT,
        "the password grant is removed in OAuth 2.1 and forbidden by RFC 9700",
    )
    .evidence(format!("grant_type=password for user {username:?}"))
    .cause("the client collects the user's password itself: it trains users to type passwords into applications, cannot do multi-factor or federated sign-in, and many servers (Entra for federated users, Okta by policy, OAuth 2.1 servers) refuse it")
    .fix("use the authorization code grant with PKCE (RFC 7636) for users, client_credentials for services, or the device authorization grant (RFC 8628) for devices without a browser")
}

/// RT-01..RT-03: what the refresh did to the refresh token. `sent` is the
/// refresh token the request carried, `issued` the one in the response (if
/// any); `public_client` when the client authenticated with `none`.
pub fn refresh_rotation(sent: &str, issued: Option<&str>, public_client: bool) -> Finding {
    match issued {
        Some(new) if new != sent => Finding::new(&REFRESH_ROTATED, "the refresh token was rotated: a new one was issued")
            .evidence(format!("sent {}; received {}", secret::mask(sent), secret::mask(new)))
            .cause("the server rotates refresh tokens (RFC 9700 §4.14.2): the old one is now invalid, and presenting it again may revoke the whole grant (reuse detection)")
            .fix("make the client store the new refresh token atomically before using it; two processes sharing one refresh token will lock each other out"),
        _ => {
            let what = match issued {
                Some(_) => "the refresh returned the same refresh token",
                None => "the refresh returned no refresh token",
            };
            let ev = match issued {
                Some(_) => format!("sent {}; received the same value", secret::mask(sent)),
                None => format!("sent {}; the response has no refresh_token member", secret::mask(sent)),
            };
            if public_client {
                Finding::new(&REFRESH_NOT_ROTATED_PUBLIC, format!("{what}: a public client's refresh token is not rotated"))
                    .evidence(ev)
                    .cause("a stolen refresh token of a public client stays usable until it expires, since no client secret protects it")
                    .fix("enable refresh token rotation for public clients, or bind refresh tokens to the client (DPoP, RFC 9449), as RFC 9700 §4.14.2 requires")
            } else {
                Finding::new(&REFRESH_NOT_ROTATED, format!("{what}: the refresh token is not rotated"))
                    .evidence(ev)
                    .cause("the server keeps refresh tokens for confidential clients (RFC 6749 §6 lets it issue a new one or not)")
                    .fix("none needed: keep using the current refresh token")
            }
        }
    }
}

/// True when the JWK Set `jwks` (a parsed document) has a key with this `kid`.
pub fn kid_in_jwks(jwks: &Value, kid: &str) -> bool {
    jwks.get("keys")
        .and_then(Value::as_array)
        .is_some_and(|keys| {
            keys.iter()
                .any(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
        })
}

/// JK-03: the token's `kid` was not in the JWK Set from `first` (a file or
/// URL); the set was fetched once more from `second`, and the kid was
/// `found` there or not.
pub fn kid_refetched(kid: &str, first: &str, second: &str, found: bool) -> Finding {
    let ev = format!(
        "kid \"{kid}\": not in the JWK Set from {first}; {} in the one fetched again from {second}",
        if found { "present" } else { "also absent" }
    );
    if found {
        Finding::new(&KID_FOUND_AFTER_REFETCH, format!("kid \"{kid}\" appeared after refetching the JWK Set: the keys were rotated"))
            .evidence(ev)
            .cause("the issuer rotated its signing keys and the first JWK Set was an older copy: a verifier's cache, a file saved earlier, or a CDN or instance serving a stale document")
            .fix("make the verifier refetch the JWK Set once when it meets an unknown kid (OpenID Connect Core §10.1.1), and cache it no longer than its Cache-Control allows")
    } else {
        Finding::new(&KID_NEVER_PUBLISHED, format!("kid \"{kid}\" is not in the JWK Set, even after refetching it: not a rotation"))
            .evidence(ev)
            .cause("the token was signed by a key this JWK Set never published: another issuer, tenant or environment (staging vs production), a key regenerated at restart, or a key withdrawn before its tokens expired")
            .fix("compare the token's iss with the issuer whose jwks_uri was fetched; if they agree, ask the issuer to keep publishing a key until every token it signed has expired")
    }
}

/// How one run of a repeated exchange ended, for grouping (`--repeat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// One line: status, what the body is, the verdict and its error codes.
    pub label: String,
}

impl Outcome {
    /// A run that got a response: its status, body (as the core sniffs it),
    /// and the codes of its error-level findings.
    pub fn response(status: u16, body: &[u8], errors: &[&str]) -> Outcome {
        let shape = media::sniff(body).shape;
        let what = match &shape {
            Shape::Json(Value::Object(m)) if m.contains_key("error") => format!(
                "a JSON error ({})",
                m.get("error")
                    .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_string))
                    .unwrap_or_default()
            ),
            Shape::Json(Value::Object(m)) if m.contains_key("access_token") => {
                "a JSON token response".to_string()
            }
            other => other.describe(),
        };
        Outcome {
            label: format!("HTTP {status} with {what}{}", verdict_part(errors)),
        }
    }

    /// A run that got no response (the failure's finding code).
    pub fn failure(code: &str) -> Outcome {
        Outcome {
            label: format!("no response ({code})"),
        }
    }
}

fn verdict_part(errors: &[&str]) -> String {
    let mut uniq: Vec<&str> = Vec::new();
    for e in errors {
        if !uniq.contains(e) {
            uniq.push(e);
        }
    }
    if uniq.is_empty() {
        String::new()
    } else {
        format!(": {}", uniq.join(", "))
    }
}

/// Distinct outcomes in order of first appearance, with how many runs had each.
pub fn group(outcomes: &[Outcome]) -> Vec<(Outcome, usize)> {
    let mut groups: Vec<(Outcome, usize)> = Vec::new();
    for o in outcomes {
        match groups.iter_mut().find(|(g, _)| g == o) {
            Some((_, n)) => *n += 1,
            None => groups.push((o.clone(), 1)),
        }
    }
    groups
}

/// `"3 of 4: …; 1 of 4: …"` for grouped outcomes.
pub fn summary(groups: &[(Outcome, usize)]) -> String {
    let total: usize = groups.iter().map(|(_, n)| n).sum();
    groups
        .iter()
        .map(|(o, n)| format!("{n} of {total}: {}", o.label))
        .collect::<Vec<_>>()
        .join("; ")
}

/// LV-01: the outcomes of `what` (e.g. `token request`) repeated.
pub fn repeat_outcomes(what: &str, outcomes: &[Outcome]) -> Finding {
    let groups = group(outcomes);
    let total = outcomes.len();
    let ev = summary(&groups);
    if groups.len() > 1 {
        let worst = groups
            .iter()
            .min_by_key(|(_, n)| *n)
            .map(|(o, n)| format!("{n} of {total}: {}", o.label))
            .unwrap_or_default();
        Finding::new(
            &REPEAT_DIFFERS,
            format!(
                "the {what}, sent {total} times, gave {} different outcomes (least common: {worst})",
                groups.len()
            ),
        )
        .evidence(ev)
        .cause("one of several instances behind a load balancer answers differently (an old version, a bad configuration, an overloaded node), or an intermediary fails now and then; a client sees it as an intermittent 'invalid response'")
        .fix("look at the transcripts of the odd runs (their Server, Via and request-id headers often name the instance), then fix or drain that instance")
    } else {
        Finding::new(
            &REPEAT_SAME,
            format!("the {what}, sent {total} times, gave the same outcome every time"),
        )
        .evidence(ev)
        .cause("the endpoint behaves consistently")
        .fix("none needed")
    }
}

/// A response as a client sees it: status, headers, decoded body.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    /// The status code.
    pub status: u16,
    /// The headers, in order.
    pub headers: &'a [(String, String)],
    /// The body, decoded (chunked, gzip).
    pub body: &'a [u8],
}

/// One side of a `--via` comparison: where the request went and what came
/// back, or the failure's finding code when nothing did.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    /// The URL the request was sent to.
    pub url: &'a str,
    /// The response, or the code of the transport finding.
    pub response: Result<Answer<'a>, &'a str>,
}

/// Headers a client's behaviour depends on: a change here breaks clients.
const RELIED_ON: &[&str] = &[
    "content-type",
    "content-encoding",
    "cache-control",
    "pragma",
    "www-authenticate",
    "location",
];

/// Headers that differ between any two responses (time, framing, ids).
const EPHEMERAL: &[&str] = &[
    "date",
    "content-length",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "age",
    "expires",
    "etag",
    "last-modified",
    "set-cookie",
    "x-request-id",
    "request-id",
    "x-correlation-id",
    "traceparent",
    "tracestate",
];

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Vec<&'h str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// What differs between two bodies, as a client would notice: the shape
/// (JSON vs HTML, …), then for JSON objects the members, their types, and
/// the values of non-secret string members (`token_type`, `error`, `scope`).
fn body_differences(direct: &[u8], via: &[u8]) -> Vec<String> {
    let (a, b) = (media::sniff(direct).shape, media::sniff(via).shape);
    match (&a, &b) {
        (Shape::Json(Value::Object(x)), Shape::Json(Value::Object(y))) => {
            let mut out = Vec::new();
            for (k, v) in x {
                match y.get(k) {
                    None => out.push(format!("member {k} is missing")),
                    Some(w) if json_type(v) != json_type(w) => out.push(format!(
                        "{k} is a {} instead of a {}",
                        json_type(w),
                        json_type(v)
                    )),
                    Some(Value::String(w)) if !secret::is_secret_member(k) => {
                        if let Value::String(v) = v
                            && v != w
                        {
                            out.push(format!("{k} is {w:?} instead of {v:?}"));
                        }
                    }
                    _ => {}
                }
            }
            for k in y.keys().filter(|k| !x.contains_key(*k)) {
                out.push(format!("member {k} was added"));
            }
            out
        }
        _ if a.describe() != b.describe() => {
            vec![format!(
                "the body is {} instead of {}",
                b.describe(),
                a.describe()
            )]
        }
        (Shape::Json(x), Shape::Json(y)) if x != y => vec!["the JSON body differs".into()],
        _ => Vec::new(),
    }
}

/// LV-02/LV-03: the same request sent directly and through an intermediary
/// (`--via`), compared as a client would see it. Token values, dates and
/// request ids naturally differ between two requests and are not compared.
pub fn via_diff(direct: Seen<'_>, via: Seen<'_>) -> Vec<Finding> {
    let ev_urls = format!("direct: {}; via: {}", direct.url, via.url);
    let (d, v) = match (direct.response, via.response) {
        (Ok(d), Ok(v)) => (d, v),
        (d, v) => {
            let say = |r: Result<Answer<'_>, &str>| match r {
                Ok(a) => format!("HTTP {}", a.status),
                Err(code) => format!("no response ({code})"),
            };
            if d.is_err() && v.is_err() {
                return Vec::new();
            }
            return vec![
                Finding::new(&VIA_RESPONSE_DIFFERS, format!("directly: {}; through the intermediary: {}", say(d), say(v)))
                    .evidence(ev_urls)
                    .cause("only one of the two paths reaches the server: the intermediary (or the direct route) is down, refuses the connection, or blocks the client")
                    .fix("see the transport finding of the path that failed"),
            ];
        }
    };
    let mut out = Vec::new();
    let mut differences = Vec::new();
    if d.status != v.status {
        differences.push(format!("status {} instead of {}", v.status, d.status));
    }
    differences.extend(body_differences(d.body, v.body));
    let desc = |b: &[u8]| media::sniff(b).shape.describe();
    if !differences.is_empty() {
        let html = matches!(media::sniff(v.body).shape, Shape::Html { .. })
            && !matches!(media::sniff(d.body).shape, Shape::Html { .. });
        let title = if html {
            format!(
                "the intermediary replaced the response: HTTP {} with {} instead of HTTP {} with {}",
                v.status,
                desc(v.body),
                d.status,
                desc(d.body)
            )
        } else {
            format!("through the intermediary: {}", differences.join("; "))
        };
        out.push(
            Finding::new(&VIA_RESPONSE_DIFFERS, title)
                .evidence(format!("{ev_urls}\nthrough the intermediary: {}", differences.join("; ")))
                .cause("the proxy or gateway answers itself (an error page, an authentication wall, a WAF block) or rewrites the response (body transformation, a plugin, a response template) instead of passing the server's response through")
                .fix("look at the intermediary's route for the token endpoint: let it pass the authorization server's responses through unchanged, or make its own errors JSON (RFC 6749 §5.2)"),
        );
    }
    let mut changed = Vec::new();
    for name in RELIED_ON {
        let (x, y) = (header(d.headers, name), header(v.headers, name));
        if x != y {
            let show = |h: &[&str]| {
                if h.is_empty() {
                    "(absent)".to_string()
                } else {
                    h.join(", ")
                }
            };
            changed.push(format!("{name}: {} → {}", show(&x), show(&y)));
        }
    }
    let names = |h: &[(String, String)]| -> Vec<String> {
        let mut n: Vec<String> = h
            .iter()
            .map(|(k, _)| k.to_ascii_lowercase())
            .filter(|k| !EPHEMERAL.contains(&k.as_str()) && !RELIED_ON.contains(&k.as_str()))
            .collect();
        n.sort();
        n.dedup();
        n
    };
    let (dn, vn) = (names(d.headers), names(v.headers));
    let added: Vec<&str> = vn
        .iter()
        .filter(|k| !dn.contains(k))
        .map(String::as_str)
        .collect();
    let removed: Vec<&str> = dn
        .iter()
        .filter(|k| !vn.contains(k))
        .map(String::as_str)
        .collect();
    let mut others = Vec::new();
    if !added.is_empty() {
        others.push(format!("added: {}", added.join(", ")));
    }
    if !removed.is_empty() {
        others.push(format!("removed: {}", removed.join(", ")));
    }
    if !changed.is_empty() {
        let mut ev = format!("{ev_urls}\n{}", changed.join("\n"));
        if !others.is_empty() {
            ev.push_str(&format!("\nother headers {}", others.join("; ")));
        }
        out.push(
            Finding::new(&VIA_HEADERS_DIFFER, format!("the intermediary changed {}", changed.iter().map(|c| c.split(':').next().unwrap_or("")).collect::<Vec<_>>().join(", ")))
                .evidence(ev)
                .cause("the proxy or gateway rewrites headers: a wrong Content-Type makes strict clients refuse the JSON, a dropped Cache-Control: no-store lets caches keep tokens, an added WWW-Authenticate on a 200 breaks oauth4webapi")
                .fix("configure the intermediary to pass these headers through unchanged on the token endpoint's route"),
        );
    }
    if out.is_empty() {
        let mut ev = format!("{ev_urls}\nboth: HTTP {} with {}", d.status, desc(d.body));
        if !others.is_empty() {
            ev.push_str(&format!("\nother headers {}", others.join("; ")));
        }
        out.push(
            Finding::new(&VIA_SAME, "directly and through the intermediary, the responses agree")
                .evidence(ev)
                .cause("the intermediary passes the token endpoint's responses through")
                .fix("none needed; if a client still fails through it, compare its requests (headers, body) with the doctor's"),
        );
    }
    out
}

/// The default of `token_endpoint_auth_methods_supported` (RFC 8414 §2).
const DEFAULT_AUTH_METHODS: &[&str] = &["client_secret_basic"];

/// The methods the metadata advertises (the default when the member is
/// absent); `None` when the member is not an array of strings (the
/// metadata judge names that) or there is no metadata to go by.
fn advertised_methods(metadata: &Map<String, Value>) -> Option<(Vec<String>, bool)> {
    match metadata.get("token_endpoint_auth_methods_supported") {
        None => Some((
            DEFAULT_AUTH_METHODS.iter().map(|s| s.to_string()).collect(),
            true,
        )),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .map(|v| (v, false)),
        Some(_) => None,
    }
}

fn methods_evidence(used: &str, advertised: &[String], defaulted: bool) -> String {
    if defaulted {
        format!(
            "used: {used}; token_endpoint_auth_methods_supported: absent, so only client_secret_basic (RFC 8414 §2)"
        )
    } else {
        format!(
            "used: {used}; token_endpoint_auth_methods_supported: [{}]",
            advertised.join(", ")
        )
    }
}

/// The authentication methods the live doctor can use, in the order it
/// suggests them.
const DOCTOR_METHODS: &[&str] = &[
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
];

/// The advertised method closest to `used`: one with the same kind of
/// credential (a secret, a key, none) first, then any the doctor can use.
fn suggestion<'a>(used: &str, advertised: &'a [String]) -> Option<&'a str> {
    let family = |m: &str| match m {
        "client_secret_basic" | "client_secret_post" | "client_secret_jwt" => 0,
        "private_key_jwt" | "tls_client_auth" | "self_signed_tls_client_auth" => 1,
        "none" => 2,
        _ => 3,
    };
    let usable: Vec<&'a str> = DOCTOR_METHODS
        .iter()
        .filter_map(|m| advertised.iter().find(|a| a.as_str() == *m))
        .map(String::as_str)
        .filter(|m| *m != used)
        .collect();
    usable
        .iter()
        .find(|m| family(m) == family(used))
        .or(usable.first())
        .copied()
}

/// CA-03 (RFC 8414 §2): the client authenticated with `used` (an RFC 8414
/// method name: `client_secret_basic`, `private_key_jwt`, ...) and the
/// server's `metadata` does not list it in
/// `token_endpoint_auth_methods_supported` (absent: `client_secret_basic`
/// only). `None` when it is listed, or the member is unusable.
pub fn auth_method_not_advertised(used: &str, metadata: &Map<String, Value>) -> Option<Finding> {
    let (advertised, defaulted) = advertised_methods(metadata)?;
    if advertised.iter().any(|m| m == used) {
        return None;
    }
    let fix = match suggestion(used, &advertised) {
        Some(m) => format!(
            "use a method the server lists: {m} (with the doctor: --auth {m}), and register the client for it; or, if the server does accept {used}, add it to token_endpoint_auth_methods_supported"
        ),
        None => format!(
            "use a method the server lists ({}) and register the client for it; or, if the server does accept {used}, add it to token_endpoint_auth_methods_supported",
            advertised.join(", ")
        ),
    };
    Some(
        Finding::new(
            &AUTH_METHOD_NOT_ADVERTISED,
            format!("the client authenticates with {used}, which the server's metadata does not list"),
        )
        .evidence(methods_evidence(used, &advertised, defaulted))
        .cause("the client library (or its configuration) picks an authentication method the server does not support, or the metadata is incomplete; servers refuse it with invalid_client, or a 400 that says a client_secret is missing")
        .fix(fix),
    )
}

/// CA-03 as a hint when the token endpoint answered `invalid_client`:
/// `used` is advertised, and the metadata lists other methods, so the
/// client may be registered for one of those (a server keeps one
/// `token_endpoint_auth_method` per client, RFC 7591 §2). `None` when `used`
/// is not advertised ([`auth_method_not_advertised`] says that) or it is the
/// only method listed.
pub fn auth_method_others_advertised(used: &str, metadata: &Map<String, Value>) -> Option<Finding> {
    let (advertised, defaulted) = advertised_methods(metadata)?;
    if !advertised.iter().any(|m| m == used) {
        return None;
    }
    let others: Vec<&str> = advertised
        .iter()
        .map(String::as_str)
        .filter(|m| *m != used)
        .collect();
    if others.is_empty() {
        return None;
    }
    let try_next = suggestion(used, &advertised)
        .map(|m| format!(" (with the doctor: --auth {m})"))
        .unwrap_or_default();
    Some(
        Finding::new(
            &AUTH_METHOD_OTHERS_ADVERTISED,
            format!(
                "invalid_client with {used}: the server also accepts {}; the client may be registered for another method",
                others.join(", ")
            ),
        )
        .evidence(methods_evidence(used, &advertised, defaulted))
        .cause("a server registers one token_endpoint_auth_method per client (RFC 7591 §2) and answers invalid_client to any other, just as it does to a wrong secret or key")
        .fix(format!(
            "look up the method in the client's registration and use that one{try_next}; if it is {used}, check the credentials (secret, key, client_id) instead"
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_is_told_apart() {
        assert_eq!(
            refresh_rotation("a", Some("b"), false).code,
            "refresh-token-rotated"
        );
        assert_eq!(
            refresh_rotation("a", Some("a"), false).code,
            "refresh-token-not-rotated"
        );
        assert_eq!(
            refresh_rotation("a", None, true).code,
            "refresh-token-not-rotated-public-client"
        );
        let f = refresh_rotation("old-refresh-secret", Some("new-refresh-secret"), false);
        assert!(!f.evidence.contains("refresh-secret"), "{}", f.evidence);
    }

    #[test]
    fn kid_lookup() {
        let set: Value =
            serde_json::from_str(r#"{"keys":[{"kty":"oct","kid":"k1"},{"kty":"oct"}]}"#)
                .unwrap_or_default();
        assert!(kid_in_jwks(&set, "k1"));
        assert!(!kid_in_jwks(&set, "k2"));
        assert!(!kid_in_jwks(&Value::Null, "k1"));
        assert_eq!(kid_refetched("k2", "a", "b", true).severity, Severity::Warn);
        assert_eq!(
            kid_refetched("k2", "a", "b", false).code,
            "jwks-kid-never-published"
        );
    }

    #[test]
    fn via_names_what_changed() {
        let h = |ct: &str| {
            vec![
                ("Content-Type".to_string(), ct.to_string()),
                ("Date".to_string(), "x".to_string()),
            ]
        };
        let (dh, vh) = (h("application/json"), h("text/html"));
        let direct = Seen {
            url: "http://as/token",
            response: Ok(Answer {
                status: 200,
                headers: &dh,
                body: br#"{"access_token":"a","token_type":"Bearer","expires_in":3600}"#,
            }),
        };
        let html = Seen {
            url: "http://gw/token",
            response: Ok(Answer {
                status: 403,
                headers: &vh,
                body: b"<html><title>Forbidden</title></html>",
            }),
        };
        let f = via_diff(direct, html);
        let c: Vec<&str> = f.iter().map(|f| f.code).collect();
        assert_eq!(c, ["via-response-differs", "via-headers-differ"]);
        assert!(
            f[0].title
                .contains("replaced the response: HTTP 403 with an HTML page titled \"Forbidden\""),
            "{}",
            f[0].title
        );
        assert!(
            f[1].evidence
                .contains("content-type: application/json → text/html"),
            "{}",
            f[1].evidence
        );

        let mut vh2 = h("application/json");
        vh2.push(("Via".into(), "1.1 gw".into()));
        let rewritten = Seen {
            url: "http://gw/token",
            response: Ok(Answer {
                status: 200,
                headers: &vh2,
                body: br#"{"access_token":"b","token_type":"bearer","expires_in":"3600"}"#,
            }),
        };
        let f = via_diff(direct, rewritten);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert!(
            f[0].title
                .contains("expires_in is a string instead of a number"),
            "{}",
            f[0].title
        );
        assert!(
            f[0].title
                .contains("token_type is \"bearer\" instead of \"Bearer\""),
            "{}",
            f[0].title
        );

        let same = Seen {
            url: "http://gw/token",
            response: Ok(Answer {
                status: 200,
                headers: &vh2,
                body: br#"{"access_token":"c","token_type":"Bearer","expires_in":3599}"#,
            }),
        };
        let f = via_diff(direct, same);
        assert_eq!(f[0].code, "via-response-same");
        assert!(
            f[0].evidence.contains("other headers added: via"),
            "{}",
            f[0].evidence
        );
        let down = Seen {
            url: "http://gw/token",
            response: Err("connect-refused"),
        };
        assert_eq!(via_diff(direct, down)[0].code, "via-response-differs");
    }

    #[test]
    fn outcomes_are_grouped() {
        let ok = Outcome::response(200, br#"{"access_token":"x","token_type":"Bearer"}"#, &[]);
        let bad = Outcome::response(
            502,
            b"<html><head><title>502 Bad Gateway</title></head></html>",
            &["html-error-page"],
        );
        let runs = vec![ok.clone(), bad.clone(), ok.clone(), ok];
        let f = repeat_outcomes("token request", &runs);
        assert_eq!(f.code, "repeat-outcomes-differ");
        assert!(f.evidence.starts_with("3 of 4: HTTP 200 with a JSON token response; 1 of 4: HTTP 502 with an HTML page titled \"502 Bad Gateway\": html-error-page"), "{}", f.evidence);
        assert!(f.title.contains("least common: 1 of 4"), "{}", f.title);
        let f = repeat_outcomes("token request", &[Outcome::failure("connect-refused")]);
        assert_eq!(f.code, "repeat-outcomes-same");
        let e = Outcome::response(400, br#"{"error":"invalid_client"}"#, &[]);
        assert_eq!(e.label, "HTTP 400 with a JSON error (invalid_client)");
    }
}

#[cfg(test)]
mod auth_method_tests {
    use super::*;
    use serde_json::json;

    fn meta(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn absent_member_means_basic_only() {
        let m = meta(json!({"issuer": "https://as.test"}));
        assert!(auth_method_not_advertised("client_secret_basic", &m).is_none());
        let f = auth_method_not_advertised("client_secret_post", &m).unwrap();
        assert_eq!(
            (f.rule, f.code),
            ("CA-03", "client-auth-method-not-advertised")
        );
        assert_eq!(f.severity, Severity::Warn);
        assert!(
            f.evidence.contains("absent, so only client_secret_basic"),
            "{}",
            f.evidence
        );
        assert!(f.fix.contains("--auth client_secret_basic"), "{}", f.fix);
    }

    #[test]
    fn a_listed_method_passes_and_an_unlisted_one_gets_the_nearest_fix() {
        let m = meta(
            json!({"token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"]}),
        );
        assert!(auth_method_not_advertised("client_secret_post", &m).is_none());
        assert!(auth_method_not_advertised("private_key_jwt", &m).is_none());
        let f = auth_method_not_advertised("client_secret_basic", &m).unwrap();
        assert_eq!(
            f.evidence,
            "used: client_secret_basic; token_endpoint_auth_methods_supported: [client_secret_post, private_key_jwt]"
        );
        assert!(f.fix.starts_with("use a method the server lists: client_secret_post (with the doctor: --auth client_secret_post)"), "{}", f.fix);
        let f = auth_method_not_advertised("none", &m).unwrap();
        assert!(f.fix.contains("--auth client_secret_post"), "{}", f.fix);
        // Only methods the doctor cannot use: listed, no flag suggested.
        let m = meta(json!({"token_endpoint_auth_methods_supported": ["tls_client_auth"]}));
        let f = auth_method_not_advertised("private_key_jwt", &m).unwrap();
        assert!(
            f.fix
                .starts_with("use a method the server lists (tls_client_auth)"),
            "{}",
            f.fix
        );
        // Not an array of strings: the metadata judge's business.
        let m = meta(json!({"token_endpoint_auth_methods_supported": "client_secret_basic"}));
        assert!(auth_method_not_advertised("client_secret_post", &m).is_none());
    }

    #[test]
    fn invalid_client_hint_names_the_other_methods() {
        let m = meta(
            json!({"token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"]}),
        );
        let f = auth_method_others_advertised("client_secret_basic", &m).unwrap();
        assert_eq!(
            (f.rule, f.code, f.severity),
            (
                "CA-03",
                "client-auth-method-others-advertised",
                Severity::Info
            )
        );
        assert!(
            f.title
                .contains("also accepts client_secret_post, private_key_jwt"),
            "{}",
            f.title
        );
        assert!(f.fix.contains("--auth client_secret_post"), "{}", f.fix);
        // Not advertised: the warning covers it. Only one method: nothing else to try.
        assert!(auth_method_others_advertised("none", &m).is_none());
        let only = meta(json!({}));
        assert!(auth_method_others_advertised("client_secret_basic", &only).is_none());
    }
}
