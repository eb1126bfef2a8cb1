//! The embedded call log: SQLite through rusqlite.
//!
//! One row per call in `calls`: the fields that are filtered or aggregated
//! as columns (each filter with an index whose second column is the start
//! time, so "filter, newest first" walks one index), the variable parts
//! (decision trace, findings, headers) as one JSON column, `detail`; the
//! findings' rule ids also in `call_findings` (one row per call and rule,
//! keyed `(rule, start_ms, call_id)`), which the finding filter walks. The
//! schema is created and upgraded by the embedded [`MIGRATIONS`], numbered
//! by `PRAGMA user_version`. The database runs in WAL mode with
//! `synchronous=NORMAL` and incremental auto-vacuum, so retention gives
//! space back to the file system.
//!
//! Row types are this module's own: a record is mapped to columns here, and
//! the JSON of `detail` is [`Detail`], not the core type.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gatewise_core::calllog::{CallRecord, FindingRef, MaskedHeaders, TraceStep};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params, params_from_iter};
use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::calllog::{
    Bucket, CallLog, CallPage, CallQuery, KeyedRecord, RecordKey, Retained, Retention, StatsQuery,
    StoredCall, percentile,
};

/// The schema, one migration per version: migration `i` (0-based) takes
/// the database from `user_version` `i` to `i + 1`. Never edit a released
/// migration; append a new one.
pub const MIGRATIONS: &[&str] = &[
    // 1: calls and their indexes; a row counter kept by the store.
    "CREATE TABLE calls (
        id INTEGER PRIMARY KEY,
        writer INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        v INTEGER NOT NULL,
        start_ms INTEGER NOT NULL,
        request_id TEXT NOT NULL,
        trace_id TEXT,
        route TEXT,
        upstream TEXT,
        upstream_addr TEXT,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        status INTEGER NOT NULL,
        bytes_in INTEGER NOT NULL,
        bytes_out INTEGER NOT NULL,
        total_us INTEGER NOT NULL,
        auth_us INTEGER,
        upstream_first_byte_us INTEGER,
        upstream_total_us INTEGER,
        client_ip TEXT,
        issuer TEXT,
        kid TEXT,
        client_id TEXT,
        sub TEXT,
        scopes TEXT,
        token_fingerprint TEXT,
        reason TEXT,
        detail TEXT NOT NULL
    );
    CREATE UNIQUE INDEX calls_key ON calls (writer, seq);
    CREATE INDEX calls_time ON calls (start_ms, status, total_us);
    CREATE INDEX calls_request_id ON calls (request_id);
    CREATE INDEX calls_route ON calls (route, start_ms) WHERE route IS NOT NULL;
    CREATE INDEX calls_status ON calls (status, start_ms);
    CREATE INDEX calls_reason ON calls (reason, start_ms) WHERE reason IS NOT NULL;
    CREATE INDEX calls_client ON calls (client_id, start_ms) WHERE client_id IS NOT NULL;
    CREATE INDEX calls_sub ON calls (sub, start_ms) WHERE sub IS NOT NULL;
    CREATE INDEX calls_issuer ON calls (issuer, start_ms) WHERE issuer IS NOT NULL;
    CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO meta (name, value) VALUES ('rows', 0);",
    // 2: the inspector's findings by rule id, one row per call and rule, in
    // the filter's order (rule, then newest first), so "calls with TR-04"
    // walks one index however few calls have it; emptied with their call
    // by a trigger (retention, or an operator's DELETE). Rows written
    // before this version are backfilled from `detail` (one pass over the
    // table; rows without findings skip the JSON parse).
    "CREATE TABLE call_findings (
        rule TEXT NOT NULL,
        start_ms INTEGER NOT NULL,
        call_id INTEGER NOT NULL,
        PRIMARY KEY (rule, start_ms, call_id)
    ) WITHOUT ROWID;
    CREATE INDEX call_findings_call ON call_findings (call_id);
    CREATE TRIGGER calls_delete_findings AFTER DELETE ON calls
    BEGIN
        DELETE FROM call_findings WHERE call_id = old.id;
    END;
    INSERT OR IGNORE INTO call_findings (rule, start_ms, call_id)
    SELECT rule, start_ms, id FROM (
        SELECT CASE WHEN f.type = 'object' THEN json_extract(f.value, '$.rule') END AS rule,
            c.start_ms AS start_ms, c.id AS id
        FROM calls AS c, json_each(
            CASE WHEN instr(c.detail, '\"findings\"') > 0 AND json_valid(c.detail)
                THEN c.detail ELSE '{}' END,
            '$.findings') AS f
    )
    WHERE typeof(rule) = 'text' AND rule <> '';",
];

