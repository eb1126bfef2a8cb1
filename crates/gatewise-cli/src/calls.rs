//! Wiring of the call log: the gateway's records go to the store's writer
//! (SQLite by default), which batches, spools and enforces retention, and,
//! when `[telemetry.otlp]` is configured (cargo feature `otel`), to the
//! OTLP span exporter too: [`tee`] hands each finished record to both, and
//! neither blocks the request path.

use anyhow::Context as _;
use gatewise_config::model::{CallLogConfig, PostgresUrl};
use gatewise_core::calllog::CallRecord;
use gatewise_gateway::calls::{CallLogging, CallSink};
use gatewise_store::{
    CallLog as CallLogStore, Defer, PostgresCallLog, Retention, SqliteCallLog, SqliteOptions,
    Writer, WriterConfig, WriterHandle,
};
use std::sync::Arc;

/// The gateway's end of the writer: `send` never blocks (it queues, spools
/// or counts a drop).
struct StoreSink(gatewise_store::RecordSender);

impl CallSink for StoreSink {
    fn record(&self, record: &CallRecord) {
        self.0.send(record);
    }
}

/// A running call log.
pub(crate) struct CallLog {
    /// What the gateway records through (the store only; see [`tee`]).
    pub(crate) logging: CallLogging,
    /// The writer's sender, for a [`tee`].
    sender: gatewise_store::RecordSender,
    /// `call_log.keep_query`.
    keep_query: bool,
    /// The writer thread (flush at shutdown).
    pub(crate) handle: WriterHandle,
    /// Reads the writer's counters (the admin API).
    pub(crate) counters: gatewise_admin::WriterCounters,
}

/// The PostgreSQL URL of the call log, when it goes there (secrets
/// resolved from the environment or a file).
fn postgres_url(config: &CallLogConfig) -> anyhow::Result<Option<String>> {
    Ok(match &config.postgres {
        None => None,
        Some(PostgresUrl::Url(u)) => Some(u.clone()),
        Some(PostgresUrl::Secret(r)) => Some(
            gatewise_gateway::resolve_secret(r, &crate::serve::ProcessEnv)
                .map_err(|e| anyhow::anyhow!("call_log: the PostgreSQL URL: {e}"))?,
        ),
    })
}

/// SQLite page cache of the writer's connection, KiB. It appends (the
/// pages it touches are the tables' and indexes' right edges and what the
/// OS caches anyway); the admin API's reader keeps the default, larger
/// cache for its queries. Keeps the gateway's resident memory down.
const WRITER_CACHE_KIB: u32 = 2 * 1024;

/// A store connection: PostgreSQL when configured, else the SQLite file
/// (with this page cache, KiB). Blocking (PostgreSQL connects and checks
/// its schema): call it from a blocking context.
fn open_store(
    config: &CallLogConfig,
    url: Option<&str>,
    cache_kib: u32,
) -> anyhow::Result<Box<dyn CallLogStore>> {
    let options = SqliteOptions {
        cache_kib,
        ..SqliteOptions::default()
    };
    Ok(match url {
        Some(url) => Box::new(
            PostgresCallLog::open(url).context("call_log: cannot open the PostgreSQL call log")?,
        ),
        None => Box::new(
            SqliteCallLog::open_with(&config.path, options).with_context(|| {
                format!(
                    "call_log: cannot open the SQLite file {}",
                    config.path.display()
                )
            })?,
        ),
    })
}

/// A second connection to the call log, for the admin API's reads.
pub(crate) async fn reader(config: &CallLogConfig) -> anyhow::Result<Box<dyn CallLogStore>> {
    let url = postgres_url(config)?;
    let config = config.clone();
    let cache_kib = SqliteOptions::default().cache_kib;
    tokio::task::spawn_blocking(move || open_store(&config, url.as_deref(), cache_kib))
        .await
        .context("call_log: opening the reader failed")?
}

