//! The call-log suite, run against both stores: every test function here
//! runs once on SQLite (`sqlite::...`) and once on PostgreSQL
//! (`postgres::...`; see `common/pg.rs` for where the server comes from).
//! Round trips, idempotent appends, filters and keyset pagination,
//! statistics, retention, schema versions.

#[macro_use]
mod common;

use common::{AnyStore, BASE_MS, TestDb, keyed};
use gatewise_core::calllog::{CallRecord, FindingRef};
use gatewise_store::{
    CallLog, CallQuery, KeyedRecord, RecordKey, Retention, StatsQuery, StoreError,
};

on_both_stores!(
    round_trip_keeps_every_field,
    appending_a_stored_key_again_inserts_nothing,
    a_reused_request_id_keeps_both_calls,
    filters_and_pagination_match_a_computed_expectation,
    stats_per_minute_match_a_computed_expectation,
    retention_by_age_rows_and_size,
    schema_is_versioned_and_a_newer_one_refused,
    an_empty_store_answers_every_call,
    clients_are_ranked_by_their_errors,
    calls_are_filtered_by_finding_across_pages,
    findings_go_with_their_calls,
    an_older_schema_gets_its_findings_backfilled,
);

fn store_with(db: &TestDb, n: u64) -> AnyStore {
    let mut store = db.open();
    let batch: Vec<KeyedRecord> = (0..n).map(keyed).collect();
    assert_eq!(store.append(&batch).unwrap(), n as usize);
    store
}

fn round_trip_keeps_every_field(db: &TestDb) {
    let mut store = store_with(db, 0);
    let full = keyed(3);
    let mut bare = keyed(4);
    bare.record = CallRecord::new("bare", BASE_MS, "GET", "/");
    assert_eq!(store.append(&[full.clone(), bare.clone()]).unwrap(), 2);

    let got = store.get("req-3").unwrap().unwrap();
    assert_eq!(got.record, full.record);
    assert_eq!(got.key, full.key);
    assert!(got.record.client_ip.unwrap().is_ipv6());
    let got = store.get("bare").unwrap().unwrap();
    assert_eq!(got.record, bare.record);
    assert!(store.get("nope").unwrap().is_none());

    let page = store.query(&CallQuery::default()).unwrap();
    let back: Vec<_> = page.calls.iter().map(|c| c.record.clone()).collect();
    assert_eq!(back, [full.record, bare.record]);
    assert_eq!(store.count().unwrap(), 2);
}

fn appending_a_stored_key_again_inserts_nothing(db: &TestDb) {
    let mut store = store_with(db, 10);
    let again: Vec<_> = (5..15).map(keyed).collect();
    assert_eq!(store.append(&again).unwrap(), 5);
    assert_eq!(store.count().unwrap(), 15);
}

fn a_reused_request_id_keeps_both_calls(db: &TestDb) {
    // A client that sends the same X-Request-Id twice: two calls, two rows.
    let mut store = store_with(db, 0);
    let mut a = keyed(1);
    let mut b = keyed(2);
    a.record.request_id = "client-chosen".into();
    b.record.request_id = "client-chosen".into();
    assert_eq!(store.append(&[a, b.clone()]).unwrap(), 2);
    assert_eq!(
        store.get("client-chosen").unwrap().unwrap().record,
        b.record
    );
    let q = CallQuery {
        request_id: Some("client-chosen".into()),
        ..CallQuery::default()
    };
    assert_eq!(store.query(&q).unwrap().calls.len(), 2);
}

/// Every page of a query, following the cursors.
fn all_pages(store: &mut AnyStore, mut q: CallQuery) -> Vec<String> {
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let page = store.query(&q).unwrap();
        assert!(page.calls.len() <= q.effective_limit() as usize);
        pages += 1;
        assert!(pages < 1_000, "pagination does not end");
        ids.extend(page.calls.iter().map(|c| c.record.request_id.clone()));
        match page.next {
            Some(c) => q.after = Some(c.to_string().parse().unwrap()),
            None => break,
        }
    }
    ids
}

