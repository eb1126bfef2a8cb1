//! Prometheus metrics (OpenMetrics text): requests by route, status and
//! reason code, and a latency histogram per route, recorded on the request
//! path; counters the gateway keeps anyway (issuers' key fetches, `kid`
//! misses, signature checks, cache hits, inspector findings) are read at
//! scrape time instead of being counted twice.
//!
//! The registry belongs to the [`Gateway`](crate::Gateway), not to the
//! process, so several gateways (tests) never mix their figures.

use prometheus_client::encoding::{EncodeLabelSet, text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde::Serialize;
use std::sync::Arc;

/// Latency buckets, seconds: 250 µs to 10 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: Arc<str>,
    status: u16,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IssuerLabels {
    issuer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    route: String,
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    cache: &'static str,
    name: String,
}

/// One cache's figures, for the admin API and the metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    /// Which cache: `verified_tokens` (signature checks of JWTs) or
    /// `introspection` (an introspector's results).
    pub cache: &'static str,
    /// The introspector's name; empty for the verified-token cache.
    pub name: String,
    /// Entries held now.
    pub entries: u64,
    /// Most entries it holds.
    pub capacity: u64,
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that were not (a signature check or an introspection call
    /// followed).
    pub misses: u64,
}

/// Writes the rate limits' decisions and the caches' figures as
/// OpenMetrics text, without `# EOF`: `gatewise_rate_limit_decisions`
/// (route, decision), `gatewise_rate_limit_keys` (route),
/// `gatewise_cache_lookups` (cache, name, result), `gatewise_cache_entries`
/// (cache, name).
pub fn encode_stats(
    rate_limits: &[crate::ratelimit::RouteRateLimit],
    caches: &[CacheStats],
    out: &mut String,
) -> std::fmt::Result {
    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct LookupLabels {
        cache: &'static str,
        name: String,
        result: &'static str,
    }
    let mut r = Registry::default();
    let decisions = Family::<DecisionLabels, Counter>::default();
    let keys = Family::<RouteLabels, Gauge>::default();
    for l in rate_limits {
        for (decision, n) in [("allowed", l.allowed), ("limited", l.limited)] {
            decisions
                .get_or_create(&DecisionLabels {
                    route: l.route.clone(),
                    decision,
                })
                .inc_by(n);
        }
        keys.get_or_create(&RouteLabels {
            route: Arc::from(l.route.as_str()),
        })
        .set(i64::try_from(l.keys).unwrap_or(i64::MAX));
    }
    r.register(
        "gatewise_rate_limit_decisions",
        "Rate-limit decisions by route (since the route's limiter was built: start or the last reload)",
        decisions,
    );
    r.register(
        "gatewise_rate_limit_keys",
        "Keys a route's rate limiter tracks now",
        keys,
    );
    let lookups = Family::<LookupLabels, Counter>::default();
    let entries = Family::<CacheLabels, Gauge>::default();
    for c in caches {
        for (result, n) in [("hit", c.hits), ("miss", c.misses)] {
            lookups
                .get_or_create(&LookupLabels {
                    cache: c.cache,
                    name: c.name.clone(),
                    result,
                })
                .inc_by(n);
        }
        entries
            .get_or_create(&CacheLabels {
                cache: c.cache,
                name: c.name.clone(),
            })
            .set(i64::try_from(c.entries).unwrap_or(i64::MAX));
    }
    r.register(
        "gatewise_cache_lookups",
        "Cache lookups by cache (verified_tokens, introspection), introspector name and result (hit, miss)",
        lookups,
    );
    r.register(
        "gatewise_cache_entries",
        "Entries a cache holds now",
        entries,
    );
    text::encode_registry(out, &r)
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// One route's handles, looked up once per configuration (not per request).
#[derive(Debug, Clone)]
pub struct RouteMetrics {
    name: Arc<str>,
    duration: Histogram,
}

/// The request-path metrics of one gateway.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    no_route: Arc<str>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "gatewise_requests",
            "Requests by route, status and reason code (empty reason: the upstream answered)",
            requests.clone(),
        );
        let duration = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "gatewise_request_duration_seconds",
            "Time from the request to the response head, by route",
            duration.clone(),
        );
        Metrics {
            registry,
            requests,
            duration,
            no_route: Arc::from(""),
        }
    }
}

impl Metrics {
    /// The handles of a route named `name`.
    pub fn route(&self, name: &str) -> RouteMetrics {
        let name: Arc<str> = Arc::from(name);
        let duration = self.duration.get_or_create_owned(&RouteLabels {
            route: Arc::clone(&name),
        });
        RouteMetrics { name, duration }
    }

