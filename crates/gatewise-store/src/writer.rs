//! The writer: takes records from the request path without ever making it
//! wait, and gets every one of them into the store.
//!
//! ```text
//! RecordSender::send ──try_send──► main channel (bounded) ──► writer thread ──batch──► CallLog
//!        │ full                                                 │  ▲        store fails / behind
//!        └──try_send──► overflow channel (bounded) ──► spool ◄──┘  └── replay, oldest first
//! ```
//!
//! Channels are `crossbeam-channel` bounded queues: `try_send` never
//! blocks, and the writer waits on both queues and its shutdown signal at
//! once (`select!`), which `std::sync::mpsc` cannot do.
//!
//! The writer thread stamps each record with its [`RecordKey`] (a random
//! writer id, a sequence number), batches up to `batch_size` records or
//! `batch_wait`, and appends the batch to the store in one transaction.
//! When that fails, or when the main channel is three quarters full (the
//! store is too slow), the batch goes to the spool instead; records that
//! found the main channel full come through the overflow channel and go to
//! the spool directly. While the store works and the channel is not busy,
//! the spool is replayed in chunks, oldest first; a chunk is acknowledged
//! only after it is stored, and a record whose key is already stored is
//! skipped, so nothing is lost and nothing doubles. A record is dropped
//! only when the spool is at its size limit (or both channels are full, or
//! after shutdown), and drops are logged with `tracing::error!` at most once
//! a minute.

use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded, select};
use gatewise_core::calllog::CallRecord;
use gatewise_core::clock::Clock;

use crate::StoreError;
use crate::calllog::{CallLog, KeyedRecord, RecordKey, Retention};
use crate::spool::Spool;
use crate::time::{Throttle, now};

/// How the writer batches, spools and cleans up.
#[derive(Clone)]
pub struct WriterConfig {
    /// Most records per store transaction.
    pub batch_size: usize,
    /// Longest a record waits for its batch to fill.
    pub batch_wait: Duration,
    /// Capacity of the main channel, records.
    pub channel_capacity: usize,
    /// Capacity of the overflow channel (records that found the main
    /// channel full, on their way to the spool), records.
    pub overflow_capacity: usize,
    /// Directory of the spool (created if missing; one writer at a time).
    pub spool_dir: PathBuf,
    /// Size limit of the spool; past it records are dropped (and counted).
    pub spool_max_bytes: u64,
    /// Size at which a spool segment is closed and a new one begun.
    pub spool_segment_bytes: u64,
    /// How long to wait before trying a failed store again.
    pub retry_every: Duration,
    /// What to keep; nothing is deleted when no limit is set.
    pub retention: Retention,
    /// How often retention runs.
    pub retention_every: Duration,
    /// Wall-clock time, for retention by age.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for WriterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterConfig")
            .field("batch_size", &self.batch_size)
            .field("batch_wait", &self.batch_wait)
            .field("channel_capacity", &self.channel_capacity)
            .field("overflow_capacity", &self.overflow_capacity)
            .field("spool_dir", &self.spool_dir)
            .field("spool_max_bytes", &self.spool_max_bytes)
            .field("spool_segment_bytes", &self.spool_segment_bytes)
            .field("retry_every", &self.retry_every)
            .field("retention", &self.retention)
            .field("retention_every", &self.retention_every)
            .finish_non_exhaustive()
    }
}

impl WriterConfig {
    /// Defaults: batches of 1,000 or 100 ms; 65,536 records in the
    /// channel and as many in overflow; a 1 GiB spool in 64 MiB segments;
    /// retry after 1 s; retention (none set) every 60 s.
    pub fn new(spool_dir: impl Into<PathBuf>, clock: Arc<dyn Clock>) -> Self {
        WriterConfig {
            batch_size: 1_000,
            batch_wait: Duration::from_millis(100),
            channel_capacity: 65_536,
            overflow_capacity: 65_536,
            spool_dir: spool_dir.into(),
            spool_max_bytes: 1 << 30,
            spool_segment_bytes: 64 << 20,
            retry_every: Duration::from_secs(1),
            retention: Retention::default(),
            retention_every: Duration::from_secs(60),
            clock,
        }
    }
}

