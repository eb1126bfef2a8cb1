//! PostgreSQL for the tests: the server named by `GATEWISE_TEST_PG_URL`
//! (`.ci/run` starts one), or else a throwaway cluster started here from
//! the PostgreSQL binaries (`GATEWISE_TEST_PG_BIN`, or Debian's
//! `/usr/lib/postgresql/*/bin`), on 127.0.0.1 only. Each test gets a
//! database of its own, dropped afterwards.
//!
//! Without PostgreSQL a test is skipped with a notice on a developer's
//! machine, and fails when `CI=true`.
//!
//! The same helper as `gatewise-store`'s `tests/common/pg.rs`, here so
//! other crates' tests (the authorization server's) share it; the store's
//! tests can move to it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Weak};

/// The environment variable naming the test server.
pub const URL_VAR: &str = "GATEWISE_TEST_PG_URL";

/// An environment variable (the tests' configuration), if set and not
/// empty.
#[allow(
    clippy::disallowed_methods,
    reason = "tests are configured by the environment"
)]
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// What to do when PostgreSQL cannot be had: fail in CI, skip (with a
/// notice) elsewhere.
#[allow(clippy::print_stderr, reason = "a skipped test says so")]
pub fn unavailable(why: &str) {
    let in_ci = env("CI").is_some_and(|v| v == "true" || v == "1");
    assert!(
        !in_ci,
        "PostgreSQL is required when CI=true, but it is unavailable: {why}"
    );
    eprintln!(
        "NOTICE: skipping a PostgreSQL test: {why}. Set {URL_VAR}=postgres://user:password@127.0.0.1:port/db \
         (a role that may create databases), or install the PostgreSQL server."
    );
}

/// A small runtime for the tests' own SQL.
pub fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Runs statements on the database at `url`.
pub fn execute(url: &str, statements: &[&str]) -> Result<(), String> {
    use sqlx::Connection;
    block_on(async {
        let mut c = sqlx::PgConnection::connect(url)
            .await
            .map_err(|e| e.to_string())?;
        for s in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(s.to_string()))
                .execute(&mut c)
                .await
                .map_err(|e| e.to_string())?;
        }
        let _ = c.close().await;
        Ok(())
    })
}

/// One value from the database at `url`.
pub fn scalar<T>(url: &str, sql: &str) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    use sqlx::Connection;
    block_on(async {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        let v: T = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&mut c)
            .await
            .unwrap();
        let _ = c.close().await;
        v
    })
}

/// `url` with its database replaced.
pub fn with_database(url: &str, db: &str) -> String {
    let start = url.find("://").unwrap() + 3;
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let host_end = base[start..]
        .find('/')
        .map(|i| start + i)
        .unwrap_or(base.len());
    format!("{}/{db}{query}", &base[..host_end])
}

/// The directory of the PostgreSQL server binaries.
pub fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = env("GATEWISE_TEST_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A throwaway PostgreSQL cluster on 127.0.0.1, owned by this process
/// (stopped and deleted on drop). As root, it runs as the `postgres` user.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    pub port: u16,
    pub password: String,
}

