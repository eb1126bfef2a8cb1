//! `gatewise serve` and `gatewise config validate`: read the config file,
//! compile it, and run the gateway until SIGINT/SIGTERM; SIGHUP reloads.

use anyhow::{Context as _, bail};
use clap::Args;
use gatewise_config::Config;
use gatewise_gateway::{Gateway, server};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `gatewise serve`.
#[derive(Debug, Args)]
pub(crate) struct Serve {
    /// The configuration file (TOML; see docs/config.md).
    #[arg(long, short, default_value = "gatewise.toml", value_name = "FILE")]
    config: PathBuf,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
}

/// `gatewise config ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ConfigCommand {
    /// Check a configuration file and report every problem at once, with
    /// its path and line. Exit 0 when valid, 1 when not.
    Validate {
        /// The configuration file.
        #[arg(default_value = "gatewise.toml", value_name = "FILE")]
        file: PathBuf,
        /// Treat warnings as errors.
        #[arg(long)]
        deny_warnings: bool,
        /// Static checks only. Without it, each issuer's discovery document
        /// and JWKS are fetched and judged with the doctor's rules, and the
        /// configured algorithms must have keys.
        #[arg(long)]
        offline: bool,
    },
    /// Print a complete, commented example configuration.
    Example,
}

/// Secrets referenced by `client_secret_env` come from the process environment.
pub(crate) struct ProcessEnv;

impl gatewise_gateway::SecretSource for ProcessEnv {
    fn env(&self, name: &str) -> Option<String> {
        crate::input::env(name)
    }
}

/// Reads and compiles `path`; every error is printed with file, line and path.
fn load(path: &Path, deny_warnings: bool) -> anyhow::Result<Result<Config, String>> {
    crate::config_file::load(
        path,
        deny_warnings,
        None,
        "; nothing was started",
        |text, name| {
            gatewise_config::compile(text)
                .map(|c| {
                    let w = c
                        .warnings
                        .iter()
                        .map(|w| w.display_with(name).to_string())
                        .collect();
                    (c.config, w)
                })
                .map_err(|es| {
                    es.iter()
                        .map(|e| e.display_with(name).to_string())
                        .collect()
                })
        },
    )
}

pub(crate) fn config(cmd: ConfigCommand) -> anyhow::Result<u8> {
    match cmd {
        ConfigCommand::Validate {
            file,
            deny_warnings,
            offline,
        } => match load(&file, deny_warnings)? {
            Ok(cfg) => {
                #[allow(clippy::print_stdout)]
                {
                    println!(
                        "{}: valid ({} routes, {} upstreams, {} issuers)",
                        file.display(),
                        cfg.dynamic.routes.len(),
                        cfg.dynamic.upstreams.len(),
                        cfg.dynamic.issuers.len()
                    );
                }
                if offline || cfg.dynamic.issuers.is_empty() {
                    return Ok(0);
                }
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("cannot start the async runtime")?;
                rt.block_on(check_issuers(&cfg))
            }
            Err(report) => {
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("{report}");
                }
                Ok(1)
            }
        },
        ConfigCommand::Example => {
            #[allow(clippy::print_stdout)]
            {
                print!("{}", gatewise_config::EXAMPLE);
            }
            Ok(0)
        }
    }
}

