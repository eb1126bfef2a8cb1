//! What an omitted key means: the defaults documented on the model and in
//! `docs/config.md`.

mod support;

use std::time::Duration;

use gatewise_config::model::{
    AdminConfig, Balance, CallLogConfig, ClientAuth, Config, DynamicConfig, HeaderRules,
    HostHeader, Inspect, IntrospectionPolicy, Introspector, Issuer, JwtPolicy, KeySource,
    PathMatch, RateKey, RateLimit, Route, RouteMatch, ScopeRule, SecretRef, StaticConfig,
    TelemetryConfig, TokenSource, Upstream,
};
use gatewise_config::{compile, restart_required};

const MINIMAL: &str = r#"
[[issuers]]
name = "main"
issuer = "https://as.example.com"
discovery = "https://as.example.com/.well-known/openid-configuration"

[[upstreams]]
name = "api"
targets = ["http://127.0.0.1:9000", "https://Backend.example.com"]

[[routes]]
path_prefix = "/"
upstream = "api"
[routes.jwt]
issuers = ["main"]
audiences = ["api"]
[routes.rate_limit]
key = "client_ip"
requests = 10
per = "1s"
"#;

#[test]
fn omitted_keys_take_their_defaults() {
    let compiled = support::ok(MINIMAL);
    assert_eq!(compiled.warnings, []);
    let expected = Config {
        static_config: StaticConfig {
            listen: "127.0.0.1:8080".parse().unwrap(),
            tls: None,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            shutdown_grace: Duration::from_secs(30),
            call_log: CallLogConfig {
                enabled: true,
                path: "gatewise-data/calls.db".into(),
                spool_dir: "gatewise-data/spool".into(),
                max_age: Duration::from_secs(7 * 86_400),
                max_bytes: 1 << 30,
                spool_max_bytes: 1 << 30,
                queue: 65_536,
                queue_max_bytes: 64 << 20,
                batch_size: 1000,
                batch_wait: Duration::from_millis(100),
                background_indexer: true,
                index_when_idle: true,
                index_min_idle: 0.25,
                keep_query: false,
                postgres: None,
            },
            admin: AdminConfig {
                enabled: true,
                listen: "127.0.0.1:9901".parse().unwrap(),
                token: None,
            },
            telemetry: TelemetryConfig { otlp: None },
        },
        dynamic: DynamicConfig {
            issuers: vec![Issuer {
                name: "main".into(),
                issuer: "https://as.example.com".into(),
                keys: KeySource::Discovery(
                    "https://as.example.com/.well-known/openid-configuration".into(),
                ),
                algorithms: vec!["RS256".into()],
                leeway: Duration::from_secs(60),
                jwks_max_age: Duration::from_secs(3600),
                jwks_refetch_interval: Duration::from_secs(10),
                unknown_kid_ttl: Duration::from_secs(30),
            }],
            upstreams: vec![Upstream {
                name: "api".into(),
                // Normalized to scheme://host:port.
                targets: vec![
                    "http://127.0.0.1:9000".into(),
                    "https://backend.example.com:443".into(),
                ],
                balance: Balance::RoundRobin,
                connect_timeout: Duration::from_secs(2),
                first_byte_timeout: Duration::from_secs(30),
                total_timeout: Duration::from_secs(60),
                retries: 1,
                health_check: None,
                eject_after: 5,
                eject_for: Duration::from_secs(30),
                ca_file: None,
                host_header: HostHeader::Preserve,
            }],
            routes: vec![Route {
                name: "routes[0]".into(),
                matcher: RouteMatch {
                    host: None,
                    path: PathMatch::Prefix("/".into()),
                    methods: vec![],
                },
                upstream: "api".into(),
                strip_prefix: false,
                jwt: Some(JwtPolicy {
                    issuers: vec!["main".into()],
                    audiences: vec!["api".into()],
                    require_at_jwt: false,
                    scopes: ScopeRule::None,
                    claims: vec![],
                    token_sources: vec![],
                    forward_claims: true,
                    strip_authorization: false,
                }),
                introspection: None,
                rate_limit: Some(RateLimit {
                    key: RateKey::ClientIp,
                    requests: 10,
                    per: Duration::from_secs(1),
                    burst: 10,
                }),
                headers: HeaderRules::default(),
                inspect: None,
                repair: false,
            }],
            introspectors: vec![],
            max_body_bytes: 10 * 1024 * 1024,
        },
    };
    assert_eq!(compiled.config, expected);
}

