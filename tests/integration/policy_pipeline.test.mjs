// The policy engine in the request pipeline, end to end through the real binary: decisions of
// inline, file and named (policy_dir) policies by group, email domain, scope, client id,
// subject, method, path and source address; the 403 body; identity headers and the signed
// X-Portcullis-Assertion (verified here with node:crypto against the gateway's JWKS); shadow
// policies; routes without a policy; hot reload of policy files under load (inotify and
// SIGHUP), refused reloads; `config check` diagnostics for policies.
//
// Tokens come from a key pair made in this file (provider with jwks_file, so the tests choose
// sub/email/groups/scope), plus real client-credentials tokens from the oidc-provider fixture
// (tests/support/oidc/; needs `npm ci` in tests/).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  startGateway, startUpstream, writeConfig, tempDir, rmTemp, freePorts, runGateway, toYaml,
  checkGatewayError, eventually, sleep, fetchMetrics, metricSum, httpRequest, rawRequest, parseResponse, cleanupList
} from '../support/harness.mjs';
import { startProvider } from '../support/oidc/client.mjs';
import {
  createTokenIssuer, decodeJws, fetchAssertionJwks, verifyEs256, replaceFile, startLoops,
  policyCounters, counterDelta, b64url, startRawUpstream,
} from '../support/policy.mjs';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'policy_pipeline');
const fixture = (name) => fs.readFileSync(path.join(FIXTURES, name), 'utf8');

// ---------------------------------------------------------------------------------------
// Shared helpers

