//! The one place that reads the wall clock; everything else takes time as a parameter.

/// Seconds since the Unix epoch.
#[allow(clippy::disallowed_methods)]
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The system clock, for the libraries that take a `Clock`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SystemClock;

impl gatewise_core::clock::Clock for SystemClock {
    fn unix_now(&self) -> u64 {
        now()
    }

    #[allow(clippy::disallowed_methods)]
    fn unix_millis(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}
