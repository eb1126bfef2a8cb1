//! The compiled, validated configuration the rest of gatewise runs on.
//!
//! Every value here has been checked: names resolve, durations are positive,
//! lists that must not be empty are not. Consumers never re-validate.
//! `StaticConfig` needs a restart to change; `DynamicConfig` can be swapped
//! by a hot reload.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// What needs a restart to change.
    pub static_config: StaticConfig,
    /// What a reload can change.
    pub dynamic: DynamicConfig,
}

/// Listener and process settings (restart required to change).
#[derive(Debug, Clone, PartialEq)]
pub struct StaticConfig {
    /// Where the proxy listens (`server.listen`, default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// TLS termination; plain HTTP (h1 and h2c) when `None`.
    pub tls: Option<TlsConfig>,
    /// Time allowed to read the request head (slowloris guard, default 10 s).
    pub header_read_timeout: Duration,
    /// Largest request head in bytes (default 16 KiB, at most 1 MiB).
    pub max_header_bytes: usize,
    /// Deadline for in-flight requests at shutdown (default 30 s).
    pub shutdown_grace: Duration,
    /// The call log (`[call_log]`).
    pub call_log: CallLogConfig,
    /// The admin API and dashboard (`[admin]`).
    pub admin: AdminConfig,
    /// Export to an observability backend (`[telemetry]`).
    pub telemetry: TelemetryConfig,
}

/// Export to an observability backend (`[telemetry]`, restart required to
/// change).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TelemetryConfig {
    /// OpenTelemetry traces over OTLP/HTTP (`[telemetry.otlp]`); off when
    /// `None`.
    pub otlp: Option<OtlpConfig>,
}

/// OpenTelemetry trace export over OTLP/HTTP (`[telemetry.otlp]`): one
/// SERVER span per sampled call (and a CLIENT span for its upstream call),
/// built from the call record off the request path.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpConfig {
    /// The traces URL spans are POSTed to: the configured `endpoint` with
    /// `/v1/traces` appended (OTLP/HTTP's default path), unless it already
    /// ends with it.
    pub traces_url: String,
    /// Headers sent with every export, in file order (`headers`, then
    /// `headers_env`).
    pub headers: Vec<(String, OtlpHeaderValue)>,
    /// Deadline of one export request (default 10 s).
    pub timeout: Duration,
    /// The `service.name` resource attribute (default `gatewise`).
    pub service_name: String,
    /// Probability that a trace the gateway starts is sampled (0 to 1,
    /// default 1); a client's `sampled` flag is always followed.
    pub sample_ratio: f64,
    /// Spans waiting for export; past it new ones are dropped and counted
    /// (default 2048).
    pub queue: usize,
}

/// The value of an export header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OtlpHeaderValue {
    /// Written in the file (`headers`): not a secret.
    Literal(String),
    /// From an environment variable (`headers_env`): may be a secret, never
    /// logged.
    Secret(SecretRef),
}

/// The admin listener (`[admin]`): the call log's API, the dashboard,
/// state, metrics, `/live` and `/ready` (restart required to change).
#[derive(Debug, Clone, PartialEq)]
pub struct AdminConfig {
    /// Whether the admin listener runs (default true).
    pub enabled: bool,
    /// Where it listens (default `127.0.0.1:9901`).
    pub listen: SocketAddr,
    /// The bearer token callers must send; required when `listen` is not
    /// a loopback address.
    pub token: Option<SecretRef>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], defaults::DEFAULT_ADMIN_PORT)),
            token: None,
        }
    }
}

impl AdminConfig {
    /// No admin listener (embedding, tests).
    pub fn disabled() -> Self {
        AdminConfig {
            enabled: false,
            ..AdminConfig::default()
        }
    }
}

