//! The state store under test: every server test is written once, as an
//! `async fn(&Backend)`, and [`on_both_stores!`] runs it against SQLite (a
//! file in a temporary directory) and PostgreSQL (a database of its own on
//! `GATEWISE_TEST_PG_URL`, or on a cluster the test starts; skipped with a
//! notice without PostgreSQL, failing when `CI=true`).

#![allow(dead_code, unused_macros)]

use gatewise_authz::store::{self, StateStore};
use gatewise_authz::{Authz, AuthzConfig};
use gatewise_core::clock::Clock;
use gatewise_test_support::pg::PgDb;
use std::sync::Arc;

/// Generates, for each named `async fn(&Backend)`, a test in module
/// `sqlite` and one in module `postgres`.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    let backend = crate::support::Backend::sqlite();
                    crate::support::run(super::$name(&backend));
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(backend) = crate::support::Backend::postgres() {
                        crate::support::run(super::$name(&backend));
                    }
                }
            )*
        }
    };
}

/// Where a test's state lives.
pub(crate) enum Backend {
    /// `authz.db` in a temporary directory.
    Sqlite(tempfile::TempDir),
    /// A database of the test's own.
    Postgres(PgDb),
}

impl Backend {
    /// A fresh SQLite file.
    pub(crate) fn sqlite() -> Backend {
        Backend::Sqlite(tempfile::tempdir().unwrap())
    }

    /// A fresh PostgreSQL database, or `None` (after a notice) without one.
    pub(crate) fn postgres() -> Option<Backend> {
        PgDb::create().map(Backend::Postgres)
    }

    /// `sqlite` or `postgres`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// The storage URL, as in `authz.toml`.
    pub(crate) fn url(&self) -> String {
        match self {
            Backend::Sqlite(dir) => format!("sqlite:{}", dir.path().join("authz.db").display()),
            Backend::Postgres(db) => db.url.clone(),
        }
    }

    /// Opens the store (as often as the test likes: a restart opens it again).
    pub(crate) async fn store(&self) -> Arc<dyn StateStore> {
        store::open(&self.url()).await.unwrap()
    }

    /// The server on this store.
    pub(crate) async fn authz(&self, config: AuthzConfig, clock: Arc<dyn Clock>) -> Arc<Authz> {
        Arc::new(
            Authz::open(config, clock, self.store().await, None)
                .await
                .unwrap(),
        )
    }
}

/// Runs a test on a runtime of its own (two workers), outside any other
/// runtime, so a PostgreSQL database can be dropped afterwards.
pub(crate) fn run<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}
