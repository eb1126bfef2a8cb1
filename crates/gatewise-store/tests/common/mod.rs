//! Helpers shared by the store's tests: records with every field, stores
//! that fail or stall on demand, waiting for the writer, and the two
//! stores behind one interface ([`TestDb`]) with [`on_both_stores!`], which
//! runs a test function once against SQLite and once against PostgreSQL.
#![allow(dead_code, unreachable_pub, missing_docs)]

pub use gatewise_test_support::pg;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatewise_core::calllog::{
    CallRecord, FindingRef, Outcome, Step, TraceStep, mask_headers, token_fingerprint,
};
use gatewise_core::clock::FixedClock;
use gatewise_store::{
    Bucket, CallLog, CallPage, CallQuery, KeyedRecord, PostgresCallLog, RecordKey, Retained,
    Retention, SqliteCallLog, StatsQuery, StoreError, StoredCall, WriterConfig,
};

/// Generates, for each named function `fn(&TestDb)`, a test in module
/// `sqlite` and one in module `postgres` (skipped with a notice when no
/// PostgreSQL can be had, failing when `CI=true`).
#[allow(unused_macros)]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(&crate::common::TestDb::sqlite());
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(db) = crate::common::TestDb::postgres() {
                        super::$name(&db);
                    }
                }
            )*
        }
    };
}

/// Where a test's store lives.
pub enum Backend {
    /// `calls.db` in the test's directory.
    Sqlite(std::path::PathBuf),
    /// A database of the test's own.
    Postgres(pg::PgDb),
}

