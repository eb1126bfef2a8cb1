//! The scale-out call log: PostgreSQL through sqlx.
//!
//! The same [`CallLog`] as [`SqliteCallLog`](crate::SqliteCallLog), with
//! the same columns: one row per call in `gatewise_calls`, the filtered
//! and aggregated fields as columns, each filter with an index that ends in
//! `(start_ms, id)` so "filter, newest first, after this cursor" walks one
//! index backwards and stops after a page; the variable parts (trace,
//! findings, headers) as one `jsonb` column, `detail`; the findings' rule
//! ids also in `gatewise_call_findings` (one row per call and rule, keyed
//! `(rule, start_ms, call_id)`), which the finding filter walks. Client
//! addresses are `inet`, scopes `text[]`, so an operator can query them in
//! SQL.
//!
//! The schema is created and upgraded by the embedded [`MIGRATIONS`] when a
//! connection is opened, numbered in `gatewise_calls_schema` and applied
//! under an advisory lock (several gateways may start at once); a database
//! written by a newer build is refused ([`StoreError::SchemaTooNew`]).
//!
//! A batch is one statement: `INSERT ... SELECT ... FROM UNNEST(...)` with
//! one array parameter per column, `ON CONFLICT (writer, seq) DO NOTHING`
//! (replays are idempotent), and the row counter in `gatewise_calls_meta`
//! updated in the same statement, so `count` needs no table scan.
//!
//! [`CallLog`] is synchronous and sqlx is async: the store owns a small
//! current-thread tokio runtime (or uses the handle it was given) and
//! blocks on its futures. Call it from the writer's thread or from
//! `spawn_blocking`, never from an async task. Every call has a deadline;
//! a call that fails or times out drops the connection and returns the
//! error, and the next call connects again (a call that finds its idle
//! connection closed by a server restart reconnects and retries once,
//! which is safe because appends are idempotent). The writer spools and
//! retries on errors, so a restarted server loses nothing.
//!
//! Errors name the server as `user@host:port/database`: the password is
//! never part of a message, a log line or a `Debug` output.
//!
//! TLS is not compiled in (sqlx's `tls-rustls-aws-lc-rs` feature would
//! add it): the default `sslmode=prefer` connects in the clear, and
//! `sslmode=require` fails with an error that says TLS is unavailable.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use gatewise_core::calllog::{CallRecord, FindingRef, MaskedHeaders, TraceStep};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgRow};
use sqlx::{Arguments, AssertSqlSafe, Connection, Row};

use crate::StoreError;
use crate::calllog::{
    Bucket, CallLog, CallPage, CallQuery, KeyedRecord, RecordKey, Retained, Retention, StatsQuery,
    StoredCall,
};

/// The schema, one migration per version: migration `i` (0-based) takes
/// the database from version `i` to `i + 1` (recorded in
/// `gatewise_calls_schema`). Never edit a released migration; append a new
/// one.
pub const MIGRATIONS: &[&str] = &[
    // 1: calls, their indexes (mirroring the SQLite store's, each ending in
    // the keyset order), the row counter.
    "CREATE TABLE gatewise_calls (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        writer bigint NOT NULL,
        seq bigint NOT NULL,
        start_ms bigint NOT NULL,
        bytes_in bigint NOT NULL,
        bytes_out bigint NOT NULL,
        total_us bigint NOT NULL,
        auth_us bigint,
        upstream_first_byte_us bigint,
        upstream_total_us bigint,
        status integer NOT NULL,
        v smallint NOT NULL,
        client_ip inet,
        request_id text NOT NULL,
        trace_id text,
        route text,
        upstream text,
        upstream_addr text,
        method text NOT NULL,
        path text NOT NULL,
        issuer text,
        kid text,
        client_id text,
        sub text,
        scopes text[],
        token_fingerprint text,
        reason text,
        detail jsonb NOT NULL,
        CONSTRAINT gatewise_calls_key UNIQUE (writer, seq)
    ) WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
    CREATE INDEX gatewise_calls_time ON gatewise_calls (start_ms, id) INCLUDE (status, total_us);
    CREATE INDEX gatewise_calls_request_id ON gatewise_calls (request_id, start_ms, id);
    CREATE INDEX gatewise_calls_route ON gatewise_calls (route, start_ms, id)
        INCLUDE (status, total_us) WHERE route IS NOT NULL;
    CREATE INDEX gatewise_calls_status ON gatewise_calls (status, start_ms, id);
    CREATE INDEX gatewise_calls_reason ON gatewise_calls (reason, start_ms, id)
        WHERE reason IS NOT NULL;
    CREATE INDEX gatewise_calls_client ON gatewise_calls (client_id, start_ms, id)
        WHERE client_id IS NOT NULL;
    CREATE INDEX gatewise_calls_sub ON gatewise_calls (sub, start_ms, id) WHERE sub IS NOT NULL;
    CREATE INDEX gatewise_calls_issuer ON gatewise_calls (issuer, start_ms, id)
        WHERE issuer IS NOT NULL;
    CREATE TABLE gatewise_calls_meta (
        one boolean PRIMARY KEY DEFAULT true CHECK (one),
        row_count bigint NOT NULL,
        peak_rows bigint NOT NULL
    );
    INSERT INTO gatewise_calls_meta (row_count, peak_rows) VALUES (0, 0);",
    // 2: the inspector's findings by rule id, one row per call and rule,
    // keyed in the filter's order (rule, then newest first) so "calls with
    // TR-04" walks one index backwards and stops after a page. Deleted with
    // their calls by a statement-level trigger (one set-based DELETE per
    // retention chunk or operator's DELETE; a foreign key would cost a
    // row lock per finding on every insert). Calls stored before this
    // version are backfilled from `detail` (one pass over the table;
    // migrations run under `maintenance_timeout`, not the connect
    // deadline).
    "CREATE TABLE gatewise_call_findings (
        rule text NOT NULL,
        start_ms bigint NOT NULL,
        call_id bigint NOT NULL,
        PRIMARY KEY (rule, start_ms, call_id)
    ) WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
    CREATE INDEX gatewise_call_findings_call ON gatewise_call_findings (call_id);
    CREATE FUNCTION gatewise_call_findings_gone() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM gatewise_call_findings WHERE call_id IN (SELECT id FROM gone);
        RETURN NULL;
    END
    $$;
    CREATE TRIGGER gatewise_calls_findings_gone AFTER DELETE ON gatewise_calls
        REFERENCING OLD TABLE AS gone
        FOR EACH STATEMENT EXECUTE FUNCTION gatewise_call_findings_gone();
    INSERT INTO gatewise_call_findings (rule, start_ms, call_id)
    SELECT e.value ->> 'rule', c.start_ms, c.id
    FROM gatewise_calls AS c
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE WHEN jsonb_typeof(c.detail -> 'findings') = 'array'
            THEN c.detail -> 'findings' ELSE '[]'::jsonb END) AS e(value)
    WHERE c.detail ? 'findings' AND e.value ->> 'rule' <> ''
    ON CONFLICT DO NOTHING;",
];

