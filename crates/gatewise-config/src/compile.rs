//! [`compile()`]: the text of `gatewise.toml` to a validated [`Config`], or
//! every mistake in it at once.
//!
//! Three passes, each reporting all it finds:
//! 1. TOML syntax (`toml`'s recovering parser). Stops here on any error.
//! 2. Types and spelling: the document is deserialized into `raw::*`. On an
//!    error the offending key is recorded, removed from the document and the
//!    deserializer runs again, so one bad value does not hide the next.
//! 3. Meaning: required keys, ranges, URLs, references between sections,
//!    route conflicts. Checks under a key that pass 2 rejected are skipped,
//!    so a mistake is reported once.
//!
//! Every error and warning carries its TOML path and the line and column of
//! the value, or of its table when the key is missing.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;
use toml::de::DeTable;

use crate::error::{ConfigError, ConfigWarning, line_column};
use crate::locate::{self, Index, Path};
use crate::model::{
    AdminConfig, CallLogConfig, OtlpConfig, OtlpHeaderValue, PostgresUrl, TelemetryConfig,
};
use crate::model::{
    Balance, CertificateFiles, ClaimCondition, ClaimTest, ClientAuth, Config, DynamicConfig,
    HeaderRules, HealthCheck, HostHeader, Inspect, IntrospectionPolicy, Introspector, Issuer,
    JwtPolicy, KeySource, PathMatch, RateKey, RateLimit, Route, RouteMatch, ScopeRule, SecretRef,
    StaticConfig, TlsConfig, TokenSource, Upstream,
};
use crate::raw::{
    ByteSize, Dur, RawAdmin, RawBalance, RawCallLog, RawClaim, RawClientAuth, RawConfig,
    RawHeaders, RawHealthCheck, RawInspect, RawIntrospection, RawIntrospector, RawIssuer, RawJwt,
    RawOtlp, RawRateLimit, RawRoute, RawServer, RawTelemetry, RawTls, RawUpstream,
};

/// A configuration that passed every check, with what looked odd about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    /// The validated configuration.
    pub config: Config,
    /// Things that are legal but probably not meant, in file order.
    pub warnings: Vec<ConfigWarning>,
}

/// Compiles the text of a `gatewise.toml` file.
///
/// On success the configuration has every default filled in and every
/// reference resolved. On failure every error found is returned, in file
/// order, each with its TOML path and 1-based line and column; warnings are
/// only returned with a successful compile.
pub fn compile(text: &str) -> Result<Compiled, Vec<ConfigError>> {
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        return Err(syntax_errors(text, &syntax));
    }
    let mut cx = Cx::new(text, Index::new(&doc));
    let Some(raw) = deserialize(&mut cx, doc) else {
        return Err(cx.into_errors());
    };
    let config = cx.config(raw);
    if cx.errors.is_empty() {
        Ok(Compiled {
            config,
            warnings: sorted(cx.warnings),
        })
    } else {
        Err(cx.into_errors())
    }
}

// === Defaults: `model::defaults` (documented there and in docs/config.md) ===

use crate::model::defaults::*;

const MIN_HEADER_BYTES: u64 = 1024;
const MAX_HEADER_BYTES: u64 = 1024 * 1024;
/// The call log and its spool need room for more than a handful of records.
const MIN_CALL_LOG_BYTES: u64 = 1024 * 1024;
/// Records are about 1 KiB in memory; 4 Mi of them is already 4 GiB.
const MAX_CALL_LOG_QUEUE: u64 = 4 * 1024 * 1024;
/// Records per database transaction: past 100,000 one transaction holds
/// the database for too long.
const MAX_CALL_LOG_BATCH: u64 = 100_000;
/// The writer's tick: shorter wakes it for nothing, longer keeps records
/// (and the admin API's view of them) waiting.
const MIN_CALL_LOG_BATCH_WAIT: Duration = Duration::from_millis(5);
const MAX_CALL_LOG_BATCH_WAIT: Duration = Duration::from_secs(10);
/// Spans are about 1 KiB in memory; past a million the exporter cannot
/// keep up anyway.
const MAX_OTLP_QUEUE: u64 = 1024 * 1024;
const WARN_LEEWAY_ABOVE: Duration = Duration::from_secs(5 * 60);
const WARN_JWKS_MAX_AGE_ABOVE: Duration = Duration::from_secs(24 * 3600);

/// JWS algorithms an issuer may list: the asymmetric ones `gatewise-core`
/// verifies (`jose::Alg`). HS* are known but refused until an issuer can
/// have a secret key source.
const ALGORITHMS: [&str; 10] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
];
const HMAC_ALGORITHMS: [&str; 3] = ["HS256", "HS384", "HS512"];

/// Headers the proxy manages itself (hop-by-hop and framing, RFC 9110
/// §7.6.1, and `Host`); header rules may not touch them.
const MANAGED_HEADERS: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
    "host",
];

/// Each deserializer error removes one key; this bounds the rounds.
const MAX_DESERIALIZE_ERRORS: usize = 100;

// === Passes 1 and 2 ===

/// Syntax errors in file order, the first of each line only: the
/// recovering parser's later errors on a line mostly follow from the first.
///
/// Pass 1 of [`compile()`], public for other TOML files read the same way
/// (with the errors of `toml::de::DeTable::parse_recoverable`).
pub fn syntax_errors(text: &str, errors: &[toml::de::Error]) -> Vec<ConfigError> {
    let mut errors: Vec<(Option<usize>, &toml::de::Error)> = errors
        .iter()
        .map(|e| (e.span().map(|s| s.start), e))
        .collect();
    errors.sort_by_key(|(offset, _)| offset.unwrap_or(usize::MAX));
    let mut lines_seen = BTreeSet::new();
    let mut out: Vec<(Option<usize>, ConfigError)> = Vec::new();
    for (offset, e) in errors {
        let (line, column) = offset.map(|o| line_column(text, o)).unzip();
        if line.is_some() && !lines_seen.insert(line) {
            continue;
        }
        out.push((
            offset,
            ConfigError {
                path: String::new(),
                line,
                column,
                message: format!("TOML syntax: {}", e.message()),
            },
        ));
    }
    sorted(out)
}

/// Deserializes the document into `raw::*`, recording each type or spelling
/// error and skipping the key it is under, until the rest deserializes.
/// `None` when an error could not be pinned to a key.
fn deserialize(cx: &mut Cx<'_>, doc: Spanned<DeTable<'_>>) -> Option<RawConfig> {
    let recovered = deserialize_recovering::<RawConfig>(cx.text, &cx.index, doc);
    cx.errors.extend(recovered.errors);
    cx.skipped.extend(recovered.skipped);
    recovered.value
}

/// What [`deserialize_recovering`] found.
#[derive(Debug)]
pub struct Recovered<T> {
    /// The value, once every offending key was skipped; `None` when an
    /// error could not be pinned to a key.
    pub value: Option<T>,
    /// Each type or spelling error, with the byte offset it was found at
    /// (for sorting), path, line and column.
    pub errors: Vec<(Option<usize>, ConfigError)>,
    /// The keys that were skipped: checks of later passes under them
    /// should be left out, so a mistake is reported once.
    pub skipped: Vec<Path>,
}

/// Pass 2 of [`compile()`] for any raw type `T` (mirroring a TOML file with
/// `deny_unknown_fields`): deserializes `doc`, recording each type or
/// spelling error and removing the key it is under, until the rest
/// deserializes. Public for other TOML files read the same way;
/// `index` is [`Index::new`] of the same document.
pub fn deserialize_recovering<T: serde::de::DeserializeOwned>(
    text: &str,
    index: &Index,
    mut doc: Spanned<DeTable<'_>>,
) -> Recovered<T> {
    let mut out = Recovered {
        value: None,
        errors: Vec::new(),
        skipped: Vec::new(),
    };
    for _ in 0..MAX_DESERIALIZE_ERRORS {
        let e = match T::deserialize(toml::de::Deserializer::from(doc.clone())) {
            Ok(raw) => {
                out.value = Some(raw);
                return out;
            }
            Err(e) => e,
        };
        let offset = e.span().map(|s| s.start);
        let path = offset.map(|o| index.path_at(o)).unwrap_or_default();
        let mut message = polish(e.message());
        if index.kind(&path) == Some("datetime") {
            // `toml` hands datetimes to serde as a table.
            message = message.replace("invalid type: table", "invalid type: datetime");
        }
        let (line, column) = offset.map(|o| line_column(text, o)).unzip();
        out.errors.push((
            offset,
            ConfigError {
                path: path.to_string(),
                line,
                column,
                message,
            },
        ));
        let skip = path.up_to_last_key();
        if skip.segs().is_empty() || !locate::remove(doc.get_mut(), &skip) {
            return out;
        }
        out.skipped.push(skip);
    }
    out
}

/// Words of the file format rather than serde's.
fn polish(message: &str) -> String {
    message
        .replace("unknown field", "unknown key")
        .replace(
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        )
        .replace("expected a sequence", "expected an array")
        .replace("expected a map", "expected a table")
        .replace("invalid type: map", "invalid type: table")
        .replace("invalid type: sequence", "invalid type: array")
        .replace("unknown variant", "unknown value")
        .replace("expected a boolean", "expected true or false")
}

