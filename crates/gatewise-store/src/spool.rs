//! The spool: an append-only directory of segments where records wait
//! until the store has them.
//!
//! Segments are named by a rising number (`0000000000000001.seg`, ...) and
//! hold framed binary records ([`crate::codec`]); segments of older builds
//! (`.jsonl`, one JSON record per line) are still read. The spool has two
//! halves, one per thread, that share only the directory, the lock and a
//! byte count: the writer thread's [`SpoolWriter`] appends to the active
//! segment and seals it (by size, by age, or when the indexer could take
//! it); the indexer thread's [`SpoolReader`] replays sealed segments in
//! chunks, oldest first, and deletes each once all of it is stored. Neither
//! waits on the other (no lock is shared), so an indexer that the scheduler
//! keeps waiting never holds up the writer. A writer never appends to a
//! segment it did not create, so a frame torn by a crash stays at the end of
//! its segment, where replay skips it.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use gatewise_core::calllog::CallRecord;
use serde::Deserialize;

use crate::StoreError;
use crate::calllog::{KeyedRecord, RecordKey};
use crate::codec;

/// One line of a segment written by an older build (JSON lines).
#[derive(Deserialize)]
struct Line {
    w: i64,
    s: i64,
    r: CallRecord,
}

/// How a segment's records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// Framed binary records ([`codec`]).
    Binary,
    /// JSON lines (older builds).
    JsonLines,
}

/// A segment on disk.
#[derive(Debug)]
pub(crate) struct Segment {
    path: PathBuf,
    bytes: u64,
    format: Format,
}

#[derive(Debug)]
struct Active {
    seg: Segment,
    file: File,
    opened: Instant,
}

/// What an append did.
#[derive(Debug, Default)]
pub(crate) struct Appended {
    /// Records written (and synced).
    pub(crate) spooled: u64,
    /// Records left out because the spool is at its size limit.
    pub(crate) dropped: u64,
    /// A segment sealed because the active one was full, for the reader.
    pub(crate) sealed: Option<Segment>,
}

/// A chunk read for replay.
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    pub(crate) records: Vec<KeyedRecord>,
    /// Records that could not be read back (torn by a crash, damaged).
    pub(crate) corrupt: u64,
}

/// The writer thread's half: appends and seals.
#[derive(Debug)]
pub(crate) struct SpoolWriter {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    active: Option<Active>,
    next_number: u64,
    total: Arc<AtomicU64>,
    _lock: Arc<File>,
}

/// The indexer thread's half: replays sealed segments.
#[derive(Debug)]
pub(crate) struct SpoolReader {
    sealed: VecDeque<Segment>,
    /// Replayed bytes of the oldest sealed segment.
    read_offset: u64,
    /// The offset after the chunk last read, until it is acknowledged.
    pending_offset: Option<u64>,
    total: Arc<AtomicU64>,
    _lock: Arc<File>,
}

