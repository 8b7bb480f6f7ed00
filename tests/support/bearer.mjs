// Helpers for the bearer-token integration tests (tests/integration/bearer_auth*.test.mjs):
// a gateway config with identity providers built around a running OIDC fixture, requests
// with an Authorization header, RFC 6750 challenge parsing, and forged/tampered tokens made
// with node:crypto. node: built-ins only (plus harness.mjs and oidc/client.mjs).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { basicConfig, httpRequest, eventually, fetchMetrics, metricSum } from './harness.mjs';
import { decodeJwt } from './oidc/client.mjs';

// ---------------------------------------------------------------------------------------
// Config

/**
 * The identity_providers entry for a running fixture `idp` (issuer and audiences from it;
 * keys by OIDC discovery unless `extra` says otherwise). `extra` is merged over the defaults.
 */
export function providerEntry(idp, extra = {}) {
  return {
    name: 'local',
    issuer: idp.issuer,
    audiences: ['api://mesh'],
    ...extra,
  };
}

/** The policy of the bearer routes in these tests: any authenticated caller. */
export const anyAuthenticated = { allow: { authenticated_user: true } };

/**
 * The usual routes: /orders (bearer, orders:read, forward_token), /private (bearer, no scope,
 * forward_token false), / public; the bearer routes allow any authenticated caller. `providers` names the identity providers the bearer routes
 * accept (default ['local']).
 */
export function defaultRoutes({ providers = ['local'], upstream = 'echo' } = {}) {
  return [
    { name: 'orders', match: { path_prefix: '/orders' }, upstream, auth: 'bearer', required_scopes: ['orders:read'], providers, forward_token: true, policy: anyAuthenticated },
    { name: 'private', match: { path_prefix: '/private' }, upstream, auth: 'bearer', providers, forward_token: false, policy: anyAuthenticated },
    { name: 'open', match: { path_prefix: '/' }, upstream, auth: 'public' },
  ];
}

/**
 * A complete gateway config object: one plaintext listener, admin, the echo upstream
 * `upstream` (from startUpstream), the given identity providers and routes.
 * Returns {config, ports}.
 */
export async function bearerConfig({ upstream, providers, routes, server } = {}) {
  const { config, ports } = await basicConfig({
    upstreams: [{ name: 'echo', endpoints: [upstream.address] }],
    routes: routes ?? defaultRoutes(),
    server,
  });
  // identity_providers before routes (order in the YAML does not matter, but reads better).
  const ordered = {};
  for (const [k, v] of Object.entries(config)) {
    if (k === 'upstreams') ordered.identity_providers = providers;
    ordered[k] = v;
  }
  return { config: ordered, ports };
}

/** Writes `secret` to DIR/NAME (mode 0600) and returns the path. */
export function writeSecret(dir, name, secret) {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return file;
}

// ---------------------------------------------------------------------------------------
// Requests

/**
 * GET (or `method`) PATH through the gateway on `port` with `Authorization: Bearer TOKEN`
 * (no header when token is null/undefined; `authorization` overrides the whole header).
 */
export function call(port, pathname, token, { headers = {}, authorization, method = 'GET', timeoutMs = 15_000 } = {}) {
  const h = { ...headers };
  if (authorization !== undefined) h.authorization = authorization;
  else if (token !== undefined && token !== null) h.authorization = `Bearer ${token}`;
  return httpRequest({ port, path: pathname, method, headers: h, timeoutMs });
}

/**
 * Parses an RFC 6750 challenge `Bearer realm="x", error="y", ...` into
 * {scheme, params: {realm, error, error_description, scope, ...}}; null when absent.
 */
export function parseChallenge(value) {
  if (value === undefined || value === null) return null;
  const s = Array.isArray(value) ? value.join(', ') : String(value);
  const m = /^\s*([A-Za-z][A-Za-z0-9_-]*)\s*(.*)$/s.exec(s);
  if (!m) return { scheme: '', params: {}, raw: s };
  const params = {};
  const re = /([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))\s*,?\s*/g;
  let pm;
  while ((pm = re.exec(m[2]))) params[pm[1].toLowerCase()] = pm[2] !== undefined ? pm[2].replace(/\\(.)/g, '$1') : pm[3];
  return { scheme: m[1], params, raw: s };
}

