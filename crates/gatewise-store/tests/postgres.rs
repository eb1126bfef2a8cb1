//! What only the PostgreSQL call log has: its indexes and query plans,
//! reconnecting after the server went away, passwords kept out of errors,
//! concurrent migrations, deadlines, use from a shared runtime. The
//! behaviour both stores share is tested in `calllog.rs` and `writer.rs`.
//! (The server comes from `common/pg.rs`; without one these tests skip
//! with a notice, or fail when `CI=true`.)

mod common;

use std::io::Read;
use std::time::Duration;

use common::pg::{self, PgDb};
use common::{BASE_MS, keyed};
use gatewise_store::postgres::MIGRATIONS;
use gatewise_store::{
    CallLog, CallQuery, KeyedRecord, PostgresCallLog, PostgresOptions, RecordKey, StoreError,
};

/// The plan of a query, as text.
fn explain(url: &str, sql: &str) -> String {
    let lines: Vec<String> = pg::block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")))
            .fetch_all(&mut c)
            .await
            .unwrap()
    });
    lines.join("\n")
}

#[test]
fn filtered_queries_walk_an_index_without_sorting() {
    let Some(db) = PgDb::create() else { return };
    let mut store = PostgresCallLog::open(&db.url).unwrap();
    // One call in a hundred has the values filtered for: a page of them
    // is found faster through their own index than by walking the time
    // index (which is what the planner does, rightly, for common values).
    let n = 20_000;
    let rare = |i: u64| {
        let mut k = keyed(i);
        if i.is_multiple_of(100) {
            let r = &mut k.record;
            r.route = Some("rare".into());
            r.reason = Some("rare-reason".into());
            r.client_id = Some("rare-client".into());
            r.sub = Some("rare-sub".into());
            r.issuer = Some("https://rare.test".into());
            r.status = 418;
            r.findings.push(gatewise_core::calllog::FindingRef {
                rule: "RR-01".into(),
                code: "rare-finding".into(),
                severity: "warn".into(),
            });
        }
        k
    };
    for chunk in (0..n).collect::<Vec<u64>>().chunks(2_000) {
        let batch: Vec<KeyedRecord> = chunk.iter().map(|&i| rare(i)).collect();
        store.append(&batch).unwrap();
    }
    pg::execute(
        &db.url,
        &["ANALYZE gatewise_calls", "ANALYZE gatewise_call_findings"],
    )
    .unwrap();

    let indexes: Vec<String> = pg::block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query_scalar(
            "SELECT indexname::text FROM pg_indexes WHERE tablename = 'gatewise_calls' \
             ORDER BY indexname",
        )
        .fetch_all(&mut c)
        .await
        .unwrap()
    });
    for want in [
        "gatewise_calls_client",
        "gatewise_calls_issuer",
        "gatewise_calls_key",
        "gatewise_calls_reason",
        "gatewise_calls_request_id",
        "gatewise_calls_route",
        "gatewise_calls_status",
        "gatewise_calls_sub",
        "gatewise_calls_time",
    ] {
        assert!(indexes.iter().any(|n| n == want), "{want} in {indexes:?}");
    }

    // A page of each filter, newest first, after a cursor: one index,
    // walked backwards, no sort of the matches.
    let cursor = format!("(start_ms, id) < ({}, 1000000)", BASE_MS + 15_000_000);
    for (filter, index) in [
        ("route = 'rare'", "gatewise_calls_route"),
        ("reason = 'rare-reason'", "gatewise_calls_reason"),
        ("client_id = 'rare-client'", "gatewise_calls_client"),
        ("sub = 'rare-sub'", "gatewise_calls_sub"),
        ("issuer = 'https://rare.test'", "gatewise_calls_issuer"),
        ("request_id = 'req-77'", "gatewise_calls_request_id"),
        ("status = 418", "gatewise_calls_status"),
        ("true", "gatewise_calls_time"),
    ] {
        let plan = explain(
            &db.url,
            &format!(
                "SELECT * FROM gatewise_calls WHERE {filter} AND {cursor} \
                 ORDER BY start_ms DESC, id DESC LIMIT 51"
            ),
        );
        assert!(
            plan.contains(&format!("Scan Backward using {index} ")),
            "{filter}:\n{plan}"
        );
        assert!(!plan.contains("Sort"), "{filter}: no sort:\n{plan}");
    }

    // A finding, rare (one call in a hundred) or on every call: the
    // findings' key walked backwards from the cursor, each call fetched by
    // its id, no sort. (The statement `query` builds.)
    let cursor = format!(
        "(f.start_ms, f.call_id) < ({}, 1000000)",
        BASE_MS + 15_000_000
    );
    for rule in ["RR-01", "TR-04"] {
        let plan = explain(
            &db.url,
            &format!(
                "SELECT c.* FROM gatewise_call_findings AS f \
                 JOIN gatewise_calls AS c ON c.id = f.call_id WHERE f.rule = '{rule}' \
                 AND {cursor} ORDER BY f.start_ms DESC, f.call_id DESC LIMIT 51"
            ),
        );
        assert!(
            plan.contains("Scan Backward using gatewise_call_findings_pkey "),
            "{rule}:\n{plan}"
        );
        assert!(plan.contains("gatewise_calls_pkey"), "{rule}:\n{plan}");
        assert!(!plan.contains("Sort"), "{rule}: no sort:\n{plan}");
    }
    let page = store
        .query(&CallQuery {
            finding: Some("RR-01".into()),
            ..CallQuery::default()
        })
        .unwrap();
    assert_eq!(page.calls.len(), 50);
    assert!(
        page.calls
            .iter()
            .all(|c| c.record.route.as_deref() == Some("rare"))
    );
}

