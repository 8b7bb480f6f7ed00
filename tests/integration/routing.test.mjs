// Route selection (precedence, segment-boundary prefixes, host matching) and path
// normalisation before routing. Each route leads to its own named echo upstream, so the
// upstream's "name" in the echo proves which route took the request.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startGateway, startUpstream, basicConfig, get, httpRequest, rawRequest, parseResponse, checkGatewayError,
} from '../support/harness.mjs';

describe('routing', { timeout: 90_000 }, () => {
  const ups = {};
  let gw;
  let port;

  before(async () => {
    for (const name of ['a', 'b', 'c', 'd', 'admin', 'public']) ups[name] = await startUpstream({ name });
    const route = (name, match, upstream, extra = {}) => ({ name, match, upstream, auth: 'public', ...extra });
    const { config, ports } = await basicConfig({
      upstreams: Object.values(ups).map((u) => ({ name: `up-${u.name}`, endpoints: [u.address] })),
      routes: [
        route('any-api', { path_prefix: '/api' }, 'up-a'),
        route('exact-api', { host: 'api.localhost', path_prefix: '/api' }, 'up-b'),
        route('wild-api', { host: '*.localhost', path_prefix: '/api' }, 'up-c'),
        route('api-v1', { path_prefix: '/api/v1' }, 'up-d'),
        route('status-prefix', { path_prefix: '/status' }, 'up-b'),
        route('status-exact', { path: '/status' }, 'up-a'),
        route('m-any', { path_prefix: '/m' }, 'up-a'),
        route('m-post', { path_prefix: '/m', methods: ['POST'] }, 'up-b'),
        route('dup-first', { path_prefix: '/dup' }, 'up-c'),
        route('dup-second', { path_prefix: '/dup' }, 'up-d'),
        route('health', { path: '/health', methods: ['GET', 'HEAD'] }, 'up-a'),
        route('admin-area', { path_prefix: '/admin' }, 'up-admin'),
        route('public', { path_prefix: '/public' }, 'up-public'),
      ],
    });
    port = ports.plain;
    gw = await startGateway({ config });
  });

  after(async () => {
    await gw?.stop();
    for (const u of Object.values(ups)) await u.close();
  });

  /** Sends a request and returns the echo upstream name (or the status when not 200). */
  async function routedTo(pathname, { host = 'example.com', method = 'GET' } = {}) {
    const r = await httpRequest({ port, path: pathname, method, headers: { host } });
    if (r.status !== 200) return `status ${r.status}: ${r.body.slice(0, 200)}`;
    return r.json().name;
  }

  const cases = [
    // [description, path, host, method, expected upstream]
    ['any host, prefix /api', '/api/x', 'example.com', 'GET', 'a'],
    ['prefix matches the bare prefix', '/api', 'example.com', 'GET', 'a'],
    ['prefix matches with a trailing slash', '/api/', 'example.com', 'GET', 'a'],
    ['exact host beats wildcard and any', '/api/x', 'api.localhost', 'GET', 'b'],
    ['wildcard host beats any host', '/api/x', 'foo.localhost', 'GET', 'c'],
    ['host is case-insensitive and the port is ignored', '/api/x', 'API.LOCALHOST:PORT', 'GET', 'b'],
    ['longest prefix wins (same host rank)', '/api/v1/x', 'example.com', 'GET', 'd'],
    ['host rank beats a longer prefix', '/api/v1/x', 'api.localhost', 'GET', 'b'],
    ['exact path beats an earlier prefix', '/status', 'example.com', 'GET', 'a'],
    ['prefix route below the exact path', '/status/x', 'example.com', 'GET', 'b'],
    ['method-restricted beats any-method (POST)', '/m/x', 'example.com', 'POST', 'b'],
    ['method-restricted does not take other methods', '/m/x', 'example.com', 'GET', 'a'],
    ['equal routes: config order', '/dup/x', 'example.com', 'GET', 'c'],
    ['exact path with methods (GET)', '/health', 'example.com', 'GET', 'a'],
  ];
  for (const [desc, p, host, method, expected] of cases) {
    test(`${desc}: ${method} ${host} ${p} -> up-${expected}`, async () => {
      const h = host.replace('PORT', String(port));
      assert.equal(await routedTo(p, { host: h, method }), expected);
    });
  }

  test('prefixes match on segment boundaries: /apix has no route (404 no_route)', async () => {
    const r = await get(port, '/apix', { host: 'example.com' });
    checkGatewayError(assert, r, 404, 'no_route');
    assert.ok(!ups.a.requests.some((q) => q.url.startsWith('/apix')), 'upstream a got /apix');
  });

  test('a method outside the route\'s list falls through: POST /health -> 404 no_route', async () => {
    const r = await httpRequest({ port, path: '/health', method: 'POST', headers: { host: 'example.com' }, body: 'x' });
    checkGatewayError(assert, r, 404, 'no_route');
  });

  test('HEAD /health is routed', async () => {
    const r = await httpRequest({ port, path: '/health', method: 'HEAD', headers: { host: 'example.com' } });
    assert.equal(r.status, 200);
    assert.equal(r.bodyLength, 0);
    assert.equal(ups.a.requests.at(-1).method, 'HEAD');
  });

  test('no route: 404 JSON {status, error: "no_route", message, request_id} and x-request-id', async () => {
    const r = await get(port, '/nothing/here', { host: 'example.com' });
    const body = checkGatewayError(assert, r, 404, 'no_route');
    assert.match(r.headers['content-type'] ?? '', /application\/json/);
    assert.ok(body.message.length > 0);
  });

  test('two no-route responses carry different request ids', async () => {
    const r1 = await get(port, '/nothing/1');
    const r2 = await get(port, '/nothing/2');
    const b1 = checkGatewayError(assert, r1, 404, 'no_route');
    const b2 = checkGatewayError(assert, r2, 404, 'no_route');
    assert.notEqual(b1.request_id, b2.request_id);
  });
});

