//! The call-log store: the [`CallLog`] trait and the values it takes and
//! returns.

use std::fmt;
use std::str::FromStr;

use gatewise_core::calllog::CallRecord;
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// What makes a stored record unique: the writer that accepted it (a random
/// id per [`Writer`](crate::Writer) start) and its sequence number there.
///
/// The request id is not unique: the gateway keeps a client's valid
/// `X-Request-Id`, so a client that reuses one would otherwise have its
/// later calls silently ignored as "duplicates". Replaying a spooled record
/// whose key is already stored inserts nothing, so replays never duplicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecordKey {
    /// The writer's id.
    pub writer: i64,
    /// The record's number within that writer.
    pub seq: i64,
}

/// A record with its key, as stores and the spool take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedRecord {
    /// The record's unique key.
    pub key: RecordKey,
    /// The record.
    pub record: CallRecord,
}

/// A record read back from a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCall {
    /// The store's row id (insertion order).
    pub id: i64,
    /// The record's unique key.
    pub key: RecordKey,
    /// The record.
    pub record: CallRecord,
}

impl StoredCall {
    /// Where a page that ended with this call continues.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            start_ms: self.record.start_ms,
            id: self.id,
        }
    }
}

/// Default page size of [`CallQuery`].
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size of [`CallQuery`].
pub const MAX_LIMIT: u32 = 1_000;

/// Which calls to list. Every filter given must match (`AND`); results
/// come newest first (`start_ms`, then row id, descending).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallQuery {
    /// Calls that started at or after this time (Unix ms).
    pub from_ms: Option<u64>,
    /// Calls that started before this time (Unix ms).
    pub until_ms: Option<u64>,
    /// Route name.
    pub route: Option<String>,
    /// Lowest status, inclusive.
    pub status_min: Option<u16>,
    /// Highest status, inclusive.
    pub status_max: Option<u16>,
    /// Reason code.
    pub reason: Option<String>,
    /// OAuth client.
    pub client_id: Option<String>,
    /// Subject.
    pub sub: Option<String>,
    /// Token issuer.
    pub issuer: Option<String>,
    /// Request id (several calls may share one).
    pub request_id: Option<String>,
    /// HTTP method.
    pub method: Option<String>,
    /// Calls with an inspector finding of this rule id (`TR-04`).
    pub finding: Option<String>,
    /// Page size: 0 means [`DEFAULT_LIMIT`]; at most [`MAX_LIMIT`].
    pub limit: u32,
    /// Continue after this call (from [`CallPage::next`]).
    pub after: Option<Cursor>,
}

impl CallQuery {
    /// The page size to use.
    pub fn effective_limit(&self) -> u32 {
        match self.limit {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        }
    }
}

/// A position in the newest-first order of calls (keyset pagination, so a
/// page deep in tens of millions of rows costs the same as the first).
/// Written as `start_ms.id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cursor {
    /// Start time of the last call seen.
    pub start_ms: u64,
    /// Row id of the last call seen.
    pub id: i64,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.start_ms, self.id)
    }
}

impl FromStr for Cursor {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || StoreError::BadCursor(s.to_owned());
        let (ms, id) = s.split_once('.').ok_or_else(bad)?;
        Ok(Cursor {
            start_ms: ms.parse().map_err(|_| bad())?,
            id: id.parse().map_err(|_| bad())?,
        })
    }
}

/// One page of calls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallPage {
    /// The calls, newest first.
    pub calls: Vec<StoredCall>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// Which statistics to compute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsQuery {
    /// Start of the range (Unix ms, inclusive).
    pub from_ms: u64,
    /// End of the range (Unix ms, exclusive).
    pub until_ms: u64,
    /// Bucket width in ms (60 000 per minute, 3 600 000 per hour). Buckets
    /// are aligned to multiples of it since the epoch.
    pub bucket_ms: u64,
    /// Only this route.
    pub route: Option<String>,
    /// How many reason codes to keep per bucket.
    pub top_reasons: usize,
}

impl StatsQuery {
    /// Per-minute buckets over `[from_ms, until_ms)`, top 5 reasons.
    pub fn per_minute(from_ms: u64, until_ms: u64) -> Self {
        StatsQuery {
            from_ms,
            until_ms,
            bucket_ms: 60_000,
            route: None,
            top_reasons: 5,
        }
    }
}

/// The statistics of one bucket. Buckets without calls are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bucket {
    /// Start of the bucket (Unix ms).
    pub start_ms: u64,
    /// Calls that started in the bucket.
    pub calls: u64,
    /// Calls answered with 4xx or 5xx.
    pub errors: u64,
    /// Calls answered with 5xx.
    pub server_errors: u64,
    /// Median total latency, µs (nearest rank).
    pub p50_us: u64,
    /// 95th percentile total latency, µs (nearest rank).
    pub p95_us: u64,
    /// 99th percentile total latency, µs (nearest rank).
    pub p99_us: u64,
    /// The most frequent reason codes with their counts, most frequent
    /// first (ties by code).
    pub top_reasons: Vec<(String, u64)>,
}

