//! The call log's writer (queue, written, spooled, replayed, dropped,
//! backlog, spool size) and the OTLP span exporter (exported, dropped,
//! failed, queue) as Prometheus metric families, built at scrape time from
//! their counters.

use prometheus_client::encoding::text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Writes the writer's families (without `# EOF`).
pub fn encode_writer(c: &gatewise_store::Counters, out: &mut String) -> std::fmt::Result {
    let mut r = Registry::default();
    for (name, help, v) in [
        (
            "gatewise_calllog_queued",
            "Call records handed to the writer",
            c.queued,
        ),
        (
            "gatewise_calllog_written",
            "Call records stored in the database",
            c.written,
        ),
        (
            "gatewise_calllog_spooled",
            "Call records written to the spool (the database was away or slow, or the CPUs were busy)",
            c.spooled,
        ),
        (
            "gatewise_calllog_replayed",
            "Spooled call records stored after the database came back",
            c.replayed,
        ),
        (
            "gatewise_calllog_dropped",
            "Call records lost (the in-memory queue or the spool was full, or sent after shutdown)",
            c.dropped,
        ),
        (
            "gatewise_calllog_store_errors",
            "Failed writes to the database",
            c.store_errors,
        ),
    ] {
        let counter = Counter::<u64>::default();
        counter.inc_by(v);
        r.register(name, help, counter);
    }
    for (name, help, v) in [
        (
            "gatewise_calllog_backlog",
            "Call records waiting in memory",
            c.backlog,
        ),
        (
            "gatewise_calllog_spool_bytes",
            "Bytes in the spool",
            c.spool_bytes,
        ),
    ] {
        let g = Gauge::<i64>::default();
        g.set(i64::try_from(v).unwrap_or(i64::MAX));
        r.register(name, help, g);
    }
    text::encode_registry(out, &r)
}

/// Writes the span exporter's families (without `# EOF`).
pub fn encode_span_export(c: &crate::SpanExportCounters, out: &mut String) -> std::fmt::Result {
    let mut r = Registry::default();
    for (name, help, v) in [
        (
            "gatewise_otlp_spans_exported",
            "Spans the OTLP collector accepted",
            c.exported,
        ),
        (
            "gatewise_otlp_spans_dropped",
            "Sampled calls whose spans were lost because the export queue was full",
            c.dropped,
        ),
        (
            "gatewise_otlp_spans_failed",
            "Spans lost to OTLP exports that failed or timed out",
            c.failed,
        ),
    ] {
        let counter = Counter::<u64>::default();
        counter.inc_by(v);
        r.register(name, help, counter);
    }
    let queue = Gauge::<i64>::default();
    queue.set(i64::try_from(c.queued).unwrap_or(i64::MAX));
    r.register(
        "gatewise_otlp_queue",
        "Calls waiting in the OTLP export queue",
        queue,
    );
    text::encode_registry(out, &r)
}
