// Header rules: hop-by-hop stripping, X-Portcullis-* spoofing, X-Forwarded-*, request ids,
// traceparent, request smuggling defences, size limits and the header timeout.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  startGateway, startUpstream, freePorts, makeCerts, tempDir, rmTemp, httpRequest, rawRequest, rawConnect,
  parseResponse, responseComplete, checkGatewayError, sleep,
} from '../support/harness.mjs';

const TRACEPARENT_RE = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;

describe('headers', { timeout: 120_000 }, () => {
  let gw;
  let up;
  let certs;
  let ca;
  let dir;
  const ports = {};

  before(async () => {
    dir = tempDir('portcullis-headers-');
    certs = await makeCerts(path.join(dir, 'certs'));
    ca = fs.readFileSync(certs.ca);
    up = await startUpstream({ name: 'app' });
    [ports.edge, ports.plain, ports.admin] = await freePorts(3);
    gw = await startGateway({
      config: {
        server: { workers: 2, drain_timeout: '5s', trusted_proxies: ['10.0.0.0/8'] },
        access_log: { path: 'stdout' },
        listeners: [
          { name: 'edge', address: `127.0.0.1:${ports.edge}`, tls: { cert: certs.cert, key: certs.key } },
          { name: 'plain', address: `127.0.0.1:${ports.plain}`, limits: { max_header_bytes: '8KiB', header_timeout: '2s' } },
        ],
        admin: { address: `127.0.0.1:${ports.admin}` },
        upstreams: [{ name: 'app', endpoints: [up.address] }],
        routes: [
          { name: 'small', match: { path_prefix: '/small' }, upstream: 'app', auth: 'public', max_body: '1KiB' },
          { name: 'public', match: { path_prefix: '/public' }, upstream: 'app', auth: 'public' },
        ],
      },
    });
  });

  after(async () => {
    await gw?.stop();
    await up?.close();
    rmTemp(dir);
  });

  /** Raw request on the plaintext listener; returns {res, echo (upstream's view or null), text}. */
  async function raw(bytes, options) {
    const text = await rawRequest(ports.plain, bytes, options);
    const res = parseResponse(text);
    assert.ok(res, `no parsable response: ${JSON.stringify(text.slice(0, 300))}`);
    let echo = null;
    if (res.status === 200) echo = JSON.parse(res.body);
    return { res, echo, text };
  }

  // --- hop-by-hop and spoofed identity headers -------------------------------------------

  test('hop-by-hop headers never reach the upstream', async () => {
    const { res, echo } = await raw([
      'GET /public/hop HTTP/1.1',
      'Host: example.com',
      'Connection: keep-alive, X-Custom-Hop',
      'X-Custom-Hop: secret-hop',
      'Keep-Alive: timeout=5',
      'Proxy-Connection: keep-alive',
      'TE: trailers',
      'Trailer: X-Foo',
      'Upgrade: foo/1',
      'Proxy-Authorization: Basic c2VjcmV0OnNlY3JldA==',
      'X-Keep-Me: yes',
      '', ''].join('\r\n'));
    assert.equal(res.status, 200, res.body);
    const h = echo.headers;
    assert.equal(h['x-keep-me'], 'yes', 'an end-to-end header was dropped');
    for (const name of ['x-custom-hop', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'proxy-authorization']) {
      assert.equal(h[name], undefined, `${name} reached the upstream: ${h[name]}`);
    }
    if (h.connection !== undefined) {
      assert.doesNotMatch(h.connection, /x-custom-hop/i, 'Connection still names the client\'s hop header');
    }
    assert.ok(!JSON.stringify(echo.rawHeaders).includes('secret-hop'));
  });

  test('incoming X-Portcullis-* in any spelling never reaches the upstream', async () => {
    const { res, echo } = await raw([
      'GET /public/spoof HTTP/1.1',
      'Host: example.com',
      'X-Portcullis-User: spoofed-user-1',
      'x-portcullis-user: spoofed-user-2',
      'X_Portcullis_User: spoofed-user-3',
      'X-PORTCULLIS-EMAIL: spoofed@example.com',
      'x-portcullis-groups: spoofed-admins',
      'Connection: close',
      '', ''].join('\r\n'));
    assert.equal(res.status, 200, res.body);
    const rh = echo.rawHeaders;
    assert.ok(rh.length > 0);
    for (let i = 0; i < rh.length; i += 2) {
      assert.doesNotMatch(rh[i + 1], /spoofed/, `spoofed value reached the upstream in ${rh[i]}: ${rh[i + 1]}`);
      assert.doesNotMatch(rh[i], /^x_portcullis_/i, `underscore spelling reached the upstream: ${rh[i]}`);
    }
  });

  // --- X-Forwarded-* ----------------------------------------------------------------------

  test('X-Forwarded-* and Forwarded from an untrusted peer are replaced (plaintext)', async () => {
    const r = await httpRequest({
      port: ports.plain,
      path: '/public/xff',
      headers: {
        host: 'shop.example.com',
        'x-forwarded-for': '1.2.3.4',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'evil.example.com',
        forwarded: 'for=1.2.3.4;proto=https;host=evil.example.com',
      },
    });
    assert.equal(r.status, 200, r.body);
    const h = r.json().headers;
    assert.equal(h['x-forwarded-for'], '127.0.0.1');
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(h['x-forwarded-host'], 'shop.example.com');
    if (h.forwarded !== undefined) {
      assert.doesNotMatch(h.forwarded, /1\.2\.3\.4|evil/, `client's Forwarded survived: ${h.forwarded}`);
    }
  });

  test('X-Forwarded-Proto is https on the TLS listener', async () => {
    const r = await httpRequest({
      url: `https://localhost:${ports.edge}/public/xfp`,
      host: '127.0.0.1',
      ca,
      headers: { host: `localhost:${ports.edge}`, 'x-forwarded-proto': 'http', 'x-forwarded-for': '9.9.9.9' },
    });
    assert.equal(r.status, 200, r.body);
    const h = r.json().headers;
    assert.equal(h['x-forwarded-proto'], 'https');
    assert.equal(h['x-forwarded-for'], '127.0.0.1');
    assert.equal(h['x-forwarded-host'], `localhost:${ports.edge}`);
  });

  // --- request ids and tracing ------------------------------------------------------------

  test('x-request-id is generated when absent; client and upstream see the same value', async () => {
    const r = await httpRequest({ port: ports.plain, path: '/public/rid' });
    assert.equal(r.status, 200, r.body);
    const id = r.headers['x-request-id'];
    assert.ok(id && id.length > 0, 'no x-request-id on the response');
    assert.equal(r.json().headers['x-request-id'], id);
    const r2 = await httpRequest({ port: ports.plain, path: '/public/rid' });
    assert.notEqual(r2.headers['x-request-id'], id, 'two requests got the same generated id');
  });

  test('a client x-request-id from an untrusted peer is replaced (audit ids cannot be forged)', async () => {
    const sent = 'client-chosen-id-123';
    const r = await httpRequest({ port: ports.plain, path: '/public/rid', headers: { 'x-request-id': sent } });
    assert.equal(r.status, 200);
    const seen = r.json().headers['x-request-id'];
    assert.notEqual(seen, sent);
    assert.match(seen, /^[0-9a-f]{32}$/);
    assert.equal(r.headers['x-request-id'], seen);
  });

  test('an over-long (>128 chars) client x-request-id is replaced', async () => {
    const sent = 'x'.repeat(200);
    const r = await httpRequest({ port: ports.plain, path: '/public/rid', headers: { 'x-request-id': sent } });
    assert.equal(r.status, 200, r.body);
    const seen = r.json().headers['x-request-id'];
    assert.ok(seen && seen !== sent && seen.length <= 128, `upstream saw ${seen}`);
    assert.equal(r.headers['x-request-id'], seen);
  });

  test('a valid traceparent is propagated unchanged', async () => {
    const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const r = await httpRequest({ port: ports.plain, path: '/public/trace', headers: { traceparent: tp } });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json().headers.traceparent, tp);
  });

  test('without traceparent the upstream gets a new valid W3C traceparent', async () => {
    const r = await httpRequest({ port: ports.plain, path: '/public/trace' });
    assert.equal(r.status, 200, r.body);
    const tp = r.json().headers.traceparent;
    const m = TRACEPARENT_RE.exec(tp ?? '');
    assert.ok(m, `not a W3C traceparent: ${tp}`);
    assert.notEqual(m[1], '0'.repeat(32));
    assert.notEqual(m[2], '0'.repeat(16));
  });

  // --- smuggling defences: 400 ------------------------------------------------------------

  const bad = [
    ['duplicate Content-Length headers', 'POST /public/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello'],
    ['Content-Length "5, 5"', 'POST /public/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello'],
    ['Content-Length with Transfer-Encoding', 'POST /public/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['Transfer-Encoding: gzip, chunked', 'POST /public/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n'],
    ['Transfer-Encoding: identity', 'POST /public/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n'],
    ['Transfer-Encoding: chunked, chunked', 'POST /public/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n'],
    ['a raw 0x01 in a header value', 'GET /public/x HTTP/1.1\r\nHost: a\r\nX-Test: a\x01b\r\n\r\n'],
    ['an invalid character in a header name', 'GET /public/x HTTP/1.1\r\nHost: a\r\nX{Test}: 1\r\n\r\n'],
    ['whitespace between header name and colon', 'GET /public/x HTTP/1.1\r\nHost: a\r\nX-Test : 1\r\n\r\n'],
    ['obs-fold line folding', 'GET /public/x HTTP/1.1\r\nHost: a\r\nX-Test: a\r\n  folded\r\n\r\n'],
    ['two Host headers', 'GET /public/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'],
    ['missing Host on HTTP/1.1', 'GET /public/x HTTP/1.1\r\nUser-Agent: t\r\n\r\n'],
  ];
  for (const [desc, bytes] of bad) {
    test(`400 for ${desc}`, async () => {
      const before = up.requests.length;
      const text = await rawRequest(ports.plain, bytes);
      const res = parseResponse(text);
      assert.ok(res, `no parsable response: ${JSON.stringify(text.slice(0, 300))}`);
      checkGatewayError(assert, res, 400);
      assert.equal(up.requests.length, before, 'the request reached the upstream');
    });
  }

  // --- limits -----------------------------------------------------------------------------

  test('headers over max_header_bytes (8KiB) -> 431', async () => {
    const big = 'v'.repeat(10 * 1024);
    const text = await rawRequest(ports.plain, `GET /public/x HTTP/1.1\r\nHost: a\r\nX-Big: ${big}\r\n\r\n`);
    const res = parseResponse(text);
    assert.ok(res, `no parsable response: ${JSON.stringify(text.slice(0, 300))}`);
    checkGatewayError(assert, res, 431);
  });

  test('headers just under max_header_bytes are accepted', async () => {
    const v = 'v'.repeat(6 * 1024);
    const r = await httpRequest({ port: ports.plain, path: '/public/x', headers: { 'x-big': v } });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json().headers['x-big'], v);
  });

  test('body over max_body with Content-Length known up front -> 413', async () => {
    const before = up.requests.length;
    // Headers only: the gateway must refuse from Content-Length without reading the body.
    const conn = await rawConnect(ports.plain);
    try {
      await conn.write('POST /small/x HTTP/1.1\r\nHost: a\r\nContent-Length: 2048\r\n\r\n');
      const text = await conn.waitFor((t) => responseComplete(t), 5000);
      checkGatewayError(assert, parseResponse(text), 413);
    } finally {
      conn.destroy();
    }
    assert.equal(up.requests.length, before, 'the request reached the upstream');
  });

  test('a body under max_body on the same route passes', async () => {
    const r = await httpRequest({ port: ports.plain, path: '/small/x', method: 'POST', body: 'z'.repeat(1000) });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json().bodyLength, 1000);
  });

  test('chunked upload exceeding max_body mid-way -> 413', async () => {
    // The client keeps sending 512-byte chunks (never the last chunk) until an answer comes;
    // the gateway must stop it with 413 once more than 1KiB arrived. Bounded: 256 KiB / 10 s.
    const conn = await rawConnect(ports.plain);
    try {
      await conn.write('POST /small/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n');
      const deadline = Date.now() + 10_000;
      let sent = 0;
      while (!conn.text() && !conn.closed && sent < 256 * 1024 && Date.now() < deadline) {
        try { await conn.write(`200\r\n${'a'.repeat(512)}\r\n`); } catch { break; }
        sent += 512;
        await sleep(5);
      }
      const text = await conn.waitFor((t) => responseComplete(t), 5000);
      checkGatewayError(assert, parseResponse(text), 413);
    } finally {
      conn.destroy();
    }
  });

  test('chunked upload over max_body is refused without waiting for more body bytes', async () => {
    // 1280 bytes sent (limit 1KiB), then the client waits: the gateway has all it needs.
    const conn = await rawConnect(ports.plain);
    try {
      await conn.write('POST /small/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n');
      await conn.write(`200\r\n${'a'.repeat(512)}\r\n`);
      await conn.write(`300\r\n${'b'.repeat(768)}\r\n`);
      const text = await conn.waitFor((t) => responseComplete(t), 5000);
      checkGatewayError(assert, parseResponse(text), 413);
    } finally {
      conn.destroy();
    }
  });

  test('a client sending headers too slowly gets 408 and the connection is closed', async () => {
    const conn = await rawConnect(ports.plain);
    try {
      await conn.write('GET /public/slow HTTP/1.1\r\n'); // and nothing more (header_timeout 2s)
      await conn.waitFor(/^HTTP\/1\.1 408/, 10_000);
      const closed = await conn.waitClose(5000);
      const res = parseResponse(conn.text());
      assert.ok(res, `incomplete 408 response: ${JSON.stringify(conn.text().slice(0, 300))}`);
      checkGatewayError(assert, res, 408);
      assert.ok(closed, 'connection still open after the 408');
    } finally {
      conn.destroy();
    }
  });

  test('the gateway still serves after all the malformed requests', async () => {
    const r = await httpRequest({ port: ports.plain, path: '/public/after' });
    assert.equal(r.status, 200, r.body);
  });
});

