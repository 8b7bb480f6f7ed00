// Browser single sign-on through the gateway (issue 8), end to end: headless Debian Chromium
// (playwright-core, tests/support/browser.mjs) against the real OpenID provider fixture
// (npm oidc-provider, tests/support/oidc/: auth-code clients portcullis-sso / -post, users
// alice (engineering) and mallory (contractors)), the real gateway binary, and the harness
// echo upstream (tests/support/sso.mjs echoPageHandler: it shows what it received, so the
// browser sees that the request reached the upstream with the session's identity).
//
// Coverage (numbers are the brief's; tests run in the order below, alice's session is shared):
//   1. alice: protected URL -> IdP login page -> signed in -> back on the original URL with its
//      query; the upstream saw X-Portcullis-User/-Email/-Groups; screenshot sso-signed-in
//   4. /.portcullis/userinfo with the session (page.request, fetch in the page, Cookie header),
//      and 401 login_required without one (on another Host too)
//   7. bearer_or_sso: a client-credentials bearer token works without a cookie (also with a
//      browser Accept); the browser session works without a token; an Authorization header means
//      bearer even with a valid session; neither: 401 for APIs, 302 for navigations
//  10. cookie flags: session Set-Cookie HttpOnly, SameSite=Lax, Path=/, Max-Age = session_ttl,
//      pre-login cookie cleared by the callback; over TLS with cookie_secure (default true):
//      __Host-portcullis / __Host-portcullis_login, Secure, no Domain
//  11. client_secret_post (portcullis-sso-post) login
//   5. tampered session cookie (one char flipped, truncated, empty, the pre-login cookie in its
//      place) and a foreign one (sealed by the client_secret_post gateway's other key): API 401
//      login_required, navigation 302 to the IdP, nothing reaches the upstream; two of them in the
//      real browser too. Expired: a gateway with session_ttl 2s, the cookie replayed after 3 s.
//      Extra: key rotation (a gateway listing the main key second opens the main gateway's cookie)
//   6. API vs browser: Accept: application/json, X-Requested-With -> 401 login_required; a
//      navigation (GET and HEAD) -> 302 to the authorization endpoint with response_type=code,
//      client_id, redirect_uri, scope, state, nonce, code_challenge(+S256), fresh per login;
//      the pre-login cookie is HttpOnly, SameSite=Lax, Path=/
//   8. open redirects at /.portcullis/login?rd=: the spec's refused table -> 400 bad_redirect
//      (JSON; HTML for a browser Accept), the accepted ones -> 302 to the IdP; over TLS the
//      http:// downgrade is refused; one accepted rd completed in the browser lands on rd
//   9. CSRF: callback with a wrong state (with the pre-login cookie), with the right state but no
//      pre-login cookie, and a real authorization response whose state was forged in the browser
//      -> 400 state_mismatch (HTML for the browser, JSON otherwise); the IdP's token endpoint was
//      never called (fixture /state counters)
//   2. mallory (contractors) on an engineering-only route: 403 self-contained HTML page with
//      #request-id (= x-request-id), #identity, #rule (only with show_deny_reason); API callers
//      get the JSON 403; screenshot sso-denied
//  12. Cancel on the IdP's login page -> 403 HTML sign-in error page, no token request
//   3. logout: 302 to end_session_endpoint with client_id and post_logout_redirect_uri, the
//      session cookie cleared (Max-Age=0); after it the protected page goes to the IdP's login
//      page again and userinfo is 401
//
// Gateways (one IdP, one browser, one upstream for all): main (plain http, cookie_secure
// false, client_secret_basic, key k1), post (client_secret_post, key k2), short (session_ttl
// 2s, key k3), tls (TLS listener, cookie_secure default), rot (keys [k4, k1]). The gateways are
// reached as http(s)://localhost:PORT and the IdP as http://127.0.0.1:PORT (separate cookies).
// Needs `npm ci` in tests/ and /usr/bin/chromium. Screenshots go to $PORTCULLIS_ARTIFACTS
// (default build/test-artifacts).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  startGateway, startUpstream, tempDir, rmTemp, freePorts, makeCerts, cleanupList, sleep, checkGatewayError,
} from '../support/harness.mjs';
import { startProvider, randomToken, ACCOUNTS, SELECTORS } from '../support/oidc/client.mjs';
import { launchBrowser, screenshot, signIn, confirmLogout } from '../support/browser.mjs';
import { writeSecret, waitForAccept } from '../support/bearer.mjs';
import {
  CALLBACK_PATH, LOGIN_PATH, LOGOUT_PATH, USERINFO_PATH, NAV_ACCEPT, JSON_ACCEPT,
  writeCookieKey, ssoSection, ssoGatewayConfig, echoPageHandler, pageEcho,
  setCookiesOf, isDeletion, sessionChunks, cookieHeader, flipOneChar,
  gwRequest, apiResult, assertLoginRequired, assertJsonError, assertLoginRedirect, waitForSsoReady,
  recordResponses, assertSelfContainedHtml,
} from '../support/sso.mjs';

const SESSION_TTL_S = 8 * 3600;
const anyAuthenticated = { allow: { authenticated_user: true } };
const engineeringOnly = { allow: { group: { has: 'engineering' } } };

/** The same routes on every gateway. */
const ROUTES = [
  { name: 'eng', match: { path_prefix: '/eng' }, upstream: 'app', auth: 'sso', policy: engineeringOnly, show_deny_reason: true },
  { name: 'quiet', match: { path_prefix: '/quiet' }, upstream: 'app', auth: 'sso', policy: engineeringOnly },
  { name: 'mixed', match: { path_prefix: '/mixed' }, upstream: 'app', auth: 'bearer_or_sso', policy: anyAuthenticated },
  { name: 'app', match: { path_prefix: '/app' }, upstream: 'app', auth: 'sso', policy: anyAuthenticated },
  { name: 'public', match: { path_prefix: '/' }, upstream: 'app', auth: 'public' },
];

