// A real, certified OpenID Provider (panva/oidc-provider) on 127.0.0.1 for
// gatewise's end-to-end interop tests
// (crates/gatewise-gateway/tests/interop_oidc_provider.rs for the gateway,
// crates/gatewise-cli/tests/doctor_oidc_provider.rs for `gatewise doctor`).
//
//   node server.mjs [--port N] [--access-token-ttl SECONDS] [--exit-with-stdin]
//
// The port also comes from $PORT; 0 (the default) picks a free one. The
// issuer is http://127.0.0.1:PORT. One line `READY <port>` is printed on
// stdout once the provider answers; everything else goes to stderr.
//
// What it offers:
// - clients (client_credentials only):
//     gateway-test          / gateway-test-secret    client_secret_basic, RS256 JWT access tokens
//     gateway-test-es256    / gateway-test-es256-secret  client_secret_post, ES256 JWT access tokens
//     gateway-introspector  / INTROSPECTOR_SECRET (below; holds characters
//                             that RFC 6749 §2.3.1 form-encoding must escape)
// - clients for the doctor's other grants (crates/gatewise-cli/tests/doctor_oidc_provider.rs):
//     doctor-native   public (auth none), native app: authorization_code with PKCE
//                     and refresh_token; redirect URI http://127.0.0.1/callback on any
//                     port (loopback, RFC 8252 §7.3); a refresh token with every code
//                     (issueRefreshToken below), rotated on use (public client).
//     doctor-device   public (auth none): the device authorization grant (RFC 8628).
//     doctor-pkjwt    private_key_jwt (RFC 7523): an RSA and an EC P-256 key made at
//                     start-up; `GET /_test/client-keys` (loopback only) hands their
//                     private halves to the test as PKCS#8 PEM and private JWK.
//   Sign-in and consent are oidc-provider's devInteractions pages (any login
//   and password), the device verification page is the built-in one at /device.
// - resource indicators (RFC 8707): `resource=https://api.gatewise.test`
//   yields an RFC 9068 JWT access token (typ at+jwt) for that audience with
//   scopes out of `orders.read orders.write`; `https://other.gatewise.test`
//   is a second API (wrong-audience tokens). Without `resource` the access
//   token is opaque (for introspection and revocation).
// - discovery, JWKS, introspection (RFC 7662) and revocation (RFC 7009).
// - `POST /_test/rotate` (loopback callers only): new RS256 and ES256
//   signing keys. oidc-provider reads its keys once, at construction, so the
//   rotation builds a new Provider with the new keys first (they sign) and
//   the previous generation after them (published for verification only, as
//   the oidc-provider docs recommend for rotation), then swaps it in. Tokens
//   live in the in-memory adapter, which is module-wide, so opaque tokens
//   issued before a rotation stay introspectable.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

const API = 'https://api.gatewise.test';
const OTHER_API = 'https://other.gatewise.test';
const INTROSPECTOR_SECRET = 'intro:spect+/=%secret';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    'access-token-ttl': { type: 'string' },
    'exit-with-stdin': { type: 'boolean', default: false },
  },
  allowPositionals: true,
});

const port = Number(args.port ?? process.env.PORT ?? 0);
const accessTokenTTL = Number(args['access-token-ttl'] ?? process.env.ACCESS_TOKEN_TTL ?? 600);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`invalid port ${args.port ?? process.env.PORT}`);
  process.exit(2);
}
if (!Number.isInteger(accessTokenTTL) || accessTokenTTL <= 0) {
  console.error('invalid access token TTL');
  process.exit(2);
}

// ---------------------------------------------------------------- keys

let generation = 0;

/** A fresh RS256 and ES256 signing key pair, as private JWKs. */
function newSigningKeys() {
  generation += 1;
  const tag = `g${generation}-${randomBytes(4).toString('hex')}`;
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  return [
    { ...rsa.export({ format: 'jwk' }), kid: `rs256-${tag}`, alg: 'RS256', use: 'sig' },
    { ...ec.export({ format: 'jwk' }), kid: `es256-${tag}`, alg: 'ES256', use: 'sig' },
  ];
}

