//! The file format: serde structs that mirror `gatewise.toml` key for key.
//!
//! This is the on-disk compatibility boundary. Unknown keys are refused
//! (`deny_unknown_fields`), and every key is an `Option` here even when the
//! file must have it: the deserializer only judges types, spelling and the
//! syntax of durations and sizes, and `compile` judges everything else, so
//! that all mistakes are reported at once with their paths. Defaults live in
//! `compile` and are documented on the model and in `docs/config.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Visitor};

/// Deserializes a fieldless enum from one of the given strings. (serde's
/// derive, through `toml`, answers a value of the wrong type with "wanted
/// string or table"; this says what is expected.)
macro_rules! string_enum {
    ($ty:ident { $($text:literal => $variant:ident),+ $(,)? }) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                const EXPECTED: &[&str] = &[$($text),+];
                struct V;
                impl Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        let quoted: Vec<String> = EXPECTED.iter().map(|e| format!("`{e}`")).collect();
                        write!(f, "one of {}", quoted.join(", "))
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$ty, E> {
                        match v {
                            $($text => Ok($ty::$variant),)+
                            other => Err(E::unknown_variant(other, EXPECTED)),
                        }
                    }
                }
                deserializer.deserialize_str(V)
            }
        }
    };
}

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawConfig {
    /// `[server]`: listener and process settings.
    pub(crate) server: Option<RawServer>,
    /// `[[issuers]]`: token issuers.
    #[serde(default)]
    pub(crate) issuers: Vec<RawIssuer>,
    /// `[[introspectors]]`: RFC 7662 introspection endpoints.
    #[serde(default)]
    pub(crate) introspectors: Vec<RawIntrospector>,
    /// `[[upstreams]]`: upstream pools.
    #[serde(default)]
    pub(crate) upstreams: Vec<RawUpstream>,
    /// `[[routes]]`: routes.
    #[serde(default)]
    pub(crate) routes: Vec<RawRoute>,
    /// `[call_log]`: the record of every call.
    pub(crate) call_log: Option<RawCallLog>,
    /// `[admin]`: the admin API and dashboard.
    pub(crate) admin: Option<RawAdmin>,
    /// `[telemetry]`: export to an observability backend.
    pub(crate) telemetry: Option<RawTelemetry>,
}

/// `[telemetry]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawTelemetry {
    /// `[telemetry.otlp]`: OpenTelemetry traces over OTLP/HTTP.
    pub(crate) otlp: Option<RawOtlp>,
}

/// `[telemetry.otlp]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawOtlp {
    /// `endpoint = "http://127.0.0.1:4318"` (required).
    pub(crate) endpoint: Option<String>,
    /// `headers = { "X-Tenant" = "acme" }`: sent with every export.
    pub(crate) headers: Option<BTreeMap<String, String>>,
    /// `headers_env = { Authorization = "OTLP_AUTH" }`: header values from
    /// environment variables (for secrets).
    pub(crate) headers_env: Option<BTreeMap<String, String>>,
    /// `timeout = "10s"`: one export request.
    pub(crate) timeout: Option<Dur>,
    /// `service_name = "gatewise"`.
    pub(crate) service_name: Option<String>,
    /// `sample_ratio = 1.0`: traces the gateway starts.
    pub(crate) sample_ratio: Option<f64>,
    /// `queue = 2048`: spans waiting for export.
    pub(crate) queue: Option<u64>,
}

/// `[admin]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawAdmin {
    /// `enabled = true`.
    pub(crate) enabled: Option<bool>,
    /// `listen = "127.0.0.1:9901"`.
    pub(crate) listen: Option<String>,
    /// `token_env = "GATEWISE_ADMIN_TOKEN"`.
    pub(crate) token_env: Option<String>,
    /// `token_file = "admin.token"`.
    pub(crate) token_file: Option<String>,
    /// A literal token: refused (named in the error).
    pub(crate) token: Option<de::IgnoredAny>,
}

