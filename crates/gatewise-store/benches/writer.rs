//! Call records per second into SQLite and PostgreSQL: through the writer
//! (send on the request path, batched by the writer thread, flushed by
//! shutdown) and, for reference, straight `append`s of 1,000-record
//! batches.
//!
//! Issue 6's target: the writer sustains at least 50,000 records/s into
//! SQLite on this machine.
//!
//! PostgreSQL: set `GATEWISE_TEST_PG_URL` (a role that may create
//! databases; `.ci/run` shows how to start a throwaway server) and the
//! `calllog_postgres` group runs in a database of its own, dropped
//! afterwards; without it that group is skipped with a notice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gatewise_core::calllog::{
    CallRecord, Outcome, Step, TraceStep, mask_headers, record_path, token_fingerprint,
};
use gatewise_core::clock::FixedClock;
use gatewise_store::{
    CallLog, KeyedRecord, PostgresCallLog, RecordKey, SqliteCallLog, Writer, WriterConfig,
};

#[path = "support/pg.rs"]
mod pg;

use pg::BenchDb;

const N: u64 = 50_000;

/// A realistic record: a JWT-protected route, four trace steps, eight
/// request and five response headers.
fn record(i: u64) -> CallRecord {
    let mut r = CallRecord::new(
        format!("gw-{i:x}"),
        1_700_000_000_000 + i,
        "GET",
        record_path("/api/orders/42?expand=items", false),
    );
    r.route = Some(["orders", "users", "billing"][(i % 3) as usize].into());
    r.upstream = Some("backend".into());
    r.upstream_addr = Some("127.0.0.1:9000".into());
    r.status = if i.is_multiple_of(20) { 401 } else { 200 };
    r.reason = (i.is_multiple_of(20)).then(|| "jwt-expired".to_owned());
    r.bytes_out = 512;
    r.total_us = 800 + i % 1000;
    r.auth_us = Some(40);
    r.upstream_first_byte_us = Some(600);
    r.upstream_total_us = Some(700);
    r.client_ip = Some([127, 0, 0, 1].into());
    r.issuer = Some("https://issuer.example".into());
    r.kid = Some("key-2026".into());
    r.client_id = Some(format!("client-{}", i % 50));
    r.sub = Some(format!("user-{}", i % 1000));
    r.scopes = vec!["orders:read".into(), "profile".into()];
    let token = format!("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLXt9In0.sig{i}");
    r.token_fingerprint = Some(token_fingerprint(&token));
    r.trace = vec![
        TraceStep::new(Step::Route, Outcome::Ok, 2),
        TraceStep::new(Step::Jwt, Outcome::Ok, 38),
        TraceStep::new(Step::Scope, Outcome::Ok, 1),
        TraceStep::new(Step::Upstream, Outcome::Ok, 700),
    ];
    r.request_headers = mask_headers([
        ("host", "api.example".to_owned()),
        ("user-agent", "curl/8.5.0".to_owned()),
        ("accept", "application/json".to_owned()),
        ("authorization", format!("Bearer {token}")),
        ("x-request-id", format!("gw-{i:x}")),
        ("accept-encoding", "gzip".to_owned()),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
        ),
        ("cookie", "session=abcdef0123456789".to_owned()),
    ]);
    r.response_headers = mask_headers([
        ("content-type", "application/json"),
        ("content-length", "512"),
        ("cache-control", "no-store"),
        ("date", "Tue, 01 Dec 2026 10:00:00 GMT"),
        ("x-request-id", "gw"),
    ]);
    r
}

fn through_writer(c: &mut Criterion) {
    let records: Vec<CallRecord> = (0..N).map(record).collect();
    let mut g = c.benchmark_group("calllog");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(N));
    g.bench_function("writer_into_sqlite", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                let store = SqliteCallLog::open(dir.path().join("calls.db")).unwrap();
                let mut config =
                    WriterConfig::new(dir.path().join("spool"), Arc::new(FixedClock(0)));
                // Room for the whole run: this measures the writer's
                // sustained rate into SQLite, not the spool.
                config.queue_capacity = 4 * N as usize;
                // The store path's rate, not the scheduling policy: the
                // indexer at normal priority, never waiting for the CPUs
                // (the sending loop here keeps one busy).
                config.background_indexer = false;
                config.defer = None;
                let (tx, handle) = Writer::start(store, config).unwrap();
                let batch = records.clone();
                #[allow(clippy::disallowed_methods)]
                let t = Instant::now();
                for r in batch {
                    tx.send(r);
                }
                let counters = handle.shutdown().unwrap();
                total += t.elapsed();
                assert_eq!(counters.written + counters.replayed, N, "{counters:?}");
            }
            total
        })
    });
    g.bench_function("append_1000_batches", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                let mut store = SqliteCallLog::open(dir.path().join("calls.db")).unwrap();
                let keyed: Vec<KeyedRecord> = records
                    .iter()
                    .enumerate()
                    .map(|(i, r)| KeyedRecord {
                        key: RecordKey {
                            writer: 1,
                            seq: i as i64,
                        },
                        record: r.clone(),
                    })
                    .collect();
                #[allow(clippy::disallowed_methods)]
                let t = Instant::now();
                for chunk in keyed.chunks(1000) {
                    store.append(chunk).unwrap();
                }
                total += t.elapsed();
            }
            total
        })
    });
    g.finish();
}

fn into_postgres(c: &mut Criterion) {
    let Some(db) = BenchDb::create() else {
        return;
    };
    // Creates the schema.
    drop(PostgresCallLog::open(&db.url).unwrap());
    let records: Vec<CallRecord> = (0..N).map(record).collect();
    let mut g = c.benchmark_group("calllog_postgres");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(30));
    g.throughput(Throughput::Elements(N));
    g.bench_function("writer_into_postgres", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                db.empty();
                let dir = tempfile::tempdir().unwrap();
                let store = PostgresCallLog::open(&db.url).unwrap();
                let mut config =
                    WriterConfig::new(dir.path().join("spool"), Arc::new(FixedClock(0)));
                // Room for the whole run: this measures the writer's
                // sustained rate into PostgreSQL, not the spool.
                config.queue_capacity = 4 * N as usize;
                let (tx, handle) = Writer::start(store, config).unwrap();
                let batch = records.clone();
                #[allow(clippy::disallowed_methods)]
                let t = Instant::now();
                for r in batch {
                    tx.send(r);
                }
                let counters = handle.shutdown().unwrap();
                total += t.elapsed();
                assert_eq!(counters.written + counters.replayed, N, "{counters:?}");
                assert_eq!(counters.spooled, 0, "{counters:?}");
            }
            total
        })
    });
    g.bench_function("append_1000_batches", |b| {
        let keyed: Vec<KeyedRecord> = records
            .iter()
            .enumerate()
            .map(|(i, r)| KeyedRecord {
                key: RecordKey {
                    writer: 1,
                    seq: i as i64,
                },
                record: r.clone(),
            })
            .collect();
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                db.empty();
                let mut store = PostgresCallLog::open(&db.url).unwrap();
                #[allow(clippy::disallowed_methods)]
                let t = Instant::now();
                for chunk in keyed.chunks(1000) {
                    store.append(chunk).unwrap();
                }
                total += t.elapsed();
                assert_eq!(store.count().unwrap(), N);
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, through_writer, into_postgres);
criterion_main!(benches);