/// The writer's settings from `[call_log]`.
fn writer_config(config: &CallLogConfig) -> WriterConfig {
    let mut wc = WriterConfig::new(&config.spool_dir, Arc::new(crate::clock::SystemClock));
    wc.queue_capacity = config.queue;
    wc.queue_max_bytes = usize::try_from(config.queue_max_bytes).unwrap_or(usize::MAX);
    wc.batch_size = config.batch_size;
    wc.batch_wait = config.batch_wait;
    wc.spool_max_bytes = config.spool_max_bytes;
    wc.background_indexer = config.background_indexer;
    wc.defer = config.index_when_idle.then(|| Defer {
        min_idle: config.index_min_idle,
        ..Defer::new()
    });
    wc.retention = Retention {
        max_age_ms: Some(u64::try_from(config.max_age.as_millis()).unwrap_or(u64::MAX)),
        max_rows: None,
        max_bytes: Some(config.max_bytes),
    };
    wc
}

/// Opens (creating when missing) the store and the spool, replays
/// whatever an earlier run left in the spool, and starts the writer.
pub(crate) async fn start(config: &CallLogConfig) -> anyhow::Result<CallLog> {
    let url = postgres_url(config)?;
    let sqlite_dir = if url.is_none() {
        config.path.parent()
    } else {
        None
    };
    for dir in [sqlite_dir, Some(config.spool_dir.as_path())]
        .into_iter()
        .flatten()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "call_log: cannot create the directory {} (set call_log.path and call_log.spool_dir, or call_log.enabled = false)",
                dir.display()
            )
        })?;
    }
    let store = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || open_store(&config, url.as_deref(), WRITER_CACHE_KIB))
            .await
            .context("call_log: opening the store failed")??
    };
    let wc = writer_config(config);
    let (sender, handle) = Writer::start(store, wc).with_context(|| {
        format!(
            "call_log: cannot start the writer (spool {})",
            config.spool_dir.display()
        )
    })?;
    let reader = sender.clone();
    Ok(CallLog {
        logging: CallLogging::new(Arc::new(StoreSink(sender.clone())), config.keep_query),
        sender,
        keep_query: config.keep_query,
        handle,
        counters: Arc::new(move || reader.counters()),
    })
}

impl CallLog {
    /// Flushes every record sent so far (to the database, or the spool if
    /// it is away) and stops the writer; logs the final counters.
    pub(crate) async fn shutdown(self) {
        let handle = self.handle;
        match tokio::task::spawn_blocking(move || handle.shutdown()).await {
            Ok(Ok(c)) => tracing::info!(
                written = c.written,
                spooled = c.spooled,
                replayed = c.replayed,
                dropped = c.dropped,
                "call log flushed"
            ),
            Ok(Err(e)) => tracing::error!("call log: the writer failed: {e}"),
            Err(e) => tracing::error!("call log: the writer's shutdown failed: {e}"),
        }
    }
}

/// The gateway's sink when records go to the store and to the span
/// exporter: the exporter's queue is offered the record first (a borrow: it
/// copies what spans need, or nothing when the call is not sampled), then
/// the record moves into the store's writer. Both are `try_send`s.
struct Tee {
    store: Option<gatewise_store::RecordSender>,
    spans: SpanQueue,
}

impl CallSink for Tee {
    fn record(&self, record: &CallRecord) {
        self.spans.offer(record);
        if let Some(store) = &self.store {
            store.send(record);
        }
    }
}

/// What the gateway records through: the call log, the span exporter, both
/// (a [`Tee`]) or neither (`None`: no record is built at all).
pub(crate) fn tee(store: Option<&CallLog>, spans: Option<&SpanExport>) -> Option<CallLogging> {
    let Some(spans) = spans else {
        return store.map(|s| s.logging.clone());
    };
    let sink = Tee {
        store: store.map(|s| s.sender.clone()),
        spans: spans.queue(),
    };
    let keep_query = store.is_some_and(|s| s.keep_query);
    Some(CallLogging::new(Arc::new(sink), keep_query).with_trace_sample_ratio(spans.sample_ratio()))
}