fn sorted<T>(mut items: Vec<(Option<usize>, T)>) -> Vec<T> {
    items.sort_by_key(|(offset, _)| offset.unwrap_or(usize::MAX));
    items.into_iter().map(|(_, item)| item).collect()
}

// === Pass 3 ===

/// What the checks share: where things are, and what was found.
struct Cx<'t> {
    text: &'t str,
    index: Index,
    errors: Vec<(Option<usize>, ConfigError)>,
    warnings: Vec<(Option<usize>, ConfigWarning)>,
    /// Keys the deserializer rejected (and reported): nothing under them is
    /// checked again.
    skipped: Vec<Path>,
}

/// Names defined in the file, and which of them routes use.
#[derive(Default)]
struct Names {
    issuers: BTreeSet<String>,
    introspectors: BTreeSet<String>,
    upstreams: BTreeSet<String>,
    used_issuers: BTreeSet<String>,
    used_introspectors: BTreeSet<String>,
    used_upstreams: BTreeSet<String>,
}

/// A route's matcher as compared for conflicts.
struct MatcherKey<'a> {
    index: usize,
    name: &'a str,
    matcher: &'a RouteMatch,
}

impl<'t> Cx<'t> {
    fn new(text: &'t str, index: Index) -> Self {
        Cx {
            text,
            index,
            errors: Vec::new(),
            warnings: Vec::new(),
            skipped: Vec::new(),
        }
    }

    fn into_errors(self) -> Vec<ConfigError> {
        sorted(self.errors)
    }

    fn position(&self, offset: Option<usize>) -> (Option<usize>, Option<usize>) {
        offset.map(|o| line_column(self.text, o)).unzip()
    }

    fn push_error(&mut self, path: &Path, offset: Option<usize>, message: String) {
        let (line, column) = self.position(offset);
        self.errors.push((
            offset,
            ConfigError {
                path: path.to_string(),
                line,
                column,
                message,
            },
        ));
    }

    fn was_skipped(&self, path: &Path) -> bool {
        self.skipped.iter().any(|s| path.starts_with(s))
    }

    /// Reports an error at `path` (located at its value, or at its nearest
    /// ancestor in the file), unless the deserializer already rejected it.
    fn error(&mut self, path: &Path, message: impl Into<String>) {
        if self.was_skipped(path) {
            return;
        }
        let offset = self.index.offset(path);
        self.push_error(path, offset, message.into());
    }

    fn warn(&mut self, path: &Path, message: impl Into<String>) {
        let offset = self.index.offset(path);
        let (line, column) = self.position(offset);
        self.warnings.push((
            offset,
            ConfigWarning {
                path: path.to_string(),
                line,
                column,
                message: message.into(),
            },
        ));
    }

    // --- small value checks ---

