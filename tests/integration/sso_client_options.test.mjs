// Two SSO client options end to end (docs/sso.md): headless Debian Chromium (playwright-core,
// tests/support/browser.mjs), the real oidc-provider fixture (tests/support/oidc/), the real
// gateway binary and echo upstreams that show what they received.
//
// private_key_jwt (sso.client_auth: private_key_jwt, client_key_file, client_key_id):
//   - an EC P-256 key (ES256, kid defaulting to the RFC 7638 thumbprint) and an RSA 2048 key
//     (RS256, a configured client_key_id), each registered at the fixture as a private_key_jwt
//     client with its public JWK: the browser signs in through the gateway and lands on the
//     upstream page; the token request the gateway made is recorded on its way to the IdP (the
//     fixture's issuer is a recording pass-through proxy, see startRecordingProxy) and checked:
//     client_id, client_assertion_type, a client_assertion verified with the public key (alg,
//     kid, iss = sub = client id, aud = the token endpoint, exp = iat + 60, a fresh jti per
//     request), no client secret, no Authorization header;
//   - the silent renewal (refresh_interval 1s) authenticates the same way: grant_type=refresh_token
//     with a new client assertion, accepted by the IdP;
//   - a gateway signing with a key the IdP does not know (same kid): the callback answers 502
//     idp_token_exchange_failed (the IdP answered 401 invalid_client), no session, the upstream
//     never reached;
//   - `config check` (and `serve`) refuse: client_secret_file with private_key_jwt, client_key_file
//     or client_key_id without it, private_key_jwt without a key, P-384, RSA 1024, Ed25519, a public
//     key, garbage, a missing file (each naming the file and the reason); they accept EC P-256
//     (SEC1 and PKCS#8) and RSA 2048/4096 (PKCS#1 and PKCS#8).
//
// cookie_domain (one sign-in, many hosts): Chromium maps *.portcullis.test to 127.0.0.1
// (--host-resolver-rules); the gateway listens on 127.0.0.1:PORT with cookie_secure: false and
// routes by Host (a.portcullis.test -> upstream a, b.portcullis.test -> upstream b):
//   - sign in on a.portcullis.test: the pre-login and session cookies carry
//     Domain=portcullis.test, redirect_uri is a.portcullis.test's callback; then
//     b.portcullis.test is served at once (no request to the IdP, the fixture's authorization
//     counter did not move), upstream b saw alice, userinfo on both hosts is the same session;
//   - logout on b clears the session for a too (the deletion carries the Domain);
//   - a control gateway without cookie_domain: host-only cookies, b goes to the IdP;
//   - '.Portcullis.TEST' is normalised to Domain=portcullis.test and, with cookie_secure (default
//     true), the default name becomes __Secure-portcullis; `config check` refuses
//     cookie_domain 'localhost' and a __Host- cookie_name with cookie_domain.
//
// Needs `npm ci` in tests/ and /usr/bin/chromium.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {
  startGateway, startUpstream, tempDir, rmTemp, freePorts, cleanupList, runGateway, writeConfig, sleep,
} from '../support/harness.mjs';
import { startProvider, decodeJwt, verifyJwt, ACCOUNTS } from '../support/oidc/client.mjs';
import { launchBrowser, signIn, screenshot } from '../support/browser.mjs';
import { writeSecret } from '../support/bearer.mjs';
import {
  CALLBACK_PATH, LOGOUT_PATH, USERINFO_PATH, NAV_ACCEPT, JSON_ACCEPT,
  writeCookieKey, ssoSection, ssoGatewayConfig, echoPageHandler, pageEcho,
  setCookiesOf, isDeletion, sessionChunks, gwRequest, apiResult, assertLoginRequired,
  assertLoginRedirect, waitForSsoReady, recordResponses,
} from '../support/sso.mjs';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const DOMAIN = 'portcullis.test';
const anyAuthenticated = { allow: { authenticated_user: true } };

// ---------------------------------------------------------------------------------------
// Keys

/** The RFC 7638 JWK thumbprint (SHA-256, base64url) of a public JWK (EC or RSA). */
function jwkThumbprint(jwk) {
  const members = jwk.kty === 'EC'
    ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
    : { e: jwk.e, kty: jwk.kty, n: jwk.n };
  return crypto.createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

/**
 * A fresh key pair: kind 'ec' (P-256 unless namedCurve), 'rsa' (2048 unless bits) or 'ed25519'.
 * Resolves {privateKey, publicKey, jwk (public), thumbprint, pem(format)} where format is
 * 'pkcs8', 'sec1' (EC) or 'pkcs1' (RSA).
 */
function makeKey(kind, { namedCurve = 'P-256', bits = 2048 } = {}) {
  const pair = kind === 'ec' ? crypto.generateKeyPairSync('ec', { namedCurve })
    : kind === 'rsa' ? crypto.generateKeyPairSync('rsa', { modulusLength: bits })
      : crypto.generateKeyPairSync('ed25519');
  const jwk = pair.publicKey.export({ format: 'jwk' });
  return {
    ...pair,
    jwk,
    thumbprint: kind === 'ed25519' ? undefined : jwkThumbprint(jwk),
    pem: (type = 'pkcs8') => pair.privateKey.export({ format: 'pem', type }),
  };
}

/** Writes PEM text to DIR/NAME with mode 0600; returns the path. */
function writeKeyFile(dir, name, pem) {
  const file = path.join(dir, name);
  fs.writeFileSync(file, pem, { mode: 0o600 });
  return file;
}

// ---------------------------------------------------------------------------------------
// A recording pass-through proxy in front of the IdP (listening on a free port; setTarget(port)
// once the IdP runs): the fixture runs with its issuer set to the proxy's URL, so the gateway (discovery, JWKS, token endpoint) and the browser (login
// pages) reach it only through here. Every POST /token is kept with its answer.

async function startRecordingProxy() {
  const tokenRequests = [];
  let targetPort;
  const hop = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const rec = req.method === 'POST' && req.url.split('?')[0] === '/token'
        ? { headers: { ...req.headers }, body: body.toString('utf8'), status: undefined, response: undefined }
        : undefined;
      if (rec) tokenRequests.push(rec);
      const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => !hop.has(k)));
      headers['content-length'] = String(body.length);
      const up = http.request({
        host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers, agent,
      }, (ur) => {
        const rc = [];
        ur.on('data', (c) => rc.push(c));
        ur.on('end', () => {
          const rb = Buffer.concat(rc);
          if (rec) { rec.status = ur.statusCode; rec.response = rb.toString('utf8'); }
          const out = Object.fromEntries(Object.entries(ur.headers).filter(([k]) => !hop.has(k)));
          out['content-length'] = String(rb.length);
          res.writeHead(ur.statusCode, out);
          res.end(rb);
        });
        ur.on('error', () => res.destroy());
      });
      up.on('error', (e) => {
        if (rec) { rec.status = 'proxy-error'; rec.response = String(e); }
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`proxy: ${e}`);
      });
      up.end(body);
    });
  });
  server.keepAliveTimeout = 5000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    port: server.address().port,
    /** Where requests go (the IdP's real port). */
    setTarget: (p) => { targetPort = p; },
    tokenRequests,
    close: () => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections?.(); agent.destroy(); }),
  };
}

