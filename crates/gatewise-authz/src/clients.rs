//! Registered clients and client authentication (RFC 6749 §2.3).
//!
//! Secrets are kept as HMAC-SHA-256 (of their SHA-256) under a per-process
//! key, never in clear, and compared in constant time. A client configured
//! with only the SHA-256 of its secret (`secret_sha256`) is hashed the same
//! way from that digest. `client_secret_basic` follows RFC
//! 6749 §2.3.1 (id and secret form-urlencoded before Base64) and also
//! accepts clients that skip the encoding (requests-oauthlib) or encode more
//! than needed (openid-client encodes `-`): both decodings are tried.

use crate::faults::Fault;
use aws_lc_rs::hmac;
use base64::Engine as _;

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// `client_secret_basic`.
    Basic,
    /// `client_secret_post`.
    Post,
    /// `none`: a public client (native or browser app), identified by
    /// `client_id` only; it must use PKCE.
    None,
}

/// A client as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSpec {
    /// `client_id`.
    pub id: String,
    /// Display name (the login page shows it); empty: the id.
    pub name: String,
    /// The secret, in clear only until the server is built; hashed at load.
    pub secret: String,
    /// The SHA-256 of the secret, when only that is known (configuration's
    /// `secret_sha256`); then `secret` is empty.
    pub secret_sha256: Option<[u8; 32]>,
    /// Grant types the client may use (`client_credentials`,
    /// `authorization_code`, `refresh_token`); empty: any (the
    /// development clients). Others are refused with `unauthorized_client`
    /// (RFC 6749 §5.2).
    pub grant_types: Vec<String>,
    /// Scopes the client may ask for (and gets by default).
    pub scopes: Vec<String>,
    /// Resource indicators (RFC 8707) the client may get tokens for; the
    /// first is the default audience.
    pub resources: Vec<String>,
    /// Issue opaque access tokens instead of JWTs.
    pub opaque_tokens: bool,
    /// Redirect URIs for the authorization code grant (exact match; for
    /// `http://127.0.0.1` and `http://[::1]` any port, RFC 8252 §7.3).
    pub redirect_uris: Vec<String>,
    /// A public client: no secret, token endpoint authentication `none`.
    pub public: bool,
    /// Fault mode: faults served to this client's token requests only (on
    /// top of the server-wide ones). Only token endpoint faults fit here:
    /// the JWKS and discovery are fetched without client authentication.
    pub faults: Vec<Fault>,
}

impl ClientSpec {
    /// A confidential machine client (client_credentials only).
    pub fn machine(id: &str, secret: &str, scopes: &[&str], resources: &[&str]) -> ClientSpec {
        ClientSpec {
            id: id.to_owned(),
            name: String::new(),
            secret: secret.to_owned(),
            secret_sha256: None,
            grant_types: Vec::new(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            resources: resources.iter().map(|s| (*s).to_owned()).collect(),
            opaque_tokens: false,
            redirect_uris: Vec::new(),
            public: false,
            faults: Vec::new(),
        }
    }
}

/// A registered client with its hashed secret.
#[derive(Debug)]
pub struct Client {
    /// The configuration, with the secret field emptied.
    pub spec: ClientSpec,
    secret_mac: Vec<u8>,
}

/// All registered clients.
#[derive(Debug)]
pub struct Registry {
    key: hmac::Key,
    clients: Vec<Client>,
}

/// Why client authentication failed (the token endpoint answers
/// `invalid_client` for all of them, RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credentials at all.
    Missing,
    /// More than one method in one request (RFC 6749 §2.3).
    TwoMethods,
    /// Unknown client or wrong secret.
    Rejected,
    /// The Basic header is not base64 of `id:secret`.
    Malformed,
}

impl ClientSpec {
    /// Whether the client may use `grant_type` (any, when none are listed).
    pub fn allows(&self, grant_type: &str) -> bool {
        self.grant_types.is_empty() || self.grant_types.iter().any(|g| g == grant_type)
    }
}

impl Registry {
    /// Registers `specs`; secrets are hashed now and dropped.
    pub fn new(specs: Vec<ClientSpec>) -> Registry {
        let mut seed = [0u8; 32];
        let _ = aws_lc_rs::rand::fill(&mut seed);
        let key = hmac::Key::new(hmac::HMAC_SHA256, &seed);
        let clients = specs
            .into_iter()
            .map(|mut spec| {
                let digest = spec
                    .secret_sha256
                    .unwrap_or_else(|| gatewise_core::secret::sha256(spec.secret.as_bytes()));
                let secret_mac = hmac::sign(&key, &digest).as_ref().to_vec();
                spec.secret = String::new();
                Client { spec, secret_mac }
            })
            .collect();
        Registry { key, clients }
    }