/// The columns [`read_row`] reads, of `calls AS c`.
const COLUMNS: &str = "c.id, c.writer, c.seq, c.v, c.start_ms, c.request_id, c.trace_id, \
    c.route, c.upstream, c.upstream_addr, c.method, c.path, c.status, c.bytes_in, c.bytes_out, \
    c.total_us, c.auth_us, c.upstream_first_byte_us, c.upstream_total_us, c.client_ip, c.issuer, \
    c.kid, c.client_id, c.sub, c.scopes, c.token_fingerprint, c.reason, c.detail";

const INSERT_FINDING: &str =
    "INSERT OR IGNORE INTO call_findings (rule, start_ms, call_id) VALUES (?1, ?2, ?3)";

const INSERT: &str = "INSERT OR IGNORE INTO calls (writer, seq, v, start_ms, request_id, trace_id, \
    route, upstream, upstream_addr, method, path, status, bytes_in, bytes_out, total_us, auth_us, \
    upstream_first_byte_us, upstream_total_us, client_ip, issuer, kid, client_id, sub, scopes, \
    token_fingerprint, reason, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, \
    ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27)";

/// Rows deleted per transaction by retention, so readers and the writer
/// never wait long for it.
const DELETE_CHUNK: u64 = 10_000;

/// The variable parts of a record, stored as JSON in `detail`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Detail {
    /// The decision trace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trace: Vec<TraceStep>,
    /// The inspector's findings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<FindingRef>,
    /// Request headers, masked.
    #[serde(default, skip_serializing_if = "MaskedHeaders::is_empty")]
    pub request_headers: MaskedHeaders,
    /// Response headers, masked.
    #[serde(default, skip_serializing_if = "MaskedHeaders::is_empty")]
    pub response_headers: MaskedHeaders,
    /// The gateway's span id in the call's trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    /// The client's span id (the gateway's parent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    /// The trace's `sampled` flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampled: Option<bool>,
}

#[derive(Serialize)]
struct DetailRef<'a> {
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    trace: &'a [TraceStep],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    findings: &'a [FindingRef],
    #[serde(skip_serializing_if = "MaskedHeaders::is_empty")]
    request_headers: &'a MaskedHeaders,
    #[serde(skip_serializing_if = "MaskedHeaders::is_empty")]
    response_headers: &'a MaskedHeaders,
    #[serde(skip_serializing_if = "Option::is_none")]
    span_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_span_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sampled: Option<bool>,
}

/// How the connection is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteOptions {
    /// How long a statement waits for a lock held by another connection
    /// before failing with `SQLITE_BUSY`. The writer keeps this short, so a
    /// locked database sends records to the spool instead of stalling.
    pub busy_timeout: Duration,
    /// Page cache size, KiB. The default, 8 MiB, holds the pages the
    /// appends touch (the table's and each index's rightmost leaves and their
    /// parents); queries read through the operating system's cache anyway.
    /// It counts against the gateway's resident memory (64 MB under load is
    /// the budget, issue 5): 16 MiB took a call-logging gateway to 66 MB.
    pub cache_kib: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            busy_timeout: Duration::from_millis(250),
            cache_kib: 8 * 1024,
        }
    }
}

