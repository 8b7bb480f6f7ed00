// Silent renewal of browser SSO sessions with the IdP's refresh token (docs/sso.md "Silent
// renewal"): `sso.refresh_interval`; the first request after it makes the gateway call the
// token endpoint with grant_type=refresh_token before answering. End to end with the real
// gateway binary, the real oidc-provider fixture (it issues refresh tokens to portcullis-sso
// and counts refresh_token grants: counters.refresh_ok / refresh_failed), headless Debian
// Chromium (playwright-core), one redis-server started here, and the harness echo upstream
// (it shows what reached it: X-Portcullis-User / -Groups).
//
// What is covered:
//   (a) Redis sessions, session_ttl 4s, refresh_interval 1s: used once a second for ~7 s the
//       session lives past its first end (every request 200), the IdP served refresh grants,
//       userinfo's session_expires_at moved forward, the Redis key and its renewal lock are in
//       order. Control: a gateway whose IdP client gets no refresh token (same ttl, used the
//       same way) ends the session at its absolute end (401 login_required).
//   (b) a group change at the IdP (setAccount) reaches the session at the next renewal: the
//       upstream's X-Portcullis-Groups and userinfo show the new groups, a route needing the new
//       group starts allowing and one needing the removed group starts denying (403).
//   (c) the IdP refuses the renewal: the refresh token revoked at the revocation endpoint with
//       the client's credentials (RFC 7009; the fixture lists the token it holds), or the
//       account removed: at the next renewal the session ends (API 401 login_required,
//       navigation 302 to the IdP, the Redis key gone, the gateway logs why).
//   (e) the token endpoint answers 500: the session goes on unchanged (same end), the gateway
//       does not ask again for a while (retry in 60 s: no further token request over a few
//       renewal intervals).
//   (d) cookie sessions (no Redis), session_ttl 4s, refresh_interval 1s, in Chromium: each
//       renewal comes back as a new Set-Cookie on the proxied response, the browser's jar
//       follows and the session lives past its first end, while a copy of the cookie taken at
//       sign-in has expired (401).
//
// Gateways (plain http, cookie_secure false, one cookie key, reached as localhost:PORT):
//   R  - cache.redis, session_ttl 4s, refresh_interval 1s                   (a)
//   N  - like R but client portcullis-sso-norefresh (no refresh_token grant) (a) control
//   G  - cache.redis, session_ttl 1h, refresh_interval 2s                    (b), (c), (e)
//   K  - no cache (cookie sessions), session_ttl 4s, refresh_interval 1s     (d)
// Needs `npm ci` in tests/, /usr/bin/chromium and redis-server.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  startGateway, startUpstream, freePorts, cleanupList, tempDir, rmTemp, writeConfig, eventually, sleep,
} from '../support/harness.mjs';
import { startProvider, revoke, refreshTokens } from '../support/oidc/client.mjs';
import { launchBrowser, signIn } from '../support/browser.mjs';
import { startRedis, redisCommand } from '../support/redis.mjs';
import {
  CALLBACK_PATH, USERINFO_PATH, NAV_ACCEPT, JSON_ACCEPT, writeCookieKey, ssoSection, ssoGatewayConfig,
  echoPageHandler, gwRequest, assertLoginRequired, assertJsonError, waitForSsoReady, sessionChunks,
  cookieHeader, recordResponses, isDeletion, parseSetCookie, apiResult, setCookiesOf, sessionKey, refreshLockKey as lockKey, marker,
} from '../support/sso.mjs';

const COOKIE = 'portcullis';
const NOREFRESH_CLIENT = 'portcullis-sso-norefresh';
const nowS = () => Date.now() / 1000;
/** session_expires_at as epoch seconds (accepts seconds, ms or an RFC 3339 string). */
function expirySeconds(v) {
  if (typeof v === 'number') return v > 1e12 ? v / 1000 : v;
  return Date.parse(String(v)) / 1000;
}
const groupsOf = (echo) => String(echo.headers['x-portcullis-groups'] ?? '').split(',').map((g) => g.trim()).filter(Boolean);