describe('path normalisation', { timeout: 90_000 }, () => {
  const ups = {};
  let gw;
  let port;

  before(async () => {
    ups.admin = await startUpstream({ name: 'admin' });
    ups.public = await startUpstream({ name: 'public' });
    const { config, ports } = await basicConfig({
      upstreams: [
        { name: 'app', endpoints: [ups.public.address] },
        { name: 'other', endpoints: [ups.admin.address] },
      ],
      routes: [
        { name: 'admin-area', match: { path_prefix: '/admin' }, upstream: 'other', auth: 'public' },
        { name: 'public', match: { path_prefix: '/public' }, upstream: 'app', auth: 'public' },
      ],
    });
    port = ports.plain;
    gw = await startGateway({ config });
  });

  after(async () => {
    await gw?.stop();
    for (const u of Object.values(ups)) await u.close();
  });

  /** Raw request line, so the exact target bytes reach the gateway. */
  async function send(target) {
    const text = await rawRequest(port, `GET ${target} HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n`);
    const res = parseResponse(text);
    assert.ok(res, `no parsable response for ${JSON.stringify(target)}: ${JSON.stringify(text.slice(0, 300))}`);
    return res;
  }

  const toAdmin = [
    '/public/../admin',
    '/public/%2e%2e/admin',
    '/public/%2E%2E/admin',
    '//admin',
    '/public/..;/admin',
    '/./admin',
    '/%61dmin',
    '/public/./../admin',
    '/../admin',
  ];
  for (const target of toAdmin) {
    test(`${target} routes to admin-area and the upstream sees /admin`, async () => {
      const res = await send(target);
      assert.equal(res.status, 200, `status for ${target}: ${res.body.slice(0, 300)}`);
      const echo = JSON.parse(res.body);
      assert.equal(echo.name, 'admin', `${target} went to ${echo.name}`);
      assert.equal(echo.url, '/admin');
    });
  }

  test('the query is kept verbatim after normalisation', async () => {
    const res = await send('/public/../admin?x=1&y=%2F&z=a%20b');
    assert.equal(res.status, 200, res.body);
    const echo = JSON.parse(res.body);
    assert.equal(echo.name, 'admin');
    assert.equal(echo.url, '/admin?x=1&y=%2F&z=a%20b');
  });

  test('a normal path reaches the upstream unchanged', async () => {
    const res = await send('/public/a/b.txt');
    assert.equal(res.status, 200, res.body);
    const echo = JSON.parse(res.body);
    assert.equal(echo.name, 'public');
    assert.equal(echo.url, '/public/a/b.txt');
  });

  test('dot segments inside /public stay in /public', async () => {
    const res = await send('/public/x/../y');
    assert.equal(res.status, 200, res.body);
    const echo = JSON.parse(res.body);
    assert.equal(echo.name, 'public');
    assert.equal(echo.url, '/public/y');
  });

  const refused = [
    '/public/%2F..%2Fadmin', '/a%5cb', '/a%5Cb', '/a\\b', '/a%00b', '/public/%2fx', '/public/a%5cb', '/public/a\\b',
  ];
  for (const target of refused) {
    test(`${JSON.stringify(target)} is refused with 400 (JSON error)`, async () => {
      const before = ups.admin.requests.length + ups.public.requests.length;
      const res = await send(target);
      checkGatewayError(assert, res, 400);
      assert.equal(ups.admin.requests.length + ups.public.requests.length, before, 'an upstream got the request');
    });
  }
});
