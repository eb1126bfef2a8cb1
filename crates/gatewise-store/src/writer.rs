//! The writer: takes records from the request path without ever making it
//! wait, and gets every one of them into the store.
//!
//! ```text
//! RecordSender::send ─encode─► inbox (bytes) ─► writer thread ──hand-off (chunk)──► indexer thread ─► CallLog
//!                                                │   ▲ chunk back        sealed segments ─►│ replay, oldest first
//!                                                └► spool ◄─── (store failed) ◄────────────┘
//! ```
//!
//! [`RecordSender::send`] stamps the record with its [`RecordKey`] (the
//! writer's random id, a sequence number), encodes it in the spool's
//! binary format ([`crate::codec`]) on the calling thread and appends the
//! bytes to the **inbox**, a buffer behind a mutex held for one copy. The
//! record's memory is freed where it was allocated, and nothing else is
//! allocated per record: under load the call log costs the request path
//! one encoding and one copy (issue 6's budget is 10% of the gateway's
//! throughput).
//!
//! Two threads. The **writer thread** takes the whole inbox every
//! `batch_wait` (or when `batch_size` records wait) as one chunk. The chunk
//! goes to the indexer when the indexer is free and the store works;
//! otherwise its bytes are appended to the spool as they are (one write),
//! which costs a small fraction of a database insert. The **indexer
//! thread** owns the store: it decodes handed-over chunks and stores them in
//! transactions of `batch_size`, replays sealed spool segments (oldest
//! first, a chunk acknowledged only once stored) and runs retention. A
//! record whose key is already stored is skipped, so nothing is lost and
//! nothing doubles.
//!
//! The indexer runs at background CPU priority (`SCHED_IDLE`, else `nice`
//! 19, when `background_indexer`): on a machine with idle CPU that changes
//! nothing (records are queryable within `batch_wait`), but when traffic
//! saturates the CPU the gateway keeps it, records go to the spool, and the
//! store catches up when the load drops.
//!
//! A record is dropped only when the inbox is full (the writer thread
//! cannot keep up), when the spool is at its size limit, or after
//! shutdown; drops are counted and logged with `tracing::error!` at most
//! once a minute.

use std::cell::RefCell;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, select, unbounded};
use gatewise_core::calllog::CallRecord;
use gatewise_core::clock::Clock;

use crate::StoreError;
use crate::calllog::{CallLog, KeyedRecord, RecordKey, Retention};
use crate::codec;
use crate::load::{LoadProbe, ProcStat};
use crate::spool::{self, Segment, SpoolReader, SpoolWriter};
use crate::time::{Throttle, now};

