//! The spool's size limit: past it records are dropped, counted, and said
//! loudly (`tracing::error!`, once a minute). Its own test binary, since it
//! installs the process-wide log subscriber to read what was logged.

mod common;

use std::io::Write;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};

use common::{Flaky, config, record, rows, wait_until};
use gatewise_store::{SqliteCallLog, Writer};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_spool_limit_drops_counts_and_logs_once() {
    let logs = Captured::default();
    let sink = logs.clone();
    tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .init();

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("calls.db");
    let (store, switches) = Flaky::new(SqliteCallLog::open(&db).unwrap());
    switches.down.store(true, SeqCst);
    let mut cfg = config(&dir.path().join("spool"));
    cfg.spool_max_bytes = 16 * 1024;
    let (tx, handle) = Writer::start(store, cfg).unwrap();
    for i in 0..300 {
        tx.send(record(i));
    }
    wait_until("all handled", || {
        let c = handle.counters();
        c.spooled + c.dropped == 300
    });
    let c = handle.counters();
    assert!(c.spooled > 0 && c.dropped > 0, "{c:?}");
    assert!(c.spool_bytes <= 16 * 1024, "{c:?}");

    switches.down.store(false, SeqCst);
    let c = handle.shutdown().unwrap();
    assert_eq!(c.replayed, c.spooled, "{c:?}");
    assert_eq!(rows(&db).0, 300 - c.dropped);

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let loud: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("call records DROPPED"))
        .collect();
    assert_eq!(loud.len(), 1, "once a minute:\n{text}");
    assert!(loud[0].contains("ERROR"), "{}", loud[0]);
}
