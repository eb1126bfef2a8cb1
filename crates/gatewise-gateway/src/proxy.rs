//! The request path: route, authenticate, forward, answer.

use crate::Clock;
use crate::auth::{Authenticator, BearerHash, Principal, RouteIssuers};
use crate::body::{self, Body};
use crate::calls::{self, CallLogging, Pending, arrival, mark, note, note_denial};
use crate::inspect::{self, InspectorStats};
use crate::introspect::Introspection;
use crate::keys::IssuerKeys;
use crate::pool::{Mode, SendError};
use crate::problem::{Denial, RateFields};
use crate::ratelimit::{Decision, Limiter, LocalLimiter};
use crate::routes::{self, RouteTable};
use crate::upstream::{Pool, Target};
use arc_swap::ArcSwap;
use gatewise_config::model::{DynamicConfig, HeaderRules, HostHeader, PathMatch, RateKey, Route};
use gatewise_core::calllog::{Outcome, Step};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The realm named in Bearer challenges.
const REALM: &str = "gatewise";

/// Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded; parsed once
/// (a `static`: a `const` array would be built and dropped at every use).
static HOP_BY_HOP_NAMES: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

const X_AUTH_SUBJECT: HeaderName = HeaderName::from_static("x-auth-subject");
const X_AUTH_CLIENT_ID: HeaderName = HeaderName::from_static("x-auth-client-id");
const X_AUTH_SCOPES: HeaderName = HeaderName::from_static("x-auth-scopes");
const X_AUTH_ISSUER: HeaderName = HeaderName::from_static("x-auth-issuer");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Identity headers the gateway sets; any copy sent by a client is removed.
/// In the order of `auth::Identity::header_values`.
static IDENTITY_HEADERS: [HeaderName; 4] = [
    X_AUTH_ISSUER,
    X_AUTH_SUBJECT,
    X_AUTH_CLIENT_ID,
    X_AUTH_SCOPES,
];

/// A request's id, as text and as the header value sent upstream and back.
#[derive(Debug, Clone)]
pub(crate) struct RequestId {
    text: String,
    header: HeaderValue,
}

impl std::ops::Deref for RequestId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

/// Everything a reload swaps at once.
#[derive(Debug)]
pub struct State {
    config: DynamicConfig,
    table: RouteTable,
    pools: HashMap<String, Arc<Pool>>,
    issuers: HashMap<String, Arc<IssuerKeys>>,
    /// Per route (same index), its rate limiter.
    limiters: Vec<Option<Arc<dyn Limiter>>>,
    /// Per route (same index), its metric handles.
    route_metrics: Vec<crate::metrics::RouteMetrics>,
    /// Per route (same index), the issuers of its `jwt` policy.
    route_issuers: Vec<Option<RouteIssuers>>,
    /// Per route (same index), its upstream pool (`None`: not configured).
    route_pools: Vec<Option<Arc<Pool>>>,
    introspectors: HashMap<String, Arc<Introspection>>,
}

impl State {
    /// Builds the runtime state; issuers are shared with the previous
    /// state when their configuration did not change, so keys survive reloads.
    pub fn new(
        config: DynamicConfig,
        previous: Option<&State>,
        http: &reqwest::Client,
        secrets: &dyn crate::SecretSource,
        metrics: &crate::metrics::Metrics,
    ) -> Result<State, crate::GatewayError> {
        let mut introspectors = HashMap::new();
        for i in &config.introspectors {
            let keep = previous
                .and_then(|p| p.introspectors.get(&i.name))
                .filter(|old| old.config == *i)
                .cloned();
            let intro = match keep {
                Some(x) => x,
                None => {
                    let secret = crate::resolve_secret(&i.client_secret, secrets).map_err(|e| {
                        crate::GatewayError::Secret(format!(
                            "introspector `{}`: client secret: {e}",
                            i.name
                        ))
                    })?;
                    Arc::new(Introspection::new(i.clone(), secret, http.clone()))
                }
            };
            introspectors.insert(i.name.clone(), intro);
        }
        let issuers: HashMap<String, Arc<IssuerKeys>> = config
            .issuers
            .iter()
            .map(|i| {
                let keep = previous
                    .and_then(|p| p.issuers.get(&i.name))
                    .filter(|old| old.config == *i)
                    .cloned();
                (
                    i.name.clone(),
                    keep.unwrap_or_else(|| Arc::new(IssuerKeys::new(i.clone(), http.clone()))),
                )
            })
            .collect();
        let mut pools = HashMap::new();
        for u in &config.upstreams {
            let keep = previous
                .and_then(|p| p.pools.get(&u.name))
                .filter(|old| old.config == *u)
                .cloned();
            let pool = match keep {
                Some(p) => p,
                None => {
                    let pool =
                        Arc::new(Pool::new(u.clone()).map_err(crate::GatewayError::Upstream)?);
                    crate::upstream::start_health_checks(&pool);
                    pool
                }
            };
            pools.insert(u.name.clone(), pool);
        }
        let route_issuers = config
            .routes
            .iter()
            .map(|r| r.jwt.as_ref().map(|p| RouteIssuers::new(p, &issuers)))
            .collect();
        let route_pools = config
            .routes
            .iter()
            .map(|r| pools.get(&r.upstream).cloned())
            .collect();
        let limiters = config
            .routes
            .iter()
            .map(|r| {
                r.rate_limit
                    .as_ref()
                    .map(|rl| Arc::new(LocalLimiter::new(rl)) as Arc<dyn Limiter>)
            })
            .collect();
        let route_metrics = config
            .routes
            .iter()
            .map(|r| metrics.route(&r.name))
            .collect();
        Ok(State {
            route_metrics,
            route_issuers,
            route_pools,
            table: RouteTable::new(&config.routes),
            config,
            pools,
            issuers,
            limiters,
            introspectors,
        })
    }

    /// The issuers' key stores.
    pub fn issuers(&self) -> impl Iterator<Item = &Arc<IssuerKeys>> {
        self.issuers.values()
    }

    /// Each rate-limited route (in configuration order): its policy and
    /// what its limiter decided since this state was built (start or the
    /// last reload).
    pub fn rate_limits(&self) -> Vec<crate::ratelimit::RouteRateLimit> {
        self.config
            .routes
            .iter()
            .zip(&self.limiters)
            .filter_map(|(route, limiter)| {
                Some(crate::ratelimit::RouteRateLimit::new(
                    &route.name,
                    route.rate_limit.as_ref()?,
                    limiter.as_ref()?.stats(),
                ))
            })
            .collect()
    }

    /// Each introspector's result cache, by name.
    pub async fn introspection_caches(&self) -> Vec<crate::metrics::CacheStats> {
        let mut names: Vec<&String> = self.introspectors.keys().collect();
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            if let Some(i) = self.introspectors.get(name) {
                out.push(i.cache_stats().await);
            }
        }
        out
    }
}