/// The call log (`[call_log]`): one record per request, with its decision
/// trace, in an embedded SQLite file (restart required to change).
#[derive(Debug, Clone, PartialEq)]
pub struct CallLogConfig {
    /// Whether calls are recorded (default true).
    pub enabled: bool,
    /// The SQLite file (default `gatewise-data/calls.db`, relative to the
    /// working directory like every path in the file).
    pub path: PathBuf,
    /// Where records go while the database is unavailable (default
    /// `gatewise-data/spool`).
    pub spool_dir: PathBuf,
    /// Calls older than this are deleted (default 7 days).
    pub max_age: Duration,
    /// The log is kept under this size (default 1 GiB).
    pub max_bytes: u64,
    /// The spool's size limit; past it records are dropped, loudly
    /// (default 1 GiB).
    pub spool_max_bytes: u64,
    /// Records held in memory on their way to the database (default 65,536).
    pub queue: usize,
    /// Bytes (encoded records) held in memory on their way to the database;
    /// past it records are dropped (default 64 MiB, at least 1 MiB).
    pub queue_max_bytes: u64,
    /// Most records per database transaction (default 1,000; 1 to 100,000).
    pub batch_size: usize,
    /// Longest a record waits in memory for the writer thread (default
    /// 100 ms; 5 ms to 10 s).
    pub batch_wait: Duration,
    /// Run the indexer (the thread that writes to the database) at
    /// background CPU priority (default true).
    pub background_indexer: bool,
    /// Wait with indexing while the CPUs are busy, leaving records in the
    /// spool (default true; false: never wait).
    pub index_when_idle: bool,
    /// With `index_when_idle`: index only while the CPUs were idle at least
    /// this fraction of the time (default 0.25; more than 0, at most 1).
    pub index_min_idle: f64,
    /// Keep query strings in recorded paths (default false: they may carry
    /// secrets).
    pub keep_query: bool,
    /// Store calls in PostgreSQL instead of the SQLite file (`path` is then
    /// unused; the spool stays local).
    pub postgres: Option<PostgresUrl>,
}

/// Where the PostgreSQL URL of the call log comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostgresUrl {
    /// Written in the file (`postgres_url`): checked to carry no password.
    Url(String),
    /// From an environment variable or a file (`postgres_url_env`,
    /// `postgres_url_file`), password included.
    Secret(SecretRef),
}

impl Default for CallLogConfig {
    fn default() -> Self {
        CallLogConfig {
            enabled: true,
            path: PathBuf::from(defaults::DEFAULT_CALL_LOG_PATH),
            spool_dir: PathBuf::from(defaults::DEFAULT_CALL_LOG_SPOOL_DIR),
            max_age: defaults::DEFAULT_CALL_LOG_MAX_AGE,
            max_bytes: defaults::DEFAULT_CALL_LOG_MAX_BYTES,
            spool_max_bytes: defaults::DEFAULT_CALL_LOG_SPOOL_MAX_BYTES,
            queue: defaults::DEFAULT_CALL_LOG_QUEUE,
            queue_max_bytes: defaults::DEFAULT_CALL_LOG_QUEUE_MAX_BYTES,
            batch_size: defaults::DEFAULT_CALL_LOG_BATCH_SIZE,
            batch_wait: defaults::DEFAULT_CALL_LOG_BATCH_WAIT,
            background_indexer: true,
            index_when_idle: true,
            index_min_idle: defaults::DEFAULT_CALL_LOG_INDEX_MIN_IDLE,
            keep_query: false,
            postgres: None,
        }
    }
}

impl CallLogConfig {
    /// No call log (embedding, tests that do not look at it).
    pub fn disabled() -> Self {
        CallLogConfig {
            enabled: false,
            ..CallLogConfig::default()
        }
    }
}

impl StaticConfig {
    /// Plain HTTP on `listen` with the documented defaults (10 s header
    /// read timeout, 16 KiB heads, 30 s shutdown grace), no call log, no
    /// admin listener and no trace export:
    /// for embedding the gateway (the demo, tests), which attach their own.
    pub fn local(listen: SocketAddr) -> StaticConfig {
        StaticConfig {
            listen,
            tls: None,
            header_read_timeout: defaults::DEFAULT_HEADER_READ_TIMEOUT,
            max_header_bytes: usize::try_from(defaults::DEFAULT_MAX_HEADER_BYTES)
                .unwrap_or(16 * 1024),
            shutdown_grace: defaults::DEFAULT_SHUTDOWN_GRACE,
            call_log: CallLogConfig::disabled(),
            admin: AdminConfig::disabled(),
            telemetry: TelemetryConfig::default(),
        }
    }
}

/// TLS termination (`server.tls`).
#[derive(Debug, Clone, PartialEq)]
pub struct TlsConfig {
    /// Certificates; the first is the default, others are chosen by SNI.
    pub certificates: Vec<CertificateFiles>,
}

