//! The writer: the request path never waits, and every record sent ends up
//! in the database exactly once, through failures, stalls and restarts.
//! The tests in `on_both_stores!` run against SQLite and PostgreSQL; the
//! rest are about what only SQLite's file can do (a lock, a replaced file).

#[macro_use]
mod common;

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{BASE_MS, Flaky, Gated, TestDb, config, record, rows, wait_until};
use gatewise_core::calllog::{CallRecord, mask_headers, record_path, token_fingerprint};
use gatewise_store::load::LoadProbe;
use gatewise_store::{
    CallLog, CallQuery, Defer, Delivery, Retention, SqliteCallLog, SqliteOptions, Writer,
};

on_both_stores!(
    records_flow_into_the_database,
    an_unavailable_database_spools_and_replays_exactly_once,
    a_commit_whose_answer_was_lost_is_not_stored_twice,
    a_stuck_store_sends_records_to_the_spool_without_waiting,
    shutdown_flushes_everything,
    a_spool_left_by_an_earlier_run_is_replayed_once,
    retention_runs_in_the_background,
    secrets_never_reach_the_database_or_the_spool,
);

fn records_flow_into_the_database(db: &TestDb) {
    let (tx, handle) = Writer::start(db.open(), config(&db.spool())).unwrap();
    for i in 0..1_000 {
        assert_eq!(tx.send(record(i)), Delivery::Queued);
    }
    wait_until("all stored", || {
        let c = tx.counters();
        c.written + c.replayed == 1_000
    });
    let c = handle.shutdown().unwrap();
    // Batches that found the indexer busy went through the spool.
    assert_eq!((c.queued, c.dropped, c.duplicates), (1_000, 0, 0), "{c:?}");
    assert_eq!(c.replayed, c.spooled, "{c:?}");
    assert_eq!(db.rows(), (1_000, 1_000));
    // A reader beside the writer's file sees the records as they were sent.
    let mut reader = db.open();
    assert_eq!(reader.get("req-42").unwrap().unwrap().record, record(42));
}

fn an_unavailable_database_spools_and_replays_exactly_once(db: &TestDb) {
    let (store, switches) = Flaky::new(db.open());
    let (tx, handle) = Writer::start(store, config(&db.spool())).unwrap();
    let mut sent = 0;
    let mut send = |n: u64| {
        for _ in 0..n {
            assert_ne!(tx.send(record(sent)), Delivery::Dropped);
            sent += 1;
        }
    };
    send(1_000);
    switches.down.store(true, SeqCst);
    send(1_000);
    wait_until("records spooled", || handle.counters().spooled > 0);
    send(1_000);
    wait_until("every record handled", || {
        let c = handle.counters();
        c.written + c.spooled == 3_000
    });
    switches.down.store(false, SeqCst);
    send(1_000);
    wait_until("spool replayed", || {
        let c = handle.counters();
        c.written + c.replayed == 4_000
    });
    let c = handle.shutdown().unwrap();
    assert!(c.spooled >= 1_000, "{c:?}");
    assert_eq!(c.replayed, c.spooled, "{c:?}");
    assert_eq!(c.dropped, 0);
    assert_eq!(c.spool_bytes, 0);
    assert!(c.store_errors > 0);
    assert_eq!(db.rows(), (4_000, 4_000));
    let spool_files = std::fs::read_dir(db.spool())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "seg" || x == "jsonl")
        })
        .count();
    assert_eq!(spool_files, 0, "replayed segments are deleted");
}

fn a_commit_whose_answer_was_lost_is_not_stored_twice(db: &TestDb) {
    let (store, switches) = Flaky::new(db.open());
    switches.commit_then_fail.store(true, SeqCst);
    let (tx, handle) = Writer::start(store, config(&db.spool())).unwrap();
    for i in 0..500 {
        tx.send(record(i));
    }
    wait_until("spooled after the lost commits", || {
        handle.counters().spooled == 500
    });
    switches.commit_then_fail.store(false, SeqCst);
    let c = handle.shutdown().unwrap();
    // At least the first batch was stored and spooled too; batches sent
    // while the store counted as down were only spooled.
    assert!(c.duplicates > 0, "{c:?}");
    assert_eq!(c.replayed + c.duplicates, c.spooled, "{c:?}");
    assert_eq!(db.rows(), (500, 500));
}

