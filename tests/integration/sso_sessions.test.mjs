// Browser SSO sessions kept in Redis (`sso.session_store: auto|cookie|redis`, docs/sso.md
// "Sessions"), end to end: the real gateway binary, the real oidc-provider fixture
// (tests/support/oidc/), headless Debian Chromium (playwright-core), real redis-servers started
// here on free ports, and the harness echo upstream (it shows what reached it).
//
// What is covered:
//   - config: `session_store: redis` without cache.redis is refused at load (config check and
//     serve exit non-zero, "session_store: redis needs cache.redis" at FILE:LINE:COL); an unknown
//     value is refused too; `auto` without Redis loads.
//   - `auto` with cache.redis means Redis sessions: userinfo says "session_store": "redis"; the
//     cookie is one small sealed reference (`portcullis`, no chunks, a few hundred bytes, no
//     personal data); the session is at pc:sso:s:v1:<session_id>, sealed (neither the email nor
//     the subject in clear, also not after base64 decoding), with a TTL of the remaining
//     session_ttl; the subject index pc:sso:sub:v1:<digest> lists the session id.
//   - a user with 200 groups: one small cookie with Redis sessions, several chunks in cookie mode.
//   - two gateways on one Redis (auto / explicit redis) share the session; DEL of the key ends it
//     at once on both (API 401 login_required, navigation 302 to the IdP, nothing reaches the
//     upstream); a stored value copied under another session's key does not open.
//   - /.portcullis/logout deletes the key, and a copy of the cookie is refused on both gateways.
//   - mode mismatch: a cookie-mode cookie (whole sealed session, same key) is refused by a
//     Redis-mode gateway and a Redis reference cookie by a cookie-mode gateway.
//   - idle_timeout 2s with Redis sessions: the key's TTL is 2 s and each use resets it (GETEX);
//     used every ~1 s for ~5 s the session lives, then after 4 s unused it is gone (key expired,
//     API 401, the browser's navigation is a 302 to the IdP and, the IdP's own session cookies
//     cleared so it cannot sign alice in again silently, ends on the IdP login page; the
//     upstream is not reached).
//   - idle_timeout 2s with `session_store: cookie` (explicit, though cache.redis is set: no key
//     in Redis): the proxied responses carry a new Set-Cookie (the last use), the browser keeps
//     the session alive for ~5 s while the copy taken at sign-in has idled out; 4 s unused and
//     the browser's navigation goes to the IdP (as above).
//   - Redis unreachable (deny by default): a paused redis-server (SIGSTOP) means no session
//     (API 401, navigation 302 to the IdP, upstream not reached); once resumed the same session
//     works again (its key was kept). A stopped redis-server: no session either, and a sign-in
//     whose IdP form is submitted while it is down ends in 503 session_store_unavailable (HTML,
//     no session cookie). Restarted on the same port without persistence, the old session is
//     gone (its key was lost) and a new sign-in works.
//
// Gateways (all plain http on localhost:PORT, cookie_secure false, one cookie key k1, one IdP):
//   auto   - cache.redis (redis1), session_store unset (auto => redis)
//   redis  - cache.redis (redis1), session_store: redis
//   cookie - no cache, session_store unset (auto => cookie)
//   idleR  - cache.redis (redis1), session_store: redis, idle_timeout 2s
//   idleC  - cache.redis (redis1), session_store: cookie, idle_timeout 2s
//   outage - cache.redis (redis2, paused / stopped / restarted by the outage test)
// Needs `npm ci` in tests/, /usr/bin/chromium and redis-server.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  startGateway, startUpstream, freePorts, cleanupList, tempDir, rmTemp, writeConfig, toYaml,
  runGateway, eventually, sleep, fetchMetrics, metricSum,
} from '../support/harness.mjs';
import { startProvider } from '../support/oidc/client.mjs';
import { launchBrowser, signIn } from '../support/browser.mjs';
import { startRedis, redisCommand } from '../support/redis.mjs';
import {
  CALLBACK_PATH, USERINFO_PATH, LOGOUT_PATH, NAV_ACCEPT, JSON_ACCEPT, writeCookieKey, ssoSection,
  ssoGatewayConfig, echoPageHandler, gwRequest, assertLoginRequired, assertLoginRedirect,
  waitForSsoReady, sessionChunks, cookieHeader, setCookiesOf, isDeletion, recordResponses, sessionKey, marker,
} from '../support/sso.mjs';

