//! `authz.toml` as written: every table with `deny_unknown_fields`, every
//! value optional (missing keys are reported by the compile step with
//! their position, so one missing key does not hide the next mistake).

use serde::Deserialize;
use std::collections::BTreeMap;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSettings {
    pub(crate) issuer: Option<String>,
    pub(crate) listen: Option<String>,
    pub(crate) storage: Option<String>,
    pub(crate) scopes: Option<Vec<String>>,
    pub(crate) resources: Option<Vec<String>>,
    pub(crate) tokens: Option<RawTokens>,
    pub(crate) keys: Option<RawKeys>,
    pub(crate) clients: Option<Vec<RawClient>>,
    pub(crate) users: Option<Vec<RawUser>>,
}

/// `[tokens]`: lifetimes, as durations (`"1h"`, `"30d"`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTokens {
    pub(crate) access: Option<String>,
    pub(crate) refresh: Option<String>,
    pub(crate) code: Option<String>,
    pub(crate) id_token: Option<String>,
    pub(crate) device_code: Option<String>,
    pub(crate) device_interval: Option<String>,
}

/// `[keys]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKeys {
    pub(crate) algorithm: Option<String>,
    pub(crate) rotation_interval: Option<String>,
    pub(crate) encryption_key_env: Option<String>,
    pub(crate) encryption_key_file: Option<String>,
}

/// `[[clients]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClient {
    pub(crate) id: Option<String>,
    pub(crate) name: Option<String>,
    /// Refused with a message of its own: secrets are never written in
    /// the file.
    pub(crate) secret: Option<toml::Value>,
    pub(crate) secret_env: Option<String>,
    pub(crate) secret_file: Option<String>,
    pub(crate) secret_sha256: Option<String>,
    /// The client's JWK Set for `private_key_jwt`: a table or JSON text.
    pub(crate) jwks: Option<toml::Value>,
    pub(crate) jwks_file: Option<String>,
    pub(crate) public: Option<bool>,
    pub(crate) redirect_uris: Option<Vec<String>>,
    pub(crate) grant_types: Option<Vec<String>>,
    pub(crate) scopes: Option<Vec<String>>,
    pub(crate) resources: Option<Vec<String>>,
    pub(crate) token_format: Option<RawTokenFormat>,
    pub(crate) faults: Option<Vec<String>>,
}

/// `token_format`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawTokenFormat {
    Jwt,
    Opaque,
}

/// `[[users]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUser {
    pub(crate) username: Option<String>,
    /// Refused with a message of its own, like a client's `secret`.
    pub(crate) password: Option<toml::Value>,
    pub(crate) password_hash: Option<String>,
    pub(crate) password_env: Option<String>,
    pub(crate) password_file: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) claims: Option<BTreeMap<String, toml::Value>>,
}
