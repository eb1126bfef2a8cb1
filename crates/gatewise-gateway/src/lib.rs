//! gatewise's data path: a reverse proxy that enforces OAuth at the edge
//! and explains every rejection.
//!
//! A request goes: [`server`] accepts it, [`proxy::Gateway::handle`] finds
//! the route ([`routes`]), runs the route's `jwt` policy ([`auth`], with keys
//! from [`keys`]), forwards it to a target of the route's pool
//! ([`upstream`]) and streams the answer back. Every refusal is turned into
//! HTTP in one place, [`problem`].

pub mod auth;
pub mod body;
pub mod keys;
pub mod problem;
pub mod proxy;
pub mod routes;
pub mod server;
pub mod upstream;

pub use proxy::Gateway;

/// Where the gateway gets the time from (Unix seconds). The binary passes
/// the system clock; tests pass a fixed one.
pub trait Clock: Send + Sync + 'static {
    /// Seconds since the Unix epoch.
    fn unix_now(&self) -> u64;
}

/// A clock that always says the same time (tests, replays).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub u64);

impl Clock for FixedClock {
    fn unix_now(&self) -> u64 {
        self.0
    }
}
