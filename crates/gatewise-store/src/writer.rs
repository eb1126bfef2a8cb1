//! The writer: takes records from the request path without ever making it
//! wait, and gets every one of them into the store.
//!
//! ```text
//! RecordSender::send ─try_send─► main channel ─► writer thread ──hand-off (1 batch)──► indexer thread ─► CallLog
//!        │ full                                   │   ▲ batch back        sealed segments ─►│ replay, oldest first
//!        └─try_send─► overflow channel ─► spool ◄─┘   └──── (store failed) ◄───────────────┘
//! ```
//!
//! Two threads. The **writer thread** stamps each record with its
//! [`RecordKey`] (a random writer id, a sequence number) and batches up to
//! `batch_size` records or `batch_wait`. A batch goes to the indexer when
//! the indexer is free and the store works; otherwise it is appended to the
//! spool, a compact binary log on disk ([`crate::codec`]), which costs a
//! small fraction of a database insert. The **indexer thread** owns the
//! store: it stores handed-over batches, replays sealed spool segments
//! (oldest first, a chunk acknowledged only once stored) and runs
//! retention. A record whose key is already stored is skipped, so nothing
//! is lost and nothing doubles.
//!
//! The indexer runs at background CPU priority (`nice` 19, when
//! `background_indexer`): on a machine with idle CPU that changes nothing
//! (records are queryable within `batch_wait`), but when traffic saturates
//! the CPU the gateway keeps it, records go to the spool, and the store
//! catches up when the load drops. The call log then costs the request path
//! little more than an append to a file (issue 6's budget is 10% of the
//! gateway's throughput; a database insert with its indexes costs more than
//! that on its own).
//!
//! Channels are `crossbeam-channel` bounded queues: `try_send` never
//! blocks, and each thread waits on several queues at once (`select!`). A
//! record is dropped only when the spool is at its size limit (or both
//! channels are full, or after shutdown), and drops are logged with
//! `tracing::error!` at most once a minute.

use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError, bounded, select, unbounded};
use gatewise_core::calllog::CallRecord;
use gatewise_core::clock::Clock;

use crate::StoreError;
use crate::calllog::{CallLog, KeyedRecord, RecordKey, Retention};
use crate::load::{LoadProbe, ProcStat};
use crate::spool::{self, Segment, SpoolReader, SpoolWriter};
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
    /// Run the indexer (the thread that writes to the store) at background
    /// CPU priority (`nice` 19), so that under CPU saturation records wait
    /// in the spool instead of taking CPU from the gateway.
    pub background_indexer: bool,
    /// Longest a spool segment stays open while it has records; sealed, its
    /// records can be replayed into the store.
    pub seal_after: Duration,
    /// Wait with indexing while the CPUs are busy (`None`: never wait).
    pub defer: Option<Defer>,
}

/// When the indexer leaves records in the spool because the CPUs are busy
/// (see [`crate::load`]).
#[derive(Clone)]
pub struct Defer {
    /// Index only while the CPUs this process runs on were idle at least
    /// this fraction of the time (the indexer's own time counts as idle).
    pub min_idle: f64,
    /// How often the load is looked at.
    pub every: Duration,
    /// Index anyway once the spool holds this fraction of its size limit,
    /// so that waiting never leads to drops.
    pub max_spool_fraction: f64,
    /// Where the load comes from.
    pub probe: Arc<Mutex<dyn LoadProbe>>,
}

impl Defer {
    /// Busy below 25% idle, looked at every 100 ms, up to half the spool;
    /// the load from `/proc/stat` ([`ProcStat`]).
    pub fn new() -> Self {
        Defer {
            min_idle: 0.25,
            every: Duration::from_millis(100),
            max_spool_fraction: 0.5,
            probe: Arc::new(Mutex::new(ProcStat::new())),
        }
    }
}

impl Default for Defer {
    fn default() -> Self {
        Defer::new()
    }
}

impl std::fmt::Debug for Defer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Defer")
            .field("min_idle", &self.min_idle)
            .field("every", &self.every)
            .field("max_spool_fraction", &self.max_spool_fraction)
            .finish_non_exhaustive()
    }
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
            .field("background_indexer", &self.background_indexer)
            .field("seal_after", &self.seal_after)
            .field("defer", &self.defer)
            .finish_non_exhaustive()
    }
}

