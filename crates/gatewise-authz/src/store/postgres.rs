//! The shared state store: PostgreSQL through sqlx (`postgres` and
//! `runtime-tokio` only, never sqlx's `sqlite`: it would link a second
//! libsqlite3 next to rusqlite's).
//!
//! The same tables as [`super::sqlite`], prefixed `gatewise_authz_`, so
//! several `gatewise authz` servers (and the call log) can share a
//! database. Migrations are numbered in `gatewise_authz_schema` and applied
//! at connect under an advisory lock (servers starting together); a newer
//! schema is refused. Key installation takes a transaction-scoped advisory
//! lock, so concurrent rotations serialise and the compare-and-swap of
//! [`StateStore::install_key`] holds.
//!
//! The server is async, so unlike the call log (a synchronous trait on a
//! writer thread) this store runs on the server's runtime: a small sqlx
//! pool whose connections are tested before use, so a PostgreSQL restart
//! costs the requests in flight at that moment, not the process. Errors
//! name the server as `user@host:port/database`, never the password.

use super::{
    DeviceRecord, DeviceStatus, GrantKind, GrantRecord, KEEP_EXPIRED, Ring, StateStore, StoreError,
    StoreFuture, StoredKey, redact_url,
};
use gatewise_core::jose::Alg;
use sqlx::Row as _;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// The schema, one migration per version (`gatewise_authz_schema`).
/// Never edit a released migration; append one.
pub const MIGRATIONS: &[&str] = &[
    // 1: keys, grants, revoked families, jtis.
    "CREATE TABLE gatewise_authz_keys (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        kid text NOT NULL UNIQUE,
        ring text NOT NULL,
        alg text NOT NULL,
        private bytea NOT NULL,
        created_at bigint NOT NULL,
        active boolean NOT NULL
    );
    CREATE UNIQUE INDEX gatewise_authz_keys_one_active ON gatewise_authz_keys (ring) WHERE active;
    CREATE TABLE gatewise_authz_grants (
        kind text NOT NULL,
        hash bytea NOT NULL,
        client_id text NOT NULL,
        family text,
        exp bigint NOT NULL,
        used boolean NOT NULL,
        data jsonb NOT NULL,
        PRIMARY KEY (kind, hash)
    );
    CREATE INDEX gatewise_authz_grants_exp ON gatewise_authz_grants (exp);
    CREATE TABLE gatewise_authz_families (
        family text PRIMARY KEY,
        exp bigint NOT NULL
    );
    CREATE TABLE gatewise_authz_jti (
        kind text NOT NULL,
        jti text NOT NULL,
        exp bigint NOT NULL,
        PRIMARY KEY (kind, jti)
    );",
    // 2: device authorizations (RFC 8628).
    "CREATE TABLE gatewise_authz_device (
        hash bytea PRIMARY KEY,
        user_code bytea NOT NULL UNIQUE,
        client_id text NOT NULL,
        exp bigint NOT NULL,
        poll_interval bigint NOT NULL,
        last_poll bigint,
        status text NOT NULL,
        data jsonb NOT NULL
    );
    CREATE INDEX gatewise_authz_device_exp ON gatewise_authz_device (exp);",
];

/// Advisory lock of the migrations ("gwauthzm").
const MIGRATION_LOCK: i64 = 0x6777_6175_7468_7a6d;
/// Advisory lock of key installation ("gwauthzk").
const KEY_LOCK: i64 = 0x6777_6175_7468_7a6b;

const SCHEMA_TABLE: &str = "CREATE TABLE IF NOT EXISTS gatewise_authz_schema (
        one boolean PRIMARY KEY DEFAULT true CHECK (one),
        version integer NOT NULL
    );
    INSERT INTO gatewise_authz_schema (version) VALUES (0) ON CONFLICT DO NOTHING;";

/// The PostgreSQL state store.
pub struct PostgresStateStore {
    pool: PgPool,
    target: String,
}

