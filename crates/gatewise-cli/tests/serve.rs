//! `gatewise serve` as an operator runs it: start from a file, reload when
//! the file changes (keeping the running config when the new one is
//! invalid), stop cleanly on SIGTERM.

use gatewise_test_support::servers;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

fn free_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn config(listen: &str, admin: &str, echo: &str, routes: &[&str]) -> String {
    let mut s = format!(
        "[server]\nlisten = \"{listen}\"\nshutdown_grace = \"2s\"\n\n[admin]\nlisten = \"{admin}\"\n\n[[upstreams]]\nname = \"echo\"\ntargets = [\"http://{echo}\"]\n"
    );
    for r in routes {
        s.push_str(&format!(
            "\n[[routes]]\npath_prefix = \"{r}\"\nupstream = \"echo\"\n"
        ));
    }
    s
}

async fn status(http: &reqwest::Client, url: &str) -> u16 {
    match http.get(url).send().await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

/// The requests a stopped gateway served, from its last log line.
fn served(log: &str) -> u64 {
    log.split("gatewise stopped; requests=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in the log:\n{log}"))
}

/// Polls the admin API (5 s at most: the writer commits every 100 ms)
/// until a call matching `query` is readable; returns that page.
async fn first_call(http: &reqwest::Client, admin: &str, query: &str) -> serde_json::Value {
    for _ in 0..50 {
        let page: serde_json::Value = http
            .get(format!("http://{admin}/api/v1/calls?{query}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if page["calls"].as_array().is_some_and(|c| !c.is_empty()) {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no call with {query} showed in the admin API");
}

/// Polls until `url` answers `want` or `secs` pass.
async fn wait_for(http: &reqwest::Client, url: &str, want: u16, secs: u64) -> bool {
    for _ in 0..secs * 10 {
        if status(http, url).await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn serve_reloads_on_file_change_and_stops_on_sigterm() {
    let echo = servers::echo().await.to_string();
    let listen = free_port();
    let admin = free_port();
    let dir = std::env::temp_dir().join(format!("gatewise-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("gatewise.toml");
    std::fs::write(&file, config(&listen, &admin, &echo, &["/a"])).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_gatewise"))
        .args(["serve", "--config"])
        .arg(&file)
        // The call log's default place is relative to the working directory.
        .current_dir(&dir)
        .env("GATEWISE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://{listen}");
    assert!(
        wait_for(&http, &format!("{base}/a"), 200, 20).await,
        "the gateway did not come up"
    );
    assert_eq!(status(&http, &format!("{base}/b")).await, 404);

    // Add a route: picked up without a restart.
    tokio::time::sleep(Duration::from_millis(50)).await;
    std::fs::write(&file, config(&listen, &admin, &echo, &["/a", "/b"])).unwrap();
    assert!(
        wait_for(&http, &format!("{base}/b"), 200, 15).await,
        "the new route was not loaded"
    );

    // An invalid file: refused, the running routes stay.
    std::fs::write(
        &file,
        "[[routes]]\npath_prefix = \"/c\"\nupstream = \"nope\"\n",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(status(&http, &format!("{base}/b")).await, 200);

    // The admin API tells the story: one reload applied, the last refused
    // with its reason; the calls so far are in the log.
    let state: serde_json::Value = http
        .get(format!("http://{admin}/api/v1/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["gateway"]["config_version"], 2, "{state}");
    let last = &state["gateway"]["last_reload"];
    assert_eq!(last["trigger"], "the file changed", "{state}");
    assert!(
        last["error"]
            .as_str()
            .is_some_and(|e| e.contains("unknown upstream \"nope\"")),
        "{state}"
    );
    assert_eq!(state["gateway"]["routes"].as_array().map(Vec::len), Some(2));
    let live = http
        .get(format!("http://{admin}/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);

    // The log filter, read and changed while running: refusals are logged
    // at debug, so the next 404 shows in the log only after the change.
    let logging = format!("http://{admin}/api/v1/logging");
    let now: serde_json::Value = http
        .get(&logging)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(now["filter"], "info", "{now}");
    let bad = http
        .put(&logging)
        .json(&serde_json::json!({"filter": "gatewise_gateway=loud"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let set: serde_json::Value = http
        .put(&logging)
        .json(&serde_json::json!({"filter": "gatewise_gateway=debug,info"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(set["filter"], "gatewise_gateway=debug,info", "{set}");
    assert_eq!(
        status(&http, &format!("{base}/after-the-filter-change")).await,
        404
    );
    // The writer commits every 100 ms: the refused call is readable soon.
    let page = first_call(&http, &admin, "reason=route-not-found").await;
    assert_eq!(page["calls"][0]["status"], 404, "{page}");

    // SIGTERM: a clean stop with exit 0.
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut stopped = None;
    for _ in 0..100 {
        if let Some(s) = child.try_wait().unwrap() {
            stopped = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some(exit) = stopped else {
        let _ = child.kill();
        panic!("the gateway did not stop on SIGTERM");
    };
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(exit.success(), "exit {exit:?}\n{log}");
    assert!(
        log.contains("configuration reloaded (the file changed)"),
        "{log}"
    );
    assert!(
        log.contains("refused; the running configuration stays"),
        "{log}"
    );
    assert!(log.contains("unknown upstream \"nope\""), "{log}");
    assert!(
        log.contains("log filter changed through the admin API"),
        "{log}"
    );
    assert!(log.contains("route-not-found"), "{log}");
    assert!(log.contains("gatewise stopped; requests="), "{log}");
    // Every request served has its record, exactly, in the default SQLite file.
    let served = served(&log);
    assert!(served >= 4, "{log}");
    assert!(log.contains("call log flushed"), "{log}");
    use gatewise_store::CallLog as _;
    let mut store =
        gatewise_store::SqliteCallLog::open(dir.join("gatewise-data/calls.db")).unwrap();
    // Requests to the admin listener are not proxy calls: not recorded.
    let page = store
        .query(&gatewise_store::CallQuery {
            limit: 10_000,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.calls.len() as u64, served, "{log}");
    assert!(
        page.calls.iter().any(
            |c| c.record.status == 404 && c.record.reason.as_deref() == Some("route-not-found")
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn config_validate_fetches_and_judges_each_issuers_keys() {
    use gatewise_test_support::mint::TestKey;
    use gatewise_test_support::servers::DocServer;
    let rs = TestKey::new("RS256", "rs-1");
    let (jwks, addr) = DocServer::start(TestKey::jwks(&[&rs]).to_string()).await;
    let dir = std::env::temp_dir().join(format!("gatewise-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("gatewise.toml");
    std::fs::write(
        &file,
        format!(
            "[[issuers]]\nname = \"main\"\nissuer = \"https://as.test\"\njwks_uri = \"http://{addr}/jwks.json\"\n\
             [[upstreams]]\nname = \"api\"\ntargets = [\"http://127.0.0.1:9\"]\n\
             [[routes]]\npath_prefix = \"/\"\nupstream = \"api\"\n[routes.jwt]\nissuers = [\"main\"]\naudiences = [\"a\"]\n"
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let file = file.clone();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_gatewise"))
                .args(&args)
                .arg(&file)
                .output()
                .unwrap()
        })
    };
    let ok = run(&["config", "validate"]).await.unwrap();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(stdout.contains("1 usable key(s): rs-1"), "{stdout}");
    // Only an EC key published while the issuer allows RS256: refused.
    let ec = TestKey::new("ES256", "ec-1");
    jwks.set(TestKey::jwks(&[&ec]).to_string());
    let bad = run(&["config", "validate"]).await.unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no key usable with RS256"), "{stderr}");
    // --offline does not fetch.
    let hits = jwks.hits();
    let off = run(&["config", "validate", "--offline"]).await.unwrap();
    assert_eq!(off.status.code(), Some(0));
    assert_eq!(jwks.hits(), hits);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn authz_dev_prints_a_curl_that_gets_a_token() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatewise"))
        .args(["authz", "--dev", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Read until the curl line (printed before serving starts).
    // Read until the curl line, then keep draining in the background so the
    // server's later output never meets a closed pipe.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if !sent && line.trim_start().starts_with("curl ") {
                let _ = tx.send(line);
                sent = true;
            }
        }
    });
    let curl = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)))
        .await
        .unwrap()
        .expect("no curl line printed");
    // curl -s -u ID:SECRET -d grant_type=client_credentials -d scope=S URL
    let words: Vec<&str> = curl.split_whitespace().collect();
    let creds = words[words.iter().position(|w| *w == "-u").unwrap() + 1];
    let (id, secret) = creds.split_once(':').unwrap();
    let url = words.last().unwrap();
    let scope = words.iter().find_map(|w| w.strip_prefix("scope=")).unwrap();
    let mut answer = None;
    let mut last_error = String::new();
    // The server may still be starting (debug builds generate keys slowly).
    for _ in 0..100 {
        match reqwest::Client::new()
            .post(*url)
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials"), ("scope", scope)])
            .send()
            .await
        {
            Ok(r) => {
                let status = r.status();
                answer = Some((status, r.text().await.unwrap_or_default()));
                break;
            }
            Err(e) => last_error = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let (status, body) =
        answer.unwrap_or_else(|| panic!("no answer from {url}: {last_error}\n{curl}"));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let token = v["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("the printed curl did not get a token: {status} {body}\n{curl}"))
        .to_owned();
    assert_eq!(token.split('.').count(), 3, "a JWT access token");
}

#[tokio::test]
async fn serve_records_calls_in_postgresql_when_configured() {
    // The helper blocks (its own runtime): outside this test's runtime.
    let Some(db) = tokio::task::spawn_blocking(gatewise_test_support::pg::PgDb::create)
        .await
        .unwrap()
    else {
        return; // skipped with a notice (fails when CI=true)
    };
    let echo = servers::echo().await.to_string();
    let listen = free_port();
    let admin = free_port();
    let dir = std::env::temp_dir().join(format!("gatewise-serve-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("gatewise.toml");
    let text = format!(
        "{}\n[call_log]\npostgres_url_env = \"GW_TEST_CALLS_PG\"\nspool_dir = \"{}\"\n",
        config(&listen, &admin, &echo, &["/a"]),
        dir.join("spool").display()
    );
    std::fs::write(&file, text).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_gatewise"))
        .args(["serve", "--config"])
        .arg(&file)
        .current_dir(&dir)
        .env("GW_TEST_CALLS_PG", &db.url)
        .env("GATEWISE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://{listen}");
    assert!(
        wait_for(&http, &format!("{base}/a/1"), 200, 30).await,
        "the gateway did not come up"
    );
    for i in 0..5 {
        status(&http, &format!("{base}/a/{i}")).await;
    }
    assert_eq!(status(&http, &format!("{base}/nowhere")).await, 404);
    // The admin API reads PostgreSQL: the refusal shows up there.
    first_call(&http, &admin, "status=404").await;
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("recording calls in PostgreSQL"), "{log}");
    // Not a word of the URL (it holds the password) in the log.
    assert!(!log.contains(&db.url), "{log}");
    let served = served(&log) as i64;
    let url = db.url.clone();
    let rows: i64 = tokio::task::spawn_blocking(move || {
        gatewise_test_support::pg::scalar(&url, "SELECT count(*) FROM gatewise_calls")
    })
    .await
    .unwrap();
    assert_eq!(rows, served, "{log}");
    let _ = std::fs::remove_dir_all(&dir);
    tokio::task::spawn_blocking(move || drop(db)).await.unwrap();
}