/// The writer's counters, as a snapshot.
///
/// Once the writer is shut down: `queued = written + spooled + dropped
/// (by the spool limit)`, and the store holds `written + replayed` records
/// of this run (plus replays of earlier runs' spools).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Records accepted by [`RecordSender::send`].
    pub queued: u64,
    /// Records stored directly from the channel.
    pub written: u64,
    /// Records written to the spool.
    pub spooled: u64,
    /// Records stored from the spool.
    pub replayed: u64,
    /// Spooled records found already stored when replayed (skipped).
    pub duplicates: u64,
    /// Records lost: spool at its limit, spool unwritable, both channels
    /// full, sent after shutdown, or spool lines unreadable.
    pub dropped: u64,
    /// Failed store calls.
    pub store_errors: u64,
    /// Bytes waiting in the spool.
    pub spool_bytes: u64,
    /// Records waiting in the channels.
    pub backlog: u64,
}

#[derive(Debug, Default)]
struct Shared {
    queued: AtomicU64,
    written: AtomicU64,
    spooled: AtomicU64,
    replayed: AtomicU64,
    duplicates: AtomicU64,
    dropped: AtomicU64,
    store_errors: AtomicU64,
    spool_bytes: AtomicU64,
    stopped: AtomicBool,
    warned_stopped: AtomicBool,
}

impl Shared {
    fn snapshot(&self, backlog: usize) -> Counters {
        Counters {
            queued: self.queued.load(Relaxed),
            written: self.written.load(Relaxed),
            spooled: self.spooled.load(Relaxed),
            replayed: self.replayed.load(Relaxed),
            duplicates: self.duplicates.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            store_errors: self.store_errors.load(Relaxed),
            spool_bytes: self.spool_bytes.load(Relaxed),
            backlog: backlog as u64,
        }
    }
}

/// What became of a sent record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// In the main channel.
    Queued,
    /// The main channel was full: in the overflow channel, bound for the
    /// spool.
    Overflow,
    /// Lost (both channels full, or the writer has stopped); counted.
    Dropped,
}

/// The request path's end: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct RecordSender {
    main: Sender<Box<CallRecord>>,
    overflow: Sender<Box<CallRecord>>,
    shared: Arc<Shared>,
}

impl RecordSender {
    /// Hands a record to the writer without waiting: `try_send` into the
    /// main channel, else into the overflow channel, else it is dropped
    /// (counted).
    pub fn send(&self, record: CallRecord) -> Delivery {
        if self.shared.stopped.load(Relaxed) {
            return self.dropped_after_stop();
        }
        // Boxed: a channel slot is a pointer, so capacity costs memory only
        // when used (a record is about 0.5 KiB before its strings).
        match self.main.try_send(Box::new(record)) {
            Ok(()) => {
                self.shared.queued.fetch_add(1, Relaxed);
                Delivery::Queued
            }
            Err(TrySendError::Full(record)) => match self.overflow.try_send(record) {
                Ok(()) => {
                    self.shared.queued.fetch_add(1, Relaxed);
                    Delivery::Overflow
                }
                Err(TrySendError::Full(_)) => {
                    // The writer logs drops (once a minute).
                    self.shared.dropped.fetch_add(1, Relaxed);
                    Delivery::Dropped
                }
                Err(TrySendError::Disconnected(_)) => self.dropped_after_stop(),
            },
            Err(TrySendError::Disconnected(_)) => self.dropped_after_stop(),
        }
    }

    fn dropped_after_stop(&self) -> Delivery {
        self.shared.dropped.fetch_add(1, Relaxed);
        if !self.shared.warned_stopped.swap(true, Relaxed) {
            tracing::error!("call record sent after the call-log writer stopped: dropped");
        }
        Delivery::Dropped
    }

    /// The writer's counters now.
    pub fn counters(&self) -> Counters {
        self.shared.snapshot(self.main.len() + self.overflow.len())
    }
}

/// Owns the writer thread: counters, and [`WriterHandle::shutdown`].
/// Dropping the handle shuts the writer down too (and waits for it).
#[derive(Debug)]
pub struct WriterHandle {
    stop: Sender<()>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    main: Receiver<Box<CallRecord>>,
    overflow: Receiver<Box<CallRecord>>,
}

impl WriterHandle {
    /// The writer's counters now.
    pub fn counters(&self) -> Counters {
        self.shared.snapshot(self.main.len() + self.overflow.len())
    }

