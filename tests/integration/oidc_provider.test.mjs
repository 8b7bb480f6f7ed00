// Self-test of the OpenID provider fixture (tests/support/oidc/), not of the gateway:
// discovery and JWKS, JWT access tokens by client_credentials (header, claims, signature
// checked with node:crypto against the JWKS), key rotation while it runs, opaque tokens and
// introspection, HTTPS mode, and that stop() really closes the ports.
// Needs `npm ci` in tests/ (oidc-provider).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import {
  startProvider, getToken, requestToken, introspect, revoke, decodeJwt, verifyJwt, fetchJson, httpRequest,
} from '../support/oidc/client.mjs';
import { makeCerts, tempDir, rmTemp } from '../support/harness.mjs';

/** Resolves true when 127.0.0.1:port refuses a connection, false when it accepts one. */
function portClosed(port, timeoutMs = 3000) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`connect to ${port} hung`)); }, timeoutMs);
    s.once('connect', () => { clearTimeout(timer); s.destroy(); resolve(false); });
    s.once('error', (e) => { clearTimeout(timer); resolve(e.code === 'ECONNREFUSED'); });
  });
}

function checkAccessToken(token, idp, { alg, clientId, scope, aud = 'api://mesh' }) {
  const { header, payload } = decodeJwt(token);
  assert.equal(header.alg, alg);
  assert.equal(header.typ, 'at+jwt');
  assert.equal(typeof header.kid, 'string');
  assert.equal(payload.iss, idp.issuer);
  assert.equal(payload.aud, aud);
  assert.equal(payload.client_id, clientId);
  assert.equal(payload.sub, clientId);
  assert.equal(payload.scope, scope);
  const now = Math.floor(Date.now() / 1000);
  assert.ok(Number.isInteger(payload.exp) && payload.exp > now && payload.exp <= now + 300 + 5, `exp ${payload.exp}`);
  assert.ok(Number.isInteger(payload.iat) && Math.abs(payload.iat - now) <= 5, `iat ${payload.iat}`);
  assert.equal(typeof payload.jti, 'string');
  return { header, payload };
}

