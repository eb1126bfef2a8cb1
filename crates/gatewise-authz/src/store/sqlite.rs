//! The default state store: SQLite through rusqlite, a file (created with
//! mode `0600`: it holds the signing keys) or memory (`--ephemeral`).
//!
//! WAL with `synchronous=NORMAL` (a crash may lose the last transactions,
//! never corrupt the file), migrations numbered by `PRAGMA user_version`.
//! One connection behind a mutex; each call is one short transaction run
//! inline (see the module docs of [`crate::store`]).

use super::{
    DeviceRecord, DeviceStatus, GrantKind, GrantRecord, KEEP_EXPIRED, Ring, StateStore, StoreError,
    StoreFuture, StoredKey,
};
use gatewise_core::jose::Alg;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::Path;
use std::sync::Mutex;

/// The schema, one migration per version (`PRAGMA user_version`). Never
/// edit a released migration; append one.
pub const MIGRATIONS: &[&str] = &[
    // 1: keys, grants, revoked families, jtis.
    "CREATE TABLE gatewise_authz_keys (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        kid TEXT NOT NULL UNIQUE,
        ring TEXT NOT NULL,
        alg TEXT NOT NULL,
        private BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        active INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX gatewise_authz_keys_one_active ON gatewise_authz_keys (ring) WHERE active;
    CREATE TABLE gatewise_authz_grants (
        kind TEXT NOT NULL,
        hash BLOB NOT NULL,
        client_id TEXT NOT NULL,
        family TEXT,
        exp INTEGER NOT NULL,
        used INTEGER NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (kind, hash)
    ) WITHOUT ROWID;
    CREATE INDEX gatewise_authz_grants_exp ON gatewise_authz_grants (exp);
    CREATE TABLE gatewise_authz_families (
        family TEXT PRIMARY KEY,
        exp INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE gatewise_authz_jti (
        kind TEXT NOT NULL,
        jti TEXT NOT NULL,
        exp INTEGER NOT NULL,
        PRIMARY KEY (kind, jti)
    ) WITHOUT ROWID;",
    // 2: device authorizations (RFC 8628).
    "CREATE TABLE gatewise_authz_device (
        hash BLOB PRIMARY KEY,
        user_code BLOB NOT NULL UNIQUE,
        client_id TEXT NOT NULL,
        exp INTEGER NOT NULL,
        poll_interval INTEGER NOT NULL,
        last_poll INTEGER,
        status TEXT NOT NULL,
        data TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX gatewise_authz_device_exp ON gatewise_authz_device (exp);",
];

/// The SQLite state store.
pub struct SqliteStateStore {
    conn: Mutex<Connection>,
    target: String,
}

impl std::fmt::Debug for SqliteStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStateStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

fn backend(doing: &'static str, target: &str) -> impl Fn(rusqlite::Error) -> StoreError + use<> {
    let target = target.to_owned();
    move |e| StoreError::Backend {
        doing,
        target: target.clone(),
        message: e.to_string(),
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl SqliteStateStore {
    /// Opens (creating with mode `0600`) the database file at `path`.
    pub fn open(path: &Path) -> Result<SqliteStateStore, StoreError> {
        let target = format!("sqlite:{}", path.display());
        if !path.exists() {
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                o.mode(0o600);
            }
            if let Err(e) = o.open(path)
                && e.kind() != std::io::ErrorKind::AlreadyExists
            {
                return Err(StoreError::Backend {
                    doing: "creating the state file",
                    target,
                    message: e.to_string(),
                });
            }
        }
        let conn = Connection::open(path).map_err(backend("opening", &target))?;
        Self::init(conn, target, true)
    }

    /// An in-memory database: nothing survives the process.
    pub fn memory() -> Result<SqliteStateStore, StoreError> {
        let target = "sqlite::memory:".to_owned();
        let conn = Connection::open_in_memory().map_err(backend("opening", &target))?;
        Self::init(conn, target, false)
    }

    fn init(conn: Connection, target: String, file: bool) -> Result<SqliteStateStore, StoreError> {
        let err = backend("preparing the database", &target);
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(&err)?;
        if file {
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(&err)?;
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(&err)?;
        }
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(&err)?;
        let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
        if version > known {
            return Err(StoreError::SchemaTooNew {
                target,
                found: version,
                known,
            });
        }
        let mut conn = conn;
        for (i, m) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(version).unwrap_or(0))
        {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            tx.execute_batch(m).map_err(&err)?;
            tx.pragma_update(None, "user_version", to_i64(i as u64 + 1))
                .map_err(&err)?;
            tx.commit().map_err(&err)?;
        }
        Ok(SqliteStateStore {
            conn: Mutex::new(conn),
            target,
        })
    }

    /// Runs `f` on the connection.
    fn with<T>(
        &self,
        doing: &'static str,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut c = match self.conn.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        f(&mut c).map_err(backend(doing, &self.target))
    }

    fn ready<'a, T: Send + 'a>(r: Result<T, StoreError>) -> StoreFuture<'a, T> {
        Box::pin(std::future::ready(r))
    }

    /// Synchronous [`StateStore::install_key`] (for building a server
    /// outside a runtime).
    pub fn install_key_now(
        &self,
        key: StoredKey,
        expected: Option<String>,
        overlap: bool,
        keep_previous: usize,
    ) -> Result<bool, StoreError> {
        self.with("installing a signing key", |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current: Option<String> = tx
                .query_row(
                    "SELECT kid FROM gatewise_authz_keys WHERE ring = ?1 AND active",
                    [key.ring.name()],
                    |r| r.get(0),
                )
                .optional()?;
            if current != expected {
                return Ok(false);
            }
            if overlap {
                tx.execute(
                    "UPDATE gatewise_authz_keys SET active = 0 WHERE ring = ?1 AND active",
                    [key.ring.name()],
                )?;
            } else {
                tx.execute(
                    "DELETE FROM gatewise_authz_keys WHERE ring = ?1",
                    [key.ring.name()],
                )?;
            }
            tx.execute(
                "INSERT INTO gatewise_authz_keys (kid, ring, alg, private, created_at, active)
                 VALUES (?1, ?2, ?3, ?4, ?5, 1)",
                params![
                    key.kid,
                    key.ring.name(),
                    key.alg.name(),
                    key.private,
                    to_i64(key.created_at)
                ],
            )?;
            tx.execute(
                "DELETE FROM gatewise_authz_keys WHERE ring = ?1 AND NOT active AND seq NOT IN (
                    SELECT seq FROM gatewise_authz_keys WHERE ring = ?1 AND NOT active
                    ORDER BY seq DESC LIMIT ?2)",
                params![key.ring.name(), to_i64(keep_previous as u64)],
            )?;
            tx.commit()?;
            Ok(true)
        })
    }

    fn keys_now(&self) -> Result<Vec<StoredKey>, StoreError> {
        let rows: Vec<(String, String, String, Vec<u8>, i64, bool)> =
            self.with("reading the signing keys", |c| {
                let mut st = c.prepare(
                    "SELECT kid, ring, alg, private, created_at, active FROM gatewise_authz_keys
                     ORDER BY seq DESC",
                )?;
                let rows = st.query_map([], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })?;
                rows.collect()
            })?;
        rows.into_iter()
            .map(|(kid, ring, alg, private, created_at, active)| {
                let corrupt = |message: String| StoreError::Corrupt {
                    target: self.target.clone(),
                    what: "signing key",
                    message,
                };
                Ok(StoredKey {
                    ring: Ring::parse(&ring).ok_or_else(|| corrupt(format!("ring `{ring}`")))?,
                    alg: Alg::parse(&alg).ok_or_else(|| corrupt(format!("algorithm `{alg}`")))?,
                    kid,
                    private,
                    created_at: to_u64(created_at),
                    active,
                })
            })
            .collect()
    }
}

