//! Building the OAuth requests the live doctor sends: the token request
//! for each grant (client_credentials, refresh_token, authorization_code,
//! password) with client authentication (RFC 6749 §2.3; `private_key_jwt`,
//! RFC 7523 §2.2) and the two well-known
//! metadata URLs of an issuer (RFC 8414 §3.1, OpenID Connect Discovery §4).

use crate::ProbeError;
use crate::client_key::{self, ClientKey};
use crate::fetch::Request;
use base64::Engine as _;
use std::sync::Arc;
use url::Url;

/// The grant the token request uses, with the values it sends. Secret
/// values (codes, verifiers, refresh tokens, passwords) are never shown by
/// `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub enum Grant {
    /// RFC 6749 §4.4.
    ClientCredentials,
    /// RFC 6749 §6.
    RefreshToken {
        /// The refresh token to redeem.
        refresh_token: String,
    },
    /// RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.5).
    AuthorizationCode {
        /// The authorization code.
        code: String,
        /// The redirect URI of the authorization request, when it had one.
        redirect_uri: Option<String>,
        /// The PKCE code verifier, when the request had a challenge.
        code_verifier: Option<String>,
    },
    /// RFC 8628 §3.4: redeem a device code (polled until the user decides).
    DeviceCode {
        /// The device code of the device authorization response.
        device_code: String,
    },
    /// RFC 6749 §4.3 (removed in OAuth 2.1; RFC 9700 §2.4 forbids it).
    Password {
        /// The resource owner's user name.
        username: String,
        /// The resource owner's password.
        password: String,
    },
}

impl Grant {
    /// The `grant_type` value.
    pub fn name(&self) -> &'static str {
        match self {
            Grant::ClientCredentials => "client_credentials",
            Grant::RefreshToken { .. } => "refresh_token",
            Grant::AuthorizationCode { .. } => "authorization_code",
            Grant::Password { .. } => "password",
            Grant::DeviceCode { .. } => gatewise_core::diagnose::device::GRANT_TYPE,
        }
    }

    /// The grant's own form parameters, in order.
    fn params(&self) -> Vec<(&'static str, &str)> {
        match self {
            Grant::ClientCredentials => Vec::new(),
            Grant::RefreshToken { refresh_token } => vec![("refresh_token", refresh_token)],
            Grant::AuthorizationCode {
                code,
                redirect_uri,
                code_verifier,
            } => {
                let mut p = vec![("code", code.as_str())];
                if let Some(r) = redirect_uri {
                    p.push(("redirect_uri", r));
                }
                if let Some(v) = code_verifier {
                    p.push(("code_verifier", v));
                }
                p
            }
            Grant::Password { username, password } => {
                vec![("username", username), ("password", password)]
            }
            Grant::DeviceCode { device_code } => vec![("device_code", device_code)],
        }
    }
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Grant::AuthorizationCode { redirect_uri, .. } => f
                .debug_struct("AuthorizationCode")
                .field("code", &"…")
                .field("redirect_uri", redirect_uri)
                .finish_non_exhaustive(),
            Grant::Password { username, .. } => f
                .debug_struct("Password")
                .field("username", username)
                .finish_non_exhaustive(),
            Grant::DeviceCode { .. } => f
                .debug_struct("DeviceCode")
                .field("device_code", &"…")
                .finish(),
            other => f.write_str(other.name()),
        }
    }
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with the form-urlencoded id and secret (RFC 6749 §2.3.1).
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
    /// A public client: only `client_id` in the body.
    None,
    /// A JWT client assertion signed with the client's private key, sent as
    /// `client_assertion_type` and `client_assertion` (RFC 7523 §2.2,
    /// OpenID Connect Core §9); a fresh one for every request.
    PrivateKeyJwt(Arc<ClientKey>),
}

impl ClientAuth {
    /// The RFC 8414 / RFC 7591 method name.
    pub fn name(&self) -> &'static str {
        match self {
            ClientAuth::Basic => "client_secret_basic",
            ClientAuth::Post => "client_secret_post",
            ClientAuth::None => "none",
            ClientAuth::PrivateKeyJwt(_) => "private_key_jwt",
        }
    }
}

/// What the token request asks for.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenParams {
    /// The grant.
    pub grant: Grant,
    /// The client id.
    pub client_id: String,
    /// The client secret (needed for `Basic` and `Post`; the private key
    /// of `private_key_jwt` is in [`ClientAuth::PrivateKeyJwt`]).
    pub client_secret: Option<String>,
    /// The authentication method.
    pub auth: ClientAuth,
    /// `scope`, space-delimited.
    pub scope: Option<String>,
    /// `resource` indicators (RFC 8707), in order.
    pub resources: Vec<String>,
    /// `audience` (a common non-standard parameter: Auth0, Okta, token exchange).
    pub audience: Option<String>,
}

