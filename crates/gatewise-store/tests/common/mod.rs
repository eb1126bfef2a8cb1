//! Helpers shared by the store's tests: records with every field, stores
//! that fail or stall on demand, waiting for the writer.
#![allow(dead_code, unreachable_pub, missing_docs)]

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
    Bucket, CallLog, CallPage, CallQuery, KeyedRecord, RecordKey, Retained, Retention,
    SqliteCallLog, StatsQuery, StoreError, StoredCall, WriterConfig,
};

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
            start.elapsed() < Duration::from_secs(10),
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
    c
}

/// Rows in the database and distinct request ids among them.
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
    fn retain(&mut self, p: &Retention, now_ms: u64) -> Result<Retained, StoreError> {
        self.inner.retain(p, now_ms)
    }
    fn count(&mut self) -> Result<u64, StoreError> {
        self.inner.count()
    }
}

/// A store whose next `append` stalls until released: a database that is
/// far too slow.
pub struct Gated {
    pub inner: SqliteCallLog,
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

impl Gated {
    pub fn new(inner: SqliteCallLog) -> (Self, Arc<Gate>, GateControl) {
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

impl CallLog for Gated {
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
    fn retain(&mut self, p: &Retention, now_ms: u64) -> Result<Retained, StoreError> {
        self.inner.retain(p, now_ms)
    }
    fn count(&mut self) -> Result<u64, StoreError> {
        self.inner.count()
    }
}