type Row = (String, Option<String>, i64, bool, String);

/// The columns of a device authorization, as read.
type DeviceRow = (
    Vec<u8>,
    Vec<u8>,
    String,
    i64,
    i64,
    Option<i64>,
    String,
    String,
);

const DEVICE_COLUMNS: &str =
    "hash, user_code, client_id, exp, poll_interval, last_poll, status, data";

impl SqliteStateStore {
    fn read_device(
        &self,
        column: &'static str,
        key: [u8; 32],
    ) -> Result<Option<DeviceRecord>, StoreError> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM gatewise_authz_device WHERE {column} = ?1");
        let row: Option<DeviceRow> = self.with("reading a device authorization", |c| {
            c.query_row(&sql, [&key[..]], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            })
            .optional()
        })?;
        let corrupt = |message: String| StoreError::Corrupt {
            target: self.target.clone(),
            what: "device authorization",
            message,
        };
        row.map(
            |(hash, user_code, client_id, exp, interval, last_poll, status, data)| {
                Ok(DeviceRecord {
                    hash: hash.try_into().map_err(|_| corrupt("hash length".into()))?,
                    user_code: user_code
                        .try_into()
                        .map_err(|_| corrupt("user code hash length".into()))?,
                    client_id,
                    exp: to_u64(exp),
                    interval: to_u64(interval),
                    last_poll: last_poll.map(to_u64),
                    status: DeviceStatus::parse(&status)
                        .ok_or_else(|| corrupt(format!("status `{status}`")))?,
                    data: serde_json::from_str(&data).map_err(|e| corrupt(e.to_string()))?,
                })
            },
        )
        .transpose()
    }
}

