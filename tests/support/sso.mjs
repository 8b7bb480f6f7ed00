// Helpers for the gateway's browser SSO tests (issue 8; tests/integration/sso_browser.test.mjs):
// the `sso` config section and a gateway config around a running OIDC fixture, cookie keys,
// Set-Cookie parsing, requests that look like a browser navigation or an API call, the
// checks every SSO answer needs (401 login_required, 302 to the IdP), a recorder of the
// responses a Playwright page sees (redirects included, with their Set-Cookie headers), and an
// upstream handler that shows what it received as a small HTML page (for screenshots).
// node: built-ins only (plus harness.mjs and bearer.mjs).
//
//   const key = writeCookieKey(dir, 'k1');                       // 64 hex chars + newline
//   const config = ssoGatewayConfig({ idp, upstream, port, adminPort, routes,
//     sso: ssoSection({ secretFile, keyFiles: [key], cookieSecure: false }) });
//   const r = await gwRequest({ port, path: '/app/x', accept: NAV_ACCEPT });
//   const auth = assertLoginRedirect(assert, r, { idp, redirectUri: `http://localhost:${port}${CALLBACK_PATH}` });
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { httpRequest, eventually } from './harness.mjs';
import { providerEntry } from './bearer.mjs';

export const CALLBACK_PATH = '/.portcullis/callback';
export const LOGIN_PATH = '/.portcullis/login';
export const LOGOUT_PATH = '/.portcullis/logout';
export const USERINFO_PATH = '/.portcullis/userinfo';

/** The Accept header of a top-level navigation in Chromium. */
export const NAV_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';
export const JSON_ACCEPT = 'application/json';

export const SSO_SCOPES = Object.freeze(['openid', 'email', 'profile', 'groups']);

// ---------------------------------------------------------------------------------------
// Redis keys of browser sessions (src/sso/session_store.cpp) and unique request markers

const digestKey = (prefix, a, b) => `${prefix}${crypto.createHash('sha256').update(`${a}\n${b}`).digest('base64url')}`;
/** The Redis key of a session (session_store: redis). */
export const sessionKey = (sid) => `pc:sso:s:v1:${sid}`;
/** The renewal lock of a session. */
export const refreshLockKey = (sid) => `pc:sso:lock:v1:${sid}`;
/** The set of a subject's session ids (back-channel logout by sub). */
export const subjectIndex = (issuer, sub) => digestKey('pc:sso:sub:v1:', issuer, sub);
/** The set of session ids made from one IdP session (back-channel logout by sid). */
export const idpSessionIndex = (issuer, sid) => digestKey('pc:sso:idp:v1:', issuer, sid);

let markerSeq = 0;
/** A unique path segment, so access-log lines and upstream requests can be told apart. */
export const marker = (tag) => `${tag}-${process.pid}-${++markerSeq}`;

// ---------------------------------------------------------------------------------------
// Config

