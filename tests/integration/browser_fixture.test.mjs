// Self-test of the browser SSO fixture (no gateway): headless Debian Chromium driven by
// playwright-core (tests/support/browser.mjs) against the npm oidc-provider fixture
// (tests/support/oidc/), with a tiny relying party in this process that does what the
// gateway will do: authorization code + PKCE (S256), state bound to a cookie, nonce, code
// exchange with client_secret_basic or client_secret_post, ID token verified with the JWKS
// (node:crypto), RP-initiated logout, back-channel logout, and the device authorization grant.
// Screenshots go to $PORTCULLIS_ARTIFACTS (default build/test-artifacts).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  startProvider, fetchJson, httpRequest, decodeJwt, authorizationUrl, exchangeCode, refreshTokens,
  verifyIdToken, verifyLogoutToken, endSessionUrl, pkcePair, randomToken, deviceAuthorization,
  pollDeviceToken, tokenEndpointRequest, SSO_CLIENTS, SELECTORS,
} from '../support/oidc/client.mjs';
import {
  launchBrowser, screenshot, signIn, confirmLogout, approveDevice, artifactDir,
} from '../support/browser.mjs';
import { makeCerts, tempDir, rmTemp } from '../support/harness.mjs';

const listen = (server) => new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, '127.0.0.1', () => resolve(server.address().port));
});
const closeServer = (server) => new Promise((resolve) => {
  server.close(() => resolve());
  server.closeAllConnections?.();
});
const cookiesOf = (req) => Object.fromEntries((req.headers.cookie ?? '').split(/;\s*/).filter(Boolean)
  .map((c) => [c.slice(0, c.indexOf('=')), decodeURIComponent(c.slice(c.indexOf('=') + 1))]));
const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const readBody = async (req) => {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
};

/**
 * The relying party. Routes: /login[?client=ID&prompt=P], /callback, /, /logout, /logged-out,
 * POST /backchannel. Records what it saw in rp.logins, rp.errors, rp.backchannel.
 */
