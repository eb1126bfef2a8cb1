//! The admin API on 127.0.0.1 over a real SQLite call log, read by a real
//! HTTP client.

use gatewise_admin::Admin;
use gatewise_core::calllog::{CallRecord, FindingRef, Outcome, Step, TraceStep};
use gatewise_core::clock::FixedClock;
use gatewise_store::{CallLog, KeyedRecord, RecordKey, SqliteCallLog};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;

/// 2026-01-01T00:00:00Z.
const NOW_S: u64 = 1_767_225_600;
const NOW_MS: u64 = NOW_S * 1000;

fn record(i: u64) -> CallRecord {
    let mut r = CallRecord::new(
        format!("req-{i}"),
        NOW_MS - 600_000 + i * 1000,
        "GET",
        "/orders/1",
    );
    r.route = Some(
        if i.is_multiple_of(2) {
            "orders"
        } else {
            "public"
        }
        .into(),
    );
    r.status = match i % 5 {
        0 => 401,
        1 => 502,
        _ => 200,
    };
    r.reason = match r.status {
        401 => Some("jwt-expired".into()),
        502 => Some("upstream-unavailable".into()),
        _ => None,
    };
    r.client_id = Some(format!("client-{}", i % 3));
    r.total_us = 100 + i;
    r.trace = vec![TraceStep::new(Step::Route, Outcome::Ok, 1)];
    // Calls 2, 8, 14, ... carry an inspector finding; 8, 20, ... two.
    if i % 6 == 2 {
        r.findings.push(finding("TR-04"));
        if i % 12 == 8 {
            r.findings.push(finding("ER-02"));
        }
    }
    r
}

fn finding(rule: &str) -> FindingRef {
    FindingRef {
        rule: rule.into(),
        code: format!("code-of-{rule}"),
        severity: "warn".into(),
    }
}

struct World {
    base: String,
    http: reqwest::Client,
    _dir: tempdir::Dir,
}