/// `[call_log]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawCallLog {
    /// `enabled = true`.
    pub(crate) enabled: Option<bool>,
    /// `path = "gatewise-data/calls.db"`: the SQLite file.
    pub(crate) path: Option<String>,
    /// `spool_dir = "gatewise-data/spool"`.
    pub(crate) spool_dir: Option<String>,
    /// `max_age = "7d"`.
    pub(crate) max_age: Option<Dur>,
    /// `max_size = "1GiB"`.
    pub(crate) max_size: Option<ByteSize>,
    /// `spool_max_size = "1GiB"`.
    pub(crate) spool_max_size: Option<ByteSize>,
    /// `queue = 65536`: records held in memory before the spool takes over.
    pub(crate) queue: Option<u64>,
    /// `queue_max_size = "64MiB"`: bytes held in memory likewise.
    pub(crate) queue_max_size: Option<ByteSize>,
    /// `batch_size = 1000`: records per database transaction.
    pub(crate) batch_size: Option<u64>,
    /// `batch_wait = "100ms"`: longest a record waits for the writer.
    pub(crate) batch_wait: Option<Dur>,
    /// `background_indexer = true`: the indexer at background CPU priority.
    pub(crate) background_indexer: Option<bool>,
    /// `index_when_idle = true`: wait with indexing while the CPUs are busy.
    pub(crate) index_when_idle: Option<bool>,
    /// `index_min_idle = 0.25`: the idle fraction that counts as not busy.
    pub(crate) index_min_idle: Option<f64>,
    /// `keep_query = false`.
    pub(crate) keep_query: Option<bool>,
    /// `postgres_url = "postgres://gatewise@db:5432/calls"` (no password).
    pub(crate) postgres_url: Option<String>,
    /// `postgres_url_env = "GATEWISE_CALLS_PG"`: the URL, password included.
    pub(crate) postgres_url_env: Option<String>,
    /// `postgres_url_file = "secrets/calls-pg.url"`.
    pub(crate) postgres_url_file: Option<String>,
}

/// `[server]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawServer {
    /// `listen = "127.0.0.1:8080"`: IP address and port.
    pub(crate) listen: Option<String>,
    /// `header_read_timeout = "10s"`.
    pub(crate) header_read_timeout: Option<Dur>,
    /// `max_header_bytes = "16KiB"`.
    pub(crate) max_header_bytes: Option<ByteSize>,
    /// `max_body_bytes = "10MiB"`.
    pub(crate) max_body_bytes: Option<ByteSize>,
    /// `shutdown_grace = "30s"`.
    pub(crate) shutdown_grace: Option<Dur>,
    /// `[server.tls]`.
    pub(crate) tls: Option<RawTls>,
}

/// `[server.tls]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawTls {
    /// `certificates = [{ cert = "a.pem", key = "a.key" }]`; not empty.
    pub(crate) certificates: Option<Vec<RawCertificate>>,
}

/// One entry of `server.tls.certificates`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table with `cert` and `key`")]
pub(crate) struct RawCertificate {
    /// PEM chain file, leaf first (required).
    pub(crate) cert: Option<String>,
    /// PEM private key file (required).
    pub(crate) key: Option<String>,
}

/// `[[issuers]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawIssuer {
    /// Name routes refer to (required, unique).
    pub(crate) name: Option<String>,
    /// Exact `iss` value (required).
    pub(crate) issuer: Option<String>,
    /// Discovery document URL (one of `discovery`, `jwks_uri`, `jwks_file`).
    pub(crate) discovery: Option<String>,
    /// JWK Set URL.
    pub(crate) jwks_uri: Option<String>,
    /// JWK Set file.
    pub(crate) jwks_file: Option<String>,
    /// Accepted JWS algorithms.
    pub(crate) algorithms: Option<Vec<String>>,
    /// Leeway on time claims.
    pub(crate) leeway: Option<Dur>,
    /// Longest use of fetched keys without a refetch.
    pub(crate) jwks_max_age: Option<Dur>,
    /// Smallest interval between refetches caused by unknown `kid`s.
    pub(crate) jwks_refetch_interval: Option<Dur>,
    /// How long an unknown `kid` is remembered.
    pub(crate) unknown_kid_ttl: Option<Dur>,
}

