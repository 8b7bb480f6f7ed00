// Forwarding: keep-alive and pooling, weighted balancing, upstream failures (502/503/504),
// retries, body framings (chunked both ways, Expect: 100-continue, HEAD, close-delimited).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import crypto from 'node:crypto';
import {
  startGateway, startUpstream, basicConfig, freePorts, httpRequest, rawRequest, rawConnect, parseResponse,
  responseComplete, checkGatewayError, eventually,
} from '../support/harness.mjs';

describe('forwarding', { timeout: 180_000 }, () => {
  const ups = {};
  let gw;
  let port;
  let dead;

  before(async () => {
    ups.pool = await startUpstream({ name: 'pool' });
    ups.echo = await startUpstream({ name: 'echo' });
    ups.w1 = await startUpstream({ name: 'w1' });
    ups.w3 = await startUpstream({ name: 'w3' });
    ups.live = await startUpstream({ name: 'live' });
    ups.slow = await startUpstream({ name: 'slow' });
    // Ports where nothing listens (found free, never bound).
    dead = await freePorts(3);
    const route = (name, prefix, upstream) => ({ name, match: { path_prefix: prefix }, upstream, auth: 'public' });
    const { config, ports } = await basicConfig({
      upstreams: [
        { name: 'pool', endpoints: [ups.pool.address] },
        { name: 'echo', endpoints: [ups.echo.address] },
        { name: 'weighted', endpoints: [{ address: ups.w1.address, weight: 1 }, { address: ups.w3.address, weight: 3 }] },
        { name: 'dead', endpoints: [`127.0.0.1:${dead[0]}`], retries: 0, timeouts: { connect: '1s' } },
        {
          name: 'ejecting',
          endpoints: [`127.0.0.1:${dead[1]}`, `127.0.0.1:${dead[2]}`],
          retries: 0,
          timeouts: { connect: '1s' },
          ejection: { consecutive_failures: 2, base_duration: '30s' },
        },
        {
          name: 'mixed',
          endpoints: [`127.0.0.1:${dead[0]}`, ups.live.address],
          retries: 1,
          timeouts: { connect: '1s' },
          ejection: { consecutive_failures: 3, base_duration: '10s' },
        },
        { name: 'slow', endpoints: [ups.slow.address], timeouts: { connect: '1s', request: '1s', idle: '30s' } },
      ],
      routes: [
        route('pool', '/pool', 'pool'),
        route('echo', '/echo', 'echo'),
        route('weighted', '/weighted', 'weighted'),
        route('dead', '/dead', 'dead'),
        route('ejecting', '/ejecting', 'ejecting'),
        route('mixed', '/mixed', 'mixed'),
        route('slow', '/slow', 'slow'),
      ],
    });
    port = ports.plain;
    gw = await startGateway({ config });
  });

  after(async () => {
    await gw?.stop();
    for (const u of Object.values(ups)) await u.close();
  });

  test('keep-alive to the client and pooled keep-alive to the upstream', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const ids = new Set();
      const reused = [];
      const N = 10;
      for (let i = 0; i < N; i++) {
        const r = await httpRequest({ port, path: `/pool/${i}`, agent });
        assert.equal(r.status, 200, r.body);
        ids.add(r.json().connectionId);
        reused.push(r.reusedSocket);
      }
      assert.deepEqual(reused.slice(1), new Array(N - 1).fill(true), 'the client connection was not kept alive');
      assert.equal(ids.size, 1, `upstream saw connections ${[...ids]}`);
      assert.equal(ups.pool.connectionCount(), 1);
    } finally {
      agent.destroy();
    }
  });

  test('weighted choice: weights 1 and 3 over 400 requests', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const counts = { w1: 0, w3: 0 };
    try {
      for (let i = 0; i < 100; i++) {
        const batch = await Promise.all([0, 1, 2, 3].map(() => httpRequest({ port, path: '/weighted/x', agent })));
        for (const r of batch) {
          assert.equal(r.status, 200, r.body);
          counts[r.json().name] += 1;
        }
      }
    } finally {
      agent.destroy();
    }
    assert.equal(counts.w1 + counts.w3, 400);
    assert.ok(counts.w1 >= 50 && counts.w1 <= 160, `weight-1 endpoint got ${counts.w1} of 400 (expected about 100)`);
    assert.ok(counts.w3 >= 240 && counts.w3 <= 350, `weight-3 endpoint got ${counts.w3} of 400 (expected about 300)`);
  });

  test('upstream down (nothing listening) -> 502 upstream_connect_failed', async () => {
    const r = await httpRequest({ port, path: '/dead/x' });
    checkGatewayError(assert, r, 502, 'upstream_connect_failed');
  });

  test('all endpoints ejected after consecutive failures -> 503 no_healthy_upstream', async () => {
    // Ejection state may be kept per worker, so a 503 from one worker does not mean the next
    // connection (maybe on another worker) gets one too. Once every worker has ejected both
    // endpoints every answer is 503: wait for 4 in a row. Before that only 502s are allowed.
    const seen = [];
    let streak = 0;
    for (let i = 0; i < 60 && streak < 4; i++) {
      const r = await httpRequest({ port, path: `/ejecting/${i}` });
      seen.push(r.status);
      if (r.status === 503) {
        checkGatewayError(assert, r, 503, 'no_healthy_upstream');
        streak += 1;
      } else {
        checkGatewayError(assert, r, 502, 'upstream_connect_failed');
        streak = 0;
      }
    }
    assert.equal(streak, 4, `no 4 consecutive 503s within 60 requests; statuses: ${seen.join(',')}`);
    assert.equal(seen[0], 502, 'the first failure should be a connect failure, not an ejection');
  });

  test('slow upstream (answers after the request timeout) -> 504 upstream_timeout', async () => {
    const r = await httpRequest({ port, path: '/slow/x?delay=3000', timeoutMs: 15_000 });
    checkGatewayError(assert, r, 504, 'upstream_timeout');
  });

  test('a fast request to the slow upstream still works', async () => {
    const r = await httpRequest({ port, path: '/slow/x' });
    assert.equal(r.status, 200, r.body);
  });

  test('GETs are retried on connect failure: one dead and one live endpoint, all succeed', async () => {
    const statuses = [];
    for (let i = 0; i < 20; i++) {
      const r = await httpRequest({ port, path: `/mixed/${i}` });
      statuses.push(r.status);
      if (r.status === 200) assert.equal(r.json().name, 'live');
    }
    assert.deepEqual(statuses, new Array(20).fill(200));
  });

  test('chunked request body passes through intact', async () => {
    const parts = [];
    for (let i = 0; i < 20; i++) parts.push(crypto.randomBytes(1000 + i * 37));
    const whole = Buffer.concat(parts);
    const expected = crypto.createHash('sha256').update(whole).digest('hex');
    const res = await new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/echo/chunked?hash=1', method: 'POST', agent: false }, (r) => {
        let body = '';
        r.setEncoding('utf8');
        r.on('data', (c) => { body += c; });
        r.on('end', () => resolve({ status: r.statusCode, body }));
        r.on('error', reject);
      });
      req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      (async () => {
        for (const p of parts) { req.write(p); await new Promise((r) => setImmediate(r)); }
        req.end();
      })();
    });
    assert.equal(res.status, 200, res.body);
    const echo = JSON.parse(res.body);
    assert.equal(echo.bodyLength, whole.length);
    assert.equal(echo.bodySha256, expected);
  });

  test('chunked upload on the wire (raw) reaches the upstream de-framed', async () => {
    const text = await rawRequest(port, 'POST /echo/rawchunk?echo_body=1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\n\r\n');
    const res = parseResponse(text);
    assert.ok(res, JSON.stringify(text.slice(0, 300)));
    assert.equal(res.status, 200, res.body);
    assert.equal(res.body, 'hello world');
  });

  test('chunked response body passes through intact', async () => {
    const r = await httpRequest({ port, path: '/echo/x?stream=100000&chunked=1' });
    assert.equal(r.status, 200);
    assert.equal(r.bodyLength, 100000);
    for (let i = 0; i < r.bodyBuffer.length; i += 997) assert.equal(r.bodyBuffer[i], 97 + (i % 65536) % 26);
  });

  test('a chunked JSON response is delivered whole', async () => {
    const r = await httpRequest({ port, path: '/echo/x?chunked=1' });
    assert.equal(r.status, 200);
    assert.equal(r.json().url, '/echo/x?chunked=1');
  });

  test('Expect: 100-continue gets 100 Continue from the gateway, then the body reaches the upstream', async () => {
    const conn = await rawConnect(port);
    try {
      await conn.write('POST /echo/expect HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n');
      await conn.waitFor(/^HTTP\/1\.1 100 /, 5000);
      await conn.write('hello world');
      const text = await conn.waitFor((t) => responseComplete(t), 5000);
      const res = parseResponse(text);
      assert.deepEqual(res.informational, [100], 'exactly one 100 Continue');
      assert.equal(res.status, 200, res.body);
      assert.equal(JSON.parse(res.body).bodyLength, 11);
    } finally {
      conn.destroy();
    }
  });

  test('HEAD works and keeps the connection usable (no body bytes after the headers)', async () => {
    const conn = await rawConnect(port);
    try {
      await conn.write('HEAD /echo/head?stream=1000 HTTP/1.1\r\nHost: a\r\n\r\n');
      const headText = await conn.waitFor((t) => t.includes('\r\n\r\n'), 5000);
      const head = parseResponse(headText);
      assert.equal(head.status, 200);
      assert.equal(head.headers['content-length'], '1000');
      assert.equal(ups.echo.requests.at(-1).method, 'HEAD');
      await conn.write('GET /echo/after-head HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
      await conn.waitFor((t) => {
        const second = t.slice(t.indexOf('\r\n\r\n') + 4);
        return responseComplete(second);
      }, 5000);
      const all = conn.text();
      const second = all.slice(all.indexOf('\r\n\r\n') + 4);
      assert.match(second, /^HTTP\/1\.1 200 /, `bytes after the HEAD response: ${JSON.stringify(second.slice(0, 100))}`);
      assert.equal(JSON.parse(parseResponse(second).body).url, '/echo/after-head');
    } finally {
      conn.destroy();
    }
  });

  test('a close-delimited upstream response reaches an HTTP/1.1 client chunked and intact', async () => {
    const text = await rawRequest(port, 'GET /echo/x?stream=100000&close=1 HTTP/1.1\r\nHost: a\r\n\r\n', { timeoutMs: 10_000 });
    const res = parseResponse(text);
    assert.ok(res, JSON.stringify(text.slice(0, 300)));
    assert.equal(res.status, 200);
    assert.match(res.headers['transfer-encoding'] ?? '', /chunked/, `framing: ${JSON.stringify(res.headers)}`);
    assert.equal(res.body.length, 100000);
    assert.equal(res.body.slice(0, 26), 'abcdefghijklmnopqrstuvwxyz');
  });

  test('a close-delimited JSON response via node http client', async () => {
    const r = await httpRequest({ port, path: '/echo/y?close=1' });
    assert.equal(r.status, 200);
    assert.equal(r.json().url, '/echo/y?close=1');
  });

  test('a request body is relayed to the upstream as it arrives (not held back)', async () => {
    const before = ups.echo.stats.bytesReceived;
    const conn = await rawConnect(port);
    try {
      await conn.write('POST /echo/trickle HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n');
      await conn.write(`64\r\n${'p'.repeat(100)}\r\n`); // 100 bytes, then the client pauses
      await eventually(() => ups.echo.stats.bytesReceived - before >= 100,
        { timeoutMs: 5000, message: 'the first 100 body bytes to reach the upstream while the client pauses' });
      await conn.write('0\r\n\r\n');
      const res = parseResponse(await conn.waitFor((t) => responseComplete(t), 5000));
      assert.equal(res.status, 200, res.body);
      assert.equal(JSON.parse(res.body).bodyLength, 100);
    } finally {
      conn.destroy();
    }
  });

  test('a response body is relayed to the client as it arrives (not held back)', async () => {
    let release;
    const released = new Promise((r) => { release = r; });
    const trickle = await startUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' }); // chunked
      res.write('first-part;'.repeat(10));
      released.then(() => res.end('last-part'));
    });
    const { config, ports } = await basicConfig({
      upstreams: [{ name: 'trickle', endpoints: [trickle.address] }],
      routes: [{ name: 'trickle', match: { path_prefix: '/' }, upstream: 'trickle', auth: 'public' }],
    });
    const gw2 = await startGateway({ config });
    const conn = await rawConnect(ports.plain);
    try {
      await conn.write('GET /sse HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
      await conn.waitFor((t) => t.includes('first-part;'.repeat(10)), 5000)
        .catch((e) => assert.fail(`the first 110 body bytes did not reach the client while the upstream paused: ${e.message}`));
      release();
      const res = parseResponse(await conn.waitFor((t) => responseComplete(t), 5000));
      assert.equal(res.status, 200);
      assert.equal(res.body, `${'first-part;'.repeat(10)}last-part`);
    } finally {
      release();
      conn.destroy();
      await gw2.stop();
      await trickle.close();
    }
  });

  test('upstream status codes are passed through', async () => {
    const r = await httpRequest({ port, path: '/echo/x?status=418' });
    assert.equal(r.status, 418);
  });

  test('upstream dropping the connection without a response -> 502 JSON error', async () => {
    const r = await httpRequest({ port, path: '/echo/x?drop=1', method: 'POST', body: 'x' });
    checkGatewayError(assert, r, 502);
  });
});