describe('oidc provider fixture (HTTP)', { timeout: 60_000 }, () => {
  let idp;

  before(async () => {
    idp = await startProvider({ algs: ['RS256', 'ES256'] });
  });

  after(async () => {
    await idp?.stop();
  });

  test('ready line, discovery and JWKS', async () => {
    assert.match(idp.issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(idp.issuer, `http://127.0.0.1:${idp.port}`);
    assert.ok(idp.pid > 0);
    const d = await idp.discovery();
    assert.equal(d.issuer, idp.issuer);
    assert.equal(d.jwks_uri, idp.jwksUri);
    assert.equal(d.token_endpoint, idp.tokenEndpoint);
    assert.equal(d.introspection_endpoint, idp.introspectionEndpoint);
    assert.equal(d.revocation_endpoint, idp.revocationEndpoint);
    assert.ok(d.grant_types_supported.includes('client_credentials'));
    for (const s of ['orders:read', 'orders:write']) assert.ok(d.scopes_supported.includes(s), s);

    const jwks = await idp.jwks();
    assert.deepEqual(jwks.keys.map((k) => k.kid), idp.kids);
    assert.deepEqual(jwks.keys.map((k) => [k.kty, k.alg, k.use]), [['RSA', 'RS256', 'sig'], ['EC', 'ES256', 'sig']]);
    for (const k of jwks.keys) {
      for (const priv of ['d', 'p', 'q', 'dp', 'dq', 'qi']) assert.equal(k[priv], undefined, `${k.kid} leaks ${priv}`);
    }
  });

  test('JWT access token (RS256) for api://mesh: header, claims, signature', async () => {
    const token = await getToken({ scope: 'orders:read orders:write', resource: 'api://mesh' });
    const { header } = checkAccessToken(token, idp, { alg: 'RS256', clientId: 'gateway-tests', scope: 'orders:read orders:write' });
    assert.equal(header.kid, idp.signing.RS256);
    const { jwk } = verifyJwt(token, await idp.jwks());
    assert.equal(jwk.kid, header.kid);

    // A tampered payload fails the same verification.
    const [h, p, s] = token.split('.');
    const forged = Buffer.from(p, 'base64url').toString().replace('orders:read', 'orders:admn');
    assert.throws(() => verifyJwt(`${h}.${Buffer.from(forged).toString('base64url')}.${s}`, { keys: [jwk] }), /bad signature/);
  });

  test('ES256 client, other audience, default resource, scope subset, bad requests', async () => {
    const es = await getToken({ clientId: 'gateway-tests-es256', scope: 'orders:read' });
    const { header } = checkAccessToken(es, idp, { alg: 'ES256', clientId: 'gateway-tests-es256', scope: 'orders:read' });
    assert.equal(header.kid, idp.signing.ES256);
    verifyJwt(es, await idp.jwks());
    assert.equal(decodeJwt(es).signature.length, 64); // JOSE raw r||s

    const other = await getToken({ scope: 'payments:read', resource: 'api://other' });
    checkAccessToken(other, idp, { alg: 'RS256', clientId: 'gateway-tests', scope: 'payments:read', aud: 'api://other' });

    const r1 = await requestToken({ scope: 'orders:read', resource: 'api://unknown' });
    assert.equal(r1.status, 400);
    assert.equal(r1.body.error, 'invalid_target');
    const r2 = await requestToken({ scope: 'orders:read', secret: 'wrong' });
    assert.equal(r2.status, 401);
    assert.equal(r2.body.error, 'invalid_client');
    // oidc-provider drops scopes it does not know instead of refusing them.
    const r3 = await requestToken({ scope: 'orders:delete orders:read' });
    assert.equal(r3.status, 200);
    assert.equal(r3.body.scope, 'orders:read');
    assert.equal(decodeJwt(r3.body.access_token).payload.scope, 'orders:read');
    const noScope = await getToken({});
    assert.equal(decodeJwt(noScope).payload.scope, undefined);
    const r4 = await requestToken({ clientId: 'introspector', scope: 'orders:read' });
    assert.equal(r4.status, 400); // oidc-provider says invalid_request, not unauthorized_client
    assert.match(r4.body.error_description, /grant type is not allowed/);
  });

  test('key rotation: new kid in the new JWKS, old kept or dropped per keepOld', async () => {
    const before1 = await getToken({ scope: 'orders:read' });
    const kid0 = decodeJwt(before1).header.kid;
    const s0 = await idp.state();

    const s1 = await idp.rotateKey({ keepOld: true });
    assert.equal(s1.generation, s0.generation + 1);
    assert.notEqual(s1.signing.RS256, kid0);
    assert.equal(s1.previous.signing.RS256, kid0);
    const after1 = await getToken({ scope: 'orders:read' });
    const kid1 = decodeJwt(after1).header.kid;
    assert.equal(kid1, s1.signing.RS256);
    assert.notEqual(kid1, kid0);
    const jwks1 = await idp.jwks();
    const kids1 = jwks1.keys.map((k) => k.kid);
    assert.equal(kids1[0], kid1, 'the new key comes first');
    assert.ok(kids1.includes(kid0), 'keepOld: the old key is still published');
    verifyJwt(after1, jwks1);
    verifyJwt(before1, jwks1);
    assert.throws(() => verifyJwt(after1, { keys: s0.jwks.keys }), /not in the JWKS/);

    const s2 = await idp.rotateKey({ keepOld: false });
    const after2 = await getToken({ scope: 'orders:read' });
    const kid2 = decodeJwt(after2).header.kid;
    assert.equal(kid2, s2.signing.RS256);
    const jwks2 = await idp.jwks();
    assert.deepEqual(jwks2.keys.map((k) => k.kid).sort(), Object.values(s2.signing).sort());
    assert.ok(!jwks2.keys.some((k) => k.kid === kid0 || k.kid === kid1), 'keepOld false drops the old keys');
    verifyJwt(after2, jwks2);
    assert.throws(() => verifyJwt(before1, jwks2), /not in the JWKS/);
    // ES256 rotated too (one new key per alg).
    assert.notEqual(s2.signing.ES256, s1.signing.ES256);
    assert.ok(idp.events.some((e) => e.event === 'rotated' && e.generation === s2.generation));
  });

  test('opaque token: introspection, revocation, garbage', async () => {
    const opaque = await getToken({ clientId: 'opaque-client', scope: 'orders:read payments:read' });
    assert.equal(opaque.split('.').length, 1, 'not a JWT');
    const info = await introspect(opaque);
    assert.equal(info.active, true);
    assert.equal(info.scope, 'orders:read payments:read');
    assert.equal(info.client_id, 'opaque-client');
    assert.equal(info.aud, 'api://mesh');
    assert.equal(info.iss, idp.issuer);
    assert.equal(info.token_type, 'Bearer');
    assert.ok(info.exp > Date.now() / 1000);

    // Survives a key rotation (new Provider instance, same in-memory store).
    await idp.rotateKey({ keepOld: true });
    assert.equal((await introspect(opaque)).active, true);

    // Only the introspector gets answers.
    assert.deepEqual(await introspect(opaque, { clientId: 'gateway-tests' }), { active: false });
    assert.equal((await introspect(opaque, { secret: 'wrong' })).status, 401);

    assert.deepEqual(await introspect('garbage-token-value'), { active: false });

    // JWTs cannot be introspected by oidc-provider.
    const jwt = await getToken({ scope: 'orders:read' });
    const r = await introspect(jwt);
    assert.equal(r.status, 400);
    assert.equal(r.error, 'unsupported_token_type');

    assert.equal(await revoke(opaque), 200);
    assert.deepEqual(await introspect(opaque), { active: false });
  });

  test('control: counters and JWKS faults', async () => {
    const s0 = await idp.state();
    await idp.setJwksFault('status500');
    await assert.rejects(idp.jwks(), /500/);
    await idp.setJwksFault('garbage');
    await assert.rejects(idp.jwks(), SyntaxError);
    await idp.setJwksFault('none');
    await idp.jwks();
    const s1 = await idp.state();
    assert.equal(s1.counters.jwks, s0.counters.jwks + 3);
    assert.equal(s1.jwks_fault, 'none');
  });

  test('stop closes the provider and control ports', async () => {
    const { port, controlPort, pid } = idp;
    assert.equal(await portClosed(port), false);
    const exit = await idp.stop();
    assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}`);
    assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
    assert.equal(await portClosed(port), true);
    assert.equal(await portClosed(controlPort), true);
    await assert.rejects(getToken({ scope: 'orders:read' }), /no OIDC provider|ECONNREFUSED/);
  });
});

describe('oidc provider fixture (HTTPS)', { timeout: 90_000 }, () => {
  let idp;
  let dir;

  before(async () => {
    dir = tempDir('portcullis-oidc-');
    const certs = await makeCerts(dir);
    idp = await startProvider({ cert: certs.cert, key: certs.key, ca: fs.readFileSync(certs.ca), jwksMaxAge: 120 });
  });

  after(async () => {
    await idp?.stop();
    rmTemp(dir);
  });

  test('issuer https://localhost:PORT, TLS-verified discovery, tokens, JWKS max-age', async () => {
    assert.equal(idp.issuer, `https://localhost:${idp.port}`);
    const d = await fetchJson(idp.discoveryUrl, { ca: idp.ca });
    assert.equal(d.issuer, idp.issuer);
    assert.equal(d.jwks_uri, `${idp.issuer}/jwks`);
    await assert.rejects(fetchJson(idp.discoveryUrl), /self[- ]signed|unable to verify|certificate/i);
    const token = await idp.getToken({ scope: 'orders:read' });
    const { payload } = verifyJwt(token, await idp.jwks());
    assert.equal(payload.iss, idp.issuer);
    const r = await httpRequest(idp.jwksUri, { ca: idp.ca });
    assert.equal(r.headers['cache-control'], 'public, max-age=120');
    assert.equal((await idp.introspect(await idp.getToken({ clientId: 'opaque-client' }))).active, true);
  });
});