/// Key of the advisory lock that serialises migrations ("gatewise" in
/// ASCII).
const MIGRATION_LOCK: i64 = 0x6761_7465_7769_7365;

const SCHEMA_TABLE: &str = "CREATE TABLE IF NOT EXISTS gatewise_calls_schema (
        one boolean PRIMARY KEY DEFAULT true CHECK (one),
        version integer NOT NULL
    );
    INSERT INTO gatewise_calls_schema (version) VALUES (0) ON CONFLICT DO NOTHING;";

/// The columns [`read_row`] reads, of `gatewise_calls AS c`.
const COLUMNS: &str = "c.id, c.writer, c.seq, c.v, c.start_ms, c.request_id, c.trace_id, \
    c.route, c.upstream, c.upstream_addr, c.method, c.path, c.status, c.bytes_in, c.bytes_out, \
    c.total_us, c.auth_us, c.upstream_first_byte_us, c.upstream_total_us, host(c.client_ip), \
    c.issuer, c.kid, c.client_id, c.sub, array_to_string(c.scopes, ' '), c.token_fingerprint, \
    c.reason, c.detail::text";

/// One statement per batch: the rows from one array per column, in batch
/// order (so row ids follow it), existing keys skipped, the findings' rule
/// ids of the inserted rows (three more arrays, one entry per call and
/// rule: writer, seq, rule), the counter kept.
const INSERT: &str = "WITH ins AS (
    INSERT INTO gatewise_calls (writer, seq, v, start_ms, request_id, trace_id, route, upstream,
        upstream_addr, method, path, status, bytes_in, bytes_out, total_us, auth_us,
        upstream_first_byte_us, upstream_total_us, client_ip, issuer, kid, client_id, sub, scopes,
        token_fingerprint, reason, detail)
    SELECT writer, seq, v, start_ms, request_id, trace_id, route, upstream, upstream_addr, method,
        path, status, bytes_in, bytes_out, total_us, auth_us, upstream_first_byte_us,
        upstream_total_us, client_ip::inet, issuer, kid, client_id, sub,
        string_to_array(scopes, ' '), token_fingerprint, reason, detail::jsonb
    FROM UNNEST($1::int8[], $2::int8[], $3::int2[], $4::int8[], $5::text[], $6::text[],
        $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::int4[], $13::int8[],
        $14::int8[], $15::int8[], $16::int8[], $17::int8[], $18::int8[], $19::text[], $20::text[],
        $21::text[], $22::text[], $23::text[], $24::text[], $25::text[], $26::text[], $27::text[])
        WITH ORDINALITY AS u(writer, seq, v, start_ms, request_id, trace_id, route, upstream,
            upstream_addr, method, path, status, bytes_in, bytes_out, total_us, auth_us,
            upstream_first_byte_us, upstream_total_us, client_ip, issuer, kid, client_id, sub,
            scopes, token_fingerprint, reason, detail, ord)
    ORDER BY ord
    ON CONFLICT (writer, seq) DO NOTHING
    RETURNING id, writer, seq, start_ms
), found AS (
    INSERT INTO gatewise_call_findings (rule, start_ms, call_id)
    SELECT f.rule, ins.start_ms, ins.id
    FROM UNNEST($28::int8[], $29::int8[], $30::text[]) AS f(writer, seq, rule)
    JOIN ins ON ins.writer = f.writer AND ins.seq = f.seq
    ON CONFLICT DO NOTHING
)
UPDATE gatewise_calls_meta
SET row_count = row_count + c.n, peak_rows = greatest(peak_rows, row_count + c.n)
FROM (SELECT count(*) AS n FROM ins) AS c
RETURNING c.n";

