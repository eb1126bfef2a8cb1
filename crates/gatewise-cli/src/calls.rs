//! Wiring of the call log: the gateway's records go to the store's writer
//! (SQLite by default), which batches, spools and enforces retention.

use anyhow::Context as _;
use gatewise_config::model::{CallLogConfig, PostgresUrl};
use gatewise_core::calllog::CallRecord;
use gatewise_gateway::calls::{CallLogging, CallSink};
use gatewise_store::{
    CallLog as CallLogStore, PostgresCallLog, Retention, SqliteCallLog, Writer, WriterConfig,
    WriterHandle,
};
use std::sync::Arc;

/// The gateway's end of the writer: `send` never blocks (it queues, spools
/// or counts a drop).
struct StoreSink(gatewise_store::RecordSender);

impl CallSink for StoreSink {
    fn record(&self, record: CallRecord) {
        self.0.send(record);
    }
}

/// A running call log.
pub(crate) struct CallLog {
    /// What the gateway records through.
    pub(crate) logging: CallLogging,
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

/// A store connection: PostgreSQL when configured, else the SQLite file.
/// Blocking (PostgreSQL connects and checks its schema): call it from a
/// blocking context.
fn open_store(config: &CallLogConfig, url: Option<&str>) -> anyhow::Result<Box<dyn CallLogStore>> {
    Ok(match url {
        Some(url) => Box::new(
            PostgresCallLog::open(url).context("call_log: cannot open the PostgreSQL call log")?,
        ),
        None => Box::new(SqliteCallLog::open(&config.path).with_context(|| {
            format!(
                "call_log: cannot open the SQLite file {}",
                config.path.display()
            )
        })?),
    })
}

/// A second connection to the call log, for the admin API's reads.
pub(crate) async fn reader(config: &CallLogConfig) -> anyhow::Result<Box<dyn CallLogStore>> {
    let url = postgres_url(config)?;
    let config = config.clone();
    tokio::task::spawn_blocking(move || open_store(&config, url.as_deref()))
        .await
        .context("call_log: opening the reader failed")?
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
        tokio::task::spawn_blocking(move || open_store(&config, url.as_deref()))
            .await
            .context("call_log: opening the store failed")??
    };
    let mut wc = WriterConfig::new(&config.spool_dir, Arc::new(crate::clock::SystemClock));
    wc.channel_capacity = config.queue;
    wc.overflow_capacity = config.queue;
    wc.spool_max_bytes = config.spool_max_bytes;
    wc.retention = Retention {
        max_age_ms: Some(u64::try_from(config.max_age.as_millis()).unwrap_or(u64::MAX)),
        max_rows: None,
        max_bytes: Some(config.max_bytes),
    };
    let (sender, handle) = Writer::start(store, wc).with_context(|| {
        format!(
            "call_log: cannot start the writer (spool {})",
            config.spool_dir.display()
        )
    })?;
    let reader = sender.clone();
    Ok(CallLog {
        logging: CallLogging::new(Arc::new(StoreSink(sender)), config.keep_query),
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
