//! The authorization code grant with PKCE (RFC 6749 §4.1, RFC 7636, OAuth
//! 2.1), the login page, refresh token rotation with reuse detection
//! (OAuth 2.1 §4.3.1, RFC 9700 §4.14), and ID tokens (OpenID Connect Core
//! §2, §3.1.3.6).
//!
//! - Redirect URIs match exactly; for loopback `http` URIs any port is
//!   accepted (RFC 8252 §7.3). An unregistered URI is never redirected to:
//!   the error is shown on the page.
//! - PKCE is required with S256; `plain` is refused, and so is a
//!   `code_verifier` at the token endpoint for a code issued without a
//!   challenge.
//! - Codes live 60 s (`tokens.code`) and are single use; presenting a used
//!   code revokes the refresh token family it produced.
//! - Refresh tokens rotate: each use returns a new one; presenting an
//!   already used one revokes the whole family, and so does revoking any of
//!   them (RFC 7009).
//! - The authorization response carries `iss` (RFC 9207).
//!
//! Codes and refresh tokens live in the state store ([`crate::store`]),
//! found by the SHA-256 of their value; "used" is set with a
//! compare-and-swap, so two concurrent redemptions of one code or one
//! refresh token cannot both succeed (the loser is treated as a replay).

use crate::server::{Authz, random_id, token_hash};
use crate::store::{GrantKind, GrantRecord, StoreError};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use gatewise_core::jose::b64url_encode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// A development user (`username`, password hashed with argon2 at load).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    /// Login name; also the `sub`.
    pub username: String,
    /// The password, in clear only in configuration.
    pub password: String,
    /// The password's argon2 hash (PHC string) when only that is known
    /// (configuration's `password_hash`); then `password` is empty.
    pub password_hash: Option<String>,
    /// Display name (`name` claim).
    pub name: String,
    /// `email` claim.
    pub email: String,
    /// More claims for the ID token.
    pub claims: serde_json::Map<String, Value>,
}

impl UserSpec {
    /// A user with a password, a name and an email address.
    pub fn new(username: &str, password: &str, name: &str, email: &str) -> UserSpec {
        UserSpec {
            username: username.to_owned(),
            password: password.to_owned(),
            password_hash: None,
            name: name.to_owned(),
            email: email.to_owned(),
            claims: serde_json::Map::new(),
        }
    }
}

/// A user with the password hashed.
#[derive(Debug)]
pub(crate) struct User {
    pub(crate) spec: UserSpec,
    hash: String,
}

/// Hashes the users' passwords (argon2id, default parameters).
pub(crate) fn users(specs: Vec<UserSpec>) -> Result<Vec<User>, crate::AuthzError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let argon = argon2::Argon2::default();
    specs
        .into_iter()
        .map(|mut spec| {
            if let Some(hash) = spec.password_hash.take() {
                argon2::password_hash::PasswordHash::new(&hash).map_err(|e| {
                    crate::AuthzError::Config(format!(
                        "user `{}`: the password hash is not an argon2 PHC string: {e}",
                        spec.username
                    ))
                })?;
                spec.password = String::new();
                return Ok(User { spec, hash });
            }
            let mut salt = [0u8; 16];
            let _ = aws_lc_rs::rand::fill(&mut salt);
            let salt = SaltString::encode_b64(&salt)
                .map_err(|e| crate::AuthzError::Crypto(e.to_string()))?;
            let hash = argon
                .hash_password(spec.password.as_bytes(), &salt)
                .map_err(|e| crate::AuthzError::Crypto(e.to_string()))?
                .to_string();
            spec.password = String::new();
            Ok(User { spec, hash })
        })
        .collect()
}

fn password_ok(hash: &str, password: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// What the store keeps of an authorization code besides its hash,
/// client, family, expiry and use.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CodeData {
    redirect_uri: String,
    scope: String,
    challenge: Option<String>,
    nonce: Option<String>,
    user: String,
    auth_time: u64,
    resource: Option<String>,
}

/// What the store keeps of a refresh token besides its hash, client,
/// family, expiry and use.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RefreshData {
    user: String,
    scope: String,
    resource: Option<String>,
    auth_time: u64,
}

