//! `authz.toml`, the authorization server's configuration file: clients,
//! development users, scopes, resources, token lifetimes, signing keys,
//! issuer, listen address and storage URL. `docs/authz-config.md` is the
//! reference, [`EXAMPLE`] (`examples/authz.toml`) the commented example.
//!
//! Read like `gatewise.toml` (and with `gatewise-config`'s building
//! blocks): [`compile`] takes the text and returns the validated
//! [`Settings`], or *every* error at once, each with its TOML path, line
//! and column:
//! 1. TOML syntax;
//! 2. types and spelling (`raw`, every table `deny_unknown_fields`): each
//!    bad key is reported and skipped, so one does not hide the next;
//! 3. meaning: required keys, durations, URLs, references between clients
//!    and the declared scopes and resources, grant types that fit the
//!    client.
//!
//! Secrets are never in the file: a client's secret is named by
//! `secret_env` / `secret_file` (read at start) or given as its SHA-256
//! (`secret_sha256`); a user's password likewise (`password_env`,
//! `password_file`) or as an argon2 hash (`password_hash`). Like
//! `gatewise-config`, nothing here reads a file or the environment:
//! [`Settings::authz_config`] takes a function that resolves a
//! [`SecretRef`], which the CLI implements.

mod raw;

use crate::clients::ClientSpec;
use crate::faults::{Endpoint, Fault};
use crate::flow::UserSpec;
use crate::server::AuthzConfig;
use crate::store::StoreUrl;
use gatewise_config::locate::{Index, Path};
use gatewise_config::{ConfigError, ConfigWarning, line_column};
use gatewise_core::jose::Alg;
use raw::{RawClient, RawKeys, RawSettings, RawTokenFormat, RawTokens, RawUser};
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use toml::de::DeTable;

/// The example configuration shipped as `examples/authz.toml`. It compiles
/// without errors or warnings (a test holds that).
pub const EXAMPLE: &str = include_str!("../../../../examples/authz.toml");

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9100";
/// Default storage: a SQLite file next to the configuration file.
pub const DEFAULT_STORAGE: &str = "sqlite:gatewise-authz.db";
/// Default access token (and ID token) lifetime: one hour.
pub const DEFAULT_ACCESS_TTL: u64 = 3600;
/// Default refresh token lifetime: 30 days.
pub const DEFAULT_REFRESH_TTL: u64 = 30 * 24 * 3600;
/// Default authorization code lifetime: 60 seconds.
pub const DEFAULT_CODE_TTL: u64 = 60;
/// Longest authorization code lifetime: RFC 6749 §4.1.2 recommends at most
/// ten minutes.
pub const MAX_CODE_TTL: u64 = 600;

/// Default device code lifetime (RFC 8628 §3.2 `expires_in`): ten minutes.
pub const DEFAULT_DEVICE_TTL: u64 = 600;
/// Default polling interval of the device flow: 5 s (RFC 8628 §3.2).
pub const DEFAULT_DEVICE_INTERVAL: u64 = 5;

/// Grant types a client may be given.
pub const GRANT_TYPES: [&str; 4] = [
    "client_credentials",
    "authorization_code",
    "refresh_token",
    crate::device::GRANT_TYPE,
];

/// Scopes of OpenID Connect that any client of the code flow may ask for.
const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// Claims the server sets itself; users' `claims` may not replace them.
const RESERVED_CLAIMS: [&str; 12] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "auth_time",
    "nonce",
    "azp",
    "at_hash",
    "client_id",
];

/// Where a secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// An environment variable.
    Env(String),
    /// A file (relative paths: to the configuration file's directory);
    /// surrounding whitespace is trimmed.
    File(PathBuf),
}

/// A client's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientSecret {
    /// A public client: none (`token_endpoint_auth_method = none`).
    Public,
    /// Read at start.
    Ref(SecretRef),
    /// SHA-256 of the secret (`secret_sha256`, hex or base64url).
    Sha256([u8; 32]),
    /// `private_key_jwt` (RFC 7523 §2.2): the client's public keys.
    Jwks(JwksSource),
}

/// Where a `private_key_jwt` client's JWK Set comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// In the file (`jwks`), as JSON text.
    Inline(String),
    /// A file (`jwks_file`, relative to the configuration file), read at
    /// start like a secret file.
    File(PathBuf),
}