fn filters_and_pagination_match_a_computed_expectation(db: &TestDb) {
    let mut store = db.open();
    // Three calls per start time: the cursor must break ties by row id.
    let records: Vec<KeyedRecord> = (0..300)
        .map(|i| {
            let mut k = keyed(i);
            k.record.start_ms = BASE_MS + (i / 3) * 1_000;
            k
        })
        .collect();
    store.append(&records[..150]).unwrap();
    store.append(&records[150..]).unwrap();

    let s = |v: &str| Some(v.to_owned());
    type Keep = Box<dyn Fn(&CallRecord) -> bool>;
    let cases: Vec<(&str, CallQuery, Keep)> = vec![
        ("all", CallQuery::default(), Box::new(|_| true)),
        (
            "route",
            CallQuery {
                route: s("users"),
                ..CallQuery::default()
            },
            Box::new(|r| r.route.as_deref() == Some("users")),
        ),
        (
            "4xx",
            CallQuery {
                status_min: Some(400),
                status_max: Some(499),
                ..CallQuery::default()
            },
            Box::new(|r| (400..=499).contains(&r.status)),
        ),
        (
            "client and subject",
            CallQuery {
                client_id: s("client-2"),
                sub: s("user-3"),
                ..CallQuery::default()
            },
            Box::new(|r| {
                r.client_id.as_deref() == Some("client-2") && r.sub.as_deref() == Some("user-3")
            }),
        ),
        (
            "issuer in a time range",
            CallQuery {
                issuer: s("https://issuer-1.test"),
                from_ms: Some(BASE_MS + 10_000),
                until_ms: Some(BASE_MS + 60_000),
                ..CallQuery::default()
            },
            Box::new(|r| {
                r.issuer.as_deref() == Some("https://issuer-1.test")
                    && r.start_ms >= BASE_MS + 10_000
                    && r.start_ms < BASE_MS + 60_000
            }),
        ),
        (
            "reason and method",
            CallQuery {
                reason: s("jwt-expired"),
                method: s("POST"),
                ..CallQuery::default()
            },
            Box::new(|r| r.reason.as_deref() == Some("jwt-expired") && r.method == "POST"),
        ),
        (
            "request id",
            CallQuery {
                request_id: s("req-77"),
                ..CallQuery::default()
            },
            Box::new(|r| r.request_id == "req-77"),
        ),
        (
            "nothing",
            CallQuery {
                route: s("none"),
                ..CallQuery::default()
            },
            Box::new(|_| false),
        ),
    ];
    for (name, mut q, keep) in cases {
        // Newest first; among equal start times, the later insert first.
        let mut expected: Vec<(u64, usize, String)> = records
            .iter()
            .enumerate()
            .filter(|(_, k)| keep(&k.record))
            .map(|(i, k)| (k.record.start_ms, i, k.record.request_id.clone()))
            .collect();
        expected.sort_by_key(|e| std::cmp::Reverse((e.0, e.1)));
        let expected: Vec<String> = expected.into_iter().map(|e| e.2).collect();
        for limit in [7, 50, 1000] {
            q.limit = limit;
            q.after = None;
            assert_eq!(
                all_pages(&mut store, q.clone()),
                expected,
                "{name}, limit {limit}"
            );
        }
    }
}

#[test]
fn a_foreign_cursor_is_refused() {
    assert!(matches!(
        "12-3".parse::<gatewise_store::Cursor>(),
        Err(StoreError::BadCursor(_))
    ));
}

