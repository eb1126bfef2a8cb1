//! Real Rust clients nobody here wrote against `gatewise authz` on
//! 127.0.0.1: the `oauth2` crate (client_credentials, authorization_code with
//! PKCE for a public native client, introspection) and the `openidconnect`
//! crate (discovery with the JWKS, authorization_code with PKCE for a
//! confidential client, the ID token verified: signature with a discovered
//! key, issuer, audience, nonce, at_hash).
//!
//! Both crates run without their default features; their HTTP goes through
//! [`send`], a small client on the workspace's reqwest that, as the crates'
//! own docs advise, never follows redirects.

#[macro_use]
mod support;

use support::Backend;

mod interop_support;

use interop_support::{TRICKY_ID, TRICKY_SECRET, WEB_REDIRECT, sign_in, start};
use oauth2::basic::{BasicClient, BasicErrorResponse, BasicErrorResponseType};
use oauth2::{
    AccessToken, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, HttpRequest,
    HttpResponse, IntrospectionUrl, PkceCodeChallenge, RedirectUrl, RequestTokenError,
    RevocationUrl, Scope, StandardRevocableToken, TokenIntrospectionResponse, TokenResponse,
    TokenUrl,
};
use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreResponseType};
use openidconnect::{AccessTokenHash, AuthenticationFlow, IssuerUrl, Nonce, TokenResponse as _};
use std::collections::HashMap;

/// A failed exchange, as the crates' `AsyncHttpClient` wants it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct HttpError(String);

/// The HTTP client handed to `oauth2` and `openidconnect`: one request on
/// reqwest, no redirects followed.
async fn send(req: HttpRequest) -> Result<HttpResponse, HttpError> {
    let err = |e: &dyn std::fmt::Display| HttpError(e.to_string());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| err(&e))?;
    let req = reqwest::Request::try_from(req).map_err(|e| err(&e))?;
    let resp = http.execute(req).await.map_err(|e| err(&e))?;
    let mut out = oauth2::http::Response::builder().status(resp.status());
    for (name, value) in resp.headers() {
        out = out.header(name, value);
    }
    let body = resp.bytes().await.map_err(|e| err(&e))?.to_vec();
    out.body(body).map_err(|e| err(&e))
}

type TokenError = RequestTokenError<HttpError, BasicErrorResponse>;

/// The OAuth error code the server answered with, if that is what failed.
fn server_error(e: &TokenError) -> Option<BasicErrorResponseType> {
    match e {
        RequestTokenError::ServerResponse(r) => Some(r.error().clone()),
        _ => None,
    }
}

/// A token request's failure, for a panic message: Display, never Debug,
/// whose `Parse` variant holds the response body (tokens included).
fn shown<E: std::error::Error>(e: &E) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(&format!(": {c}"));
        cause = c.source();
    }
    out
}

/// The JWT payload of an access token (its signature is the server's own
/// tests' business; here it is what the client received).
fn payload(jwt: &str) -> serde_json::Value {
    let part = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&gatewise_core::jose::b64url_decode(part).unwrap()).unwrap()
}

fn query(u: &url::Url) -> HashMap<String, String> {
    u.query_pairs().into_owned().collect()
}

async fn oauth2_client_credentials(backend: &Backend) {
    let s = start(backend).await;
    let token_url = TokenUrl::new(format!("{}/token", s.base)).unwrap();
    for (id, secret) in [
        ("demo-client", s.secret("demo-client")),
        // oauth2 form-urlencodes id and secret (RFC 6749 §2.3.1).
        (TRICKY_ID, TRICKY_SECRET),
    ] {
        let client = BasicClient::new(ClientId::new(id.into()))
            .set_client_secret(ClientSecret::new(secret.into()))
            .set_token_uri(token_url.clone());
        let tok = client
            .exchange_client_credentials()
            .add_scope(Scope::new("orders.read".into()))
            .request_async(&send)
            .await
            .unwrap_or_else(|e| panic!("oauth2 client_credentials as {id}: {}", shown(&e)));
        assert_eq!(tok.token_type().as_ref(), "bearer");
        assert_eq!(tok.expires_in(), Some(std::time::Duration::from_secs(3600)));
        assert_eq!(
            tok.scopes()
                .map(|s| s.iter().map(|x| x.to_string()).collect::<Vec<_>>()),
            Some(vec!["orders.read".to_owned()])
        );
        let claims = payload(tok.access_token().secret());
        assert_eq!(claims["client_id"], id);
        assert_eq!(claims["iss"], s.base.as_str());
        assert_eq!(claims["aud"], "https://api.example.test");
    }
    // A wrong secret: the crate reports the server's invalid_client.
    let err = BasicClient::new(ClientId::new("demo-client".into()))
        .set_client_secret(ClientSecret::new("not-the-secret".into()))
        .set_token_uri(token_url)
        .exchange_client_credentials()
        .request_async(&send)
        .await
        .unwrap_err();
    assert_eq!(
        server_error(&err),
        Some(BasicErrorResponseType::InvalidClient)
    );
}

