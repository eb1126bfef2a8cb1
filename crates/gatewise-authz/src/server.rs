//! The HTTP endpoints and the OAuth error responses (RFC 6749 §5.2).
//!
//! [`Authz::open`] builds the server on a [`StateStore`] (keys loaded from
//! it, or generated and stored on first start); [`Authz::new`] on a fresh
//! in-memory one (tests, `gatewise demo`). [`Authz::maintain`] is the
//! background work of a long-running server: key rotation by interval,
//! picking up keys another instance (or `gatewise authz keys rotate`)
//! stored, and purging what expired.

use crate::AuthzError;
use crate::clients::{AssertionPolicy, AuthFailure, AuthMethod, Client, ClientSpec, Registry};
use crate::faults::{self, Endpoint, Fault};
use crate::flow::{self, User, UserSpec};
use crate::keys::{KEEP_PREVIOUS, KeyRing, Sealer, SigningKey};
use crate::store::{GrantKind, GrantRecord, Ring, StateStore, StoredKey};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use gatewise_core::clock::Clock;
use gatewise_core::jose::check::{self, Policy};
use gatewise_core::jose::jwk::{self, VerifyingKey};
use gatewise_core::jose::{Alg, b64url_encode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// What the server is configured with.
#[derive(Debug, Clone)]
pub struct AuthzConfig {
    /// The issuer identifier: the base URL clients reach the server at.
    pub issuer: String,
    /// Registered clients.
    pub clients: Vec<ClientSpec>,
    /// Access token lifetime in seconds.
    pub access_token_ttl: u64,
    /// Refresh token lifetime in seconds (each rotation starts it again).
    pub refresh_token_ttl: u64,
    /// Authorization code lifetime in seconds.
    pub code_ttl: u64,
    /// ID token lifetime in seconds.
    pub id_token_ttl: u64,
    /// Device code lifetime in seconds (RFC 8628 §3.2 `expires_in`).
    pub device_code_ttl: u64,
    /// Polling interval of the device flow in seconds (RFC 8628 §3.2
    /// `interval`; each `slow_down` adds 5).
    pub device_interval: u64,
    /// Signing algorithm (RS256 by default; ES256 or EdDSA).
    pub alg: Alg,
    /// Rotate the signing keys this often (seconds; [`Authz::maintain`]);
    /// `None`: only when asked.
    pub key_rotation: Option<u64>,
    /// Scopes advertised in the metadata besides the clients' own.
    pub scopes: Vec<String>,
    /// Users who can sign in at the authorization endpoint.
    pub users: Vec<UserSpec>,
    /// Fault mode: faults served to every request they fit (see
    /// [`crate::faults`]). Empty for a well-behaved server.
    pub faults: Vec<Fault>,
    /// Fault mode: honour the `Gatewise-Fault` request header even when no
    /// fault is configured. The header is honoured whenever fault mode is
    /// on ([`AuthzConfig::fault_mode`]) and ignored otherwise.
    pub fault_header: bool,
}

impl AuthzConfig {
    /// A development configuration, with fresh secrets: machine clients
    /// `demo-client` (JWT tokens) and `demo-opaque` (opaque tokens), a web
    /// client `demo-web` (redirect `http://127.0.0.1:8000/callback`), a
    /// public native client `demo-native` (any loopback port on
    /// `http://127.0.0.1/callback`), and the user `alice` / `wonderland`.
    pub fn dev(issuer: &str) -> AuthzConfig {
        AuthzConfig {
            issuer: issuer.trim_end_matches('/').to_owned(),
            clients: vec![
                ClientSpec::machine(
                    "demo-client",
                    &crate::clients::generate_secret(),
                    &["orders.read", "orders.write"],
                    &["https://api.example.test", "https://other.example.test"],
                ),
                ClientSpec {
                    opaque_tokens: true,
                    ..ClientSpec::machine(
                        "demo-opaque",
                        &crate::clients::generate_secret(),
                        &["orders.read"],
                        &["https://api.example.test"],
                    )
                },
                ClientSpec {
                    redirect_uris: vec!["http://127.0.0.1:8000/callback".into()],
                    ..ClientSpec::machine(
                        "demo-web",
                        &crate::clients::generate_secret(),
                        &["orders.read", "orders.write"],
                        &["https://api.example.test"],
                    )
                },
                ClientSpec {
                    redirect_uris: vec!["http://127.0.0.1/callback".into()],
                    public: true,
                    ..ClientSpec::machine(
                        "demo-native",
                        "",
                        &["orders.read"],
                        &["https://api.example.test"],
                    )
                },
            ],
            access_token_ttl: 3600,
            refresh_token_ttl: crate::config::DEFAULT_REFRESH_TTL,
            code_ttl: crate::config::DEFAULT_CODE_TTL,
            id_token_ttl: 3600,
            device_code_ttl: crate::config::DEFAULT_DEVICE_TTL,
            device_interval: crate::config::DEFAULT_DEVICE_INTERVAL,
            alg: Alg::RS256,
            key_rotation: None,
            scopes: Vec::new(),
            users: vec![UserSpec::new(
                "alice",
                "wonderland",
                "Alice Liddell",
                "alice@example.test",
            )],
            faults: Vec::new(),
            fault_header: false,
        }
    }

    /// Whether fault mode is on: a server-wide fault, a client with faults,
    /// or `fault_header`.
    pub fn fault_mode(&self) -> bool {
        self.fault_header
            || !self.faults.is_empty()
            || self.clients.iter().any(|c| !c.faults.is_empty())
    }
}

/// The authorization server's state.
pub struct Authz {
    config: AuthzConfig,
    registry: Registry,
    users: Vec<User>,
    keys: KeyRing,
    /// RS256 keys for ID tokens when access tokens use another algorithm:
    /// OpenID Connect Core §15.1 makes RS256 mandatory for ID tokens.
    id_keys: Option<KeyRing>,
    clock: Arc<dyn Clock>,
    store: Arc<dyn StateStore>,
    sealer: Option<Sealer>,
    /// Fault mode is on: the `Gatewise-Fault` header is honoured.
    fault_mode: bool,
    /// Failed client authentication per client.
    throttle: crate::throttle::AuthThrottle,
}

impl std::fmt::Debug for Authz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authz")
            .field("issuer", &self.config.issuer)
            .finish_non_exhaustive()
    }
}

