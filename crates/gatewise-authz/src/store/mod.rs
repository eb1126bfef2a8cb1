//! The authorization server's state behind one trait, [`StateStore`], with
//! two implementations chosen by URL ([`open`]):
//!
//! - [`sqlite::SqliteStateStore`] (`sqlite:PATH`, `sqlite::memory:`): the
//!   default, one file next to the configuration (created `0600`), or
//!   memory for `--ephemeral`;
//! - [`postgres::PostgresStateStore`] (`postgres://...`): several servers
//!   sharing one state.
//!
//! What is kept: signing keys (so a restart keeps the `kid`s published and
//! the tokens signed before it valid), authorization codes, refresh tokens
//! with their families (rotation and reuse detection), opaque access
//! tokens, device authorizations (RFC 8628), revoked refresh-token
//! families, revoked JWT `jti`s, and the
//! `jti`s of client assertions already seen (RFC 7523 §3, item 7: replay).
//! Clients and users come from the configuration file, not from here.
//!
//! Tokens and codes are never stored: only their SHA-256 (`hash`), so a
//! copy of the database does not hand out live credentials. Private keys
//! are PKCS#8, sealed with AES-256-GCM when a key-encryption key is
//! configured ([`crate::keys::Sealer`]).
//!
//! The trait is asynchronous (the server is an axum service): SQLite runs
//! each statement inline under a mutex (one indexed statement on a local
//! file or in memory, microseconds), PostgreSQL through an sqlx pool on the
//! server's runtime, which reconnects by itself after a server restart.

pub mod postgres;
pub mod sqlite;

use gatewise_core::jose::Alg;
use serde_json::Value;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What a [`StateStore`] method returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Why the state store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage URL is not one of the accepted forms.
    #[error("storage URL `{url}`: {reason}")]
    BadUrl {
        /// The URL, its password replaced by `***`.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The database refused or failed.
    #[error("{doing} ({target}): {message}")]
    Backend {
        /// What the store was doing.
        doing: &'static str,
        /// The database, without a password.
        target: String,
        /// The database's message.
        message: String,
    },
    /// The database was written by a newer gatewise.
    #[error(
        "{target}: the state schema is version {found}, newer than this build knows ({known}); upgrade gatewise"
    )]
    SchemaTooNew {
        /// The database, without a password.
        target: String,
        /// The version found.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// A stored value cannot be read back.
    #[error("{target}: stored {what} is unreadable: {message}")]
    Corrupt {
        /// The database, without a password.
        target: String,
        /// Which value.
        what: &'static str,
        /// Why.
        message: String,
    },
}

/// Which key ring a signing key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ring {
    /// Access tokens (the configured algorithm).
    Access,
    /// ID tokens, RS256 (OpenID Connect Core §15.1), when access tokens
    /// use another algorithm.
    Id,
}

impl Ring {
    /// The name stored in the database.
    pub fn name(self) -> &'static str {
        match self {
            Ring::Access => "access",
            Ring::Id => "id",
        }
    }

    fn parse(s: &str) -> Option<Ring> {
        match s {
            "access" => Some(Ring::Access),
            "id" => Some(Ring::Id),
            _ => None,
        }
    }
}

/// A signing key as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// Its ring.
    pub ring: Ring,
    /// Its algorithm.
    pub alg: Alg,
    /// PKCS#8 DER, or sealed ([`crate::keys::Sealer`]).
    pub private: Vec<u8>,
    /// When it was made (Unix seconds).
    pub created_at: u64,
    /// Whether it signs new tokens (else it is a previous key, still
    /// published).
    pub active: bool,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the private key, sealed or not.
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("ring", &self.ring)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

/// What a grant record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantKind {
    /// An authorization code (RFC 6749 §4.1.2).
    Code,
    /// A refresh token (RFC 6749 §6).
    Refresh,
    /// An opaque access token and its claims.
    Opaque,
}

impl GrantKind {
    /// The name stored in the database.
    pub fn name(self) -> &'static str {
        match self {
            GrantKind::Code => "code",
            GrantKind::Refresh => "refresh",
            GrantKind::Opaque => "opaque",
        }
    }
}

/// An issued code or token, found by the SHA-256 of its value.
#[derive(Debug, Clone, PartialEq)]
pub struct GrantRecord {
    /// What it is.
    pub kind: GrantKind,
    /// SHA-256 of the code or token.
    pub hash: [u8; 32],
    /// The client it was issued to.
    pub client_id: String,
    /// The refresh token family (a code: the family it produced).
    pub family: Option<String>,
    /// Expiry (Unix seconds).
    pub exp: u64,
    /// Used already (a code redeemed, a refresh token rotated).
    pub used: bool,
    /// The rest (user, scope, PKCE challenge, claims...), as JSON.
    pub data: Value,
}