/** The doctor-pkjwt client's keys: private (PEM and JWK) and public JWK. */
function newClientKeys() {
  const out = {};
  for (const [name, kind, opts, alg] of [
    ['rsa', 'rsa', { modulusLength: 2048 }, 'RS256'],
    ['ec', 'ec', { namedCurve: 'P-256' }, 'ES256'],
  ]) {
    const { privateKey, publicKey } = generateKeyPairSync(kind, opts);
    const kid = `pkjwt-${name}-${randomBytes(4).toString('hex')}`;
    out[name] = {
      kid,
      alg,
      pem: privateKey.export({ format: 'pem', type: 'pkcs8' }),
      jwk: { ...privateKey.export({ format: 'jwk' }), kid, alg },
      public: { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' },
    };
  }
  return out;
}

const clientKeys = newClientKeys();

// ------------------------------------------------------------ provider

const resourceServers = {
  [API]: { scope: 'orders.read orders.write', audience: API },
  [OTHER_API]: { scope: 'orders.read orders.write', audience: OTHER_API },
};

function configuration(keys) {
  return {
    clients: [
      {
        client_id: 'gateway-test',
        client_secret: 'gateway-test-secret',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        client_id: 'gateway-test-es256',
        client_secret: 'gateway-test-es256-secret',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_post',
      },
      {
        client_id: 'gateway-introspector',
        client_secret: INTROSPECTOR_SECRET,
        grant_types: [],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        client_id: 'doctor-native',
        application_type: 'native',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        // Native + loopback: oidc-provider accepts any port (RFC 8252 §7.3).
        redirect_uris: ['http://127.0.0.1/callback'],
        token_endpoint_auth_method: 'none',
      },
      {
        client_id: 'doctor-device',
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'none',
      },
      {
        client_id: 'doctor-pkjwt',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: { keys: [clientKeys.rsa.public, clientKeys.ec.public] },
      },
    ],
    jwks: { keys },
    // Listed here so that they survive on tokens requested without a
    // resource indicator (the opaque ones).
    scopes: ['openid', 'offline_access', 'orders.read', 'orders.write'],
    cookies: { keys: [randomBytes(32).toString('hex')] },
    ttl: { ClientCredentials: accessTokenTTL },
    // A refresh token with every code of a client allowed the grant (the
    // default wants offline_access with prompt=consent).
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    features: {
      // The sign-in and consent pages the doctor's tests fill in over HTTP.
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => false,
        getResourceServerInfo(ctx, resourceIndicator, client) {
          const rs = resourceServers[resourceIndicator];
          if (!rs) {
            throw new errors.InvalidTarget();
          }
          const alg = client.clientId === 'gateway-test-es256' ? 'ES256' : 'RS256';
          return {
            ...rs,
            accessTokenFormat: 'jwt',
            accessTokenTTL,
            jwt: { sign: { alg } },
          };
        },
      },
    },
  };
}

function build(issuer, keys) {
  const provider = new Provider(issuer, configuration(keys));
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  return { provider, handle: provider.callback(), keys };
}

// -------------------------------------------------------------- server

let current = null;

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

function isLoopback(addr) {
  return addr === '127.0.0.1' || addr === '::1' || addr === '::ffff:127.0.0.1';
}

function rotate(issuer) {
  const fresh = newSigningKeys();
  // The previous generation's signing keys stay published (and usable for
  // verification) after the new ones; older generations are dropped.
  const previous = current.keys.slice(0, 2);
  current = build(issuer, [...fresh, ...previous]);
  return {
    signing_kids: fresh.map((k) => k.kid),
    published_kids: current.keys.map((k) => k.kid),
  };
}

const server = http.createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (path.startsWith('/_test/')) {
    if (!isLoopback(req.socket.remoteAddress)) {
      return json(res, 403, { error: 'loopback only' });
    }
    if (path === '/_test/rotate' && req.method === 'POST') {
      return json(res, 200, rotate(issuerOf(server)));
    }
    if (path === '/_test/client-keys' && req.method === 'GET') {
      const hand = ({ kid, alg, pem, jwk }) => ({ kid, alg, pem, jwk });
      return json(res, 200, { rsa: hand(clientKeys.rsa), ec: hand(clientKeys.ec) });
    }
    if (path === '/_test/keys' && req.method === 'GET') {
      return json(res, 200, { signing_kids: current.keys.slice(0, 2).map((k) => k.kid) });
    }
    return json(res, 404, { error: 'not found' });
  }
  if (!current) {
    return json(res, 503, { error: 'starting' });
  }
  return current.handle(req, res);
});

function issuerOf(srv) {
  return `http://127.0.0.1:${srv.address().port}`;
}

server.on('error', (err) => {
  console.error(`cannot listen: ${err.message}`);
  process.exit(1);
});

server.listen(port, '127.0.0.1', () => {
  const issuer = issuerOf(server);
  current = build(issuer, newSigningKeys());
  console.error(`oidc-provider ${issuer} (node ${process.version})`);
  process.stdout.write(`READY ${server.address().port}\n`);
});

function stop() {
  server.close();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (args['exit-with-stdin']) {
  // The test holds our stdin open; when it goes away (even killed), so do we.
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}
