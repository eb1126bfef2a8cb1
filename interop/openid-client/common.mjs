// What client.mjs (openid-client 5) and client6.mjs (openid-client 6) share:
// their inputs, the login form, the output.
//
//   node client.mjs ISSUER FLOW
//
// with GW_CLIENT_ID and GW_CLIENT_SECRET (and for the code flow
// GW_REDIRECT_URI, GW_USERNAME, GW_PASSWORD) in the environment, never on
// the command line. A script prints one JSON object on stdout and exits 0, or
// prints what went wrong on stderr and exits 1. Tokens and secrets are never
// printed in clear, only their SHA-256 fingerprints (`fp`).

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

export function fail(message) {
  process.stderr.write(`interop failure: ${message}\n`);
  process.exit(1);
}

export function env(name) {
  const v = process.env[name];
  if (!v) fail(`the environment variable ${name} is not set`);
  return v;
}

// The version of an installed package (the packages' `exports` hide their
// package.json from import and require).
export function installedVersion(dir) {
  return JSON.parse(
    readFileSync(new URL(`./node_modules/${dir}/package.json`, import.meta.url), 'utf8'),
  ).version;
}

export function fp(secret) {
  if (secret === undefined || secret === null) return null;
  return `sha256:${createHash('sha256').update(secret).digest('hex').slice(0, 16)}`;
}

// The payload of a JWT, unverified (what the token says), or null for an
// opaque token.
export function jwtClaims(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  return JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
}

export function jwtAlg(token) {
  return JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString('utf8')).alg;
}

export function summary(tokens) {
  return {
    token_type: tokens.token_type,
    expires_in: tokens.expires_in,
    scope: tokens.scope,
    access_token_fp: fp(tokens.access_token),
    claims: jwtClaims(tokens.access_token),
    refresh_token_fp: fp(tokens.refresh_token),
  };
}

function unescapeHtml(s) {
  return s
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

// Plays the user's browser with fetch: opens the authorization URL, fills in
// the login form as served (hidden fields included), submits it and follows
// redirects until one points at the redirect URI, which is never requested
// (nothing listens there). Returns that URL.
export async function signIn(authorizationUrl, redirectUri) {
  const page = await fetch(authorizationUrl, { redirect: 'manual' });
  if (page.status !== 200) fail(`the authorization endpoint answered ${page.status}`);
  const html = await page.text();
  const form = /<form\b[^>]*>([\s\S]*?)<\/form>/i.exec(html);
  if (!form) fail('the login page has no <form>');
  const attr = (tag, name) => {
    const m = new RegExp(`\\b${name}="([^"]*)"`, 'i').exec(tag);
    return m ? unescapeHtml(m[1]) : null;
  };
  const formTag = /<form\b[^>]*>/i.exec(form[0])[0];
  if ((attr(formTag, 'method') || '').toLowerCase() !== 'post') fail('the login form is not POST');
  const body = new URLSearchParams();
  for (const [input] of form[1].matchAll(/<input\b[^>]*>/gi)) {
    const name = attr(input, 'name');
    if (!name) continue;
    let value = attr(input, 'value') ?? '';
    if (name === 'username') value = env('GW_USERNAME');
    if (name === 'password') value = env('GW_PASSWORD');
    body.append(name, value);
  }
  if (!body.has('username') || !body.has('password')) fail('the login form has no username/password');
  let resp = await fetch(new URL(attr(formTag, 'action') ?? '', page.url), {
    method: 'POST',
    body,
    redirect: 'manual',
  });
  let base = page.url;
  for (let i = 0; i < 5; i += 1) {
    if (![301, 302, 303, 307, 308].includes(resp.status)) {
      fail(`signing in answered ${resp.status} instead of a redirect to the client`);
    }
    const location = new URL(resp.headers.get('location'), base).href;
    if (location.split('?')[0] === redirectUri.split('?')[0]) return location;
    base = location;
    resp = await fetch(location, { redirect: 'manual' });
  }
  return fail('more than five redirects after signing in');
}

// Runs one flow of `flows` as the command line says and prints its result.
export async function main(flows, library, version) {
  const [issuerUrl, flow] = process.argv.slice(2);
  if (!issuerUrl || !flow) fail('usage: node SCRIPT ISSUER FLOW');
  if (!(flow in flows)) fail(`unknown flow ${flow}; one of ${Object.keys(flows).join(', ')}`);
  try {
    const out = await flows[flow](issuerUrl);
    process.stdout.write(
      `${JSON.stringify({ ...out, library, version, node: process.version, flow })}\n`,
    );
  } catch (e) {
    // The libraries' errors carry the server's error code and description,
    // never the request's credentials. openid-client 6 reports a 401 with
    // `WWW-Authenticate` (which RFC 6749 §5.2 requires after Basic
    // authentication) as a challenge error; the server's JSON error body is
    // then read from the response it keeps.
    const code = e && (e.error ?? e.code);
    let detail = code ? ` (${code}: ${e.error_description ?? ''})` : '';
    if (e && e.response && typeof e.response.clone === 'function') {
      try {
        const body = await e.response.clone().json();
        if (body && body.error) detail += ` [server: ${body.error}: ${body.error_description ?? ''}]`;
      } catch {
        // not JSON: nothing to add
      }
    }
    fail(`${e && e.name}: ${e && e.message}${detail}`);
  }
}