/// A client as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// `client_id`.
    pub id: String,
    /// Display name (the login page shows it).
    pub name: String,
    /// Its credentials.
    pub secret: ClientSecret,
    /// Exact redirect URIs (loopback: any port, RFC 8252 §7.3).
    pub redirect_uris: Vec<String>,
    /// Grant types it may use.
    pub grant_types: Vec<String>,
    /// Scopes it may ask for.
    pub scopes: Vec<String>,
    /// Resources (audiences) it may ask for; the first is the default.
    pub resources: Vec<String>,
    /// Opaque access tokens instead of JWTs.
    pub opaque_tokens: bool,
    /// Faults served to its token requests.
    pub faults: Vec<Fault>,
}

/// A user's password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserPassword {
    /// Read at start, hashed with argon2.
    Ref(SecretRef),
    /// An argon2 PHC string (`$argon2id$v=19$...`).
    Hash(String),
}

/// A development user as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct UserSettings {
    /// Login name and `sub`.
    pub username: String,
    /// The password.
    pub password: UserPassword,
    /// `name` claim.
    pub name: String,
    /// `email` claim.
    pub email: String,
    /// More ID token claims.
    pub claims: serde_json::Map<String, Value>,
}

/// The signing keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySettings {
    /// Access token algorithm (ID tokens are RS256 in any case).
    pub alg: Alg,
    /// Rotate the keys this often (seconds), the previous ones kept
    /// published; `None`: only by `gatewise authz keys rotate`.
    pub rotation_interval: Option<u64>,
    /// The key-encryption key that seals private keys at rest.
    pub encryption_key: Option<SecretRef>,
}

/// Token lifetimes, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// Access tokens.
    pub access: u64,
    /// Refresh tokens.
    pub refresh: u64,
    /// Authorization codes.
    pub code: u64,
    /// ID tokens.
    pub id_token: u64,
    /// Device codes (RFC 8628 §3.2 `expires_in`).
    pub device_code: u64,
    /// The device flow's polling interval (RFC 8628 §3.2 `interval`).
    pub device_interval: u64,
}

/// A validated `authz.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Issuer identifier.
    pub issuer: String,
    /// Listen address.
    pub listen: SocketAddr,
    /// Storage URL (`sqlite:PATH`, `sqlite::memory:`, `postgres://...`).
    pub storage: String,
    /// Declared scopes (advertised; clients' scopes must be among them).
    pub scopes: Vec<String>,
    /// Declared resources (clients' resources must be among them).
    pub resources: Vec<String>,
    /// Lifetimes.
    pub tokens: Lifetimes,
    /// Keys.
    pub keys: KeySettings,
    /// Clients.
    pub clients: Vec<ClientSettings>,
    /// Users.
    pub users: Vec<UserSettings>,
}

/// A configuration that passed every check, with what looked odd.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    /// The settings.
    pub settings: Settings,
    /// Legal but probably not meant, in file order.
    pub warnings: Vec<ConfigWarning>,
}

/// Why a secret could not be resolved, with the TOML path that names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ResolveError {
    /// Such as `clients[1].secret_env`.
    pub path: String,
    /// What went wrong (never the secret).
    pub message: String,
}

