//! Per-route rate limits: GCRA (governor) in this process, behind the
//! [`Limiter`] trait so a Redis-backed cluster limiter can replace it.
//! Refusals are 429 with `Retry-After` and the `RateLimit-*` fields of
//! draft-ietf-httpapi-ratelimit-headers; allowed responses carry the
//! fields too, so clients can pace themselves.

use gatewise_config::model::RateLimit;
use governor::clock::{Clock as _, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{Quota, RateLimiter};
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
    checks: AtomicU64,
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
            Err(not_until) => Decision::Deny {
                retry_after: not_until.wait_time_from(self.limiter.clock().now()),
            },
        }
    }

    fn limit(&self) -> u32 {
        self.burst
    }

    fn window_secs(&self) -> u64 {
        self.window.as_secs().max(1)
    }
}