/// `[[introspectors]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawIntrospector {
    /// Name routes refer to (required, unique).
    pub(crate) name: Option<String>,
    /// Introspection endpoint URL (required).
    pub(crate) endpoint: Option<String>,
    /// The gateway's client id (required).
    pub(crate) client_id: Option<String>,
    /// Environment variable holding the client secret (one of
    /// `client_secret_env`, `client_secret_file`).
    pub(crate) client_secret_env: Option<String>,
    /// File holding the client secret.
    pub(crate) client_secret_file: Option<String>,
    /// A literal secret: always refused by `compile`, which points to the two
    /// keys above. Known here so that the refusal can say so rather than
    /// "unknown key"; the value, of any type, is never kept.
    pub(crate) client_secret: Option<de::IgnoredAny>,
    /// `client_secret_basic` or `client_secret_post`.
    pub(crate) auth: Option<RawClientAuth>,
    /// Longest caching of an active result.
    pub(crate) cache_ttl: Option<Dur>,
    /// Caching of an inactive result.
    pub(crate) negative_ttl: Option<Dur>,
    /// Timeout of one introspection call.
    pub(crate) timeout: Option<Dur>,
}

/// `auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawClientAuth {
    /// `client_secret_basic`.
    Basic,
    /// `client_secret_post`.
    Post,
}

string_enum!(RawClientAuth {
    "client_secret_basic" => Basic,
    "client_secret_post" => Post,
});

/// `[[upstreams]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawUpstream {
    /// Name routes refer to (required, unique).
    pub(crate) name: Option<String>,
    /// `http(s)://host:port` targets (required, not empty).
    pub(crate) targets: Option<Vec<String>>,
    /// `round_robin` or `least_requests`.
    pub(crate) balance: Option<RawBalance>,
    /// Connect timeout.
    pub(crate) connect_timeout: Option<Dur>,
    /// Time to the response head.
    pub(crate) first_byte_timeout: Option<Dur>,
    /// Whole-exchange timeout.
    pub(crate) total_timeout: Option<Dur>,
    /// Retries of idempotent requests.
    pub(crate) retries: Option<u32>,
    /// Consecutive failures that eject a target.
    pub(crate) eject_after: Option<u32>,
    /// How long an ejected target is skipped.
    pub(crate) eject_for: Option<Dur>,
    /// `preserve`, `target`, or a fixed host.
    pub(crate) host_header: Option<String>,
    /// Extra CA certificate file for `https` targets.
    pub(crate) ca_file: Option<String>,
    /// `{ path = "/health", interval = "5s", timeout = "2s" }`.
    pub(crate) health_check: Option<RawHealthCheck>,
}

/// `balance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawBalance {
    /// `round_robin`.
    RoundRobin,
    /// `least_requests`.
    LeastRequests,
}

string_enum!(RawBalance {
    "round_robin" => RoundRobin,
    "least_requests" => LeastRequests,
});

/// `health_check`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawHealthCheck {
    /// Path requested with GET (required).
    pub(crate) path: Option<String>,
    /// Interval between checks.
    pub(crate) interval: Option<Dur>,
    /// Per-check timeout.
    pub(crate) timeout: Option<Dur>,
}

/// `[[routes]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawRoute {
    /// Name for logs and metrics.
    pub(crate) name: Option<String>,
    /// Exact host to match.
    pub(crate) host: Option<String>,
    /// Exact path (one of `path`, `path_prefix`).
    pub(crate) path: Option<String>,
    /// Path prefix on a segment boundary.
    pub(crate) path_prefix: Option<String>,
    /// Methods to match.
    pub(crate) methods: Option<Vec<String>>,
    /// Upstream name (required).
    pub(crate) upstream: Option<String>,
    /// Remove the matched prefix before forwarding.
    pub(crate) strip_prefix: Option<bool>,
    /// Judge upstream responses as this kind.
    pub(crate) inspect: Option<RawInspect>,
    /// Repair token responses (with `inspect = "token"`).
    pub(crate) repair: Option<bool>,
    /// `[routes.jwt]`.
    pub(crate) jwt: Option<RawJwt>,
    /// `[routes.introspection]`.
    pub(crate) introspection: Option<RawIntrospection>,
    /// `[routes.rate_limit]`.
    pub(crate) rate_limit: Option<RawRateLimit>,
    /// `[routes.headers]`.
    pub(crate) headers: Option<RawHeaders>,
}

/// `inspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawInspect {
    /// `token`.
    Token,
    /// `discovery`.
    Discovery,
    /// `jwks`.
    Jwks,
    /// `introspection`.
    Introspection,
}