/** Writes a cookie key (32 random bytes as 64 hex chars, like `openssl rand -hex 32`) to DIR/NAME.key. */
export function writeCookieKey(dir, name) {
  const file = path.join(dir, `${name}.key`);
  fs.writeFileSync(file, `${crypto.randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  return file;
}

/** The top-level `sso` section (keys as the spec names them; undefined values are left out). */
export function ssoSection({
  provider = 'local', clientId = 'portcullis-sso', secretFile, clientAuth = 'client_secret_basic',
  keyFiles, cookieSecure, cookieName, sessionTtl = '8h', callbackPath, scopes = SSO_SCOPES,
  allowedRedirectHosts, postLogoutRedirectUri, sessionStore, idleTimeout, refreshInterval,
  cookieDomain, clientKeyFile, clientKeyId,
} = {}) {
  return {
    provider,
    client_id: clientId,
    client_secret_file: secretFile,
    client_auth: clientAuth,
    client_key_file: clientKeyFile,
    client_key_id: clientKeyId,
    cookie_secret_files: keyFiles,
    cookie_secure: cookieSecure,
    cookie_name: cookieName,
    cookie_domain: cookieDomain,
    session_store: sessionStore,
    session_ttl: sessionTtl,
    idle_timeout: idleTimeout,
    refresh_interval: refreshInterval,
    callback_path: callbackPath,
    scopes: [...scopes],
    allowed_redirect_hosts: allowedRedirectHosts,
    post_logout_redirect_uri: postLogoutRedirectUri,
  };
}

/**
 * A complete gateway config: one listener on 127.0.0.1:port (TLS when `tls` = {cert, key}),
 * admin on adminPort, the fixture `idp` as identity provider `local`, the `sso` section, the
 * echo upstream as upstream `app`, and `routes`.
 */
export function ssoGatewayConfig({ idp, upstream, port, adminPort, tls, sso, routes, providerExtra = {} }) {
  return {
    server: { workers: 1, drain_timeout: '2s' },
    access_log: { path: 'stdout' },
    listeners: [{ name: tls ? 'web-tls' : 'web', address: `127.0.0.1:${port}`, ...(tls ? { tls: { cert: tls.cert, key: tls.key } } : {}) }],
    admin: { address: `127.0.0.1:${adminPort}` },
    identity_providers: [providerEntry(idp, providerExtra)],
    sso,
    upstreams: [{ name: 'app', endpoints: [upstream.address] }],
    routes,
  };
}

// ---------------------------------------------------------------------------------------
// Upstream

const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
export { esc as escapeHtml };

/**
 * startUpstream handler: answers what it received ({name, method, url, headers, bodyLength}),
 * as an HTML page with `#upstream`, `#user` (X-Portcullis-User) and `#echo` (the JSON) when
 * the request accepts text/html, else as JSON (like the plain echo upstream).
 */
export function echoPageHandler(name = 'app') {
  return (req, res, { bodyLength }) => {
    const echo = { name, method: req.method, url: req.url, headers: req.headers, bodyLength };
    let body;
    let type;
    if (/text\/html/i.test(req.headers.accept ?? '')) {
      const user = req.headers['x-portcullis-user'] ?? '(no identity)';
      type = 'text/html; charset=utf-8';
      body = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Upstream ${esc(name)}</title></head>
<body style="font-family:'Liberation Sans',Arial,sans-serif;margin:40px">
<h1 id="upstream">Upstream ${esc(name)}</h1>
<p>Signed in as <b id="user">${esc(user)}</b>: ${esc(req.method)} <code id="url">${esc(req.url)}</code></p>
<p>What the upstream received:</p>
<pre id="echo" style="white-space:pre-wrap;word-break:break-all;font-size:12px">${esc(JSON.stringify(echo, null, 2))}</pre>
</body></html>`;
    } else {
      type = 'application/json';
      body = JSON.stringify(echo);
    }
    res.writeHead(200, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'x-upstream-name': name });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}

/** The upstream's echo shown on the current page (`#echo`), parsed. */
export async function pageEcho(page) {
  const text = await page.textContent('#echo', { timeout: 5000 });
  return JSON.parse(text);
}

// ---------------------------------------------------------------------------------------
// Cookies

/**
 * Parses one Set-Cookie value: {name, value, attrs (lower-case keys), httpOnly, secure,
 * sameSite, path, domain, maxAge (number | undefined), expires, raw}.
 */
export function parseSetCookie(line) {
  const [pair, ...rest] = String(line).split(';');
  const eq = pair.indexOf('=');
  const name = (eq < 0 ? pair : pair.slice(0, eq)).trim();
  const value = eq < 0 ? '' : pair.slice(eq + 1).trim();
  const attrs = {};
  for (const a of rest) {
    const i = a.indexOf('=');
    const k = (i < 0 ? a : a.slice(0, i)).trim().toLowerCase();
    if (!k) continue;
    attrs[k] = i < 0 ? true : a.slice(i + 1).trim();
  }
  return {
    name,
    value,
    attrs,
    httpOnly: 'httponly' in attrs,
    secure: 'secure' in attrs,
    sameSite: typeof attrs.samesite === 'string' ? attrs.samesite : undefined,
    path: typeof attrs.path === 'string' ? attrs.path : undefined,
    domain: typeof attrs.domain === 'string' ? attrs.domain : undefined,
    maxAge: typeof attrs['max-age'] === 'string' ? Number(attrs['max-age']) : undefined,
    expires: typeof attrs.expires === 'string' ? attrs.expires : undefined,
    raw: String(line),
  };
}

/** Set-Cookie headers of a node response (httpRequest result), parsed. */
export function setCookiesOf(res) {
  const h = res.headers?.['set-cookie'];
  if (!h) return [];
  return (Array.isArray(h) ? h : [h]).map(parseSetCookie);
}

/** True when a parsed Set-Cookie deletes the cookie (Max-Age <= 0 or Expires in the past). */
export function isDeletion(c) {
  if (c.maxAge !== undefined) return c.maxAge <= 0;
  if (c.expires) return Date.parse(c.expires) <= Date.now();
  return false;
}

const chunkIndex = (base, name) => {
  if (name === base) return 0;
  const m = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}_(\\d)$`).exec(name);
  return m ? Number(m[1]) : -1;
};

/**
 * The session cookie `base` as the gateway set it (chunk-aware: `base`, `base_1`..`base_9`),
 * from parsed Set-Cookies or from Playwright context cookies: [{name, value}] in chunk order
 * (deletions skipped). Empty when none.
 */
export function sessionChunks(cookies, base) {
  return cookies
    .filter((c) => chunkIndex(base, c.name) >= 0 && c.value !== '' && !(c.raw && isDeletion(c)))
    .sort((a, b) => chunkIndex(base, a.name) - chunkIndex(base, b.name))
    .map(({ name, value }) => ({ name, value }));
}

/** A Cookie header value from [{name, value}]. */
export function cookieHeader(list) {
  return list.map(({ name, value }) => `${name}=${value}`).join('; ');
}

/**
 * The value with one character changed, near the middle and in the same alphabet (a digit
 * becomes the next digit; else a letter changes case; else the char becomes 'A'): the
 * length and encoding stay valid, the bytes differ.
 */
export function flipOneChar(value) {
  const s = String(value);
  const mid = Math.floor(s.length / 2);
  for (let d = 0; d < s.length; d += 1) {
    for (const i of [mid + d, mid - d]) {
      if (i < 0 || i >= s.length) continue;
      const c = s[i];
      if (/[0-9]/.test(c)) return `${s.slice(0, i)}${(Number(c) + 1) % 10}${s.slice(i + 1)}`;
    }
  }
  for (let i = mid; i < s.length; i += 1) {
    const c = s[i];
    if (/[a-z]/i.test(c)) {
      const f = c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase();
      return `${s.slice(0, i)}${f}${s.slice(i + 1)}`;
    }
  }
  return `${s.slice(0, mid)}${s[mid] === 'A' ? 'B' : 'A'}${s.slice(mid + 1)}`;
}

// ---------------------------------------------------------------------------------------
// Requests

/**
 * One request to the gateway on 127.0.0.1:port with Host `localhost:PORT` (or `host`), an
 * Accept header (`accept`), extra headers and a Cookie header (`cookie`). TLS with `tls`
 * (trusting `ca`, SNI localhost). Resolves httpRequest's result; redirects are not followed.
 */
export function gwRequest({
  port, tls = false, ca, host, path: p = '/', method = 'GET', accept, headers = {}, cookie, timeoutMs = 10_000,
}) {
  const h = { host: host ?? `localhost:${port}`, ...headers };
  if (accept !== undefined) h.accept = accept;
  if (cookie) h.cookie = cookie;
  return httpRequest({ port, tls, ca, path: p, method, headers: h, timeoutMs });
}

/** A Playwright APIResponse as {status, headers, body} (the shape of httpRequest results). */
export async function apiResult(resp) {
  return { status: resp.status(), headers: resp.headers(), body: await resp.text() };
}

const describeRes = (r) => `got ${r.status} ${String(r.body ?? '').slice(0, 300)} location=${r.headers?.location}`;

/**
 * 401 JSON {"error":"login_required"} with an x-request-id header (equal to body.request_id
 * when the body has one) and no redirect. Returns the body.
 */
export function assertLoginRequired(assert, r, what) {
  const where = `${what}: ${describeRes(r)}`;
  assert.equal(r.status, 401, where);
  assert.match(String(r.headers['content-type'] ?? ''), /application\/json/i, `content-type (${where})`);
  let body;
  try { body = JSON.parse(r.body); } catch { assert.fail(`401 body is not JSON (${where})`); }
  assert.equal(body.error, 'login_required', where);
  const rid = r.headers['x-request-id'];
  assert.ok(typeof rid === 'string' && rid.length > 0, `no x-request-id (${where})`);
  if (body.request_id !== undefined) assert.equal(body.request_id, rid, `body.request_id vs x-request-id (${where})`);
  assert.equal(r.headers.location, undefined, `a 401 carries no Location (${where})`);
  return body;
}

/** A gateway error answered as JSON {error: code} with status. Returns the body. */
export function assertJsonError(assert, r, status, code, what) {
  const where = `${what}: ${describeRes(r)}`;
  assert.equal(r.status, status, where);
  assert.match(String(r.headers['content-type'] ?? ''), /application\/json/i, `content-type (${where})`);
  let body;
  try { body = JSON.parse(r.body); } catch { assert.fail(`body is not JSON (${where})`); }
  assert.equal(body.error, code, where);
  return body;
}

/**
 * A 302 to the IdP's authorization endpoint with a complete code + PKCE request: checks
 * response_type=code, client_id, redirect_uri, scope (openid + `scopes`), state, nonce,
 * code_challenge (43 base64url chars) and code_challenge_method=S256. Returns
 * {url, params (URLSearchParams), state, nonce, challenge}.
 */
export function assertLoginRedirect(assert, r, {
  idp, clientId = 'portcullis-sso', redirectUri, scopes = SSO_SCOPES, what = 'login redirect',
}) {
  const where = `${what}: ${describeRes(r)}`;
  assert.equal(r.status, 302, where);
  const loc = r.headers.location;
  assert.ok(loc, `no Location (${where})`);
  const url = new URL(loc);
  assert.equal(`${url.origin}${url.pathname}`, idp.authorizationEndpoint, `Location is the IdP's authorization_endpoint (${where})`);
  const q = url.searchParams;
  assert.equal(q.get('response_type'), 'code', where);
  assert.equal(q.get('client_id'), clientId, where);
  if (redirectUri) assert.equal(q.get('redirect_uri'), redirectUri, where);
  const scope = (q.get('scope') ?? '').split(' ');
  for (const s of scopes) assert.ok(scope.includes(s), `scope ${s} missing in ${q.get('scope')} (${where})`);
  assert.ok(q.get('state'), `no state (${where})`);
  assert.ok(q.get('nonce'), `no nonce (${where})`);
  assert.match(q.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/, `code_challenge (${where})`);
  assert.equal(q.get('code_challenge_method'), 'S256', where);
  return { url, params: q, state: q.get('state'), nonce: q.get('nonce'), challenge: q.get('code_challenge') };
}

/**
 * Polls a navigation to `probePath` until the gateway answers 302 to the IdP (the SSO part
 * has the provider's discovery document).
 */
export async function waitForSsoReady({ port, tls = false, ca, idp, probePath = '/app/ready-probe', timeoutMs = 15_000 }) {
  let last;
  try {
    await eventually(async () => {
      last = await gwRequest({ port, tls, ca, path: probePath, accept: NAV_ACCEPT, timeoutMs: 3000 });
      return last.status === 302 && String(last.headers.location ?? '').startsWith(idp.authorizationEndpoint);
    }, { timeoutMs, intervalMs: 200, message: `the gateway on ${port} to redirect a navigation to the IdP` });
  } catch (e) {
    e.message += ` (last answer ${last?.status}: ${String(last?.body ?? '').slice(0, 300)} location=${last?.headers?.location})`;
    throw e;
  }
}

// ---------------------------------------------------------------------------------------
// Browser

/**
 * Records every response a Playwright page sees, redirects included (Playwright emits
 * 'response' for 3xx hops too): entries {seq, url, pathname, status, headers: [{name, value}],
 * header(name), setCookies (parsed)}. settled() waits for the async header reads and returns
 * the entries in arrival order.
 */
export function recordResponses(page) {
  const entries = [];
  const pending = new Set();
  let seq = 0;
  const onResponse = (r) => {
    const n = seq++;
    const p = (async () => {
      let headers = [];
      try { headers = await r.headersArray(); } catch { /* page gone */ }
      const url = r.url();
      entries.push({
        seq: n,
        url,
        pathname: (() => { try { return new URL(url).pathname; } catch { return ''; } })(),
        status: r.status(),
        headers,
        header: (name) => headers.find((h) => h.name.toLowerCase() === name.toLowerCase())?.value,
        setCookies: headers.filter((h) => h.name.toLowerCase() === 'set-cookie')
          .flatMap((h) => h.value.split('\n')).map(parseSetCookie),
      });
    })();
    pending.add(p);
    p.finally(() => pending.delete(p));
  };
  page.on('response', onResponse);
  return {
    entries,
    async settled() {
      while (pending.size) await Promise.all([...pending]);
      entries.sort((a, b) => a.seq - b.seq);
      return entries;
    },
    /** Entries whose pathname is `pathname` (optionally on `origin`). */
    async at(pathname, origin) {
      await this.settled();
      return entries.filter((e) => e.pathname === pathname && (!origin || e.url.startsWith(origin)));
    },
    clear() { entries.length = 0; },
    stop() { page.off('response', onResponse); },
  };
}

/**
 * Asserts an HTML document loads nothing from elsewhere: no script/img/iframe src (other than
 * data:), no <link href> (stylesheets, icons, fonts), no CSS url() or @import.
 */
export function assertSelfContainedHtml(assert, html, what) {
  const checks = [
    [/<script\b[^>]*\bsrc\s*=/i, 'script src'],
    [/\bsrc\s*=\s*["']?(?!data:)[^\s"'>]/i, 'src= (not data:)'],
    [/<link\b[^>]*\bhref\s*=\s*["']?(?!data:)[^\s"'>]/i, '<link href>'],
    [/url\(\s*["']?(?!data:|#)[^)\s"']/i, 'CSS url()'],
    [/@import/i, '@import'],
    [/<iframe\b/i, 'iframe'],
  ];
  for (const [re, label] of checks) {
    const m = re.exec(html);
    assert.equal(m, null, `${what}: the page loads an external asset (${label}: ${m ? html.slice(Math.max(0, m.index - 40), m.index + 80) : ''})`);
  }
}