/// SHA-256 of a token or code: what is stored instead of the value.
pub(crate) fn token_hash(token: &str) -> [u8; 32] {
    gatewise_core::secret::sha256(token.as_bytes())
}

/// 16 random bytes, base64url.
pub(crate) fn random_id() -> String {
    let mut b = [0u8; 16];
    let _ = aws_lc_rs::rand::fill(&mut b);
    b64url_encode(&b)
}

/// The key for the store: PKCS#8, sealed when a sealer is configured.
fn stored_key(
    key: &SigningKey,
    ring: Ring,
    now: u64,
    sealer: Option<&Sealer>,
) -> Result<StoredKey, AuthzError> {
    Ok(StoredKey {
        kid: key.kid.clone(),
        ring,
        alg: key.alg,
        private: match sealer {
            Some(s) => s.seal(&key.kid, key.pkcs8())?,
            None => key.pkcs8().to_vec(),
        },
        created_at: now,
        active: true,
    })
}

/// A stored key, unsealed.
fn load_key(k: &StoredKey, sealer: Option<&Sealer>) -> Result<SigningKey, AuthzError> {
    let pkcs8 = if Sealer::is_sealed(&k.private) {
        match sealer {
            Some(s) => s.open(&k.kid, &k.private)?,
            None => {
                return Err(AuthzError::Config(format!(
                    "signing key {} is encrypted, but no key-encryption key is configured (keys.encryption_key_env or keys.encryption_key_file)",
                    k.kid
                )));
            }
        }
    } else {
        k.private.clone()
    };
    SigningKey::from_pkcs8(k.alg, &pkcs8)
}

/// The ring's keys as stored: the active one and the previous ones.
fn ring_keys(
    stored: &[StoredKey],
    ring: Ring,
    sealer: Option<&Sealer>,
) -> Result<Option<(SigningKey, Vec<SigningKey>)>, AuthzError> {
    let mine: Vec<&StoredKey> = stored.iter().filter(|k| k.ring == ring).collect();
    let Some(active) = mine.iter().find(|k| k.active) else {
        return Ok(None);
    };
    let previous = mine
        .iter()
        .filter(|k| !k.active)
        .map(|k| load_key(k, sealer))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some((load_key(active, sealer)?, previous)))
}

/// Generates a key off the async threads (RSA takes tens of milliseconds).
async fn generate(alg: Alg) -> Result<SigningKey, AuthzError> {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => tokio::task::spawn_blocking(move || SigningKey::generate(alg))
            .await
            .unwrap_or_else(|e| Err(AuthzError::Crypto(format!("key generation failed: {e}")))),
        Err(_) => SigningKey::generate(alg),
    }
}

impl Authz {
    /// Builds the server on a fresh in-memory store: generates the signing
    /// keys, hashes client secrets. Nothing survives the process.
    pub fn new(config: AuthzConfig, clock: Arc<dyn Clock>) -> Result<Authz, AuthzError> {
        let store = crate::store::sqlite::SqliteStateStore::memory()?;
        let now = clock.unix_now();
        let keys = KeyRing::new(config.alg)?;
        store.install_key_now(
            stored_key(&keys.active(), Ring::Access, now, None)?,
            None,
            true,
            KEEP_PREVIOUS,
        )?;
        let id_keys = if config.alg == Alg::RS256 {
            None
        } else {
            let ring = KeyRing::new(Alg::RS256)?;
            store.install_key_now(
                stored_key(&ring.active(), Ring::Id, now, None)?,
                None,
                true,
                KEEP_PREVIOUS,
            )?;
            Some(ring)
        };
        Authz::build(config, clock, Arc::new(store), None, keys, id_keys)
    }