#[test]
fn a_locked_database_spools_until_the_lock_is_released() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("calls.db");
    let store = SqliteCallLog::open_with(
        &db,
        SqliteOptions {
            busy_timeout: Duration::from_millis(10),
            ..SqliteOptions::default()
        },
    )
    .unwrap();
    let (tx, handle) = Writer::start(store, config(&dir.path().join("spool"))).unwrap();
    for i in 0..300 {
        tx.send(record(i));
    }
    wait_until("written", || handle.counters().stored() == 300);
    // Another process takes the write lock and keeps it.
    let locker = rusqlite::Connection::open(&db).unwrap();
    locker.execute_batch("BEGIN IMMEDIATE").unwrap();
    for i in 300..600 {
        tx.send(record(i));
    }
    wait_until("spooled while locked", || handle.counters().spooled > 0);
    locker.execute_batch("ROLLBACK").unwrap();
    for i in 600..900 {
        tx.send(record(i));
    }
    let c = handle.shutdown().unwrap();
    assert!(c.store_errors > 0, "{c:?}");
    assert_eq!(c.replayed, c.spooled, "{c:?}");
    assert_eq!(c.dropped, 0);
    assert_eq!(rows(&db), (900, 900));
}

#[test]
fn a_database_file_replaced_by_a_directory_spools_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("calls.db");
    let old = dir.path().join("old.db");
    let (tx, handle) = Writer::start(
        SqliteCallLog::open(&db).unwrap(),
        config(&dir.path().join("spool")),
    )
    .unwrap();
    for i in 0..200 {
        tx.send(record(i));
    }
    wait_until("written", || handle.counters().stored() == 200);
    // The file goes away and a directory takes its name.
    std::fs::rename(&db, &old).unwrap();
    for ext in ["-wal", "-shm"] {
        let _ = std::fs::rename(
            dir.path().join(format!("calls.db{ext}")),
            dir.path().join(format!("old.db{ext}")),
        );
    }
    std::fs::create_dir(&db).unwrap();
    for i in 200..400 {
        tx.send(record(i));
    }
    wait_until("spooled", || handle.counters().spooled >= 100);
    std::fs::remove_dir(&db).unwrap();
    for i in 400..600 {
        tx.send(record(i));
    }
    let c = handle.shutdown().unwrap();
    assert_eq!(c.dropped, 0, "{c:?}");
    // Nothing lost, nothing twice, across the old file and the new one.
    let (old_rows, old_ids) = rows(&old);
    let (new_rows, new_ids) = rows(&db);
    assert_eq!(
        old_rows + new_rows,
        600,
        "old {old_rows}, new {new_rows}, {c:?}"
    );
    assert_eq!(old_ids + new_ids, 600);
    let both = rusqlite::Connection::open(&db).unwrap();
    both.execute(&format!("ATTACH '{}' AS o", old.display()), [])
        .unwrap();
    let overlap: i64 = both
        .query_row(
            "SELECT count(*) FROM calls n JOIN o.calls p ON p.request_id = n.request_id",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(overlap, 0);
}

fn a_stuck_store_sends_records_to_the_spool_without_waiting(db: &TestDb) {
    let (store, _gate, control) = Gated::new(db.open());
    let cfg = config(&db.spool());
    let (tx, handle) = Writer::start(store, cfg).unwrap();
    tx.send(record(0));
    // The indexer is now stuck in the store.
    control
        .entered
        .recv_timeout(Duration::from_secs(10))
        .unwrap();
    // Eight rounds of 50, each taken by the writer as one chunk (or less).
    for round in 0..8 {
        for i in 1..=50 {
            let n = round * 50 + i;
            if tx.send(record(n)) == Delivery::Dropped {
                panic!("dropped record {n}");
            }
        }
        wait_until("taken by the writer", || handle.counters().backlog == 0);
    }
    // The writer goes on: two chunks (at most 100 records) wait for the
    // indexer, the rest is spooled while the store is stuck.
    wait_until("spooled while the store is stuck", || {
        handle.counters().spooled >= 300
    });
    control.release.send(()).unwrap();
    let c = handle.shutdown().unwrap();
    assert_eq!(c.queued, 401);
    assert_eq!(c.dropped, 0);
    assert_eq!(c.written + c.replayed, 401, "{c:?}");
    assert_eq!(db.rows(), (401, 401));
}

