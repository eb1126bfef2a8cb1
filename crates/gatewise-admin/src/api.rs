//! The routes and their handlers.
//!
//! | route | what |
//! |---|---|
//! | `GET /live` | the process answers |
//! | `GET /ready` | every issuer has keys (503 with the ones that do not) |
//! | `GET /api/v1/calls` | calls, filtered, newest first, keyset-paginated |
//! | `GET /api/v1/calls/{request_id}` | one call with its whole trace |
//! | `GET /api/v1/calls/{request_id}/diagnosis` | the doctor's findings about that call |
//! | `GET /api/v1/stats` | per-minute or per-hour calls, errors, percentiles, reasons |
//! | `GET /api/v1/state` | configuration version, reloads, upstreams, issuers' keys, counters, rate limits and caches, the call log's writer, the span exporter |
//! | `GET /api/v1/openapi.json` | the OpenAPI document of this API |
//! | `GET /metrics` | Prometheus metrics (OpenMetrics text) |
//! | `GET`/`PUT /api/v1/logging` | the log filter in force; change it without a restart |
//! | `GET /`, `/dashboard.js`, ... | the web dashboard ([`crate::dashboard`]), no token |

use crate::Admin;
use crate::error::AdminError;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use gatewise_store::{CallLog, CallQuery, Cursor, StatsQuery, StoredCall};
use serde::Deserialize;
use serde_json::{Value, json};

/// Longest range `/api/v1/stats` computes in one request.
const MAX_STATS_BUCKETS: u64 = 10_000;

/// The admin router over `admin`.
pub fn router(admin: Admin) -> Router {
    let api = Router::new()
        .route("/api/v1/calls", get(calls))
        .route("/api/v1/calls/{request_id}", get(call))
        .route("/api/v1/calls/{request_id}/diagnosis", get(diagnosis))
        .route("/api/v1/stats", get(stats))
        .route("/api/v1/state", get(state))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .route("/api/v1/logging", get(logging).put(set_logging))
        .route_layer(middleware::from_fn_with_state(admin.clone(), require_token));
    Router::new()
        .route("/live", get(live))
        .route("/ready", get(ready))
        .merge(api)
        .merge(crate::dashboard::routes())
        .fallback(not_found)
        .with_state(admin)
}

/// The bearer token, when one is configured; compared in constant time.
async fn require_token(
    State(admin): State<Admin>,
    req: Request,
    next: Next,
) -> Result<Response, AdminError> {
    if let Some(want) = &admin.token {
        let got = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        let ok = got.is_some_and(|t| {
            // Hash both first: equal lengths, so the comparison's time says
            // nothing about the token's length either.
            let a = gatewise_core::secret::sha256(t.as_bytes());
            let b = gatewise_core::secret::sha256(want.as_bytes());
            aws_lc_rs::constant_time::verify_slices_are_equal(&a, &b).is_ok()
        });
        if !ok {
            return Err(AdminError::Unauthorized);
        }
    }
    Ok(next.run(req).await)
}

async fn not_found() -> AdminError {
    AdminError::NotFound("no such admin route; see /api/v1/openapi.json".into())
}

async fn live() -> Json<Value> {
    Json(json!({"status": "live"}))
}

/// Ready when every issuer has keys: a gateway without keys refuses every
/// token, so a load balancer should not send it traffic yet.
async fn ready(State(admin): State<Admin>) -> Response {
    let Some(gw) = &admin.gateway else {
        return Json(json!({"status": "ready"})).into_response();
    };
    let waiting: Vec<Value> = gw
        .status()
        .issuers
        .into_iter()
        .filter(|i| i.kids.is_empty())
        .map(|i| json!({"issuer": i.name, "last_error": i.last_error}))
        .collect();
    if waiting.is_empty() {
        Json(json!({"status": "ready"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "issuers_without_keys": waiting})),
        )
            .into_response()
    }
}

/// Runs `f` on the reader store in a blocking task.
async fn with_store<T: Send + 'static>(
    admin: &Admin,
    f: impl FnOnce(&mut dyn CallLog) -> Result<T, gatewise_store::StoreError> + Send + 'static,
) -> Result<T, AdminError> {
    let store = admin.calls.clone().ok_or(AdminError::NoCallLog)?;
    tokio::task::spawn_blocking(move || {
        let mut guard = store
            .lock()
            .map_err(|_| AdminError::Internal("the store's lock is poisoned".into()))?;
        f(guard.as_mut()).map_err(AdminError::from)
    })
    .await
    .map_err(|e| AdminError::Internal(e.to_string()))?
}

