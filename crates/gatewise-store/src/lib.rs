//! Persistence for gatewise: the call log.
//!
//! The gateway builds a [`CallRecord`](gatewise_core::calllog::CallRecord)
//! per request and hands it to a [`RecordSender`]: a non-blocking `try_send`
//! into a bounded channel. A [`Writer`] thread drains the channel in batches
//! into a [`CallLog`] store: [`SqliteCallLog`] (embedded) or
//! [`PostgresCallLog`] (scale-out). When the store fails
//! (locked, disk full, file gone) or falls behind (the channel is full, or
//! three quarters full), records go to an append-only spool on disk and are
//! replayed, oldest first, when the store works again; the writer's key on
//! every record ([`RecordKey`]) makes replays idempotent.
//!
//! ```no_run
//! use std::sync::Arc;
//! use gatewise_core::calllog::CallRecord;
//! use gatewise_core::clock::FixedClock;
//! use gatewise_store::{SqliteCallLog, Writer, WriterConfig};
//!
//! # fn main() -> Result<(), gatewise_store::StoreError> {
//! let store = SqliteCallLog::open("calls.db")?;
//! let config = WriterConfig::new("calls.spool", Arc::new(FixedClock(0)));
//! let (sender, handle) = Writer::start(store, config)?;
//! sender.send(CallRecord::new("req-1", 1_700_000_000_000, "GET", "/"));
//! let counters = handle.shutdown()?; // flushes
//! assert_eq!(counters.queued, 1);
//! # Ok(())
//! # }
//! ```
//!
//! Reading (the admin API) uses a separate store opened on the same file:
//! SQLite in WAL mode lets readers run beside the writer. [`CallLog`] is
//! synchronous; an async caller wraps its store in a `Mutex` and calls it
//! inside `tokio::task::spawn_blocking`. The PostgreSQL store (sqlx, async)
//! implements the same trait by owning a small current-thread runtime (or
//! holding a runtime handle it was given) and blocking on its futures: the
//! writer calls it on its own thread, readers from `spawn_blocking`, so no
//! async runtime is ever blocked.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod calllog;
mod codec;
pub mod error;
pub mod load;
pub mod postgres;
mod spool;
pub mod sqlite;
mod time;
pub mod writer;

pub use calllog::{
    Bucket, CallLog, CallPage, CallQuery, Cursor, KeyedRecord, RecordKey, Retained, Retention,
    StatsQuery, StoredCall,
};
pub use error::StoreError;
pub use postgres::{PostgresCallLog, PostgresOptions};
pub use sqlite::{SqliteCallLog, SqliteOptions};
pub use writer::{Counters, Defer, Delivery, RecordSender, Writer, WriterConfig, WriterHandle};