fn shutdown_flushes_everything(db: &TestDb) {
    let mut cfg = config(&db.spool());
    // Batches that would wait a minute to fill.
    cfg.batch_size = 100_000;
    cfg.batch_wait = Duration::from_secs(60);
    cfg.queue_capacity = 100_000;
    let (tx, handle) = Writer::start(db.open(), cfg).unwrap();
    for i in 0..5_000 {
        tx.send(record(i));
    }
    let c = handle.shutdown().unwrap();
    assert_eq!(c.stored(), 5_000, "{c:?}");
    assert_eq!(db.rows(), (5_000, 5_000));
    // Sending after shutdown drops, and says so.
    assert_eq!(tx.send(record(9)), Delivery::Dropped);
    assert_eq!(tx.counters().dropped, 1);
}

fn a_spool_left_by_an_earlier_run_is_replayed_once(db: &TestDb) {
    let spool = db.spool();
    // Run 1: the database never answers; shutdown leaves the spool.
    let (store, switches) = Flaky::new(db.open());
    switches.down.store(true, SeqCst);
    let (tx, handle) = Writer::start(store, config(&spool)).unwrap();
    for i in 0..700 {
        tx.send(record(i));
    }
    let c = handle.shutdown().unwrap();
    assert_eq!((c.spooled, c.written, c.dropped), (700, 0, 0), "{c:?}");
    assert!(c.spool_bytes > 0);
    assert_eq!(db.rows().0, 0);
    // The same segments twice (a crash between storing and deleting).
    for e in std::fs::read_dir(&spool).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "seg") {
            let copy = p.with_file_name(format!(
                "9{}",
                p.file_name().unwrap().to_str().unwrap().get(1..).unwrap()
            ));
            std::fs::copy(&p, copy).unwrap();
        }
    }
    // Run 2: the database works.
    let (tx, handle) = Writer::start(db.open(), config(&spool)).unwrap();
    tx.send(record(700));
    let c = handle.shutdown().unwrap();
    assert_eq!(c.replayed, 700, "{c:?}");
    assert_eq!(c.duplicates, 700, "{c:?}");
    assert_eq!(c.spool_bytes, 0);
    assert_eq!(db.rows(), (701, 701));
}

fn retention_runs_in_the_background(db: &TestDb) {
    let mut cfg = config(&db.spool());
    cfg.retention = Retention {
        max_rows: Some(50),
        ..Retention::default()
    };
    cfg.retention_every = Duration::from_millis(20);
    let (tx, handle) = Writer::start(db.open(), cfg).unwrap();
    for i in 0..500 {
        tx.send(record(i));
    }
    wait_until("written", || handle.counters().stored() == 500);
    wait_until("retention ran", || db.rows().0 == 50);
    handle.shutdown().unwrap();
    let mut reader = db.open();
    let newest = reader.query(&CallQuery::default()).unwrap().calls[0]
        .record
        .clone();
    assert_eq!(newest.request_id, "req-499");
}

/// What a real gateway would put in headers and paths.
const BEARER: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6InByb2Qta2V5LTIwMjYifQ.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIiwic3ViIjoiYWxpY2UiLCJhdWQiOiJhcGkiLCJleHAiOjE3ODAwMDAwMDB9.Qm9ndXNTaWduYXR1cmVCeXRlc0Zvck9ubHlUZXN0aW5nUHVycG9zZXMxMjM0NTY3ODkw";
const CLIENT_SECRET: &str = "cs_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0";
const SESSION: &str = "sess-4c1f0e9d8b7a6f5e4d3c2b1a09876543";
const QUERY_TOKEN: &str = "qt-0a1b2c3d4e5f60718293a4b5c6d7e8f9";