/// The gateway: shared by every connection.
pub struct Gateway {
    state: ArcSwap<State>,
    auth: Authenticator,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    request_seq: AtomicU64,
    id_prefix: String,
    counters: crate::Counters,
    secrets: Arc<dyn crate::SecretSource>,
    inspector: InspectorStats,
    calls: Option<CallLogging>,
    config_version: AtomicU64,
    last_reload: std::sync::Mutex<Option<crate::status::ReloadEvent>>,
    metrics: crate::metrics::Metrics,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

/// Connection facts the handler needs, with the forwarding headers'
/// values rendered once per connection (not per request).
#[derive(Debug, Clone)]
pub struct Peer {
    /// The client's address.
    pub addr: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The client's IP as `X-Forwarded-For` carries it.
    ip: HeaderValue,
    /// `for=...;proto=...` of RFC 7239 `Forwarded`, without `host`.
    forwarded: HeaderValue,
}

impl Peer {
    /// The facts of a connection from `addr` (`tls`: over TLS).
    pub fn new(addr: SocketAddr, tls: bool) -> Peer {
        let ip = addr.ip().to_string();
        let proto = if tls { "https" } else { "http" };
        // RFC 7239 §6: an IPv6 node is quoted and bracketed.
        let forwarded = if addr.is_ipv6() {
            format!("for=\"[{ip}]\";proto={proto}")
        } else {
            format!("for={ip};proto={proto}")
        };
        Peer {
            addr,
            tls,
            ip: HeaderValue::from_str(&ip).unwrap_or_else(|_| HeaderValue::from_static("unknown")),
            forwarded: HeaderValue::from_str(&forwarded)
                .unwrap_or_else(|_| HeaderValue::from_static("for=unknown")),
        }
    }
}

impl Gateway {
    /// A gateway for `config`. Keys are not loaded yet: call
    /// [`Gateway::load_keys`] before serving (serving without keys answers
    /// 401 `jwt-kid-unknown` until a refetch succeeds).
    pub fn new(
        config: DynamicConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Gateway, crate::GatewayError> {
        Gateway::with_secrets(config, clock, Arc::new(crate::NoEnv))
    }

    /// A gateway whose secret references (`client_secret_env`) resolve
    /// through `secrets`.
    pub fn with_secrets(
        config: DynamicConfig,
        clock: Arc<dyn Clock>,
        secrets: Arc<dyn crate::SecretSource>,
    ) -> Result<Gateway, crate::GatewayError> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .connect_timeout(std::time::Duration::from_secs(3))
            .user_agent(concat!("gatewise/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        let metrics = crate::metrics::Metrics::default();
        let state = State::new(config, None, &http, secrets.as_ref(), &metrics)?;
        let mut seed = [0u8; 4];
        let _ = aws_lc_rs::rand::fill(&mut seed);
        Ok(Gateway {
            state: ArcSwap::from_pointee(state),
            auth: Authenticator::default(),
            clock,
            http,
            request_seq: AtomicU64::new(0),
            id_prefix: seed.iter().map(|b| format!("{b:02x}")).collect(),
            counters: crate::Counters::default(),
            secrets,
            inspector: InspectorStats::default(),
            calls: None,
            config_version: AtomicU64::new(1),
            last_reload: std::sync::Mutex::new(None),
            metrics,
        })
    }

    /// Records every call through `logging` (the call log).
    pub fn with_call_log(mut self, logging: CallLogging) -> Gateway {
        self.calls = Some(logging);
        self
    }

    /// Loads every issuer's keys; returns the failures (issuer name, error).
    pub async fn load_keys(&self) -> Vec<(String, String)> {
        let state = self.state.load_full();
        let mut failures = Vec::new();
        for i in state.issuers() {
            if let Err(e) = i.refresh().await {
                failures.push((i.config.name.clone(), e));
            }
        }
        failures
    }

    /// Swaps in a new dynamic configuration; in-flight requests finish on
    /// the old one.
    /// An error (an unreadable `ca_file`) keeps the running configuration.
    pub async fn reload(
        &self,
        config: DynamicConfig,
    ) -> Result<Vec<(String, String)>, crate::GatewayError> {
        let old = self.state.load_full();
        let new = Arc::new(State::new(
            config,
            Some(&old),
            &self.http,
            self.secrets.as_ref(),
            &self.metrics,
        )?);
        let mut failures = Vec::new();
        for i in new.issuers() {
            if i.kids().is_empty()
                && let Err(e) = i.refresh().await
            {
                failures.push((i.config.name.clone(), e));
            }
        }
        self.state.store(new);
        self.config_version.fetch_add(1, Ordering::Relaxed);
        Ok(failures)
    }

    /// Remembers a reload attempt for the admin API: applied (`error`
    /// `None`) or refused with the reason.
    pub fn note_reload(&self, trigger: &str, error: Option<String>) {
        if let Ok(mut last) = self.last_reload.lock() {
            *last = Some(crate::status::ReloadEvent {
                at: self.clock.unix_now(),
                trigger: trigger.to_owned(),
                error,
            });
        }
    }

    /// The Prometheus metrics as OpenMetrics text, without the final
    /// `# EOF` (the admin listener appends its own families, then ends it).
    pub fn encode_metrics(&self, out: &mut String) -> std::fmt::Result {
        self.metrics.encode(&self.status(), out)
    }

    /// What the gateway is doing now (the admin API's state page).
    pub fn status(&self) -> crate::status::GatewayStatus {
        use crate::status::{GatewayStatus, IssuerStatus, TargetStatus, UpstreamStatus};
        let state = self.state.load_full();
        let mut issuers: Vec<IssuerStatus> = state.issuers().map(|k| IssuerStatus::of(k)).collect();
        issuers.sort_by(|a, b| a.name.cmp(&b.name));
        let upstreams = state
            .config
            .upstreams
            .iter()
            .filter_map(|u| state.pools.get(&u.name))
            .map(|p| UpstreamStatus {
                name: p.config.name.clone(),
                targets: p
                    .targets
                    .iter()
                    .map(|t| TargetStatus {
                        base: t.base.clone(),
                        healthy: t.healthy(),
                        in_flight: t.in_flight(),
                    })
                    .collect(),
            })
            .collect();
        let by_count = |mut v: Vec<(&'static str, u64)>| {
            v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            v.into_iter().map(|(k, n)| (k.to_owned(), n)).collect()
        };
        GatewayStatus {
            config_version: self.config_version.load(Ordering::Relaxed),
            last_reload: self.last_reload.lock().ok().and_then(|l| l.clone()),
            routes: state.config.routes.iter().map(|r| r.name.clone()).collect(),
            upstreams,
            issuers,
            counters: (&self.counters).into(),
            inspector_findings: by_count(self.inspector.findings()),
            inspector_repairs: by_count(self.inspector.repairs()),
        }
    }

    /// The clock the gateway reads (Unix seconds).
    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    /// Counters since start.
    pub fn counters(&self) -> &crate::Counters {
        &self.counters
    }

    /// What the exchange inspector found so far.
    pub fn inspector(&self) -> &InspectorStats {
        &self.inspector
    }

    /// The current state.
    pub fn state(&self) -> Arc<State> {
        self.state.load_full()
    }

    /// The verified-token cache's entries, hits and misses (shared by every
    /// route and kept across reloads).
    pub fn token_cache(&self) -> crate::metrics::CacheStats {
        self.auth
            .cache_stats(self.counters.token_cache_hits.load(Ordering::Relaxed))
    }

    /// The client's `X-Request-Id` when it is a sane token, else a new
    /// `<process prefix>-<sequence in hex>`.
    fn request_id(&self, headers: &HeaderMap) -> RequestId {
        if let Some(h) = headers.get(&X_REQUEST_ID)
            && let Ok(v) = h.to_str()
            && !v.is_empty()
            && v.len() <= 128
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        {
            return RequestId {
                text: v.to_owned(),
                header: h.clone(),
            };
        }
        let n = self.request_seq.fetch_add(1, Ordering::Relaxed);
        // Written by hand: `format!` costs more than the rest of the id.
        let mut text = String::with_capacity(self.id_prefix.len() + 17);
        text.push_str(&self.id_prefix);
        text.push('-');
        let mut digits = [0u8; 16];
        let mut i = digits.len();
        let mut rest = n;
        loop {
            i -= 1;
            digits[i] = b"0123456789abcdef"[(rest & 15) as usize];
            rest >>= 4;
            if rest == 0 {
                break;
            }
        }
        for &d in &digits[i..] {
            text.push(char::from(d));
        }
        let header = HeaderValue::from_maybe_shared(bytes::Bytes::copy_from_slice(text.as_bytes()))
            .unwrap_or_else(|_| HeaderValue::from_static("invalid"));
        RequestId { text, header }
    }

    /// Handles one request.
    pub async fn handle<B>(self: Arc<Self>, req: Request<B>, peer: Peer) -> Response<Body>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + Sync + 'static,
        B::Error: Into<crate::body::BoxError>,
    {
        let request_id = self.request_id(req.headers());
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let state = self.state.load_full();
        let started = tokio::time::Instant::now();
        let mut req = req;
        let sample_ratio = self
            .calls
            .as_ref()
            .map_or(1.0, CallLogging::trace_sample_ratio);
        // The record keeps the headers as the client sent them: begun
        // before the gateway's own `traceparent` replaces the client's (the
        // record has the trace and span ids in fields of their own).
        let mut call = self.calls.as_ref().map(|c| {
            let start_ms = self.clock.unix_millis();
            c.begin(&req, &peer, &request_id, start_ms, started)
        });
        let trace = ensure_traceparent(req.headers_mut(), sample_ratio);
        if let Some(p) = &mut call {
            p.trace(&trace);
        }
        let mut matched = None;
        match self
            .route_and_forward(&state, req, &peer, &request_id, &mut call, &mut matched)
            .await
        {
            Ok(resp) => {
                self.metrics.observe(
                    matched.and_then(|i| state.route_metrics.get(i)),
                    resp.status().as_u16(),
                    "",
                    started.elapsed().as_secs_f64(),
                );
                // `x-request-id` is added after the record took the response
                // headers: the record has the request id in a field of its own.
                let mut resp = match call {
                    Some(p) => {
                        let (parts, body) = resp.into_parts();
                        let body = p.finish_with_body(parts.status, &parts.headers, body);
                        Response::from_parts(parts, body)
                    }
                    None => resp,
                };
                resp.headers_mut()
                    .insert(X_REQUEST_ID, request_id.header.clone());
                resp
            }
            Err(denial) => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                if denial.reason == "rate-limited" {
                    self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                }
                // Debug, not info: a flood of forged tokens must not become a
                // flood of log lines; counters and the call log keep the reasons.
                tracing::debug!(
                    request_id = &*request_id,
                    reason = denial.reason,
                    status = denial.status.as_u16(),
                    "refused: {}",
                    denial.detail
                );
                let reason = denial.reason;
                let resp = denial.into_response(REALM, &request_id);
                self.metrics.observe(
                    matched.and_then(|i| state.route_metrics.get(i)),
                    resp.status().as_u16(),
                    reason,
                    started.elapsed().as_secs_f64(),
                );
                if let Some(p) = call {
                    calls::refused(p, reason, &resp);
                }
                resp
            }
        }
    }

    async fn route_and_forward<B>(
        &self,
        state: &State,
        req: Request<B>,
        peer: &Peer,
        request_id: &RequestId,
        call: &mut Option<Pending>,
        matched: &mut Option<usize>,
    ) -> Result<Response<Body>, Denial>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + Sync + 'static,
        B::Error: Into<crate::body::BoxError>,
    {
        let (parts, incoming) = req.into_parts();
        let path = parts.uri.path();
        let routes = &state.config.routes;
        let t = arrival(call);
        if let Err(detail) = check_host(&parts.headers) {
            let d = Denial::new(
                StatusCode::BAD_REQUEST,
                "host-invalid",
                "The request's Host is invalid",
                detail,
            );
            note(call, t, Step::Route, Outcome::Refused, Some(d.reason));
            return Err(d);
        }
        let host = request_host(&parts.uri, &parts.headers);
        let route = state
            .table
            .find(routes, host, path, parts.method.as_str())
            .and_then(|i| Some((i, routes.get(i)?)));
        let Some((index, route)) = route else {
            let d = Denial::route_not_found(parts.method.as_str(), path);
            note(call, t, Step::Route, Outcome::Refused, Some(d.reason));
            return Err(d);
        };
        *matched = Some(index);
        if let Some(c) = call.as_mut() {
            c.record.route = Some(route.name.clone());
        }
        // Each step starts when the one before ended: one clock reading
        // per step, not two.
        let t = note(call, t, Step::Route, Outcome::Ok, None);
        if let Some(len) = content_length(&parts.headers)
            && len > state.config.max_body_bytes
        {
            let d = Denial::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "The request body is too large",
                format!(
                    "the body is {len} bytes; the limit is {}",
                    state.config.max_body_bytes
                ),
            );
            note_denial(call, t, Step::BodyLimit, Outcome::Refused, &d);
            return Err(d);
        }
        let auth_step = if route.jwt.is_some() {
            Step::Jwt
        } else {
            Step::Introspection
        };
        let known = call.as_ref().and_then(Pending::bearer);
        let principal = match self.principal(state, index, route, &parts, known).await {
            Ok(p) => p,
            Err(d) => {
                let end = note_denial(call, t, auth_step, Outcome::Refused, &d);
                if let (Some(c), Some(t), Some(end)) = (call.as_mut(), t, end) {
                    c.record.auth_us = Some(micros(end.saturating_duration_since(t)));
                }
                return Err(d);
            }
        };
        // A recorded request's principal moves into its record (which
        // lends it back below); otherwise it stays here.
        let (principal, t) = match (call.as_mut(), principal, t) {
            (Some(c), Some(p), Some(t)) => {
                let end = tokio::time::Instant::now();
                c.record.auth_us = Some(micros(end.saturating_duration_since(t)));
                c.step_at(auth_step, Outcome::Ok, None, t, end);
                c.set_principal(p);
                (None, Some(end))
            }
            (_, p, t) => (p, t),
        };
        let rate = match (
            state.limiters.get(index).and_then(Option::as_ref),
            &route.rate_limit,
        ) {
            (Some(limiter), Some(rl)) => {
                let who = principal
                    .as_ref()
                    .or_else(|| call.as_ref().and_then(Pending::principal));
                let key = rate_key(&rl.key, who, &parts.headers, peer);
                let fields = RateFields {
                    limit: limiter.limit(),
                    remaining: 0,
                    reset: limiter.window_secs(),
                };
                match limiter.check(&key) {
                    Decision::Allow { remaining } => {
                        note(call, t, Step::RateLimit, Outcome::Ok, None);
                        Some(RateFields {
                            remaining,
                            ..fields
                        })
                    }
                    Decision::Deny { retry_after } => {
                        let d = Denial::rate_limited(retry_after, fields);
                        note_denial(call, t, Step::RateLimit, Outcome::Refused, &d);
                        return Err(d);
                    }
                }
            }
            _ => None,
        };
        let Some(pool) = state.route_pools.get(index).and_then(Option::as_ref) else {
            let d = Denial::new(
                StatusCode::BAD_GATEWAY,
                "upstream-missing",
                "No upstream is configured",
                "the route's upstream is not configured",
            );
            note_denial(call, mark(call), Step::Upstream, Outcome::Error, &d);
            return Err(d);
        };
        let limit = state.config.max_body_bytes;
        let body = body::boxed(http_body_util::Limited::new(
            incoming,
            usize::try_from(limit).unwrap_or(usize::MAX),
        ));
        let mut resp = forward(
            pool,
            route,
            parts,
            body,
            principal.as_ref(),
            peer,
            request_id,
            &self.inspector,
            call,
        )
        .await?;
        if let Some(r) = rate {
            r.write(resp.headers_mut());
        }
        Ok(resp)
    }

