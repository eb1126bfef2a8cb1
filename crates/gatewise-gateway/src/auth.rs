//! The `jwt` route policy: find the bearer token (RFC 6750 §2), check it
//! with the core's edge check against the issuer's keys, then the route's
//! audience, type, scopes and claim conditions.
//!
//! Signature checks are cached by SHA-256 of the token (bounded by `exp` and
//! [`MAX_CACHE_TTL`]); the route's claim rules run on every request, hits
//! included, so a cached token never bypasses a stricter route.

use crate::introspect::{Introspection, Outcome};
use crate::keys::IssuerKeys;
use crate::problem::Denial;
use gatewise_config::model::{ClaimTest, IntrospectionPolicy, JwtPolicy, ScopeRule, TokenSource};
use gatewise_core::jose::check::{self, Policy, Rejection, Verified};
use gatewise_core::secret::{self, DigestMemo, Hashed};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, header};
use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Longest a verified signature is remembered.
pub const MAX_CACHE_TTL: Duration = Duration::from_secs(300);

/// Who the token says the caller is; forwarded upstream and logged.
/// Shared, not copied: a cached token carries its identity, so a cache hit
/// costs a reference count (see [`Identity`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    identity: Arc<Identity>,
    /// The first 8 bytes of SHA-256 of the token.
    hash_prefix: [u8; 8],
}

/// The caller a verified token (or an introspection answer) names, with
/// its `X-Auth-*` header values made once.
#[derive(Debug, PartialEq, Eq)]
pub struct Identity {
    /// Issuer name from the configuration.
    pub issuer: String,
    /// `sub`.
    pub subject: Option<String>,
    /// `client_id`, else `azp`.
    pub client_id: Option<String>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// `kid` of the key that verified the token.
    pub kid: Option<String>,
    /// `X-Auth-Issuer`, `-Subject`, `-Client-Id` and `-Scopes`, in that
    /// order; `None` where the claim is absent or is no valid header value.
    headers: [Option<HeaderValue>; 4],
}

impl Identity {
    /// The identity, with its header values rendered.
    pub fn new(
        issuer: String,
        subject: Option<String>,
        client_id: Option<String>,
        scopes: Vec<String>,
        kid: Option<String>,
    ) -> Identity {
        let value = |s: &str| HeaderValue::from_str(s).ok();
        let headers = [
            value(&issuer),
            subject.as_deref().and_then(value),
            client_id.as_deref().and_then(value),
            value(&scopes.join(" ")),
        ];
        Identity {
            issuer,
            subject,
            client_id,
            scopes,
            kid,
            headers,
        }
    }

    /// The identity a verified token names, under the issuer name `issuer`.
    fn of_verified(issuer: String, v: &Verified) -> Identity {
        Identity::new(
            issuer,
            v.claims.sub.clone(),
            v.claims.client_id.clone().or_else(|| v.claims.azp.clone()),
            v.claims.scopes().map(str::to_owned).collect(),
            v.header.kid.clone(),
        )
    }

    /// The `X-Auth-Issuer`, `-Subject`, `-Client-Id` and `-Scopes` values,
    /// in that order (`None`: not sent).
    pub fn header_values(&self) -> &[Option<HeaderValue>; 4] {
        &self.headers
    }
}

impl Principal {
    fn new(identity: Arc<Identity>, hash: &[u8; 32]) -> Principal {
        let mut hash_prefix = [0u8; 8];
        hash_prefix.copy_from_slice(hash.get(..8).unwrap_or(&[0u8; 8]));
        Principal {
            identity,
            hash_prefix,
        }
    }

    /// First 16 hex digits of SHA-256 of the token: identifies it in logs
    /// without revealing it.
    pub fn fingerprint(&self) -> String {
        let mut out = String::with_capacity(16);
        secret::push_hex(&mut out, &self.hash_prefix);
        out
    }
}

impl std::ops::Deref for Principal {
    type Target = Identity;
    fn deref(&self) -> &Identity {
        &self.identity
    }
}

