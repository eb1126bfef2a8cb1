//! Registered clients and client authentication (RFC 6749 §2.3).
//!
//! Secrets are kept as HMAC-SHA-256 (of their SHA-256) under a per-process
//! key, never in clear, and compared in constant time. A client configured
//! with only the SHA-256 of its secret (`secret_sha256`) is hashed the same
//! way from that digest. `client_secret_basic` follows RFC
//! 6749 §2.3.1 (id and secret form-urlencoded before Base64) and also
//! accepts clients that skip the encoding (requests-oauthlib) or encode more
//! than needed (openid-client encodes `-`): both decodings are tried.
//!
//! `private_key_jwt` (RFC 7523 §2.2, OpenID Connect Core §9): a client
//! registered with a JWK Set signs an assertion (RS256, ES256 or EdDSA)
//! whose `iss` and `sub` are its `client_id`, whose `aud` is the token
//! endpoint (or the issuer), with `exp` at most five minutes ahead and a
//! `jti` the server accepts once ([`Registry::authenticate_at`] checks the
//! assertion; the caller records the `jti` in the state store).

use crate::faults::Fault;
use aws_lc_rs::hmac;
use base64::Engine as _;
use gatewise_core::jose::Alg;
use gatewise_core::jose::check::{self, Policy};
use gatewise_core::jose::keyset::KeySet;

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Algorithms accepted for client assertions.
pub const ASSERTION_ALGS: [Alg; 3] = [Alg::RS256, Alg::ES256, Alg::EdDSA];

/// Longest an assertion may live: `exp` at most this far ahead (seconds).
pub const ASSERTION_MAX_AHEAD: u64 = 300;

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
    /// `private_key_jwt` (RFC 7523 §2.2).
    PrivateKeyJwt,
}

/// What an accepted client assertion leaves to record: its `jti` must be
/// refused until `exp` (RFC 7523 §3, item 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// The assertion's `jti`.
    pub jti: String,
    /// Its `exp` (Unix seconds).
    pub exp: u64,
}

/// What a client assertion is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionPolicy {
    /// Now (Unix seconds).
    pub now: u64,
    /// Accepted `aud` values: the token endpoint URL, the issuer, and the
    /// endpoint called.
    pub audiences: Vec<String>,
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
    /// The client's JWK Set (JSON text) for `private_key_jwt`; such a
    /// client has no secret.
    pub jwks: Option<String>,
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
            jwks: None,
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
    keys: Option<KeySet>,
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
    /// A client assertion was refused; the reason (no secret in it).
    Assertion(String),
}

impl ClientSpec {
    /// Whether the client may use `grant_type` (any, when none are listed).
    pub fn allows(&self, grant_type: &str) -> bool {
        self.grant_types.is_empty() || self.grant_types.iter().any(|g| g == grant_type)
    }
}

