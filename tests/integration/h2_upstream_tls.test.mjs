// HTTP/2 over TLS to upstreams (`protocol: h2`) and HTTP/2 PING keepalive, end to end with
// real peers on loopback. Covered:
// - a node:http2 secure upstream (ALPN h2, dev certificate): GET from curl --http1.1 and from
//   curl --http2-prior-knowledge through the plaintext listener (the upstream sees
//   :scheme https and the path), a 5 MiB upload checked by sha256 at the upstream (both client
//   protocols), a 20 MiB download checked by sha256, response trailers relayed to a node:http2
//   client, portcullis_upstream_connections_active counting the open h2 session, the access
//   log naming the upstream;
// - gRPC (grpc-js server with ServerCredentials.createSsl) through the h2c listener: unary and
//   server streaming;
// - certificate checks: a certificate from a foreign CA and a server_name mismatch
//   (502 upstream_connect_failed as JSON, gRPC 14, the handshake log line, the `tls` error
//   metric, nothing reaches the upstream); server_name "localhost" verifies; min_version 1.3
//   against a TLS 1.2-only upstream fails;
// - ALPN: an HTTPS upstream without ALPN (the gateway logs "did not choose h2", metric kind
//   protocol) and one that insists on http/1.1 (handshake refused by the server): both 502;
// - upstream mTLS: without a client certificate 502 (TLS 1.3: alert after the handshake;
//   TLS 1.2: failed handshake), with tls.cert/key the upstream sees the dev client certificate;
// - config errors: `tls` on an h2c and an http1 upstream, cert without key or key without cert
//   (`config check` exits 1 with FILE:LINE:COLUMN, `serve` refuses to start);
// - upstream PING: a raw h2c peer that never answers gets a PING, the session is closed, the
//   request ends 502 (gRPC 14), the keepalive log line, connections_active back to 0, and the
//   close is announced with a GOAWAY; a well-behaved node:http2 upstream keeps serving a 1.5 s
//   request and keeps its session;
// - downstream PING (listener limits): a raw client that sends a request and then nothing
//   receives a PING and is closed, with a GOAWAY first; a node:http2 client (which ACKs
//   PINGs) keeps its connection through a 1.5 s request and an idle pause.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import grpc from '@grpc/grpc-js';
import {
  startGateway, basicConfig, eventually, cleanupList, fetchMetrics, metricSum, curl, tempDir,
  rmTemp, httpRequest, rawConnect, withTimeout, makeCerts, checkGatewayError, runGateway,
  writeConfig, freePorts, sleep, writePattern,
} from '../support/harness.mjs';
import { startH2Upstream } from '../support/h2_upstream.mjs';
import {
  parseCurlHead, connectH2, h2request, PREFACE, FRAME, FLAG, frame, parseFrames, parseFramesWithRest,
  describeFrames, patternSha256,
} from '../support/h2_client.mjs';
import { startGrpcServer } from '../support/grpc/server.mjs';
import { makeClient, unary, serverStream, Status } from '../support/grpc/client.mjs';

const ECHO = 'portcullis.test.v1.Echo';
const ADMIN = 'portcullis.test.v1.Admin';

// ---------------------------------------------------------------------------------------
// Helpers

/**
 * A node:http2 secure (TLS, ALPN h2 only) echo upstream, like tests/support/h2_upstream.mjs:
 * every stream gets 200 JSON {method, path, authority, scheme, headers, bodyLength,
 * bodySha256, alpn, peerCert}; ?size=N answers N pattern bytes, ?trailer=1 adds a trailer
 * `x-echo-trailer: done`, ?delay=MS waits. tls: {cert, key, ca, requestCert,
 * rejectUnauthorized, maxVersion}. Records requests, handshakes and TLS client errors.
 */
