//! The call log's writer as Prometheus metric families (queue, written,
//! spooled, replayed, dropped, backlog, spool size), built at scrape time
//! from its counters.

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
            "Call records written to the spool while the database was away or slow",
            c.spooled,
        ),
        (
            "gatewise_calllog_replayed",
            "Spooled call records stored after the database came back",
            c.replayed,
        ),
        (
            "gatewise_calllog_dropped",
            "Call records lost (the spool was full, or sent after shutdown)",
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