fn segment_number(path: &Path) -> Option<(u64, Format)> {
    let name = path.file_name()?.to_str()?;
    let (digits, format) = if let Some(d) = name.strip_suffix(".seg") {
        (d, Format::Binary)
    } else {
        (name.strip_suffix(".jsonl")?, Format::JsonLines)
    };
    (digits.len() == 16 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok().map(|n| (n, format)))
        .flatten()
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> StoreError {
    move |e| StoreError::io(context, e)
}

/// Opens (creating) the spool directory and takes its lock; segments left
/// by an earlier run go to the reader for replay.
pub(crate) fn open(
    dir: &Path,
    max_bytes: u64,
    segment_bytes: u64,
) -> Result<(SpoolWriter, SpoolReader), StoreError> {
    fs::create_dir_all(dir).map_err(io(format!("creating spool {}", dir.display())))?;
    let lock_path = dir.join("lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(format!("opening {}", lock_path.display())))?;
    lock.try_lock().map_err(|_| {
        StoreError::io(
            format!("locking {}", lock_path.display()),
            std::io::Error::other("another writer uses this spool"),
        )
    })?;
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(format!("reading {}", dir.display())))? {
        let entry = entry.map_err(io(format!("reading {}", dir.display())))?;
        let path = entry.path();
        if let Some((n, format)) = segment_number(&path) {
            let bytes = entry.metadata().map(|m| m.len()).unwrap_or(0);
            found.push((
                n,
                Segment {
                    path,
                    bytes,
                    format,
                },
            ));
        }
    }
    found.sort_by_key(|(n, _)| *n);
    let next_number = found.last().map_or(1, |(n, _)| n + 1);
    let mut sealed = VecDeque::new();
    let mut total_bytes = 0;
    for (_, seg) in found {
        if seg.bytes == 0 {
            let _ = fs::remove_file(&seg.path);
        } else {
            total_bytes += seg.bytes;
            sealed.push_back(seg);
        }
    }
    let total = Arc::new(AtomicU64::new(total_bytes));
    let lock = Arc::new(lock);
    Ok((
        SpoolWriter {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_bytes: segment_bytes.max(1),
            active: None,
            next_number,
            total: Arc::clone(&total),
            _lock: Arc::clone(&lock),
        },
        SpoolReader {
            sealed,
            read_offset: 0,
            pending_offset: None,
            total,
            _lock: lock,
        },
    ))
}

impl SpoolWriter {
    /// The byte count both halves keep (for the writer's counters).
    pub(crate) fn total(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.total)
    }

    /// Bytes on disk in segments not yet fully replayed.
    pub(crate) fn bytes(&self) -> u64 {
        self.total.load(Relaxed)
    }

    /// True when the active segment has records.
    pub(crate) fn has_records(&self) -> bool {
        self.active.as_ref().is_some_and(|a| a.seg.bytes > 0)
    }

    /// True when the active segment has records and was opened at least
    /// `age` ago.
    pub(crate) fn active_older_than(&self, age: std::time::Duration, now: Instant) -> bool {
        self.active
            .as_ref()
            .is_some_and(|a| a.seg.bytes > 0 && now.saturating_duration_since(a.opened) >= age)
    }

    /// Appends the records (as far as the size limit allows); they are
    /// synced to disk when the segment is sealed. On error nothing of the
    /// batch is kept.
    #[cfg(test)]
    pub(crate) fn append(
        &mut self,
        batch: &[KeyedRecord],
        now: Instant,
    ) -> Result<Appended, StoreError> {
        let mut buf = Vec::new();
        for k in batch {
            codec::encode_keyed(k, &mut buf);
        }
        self.append_encoded(&buf, batch.len() as u64, now)
    }

    /// Appends `records` already [`codec::encode`]d records, as far as
    /// the size limit allows (whole frames, in order; the rest is counted
    /// as dropped). They are synced to disk when the segment is sealed. On
    /// error nothing of them is kept.
    pub(crate) fn append_encoded(
        &mut self,
        bytes: &[u8],
        records: u64,
        now: Instant,
    ) -> Result<Appended, StoreError> {
        let mut out = Appended::default();
        let room = self.max_bytes.saturating_sub(self.bytes());
        let fits = if bytes.len() as u64 <= room {
            out.spooled = records;
            bytes.len()
        } else {
            let mut end = 0;
            for frame in codec::frames(bytes) {
                if frame.end as u64 > room {
                    break;
                }
                end = frame.end;
                out.spooled += 1;
            }
            out.dropped = records.saturating_sub(out.spooled);
            end
        };
        self.write(&bytes[..fits], now, &mut out)?;
        Ok(out)
    }

    fn write(&mut self, buf: &[u8], now: Instant, out: &mut Appended) -> Result<(), StoreError> {
        if buf.is_empty() {
            return Ok(());
        }
        if self
            .active
            .as_ref()
            .is_some_and(|a| a.seg.bytes >= self.segment_bytes)
        {
            out.sealed = self.seal();
        }
        let active = match self.active.take() {
            Some(a) => a,
            None => self.new_segment(now)?,
        };
        let Active {
            seg,
            mut file,
            opened,
        } = active;
        // Synced when sealed (at most `seal_after` later), as SQLite in WAL
        // mode with `synchronous=NORMAL` syncs at checkpoints, not per
        // commit: a crash of the process loses nothing written here; a
        // crash of the machine, at most that interval.
        let written = file
            .write_all(buf)
            .map_err(io(format!("writing {}", seg.path.display())));
        match written {
            Ok(()) => {
                let bytes = seg.bytes + buf.len() as u64;
                self.total.fetch_add(buf.len() as u64, Relaxed);
                self.active = Some(Active {
                    seg: Segment { bytes, ..seg },
                    file,
                    opened,
                });
                Ok(())
            }
            Err(e) => {
                // Cut off what may have been written, and never append to
                // this segment again.
                let _ = file.set_len(seg.bytes);
                if seg.bytes > 0 {
                    // The reader gets it through the sealed segment of this
                    // append (the caller hands it over).
                    if out.sealed.is_none() {
                        out.sealed = Some(seg);
                    }
                } else {
                    let _ = fs::remove_file(&seg.path);
                }
                Err(e)
            }
        }
    }

    fn new_segment(&mut self, now: Instant) -> Result<Active, StoreError> {
        let path = self.dir.join(format!("{:016}.seg", self.next_number));
        self.next_number += 1;
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(io(format!("creating {}", path.display())))?;
        // Make the new name itself durable.
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(Active {
            seg: Segment {
                path,
                bytes: 0,
                format: Format::Binary,
            },
            file,
            opened: now,
        })
    }

    /// Closes the active segment (synced to disk); a non-empty one is
    /// returned for the reader.
    pub(crate) fn seal(&mut self) -> Option<Segment> {
        let a = self.active.take()?;
        if a.seg.bytes > 0 {
            if let Err(e) = a.file.sync_data() {
                tracing::warn!("syncing {}: {e}", a.seg.path.display());
            }
            Some(a.seg)
        } else {
            let _ = fs::remove_file(&a.seg.path);
            None
        }
    }
}