impl Cluster {
    /// initdb (a superuser `gatewise` with a random password, password
    /// authentication over TCP) and start.
    pub fn start() -> Result<Cluster, String> {
        let bin = bin_dir().ok_or("no PostgreSQL server binaries found")?;
        if !bin.join("initdb").exists() {
            return Err(format!("no initdb in {}", bin.display()));
        }
        let dir = tempfile::Builder::new()
            .prefix("gatewise-test-pg")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let password = format!("pw-{:016x}", rand_u64());
        std::fs::write(dir.path().join("pwfile"), &password).map_err(|e| e.to_string())?;
        let as_postgres = is_root();
        if as_postgres {
            let st = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path())
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !st.success() {
                return Err("chown to the postgres user failed".into());
            }
        }
        let port = free_port();
        let c = Cluster {
            dir,
            bin,
            as_postgres,
            port,
            password,
        };
        c.run(
            "initdb",
            &[
                "-D",
                &c.data(),
                "-U",
                "gatewise",
                "--pwfile",
                &c.path("pwfile"),
                "-E",
                "UTF8",
                "--no-sync",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ],
        )?;
        c.start_server()?;
        Ok(c)
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn data(&self) -> String {
        self.path("data")
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd
            .args(args)
            .output()
            .map_err(|e| format!("{tool}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{tool} {args:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// `pg_ctl start`, waiting until it accepts connections.
    pub fn start_server(&self) -> Result<(), String> {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {}",
            self.port,
            self.dir.path().display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &self.path("server.log"),
                "-w",
                "-o",
                &opts,
                "start",
            ],
        )
    }

    /// `pg_ctl stop -m fast`: connections are ended, the server shuts
    /// down cleanly.
    pub fn stop_server(&self) -> Result<(), String> {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"])
    }

    /// The superuser's URL for a database.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://gatewise:{}@127.0.0.1:{}/{db}",
            self.password, self.port
        )
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(Path::new(&self.path("server.log"))).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id().into());
    h.finish()
}

/// Where the tests' databases live.
pub enum Server {
    /// `GATEWISE_TEST_PG_URL`.
    External(String),
    /// A cluster of this process.
    Private(Cluster),
}

impl Server {
    fn admin_url(&self) -> String {
        match self {
            Server::External(url) => url.clone(),
            Server::Private(c) => c.url("postgres"),
        }
    }
}

/// The server, shared by the tests running at the same time in this
/// process (a private cluster stops when the last of them ends).
fn server() -> Result<Arc<Server>, String> {
    static SHARED: Mutex<Weak<Server>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = shared.upgrade() {
        return Ok(s);
    }
    let s = match env(URL_VAR) {
        Some(url) => Arc::new(Server::External(url)),
        None => Arc::new(Server::Private(Cluster::start()?)),
    };
    *shared = Arc::downgrade(&s);
    Ok(s)
}

/// A database of one test's own; dropped with it.
pub struct PgDb {
    server: Arc<Server>,
    name: String,
    pub url: String,
}

impl PgDb {
    /// A fresh database, or `None` (after [`unavailable`]) when there is
    /// no PostgreSQL to be had.
    pub fn create() -> Option<PgDb> {
        let server = match server() {
            Ok(s) => s,
            Err(why) => {
                unavailable(&why);
                return None;
            }
        };
        Some(Self::create_on(server))
    }

    /// A fresh database on this server (which must work: an error fails the
    /// test).
    pub fn create_on(server: Arc<Server>) -> PgDb {
        static N: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "gw_test_{}_{}_{:x}",
            std::process::id(),
            N.fetch_add(1, SeqCst),
            rand_u64() & 0xffff_ffff
        );
        let admin = server.admin_url();
        if let Err(e) = execute(&admin, &[&format!("CREATE DATABASE {name}")]) {
            panic!(
                "cannot create a test database on {}: {e}",
                redact_url(&admin)
            );
        }
        let url = with_database(&admin, &name);
        PgDb { server, name, url }
    }

    /// The server's admin URL (the database named in it).
    pub fn admin_url(&self) -> String {
        self.server.admin_url()
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = execute(
            &self.server.admin_url(),
            &[&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )],
        );
    }
}

/// A private cluster for a test that stops and starts its server, or
/// `None` (after [`unavailable`]).
pub fn private_cluster() -> Option<Arc<Server>> {
    match Cluster::start() {
        Ok(c) => Some(Arc::new(Server::Private(c))),
        Err(why) => {
            unavailable(&why);
            None
        }
    }
}

impl Server {
    /// The cluster of a private server.
    pub fn cluster(&self) -> &Cluster {
        match self {
            Server::Private(c) => c,
            Server::External(_) => panic!("not a private cluster"),
        }
    }
}

/// `url` with the password in its user info replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let (head, rest) = url.split_at(scheme_end + 3);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let (userinfo, host) = authority.split_at(at);
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{head}{user}:***{host}{tail}"),
        None => url.to_owned(),
    }
}
