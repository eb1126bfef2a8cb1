//! "Diagnose this call": the doctor's reading of one call the gateway
//! recorded ([`CallRecord`]). The gateway's reason code says *what* refused
//! the request; this module says why that usually happens and what to
//! change, with the specification section and the recorded evidence (the
//! decision trace's detail, the token's issuer, `kid` and `client_id`, the
//! route). Findings the exchange inspector recorded are expanded from the
//! catalogue; an upstream's own error status is named too.
//!
//! Pure: the record is all it reads. Rule ids `GW-*` (gateway refusals).

use super::body::check;
use crate::calllog::{CallRecord, Outcome};
use crate::finding::{Check, Finding, Severity};

/// Declares one check per gateway reason code, and the table that maps
/// the reason to it with its likely cause and fix.
macro_rules! reasons {
    ($( $name:ident, $reason:literal, $rule:literal, $sev:ident, $spec:literal, $summary:literal,
        cause: $cause:literal, fix: $fix:literal; )*) => {
        $(
            #[doc = $summary]
            pub const $name: Check = Check {
                rule: $rule,
                code: concat!("call-", $reason),
                severity: Severity::$sev,
                spec: $spec,
                summary: $summary,
            };
        )*

        /// Every check of this module.
        pub const CHECKS: &[&Check] = &[$(&$name,)* &UPSTREAM_ERROR, &UPSTREAM_SLOW_FIRST_BYTE, &UNKNOWN_REASON];

        /// (reason code, check, likely cause, fix).
        const TABLE: &[(&str, &Check, &str, &str)] = &[$(($reason, &$name, $cause, $fix),)*];
    };
}