impl Settings {
    /// The server configuration, with secrets read through `read` (the
    /// CLI reads the environment and files). Every secret that cannot be
    /// read is reported. The key-encryption key is resolved separately
    /// (see [`KeySettings::encryption_key`]).
    pub fn authz_config(
        &self,
        read: &mut dyn FnMut(&SecretRef) -> Result<String, String>,
    ) -> Result<AuthzConfig, Vec<ResolveError>> {
        let mut errors = Vec::new();
        let mut clients = Vec::new();
        for (i, c) in self.clients.iter().enumerate() {
            let mut spec = ClientSpec::machine(&c.id, "", &[], &[]);
            spec.name = c.name.clone();
            spec.redirect_uris = c.redirect_uris.clone();
            spec.grant_types = c.grant_types.clone();
            spec.scopes = c.scopes.clone();
            spec.resources = c.resources.clone();
            spec.opaque_tokens = c.opaque_tokens;
            spec.faults = c.faults.clone();
            match &c.secret {
                ClientSecret::Public => spec.public = true,
                ClientSecret::Sha256(d) => spec.secret_sha256 = Some(*d),
                ClientSecret::Jwks(JwksSource::Inline(doc)) => spec.jwks = Some(doc.clone()),
                ClientSecret::Jwks(JwksSource::File(path)) => {
                    match read(&SecretRef::File(path.clone())) {
                        Ok(doc) => spec.jwks = Some(doc),
                        Err(m) => errors.push(ResolveError {
                            path: format!("clients[{i}].jwks_file"),
                            message: m,
                        }),
                    }
                }
                ClientSecret::Ref(r) => match read(r) {
                    Ok(s) if !s.is_empty() => spec.secret = s,
                    Ok(_) => errors.push(ResolveError {
                        path: ref_path(&format!("clients[{i}]"), "secret", r),
                        message: format!("{} is empty", describe_ref(r)),
                    }),
                    Err(m) => errors.push(ResolveError {
                        path: ref_path(&format!("clients[{i}]"), "secret", r),
                        message: m,
                    }),
                },
            }
            clients.push(spec);
        }
        let mut users = Vec::new();
        for (i, u) in self.users.iter().enumerate() {
            let mut spec = UserSpec {
                username: u.username.clone(),
                password: String::new(),
                password_hash: None,
                name: u.name.clone(),
                email: u.email.clone(),
                claims: u.claims.clone(),
            };
            match &u.password {
                UserPassword::Hash(h) => spec.password_hash = Some(h.clone()),
                UserPassword::Ref(r) => match read(r) {
                    Ok(p) if !p.is_empty() => spec.password = p,
                    Ok(_) => errors.push(ResolveError {
                        path: ref_path(&format!("users[{i}]"), "password", r),
                        message: format!("{} is empty", describe_ref(r)),
                    }),
                    Err(m) => errors.push(ResolveError {
                        path: ref_path(&format!("users[{i}]"), "password", r),
                        message: m,
                    }),
                },
            }
            users.push(spec);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(AuthzConfig {
            issuer: self.issuer.clone(),
            clients,
            access_token_ttl: self.tokens.access,
            refresh_token_ttl: self.tokens.refresh,
            code_ttl: self.tokens.code,
            id_token_ttl: self.tokens.id_token,
            device_code_ttl: self.tokens.device_code,
            device_interval: self.tokens.device_interval,
            alg: self.keys.alg,
            key_rotation: self.keys.rotation_interval,
            scopes: self.scopes.clone(),
            users,
            faults: Vec::new(),
            fault_header: false,
        })
    }
}

fn ref_path(base: &str, what: &str, r: &SecretRef) -> String {
    match r {
        SecretRef::Env(_) => format!("{base}.{what}_env"),
        SecretRef::File(_) => format!("{base}.{what}_file"),
    }
}

/// `environment variable X` / `file F`, for messages.
pub fn describe_ref(r: &SecretRef) -> String {
    match r {
        SecretRef::Env(n) => format!("environment variable {n}"),
        SecretRef::File(p) => format!("file {}", p.display()),
    }
}

/// Compiles the text of an `authz.toml` file: the validated settings with
/// their warnings, or every error (in file order, with path, line and
/// column).
pub fn compile(text: &str) -> Result<Compiled, Vec<ConfigError>> {
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        return Err(gatewise_config::syntax_errors(text, &syntax));
    }
    let index = Index::new(&doc);
    let recovered = gatewise_config::deserialize_recovering::<RawSettings>(text, &index, doc);
    let mut cx = Cx {
        text,
        index,
        errors: recovered.errors,
        warnings: Vec::new(),
        skipped: recovered.skipped,
    };
    let Some(raw) = recovered.value else {
        return Err(sorted(cx.errors));
    };
    let settings = cx.settings(raw);
    if cx.errors.is_empty() {
        Ok(Compiled {
            settings,
            warnings: sorted(cx.warnings),
        })
    } else {
        Err(sorted(cx.errors))
    }
}

fn sorted<T>(mut items: Vec<(Option<usize>, T)>) -> Vec<T> {
    items.sort_by_key(|(offset, _)| offset.unwrap_or(usize::MAX));
    items.into_iter().map(|(_, item)| item).collect()
}

struct Cx<'t> {
    text: &'t str,
    index: Index,
    errors: Vec<(Option<usize>, ConfigError)>,
    warnings: Vec<(Option<usize>, ConfigWarning)>,
    skipped: Vec<Path>,
}