fn secret_record(i: u64) -> CallRecord {
    let mut r = record(i);
    r.path = record_path(&format!("/cb?state=xyz&access_token={QUERY_TOKEN}"), true);
    r.token_fingerprint = Some(token_fingerprint(BEARER));
    r.request_headers = mask_headers([
        ("Authorization", format!("Bearer {BEARER}")),
        ("X-Client-Secret", CLIENT_SECRET.to_owned()),
        ("Proxy-Authorization", format!("Basic {CLIENT_SECRET}")),
        ("Cookie", format!("session={SESSION}; theme=dark")),
        ("Accept", "application/json".to_owned()),
    ]);
    r.response_headers = mask_headers([
        ("Set-Cookie", format!("session={SESSION}; Path=/; HttpOnly")),
        ("X-Upstream-Token", BEARER.to_owned()),
    ]);
    r
}

fn all_bytes(dir: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            all_bytes(&p, out);
        } else {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn secrets_never_reach_the_database_or_the_spool(db: &TestDb) {
    let (store, switches) = Flaky::new(db.open());
    let (tx, handle) = Writer::start(store, config(&db.spool())).unwrap();
    for i in 0..200 {
        tx.send(secret_record(i));
    }
    wait_until("written", || handle.counters().stored() == 200);
    // The rest stays in the spool: the database is down at shutdown.
    switches.down.store(true, SeqCst);
    for i in 200..400 {
        tx.send(secret_record(i));
    }
    let c = handle.shutdown().unwrap();
    assert_eq!((c.stored(), c.spooled - c.replayed), (200, 200), "{c:?}");

    // Every file of the test (spool, SQLite files) and what the store
    // keeps (for PostgreSQL, a dump of the table).
    let mut files = Vec::new();
    all_bytes(db.dir.path(), &mut files);
    let stored = db.stored_bytes();
    let spool_bytes: usize = files
        .iter()
        .filter(|(p, _)| p.ends_with(".seg"))
        .map(|(_, b)| b.len())
        .sum();
    let db_bytes: usize = stored.iter().map(|(_, b)| b.len()).sum();
    assert!(spool_bytes > 0 && db_bytes > 0, "{files:?}");
    assert!(
        stored
            .iter()
            .any(|(_, b)| contains(b, &token_fingerprint(BEARER))),
        "the store holds the records"
    );
    files.extend(stored);
    let fingerprint = token_fingerprint(BEARER);
    for (path, bytes) in &files {
        for secret in [BEARER, CLIENT_SECRET, SESSION, QUERY_TOKEN] {
            assert!(!contains(bytes, secret), "{secret} found in {path}");
        }
        // A piece of the token is not there either.
        assert!(
            !contains(bytes, &BEARER[40..80]),
            "part of the token in {path}"
        );
        if path.ends_with(".seg") {
            assert!(contains(bytes, &fingerprint), "the spool holds the records");
        }
    }
    let mut reader = db.open();
    let got = reader.get("req-5").unwrap().unwrap().record;
    assert_eq!(got.token_fingerprint.as_deref(), Some(fingerprint.as_str()));
    let auth = got.request_headers.iter().next().unwrap().1;
    assert!(
        auth.starts_with("Bearer «") && auth.contains(&fingerprint),
        "{auth}"
    );
    assert_eq!(BASE_MS + 5_000, got.start_ms);
}

/// The default: the indexer (the thread that writes to the database) runs
/// in the background (`SCHED_IDLE`, or `nice` 19 where that is refused),
/// so under CPU saturation the gateway keeps the CPU and records wait in
/// the spool; the writer thread keeps the process's priority.
#[cfg(target_os = "linux")]
#[test]
fn the_indexer_runs_at_background_priority() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir.path().join("spool"));
    cfg.background_indexer = true;
    let store = SqliteCallLog::open(dir.path().join("calls.db")).unwrap();
    let (tx, handle) = Writer::start(store, cfg).unwrap();
    /// Fields of `/proc/.../stat` after the command name: nice is field
    /// 19, the scheduling policy field 41 (man 5 proc).
    fn sched(stat: &str) -> Option<(i64, u32)> {
        let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        Some((rest.get(16)?.parse().ok()?, rest.get(38)?.parse().ok()?))
    }
    /// Nice value and policy of this process's thread with this name.
    fn sched_of(name: &str) -> Option<(i64, u32)> {
        std::fs::read_dir("/proc/self/task").ok()?.find_map(|e| {
            let task = e.ok()?.path();
            let comm = std::fs::read_to_string(task.join("comm")).ok()?;
            if comm.trim() != name {
                return None;
            }
            sched(&std::fs::read_to_string(task.join("stat")).ok()?)
        })
    }
    const SCHED_OTHER: u32 = 0;
    const SCHED_IDLE: u32 = 5;
    let background =
        |s: Option<(i64, u32)>| matches!(s, Some((_, SCHED_IDLE)) | Some((19, SCHED_OTHER)));
    wait_until("the indexer went to the background", || {
        background(sched_of("calllog-indexer")) && sched_of("calllog-writer").is_some()
    });
    // The writer keeps the priority the process has (CI may run under
    // `nice`).
    let ours = sched(&std::fs::read_to_string("/proc/thread-self/stat").unwrap());
    assert_eq!(sched_of("calllog-writer"), ours);
    for i in 0..100 {
        tx.send(record(i));
    }
    let c = handle.shutdown().unwrap();
    assert_eq!(c.stored(), 100, "{c:?}");
}