    /// Runs the route's token policy (route `index` in the table): the
    /// principal, `None` for an open route.
    async fn principal(
        &self,
        state: &State,
        index: usize,
        route: &Route,
        parts: &http::request::Parts,
        known: Option<&BearerHash>,
    ) -> Result<Option<Principal>, Denial> {
        Ok(match &route.jwt {
            Some(policy) => {
                let issuers = state
                    .route_issuers
                    .get(index)
                    .and_then(Option::as_ref)
                    .ok_or_else(|| {
                        Denial::new(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "route-issuers-missing",
                            "The route's issuers are not configured",
                            "the route's jwt policy has no issuers in this configuration",
                        )
                    })?;
                Some(
                    self.auth
                        .authenticate(
                            parts,
                            policy,
                            issuers,
                            self.clock.unix_now(),
                            &self.counters,
                            known,
                        )
                        .await?,
                )
            }
            None => match &route.introspection {
                Some(policy) => {
                    let intro = state
                        .introspectors
                        .get(&policy.introspector)
                        .ok_or_else(|| {
                            Denial::new(
                                StatusCode::INTERNAL_SERVER_ERROR,
                                "introspector-missing",
                                "The route's introspector is not configured",
                                "the route names an introspector that is not configured",
                            )
                        })?;
                    Some(
                        self.auth
                            .introspect(parts, policy, intro, self.clock.unix_now(), known)
                            .await?,
                    )
                }
                None => None,
            },
        })
    }
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// W3C Trace Context §3.2 (`traceparent`): the gateway takes part in the
/// trace. A valid `traceparent` from the client gives the trace id, the
/// client's span (the gateway's parent) and the `sampled` flag; otherwise
/// (absent or malformed: §3.2.2.3 / §4.3 restart the trace) the gateway
/// starts a trace and decides `sampled` by `sample_ratio` over the new
/// trace id. Either way the gateway's own span id goes upstream as the
/// `parent-id` (§3.2.2.4), so the upstream's spans hang under the
/// gateway's; the header is written in version 00 with only the `sampled`
/// flag set or not (§3.2.2.5: the other bits of version 00 are zero).
fn ensure_traceparent(h: &mut HeaderMap, sample_ratio: f64) -> calls::TraceContext {
    let span_id = nonzero_random().to_be_bytes();
    let ctx = match h
        .get(&TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_traceparent)
    {
        Some((trace_id, parent, flags)) => calls::TraceContext {
            trace_id,
            span_id,
            parent_id: Some(parent),
            sampled: flags & 1 == 1,
        },
        None => {
            let mut trace_id = [0u8; 16];
            trace_id[..8].copy_from_slice(&nonzero_random().to_be_bytes());
            trace_id[8..].copy_from_slice(&trace_random().to_be_bytes());
            calls::TraceContext {
                trace_id,
                span_id,
                parent_id: None,
                sampled: ratio_sampled(&trace_id, sample_ratio),
            }
        }
    };
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut v = Vec::with_capacity(55);
    v.extend_from_slice(b"00-");
    for (i, b) in ctx.trace_id.iter().chain(&ctx.span_id).enumerate() {
        if i == 16 {
            v.push(b'-');
        }
        v.push(DIGITS[usize::from(b >> 4)]);
        v.push(DIGITS[usize::from(b & 15)]);
    }
    v.extend_from_slice(if ctx.sampled { b"-01" } else { b"-00" });
    if let Ok(value) = HeaderValue::from_maybe_shared(bytes::Bytes::from(v)) {
        h.insert(TRACEPARENT, value);
    }
    ctx
}

/// The sampling decision for a trace the gateway starts: OpenTelemetry's
/// `TraceIdRatioBased` rule (the trace id's last 8 bytes, halved, against
/// `ratio` × 2^63), so that every process using the rule agrees on a trace.
fn ratio_sampled(trace_id: &[u8; 16], ratio: f64) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    if ratio.is_nan() || ratio <= 0.0 {
        return false;
    }
    let mut low = [0u8; 8];
    low.copy_from_slice(&trace_id[8..]);
    // `as` saturates; ratio < 1 keeps the bound below 2^63.
    let bound = (ratio * (1u64 << 63) as f64) as u64;
    (u64::from_be_bytes(low) >> 1) < bound
}

/// A random 64-bit value that is not 0 (an all-zero id is invalid, §3.2.2.3
/// and §3.2.2.4).
fn nonzero_random() -> u64 {
    loop {
        let v = trace_random();
        if v != 0 {
            return v;
        }
    }
}

/// Random 64-bit values for trace and span ids: SplitMix64 per thread,
/// seeded once from the operating system. Trace ids must be unique, not
/// secret (W3C Trace Context §3.2.2.3); a cryptographic generator per
/// request costs more than the rest of the header handling.
fn trace_random() -> u64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let mut seed = [0u8; 8];
            let _ = aws_lc_rs::rand::fill(&mut seed);
            // Never 0 even if the OS gave nothing: mixed with the thread's address.
            u64::from_le_bytes(seed) ^ (&seed as *const _ as u64) | 1
        });
    }
    STATE.with(|s| {
        let next = s.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        s.set(next);
        let mut z = next;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

/// `00-<32 hex trace id, not all zero>-<16 hex parent id, not all zero>-<2 hex flags>`
/// (version 00; a later version with these parts is accepted as §3.2.4 asks).
#[cfg(test)]
fn valid_traceparent(v: &str) -> bool {
    parse_traceparent(v).is_some()
}

/// The trace id, parent id and flags of a valid `traceparent` (see
/// [`valid_traceparent`]; lowercase hex only, §3.2.2.3).
fn parse_traceparent(v: &str) -> Option<([u8; 16], [u8; 8], u8)> {
    let mut parts = v.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let extra = parts.next().is_some();
    let mut version_byte = [0u8; 1];
    let mut trace_id = [0u8; 16];
    let mut parent_id = [0u8; 8];
    let mut flag_byte = [0u8; 1];
    let ok = lower_hex(version, &mut version_byte)
        && version_byte[0] != 0xff
        // Version 00 has exactly four parts; a later version may have more.
        && (!extra || version_byte[0] != 0)
        && lower_hex(trace, &mut trace_id)
        && trace_id.iter().any(|&b| b != 0)
        && lower_hex(parent, &mut parent_id)
        && parent_id.iter().any(|&b| b != 0)
        && lower_hex(flags, &mut flag_byte);
    ok.then_some((trace_id, parent_id, flag_byte[0]))
}

/// Decodes exactly `out.len() * 2` lowercase hex digits into `out`.
fn lower_hex(s: &str, out: &mut [u8]) -> bool {
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    if s.len() != out.len() * 2 {
        return false;
    }
    for (o, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        match (
            pair.first().copied().and_then(digit),
            pair.get(1).copied().and_then(digit),
        ) {
            (Some(h), Some(l)) => *o = h << 4 | l,
            _ => return false,
        }
    }
    true
}

/// The request's host without port: from the URI (HTTP/2, absolute form)
/// or the `Host` header.
fn request_host<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Option<&'a str> {
    let raw = match uri.host() {
        Some(h) => h,
        None => headers.get(header::HOST)?.to_str().ok()?,
    };
    if raw.starts_with('[') {
        // [v6]:port
        raw.find(']').and_then(|i| raw.get(..=i))
    } else {
        // Bytes, not `split(':')`: that builds a char searcher per request.
        let end = raw.bytes().position(|b| b == b':').unwrap_or(raw.len());
        raw.get(..end)
    }
}

/// RFC 9112 §3.2: one `Host` at most, and its value `uri-host [ ":" port ]`
/// (RFC 9110 §7.2): an authority without user info, and a port of digits.
/// What routing matches and what `X-Forwarded-Host` and `Forwarded` carry
/// upstream is then the same host.
fn check_host(headers: &HeaderMap) -> Result<(), String> {
    let mut all = headers.get_all(header::HOST).iter();
    let Some(v) = all.next() else {
        return Ok(());
    };
    if all.next().is_some() {
        return Err("more than one Host header".to_owned());
    }
    let valid = !v.is_empty()
        && !v.as_bytes().contains(&b'@')
        && http::uri::Authority::try_from(v.as_bytes()).is_ok_and(|a| {
            let hostport = a.as_str();
            let port_part = match hostport.rfind(':') {
                // `[v6]` without a port: the colons are the address's.
                Some(i) if !hostport.ends_with(']') => hostport.get(i + 1..),
                _ => None,
            };
            !a.host().is_empty()
                && port_part.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "the Host header is not a host with an optional port: {:?}",
            String::from_utf8_lossy(v.as_bytes())
                .chars()
                .take(100)
                .collect::<String>()
        ))
    }
}