/** Waits until `token` gets 200 on PATH (the gateway has the provider's keys). */
export async function waitForAccept(port, pathname, token, { timeoutMs = 10_000, message } = {}) {
  let last;
  try {
    return await eventually(async () => {
      last = await call(port, pathname, token);
      return last.status === 200 ? last : false;
    }, { timeoutMs, intervalMs: 200, message: message ?? `a valid token to be accepted on ${pathname}` });
  } catch (e) {
    e.message += ` (last answer ${last?.status}: ${String(last?.body).slice(0, 300)}, www-authenticate: ${last?.headers?.['www-authenticate']})`;
    throw e;
  }
}

/** The sum of portcullis_authn_total for provider/result now. */
export async function authnCount(gw, labels) {
  return metricSum(await fetchMetrics(gw), 'portcullis_authn_total', labels);
}

// ---------------------------------------------------------------------------------------
// Token forgery (all from a genuine token's parts, or from scratch)

export const b64url = (v) => Buffer.from(typeof v === 'string' || Buffer.isBuffer(v) ? v : JSON.stringify(v)).toString('base64url');

/** header.payload.signature from objects (header/payload JSON-encoded) and a Buffer signature. */
export function compact(header, payload, signature = Buffer.alloc(0)) {
  return `${b64url(header)}.${b64url(payload)}.${Buffer.from(signature).toString('base64url')}`;
}

/** The token with its payload replaced by `mutate(payload)` (object), signature kept. */
export function tamperPayload(token, mutate) {
  const [h, , s] = token.split('.');
  const { payload } = decodeJwt(token);
  const next = mutate({ ...payload }) ?? payload;
  return `${h}.${b64url(next)}.${s}`;
}

/** The token with its header replaced by `mutate(header)`, payload and signature kept. */
export function tamperHeader(token, mutate) {
  const [, p, s] = token.split('.');
  const { header } = decodeJwt(token);
  const next = mutate({ ...header }) ?? header;
  return `${b64url(next)}.${p}.${s}`;
}

/** The token with one bit of its signature flipped (same length, still base64url). */
export function tamperSignature(token) {
  const [h, p, s] = token.split('.');
  const sig = Buffer.from(s, 'base64url');
  sig[Math.floor(sig.length / 2)] ^= 0x01;
  return `${h}.${p}.${sig.toString('base64url')}`;
}

/** The genuine payload under {"alg":"none"} with an empty signature. */
export function algNoneToken(token, { typ = 'at+jwt', kid } = {}) {
  const { header, payload } = decodeJwt(token);
  return compact({ alg: 'none', typ, ...(kid ?? header.kid ? { kid: kid ?? header.kid } : {}) }, payload);
}

/**
 * HS256 over the genuine payload with `secret` (e.g. the PEM text of the IdP's RSA public
 * key: the classic key-confusion attack). The header keeps the genuine kid.
 */
export function hs256Token(token, secret) {
  const { header, payload } = decodeJwt(token);
  const h = { alg: 'HS256', typ: header.typ, kid: header.kid };
  const input = `${b64url(h)}.${b64url(payload)}`;
  const sig = crypto.createHmac('sha256', secret).update(input).digest();
  return `${input}.${sig.toString('base64url')}`;
}

/** The PEM encodings an attacker would try as the HMAC secret for an RSA JWK. */
export function publicKeyPems(jwk) {
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  return {
    spki: key.export({ type: 'spki', format: 'pem' }),
    pkcs1: key.export({ type: 'pkcs1', format: 'pem' }),
  };
}

/**
 * An RS256 token over `payload` signed by a freshly generated (attacker) key. `headerExtra`
 * is an object merged into {alg, typ}, or a function (attackerPublicJwk) -> object (for
 * `jwk`/`x5c`-style headers that name the attacker's own key).
 */
export function attackerRs256(payload, headerExtra = {}) {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicJwk = publicKey.export({ format: 'jwk' });
  const extra = typeof headerExtra === 'function' ? headerExtra(publicJwk) : headerExtra;
  const header = { alg: 'RS256', typ: 'at+jwt', ...extra };
  const input = `${b64url(header)}.${b64url(payload)}`;
  const sig = crypto.sign('sha256', Buffer.from(input), privateKey);
  return { token: `${input}.${sig.toString('base64url')}`, publicJwk };
}
