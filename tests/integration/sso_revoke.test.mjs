// Browser sessions revoked everywhere through Redis (issue 8): every session cookie carries a
// random session id (shown by /.portcullis/userinfo); `portcullis revoke --session ID` (or
// --subject) denies it on every gateway sharing cache.redis, within a second. Two gateways
// share one Redis and one cookie key; alice signs in on one (headless Chromium, real IdP), her
// cookie works on both, then is refused on both after the revocation: an API call gets 401
// login_required and a navigation goes back to the IdP, while a fresh sign-in (a new session
// id) works again. Logout on one gateway revokes the session id too, so a copy of the cookie
// stops working on both.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  startGateway, startUpstream, freePorts, cleanupList, tempDir, rmTemp, runGateway, writeConfig,
  eventually,
} from '../support/harness.mjs';
import { startProvider } from '../support/oidc/client.mjs';
import { launchBrowser, signIn } from '../support/browser.mjs';
import { startRedis } from '../support/redis.mjs';
import {
  CALLBACK_PATH, USERINFO_PATH, LOGOUT_PATH, NAV_ACCEPT, JSON_ACCEPT, writeCookieKey, ssoSection,
  ssoGatewayConfig, gwRequest, assertLoginRequired,
} from '../support/sso.mjs';

describe('SSO sessions revoked through Redis', { timeout: 120_000 }, () => {
  const cleanup = cleanupList();
  after(() => cleanup.run());
  let dir;
  let idp;
  let browser;
  const gws = [];
  let configPath;

  before(async () => {
    dir = tempDir('portcullis-sso-revoke-');
    cleanup.add(() => rmTemp(dir));
    const [pA, pB, aA, aB] = await freePorts(4);
    idp = await startProvider({
      redirectUris: [pA, pB].map((p) => `http://localhost:${p}${CALLBACK_PATH}`),
    });
    cleanup.add(() => idp.stop());
    const redis = await startRedis();
    cleanup.add(() => redis.stop());
    const upstream = await startUpstream();
    cleanup.add(() => upstream.close());
    const secretFile = path.join(dir, 'client-secret');
    fs.writeFileSync(secretFile, 'portcullis-sso-secret\n');
    const key = writeCookieKey(dir, 'k1');
    const sso = ssoSection({ secretFile, keyFiles: [key], cookieSecure: false });
    const routes = [{ name: 'app', match: { path_prefix: '/' }, upstream: 'app', auth: 'sso',
      identity_headers: true, policy: { allow: { authenticated_user: true } } }];
    for (const [port, adminPort] of [[pA, aA], [pB, aB]]) {
      const config = {
        ...ssoGatewayConfig({ idp, upstream, port, adminPort, sso, routes }),
        cache: { redis: { address: `127.0.0.1:${redis.port}` } },
      };
      const file = writeConfig(config, { dir, name: `gw-${port}.yaml` });
      configPath ??= file;
      const gw = await startGateway({ configPath: file, adminAddress: `127.0.0.1:${adminPort}` });
      cleanup.add(() => gw.stop());
      gws.push({ gw, port });
    }
    browser = await launchBrowser();
    cleanup.add(() => browser.close());
  });

  /** alice signs in on gateway 0; returns her session cookie as a Cookie header and her userinfo. */
  async function signInAlice() {
    const page = await browser.newPage();
    await page.goto(`http://localhost:${gws[0].port}/app/page`);
    await signIn(page, { username: 'alice' });
    await page.waitForURL(`http://localhost:${gws[0].port}/app/page`);
    const cookies = await page.context().cookies(`http://localhost:${gws[0].port}`);
    const cookie = cookies.filter((c) => c.name.startsWith('portcullis')).map((c) => `${c.name}=${c.value}`).join('; ');
    assert.match(cookie, /^portcullis=/, 'the session cookie is set');
    const info = await gwRequest({ port: gws[0].port, path: USERINFO_PATH, accept: JSON_ACCEPT, cookie });
    assert.equal(info.status, 200, String(info.body));
    await page.close();
    return { cookie, info: JSON.parse(info.body) };
  }

  test('portcullis revoke --session denies that browser session on every gateway, a new sign-in works', async () => {
    const first = await signInAlice();
    assert.equal(first.info.subject, 'alice');
    assert.match(first.info.session_id, /^[A-Za-z0-9_-]{20,}$/, 'a random session id');
    // The same cookie opens on both gateways (one key, no server-side state).
    for (const { port } of gws) {
      const r = await gwRequest({ port, path: '/app/api', accept: JSON_ACCEPT, cookie: first.cookie });
      assert.equal(r.status, 200, `before revocation on ${port}: ${r.status} ${String(r.body).slice(0, 200)}`);
    }

    const cli = await runGateway(['revoke', '--config', configPath, '--session', first.info.session_id, '--ttl', '1h'], { timeoutMs: 15_000 });
    assert.equal(cli.code, 0, `revoke: ${cli.stderr}`);
    for (const { port } of gws) {
      await eventually(async () => {
        const r = await gwRequest({ port, path: '/app/api', accept: JSON_ACCEPT, cookie: first.cookie });
        return r.status === 401 ? r : null;
      }, { timeoutMs: 5000, message: `the revoked session is refused on ${port}` });
      const api = await gwRequest({ port, path: '/app/api', accept: JSON_ACCEPT, cookie: first.cookie });
      assertLoginRequired(assert, api, `revoked session, API call on ${port}`);
      const nav = await gwRequest({ port, path: '/app/page', accept: NAV_ACCEPT, cookie: first.cookie });
      assert.equal(nav.status, 302, `revoked session, navigation on ${port}`);
      assert.ok(nav.headers.location.startsWith(idp.issuer), `back to the IdP: ${nav.headers.location}`);
    }

    // A new sign-in is a new session id, not covered by the revocation.
    const second = await signInAlice();
    assert.notEqual(second.info.session_id, first.info.session_id);
    for (const { port } of gws) {
      const r = await gwRequest({ port, path: '/app/api', accept: JSON_ACCEPT, cookie: second.cookie });
      assert.equal(r.status, 200, `new session on ${port}: ${r.status}`);
    }
  });

  test('logout revokes the session id: a copy of the cookie stops working on every gateway', async () => {
    const s = await signInAlice();
    for (const { port } of gws) {
      const r = await gwRequest({ port, path: '/app/api', accept: JSON_ACCEPT, cookie: s.cookie });
      assert.equal(r.status, 200, `before logout on ${port}`);
    }
    // The browser logs out on gateway 1; an attacker kept a copy of the cookie.
    const out = await gwRequest({ port: gws[1].port, path: LOGOUT_PATH, accept: NAV_ACCEPT, cookie: s.cookie });
    assert.ok(out.status === 302 || out.status === 200, `logout: ${out.status}`);
    for (const { port } of gws) {
      await eventually(async () => {
        const r = await gwRequest({ port, path: '/app/api', accept: JSON_ACCEPT, cookie: s.cookie });
        return r.status === 401 ? r : null;
      }, { timeoutMs: 5000, message: `the logged-out session is refused on ${port}` });
    }
  });

  test('portcullis revoke --subject ends every session of that user', async () => {
    const s = await signInAlice();
    const cli = await runGateway(['revoke', '--config', configPath, '--subject', 'alice', '--ttl', '1h'], { timeoutMs: 15_000 });
    assert.equal(cli.code, 0, `revoke: ${cli.stderr}`);
    for (const { port } of gws) {
      await eventually(async () => {
        const r = await gwRequest({ port, path: '/app/api', accept: JSON_ACCEPT, cookie: s.cookie });
        return r.status === 401 ? r : null;
      }, { timeoutMs: 5000, message: `alice's session is refused on ${port}` });
    }
  });
});