describe('headers with trusted_proxies 127.0.0.0/8', { timeout: 60_000 }, () => {
  let gw;
  let up;
  const ports = {};

  before(async () => {
    up = await startUpstream({ name: 'app' });
    [ports.plain, ports.admin] = await freePorts(2);
    gw = await startGateway({
      config: {
        server: { workers: 2, drain_timeout: '5s', trusted_proxies: ['127.0.0.0/8'] },
        access_log: { path: 'stdout' },
        listeners: [{ name: 'plain', address: `127.0.0.1:${ports.plain}` }],
        admin: { address: `127.0.0.1:${ports.admin}` },
        upstreams: [{ name: 'app', endpoints: [up.address] }],
        routes: [{ name: 'public', match: { path_prefix: '/public' }, upstream: 'app', auth: 'public' }],
      },
    });
  });

  after(async () => {
    await gw?.stop();
    await up?.close();
  });

  test('X-Forwarded-For from a trusted peer is appended to', async () => {
    const r = await httpRequest({ port: ports.plain, path: '/public/x', headers: { 'x-forwarded-for': '203.0.113.7' } });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json().headers['x-forwarded-for'], '203.0.113.7, 127.0.0.1');
  });

  test('a sane x-request-id from a trusted peer is kept', async () => {
    const sent = 'trusted-req-42';
    const r = await httpRequest({ port: ports.plain, path: '/public/rid', headers: { 'x-request-id': sent } });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json().headers['x-request-id'], sent);
    assert.equal(r.headers['x-request-id'], sent);
  });

  test('without an incoming X-Forwarded-For the peer address is used', async () => {
    const r = await httpRequest({ port: ports.plain, path: '/public/x' });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json().headers['x-forwarded-for'], '127.0.0.1');
  });
});