/// The bearer token of a request's `Authorization` header with its SHA-256,
/// hashed once per request (RFC 6750 §2.1): the call log's fingerprint
/// (`calls`) and the verified-token cache key share the digest. Made by
/// [`bearer_hash`].
pub type BearerHash = Hashed<TokenBytes>;

/// The token's bytes inside the `Authorization` header value: the value is
/// shared (a reference count), not copied. `Debug` shows only the length.
#[derive(Clone)]
pub struct TokenBytes {
    value: HeaderValue,
    start: usize,
    end: usize,
}

impl AsRef<[u8]> for TokenBytes {
    fn as_ref(&self) -> &[u8] {
        self.value
            .as_bytes()
            .get(self.start..self.end)
            .unwrap_or_default()
    }
}

impl std::fmt::Debug for TokenBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenBytes")
            .field("len", &self.end.saturating_sub(self.start))
            .finish_non_exhaustive()
    }
}

/// The token of the (first) `Authorization: Bearer` header, found as
/// [`Authenticator::authenticate`] finds it (scheme case-insensitive, RFC
/// 9110 §11.1), and hashed. `None` without one. Whatever this finds, the
/// cache only uses the digest for a token equal to it byte for byte
/// ([`Hashed::sha256_of`]).
pub fn bearer_hash(headers: &HeaderMap) -> Option<BearerHash> {
    let value = headers.get(header::AUTHORIZATION)?;
    // On bytes: no UTF-8 pass over the token (the call log makes one
    // anyway).
    let (scheme, token, start) = scheme_and_token(value.as_bytes());
    if !scheme.eq_ignore_ascii_case(b"bearer") || token.is_empty() {
        return None;
    }
    let token = TokenBytes {
        value: value.clone(),
        start,
        end: start + token.len(),
    };
    Some(with_memo(|memo| Hashed::new_in(token, memo)))
}

/// An `Authorization` value's scheme and what follows it, both trimmed,
/// with where that starts in `v` (RFC 9110 §11.4: scheme, one space, the
/// credentials). [`bearer_hash`] and `extract` split the same way, so the
/// call log hashes the very bytes the `jwt` policy checks.
fn scheme_and_token(v: &[u8]) -> (&[u8], &[u8], usize) {
    let lead = v.len() - v.trim_ascii_start().len();
    let trimmed = v.trim_ascii();
    let Some(space) = trimmed.iter().position(|&b| b == b' ') else {
        return (trimmed, &[], v.len());
    };
    let scheme = trimmed.get(..space).unwrap_or_default();
    let rest = trimmed.get(space + 1..).unwrap_or_default();
    let start = lead + space + 1 + (rest.len() - rest.trim_ascii_start().len());
    (scheme, rest.trim_ascii(), start)
}

thread_local! {
    /// The digests of the tokens this thread saw last: a client sends the
    /// same token for its lifetime, and the SHA-256 of a JWT costs more
    /// than finding it here (see [`DigestMemo`]). About 1.5 MB per thread
    /// at most for typical JWTs.
    static DIGESTS: RefCell<DigestMemo> = RefCell::new(DigestMemo::new(DIGEST_MEMO_SIZE));
}

/// Tokens whose digest each thread remembers: more than the 1,000 distinct
/// tokens of the benchmark's rotation, with room for set conflicts.
const DIGEST_MEMO_SIZE: usize = 2048;

/// Runs `f` with this thread's digest memo (a memo of its own if the
/// thread's is in use, which cannot happen: `f` never re-enters).
fn with_memo<R>(f: impl FnOnce(&mut DigestMemo) -> R) -> R {
    DIGESTS.with(|m| match m.try_borrow_mut() {
        Ok(mut memo) => f(&mut memo),
        Err(_) => f(&mut DigestMemo::default()),
    })
}

/// The SHA-256 of `token`: `known`'s when it is that token, else from the
/// thread's memo.
fn token_sha256(known: Option<&BearerHash>, token: &[u8]) -> [u8; 32] {
    with_memo(|memo| Hashed::sha256_of_in(known, token, memo))
}