async fn oauth2_introspection_and_its_https_only_revocation(backend: &Backend) {
    let s = start(backend).await;
    let client = BasicClient::new(ClientId::new("demo-opaque".into()))
        .set_client_secret(ClientSecret::new(s.secret("demo-opaque").into()))
        .set_token_uri(TokenUrl::new(format!("{}/token", s.base)).unwrap())
        .set_introspection_url(IntrospectionUrl::new(format!("{}/introspect", s.base)).unwrap())
        .set_revocation_url(RevocationUrl::new(format!("{}/revoke", s.base)).unwrap());
    let tok = client
        .exchange_client_credentials()
        .request_async(&send)
        .await
        .unwrap();
    let intro = client
        .introspect(tok.access_token())
        .set_token_type_hint("access_token")
        .request_async(&send)
        .await
        .unwrap();
    assert!(intro.active());
    assert_eq!(intro.client_id().map(|c| c.as_str()), Some("demo-opaque"));
    assert_eq!(
        intro.aud().cloned(),
        Some(vec!["https://api.example.test".to_owned()])
    );
    assert_eq!(intro.iss(), Some(s.base.as_str()));
    let unknown = AccessToken::new("not-a-token".into());
    let intro = client
        .introspect(&unknown)
        .request_async(&send)
        .await
        .unwrap();
    assert!(!intro.active(), "RFC 7662 §2.2: unknown is inactive");
    // The crate itself refuses to revoke over http (RFC 7009 §2: "The client
    // MUST verify that the URL is an HTTPS URL"), even on loopback: a client
    // rule, not a server fault. The server's revocation is exercised by
    // openid-client (tests/interop_openid_client.rs).
    let refused = client.revoke_token(StandardRevocableToken::AccessToken(
        tok.access_token().clone(),
    ));
    assert!(
        matches!(refused, Err(oauth2::ConfigurationError::InsecureUrl(_))),
        "oauth2 changed its http revocation rule; revoke here now: {refused:?}"
    );
}

async fn oauth2_code_flow_with_pkce_for_a_public_client_on_any_loopback_port(backend: &Backend) {
    let s = start(backend).await;
    // demo-native is registered as http://127.0.0.1/callback: any port
    // matches (RFC 8252 §7.3). No secret: token endpoint auth `none`.
    let redirect = "http://127.0.0.1:49152/callback";
    let client = BasicClient::new(ClientId::new("demo-native".into()))
        .set_auth_uri(AuthUrl::new(format!("{}/authorize", s.base)).unwrap())
        .set_token_uri(TokenUrl::new(format!("{}/token", s.base)).unwrap())
        .set_redirect_uri(RedirectUrl::new(redirect.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("orders.read".into()))
        .set_pkce_challenge(challenge)
        .url();
    let back = query(&sign_in(url.as_str(), redirect).await);
    assert_eq!(back.get("state"), Some(state.secret()));
    assert_eq!(back.get("iss"), Some(&s.base), "RFC 9207");
    let tok = client
        .exchange_code(AuthorizationCode::new(back["code"].clone()))
        .set_pkce_verifier(verifier)
        .request_async(&send)
        .await
        .unwrap_or_else(|e| panic!("oauth2 code exchange: {}", shown(&e)));
    let claims = payload(tok.access_token().secret());
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["client_id"], "demo-native");
    let refresh = tok.refresh_token().expect("a refresh token").clone();
    let again = client
        .exchange_refresh_token(&refresh)
        .request_async(&send)
        .await
        .unwrap();
    assert_ne!(
        again.refresh_token().map(|r| r.secret()),
        Some(refresh.secret()),
        "refresh tokens rotate"
    );
    // The code is single use.
    let err = client
        .exchange_code(AuthorizationCode::new(back["code"].clone()))
        .request_async(&send)
        .await
        .unwrap_err();
    assert_eq!(
        server_error(&err),
        Some(BasicErrorResponseType::InvalidGrant)
    );
}

