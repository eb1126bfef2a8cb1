//! The `introspection` route policy for opaque tokens (RFC 7662).
//!
//! - The gateway authenticates to the endpoint as a client (§2.1), with
//!   `client_secret_basic` (id and secret form-urlencoded before Base64, as
//!   RFC 6749 §2.3.1 says) or `client_secret_post`.
//! - Results are cached by SHA-256 of the token: active ones until the
//!   token's `exp`, at most `cache_ttl`; inactive ones for `negative_ttl`.
//!   Concurrent requests with the same token share one call (single-flight).
//!   Failures (endpoint down, garbage answers) are never cached.
//! - The route's rules (active, audience, scopes) run on every request,
//!   cache hits included: a result cached for a lenient route never lets a
//!   token through a stricter one (Oathkeeper #743).

use crate::problem::Denial;
use base64::Engine as _;
use gatewise_config::model::{ClientAuth, Introspector};
use http::StatusCode;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Largest introspection response read.
const MAX_RESPONSE: usize = 256 * 1024;

/// Most results an introspector caches.
const CACHE_CAPACITY: u64 = 100_000;

/// What the authorization server said about a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `"active": true`.
    Active(Active),
    /// `"active": false` (or expired by its own `exp`).
    Inactive,
}

/// The members of an active result the gateway uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Active {
    /// `sub`.
    pub sub: Option<String>,
    /// `client_id`.
    pub client_id: Option<String>,
    /// `scope`, split on spaces.
    pub scopes: Vec<String>,
    /// `aud`, string or array.
    pub aud: Vec<String>,
    /// `iss`.
    pub iss: Option<String>,
    /// `exp`.
    pub exp: Option<u64>,
}

#[derive(Debug)]
struct Cached {
    outcome: Outcome,
    ttl: Duration,
}

struct Expiry;

impl moka::Expiry<[u8; 32], Arc<Cached>> for Expiry {
    fn expire_after_create(
        &self,
        _: &[u8; 32],
        v: &Arc<Cached>,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(v.ttl)
    }
}

/// Counters of one introspector.
#[derive(Debug, Default)]
pub struct IntrospectionCounters {
    /// Calls made to the endpoint: the cache's misses.
    pub calls: AtomicU64,
    /// Calls that failed (network, status, body).
    pub errors: AtomicU64,
    /// Answers served from the cache (or from a concurrent request's call).
    pub cache_hits: AtomicU64,
}

/// One introspection endpoint with its cache.
pub struct Introspection {
    /// Configuration.
    pub config: Introspector,
    secret: String,
    http: reqwest::Client,
    cache: moka::future::Cache<[u8; 32], Arc<Cached>>,
    /// Counters.
    pub counters: IntrospectionCounters,
}

impl std::fmt::Debug for Introspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("Introspection")
            .field("endpoint", &self.config.endpoint)
            .field("client_id", &self.config.client_id)
            .finish_non_exhaustive()
    }
}

impl Introspection {
    /// An introspector with its resolved client secret.
    pub fn new(config: Introspector, secret: String, http: reqwest::Client) -> Introspection {
        Introspection {
            cache: moka::future::Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .expire_after(Expiry)
                .build(),
            config,
            secret,
            http,
            counters: IntrospectionCounters::default(),
        }
    }

    /// The cache's figures: misses are the calls made. Applies pending
    /// evictions first, so `entries` is exact (an admin call, not the
    /// request path).
    pub async fn cache_stats(&self) -> crate::metrics::CacheStats {
        self.cache.run_pending_tasks().await;
        crate::metrics::CacheStats {
            cache: "introspection",
            name: self.config.name.clone(),
            entries: self.cache.entry_count(),
            capacity: CACHE_CAPACITY,
            hits: self.counters.cache_hits.load(Ordering::Relaxed),
            misses: self.counters.calls.load(Ordering::Relaxed),
        }
    }