impl std::fmt::Debug for PostgresStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the pool: its options' Debug shows the password.
        f.debug_struct("PostgresStateStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl PostgresStateStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`),
    /// creating or upgrading the schema.
    pub async fn connect(url: &str) -> Result<PostgresStateStore, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::BadUrl {
                url: redact_url(url),
                reason: e.to_string(),
            })?
            .application_name("gatewise-authz");
        let target = format!(
            "postgres://{}@{}:{}/{}",
            options.get_username(),
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or(options.get_username())
        );
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .test_before_acquire(true)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Backend {
                doing: "connecting",
                target: target.clone(),
                message: e.to_string(),
            })?;
        let store = PostgresStateStore { pool, target };
        store.migrate().await?;
        Ok(store)
    }

    fn err(&self, doing: &'static str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
        move |e| StoreError::Backend {
            doing,
            target: self.target.clone(),
            message: e.to_string(),
        }
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let err = self.err("migrating the schema");
        let mut tx = self.pool.begin().await.map_err(&err)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
        sqlx::raw_sql(SCHEMA_TABLE)
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
        let version: i32 = sqlx::query_scalar("SELECT version FROM gatewise_authz_schema")
            .fetch_one(&mut *tx)
            .await
            .map_err(&err)?;
        let known = i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX);
        if version > known {
            return Err(StoreError::SchemaTooNew {
                target: self.target.clone(),
                found: version.into(),
                known: known.into(),
            });
        }
        for m in MIGRATIONS
            .iter()
            .skip(usize::try_from(version).unwrap_or(0))
        {
            sqlx::raw_sql(*m).execute(&mut *tx).await.map_err(&err)?;
        }
        sqlx::query("UPDATE gatewise_authz_schema SET version = $1")
            .bind(known)
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
        tx.commit().await.map_err(&err)
    }

    async fn install(
        &self,
        key: StoredKey,
        expected: Option<String>,
        overlap: bool,
        keep_previous: usize,
    ) -> Result<bool, StoreError> {
        let err = self.err("installing a signing key");
        let mut tx = self.pool.begin().await.map_err(&err)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(KEY_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
        let ring = key.ring.name();
        let current: Option<String> =
            sqlx::query_scalar("SELECT kid FROM gatewise_authz_keys WHERE ring = $1 AND active")
                .bind(ring)
                .fetch_optional(&mut *tx)
                .await
                .map_err(&err)?;
        if current != expected {
            return Ok(false);
        }
        let sql = if overlap {
            "UPDATE gatewise_authz_keys SET active = false WHERE ring = $1 AND active"
        } else {
            "DELETE FROM gatewise_authz_keys WHERE ring = $1"
        };
        sqlx::query(sql)
            .bind(ring)
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
        sqlx::query(
            "INSERT INTO gatewise_authz_keys (kid, ring, alg, private, created_at, active)
             VALUES ($1, $2, $3, $4, $5, true)",
        )
        .bind(&key.kid)
        .bind(ring)
        .bind(key.alg.name())
        .bind(&key.private)
        .bind(to_i64(key.created_at))
        .execute(&mut *tx)
        .await
        .map_err(&err)?;
        sqlx::query(
            "DELETE FROM gatewise_authz_keys WHERE ring = $1 AND NOT active AND seq NOT IN (
                SELECT seq FROM gatewise_authz_keys WHERE ring = $1 AND NOT active
                ORDER BY seq DESC LIMIT $2)",
        )
        .bind(ring)
        .bind(to_i64(keep_previous as u64))
        .execute(&mut *tx)
        .await
        .map_err(&err)?;
        tx.commit().await.map_err(&err)?;
        Ok(true)
    }

    async fn read_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, ring, alg, private, created_at, active FROM gatewise_authz_keys
             ORDER BY seq DESC",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("reading the signing keys"))?;
        let corrupt = |message: String| StoreError::Corrupt {
            target: self.target.clone(),
            what: "signing key",
            message,
        };
        rows.iter()
            .map(|r| {
                let get = |e: sqlx::Error| corrupt(e.to_string());
                let ring: String = r.try_get(1).map_err(get)?;
                let alg: String = r.try_get(2).map_err(get)?;
                Ok(StoredKey {
                    kid: r.try_get(0).map_err(get)?,
                    ring: Ring::parse(&ring).ok_or_else(|| corrupt(format!("ring `{ring}`")))?,
                    alg: Alg::parse(&alg).ok_or_else(|| corrupt(format!("algorithm `{alg}`")))?,
                    private: r.try_get(3).map_err(get)?,
                    created_at: to_u64(r.try_get(4).map_err(get)?),
                    active: r.try_get(5).map_err(get)?,
                })
            })
            .collect()
    }

    async fn read_grant(
        &self,
        kind: GrantKind,
        hash: [u8; 32],
    ) -> Result<Option<GrantRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT client_id, family, exp, used, data::text FROM gatewise_authz_grants
             WHERE kind = $1 AND hash = $2",
        )
        .bind(kind.name())
        .bind(&hash[..])
        .fetch_optional(&self.pool)
        .await
        .map_err(self.err("reading a grant"))?;
        let Some(r) = row else {
            return Ok(None);
        };
        let corrupt = |message: String| StoreError::Corrupt {
            target: self.target.clone(),
            what: "grant",
            message,
        };
        let get = |e: sqlx::Error| corrupt(e.to_string());
        let data: String = r.try_get(4).map_err(get)?;
        Ok(Some(GrantRecord {
            kind,
            hash,
            client_id: r.try_get(0).map_err(get)?,
            family: r.try_get(1).map_err(get)?,
            exp: to_u64(r.try_get(2).map_err(get)?),
            used: r.try_get(3).map_err(get)?,
            data: serde_json::from_str(&data).map_err(|e| corrupt(e.to_string()))?,
        }))
    }

    async fn read_device(
        &self,
        by_user_code: bool,
        key: [u8; 32],
    ) -> Result<Option<DeviceRecord>, StoreError> {
        let sql = if by_user_code {
            "SELECT hash, user_code, client_id, exp, poll_interval, last_poll, status, data::text
             FROM gatewise_authz_device WHERE user_code = $1"
        } else {
            "SELECT hash, user_code, client_id, exp, poll_interval, last_poll, status, data::text
             FROM gatewise_authz_device WHERE hash = $1"
        };
        let row = sqlx::query(sql)
            .bind(key.to_vec())
            .fetch_optional(&self.pool)
            .await
            .map_err(self.err("reading a device authorization"))?;
        let Some(r) = row else {
            return Ok(None);
        };
        let corrupt = |message: String| StoreError::Corrupt {
            target: self.target.clone(),
            what: "device authorization",
            message,
        };
        let get = |e: sqlx::Error| corrupt(e.to_string());
        let hash: Vec<u8> = r.try_get(0).map_err(get)?;
        let user_code: Vec<u8> = r.try_get(1).map_err(get)?;
        let last_poll: Option<i64> = r.try_get(5).map_err(get)?;
        let status: String = r.try_get(6).map_err(get)?;
        let data: String = r.try_get(7).map_err(get)?;
        Ok(Some(DeviceRecord {
            hash: hash.try_into().map_err(|_| corrupt("hash length".into()))?,
            user_code: user_code
                .try_into()
                .map_err(|_| corrupt("user code hash length".into()))?,
            client_id: r.try_get(2).map_err(get)?,
            exp: to_u64(r.try_get(3).map_err(get)?),
            interval: to_u64(r.try_get(4).map_err(get)?),
            last_poll: last_poll.map(to_u64),
            status: DeviceStatus::parse(&status)
                .ok_or_else(|| corrupt(format!("status `{status}`")))?,
            data: serde_json::from_str(&data).map_err(|e| corrupt(e.to_string()))?,
        }))
    }

    async fn exec(
        &self,
        doing: &'static str,
        q: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<u64, StoreError> {
        q.execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(self.err(doing))
    }
}

