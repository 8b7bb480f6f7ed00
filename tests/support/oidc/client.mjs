// Helpers for tests that need a real OpenID provider: start/stop the fixture in
// tests/support/oidc/provider.mjs as a child process, rotate its keys, get client-credentials
// tokens, introspect, decode and verify JWTs. node: built-ins only (plus what provider.mjs
// imports in its own process).
//
//   const idp = await startProvider({ algs: ['RS256', 'ES256'] });
//   const token = await getToken({ scope: 'orders:read', resource: 'api://mesh' });
//   const { header, payload } = decodeJwt(token);
//   verifyJwt(token, await idp.jwks());
//   await idp.rotateKey({ keepOld: false });
//   await idp.stop();
//
// getToken/introspect/revoke talk to `opts.provider`, or else to the provider started last
// (and not stopped yet). HTTP is done with node:http/node:https rather than fetch so that an
// HTTPS provider with a test CA works (`ca` option; defaults to the provider's own --cert).
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CLIENTS, SCOPES, DEFAULTS, algClientId,
  SSO_CLIENTS, SSO_SCOPE, SSO_SCOPES, CLI_CLIENT_ID, CLI_REDIRECT_URIS, ACCOUNTS, SELECTORS,
} from './provider.mjs';

export {
  CLIENTS, SCOPES, DEFAULTS, algClientId,
  SSO_CLIENTS, SSO_SCOPE, SSO_SCOPES, CLI_CLIENT_ID, CLI_REDIRECT_URIS, ACCOUNTS, SELECTORS,
};

export const PROVIDER_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'provider.mjs');

// ---------------------------------------------------------------------------------------
// Process bookkeeping: every provider started here is SIGKILLed if the test process exits
// without stopping it.

const live = new Map(); // pid -> handle
process.on('exit', () => {
  for (const pid of live.keys()) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
});
let current; // the provider started last and not stopped

function secretFor(clientId) {
  if (CLIENTS[clientId]) return CLIENTS[clientId].secret;
  if (SSO_CLIENTS[clientId]) return SSO_CLIENTS[clientId].secret;
  if (clientId.startsWith('gateway-tests-')) return CLIENTS['gateway-tests'].secret;
  return undefined;
}

/**
 * Spawns tests/support/oidc/provider.mjs and resolves when it printed its ready line.
 * opts: {port=0, controlPort=0, algs=['RS256'], audiences=['api://mesh','api://other'],
 *        ttl=300, jwksMaxAge, cert, key (file paths: HTTPS, issuer https://localhost:PORT),
 *        issuer, ca (PEM the helpers trust; default: the cert file), timeoutMs=60000, env,
 *        browser SSO: redirectUris, postLogoutRedirectUris (arrays or comma lists, for the
 *        portcullis-sso* clients), backchannelLogoutUri, consent ('auto'|'page'),
 *        logoutConfirm ('page'|'auto'), extraCa (PEM file the provider trusts for its own
 *        outgoing HTTPS, i.e. back-channel logout to a gateway: NODE_EXTRA_CA_CERTS)}
 * Resolves with the handle described in the README (issuer, jwksUri, tokenEndpoint, ...,
 * pid, stop(), rotateKey({keepOld}), state(), setJwksFault(mode), getToken(), introspect()).
 */
/** Load average and the busiest processes: context for a start-up that timed out. */
function machineSnapshot() {
  let top = '';
  try {
    top = execFileSync('ps', ['-eo', 'pid,ppid,pcpu,rss,etime,args', '--sort=-pcpu'], { encoding: 'utf8', timeout: 5000 })
      .split('\n').slice(0, 12).map((l) => l.slice(0, 200)).join('\n');
  } catch (e) {
    top = `(ps failed: ${e.message})`;
  }
  return `load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}, free memory ${Math.round(os.freemem() / 2 ** 20)} MiB\n${top}`;
}