    /// Stops the writer after it has stored (or, if the store is down,
    /// spooled and synced) every record sent before this call, and replayed
    /// the spool if the store works. Blocks until then: call it from a
    /// blocking context. Returns the final counters.
    pub fn shutdown(mut self) -> Result<Counters, StoreError> {
        self.stop_and_join()?;
        Ok(self.counters())
    }

    fn stop_and_join(&mut self) -> Result<(), StoreError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        // Records sent from now on are dropped (counted); those already in
        // the channels are stored by the writer before it ends.
        self.shared.stopped.store(true, Relaxed);
        let _ = self.stop.try_send(());
        let joined = thread.join();
        // A record that slipped in while the writer was finishing.
        let late = self.main.try_iter().count() + self.overflow.try_iter().count();
        if late > 0 {
            self.shared.dropped.fetch_add(late as u64, Relaxed);
            tracing::error!(late, "call records sent during shutdown: dropped");
        }
        joined.map_err(|_| StoreError::WriterPanicked)
    }
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        if let Err(e) = self.stop_and_join() {
            tracing::error!("call-log writer: {e}");
        }
    }
}

/// Starts writers.
#[derive(Debug)]
pub struct Writer {
    _private: (),
}

impl Writer {
    /// Starts the writer thread with this store (which it owns from now
    /// on) and opens the spool, replaying whatever an earlier run left
    /// there. Returns the request path's sender and the handle.
    pub fn start(
        store: impl CallLog + 'static,
        config: WriterConfig,
    ) -> Result<(RecordSender, WriterHandle), StoreError> {
        let spool = Spool::open(
            &config.spool_dir,
            config.spool_max_bytes,
            config.spool_segment_bytes,
        )?;
        let shared = Arc::new(Shared::default());
        shared.spool_bytes.store(spool.bytes(), Relaxed);
        let capacity = config.channel_capacity.max(1);
        let (main_tx, main_rx) = bounded(capacity);
        let (over_tx, over_rx) = bounded(config.overflow_capacity.max(1));
        let (stop_tx, stop_rx) = bounded(1);
        let t = now();
        let worker = Worker {
            store: Box::new(store),
            spool,
            main: main_rx.clone(),
            overflow: over_rx.clone(),
            stop: stop_rx,
            shared: Arc::clone(&shared),
            writer_id: random_writer_id(),
            seq: 0,
            high_water: (capacity * 3 / 4).max(1),
            low_water: capacity / 4,
            store_ok: true,
            retry_at: t,
            next_retention: t + config.retention_every,
            drop_log: Throttle::new(Duration::from_secs(60)),
            dropped_logged: 0,
            error_log: Throttle::new(Duration::from_secs(60)),
            config,
        };
        let thread = std::thread::Builder::new()
            .name("calllog-writer".into())
            .spawn(move || worker.run())
            .map_err(|e| StoreError::io("starting the call-log writer thread", e))?;
        Ok((
            RecordSender {
                main: main_tx,
                overflow: over_tx,
                shared: Arc::clone(&shared),
            },
            WriterHandle {
                stop: stop_tx,
                thread: Some(thread),
                shared,
                main: main_rx,
                overflow: over_rx,
            },
        ))
    }
}

/// A random writer id (non-negative), from the standard library's
/// randomly keyed hasher: unique enough that two writers never share one.
fn random_writer_id() -> i64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x6761_7465_7769_7365);
    (h.finish() >> 1) as i64
}

struct Worker {
    store: Box<dyn CallLog>,
    spool: Spool,
    main: Receiver<Box<CallRecord>>,
    overflow: Receiver<Box<CallRecord>>,
    stop: Receiver<()>,
    shared: Arc<Shared>,
    writer_id: i64,
    seq: i64,
    high_water: usize,
    low_water: usize,
    store_ok: bool,
    retry_at: Instant,
    next_retention: Instant,
    drop_log: Throttle,
    dropped_logged: u64,
    error_log: Throttle,
    config: WriterConfig,
}

impl Worker {
    fn run(mut self) {
        let mut batch = Vec::with_capacity(self.config.batch_size.max(1));
        loop {
            let stop = self.collect(&mut batch);
            if !batch.is_empty() {
                self.flush(&mut batch);
            }
            if stop {
                self.finish(&mut batch);
                return;
            }
            self.maintain(false);
        }
    }

    fn keyed(&mut self, record: Box<CallRecord>) -> KeyedRecord {
        self.seq += 1;
        KeyedRecord {
            key: RecordKey {
                writer: self.writer_id,
                seq: self.seq,
            },
            record: *record,
        }
    }