/// The host (and port) the client asked for, as it sent it: the URI's
/// authority without user info (HTTP/2, absolute form), else `Host`
/// (RFC 9110 §7.2). `X-Forwarded-Host`, `Forwarded: host=` (RFC 7239 §5.3:
/// "the original value of the Host request header field") and a preserved
/// `Host` carry it.
fn client_authority(uri: &Uri, headers: &HeaderMap) -> Option<HeaderValue> {
    match uri.authority() {
        Some(a) => {
            let hostport = a.as_str().rsplit_once('@').map_or(a.as_str(), |(_, h)| h);
            HeaderValue::from_str(hostport).ok()
        }
        None => headers.get(header::HOST).cloned(),
    }
}

/// The value a rate limit counts by. A missing key (no such header, no
/// `client_id` in the token) shares one bucket, named so it shows in logs.
fn rate_key(
    key: &RateKey,
    principal: Option<&Principal>,
    headers: &HeaderMap,
    peer: &Peer,
) -> String {
    let v = match key {
        RateKey::ClientId => principal.and_then(|p| p.client_id.clone()),
        RateKey::Subject => principal.and_then(|p| p.subject.clone()),
        RateKey::ClientIp => Some(peer.addr.ip().to_string()),
        RateKey::Header(name) => headers
            .get(name.as_str())
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    v.unwrap_or_else(|| "(none)".to_owned())
}

fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[allow(clippy::too_many_arguments)]
async fn forward(
    pool: &Pool,
    route: &Route,
    mut parts: http::request::Parts,
    body: Body,
    principal: Option<&Principal>,
    peer: &Peer,
    request_id: &RequestId,
    inspector: &InspectorStats,
    call: &mut Option<Pending>,
) -> Result<Response<Body>, Denial> {
    // A recorded request's principal is in its record (see `route_and_forward`).
    let principal = principal.or_else(|| call.as_ref().and_then(Pending::principal));
    let original_host = client_authority(&parts.uri, &parts.headers);
    // An upgrade (WebSocket and others, HTTP/1.1 only): the protocol token
    // is passed on, and after a 101 both connections are spliced.
    let upgrade = upgrade_protocol(&parts.headers);
    let mut client_upgrade = upgrade
        .as_ref()
        .and_then(|_| parts.extensions.remove::<hyper::upgrade::OnUpgrade>());
    strip_hop_by_hop(&mut parts.headers);
    if let Some(proto) = &upgrade {
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        parts.headers.insert(header::UPGRADE, proto.clone());
    }
    strip_identity(&mut parts.headers);
    let (forward_claims, strip_authorization) = match (&route.jwt, &route.introspection) {
        (Some(j), _) => (j.forward_claims, j.strip_authorization),
        (None, Some(i)) => (i.forward_claims, i.strip_authorization),
        (None, None) => (false, false),
    };
    if let Some(p) = principal {
        if forward_claims {
            // Rendered once per verified token (`auth::Identity`): a
            // reference count each.
            for (name, value) in IDENTITY_HEADERS.iter().zip(p.header_values()) {
                if let Some(v) = value {
                    parts.headers.insert(name.clone(), v.clone());
                }
            }
        }
        if strip_authorization {
            parts.headers.remove(header::AUTHORIZATION);
        }
    }
    forwarded_headers(&mut parts.headers, peer, original_host.as_ref());
    parts
        .headers
        .insert(X_REQUEST_ID, request_id.header.clone());
    apply_request_rules(&mut parts.headers, &route.headers);

    let invalid = || {
        Denial::new(
            StatusCode::BAD_GATEWAY,
            "upstream-uri-invalid",
            "The upstream address is invalid",
            "could not build the upstream URI",
        )
    };
    // The request's path and query, shared (no copy) unless a prefix is stripped.
    let forwarded_path: http::uri::PathAndQuery = match (&route.matcher.path, route.strip_prefix) {
        (PathMatch::Prefix(prefix), true) => {
            let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            routes::strip(prefix, pq).parse().map_err(|_| invalid())?
        }
        _ => parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/")),
    };
    // Retry only idempotent requests without a body, so nothing was sent
    // that cannot be sent again (RFC 9110 §9.2.2).
    let replayable = is_idempotent(&parts.method) && http_body::Body::is_end_stream(&body);
    let attempts = if replayable {
        1 + pool.config.retries
    } else {
        1
    };
    let first_mode = if upgrade.is_some() {
        Mode::Upgrade
    } else {
        Mode::Pooled
    };
    let mut body = Some(body);
    let mut failed: Option<Arc<Target>> = None;
    let started = tokio::time::Instant::now();
    let mut last_error = Denial::new(
        StatusCode::BAD_GATEWAY,
        "upstream-unavailable",
        "The upstream is unavailable",
        "no upstream target",
    );
    // The first attempt starts now; a later one reads the clock again.
    let mut first = Some(started);
    // A request a failed attempt gave back, to go again as it is.
    let mut back: Option<Request<Body>> = None;
    // The headers moved into a request (not copied): only a request given
    // back can go again.
    let mut moved = false;
    for _ in 0..attempts {
        let Some((target, _in_flight)) = pool.pick(failed.as_ref()) else {
            break;
        };
        let mut sent_at = first.take().unwrap_or_else(tokio::time::Instant::now);
        let t = call.as_ref().map(|_| sent_at);
        if let Some(c) = call.as_mut() {
            c.upstream(&pool.config.name, &target.authority, sent_at);
        }
        let mut mode = first_mode;
        let sent = loop {
            let mut up = match back.take() {
                Some(mut up) => {
                    // The pool may have set the last target's `Host`.
                    up.headers_mut().remove(header::HOST);
                    up
                }
                None if moved => break None,
                None => {
                    // The URI in origin form; the pool adds the target for HTTP/2.
                    let mut up = Request::new(body.take().unwrap_or_else(body::empty));
                    *up.method_mut() = parts.method.clone();
                    // Headers are copied only when the request may go again
                    // and a target of the pool would not give it back (TLS,
                    // HTTP/2), or the inspector wants them; otherwise they move.
                    let copy =
                        route.inspect.is_some() || (replayable && !pool.returns_requests(mode));
                    *up.headers_mut() = if copy {
                        parts.headers.clone()
                    } else {
                        moved = true;
                        std::mem::take(&mut parts.headers)
                    };
                    *up.uri_mut() = Uri::from(forwarded_path.clone());
                    *up.version_mut() = http::Version::HTTP_11;
                    up
                }
            };
            match &pool.config.host_header {
                HostHeader::Preserve => {
                    if let Some(h) = original_host.clone() {
                        up.headers_mut().insert(header::HOST, h);
                    }
                }
                HostHeader::Target => {
                    if let Ok(v) = HeaderValue::from_str(&target.authority) {
                        up.headers_mut().insert(header::HOST, v);
                    }
                }
                HostHeader::Fixed(h) => {
                    if let Ok(v) = HeaderValue::from_str(h) {
                        up.headers_mut().insert(header::HOST, v);
                    }
                }
            }
            // The first byte must come within first_byte_timeout and within
            // what is left of total_timeout (measured from `sent_at`, the
            // clock reading of this attempt: not read again here).
            let left = pool
                .config
                .total_timeout
                .saturating_sub(sent_at.saturating_duration_since(started));
            let sent = tokio::time::timeout_at(
                sent_at + pool.config.first_byte_timeout.min(left),
                target.send_back(up, mode),
            )
            .await
            .map(|r| {
                r.map_err(|f| {
                    back = f.request;
                    f.error
                })
            });
            // Sent on a kept-alive connection the upstream had closed, no
            // answer: a replayable request goes again, once, on a new
            // connection to the same target (RFC 9112 §9.3.1); that is the
            // connection's fault, not the target's.
            if replayable && mode == Mode::Pooled && matches!(sent, Ok(Err(SendError::Stale(_)))) {
                mode = Mode::Fresh;
                sent_at = tokio::time::Instant::now();
                continue;
            }
            break Some(sent);
        };
        // Nothing left to send: the headers went with a request that did
        // not come back (no copy was needed, as no retry was foreseen).
        let Some(sent) = sent else {
            break;
        };
        match sent {
            Ok(Ok(mut resp)) => {
                pool.record(&target, !resp.status().is_server_error());
                if let (Some(c), Some(t)) = (call.as_mut(), t) {
                    // One clock reading: the first byte and the step's end.
                    let now = tokio::time::Instant::now();
                    c.first_byte(now);
                    c.step_at(Step::Upstream, Outcome::Ok, None, t, now);
                }
                if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                    return splice(
                        resp.headers().get(header::UPGRADE).cloned(),
                        client_upgrade.take(),
                        hyper::upgrade::on(&mut resp),
                        resp,
                        request_id,
                    );
                }
                let (mut rparts, rbody) = resp.into_parts();
                strip_hop_by_hop(&mut rparts.headers);
                let deadline = started + pool.config.total_timeout;
                if let Some(kind) = route.inspect {
                    let mut seen = Request::new(());
                    *seen.method_mut() = parts.method.clone();
                    *seen.uri_mut() = parts.uri.clone();
                    *seen.headers_mut() = parts.headers.clone();
                    let (seen, ()) = seen.into_parts();
                    let (p, b, found) = inspect::inspect(
                        kind,
                        route.repair,
                        &seen,
                        rparts,
                        body::boxed(rbody),
                        inspector,
                        &route.name,
                    )
                    .await;
                    if let Some(c) = call.as_mut() {
                        c.findings(&found.findings);
                        if !found.repairs.is_empty() {
                            c.record.trace.push(gatewise_core::calllog::TraceStep {
                                detail: Some(format!("repaired: {}", found.repairs.join(", "))),
                                ..gatewise_core::calllog::TraceStep::new(
                                    Step::Other("inspect".into()),
                                    Outcome::Ok,
                                    0,
                                )
                            });
                        }
                    }
                    if !found.findings.is_empty() || !found.repairs.is_empty() {
                        tracing::debug!(
                            request_id = &**request_id,
                            findings = found.findings.len(),
                            repairs = ?found.repairs,
                            "inspected the upstream's OAuth response"
                        );
                    }
                    rparts = p;
                    apply_response_rules(&mut rparts.headers, &route.headers);
                    return Ok(Response::from_parts(
                        rparts,
                        body::with_deadline(b, deadline),
                    ));
                }
                apply_response_rules(&mut rparts.headers, &route.headers);
                // The upstream body is wrapped once (deadline), not boxed twice.
                return Ok(Response::from_parts(
                    rparts,
                    body::with_deadline(rbody, deadline),
                ));
            }
            Ok(Err(e)) => {
                pool.record(&target, false);
                tracing::warn!(request_id = &**request_id, target = %target.base, "upstream request failed: {}", gatewise_core::error_chain(&e));
                last_error = Denial::new(
                    StatusCode::BAD_GATEWAY,
                    "upstream-unavailable",
                    "The upstream is unavailable",
                    format!("the upstream `{}` could not be reached", pool.config.name),
                );
                if let (Some(c), Some(t)) = (call.as_mut(), t) {
                    c.step_detail(
                        Step::Upstream,
                        Outcome::Error,
                        Some(last_error.reason),
                        format!("{}: {}", target.authority, gatewise_core::error_chain(&e)),
                        t,
                    );
                }
                if !e.is_connect() {
                    break;
                }
            }
            Err(_) => {
                pool.record(&target, false);
                let d = Denial::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "upstream-timeout",
                    "The upstream did not answer in time",
                    format!(
                        "the upstream `{}` sent no response within {} ms",
                        pool.config.name,
                        pool.config.first_byte_timeout.as_millis()
                    ),
                );
                note_denial(call, t, Step::Upstream, Outcome::Error, &d);
                return Err(d);
            }
        }
        failed = Some(target);
    }
    Err(last_error)
}