/// One certificate chain and its key (PEM files).
#[derive(Debug, Clone, PartialEq)]
pub struct CertificateFiles {
    /// PEM chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// Routes, upstreams and issuers (hot-reloadable).
#[derive(Debug, Clone, PartialEq)]
pub struct DynamicConfig {
    /// Token issuers, by name.
    pub issuers: Vec<Issuer>,
    /// Upstream pools, by name.
    pub upstreams: Vec<Upstream>,
    /// Routes, in file order (matching picks the most specific, not the first).
    pub routes: Vec<Route>,
    /// RFC 7662 introspection endpoints, by name.
    pub introspectors: Vec<Introspector>,
    /// Largest request body forwarded, in bytes (`server.max_body_bytes`, default 10 MiB).
    pub max_body_bytes: u64,
}

/// An OAuth issuer whose tokens routes accept (`[[issuers]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Issuer {
    /// Name routes refer to.
    pub name: String,
    /// The exact `iss` value tokens must carry.
    pub issuer: String,
    /// Where the keys come from.
    pub keys: KeySource,
    /// Accepted JWS algorithms (default `["RS256"]`); never `none`, never
    /// empty. HS* only with a `secret` key source.
    pub algorithms: Vec<String>,
    /// Leeway on `exp`/`nbf`/`iat` (default 60 s; may be zero).
    pub leeway: Duration,
    /// Upper bound on how long fetched keys are used without a refetch,
    /// whatever `Cache-Control` says (default 1 h).
    pub jwks_max_age: Duration,
    /// Smallest interval between two refetches caused by unknown `kid`s
    /// (default 10 s).
    pub jwks_refetch_interval: Duration,
    /// How long an unknown `kid` is remembered as unknown (default 30 s).
    pub unknown_kid_ttl: Duration,
}

/// Where an issuer's verification keys come from.
#[derive(Debug, Clone, PartialEq)]
pub enum KeySource {
    /// OpenID Connect / RFC 8414 discovery: the JWKS URL is read from the
    /// metadata at this URL (`discovery = "..."`).
    Discovery(String),
    /// A JWKS URL (`jwks_uri = "..."`).
    JwksUri(String),
    /// A JWKS file, read at load and at reload (`jwks_file = "..."`).
    JwksFile(PathBuf),
}

/// An upstream pool (`[[upstreams]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    /// Name routes refer to.
    pub name: String,
    /// Targets as `http://host:port` or `https://host:port` base URLs; not empty.
    /// Normalized: the port is always written (80/443 when the file left it
    /// out) and the host is lower-case.
    pub targets: Vec<String>,
    /// How a target is picked.
    pub balance: Balance,
    /// TCP (and TLS) connect timeout (default 2 s).
    pub connect_timeout: Duration,
    /// Time to the response head after the request was sent (default 30 s).
    pub first_byte_timeout: Duration,
    /// Whole-exchange timeout (default 60 s).
    pub total_timeout: Duration,
    /// Retries for idempotent requests that failed before any body was sent (default 1).
    pub retries: u32,
    /// Active health check, when configured.
    pub health_check: Option<HealthCheck>,
    /// Consecutive failures that eject a target for `eject_for` (default 5).
    pub eject_after: u32,
    /// How long an ejected target is skipped (default 30 s).
    pub eject_for: Duration,
    /// Extra CA certificate (PEM) trusted for `https` targets.
    pub ca_file: Option<PathBuf>,
    /// What `Host` header the upstream sees.
    pub host_header: HostHeader,
}

/// Load-balancing policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// `round_robin` (default).
    RoundRobin,
    /// `least_requests`: the target with the fewest requests in flight.
    LeastRequests,
}

/// `Host` sent upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostHeader {
    /// `preserve`: the client's `Host` (default).
    Preserve,
    /// `target`: the target's authority.
    Target,
    /// Any other string: that value.
    Fixed(String),
}

/// Active HTTP health check.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    /// Path requested with GET.
    pub path: String,
    /// Interval between checks (default 5 s).
    pub interval: Duration,
    /// Per-check timeout (default 2 s).
    pub timeout: Duration,
}

/// A route (`[[routes]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Name for logs and metrics (default `routes[N]`).
    pub name: String,
    /// What requests it takes.
    pub matcher: RouteMatch,
    /// Upstream pool name (resolved: it exists).
    pub upstream: String,
    /// Remove the matched prefix before forwarding (default false).
    pub strip_prefix: bool,
    /// JWT policy, when the route requires tokens checked locally.
    pub jwt: Option<JwtPolicy>,
    /// Introspection policy, when the route takes opaque tokens (never
    /// together with `jwt`).
    pub introspection: Option<IntrospectionPolicy>,
    /// Rate limit, when configured.
    pub rate_limit: Option<RateLimit>,
    /// Header transforms.
    pub headers: HeaderRules,
    /// Judge upstream responses of this kind with the doctor's rules
    /// (`inspect = "token" | "discovery" | "jwks" | "introspection"`).
    pub inspect: Option<Inspect>,
    /// With `inspect = "token"`: repair what clients choke on (a
    /// form-encoded body turned into JSON, `expires_in` strings into
    /// numbers), recording each repair (`repair = true`; default false).
    pub repair: bool,
}

