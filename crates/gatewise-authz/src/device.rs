//! The device authorization grant (RFC 8628): a device without a browser
//! (a TV, a CLI on a remote host) asks for a device code and a user code
//! (`POST /device_authorization`, §3.1), shows the user code and the
//! verification URI, and polls the token endpoint (§3.4) while the user
//! signs in on another device at `GET /device` (§3.3: a server-rendered
//! form, no JavaScript) and approves or denies.
//!
//! - User codes are 8 characters from 20 consonants (RFC 8628 §6.1: no
//!   vowels, so no words; no digits, so no 0/O or 1/I confusion), shown as
//!   `BCDF-GHJK`; entry is case-insensitive and ignores punctuation. That
//!   is 20^8 ≈ 2^34.6 codes, and a guess needs a user's password as well
//!   (§5.1: brute force).
//! - Device codes are single-use and, like user codes, stored only as their
//!   SHA-256 ([`crate::store::DeviceRecord`]).
//! - Polls answer `authorization_pending` until the user decides,
//!   `slow_down` (and 5 s more `interval` from then on, §3.5) when a client
//!   polls before its interval has passed by the server's [`Clock`]
//!   (`gatewise_core::clock::Clock`), `access_denied`, `expired_token`, then
//!   the tokens (an ID token when `openid` was granted, a refresh token when
//!   the client may refresh) once.

use crate::clients::ClientSpec;
use crate::flow::{self, Grant, GrantError, escape, page, store_failed};
use crate::server::{Authz, form, oauth_error, random_id, storage_error, token_hash};
use crate::store::{DeviceRecord, DeviceStatus};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// The grant type of the token request (RFC 8628 §3.4).
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The user code alphabet: the 20 consonants of RFC 8628 §6.1's example.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// Characters in a user code (shown as two groups of four).
pub const USER_CODE_LEN: usize = 8;

/// What `slow_down` adds to the interval (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP: u64 = 5;

/// What the store keeps of a device authorization besides its hashes,
/// client, expiry, interval and status.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct DeviceData {
    scope: String,
    resource: Option<String>,
    user: Option<String>,
    auth_time: Option<u64>,
}

/// A fresh user code, 8 characters of [`USER_CODE_ALPHABET`] without bias
/// (bytes of 240 and above are drawn again).
pub fn user_code() -> String {
    let mut out = String::with_capacity(USER_CODE_LEN);
    while out.len() < USER_CODE_LEN {
        let mut buf = [0u8; 16];
        let _ = aws_lc_rs::rand::fill(&mut buf);
        for b in buf {
            if out.len() == USER_CODE_LEN {
                break;
            }
            if b < 240
                && let Some(c) = USER_CODE_ALPHABET.get(usize::from(b % 20))
            {
                out.push(char::from(*c));
            }
        }
    }
    out
}

/// A user code as shown: `BCDF-GHJK`.
pub fn display(code: &str) -> String {
    let (a, b) = code.split_at(code.len().min(4));
    if b.is_empty() {
        a.to_owned()
    } else {
        format!("{a}-{b}")
    }
}

/// A user code as typed, normalised (RFC 8628 §6.1): upper case, without
/// separators or spaces.
pub fn normalise(input: &str) -> String {
    input
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .take(64)
        .collect()
}

fn user_code_hash(input: &str) -> [u8; 32] {
    token_hash(&normalise(input))
}

/// `POST /device_authorization` (RFC 8628 §3.1, §3.2): the client
/// authenticates as at the token endpoint; the answer has `device_code`,
/// `user_code`, `verification_uri`, `verification_uri_complete`,
/// `expires_in` and `interval`.
pub(crate) async fn authorization(a: &Arc<Authz>, headers: &HeaderMap, body: &Bytes) -> Response {
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
            "the device authorization request must be application/x-www-form-urlencoded (RFC 8628 §3.1)",
            false,
        );
    }
    let form = form(body);
    let (client, _) = match a
        .authenticate(headers, &form, "/device_authorization")
        .await
    {
        Ok(c) => c,
        Err(r) => return r,
    };
    let spec = &client.spec;
    if !spec.allows(GRANT_TYPE) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            &format!("this client may not use grant_type {GRANT_TYPE} (see its grant_types)"),
            false,
        );
    }
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let scope = match get("scope") {
        Some(s) => {
            for x in s.split(' ').filter(|x| !x.is_empty()) {
                let oidc = matches!(x, "openid" | "profile" | "email" | "offline_access");
                if !oidc && !spec.scopes.iter().any(|y| y == x) {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_scope",
                        &format!("scope `{x}` is not allowed for this client"),
                        false,
                    );
                }
            }
            s.split(' ')
                .filter(|x| !x.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        }
        None => spec.scopes.join(" "),
    };
    let resource = get("resource").map(str::to_owned);
    if let Some(r) = &resource
        && !spec.resources.iter().any(|x| x == r)
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_target",
            &format!("resource `{r}` is not allowed for this client (RFC 8707)"),
            false,
        );
    }
    let now = a.now();
    let ttl = a.config().device_code_ttl;
    let interval = a.config().device_interval;
    let device_code = random_id() + &random_id();
    let code = user_code();
    let data = DeviceData {
        scope,
        resource,
        user: None,
        auth_time: None,
    };
    let stored = a
        .store()
        .put_device(DeviceRecord {
            hash: token_hash(&device_code),
            user_code: user_code_hash(&code),
            client_id: spec.id.clone(),
            exp: now + ttl,
            interval,
            last_poll: None,
            status: DeviceStatus::Pending,
            data: serde_json::to_value(&data).unwrap_or_default(),
        })
        .await;
    if let Err(e) = stored {
        return storage_error(e);
    }
    let shown = display(&code);
    let verification_uri = format!("{}/device", a.issuer());
    let complete = format!(
        "{verification_uri}?user_code={}",
        url::form_urlencoded::byte_serialize(shown.as_bytes()).collect::<String>()
    );
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        axum::Json(json!({
            "device_code": device_code,
            "user_code": shown,
            "verification_uri": verification_uri,
            "verification_uri_complete": complete,
            "expires_in": ttl,
            "interval": interval,
        })),
    )
        .into_response()
}