/// Deletes up to `$1` of the oldest calls that started before `$2`,
/// keeping the counter right; returns how many went.
const DELETE_OLDEST: &str = "WITH d AS (
    DELETE FROM gatewise_calls WHERE id IN (
        SELECT id FROM gatewise_calls WHERE start_ms < $2 ORDER BY start_ms, id LIMIT $1
    )
    RETURNING 1
)
UPDATE gatewise_calls_meta SET row_count = greatest(row_count - c.n, 0)
FROM (SELECT count(*) AS n FROM d) AS c
RETURNING c.n";

/// Rows deleted per statement by retention, so neither readers nor other
/// writers wait long for it.
const DELETE_CHUNK: u64 = 10_000;

/// How the store connects and how long it waits.
#[derive(Clone)]
pub struct PostgresOptions {
    /// Longest wait for a connection (TCP, TLS-less startup,
    /// authentication, the schema check).
    pub connect_timeout: Duration,
    /// Longest wait for one call: an append, a query, a statistics query.
    /// Keep it short for the writer: while it waits, records queue up.
    pub timeout: Duration,
    /// Longest wait for one retention statement (a chunk of deletions,
    /// `VACUUM`).
    pub maintenance_timeout: Duration,
    /// Run on this runtime instead of the store's own current-thread one.
    /// It must have its I/O and time drivers enabled (`enable_all`), and
    /// the store must still be called from outside its async tasks
    /// (`spawn_blocking`, a thread of its own).
    pub runtime: Option<tokio::runtime::Handle>,
    /// `application_name` shown in `pg_stat_activity`.
    pub application_name: String,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            maintenance_timeout: Duration::from_secs(600),
            runtime: None,
            application_name: "gatewise".to_owned(),
        }
    }
}

impl fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("maintenance_timeout", &self.maintenance_timeout)
            .field("runtime", &self.runtime.is_some())
            .field("application_name", &self.application_name)
            .finish()
    }
}

/// The variable parts of a record, stored as JSON in `detail` (the same
/// shape as the SQLite store's).
#[derive(Debug, Default, Deserialize)]
struct Detail {
    #[serde(default)]
    trace: Vec<TraceStep>,
    #[serde(default)]
    findings: Vec<FindingRef>,
    #[serde(default)]
    request_headers: MaskedHeaders,
    #[serde(default)]
    response_headers: MaskedHeaders,
    #[serde(default)]
    span_id: Option<String>,
    #[serde(default)]
    parent_span_id: Option<String>,
    #[serde(default)]
    sampled: Option<bool>,
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

/// Where the store's futures run.
enum Rt {
    /// Its own current-thread runtime (an `Option` so `Drop` can shut it
    /// down without blocking).
    Own(Option<tokio::runtime::Runtime>),
    /// A runtime it was given.
    Shared(tokio::runtime::Handle),
}

impl Rt {
    fn block_on<F: Future>(&self, f: F) -> Result<F::Output, StoreError> {
        match self {
            Rt::Own(Some(rt)) => Ok(rt.block_on(f)),
            Rt::Own(None) => Err(StoreError::Backend("the store's runtime is gone".into())),
            Rt::Shared(handle) => Ok(handle.block_on(f)),
        }
    }
}

/// Why a step failed, before the store adds what it was doing and where.
enum Failure {
    Sql(sqlx::Error),
    Timeout(Duration),
    Store(StoreError),
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Sql(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

impl Failure {
    /// True when the connection is gone (server restarted, network cut),
    /// as opposed to a statement the server refused.
    fn lost_connection(&self) -> bool {
        match self {
            Failure::Sql(sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::Tls(_)) => {
                true
            }
            Failure::Sql(sqlx::Error::Database(e)) => e.code().is_some_and(|c| {
                // Class 08: connection exception; 57P01-57P03: the server
                // is shutting down or restarting.
                c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")
            }),
            _ => false,
        }
    }
}

async fn deadline<T, F>(after: Duration, f: F) -> Result<T, Failure>
where
    F: Future<Output = Result<T, Failure>>,
{
    match tokio::time::timeout(after, f).await {
        Ok(r) => r,
        Err(_) => Err(Failure::Timeout(after)),
    }
}

/// The PostgreSQL call log. Connects (and migrates) when opened, and again
/// on the first call after a failure.
pub struct PostgresCallLog {
    rt: Rt,
    connect: PgConnectOptions,
    target: String,
    options: PostgresOptions,
    conn: Option<PgConnection>,
}

impl fmt::Debug for PostgresCallLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the connect options: their Debug shows the password.
        f.debug_struct("PostgresCallLog")
            .field("target", &self.target)
            .field("connected", &self.conn.is_some())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// `url` with the password in its user info replaced by `***`, for
/// messages.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &userinfo[..colon],
            &rest[at..]
        ),
        None => url.to_owned(),
    }
}

/// `user@host:port/database` (or the socket path for a Unix socket).
fn describe(o: &PgConnectOptions) -> String {
    let place = match o.get_socket() {
        Some(socket) => socket.display().to_string(),
        None => format!("{}:{}", o.get_host(), o.get_port()),
    };
    format!(
        "{}@{}/{}",
        o.get_username(),
        place,
        o.get_database().unwrap_or(o.get_username())
    )
}