/// An RFC 7662 introspection endpoint (`[[introspectors]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Introspector {
    /// Name routes refer to.
    pub name: String,
    /// The introspection endpoint URL (http or https).
    pub endpoint: String,
    /// The gateway's client id at the authorization server.
    pub client_id: String,
    /// Where the client secret is (never the secret itself in the file).
    pub client_secret: SecretRef,
    /// How the gateway authenticates (default `client_secret_basic`).
    pub auth: ClientAuth,
    /// Upper bound on caching an active result (also bounded by the token's
    /// `exp`; default 60 s).
    pub cache_ttl: Duration,
    /// How long an inactive result is cached (default 10 s).
    pub negative_ttl: Duration,
    /// Timeout of one introspection call (default 3 s).
    pub timeout: Duration,
}

/// A reference to a secret, resolved when the gateway starts or reloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `client_secret_env = "VAR"`: an environment variable.
    Env(String),
    /// `client_secret_file = "path"`: a file (trailing newline trimmed).
    File(PathBuf),
}

/// Client authentication at the introspection endpoint (RFC 7662 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_secret_basic` (RFC 6749 §2.3.1, form-urlencoded before Base64).
    Basic,
    /// `client_secret_post`.
    Post,
}

/// Introspection policy of a route (`[routes.introspection]`).
#[derive(Debug, Clone, PartialEq)]
pub struct IntrospectionPolicy {
    /// Introspector name (resolved: it exists).
    pub introspector: String,
    /// `aud` of the introspection result must hold one of these; not
    /// checked when empty.
    pub audiences: Vec<String>,
    /// Scope requirement, checked on cache hits too.
    pub scopes: ScopeRule,
    /// Where the token may come from besides the header.
    pub token_sources: Vec<TokenSource>,
    /// Forward `X-Auth-*` identity headers (default true).
    pub forward_claims: bool,
    /// Remove `Authorization` before forwarding (default false).
    pub strip_authorization: bool,
}

/// What the exchange inspector expects an upstream response to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inspect {
    /// A token endpoint response.
    Token,
    /// A discovery document.
    Discovery,
    /// A JWK Set.
    Jwks,
    /// An introspection response.
    Introspection,
}

/// What a route matches. Specificity: host beats no host, exact path beats
/// prefix, longer prefix beats shorter, a method list beats any method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// Exact host (case-insensitive, port ignored); any host when `None`.
    /// Normalized to lower case (internationalized names in punycode).
    pub host: Option<String>,
    /// Path rule.
    pub path: PathMatch,
    /// Methods (upper case); any method when empty.
    pub methods: Vec<String>,
}

/// Path rule of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// `path = "/x"`: exactly this path.
    Exact(String),
    /// `path_prefix = "/x"`: this path and anything below it on a segment
    /// boundary (`/x`, `/x/`, `/x/y`, not `/xy`).
    Prefix(String),
}

/// JWT access-token policy of a route (`[routes.jwt]`).
#[derive(Debug, Clone, PartialEq)]
pub struct JwtPolicy {
    /// Issuer names accepted (resolved: each exists); not empty.
    pub issuers: Vec<String>,
    /// `aud` must hold one of these; not empty.
    pub audiences: Vec<String>,
    /// Require RFC 9068 `typ: at+jwt` (default false).
    pub require_at_jwt: bool,
    /// Scope requirement.
    pub scopes: ScopeRule,
    /// Conditions on other claims, all of which must hold.
    pub claims: Vec<ClaimCondition>,
    /// Where the token may come from (the header is always allowed).
    pub token_sources: Vec<TokenSource>,
    /// Forward `X-Auth-Subject`, `X-Auth-Client-Id`, `X-Auth-Scopes` upstream (default true).
    pub forward_claims: bool,
    /// Remove `Authorization` before forwarding (default false).
    pub strip_authorization: bool,
}

