//! The HTTP endpoints and the OAuth error responses (RFC 6749 §5.2).

use crate::AuthzError;
use crate::clients::{AuthFailure, AuthMethod, ClientSpec, Registry};
use crate::faults::{self, Endpoint, Fault};
use crate::flow::{self, FlowState, User, UserSpec};
use crate::keys::KeyRing;
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
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// What the server is configured with.
#[derive(Debug, Clone)]
pub struct AuthzConfig {
    /// The issuer identifier: the base URL clients reach the server at.
    pub issuer: String,
    /// Registered clients.
    pub clients: Vec<ClientSpec>,
    /// Access token lifetime in seconds.
    pub access_token_ttl: u64,
    /// Signing algorithm (RS256 by default; ES256 or EdDSA).
    pub alg: Alg,
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
            alg: Alg::RS256,
            users: vec![UserSpec {
                username: "alice".into(),
                password: "wonderland".into(),
                name: "Alice Liddell".into(),
                email: "alice@example.test".into(),
            }],
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

/// An issued opaque token, or a revoked JWT's `jti`.
#[derive(Debug, Clone)]
struct Issued {
    claims: Value,
    exp: u64,
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
    opaque: Mutex<HashMap<[u8; 32], Issued>>,
    revoked_jti: Mutex<HashSet<String>>,
    flows: Mutex<FlowState>,
    /// Fault mode is on: the `Gatewise-Fault` header is honoured.
    fault_mode: bool,
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

impl Authz {
    /// Builds the server: generates the signing key, hashes client secrets.
    pub fn new(config: AuthzConfig, clock: Arc<dyn Clock>) -> Result<Authz, AuthzError> {
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
            keys: KeyRing::new(config.alg)?,
            id_keys: if config.alg == Alg::RS256 {
                None
            } else {
                Some(KeyRing::new(Alg::RS256)?)
            },
            registry: Registry::new(config.clients.clone()),
            users: flow::users(config.users.clone())?,
            config,
            clock,
            opaque: Mutex::new(HashMap::new()),
            revoked_jti: Mutex::new(HashSet::new()),
            flows: Mutex::new(FlowState::default()),
            fault_mode,
        })
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

    /// Rotates every signing key; the previous ones stay published when
    /// `overlap` (see [`KeyRing::rotate`]). Returns the new access-token `kid`.
    pub fn rotate_keys(&self, overlap: bool) -> Result<String, AuthzError> {
        if let Some(id) = &self.id_keys {
            id.rotate(overlap)?;
        }
        self.keys.rotate(overlap)
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

    pub(crate) fn flows(&self) -> std::sync::MutexGuard<'_, FlowState> {
        match self.flows.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
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
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true,
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
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
    fn active_claims(&self, token: &str) -> Option<Value> {
        let now = self.clock.unix_now();
        if let Ok(opaque) = self.opaque.lock()
            && let Some(rec) = opaque.get(&token_hash(token))
        {
            return (rec.exp > now).then(|| rec.claims.clone());
        }
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
        let claims: Value = serde_json::from_slice(&verified.payload).ok()?;
        let jti = claims
            .get("jti")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if self.revoked_jti.lock().is_ok_and(|r| r.contains(jti)) {
            return None;
        }
        Some(claims)
    }
}

/// An RFC 6749 §5.2 error response.
fn oauth_error(
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

fn form(body: &Bytes) -> Vec<(String, String)> {
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
    let auth = authorization(&headers);
    let (client, _) = match a.registry.authenticate(auth, &form) {
        Ok(c) => c,
        Err(f) => return client_error(&f, auth.is_some()),
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
        Some("authorization_code") => match flow::redeem_code(&a, &spec.id, &form) {
            Ok(g) => g,
            Err(e) => return oauth_error(StatusCode::BAD_REQUEST, e.0, &e.1, false),
        },
        Some("refresh_token") => match flow::refresh(&a, &spec.id, &form) {
            Ok(g) => g,
            Err(e) => return oauth_error(StatusCode::BAD_REQUEST, e.0, &e.1, false),
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
        let rotated = tokio::task::spawn_blocking(move || ring.rotate_keys(false))
            .await
            .unwrap_or_else(|e| Err(AuthzError::Crypto(format!("key rotation failed: {e}"))));
        if let Err(e) = rotated {
            return signing_failed(e);
        }
    }
    let access_token = if spec.opaque_tokens {
        let t = random_id() + &random_id();
        if let Ok(mut m) = a.opaque.lock() {
            m.retain(|_, r| r.exp > now);
            m.insert(
                token_hash(&t),
                Issued {
                    claims: claims.clone(),
                    exp: now + ttl,
                },
            );
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
            ttl,
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
    flow::authorize_post(&a, &p)
}

async fn introspect(State(a): State<Arc<Authz>>, headers: HeaderMap, body: Bytes) -> Response {
    let form = form(&body);
    let auth = authorization(&headers);
    let client = match a.registry.authenticate(auth, &form) {
        // RFC 7662 §2.1: the endpoint MUST require authorization (against
        // token scanning); a public client's bare `client_id` is none.
        Ok((_, AuthMethod::None)) => {
            return client_error(&AuthFailure::Missing, false);
        }
        Ok((c, _)) => c,
        Err(f) => return client_error(&f, auth.is_some()),
    };
    let token = form
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    // RFC 7662 §2.1: access or refresh token, whatever `token_type_hint` says.
    let doc = match a.active_claims(token) {
        Some(Value::Object(mut m)) => {
            m.insert("active".into(), Value::Bool(true));
            m.insert("token_type".into(), json!("Bearer"));
            Value::Object(m)
        }
        _ => flow::refresh_introspection(&a, &client.spec.id, token)
            .unwrap_or_else(|| json!({"active": false})),
    };
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(doc)).into_response()
}

async fn revoke(State(a): State<Arc<Authz>>, headers: HeaderMap, body: Bytes) -> Response {
    let form = form(&body);
    let auth = authorization(&headers);
    let (client, _) = match a.registry.authenticate(auth, &form) {
        Ok(c) => c,
        Err(f) => return client_error(&f, auth.is_some()),
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
    if flow::revoke_refresh(&a, &client.spec.id, token) {
        return StatusCode::OK.into_response();
    }
    if let Some(claims) = a.active_claims(token)
        && claims.get("client_id").and_then(Value::as_str) == Some(client.spec.id.as_str())
    {
        if let Ok(mut m) = a.opaque.lock() {
            m.remove(&token_hash(token));
        }
        if let Some(jti) = claims.get("jti").and_then(Value::as_str)
            && let Ok(mut r) = a.revoked_jti.lock()
        {
            r.insert(jti.to_owned());
        }
    }
    StatusCode::OK.into_response()
}