    /// Counts one answered request (`route` `None`: no route matched).
    pub fn observe(
        &self,
        route: Option<&RouteMetrics>,
        status: u16,
        reason: &'static str,
        seconds: f64,
    ) {
        let name = route.map_or(&self.no_route, |r| &r.name);
        self.requests
            .get_or_create(&RequestLabels {
                route: Arc::clone(name),
                status,
                reason,
            })
            .inc();
        match route {
            Some(r) => r.duration.observe(seconds),
            None => self
                .duration
                .get_or_create(&RouteLabels {
                    route: Arc::clone(&self.no_route),
                })
                .observe(seconds),
        }
    }

    /// Writes the request-path metrics and the gateway's other counters
    /// (from `status`) as OpenMetrics text, without the final `# EOF` (the
    /// caller may append more families and then ends the exposition).
    pub fn encode(
        &self,
        status: &crate::status::GatewayStatus,
        out: &mut String,
    ) -> std::fmt::Result {
        text::encode_registry(out, &self.registry)?;
        text::encode_registry(out, &scrape_time(status))
    }
}

/// The counters the gateway keeps elsewhere, as metric families built at
/// scrape time.
fn scrape_time(s: &crate::status::GatewayStatus) -> Registry {
    let mut r = Registry::default();
    let counter = |r: &mut Registry, name: &str, help: &str, v: u64| {
        let c = Counter::<u64>::default();
        c.inc_by(v);
        r.register(name, help, c);
    };
    counter(
        &mut r,
        "gatewise_signature_checks",
        "JWT signature verifications (verified-token cache misses that reached a key)",
        s.counters.signature_checks,
    );
    counter(
        &mut r,
        "gatewise_token_cache_hits",
        "Tokens found in the verified-token cache",
        s.counters.token_cache_hits,
    );
    let version = Gauge::<i64>::default();
    version.set(i64::try_from(s.config_version).unwrap_or(i64::MAX));
    r.register(
        "gatewise_config_version",
        "Incremented by every applied reload",
        version,
    );
    let issuer_counter =
        |r: &mut Registry, name: &str, help: &str, get: fn(&crate::status::IssuerStatus) -> u64| {
            let f = Family::<IssuerLabels, Counter>::default();
            for i in &s.issuers {
                f.get_or_create(&IssuerLabels {
                    issuer: i.name.clone(),
                })
                .inc_by(get(i));
            }
            r.register(name, help, f);
        };
    issuer_counter(
        &mut r,
        "gatewise_jwks_fetches",
        "JWKS fetches attempted, by issuer",
        |i| i.fetches,
    );
    issuer_counter(
        &mut r,
        "gatewise_jwks_fetch_errors",
        "JWKS fetches that failed, by issuer",
        |i| i.fetch_errors,
    );
    issuer_counter(
        &mut r,
        "gatewise_jwks_kid_refetches",
        "JWKS refetches caused by an unknown kid, by issuer",
        |i| i.kid_refetches,
    );
    issuer_counter(
        &mut r,
        "gatewise_jwt_kid_unknown",
        "Tokens refused because their kid stayed unknown, by issuer",
        |i| i.kid_unknown,
    );
    let issuer_gauge =
        |r: &mut Registry, name: &str, help: &str, get: fn(&crate::status::IssuerStatus) -> i64| {
            let f = Family::<IssuerLabels, Gauge>::default();
            for i in &s.issuers {
                f.get_or_create(&IssuerLabels {
                    issuer: i.name.clone(),
                })
                .set(get(i));
            }
            r.register(name, help, f);
        };
    issuer_gauge(
        &mut r,
        "gatewise_jwks_keys",
        "Keys loaded now, by issuer",
        |i| i64::try_from(i.kids.len()).unwrap_or(i64::MAX),
    );
    issuer_gauge(
        &mut r,
        "gatewise_issuer_clock_ahead_seconds",
        "Largest iat ahead of the gateway's clock seen, by issuer (clock skew estimate)",
        |i| i64::try_from(i.clock_ahead_max_secs).unwrap_or(i64::MAX),
    );
    let findings = Family::<CodeLabels, Counter>::default();
    for (code, n) in &s.inspector_findings {
        findings
            .get_or_create(&CodeLabels { code: code.clone() })
            .inc_by(*n);
    }
    r.register(
        "gatewise_inspector_findings",
        "Findings of the OAuth exchange inspector in upstream responses, by finding code",
        findings,
    );
    r
}