/// A load probe the test sets: the idle fraction in percent.
struct FakeLoad(Arc<AtomicU64>);

impl LoadProbe for FakeLoad {
    fn idle_fraction(&mut self, _exclude: i32) -> Option<f64> {
        Some(self.0.load(SeqCst) as f64 / 100.0)
    }
}

/// While the CPUs are busy the indexer leaves records in the spool (the
/// gateway keeps the CPU); when they are idle again it catches up. A spool
/// past half its size is indexed even on a busy machine, so waiting never
/// turns into drops.
#[test]
fn a_busy_machine_defers_indexing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("calls.db");
    let idle = Arc::new(AtomicU64::new(5));
    let mut cfg = config(&dir.path().join("spool"));
    cfg.defer = Some(Defer {
        min_idle: 0.25,
        every: Duration::from_millis(5),
        max_spool_fraction: 0.5,
        probe: Arc::new(Mutex::new(FakeLoad(Arc::clone(&idle)))),
    });
    cfg.spool_max_bytes = 4 << 20;
    let (tx, handle) = Writer::start(SqliteCallLog::open(&db).unwrap(), cfg).unwrap();
    wait_until("the indexer sees the busy CPUs", || {
        handle.counters().deferring
    });
    for i in 0..500 {
        tx.send(record(i));
    }
    wait_until("all spooled", || handle.counters().spooled == 500);
    // Several probe intervals later, still nothing indexed.
    #[allow(clippy::disallowed_methods, reason = "waits for the indexer's probes")]
    std::thread::sleep(Duration::from_millis(100));
    let c = handle.counters();
    assert_eq!((c.stored(), c.dropped), (0, 0), "{c:?}");
    assert!(c.deferring && c.spool_bytes > 0, "{c:?}");
    assert_eq!(rows(&db).0, 0);
    // Idle again: caught up.
    idle.store(90, SeqCst);
    wait_until("caught up", || handle.counters().stored() == 500);
    assert!(!handle.counters().deferring);
    // Busy again, but the spool passes half its size: indexed anyway.
    idle.store(5, SeqCst);
    wait_until("deferring again", || handle.counters().deferring);
    let mut sent = 500;
    // Until the spool passes half its size (then the writer may hand
    // batches over again, so count what it took, not what it spooled).
    while handle.counters().spool_bytes < 2 << 20 && sent < 200_000 {
        for _ in 0..500 {
            tx.send(record(sent));
            sent += 1;
        }
        wait_until("taken by the writer", || handle.counters().backlog == 0);
    }
    assert!(handle.counters().spool_bytes >= 2 << 20 || handle.counters().stored() > 500);
    wait_until("indexed although busy", || handle.counters().stored() > 500);
    let c = handle.shutdown().unwrap();
    assert_eq!((c.stored(), c.dropped), (sent, 0), "{c:?}");
    assert_eq!(rows(&db).0, sent);
}
