// TLS listener: curl and openssl s_client against it, old protocol refused, plaintext on
// the TLS port fails cleanly.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  startGateway, startUpstream, freePorts, makeCerts, tempDir, rmTemp, curl, run, rawExchange, httpRequest,
} from '../support/harness.mjs';

describe('tls', { timeout: 120_000 }, () => {
  let gw;
  let up;
  let certs;
  let dir;
  const ports = {};

  before(async () => {
    dir = tempDir('portcullis-tls-');
    certs = await makeCerts(path.join(dir, 'certs'));
    up = await startUpstream({ name: 'app' });
    [ports.edge, ports.admin] = await freePorts(2);
    gw = await startGateway({
      config: {
        server: { workers: 2, drain_timeout: '5s' },
        access_log: { path: 'stdout' },
        listeners: [{ name: 'edge', address: `127.0.0.1:${ports.edge}`, tls: { cert: certs.cert, key: certs.key } }],
        admin: { address: `127.0.0.1:${ports.admin}` },
        upstreams: [{ name: 'app', endpoints: [up.address] }],
        routes: [{ name: 'public', match: { path_prefix: '/public' }, upstream: 'app', auth: 'public' }],
      },
    });
  });

  after(async () => {
    await gw?.stop();
    await up?.close();
    rmTemp(dir);
  });

  const base = () => `https://localhost:${ports.edge}`;
  const resolve = () => ['--resolve', `localhost:${ports.edge}:127.0.0.1`];

  test('curl --cacert ca.crt https://localhost:PORT/... works over HTTP/1.1', async () => {
    const r = await curl([...resolve(), '--cacert', certs.ca, '--http1.1', '-w', '\n%{http_code} %{http_version}', `${base()}/public/hello?x=1`]);
    assert.equal(r.code, 0, `curl failed: ${r.stderr}`);
    const lines = r.stdout.trimEnd().split('\n');
    const [status, version] = lines.pop().split(' ');
    assert.equal(status, '200');
    assert.equal(version, '1.1');
    const echo = JSON.parse(lines.join('\n'));
    assert.equal(echo.url, '/public/hello?x=1');
    assert.equal(echo.headers['x-forwarded-proto'], 'https');
  });

  test('curl with its default ALPN offer (h2, http/1.1) gets HTTP/2, relayed to the HTTP/1.1 upstream', async () => {
    const r = await curl([...resolve(), '--cacert', certs.ca, '-o', '/dev/null', '-w', '%{http_code} %{http_version}', `${base()}/public/alpn`]);
    assert.equal(r.code, 0, `curl failed: ${r.stderr}`);
    const [status, version] = r.stdout.trim().split(' ');
    assert.equal(status, '200', r.stdout);
    assert.equal(version, '2', r.stdout);
  });

  test('curl without the CA fails verification (the server presents the dev cert)', async () => {
    const r = await curl([...resolve(), '-o', '/dev/null', `${base()}/public/x`]);
    assert.notEqual(r.code, 0, 'verification unexpectedly succeeded against the system store');
    assert.equal(r.code, 60, `curl exit ${r.code}: ${r.stderr}`);
  });

  test('openssl s_client negotiates ALPN http/1.1 over TLSv1.2+', async () => {
    const r = await run('openssl', [
      's_client', '-connect', `127.0.0.1:${ports.edge}`, '-servername', 'localhost', '-alpn', 'http/1.1',
      '-CAfile', certs.ca, '-verify_return_error',
    ], { input: '', timeoutMs: 20_000 });
    const out = `${r.stdout}\n${r.stderr}`;
    assert.match(out, /ALPN protocol: http\/1\.1/, out);
    const m = /(?:Protocol\s*:\s*|New, )(TLSv1\.\d|SSLv\d)/.exec(out);
    assert.ok(m, `no protocol line in: ${out}`);
    assert.ok(['TLSv1.2', 'TLSv1.3'].includes(m[1]), `negotiated ${m[1]}`);
    assert.match(out, /Verify return code: 0 \(ok\)/);
  });

  test('TLS 1.1 is refused', async () => {
    // SECLEVEL=0 so that the local OpenSSL is willing to offer TLS 1.1 at all; the refusal
    // must come from the gateway.
    const r = await run('openssl', [
      's_client', '-connect', `127.0.0.1:${ports.edge}`, '-servername', 'localhost', '-tls1_1',
      '-cipher', 'DEFAULT:@SECLEVEL=0',
    ], { input: '', timeoutMs: 20_000 });
    const out = `${r.stdout}\n${r.stderr}`;
    assert.notEqual(r.code, 0, `s_client succeeded with TLS 1.1:\n${out}`);
    // s_client prints "Protocol : TLSv1.1" even for a failed handshake; no cipher means none.
    assert.match(out, /Cipher is \(NONE\)/, `a cipher was negotiated:\n${out}`);
    // The refusal must come from the server (a protocol_version alert), not from the local
    // OpenSSL declining to offer TLS 1.1 ("no protocols available").
    assert.match(out, /alert protocol version/, out);
  });

  test('plaintext HTTP to the TLS port fails cleanly and the gateway keeps serving', async () => {
    const r = await rawExchange(ports.edge, 'GET /public/x HTTP/1.1\r\nHost: localhost\r\n\r\n', { timeoutMs: 15_000 });
    assert.ok(!r.timedOut, 'the gateway neither answered nor closed within 15 s');
    assert.doesNotMatch(r.text, /^HTTP\/1\.[01] 200/, 'plaintext request was served on the TLS port');
    const again = await curl([...resolve(), '--cacert', certs.ca, '--http1.1', '-o', '/dev/null', '-w', '%{http_code}', `${base()}/public/after`]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, '200');
  });

  test('node https client (ALPN http/1.1, SNI localhost) gets a 200', async () => {
    const r = await httpRequest({ url: `${base()}/public/node`, host: '127.0.0.1', ca: fs.readFileSync(certs.ca) });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json().url, '/public/node');
  });
});