/// A verified token in the cache, with the issuer that verified it.
#[derive(Debug)]
struct CachedToken {
    verified: Verified,
    /// Who it names, made at its first cache hit (see `authenticate`).
    identity: std::sync::OnceLock<Arc<Identity>>,
    /// The issuer whose key verified it. The cache is shared by all routes,
    /// which list their issuers in their own order, and a reload may
    /// replace an issuer: a hit counts only on a route holding this very
    /// issuer, anything else verifies again.
    issuer: std::sync::Weak<IssuerKeys>,
    /// How long the verification may be cached: until `exp`, at most [`MAX_CACHE_TTL`].
    ttl_hint: Duration,
}

/// A `jwt` route's issuers and the checks built from them: made once per
/// configuration (see `proxy::State`), not per request.
#[derive(Debug)]
pub struct RouteIssuers {
    issuers: Vec<Arc<IssuerKeys>>,
    /// Per issuer (same index): the claim checks of this route for tokens
    /// from that issuer.
    policies: Vec<Policy>,
    /// Every algorithm the issuers allow: what a token is parsed with.
    parse: Policy,
}

impl RouteIssuers {
    /// Where `issuer` is in the route's list, if it is there.
    fn position(&self, issuer: &std::sync::Weak<IssuerKeys>) -> Option<usize> {
        self.issuers
            .iter()
            .position(|i| std::ptr::eq(Arc::as_ptr(i), issuer.as_ptr()))
    }

    /// The issuers `policy` names, in its order, found in `known` (names
    /// not found are skipped: configuration validation refuses them).
    pub fn new(
        policy: &JwtPolicy,
        known: &std::collections::HashMap<String, Arc<IssuerKeys>>,
    ) -> RouteIssuers {
        let issuers: Vec<Arc<IssuerKeys>> = policy
            .issuers
            .iter()
            .filter_map(|n| known.get(n).cloned())
            .collect();
        let policies = issuers
            .iter()
            .map(|issuer| Policy {
                algorithms: issuer.algorithms.clone(),
                issuer: Some(issuer.config.issuer.clone()),
                audiences: policy.audiences.clone(),
                leeway: issuer.config.leeway.as_secs(),
                require_at_jwt: policy.require_at_jwt,
                require_exp: true,
            })
            .collect();
        let mut algs: Vec<_> = issuers
            .iter()
            .flat_map(|i| i.algorithms.iter().copied())
            .collect();
        algs.sort_by_key(|a| a.name());
        algs.dedup();
        RouteIssuers {
            issuers,
            policies,
            parse: Policy::new(algs),
        }
    }
}

/// Checks tokens for routes; one per gateway, shared by all routes.
///
/// The verified-token cache is a `quick_cache` (sharded, S3-FIFO eviction)
/// rather than moka: with every token new (bench scenario E), moka's insert,
/// its table rehashes under churn and its maintenance cost about 5 µs per
/// token, a fifth of the RS256 signature check itself. Expiry is lazy: an
/// entry carries the Unix second it may be used until, and a lookup after
/// that is a miss.
#[derive(Debug)]
pub struct Authenticator {
    cache: quick_cache::sync::Cache<[u8; 32], Cached>,
    capacity: u64,
    /// Lookups that missed (hits are counted in
    /// [`Counters::token_cache_hits`](crate::Counters::token_cache_hits)).
    misses: AtomicU64,
}

/// A cache entry: the verification and the Unix second after which it is
/// not used any more (`exp`, at most [`MAX_CACHE_TTL`] after it was made).
#[derive(Debug, Clone)]
struct Cached {
    token: Arc<CachedToken>,
    until: u64,
}

/// Default capacity of the verified-token cache. An entry is about 1.4 KB
/// (claims plus the raw payload kept for claim conditions), so 20,000
/// entries stay under 30 MB; measured with `bench/run.sh` scenario E.
pub const DEFAULT_CACHE_CAPACITY: u64 = 20_000;

impl Default for Authenticator {
    fn default() -> Self {
        Authenticator::new(DEFAULT_CACHE_CAPACITY)
    }
}

impl Authenticator {
    /// A cache holding at most `capacity` verified tokens.
    pub fn new(capacity: u64) -> Authenticator {
        Authenticator {
            cache: quick_cache::sync::Cache::new(usize::try_from(capacity).unwrap_or(usize::MAX)),
            capacity,
            misses: AtomicU64::new(0),
        }
    }