/// The writer's knobs: defaults, and values given.
#[test]
fn call_log_writer_settings() {
    let d = compile("").unwrap().config.static_config.call_log;
    assert_eq!(
        (d.queue_max_bytes, d.batch_size, d.batch_wait),
        (64 << 20, 1000, Duration::from_millis(100))
    );
    assert!(d.background_indexer && d.index_when_idle);
    assert_eq!(d.index_min_idle, 0.25);
    assert_eq!(d, CallLogConfig::default());

    let c = support::ok(&format!(
        "{MINIMAL}\n[call_log]\nqueue_max_size = \"16MiB\"\nbatch_size = 250\nbatch_wait = \"20ms\"\n\
         background_indexer = false\nindex_min_idle = 0.5\n",
    ));
    assert_eq!(c.warnings, []);
    let l = c.config.static_config.call_log;
    assert_eq!(l.queue_max_bytes, 16 << 20);
    assert_eq!(l.batch_size, 250);
    assert_eq!(l.batch_wait, Duration::from_millis(20));
    assert!(!l.background_indexer && l.index_when_idle);
    assert_eq!(l.index_min_idle, 0.5);

    // The bounds themselves; an integer is a fraction too.
    let c = support::ok(&format!(
        "{MINIMAL}\n[call_log]\nqueue_max_size = 1048576\nbatch_size = 100000\nbatch_wait = \"10s\"\n\
         index_min_idle = 1\n",
    ));
    let l = c.config.static_config.call_log;
    assert_eq!(
        (
            l.queue_max_bytes,
            l.batch_size,
            l.batch_wait,
            l.index_min_idle
        ),
        (1 << 20, 100_000, Duration::from_secs(10), 1.0)
    );
    let l = support::ok(&format!(
        "{MINIMAL}\n[call_log]\nbatch_wait = \"5ms\"\nindex_when_idle = false\n"
    ))
    .config
    .static_config
    .call_log;
    assert_eq!(l.batch_wait, Duration::from_millis(5));
    assert!(!l.index_when_idle);
}

#[test]
fn an_empty_file_is_all_defaults() {
    let config = compile("").unwrap().config;
    assert_eq!(config.static_config.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.dynamic.max_body_bytes, 10 * 1024 * 1024);
    assert!(config.dynamic.routes.is_empty());
    assert!(config.dynamic.introspectors.is_empty());
}

/// An introspector with only its required keys, and a route that uses it
/// with only `introspector`.
#[test]
fn introspection_defaults() {
    let text = r#"
[[introspectors]]
name = "main"
endpoint = "https://as.example.com/oauth2/introspect"
client_id = "gateway"
client_secret_file = "/run/secrets/introspection"

[[upstreams]]
name = "api"
targets = ["http://127.0.0.1:9000"]

[[routes]]
path_prefix = "/legacy"
upstream = "api"
[routes.introspection]
introspector = "main"
"#;
    let compiled = support::ok(text);
    assert_eq!(compiled.warnings, []);
    let dynamic = compiled.config.dynamic;
    assert_eq!(
        dynamic.introspectors,
        [Introspector {
            name: "main".into(),
            endpoint: "https://as.example.com/oauth2/introspect".into(),
            client_id: "gateway".into(),
            client_secret: SecretRef::File("/run/secrets/introspection".into()),
            auth: ClientAuth::Basic,
            cache_ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(10),
            timeout: Duration::from_secs(3),
        }]
    );
    let route = &dynamic.routes[0];
    assert_eq!(route.jwt, None);
    assert!(!route.repair);
    assert_eq!(
        route.introspection,
        Some(IntrospectionPolicy {
            introspector: "main".into(),
            audiences: vec![],
            scopes: ScopeRule::None,
            token_sources: vec![],
            forward_claims: true,
            strip_authorization: false,
        })
    );
}

