//! gatewise's configuration: the TOML file format, compiled into the typed,
//! validated [`model::Config`] the gateway runs on.
//!
//! - [`compile()`] turns the text of `gatewise.toml` into a [`Compiled`]
//!   configuration with its warnings, or returns every [`ConfigError`] at
//!   once, each with its TOML path, line and column.
//! - [`restart_required`] says which settings of a reload need a restart.
//! - [`EXAMPLE`] is the commented example file (`examples/gatewise.toml`).
//!
//! The file format is described key by key in `docs/config.md`.
//!
//! Invariant: no file reads and no environment access here; callers pass the
//! text in, so every config test is a string.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod compile;
mod diff;
mod error;
pub mod locate;
pub mod model;
mod raw;

pub use compile::{Compiled, Recovered, compile, deserialize_recovering, syntax_errors};
pub use diff::restart_required;
pub use error::{ConfigError, ConfigWarning, line_column};
pub use model::Config;
pub use raw::parse_duration;

/// The example configuration shipped as `examples/gatewise.toml`: every
/// section, commented. It compiles without errors or warnings (a test
/// holds that).
pub const EXAMPLE: &str = include_str!("../../../examples/gatewise.toml");
