//! The spool: an append-only directory of JSON-lines segments where records
//! wait while the store cannot take them.
//!
//! Segments are named by a rising number (`0000000000000001.jsonl`, ...).
//! Only the writer thread touches the spool (a lock file keeps a second
//! writer out). Appends go to the active segment and are `fsync`ed per
//! batch; replay reads the oldest sealed segment in chunks and deletes it
//! once all of it is stored. A writer never appends to a segment it did not
//! create, so a line torn by a crash stays at the end of its segment, where
//! replay skips it.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use gatewise_core::calllog::CallRecord;
use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::calllog::{KeyedRecord, RecordKey};

/// One line of a segment.
#[derive(Deserialize)]
struct Line {
    w: i64,
    s: i64,
    r: CallRecord,
}

#[derive(Serialize)]
struct LineRef<'a> {
    w: i64,
    s: i64,
    r: &'a CallRecord,
}

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    bytes: u64,
}

#[derive(Debug)]
struct Active {
    seg: Segment,
    file: File,
}

/// What an append did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Appended {
    /// Records written (and synced).
    pub(crate) spooled: u64,
    /// Records left out because the spool is at its size limit.
    pub(crate) dropped: u64,
}

/// A chunk read for replay.
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    pub(crate) records: Vec<KeyedRecord>,
    /// Lines that could not be read back (torn by a crash).
    pub(crate) corrupt: u64,
}

#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    sealed: VecDeque<Segment>,
    active: Option<Active>,
    /// Replayed bytes of the oldest sealed segment.
    read_offset: u64,
    /// The offset after the chunk last read, until it is acknowledged.
    pending_offset: Option<u64>,
    total_bytes: u64,
    next_number: u64,
    _lock: File,
}