/// A test's store (opened as often as the test likes) and a directory
/// for its spool.
pub struct TestDb {
    pub dir: tempfile::TempDir,
    pub backend: Backend,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls.db");
        TestDb {
            dir,
            backend: Backend::Sqlite(path),
        }
    }

    /// `None` when PostgreSQL is unavailable (and not required).
    pub fn postgres() -> Option<TestDb> {
        let db = pg::PgDb::create()?;
        Some(TestDb {
            dir: tempfile::tempdir().unwrap(),
            backend: Backend::Postgres(db),
        })
    }

    /// A second, empty store of the same kind.
    pub fn another(&self) -> TestDb {
        match self.backend {
            Backend::Sqlite(_) => TestDb::sqlite(),
            Backend::Postgres(_) => TestDb::postgres().unwrap(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    pub fn try_open(&self) -> Result<AnyStore, StoreError> {
        Ok(match &self.backend {
            Backend::Sqlite(path) => AnyStore::Sqlite(SqliteCallLog::open(path)?),
            Backend::Postgres(db) => AnyStore::Postgres(Box::new(PostgresCallLog::open(&db.url)?)),
        })
    }

    pub fn open(&self) -> AnyStore {
        self.try_open().unwrap()
    }

    /// The spool directory for a writer.
    pub fn spool(&self) -> std::path::PathBuf {
        self.dir.path().join("spool")
    }

    /// Rows in the database and distinct request ids among them, counted
    /// by the database itself (not through the store).
    pub fn rows(&self) -> (u64, u64) {
        match &self.backend {
            Backend::Sqlite(path) => rows(path),
            Backend::Postgres(db) => {
                let (n, ids): (i64, i64) = pg::block_on(async {
                    use sqlx::Connection;
                    let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
                    sqlx::query_as(
                        "SELECT count(*), count(DISTINCT request_id) FROM gatewise_calls",
                    )
                    .fetch_one(&mut c)
                    .await
                    .unwrap()
                });
                (n as u64, ids as u64)
            }
        }
    }

    /// Sets the stored schema version, as a newer build would.
    pub fn set_schema_version(&self, v: i64) {
        match &self.backend {
            Backend::Sqlite(path) => rusqlite::Connection::open(path)
                .unwrap()
                .pragma_update(None, "user_version", v)
                .unwrap(),
            Backend::Postgres(db) => pg::execute(
                &db.url,
                &[&format!("UPDATE gatewise_calls_schema SET version = {v}")],
            )
            .unwrap(),
        }
    }

    /// Runs statements on the database itself (not through the store).
    pub fn execute(&self, statements: &[&str]) {
        match &self.backend {
            Backend::Sqlite(path) => {
                let c = rusqlite::Connection::open(path).unwrap();
                for s in statements {
                    c.execute_batch(s).unwrap();
                }
            }
            Backend::Postgres(db) => pg::execute(&db.url, statements).unwrap(),
        }
    }

    /// One integer from the database itself (not through the store).
    pub fn count_sql(&self, sql: &str) -> i64 {
        match &self.backend {
            Backend::Sqlite(path) => rusqlite::Connection::open(path)
                .unwrap()
                .query_row(sql, [], |r| r.get(0))
                .unwrap(),
            Backend::Postgres(db) => pg::scalar(&db.url, sql),
        }
    }

    /// The table of findings by rule (migration 2).
    pub fn findings_table(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "call_findings",
            Backend::Postgres(_) => "gatewise_call_findings",
        }
    }

    /// Takes the database back to schema version 1, as a build before the
    /// findings table left it (the calls and their `detail` stay).
    pub fn downgrade_to_v1(&self) {
        match &self.backend {
            Backend::Sqlite(_) => self.execute(&[
                "DROP TRIGGER calls_delete_findings",
                "DROP TABLE call_findings",
                "PRAGMA user_version = 1",
            ]),
            Backend::Postgres(_) => self.execute(&[
                "DROP TRIGGER gatewise_calls_findings_gone ON gatewise_calls",
                "DROP FUNCTION gatewise_call_findings_gone()",
                "DROP TABLE gatewise_call_findings",
                "UPDATE gatewise_calls_schema SET version = 1",
            ]),
        }
    }

    /// What the store keeps, as bytes: the SQLite files, or a dump of the
    /// PostgreSQL table (every row as text).
    pub fn stored_bytes(&self) -> Vec<(String, Vec<u8>)> {
        match &self.backend {
            Backend::Sqlite(_) => std::fs::read_dir(self.dir.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.is_file() && p.display().to_string().contains("calls.db"))
                .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
                .collect(),
            Backend::Postgres(db) => {
                let dump: Option<String> = pg::scalar(
                    &db.url,
                    "SELECT string_agg(t::text, E'\\n') FROM gatewise_calls t",
                );
                vec![(
                    "gatewise_calls (table dump)".to_owned(),
                    dump.unwrap_or_default().into_bytes(),
                )]
            }
        }
    }
}

/// Either store, with what the tests need beyond [`CallLog`].
pub enum AnyStore {
    Sqlite(SqliteCallLog),
    Postgres(Box<PostgresCallLog>),
}

impl AnyStore {
    pub fn used_bytes(&mut self) -> u64 {
        match self {
            AnyStore::Sqlite(s) => s.used_bytes().unwrap(),
            AnyStore::Postgres(s) => s.used_bytes().unwrap(),
        }
    }

    pub fn schema_version(&mut self) -> i64 {
        match self {
            AnyStore::Sqlite(s) => s.schema_version().unwrap(),
            AnyStore::Postgres(s) => s.schema_version().unwrap(),
        }
    }

    fn inner(&mut self) -> &mut dyn CallLog {
        match self {
            AnyStore::Sqlite(s) => s,
            AnyStore::Postgres(s) => &mut **s,
        }
    }
}

impl CallLog for AnyStore {
    fn append(&mut self, batch: &[KeyedRecord]) -> Result<usize, StoreError> {
        self.inner().append(batch)
    }
    fn query(&mut self, q: &CallQuery) -> Result<CallPage, StoreError> {
        self.inner().query(q)
    }
    fn get(&mut self, id: &str) -> Result<Option<StoredCall>, StoreError> {
        self.inner().get(id)
    }
    fn stats(&mut self, q: &StatsQuery) -> Result<Vec<Bucket>, StoreError> {
        self.inner().stats(q)
    }
    fn top_error_clients(
        &mut self,
        q: &StatsQuery,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        self.inner().top_error_clients(q, limit)
    }
    fn retain(&mut self, p: &Retention, now_ms: u64) -> Result<Retained, StoreError> {
        self.inner().retain(p, now_ms)
    }
    fn count(&mut self) -> Result<u64, StoreError> {
        self.inner().count()
    }
}

pub const BASE_MS: u64 = 1_780_000_000_000;

/// A record with every field set; `i` varies route, status, client, ...
pub fn record(i: u64) -> CallRecord {
    let mut r = CallRecord::new(
        format!("req-{i}"),
        BASE_MS + i * 1_000,
        ["GET", "POST"][(i % 2) as usize],
        format!("/api/items/{i}"),
    );
    r.trace_id = Some(format!("{i:032x}"));
    // The gateway's span and, for every other call, the client's.
    r.span_id = Some(format!("{:016x}", i + 1));
    r.parent_span_id = i.is_multiple_of(2).then(|| format!("{:016x}", i + 7));
    r.sampled = Some(!i.is_multiple_of(3));
    r.route = Some(["orders", "users", "billing"][(i % 3) as usize].to_owned());
    r.upstream = Some("backend".to_owned());
    r.upstream_addr = Some(format!("127.0.0.1:{}", 9000 + i % 2));
    r.status = [200, 200, 401, 403, 502][(i % 5) as usize];
    r.reason = match r.status {
        401 => Some("jwt-expired".to_owned()),
        403 => Some("insufficient-scope".to_owned()),
        502 => Some("upstream-unreachable".to_owned()),
        _ => None,
    };
    r.bytes_in = i * 3;
    r.bytes_out = i * 7;
    r.total_us = 500 + i;
    r.auth_us = Some(40 + i % 10);
    r.upstream_first_byte_us = Some(300 + i);
    r.upstream_total_us = Some(400 + i);
    r.client_ip = Some(if i.is_multiple_of(2) {
        [192, 0, 2, (i % 250) as u8].into()
    } else {
        "2001:db8::1".parse().unwrap()
    });
    r.issuer = Some(format!("https://issuer-{}.test", i % 2));
    r.kid = Some("k1".to_owned());
    r.client_id = Some(format!("client-{}", i % 5));
    r.sub = Some(format!("user-{}", i % 7));
    r.scopes = vec!["read".to_owned(), "write".to_owned()];
    r.token_fingerprint = Some(token_fingerprint(&format!("token-{i}")));
    r.trace = vec![
        TraceStep::new(Step::Route, Outcome::Ok, 1),
        TraceStep {
            step: Step::Jwt,
            outcome: if r.status == 401 {
                Outcome::Refused
            } else {
                Outcome::Ok
            },
            reason: r.reason.clone(),
            detail: Some("exp 30 s ago".to_owned()),
            micros: 40,
        },
        TraceStep::new(Step::RateLimit, Outcome::Skipped, 0),
    ];
    r.findings = vec![FindingRef {
        rule: "TR-04".to_owned(),
        code: "token-access-token-missing".to_owned(),
        severity: "error".to_owned(),
    }];
    r.request_headers = mask_headers([
        ("host", "api.test".to_owned()),
        ("authorization", format!("Bearer token-{i}")),
    ]);
    r.response_headers = mask_headers([("content-type", "application/json")]);
    r
}

pub fn keyed(i: u64) -> KeyedRecord {
    KeyedRecord {
        key: RecordKey {
            writer: 1,
            seq: i as i64,
        },
        record: record(i),
    }
}

/// Polls `cond` until it holds (10 s at most).
#[allow(clippy::disallowed_methods)]
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A writer configuration for tests: small batches, quick retries.
pub fn config(spool: &Path) -> WriterConfig {
    let mut c = WriterConfig::new(spool, Arc::new(FixedClock(BASE_MS / 1000)));
    c.batch_size = 100;
    c.batch_wait = Duration::from_millis(5);
    c.retry_every = Duration::from_millis(10);
    // Tests share two cores with other tests: an indexer at background
    // priority could wait long enough to trip a timeout.
    // `the_indexer_runs_at_background_priority` covers the default.
    c.background_indexer = false;
    c.seal_after = Duration::from_millis(20);
    // The tests' own load must not hold the indexer back;
    // `a_busy_machine_defers_indexing` covers it.
    c.defer = None;
    c
}

/// Rows in the SQLite database and distinct request ids among them.
pub fn rows(db: &Path) -> (u64, u64) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(
        "SELECT count(*), count(DISTINCT request_id) FROM calls",
        [],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
    )
    .unwrap()
}