/// The file's identity, to notice that the path now names another file
/// (or none): SQLite would otherwise keep writing to the unlinked one.
#[cfg(unix)]
fn file_ident(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_ident(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|_| (0, 0))
}

/// The SQLite call log. Opens (and creates, and migrates) the database on
/// first use and again after a failure, so a database that was locked,
/// moved or unwritable works again once it is back.
#[derive(Debug)]
pub struct SqliteCallLog {
    path: Option<PathBuf>,
    options: SqliteOptions,
    conn: Option<Connection>,
    ident: Option<(u64, u64)>,
}

impl SqliteCallLog {
    /// Opens the database at `path` (created if missing) with default
    /// options, applying pending migrations.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens the database at `path` with these options.
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, StoreError> {
        let mut store = SqliteCallLog {
            path: Some(path.as_ref().to_path_buf()),
            options,
            conn: None,
            ident: None,
        };
        store.connection()?;
        Ok(store)
    }

    /// A private in-memory database (tests, `--ephemeral` runs).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory()?;
        let options = SqliteOptions::default();
        configure(&conn, &options)?;
        let mut store = SqliteCallLog {
            path: None,
            options,
            conn: Some(conn),
            ident: None,
        };
        if let Some(conn) = store.conn.as_mut() {
            migrate(conn)?;
        }
        Ok(store)
    }

    /// The database file, `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The schema version of the open database.
    pub fn schema_version(&mut self) -> Result<i64, StoreError> {
        let conn = self.connection()?;
        Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// Bytes of the pages in use (the file's size less its free pages).
    pub fn used_bytes(&mut self) -> Result<u64, StoreError> {
        used_bytes(self.connection()?)
    }

    /// The open connection, (re)opened if needed; fails with
    /// [`StoreError::Moved`] when the path no longer names the open file.
    fn connection(&mut self) -> Result<&mut Connection, StoreError> {
        if let Some(path) = &self.path {
            if self.conn.is_some() {
                let now = file_ident(path);
                if now.is_none() || now != self.ident {
                    self.conn = None;
                    self.ident = None;
                    return Err(StoreError::Moved(path.clone()));
                }
            } else {
                let conn = Connection::open(path)?;
                configure(&conn, &self.options)?;
                let mut conn = conn;
                migrate(&mut conn)?;
                self.ident = file_ident(path);
                self.conn = Some(conn);
            }
        }
        self.conn
            .as_mut()
            .ok_or_else(|| StoreError::Backend("the in-memory database is closed".into()))
    }

    /// Runs `f` on the connection; on error, drops the connection so the
    /// next call opens the file afresh (a replaced or repaired file, a
    /// released lock).
    fn with<T>(
        &mut self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let result = f(self.connection()?);
        if result.is_err() && self.path.is_some() {
            self.conn = None;
            self.ident = None;
        }
        result
    }
}

fn configure(conn: &Connection, options: &SqliteOptions) -> Result<(), StoreError> {
    conn.busy_timeout(options.busy_timeout)?;
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
        [],
        |r| r.get(0),
    )?;
    if tables == 0 {
        // Only takes effect before the first table is created.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    }
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "wal_autocheckpoint", 8192)?;
    conn.pragma_update(None, "cache_size", -i64::from(options.cache_kib))?;
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let known = MIGRATIONS.len() as i64;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
    }
    tx.commit()?;
    Ok(())
}

