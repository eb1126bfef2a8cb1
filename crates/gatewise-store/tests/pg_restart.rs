//! The restart drill (issue 6): the writer stores a stream of calls into
//! PostgreSQL while the server is stopped, left down, and started again.
//! Afterwards the table holds exactly the calls that were sent, each once:
//! the spool kept them while the server was down and replayed them when it
//! was back, and the unique record key made replays of batches whose commit
//! had gone through (but whose answer was lost) insert nothing.
//!
//! The test starts a PostgreSQL cluster of its own (initdb and `pg_ctl` on
//! 127.0.0.1, in a temporary directory), so stopping it disturbs no other
//! test. Without the server binaries it skips with a notice, or fails when
//! `CI=true`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::Duration;

use common::pg::{self, PgDb};
use common::{config, record, wait_until};
use gatewise_store::{CallLog, Delivery, PostgresCallLog, PostgresOptions, Writer};

#[test]
fn restarting_postgresql_under_traffic_loses_and_doubles_nothing() {
    let Some(server) = pg::private_cluster() else {
        return;
    };
    let cluster = server.cluster();
    let db = PgDb::create_on(server.clone());
    let dir = tempfile::tempdir().unwrap();
    let options = PostgresOptions {
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(5),
        ..PostgresOptions::default()
    };
    let store = PostgresCallLog::open_with(&db.url, options).unwrap();
    let (tx, handle) = Writer::start(store, config(&dir.path().join("spool"))).unwrap();

    // The traffic: records at a steady pace, from another thread, until
    // told to stop. Every one must be accepted (queued or overflowed to
    // the spool), none dropped.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut sent = 0u64;
            while !stop.load(SeqCst) {
                for _ in 0..10 {
                    assert_ne!(tx.send(record(sent)), Delivery::Dropped, "record {sent}");
                    sent += 1;
                }
                #[allow(clippy::disallowed_methods, reason = "paces the traffic")]
                std::thread::sleep(Duration::from_millis(1));
            }
            sent
        })
    };

    wait_until("calls flowing into PostgreSQL", || {
        handle.counters().stored() >= 2_000
    });
    // Stop: the server ends its sessions (an insert may be cut off, or
    // committed with its answer lost) and refuses new ones.
    cluster.stop_server().unwrap();
    let at_stop = handle.counters();
    // Wait: the writer fails, spools, and keeps failing while it retries.
    wait_until("calls spooled while the server is down", || {
        handle.counters().spooled >= at_stop.spooled + 2_000
    });
    let down = handle.counters();
    // Start: the next attempt reconnects; new calls are stored directly,
    // the spool is replayed.
    cluster.start_server().unwrap();
    wait_until("calls stored again", || {
        handle.counters().stored() >= down.stored() + 2_000
    });
    // (Under traffic a batch that finds the indexer busy is spooled too,
    // so the spool need not be empty at any one moment; at shutdown it
    // is.)
    wait_until("the spool replayed", || {
        let c = handle.counters();
        c.replayed + c.duplicates >= down.spooled
    });
    stop.store(true, SeqCst);
    let sent = traffic.join().unwrap();
    let c = handle.shutdown().unwrap();

    assert_eq!(c.queued, sent, "{c:?}");
    assert_eq!(c.dropped, 0, "{c:?}");
    assert!(c.store_errors > 0, "the restart was noticed: {c:?}");
    assert!(c.spooled >= 2_000, "{c:?}");
    assert_eq!(c.spool_bytes, 0, "{c:?}");
    assert_eq!(c.written + c.replayed, sent, "{c:?}");
    // Counted by PostgreSQL itself: every call once.
    let (rows, keys, ids): (i64, i64, i64) = pg::block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query_as(
            "SELECT count(*), count(DISTINCT (writer, seq)), count(DISTINCT request_id) \
             FROM gatewise_calls",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap()
    });
    assert_eq!((rows as u64, keys as u64, ids as u64), (sent, sent, sent));
    let mut reader = PostgresCallLog::open(&db.url).unwrap();
    assert_eq!(reader.count().unwrap(), sent);
    #[allow(clippy::print_stderr, reason = "the drill's figures, for the report")]
    {
        eprintln!(
            "restart drill: sent {sent}, rows {rows}; written {}, spooled {}, replayed {}, \
             duplicates {}, store errors {}, dropped {}",
            c.written, c.spooled, c.replayed, c.duplicates, c.store_errors, c.dropped
        );
    }
}