/// `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628
/// §3.4, §3.5).
pub(crate) async fn redeem(
    a: &Authz,
    spec: &ClientSpec,
    form: &[(String, String)],
) -> Result<Grant, GrantError> {
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let code = get("device_code")
        .ok_or_else(|| GrantError("invalid_request", "device_code is missing".into()))?;
    let now = a.now();
    let store = a.store();
    let hash = token_hash(code);
    let Some(rec) = store.device(hash).await.map_err(store_failed)? else {
        return Err(GrantError(
            "invalid_grant",
            "the device_code is unknown".into(),
        ));
    };
    if rec.client_id != spec.id {
        return Err(GrantError(
            "invalid_grant",
            "the device_code was issued to another client".into(),
        ));
    }
    if rec.status == DeviceStatus::Redeemed {
        return Err(GrantError(
            "invalid_grant",
            "the device_code was redeemed already; it is single-use".into(),
        ));
    }
    if rec.exp <= now {
        return Err(GrantError(
            "expired_token",
            "the device_code has expired: start again with a new device authorization request (RFC 8628 §3.5)"
                .into(),
        ));
    }
    match rec.status {
        DeviceStatus::Denied => Err(GrantError(
            "access_denied",
            "the user denied the authorization request (RFC 8628 §3.5)".into(),
        )),
        DeviceStatus::Pending => {
            // RFC 8628 §3.5: a client polling before its interval has passed
            // gets slow_down, and 5 s more interval from then on.
            let too_fast = rec
                .last_poll
                .is_some_and(|p| now < p.saturating_add(rec.interval));
            let interval = if too_fast {
                rec.interval + SLOW_DOWN_STEP
            } else {
                rec.interval
            };
            store
                .device_polled(hash, now, interval)
                .await
                .map_err(store_failed)?;
            if too_fast {
                Err(GrantError(
                    "slow_down",
                    format!(
                        "polling too fast: wait {interval} s between requests from now on (RFC 8628 §3.5)"
                    ),
                ))
            } else {
                Err(GrantError(
                    "authorization_pending",
                    "the user has not approved the request yet; keep polling (RFC 8628 §3.5)"
                        .into(),
                ))
            }
        }
        DeviceStatus::Approved | DeviceStatus::Redeemed => {
            let data: DeviceData = serde_json::from_value(rec.data.clone()).map_err(|e| {
                tracing::error!("a stored device authorization is unreadable: {e}");
                GrantError(
                    "server_error",
                    "the stored device authorization is unreadable".into(),
                )
            })?;
            let (Some(user), Some(auth_time)) = (data.user, data.auth_time) else {
                return Err(GrantError(
                    "server_error",
                    "the approved device authorization has no user".into(),
                ));
            };
            if !store.redeem_device(hash).await.map_err(store_failed)? {
                // Another poll took the tokens a moment ago.
                return Err(GrantError(
                    "invalid_grant",
                    "the device_code was redeemed already; it is single-use".into(),
                ));
            }
            let refresh = if spec.allows("refresh_token") {
                Some(
                    flow::new_refresh(
                        a,
                        &spec.id,
                        &user,
                        &data.scope,
                        data.resource.clone(),
                        auth_time,
                    )
                    .await?,
                )
            } else {
                None
            };
            let openid = data.scope.split(' ').any(|s| s == "openid");
            Ok(Grant {
                user: Some(user),
                scope: data.scope,
                resource: data.resource,
                refresh,
                id_token_for: openid.then_some((auth_time, None)),
            })
        }
    }
}

