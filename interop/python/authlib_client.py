"""Authlib (PyPI `authlib`, its requests integration) against gatewise authz.

Flows (the second argument):
  discovery           the metadata, validated by Authlib's RFC 8414, RFC 9207
                      and OpenID Connect Discovery models
  client_credentials  RFC 6749 §4.4, client_secret_basic
  code                authorization_code with PKCE S256 (RFC 7636): the login
                      form is driven over HTTP, the code read from the
                      redirect's Location; the ID token verified by Authlib
                      (signature from the JWKS, iss, aud, nonce, at_hash);
                      the refresh token introspected (RFC 7662 §2.1); then
                      refresh (rotation), and the rotated refresh token
                      introspected (inactive) and presented again (reuse
                      detection)
  introspect          client_credentials, then RFC 7662 introspection of
                      that token and of an unknown one

See common.py for the inputs and the output.
"""

from urllib.parse import parse_qs, urlsplit

import authlib
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.oauth2 import rfc8414, rfc9207
from authlib.oidc import discovery as oidc_discovery
from authlib.oidc.core import CodeIDToken
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from common import discover, env, fail, fp, jwt_claims, run, sign_in

LIB = {"library": "authlib", "version": authlib.__version__}


def session(**kw):
    return OAuth2Session(
        env("GW_CLIENT_ID"),
        env("GW_CLIENT_SECRET"),
        token_endpoint_auth_method="client_secret_basic",
        **kw,
    )


def token_summary(tok):
    return {
        "token_type": tok.get("token_type"),
        "expires_in": tok.get("expires_in"),
        "scope": tok.get("scope"),
        "access_token_fp": fp(tok.get("access_token")),
        "claims": jwt_claims(tok["access_token"]),
        "refresh_token_fp": fp(tok.get("refresh_token")),
    }


def flow_discovery(issuer):
    meta = discover(issuer)
    rfc8414.AuthorizationServerMetadata(meta).validate(
        metadata_classes=[rfc9207.AuthorizationServerMetadata]
    )
    oidc_discovery.OpenIDProviderMetadata(meta).validate()
    if meta["issuer"] != issuer:
        fail(f"the metadata's issuer {meta['issuer']!r} is not {issuer!r}")
    return {"issuer": meta["issuer"], "validated": ["RFC 8414", "RFC 9207", "OIDC Discovery"]}


def flow_client_credentials(issuer):
    meta = discover(issuer)
    s = session(scope="orders.read")
    tok = s.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
    return token_summary(tok)


def verify_id_token(meta, tok, nonce, client_id):
    """What Authlib's OpenID client (`parse_id_token`) does: the signature
    with a key from the JWKS, restricted to the advertised algorithms, then
    OIDC Core §3.1.3.7 claims checks including nonce and at_hash."""
    jwks = requests.get(meta["jwks_uri"], timeout=30).json()
    token = jose_jwt.decode(
        tok["id_token"],
        key=KeySet.import_key_set(jwks),
        registry=JWSRegistry(algorithms=meta["id_token_signing_alg_values_supported"]),
    )
    claims = CodeIDToken(
        token.claims,
        token.header,
        {"iss": {"values": [meta["issuer"]]}},
        {"nonce": nonce, "client_id": client_id, "access_token": tok["access_token"]},
    )
    claims.validate(leeway=120)
    return dict(claims), dict(token.header)


def flow_code(issuer):
    meta = discover(issuer)
    client_id = env("GW_CLIENT_ID")
    redirect_uri = env("GW_REDIRECT_URI")
    s = session(
        scope="openid orders.read",
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
    )
    verifier = generate_token(64)
    nonce = generate_token(20)
    url, state = s.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    location = sign_in(url, redirect_uri, env("GW_USERNAME"), env("GW_PASSWORD"))
    # Authlib checks `state` itself (parse_authorization_code_response);
    # RFC 9207's `iss` is checked here, as Authlib leaves it to the caller.
    params = parse_qs(urlsplit(location).query)
    if params.get("iss") != [meta["issuer"]]:
        fail(f"the authorization response's iss is {params.get('iss')}, not the issuer")
    tok = s.fetch_token(
        meta["token_endpoint"],
        authorization_response=location,
        state=state,
        code_verifier=verifier,
    )
    id_claims, id_header = verify_id_token(meta, tok, nonce, client_id)
    first = token_summary(tok)
    old_refresh = tok["refresh_token"]
    # RFC 7662 §2.1: refresh tokens can be introspected too.
    r = s.introspect_token(
        meta["introspection_endpoint"], token=old_refresh, token_type_hint="refresh_token"
    )
    r.raise_for_status()
    refresh_introspection = r.json()
    refreshed = s.refresh_token(meta["token_endpoint"])
    second = token_summary(refreshed)
    r = s.introspect_token(
        meta["introspection_endpoint"], token=old_refresh, token_type_hint="refresh_token"
    )
    r.raise_for_status()
    rotated_introspection = r.json()
    if refreshed.get("id_token"):
        verify_id_token(meta, refreshed, None, client_id)
    # The rotated refresh token must be refused now (OAuth 2.1 §4.3.1).
    reuse_error = None
    try:
        s.refresh_token(meta["token_endpoint"], refresh_token=old_refresh)
    except OAuthError as e:
        reuse_error = e.error
    return {
        "state_checked": True,
        "token": first,
        "id_token": {"claims": id_claims, "alg": id_header.get("alg"), "verified": True},
        "refreshed": second,
        "refresh_rotated": second["refresh_token_fp"] not in (None, first["refresh_token_fp"]),
        "refresh_introspection": refresh_introspection,
        "rotated_refresh_introspection": rotated_introspection,
        "reuse_error": reuse_error,
    }


def flow_introspect(issuer):
    meta = discover(issuer)
    s = session(scope="orders.read")
    tok = s.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
    r = s.introspect_token(meta["introspection_endpoint"], token=tok["access_token"])
    r.raise_for_status()
    active = r.json()
    r = s.introspect_token(meta["introspection_endpoint"], token="not-a-token-" + generate_token(8))
    r.raise_for_status()
    unknown = r.json()
    return {"token": token_summary(tok), "introspection": active, "unknown": unknown}


FLOWS = {
    "discovery": flow_discovery,
    "client_credentials": flow_client_credentials,
    "code": flow_code,
    "introspect": flow_introspect,
}


def main(issuer, flow):
    if flow not in FLOWS:
        fail(f"unknown flow {flow!r}; one of {sorted(FLOWS)}")
    out = FLOWS[flow](issuer)
    out.update(LIB)
    out["flow"] = flow
    return out


if __name__ == "__main__":
    run(main)
