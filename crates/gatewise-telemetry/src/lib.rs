//! OpenTelemetry trace export for gatewise.
//!
//! Spans are made from the gateway's finished call records, never on the
//! request path. The binary puts a [`SpanQueue`] beside the call log's
//! writer (a tee of the gateway's `CallSink`): [`SpanQueue::offer`] keeps
//! only sampled records, copies the few fields spans need and does one
//! `try_send` into a bounded channel; when the channel is full the record's
//! spans are dropped and counted. Nothing else happens on the request path:
//! no lock, no I/O, no wake-up of another thread.
//!
//! An export thread ([`start`]) wakes every `interval` (it never sleeps on
//! the channel, so a send never costs a wake-up), turns the waiting records
//! into spans ([`span::spans`]: a SERVER span per call and a CLIENT span per
//! upstream call) and sends them in batches with the OpenTelemetry SDK's
//! OTLP/HTTP exporter (protobuf, `opentelemetry-otlp` over reqwest) on a
//! runtime of its own. An export that fails or times out loses its batch
//! (counted, logged at most once a minute): the OTLP exporter retries
//! within its timeout (OTLP spec, "OTLP/HTTP Throttling" and "Failures"),
//! and spans are not worth a growing backlog.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use gatewise_core::calllog::{CallRecord, mask_headers};
use opentelemetry::InstrumentationScope;
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};

pub mod span;

/// How the exporter runs.
#[derive(Clone)]
pub struct Settings {
    /// The URL spans are POSTed to (`.../v1/traces`).
    pub traces_url: String,
    /// Headers sent with every export (values may be secrets: never
    /// logged, not shown by `Debug`).
    pub headers: Vec<(String, String)>,
    /// Deadline of one export request, retries included.
    pub timeout: Duration,
    /// The `service.name` resource attribute.
    pub service_name: String,
    /// Records waiting for export; past it new ones are dropped and counted.
    pub queue: usize,
    /// Most spans in one export request.
    pub max_batch: usize,
    /// How often the export thread wakes to send what waits.
    pub interval: Duration,
}

impl Settings {
    /// Settings with the defaults: 10 s timeout, service `gatewise`, a
    /// queue of 2048 records, batches of at most 512 spans, sent every
    /// second (the SDK's batch processor defaults: OpenTelemetry SDK spec,
    /// "Batching processor").
    pub fn new(traces_url: impl Into<String>) -> Self {
        Settings {
            traces_url: traces_url.into(),
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            service_name: "gatewise".to_owned(),
            queue: 2048,
            max_batch: 512,
            interval: Duration::from_secs(1),
        }
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Settings")
            .field("traces_url", &self.traces_url)
            .field("headers", &names)
            .field("timeout", &self.timeout)
            .field("service_name", &self.service_name)
            .field("queue", &self.queue)
            .field("max_batch", &self.max_batch)
            .field("interval", &self.interval)
            .finish()
    }
}

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter refused its configuration.
    #[error("the OTLP exporter cannot be built: {0}")]
    Build(String),
    /// The export thread or its runtime could not be started.
    #[error("the OTLP export thread cannot start: {0}")]
    Thread(#[from] std::io::Error),
}

/// What the exporter did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportCounters {
    /// Records waiting in the queue now.
    pub queued: u64,
    /// Spans the collector accepted.
    pub exported: u64,
    /// Sampled records dropped because the queue was full (their spans are
    /// lost).
    pub dropped: u64,
    /// Spans lost to exports that failed or timed out.
    pub failed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    exported: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

/// The request path's end: cheap to clone, never blocks.
#[derive(Clone)]
pub struct SpanQueue {
    tx: Sender<CallRecord>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for SpanQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanQueue")
            .field("counters", &self.counters())
            .finish_non_exhaustive()
    }
}