impl SpoolReader {
    /// A sealed segment to replay after those already known.
    pub(crate) fn push(&mut self, seg: Segment) {
        self.sealed.push_back(seg);
    }

    /// True when no sealed segment waits for replay.
    pub(crate) fn is_empty(&self) -> bool {
        self.sealed.is_empty()
    }

    /// Bytes on disk in segments not yet fully replayed (both halves).
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> u64 {
        self.total.load(Relaxed)
    }

    /// Reads up to `max` records from the oldest sealed segment. The
    /// position moves on only with [`SpoolReader::ack`]; without it the
    /// same chunk is read again.
    pub(crate) fn read_chunk(&mut self, max: usize) -> Result<Chunk, StoreError> {
        let mut chunk = Chunk::default();
        let Some(seg) = self.sealed.front() else {
            return Ok(chunk);
        };
        let mut file =
            File::open(&seg.path).map_err(io(format!("opening {}", seg.path.display())))?;
        file.seek(SeekFrom::Start(self.read_offset))
            .map_err(io(format!("reading {}", seg.path.display())))?;
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        let read = match seg.format {
            Format::Binary => read_frames(&mut reader, self.read_offset, seg, max, &mut chunk),
            Format::JsonLines => read_lines(&mut reader, self.read_offset, max, &mut chunk),
        };
        let offset = read.map_err(io(format!("reading {}", seg.path.display())))?;
        self.pending_offset = Some(offset);
        Ok(chunk)
    }