fn root() -> Path {
    Path::root()
}

impl Cx<'_> {
    fn error(&mut self, path: &Path, message: impl Into<String>) {
        if self.skipped.iter().any(|s| path.starts_with(s)) {
            return;
        }
        let offset = self.index.offset(path);
        let (line, column) = offset.map(|o| line_column(self.text, o)).unzip();
        self.errors.push((
            offset,
            ConfigError {
                path: path.to_string(),
                line,
                column,
                message: message.into(),
            },
        ));
    }

    fn warn(&mut self, path: &Path, message: impl Into<String>) {
        let offset = self.index.offset(path);
        let (line, column) = offset.map(|o| line_column(self.text, o)).unzip();
        self.warnings.push((
            offset,
            ConfigWarning {
                path: path.to_string(),
                line,
                column,
                message: message.into(),
            },
        ));
    }

    fn duration(&mut self, path: &Path, value: Option<&String>, default: u64) -> u64 {
        let Some(v) = value else {
            return default;
        };
        match gatewise_config::parse_duration(v) {
            Ok(d) if d.as_secs() == 0 => {
                self.error(path, "must be at least one second");
                default
            }
            Ok(d) => d.as_secs(),
            Err(e) => {
                self.error(path, e);
                default
            }
        }
    }

    /// `{prefix}_env` and `{prefix}_file` of `table`, those given.
    fn secret_ref(
        &mut self,
        table: &Path,
        prefix: &str,
        env: Option<&String>,
        file: Option<&String>,
    ) -> Vec<SecretRef> {
        let mut out = Vec::new();
        if let Some(name) = env {
            let p = table.key(&format!("{prefix}_env"));
            if is_env_name(name) {
                out.push(SecretRef::Env(name.clone()));
            } else {
                self.error(&p, format!("{name:?} is not an environment variable name (letters, digits and _, not starting with a digit)"));
                out.push(SecretRef::Env(name.clone()));
            }
        }
        if let Some(f) = file {
            if f.trim().is_empty() {
                self.error(&table.key(&format!("{prefix}_file")), "must not be empty");
            }
            out.push(SecretRef::File(PathBuf::from(f)));
        }
        out
    }

    fn settings(&mut self, raw: RawSettings) -> Settings {
        let listen = match raw.listen.as_deref() {
            None => DEFAULT_LISTEN
                .parse()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 9100))),
            Some(l) => match l.parse::<SocketAddr>() {
                Ok(a) => a,
                Err(_) => {
                    self.error(
                        &root().key("listen"),
                        format!("{l:?} is not an address:port such as \"127.0.0.1:9100\""),
                    );
                    SocketAddr::from(([127, 0, 0, 1], 9100))
                }
            },
        };
        let issuer = match raw.issuer.as_deref() {
            None => format!("http://{listen}"),
            Some(i) => self.issuer(i),
        };
        let storage = raw
            .storage
            .clone()
            .unwrap_or_else(|| DEFAULT_STORAGE.to_owned());
        if let Err(e) = StoreUrl::parse(&storage) {
            let message = match e {
                crate::store::StoreError::BadUrl { reason, .. } => reason,
                other => other.to_string(),
            };
            self.error(&root().key("storage"), message);
        }
        let scopes = self.scope_list(
            &root().key("scopes"),
            raw.scopes.as_deref().unwrap_or_default(),
        );
        let resources = self.resource_list(
            &root().key("resources"),
            raw.resources.as_deref().unwrap_or_default(),
        );
        let tokens = self.tokens(raw.tokens.as_ref());
        let keys = self.keys(raw.keys.as_ref(), tokens.access);
        let mut ids = BTreeSet::new();
        let clients: Vec<ClientSettings> = raw
            .clients
            .as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let p = root().key("clients").index(i);
                let c = self.client(&p, c, &scopes, &resources);
                if !c.id.is_empty() && !ids.insert(c.id.clone()) {
                    self.error(&p.key("id"), format!("client id {:?} is used twice", c.id));
                }
                c
            })
            .collect();
        if clients.is_empty() && !self.skipped.iter().any(|s| s == &root().key("clients")) {
            self.warn(&root(), "no [[clients]]: nobody can get a token");
        }
        let mut names = BTreeSet::new();
        let users: Vec<UserSettings> = raw
            .users
            .as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let p = root().key("users").index(i);
                let u = self.user(&p, u);
                if !u.username.is_empty() && !names.insert(u.username.clone()) {
                    self.error(
                        &p.key("username"),
                        format!("username {:?} is used twice", u.username),
                    );
                }
                u
            })
            .collect();
        if users.is_empty()
            && clients
                .iter()
                .any(|c| c.grant_types.iter().any(|g| g == "authorization_code"))
        {
            self.warn(
                &root(),
                "a client uses authorization_code but there are no [[users]] to sign in",
            );
        }
        Settings {
            issuer,
            listen,
            storage,
            scopes,
            resources,
            tokens,
            keys,
            clients,
            users,
        }
    }

    fn issuer(&mut self, text: &str) -> String {
        let p = root().key("issuer");
        match url::Url::parse(text) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                // RFC 8414 §2: no query or fragment.
                if u.query().is_some() || u.fragment().is_some() {
                    self.error(
                        &p,
                        "the issuer must not have a query or fragment (RFC 8414 §2)",
                    );
                }
                if u.scheme() == "http" && !is_loopback(&u) {
                    self.warn(
                        &p,
                        "plain http beyond loopback: RFC 8414 §2 requires https for an issuer",
                    );
                }
                text.trim_end_matches('/').to_owned()
            }
            _ => {
                self.error(&p, format!("{text:?} is not an http(s) URL"));
                String::new()
            }
        }
    }

    fn scope_list(&mut self, p: &Path, raw: &[String]) -> Vec<String> {
        let mut seen = BTreeSet::new();
        for (i, s) in raw.iter().enumerate() {
            if !is_scope_token(s) {
                self.error(&p.index(i), format!("{s:?} is not a scope token (RFC 6749 §3.3: printable ASCII without spaces, quotes or backslashes)"));
            } else if !seen.insert(s.as_str()) {
                self.warn(&p.index(i), format!("{s:?} is listed twice"));
            }
        }
        raw.to_vec()
    }

    fn resource_list(&mut self, p: &Path, raw: &[String]) -> Vec<String> {
        for (i, r) in raw.iter().enumerate() {
            match url::Url::parse(r) {
                // RFC 8707 §2: an absolute URI without a fragment.
                Ok(u) if u.fragment().is_none() => {}
                Ok(_) => self.error(
                    &p.index(i),
                    "a resource must not have a fragment (RFC 8707 §2)",
                ),
                Err(_) => self.error(
                    &p.index(i),
                    format!("{r:?} is not an absolute URI (RFC 8707 §2)"),
                ),
            }
        }
        raw.to_vec()
    }

    fn tokens(&mut self, raw: Option<&RawTokens>) -> Lifetimes {
        let p = root().key("tokens");
        let access = self.duration(
            &p.key("access"),
            raw.and_then(|t| t.access.as_ref()),
            DEFAULT_ACCESS_TTL,
        );
        let refresh = self.duration(
            &p.key("refresh"),
            raw.and_then(|t| t.refresh.as_ref()),
            DEFAULT_REFRESH_TTL,
        );
        let code = self.duration(
            &p.key("code"),
            raw.and_then(|t| t.code.as_ref()),
            DEFAULT_CODE_TTL,
        );
        let id_token = self.duration(
            &p.key("id_token"),
            raw.and_then(|t| t.id_token.as_ref()),
            access,
        );
        let device_code = self.duration(
            &p.key("device_code"),
            raw.and_then(|t| t.device_code.as_ref()),
            DEFAULT_DEVICE_TTL,
        );
        let device_interval = self.duration(
            &p.key("device_interval"),
            raw.and_then(|t| t.device_interval.as_ref()),
            DEFAULT_DEVICE_INTERVAL,
        );
        if !(1..=60).contains(&device_interval) {
            self.error(
                &p.key("device_interval"),
                "between 1s and 60s: clients wait this long between polls (RFC 8628 §3.2)",
            );
        } else if device_code <= device_interval {
            self.error(
                &p.key("device_code"),
                "device codes must outlive the polling interval (RFC 8628 §3.2)",
            );
        }
        if code > MAX_CODE_TTL {
            self.error(
                &p.key("code"),
                "at most 10m: RFC 6749 §4.1.2 says codes must be short-lived (ten minutes at most)",
            );
        }
        if refresh < access {
            self.warn(
                &p.key("refresh"),
                "refresh tokens expire before the access tokens they renew",
            );
        }
        Lifetimes {
            access,
            refresh,
            code,
            id_token,
            device_code,
            device_interval,
        }
    }

    fn keys(&mut self, raw: Option<&RawKeys>, access_ttl: u64) -> KeySettings {
        let p = root().key("keys");
        let alg = match raw.and_then(|k| k.algorithm.as_deref()) {
            None => Alg::RS256,
            Some(a @ ("RS256" | "ES256" | "EdDSA")) => Alg::parse(a).unwrap_or(Alg::RS256),
            Some(other) => {
                self.error(&p.key("algorithm"), format!("{other:?} is not supported for signing; use \"RS256\", \"ES256\" or \"EdDSA\""));
                Alg::RS256
            }
        };
        let rotation_interval = raw.and_then(|k| k.rotation_interval.as_ref()).map(|r| {
            let secs = self.duration(&p.key("rotation_interval"), Some(r), 0);
            if secs != 0 && secs < 60 {
                self.error(&p.key("rotation_interval"), "at least 1m");
            } else if secs != 0 && secs < access_ttl {
                self.warn(&p.key("rotation_interval"), "shorter than the access token lifetime: after two rotations, tokens still valid are signed by a key no longer published");
            }
            secs
        });
        let refs = self.secret_ref(
            &p,
            "encryption_key",
            raw.and_then(|k| k.encryption_key_env.as_ref()),
            raw.and_then(|k| k.encryption_key_file.as_ref()),
        );
        if refs.len() > 1 {
            self.error(
                &p.key("encryption_key_file"),
                "give encryption_key_env or encryption_key_file, not both",
            );
        }
        KeySettings {
            alg,
            rotation_interval,
            encryption_key: refs.into_iter().next(),
        }
    }

    fn client(
        &mut self,
        p: &Path,
        raw: &RawClient,
        scopes: &[String],
        resources: &[String],
    ) -> ClientSettings {
        let id = match raw.id.as_deref() {
            None => {
                self.error(&p.key("id"), "missing required key");
                String::new()
            }
            Some(id) if id.is_empty() || !id.bytes().all(|b| (0x21..=0x7e).contains(&b)) => {
                self.error(
                    &p.key("id"),
                    "a client id is printable ASCII without spaces (RFC 6749 §A.1)",
                );
                id.to_owned()
            }
            Some(id) => id.to_owned(),
        };
        let public = raw.public.unwrap_or(false);
        if raw.secret.is_some() {
            self.error(&p.key("secret"), "secrets are never written in the configuration: use secret_env, secret_file or secret_sha256");
        }
        let refs = self.secret_ref(
            p,
            "secret",
            raw.secret_env.as_ref(),
            raw.secret_file.as_ref(),
        );
        let sha = raw.secret_sha256.as_deref().map(|h| {
            let d = parse_digest(h);
            if d.is_none() {
                self.error(
                    &p.key("secret_sha256"),
                    "expected the SHA-256 of the secret: 64 hex digits or 43 base64url characters",
                );
            }
            d.unwrap_or([0; 32])
        });
        let jwks = self.client_jwks(p, raw);
        let given = refs.len() + usize::from(sha.is_some()) + usize::from(jwks.is_some());
        let secret = if public {
            if given > 0 {
                self.error(&p.key("public"), "a public client has no secret: remove secret_env, secret_file, secret_sha256, jwks and jwks_file, or set public = false");
            }
            ClientSecret::Public
        } else {
            if given == 0 && raw.secret.is_none() {
                self.error(p, "a confidential client needs one of secret_env, secret_file, secret_sha256, jwks or jwks_file (or public = true)");
            } else if given > 1 {
                self.error(
                    p,
                    "give one of secret_env, secret_file, secret_sha256, jwks or jwks_file, not several (one authentication method per client)",
                );
            }
            match (refs.into_iter().next(), sha, jwks) {
                (Some(r), _, _) => ClientSecret::Ref(r),
                (None, Some(d), _) => ClientSecret::Sha256(d),
                (None, None, Some(j)) => ClientSecret::Jwks(j),
                (None, None, None) => ClientSecret::Public,
            }
        };
        let redirect_uris = raw.redirect_uris.clone().unwrap_or_default();
        for (i, r) in redirect_uris.iter().enumerate() {
            let rp = p.key("redirect_uris").index(i);
            match url::Url::parse(r) {
                Ok(u) if u.fragment().is_some() => self.error(&rp, "a redirect URI must not have a fragment (RFC 6749 §3.1.2)"),
                Ok(u) if u.scheme() == "http" && !is_loopback(&u) && u.host_str() != Some("localhost") => self.warn(&rp, "plain http beyond loopback: OAuth 2.1 §2.3.1 requires https (or a loopback or custom-scheme URI for native apps)"),
                Ok(_) => {}
                Err(_) => self.error(&rp, format!("{r:?} is not an absolute URI")),
            }
        }
        let grant_types = match raw.grant_types.as_deref() {
            Some(g) => {
                for (i, t) in g.iter().enumerate() {
                    if !GRANT_TYPES.contains(&t.as_str()) {
                        self.error(
                            &p.key("grant_types").index(i),
                            format!(
                                "unknown grant type {t:?}; expected one of {}",
                                GRANT_TYPES.join(", ")
                            ),
                        );
                    }
                }
                if g.is_empty() {
                    self.error(&p.key("grant_types"), "must not be empty");
                }
                g.to_vec()
            }
            None if public || !redirect_uris.is_empty() => {
                vec!["authorization_code".into(), "refresh_token".into()]
            }
            None => vec!["client_credentials".into()],
        };
        let has = |g: &str| grant_types.iter().any(|x| x == g);
        if public && has("client_credentials") {
            self.error(
                &p.key("grant_types"),
                "a public client cannot use client_credentials (it has no secret)",
            );
        }
        if has("authorization_code") && redirect_uris.is_empty() {
            self.error(p, "authorization_code needs redirect_uris");
        }
        if !has("authorization_code") && !redirect_uris.is_empty() {
            self.warn(
                &p.key("redirect_uris"),
                "redirect_uris are only used by authorization_code, which this client may not use",
            );
        }
        let client_scopes = raw.scopes.clone().unwrap_or_default();
        for (i, s) in client_scopes.iter().enumerate() {
            let sp = p.key("scopes").index(i);
            if !is_scope_token(s) {
                self.error(&sp, format!("{s:?} is not a scope token (RFC 6749 §3.3)"));
            } else if !scopes.is_empty()
                && !scopes.contains(s)
                && !OIDC_SCOPES.contains(&s.as_str())
            {
                self.error(
                    &sp,
                    format!("scope {s:?} is not declared in the top-level `scopes`"),
                );
            }
        }
        let client_resources = raw.resources.clone().unwrap_or_default();
        self.resource_list(&p.key("resources"), &client_resources);
        for (i, r) in client_resources.iter().enumerate() {
            if !resources.is_empty() && !resources.contains(r) {
                self.error(
                    &p.key("resources").index(i),
                    format!("resource {r:?} is not declared in the top-level `resources`"),
                );
            }
        }
        let mut faults = Vec::new();
        for (i, f) in raw.faults.as_deref().unwrap_or_default().iter().enumerate() {
            let fp = p.key("faults").index(i);
            match Fault::parse(f) {
                Ok(fault) if fault.endpoint() != Endpoint::Token => self.error(&fp, format!("fault `{fault}` applies to the {}, which is fetched without client authentication; use `gatewise authz --fault {fault}` for the whole server", fault.endpoint())),
                Ok(fault) => faults.push(fault),
                Err(e) => self.error(&fp, e.to_string()),
            }
        }
        ClientSettings {
            name: raw.name.clone().unwrap_or_else(|| id.clone()),
            id,
            secret,
            redirect_uris,
            grant_types,
            scopes: client_scopes,
            resources: client_resources,
            opaque_tokens: matches!(raw.token_format, Some(RawTokenFormat::Opaque)),
            faults,
        }
    }

    /// `jwks` (a table, or JSON text) or `jwks_file`, checked: an inline
    /// set must hold a public RS256, ES256 or EdDSA signing key.
    fn client_jwks(&mut self, p: &Path, raw: &RawClient) -> Option<JwksSource> {
        if raw.jwks.is_some() && raw.jwks_file.is_some() {
            self.error(p, "give jwks or jwks_file, not both");
        }
        if let Some(f) = &raw.jwks_file {
            if f.is_empty() {
                self.error(&p.key("jwks_file"), "must not be empty");
            }
            return Some(JwksSource::File(PathBuf::from(f)));
        }
        let v = raw.jwks.as_ref()?;
        let jp = p.key("jwks");
        let doc = match v {
            toml::Value::String(text) => text.clone(),
            other => match toml_to_json(other) {
                Some(j) => j.to_string(),
                None => {
                    self.error(&jp, "a JWK Set is a table with `keys`, or its JSON text");
                    return None;
                }
            },
        };
        match gatewise_core::jose::keyset::KeySet::from_jwks(
            doc.as_bytes(),
            &crate::clients::ASSERTION_ALGS,
        ) {
            Ok(set) if set.is_empty() => self.error(
                &jp,
                format!(
                    "no public RS256, ES256 or EdDSA signing key{}",
                    if set.skipped.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", set.skipped.join("; "))
                    }
                ),
            ),
            Ok(_) => {}
            Err(e) => self.error(&jp, e.to_string()),
        }
        Some(JwksSource::Inline(doc))
    }

    fn user(&mut self, p: &Path, raw: &RawUser) -> UserSettings {
        let username = match raw.username.as_deref() {
            None => {
                self.error(&p.key("username"), "missing required key");
                String::new()
            }
            Some(u) if u.trim().is_empty() => {
                self.error(&p.key("username"), "must not be empty");
                String::new()
            }
            Some(u) => u.to_owned(),
        };
        if raw.password.is_some() {
            self.error(&p.key("password"), "passwords are never written in the configuration: use password_env, password_file or password_hash (argon2)");
        }
        let refs = self.secret_ref(
            p,
            "password",
            raw.password_env.as_ref(),
            raw.password_file.as_ref(),
        );
        let hash = raw.password_hash.as_deref().map(|h| {
            let ok = argon2::password_hash::PasswordHash::new(h)
                .is_ok_and(|ph| ph.algorithm.as_str().starts_with("argon2"));
            if !ok {
                self.error(
                    &p.key("password_hash"),
                    "expected an argon2 PHC string such as \"$argon2id$v=19$m=19456,t=2,p=1$...\"",
                );
            }
            h.to_owned()
        });
        let given = refs.len() + usize::from(hash.is_some());
        if given == 0 && raw.password.is_none() {
            self.error(
                p,
                "a user needs one of password_env, password_file or password_hash",
            );
        } else if given > 1 {
            self.error(
                p,
                "give one of password_env, password_file or password_hash, not several",
            );
        }
        let password = match (refs.into_iter().next(), hash) {
            (Some(r), _) => UserPassword::Ref(r),
            (None, Some(h)) => UserPassword::Hash(h),
            (None, None) => UserPassword::Hash(String::new()),
        };
        let mut claims = serde_json::Map::new();
        for (k, v) in raw.claims.iter().flatten() {
            let cp = p.key("claims").key(k);
            if RESERVED_CLAIMS.contains(&k.as_str()) {
                self.error(
                    &cp,
                    format!("`{k}` is set by the server and cannot be configured"),
                );
                continue;
            }
            match toml_to_json(v) {
                Some(j) => {
                    claims.insert(k.clone(), j);
                }
                None => self.error(
                    &cp,
                    "a claim is a string, number, boolean, array or table (not a date)",
                ),
            }
        }
        UserSettings {
            username,
            password,
            name: raw.name.clone().unwrap_or_default(),
            email: raw.email.clone().unwrap_or_default(),
            claims,
        }
    }
}

fn toml_to_json(v: &toml::Value) -> Option<Value> {
    Some(match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map(Value::Number)?,
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(_) => return None,
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_to_json).collect::<Option<_>>()?),
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| Some((k.clone(), toml_to_json(v)?)))
                .collect::<Option<_>>()?,
        ),
    })
}

/// A SHA-256 digest as 64 hex digits or 43 base64url characters.
pub fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let t = text.trim();
    let bytes: Vec<u8> = if t.len() == 64 {
        (0..32)
            .map(|i| {
                t.get(i * 2..i * 2 + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<_>>()?
    } else {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t)
            .ok()?
    };
    bytes.try_into().ok()
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}
