//! Linting an authorization request (RFC 6749 §4.1.1) before a browser is
//! sent to it: `response_type`, `client_id`, PKCE (RFC 7636; S256, not
//! `plain`), `state`, and the `redirect_uri` against the registered ones by
//! exact string comparison (RFC 6749 §3.1.2.3, RFC 9700 §2.1), with the first
//! difference shown character by character and named (scheme, host, port,
//! path, trailing slash, case, percent-encoding), and the loopback port rule
//! of RFC 8252 §7.3.
//!
//! `gatewise doctor authorize-url URL --registered-redirect-uri URI` prints
//! what [`lint`] returns.

use super::body::check;
use super::request::VERIFIER_INVALID;
use crate::finding::{Check, Finding, Severity};
use crate::jose::b64url_encode;
use crate::secret;

check!(
    URL_INVALID,
    "AR-01",
    "authorize-url-invalid",
    Error,
    "RFC 6749 §3.1",
    "The authorization request is not an absolute http(s) URL with a query."
);
check!(
    RESPONSE_TYPE_INVALID,
    "AR-02",
    "authorize-response-type-invalid",
    Error,
    "RFC 6749 §3.1.1, §4.1.1",
    "response_type is missing, or holds a value no specification defines."
);
check!(
    RESPONSE_TYPE_IMPLICIT,
    "AR-03",
    "authorize-response-type-implicit",
    Warn,
    "RFC 9700 §2.1.2",
    "response_type asks for an access token in the authorization response (the implicit grant), which RFC 9700 says not to use."
);
check!(
    CLIENT_ID_MISSING,
    "AR-04",
    "authorize-client-id-missing",
    Error,
    "RFC 6749 §4.1.1",
    "The authorization request has no client_id."
);
check!(
    ENDPOINT_NOT_HTTPS,
    "AR-05",
    "authorize-endpoint-not-https",
    Warn,
    "RFC 6749 §3.1",
    "The authorization endpoint is plain http on a host other than loopback."
);
check!(
    CREDENTIALS_IN_URL,
    "AR-06",
    "authorize-credentials-in-url",
    Error,
    "RFC 6749 §2.3.1, §3.1",
    "The authorization URL carries a client secret, password or assertion: the browser, history and logs see it."
);
check!(
    PARAMETER_REPEATED,
    "AR-07",
    "authorize-parameter-repeated",
    Error,
    "RFC 6749 §3.1",
    "A request parameter appears more than once."
);
check!(
    NONCE_MISSING,
    "ID-08",
    "authorize-nonce-missing",
    Error,
    "OpenID Connect Core §3.2.2.1",
    "An OpenID Connect request that returns an ID token from the authorization endpoint has no nonce."
);
check!(
    STATE_MISSING,
    "AZ-02",
    "authorize-state-missing",
    Warn,
    "RFC 6749 §10.12; RFC 9700 §2.1",
    "The authorization request has no state: nothing ties the callback to the browser session that started it."
);
check!(
    PKCE_MISSING,
    "PK-05",
    "authorize-pkce-missing",
    Warn,
    "RFC 9700 §2.1.1; RFC 7636 §4.3",
    "A code request without code_challenge: no PKCE."
);
check!(
    PKCE_PLAIN,
    "PK-03",
    "authorize-pkce-plain",
    Warn,
    "RFC 7636 §4.2, §7.2; RFC 9700 §2.1.1",
    "PKCE uses the plain method (or no code_challenge_method, which means plain) instead of S256."
);
check!(
    PKCE_MALFORMED,
    "PK-02",
    "authorize-pkce-challenge-malformed",
    Error,
    "RFC 7636 §4.2, §4.3",
    "code_challenge_method is not S256 or plain, or an S256 code_challenge is not 43 base64url characters."
);
check!(
    PKCE_VERIFIER_MISMATCH,
    "PK-04",
    "authorize-pkce-verifier-mismatch",
    Error,
    "RFC 7636 §4.6",
    "The code_verifier given does not produce the request's code_challenge: the code exchange will fail with invalid_grant."
);
check!(
    PKCE_S256,
    "PK-02",
    "authorize-pkce-s256",
    Info,
    "RFC 7636 §4.2",
    "PKCE with S256 and a well-formed code_challenge."
);
check!(
    REDIRECT_ABSENT,
    "RU-02",
    "redirect-uri-absent",
    Warn,
    "RFC 6749 §3.1.2.3; OpenID Connect Core §3.1.2.1",
    "The request has no redirect_uri: only a server with exactly one registered URI can choose, and OpenID Connect requires it."
);
check!(
    REDIRECT_NOT_ABSOLUTE,
    "RU-01",
    "redirect-uri-not-absolute",
    Error,
    "RFC 6749 §3.1.2",
    "redirect_uri is not an absolute URI."
);
check!(
    REDIRECT_FRAGMENT,
    "RU-01",
    "redirect-uri-fragment",
    Error,
    "RFC 6749 §3.1.2",
    "redirect_uri contains a fragment."
);
check!(
    REDIRECT_NOT_HTTPS,
    "RU-04",
    "redirect-uri-not-https",
    Warn,
    "RFC 6749 §3.1.2.1; RFC 8252 §7.3",
    "redirect_uri is plain http on a host other than a loopback address."
);
check!(
    REDIRECT_MISMATCH,
    "RU-02",
    "redirect-uri-mismatch",
    Error,
    "RFC 6749 §3.1.2.3; RFC 9700 §2.1",
    "redirect_uri is not exactly a registered redirect URI (the first difference is named: scheme, host, port, path, trailing slash, case, percent-encoding)."
);
check!(
    REDIRECT_MATCHES,
    "RU-02",
    "redirect-uri-matches",
    Info,
    "RFC 6749 §3.1.2.3; RFC 9700 §2.1",
    "redirect_uri is exactly a registered redirect URI."
);
check!(
    REDIRECT_LOOPBACK_PORT,
    "RU-03",
    "redirect-uri-loopback-port",
    Info,
    "RFC 8252 §7.3",
    "redirect_uri differs from a registered loopback IP redirect URI only in the port, which RFC 8252 §7.3 makes the server accept."
);