async function startRp() {
  const rp = {
    logins: [], errors: [], backchannel: [], loggedOut: [], pending: new Map(), sessions: new Map(),
    idp: undefined, jwks: undefined,
  };
  const page = (res, status, title, body, headers = {}) => {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...headers });
    res.end(`<!DOCTYPE html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head>
      <body style="font-family:'Liberation Sans',Arial,sans-serif;margin:40px">${body}</body></html>`);
  };
  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url, rp.origin);
      const cookies = cookiesOf(req);
      if (url.pathname === '/login') {
        const clientId = url.searchParams.get('client') ?? 'portcullis-sso';
        const state = randomToken(16);
        const nonce = randomToken(16);
        const pkce = pkcePair();
        rp.pending.set(state, { clientId, nonce, verifier: pkce.verifier, at: Date.now() });
        const location = authorizationUrl({
          provider: rp.idp,
          clientId,
          redirectUri: `${rp.origin}/callback`,
          state,
          nonce,
          codeChallenge: pkce.challenge,
          prompt: url.searchParams.get('prompt') ?? undefined,
        });
        // state is bound to this browser by a short-lived cookie (as the gateway's pre-login cookie).
        res.writeHead(302, { location, 'set-cookie': `rp_state=${state}; Path=/callback; HttpOnly; SameSite=Lax; Max-Age=600` });
        return res.end();
      }
      if (url.pathname === '/callback') {
        const q = Object.fromEntries(url.searchParams);
        if (q.error) {
          rp.errors.push(q);
          return page(res, 403, 'Sign-in failed', `<h1 id="rp-error">${esc(q.error)}</h1><p>${esc(q.error_description)}</p>`);
        }
        const pending = rp.pending.get(q.state);
        if (!pending || cookies.rp_state !== q.state) throw new Error('state does not match the pre-login cookie');
        rp.pending.delete(q.state);
        if (q.iss !== rp.idp.issuer) throw new Error(`iss parameter ${q.iss} (RFC 9207)`);
        const tokens = await exchangeCode({
          provider: rp.idp, clientId: pending.clientId, code: q.code,
          redirectUri: `${rp.origin}/callback`, codeVerifier: pending.verifier,
        });
        if (tokens.status !== 200) throw new Error(`code exchange: ${tokens.status} ${JSON.stringify(tokens.body)}`);
        rp.jwks ??= await fetchJson(rp.idp.jwksUri);
        const { header, payload } = verifyIdToken(tokens.body.id_token, {
          jwks: rp.jwks, issuer: rp.idp.issuer, audience: pending.clientId, nonce: pending.nonce,
        });
        const sid = randomToken(16);
        rp.sessions.set(sid, { claims: payload, idToken: tokens.body.id_token, clientId: pending.clientId });
        rp.logins.push({ clientId: pending.clientId, header, claims: payload, tokens: tokens.body, query: q });
        res.writeHead(302, {
          location: '/',
          'set-cookie': [`rp_session=${sid}; Path=/; HttpOnly; SameSite=Lax`, 'rp_state=; Path=/callback; Max-Age=0'],
        });
        return res.end();
      }
      if (url.pathname === '/') {
        const s = rp.sessions.get(cookies.rp_session);
        if (!s) return page(res, 200, 'RP', '<h1 id="who">Not signed in</h1><a id="login" href="/login">Sign in</a>');
        return page(res, 200, 'RP', `<h1 id="who">Signed in as ${esc(s.claims.sub)}</h1>
          <p>email <span id="email">${esc(s.claims.email)}</span></p>
          <p>groups <span id="groups">${esc(s.claims.groups.join(','))}</span></p>
          <p>client <span id="client">${esc(s.clientId)}</span></p>`);
      }
      if (url.pathname === '/logout') {
        const s = rp.sessions.get(cookies.rp_session);
        rp.sessions.delete(cookies.rp_session);
        const state = randomToken(8);
        rp.pending.set(`logout:${state}`, {});
        const location = endSessionUrl({
          provider: rp.idp, idTokenHint: s?.idToken, postLogoutRedirectUri: `${rp.origin}/logged-out`, state,
          clientId: s ? undefined : 'portcullis-sso',
        });
        res.writeHead(302, { location, 'set-cookie': 'rp_session=; Path=/; Max-Age=0' });
        return res.end();
      }
      if (url.pathname === '/logged-out') {
        const state = url.searchParams.get('state');
        const known = rp.pending.delete(`logout:${state}`);
        rp.loggedOut.push({ state, known });
        return page(res, 200, 'RP', `<h1 id="logged-out">Signed out (${known ? 'state ok' : 'unknown state'})</h1>`);
      }
      if (url.pathname === '/backchannel' && req.method === 'POST') {
        const form = new URLSearchParams(await readBody(req));
        const token = form.get('logout_token');
        rp.jwks ??= await fetchJson(rp.idp.jwksUri);
        const entry = { token };
        try {
          entry.payload = verifyLogoutToken(token, { jwks: rp.jwks, issuer: rp.idp.issuer, audience: decodeJwt(token).payload.aud }).payload;
        } catch (e) {
          entry.error = e.message;
        }
        rp.backchannel.push(entry);
        res.writeHead(entry.error ? 400 : 200, { 'cache-control': 'no-store' });
        return res.end();
      }
      res.writeHead(404);
      return res.end();
    } catch (e) {
      rp.errors.push({ error: 'rp_exception', message: e.message });
      return page(res, 400, 'RP error', `<h1 id="rp-error">rp_exception</h1><pre>${esc(e.stack)}</pre>`);
    }
  });
  const port = await listen(server);
  rp.port = port;
  rp.origin = `http://127.0.0.1:${port}`;
  rp.close = () => closeServer(server);
  return rp;
}