/// The `Upgrade` protocol of a request asking for one (`Connection: upgrade`).
fn upgrade_protocol(h: &HeaderMap) -> Option<HeaderValue> {
    let asks = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if asks {
        h.get(header::UPGRADE).cloned()
    } else {
        None
    }
}

/// Answers the client's upgrade with the upstream's 101 and splices the two
/// upgraded connections byte for byte until either side closes.
fn splice<B>(
    protocol: Option<HeaderValue>,
    client: Option<hyper::upgrade::OnUpgrade>,
    upstream: hyper::upgrade::OnUpgrade,
    resp: Response<B>,
    request_id: &str,
) -> Result<Response<Body>, Denial> {
    let Some(client) = client else {
        return Err(Denial::new(
            StatusCode::BAD_GATEWAY,
            "upgrade-unexpected",
            "The upstream switched protocols unasked",
            "the upstream answered 101 to a request that did not ask to upgrade",
        ));
    };
    let id = request_id.to_owned();
    tokio::spawn(async move {
        match tokio::try_join!(client, upstream) {
            Ok((c, u)) => {
                let mut c = hyper_util::rt::TokioIo::new(c);
                let mut u = hyper_util::rt::TokioIo::new(u);
                match tokio::io::copy_bidirectional(&mut c, &mut u).await {
                    Ok((up, down)) => {
                        tracing::debug!(request_id = %id, up, down, "upgraded connection closed")
                    }
                    Err(e) => tracing::debug!(request_id = %id, "upgraded connection ended: {e}"),
                }
            }
            Err(e) => tracing::warn!(request_id = %id, "upgrade failed: {e}"),
        }
    });
    let (mut parts, _) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    parts
        .headers
        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Some(p) = protocol {
        parts.headers.insert(header::UPGRADE, p);
    }
    Ok(Response::from_parts(parts, body::empty()))
}