    /// Builds the server on `store`: its signing keys are loaded (unsealed
    /// with `sealer`), or generated and stored when there are none, or
    /// when the configured algorithm changed (the old key stays published
    /// as a previous one). Secrets of clients are hashed.
    pub async fn open(
        config: AuthzConfig,
        clock: Arc<dyn Clock>,
        store: Arc<dyn StateStore>,
        sealer: Option<Sealer>,
    ) -> Result<Authz, AuthzError> {
        let now = clock.unix_now();
        let mut rings = Vec::new();
        let wanted: &[(Ring, Alg)] = if config.alg == Alg::RS256 {
            &[(Ring::Access, Alg::RS256)]
        } else {
            &[(Ring::Access, config.alg), (Ring::Id, Alg::RS256)]
        };
        for &(ring, alg) in wanted {
            // Twice at most: another server may install a key between our
            // read and our write; then its key is used.
            let mut loaded = None;
            for _ in 0..3 {
                let stored = store.keys().await?;
                let current = ring_keys(&stored, ring, sealer.as_ref())?;
                match current {
                    Some((active, previous)) if active.alg == alg => {
                        loaded = Some(KeyRing::from_keys(alg, active, previous));
                        break;
                    }
                    other => {
                        let expected = other.map(|(a, _)| a.kid);
                        let fresh = generate(alg).await?;
                        let key = stored_key(&fresh, ring, now, sealer.as_ref())?;
                        store
                            .install_key(key, expected, true, KEEP_PREVIOUS)
                            .await?;
                    }
                }
            }
            rings.push(loaded.ok_or_else(|| {
                AuthzError::Config("the signing keys kept changing while loading them".into())
            })?);
        }
        let mut rings = rings.into_iter();
        let keys = rings
            .next()
            .ok_or_else(|| AuthzError::Config("no signing keys".into()))?;
        let id_keys = rings.next();
        Authz::build(config, clock, store, sealer, keys, id_keys)
    }

    fn build(
        config: AuthzConfig,
        clock: Arc<dyn Clock>,
        store: Arc<dyn StateStore>,
        sealer: Option<Sealer>,
        keys: KeyRing,
        id_keys: Option<KeyRing>,
    ) -> Result<Authz, AuthzError> {
        if url::Url::parse(&config.issuer).is_err() {
            return Err(AuthzError::Config(format!(
                "issuer `{}` is not a URL",
                config.issuer
            )));
        }
        for c in &config.clients {
            if let Some(f) = c.faults.iter().find(|f| f.endpoint() != Endpoint::Token) {
                return Err(AuthzError::Config(format!(
                    "client `{}`: fault `{f}` applies to the {}, which is fetched without client authentication; set it for the whole server instead (--fault {f})",
                    c.id,
                    f.endpoint()
                )));
            }
        }
        let fault_mode = config.fault_mode();
        Ok(Authz {
            keys,
            id_keys,
            registry: Registry::new(config.clients.clone())?,
            users: flow::users(config.users.clone())?,
            config,
            clock,
            store,
            sealer,
            fault_mode,
            throttle: crate::throttle::AuthThrottle::default(),
        })
    }

    /// The configuration the server runs with (secrets emptied: they are
    /// hashed in the registry).
    pub fn config(&self) -> &AuthzConfig {
        &self.config
    }

    /// The state store.
    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.store
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// The key ring of access tokens (for rotation).
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// The ring that signs ID tokens (RS256).
    fn id_ring(&self) -> &KeyRing {
        self.id_keys.as_ref().unwrap_or(&self.keys)
    }

    /// Rotates every signing key and stores the new ones; the previous
    /// ones stay published when `overlap` (see [`KeyRing::rotate`]).
    /// Returns the new access-token `kid`. When another server rotated at
    /// the same moment, its keys are taken instead of making more.
    pub async fn rotate_stored_keys(&self, overlap: bool) -> Result<String, AuthzError> {
        let now = self.now();
        let mut rings = vec![(Ring::Access, &self.keys)];
        if let Some(id) = &self.id_keys {
            rings.push((Ring::Id, id));
        }
        for (ring, keys) in rings {
            let fresh = generate(keys.alg()).await?;
            let key = stored_key(&fresh, ring, now, self.sealer.as_ref())?;
            self.store
                .install_key(key, Some(keys.active().kid.clone()), overlap, KEEP_PREVIOUS)
                .await?;
        }
        self.reload_keys().await?;
        Ok(self.keys.active().kid.clone())
    }