fn decode<T: serde::de::DeserializeOwned>(rec: &GrantRecord) -> Result<T, GrantError> {
    serde_json::from_value(rec.data.clone()).map_err(|e| {
        tracing::error!(kind = rec.kind.name(), "a stored grant is unreadable: {e}");
        GrantError("server_error", "the stored grant is unreadable".into())
    })
}

/// A failure of the state store, as the token endpoint answers it
/// (RFC 6749 §5.2 has no code for it; `server_error` is the authorization
/// endpoint's, used by many servers here too). Logged without secrets.
pub(crate) fn store_failed(e: StoreError) -> GrantError {
    tracing::error!("state store: {e}");
    GrantError(
        "server_error",
        "the authorization server's storage failed; try again".into(),
    )
}

/// RFC 8252 §7.3: loopback redirect URIs match whatever the port.
fn redirect_matches(registered: &str, given: &str) -> bool {
    if registered == given {
        return true;
    }
    let (Ok(r), Ok(g)) = (url::Url::parse(registered), url::Url::parse(given)) else {
        return false;
    };
    let loopback = |u: &url::Url| {
        u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1") | Some("[::1]"))
    };
    loopback(&r)
        && loopback(&g)
        && r.host_str() == g.host_str()
        && r.path() == g.path()
        && r.query() == g.query()
}

pub(crate) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} - gatewise authz</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}}\
         label{{display:block;margin:.6rem 0}}input{{width:100%;padding:.4rem}}button{{padding:.5rem 1rem}}\
         .err{{color:#a00}}code{{background:#eee;padding:0 .2rem}}</style></head><body><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    );
    let mut r = (status, Html(html)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert("x-frame-options", HeaderValue::from_static("DENY"));
    r
}

/// HTML-escapes text.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn redirect_with(uri: &str, params: &[(&str, &str)]) -> Response {
    let Ok(mut u) = url::Url::parse(uri) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Invalid redirect",
            "<p>The redirect URI is not a URL.</p>",
        );
    };
    {
        let mut q = u.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(u.as_str()) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// The parameters of an authorization request, checked.
struct AuthRequest {
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    challenge: String,
    nonce: Option<String>,
    resource: Option<String>,
}

/// Validates an authorization request. `Err` is the response to send: an
/// error page when the client or redirect URI cannot be trusted, else an
/// error redirect (RFC 6749 §4.1.2.1).
fn check_request(a: &Authz, p: &HashMap<String, String>) -> Result<AuthRequest, Box<Response>> {
    let get = |k: &str| p.get(k).map(String::as_str);
    let Some(client) = get("client_id").and_then(|id| a.registry().get(id)) else {
        return Err(Box::new(page(
            StatusCode::BAD_REQUEST,
            "Unknown client",
            "<p>The <code>client_id</code> is missing or not registered.</p>",
        )));
    };
    let Some(redirect_uri) = get("redirect_uri") else {
        return Err(Box::new(page(
            StatusCode::BAD_REQUEST,
            "Missing redirect_uri",
            "<p>This server requires <code>redirect_uri</code> on every authorization request.</p>",
        )));
    };
    if !client
        .spec
        .redirect_uris
        .iter()
        .any(|r| redirect_matches(r, redirect_uri))
    {
        return Err(Box::new(page(
            StatusCode::BAD_REQUEST,
            "Redirect URI not registered",
            &format!(
                "<p><code>{}</code> is not registered for this client, so the error cannot be sent back to it.</p><p>Registered: {}</p>",
                escape(redirect_uri),
                client
                    .spec
                    .redirect_uris
                    .iter()
                    .map(|r| format!("<code>{}</code>", escape(r)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )));
    }
    let state = get("state").map(str::to_owned);
    let issuer = a.issuer().to_owned();
    let fail = |code: &str, desc: &str| {
        let mut params = vec![
            ("error", code),
            ("error_description", desc),
            ("iss", issuer.as_str()),
        ];
        if let Some(s) = &state {
            params.push(("state", s.as_str()));
        }
        Box::new(redirect_with(redirect_uri, &params))
    };
    if get("response_type") != Some("code") {
        return Err(fail(
            "unsupported_response_type",
            "only response_type=code is supported",
        ));
    }
    let Some(challenge) = get("code_challenge") else {
        return Err(fail(
            "invalid_request",
            "PKCE is required: send code_challenge with code_challenge_method=S256",
        ));
    };
    if get("code_challenge_method") != Some("S256") {
        return Err(fail(
            "invalid_request",
            "code_challenge_method must be S256 (plain is refused)",
        ));
    }
    if challenge.len() != 43
        || !challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(fail(
            "invalid_request",
            "code_challenge must be 43 base64url characters (SHA-256 of the verifier)",
        ));
    }
    let scope = get("scope").unwrap_or("").to_owned();
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        let oidc = matches!(s, "openid" | "profile" | "email" | "offline_access");
        if !oidc && !client.spec.scopes.iter().any(|x| x == s) {
            return Err(fail(
                "invalid_scope",
                &format!("scope {s} is not allowed for this client"),
            ));
        }
    }
    let resource = get("resource").map(str::to_owned);
    if let Some(r) = &resource
        && !client.spec.resources.iter().any(|x| x == r)
    {
        return Err(fail(
            "invalid_target",
            "the resource is not allowed for this client",
        ));
    }
    Ok(AuthRequest {
        client_id: client.spec.id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        scope,
        state,
        challenge: challenge.to_owned(),
        nonce: get("nonce").map(str::to_owned),
        resource,
    })
}

fn login_form(
    a: &Authz,
    p: &HashMap<String, String>,
    req: &AuthRequest,
    error: Option<&str>,
) -> Response {
    let hidden: String = p
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "username" | "password"))
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            )
        })
        .collect();
    let scopes = if req.scope.is_empty() {
        "(no scope)".to_owned()
    } else {
        escape(&req.scope)
    };
    let users: Vec<String> = a
        .users()
        .iter()
        .map(|u| format!("<code>{}</code>", escape(&u.spec.username)))
        .collect();
    let err = error
        .map(|e| format!("<p class=\"err\">{}</p>", escape(e)))
        .unwrap_or_default();
    page(
        if error.is_some() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        },
        "Sign in",
        &format!(
            "<p><strong>{client}</strong> asks for: {scopes}</p>{err}\
             <form method=\"post\" action=\"/authorize\">{hidden}\
             <label>User <input name=\"username\" autocomplete=\"username\" required></label>\
             <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
             <button type=\"submit\">Sign in and allow</button></form>\
             <p><small>Development users: {users}</small></p>",
            client = escape(&req.client_id),
            users = users.join(", ")
        ),
    )
}