describe('SSO silent renewal with refresh tokens', { timeout: 240_000 }, () => {
  const cleanup = cleanupList();
  after(() => cleanup.run());
  let dir;
  let idp;
  let browser;
  let upstream;
  let redis;
  const gw = {}; // name -> {name, port, adminPort, origin, proc, redis}

  const track = (page) => { cleanup.add(() => page.context().close().catch(() => {})); return page; };
  const counters = async () => (await idp.state()).counters;
  const api = (g, cookie, prefix = '/app') => gwRequest({ port: g.port, path: `${prefix}/${marker('api')}`, accept: JSON_ACCEPT, cookie });
  const nav = (g, cookie) => gwRequest({ port: g.port, path: `/app/${marker('nav')}`, accept: NAV_ACCEPT, cookie });
  const userinfo = async (g, cookie) => {
    const r = await gwRequest({ port: g.port, path: USERINFO_PATH, accept: JSON_ACCEPT, cookie });
    assert.equal(r.status, 200, `userinfo on ${g.name}: ${r.status} ${r.body}`);
    return JSON.parse(r.body);
  };
  /**
   * An API call (Accept: application/json) from the browser context of sign-in s
   * (page.request: the context's cookie jar goes with it and takes its Set-Cookie answers).
   * Resolves {status, headers, body, setCookies (parsed portcullis cookies)}.
   */
  const browserApi = async (s, g, prefix = '/app') => {
    const resp = await s.page.request.get(`${g.origin}${prefix}/${marker('xhr')}`, { headers: { accept: JSON_ACCEPT }, maxRedirects: 0 });
    const setCookies = (await resp.headersArray()).filter((h) => h.name.toLowerCase() === 'set-cookie')
      .flatMap((h) => h.value.split('\n')).map(parseSetCookie).filter((c) => c.name === COOKIE);
    return { ...(await apiResult(resp)), setCookies };
  };
  const jarCookie = async (s, g) => cookieHeader(sessionChunks(await s.page.context().cookies(g.origin), COOKIE));
  const redisExists = async (key) => Number(await redisCommand(redis.port, ['EXISTS', key]));
  const logTail = (g) => g.proc.logText().split('\n').slice(-20).join('\n');

  /**
   * A fresh browser context signs in as `username` on gateway g. Resolves
   * {page, rec, chunks, cookie (Cookie header), info (userinfo)}.
   */
  async function signInOn(g, username = 'alice', password = undefined) {
    const page = track(await browser.newPage());
    const rec = recordResponses(page);
    const target = `${g.origin}/app/${marker(`signin-${username}`)}`;
    await page.goto(target);
    assert.ok(page.url().startsWith(`${idp.issuer}/interaction/`), `${target} should go to the IdP login page; on ${page.url()}`);
    await signIn(page, { username, password });
    assert.equal(page.url(), target, 'back on the page asked for');
    const chunks = sessionChunks(await page.context().cookies(g.origin), COOKIE);
    assert.ok(chunks.length >= 1 && chunks[0].name === COOKIE, `the session cookie on ${g.name}: ${JSON.stringify(chunks)}`);
    const cookie = cookieHeader(chunks);
    const info = await userinfo(g, cookie);
    assert.equal(info.subject, username);
    return { page, rec, chunks, cookie, info };
  }

  /** The session is refused on g: API 401 login_required (within a few renewal intervals), navigation 302 to the IdP. */
  async function assertEnds(g, cookie, what) {
    let last;
    await eventually(async () => { last = await api(g, cookie); return last.status === 401; },
      { timeoutMs: 15_000, intervalMs: 250, message: `${what}: the session refused on ${g.name} (last ${last?.status})` });
    assertLoginRequired(assert, await api(g, cookie), `${what}: API call`);
    const n = await nav(g, cookie);
    assert.equal(n.status, 302, `${what}: navigation: ${n.status}`);
    assert.ok(String(n.headers.location).startsWith(idp.authorizationEndpoint), `${what}: to the IdP: ${n.headers.location}`);
  }

  before(async () => {
    dir = tempDir('portcullis-sso-refresh-');
    cleanup.add(() => rmTemp(dir));
    const names = ['R', 'N', 'G', 'K'];
    const ports = await freePorts(names.length * 2);
    names.forEach((name, i) => {
      gw[name] = { name, port: ports[2 * i], adminPort: ports[2 * i + 1], origin: `http://localhost:${ports[2 * i]}` };
    });
    upstream = await startUpstream({ name: 'app', handler: echoPageHandler('app') });
    cleanup.add(() => upstream.close());
    [idp, browser, redis] = await Promise.all([
      startProvider({ redirectUris: names.map((n) => `${gw[n].origin}${CALLBACK_PATH}`), consent: 'auto', logoutConfirm: 'auto' })
        .then((h) => { cleanup.add(() => h.stop()); return h; }),
      launchBrowser().then((b) => { cleanup.add(() => b.close()); return b; }),
      startRedis().then((r) => { cleanup.add(() => r.stop()); return r; }),
    ]);
    cleanup.add(() => idp.setTokenFault('none').catch(() => {}));
    // A web client the IdP gives no refresh token (no refresh_token grant): the control of (a).
    const noRefresh = await idp.updateClient({
      client_id: NOREFRESH_CLIENT, grant_types: ['authorization_code'], redirect_uris: [`${gw.N.origin}${CALLBACK_PATH}`],
    });
    assert.deepEqual(noRefresh.grant_types, ['authorization_code']);

    const secret = (id, value) => { const f = path.join(dir, `${id}.secret`); fs.writeFileSync(f, `${value}\n`); return f; };
    const ssoSecret = secret('portcullis-sso', 'portcullis-sso-secret');
    const noRefreshSecret = secret(NOREFRESH_CLIENT, `${NOREFRESH_CLIENT}-secret`);
    const keyFile = writeCookieKey(dir, 'k1');
    const cache = { redis: { address: `127.0.0.1:${redis.port}`, timeout: '250ms' } };
    const routes = [
      { name: 'eng', match: { path_prefix: '/eng' }, upstream: 'app', auth: 'sso', identity_headers: true,
        policy: { allow: { group: { has: 'engineering' } } } },
      { name: 'ops', match: { path_prefix: '/ops' }, upstream: 'app', auth: 'sso', identity_headers: true,
        policy: { allow: { group: { has: 'ops' } } } },
      { name: 'app', match: { path_prefix: '/app' }, upstream: 'app', auth: 'sso', identity_headers: true,
        policy: { allow: { authenticated_user: true } } },
      { name: 'public', match: { path_prefix: '/' }, upstream: 'app', auth: 'public' },
    ];
    const options = {
      R: { cache, sessionTtl: '4s', refreshInterval: '1s' },
      N: { cache, sessionTtl: '4s', refreshInterval: '1s', clientId: NOREFRESH_CLIENT, secretFile: noRefreshSecret },
      G: { cache, sessionTtl: '1h', refreshInterval: '2s' },
      K: { sessionTtl: '4s', refreshInterval: '1s' },
    };
    await Promise.all(names.map(async (name) => {
      const g = gw[name];
      const o = options[name];
      g.redis = !!o.cache;
      const sso = ssoSection({
        clientId: o.clientId, secretFile: o.secretFile ?? ssoSecret, keyFiles: [keyFile], cookieSecure: false,
        sessionTtl: o.sessionTtl, refreshInterval: o.refreshInterval,
      });
      const config = {
        ...ssoGatewayConfig({ idp, upstream, port: g.port, adminPort: g.adminPort, sso, routes }),
        ...(o.cache ? { cache: o.cache } : {}),
      };
      const file = writeConfig(config, { dir, name: `gw-${name}.yaml` });
      g.proc = await startGateway({ configPath: file, adminAddress: `127.0.0.1:${g.adminPort}`, readyTimeoutMs: 15_000 });
      cleanup.add(() => g.proc.stop());
    }));
    await Promise.all(names.map((n) => waitForSsoReady({ port: gw[n].port, idp })));
  });

  test('(a) Redis session, ttl 4s, refresh 1s: used for ~7 s it is renewed and lives past its first end', async (t) => {
    const s = await signInOn(gw.R, 'alice');
    assert.equal(s.info.session_store, 'redis');
    const firstEnd = expirySeconds(s.info.session_expires_at);
    assert.ok(firstEnd - nowS() <= 5, `session_ttl 4s: the session ends at ${firstEnd} (now ${nowS()})`);
    const tokens = await idp.tokens({ sub: 'alice', clientId: 'portcullis-sso' });
    assert.ok(tokens.length >= 1, 'the IdP issued a refresh token to the gateway');
    const c0 = await counters();

    // API calls from the signed-in browser context, one a second for ~7 s.
    const started = Date.now();
    let n = 0;
    const renewed = [];
    while (Date.now() - started < 7000) {
      const r = await browserApi(s, gw.R);
      n += 1;
      assert.equal(r.status, 200, `request ${n} at +${Date.now() - started} ms: ${r.status} ${r.body}\n${logTail(gw.R)}`);
      assert.equal(JSON.parse(r.body).headers['x-portcullis-user'], 'alice');
      renewed.push(...r.setCookies.filter((c) => !isDeletion(c)));
      await sleep(1000);
    }
    assert.ok(nowS() > firstEnd + 1, 'the loop ran past the session\'s first end');
    // The reference cookie is sealed with the session's end: each renewal sends a new one.
    assert.ok(renewed.length >= 1, 'renewals came with a new session reference cookie');
    for (const c of renewed) assert.equal(c.maxAge, 4, `a renewed cookie lives session_ttl: ${c.raw}`);
    const jar = await jarCookie(s, gw.R);
    assert.notEqual(jar, s.cookie, 'the browser holds a renewed reference cookie');
    const info = await userinfo(gw.R, jar);
    assert.equal(info.session_id, s.info.session_id, 'the same session, renewed');
    assert.ok(expirySeconds(info.session_expires_at) > firstEnd, `the end moved: ${info.session_expires_at} > ${s.info.session_expires_at}`);
    const c1 = await counters();
    const copy = await api(gw.R, s.cookie);
    t.diagnostic(`the reference cookie from the sign-in, past its first end: ${copy.status} (the jar's renewed one: 200)`);
    t.diagnostic(`${n} requests, ${renewed.length} renewed cookies; refresh grants ok ${c1.refresh_ok - c0.refresh_ok}, failed ${c1.refresh_failed - c0.refresh_failed}; token requests ${c1.token - c0.token}`);
    assert.ok(c1.refresh_ok > c0.refresh_ok, `the gateway renewed at the IdP: ${JSON.stringify({ before: c0, after: c1 })}`);
    assert.ok(c1.token > c0.token, 'token endpoint requests');
    assert.equal(c1.refresh_failed, c0.refresh_failed, 'no refresh was refused');
    assert.equal(await redisExists(sessionKey(s.info.session_id)), 1, 'the renewed session is in Redis');
    const ttl = Number(await redisCommand(redis.port, ['PTTL', sessionKey(s.info.session_id)]));
    assert.ok(ttl > 0 && ttl <= 4000 + 1000, `its Redis TTL follows the renewed end (session_ttl 4s): ${ttl} ms`);
    await eventually(async () => (await redisExists(lockKey(s.info.session_id))) === 0,
      { timeoutMs: 5000, message: 'the renewal lock is released' });
  });

  test('(a) control: without a refresh token the same use ends the session at session_ttl', async () => {
    const s = await signInOn(gw.N, 'alice');
    assert.equal((await idp.tokens({ clientId: NOREFRESH_CLIENT })).length, 0, 'the IdP issued no refresh token to this client');
    const firstEnd = expirySeconds(s.info.session_expires_at);
    const c0 = await counters();
    const deadline = Date.now() + 12_000;
    let last;
    for (;;) {
      last = await browserApi(s, gw.N);
      if (last.status !== 200 || Date.now() > deadline) break;
      assert.deepEqual(last.setCookies, [], 'no renewal, no new cookie');
      await sleep(1000);
    }
    assertLoginRequired(assert, last, 'used once a second from the browser, the session without a refresh token ends');
    assert.ok(nowS() >= firstEnd - 1, `it ended at its absolute end (${firstEnd}), not earlier (now ${nowS()})`);
    assert.equal((await counters()).refresh_ok, c0.refresh_ok, 'no renewal was attempted');
  });

  test('(b) a group change at the IdP reaches the policy and the upstream at the next renewal', async () => {
    await idp.setAccount({ sub: 'carol', password: 'carol-password', email: 'carol@example.test', groups: ['engineering'] });
    const s = await signInOn(gw.G, 'carol', 'carol-password');
    assert.deepEqual(s.info.groups, ['engineering']);
    const eng = await api(gw.G, s.cookie, '/eng');
    assert.equal(eng.status, 200, `engineering route: ${eng.status} ${eng.body}`);
    assert.deepEqual(groupsOf(JSON.parse(eng.body)), ['engineering'], 'the upstream sees engineering');
    assertJsonError(assert, await api(gw.G, s.cookie, '/ops'), 403, 'forbidden', 'ops route before the change');

    const c0 = await counters();
    await idp.setAccount({ sub: 'carol', password: 'carol-password', email: 'carol@ops.example.test', groups: ['ops'] });
    let ops;
    await eventually(async () => { ops = await api(gw.G, s.cookie, '/ops'); return ops.status === 200; },
      { timeoutMs: 15_000, intervalMs: 250, message: `the ops route to allow carol after the renewal (last ${ops?.status} ${ops?.body})` });
    const echo = JSON.parse(ops.body);
    assert.deepEqual(groupsOf(echo), ['ops'], `X-Portcullis-Groups at the upstream: ${echo.headers['x-portcullis-groups']}`);
    assert.equal(echo.headers['x-portcullis-user'], 'carol');
    const denied = await api(gw.G, s.cookie, '/eng');
    assertJsonError(assert, denied, 403, 'forbidden', 'engineering route after the change');
    const info = await userinfo(gw.G, s.cookie);
    assert.deepEqual(info.groups, ['ops']);
    assert.equal(info.email, 'carol@ops.example.test', 'the email follows the refreshed ID token too');
    assert.equal(info.session_id, s.info.session_id, 'the same session');
    assert.ok((await counters()).refresh_ok > c0.refresh_ok, 'through a refresh_token grant');
    // The browser sees the same: the engineering page is now the access-denied page.
    const resp = await s.page.goto(`${gw.G.origin}/eng/${marker('page')}`);
    assert.equal(resp.status(), 403);
    assert.match(await s.page.content(), /Access denied/);
  });

  test('(f) a renewal made on the way to a policy 403 rides on the 403: the renewed cookie is not lost', async () => {
    await idp.setAccount({ sub: 'dave', password: 'dave-password', email: 'dave@example.test', groups: ['engineering'] });
    const s = await signInOn(gw.G, 'dave', 'dave-password');
    const c0 = await counters();
    await sleep(2500); // past refresh_interval (2s)
    const denied = await api(gw.G, s.cookie, '/ops');
    assertJsonError(assert, denied, 403, 'forbidden', 'ops route (dave is not in ops)');
    assert.ok((await counters()).refresh_ok > c0.refresh_ok, 'this request renewed the session');
    const renewed = setCookiesOf(denied).filter((c) => c.name === 'portcullis' && !isDeletion(c));
    assert.equal(renewed.length, 1, `the 403 carries the renewed session cookie: ${JSON.stringify(denied.headers['set-cookie'])}`);
    assert.ok(renewed[0].maxAge > 3000, `Max-Age of the renewed cookie is about session_ttl (1h): ${renewed[0].maxAge}`);
    const info = await userinfo(gw.G, `portcullis=${renewed[0].value}`);
    assert.equal(info.session_id, s.info.session_id, 'the renewed cookie opens the same session');
  });

  test('(c) the IdP refuses the renewal (refresh token revoked by the client): the session ends', async () => {
    await idp.setAccount({ sub: 'erin', password: 'erin-password', groups: ['engineering'] });
    const s = await signInOn(gw.G, 'erin', 'erin-password');
    const held = await idp.tokens({ sub: 'erin', clientId: 'portcullis-sso' });
    assert.equal(held.length, 1, `one refresh token for the gateway's session: ${JSON.stringify(held)}`);
    const ok = await api(gw.G, s.cookie);
    assert.equal(ok.status, 200);
    // RFC 7009 revocation with the client's own credentials (client_secret_basic).
    const status = await revoke(held[0].value, { provider: idp, clientId: 'portcullis-sso', secret: 'portcullis-sso-secret' });
    assert.equal(status, 200, 'revocation accepted');
    const direct = await refreshTokens({ provider: idp, clientId: 'portcullis-sso', refreshToken: held[0].value });
    assert.equal(direct.status, 400, 'the IdP refuses the revoked token');
    assert.equal(direct.body.error, 'invalid_grant');
    const c0 = await counters();

    await assertEnds(gw.G, s.cookie, 'after the revocation');
    assert.ok((await counters()).refresh_failed > c0.refresh_failed, 'the gateway tried to renew and was refused');
    assert.equal(await redisExists(sessionKey(s.info.session_id)), 0, 'the session is deleted from Redis');
    await gw.G.proc.waitForLog(new RegExp(`session ${s.info.session_id} ended: the identity provider refused its refresh`));
  });

  test('(c) the IdP refuses the renewal (account removed): the session ends', async () => {
    await idp.setAccount({ sub: 'frank', password: 'frank-password', groups: ['engineering'] });
    const s = await signInOn(gw.G, 'frank', 'frank-password');
    assert.equal((await api(gw.G, s.cookie)).status, 200);
    assert.deepEqual(await idp.removeAccount('frank'), { removed: true });
    const c0 = await counters();
    await assertEnds(gw.G, s.cookie, 'after the account was removed');
    assert.ok((await counters()).refresh_failed > c0.refresh_failed, 'the gateway tried to renew and was refused');
    assert.equal(await redisExists(sessionKey(s.info.session_id)), 0, 'the session is deleted from Redis');
  });

  test('(e) the token endpoint fails (HTTP 500): the session goes on unchanged and is not retried at once', async (t) => {
    await idp.setAccount({ sub: 'gina', password: 'gina-password', groups: ['engineering'] });
    const s = await signInOn(gw.G, 'gina', 'gina-password');
    const end0 = s.info.session_expires_at;
    const f0 = (await counters()).token_fault;
    await idp.setTokenFault('status500');
    try {
      // Used until the gateway tried to renew (after refresh_interval 2s): every answer is 200.
      const deadline = Date.now() + 15_000;
      for (;;) {
        const r = await api(gw.G, s.cookie);
        assert.equal(r.status, 200, `while the IdP fails: ${r.status} ${r.body}`);
        if ((await counters()).token_fault > f0) break;
        assert.ok(Date.now() < deadline, 'the gateway did not try to renew within 15 s');
        await sleep(250);
      }
      const f1 = (await counters()).token_fault;
      const info = await userinfo(gw.G, s.cookie);
      assert.equal(info.session_id, s.info.session_id);
      assert.equal(info.session_expires_at, end0, 'the session is unchanged (same end)');
      // Two more renewal intervals of use: still 200, and no new token request (retry in 60 s).
      const until = Date.now() + 4500;
      while (Date.now() < until) {
        const r = await api(gw.G, s.cookie);
        assert.equal(r.status, 200, `later, while the IdP still fails: ${r.status} ${r.body}`);
        await sleep(500);
      }
      const f2 = (await counters()).token_fault;
      t.diagnostic(`token requests answered 500: ${f1 - f0} at the first renewal, ${f2 - f1} in the 4.5 s after`);
      assert.equal(f2, f1, 'the gateway waits before asking again');
      await gw.G.proc.waitForLog(new RegExp(`session ${s.info.session_id} not renewed, trying again in 60s`));
    } finally {
      await idp.setTokenFault('none');
    }
    assert.equal((await api(gw.G, s.cookie)).status, 200, 'the session still works with the IdP back');
  });

  test('(d) cookie sessions, ttl 4s, refresh 1s, in Chromium: each renewal is a Set-Cookie, the browser session lives on', async (t) => {
    const s = await signInOn(gw.K, 'alice');
    assert.equal(s.info.session_store, 'cookie');
    const firstEnd = expirySeconds(s.info.session_expires_at);
    const signInCookie = s.cookie; // a copy, never renewed
    const c0 = await counters();
    s.rec.clear();

    const started = Date.now();
    let n = 0;
    while (Date.now() - started < 7000) {
      const m = marker('page');
      const resp = await s.page.goto(`${gw.K.origin}/app/${m}`);
      n += 1;
      assert.equal(resp.status(), 200, `page ${n} at +${Date.now() - started} ms: ${resp.status()} ${s.page.url()}\n${logTail(gw.K)}`);
      assert.equal(await s.page.textContent('#user'), 'alice');
      await sleep(1000);
    }
    assert.ok(nowS() > firstEnd + 1, 'the browser ran past the session\'s first end');
    const renewals = (await s.rec.settled())
      .filter((e) => e.url.startsWith(`${gw.K.origin}/app/`))
      .flatMap((e) => e.setCookies.filter((c) => c.name === COOKIE && !isDeletion(c)));
    t.diagnostic(`${n} pages, ${renewals.length} renewed session cookies`);
    assert.ok(renewals.length >= 1, 'the proxied responses carried renewed session cookies');
    for (const c of renewals) {
      assert.equal(c.maxAge, 4, `a renewed cookie lives session_ttl: ${c.raw}`);
      assert.ok(c.httpOnly, c.raw);
      assert.equal(c.path, '/');
    }
    const c1 = await counters();
    assert.ok(c1.refresh_ok > c0.refresh_ok, `renewed at the IdP: ${c1.refresh_ok - c0.refresh_ok} refresh grants`);

    // The jar holds the renewed cookie: it works; the copy from the sign-in has expired.
    const jar = cookieHeader(sessionChunks(await s.page.context().cookies(gw.K.origin), COOKIE));
    assert.notEqual(jar, signInCookie, 'the browser holds a renewed cookie');
    const info = await userinfo(gw.K, jar);
    assert.ok(expirySeconds(info.session_expires_at) > firstEnd, 'with a later end');
    assertLoginRequired(assert, await api(gw.K, signInCookie), 'the cookie from the sign-in, past its end');
  });
});
