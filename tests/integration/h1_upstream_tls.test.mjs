// HTTP/1.1 over TLS to upstreams (`protocol: http1` with `tls:`), end to end: real node:https
// upstreams with the dev CA (certs/make-dev-certs.sh) and a second, foreign CA. Covered:
//   - requests relayed over a verified TLS connection (ALPN http/1.1, SNI), a 1 MiB upload and
//     a 5 MiB download intact, from HTTP/1.1 clients and from HTTP/2 clients (h2c);
//   - keep-alive: sequential requests share one TLS connection (one handshake at the upstream,
//     portcullis_upstream_connections_reused_total grows);
//   - refusals are 502 upstream_connect_failed and count as kind="tls": a certificate from
//     another CA, a server_name the certificate does not carry, a missing client certificate
//     (inside the TLS 1.2 handshake, or TLS 1.3's alert just after it);
//   - mTLS to the upstream: with tls.cert/key the upstream sees the gateway's client
//     certificate; without it the upstream refuses and the client gets a 502.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import {
  startGateway, basicConfig, cleanupList, fetchMetrics, metricSum, curl, tempDir, rmTemp,
  httpRequest, makeCerts, checkGatewayError, writePattern, sleep,
} from '../support/harness.mjs';

/** A node:https echo upstream: JSON {method, url, headers, bodyLength, bodySha256, alpn, servername, peerCn}; ?size=N answers N pattern bytes. */
async function startHttpsUpstream({ cert, key, ca, requestCert = false, maxVersion = 'TLSv1.3' }) {
  const server = https.createServer({
    cert: fs.readFileSync(cert), key: fs.readFileSync(key), ALPNProtocols: ['http/1.1'], maxVersion,
    ...(requestCert ? { ca: fs.readFileSync(ca), requestCert: true, rejectUnauthorized: true } : {}),
  });
  const stats = { handshakes: 0, requests: 0, tlsErrors: [] };
  server.on('secureConnection', () => { stats.handshakes += 1; });
  server.on('tlsClientError', (e) => { stats.tlsErrors.push(e.code ?? e.message); });
  server.on('request', (req, res) => {
    stats.requests += 1;
    const url = new URL(req.url, 'https://upstream.invalid');
    const hash = crypto.createHash('sha256');
    let bodyLength = 0;
    req.on('data', (c) => { bodyLength += c.length; hash.update(c); });
    req.on('end', () => {
      const size = url.searchParams.get('size');
      if (size !== null) {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
        writePattern(res, Number(size)).then(() => res.end(), () => {});
        return;
      }
      const peer = req.socket.getPeerCertificate?.() ?? {};
      const body = JSON.stringify({
        method: req.method, url: req.url, headers: req.headers, bodyLength, bodySha256: hash.digest('hex'),
        alpn: req.socket.alpnProtocol, servername: req.socket.servername ?? false, peerCn: peer?.subject?.CN ?? null,
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve); });
  return {
    stats,
    address: `127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
  };
}

describe('HTTP/1.1 over TLS to upstreams', { timeout: 120_000 }, () => {
  const cleanup = cleanupList();
  after(() => cleanup.run());
  let gw;
  let ports;
  const up = {};

  before(async () => {
    const dir = tempDir('portcullis-h1tls-');
    cleanup.add(() => rmTemp(dir));
    const certs = await makeCerts(`${dir}/ours`);
    const foreign = await makeCerts(`${dir}/foreign`);
    up.secure = await startHttpsUpstream(certs);
    up.foreign = await startHttpsUpstream(foreign);
    up.mtls = await startHttpsUpstream({ ...certs, requestCert: true });
    up.mtls12 = await startHttpsUpstream({ ...certs, requestCert: true, maxVersion: 'TLSv1.2' });
    for (const u of Object.values(up)) cleanup.add(() => u.close());
    const upstream = (name, u, tls) => ({ name, endpoints: [u.address], tls, timeouts: { connect: '2s', request: '10s' } });
    const upstreams = [
      upstream('secure', up.secure, { ca: certs.ca, server_name: 'localhost' }),
      upstream('byip', up.secure, { ca: certs.ca }), // verified against the IP SAN
      upstream('wrongca', up.foreign, { ca: certs.ca, server_name: 'localhost' }),
      upstream('misnamed', up.secure, { ca: certs.ca, server_name: 'wrong.example' }),
      upstream('mtls', up.mtls, { ca: certs.ca, server_name: 'localhost', cert: certs.clientCert, key: certs.clientKey }),
      upstream('mtlsanon', up.mtls, { ca: certs.ca, server_name: 'localhost' }),
      upstream('mtls12anon', up.mtls12, { ca: certs.ca, server_name: 'localhost' }),
    ];
    const routes = upstreams.map((u) => ({ name: u.name, match: { path_prefix: `/${u.name}` }, upstream: u.name, auth: 'public' }));
    const built = await basicConfig({ upstreams, routes, server: { workers: 1 } });
    ports = built.ports;
    gw = await startGateway({ config: built.config });
    cleanup.add(() => gw.stop());
  });

  const get = (p, opts = {}) => httpRequest({ port: ports.plain, path: p, ...opts });

  test('relays over verified TLS with ALPN http/1.1 and SNI; uploads and downloads intact', async () => {
    const r = await get('/secure/echo?x=1');
    assert.equal(r.status, 200, String(r.body));
    const echo = JSON.parse(r.body);
    assert.equal(echo.url, '/secure/echo?x=1');
    assert.equal(echo.alpn, 'http/1.1');
    assert.equal(echo.servername, 'localhost', 'SNI carries server_name');
    assert.equal(echo.headers['x-request-id'], r.headers['x-request-id']);

    const byIp = JSON.parse((await get('/byip/echo')).body);
    assert.equal(byIp.servername, false, 'no SNI for an IP endpoint (its IP SAN is verified)');

    const upload = crypto.randomBytes(1024 * 1024);
    const posted = await get('/secure/upload', { method: 'POST', body: upload, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(posted.status, 200);
    const pe = JSON.parse(posted.body);
    assert.equal(pe.bodyLength, upload.length);
    assert.equal(pe.bodySha256, crypto.createHash('sha256').update(upload).digest('hex'));

    const big = await curl(['-o', '-', '-w', '\n%{http_code} %{size_download}', `http://127.0.0.1:${ports.plain}/secure/big?size=${5 * 1024 * 1024}`], { timeoutMs: 30_000 });
    assert.equal(big.code, 0, big.stderr);
    assert.match(big.stdout.slice(-40), /\n200 5242880$/);
  });

  test('HTTP/2 clients reach an HTTP/1.1 TLS upstream too', async () => {
    const r = await curl(['--http2-prior-knowledge', '-s', `http://127.0.0.1:${ports.plain}/secure/from-h2`]);
    assert.equal(r.code, 0, r.stderr);
    const echo = JSON.parse(r.stdout);
    assert.equal(echo.url, '/secure/from-h2');
    assert.equal(echo.alpn, 'http/1.1');
  });

  test('keep-alive: sequential requests share one TLS connection', async () => {
    await sleep(100);
    const handshakes = up.secure.stats.handshakes;
    const reusedBefore = metricSum(await fetchMetrics(gw), 'portcullis_upstream_connections_reused_total', { upstream: 'secure' });
    for (let i = 0; i < 5; i++) assert.equal((await get(`/secure/seq-${i}`)).status, 200);
    assert.ok(up.secure.stats.handshakes - handshakes <= 1, `at most one new handshake for 5 requests (got ${up.secure.stats.handshakes - handshakes})`);
    const reused = metricSum(await fetchMetrics(gw), 'portcullis_upstream_connections_reused_total', { upstream: 'secure' });
    assert.ok(reused - reusedBefore >= 4, `connections reused ${reused - reusedBefore}`);
  });

  test('a certificate from another CA or for another name: 502 upstream_connect_failed, counted as tls', async () => {
    for (const name of ['wrongca', 'misnamed']) {
      const before = metricSum(await fetchMetrics(gw), 'portcullis_upstream_errors_total', { upstream: name, kind: 'tls' });
      const r = await get(`/${name}/x`);
      checkGatewayError(assert, r, 502, 'upstream_connect_failed');
      const afterCount = metricSum(await fetchMetrics(gw), 'portcullis_upstream_errors_total', { upstream: name, kind: 'tls' });
      assert.ok(afterCount > before, `${name}: upstream_errors_total{kind="tls"} grows`);
    }
    assert.equal(up.foreign.stats.requests, 0, 'no request reached the upstream with the foreign certificate');
    await gw.waitForLog(/TLS handshake failed for localhost: .*certificate/, 3000);
  });

  test('mTLS: the gateway presents tls.cert; without one the upstream refuses: 502 upstream_connect_failed, kind="tls", under TLS 1.3 and 1.2 alike', async () => {
    const r = await get('/mtls/who');
    assert.equal(r.status, 200, String(r.body));
    assert.ok(JSON.parse(r.body).peerCn, 'the upstream saw a client certificate');
    const requests = up.mtls.stats.requests;
    // TLS 1.3: the client's side of the handshake is done before the server checks the
    // (missing) certificate; the refusal is an alert on the first read. Still a failed connect.
    for (const [name, server] of [['mtlsanon', up.mtls], ['mtls12anon', up.mtls12]]) {
      const before = metricSum(await fetchMetrics(gw), 'portcullis_upstream_errors_total', { upstream: name, kind: 'tls' });
      const served = server.stats.requests;
      const anon = await get(`/${name}/who`);
      checkGatewayError(assert, anon, 502, 'upstream_connect_failed');
      const after = metricSum(await fetchMetrics(gw), 'portcullis_upstream_errors_total', { upstream: name, kind: 'tls' });
      assert.ok(after > before, `${name}: upstream_errors_total{kind="tls"} grows`);
      assert.equal(server.stats.requests, served, `${name}: a request without a client certificate reached the handler`);
    }
    assert.equal(up.mtls.stats.requests, requests, 'the anonymous request never reached the upstream handler');
    await gw.waitForLog(/upstream mtlsanon .*TLS failed on a new connection after the handshake: .*certificate required/, 3000);
    await gw.waitForLog(/upstream mtls12anon .*TLS handshake failed for localhost/, 3000);
  });
});