/// Fetches each issuer's discovery document and JWKS and judges them with
/// the doctor's rules; 1 when any has an error or cannot be fetched.
async fn check_issuers(cfg: &Config) -> anyhow::Result<u8> {
    use gatewise_config::model::KeySource;
    use gatewise_core::diagnose::{self, Context, Expect};
    use gatewise_core::finding::Verdict;
    use gatewise_core::jose::Alg;
    use gatewise_core::jose::keyset::KeySet;
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .context("cannot build the HTTP client")?;
    // The response as the doctor reads captures.
    async fn fetch(http: &reqwest::Client, url: &str) -> Result<(Vec<u8>, Vec<u8>), String> {
        let r = http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| gatewise_core::error_chain(&e))?;
        let mut head = format!(
            "HTTP/1.1 {} {}\r\n",
            r.status().as_u16(),
            r.status().canonical_reason().unwrap_or("")
        );
        for (n, v) in r.headers() {
            head.push_str(&format!(
                "{n}: {}\r\n",
                String::from_utf8_lossy(v.as_bytes())
            ));
        }
        head.push_str("\r\n");
        let body = r.bytes().await.map_err(|e| e.to_string())?.to_vec();
        let mut capture = head.into_bytes();
        capture.extend_from_slice(&body);
        Ok((capture, body))
    }
    let mut worst = 0u8;
    for (i, issuer) in cfg.dynamic.issuers.iter().enumerate() {
        let mut findings = Vec::new();
        let mut problems: Vec<String> = Vec::new();
        // Fetches `url`, judges it as `expect`, and returns the body.
        async fn judged(
            http: &reqwest::Client,
            url: &str,
            ctx: Context,
            findings: &mut Vec<gatewise_core::Finding>,
            problems: &mut Vec<String>,
        ) -> Option<Vec<u8>> {
            match fetch(http, url).await {
                Ok((cap, body)) => {
                    findings.extend(diagnose::response(
                        &gatewise_core::capture::parse(&cap),
                        &ctx,
                    ));
                    Some(body)
                }
                Err(e) => {
                    problems.push(format!("cannot fetch {url}: {e}"));
                    None
                }
            }
        }
        let jwks_bytes: Option<Vec<u8>> = match &issuer.keys {
            KeySource::JwksFile(path) => match std::fs::read(path) {
                Ok(b) => {
                    findings.extend(diagnose::response(
                        &gatewise_core::capture::parse(&b),
                        &Context::new(Expect::Jwks),
                    ));
                    Some(b)
                }
                Err(e) => {
                    problems.push(format!("cannot read {}: {e}", path.display()));
                    None
                }
            },
            KeySource::JwksUri(url) => {
                judged(
                    &http,
                    url,
                    Context::new(Expect::Jwks),
                    &mut findings,
                    &mut problems,
                )
                .await
            }
            KeySource::Discovery(url) => {
                let mut ctx = Context::new(Expect::Discovery);
                ctx.issuer = Some(issuer.issuer.clone());
                let meta = judged(&http, url, ctx, &mut findings, &mut problems).await;
                // A missing jwks_uri is reported by the discovery judge.
                let jwks_uri = meta
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                    .and_then(|v| {
                        v.get("jwks_uri")
                            .and_then(|u| u.as_str())
                            .map(str::to_owned)
                    });
                match jwks_uri {
                    Some(j) => {
                        judged(
                            &http,
                            &j,
                            Context::new(Expect::Jwks),
                            &mut findings,
                            &mut problems,
                        )
                        .await
                    }
                    None => None,
                }
            }
        };
        if let Some(b) = jwks_bytes {
            let algs: Vec<Alg> = issuer
                .algorithms
                .iter()
                .filter_map(|a| Alg::parse(a))
                .collect();
            match KeySet::from_jwks(&b, &algs) {
                Ok(set) if set.is_empty() => problems.push(format!(
                    "the JWKS has no key usable with {} ({})",
                    issuer.algorithms.join(", "),
                    set.skipped.join("; ")
                )),
                Ok(set) => {
                    #[allow(clippy::print_stdout)]
                    {
                        println!(
                            "issuers[{i}] `{}`: {} usable key(s): {}",
                            issuer.name,
                            set.len(),
                            set.kids().join(", ")
                        );
                    }
                }
                Err(_) => {} // the JWKS judge already said why
            }
        }
        let report =
            gatewise_core::Report::new(format!("issuers[{i}] `{}`", issuer.name), findings);
        crate::render::report(&report, crate::render::Format::Human, None)?;
        for p in &problems {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: issuers[{i}] `{}`: {p}", issuer.name);
            }
        }
        let code = if problems.is_empty() {
            match report.verdict {
                Verdict::Error | Verdict::Unreachable => 1,
                _ => 0,
            }
        } else {
            1
        };
        worst = worst.max(code);
    }
    Ok(worst)
}

pub(crate) fn run(args: Serve) -> anyhow::Result<u8> {
    let logging = init_logging(args.log_json);
    let cfg = match load(&args.config, false)? {
        Ok(c) => c,
        Err(report) => bail!("{report}"),
    };
    let rt = crate::runtime::for_this_machine()?;
    rt.block_on(serve(args.config, cfg, logging))?;
    Ok(0)
}