    /// [`Authz::rotate_stored_keys`] for callers that cannot `.await`:
    /// outside a runtime (a runtime of its own runs it) or on a
    /// multi-thread runtime (in place). A current-thread runtime cannot
    /// wait for its own tasks: that is an error, asking for the async form.
    pub fn rotate_keys(&self, overlap: bool) -> Result<String, AuthzError> {
        use tokio::runtime::{Handle, RuntimeFlavor};
        match Handle::try_current() {
            Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| h.block_on(self.rotate_stored_keys(overlap)))
            }
            Ok(_) => Err(AuthzError::Config(
                "rotate_keys cannot wait on a current-thread runtime; use rotate_stored_keys().await"
                    .into(),
            )),
            Err(_) => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| AuthzError::Config(format!("cannot start a runtime: {e}")))?
                .block_on(self.rotate_stored_keys(overlap)),
        }
    }

    /// Takes the keys as stored (rotated by another server or by
    /// `gatewise authz keys rotate`). Returns whether they changed.
    pub async fn reload_keys(&self) -> Result<bool, AuthzError> {
        let stored = self.store.keys().await?;
        let mut changed = false;
        let mut rings = vec![(Ring::Access, &self.keys)];
        if let Some(id) = &self.id_keys {
            rings.push((Ring::Id, id));
        }
        for (ring, keys) in rings {
            let before = keys.kids();
            let kids: Vec<String> = stored
                .iter()
                .filter(|k| k.ring == ring)
                .map(|k| k.kid.clone())
                .collect();
            let mut sorted_before = before.clone();
            sorted_before.sort();
            let mut sorted_now = kids.clone();
            sorted_now.sort();
            let active_now = stored
                .iter()
                .find(|k| k.ring == ring && k.active)
                .map(|k| k.kid.as_str());
            if sorted_before == sorted_now && active_now == before.first().map(String::as_str) {
                continue;
            }
            if let Some((active, previous)) = ring_keys(&stored, ring, self.sealer.as_ref())? {
                keys.replace(active, previous);
                changed = true;
            }
        }
        Ok(changed)
    }

    /// One round of upkeep: rotates the keys when the active one is older
    /// than `key_rotation`, takes keys another server stored, and deletes
    /// expired state. [`Authz::maintain`] calls it periodically.
    pub async fn maintain_once(&self) -> Result<(), AuthzError> {
        let now = self.now();
        self.reload_keys().await?;
        if let Some(every) = self.config.key_rotation {
            let stored = self.store.keys().await?;
            let created = stored
                .iter()
                .find(|k| k.ring == Ring::Access && k.active)
                .map(|k| k.created_at)
                .unwrap_or(now);
            if created + every <= now {
                let kid = self.rotate_stored_keys(true).await?;
                tracing::info!(kid = %kid, "signing keys rotated (keys.rotation_interval)");
            }
        }
        let purged = self.store.purge(now).await?;
        if purged > 0 {
            tracing::debug!(rows = purged, "expired authorization state deleted");
        }
        Ok(())
    }

    /// Runs [`Authz::maintain_once`] every `every` until the task is
    /// dropped; failures are logged and retried next time.
    pub async fn maintain(self: Arc<Self>, every: std::time::Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.maintain_once().await {
                tracing::warn!("authorization server upkeep failed: {e}");
            }
        }
    }

    /// The published JWK Set: access-token keys, then ID-token keys.
    pub fn jwks(&self) -> Value {
        let mut doc = self.keys.jwks();
        if let (Some(id), Some(keys)) = (
            &self.id_keys,
            doc.get_mut("keys").and_then(Value::as_array_mut),
        ) && let Some(more) = id.jwks().get("keys").and_then(Value::as_array)
        {
            keys.extend(more.iter().cloned());
        }
        doc
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    pub(crate) fn users(&self) -> &[User] {
        &self.users
    }

    pub(crate) fn now(&self) -> u64 {
        self.clock.unix_now()
    }

    /// Client authentication for a request to `endpoint` (its path), with
    /// every method of [`Registry::authenticate_at`]; a client assertion's
    /// `jti` is recorded until its `exp` and refused the second time (RFC
    /// 7523 §3, item 7). `Err` is the response to send.
    pub(crate) async fn authenticate(
        &self,
        headers: &HeaderMap,
        form: &[(String, String)],
        endpoint: &str,
    ) -> Result<(&Client, AuthMethod), Response> {
        let auth = authorization(headers);
        // A registered client that failed too often is refused before its
        // credentials are checked.
        let claimed = crate::throttle::claimed_client(auth, form)
            .filter(|id| self.registry.get(id).is_some());
        if let Some(id) = &claimed
            && let Some(wait) = self.throttle.blocked(id, self.now())
        {
            let mut resp = oauth_error(
                StatusCode::TOO_MANY_REQUESTS,
                "invalid_client",
                &format!(
                    "too many failed client authentications for this client; retry in {wait} s"
                ),
                false,
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
            return Err(resp);
        }
        let failed = |f: &AuthFailure| {
            if let Some(id) = &claimed
                && matches!(f, AuthFailure::Rejected | AuthFailure::Assertion(_))
            {
                self.throttle.failed(id, self.now());
            }
        };
        let i = &self.config.issuer;
        let policy = AssertionPolicy {
            now: self.now(),
            audiences: vec![format!("{i}/token"), i.clone(), format!("{i}{endpoint}")],
        };
        match self.registry.authenticate_at(auth, form, &policy) {
            Ok((c, m, None)) => Ok((c, m)),
            Ok((c, m, Some(r))) => match self
                .store
                .consume_jti(c.spec.id.clone(), r.jti, r.exp)
                .await
            {
                Ok(true) => Ok((c, m)),
                Ok(false) => Err(client_error(
                    &AuthFailure::Assertion(
                        "the assertion's jti was used before: a replay (RFC 7523 §3, item 7)"
                            .into(),
                    ),
                    false,
                )),
                Err(e) => Err(storage_error(e)),
            },
            Err(f) => {
                failed(&f);
                Err(client_error(&f, auth.is_some()))
            }
        }
    }

    /// The axum router with every endpoint.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/.well-known/oauth-authorization-server", get(metadata))
            .route("/.well-known/openid-configuration", get(metadata))
            .route("/jwks.json", get(jwks))
            .route("/authorize", get(authorize_get).post(authorize_post))
            .route("/token", post(token))
            .route("/device_authorization", post(device_authorization))
            .route("/device", get(device_get).post(device_post))
            .route("/userinfo", get(userinfo).post(userinfo))
            .route("/introspect", post(introspect))
            .route("/revoke", post(revoke))
            .route("/login", get(login))
            .with_state(self)
    }

    /// Issues an access token for `client_id` directly (tests, the demo's
    /// "expired token" example): `ttl` may be negative to mint an expired one.
    pub fn mint_access_token(
        &self,
        client_id: &str,
        resource: &str,
        scope: &str,
        ttl: i64,
    ) -> Result<String, AuthzError> {
        let now = self.clock.unix_now() as i64;
        let claims = json!({
            "iss": self.config.issuer, "sub": client_id, "aud": resource, "client_id": client_id,
            "iat": now.min(now + ttl), "exp": now + ttl, "jti": random_id(), "scope": scope,
        });
        self.keys.active().sign("at+jwt", &claims)
    }

    fn metadata_doc(&self, faults: &[Fault]) -> Value {
        let i = &self.config.issuer;
        let issuer = if faults.contains(&Fault::DiscoveryIssuerMismatch) {
            faults::other_issuer(i)
        } else {
            i.clone()
        };
        json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{i}/authorize"),
            "token_endpoint": format!("{i}/token"),
            "jwks_uri": format!("{i}/jwks.json"),
            "introspection_endpoint": format!("{i}/introspect"),
            "revocation_endpoint": format!("{i}/revoke"),
            "device_authorization_endpoint": format!("{i}/device_authorization"),
            "userinfo_endpoint": format!("{i}/userinfo"),
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", crate::device::GRANT_TYPE],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true,
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
            "introspection_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
            "revocation_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
            "scopes_supported": self.scopes(),
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash", "name", "email"],
            "service_documentation": "https://github.com/gatewise",
        })
    }

    fn scopes(&self) -> Vec<String> {
        let mut s: Vec<String> = self
            .config
            .clients
            .iter()
            .flat_map(|c| c.scopes.iter().cloned())
            .chain(self.config.scopes.iter().cloned())
            .collect();
        s.extend(["openid", "profile", "email"].map(String::from));
        s.sort();
        s.dedup();
        s
    }

    /// The fault the `Gatewise-Fault` header picks: `Ok(None)` without the
    /// header or outside fault mode (then the header is ignored); the
    /// problem, when it names no fault.
    fn header_fault(&self, headers: &HeaderMap) -> Result<Option<Fault>, String> {
        if !self.fault_mode {
            return Ok(None);
        }
        let Some(v) = headers.get(faults::HEADER) else {
            return Ok(None);
        };
        let v = v
            .to_str()
            .map_err(|_| "Gatewise-Fault: the value is not ASCII".to_owned())?;
        Fault::parse(v)
            .map(Some)
            .map_err(|e| format!("Gatewise-Fault: {e}"))
    }

    /// The faults of one request at `at`: the header's (alone) when it
    /// picked one, else the server's and the client's own.
    fn faults_for(
        &self,
        picked: Option<Fault>,
        at: Endpoint,
        client: Option<&ClientSpec>,
    ) -> Vec<Fault> {
        let all: Vec<Fault> = match picked {
            Some(f) => vec![f],
            None => self
                .config
                .faults
                .iter()
                .chain(client.map(|c| c.faults.as_slice()).unwrap_or_default())
                .copied()
                .collect(),
        };
        let mine: Vec<Fault> = all.into_iter().filter(|f| f.endpoint() == at).collect();
        if !mine.is_empty() {
            let names: Vec<String> = mine.iter().map(Fault::to_string).collect();
            tracing::info!(endpoint = %at, faults = %names.join(","), "fault mode: serving a fault");
        }
        mine
    }

    /// Signs a token, as the faults say: unsecured (`alg-none`) or under a
    /// `kid` the JWKS lacks (`unknown-kid`).
    fn sign_token(
        ring: &KeyRing,
        typ: &str,
        claims: &Value,
        faults: &[Fault],
    ) -> Result<String, AuthzError> {
        if faults.contains(&Fault::AlgNone) {
            return Ok(crate::keys::unsecured(typ, claims));
        }
        let key = ring.active();
        if faults.contains(&Fault::UnknownKid) {
            key.sign_with_kid(typ, claims, &faults::unknown_kid())
        } else {
            key.sign(typ, claims)
        }
    }

    /// The claims of an active token, or `None` (unknown, expired, revoked, forged).
    async fn active_claims(&self, token: &str) -> Result<Option<Value>, crate::store::StoreError> {
        let now = self.clock.unix_now();
        if let Some(rec) = self
            .store
            .grant(GrantKind::Opaque, token_hash(token))
            .await?
        {
            return Ok((rec.exp > now).then_some(rec.data));
        }
        let Some(claims) = self.verified_claims(token, now) else {
            return Ok(None);
        };
        let jti = claims
            .get("jti")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if self.store.jti_revoked(jti.to_owned()).await? {
            return Ok(None);
        }
        Ok(Some(claims))
    }

    /// The claims of a JWT this server signed, if it verifies now.
    fn verified_claims(&self, token: &str, now: u64) -> Option<Value> {
        let policy = Policy {
            issuer: Some(self.config.issuer.clone()),
            leeway: 0,
            ..Policy::new(vec![Alg::RS256, Alg::ES256, Alg::EdDSA])
        };
        let parsed = check::parse(token, &policy).ok()?;
        let kid = parsed.header.kid.as_deref()?;
        let key = self.keys.find(kid).or_else(|| self.id_ring().find(kid))?;
        let material = jwk::material(key.public_jwk().as_object()?).ok()?;
        let vk = VerifyingKey::new(key.alg, &material).ok()?;
        let verified = parsed.verify(&vk, &policy, now).ok()?;
        serde_json::from_slice(&verified.payload).ok()
    }
}

