// HTTP/2 on the plaintext listener, end to end with real clients: prior-knowledge h2c from
// curl (--http2-prior-knowledge), nghttp and node:http2, relayed to a real h2c upstream
// (tests/support/h2_upstream.mjs, node:http2 without HTTP/1.1 fallback). Covered: echoed
// path/query and forwarding headers, x-request-id, a 5 MiB upload and a 20 MiB download
// checked byte for byte, trailers, 404 no_route as JSON (and trailers-only for gRPC),
// HTTP/1.1 on the same listener, the 502 upstream_protocol limitation, access log and
// metrics; abuse: Rapid Reset (GOAWAY ENHANCE_YOUR_CALM, memory bounded, gateway healthy),
// an oversized header list (431), an oversized header field, a CONTINUATION flood; drain
// (GOAWAY on SIGTERM, in-flight streams finish).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import {
  startGateway, startUpstream, basicConfig, eventually, cleanupList, fetchMetrics, metricSum,
  curl, run, tempDir, rmTemp, httpRequest, rawConnect, withTimeout,
} from '../support/harness.mjs';
import { startH2Upstream } from '../support/h2_upstream.mjs';
import {
  parseCurlHead, connectH2, h2request, sessionClosed, PREFACE, FRAME, FLAG, frame, parseFrames,
  describeFrames, patternSha256,
} from '../support/h2_client.mjs';

const { NGHTTP2_CANCEL, NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;

// ---------------------------------------------------------------------------------------
// Helpers (raw HPACK, for what well-behaved clients refuse to send)

function hpackInt(value, prefixBits, first = 0) {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([first | value]);
  const out = [first | max];
  let v = value - max;
  while (v >= 128) { out.push((v % 128) + 128); v = Math.floor(v / 128); }
  out.push(v);
  return Buffer.from(out);
}

/** HPACK "literal header field without indexing, new name", no Huffman coding. */
function literal(name, value) {
  const n = Buffer.from(name, 'latin1');
  const v = Buffer.from(value, 'latin1');
  return Buffer.concat([Buffer.from([0x00]), hpackInt(n.length, 7), n, hpackInt(v.length, 7), v]);
}

/** The request head of a GET: :method GET, :scheme http (static table), :path, :authority. */
function requestHead(pathname, authority = '127.0.0.1') {
  return Buffer.concat([Buffer.from([0x82, 0x86]), literal(':path', pathname), literal(':authority', authority)]);
}

/** Sends raw bytes after the preface + an empty SETTINGS; waits for close (or ms). */
async function rawH2(port, bytes, ms = 3000) {
  const c = await rawConnect(port);
  try {
    await c.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0), bytes])).catch(() => {});
    const closed = await c.waitClose(ms);
    const frames = parseFrames(Buffer.from(c.text(), 'latin1'));
    return { closed, frames, error: c.error };
  } finally {
    c.destroy();
  }
}

async function h2Config(h2up, h1up, extra = {}) {
  return basicConfig({
    upstreams: [
      { name: 'h2up', protocol: 'h2c', endpoints: [h2up.address] },
      { name: 'h1up', endpoints: [h1up.address] },
    ],
    routes: [
      { name: 'h2', match: { path_prefix: '/h2' }, upstream: 'h2up', auth: 'public' },
      { name: 'h1', match: { path_prefix: '/h1' }, upstream: 'h1up', auth: 'public' },
    ],
    ...extra,
  });
}

// ---------------------------------------------------------------------------------------