/// Checks defined in this module.
pub const CHECKS: &[&Check] = &[
    &URL_INVALID,
    &RESPONSE_TYPE_INVALID,
    &RESPONSE_TYPE_IMPLICIT,
    &CLIENT_ID_MISSING,
    &ENDPOINT_NOT_HTTPS,
    &CREDENTIALS_IN_URL,
    &PARAMETER_REPEATED,
    &NONCE_MISSING,
    &STATE_MISSING,
    &PKCE_MISSING,
    &PKCE_PLAIN,
    &PKCE_MALFORMED,
    &PKCE_VERIFIER_MISMATCH,
    &PKCE_S256,
    &REDIRECT_ABSENT,
    &REDIRECT_NOT_ABSOLUTE,
    &REDIRECT_FRAGMENT,
    &REDIRECT_NOT_HTTPS,
    &REDIRECT_MISMATCH,
    &REDIRECT_MATCHES,
    &REDIRECT_LOOPBACK_PORT,
];

/// Parameters that carry credentials and never belong in a browser URL.
const CREDENTIAL_PARAMS: &[&str] = &["client_secret", "password", "client_assertion"];

/// Lints the authorization request `url` against the client's registered
/// redirect URIs (none: the redirect URI is only checked on its own). When
/// the client's `code_verifier` is given, it is checked against the
/// request's `code_challenge` (RFC 7636 §4.6).
pub fn lint(url: &str, registered: &[String], code_verifier: Option<&str>) -> Vec<Finding> {
    let mut out = Vec::new();
    let parsed = url::Url::parse(url.trim());
    let u = match parsed {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => u,
        other => {
            let why = match other {
                Err(e) => format!("not an absolute URL: {e}"),
                Ok(u) => format!(
                    "scheme {:?}: an authorization endpoint is http(s)",
                    u.scheme()
                ),
            };
            out.push(
                Finding::new(&URL_INVALID, "the authorization request is not an http(s) URL")
                    .evidence(format!("{}: {why}", preview(url)))
                    .cause("the URL was cut when copied (a line break, a shell that ate the part after '&'), or only part of it was pasted")
                    .fix("copy the whole URL from the browser's address bar or the client's log, and quote it on the command line"),
            );
            return out;
        }
    };
    let pairs: Vec<(String, String)> = u.query_pairs().into_owned().collect();
    if pairs.is_empty() {
        out.push(
            Finding::new(&URL_INVALID, "the authorization URL has no query parameters")
                .evidence(preview(url))
                .cause("the parameters were lost (a shell that ate the part after '&', or a POST-based request), or this is the bare endpoint")
                .fix("pass the full URL the client sends the browser to, query included"),
        );
        return out;
    }
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    // With PKCE plain the challenge is the verifier: masked like one.
    let plain = get("code_challenge_method").is_none_or(|m| m == "plain");
    let shown = masked_url(&u, &pairs, plain);

    if u.scheme() == "http" && !is_loopback_host(u.host_str().unwrap_or("")) {
        out.push(
            Finding::new(&ENDPOINT_NOT_HTTPS, "the authorization endpoint is plain http")
                .evidence(shown.clone())
                .cause("the request will carry the user's session and the code challenge in clear, and sign-in pages over http are open to tampering")
                .fix("use the https:// authorization_endpoint from the server's metadata"),
        );
    }
    let creds: Vec<&str> = pairs
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| CREDENTIAL_PARAMS.contains(n))
        .collect();
    if !creds.is_empty() {
        out.push(
            Finding::new(&CREDENTIALS_IN_URL, format!("the authorization URL carries {}", creds.join(", ")))
                .evidence(shown.clone())
                .cause("the client puts token-endpoint credentials into the browser redirect, where history, proxies, Referer headers and server logs keep them")
                .fix("remove them from the authorization request: the client secret belongs only in the back-channel token request (RFC 6749 §2.3.1), and rotate it now"),
        );
    }
    let mut repeated: Vec<&str> = Vec::new();
    for (i, (n, _)) in pairs.iter().enumerate() {
        // RFC 8707 §2 allows several resource parameters.
        if n != "resource"
            && pairs.iter().skip(i + 1).any(|(m, _)| m == n)
            && !repeated.contains(&n.as_str())
        {
            repeated.push(n);
        }
    }
    if !repeated.is_empty() {
        out.push(
            Finding::new(&PARAMETER_REPEATED, format!("parameters appear more than once: {}", repeated.join(", ")))
                .evidence(shown.clone())
                .cause("the client appends parameters to an endpoint URL that already has some (a configured authorization URL with ?response_type=…), so servers reject the request with invalid_request")
                .fix("send each parameter once: configure the bare authorization_endpoint and let the client add the parameters"),
        );
    }

    let response_type = get("response_type");
    let types: Vec<&str> = response_type
        .map(|r| r.split(' ').filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    let known = ["code", "token", "id_token", "none"];
    match response_type {
        None => out.push(
            Finding::new(&RESPONSE_TYPE_INVALID, "the authorization request has no response_type")
                .evidence(shown.clone())
                .cause("the client builds the request by hand and left out response_type, which is REQUIRED")
                .fix("send response_type=code (with PKCE)"),
        ),
        Some(r) if types.is_empty() || types.iter().any(|t| !known.contains(t)) => out.push(
            Finding::new(&RESPONSE_TYPE_INVALID, format!("response_type {r:?} is not a defined value"))
                .evidence(format!("response_type={r}"))
                .cause("values are case-sensitive and space-separated: `Code`, `code,id_token` or `code+id_token` decoded wrongly are not recognised; servers answer unsupported_response_type")
                .fix("send response_type=code"),
        ),
        Some(r) if types.contains(&"token") => out.push(
            Finding::new(&RESPONSE_TYPE_IMPLICIT, format!("response_type {r:?} returns the access token in the redirect (implicit grant)"))
                .evidence(format!("response_type={r}"))
                .cause("the access token travels in the URL fragment: browser history, Referer and injected scripts can take it, and the client cannot bind it to itself")
                .fix("use response_type=code with PKCE and redeem the code at the token endpoint (RFC 9700 §2.1.2)"),
        ),
        Some(_) => {}
    }
    if get("client_id").is_none_or(str::is_empty) {
        out.push(
            Finding::new(&CLIENT_ID_MISSING, "the authorization request has no client_id")
                .evidence(shown.clone())
                .cause("the client's configuration lacks the client id, or an empty environment variable was substituted")
                .fix("send the client_id the server registered for this application"),
        );
    }
    let openid = get("scope").is_some_and(|s| s.split(' ').any(|x| x == "openid"));
    if openid && types.contains(&"id_token") && get("nonce").is_none() {
        out.push(
            Finding::new(&NONCE_MISSING, "the request returns an ID token from the authorization endpoint but has no nonce")
                .evidence(format!("response_type={}; scope={}", response_type.unwrap_or(""), get("scope").unwrap_or("")))
                .cause("OpenID Connect requires a nonce whenever the ID token comes back in the redirect, to stop replayed ID tokens")
                .fix("generate a random nonce per request, keep it in the session and compare it with the ID token's nonce"),
        );
    }
    if get("state").is_none_or(str::is_empty) {
        out.push(
            Finding::new(&STATE_MISSING, "the authorization request has no state")
                .evidence(shown.clone())
                .cause("without state (or PKCE that the server is known to enforce) an attacker can feed the client a callback it never asked for (login CSRF); many clients also fail with 'state mismatch' when the callback has none")
                .fix("send a random state per request, keep it in the user's session and compare it exactly on the callback (RFC 6749 §10.12)"),
        );
    }
    pkce(
        &mut out,
        &types,
        get("code_challenge"),
        get("code_challenge_method"),
        code_verifier,
    );
    redirect(&mut out, get("redirect_uri"), registered);
    out
}