export async function startProvider(opts = {}) {
  const args = [PROVIDER_SCRIPT, '--exit-with-stdin',
    '--port', String(opts.port ?? 0), '--control-port', String(opts.controlPort ?? 0)];
  const list = (v) => (Array.isArray(v) ? v.join(',') : String(v));
  if (opts.algs) args.push('--algs', list(opts.algs));
  if (opts.audiences) args.push('--audiences', list(opts.audiences));
  if (opts.ttl !== undefined) args.push('--ttl', String(opts.ttl));
  if (opts.jwksMaxAge !== undefined) args.push('--jwks-max-age', String(opts.jwksMaxAge));
  if (opts.cert) args.push('--cert', opts.cert);
  if (opts.key) args.push('--key', opts.key);
  if (opts.issuer) args.push('--issuer', opts.issuer);
  if (opts.redirectUris) args.push('--redirect-uri', list(opts.redirectUris));
  if (opts.postLogoutRedirectUris) args.push('--post-logout-redirect-uri', list(opts.postLogoutRedirectUris));
  if (opts.backchannelLogoutUri) args.push('--backchannel-logout-uri', opts.backchannelLogoutUri);
  if (opts.consent) args.push('--consent', opts.consent);
  if (opts.logoutConfirm) args.push('--logout-confirm', opts.logoutConfirm);
  const ca = opts.ca ?? (opts.cert ? fs.readFileSync(opts.cert) : undefined);
  // Start-up normally takes about half a second; the generous limit only bounds a hang (a CI
  // run once saw a start stall past 20 s). The error says how far start-up got and what the
  // machine was doing, since that is all there is to go on afterwards.
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const spawnedAt = Date.now();

  const child = spawn(process.execPath, args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...(opts.extraCa ? { NODE_EXTRA_CA_CERTS: opts.extraCa } : {}), ...opts.env },
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-65536); });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let exitInfo;
  exited.then((e) => { exitInfo = e; live.delete(child.pid); });

  const events = [];
  const readyLine = await new Promise((resolve, reject) => {
    let buf = '';
    let done = false;
    const timer = setTimeout(() => finish(new Error(
      `oidc provider not ready after ${Date.now() - spawnedAt} ms (limit ${timeoutMs}); stderr:\n${stderr}\n`
      + `${machineSnapshot()}`)), timeoutMs);
    const finish = (err, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) {
        try { child.kill('SIGKILL'); } catch { /* gone */ }
        reject(err);
      } else resolve(value);
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let obj;
        try { obj = JSON.parse(line); } catch { continue; }
        events.push(obj);
        if (obj.event === 'ready') finish(null, obj);
      }
    });
    child.once('error', (e) => finish(e));
    exited.then(({ code, signal }) => finish(new Error(`oidc provider exited (code ${code}, signal ${signal}) before ready; stderr:\n${stderr}`)));
  });

  const control = async (method, p, body) => {
    const r = await httpRequest(`${readyLine.control}${p}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = JSON.parse(r.text);
    if (r.status !== 200) throw new Error(`control ${method} ${p}: ${r.status} ${r.text}`);
    return json;
  };

  const handle = {
    issuer: readyLine.issuer,
    port: readyLine.port,
    discoveryUrl: readyLine.discovery,
    jwksUri: readyLine.jwks_uri,
    tokenEndpoint: readyLine.token_endpoint,
    introspectionEndpoint: readyLine.introspection_endpoint,
    revocationEndpoint: readyLine.revocation_endpoint,
    authorizationEndpoint: readyLine.authorization_endpoint,
    endSessionEndpoint: readyLine.end_session_endpoint,
    deviceAuthorizationEndpoint: readyLine.device_authorization_endpoint,
    deviceVerificationUri: readyLine.device_verification_uri,
    userinfoEndpoint: readyLine.userinfo_endpoint,
    control: readyLine.control,
    controlPort: readyLine.control_port,
    pid: child.pid,
    algs: readyLine.algs,
    audiences: readyLine.audiences,
    kids: readyLine.kids,
    signing: readyLine.signing,
    ready: readyLine,
    ca,
    events,
    /** What the provider wrote on stderr (last 64 KiB). */
    stderr: () => stderr,
    /** GET /state of the control endpoint. */
    state: () => control('GET', '/state'),
    /** New key per alg (or per `algs`), served by a new Provider instance on the same port. */
    rotateKey: async ({ keepOld = true, algs } = {}) => {
      const s = await control('POST', '/rotate', { keepOld, ...(algs ? { algs } : {}) });
      handle.kids = s.kids;
      handle.signing = s.signing;
      return s;
    },
    /** 'none' | 'status500' | 'garbage': how jwks_uri answers from now on. */
    setJwksFault: (mode) => control('POST', '/jwks-fault', { mode }),
    /** Metadata of the browser clients (portcullis-sso, portcullis-sso-post, portcullis-cli, ...). */
    clients: async () => (await control('GET', '/clients')).clients,
    /** Change (merge) or register a browser client: {client_id, redirect_uris, ...}; resolves its metadata. */
    updateClient: (metadata) => control('POST', '/clients', metadata),
    /** Sets redirect (and optionally post-logout / back-channel) URIs of the SSO clients. */
    setRedirectUris: async (redirectUris, {
      postLogoutRedirectUris, backchannelLogoutUri, clientIds = Object.keys(SSO_CLIENTS),
    } = {}) => {
      const out = [];
      for (const id of clientIds) {
        out.push(await control('POST', '/clients', {
          client_id: id,
          redirect_uris: [redirectUris].flat(),
          ...(postLogoutRedirectUris ? { post_logout_redirect_uris: [postLogoutRedirectUris].flat() } : {}),
          ...(backchannelLogoutUri !== undefined ? { backchannel_logout_uri: backchannelLogoutUri } : {}),
        }));
      }
      return out;
    },
    /** Test accounts (no passwords). */
    accounts: async () => (await control('GET', '/accounts')).accounts,
    /** Adds or replaces an account {sub, password, email, name, groups}. */
    setAccount: (account) => control('POST', '/accounts', account),
    /** Deletes an account ({removed}); its refresh tokens are refused from then on (invalid_grant). */
    removeAccount: (sub) => control('POST', '/accounts/remove', { sub }),
    /** Tokens the provider holds ({sub, clientId, kind = 'RefreshToken'}): [{value, sub, client_id, grant_id, iat, exp, ...}]. */
    tokens: async ({ sub, clientId, kind } = {}) => {
      const q = new URLSearchParams(Object.entries({ sub, client_id: clientId, kind }).filter(([, v]) => v !== undefined));
      return (await control('GET', `/tokens?${q}`)).tokens;
    },
    /** A JWS over `payload` signed with the provider's current key ({payload, header, alg}); resolves the compact JWT. */
    signJwt: async (o) => (await control('POST', '/sign', o)).jwt,
    /** 'none' | 'status500': how token_endpoint answers from now on. */
    setTokenFault: (mode) => control('POST', '/token-fault', { mode }),
    /** {client_id, sub, sid}: a provider-signed logout token; with deliver: true, POSTs it to the client's back-channel URI. */
    mintLogoutToken: (o) => control('POST', '/logout-token', o),
    /** Back-channel logout deliveries so far ({ok, client_id, uri, sub, sid, error, at}). */
    backchannelLogouts: async () => (await control('GET', '/state')).backchannel_logouts,
    discovery: () => fetchJson(readyLine.discovery, { ca }),
    jwks: () => fetchJson(readyLine.jwks_uri, { ca }),
    getToken: (o = {}) => getToken({ ...o, provider: handle }),
    requestToken: (o = {}) => requestToken({ ...o, provider: handle }),
    introspect: (token, o = {}) => introspect(token, { ...o, provider: handle }),
    revoke: (token, o = {}) => revoke(token, { ...o, provider: handle }),
    get exited() { return exitInfo; },
    /** SIGTERM by pid, SIGKILL after timeoutMs; resolves with {code, signal}. Idempotent. */
    stop: async ({ timeoutMs: t = 5000 } = {}) => {
      if (current === handle) current = undefined;
      if (!exitInfo) {
        try { process.kill(child.pid, 'SIGTERM'); } catch { /* gone */ }
        const killer = setTimeout(() => { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } }, t);
        try { await exited; } finally { clearTimeout(killer); }
      }
      if (process.env.PORTCULLIS_TEST_LOGS) process.stderr.write(`--- oidc provider ${child.pid} stderr ---\n${stderr}\n`);
      return exitInfo;
    },
  };
  live.set(child.pid, handle);
  current = handle;
  return handle;
}

// ---------------------------------------------------------------------------------------
// HTTP

/** Minimal request over node:http/https: resolves {status, headers, text}. Bounded by timeoutMs. */
export function httpRequest(url, { method = 'GET', headers = {}, body, ca, timeoutMs = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(u, {
      method,
      headers: { ...headers, ...(body !== undefined ? { 'content-length': Buffer.byteLength(body) } : {}) },
      ...(u.protocol === 'https:' && ca ? { ca } : {}),
      agent: false,
      timeout: timeoutMs,
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** GET url and parse JSON (throws on non-2xx). */
export async function fetchJson(url, { ca, timeoutMs } = {}) {
  const r = await httpRequest(url, { ca, timeoutMs });
  if (r.status < 200 || r.status >= 300) throw new Error(`GET ${url}: ${r.status} ${r.text}`);
  return JSON.parse(r.text);
}

function resolveProvider(o) {
  const p = o.provider ?? current;
  if (!p && !(o.tokenEndpoint || o.introspectionEndpoint || o.revocationEndpoint)) {
    throw new Error('no OIDC provider: pass {provider} or start one with startProvider()');
  }
  return p ?? {};
}

function basic(clientId, secret) {
  return `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

async function postForm(url, clientId, secret, form, ca, timeoutMs) {
  const body = new URLSearchParams(Object.entries(form).filter(([, v]) => v !== undefined)).toString();
  const r = await httpRequest(url, {
    method: 'POST',
    headers: {
      authorization: basic(clientId, secret),
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    },
    body,
    ca,
    timeoutMs,
  });
  let json;
  try { json = JSON.parse(r.text); } catch { json = undefined; }
  return { status: r.status, body: json, text: r.text };
}

/**
 * client_credentials token request; resolves {status, body} whatever the outcome
 * (for negative tests: invalid_client, invalid_scope, invalid_target, ...).
 */
export async function requestToken({
  clientId = 'gateway-tests', secret, scope, resource, provider, tokenEndpoint, ca, timeoutMs,
} = {}) {
  const p = resolveProvider({ provider, tokenEndpoint });
  const r = await postForm(tokenEndpoint ?? p.tokenEndpoint, clientId, secret ?? secretFor(clientId) ?? '',
    { grant_type: 'client_credentials', scope, resource }, ca ?? p.ca, timeoutMs);
  return { status: r.status, body: r.body ?? r.text };
}

/**
 * The access token string (JWT for gateway-tests*, opaque for opaque-client) of a
 * client_credentials grant. clientId defaults to 'gateway-tests', secret to the fixture's;
 * scope is space-separated (none: the token has no scope claim; unknown scopes are dropped
 * silently by oidc-provider); resource defaults to the provider's first audience
 * (api://mesh). Throws on any error answer.
 */
export async function getToken(o = {}) {
  const r = await requestToken(o);
  if (r.status !== 200 || !r.body?.access_token) {
    throw new Error(`token request for ${o.clientId ?? 'gateway-tests'} failed: ${r.status} ${JSON.stringify(r.body)}`);
  }
  return r.body.access_token;
}

/**
 * RFC 7662 introspection as the `introspector` client (or clientId/secret); resolves the
 * JSON answer ({active:false} for unknown tokens). Note: oidc-provider refuses to introspect
 * JWTs (400 unsupported_token_type); that answer is returned as is, with its `status`.
 */
export async function introspect(token, {
  clientId = 'introspector', secret, tokenTypeHint, provider, introspectionEndpoint, ca, timeoutMs,
} = {}) {
  const p = resolveProvider({ provider, introspectionEndpoint });
  const r = await postForm(introspectionEndpoint ?? p.introspectionEndpoint, clientId,
    secret ?? secretFor(clientId) ?? '', { token, token_type_hint: tokenTypeHint }, ca ?? p.ca, timeoutMs);
  if (r.status === 200) return r.body;
  return { status: r.status, ...(r.body ?? { text: r.text }) };
}

/** RFC 7009 revocation (by the token's own client, default opaque-client); resolves the HTTP status. */
export async function revoke(token, {
  clientId = 'opaque-client', secret, provider, revocationEndpoint, ca, timeoutMs,
} = {}) {
  const p = resolveProvider({ provider, revocationEndpoint });
  const r = await postForm(revocationEndpoint ?? p.revocationEndpoint, clientId,
    secret ?? secretFor(clientId) ?? '', { token }, ca ?? p.ca, timeoutMs);
  return r.status;
}

// ---------------------------------------------------------------------------------------
// JWT

const B64URL = /^[A-Za-z0-9_-]*$/;

function b64urlDecode(s, what) {
  if (!B64URL.test(s)) throw new Error(`${what} is not base64url`);
  return Buffer.from(s, 'base64url');
}

/**
 * Splits a compact JWS without verifying it:
 * {header, payload, signature: Buffer, signingInput: 'b64header.b64payload'}.
 */
export function decodeJwt(token) {
  const parts = String(token).split('.');
  if (parts.length !== 3) throw new Error(`a JWS has 3 parts, this has ${parts.length}`);
  return {
    header: JSON.parse(b64urlDecode(parts[0], 'header').toString('utf8')),
    payload: JSON.parse(b64urlDecode(parts[1], 'payload').toString('utf8')),
    signature: b64urlDecode(parts[2], 'signature'),
    signingInput: `${parts[0]}.${parts[1]}`,
  };
}

const VERIFY = {
  RS256: { hash: 'sha256' }, RS384: { hash: 'sha384' }, RS512: { hash: 'sha512' },
  PS256: { hash: 'sha256', pss: true }, PS384: { hash: 'sha384', pss: true }, PS512: { hash: 'sha512', pss: true },
  ES256: { hash: 'sha256', ec: true }, ES384: { hash: 'sha384', ec: true }, ES512: { hash: 'sha512', ec: true },
  EdDSA: { hash: null },
};

/**
 * Verifies a JWS signature with node:crypto against a JWKS ({keys:[...]}): picks the key by
 * the header's kid (and checks its alg); resolves {header, payload, jwk}. Throws when the
 * kid is unknown, the alg does not fit or the signature is wrong. Claims are NOT checked.
 */
export function verifyJwt(token, jwks) {
  const { header, payload, signature, signingInput } = decodeJwt(token);
  const v = VERIFY[header.alg];
  if (!v) throw new Error(`alg ${header.alg} not supported here`);
  const jwk = (jwks?.keys ?? []).find((k) => k.kid === header.kid);
  if (!jwk) throw new Error(`kid ${header.kid} not in the JWKS`);
  if (jwk.alg && jwk.alg !== header.alg) throw new Error(`kid ${header.kid} is for ${jwk.alg}, token says ${header.alg}`);
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  const ok = crypto.verify(v.hash, Buffer.from(signingInput), {
    key,
    ...(v.ec ? { dsaEncoding: 'ieee-p1363' } : {}),
    ...(v.pss ? { padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST } : {}),
  }, signature);
  if (!ok) throw new Error(`bad signature (kid ${header.kid})`);
  return { header, payload, jwk };
}

// ---------------------------------------------------------------------------------------
// Browser SSO: authorization code + PKCE, refresh, logout and device-flow helpers (what a
// relying party does; the browser part is in ../browser.mjs). TEST-ONLY secrets.

/** A random base64url string (state, nonce, PKCE verifier). */
export function randomToken(bytes = 32) {
  return crypto.randomBytes(bytes).toString('base64url');
}

/** RFC 7636 pair: {verifier, challenge = BASE64URL(SHA-256(verifier)), method: 'S256'}. */
export function pkcePair(verifier = randomToken(32)) {
  return { verifier, challenge: crypto.createHash('sha256').update(verifier).digest('base64url'), method: 'S256' };
}

function authMethodFor(clientId) {
  if (SSO_CLIENTS[clientId]) return SSO_CLIENTS[clientId].tokenEndpointAuthMethod;
  if (clientId === CLI_CLIENT_ID) return 'none';
  return 'client_secret_basic';
}

/**
 * The authorization request URL (response_type=code, PKCE S256).
 * o: {provider | authorizationEndpoint, clientId='portcullis-sso', redirectUri, scope=SSO_SCOPE,
 *     state, nonce, codeChallenge, codeChallengeMethod='S256', prompt, loginHint, maxAge, resource, extra}
 */
export function authorizationUrl(o = {}) {
  const p = o.authorizationEndpoint ? {} : resolveProvider(o);
  const u = new URL(o.authorizationEndpoint ?? p.authorizationEndpoint);
  const params = {
    response_type: 'code',
    client_id: o.clientId ?? 'portcullis-sso',
    redirect_uri: o.redirectUri,
    scope: o.scope ?? SSO_SCOPE,
    state: o.state,
    nonce: o.nonce,
    code_challenge: o.codeChallenge,
    code_challenge_method: o.codeChallenge ? (o.codeChallengeMethod ?? 'S256') : undefined,
    prompt: o.prompt,
    login_hint: o.loginHint,
    max_age: o.maxAge,
    resource: o.resource,
    ...o.extra,
  };
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) u.searchParams.set(k, String(v));
  return u.href;
}

/**
 * POSTs a form to the token endpoint with the client's authentication: client_secret_basic
 * (Authorization: Basic), client_secret_post (client_id + client_secret in the body) or none
 * (client_id only). Resolves {status, body} whatever the outcome.
 */
export async function tokenEndpointRequest(form, {
  provider, tokenEndpoint, clientId = 'portcullis-sso', secret, authMethod, ca, timeoutMs, url,
} = {}) {
  const p = resolveProvider({ provider, tokenEndpoint: url ?? tokenEndpoint });
  const method = authMethod ?? authMethodFor(clientId);
  const sec = secret ?? secretFor(clientId) ?? '';
  const fields = { ...form };
  const headers = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  if (method === 'client_secret_basic') headers.authorization = basic(clientId, sec);
  else if (method === 'client_secret_post') Object.assign(fields, { client_id: clientId, client_secret: sec });
  else if (method === 'none') fields.client_id = clientId;
  else throw new Error(`unsupported client authentication ${method}`);
  const body = new URLSearchParams(Object.entries(fields).filter(([, v]) => v !== undefined)).toString();
  const r = await httpRequest(url ?? tokenEndpoint ?? p.tokenEndpoint, {
    method: 'POST', headers, body, ca: ca ?? p.ca, timeoutMs,
  });
  let json;
  try { json = JSON.parse(r.text); } catch { json = undefined; }
  return { status: r.status, body: json ?? r.text };
}

/** authorization_code grant: {code, redirectUri, codeVerifier, clientId, secret, authMethod, provider}. */
export function exchangeCode({ code, redirectUri, codeVerifier, ...o }) {
  return tokenEndpointRequest({
    grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: codeVerifier,
  }, o);
}

/** refresh_token grant: {refreshToken, scope, clientId, secret, authMethod, provider}. */
export function refreshTokens({ refreshToken, scope, ...o }) {
  return tokenEndpointRequest({ grant_type: 'refresh_token', refresh_token: refreshToken, scope }, o);
}

/**
 * RFC 8628 device authorization request (default client portcullis-cli, public). Resolves
 * {status, body: {device_code, user_code, verification_uri, verification_uri_complete, expires_in, interval}}.
 */
export async function deviceAuthorization({ provider, clientId = CLI_CLIENT_ID, scope = SSO_SCOPE, resource, ...o } = {}) {
  const p = resolveProvider({ provider, tokenEndpoint: o.deviceAuthorizationEndpoint });
  return tokenEndpointRequest({ scope, resource }, {
    ...o, provider: p, clientId, url: o.deviceAuthorizationEndpoint ?? p.deviceAuthorizationEndpoint,
  });
}

/**
 * Polls the token endpoint with the device code until tokens come (resolves the token
 * response body) or an error other than authorization_pending / slow_down (throws, with
 * .response). intervalMs defaults to the device response's interval (seconds) or 5 s.
 */
export async function pollDeviceToken({
  deviceCode, intervalMs = 5000, timeoutMs = 60_000, clientId = CLI_CLIENT_ID, ...o
}) {
  const deadline = Date.now() + timeoutMs;
  let wait = intervalMs;
  for (;;) {
    const r = await tokenEndpointRequest({
      grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: deviceCode,
    }, { ...o, clientId });
    if (r.status === 200) return r.body;
    const err = r.body?.error;
    if (err === 'slow_down') wait += 5000;
    else if (err !== 'authorization_pending') {
      throw Object.assign(new Error(`device token poll: ${r.status} ${JSON.stringify(r.body)}`), { response: r });
    }
    if (Date.now() + wait > deadline) throw new Error(`device token poll: no tokens after ${timeoutMs} ms (last: ${err})`);
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

function checkTimes(payload, now, tol, what) {
  if (typeof payload.exp !== 'number' || payload.exp + tol <= now) throw new Error(`${what} expired (exp ${payload.exp}, now ${now})`);
  if (typeof payload.iat !== 'number' || payload.iat - tol > now) throw new Error(`${what} iat ${payload.iat} is in the future`);
}

function checkAud(payload, audience, what) {
  const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
  if (!aud.includes(audience)) throw new Error(`${what} aud ${JSON.stringify(payload.aud)} is not ${audience}`);
  if (aud.length > 1 && payload.azp !== audience) throw new Error(`${what} azp ${payload.azp} is not ${audience}`);
}

/**
 * Verifies an ID token as a relying party must (OIDC Core 3.1.3.7): signature with the JWKS
 * (node:crypto, by kid), iss, aud (and azp), exp, iat, and nonce when given. Throws with the
 * reason; resolves {header, payload}. o: {jwks, issuer, audience, nonce, now, clockToleranceSeconds=5}
 */
export function verifyIdToken(idToken, { jwks, issuer, audience, nonce, now = Math.floor(Date.now() / 1000), clockToleranceSeconds = 5 }) {
  const { header, payload } = verifyJwt(idToken, jwks);
  if (payload.iss !== issuer) throw new Error(`ID token iss ${payload.iss} is not ${issuer}`);
  checkAud(payload, audience, 'ID token');
  checkTimes(payload, now, clockToleranceSeconds, 'ID token');
  if (nonce !== undefined && payload.nonce !== nonce) throw new Error(`ID token nonce ${payload.nonce} is not the one sent`);
  if (typeof payload.sub !== 'string' || !payload.sub) throw new Error('ID token has no sub');
  return { header, payload };
}

/**
 * Verifies an OIDC back-channel logout token (typ logout+jwt, events claim, sub and/or sid,
 * no nonce) like verifyIdToken. Resolves {header, payload}.
 */
export function verifyLogoutToken(token, { jwks, issuer, audience, now = Math.floor(Date.now() / 1000), clockToleranceSeconds = 5 }) {
  const { header, payload } = verifyJwt(token, jwks);
  if (header.typ !== 'logout+jwt') throw new Error(`logout token typ ${header.typ}`);
  if (payload.iss !== issuer) throw new Error(`logout token iss ${payload.iss} is not ${issuer}`);
  checkAud(payload, audience, 'logout token');
  checkTimes(payload, now, clockToleranceSeconds, 'logout token');
  if (!payload.events || typeof payload.events['http://schemas.openid.net/event/backchannel-logout'] !== 'object') {
    throw new Error('logout token has no back-channel logout event');
  }
  if (!payload.sub && !payload.sid) throw new Error('logout token has neither sub nor sid');
  if ('nonce' in payload) throw new Error('logout token must not have a nonce');
  return { header, payload };
}

/** RP-initiated logout URL: {provider | endSessionEndpoint, idTokenHint, postLogoutRedirectUri, state, clientId}. */
export function endSessionUrl(o = {}) {
  const p = o.endSessionEndpoint ? {} : resolveProvider(o);
  const u = new URL(o.endSessionEndpoint ?? p.endSessionEndpoint);
  const params = {
    id_token_hint: o.idTokenHint, post_logout_redirect_uri: o.postLogoutRedirectUri, state: o.state, client_id: o.clientId,
  };
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) u.searchParams.set(k, String(v));
  return u.href;
}
