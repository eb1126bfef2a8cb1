//! A PostgreSQL database of a benchmark's own, on the server named by
//! `GATEWISE_TEST_PG_URL` (`.ci/run` shows how to start a throwaway one).
#![allow(dead_code, unreachable_pub)]

/// A database of the benchmark's own on the server in
/// `GATEWISE_TEST_PG_URL`, dropped afterwards.
pub struct BenchDb {
    admin: String,
    name: String,
    pub url: String,
}

pub fn pg_exec(url: &str, sql: &str) {
    use sqlx::Connection;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(&mut c)
                .await
                .unwrap();
            let _ = c.close().await;
        });
}

impl BenchDb {
    #[allow(
        clippy::disallowed_methods,
        clippy::print_stderr,
        reason = "the benchmark is configured by the environment, and says when it skips"
    )]
    pub fn create() -> Option<BenchDb> {
        let Some(admin) = std::env::var("GATEWISE_TEST_PG_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            eprintln!(
                "NOTICE: GATEWISE_TEST_PG_URL is not set: skipping the PostgreSQL benchmarks"
            );
            return None;
        };
        let name = format!("gw_bench_{}", std::process::id());
        pg_exec(&admin, &format!("DROP DATABASE IF EXISTS {name}"));
        pg_exec(&admin, &format!("CREATE DATABASE {name}"));
        let (base, query) = match admin.find('?') {
            Some(q) => (&admin[..q], &admin[q..]),
            None => (admin.as_str(), ""),
        };
        let host_end = base.find("://").map(|s| s + 3).unwrap_or(0);
        let path = base[host_end..]
            .find('/')
            .map(|i| host_end + i)
            .unwrap_or(base.len());
        let url = format!("{}/{name}{query}", &base[..path]);
        Some(BenchDb { admin, name, url })
    }

    /// Empties the table (between iterations, outside the timing).
    pub fn empty(&self) {
        pg_exec(
            &self.url,
            "TRUNCATE gatewise_calls; UPDATE gatewise_calls_meta SET row_count = 0, peak_rows = 0",
        );
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        pg_exec(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}