fn pkce(
    out: &mut Vec<Finding>,
    types: &[&str],
    challenge: Option<&str>,
    method: Option<&str>,
    verifier: Option<&str>,
) {
    let Some(challenge) = challenge.filter(|c| !c.is_empty()) else {
        if types.contains(&"code") || method.is_some() {
            out.push(
                Finding::new(&PKCE_MISSING, "the code request has no code_challenge: no PKCE")
                    .evidence(match method {
                        Some(m) => format!("code_challenge_method={m} but no code_challenge"),
                        None => "no code_challenge or code_challenge_method".to_string(),
                    })
                    .cause("without PKCE a stolen or injected authorization code can be redeemed by someone else; RFC 9700 requires it for public clients and recommends it for all")
                    .fix("generate a code_verifier (32 random bytes, base64url), send code_challenge=BASE64URL(SHA256(verifier)) with code_challenge_method=S256, and the verifier in the token request"),
            );
        }
        return;
    };
    if let Some(v) = verifier {
        let valid = (43..=128).contains(&v.len())
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        if !valid {
            out.push(
                Finding::new(&VERIFIER_INVALID, "the code_verifier is not 43-128 characters of [A-Za-z0-9-._~]")
                    .evidence(format!("code_verifier {}", secret::mask(v)))
                    .cause("the client generates a short verifier, or encodes it with standard base64 (+ / =)")
                    .fix("use 32 random bytes, base64url-encoded without padding (43 characters)"),
            );
        }
    }
    match method {
        Some("S256") => {
            let well_formed = challenge.len() == 43
                && challenge
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !well_formed {
                out.push(
                    Finding::new(&PKCE_MALFORMED, "the S256 code_challenge is not 43 base64url characters")
                        .evidence(format!("code_challenge={challenge} ({} characters)", challenge.chars().count()))
                        .cause("the challenge is hex instead of base64url, standard base64 with + / or = padding, or the verifier itself was sent")
                        .fix("send BASE64URL-NOPAD(SHA256(ASCII(code_verifier))): always 43 characters"),
                );
                return;
            }
            let mut f = Finding::new(&PKCE_S256, "PKCE with S256")
                .evidence(format!("code_challenge={challenge}; code_challenge_method=S256"))
                .cause("the request is protected against code interception and injection")
                .fix("none needed");
            if let Some(v) = verifier {
                let expected = b64url_encode(&secret::sha256(v.as_bytes()));
                if expected == challenge {
                    f.evidence
                        .push_str(&format!("; the code_verifier {} matches", secret::mask(v)));
                } else {
                    out.push(verifier_mismatch(challenge, "S256", v, &expected));
                    return;
                }
            }
            out.push(f);
        }
        None | Some("plain") => {
            out.push(
                Finding::new(
                    &PKCE_PLAIN,
                    match method {
                        None => "code_challenge_method is absent, which means plain",
                        Some(_) => "PKCE uses the plain method",
                    },
                )
                // With plain, the challenge is the verifier: masked.
                .evidence(format!(
                    "code_challenge={} (the verifier itself); code_challenge_method={}",
                    secret::mask(challenge),
                    method.unwrap_or("(absent)")
                ))
                .cause("with plain the challenge is the verifier itself, so whoever sees the authorization request (logs, history) can redeem the code; S256 is mandatory to implement for servers")
                .fix("send code_challenge_method=S256 with code_challenge=BASE64URL(SHA256(verifier))"),
            );
            if let Some(v) = verifier
                && v != challenge
            {
                out.push(verifier_mismatch(challenge, "plain", v, v));
            }
        }
        Some(m) => out.push(
            Finding::new(&PKCE_MALFORMED, format!("code_challenge_method {m:?} is not S256 or plain"))
                .evidence(format!("code_challenge_method={m}"))
                .cause("method names are case-sensitive (`s256` and `SHA256` are not S256); servers answer invalid_request or treat the request as having no PKCE")
                .fix("send code_challenge_method=S256"),
        ),
    }
}