    /// A required string: reports it missing or empty.
    fn required<'r>(&mut self, path: &Path, value: Option<&'r String>) -> Option<&'r str> {
        match value {
            None => {
                self.error(path, "missing required key");
                None
            }
            Some(s) => self.non_empty(path, s),
        }
    }

    fn non_empty<'r>(&mut self, path: &Path, value: &'r str) -> Option<&'r str> {
        if value.trim().is_empty() {
            self.error(path, "must not be empty");
            None
        } else {
            Some(value)
        }
    }

    /// A duration that must be greater than zero.
    fn positive(&mut self, path: &Path, value: Option<Dur>, default: Duration) -> Duration {
        let d = value.map_or(default, |d| d.0);
        if d.is_zero() {
            self.error(path, "must be greater than zero");
        }
        d
    }

    /// A size of at least 1 MiB (a call-log limit).
    fn at_least_one_mib(&mut self, path: &Path, value: Option<ByteSize>, default: u64) -> u64 {
        let bytes = value.map_or(default, |s| s.0);
        if bytes < MIN_CALL_LOG_BYTES {
            self.error(
                path,
                format!("must be at least 1MiB (1048576 bytes), not {bytes}"),
            );
        }
        bytes
    }

    /// A count from 1 to `max`; the default when missing or out of range
    /// (then an error).
    fn count_up_to(&mut self, path: &Path, value: Option<u64>, max: u64, default: usize) -> usize {
        match value {
            None => default,
            Some(n) if (1..=max).contains(&n) => usize::try_from(n).unwrap_or(default),
            Some(n) => {
                self.error(path, format!("must be between 1 and {max}, not {n}"));
                default
            }
        }
    }

    /// A list that must not be empty; missing is an error when `required`.
    /// Gives no items when missing or empty.
    fn list<'r, T>(&mut self, path: &Path, value: Option<&'r [T]>, required: bool) -> &'r [T] {
        match value {
            None if required => {
                self.error(path, "missing required key");
                &[]
            }
            None => &[],
            Some([]) => {
                self.error(path, "must not be empty");
                &[]
            }
            Some(items) => items,
        }
    }

    /// Warns about repeated entries of a list (compared as given).
    fn warn_repeats<'a>(&mut self, path: &Path, items: impl IntoIterator<Item = &'a str>) {
        let mut seen = BTreeSet::new();
        for (i, item) in items.into_iter().enumerate() {
            if !seen.insert(item) {
                self.warn(&path.index(i), format!("{item:?} is listed twice"));
            }
        }
    }

    /// An `http`/`https` URL with a host; warns on `http` to a host that
    /// is not loopback, saying what is at risk (`risk`). Returned as
    /// written, with the parsed URL when it is valid.
    fn http_url(&mut self, path: &Path, text: &str, risk: &str) -> (String, Option<url::Url>) {
        let valid = match url::Url::parse(text) {
            Err(e) => {
                self.error(path, format!("invalid URL {text:?}: {e}"));
                None
            }
            Ok(u) if !matches!(u.scheme(), "http" | "https") => {
                self.error(
                    path,
                    format!("must be an http or https URL, not {:?}", u.scheme()),
                );
                None
            }
            Ok(u) => {
                if u.scheme() == "http" && !is_loopback(&u) {
                    self.warn(
                        path,
                        format!("plain http to a host that is not loopback: {risk}, use https"),
                    );
                }
                Some(u)
            }
        };
        (text.to_owned(), valid)
    }

    /// An upstream target, normalized to `scheme://host:port`.
    fn target(&mut self, path: &Path, text: &str) -> String {
        const EXPECTED: &str = "expected http://host:port or https://host:port";
        if !text.contains("://") {
            self.error(
                path,
                format!("invalid target {text:?}: no scheme; {EXPECTED}"),
            );
            return text.to_owned();
        }
        let u = match url::Url::parse(text) {
            Ok(u) => u,
            Err(e) => {
                self.error(path, format!("invalid target {text:?}: {e}; {EXPECTED}"));
                return text.to_owned();
            }
        };
        if !matches!(u.scheme(), "http" | "https") {
            self.error(path, format!("invalid target {text:?}: {EXPECTED}"));
        } else if !u.username().is_empty() || u.password().is_some() {
            self.error(
                path,
                format!("invalid target {text:?}: must not carry credentials"),
            );
        } else if u.path() != "/" || u.query().is_some() || u.fragment().is_some() {
            self.error(
                path,
                format!("invalid target {text:?}: {EXPECTED}, without a path, query or fragment"),
            );
        } else if let (Some(host), Some(port)) = (u.host_str(), u.port_or_known_default()) {
            return format!("{}://{host}:{port}", u.scheme());
        } else {
            self.error(path, format!("invalid target {text:?}: {EXPECTED}"));
        }
        text.to_owned()
    }

    /// A header name that header rules may use.
    fn header_name(&mut self, path: &Path, name: &str) {
        if !is_token(name) {
            self.error(path, format!("invalid header name {name:?}"));
        } else if MANAGED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            let hint = if name.eq_ignore_ascii_case("host") {
                "use the upstream's `host_header`"
            } else {
                "it is managed by the proxy (hop-by-hop or framing)"
            };
            self.error(
                path,
                format!("{name:?} cannot be changed by header rules: {hint}"),
            );
        }
    }

    fn header_value(&mut self, path: &Path, value: &str) {
        if value
            .chars()
            .any(|c| (c.is_control() && c != '\t') || c == '\u{7f}')
        {
            self.error(
                path,
                "header values must not contain control characters (such as line breaks)",
            );
        } else if value.starts_with([' ', '\t']) || value.ends_with([' ', '\t']) {
            self.error(path, "header values must not start or end with whitespace");
        }
    }

    // --- sections ---

    fn config(&mut self, raw: RawConfig) -> Config {
        let (mut static_config, max_body_bytes) = self.server(raw.server.unwrap_or_default());
        static_config.call_log = self.call_log(raw.call_log.unwrap_or_default());
        static_config.admin = self.admin(raw.admin.unwrap_or_default(), static_config.listen);
        static_config.telemetry = self.telemetry(raw.telemetry.unwrap_or_default());

        let mut names = Names::default();
        let issuers_path = Path::root().key("issuers");
        let issuers: Vec<Issuer> = raw
            .issuers
            .iter()
            .enumerate()
            .map(|(i, r)| self.issuer(&issuers_path.index(i), r))
            .collect();
        self.unique_names(
            "issuer",
            &issuers_path,
            raw.issuers.iter().map(|r| r.name.as_deref()),
        );
        names.issuers = raw.issuers.iter().filter_map(|r| r.name.clone()).collect();

        let introspectors_path = Path::root().key("introspectors");
        let introspectors: Vec<Introspector> = raw
            .introspectors
            .iter()
            .enumerate()
            .map(|(i, r)| self.introspector(&introspectors_path.index(i), r))
            .collect();
        self.unique_names(
            "introspector",
            &introspectors_path,
            raw.introspectors.iter().map(|r| r.name.as_deref()),
        );
        names.introspectors = raw
            .introspectors
            .iter()
            .filter_map(|r| r.name.clone())
            .filter(|n| !n.trim().is_empty())
            .collect();

        let upstreams_path = Path::root().key("upstreams");
        let upstreams: Vec<Upstream> = raw
            .upstreams
            .iter()
            .enumerate()
            .map(|(i, r)| self.upstream(&upstreams_path.index(i), r))
            .collect();
        self.unique_names(
            "upstream",
            &upstreams_path,
            raw.upstreams.iter().map(|r| r.name.as_deref()),
        );
        names.upstreams = raw
            .upstreams
            .iter()
            .filter_map(|r| r.name.clone())
            .collect();

        let routes_path = Path::root().key("routes");
        let mut routes = Vec::with_capacity(raw.routes.len());
        let mut matchers_ok = Vec::with_capacity(raw.routes.len());
        for (i, r) in raw.routes.iter().enumerate() {
            let (route, matcher_ok) = self.route(i, &routes_path.index(i), r, &mut names);
            matchers_ok.push(matcher_ok);
            routes.push(route);
        }
        self.unique_names(
            "route",
            &routes_path,
            routes.iter().map(|r| Some(r.name.as_str())),
        );
        self.route_conflicts(&routes_path, &routes, &matchers_ok);

        // Unused definitions (only worth saying about a file that compiles).
        for (i, issuer) in issuers.iter().enumerate() {
            if !issuer.name.is_empty() && !names.used_issuers.contains(&issuer.name) {
                let message = format!("issuer {:?} is not used by any route", issuer.name);
                self.warn(&issuers_path.index(i), message);
            }
        }
        for (i, introspector) in introspectors.iter().enumerate() {
            if !introspector.name.is_empty()
                && !names.used_introspectors.contains(&introspector.name)
            {
                let message = format!(
                    "introspector {:?} is not used by any route",
                    introspector.name
                );
                self.warn(&introspectors_path.index(i), message);
            }
        }
        for (i, upstream) in upstreams.iter().enumerate() {
            if !upstream.name.is_empty() && !names.used_upstreams.contains(&upstream.name) {
                let message = format!("upstream {:?} is not used by any route", upstream.name);
                self.warn(&upstreams_path.index(i), message);
            }
        }
        if raw.routes.is_empty() && !self.was_skipped(&routes_path) {
            self.warn(
                &routes_path,
                "no routes: every request will be answered 404",
            );
        }

        Config {
            static_config,
            dynamic: DynamicConfig {
                issuers,
                upstreams,
                routes,
                introspectors,
                max_body_bytes,
            },
        }
    }

    /// Names must be unique within their kind (`None`: missing, reported
    /// elsewhere).
    fn unique_names<'a>(
        &mut self,
        kind: &str,
        list: &Path,
        names: impl Iterator<Item = Option<&'a str>>,
    ) {
        let mut first: Vec<(&str, usize)> = Vec::new();
        for (i, name) in names.enumerate() {
            let Some(name) = name else { continue };
            if name.trim().is_empty() {
                continue;
            }
            match first.iter().find(|(n, _)| *n == name) {
                Some((_, j)) => {
                    let path = list.index(i).key("name");
                    let message = format!("{kind} name {name:?} is already used by {list}[{j}]");
                    self.error(&path, message);
                }
                None => first.push((name, i)),
            }
        }
    }

    fn server(&mut self, raw: RawServer) -> (StaticConfig, u64) {
        let p = Path::root().key("server");
        let listen_text = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen = match listen_text.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                self.error(
                    &p.key("listen"),
                    format!(
                        "invalid address {listen_text:?}: expected an IP address and port such as \
                         \"127.0.0.1:8080\" or \"[::]:8443\" (host names are not resolved)"
                    ),
                );
                SocketAddr::from(([127, 0, 0, 1], 8080))
            }
        };
        let header_read_timeout = self.positive(
            &p.key("header_read_timeout"),
            raw.header_read_timeout,
            DEFAULT_HEADER_READ_TIMEOUT,
        );
        let max_header = raw
            .max_header_bytes
            .map_or(DEFAULT_MAX_HEADER_BYTES, |s| s.0);
        if !(MIN_HEADER_BYTES..=MAX_HEADER_BYTES).contains(&max_header) {
            self.error(
                &p.key("max_header_bytes"),
                format!("must be between 1KiB and 1MiB (1024 to 1048576 bytes), not {max_header}"),
            );
        }
        let max_header_bytes = usize::try_from(max_header).unwrap_or(usize::MAX);
        let max_body_bytes = raw
            .max_body_bytes
            .map_or(DEFAULT_MAX_BODY_BYTES, |ByteSize(n)| n);
        let shutdown_grace = self.positive(
            &p.key("shutdown_grace"),
            raw.shutdown_grace,
            DEFAULT_SHUTDOWN_GRACE,
        );
        let tls = raw.tls.map(|t| self.tls(&p.key("tls"), t));
        (
            StaticConfig {
                listen,
                tls,
                header_read_timeout,
                max_header_bytes,
                shutdown_grace,
                call_log: CallLogConfig::default(),
                admin: AdminConfig::default(),
                telemetry: TelemetryConfig::default(),
            },
            max_body_bytes,
        )
    }

    fn admin(&mut self, raw: RawAdmin, proxy: SocketAddr) -> AdminConfig {
        let p = Path::root().key("admin");
        let d = AdminConfig::default();
        let listen = match raw.listen.as_deref() {
            None => d.listen,
            Some(text) => match text.parse::<SocketAddr>() {
                Ok(a) => a,
                Err(_) => {
                    self.error(
                        &p.key("listen"),
                        format!(
                            "invalid address {text:?}: expected an IP address and port such as \
                             \"127.0.0.1:9901\" (host names are not resolved)"
                        ),
                    );
                    d.listen
                }
            },
        };
        let enabled = raw.enabled.unwrap_or(d.enabled);
        if raw.token.is_some() {
            self.error(
                &p.key("token"),
                "secrets are not written in the configuration file: use `token_env` (the name \
                 of an environment variable) or `token_file` (a file holding the token)",
            );
        }
        let token = match (&raw.token_env, &raw.token_file) {
            (Some(var), None) => {
                let path = p.key("token_env");
                if self.non_empty(&path, var).is_some() && !is_env_name(var) {
                    self.error(
                        &path,
                        format!(
                            "invalid environment variable name {var:?}: letters, digits and \
                             \"_\", not starting with a digit"
                        ),
                    );
                }
                Some(SecretRef::Env(var.clone()))
            }
            (None, Some(file)) => {
                self.non_empty(&p.key("token_file"), file);
                Some(SecretRef::File(PathBuf::from(file)))
            }
            (Some(_), Some(_)) => {
                self.error(
                    &p.key("token_file"),
                    "`token_env` and `token_file` are exclusive: keep one",
                );
                None
            }
            (None, None) => None,
        };
        // A token given the wrong way has its own error.
        let token_given =
            raw.token.is_some() || raw.token_env.is_some() || raw.token_file.is_some();
        if enabled && !token_given && !listen.ip().is_loopback() {
            self.error(
                &p.key("listen"),
                format!(
                    "the admin API shows every call and the running configuration: listening on \
                     {listen} (beyond loopback) needs `token_env` or `token_file`"
                ),
            );
        }
        if enabled && listen == proxy && !self.was_skipped(&p.key("listen")) {
            self.error(
                &p.key("listen"),
                format!("{listen} is also `server.listen`: the admin API needs its own address"),
            );
        }
        AdminConfig {
            enabled,
            listen,
            token,
        }
    }

    fn telemetry(&mut self, raw: RawTelemetry) -> TelemetryConfig {
        TelemetryConfig {
            otlp: raw.otlp.map(|o| self.otlp(o)),
        }
    }

    /// `[telemetry.otlp]`.
    fn otlp(&mut self, raw: RawOtlp) -> OtlpConfig {
        let p = Path::root().key("telemetry").key("otlp");
        let endpoint = self.required(&p.key("endpoint"), raw.endpoint.as_ref());
        let traces_url = match endpoint {
            None => String::new(),
            Some(text) => {
                let key = p.key("endpoint");
                let (text, url) =
                    self.http_url(&key, text, "spans carry paths, clients and subjects");
                match url {
                    Some(u) if !u.username().is_empty() || u.password().is_some() => {
                        self.error(
                            &key,
                            "must not carry credentials: send them in a header (`headers_env`)",
                        );
                        text
                    }
                    Some(u) if u.query().is_some() || u.fragment().is_some() => {
                        self.error(&key, "must not have a query or fragment");
                        text
                    }
                    // OTLP/HTTP: the signal's path is appended to a base URL
                    // (OTLP exporter spec, "Endpoint URLs for OTLP/HTTP"); a
                    // URL that already names it is used as it is.
                    Some(u) if u.path().trim_end_matches('/').ends_with("/v1/traces") => text,
                    Some(_) => format!("{}/v1/traces", text.trim_end_matches('/')),
                    None => text,
                }
            }
        };
        let mut headers = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        let mut header = |cx: &mut Self, path: &Path, name: &str| -> bool {
            if !is_token(name) {
                cx.error(path, format!("invalid header name {name:?}"));
                return false;
            }
            let lower = name.to_ascii_lowercase();
            if seen.contains(&lower) {
                cx.error(
                    path,
                    format!("{name:?} is set twice (in `headers` and `headers_env`)"),
                );
                return false;
            }
            seen.push(lower);
            true
        };
        for (name, value) in raw.headers.iter().flatten() {
            let path = p.key("headers").key(name);
            if !header(self, &path, name) {
                continue;
            }
            if is_secret_header_name(name) {
                // The value is not repeated: it may be the secret.
                self.error(
                    &path,
                    format!(
                        "{name:?} carries a credential: secrets are not written in the \
                         configuration file; name an environment variable in `headers_env`"
                    ),
                );
                continue;
            }
            self.header_value(&path, value);
            headers.push((name.clone(), OtlpHeaderValue::Literal(value.clone())));
        }
        for (name, var) in raw.headers_env.iter().flatten() {
            let path = p.key("headers_env").key(name);
            if !header(self, &path, name) {
                continue;
            }
            if self.non_empty(&path, var).is_some() && !is_env_name(var) {
                self.error(
                    &path,
                    format!(
                        "invalid environment variable name {var:?}: letters, digits and \
                         \"_\", not starting with a digit"
                    ),
                );
            }
            headers.push((
                name.clone(),
                OtlpHeaderValue::Secret(SecretRef::Env(var.clone())),
            ));
        }
        let timeout = self.positive(&p.key("timeout"), raw.timeout, DEFAULT_OTLP_TIMEOUT);
        let service_name = match raw.service_name {
            None => DEFAULT_OTLP_SERVICE_NAME.to_owned(),
            Some(n) => {
                self.non_empty(&p.key("service_name"), &n);
                n
            }
        };
        let sample_ratio = match raw.sample_ratio {
            None => 1.0,
            Some(r) if (0.0..=1.0).contains(&r) => r,
            Some(r) => {
                self.error(
                    &p.key("sample_ratio"),
                    format!("must be between 0 and 1 (a probability), not {r}"),
                );
                1.0
            }
        };
        let queue = match raw.queue {
            None => DEFAULT_OTLP_QUEUE,
            Some(n) if (1..=MAX_OTLP_QUEUE).contains(&n) => {
                usize::try_from(n).unwrap_or(DEFAULT_OTLP_QUEUE)
            }
            Some(n) => {
                self.error(
                    &p.key("queue"),
                    format!("must be between 1 and {MAX_OTLP_QUEUE}, not {n}"),
                );
                DEFAULT_OTLP_QUEUE
            }
        };
        OtlpConfig {
            traces_url,
            headers,
            timeout,
            service_name,
            sample_ratio,
            queue,
        }
    }

    fn call_log(&mut self, raw: RawCallLog) -> CallLogConfig {
        let p = Path::root().key("call_log");
        let d = CallLogConfig::default();
        let path_of =
            |cx: &mut Self, key: &str, value: Option<String>, default: PathBuf| match value {
                Some(v) if v.trim().is_empty() => {
                    cx.error(&p.key(key), "must not be empty");
                    default
                }
                Some(v) => PathBuf::from(v),
                None => default,
            };
        let path = path_of(self, "path", raw.path, d.path);
        let spool_dir = path_of(self, "spool_dir", raw.spool_dir, d.spool_dir);
        let max_age = self.positive(&p.key("max_age"), raw.max_age, d.max_age);
        let max_bytes = self.at_least_one_mib(&p.key("max_size"), raw.max_size, d.max_bytes);
        let spool_max_bytes = self.at_least_one_mib(
            &p.key("spool_max_size"),
            raw.spool_max_size,
            d.spool_max_bytes,
        );
        let queue = self.count_up_to(&p.key("queue"), raw.queue, MAX_CALL_LOG_QUEUE, d.queue);
        let queue_max_bytes = self.at_least_one_mib(
            &p.key("queue_max_size"),
            raw.queue_max_size,
            d.queue_max_bytes,
        );
        let batch_size = self.count_up_to(
            &p.key("batch_size"),
            raw.batch_size,
            MAX_CALL_LOG_BATCH,
            d.batch_size,
        );
        let batch_wait = match raw.batch_wait {
            None => d.batch_wait,
            Some(Dur(w)) if (MIN_CALL_LOG_BATCH_WAIT..=MAX_CALL_LOG_BATCH_WAIT).contains(&w) => w,
            Some(Dur(w)) => {
                self.error(
                    &p.key("batch_wait"),
                    format!(
                        "must be between {} and {}, not {}",
                        fmt_duration(MIN_CALL_LOG_BATCH_WAIT),
                        fmt_duration(MAX_CALL_LOG_BATCH_WAIT),
                        fmt_duration(w)
                    ),
                );
                d.batch_wait
            }
        };
        let index_when_idle = raw.index_when_idle.unwrap_or(d.index_when_idle);
        let index_min_idle = match raw.index_min_idle {
            None => d.index_min_idle,
            Some(f) if f > 0.0 && f <= 1.0 => {
                if !index_when_idle {
                    self.warn(
                        &p.key("index_min_idle"),
                        "has no effect with `index_when_idle = false` (the indexer never waits \
                         for idle CPUs)",
                    );
                }
                f
            }
            Some(f) => {
                self.error(
                    &p.key("index_min_idle"),
                    format!(
                        "must be more than 0 and at most 1 (the fraction of time the CPUs are \
                         idle, e.g. 0.25), not {f}"
                    ),
                );
                d.index_min_idle
            }
        };
        let postgres = match (
            raw.postgres_url,
            raw.postgres_url_env,
            raw.postgres_url_file,
        ) {
            (None, None, None) => None,
            (Some(url), None, None) => {
                let key = p.key("postgres_url");
                if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                    self.error(&key, "must be a postgres:// or postgresql:// URL");
                } else if url_has_password(&url) {
                    // The value is not repeated: it holds the password.
                    self.error(
                        &key,
                        "the URL carries a password: secrets are not written in the configuration \
                         file; put the URL in an environment variable (`postgres_url_env`) or a file \
                         (`postgres_url_file`), or use a password file (PGPASSFILE is not read)",
                    );
                }
                Some(PostgresUrl::Url(url))
            }
            (None, Some(var), None) => {
                let key = p.key("postgres_url_env");
                if self.non_empty(&key, &var).is_some() && !is_env_name(&var) {
                    self.error(
                        &key,
                        format!(
                            "invalid environment variable name {var:?}: letters, digits and \
                             \"_\", not starting with a digit"
                        ),
                    );
                }
                Some(PostgresUrl::Secret(SecretRef::Env(var)))
            }
            (None, None, Some(file)) => {
                self.non_empty(&p.key("postgres_url_file"), &file);
                Some(PostgresUrl::Secret(SecretRef::File(PathBuf::from(file))))
            }
            _ => {
                self.error(
                    &p.key("postgres_url"),
                    "`postgres_url`, `postgres_url_env` and `postgres_url_file` are exclusive: keep one",
                );
                None
            }
        };
        CallLogConfig {
            enabled: raw.enabled.unwrap_or(d.enabled),
            path,
            spool_dir,
            max_age,
            max_bytes,
            spool_max_bytes,
            queue,
            queue_max_bytes,
            batch_size,
            batch_wait,
            background_indexer: raw.background_indexer.unwrap_or(d.background_indexer),
            index_when_idle,
            index_min_idle,
            keep_query: raw.keep_query.unwrap_or(d.keep_query),
            postgres,
        }
    }

    fn tls(&mut self, p: &Path, raw: RawTls) -> TlsConfig {
        let list_path = p.key("certificates");
        let list = self.list(&list_path, raw.certificates.as_deref(), true);
        let certificates = list
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let cp = list_path.index(i);
                let cert = self
                    .required(&cp.key("cert"), c.cert.as_ref())
                    .unwrap_or_default();
                let key = self
                    .required(&cp.key("key"), c.key.as_ref())
                    .unwrap_or_default();
                CertificateFiles {
                    cert: PathBuf::from(cert),
                    key: PathBuf::from(key),
                }
            })
            .collect();
        TlsConfig { certificates }
    }

    fn issuer(&mut self, p: &Path, raw: &RawIssuer) -> Issuer {
        let name = self
            .required(&p.key("name"), raw.name.as_ref())
            .unwrap_or_default();
        let issuer = self
            .required(&p.key("issuer"), raw.issuer.as_ref())
            .unwrap_or_default();
        let keys = self.key_source(p, raw);
        let algorithms = self.algorithms(&p.key("algorithms"), raw.algorithms.as_deref());

        // Zero leeway is legitimate (strict time checks).
        let leeway = raw.leeway.map_or(DEFAULT_LEEWAY, |d| d.0);
        if leeway > WARN_LEEWAY_ABOVE {
            self.warn(
                &p.key("leeway"),
                format!(
                    "leeway of {} is over 5 minutes: expired tokens stay usable that long",
                    fmt_duration(leeway)
                ),
            );
        }
        let jwks_max_age = self.positive(
            &p.key("jwks_max_age"),
            raw.jwks_max_age,
            DEFAULT_JWKS_MAX_AGE,
        );
        if jwks_max_age > WARN_JWKS_MAX_AGE_ABOVE {
            self.warn(
                &p.key("jwks_max_age"),
                format!(
                    "jwks_max_age of {} is over 24 hours: revoked keys stay trusted that long",
                    fmt_duration(jwks_max_age)
                ),
            );
        }
        let jwks_refetch_interval = self.positive(
            &p.key("jwks_refetch_interval"),
            raw.jwks_refetch_interval,
            DEFAULT_JWKS_REFETCH_INTERVAL,
        );
        let unknown_kid_ttl = self.positive(
            &p.key("unknown_kid_ttl"),
            raw.unknown_kid_ttl,
            DEFAULT_UNKNOWN_KID_TTL,
        );
        Issuer {
            name: name.to_owned(),
            issuer: issuer.to_owned(),
            keys,
            algorithms,
            leeway,
            jwks_max_age,
            jwks_refetch_interval,
            unknown_kid_ttl,
        }
    }

    fn key_source(&mut self, p: &Path, raw: &RawIssuer) -> KeySource {
        const KEYS: [&str; 3] = ["discovery", "jwks_uri", "jwks_file"];
        let given: Vec<(&str, &String)> = KEYS
            .into_iter()
            .zip([&raw.discovery, &raw.jwks_uri, &raw.jwks_file])
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
            .collect();
        let placeholder = KeySource::JwksFile(PathBuf::new());
        match given.as_slice() {
            [] => {
                if !KEYS.iter().any(|k| self.was_skipped(&p.key(k))) {
                    self.error(p, "needs one of `discovery`, `jwks_uri` or `jwks_file`");
                }
                placeholder
            }
            [(key, value)] => {
                let path = p.key(key);
                if self.non_empty(&path, value).is_none() {
                    return placeholder;
                }
                const RISK: &str = "keys fetched this way can be replaced in transit";
                match *key {
                    "discovery" => KeySource::Discovery(self.http_url(&path, value, RISK).0),
                    "jwks_uri" => KeySource::JwksUri(self.http_url(&path, value, RISK).0),
                    _ => KeySource::JwksFile(PathBuf::from(value.as_str())),
                }
            }
            [(first, _), rest @ ..] => {
                for (key, _) in rest {
                    let message = format!("`{first}` and `{key}` are exclusive: keep one");
                    self.error(&p.key(key), message);
                }
                placeholder
            }
        }
    }

    fn algorithms(&mut self, p: &Path, raw: Option<&[String]>) -> Vec<String> {
        let Some(list) = raw else {
            return vec![DEFAULT_ALGORITHM.to_owned()];
        };
        let list = self.list(p, Some(list), true);
        for (i, alg) in list.iter().enumerate() {
            let path = p.index(i);
            if ALGORITHMS.contains(&alg.as_str()) {
                continue;
            }
            let message = if alg.eq_ignore_ascii_case("none") {
                "`none` (unsigned tokens) is never accepted".to_owned()
            } else if HMAC_ALGORITHMS.contains(&alg.as_str()) {
                format!(
                    "{alg} needs a shared secret, and issuers have no secret key source yet: \
                     use an asymmetric algorithm (RS256, PS256, ES256, EdDSA, ...)"
                )
            } else if let Some(known) = ALGORITHMS
                .iter()
                .chain(&HMAC_ALGORITHMS)
                .find(|k| k.eq_ignore_ascii_case(alg))
            {
                format!(
                    "unknown algorithm {alg:?}: names are case-sensitive, did you mean {known}?"
                )
            } else {
                format!(
                    "unknown algorithm {alg:?}: expected one of {}",
                    ALGORITHMS.join(", ")
                )
            };
            self.error(&path, message);
        }
        self.warn_repeats(p, list.iter().map(String::as_str));
        list.to_vec()
    }

    fn introspector(&mut self, p: &Path, raw: &RawIntrospector) -> Introspector {
        let name = self
            .required(&p.key("name"), raw.name.as_ref())
            .unwrap_or_default();
        let endpoint_path = p.key("endpoint");
        let endpoint = match self.required(&endpoint_path, raw.endpoint.as_ref()) {
            None => String::new(),
            Some(text) => {
                let (endpoint, url) = self.http_url(
                    &endpoint_path,
                    text,
                    "the client secret and the tokens cross the network in clear",
                );
                if url.is_some_and(|u| !u.username().is_empty() || u.password().is_some()) {
                    self.error(
                        &endpoint_path,
                        "must not carry credentials: the gateway authenticates with `client_id` \
                         and `client_secret_env` or `client_secret_file`",
                    );
                }
                endpoint
            }
        };
        let client_id = self
            .required(&p.key("client_id"), raw.client_id.as_ref())
            .unwrap_or_default();
        let client_secret = self.client_secret(p, raw);
        let auth = match raw.auth {
            None | Some(RawClientAuth::Basic) => ClientAuth::Basic,
            Some(RawClientAuth::Post) => ClientAuth::Post,
        };
        let cache_ttl = self.positive(
            &p.key("cache_ttl"),
            raw.cache_ttl,
            DEFAULT_INTROSPECTION_CACHE_TTL,
        );
        let negative_ttl = self.positive(
            &p.key("negative_ttl"),
            raw.negative_ttl,
            DEFAULT_INTROSPECTION_NEGATIVE_TTL,
        );
        let timeout = self.positive(
            &p.key("timeout"),
            raw.timeout,
            DEFAULT_INTROSPECTION_TIMEOUT,
        );
        Introspector {
            name: name.to_owned(),
            endpoint,
            client_id: client_id.to_owned(),
            client_secret,
            auth,
            cache_ttl,
            negative_ttl,
            timeout,
        }
    }

    /// Exactly one of `client_secret_env` and `client_secret_file`; a
    /// literal `client_secret` is refused (its value is never read).
    fn client_secret(&mut self, p: &Path, raw: &RawIntrospector) -> SecretRef {
        let placeholder = SecretRef::Env(String::new());
        let literal = raw.client_secret.is_some();
        if literal {
            self.error(
                &p.key("client_secret"),
                "secrets are not written in the configuration file: use `client_secret_env` \
                 (the name of an environment variable) or `client_secret_file` (a file holding \
                 the secret)",
            );
        }
        match (&raw.client_secret_env, &raw.client_secret_file) {
            (Some(var), None) => {
                let path = p.key("client_secret_env");
                if self.non_empty(&path, var).is_some() && !is_env_name(var) {
                    self.error(
                        &path,
                        format!(
                            "invalid environment variable name {var:?}: letters, digits and \
                             \"_\", not starting with a digit"
                        ),
                    );
                }
                SecretRef::Env(var.clone())
            }
            (None, Some(file)) => {
                self.non_empty(&p.key("client_secret_file"), file);
                SecretRef::File(PathBuf::from(file))
            }
            (Some(_), Some(_)) => {
                self.error(
                    &p.key("client_secret_file"),
                    "`client_secret_env` and `client_secret_file` are exclusive: keep one",
                );
                placeholder
            }
            (None, None) => {
                // The refusal of a literal secret already says what to write.
                if !literal
                    && !["client_secret_env", "client_secret_file"]
                        .iter()
                        .any(|k| self.was_skipped(&p.key(k)))
                {
                    self.error(p, "needs `client_secret_env` or `client_secret_file`");
                }
                placeholder
            }
        }
    }

    fn upstream(&mut self, p: &Path, raw: &RawUpstream) -> Upstream {
        let name = self
            .required(&p.key("name"), raw.name.as_ref())
            .unwrap_or_default();
        let targets_path = p.key("targets");
        let targets: Vec<String> = self
            .list(&targets_path, raw.targets.as_deref(), true)
            .iter()
            .enumerate()
            .map(|(i, t)| self.target(&targets_path.index(i), t))
            .collect();
        self.warn_repeats(&targets_path, targets.iter().map(String::as_str));
        let balance = match raw.balance {
            None | Some(RawBalance::RoundRobin) => Balance::RoundRobin,
            Some(RawBalance::LeastRequests) => Balance::LeastRequests,
        };
        let connect_timeout = self.positive(
            &p.key("connect_timeout"),
            raw.connect_timeout,
            DEFAULT_CONNECT_TIMEOUT,
        );
        let first_byte_timeout = self.positive(
            &p.key("first_byte_timeout"),
            raw.first_byte_timeout,
            DEFAULT_FIRST_BYTE_TIMEOUT,
        );
        let total_timeout = self.positive(
            &p.key("total_timeout"),
            raw.total_timeout,
            DEFAULT_TOTAL_TIMEOUT,
        );
        let by_default = |given: bool| if given { "" } else { " by default" };
        if total_timeout < first_byte_timeout {
            self.error(
                &p.key("total_timeout"),
                format!(
                    "must be at least first_byte_timeout ({}{})",
                    fmt_duration(first_byte_timeout),
                    by_default(raw.first_byte_timeout.is_some())
                ),
            );
        }
        if connect_timeout > total_timeout {
            self.error(
                &p.key("connect_timeout"),
                format!(
                    "must not exceed total_timeout ({}{})",
                    fmt_duration(total_timeout),
                    by_default(raw.total_timeout.is_some())
                ),
            );
        }
        let retries = raw.retries.unwrap_or(DEFAULT_RETRIES);
        let eject_after = raw.eject_after.unwrap_or(DEFAULT_EJECT_AFTER);
        if eject_after == 0 {
            self.error(&p.key("eject_after"), "must be at least 1");
        }
        let eject_for = self.positive(&p.key("eject_for"), raw.eject_for, DEFAULT_EJECT_FOR);
        let host_header = match raw.host_header.as_deref() {
            None | Some("preserve") => HostHeader::Preserve,
            Some("target") => HostHeader::Target,
            Some(fixed) => {
                if !is_authority(fixed) {
                    self.error(
                        &p.key("host_header"),
                        format!(
                            "invalid host {fixed:?}: expected \"preserve\", \"target\" or a host \
                             (optionally with a port)"
                        ),
                    );
                }
                HostHeader::Fixed(fixed.to_owned())
            }
        };
        let ca_file = raw.ca_file.as_ref().map(|f| {
            let path = p.key("ca_file");
            self.non_empty(&path, f);
            if !targets.iter().any(|t| t.starts_with("https://")) {
                self.warn(&path, "no target uses https, so the CA file is not used");
            }
            PathBuf::from(f)
        });
        let health_check = raw
            .health_check
            .as_ref()
            .map(|h| self.health_check(&p.key("health_check"), h));
        Upstream {
            name: name.to_owned(),
            targets,
            balance,
            connect_timeout,
            first_byte_timeout,
            total_timeout,
            retries,
            health_check,
            eject_after,
            eject_for,
            ca_file,
            host_header,
        }
    }

    fn health_check(&mut self, p: &Path, raw: &RawHealthCheck) -> HealthCheck {
        let path_key = p.key("path");
        let path = self
            .required(&path_key, raw.path.as_ref())
            .unwrap_or_default();
        if !path.is_empty() {
            self.request_path(&path_key, path);
        }
        let interval = self.positive(&p.key("interval"), raw.interval, DEFAULT_HEALTH_INTERVAL);
        let timeout = self.positive(&p.key("timeout"), raw.timeout, DEFAULT_HEALTH_TIMEOUT);
        if timeout > interval {
            self.warn(
                &p.key("timeout"),
                format!(
                    "longer than the interval ({}): checks will overlap",
                    fmt_duration(interval)
                ),
            );
        }
        HealthCheck {
            path: path.to_owned(),
            interval,
            timeout,
        }
    }

    /// A path to match or request: absolute, without query or fragment.
    fn request_path(&mut self, p: &Path, path: &str) -> bool {
        let message = if !path.starts_with('/') {
            "must start with \"/\""
        } else if path.contains(['?', '#']) {
            "must not contain a query or fragment (\"?\" or \"#\")"
        } else if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            "must not contain spaces or control characters"
        } else {
            return true;
        };
        self.error(p, message);
        false
    }

    /// The route, and whether its matcher is valid (only valid matchers
    /// are compared for conflicts).
    fn route(&mut self, i: usize, p: &Path, raw: &RawRoute, names: &mut Names) -> (Route, bool) {
        let name = match raw.name.as_deref() {
            None => format!("routes[{i}]"),
            Some(n) => self
                .non_empty(&p.key("name"), n)
                .unwrap_or_default()
                .to_owned(),
        };
        let errors_before = self.errors.len();
        let host = raw
            .host
            .as_deref()
            .and_then(|h| self.route_host(&p.key("host"), h));
        let path = match (&raw.path, &raw.path_prefix) {
            (Some(exact), None) => {
                self.request_path(&p.key("path"), exact);
                PathMatch::Exact(exact.clone())
            }
            (None, Some(prefix)) => {
                self.request_path(&p.key("path_prefix"), prefix);
                PathMatch::Prefix(prefix.clone())
            }
            (None, None) => {
                if !self.was_skipped(&p.key("path")) && !self.was_skipped(&p.key("path_prefix")) {
                    self.error(p, "needs `path` (exact match) or `path_prefix`");
                }
                PathMatch::Prefix("/".to_owned())
            }
            (Some(exact), Some(_)) => {
                self.error(
                    &p.key("path_prefix"),
                    "`path` and `path_prefix` are exclusive: keep one",
                );
                PathMatch::Exact(exact.clone())
            }
        };
        let methods = self.methods(&p.key("methods"), raw.methods.as_deref());
        let matcher_ok = self.errors.len() == errors_before
            && !["host", "path", "path_prefix", "methods"]
                .iter()
                .any(|k| self.was_skipped(&p.key(k)));

        let upstream = self
            .required(&p.key("upstream"), raw.upstream.as_ref())
            .unwrap_or_default();
        if !upstream.is_empty() {
            names.used_upstreams.insert(upstream.to_owned());
            if !names.upstreams.contains(upstream)
                && !self.was_skipped(&Path::root().key("upstreams"))
            {
                let message = format!("unknown upstream {upstream:?}{}", known(&names.upstreams));
                self.error(&p.key("upstream"), message);
            }
        }

        let strip_prefix = raw.strip_prefix.unwrap_or(false);
        if strip_prefix && matches!(path, PathMatch::Exact(_)) {
            self.error(
                &p.key("strip_prefix"),
                "only applies to `path_prefix` routes",
            );
        }
        let inspect = raw.inspect.map(|k| match k {
            RawInspect::Token => Inspect::Token,
            RawInspect::Discovery => Inspect::Discovery,
            RawInspect::Jwks => Inspect::Jwks,
            RawInspect::Introspection => Inspect::Introspection,
        });
        let repair = raw.repair.unwrap_or(false);
        if repair && inspect != Some(Inspect::Token) && !self.was_skipped(&p.key("inspect")) {
            self.error(
                &p.key("repair"),
                "only applies to routes with `inspect = \"token\"`",
            );
        }
        let jwt = raw.jwt.as_ref().map(|j| self.jwt(&p.key("jwt"), j, names));
        let introspection = raw
            .introspection
            .as_ref()
            .map(|r| self.introspection(&p.key("introspection"), r, names));
        if jwt.is_some() && introspection.is_some() {
            self.error(
                &p.key("introspection"),
                format!(
                    "route {name:?} has both [routes.jwt] and [routes.introspection]: keep one \
                     (jwt checks tokens locally, introspection asks the authorization server)"
                ),
            );
        }
        let has_token_policy = ["jwt", "introspection"]
            .iter()
            .any(|k| self.was_skipped(&p.key(k)))
            || jwt.is_some()
            || introspection.is_some();
        let rate_limit = raw
            .rate_limit
            .as_ref()
            .map(|r| self.rate_limit(&p.key("rate_limit"), r, has_token_policy));
        let headers = raw
            .headers
            .as_ref()
            .map(|h| self.headers(&p.key("headers"), h))
            .unwrap_or_default();
        let route = Route {
            name,
            matcher: RouteMatch {
                host,
                path,
                methods,
            },
            upstream: upstream.to_owned(),
            strip_prefix,
            jwt,
            introspection,
            rate_limit,
            headers,
            inspect,
            repair,
        };
        (route, matcher_ok)
    }

    fn route_host(&mut self, p: &Path, host: &str) -> Option<String> {
        let has_port = match host.strip_prefix('[') {
            Some(v6) => v6.contains("]:"),
            None => host.contains(':'),
        };
        let message = if host.contains('*') {
            "wildcard hosts are not supported: write one route per host".to_owned()
        } else if host.contains('/') {
            format!("{host:?}: write the host alone, without scheme or path")
        } else if has_port {
            format!("{host:?}: write the host without a port (ports are ignored when matching)")
        } else {
            match url::Host::parse(host) {
                Ok(h) => return Some(h.to_string()),
                Err(e) => format!("invalid host {host:?}: {e}"),
            }
        };
        self.error(p, message);
        None
    }

    fn methods(&mut self, p: &Path, raw: Option<&[String]>) -> Vec<String> {
        if raw.is_some_and(<[String]>::is_empty) {
            self.error(
                p,
                "must not be empty (leave `methods` out to match any method)",
            );
            return Vec::new();
        }
        let list = raw.unwrap_or_default();
        let mut methods: Vec<String> = Vec::with_capacity(list.len());
        for (i, m) in list.iter().enumerate() {
            if !is_token(m) {
                self.error(&p.index(i), format!("invalid method {m:?}"));
                continue;
            }
            let upper = m.to_ascii_uppercase();
            if methods.contains(&upper) {
                self.warn(&p.index(i), format!("{upper} is listed twice"));
            } else {
                methods.push(upper);
            }
        }
        methods
    }

    fn jwt(&mut self, p: &Path, raw: &RawJwt, names: &mut Names) -> JwtPolicy {
        let issuers_path = p.key("issuers");
        let issuers = self
            .list(&issuers_path, raw.issuers.as_deref(), true)
            .to_vec();
        let issuers_skipped = self.was_skipped(&Path::root().key("issuers"));
        for (i, issuer) in issuers.iter().enumerate() {
            names.used_issuers.insert(issuer.clone());
            if !names.issuers.contains(issuer) && !issuers_skipped {
                let message = format!("unknown issuer {issuer:?}{}", known(&names.issuers));
                self.error(&issuers_path.index(i), message);
            }
        }
        self.warn_repeats(&issuers_path, issuers.iter().map(String::as_str));

        let audiences_path = p.key("audiences");
        let audiences = self
            .list(&audiences_path, raw.audiences.as_deref(), true)
            .to_vec();
        for (i, audience) in audiences.iter().enumerate() {
            self.non_empty(&audiences_path.index(i), audience);
        }
        self.warn_repeats(&audiences_path, audiences.iter().map(String::as_str));

        let scopes = self.scope_rule(p, raw.scopes_all.as_deref(), raw.scopes_any.as_deref());

        let claims_path = p.key("claims");
        let claims = raw
            .claims
            .as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
            .filter_map(|(i, c)| self.claim(&claims_path.index(i), c))
            .collect();

        let token_sources =
            self.token_sources(p, raw.token_cookie.as_deref(), raw.token_query.as_deref());

        JwtPolicy {
            issuers,
            audiences,
            require_at_jwt: raw.require_at_jwt.unwrap_or(false),
            scopes,
            claims,
            token_sources,
            forward_claims: raw.forward_claims.unwrap_or(true),
            strip_authorization: raw.strip_authorization.unwrap_or(false),
        }
    }

    fn introspection(
        &mut self,
        p: &Path,
        raw: &RawIntrospection,
        names: &mut Names,
    ) -> IntrospectionPolicy {
        let introspector_path = p.key("introspector");
        let introspector = self
            .required(&introspector_path, raw.introspector.as_ref())
            .unwrap_or_default();
        if !introspector.is_empty() {
            names.used_introspectors.insert(introspector.to_owned());
            if !names.introspectors.contains(introspector)
                && !self.was_skipped(&Path::root().key("introspectors"))
            {
                let message = format!(
                    "unknown introspector {introspector:?}{}",
                    known(&names.introspectors)
                );
                self.error(&introspector_path, message);
            }
        }

        // Optional, and may be empty: the audience is then not checked.
        let audiences_path = p.key("audiences");
        let audiences = raw.audiences.clone().unwrap_or_default();
        for (i, audience) in audiences.iter().enumerate() {
            self.non_empty(&audiences_path.index(i), audience);
        }
        self.warn_repeats(&audiences_path, audiences.iter().map(String::as_str));

        let scopes = self.scope_rule(p, raw.scopes_all.as_deref(), raw.scopes_any.as_deref());
        let token_sources =
            self.token_sources(p, raw.token_cookie.as_deref(), raw.token_query.as_deref());
        IntrospectionPolicy {
            introspector: introspector.to_owned(),
            audiences,
            scopes,
            token_sources,
            forward_claims: raw.forward_claims.unwrap_or(true),
            strip_authorization: raw.strip_authorization.unwrap_or(false),
        }
    }

    /// `scopes_all` or `scopes_any` of the policy table at `p`.
    fn scope_rule(
        &mut self,
        p: &Path,
        all: Option<&[String]>,
        any: Option<&[String]>,
    ) -> ScopeRule {
        match (all, any) {
            (Some(_), Some(_)) => {
                self.error(
                    &p.key("scopes_any"),
                    "`scopes_all` and `scopes_any` are exclusive: keep one",
                );
                ScopeRule::None
            }
            (Some(all), None) => ScopeRule::AllOf(self.scopes(&p.key("scopes_all"), all)),
            (None, Some(any)) => ScopeRule::AnyOf(self.scopes(&p.key("scopes_any"), any)),
            (None, None) => ScopeRule::None,
        }
    }

    /// `token_cookie` and `token_query` of the policy table at `p`.
    fn token_sources(
        &mut self,
        p: &Path,
        cookie: Option<&str>,
        query: Option<&str>,
    ) -> Vec<TokenSource> {
        let mut token_sources = Vec::new();
        if let Some(cookie) = cookie {
            if !is_token(cookie) {
                self.error(
                    &p.key("token_cookie"),
                    format!("invalid cookie name {cookie:?}"),
                );
            }
            token_sources.push(TokenSource::Cookie(cookie.to_owned()));
        }
        if let Some(query) = query {
            if query.is_empty()
                || query.chars().any(|c| {
                    c.is_whitespace() || c.is_control() || matches!(c, '&' | '=' | '#' | '?')
                })
            {
                self.error(
                    &p.key("token_query"),
                    format!("invalid query parameter name {query:?}"),
                );
            }
            token_sources.push(TokenSource::Query(query.to_owned()));
        }
        token_sources
    }

    /// Scope tokens (RFC 6749 §3.3: printable ASCII but space, `"` and `\`).
    fn scopes(&mut self, p: &Path, raw: &[String]) -> Vec<String> {
        let list = self.list(p, Some(raw), true);
        for (i, scope) in list.iter().enumerate() {
            let valid = !scope.is_empty()
                && scope
                    .bytes()
                    .all(|b| matches!(b, 0x21 | 0x23..=0x5b | 0x5d..=0x7e));
            if !valid {
                self.error(
                    &p.index(i),
                    format!("invalid scope {scope:?}: one scope per entry, without spaces, quotes or backslashes (RFC 6749 §3.3)"),
                );
            }
        }
        self.warn_repeats(p, list.iter().map(String::as_str));
        list.to_vec()
    }

    fn claim(&mut self, p: &Path, raw: &RawClaim) -> Option<ClaimCondition> {
        let claim = self.required(&p.key("claim"), raw.claim.as_ref());
        let tests = [
            raw.equals.is_some().then_some("equals"),
            raw.one_of.is_some().then_some("one_of"),
            raw.present.is_some().then_some("present"),
        ];
        let given: Vec<&str> = tests.into_iter().flatten().collect();
        let test = match given.as_slice() {
            [] => {
                if !["equals", "one_of", "present"]
                    .iter()
                    .any(|k| self.was_skipped(&p.key(k)))
                {
                    self.error(p, "needs one of `equals`, `one_of` or `present = true`");
                }
                None
            }
            [_] => {
                if let Some(v) = &raw.equals {
                    self.json(&p.key("equals"), v).map(ClaimTest::Equals)
                } else if let Some(values) = &raw.one_of {
                    let path = p.key("one_of");
                    let values = self.list(&path, Some(values), true);
                    let converted: Vec<Option<serde_json::Value>> = values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| self.json(&path.index(i), v))
                        .collect();
                    converted
                        .into_iter()
                        .collect::<Option<Vec<_>>>()
                        .map(ClaimTest::OneOf)
                } else if raw.present == Some(true) {
                    Some(ClaimTest::Present)
                } else {
                    self.error(
                        &p.key("present"),
                        "only `present = true` is supported (leave the condition out to not require the claim)",
                    );
                    None
                }
            }
            [first, rest @ ..] => {
                for key in rest {
                    let message = format!("`{first}` and `{key}` are exclusive: keep one");
                    self.error(&p.key(key), message);
                }
                None
            }
        };
        Some(ClaimCondition {
            claim: claim?.to_owned(),
            test: test?,
        })
    }

    /// A claim value as JSON (what tokens carry).
    fn json(&mut self, p: &Path, value: &toml::Value) -> Option<serde_json::Value> {
        use serde_json::Value as Json;
        match value {
            toml::Value::String(s) => Some(Json::String(s.clone())),
            toml::Value::Integer(i) => Some(Json::from(*i)),
            toml::Value::Float(f) => match serde_json::Number::from_f64(*f) {
                Some(n) => Some(Json::Number(n)),
                None => {
                    self.error(p, "must be a finite number");
                    None
                }
            },
            toml::Value::Boolean(b) => Some(Json::Bool(*b)),
            toml::Value::Datetime(_) => {
                self.error(
                    p,
                    "dates are not claim values: write a number of seconds (NumericDate) or a string",
                );
                None
            }
            toml::Value::Array(items) => {
                let items: Vec<Option<Json>> = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.json(&p.index(i), v))
                    .collect();
                items
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .map(Json::Array)
            }
            toml::Value::Table(table) => {
                let members: Vec<Option<(String, Json)>> = table
                    .iter()
                    .map(|(k, v)| self.json(&p.key(k), v).map(|v| (k.clone(), v)))
                    .collect();
                members
                    .into_iter()
                    .collect::<Option<serde_json::Map<_, _>>>()
                    .map(Json::Object)
            }
        }
    }

    fn rate_limit(&mut self, p: &Path, raw: &RawRateLimit, has_token_policy: bool) -> RateLimit {
        let key_path = p.key("key");
        let key = match self.required(&key_path, raw.key.as_ref()) {
            None => RateKey::ClientIp,
            Some("client_ip") => RateKey::ClientIp,
            Some(k @ ("client_id" | "sub")) => {
                if !has_token_policy {
                    self.error(
                        &key_path,
                        format!(
                            "{k:?} is read from the token: the route needs a [routes.jwt] or \
                             [routes.introspection] policy"
                        ),
                    );
                }
                if k == "sub" {
                    RateKey::Subject
                } else {
                    RateKey::ClientId
                }
            }
            Some(k) => match k.strip_prefix("header:") {
                Some(header) => {
                    if !is_token(header) {
                        self.error(&key_path, format!("invalid header name {header:?}"));
                    }
                    RateKey::Header(header.to_owned())
                }
                None => {
                    self.error(
                        &key_path,
                        format!(
                            "unknown key {k:?}: expected \"client_id\", \"sub\", \"client_ip\" \
                             or \"header:<name>\""
                        ),
                    );
                    RateKey::ClientIp
                }
            },
        };
        let requests = match raw.requests {
            None => {
                self.error(&p.key("requests"), "missing required key");
                1
            }
            Some(0) => {
                self.error(&p.key("requests"), "must be greater than zero");
                1
            }
            Some(n) => n,
        };
        let per = match raw.per {
            None => {
                self.error(&p.key("per"), "missing required key");
                Duration::from_secs(1)
            }
            some => self.positive(&p.key("per"), some, Duration::from_secs(1)),
        };
        let burst = raw.burst.unwrap_or(requests);
        if burst == 0 {
            self.error(&p.key("burst"), "must be greater than zero");
        }
        RateLimit {
            key,
            requests,
            per,
            burst,
        }
    }

    fn headers(&mut self, p: &Path, raw: &RawHeaders) -> HeaderRules {
        // A header may appear in only one rule of a direction, once (names
        // compare case-insensitively): the order they would apply in is not
        // something the file should depend on.
        let mut seen = Vec::new();
        let request_add = self.header_pairs(p, "request_add", raw.request_add.as_ref(), &mut seen);
        let request_set = self.header_pairs(p, "request_set", raw.request_set.as_ref(), &mut seen);
        let request_remove = self.header_names(
            p,
            "request_remove",
            raw.request_remove.as_deref(),
            &mut seen,
        );
        let mut seen = Vec::new();
        let response_add =
            self.header_pairs(p, "response_add", raw.response_add.as_ref(), &mut seen);
        let response_set =
            self.header_pairs(p, "response_set", raw.response_set.as_ref(), &mut seen);
        let response_remove = self.header_names(
            p,
            "response_remove",
            raw.response_remove.as_deref(),
            &mut seen,
        );
        HeaderRules {
            request_add,
            request_set,
            request_remove,
            response_add,
            response_set,
            response_remove,
        }
    }

    /// `request_add = { "X-From" = "gatewise" }` and the like.
    fn header_pairs(
        &mut self,
        p: &Path,
        key: &'static str,
        map: Option<&BTreeMap<String, String>>,
        seen: &mut Vec<(String, &'static str)>,
    ) -> Vec<(String, String)> {
        let path = p.key(key);
        let mut out = Vec::new();
        for (name, value) in map.into_iter().flatten() {
            let entry = path.key(name);
            self.header_rule_name(&entry, key, name, seen);
            self.header_value(&entry, value);
            out.push((name.clone(), value.clone()));
        }
        out
    }

    /// `request_remove = ["X-Debug"]` and the like.
    fn header_names(
        &mut self,
        p: &Path,
        key: &'static str,
        names: Option<&[String]>,
        seen: &mut Vec<(String, &'static str)>,
    ) -> Vec<String> {
        let path = p.key(key);
        let names = names.unwrap_or_default();
        for (i, name) in names.iter().enumerate() {
            self.header_rule_name(&path.index(i), key, name, seen);
        }
        names.to_vec()
    }

    fn header_rule_name(
        &mut self,
        path: &Path,
        key: &'static str,
        name: &str,
        seen: &mut Vec<(String, &'static str)>,
    ) {
        self.header_name(path, name);
        let lower = name.to_ascii_lowercase();
        match seen.iter().find(|(n, _)| *n == lower) {
            Some((_, first)) => {
                let message = format!("{name:?} already appears in {first}");
                self.error(path, message);
            }
            None => seen.push((lower, key)),
        }
    }

    /// Routes that match the same requests: same host, same path rule, and
    /// methods that overlap (two "any method" lists overlap too).
    fn route_conflicts(&mut self, list: &Path, routes: &[Route], ok: &[bool]) {
        let keys: Vec<MatcherKey<'_>> = routes
            .iter()
            .zip(ok)
            .enumerate()
            .filter(|(_, (_, ok))| **ok)
            .map(|(index, (r, _))| MatcherKey {
                index,
                name: &r.name,
                matcher: &r.matcher,
            })
            .collect();
        let mut conflicts = Vec::new();
        for (n, later) in keys.iter().enumerate() {
            let Some((earlier, methods)) = keys
                .iter()
                .take(n)
                .find_map(|e| overlap(e.matcher, later.matcher).map(|m| (e, m)))
            else {
                continue;
            };
            let what = if earlier.matcher == later.matcher {
                "has the same matcher as".to_owned()
            } else {
                format!("overlaps on {} with", methods.join(", "))
            };
            conflicts.push((
                list.index(later.index),
                format!(
                    "route {:?} {what} {list}[{}] ({:?}): requests would match both",
                    later.name, earlier.index, earlier.name
                ),
            ));
        }
        for (path, message) in conflicts {
            self.error(&path, message);
        }
    }
}

/// The methods two matchers share when they match the same requests
/// (`["any method"]` for two method-less matchers), or `None`.
fn overlap(a: &RouteMatch, b: &RouteMatch) -> Option<Vec<String>> {
    let same_host = match (&a.host, &b.host) {
        (None, None) => true,
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        _ => false,
    };
    if !same_host || a.path != b.path {
        return None;
    }
    match (a.methods.is_empty(), b.methods.is_empty()) {
        (true, true) => Some(vec!["any method".to_owned()]),
        (false, false) => {
            let shared: Vec<String> = a
                .methods
                .iter()
                .filter(|m| b.methods.contains(m))
                .cloned()
                .collect();
            (!shared.is_empty()).then_some(shared)
        }
        // A method list is more specific than any method: no conflict.
        _ => None,
    }
}

/// ` (defined: "a", "b")`, or ` (none is defined)`.
fn known(names: &BTreeSet<String>) -> String {
    if names.is_empty() {
        " (none is defined)".to_owned()
    } else {
        let list: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
        format!(" (defined: {})", list.join(", "))
    }
}

/// RFC 9110 §5.6.2 token (header names, methods, cookie names).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// Header names whose values are credentials (`Authorization`, API keys,
/// tokens, cookies): refused as literals in `telemetry.otlp.headers`.
fn is_secret_header_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "authorization"
        || n == "proxy-authorization"
        || [
            "key",
            "token",
            "secret",
            "password",
            "cookie",
            "auth",
            "signature",
        ]
        .iter()
        .any(|w| n.contains(w))
}

/// An environment variable name as shells write it: `[A-Za-z_][A-Za-z0-9_]*`.
fn is_env_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `host` or `host:port`, as a `Host` header value.
fn is_authority(s: &str) -> bool {
    if s.is_empty() || s.contains(['/', '@', '?', '#']) || s.chars().any(char::is_whitespace) {
        return false;
    }
    url::Url::parse(&format!("http://{s}/")).is_ok_and(|u| u.host_str().is_some())
}

fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A duration as the file would write it (`90s`, `5m`, `250ms`).
fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// True when a `postgres://user:password@host/...` URL has a password.
fn url_has_password(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
        || url.contains("password=")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_in_the_largest_exact_unit() {
        assert_eq!(fmt_duration(Duration::from_secs(90)), "90s");
        assert_eq!(fmt_duration(Duration::from_secs(300)), "5m");
        assert_eq!(fmt_duration(Duration::from_secs(172_800)), "2d");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(fmt_duration(Duration::ZERO), "0ms");
    }

    #[test]
    fn tokens_and_authorities() {
        assert!(is_token("X-Api-Key"));
        assert!(!is_token("X Api"));
        assert!(!is_token(""));
        assert!(is_env_name("GATEWISE_SECRET_2"));
        assert!(is_env_name("_x"));
        assert!(!is_env_name(""));
        assert!(!is_env_name("2FA"));
        assert!(!is_env_name("MY-SECRET"));
        assert!(!is_env_name("$SECRET"));
        assert!(!is_env_name("SÉCRET"));
        assert!(is_authority("api.internal:8443"));
        assert!(is_authority("api.internal"));
        assert!(!is_authority("http://api"));
        assert!(!is_authority("a b"));
    }
}