async fn serve(
    path: PathBuf,
    cfg: Config,
    logging: gatewise_admin::LogControl,
) -> anyhow::Result<()> {
    let tls = match &cfg.static_config.tls {
        Some(t) => Some(Arc::new(
            gatewise_gateway::tls::CertStore::load(t)
                .context("cannot load the TLS certificates")?,
        )),
        None => None,
    };
    // Before anything listens: a build without the exporter refuses
    // `[telemetry.otlp]` here.
    let spans = crate::calls::start_spans(&cfg.static_config.telemetry)?;
    let cert_watch = tls
        .clone()
        .map(|store| tokio::spawn(store.watch(std::time::Duration::from_secs(2))));
    let listener = tokio::net::TcpListener::bind(cfg.static_config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.static_config.listen))?;
    let mut gateway = Gateway::with_secrets(
        cfg.dynamic.clone(),
        Arc::new(crate::clock::SystemClock),
        Arc::new(ProcessEnv),
    )
    .context("cannot set up the gateway")?;
    let call_log = if cfg.static_config.call_log.enabled {
        let log = crate::calls::start(&cfg.static_config.call_log).await?;
        match &cfg.static_config.call_log.postgres {
            Some(_) => tracing::info!("recording calls in PostgreSQL"),
            None => tracing::info!(
                path = %cfg.static_config.call_log.path.display(),
                "recording calls"
            ),
        }
        Some(log)
    } else {
        None
    };
    if let Some(logging) = crate::calls::tee(call_log.as_ref(), spans.as_ref()) {
        gateway = gateway.with_call_log(logging);
    }
    let gateway = Arc::new(gateway);
    let admin = match start_admin(&cfg, &gateway, call_log.as_ref(), spans.as_ref(), logging).await
    {
        Ok(a) => a,
        Err(e) => {
            if let Some(log) = call_log {
                log.shutdown().await;
            }
            if let Some(s) = spans {
                s.shutdown().await;
            }
            return Err(e);
        }
    };
    for (issuer, error) in gateway.load_keys().await {
        tracing::warn!(
            issuer,
            "keys not loaded yet (tokens are refused until a refetch succeeds): {error}"
        );
    }
    tracing::info!(
        listen = %cfg.static_config.listen,
        routes = cfg.dynamic.routes.len(),
        "gatewise is serving"
    );
    let reloader = tokio::spawn(reload_on_sighup(
        path,
        Arc::clone(&gateway),
        cfg.static_config.clone(),
    ));
    let result = server::serve(
        listener,
        Arc::clone(&gateway),
        &cfg.static_config,
        tls,
        shutdown_signal(),
    )
    .await;
    reloader.abort();
    if let Some(w) = cert_watch {
        w.abort();
    }
    if let Some(a) = admin {
        a.abort();
    }
    tracing::info!("gatewise stopped; {}", gateway.counters().summary());
    // The gateway (and its record sender) may live on in detached
    // connection tasks; the writer's shutdown flushes what was sent.
    if let Some(log) = call_log {
        log.shutdown().await;
    }
    if let Some(s) = spans {
        s.shutdown().await;
    }
    result.context("the server failed")
}

/// Starts the admin listener when `[admin]` is enabled: the call log
/// (read through its own connection), the gateway's state, the span
/// exporter's counters, health.
async fn start_admin(
    cfg: &Config,
    gateway: &Arc<Gateway>,
    call_log: Option<&crate::calls::CallLog>,
    spans: Option<&crate::calls::SpanExport>,
    logging: gatewise_admin::LogControl,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let ac = &cfg.static_config.admin;
    if !ac.enabled {
        return Ok(None);
    }
    let mut admin = gatewise_admin::Admin::new(Arc::new(crate::clock::SystemClock))
        .with_gateway(Arc::clone(gateway))
        .with_log_control(logging);
    if let Some(log) = call_log {
        let reader = crate::calls::reader(&cfg.static_config.call_log)
            .await
            .context("admin: cannot open the call log for reading")?;
        admin = admin
            .with_calls(reader)
            .with_writer(Arc::clone(&log.counters));
    }
    if let Some(spans) = spans {
        admin = admin.with_span_export(spans.counters());
    }
    if let Some(token) = &ac.token {
        let t = gatewise_gateway::resolve_secret(token, &ProcessEnv)
            .map_err(|e| anyhow::anyhow!("admin: the token: {e}"))?;
        admin = admin.with_token(t);
    }
    let listener = tokio::net::TcpListener::bind(ac.listen)
        .await
        .with_context(|| {
            format!(
                "admin: cannot listen on {} (set [admin] listen, or enabled = false)",
                ac.listen
            )
        })?;
    tracing::info!(listen = %ac.listen, "admin API and dashboard");
    Ok(Some(tokio::spawn(async move {
        if let Err(e) = admin.serve(listener, std::future::pending()).await {
            tracing::error!("admin listener failed: {e}");
        }
    })))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down: no new connections; finishing open requests");
}