/** The last lines of a gateway's output, for assertion messages. */
const logTail = (g, n = 25) => (g?.proc ? `\n--- gateway log (last ${n} lines) ---\n${g.proc.logText().trim().split('\n').slice(-n).join('\n')}` : '');

// =======================================================================================

describe('SSO client options through the gateway: private_key_jwt, cookie_domain (Chromium + oidc-provider)', { timeout: 240_000 }, () => {
  const cleanup = cleanupList();
  let dir;
  let idp;
  let proxy;
  let browser;
  let upA;
  let upB;
  let cookieKeyN = 0;
  /** client_id -> the redirect URIs registered for it at the fixture so far. */
  const redirects = new Map();

  const hits = (up, m) => up.requests.filter((r) => r.url.includes(m));
  const counters = async () => (await idp.state()).counters;
  let markSeq = 0;
  const marker = (tag) => `m=${tag}-${process.pid}-${++markSeq}`;
  const isAuthorizationRequest = (u) => {
    try { const x = new URL(u); return `${x.origin}${x.pathname}` === idp.authorizationEndpoint; } catch { return false; }
  };

  before(async () => {
    dir = tempDir('portcullis-sso-opts-');
    cleanup.add(() => rmTemp(dir));
    // The proxy listens first; the fixture's issuer is the proxy's URL.
    proxy = await startRecordingProxy();
    cleanup.add(() => proxy.close());
    idp = await startProvider({ issuer: `http://127.0.0.1:${proxy.port}`, consent: 'auto' });
    cleanup.add(() => idp.stop());
    proxy.setTarget(idp.port);
    upA = await startUpstream({ name: 'a', handler: echoPageHandler('a') });
    cleanup.add(() => upA.close());
    upB = await startUpstream({ name: 'b', handler: echoPageHandler('b') });
    cleanup.add(() => upB.close());
    browser = await launchBrowser({ args: [`--host-resolver-rules=MAP *.${DOMAIN} 127.0.0.1`] });
    cleanup.add(() => browser.close());
  });

  after(() => cleanup.run());

  /** Adds redirect URIs to a browser client of the fixture (the client's list is replaced by the union). */
  async function allowRedirects(clientId, uris) {
    const set = redirects.get(clientId) ?? new Set();
    for (const u of uris) set.add(u);
    redirects.set(clientId, set);
    return idp.updateClient({ client_id: clientId, redirect_uris: [...set] });
  }

  /**
   * Starts gateway `name` (upstreams app = a, appb = b) on fresh ports with this sso section and
   * routes, after registering http://<each of callbackHosts>:PORT/.portcullis/callback for
   * sso.client_id at the fixture; waits until it redirects to the IdP. Ports are taken just
   * before the start (a port taken early can be grabbed as an ephemeral port meanwhile); a bind
   * race is retried with new ports.
   */
  async function startSsoGateway(name, sso, routes, { callbackHosts = ['localhost'] } = {}) {
    for (let attempt = 1; ; attempt += 1) {
      const [port, adminPort] = await freePorts(2);
      await allowRedirects(sso.client_id, callbackHosts.map((h) => `http://${h}:${port}${CALLBACK_PATH}`));
      const config = ssoGatewayConfig({ idp, upstream: upA, port, adminPort, sso, routes });
      config.upstreams.push({ name: 'appb', endpoints: [upB.address] });
      let proc;
      try {
        proc = await startGateway({ config, readyTimeoutMs: 15_000 });
      } catch (e) {
        if (attempt < 3 && /address already in use/i.test(e.message)) continue;
        throw e;
      }
      cleanup.add(() => proc.stop());
      await waitForSsoReady({ port, idp });
      return { name, port, adminPort, proc, origin: `http://localhost:${port}` };
    }
  }

  const cookieKey = () => writeCookieKey(dir, `k${++cookieKeyN}`);

  // -------------------------------------------------------------------------------------
  // private_key_jwt

  const PK_ROUTES = [
    { name: 'app', match: { path_prefix: '/app' }, upstream: 'app', auth: 'sso', policy: anyAuthenticated },
    { name: 'public', match: { path_prefix: '/' }, upstream: 'app', auth: 'public' },
  ];

  let pkP;
  /**
   * Keys and fixture clients for private_key_jwt (registered once): portcullis-pkjwt (EC P-256,
   * ES256, kid = thumbprint; gateways pkEs and pkBad) and portcullis-pkjwt-rsa (RSA 2048, RS256,
   * kid portcullis-rsa-key-1; gateway pkRs).
   */
  const pkSetup = () => (pkP ??= (async () => {
    const ec = makeKey('ec');
    const rsa = makeKey('rsa');
    const rsaKid = 'portcullis-rsa-key-1';
    const ecJwk = { ...ec.jwk, kid: ec.thumbprint, alg: 'ES256', use: 'sig' };
    const rsaJwk = { ...rsa.jwk, kid: rsaKid, alg: 'RS256', use: 'sig' };
    // Each gateway adds its callback when it starts (startSsoGateway); a placeholder until then.
    const placeholder = `http://localhost/placeholder${CALLBACK_PATH}`;
    const register = (clientId, alg, jwk) => {
      redirects.set(clientId, new Set([placeholder]));
      return idp.updateClient({
        client_id: clientId,
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: alg,
        jwks: { keys: [jwk] },
        client_secret: null,
        redirect_uris: [placeholder],
      });
    };
    let registered;
    try {
      registered = {
        es: await register('portcullis-pkjwt', 'ES256', ecJwk),
        rs: await register('portcullis-pkjwt-rsa', 'RS256', rsaJwk),
      };
    } catch (e) {
      throw new Error(`the fixture refused a private_key_jwt client: ${e.message}`);
    }
    return {
      ec, rsa, ecJwk, rsaJwk, rsaKid, registered,
      ecFile: writeKeyFile(dir, 'client-ec-p256.pem', ec.pem('pkcs8')),
      rsaFile: writeKeyFile(dir, 'client-rsa-2048.pem', rsa.pem('pkcs1')),
    };
  })());

  const gwP = {};
  const pkGateway = (name) => (gwP[name] ??= (async () => {
    const k = await pkSetup();
    const common = { clientAuth: 'private_key_jwt', keyFiles: [cookieKey()], cookieSecure: false };
    let sso;
    if (name === 'pkEs') {
      sso = ssoSection({ ...common, clientId: 'portcullis-pkjwt', clientKeyFile: k.ecFile });
    } else if (name === 'pkRef') {
      sso = ssoSection({ ...common, clientId: 'portcullis-pkjwt', clientKeyFile: k.ecFile, refreshInterval: '1s' });
    } else if (name === 'pkRs') {
      sso = ssoSection({ ...common, clientId: 'portcullis-pkjwt-rsa', clientKeyFile: k.rsaFile, clientKeyId: k.rsaKid });
    } else {
      // Another P-256 key, presented under the registered key's kid: only the signature differs.
      const other = makeKey('ec');
      sso = ssoSection({
        ...common, clientId: 'portcullis-pkjwt', clientKeyFile: writeKeyFile(dir, 'client-ec-unregistered.pem', other.pem('pkcs8')), clientKeyId: k.ec.thumbprint,
      });
    }
    return startSsoGateway(name, sso, PK_ROUTES);
  })());

  /**
   * A fresh browser context opens `target` on gateway g and signs in as alice. Resolves {page,
   * context, rec, callback (the callback's response entry), session, tokenRequests (the token
   * requests the IdP received meanwhile)}.
   */
  async function signInThrough(g, target, { origin = g.origin, context } = {}) {
    const ctx = context ?? await browser.newContext();
    if (!context) cleanup.add(() => ctx.close());
    const page = await ctx.newPage();
    page.setDefaultTimeout(15_000);
    const rec = recordResponses(page);
    const idpRequests = [];
    page.on('request', (r) => { if (r.url().startsWith(idp.issuer)) idpRequests.push(r.url()); });
    const tokenMark = proxy.tokenRequests.length;
    await page.goto(`${origin}${target}`);
    assert.ok(page.url().startsWith(`${idp.issuer}/interaction/`),
      `${origin}${target} should lead to the IdP's login page; the browser is on ${page.url()}${logTail(g)}`);
    await signIn(page, { username: 'alice' });
    const entries = await rec.settled();
    const first = entries.find((e) => e.url === `${origin}${target}`);
    const callback = entries.find((e) => e.pathname === CALLBACK_PATH && e.url.startsWith(origin));
    return {
      page, context: ctx, rec, first, callback, idpRequests, target, origin,
      tokenRequests: proxy.tokenRequests.slice(tokenMark),
    };
  }

  /** Checks a recorded token request made with private_key_jwt; returns the assertion's {header, payload}. */
  function checkClientAssertion(rec, { clientId, jwk, alg, kid, grantType = 'authorization_code' }) {
    const where = `token request ${rec.body.slice(0, 400)} -> ${rec.status} ${String(rec.response).slice(0, 300)}`;
    const form = new URLSearchParams(rec.body);
    assert.equal(form.get('grant_type'), grantType, where);
    if (grantType === 'authorization_code') {
      assert.ok(form.get('code'), `code (${where})`);
      assert.ok(form.get('code_verifier'), `PKCE code_verifier (${where})`);
    } else {
      assert.ok(form.get('refresh_token'), `refresh_token (${where})`);
    }
    assert.equal(form.get('client_id'), clientId, `client_id (${where})`);
    assert.equal(form.get('client_assertion_type'), JWT_BEARER, `client_assertion_type (${where})`);
    assert.equal(form.get('client_secret'), null, `no client_secret (${where})`);
    assert.equal(rec.headers.authorization, undefined, `no Authorization header (${where})`);
    assert.equal(form.getAll('client_assertion').length, 1, `one client_assertion (${where})`);
    const assertion = form.get('client_assertion');
    const { header } = decodeJwt(assertion);
    assert.equal(header.alg, alg, `assertion alg (${JSON.stringify(header)})`);
    assert.equal(header.kid, kid, `assertion kid (${JSON.stringify(header)})`);
    const { payload } = verifyJwt(assertion, { keys: [jwk] }); // throws on a bad signature
    assert.equal(payload.iss, clientId, `iss (${JSON.stringify(payload)})`);
    assert.equal(payload.sub, clientId, `sub (${JSON.stringify(payload)})`);
    const aud = Array.isArray(payload.aud) && payload.aud.length === 1 ? payload.aud[0] : payload.aud;
    assert.equal(aud, idp.tokenEndpoint, `aud = the token endpoint (${JSON.stringify(payload)})`);
    assert.ok(Number.isInteger(payload.iat) && Number.isInteger(payload.exp), `integer iat/exp (${JSON.stringify(payload)})`);
    assert.equal(payload.exp - payload.iat, 60, `exp = iat + 60 (${JSON.stringify(payload)})`);
    assert.ok(Math.abs(payload.iat - Date.now() / 1000) < 300, `iat is the current time (${payload.iat})`);
    assert.equal(typeof payload.jti, 'string', `jti (${JSON.stringify(payload)})`);
    assert.ok(payload.jti.length >= 16, `a random jti of at least 16 characters (${payload.jti})`);
    assert.equal(rec.status, 200, `the IdP accepted the assertion (${where})`);
    return { header, payload };
  }

  /** The browser is back on the upstream page of `target`, signed in as alice; the upstream saw her. */
  async function assertLanded(s, g, up, what) {
    const url = `${s.origin}${s.target}`;
    assert.equal(s.page.url(), url, `${what}: back on the URL first asked for${logTail(g)}`);
    assert.ok(s.callback, `${what}: the browser went through the gateway's callback`);
    assert.equal(s.callback.status, 302, `${what}: callback status${logTail(g)}`);
    assert.equal(await s.page.textContent('#user'), 'alice', `${what}: the upstream page names alice`);
    const echo = await pageEcho(s.page);
    assert.equal(echo.url, s.target, what);
    assert.equal(echo.headers['x-portcullis-user'], 'alice', what);
    assert.equal(echo.headers['x-portcullis-email'], ACCOUNTS.alice.email, what);
    const m = s.target.split('?')[1];
    const seen = hits(up, m);
    assert.equal(seen.length, 1, `${what}: the upstream got the page once`);
    assert.equal(seen[0].headers['x-portcullis-user'], 'alice', what);
  }

  test('private_key_jwt, EC P-256: sign-in lands on the upstream page; the assertion is ES256, kid = RFC 7638 thumbprint, fresh per request', async (t) => {
    const k = await pkSetup();
    assert.equal(k.registered.es.token_endpoint_auth_method, 'private_key_jwt', JSON.stringify(k.registered.es));
    const g = await pkGateway('pkEs');
    const s1 = await signInThrough(g, `/app/ec?${marker('ec1')}`);
    await assertLanded(s1, g, upA, 'EC key, first sign-in');
    assert.equal(s1.tokenRequests.length, 1, `one token request for the sign-in: ${s1.tokenRequests.map((r) => r.status)}`);
    const a1 = checkClientAssertion(s1.tokenRequests[0], { clientId: 'portcullis-pkjwt', jwk: k.ecJwk, alg: 'ES256', kid: k.ec.thumbprint });
    // userinfo: the session is alice's.
    const info = await apiResult(await s1.page.request.get(`${g.origin}${USERINFO_PATH}`, { headers: { accept: JSON_ACCEPT }, maxRedirects: 0 }));
    assert.equal(info.status, 200, info.body);
    assert.equal(JSON.parse(info.body).subject, 'alice');
    t.diagnostic(`signed in with private_key_jwt (ES256): ${await screenshot(s1.page, 'sso-pkjwt-es256')}`);

    // A second sign-in (another browser) is a new assertion: new jti (the IdP refuses a replayed one).
    const s2 = await signInThrough(g, `/app/ec?${marker('ec2')}`);
    await assertLanded(s2, g, upA, 'EC key, second sign-in');
    assert.equal(s2.tokenRequests.length, 1);
    const a2 = checkClientAssertion(s2.tokenRequests[0], { clientId: 'portcullis-pkjwt', jwk: k.ecJwk, alg: 'ES256', kid: k.ec.thumbprint });
    assert.notEqual(a2.payload.jti, a1.payload.jti, 'each assertion has its own jti');
  });

  test('private_key_jwt, RSA 2048 (PKCS#1 PEM): sign-in lands on the upstream page; the assertion is RS256 with the configured client_key_id', async () => {
    const k = await pkSetup();
    const g = await pkGateway('pkRs');
    const s = await signInThrough(g, `/app/rsa?${marker('rsa')}`);
    await assertLanded(s, g, upA, 'RSA key');
    assert.equal(s.tokenRequests.length, 1, `one token request: ${s.tokenRequests.map((r) => r.status)}`);
    checkClientAssertion(s.tokenRequests[0], { clientId: 'portcullis-pkjwt-rsa', jwk: k.rsaJwk, alg: 'RS256', kid: k.rsaKid });
  });

  test('private_key_jwt also authenticates the silent renewal (grant_type=refresh_token) after refresh_interval', async () => {
    const k = await pkSetup();
    const g = await pkGateway('pkRef');
    const s = await signInThrough(g, `/app/refresh?${marker('ref1')}`);
    await assertLanded(s, g, upA, 'EC key, refresh_interval 1s');
    assert.equal(s.tokenRequests.length, 1);
    const first = checkClientAssertion(s.tokenRequests[0], { clientId: 'portcullis-pkjwt', jwk: k.ecJwk, alg: 'ES256', kid: k.ec.thumbprint });
    assert.ok(JSON.parse(s.tokenRequests[0].response).refresh_token, 'the IdP gave a refresh token (precondition)');
    await sleep(2100); // past refresh_interval (1 s, whole seconds)
    const mark = proxy.tokenRequests.length;
    const m = marker('ref2');
    const resp = await s.page.goto(`${g.origin}/app/refresh-later?${m}`);
    assert.equal(resp.status(), 200, `after refresh_interval: ${resp.status()}${logTail(g)}`);
    assert.equal(await s.page.textContent('#user'), 'alice');
    assert.equal(hits(upA, m).length, 1);
    const renewals = proxy.tokenRequests.slice(mark);
    assert.equal(renewals.length, 1, `one renewal at the token endpoint: ${renewals.map((r) => `${r.status} ${r.body.slice(0, 80)}`)}${logTail(g)}`);
    const again = checkClientAssertion(renewals[0], {
      clientId: 'portcullis-pkjwt', jwk: k.ecJwk, alg: 'ES256', kid: k.ec.thumbprint, grantType: 'refresh_token',
    });
    assert.notEqual(again.payload.jti, first.payload.jti, 'a new assertion for the renewal');
  });

  test('private_key_jwt with a key the IdP does not know: callback 502 idp_token_exchange_failed, no session, upstream not reached', async () => {
    const g = await pkGateway('pkBad');
    const m = marker('badkey');
    const target = `/app/bad?${m}`;
    const s = await signInThrough(g, target);
    // The IdP refused the client authentication...
    assert.equal(s.tokenRequests.length, 1, `one token request: ${s.tokenRequests.map((r) => `${r.status} ${r.response}`)}`);
    const tr = s.tokenRequests[0];
    assert.equal(new URLSearchParams(tr.body).get('client_assertion_type'), JWT_BEARER);
    assert.equal(tr.status, 401, `the IdP's answer: ${tr.status} ${tr.response}`);
    assert.equal(JSON.parse(tr.response).error, 'invalid_client', tr.response);
    // ...and the gateway says so: 502 idp_token_exchange_failed (an HTML page for the browser).
    assert.ok(s.callback, 'the browser reached the callback');
    assert.equal(s.callback.status, 502, `callback status${logTail(g)}`);
    assert.ok(s.page.url().startsWith(`${g.origin}${CALLBACK_PATH}?`), `the browser stays on the callback: ${s.page.url()}`);
    assert.equal((await s.page.textContent('#error')).trim(), 'idp_token_exchange_failed');
    const rid = s.callback.header('x-request-id');
    assert.ok(rid, 'x-request-id on the 502');
    assert.equal((await s.page.textContent('#request-id')).trim(), rid);
    // No session: nothing set, nothing kept, the upstream never saw the request.
    const set = sessionChunks(s.callback.setCookies, 'portcullis');
    assert.deepEqual(set, [], `no session cookie from the failed callback: ${s.callback.setCookies.map((c) => c.raw)}`);
    const jar = await s.context.cookies(g.origin);
    assert.ok(!jar.some((c) => c.name === 'portcullis'), `no session cookie in the browser: ${jar.map((c) => c.name)}`);
    assertLoginRequired(assert, await apiResult(await s.page.request.get(`${g.origin}${USERINFO_PATH}`, {
      headers: { accept: JSON_ACCEPT }, maxRedirects: 0,
    })), 'userinfo after the failed sign-in');
    assert.equal(hits(upA, m).length, 0, 'the upstream never got the page');
    assert.equal(hits(upB, m).length, 0);
  });

  // -------------------------------------------------------------------------------------
  // cookie_domain

  const hostRoutes = [
    { name: 'a', match: { host: `a.${DOMAIN}` }, upstream: 'app', auth: 'sso', policy: anyAuthenticated },
    { name: 'b', match: { host: `b.${DOMAIN}` }, upstream: 'appb', auth: 'sso', policy: anyAuthenticated },
    { name: 'any', match: { path_prefix: '/' }, upstream: 'app', auth: 'sso', policy: anyAuthenticated },
  ];
  const secret = () => writeSecret(dir, 'sso-secret', 'portcullis-sso-secret');
  const hostOrigin = (g, h) => `http://${h}.${DOMAIN}:${g.port}`;

  const hostCallbacks = { callbackHosts: [`a.${DOMAIN}`, `b.${DOMAIN}`] };
  const domGateway = () => (gwP.dom ??= startSsoGateway('dom', ssoSection({
    secretFile: secret(), keyFiles: [cookieKey()], cookieSecure: false, cookieDomain: DOMAIN,
  }), hostRoutes, hostCallbacks));
  const ctlGateway = () => (gwP.ctl ??= startSsoGateway('ctl', ssoSection({
    secretFile: secret(), keyFiles: [cookieKey()], cookieSecure: false,
  }), hostRoutes, hostCallbacks));

  /** GET /.portcullis/userinfo on host h.portcullis.test of gateway g with the cookies the browser holds for that origin. */
  async function userinfoWithJar(context, g, h) {
    const jar = await context.cookies(hostOrigin(g, h));
    return gwRequest({
      port: g.port, host: `${h}.${DOMAIN}:${g.port}`, path: USERINFO_PATH, accept: JSON_ACCEPT,
      cookie: jar.map((c) => `${c.name}=${c.value}`).join('; '),
    });
  }

  let domP;
  /** alice signed in on a.portcullis.test through the cookie_domain gateway (once). */
  const domSignIn = () => (domP ??= (async () => {
    const g = await domGateway();
    const s = await signInThrough(g, `/app/x?${marker('dom-a')}`, { origin: hostOrigin(g, 'a') });
    return { g, s };
  })());

  test('cookie_domain: a sign-in on a.portcullis.test serves b.portcullis.test without a new visit to the IdP', async (t) => {
    const { g, s } = await domSignIn();
    const a = hostOrigin(g, 'a');
    const b = hostOrigin(g, 'b');
    await assertLanded(s, g, upA, 'sign-in on a');
    assert.equal((await pageEcho(s.page)).name, 'a', 'routed to upstream a by Host');

    // The 302 to the IdP: redirect_uri from the request's Host, pre-login cookie with the Domain.
    assert.ok(s.first, 'the gateway\'s first answer on a was recorded');
    assert.equal(s.first.status, 302);
    assertLoginRedirect(assert, { status: s.first.status, headers: { location: s.first.header('location') }, body: '' },
      { idp, redirectUri: `${a}${CALLBACK_PATH}`, what: 'navigation on a' });
    const pre = s.first.setCookies.find((c) => c.name === 'portcullis_login' && !isDeletion(c));
    assert.ok(pre, `pre-login cookie portcullis_login: ${s.first.setCookies.map((c) => c.raw)}`);
    assert.equal(pre.domain, DOMAIN, `pre-login cookie Domain: ${pre.raw}`);
    assert.deepEqual([pre.httpOnly, pre.sameSite?.toLowerCase(), pre.path, pre.secure], [true, 'lax', '/', false], pre.raw);

    // The callback's session cookie (every chunk) carries Domain=portcullis.test.
    const sessionSet = s.callback.setCookies.filter((c) => /^portcullis(_\d)?$/.test(c.name) && !isDeletion(c));
    assert.ok(sessionSet.length >= 1, `session Set-Cookie on the callback: ${s.callback.setCookies.map((c) => c.raw)}`);
    for (const c of sessionSet) {
      assert.equal(c.domain, DOMAIN, `session cookie Domain: ${c.raw}`);
      assert.deepEqual([c.httpOnly, c.sameSite?.toLowerCase(), c.path, c.secure], [true, 'lax', '/', false], c.raw);
    }
    const cleared = s.callback.setCookies.find((c) => c.name === 'portcullis_login');
    assert.ok(cleared && isDeletion(cleared), `the callback clears the pre-login cookie: ${s.callback.setCookies.map((c) => c.raw)}`);
    assert.equal(cleared.domain, DOMAIN, `the pre-login cookie is cleared with its Domain (else the browser keeps it): ${cleared.raw}`);
    const jar = await s.context.cookies(b);
    const kept = jar.find((c) => c.name === 'portcullis');
    assert.ok(kept, `the browser sends the session cookie to b too: ${jar.map((c) => `${c.name}@${c.domain}`)}`);
    assert.equal(kept.domain, `.${DOMAIN}`, 'a domain cookie in the browser');
    assert.ok(!(await s.context.cookies(a)).some((c) => c.name === 'portcullis_login'), 'no pre-login cookie left in the browser');

    // b.portcullis.test: the upstream page at once, no request to the IdP.
    const before = await counters();
    const idpMark = s.idpRequests.length;
    s.rec.clear();
    const m = marker('dom-b');
    const resp = await s.page.goto(`${b}/app/y?${m}`);
    const entries = await s.rec.settled();
    assert.equal(resp.status(), 200, `b answered ${resp.status()}; responses: ${entries.map((e) => `${e.status} ${e.url}`).join(', ')}${logTail(g)}`);
    assert.equal(s.page.url(), `${b}/app/y?${m}`);
    assert.deepEqual(entries.filter((e) => e.status >= 300 && e.status < 400).map((e) => e.url), [], 'no redirect on the way to b');
    assert.deepEqual(s.idpRequests.slice(idpMark), [], 'the browser did not visit the IdP');
    const afterC = await counters();
    assert.equal(afterC.authorization, before.authorization, 'the IdP saw no authorization request');
    assert.equal(afterC.token, before.token, 'no token request either');
    assert.equal(await s.page.textContent('#user'), 'alice');
    const echo = await pageEcho(s.page);
    assert.equal(echo.name, 'b', 'routed to upstream b');
    const seenB = hits(upB, m);
    assert.equal(seenB.length, 1, 'upstream b got the page');
    assert.equal(seenB[0].headers['x-portcullis-user'], 'alice');
    assert.equal(seenB[0].headers['x-portcullis-email'], ACCOUNTS.alice.email);
    assert.equal(hits(upA, m).length, 0, 'not upstream a');

    // One session: userinfo on both hosts names the same session id (fetch in the page on b;
    // for a, the cookies the browser holds for a, sent with Host a.portcullis.test).
    const inPage = await s.page.evaluate(async (p) => {
      const r = await fetch(p, { headers: { accept: 'application/json' } });
      return { status: r.status, body: await r.text() };
    }, USERINFO_PATH);
    assert.equal(inPage.status, 200, `userinfo on b (fetch in the page): ${inPage.status} ${inPage.body.slice(0, 200)}`);
    const ib = JSON.parse(inPage.body);
    const ra = await userinfoWithJar(s.context, g, 'a');
    assert.equal(ra.status, 200, `userinfo on a: ${ra.status} ${ra.body.slice(0, 200)}`);
    const ia = JSON.parse(ra.body);
    assert.equal(ia.subject, 'alice');
    assert.equal(ib.subject, 'alice');
    assert.equal(ib.session_id, ia.session_id, 'the same session on a and b');
    t.diagnostic(`b served by the sign-in on a: ${await screenshot(s.page, 'sso-cookie-domain-b')}`);
  });

  test('cookie_domain: logout on b.portcullis.test ends the session on a.portcullis.test too', async () => {
    const { g, s } = await domSignIn();
    const a = hostOrigin(g, 'a');
    const b = hostOrigin(g, 'b');
    // Precondition (also when the previous test did not run): the session works on a.
    const pre = await userinfoWithJar(s.context, g, 'a');
    assert.equal(pre.status, 200, `session on a before the logout: ${pre.status} ${pre.body.slice(0, 200)}`);
    s.rec.clear();
    await s.page.goto(`${b}${LOGOUT_PATH}`);
    const out = (await s.rec.settled()).find((e) => e.pathname === LOGOUT_PATH && e.url.startsWith(b));
    assert.ok(out, 'the logout response was recorded');
    assert.ok([200, 302].includes(out.status), `logout status ${out.status}`);
    const del = out.setCookies.find((c) => c.name === 'portcullis');
    assert.ok(del && isDeletion(del), `logout deletes the session cookie: ${out.setCookies.map((c) => c.raw)}`);
    assert.equal(del.domain, DOMAIN, `the deletion carries the Domain (else the browser keeps the domain cookie): ${del.raw}`);
    const jar = await s.context.cookies(a);
    assert.ok(!jar.some((c) => /^portcullis(_\d)?$/.test(c.name)), `no session cookie left for a: ${jar.map((c) => `${c.name}@${c.domain}`)}`);
    assertLoginRequired(assert, await userinfoWithJar(s.context, g, 'a'), 'userinfo on a after logging out on b');
    // In the browser: a navigation on a goes to the IdP again, the upstream is not reached.
    const m = marker('after-logout');
    s.rec.clear();
    await s.page.goto(`${a}/app/after-logout?${m}`);
    const firstA = (await s.rec.settled()).find((e) => e.url === `${a}/app/after-logout?${m}`);
    assert.ok(firstA, 'a\'s answer was recorded');
    assertLoginRedirect(assert, { status: firstA.status, headers: { location: firstA.header('location') }, body: '' },
      { idp, redirectUri: `${a}${CALLBACK_PATH}`, what: 'navigation on a after logging out on b' });
  });

  test('without cookie_domain: a sign-in on a.portcullis.test does not sign you in on b.portcullis.test (b goes to the IdP)', async () => {
    const g = await ctlGateway();
    const a = hostOrigin(g, 'a');
    const b = hostOrigin(g, 'b');
    const s = await signInThrough(g, `/app/x?${marker('ctl-a')}`, { origin: a });
    await assertLanded(s, g, upA, 'sign-in on a (no cookie_domain)');
    const set = s.callback.setCookies.find((c) => c.name === 'portcullis' && !isDeletion(c));
    assert.ok(set, `session cookie: ${s.callback.setCookies.map((c) => c.raw)}`);
    assert.equal(set.domain, undefined, `a host-only cookie without cookie_domain: ${set.raw}`);
    const jarB = await s.context.cookies(b);
    assert.ok(!jarB.some((c) => c.name === 'portcullis'), `the browser does not send a's cookie to b: ${jarB.map((c) => `${c.name}@${c.domain}`)}`);

    const before = await counters();
    s.rec.clear();
    const m = marker('ctl-b');
    const authUrls = [];
    s.page.on('request', (r) => { if (isAuthorizationRequest(r.url())) authUrls.push(r.url()); });
    await s.page.goto(`${b}/app/y?${m}`);
    const entries = await s.rec.settled();
    const firstB = entries.find((e) => e.url === `${b}/app/y?${m}`);
    assert.ok(firstB, `b's answer was recorded: ${entries.map((e) => `${e.status} ${e.url}`).join(', ')}`);
    assertLoginRedirect(assert, { status: firstB.status, headers: { location: firstB.header('location') }, body: '' },
      { idp, redirectUri: `${b}${CALLBACK_PATH}`, what: 'navigation on b without cookie_domain' });
    assert.equal(authUrls.length, 1, `the browser went to the IdP's authorization endpoint: ${authUrls}`);
    const afterC = await counters();
    assert.equal(afterC.authorization, before.authorization + 1, 'the IdP saw a new authorization request');
  });

  test('cookie_domain is lower-cased without its leading dot; with cookie_secure the default name is __Secure-portcullis', async () => {
    const g = await startSsoGateway('norm', ssoSection({
      secretFile: secret(), keyFiles: [cookieKey()], cookieDomain: '.Portcullis.TEST', // cookie_secure: default (true)
    }), hostRoutes);
    const host = `a.${DOMAIN}:${g.port}`;
    const r = await gwRequest({ port: g.port, host, path: `/app/n?${marker('norm')}`, accept: NAV_ACCEPT });
    assertLoginRedirect(assert, r, { idp, redirectUri: `http://${host}${CALLBACK_PATH}`, what: 'navigation on a (norm gateway)' });
    const cookies = setCookiesOf(r);
    const pre = cookies.find((c) => c.name.endsWith('_login') && !isDeletion(c));
    assert.ok(pre, `a pre-login cookie: ${cookies.map((c) => c.raw)}`);
    assert.equal(pre.name, '__Secure-portcullis_login', `default name with cookie_secure and cookie_domain: ${pre.raw}`);
    assert.equal(pre.domain, DOMAIN, `Domain lower-cased, leading dot dropped: ${pre.raw}`);
    assert.equal(pre.secure, true, pre.raw);
    assert.ok(!cookies.some((c) => c.name.startsWith('__Host-')), `no __Host- cookie with a Domain: ${cookies.map((c) => c.raw)}`);
  });
});