fn verifier_mismatch(challenge: &str, method: &str, verifier: &str, computed: &str) -> Finding {
    let computed = if method == "plain" {
        secret::mask(computed)
    } else {
        computed.to_string()
    };
    Finding::new(
        &PKCE_VERIFIER_MISMATCH,
        "the code_verifier does not match the code_challenge",
    )
    .evidence(format!(
        "code_challenge={challenge} ({method}); the code_verifier {} gives {computed}",
        secret::mask(verifier)
    ))
    .cause("the client lost the verifier between the redirect and the callback (a second login tab, another instance without shared session storage) or hashes it wrongly (hex, padding, standard base64)")
    .fix("keep the verifier in the session that started the login; compute BASE64URL-NOPAD(SHA256(verifier))")
}

fn redirect(out: &mut Vec<Finding>, requested: Option<&str>, registered: &[String]) {
    let Some(req) = requested else {
        out.push(
            Finding::new(&REDIRECT_ABSENT, "the authorization request has no redirect_uri")
                .evidence(if registered.is_empty() {
                    "no redirect_uri parameter".to_string()
                } else {
                    format!("no redirect_uri parameter; {} registered", registered.len())
                })
                .cause("the client relies on the server picking the registered URI: that only works with exactly one registered, and OpenID Connect servers require the parameter")
                .fix("send redirect_uri, exactly as registered"),
        );
        return;
    };
    let p = split(req);
    if p.scheme.is_empty() {
        out.push(
            Finding::new(&REDIRECT_NOT_ABSOLUTE, "redirect_uri is not an absolute URI")
                .evidence(format!("redirect_uri={req}"))
                .cause("the client sends a relative path; the server cannot compare it with the registered absolute URI")
                .fix("send the full URI, scheme and host included, exactly as registered"),
        );
    }
    if p.fragment.is_some() {
        out.push(
            Finding::new(&REDIRECT_FRAGMENT, "redirect_uri contains a fragment")
                .evidence(format!("redirect_uri={req}"))
                .cause("a '#' in the redirect URI (a single-page app's route) is not allowed: the server appends its parameters to the query")
                .fix("register and send a redirect URI without '#…'; route on the client after the callback"),
        );
    }
    if p.scheme.eq_ignore_ascii_case("http") && !is_loopback_host(p.host) {
        out.push(
            Finding::new(&REDIRECT_NOT_HTTPS, "redirect_uri is plain http on a non-loopback host")
                .evidence(format!("redirect_uri={req}"))
                .cause("the code travels in clear; behind a TLS-terminating proxy that does not pass X-Forwarded-Proto, the app builds http:// by mistake")
                .fix("use https (only loopback addresses may use http, RFC 8252 §7.3); make the app trust X-Forwarded-Proto from its proxy")
        );
    }
    if registered.is_empty() {
        return;
    }
    if let Some(r) = registered.iter().find(|r| r.as_str() == req) {
        out.push(
            Finding::new(
                &REDIRECT_MATCHES,
                "redirect_uri is exactly a registered redirect URI",
            )
            .evidence(format!("redirect_uri={req}; registered {r}"))
            .cause("the strings are identical")
            .fix("none needed"),
        );
        return;
    }
    if let Some(r) = registered.iter().find(|r| loopback_port_only(r, req)) {
        out.push(
            Finding::new(&REDIRECT_LOOPBACK_PORT, "redirect_uri differs from a registered loopback URI only in the port: allowed")
                .evidence(format!("redirect_uri={req}; registered {r}"))
                .cause("native apps listen on a port the system gives them; RFC 8252 §7.3 makes the server accept any port on a loopback IP redirect URI")
                .fix("none needed, if the server implements RFC 8252 §7.3; if it refuses, register the exact URI or ask its operators for the loopback rule"),
        );
        return;
    }
    // The registered URI closest to the one sent (longest common prefix).
    let closest = registered
        .iter()
        .max_by_key(|r| {
            (
                common_prefix(r, req),
                std::cmp::Reverse(r.chars().count().abs_diff(req.chars().count())),
            )
        })
        .map(String::as_str)
        .unwrap_or("");
    let Some(d) = difference(closest, req) else {
        return;
    };
    let mut evidence = caret(closest, req, &d);
    if registered.len() > 1 {
        evidence.push_str(&format!(
            "\n(closest of {} registered redirect URIs)",
            registered.len()
        ));
    }
    out.push(
        Finding::new(
            &REDIRECT_MISMATCH,
            format!("redirect_uri differs from the registered one: {}", d.part.name()),
        )
        .evidence(evidence)
        .cause(d.cause())
        .fix(format!(
            "make the client send exactly {closest}, or register {req} as well: servers compare the whole string, character for character"
        )),
    );
}