/// An RFC 6749 §5.2 error response.
pub(crate) fn oauth_error(
    status: StatusCode,
    code: &str,
    description: &str,
    basic_challenge: bool,
) -> Response {
    let mut resp = (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({"error": code, "error_description": description})),
    )
        .into_response();
    if basic_challenge {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"gatewise-authz\""),
        );
    }
    resp
}

fn client_error(f: &AuthFailure, used_basic: bool) -> Response {
    let (status, desc) = match f {
        AuthFailure::Assertion(why) => (StatusCode::UNAUTHORIZED, why.as_str()),
        AuthFailure::Missing => (
            StatusCode::UNAUTHORIZED,
            "client authentication is required",
        ),
        AuthFailure::TwoMethods => (
            StatusCode::BAD_REQUEST,
            "use exactly one client authentication method (RFC 6749 §2.3)",
        ),
        AuthFailure::Rejected => (StatusCode::UNAUTHORIZED, "unknown client or wrong secret"),
        AuthFailure::Malformed => (
            StatusCode::BAD_REQUEST,
            "the Basic credentials are not base64 of id:secret",
        ),
    };
    let code = if *f == AuthFailure::TwoMethods {
        "invalid_request"
    } else {
        "invalid_client"
    };
    // RFC 6749 §5.2: a 401 after Basic authentication carries the challenge.
    oauth_error(
        status,
        code,
        desc,
        status == StatusCode::UNAUTHORIZED || used_basic,
    )
}

