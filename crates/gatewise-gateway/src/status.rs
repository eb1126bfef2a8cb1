//! What the gateway is doing now, for the admin API: configuration version
//! and reloads, upstream targets, each issuer's keys, counters, and what
//! the exchange inspector found. Plain serializable values, read without
//! stopping traffic.

use serde::Serialize;
use std::sync::atomic::Ordering::Relaxed;

/// A snapshot of the gateway.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayStatus {
    /// Incremented by every successful reload (1 at start).
    pub config_version: u64,
    /// The last reload attempt, if any.
    pub last_reload: Option<ReloadEvent>,
    /// Routes in the running configuration, by name.
    pub routes: Vec<String>,
    /// Upstream pools and their targets.
    pub upstreams: Vec<UpstreamStatus>,
    /// Each issuer's key cache.
    pub issuers: Vec<IssuerStatus>,
    /// Counters since start.
    pub counters: CounterValues,
    /// Exchange-inspector findings by code, most frequent first.
    pub inspector_findings: Vec<(String, u64)>,
    /// Repairs made by the inspector, by name.
    pub inspector_repairs: Vec<(String, u64)>,
}

/// A reload, successful or refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadEvent {
    /// When (Unix seconds).
    pub at: u64,
    /// What triggered it (`SIGHUP`, `the file changed`).
    pub trigger: String,
    /// Why it was refused; `None` when it was applied.
    pub error: Option<String>,
}

/// One upstream pool.
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamStatus {
    /// Its name.
    pub name: String,
    /// Its targets.
    pub targets: Vec<TargetStatus>,
}

/// One target of a pool.
#[derive(Debug, Clone, Serialize)]
pub struct TargetStatus {
    /// Base URL.
    pub base: String,
    /// Last active health check passed (true when none is configured).
    pub healthy: bool,
    /// Requests in flight now.
    pub in_flight: u64,
}

/// One issuer's key cache.
#[derive(Debug, Clone, Serialize)]
pub struct IssuerStatus {
    /// Name in the configuration.
    pub name: String,
    /// The `iss` its tokens carry.
    pub issuer: String,
    /// `kid`s loaded now.
    pub kids: Vec<String>,
    /// Seconds since the keys were loaded (`None`: never).
    pub keys_age_secs: Option<u64>,
    /// The last load error, while loads fail.
    pub last_error: Option<String>,
    /// JWKS fetches attempted.
    pub fetches: u64,
    /// Fetches that failed.
    pub fetch_errors: u64,
    /// Refetches caused by an unknown `kid`.
    pub kid_refetches: u64,
    /// Tokens refused because their `kid` stayed unknown.
    pub kid_unknown: u64,
    /// Largest `iat` ahead of the gateway's clock seen, seconds: the
    /// issuer's clock skew estimate (0 when never ahead).
    pub clock_ahead_max_secs: u64,
}

/// [`crate::Counters`] as values.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CounterValues {
    /// Requests handled.
    pub requests: u64,
    /// Requests the gateway answered itself.
    pub refused: u64,
    /// Signature verifications.
    pub signature_checks: u64,
    /// Verified-token cache hits.
    pub token_cache_hits: u64,
    /// Requests refused by a rate limit.
    pub rate_limited: u64,
}

impl From<&crate::Counters> for CounterValues {
    fn from(c: &crate::Counters) -> Self {
        CounterValues {
            requests: c.requests.load(Relaxed),
            refused: c.refused.load(Relaxed),
            signature_checks: c.signature_checks.load(Relaxed),
            token_cache_hits: c.token_cache_hits.load(Relaxed),
            rate_limited: c.rate_limited.load(Relaxed),
        }
    }
}

impl IssuerStatus {
    pub(crate) fn of(k: &crate::keys::IssuerKeys) -> Self {
        let c = &k.counters;
        IssuerStatus {
            name: k.config.name.clone(),
            issuer: k.config.issuer.clone(),
            kids: k.kids(),
            keys_age_secs: k.keys_age_secs(),
            last_error: k.last_error(),
            fetches: c.fetches.load(Relaxed),
            fetch_errors: c.fetch_errors.load(Relaxed),
            kid_refetches: c.kid_refetches.load(Relaxed),
            kid_unknown: c.kid_unknown.load(Relaxed),
            clock_ahead_max_secs: c.clock_ahead_max.load(Relaxed),
        }
    }
}