/// The verification form, `code` filled in, with an error or what the
/// pending request asks for.
fn form_page(a: &Authz, code: &str, status: StatusCode, note: &str) -> Response {
    let users: Vec<String> = a
        .users()
        .iter()
        .map(|u| format!("<code>{}</code>", escape(&u.spec.username)))
        .collect();
    page(
        status,
        "Connect a device",
        &format!(
            "<p>Enter the code your device shows, sign in, and allow or deny its request.</p>{note}\
             <form method=\"post\" action=\"/device\">\
             <label>Code <input name=\"user_code\" value=\"{code}\" autocomplete=\"off\" autocapitalize=\"characters\" required></label>\
             <label>User <input name=\"username\" autocomplete=\"username\" required></label>\
             <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
             <button type=\"submit\" name=\"decision\" value=\"approve\">Allow</button> \
             <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>\
             <p><small>Development users: {users}</small></p>",
            code = escape(code),
            users = users.join(", ")
        ),
    )
}

/// The pending, unexpired authorization with this user code.
async fn pending(a: &Authz, code: &str) -> Result<Option<DeviceRecord>, Response> {
    match a.store().device_by_user_code(user_code_hash(code)).await {
        Ok(r) => Ok(r.filter(|r| r.status == DeviceStatus::Pending && r.exp > a.now())),
        Err(e) => {
            tracing::error!("state store: {e}");
            Err(page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Storage failed",
                "<p>The authorization server could not read the request. Try again.</p>",
            ))
        }
    }
}

fn request_note(rec: &DeviceRecord) -> String {
    let data: DeviceData = serde_json::from_value(rec.data.clone()).unwrap_or_default();
    let scope = if data.scope.is_empty() {
        "(no scope)".to_owned()
    } else {
        escape(&data.scope)
    };
    format!(
        "<p><strong>{}</strong> asks for: {scope}</p>",
        escape(&rec.client_id)
    )
}

const UNKNOWN_CODE: &str = "<p class=\"err\">This code is unknown, expired or used already. Check the code on your device, or start again there.</p>";

/// `GET /device` (RFC 8628 §3.3), with `user_code` filled in from
/// `verification_uri_complete` (§3.3.1).
pub(crate) async fn page_get(a: &Authz, p: &HashMap<String, String>) -> Response {
    let code = p.get("user_code").map(String::as_str).unwrap_or("");
    if code.is_empty() {
        return form_page(a, "", StatusCode::OK, "");
    }
    match pending(a, code).await {
        Ok(Some(rec)) => form_page(a, code, StatusCode::OK, &request_note(&rec)),
        Ok(None) => form_page(a, code, StatusCode::BAD_REQUEST, UNKNOWN_CODE),
        Err(r) => r,
    }
}

/// `POST /device`: the user's login and decision.
pub(crate) async fn page_post(a: &Authz, p: &HashMap<String, String>) -> Response {
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    let code = get("user_code");
    let rec = match pending(a, code).await {
        Ok(Some(r)) => r,
        Ok(None) => return form_page(a, code, StatusCode::BAD_REQUEST, UNKNOWN_CODE),
        Err(r) => return r,
    };
    let Some(user) = flow::sign_in(a, get("username"), get("password")).await else {
        return form_page(
            a,
            code,
            StatusCode::UNAUTHORIZED,
            &format!(
                "{}<p class=\"err\">Unknown user or wrong password.</p>",
                request_note(&rec)
            ),
        );
    };
    let approve = match get("decision") {
        "approve" => true,
        "deny" => false,
        _ => {
            return form_page(
                a,
                code,
                StatusCode::BAD_REQUEST,
                "<p class=\"err\">Choose Allow or Deny.</p>",
            );
        }
    };
    let now = a.now();
    let mut data: DeviceData = serde_json::from_value(rec.data.clone()).unwrap_or_default();
    let status = if approve {
        data.user = Some(user.spec.username.clone());
        data.auth_time = Some(now);
        DeviceStatus::Approved
    } else {
        DeviceStatus::Denied
    };
    let decided = a
        .store()
        .decide_device(
            user_code_hash(code),
            status,
            serde_json::to_value(&data).unwrap_or_default(),
            now,
        )
        .await;
    match decided {
        Ok(true) if approve => page(
            StatusCode::OK,
            "Device connected",
            &format!(
                "<p>You allowed <strong>{}</strong>. Return to your device: it continues by itself.</p>",
                escape(&rec.client_id)
            ),
        ),
        Ok(true) => page(
            StatusCode::OK,
            "Request denied",
            "<p>The device's request was denied. You can close this page.</p>",
        ),
        Ok(false) => form_page(a, code, StatusCode::BAD_REQUEST, UNKNOWN_CODE),
        Err(e) => {
            tracing::error!("state store: {e}");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Storage failed",
                "<p>The authorization server could not record the decision. Try again.</p>",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_eight_consonants_shown_in_two_groups() {
        let c = user_code();
        assert_eq!(c.len(), USER_CODE_LEN);
        assert!(c.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)), "{c}");
        let shown = display(&c);
        assert_eq!(shown.len(), 9);
        assert_eq!(shown.as_bytes()[4], b'-');
        assert_ne!(user_code(), user_code());
    }

    #[test]
    fn typed_codes_are_normalised() {
        assert_eq!(normalise("bcdf-ghjk"), "BCDFGHJK");
        assert_eq!(normalise(" BCDF ghjk "), "BCDFGHJK");
        assert_eq!(user_code_hash("bcdf ghjk"), user_code_hash("BCDF-GHJK"));
    }
}