/// `GET /authorize`: checks the request and shows the login and consent page.
pub(crate) fn authorize_get(a: &Authz, p: &HashMap<String, String>) -> Response {
    match check_request(a, p) {
        Ok(req) => login_form(a, p, &req, None),
        Err(r) => *r,
    }
}

/// `POST /authorize`: checks the credentials and redirects with a code.
pub(crate) async fn authorize_post(a: &Arc<Authz>, p: &HashMap<String, String>) -> Response {
    let req = match check_request(a, p) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let username = p.get("username").map(String::as_str).unwrap_or("");
    let password = p.get("password").cloned().unwrap_or_default();
    let user = a.users().iter().find(|u| u.spec.username == username);
    // argon2 takes tens of milliseconds: off the async threads.
    let hash = user.map(|u| u.hash.clone());
    let ok = match hash {
        Some(h) => tokio::task::spawn_blocking(move || password_ok(&h, &password))
            .await
            .unwrap_or(false),
        None => false,
    };
    let Some(user) = user.filter(|_| ok) else {
        return login_form(a, p, &req, Some("Unknown user or wrong password."));
    };
    let now = a.now();
    let code = random_id() + &random_id();
    let data = CodeData {
        redirect_uri: req.redirect_uri.clone(),
        scope: req.scope,
        challenge: Some(req.challenge),
        nonce: req.nonce,
        user: user.spec.username.clone(),
        auth_time: now,
        resource: req.resource,
    };
    let stored = a
        .store()
        .put_grant(GrantRecord {
            kind: GrantKind::Code,
            hash: token_hash(&code),
            client_id: req.client_id,
            family: None,
            exp: now + a.config().code_ttl,
            used: false,
            data: serde_json::to_value(&data).unwrap_or_default(),
        })
        .await;
    if let Err(e) = stored {
        tracing::error!("state store: {e}");
        return page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Storage failed",
            "<p>The authorization server could not store the code. Try again.</p>",
        );
    }
    let mut params = vec![("code", code.as_str()), ("iss", a.issuer())];
    if let Some(s) = &req.state {
        params.push(("state", s.as_str()));
    }
    redirect_with(&req.redirect_uri, &params)
}

