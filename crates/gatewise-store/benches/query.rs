//! Filtered queries over a large call log (issue 6: under 200 ms over 10
//! million records). Builds a database of `GATEWISE_BENCH_ROWS` calls
//! (default 1,000,000) spread over one day, then times the admin API's
//! typical questions: in SQLite, and in PostgreSQL when
//! `GATEWISE_TEST_PG_URL` is set (a database of the benchmark's own,
//! dropped afterwards).

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use gatewise_core::calllog::{CallRecord, FindingRef, Outcome, Step, TraceStep, mask_headers};
use gatewise_store::{
    CallLog, CallQuery, Cursor, KeyedRecord, PostgresCallLog, RecordKey, SqliteCallLog, StatsQuery,
};

#[path = "support/pg.rs"]
mod pg;

const DAY_MS: u64 = 86_400_000;
const START: u64 = 1_780_000_000_000 / DAY_MS * DAY_MS;

fn rows() -> u64 {
    #[allow(clippy::disallowed_methods)]
    std::env::var("GATEWISE_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn record(i: u64, n: u64) -> CallRecord {
    // A cheap, fixed scramble, so neighbours differ.
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
    let mut r = CallRecord::new(
        format!("gw-{i:x}"),
        START + i * DAY_MS / n,
        "GET",
        "/api/items",
    );
    r.route = Some(format!("route-{}", h % 20));
    r.upstream = Some("backend".into());
    r.status = match h % 100 {
        0..=89 => 200,
        90..=93 => 401,
        94..=96 => 403,
        97..=98 => 502,
        _ => 500,
    };
    r.reason = match r.status {
        401 => Some("jwt-expired".into()),
        403 => Some("insufficient-scope".into()),
        502 => Some("upstream-unreachable".into()),
        500 => Some("upstream-error".into()),
        _ => None,
    };
    r.total_us = 300 + h % 5_000;
    r.issuer = Some(format!("https://issuer-{}.example", h % 3));
    r.client_id = Some(format!("client-{}", (h >> 8) % 500));
    r.sub = Some(format!("user-{}", (h >> 16) % 100_000));
    r.trace = vec![
        TraceStep::new(Step::Route, Outcome::Ok, 1),
        TraceStep::new(Step::Jwt, Outcome::Ok, 40),
    ];
    // One call in a hundred carries an inspector finding.
    if h % 100 == 42 {
        r.findings = vec![FindingRef {
            rule: "TR-04".into(),
            code: "token-access-token-missing".into(),
            severity: "error".into(),
        }];
    }
    r.request_headers = mask_headers([
        ("host", "api.example"),
        ("authorization", "Bearer abc.def.ghi"),
        ("accept", "application/json"),
    ]);
    r
}

/// Appends the benchmark's `n` calls.
fn fill(store: &mut dyn CallLog, n: u64) {
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..n {
        batch.push(KeyedRecord {
            key: RecordKey {
                writer: 1,
                seq: i as i64,
            },
            record: record(i, n),
        });
        if batch.len() == 10_000 {
            store.append(&batch).unwrap();
            batch.clear();
        }
    }
    store.append(&batch).unwrap();
    // What the writer's retention pass does now and then.
    store
        .retain(
            &gatewise_store::Retention {
                max_rows: Some(u64::MAX),
                ..Default::default()
            },
            START,
        )
        .unwrap();
}

/// Times the admin API's questions on a store holding the `n` calls.
fn bench_store(c: &mut Criterion, group: &str, store: &mut dyn CallLog, n: u64) {
    assert_eq!(store.count().unwrap(), n);
    let s = |v: &str| Some(v.to_owned());
    let mid = START + DAY_MS / 2;
    let known = record(n / 2, n);
    let cases: Vec<(&str, CallQuery)> = vec![
        ("newest", CallQuery::default()),
        (
            "route",
            CallQuery {
                route: s("route-7"),
                ..CallQuery::default()
            },
        ),
        (
            "client_and_sub",
            CallQuery {
                client_id: known.client_id.clone(),
                sub: known.sub.clone(),
                ..CallQuery::default()
            },
        ),
        (
            "server_errors",
            CallQuery {
                status_min: Some(500),
                status_max: Some(599),
                ..CallQuery::default()
            },
        ),
        (
            "reason_in_an_hour",
            CallQuery {
                reason: s("upstream-unreachable"),
                from_ms: Some(mid),
                until_ms: Some(mid + 3_600_000),
                ..CallQuery::default()
            },
        ),
        (
            "route_page_mid_day",
            CallQuery {
                route: s("route-3"),
                after: Some(Cursor {
                    start_ms: mid,
                    id: i64::MAX,
                }),
                ..CallQuery::default()
            },
        ),
        (
            "finding",
            CallQuery {
                finding: s("TR-04"),
                ..CallQuery::default()
            },
        ),
        (
            "issuer_errors",
            CallQuery {
                issuer: s("https://issuer-1.example"),
                status_min: Some(400),
                ..CallQuery::default()
            },
        ),
    ];
    let mut g = c.benchmark_group(format!("{group}_{n}_rows"));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    for (name, q) in cases {
        let got = store.query(&q).unwrap();
        assert!(!got.calls.is_empty(), "{name} finds calls");
        g.bench_function(name, |b| b.iter(|| store.query(&q).unwrap()));
    }
    let id = format!("gw-{:x}", n / 3);
    g.bench_function("get_by_request_id", |b| {
        b.iter(|| store.get(&id).unwrap().unwrap())
    });
    let hour = StatsQuery::per_minute(mid, mid + 3_600_000);
    g.bench_function("stats_per_minute_one_hour", |b| {
        b.iter(|| store.stats(&hour).unwrap())
    });
    g.finish();
}

fn queries(c: &mut Criterion) {
    let n = rows();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.db");
    fill(&mut SqliteCallLog::open(&path).unwrap(), n);
    let mut store = SqliteCallLog::open(&path).unwrap();
    bench_store(c, "query", &mut store, n);
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    report(format!(
        "database: {n} rows, {} MB, {} bytes/row",
        size / 1_000_000,
        size / n.max(1)
    ));
}

#[allow(clippy::print_stdout)]
fn report(line: String) {
    println!("{line}");
}

fn postgres_queries(c: &mut Criterion) {
    let Some(db) = pg::BenchDb::create() else {
        return;
    };
    let n = rows();
    let mut store = PostgresCallLog::open(&db.url).unwrap();
    fill(&mut store, n);
    // Statistics and the visibility map, as autovacuum would leave them.
    pg::pg_exec(&db.url, "VACUUM (ANALYZE) gatewise_calls");
    bench_store(c, "pg_query", &mut store, n);
    let size = store.used_bytes().unwrap_or(0);
    report(format!(
        "postgres: {n} rows, {} MB, {} bytes/row",
        size / 1_000_000,
        size / n.max(1)
    ));
}

criterion_group!(benches, queries, postgres_queries);
criterion_main!(benches);
