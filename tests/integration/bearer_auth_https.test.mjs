// Bearer-token authentication against an HTTPS issuer (https://localhost:PORT, a certificate
// from the dev CA made by certs/make-dev-certs.sh): keys by discovery over verified TLS with
// ca_file; without ca_file (system CA store) the keys are unavailable -> 503, never 200.
// Needs `npm ci` in tests/ (oidc-provider).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  startGateway, startUpstream, tempDir, rmTemp, makeCerts, checkGatewayError, sleep,
} from '../support/harness.mjs';
import { startProvider, decodeJwt } from '../support/oidc/client.mjs';
import { providerEntry, bearerConfig, call, waitForAccept, tamperSignature, parseChallenge } from '../support/bearer.mjs';

describe('bearer auth: HTTPS issuer', { timeout: 120_000 }, () => {
  let dir;
  let certs;
  let idp;
  let upstream;

  before(async () => {
    dir = tempDir('portcullis-bearer-https-');
    certs = await makeCerts(path.join(dir, 'certs'));
    idp = await startProvider({ algs: ['RS256'], cert: certs.cert, key: certs.key, ca: fs.readFileSync(certs.ca) });
    upstream = await startUpstream({ name: 'echo' });
  });

  after(async () => {
    await idp?.stop();
    await upstream?.close();
    rmTemp(dir);
  });

  test('the fixture really is an https://localhost issuer', () => {
    assert.match(idp.issuer, /^https:\/\/localhost:\d+$/);
    assert.match(idp.jwksUri, /^https:/);
  });

  test('with ca_file: keys by discovery over TLS, valid tokens pass, bad ones get 401', async () => {
    const { config, ports } = await bearerConfig({
      upstream,
      providers: [providerEntry(idp, { ca_file: certs.ca })],
    });
    const gw = await startGateway({ config });
    try {
      const token = await idp.getToken({ scope: 'orders:read' });
      assert.equal(decodeJwt(token).payload.iss, idp.issuer);
      const r = await waitForAccept(ports.plain, '/orders/tls', token);
      assert.equal(r.json().headers.authorization, `Bearer ${token}`);
      const counters = (await idp.state()).counters;
      assert.ok(counters.discovery >= 1 && counters.jwks >= 1, `no discovery/JWKS fetch over HTTPS: ${JSON.stringify(counters)}`);
      const bad = await call(ports.plain, '/orders/tls', tamperSignature(await idp.getToken({ scope: 'orders:read' })));
      checkGatewayError(assert, bad, 401, 'unauthenticated');
      assert.equal(parseChallenge(bad.headers['www-authenticate'])?.params.error, 'invalid_token');
    } finally {
      await gw.stop();
    }
  });

  test('without ca_file, the system store is used: trusted when it holds the CA (SSL_CERT_FILE)', async () => {
    const { config, ports } = await bearerConfig({ upstream, providers: [providerEntry(idp)] });
    // OpenSSL's default verify paths honour SSL_CERT_FILE: point the "system" store at the dev CA.
    const gw = await startGateway({ config, env: { SSL_CERT_FILE: certs.ca } });
    try {
      await waitForAccept(ports.plain, '/orders/sys', await idp.getToken({ scope: 'orders:read' }));
    } finally {
      await gw.stop();
    }
  });

  test('without ca_file (system store does not know the dev CA): 503, never 200, nothing forwarded', async () => {
    const { config, ports } = await bearerConfig({
      upstream,
      providers: [providerEntry(idp, { jwks_refresh: { unknown_kid_cooldown: '1s', timeout: '2s' } })],
    });
    const gw = await startGateway({ config });
    try {
      const before = upstream.requests.length;
      const token = await idp.getToken({ scope: 'orders:read' });
      const statuses = [];
      for (let i = 0; i < 4; i++) {
        const r = await call(ports.plain, '/orders/notls', token);
        statuses.push(r.status);
        assert.notEqual(r.status, 200, 'a token was accepted although the IdP certificate cannot be verified');
        checkGatewayError(assert, r, 503);
        assert.equal(r.headers['www-authenticate'], undefined, '503 is not a token problem: no challenge expected');
        if (i === 1) await sleep(1200); // past the unknown-kid cooldown: a refetch is tried (and fails) again
      }
      assert.deepEqual(statuses, [503, 503, 503, 503]);
      assert.equal(upstream.requests.length, before, 'forwarded without verified keys');
      // The failure is visible in the log (certificate verification), not silent.
      await gw.waitForLog(/certif|verify|tls|ssl/i, 5000);
    } finally {
      await gw.stop();
    }
  });
});
