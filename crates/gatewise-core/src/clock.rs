//! Time as a parameter: the trait every time-dependent part takes. The
//! core never reads the clock; the binary passes the system clock, tests a
//! fixed one.

/// Where time comes from (Unix seconds).
pub trait Clock: Send + Sync + 'static {
    /// Seconds since the Unix epoch.
    fn unix_now(&self) -> u64;

    /// Milliseconds since the Unix epoch (call records). Clocks without
    /// a finer reading say the start of the current second.
    fn unix_millis(&self) -> u64 {
        self.unix_now().saturating_mul(1000)
    }
}

/// A clock that always says the same time (tests, replays).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedClock(pub u64);

impl Clock for FixedClock {
    fn unix_now(&self) -> u64 {
        self.0
    }
}
