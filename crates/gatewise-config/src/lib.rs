//! gatewise's configuration: the TOML file format, compiled into the typed,
//! validated [`model::Config`] the gateway runs on.
//!
//! Invariant: no file reads and no environment access here; callers pass the
//! text in, so every config test is a string.

pub mod model;

pub use model::Config;