impl std::fmt::Debug for TokenParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenParams")
            .field("grant", &self.grant)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "…"))
            .field("auth", &self.auth)
            .field("scope", &self.scope)
            .field("resources", &self.resources)
            .field("audience", &self.audience)
            .finish()
    }
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))`, RFC 6749 §2.3.1 and App. B.
pub fn basic_authorization(client_id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            enc(client_id),
            enc(secret)
        ))
    )
}

impl TokenParams {
    /// The token request to `token_url`. `now` (Unix seconds) dates a
    /// `private_key_jwt` assertion; it fails only when that cannot be signed.
    pub fn request(&self, token_url: &Url, now: u64) -> Result<Request, ProbeError> {
        self.request_via(token_url, token_url, now)
    }

    /// The token request sent to `url` for the token endpoint
    /// `token_endpoint` (they differ when it goes through a gateway,
    /// `--via`): a client assertion's `aud` is always the token endpoint.
    pub fn request_via(
        &self,
        url: &Url,
        token_endpoint: &Url,
        now: u64,
    ) -> Result<Request, ProbeError> {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", self.grant.name());
        for (k, v) in self.grant.params() {
            form.append_pair(k, v);
        }
        self.finish(form, url, token_endpoint, now)
    }

    /// The device authorization request (RFC 8628 §3.1) to `url`: the
    /// scope, resources and audience, with the client authenticated as at
    /// the token endpoint `token_endpoint` (RFC 8628 §3.1 refers to RFC 6749
    /// §2.3; a client assertion's `aud` is the token endpoint, RFC 7523 §3).
    pub fn device_authorization_request(
        &self,
        url: &Url,
        token_endpoint: &Url,
        now: u64,
    ) -> Result<Request, ProbeError> {
        self.finish(
            url::form_urlencoded::Serializer::new(String::new()),
            url,
            token_endpoint,
            now,
        )
    }

    /// The common parameters and the client authentication.
    fn finish(
        &self,
        mut form: url::form_urlencoded::Serializer<'_, String>,
        url: &Url,
        token_endpoint: &Url,
        now: u64,
    ) -> Result<Request, ProbeError> {
        if let Some(s) = &self.scope {
            form.append_pair("scope", s);
        }
        for r in &self.resources {
            form.append_pair("resource", r);
        }
        if let Some(a) = &self.audience {
            form.append_pair("audience", a);
        }
        let mut headers = vec![
            (
                "Content-Type".to_string(),
                "application/x-www-form-urlencoded".to_string(),
            ),
            ("Accept".to_string(), "application/json".to_string()),
        ];
        match &self.auth {
            ClientAuth::Basic => headers.push((
                "Authorization".into(),
                basic_authorization(&self.client_id, self.client_secret.as_deref().unwrap_or("")),
            )),
            ClientAuth::Post => {
                form.append_pair("client_id", &self.client_id);
                form.append_pair("client_secret", self.client_secret.as_deref().unwrap_or(""));
            }
            ClientAuth::None => {
                form.append_pair("client_id", &self.client_id);
            }
            ClientAuth::PrivateKeyJwt(key) => {
                // RFC 7523 §2.2 and OpenID Connect Core §9: client_id is
                // optional next to the assertion; sending it helps servers
                // that look the client up before reading the JWT.
                let assertion = key.assertion(&self.client_id, token_endpoint.as_str(), now)?;
                form.append_pair("client_id", &self.client_id);
                form.append_pair("client_assertion_type", client_key::JWT_BEARER);
                form.append_pair("client_assertion", &assertion);
            }
        }
        Ok(Request {
            method: "POST".into(),
            url: url.clone(),
            headers,
            body: form.finish().into_bytes(),
        })
    }
}

/// The metadata URLs of an issuer: RFC 8414 (the well-known suffix inserted
/// between host and path) and OpenID Connect (appended to the issuer).
pub fn well_known_urls(issuer: &str) -> Result<(Url, Url), ProbeError> {
    let bad = |reason: String| ProbeError::Url {
        url: issuer.to_string(),
        reason,
    };
    let u = Url::parse(issuer).map_err(|e| bad(e.to_string()))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(bad("an issuer is an https:// URL".into()));
    }
    let origin = u.origin().ascii_serialization();
    let path = u.path().trim_end_matches('/');
    let rfc8414 = format!("{origin}/.well-known/oauth-authorization-server{path}");
    let oidc = format!("{origin}{path}/.well-known/openid-configuration");
    Ok((
        Url::parse(&rfc8414).map_err(|e| bad(e.to_string()))?,
        Url::parse(&oidc).map_err(|e| bad(e.to_string()))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_forms() {
        let (a, b) = well_known_urls("https://as.test/tenant1/").unwrap();
        assert_eq!(
            a.as_str(),
            "https://as.test/.well-known/oauth-authorization-server/tenant1"
        );
        assert_eq!(
            b.as_str(),
            "https://as.test/tenant1/.well-known/openid-configuration"
        );
        let (a, b) = well_known_urls("http://127.0.0.1:9100").unwrap();
        assert_eq!(
            a.as_str(),
            "http://127.0.0.1:9100/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            b.as_str(),
            "http://127.0.0.1:9100/.well-known/openid-configuration"
        );
    }

    #[test]
    fn basic_encodes_before_base64() {
        // RFC 6749 App. B: '+' ':' '/' '=' and spaces are percent-encoded first.
        let h = basic_authorization("my client", "s3cr3t+/=");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(h.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            "my+client:s3cr3t%2B%2F%3D"
        );
    }

    #[test]
    fn post_puts_credentials_in_the_body() {
        let p = TokenParams {
            grant: Grant::ClientCredentials,
            client_id: "svc".into(),
            client_secret: Some("pw".into()),
            auth: ClientAuth::Post,
            scope: Some("a b".into()),
            resources: vec!["https://api.test".into(), "https://b.test".into()],
            audience: None,
        };
        let r = p
            .request(&Url::parse("https://as.test/token").unwrap(), 0)
            .unwrap();
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            "grant_type=client_credentials&scope=a+b&resource=https%3A%2F%2Fapi.test&resource=https%3A%2F%2Fb.test&client_id=svc&client_secret=pw"
        );
        assert!(!r.headers.iter().any(|(n, _)| n == "Authorization"));
    }

    #[test]
    fn grants_send_their_parameters() {
        let mut p = TokenParams {
            grant: Grant::AuthorizationCode {
                code: "c0de".into(),
                redirect_uri: Some("http://127.0.0.1:8000/cb".into()),
                code_verifier: Some("v".into()),
            },
            client_id: "web".into(),
            client_secret: None,
            auth: ClientAuth::None,
            scope: None,
            resources: vec![],
            audience: None,
        };
        let url = Url::parse("https://as.test/token").unwrap();
        assert_eq!(
            String::from_utf8(p.request(&url, 0).unwrap().body).unwrap(),
            "grant_type=authorization_code&code=c0de&redirect_uri=http%3A%2F%2F127.0.0.1%3A8000%2Fcb&code_verifier=v&client_id=web"
        );
        p.grant = Grant::RefreshToken {
            refresh_token: "rt".into(),
        };
        assert_eq!(
            String::from_utf8(p.request(&url, 0).unwrap().body).unwrap(),
            "grant_type=refresh_token&refresh_token=rt&client_id=web"
        );
        p.grant = Grant::Password {
            username: "alice".into(),
            password: "pw".into(),
        };
        assert!(!format!("{p:?}").contains("pw\""), "{p:?}");
        assert_eq!(
            String::from_utf8(p.request(&url, 0).unwrap().body).unwrap(),
            "grant_type=password&username=alice&password=pw&client_id=web"
        );
    }

    #[test]
    fn private_key_jwt_sends_a_fresh_assertion_for_the_token_endpoint() {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let doc = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rng,
        )
        .unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(doc.as_ref())
        );
        let key = ClientKey::parse("k.pem", pem.as_bytes(), Some("kid-1"), None).unwrap();
        let p = TokenParams {
            grant: Grant::ClientCredentials,
            client_id: "svc".into(),
            client_secret: None,
            auth: ClientAuth::PrivateKeyJwt(Arc::new(key)),
            scope: None,
            resources: vec![],
            audience: None,
        };
        assert_eq!(p.auth.name(), "private_key_jwt");
        let token = Url::parse("https://as.test/token").unwrap();
        let gateway = Url::parse("http://gw.test/token").unwrap();
        let r = p.request_via(&gateway, &token, 1_700_000_000).unwrap();
        assert_eq!(r.url, gateway);
        assert!(!r.headers.iter().any(|(n, _)| n == "Authorization"));
        let form: Vec<(String, String)> =
            url::form_urlencoded::parse(&r.body).into_owned().collect();
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("client_id").as_deref(), Some("svc"));
        assert_eq!(
            get("client_assertion_type").as_deref(),
            Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        );
        let assertion = get("client_assertion").unwrap();
        let claims = gatewise_core::jose::jwt::decode(&assertion).unwrap().claims;
        assert_eq!(
            claims["aud"], "https://as.test/token",
            "aud is the token endpoint, not the gateway"
        );
        assert_eq!(claims["exp"], 1_700_000_060);
        // The core's CA-06 checks find nothing wrong with it.
        let mut found = Vec::new();
        gatewise_core::diagnose::assertion::judge(&form, Some(1_700_000_001), &mut found);
        assert!(found.is_empty(), "{found:?}");
        // Masked in transcripts; Debug shows no key material.
        let masked = crate::mask::text(std::str::from_utf8(&r.body).unwrap());
        assert!(!masked.contains(&assertion), "{masked}");
        assert!(!format!("{p:?}").contains("BEGIN"));
        // A new jti for the next request.
        let again = p.request(&token, 1_700_000_000).unwrap();
        assert_ne!(again.body, r.body);
    }
}