#[test]
fn a_dropped_connection_is_replaced_without_failing_the_call() {
    let Some(db) = PgDb::create() else { return };
    let mut store = PostgresCallLog::open(&db.url).unwrap();
    store.append(&[keyed(1)]).unwrap();
    // The server ends the store's (idle) session, as a restart or an
    // idle-session timeout would.
    pg::execute(
        &db.url,
        &["SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
           WHERE datname = current_database() AND pid <> pg_backend_pid()"],
    )
    .unwrap();
    assert_eq!(store.append(&[keyed(2)]).unwrap(), 1);
    assert_eq!(store.count().unwrap(), 2);
}

#[test]
fn a_stopped_server_fails_calls_and_the_next_call_after_its_return_reconnects() {
    let Some(server) = pg::private_cluster() else {
        return;
    };
    let cluster = server.cluster();
    let db = PgDb::create_on(server.clone());
    let mut store = PostgresCallLog::open(&db.url).unwrap();
    store.append(&[keyed(1)]).unwrap();

    cluster.stop_server().unwrap();
    let e = store.append(&[keyed(2)]).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, StoreError::Postgres { .. }), "{e:?}");
    assert!(
        text.contains(&format!("gatewise@127.0.0.1:{}/", cluster.port)),
        "{text}"
    );
    assert!(!text.contains(&cluster.password), "{text}");
    // Still down: each call fails, none hangs.
    assert!(store.count().is_err());
    assert!(store.query(&CallQuery::default()).is_err());

    cluster.start_server().unwrap();
    assert_eq!(store.append(&[keyed(2)]).unwrap(), 1);
    assert_eq!(store.count().unwrap(), 2);
    assert_eq!(store.get("req-2").unwrap().unwrap().record, keyed(2).record);
}

#[test]
fn a_wrong_password_is_named_but_never_printed() {
    let Some(server) = pg::private_cluster() else {
        return;
    };
    let cluster = server.cluster();
    let wrong = "not-the-password-7f3a";
    let url = format!(
        "postgres://gatewise:{wrong}@127.0.0.1:{}/postgres",
        cluster.port
    );
    let e = PostgresCallLog::open(&url).unwrap_err();
    let text = format!("{e} / {e:?}");
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(text.contains("gatewise@127.0.0.1"), "{text}");
    assert!(!text.contains(wrong), "{text}");
    assert!(!cluster.log().contains(wrong), "nor in the server's log");
    // The right one works.
    let mut store = PostgresCallLog::open(&cluster.url("postgres")).unwrap();
    assert_eq!(store.count().unwrap(), 0);
    let debug = format!("{store:?}");
    assert!(!debug.contains(&cluster.password), "{debug}");
}

#[test]
fn stores_opened_at_once_migrate_the_schema_once() {
    let Some(db) = PgDb::create() else { return };
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url.clone();
            std::thread::spawn(move || {
                let mut s = PostgresCallLog::open(&url).unwrap();
                s.schema_version().unwrap()
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), MIGRATIONS.len() as i64);
    }
    let tables: i64 = pg::scalar(
        &db.url,
        "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'gatewise_calls%'",
    );
    assert_eq!(tables, 3);
}

#[test]
fn a_server_that_never_answers_runs_into_the_deadline() {
    // Accepts connections and says nothing.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 64];
            let _ = s.read(&mut buf);
            held.push(s);
        }
    });
    let options = PostgresOptions {
        connect_timeout: Duration::from_millis(200),
        ..PostgresOptions::default()
    };
    let url = format!("postgres://gw:hunter2@127.0.0.1:{port}/calls?sslmode=disable");
    match PostgresCallLog::open_with(&url, options) {
        Err(StoreError::PostgresTimeout { doing, target, .. }) => {
            assert_eq!(doing, "connecting");
            assert_eq!(target, format!("gw@127.0.0.1:{port}/calls"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn readers_call_it_from_spawn_blocking_on_a_shared_runtime() {
    let Some(db) = PgDb::create() else { return };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let handle = rt.handle().clone();
    let db_url = db.url.clone();
    rt.block_on(async move {
        let url = db_url.clone();
        let shared = tokio::task::spawn_blocking(move || {
            let options = PostgresOptions {
                runtime: Some(handle),
                ..PostgresOptions::default()
            };
            let mut s = PostgresCallLog::open_with(&url, options).unwrap();
            s.append(&[keyed(1), keyed(2)]).unwrap();
            s
        })
        .await
        .unwrap();
        // A store with its own runtime, made in a blocking thread and
        // dropped here, inside an async task: no panic, nothing blocks.
        let url = db_url.clone();
        let own = tokio::task::spawn_blocking(move || PostgresCallLog::open(&url).unwrap())
            .await
            .unwrap();
        let page = tokio::task::spawn_blocking(move || {
            let mut s = shared;
            s.query(&CallQuery::default()).unwrap()
        })
        .await
        .unwrap();
        assert_eq!(page.calls.len(), 2);
        assert_eq!(page.calls[0].key, RecordKey { writer: 1, seq: 2 });
        drop(own);
    });
    drop(rt);
    drop(db);
}
