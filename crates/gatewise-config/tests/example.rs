//! The shipped example file compiles cleanly and means what its comments say.

mod support;

use std::time::Duration;

use gatewise_config::model::{
    ClaimCondition, ClaimTest, ClientAuth, HostHeader, Inspect, IntrospectionPolicy, KeySource,
    PathMatch, RateKey, RateLimit, ScopeRule, SecretRef, TokenSource,
};
use gatewise_config::{EXAMPLE, compile};

#[test]
fn example_compiles_without_errors_or_warnings() {
    let compiled = support::ok(EXAMPLE);
    assert_eq!(compiled.warnings, []);
}

#[test]
fn example_matches_the_brief() {
    let config = compile(EXAMPLE).unwrap().config;
    assert_eq!(config.static_config.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.static_config.tls, None);

    let [issuer] = config.dynamic.issuers.as_slice() else {
        panic!("one issuer")
    };
    assert_eq!(
        issuer.keys,
        KeySource::JwksUri("http://127.0.0.1:9100/jwks.json".into())
    );
    assert_eq!(issuer.algorithms, ["RS256", "ES256"]);

    let [upstream] = config.dynamic.upstreams.as_slice() else {
        panic!("one upstream")
    };
    assert_eq!(upstream.targets, ["http://127.0.0.1:9000"]);
    assert_eq!(upstream.host_header, HostHeader::Preserve);

    let [health, api] = config.dynamic.routes.as_slice() else {
        panic!("two routes")
    };
    assert_eq!(health.matcher.path, PathMatch::Exact("/health".into()));
    assert_eq!(health.matcher.methods, ["GET"]);
    assert!(health.jwt.is_none() && health.rate_limit.is_none());
    // The introspector and its route are commented out.
    assert!(config.dynamic.introspectors.is_empty());
    assert!(api.introspection.is_none() && api.inspect.is_none() && !api.repair);

    assert_eq!(api.matcher.path, PathMatch::Prefix("/api".into()));
    let jwt = api.jwt.as_ref().unwrap();
    assert_eq!(jwt.issuers, ["dev"]);
    assert_eq!(jwt.scopes, ScopeRule::AllOf(vec!["api.read".into()]));
    assert_eq!(
        jwt.claims,
        [
            ClaimCondition {
                claim: "tenant".into(),
                test: ClaimTest::Equals("acme".into()),
            },
            ClaimCondition {
                claim: "roles".into(),
                test: ClaimTest::OneOf(vec!["admin".into(), "ops".into()]),
            },
            ClaimCondition {
                claim: "email".into(),
                test: ClaimTest::Present,
            },
        ]
    );
    assert_eq!(
        api.rate_limit,
        Some(RateLimit {
            key: RateKey::ClientId,
            requests: 100,
            per: Duration::from_secs(1),
            burst: 200,
        })
    );
    assert_eq!(
        api.headers.request_add,
        [("X-Forwarded-By".to_owned(), "gatewise".to_owned())]
    );
    assert_eq!(api.headers.response_remove, ["Server"]);
}

/// Every commented-out line of the example is valid too, once uncommented
/// (one key source and one token query at a time aside).
#[test]
fn example_with_its_optional_lines_uncommented_compiles() {
    let text = support::example_with_optional_lines();
    assert_ne!(text, EXAMPLE);
    let compiled = support::ok(&text);
    // The CA file is only used with https targets, which the example has not.
    let warnings: Vec<String> = compiled.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        warnings,
        ["51:11: upstreams[0].ca_file: no target uses https, so the CA file is not used"]
    );
    let config = compiled.config;
    assert_eq!(
        config.static_config.tls.unwrap().certificates[0].cert,
        std::path::Path::new("certs/api.example.com.pem")
    );
    assert!(config.dynamic.upstreams[0].health_check.is_some());
    assert_eq!(
        config.dynamic.routes[1].matcher.host.as_deref(),
        Some("api.example.com")
    );
    assert_eq!(
        config.dynamic.routes[1]
            .jwt
            .as_ref()
            .unwrap()
            .token_sources
            .len(),
        2
    );
    assert_eq!(config.dynamic.routes[1].inspect, Some(Inspect::Token));
    assert!(config.dynamic.routes[1].repair);
}

/// The commented-out introspector and the route that uses it, once
/// uncommented, mean what their comments say.
#[test]
fn example_introspection_compiles_and_matches_its_comments() {
    let text = support::example_with_optional_lines();
    let config = support::ok(&text).config;

    let [introspector] = config.dynamic.introspectors.as_slice() else {
        panic!("one introspector")
    };
    assert_eq!(introspector.name, "main");
    assert_eq!(
        introspector.endpoint,
        "https://as.example.com/oauth2/introspect"
    );
    assert_eq!(introspector.client_id, "gateway");
    assert_eq!(
        introspector.client_secret,
        SecretRef::Env("GATEWISE_INTROSPECTION_SECRET".into())
    );
    assert_eq!(introspector.auth, ClientAuth::Basic);
    assert_eq!(
        (
            introspector.cache_ttl,
            introspector.negative_ttl,
            introspector.timeout
        ),
        (
            Duration::from_secs(60),
            Duration::from_secs(10),
            Duration::from_secs(3)
        )
    );

    let [_, _, legacy] = config.dynamic.routes.as_slice() else {
        panic!("three routes")
    };
    assert_eq!(legacy.name, "legacy");
    assert_eq!(legacy.matcher.path, PathMatch::Prefix("/legacy".into()));
    assert!(legacy.jwt.is_none());
    assert_eq!(
        legacy.introspection,
        Some(IntrospectionPolicy {
            introspector: "main".into(),
            audiences: vec!["https://api.example.com".into()],
            scopes: ScopeRule::AnyOf(vec!["api.read".into(), "api.admin".into()]),
            token_sources: vec![TokenSource::Cookie("access_token".into())],
            forward_claims: true,
            strip_authorization: true,
        })
    );
    assert_eq!(
        legacy.rate_limit.as_ref().map(|l| &l.key),
        Some(&RateKey::Subject)
    );
}