    /// The client with this id.
    pub fn get(&self, id: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.spec.id == id)
    }

    fn check(&self, id: &str, secret: &str) -> Option<&Client> {
        let c = self.get(id)?;
        // Constant-time: hmac::verify compares tags in constant time.
        let digest = gatewise_core::secret::sha256(secret.as_bytes());
        hmac::verify(&self.key, &digest, &c.secret_mac).ok()?;
        Some(c)
    }

    /// Authenticates the caller from the `Authorization` header value and
    /// the form, with exactly one method.
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        form: &[(String, String)],
    ) -> Result<(&Client, AuthMethod), AuthFailure> {
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let basic = authorization
            .map(str::trim)
            .and_then(|a| a.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
            .map(|(_, b)| b.trim());
        let post = get("client_secret");
        match (basic, post) {
            (Some(_), Some(_)) => Err(AuthFailure::TwoMethods),
            (None, None) => match get("client_id").and_then(|id| self.get(id)) {
                Some(c) if c.spec.public => Ok((c, AuthMethod::None)),
                _ => Err(AuthFailure::Missing),
            },
            (None, Some(secret)) => {
                let id = get("client_id").ok_or(AuthFailure::Missing)?;
                self.check(id, secret)
                    .map(|c| (c, AuthMethod::Post))
                    .ok_or(AuthFailure::Rejected)
            }
            (Some(b64), None) => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or(AuthFailure::Malformed)?;
                let (id, secret) = raw.split_once(':').ok_or(AuthFailure::Malformed)?;
                let decoded = |s: &str| -> String {
                    url::form_urlencoded::parse(format!("x={s}").as_bytes())
                        .next()
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default()
                };
                // RFC 6749 §2.3.1 first, then the raw values for clients
                // that skip the encoding.
                let (did, dsecret) = (decoded(id), decoded(secret));
                if let Some(c) = self.check(&did, &dsecret) {
                    return Ok((c, AuthMethod::Basic));
                }
                self.check(id, secret)
                    .map(|c| (c, AuthMethod::Basic))
                    .ok_or(AuthFailure::Rejected)
            }
        }
    }
}

/// A high-entropy client secret (32 random bytes, base64url).
pub fn generate_secret() -> String {
    let mut b = [0u8; 32];
    let _ = aws_lc_rs::rand::fill(&mut b);
    gatewise_core::jose::b64url_encode(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> Registry {
        Registry::new(vec![ClientSpec::machine(
            "my-app",
            "p+a/s=s:w%rd",
            &[],
            &[],
        )])
    }

    fn basic(id: &str, secret: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    }

    #[test]
    fn basic_accepts_rfc_encoding_raw_values_and_over_encoding() {
        let r = reg();
        // RFC 6749 §2.3.1: form-urlencoded first.
        assert!(
            r.authenticate(Some(&basic("my-app", "p%2Ba%2Fs%3Ds%3Aw%25rd")), &[])
                .is_ok()
        );
        // openid-client also encodes `-`.
        assert!(
            r.authenticate(Some(&basic("my%2Dapp", "p%2Ba%2Fs%3Ds%3Aw%25rd")), &[])
                .is_ok()
        );
        // requests-oauthlib sends the raw secret (which here contains `:`):
        // split at the first colon, raw comparison.
        assert!(
            r.authenticate(Some(&basic("my-app", "p+a/s=s:w%rd")), &[])
                .is_ok()
        );
        assert_eq!(
            r.authenticate(Some(&basic("my-app", "wrong")), &[])
                .unwrap_err(),
            AuthFailure::Rejected
        );
        assert_eq!(
            r.authenticate(Some("Basic !!!"), &[]).unwrap_err(),
            AuthFailure::Malformed
        );
    }

    #[test]
    fn a_configured_sha256_authenticates_the_secret() {
        let r = Registry::new(vec![ClientSpec {
            secret_sha256: Some(gatewise_core::secret::sha256(b"from-a-vault")),
            ..ClientSpec::machine("hashed", "", &[], &[])
        }]);
        assert!(
            r.authenticate(Some(&basic("hashed", "from-a-vault")), &[])
                .is_ok()
        );
        assert!(r.authenticate(Some(&basic("hashed", "")), &[]).is_err());
    }

    #[test]
    fn one_method_per_request() {
        let r = reg();
        let form = vec![
            ("client_id".to_string(), "my-app".to_string()),
            ("client_secret".to_string(), "p+a/s=s:w%rd".to_string()),
        ];
        assert_eq!(r.authenticate(None, &form).unwrap().1, AuthMethod::Post);
        assert_eq!(
            r.authenticate(Some(&basic("my-app", "x")), &form)
                .unwrap_err(),
            AuthFailure::TwoMethods
        );
        assert_eq!(r.authenticate(None, &[]).unwrap_err(), AuthFailure::Missing);
    }
}