async function startTlsH2Upstream({ cert, key, ...tlsOptions }) {
  const server = http2.createSecureServer({
    cert: fs.readFileSync(cert), key: fs.readFileSync(key),
    ...(tlsOptions.ca ? { ca: fs.readFileSync(tlsOptions.ca) } : {}),
    ...(tlsOptions.requestCert ? { requestCert: true, rejectUnauthorized: tlsOptions.rejectUnauthorized ?? true } : {}),
    ...(tlsOptions.maxVersion ? { maxVersion: tlsOptions.maxVersion } : {}),
    settings: { initialWindowSize: 1024 * 1024 },
  });
  const requests = [];
  const tlsErrors = [];
  const sessions = new Set();
  let handshakes = 0;
  server.on('secureConnection', () => { handshakes += 1; });
  server.on('tlsClientError', (e) => { tlsErrors.push(e.code ?? e.message); });
  server.on('session', (s) => { sessions.add(s); s.on('close', () => sessions.delete(s)); s.on('error', () => {}); });
  server.on('stream', (stream, headers) => {
    const rawPath = headers[':path'] ?? '';
    const url = new URL(rawPath, 'https://upstream.invalid');
    const plain = {};
    for (const [k, v] of Object.entries(headers)) if (!k.startsWith(':')) plain[k] = v;
    const socket = stream.session.socket;
    const peer = socket.getPeerCertificate?.() ?? {};
    const entry = {
      method: headers[':method'], path: rawPath, authority: headers[':authority'], scheme: headers[':scheme'],
      headers: plain, bodyLength: 0, alpn: socket.alpnProtocol,
      peerCert: peer && peer.subject ? { cn: peer.subject.CN, issuer: peer.issuer?.CN, san: peer.subjectaltname } : null,
    };
    requests.push(entry);
    const hash = crypto.createHash('sha256');
    stream.on('data', (c) => { entry.bodyLength += c.length; hash.update(c); });
    stream.on('error', () => {});
    stream.on('end', () => {
      const delay = Number(url.searchParams.get('delay') ?? 0);
      if (delay > 0) setTimeout(answer, delay); else answer();
    });
    const answer = () => {
      if (stream.destroyed || stream.closed) return;
      const wantTrailer = url.searchParams.get('trailer') === '1';
      const size = url.searchParams.get('size');
      const respond = (h) => stream.respond(h, wantTrailer ? { waitForTrailers: true } : {});
      if (wantTrailer) stream.on('wantTrailers', () => stream.sendTrailers({ 'x-echo-trailer': 'done' }));
      if (size !== null) {
        const n = Number(size);
        respond({ ':status': 200, 'content-type': 'application/octet-stream', 'content-length': String(n) });
        writePattern(stream, n).then(() => stream.end(), () => {});
        return;
      }
      const body = Buffer.from(JSON.stringify({ ...entry, bodySha256: hash.digest('hex') }));
      respond({ ':status': 200, 'content-type': 'application/json', 'content-length': String(body.length) });
      stream.end(body);
    };
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    port,
    address: `127.0.0.1:${port}`,
    requests,
    tlsErrors,
    handshakes: () => handshakes,
    openSessions: () => sessions.size,
    close() {
      return new Promise((resolve) => {
        for (const s of sessions) s.destroy();
        const t = setTimeout(resolve, 2000);
        server.close(() => { clearTimeout(t); resolve(); });
      });
    },
  };
}

/**
 * A node:https (HTTP/1.1 only) upstream. alpn: the ALPNProtocols option (undefined: node's
 * default ['http/1.1'], which refuses a client offering only h2; []: no ALPN at all, the
 * handshake completes without a protocol). Records requests and completed handshakes.
 */
async function startHttpsUpstream({ cert, key, alpn }) {
  const options = { cert: fs.readFileSync(cert), key: fs.readFileSync(key) };
  if (alpn !== undefined) options.ALPNProtocols = alpn;
  const requests = [];
  const tlsErrors = [];
  let handshakes = 0;
  const server = https.createServer(options, (req, res) => {
    requests.push({ method: req.method, url: req.url });
    res.end('http/1.1 only');
  });
  const sockets = new Set();
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  server.on('secureConnection', () => { handshakes += 1; });
  server.on('tlsClientError', (e) => { tlsErrors.push(e.code ?? e.message); });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    port,
    address: `127.0.0.1:${port}`,
    requests,
    tlsErrors,
    handshakes: () => handshakes,
    close() {
      return new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        const t = setTimeout(resolve, 2000);
        server.close(() => { clearTimeout(t); resolve(); });
      });
    },
  };
}

/**
 * A raw h2c "upstream" that speaks just enough HTTP/2: it reads the client preface, sends an
 * empty SETTINGS frame, ACKs the client's SETTINGS, and then never sends anything else (no
 * PING ACK, no response). Records every frame it receives (f.conn: the connection's number,
 * 1, 2, ...) and when each connection closed (closedAt[conn] = frames.length at that moment).
 */
async function startSilentH2Server() {
  const frames = [];
  const closedAt = {};
  const sockets = new Set();
  let connections = 0;
  let badPreface = 0;
  const server = net.createServer((sock) => {
    connections += 1;
    const conn = connections;
    sockets.add(sock);
    sock.on('error', () => {});
    sock.on('close', () => { sockets.delete(sock); closedAt[conn] = frames.length; });
    let buf = Buffer.alloc(0);
    let prefaceSeen = false;
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!prefaceSeen) {
        if (buf.length < PREFACE.length) return;
        if (!buf.subarray(0, PREFACE.length).equals(PREFACE)) { badPreface += 1; sock.destroy(); return; }
        prefaceSeen = true;
        buf = buf.subarray(PREFACE.length);
        sock.write(frame(FRAME.SETTINGS, 0, 0));
      }
      const { frames: got, rest } = parseFramesWithRest(buf);
      buf = Buffer.from(rest);
      for (const f of got) {
        f.conn = conn;
        frames.push(f);
        if (f.type === FRAME.SETTINGS && !(f.flags & FLAG.ACK)) sock.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
      }
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    port,
    address: `127.0.0.1:${port}`,
    frames,
    closedAt,
    connections: () => connections,
    openConnections: () => sockets.size,
    badPreface: () => badPreface,
    close() {
      return new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      });
    },
  };
}