fn used_bytes(conn: &Connection) -> Result<u64, StoreError> {
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok(u64::try_from((pages - free).max(0) * size).unwrap_or(0))
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn uint(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn insert(conn: &mut Connection, batch: &[KeyedRecord]) -> Result<usize, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut inserted = 0usize;
    {
        let mut stmt = tx.prepare_cached(INSERT)?;
        let mut finding = tx.prepare_cached(INSERT_FINDING)?;
        for KeyedRecord { key, record: r } in batch {
            let detail = serde_json::to_string(&DetailRef {
                trace: &r.trace,
                findings: &r.findings,
                request_headers: &r.request_headers,
                response_headers: &r.response_headers,
                span_id: r.span_id.as_deref(),
                parent_span_id: r.parent_span_id.as_deref(),
                sampled: r.sampled,
            })
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
            let scopes = (!r.scopes.is_empty()).then(|| r.scopes.join(" "));
            let added = stmt.execute(params![
                key.writer,
                key.seq,
                r.v,
                int(r.start_ms),
                r.request_id,
                r.trace_id,
                r.route,
                r.upstream,
                r.upstream_addr,
                r.method,
                r.path,
                r.status,
                int(r.bytes_in),
                int(r.bytes_out),
                int(r.total_us),
                r.auth_us.map(int),
                r.upstream_first_byte_us.map(int),
                r.upstream_total_us.map(int),
                r.client_ip.map(|ip| ip.to_string()),
                r.issuer,
                r.kid,
                r.client_id,
                r.sub,
                scopes,
                r.token_fingerprint,
                r.reason,
                detail,
            ])?;
            if added > 0 {
                // A key already stored inserts nothing, and its findings
                // are there already.
                let id = tx.last_insert_rowid();
                for rule in finding_rules(r) {
                    finding.execute(params![rule, int(r.start_ms), id])?;
                }
            }
            inserted += added;
        }
    }
    tx.execute(
        "UPDATE meta SET value = value + ?1 WHERE name = 'rows'",
        [inserted as i64],
    )?;
    tx.commit()?;
    Ok(inserted)
}

/// The distinct, non-empty rule ids of a record's findings, sorted.
fn finding_rules(r: &CallRecord) -> Vec<&str> {
    let mut rules: Vec<&str> = r
        .findings
        .iter()
        .map(|f| f.rule.as_str())
        .filter(|rule| !rule.is_empty())
        .collect();
    rules.sort_unstable();
    rules.dedup();
    rules
}

fn read_row(row: &Row<'_>) -> rusqlite::Result<Result<StoredCall, StoreError>> {
    let id: i64 = row.get(0)?;
    let detail: String = row.get(27)?;
    let detail: Detail = match serde_json::from_str(&detail) {
        Ok(d) => d,
        Err(e) => {
            return Ok(Err(StoreError::Corrupt {
                id,
                reason: e.to_string(),
            }));
        }
    };
    let scopes: Option<String> = row.get(24)?;
    let client_ip: Option<String> = row.get(19)?;
    let record = CallRecord {
        v: u8::try_from(row.get::<_, i64>(3)?).unwrap_or(0),
        start_ms: uint(row.get(4)?),
        request_id: row.get(5)?,
        trace_id: row.get(6)?,
        span_id: detail.span_id,
        parent_span_id: detail.parent_span_id,
        sampled: detail.sampled,
        route: row.get(7)?,
        upstream: row.get(8)?,
        upstream_addr: row.get(9)?,
        method: row.get(10)?,
        path: row.get(11)?,
        status: u16::try_from(row.get::<_, i64>(12)?).unwrap_or(0),
        bytes_in: uint(row.get(13)?),
        bytes_out: uint(row.get(14)?),
        total_us: uint(row.get(15)?),
        auth_us: row.get::<_, Option<i64>>(16)?.map(uint),
        upstream_first_byte_us: row.get::<_, Option<i64>>(17)?.map(uint),
        upstream_total_us: row.get::<_, Option<i64>>(18)?.map(uint),
        client_ip: client_ip.and_then(|s| s.parse().ok()),
        issuer: row.get(20)?,
        kid: row.get(21)?,
        client_id: row.get(22)?,
        sub: row.get(23)?,
        scopes: scopes
            .map(|s| s.split(' ').map(str::to_owned).collect())
            .unwrap_or_default(),
        token_fingerprint: row.get(25)?,
        reason: row.get(26)?,
        trace: detail.trace,
        findings: detail.findings,
        request_headers: detail.request_headers,
        response_headers: detail.response_headers,
    };
    Ok(Ok(StoredCall {
        id,
        key: RecordKey {
            writer: row.get(1)?,
            seq: row.get(2)?,
        },
        record,
    }))
}

fn query(conn: &Connection, q: &CallQuery) -> Result<CallPage, StoreError> {
    // With a finding, the walk starts in `call_findings` (`CROSS JOIN`
    // keeps SQLite's planner from reordering): its primary key gives the
    // calls of one rule newest first, and the time range and the cursor
    // apply to it; each call is then fetched by its row id. Without one,
    // `calls` alone.
    let (mut sql, time, id) = match &q.finding {
        Some(_) => (
            format!(
                "SELECT {COLUMNS} FROM call_findings AS f CROSS JOIN calls AS c \
                 ON c.id = f.call_id WHERE f.rule = ?1"
            ),
            "f.start_ms",
            "f.call_id",
        ),
        None => (
            format!("SELECT {COLUMNS} FROM calls AS c WHERE 1 = 1"),
            "c.start_ms",
            "c.id",
        ),
    };
    let mut args: Vec<Value> = Vec::new();
    if let Some(rule) = &q.finding {
        args.push(Value::Text(rule.clone()));
    }
    let mut filter = |cond: &str, v: Value| {
        sql.push_str(" AND ");
        sql.push_str(&cond.replace('?', &format!("?{}", args.len() + 1)));
        args.push(v);
    };
    if let Some(v) = q.from_ms {
        filter(&format!("{time} >= ?"), Value::Integer(int(v)));
    }
    if let Some(v) = q.until_ms {
        filter(&format!("{time} < ?"), Value::Integer(int(v)));
    }
    let text = |s: &String| Value::Text(s.clone());
    for (col, v) in [
        ("route", &q.route),
        ("reason", &q.reason),
        ("client_id", &q.client_id),
        ("sub", &q.sub),
        ("issuer", &q.issuer),
        ("request_id", &q.request_id),
        ("method", &q.method),
    ] {
        if let Some(v) = v {
            filter(&format!("c.{col} = ?"), text(v));
        }
    }
    match (q.status_min, q.status_max) {
        // One status: `calls_status` gives the rows in time order.
        (Some(lo), Some(hi)) if lo == hi => filter("c.status = ?", Value::Integer(lo.into())),
        (lo, hi) => {
            // A range (4xx, errors): the unary `+` keeps the planner off
            // `calls_status`, whose range would need a sort of every match;
            // walking `calls_time` newest first (status is in that index)
            // stops after a page.
            if let Some(v) = lo {
                filter("+c.status >= ?", Value::Integer(v.into()));
            }
            if let Some(v) = hi {
                filter("+c.status <= ?", Value::Integer(v.into()));
            }
        }
    }
    if let Some(c) = q.after {
        let n = args.len();
        sql.push_str(&format!(" AND ({time}, {id}) < (?{}, ?{})", n + 1, n + 2));
        args.push(Value::Integer(int(c.start_ms)));
        args.push(Value::Integer(c.id));
    }
    let limit = q.effective_limit();
    sql.push_str(&format!(
        " ORDER BY {time} DESC, {id} DESC LIMIT {}",
        limit + 1
    ));
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), read_row)?;
    let mut calls = Vec::new();
    for row in rows {
        calls.push(row??);
    }
    let more = calls.len() > limit as usize;
    calls.truncate(limit as usize);
    let next = if more {
        calls.last().map(StoredCall::cursor)
    } else {
        None
    };
    Ok(CallPage { calls, next })
}

