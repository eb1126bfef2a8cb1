//! gatewise's embedded authorization server: a standards-following OAuth
//! 2.1 server for development, tests and `gatewise demo`.
//!
//! This first slice serves what a resource server and a machine client
//! need: discovery metadata at both well-known paths (RFC 8414, OpenID
//! Connect Discovery), the JWKS, the token endpoint with the
//! `client_credentials` grant (RFC 6749 §4.4) issuing RFC 9068 JWT access
//! tokens (audience from RFC 8707 `resource`) or opaque tokens,
//! introspection (RFC 7662) and revocation (RFC 7009); the authorization
//! code grant with PKCE, refresh rotation, the device authorization grant
//! (RFC 8628), UserInfo (OpenID Connect Core §5.3), and client
//! authentication with secrets, `none` or `private_key_jwt` (RFC 7523). Key rotation keeps
//! the previous keys published. State (keys, codes, refresh tokens,
//! revocations) is in a [`store::StateStore`]: SQLite or PostgreSQL.
//!
//! - [`keys`]: signing keys and the key ring.
//! - [`clients`]: registered clients and their authentication (RFC 6749 §2.3).
//! - [`server`]: the HTTP endpoints (axum) and the OAuth error responses.
//! - [`config`]: `authz.toml`, validated with every error's position.
//! - [`store`]: the persistent state (SQLite, PostgreSQL).
//! - [`device`]: the device authorization grant (RFC 8628) and its
//!   verification page.
//! - [`faults`]: fault mode, the broken responses served on demand
//!   (`docs/faults.md`).

pub mod clients;
pub mod config;
pub mod device;
pub mod faults;
pub mod flow;
pub mod keys;
pub mod server;
pub mod store;
pub mod throttle;

pub use server::{Authz, AuthzConfig};

/// Errors of the authorization server's setup.
#[derive(Debug, thiserror::Error)]
pub enum AuthzError {
    /// Key generation or signing failed.
    #[error("crypto: {0}")]
    Crypto(String),
    /// The configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// The state store failed.
    #[error("state store: {0}")]
    Store(#[from] store::StoreError),
}