    /// Waits for records and fills `batch`; overflowed records go to the
    /// spool on the way. True when the writer should stop.
    fn collect(&mut self, batch: &mut Vec<KeyedRecord>) -> bool {
        let size = self.config.batch_size.max(1);
        let tick = self
            .config
            .batch_wait
            .clamp(Duration::from_millis(5), Duration::from_secs(1));
        let mut deadline: Option<Instant> = None;
        loop {
            self.spill_overflow();
            while batch.len() < size {
                match self.main.try_recv() {
                    Ok(r) => {
                        let k = self.keyed(r);
                        batch.push(k);
                    }
                    Err(_) => break,
                }
            }
            if batch.len() >= size {
                return false;
            }
            let t = now();
            let until = match deadline {
                Some(d) => d,
                None if batch.is_empty() => t + tick,
                None => {
                    let d = t + self.config.batch_wait;
                    deadline = Some(d);
                    d
                }
            };
            if t >= until {
                return false;
            }
            select! {
                recv(self.main) -> r => match r {
                    Ok(r) => {
                        let k = self.keyed(r);
                        batch.push(k);
                        if deadline.is_none() {
                            deadline = Some(now() + self.config.batch_wait);
                        }
                    }
                    // Every sender is gone: nothing more can come.
                    Err(_) => return true,
                },
                recv(self.overflow) -> r => {
                    if let Ok(r) = r {
                        let k = self.keyed(r);
                        let mut spill = vec![k];
                        while spill.len() < size {
                            match self.overflow.try_recv() {
                                Ok(r) => {
                                    let k = self.keyed(r);
                                    spill.push(k);
                                }
                                Err(_) => break,
                            }
                        }
                        self.spool(&spill);
                    }
                },
                recv(self.stop) -> _ => return true,
                default(until - t) => {
                    if batch.is_empty() {
                        return false;
                    }
                },
            }
        }
    }

    /// Records that found the main channel full go to the spool: the store
    /// is behind.
    fn spill_overflow(&mut self) {
        if self.overflow.is_empty() {
            return;
        }
        let size = self.config.batch_size.max(1);
        let mut spill = Vec::with_capacity(size.min(self.overflow.len()));
        while let Ok(r) = self.overflow.try_recv() {
            let k = self.keyed(r);
            spill.push(k);
            if spill.len() >= size {
                self.spool(&spill);
                spill.clear();
            }
        }
        if !spill.is_empty() {
            self.spool(&spill);
        }
    }

    /// Stores a batch, or spools it when the store is failing or behind.
    fn flush(&mut self, batch: &mut Vec<KeyedRecord>) {
        let behind = self.main.len() >= self.high_water;
        let t = now();
        if !behind && (self.store_ok || t >= self.retry_at) {
            match self.store.append(batch) {
                Ok(n) => {
                    self.recovered();
                    self.shared.written.fetch_add(n as u64, Relaxed);
                    let dup = batch.len().saturating_sub(n) as u64;
                    if dup > 0 {
                        self.shared.duplicates.fetch_add(dup, Relaxed);
                    }
                }
                Err(e) => {
                    self.failed(&e);
                    self.spool(batch);
                }
            }
        } else {
            self.spool(batch);
        }
        batch.clear();
    }

    fn spool(&mut self, batch: &[KeyedRecord]) {
        match self.spool.append(batch) {
            Ok(a) => {
                self.shared.spooled.fetch_add(a.spooled, Relaxed);
                if a.dropped > 0 {
                    self.shared.dropped.fetch_add(a.dropped, Relaxed);
                    self.log_drops();
                }
            }
            Err(e) => {
                self.shared.dropped.fetch_add(batch.len() as u64, Relaxed);
                if self.error_log.ready(now()) {
                    tracing::error!("call-log spool unwritable, records dropped: {e}");
                }
                self.log_drops();
            }
        }
        self.shared.spool_bytes.store(self.spool.bytes(), Relaxed);
    }

    fn failed(&mut self, e: &StoreError) {
        self.shared.store_errors.fetch_add(1, Relaxed);
        if self.store_ok || self.error_log.ready(now()) {
            tracing::warn!("call-log store failed, spooling records: {e}");
        }
        self.store_ok = false;
        self.retry_at = now() + self.config.retry_every;
    }