describe('browser SSO fixture: Chromium + oidc-provider + a relying party (no gateway)', { timeout: 90_000 }, () => {
  let rp;
  let idp;
  let browser;
  let alice; // alice's page (own context), signed in by the first test

  before(async () => {
    rp = await startRp(); // first: its port goes into the provider's redirect URIs
    [idp, browser] = await Promise.all([
      startProvider({
        redirectUris: [`${rp.origin}/callback`],
        postLogoutRedirectUris: [`${rp.origin}/logged-out`],
        backchannelLogoutUri: `${rp.origin}/backchannel`,
      }),
      launchBrowser(),
    ]);
    rp.idp = idp;
  });

  after(async () => {
    await browser?.close();
    await idp?.stop();
    await rp?.close();
  });

  test('chromium and playwright-core versions; discovery advertises what the gateway needs', async (t) => {
    t.diagnostic(`chromium ${browser.version} (pid ${browser.pid}), artifacts in ${artifactDir()}`);
    assert.match(browser.version, /^\d+\./);
    const d = await idp.discovery();
    assert.equal(d.authorization_endpoint, idp.authorizationEndpoint);
    assert.equal(d.end_session_endpoint, idp.endSessionEndpoint);
    assert.equal(d.device_authorization_endpoint, idp.deviceAuthorizationEndpoint);
    assert.deepEqual(d.code_challenge_methods_supported, ['S256']);
    assert.equal(d.backchannel_logout_supported, true);
    assert.equal(d.authorization_response_iss_parameter_supported, true);
    for (const m of ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']) {
      assert.ok(d.token_endpoint_auth_methods_supported.includes(m), m);
    }
    for (const s of ['openid', 'email', 'profile', 'groups']) assert.ok(d.scopes_supported.includes(s), s);
    assert.ok(d.grant_types_supported.includes('urn:ietf:params:oauth:grant-type:device_code'));
    const clients = await idp.clients();
    assert.deepEqual(clients.find((c) => c.client_id === 'portcullis-sso').redirect_uris, [`${rp.origin}/callback`]);
  });

  test('alice signs in (code + PKCE, client_secret_basic): verified ID token, refresh, screenshot', async (t) => {
    alice = await browser.newPage();
    await alice.goto(`${rp.origin}/login`);
    assert.ok(alice.url().startsWith(`${idp.issuer}/interaction/`), alice.url());
    assert.equal(await alice.textContent('#client-id'), 'portcullis-sso');
    t.diagnostic(`login page: ${await screenshot(alice, 'browser-fixture-idp-login')}`);
    const { consentShown } = await signIn(alice, { username: 'alice' });
    assert.equal(consentShown, false, 'consent is automatic without prompt=consent');
    assert.equal(alice.url(), `${rp.origin}/`);
    assert.equal(await alice.textContent('#who'), 'Signed in as alice');
    assert.equal(await alice.textContent('#groups'), 'engineering');
    assert.equal(await alice.textContent('#email'), 'alice@example.test');
    const shot = await screenshot(alice, 'browser-fixture-signed-in');
    assert.ok(fs.statSync(shot).size > 1000, shot);
    t.diagnostic(`signed-in page: ${shot}`);

    assert.equal(rp.logins.length, 1);
    const { claims, header, tokens } = rp.logins[0];
    assert.equal(header.alg, 'RS256');
    assert.equal(claims.iss, idp.issuer);
    assert.equal(claims.aud, 'portcullis-sso');
    assert.deepEqual(claims.groups, ['engineering']);
    assert.equal(claims.email_verified, true);
    assert.equal(claims.preferred_username, 'alice');
    assert.equal(typeof claims.sid, 'string', 'sid (back-channel logout registered)');
    assert.equal(typeof claims.auth_time, 'number');
    // Access token: a JWT for the default audience, with the user's groups.
    const at = decodeJwt(tokens.access_token).payload;
    assert.equal(at.sub, 'alice');
    assert.equal(at.aud, 'api://mesh');
    assert.deepEqual(at.groups, ['engineering']);
    assert.equal(tokens.token_type, 'Bearer');
    // Refresh token renews the session silently (new ID token for the same sub).
    assert.ok(tokens.refresh_token, 'refresh token issued');
    const r = await refreshTokens({ provider: idp, clientId: 'portcullis-sso', refreshToken: tokens.refresh_token });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const again = verifyIdToken(r.body.id_token, { jwks: await idp.jwks(), issuer: idp.issuer, audience: 'portcullis-sso' });
    assert.equal(again.payload.sub, 'alice');
    assert.deepEqual(again.payload.groups, ['engineering']);
    // The code is single-use.
    const replay = await exchangeCode({
      provider: idp, clientId: 'portcullis-sso', code: rp.logins[0].query.code,
      redirectUri: `${rp.origin}/callback`, codeVerifier: 'x'.repeat(43),
    });
    assert.equal(replay.status, 400);
    assert.equal(replay.body.error, 'invalid_grant');
  });

  test('wrong password shows #error; mallory via client_secret_post and the consent page', async (t) => {
    const page = await browser.newPage();
    try {
      await page.goto(`${rp.origin}/login?client=portcullis-sso-post&prompt=consent`);
      await signIn(page, { username: 'mallory', password: 'not-her-password', expectError: true });
      assert.equal((await page.textContent(SELECTORS.error)).trim(), 'Invalid username or password.');
      assert.equal(await page.inputValue(SELECTORS.username), 'mallory');
      const { consentShown } = await signIn(page, { username: 'mallory' });
      assert.equal(consentShown, true);
      assert.equal(await page.textContent('#who'), 'Signed in as mallory');
      assert.equal(await page.textContent('#groups'), 'contractors');
      assert.equal(await page.textContent('#client'), 'portcullis-sso-post');
      t.diagnostic(`mallory: ${await screenshot(page, 'browser-fixture-mallory')}`);
      const login = rp.logins.at(-1);
      assert.equal(login.claims.aud, 'portcullis-sso-post');
      assert.equal(login.claims.sub, 'mallory');
      const { counters } = await idp.state();
      assert.ok(counters.login_failed >= 1 && counters.login_ok >= 2, JSON.stringify(counters));
    } finally {
      await page.context().close();
    }
  });

  test('cancel at the login page: access_denied back at the RP; deny at consent likewise', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${rp.origin}/login`);
      await page.waitForSelector(SELECTORS.loginPage);
      await Promise.all([page.waitForNavigation(), page.click(SELECTORS.cancel)]);
      assert.equal(await page.textContent('#rp-error'), 'access_denied');
      await page.goto(`${rp.origin}/login?prompt=consent`);
      await signIn(page, { username: 'alice', approve: false });
      await Promise.all([page.waitForNavigation(), page.click(SELECTORS.deny)]);
      assert.equal(await page.textContent('#rp-error'), 'access_denied');
      assert.deepEqual(rp.errors.filter((e) => e.error === 'access_denied').length, 2);
    } finally {
      await page.context().close();
    }
  });

  test('PKCE is required, plain refused; an unregistered redirect_uri is refused until POST /clients adds it', async () => {
    const base = {
      provider: idp, clientId: 'portcullis-sso', redirectUri: `${rp.origin}/callback`, state: 's', nonce: 'n',
    };
    const noPkce = await httpRequest(authorizationUrl(base));
    assert.equal(noPkce.status, 303);
    const loc = new URL(noPkce.headers.location);
    assert.equal(loc.origin + loc.pathname, `${rp.origin}/callback`);
    assert.equal(loc.searchParams.get('error'), 'invalid_request');
    assert.match(loc.searchParams.get('error_description'), /PKCE/);
    const plain = await httpRequest(authorizationUrl({ ...base, codeChallenge: 'a'.repeat(43), codeChallengeMethod: 'plain' }));
    assert.equal(new URL(plain.headers.location).searchParams.get('error'), 'invalid_request');

    const other = `${rp.origin}/other-callback`;
    const url = authorizationUrl({ ...base, redirectUri: other, codeChallenge: pkcePair().challenge });
    const refused = await httpRequest(url);
    assert.equal(refused.status, 400);
    assert.match(refused.text, /data-page="error"/);
    assert.match(refused.text, /invalid_redirect_uri/);
    const updated = await idp.updateClient({ client_id: 'portcullis-sso', redirect_uris: [`${rp.origin}/callback`, other] });
    assert.deepEqual(updated.redirect_uris, [`${rp.origin}/callback`, other]);
    const accepted = await httpRequest(url);
    assert.equal(accepted.status, 303);
    assert.match(accepted.headers.location, /^\/interaction\//);
    // Invalid metadata is refused and the running configuration kept.
    await assert.rejects(idp.updateClient({ client_id: 'portcullis-sso', redirect_uris: ['not a url'] }), /400/);
    assert.equal((await idp.clients()).find((c) => c.client_id === 'portcullis-sso').redirect_uris.length, 2);
  });

  test('RP-initiated logout round trip with back-channel logout; the IdP session is gone', async (t) => {
    assert.ok(alice, 'needs the signed-in page of the sign-in test');
    const sid = rp.logins[0].claims.sid;
    await alice.goto(`${rp.origin}/logout`);
    assert.ok(alice.url().startsWith(`${idp.issuer}/session/end`), alice.url());
    t.diagnostic(`logout page: ${await screenshot(alice, 'browser-fixture-idp-logout')}`);
    await confirmLogout(alice);
    assert.ok(alice.url().startsWith(`${rp.origin}/logged-out?state=`), alice.url());
    assert.equal(await alice.textContent('#logged-out'), 'Signed out (state ok)');
    // The provider POSTed a logout token to the RP's back-channel endpoint before redirecting.
    assert.equal(rp.backchannel.length, 1, JSON.stringify(rp.backchannel));
    const [bc] = rp.backchannel;
    assert.equal(bc.error, undefined);
    assert.equal(bc.payload.sub, 'alice');
    assert.equal(bc.payload.sid, sid);
    assert.equal(bc.payload.aud, 'portcullis-sso');
    assert.deepEqual(bc.payload.events, { 'http://schemas.openid.net/event/backchannel-logout': {} });
    const log = await idp.backchannelLogouts();
    assert.deepEqual(log.map((e) => [e.ok, e.client_id, e.sub, e.sid]), [[true, 'portcullis-sso', 'alice', sid]]);
    // The IdP session ended: a new login shows the login form again.
    await alice.goto(`${rp.origin}/login`);
    await alice.waitForSelector(SELECTORS.loginPage);

    // Control: a provider-signed logout token on demand, and delivered on demand.
    const { logout_token: minted } = await idp.mintLogoutToken({ client_id: 'portcullis-sso', sub: 'alice', sid: 'sid-1' });
    const m = verifyLogoutToken(minted, { jwks: await idp.jwks(), issuer: idp.issuer, audience: 'portcullis-sso' });
    assert.equal(m.payload.sid, 'sid-1');
    const delivered = await idp.mintLogoutToken({ client_id: 'portcullis-sso', sub: 'bob', deliver: true });
    assert.equal(delivered.delivered, true, JSON.stringify(delivered));
    assert.equal(rp.backchannel.at(-1).payload.sub, 'bob');
  });

  test('device authorization grant: HTTP start, browser approves the user code, the poll gets tokens', async (t) => {
    const start = await deviceAuthorization({ provider: idp });
    assert.equal(start.status, 200, JSON.stringify(start.body));
    const { device_code: deviceCode, user_code: userCode, verification_uri: verificationUri, interval } = start.body;
    assert.equal(verificationUri, idp.deviceVerificationUri);
    assert.match(userCode, /^[A-Z]{4}-[A-Z]{4}$/);
    const firstPoll = Date.now();
    const pending = await tokenEndpointRequest({
      grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: deviceCode,
    }, { provider: idp, clientId: 'portcullis-cli' });
    assert.equal(pending.body.error, 'authorization_pending');

    const page = await browser.newPage();
    try {
      await approveDevice(page, { verificationUri, userCode, username: 'alice' });
      t.diagnostic(`device page: ${await screenshot(page, 'browser-fixture-device-success')}`);
    } finally {
      await page.context().close();
    }
    // Respect the polling interval (oidc-provider answers slow_down to faster polls).
    const waitMs = (interval ?? 5) * 1000 - (Date.now() - firstPoll) + 250;
    if (waitMs > 0) await sleep(waitMs);
    const tokens = await pollDeviceToken({ provider: idp, deviceCode, intervalMs: (interval ?? 5) * 1000, timeoutMs: 20_000 });
    const { payload } = verifyIdToken(tokens.id_token, { jwks: await idp.jwks(), issuer: idp.issuer, audience: 'portcullis-cli' });
    assert.equal(payload.sub, 'alice');
    assert.deepEqual(payload.groups, ['engineering']);
    const at = decodeJwt(tokens.access_token).payload;
    assert.deepEqual([at.sub, at.aud, at.client_id], ['alice', 'api://mesh', 'portcullis-cli']);
    assert.deepEqual(at.groups, ['engineering']);
    assert.ok(tokens.refresh_token);
  });

  test('HTTPS on localhost with a test CA: a __Host- Secure cookie round-trips (ignoreHTTPSErrors)', async () => {
    const dir = tempDir('portcullis-browser-');
    const certs = await makeCerts(dir);
    const server = https.createServer({ cert: fs.readFileSync(certs.cert), key: fs.readFileSync(certs.key) }, (req, res) => {
      if (req.url === '/set') {
        res.writeHead(302, { location: '/check', 'set-cookie': '__Host-s=v1; Path=/; Secure; HttpOnly; SameSite=Lax' });
        return res.end();
      }
      res.writeHead(200, { 'content-type': 'text/html' });
      return res.end(`<p id="cookie">${esc(req.headers.cookie ?? '')}</p>`);
    });
    const page = await browser.newPage();
    try {
      const port = await listen(server);
      await page.goto(`https://localhost:${port}/set`);
      assert.equal(await page.textContent('#cookie'), '__Host-s=v1');
      const [c] = await page.context().cookies();
      assert.deepEqual([c.name, c.secure, c.httpOnly, c.sameSite], ['__Host-s', true, true, 'Lax']);
    } finally {
      await page.context().close();
      await closeServer(server);
      rmTemp(dir);
    }
  });
});

// Keep the relying party honest: the PKCE pair is what RFC 7636 appendix B says.
test('pkcePair follows RFC 7636 appendix B', () => {
  const { challenge, method } = pkcePair('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk');
  assert.equal(challenge, 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
  assert.equal(method, 'S256');
  assert.equal(crypto.createHash('sha256').update('x').digest('base64url').length, 43);
  assert.ok(SSO_CLIENTS['portcullis-sso'].secret);
});