/// Which part of a URI holds the first difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// `http` vs `https`.
    Scheme,
    /// `user@` before the host.
    Userinfo,
    /// The host name or address.
    Host,
    /// The port (including a default port written out).
    Port,
    /// The path.
    Path,
    /// Only a trailing `/` on the path.
    TrailingSlash,
    /// Only letter case, in the part named.
    Case(Component),
    /// Only percent-encoding, in the part named.
    PercentEncoding(Component),
    /// The query.
    Query,
    /// The fragment.
    Fragment,
}

/// A component of a URI, to say where a case or encoding difference is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// The scheme.
    Scheme,
    /// The userinfo.
    Userinfo,
    /// The host.
    Host,
    /// The port.
    Port,
    /// The path.
    Path,
    /// The query.
    Query,
    /// The fragment.
    Fragment,
}

impl Component {
    fn name(self) -> &'static str {
        match self {
            Component::Scheme => "scheme",
            Component::Userinfo => "userinfo",
            Component::Host => "host",
            Component::Port => "port",
            Component::Path => "path",
            Component::Query => "query",
            Component::Fragment => "fragment",
        }
    }
}

impl Part {
    /// How the part is named in findings: `trailing slash`, `case (in the path)`, ...
    pub fn name(self) -> String {
        match self {
            Part::Scheme => "scheme".into(),
            Part::Userinfo => "userinfo".into(),
            Part::Host => "host".into(),
            Part::Port => "port".into(),
            Part::Path => "path".into(),
            Part::TrailingSlash => "trailing slash".into(),
            Part::Case(c) => format!("case (in the {})", c.name()),
            Part::PercentEncoding(c) => format!("percent-encoding (in the {})", c.name()),
            Part::Query => "query".into(),
            Part::Fragment => "fragment".into(),
        }
    }
}

