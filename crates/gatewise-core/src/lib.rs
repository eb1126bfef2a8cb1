//! The pure core of gatewise: OAuth 2.0, OpenID Connect and JOSE wire
//! handling, validation and diagnosis.
//!
//! This crate performs no I/O, starts no runtime and never reads the clock:
//! callers pass bytes in and the current time as a parameter, and get
//! findings back. A tidy test (`tests/tidy.rs`) holds that line.
//!
//! Entry points:
//! - [`capture::parse`] reads a captured HTTP exchange, HAR file or bare body.
//! - [`diagnose::response`] judges a captured response by what it should be.
//! - [`jose::jwt::inspect`] decodes and judges a JWT, optionally verifying it.
//! - [`explain::explain`] maps what a client library printed to likely causes.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod calllog;
pub mod capture;
pub mod catalogue;
pub mod clock;
pub mod diagnose;
pub mod explain;
pub mod finding;
pub mod har;
pub mod jose;
pub mod media;
pub mod secret;

pub use finding::{Check, Finding, Report, Severity, Verdict};

/// An error with its sources, `outer: inner: innermost` (network libraries
/// put the useful part, "connection refused", in the sources); a source
/// whose text the chain already holds is not repeated.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = inner.source();
    }
    s
}
