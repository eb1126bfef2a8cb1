//! Wiring of the call log: the gateway's records go to the store's writer
//! (SQLite by default), which batches, spools and enforces retention.

use anyhow::Context as _;
use gatewise_config::model::CallLogConfig;
use gatewise_core::calllog::CallRecord;
use gatewise_gateway::calls::{CallLogging, CallSink};
use gatewise_store::{Retention, SqliteCallLog, Writer, WriterConfig, WriterHandle};
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

/// Opens (creating when missing) the SQLite file and the spool, replays
/// whatever an earlier run left in the spool, and starts the writer.
pub(crate) fn start(config: &CallLogConfig) -> anyhow::Result<CallLog> {
    for dir in [config.path.parent(), Some(config.spool_dir.as_path())]
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
    let store = SqliteCallLog::open(&config.path).with_context(|| {
        format!(
            "call_log: cannot open the SQLite file {}",
            config.path.display()
        )
    })?;
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
