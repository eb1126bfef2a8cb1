//! Per-route rate limits: GCRA (governor) in this process, behind the
//! [`Limiter`] trait so a Redis-backed cluster limiter can replace it.
//! Refusals are 429 with `Retry-After` and the `RateLimit-*` fields of
//! draft-ietf-httpapi-ratelimit-headers; allowed responses carry the
//! fields too, so clients can pace themselves.

use gatewise_config::model::{RateKey, RateLimit};
use governor::clock::{Clock as _, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{Quota, RateLimiter};
use serde::Serialize;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What a limiter decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Allowed; `remaining` more requests fit in the burst now.
    Allow {
        /// Requests left in the current burst.
        remaining: u32,
    },
    /// Refused; try again after `retry_after`.
    Deny {
        /// Time until the next request would be allowed.
        retry_after: Duration,
    },
}

/// A rate limiter keyed by a string (client id, subject, IP, header value).
pub trait Limiter: Send + Sync + std::fmt::Debug {
    /// Counts one request for `key` and decides.
    fn check(&self, key: &str) -> Decision;
    /// The burst size (for `RateLimit-Limit`).
    fn limit(&self) -> u32;
    /// Seconds until a full burst is available again (for `RateLimit-Reset`).
    fn window_secs(&self) -> u64;
    /// What it decided so far (since it was built: at start or by the
    /// last reload), for the admin API.
    fn stats(&self) -> LimiterStats;
}

/// What a limiter decided so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LimiterStats {
    /// Requests allowed.
    pub allowed: u64,
    /// Requests refused (429).
    pub limited: u64,
    /// Keys (clients, subjects, addresses, header values) it tracks now.
    pub keys: u64,
}

/// A route's rate limit as the admin API shows it: the policy and its
/// limiter's [`LimiterStats`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteRateLimit {
    /// The route's name.
    pub route: String,
    /// What the limit is counted per: `client_id`, `sub`, `client_ip` or
    /// `header:<name>`.
    pub key: String,
    /// Sustained requests per period.
    pub requests: u32,
    /// The period, ms.
    pub per_ms: u64,
    /// Requests allowed at once.
    pub burst: u32,
    /// Requests allowed.
    pub allowed: u64,
    /// Requests refused (429).
    pub limited: u64,
    /// Keys tracked now.
    pub keys: u64,
}

impl RouteRateLimit {
    /// The route `route`'s policy `config` with its limiter's `stats`.
    pub fn new(route: &str, config: &RateLimit, stats: LimiterStats) -> RouteRateLimit {
        RouteRateLimit {
            route: route.to_owned(),
            key: match &config.key {
                RateKey::ClientId => "client_id".to_owned(),
                RateKey::Subject => "sub".to_owned(),
                RateKey::ClientIp => "client_ip".to_owned(),
                RateKey::Header(name) => format!("header:{name}"),
            },
            requests: config.requests,
            per_ms: u64::try_from(config.per.as_millis()).unwrap_or(u64::MAX),
            burst: config.burst,
            allowed: stats.allowed,
            limited: stats.limited,
            keys: stats.keys,
        }
    }
}

type Keyed = RateLimiter<
    String,
    governor::state::keyed::DefaultKeyedStateStore<String>,
    DefaultClock,
    StateInformationMiddleware,
>;

/// The in-process GCRA limiter.
pub struct LocalLimiter {
    limiter: Keyed,
    burst: u32,
    window: Duration,
    /// Every check (the allowed ones are `checks - limited`: nothing more
    /// is counted on the allowing path).
    checks: AtomicU64,
    /// Checks that refused.
    limited: AtomicU64,
}

impl std::fmt::Debug for LocalLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalLimiter")
            .field("burst", &self.burst)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

/// Keys kept before idle ones are dropped (checked every this many requests).
const GC_EVERY: u64 = 4096;

impl LocalLimiter {
    /// A limiter for `config`: `requests` per `per`, bursts of `burst`.
    pub fn new(config: &RateLimit) -> LocalLimiter {
        let requests = config.requests.max(1);
        let burst = NonZeroU32::new(config.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        // One request's worth of the period; governor refills one at a time.
        let interval = (config.per / requests).max(Duration::from_nanos(1));
        let quota = Quota::with_period(interval)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        LocalLimiter {
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            burst: burst.get(),
            window: interval * burst.get(),
            checks: AtomicU64::new(0),
            limited: AtomicU64::new(0),
        }
    }
}

impl Limiter for LocalLimiter {
    fn check(&self, key: &str) -> Decision {
        if self.checks.fetch_add(1, Ordering::Relaxed) % GC_EVERY == GC_EVERY - 1 {
            self.limiter.retain_recent();
        }
        match self.limiter.check_key(&key.to_owned()) {
            Ok(state) => Decision::Allow {
                remaining: state.remaining_burst_capacity(),
            },
            Err(not_until) => {
                self.limited.fetch_add(1, Ordering::Relaxed);
                Decision::Deny {
                    retry_after: not_until.wait_time_from(self.limiter.clock().now()),
                }
            }
        }
    }

    fn limit(&self) -> u32 {
        self.burst
    }

    fn window_secs(&self) -> u64 {
        self.window.as_secs().max(1)
    }

    fn stats(&self) -> LimiterStats {
        let limited = self.limited.load(Ordering::Relaxed);
        LimiterStats {
            allowed: self.checks.load(Ordering::Relaxed).saturating_sub(limited),
            limited,
            keys: u64::try_from(self.limiter.len()).unwrap_or(u64::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_are_counted() {
        let limiter = LocalLimiter::new(&RateLimit {
            key: RateKey::Header("x-api-key".into()),
            requests: 2,
            per: Duration::from_secs(3600),
            burst: 2,
        });
        assert_eq!(limiter.stats(), LimiterStats::default());
        for key in ["a", "a", "a", "b", "a"] {
            limiter.check(key);
        }
        assert_eq!(
            limiter.stats(),
            LimiterStats {
                allowed: 3,
                limited: 2,
                keys: 2
            }
        );
        let shown = RouteRateLimit::new(
            "orders",
            &RateLimit {
                key: RateKey::Header("x-api-key".into()),
                requests: 2,
                per: Duration::from_secs(3600),
                burst: 2,
            },
            limiter.stats(),
        );
        assert_eq!(shown.key, "header:x-api-key");
        assert_eq!(shown.per_ms, 3_600_000);
        assert_eq!((shown.allowed, shown.limited, shown.keys), (3, 2, 2));
    }
}
