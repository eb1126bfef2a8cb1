//! The HTTP endpoints and the OAuth error responses (RFC 6749 §5.2).

use crate::AuthzError;
use crate::clients::{AuthFailure, ClientSpec, Registry};
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
}

impl AuthzConfig {
    /// A development configuration: a confidential machine client `demo-client`
    /// with a fresh secret, scopes `orders.read orders.write`, and the
    /// resource `https://api.example.test`.
    pub fn dev(issuer: &str) -> AuthzConfig {
        AuthzConfig {
            issuer: issuer.trim_end_matches('/').to_owned(),
            clients: vec![
                ClientSpec {
                    id: "demo-client".into(),
                    secret: crate::clients::generate_secret(),
                    scopes: vec!["orders.read".into(), "orders.write".into()],
                    resources: vec![
                        "https://api.example.test".into(),
                        "https://other.example.test".into(),
                    ],
                    opaque_tokens: false,
                },
                ClientSpec {
                    id: "demo-opaque".into(),
                    secret: crate::clients::generate_secret(),
                    scopes: vec!["orders.read".into()],
                    resources: vec!["https://api.example.test".into()],
                    opaque_tokens: true,
                },
            ],
            access_token_ttl: 3600,
            alg: Alg::RS256,
        }
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
    keys: KeyRing,
    clock: Arc<dyn Clock>,
    opaque: Mutex<HashMap<[u8; 32], Issued>>,
    revoked_jti: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Authz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authz")
            .field("issuer", &self.config.issuer)
            .finish_non_exhaustive()
    }
}

fn hash(token: &str) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn random_id() -> String {
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
        Ok(Authz {
            keys: KeyRing::new(config.alg)?,
            registry: Registry::new(config.clients.clone()),
            config,
            clock,
            opaque: Mutex::new(HashMap::new()),
            revoked_jti: Mutex::new(HashSet::new()),
        })
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// The key ring (for rotation).
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// The axum router with every endpoint.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/.well-known/oauth-authorization-server", get(metadata))
            .route("/.well-known/openid-configuration", get(metadata))
            .route("/jwks.json", get(jwks))
            .route("/token", post(token))
            .route("/introspect", post(introspect))
            .route("/revoke", post(revoke))
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

    fn metadata_doc(&self) -> Value {
        let i = &self.config.issuer;
        json!({
            "issuer": i,
            "token_endpoint": format!("{i}/token"),
            "jwks_uri": format!("{i}/jwks.json"),
            "introspection_endpoint": format!("{i}/introspect"),
            "revocation_endpoint": format!("{i}/revoke"),
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": self.scopes(),
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
        s.sort();
        s.dedup();
        s
    }

    /// The claims of an active token, or `None` (unknown, expired, revoked, forged).
    fn active_claims(&self, token: &str) -> Option<Value> {
        let now = self.clock.unix_now();
        if let Ok(opaque) = self.opaque.lock()
            && let Some(rec) = opaque.get(&hash(token))
        {
            return (rec.exp > now).then(|| rec.claims.clone());
        }
        let policy = Policy {
            issuer: Some(self.config.issuer.clone()),
            leeway: 0,
            ..Policy::new(vec![Alg::RS256, Alg::ES256, Alg::EdDSA])
        };
        let parsed = check::parse(token, &policy).ok()?;
        let key = self.keys.find(parsed.header.kid.as_deref()?)?;
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

async fn metadata(State(a): State<Arc<Authz>>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        axum::Json(a.metadata_doc()),
    )
        .into_response()
}

async fn jwks(State(a): State<Arc<Authz>>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        axum::Json(a.keys.jwks()),
    )
        .into_response()
}

async fn token(State(a): State<Arc<Authz>>, headers: HeaderMap, body: Bytes) -> Response {
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
    match get("grant_type") {
        Some("client_credentials") => {}
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
    }
    let spec = &client.spec;
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
    let resources: Vec<&str> = form
        .iter()
        .filter(|(k, _)| k == "resource")
        .map(|(_, v)| v.as_str())
        .collect();
    let audience = match resources.as_slice() {
        [] => match spec.resources.first() {
            Some(r) => r.clone(),
            None => a.config.issuer.clone(),
        },
        [one] if spec.resources.iter().any(|r| r == one) => (*one).to_owned(),
        [one] => {
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
    let scope = scopes.join(" ");
    let claims = json!({
        "iss": a.config.issuer, "sub": spec.id, "aud": audience, "client_id": spec.id,
        "iat": now, "exp": now + ttl, "jti": random_id(), "scope": scope,
    });
    let access_token = if spec.opaque_tokens {
        let t = random_id() + &random_id();
        if let Ok(mut m) = a.opaque.lock() {
            m.retain(|_, r| r.exp > now);
            m.insert(
                hash(&t),
                Issued {
                    claims: claims.clone(),
                    exp: now + ttl,
                },
            );
        }
        t
    } else {
        match a.keys.active().sign("at+jwt", &claims) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!("signing failed: {e}");
                return oauth_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "the token could not be signed",
                    false,
                );
            }
        }
    };
    (
        [(header::CACHE_CONTROL, "no-store"), (header::PRAGMA, "no-cache")],
        axum::Json(json!({"access_token": access_token, "token_type": "Bearer", "expires_in": ttl, "scope": scope})),
    )
        .into_response()
}

async fn introspect(State(a): State<Arc<Authz>>, headers: HeaderMap, body: Bytes) -> Response {
    let form = form(&body);
    let auth = authorization(&headers);
    if let Err(f) = a.registry.authenticate(auth, &form) {
        return client_error(&f, auth.is_some());
    }
    let token = form
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let doc = match a.active_claims(token) {
        Some(Value::Object(mut m)) => {
            m.insert("active".into(), Value::Bool(true));
            m.insert("token_type".into(), json!("Bearer"));
            Value::Object(m)
        }
        _ => json!({"active": false}),
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
    // client the token was issued to may revoke it.
    if let Some(claims) = a.active_claims(token)
        && claims.get("client_id").and_then(Value::as_str) == Some(client.spec.id.as_str())
    {
        if let Ok(mut m) = a.opaque.lock() {
            m.remove(&hash(token));
        }
        if let Some(jti) = claims.get("jti").and_then(Value::as_str)
            && let Ok(mut r) = a.revoked_jti.lock()
        {
            r.insert(jti.to_owned());
        }
    }
    StatusCode::OK.into_response()
}