reasons! {
    TOKEN_MISSING, "token-missing", "GW-01", Warn, "RFC 6750 §2, §3.1",
        "The request carried no access token where the route requires one.",
        cause: "the client did not attach the token: it was never fetched, the `Authorization` header was dropped by a proxy or a redirect to another host, or the client sends it in a cookie or query parameter the route does not accept",
        fix: "send `Authorization: Bearer <access token>`; check that no proxy strips the header and that redirects stay on the same host (HTTP clients drop Authorization across hosts)";
    AUTHORIZATION_MALFORMED, "authorization-malformed", "GW-01", Error, "RFC 6750 §2.1",
        "The Authorization header is not `Bearer <token>`.",
        cause: "the client sent another scheme (Basic, a bare token, `Token ...`), or a token with characters outside b64token (quotes, spaces)",
        fix: "send exactly `Authorization: Bearer <access token>` (the scheme name is case-insensitive; the token is sent as issued, without quotes)";
    AUTHORIZATION_REPEATED, "authorization-repeated", "GW-01", Error, "RFC 6750 §2; RFC 9110 §5.3",
        "The request carried more than one Authorization header.",
        cause: "two layers of the client (an SDK and an interceptor, or a proxy) each added a header",
        fix: "attach the token in one place only";
    TOKEN_MULTIPLE_METHODS, "token-multiple-methods", "GW-01", Error, "RFC 6750 §2",
        "The token was sent by more than one method (header, form body, query).",
        cause: "RFC 6750 §2 allows one method per request; the client sent the token twice",
        fix: "send the token only in the Authorization header";
    JWT_MALFORMED, "jwt-malformed", "GW-02", Error, "RFC 7519 §7.2; RFC 7515 §7.1",
        "The bearer token is not a well-formed JWT.",
        cause: "an opaque access token (or an ID token cut short, or a refresh token) was sent to a route that validates JWTs; some providers issue opaque tokens unless an audience/resource is requested",
        fix: "request a JWT access token for this API (Auth0: `audience`; Entra: the API's scope; RFC 8707 `resource`), or protect the route with introspection instead";
    JWT_CRIT, "jwt-crit-unsupported", "GW-02", Error, "RFC 7515 §4.1.11",
        "The token's header lists `crit` extensions the gateway does not understand.",
        cause: "the issuer uses a JWS extension (for example `b64`) that a resource server must refuse when it does not implement it",
        fix: "issue access tokens without `crit` for this API";
    JWT_ALG, "jwt-alg-not-allowed", "GW-02", Error, "RFC 8725 §3.1",
        "The token's `alg` is not in the issuer's allow-list.",
        cause: "the issuer signs with another algorithm than configured (for example ES256 vs RS256), or the token is forged (`none`, HS256 with the public key)",
        fix: "if the issuer really signs with this algorithm, add it to the issuer's `algorithms`; never allow `none` or HMAC with a public key";
    JWT_KID, "jwt-kid-unknown", "GW-02", Error, "RFC 7517 §4.5; OpenID Connect Core §10.1.1",
        "No key with the token's `kid` is published by the issuer, even after a refetch.",
        cause: "the token comes from another issuer or environment (staging token in production), the issuer signed with a key it has not published yet, or the token is forged",
        fix: "compare the token's `iss` and `kid` with the issuer's JWKS (`gatewise doctor jwt TOKEN --issuer URL --discover`); publish new keys before signing with them";
    JWT_KEY_MISMATCH, "jwt-key-mismatch", "GW-02", Error, "RFC 8725 §3.1; RFC 7517 §4.4",
        "The key found for the token's `kid` is for another algorithm or key type.",
        cause: "the JWKS labels the key with another `alg`/`kty`, or the token was crafted to confuse algorithms",
        fix: "fix the key's `alg` in the issuer's JWKS, or investigate the token: key confusion is a known attack";
    JWT_SIGNATURE, "jwt-signature-invalid", "GW-02", Error, "RFC 7515 §5.2",
        "The token's signature does not verify with the published key.",
        cause: "the token was modified, or signed with a different key under the same `kid` (a rotated key reusing its `kid`, two environments sharing a `kid`)",
        fix: "never reuse a `kid` for a new key; obtain a fresh token from the issuer";
    JWT_CLAIM_MISSING, "jwt-claim-missing", "GW-02", Error, "RFC 9068 §2.2; RFC 7519 §4.1",
        "A claim the gateway needs (`exp`, `iss`, `aud`, ...) is missing or of the wrong type.",
        cause: "the issuer does not follow RFC 9068 for this client, or an ID token or a custom token was sent",
        fix: "configure the issuer to issue RFC 9068 access tokens (iss, exp, aud, sub, client_id, iat, jti) for this API";
    JWT_EXPIRED, "jwt-expired", "GW-02", Warn, "RFC 7519 §4.1.4",
        "The token had expired (beyond the leeway) when it reached the gateway.",
        cause: "the client keeps using a token past `expires_in` instead of refreshing it, caches it longer than its lifetime, or the clocks of the issuer and the gateway disagree",
        fix: "refresh tokens shortly before `expires_in` runs out (and on a 401); if many fresh tokens fail, check NTP on the issuer and the gateway";
    JWT_NOT_YET_VALID, "jwt-not-yet-valid", "GW-02", Warn, "RFC 7519 §4.1.5",
        "The token's `nbf` was in the future beyond the leeway.",
        cause: "the issuer's clock runs ahead of the gateway's",
        fix: "synchronise both clocks with NTP; the gateway's `leeway` (default 60 s) absorbs small skew";
    JWT_IAT_FUTURE, "jwt-iat-future", "GW-02", Warn, "RFC 7519 §4.1.6; RFC 9068 §4",
        "The token was issued in the future (beyond the leeway).",
        cause: "the issuer's clock runs ahead of the gateway's (the issuers view of the admin API shows the largest skew seen)",
        fix: "synchronise both clocks with NTP";
    JWT_ISS, "jwt-iss-mismatch", "GW-02", Error, "RFC 9068 §4; RFC 8414 §2",
        "The token's `iss` is not the configured issuer.",
        cause: "the token comes from another issuer (tenant, realm, environment), or the configured issuer differs in a detail (trailing slash, http vs https, v1 vs v2 endpoint)",
        fix: "compare the token's `iss` character by character with the issuer's `issuer` metadata and the gateway's configuration";
    JWT_AUD, "jwt-aud-mismatch", "GW-02", Error, "RFC 9068 §4; RFC 8707 §2",
        "The token's `aud` holds none of the audiences the route accepts.",
        cause: "the token was issued for another API (often the identity provider's own userinfo or a default audience), because the client did not ask for this API",
        fix: "request the token for this API: RFC 8707 `resource`, Auth0 `audience`, Entra the API's scope; or add the audience to the route if it is really meant for it";
    JWT_TYP, "jwt-typ-mismatch", "GW-02", Error, "RFC 9068 §2.1, §4",
        "The route requires RFC 9068 access tokens (`typ: at+jwt`) and the token has another `typ`.",
        cause: "the issuer issues plain JWTs (`typ: JWT`) or the client sent an ID token",
        fix: "configure the issuer to issue RFC 9068 tokens, or set `require_at_jwt = false` on the route if plain JWT access tokens are expected";
    JWT_ID_TOKEN, "jwt-id-token-as-access-token", "GW-02", Error, "OpenID Connect Core §2; RFC 9068 §4",
        "An ID token was sent as an access token.",
        cause: "the client sends `id_token` where it should send `access_token` (a common mix-up in SPA libraries)",
        fix: "send the `access_token` of the token response in the Authorization header; ID tokens are for the client, not for APIs";
    SCOPE_MISSING, "scope-missing", "GW-03", Warn, "RFC 6750 §3.1",
        "The token is valid but lacks a scope the route requires (403 insufficient_scope).",
        cause: "the client did not request the scope, the user or admin did not grant it, or the issuer maps it to another claim name",
        fix: "request the scope named in the challenge's `scope=` attribute; check the consent and the client's allowed scopes at the issuer";
    CLAIM_CONDITION, "claim-condition-failed", "GW-03", Warn, "RFC 6750 §3.1",
        "The token is valid but a claim condition of the route did not hold.",
        cause: "the route requires a claim value (a tenant, a role, a group) the token does not carry",
        fix: "compare the route's claim conditions with the token's claims (`gatewise doctor jwt`)";
    INTROSPECTION_INACTIVE, "introspection-inactive", "GW-04", Warn, "RFC 7662 §2.2",
        "The introspection endpoint said the token is not active.",
        cause: "the token expired, was revoked, belongs to another authorization server, or the gateway's introspection credentials are not allowed to see it",
        fix: "obtain a fresh token; if fresh tokens are inactive too, check which server issued them and the introspector's client permissions";
    INTROSPECTION_AUD, "introspection-aud-mismatch", "GW-04", Error, "RFC 7662 §2.2; RFC 8707 §2",
        "The token is active but its `aud` holds none of the route's audiences.",
        cause: "the token was issued for another API",
        fix: "request the token for this API (RFC 8707 `resource`)";
    INTROSPECTION_UNAVAILABLE, "introspection-unavailable", "GW-04", Error, "RFC 7662 §2.1",
        "The gateway could not get an answer from the introspection endpoint.",
        cause: "the endpoint is down, slow (beyond the introspector's timeout), refused the gateway's credentials, or answered something that is not an RFC 7662 response",
        fix: "check the introspector's endpoint and credentials with `gatewise doctor response` on a captured exchange; the gateway's log has the error";
    INTROSPECTOR_MISSING, "introspector-missing", "GW-04", Error, "—",
        "The route names an introspector that is not configured.",
        cause: "a configuration mistake that validation normally prevents",
        fix: "run `gatewise config validate` and fix the route's `introspector`";
    RATE_LIMITED, "rate-limited", "GW-05", Warn, "RFC 6585 §4",
        "The route's rate limit refused the request (429, with Retry-After).",
        cause: "the client (by the route's key: client_id, sub, IP or header) sent more than the limit allows",
        fix: "honour `Retry-After` and the `RateLimit-*` fields; raise the route's limit if the traffic is legitimate";
    ROUTE_NOT_FOUND, "route-not-found", "GW-06", Info, "RFC 9110 §15.5.5",
        "No route matched the request's host, path and method.",
        cause: "a typo in the path, a missing path prefix, a method the route does not allow, or a Host header the routes do not name",
        fix: "compare the request with the configured routes (`gatewise config validate` lists them)";
    HOST_INVALID, "host-invalid", "GW-06", Warn, "RFC 9112 §3.2; RFC 9110 §7.2",
        "The request's `Host` was not a host with an optional port, or came more than once (400).",
        cause: "a client or a proxy in front of the gateway sent a malformed or repeated Host header (a list, user info, a port that is not a number); such values can also be attempts to steer the upstream's absolute URLs",
        fix: "send one `Host` with the host name and, if not the default, the port; a proxy in front should pass the client's Host unchanged";
    BODY_TOO_LARGE, "body-too-large", "GW-06", Warn, "RFC 9110 §15.5.14",
        "The request body was larger than `server.max_body_bytes`.",
        cause: "the client uploads more than the gateway forwards",
        fix: "raise `max_body_bytes` if such bodies are expected";
    UPSTREAM_UNAVAILABLE, "upstream-unavailable", "GW-07", Error, "RFC 9110 §15.6.3",
        "The upstream could not be reached (502).",
        cause: "every target of the pool refused the connection, was ejected after failures, or failed its health checks",
        fix: "check the upstream's targets in the admin API's state and the gateway's log; the decision trace names the address tried";
    UPSTREAM_TIMEOUT, "upstream-timeout", "GW-07", Error, "RFC 9110 §15.6.5",
        "The upstream did not start answering within `first_byte_timeout` (504).",
        cause: "the upstream is overloaded or stuck on a slow dependency",
        fix: "look at the upstream's own latency; raise `first_byte_timeout` only if such waits are normal";
    UPSTREAM_MISSING, "upstream-missing", "GW-07", Error, "—",
        "The route's upstream is not configured.",
        cause: "a configuration mistake that validation normally prevents",
        fix: "run `gatewise config validate`";
    UPSTREAM_URI, "upstream-uri-invalid", "GW-07", Error, "RFC 3986 §3",
        "The gateway could not build the upstream URI.",
        cause: "the path after prefix stripping is not a valid URI path",
        fix: "check the route's `strip_prefix` and the request path";
    UPGRADE_UNEXPECTED, "upgrade-unexpected", "GW-07", Error, "RFC 9110 §7.8",
        "The upstream switched protocols (101) for a request that did not ask to.",
        cause: "an upstream bug",
        fix: "fix the upstream: 101 answers only requests with `Connection: upgrade`";
    CLIENT_CLOSED, "client-closed", "GW-08", Info, "—",
        "The client closed the connection before the response was ready (logged as 499).",
        cause: "the client's own timeout is shorter than the route's latency, or the user navigated away",
        fix: "compare the client's timeout with the route's p99 latency in the analytics";
}

