//! Test helpers shared by gatewise's crates: keys and tokens ([`mint`]),
//! real HTTP servers on 127.0.0.1 ([`servers`]) and PostgreSQL databases
//! for tests ([`pg`]). Dev-dependency only.

pub mod mint;
pub mod oidc_provider;
pub mod pg;
pub mod servers;