impl Registry {
    /// Registers `specs`; secrets are hashed now and dropped, JWK Sets
    /// parsed. A JWK Set without a usable key is an error.
    pub fn new(specs: Vec<ClientSpec>) -> Result<Registry, crate::AuthzError> {
        let mut seed = [0u8; 32];
        let _ = aws_lc_rs::rand::fill(&mut seed);
        let key = hmac::Key::new(hmac::HMAC_SHA256, &seed);
        let clients = specs
            .into_iter()
            .map(|mut spec| {
                let keys = match &spec.jwks {
                    Some(doc) => {
                        let set = KeySet::from_jwks(doc.as_bytes(), &ASSERTION_ALGS).map_err(
                            |e| crate::AuthzError::Config(format!("client `{}`: {e}", spec.id)),
                        )?;
                        if set.is_empty() {
                            return Err(crate::AuthzError::Config(format!(
                                "client `{}`: the JWK Set has no public RS256, ES256 or EdDSA signing key{}",
                                spec.id,
                                if set.skipped.is_empty() {
                                    String::new()
                                } else {
                                    format!(" ({})", set.skipped.join("; "))
                                }
                            )));
                        }
                        Some(set)
                    }
                    None => None,
                };
                let digest = spec
                    .secret_sha256
                    .unwrap_or_else(|| gatewise_core::secret::sha256(spec.secret.as_bytes()));
                let secret_mac = hmac::sign(&key, &digest).as_ref().to_vec();
                spec.secret = String::new();
                Ok(Client {
                    spec,
                    secret_mac,
                    keys,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Registry { key, clients })
    }

    /// The client with this id.
    pub fn get(&self, id: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.spec.id == id)
    }

    fn check(&self, id: &str, secret: &str) -> Option<&Client> {
        let c = self.get(id)?;
        // A client with keys authenticates with assertions only.
        if c.keys.is_some() {
            return None;
        }
        // Constant-time: hmac::verify compares tags in constant time.
        let digest = gatewise_core::secret::sha256(secret.as_bytes());
        hmac::verify(&self.key, &digest, &c.secret_mac).ok()?;
        Some(c)
    }

    /// Authenticates the caller from the `Authorization` header value and
    /// the form, with exactly one method, `private_key_jwt` included: the
    /// assertion's signature and claims are checked against `policy`; the
    /// caller records the returned [`Replay`] (RFC 7523 §3, item 7).
    pub fn authenticate_at(
        &self,
        authorization: Option<&str>,
        form: &[(String, String)],
        policy: &AssertionPolicy,
    ) -> Result<(&Client, AuthMethod, Option<Replay>), AuthFailure> {
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let assertion = get("client_assertion");
        let assertion_type = get("client_assertion_type");
        if assertion.is_none() && assertion_type.is_none() {
            return self
                .authenticate(authorization, form)
                .map(|(c, m)| (c, m, None));
        }
        // RFC 6749 §2.3: one method per request.
        if authorization.is_some() || get("client_secret").is_some() {
            return Err(AuthFailure::TwoMethods);
        }
        if assertion_type != Some(JWT_BEARER) {
            return Err(AuthFailure::Assertion(format!(
                "client_assertion_type must be {JWT_BEARER} (RFC 7523 §2.2)"
            )));
        }
        let Some(assertion) = assertion else {
            return Err(AuthFailure::Assertion("client_assertion is missing".into()));
        };
        self.check_assertion(assertion, get("client_id"), policy)
            .map(|(c, r)| (c, AuthMethod::PrivateKeyJwt, Some(r)))
    }

    /// RFC 7523 §3 and OpenID Connect Core §9 on a client assertion.
    fn check_assertion(
        &self,
        assertion: &str,
        client_id: Option<&str>,
        policy: &AssertionPolicy,
    ) -> Result<(&Client, Replay), AuthFailure> {
        let refuse = |m: &str| AuthFailure::Assertion(m.to_owned());
        let jwt_policy = Policy {
            issuer: None,
            audiences: policy.audiences.clone(),
            leeway: 60,
            require_at_jwt: false,
            require_exp: true,
            algorithms: ASSERTION_ALGS.to_vec(),
        };
        let parsed = check::parse(assertion, &jwt_policy)
            .map_err(|e| AuthFailure::Assertion(format!("client_assertion: {e}")))?;
        let (Some(iss), Some(sub)) = (&parsed.claims.iss, &parsed.claims.sub) else {
            return Err(refuse(
                "the assertion needs iss and sub, both the client_id (RFC 7523 §3)",
            ));
        };
        if iss != sub {
            return Err(refuse(
                "the assertion's iss and sub differ; both must be the client_id (RFC 7523 §3, OpenID Connect Core §9)",
            ));
        }
        if client_id.is_some_and(|id| id != iss) {
            return Err(refuse("client_id differs from the assertion's iss"));
        }
        let client = self.get(iss).ok_or(AuthFailure::Rejected)?;
        let Some(keys) = &client.keys else {
            return Err(refuse(
                "this client is not registered for private_key_jwt (no JWK Set)",
            ));
        };
        let candidates = keys.candidates(parsed.header.kid.as_deref(), parsed.header.alg);
        if !candidates.iter().any(|k| parsed.check_signature(k).is_ok()) {
            return Err(refuse(
                "the assertion's signature does not verify with the client's keys",
            ));
        }
        let header = parsed.header.clone();
        let claims = parsed.claims.clone();
        check::validate(&header, &claims, &jwt_policy, policy.now)
            .map_err(|e| AuthFailure::Assertion(format!("client_assertion: {e}")))?;
        let exp = claims.exp.unwrap_or(0.0);
        if exp > (policy.now + ASSERTION_MAX_AHEAD) as f64 {
            return Err(refuse(
                "the assertion's exp is more than 5 minutes ahead; assertions are short-lived (RFC 7523 §3)",
            ));
        }
        let Some(jti) = claims.jti.filter(|j| !j.is_empty()) else {
            return Err(refuse(
                "the assertion has no jti; it is needed to refuse replays (RFC 7523 §3, OpenID Connect Core §9)",
            ));
        };
        Ok((
            client,
            Replay {
                jti,
                exp: exp.max(0.0) as u64,
            },
        ))
    }

    /// Authenticates the caller from the `Authorization` header value and
    /// the form, with exactly one method (client secrets and `none`; see
    /// [`Registry::authenticate_at`] for `private_key_jwt`).
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
            (None, None) if get("client_assertion").is_some() => Err(AuthFailure::Assertion(
                "client assertions are not accepted here".into(),
            )),
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
        .unwrap()
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
        }])
        .unwrap();
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