/// How the writer batches, spools and cleans up.
#[derive(Clone)]
pub struct WriterConfig {
    /// Most records per store transaction; the writer thread also takes
    /// the inbox as soon as this many records wait in it.
    pub batch_size: usize,
    /// Longest a record waits in the inbox for the writer thread.
    pub batch_wait: Duration,
    /// Most records waiting in the inbox; past it records are dropped (the
    /// writer thread is not keeping up).
    pub queue_capacity: usize,
    /// Most bytes waiting in the inbox (encoded records); past it records
    /// are dropped.
    pub queue_max_bytes: usize,
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
    /// CPU priority (`SCHED_IDLE`, else `nice` 19), so that under CPU saturation records wait
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
            .field("queue_capacity", &self.queue_capacity)
            .field("queue_max_bytes", &self.queue_max_bytes)
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
    /// Defaults: batches of 1,000 or 100 ms; up to 65,536 records or
    /// 64 MiB in the inbox; a 1 GiB spool in 64 MiB segments,
    /// sealed after 200 ms; retry after 1 s; retention (none set) every
    /// 60 s; the indexer at background priority, waiting while the CPUs
    /// are busy ([`Defer::new`]).
    pub fn new(spool_dir: impl Into<PathBuf>, clock: Arc<dyn Clock>) -> Self {
        WriterConfig {
            batch_size: 1_000,
            batch_wait: Duration::from_millis(100),
            queue_capacity: 65_536,
            queue_max_bytes: 64 << 20,
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
    /// Records lost: spool at its limit, spool unwritable, inbox full,
    /// sent after shutdown, or spool frames unreadable.
    pub dropped: u64,
    /// Failed store calls.
    pub store_errors: u64,
    /// Bytes waiting in the spool.
    pub spool_bytes: u64,
    /// Records waiting in the inbox for the writer thread.
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
    /// This writer's id, the first half of every record key.
    writer_id: i64,
    /// The last sequence number given out.
    seq: AtomicI64,
    /// Encoded records on their way to the writer thread.
    inbox: Mutex<Inbox>,
    /// Inbox limits and the count that wakes the writer thread early.
    queue_capacity: u64,
    queue_max_bytes: usize,
    nudge_at: u64,
}

impl Shared {
    fn snapshot(&self) -> Counters {
        Counters {
            queued: self.queued.load(Relaxed),
            written: self.written.load(Relaxed),
            spooled: self.spooled.load(Relaxed),
            replayed: self.replayed.load(Relaxed),
            duplicates: self.duplicates.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            store_errors: self.store_errors.load(Relaxed),
            spool_bytes: self.spool_bytes.load(Relaxed),
            backlog: self.inbox().records,
            deferring: self.deferring.load(Relaxed),
        }
    }

    /// The inbox; a panic while it was held leaves whole frames in it
    /// (bytes are appended in one copy), so a poisoned lock is used as is.
    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes everything in the inbox, leaving `spare` (emptied) in its
    /// place so that its capacity is reused.
    fn take_inbox(&self, mut spare: Vec<u8>) -> Chunk {
        spare.clear();
        let mut inbox = self.inbox();
        let bytes = std::mem::replace(&mut inbox.bytes, spare);
        let records = std::mem::take(&mut inbox.records);
        inbox.nudged = false;
        Chunk { bytes, records }
    }
}

/// Encoded records waiting for the writer thread.
#[derive(Debug, Default)]
struct Inbox {
    /// Whole frames ([`codec::encode`]), in the order they were sent.
    bytes: Vec<u8>,
    records: u64,
    /// The writer thread was woken since it last took the inbox.
    nudged: bool,
}

/// Encoded records moving between the threads as one piece: taken from
/// the inbox, handed to the indexer, given back to be spooled.
#[derive(Debug, Default)]
struct Chunk {
    bytes: Vec<u8>,
    records: u64,
}

thread_local! {
    /// Each sending thread encodes here before the one copy into the inbox
    /// (so the inbox lock is held only for the copy).
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A scratch buffer that grew past this (a record with a large captured
/// body) is given back instead of kept per thread.
const SCRATCH_KEEP: usize = 64 << 10;

/// What became of a sent record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// In the inbox, on its way to the store or the spool.
    Queued,
    /// Lost (the inbox is full, or the writer has stopped); counted.
    Dropped,
}

/// The request path's end: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct RecordSender {
    /// Wakes the writer thread before its tick when a batch is ready.
    nudge: Sender<()>,
    shared: Arc<Shared>,
}

impl RecordSender {
    /// Hands a record to the writer without waiting: encodes it on this
    /// thread and appends it to the inbox, or drops it (counted) when the
    /// inbox is full or the writer has stopped.
    pub fn send(&self, record: impl std::borrow::Borrow<CallRecord>) -> Delivery {
        let record = record.borrow();
        let shared = &*self.shared;
        if shared.stopped.load(Relaxed) {
            return self.dropped_after_stop();
        }
        let key = RecordKey {
            writer: shared.writer_id,
            seq: shared.seq.fetch_add(1, Relaxed) + 1,
        };
        let taken = SCRATCH.with_borrow_mut(|buf| {
            buf.clear();
            codec::encode(key, record, buf);
            let nudge = {
                let mut inbox = shared.inbox();
                if inbox.records >= shared.queue_capacity
                    || inbox.bytes.len() + buf.len() > shared.queue_max_bytes
                {
                    None
                } else {
                    inbox.bytes.extend_from_slice(buf);
                    inbox.records += 1;
                    let nudge = inbox.records >= shared.nudge_at && !inbox.nudged;
                    inbox.nudged |= nudge;
                    Some(nudge)
                }
            };
            if buf.capacity() > SCRATCH_KEEP {
                *buf = Vec::new();
            }
            nudge
        });
        match taken {
            Some(nudge) => {
                shared.queued.fetch_add(1, Relaxed);
                if nudge {
                    // Full means a wake-up is already pending.
                    let _ = self.nudge.try_send(());
                }
                Delivery::Queued
            }
            None => {
                // The writer logs drops (once a minute).
                shared.dropped.fetch_add(1, Relaxed);
                Delivery::Dropped
            }
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
        self.shared.snapshot()
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
}

impl WriterHandle {
    /// The writer's counters now.
    pub fn counters(&self) -> Counters {
        self.shared.snapshot()
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
        // the inbox are stored by the writer before it ends.
        self.shared.stopped.store(true, Relaxed);
        let _ = self.stop.try_send(());
        let joined = thread.join();
        // A record that slipped in while the writer was finishing.
        let late = self.shared.take_inbox(Vec::new()).records;
        if late > 0 {
            self.shared.dropped.fetch_add(late, Relaxed);
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

/// Chunks waiting for the indexer before the writer spools instead.
const HANDOFF_CHUNKS: usize = 2;

/// Longest the writer waits for room in the hand-off (an indexer storing a
/// batch of 1,000 needs about 15 ms here). Bounded: an indexer that the
/// scheduler keeps waiting may never make room while records pile up in
/// the inbox; once the writer sees the CPUs busy it stops handing over
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
            writer_id: random_writer_id(),
            seq: AtomicI64::new(0),
            inbox: Mutex::new(Inbox::default()),
            queue_capacity: config.queue_capacity.max(1) as u64,
            queue_max_bytes: config.queue_max_bytes.max(1),
            nudge_at: config.batch_size.max(1) as u64,
        });
        let (nudge_tx, nudge_rx) = bounded(1);
        let (stop_tx, stop_rx) = bounded(1);
        // A chunk or two in hand-off (a short burst need not touch the
        // spool); past them the writer spools.
        let (hand_tx, hand_rx) = bounded(HANDOFF_CHUNKS);
        let (seg_tx, seg_rx) = unbounded();
        let (back_tx, back_rx) = unbounded();
        // Emptied chunk buffers go back to the writer, so the inbox keeps
        // warm memory instead of faulting in new pages on the request path.
        let (recycle_tx, recycle_rx) = bounded(HANDOFF_CHUNKS + 1);
        let t = now();
        let indexer = Indexer {
            store: Box::new(store),
            spool: spool_r,
            handoff: hand_rx,
            segments: seg_rx,
            back: back_tx,
            recycle: recycle_tx,
            shared: Arc::clone(&shared),
            store_ok: true,
            retry_at: t,
            last_chunk: 0,
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
            nudge: nudge_rx,
            stop: stop_rx,
            handoff: Some(hand_tx),
            segments: Some(seg_tx),
            back: back_rx,
            recycle: recycle_rx,
            spare: Vec::new(),
            indexer: Some(indexer),
            shared: Arc::clone(&shared),
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
                nudge: nudge_tx,
                shared: Arc::clone(&shared),
            },
            WriterHandle {
                stop: stop_tx,
                thread: Some(thread),
                shared,
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

/// The writer thread: takes the inbox, hands it over or spools it.
struct Worker {
    spool: SpoolWriter,
    nudge: Receiver<()>,
    stop: Receiver<()>,
    /// To the indexer; dropped at shutdown (the indexer then finishes).
    handoff: Option<Sender<Chunk>>,
    segments: Option<Sender<Segment>>,
    /// Chunks the indexer could not store.
    back: Receiver<Chunk>,
    /// Buffers of chunks the indexer stored.
    recycle: Receiver<Vec<u8>>,
    /// The buffer the inbox gets next.
    spare: Vec<u8>,
    indexer: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
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
        loop {
            let stop = self.wait();
            self.spool_returned();
            self.take_and_flush();
            if stop {
                self.finish();
                return;
            }
            self.look_at_the_load(now());
            // Sealed, a segment can be replayed: when it is old enough, or
            // at once when the indexer has nothing else to do (it took every
            // chunk handed over and is not waiting for the CPUs), so a
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

    /// Sleeps until the tick, a nudge (a batch waits in the inbox), a
    /// chunk given back, or the stop. True when the writer should stop.
    ///
    /// The writer never wakes per record: woken by every `send`, the
    /// request path would pay a futex call and a context switch per
    /// request (measured, that was most of the call log's cost); a tick
    /// costs one wake-up, and a record waits at most a tick.
    fn wait(&mut self) -> bool {
        let tick = self
            .config
            .batch_wait
            .min(self.config.seal_after)
            .clamp(Duration::from_millis(5), Duration::from_secs(1));
        select! {
            recv(self.stop) -> _ => true,
            // Every sender gone: nothing more can come.
            recv(self.nudge) -> n => n.is_err(),
            recv(self.back) -> c => {
                if let Ok(c) = c {
                    self.spool_chunk(c);
                }
                false
            },
            default(tick) => false,
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

    /// Takes what waits in the inbox and hands it over or spools it.
    fn take_and_flush(&mut self) {
        let spare = self
            .recycle
            .try_iter()
            .last()
            .unwrap_or_else(|| std::mem::take(&mut self.spare));
        let chunk = self.shared.take_inbox(spare);
        if chunk.records == 0 {
            self.spare = chunk.bytes;
            return;
        }
        self.flush(chunk);
    }

    /// Chunks the indexer could not store go to the spool.
    fn spool_returned(&mut self) {
        while let Ok(c) = self.back.try_recv() {
            self.spool_chunk(c);
        }
    }

    /// Hands a chunk to the indexer when it is free (or frees up within
    /// [`HANDOFF_WAIT`]) and the store works and the CPUs are not busy;
    /// spools it otherwise.
    fn flush(&mut self, chunk: Chunk) {
        let mut chunk = chunk;
        if self.shared.store_ok.load(Relaxed)
            && !self.shared.deferring.load(Relaxed)
            && let Some(handoff) = &self.handoff
        {
            // Wait a little for the indexer (the request path does not wait:
            // the inbox in front of the writer absorbs it); a chunk that
            // still finds it busy goes to the spool. Without the wait a
            // burst would take the longer way through the spool though the
            // indexer is about to be free.
            match handoff.send_timeout(chunk, self.config.batch_wait.min(HANDOFF_WAIT)) {
                Ok(()) => return,
                Err(e) => chunk = e.into_inner(),
            }
        }
        self.spool_chunk(chunk);
    }

    fn spool_chunk(&mut self, chunk: Chunk) {
        if chunk.records == 0 {
            return;
        }
        let appended = self
            .spool
            .append_encoded(&chunk.bytes, chunk.records, now());
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
                self.shared.dropped.fetch_add(chunk.records, Relaxed);
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
        // Keep the larger buffer for the inbox.
        if chunk.bytes.capacity() > self.spare.capacity() {
            self.spare = chunk.bytes;
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

    /// Shutdown: what is still in the inbox is handed over or spooled,
    /// the active segment sealed; then the indexer stores what it was given
    /// and replays the spool if the store works, and what it gives back
    /// stays spooled for the next start.
    fn finish(&mut self) {
        self.spool_returned();
        self.take_and_flush();
        self.spool_returned();
        self.seal();
        // The indexer finishes once its inputs are closed.
        self.handoff = None;
        self.segments = None;
        let mut returned = false;
        while let Ok(c) = self.back.recv() {
            self.spool_chunk(c);
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
        let c = self.shared.snapshot();
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
    handoff: Receiver<Chunk>,
    segments: Receiver<Segment>,
    back: Sender<Chunk>,
    recycle: Sender<Vec<u8>>,
    shared: Arc<Shared>,
    store_ok: bool,
    retry_at: Instant,
    /// Records in the last chunk handed over (see `maintain`).
    last_chunk: u64,
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
                recv(self.handoff) -> c => match c {
                    Ok(c) => self.store_chunk(c),
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

    /// Stores a handed-over chunk in transactions of `batch_size`; what
    /// is not stored when the store fails is given back to be spooled.
    fn store_chunk(&mut self, chunk: Chunk) {
        self.last_chunk = chunk.records;
        let size = self.config.batch_size.max(1);
        let mut batch = Vec::with_capacity(size.min(chunk.records as usize));
        // Where the batch being built starts in the chunk.
        let mut batch_start = 0;
        let mut frames = codec::frames(&chunk.bytes).peekable();
        while frames.peek().is_some() {
            batch.clear();
            let mut corrupt = 0;
            for frame in frames.by_ref().take(size) {
                // Encoded in this process a moment ago: damage here is a bug.
                match codec::decode_frame(&chunk.bytes[frame]) {
                    Ok(k) => batch.push(k),
                    Err(_) => corrupt += 1,
                }
            }
            if corrupt > 0 {
                tracing::error!(
                    records = corrupt,
                    "call records unreadable in memory: dropped"
                );
                self.shared.dropped.fetch_add(corrupt, Relaxed);
            }
            let batch_end = frames.peek().map_or(chunk.bytes.len(), |f| f.start);
            if batch.is_empty() {
                batch_start = batch_end;
                continue;
            }
            if let Err(e) = self.store_batch(&batch) {
                self.failed(&e);
                let rest = Chunk {
                    bytes: chunk.bytes[batch_start..].to_vec(),
                    records: codec::frames(&chunk.bytes[batch_start..]).count() as u64,
                };
                if let Err(c) = self.back.send(rest) {
                    // The writer is gone (it never leaves before the
                    // indexer; this is a last resort).
                    self.shared.dropped.fetch_add(c.0.records, Relaxed);
                }
                return;
            }
            batch_start = batch_end;
        }
        drop(frames);
        let mut bytes = chunk.bytes;
        bytes.clear();
        let _ = self.recycle.try_send(bytes);
    }

    /// Stores one batch straight from the writer (counted as written).
    fn store_batch(&mut self, batch: &[KeyedRecord]) -> Result<(), StoreError> {
        let n = self.store.append(batch)?;
        self.recovered();
        self.shared.written.fetch_add(n as u64, Relaxed);
        let dup = batch.len().saturating_sub(n) as u64;
        if dup > 0 {
            self.shared.duplicates.fetch_add(dup, Relaxed);
        }
        Ok(())
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
            // New chunks go first, but not always: under steady traffic a
            // chunk may wait in the hand-off whenever the indexer looks, and
            // the spool would never shrink. So at least as many spooled
            // records as the last chunk brought are replayed each time.
            let owed = self.last_chunk.max(self.config.batch_size.max(1) as u64);
            let mut replayed = 0;
            while !self.spool.is_empty()
                && (all || replayed < owed || self.handoff.is_empty())
                && let Some(n) = self.replay_chunk()
            {
                replayed += n;
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

    /// Stores one chunk of the spool; how many records it held, or `None`
    /// when nothing more can be done now (store failed, spool unreadable).
    fn replay_chunk(&mut self) -> Option<u64> {
        let chunk = match self.spool.read_chunk(self.config.batch_size.max(1)) {
            Ok(c) => c,
            Err(e) => {
                if self.error_log.ready(now()) {
                    tracing::error!("call-log spool unreadable: {e}");
                }
                return None;
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
            return Some(chunk.corrupt);
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
                Some(chunk.records.len() as u64)
            }
            Err(e) => {
                self.spool.nack();
                self.failed(&e);
                None
            }
        }
    }

    /// Shutdown: what was handed over is stored (or given back), then the
    /// spool is replayed if the store works.
    fn finish(&mut self) {
        self.shared.deferring.store(false, Relaxed);
        while let Ok(c) = self.handoff.try_recv() {
            self.store_chunk(c);
        }
        self.take_segments();
        // One more try even if the store failed a moment ago.
        self.retry_at = now();
        self.maintain(true);
    }
}