impl StateStore for PostgresStateStore {
    fn describe(&self) -> String {
        self.target.clone()
    }

    fn keys(&self) -> StoreFuture<'_, Vec<StoredKey>> {
        Box::pin(self.read_keys())
    }

    fn install_key(
        &self,
        key: StoredKey,
        expected: Option<String>,
        overlap: bool,
        keep_previous: usize,
    ) -> StoreFuture<'_, bool> {
        Box::pin(self.install(key, expected, overlap, keep_previous))
    }

    fn put_grant(&self, g: GrantRecord) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let q = sqlx::query(
                "INSERT INTO gatewise_authz_grants (kind, hash, client_id, family, exp, used, data)
                 VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
                 ON CONFLICT (kind, hash) DO UPDATE SET client_id = excluded.client_id,
                    family = excluded.family, exp = excluded.exp, used = excluded.used,
                    data = excluded.data",
            )
            .bind(g.kind.name())
            .bind(g.hash.to_vec())
            .bind(g.client_id)
            .bind(g.family)
            .bind(to_i64(g.exp))
            .bind(g.used)
            .bind(g.data.to_string());
            self.exec("storing a grant", q).await.map(|_| ())
        })
    }

    fn grant(&self, kind: GrantKind, hash: [u8; 32]) -> StoreFuture<'_, Option<GrantRecord>> {
        Box::pin(self.read_grant(kind, hash))
    }

    fn mark_used(&self, kind: GrantKind, hash: [u8; 32]) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let q = sqlx::query(
                "UPDATE gatewise_authz_grants SET used = true
                 WHERE kind = $1 AND hash = $2 AND NOT used",
            )
            .bind(kind.name())
            .bind(hash.to_vec());
            Ok(self.exec("marking a grant used", q).await? == 1)
        })
    }

    fn set_family(&self, kind: GrantKind, hash: [u8; 32], family: String) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let q = sqlx::query(
                "UPDATE gatewise_authz_grants SET family = $3 WHERE kind = $1 AND hash = $2",
            )
            .bind(kind.name())
            .bind(hash.to_vec())
            .bind(family);
            self.exec("recording a refresh family", q).await.map(|_| ())
        })
    }

    fn delete_grant(&self, kind: GrantKind, hash: [u8; 32]) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let q = sqlx::query("DELETE FROM gatewise_authz_grants WHERE kind = $1 AND hash = $2")
                .bind(kind.name())
                .bind(hash.to_vec());
            self.exec("deleting a grant", q).await.map(|_| ())
        })
    }

    fn revoke_family(&self, family: String, exp: u64) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let q = sqlx::query(
                "INSERT INTO gatewise_authz_families (family, exp) VALUES ($1, $2)
                 ON CONFLICT (family) DO UPDATE
                 SET exp = greatest(gatewise_authz_families.exp, excluded.exp)",
            )
            .bind(family)
            .bind(to_i64(exp));
            self.exec("revoking a refresh family", q).await.map(|_| ())
        })
    }

    fn family_revoked(&self, family: String) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let found: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM gatewise_authz_families WHERE family = $1")
                    .bind(family)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(self.err("reading a refresh family"))?;
            Ok(found.is_some())
        })
    }

    fn revoke_jti(&self, jti: String, exp: u64) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let q = sqlx::query(
                "INSERT INTO gatewise_authz_jti (kind, jti, exp) VALUES ('revoked', $1, $2)
                 ON CONFLICT DO NOTHING",
            )
            .bind(jti)
            .bind(to_i64(exp));
            self.exec("revoking a token", q).await.map(|_| ())
        })
    }

    fn jti_revoked(&self, jti: String) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let found: Option<i32> = sqlx::query_scalar(
                "SELECT 1 FROM gatewise_authz_jti WHERE kind = 'revoked' AND jti = $1",
            )
            .bind(jti)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.err("reading a revoked token"))?;
            Ok(found.is_some())
        })
    }

    fn consume_jti(&self, client_id: String, jti: String, exp: u64) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let q = sqlx::query(
                "INSERT INTO gatewise_authz_jti (kind, jti, exp) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
            )
            .bind(format!("assertion:{client_id}"))
            .bind(jti)
            .bind(to_i64(exp));
            Ok(self.exec("recording an assertion jti", q).await? == 1)
        })
    }

    fn put_device(&self, d: DeviceRecord) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let q = sqlx::query(
                "INSERT INTO gatewise_authz_device
                 (hash, user_code, client_id, exp, poll_interval, last_poll, status, data)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)
                 ON CONFLICT (hash) DO UPDATE SET user_code = excluded.user_code,
                    client_id = excluded.client_id, exp = excluded.exp,
                    poll_interval = excluded.poll_interval, last_poll = excluded.last_poll,
                    status = excluded.status, data = excluded.data",
            )
            .bind(d.hash.to_vec())
            .bind(d.user_code.to_vec())
            .bind(d.client_id)
            .bind(to_i64(d.exp))
            .bind(to_i64(d.interval))
            .bind(d.last_poll.map(to_i64))
            .bind(d.status.name())
            .bind(d.data.to_string());
            self.exec("storing a device authorization", q)
                .await
                .map(|_| ())
        })
    }

    fn device(&self, hash: [u8; 32]) -> StoreFuture<'_, Option<DeviceRecord>> {
        Box::pin(self.read_device(false, hash))
    }

    fn device_by_user_code(&self, user_code: [u8; 32]) -> StoreFuture<'_, Option<DeviceRecord>> {
        Box::pin(self.read_device(true, user_code))
    }

    fn device_polled(&self, hash: [u8; 32], now: u64, interval: u64) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let q = sqlx::query(
                "UPDATE gatewise_authz_device SET last_poll = $2, poll_interval = $3
                 WHERE hash = $1",
            )
            .bind(hash.to_vec())
            .bind(to_i64(now))
            .bind(to_i64(interval));
            self.exec("recording a device poll", q).await.map(|_| ())
        })
    }

    fn decide_device(
        &self,
        user_code: [u8; 32],
        status: DeviceStatus,
        data: serde_json::Value,
        now: u64,
    ) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let q = sqlx::query(
                "UPDATE gatewise_authz_device SET status = $2, data = $3::jsonb
                 WHERE user_code = $1 AND status = 'pending' AND exp > $4",
            )
            .bind(user_code.to_vec())
            .bind(status.name())
            .bind(data.to_string())
            .bind(to_i64(now));
            Ok(self.exec("recording a device decision", q).await? == 1)
        })
    }

    fn redeem_device(&self, hash: [u8; 32]) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let q = sqlx::query(
                "UPDATE gatewise_authz_device SET status = 'redeemed'
                 WHERE hash = $1 AND status = 'approved'",
            )
            .bind(hash.to_vec());
            Ok(self.exec("redeeming a device authorization", q).await? == 1)
        })
    }

    fn purge(&self, now: u64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let now = to_i64(now);
            let mut n = self
                .exec(
                    "deleting expired grants",
                    sqlx::query("DELETE FROM gatewise_authz_grants WHERE exp + $2 <= $1")
                        .bind(now)
                        .bind(to_i64(KEEP_EXPIRED)),
                )
                .await?;
            n += self
                .exec(
                    "deleting expired families",
                    sqlx::query("DELETE FROM gatewise_authz_families WHERE exp <= $1").bind(now),
                )
                .await?;
            n += self
                .exec(
                    "deleting expired jtis",
                    sqlx::query("DELETE FROM gatewise_authz_jti WHERE exp <= $1").bind(now),
                )
                .await?;
            n += self
                .exec(
                    "deleting expired device authorizations",
                    sqlx::query("DELETE FROM gatewise_authz_device WHERE exp + $2 <= $1")
                        .bind(now)
                        .bind(to_i64(KEEP_EXPIRED)),
                )
                .await?;
            Ok(n)
        })
    }
}