/** GET (or `method`) through the gateway with `Authorization: Bearer TOKEN` (none for null). */
function call(port, pathname, token, { method = 'GET', headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  return httpRequest({ port, path: pathname, method, headers: h, timeoutMs: 10_000 });
}

/** A 403 made by the gateway (JSON, request id); returns the body. */
function assertForbidden(r, what) {
  assert.equal(r.status, 403, `${what}: expected 403, got ${r.status} ${String(r.body).slice(0, 300)}`);
  const body = checkGatewayError(assert, r, 403, 'forbidden');
  assert.equal(body.message, 'access denied', what);
  return body;
}

function assertAllowed(r, what) {
  assert.equal(r.status, 200, `${what}: expected 200, got ${r.status} ${String(r.body).slice(0, 300)}`);
  return r.json();
}

/** Requests the upstream saw whose URL contains `marker`. */
const upstreamHits = (upstream, marker) => upstream.requests.filter((q) => q.url.includes(marker)).length;

let markerSeq = 0;
const marker = (tag) => `m=${tag}-${process.pid}-${++markerSeq}`;

/** The x-portcullis-* request headers the upstream received (from the echo), lower-case names. */
const portcullisHeaders = (echo) => Object.fromEntries(Object.entries(echo.headers).filter(([k]) => k.startsWith('x-portcullis-')));

/** The access-log entry (gateway stdout) for a request id, once it is written. */
function accessEntry(gw, requestId) {
  return eventually(() => gw.accessLog().find((e) => e.request_id === requestId), {
    timeoutMs: 3000, message: `access log line for ${requestId}`,
  });
}

// The people of these tests (claims of the locally minted tokens).
const PEOPLE = {
  alice: { sub: 'alice', email: 'alice@example.com', groups: ['engineering', 'readers'], scope: 'reports:read' },
  bob: { sub: 'bob', email: 'bob@other.org', groups: ['sales'] },
  carol: { sub: 'carol', email: 'carol@contractors.example.com', groups: ['engineering'] },
  dave: { sub: 'dave', email: 'Dave@Example.COM', groups: ['writers'] },
  erin: { sub: 'erin', email: 'erin@example.com', groups: ['readers', 'suspended'] },
  svc: { sub: 'svc-reports', scope: 'metrics:read reports:read' }, // no email, no groups
  root: { sub: 'root', email: 'root@example.com', groups: ['admins'] },
};

const INLINE_POLICY = {
  allow: { or: [{ group: { has: 'engineering' } }, { scope: { has: 'reports:read' } }] },
  deny: { or: [{ email: { ends_with: '@contractors.example.com' } }] },
};

// ---------------------------------------------------------------------------------------

describe('policy decisions, 403 bodies, identity headers, assertion, shadow (one gateway)', { timeout: 60_000 }, () => {
  const cleanup = cleanupList();
  let dir;
  let issuer;
  let upstream;
  let raw; // records request lines verbatim
  let gw;
  let port;
  let configPath;
  const tokens = {};
  const tokenExp = {};

  before(async () => {
    dir = tempDir('portcullis-policy-');
    cleanup.add(() => rmTemp(dir));
    fs.mkdirSync(path.join(dir, 'policy-files'));
    fs.mkdirSync(path.join(dir, 'policies')); // the default policy_dir, next to the config
    fs.writeFileSync(path.join(dir, 'policy-files', 'domain.yaml'), fixture('domain.yaml'));
    fs.writeFileSync(path.join(dir, 'policy-files', 'shadow-admins.yaml'), fixture('shadow-admins.yaml'));
    fs.writeFileSync(path.join(dir, 'policies', 'methods.yaml'), fixture('methods.yaml'));
    issuer = createTokenIssuer({ alg: 'ES256' });
    const jwksPath = issuer.writeJwks(dir);
    for (const [name, claims] of Object.entries(PEOPLE)) {
      tokens[name] = issuer.mint(claims);
      tokenExp[name] = decodeJws(tokens[name]).payload.exp;
    }
    upstream = await startUpstream({ name: 'echo' });
    cleanup.add(() => upstream.close());
    raw = await startRawUpstream();
    cleanup.add(() => raw.close());

    const bearer = (name, prefix, extra) => ({ name, match: { path_prefix: prefix }, upstream: 'echo', auth: 'bearer', ...extra });
    const [plain, admin] = await freePorts(2);
    port = plain;
    const config = {
      server: { workers: 2, drain_timeout: '2s' },
      access_log: { path: 'stdout' },
      listeners: [{ name: 'plain', address: `127.0.0.1:${plain}` }],
      admin: { address: `127.0.0.1:${admin}` },
      assertion: { issuer: 'portcullis-test', ttl: '30s' },
      identity_providers: [issuer.provider(jwksPath)],
      upstreams: [{ name: 'echo', endpoints: [upstream.address] }, { name: 'raw', endpoints: [raw.address] }],
      routes: [
        bearer('inline', '/inline', { policy: INLINE_POLICY }),
        bearer('explain-inline', '/explain/inline', { policy: INLINE_POLICY, show_deny_reason: true }),
        bearer('file', '/file', { policy: 'policy-files/domain.yaml' }),
        bearer('explain-file', '/explain/file', { policy: 'policy-files/domain.yaml', show_deny_reason: true }),
        bearer('named', '/named', { policy: 'methods' }),
        bearer('ip-local', '/ip/local', { policy: { allow: { source_ip: { is: '127.0.0.1/32' } } }, show_deny_reason: true }),
        bearer('ip-ten', '/ip/ten', { policy: { allow: { source_ip: { in: ['10.0.0.0/8'] } } }, show_deny_reason: true }),
        bearer('no-policy', '/no-policy', { show_deny_reason: true }),
        bearer('no-policy-quiet', '/no-policy-quiet'),
        bearer('quiet', '/quiet', { policy: { allow: { authenticated_user: true } }, identity_headers: false }),
        bearer('no-delete', '/no-delete', { upstream: 'raw', show_deny_reason: true,
          policy: { allow: { authenticated_user: true }, deny: { http_method: { in: ['DELETE', 'PUT'] } } } }),
        bearer('shadow', '/shadow', { policy: { allow: { authenticated_user: true } }, shadow_policy: 'policy-files/shadow-admins.yaml' }),
        { name: 'public-ro', match: { path_prefix: '/public-ro' }, upstream: 'echo', auth: 'public', show_deny_reason: true,
          policy: { allow: { and: [{ http_method: { is: 'GET' } }, { authenticated_user: false }] } } },
        { name: 'open', match: { path_prefix: '/open' }, upstream: 'echo', auth: 'public' },
      ],
    };
    configPath = writeConfig(config, { dir });
    gw = await startGateway({ configPath });
    cleanup.add(() => gw.stop());
  });

  after(() => cleanup.run());

  test('inline policy: group or scope allows, email deny overrides allow, no match is 403; denied requests never reach the upstream', async () => {
    const allowed = [['alice', 'group engineering'], ['svc', 'scope reports:read (space-separated scope claim)']];
    for (const [who, why] of allowed) {
      const m = marker(who);
      const echo = assertAllowed(await call(port, `/inline/doc?${m}`, tokens[who]), `${who} (${why})`);
      assert.equal(echo.url, `/inline/doc?${m}`);
      assert.equal(upstreamHits(upstream, m), 1, `${who}: the upstream got the allowed request once`);
    }
    for (const [who, why] of [['carol', 'engineering but contractor email: deny overrides allow'], ['bob', 'no rule matches: default deny']]) {
      const m = marker(who);
      const before = upstream.requests.length;
      assertForbidden(await call(port, `/inline/doc?${m}`, tokens[who]), `${who} (${why})`);
      assert.equal(upstreamHits(upstream, m), 0, `${who}: a denied request reached the upstream`);
      assert.equal(upstream.requests.length, before, `${who}: the upstream saw a request`);
    }
  });

  test('file policy: email domain (case-insensitive, exact domain), deny by group overrides allow', async () => {
    const cases = [
      ['alice', 200, 'alice@example.com'],
      ['dave', 200, 'Dave@Example.COM: domain matching ignores case'],
      ['erin', 403, 'example.com but group suspended: deny overrides allow'],
      ['carol', 403, 'contractors.example.com is not the domain example.com'],
      ['bob', 403, 'other.org'],
    ];
    for (const [who, status, why] of cases) {
      const m = marker(who);
      const r = await call(port, `/file/x?${m}`, tokens[who]);
      if (status === 200) assertAllowed(r, `${who} (${why})`);
      else assertForbidden(r, `${who} (${why})`);
      assert.equal(upstreamHits(upstream, m), status === 200 ? 1 : 0, `${who}: upstream hits`);
    }
  });

  test('named policy from policy_dir: http_method and http_path (after path normalisation), deny overrides allow', async () => {
    const cases = [
      ['alice', 'GET', '/named/report', 200, 'readers may GET'],
      ['alice', 'HEAD', '/named/report', 200, 'readers may HEAD'],
      ['alice', 'POST', '/named/report', 403, 'readers may not POST'],
      ['alice', 'DELETE', '/named/report', 403, 'readers may not DELETE'],
      ['dave', 'POST', '/named/report', 200, 'writers may POST (policy lists methods in lower case)'],
      ['dave', 'PUT', '/named/report', 200, 'writers may PUT'],
      ['dave', 'DELETE', '/named/report', 403, 'DELETE is in no allow rule'],
      ['bob', 'GET', '/named/report', 403, 'neither reader nor writer'],
      ['alice', 'GET', '/named/admin/panel', 403, 'http_path deny'],
      ['dave', 'POST', '/named/admin', 403, 'http_path deny'],
      ['alice', 'GET', '/named/x/../admin/panel', 403, 'dot segments resolved before the policy'],
      ['alice', 'GET', '/named/%61dmin/panel', 403, '%61 decoded before the policy'],
      ['alice', 'GET', '/named/./admin/panel', 403, 'dot segment removed before the policy'],
      ['alice', 'GET', '/named//admin/panel', 403, 'empty segment merged before the policy'],
      ['alice', 'GET', '/named/admin;x=1/panel', 403, 'path parameters stripped before the policy'],
    ];
    for (const [who, method, pathname, status, why] of cases) {
      const m = marker(who);
      const r = await call(port, `${pathname}?${m}`, tokens[who], { method });
      const what = `${who} ${method} ${pathname} (${why})`;
      if (status === 200) {
        assert.equal(r.status, 200, `${what}: ${r.status} ${r.body.slice(0, 200)}`);
      } else {
        assertForbidden(r, what);
      }
      assert.equal(upstreamHits(upstream, m), status === 200 ? 1 : 0, `${what}: upstream hits`);
    }
  });

  test('source_ip: 127.0.0.1/32 allows the loopback client, 10.0.0.0/8 does not (X-Forwarded-For from an untrusted peer changes nothing)', async () => {
    assertAllowed(await call(port, '/ip/local/a', tokens.bob), 'bob from 127.0.0.1 on 127.0.0.1/32');
    const m = marker('ip');
    const body = assertForbidden(await call(port, `/ip/ten/a?${m}`, tokens.alice), 'alice from 127.0.0.1 on 10.0.0.0/8');
    assert.equal(body.reason, 'no rule matched');
    assert.match(body.rule, /route ip-ten#default$/);
    const spoofed = await call(port, `/ip/ten/b?${m}`, tokens.alice, { headers: { 'x-forwarded-for': '10.1.2.3', 'x-real-ip': '10.1.2.3' } });
    assertForbidden(spoofed, 'X-Forwarded-For: 10.1.2.3 from an untrusted peer');
    assert.equal(upstreamHits(upstream, m), 0);
  });

  test('403 body: JSON with request_id = X-Request-Id; reason and rule only with show_deny_reason', async () => {
    // Without show_deny_reason: nothing about the rule.
    const quiet = await call(port, '/inline/secret', tokens.carol);
    const quietBody = assertForbidden(quiet, 'carol on inline');
    assert.match(quiet.headers['content-type'], /^application\/json/);
    assert.deepEqual(Object.keys(quietBody).sort(), ['error', 'message', 'request_id', 'status'], `unexpected fields: ${quiet.body}`);
    const fileQuiet = assertForbidden(await call(port, '/file/secret', tokens.erin), 'erin on file');
    assert.deepEqual(Object.keys(fileQuiet).sort(), ['error', 'message', 'request_id', 'status']);

    // With show_deny_reason: the reason and the rule (source#section[index]).
    const cases = [
      ['/explain/inline/s', 'carol', 'matched deny rule', /route explain-inline#deny\[0\]$/],
      ['/explain/inline/s', 'bob', 'no rule matched', /route explain-inline#default$/],
      ['/explain/file/s', 'erin', 'matched deny rule', /policy-files\/domain\.yaml#deny\[0\]$/],
      ['/explain/file/s', 'bob', 'no rule matched', /policy-files\/domain\.yaml#default$/],
    ];
    const ids = new Set([quietBody.request_id, fileQuiet.request_id]);
    for (const [pathname, who, reason, rule] of cases) {
      const r = await call(port, pathname, tokens[who]);
      const body = assertForbidden(r, `${who} on ${pathname}`);
      assert.equal(body.request_id, r.headers['x-request-id']);
      assert.equal(body.reason, reason, `${who} on ${pathname}: ${r.body}`);
      assert.match(body.rule, rule, `${who} on ${pathname}: ${r.body}`);
      ids.add(body.request_id);
    }
    assert.equal(ids.size, 6, 'every 403 has its own request id');
    // The same routes allow the allowed (the explain routes share the policies).
    assertAllowed(await call(port, '/explain/inline/ok', tokens.alice), 'alice on explain-inline');
    assertAllowed(await call(port, '/explain/file/ok', tokens.dave), 'dave on explain-file');
  });

  test('no policy: a public route allows (decision allow counted), a bearer route denies "route has no policy"', async () => {
    const before = policyCounters(await fetchMetrics(gw), 'open');
    const open = await call(port, '/open/hello', null);
    assertAllowed(open, 'public route without policy, no token');
    const openLog = await accessEntry(gw, open.headers['x-request-id']);
    assert.equal(openLog.decision, 'allow');
    assert.equal(openLog.reason, 'public route');

    const m = marker('nopolicy');
    const r = await call(port, `/no-policy/x?${m}`, tokens.alice);
    const body = assertForbidden(r, 'bearer route without policy');
    assert.equal(body.reason, 'route has no policy');
    assert.equal(body.rule, undefined, `no rule names this decision: ${r.body}`);
    const quiet = assertForbidden(await call(port, `/no-policy-quiet/x?${m}`, tokens.root), 'bearer route without policy, no show_deny_reason');
    assert.equal(quiet.reason, undefined);
    assert.equal(upstreamHits(upstream, m), 0, 'a route without policy forwarded a request');
    const denyLog = await accessEntry(gw, r.headers['x-request-id']);
    assert.equal(denyLog.decision, 'deny');
    assert.equal(denyLog.reason, 'route has no policy');
    assert.equal(denyLog.status, 403);

    const text = await fetchMetrics(gw);
    const delta = counterDelta(before, policyCounters(text, 'open'));
    assert.equal(delta.enforcedAllow, 1, `open: ${JSON.stringify(delta)}`);
    assert.equal(delta.enforcedDeny, 0);
    assert.ok(metricSum(text, 'portcullis_policy_decisions_total', { route: 'no-policy', mode: 'enforced', decision: 'deny' }) >= 1);
  });

  test('public route with a policy: evaluated without an identity (a token changes nothing), denied method is 403', async () => {
    const get = assertAllowed(await call(port, '/public-ro/a', null), 'GET, no token');
    assert.deepEqual(portcullisHeaders(get), {});
    const withToken = assertAllowed(await call(port, '/public-ro/b', tokens.alice), 'GET with a token (public: no identity, authenticated_user false holds)');
    assert.deepEqual(portcullisHeaders(withToken), {}, 'a public route sends no identity headers');
    const m = marker('public-ro');
    const post = await call(port, `/public-ro/c?${m}`, null, { method: 'POST' });
    const body = assertForbidden(post, 'POST on a GET-only public route');
    assert.equal(body.reason, 'no rule matched');
    assert.match(body.rule, /route public-ro#default$/);
    assert.equal(upstreamHits(upstream, m), 0);
  });

  test('identity headers reach the upstream on allow; client-sent X-Portcullis-* never do', async () => {
    const spoof = {
      'X-Portcullis-User': 'root',
      'x-PORTCULLIS-email': 'root@example.com',
      'X-Portcullis-Groups': 'admins',
      'X-Portcullis-Assertion': 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJyb290In0.',
      'X-Portcullis-Whatever': 'x',
      X_Portcullis_Email: 'root@example.com', // CGI/WSGI upstreams read '_' as '-'
      'x_portcullis-groups': 'admins',
    };
    const r = await call(port, '/inline/me', tokens.alice, { headers: spoof });
    const echo = assertAllowed(r, 'alice with spoofed headers');
    const h = portcullisHeaders(echo);
    assert.deepEqual(Object.keys(h).sort(), ['x-portcullis-assertion', 'x-portcullis-email', 'x-portcullis-groups', 'x-portcullis-user'], JSON.stringify(h));
    assert.equal(h['x-portcullis-user'], 'alice');
    assert.equal(h['x-portcullis-email'], 'alice@example.com');
    assert.equal(h['x-portcullis-groups'], 'engineering,readers');
    assert.notEqual(h['x-portcullis-assertion'], spoof['X-Portcullis-Assertion']);
    assert.equal(decodeJws(h['x-portcullis-assertion']).payload.sub, 'alice');
    // One value each: the client's copy was removed, not merged.
    const rawNames = echo.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    for (const name of Object.keys(h)) assert.equal(rawNames.filter((n) => n === name).length, 1, `${name} sent more than once`);
    const underscored = rawNames.filter((n) => n.replaceAll('_', '-').startsWith('x-portcullis-') && n.includes('_'));
    assert.deepEqual(underscored, [], 'X_Portcullis_* spellings reached the upstream');

    // An identity without email and groups: the spoofed ones do not fill the gap.
    const svc = assertAllowed(await call(port, '/inline/me', tokens.svc, { headers: spoof }), 'svc with spoofed headers');
    const hs = portcullisHeaders(svc);
    assert.equal(hs['x-portcullis-user'], 'svc-reports');
    assert.equal(hs['x-portcullis-email'], undefined, `spoofed email forwarded: ${hs['x-portcullis-email']}`);
    assert.equal(hs['x-portcullis-groups'], undefined, `spoofed groups forwarded: ${hs['x-portcullis-groups']}`);
    const svcSpoofed = Object.keys(svc.headers).filter((n) => n.includes('_') && n.replaceAll('_', '-').startsWith('x-portcullis-'));
    assert.deepEqual(svcSpoofed, [], 'X_Portcullis_Email / x_portcullis-groups reached the upstream');
    assert.equal(decodeJws(hs['x-portcullis-assertion']).payload.sub, 'svc-reports');

    // A ',' or '%' inside a group name is percent-encoded, so the list splits unambiguously.
    const odd = issuer.mint({ sub: 'odd', groups: ['engineering', 'r&d, west', '100%'] });
    const oddEcho = assertAllowed(await call(port, '/inline/odd', odd), 'groups with , and %');
    assert.equal(oddEcho.headers['x-portcullis-groups'], 'engineering,r&d%2C west,100%25');

    // identity_headers: false: none at all (and the client's are still removed).
    const quiet = assertAllowed(await call(port, '/quiet/me', tokens.alice, { headers: spoof }), 'identity_headers: false');
    assert.deepEqual(portcullisHeaders(quiet), {}, 'identity_headers: false still sent X-Portcullis-*');
    assert.equal(quiet.headers.authorization, `Bearer ${tokens.alice}`, 'the token itself is forwarded (forward_token default)');

    // A public route: no identity, no identity headers, even with a valid token.
    const open = assertAllowed(await call(port, '/open/me', tokens.alice, { headers: spoof }), 'public route with a token and spoofed headers');
    assert.deepEqual(portcullisHeaders(open), {}, 'a public route forwarded X-Portcullis-*');
  });

  test('X-Portcullis-Assertion: ES256 JWT verified with the gateway JWKS; claims match the token; tampering breaks it', async () => {
    const { jwks, response } = await fetchAssertionJwks(port);
    assert.match(response.headers['content-type'], /^application\/json/);
    assert.equal(response.headers['cache-control'], 'public, max-age=300');
    assert.equal(jwks.keys.length, 1, JSON.stringify(jwks));
    const [jwk] = jwks.keys;
    assert.equal(jwk.kty, 'EC');
    assert.equal(jwk.crv, 'P-256');
    assert.equal(jwk.alg, 'ES256');
    assert.equal(jwk.d, undefined, 'the JWKS exposes the private key');
    assert.equal(typeof jwk.kid, 'string');
    const post = await httpRequest({ port, path: '/.well-known/portcullis/jwks.json', method: 'POST', body: '' });
    assert.equal(post.status, 405, 'the JWKS is read-only');

    for (const [who, route, prefix] of [['alice', 'inline', '/inline'], ['alice', 'file', '/file'], ['dave', 'named', '/named']]) {
      const before = Math.floor(Date.now() / 1000);
      const echo = assertAllowed(await call(port, `${prefix}/assert`, tokens[who]), `${who} on ${route}`);
      const assertion = echo.headers['x-portcullis-assertion'];
      assert.ok(assertion, `${who} on ${route}: no assertion`);
      const v = verifyEs256(assertion, jwks);
      assert.equal(v.valid, true, `${who} on ${route}: ${v.reason}`);
      assert.equal(v.header.alg, 'ES256');
      assert.equal(v.header.typ, 'JWT');
      assert.equal(v.header.kid, jwk.kid);
      const p = v.payload;
      assert.equal(p.iss, 'portcullis-test', 'assertion.issuer');
      assert.equal(p.aud, route, 'aud is the route name');
      assert.equal(p.sub, PEOPLE[who].sub);
      assert.equal(p.email, PEOPLE[who].email);
      assert.deepEqual(p.groups, PEOPLE[who].groups);
      assert.equal(p.idp, issuer.issuer, 'idp is the token issuer');
      assert.equal(typeof p.jti, 'string');
      assert.ok(p.jti.length >= 16);
      assert.ok(Number.isInteger(p.iat) && Number.isInteger(p.exp));
      assert.ok(p.iat >= before - 31 && p.iat <= Math.floor(Date.now() / 1000) + 1, `iat ${p.iat} vs now ${before}`);
      assert.ok(p.exp > p.iat, `exp ${p.exp} <= iat ${p.iat}`);
      assert.ok(p.exp - p.iat <= 30, `exp - iat = ${p.exp - p.iat} > ttl 30s`);
      assert.ok(p.exp <= tokenExp[who], `assertion exp ${p.exp} after the token's exp ${tokenExp[who]}`);
    }

    // A token that expires before the configured ttl: the assertion must not outlive it.
    const shortToken = issuer.mint({ ...PEOPLE.alice, sub: 'alice-short' }, { ttl: 8 });
    const shortExp = decodeJws(shortToken).payload.exp;
    const short = assertAllowed(await call(port, '/inline/short', shortToken), 'short-lived token');
    const sp = verifyEs256(short.headers['x-portcullis-assertion'], jwks);
    assert.equal(sp.valid, true, sp.reason);
    assert.equal(sp.payload.sub, 'alice-short');
    assert.ok(sp.payload.exp <= shortExp, `assertion exp ${sp.payload.exp} outlives the token (exp ${shortExp})`);
    assert.ok(sp.payload.exp - sp.payload.iat <= 8, `assertion lifetime ${sp.payload.exp - sp.payload.iat}s > the token's remaining 8s`);

    // Sanity of the verifier: any change breaks the signature.
    const genuine = assertAllowed(await call(port, '/inline/t', tokens.alice), 'alice').headers['x-portcullis-assertion'];
    const [h, pl, s] = genuine.split('.');
    const payload = JSON.parse(Buffer.from(pl, 'base64url').toString());
    const forgedPayload = `${h}.${b64url({ ...payload, sub: 'root', groups: ['admins'] })}.${s}`;
    assert.equal(verifyEs256(forgedPayload, jwks).valid, false, 'a changed payload verified');
    const sig = Buffer.from(s, 'base64url');
    sig[10] ^= 0x01;
    assert.equal(verifyEs256(`${h}.${pl}.${sig.toString('base64url')}`, jwks).valid, false, 'a changed signature verified');
    assert.equal(verifyEs256(genuine, jwks).valid, true);
  });

  test('http_method: DELETE denied and never forwarded; lower-case `get` / `delete` refused with 400 before any policy (no case-folding upstream can see them)', async () => {
    const send = (method, pathname) => rawRequest(port, `${method} ${pathname} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${tokens.alice}\r\nContent-Length: 0\r\n\r\n`);
    const before = raw.lines.length;
    const denied = parseResponse(await send('DELETE', '/no-delete/item'));
    assert.equal(denied?.status, 403, 'DELETE is denied');
    assert.match(JSON.parse(denied.body).rule, /route no-delete#deny\[0\]$/);
    assert.equal(parseResponse(await send('GET', '/no-delete/item')).status, 200, 'GET is allowed');
    assert.deepEqual(raw.lines.slice(before), ['GET /no-delete/item HTTP/1.1'], 'only the GET reached the upstream');
    // Another spelling of a method could mean the upper-case one to a case-folding upstream
    // (a deny of DELETE bypassed with `delete`): such requests are refused outright.
    for (const method of ['get', 'delete', 'Delete']) {
      const m = marker(`lower-${method}`);
      const lower = parseResponse(await send(method, `/no-delete/item?${m}`));
      assert.equal(lower?.status, 400, `${method}: ${lower?.status}`);
      assert.equal(JSON.parse(lower.body).error, 'bad_method');
      assert.equal(upstreamHits(upstream, m), 0);
    }
    assert.deepEqual(raw.lines.slice(before), ['GET /no-delete/item HTTP/1.1'], 'nothing else reached the upstream');
  });

  test('a token still accepted within clock_skew after its exp is not answered 500 (assertion cut to the token life)', async () => {
    // The gateway accepts tokens up to clock_skew (default 60s) past exp. Such a token is
    // either refused as expired (401) or forwarded; a 500 for a token the gateway itself
    // accepted is a server error for a client-side condition (and a client that refreshes its
    // token on 401 keeps failing for up to clock_skew).
    const now = Math.floor(Date.now() / 1000);
    for (const [label, exp] of [['exp 5s ago', now - 5], ['exp now', now]]) {
      const token = issuer.mint({ ...PEOPLE.alice, sub: `alice-late-${exp - now}` }, { iat: now - 100, ttl: exp - (now - 100) });
      const quiet = await call(port, '/quiet/late', token);
      assert.equal(quiet.status, 200, `${label}: sanity: the token is accepted (within clock_skew) on a route without identity headers: ${quiet.body}`);
      const r = await call(port, '/inline/late', token);
      assert.ok(r.status === 200 || r.status === 401, `${label}: the same token on a route with identity headers: ${r.status} ${r.body.slice(0, 200)}`);
      if (r.status === 401) {
        assert.match(String(r.headers['www-authenticate']), /invalid_token/);
      } else {
        const { jwks } = await fetchAssertionJwks(port);
        assert.equal(verifyEs256(r.json().headers['x-portcullis-assertion'] ?? '', jwks).valid, true, `${label}: forwarded without a valid assertion`);
      }
    }
  });

  test('shadow policy: enforced allows, shadow would deny; metrics and access log say so', async () => {
    const before = policyCounters(await fetchMetrics(gw), 'shadow');
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const r = await call(port, `/shadow/r${i}`, tokens.alice);
      assertAllowed(r, `alice on shadow #${i}`);
      ids.push(r.headers['x-request-id']);
    }
    const rootRes = await call(port, '/shadow/root', tokens.root);
    assertAllowed(rootRes, 'root (admins) on shadow');
    const after = policyCounters(await fetchMetrics(gw), 'shadow');
    const delta = counterDelta(before, after);
    assert.deepEqual(delta, { enforcedAllow: 4, enforcedDeny: 0, shadowAllow: 1, shadowDeny: 3, mismatch: 3 }, JSON.stringify({ before, after }));

    const line = await accessEntry(gw, ids[0]);
    assert.equal(line.route, 'shadow');
    assert.equal(line.decision, 'allow');
    assert.match(line.rule, /route shadow#allow\[0\]$/);
    assert.equal(line.shadow_decision, 'would deny', JSON.stringify(line));
    assert.match(line.shadow_rule, /policy-files\/shadow-admins\.yaml#default$/);
    assert.equal(line.status, 200);
    const rootLine = await accessEntry(gw, rootRes.headers['x-request-id']);
    assert.equal(rootLine.shadow_decision, 'would allow');
    assert.match(rootLine.shadow_rule, /shadow-admins\.yaml#allow\[0\]$/);

    // Routes without a shadow policy log no shadow fields.
    const plainRes = await call(port, '/inline/noshadow', tokens.alice);
    const plainLine = await accessEntry(gw, plainRes.headers['x-request-id']);
    assert.equal(plainLine.decision, 'allow');
    assert.equal(plainLine.shadow_decision, undefined);
    assert.equal(plainLine.shadow_rule, undefined);
  });
});

// ---------------------------------------------------------------------------------------

describe('policies with real IdP tokens (oidc-provider client credentials)', { timeout: 60_000 }, () => {
  const cleanup = cleanupList();
  let idp;
  let upstream;
  let gw;
  let port;

  before(async () => {
    idp = await startProvider({ algs: ['RS256', 'ES256'] });
    cleanup.add(() => idp.stop());
    upstream = await startUpstream({ name: 'echo' });
    cleanup.add(() => upstream.close());
    const [plain, admin] = await freePorts(2);
    port = plain;
    const route = (name, prefix, policy) => ({ name, match: { path_prefix: prefix }, upstream: 'echo', auth: 'bearer', show_deny_reason: true, policy });
    gw = await startGateway({
      config: {
        server: { workers: 2, drain_timeout: '2s' },
        access_log: { path: 'stdout' },
        listeners: [{ name: 'plain', address: `127.0.0.1:${plain}` }],
        admin: { address: `127.0.0.1:${admin}` },
        identity_providers: [{ name: 'idp', issuer: idp.issuer, audiences: ['api://mesh'], algorithms: ['RS256', 'ES256'] }],
        upstreams: [{ name: 'echo', endpoints: [upstream.address] }],
        routes: [
          route('by-client', '/by-client', { allow: { client_id: { is: 'gateway-tests' } } }),
          route('by-subject', '/by-subject', { allow: { subject: { is: 'gateway-tests-es256' } }, deny: { scope: { has: 'admin' } } }),
        ],
      },
    });
    cleanup.add(() => gw.stop());
  });

  after(() => cleanup.run());

  test('client_id and subject criteria decide on real tokens; the upstream sees the client as the user', async () => {
    const rsToken = await idp.getToken({ scope: 'orders:read', resource: 'api://mesh' });
    const esToken = await idp.getToken({ clientId: 'gateway-tests-es256', scope: 'orders:read', resource: 'api://mesh' });
    const esAdmin = await idp.getToken({ clientId: 'gateway-tests-es256', scope: 'orders:read admin', resource: 'api://mesh' });
    // Discovery and the JWKS fetch happen after start: wait until the first token passes.
    let last;
    await eventually(async () => { last = await call(port, '/by-client/warmup', rsToken); return last.status === 200; },
      { timeoutMs: 10_000, intervalMs: 200, message: `a real token to pass (last ${last?.status} ${last?.body})` });

    const echo = assertAllowed(await call(port, '/by-client/a', rsToken), 'gateway-tests on by-client');
    assert.equal(echo.headers['x-portcullis-user'], 'gateway-tests');
    const { jwks } = await fetchAssertionJwks(port);
    const v = verifyEs256(echo.headers['x-portcullis-assertion'], jwks);
    assert.equal(v.valid, true, v.reason);
    assert.equal(v.payload.sub, 'gateway-tests');
    assert.equal(v.payload.aud, 'by-client');
    assert.equal(v.payload.idp, idp.issuer);
    assert.equal(v.payload.client_id, 'gateway-tests');
    assert.ok(v.payload.exp <= decodeJws(rsToken).payload.exp);

    const m = marker('idp');
    const denied = assertForbidden(await call(port, `/by-client/a?${m}`, esToken), 'gateway-tests-es256 on by-client');
    assert.equal(denied.reason, 'no rule matched');
    assertAllowed(await call(port, '/by-subject/a', esToken), 'gateway-tests-es256 on by-subject');
    assertForbidden(await call(port, `/by-subject/a?${m}`, rsToken), 'gateway-tests on by-subject');
    const adminDenied = assertForbidden(await call(port, `/by-subject/a?${m}`, esAdmin), 'gateway-tests-es256 with scope admin: deny overrides allow');
    assert.equal(adminDenied.reason, 'matched deny rule');
    assert.match(adminDenied.rule, /route by-subject#deny\[0\]$/);
    assert.equal(upstreamHits(upstream, m), 0);
  });
});

// ---------------------------------------------------------------------------------------

describe('assertion.key_file: created 0600, same kid across a restart', { timeout: 30_000 }, () => {
  const cleanup = cleanupList();
  after(() => cleanup.run());

  test('the key file is created with mode 0600 and keeps the kid (and verifies old assertions) after a restart', async () => {
    const dir = tempDir('portcullis-policy-key-');
    cleanup.add(() => rmTemp(dir));
    const issuer = createTokenIssuer({ alg: 'RS256' });
    const jwksPath = issuer.writeJwks(dir);
    const upstream = await startUpstream({ name: 'echo' });
    cleanup.add(() => upstream.close());
    const [plain, admin] = await freePorts(2);
    const configPath = writeConfig({
      server: { workers: 1, drain_timeout: '1s' },
      access_log: { path: 'off' },
      listeners: [{ name: 'plain', address: `127.0.0.1:${plain}` }],
      admin: { address: `127.0.0.1:${admin}` },
      assertion: { key_file: 'keys-assertion.pem' },
      identity_providers: [issuer.provider(jwksPath)],
      upstreams: [{ name: 'echo', endpoints: [upstream.address] }],
      routes: [{ name: 'app', match: { path_prefix: '/' }, upstream: 'echo', auth: 'bearer', policy: { allow: { authenticated_user: true } } }],
    }, { dir });
    const keyFile = path.join(dir, 'keys-assertion.pem');
    assert.equal(fs.existsSync(keyFile), false);
    const token = issuer.mint(PEOPLE.alice);

    const first = await startGateway({ configPath });
    let firstJwks;
    let firstAssertion;
    try {
      const st = fs.statSync(keyFile);
      assert.equal(st.mode & 0o777, 0o600, `key file mode ${(st.mode & 0o777).toString(8)}`);
      assert.match(fs.readFileSync(keyFile, 'utf8'), /-----BEGIN PRIVATE KEY-----/);
      firstJwks = (await fetchAssertionJwks(plain)).jwks;
      const echo = assertAllowed(await call(plain, '/x', token), 'first run');
      firstAssertion = echo.headers['x-portcullis-assertion'];
      const v = verifyEs256(firstAssertion, firstJwks);
      assert.equal(v.valid, true, v.reason);
      assert.equal(v.payload.iss, 'portcullis', 'default assertion issuer');
      assert.ok(v.payload.exp - v.payload.iat <= 300, 'default ttl 5m');
    } finally {
      await first.stop();
    }
    const keyText = fs.readFileSync(keyFile, 'utf8');

    const second = await startGateway({ configPath });
    try {
      const secondJwks = (await fetchAssertionJwks(plain)).jwks;
      assert.equal(secondJwks.keys[0].kid, firstJwks.keys[0].kid, 'kid changed across a restart');
      assert.deepEqual(secondJwks, firstJwks);
      assert.equal(fs.readFileSync(keyFile, 'utf8'), keyText, 'the key file was rewritten');
      assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
      const echo = assertAllowed(await call(plain, '/y', token), 'second run');
      const v = verifyEs256(echo.headers['x-portcullis-assertion'], firstJwks);
      assert.equal(v.valid, true, `an assertion of the restarted gateway does not verify with the first run's JWKS: ${v.reason}`);
      assert.equal(verifyEs256(firstAssertion, secondJwks).valid, true);
    } finally {
      await second.stop();
    }
  });
});

// ---------------------------------------------------------------------------------------

/**
 * Checks the records of load loops across a decision change from 200 to 403 that happened
 * after `changedAt` (ms): only 200/403, no errors, per loop 200...200 403...403 with both
 * present, every request started after the first 403 was received is a 403, and every
 * request finished before `changedAt` is a 200. Returns a short summary.
 */
function assertSwitch(loops, changedAt, what) {
  const all = loops.flat();
  const errors = all.filter((r) => r.error);
  assert.deepEqual(errors.slice(0, 5), [], `${what}: ${errors.length} requests failed`);
  const odd = all.filter((r) => r.status !== 200 && r.status !== 403);
  assert.deepEqual(odd.slice(0, 5), [], `${what}: ${odd.length} answers neither 200 nor 403`);
  loops.forEach((records, i) => {
    const first403 = records.findIndex((r) => r.status === 403);
    assert.ok(first403 > 0, `${what}: loop ${i} never saw the change (or never a 200): ${records.length} requests`);
    const back = records.slice(first403).findIndex((r) => r.status !== 403);
    assert.equal(back, -1, `${what}: loop ${i} got ${records[first403 + back]?.status} after a 403 (request ${first403 + back} of ${records.length})`);
  });
  const firstDenyAt = Math.min(...all.filter((r) => r.status === 403).map((r) => r.end));
  const lateAllowed = all.filter((r) => r.status === 200 && r.start > firstDenyAt);
  assert.equal(lateAllowed.length, 0, `${what}: ${lateAllowed.length} requests started after the first 403 was received were allowed`);
  const early403 = all.filter((r) => r.status === 403 && r.end < changedAt);
  assert.equal(early403.length, 0, `${what}: 403 before the policy changed`);
  return { total: all.length, allowed: all.filter((r) => r.status === 200).length, denied: all.filter((r) => r.status === 403).length, switchMs: firstDenyAt - changedAt };
}

function reloadPolicyText(denyAlice) {
  const policy = { allow: { group: { has: 'engineering' } } };
  if (denyAlice) policy.deny = { email: { is: 'alice@example.com' } };
  return toYaml(policy);
}

const BROKEN_SYNTAX = 'allow:\n  group: {has: [engineering\n';
const BROKEN_CRITERION = 'allow:\n  groop: {has: engineering}\n';

describe('hot reload of a policy file under load', { timeout: 60_000 }, () => {
  const cleanup = cleanupList();
  let issuer;
  let upstream;
  let alice;
  let carol;

  before(async () => {
    issuer = createTokenIssuer({ alg: 'ES256' });
    alice = issuer.mint(PEOPLE.alice);
    carol = issuer.mint(PEOPLE.carol); // engineering too; never denied by the reload policies
    upstream = await startUpstream({ name: 'echo' });
    cleanup.add(() => upstream.close());
  });
  after(() => cleanup.run());

  /**
   * A gateway whose route /app uses reload.yaml (allowing alice): `policy: reload` in the
   * policy_dir my-policies when `named`, else `policy: policy-files/reload.yaml`.
   */
  async function reloadGateway({ watch, named = false }) {
    const dir = tempDir('portcullis-policy-reload-');
    cleanup.add(() => rmTemp(dir));
    const sub = named ? 'my-policies' : 'policy-files';
    fs.mkdirSync(path.join(dir, sub));
    const policyFile = path.join(dir, sub, 'reload.yaml');
    fs.writeFileSync(policyFile, reloadPolicyText(false));
    const jwksPath = issuer.writeJwks(dir);
    const [plain, admin] = await freePorts(2);
    const configPath = writeConfig({
      server: { workers: 2, drain_timeout: '2s', watch_config: watch },
      policy_dir: named ? 'my-policies' : undefined,
      access_log: { path: 'off' },
      listeners: [{ name: 'plain', address: `127.0.0.1:${plain}` }],
      admin: { address: `127.0.0.1:${admin}` },
      identity_providers: [issuer.provider(jwksPath)],
      upstreams: [{ name: 'echo', endpoints: [upstream.address] }],
      routes: [{ name: 'app', match: { path_prefix: '/app' }, upstream: 'echo', auth: 'bearer', policy: named ? 'reload' : 'policy-files/reload.yaml' }],
    }, { dir });
    const gw = await startGateway({ configPath });
    cleanup.add(() => gw.stop());
    assertAllowed(await call(plain, '/app/start', alice), 'alice before any change');
    assertAllowed(await call(plain, '/app/start', carol), 'carol before any change');
    return { gw, port: plain, policyFile };
  }

  const reloads = async (gw, result) => metricSum(await fetchMetrics(gw), 'portcullis_config_reloads_total', { result });
  const countMatches = (gw, re) => (gw.logText().match(re) ?? []).length;

  /** Runs 4 keep-alive loops until each has `min` answers and `until()` holds, then stops them. */
  async function underLoad(port, token, action, until, { min = 20, timeoutMs = 8000 } = {}) {
    const load = startLoops({ port, pathname: '/app/load', token, concurrency: 4 });
    try {
      await eventually(() => load.loops.every((l) => l.length >= min), { timeoutMs: 5000, message: 'load loops running' });
      const changedAt = Date.now();
      await action();
      await eventually(until(load), { timeoutMs, intervalMs: 20, message: 'the change to be seen by every loop' });
      const settled = load.total();
      await eventually(() => load.total() >= settled + 40, { timeoutMs: 5000, message: 'more requests after the change' });
      return { loops: await load.stop(), changedAt };
    } catch (e) {
      await load.stop();
      throw e;
    }
  }
  const everyLoopDenied = (load) => () => load.loops.every((l) => l.some((r) => r.status === 403));

  /** A broken policy file: the reload is refused, logged and counted; decisions stay. */
  async function refusedReload(gw, port, policyFile, text, trigger) {
    const failuresBefore = await reloads(gw, 'failure');
    const refusedBefore = countMatches(gw, /reload refused/g);
    const load = startLoops({ port, pathname: '/app/load', token: alice, concurrency: 2 });
    try {
      replaceFile(policyFile, text);
      if (trigger) trigger();
      await eventually(() => countMatches(gw, /reload refused/g) > refusedBefore, { timeoutMs: 5000, message: '"reload refused" in the log' });
      await eventually(async () => (await reloads(gw, 'failure')) === failuresBefore + 1, { timeoutMs: 2000, message: 'reloads_total{result="failure"} + 1' });
      const tail = gw.logText().split('\n').filter((l) => l.includes('reload refused')).slice(-3).join('\n');
      assert.ok(tail.includes(policyFile), `the refusal names the policy file: ${tail}`);
      const settled = load.total();
      await eventually(() => load.total() >= settled + 20, { timeoutMs: 5000, message: 'requests after the refused reload' });
    } finally {
      await load.stop();
    }
    const all = load.loops.flat();
    assert.deepEqual(all.filter((r) => r.error || r.status !== 403).slice(0, 5), [], 'alice stays denied through a refused reload');
    assertAllowed(await call(port, '/app/after-refused', carol), 'carol stays allowed after a refused reload');
  }

  test('inotify: the policy file renamed over changes the decision at once for every connection; broken policies are refused', async (t) => {
    const { gw, port, policyFile } = await reloadGateway({ watch: true, named: true });
    const okBefore = await reloads(gw, 'success');
    const { loops, changedAt } = await underLoad(port, alice, () => replaceFile(policyFile, reloadPolicyText(true)), everyLoopDenied);
    const summary = assertSwitch(loops, changedAt, 'inotify reload');
    t.diagnostic(`inotify: ${summary.total} requests (${summary.allowed} allowed, ${summary.denied} denied), first 403 ${summary.switchMs} ms after the rename`);
    assert.ok(summary.switchMs < 3000, `the change took ${summary.switchMs} ms`);
    assert.ok((await reloads(gw, 'success')) >= okBefore + 1, 'reloads_total{result="success"}');
    assert.match(gw.logText(), /a config or policy file changed: reloading/);
    assertAllowed(await call(port, '/app/after', carol), 'carol still allowed by the new policy');

    // Policies that do not compile: refused, the running policy keeps deciding.
    await refusedReload(gw, port, policyFile, BROKEN_SYNTAX);
    await refusedReload(gw, port, policyFile, BROKEN_CRITERION);

    // The watcher still works after refusals: a good file is picked up again.
    replaceFile(policyFile, reloadPolicyText(false));
    await eventually(async () => (await call(port, '/app/fixed', alice)).status === 200, { timeoutMs: 5000, message: 'alice allowed again after the fix' });
  });

  test('SIGHUP with server.watch_config: false: the file change alone does nothing, SIGHUP switches; broken policies are refused', async (t) => {
    const { gw, port, policyFile } = await reloadGateway({ watch: false });
    const okBefore = await reloads(gw, 'success');
    let writtenAt = 0;
    let sighupAt = 0;
    const { loops, changedAt } = await underLoad(port, alice, async () => {
      replaceFile(policyFile, reloadPolicyText(true));
      writtenAt = Date.now();
      await sleep(800); // well past the watcher's 200 ms settle time: nothing may happen
      sighupAt = Date.now();
      gw.reload();
    }, everyLoopDenied);
    assert.ok(changedAt <= writtenAt);
    const summary = assertSwitch(loops, sighupAt, 'SIGHUP reload');
    t.diagnostic(`SIGHUP: ${summary.total} requests (${summary.allowed} allowed, ${summary.denied} denied), first 403 ${summary.switchMs} ms after SIGHUP`);
    const deniedBeforeSighup = loops.flat().filter((r) => r.status === 403 && r.end < sighupAt);
    assert.equal(deniedBeforeSighup.length, 0, 'with watch_config: false the file change was applied without SIGHUP');
    assert.ok(loops.flat().filter((r) => r.status === 200 && r.start > writtenAt + 300).length > 0, 'no requests between the write and SIGHUP');
    assert.ok(summary.switchMs < 3000, `SIGHUP took ${summary.switchMs} ms to apply`);
    assert.equal(await reloads(gw, 'success'), okBefore + 1, 'exactly one reload (the SIGHUP)');

    // A broken policy and SIGHUP: refused, counted, decisions unchanged.
    await refusedReload(gw, port, policyFile, BROKEN_CRITERION, () => gw.reload());
  });

  test('inotify: a Kubernetes ConfigMap-style update (the ..data symlink swapped) is reloaded', async () => {
    // docs/policy.md: "inotify on their directories, so editors' write-and-rename and
    // Kubernetes ConfigMap symlink swaps are seen". A ConfigMap volume: DIR/app.yaml ->
    // ..data/app.yaml, ..data -> ..<timestamp>. kubelet updates it by writing a new
    // ..<timestamp> directory and renaming a new symlink over ..data; the entry app.yaml
    // itself never changes.
    const dir = tempDir('portcullis-policy-cm-');
    cleanup.add(() => rmTemp(dir));
    const cm = path.join(dir, 'cm');
    fs.mkdirSync(path.join(cm, '..2026_01'), { recursive: true });
    fs.writeFileSync(path.join(cm, '..2026_01', 'app.yaml'), reloadPolicyText(false));
    fs.symlinkSync('..2026_01', path.join(cm, '..data'));
    fs.symlinkSync('..data/app.yaml', path.join(cm, 'app.yaml'));
    const jwksPath = issuer.writeJwks(dir);
    const [plain, admin] = await freePorts(2);
    const configPath = writeConfig({
      server: { workers: 2, drain_timeout: '2s' },
      access_log: { path: 'off' },
      listeners: [{ name: 'plain', address: `127.0.0.1:${plain}` }],
      admin: { address: `127.0.0.1:${admin}` },
      identity_providers: [issuer.provider(jwksPath)],
      upstreams: [{ name: 'echo', endpoints: [upstream.address] }],
      routes: [{ name: 'app', match: { path_prefix: '/app' }, upstream: 'echo', auth: 'bearer', policy: 'cm/app.yaml' }],
    }, { dir });
    const gw = await startGateway({ configPath });
    cleanup.add(() => gw.stop());
    assertAllowed(await call(plain, '/app/cm', alice), 'alice before the update');

    fs.mkdirSync(path.join(cm, '..2026_02'));
    fs.writeFileSync(path.join(cm, '..2026_02', 'app.yaml'), reloadPolicyText(true));
    fs.symlinkSync('..2026_02', path.join(cm, '..data_tmp'));
    fs.renameSync(path.join(cm, '..data_tmp'), path.join(cm, '..data'));
    fs.rmSync(path.join(cm, '..2026_01'), { recursive: true });
    assert.match(fs.readFileSync(path.join(cm, 'app.yaml'), 'utf8'), /alice@example\.com/, 'test bug: the swap did not take');

    let last;
    try {
      await eventually(async () => { last = await call(plain, '/app/cm', alice); return last.status === 403; },
        { timeoutMs: 3000, intervalMs: 100, message: 'the ConfigMap update to be applied' });
    } catch (e) {
      const reloadLines = gw.logText().split('\n').filter((l) => /reload/.test(l));
      assert.fail(`the policy behind the ..data symlink changed but the gateway kept the old one (alice still ${last?.status}); reload log lines: ${JSON.stringify(reloadLines)}`);
    }
  });
});

// ---------------------------------------------------------------------------------------

describe('config check: policy errors', { timeout: 30_000 }, () => {
  let dir;
  let ports;
  before(async () => {
    dir = tempDir('portcullis-policy-check-');
    ports = await freePorts(3);
  });
  after(() => rmTemp(dir));

  /** A config whose only route (public) has `policyLines` (indented under the route). */
  function configLines(policyLines, extraTop = []) {
    return [
      ...extraTop,
      'listeners:',
      '  - name: plain',
      `    address: "127.0.0.1:${ports[0]}"`,
      'admin:',
      `  address: "127.0.0.1:${ports[1]}"`,
      'upstreams:',
      '  - name: app',
      `    endpoints: ["127.0.0.1:${ports[2]}"]`,
      'routes:',
      '  - name: guarded',
      '    match: {path_prefix: /g}',
      '    upstream: app',
      '    auth: public',
      ...policyLines,
    ];
  }

  function write(name, lines) {
    const file = path.join(dir, name);
    fs.writeFileSync(file, `${lines.join('\n')}\n`);
    return file;
  }

  /** stderr lines FILE:LINE:COLUMN: reason for `file`. */
  function diagnostics(stderr, file) {
    const out = [];
    for (const line of stderr.split('\n')) {
      if (!line.startsWith(`${file}:`)) continue;
      const m = /^(\d+):(\d+): (.+)$/.exec(line.slice(file.length + 1));
      if (m) out.push({ line: Number(m[1]), column: Number(m[2]), reason: m[3] });
    }
    return out;
  }

  test('a valid config with inline, file and named policies passes', async () => {
    fs.mkdirSync(path.join(dir, 'policies'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'policy-files'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'policies', 'methods.yaml'), fixture('methods.yaml'));
    fs.writeFileSync(path.join(dir, 'policy-files', 'domain.yaml'), fixture('domain.yaml'));
    fs.writeFileSync(path.join(dir, 'policies', 'legacy.yml'), fixture('shadow-admins.yaml'));
    for (const [name, lines] of [
      ['ok-named-yml.yaml', ['    policy: legacy']],
      ['ok-inline.yaml', ['    policy:', '      allow:', '        http_method: {is: GET}']],
      ['ok-file.yaml', ['    policy: policy-files/domain.yaml']],
      ['ok-named.yaml', ['    policy: methods']],
    ]) {
      const file = write(name, configLines(lines));
      const r = await runGateway(['config', 'check', file]);
      assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      assert.match(r.stdout, /OK/);
    }
  });

  test('inline policy error: FILE:LINE:COLUMN at the offending key, exit 1', async () => {
    const lines = configLines(['    policy:', '      allow:', '        or:', '          - group: {has: readers}', '          - group: {hass: writers}']);
    const file = write('bad-inline.yaml', lines);
    const r = await runGateway(['config', 'check', file]);
    assert.equal(r.code, 1, `stdout: ${r.stdout} stderr: ${r.stderr}`);
    const line = lines.findIndex((l) => l.includes('hass')) + 1;
    const column = lines[line - 1].indexOf('hass') + 1;
    const d = diagnostics(r.stderr, file);
    const hit = d.find((x) => x.reason.includes('hass'));
    assert.ok(hit, `no diagnostic naming \`hass\`: ${r.stderr}`);
    assert.deepEqual({ line: hit.line, column: hit.column }, { line, column }, r.stderr);
    assert.match(hit.reason, /unknown matcher/);

    const crit = configLines(['    policy:', '      deny:', '        groop: {has: x}']);
    const critFile = write('bad-inline-criterion.yaml', crit);
    const rc = await runGateway(['config', 'check', critFile]);
    assert.equal(rc.code, 1, rc.stderr);
    const dc = diagnostics(rc.stderr, critFile).find((x) => x.reason.includes('groop'));
    assert.ok(dc, rc.stderr);
    assert.deepEqual({ line: dc.line, column: dc.column }, { line: crit.length, column: crit[crit.length - 1].indexOf('groop') + 1 });
  });

  test('policy file errors: FILE:LINE:COLUMN in the policy file (unknown criterion, YAML syntax), exit 1; serve refuses too', async () => {
    fs.mkdirSync(path.join(dir, 'policy-files'), { recursive: true });
    const badCriterion = path.join(dir, 'policy-files', 'bad-criterion.yaml');
    const badSyntax = path.join(dir, 'policy-files', 'bad-syntax.yaml');
    fs.writeFileSync(badCriterion, fixture('bad-criterion.yaml'));
    fs.writeFileSync(badSyntax, fixture('bad-syntax.yaml'));

    const critText = fixture('bad-criterion.yaml').split('\n');
    const critLine = critText.findIndex((l) => l.includes('groop')) + 1;
    const file = write('uses-bad-criterion.yaml', configLines(['    policy: policy-files/bad-criterion.yaml']));
    const r = await runGateway(['config', 'check', file]);
    assert.equal(r.code, 1, r.stderr);
    const d = diagnostics(r.stderr, badCriterion);
    assert.deepEqual(d.map((x) => [x.line, x.column]), [[critLine, critText[critLine - 1].indexOf('groop') + 1]], r.stderr);
    assert.match(d[0].reason, /`groop`/);
    assert.ok(diagnostics(r.stderr, file).some((x) => x.reason.includes('bad-criterion.yaml')), `the config's own error names the policy: ${r.stderr}`);

    const serve = await runGateway(['serve', '--config', file], { timeoutMs: 10_000 });
    assert.equal(serve.code, 1, `serve with a broken policy: ${serve.stderr}`);
    assert.ok(diagnostics(serve.stderr, badCriterion).length === 1, serve.stderr);

    const synFile = write('uses-bad-syntax.yaml', configLines(['    policy: policy-files/bad-syntax.yaml']));
    const rs = await runGateway(['config', 'check', synFile]);
    assert.equal(rs.code, 1, rs.stderr);
    const ds = diagnostics(rs.stderr, badSyntax);
    assert.equal(ds.length, 1, rs.stderr);
    const synLines = fixture('bad-syntax.yaml').split('\n');
    const flowLine = synLines.findIndex((l) => l.includes('[readers')) + 1;
    assert.ok(ds[0].line >= flowLine && ds[0].line <= synLines.length, `line ${ds[0].line} (the unclosed list is on ${flowLine}): ${rs.stderr}`);
    assert.ok(ds[0].column >= 1);
  });

  test('a missing named policy says which file was looked for (default and custom policy_dir)', async () => {
    const lines = configLines(['    policy: nosuch']);
    const file = write('missing-named.yaml', lines);
    const r = await runGateway(['config', 'check', file]);
    assert.equal(r.code, 1, r.stderr);
    const expected = path.join(dir, 'policies', 'nosuch.yaml');
    const d = diagnostics(r.stderr, file);
    const hit = d.find((x) => x.reason.includes(expected));
    assert.ok(hit, `no diagnostic naming ${expected}: ${r.stderr}`);
    assert.match(hit.reason, /does not exist/);
    assert.equal(hit.line, lines.length);

    const custom = configLines(['    policy: nosuch'], ['policy_dir: my-policies']);
    const customFile = write('missing-named-custom.yaml', custom);
    const rc = await runGateway(['config', 'check', customFile]);
    assert.equal(rc.code, 1, rc.stderr);
    assert.ok(rc.stderr.includes(path.join(dir, 'my-policies', 'nosuch.yaml')), rc.stderr);
  });
});