mod tempdir {
    /// A directory removed on drop.
    pub(crate) struct Dir(pub(crate) std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

async fn world(n: u64, token: Option<&str>) -> World {
    let dir = std::env::temp_dir().join(format!(
        "gatewise-admin-{}-{n}-{}",
        std::process::id(),
        token.is_some()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("calls.db");
    let mut store = SqliteCallLog::open(&db).unwrap();
    let batch: Vec<KeyedRecord> = (0..n)
        .map(|i| KeyedRecord {
            key: RecordKey {
                writer: 1,
                seq: i as i64,
            },
            record: record(i),
        })
        .collect();
    store.append(&batch).unwrap();
    let reader = SqliteCallLog::open(&db).unwrap();
    let mut admin = Admin::new(Arc::new(FixedClock(NOW_S))).with_calls(Box::new(reader));
    if let Some(t) = token {
        admin = admin.with_token(t);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(admin.serve(listener, std::future::pending()));
    World {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        _dir: tempdir::Dir(dir),
    }
}

impl World {
    async fn get(&self, path: &str) -> (u16, String, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = r.text().await.unwrap();
        (
            status,
            ct,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    }
}

fn ids(v: &Value) -> Vec<String> {
    v["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["request_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn calls_are_filtered_paginated_and_fetched_one_by_one() {
    let w = world(20, None).await;
    let (s, _, all) = w.get("/api/v1/calls?limit=1000").await;
    assert_eq!(s, 200, "{all}");
    let all_ids = ids(&all);
    assert_eq!(all_ids.len(), 20);
    assert_eq!(all_ids[0], "req-19", "newest first");

    // Filters combine.
    let (_, _, v) = w.get("/api/v1/calls?status=401&route=orders").await;
    let got = ids(&v);
    assert_eq!(got, ["req-10", "req-0"]);
    let (_, _, v) = w.get("/api/v1/calls?status=5xx").await;
    assert_eq!(ids(&v), ["req-16", "req-11", "req-6", "req-1"]);
    let (_, _, v) = w.get("/api/v1/calls?status=error&limit=1000").await;
    assert_eq!(ids(&v).len(), 8);
    let (_, _, v) = w.get("/api/v1/calls?reason=jwt-expired").await;
    assert!(
        ids(&v)
            .iter()
            .all(|id| ["req-0", "req-5", "req-10", "req-15"].contains(&id.as_str()))
    );
    assert_eq!(ids(&v).len(), 4);
    let (_, _, v) = w.get("/api/v1/calls?client_id=client-2&limit=1000").await;
    assert_eq!(ids(&v).len(), 6);
    // By inspector finding (rule id, any case), alone or with others.
    let (s, _, v) = w.get("/api/v1/calls?finding=TR-04").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(ids(&v), ["req-14", "req-8", "req-2"]);
    assert_eq!(v["calls"][1]["findings"][1]["rule"], "ER-02");
    let (_, _, v) = w.get("/api/v1/calls?finding=er-02").await;
    assert_eq!(ids(&v), ["req-8"]);
    let (_, _, v) = w.get("/api/v1/calls?finding=TR-04&from=595s").await;
    assert_eq!(ids(&v), ["req-14", "req-8"]);
    let (_, _, v) = w.get("/api/v1/calls?finding=TR-04&status=401").await;
    assert_eq!(ids(&v), Vec::<String>::new());
    let (_, _, v) = w.get("/api/v1/calls?finding=TR-04&limit=2").await;
    assert_eq!(ids(&v), ["req-14", "req-8"]);
    let next = v["next"].as_str().unwrap().to_owned();
    let (_, _, v) = w
        .get(&format!("/api/v1/calls?finding=TR-04&limit=2&after={next}"))
        .await;
    assert_eq!(ids(&v), ["req-2"]);
    assert!(v["next"].is_null());
    let (_, _, v) = w.get("/api/v1/calls?finding=ZZ-99").await;
    assert_eq!(ids(&v), Vec::<String>::new());
    // Time range: call i started at now - 600 s + i s.
    let (_, _, v) = w.get("/api/v1/calls?from=590s&limit=1000").await;
    assert_eq!(ids(&v).len(), 10);
    let (_, _, v) = w.get("/api/v1/calls?from=590s&until=585s&limit=1000").await;
    assert_eq!(ids(&v), ["req-14", "req-13", "req-12", "req-11", "req-10"]);

    // Pages of 7 walk every call once, in order.
    let mut walked = Vec::new();
    let mut path = "/api/v1/calls?limit=7".to_owned();
    for _ in 0..10 {
        let (s, _, v) = w.get(&path).await;
        assert_eq!(s, 200);
        walked.extend(ids(&v));
        match v["next"].as_str() {
            Some(next) => path = format!("/api/v1/calls?limit=7&after={next}"),
            None => break,
        }
    }
    assert_eq!(walked, all_ids);

    // One call, with its trace.
    let (s, _, one) = w.get("/api/v1/calls/req-5").await;
    assert_eq!(s, 200);
    assert_eq!(one["status"], 401);
    assert_eq!(one["reason"], "jwt-expired");
    assert_eq!(one["trace"][0]["step"], "route");
    assert_eq!(one["error"], true);
    // Diagnose this call: the reason explained with cause and fix.
    let (s, _, d) = w.get("/api/v1/calls/req-5/diagnosis").await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["findings"][0]["code"], "call-jwt-expired", "{d}");
    assert_eq!(d["findings"][0]["rule"], "GW-02");
    assert!(
        d["findings"][0]["fix"]
            .as_str()
            .unwrap()
            .contains("refresh")
    );
    let (_, _, d) = w.get("/api/v1/calls/req-7/diagnosis").await;
    assert_eq!(d["findings"].as_array().map(Vec::len), Some(0), "{d}");
    assert_eq!(w.get("/api/v1/calls/nope/diagnosis").await.0, 404);
    let (s, ct, v) = w.get("/api/v1/calls/nope").await;
    assert_eq!((s, ct.as_str()), (404, "application/problem+json"));
    assert_eq!(v["code"], "not-found");
}

#[tokio::test]
async fn bad_parameters_are_named_in_a_problem_document() {
    let w = world(3, None).await;
    for (q, needle) in [
        ("status=6xx", "status=\"6xx\""),
        ("from=yesterday", "from=\"yesterday\""),
        ("after=zzz", "after=\"zzz\""),
        ("limit=5000", "limit=5000"),
        ("colour=red", "colour"),
    ] {
        let (s, ct, v) = w.get(&format!("/api/v1/calls?{q}")).await;
        assert_eq!(
            (s, ct.as_str()),
            (400, "application/problem+json"),
            "{q}: {v}"
        );
        assert_eq!(v["code"], "bad-request");
        assert!(v["detail"].as_str().unwrap().contains(needle), "{q}: {v}");
    }
    let (s, _, v) = w.get("/api/v1/stats?bucket=week").await;
    assert_eq!(s, 400, "{v}");
    let (s, _, _) = w.get("/api/v1/nothing-here").await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn stats_count_errors_and_percentiles_per_minute() {
    let w = world(120, None).await;
    // Calls at now-600 s + i s: 120 calls over two minutes.
    let (s, _, v) = w.get("/api/v1/stats?from=15m&bucket=minute").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["calls"], 120);
    assert_eq!(v["errors"], 48);
    let buckets = v["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 2);
    assert_eq!(buckets[0]["calls"], 60);
    assert_eq!(v["top_reasons"][0]["calls"], 24);
    let p99 = buckets[1]["p99_us"].as_u64().unwrap();
    assert!((160..=219).contains(&p99), "{p99}");
    // Errors by client: record i is client-(i % 3), an error when i % 5 is
    // 0 or 1.
    let mut expected: Vec<(String, u64)> = (0..3)
        .map(|c| {
            let n = (0..120u64).filter(|i| i % 3 == c && i % 5 < 2).count() as u64;
            (format!("client-{c}"), n)
        })
        .collect();
    expected.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let got: Vec<(String, u64)> = v["top_clients_by_errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["client_id"].as_str().unwrap().to_owned(),
                c["errors"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, expected);
    let (_, _, v) = w.get("/api/v1/stats?from=15m&route=orders").await;
    assert_eq!(v["calls"], 60);
}

#[tokio::test]
async fn a_configured_token_is_required_except_for_health() {
    let w = world(2, Some("s3cret-admin-token")).await;
    assert_eq!(w.get("/live").await.0, 200);
    assert_eq!(w.get("/ready").await.0, 200);
    let (s, _, v) = w.get("/api/v1/calls").await;
    assert_eq!(s, 401, "{v}");
    assert_eq!(v["code"], "unauthorized");
    for auth in [
        "Bearer wrong",
        "Bearer s3cret-admin-toke",
        "Basic s3cret-admin-token",
        "",
    ] {
        let r = w
            .http
            .get(format!("{}/api/v1/calls", w.base))
            .header("authorization", auth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{auth}");
        assert!(r.headers().contains_key("www-authenticate"));
    }
    let r = w
        .http
        .get(format!("{}/api/v1/calls", w.base))
        .bearer_auth("s3cret-admin-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = w
        .http
        .get(format!("{}/api/v1/openapi.json", w.base))
        .bearer_auth("s3cret-admin-token")
        .send()
        .await
        .unwrap();
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
}

#[tokio::test]
async fn without_a_call_log_the_api_says_so_and_state_still_answers() {
    let admin = Admin::new(Arc::new(FixedClock(NOW_S)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(admin.serve(listener, std::future::pending()));
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{base}/api/v1/calls"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "call-log-disabled");
    let r = http
        .get(format!("{base}/api/v1/state"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // No log control given: said so, as a problem document.
    let r = http
        .get(format!("{base}/api/v1/logging"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn the_log_filter_is_read_and_changed_through_the_control() {
    let current = Arc::new(std::sync::Mutex::new("info".to_owned()));
    let c = Arc::clone(&current);
    let admin = Admin::new(Arc::new(FixedClock(NOW_S))).with_log_control(Arc::new(
        move |new: Option<&str>| {
            let mut f = c.lock().unwrap();
            if let Some(n) = new {
                if n.contains("loud") {
                    return Err(format!("invalid filter {n:?}"));
                }
                *f = n.to_owned();
            }
            Ok(f.clone())
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(admin.serve(listener, std::future::pending()));
    let http = reqwest::Client::new();
    let url = format!("{base}/api/v1/logging");
    let v: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["filter"], "info");
    let r = http
        .put(&url)
        .json(&serde_json::json!({"filter": "x=loud"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http.put(&url).body("not json").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = http
        .put(&url)
        .json(&serde_json::json!({"filter": "debug"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["filter"], "debug");
    assert_eq!(*current.lock().unwrap(), "debug");
}

#[tokio::test]
async fn metrics_count_requests_by_route_status_and_reason() {
    use gatewise_config::model::{DynamicConfig, PathMatch, Route, Upstream};
    use gatewise_gateway::server::Running;
    let echo = gatewise_test_support::servers::echo().await;
    let config = DynamicConfig {
        upstreams: vec![Upstream::new("echo", vec![format!("http://{echo}")])],
        routes: vec![Route::new(
            "public",
            PathMatch::Prefix("/public".into()),
            "echo",
        )],
        ..DynamicConfig::default()
    };
    let running = Running::local(config, Arc::new(FixedClock(NOW_S)))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    for path in ["/public/a", "/public/b", "/nowhere"] {
        http.get(format!("http://{}{path}", running.addr))
            .send()
            .await
            .unwrap();
    }
    let admin = Admin::new(Arc::new(FixedClock(NOW_S)))
        .with_gateway(Arc::clone(&running.gateway))
        .with_writer(Arc::new(|| gatewise_store::Counters {
            queued: 7,
            dropped: 1,
            ..Default::default()
        }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(admin.serve(listener, std::future::pending()));
    let r = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = r.text().await.unwrap();
    for line in [
        "gatewise_requests_total{route=\"public\",status=\"200\",reason=\"\"} 2",
        "gatewise_requests_total{route=\"\",status=\"404\",reason=\"route-not-found\"} 1",
        "gatewise_request_duration_seconds_count{route=\"public\"} 2",
        "gatewise_calllog_queued_total 7",
        "gatewise_calllog_dropped_total 1",
        "gatewise_config_version 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(text.matches("# EOF").count(), 1);
}

/// Serves `admin` on a free loopback port; gives its base URL.
/// GETs `url` and reads the body as JSON.
async fn get_json(http: &reqwest::Client, url: impl reqwest::IntoUrl) -> Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

async fn serve(admin: Admin) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(admin.serve(listener, std::future::pending()));
    base
}

#[tokio::test]
async fn span_export_counters_are_in_state_and_metrics_when_attached() {
    use gatewise_admin::SpanExportCounters;
    let http = reqwest::Client::new();
    let admin =
        Admin::new(Arc::new(FixedClock(NOW_S))).with_span_export(Arc::new(|| SpanExportCounters {
            queued: 3,
            exported: 41,
            dropped: 2,
            failed: 5,
        }));
    let base = serve(admin).await;

    let state: Value = get_json(&http, format!("{base}/api/v1/state")).await;
    assert_eq!(
        state["span_export"],
        serde_json::json!({"queued": 3, "exported": 41, "dropped": 2, "failed": 5})
    );
    assert!(state["call_log"].is_null(), "{state}");

    // The OpenAPI document names exactly these members.
    let doc: Value = get_json(&http, format!("{base}/api/v1/openapi.json")).await;
    let documented = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        documented(&doc["components"]["schemas"]["SpanExport"]["properties"]),
        documented(&state["span_export"])
    );
    let state_members = &doc["paths"]["/api/v1/state"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"]["properties"];
    assert!(
        state_members.get("span_export").is_some(),
        "{state_members}"
    );

    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "# TYPE gatewise_otlp_spans_exported counter",
        "gatewise_otlp_spans_exported_total 41",
        "gatewise_otlp_spans_dropped_total 2",
        "gatewise_otlp_spans_failed_total 5",
        "# TYPE gatewise_otlp_queue gauge",
        "gatewise_otlp_queue 3",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(!text.contains("gatewise_calllog_"), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(text.matches("# EOF").count(), 1);
}

#[tokio::test]
async fn without_span_export_state_says_null_and_metrics_leave_it_out() {
    let http = reqwest::Client::new();
    let admin = Admin::new(Arc::new(FixedClock(NOW_S))).with_writer(Arc::new(|| {
        gatewise_store::Counters {
            spooled: 4,
            ..Default::default()
        }
    }));
    let base = serve(admin).await;
    let state: Value = get_json(&http, format!("{base}/api/v1/state")).await;
    assert!(
        state.as_object().unwrap().contains_key("span_export"),
        "{state}"
    );
    assert!(state["span_export"].is_null(), "{state}");
    assert_eq!(state["call_log"]["spooled"], 4);
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("gatewise_otlp"), "{text}");
    for line in [
        "# HELP gatewise_calllog_spooled Call records written to the spool (the database was away or slow, or the CPUs were busy).",
        "# HELP gatewise_calllog_dropped Call records lost (the in-memory queue or the spool was full, or sent after shutdown).",
        "gatewise_calllog_spooled_total 4",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}