    /// The cached verification of the token with digest `hash`, unless it
    /// has expired (then it is dropped).
    fn lookup(&self, hash: &[u8; 32], now: u64) -> Option<Arc<CachedToken>> {
        let c = self.cache.get(hash)?;
        if now < c.until {
            return Some(c.token);
        }
        self.cache.remove(hash);
        None
    }

    /// Checks the request against `policy`. `route` holds the issuers the
    /// policy names, in its order; `now` is Unix time. `known` is the
    /// request's bearer token hashed already ([`bearer_hash`], when the
    /// call log hashed it): its digest is the cache key when the token
    /// found is that token.
    pub async fn authenticate(
        &self,
        parts: &Parts,
        policy: &JwtPolicy,
        route: &RouteIssuers,
        now: u64,
        counters: &crate::Counters,
        known: Option<&BearerHash>,
    ) -> Result<Principal, Denial> {
        let token = extract(parts, &policy.token_sources)?;
        let hash = token_sha256(known, token.as_bytes());
        let hit = self
            .lookup(&hash, now)
            .and_then(|c| Some((route.position(&c.issuer)?, c)));
        let (index, cached, hit) = match hit {
            Some((index, cached)) => {
                counters
                    .token_cache_hits
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                (index, cached, true)
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                let (index, c) = verify(token, route, now, counters).await?;
                let c = Arc::new(c);
                let ttl = c.ttl_hint;
                if !ttl.is_zero() {
                    let cached = Cached {
                        token: Arc::clone(&c),
                        until: now.saturating_add(ttl.as_secs()),
                    };
                    self.cache.insert(hash, cached);
                }
                (index, c, false)
            }
        };
        let (Some(issuer), Some(route_policy)) =
            (route.issuers.get(index), route.policies.get(index))
        else {
            return Err(Denial::invalid_token(
                "jwt-iss-mismatch",
                "the token's issuer is not accepted here",
            ));
        };
        let v = &cached.verified;
        check::validate(&v.header, &v.claims, route_policy, now)
            .map_err(|r| Denial::from_rejection(&r))?;
        let granted: smallvec::SmallVec<[&str; 8]> = v.claims.scopes().collect();
        scopes(&policy.scopes, &granted)?;
        claims(policy, v)?;
        let make = || Arc::new(Identity::of_verified(issuer.config.name.clone(), v));
        // A token used once (most of a cache that keeps filling) keeps no
        // identity; from its second use on, one is made and shared. The
        // entry was verified by this very issuer (`route.position`), so the
        // names agree; should they not, the route's name wins.
        let shared = if hit {
            Some(cached.identity.get_or_init(make))
        } else {
            None
        };
        let identity = match shared {
            Some(shared) if shared.issuer == issuer.config.name => Arc::clone(shared),
            _ => make(),
        };
        Ok(Principal::new(identity, &hash))
    }

    /// Checks the request against an introspection `policy` with
    /// `introspection`. `known` as for [`Authenticator::authenticate`].
    pub async fn introspect(
        &self,
        parts: &Parts,
        policy: &IntrospectionPolicy,
        introspection: &Introspection,
        now: u64,
        known: Option<&BearerHash>,
    ) -> Result<Principal, Denial> {
        let token = extract(parts, &policy.token_sources)?;
        let a = match introspection.outcome(token, now).await? {
            Outcome::Active(a) => a,
            Outcome::Inactive => {
                return Err(Denial::invalid_token(
                    "introspection-inactive",
                    "the authorization server says this token is not active (expired, revoked or unknown)",
                ));
            }
        };
        if !policy.audiences.is_empty() && !a.aud.iter().any(|x| policy.audiences.contains(x)) {
            return Err(Denial::invalid_token(
                "introspection-aud-mismatch",
                format!(
                    "the token's audience {:?} holds none of the audiences this route accepts",
                    a.aud
                ),
            ));
        }
        scopes(
            &policy.scopes,
            &a.scopes.iter().map(String::as_str).collect::<Vec<_>>(),
        )?;
        let identity = Identity::new(
            introspection.config.name.clone(),
            a.sub,
            a.client_id,
            a.scopes,
            None,
        );
        Ok(Principal::new(
            Arc::new(identity),
            &token_sha256(known, token.as_bytes()),
        ))
    }