let markerSeq = 0;
const marker = (tag) => `m=${tag}-${process.pid}-${++markerSeq}`;

/** session_expires_at as epoch ms (accepts epoch seconds, epoch ms or an RFC 3339 string). */
function expiryMs(v) {
  if (typeof v === 'number') return v > 1e12 ? v : v * 1000;
  return Date.parse(String(v));
}

describe('browser SSO through the gateway: Chromium + oidc-provider + echo upstream', { timeout: 180_000 }, () => {
  const cleanup = cleanupList();
  let dir;
  let certs;
  let ca;
  let idp;
  let browser;
  let upstream;
  /** name -> {port, origin, cookieName, proc, tls} */
  const gw = {};
  let postLogoutUri;

  const track = (page) => { cleanup.add(() => page.context().close()); return page; };
  const upstreamHits = (m) => upstream.requests.filter((r) => r.url.includes(m));
  const tokenCount = async () => (await idp.state()).counters.token;
  /** The authorization request itself (not oidc-provider's /auth/UID resume after the login form). */
  const isAuthorizationRequest = (u) => {
    try { const x = new URL(u); return `${x.origin}${x.pathname}` === idp.authorizationEndpoint; } catch { return false; }
  };

  /**
   * A fresh browser context opens `target` on gateway `g`, lands on the IdP's login page and
   * signs in as `username`. Resolves {page, context, rec, first (the gateway's 302),
   * callback (the callback's response), session ([{name, value}] set by the callback), authUrls}.
   */
  async function signInVia(g, target, username = 'alice') {
    const page = track(await browser.newPage());
    const rec = recordResponses(page);
    const authUrls = [];
    page.on('request', (r) => { if (isAuthorizationRequest(r.url())) authUrls.push(r.url()); });
    await page.goto(`${g.origin}${target}`);
    assert.ok(page.url().startsWith(`${idp.issuer}/interaction/`),
      `${g.origin}${target} should send the browser to the IdP's login page; it is on ${page.url()}`);
    await signIn(page, { username });
    const entries = await rec.settled();
    const first = entries.find((e) => e.url === `${g.origin}${target}` && e.status === 302);
    const callback = entries.find((e) => e.pathname === CALLBACK_PATH && e.url.startsWith(g.origin));
    const session = callback ? sessionChunks(callback.setCookies, g.cookieName) : [];
    return { page, context: page.context(), rec, first, callback, session, authUrls, target };
  }

  let aliceP;
  /** alice's signed-in page on the main gateway (signed in once, by test 1 or whoever needs it first). */
  const ensureAlice = () => (aliceP ??= signInVia(gw.main, '/app/page?x=1', 'alice'));
  let postP;
  /** alice signed in through the client_secret_post gateway (test 11; its cookie is "foreign" for test 5). */
  const ensurePostLogin = () => (postP ??= signInVia(gw.post, '/app/post?via=client_secret_post', 'alice'));

  before(async () => {
    dir = tempDir('portcullis-sso-');
    cleanup.add(() => rmTemp(dir));
    certs = await makeCerts(path.join(dir, 'certs'));
    ca = fs.readFileSync(certs.ca);
    const [pMain, pPost, pShort, pTls, pRot, aMain, aPost, aShort, aTls, aRot] = await freePorts(10);
    const define = (name, port, adminPort, { tls = false, cookieName } = {}) => {
      gw[name] = {
        name, port, adminPort, tls,
        origin: `${tls ? 'https' : 'http'}://localhost:${port}`,
        cookieName: cookieName ?? (tls ? '__Host-portcullis' : 'portcullis'),
      };
      gw[name].redirectUri = `${gw[name].origin}${CALLBACK_PATH}`;
    };
    define('main', pMain, aMain);
    define('post', pPost, aPost);
    define('short', pShort, aShort);
    define('tls', pTls, aTls, { tls: true });
    define('rot', pRot, aRot);
    postLogoutUri = `${gw.main.origin}/public/signed-out`;

    upstream = await startUpstream({ name: 'app', handler: echoPageHandler('app') });
    cleanup.add(() => upstream.close());
    const idpStarted = startProvider({
      redirectUris: ['main', 'post', 'short', 'tls'].map((n) => gw[n].redirectUri),
      postLogoutRedirectUris: [postLogoutUri],
      consent: 'auto',
      logoutConfirm: 'page',
    }).then((h) => { cleanup.add(() => h.stop()); return h; });
    const browserStarted = launchBrowser().then((b) => { cleanup.add(() => b.close()); return b; });
    [idp, browser] = await Promise.all([idpStarted, browserStarted]);

    const secret = writeSecret(dir, 'sso-secret', 'portcullis-sso-secret');
    const postSecret = writeSecret(dir, 'sso-post-secret', 'portcullis-sso-post-secret');
    const [k1, k2, k3, k4] = ['k1', 'k2', 'k3', 'k4'].map((k) => writeCookieKey(dir, k));
    const plain = { cookieSecure: false, allowedRedirectHosts: ['app.example'] };
    const ssoOf = {
      main: ssoSection({ ...plain, secretFile: secret, keyFiles: [k1], postLogoutRedirectUri: postLogoutUri }),
      post: ssoSection({ ...plain, clientId: 'portcullis-sso-post', clientAuth: 'client_secret_post', secretFile: postSecret, keyFiles: [k2] }),
      short: ssoSection({ ...plain, secretFile: secret, keyFiles: [k3], sessionTtl: '2s' }),
      tls: ssoSection({ allowedRedirectHosts: ['app.example'], secretFile: secret, keyFiles: [k1] }),
      rot: ssoSection({ ...plain, secretFile: secret, keyFiles: [k4, k1] }),
    };
    await Promise.all(Object.values(gw).map(async (g) => {
      const config = ssoGatewayConfig({
        idp, upstream, port: g.port, adminPort: g.adminPort, tls: g.tls ? certs : undefined, sso: ssoOf[g.name], routes: ROUTES,
      });
      g.proc = await startGateway({ config, readyTimeoutMs: 15_000 });
      cleanup.add(() => g.proc.stop());
    }));
    await Promise.all(Object.values(gw).map((g) => waitForSsoReady({ port: g.port, tls: g.tls, ca, idp })));
  });

  after(() => cleanup.run());

  // ---------------------------------------------------------------------------------------

  test('1. alice signs in at the IdP and lands on the URL she asked for; the upstream saw her identity', async (t) => {
    const a = await ensureAlice();
    const url = `${gw.main.origin}${a.target}`;
    assert.equal(a.page.url(), url, 'back on the original URL, query included');
    assert.equal(a.authUrls.length, 1, `one authorization request: ${a.authUrls}`);
    assert.ok(a.callback, 'the browser went through the gateway callback');
    assert.equal(a.callback.status, 302);
    assert.equal(new URL(a.callback.header('location'), gw.main.origin).href, url, 'the callback redirects to the URL first asked for');
    assert.ok(a.session.length >= 1, `the callback set the session cookie ${gw.main.cookieName}`);

    assert.equal(await a.page.textContent('#user'), 'alice', 'the upstream page names alice');
    const echo = await pageEcho(a.page);
    assert.equal(echo.url, a.target);
    assert.equal(echo.headers['x-portcullis-user'], 'alice');
    assert.equal(echo.headers['x-portcullis-email'], ACCOUNTS.alice.email);
    assert.ok(String(echo.headers['x-portcullis-groups']).split(',').includes('engineering'), echo.headers['x-portcullis-groups']);
    const seen = upstreamHits('/app/page?x=1');
    assert.equal(seen.length, 1, 'the upstream got the page once (after the sign-in)');
    assert.equal(seen[0].headers['x-portcullis-user'], 'alice');
    // The session cookie is the gateway's credential, never forwarded to the upstream.
    assert.ok(!String(seen[0].headers.cookie ?? '').includes(gw.main.cookieName),
      `cookies the upstream saw: ${seen[0].headers.cookie}`);
    t.diagnostic(`signed-in page: ${await screenshot(a.page, 'sso-signed-in')}`);
  });

  test('4. /.portcullis/userinfo: the session as JSON; 401 login_required without one', async () => {
    const a = await ensureAlice();
    const now = Date.now();
    const check = (r, what) => {
      assert.equal(r.status, 200, `${what}: ${r.status} ${String(r.body).slice(0, 300)}`);
      const info = JSON.parse(r.body);
      assert.equal(info.subject, 'alice', what);
      assert.equal(info.email, ACCOUNTS.alice.email, what);
      assert.deepEqual(info.groups, ['engineering'], what);
      assert.equal(info.issuer, idp.issuer, what);
      assert.equal(info.provider, 'local', what);
      const exp = expiryMs(info.session_expires_at);
      assert.ok(Number.isFinite(exp), `${what}: session_expires_at ${info.session_expires_at}`);
      assert.ok(exp > now && exp <= now + (SESSION_TTL_S + 600) * 1000,
        `${what}: session_expires_at ${info.session_expires_at} should be in the future, within session_ttl (8h)`);
      return info;
    };
    // The context's request API carries the browser's cookies.
    check(await apiResult(await a.page.request.get(`${gw.main.origin}${USERINFO_PATH}`, {
      headers: { accept: JSON_ACCEPT }, maxRedirects: 0,
    })), 'page.request');
    // fetch() in the page (same origin: the HttpOnly cookie goes along).
    const inPage = await a.page.evaluate(async (p) => {
      const r = await fetch(p, { headers: { accept: 'application/json' } });
      return { status: r.status, body: await r.text() };
    }, USERINFO_PATH);
    check({ ...inPage, headers: {} }, 'fetch in the page');
    // The same cookie from outside the browser.
    check(await gwRequest({ port: gw.main.port, path: USERINFO_PATH, accept: JSON_ACCEPT, cookie: cookieHeader(a.session) }), 'Cookie header');
    // Without a session: 401, also on a Host no route names (the catch-all public route
    // would answer 200 if the gateway did not own the path on every host).
    assertLoginRequired(assert, await gwRequest({ port: gw.main.port, path: USERINFO_PATH, accept: JSON_ACCEPT }), 'no cookie');
    assertLoginRequired(assert, await gwRequest({
      port: gw.main.port, host: `127.0.0.1:${gw.main.port}`, path: USERINFO_PATH, accept: JSON_ACCEPT,
    }), 'no cookie, Host 127.0.0.1');
    assertLoginRequired(assert, await gwRequest({
      port: gw.main.port, host: 'unrouted.example', path: USERINFO_PATH, accept: JSON_ACCEPT,
    }), 'no cookie, Host unrouted.example');
  });

  test('7. bearer_or_sso: a bearer token without a cookie, a session without a token', async () => {
    const { port, origin } = gw.main;
    // Client credentials from the fixture (sub = gateway-tests, aud api://mesh).
    const token = await idp.getToken({ scope: 'orders:read' });
    await waitForAccept(port, '/mixed/warmup', token);
    const m1 = marker('bearer');
    const r = await gwRequest({ port, path: `/mixed/api?${m1}`, accept: JSON_ACCEPT, headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200, `bearer: ${r.status} ${r.body.slice(0, 300)}`);
    const echo = JSON.parse(r.body);
    assert.equal(echo.headers['x-portcullis-user'], 'gateway-tests');
    assert.equal(echo.headers.cookie, undefined);
    assert.equal(upstreamHits(m1).length, 1);
    // An Authorization header means bearer even for a request that looks like a navigation.
    const navBearer = await gwRequest({ port, path: `/mixed/page?${marker('bearer-nav')}`, accept: NAV_ACCEPT, headers: { authorization: `Bearer ${token}` } });
    assert.equal(navBearer.status, 200, `bearer with a browser Accept: ${navBearer.status} location=${navBearer.headers.location}`);

    // The browser session without a token.
    const a = await ensureAlice();
    const m2 = marker('session');
    const resp = await a.page.goto(`${origin}/mixed/page?${m2}`);
    assert.equal(resp.status(), 200);
    assert.equal(a.page.url(), `${origin}/mixed/page?${m2}`);
    const seen = await pageEcho(a.page);
    assert.equal(seen.headers['x-portcullis-user'], 'alice');
    assert.equal(seen.headers.authorization, undefined);

    // Authorization present = bearer, even with a valid session cookie: a bad token is refused.
    const m3 = marker('both');
    const both = await apiResult(await a.page.request.get(`${origin}/mixed/api?${m3}`, {
      headers: { authorization: 'Bearer not-a-valid-token', accept: JSON_ACCEPT }, maxRedirects: 0,
    }));
    assert.equal(both.status, 401, `bad bearer + valid session: ${both.status} ${both.body.slice(0, 200)}`);
    assert.equal(upstreamHits(m3).length, 0);

    // Neither: an API call gets 401, a navigation goes to the IdP.
    const m4 = marker('neither');
    const api = await gwRequest({ port, path: `/mixed/api?${m4}`, accept: JSON_ACCEPT });
    assert.equal(api.status, 401, `no token, no session (API): ${api.status} ${api.body.slice(0, 200)}`);
    assertLoginRedirect(assert, await gwRequest({ port, path: `/mixed/page?${m4}`, accept: NAV_ACCEPT }),
      { idp, redirectUri: gw.main.redirectUri, what: 'no token, no session (navigation)' });
    assert.equal(upstreamHits(m4).length, 0);
  });

  test('10. cookie flags: HttpOnly, SameSite=Lax, Path=/, Max-Age; __Host- and Secure over TLS', async () => {
    // Plain listener, cookie_secure: false (alice's sign-in of test 1).
    const a = await ensureAlice();
    const name = gw.main.cookieName;
    const set = a.callback.setCookies.find((c) => c.name === name && !isDeletion(c));
    assert.ok(set, `session Set-Cookie ${name} on the callback: ${a.callback.setCookies.map((c) => c.raw)}`);
    assert.equal(set.httpOnly, true, set.raw);
    assert.equal(set.sameSite?.toLowerCase(), 'lax', set.raw);
    assert.equal(set.path, '/', set.raw);
    assert.equal(set.maxAge, SESSION_TTL_S, `Max-Age = session_ttl: ${set.raw}`);
    const cleared = a.callback.setCookies.find((c) => c.name === `${name}_login`);
    assert.ok(cleared && isDeletion(cleared), `the callback clears the pre-login cookie: ${a.callback.setCookies.map((c) => c.raw)}`);
    const jar = await a.context.cookies(gw.main.origin);
    const kept = jar.find((c) => c.name === name);
    assert.ok(kept, `the browser kept ${name}`);
    assert.deepEqual([kept.httpOnly, kept.sameSite, kept.path], [true, 'Lax', '/']);
    assert.ok(kept.expires > Date.now() / 1000 + SESSION_TTL_S - 3600, `persistent cookie (expires ${kept.expires})`);
    assert.ok(!jar.some((c) => c.name === `${name}_login`), 'no pre-login cookie left in the browser');

    // TLS listener, cookie_secure defaults to true.
    const s = await signInVia(gw.tls, '/app/tls?x=1', 'alice');
    assert.equal(s.page.url(), `${gw.tls.origin}/app/tls?x=1`);
    assert.equal((await pageEcho(s.page)).headers['x-portcullis-user'], 'alice');
    assert.ok(s.first, 'the gateway\'s 302 to the IdP was recorded');
    const pre = s.first.setCookies.find((c) => c.name === '__Host-portcullis_login');
    assert.ok(pre, `pre-login cookie __Host-portcullis_login: ${s.first.setCookies.map((c) => c.raw)}`);
    assert.deepEqual([pre.secure, pre.httpOnly, pre.sameSite?.toLowerCase(), pre.path, pre.domain], [true, true, 'lax', '/', undefined], pre.raw);
    const tlsSet = s.callback?.setCookies.find((c) => c.name === '__Host-portcullis' && !isDeletion(c));
    assert.ok(tlsSet, `session cookie __Host-portcullis: ${s.callback?.setCookies.map((c) => c.raw)}`);
    assert.deepEqual([tlsSet.secure, tlsSet.httpOnly, tlsSet.sameSite?.toLowerCase(), tlsSet.path, tlsSet.domain, tlsSet.maxAge],
      [true, true, 'lax', '/', undefined, SESSION_TTL_S], tlsSet.raw);
    const tlsJar = await s.context.cookies(gw.tls.origin);
    const c = tlsJar.find((x) => x.name === '__Host-portcullis');
    assert.ok(c, `browser cookies: ${tlsJar.map((x) => x.name)}`);
    assert.deepEqual([c.secure, c.httpOnly, c.sameSite], [true, true, 'Lax']);
    await s.context.close();
  });

  test('11. client_secret_post client (portcullis-sso-post) signs in too', async () => {
    const s = await ensurePostLogin();
    assert.equal(s.page.url(), `${gw.post.origin}${s.target}`);
    assert.equal(new URL(s.authUrls[0]).searchParams.get('client_id'), 'portcullis-sso-post');
    const echo = await pageEcho(s.page);
    assert.equal(echo.headers['x-portcullis-user'], 'alice');
    assert.equal(echo.url, s.target);
    assert.ok(s.session.length >= 1, 'session cookie set');
  });

  test('5. tampered and foreign session cookies are refused (401 for APIs, 302 to the IdP for browsers)', async () => {
    const a = await ensureAlice();
    const { port, origin, cookieName: name } = gw.main;
    const good = cookieHeader(a.session);
    // Control: the genuine cookie works from outside the browser.
    const ok = await gwRequest({ port, path: `/app/tamper-control?${marker('control')}`, accept: JSON_ACCEPT, cookie: good });
    assert.equal(ok.status, 200, `genuine cookie: ${ok.status} ${ok.body.slice(0, 200)}`);
    assert.equal(JSON.parse(ok.body).headers['x-portcullis-user'], 'alice');

    const [head, ...rest] = a.session;
    const withHead = (value) => cookieHeader([{ name: head.name, value }, ...rest]);
    const flipped = flipOneChar(head.value);
    assert.notEqual(flipped, head.value);
    const foreign = (await ensurePostLogin()).session;
    assert.ok(foreign.length >= 1, 'the client_secret_post gateway set a cookie');
    const foreignAsMain = foreign.map((c) => ({ name: c.name.replace(gw.post.cookieName, name), value: c.value }));
    const preLogin = a.rec.entries.flatMap((e) => (e.url.startsWith(origin) ? e.setCookies : []))
      .find((c) => c.name === `${name}_login` && !isDeletion(c));
    const variants = [
      ['one character flipped', withHead(flipped)],
      ['truncated by 8 characters', withHead(head.value.slice(0, -8))],
      ['truncated to half', withHead(head.value.slice(0, Math.floor(head.value.length / 2)))],
      ['empty value', `${name}=`],
      ['sealed by another gateway with another cookie key', cookieHeader(foreignAsMain)],
    ];
    if (preLogin) variants.push(['the pre-login cookie in place of the session cookie', `${name}=${preLogin.value}`]);
    for (const [what, cookie] of variants) {
      const m = marker('tampered');
      assertLoginRequired(assert, await gwRequest({ port, path: `/app/tampered?${m}`, accept: JSON_ACCEPT, cookie }), `${what} (API)`);
      assertLoginRequired(assert, await gwRequest({ port, path: USERINFO_PATH, accept: JSON_ACCEPT, cookie }), `${what} (userinfo)`);
      assertLoginRedirect(assert, await gwRequest({ port, path: `/app/tampered?${m}`, accept: NAV_ACCEPT, cookie }),
        { idp, redirectUri: gw.main.redirectUri, what: `${what} (navigation)` });
      assert.equal(upstreamHits(m).length, 0, `${what}: reached the upstream`);
    }

    // The real browser with a bad cookie in its jar goes to the IdP's login page.
    for (const [what, chunks] of [['flipped', [{ name: head.name, value: flipped }, ...rest]], ['foreign', foreignAsMain]]) {
      const page = track(await browser.newPage());
      await page.context().addCookies(chunks.map((c) => ({ ...c, url: origin, httpOnly: true, sameSite: 'Lax' })));
      await page.goto(`${origin}/app/tampered-browser?${marker(what)}`);
      assert.ok(page.url().startsWith(`${idp.issuer}/interaction/`), `${what} cookie in the browser: on ${page.url()}`);
      await page.waitForSelector(SELECTORS.loginPage);
      await page.context().close();
    }
  });

  test('5. expired session cookie (session_ttl 2s, replayed after 3 s) is refused', async (t) => {
    const g = gw.short;
    const s = await signInVia(g, '/app/short?x=1', 'alice');
    const set = s.callback?.setCookies.find((c) => c.name === g.cookieName && !isDeletion(c));
    assert.ok(set, `session cookie set by the 2s gateway: ${s.callback?.setCookies.map((c) => c.raw)}`);
    assert.equal(set.maxAge, 2, `Max-Age = session_ttl 2s: ${set.raw}`);
    t.diagnostic(`right after sign-in the browser was on ${s.page.url()} (not asserted: it races the 2 s ttl)`);
    // The browser drops the cookie by itself after Max-Age: replay its value from outside to
    // show the gateway refuses it too.
    const cookie = cookieHeader(s.session);
    await s.context.close();
    await sleep(3000);
    const m = marker('expired');
    assertLoginRequired(assert, await gwRequest({ port: g.port, path: `/app/short?${m}`, accept: JSON_ACCEPT, cookie }), 'expired (API)');
    assertLoginRequired(assert, await gwRequest({ port: g.port, path: USERINFO_PATH, accept: JSON_ACCEPT, cookie }), 'expired (userinfo)');
    assertLoginRedirect(assert, await gwRequest({ port: g.port, path: `/app/short?${m}`, accept: NAV_ACCEPT, cookie }),
      { idp, redirectUri: g.redirectUri, what: 'expired (navigation)' });
    assert.equal(upstreamHits(m).length, 0);
  });

  test('5. (extra) key rotation: a gateway listing the main key second opens its cookies, not the foreign ones', async () => {
    const a = await ensureAlice();
    const r = await gwRequest({ port: gw.rot.port, path: USERINFO_PATH, accept: JSON_ACCEPT, cookie: cookieHeader(a.session) });
    assert.equal(r.status, 200, `main cookie on the [k4, k1] gateway: ${r.status} ${r.body.slice(0, 200)}`);
    assert.equal(JSON.parse(r.body).subject, 'alice');
    const page = await gwRequest({ port: gw.rot.port, path: `/app/rotated?${marker('rot')}`, accept: JSON_ACCEPT, cookie: cookieHeader(a.session) });
    assert.equal(page.status, 200);
    assert.equal(JSON.parse(page.body).headers['x-portcullis-user'], 'alice');
    const foreign = (await ensurePostLogin()).session.map((c) => ({ name: c.name.replace(gw.post.cookieName, gw.rot.cookieName), value: c.value }));
    assertLoginRequired(assert, await gwRequest({ port: gw.rot.port, path: USERINFO_PATH, accept: JSON_ACCEPT, cookie: cookieHeader(foreign) }),
      'a cookie sealed with k2 on the [k4, k1] gateway');
  });

  test('6. API calls get 401 login_required; a navigation gets 302 to the IdP with PKCE, state, nonce and a pre-login cookie', async () => {
    const { port, cookieName: name } = gw.main;
    const m = marker('api');
    const p = `/app/api?${m}`;
    assertLoginRequired(assert, await gwRequest({ port, path: p, accept: JSON_ACCEPT }), 'Accept: application/json');
    assertLoginRequired(assert, await gwRequest({ port, path: p, accept: 'application/json, text/plain, */*' }), 'Accept: application/json, text/plain, */*');
    assertLoginRequired(assert, await gwRequest({ port, path: p, accept: NAV_ACCEPT, headers: { 'x-requested-with': 'XMLHttpRequest' } }),
      'X-Requested-With (with an HTML Accept)');
    const grpc = await gwRequest({ port, method: 'POST', path: '/app/pkg.Service/Method', accept: NAV_ACCEPT, headers: { 'content-type': 'application/grpc', te: 'trailers' } });
    assert.notEqual(grpc.status, 302, 'a gRPC request is never redirected to the IdP');
    assert.equal(grpc.headers.location, undefined);

    const nav = await gwRequest({ port, path: `/app/nav?${m}&y=2`, accept: NAV_ACCEPT });
    const first = assertLoginRedirect(assert, nav, { idp, redirectUri: gw.main.redirectUri, what: 'navigation' });
    const cookies = setCookiesOf(nav);
    const pre = cookies.find((c) => c.name === `${name}_login`);
    assert.ok(pre, `pre-login cookie ${name}_login: ${cookies.map((c) => c.raw)}`);
    assert.ok(pre.value.length > 0 && !isDeletion(pre), pre.raw);
    assert.equal(pre.httpOnly, true, pre.raw);
    assert.equal(pre.sameSite?.toLowerCase(), 'lax', pre.raw);
    assert.equal(pre.path, '/', pre.raw);
    if (pre.maxAge !== undefined) assert.ok(pre.maxAge > 0 && pre.maxAge < SESSION_TTL_S, `short-lived: ${pre.raw}`);
    assert.ok(!pre.value.includes(first.state), 'the pre-login cookie is sealed (state not in clear)');
    assert.ok(!cookies.some((c) => c.name === name && !isDeletion(c)), 'no session cookie before sign-in');
    // A second login attempt gets fresh values.
    const second = assertLoginRedirect(assert, await gwRequest({ port, path: `/app/nav?${m}&y=3`, accept: NAV_ACCEPT }),
      { idp, redirectUri: gw.main.redirectUri, what: 'second navigation' });
    assert.notEqual(second.state, first.state);
    assert.notEqual(second.nonce, first.nonce);
    assert.notEqual(second.challenge, first.challenge);
    // HEAD is a navigation too.
    assertLoginRedirect(assert, await gwRequest({ port, method: 'HEAD', path: `/app/nav?${m}`, accept: NAV_ACCEPT }),
      { idp, redirectUri: gw.main.redirectUri, what: 'HEAD navigation' });
    assert.equal(upstreamHits(m).length, 0, 'nothing reached the upstream without a session');
  });

  test('8. open redirects: /.portcullis/login?rd= refuses the table with 400 bad_redirect, accepts same origin and allowlisted hosts', async () => {
    const { port, origin } = gw.main;
    const login = (query, accept = JSON_ACCEPT, o = gw.main) => gwRequest({ port: o.port, tls: o.tls, ca, path: `${LOGIN_PATH}?${query}`, accept });
    const rd = (v) => `rd=${encodeURIComponent(v)}`;
    const refused = [
      '//evil.example',
      '/\\evil.example',
      'https:evil.example',
      'javascript:alert(1)',
      'https://evil.example/',
      'https://app.example@evil.example/',
      '/%2F%2Fevil.example', // rd's value after one decoding (sent as %2F%252F%252F...)
      'https://\u0430pp.example/', // Cyrillic a
      'https://app.example.evil.example/', // suffix of an allowlisted host
      `http://localhost:${gw.post.port}/x`, // same host, another port: another origin
    ];
    for (const v of refused) {
      assertJsonError(assert, await login(rd(v)), 400, 'bad_redirect', `rd=${JSON.stringify(v)}`);
    }
    // Sent as is: rd decodes to ///evil.example.
    assertJsonError(assert, await login('rd=/%2F%2Fevil.example'), 400, 'bad_redirect', 'raw rd=/%2F%2Fevil.example');
    // A browser gets an HTML error page.
    const html = await login(rd('//evil.example'), NAV_ACCEPT);
    assert.equal(html.status, 400, `HTML bad_redirect: ${html.status} location=${html.headers.location}`);
    assert.match(String(html.headers['content-type']), /text\/html/i);
    assertSelfContainedHtml(assert, html.body, 'bad_redirect page');

    const accepted = ['/path?x=1', 'https://app.example/x', `http://localhost:${port}/x`];
    for (const v of accepted) {
      const r = await login(rd(v), NAV_ACCEPT);
      assertLoginRedirect(assert, r, { idp, redirectUri: gw.main.redirectUri, what: `rd=${JSON.stringify(v)}` });
      assert.ok(setCookiesOf(r).some((c) => c.name === `${gw.main.cookieName}_login` && !isDeletion(c)), `rd=${v}: pre-login cookie`);
    }

    // Over TLS: no downgrade to http, neither to an allowlisted host nor to the same host.
    for (const v of ['http://app.example/', `http://localhost:${gw.tls.port}/x`, '//evil.example']) {
      assertJsonError(assert, await login(rd(v), JSON_ACCEPT, gw.tls), 400, 'bad_redirect', `TLS rd=${JSON.stringify(v)}`);
    }
    for (const v of ['https://app.example/x', `https://localhost:${gw.tls.port}/x`, '/path?x=1']) {
      assertLoginRedirect(assert, await login(rd(v), NAV_ACCEPT, gw.tls), { idp, redirectUri: gw.tls.redirectUri, what: `TLS rd=${JSON.stringify(v)}` });
    }

    // One accepted rd all the way: the browser lands on it after signing in.
    const target = `${origin}/app/rd-landing?from=login&x=1`;
    const page = track(await browser.newPage());
    await page.goto(`${origin}${LOGIN_PATH}?${rd(target)}`);
    assert.ok(page.url().startsWith(`${idp.issuer}/interaction/`), page.url());
    await signIn(page, { username: 'alice' });
    assert.equal(page.url(), target);
    assert.equal((await pageEcho(page)).headers['x-portcullis-user'], 'alice');
    await page.context().close();
  });

  test('9. CSRF: a callback whose state does not match the pre-login cookie is refused (400 state_mismatch), the code never exchanged', async (t) => {
    const { port, origin, cookieName: name } = gw.main;
    const page = track(await browser.newPage());
    const authUrls = [];
    page.on('request', (r) => { if (isAuthorizationRequest(r.url())) authUrls.push(r.url()); });
    await page.goto(`${origin}/app/csrf?x=1`);
    await page.waitForSelector(SELECTORS.loginPage);
    assert.equal(authUrls.length, 1, authUrls.join('\n'));
    const realAuth = new URL(authUrls[0]);
    const realState = realAuth.searchParams.get('state');
    const pre = (await page.context().cookies(origin)).find((c) => c.name === `${name}_login`);
    assert.ok(pre, 'the browser holds the pre-login cookie');
    const preCookie = `${pre.name}=${pre.value}`;
    const before = (await idp.state()).counters;

    // Direct calls (JSON answers).
    const callback = (q, cookie) => gwRequest({ port, path: `${CALLBACK_PATH}?${new URLSearchParams(q)}`, accept: JSON_ACCEPT, cookie });
    assertJsonError(assert, await callback({ code: 'attacker-code', state: `forged-${randomToken(8)}`, iss: idp.issuer }, preCookie),
      400, 'state_mismatch', 'wrong state with the pre-login cookie');
    assertJsonError(assert, await callback({ code: 'attacker-code', state: realState, iss: idp.issuer }),
      400, 'state_mismatch', 'the right state without the pre-login cookie');

    // A real authorization response with a forged state: the browser is sent to the IdP with
    // the gateway's request but another state, signs in, and the IdP redirects it to the
    // callback with a genuine code and the forged state.
    const forgedState = `forged-${randomToken(12)}`;
    const forged = new URL(realAuth);
    forged.searchParams.set('state', forgedState);
    await page.goto(forged.href);
    const cbResponse = page.waitForResponse((r) => new URL(r.url()).pathname === CALLBACK_PATH);
    await signIn(page, { username: 'alice' });
    const resp = await cbResponse;
    const cbUrl = new URL(resp.url());
    assert.equal(cbUrl.searchParams.get('state'), forgedState);
    assert.ok(cbUrl.searchParams.get('code'), 'the IdP issued a genuine code');
    assert.equal(resp.status(), 400, `forged state in the browser: ${resp.status()}`);
    assert.match(String(resp.headers()['content-type']), /text\/html/i, 'a browser gets an HTML page');
    t.diagnostic(`state mismatch page: ${(await page.textContent('body')).trim().slice(0, 200)}`);
    assert.equal(await page.$('#upstream'), null, 'no upstream page');
    assert.ok(!(await page.context().cookies(origin)).some((c) => c.name === name), 'no session cookie');
    // The same callback URL from outside, with the browser's pre-login cookie: the JSON names the error.
    const replay = await gwRequest({ port, path: `${cbUrl.pathname}${cbUrl.search}`, accept: JSON_ACCEPT, cookie: preCookie });
    assertJsonError(assert, replay, 400, 'state_mismatch', 'the forged authorization response replayed');

    const afterCounters = (await idp.state()).counters;
    assert.ok(afterCounters.login_ok > before.login_ok, 'alice did sign in at the IdP');
    assert.equal(afterCounters.token, before.token, 'the gateway never called the token endpoint for a mismatched state');
    await page.context().close();
  });

  test('2. mallory is denied by the policy: 403 access-denied page with request id, identity and rule', async (t) => {
    const { origin } = gw.main;
    const m = marker('mallory');
    const target = `/eng/doc?${m}`;
    const s = await signInVia(gw.main, target, 'mallory');
    assert.equal(s.page.url(), `${origin}${target}`);
    const landing = s.rec.entries.filter((e) => e.url === `${origin}${target}`).at(-1);
    assert.equal(landing?.status, 403, `mallory on an engineering-only route: ${landing?.status}`);
    assert.match(String(landing.header('content-type')), /text\/html/i);

    // Reload to see the page's own network use: the document only (a favicon aside).
    const requests = [];
    s.page.on('request', (r) => requests.push(r.url()));
    const resp = await s.page.reload();
    assert.equal(resp.status(), 403);
    assert.match(String(resp.headers()['content-type']), /text\/html/i);
    const rid = resp.headers()['x-request-id'];
    assert.ok(rid, 'x-request-id on the 403');
    assert.equal((await s.page.textContent('#request-id')).trim(), rid, '#request-id is the x-request-id');
    const who = (await s.page.textContent('#identity')).trim();
    assert.ok(who.includes(ACCOUNTS.mallory.email) || who === 'mallory', `#identity shows mallory's email or subject: ${who}`);
    const rule = await s.page.$('#rule');
    assert.ok(rule, '#rule shown (show_deny_reason: true)');
    // The route's inline policy, named by the config's file name and the route: never by the
    // server's directories.
    assert.match((await rule.textContent()).trim(), /^[\w.-]+\.yaml route eng#default$/, '#rule names the rule, no path');
    assertSelfContainedHtml(assert, await resp.text(), 'access-denied page');
    const others = requests.filter((u) => u !== resp.url() && !u.startsWith('data:') && new URL(u).pathname !== '/favicon.ico');
    assert.deepEqual(others, [], 'the access-denied page loads nothing else');
    t.diagnostic(`denied page: ${await screenshot(s.page, 'sso-denied')}`);
    assert.equal(upstreamHits(m).length, 0, 'a denied request never reaches the upstream');

    // API callers with the same session get the JSON 403 of bearer routes.
    const api = await apiResult(await s.page.request.get(`${origin}${target}`, { headers: { accept: JSON_ACCEPT }, maxRedirects: 0 }));
    const body = checkGatewayError(assert, api, 403, 'forbidden');
    assert.equal(typeof body.rule, 'string', `show_deny_reason: the JSON names the rule: ${api.body}`);

    // Without show_deny_reason: no #rule.
    const quiet = await s.page.goto(`${origin}/quiet/doc?${m}`);
    assert.equal(quiet.status(), 403);
    assert.equal((await s.page.textContent('#request-id')).trim(), quiet.headers()['x-request-id']);
    assert.ok((await s.page.textContent('#identity')).includes('mallory'));
    assert.equal(await s.page.$('#rule'), null, 'no #rule without show_deny_reason');
    assert.equal(upstreamHits(m).length, 0);

    // The same session is fine where the policy allows anyone signed in.
    const allowed = await s.page.goto(`${origin}/app/mallory?${m}`);
    assert.equal(allowed.status(), 200);
    assert.equal((await pageEcho(s.page)).headers['x-portcullis-user'], 'mallory');
    await s.context.close();
  });

  test('12. Cancel at the IdP: the gateway shows a 403 sign-in error page, no token request', async () => {
    const { origin, port, cookieName: name } = gw.main;
    const page = track(await browser.newPage());
    await page.goto(`${origin}/app/cancel?${marker('cancel')}`);
    await page.waitForSelector(SELECTORS.loginPage);
    const tokensBefore = await tokenCount();
    const cbResponse = page.waitForResponse((r) => new URL(r.url()).pathname === CALLBACK_PATH);
    await Promise.all([page.waitForNavigation(), page.click(SELECTORS.cancel)]);
    const resp = await cbResponse;
    assert.equal(new URL(resp.url()).searchParams.get('error'), 'access_denied');
    assert.equal(resp.status(), 403);
    assert.match(String(resp.headers()['content-type']), /text\/html/i);
    assertSelfContainedHtml(assert, await resp.text(), 'sign-in error page');
    assert.ok(!(await page.context().cookies(origin)).some((c) => c.name === name), 'no session cookie');
    assert.equal(await tokenCount(), tokensBefore, 'no code exchange');
    // The gateway is fine afterwards.
    assertLoginRequired(assert, await gwRequest({ port, path: USERINFO_PATH, accept: JSON_ACCEPT }), 'userinfo after the cancel');
    const open = await gwRequest({ port, path: '/public/after-cancel', accept: JSON_ACCEPT });
    assert.equal(open.status, 200);
    await page.context().close();
  });

  test('3. logout clears the session and continues to the IdP; afterwards the protected page goes to the IdP again', async (t) => {
    const a = await ensureAlice();
    const { port, origin, cookieName: name } = gw.main;
    // The answer itself, from outside the browser (with a cookie-only session this request
    // does not end the browser's session).
    const r = await gwRequest({ port, path: LOGOUT_PATH, accept: NAV_ACCEPT, cookie: cookieHeader(a.session) });
    assert.equal(r.status, 302, `logout: ${r.status} ${r.body.slice(0, 200)}`);
    const loc = new URL(r.headers.location);
    assert.equal(`${loc.origin}${loc.pathname}`, idp.endSessionEndpoint, 'RP-initiated logout at the IdP');
    assert.equal(loc.searchParams.get('client_id'), 'portcullis-sso');
    assert.equal(loc.searchParams.get('post_logout_redirect_uri'), postLogoutUri);
    const clear = setCookiesOf(r).find((c) => c.name === name);
    assert.ok(clear, `logout clears ${name}: ${setCookiesOf(r).map((c) => c.raw)}`);
    assert.equal(clear.maxAge, 0, clear.raw);

    // In the browser: gateway -> IdP "sign out?" -> yes -> post_logout_redirect_uri.
    await a.page.goto(`${origin}${LOGOUT_PATH}`);
    assert.ok(a.page.url().startsWith(idp.endSessionEndpoint), a.page.url());
    await confirmLogout(a.page);
    assert.ok(a.page.url().startsWith(postLogoutUri), `after logout the browser is on ${a.page.url()}`);
    assert.ok(!(await a.context.cookies(origin)).some((c) => c.name === name && c.value !== ''), 'the session cookie is gone');
    assertLoginRequired(assert, await apiResult(await a.page.request.get(`${origin}${USERINFO_PATH}`, {
      headers: { accept: JSON_ACCEPT }, maxRedirects: 0,
    })), 'userinfo after logout');
    const authBefore = (await idp.state()).counters.authorization;
    await a.page.goto(`${origin}/app/page?x=1`);
    await a.page.waitForSelector(SELECTORS.loginPage);
    assert.ok(a.page.url().startsWith(`${idp.issuer}/interaction/`), a.page.url());
    assert.ok((await idp.state()).counters.authorization > authBefore, 'a new authorization request reached the IdP');
    t.diagnostic(`after logout: ${await screenshot(a.page, 'sso-after-logout')}`);
    aliceP = undefined; // signed out
  });
});
