//! Test helpers shared by gatewise's crates: keys and tokens ([`mint`]) and
//! real HTTP servers on 127.0.0.1 ([`servers`]). Dev-dependency only.

pub mod mint;
pub mod servers;