fn is_idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// Removes any identity header a client sent ([`IDENTITY_HEADERS`]). One
/// pass comparing names, no hashing: a client rarely sends any.
fn strip_identity(h: &mut HeaderMap) {
    if h.keys().any(|k| {
        matches!(
            k.as_str(),
            "x-auth-subject" | "x-auth-client-id" | "x-auth-scopes" | "x-auth-issuer"
        )
    }) {
        for n in IDENTITY_HEADERS.iter() {
            h.remove(n);
        }
    }
}

/// The index of `name` in [`HOP_BY_HOP_NAMES`]: one match on the name's
/// text (a length switch, then one comparison) instead of nine.
fn hop_by_hop_index(name: &HeaderName) -> Option<usize> {
    Some(match name.as_str() {
        "connection" => 0,
        "keep-alive" => 1,
        "proxy-connection" => 2,
        "proxy-authenticate" => 3,
        "proxy-authorization" => 4,
        "te" => 5,
        "trailer" => 6,
        "transfer-encoding" => 7,
        "upgrade" => 8,
        _ => return None,
    })
}

/// Removes hop-by-hop headers and those named in `Connection`.
fn strip_hop_by_hop(h: &mut HeaderMap) {
    // One pass over the names (pre-parsed, compared without hashing) notes
    // which hop-by-hop headers are there; most messages carry at most
    // `Connection: keep-alive`, so little is removed and nothing re-hashed
    // for the names that are absent.
    let mut present = 0u16;
    for name in h.keys() {
        if let Some(i) = hop_by_hop_index(name) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    // Index 0 is `Connection`: the headers it names go too (RFC 9110 §7.6.1).
    if present & 1 != 0 {
        let named: Vec<HeaderName> = h
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            // `close` and `keep-alive` name no extra header (keep-alive is
            // itself in the list below); skip them without allocating.
            .filter(|t| {
                !t.is_empty()
                    && !t.eq_ignore_ascii_case("close")
                    && !t.eq_ignore_ascii_case("keep-alive")
            })
            .filter_map(|t| HeaderName::try_from(t).ok())
            .collect();
        for n in &named {
            h.remove(n);
        }
    }
    for (i, n) in HOP_BY_HOP_NAMES.iter().enumerate() {
        if present & (1 << i) != 0 {
            h.remove(n);
        }
    }
}

/// `X-Forwarded-For` (appended), `-Proto`, `-Host`, and RFC 7239 `Forwarded`.
/// The peer's parts are rendered once per connection ([`Peer::new`]); a
/// request without earlier hops and host costs two reference-count bumps.
fn forwarded_headers(h: &mut HeaderMap, peer: &Peer, host: Option<&HeaderValue>) {
    let joined = |prev: &HeaderValue, next: &[u8], extra: &[&[u8]]| {
        let mut v = Vec::with_capacity(prev.len() + 2 + next.len() + 64);
        v.extend_from_slice(prev.as_bytes());
        v.extend_from_slice(b", ");
        v.extend_from_slice(next);
        for e in extra {
            v.extend_from_slice(e);
        }
        HeaderValue::from_maybe_shared(bytes::Bytes::from(v)).ok()
    };
    let xff = match h.get(&X_FORWARDED_FOR) {
        Some(prev) => joined(prev, peer.ip.as_bytes(), &[]),
        None => Some(peer.ip.clone()),
    };
    if let Some(v) = xff {
        h.insert(X_FORWARDED_FOR, v);
    }
    h.insert(
        X_FORWARDED_PROTO,
        HeaderValue::from_static(if peer.tls { "https" } else { "http" }),
    );
    if let Some(host) = host {
        h.insert(X_FORWARDED_HOST, host.clone());
    }
    // A quoted-string (RFC 7239 §4): a `Host` with a quote or backslash in
    // it is no host name, and is left out rather than escaped.
    let host = host
        .map(HeaderValue::as_bytes)
        .filter(|v| !v.iter().any(|&b| b == b'"' || b == b'\\'));
    let host_part: [&[u8]; 3] = [b";host=\"", host.unwrap_or(b""), b"\""];
    let extra: &[&[u8]] = if host.is_some() { &host_part } else { &[] };
    let forwarded = match h.get(&FORWARDED) {
        Some(prev) => joined(prev, peer.forwarded.as_bytes(), extra),
        None if host.is_none() => Some(peer.forwarded.clone()),
        None => {
            let mut v = Vec::with_capacity(peer.forwarded.len() + 64);
            v.extend_from_slice(peer.forwarded.as_bytes());
            for e in extra {
                v.extend_from_slice(e);
            }
            HeaderValue::from_maybe_shared(bytes::Bytes::from(v)).ok()
        }
    };
    if let Some(v) = forwarded {
        h.insert(FORWARDED, v);
    }
}

fn apply(
    h: &mut HeaderMap,
    add: &[(String, String)],
    set_: &[(String, String)],
    remove: &[String],
) {
    for n in remove {
        h.remove(n.as_str());
    }
    for (n, v) in set_ {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(n.as_str()), HeaderValue::from_str(v)) {
            h.insert(n, v);
        }
    }
    for (n, v) in add {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(n.as_str()), HeaderValue::from_str(v)) {
            h.append(n, v);
        }
    }
}