#[cfg(feature = "otel")]
pub(crate) use otel::SpanExport;
#[cfg(feature = "otel")]
use otel::SpanQueue;

/// The span exporter (`[telemetry.otlp]`), when this build has it.
#[cfg(feature = "otel")]
mod otel {
    use anyhow::Context as _;
    use gatewise_config::model::{OtlpConfig, OtlpHeaderValue};
    pub(crate) use gatewise_telemetry::SpanQueue;

    /// A running exporter.
    pub(crate) struct SpanExport {
        queue: SpanQueue,
        handle: gatewise_telemetry::ExportHandle,
        sample_ratio: f64,
    }

    impl SpanExport {
        /// Resolves the secret headers and starts the export thread.
        pub(crate) fn start(config: &OtlpConfig) -> anyhow::Result<SpanExport> {
            let mut settings = gatewise_telemetry::Settings::new(config.traces_url.clone());
            for (name, value) in &config.headers {
                let value = match value {
                    OtlpHeaderValue::Literal(v) => v.clone(),
                    OtlpHeaderValue::Secret(r) => {
                        gatewise_gateway::resolve_secret(r, &crate::serve::ProcessEnv).map_err(
                            |e| anyhow::anyhow!("telemetry.otlp.headers_env.{name}: {e}"),
                        )?
                    }
                };
                settings.headers.push((name.clone(), value));
            }
            settings.timeout = config.timeout;
            settings.service_name.clone_from(&config.service_name);
            settings.queue = config.queue;
            let (queue, handle) = gatewise_telemetry::start(settings)
                .context("telemetry.otlp: cannot start the span exporter")?;
            Ok(SpanExport {
                queue,
                handle,
                sample_ratio: config.sample_ratio,
            })
        }

        pub(crate) fn queue(&self) -> SpanQueue {
            self.queue.clone()
        }

        pub(crate) fn sample_ratio(&self) -> f64 {
            self.sample_ratio
        }

        /// Reads the exporter's counters (the admin API's `span_export`
        /// and `gatewise_otlp_*` metrics).
        pub(crate) fn counters(&self) -> gatewise_admin::SpanExportReader {
            let queue = self.queue.clone();
            std::sync::Arc::new(move || {
                let c = queue.counters();
                gatewise_admin::SpanExportCounters {
                    queued: c.queued,
                    exported: c.exported,
                    dropped: c.dropped,
                    failed: c.failed,
                }
            })
        }

        /// Sends what waits (bounded by the export timeout) and logs the
        /// final counters.
        pub(crate) async fn shutdown(self) {
            let handle = self.handle;
            match tokio::task::spawn_blocking(move || handle.shutdown()).await {
                Ok(c) => tracing::info!(
                    exported = c.exported,
                    dropped = c.dropped,
                    failed = c.failed,
                    "OTLP span export stopped"
                ),
                Err(e) => tracing::error!("OTLP span export: the shutdown failed: {e}"),
            }
        }
    }
}

/// This build has no span exporter (cargo feature `otel` off): the type
/// has no values.
#[cfg(not(feature = "otel"))]
pub(crate) enum SpanExport {}

#[cfg(not(feature = "otel"))]
impl SpanExport {
    fn queue(&self) -> SpanQueue {
        match *self {}
    }

    fn sample_ratio(&self) -> f64 {
        match *self {}
    }

    pub(crate) fn counters(&self) -> gatewise_admin::SpanExportReader {
        match *self {}
    }

    pub(crate) async fn shutdown(self) {
        match self {}
    }
}

#[cfg(not(feature = "otel"))]
struct SpanQueue;

#[cfg(not(feature = "otel"))]
impl SpanQueue {
    fn offer(&self, _: &CallRecord) {}
}