#[derive(Default)]
struct Acc {
    start_ms: u64,
    errors: u64,
    server_errors: u64,
    latencies: Vec<u64>,
}

impl Acc {
    fn finish(mut self) -> Bucket {
        self.latencies.sort_unstable();
        Bucket {
            start_ms: self.start_ms,
            calls: self.latencies.len() as u64,
            errors: self.errors,
            server_errors: self.server_errors,
            p50_us: percentile(&self.latencies, 50),
            p95_us: percentile(&self.latencies, 95),
            p99_us: percentile(&self.latencies, 99),
            top_reasons: Vec::new(),
        }
    }
}

fn top_error_clients(
    conn: &Connection,
    q: &StatsQuery,
    limit: usize,
) -> Result<Vec<(String, u64)>, StoreError> {
    let mut args = vec![
        Value::Integer(int(q.from_ms)),
        Value::Integer(int(q.until_ms)),
        Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)),
    ];
    let route = match &q.route {
        Some(r) => {
            args.push(Value::Text(r.clone()));
            " AND route = ?4"
        }
        None => "",
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT client_id, count(*) AS n FROM calls \
         WHERE start_ms >= ?1 AND start_ms < ?2 AND status >= 400 \
         AND client_id IS NOT NULL{route} \
         GROUP BY client_id ORDER BY n DESC, client_id LIMIT ?3"
    ))?;
    let mut rows = stmt.query(params_from_iter(args.iter()))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push((row.get::<_, String>(0)?, uint(row.get(1)?)));
    }
    Ok(out)
}