/** A TCP server that accepts connections and holds them without a byte in answer. */
async function startBlackhole() {
  const held = new Set();
  let connections = 0;
  let received = 0;
  const server = net.createServer((sock) => {
    connections += 1;
    held.add(sock);
    sock.on('data', (d) => { received += d.length; });
    sock.on('error', () => {});
    sock.on('close', () => held.delete(sock));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    address: `127.0.0.1:${port}`,
    connections: () => connections,
    bytesReceived: () => received,
    close() {
      return new Promise((resolve) => {
        for (const s of held) s.destroy();
        server.close(() => resolve());
      });
    },
  };
}

/** The gateway's stderr as one string. */
function stderrText(gw) {
  return gw.logs().stderr.join('\n');
}

/** A gRPC unary call through grpc-js' generic API to any path (no response decoding). */
function rawGrpcCall(client, pathname) {
  return new Promise((resolve) => {
    client.makeUnaryRequest(pathname, (x) => x, (x) => x, Buffer.alloc(0), new grpc.Metadata(),
      { deadline: Date.now() + 8000 }, (err) => resolve(err ?? { code: Status.OK }));
  });
}

// Upstream settings for the ones that must fail: no retry, no ejection (each request is one
// fresh attempt and the answer stays 502, never 503).
const FAILING = { retries: 0, ejection: { consecutive_failures: 0 } };

// ---------------------------------------------------------------------------------------

describe('protocol: h2 (HTTP/2 over TLS) to upstreams', { timeout: 180_000 }, () => {
  const cleanup = cleanupList();
  let dir;
  let certs;
  let foreign;
  let secure;
  let foreignUp;
  let tls12Up;
  let noAlpnUp;
  let strictH1Up;
  let mtlsUp;
  let mtls12Up;
  let grpcUp;
  let gw;
  let port;
  let base;
  let address;

  before(async () => {
    dir = tempDir('portcullis-h2tls-');
    cleanup.add(() => rmTemp(dir));
    certs = await makeCerts(path.join(dir, 'ca'));
    foreign = await makeCerts(path.join(dir, 'foreign'));
    secure = await startTlsH2Upstream({ cert: certs.cert, key: certs.key });
    cleanup.add(() => secure.close());
    foreignUp = await startTlsH2Upstream({ cert: foreign.cert, key: foreign.key });
    cleanup.add(() => foreignUp.close());
    tls12Up = await startTlsH2Upstream({ cert: certs.cert, key: certs.key, maxVersion: 'TLSv1.2' });
    cleanup.add(() => tls12Up.close());
    noAlpnUp = await startHttpsUpstream({ cert: certs.cert, key: certs.key, alpn: [] });
    cleanup.add(() => noAlpnUp.close());
    strictH1Up = await startHttpsUpstream({ cert: certs.cert, key: certs.key });
    cleanup.add(() => strictH1Up.close());
    mtlsUp = await startTlsH2Upstream({ cert: certs.cert, key: certs.key, ca: certs.ca, requestCert: true, rejectUnauthorized: true });
    cleanup.add(() => mtlsUp.close());
    mtls12Up = await startTlsH2Upstream({ cert: certs.cert, key: certs.key, ca: certs.ca, requestCert: true, rejectUnauthorized: true, maxVersion: 'TLSv1.2' });
    cleanup.add(() => mtls12Up.close());
    grpcUp = await startGrpcServer({
      credentials: grpc.ServerCredentials.createSsl(fs.readFileSync(certs.ca), [{
        cert_chain: fs.readFileSync(certs.cert), private_key: fs.readFileSync(certs.key),
      }]),
    });
    cleanup.add(() => grpcUp.close());

    const ca = certs.ca;
    const h2 = (name, up, tls, extra = {}) => ({ name, protocol: 'h2', endpoints: [up.address], tls, ...extra });
    const route = (name) => ({ name, match: { path_prefix: `/${name}` }, upstream: name, auth: 'public' });
    const { config, ports } = await basicConfig({
      upstreams: [
        h2('secure', secure, { ca }),
        h2('named', secure, { ca, server_name: 'localhost' }),
        h2('misnamed', secure, { ca, server_name: 'wrong.example' }, FAILING),
        h2('wrongca', foreignUp, { ca }, FAILING),
        h2('tls13', tls12Up, { ca, min_version: '1.3' }, FAILING),
        h2('noalpn', noAlpnUp, { ca }, FAILING),
        h2('stricth1', strictH1Up, { ca }, FAILING),
        h2('mtlsanon', mtlsUp, { ca }, FAILING),
        h2('mtls12anon', mtls12Up, { ca }, FAILING),
        h2('mtls', mtlsUp, { ca, cert: certs.clientCert, key: certs.clientKey }),
        h2('grpcs', grpcUp, { ca }),
      ],
      routes: [
        ...['secure', 'named', 'misnamed', 'wrongca', 'tls13', 'noalpn', 'stricth1', 'mtlsanon', 'mtls12anon', 'mtls'].map(route),
        { name: 'grpc-echo', match: { grpc_service: ECHO }, upstream: 'grpcs', auth: 'public' },
        { name: 'grpc-wrongca', match: { grpc_service: ADMIN }, upstream: 'wrongca', auth: 'public' },
      ],
    });
    gw = await startGateway({ config });
    cleanup.add(() => gw.stop());
    port = ports.plain;
    base = `http://127.0.0.1:${port}`;
    address = config.listeners[0].address;
  });

  after(() => cleanup.run());

  test('curl --http1.1 and --http2-prior-knowledge: 200 from the TLS upstream, which saw :scheme https over h2', async () => {
    for (const [flag, version] of [['--http1.1', '1.1'], ['--http2-prior-knowledge', '2']]) {
      const p = `/secure/get?via=${version}&x=two%20words`;
      const r = await curl([flag, '-i', `${base}${p}`]);
      assert.equal(r.code, 0, r.stderr);
      const res = parseCurlHead(r.stdout);
      assert.equal(res.version, version, `curl ${flag} spoke HTTP/${res.version}`);
      assert.equal(res.status, 200, r.stdout.slice(0, 500));
      const echo = JSON.parse(res.body);
      assert.equal(echo.method, 'GET');
      assert.equal(echo.path, p);
      assert.equal(echo.scheme, 'https', 'the gateway must send :scheme https to an h2 upstream');
      assert.equal(echo.alpn, 'h2');
      assert.equal(echo.peerCert, null, 'no client certificate was configured');
      assert.match(echo.headers['x-request-id'] ?? '', /\S/);
      assert.equal(res.headers['x-request-id'], echo.headers['x-request-id']);
      assert.equal(echo.headers['x-forwarded-for'], '127.0.0.1');
    }
    const seen = secure.requests.filter((r) => r.path.startsWith('/secure/get?'));
    assert.deepEqual(seen.map((r) => r.scheme), ['https', 'https']);
  });

  test('a 5 MiB upload arrives complete at the TLS upstream (sha256), from HTTP/1.1 and HTTP/2 clients', async () => {
    const payload = crypto.randomBytes(5 * 1024 * 1024);
    const file = path.join(dir, 'upload.bin');
    fs.writeFileSync(file, payload);
    const want = crypto.createHash('sha256').update(payload).digest('hex');
    for (const flag of ['--http2-prior-knowledge', '--http1.1']) {
      const r = await curl([flag, '-i', '--max-time', '60', '-H', 'content-type: application/octet-stream',
        '--data-binary', `@${file}`, `${base}/secure/upload?flag=${flag}`]);
      assert.equal(r.code, 0, r.stderr);
      const res = parseCurlHead(r.stdout);
      assert.equal(res.status, 200, r.stdout.slice(0, 500));
      const echo = JSON.parse(res.body);
      assert.equal(echo.method, 'POST');
      assert.equal(echo.bodyLength, payload.length, flag);
      assert.equal(echo.bodySha256, want, flag);
    }
  });

  test('a 20 MiB download from the TLS upstream arrives complete (size and sha256)', async () => {
    const n = 20 * 1024 * 1024;
    for (const flag of ['--http2-prior-knowledge', '--http1.1']) {
      const file = path.join(dir, `download${flag}.bin`);
      const r = await curl([flag, '--max-time', '60', '-o', file, '-w', '%{http_code} %{size_download}',
        `${base}/secure/big?size=${n}`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `200 ${n}`, flag);
      const got = fs.readFileSync(file);
      assert.equal(got.length, n);
      assert.equal(crypto.createHash('sha256').update(got).digest('hex'), patternSha256(n), flag);
      fs.rmSync(file);
    }
  });

  test('response trailers from the TLS upstream reach an HTTP/2 client', async () => {
    const s = await connectH2(port);
    try {
      const r = await h2request(s, { ':path': '/secure/trailer?trailer=1&size=1000' });
      assert.equal(r.status, 200, JSON.stringify(r));
      assert.equal(r.body.length, 1000);
      assert.equal(r.trailers?.['x-echo-trailer'], 'done', `trailers: ${JSON.stringify(r.trailers)}`);
    } finally {
      s.close();
    }
  });

  test('portcullis_upstream_connections_active counts the open h2 session', async () => {
    const r = await httpRequest({ port, path: '/secure/active' });
    assert.equal(r.status, 200);
    assert.ok(secure.openSessions() >= 1, 'the upstream closed its sessions');
    const text = await fetchMetrics(gw);
    const active = metricSum(text, 'portcullis_upstream_connections_active', { upstream: 'secure' });
    assert.ok(active >= 1, `connections_active{upstream="secure"} = ${active}`);
    assert.ok(active <= secure.openSessions(), `gauge ${active} > ${secure.openSessions()} sessions open at the upstream`);
  });

  test('gRPC over TLS to a grpc-js server: unary and server streaming through the h2c listener', async () => {
    const client = makeClient(address);
    try {
      const u = await unary(client, { message: 'over tls' }, { deadlineMs: 8000 });
      assert.equal(u.code, Status.OK, `${u.code} ${u.details}`);
      assert.equal(u.reply.message, 'over tls');
      assert.equal(u.headers['x-echo-header'], 'yes');
      assert.equal(u.trailers['x-echo-trailer'], 'yes', JSON.stringify(u.trailers));
      assert.match(u.reply.metadata['x-request-id'] ?? '', /\S/);
      const ss = await serverStream(client, { message: 's', count: 5, delay_ms: 5 }, { deadlineMs: 8000 });
      assert.equal(ss.code, Status.OK, `${ss.code} ${ss.details}`);
      assert.deepEqual(ss.replies.map((x) => x.index), [0, 1, 2, 3, 4]);
      assert.equal(ss.trailers['x-echo-trailer'], 'yes');
    } finally {
      client.close();
    }
    assert.equal(grpcUp.stats.calls['Echo/Unary'], 1);
    assert.equal(grpcUp.stats.calls['Echo/ServerStream'], 1);
  });

  test('an upstream certificate from a foreign CA: 502 upstream_connect_failed, gRPC 14, TLS log line and metric, nothing reaches the upstream', async () => {
    const before = metricSum(await fetchMetrics(gw), 'portcullis_upstream_errors_total', { upstream: 'wrongca', kind: 'tls' });
    const r = await httpRequest({ port, path: '/wrongca/x' });
    checkGatewayError(assert, r, 502, 'upstream_connect_failed');
    const h2r = await curl(['--http2-prior-knowledge', '-i', `${base}/wrongca/y`]);
    const res = parseCurlHead(h2r.stdout);
    assert.equal(res.status, 502, h2r.stdout.slice(0, 400));
    assert.equal(JSON.parse(res.body).error, 'upstream_connect_failed');
    const client = makeClient(address, { service: 'Admin' });
    try {
      const g = await unary(client, { message: 'x' }, { deadlineMs: 8000, method: 'Reset' });
      assert.equal(g.code, Status.UNAVAILABLE, `${g.code} ${g.details}`);
    } finally {
      client.close();
    }
    const log = await gw.waitForLog(/upstream wrongca \(.*\): TLS handshake failed for 127\.0\.0\.1: .*\(certificate: [^)]+\)/);
    assert.match(log, /upstream wrongca .*TLS handshake failed.*certificate: unable to get local issuer certificate/);
    const after = metricSum(await fetchMetrics(gw), 'portcullis_upstream_errors_total', { upstream: 'wrongca', kind: 'tls' });
    assert.ok(after >= before + 3, `tls errors for wrongca: ${before} -> ${after}`);
    assert.equal(foreignUp.requests.length, 0, 'a request reached the upstream with the foreign certificate');
    assert.equal(foreignUp.handshakes(), 0, 'a handshake completed');
    await eventually(() => foreignUp.tlsErrors.length >= 1, { timeoutMs: 5000, message: 'a failed handshake at the foreign-CA upstream (was it contacted?)' });
  });

  test('server_name "wrong.example": 502 and a hostname-mismatch log; server_name "localhost" verifies (200)', async () => {
    const before = metricSum(await fetchMetrics(gw), 'portcullis_upstream_errors_total', { upstream: 'misnamed', kind: 'tls' });
    const bad = await httpRequest({ port, path: '/misnamed/x' });
    checkGatewayError(assert, bad, 502, 'upstream_connect_failed');
    const log = await gw.waitForLog(/upstream misnamed .*TLS handshake failed for wrong\.example: .*certificate: [^)]+\)/);
    assert.match(log, /TLS handshake failed for wrong\.example: .*\(certificate: hostname mismatch\)/);
    const after = metricSum(await fetchMetrics(gw), 'portcullis_upstream_errors_total', { upstream: 'misnamed', kind: 'tls' });
    assert.ok(after > before, `tls errors for misnamed: ${before} -> ${after}`);
    assert.ok(!secure.requests.some((r) => r.path.startsWith('/misnamed')), 'the misnamed request reached the upstream');

    const good = await httpRequest({ port, path: '/named/ok' });
    assert.equal(good.status, 200, good.body);
    const echo = good.json();
    assert.equal(echo.path, '/named/ok');
    assert.equal(echo.scheme, 'https');
  });

  test('tls.min_version "1.3" against an upstream that stops at TLS 1.2: 502 and a handshake log line', async () => {
    const r = await httpRequest({ port, path: '/tls13/x' });
    checkGatewayError(assert, r, 502, 'upstream_connect_failed');
    await gw.waitForLog(/upstream tls13 .*TLS handshake failed/);
    assert.equal(tls12Up.requests.length, 0);
    assert.equal(tls12Up.handshakes(), 0);
  });

  test('an HTTPS upstream without ALPN (HTTP/1.1 only): 502, "did not choose h2" logged, metric kind protocol', async () => {
    const before = metricSum(await fetchMetrics(gw), 'portcullis_upstream_errors_total', { upstream: 'noalpn', kind: 'protocol' });
    const r = await httpRequest({ port, path: '/noalpn/x' });
    checkGatewayError(assert, r, 502, 'upstream_connect_failed');
    await gw.waitForLog(/upstream noalpn .*the server did not choose h2 by ALPN/);
    const after = metricSum(await fetchMetrics(gw), 'portcullis_upstream_errors_total', { upstream: 'noalpn', kind: 'protocol' });
    assert.ok(after > before, `protocol errors for noalpn: ${before} -> ${after}`);
    await eventually(() => noAlpnUp.handshakes() >= 1, { timeoutMs: 5000, message: 'the TLS handshake itself completed' });
    assert.equal(noAlpnUp.requests.length, 0, 'an HTTP/1.1 request reached the upstream');
  });

  test('an HTTPS upstream that insists on ALPN http/1.1 (node:https default): 502 and a handshake log line', async () => {
    const r = await httpRequest({ port, path: '/stricth1/x' });
    checkGatewayError(assert, r, 502, 'upstream_connect_failed');
    await gw.waitForLog(/upstream stricth1 .*TLS handshake failed for 127\.0\.0\.1: .*no application protocol/);
    assert.ok(strictH1Up.tlsErrors.includes('ERR_SSL_NO_APPLICATION_PROTOCOL'), JSON.stringify(strictH1Up.tlsErrors));
    assert.equal(strictH1Up.requests.length, 0);
  });

  test('upstream mTLS: without a client certificate 502 (TLS 1.3 and 1.2); with tls.cert/key 200 and the upstream saw the dev client certificate', async () => {
    // TLS 1.3: the client finishes its handshake before the server checks the (empty)
    // certificate, so the refusal is an alert right after the handshake.
    // It is answered as a failed connect, exactly as the TLS 1.2 refusal below.
    const anon = await httpRequest({ port, path: '/mtlsanon/x' });
    checkGatewayError(assert, anon, 502, 'upstream_connect_failed');
    await gw.waitForLog(/upstream HTTP\/2 connection .* refused at the TLS layer: .*certificate required/);
    assert.ok(!mtlsUp.requests.some((r) => r.path.startsWith('/mtlsanon')), 'a request without a client certificate was served');
    // TLS 1.2: the refusal is inside the handshake, so it is a failed connect.
    const anon12 = await httpRequest({ port, path: '/mtls12anon/x' });
    checkGatewayError(assert, anon12, 502, 'upstream_connect_failed');
    await gw.waitForLog(/upstream mtls12anon .*TLS handshake failed for 127\.0\.0\.1/);
    assert.equal(mtls12Up.requests.length, 0, 'a TLS 1.2 request without a client certificate was served');

    const ok = await httpRequest({ port, path: '/mtls/x' });
    assert.equal(ok.status, 200, ok.body);
    const echo = ok.json();
    assert.equal(echo.path, '/mtls/x');
    assert.equal(echo.scheme, 'https');
    assert.ok(echo.peerCert, 'the upstream saw no client certificate');
    assert.equal(echo.peerCert.cn, 'dev-client');
    assert.equal(echo.peerCert.issuer, 'Portcullis Dev CA');
    assert.match(echo.peerCert.san ?? '', /spiffe:\/\/dev\.local\/ns\/default\/sa\/dev-client/);
  });

  test('the access log names the h2 upstream and its address', async () => {
    const line = await eventually(() => gw.accessLog().find((e) => e.path === '/secure/active'),
      { timeoutMs: 5000, message: 'access log line' });
    assert.equal(line.status, 200);
    assert.equal(line.upstream, 'secure');
    assert.equal(line.upstream_address, secure.address);
    const failed = gw.accessLog().find((e) => e.path === '/wrongca/x');
    assert.ok(failed, 'no access log line for the wrong-CA request');
    assert.equal(failed.status, 502);
    assert.equal(failed.error, 'upstream_connect_failed');
  });
});

