// gRPC through the gateway, end to end: a real @grpc/grpc-js client speaks prior-knowledge
// h2c to the gateway, which authenticates the bearer token (real OpenID provider), applies
// the route's policy (grpc_service / grpc_method), and relays to a real grpc-js server over
// an h2c upstream (tests/support/grpc/). Covered: all four call kinds, metadata both ways
// and trailers, an 8 MiB message, cancellation mid-stream reaching the upstream, a method
// denied by policy (7), a missing and a bad token (16), an unknown service (12), an
// unreachable upstream (14), and the audit/access records carrying grpc_method.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import {
  startGateway, eventually, freePort, cleanupList, fetchMetrics, metricSum, httpRequest,
  checkGatewayError,
} from '../support/harness.mjs';
import { startProvider, getToken } from '../support/oidc/client.mjs';
import { providerEntry, bearerConfig } from '../support/bearer.mjs';
import { startGrpcServer } from '../support/grpc/server.mjs';
import {
  makeClient, unary, serverStream, clientStream, bidi, bearerMetadata, Status,
} from '../support/grpc/client.mjs';

const ECHO = 'portcullis.test.v1.Echo';
const ADMIN = 'portcullis.test.v1.Admin';

describe('gRPC through the gateway (h2c both sides)', { timeout: 120_000 }, () => {
  const cleanup = cleanupList();
  let idp;
  let grpcServer;
  let gw;
  let address;
  let token;
  let echo;
  let admin;

  before(async () => {
    idp = await startProvider({ algs: ['RS256'] });
    cleanup.add(() => idp.stop());
    grpcServer = await startGrpcServer();
    cleanup.add(() => grpcServer.close());
    const deadPort = await freePort();
    // An upstream that accepts and never answers: only the gateway can end a call to it.
    const held = new Set();
    const blackhole = net.createServer((sock) => {
      sock.on('error', () => {});
      held.add(sock);
      sock.on('close', () => held.delete(sock));
    });
    await new Promise((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
    cleanup.add(() => new Promise((resolve) => {
      for (const sock of held) sock.destroy();
      blackhole.close(() => resolve());
    }));
    const blackholePort = blackhole.address().port;
    const { config } = await bearerConfig({
      upstream: { address: '127.0.0.1:1' }, // the echo upstream is unused here
      providers: [providerEntry(idp)],
      routes: [
        { name: 'echo', match: { grpc_service: ECHO }, upstream: 'grpc', auth: 'bearer',
          policy: { allow: { authenticated_user: true } }, show_deny_reason: true },
        { name: 'admin', match: { grpc_service: ADMIN }, upstream: 'grpc', auth: 'bearer',
          policy: { allow: { grpc_method: { is: `/${ADMIN}/Status` } } }, show_deny_reason: true },
        { name: 'gone', match: { grpc_service: 'portcullis.test.v1.Gone' }, upstream: 'dead', auth: 'bearer',
          policy: { allow: { authenticated_user: true } } },
        { name: 'stuck', match: { grpc_service: 'portcullis.test.v1.Stuck' }, upstream: 'blackhole', auth: 'bearer',
          policy: { allow: { authenticated_user: true } } },
      ],
    });
    config.upstreams = [
      { name: 'echo', endpoints: ['127.0.0.1:1'] },
      { name: 'grpc', protocol: 'h2c', endpoints: [grpcServer.address] },
      { name: 'dead', protocol: 'h2c', endpoints: [`127.0.0.1:${deadPort}`], retries: 0 },
      { name: 'blackhole', protocol: 'h2c', endpoints: [`127.0.0.1:${blackholePort}`] },
    ];
    gw = await startGateway({ config });
    cleanup.add(() => gw.stop());
    address = config.listeners[0].address;
    token = await getToken({ scope: 'orders:read' });
    echo = makeClient(address);
    admin = makeClient(address, { service: 'Admin' });
    cleanup.add(() => { echo.close(); admin.close(); });
  });

  after(() => cleanup.run());

  test('unary: reply, metadata forwarded with identity headers, trailers relayed', async () => {
    const r = await unary(echo, { message: 'hello' }, { metadata: bearerMetadata(token, { 'x-custom': 'abc' }), deadlineMs: 5000 });
    assert.equal(r.code, Status.OK, `${r.code} ${r.details}`);
    assert.equal(r.reply.message, 'hello');
    const md = r.reply.metadata;
    assert.equal(md['x-custom'], 'abc');
    assert.equal(md.authorization, `Bearer ${token}`, 'forward_token defaults to true');
    assert.ok(md['x-portcullis-user'], `identity header missing: ${JSON.stringify(md)}`);
    assert.ok(md['x-portcullis-assertion'], 'assertion missing');
    assert.match(md['x-request-id'] ?? '', /\S/);
    assert.equal(r.trailers['x-echo-trailer'], 'yes', `trailers: ${JSON.stringify(r.trailers)}`);
  });

  test('a client cannot inject identity headers', async () => {
    const r = await unary(echo, { message: 'x' }, {
      metadata: bearerMetadata(token, { 'x-portcullis-user': 'admin', 'x-portcullis-groups': 'root' }), deadlineMs: 5000,
    });
    assert.equal(r.code, Status.OK);
    assert.notEqual(r.reply.metadata['x-portcullis-user'], 'admin');
    assert.notEqual(r.reply.metadata['x-portcullis-groups'], 'root');
  });

  test('server streaming, client streaming and bidirectional streaming', async () => {
    const md = () => bearerMetadata(token);
    const ss = await serverStream(echo, { message: 's', count: 5, delay_ms: 5 }, { metadata: md(), deadlineMs: 5000 });
    assert.equal(ss.code, Status.OK, ss.details);
    assert.deepEqual(ss.replies.map((x) => x.index), [0, 1, 2, 3, 4]);
    const cs = await clientStream(echo, [{ message: 'a' }, { message: 'b' }, { message: 'c' }], { metadata: md(), deadlineMs: 5000, intervalMs: 5 });
    assert.equal(cs.code, Status.OK, cs.details);
    assert.equal(cs.reply.message, 'abc');
    const bd = await bidi(echo, [{ message: '1' }, { message: '2' }, { message: '3' }], { metadata: md(), deadlineMs: 5000, pingPong: true });
    assert.equal(bd.code, Status.OK, bd.details);
    assert.deepEqual(bd.replies.map((x) => x.message), ['1', '2', '3']);
  });

  test('an 8 MiB message each way', async () => {
    const payload = Buffer.alloc(8 * 1024 * 1024, 7);
    payload[12345] = 42;
    const r = await unary(echo, { message: 'big', payload }, { metadata: bearerMetadata(token), deadlineMs: 30_000 });
    assert.equal(r.code, Status.OK, r.details);
    assert.equal(r.reply.payload.length, payload.length);
    assert.ok(Buffer.compare(r.reply.payload, payload) === 0, 'payload changed on the way');
  });

  test('cancelling a server stream mid-way cancels the upstream call', async () => {
    const before = grpcServer.stats.cancellations[`Echo/ServerStream`] ?? 0;
    const r = await serverStream(echo, { message: 'c', count: 1000, delay_ms: 10 }, { metadata: bearerMetadata(token), deadlineMs: 10_000, cancelAfter: 3 });
    assert.equal(r.code, Status.CANCELLED);
    assert.equal(r.replies.length, 3);
    await eventually(() => (grpcServer.stats.cancellations[`Echo/ServerStream`] ?? 0) > before,
      { timeoutMs: 5000, message: 'the upstream saw the cancellation' });
  });

  test('a method the policy does not allow: PERMISSION_DENIED (7) as a trailers-only response', async () => {
    const r = await unary(admin, { message: 'reset' }, { metadata: bearerMetadata(token), deadlineMs: 5000, method: 'Reset' });
    assert.equal(r.code, Status.PERMISSION_DENIED, `${r.code} ${r.details}`);
    assert.match(r.details, /denied|policy|rule/i);
    assert.equal(r.trailers['grpc-status'] ?? '7', '7');
    assert.ok(r.trailers['x-request-id'], `request id missing: ${JSON.stringify(r.trailers)}`);
    assert.equal(grpcServer.stats.calls['Admin/Reset'] ?? 0, 0, 'a denied call reached the upstream');
  });

  test('no token and a bad token: UNAUTHENTICATED (16)', async () => {
    const none = await unary(echo, { message: 'x' }, { deadlineMs: 5000 });
    assert.equal(none.code, Status.UNAUTHENTICATED, `${none.code} ${none.details}`);
    const bad = await unary(echo, { message: 'x' }, { metadata: bearerMetadata('not.a.token'), deadlineMs: 5000 });
    assert.equal(bad.code, Status.UNAUTHENTICATED, `${bad.code} ${bad.details}`);
  });

  test('an unknown service: UNIMPLEMENTED (12); an unreachable upstream: UNAVAILABLE (14)', async () => {
    const { makeClient: mk } = await import('../support/grpc/client.mjs');
    // The Echo client pointed at a service name no route matches, through grpc-js' generic call.
    const raw = mk(address);
    const unknown = await new Promise((resolve) => {
      raw.makeUnaryRequest('/portcullis.test.v1.Nope/Call', (x) => x, (x) => x, Buffer.alloc(0), bearerMetadata(token),
        { deadline: Date.now() + 5000 }, (err) => resolve(err));
    });
    assert.equal(unknown?.code, Status.UNIMPLEMENTED, `${unknown?.code} ${unknown?.details}`);
    const gone = await new Promise((resolve) => {
      raw.makeUnaryRequest('/portcullis.test.v1.Gone/Call', (x) => x, (x) => x, Buffer.alloc(0), bearerMetadata(token),
        { deadline: Date.now() + 5000 }, (err) => resolve(err));
    });
    assert.equal(gone?.code, Status.UNAVAILABLE, `${gone?.code} ${gone?.details}`);
    raw.close();
  });

  test('an HTTP/1.1 request to an unreachable h2c upstream: 502 upstream_connect_failed as JSON', async () => {
    const [host, port] = address.split(':');
    const r = await httpRequest({
      host, port: Number(port), method: 'POST', path: '/portcullis.test.v1.Gone/Call',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}',
    });
    checkGatewayError(assert, r, 502, 'upstream_connect_failed');
  });

  test('grpc-timeout is enforced by the gateway: a silent upstream ends in DEADLINE_EXCEEDED (4)', async () => {
    // A raw HTTP/2 client without a deadline of its own, so the answer can only be the gateway's.
    const session = http2.connect(`http://${address}`);
    session.on('error', () => {});
    try {
      const req = session.request({
        ':method': 'POST', ':path': '/portcullis.test.v1.Stuck/Call', 'content-type': 'application/grpc',
        te: 'trailers', 'grpc-timeout': '300m', authorization: `Bearer ${token}`,
      });
      const result = await new Promise((resolve, reject) => {
        const out = { headers: null, trailers: null };
        req.on('response', (h) => { out.headers = h; });
        req.on('trailers', (t) => { out.trailers = t; });
        req.on('error', reject);
        req.on('close', () => resolve(out));
        req.end(Buffer.alloc(5)); // one empty gRPC message
      });
      const all = { ...result.headers, ...result.trailers };
      assert.equal(all['grpc-status'], '4', JSON.stringify(all));
      assert.match(decodeURIComponent(all['grpc-message'] ?? ''), /grpc-timeout expired at the gateway/);
      assert.ok(all['x-request-id']);
    } finally {
      session.close();
    }
  });

  test('metrics and the access log carry the calls', async () => {
    const text = await fetchMetrics(gw);
    assert.ok(metricSum(text, 'portcullis_requests_total', { route: 'echo' }) >= 5, 'echo route requests');
    const unaryLines = gw.accessLog().filter((e) => e.grpc_method === `/${ECHO}/Unary`);
    assert.ok(unaryLines.length >= 1, 'access log lines with grpc_method');
    const allowed = unaryLines.filter((e) => e.decision === 'allow');
    assert.ok(allowed.length >= 3 && allowed.every((e) => e.route === 'echo' && e.status === 200), JSON.stringify(allowed));
    const refused = unaryLines.filter((e) => e.decision !== 'allow');
    assert.ok(refused.length >= 2 && refused.every((e) => e.status === 401), JSON.stringify(refused));
    const denied = gw.accessLog().filter((e) => e.grpc_method === `/${ADMIN}/Reset`);
    assert.ok(denied.length >= 1 && denied.every((e) => e.decision === 'deny' && e.status === 403), JSON.stringify(denied));
  });
});
