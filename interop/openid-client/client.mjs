// panva/openid-client 5 (npm `openid-client`, pinned in package.json) as a
// client of gatewise authz, run by
// crates/gatewise-authz/tests/interop_openid_client.rs. Inputs and output:
// common.mjs.
//
// openid-client 5.x is the main pin because it supports every Node.js LTS
// from 12 on, Debian 12's Node.js 18 included (6.x needs Node.js 20:
// client6.mjs). Its client_secret_basic form-urlencodes the id and secret
// with encodeURIComponent (RFC 6749 §2.3.1, with `-_.!~*'()` left as they
// are).
//
// Flows:
//   discovery           Issuer.discover at both well-known paths (OpenID
//                       Connect Discovery and RFC 8414), each with its check
//                       that `issuer` is the URL asked
//   client_credentials  RFC 6749 §4.4, client_secret_basic
//   code                authorization_code with PKCE S256, state and nonce:
//                       the login form is driven with fetch, the code read
//                       from the redirect's Location; callback() checks
//                       state and RFC 9207 `iss` and validates the ID token
//                       (signature from the JWKS, iss, aud, azp, nonce,
//                       at_hash); then a refresh
//   introspect          client_credentials, then RFC 7662 introspection of
//                       that token and of an unknown one
//   revoke              client_credentials, RFC 7009 revocation, then
//                       introspection (now inactive); an unknown token is
//                       revoked too (RFC 7009 §2.2: still 200)
//   revoke_refresh      authorization_code + PKCE, then the refresh token
//                       revoked (RFC 7009 §2) and presented: refused

import { randomBytes } from 'node:crypto';
import { Issuer, generators } from 'openid-client';
import { env, installedVersion, jwtAlg, main, signIn, summary } from './common.mjs';

async function client(issuerUrl) {
  const issuer = await Issuer.discover(issuerUrl);
  return new issuer.Client({
    client_id: env('GW_CLIENT_ID'),
    client_secret: env('GW_CLIENT_SECRET'),
    token_endpoint_auth_method: 'client_secret_basic',
  });
}

const unknownToken = () => `not-a-token-${randomBytes(8).toString('hex')}`;

const flows = {
  async discovery(issuerUrl) {
    const oidc = await Issuer.discover(`${issuerUrl}/.well-known/openid-configuration`);
    const oauth = await Issuer.discover(`${issuerUrl}/.well-known/oauth-authorization-server`);
    return {
      issuer: oidc.issuer,
      rfc8414_issuer: oauth.issuer,
      token_endpoint: oidc.token_endpoint,
      introspection_endpoint: oidc.introspection_endpoint,
      revocation_endpoint: oidc.revocation_endpoint,
      iss_parameter_supported: oidc.authorization_response_iss_parameter_supported === true,
    };
  },

  async client_credentials(issuerUrl) {
    const c = await client(issuerUrl);
    return summary(await c.grant({ grant_type: 'client_credentials', scope: 'orders.read' }));
  },

  async code(issuerUrl) {
    const c = await client(issuerUrl);
    const redirectUri = env('GW_REDIRECT_URI');
    const codeVerifier = generators.codeVerifier();
    const nonce = generators.nonce();
    const state = generators.state();
    const url = c.authorizationUrl({
      scope: 'openid orders.read',
      redirect_uri: redirectUri,
      code_challenge: generators.codeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      nonce,
      state,
    });
    const location = await signIn(url, redirectUri);
    const tokens = await c.callback(redirectUri, c.callbackParams(location), {
      code_verifier: codeVerifier,
      nonce,
      state,
      response_type: 'code',
    });
    // refresh() validates the new ID token too (same sub, OIDC Core §12.2).
    const refreshed = await c.refresh(tokens.refresh_token);
    return {
      token: summary(tokens),
      id_token_claims: tokens.claims(),
      id_token_alg: jwtAlg(tokens.id_token),
      refreshed: summary(refreshed),
      refresh_rotated: summary(refreshed).refresh_token_fp !== summary(tokens).refresh_token_fp,
    };
  },

  // RFC 7009 §2: a server MUST support revoking refresh tokens. Signs in,
  // revokes the refresh token, then tries to use it.
  async revoke_refresh(issuerUrl) {
    const c = await client(issuerUrl);
    const redirectUri = env('GW_REDIRECT_URI');
    const codeVerifier = generators.codeVerifier();
    const state = generators.state();
    const url = c.authorizationUrl({
      scope: 'orders.read',
      redirect_uri: redirectUri,
      code_challenge: generators.codeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
    });
    const location = await signIn(url, redirectUri);
    const tokens = await c.oauthCallback(redirectUri, c.callbackParams(location), {
      code_verifier: codeVerifier,
      state,
    });
    await c.revoke(tokens.refresh_token, 'refresh_token');
    let refreshError = null;
    try {
      await c.refresh(tokens.refresh_token);
    } catch (e) {
      refreshError = e.error ?? e.message;
    }
    return { token: summary(tokens), refresh_error: refreshError };
  },

  async introspect(issuerUrl) {
    const c = await client(issuerUrl);
    const tokens = await c.grant({ grant_type: 'client_credentials', scope: 'orders.read' });
    const introspection = await c.introspect(tokens.access_token, 'access_token');
    const unknown = await c.introspect(unknownToken());
    return { token: summary(tokens), introspection, unknown };
  },

  async revoke(issuerUrl) {
    const c = await client(issuerUrl);
    const tokens = await c.grant({ grant_type: 'client_credentials', scope: 'orders.read' });
    const before = await c.introspect(tokens.access_token, 'access_token');
    await c.revoke(tokens.access_token, 'access_token');
    const after = await c.introspect(tokens.access_token, 'access_token');
    await c.revoke(unknownToken(), 'access_token');
    return {
      token: summary(tokens),
      active_before: before.active,
      active_after: after.active,
      unknown_revoked: true,
    };
  },
};

await main(flows, 'openid-client', installedVersion('openid-client'));