/// What a [`Flaky`] store does on `append`.
#[derive(Debug, Default)]
pub struct Switches {
    /// Fail without touching the store.
    pub down: AtomicBool,
    /// Store the batch, then report failure (a commit whose answer was
    /// lost): the writer spools what is already stored.
    pub commit_then_fail: AtomicBool,
}

/// A store that fails on demand (the "database unavailable" of the tests).
pub struct Flaky<S> {
    pub inner: S,
    pub switches: Arc<Switches>,
}

impl<S: CallLog> Flaky<S> {
    pub fn new(inner: S) -> (Self, Arc<Switches>) {
        let switches = Arc::new(Switches::default());
        (
            Flaky {
                inner,
                switches: Arc::clone(&switches),
            },
            switches,
        )
    }
}

fn unavailable() -> StoreError {
    StoreError::Backend("database unavailable (test)".into())
}

impl<S: CallLog> CallLog for Flaky<S> {
    fn append(&mut self, batch: &[KeyedRecord]) -> Result<usize, StoreError> {
        if self.switches.down.load(SeqCst) {
            return Err(unavailable());
        }
        let n = self.inner.append(batch)?;
        if self.switches.commit_then_fail.load(SeqCst) {
            return Err(unavailable());
        }
        Ok(n)
    }
    fn query(&mut self, q: &CallQuery) -> Result<CallPage, StoreError> {
        self.inner.query(q)
    }
    fn get(&mut self, id: &str) -> Result<Option<StoredCall>, StoreError> {
        self.inner.get(id)
    }
    fn stats(&mut self, q: &StatsQuery) -> Result<Vec<Bucket>, StoreError> {
        self.inner.stats(q)
    }
    fn top_error_clients(
        &mut self,
        q: &StatsQuery,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        self.inner.top_error_clients(q, limit)
    }
    fn retain(&mut self, p: &Retention, now_ms: u64) -> Result<Retained, StoreError> {
        self.inner.retain(p, now_ms)
    }
    fn count(&mut self) -> Result<u64, StoreError> {
        self.inner.count()
    }
}