pub(crate) fn form(body: &Bytes) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn authorization(h: &HeaderMap) -> Option<&str> {
    h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
}

async fn metadata(State(a): State<Arc<Authz>>, headers: HeaderMap) -> Response {
    let picked = match a.header_fault(&headers) {
        Ok(p) => p,
        Err(e) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &e, false),
    };
    let faults = a.faults_for(picked, Endpoint::Discovery, None);
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        axum::Json(a.metadata_doc(&faults)),
    )
        .into_response()
}

async fn jwks(State(a): State<Arc<Authz>>, headers: HeaderMap) -> Response {
    let picked = match a.header_fault(&headers) {
        Ok(p) => p,
        Err(e) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &e, false),
    };
    if a.faults_for(picked, Endpoint::Jwks, None)
        .contains(&Fault::JwksDown)
    {
        return faults::jwks_down();
    }
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        axum::Json(a.jwks()),
    )
        .into_response()
}

/// The sign-in page `redirect-to-login` sends clients to; only in fault mode.
async fn login(State(a): State<Arc<Authz>>) -> Response {
    if a.fault_mode {
        faults::login_page()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

async fn token(State(a): State<Arc<Authz>>, headers: HeaderMap, body: Bytes) -> Response {
    let picked = match a.header_fault(&headers) {
        Ok(p) => p,
        Err(e) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &e, false),
    };
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !ct
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the token request must be application/x-www-form-urlencoded (RFC 6749 §4.4.2)",
            false,
        );
    }
    let form = form(&body);
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let (client, _) = match a.authenticate(&headers, &form, "/token").await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let spec = &client.spec;
    // Fault mode: the faults take effect once the client is known.
    let faults = a.faults_for(picked, Endpoint::Token, Some(spec));
    if let Some(d) = faults::delay(&faults) {
        tokio::time::sleep(d).await;
    }
    if let Some(r) = faults::token_replacement(&faults) {
        return r;
    }
    if let Some(g) = get("grant_type")
        && GRANTS.contains(&g)
        && !spec.allows(g)
    {
        // RFC 6749 §5.2: "not authorized to use this authorization grant type".
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            &format!("this client may not use grant_type {g} (see its grant_types)"),
            false,
        );
    }
    let grant = match get("grant_type") {
        Some("client_credentials") => {
            if spec.public {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "unauthorized_client",
                    "a public client cannot use client_credentials",
                    false,
                );
            }
            let scopes: Vec<&str> = match get("scope") {
                Some(s) => s.split(' ').filter(|x| !x.is_empty()).collect(),
                None => spec.scopes.iter().map(String::as_str).collect(),
            };
            if let Some(bad) = scopes.iter().find(|s| !spec.scopes.iter().any(|x| x == *s)) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    &format!("scope `{bad}` is not allowed for this client"),
                    false,
                );
            }
            flow::Grant {
                user: None,
                scope: scopes.join(" "),
                resource: None,
                refresh: None,
                id_token_for: None,
            }
        }
        Some("authorization_code") => match flow::redeem_code(&a, &spec.id, &form).await {
            Ok(g) => g,
            Err(e) => return grant_error(&e),
        },
        Some("refresh_token") => match flow::refresh(&a, &spec.id, &form).await {
            Ok(g) => g,
            Err(e) => return grant_error(&e),
        },
        Some(crate::device::GRANT_TYPE) => match crate::device::redeem(&a, spec, &form).await {
            Ok(g) => g,
            Err(e) => return grant_error(&e),
        },
        Some(other) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!(
                    "grant_type `{}` is not supported here",
                    other.chars().take(40).collect::<String>()
                ),
                false,
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is missing",
                false,
            );
        }
    };
    let resources: Vec<&str> = form
        .iter()
        .filter(|(k, _)| k == "resource")
        .map(|(_, v)| v.as_str())
        .collect();
    let audience = match (resources.as_slice(), &grant.resource) {
        ([], Some(r)) => r.clone(),
        ([], None) => match spec.resources.first() {
            Some(r) => r.clone(),
            None => a.config.issuer.clone(),
        },
        ([one], _) if spec.resources.iter().any(|r| r == one) => (*one).to_owned(),
        ([one], _) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_target",
                &format!("resource `{one}` is not allowed for this client (RFC 8707)"),
                false,
            );
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_target",
                "ask for one resource per token",
                false,
            );
        }
    };
    let now = a.clock.unix_now();
    let ttl = a.config.access_token_ttl;
    let scope = grant.scope.clone();
    let sub = grant.user.clone().unwrap_or_else(|| spec.id.clone());
    let mut claims = json!({
        "iss": a.config.issuer, "sub": sub, "aud": audience, "client_id": spec.id,
        "iat": now, "exp": now + ttl, "jti": random_id(), "scope": scope,
    });
    if !spec.opaque_tokens {
        // The JWT faults change what is signed; opaque tokens stay as they are.
        faults::tamper_claims(&mut claims, &faults, &a.config.issuer);
    }
    let signing_failed = |e: AuthzError| {
        tracing::error!("signing failed: {e}");
        oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the token could not be signed",
            false,
        )
    };
    if faults.contains(&Fault::RotatedKeysNoOverlap) && !spec.opaque_tokens {
        // The new key signs this token; the old ones are unpublished at once.
        // Key generation (RSA: tens of milliseconds) runs off the async threads.
        let ring = Arc::clone(&a);
        if let Err(e) = ring.rotate_stored_keys(false).await {
            return signing_failed(e);
        }
    }
    let access_token = if spec.opaque_tokens {
        let t = random_id() + &random_id();
        let stored = a
            .store
            .put_grant(GrantRecord {
                kind: GrantKind::Opaque,
                hash: token_hash(&t),
                client_id: spec.id.clone(),
                family: None,
                exp: now + ttl,
                used: false,
                data: claims.clone(),
            })
            .await;
        if let Err(e) = stored {
            let e = flow::store_failed(e);
            return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, e.0, &e.1, false);
        }
        t
    } else {
        match Authz::sign_token(&a.keys, "at+jwt", &claims, &faults) {
            Ok(t) => t,
            Err(e) => return signing_failed(e),
        }
    };
    let mut out = json!({"access_token": access_token, "token_type": "Bearer", "expires_in": ttl, "scope": scope});
    if let (Some(r), Some(m)) = (&grant.refresh, out.as_object_mut()) {
        m.insert("refresh_token".into(), json!(r));
    }
    if let (Some((auth_time, nonce)), Some(user)) = (&grant.id_token_for, &grant.user) {
        let mut c = flow::id_token_claims(
            &a,
            &spec.id,
            user,
            *auth_time,
            nonce.as_deref(),
            &access_token,
            a.config.id_token_ttl,
        );
        faults::tamper_claims(&mut c, &faults, &a.config.issuer);
        match Authz::sign_token(a.id_ring(), "JWT", &c, &faults) {
            Ok(t) => {
                if let Some(m) = out.as_object_mut() {
                    m.insert("id_token".into(), json!(t));
                }
            }
            Err(e) => return signing_failed(e),
        }
    }
    match out {
        Value::Object(m) => faults::token_success(m, &faults),
        other => (
            [
                (header::CACHE_CONTROL, "no-store"),
                (header::PRAGMA, "no-cache"),
            ],
            axum::Json(other),
        )
            .into_response(),
    }
}