fn stats(conn: &Connection, q: &StatsQuery) -> Result<Vec<Bucket>, StoreError> {
    let width = q.bucket_ms.max(1);
    let mut args = vec![
        Value::Integer(int(q.from_ms)),
        Value::Integer(int(q.until_ms)),
    ];
    let route = match &q.route {
        Some(r) => {
            args.push(Value::Text(r.clone()));
            " AND route = ?3"
        }
        None => "",
    };
    let mut buckets: Vec<Bucket> = Vec::new();
    {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT start_ms, status, total_us FROM calls \
             WHERE start_ms >= ?1 AND start_ms < ?2{route} ORDER BY start_ms"
        ))?;
        let mut rows = stmt.query(params_from_iter(args.iter()))?;
        let mut acc: Option<Acc> = None;
        while let Some(row) = rows.next()? {
            let start = uint(row.get(0)?);
            let status: i64 = row.get(1)?;
            let total = uint(row.get(2)?);
            let b = start / width * width;
            let cur = match acc.take() {
                Some(a) if a.start_ms == b => a,
                other => {
                    if let Some(done) = other {
                        buckets.push(done.finish());
                    }
                    Acc {
                        start_ms: b,
                        ..Acc::default()
                    }
                }
            };
            let mut cur = cur;
            cur.latencies.push(total);
            if status >= 400 {
                cur.errors += 1;
            }
            if status >= 500 {
                cur.server_errors += 1;
            }
            acc = Some(cur);
        }
        if let Some(done) = acc {
            buckets.push(done.finish());
        }
    }
    if q.top_reasons > 0 && !buckets.is_empty() {
        args.push(Value::Integer(int(width)));
        let w = args.len();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT start_ms / ?{w} * ?{w} AS b, reason, count(*) FROM calls \
             WHERE reason IS NOT NULL AND start_ms >= ?1 AND start_ms < ?2{route} \
             GROUP BY b, reason"
        ))?;
        let mut rows = stmt.query(params_from_iter(args.iter()))?;
        let mut per: std::collections::HashMap<u64, Vec<(String, u64)>> = Default::default();
        while let Some(row) = rows.next()? {
            per.entry(uint(row.get(0)?))
                .or_default()
                .push((row.get(1)?, uint(row.get(2)?)));
        }
        for b in &mut buckets {
            if let Some(mut reasons) = per.remove(&b.start_ms) {
                reasons.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
                reasons.truncate(q.top_reasons);
                b.top_reasons = reasons;
            }
        }
    }
    Ok(buckets)
}

/// Deletes up to `n` rows chosen by `select` (a `SELECT id ... LIMIT ?1`),
/// in chunks, keeping the row counter right. Returns how many went.
fn delete_chunked(
    conn: &mut Connection,
    select: &str,
    extra: Option<i64>,
    mut n: u64,
) -> Result<u64, StoreError> {
    let mut deleted = 0;
    while n > 0 {
        let chunk = n.min(DELETE_CHUNK);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let gone = {
            let sql = format!("DELETE FROM calls WHERE id IN ({select})");
            match extra {
                Some(x) => tx.execute(&sql, params![int(chunk), x])?,
                None => tx.execute(&sql, params![int(chunk)])?,
            }
        } as u64;
        tx.execute(
            "UPDATE meta SET value = max(value - ?1, 0) WHERE name = 'rows'",
            [int(gone)],
        )?;
        tx.commit()?;
        deleted += gone;
        if gone < chunk {
            break;
        }
        n -= gone;
    }
    Ok(deleted)
}