string_enum!(RawInspect {
    "token" => Token,
    "discovery" => Discovery,
    "jwks" => Jwks,
    "introspection" => Introspection,
});

/// `[routes.jwt]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawJwt {
    /// Issuer names (required, not empty).
    pub(crate) issuers: Option<Vec<String>>,
    /// Accepted audiences (required, not empty).
    pub(crate) audiences: Option<Vec<String>>,
    /// Require `typ: at+jwt`.
    pub(crate) require_at_jwt: Option<bool>,
    /// Scopes that must all be granted.
    pub(crate) scopes_all: Option<Vec<String>>,
    /// Scopes of which one must be granted.
    pub(crate) scopes_any: Option<Vec<String>>,
    /// Claim conditions.
    pub(crate) claims: Option<Vec<RawClaim>>,
    /// Cookie the token may be read from.
    pub(crate) token_cookie: Option<String>,
    /// Query parameter the token may be read from.
    pub(crate) token_query: Option<String>,
    /// Forward identity headers upstream.
    pub(crate) forward_claims: Option<bool>,
    /// Remove `Authorization` before forwarding.
    pub(crate) strip_authorization: Option<bool>,
}

/// `[routes.introspection]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawIntrospection {
    /// Introspector name (required).
    pub(crate) introspector: Option<String>,
    /// Accepted audiences (may be empty: not checked).
    pub(crate) audiences: Option<Vec<String>>,
    /// Scopes that must all be granted.
    pub(crate) scopes_all: Option<Vec<String>>,
    /// Scopes of which one must be granted.
    pub(crate) scopes_any: Option<Vec<String>>,
    /// Cookie the token may be read from.
    pub(crate) token_cookie: Option<String>,
    /// Query parameter the token may be read from.
    pub(crate) token_query: Option<String>,
    /// Forward identity headers upstream.
    pub(crate) forward_claims: Option<bool>,
    /// Remove `Authorization` before forwarding.
    pub(crate) strip_authorization: Option<bool>,
}

/// One entry of `claims`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table such as { claim = \"tenant\", equals = \"acme\" }"
)]
pub(crate) struct RawClaim {
    /// Claim name (required).
    pub(crate) claim: Option<String>,
    /// The claim equals (or, for arrays, contains) this value.
    pub(crate) equals: Option<toml::Value>,
    /// The claim is one of these values.
    pub(crate) one_of: Option<Vec<toml::Value>>,
    /// The claim is present (must be `true`).
    pub(crate) present: Option<bool>,
}

/// `[routes.rate_limit]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawRateLimit {
    /// `client_id`, `sub`, `client_ip` or `header:<name>` (required).
    pub(crate) key: Option<String>,
    /// Sustained requests per period (required).
    pub(crate) requests: Option<u32>,
    /// The period (required).
    pub(crate) per: Option<Dur>,
    /// Burst capacity.
    pub(crate) burst: Option<u32>,
}

/// `[routes.headers]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawHeaders {
    /// Request headers appended.
    pub(crate) request_add: Option<BTreeMap<String, String>>,
    /// Request headers set.
    pub(crate) request_set: Option<BTreeMap<String, String>>,
    /// Request headers removed.
    pub(crate) request_remove: Option<Vec<String>>,
    /// Response headers appended.
    pub(crate) response_add: Option<BTreeMap<String, String>>,
    /// Response headers set.
    pub(crate) response_set: Option<BTreeMap<String, String>>,
    /// Response headers removed.
    pub(crate) response_remove: Option<Vec<String>>,
}

