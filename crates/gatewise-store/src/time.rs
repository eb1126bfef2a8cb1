//! Monotonic time for the writer thread's batching deadlines, retry delays
//! and log throttling. Wall-clock time (retention by age) comes from the
//! `Clock` in the writer's configuration.

use std::time::{Duration, Instant};

/// The current monotonic instant.
///
/// The writer runs on its own OS thread, outside any async runtime, so
/// tokio's pausable clock would not apply; nothing a test asserts depends on
/// these instants (only on counters and rows).
#[allow(
    clippy::disallowed_methods,
    reason = "the writer thread's batching deadlines need a monotonic clock outside any runtime"
)]
pub(crate) fn now() -> Instant {
    Instant::now()
}

/// Lets something happen at most once per period (loud log lines).
#[derive(Debug)]
pub(crate) struct Throttle {
    every: Duration,
    last: Option<Instant>,
}

impl Throttle {
    pub(crate) fn new(every: Duration) -> Self {
        Throttle { every, last: None }
    }

    /// True (and the period restarts) when nothing happened in the last
    /// period.
    pub(crate) fn ready(&mut self, now: Instant) -> bool {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < self.every => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_once_per_period() {
        let t0 = now();
        let mut t = Throttle::new(Duration::from_secs(60));
        assert!(t.ready(t0));
        assert!(!t.ready(t0 + Duration::from_secs(1)));
        assert!(!t.ready(t0 + Duration::from_secs(59)));
        assert!(t.ready(t0 + Duration::from_secs(60)));
        assert!(!t.ready(t0 + Duration::from_secs(61)));
        assert!(t.ready(t0 + Duration::from_secs(200)));
    }
}