impl WriterConfig {
    /// Defaults: batches of 1,000 or 100 ms; 65,536 records in the
    /// channel and as many in overflow; a 1 GiB spool in 64 MiB segments,
    /// sealed after 200 ms; retry after 1 s; retention (none set) every
    /// 60 s; the indexer at background priority, waiting while the CPUs
    /// are busy ([`Defer::new`]).
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
            background_indexer: true,
            seal_after: Duration::from_millis(200),
            defer: Some(Defer::new()),
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
    /// Records stored straight from the writer (not through the spool).
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
    /// The indexer is waiting for the CPUs to be less busy (records go to
    /// the spool meanwhile).
    pub deferring: bool,
}

impl Counters {
    /// Records stored, straight or from the spool.
    pub fn stored(&self) -> u64 {
        self.written + self.replayed
    }
}

#[derive(Debug)]
struct Shared {
    queued: AtomicU64,
    written: AtomicU64,
    spooled: AtomicU64,
    replayed: AtomicU64,
    duplicates: AtomicU64,
    dropped: AtomicU64,
    store_errors: AtomicU64,
    /// The spool's own byte count (both halves update it).
    spool_bytes: Arc<AtomicU64>,
    /// The indexer's view of the store: false after a failure, until a
    /// store call works again. The writer spools while it is false.
    store_ok: AtomicBool,
    /// The indexer waits for the CPUs; the writer spools meanwhile.
    deferring: AtomicBool,
    /// The indexer thread's id (Linux), for the load probe; 0 until known.
    indexer_tid: Arc<AtomicI32>,
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
            deferring: self.deferring.load(Relaxed),
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

/// Owns the writer and indexer threads: counters, and
/// [`WriterHandle::shutdown`]. Dropping the handle shuts them down too (and
/// waits for them).
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

/// Batches waiting for the indexer before the writer spools instead.
const HANDOFF_BATCHES: usize = 4;

/// Longest the writer waits for room in the hand-off (an indexer storing a
/// batch of 1,000 needs about 15 ms here). Bounded: an indexer that the
/// scheduler keeps waiting may never make room while records pile up in
/// the channel; once the writer sees the CPUs busy it stops handing over
/// at all (`deferring`).
const HANDOFF_WAIT: Duration = Duration::from_millis(50);

/// Starts writers.
#[derive(Debug)]
pub struct Writer {
    _private: (),
}

impl Writer {
    /// Starts the writer and indexer threads with this store (which the
    /// indexer owns from now on) and opens the spool, replaying whatever an
    /// earlier run left there. Returns the request path's sender and the
    /// handle.
    pub fn start(
        store: impl CallLog + 'static,
        config: WriterConfig,
    ) -> Result<(RecordSender, WriterHandle), StoreError> {
        let (spool_w, spool_r) = spool::open(
            &config.spool_dir,
            config.spool_max_bytes,
            config.spool_segment_bytes,
        )?;
        let shared = Arc::new(Shared {
            queued: AtomicU64::new(0),
            written: AtomicU64::new(0),
            spooled: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            store_errors: AtomicU64::new(0),
            spool_bytes: spool_w.total(),
            store_ok: AtomicBool::new(true),
            deferring: AtomicBool::new(false),
            indexer_tid: Arc::new(AtomicI32::new(0)),
            stopped: AtomicBool::new(false),
            warned_stopped: AtomicBool::new(false),
        });
        let capacity = config.channel_capacity.max(1);
        let (main_tx, main_rx) = bounded(capacity);
        let (over_tx, over_rx) = bounded(config.overflow_capacity.max(1));
        let (stop_tx, stop_rx) = bounded(1);
        // A few batches in hand-off (a short burst need not touch the
        // spool); past them the writer spools.
        let (hand_tx, hand_rx) = bounded(HANDOFF_BATCHES);
        let (seg_tx, seg_rx) = unbounded();
        let (back_tx, back_rx) = unbounded();
        let t = now();
        let indexer = Indexer {
            store: Box::new(store),
            spool: spool_r,
            handoff: hand_rx,
            segments: seg_rx,
            back: back_tx,
            shared: Arc::clone(&shared),
            store_ok: true,
            retry_at: t,
            next_retention: t + config.retention_every,
            error_log: Throttle::new(Duration::from_secs(60)),
            config: config.clone(),
        };
        let indexer = std::thread::Builder::new()
            .name("calllog-indexer".into())
            .spawn(move || indexer.run())
            .map_err(|e| StoreError::io("starting the call-log indexer thread", e))?;
        let worker = Worker {
            spool: spool_w,
            main: main_rx.clone(),
            overflow: over_rx.clone(),
            stop: stop_rx,
            handoff: Some(hand_tx),
            segments: Some(seg_tx),
            back: back_rx,
            indexer: Some(indexer),
            shared: Arc::clone(&shared),
            writer_id: random_writer_id(),
            seq: 0,
            drop_log: Throttle::new(Duration::from_secs(60)),
            dropped_logged: 0,
            error_log: Throttle::new(Duration::from_secs(60)),
            next_probe: t,
            busy: false,
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

/// Puts the calling thread in the background: Linux's `SCHED_IDLE`
/// policy (it runs only when no normal thread wants the CPU, and a normal
/// thread that wakes up takes the CPU from it at once), else `nice` 19
/// (the nice value is per thread on Linux). Measured on the gateway
/// benchmark, `nice` 19 alone let the indexer take a third of the CPU from
/// a saturated gateway. Failure only means the indexer competes with the
/// gateway at normal priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::unix::{
            NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
            thread_native_id,
        };
        let idle = set_thread_priority_and_policy(
            thread_native_id(),
            thread_priority::ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
        );
        if let Err(e) = idle {
            tracing::debug!("call-log indexer: SCHED_IDLE refused ({e:?}); nice 19 instead");
            if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19)
            {
                tracing::debug!("call-log indexer keeps normal priority: {e}");
            }
        }
    }
}