    /// The outcome for `token` (cached, or one shared call). `now` is Unix time.
    pub async fn outcome(&self, token: &str, now: u64) -> Result<Outcome, Denial> {
        let key = crate::auth::token_hash(token);
        let called = std::sync::atomic::AtomicBool::new(false);
        let cached = self
            .cache
            .try_get_with(key, async {
                called.store(true, Ordering::Relaxed);
                self.counters.calls.fetch_add(1, Ordering::Relaxed);
                self.call(token, now).await.map(Arc::new)
            })
            .await
            .map_err(|e: Arc<String>| {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(introspector = %self.config.name, "introspection failed: {e}");
                Denial {
                    retry_after: Some(5),
                    ..Denial::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "introspection-unavailable",
                        "The token could not be checked",
                        "the authorization server's introspection endpoint did not answer usably; try again shortly",
                    )
                }
            })?;
        if !called.load(Ordering::Relaxed) {
            self.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
        }
        // A cached active result past the token's own exp is inactive now.
        match &cached.outcome {
            Outcome::Active(a) if a.exp.is_some_and(|e| e <= now) => Ok(Outcome::Inactive),
            o => Ok(o.clone()),
        }
    }

    async fn call(&self, token: &str, now: u64) -> Result<Cached, String> {
        let mut req = self
            .http
            .post(&self.config.endpoint)
            .timeout(self.config.timeout)
            .header("accept", "application/json")
            .header("content-type", "application/x-www-form-urlencoded");
        // Built in one go: the serializer must not live across an await.
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("token", token);
            form.append_pair("token_type_hint", "access_token");
            if self.config.auth == ClientAuth::Post {
                form.append_pair("client_id", &self.config.client_id);
                form.append_pair("client_secret", &self.secret);
            }
            form.finish()
        };
        match self.config.auth {
            ClientAuth::Basic => {
                // RFC 6749 §2.3.1: form-urlencode id and secret, then Base64.
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                let pair = format!("{}:{}", enc(&self.config.client_id), enc(&self.secret));
                let b64 = base64::engine::general_purpose::STANDARD.encode(pair);
                req = req.header("authorization", format!("Basic {b64}"));
            }
            ClientAuth::Post => {}
        }
        let resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| format!("POST {}: {e}", self.config.endpoint))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!(
                "POST {}: HTTP {status} (check the gateway's client credentials for introspection)",
                self.config.endpoint
            ));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("POST {}: {e}", self.config.endpoint))?;
        if body.len() > MAX_RESPONSE {
            return Err(format!(
                "POST {}: response over {MAX_RESPONSE} bytes",
                self.config.endpoint
            ));
        }
        let v: Value = serde_json::from_slice(&body).map_err(|e| {
            format!(
                "POST {}: the response is not JSON ({e})",
                self.config.endpoint
            )
        })?;
        let obj = v.as_object().ok_or_else(|| {
            format!(
                "POST {}: the response is not a JSON object",
                self.config.endpoint
            )
        })?;
        let outcome = match obj.get("active") {
            Some(Value::Bool(true)) => Outcome::Active(active(obj)),
            Some(Value::Bool(false)) => Outcome::Inactive,
            other => {
                return Err(format!(
                    "POST {}: `active` is {}, not a boolean (RFC 7662 §2.2)",
                    self.config.endpoint,
                    other.map_or("missing".to_owned(), ToString::to_string)
                ));
            }
        };
        let ttl = match &outcome {
            Outcome::Active(a) => {
                let until_exp = a.exp.map_or(self.config.cache_ttl, |e| {
                    Duration::from_secs(e.saturating_sub(now))
                });
                until_exp.min(self.config.cache_ttl)
            }
            Outcome::Inactive => self.config.negative_ttl,
        };
        Ok(Cached { outcome, ttl })
    }
}

fn active(obj: &serde_json::Map<String, Value>) -> Active {
    let s = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_owned);
    let list = |k: &str| match obj.get(k) {
        Some(Value::String(x)) => x
            .split(' ')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    Active {
        sub: s("sub"),
        client_id: s("client_id"),
        scopes: list("scope"),
        aud: match obj.get("aud") {
            Some(Value::String(a)) => vec![a.clone()],
            _ => list("aud"),
        },
        iss: s("iss"),
        exp: obj
            .get("exp")
            .and_then(Value::as_f64)
            .map(|f| f.max(0.0) as u64),
    }
}