fn segment_number(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    let digits = name.strip_suffix(".jsonl")?;
    (digits.len() == 16 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> StoreError {
    move |e| StoreError::io(context, e)
}

impl Spool {
    /// Opens (creating) the spool directory and takes its lock; segments
    /// left by an earlier run are kept for replay.
    pub(crate) fn open(dir: &Path, max_bytes: u64, segment_bytes: u64) -> Result<Self, StoreError> {
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
            if let Some(n) = segment_number(&path) {
                let bytes = entry.metadata().map(|m| m.len()).unwrap_or(0);
                found.push((n, Segment { path, bytes }));
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
        Ok(Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_bytes: segment_bytes.max(1),
            sealed,
            active: None,
            read_offset: 0,
            pending_offset: None,
            total_bytes,
            next_number,
            _lock: lock,
        })
    }

    /// Bytes on disk in segments not yet fully replayed.
    pub(crate) fn bytes(&self) -> u64 {
        self.total_bytes
    }

    /// True when nothing waits for replay.
    pub(crate) fn is_empty(&self) -> bool {
        self.total_bytes == 0
    }

    /// Appends the records (as far as the size limit allows) and syncs
    /// them to disk. On error nothing of the batch is kept.
    pub(crate) fn append(&mut self, batch: &[KeyedRecord]) -> Result<Appended, StoreError> {
        let mut out = Appended::default();
        let mut buf = Vec::with_capacity(batch.len() * 512);
        for k in batch {
            let start = buf.len();
            let line = LineRef {
                w: k.key.writer,
                s: k.key.seq,
                r: &k.record,
            };
            if serde_json::to_writer(&mut buf, &line).is_err() {
                buf.truncate(start);
                out.dropped += 1;
                continue;
            }
            buf.push(b'\n');
            if self.total_bytes + buf.len() as u64 > self.max_bytes {
                buf.truncate(start);
                out.dropped += 1;
                continue;
            }
            out.spooled += 1;
        }
        if buf.is_empty() {
            return Ok(out);
        }
        if self
            .active
            .as_ref()
            .is_some_and(|a| a.seg.bytes >= self.segment_bytes)
        {
            self.seal();
        }
        let active = match self.active.take() {
            Some(a) => a,
            None => self.new_segment()?,
        };
        let Active { seg, mut file } = active;
        let written = file
            .write_all(&buf)
            .and_then(|()| file.sync_data())
            .map_err(io(format!("writing {}", seg.path.display())));
        match written {
            Ok(()) => {
                let bytes = seg.bytes + buf.len() as u64;
                self.total_bytes += buf.len() as u64;
                self.active = Some(Active {
                    seg: Segment {
                        path: seg.path,
                        bytes,
                    },
                    file,
                });
                Ok(out)
            }
            Err(e) => {
                // Cut off what may have been written, and never append to
                // this segment again.
                let _ = file.set_len(seg.bytes);
                if seg.bytes > 0 {
                    self.sealed.push_back(seg);
                } else {
                    let _ = fs::remove_file(&seg.path);
                }
                Err(e)
            }
        }
    }

    fn new_segment(&mut self) -> Result<Active, StoreError> {
        let path = self.dir.join(format!("{:016}.jsonl", self.next_number));
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
            seg: Segment { path, bytes: 0 },
            file,
        })
    }

    fn seal(&mut self) {
        if let Some(a) = self.active.take() {
            if a.seg.bytes > 0 {
                self.sealed.push_back(a.seg);
            } else {
                let _ = fs::remove_file(&a.seg.path);
            }
        }
    }

    /// Reads up to `max` records from the oldest segment, sealing the
    /// active one when it is all there is. The position moves on only with
    /// [`Spool::ack`]; without it the same chunk is read again.
    pub(crate) fn read_chunk(&mut self, max: usize) -> Result<Chunk, StoreError> {
        if self.sealed.is_empty() {
            self.seal();
        }
        let mut chunk = Chunk::default();
        let Some(seg) = self.sealed.front() else {
            return Ok(chunk);
        };
        let mut file =
            File::open(&seg.path).map_err(io(format!("opening {}", seg.path.display())))?;
        file.seek(SeekFrom::Start(self.read_offset))
            .map_err(io(format!("reading {}", seg.path.display())))?;
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        let mut offset = self.read_offset;
        let mut line = Vec::with_capacity(1024);
        while chunk.records.len() < max.max(1) {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(io(format!("reading {}", seg.path.display())))?;
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
            self.total_bytes = self.total_bytes.saturating_sub(seg.bytes);
            self.sealed.pop_front();
            self.read_offset = 0;
        }
    }

    /// The chunk last read was not stored: read it again next time.
    pub(crate) fn nack(&mut self) {
        self.pending_offset = None;
    }
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

    fn drain(spool: &mut Spool) -> Vec<i64> {
        let mut seen = Vec::new();
        loop {
            let c = spool.read_chunk(3).unwrap();
            if c.records.is_empty() && spool.is_empty() {
                break;
            }
            seen.extend(c.records.iter().map(|r| r.key.seq));
            spool.ack();
        }
        seen
    }

    #[test]
    fn appends_rotates_and_replays_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20, 300).unwrap();
        for s in 0..10 {
            let a = spool.append(&[rec(s * 2), rec(s * 2 + 1)]).unwrap();
            assert_eq!(a.spooled, 2);
        }
        assert!(spool.sealed.len() > 1, "rotated: {:?}", spool.sealed);
        assert_eq!(drain(&mut spool), (0..20).collect::<Vec<_>>());
        assert!(spool.is_empty());
        assert_eq!(spool.bytes(), 0);
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| segment_number(&e.unwrap().path()))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn nack_reads_the_same_chunk_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20, 1 << 20).unwrap();
        spool.append(&[rec(1), rec(2), rec(3), rec(4)]).unwrap();
        let a = spool.read_chunk(2).unwrap();
        spool.nack();
        let b = spool.read_chunk(2).unwrap();
        assert_eq!(a.records, b.records);
        spool.ack();
        let c = spool.read_chunk(10).unwrap();
        assert_eq!(
            c.records.iter().map(|r| r.key.seq).collect::<Vec<_>>(),
            [3, 4]
        );
    }

    #[test]
    fn size_limit_drops() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 400, 1 << 20).unwrap();
        let batch: Vec<_> = (0..20).map(rec).collect();
        let a = spool.append(&batch).unwrap();
        assert!(a.spooled > 0 && a.dropped > 0, "{a:?}");
        assert_eq!(a.spooled + a.dropped, 20);
        assert!(spool.bytes() <= 400);
    }

    #[test]
    fn survives_reopen_and_skips_torn_lines() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut spool = Spool::open(dir.path(), 1 << 20, 1 << 20).unwrap();
            spool.append(&[rec(1), rec(2)]).unwrap();
        }
        // A crash in the middle of a line.
        let seg = dir.path().join(format!("{:016}.jsonl", 1));
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(b"{\"w\":7,\"s\":3,\"r\":{\"v\"").unwrap();
        drop(f);
        let mut spool = Spool::open(dir.path(), 1 << 20, 1 << 20).unwrap();
        spool.append(&[rec(4)]).unwrap();
        let c = spool.read_chunk(10).unwrap();
        assert_eq!(c.corrupt, 1);
        assert_eq!(
            c.records.iter().map(|r| r.key.seq).collect::<Vec<_>>(),
            [1, 2]
        );
        spool.ack();
        assert_eq!(drain(&mut spool), [4]);
    }

    #[test]
    fn one_writer_per_directory() {
        let dir = tempfile::tempdir().unwrap();
        let _a = Spool::open(dir.path(), 1 << 20, 1 << 20).unwrap();
        assert!(Spool::open(dir.path(), 1 << 20, 1 << 20).is_err());
    }
}