/// Required scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeRule {
    /// No requirement.
    None,
    /// Every one of these.
    AllOf(Vec<String>),
    /// At least one of these.
    AnyOf(Vec<String>),
}

/// A condition on a claim (`claims = [{ claim = "tenant", equals = "acme" }]`).
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimCondition {
    /// Claim name (top-level).
    pub claim: String,
    /// What must hold.
    pub test: ClaimTest,
}

/// What a claim condition checks.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimTest {
    /// The claim equals this JSON value (or, for an array claim, contains it).
    Equals(serde_json::Value),
    /// The claim is one of these values.
    OneOf(Vec<serde_json::Value>),
    /// The claim is present.
    Present,
}

/// Where a bearer token may be read from besides `Authorization: Bearer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// A cookie of this name (explicit opt-in).
    Cookie(String),
    /// A query parameter of this name (explicit opt-in; RFC 6750 §2.3 discourages it).
    Query(String),
}

/// Rate limit of a route (`[routes.rate_limit]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    /// What the limit is counted per.
    pub key: RateKey,
    /// Sustained requests per period.
    pub requests: u32,
    /// The period (`per = "1s"`, `"1m"`).
    pub per: Duration,
    /// Burst above the sustained rate (default = `requests`).
    pub burst: u32,
}

/// Key of a rate limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateKey {
    /// The token's `client_id` (or `azp`); needs a `jwt` or an
    /// `introspection` policy (then it is the introspection result's).
    ClientId,
    /// The token's `sub`; needs a `jwt` or an `introspection` policy.
    Subject,
    /// The client IP.
    ClientIp,
    /// A request header's value.
    Header(String),
}

/// Header transforms (`[routes.headers]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderRules {
    /// Request headers appended.
    pub request_add: Vec<(String, String)>,
    /// Request headers set (replacing).
    pub request_set: Vec<(String, String)>,
    /// Request headers removed.
    pub request_remove: Vec<String>,
    /// Response headers appended.
    pub response_add: Vec<(String, String)>,
    /// Response headers set (replacing).
    pub response_set: Vec<(String, String)>,
    /// Response headers removed.
    pub response_remove: Vec<String>,
}

/// The defaults of the file format, in one place (the compiler and the
/// constructors below use them; docs/config.md lists them).
pub mod defaults {
    use std::time::Duration;

    /// Default port of `admin.listen` (on 127.0.0.1).
    pub const DEFAULT_ADMIN_PORT: u16 = 9901;
    /// Default of `call_log.path`.
    pub const DEFAULT_CALL_LOG_PATH: &str = "gatewise-data/calls.db";
    /// Default of `call_log.spool_dir`.
    pub const DEFAULT_CALL_LOG_SPOOL_DIR: &str = "gatewise-data/spool";
    /// Default of `call_log.max_age`.
    pub const DEFAULT_CALL_LOG_MAX_AGE: Duration = Duration::from_secs(7 * 86_400);
    /// Default of `call_log.max_size`.
    pub const DEFAULT_CALL_LOG_MAX_BYTES: u64 = 1 << 30;
    /// Default of `call_log.spool_max_size`.
    pub const DEFAULT_CALL_LOG_SPOOL_MAX_BYTES: u64 = 1 << 30;
    /// Default of `call_log.queue`.
    pub const DEFAULT_CALL_LOG_QUEUE: usize = 65_536;
    /// Default of `call_log.queue_max_size`.
    pub const DEFAULT_CALL_LOG_QUEUE_MAX_BYTES: u64 = 64 << 20;
    /// Default of `call_log.batch_size`.
    pub const DEFAULT_CALL_LOG_BATCH_SIZE: usize = 1_000;
    /// Default of `call_log.batch_wait`.
    pub const DEFAULT_CALL_LOG_BATCH_WAIT: Duration = Duration::from_millis(100);
    /// Default of `call_log.index_min_idle`.
    pub const DEFAULT_CALL_LOG_INDEX_MIN_IDLE: f64 = 0.25;
    /// Default of `telemetry.otlp.timeout`.
    pub const DEFAULT_OTLP_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default of `telemetry.otlp.service_name`.
    pub const DEFAULT_OTLP_SERVICE_NAME: &str = "gatewise";
    /// Default of `telemetry.otlp.queue`.
    pub const DEFAULT_OTLP_QUEUE: usize = 2048;
    /// Default of `server.listen`.
    pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
    /// Default of `server.header_read_timeout`.
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default of `server.max_header_bytes`.
    pub const DEFAULT_MAX_HEADER_BYTES: u64 = 16 * 1024;
    /// Default of `server.max_body_bytes`.
    pub const DEFAULT_MAX_BODY_BYTES: u64 = 10 * 1024 * 1024;
    /// Default of `server.shutdown_grace`.
    pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
    /// Default of `issuers[].algorithms` when absent.
    pub const DEFAULT_ALGORITHM: &str = "RS256";
    /// Default of `issuers[].leeway`.
    pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
    /// Default of `issuers[].jwks_max_age`.
    pub const DEFAULT_JWKS_MAX_AGE: Duration = Duration::from_secs(3600);
    /// Default of `issuers[].jwks_refetch_interval`.
    pub const DEFAULT_JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
    /// Default of `issuers[].unknown_kid_ttl`.
    pub const DEFAULT_UNKNOWN_KID_TTL: Duration = Duration::from_secs(30);
    /// Default of `introspectors[].cache_ttl`.
    pub const DEFAULT_INTROSPECTION_CACHE_TTL: Duration = Duration::from_secs(60);
    /// Default of `introspectors[].negative_ttl`.
    pub const DEFAULT_INTROSPECTION_NEGATIVE_TTL: Duration = Duration::from_secs(10);
    /// Default of `introspectors[].timeout`.
    pub const DEFAULT_INTROSPECTION_TIMEOUT: Duration = Duration::from_secs(3);
    /// Default of `upstreams[].connect_timeout`.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
    /// Default of `upstreams[].first_byte_timeout`.
    pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default of `upstreams[].total_timeout`.
    pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(60);
    /// Default of `upstreams[].retries`.
    pub const DEFAULT_RETRIES: u32 = 1;
    /// Default of `upstreams[].eject_after`.
    pub const DEFAULT_EJECT_AFTER: u32 = 5;
    /// Default of `upstreams[].eject_for`.
    pub const DEFAULT_EJECT_FOR: Duration = Duration::from_secs(30);
    /// Default of `upstreams[].health_check.interval`.
    pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(5);
    /// Default of `upstreams[].health_check.timeout`.
    pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
}