/// Nearest rank, written out again (not the library's function).
fn expected_percentile(values: &[u64], pct: f64) -> u64 {
    let mut v = values.to_vec();
    v.sort();
    let rank = ((pct / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank - 1]
}

fn stats_per_minute_match_a_computed_expectation(db: &TestDb) {
    let mut store = db.open();
    let minute0 = BASE_MS / 60_000 * 60_000;
    // Latencies in a scrambled order, three minutes with different counts.
    let plan: [(u64, u64); 3] = [(0, 100), (1, 37), (3, 1)];
    let mut records = Vec::new();
    let mut seq = 0;
    for (minute, n) in plan {
        for j in 0..n {
            let mut k = keyed(seq);
            k.key = RecordKey {
                writer: 9,
                seq: seq as i64,
            };
            k.record.start_ms = minute0 + minute * 60_000 + (j * 7919) % 60_000;
            k.record.total_us = (j * 7_919 + minute * 13) % 1_000 + 1;
            k.record.status = [200, 200, 200, 401, 503][(j % 5) as usize];
            k.record.reason = match k.record.status {
                401 => Some("jwt-expired".into()),
                503 => Some("upstream-timeout".into()),
                _ => None,
            };
            if j.is_multiple_of(10) && k.record.reason.is_none() {
                k.record.reason = Some("rate-limited".into());
            }
            records.push(k);
            seq += 1;
        }
    }
    store.append(&records).unwrap();

    let q = StatsQuery::per_minute(minute0, minute0 + 10 * 60_000);
    let got = store.stats(&q).unwrap();
    assert_eq!(got.len(), 3, "empty minutes are left out");
    for (bucket, (minute, n)) in got.iter().zip(plan) {
        let start = minute0 + minute * 60_000;
        let mine: Vec<&KeyedRecord> = records
            .iter()
            .filter(|k| k.record.start_ms / 60_000 * 60_000 == start)
            .collect();
        let lat: Vec<u64> = mine.iter().map(|k| k.record.total_us).collect();
        assert_eq!(bucket.start_ms, start);
        assert_eq!(bucket.calls, n);
        assert_eq!(
            bucket.errors,
            mine.iter().filter(|k| k.record.status >= 400).count() as u64
        );
        assert_eq!(
            bucket.server_errors,
            mine.iter().filter(|k| k.record.status >= 500).count() as u64
        );
        assert_eq!(
            bucket.p50_us,
            expected_percentile(&lat, 50.0),
            "p50 of minute {minute}"
        );
        assert_eq!(
            bucket.p95_us,
            expected_percentile(&lat, 95.0),
            "p95 of minute {minute}"
        );
        assert_eq!(
            bucket.p99_us,
            expected_percentile(&lat, 99.0),
            "p99 of minute {minute}"
        );
        let mut reasons: std::collections::BTreeMap<String, u64> = Default::default();
        for k in &mine {
            if let Some(r) = &k.record.reason {
                *reasons.entry(r.clone()).or_default() += 1;
            }
        }
        let mut reasons: Vec<(String, u64)> = reasons.into_iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        reasons.truncate(5);
        assert_eq!(bucket.top_reasons, reasons, "reasons of minute {minute}");
    }

    // Hourly, one route, only the top reason.
    let hour = StatsQuery {
        from_ms: minute0,
        until_ms: minute0 + 10 * 60_000,
        bucket_ms: 3_600_000,
        route: Some("users".into()),
        top_reasons: 1,
    };
    let got = store.stats(&hour).unwrap();
    let users: Vec<&KeyedRecord> = records
        .iter()
        .filter(|k| k.record.route.as_deref() == Some("users"))
        .collect();
    let calls: u64 = got.iter().map(|b| b.calls).sum();
    assert_eq!(calls, users.len() as u64);
    assert!(got.iter().all(|b| b.top_reasons.len() <= 1));
    assert!(got.iter().all(|b| b.start_ms % 3_600_000 == 0));
}

fn retention_by_age_rows_and_size(db: &TestDb) {
    // By age: calls i start at BASE + i s; keep the last 100 s.
    let mut store = store_with(db, 300);
    let now = BASE_MS + 300_000;
    let r = store
        .retain(
            &Retention {
                max_age_ms: Some(100_000),
                ..Retention::default()
            },
            now,
        )
        .unwrap();
    assert_eq!(r.by_age, 200);
    assert_eq!(store.count().unwrap(), 100);
    let oldest = store
        .query(&CallQuery {
            limit: 1000,
            ..CallQuery::default()
        })
        .unwrap()
        .calls
        .last()
        .unwrap()
        .record
        .start_ms;
    assert_eq!(oldest, BASE_MS + 200_000);

    // By rows: the oldest go.
    let r = store
        .retain(
            &Retention {
                max_rows: Some(30),
                ..Retention::default()
            },
            now,
        )
        .unwrap();
    assert_eq!(r.by_rows, 70);
    assert_eq!(store.count().unwrap(), 30);
    assert!(store.get("req-269").unwrap().is_none());
    assert!(store.get("req-270").unwrap().is_some());

    // By size: pages in use fall under the limit.
    let db = db.another();
    let mut store = store_with(&db, 4_000);
    let before = store.used_bytes();
    let limit = before / 2;
    let r = store
        .retain(
            &Retention {
                max_bytes: Some(limit),
                ..Retention::default()
            },
            now,
        )
        .unwrap();
    assert!(r.by_size > 0);
    assert!(
        store.used_bytes() <= limit,
        "{before} -> {} (limit {limit}), {r:?}",
        store.used_bytes()
    );
    assert_eq!(store.count().unwrap(), 4_000 - r.by_size);
    assert!(store.get("req-3999").unwrap().is_some(), "the newest stay");
}

fn schema_is_versioned_and_a_newer_one_refused(db: &TestDb) {
    let known = match db.name() {
        "sqlite" => gatewise_store::sqlite::MIGRATIONS.len(),
        _ => gatewise_store::postgres::MIGRATIONS.len(),
    } as i64;
    let mut store = db.open();
    assert_eq!(store.schema_version(), known);
    store.append(&[keyed(1)]).unwrap();
    drop(store);
    // Reopening applies nothing twice and keeps the data.
    let mut store = db.open();
    assert_eq!(store.schema_version(), known);
    assert_eq!(store.count().unwrap(), 1);
    drop(store);
    // A database from a newer build is refused, not damaged.
    db.set_schema_version(99);
    match db.try_open() {
        Err(StoreError::SchemaTooNew {
            found: 99,
            known: k,
        }) => assert_eq!(k, known),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a newer schema was accepted"),
    }
    assert_eq!(db.rows().0, 1);
}

fn an_empty_store_answers_every_call(db: &TestDb) {
    let mut store = db.open();
    assert_eq!(store.count().unwrap(), 0);
    assert_eq!(store.append(&[]).unwrap(), 0);
    assert!(store.get("req-1").unwrap().is_none());
    let page = store.query(&CallQuery::default()).unwrap();
    assert!(page.calls.is_empty() && page.next.is_none());
    let stats = store
        .stats(&StatsQuery::per_minute(BASE_MS, BASE_MS + 3_600_000))
        .unwrap();
    assert!(stats.is_empty());
    let r = store
        .retain(
            &Retention {
                max_age_ms: Some(1),
                max_rows: Some(0),
                max_bytes: Some(1),
            },
            BASE_MS,
        )
        .unwrap();
    assert_eq!(r.total(), 0);
    assert_eq!(store.count().unwrap(), 0);
}

fn clients_are_ranked_by_their_errors(db: &TestDb) {
    let mut store = db.open();
    // client-a: 3 errors, client-b: 3 errors, client-c: 1 error and many
    // successes, client-d: successes only; one error without a client; one
    // error of client-c outside the range.
    let plan: &[(&str, u16, u64)] = &[
        ("client-a", 401, 3),
        ("client-b", 503, 3),
        ("client-c", 403, 1),
        ("client-c", 200, 9),
        ("client-d", 200, 5),
        ("", 404, 1),
    ];
    let mut batch = Vec::new();
    let mut seq = 0u64;
    for (client, status, n) in plan {
        for _ in 0..*n {
            let mut k = keyed(seq);
            k.key = RecordKey {
                writer: 7,
                seq: seq as i64,
            };
            k.record.start_ms = BASE_MS + seq;
            k.record.status = *status;
            k.record.client_id = (!client.is_empty()).then(|| (*client).to_owned());
            batch.push(k);
            seq += 1;
        }
    }
    let mut late = keyed(seq);
    late.key = RecordKey {
        writer: 7,
        seq: seq as i64,
    };
    late.record.start_ms = BASE_MS + 3_600_000;
    late.record.status = 500;
    late.record.client_id = Some("client-c".into());
    batch.push(late);
    store.append(&batch).unwrap();
    let q = StatsQuery::per_minute(BASE_MS, BASE_MS + 60_000);
    assert_eq!(
        store.top_error_clients(&q, 10).unwrap(),
        [
            ("client-a".to_owned(), 3),
            ("client-b".to_owned(), 3),
            ("client-c".to_owned(), 1)
        ]
    );
    assert_eq!(store.top_error_clients(&q, 1).unwrap().len(), 1);
}

fn finding(rule: &str) -> FindingRef {
    FindingRef {
        rule: rule.to_owned(),
        code: format!("code-of-{rule}"),
        severity: "warn".to_owned(),
    }
}

/// Calls with varied findings: none, one rule, two rules, a rule twice,
/// an empty rule id.
fn with_findings(i: u64) -> KeyedRecord {
    let mut k = keyed(i);
    k.record.findings = match i % 5 {
        0 => vec![],
        1 => vec![finding("TR-04")],
        2 => vec![finding("TR-04"), finding("ER-02"), finding("TR-04")],
        3 => vec![finding("ER-02")],
        _ => vec![finding(""), finding("MD-01")],
    };
    k
}

fn calls_are_filtered_by_finding_across_pages(db: &TestDb) {
    let mut store = db.open();
    // Three calls per start time: the cursor must break ties by row id.
    let records: Vec<KeyedRecord> = (0..300)
        .map(|i| {
            let mut k = with_findings(i);
            k.record.start_ms = BASE_MS + (i / 3) * 1_000;
            k
        })
        .collect();
    store.append(&records[..120]).unwrap();
    store.append(&records[120..]).unwrap();
    // A replayed batch adds neither calls nor findings.
    assert_eq!(store.append(&records[100..140]).unwrap(), 0);

    let s = |v: &str| Some(v.to_owned());
    let has = |r: &CallRecord, rule: &str| r.findings.iter().any(|f| f.rule == rule);
    type Keep = Box<dyn Fn(&CallRecord) -> bool>;
    let cases: Vec<(&str, CallQuery, Keep)> = vec![
        (
            "TR-04",
            CallQuery {
                finding: s("TR-04"),
                ..CallQuery::default()
            },
            Box::new(move |r| has(r, "TR-04")),
        ),
        (
            "ER-02 on one route",
            CallQuery {
                finding: s("ER-02"),
                route: s("users"),
                ..CallQuery::default()
            },
            Box::new(move |r| has(r, "ER-02") && r.route.as_deref() == Some("users")),
        ),
        (
            "TR-04 among errors in a time range",
            CallQuery {
                finding: s("TR-04"),
                status_min: Some(400),
                status_max: Some(599),
                from_ms: Some(BASE_MS + 10_000),
                until_ms: Some(BASE_MS + 70_000),
                ..CallQuery::default()
            },
            Box::new(move |r| {
                has(r, "TR-04")
                    && r.status >= 400
                    && r.start_ms >= BASE_MS + 10_000
                    && r.start_ms < BASE_MS + 70_000
            }),
        ),
        (
            "MD-01 of one client, one status",
            CallQuery {
                finding: s("MD-01"),
                client_id: s("client-4"),
                status_min: Some(502),
                status_max: Some(502),
                ..CallQuery::default()
            },
            Box::new(move |r| {
                has(r, "MD-01") && r.client_id.as_deref() == Some("client-4") && r.status == 502
            }),
        ),
        (
            "an unknown rule",
            CallQuery {
                finding: s("ZZ-99"),
                ..CallQuery::default()
            },
            Box::new(|_| false),
        ),
        (
            "the empty rule id matches nothing",
            CallQuery {
                finding: s(""),
                ..CallQuery::default()
            },
            Box::new(|_| false),
        ),
    ];
    for (name, mut q, keep) in cases {
        let mut expected: Vec<(u64, usize, String)> = records
            .iter()
            .enumerate()
            .filter(|(_, k)| keep(&k.record))
            .map(|(i, k)| (k.record.start_ms, i, k.record.request_id.clone()))
            .collect();
        expected.sort_by_key(|e| std::cmp::Reverse((e.0, e.1)));
        let expected: Vec<String> = expected.into_iter().map(|e| e.2).collect();
        if !name.contains("nothing") && !name.contains("unknown") {
            assert!(!expected.is_empty(), "{name}: the case selects calls");
        }
        for limit in [7, 50, 1000] {
            q.limit = limit;
            q.after = None;
            assert_eq!(
                all_pages(&mut store, q.clone()),
                expected,
                "{name}, limit {limit}"
            );
        }
    }
    // The calls come back whole, with every finding as recorded (the
    // repeated one too).
    let page = store
        .query(&CallQuery {
            finding: s("ER-02"),
            request_id: s("req-2"),
            ..CallQuery::default()
        })
        .unwrap();
    assert_eq!(page.calls.len(), 1);
    assert_eq!(page.calls[0].record, records[2].record);
    // One row per call and distinct rule, none for the empty id.
    let per_call: i64 = (0..300)
        .map(|i| match i % 5 {
            0 => 0,
            1 | 3 | 4 => 1,
            _ => 2,
        })
        .sum();
    assert_eq!(
        db.count_sql(&format!("SELECT count(*) FROM {}", db.findings_table())),
        per_call
    );
}

fn findings_go_with_their_calls(db: &TestDb) {
    let mut store = db.open();
    let batch: Vec<KeyedRecord> = (0..100).map(with_findings).collect();
    store.append(&batch).unwrap();
    let tr04 = |store: &mut AnyStore| {
        all_pages(
            store,
            CallQuery {
                finding: Some("TR-04".into()),
                limit: 1000,
                ..CallQuery::default()
            },
        )
    };
    assert_eq!(tr04(&mut store).len(), 40);
    // Retention deletes the oldest 70 calls, and their findings with them.
    let r = store
        .retain(
            &Retention {
                max_rows: Some(30),
                ..Retention::default()
            },
            BASE_MS,
        )
        .unwrap();
    assert_eq!(r.by_rows, 70);
    let left = tr04(&mut store);
    let expected: Vec<String> = (70..100)
        .rev()
        .filter(|i| matches!(i % 5, 1 | 2))
        .map(|i| format!("req-{i}"))
        .collect();
    assert_eq!(left, expected);
    let table = db.findings_table();
    let orphans = db.count_sql(&format!(
        "SELECT count(*) FROM {table} AS f WHERE f.call_id NOT IN (SELECT id FROM {})",
        if db.name() == "sqlite" {
            "calls"
        } else {
            "gatewise_calls"
        }
    ));
    assert_eq!(orphans, 0, "no findings left without their call");
    assert_eq!(
        db.count_sql(&format!("SELECT count(*) FROM {table}")),
        (70..100)
            .map(|i| match i % 5 {
                0 => 0,
                2 => 2,
                _ => 1,
            })
            .sum::<i64>()
    );
}

fn an_older_schema_gets_its_findings_backfilled(db: &TestDb) {
    let mut store = db.open();
    let batch: Vec<KeyedRecord> = (0..50).map(with_findings).collect();
    store.append(&batch).unwrap();
    drop(store);
    // As a build before the findings table left it, with one row whose
    // `findings` is not what this build writes (it must not stop the
    // migration).
    db.downgrade_to_v1();
    let calls = if db.name() == "sqlite" {
        "calls"
    } else {
        "gatewise_calls"
    };
    db.execute(&[&format!(
        "INSERT INTO {calls} (writer, seq, v, start_ms, request_id, method, path, status, \
         bytes_in, bytes_out, total_us, detail) VALUES (99, 1, 1, {BASE_MS}, 'odd', 'GET', '/', \
         200, 0, 0, 1, '{{\"findings\": [5, \"TR-04\", {{\"rule\": \"\"}}, {{\"rule\": \"OD-01\"}}]}}')"
    )]);

    let known = match db.name() {
        "sqlite" => gatewise_store::sqlite::MIGRATIONS.len(),
        _ => gatewise_store::postgres::MIGRATIONS.len(),
    } as i64;
    let mut store = db.open();
    assert_eq!(store.schema_version(), known);
    let table = db.findings_table();
    assert_eq!(
        db.count_sql(&format!(
            "SELECT count(*) FROM {table} WHERE rule = 'OD-01'"
        )),
        1,
        "the odd row's one usable rule"
    );
    db.execute(&[&format!("DELETE FROM {calls} WHERE request_id = 'odd'")]);
    for rule in ["TR-04", "ER-02", "MD-01"] {
        let got = all_pages(
            &mut store,
            CallQuery {
                finding: Some(rule.into()),
                limit: 7,
                ..CallQuery::default()
            },
        );
        let expected: Vec<String> = batch
            .iter()
            .rev()
            .filter(|k| k.record.findings.iter().any(|f| f.rule == rule))
            .map(|k| k.record.request_id.clone())
            .collect();
        assert!(!expected.is_empty());
        assert_eq!(got, expected, "{rule} after the backfill");
    }
    // New calls after the upgrade are indexed as they are written.
    let mut late = with_findings(1);
    late.key.seq = 1_000;
    late.record.request_id = "late".into();
    late.record.start_ms = BASE_MS + 3_600_000;
    store.append(&[late]).unwrap();
    let page = store
        .query(&CallQuery {
            finding: Some("TR-04".into()),
            limit: 1,
            ..CallQuery::default()
        })
        .unwrap();
    assert_eq!(page.calls[0].record.request_id, "late");
}