describe('HTTP/2 (prior-knowledge h2c) on the plaintext listener', { timeout: 180_000 }, () => {
  const cleanup = cleanupList();
  let h2up;
  let h1up;
  let gw;
  let port;
  let base;
  let dir;

  before(async () => {
    dir = tempDir('portcullis-h2-');
    cleanup.add(() => rmTemp(dir));
    h2up = await startH2Upstream();
    cleanup.add(() => h2up.close());
    h1up = await startUpstream({ name: 'h1' });
    cleanup.add(() => h1up.close());
    const { config, ports } = await h2Config(h2up, h1up);
    gw = await startGateway({ config });
    cleanup.add(() => gw.stop());
    port = ports.plain;
    base = `http://127.0.0.1:${port}`;
  });

  after(() => cleanup.run());

  test('curl --http2-prior-knowledge: 200 relayed from the h2c upstream with path, query and forwarding headers', async () => {
    const r = await curl(['--http2-prior-knowledge', '-i', `${base}/h2/echo/a?x=1&y=two%20words`]);
    assert.equal(r.code, 0, r.stderr);
    const res = parseCurlHead(r.stdout);
    assert.equal(res.version, '2', 'curl did not speak HTTP/2');
    assert.equal(res.status, 200, r.stdout.slice(0, 500));
    const echo = JSON.parse(res.body);
    assert.equal(echo.method, 'GET');
    assert.equal(echo.path, '/h2/echo/a?x=1&y=two%20words');
    assert.equal(echo.scheme, 'http');
    assert.equal(echo.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(echo.headers['x-forwarded-proto'], 'http');
    assert.match(echo.headers['x-request-id'] ?? '', /^\S+$/, 'the upstream saw no x-request-id');
    assert.match(echo.headers.traceparent ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/);
    assert.match(echo.headers['user-agent'], /^curl\//);
  });

  test('a relayed HTTP/2 response carries x-request-id, the id the upstream saw (as HTTP/1.1 does)', async () => {
    // Found by this test and fixed: relayed HTTP/2 responses lacked x-request-id.
    const r = await curl(['--http2-prior-knowledge', '-i', `${base}/h2/rid`]);
    assert.equal(r.code, 0, r.stderr);
    const res = parseCurlHead(r.stdout);
    assert.equal(res.status, 200);
    const seen = JSON.parse(res.body).headers['x-request-id'];
    assert.ok(seen, 'the upstream saw no x-request-id');
    assert.equal(res.headers['x-request-id'], seen,
      `response headers: ${JSON.stringify(res.headers)}`);
  });

  test('a 5 MiB POST body arrives complete (length and sha256 at the upstream)', async () => {
    const file = path.join(dir, 'upload.bin');
    const payload = crypto.randomBytes(5 * 1024 * 1024);
    fs.writeFileSync(file, payload);
    const r = await curl(['--http2-prior-knowledge', '-i', '--max-time', '60',
      '-H', 'content-type: application/octet-stream', '--data-binary', `@${file}`, `${base}/h2/upload`]);
    assert.equal(r.code, 0, r.stderr);
    const res = parseCurlHead(r.stdout);
    assert.equal(res.status, 200, r.stdout.slice(0, 500));
    const echo = JSON.parse(res.body);
    assert.equal(echo.method, 'POST');
    assert.equal(echo.bodyLength, payload.length);
    assert.equal(echo.bodySha256, crypto.createHash('sha256').update(payload).digest('hex'));
  });

  test('a 20 MiB response arrives complete (size and sha256)', async () => {
    const n = 20 * 1024 * 1024;
    const file = path.join(dir, 'download.bin');
    const r = await curl(['--http2-prior-knowledge', '--max-time', '60', '-o', file,
      '-w', '%{http_code} %{size_download} %{http_version}', `${base}/h2/big?size=${n}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `200 ${n} 2`);
    const got = fs.readFileSync(file);
    assert.equal(got.length, n);
    assert.equal(crypto.createHash('sha256').update(got).digest('hex'), patternSha256(n));
  });

  test('trailers from the upstream reach the client', async () => {
    const s = await connectH2(port);
    try {
      const r = await h2request(s, { ':path': '/h2/trailer?trailer=1&size=1000' });
      assert.equal(r.status, 200, JSON.stringify(r));
      assert.equal(r.body.length, 1000);
      assert.equal(r.trailers?.['x-echo-trailer'], 'done', `trailers: ${JSON.stringify(r.trailers)}`);
    } finally {
      s.close();
    }
  });

  test('nghttp -v: 200 from the upstream, and 404 no_route as JSON for an unmatched path', async () => {
    const ok = await run('nghttp', ['-v', `${base}/h2/nghttp?q=1`], { timeoutMs: 20_000 });
    assert.equal(ok.code, 0, ok.stdout.slice(-2000) + ok.stderr);
    assert.match(ok.stdout, /recv SETTINGS frame[\s\S]*SETTINGS_MAX_CONCURRENT_STREAMS\(0x03\):100/);
    assert.match(ok.stdout, /SETTINGS_INITIAL_WINDOW_SIZE\(0x04\):262144/);
    assert.match(ok.stdout, /SETTINGS_MAX_HEADER_LIST_SIZE\(0x06\):65536/);
    assert.match(ok.stdout, /SETTINGS_ENABLE_PUSH\(0x02\):0/);
    assert.match(ok.stdout, /recv \(stream_id=\d+\) :status: 200/);
    const echo = JSON.parse(/(\{"method".*?\})(?=\[|\s*$)/m.exec(ok.stdout)?.[1] ?? 'null');
    assert.equal(echo?.path, '/h2/nghttp?q=1', ok.stdout.slice(-1500));
    assert.match(echo.headers['user-agent'], /^nghttp2\//);

    const nf = await run('nghttp', ['-v', `${base}/nowhere/at/all`], { timeoutMs: 20_000 });
    assert.equal(nf.code, 0, nf.stdout.slice(-2000) + nf.stderr);
    assert.match(nf.stdout, /recv \(stream_id=\d+\) :status: 404/);
    assert.match(nf.stdout, /recv \(stream_id=\d+\) content-type: application\/json/);
    const rid = /recv \(stream_id=\d+\) x-request-id: (\S+)/.exec(nf.stdout)?.[1];
    assert.ok(rid, 'no x-request-id on the 404');
    const body = JSON.parse(/(\{"status":404.*?\})/.exec(nf.stdout)?.[1] ?? 'null');
    assert.equal(body?.status, 404);
    assert.equal(body.error, 'no_route');
    assert.equal(typeof body.message, 'string');
    assert.equal(body.request_id, rid);
  });

  test('nghttp -n -s: several concurrent streams on one connection all succeed', async () => {
    const urls = Array.from({ length: 8 }, (_, i) => `${base}/h2/multi/${i}`);
    const r = await run('nghttp', ['-n', '-s', '-m', '4', ...urls], { timeoutMs: 20_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    // nghttp -s prints one line per request: "+...ms  ...  200  ... /h2/multi/N"
    const lines = r.stdout.split('\n').filter((l) => /\/h2\/multi\/\d/.test(l));
    assert.equal(lines.length, 32, r.stdout);
    assert.ok(lines.every((l) => /\s200\s/.test(l)), r.stdout);
  });

  test('a gRPC request with no route: trailers-only response with grpc-status 12', async () => {
    const s = await connectH2(port);
    try {
      const r = await h2request(s, {
        ':method': 'POST', ':path': '/portcullis.test.v1.Nope/Call', 'content-type': 'application/grpc', te: 'trailers',
      }, Buffer.from([0, 0, 0, 0, 0]));
      assert.equal(r.status, 200, JSON.stringify(r));
      assert.equal(r.body.length, 0);
      // Trailers-only: grpc-status is in the (only) HEADERS frame.
      const status = r.headers?.['grpc-status'] ?? r.trailers?.['grpc-status'];
      assert.equal(status, '12', JSON.stringify({ headers: r.headers, trailers: r.trailers }));
      assert.equal(r.headers['content-type'], 'application/grpc');
    } finally {
      s.close();
    }
  });

  test('HTTP/1.1 still works on the same listener (to an HTTP/1.1 upstream)', async () => {
    const before = h1up.requests.length;
    const r = await httpRequest({ port, path: '/h1/plain?v=1' });
    assert.equal(r.status, 200);
    assert.equal(r.httpVersion, '1.1');
    assert.equal(r.json().name, 'h1');
    assert.equal(r.json().url, '/h1/plain?v=1');
    assert.ok(r.headers['x-request-id']);
    const c = await curl(['--http1.1', '-s', '-o', '/dev/null', '-w', '%{http_code} %{http_version}', `${base}/h1/curl`]);
    assert.equal(c.code, 0, c.stderr);
    assert.equal(c.stdout, '200 1.1');
    assert.equal(h1up.requests.length, before + 2);
  });

  test('HTTP/1.1 to an h2c upstream: GET, a 5 MiB upload and a 20 MiB download relayed', async () => {
    const get = await curl(['--http1.1', '-i', `${base}/h2/from-h1?q=2`]);
    assert.equal(get.code, 0, get.stderr);
    const res = parseCurlHead(get.stdout);
    assert.equal(res.status, 200, get.stdout.slice(0, 500));
    const echo = JSON.parse(res.body);
    assert.equal(echo.method, 'GET');
    assert.equal(echo.path, '/h2/from-h1?q=2');
    assert.equal(res.headers['x-request-id'], echo.headers['x-request-id']);

    const file = path.join(dir, 'upload-h1-to-h2.bin');
    const payload = crypto.randomBytes(5 * 1024 * 1024);
    fs.writeFileSync(file, payload);
    for (const extra of [[], ['-H', 'transfer-encoding: chunked']]) {
      const up = await curl(['--http1.1', '-i', '--max-time', '60', ...extra,
        '-H', 'content-type: application/octet-stream', '--data-binary', `@${file}`, `${base}/h2/upload-h1`]);
      assert.equal(up.code, 0, up.stderr);
      // curl sends Expect: 100-continue for a large body: the gateway's 100 comes first.
      assert.match(up.stdout, /^HTTP\/1\.1 100 Continue\r?\n\r?\n/);
      const upRes = parseCurlHead(up.stdout.replace(/^HTTP\/1\.1 100 Continue\r?\n\r?\n/, ''));
      assert.equal(upRes.status, 200, up.stdout.slice(0, 500));
      const upEcho = JSON.parse(upRes.body);
      assert.equal(upEcho.bodyLength, payload.length, `upload ${extra.join(' ')}`);
      assert.equal(upEcho.bodySha256, crypto.createHash('sha256').update(payload).digest('hex'));
    }

    const n = 20 * 1024 * 1024;
    const out = path.join(dir, 'download-h1-from-h2.bin');
    const down = await curl(['--http1.1', '--max-time', '60', '-o', out,
      '-w', '%{http_code} %{size_download} %{http_version}', `${base}/h2/big-h1?size=${n}`]);
    assert.equal(down.code, 0, down.stderr);
    assert.equal(down.stdout, `200 ${n} 1.1`);
    const got = fs.readFileSync(out);
    assert.equal(crypto.createHash('sha256').update(got).digest('hex'), patternSha256(n));
  });

  test('HTTP/2 to an HTTP/1.1 upstream: GET, a 5 MiB upload and a 20 MiB chunked download relayed', async () => {
    const get = await curl(['--http2-prior-knowledge', '-i', `${base}/h1/from-h2?q=1`]);
    assert.equal(get.code, 0, get.stderr);
    const res = parseCurlHead(get.stdout);
    assert.equal(res.status, 200, get.stdout.slice(0, 500));
    const echo = JSON.parse(res.body);
    assert.equal(echo.method, 'GET');
    assert.equal(echo.url, '/h1/from-h2?q=1');
    assert.ok(echo.headers['x-forwarded-for'], 'forwarding headers');
    assert.equal(res.headers['x-request-id'], echo.headers['x-request-id']);

    const file = path.join(dir, 'upload-h1.bin');
    const payload = crypto.randomBytes(5 * 1024 * 1024);
    fs.writeFileSync(file, payload);
    const up = await curl(['--http2-prior-knowledge', '-i', '--max-time', '60',
      '-H', 'content-type: application/octet-stream', '--data-binary', `@${file}`, `${base}/h1/upload?hash=1`]);
    assert.equal(up.code, 0, up.stderr);
    const upRes = parseCurlHead(up.stdout);
    assert.equal(upRes.status, 200, up.stdout.slice(0, 500));
    const upEcho = JSON.parse(upRes.body);
    assert.equal(upEcho.bodyLength, payload.length);
    assert.equal(upEcho.bodySha256, crypto.createHash('sha256').update(payload).digest('hex'));

    const n = 20 * 1024 * 1024;
    const out = path.join(dir, 'download-h1.bin');
    const down = await curl(['--http2-prior-knowledge', '--max-time', '60', '-o', out,
      '-w', '%{http_code} %{size_download} %{http_version}', `${base}/h1/big?stream=${n}&chunked=1`]);
    assert.equal(down.code, 0, down.stderr);
    assert.equal(down.stdout, `200 ${n} 2`);
    assert.equal(fs.statSync(out).size, n);
  });

  test('the access log and metrics cover HTTP/2 requests', async () => {
    const r = await curl(['--http2-prior-knowledge', '-s', '-o', '/dev/null', '-w', '%{http_code}',
      '-A', 'h2-accesslog-probe', `${base}/h2/logged`]);
    assert.equal(r.stdout, '200');
    const line = await eventually(() => gw.accessLog().find((e) => e.user_agent === 'h2-accesslog-probe'),
      { timeoutMs: 5000, message: 'access log line of the HTTP/2 request' });
    assert.equal(line.route, 'h2');
    assert.equal(line.method, 'GET');
    assert.equal(line.path, '/h2/logged');
    assert.equal(line.status, 200);
    assert.equal(line.decision, 'allow');
    assert.equal(line.upstream, 'h2up');
    assert.equal(line.upstream_address, h2up.address);
    assert.match(line.request_id, /\S/);
    const notFound = gw.accessLog().filter((e) => e.path === '/nowhere/at/all');
    assert.ok(notFound.length >= 1 && notFound.every((e) => e.status === 404 && e.error === 'no_route'), JSON.stringify(notFound));
    const text = await fetchMetrics(gw);
    const h2Requests = gw.accessLog().filter((e) => e.route === 'h2').length;
    assert.ok(h2Requests >= 6, `only ${h2Requests} h2 access log lines`);
    assert.equal(metricSum(text, 'portcullis_requests_total', { route: 'h2' }), h2Requests);
    const h1Lines = gw.accessLog().filter((e) => e.route === 'h1');
    assert.equal(metricSum(text, 'portcullis_requests_total', { route: 'h1' }), h1Lines.length, 'h1 route: metrics and access log agree');
  });
});

// ---------------------------------------------------------------------------------------

describe('HTTP/2 abuse: Rapid Reset, oversized headers, CONTINUATION flood', { timeout: 180_000 }, () => {
  const cleanup = cleanupList();
  let h2up;
  let h1up;
  let gw;
  let port;

  before(async () => {
    h2up = await startH2Upstream();
    cleanup.add(() => h2up.close());
    h1up = await startUpstream({ name: 'h1' });
    cleanup.add(() => h1up.close());
    const { config, ports } = await h2Config(h2up, h1up);
    gw = await startGateway({ config });
    cleanup.add(() => gw.stop());
    port = ports.plain;
  });

  after(() => cleanup.run());

  async function healthy() {
    const s = await connectH2(port);
    try {
      const r = await h2request(s, { ':path': '/h2/health' });
      assert.equal(r.status, 200, `gateway unhealthy: ${JSON.stringify(r)}`);
      assert.equal(JSON.parse(r.body).path, '/h2/health');
    } finally {
      s.close();
    }
    assert.equal(gw.exitInfo(), null, 'the gateway exited');
  }

  test('Rapid Reset: opening and cancelling streams in a loop gets GOAWAY ENHANCE_YOUR_CALM; the gateway stays healthy and bounded', async () => {
    await healthy();
    const rssBefore = gw.rssKiB();
    for (let round = 0; round < 3; round++) {
      const s = await connectH2(port);
      let goaway = null;
      s.on('goaway', (errorCode, lastStreamID) => { goaway ??= { errorCode, lastStreamID }; });
      let opened = 0;
      for (let i = 0; i < 1000; i++) {
        if (goaway || s.closed || s.destroyed) break;
        let req;
        try {
          // delay: the upstream would hold each stream 2 s; the gateway must reset them.
          req = s.request({ ':path': `/h2/rapid?delay=2000&i=${i}` });
        } catch {
          break; // the session went away under us
        }
        req.on('error', () => {});
        req.close(NGHTTP2_CANCEL);
        opened += 1;
        // Let the frames go out (and the GOAWAY come in) now and then.
        if (i % 50 === 49) await new Promise((r) => setImmediate(r));
      }
      const closed = await sessionClosed(s, 10_000);
      if (!s.destroyed) s.destroy();
      assert.ok(goaway, `round ${round}: no GOAWAY after ${opened} reset streams`);
      assert.equal(goaway.errorCode, NGHTTP2_ENHANCE_YOUR_CALM, `round ${round}: GOAWAY error code`);
      assert.equal(goaway.errorCode, 11);
      assert.ok(closed, `round ${round}: the session was not closed after the GOAWAY`);
      assert.ok(opened < 1000, `round ${round}: all ${opened} streams went out before the GOAWAY`);
      assert.ok(goaway.lastStreamID < 2 * opened + 1, `round ${round}: GOAWAY last stream ${goaway.lastStreamID} after ${opened} streams`);
    }
    await gw.waitForLog(/reset too many streams/);
    // The upstream streams opened for cancelled client streams were reset, not left hanging.
    await eventually(() => h2up.openStreams() === 0,
      { timeoutMs: 5000, message: `upstream streams closed (open: ${h2up.openStreams()})` });
    await healthy();
    const rssAfter = gw.rssKiB();
    const growth = rssAfter - rssBefore;
    assert.ok(growth < 64 * 1024, `RSS grew by ${growth} KiB (${rssBefore} -> ${rssAfter}); VmHWM ${gw.hwmKiB()} KiB`);
  });

  test('a 100 KiB header value: 431 header_too_large on that stream, the connection and the gateway carry on', async () => {
    // node's client refuses header blocks > 64 KiB by default; 100 KiB of 'a' Huffman-codes
    // to ~63 KiB on the wire, but decodes to 100 KiB, over the listener's 64 KiB limit.
    const s = await connectH2(port, { maxSendHeaderBlockLength: 1 << 20 });
    try {
      const big = await h2request(s, { ':path': '/h2/bighdr', 'x-big': 'a'.repeat(100 * 1024) });
      assert.ok(big.status === 431 || big.rstCode !== undefined, JSON.stringify(big).slice(0, 300));
      assert.equal(big.status, 431, JSON.stringify(big).slice(0, 300));
      const body = JSON.parse(big.body);
      assert.equal(body.error, 'header_too_large');
      assert.equal(big.headers['x-request-id'], body.request_id);
      assert.ok(!h2up.requests.some((r) => r.path === '/h2/bighdr'), 'the oversized request reached the upstream');
      // A stream error, not a connection error: the same session serves the next request.
      const next = await h2request(s, { ':path': '/h2/after-431' });
      assert.equal(next.status, 200, JSON.stringify(next).slice(0, 300));
    } finally {
      s.close();
    }
    await healthy();
  });

  test('one header field over 64 KiB (raw, no Huffman): the connection is refused with GOAWAY, the gateway carries on', async () => {
    // 100 KiB literal split over HEADERS + 6 CONTINUATION frames (16 KiB each). nghttp2's HPACK
    // decoder refuses a single field this long: a connection error (COMPRESSION_ERROR).
    const block = Buffer.concat([requestHead('/h2/raw-big'), literal('x-big', 'b'.repeat(100 * 1024))]);
    const parts = [];
    for (let off = 0; off < block.length; off += 16384) parts.push(block.subarray(off, off + 16384));
    const frames = parts.map((p, i) => frame(i === 0 ? FRAME.HEADERS : FRAME.CONTINUATION,
      (i === 0 ? FLAG.END_STREAM : 0) | (i === parts.length - 1 ? FLAG.END_HEADERS : 0), 1, p));
    const r = await rawH2(port, Buffer.concat(frames));
    const got = describeFrames(r.frames);
    const goaway = r.frames.find((f) => f.type === FRAME.GOAWAY);
    const rst = r.frames.find((f) => f.type === FRAME.RST_STREAM && f.streamId === 1);
    const answered = r.frames.find((f) => f.type === FRAME.HEADERS && f.streamId === 1);
    assert.ok(goaway || rst || answered, `no GOAWAY, RST_STREAM or response: ${got}`);
    assert.ok(!h2up.requests.some((x) => x.path === '/h2/raw-big'), 'the oversized request reached the upstream');
    await healthy();
  });

  test('a header block in 16 CONTINUATION frames (the documented maximum) is served', async () => {
    // Found by this test and fixed: Debian's libnghttp2 (CVE-2024-28182 backport) caps
    // CONTINUATIONs at 8 by default; the gateway now sets the library's cap to its own (16).
    const chunks = [frame(FRAME.HEADERS, FLAG.END_STREAM, 1, requestHead('/h2/cont16'))];
    for (let i = 0; i < 16; i++) {
      chunks.push(frame(FRAME.CONTINUATION, i === 15 ? FLAG.END_HEADERS : 0, 1, literal(`x-c${i}`, 'v')));
    }
    const r = await rawH2(port, Buffer.concat(chunks), 2000);
    const got = describeFrames(r.frames);
    const data = r.frames.filter((f) => f.type === FRAME.DATA && f.streamId === 1);
    assert.ok(r.frames.some((f) => f.type === FRAME.HEADERS && f.streamId === 1), `no response; frames: ${got}; closed: ${r.closed}`);
    const echo = JSON.parse(Buffer.concat(data.map((f) => f.payload)).toString());
    assert.equal(echo.path, '/h2/cont16');
    assert.equal(echo.headers['x-c15'], 'v');
    await healthy();
  });

  test('a CONTINUATION flood (40 frames in one header block) ends the connection with a GOAWAY', async () => {
    // Found by this test and fixed: a fatal nghttp2_session_mem_recv error queued no GOAWAY
    // by itself (the connection just closed); the pump now terminates the session first.
    const chunks = [frame(FRAME.HEADERS, FLAG.END_STREAM, 1, requestHead('/h2/flood'))];
    for (let i = 0; i < 40; i++) chunks.push(frame(FRAME.CONTINUATION, 0, 1, literal(`x-f${i}`, 'v')));
    const r = await rawH2(port, Buffer.concat(chunks), 5000);
    const got = describeFrames(r.frames);
    assert.ok(r.closed, `the connection stayed open; frames: ${got}`);
    assert.ok(!r.frames.some((f) => f.type === FRAME.HEADERS && f.streamId === 1), `the flooded request was answered: ${got}`);
    assert.ok(!h2up.requests.some((x) => x.path === '/h2/flood'), 'the flooded request reached the upstream');
    await healthy();
    assert.ok(r.frames.some((f) => f.type === FRAME.GOAWAY), `closed without a GOAWAY; frames: ${got}`);
  });
});

// ---------------------------------------------------------------------------------------

describe('HTTP/2 and drain (SIGTERM)', { timeout: 120_000 }, () => {
  const cleanup = cleanupList();
  let h2up;
  let h1up;

  before(async () => {
    h2up = await startH2Upstream();
    cleanup.add(() => h2up.close());
    h1up = await startUpstream({ name: 'h1' });
    cleanup.add(() => h1up.close());
  });

  after(() => cleanup.run());

  test('a plaintext connection that sends nothing, or only part of the preface, is closed after header_timeout', async () => {
    const { config, ports } = await h2Config(h2up, h1up);
    config.listeners[0].limits = { ...(config.listeners[0].limits ?? {}), header_timeout: '1s' };
    const gw = await startGateway({ config });
    cleanup.add(() => gw.stop());
    for (const first of ['', 'PRI * HTTP/2.0\r\n']) {
      const conn = await rawConnect(ports.plain);
      try {
        if (first) await conn.write(first);
        assert.ok(await conn.waitClose(10_000), `connection still open (sent ${JSON.stringify(first)})`);
        assert.equal(conn.text(), '', 'nothing is answered to a client that never sent a request');
      } finally {
        conn.destroy();
      }
    }
    // The listener still serves both protocols afterwards.
    const r = await curl(['--http2-prior-knowledge', '-s', '-o', '/dev/null', '-w', '%{http_code}', `http://127.0.0.1:${ports.plain}/h2/after-silent`]);
    assert.equal(r.stdout, '200');
  });

  test('a connection idle for the listener idle_timeout gets GOAWAY (NO_ERROR) and is closed; a busy one is not', async () => {
    const { config, ports } = await h2Config(h2up, h1up);
    config.listeners[0].limits = { ...(config.listeners[0].limits ?? {}), idle_timeout: '1s' };
    const gw = await startGateway({ config });
    cleanup.add(() => gw.stop());
    const s = await connectH2(ports.plain);
    const goaway = new Promise((resolve) => s.once('goaway', (errorCode) => resolve(errorCode)));
    const closed = new Promise((resolve) => s.once('close', resolve));
    // A stream longer than the idle timeout keeps the connection open.
    const r = await h2request(s, { ':path': '/h2/slow?delay=1500&case=idle' });
    assert.equal(r.status, 200, 'a stream outliving idle_timeout was cut');
    assert.equal(await withTimeout(goaway, 5000, 'GOAWAY on idle'), http2.constants.NGHTTP2_NO_ERROR);
    await withTimeout(closed, 5000, 'connection closed after the idle GOAWAY');
  });

  test('an open idle HTTP/2 connection gets GOAWAY (NO_ERROR) on SIGTERM and the gateway exits 0', async () => {
    const { config, ports } = await h2Config(h2up, h1up);
    const gw = await startGateway({ config });
    cleanup.add(() => gw.stop('SIGKILL'));
    const s = await connectH2(ports.plain);
    try {
      const r = await h2request(s, { ':path': '/h2/before-drain' });
      assert.equal(r.status, 200);
      const goaway = new Promise((resolve) => s.once('goaway', (errorCode, lastStreamID) => resolve({ errorCode, lastStreamID })));
      gw.signal('SIGTERM');
      const g = await withTimeout(goaway, 5000, 'GOAWAY after SIGTERM');
      assert.equal(g.errorCode, http2.constants.NGHTTP2_NO_ERROR);
      assert.equal(g.lastStreamID, 1, 'last stream processed: the one request');
      assert.ok(await sessionClosed(s, 5000), 'the session did not close after the GOAWAY');
      const exit = await withTimeout(gw.exited, 10_000, 'gateway exit');
      assert.equal(exit.code, 0, JSON.stringify(exit));
    } finally {
      if (!s.destroyed) s.destroy();
    }
  });

  test('a stream in flight when SIGTERM arrives still completes (drain_timeout 5 s)', async () => {
    // Found by this test and fixed: drain used to terminate busy upstream sessions, so the
    // in-flight stream was answered 502 upstream_reset (HTTP/1.1 only closes idle ones).
    const { config, ports } = await h2Config(h2up, h1up);
    const gw = await startGateway({ config });
    cleanup.add(() => gw.stop('SIGKILL'));
    const s = await connectH2(ports.plain);
    try {
      const goaway = new Promise((resolve) => s.once('goaway', (errorCode) => resolve(errorCode)));
      const inflight = h2request(s, { ':path': '/h2/slow?delay=1500' });
      await eventually(() => h2up.requests.some((r) => r.path === '/h2/slow?delay=1500'),
        { timeoutMs: 5000, message: 'the slow request reached the upstream' });
      gw.signal('SIGTERM');
      assert.equal(await withTimeout(goaway, 5000, 'GOAWAY after SIGTERM'), http2.constants.NGHTTP2_NO_ERROR);
      const r = await inflight;
      assert.equal(r.status, 200, `in-flight stream: ${r.status ?? r.error} ${r.body?.toString().slice(0, 200) ?? ''}`);
      assert.equal(JSON.parse(r.body).path, '/h2/slow?delay=1500');
      const exit = await withTimeout(gw.exited, 10_000, 'gateway exit');
      assert.equal(exit.code, 0);
    } finally {
      if (!s.destroyed) s.destroy();
    }
  });
});

describe('HTTP/2 client abandoning a stream relayed to an HTTP/1.1 upstream', { timeout: 60_000 }, () => {
  const cleanup = cleanupList();
  after(() => cleanup.run());

  test('RST_STREAM and a closed connection both close the upstream request at once, not at its timeout', async () => {
    // An HTTP/1.1 upstream that reads the request and never answers; it records when the
    // gateway closes each connection. The request timeout (60 s) is far beyond the test's.
    const sockets = [];
    const held = net.createServer((sock) => {
      const entry = { sock, data: '', closed: false };
      sockets.push(entry);
      sock.setEncoding('latin1');
      sock.on('data', (d) => { entry.data += d; });
      sock.on('error', () => {});
      sock.on('close', () => { entry.closed = true; });
    });
    await new Promise((resolve) => held.listen(0, '127.0.0.1', resolve));
    cleanup.add(() => new Promise((resolve) => {
      for (const e of sockets) e.sock.destroy();
      held.close(() => resolve());
    }));
    const { config, ports } = await basicConfig({
      upstreams: [{ name: 'held', endpoints: [`127.0.0.1:${held.address().port}`],
        timeouts: { request: '60s', idle: '60s' } }],
      routes: [{ name: 'held', match: { path_prefix: '/' }, upstream: 'held', auth: 'public' }],
    });
    const gw = await startGateway({ config });
    cleanup.add(() => gw.stop('SIGKILL'));

    // 1. The client resets the stream.
    const s = await connectH2(ports.plain);
    cleanup.add(() => s.destroy());
    const req = s.request({ ':method': 'GET', ':path': '/cancel-me' });
    req.on('error', () => {});
    await eventually(() => sockets.some((e) => e.data.includes('GET /cancel-me')),
      { message: 'the request reached the upstream' });
    req.close(NGHTTP2_CANCEL);
    const first = sockets.find((e) => e.data.includes('GET /cancel-me'));
    await eventually(() => first.closed, { timeoutMs: 5000, message: 'upstream connection closed after RST_STREAM' });

    // 2. The client's connection goes away.
    const s2 = await connectH2(ports.plain);
    const req2 = s2.request({ ':method': 'GET', ':path': '/drop-me' });
    req2.on('error', () => {});
    await eventually(() => sockets.some((e) => e.data.includes('GET /drop-me')),
      { message: 'the second request reached the upstream' });
    s2.destroy();
    const second = sockets.find((e) => e.data.includes('GET /drop-me'));
    await eventually(() => second.closed, { timeoutMs: 5000, message: 'upstream connection closed after the client left' });

    const log = await eventually(() => {
      const lines = gw.accessLog().filter((e) => e.path === '/cancel-me' || e.path === '/drop-me');
      return lines.length === 2 ? lines : null;
    }, { message: 'both abandoned requests in the access log' });
    for (const e of log) assert.deepEqual([e.status, e.error], [499, 'client_aborted'], JSON.stringify(e));
  });
});