    fn recovered(&mut self) {
        if !self.store_ok {
            tracing::info!("call-log store works again; replaying the spool");
        }
        self.store_ok = true;
    }

    /// Says loudly, at most once a minute, that records were lost.
    fn log_drops(&mut self) {
        let dropped = self.shared.dropped.load(Relaxed);
        if dropped > self.dropped_logged && self.drop_log.ready(now()) {
            tracing::error!(
                dropped_total = dropped,
                dropped_since_last_report = dropped - self.dropped_logged,
                spool_bytes = self.spool.bytes(),
                spool_max_bytes = self.config.spool_max_bytes,
                "call records DROPPED: the spool is at its size limit or unwritable, or the \
                 writer cannot keep up; they are lost"
            );
            self.dropped_logged = dropped;
        }
    }

    /// Replay, retention and the drop report, between batches. With
    /// `all`, replays until the spool is empty or the store fails.
    fn maintain(&mut self, all: bool) {
        let t = now();
        if !self.spool.is_empty() && (self.store_ok || t >= self.retry_at) {
            // A bounded amount per round, so new records are not kept
            // waiting; more next round while the channel is quiet.
            let mut rounds = if all { usize::MAX } else { 8 };
            while rounds > 0
                && !self.spool.is_empty()
                && (all || self.main.len() <= self.low_water)
                && self.replay_chunk()
            {
                rounds -= 1;
            }
        }
        if t >= self.next_retention {
            self.next_retention = t + self.config.retention_every;
            if !self.config.retention.is_unlimited() && self.store_ok {
                let now_ms = self.config.clock.unix_now().saturating_mul(1000);
                match self.store.retain(&self.config.retention, now_ms) {
                    Ok(r) if r.total() > 0 => tracing::info!(
                        by_age = r.by_age,
                        by_rows = r.by_rows,
                        by_size = r.by_size,
                        "call-log retention deleted old calls"
                    ),
                    Ok(_) => {}
                    Err(e) => self.failed(&e),
                }
            }
        }
        self.log_drops();
    }

    /// Stores one chunk of the spool. False when nothing more can be done
    /// now (store failed, spool unreadable).
    fn replay_chunk(&mut self) -> bool {
        let chunk = match self.spool.read_chunk(self.config.batch_size.max(1)) {
            Ok(c) => c,
            Err(e) => {
                if self.error_log.ready(now()) {
                    tracing::error!("call-log spool unreadable: {e}");
                }
                return false;
            }
        };
        if chunk.corrupt > 0 {
            tracing::warn!(
                lines = chunk.corrupt,
                "unreadable call-log spool lines skipped (torn by a crash?)"
            );
            self.shared.dropped.fetch_add(chunk.corrupt, Relaxed);
        }
        if chunk.records.is_empty() {
            self.spool.ack();
            self.shared.spool_bytes.store(self.spool.bytes(), Relaxed);
            return true;
        }
        match self.store.append(&chunk.records) {
            Ok(n) => {
                self.recovered();
                self.spool.ack();
                self.shared.replayed.fetch_add(n as u64, Relaxed);
                let dup = chunk.records.len().saturating_sub(n) as u64;
                if dup > 0 {
                    self.shared.duplicates.fetch_add(dup, Relaxed);
                }
                self.shared.spool_bytes.store(self.spool.bytes(), Relaxed);
                true
            }
            Err(e) => {
                self.spool.nack();
                self.failed(&e);
                false
            }
        }
    }

    /// Shutdown: everything still in the channels is stored (or spooled),
    /// then the spool is replayed if the store works.
    fn finish(&mut self, batch: &mut Vec<KeyedRecord>) {
        self.spill_overflow();
        let size = self.config.batch_size.max(1);
        loop {
            while batch.len() < size {
                match self.main.try_recv() {
                    Ok(r) => {
                        let k = self.keyed(r);
                        batch.push(k);
                    }
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                break;
            }
            self.flush(batch);
        }
        self.spill_overflow();
        // One more try even if the store failed a moment ago.
        self.retry_at = now();
        self.maintain(true);
        self.log_drops();
        let c = self.shared.snapshot(0);
        tracing::info!(
            queued = c.queued,
            written = c.written,
            spooled = c.spooled,
            replayed = c.replayed,
            dropped = c.dropped,
            spool_bytes = c.spool_bytes,
            "call-log writer stopped"
        );
    }
}