/// Query parameters of `GET /api/v1/calls`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallsParams {
    /// Start of the range: Unix ms, or a duration back from now (`15m`, `2h`, `7d`).
    pub from: Option<String>,
    /// End of the range (exclusive): Unix ms, or a duration back from now.
    pub until: Option<String>,
    /// Route name.
    pub route: Option<String>,
    /// `401`, a class (`4xx`, `5xx`), or `error` (4xx and 5xx).
    pub status: Option<String>,
    /// Reason code (`jwt-expired`, ...).
    pub reason: Option<String>,
    /// The token's `client_id`.
    pub client_id: Option<String>,
    /// The token's `sub`.
    pub sub: Option<String>,
    /// Issuer name.
    pub issuer: Option<String>,
    /// HTTP method.
    pub method: Option<String>,
    /// Request id.
    pub request_id: Option<String>,
    /// Rule id of an inspector finding the call has (`TR-04`).
    pub finding: Option<String>,
    /// Page size (default 50, at most 1000).
    pub limit: Option<u32>,
    /// Continue after this cursor (`next` of the previous page).
    pub after: Option<String>,
}

/// A time parameter: Unix ms, or a duration back from `now_ms`.
fn time_param(name: &str, v: &str, now_ms: u64) -> Result<u64, AdminError> {
    if let Ok(ms) = v.parse::<u64>() {
        return Ok(ms);
    }
    let bad = || {
        AdminError::BadRequest(format!(
            "{name}={v:?}: expected Unix milliseconds or a duration back from now such as 15m, 2h or 7d"
        ))
    };
    let split = v.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = v.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    Ok(now_ms.saturating_sub(n.saturating_mul(unit_ms)))
}

fn status_range(v: &str) -> Result<(Option<u16>, Option<u16>), AdminError> {
    let bad = || {
        AdminError::BadRequest(format!(
            "status={v:?}: expected a status (401), a class (4xx, 5xx) or `error`"
        ))
    };
    match v {
        "error" => Ok((Some(400), Some(599))),
        _ if v.len() == 3 && v.ends_with("xx") => {
            let class: u16 = v.get(..1).and_then(|d| d.parse().ok()).ok_or_else(bad)?;
            if !(1..=5).contains(&class) {
                return Err(bad());
            }
            Ok((Some(class * 100), Some(class * 100 + 99)))
        }
        _ => {
            let s: u16 = v.parse().map_err(|_| bad())?;
            if !(100..=599).contains(&s) {
                return Err(bad());
            }
            Ok((Some(s), Some(s)))
        }
    }
}

impl CallsParams {
    /// The store query these parameters ask for.
    pub fn to_query(&self, now_ms: u64) -> Result<CallQuery, AdminError> {
        let (status_min, status_max) = match &self.status {
            Some(s) => status_range(s)?,
            None => (None, None),
        };
        let after = match &self.after {
            Some(c) => Some(c.parse::<Cursor>().map_err(|_| {
                AdminError::BadRequest(format!(
                    "after={c:?}: not a cursor (use `next` from the previous page)"
                ))
            })?),
            None => None,
        };
        let limit = self.limit.unwrap_or(0);
        if limit > gatewise_store::calllog::MAX_LIMIT {
            return Err(AdminError::BadRequest(format!(
                "limit={limit}: at most {}",
                gatewise_store::calllog::MAX_LIMIT
            )));
        }
        Ok(CallQuery {
            from_ms: self
                .from
                .as_deref()
                .map(|v| time_param("from", v, now_ms))
                .transpose()?,
            until_ms: self
                .until
                .as_deref()
                .map(|v| time_param("until", v, now_ms))
                .transpose()?,
            route: self.route.clone(),
            status_min,
            status_max,
            reason: self.reason.clone(),
            client_id: self.client_id.clone(),
            sub: self.sub.clone(),
            issuer: self.issuer.clone(),
            request_id: self.request_id.clone(),
            method: self.method.as_ref().map(|m| m.to_ascii_uppercase()),
            finding: self.finding.as_ref().map(|f| f.trim().to_ascii_uppercase()),
            limit,
            after,
        })
    }
}

/// A stored call as the API shows it: the record's fields, plus `id`.
fn call_json(c: &StoredCall) -> Value {
    let mut v = serde_json::to_value(&c.record).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("id".into(), json!(c.id));
        m.insert("error".into(), json!(c.record.is_error()));
    }
    v
}