/// The writer thread: batches, hands over or spools.
struct Worker {
    spool: SpoolWriter,
    main: Receiver<Box<CallRecord>>,
    overflow: Receiver<Box<CallRecord>>,
    stop: Receiver<()>,
    /// To the indexer; dropped at shutdown (the indexer then finishes).
    handoff: Option<Sender<Vec<KeyedRecord>>>,
    segments: Option<Sender<Segment>>,
    /// Batches the indexer could not store.
    back: Receiver<Vec<KeyedRecord>>,
    indexer: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    writer_id: i64,
    seq: i64,
    drop_log: Throttle,
    dropped_logged: u64,
    error_log: Throttle,
    /// When the load is looked at next.
    next_probe: Instant,
    /// The CPUs were busy when last looked at.
    busy: bool,
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
            self.look_at_the_load(now());
            // Sealed, a segment can be replayed: when it is old enough, or
            // at once when the indexer has nothing else to do (it took every
            // batch handed over and is not waiting for the CPUs), so a
            // burst does not leave it idle for `seal_after`.
            let indexer_idle = self.handoff.as_ref().is_some_and(|h| h.is_empty())
                && !self.shared.deferring.load(Relaxed);
            if self.spool.active_older_than(self.config.seal_after, now())
                || (indexer_idle && self.spool.has_records())
            {
                self.seal();
            }
            self.log_drops();
        }
    }

    /// Decides whether the indexer waits for the CPUs (and the spool has
    /// room for the wait), from the load the probe sees with the indexer's
    /// own time counted as idle; tells the indexer through `deferring`.
    fn look_at_the_load(&mut self, t: Instant) {
        let Some(d) = &self.config.defer else {
            return;
        };
        if t >= self.next_probe {
            self.next_probe = t + d.every;
            let tid = self.shared.indexer_tid.load(Relaxed);
            let idle = d.probe.lock().ok().and_then(|mut p| p.idle_fraction(tid));
            // No answer (first look, no data): not busy.
            self.busy = idle.is_some_and(|f| f < d.min_idle);
        }
        let limit = d.max_spool_fraction * self.config.spool_max_bytes as f64;
        let defer = self.busy && (self.spool.bytes() as f64) < limit;
        if self.shared.deferring.swap(defer, Relaxed) != defer {
            tracing::debug!(
                defer,
                "call-log indexer: CPUs busy, records wait in the spool"
            );
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

    /// Waits for records and fills `batch`; overflowed records and batches
    /// the indexer gave back go to the spool on the way. True when the
    /// writer should stop.
    ///
    /// The writer never sleeps on the main channel: it wakes every `tick`
    /// and drains it. Blocked on the channel, every `send` on the request
    /// path would wake it (a futex call and a context switch per request:
    /// measured, that was most of the call log's cost); polling costs one
    /// wake-up per tick, and a record waits at most a tick.
    fn collect(&mut self, batch: &mut Vec<KeyedRecord>) -> bool {
        let size = self.config.batch_size.max(1);
        let tick = self
            .config
            .batch_wait
            .min(self.config.seal_after)
            .clamp(Duration::from_millis(5), Duration::from_secs(1));
        let until = now() + tick;
        loop {
            self.spill_overflow();
            self.spool_returned();
            while batch.len() < size {
                match self.main.try_recv() {
                    Ok(r) => {
                        let k = self.keyed(r);
                        batch.push(k);
                    }
                    Err(TryRecvError::Empty) => break,
                    // Every sender is gone: nothing more can come.
                    Err(TryRecvError::Disconnected) => return true,
                }
            }
            let t = now();
            if batch.len() >= size || t >= until {
                return false;
            }
            select! {
                recv(self.overflow) -> r => {
                    if let Ok(r) = r {
                        // With the rest of the overflow, in one append.
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
                recv(self.back) -> b => {
                    if let Ok(b) = b {
                        self.spool(&b);
                    }
                },
                recv(self.stop) -> _ => return true,
                default(until - t) => {},
            }
        }
    }

    /// Records that found the main channel full go to the spool.
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

    /// Batches the indexer could not store go to the spool.
    fn spool_returned(&mut self) {
        while let Ok(b) = self.back.try_recv() {
            self.spool(&b);
        }
    }

    /// Hands a batch to the indexer when it is free (or frees up within
    /// [`HANDOFF_WAIT`]) and the store works and the CPUs are not busy;
    /// spools it otherwise.
    fn flush(&mut self, batch: &mut Vec<KeyedRecord>) {
        if self.shared.store_ok.load(Relaxed)
            && !self.shared.deferring.load(Relaxed)
            && let Some(handoff) = &self.handoff
        {
            let full = std::mem::replace(batch, Vec::with_capacity(self.config.batch_size.max(1)));
            // Wait a little for the indexer (the request path does not wait:
            // the channel in front of the writer absorbs it); a batch that
            // still finds it busy goes to the spool. Without the wait a
            // burst would take the longer way through the spool though the
            // indexer is about to be free.
            match handoff.send_timeout(full, self.config.batch_wait.min(HANDOFF_WAIT)) {
                Ok(()) => return,
                Err(e) => *batch = e.into_inner(),
            }
        }
        self.spool(batch);
        batch.clear();
    }

    fn spool(&mut self, batch: &[KeyedRecord]) {
        if batch.is_empty() {
            return;
        }
        let appended = self.spool.append(batch, now());
        match appended {
            Ok(a) => {
                self.shared.spooled.fetch_add(a.spooled, Relaxed);
                if let Some(seg) = a.sealed {
                    self.send_segment(seg);
                }
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
                // What the failed segment held before is still on disk.
                if let Some(seg) = self.spool.seal() {
                    self.send_segment(seg);
                }
                self.log_drops();
            }
        }
    }

    fn seal(&mut self) {
        if let Some(seg) = self.spool.seal() {
            self.send_segment(seg);
        }
    }

    fn send_segment(&mut self, seg: Segment) {
        // Without an indexer (shutdown), the segment stays on disk for the
        // next start.
        if let Some(tx) = &self.segments {
            let _ = tx.send(seg);
        }
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

    /// Shutdown: everything still in the channels is handed over or
    /// spooled, the active segment sealed; then the indexer stores what it
    /// was given and replays the spool if the store works, and what it
    /// gives back stays spooled for the next start.
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
        self.spool_returned();
        self.seal();
        // The indexer finishes once its inputs are closed.
        self.handoff = None;
        self.segments = None;
        let mut returned = false;
        while let Ok(b) = self.back.recv() {
            self.spool(&b);
            returned = true;
        }
        if returned {
            self.spool.seal();
        }
        if let Some(indexer) = self.indexer.take()
            && indexer.join().is_err()
        {
            tracing::error!("call-log indexer panicked");
        }
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

/// The indexer thread: owns the store.
struct Indexer {
    store: Box<dyn CallLog>,
    spool: SpoolReader,
    handoff: Receiver<Vec<KeyedRecord>>,
    segments: Receiver<Segment>,
    back: Sender<Vec<KeyedRecord>>,
    shared: Arc<Shared>,
    store_ok: bool,
    retry_at: Instant,
    next_retention: Instant,
    error_log: Throttle,
    config: WriterConfig,
}

impl Indexer {
    fn run(mut self) {
        // Its CPU time counts as idle when the writer looks at the load.
        #[cfg(target_os = "linux")]
        self.shared
            .indexer_tid
            .store(rustix::thread::gettid().as_raw_nonzero().get(), Relaxed);
        if self.config.background_indexer {
            lower_priority();
        }
        let tick = self
            .config
            .batch_wait
            .clamp(Duration::from_millis(5), Duration::from_secs(1));
        loop {
            select! {
                recv(self.handoff) -> b => match b {
                    Ok(b) => self.store_batch(b),
                    Err(_) => break,
                },
                recv(self.segments) -> s => {
                    if let Ok(s) = s {
                        self.spool.push(s);
                    }
                },
                default(tick) => {},
            }
            self.maintain(false);
        }
        self.finish();
    }

    /// Stores a handed-over batch; gives it back to be spooled when the
    /// store fails.
    fn store_batch(&mut self, batch: Vec<KeyedRecord>) {
        match self.store.append(&batch) {
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
                if let Err(b) = self.back.send(batch) {
                    // The writer is gone (it never leaves before the
                    // indexer; this is a last resort).
                    self.shared.dropped.fetch_add(b.0.len() as u64, Relaxed);
                }
            }
        }
    }

    fn failed(&mut self, e: &StoreError) {
        self.shared.store_errors.fetch_add(1, Relaxed);
        if self.store_ok || self.error_log.ready(now()) {
            tracing::warn!("call-log store failed, spooling records: {e}");
        }
        self.store_ok = false;
        self.shared.store_ok.store(false, Relaxed);
        self.retry_at = now() + self.config.retry_every;
    }

    fn recovered(&mut self) {
        if !self.store_ok {
            tracing::info!("call-log store works again; replaying the spool");
        }
        self.store_ok = true;
        self.shared.store_ok.store(true, Relaxed);
    }

    /// Takes the sealed segments the writer announced.
    fn take_segments(&mut self) {
        while let Ok(s) = self.segments.try_recv() {
            self.spool.push(s);
        }
    }

    /// Replay and retention, between batches: replay only while no new
    /// batch waits and the CPUs are not busy. With `all`, replays until
    /// the spool is empty or the store fails.
    fn maintain(&mut self, all: bool) {
        self.take_segments();
        let t = now();
        // The writer decides (it runs at normal priority, so it can look
        // at the load even when the CPUs leave the indexer none).
        if !all && self.shared.deferring.load(Relaxed) {
            return;
        }
        if !self.spool.is_empty() && (self.store_ok || t >= self.retry_at) {
            while !self.spool.is_empty() && (all || self.handoff.is_empty()) && self.replay_chunk()
            {
                self.take_segments();
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
                records = chunk.corrupt,
                "unreadable call-log spool records skipped (torn by a crash?)"
            );
            self.shared.dropped.fetch_add(chunk.corrupt, Relaxed);
        }
        if chunk.records.is_empty() {
            self.spool.ack();
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
                true
            }
            Err(e) => {
                self.spool.nack();
                self.failed(&e);
                false
            }
        }
    }

    /// Shutdown: what was handed over is stored (or given back), then the
    /// spool is replayed if the store works.
    fn finish(&mut self) {
        self.shared.deferring.store(false, Relaxed);
        while let Ok(b) = self.handoff.try_recv() {
            self.store_batch(b);
        }
        self.take_segments();
        // One more try even if the store failed a moment ago.
        self.retry_at = now();
        self.maintain(true);
    }
}