const COOKIE = 'portcullis'; // cookie_secure: false
const SESSION_TTL_MS = 8 * 3600 * 1000;
const BIG_USER = { sub: 'bigal', password: 'bigal-password', email: 'bigal@example.test', name: 'Big Al' };
const BIG_GROUPS = Array.from({ length: 200 }, (_, i) => `team-${String(i).padStart(3, '0')}-with-a-long-name`);


/** A base64url (or base64) string's bytes, as latin1 text (for "no clear text inside" checks). */
function decodedText(value) {
  return Buffer.from(String(value).replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('latin1');
}

describe('SSO sessions in Redis (session_store)', { timeout: 150_000 }, () => {
  const cleanup = cleanupList();
  after(() => cleanup.run());
  let dir;
  let idp;
  let browser;
  let upstream;
  let redis1;
  let redis2;
  let secretFile;
  let keyFile;
  const gw = {}; // name -> {name, port, adminPort, origin, redirectUri, proc, redisPort}

  const track = (page) => { cleanup.add(() => page.context().close().catch(() => {})); return page; };
  const upstreamHits = (m) => upstream.requests.filter((r) => r.url.includes(m)).length;
  const api = (g, cookie, p = `/app/${marker('api')}`) => gwRequest({ port: g.port, path: p, accept: JSON_ACCEPT, cookie });
  const nav = (g, cookie, p = `/app/${marker('nav')}`) => gwRequest({ port: g.port, path: p, accept: NAV_ACCEPT, cookie });
  const userinfo = (g, cookie) => gwRequest({ port: g.port, path: USERINFO_PATH, accept: JSON_ACCEPT, cookie });
  const exists = (port, key) => redisCommand(port, ['EXISTS', key]);
  const redisConnected = async (g) => metricSum(await fetchMetrics(g.proc), 'portcullis_redis_connected');
  const logTail = (g) => g.proc.logText().split('\n').slice(-25).join('\n');

  function routes() {
    return [
      { name: 'app', match: { path_prefix: '/app' }, upstream: 'app', auth: 'sso', identity_headers: true,
        policy: { allow: { authenticated_user: true } } },
      { name: 'public', match: { path_prefix: '/' }, upstream: 'app', auth: 'public' },
    ];
  }

  /** The gateway config of `g`: cache.redis on redisPort when given, the sso options. */
  function configOf(g, { redisPort, sessionStore, idleTimeout } = {}) {
    const sso = ssoSection({ secretFile, keyFiles: [keyFile], cookieSecure: false, sessionStore, idleTimeout });
    return {
      ...ssoGatewayConfig({ idp, upstream, port: g.port, adminPort: g.adminPort, sso, routes: routes() }),
      // timeout: a loaded test machine must not turn a slow GETEX into "no session".
      ...(redisPort ? { cache: { redis: { address: `127.0.0.1:${redisPort}`, timeout: '250ms' } } } : {}),
    };
  }

  /**
   * A fresh browser context opens `target` on gateway g, signs in at the IdP as `username` and
   * lands on target. Resolves {page, rec, chunks, cookie (Cookie header), info (userinfo JSON)}.
   */
  async function signInOn(g, { username = 'alice', password, target = `/app/${marker('signin')}` } = {}) {
    const page = track(await browser.newPage());
    const rec = recordResponses(page);
    await page.goto(`${g.origin}${target}`);
    assert.ok(page.url().startsWith(`${idp.issuer}/interaction/`),
      `${g.origin}${target} should go to the IdP login page; the browser is on ${page.url()}`);
    await signIn(page, { username, password });
    assert.equal(page.url(), `${g.origin}${target}`, `back on the page asked for (gateway ${g.name}): ${await page.content().catch(() => '')}`.slice(0, 600));
    const chunks = sessionChunks(await page.context().cookies(g.origin), COOKIE);
    assert.ok(chunks.length >= 1 && chunks[0].name === COOKIE, `the session cookie is set on ${g.name}: ${JSON.stringify(chunks)}`);
    const cookie = cookieHeader(chunks);
    const r = await userinfo(g, cookie);
    assert.equal(r.status, 200, `userinfo on ${g.name}: ${r.status} ${r.body}`);
    return { page, rec, chunks, cookie, info: JSON.parse(r.body) };
  }

  /**
   * The browser of sign-in `s` navigates to a protected page of g after its session ended: the
   * gateway answers 302 to the IdP (the upstream is not reached) and, with the IdP's own
   * session cookies cleared (else the IdP would sign alice in again silently), the browser
   * ends on the IdP's login page.
   */
  async function expectIdpLogin(g, s, tag) {
    const m = marker(tag);
    const url = `${g.origin}/app/${m}`;
    await s.page.context().clearCookies({ domain: new URL(idp.issuer).hostname });
    s.rec.clear();
    await s.page.goto(url);
    const first = (await s.rec.settled()).find((e) => e.url === url);
    assert.ok(first, `the gateway answered ${url}`);
    assert.equal(first.status, 302, `the navigation after the idle timeout: ${first.status}`);
    assert.ok(String(first.header('location')).startsWith(idp.authorizationEndpoint), `to the IdP: ${first.header('location')}`);
    assert.ok(s.page.url().startsWith(`${idp.issuer}/interaction/`), `the browser is on the IdP login page: ${s.page.url()}`);
    assert.equal(upstreamHits(m), 0, 'the upstream was not reached');
  }

  before(async () => {
    dir = tempDir('portcullis-sso-sessions-');
    cleanup.add(() => rmTemp(dir));
    const names = ['auto', 'redis', 'cookie', 'idleR', 'idleC', 'outage'];
    const ports = await freePorts(names.length * 2);
    names.forEach((name, i) => {
      const port = ports[2 * i];
      gw[name] = {
        name, port, adminPort: ports[2 * i + 1], origin: `http://localhost:${port}`,
        redirectUri: `http://localhost:${port}${CALLBACK_PATH}`,
      };
    });
    upstream = await startUpstream({ name: 'app', handler: echoPageHandler('app') });
    cleanup.add(() => upstream.close());
    [idp, browser, redis1, redis2] = await Promise.all([
      startProvider({ redirectUris: names.map((n) => gw[n].redirectUri), consent: 'auto', logoutConfirm: 'auto' })
        .then((h) => { cleanup.add(() => h.stop()); return h; }),
      launchBrowser().then((b) => { cleanup.add(() => b.close()); return b; }),
      startRedis().then((r) => { cleanup.add(() => r.stop()); return r; }),
      startRedis().then((r) => { cleanup.add(() => r.stop()); return r; }),
    ]);
    // The outage test pauses redis2 with SIGSTOP: never leave it stopped.
    cleanup.add(() => { try { process.kill(redis2.pid, 'SIGCONT'); } catch { /* gone */ } });
    await idp.setAccount({ ...BIG_USER, groups: BIG_GROUPS });

    secretFile = path.join(dir, 'client-secret');
    fs.writeFileSync(secretFile, 'portcullis-sso-secret\n');
    keyFile = writeCookieKey(dir, 'k1');
    const options = {
      auto: { redisPort: redis1.port },
      redis: { redisPort: redis1.port, sessionStore: 'redis' },
      cookie: {},
      idleR: { redisPort: redis1.port, sessionStore: 'redis', idleTimeout: '2s' },
      idleC: { redisPort: redis1.port, sessionStore: 'cookie', idleTimeout: '2s' },
      outage: { redisPort: redis2.port, sessionStore: 'redis' },
    };
    await Promise.all(names.map(async (name) => {
      const g = gw[name];
      g.redisPort = options[name].redisPort;
      const file = writeConfig(configOf(g, options[name]), { dir, name: `gw-${name}.yaml` });
      g.proc = await startGateway({ configPath: file, adminAddress: `127.0.0.1:${g.adminPort}`, readyTimeoutMs: 15_000 });
      cleanup.add(() => g.proc.stop());
    }));
    await Promise.all(names.map((n) => waitForSsoReady({ port: gw[n].port, idp })));
    // The Redis-backed gateways hold their connection before any test relies on it.
    await Promise.all(names.filter((n) => gw[n].redisPort).map((n) => eventually(
      async () => (await redisConnected(gw[n])) === 1, { timeoutMs: 10_000, message: `gateway ${n} connected to Redis` })));
  });

  // ---------------------------------------------------------------------------------------

  test('config: session_store redis without cache.redis is refused at load; unknown values too; auto loads', async () => {
    const [port, adminPort] = await freePorts(2);
    const g = { port, adminPort };
    const cases = [
      { store: 'redis', ok: false, re: /session_store: redis needs cache\.redis/ },
      { store: 'memcached', ok: false, re: /unknown session_store ['"]?memcached/ },
      { store: 'auto', ok: true },
      { store: 'cookie', ok: true },
    ];
    for (const c of cases) {
      const text = toYaml(configOf(g, { sessionStore: c.store }));
      const file = writeConfig(text, { dir, name: `check-${c.store}.yaml` });
      const check = await runGateway(['config', 'check', file], { timeoutMs: 15_000 });
      if (c.ok) {
        assert.equal(check.code, 0, `session_store ${c.store} without cache.redis: ${check.stderr}${check.stdout}`);
        continue;
      }
      assert.equal(check.code, 1, `config check, session_store ${c.store}: ${check.stderr}${check.stdout}`);
      const line = text.split('\n').findIndex((l) => /^\s*session_store:/.test(l)) + 1;
      assert.ok(line > 0, 'test bug: no session_store line');
      const escaped = file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      assert.match(check.stderr, new RegExp(`${escaped}:${line}:\\d+: .*${c.re.source}`),
        `a FILE:LINE:COL diagnostic at line ${line}: ${check.stderr}`);
      const serve = await runGateway(['serve', '--config', file], { timeoutMs: 10_000 });
      assert.notEqual(serve.code, 'killed', 'serve started instead of refusing the config');
      assert.notEqual(serve.code, 0, `serve exited ${serve.code}`);
      assert.match(serve.stderr + serve.stdout, c.re);
    }
  });

  test('auto with cache.redis: the cookie is a small sealed reference, the sealed session is in Redis', async () => {
    const s = await signInOn(gw.auto);
    assert.equal(s.info.subject, 'alice');
    assert.equal(s.info.email, 'alice@example.test');
    assert.equal(s.info.session_store, 'redis', 'auto + cache.redis = redis sessions');
    const sid = s.info.session_id;
    assert.match(sid, /^[A-Za-z0-9_-]{20,}$/);

    // One small cookie, with nothing personal in it.
    assert.deepEqual(s.chunks.map((c) => c.name), [COOKIE], 'one cookie, no chunks');
    const value = s.chunks[0].value;
    assert.ok(value.length > 0 && value.length <= 512, `a reference of a few hundred bytes at most: ${value.length}`);
    assert.match(value, /^[A-Za-z0-9_-]+$/, 'base64url');
    for (const needle of ['alice', 'example.test', 'engineering']) {
      assert.ok(!decodedText(value).includes(needle), `the cookie reveals ${needle}`);
    }

    // The session in Redis: sealed, bound to its id, TTL = the session's remaining lifetime.
    const stored = await redisCommand(redis1.port, ['GET', sessionKey(sid)]);
    assert.ok(Buffer.isBuffer(stored) && stored.length > 0, `${sessionKey(sid)} holds the session`);
    const text = stored.toString('latin1');
    for (const needle of ['alice', 'example.test', 'engineering', '"sub', '"email']) {
      assert.ok(!text.includes(needle), `the stored session shows ${needle} in clear: ${text.slice(0, 200)}`);
      assert.ok(!decodedText(text).includes(needle), `the stored session is only encoded, not sealed (${needle})`);
    }
    const pttl = await redisCommand(redis1.port, ['PTTL', sessionKey(sid)]);
    assert.ok(pttl > SESSION_TTL_MS - 120_000 && pttl <= SESSION_TTL_MS, `TTL = remaining session_ttl (8h), got ${pttl} ms`);

    // The subject index lists the session id (back-channel logout), under a digest, not the name.
    const indexes = (await redisCommand(redis1.port, ['KEYS', 'pc:sso:sub:v1:*'])).map((k) => k.toString('latin1'));
    assert.ok(indexes.length >= 1, 'a pc:sso:sub:v1:* index exists');
    const holding = [];
    for (const k of indexes) {
      const members = (await redisCommand(redis1.port, ['SMEMBERS', k])).map((m) => m.toString('latin1'));
      if (members.includes(sid)) holding.push(k);
    }
    assert.equal(holding.length, 1, `one subject index holds ${sid}: ${indexes}`);
    assert.ok(!holding[0].includes('alice'), `the index key names the subject: ${holding[0]}`);

    // The session works for the upstream, which sees alice.
    const m = marker('auto-api');
    const r = await api(gw.auto, s.cookie, `/app/${m}`);
    assert.equal(r.status, 200, `API call with the session: ${r.status} ${r.body}`);
    assert.equal(JSON.parse(r.body).headers['x-portcullis-user'], 'alice');
    assert.equal(upstreamHits(m), 1);
  });

  test('cookie mode without Redis still works; a 200-group session is chunked there, one small cookie with Redis', async () => {
    const c = await signInOn(gw.cookie);
    assert.equal(c.info.session_store, 'cookie', 'auto without cache.redis = cookie sessions');
    assert.equal(c.info.subject, 'alice');
    const r = await api(gw.cookie, c.cookie);
    assert.equal(r.status, 200, `cookie-mode session: ${r.status} ${r.body}`);

    const bigCookie = await signInOn(gw.cookie, { username: BIG_USER.sub, password: BIG_USER.password });
    assert.equal(bigCookie.info.groups.length, BIG_GROUPS.length);
    assert.ok(bigCookie.chunks.length >= 2, `a 200-group cookie session is chunked: ${bigCookie.chunks.map((x) => `${x.name}(${x.value.length})`)}`);
    assert.equal((await api(gw.cookie, bigCookie.cookie)).status, 200, 'the chunked cookie session works');

    const bigRedis = await signInOn(gw.auto, { username: BIG_USER.sub, password: BIG_USER.password });
    assert.equal(bigRedis.info.session_store, 'redis');
    assert.equal(bigRedis.info.groups.length, BIG_GROUPS.length, 'all 200 groups come from the stored session');
    assert.deepEqual(bigRedis.chunks.map((x) => x.name), [COOKIE], 'one cookie with Redis sessions');
    assert.ok(bigRedis.chunks[0].value.length <= 512, `a small reference: ${bigRedis.chunks[0].value.length}`);
    const r2 = await api(gw.auto, bigRedis.cookie);
    assert.equal(r2.status, 200);
    assert.match(String(JSON.parse(r2.body).headers['x-portcullis-groups'] ?? ''), /team-199/, 'the upstream sees the groups');
  });

  test('two gateways share the Redis session; deleting its key ends it at once on both', async () => {
    const s = await signInOn(gw.auto);
    const sid = s.info.session_id;
    const both = [gw.auto, gw.redis];
    for (const g of both) {
      const info = await userinfo(g, s.cookie);
      assert.equal(info.status, 200, `userinfo on ${g.name}: ${info.status} ${info.body}`);
      assert.equal(JSON.parse(info.body).session_id, sid, `the same session on ${g.name}`);
      assert.equal(JSON.parse(info.body).session_store, 'redis');
    }
    assert.equal(await redisCommand(redis1.port, ['DEL', sessionKey(sid)]), 1, 'the key existed');
    const m = marker('after-del');
    for (const g of both) {
      const r = await api(g, s.cookie, `/app/${m}`);
      assertLoginRequired(assert, r, `API call after DEL on ${g.name}`);
      const n = await nav(g, s.cookie, `/app/${m}`);
      assertLoginRedirect(assert, n, { idp, redirectUri: g.redirectUri, what: `navigation after DEL on ${g.name}` });
      assertLoginRequired(assert, await userinfo(g, s.cookie), `userinfo after DEL on ${g.name}`);
    }
    assert.equal(upstreamHits(m), 0, 'nothing reached the upstream without the session');
  });

  test('a stored session copied under another session id does not open (sealed for its own id)', async () => {
    const a = await signInOn(gw.auto);
    const b = await signInOn(gw.auto);
    assert.notEqual(a.info.session_id, b.info.session_id);
    const aValue = await redisCommand(redis1.port, ['GET', sessionKey(a.info.session_id)]);
    assert.ok(aValue, 'session a is stored');
    assert.equal(await redisCommand(redis1.port, ['SET', sessionKey(b.info.session_id), aValue, 'PX', '600000']), 'OK');
    assertLoginRequired(assert, await api(gw.auto, b.cookie), "b's cookie with a's stored session under b's key");
    assert.equal((await api(gw.auto, a.cookie)).status, 200, 'a itself still works');
  });

  test('logout deletes the Redis key; a copy of the cookie is refused on both gateways', async () => {
    const s = await signInOn(gw.auto);
    const key = sessionKey(s.info.session_id);
    assert.equal(await exists(redis1.port, key), 1);
    for (const g of [gw.auto, gw.redis]) assert.equal((await api(g, s.cookie)).status, 200, `before logout on ${g.name}`);
    // The browser signs out on the other gateway; a copy of its cookie was kept.
    const out = await nav(gw.redis, s.cookie, LOGOUT_PATH);
    assert.ok(out.status === 302 || out.status === 200, `logout: ${out.status} ${out.body}`);
    const cleared = setCookiesOf(out).filter((c) => c.name === COOKIE);
    assert.ok(cleared.length === 1 && isDeletion(cleared[0]), `logout clears the cookie: ${JSON.stringify(out.headers['set-cookie'])}`);
    await eventually(async () => (await exists(redis1.port, key)) === 0, { timeoutMs: 5000, message: `${key} deleted by logout` });
    for (const g of [gw.auto, gw.redis]) {
      assertLoginRequired(assert, await api(g, s.cookie), `the copied cookie after logout on ${g.name}`);
      const n = await nav(g, s.cookie);
      assertLoginRedirect(assert, n, { idp, redirectUri: g.redirectUri, what: `navigation with the copy on ${g.name}` });
    }
  });

  test('a cookie-mode cookie is refused by a Redis-mode gateway with the same key, and vice versa', async () => {
    const c = await signInOn(gw.cookie);
    const r = await signInOn(gw.auto);
    assert.equal(c.info.session_store, 'cookie');
    assert.equal(r.info.session_store, 'redis');
    // Each works where it was made.
    assert.equal((await api(gw.cookie, c.cookie)).status, 200);
    assert.equal((await api(gw.auto, r.cookie)).status, 200);
    // A whole sealed session is not a reference to a stored one, and the other way round.
    assertLoginRequired(assert, await api(gw.auto, c.cookie), 'cookie-mode cookie on the Redis gateway');
    assertLoginRequired(assert, await api(gw.redis, c.cookie), 'cookie-mode cookie on the explicit redis gateway');
    assertLoginRedirect(assert, await nav(gw.auto, c.cookie), { idp, redirectUri: gw.auto.redirectUri, what: 'cookie-mode cookie, navigation' });
    assertLoginRequired(assert, await api(gw.cookie, r.cookie), 'Redis reference cookie on the cookie gateway');
    assertLoginRedirect(assert, await nav(gw.cookie, r.cookie), { idp, redirectUri: gw.cookie.redirectUri, what: 'reference cookie, navigation' });
    // The cookie-mode session never went to Redis.
    assert.equal(await exists(redis1.port, sessionKey(c.info.session_id)), 0);
  });

  test('idle_timeout 2s, Redis sessions: each use resets the TTL; used every second it lives, 4 s unused it is gone', async () => {
    const g = gw.idleR;
    const s = await signInOn(g);
    assert.equal(s.info.session_store, 'redis');
    const key = sessionKey(s.info.session_id);
    const pttl = () => redisCommand(redis1.port, ['PTTL', key]);
    const first = await pttl();
    assert.ok(first > 0 && first <= 2000, `TTL = min(idle_timeout, session left) = 2 s, got ${first} ms`);
    await sleep(1000);
    const aged = await pttl();
    assert.ok(aged > 0 && aged < 1500, `the TTL runs down while unused: ${aged} ms`);
    assert.equal((await api(g, s.cookie)).status, 200);
    const touched = await pttl();
    assert.ok(touched > 1500 && touched <= 2000, `a use resets the TTL to idle_timeout (GETEX): ${touched} ms`);

    // The browser uses it every ~1 s for ~5 s: longer than the idle timeout.
    for (let i = 0; i < 5; i += 1) {
      await sleep(1000);
      const url = `${g.origin}/app/${marker('idle-redis')}`;
      const resp = await s.page.goto(url);
      assert.equal(resp.status(), 200, `use ${i + 1}: ${resp.status()}`);
      assert.equal(s.page.url(), url, `use ${i + 1} stayed on the gateway`);
      assert.equal(await s.page.textContent('#user'), 'alice', `use ${i + 1} reached the upstream as alice`);
    }
    assert.equal(await exists(redis1.port, key), 1, 'the session is still stored');

    await sleep(4000);
    assert.equal(await exists(redis1.port, key), 0, 'the key expired after the idle timeout');
    assertLoginRequired(assert, await api(g, s.cookie), 'API call after 4 s idle');
    await expectIdpLogin(g, s, 'idle-redis-late');
  });

  test('idle_timeout 2s, session_store cookie: the cookie carries the last use; used every second it lives, 4 s unused it is gone', async () => {
    const g = gw.idleC;
    const s = await signInOn(g);
    assert.equal(s.info.session_store, 'cookie', 'session_store: cookie wins over cache.redis');
    assert.equal(await exists(redis1.port, sessionKey(s.info.session_id)), 0, 'no session in Redis');
    const atSignIn = s.cookie;
    s.rec.clear();

    const urls = [];
    for (let i = 0; i < 5; i += 1) {
      await sleep(1000);
      const url = `${g.origin}/app/${marker('idle-cookie')}`;
      urls.push(url);
      const resp = await s.page.goto(url);
      assert.equal(resp.status(), 200, `use ${i + 1}: ${resp.status()}`);
      assert.equal(s.page.url(), url, `use ${i + 1} stayed on the gateway`);
      assert.equal(await s.page.textContent('#user'), 'alice', `use ${i + 1} reached the upstream as alice`);
    }
    const entries = await s.rec.settled();
    const rewrites = entries.filter((e) => urls.includes(e.url) && e.status === 200
      && e.setCookies.some((c) => c.name === COOKIE && c.value && !isDeletion(c)));
    assert.ok(rewrites.length >= 3, `the proxied responses carry the session's new last use (Set-Cookie ${COOKIE}): ${rewrites.length} of ${urls.length}`);

    // The copy taken at sign-in (last use then, > 2 s ago) has idled out; the browser's has not.
    assertLoginRequired(assert, await api(g, atSignIn), 'the cookie as set at sign-in, ~5 s later');
    const current = cookieHeader(sessionChunks(await s.page.context().cookies(g.origin), COOKIE));
    assert.notEqual(current, atSignIn, 'the browser holds a rewritten cookie');
    assert.equal((await api(g, current)).status, 200, "the browser's current cookie");

    await sleep(4000);
    assertLoginRequired(assert, await api(g, current), "the browser's cookie after 4 s idle");
    await expectIdpLogin(g, s, 'idle-cookie-late');
  });

  test('Redis unreachable means no session; a sign-in then gets 503 session_store_unavailable; restarted Redis lost the session', async () => {
    const g = gw.outage;
    const s = await signInOn(g);
    assert.equal(s.info.session_store, 'redis');
    const sid = s.info.session_id;
    assert.equal(await exists(redis2.port, sessionKey(sid)), 1);
    assert.equal((await api(g, s.cookie)).status, 200, 'the session works while Redis is up');

    // 1. redis-server paused (SIGSTOP): it accepts nothing in time -> no session, nothing proxied.
    process.kill(redis2.pid, 'SIGSTOP');
    try {
      const m = marker('paused');
      assertLoginRequired(assert, await api(g, s.cookie, `/app/${m}`), 'API call while Redis is paused');
      assertLoginRedirect(assert, await nav(g, s.cookie, `/app/${m}`), { idp, redirectUri: g.redirectUri, what: 'navigation while Redis is paused' });
      assertLoginRequired(assert, await userinfo(g, s.cookie), 'userinfo while Redis is paused');
      assert.equal(upstreamHits(m), 0, 'the upstream was not reached while Redis was paused');
    } finally {
      process.kill(redis2.pid, 'SIGCONT');
    }
    // Resumed, with its data: the same session works again.
    let last;
    const back = await eventually(async () => {
      last = await api(g, s.cookie);
      return last.status === 200 ? last : null;
    }, { timeoutMs: 10_000, message: 'the session to work again once Redis is resumed' }).catch((e) => {
      e.message += ` (last answer ${last?.status} ${last?.body}; gateway log:\n${logTail(g)})`;
      throw e;
    });
    assert.equal(JSON.parse(back.body).headers['x-portcullis-user'], 'alice');
    assert.equal(JSON.parse((await userinfo(g, s.cookie)).body).session_id, sid, 'the same session');

    // 2. A sign-in starts while Redis is up; Redis stops before the IdP form is submitted.
    const page = track(await browser.newPage());
    const rec = recordResponses(page);
    await page.goto(`${g.origin}/app/${marker('signin-down')}`);
    assert.ok(page.url().startsWith(`${idp.issuer}/interaction/`), `on the IdP login page: ${page.url()}`);
    const exit = await redis2.stop();
    assert.ok(exit, 'redis-server stopped');
    await eventually(async () => (await redisConnected(g)) === 0, { timeoutMs: 10_000, message: 'the gateway to see Redis gone' });

    const m = marker('down');
    assertLoginRequired(assert, await api(g, s.cookie, `/app/${m}`), 'API call while Redis is down');
    assertLoginRedirect(assert, await nav(g, s.cookie, `/app/${m}`), { idp, redirectUri: g.redirectUri, what: 'navigation while Redis is down' });
    assert.equal(upstreamHits(m), 0, 'the upstream was not reached while Redis was down');

    await signIn(page, { username: 'alice' });
    const callbacks = await rec.at(CALLBACK_PATH, g.origin);
    assert.equal(callbacks.length, 1, `the browser came back to the callback: ${page.url()}`);
    const cb = callbacks[0];
    assert.equal(cb.status, 503, `sign-in while Redis is down: ${cb.status}`);
    assert.match(String(cb.header('content-type')), /text\/html/i, 'an HTML page for the browser');
    assert.deepEqual(sessionChunks(cb.setCookies, COOKIE), [], 'no session cookie set');
    assert.equal(new URL(page.url()).pathname, CALLBACK_PATH, 'the browser stays on the callback');
    assert.ok((await page.content()).includes('session_store_unavailable'), 'the page names session_store_unavailable');
    assert.deepEqual(sessionChunks(await page.context().cookies(g.origin), COOKIE), [], 'the browser holds no session cookie');

    // 3. Restarted on the same port without persistence: the old session's key is gone.
    redis2 = await startRedis({ port: redis2.port });
    cleanup.add(() => redis2.stop());
    await eventually(async () => (await redisConnected(g)) === 1, { timeoutMs: 15_000, message: 'the gateway to reconnect to Redis' });
    assert.equal(await exists(redis2.port, sessionKey(sid)), 0, 'the restarted redis-server (no persistence) lost the session');
    assertLoginRequired(assert, await api(g, s.cookie), 'the old session after the restart');
    const fresh = await signInOn(g);
    assert.notEqual(fresh.info.session_id, sid);
    assert.equal(await exists(redis2.port, sessionKey(fresh.info.session_id)), 1, 'the new session is stored');
    assert.equal((await api(g, fresh.cookie)).status, 200, 'a new sign-in works once Redis is back');
  });
  test('a reload that adds cache.redis (auto: Redis sessions) is refused: the connection is made at start-up only', async () => {
    const g = gw.cookie;
    const s = await signInOn(g);
    assert.equal((await api(g, s.cookie)).status, 200);
    const file = path.join(dir, 'gw-cookie.yaml');
    const original = fs.readFileSync(file, 'utf8');
    writeConfig(configOf(g, { redisPort: redis1.port }), { path: file });
    try {
      g.proc.reload();
      await g.proc.waitForLog('sso sessions in Redis need cache.redis at start-up', 5000);
      // Still the running (cookie) config: the browser's session works, no Redis key made.
      for (let i = 0; i < 3; i++) assert.equal((await api(g, s.cookie)).status, 200, 'the cookie session still works');
      assert.equal(s.info.session_store, 'cookie');
    } finally {
      writeConfig(original, { path: file });
    }
  });
});
