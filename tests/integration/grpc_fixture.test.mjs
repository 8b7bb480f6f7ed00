// The gRPC test fixture itself (tests/support/grpc/: echo.proto, server.mjs, client.mjs),
// client -> server directly, no gateway: the baseline the gateway's gRPC tests compare with.
// Needs the npm packages @grpc/grpc-js and @grpc/proto-loader (`cd tests && npm ci`).
//
//   node --test tests/integration/grpc_fixture.test.mjs
import { describe, test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http2 from 'node:http2';
import { eventually, sleep } from '../support/harness.mjs';
import { startGrpcServer } from '../support/grpc/server.mjs';
import {
  makeClient, unary, serverStream, clientStream, bidi, bearerMetadata, Status,
} from '../support/grpc/client.mjs';

describe('gRPC fixture (client -> server, no gateway)', { timeout: 60_000 }, () => {
  let srv;
  let echo;
  let admin;

  before(async () => {
    srv = await startGrpcServer();
    echo = makeClient(srv.address);
    admin = makeClient(srv.address, { service: 'Admin' });
  });

  after(async () => {
    echo?.close();
    admin?.close();
    await srv?.close();
  });

  beforeEach(() => srv.resetStats());

  test('the server listens on 127.0.0.1 at a free port', () => {
    assert.ok(srv.port > 0);
    assert.equal(srv.address, `127.0.0.1:${srv.port}`);
  });

  test('Unary echoes message, payload and the request metadata; headers and trailers', async () => {
    const payload = Buffer.from([0, 1, 2, 250, 255]);
    const r = await unary(echo, { message: 'hello', payload }, {
      metadata: bearerMetadata('tok-123', { 'x-custom': 'abc', 'x-multi': ['1', '2'], 'x-bin-bin': Buffer.from([1, 2, 3]) }),
      deadlineMs: 5000,
    });
    assert.equal(r.code, Status.OK);
    assert.equal(r.details, 'OK');
    assert.equal(r.error, undefined);
    assert.equal(r.reply.message, 'hello');
    assert.ok(Buffer.isBuffer(r.reply.payload));
    assert.deepEqual(r.reply.payload, payload);
    assert.equal(r.reply.index, 0);
    assert.equal(r.reply.metadata.authorization, 'Bearer tok-123');
    assert.equal(r.reply.metadata['x-custom'], 'abc');
    assert.equal(r.reply.metadata['x-multi'], '1, 2');
    assert.equal(r.reply.metadata['x-bin-bin'], Buffer.from([1, 2, 3]).toString('base64'));
    assert.match(r.reply.metadata['user-agent'], /^grpc-node-js\//);
    // grpc-js keeps transport headers (te, content-type, grpc-timeout, ...) out of call metadata.
    assert.equal(r.reply.metadata.te, undefined);
    assert.equal(r.reply.metadata['content-type'], undefined);
    assert.equal(r.headers['x-echo-header'], 'yes');
    assert.match(r.headers['content-type'], /^application\/grpc/);
    assert.equal(r.trailers['x-echo-trailer'], 'yes');
    assert.deepEqual(srv.stats.calls, { 'Echo/Unary': 1 });
  });

  test('without metadata the server sees only user-agent', async () => {
    const r = await unary(echo, { message: 'm' });
    assert.equal(r.code, Status.OK);
    assert.deepEqual(Object.keys(r.reply.metadata), ['user-agent']);
  });

  test('ServerStream sends count replies in order, then OK with trailers', async () => {
    const r = await serverStream(echo, { message: 's', count: 5, delay_ms: 5 }, { metadata: { 'x-s': 'v' } });
    assert.equal(r.code, Status.OK);
    assert.deepEqual(r.replies.map((x) => x.index), [0, 1, 2, 3, 4]);
    assert.ok(r.replies.every((x) => x.message === 's' && x.metadata['x-s'] === 'v'));
    assert.equal(r.headers['x-echo-header'], 'yes');
    assert.equal(r.trailers['x-echo-trailer'], 'yes');
    assert.equal(srv.stats.calls['Echo/ServerStream'], 1);
    assert.deepEqual(srv.stats.cancellations, {});
  });

  test('ServerStream with count 0 ends OK with no replies', async () => {
    const r = await serverStream(echo, { count: 0 });
    assert.equal(r.code, Status.OK);
    assert.deepEqual(r.replies, []);
  });

  test('ClientStream concatenates messages and sums payload sizes', async () => {
    const r = await clientStream(echo, [
      { message: 'a', payload: Buffer.alloc(1) },
      { message: 'b', payload: Buffer.alloc(20) },
      { message: 'c', payload: Buffer.alloc(300) },
    ], { metadata: { 'x-c': 'yes' }, intervalMs: 10 });
    assert.equal(r.code, Status.OK);
    assert.equal(r.reply.message, 'abc');
    assert.equal(r.reply.index, 321);
    assert.equal(r.reply.metadata['x-c'], 'yes');
    assert.equal(r.trailers['x-echo-trailer'], 'yes');
    assert.equal(srv.stats.calls['Echo/ClientStream'], 1);
  });

  test('ClientStream with a fail_code request ends with that status', async () => {
    const r = await clientStream(echo, [{ message: 'a' }, { message: 'b', fail_code: Status.INVALID_ARGUMENT }]);
    assert.equal(r.code, Status.INVALID_ARGUMENT);
    assert.equal(r.details, 'requested failure');
    assert.equal(r.reply, undefined);
  });

  test('Bidi echoes each request (all written, then half-close)', async () => {
    const r = await bidi(echo, ['x', 'y', 'z'].map((message) => ({ message })));
    assert.equal(r.code, Status.OK);
    assert.deepEqual(r.replies.map((x) => [x.message, x.index]), [['x', 0], ['y', 1], ['z', 2]]);
    assert.equal(r.trailers['x-echo-trailer'], 'yes');
  });

  test('Bidi ping-pong: each request is written only after the previous reply', async () => {
    const seen = [];
    const r = await bidi(echo, ['p1', 'p2', 'p3', 'p4'].map((message) => ({ message, delay_ms: 5 })), {
      pingPong: true,
      deadlineMs: 5000,
      onReply: (reply) => seen.push(reply.message),
    });
    assert.equal(r.code, Status.OK);
    assert.deepEqual(seen, ['p1', 'p2', 'p3', 'p4']);
    assert.deepEqual(r.replies.map((x) => x.index), [0, 1, 2, 3]);
  });

  test('Bidi with a fail_code request: replies before it, then that status', async () => {
    const r = await bidi(echo, [{ message: 'ok' }, { message: 'bad', fail_code: Status.ABORTED }, { message: 'never' }], {
      pingPong: true,
    });
    assert.equal(r.code, Status.ABORTED);
    assert.equal(r.details, 'requested failure');
    assert.deepEqual(r.replies.map((x) => x.message), ['ok']);
  });

  test('a deadline that expires: DEADLINE_EXCEEDED (4), seen by the server', async () => {
    const started = Date.now();
    const r = await unary(echo, { message: 'slow', delay_ms: 500 }, { deadlineMs: 100 });
    const took = Date.now() - started;
    assert.equal(r.code, Status.DEADLINE_EXCEEDED);
    assert.equal(r.reply, undefined);
    assert.ok(took >= 90 && took < 450, `took ${took} ms`);
    await eventually(() => srv.stats.cancellations['Echo/Unary'] === 1, { timeoutMs: 2000, message: 'server-side deadline' });
    assert.deepEqual(srv.stats.cancelEvents, [{ method: 'Echo/Unary', sent: 0, reason: 'deadline' }]);
  });

  test('fail_code 7: PERMISSION_DENIED as a trailers-only response', async () => {
    const r = await unary(echo, { message: 'no', fail_code: 7 });
    assert.equal(r.code, 7);
    assert.equal(r.code, Status.PERMISSION_DENIED);
    assert.equal(r.details, 'requested failure');
    assert.equal(r.reply, undefined);
    assert.equal(r.error.code, 7);
    // Trailers-only: no initial-metadata event; grpc-js puts every header of the one HEADERS
    // frame (content-type, date, ...) into the status metadata.
    assert.deepEqual(r.headers, {});
    assert.equal(r.trailers['x-echo-trailer'], 'yes');
    assert.match(r.trailers['content-type'], /^application\/grpc/);
    // No cancellation: the server finished the call itself.
    assert.deepEqual(srv.stats.cancellations, {});
  });

  test('fail_code on ServerStream: count replies, then the status', async () => {
    const r = await serverStream(echo, { count: 2, fail_code: Status.UNAVAILABLE });
    assert.equal(r.code, Status.UNAVAILABLE);
    assert.equal(r.replies.length, 2);
  });

  test('an 8 MiB payload round-trips through Unary', async () => {
    const payload = crypto.randomBytes(8 * 1024 * 1024);
    const r = await unary(echo, { message: 'big', payload }, { deadlineMs: 20_000 });
    assert.equal(r.code, Status.OK);
    assert.equal(r.reply.payload.length, payload.length);
    assert.ok(r.reply.payload.equals(payload), 'payload differs');
  });

  test('over 16 MiB is refused (RESOURCE_EXHAUSTED, 8)', async () => {
    const r = await unary(echo, { payload: Buffer.alloc(16 * 1024 * 1024 + 1) });
    assert.equal(r.code, Status.RESOURCE_EXHAUSTED);
    assert.equal(srv.stats.calls['Echo/Unary'] ?? 0, 0);
  });

  test('cancelling a server stream after 3 replies: the server sees it and stops', async () => {
    const r = await serverStream(echo, { message: 'c', count: 100, delay_ms: 20 }, { cancelAfter: 3 });
    assert.equal(r.code, Status.CANCELLED);
    assert.equal(r.replies.length, 3);
    await eventually(() => srv.stats.cancellations['Echo/ServerStream'] === 1, {
      timeoutMs: 2000, message: 'server-side cancellation',
    });
    const [ev] = srv.stats.cancelEvents;
    assert.equal(ev.method, 'Echo/ServerStream');
    assert.equal(ev.reason, 'cancelled');
    assert.ok(ev.sent >= 3 && ev.sent < 10, `sent ${ev.sent}`);
    await sleep(150);
    assert.equal(srv.stats.cancelEvents.length, 1);
  });

  test('Admin.Reset works (its own service and stats key)', async () => {
    const r = await unary(admin, { message: 'reset-me' }, { metadata: bearerMetadata('adm') });
    assert.equal(r.code, Status.OK);
    assert.equal(r.reply.message, 'reset-me');
    assert.equal(r.reply.metadata.authorization, 'Bearer adm');
    assert.equal(r.trailers['x-echo-trailer'], 'yes');
    assert.deepEqual(srv.stats.calls, { 'Admin/Reset': 1 });
  });

  for (const [how, code, details] of [['crash', Status.UNAVAILABLE, /ECONNRESET/],
    ['forceClose', Status.CANCELLED, /cancelled/i]]) {
    test(`an upstream that goes away mid-stream (${how}()): code ${code}`, async () => {
      const other = await startGrpcServer();
      const c = makeClient(other.address);
      try {
        const r = await serverStream(c, { count: 100, delay_ms: 20 }, {
          onReply: (reply) => { if (reply.index === 1) other[how](); },
        });
        assert.equal(r.code, code);
        assert.match(r.details, details);
        assert.equal(r.replies.length, 2);
        const again = await unary(c, { message: 'x' }, { deadlineMs: 1000 });
        assert.equal(again.code, Status.UNAVAILABLE);
      } finally {
        c.close();
        await other.close();
      }
    });
  }
});

// What the gateway must know: grpc-js reads only the HTTP status of a non-gRPC response.
describe('grpc-js client and non-gRPC HTTP/2 responses', { timeout: 30_000 }, () => {
  let h2;
  let client;
  let respond;

  before(async () => {
    h2 = http2.createServer();
    h2.on('stream', (stream, headers) => respond(stream, headers));
    await new Promise((resolve) => h2.listen(0, '127.0.0.1', resolve));
    client = makeClient(`127.0.0.1:${h2.address().port}`);
  });

  after(async () => {
    client?.close();
    await new Promise((resolve) => h2.close(resolve));
  });

  const jsonError = (status) => (stream) => {
    stream.respond({ ':status': status, 'content-type': 'application/json' });
    stream.end(JSON.stringify({ error: 'forbidden', reason: 'denied by policy' }));
  };

  for (const [http, code] of [[403, Status.PERMISSION_DENIED], [401, Status.UNAUTHENTICATED],
    [404, Status.UNIMPLEMENTED], [429, Status.UNAVAILABLE], [502, Status.UNAVAILABLE],
    [503, Status.UNAVAILABLE], [500, Status.UNKNOWN]]) {
    test(`HTTP ${http} with a JSON body -> code ${code}, body ignored`, async () => {
      respond = jsonError(http);
      const r = await unary(client, { message: 'x' });
      assert.equal(r.code, code);
      assert.equal(r.details, `Received HTTP status code ${http}`);
      assert.equal(r.headers['content-type'], 'application/json');
    });
  }

  test('HTTP 200 with a JSON body is misread as a gRPC frame (RESOURCE_EXHAUSTED)', async () => {
    respond = jsonError(200);
    const r = await unary(client, { message: 'x' });
    assert.equal(r.code, Status.RESOURCE_EXHAUSTED);
    assert.match(r.details, /larger than max/);
  });

  test('a trailers-only gRPC error written by hand is read as the gateway would send it', async () => {
    respond = (stream) => stream.respond({
      ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '7', 'grpc-message': 'denied%20by%20policy',
    }, { endStream: true });
    const r = await unary(client, { message: 'x' });
    assert.equal(r.code, Status.PERMISSION_DENIED);
    assert.equal(r.details, 'denied by policy');
    assert.deepEqual(r.headers, {});
  });
});