    /// The chunk last read is stored: move past it, and delete the segment
    /// once it is all replayed.
    pub(crate) fn ack(&mut self) {
        let Some(offset) = self.pending_offset.take() else {
            return;
        };
        self.read_offset = offset;
        if let Some(seg) = self.sealed.front()
            && offset >= seg.bytes
        {
            let _ = fs::remove_file(&seg.path);
            let _ = self
                .total
                .fetch_update(Relaxed, Relaxed, |t| Some(t.saturating_sub(seg.bytes)));
            self.sealed.pop_front();
            self.read_offset = 0;
        }
    }

    /// The chunk last read was not stored: read it again next time.
    pub(crate) fn nack(&mut self) {
        self.pending_offset = None;
    }
}

/// Reads framed records from `offset`; returns the offset after the last
/// frame read. A frame cut short (a crash while writing) or with an
/// impossible length ends the segment: the rest is counted as one corrupt
/// record and skipped.
fn read_frames(
    reader: &mut BufReader<File>,
    mut offset: u64,
    seg: &Segment,
    max: usize,
    chunk: &mut Chunk,
) -> std::io::Result<u64> {
    let mut payload = Vec::with_capacity(1024);
    while chunk.records.len() < max.max(1) && offset < seg.bytes {
        let mut header = [0u8; codec::HEADER];
        let (len, crc) = match read_full(reader, &mut header)? {
            true => codec::frame_header(header),
            false => {
                chunk.corrupt += 1;
                return Ok(seg.bytes);
            }
        };
        if len > codec::MAX_PAYLOAD {
            chunk.corrupt += 1;
            return Ok(seg.bytes);
        }
        payload.resize(len, 0);
        if !read_full(reader, &mut payload)? {
            chunk.corrupt += 1;
            return Ok(seg.bytes);
        }
        offset += (codec::HEADER + len) as u64;
        match codec::decode(&payload, crc) {
            Ok(k) => chunk.records.push(k),
            Err(_) => chunk.corrupt += 1,
        }
    }
    Ok(offset)
}

/// Fills `buf`; false when the file ended first.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..])? {
            0 => return Ok(false),
            n => got += n,
        }
    }
    Ok(true)
}