// ---------------------------------------------------------------------------------------

describe('config: TLS settings on upstreams that cannot use them are refused', { timeout: 60_000 }, () => {
  const cleanup = cleanupList();
  let dir;
  let certs;

  before(async () => {
    dir = tempDir('portcullis-h2tls-cfg-');
    cleanup.add(() => rmTemp(dir));
    certs = await makeCerts(path.join(dir, 'ca'));
  });

  after(() => cleanup.run());

  async function configWith(upstream) {
    const [plain, admin, up] = await freePorts(3);
    const config = {
      server: { workers: 1 },
      listeners: [{ name: 'plain', address: `127.0.0.1:${plain}` }],
      admin: { address: `127.0.0.1:${admin}` },
      upstreams: [{ name: 'app', endpoints: [`127.0.0.1:${up}`], ...upstream }],
      routes: [{ name: 'r', match: {}, upstream: 'app', auth: 'public' }],
    };
    return writeConfig(config, { dir: fs.mkdtempSync(path.join(dir, 'cfg-')) });
  }

  test('a valid h2 upstream with tls (ca, server_name, cert+key, min_version) passes config check', async () => {
    const file = await configWith({
      protocol: 'h2',
      tls: { ca: certs.ca, server_name: 'localhost', cert: certs.clientCert, key: certs.clientKey, min_version: '1.3' },
      timeouts: { connect: '1s', request: '5s', idle: '30s', ping_interval: '10s', ping_timeout: '5s' },
    });
    const r = await runGateway(['config', 'check', file]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
  });

  test('tls on an h2c upstream: config check exits 1 and serve refuses to start', async () => {
    const file = await configWith({ protocol: 'h2c', tls: { ca: certs.ca } });
    const check = await runGateway(['config', 'check', file]);
    assert.equal(check.code, 1, check.stderr + check.stdout);
    assert.match(check.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: .*h2c is HTTP/2 in cleartext: use protocol h2`));
    const serve = await runGateway(['serve', '--config', file], { timeoutMs: 10_000 });
    assert.notEqual(serve.code, 0, `serve exited ${serve.code}`);
    assert.notEqual(serve.code, 'killed', 'serve started instead of refusing the config');
    assert.match(serve.stderr + serve.stdout, /h2c is HTTP\/2 in cleartext/);
  });

  test('tls on an http1 upstream (HTTP/1.1 over TLS) passes config check', async () => {
    const file = await configWith({ protocol: 'http1', tls: { ca: certs.ca, server_name: 'localhost' } });
    const r = await runGateway(['config', 'check', file]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
  });

  test('tls.cert without tls.key (and key without cert): refused, "needs both cert and key"', async () => {
    for (const tls of [{ ca: certs.ca, cert: certs.clientCert }, { ca: certs.ca, key: certs.clientKey }]) {
      const file = await configWith({ protocol: 'h2', tls });
      const check = await runGateway(['config', 'check', file]);
      assert.equal(check.code, 1, check.stderr + check.stdout);
      assert.match(check.stderr, /:\d+:\d+: .*needs both cert and key/);
      const serve = await runGateway(['serve', '--config', file], { timeoutMs: 10_000 });
      assert.notEqual(serve.code, 0, `serve exited ${serve.code}`);
      assert.notEqual(serve.code, 'killed', 'serve started instead of refusing the config');
      assert.match(serve.stderr + serve.stdout, /needs both cert and key/);
    }
  });
});

// ---------------------------------------------------------------------------------------

describe('HTTP/2 PING keepalive towards upstreams', { timeout: 60_000 }, () => {
  const cleanup = cleanupList();
  let silent;
  let ctrl;
  let ctrlPings = 0; // PING frames the healthy upstream received (node ACKs them itself)
  let gw;
  let port;
  let address;

  before(async () => {
    silent = await startSilentH2Server();
    cleanup.add(() => silent.close());
    ctrl = await startH2Upstream();
    cleanup.add(() => ctrl.close());
    ctrl.server.on('session', (session) => session.on('ping', () => { ctrlPings += 1; }));
    const timeouts = { ping_interval: '200ms', ping_timeout: '300ms', request: '30s' };
    const { config, ports } = await basicConfig({
      server: { workers: 1 },
      upstreams: [
        { name: 'silent', protocol: 'h2c', endpoints: [silent.address], timeouts, ...FAILING },
        { name: 'ctrl', protocol: 'h2c', endpoints: [ctrl.address], timeouts },
      ],
      routes: [
        { name: 'silent', match: { path_prefix: '/silent' }, upstream: 'silent', auth: 'public' },
        { name: 'ctrl', match: { path_prefix: '/ctrl' }, upstream: 'ctrl', auth: 'public' },
        { name: 'grpc-silent', match: { grpc_service: ECHO }, upstream: 'silent', auth: 'public' },
      ],
    });
    gw = await startGateway({ config });
    cleanup.add(() => gw.stop());
    port = ports.plain;
    address = config.listeners[0].address;
  });

  after(() => cleanup.run());

  test('an upstream that never answers a PING: the session is closed, the request gets 502, and the keepalive is logged', { timeout: 10_000 }, async () => {
    const r = await httpRequest({ port, path: '/silent/x', timeoutMs: 9000 });
    const body = checkGatewayError(assert, r, 502);
    assert.match(body.error, /^upstream_/);
    assert.ok(silent.badPreface() === 0 && silent.connections() >= 1, 'the gateway never spoke HTTP/2 to the raw upstream');
    const got = describeFrames(silent.frames);
    assert.ok(silent.frames.some((f) => f.type === FRAME.HEADERS && f.streamId > 0), `no request HEADERS at the upstream: ${got}`);
    assert.ok(silent.frames.some((f) => f.type === FRAME.PING && !(f.flags & FLAG.ACK) && f.streamId === 0 && f.payload.length === 8),
      `no PING from the gateway: ${got}`);
    await gw.waitForLog(/upstream HTTP\/2 connection .* ended: no answer to a keepalive PING/);
    await eventually(() => silent.openConnections() === 0, { timeoutMs: 5000, message: 'the gateway closed its connection to the silent upstream' });
    const text = await fetchMetrics(gw);
    assert.equal(metricSum(text, 'portcullis_upstream_connections_active', { upstream: 'silent' }), 0, 'a closed h2c session is still counted');
  });

  test('the upstream keepalive close is announced with a GOAWAY after the PING (RFC 9113 6.8)', { timeout: 10_000 }, async () => {
    const conn = silent.connections() + 1;
    const r = await httpRequest({ port, path: '/silent/goaway', timeoutMs: 9000 });
    assert.equal(r.status, 502, r.body);
    await eventually(() => silent.closedAt[conn] !== undefined, { timeoutMs: 5000, message: `connection ${conn} to the silent upstream closed` });
    const frames = silent.frames.filter((f) => f.conn === conn);
    const seen = describeFrames(frames);
    const pingAt = frames.findIndex((f) => f.type === FRAME.PING);
    assert.ok(pingAt >= 0, `precondition: a PING on connection ${conn}; frames: ${seen}`);
    assert.ok(frames.findIndex((f) => f.type === FRAME.GOAWAY) > pingAt, `no GOAWAY after the PING before the close; frames: ${seen}`);
  });

  test('a gRPC call to the silent upstream ends in UNAVAILABLE (14)', { timeout: 10_000 }, async () => {
    const client = makeClient(address);
    try {
      const pingsBefore = silent.frames.filter((f) => f.type === FRAME.PING).length;
      const r = await unary(client, { message: 'x' }, { deadlineMs: 9000 });
      assert.equal(r.code, Status.UNAVAILABLE, `${r.code} ${r.details}`);
      assert.ok(silent.frames.filter((f) => f.type === FRAME.PING).length > pingsBefore, 'no new PING to the silent upstream');
    } finally {
      client.close();
    }
  });

  test('control: a node:http2 upstream (ACKs PINGs) still answers a request held 1.5 s, on the same session as the next request', { timeout: 10_000 }, async () => {
    const pingsBefore = ctrlPings;
    const first = await httpRequest({ port, path: '/ctrl/held?delay=1500', timeoutMs: 9000 });
    assert.equal(first.status, 200, first.body);
    assert.equal(first.json().path, '/ctrl/held?delay=1500');
    assert.ok(ctrlPings > pingsBefore, 'the gateway sent no PING during the held request (keepalive not active?)');
    const sessions = ctrl.sessions();
    assert.ok(sessions >= 1);
    const active = metricSum(await fetchMetrics(gw), 'portcullis_upstream_connections_active', { upstream: 'ctrl' });
    assert.equal(active, 1, `connections_active{upstream="ctrl"} = ${active}`);
    await sleep(1000); // several ping intervals with the session idle
    const second = await httpRequest({ port, path: '/ctrl/after-idle', timeoutMs: 9000 });
    assert.equal(second.status, 200, second.body);
    assert.equal(ctrl.sessions(), sessions, 'the keepalive closed a healthy upstream session');
    const lines = stderrText(gw).split('\n').filter((l) => /no answer to a keepalive PING/.test(l));
    assert.ok(!lines.some((l) => l.includes(ctrl.address)), `keepalive failure logged for the healthy upstream: ${lines.join(' | ')}`);
  });
});

// ---------------------------------------------------------------------------------------

describe('HTTP/2 PING keepalive towards clients (listener limits)', { timeout: 60_000 }, () => {
  const cleanup = cleanupList();
  let hole;
  let h2up;
  let gw;
  let port;

  before(async () => {
    hole = await startBlackhole();
    cleanup.add(() => hole.close());
    h2up = await startH2Upstream();
    cleanup.add(() => h2up.close());
    const { config, ports } = await basicConfig({
      upstreams: [
        { name: 'hole', endpoints: [hole.address], timeouts: { request: '30s' } },
        { name: 'h2up', protocol: 'h2c', endpoints: [h2up.address] },
      ],
      routes: [
        { name: 'hold', match: {}, upstream: 'hole', auth: 'public' },
        { name: 'slow', match: { path_prefix: '/slow' }, upstream: 'h2up', auth: 'public' },
      ],
    });
    config.listeners[0].limits = { ping_interval: '200ms', ping_timeout: '300ms' };
    gw = await startGateway({ config });
    cleanup.add(() => gw.stop());
    port = ports.plain;
  });

  after(() => cleanup.run());

  /**
   * A raw client: preface, empty SETTINGS, one GET / (stream 1) for the held route, then
   * nothing at all (no SETTINGS ACK, no PING ACK). Returns {frames, closed, pingAt}.
   */
  async function silentClient() {
    const c = await rawConnect(port);
    try {
      const authority = Buffer.from('localhost', 'latin1');
      // :method GET (2), :scheme http (6), :path / (4) from the static table; :authority:
      // literal with incremental indexing, name index 1, no Huffman.
      const block = Buffer.concat([Buffer.from([0x82, 0x86, 0x84, 0x41, authority.length]), authority]);
      await c.write(Buffer.concat([
        PREFACE, frame(FRAME.SETTINGS, 0, 0), frame(FRAME.HEADERS, FLAG.END_STREAM | FLAG.END_HEADERS, 1, block),
      ]));
      const frames = () => parseFrames(Buffer.from(c.text(), 'latin1'));
      await c.waitFor(() => frames().some((f) => f.type === FRAME.PING), 5000).catch(() => {});
      const closed = await c.waitClose(5000);
      const got = frames();
      return { frames: got, closed, pingAt: got.findIndex((f) => f.type === FRAME.PING && !(f.flags & FLAG.ACK)) };
    } finally {
      c.destroy();
    }
  }

  test('a client that sends a request and then nothing gets a PING, then the connection is closed', { timeout: 10_000 }, async () => {
    const holeBefore = hole.connections();
    const { frames, closed, pingAt } = await silentClient();
    const seen = describeFrames(frames);
    assert.ok(pingAt >= 0, `no PING from the gateway; frames: ${seen}`);
    assert.equal(frames[pingAt].streamId, 0);
    assert.equal(frames[pingAt].payload.length, 8);
    assert.ok(closed, `the connection stayed open; frames: ${seen}`);
    assert.ok(!frames.some((f) => f.type === FRAME.HEADERS && f.streamId === 1), `the held request was answered: ${seen}`);
    assert.ok(hole.connections() > holeBefore && hole.bytesReceived() > 0, 'the request never reached the upstream (the stream was not open)');
  });

  test('the keepalive close is announced with a GOAWAY after the PING (RFC 9113 6.8: SHOULD send GOAWAY before closing)', { timeout: 10_000 }, async () => {
    const { frames, closed, pingAt } = await silentClient();
    const seen = describeFrames(frames);
    assert.ok(pingAt >= 0 && closed, `precondition: PING then close; frames: ${seen}; closed: ${closed}`);
    const goawayAt = frames.findIndex((f) => f.type === FRAME.GOAWAY);
    assert.ok(goawayAt > pingAt, `no GOAWAY after the PING before the close; frames: ${seen}`);
  });

  test('control: a node:http2 client (ACKs PINGs) keeps its connection through a 1.5 s request and an idle pause', { timeout: 10_000 }, async () => {
    const s = await connectH2(port);
    let goaway = null;
    let pings = 0;
    s.on('goaway', (code) => { goaway = code; });
    s.on('ping', () => { pings += 1; });
    try {
      const r = await h2request(s, { ':path': '/slow/held?delay=1500' });
      assert.equal(r.status, 200, JSON.stringify(r).slice(0, 300));
      assert.equal(JSON.parse(r.body).path, '/slow/held?delay=1500');
      assert.ok(pings >= 1, 'the gateway sent no PING during the held request (keepalive not active?)');
      await sleep(1000);
      assert.ok(!s.closed && !s.destroyed, 'the gateway closed a client that answers PINGs');
      const again = await h2request(s, { ':path': '/slow/again' });
      assert.equal(again.status, 200, JSON.stringify(again).slice(0, 300));
      assert.equal(goaway, null, `GOAWAY ${goaway} on a live connection`);
    } finally {
      s.close();
    }
  });
});
