// OIDC Back-Channel Logout 1.0 at the gateway (docs/sso.md "Back-channel logout"):
// POST /.portcullis/backchannel-logout with logout_token=<JWT>, for sessions kept in Redis.
// End to end with the real gateway binary, the real oidc-provider fixture (tests/support/oidc/),
// headless Debian Chromium (playwright-core), one redis-server started here on a free port and
// the harness echo upstream.
//
// What is covered:
//   - sub only: a provider-minted logout token naming only alice (no sid), POSTed to gateway B,
//     ends both of alice's sessions (two browser contexts, signed in on A and on B): 200
//     {"sessions_ended": 2}, Cache-Control no-store; API 401 login_required and navigation 302
//     to the IdP on both gateways; their Redis keys and alice's subject index are gone;
//     mallory's session lives on.
//   - the real thing: the SSO client's backchannel_logout_uri is gateway A's endpoint (so ID
//     tokens carry sid); alice signs in on A in one context and on B in another (two IdP
//     sessions); in the first context she signs out AT THE IdP (end_session_endpoint, "yes");
//     the IdP POSTs the logout token itself and records the delivery as successful; the
//     session of that IdP session is refused on A and B (API 401, navigation 302 to the IdP;
//     in the browser the IdP login form shows), its Redis key and IdP-session index are gone,
//     while alice's other session (the other IdP session) still works on both gateways.
//   - refusals, each 400 invalid_request with Cache-Control no-store while the session the
//     token names still works: no logout_token, garbage, a token for another client (aud), a
//     token signed by a foreign key (with the IdP's kid, and with a kid of its own), another
//     iss, no back-channel event, an event that is not an object, a nonce, expired, no iat,
//     neither sub nor sid. A control with the same signing path and correct claims is accepted.
//     A good token is accepted once: replayed on the same or the other gateway it is 400
//     "used already". 501 not_implemented on a gateway without cache.redis and on one with
//     cache.redis but session_store: cookie; 405 for GET; 413 for a 70 KiB body (60 KiB is read
//     and refused as a token, 400).
//   - sessions_ended is the number of sessions that ended: with two live sessions of alice and
//     one she logged out of at the gateway (/.portcullis/logout), a sub token answers the live
//     count, not the number of ids left in her subject index.
//   - HTTP/2 (prior-knowledge h2c on the plaintext listener): GET 405, garbage 400, and a sub
//     token ending mallory's sessions (200, then her session is refused).
//
// Gateways (plain http, cookie_secure false, one cookie key, one IdP, reached as localhost:PORT):
//   A, B   - cache.redis (one redis-server): Redis sessions; A is the back-channel URI
//   C      - no cache: cookie sessions
//   D      - cache.redis but session_store: cookie
// Needs `npm ci` in tests/, /usr/bin/chromium and redis-server.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  startGateway, startUpstream, freePorts, cleanupList, tempDir, rmTemp, writeConfig, eventually, httpRequest,
} from '../support/harness.mjs';
import { startProvider, decodeJwt, verifyLogoutToken, SELECTORS } from '../support/oidc/client.mjs';
import { launchBrowser, signIn, confirmLogout } from '../support/browser.mjs';
import { startRedis, redisCommand } from '../support/redis.mjs';
import { connectH2, h2request } from '../support/h2_client.mjs';
import { compact } from '../support/bearer.mjs';
import {
  CALLBACK_PATH, USERINFO_PATH, NAV_ACCEPT, JSON_ACCEPT, writeCookieKey, ssoSection, ssoGatewayConfig,
  echoPageHandler, gwRequest, assertLoginRequired, assertJsonError, waitForSsoReady, sessionChunks, cookieHeader, sessionKey, subjectIndex, idpSessionIndex, marker,
} from '../support/sso.mjs';

const BACKCHANNEL_PATH = '/.portcullis/backchannel-logout';
const EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const COOKIE = 'portcullis';
const FORM = 'application/x-www-form-urlencoded';