/// Where a device authorization stands (RFC 8628 §3.3, §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    /// The user has not decided yet: polls get `authorization_pending`.
    Pending,
    /// The user approved: the next poll gets the tokens.
    Approved,
    /// The user denied: polls get `access_denied`.
    Denied,
    /// The tokens were issued: the device code is spent.
    Redeemed,
}

impl DeviceStatus {
    /// The name stored in the database.
    pub fn name(self) -> &'static str {
        match self {
            DeviceStatus::Pending => "pending",
            DeviceStatus::Approved => "approved",
            DeviceStatus::Denied => "denied",
            DeviceStatus::Redeemed => "redeemed",
        }
    }

    /// The status of a stored name.
    pub fn parse(s: &str) -> Option<DeviceStatus> {
        match s {
            "pending" => Some(DeviceStatus::Pending),
            "approved" => Some(DeviceStatus::Approved),
            "denied" => Some(DeviceStatus::Denied),
            "redeemed" => Some(DeviceStatus::Redeemed),
            _ => None,
        }
    }
}

/// A device authorization (RFC 8628 §3.2): found by the SHA-256 of its
/// device code (polls) or of its normalised user code (the verification
/// page); neither code is stored in clear.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceRecord {
    /// SHA-256 of the device code.
    pub hash: [u8; 32],
    /// SHA-256 of the user code, normalised (upper case, no separator).
    pub user_code: [u8; 32],
    /// The client that asked.
    pub client_id: String,
    /// Expiry (Unix seconds).
    pub exp: u64,
    /// The polling interval in seconds (raised by `slow_down`, RFC 8628 §3.5).
    pub interval: u64,
    /// When the client last polled (Unix seconds), if it did.
    pub last_poll: Option<u64>,
    /// Where it stands.
    pub status: DeviceStatus,
    /// The rest (scope, resource; after approval the user and `auth_time`), as JSON.
    pub data: Value,
}

/// The authorization server's persistent state. See the module docs.
pub trait StateStore: Send + Sync + fmt::Debug {
    /// The store, for messages: `sqlite:PATH`, `sqlite::memory:` or
    /// `postgres://user@host:port/db` (never a password).
    fn describe(&self) -> String;

    /// Every published key (active and previous), newest first.
    fn keys(&self) -> StoreFuture<'_, Vec<StoredKey>>;

    /// Makes `key` the active key of its ring, if the ring's active key is
    /// still `expected` (`None`: the ring is empty): a compare-and-swap, so
    /// two servers rotating at once make one new key, not two. The old
    /// active key stays published (`overlap`; at most `keep_previous`
    /// previous keys, the oldest deleted) or is deleted at once. Returns
    /// whether `key` was installed.
    fn install_key(
        &self,
        key: StoredKey,
        expected: Option<String>,
        overlap: bool,
        keep_previous: usize,
    ) -> StoreFuture<'_, bool>;

    /// Stores a code or token (replacing one with the same hash).
    fn put_grant(&self, grant: GrantRecord) -> StoreFuture<'_, ()>;

    /// The code or token with this hash.
    fn grant(&self, kind: GrantKind, hash: [u8; 32]) -> StoreFuture<'_, Option<GrantRecord>>;

    /// Marks it used if it was not: `true` when this call did it, `false`
    /// when it was used already (or is unknown). Atomic, so two
    /// concurrent redemptions cannot both succeed.
    fn mark_used(&self, kind: GrantKind, hash: [u8; 32]) -> StoreFuture<'_, bool>;

    /// Records the refresh family a code produced.
    fn set_family(&self, kind: GrantKind, hash: [u8; 32], family: String) -> StoreFuture<'_, ()>;

    /// Deletes a code or token.
    fn delete_grant(&self, kind: GrantKind, hash: [u8; 32]) -> StoreFuture<'_, ()>;

    /// Revokes a refresh token family until `exp` (after which its tokens
    /// have expired anyway).
    fn revoke_family(&self, family: String, exp: u64) -> StoreFuture<'_, ()>;

    /// Whether the family is revoked.
    fn family_revoked(&self, family: String) -> StoreFuture<'_, bool>;

    /// Revokes a JWT access token by `jti` until `exp`.
    fn revoke_jti(&self, jti: String, exp: u64) -> StoreFuture<'_, ()>;

    /// Whether the `jti` is revoked.
    fn jti_revoked(&self, jti: String) -> StoreFuture<'_, bool>;

    /// Records a client assertion's `jti` (RFC 7523 §3, item 7) until
    /// `exp`: `true` the first time, `false` when it was seen already
    /// (a replay, to refuse).
    fn consume_jti(&self, client_id: String, jti: String, exp: u64) -> StoreFuture<'_, bool>;

