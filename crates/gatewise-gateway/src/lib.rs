//! gatewise's data path: a reverse proxy that enforces OAuth at the edge
//! and explains every rejection.
//!
//! A request goes: [`server`] accepts it, [`proxy::Gateway::handle`] finds
//! the route ([`routes`]), runs the route's `jwt` policy ([`auth`], with keys
//! from [`keys`]), forwards it to a target of the route's pool
//! ([`upstream`]) and streams the answer back. Every refusal is turned into
//! HTTP in one place, [`problem`].

// `Denial` (the refusal, ~130 bytes) travels in `Err` through the request
// path. Refusals are the cold path and are rendered once; boxing them
// would only add an allocation per refusal.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod body;
pub mod calls;
pub mod h1;
pub mod inbound;
pub mod inspect;
pub mod introspect;
pub mod keys;
pub mod metrics;
pub mod pool;
pub mod problem;
pub mod proxy;
pub mod ratelimit;
pub mod routes;
pub mod server;
pub mod status;
pub mod tls;
pub mod upstream;

pub use proxy::Gateway;

/// Why the gateway could not be built from a configuration.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// An upstream pool could not be set up (its `ca_file`, the system roots).
    #[error("{0}")]
    Upstream(String),
    /// A secret reference could not be resolved.
    #[error("{0}")]
    Secret(String),
    /// The listener could not be set up.
    #[error("{0}")]
    Listen(String),
}

/// Where secrets referenced by the configuration come from. The binary
/// passes one that reads the process environment; library code never reads
/// the environment itself.
pub trait SecretSource: Send + Sync + 'static {
    /// The value of environment variable `name`, if set.
    fn env(&self, name: &str) -> Option<String>;
}

/// A secret source with no environment (tests; files still work).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEnv;

impl SecretSource for NoEnv {
    fn env(&self, _: &str) -> Option<String> {
        None
    }
}

/// Resolves a secret reference: an environment variable, or a file's
/// content without its trailing newline. Errors name the reference, never
/// the value.
pub fn resolve_secret(
    r: &gatewise_config::model::SecretRef,
    source: &dyn SecretSource,
) -> Result<String, String> {
    use gatewise_config::model::SecretRef;
    let v = match r {
        SecretRef::Env(name) => source
            .env(name)
            .ok_or_else(|| format!("environment variable {name} is not set"))?,
        SecretRef::File(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .trim_end_matches(['\r', '\n'])
            .to_owned(),
    };
    if v.is_empty() {
        return Err("the secret is empty".to_owned());
    }
    Ok(v)
}

/// Counters over the gateway's life (read by metrics, the admin API and
/// the shutdown log line).
#[derive(Debug, Default)]
pub struct Counters {
    /// Requests handled.
    pub requests: std::sync::atomic::AtomicU64,
    /// Requests the gateway answered itself (refusals, upstream errors).
    pub refused: std::sync::atomic::AtomicU64,
    /// Signature verifications performed (cache misses that reached a key).
    pub signature_checks: std::sync::atomic::AtomicU64,
    /// Tokens found in the verified-token cache.
    pub token_cache_hits: std::sync::atomic::AtomicU64,
    /// Requests refused by a rate limit.
    pub rate_limited: std::sync::atomic::AtomicU64,
}

impl Counters {
    /// `requests=.. refused=.. signature_checks=.. ...` for logs.
    pub fn summary(&self) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        format!(
            "requests={} refused={} signature_checks={} token_cache_hits={} rate_limited={}",
            self.requests.load(Relaxed),
            self.refused.load(Relaxed),
            self.signature_checks.load(Relaxed),
            self.token_cache_hits.load(Relaxed),
            self.rate_limited.load(Relaxed),
        )
    }
}

pub use gatewise_core::clock::{Clock, FixedClock};