// =======================================================================================
// Config validation (no IdP needed: `config check` does not contact it)

describe('SSO client options: config check', { timeout: 120_000 }, () => {
  let dir;
  let ports;
  let secretFile;
  let cookieFile;
  const keys = {};
  const idp = { issuer: 'https://idp.example.test' };

  before(async () => {
    dir = tempDir('portcullis-sso-opts-cfg-');
    ports = await freePorts(3);
    secretFile = writeSecret(dir, 'sso-secret', 'portcullis-sso-secret');
    cookieFile = writeCookieKey(dir, 'cookie');
    const ec = makeKey('ec');
    const rsa = makeKey('rsa');
    keys.ecPkcs8 = writeKeyFile(dir, 'ec-p256-pkcs8.pem', ec.pem('pkcs8'));
    keys.ecSec1 = writeKeyFile(dir, 'ec-p256-sec1.pem', ec.pem('sec1'));
    keys.rsaPkcs1 = writeKeyFile(dir, 'rsa-2048-pkcs1.pem', rsa.pem('pkcs1'));
    keys.rsaPkcs8 = writeKeyFile(dir, 'rsa-2048-pkcs8.pem', rsa.pem('pkcs8'));
    keys.rsa4096 = writeKeyFile(dir, 'rsa-4096.pem', makeKey('rsa', { bits: 4096 }).pem('pkcs8'));
    keys.p384 = writeKeyFile(dir, 'ec-p384.pem', makeKey('ec', { namedCurve: 'P-384' }).pem('pkcs8'));
    keys.rsa1024 = writeKeyFile(dir, 'rsa-1024.pem', makeKey('rsa', { bits: 1024 }).pem('pkcs8'));
    keys.ed25519 = writeKeyFile(dir, 'ed25519.pem', makeKey('ed25519').pem('pkcs8'));
    keys.publicOnly = writeKeyFile(dir, 'ec-p256-public.pem', ec.publicKey.export({ format: 'pem', type: 'spki' }));
    keys.garbage = writeKeyFile(dir, 'garbage.pem', '-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END PRIVATE KEY-----\n');
    keys.text = writeKeyFile(dir, 'not-pem.txt', 'this is not a key\n');
    keys.missing = path.join(dir, 'no-such-key.pem');
  });
  after(() => rmTemp(dir));

  const routes = [{ name: 'app', match: { path_prefix: '/' }, upstream: 'app', auth: 'sso', policy: anyAuthenticated }];
  let n = 0;
  function configFile(sso) {
    const config = ssoGatewayConfig({
      idp, upstream: { address: `127.0.0.1:${ports[2]}` }, port: ports[0], adminPort: ports[1], sso, routes,
    });
    return writeConfig(config, { dir, name: `case-${++n}.yaml` });
  }
  const check = async (sso) => {
    const file = configFile(sso);
    return { file, ...(await runGateway(['config', 'check', file], { timeoutMs: 20_000 })) };
  };
  const pk = (extra) => ssoSection({ clientAuth: 'private_key_jwt', keyFiles: [cookieFile], cookieSecure: false, ...extra });

  /** `config check` fails (exit non-zero) with a diagnostic on stderr matching every regex. */
  async function assertRefused(sso, res, what) {
    const r = await check(sso);
    const where = `${what}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
    assert.notEqual(r.code, 0, `refused (${where})`);
    assert.notEqual(r.code, 'killed', `config check hung (${where})`);
    assert.ok(!r.stdout.includes(`${r.file}: OK`), `not OK (${where})`);
    for (const re of res) assert.match(r.stderr, re, where);
    return r;
  }
  const esc = (s) => new RegExp(s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));

  test('private_key_jwt accepts EC P-256 (PKCS#8, SEC1) and RSA 2048/4096 (PKCS#1, PKCS#8), with or without client_key_id', async () => {
    for (const [name, file, kid] of [
      ['EC P-256 PKCS#8', keys.ecPkcs8], ['EC P-256 SEC1', keys.ecSec1], ['RSA 2048 PKCS#1', keys.rsaPkcs1],
      ['RSA 2048 PKCS#8', keys.rsaPkcs8, 'my-key-1'], ['RSA 4096', keys.rsa4096], ['EC P-256 with a kid', keys.ecPkcs8, 'ec-1'],
    ]) {
      const r = await check(pk({ clientKeyFile: file, clientKeyId: kid }));
      assert.equal(r.code, 0, `${name}: exit ${r.code}\nstderr: ${r.stderr}`);
      assert.ok(r.stdout.includes(`${r.file}: OK`), `${name}: stdout ${r.stdout}`);
    }
  });

  test('private_key_jwt: a client_secret_file is refused, and so is a missing client_key_file', async () => {
    await assertRefused(pk({ clientKeyFile: keys.ecPkcs8, secretFile }), [/client_secret_file/], 'private_key_jwt + client_secret_file');
    await assertRefused(pk({}), [/client_key_file/], 'private_key_jwt without client_key_file');
  });

  test('client_key_file / client_key_id without private_key_jwt are refused', async () => {
    const basic = (extra) => ssoSection({ secretFile, keyFiles: [cookieFile], cookieSecure: false, ...extra });
    await assertRefused(basic({ clientKeyFile: keys.ecPkcs8 }), [/client_key_file/, /private_key_jwt/], 'client_secret_basic + client_key_file');
    await assertRefused(basic({ clientKeyId: 'k1' }), [/client_key_id/, /private_key_jwt/], 'client_secret_basic + client_key_id');
    await assertRefused(basic({ clientAuth: 'client_secret_post', clientKeyFile: keys.rsaPkcs8 }), [/client_key_file/], 'client_secret_post + client_key_file');
  });

  test('bad client_key_file: P-384, RSA 1024, Ed25519, a public key, garbage, not PEM, missing: refused, naming the file and the reason', async () => {
    const cases = [
      ['EC P-384', keys.p384, [/P-384|secp384r1/i, /not supported|P-256/i]],
      ['RSA 1024', keys.rsa1024, [/1024/, /2048/]],
      ['Ed25519', keys.ed25519, [/ed25519/i, /not supported|P-256/i]],
      ['a public key', keys.publicOnly, [/public key/i]],
      ['garbage in a PEM frame', keys.garbage, [/not a (private )?key|PEM|decode|parse|invalid/i]],
      ['not PEM at all', keys.text, [/not a (private )?key|PEM|decode|parse|invalid/i]],
      ['a missing file', keys.missing, [/does not exist|no such|cannot (read|open)/i]],
    ];
    for (const [what, file, reasons] of cases) {
      const r = await assertRefused(pk({ clientKeyFile: file }), [/client_key_file/, esc(file)], what);
      // The reason follows the file name on the line that names it.
      const line = r.stderr.split('\n').find((l) => l.includes(file)) ?? '';
      const reason = line.slice(line.indexOf(file) + file.length);
      for (const re of reasons) assert.match(reason, re, `${what}: the reason after the file name: ${line}`);
    }
  });

  test('serve refuses to start with a bad client_key_file (exit non-zero, file named)', async () => {
    const file = configFile(pk({ clientKeyFile: keys.p384 }));
    const r = await runGateway(['serve', '--config', file], { timeoutMs: 20_000 });
    assert.notEqual(r.code, 0, `serve exit ${r.code}\nstderr: ${r.stderr}`);
    assert.notEqual(r.code, 'killed', `serve kept running with a P-384 key\nstderr: ${r.stderr}`);
    assert.match(r.stderr, esc(keys.p384));
  });

  test('cookie_domain without a dot (localhost) and a __Host- cookie_name with cookie_domain are refused', async () => {
    const base = (extra) => ssoSection({ secretFile, keyFiles: [cookieFile], cookieSecure: false, ...extra });
    await assertRefused(base({ cookieDomain: 'localhost' }), [/cookie_domain/, /localhost/], 'cookie_domain localhost');
    await assertRefused(base({ cookieDomain: 'portcullis.test', cookieName: '__Host-x', cookieSecure: true }),
      [/__Host-/, /cookie_domain/], '__Host-x with cookie_domain');
    // Controls: the same without the faults pass.
    for (const sso of [base({ cookieDomain: 'portcullis.test' }), base({ cookieDomain: '.Portcullis.TEST', cookieName: 'x' }),
      base({ cookieName: '__Host-x', cookieSecure: true })]) {
      const r = await check(sso);
      assert.equal(r.code, 0, `${JSON.stringify(sso)}: exit ${r.code}\nstderr: ${r.stderr}`);
    }
  });
});