const OLDEST: &str = "SELECT id FROM calls ORDER BY start_ms LIMIT ?1";

fn count(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row("SELECT value FROM meta WHERE name = 'rows'", [], |r| {
        r.get(0)
    })?;
    Ok(uint(n))
}

fn retain(conn: &mut Connection, policy: &Retention, now_ms: u64) -> Result<Retained, StoreError> {
    let mut out = Retained::default();
    if let Some(age) = policy.max_age_ms {
        let cutoff = int(now_ms.saturating_sub(age));
        out.by_age = delete_chunked(
            conn,
            "SELECT id FROM calls WHERE start_ms < ?2 LIMIT ?1",
            Some(cutoff),
            u64::MAX,
        )?;
    }
    if let Some(max) = policy.max_rows {
        let rows = count(conn)?;
        if rows > max {
            out.by_rows = delete_chunked(conn, OLDEST, None, rows - max)?;
        }
    }
    // Keep the planner's statistics current as the table changes (cheap
    // when nothing changed much); before measuring size, as it may add a
    // page.
    conn.execute_batch("PRAGMA optimize")?;
    if out.total() > 0 {
        conn.execute_batch("PRAGMA incremental_vacuum")?;
    }
    if let Some(max) = policy.max_bytes {
        // Rows are of similar size: delete the share of rows by which the
        // pages in use exceed the limit (at least 2%), give the pages back,
        // measure again. Index pages only free up when empty, so it may
        // take a few rounds.
        for _ in 0..64 {
            let used = used_bytes(conn)?;
            let rows = count(conn)?;
            if used <= max || rows == 0 {
                break;
            }
            let share = (u128::from(used - max) * u128::from(rows)).div_ceil(u128::from(used));
            let n = u64::try_from(share).unwrap_or(rows).max(rows / 50).max(1);
            let gone = delete_chunked(conn, OLDEST, None, n)?;
            out.by_size += gone;
            conn.execute_batch("PRAGMA incremental_vacuum")?;
            if gone == 0 {
                break;
            }
        }
    }
    Ok(out)
}

impl CallLog for SqliteCallLog {
    fn append(&mut self, batch: &[KeyedRecord]) -> Result<usize, StoreError> {
        if batch.is_empty() {
            return Ok(0);
        }
        self.with(|c| insert(c, batch))
    }

    fn query(&mut self, q: &CallQuery) -> Result<CallPage, StoreError> {
        self.with(|c| query(c, q))
    }

    fn get(&mut self, request_id: &str) -> Result<Option<StoredCall>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM calls AS c WHERE c.request_id = ?1 \
                 ORDER BY c.start_ms DESC, c.id DESC LIMIT 1"
            ))?;
            match stmt.query_row([request_id], read_row).optional()? {
                Some(r) => r.map(Some),
                None => Ok(None),
            }
        })
    }

    fn stats(&mut self, q: &StatsQuery) -> Result<Vec<Bucket>, StoreError> {
        self.with(|c| stats(c, q))
    }

    fn top_error_clients(
        &mut self,
        q: &StatsQuery,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        self.with(|c| top_error_clients(c, q, limit))
    }

    fn retain(&mut self, policy: &Retention, now_ms: u64) -> Result<Retained, StoreError> {
        if policy.is_unlimited() {
            return Ok(Retained::default());
        }
        self.with(|c| retain(c, policy, now_ms))
    }

    fn count(&mut self) -> Result<u64, StoreError> {
        self.with(|c| count(c))
    }
}