/// Starts the span exporter when `[telemetry.otlp]` is configured; refuses
/// the configuration when this build was made without it.
pub(crate) fn start_spans(
    config: &gatewise_config::model::TelemetryConfig,
) -> anyhow::Result<Option<SpanExport>> {
    let Some(otlp) = &config.otlp else {
        return Ok(None);
    };
    #[cfg(feature = "otel")]
    {
        let export = SpanExport::start(otlp)?;
        tracing::info!(endpoint = %otlp.traces_url, "exporting spans over OTLP");
        Ok(Some(export))
    }
    #[cfg(not(feature = "otel"))]
    {
        let _ = otlp;
        anyhow::bail!(
            "telemetry.otlp: this gatewise was built without OpenTelemetry export (cargo feature \
             `otel`); remove [telemetry.otlp] from the configuration, or build with \
             `--features otel`"
        )
    }
}

#[cfg(test)]
mod tests {
    use gatewise_config::model::{OtlpConfig, TelemetryConfig};

    fn otlp() -> TelemetryConfig {
        TelemetryConfig {
            otlp: Some(OtlpConfig {
                traces_url: "http://127.0.0.1:9/v1/traces".into(),
                headers: Vec::new(),
                timeout: std::time::Duration::from_secs(1),
                service_name: "gatewise".into(),
                sample_ratio: 0.5,
                queue: 4,
            }),
        }
    }

    #[test]
    fn no_section_no_exporter() {
        assert!(
            super::start_spans(&TelemetryConfig::default())
                .unwrap()
                .is_none()
        );
    }

    /// A build without the exporter refuses the section, naming it.
    #[cfg(not(feature = "otel"))]
    #[test]
    fn a_build_without_otel_refuses_the_section() {
        let e = super::start_spans(&otlp()).err().unwrap().to_string();
        assert!(e.starts_with("telemetry.otlp: "), "{e}");
        assert!(e.contains("`otel`"), "{e}");
    }

    /// `[call_log]`'s writer settings reach the writer; `index_when_idle =
    /// false` means the indexer never waits.
    #[test]
    fn the_writer_gets_the_call_log_settings() {
        use gatewise_config::model::CallLogConfig;
        let default = super::writer_config(&CallLogConfig::default());
        assert_eq!(default.batch_size, 1000);
        assert_eq!(default.batch_wait, std::time::Duration::from_millis(100));
        assert_eq!(default.queue_max_bytes, 64 << 20);
        assert!(default.background_indexer);
        assert_eq!(default.defer.map(|d| d.min_idle), Some(0.25));

        let wc = super::writer_config(&CallLogConfig {
            queue: 10,
            queue_max_bytes: 2 << 20,
            batch_size: 7,
            batch_wait: std::time::Duration::from_millis(20),
            background_indexer: false,
            index_min_idle: 0.5,
            ..CallLogConfig::default()
        });
        assert_eq!(
            (wc.queue_capacity, wc.queue_max_bytes, wc.batch_size),
            (10, 2 << 20, 7)
        );
        assert_eq!(wc.batch_wait, std::time::Duration::from_millis(20));
        assert!(!wc.background_indexer);
        let defer = wc.defer.unwrap();
        assert_eq!(defer.min_idle, 0.5);
        assert_eq!(defer.max_spool_fraction, 0.5);

        let never = super::writer_config(&CallLogConfig {
            index_when_idle: false,
            ..CallLogConfig::default()
        });
        assert!(never.defer.is_none());
    }

    #[cfg(feature = "otel")]
    #[tokio::test]
    async fn the_tee_gives_the_exporter_its_sample_ratio() {
        let spans = super::start_spans(&otlp()).unwrap().unwrap();
        let logging = super::tee(None, Some(&spans)).unwrap();
        assert_eq!(logging.trace_sample_ratio(), 0.5);
        spans.shutdown().await;
    }
}
