//! What only the SQLite call log has: its file's settings and indexes,
//! a moved or replaced file, the in-memory database. The behaviour both
//! stores share is tested in `calllog.rs`, against both.

mod common;

use common::keyed;
use gatewise_store::sqlite::MIGRATIONS;
use gatewise_store::{CallLog, SqliteCallLog, StoreError};

#[test]
fn schema_is_versioned_and_configured() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.db");
    let mut store = SqliteCallLog::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
    drop(store);
    // Reopening applies nothing twice.
    let mut store = SqliteCallLog::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
    drop(store);

    let c = rusqlite::Connection::open(&path).unwrap();
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let vacuum: i64 = c.query_row("PRAGMA auto_vacuum", [], |r| r.get(0)).unwrap();
    assert_eq!(vacuum, 2, "incremental");
    let indexes: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'calls' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .filter(|n: &String| !n.starts_with("sqlite_"))
        .collect();
    for want in [
        "calls_client",
        "calls_issuer",
        "calls_key",
        "calls_reason",
        "calls_request_id",
        "calls_route",
        "calls_status",
        "calls_sub",
        "calls_time",
    ] {
        assert!(indexes.iter().any(|n| n == want), "{want} in {indexes:?}");
    }
    // A filtered query walks an index, not the table.
    let plan: String = c
        .prepare("EXPLAIN QUERY PLAN SELECT id FROM calls WHERE route = 'a' ORDER BY start_ms DESC, id DESC LIMIT 50")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(3))
        .unwrap()
        .map(Result::unwrap)
        .collect::<Vec<_>>()
        .join("; ");
    assert!(plan.contains("calls_route"), "{plan}");
    assert!(!plan.contains("TEMP B-TREE"), "no sort: {plan}");
    // A finding: its table's key, newest first, then each call by row id
    // (the statement `query` builds, with another filter beside it).
    let plan: String = c
        .prepare(
            "EXPLAIN QUERY PLAN SELECT c.id FROM call_findings AS f CROSS JOIN calls AS c \
             ON c.id = f.call_id WHERE f.rule = 'TR-04' AND c.route = 'a' \
             AND (f.start_ms, f.call_id) < (5, 5) \
             ORDER BY f.start_ms DESC, f.call_id DESC LIMIT 50",
        )
        .unwrap()
        .query_map([], |r| r.get::<_, String>(3))
        .unwrap()
        .map(Result::unwrap)
        .collect::<Vec<_>>()
        .join("; ");
    assert!(
        plan.contains("SEARCH f USING PRIMARY KEY (rule=? AND (start_ms,call_id)<(?,?))"),
        "{plan}"
    );
    assert!(
        plan.contains("SEARCH c USING INTEGER PRIMARY KEY (rowid=?)"),
        "{plan}"
    );
    assert!(!plan.contains("TEMP B-TREE"), "no sort: {plan}");

    // A database from a newer build is refused, not damaged.
    c.pragma_update(None, "user_version", 99).unwrap();
    drop(c);
    match SqliteCallLog::open(&path) {
        Err(StoreError::SchemaTooNew { found: 99, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_moved_database_is_noticed_and_recreated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.db");
    let mut store = SqliteCallLog::open(&path).unwrap();
    store.append(&[keyed(1)]).unwrap();
    std::fs::rename(&path, dir.path().join("old.db")).unwrap();
    assert!(matches!(
        store.append(&[keyed(2)]),
        Err(StoreError::Moved(_))
    ));
    // The next call opens a new database at the path.
    assert_eq!(store.append(&[keyed(2)]).unwrap(), 1);
    assert_eq!(store.count().unwrap(), 1);
    assert!(store.get("req-2").unwrap().is_some());
}

#[test]
fn in_memory_store_works() {
    let mut store = SqliteCallLog::open_in_memory().unwrap();
    assert_eq!(store.append(&[keyed(1), keyed(2)]).unwrap(), 2);
    assert_eq!(store.count().unwrap(), 2);
    assert!(store.path().is_none());
}