describe('SSO back-channel logout', { timeout: 180_000 }, () => {
  const cleanup = cleanupList();
  after(() => cleanup.run());
  let dir;
  let idp;
  let browser;
  let upstream;
  let redis;
  const gw = {}; // name -> {name, port, adminPort, origin, proc}

  const track = (page) => { cleanup.add(() => page.context().close().catch(() => {})); return page; };
  const api = (g, cookie) => gwRequest({ port: g.port, path: `/app/${marker('api')}`, accept: JSON_ACCEPT, cookie });
  const nav = (g, cookie) => gwRequest({ port: g.port, path: `/app/${marker('nav')}`, accept: NAV_ACCEPT, cookie });
  const redisExists = async (key) => Number(await redisCommand(redis.port, ['EXISTS', key]));
  const strings = (reply) => (reply ?? []).map((b) => b.toString('latin1'));
  const members = async (key) => strings(await redisCommand(redis.port, ['SMEMBERS', key]));
  /** Session ids in sub's subject index whose session is still in Redis. */
  const liveSessions = async (sub) => {
    const out = [];
    for (const sid of await members(subjectIndex(idp.issuer, sub))) if (await redisExists(sessionKey(sid))) out.push(sid);
    return out;
  };
  const logTail = (g) => g.proc.logText().split('\n').slice(-20).join('\n');

  /** POST body to g's back-channel endpoint (HTTP/1.1); Host 127.0.0.1:PORT unless `host`. */
  function postLogout(g, body, { method = 'POST', contentType = FORM, host } = {}) {
    const headers = { host: host ?? `127.0.0.1:${g.port}` };
    if (contentType) headers['content-type'] = contentType;
    return httpRequest({ port: g.port, method, path: BACKCHANNEL_PATH, headers, body, timeoutMs: 15_000 });
  }
  const form = (token) => new URLSearchParams({ logout_token: token }).toString();

  /**
   * A fresh browser context signs in as `username` on gateway g. Resolves
   * {page, cookie (Cookie header), info (userinfo: session_id...)}.
   */
  async function signInOn(g, username = 'alice') {
    const page = track(await browser.newPage());
    const target = `${g.origin}/app/${marker(`signin-${username}`)}`;
    await page.goto(target);
    assert.ok(page.url().startsWith(`${idp.issuer}/interaction/`), `${target} should go to the IdP login page; on ${page.url()}`);
    await signIn(page, { username });
    assert.equal(page.url(), target, 'back on the page asked for');
    const chunks = sessionChunks(await page.context().cookies(g.origin), COOKIE);
    assert.ok(chunks.length === 1 && chunks[0].name === COOKIE, `one session reference cookie on ${g.name}: ${JSON.stringify(chunks)}`);
    const cookie = cookieHeader(chunks);
    const r = await gwRequest({ port: g.port, path: USERINFO_PATH, accept: JSON_ACCEPT, cookie });
    assert.equal(r.status, 200, `userinfo on ${g.name}: ${r.status} ${r.body}`);
    const info = JSON.parse(r.body);
    assert.equal(info.subject, username);
    assert.equal(info.session_store, 'redis');
    assert.equal(await redisExists(sessionKey(info.session_id)), 1, 'the session is in Redis');
    return { page, cookie, info, username };
  }

  /** The session works on every Redis gateway (A and B). */
  async function assertWorks(s, what) {
    for (const g of [gw.A, gw.B]) {
      const r = await api(g, s.cookie);
      assert.equal(r.status, 200, `${what}: ${s.username}'s session on ${g.name}: ${r.status} ${r.body}`);
      assert.equal(JSON.parse(r.body).headers['x-portcullis-user'], s.username, `${what}: the upstream sees ${s.username}`);
    }
  }

  /** The session is refused on A and B: API 401 login_required, navigation 302 to the IdP. */
  async function assertEnded(s, what) {
    for (const g of [gw.A, gw.B]) {
      await eventually(async () => (await api(g, s.cookie)).status === 401,
        { timeoutMs: 5000, message: `${what}: ${s.username}'s session refused on ${g.name}` });
      assertLoginRequired(assert, await api(g, s.cookie), `${what}: API call on ${g.name}`);
      const n = await nav(g, s.cookie);
      assert.equal(n.status, 302, `${what}: navigation on ${g.name}: ${n.status} ${n.body}`);
      assert.ok(String(n.headers.location).startsWith(idp.authorizationEndpoint), `${what}: to the IdP: ${n.headers.location}`);
    }
    assert.equal(await redisExists(sessionKey(s.info.session_id)), 0, `${what}: the session key is gone from Redis`);
  }

  /** 400 {"error":"invalid_request"} as JSON with Cache-Control: no-store. */
  function assertRefused(r, what, message) {
    const body = assertJsonError(assert, r, 400, 'invalid_request', what);
    assert.match(String(r.headers['cache-control'] ?? ''), /no-store/i, `${what}: Cache-Control ${r.headers['cache-control']}`);
    if (message) assert.match(String(body.message ?? body.error_description ?? ''), message, `${what}: ${r.body}`);
    return body;
  }

  /** 200 {"sessions_ended": N} with Cache-Control: no-store; resolves N. */
  function assertAccepted(r, what) {
    assert.equal(r.status, 200, `${what}: ${r.status} ${r.body}`);
    assert.match(String(r.headers['content-type'] ?? ''), /application\/json/i, `${what}: content-type`);
    assert.match(String(r.headers['cache-control'] ?? ''), /no-store/i, `${what}: Cache-Control ${r.headers['cache-control']}`);
    const body = JSON.parse(r.body);
    assert.equal(typeof body.sessions_ended, 'number', `${what}: ${r.body}`);
    return body.sessions_ended;
  }

  /** The claims of a correct logout token for portcullis-sso (sub alice, no sid), now. */
  function logoutClaims(extra = {}) {
    const now = Math.floor(Date.now() / 1000);
    return {
      iss: idp.issuer, aud: 'portcullis-sso', iat: now, exp: now + 120, jti: crypto.randomBytes(16).toString('base64url'),
      sub: 'alice', events: { [EVENT]: {} }, ...extra,
    };
  }
  /** Signed by the IdP's own current key (fixture POST /sign), typ logout+jwt; null values removed. */
  async function idpSigned(claims) {
    const payload = Object.fromEntries(Object.entries(claims).filter(([, v]) => v !== null));
    return idp.signJwt({ payload, header: { typ: 'logout+jwt' } });
  }

  before(async () => {
    dir = tempDir('portcullis-sso-bcl-');
    cleanup.add(() => rmTemp(dir));
    const names = ['A', 'B', 'C', 'D'];
    const ports = await freePorts(names.length * 2);
    names.forEach((name, i) => {
      gw[name] = { name, port: ports[2 * i], adminPort: ports[2 * i + 1], origin: `http://localhost:${ports[2 * i]}` };
    });
    upstream = await startUpstream({ name: 'app', handler: echoPageHandler('app') });
    cleanup.add(() => upstream.close());
    [idp, browser, redis] = await Promise.all([
      startProvider({
        redirectUris: names.map((n) => `${gw[n].origin}${CALLBACK_PATH}`),
        // The IdP delivers to gateway A; set before any sign-in so that ID tokens carry sid.
        backchannelLogoutUri: `http://127.0.0.1:${gw.A.port}${BACKCHANNEL_PATH}`,
        consent: 'auto',
        logoutConfirm: 'page',
      }).then((h) => { cleanup.add(() => h.stop()); return h; }),
      launchBrowser().then((b) => { cleanup.add(() => b.close()); return b; }),
      startRedis().then((r) => { cleanup.add(() => r.stop()); return r; }),
    ]);
    const secretFile = path.join(dir, 'client-secret');
    fs.writeFileSync(secretFile, 'portcullis-sso-secret\n');
    const keyFile = writeCookieKey(dir, 'k1');
    const routes = [
      { name: 'app', match: { path_prefix: '/app' }, upstream: 'app', auth: 'sso', identity_headers: true,
        policy: { allow: { authenticated_user: true } } },
      { name: 'public', match: { path_prefix: '/' }, upstream: 'app', auth: 'public' },
    ];
    const cache = { redis: { address: `127.0.0.1:${redis.port}`, timeout: '250ms' } };
    const options = { A: { cache }, B: { cache }, C: {}, D: { cache, sessionStore: 'cookie' } };
    await Promise.all(names.map(async (name) => {
      const g = gw[name];
      const sso = ssoSection({ secretFile, keyFiles: [keyFile], cookieSecure: false, sessionStore: options[name].sessionStore });
      const config = {
        ...ssoGatewayConfig({ idp, upstream, port: g.port, adminPort: g.adminPort, sso, routes }),
        ...(options[name].cache ? { cache: options[name].cache } : {}),
      };
      const file = writeConfig(config, { dir, name: `gw-${name}.yaml` });
      g.proc = await startGateway({ configPath: file, adminAddress: `127.0.0.1:${g.adminPort}`, readyTimeoutMs: 15_000 });
      cleanup.add(() => g.proc.stop());
    }));
    await Promise.all(names.map((n) => waitForSsoReady({ port: gw[n].port, idp })));
  });

  test('a logout token with only sub ends every session of that user on every gateway, not mallory\'s', async () => {
    const a1 = await signInOn(gw.A, 'alice');
    const a2 = await signInOn(gw.B, 'alice'); // another context: another IdP session too
    const m1 = await signInOn(gw.A, 'mallory');
    assert.notEqual(a1.info.session_id, a2.info.session_id);
    await assertWorks(a1, 'before');
    await assertWorks(a2, 'before');
    await assertWorks(m1, 'before');
    const index = subjectIndex(idp.issuer, 'alice');
    assert.deepEqual((await members(index)).sort(), [a1.info.session_id, a2.info.session_id].sort(),
      "alice's subject index lists her two sessions");

    const { logout_token: token } = await idp.mintLogoutToken({ client_id: 'portcullis-sso', sub: 'alice' });
    const { payload } = verifyLogoutToken(token, { jwks: await idp.jwks(), issuer: idp.issuer, audience: 'portcullis-sso' });
    assert.equal(payload.sub, 'alice');
    assert.equal(payload.sid, undefined, 'a token naming only the subject');
    // Delivered to B, with the Host a browser would use: any gateway host answers.
    const r = await postLogout(gw.B, form(token), { host: `localhost:${gw.B.port}` });
    assert.equal(assertAccepted(r, 'sub-only logout token at B'), 2, r.body);

    await assertEnded(a1, 'after the sub-only logout');
    await assertEnded(a2, 'after the sub-only logout');
    assert.equal(await redisExists(index), 0, "alice's subject index is gone");
    await assertWorks(m1, "mallory's session after alice's logout");
    await gw.B.proc.waitForLog(/back-channel logout ended 2 session/);
  });

  test('sign-out at the IdP: the IdP delivers the logout token; that IdP session ends on both gateways, the other lives', async (t) => {
    const s1 = await signInOn(gw.A, 'alice');
    const s2 = await signInOn(gw.B, 'alice'); // its own context: a second IdP session
    await assertWorks(s1, 'before');
    await assertWorks(s2, 'before');
    const idpIndexesBefore = strings(await redisCommand(redis.port, ['KEYS', 'pc:sso:idp:v1:*']));
    assert.ok(idpIndexesBefore.length >= 2, `each sign-in is indexed by its IdP session: ${JSON.stringify(idpIndexesBefore)}`);
    const deliveriesBefore = (await idp.backchannelLogouts()).length;

    // RP-initiated logout AT THE IdP (not through the gateway), confirmed in the browser.
    await s1.page.goto(`${idp.endSessionEndpoint}?client_id=portcullis-sso`);
    await confirmLogout(s1.page);
    await s1.page.waitForSelector(SELECTORS.loggedOutPage);

    const deliveries = (await idp.backchannelLogouts()).slice(deliveriesBefore);
    t.diagnostic(`deliveries: ${JSON.stringify(deliveries)}`);
    assert.equal(deliveries.length, 1, `one back-channel delivery: ${JSON.stringify(deliveries)}`);
    const [d] = deliveries;
    assert.equal(d.ok, true, `the gateway accepted the IdP's logout token: ${JSON.stringify(d)}\n${logTail(gw.A)}`);
    assert.equal(d.client_id, 'portcullis-sso');
    assert.equal(d.uri, `http://127.0.0.1:${gw.A.port}${BACKCHANNEL_PATH}`);
    assert.equal(d.sub, 'alice');
    assert.equal(typeof d.sid, 'string', 'the IdP names its session');
    await gw.A.proc.waitForLog(/back-channel logout ended 1 session\(s\) \(one IdP session\)/);

    // The session of that IdP session is over on both gateways...
    await assertEnded(s1, 'after the IdP logout');
    const ended = idpSessionIndex(idp.issuer, d.sid);
    assert.ok(idpIndexesBefore.includes(ended), 'the logout token\'s sid is the sid of an ID token the gateway kept');
    assert.equal(await redisExists(ended), 0, 'that IdP session\'s index is gone');
    // ... and in the browser a navigation goes to the IdP, whose session ended too: its login form.
    const url = `${gw.A.origin}/app/${marker('after-idp-logout')}`;
    await s1.page.goto(url);
    await s1.page.waitForSelector(SELECTORS.loginPage);
    assert.ok(s1.page.url().startsWith(`${idp.issuer}/interaction/`), s1.page.url());

    // The other IdP session of alice (another browser) is not touched.
    await assertWorks(s2, 'the other IdP session after the logout');
    assert.equal(await redisExists(sessionKey(s2.info.session_id)), 1);
    const others = idpIndexesBefore.filter((k) => k !== ended);
    const still = [];
    for (const k of others) still.push(...await members(k));
    assert.ok(still.includes(s2.info.session_id), `the other IdP session's index still lists it: ${JSON.stringify(still)}`);
  });

  test('refused logout tokens: 400 invalid_request, and the session they name lives on', async () => {
    const s = await signInOn(gw.A, 'alice');
    const jwks = await idp.jwks();
    const { logout_token: genuine } = await idp.mintLogoutToken({ client_id: 'portcullis-sso', sub: 'alice' });
    const g = decodeJwt(genuine);
    const attacker = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const foreign = (header) => {
      const h = { ...g.header, ...header };
      const input = `${Buffer.from(JSON.stringify(h)).toString('base64url')}.${Buffer.from(JSON.stringify(g.payload)).toString('base64url')}`;
      return `${input}.${crypto.sign('sha256', Buffer.from(input), attacker.privateKey).toString('base64url')}`;
    };
    const { logout_token: otherClient } = await idp.mintLogoutToken({ client_id: 'portcullis-sso-post', sub: 'alice' });
    assert.equal(decodeJwt(otherClient).payload.aud, 'portcullis-sso-post');
    verifyLogoutToken(otherClient, { jwks, issuer: idp.issuer, audience: 'portcullis-sso-post' }); // genuine, for the other client
    const now = Math.floor(Date.now() / 1000);

    const cases = [
      ['no logout_token field', 'token=abc'],
      ['an empty logout_token', 'logout_token='],
      ['garbage', form('not-a-jwt')],
      ['three garbage parts', form('aaa.bbb.ccc')],
      ['alg none', form(compact({ alg: 'none', typ: 'logout+jwt' }, g.payload))],
      ['a genuine token for another client (aud portcullis-sso-post)', form(otherClient)],
      ['signed by a foreign key under the IdP\'s kid', form(foreign({}))],
      ['signed by a foreign key with its own kid', form(foreign({ kid: 'attacker-1' }))],
      ['the genuine token with its payload changed (sub)', form(`${genuine.split('.')[0]}.${Buffer.from(JSON.stringify({ ...g.payload, sub: 'mallory' })).toString('base64url')}.${genuine.split('.')[2]}`)],
      ['another iss', form(await idpSigned(logoutClaims({ iss: 'https://idp.example.test' })))],
      ['no back-channel logout event', form(await idpSigned(logoutClaims({ events: null })))],
      ['events without the back-channel logout event', form(await idpSigned(logoutClaims({ events: { 'http://schemas.openid.net/event/other': {} } })))],
      ['the event is not an object', form(await idpSigned(logoutClaims({ events: { [EVENT]: 'yes' } })))],
      ['a nonce', form(await idpSigned(logoutClaims({ nonce: 'n-0S6_WzA2Mj' })))],
      ['expired an hour ago', form(await idpSigned(logoutClaims({ iat: now - 3720, exp: now - 3600 })))],
      ['no iat', form(await idpSigned(logoutClaims({ iat: null })))],
      ['neither sub nor sid', form(await idpSigned(logoutClaims({ sub: null })))],
    ];
    for (const [what, body] of cases) {
      const r = await postLogout(gw.A, body);
      assertRefused(r, what);
      const still = await api(gw.A, s.cookie);
      assert.equal(still.status, 200, `after "${what}" the session still works: ${still.status} ${still.body}`);
    }
    // The same signing path with correct claims is accepted (the refusals above are the claims').
    const control = await postLogout(gw.A, form(await idpSigned(logoutClaims({ sid: 'no-such-idp-session' }))));
    assert.equal(assertAccepted(control, 'correct claims signed by the IdP (sid of no session)'), 0);
    await assertWorks(s, 'after the refusals');
  });

  test('a logout token is accepted once: a replay is refused on the same and on the other gateway', async () => {
    const s = await signInOn(gw.A, 'mallory');
    // sid of no gateway session: accepted, ends nothing.
    const { logout_token: token } = await idp.mintLogoutToken({ client_id: 'portcullis-sso', sub: 'mallory', sid: 'unknown-idp-session' });
    assert.ok(decodeJwt(token).payload.jti, 'the token has a jti');
    assert.equal(assertAccepted(await postLogout(gw.A, form(token)), 'first use'), 0);
    assertRefused(await postLogout(gw.A, form(token)), 'replay at A', /used already/);
    assertRefused(await postLogout(gw.B, form(token)), 'replay at B (shared Redis)', /used already/);
    await assertWorks(s, 'after the replays');
  });

  test('without Redis sessions 501, GET 405, a 70 KiB body 413', async () => {
    const { logout_token: token } = await idp.mintLogoutToken({ client_id: 'portcullis-sso', sub: 'alice' });
    for (const g of [gw.C, gw.D]) {
      const r = await postLogout(g, form(token));
      assertJsonError(assert, r, 501, 'not_implemented', `gateway ${g.name} (cookie sessions)`);
    }
    const get = await gwRequest({ port: gw.A.port, path: BACKCHANNEL_PATH, accept: JSON_ACCEPT });
    assert.equal(get.status, 405, `GET: ${get.status} ${get.body}`);
    const s = await signInOn(gw.B, 'alice');
    const big = await postLogout(gw.A, `logout_token=${'a'.repeat(70 * 1024)}`);
    assert.equal(big.status, 413, `70 KiB body: ${big.status} ${String(big.body).slice(0, 300)}`);
    // Under the limit the body is read and the (bad) token refused as such.
    assertRefused(await postLogout(gw.A, `logout_token=${'a'.repeat(60 * 1024)}`), '60 KiB garbage token');
    await assertWorks(s, 'after the oversized bodies');
    // The gateway is fine after all that: a good token is still taken.
    const ok = await postLogout(gw.A, form(token));
    assert.ok(assertAccepted(ok, 'the good token afterwards') >= 1, ok.body);
    await assertEnded(s, 'after the good token');
  });

  test('sessions_ended counts the sessions that ended, not index entries of sessions already gone', async () => {
    // Two live sessions of alice; a third one logged out at the gateway (its Redis key is
    // deleted, its id may stay in alice's subject index).
    const live1 = await signInOn(gw.A, 'alice');
    const live2 = await signInOn(gw.B, 'alice');
    const gone = await signInOn(gw.A, 'alice');
    const out = await gwRequest({ port: gw.A.port, path: '/.portcullis/logout', accept: NAV_ACCEPT, cookie: gone.cookie });
    assert.ok(out.status === 302 || out.status === 200, `gateway logout: ${out.status}`);
    await eventually(async () => (await redisExists(sessionKey(gone.info.session_id))) === 0,
      { timeoutMs: 5000, message: 'the logged-out session key to be deleted' });
    const indexed = await members(subjectIndex(idp.issuer, 'alice'));
    const live = await liveSessions('alice'); // also any session of alice earlier tests left running
    assert.ok(live.includes(live1.info.session_id) && live.includes(live2.info.session_id), JSON.stringify(live));
    assert.ok(!live.includes(gone.info.session_id));

    const { logout_token: token } = await idp.mintLogoutToken({ client_id: 'portcullis-sso', sub: 'alice' });
    const ended = assertAccepted(await postLogout(gw.B, form(token)), 'sub-only logout token');
    await assertEnded(live1, 'after the sub-only logout');
    await assertEnded(live2, 'after the sub-only logout');
    for (const sid of live) assert.equal(await redisExists(sessionKey(sid)), 0, `session ${sid} ended`);
    assert.equal(ended, live.length,
      `sessions_ended = the sessions that ended: ${live.length} live, ${indexed.length} ids in alice's subject index `
      + `(${indexed.includes(gone.info.session_id) ? 'including' : 'not including'} the logged-out ${gone.info.session_id}); gateway B: `
      + `${gw.B.proc.logText().split('\n').filter((l) => l.includes('back-channel logout ended')).at(-1)}`);
  });

  test('over HTTP/2 (h2c): GET 405, garbage 400, a sub token ends mallory\'s sessions', async (t) => {
    const m = await signInOn(gw.B, 'mallory');
    const live = await liveSessions('mallory');
    assert.ok(live.includes(m.info.session_id), `mallory's index lists the new session: ${JSON.stringify(live)}`);
    const { logout_token: token } = await idp.mintLogoutToken({ client_id: 'portcullis-sso', sub: 'mallory' });
    const session = await connectH2(gw.A.port);
    t.after(() => session.destroy());
    const base = { ':path': BACKCHANNEL_PATH, ':authority': `127.0.0.1:${gw.A.port}` };
    const get = await h2request(session, { ...base, ':method': 'GET' });
    assert.equal(get.status, 405, `h2 GET: ${JSON.stringify(get.error ?? get.headers)}`);
    const bad = await h2request(session, { ...base, ':method': 'POST', 'content-type': FORM }, form('garbage'));
    assert.equal(bad.status, 400, `h2 garbage: ${bad.error ?? bad.body}`);
    assert.equal(JSON.parse(bad.body.toString()).error, 'invalid_request');
    await assertWorks(m, 'after the h2 garbage');
    const ok = await h2request(session, { ...base, ':method': 'POST', 'content-type': FORM }, form(token));
    assert.equal(ok.status, 200, `h2 sub token: ${ok.error ?? ok.body}`);
    assert.match(String(ok.headers['cache-control'] ?? ''), /no-store/i);
    assert.deepEqual(JSON.parse(ok.body.toString()), { sessions_ended: live.length });
    await assertEnded(m, 'after the h2 logout');
  });
});