impl Upstream {
    /// A pool of `targets` (`http(s)://host:port`) with every default.
    pub fn new(name: &str, targets: Vec<String>) -> Upstream {
        use defaults::*;
        Upstream {
            name: name.to_owned(),
            targets,
            balance: Balance::RoundRobin,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            first_byte_timeout: DEFAULT_FIRST_BYTE_TIMEOUT,
            total_timeout: DEFAULT_TOTAL_TIMEOUT,
            retries: DEFAULT_RETRIES,
            health_check: None,
            eject_after: DEFAULT_EJECT_AFTER,
            eject_for: DEFAULT_EJECT_FOR,
            ca_file: None,
            host_header: HostHeader::Preserve,
        }
    }
}

impl Route {
    /// A route to `upstream` with no policy and no transforms.
    pub fn new(name: &str, path: PathMatch, upstream: &str) -> Route {
        Route {
            name: name.to_owned(),
            matcher: RouteMatch {
                host: None,
                path,
                methods: Vec::new(),
            },
            upstream: upstream.to_owned(),
            strip_prefix: false,
            jwt: None,
            introspection: None,
            rate_limit: None,
            headers: HeaderRules::default(),
            inspect: None,
            repair: false,
        }
    }
}

impl Issuer {
    /// An issuer whose tokens carry `iss` = `issuer`, with keys from `keys`
    /// and every default.
    pub fn new(name: &str, issuer: &str, keys: KeySource) -> Issuer {
        use defaults::*;
        Issuer {
            name: name.to_owned(),
            issuer: issuer.to_owned(),
            keys,
            algorithms: vec![DEFAULT_ALGORITHM.to_owned()],
            leeway: DEFAULT_LEEWAY,
            jwks_max_age: DEFAULT_JWKS_MAX_AGE,
            jwks_refetch_interval: DEFAULT_JWKS_REFETCH_INTERVAL,
            unknown_kid_ttl: DEFAULT_UNKNOWN_KID_TTL,
        }
    }
}

impl Default for DynamicConfig {
    /// No issuers, upstreams, routes or introspectors; the default body limit.
    fn default() -> Self {
        DynamicConfig {
            issuers: Vec::new(),
            upstreams: Vec::new(),
            routes: Vec::new(),
            introspectors: Vec::new(),
            max_body_bytes: defaults::DEFAULT_MAX_BODY_BYTES,
        }
    }
}