    /// Number of cached verifications (expired ones included until they
    /// are looked up or evicted).
    pub fn cached(&self) -> u64 {
        self.cache.len() as u64
    }

    /// The cache's figures; `hits` is
    /// [`Counters::token_cache_hits`](crate::Counters::token_cache_hits),
    /// which the request path counts.
    pub fn cache_stats(&self, hits: u64) -> crate::metrics::CacheStats {
        crate::metrics::CacheStats {
            cache: "verified_tokens",
            name: String::new(),
            entries: self.cached(),
            capacity: self.capacity,
            hits,
            misses: self.misses.load(Ordering::Relaxed),
        }
    }
}

/// SHA-256 of a token: the cache key; its prefix is the logged fingerprint.
pub fn token_hash(token: &str) -> [u8; 32] {
    gatewise_core::secret::sha256(token.as_bytes())
}

/// Signature verification, uncached: pick the issuer by `iss` (its index in
/// `route` is returned with the verification), the keys by
/// `kid` and `alg`, and verify. Structural problems, algorithms outside the
/// allow-list, foreign issuers and unknown `kid`s are refused before any
/// signature math.
async fn verify(
    token: &str,
    route: &RouteIssuers,
    now: u64,
    counters: &crate::Counters,
) -> Result<(usize, CachedToken), Denial> {
    let issuers = &route.issuers;
    let parsed = check::parse(token, &route.parse).map_err(|r| Denial::from_rejection(&r))?;
    let iss = parsed.claims.iss.clone().unwrap_or_default();
    let Some(index) = issuers.iter().position(|i| i.config.issuer == iss) else {
        return Err(Denial::from_rejection(&Rejection::IssuerMismatch {
            found: iss.chars().take(200).collect(),
        }));
    };
    let issuer = issuers.get(index).ok_or_else(|| {
        Denial::invalid_token(
            "jwt-iss-mismatch",
            "the token's issuer is not accepted here",
        )
    })?;
    if !issuer.algorithms.contains(&parsed.header.alg) {
        return Err(Denial::from_rejection(&Rejection::AlgNotAllowed(
            parsed.header.alg.name().to_owned(),
        )));
    }
    let keys = issuer
        .keys_for(parsed.header.kid.as_deref(), parsed.header.alg)
        .await
        .map_err(|r| Denial::from_rejection(&r))?;
    let mut last = Rejection::SignatureInvalid;
    for key in keys {
        counters
            .signature_checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match parsed.check_signature(&key) {
            Ok(()) => {
                let verified = parsed.into_verified();
                if let Some(iat) = verified.claims.iat {
                    issuer.observe_iat(iat, now);
                }
                let ttl = verified
                    .claims
                    .exp
                    .map(|exp| exp - now as f64)
                    .filter(|s| *s > 0.0)
                    .map_or(Duration::ZERO, |s| {
                        Duration::from_secs(s as u64).min(MAX_CACHE_TTL)
                    });
                return Ok((
                    index,
                    CachedToken {
                        verified,
                        identity: std::sync::OnceLock::new(),
                        issuer: Arc::downgrade(issuer),
                        ttl_hint: ttl,
                    },
                ));
            }
            Err(e) => last = e,
        }
    }
    Err(Denial::from_rejection(&last))
}