async fn authorize_get(
    State(a): State<Arc<Authz>>,
    axum::extract::Query(p): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    flow::authorize_get(&a, &p)
}

async fn authorize_post(State(a): State<Arc<Authz>>, body: Bytes) -> Response {
    let p: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    flow::authorize_post(&a, &p).await
}

/// The grant types the token endpoint knows.
const GRANTS: [&str; 4] = [
    "client_credentials",
    "authorization_code",
    "refresh_token",
    crate::device::GRANT_TYPE,
];

/// `POST /device_authorization` (RFC 8628 §3.1).
async fn device_authorization(
    State(a): State<Arc<Authz>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    crate::device::authorization(&a, &headers, &body).await
}

/// `GET /device`: the verification page (RFC 8628 §3.3).
async fn device_get(
    State(a): State<Arc<Authz>>,
    axum::extract::Query(p): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    crate::device::page_get(&a, &p).await
}

/// `POST /device`: the user's decision.
async fn device_post(State(a): State<Arc<Authz>>, body: Bytes) -> Response {
    let p: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    crate::device::page_post(&a, &p).await
}

/// A refusal of the UserInfo endpoint (RFC 6750 §3): the challenge names
/// the error, the body repeats it.
fn bearer_error(status: StatusCode, error: Option<&str>, description: &str) -> Response {
    // RFC 6750 §3: error_description is printable ASCII without `"` and `\`.
    let ascii: String = description
        .replace('§', "section ")
        .chars()
        .filter(|c| matches!(c, ' ' | '!' | '#'..='[' | ']'..='~'))
        .collect();
    let challenge = match error {
        Some(e) if e == "insufficient_scope" => format!(
            "Bearer realm=\"gatewise-authz\", error=\"{e}\", error_description=\"{ascii}\", scope=\"openid\""
        ),
        Some(e) => {
            format!("Bearer realm=\"gatewise-authz\", error=\"{e}\", error_description=\"{ascii}\"")
        }
        // RFC 6750 §3.1: no error code when the request had no credentials.
        None => "Bearer realm=\"gatewise-authz\"".to_owned(),
    };
    let mut r = match error {
        Some(e) => (
            status,
            [(header::CACHE_CONTROL, "no-store")],
            axum::Json(json!({"error": e, "error_description": description})),
        )
            .into_response(),
        None => (status, [(header::CACHE_CONTROL, "no-store")]).into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

/// `GET/POST /userinfo` (OpenID Connect Core §5.3): the claims of the
/// token's user by its scopes (`profile`: `name` and the user's own claims;
/// `email`: `email`), `sub` always. The access token comes as a Bearer
/// header (RFC 6750 §2.1) or, in a POST, as the form's `access_token`
/// (§2.2); one of them.
async fn userinfo(State(a): State<Arc<Authz>>, headers: HeaderMap, body: Bytes) -> Response {
    let header_token = authorization(&headers)
        .map(str::trim)
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned());
    let form_token = form(&body)
        .into_iter()
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v);
    let token = match (header_token, form_token) {
        (Some(_), Some(_)) => {
            // RFC 6750 §2: one method per request.
            return bearer_error(
                StatusCode::BAD_REQUEST,
                Some("invalid_request"),
                "send the access token once: in the Authorization header or in the body",
            );
        }
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) if authorization(&headers).is_some() => {
            return bearer_error(
                StatusCode::UNAUTHORIZED,
                Some("invalid_token"),
                "the Authorization header is not a Bearer token",
            );
        }
        (None, None) => return bearer_error(StatusCode::UNAUTHORIZED, None, ""),
    };
    let claims = match a.active_claims(&token).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return bearer_error(
                StatusCode::UNAUTHORIZED,
                Some("invalid_token"),
                "the access token is unknown, expired, revoked or not signed by this server",
            );
        }
        Err(e) => return storage_error(e),
    };
    let scopes: Vec<&str> = claims
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .split(' ')
        .collect();
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let user = a.users().iter().find(|u| u.spec.username == sub);
    let Some(user) = user.filter(|_| scopes.contains(&"openid")) else {
        return bearer_error(
            StatusCode::FORBIDDEN,
            Some("insufficient_scope"),
            "the token was not issued to a user with the openid scope (OpenID Connect Core §5.3)",
        );
    };
    let mut out = serde_json::Map::new();
    if scopes.contains(&"profile") {
        for (k, v) in &user.spec.claims {
            out.insert(k.clone(), v.clone());
        }
        if !user.spec.name.is_empty() {
            out.insert("name".into(), json!(user.spec.name));
        }
    }
    if scopes.contains(&"email") && !user.spec.email.is_empty() {
        out.insert("email".into(), json!(user.spec.email));
    }
    out.insert("sub".into(), json!(sub));
    (
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(Value::Object(out)),
    )
        .into_response()
}

