//! The store's error type.

use std::path::PathBuf;
use std::time::Duration;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite refused (locked, busy, disk full, I/O error, ...).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file operation failed (the spool, the database's directory).
    #[error("{context}: {source}")]
    Io {
        /// What was being done, and on which path.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The database was written by a newer build.
    #[error("the call log's schema version is {found}, newer than this build's {known}")]
    SchemaTooNew {
        /// `PRAGMA user_version` found in the file.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// The database file was removed, renamed or replaced while open;
    /// writing on would go to a file nobody reads. The store reopens the
    /// path on its next call.
    #[error("the database file {} was moved, removed or replaced", .0.display())]
    Moved(PathBuf),
    /// A stored record could not be read back.
    #[error("stored call {id} is unreadable: {reason}")]
    Corrupt {
        /// Row id.
        id: i64,
        /// What is wrong with it.
        reason: String,
    },
    /// A pagination cursor that this store did not hand out.
    #[error("invalid cursor {0:?}")]
    BadCursor(String),
    /// The writer thread ended abnormally.
    #[error("the call-log writer thread panicked")]
    WriterPanicked,
    /// PostgreSQL could not be reached, refused the login or a statement.
    /// The connection is dropped; the next call connects again.
    #[error("PostgreSQL {target}: {doing}: {source}")]
    Postgres {
        /// The server and database as `user@host:port/database` (never
        /// the password).
        target: String,
        /// What the store was doing.
        doing: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// PostgreSQL did not answer in time. The connection is dropped; the
    /// next call connects again.
    #[error("PostgreSQL {target}: {doing}: no answer within {after:?}")]
    PostgresTimeout {
        /// The server and database as `user@host:port/database`.
        target: String,
        /// What the store was doing.
        doing: &'static str,
        /// The deadline that passed.
        after: Duration,
    },
    /// A database URL that cannot be used.
    #[error("invalid database URL {url}: {reason}")]
    BadUrl {
        /// The URL with its password replaced by `***`.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Another backend's error (a test double).
    #[error("{0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }
}