/// Reload triggers: SIGHUP, and the file changing on disk (polled every
/// 2 s, then debounced by one more poll so a half-written file is not read).
/// Both compile the file again and swap routes, upstreams and issuers when
/// valid; the running config stays when not, or when a restart-only setting
/// changed.
async fn reload_on_sighup(
    path: PathBuf,
    gateway: Arc<Gateway>,
    running: gatewise_config::model::StaticConfig,
) {
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut seen = modified(&path);
    let mut pending: Option<std::time::SystemTime> = None;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        #[cfg(unix)]
        let hup_fired = async {
            match hup.as_mut() {
                Some(h) => h.recv().await.is_some(),
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hup_fired = std::future::pending::<bool>();
        let why = tokio::select! {
            fired = hup_fired => {
                if !fired { continue; }
                "SIGHUP"
            }
            _ = tick.tick() => {
                let now = modified(&path);
                if now == seen {
                    pending = None;
                    continue;
                }
                // Changed: reload once it has stayed the same for one poll.
                if pending != now {
                    pending = now;
                    continue;
                }
                "the file changed"
            }
        };
        seen = modified(&path);
        pending = None;
        reload(&path, &gateway, &running, why).await;
    }
}

async fn reload(
    path: &Path,
    gateway: &Gateway,
    running: &gatewise_config::model::StaticConfig,
    why: &str,
) {
    match load(path, false) {
        Ok(Ok(cfg)) => {
            let changed = gatewise_config::restart_required(running, &cfg.static_config);
            if !changed.is_empty() {
                let msg = format!(
                    "{} changed and needs a restart; the running configuration stays",
                    changed.join(", ")
                );
                tracing::error!("reload ({why}) refused: {msg}");
                gateway.note_reload(why, Some(msg));
                return;
            }
            match gateway.reload(cfg.dynamic).await {
                Ok(failures) => {
                    for (issuer, e) in failures {
                        tracing::warn!(issuer, "keys not loaded after reload: {e}");
                    }
                    tracing::info!("configuration reloaded ({why})");
                    gateway.note_reload(why, None);
                }
                Err(e) => {
                    tracing::error!("reload ({why}) refused; the running configuration stays: {e}");
                    gateway.note_reload(why, Some(e.to_string()));
                }
            }
        }
        Ok(Err(report)) => {
            tracing::error!("reload ({why}) refused; the running configuration stays:\n{report}");
            gateway.note_reload(why, Some(report));
        }
        Err(e) => {
            tracing::error!("reload ({why}) failed: {e:#}");
            gateway.note_reload(why, Some(format!("{e:#}")));
        }
    }
}

/// Installs the log subscriber (`GATEWISE_LOG` filter, default `info`;
/// JSON lines with `--log-json`) and returns the control the admin API
/// uses to read and change the filter while running.
fn init_logging(json: bool) -> gatewise_admin::LogControl {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("GATEWISE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // The handle types differ between the two formats: one closure each.
    macro_rules! control {
        ($builder:expr) => {{
            let builder = $builder;
            let handle = builder.reload_handle();
            builder.init();
            Arc::new(move |new: Option<&str>| -> Result<String, String> {
                if let Some(directives) = new {
                    let f = EnvFilter::try_new(directives)
                        .map_err(|e| format!("invalid filter {directives:?}: {e}"))?;
                    handle.reload(f).map_err(|e| e.to_string())?;
                    tracing::info!(
                        filter = directives,
                        "log filter changed through the admin API"
                    );
                }
                handle
                    .with_current(|f| f.to_string())
                    .map_err(|e| e.to_string())
            }) as gatewise_admin::LogControl
        }};
    }
    if json {
        control!(
            tracing_subscriber::fmt()
                .json()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .with_filter_reloading()
        )
    } else {
        control!(
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .with_filter_reloading()
        )
    }
}
