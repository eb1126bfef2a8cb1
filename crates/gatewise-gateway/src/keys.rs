//! An issuer's verification keys, kept fresh without letting forged tokens
//! hammer the identity provider (RFC 7517; RFC 8725 §3.1).
//!
//! - The key set is swapped atomically; readers never wait.
//! - Keys older than their `Cache-Control: max-age` (bounded by
//!   `jwks_max_age`) are refreshed in the background while still served.
//! - An unknown `kid` triggers one refetch: single-flight across requests,
//!   at most one per `jwks_refetch_interval`, and a `kid` still unknown after
//!   it is remembered for `unknown_kid_ttl`, so a flood of forged `kid`s costs
//!   neither fetches nor signature checks.
//! - When the provider is unreachable, the last good keys stay in use.

use arc_swap::ArcSwap;
use gatewise_config::model::{Issuer, KeySource};
use gatewise_core::jose::Alg;
use gatewise_core::jose::check::Rejection;
use gatewise_core::jose::jwk::VerifyingKey;
use gatewise_core::jose::keyset::KeySet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Largest JWKS or discovery document read.
const MAX_DOCUMENT: usize = 1024 * 1024;

/// Counters for one issuer (read by metrics and the admin API).
#[derive(Debug, Default)]
pub struct KeyCounters {
    /// Fetches attempted (initial, background, unknown-kid).
    pub fetches: AtomicU64,
    /// Fetches that failed.
    pub fetch_errors: AtomicU64,
    /// Refetches caused by an unknown `kid`.
    pub kid_refetches: AtomicU64,
    /// Tokens refused because their `kid` stayed unknown.
    pub kid_unknown: AtomicU64,
    /// Largest `iat - now` seen on a verified token, in seconds: how far
    /// the issuer's clock runs ahead of the gateway's (0 when never ahead).
    pub clock_ahead_max: AtomicU64,
    /// When the last clock-skew warning was logged (Unix seconds).
    last_skew_warning: AtomicU64,
}

/// What the issuer's keys were at the last successful load.
#[derive(Debug)]
struct Snapshot {
    keys: KeySet,
    loaded_at: Option<Instant>,
    max_age: Duration,
}

/// When fetches of each kind last started (each kind is rate-limited).
#[derive(Debug, Default)]
struct FetchTimes {
    /// Refetch caused by an unknown `kid`.
    kid: Option<Instant>,
    /// Background refresh of stale keys.
    background: Option<Instant>,
}

/// One issuer's keys and policy inputs.
#[derive(Debug)]
pub struct IssuerKeys {
    /// The configuration.
    pub config: Issuer,
    /// Allowed algorithms, parsed.
    pub algorithms: Vec<Alg>,
    snapshot: ArcSwap<Snapshot>,
    /// Serialises fetches.
    fetch_lock: Mutex<FetchTimes>,
    unknown_kids: moka::sync::Cache<String, ()>,
    http: reqwest::Client,
    last_error: ArcSwap<Option<String>>,
    /// Counters.
    pub counters: KeyCounters,
}

impl IssuerKeys {
    /// Keys for `config`, not loaded yet (call [`IssuerKeys::refresh`]).
    pub fn new(config: Issuer, http: reqwest::Client) -> IssuerKeys {
        let algorithms = config
            .algorithms
            .iter()
            .filter_map(|a| Alg::parse(a))
            .collect();
        let unknown_kids = moka::sync::Cache::builder()
            .max_capacity(10_000)
            .time_to_live(config.unknown_kid_ttl)
            .build();
        IssuerKeys {
            algorithms,
            snapshot: ArcSwap::from_pointee(Snapshot {
                keys: KeySet::default(),
                loaded_at: None,
                max_age: config.jwks_max_age,
            }),
            fetch_lock: Mutex::new(FetchTimes::default()),
            unknown_kids,
            http,
            last_error: ArcSwap::from_pointee(None),
            counters: KeyCounters::default(),
            config,
        }
    }