/// A duration written as a string: `"250ms"`, `"10s"`, `"5m"`, `"1h"`,
/// `"1d"`, or several of these run together (`"1h30m"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dur(pub(crate) Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"250ms\", \"10s\", \"5m\", \"1h\" or \"1d\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                parse_duration(v).map(Dur).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// A size in bytes: a plain integer, or a string with a binary unit
/// (`"512B"`, `"16KiB"`, `"10MiB"`, `"1GiB"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteSize(pub(crate) u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as 16384, \"16KiB\", \"10MiB\" or \"1GiB\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("invalid size {v}: must not be negative")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                parse_size(v).map(ByteSize).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Parses `"250ms"`, `"10s"`, `"5m"`, `"1h"`, `"1d"` and runs of them
/// (`"1h30m"`). Whole numbers only; the error says what is wrong.
///
/// Written here rather than taken from `humantime`: the accepted syntax is
/// small and documented, the error messages name the value, and it is one
/// dependency less.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = |why: &str| format!("invalid duration {text:?}: {why}");
    if text.is_empty() {
        return Err(invalid("empty (write for example \"10s\")"));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let (number, after) = split_while(rest, |c| c.is_ascii_digit());
        let (unit, after) = split_while(after, |c| c.is_ascii_alphabetic());
        if number.is_empty() {
            return Err(invalid(
                "expected a whole number followed by a unit (ms, s, m, h or d)",
            ));
        }
        let n: u64 = number.parse().map_err(|_| invalid("number too large"))?;
        let millis_per_unit: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => {
                return Err(match after.chars().next() {
                    None => invalid("missing unit (ms, s, m, h or d) after the number"),
                    Some(c) => invalid(&format!(
                        "unexpected {:?} (write a whole number directly followed by its unit, like \"10s\")",
                        c.to_string()
                    )),
                });
            }
            other => {
                return Err(invalid(&format!(
                    "unknown unit {other:?} (use ms, s, m, h or d)"
                )));
            }
        };
        let part = n
            .checked_mul(millis_per_unit)
            .map(Duration::from_millis)
            .ok_or_else(|| invalid("too large"))?;
        total = total
            .checked_add(part)
            .ok_or_else(|| invalid("too large"))?;
        rest = after;
    }
    Ok(total)
}

/// Parses `"16384"`, `"512B"`, `"16KiB"`, `"10MiB"` and `"1GiB"`.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let invalid = |why: &str| format!("invalid size {text:?}: {why}");
    let (number, unit) = split_while(text, |c| c.is_ascii_digit());
    if number.is_empty() {
        return Err(invalid(
            "expected a whole number, optionally followed by B, KiB, MiB or GiB",
        ));
    }
    let n: u64 = number.parse().map_err(|_| invalid("number too large"))?;
    let multiplier: u64 = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" | "MB" | "GB" | "K" | "M" | "G" | "k" => {
            return Err(invalid(&format!(
                "unknown unit {unit:?}: sizes use binary units (KiB, MiB, GiB)"
            )));
        }
        other => {
            return Err(invalid(&format!(
                "unknown unit {other:?} (use B, KiB, MiB or GiB)"
            )));
        }
    };
    n.checked_mul(multiplier)
        .ok_or_else(|| invalid("too large"))
}

/// Splits `s` after its longest prefix of characters that satisfy `keep`.
fn split_while(s: &str, keep: impl Fn(char) -> bool) -> (&str, &str) {
    let end = s.find(|c: char| !keep(c)).unwrap_or(s.len());
    s.split_at_checked(end).unwrap_or((s, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ms = |n| Ok(Duration::from_millis(n));
        assert_eq!(parse_duration("250ms"), ms(250));
        assert_eq!(parse_duration("10s"), ms(10_000));
        assert_eq!(parse_duration("5m"), ms(300_000));
        assert_eq!(parse_duration("1h"), ms(3_600_000));
        assert_eq!(parse_duration("1d"), ms(86_400_000));
        assert_eq!(parse_duration("1h30m"), ms(5_400_000));
        assert_eq!(parse_duration("0s"), ms(0));
        assert_eq!(
            parse_duration("10"),
            Err("invalid duration \"10\": missing unit (ms, s, m, h or d) after the number".into())
        );
        assert_eq!(
            parse_duration("5x"),
            Err("invalid duration \"5x\": unknown unit \"x\" (use ms, s, m, h or d)".into())
        );
        assert!(parse_duration("").is_err());
        assert!(parse_duration("1.5s").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration(" 1s").is_err());
        assert!(parse_duration("99999999999999999999s").is_err());
        assert!(parse_duration("18446744073709551615d").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16384"), Ok(16_384));
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("16KiB"), Ok(16_384));
        assert_eq!(parse_size("10MiB"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(
            parse_size("10MB"),
            Err("invalid size \"10MB\": unknown unit \"MB\": sizes use binary units (KiB, MiB, GiB)".into())
        );
        assert!(parse_size("").is_err());
        assert!(parse_size("KiB").is_err());
        assert!(parse_size("99999999999GiB").is_err());
    }
}