impl SpanQueue {
    /// Queues the spans of a finished call when it is sampled: one
    /// `try_send` of a slim copy of the record; when the queue is full the
    /// call's spans are dropped and counted.
    pub fn offer(&self, record: &CallRecord) {
        if record.sampled != Some(true) {
            return;
        }
        match self.tx.try_send(slim(record)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The counters so far.
    pub fn counters(&self) -> ExportCounters {
        snapshot(&self.counters, self.tx.len())
    }
}

fn snapshot(c: &Counters, queued: usize) -> ExportCounters {
    ExportCounters {
        queued: queued as u64,
        exported: c.exported.load(Ordering::Relaxed),
        dropped: c.dropped.load(Ordering::Relaxed),
        failed: c.failed.load(Ordering::Relaxed),
    }
}

/// What spans need of a record: no decision trace, no findings, and of the
/// headers only `Host` and `User-Agent` (already masked in the record; a
/// second masking pass is harmless).
fn slim(r: &CallRecord) -> CallRecord {
    let mut s = CallRecord::new(
        r.request_id.clone(),
        r.start_ms,
        r.method.clone(),
        r.path.clone(),
    );
    s.v = r.v;
    s.trace_id.clone_from(&r.trace_id);
    s.span_id.clone_from(&r.span_id);
    s.parent_span_id.clone_from(&r.parent_span_id);
    s.sampled = r.sampled;
    s.route.clone_from(&r.route);
    s.upstream.clone_from(&r.upstream);
    s.upstream_addr.clone_from(&r.upstream_addr);
    s.status = r.status;
    s.bytes_in = r.bytes_in;
    s.bytes_out = r.bytes_out;
    s.total_us = r.total_us;
    s.auth_us = r.auth_us;
    s.upstream_first_byte_us = r.upstream_first_byte_us;
    s.upstream_total_us = r.upstream_total_us;
    s.client_ip = r.client_ip;
    s.issuer.clone_from(&r.issuer);
    s.client_id.clone_from(&r.client_id);
    s.sub.clone_from(&r.sub);
    s.reason.clone_from(&r.reason);
    let host = r.request_headers.get("host");
    let ua = r.request_headers.get("user-agent");
    if host.is_some() || ua.is_some() {
        s.request_headers = mask_headers(
            [("host", host), ("user-agent", ua)]
                .into_iter()
                .filter_map(|(n, v)| Some((n, v?))),
        );
    }
    s
}

/// The running export thread.
#[derive(Debug)]
pub struct ExportHandle {
    stop: Sender<()>,
    thread: std::thread::JoinHandle<()>,
    counters: Arc<Counters>,
    queue: Receiver<CallRecord>,
}

impl ExportHandle {
    /// Sends what is queued (one last export, bounded by the timeout),
    /// stops the thread and returns the final counters.
    pub fn shutdown(self) -> ExportCounters {
        let _ = self.stop.send(());
        let _ = self.thread.join();
        snapshot(&self.counters, self.queue.len())
    }

    /// The counters so far.
    pub fn counters(&self) -> ExportCounters {
        snapshot(&self.counters, self.queue.len())
    }
}

/// Builds the OTLP/HTTP exporter and starts the export thread.
pub fn start(settings: Settings) -> Result<(SpanQueue, ExportHandle), TelemetryError> {
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(settings.traces_url.clone())
        .with_timeout(settings.timeout)
        .with_headers(settings.headers.iter().cloned().collect::<HashMap<_, _>>())
        .build()
        .map_err(|e| TelemetryError::Build(e.to_string()))?;
    // Only what is configured: no environment detectors (the binary reads
    // no environment behind the configuration's back).
    exporter.set_resource(
        &Resource::builder_empty()
            .with_service_name(settings.service_name.clone())
            .with_attribute(opentelemetry::KeyValue::new(
                "service.version",
                env!("CARGO_PKG_VERSION"),
            ))
            .build(),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (tx, rx) = crossbeam_channel::bounded(settings.queue.max(1));
    let (stop, stopped) = crossbeam_channel::bounded(1);
    let counters = Arc::new(Counters::default());
    let worker = Worker {
        exporter,
        runtime,
        rx: rx.clone(),
        stopped,
        counters: Arc::clone(&counters),
        scope: InstrumentationScope::builder("gatewise")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build(),
        settings,
    };
    let thread = std::thread::Builder::new()
        .name("gatewise-otlp".into())
        .spawn(move || worker.run())?;
    Ok((
        SpanQueue {
            tx,
            counters: Arc::clone(&counters),
        },
        ExportHandle {
            stop,
            thread,
            counters,
            queue: rx,
        },
    ))
}

struct Worker {
    exporter: opentelemetry_otlp::SpanExporter,
    runtime: tokio::runtime::Runtime,
    rx: Receiver<CallRecord>,
    stopped: Receiver<()>,
    counters: Arc<Counters>,
    scope: InstrumentationScope,
    settings: Settings,
}

impl Worker {
    fn run(self) {
        let mut last_warning: Option<Instant> = None;
        let mut reported = (0u64, 0u64);
        loop {
            // Sleeps on the stop channel only: senders never wake this thread.
            let stopping = !matches!(
                self.stopped.recv_timeout(self.settings.interval),
                Err(RecvTimeoutError::Timeout)
            );
            let mut batch: Vec<SpanData> = Vec::new();
            while let Ok(record) = self.rx.try_recv() {
                batch.extend(span::spans(&record, &self.scope));
                if batch.len() >= self.settings.max_batch {
                    self.export(std::mem::take(&mut batch));
                }
            }
            if !batch.is_empty() {
                self.export(batch);
            }
            let now = (
                self.counters.dropped.load(Ordering::Relaxed),
                self.counters.failed.load(Ordering::Relaxed),
            );
            if now != reported
                && last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(60))
            {
                tracing::warn!(
                    dropped = now.0,
                    failed = now.1,
                    endpoint = %self.settings.traces_url,
                    "OTLP export is losing spans (dropped: the queue was full; failed: the \
                     collector did not take them)"
                );
                last_warning = Some(Instant::now());
                reported = now;
            }
            if stopping {
                break;
            }
        }
        let _ = self.exporter.shutdown();
    }

    fn export(&self, batch: Vec<SpanData>) {
        let n = batch.len() as u64;
        // The exporter has its own deadline; this one also bounds a
        // connection attempt that hangs.
        let deadline = self.settings.timeout + Duration::from_secs(1);
        let result = self
            .runtime
            .block_on(async { tokio::time::timeout(deadline, self.exporter.export(batch)).await });
        match result {
            Ok(Ok(())) => {
                self.counters.exported.fetch_add(n, Ordering::Relaxed);
            }
            Ok(Err(e)) => {
                self.counters.failed.fetch_add(n, Ordering::Relaxed);
                tracing::debug!("OTLP export of {n} spans failed: {e}");
            }
            Err(_) => {
                self.counters.failed.fetch_add(n, Ordering::Relaxed);
                tracing::debug!("OTLP export of {n} spans timed out");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_never_show_header_values() {
        let mut s = Settings::new("http://127.0.0.1:4318/v1/traces");
        s.headers = vec![("authorization".into(), "Bearer hunter2".into())];
        let text = format!("{s:?}");
        assert!(text.contains("authorization"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn slim_keeps_what_spans_need_and_nothing_secret() {
        let mut r = CallRecord::new("r", 1, "GET", "/x");
        r.sampled = Some(true);
        r.request_headers = mask_headers([
            ("Host", "api.example"),
            ("Authorization", "Bearer hunter2"),
            ("User-Agent", "curl/8"),
        ]);
        r.token_fingerprint = Some("abcd1234".into());
        let s = slim(&r);
        assert_eq!(s.request_headers.get("host"), Some("api.example"));
        assert_eq!(s.request_headers.get("user-agent"), Some("curl/8"));
        assert_eq!(s.request_headers.get("authorization"), None);
        assert_eq!(s.token_fingerprint, None);
        assert_eq!(s.sampled, Some(true));
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_blocking() {
        // An exporter thread that never gets to run: a collector that is
        // not there and an interval longer than the test.
        let mut s = Settings::new("http://127.0.0.1:9/v1/traces");
        s.queue = 2;
        s.interval = Duration::from_secs(3600);
        s.timeout = Duration::from_millis(200);
        let (queue, handle) = start(s).unwrap();
        let mut r = CallRecord::new("r", 1, "GET", "/x");
        r.sampled = Some(true);
        let unsampled = CallRecord::new("u", 1, "GET", "/x");
        let t = Instant::now();
        for _ in 0..100 {
            queue.offer(&r);
            queue.offer(&unsampled);
        }
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "{:?}",
            t.elapsed()
        );
        let c = queue.counters();
        assert_eq!((c.queued, c.dropped), (2, 98), "{c:?}");
        // Shutdown sends what waits; the collector is not there.
        let end = handle.shutdown();
        assert_eq!(end.dropped, 98);
        assert_eq!(end.exported, 0);
    }
}