/// The nearest-rank percentile of sorted values: the smallest value with
/// at least `pct` percent of the values at or below it (0 when empty).
pub fn percentile(sorted: &[u64], pct: u32) -> u64 {
    let n = sorted.len();
    if n == 0 {
        return 0;
    }
    let rank = (pct as usize * n).div_ceil(100).clamp(1, n);
    sorted.get(rank - 1).copied().unwrap_or(0)
}

/// What to keep. Each limit given is enforced; the oldest calls (by start
/// time) go first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Delete calls that started longer ago than this (ms).
    pub max_age_ms: Option<u64>,
    /// Keep at most this many calls.
    pub max_rows: Option<u64>,
    /// Keep the store's data under this many bytes (SQLite: the pages in
    /// use; freed pages are returned to the file system).
    pub max_bytes: Option<u64>,
}

impl Retention {
    /// True when no limit is set.
    pub fn is_unlimited(&self) -> bool {
        self.max_age_ms.is_none() && self.max_rows.is_none() && self.max_bytes.is_none()
    }
}

/// How many calls a retention pass deleted, by limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retained {
    /// Deleted for their age.
    pub by_age: u64,
    /// Deleted to get under the row limit.
    pub by_rows: u64,
    /// Deleted to get under the size limit.
    pub by_size: u64,
}

impl Retained {
    /// All deleted calls.
    pub fn total(&self) -> u64 {
        self.by_age + self.by_rows + self.by_size
    }
}

/// A call-log store. Synchronous: the [`Writer`](crate::Writer) owns one on
/// its own thread; readers call theirs from a blocking context
/// (`spawn_blocking`). Every method takes `&mut self` because a store may
/// reconnect on any call.
pub trait CallLog: Send {
    /// Stores a batch atomically (all or nothing); records whose key is
    /// already stored are skipped. Returns how many were inserted.
    fn append(&mut self, batch: &[KeyedRecord]) -> Result<usize, StoreError>;

    /// One page of calls matching the query, newest first.
    fn query(&mut self, query: &CallQuery) -> Result<CallPage, StoreError>;

    /// The newest call with this request id.
    fn get(&mut self, request_id: &str) -> Result<Option<StoredCall>, StoreError>;

    /// Calls, errors, latency percentiles and top reason codes per bucket.
    fn stats(&mut self, query: &StatsQuery) -> Result<Vec<Bucket>, StoreError>;

    /// The clients (`client_id`) with the most error answers (4xx, 5xx) in
    /// the query's range (and route), most first (ties by id), at most
    /// `limit`.
    fn top_error_clients(
        &mut self,
        query: &StatsQuery,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, StoreError>;

    /// Deletes what the policy does not keep; `now_ms` is the current Unix
    /// time in ms (time is a parameter).
    fn retain(&mut self, policy: &Retention, now_ms: u64) -> Result<Retained, StoreError>;

    /// How many calls are stored.
    fn count(&mut self) -> Result<u64, StoreError>;
}

impl<T: CallLog + ?Sized> CallLog for Box<T> {
    fn append(&mut self, batch: &[KeyedRecord]) -> Result<usize, StoreError> {
        (**self).append(batch)
    }
    fn query(&mut self, query: &CallQuery) -> Result<CallPage, StoreError> {
        (**self).query(query)
    }
    fn get(&mut self, request_id: &str) -> Result<Option<StoredCall>, StoreError> {
        (**self).get(request_id)
    }
    fn stats(&mut self, query: &StatsQuery) -> Result<Vec<Bucket>, StoreError> {
        (**self).stats(query)
    }
    fn top_error_clients(
        &mut self,
        query: &StatsQuery,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        (**self).top_error_clients(query, limit)
    }
    fn retain(&mut self, policy: &Retention, now_ms: u64) -> Result<Retained, StoreError> {
        (**self).retain(policy, now_ms)
    }
    fn count(&mut self) -> Result<u64, StoreError> {
        (**self).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&[], 50), 0);
        assert_eq!(percentile(&[7], 99), 7);
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), 50);
        assert_eq!(percentile(&v, 95), 95);
        assert_eq!(percentile(&v, 99), 99);
        assert_eq!(percentile(&v, 100), 100);
        assert_eq!(percentile(&[1, 2, 3], 50), 2);
        assert_eq!(percentile(&[1, 2, 3, 4], 50), 2);
        assert_eq!(percentile(&[1, 2, 3, 4], 0), 1);
    }

    #[test]
    fn cursor_text_round_trip() {
        let c = Cursor {
            start_ms: 1_700_000_000_000,
            id: 42,
        };
        assert_eq!(c.to_string().parse::<Cursor>().unwrap(), c);
        assert!("x".parse::<Cursor>().is_err());
        assert!("1.x".parse::<Cursor>().is_err());
    }

    #[test]
    fn limits() {
        let mut q = CallQuery::default();
        assert_eq!(q.effective_limit(), DEFAULT_LIMIT);
        q.limit = 5_000;
        assert_eq!(q.effective_limit(), MAX_LIMIT);
    }
}