/// The first difference between a registered redirect URI and the one sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Which part differs.
    pub part: Part,
    /// 0-based index of the first differing character (in `char`s).
    pub index: usize,
    /// A remark for special cases (loopback names, default ports).
    pub note: Option<String>,
}

impl Difference {
    fn cause(&self) -> String {
        let base = match self.part {
            Part::Scheme => {
                "the scheme differs: an app behind a TLS-terminating proxy that does not pass X-Forwarded-Proto builds http:// where https:// was registered (or the reverse)"
            }
            Part::Userinfo => "the userinfo (user@) part differs",
            Part::Host => {
                "the host differs: www vs the bare domain, an internal host name seen behind a proxy, or another environment's domain"
            }
            Part::Port => {
                "the port differs: a development server's port, a proxy's port, or a default port written out (:443, :80) that the registration lacks"
            }
            Part::Path => {
                "the callback path differs: the framework's default path (/signin-oidc, /login/oauth2/code/{id}, /api/auth/callback/{provider}) is not the one registered"
            }
            Part::TrailingSlash => {
                "only a trailing slash differs: the framework or whoever registered the URI added or dropped it, and the server compares exact strings"
            }
            Part::Case(_) => {
                "only letter case differs: the server compares exact strings, even where URI rules would treat them alike (RFC 9700 §2.1)"
            }
            Part::PercentEncoding(_) => {
                "the same characters are percent-encoded differently: the client double-encodes the redirect_uri, or encodes characters the registration has in clear"
            }
            Part::Query => {
                "the query part differs: the server compares the whole string, query included"
            }
            Part::Fragment => "a fragment differs, and redirect URIs must not have one",
        };
        match &self.note {
            Some(n) => format!("{base}; {n}"),
            None => base.to_string(),
        }
    }
}

/// The parts of a URI as written (no normalisation: servers compare strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parts<'a> {
    scheme: &'a str,
    userinfo: Option<&'a str>,
    host: &'a str,
    port: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
    fragment: Option<&'a str>,
}