check!(
    UPSTREAM_ERROR,
    "GW-07",
    "call-upstream-error-status",
    Warn,
    "RFC 9110 §15.6",
    "The gateway let the request through and the upstream itself answered 5xx."
);
check!(
    UPSTREAM_SLOW_FIRST_BYTE,
    "GW-07",
    "call-upstream-slow",
    Info,
    "—",
    "Most of the call's time was spent waiting for the upstream's first byte."
);

/// The check, likely cause and fix for a gateway reason code.
pub fn explain_reason(reason: &str) -> Option<(&'static Check, &'static str, &'static str)> {
    TABLE
        .iter()
        .find(|(r, ..)| *r == reason)
        .map(|(_, c, cause, fix)| (*c, *cause, *fix))
}

/// The doctor's findings about one recorded call, most important first.
pub fn diagnose(record: &CallRecord) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(reason) = &record.reason {
        match explain_reason(reason) {
            Some((check, cause, fix)) => {
                let mut evidence = vec![format!(
                    "{} {} answered {} with reason `{reason}`",
                    record.method, record.path, record.status
                )];
                if let Some(step) = record.trace.iter().rev().find(|s| {
                    matches!(s.outcome, Outcome::Refused | Outcome::Error)
                        && s.reason.as_deref() == Some(reason.as_str())
                }) && let Some(d) = &step.detail
                {
                    evidence.push(format!("{} step: {d}", step.step.as_str()));
                }
                evidence.extend(principal(record));
                out.push(
                    Finding::new(check, check.summary)
                        .evidence(evidence.join("\n"))
                        .cause(cause)
                        .fix(fix),
                );
            }
            None => out.push(
                Finding::new(
                    &UNKNOWN_REASON,
                    format!("reason `{reason}` is not known to this doctor"),
                )
                .evidence(format!(
                    "{} {} answered {}",
                    record.method, record.path, record.status
                ))
                .cause("the record was written by another gatewise version")
                .fix("read the gateway's documentation of that version for the reason code"),
            ),
        }
    } else if record.status >= 500 {
        out.push(
            Finding::new(
                &UPSTREAM_ERROR,
                format!("the upstream answered {}", record.status),
            )
            .evidence(format!(
                "{} {} via upstream {} ({}): {}",
                record.method,
                record.path,
                record.upstream.as_deref().unwrap_or("?"),
                record.upstream_addr.as_deref().unwrap_or("?"),
                record.status
            ))
            .cause("the gateway passed the request; the error is the upstream's own")
            .fix("look at the upstream's logs for this request id (the gateway forwards `X-Request-Id`)"),
        );
    }
    if let Some(fb) = record.upstream_first_byte_us
        && record.total_us >= 100_000
        && fb * 10 >= record.total_us * 8
    {
        out.push(
            Finding::new(
                &UPSTREAM_SLOW_FIRST_BYTE,
                format!(
                    "{} of {} ms waiting for the upstream's first byte",
                    fb / 1000,
                    record.total_us / 1000
                ),
            )
            .evidence(format!(
                "total {} µs, upstream first byte {} µs, auth {} µs",
                record.total_us,
                fb,
                record.auth_us.unwrap_or(0)
            ))
            .cause("the upstream is slow; the gateway's own part is small")
            .fix("look at the upstream's latency, not the gateway's"),
        );
    }
    // What the exchange inspector saw in the upstream's OAuth response.
    let catalogue = crate::catalogue::checks();
    for f in &record.findings {
        if let Some(check) = catalogue.iter().find(|c| c.code == f.code) {
            out.push(
                Finding::new(check, check.summary)
                    .evidence(format!(
                        "seen by the exchange inspector in the upstream's response on route {}",
                        record.route.as_deref().unwrap_or("?")
                    ))
                    .cause("the upstream's OAuth response breaks this rule; clients may fail with \"invalid OAuth response\"")
                    .fix(format!("run `gatewise doctor response` on a capture of this exchange for the full reading ({})", check.spec)),
            );
        }
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.severity));
    out
}