async fn openidconnect_code_flow_with_pkce_verifies_the_id_token(backend: &Backend) {
    let s = start(backend).await;
    // Discovery (OpenID Connect Discovery 1.0 §4, with the issuer check of
    // §4.3) and the JWKS it names.
    let meta = CoreProviderMetadata::discover_async(IssuerUrl::new(s.base.clone()).unwrap(), &send)
        .await
        .unwrap_or_else(|e| panic!("openidconnect discovery: {e:?}"));
    let client = CoreClient::from_provider_metadata(
        meta,
        ClientId::new("demo-web".into()),
        Some(ClientSecret::new(s.secret("demo-web").into())),
    )
    .set_redirect_uri(RedirectUrl::new(WEB_REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("orders.read".into()))
        .set_pkce_challenge(challenge)
        .url();
    let back = query(&sign_in(url.as_str(), WEB_REDIRECT).await);
    assert_eq!(back.get("state"), Some(state.secret()));
    assert_eq!(back.get("iss"), Some(&s.base), "RFC 9207");
    let tok = client
        .exchange_code(AuthorizationCode::new(back["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&send)
        .await
        .unwrap_or_else(|e| panic!("openidconnect code exchange: {}", shown(&e)));
    let id_token = tok.id_token().expect("an ID token (scope openid)");

    // Signature with the discovered key, iss, aud, exp, nonce.
    let id_verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&id_verifier, &nonce)
        .unwrap_or_else(|e| panic!("openidconnect rejects the ID token: {e:?}"));
    assert_eq!(claims.subject().as_str(), "alice");
    assert_eq!(claims.issuer().as_str(), s.base);
    assert_eq!(
        claims
            .audiences()
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>(),
        ["demo-web"]
    );
    assert_eq!(claims.nonce().map(|n| n.secret()), Some(nonce.secret()));
    assert!(claims.auth_time().is_some());
    // at_hash (OIDC Core §3.1.3.6), as the crate's docs show it.
    let expected = AccessTokenHash::from_token(
        tok.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected));

    // The verification can fail: another nonce, another audience.
    assert!(
        id_token
            .claims(&id_verifier, &Nonce::new("another".into()))
            .is_err()
    );
    let other = CoreClient::from_provider_metadata(
        CoreProviderMetadata::discover_async(IssuerUrl::new(s.base.clone()).unwrap(), &send)
            .await
            .unwrap(),
        ClientId::new("demo-client".into()),
        None,
    );
    assert!(id_token.claims(&other.id_token_verifier(), &nonce).is_err());
}

async fn openidconnect_client_credentials(backend: &Backend) {
    let s = start(backend).await;
    let meta = CoreProviderMetadata::discover_async(IssuerUrl::new(s.base.clone()).unwrap(), &send)
        .await
        .unwrap();
    let client = CoreClient::from_provider_metadata(
        meta,
        ClientId::new("demo-client".into()),
        Some(ClientSecret::new(s.secret("demo-client").into())),
    );
    let tok = client
        .exchange_client_credentials()
        .unwrap()
        .add_scope(Scope::new("orders.write".into()))
        .request_async(&send)
        .await
        .unwrap_or_else(|e| panic!("openidconnect client_credentials: {}", shown(&e)));
    assert!(tok.id_token().is_none(), "no user, no ID token");
    let claims = payload(tok.access_token().secret());
    assert_eq!(claims["scope"], "orders.write");
    assert_eq!(claims["client_id"], "demo-client");
}

on_both_stores!(
    oauth2_client_credentials,
    oauth2_introspection_and_its_https_only_revocation,
    oauth2_code_flow_with_pkce_for_a_public_client_on_any_loopback_port,
    openidconnect_code_flow_with_pkce_verifies_the_id_token,
    openidconnect_client_credentials,
);