/// A store whose next `append` stalls until released: a database that is
/// far too slow.
pub struct Gated<S> {
    pub inner: S,
    pub gate: Arc<Gate>,
}

#[derive(Debug)]
pub struct Gate {
    armed: AtomicBool,
    entered: Mutex<mpsc::Sender<()>>,
    release: Mutex<mpsc::Receiver<()>>,
}

pub struct GateControl {
    pub entered: mpsc::Receiver<()>,
    pub release: mpsc::Sender<()>,
}

impl<S: CallLog> Gated<S> {
    pub fn new(inner: S) -> (Self, Arc<Gate>, GateControl) {
        let (entered_tx, entered_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel();
        let gate = Arc::new(Gate {
            armed: AtomicBool::new(true),
            entered: Mutex::new(entered_tx),
            release: Mutex::new(release_rx),
        });
        (
            Gated {
                inner,
                gate: Arc::clone(&gate),
            },
            gate,
            GateControl {
                entered: entered_rx,
                release: release_tx,
            },
        )
    }
}

impl<S: CallLog> CallLog for Gated<S> {
    fn append(&mut self, batch: &[KeyedRecord]) -> Result<usize, StoreError> {
        if self.gate.armed.swap(false, SeqCst) {
            let _ = self.gate.entered.lock().unwrap().send(());
            let _ = self.gate.release.lock().unwrap().recv();
        }
        self.inner.append(batch)
    }
    fn query(&mut self, q: &CallQuery) -> Result<CallPage, StoreError> {
        self.inner.query(q)
    }
    fn get(&mut self, id: &str) -> Result<Option<StoredCall>, StoreError> {
        self.inner.get(id)
    }
    fn stats(&mut self, q: &StatsQuery) -> Result<Vec<Bucket>, StoreError> {
        self.inner.stats(q)
    }
    fn top_error_clients(
        &mut self,
        q: &StatsQuery,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        self.inner.top_error_clients(q, limit)
    }
    fn retain(&mut self, p: &Retention, now_ms: u64) -> Result<Retained, StoreError> {
        self.inner.retain(p, now_ms)
    }
    fn count(&mut self) -> Result<u64, StoreError> {
        self.inner.count()
    }
}