fn split(s: &str) -> Parts<'_> {
    let (rest, fragment) = match s.split_once('#') {
        Some((a, f)) => (a, Some(f)),
        None => (s, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let (scheme, rest) = match rest.split_once(':') {
        Some((sc, r))
            if sc.starts_with(|c: char| c.is_ascii_alphabetic())
                && sc
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            (sc, r)
        }
        _ => ("", rest),
    };
    let (authority, path) = match rest.strip_prefix("//") {
        Some(r) => match r.find('/').and_then(|i| r.split_at_checked(i)) {
            Some((a, p)) => (Some(a), p),
            None => (Some(r), ""),
        },
        None => (None, rest),
    };
    let (userinfo, hostport) = match authority {
        Some(a) => match a.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, a),
        },
        None => (None, ""),
    };
    let (host, port) = if hostport.starts_with('[') {
        match hostport.split_once(']') {
            Some((h, p)) => (
                hostport.get(..=h.len()).unwrap_or(hostport),
                p.strip_prefix(':'),
            ),
            None => (hostport, None),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    Parts {
        scheme,
        userinfo,
        host,
        port,
        path,
        query,
        fragment,
    }
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host.eq_ignore_ascii_case("[::1]")
        || host == "::1"
        || host
            .parse::<core::net::Ipv4Addr>()
            .is_ok_and(|a| a.is_loopback())
}

/// A loopback IP literal: the hosts RFC 8252 §7.3's port rule covers.
fn is_loopback_ip(host: &str) -> bool {
    host.eq_ignore_ascii_case("[::1]")
        || host
            .parse::<core::net::Ipv4Addr>()
            .is_ok_and(|a| a.is_loopback())
}

/// RFC 8252 §7.3: http, a loopback IP literal, everything equal but the port.
fn loopback_port_only(registered: &str, requested: &str) -> bool {
    let (a, b) = (split(registered), split(requested));
    a.scheme == "http"
        && b.scheme == "http"
        && is_loopback_ip(a.host)
        && a.host == b.host
        && a.port != b.port
        && Parts { port: None, ..a } == Parts { port: None, ..b }
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count()
}

fn percent_decoded(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|x| (*x as char).to_digit(16)),
                b.get(i + 2).and_then(|x| (*x as char).to_digit(16)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The first difference between `registered` and `requested`, named;
/// `None` when they are identical.
pub fn difference(registered: &str, requested: &str) -> Option<Difference> {
    if registered == requested {
        return None;
    }
    let index = common_prefix(registered, requested);
    let (a, b) = (split(registered), split(requested));
    fn opt(o: Option<&str>) -> &str {
        o.unwrap_or("")
    }
    let components: [(Component, &str, &str, Part); 7] = [
        (Component::Scheme, a.scheme, b.scheme, Part::Scheme),
        (
            Component::Userinfo,
            opt(a.userinfo),
            opt(b.userinfo),
            Part::Userinfo,
        ),
        (Component::Host, a.host, b.host, Part::Host),
        (Component::Port, opt(a.port), opt(b.port), Part::Port),
        (Component::Path, a.path, b.path, Part::Path),
        (Component::Query, opt(a.query), opt(b.query), Part::Query),
        (
            Component::Fragment,
            opt(a.fragment),
            opt(b.fragment),
            Part::Fragment,
        ),
    ];
    let presence_differs = a.port.is_some() != b.port.is_some()
        || a.query.is_some() != b.query.is_some()
        || a.fragment.is_some() != b.fragment.is_some()
        || a.userinfo.is_some() != b.userinfo.is_some();
    let mut part = None;
    for (comp, x, y, whole) in components {
        let present_differs = match comp {
            Component::Port => a.port.is_some() != b.port.is_some(),
            Component::Query => a.query.is_some() != b.query.is_some(),
            Component::Fragment => a.fragment.is_some() != b.fragment.is_some(),
            Component::Userinfo => a.userinfo.is_some() != b.userinfo.is_some(),
            _ => false,
        };
        if x == y && !present_differs {
            continue;
        }
        part = Some(
            if comp == Component::Path && x.trim_end_matches('/') == y.trim_end_matches('/') {
                Part::TrailingSlash
            } else if x.eq_ignore_ascii_case(y) && !present_differs {
                Part::Case(comp)
            } else if percent_decoded(x) == percent_decoded(y) && !present_differs {
                Part::PercentEncoding(comp)
            } else {
                whole
            },
        );
        break;
    }
    // A URI the splitter cannot tell apart part by part (no scheme, odd
    // syntax): name what the whole strings show.
    let part = part.unwrap_or(
        if registered.eq_ignore_ascii_case(requested) && !presence_differs {
            Part::Case(Component::Path)
        } else {
            Part::Path
        },
    );
    let mut note = None;
    if part == Part::Host && is_loopback_host(a.host) && is_loopback_host(b.host) {
        note = Some(format!(
            "{} and {} are different hosts to the server (RFC 8252 §8.3 recommends the IP literal 127.0.0.1 over localhost)",
            a.host, b.host
        ));
    }
    if part == Part::Port {
        let default = match a.scheme.to_ascii_lowercase().as_str() {
            "https" => Some("443"),
            "http" => Some("80"),
            _ => None,
        };
        if default.is_some()
            && (a.port.is_none() && b.port == default || b.port.is_none() && a.port == default)
        {
            note = Some("the default port written out is still a different string".into());
        } else if a.host == "localhost" && b.host == "localhost" {
            note = Some("RFC 8252 §7.3's variable port applies to loopback IP literals (127.0.0.1, [::1]), not to localhost".into());
        }
    }
    Some(Difference { part, index, note })
}

/// Both URIs one above the other with a caret under the first difference.
fn caret(registered: &str, requested: &str, d: &Difference) -> String {
    format!(
        "registered: {registered}\nrequested:  {requested}\n            {}^ character {}: {}",
        " ".repeat(d.index),
        d.index + 1,
        d.part.name()
    )
}

fn preview(s: &str) -> String {
    let p: String = s.chars().take(200).collect();
    if p.len() < s.len() {
        format!("{p}…")
    } else {
        p
    }
}

/// The URL with secret-named parameter values masked, for evidence.
fn masked_url(u: &url::Url, pairs: &[(String, String)], plain_pkce: bool) -> String {
    let mut shown = u.clone();
    shown.set_query(None);
    let q: Vec<String> = pairs
        .iter()
        .map(|(n, v)| {
            if secret::is_secret_member(n) || (plain_pkce && n == "code_challenge") {
                format!("{n}={}", secret::mask(v))
            } else {
                format!("{n}={v}")
            }
        })
        .collect();
    format!("{shown}?{}", q.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(a: &str, b: &str) -> String {
        difference(a, b).map(|d| d.part.name()).unwrap_or_default()
    }

    #[test]
    fn each_part_is_named() {
        let r = "https://app.example.com/callback";
        assert_eq!(part(r, r), "");
        assert_eq!(part(r, "http://app.example.com/callback"), "scheme");
        assert_eq!(part(r, "https://www.example.com/callback"), "host");
        assert_eq!(part(r, "https://app.example.com:8443/callback"), "port");
        assert_eq!(part(r, "https://app.example.com:443/callback"), "port");
        assert_eq!(part(r, "https://app.example.com/cb"), "path");
        assert_eq!(
            part(r, "https://app.example.com/callback/"),
            "trailing slash"
        );
        assert_eq!(
            part(r, "https://app.example.com/Callback"),
            "case (in the path)"
        );
        assert_eq!(
            part(r, "https://App.example.com/callback"),
            "case (in the host)"
        );
        assert_eq!(
            part(r, "https://app.example.com/%63allback"),
            "percent-encoding (in the path)"
        );
        assert_eq!(part(r, "https://app.example.com/callback?x=1"), "query");
        assert_eq!(
            part("http://127.0.0.1:8000/cb", "http://localhost:8000/cb"),
            "host"
        );
    }

    #[test]
    fn the_caret_points_at_the_first_difference() {
        let d = difference(
            "http://127.0.0.1:8000/callback",
            "http://127.0.0.1:8000/callback/",
        );
        let Some(d) = d else { panic!("no difference") };
        assert_eq!(d.index, 30);
        let c = caret(
            "http://127.0.0.1:8000/callback",
            "http://127.0.0.1:8000/callback/",
            &d,
        );
        let lines: Vec<&str> = c.lines().collect();
        assert_eq!(
            lines[2].find('^'),
            lines[1].find("/callback/").map(|i| i + 9)
        );
        assert!(c.ends_with("character 31: trailing slash"), "{c}");
    }

    #[test]
    fn loopback_ip_port_is_allowed_localhost_is_not() {
        assert!(loopback_port_only(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:51234/callback"
        ));
        assert!(loopback_port_only(
            "http://[::1]:80/cb",
            "http://[::1]:9999/cb"
        ));
        assert!(!loopback_port_only(
            "http://localhost/cb",
            "http://localhost:9999/cb"
        ));
        assert!(!loopback_port_only(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:9999/cb2"
        ));
        let d = difference("http://localhost:3000/cb", "http://localhost:3001/cb");
        assert!(
            d.and_then(|d| d.note)
                .is_some_and(|n| n.contains("not to localhost"))
        );
    }

    fn codes(url: &str, registered: &[&str], verifier: Option<&str>) -> Vec<&'static str> {
        let reg: Vec<String> = registered.iter().map(|s| s.to_string()).collect();
        lint(url, &reg, verifier).iter().map(|f| f.code).collect()
    }

    #[test]
    fn a_good_request_has_only_info() {
        let v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let url = "https://as.example.com/authorize?response_type=code&client_id=web&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&scope=openid&state=xyz123&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256";
        let f = lint(url, &["https://app.example.com/cb".into()], Some(v));
        assert!(f.iter().all(|f| f.severity == Severity::Info), "{f:#?}");
        assert_eq!(
            f.iter().map(|f| f.code).collect::<Vec<_>>(),
            vec!["authorize-pkce-s256", "redirect-uri-matches"]
        );
        assert!(!f.iter().any(|f| f.evidence.contains(v)));
        let c = codes(
            url,
            &["https://app.example.com/cb"],
            Some("another-verifier-of-enough-length-0123456789abc"),
        );
        assert!(c.contains(&"authorize-pkce-verifier-mismatch"), "{c:?}");
    }

    #[test]
    fn a_bad_request_is_named() {
        let c = codes(
            "http://as.example.com/authorize?client_id=web&client_id=web&code_challenge=abc&client_secret=s3&redirect_uri=http://app.example.com/cb%23x",
            &["https://app.example.com/cb"],
            None,
        );
        for want in [
            "authorize-endpoint-not-https",
            "authorize-credentials-in-url",
            "authorize-parameter-repeated",
            "authorize-response-type-invalid",
            "authorize-state-missing",
            "authorize-pkce-plain",
            "redirect-uri-fragment",
            "redirect-uri-not-https",
            "redirect-uri-mismatch",
        ] {
            assert!(c.contains(&want), "{want} missing from {c:?}");
        }
        let f = lint(
            "https://as.example.com/authorize?client_secret=hunter2-secret",
            &[],
            None,
        );
        assert!(
            !f.iter().any(|f| f.evidence.contains("hunter2-secret")),
            "{f:#?}"
        );
        assert_eq!(codes("not a url", &[], None), vec!["authorize-url-invalid"]);
    }
}