/// RFC 6750 §2: the token from `Authorization: Bearer` (scheme
/// case-insensitive, RFC 9110 §11.1), or from an opted-in cookie or query
/// parameter; more than one method is `invalid_request` (§2).
fn extract<'a>(parts: &'a Parts, sources: &[TokenSource]) -> Result<&'a str, Denial> {
    // Inline: this runs on every authenticated request.
    let mut found: smallvec::SmallVec<[(&'static str, &'a str); 3]> = smallvec::SmallVec::new();
    let mut other_scheme = None;
    let mut auths = parts.headers.get_all(header::AUTHORIZATION).iter();
    let first = auths.next();
    if auths.next().is_some() {
        return Err(Denial::invalid_request(
            "authorization-repeated",
            "more than one Authorization header",
        ));
    }
    if let Some(v) = first {
        let not_visible = || {
            Denial::invalid_request(
                "authorization-malformed",
                "the Authorization header is not visible ASCII",
            )
        };
        let v = v.as_bytes();
        let (scheme, t, _) = scheme_and_token(v);
        if scheme.eq_ignore_ascii_case(b"bearer") {
            // Visible ASCII and no blank, in one pass without an early exit
            // (it vectorizes: tokens are hundreds of bytes).
            let visible = t.iter().fold(true, |ok, &b| ok & b.is_ascii_graphic());
            if t.is_empty() || !visible {
                return Err(
                    if t.iter()
                        .all(|&b| b.is_ascii_graphic() || b == b' ' || b == b'\t')
                    {
                        Denial::invalid_request(
                            "authorization-malformed",
                            "`Authorization: Bearer` must be followed by exactly one token",
                        )
                    } else {
                        not_visible()
                    },
                );
            }
            found.push(("header", std::str::from_utf8(t).map_err(|_| not_visible())?));
        } else {
            // As `HeaderValue::to_str` judges: visible ASCII or tab.
            if !v.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b)) {
                return Err(not_visible());
            }
            let scheme = std::str::from_utf8(scheme).map_err(|_| not_visible())?;
            other_scheme = Some(scheme.chars().take(20).collect::<String>());
        }
    }
    for src in sources {
        match src {
            TokenSource::Cookie(name) => {
                if let Some(t) = cookie(&parts.headers, name) {
                    found.push(("cookie", t));
                }
            }
            TokenSource::Query(name) => {
                if let Some(t) = parts.uri.query().and_then(|q| {
                    q.split('&')
                        .find_map(|kv| kv.strip_prefix(name.as_str())?.strip_prefix('='))
                }) {
                    found.push(("query", t));
                }
            }
        }
    }
    match found.as_slice() {
        [(_, t)] => Ok(t),
        [] => Err(Denial::token_missing(match other_scheme {
            Some(s) => format!(
                "the Authorization header uses the {s} scheme; this route needs `Authorization: Bearer <access token>`"
            ),
            None => "send the access token as `Authorization: Bearer <token>`".to_owned(),
        })),
        many => Err(Denial::invalid_request(
            "token-multiple-methods",
            format!(
                "the token was sent in more than one way ({}); RFC 6750 §2 allows exactly one",
                many.iter().map(|(w, _)| *w).collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

fn scopes(rule: &ScopeRule, granted: &[&str]) -> Result<(), Denial> {
    let (ok, needed) = match rule {
        ScopeRule::None => return Ok(()),
        ScopeRule::AllOf(want) => (want.iter().all(|w| granted.contains(&w.as_str())), want),
        ScopeRule::AnyOf(want) => (want.iter().any(|w| granted.contains(&w.as_str())), want),
    };
    if ok {
        return Ok(());
    }
    let missing: Vec<&str> = needed
        .iter()
        .map(String::as_str)
        .filter(|w| !granted.contains(w))
        .collect();
    let how = if matches!(rule, ScopeRule::AnyOf(_)) {
        "one of"
    } else {
        "all of"
    };
    Err(Denial::insufficient_scope(
        "scope-missing",
        format!(
            "this route needs {how} [{}]; the token grants [{}]",
            needed.join(" "),
            granted.join(" ")
        ),
        Some(missing.join(" ")),
    ))
}

fn claims(policy: &JwtPolicy, v: &Verified) -> Result<(), Denial> {
    if policy.claims.is_empty() {
        return Ok(());
    }
    let all: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&v.payload).unwrap_or_default();
    for c in &policy.claims {
        let value = all.get(&c.claim);
        let ok = match (&c.test, value) {
            (ClaimTest::Present, v) => v.is_some(),
            (_, None) => false,
            (ClaimTest::Equals(want), Some(serde_json::Value::Array(items))) => {
                items.contains(want)
            }
            (ClaimTest::Equals(want), Some(v)) => v == want,
            (ClaimTest::OneOf(wants), Some(serde_json::Value::Array(items))) => {
                items.iter().any(|i| wants.contains(i))
            }
            (ClaimTest::OneOf(wants), Some(v)) => wants.contains(v),
        };
        if !ok {
            return Err(Denial::insufficient_scope(
                "claim-condition-failed",
                format!(
                    "the token's `{}` claim does not satisfy this route's condition",
                    c.claim
                ),
                None,
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::AUTHORIZATION, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn bearer_hash_finds_the_token_extract_finds() {
        let h = bearer_hash(&headers(&["bEaReR   abc.def.ghi"])).unwrap();
        assert_eq!(h.secret(), b"abc.def.ghi");
        let tabs = bearer_hash(&headers(&["Bearer \tx.y.z\t"])).unwrap();
        assert_eq!(tabs.secret(), b"x.y.z");
        // Whatever `extract` takes from the header, this finds.
        for v in [
            "Bearer a.b.c",
            "bearer  a.b.c ",
            "BEARER\ta b",
            "Bearer a\tb",
        ] {
            let h = headers(&[v]);
            let parts = {
                let mut r = http::Request::new(());
                *r.headers_mut() = h.clone();
                r.into_parts().0
            };
            if let Ok(t) = extract(&parts, &[]) {
                assert_eq!(bearer_hash(&h).unwrap().secret(), t.as_bytes(), "{v}");
            }
        }
        assert_eq!(h.sha256(), &token_hash("abc.def.ghi"));
        assert!(!format!("{h:?}").contains("abc.def"), "{h:?}");
        assert!(!format!("{:?}", TokenBytes::clone(&TOKEN)).contains("abc"));
        for none in [&[][..], &["Basic dTpw"], &["Bearer"], &["Bearer   "]] {
            assert!(bearer_hash(&headers(none)).is_none(), "{none:?}");
        }
    }

    #[test]
    fn extract_takes_one_visible_token_after_bearer() {
        let parts_with = |v: HeaderValue| {
            let mut r = http::Request::new(());
            r.headers_mut().insert(header::AUTHORIZATION, v);
            r.into_parts().0
        };
        let ok = |v: &'static str| {
            let parts = parts_with(HeaderValue::from_static(v));
            extract(&parts, &[])
                .map(str::to_owned)
                .map_err(|d| d.detail)
        };
        assert_eq!(ok("Bearer a.b.c"), Ok("a.b.c".to_owned()));
        assert_eq!(ok("bearer   a.b.c \t"), Ok("a.b.c".to_owned()));
        for two in ["Bearer a b", "Bearer a\tb", "Bearer", "Bearer   "] {
            let e = ok(two).unwrap_err();
            assert!(e.contains("exactly one token"), "{two}: {e}");
        }
        let parts = parts_with(HeaderValue::from_bytes(b"Bearer a.b\xc3\xa9").unwrap());
        let d = extract(&parts, &[]).unwrap_err();
        assert_eq!(d.reason, "authorization-malformed");
        assert!(d.detail.contains("not visible ASCII"), "{}", d.detail);
        let e = ok("Basic dTpw").unwrap_err();
        assert!(e.contains("the Basic scheme"), "{e}");
        let parts = parts_with(HeaderValue::from_bytes(b"Basic \xff").unwrap());
        let d = extract(&parts, &[]).unwrap_err();
        assert!(d.detail.contains("not visible ASCII"), "{}", d.detail);
        let mut long = "Bearer ".to_owned();
        long.push_str(&"x".repeat(2000));
        let parts = parts_with(HeaderValue::from_str(&long).unwrap());
        assert_eq!(extract(&parts, &[]).map(str::len).ok(), Some(2000));
    }

    const TOKEN: TokenBytes = TokenBytes {
        value: HeaderValue::from_static("Bearer abc"),
        start: 7,
        end: 10,
    };

    #[test]
    fn fingerprint_is_sixteen_hex_digits_of_the_hash() {
        let hash = token_hash("abc");
        let expected: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let identity = Identity::new("i".into(), None, None, Vec::new(), None);
        let p = Principal::new(Arc::new(identity), &hash);
        assert_eq!(p.fingerprint(), expected);
    }
}