impl PostgresCallLog {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`)
    /// with default options, creating or upgrading the schema.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, PostgresOptions::default())
    }

    /// Connects with these options.
    pub fn open_with(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let bad = |reason: String| StoreError::BadUrl {
            url: redact_url(url),
            reason,
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(bad("not a postgres:// or postgresql:// URL".into()));
        }
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| bad(e.to_string()))?
            .application_name(&options.application_name);
        let rt = match &options.runtime {
            Some(handle) => Rt::Shared(handle.clone()),
            None => Rt::Own(Some(
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| StoreError::io("starting the PostgreSQL store's runtime", e))?,
            )),
        };
        let mut store = PostgresCallLog {
            rt,
            target: describe(&connect),
            connect,
            options,
            conn: None,
        };
        store.with("connecting", async |_: &mut PgConnection| Ok(()))?;
        Ok(store)
    }

    /// The server and database, as `user@host:port/database` (no
    /// password).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The schema version of the database.
    pub fn schema_version(&mut self) -> Result<i64, StoreError> {
        self.with("reading the schema version", async |c| {
            let v: i32 = sqlx::query_scalar("SELECT version FROM gatewise_calls_schema")
                .fetch_one(&mut *c)
                .await?;
            Ok(i64::from(v))
        })
    }

    /// The bytes the calls take: `pg_total_relation_size` of the table
    /// (rows, TOAST, indexes) in proportion to the rows it holds now
    /// against the most it has held. PostgreSQL keeps the space of deleted
    /// rows for new ones rather than giving it back, so this is the part of
    /// the relation in use.
    pub fn used_bytes(&mut self) -> Result<u64, StoreError> {
        self.with("measuring the table", async |c| used_bytes(c).await)
    }

    /// Runs `f` on the connection (connecting first if needed) within the
    /// call deadline. On failure the connection is dropped, so the next
    /// call connects afresh; when a connection that was already open turns
    /// out to be lost, the call is retried once on a new one.
    fn with<T>(
        &mut self,
        doing: &'static str,
        f: impl AsyncFnMut(&mut PgConnection) -> Result<T, Failure>,
    ) -> Result<T, StoreError> {
        let timeout = self.options.timeout;
        self.with_deadline(doing, timeout, f)
    }

    fn with_deadline<T>(
        &mut self,
        doing: &'static str,
        timeout: Duration,
        mut f: impl AsyncFnMut(&mut PgConnection) -> Result<T, Failure>,
    ) -> Result<T, StoreError> {
        let PostgresCallLog {
            rt,
            connect,
            options,
            conn,
            target,
        } = self;
        let result = rt.block_on(async {
            let mut fresh = false;
            loop {
                let c = match conn {
                    Some(c) => c,
                    None => {
                        fresh = true;
                        let c = open_connection(connect, options).await;
                        conn.insert(c.map_err(|e| ("connecting", e))?)
                    }
                };
                match deadline(timeout, f(c)).await {
                    Ok(v) => return Ok(v),
                    Err(e) => {
                        *conn = None;
                        if fresh || !e.lost_connection() {
                            return Err((doing, e));
                        }
                        tracing::info!(
                            server = %target,
                            "PostgreSQL connection lost; reconnecting"
                        );
                    }
                }
            }
        })?;
        result.map_err(|(doing, e)| match e {
            Failure::Sql(source) => StoreError::Postgres {
                target: target.clone(),
                doing,
                source,
            },
            Failure::Timeout(after) => StoreError::PostgresTimeout {
                target: target.clone(),
                doing,
                after,
            },
            Failure::Store(e) => e,
        })
    }
}

impl Drop for PostgresCallLog {
    fn drop(&mut self) {
        // Never block here (the store may be dropped inside an async
        // task): the connection's socket just closes, and the own runtime
        // is shut down in the background.
        self.conn = None;
        if let Rt::Own(rt) = &mut self.rt
            && let Some(rt) = rt.take()
        {
            rt.shutdown_background();
        }
    }
}

/// Connects and checks the schema within the connect deadline; pending
/// migrations (which may rewrite the table: a backfill) get the
/// maintenance deadline instead.
async fn open_connection(
    connect: &PgConnectOptions,
    options: &PostgresOptions,
) -> Result<PgConnection, Failure> {
    let (mut conn, current) = deadline(options.connect_timeout, async {
        let mut conn = PgConnection::connect_with(connect).await?;
        let current = schema_is_current(&mut conn).await?;
        Ok((conn, current))
    })
    .await?;
    if !current {
        deadline(options.maintenance_timeout, migrate(&mut conn)).await?;
    }
    Ok(conn)
}

/// True when the schema is this build's; an error when it is newer. Writes
/// nothing (a reader may have a role that cannot create tables).
async fn schema_is_current(conn: &mut PgConnection) -> Result<bool, Failure> {
    let known = MIGRATIONS.len() as i64;
    let found: Result<i32, sqlx::Error> =
        sqlx::query_scalar("SELECT version FROM gatewise_calls_schema")
            .fetch_one(&mut *conn)
            .await;
    match found {
        Ok(v) if i64::from(v) == known => Ok(true),
        Ok(v) if i64::from(v) > known => Err(StoreError::SchemaTooNew {
            found: v.into(),
            known,
        }
        .into()),
        // Older, or no schema yet (undefined table), or an empty table.
        Ok(_) => Ok(false),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => Ok(false),
        Err(sqlx::Error::RowNotFound) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Applies pending migrations (under an advisory lock, in one
/// transaction).
async fn migrate(conn: &mut PgConnection) -> Result<(), Failure> {
    let known = MIGRATIONS.len() as i64;
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(SCHEMA_TABLE).execute(&mut *tx).await?;
    let found: i32 = sqlx::query_scalar("SELECT version FROM gatewise_calls_schema")
        .fetch_one(&mut *tx)
        .await?;
    let found = i64::from(found);
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known }.into());
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        sqlx::raw_sql(*sql).execute(&mut *tx).await?;
        sqlx::query("UPDATE gatewise_calls_schema SET version = $1")
            .bind(i32::try_from(i + 1).unwrap_or(i32::MAX))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn uint(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn encode(e: sqlx::error::BoxDynError) -> Failure {
    Failure::Sql(sqlx::Error::Encode(e))
}

/// A statement built with numbered parameters.
struct Sql {
    text: String,
    args: PgArguments,
}

impl Sql {
    fn new(text: impl Into<String>) -> Self {
        Sql {
            text: text.into(),
            args: PgArguments::default(),
        }
    }

    /// Adds a parameter; returns its placeholder (`$n`).
    fn bind<'q, T>(&mut self, v: T) -> Result<String, Failure>
    where
        T: sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + 'q,
    {
        self.args.add(v).map_err(encode)?;
        Ok(format!("${}", self.args.len()))
    }

    /// Appends `cond` with `?` replaced by the placeholder of `v`.
    fn and<'q, T>(&mut self, cond: &str, v: T) -> Result<(), Failure>
    where
        T: sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + 'q,
    {
        let p = self.bind(v)?;
        self.text.push_str(" AND ");
        self.text.push_str(&cond.replace('?', &p));
        Ok(())
    }

    fn query(self) -> sqlx::query::Query<'static, sqlx::Postgres, PgArguments> {
        sqlx::query_with(AssertSqlSafe(self.text), self.args)
    }
}

async fn insert(conn: &mut PgConnection, batch: &[KeyedRecord]) -> Result<usize, Failure> {
    let n = batch.len();
    let mut writer = Vec::with_capacity(n);
    let mut seq = Vec::with_capacity(n);
    let mut v = Vec::with_capacity(n);
    let mut start_ms = Vec::with_capacity(n);
    let mut request_id = Vec::with_capacity(n);
    let mut trace_id = Vec::with_capacity(n);
    let mut route = Vec::with_capacity(n);
    let mut upstream = Vec::with_capacity(n);
    let mut upstream_addr = Vec::with_capacity(n);
    let mut method = Vec::with_capacity(n);
    let mut path = Vec::with_capacity(n);
    let mut status = Vec::with_capacity(n);
    let mut bytes_in = Vec::with_capacity(n);
    let mut bytes_out = Vec::with_capacity(n);
    let mut total_us = Vec::with_capacity(n);
    let mut auth_us = Vec::with_capacity(n);
    let mut first_byte_us = Vec::with_capacity(n);
    let mut upstream_total_us = Vec::with_capacity(n);
    let mut client_ip = Vec::with_capacity(n);
    let mut issuer = Vec::with_capacity(n);
    let mut kid = Vec::with_capacity(n);
    let mut client_id = Vec::with_capacity(n);
    let mut sub = Vec::with_capacity(n);
    let mut scopes = Vec::with_capacity(n);
    let mut fingerprint = Vec::with_capacity(n);
    let mut reason = Vec::with_capacity(n);
    let mut detail = Vec::with_capacity(n);
    let (mut finding_writer, mut finding_seq, mut finding_rule) =
        (Vec::new(), Vec::new(), Vec::new());
    for KeyedRecord { key, record: r } in batch {
        for rule in finding_rules(r) {
            finding_writer.push(key.writer);
            finding_seq.push(key.seq);
            finding_rule.push(rule);
        }
        writer.push(key.writer);
        seq.push(key.seq);
        v.push(i16::from(r.v));
        start_ms.push(int(r.start_ms));
        request_id.push(r.request_id.as_str());
        trace_id.push(r.trace_id.as_deref());
        route.push(r.route.as_deref());
        upstream.push(r.upstream.as_deref());
        upstream_addr.push(r.upstream_addr.as_deref());
        method.push(r.method.as_str());
        path.push(r.path.as_str());
        status.push(i32::from(r.status));
        bytes_in.push(int(r.bytes_in));
        bytes_out.push(int(r.bytes_out));
        total_us.push(int(r.total_us));
        auth_us.push(r.auth_us.map(int));
        first_byte_us.push(r.upstream_first_byte_us.map(int));
        upstream_total_us.push(r.upstream_total_us.map(int));
        client_ip.push(r.client_ip.map(|ip| ip.to_string()));
        issuer.push(r.issuer.as_deref());
        kid.push(r.kid.as_deref());
        client_id.push(r.client_id.as_deref());
        sub.push(r.sub.as_deref());
        scopes.push((!r.scopes.is_empty()).then(|| r.scopes.join(" ")));
        fingerprint.push(r.token_fingerprint.as_deref());
        reason.push(r.reason.as_deref());
        detail.push(
            serde_json::to_string(&DetailRef {
                trace: &r.trace,
                findings: &r.findings,
                request_headers: &r.request_headers,
                response_headers: &r.response_headers,
                span_id: r.span_id.as_deref(),
                parent_span_id: r.parent_span_id.as_deref(),
                sampled: r.sampled,
            })
            .map_err(|e| Failure::Store(StoreError::Backend(Box::new(e))))?,
        );
    }
    let inserted: i64 = sqlx::query_scalar(INSERT)
        .bind(writer)
        .bind(seq)
        .bind(v)
        .bind(start_ms)
        .bind(request_id)
        .bind(trace_id)
        .bind(route)
        .bind(upstream)
        .bind(upstream_addr)
        .bind(method)
        .bind(path)
        .bind(status)
        .bind(bytes_in)
        .bind(bytes_out)
        .bind(total_us)
        .bind(auth_us)
        .bind(first_byte_us)
        .bind(upstream_total_us)
        .bind(client_ip)
        .bind(issuer)
        .bind(kid)
        .bind(client_id)
        .bind(sub)
        .bind(scopes)
        .bind(fingerprint)
        .bind(reason)
        .bind(detail)
        .bind(finding_writer)
        .bind(finding_seq)
        .bind(finding_rule)
        .fetch_one(&mut *conn)
        .await?;
    Ok(usize::try_from(inserted).unwrap_or(0))
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

fn read_row(row: &PgRow) -> Result<StoredCall, Failure> {
    let id: i64 = row.try_get(0)?;
    let detail: String = row.try_get(27)?;
    let detail: Detail = serde_json::from_str(&detail).map_err(|e| {
        Failure::Store(StoreError::Corrupt {
            id,
            reason: e.to_string(),
        })
    })?;
    let scopes: Option<String> = row.try_get(24)?;
    let client_ip: Option<String> = row.try_get(19)?;
    let record = CallRecord {
        v: u8::try_from(row.try_get::<i16, _>(3)?).unwrap_or(0),
        start_ms: uint(row.try_get(4)?),
        request_id: row.try_get(5)?,
        trace_id: row.try_get(6)?,
        span_id: detail.span_id,
        parent_span_id: detail.parent_span_id,
        sampled: detail.sampled,
        route: row.try_get(7)?,
        upstream: row.try_get(8)?,
        upstream_addr: row.try_get(9)?,
        method: row.try_get(10)?,
        path: row.try_get(11)?,
        status: u16::try_from(row.try_get::<i32, _>(12)?).unwrap_or(0),
        bytes_in: uint(row.try_get(13)?),
        bytes_out: uint(row.try_get(14)?),
        total_us: uint(row.try_get(15)?),
        auth_us: row.try_get::<Option<i64>, _>(16)?.map(uint),
        upstream_first_byte_us: row.try_get::<Option<i64>, _>(17)?.map(uint),
        upstream_total_us: row.try_get::<Option<i64>, _>(18)?.map(uint),
        client_ip: client_ip.and_then(|s| s.parse().ok()),
        issuer: row.try_get(20)?,
        kid: row.try_get(21)?,
        client_id: row.try_get(22)?,
        sub: row.try_get(23)?,
        scopes: scopes
            .map(|s| s.split(' ').map(str::to_owned).collect())
            .unwrap_or_default(),
        token_fingerprint: row.try_get(25)?,
        reason: row.try_get(26)?,
        trace: detail.trace,
        findings: detail.findings,
        request_headers: detail.request_headers,
        response_headers: detail.response_headers,
    };
    Ok(StoredCall {
        id,
        key: RecordKey {
            writer: row.try_get(1)?,
            seq: row.try_get(2)?,
        },
        record,
    })
}

async fn query(conn: &mut PgConnection, q: &CallQuery) -> Result<CallPage, Failure> {
    // With a finding, the walk starts in `gatewise_call_findings`: its
    // primary key gives the calls of one rule newest first, and the time
    // range and the cursor apply to it; each call is then fetched by its
    // id. Without one, `gatewise_calls` alone.
    let (mut sql, time, id) = match &q.finding {
        Some(rule) => {
            let mut sql = Sql::new(String::new());
            let p = sql.bind(rule.clone())?;
            sql.text = format!(
                "SELECT {COLUMNS} FROM gatewise_call_findings AS f \
                 JOIN gatewise_calls AS c ON c.id = f.call_id WHERE f.rule = {p}"
            );
            (sql, "f.start_ms", "f.call_id")
        }
        None => (
            Sql::new(format!(
                "SELECT {COLUMNS} FROM gatewise_calls AS c WHERE true"
            )),
            "c.start_ms",
            "c.id",
        ),
    };
    if let Some(v) = q.from_ms {
        sql.and(&format!("{time} >= ?"), int(v))?;
    }
    if let Some(v) = q.until_ms {
        sql.and(&format!("{time} < ?"), int(v))?;
    }
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
            sql.and(&format!("c.{col} = ?"), v.clone())?;
        }
    }
    match (q.status_min, q.status_max) {
        (Some(lo), Some(hi)) if lo == hi => sql.and("c.status = ?", i32::from(lo))?,
        (lo, hi) => {
            if let Some(v) = lo {
                sql.and("c.status >= ?", i32::from(v))?;
            }
            if let Some(v) = hi {
                sql.and("c.status <= ?", i32::from(v))?;
            }
        }
    }
    if let Some(c) = q.after {
        let ms = sql.bind(int(c.start_ms))?;
        let after = sql.bind(c.id)?;
        sql.text
            .push_str(&format!(" AND ({time}, {id}) < ({ms}, {after})"));
    }
    let limit = q.effective_limit();
    sql.text.push_str(&format!(
        " ORDER BY {time} DESC, {id} DESC LIMIT {}",
        limit + 1
    ));
    let rows = sql.query().fetch_all(&mut *conn).await?;
    let mut calls = rows.iter().map(read_row).collect::<Result<Vec<_>, _>>()?;
    let more = calls.len() > limit as usize;
    calls.truncate(limit as usize);
    let next = if more {
        calls.last().map(StoredCall::cursor)
    } else {
        None
    };
    Ok(CallPage { calls, next })
}

async fn get(conn: &mut PgConnection, request_id: &str) -> Result<Option<StoredCall>, Failure> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM gatewise_calls AS c WHERE c.request_id = $1 \
         ORDER BY c.start_ms DESC, c.id DESC LIMIT 1"
    )))
    .bind(request_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(read_row).transpose()
}

/// The range (and route) condition of both statistics queries, with its
/// parameters: `$1` from, `$2` until, `$3` bucket width, `$4` route.
fn stats_sql(q: &StatsQuery, select: &str, rest: &str) -> Result<Sql, Failure> {
    let mut sql = Sql::new(String::new());
    let from = sql.bind(int(q.from_ms))?;
    let until = sql.bind(int(q.until_ms))?;
    let width = sql.bind(int(q.bucket_ms.max(1)))?;
    let route = match &q.route {
        Some(r) => format!(" AND route = {}", sql.bind(r.clone())?),
        None => String::new(),
    };
    sql.text = format!(
        "SELECT start_ms / {width} * {width} AS b, {select} FROM gatewise_calls \
         WHERE start_ms >= {from} AND start_ms < {until}{route} {rest}"
    );
    Ok(sql)
}

async fn top_error_clients(
    conn: &mut PgConnection,
    q: &StatsQuery,
    limit: usize,
) -> Result<Vec<(String, u64)>, Failure> {
    let mut sql = Sql::new(String::new());
    let from = sql.bind(int(q.from_ms))?;
    let until = sql.bind(int(q.until_ms))?;
    let max = sql.bind(i64::try_from(limit).unwrap_or(i64::MAX))?;
    let route = match &q.route {
        Some(r) => format!(" AND route = {}", sql.bind(r.clone())?),
        None => String::new(),
    };
    sql.text = format!(
        "SELECT client_id, count(*) AS n FROM gatewise_calls \
         WHERE start_ms >= {from} AND start_ms < {until} AND status >= 400 \
         AND client_id IS NOT NULL{route} \
         GROUP BY client_id ORDER BY n DESC, client_id LIMIT {max}"
    );
    let rows = sql.query().fetch_all(&mut *conn).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        out.push((row.try_get(0)?, uint(row.try_get(1)?)));
    }
    Ok(out)
}

async fn stats(conn: &mut PgConnection, q: &StatsQuery) -> Result<Vec<Bucket>, Failure> {
    // Nearest rank is `percentile_disc`: the first value whose cumulative
    // share reaches the fraction.
    let rows = stats_sql(
        q,
        "count(*), count(*) FILTER (WHERE status >= 400), \
         count(*) FILTER (WHERE status >= 500), \
         percentile_disc(ARRAY[0.5, 0.95, 0.99]::float8[]) WITHIN GROUP (ORDER BY total_us)",
        "GROUP BY b ORDER BY b",
    )?
    .query()
    .fetch_all(&mut *conn)
    .await?;
    let mut buckets = Vec::with_capacity(rows.len());
    for row in &rows {
        let pct: Vec<i64> = row.try_get(4)?;
        let at = |i: usize| pct.get(i).copied().map(uint).unwrap_or(0);
        buckets.push(Bucket {
            start_ms: uint(row.try_get(0)?),
            calls: uint(row.try_get(1)?),
            errors: uint(row.try_get(2)?),
            server_errors: uint(row.try_get(3)?),
            p50_us: at(0),
            p95_us: at(1),
            p99_us: at(2),
            top_reasons: Vec::new(),
        });
    }
    if q.top_reasons > 0 && !buckets.is_empty() {
        let rows = stats_sql(
            q,
            "reason, count(*)",
            "AND reason IS NOT NULL GROUP BY b, reason",
        )?
        .query()
        .fetch_all(&mut *conn)
        .await?;
        let mut per: std::collections::HashMap<u64, Vec<(String, u64)>> = Default::default();
        for row in &rows {
            per.entry(uint(row.try_get(0)?))
                .or_default()
                .push((row.try_get(1)?, uint(row.try_get(2)?)));
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

async fn count(conn: &mut PgConnection) -> Result<u64, Failure> {
    let n: i64 = sqlx::query_scalar("SELECT row_count FROM gatewise_calls_meta")
        .fetch_one(&mut *conn)
        .await?;
    Ok(uint(n))
}

async fn used_bytes(conn: &mut PgConnection) -> Result<u64, Failure> {
    let (total, rows, peak): (i64, i64, i64) = sqlx::query_as(
        "SELECT pg_total_relation_size('gatewise_calls'::regclass), row_count, peak_rows \
         FROM gatewise_calls_meta",
    )
    .fetch_one(&mut *conn)
    .await?;
    let total = u128::from(uint(total));
    let used = if peak > 0 {
        total * u128::from(uint(rows.min(peak))) / u128::from(uint(peak))
    } else {
        total
    };
    Ok(u64::try_from(used).unwrap_or(u64::MAX))
}

impl PostgresCallLog {
    /// Deletes up to `n` of the oldest calls that started before
    /// `before_ms`, one chunk per statement. Returns how many went.
    fn delete_oldest(&mut self, before_ms: u64, mut n: u64) -> Result<u64, StoreError> {
        let timeout = self.options.maintenance_timeout;
        let mut deleted = 0;
        while n > 0 {
            let chunk = n.min(DELETE_CHUNK);
            let gone = self.with_deadline("deleting old calls", timeout, async |c| {
                let gone: i64 = sqlx::query_scalar(DELETE_OLDEST)
                    .bind(int(chunk))
                    .bind(int(before_ms))
                    .fetch_one(&mut *c)
                    .await?;
                Ok(uint(gone))
            })?;
            deleted += gone;
            if gone < chunk {
                break;
            }
            n -= gone;
        }
        Ok(deleted)
    }
}

impl PostgresCallLog {
    /// `VACUUM (ANALYZE)` of the calls, so the space of deleted rows is
    /// reused now rather than when autovacuum gets to it. Not fatal (the
    /// role may not own the table): false after logging why.
    fn vacuum(&mut self) -> bool {
        let timeout = self.options.maintenance_timeout;
        match self.with_deadline("vacuuming", timeout, async |c| {
            sqlx::raw_sql("VACUUM (ANALYZE) gatewise_calls")
                .execute(&mut *c)
                .await?;
            Ok(())
        }) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("call-log retention: {e}");
                false
            }
        }
    }
}

impl CallLog for PostgresCallLog {
    fn append(&mut self, batch: &[KeyedRecord]) -> Result<usize, StoreError> {
        if batch.is_empty() {
            return Ok(0);
        }
        self.with("appending calls", async |c| insert(c, batch).await)
    }

    fn query(&mut self, q: &CallQuery) -> Result<CallPage, StoreError> {
        self.with("querying calls", async |c| query(c, q).await)
    }

    fn get(&mut self, request_id: &str) -> Result<Option<StoredCall>, StoreError> {
        self.with("reading a call", async |c| get(c, request_id).await)
    }

    fn stats(&mut self, q: &StatsQuery) -> Result<Vec<Bucket>, StoreError> {
        self.with("computing statistics", async |c| stats(c, q).await)
    }

    fn top_error_clients(
        &mut self,
        q: &StatsQuery,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        self.with("ranking clients by errors", async |c| {
            top_error_clients(c, q, limit).await
        })
    }

    fn retain(&mut self, policy: &Retention, now_ms: u64) -> Result<Retained, StoreError> {
        let mut out = Retained::default();
        if policy.is_unlimited() {
            return Ok(out);
        }
        if let Some(age) = policy.max_age_ms {
            out.by_age = self.delete_oldest(now_ms.saturating_sub(age), u64::MAX)?;
        }
        if let Some(max) = policy.max_rows {
            let rows = self.count()?;
            if rows > max {
                out.by_rows = self.delete_oldest(u64::MAX, rows - max)?;
            }
        }
        if let Some(max) = policy.max_bytes {
            // Rows are of similar size: delete the share of rows by which
            // the space in use exceeds the limit (at least 2%), vacuum so
            // the freed space is reused (and the free-space and visibility
            // maps, which count, exist), measure again.
            for _ in 0..64 {
                let used = self.used_bytes()?;
                let rows = self.count()?;
                if used <= max || rows == 0 {
                    break;
                }
                let share = (u128::from(used - max) * u128::from(rows)).div_ceil(u128::from(used));
                let n = u64::try_from(share).unwrap_or(rows).max(rows / 50).max(1);
                let gone = self.delete_oldest(u64::MAX, n)?;
                out.by_size += gone;
                if gone == 0 || !self.vacuum() {
                    break;
                }
            }
        }
        Ok(out)
    }

    fn count(&mut self) -> Result<u64, StoreError> {
        self.with("counting calls", async |c| count(c).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://gw:s3cret@127.0.0.1:5432/calls"),
            "postgres://gw:***@127.0.0.1:5432/calls"
        );
        assert_eq!(
            redact_url("postgres://gw:p@ss@host/db?x=1"),
            "postgres://gw:***@host/db?x=1"
        );
        assert_eq!(redact_url("postgres://gw@host/db"), "postgres://gw@host/db");
        assert_eq!(redact_url("postgres://host/db"), "postgres://host/db");
        assert_eq!(redact_url("nonsense"), "nonsense");
    }

    #[test]
    fn bad_urls_are_refused_without_the_password() {
        for url in [
            "mysql://gw:hunter2@127.0.0.1/calls",
            "postgres://gw:hunter2@127.0.0.1:notaport/calls",
            "postgres://gw:hunter2@127.0.0.1:5432/calls?sslmode=sometimes",
        ] {
            let e = PostgresCallLog::open(url).unwrap_err();
            assert!(matches!(e, StoreError::BadUrl { .. }), "{e:?}");
            let text = format!("{e} {e:?}");
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.contains("gw:***@127.0.0.1"), "{text}");
        }
    }

    #[test]
    fn an_unreachable_server_is_named_without_the_password() {
        // A port nobody listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("postgres://gw:hunter2@127.0.0.1:{port}/calls");
        let e = PostgresCallLog::open(&url).unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            text.contains(&format!("gw@127.0.0.1:{port}/calls")),
            "{text}"
        );
        assert!(matches!(e, StoreError::Postgres { .. }), "{e:?}");
    }
}