/// The user with this login, if the password is right (argon2, off the
/// async threads).
pub(crate) async fn sign_in<'a>(a: &'a Authz, username: &str, password: &str) -> Option<&'a User> {
    let user = a.users().iter().find(|u| u.spec.username == username);
    let hash = user.map(|u| u.hash.clone());
    let password = password.to_owned();
    let ok = match hash {
        Some(h) => tokio::task::spawn_blocking(move || password_ok(&h, &password))
            .await
            .unwrap_or(false),
        None => false,
    };
    user.filter(|_| ok)
}

/// A new refresh token (a family of its own) for `user`.
pub(crate) async fn new_refresh(
    a: &Authz,
    client_id: &str,
    user: &str,
    scope: &str,
    resource: Option<String>,
    auth_time: u64,
) -> Result<String, GrantError> {
    let t = random_id() + &random_id();
    let data = RefreshData {
        user: user.to_owned(),
        scope: scope.to_owned(),
        resource,
        auth_time,
    };
    a.store()
        .put_grant(GrantRecord {
            kind: GrantKind::Refresh,
            hash: token_hash(&t),
            client_id: client_id.to_owned(),
            family: Some(random_id()),
            exp: a.now() + a.config().refresh_token_ttl,
            used: false,
            data: serde_json::to_value(&data).unwrap_or_default(),
        })
        .await
        .map_err(store_failed)?;
    Ok(t)
}

/// An error of the token endpoint (RFC 6749 §5.2).
pub(crate) struct GrantError(pub(crate) &'static str, pub(crate) String);

/// What a successful grant returns, before it is written as JSON.
pub(crate) struct Grant {
    pub(crate) user: Option<String>,
    pub(crate) scope: String,
    pub(crate) resource: Option<String>,
    pub(crate) refresh: Option<String>,
    pub(crate) id_token_for: Option<(u64, Option<String>)>,
}

fn s256(verifier: &str) -> String {
    b64url_encode(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()).as_ref(),
    )
}

