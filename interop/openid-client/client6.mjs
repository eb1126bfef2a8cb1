// panva/openid-client 6 (npm alias `openid-client-v6`, pinned in
// package.json) as a client of gatewise authz, run by
// crates/gatewise-authz/tests/interop_openid_client.rs on Node.js 20 or newer
// only (openid-client 6's baseline). Inputs and output: common.mjs.
//
// Its client_secret_basic (oauth4webapi) form-urlencodes the id and secret
// and also escapes `-_.!~*'()`: `demo-client` goes out as `demo%2Dclient`,
// which RFC 6749 §2.3.1 decoding turns back.
//
// openid-client 6 refuses plain http unless told `allowInsecureRequests`;
// the server under test is on 127.0.0.1 only, so it is told.
//
// Flows:
//   client_credentials  RFC 6749 §4.4, client_secret_basic
//   code                authorization_code with PKCE S256, state and nonce;
//                       authorizationCodeGrant() checks state and RFC 9207
//                       `iss` and validates the ID token (signature from the
//                       JWKS, iss, aud, azp, nonce)
//   introspect          RFC 7662 of a fresh token and of an unknown one
//   revoke              RFC 7009, then introspection (now inactive)

import { randomBytes } from 'node:crypto';
import * as oidc from 'openid-client-v6';
import { env, installedVersion, jwtAlg, main, signIn, summary } from './common.mjs';

async function config(issuerUrl) {
  const secret = env('GW_CLIENT_SECRET');
  return oidc.discovery(
    new URL(issuerUrl),
    env('GW_CLIENT_ID'),
    secret,
    oidc.ClientSecretBasic(secret),
    { execute: [oidc.allowInsecureRequests] },
  );
}

const unknownToken = () => `not-a-token-${randomBytes(8).toString('hex')}`;

const flows = {
  async client_credentials(issuerUrl) {
    const c = await config(issuerUrl);
    return summary(await oidc.clientCredentialsGrant(c, { scope: 'orders.read' }));
  },

  async code(issuerUrl) {
    const c = await config(issuerUrl);
    const redirectUri = env('GW_REDIRECT_URI');
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const nonce = oidc.randomNonce();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(c, {
      scope: 'openid orders.read',
      redirect_uri: redirectUri,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      nonce,
      state,
    });
    const location = await signIn(url.href, redirectUri);
    const tokens = await oidc.authorizationCodeGrant(c, new URL(location), {
      pkceCodeVerifier: codeVerifier,
      expectedNonce: nonce,
      expectedState: state,
      idTokenExpected: true,
    });
    const refreshed = await oidc.refreshTokenGrant(c, tokens.refresh_token);
    return {
      token: summary(tokens),
      id_token_claims: tokens.claims(),
      id_token_alg: jwtAlg(tokens.id_token),
      refreshed: summary(refreshed),
      refresh_rotated: summary(refreshed).refresh_token_fp !== summary(tokens).refresh_token_fp,
    };
  },

  async introspect(issuerUrl) {
    const c = await config(issuerUrl);
    const tokens = await oidc.clientCredentialsGrant(c, { scope: 'orders.read' });
    const introspection = await oidc.tokenIntrospection(c, tokens.access_token);
    const unknown = await oidc.tokenIntrospection(c, unknownToken());
    return { token: summary(tokens), introspection, unknown };
  },

  async revoke(issuerUrl) {
    const c = await config(issuerUrl);
    const tokens = await oidc.clientCredentialsGrant(c, { scope: 'orders.read' });
    const before = await oidc.tokenIntrospection(c, tokens.access_token);
    await oidc.tokenRevocation(c, tokens.access_token);
    const after = await oidc.tokenIntrospection(c, tokens.access_token);
    await oidc.tokenRevocation(c, unknownToken());
    return {
      token: summary(tokens),
      active_before: before.active,
      active_after: after.active,
      unknown_revoked: true,
    };
  },
};

await main(flows, 'openid-client', installedVersion('openid-client-v6'));
