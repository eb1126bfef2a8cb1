//! Upstream pools: target choice (round-robin or least-requests), passive
//! ejection after consecutive failures, and each target's kept-alive
//! connections ([`crate::pool`]).

use crate::body::Body;
use crate::pool::{Connector, Conns, Mode, SendError, UpstreamBody};
use gatewise_config::model::{Balance, Upstream};
use hyper_rustls::ConfigBuilderExt as _;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use tokio::time::Instant;

/// One target of a pool.
#[derive(Debug)]
pub struct Target {
    /// Base URL, e.g. `http://127.0.0.1:9000` (no trailing slash).
    pub base: String,
    /// `host:port`, for `host_header = "target"`.
    pub authority: String,
    /// The scheme, parsed once.
    pub scheme: http::uri::Scheme,
    /// The authority, parsed once (request URIs are built from parts).
    pub uri_authority: http::uri::Authority,
    in_flight: AtomicU64,
    failures: AtomicU32,
    ejected_until: Mutex<Option<Instant>>,
    /// Result of the last active health check (true until one fails).
    healthy: std::sync::atomic::AtomicBool,
    /// The target's connections.
    conns: Arc<Conns>,
}

impl Target {
    fn available(&self) -> bool {
        if !self.healthy.load(Ordering::Relaxed) {
            return false;
        }
        match self.ejected_until.lock() {
            Ok(g) => g.is_none_or(|t| Instant::now() >= t),
            Err(_) => true,
        }
    }

    /// Whether the last active health check passed.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Requests in flight to this target.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Idle kept-alive HTTP/1.1 connections to this target.
    pub fn idle_connections(&self) -> usize {
        self.conns.idle_count()
    }

    /// Sends `req` (its URI the path and query; `Host` as the caller set
    /// it, else the target's) to this target; see [`Mode`].
    pub async fn send(
        &self,
        req: http::Request<Body>,
        mode: Mode,
    ) -> Result<http::Response<UpstreamBody>, SendError> {
        self.conns.send(req, mode).await
    }

    /// [`Target::send`], with the request back when it may go again
    /// ([`crate::pool::Conns::send_back`]).
    pub async fn send_back(
        &self,
        req: http::Request<Body>,
        mode: Mode,
    ) -> Result<http::Response<UpstreamBody>, crate::pool::Failed> {
        self.conns.send_back(req, mode).await
    }

    /// Whether a failed [`Target::send_back`] in `mode` gives the request
    /// back ([`crate::pool::Conns::returns_requests`]).
    pub fn returns_requests(&self, mode: Mode) -> bool {
        self.conns.returns_requests(mode)
    }
}

/// A pool of targets, each with its kept-alive connections (HTTP/1.1, or
/// HTTP/2 when an `https` target offers it by ALPN).
#[derive(Debug)]
pub struct Pool {
    /// Configuration.
    pub config: Upstream,
    /// Targets in configuration order.
    pub targets: Vec<Arc<Target>>,
    next: AtomicUsize,
}

impl Pool {
    /// Whether every target gives a failed request back in `mode`
    /// ([`Target::returns_requests`]): then a request that may go again
    /// needs no copy.
    pub fn returns_requests(&self, mode: Mode) -> bool {
        self.targets.iter().all(|t| t.returns_requests(mode))
    }
}