    /// Loads the keys now (waits for a fetch already running). On failure
    /// the previous keys stay and the error is returned and remembered.
    pub async fn refresh(&self) -> Result<usize, String> {
        let _guard = self.fetch_lock.lock().await;
        self.fetch_locked().await
    }

    async fn fetch_locked(&self) -> Result<usize, String> {
        self.counters.fetches.fetch_add(1, Ordering::Relaxed);
        match self.load().await {
            Ok((keys, max_age)) => {
                let n = keys.len();
                for s in &keys.skipped {
                    tracing::warn!(issuer = %self.config.name, "JWKS member skipped: {s}");
                }
                self.snapshot.store(Arc::new(Snapshot {
                    keys,
                    loaded_at: Some(Instant::now()),
                    max_age,
                }));
                self.unknown_kids.invalidate_all();
                self.last_error.store(Arc::new(None));
                Ok(n)
            }
            Err(e) => {
                self.counters.fetch_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(issuer = %self.config.name, "loading keys failed: {e}");
                self.last_error.store(Arc::new(Some(e.clone())));
                Err(e)
            }
        }
    }

    /// Records the `iat` of a freshly verified token at gateway time `now`.
    /// A token issued in the future says the issuer's clock is ahead; when
    /// that nears the leeway (half of it), tokens will soon be refused as
    /// `jwt-iat-future`/`jwt-not-yet-valid`, so it is logged (at most once a
    /// minute per issuer).
    pub fn observe_iat(&self, iat: f64, now: u64) {
        let ahead = iat - now as f64;
        if ahead <= 0.0 {
            return;
        }
        let ahead = ahead as u64;
        self.counters
            .clock_ahead_max
            .fetch_max(ahead, Ordering::Relaxed);
        let leeway = self.config.leeway.as_secs();
        if ahead * 2 >= leeway.max(1) {
            let last = self.counters.last_skew_warning.load(Ordering::Relaxed);
            if now >= last + 60
                && self
                    .counters
                    .last_skew_warning
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                tracing::warn!(
                    issuer = %self.config.name,
                    "the issuer's clock is {ahead} s ahead of this gateway's (leeway {leeway} s): check NTP on both; tokens are refused beyond the leeway"
                );
            }
        }
    }

    /// The last load error, if the last load failed.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.load().as_ref().clone()
    }

    /// Seconds since the keys were last loaded (`None`: never).
    pub fn keys_age_secs(&self) -> Option<u64> {
        self.snapshot
            .load()
            .loaded_at
            .map(|t| t.elapsed().as_secs())
    }

    /// The `kid`s currently loaded.
    pub fn kids(&self) -> Vec<String> {
        self.snapshot
            .load()
            .keys
            .kids()
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// The keys to try for a token's `kid` and `alg`, refetching once when
    /// the `kid` is unknown (see the module documentation).
    pub async fn keys_for(
        self: &Arc<Self>,
        kid: Option<&str>,
        alg: Alg,
    ) -> Result<Vec<Arc<VerifyingKey>>, Rejection> {
        let snap = self.snapshot.load();
        self.maybe_refresh_in_background(&snap);
        let found = snap.keys.candidates(kid, alg);
        if !found.is_empty() {
            return Ok(found);
        }
        let kid_name = kid.unwrap_or("(none)").to_owned();
        let unknown = || {
            self.counters.kid_unknown.fetch_add(1, Ordering::Relaxed);
            Err(Rejection::KidUnknown(kid_name.chars().take(64).collect()))
        };
        if self.unknown_kids.contains_key(&kid_name) {
            return unknown();
        }
        let mut last = self.fetch_lock.lock().await;
        // Another request may have refetched while this one waited.
        let found = self.snapshot.load().keys.candidates(kid, alg);
        if !found.is_empty() {
            return Ok(found);
        }
        let recent = last
            .kid
            .is_some_and(|t| t.elapsed() < self.config.jwks_refetch_interval);
        if !recent {
            last.kid = Some(Instant::now());
            self.counters.kid_refetches.fetch_add(1, Ordering::Relaxed);
            let _ = self.fetch_locked().await;
            let found = self.snapshot.load().keys.candidates(kid, alg);
            if !found.is_empty() {
                return Ok(found);
            }
        }
        drop(last);
        self.unknown_kids.insert(kid_name.clone(), ());
        unknown()
    }

    fn maybe_refresh_in_background(self: &Arc<Self>, snap: &Snapshot) {
        let stale = snap.loaded_at.is_some_and(|t| t.elapsed() >= snap.max_age);
        if !stale {
            return;
        }
        // Only one refresher: skip when a fetch is running.
        if let Ok(mut guard) = self.fetch_lock.try_lock() {
            if guard
                .background
                .is_some_and(|t| t.elapsed() < self.config.jwks_refetch_interval)
            {
                return;
            }
            guard.background = Some(Instant::now());
            drop(guard);
            let me = Arc::clone(self);
            tokio::spawn(async move {
                let _ = me.refresh().await;
            });
        }
    }

    /// Reads the key set from its source; returns it with its max age.
    async fn load(&self) -> Result<(KeySet, Duration), String> {
        let (bytes, max_age) = match &self.config.keys {
            KeySource::JwksFile(path) => {
                let b = tokio::fs::read(path)
                    .await
                    .map_err(|e| format!("reading {}: {e}", path.display()))?;
                (b, self.config.jwks_max_age)
            }
            KeySource::JwksUri(url) => self.get(url).await?,
            KeySource::Discovery(url) => {
                let (doc, _) = self.get(url).await?;
                let meta: serde_json::Value = serde_json::from_slice(&doc)
                    .map_err(|e| format!("discovery document at {url} is not JSON: {e}"))?;
                let jwks = meta
                    .get("jwks_uri")
                    .and_then(serde_json::Value::as_str)
                    .ok_or_else(|| format!("discovery document at {url} has no jwks_uri"))?
                    .to_owned();
                self.get(&jwks).await?
            }
        };
        let keys = KeySet::from_jwks(&bytes, &self.algorithms).map_err(|e| e.to_string())?;
        if keys.is_empty() {
            return Err(format!(
                "the JWKS has no usable key ({})",
                keys.skipped.join("; ")
            ));
        }
        Ok((keys, max_age))
    }

    async fn get(&self, url: &str) -> Result<(Vec<u8>, Duration), String> {
        let resp = self
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("GET {url}: {}", gatewise_core::error_chain(&e)))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("GET {url}: HTTP {status}"));
        }
        let max_age = resp
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .and_then(cache_max_age)
            .map_or(self.config.jwks_max_age, |s| {
                Duration::from_secs(s).min(self.config.jwks_max_age)
            });
        if resp
            .content_length()
            .is_some_and(|l| l > MAX_DOCUMENT as u64)
        {
            return Err(format!("GET {url}: document over {MAX_DOCUMENT} bytes"));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("GET {url}: {}", gatewise_core::error_chain(&e)))?;
        if body.len() > MAX_DOCUMENT {
            return Err(format!("GET {url}: document over {MAX_DOCUMENT} bytes"));
        }
        Ok((body.to_vec(), max_age))
    }
}

/// `max-age` of a `Cache-Control` value (`no-store`/`no-cache` count as 0).
pub fn cache_max_age(v: &str) -> Option<u64> {
    let mut age = None;
    for part in v.split(',') {
        let p = part.trim().to_ascii_lowercase();
        if p == "no-store" || p == "no-cache" {
            return Some(0);
        }
        if let Some(n) = p.strip_prefix("max-age=") {
            age = n.trim_matches('"').parse().ok();
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use super::cache_max_age;

    #[test]
    fn max_age_is_read_and_no_store_means_zero() {
        assert_eq!(cache_max_age("public, max-age=3600"), Some(3600));
        assert_eq!(cache_max_age("no-store"), Some(0));
        assert_eq!(cache_max_age("private"), None);
    }
}