/// A grant's error (RFC 6749 §5.2); a storage failure is a 500.
fn grant_error(e: &flow::GrantError) -> Response {
    let status = if e.0 == "server_error" {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::BAD_REQUEST
    };
    oauth_error(status, e.0, &e.1, false)
}

/// A storage failure outside a grant (introspection, revocation).
pub(crate) fn storage_error(e: crate::store::StoreError) -> Response {
    let e = flow::store_failed(e);
    grant_error(&e)
}

async fn introspect(State(a): State<Arc<Authz>>, headers: HeaderMap, body: Bytes) -> Response {
    let form = form(&body);
    let client = match a.authenticate(&headers, &form, "/introspect").await {
        // RFC 7662 §2.1: the endpoint MUST require authorization (against
        // token scanning); a public client's bare `client_id` is none.
        Ok((_, AuthMethod::None)) => {
            return client_error(&AuthFailure::Missing, false);
        }
        Ok((c, _)) => c,
        Err(r) => return r,
    };
    let token = form
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    // RFC 7662 §2.1: access or refresh token, whatever `token_type_hint` says.
    let doc = match a.active_claims(token).await {
        Ok(Some(Value::Object(mut m))) => {
            m.insert("active".into(), Value::Bool(true));
            m.insert("token_type".into(), json!("Bearer"));
            Value::Object(m)
        }
        Ok(_) => match flow::refresh_introspection(&a, &client.spec.id, token).await {
            Ok(d) => d.unwrap_or_else(|| json!({"active": false})),
            Err(e) => return storage_error(e),
        },
        Err(e) => return storage_error(e),
    };
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(doc)).into_response()
}

async fn revoke(State(a): State<Arc<Authz>>, headers: HeaderMap, body: Bytes) -> Response {
    let form = form(&body);
    let (client, _) = match a.authenticate(&headers, &form, "/revoke").await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let token = form
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    // RFC 7009 §2.2: 200 whether or not the token was known; only the
    // client the token was issued to may revoke it. Refresh tokens first
    // (RFC 7009 §2: revoking them is a MUST), then access tokens;
    // `token_type_hint` is only a hint (§2.1), so both are searched.
    match flow::revoke_refresh(&a, &client.spec.id, token).await {
        Ok(true) => return StatusCode::OK.into_response(),
        Ok(false) => {}
        Err(e) => return storage_error(e),
    }
    let claims = match a.active_claims(token).await {
        Ok(c) => c,
        Err(e) => return storage_error(e),
    };
    if let Some(claims) = claims
        && claims.get("client_id").and_then(Value::as_str) == Some(client.spec.id.as_str())
    {
        let done = async {
            a.store
                .delete_grant(GrantKind::Opaque, token_hash(token))
                .await?;
            if let Some(jti) = claims.get("jti").and_then(Value::as_str) {
                let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
                a.store.revoke_jti(jti.to_owned(), exp).await?;
            }
            Ok::<(), crate::store::StoreError>(())
        };
        if let Err(e) = done.await {
            return storage_error(e);
        }
    }
    StatusCode::OK.into_response()
}