/// Reads JSON lines (segments of older builds) from `offset`.
fn read_lines(
    reader: &mut BufReader<File>,
    mut offset: u64,
    max: usize,
    chunk: &mut Chunk,
) -> std::io::Result<u64> {
    let mut line = Vec::with_capacity(1024);
    while chunk.records.len() < max.max(1) {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        offset += n as u64;
        if line.last() != Some(&b'\n') {
            chunk.corrupt += 1;
            continue;
        }
        match serde_json::from_slice::<Line>(&line) {
            Ok(l) => chunk.records.push(KeyedRecord {
                key: RecordKey {
                    writer: l.w,
                    seq: l.s,
                },
                record: l.r,
            }),
            Err(_) => chunk.corrupt += 1,
        }
    }
    Ok(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: i64) -> KeyedRecord {
        KeyedRecord {
            key: RecordKey { writer: 7, seq },
            record: CallRecord::new(format!("r{seq}"), seq as u64, "GET", "/"),
        }
    }

    fn t() -> Instant {
        crate::time::now()
    }

    /// Seals what is written and replays everything, as the indexer would.
    fn drain(w: &mut SpoolWriter, r: &mut SpoolReader) -> Vec<i64> {
        if let Some(seg) = w.seal() {
            r.push(seg);
        }
        let mut seen = Vec::new();
        while !r.is_empty() {
            let c = r.read_chunk(3).unwrap();
            seen.extend(c.records.iter().map(|r| r.key.seq));
            r.ack();
        }
        seen
    }

    fn segments(dir: &Path) -> Vec<u64> {
        fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| segment_number(&e.unwrap().path()).map(|(n, _)| n))
            .collect()
    }

    #[test]
    fn appends_rotates_and_replays_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, mut r) = open(dir.path(), 1 << 20, 300).unwrap();
        let mut sealed = 0;
        for s in 0..10 {
            let a = w.append(&[rec(s * 2), rec(s * 2 + 1)], t()).unwrap();
            assert_eq!(a.spooled, 2);
            if let Some(seg) = a.sealed {
                r.push(seg);
                sealed += 1;
            }
        }
        assert!(sealed > 1, "rotated {sealed} times");
        assert_eq!(drain(&mut w, &mut r), (0..20).collect::<Vec<_>>());
        assert_eq!(w.bytes(), 0);
        assert_eq!(r.bytes(), 0);
        assert!(segments(dir.path()).is_empty());
    }

    #[test]
    fn nack_reads_the_same_chunk_again() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, mut r) = open(dir.path(), 1 << 20, 1 << 20).unwrap();
        w.append(&[rec(1), rec(2), rec(3), rec(4)], t()).unwrap();
        r.push(w.seal().unwrap());
        let a = r.read_chunk(2).unwrap();
        r.nack();
        let b = r.read_chunk(2).unwrap();
        assert_eq!(a.records, b.records);
        r.ack();
        let c = r.read_chunk(10).unwrap();
        assert_eq!(
            c.records.iter().map(|r| r.key.seq).collect::<Vec<_>>(),
            [3, 4]
        );
    }

    #[test]
    fn size_limit_drops() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _r) = open(dir.path(), 400, 1 << 20).unwrap();
        let batch: Vec<_> = (0..20).map(rec).collect();
        let a = w.append(&batch, t()).unwrap();
        assert!(a.spooled > 0 && a.dropped > 0, "{a:?}");
        assert_eq!(a.spooled + a.dropped, 20);
        assert!(w.bytes() <= 400);
    }

    #[test]
    fn survives_reopen_and_skips_torn_frames() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut w, _r) = open(dir.path(), 1 << 20, 1 << 20).unwrap();
            w.append(&[rec(1), rec(2)], t()).unwrap();
        }
        // A crash in the middle of a frame.
        let seg = dir.path().join(format!("{:016}.seg", 1));
        let whole = fs::read(&seg).unwrap();
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&whole[..codec::HEADER + 5]).unwrap();
        drop(f);
        let (mut w, mut r) = open(dir.path(), 1 << 20, 1 << 20).unwrap();
        w.append(&[rec(4)], t()).unwrap();
        let c = r.read_chunk(10).unwrap();
        assert_eq!(c.corrupt, 1);
        assert_eq!(
            c.records.iter().map(|r| r.key.seq).collect::<Vec<_>>(),
            [1, 2]
        );
        r.ack();
        assert_eq!(drain(&mut w, &mut r), [4]);
    }

    #[test]
    fn reads_json_lines_segments_of_older_builds() {
        let dir = tempfile::tempdir().unwrap();
        let line = |seq: i64| {
            let r = rec(seq);
            format!(
                "{{\"w\":7,\"s\":{seq},\"r\":{}}}\n",
                serde_json::to_string(&r.record).unwrap()
            )
        };
        let text = format!("{}{}{{\"w\":7,\"s\":3,\"r\":{{\"v\"", line(1), line(2));
        fs::write(dir.path().join(format!("{:016}.jsonl", 4)), text).unwrap();
        let (mut w, mut r) = open(dir.path(), 1 << 20, 1 << 20).unwrap();
        // New segments continue the numbering.
        w.append(&[rec(5)], t()).unwrap();
        assert!(dir.path().join(format!("{:016}.seg", 5)).exists());
        let c = r.read_chunk(10).unwrap();
        assert_eq!(c.corrupt, 1);
        assert_eq!(
            c.records.iter().map(|r| r.key.seq).collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(c.records[0], rec(1));
        r.ack();
        assert_eq!(drain(&mut w, &mut r), [5]);
        assert!(segments(dir.path()).is_empty());
    }

    #[test]
    fn one_writer_per_directory() {
        let dir = tempfile::tempdir().unwrap();
        let _a = open(dir.path(), 1 << 20, 1 << 20).unwrap();
        assert!(open(dir.path(), 1 << 20, 1 << 20).is_err());
    }
}