    /// Stores a device authorization (RFC 8628 §3.2).
    fn put_device(&self, device: DeviceRecord) -> StoreFuture<'_, ()>;

    /// The device authorization with this device code hash.
    fn device(&self, hash: [u8; 32]) -> StoreFuture<'_, Option<DeviceRecord>>;

    /// The device authorization with this user code hash.
    fn device_by_user_code(&self, user_code: [u8; 32]) -> StoreFuture<'_, Option<DeviceRecord>>;

    /// Records a poll at `now` and the interval from now on (RFC 8628 §3.5).
    fn device_polled(&self, hash: [u8; 32], now: u64, interval: u64) -> StoreFuture<'_, ()>;

    /// Records the user's decision (`Approved` or `Denied`, with `data`) if
    /// the authorization is still pending and not expired at `now`: `true`
    /// when this call decided it. A compare-and-swap, like [`StateStore::mark_used`].
    fn decide_device(
        &self,
        user_code: [u8; 32],
        status: DeviceStatus,
        data: Value,
        now: u64,
    ) -> StoreFuture<'_, bool>;

    /// Marks an approved authorization redeemed: `true` when this call did
    /// it (two polls racing get one set of tokens).
    fn redeem_device(&self, hash: [u8; 32]) -> StoreFuture<'_, bool>;

    /// Deletes what expired before `now` (used codes are kept an hour past
    /// expiry, so a replay is still recognised). Returns the rows deleted.
    fn purge(&self, now: u64) -> StoreFuture<'_, u64>;
}

/// How [`open`] reaches a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `sqlite:PATH` (or `sqlite://PATH`).
    SqliteFile(std::path::PathBuf),
    /// `sqlite::memory:`: nothing survives the process.
    SqliteMemory,
    /// `postgres://...` or `postgresql://...`.
    Postgres(String),
}

impl StoreUrl {
    /// Parses a storage URL.
    pub fn parse(url: &str) -> Result<StoreUrl, StoreError> {
        let bad = |reason: &str| StoreError::BadUrl {
            url: redact_url(url),
            reason: reason.to_owned(),
        };
        if url == "sqlite::memory:" || url == "sqlite://:memory:" {
            return Ok(StoreUrl::SqliteMemory);
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(StoreUrl::Postgres(url.to_owned()));
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(bad("no file: write `sqlite:PATH` or `sqlite::memory:`"));
            }
            return Ok(StoreUrl::SqliteFile(path.into()));
        }
        Err(bad(
            "expected `sqlite:PATH`, `sqlite::memory:` or `postgres://user:password@host:port/db`",
        ))
    }
}

/// Opens (and creates or upgrades the schema of) the store at `url`.
/// Call it on the runtime that will serve: a PostgreSQL pool belongs to
/// the runtime it was made on.
pub async fn open(url: &str) -> Result<Arc<dyn StateStore>, StoreError> {
    Ok(match StoreUrl::parse(url)? {
        StoreUrl::SqliteFile(path) => Arc::new(sqlite::SqliteStateStore::open(&path)?),
        StoreUrl::SqliteMemory => Arc::new(sqlite::SqliteStateStore::memory()?),
        StoreUrl::Postgres(url) => Arc::new(postgres::PostgresStateStore::connect(&url).await?),
    })
}

/// `url` with the password in its user info replaced by `***`, for
/// messages.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let (head, rest) = url.split_at(scheme_end + 3);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let (userinfo, host) = authority.split_at(at);
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{head}{user}:***{host}{tail}"),
        None => url.to_owned(),
    }
}

/// How long used codes and expired tokens are kept: a replayed code is
/// still recognised (and revokes what it produced) for this long after it
/// expired.
pub const KEEP_EXPIRED: u64 = 3600;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            StoreUrl::parse("sqlite:authz.db").unwrap(),
            StoreUrl::SqliteFile("authz.db".into())
        );
        assert_eq!(
            StoreUrl::parse("sqlite:///var/lib/gw/authz.db").unwrap(),
            StoreUrl::SqliteFile("/var/lib/gw/authz.db".into())
        );
        assert_eq!(
            StoreUrl::parse("sqlite::memory:").unwrap(),
            StoreUrl::SqliteMemory
        );
        assert!(matches!(
            StoreUrl::parse("postgres://u:p@127.0.0.1/db").unwrap(),
            StoreUrl::Postgres(_)
        ));
        let e = StoreUrl::parse("mysql://u:hunter2@h/db").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(StoreUrl::parse("sqlite:").is_err());
        assert_eq!(
            redact_url("postgres://u:hunter2@h:5432/db?x=1"),
            "postgres://u:***@h:5432/db?x=1"
        );
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
    }
}