/// `grant_type=authorization_code`.
pub(crate) async fn redeem_code(
    a: &Authz,
    client_id: &str,
    form: &[(String, String)],
) -> Result<Grant, GrantError> {
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let code =
        get("code").ok_or_else(|| GrantError("invalid_request", "code is missing".into()))?;
    let now = a.now();
    let store = a.store();
    let key = token_hash(code);
    let Some(rec) = store
        .grant(GrantKind::Code, key)
        .await
        .map_err(store_failed)?
    else {
        return Err(GrantError(
            "invalid_grant",
            "the code is unknown or expired".into(),
        ));
    };
    let reused = async || {
        // RFC 6749 §4.1.2: revoke what the code produced.
        if let Some(f) = &rec.family {
            store
                .revoke_family(f.clone(), now + a.config().refresh_token_ttl)
                .await
                .map_err(store_failed)?;
        }
        Err(GrantError(
            "invalid_grant",
            "the code was already used; the tokens it produced are revoked".into(),
        ))
    };
    if rec.used {
        return reused().await;
    }
    if rec.exp <= now {
        return Err(GrantError(
            "invalid_grant",
            format!(
                "the code has expired (codes live {} s)",
                a.config().code_ttl
            ),
        ));
    }
    if rec.client_id != client_id {
        return Err(GrantError(
            "invalid_grant",
            "the code was issued to another client".into(),
        ));
    }
    let data: CodeData = decode(&rec)?;
    if get("redirect_uri") != Some(data.redirect_uri.as_str()) {
        return Err(GrantError(
            "invalid_grant",
            "redirect_uri differs from the authorization request (RFC 6749 §4.1.3)".into(),
        ));
    }
    match (&data.challenge, get("code_verifier")) {
        (Some(ch), Some(v)) => {
            let valid = (43..=128).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if !valid || s256(v) != *ch {
                return Err(GrantError(
                    "invalid_grant",
                    "code_verifier does not match the code_challenge (RFC 7636 §4.6)".into(),
                ));
            }
        }
        (Some(_), None) => {
            return Err(GrantError(
                "invalid_grant",
                "code_verifier is missing".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(GrantError(
                "invalid_grant",
                "a code_verifier was sent for a code issued without a challenge".into(),
            ));
        }
        (None, None) => {}
    }
    if !store
        .mark_used(GrantKind::Code, key)
        .await
        .map_err(store_failed)?
    {
        // Another request redeemed it a moment ago.
        return reused().await;
    }
    // A refresh token with every code (a development server favours clients
    // being able to test refresh; OIDC's offline_access is not required).
    let family = random_id();
    let t = random_id() + &random_id();
    let refresh = RefreshData {
        user: data.user.clone(),
        scope: data.scope.clone(),
        resource: data.resource.clone(),
        auth_time: data.auth_time,
    };
    store
        .put_grant(GrantRecord {
            kind: GrantKind::Refresh,
            hash: token_hash(&t),
            client_id: rec.client_id.clone(),
            family: Some(family.clone()),
            exp: now + a.config().refresh_token_ttl,
            used: false,
            data: serde_json::to_value(&refresh).unwrap_or_default(),
        })
        .await
        .map_err(store_failed)?;
    store
        .set_family(GrantKind::Code, key, family)
        .await
        .map_err(store_failed)?;
    let openid = data.scope.split(' ').any(|s| s == "openid");
    Ok(Grant {
        user: Some(data.user),
        scope: data.scope,
        resource: data.resource,
        refresh: Some(t),
        id_token_for: openid.then_some((data.auth_time, data.nonce)),
    })
}

/// `grant_type=refresh_token`: rotation with reuse detection.
pub(crate) async fn refresh(
    a: &Authz,
    client_id: &str,
    form: &[(String, String)],
) -> Result<Grant, GrantError> {
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let token = get("refresh_token")
        .ok_or_else(|| GrantError("invalid_request", "refresh_token is missing".into()))?;
    let now = a.now();
    let store = a.store();
    let key = token_hash(token);
    let Some(rec) = store
        .grant(GrantKind::Refresh, key)
        .await
        .map_err(store_failed)?
    else {
        return Err(GrantError(
            "invalid_grant",
            "the refresh token is unknown".into(),
        ));
    };
    if rec.client_id != client_id {
        return Err(GrantError(
            "invalid_grant",
            "the refresh token was issued to another client".into(),
        ));
    }
    let family = rec.family.clone().unwrap_or_default();
    if store
        .family_revoked(family.clone())
        .await
        .map_err(store_failed)?
    {
        return Err(GrantError(
            "invalid_grant",
            "the refresh token was revoked".into(),
        ));
    }
    let reused = async || {
        // A rotated token came back: someone holds a copy. Revoke them all
        // (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2).
        store
            .revoke_family(family.clone(), now + a.config().refresh_token_ttl)
            .await
            .map_err(store_failed)?;
        Err(GrantError(
            "invalid_grant",
            "the refresh token was already used; its whole family is revoked (reuse detection)"
                .into(),
        ))
    };
    if rec.used {
        return reused().await;
    }
    if rec.exp <= now {
        return Err(GrantError(
            "invalid_grant",
            "the refresh token has expired".into(),
        ));
    }
    let data: RefreshData = decode(&rec)?;
    let scope = match get("scope") {
        Some(s) if s.split(' ').all(|x| data.scope.split(' ').any(|y| y == x)) => s.to_owned(),
        Some(_) => {
            return Err(GrantError(
                "invalid_scope",
                "a refresh may narrow the scope, not widen it".into(),
            ));
        }
        None => data.scope.clone(),
    };
    if !store
        .mark_used(GrantKind::Refresh, key)
        .await
        .map_err(store_failed)?
    {
        return reused().await;
    }
    let t = random_id() + &random_id();
    store
        .put_grant(GrantRecord {
            kind: GrantKind::Refresh,
            hash: token_hash(&t),
            client_id: rec.client_id.clone(),
            family: rec.family.clone(),
            exp: now + a.config().refresh_token_ttl,
            used: false,
            data: rec.data.clone(),
        })
        .await
        .map_err(store_failed)?;
    let openid = scope.split(' ').any(|s| s == "openid");
    Ok(Grant {
        user: Some(data.user),
        scope,
        resource: data.resource,
        refresh: Some(t),
        // OIDC Core §12.2: a refreshed ID token keeps the original auth_time.
        id_token_for: openid.then_some((data.auth_time, None)),
    })
}

/// Revokes a refresh token issued to `client_id` (RFC 7009 §2: servers MUST
/// support revoking refresh tokens), with every token rotated from the same
/// grant: the whole family, as RFC 7009 §2.1 allows ("MAY revoke the
/// respective access grant"). Returns whether `token` was such a refresh
/// token; one issued to another client is left alone (RFC 7009 §2.1: the
/// server verifies the token was issued to the client asking).
pub(crate) async fn revoke_refresh(
    a: &Authz,
    client_id: &str,
    token: &str,
) -> Result<bool, StoreError> {
    let store = a.store();
    let family = match store.grant(GrantKind::Refresh, token_hash(token)).await? {
        Some(rec) if rec.client_id == client_id => rec.family.unwrap_or_default(),
        _ => return Ok(false),
    };
    store
        .revoke_family(family, a.now() + a.config().refresh_token_ttl)
        .await?;
    Ok(true)
}

/// The introspection answer for a refresh token issued to `client_id`
/// (RFC 7662 §2.1: the `token` may be a refresh token; §2.2: it is active
/// while it can be used), or `None` when `token` is no such refresh token.
/// A rotated, revoked or expired one is inactive. Only the client it was
/// issued to learns about it (RFC 7662 §4 lets the server restrict this).
pub(crate) async fn refresh_introspection(
    a: &Authz,
    client_id: &str,
    token: &str,
) -> Result<Option<Value>, StoreError> {
    let now = a.now();
    let store = a.store();
    let Some(rec) = store
        .grant(GrantKind::Refresh, token_hash(token))
        .await?
        .filter(|r| r.client_id == client_id)
    else {
        return Ok(None);
    };
    let data: Option<RefreshData> = serde_json::from_value(rec.data.clone()).ok();
    let revoked = store
        .family_revoked(rec.family.clone().unwrap_or_default())
        .await?;
    let active = !rec.used && rec.exp > now && !revoked;
    Ok(Some(match (active, data) {
        (true, Some(d)) => json!({
            "active": true, "iss": a.issuer(), "client_id": rec.client_id, "sub": d.user,
            "scope": d.scope, "exp": rec.exp,
        }),
        _ => json!({"active": false}),
    }))
}

/// The claims of an ID token (OpenID Connect Core §2, §3.1.3.6).
pub(crate) fn id_token_claims(
    a: &Authz,
    client_id: &str,
    user: &str,
    auth_time: u64,
    nonce: Option<&str>,
    access_token: &str,
    ttl: u64,
) -> Value {
    let now = a.now();
    // at_hash: left half of SHA-256 of the access token (OIDC Core §3.1.3.6).
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access_token.as_bytes());
    let at_hash = b64url_encode(d.as_ref().get(..16).unwrap_or_default());
    let person = a.users().iter().find(|u| u.spec.username == user);
    let mut c = json!({
        "iss": a.issuer(), "sub": user, "aud": client_id, "azp": client_id,
        "iat": now, "exp": now + ttl, "auth_time": auth_time, "at_hash": at_hash,
    });
    if let (Some(n), Some(m)) = (nonce, c.as_object_mut()) {
        m.insert("nonce".into(), json!(n));
    }
    if let (Some(p), Some(m)) = (person, c.as_object_mut()) {
        for (k, v) in &p.spec.claims {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
        if !p.spec.name.is_empty() {
            m.insert("name".into(), json!(p.spec.name));
        }
        if !p.spec.email.is_empty() {
            m.insert("email".into(), json!(p.spec.email));
        }
    }
    c
}