/// Decrements the target's in-flight count when dropped.
#[derive(Debug)]
pub struct InFlight(Arc<Target>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Pool {
    /// A pool for `config` (targets are validated `http(s)://host:port`
    /// URLs). `https` targets are verified against the system's roots, or
    /// only against `ca_file` when one is configured.
    pub fn new(config: Upstream) -> Result<Pool, String> {
        Pool::with_limits(config, crate::pool::MAX_IDLE, crate::pool::IDLE_TIMEOUT)
    }

    /// [`Pool::new`] keeping at most `max_idle` idle connections per target,
    /// each for at most `idle_timeout`.
    pub fn with_limits(
        config: Upstream,
        max_idle: usize,
        idle_timeout: std::time::Duration,
    ) -> Result<Pool, String> {
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let tls = match &config.ca_file {
            Some(path) => {
                let mut roots = rustls::RootCertStore::empty();
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                    .and_then(|it| it.collect::<Result<_, _>>())
                    .map_err(|e| {
                        format!(
                            "upstream `{}`: ca_file {}: {e}",
                            config.name,
                            path.display()
                        )
                    })?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(format!(
                        "upstream `{}`: ca_file {} holds no usable CA certificate",
                        config.name,
                        path.display()
                    ));
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            None => builder
                .with_native_roots()
                .map_err(|e| {
                    format!(
                        "upstream `{}`: cannot load the system's CA certificates: {e}",
                        config.name
                    )
                })?
                .with_no_client_auth(),
        };
        let connector = Arc::new(Connector::new(
            tls,
            config.connect_timeout,
            max_idle,
            idle_timeout,
        ));
        let targets = config
            .targets
            .iter()
            .map(|t| {
                let base = t.trim_end_matches('/').to_owned();
                let parsed: http::Uri = base
                    .parse()
                    .map_err(|e| format!("upstream `{}`: target {base}: {e}", config.name))?;
                let (Some(scheme), Some(uri_authority)) =
                    (parsed.scheme().cloned(), parsed.authority().cloned())
                else {
                    return Err(format!(
                        "upstream `{}`: target {base} needs scheme://host:port",
                        config.name
                    ));
                };
                let authority = uri_authority.as_str().to_owned();
                let conns = Conns::new(
                    Arc::clone(&connector),
                    scheme.clone(),
                    uri_authority.clone(),
                )
                .map_err(|e| format!("upstream `{}`: target {base}: {e}", config.name))?;
                Ok(Arc::new(Target {
                    base,
                    authority,
                    scheme,
                    uri_authority,
                    in_flight: AtomicU64::new(0),
                    failures: AtomicU32::new(0),
                    ejected_until: Mutex::new(None),
                    healthy: std::sync::atomic::AtomicBool::new(true),
                    conns: Arc::new(conns),
                }))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Pool {
            config,
            targets,
            next: AtomicUsize::new(0),
        })
    }

    /// Picks a target, skipping ejected ones (all ejected: try them anyway,
    /// an error is better than refusing outright), and `exclude` (a target
    /// that just failed, for a retry).
    pub fn pick(&self, exclude: Option<&Arc<Target>>) -> Option<(Arc<Target>, InFlight)> {
        // The common case, one target and no retry: no filtering, no allocation.
        if let ([only], None) = (self.targets.as_slice(), exclude) {
            only.in_flight.fetch_add(1, Ordering::Relaxed);
            return Some((Arc::clone(only), InFlight(Arc::clone(only))));
        }
        let usable: Vec<&Arc<Target>> = self
            .targets
            .iter()
            .filter(|t| t.available() && exclude.is_none_or(|x| !Arc::ptr_eq(x, t)))
            .collect();
        let candidates: Vec<&Arc<Target>> = if usable.is_empty() {
            self.targets
                .iter()
                .filter(|t| exclude.is_none_or(|x| !Arc::ptr_eq(x, t)))
                .collect()
        } else {
            usable
        };
        let chosen = match self.config.balance {
            Balance::RoundRobin => {
                let n = self.next.fetch_add(1, Ordering::Relaxed);
                candidates.get(n % candidates.len().max(1)).copied()
            }
            Balance::LeastRequests => candidates.iter().min_by_key(|t| t.in_flight()).copied(),
        }?;
        chosen.in_flight.fetch_add(1, Ordering::Relaxed);
        Some((Arc::clone(chosen), InFlight(Arc::clone(chosen))))
    }

    /// Records the outcome of a request to `target` (passive health).
    pub fn record(&self, target: &Target, ok: bool) {
        if ok {
            target.failures.store(0, Ordering::Relaxed);
            return;
        }
        let n = target.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= self.config.eject_after {
            if let Ok(mut g) = target.ejected_until.lock() {
                *g = Some(Instant::now() + self.config.eject_for);
            }
            target.failures.store(0, Ordering::Relaxed);
            tracing::warn!(upstream = %self.config.name, target = %target.base, "target ejected after {n} consecutive failures");
        }
    }
}

/// Starts the pool's active health checks, when configured: every
/// `interval`, `GET path` on each target; a 2xx or 3xx within `timeout`
/// marks it healthy, anything else takes it out of rotation until a check
/// passes again. The task ends when the pool is dropped (after a reload
/// that removed or changed it). Needs a Tokio runtime; without one, nothing
/// is started.
pub fn start_health_checks(pool: &Arc<Pool>) {
    let Some(hc) = pool.config.health_check.clone() else {
        return;
    };
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak = Arc::downgrade(pool);
    rt.spawn(async move {
        let mut tick = tokio::time::interval(hc.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(pool) = weak.upgrade() else { break };
            for target in &pool.targets {
                let ok = match hc.path.parse::<http::Uri>() {
                    Ok(uri) => {
                        let mut req = http::Request::new(crate::body::empty());
                        *req.uri_mut() = uri;
                        if let Ok(v) = http::HeaderValue::from_str(&target.authority) {
                            req.headers_mut().insert(http::header::HOST, v);
                        }
                        req.headers_mut().insert(
                            http::header::USER_AGENT,
                            http::HeaderValue::from_static("gatewise-health-check"),
                        );
                        matches!(
                            tokio::time::timeout(hc.timeout, target.send(req, Mode::Pooled))
                                .await,
                            Ok(Ok(r)) if r.status().is_success() || r.status().is_redirection()
                        )
                    }
                    Err(_) => false,
                };
                let was = target.healthy.swap(ok, Ordering::Relaxed);
                if was != ok {
                    if ok {
                        tracing::info!(upstream = %pool.config.name, target = %target.base, "health check passes again; back in rotation");
                    } else {
                        tracing::warn!(upstream = %pool.config.name, target = %target.base, "health check failed; out of rotation");
                    }
                }
            }
        }
    });
}