async fn calls(
    State(admin): State<Admin>,
    params: Result<Query<CallsParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, AdminError> {
    let Query(params) = params.map_err(|e| AdminError::BadRequest(e.body_text()))?;
    let query = params.to_query(admin.clock.unix_millis())?;
    let page = with_store(&admin, move |s| s.query(&query)).await?;
    Ok(Json(json!({
        "calls": page.calls.iter().map(call_json).collect::<Vec<_>>(),
        "next": page.next.map(|c| c.to_string()),
    })))
}

async fn call(
    State(admin): State<Admin>,
    Path(request_id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let id = request_id.clone();
    let found = with_store(&admin, move |s| s.get(&id)).await?;
    let c = found
        .ok_or_else(|| AdminError::NotFound(format!("no call with request id {request_id:?}")))?;
    Ok(Json(call_json(&c)))
}

/// "Diagnose this call": the doctor's rules over what was recorded
/// (`gatewise_core::diagnose::call`).
async fn diagnosis(
    State(admin): State<Admin>,
    Path(request_id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let id = request_id.clone();
    let found = with_store(&admin, move |s| s.get(&id)).await?;
    let c = found
        .ok_or_else(|| AdminError::NotFound(format!("no call with request id {request_id:?}")))?;
    let report = gatewise_core::Report::new(
        format!("call {}", c.record.request_id),
        gatewise_core::diagnose::call::diagnose(&c.record),
    );
    Ok(Json(json!({
        "request_id": c.record.request_id,
        "status": c.record.status,
        "reason": c.record.reason,
        "verdict": report.verdict,
        "findings": report.findings,
    })))
}

/// Query parameters of `GET /api/v1/stats`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsParams {
    /// Start (Unix ms or a duration back from now); default one hour ago.
    pub from: Option<String>,
    /// End (exclusive); default now.
    pub until: Option<String>,
    /// `minute` (default) or `hour`.
    pub bucket: Option<String>,
    /// Only this route.
    pub route: Option<String>,
}

async fn stats(
    State(admin): State<Admin>,
    params: Result<Query<StatsParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, AdminError> {
    let Query(p) = params.map_err(|e| AdminError::BadRequest(e.body_text()))?;
    let now = admin.clock.unix_millis();
    let from = match &p.from {
        Some(v) => time_param("from", v, now)?,
        None => now.saturating_sub(3_600_000),
    };
    let until = match &p.until {
        Some(v) => time_param("until", v, now)?,
        None => now + 1,
    };
    if until <= from {
        return Err(AdminError::BadRequest(format!(
            "the range is empty: until ({until}) is not after from ({from})"
        )));
    }
    let bucket_ms = match p.bucket.as_deref().unwrap_or("minute") {
        "minute" => 60_000,
        "hour" => 3_600_000,
        other => {
            return Err(AdminError::BadRequest(format!(
                "bucket={other:?}: expected minute or hour"
            )));
        }
    };
    if (until - from) / bucket_ms > MAX_STATS_BUCKETS {
        return Err(AdminError::BadRequest(format!(
            "the range holds more than {MAX_STATS_BUCKETS} buckets: use bucket=hour or a shorter range"
        )));
    }
    let query = StatsQuery {
        from_ms: from,
        until_ms: until,
        bucket_ms,
        route: p.route.clone(),
        top_reasons: 5,
    };
    let (buckets, clients) = with_store(&admin, move |s| {
        Ok((s.stats(&query)?, s.top_error_clients(&query, 10)?))
    })
    .await?;
    let total_calls: u64 = buckets.iter().map(|b| b.calls).sum();
    let total_errors: u64 = buckets.iter().map(|b| b.errors).sum();
    let mut reasons: std::collections::BTreeMap<String, u64> = Default::default();
    for b in &buckets {
        for (r, n) in &b.top_reasons {
            *reasons.entry(r.clone()).or_default() += n;
        }
    }
    let mut top: Vec<(String, u64)> = reasons.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top.truncate(10);
    Ok(Json(json!({
        "from": from,
        "until": until,
        "bucket_ms": bucket_ms,
        "calls": total_calls,
        "errors": total_errors,
        "error_rate": if total_calls == 0 { 0.0 } else { total_errors as f64 / total_calls as f64 },
        "top_reasons": top.iter().map(|(r, n)| json!({"reason": r, "calls": n})).collect::<Vec<_>>(),
        "top_clients_by_errors": clients.iter().map(|(c, n)| json!({"client_id": c, "errors": n})).collect::<Vec<_>>(),
        "buckets": buckets.iter().map(|b| json!({
            "start": b.start_ms,
            "calls": b.calls,
            "errors": b.errors,
            "server_errors": b.server_errors,
            "p50_us": b.p50_us,
            "p95_us": b.p95_us,
            "p99_us": b.p99_us,
            "top_reasons": b.top_reasons.iter().map(|(r, n)| json!({"reason": r, "calls": n})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })))
}

/// The gateway's status, with its rate limits (per route: policy,
/// allowed, limited, keys) and caches (verified tokens, each
/// introspector's results: entries, capacity, hits, misses).
async fn gateway_state(g: &gatewise_gateway::Gateway) -> Value {
    let mut v = serde_json::to_value(g.status()).unwrap_or(Value::Null);
    let (rate_limits, caches) = limits_and_caches(g).await;
    if let Value::Object(m) = &mut v {
        m.insert("rate_limits".into(), json!(rate_limits));
        m.insert("caches".into(), json!(caches));
    }
    v
}

/// The rate limits and the caches (verified tokens first).
async fn limits_and_caches(
    g: &gatewise_gateway::Gateway,
) -> (
    Vec<gatewise_gateway::ratelimit::RouteRateLimit>,
    Vec<gatewise_gateway::metrics::CacheStats>,
) {
    let state = g.state();
    let mut caches = vec![g.token_cache()];
    caches.extend(state.introspection_caches().await);
    (state.rate_limits(), caches)
}

async fn state(State(admin): State<Admin>) -> Json<Value> {
    let gateway = match &admin.gateway {
        Some(g) => Some(gateway_state(g).await),
        None => None,
    };
    let call_log = admin.writer.as_ref().map(|w| {
        let c = w();
        json!({
            "queued": c.queued,
            "written": c.written,
            "spooled": c.spooled,
            "replayed": c.replayed,
            "dropped": c.dropped,
            "store_errors": c.store_errors,
            "spool_bytes": c.spool_bytes,
            "backlog": c.backlog,
            "deferring": c.deferring,
        })
    });
    let span_export = admin.spans.as_ref().map(|s| {
        let c = s();
        json!({
            "queued": c.queued,
            "exported": c.exported,
            "dropped": c.dropped,
            "failed": c.failed,
        })
    });
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "gateway": gateway,
        "call_log": call_log,
        "span_export": span_export,
    }))
}

/// Prometheus: the gateway's families, then the call log's writer, then
/// the span exporter, then `# EOF`.
async fn metrics(State(admin): State<Admin>) -> Result<Response, AdminError> {
    let mut out = String::with_capacity(8 * 1024);
    let failed = |e: std::fmt::Error| AdminError::Internal(format!("encoding metrics: {e}"));
    if let Some(g) = &admin.gateway {
        g.encode_metrics(&mut out).map_err(failed)?;
        let (rate_limits, caches) = limits_and_caches(g).await;
        gatewise_gateway::metrics::encode_stats(&rate_limits, &caches, &mut out).map_err(failed)?;
    }
    if let Some(w) = &admin.writer {
        crate::metrics::encode_writer(&w(), &mut out).map_err(failed)?;
    }
    if let Some(s) = &admin.spans {
        crate::metrics::encode_span_export(&s(), &mut out).map_err(failed)?;
    }
    prometheus_client::encoding::text::encode_eof(&mut out).map_err(failed)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
        .into_response())
}

async fn logging(State(admin): State<Admin>) -> Result<Json<Value>, AdminError> {
    let control = admin
        .logging
        .as_ref()
        .ok_or_else(|| AdminError::NotFound("this process has no adjustable log filter".into()))?;
    let filter = control(None).map_err(AdminError::Internal)?;
    Ok(Json(json!({"filter": filter})))
}

/// The body of `PUT /api/v1/logging`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetLogging {
    /// `tracing` filter directives: `debug`, `gatewise_gateway=debug,info`.
    pub filter: String,
}

async fn set_logging(
    State(admin): State<Admin>,
    body: Result<Json<SetLogging>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, AdminError> {
    let Json(body) = body.map_err(|e| {
        AdminError::BadRequest(format!(
            "expected {{\"filter\": \"info\"}}: {}",
            e.body_text()
        ))
    })?;
    let control = admin
        .logging
        .as_ref()
        .ok_or_else(|| AdminError::NotFound("this process has no adjustable log filter".into()))?;
    let filter = control(Some(&body.filter)).map_err(AdminError::BadRequest)?;
    Ok(Json(json!({"filter": filter})))
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::document().to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_parameters() {
        let now = 10_000_000;
        assert_eq!(time_param("from", "1234", now).unwrap(), 1234);
        assert_eq!(time_param("from", "15m", now).unwrap(), now - 900_000);
        assert_eq!(time_param("from", "1d", now).unwrap(), 0);
        for bad in ["", "15", "m", "15x", "-1h", "1.5h"] {
            if bad == "15" {
                continue;
            }
            assert!(time_param("from", bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn status_filters() {
        assert_eq!(status_range("401").unwrap(), (Some(401), Some(401)));
        assert_eq!(status_range("4xx").unwrap(), (Some(400), Some(499)));
        assert_eq!(status_range("error").unwrap(), (Some(400), Some(599)));
        for bad in ["6xx", "0xx", "99", "abc", "40x", "1000"] {
            assert!(status_range(bad).is_err(), "{bad}");
        }
    }
}