/// Every introspection key given, as in the reference.
#[test]
fn introspection_values_are_kept() {
    let text = r#"
[[introspectors]]
name = "main"
endpoint = "http://localhost:9100/introspect"
client_id = "gateway"
client_secret_env = "GATEWISE_INTROSPECTION_SECRET"
auth = "client_secret_post"
cache_ttl = "5m"
negative_ttl = "1s"
timeout = "500ms"

[[upstreams]]
name = "api"
targets = ["http://127.0.0.1:9000"]

[[routes]]
path_prefix = "/legacy"
upstream = "api"
inspect = "token"
repair = true
[routes.introspection]
introspector = "main"
audiences = []
scopes_any = ["read", "admin"]
token_cookie = "at"
token_query = "access_token"
forward_claims = false
strip_authorization = true
[routes.rate_limit]
key = "client_id"
requests = 5
per = "1s"
"#;
    // http to loopback: no warning.
    let compiled = support::ok(text);
    assert_eq!(compiled.warnings, []);
    let dynamic = compiled.config.dynamic;
    let introspector = &dynamic.introspectors[0];
    assert_eq!(
        introspector.client_secret,
        SecretRef::Env("GATEWISE_INTROSPECTION_SECRET".into())
    );
    assert_eq!(introspector.auth, ClientAuth::Post);
    assert_eq!(
        (
            introspector.cache_ttl,
            introspector.negative_ttl,
            introspector.timeout
        ),
        (
            Duration::from_secs(300),
            Duration::from_secs(1),
            Duration::from_millis(500)
        )
    );
    let route = &dynamic.routes[0];
    assert_eq!(route.inspect, Some(Inspect::Token));
    assert!(route.repair);
    assert_eq!(
        route.introspection,
        Some(IntrospectionPolicy {
            introspector: "main".into(),
            audiences: vec![],
            scopes: ScopeRule::AnyOf(vec!["read".into(), "admin".into()]),
            token_sources: vec![
                TokenSource::Cookie("at".into()),
                TokenSource::Query("access_token".into()),
            ],
            forward_claims: false,
            strip_authorization: true,
        })
    );
    assert_eq!(
        route.rate_limit.as_ref().map(|l| &l.key),
        Some(&RateKey::ClientId)
    );
}

#[test]
fn given_values_are_normalized() {
    let text = r#"
[server]
listen = "[::]:8443"
max_header_bytes = 32768
max_body_bytes = "1GiB"
header_read_timeout = "1m30s"

[[upstreams]]
name = "api"
targets = ["http://[::1]:9000"]
balance = "least_requests"
host_header = "internal.example.com:8443"
health_check = { path = "/healthz" }

[[routes]]
host = "API.Example.COM"
path = "/items"
methods = ["get", "Post"]
upstream = "api"
[routes.rate_limit]
key = "header:X-Api-Key"
requests = 5
per = "1m"
burst = 1
"#;
    let config = support::ok(text).config;
    let s = &config.static_config;
    assert_eq!(s.listen.to_string(), "[::]:8443");
    assert_eq!(s.max_header_bytes, 32 * 1024);
    assert_eq!(s.header_read_timeout, Duration::from_secs(90));
    assert_eq!(config.dynamic.max_body_bytes, 1 << 30);
    let upstream = &config.dynamic.upstreams[0];
    assert_eq!(upstream.targets, ["http://[::1]:9000"]);
    assert_eq!(upstream.balance, Balance::LeastRequests);
    assert_eq!(
        upstream.host_header,
        HostHeader::Fixed("internal.example.com:8443".into())
    );
    let health = upstream.health_check.as_ref().unwrap();
    assert_eq!(health.path, "/healthz");
    assert_eq!(
        (health.interval, health.timeout),
        (Duration::from_secs(5), Duration::from_secs(2))
    );
    let route = &config.dynamic.routes[0];
    assert_eq!(route.matcher.host.as_deref(), Some("api.example.com"));
    assert_eq!(route.matcher.path, PathMatch::Exact("/items".into()));
    assert_eq!(route.matcher.methods, ["GET", "POST"]);
    let limit = route.rate_limit.as_ref().unwrap();
    assert_eq!(limit.key, RateKey::Header("X-Api-Key".into()));
    assert_eq!(
        (limit.requests, limit.per, limit.burst),
        (5, Duration::from_secs(60), 1)
    );
}

/// A reload that changes only dynamic settings needs no restart; one that
/// changes the listener does, and says which setting.
#[test]
fn restart_required_compares_static_settings_of_two_files() {
    let old = compile(MINIMAL).unwrap().config;
    let routes_changed = compile(&MINIMAL.replace("requests = 10", "requests = 20"))
        .unwrap()
        .config;
    assert_ne!(old.dynamic, routes_changed.dynamic);
    assert!(restart_required(&old.static_config, &routes_changed.static_config).is_empty());

    let listener_changed = compile(&format!(
        "[server]\nlisten = \"0.0.0.0:8080\"\nmax_body_bytes = \"1MiB\"\n{MINIMAL}"
    ))
    .unwrap()
    .config;
    assert_eq!(
        restart_required(&old.static_config, &listener_changed.static_config),
        ["server.listen"]
    );
}