impl StateStore for SqliteStateStore {
    fn describe(&self) -> String {
        self.target.clone()
    }

    fn keys(&self) -> StoreFuture<'_, Vec<StoredKey>> {
        Self::ready(self.keys_now())
    }

    fn install_key(
        &self,
        key: StoredKey,
        expected: Option<String>,
        overlap: bool,
        keep_previous: usize,
    ) -> StoreFuture<'_, bool> {
        Self::ready(self.install_key_now(key, expected, overlap, keep_previous))
    }

    fn put_grant(&self, g: GrantRecord) -> StoreFuture<'_, ()> {
        Self::ready(self.with("storing a grant", |c| {
            c.execute(
                "INSERT OR REPLACE INTO gatewise_authz_grants
                 (kind, hash, client_id, family, exp, used, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    g.kind.name(),
                    &g.hash[..],
                    g.client_id,
                    g.family,
                    to_i64(g.exp),
                    g.used,
                    g.data.to_string()
                ],
            )?;
            Ok(())
        }))
    }

    fn grant(&self, kind: GrantKind, hash: [u8; 32]) -> StoreFuture<'_, Option<GrantRecord>> {
        let row: Result<Option<Row>, StoreError> = self.with("reading a grant", |c| {
            c.query_row(
                "SELECT client_id, family, exp, used, data FROM gatewise_authz_grants
                 WHERE kind = ?1 AND hash = ?2",
                params![kind.name(), &hash[..]],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()
        });
        let target = self.target.clone();
        Self::ready(row.and_then(|row| {
            row.map(|(client_id, family, exp, used, data)| {
                Ok(GrantRecord {
                    kind,
                    hash,
                    client_id,
                    family,
                    exp: to_u64(exp),
                    used,
                    data: serde_json::from_str(&data).map_err(|e| StoreError::Corrupt {
                        target,
                        what: "grant",
                        message: e.to_string(),
                    })?,
                })
            })
            .transpose()
        }))
    }

    fn mark_used(&self, kind: GrantKind, hash: [u8; 32]) -> StoreFuture<'_, bool> {
        Self::ready(self.with("marking a grant used", |c| {
            let n = c.execute(
                "UPDATE gatewise_authz_grants SET used = 1 WHERE kind = ?1 AND hash = ?2 AND NOT used",
                params![kind.name(), &hash[..]],
            )?;
            Ok(n == 1)
        }))
    }

    fn set_family(&self, kind: GrantKind, hash: [u8; 32], family: String) -> StoreFuture<'_, ()> {
        Self::ready(self.with("recording a refresh family", |c| {
            c.execute(
                "UPDATE gatewise_authz_grants SET family = ?3 WHERE kind = ?1 AND hash = ?2",
                params![kind.name(), &hash[..], family],
            )?;
            Ok(())
        }))
    }

    fn delete_grant(&self, kind: GrantKind, hash: [u8; 32]) -> StoreFuture<'_, ()> {
        Self::ready(self.with("deleting a grant", |c| {
            c.execute(
                "DELETE FROM gatewise_authz_grants WHERE kind = ?1 AND hash = ?2",
                params![kind.name(), &hash[..]],
            )?;
            Ok(())
        }))
    }

    fn revoke_family(&self, family: String, exp: u64) -> StoreFuture<'_, ()> {
        Self::ready(self.with("revoking a refresh family", |c| {
            c.execute(
                "INSERT INTO gatewise_authz_families (family, exp) VALUES (?1, ?2)
                 ON CONFLICT (family) DO UPDATE SET exp = max(exp, excluded.exp)",
                params![family, to_i64(exp)],
            )?;
            Ok(())
        }))
    }

    fn family_revoked(&self, family: String) -> StoreFuture<'_, bool> {
        Self::ready(self.with("reading a refresh family", |c| {
            c.query_row(
                "SELECT 1 FROM gatewise_authz_families WHERE family = ?1",
                [family],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
        }))
    }

    fn revoke_jti(&self, jti: String, exp: u64) -> StoreFuture<'_, ()> {
        Self::ready(self.with("revoking a token", |c| {
            c.execute(
                "INSERT OR IGNORE INTO gatewise_authz_jti (kind, jti, exp) VALUES ('revoked', ?1, ?2)",
                params![jti, to_i64(exp)],
            )?;
            Ok(())
        }))
    }

    fn jti_revoked(&self, jti: String) -> StoreFuture<'_, bool> {
        Self::ready(self.with("reading a revoked token", |c| {
            c.query_row(
                "SELECT 1 FROM gatewise_authz_jti WHERE kind = 'revoked' AND jti = ?1",
                [jti],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
        }))
    }

    fn consume_jti(&self, client_id: String, jti: String, exp: u64) -> StoreFuture<'_, bool> {
        Self::ready(self.with("recording an assertion jti", |c| {
            let n = c.execute(
                "INSERT OR IGNORE INTO gatewise_authz_jti (kind, jti, exp) VALUES (?1, ?2, ?3)",
                params![format!("assertion:{client_id}"), jti, to_i64(exp)],
            )?;
            Ok(n == 1)
        }))
    }

    fn put_device(&self, d: DeviceRecord) -> StoreFuture<'_, ()> {
        Self::ready(self.with("storing a device authorization", |c| {
            c.execute(
                "INSERT OR REPLACE INTO gatewise_authz_device
                 (hash, user_code, client_id, exp, poll_interval, last_poll, status, data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    &d.hash[..],
                    &d.user_code[..],
                    d.client_id,
                    to_i64(d.exp),
                    to_i64(d.interval),
                    d.last_poll.map(to_i64),
                    d.status.name(),
                    d.data.to_string()
                ],
            )?;
            Ok(())
        }))
    }

    fn device(&self, hash: [u8; 32]) -> StoreFuture<'_, Option<DeviceRecord>> {
        Self::ready(self.read_device("hash", hash))
    }

    fn device_by_user_code(&self, user_code: [u8; 32]) -> StoreFuture<'_, Option<DeviceRecord>> {
        Self::ready(self.read_device("user_code", user_code))
    }

    fn device_polled(&self, hash: [u8; 32], now: u64, interval: u64) -> StoreFuture<'_, ()> {
        Self::ready(self.with("recording a device poll", |c| {
            c.execute(
                "UPDATE gatewise_authz_device SET last_poll = ?2, poll_interval = ?3 WHERE hash = ?1",
                params![&hash[..], to_i64(now), to_i64(interval)],
            )?;
            Ok(())
        }))
    }

    fn decide_device(
        &self,
        user_code: [u8; 32],
        status: DeviceStatus,
        data: serde_json::Value,
        now: u64,
    ) -> StoreFuture<'_, bool> {
        Self::ready(self.with("recording a device decision", |c| {
            let n = c.execute(
                "UPDATE gatewise_authz_device SET status = ?2, data = ?3
                 WHERE user_code = ?1 AND status = 'pending' AND exp > ?4",
                params![&user_code[..], status.name(), data.to_string(), to_i64(now)],
            )?;
            Ok(n == 1)
        }))
    }

    fn redeem_device(&self, hash: [u8; 32]) -> StoreFuture<'_, bool> {
        Self::ready(self.with("redeeming a device authorization", |c| {
            let n = c.execute(
                "UPDATE gatewise_authz_device SET status = 'redeemed'
                 WHERE hash = ?1 AND status = 'approved'",
                [&hash[..]],
            )?;
            Ok(n == 1)
        }))
    }

    fn purge(&self, now: u64) -> StoreFuture<'_, u64> {
        Self::ready(self.with("deleting expired state", |c| {
            let now = to_i64(now);
            let mut n = c.execute(
                "DELETE FROM gatewise_authz_grants WHERE exp + ?2 <= ?1",
                params![now, to_i64(KEEP_EXPIRED)],
            )?;
            n += c.execute("DELETE FROM gatewise_authz_families WHERE exp <= ?1", [now])?;
            n += c.execute("DELETE FROM gatewise_authz_jti WHERE exp <= ?1", [now])?;
            n += c.execute(
                "DELETE FROM gatewise_authz_device WHERE exp + ?2 <= ?1",
                params![now, to_i64(KEEP_EXPIRED)],
            )?;
            Ok(n as u64)
        }))
    }
}