fn apply_request_rules(h: &mut HeaderMap, r: &HeaderRules) {
    apply(h, &r.request_add, &r.request_set, &r.request_remove);
}

fn apply_response_rules(h: &mut HeaderMap, r: &HeaderRules) {
    apply(h, &r.response_add, &r.response_set, &r.response_remove);
}

/// Drains a body into bytes (tests and small documents).
pub async fn collect(b: Body) -> Result<bytes::Bytes, crate::body::BoxError> {
    Ok(b.collect().await?.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                HeaderName::try_from(*n).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn trace_context_is_continued_when_valid_and_started_otherwise() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut h = headers(&[("traceparent", good)]);
        let ctx = ensure_traceparent(&mut h, 0.0);
        let sent = h["traceparent"].to_str().unwrap().to_owned();
        // The client's trace and flags; the gateway's span as the parent.
        assert!(
            sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{sent}"
        );
        assert!(sent.ends_with("-01"), "{sent}");
        assert!(valid_traceparent(&sent), "{sent}");
        let span: String = ctx.span_id.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(&sent[36..52], span);
        assert_ne!(span, "00f067aa0ba902b7");
        assert_eq!(
            ctx.parent_id,
            Some([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7])
        );
        assert!(ctx.sampled, "the client's sampled flag wins over the ratio");
        // Not sampled by the client: not sampled here either.
        let mut h = headers(&[(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        )]);
        assert!(!ensure_traceparent(&mut h, 1.0).sampled);
        assert!(h["traceparent"].to_str().unwrap().ends_with("-00"));
        // A later version: its first four parts are used, version 00 goes on.
        let mut h = headers(&[(
            "traceparent",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds",
        )]);
        let ctx = ensure_traceparent(&mut h, 1.0);
        assert!(ctx.parent_id.is_some());
        let sent = h["traceparent"].to_str().unwrap();
        assert!(
            sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{sent}"
        );
        assert_eq!(sent.len(), 55);
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ] {
            let mut h = headers(&[("traceparent", bad)]);
            let ctx = ensure_traceparent(&mut h, 1.0);
            let v = h["traceparent"].to_str().unwrap().to_owned();
            assert_ne!(v, bad);
            assert!(valid_traceparent(&v), "{v}");
            assert_eq!(ctx.parent_id, None, "{bad}: a new trace has no parent");
            assert!(!v.contains("4bf92f3577b34da6a3ce929d0e0e4736"), "{v}");
        }
        let mut a = HeaderMap::new();
        let mut b = HeaderMap::new();
        let ca = ensure_traceparent(&mut a, 1.0);
        let cb = ensure_traceparent(&mut b, 1.0);
        assert!(valid_traceparent(a["traceparent"].to_str().unwrap()));
        assert_ne!(a["traceparent"], b["traceparent"]);
        assert_ne!(ca.trace_id, cb.trace_id);
        assert!(ca.sampled && a["traceparent"].to_str().unwrap().ends_with("-01"));
        let mut c = HeaderMap::new();
        assert!(!ensure_traceparent(&mut c, 0.0).sampled);
        assert!(c["traceparent"].to_str().unwrap().ends_with("-00"));
    }

    #[test]
    fn new_traces_are_sampled_by_ratio() {
        let mut id = [0u8; 16];
        assert!(ratio_sampled(&id, 0.5));
        id[8] = 0xff;
        assert!(!ratio_sampled(&id, 0.5));
        assert!(ratio_sampled(&id, 1.0));
        assert!(!ratio_sampled(&[0; 16], 0.0));
        let sampled = (0..10_000)
            .filter(|_| {
                let mut h = HeaderMap::new();
                ensure_traceparent(&mut h, 0.25).sampled
            })
            .count();
        assert!((2_000..3_000).contains(&sampled), "{sampled}");
    }

    #[test]
    fn a_host_is_a_host_with_an_optional_port() {
        for ok in [
            "api.example.com",
            "api.example.com:8443",
            "127.0.0.1:80",
            "[2001:db8::1]",
            "[2001:db8::1]:443",
            "a,b",
        ] {
            let h = headers(&[("host", ok)]);
            assert!(check_host(&h).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "api.example.com:443, evil.example",
            "api.example.com:x@evil.example",
            "u@api.example.com",
            "api.example.com:",
            "api.example.com:44a",
            "a b",
            "a\"b",
            ":80",
        ] {
            let h = headers(&[("host", bad)]);
            assert!(check_host(&h).is_err(), "{bad}");
        }
        let two = headers(&[("host", "a"), ("host", "a")]);
        assert!(check_host(&two).unwrap_err().contains("more than one"));
        assert!(check_host(&HeaderMap::new()).is_ok());
    }

    #[test]
    fn the_client_authority_comes_from_the_uri_else_the_host_header() {
        let h = headers(&[("host", "api.example.com:8080")]);
        let origin: Uri = "/x".parse().unwrap();
        assert_eq!(
            client_authority(&origin, &h).unwrap(),
            "api.example.com:8080"
        );
        let absolute: Uri = "https://u:p@h2.example.com:8443/x".parse().unwrap();
        assert_eq!(
            client_authority(&absolute, &h).unwrap(),
            "h2.example.com:8443"
        );
        assert!(client_authority(&origin, &HeaderMap::new()).is_none());
    }

    #[test]
    fn forwarding_headers_append_to_earlier_hops() {
        let peer = Peer::new("10.1.2.3:5555".parse().unwrap(), false);
        let mut h = HeaderMap::new();
        forwarded_headers(&mut h, &peer, None);
        assert_eq!(h["x-forwarded-for"], "10.1.2.3");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["forwarded"], "for=10.1.2.3;proto=http");
        assert!(!h.contains_key("x-forwarded-host"));

        let mut h = headers(&[
            ("x-forwarded-for", "192.0.2.1"),
            ("forwarded", "for=192.0.2.1;proto=https"),
        ]);
        let host = HeaderValue::from_static("api.example.com:8443");
        forwarded_headers(&mut h, &peer, Some(&host));
        assert_eq!(h["x-forwarded-for"], "192.0.2.1, 10.1.2.3");
        // The Host as the client sent it, port included (RFC 7239 §5.3).
        assert_eq!(h["x-forwarded-host"], "api.example.com:8443");
        assert_eq!(
            h["forwarded"],
            "for=192.0.2.1;proto=https, for=10.1.2.3;proto=http;host=\"api.example.com:8443\""
        );

        // A quote cannot end the quoted-string early: no host= then.
        let mut h = HeaderMap::new();
        let odd = HeaderValue::from_static("a\";for=evil");
        forwarded_headers(&mut h, &peer, Some(&odd));
        assert_eq!(h["forwarded"], "for=10.1.2.3;proto=http");

        // RFC 7239 §6: IPv6 nodes are quoted and bracketed.
        let v6 = Peer::new("[2001:db8::7]:443".parse().unwrap(), true);
        let mut h = HeaderMap::new();
        forwarded_headers(&mut h, &v6, Some(&HeaderValue::from_static("h")));
        assert_eq!(h["x-forwarded-for"], "2001:db8::7");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(
            h["forwarded"],
            "for=\"[2001:db8::7]\";proto=https;host=\"h\""
        );
    }

    #[test]
    fn the_name_matches_agree_with_the_name_lists() {
        for (i, n) in HOP_BY_HOP_NAMES.iter().enumerate() {
            assert_eq!(hop_by_hop_index(n), Some(i), "{n}");
        }
        assert_eq!(hop_by_hop_index(&header::HOST), None);
        let mut h = headers(&[("host", "x"), ("accept", "*/*")]);
        for n in IDENTITY_HEADERS.iter() {
            h.insert(n, HeaderValue::from_static("spoofed"));
        }
        strip_identity(&mut h);
        assert_eq!(h.len(), 2, "{h:?}");
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_removed() {
        let mut h = headers(&[
            ("connection", "keep-alive, X-Hop"),
            ("connection", "close"),
            ("keep-alive", "timeout=5"),
            ("x-hop", "1"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic x"),
            ("content-type", "text/plain"),
            ("x-keep", "yes"),
        ]);
        strip_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["content-type", "x-keep"]);

        // Nothing to strip: untouched.
        let mut h = headers(&[("content-type", "a"), ("x-a", "b")]);
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 2);
    }
}