check!(
    UNKNOWN_REASON,
    "GW-00",
    "call-reason-unknown",
    Info,
    "—",
    "The record carries a reason code this doctor does not know."
);

/// The token facts of the record, as evidence lines.
fn principal(r: &CallRecord) -> Vec<String> {
    let mut facts = Vec::new();
    if let Some(route) = &r.route {
        facts.push(format!("route {route}"));
    }
    let token: Vec<String> = [
        r.issuer.as_ref().map(|v| format!("issuer {v}")),
        r.kid.as_ref().map(|v| format!("kid {v}")),
        r.client_id.as_ref().map(|v| format!("client_id {v}")),
        r.sub.as_ref().map(|v| format!("sub {v}")),
        r.token_fingerprint
            .as_ref()
            .map(|v| format!("token fingerprint {v}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !token.is_empty() {
        facts.push(token.join(", "));
    }
    if !r.scopes.is_empty() {
        facts.push(format!("scopes {}", r.scopes.join(" ")));
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calllog::{FindingRef, Step, TraceStep};

    fn refused(reason: &str, detail: &str) -> CallRecord {
        let mut r = CallRecord::new("r1", 0, "GET", "/orders/1");
        r.status = 401;
        r.route = Some("orders".into());
        r.reason = Some(reason.into());
        r.issuer = Some("main".into());
        r.kid = Some("k1".into());
        r.trace = vec![
            TraceStep::new(Step::Route, Outcome::Ok, 1),
            TraceStep {
                reason: Some(reason.into()),
                detail: Some(detail.into()),
                ..TraceStep::new(Step::Jwt, Outcome::Refused, 20)
            },
        ];
        r
    }

    #[test]
    fn every_gateway_reason_code_is_explained() {
        // The gateway's JWT reasons come from the core's Rejection.
        for reason in crate::jose::check::Rejection::REASONS {
            assert!(
                explain_reason(reason).is_some(),
                "{reason} is not explained"
            );
        }
        for (reason, check, cause, fix) in TABLE {
            assert_eq!(check.code, format!("call-{reason}"));
            assert!(!cause.is_empty() && !fix.is_empty());
        }
    }

    #[test]
    fn an_expired_token_is_explained_with_the_trace_detail() {
        let f = diagnose(&refused("jwt-expired", "the token expired 3600 s ago"));
        assert_eq!(f[0].code, "call-jwt-expired");
        assert_eq!(f[0].rule, "GW-02");
        assert!(
            f[0].evidence
                .contains("jwt step: the token expired 3600 s ago"),
            "{}",
            f[0].evidence
        );
        assert!(
            f[0].evidence.contains("issuer main, kid k1"),
            "{}",
            f[0].evidence
        );
        assert!(f[0].fix.contains("refresh"));
    }

    #[test]
    fn upstream_errors_slowness_and_inspector_findings() {
        let mut r = CallRecord::new("r2", 0, "POST", "/oauth/token");
        r.status = 503;
        r.route = Some("as".into());
        r.upstream = Some("idp".into());
        r.total_us = 2_000_000;
        r.upstream_first_byte_us = Some(1_900_000);
        r.findings = vec![FindingRef {
            rule: "TR-06".into(),
            code: "token-expires-in-string".into(),
            severity: "error".into(),
        }];
        let f = diagnose(&r);
        let codes: Vec<&str> = f.iter().map(|f| f.code).collect();
        assert!(codes.contains(&"call-upstream-error-status"), "{codes:?}");
        assert!(codes.contains(&"call-upstream-slow"), "{codes:?}");
        assert!(codes.contains(&"token-expires-in-string"), "{codes:?}");
        // Errors first.
        assert_eq!(f[0].severity, Severity::Error);
    }

    #[test]
    fn a_clean_fast_call_has_nothing_to_say() {
        let mut r = CallRecord::new("r3", 0, "GET", "/");
        r.status = 200;
        r.total_us = 900;
        r.upstream_first_byte_us = Some(800);
        assert!(diagnose(&r).is_empty());
    }

    #[test]
    fn an_unknown_reason_is_said_so() {
        let f = diagnose(&refused("from-the-future", "x"));
        assert_eq!(f[0].code, "call-reason-unknown");
    }
}
