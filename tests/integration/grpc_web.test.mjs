// gRPC-Web through the gateway, end to end: a small gRPC-Web client written in this file from
// the protocol document (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-WEB.md;
// messages encoded with protobufjs from tests/support/grpc/echo.proto) talks to the gateway
// over HTTP/1.1 (node:http, chunking under the test's control) and prior-knowledge h2c
// (node:http2). The gateway authenticates a real OpenID provider's token, applies the route's
// policy and translates the calls to gRPC towards the real grpc-js Echo server
// (tests/support/grpc/server.mjs) on an h2c upstream, and towards a recording node:http2
// upstream that shows exactly what the upstream receives. Covered:
//   - unary in binary and text mode over HTTP/1.1 and h2c: the reply message, initial metadata
//     in the headers, the trailer frame (0x80, "name: value\r\n", grpc-status 0, the
//     upstream's trailing metadata), metadata and identity headers forwarded, x-request-id;
//   - a text request body sent as several separately padded base64 chunks (chunked transfer
//     encoding on HTTP/1.1, several DATA frames on h2c), and one cut at arbitrary (non
//     4-character) places; the text answer is base64 with padding only at the very end;
//   - what the upstream receives: content-type application/grpc[+proto], te: trailers, no
//     Content-Length, the decoded frames byte for byte, forged identity headers stripped;
//     the answer's content-type is the client's gRPC-Web type without parameters;
//   - server streaming (5 replies, then the trailers, in order) in both modes and transports;
//     HTTP/1.1 keep-alive across gRPC-Web calls; 20 concurrent streams on one h2c connection;
//   - a 1 MiB payload in text mode, round trip byte for byte (HTTP/1.1 and h2c);
//   - upstream errors: a trailers-only answer (grpc-status 5 in the headers, no frames) and
//     an error after two streamed replies (grpc-status 5 in the trailer frame);
//   - the gateway's refusals, trailers-only (HTTP 200, the request's gRPC-Web content-type,
//     grpc-status + grpc-message, x-request-id, empty body): no token / bad token 16, policy
//     denial 7 (the upstream never called), unknown service 12, an http1 upstream 14, a text
//     body that is not base64 13 (also one ending inside a base64 group);
//   - route match on grpc_service + grpc_method and policies on grpc_method for gRPC-Web
//     calls, and the access log's grpc_method;
//   - plain HTTP/JSON requests on the same listener keep their JSON error bodies.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import { createRequire } from 'node:module';
import {
  startGateway, startUpstream, cleanupList, checkGatewayError, httpRequest, withTimeout, eventually,
} from '../support/harness.mjs';
import { startProvider, getToken } from '../support/oidc/client.mjs';
import { providerEntry, bearerConfig, anyAuthenticated } from '../support/bearer.mjs';
import { startGrpcServer } from '../support/grpc/server.mjs';
import { PROTO_PATH } from '../support/grpc/proto.mjs';

// protobufjs is @grpc/proto-loader's own dependency: resolve it from there.
const require = createRequire(import.meta.url);
const protobuf = createRequire(require.resolve('@grpc/proto-loader'))('protobufjs');

const PKG = 'portcullis.test.v1';
const ECHO = `${PKG}.Echo`;
const ADMIN = `${PKG}.Admin`;
const REC = `${PKG}.Rec`; // answered by the recording upstream
const LEGACY = `${PKG}.Legacy`; // routed to an http1 upstream
const UNARY = `/${ECHO}/Unary`;
const SERVER_STREAM = `/${ECHO}/ServerStream`;

// ---------------------------------------------------------------------------------------
// Messages (echo.proto through protobufjs, snake_case field names as in the .proto)

const protoRoot = new protobuf.Root().loadSync(PROTO_PATH, { keepCase: true });
const EchoRequest = protoRoot.lookupType(`${PKG}.EchoRequest`);
const EchoReply = protoRoot.lookupType(`${PKG}.EchoReply`);

const encodeRequest = (fields) => Buffer.from(EchoRequest.encode(EchoRequest.create(fields)).finish());
const encodeReply = (fields) => Buffer.from(EchoReply.encode(EchoReply.create(fields)).finish());
function decodeReply(bytes) {
  const o = EchoReply.toObject(EchoReply.decode(bytes), { defaults: true, longs: String });
  o.payload = Buffer.from(o.payload);
  return o;
}

// ---------------------------------------------------------------------------------------
// A gRPC-Web client (PROTOCOL-WEB.md)

const BASE64_CHARS = /^[A-Za-z0-9+/]*$/;
const PADDED_GROUPS = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** One length-prefixed frame: flag byte, 4-byte big-endian length, the bytes. */
function frame(bytes, flag = 0) {
  const head = Buffer.alloc(5);
  head[0] = flag;
  head.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([head, bytes]);
}

/** Splits a decoded body into frames; throws on a truncated one. */
function parseFrames(buf) {
  const frames = [];
  let pos = 0;
  while (pos < buf.length) {
    if (buf.length - pos < 5) throw new Error(`truncated frame header at byte ${pos} of ${buf.length}`);
    const flag = buf[pos];
    const len = buf.readUInt32BE(pos + 1);
    if (buf.length - pos - 5 < len) throw new Error(`truncated frame at byte ${pos}: ${len} announced, ${buf.length - pos - 5} there`);
    frames.push({ flag, data: buf.subarray(pos + 5, pos + 5 + len) });
    pos += 5 + len;
  }
  return frames;
}

/**
 * A text-mode body back to bytes. A conformant client accepts padding at the end of any
 * chunk, so the text is decoded segment by segment (each segment ends at its padding).
 */
function decodeTextBody(text) {
  assert.equal(text.length % 4, 0, `text body length ${text.length} is not a multiple of 4`);
  const segments = text.split(/(?<==)(?=[^=])/);
  return Buffer.concat(segments.map((seg) => {
    assert.match(seg, PADDED_GROUPS, `not base64: ${seg.slice(0, 80)}`);
    return Buffer.from(seg, 'base64');
  }));
}

/** The trailer frame's "name: value\r\n" lines: { map, names (as sent), text }. */
function parseTrailerBlock(data) {
  const text = data.toString('latin1');
  assert.ok(text === '' || text.endsWith('\r\n'), `trailer block does not end in CRLF: ${JSON.stringify(text)}`);
  const map = {};
  const names = [];
  for (const line of text.split('\r\n').slice(0, -1)) {
    const i = line.indexOf(':');
    assert.ok(i > 0, `bad trailer line ${JSON.stringify(line)}`);
    const name = line.slice(0, i);
    names.push(name);
    map[name.toLowerCase()] = line.slice(i + 1).trim();
  }
  return { map, names, text };
}

const TYPES = {
  binary: 'application/grpc-web+proto',
  text: 'application/grpc-web-text+proto',
};

/**
 * The request body as the chunks to send. binary: one Buffer (or `split` pieces). text: the
 * base64 of each piece of `split` (each piece padded on its own), or the whole body's base64
 * cut every `cutEvery` characters (pieces not on 4-character boundaries).
 */
function bodyChunks(bytes, mode, { split, cutEvery } = {}) {
  let pieces = [bytes];
  if (split) {
    pieces = [];
    let pos = 0;
    for (const at of split) { pieces.push(bytes.subarray(pos, at)); pos = at; }
    pieces.push(bytes.subarray(pos));
  }
  if (mode === 'binary') return pieces;
  if (cutEvery) {
    const text = bytes.toString('base64');
    const out = [];
    for (let i = 0; i < text.length; i += cutEvery) out.push(Buffer.from(text.slice(i, i + cutEvery), 'latin1'));
    return out;
  }
  return pieces.map((p) => Buffer.from(p.toString('base64'), 'latin1'));
}

/** Writes chunks one after the other, each flushed (its callback) before the next. */
async function writeChunks(writable, chunks) {
  for (const c of chunks) {
    await new Promise((resolve, reject) => writable.write(c, (e) => (e ? reject(e) : resolve())));
  }
  writable.end();
}

function h1Exchange({ port, path, headers, chunks, chunked, agent }) {
  return new Promise((resolve, reject) => {
    const h = { ...headers };
    if (!chunked) h['content-length'] = String(chunks.reduce((n, c) => n + c.length, 0));
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path, headers: h, agent: agent ?? false }, (res) => {
      const data = [];
      res.on('data', (c) => data.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({
        httpVersion: res.httpVersion,
        status: res.statusCode,
        headers: res.headers,
        httpTrailers: res.trailers,
        body: Buffer.concat(data),
        reusedSocket: req.reusedSocket,
        localPort: req.socket?.localPort,
      }));
    });
    req.on('error', reject);
    if (chunked) writeChunks(req, chunks).catch(() => { /* the answer (or its error) decides */ });
    else req.end(Buffer.concat(chunks));
  });
}

function h2Exchange({ session, path, headers, chunks }) {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': path, ...headers });
    const out = { httpVersion: '2.0', status: 0, headers: {}, httpTrailers: {}, body: null };
    const data = [];
    req.on('response', (h) => { out.headers = h; out.status = Number(h[':status']); });
    req.on('trailers', (t) => { out.httpTrailers = t; });
    req.on('data', (c) => data.push(c));
    req.on('error', (e) => { out.error = e; });
    req.on('close', () => {
      out.body = Buffer.concat(data);
      out.rstCode = req.rstCode;
      if (!out.status) reject(out.error ?? new Error(`stream closed without a response (rst ${req.rstCode})`));
      else resolve(out);
    });
    writeChunks(req, chunks).catch(() => { /* the answer (or its error) decides */ });
  });
}

/**
 * One gRPC-Web call. Returns the raw exchange plus the parsed answer:
 * {status, headers, body, text (text mode), frames, messages (decoded EchoReply), trailerFrame
 * ({map, names, text} or null), grpcStatus, grpcMessage (from the trailer frame, else the
 * headers), httpTrailers}. Does not assert; see checkWebAnswer.
 */
async function webCall(ctx, {
  transport = 'h1', mode = 'binary', path = UNARY, requests = [], body, contentType,
  token = ctx.token, headers = {}, split, cutEvery, chunks: rawChunks, chunked, agent,
}) {
  const bytes = body ?? Buffer.concat(requests.map((r) => frame(encodeRequest(r))));
  const chunks = rawChunks ?? bodyChunks(bytes, mode, { split, cutEvery });
  const ct = contentType ?? TYPES[mode];
  const h = {
    'content-type': ct,
    accept: ct,
    'x-grpc-web': '1',
    'x-user-agent': 'grpc-web-javascript/0.1',
    ...(token ? { authorization: `Bearer ${token}` } : {}),
    ...headers,
  };
  const exchange = transport === 'h1'
    ? h1Exchange({ port: ctx.port, path, headers: h, chunks, chunked: chunked ?? chunks.length > 1, agent })
    : h2Exchange({ session: ctx.session(), path, headers: h, chunks });
  const r = await withTimeout(exchange, 30_000, `gRPC-Web ${transport} ${mode} ${path}`);
  r.mode = mode;
  r.requestType = ct;
  if (r.status === 200 && r.body.length > 0 && /^application\/grpc-web/.test(String(r.headers['content-type']))) {
    let decoded = r.body;
    if (mode === 'text') {
      r.text = r.body.toString('latin1');
      decoded = decodeTextBody(r.text);
    }
    r.frames = parseFrames(decoded);
  } else {
    r.frames = [];
  }
  r.messageFrames = r.frames.filter((f) => (f.flag & 0x80) === 0);
  const trailerFrames = r.frames.filter((f) => (f.flag & 0x80) !== 0);
  r.trailerFrame = trailerFrames.length ? parseTrailerBlock(trailerFrames.at(-1).data) : null;
  r.trailerFrameCount = trailerFrames.length;
  r.messages = r.messageFrames.map((f) => decodeReply(f.data));
  const from = r.trailerFrame?.map ?? r.headers;
  r.grpcStatus = from['grpc-status'];
  r.grpcMessage = from['grpc-message'] === undefined ? undefined : decodeURIComponent(from['grpc-message']);
  return r;
}

const describeAnswer = (r) => JSON.stringify({
  ...(r.failed ? { failed: r.failed } : {}),
  status: r.status, headers: r.headers, frames: r.frames?.length,
  trailers: r.trailerFrame?.map, body: r.body?.subarray(0, 200).toString('latin1'),
});

/**
 * The framing every gRPC-Web answer must have: 200, the client's type without parameters,
 * x-request-id, no HTTP trailers; text mode: base64, padded only at the very end; messages
 * first, then at most one trailer frame, last.
 */
function checkWebAnswer(r, { contentType } = {}) {
  const why = describeAnswer(r);
  assert.equal(r.status, 200, why);
  assert.equal(r.headers['content-type'], contentType ?? r.requestType.split(';')[0].trim().toLowerCase(), why);
  assert.match(String(r.headers['x-request-id'] ?? ''), /\S/, `x-request-id missing: ${why}`);
  assert.deepEqual(Object.keys(r.httpTrailers ?? {}).filter((k) => !k.startsWith(':')), [], 'gRPC-Web answers carry no HTTP trailers');
  if (r.mode === 'text' && r.body.length > 0) {
    const text = r.body.toString('latin1');
    assert.match(text.replace(/=+$/, ''), BASE64_CHARS, 'text answer: base64 only, padding only at the very end');
    assert.equal(text.length % 4, 0);
  }
  if (r.trailerFrame) {
    assert.equal(r.trailerFrameCount, 1, 'one trailer frame');
    assert.ok((r.frames.at(-1).flag & 0x80) !== 0, 'the trailer frame is the last frame');
    assert.equal(r.frames.at(-1).flag, 0x80, 'trailer frame flag 0x80 (uncompressed)');
    for (const n of r.trailerFrame.names) assert.equal(n, n.toLowerCase(), `trailer name ${n} not lower case`);
  }
}

/** Runs fn; a failed assertion's message gets `label` in front. */
function withContext(label, fn) {
  try {
    fn();
  } catch (e) {
    e.message = `${label}: ${e.message}`;
    throw e;
  }
}

/** A successful call: 200, grpc-status 0 in the trailer frame, n replies. */
function checkOk(r, n, opts) {
  checkWebAnswer(r, opts);
  assert.ok(r.trailerFrame, `no trailer frame: ${describeAnswer(r)}`);
  assert.equal(r.trailerFrame.map['grpc-status'], '0', describeAnswer(r));
  assert.equal(r.headers['grpc-status'], undefined, 'grpc-status is in the trailer frame, not the headers');
  assert.equal(r.messages.length, n, describeAnswer(r));
}

/**
 * A trailers-only answer: 200, the request's gRPC-Web content type, grpc-status (code) and a
 * grpc-message in the headers, x-request-id, an empty body.
 */
function checkTrailersOnly(r, code, messageRe) {
  const why = describeAnswer(r);
  checkWebAnswer(r);
  assert.equal(r.headers['grpc-status'], String(code), why);
  assert.equal(typeof r.headers['grpc-message'], 'string', why);
  if (messageRe) assert.match(decodeURIComponent(r.headers['grpc-message']), messageRe, why);
  assert.equal(r.body.length, 0, `trailers-only: no body (${why})`);
}

// ---------------------------------------------------------------------------------------
// A recording h2c upstream: keeps each request's headers and body, answers one EchoReply
// frame and trailers (grpc-status 0, a percent-encoded grpc-message, a custom trailer).

async function startRecorder() {
  const requests = [];
  const sessions = new Set();
  const server = http2.createServer();
  server.on('session', (s) => { sessions.add(s); s.on('close', () => sessions.delete(s)); s.on('error', () => {}); });
  server.on('stream', (stream, headers) => {
    const data = [];
    stream.on('error', () => {});
    stream.on('data', (c) => data.push(c));
    stream.on('end', () => {
      requests.push({ headers: { ...headers }, body: Buffer.concat(data) });
      stream.respond({ ':status': 200, 'content-type': 'application/grpc+proto', 'x-rec-header': 'yes' },
        { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({
        'grpc-status': '0', 'grpc-message': 'all%20good', 'x-rec-trailer': 'Mixed Case Value',
      }));
      stream.end(frame(encodeReply({ message: 'recorded', index: requests.length })));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${server.address().port}`,
    requests,
    close: () => new Promise((resolve) => {
      for (const s of sessions) s.destroy();
      server.close(() => resolve());
    }),
  };
}

// ---------------------------------------------------------------------------------------

describe('gRPC-Web through the gateway (HTTP/1.1 and h2c clients, h2c upstream)', { timeout: 180_000 }, () => {
  const cleanup = cleanupList();
  const ctx = { token: null, port: 0, session: null };
  let idp;
  let grpcServer;
  let recorder;
  let legacy;
  let gw;
  let address;
  let h2session;

  before(async () => {
    idp = await startProvider({ algs: ['RS256'] });
    cleanup.add(() => idp.stop());
    grpcServer = await startGrpcServer();
    cleanup.add(() => grpcServer.close());
    recorder = await startRecorder();
    cleanup.add(() => recorder.close());
    legacy = await startUpstream({ name: 'legacy' });
    cleanup.add(() => legacy.close());
    const { config } = await bearerConfig({
      upstream: legacy,
      providers: [providerEntry(idp)],
      routes: [
        // Unary has a route of its own whose policy reads grpc_method: a Unary call that
        // succeeds shows both the route match and the policy's view of the call.
        { name: 'echo-unary', match: { grpc_service: ECHO, grpc_method: 'Unary' }, upstream: 'grpc', auth: 'bearer',
          policy: { allow: { grpc_method: { is: UNARY } } }, show_deny_reason: true },
        { name: 'echo', match: { grpc_service: ECHO }, upstream: 'grpc', auth: 'bearer',
          policy: anyAuthenticated, show_deny_reason: true },
        { name: 'admin', match: { grpc_service: ADMIN }, upstream: 'grpc', auth: 'bearer',
          policy: { allow: { grpc_method: { is: `/${ADMIN}/Status` } } }, show_deny_reason: true },
        { name: 'rec', match: { grpc_service: REC }, upstream: 'rec', auth: 'bearer', policy: anyAuthenticated },
        { name: 'legacy', match: { grpc_service: LEGACY }, upstream: 'echo', auth: 'bearer', policy: anyAuthenticated },
        { name: 'plain', match: { path_prefix: '/plain' }, upstream: 'echo', auth: 'public' },
        { name: 'orders', match: { path_prefix: '/orders' }, upstream: 'echo', auth: 'bearer', policy: anyAuthenticated },
      ],
    });
    config.upstreams = [
      { name: 'echo', endpoints: [legacy.address] },
      { name: 'grpc', protocol: 'h2c', endpoints: [grpcServer.address] },
      { name: 'rec', protocol: 'h2c', endpoints: [recorder.address] },
    ];
    gw = await startGateway({ config });
    cleanup.add(() => gw.stop());
    address = config.listeners[0].address;
    ctx.port = Number(address.split(':')[1]);
    ctx.token = await getToken({ scope: 'orders:read' });
    ctx.session = () => {
      if (!h2session || h2session.closed || h2session.destroyed) {
        h2session = http2.connect(`http://${address}`);
        h2session.on('error', () => {});
        const s = h2session;
        cleanup.add(() => s.destroy());
      }
      return h2session;
    };
  });

  after(() => cleanup.run());

  test('unary, binary, HTTP/1.1: reply, initial metadata, trailer frame, metadata and identity forwarded', async () => {
    const payload = crypto.randomBytes(1000);
    const r = await webCall(ctx, {
      requests: [{ message: 'hello', payload }],
      headers: { 'x-test-meta': 'abc' },
    });
    assert.equal(r.httpVersion, '1.1');
    checkOk(r, 1);
    const [reply] = r.messages;
    assert.equal(reply.message, 'hello');
    assert.ok(reply.payload.equals(payload), 'payload changed on the way');
    assert.equal(r.headers['x-echo-header'], 'yes', 'the upstream\'s initial metadata arrives as headers');
    assert.equal(r.trailerFrame.map['x-echo-trailer'], 'yes', `trailers: ${r.trailerFrame.text}`);
    // What the grpc-js server received (it echoes its metadata; content-type/te are not metadata).
    const md = reply.metadata;
    assert.equal(md['x-test-meta'], 'abc', JSON.stringify(md));
    assert.equal(md['x-grpc-web'], '1', 'the client\'s other headers are forwarded');
    assert.equal(md.authorization, `Bearer ${ctx.token}`, 'forward_token defaults to true');
    assert.ok(md['x-portcullis-user'], `identity header missing: ${JSON.stringify(md)}`);
    assert.ok(md['x-portcullis-assertion'], 'assertion missing');
    assert.equal(md['x-request-id'], r.headers['x-request-id'], 'the upstream saw the answer\'s request id');
    assert.equal(md['content-length'], undefined, 'no Content-Length towards the upstream');
  });

  test('unary, text, HTTP/1.1: body in separately padded base64 chunks (chunked), answer decoded from base64', async () => {
    const req = { message: 'text mode', payload: Buffer.from('0123456789abcdef') };
    const bytes = frame(encodeRequest(req));
    const chunks = bodyChunks(bytes, 'text', { split: [1, 5, 12] });
    // Pieces of 1, 4, 7 and 22 bytes (none a multiple of 3): each chunk ends in its own padding.
    assert.equal(chunks.length, 4);
    assert.ok(chunks.every((c) => c.toString().endsWith('=')), `chunks padded on their own: ${chunks.join(' ')}`);
    const r = await webCall(ctx, { mode: 'text', body: bytes, chunks, chunked: true, contentType: 'application/grpc-web-text' });
    checkOk(r, 1);
    assert.equal(r.headers['content-type'], 'application/grpc-web-text');
    assert.equal(r.messages[0].message, 'text mode');
    assert.ok(r.messages[0].payload.equals(req.payload));
    assert.equal(r.trailerFrame.map['x-echo-trailer'], 'yes');
  });

  test('HTTP/1.1 keep-alive: successive gRPC-Web calls (binary, text, streaming) on one connection', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const answers = [];
      for (const [mode, path, req] of [
        ['binary', UNARY, { message: 'k1' }],
        ['text', UNARY, { message: 'k2' }],
        ['text', SERVER_STREAM, { message: 'k3', count: 3 }],
        ['binary', UNARY, { message: 'k4' }],
      ]) {
        const r = await webCall(ctx, { mode, path, requests: [req], agent, split: mode === 'text' ? [3] : undefined });
        checkOk(r, path === UNARY ? 1 : 3);
        assert.ok(r.messages.every((m) => m.message === req.message));
        answers.push(r);
      }
      assert.deepEqual(answers.map((r) => r.reusedSocket), [false, true, true, true], 'one keep-alive connection');
      assert.equal(new Set(answers.map((r) => r.localPort)).size, 1, 'the same client socket throughout');
    } finally {
      agent.destroy();
    }
  });

  test('server streaming over HTTP/1.1, binary and text: five replies, then the trailers, in order', async () => {
    for (const mode of ['binary', 'text']) {
      const r = await webCall(ctx, {
        mode, path: SERVER_STREAM, requests: [{ message: `s-${mode}`, count: 5, delay_ms: 5, payload: Buffer.from('xy') }],
      });
      checkOk(r, 5);
      assert.deepEqual(r.messages.map((m) => m.index), [0, 1, 2, 3, 4], mode);
      assert.ok(r.messages.every((m) => m.message === `s-${mode}` && m.payload.toString() === 'xy'), mode);
      assert.equal(r.frames.length, 6, `${mode}: 5 messages + 1 trailer frame`);
      assert.equal(r.trailerFrame.map['x-echo-trailer'], 'yes');
    }
  });

  test('unary and server streaming over h2c, binary and text (text body in two padded DATA frames)', async () => {
    for (const mode of ['binary', 'text']) {
      const req = { message: `h2-${mode}`, payload: Buffer.from('abcde') };
      const r = await webCall(ctx, {
        transport: 'h2', mode, requests: [req], split: [2], headers: { 'x-test-meta': `h2-${mode}` },
      });
      assert.equal(r.httpVersion, '2.0');
      checkOk(r, 1);
      assert.equal(r.messages[0].message, `h2-${mode}`);
      assert.ok(r.messages[0].payload.equals(req.payload));
      assert.equal(r.messages[0].metadata['x-test-meta'], `h2-${mode}`);
      assert.ok(r.messages[0].metadata['x-portcullis-user']);
      assert.equal(r.messages[0].metadata['x-request-id'], r.headers['x-request-id']);
      assert.equal(r.headers['x-echo-header'], 'yes');
      assert.equal(r.trailerFrame.map['x-echo-trailer'], 'yes');

      const ss = await webCall(ctx, {
        transport: 'h2', mode, path: SERVER_STREAM, requests: [{ message: 's', count: 5, delay_ms: 5 }],
      });
      checkOk(ss, 5);
      assert.deepEqual(ss.messages.map((m) => m.index), [0, 1, 2, 3, 4], mode);
    }
  });

  test('h2c: twenty concurrent gRPC-Web streams on one connection, mixed modes, each gets its own answer', async () => {
    const calls = [];
    for (let i = 0; i < 20; i++) {
      const mode = i % 2 ? 'text' : 'binary';
      const streaming = i % 5 === 0;
      calls.push(webCall(ctx, {
        transport: 'h2', mode, path: streaming ? SERVER_STREAM : UNARY,
        requests: [{ message: `c${i}`, payload: crypto.randomBytes(100 + i * 37), count: streaming ? 3 : 0, delay_ms: 2 }],
        split: mode === 'text' ? [7] : undefined,
      }).then((r) => ({ i, streaming, r })));
    }
    const ids = new Set();
    for (const { i, streaming, r } of await Promise.all(calls)) {
      checkOk(r, streaming ? 3 : 1);
      assert.ok(r.messages.every((m) => m.message === `c${i}`), `stream ${i} got another stream's reply`);
      assert.ok(r.messages.every((m) => m.payload.length === 100 + i * 37));
      ids.add(r.headers['x-request-id']);
    }
    assert.equal(ids.size, 20, 'one request id per call');
  });

  test('what the upstream receives: application/grpc[+proto], te: trailers, no length, the decoded frames', async () => {
    const cases = [
      { transport: 'h1', mode: 'binary', contentType: 'application/grpc-web', upstreamType: 'application/grpc', answerType: 'application/grpc-web' },
      { transport: 'h1', mode: 'text', contentType: 'application/grpc-web-text+proto', upstreamType: 'application/grpc+proto', answerType: 'application/grpc-web-text+proto', split: [3, 10] },
      { transport: 'h2', mode: 'binary', contentType: 'application/grpc-web+proto; charset=utf-8', upstreamType: 'application/grpc+proto', answerType: 'application/grpc-web+proto' },
      { transport: 'h2', mode: 'text', contentType: 'application/grpc-web-text', upstreamType: 'application/grpc', answerType: 'application/grpc-web-text', split: [4] },
    ];
    for (const c of cases) {
      const label = `${c.transport} ${c.contentType}`;
      const bytes = Buffer.concat([frame(encodeRequest({ message: 'one' })), frame(encodeRequest({ message: 'two', payload: crypto.randomBytes(100) }))]);
      const before = recorder.requests.length;
      const r = await webCall(ctx, {
        transport: c.transport, mode: c.mode, path: `/${REC}/Call`, body: bytes, split: c.split,
        contentType: c.contentType, headers: { 'x-test-meta': label, 'x-portcullis-user': 'forged-admin' },
      });
      checkOk(r, 1, { contentType: c.answerType });
      assert.equal(r.messages[0].message, 'recorded', label);
      assert.equal(r.headers['x-rec-header'], 'yes', label);
      assert.equal(r.trailerFrame.map['grpc-message'], 'all%20good', `${label}: grpc-message relayed as sent`);
      assert.equal(r.trailerFrame.map['x-rec-trailer'], 'Mixed Case Value', label);
      assert.equal(recorder.requests.length, before + 1, label);
      const seen = recorder.requests.at(-1);
      assert.equal(seen.headers['content-type'], c.upstreamType, label);
      assert.equal(seen.headers.te, 'trailers', label);
      assert.equal(seen.headers['content-length'], undefined, label);
      assert.equal(seen.headers[':path'], `/${REC}/Call`, label);
      assert.equal(seen.headers[':method'], 'POST', label);
      assert.equal(seen.headers['x-test-meta'], label);
      assert.ok(seen.headers['x-portcullis-user'] && seen.headers['x-portcullis-user'] !== 'forged-admin',
        `${label}: a client cannot inject identity headers (${seen.headers['x-portcullis-user']})`);
      assert.ok(seen.body.equals(bytes), `${label}: the upstream got the decoded frames byte for byte`);
    }
  });

  test('a 1 MiB payload in text mode, round trip byte for byte (HTTP/1.1 and h2c)', async () => {
    for (const transport of ['h1', 'h2']) {
      const payload = crypto.randomBytes(1024 * 1024);
      // The base64 cut every 65537 characters: chunk boundaries inside base64 groups.
      const r = await webCall(ctx, { transport, mode: 'text', requests: [{ message: 'big', payload }], cutEvery: 65_537 });
      checkOk(r, 1);
      assert.equal(r.messages[0].message, 'big');
      assert.equal(r.messages[0].payload.length, payload.length, transport);
      assert.ok(r.messages[0].payload.equals(payload), `${transport}: payload changed on the way`);
    }
  });

  test('an upstream error: trailers-only grpc-status 5 in the headers; after streamed replies, in the trailer frame', async () => {
    for (const transport of ['h1', 'h2']) {
      for (const mode of ['binary', 'text']) {
        const label = `${transport} ${mode}`;
        const r = await webCall(ctx, { transport, mode, requests: [{ message: 'x', fail_code: 5 }] });
        checkWebAnswer(r);
        assert.equal(r.messages.length, 0, label);
        assert.equal(r.grpcStatus, '5', `${label}: ${describeAnswer(r)}`);
        assert.equal(r.grpcMessage, 'requested failure', label);
        assert.equal(r.headers['grpc-status'], '5', `${label}: the upstream answered trailers-only`);
        assert.equal(r.trailerFrame, null, `${label}: no trailer frame after a trailers-only answer`);

        const ss = await webCall(ctx, { transport, mode, path: SERVER_STREAM, requests: [{ message: 'y', count: 2, fail_code: 5 }] });
        checkWebAnswer(ss);
        assert.deepEqual(ss.messages.map((m) => m.index), [0, 1], label);
        assert.ok(ss.trailerFrame, `${label}: trailer frame: ${describeAnswer(ss)}`);
        assert.equal(ss.trailerFrame.map['grpc-status'], '5', label);
        assert.equal(decodeURIComponent(ss.trailerFrame.map['grpc-message']), 'requested failure', label);
        assert.equal(ss.headers['grpc-status'], undefined, label);
      }
    }
  });

  test('no token and a bad token: trailers-only UNAUTHENTICATED (16) with the request\'s content type', async () => {
    const calls = grpcServer.stats.calls['Echo/Unary'] ?? 0;
    for (const transport of ['h1', 'h2']) {
      for (const mode of ['binary', 'text']) {
        const none = await webCall(ctx, { transport, mode, token: null, requests: [{ message: 'x' }] });
        checkTrailersOnly(none, 16);
        assert.equal(none.headers['content-type'], TYPES[mode]);
        const bad = await webCall(ctx, { transport, mode, token: 'not.a.token', requests: [{ message: 'x' }] });
        checkTrailersOnly(bad, 16);
      }
    }
    const plain = await webCall(ctx, { token: null, contentType: 'application/grpc-web', requests: [{ message: 'x' }] });
    checkTrailersOnly(plain, 16);
    assert.equal(plain.headers['content-type'], 'application/grpc-web');
    assert.equal(grpcServer.stats.calls['Echo/Unary'] ?? 0, calls, 'a refused call reached the upstream');
  });

  test('a method the policy does not allow: trailers-only PERMISSION_DENIED (7), the upstream never called', async () => {
    for (const transport of ['h1', 'h2']) {
      for (const mode of ['binary', 'text']) {
        const r = await webCall(ctx, { transport, mode, path: `/${ADMIN}/Reset`, requests: [{ message: 'reset' }] });
        checkTrailersOnly(r, 7, /denied|policy|rule/i);
      }
    }
    assert.equal(grpcServer.stats.calls['Admin/Reset'] ?? 0, 0, 'a denied call reached the upstream');
  });

  test('an unknown service: trailers-only UNIMPLEMENTED (12)', async () => {
    for (const transport of ['h1', 'h2']) {
      for (const mode of ['binary', 'text']) {
        const r = await webCall(ctx, { transport, mode, path: `/${PKG}.Nope/Call`, requests: [{ message: 'x' }] });
        checkTrailersOnly(r, 12);
      }
    }
  });

  test('a gRPC-Web call routed to an http1 upstream: trailers-only UNAVAILABLE (14), nothing sent upstream', async () => {
    const before = legacy.requests.length;
    for (const transport of ['h1', 'h2']) {
      for (const mode of ['binary', 'text']) {
        const r = await webCall(ctx, { transport, mode, path: `/${LEGACY}/Call`, requests: [{ message: 'x' }] });
        checkTrailersOnly(r, 14, /HTTP\/2 upstream/);
      }
    }
    assert.equal(legacy.requests.length, before, 'the http1 upstream got a request');
  });

  test('a text body that is not base64: trailers-only INTERNAL (13), the upstream handler never runs', async () => {
    const calls = grpcServer.stats.calls['Echo/Unary'] ?? 0;
    const good = frame(encodeRequest({ message: 'x' })).toString('base64');
    // '!' is no base64 character; the upstream (grpc-js) waits for the whole request before
    // answering, so the gateway has not started its answer when it meets it. Both transports
    // are tried before anything is asserted, so a failure shows both answers.
    const answers = {};
    for (const transport of ['h1', 'h2']) {
      answers[transport] = await webCall(ctx, { transport, mode: 'text', chunks: [Buffer.from(`${good}!!!!`)] })
        .catch((e) => ({ status: 0, headers: {}, body: Buffer.alloc(0), failed: e.message }));
    }
    for (const [transport, r] of Object.entries(answers)) {
      withContext(`${transport} (all answers: ${Object.entries(answers).map(([t, a]) => `${t} -> ${describeAnswer(a)}`).join(' | ')})`,
        () => checkTrailersOnly(r, 13, /base64/));
    }
    assert.equal(grpcServer.stats.calls['Echo/Unary'] ?? 0, calls, 'the upstream handler ran for a refused body');
    for (const r of Object.values(answers)) {
      const id = r.headers['x-request-id'];
      const e = await eventually(() => gw.accessLog().find((x) => x.request_id === id), { message: `access log line ${id}` });
      assert.deepEqual([e.grpc_method, e.status, e.error], [UNARY, 400, 'bad_grpc_web_body'], JSON.stringify(e));
    }
  });

  test('a text body that ends inside a base64 group is refused too (13), not silently cut', async () => {
    const calls = grpcServer.stats.calls['Echo/Unary'] ?? 0;
    const cancelled0 = grpcServer.stats.cancellations['Echo/Unary'] ?? 0;
    const good = frame(encodeRequest({ message: 'x' })).toString('base64');
    const answers = {};
    for (const transport of ['h1', 'h2']) {
      // A whole frame, then one stray base64 character (6 bits, which no decoder can use) in
      // a chunk of its own. The upstream only answers a unary call after the request's end.
      answers[transport] = await webCall(ctx, { transport, mode: 'text', chunks: [Buffer.from(good), Buffer.from('Q')] })
        .catch((e) => ({ status: 0, headers: {}, body: Buffer.alloc(0), failed: e.message }));
    }
    for (const [transport, r] of Object.entries(answers)) {
      withContext(`${transport} (all answers: ${Object.entries(answers).map(([t, a]) => `${t} -> ${describeAnswer(a)}`).join(' | ')})`,
        () => checkTrailersOnly(r, 13, /base64/));
    }
    // The gateway streams: the whole first frame may already have reached the upstream (grpc-js
    // starts a unary handler once the message is in), but the call never ends there: it is
    // cancelled (RST_STREAM), so no handler completes on a truncated body.
    const started = (grpcServer.stats.calls['Echo/Unary'] ?? 0) - calls;
    await eventually(() => (grpcServer.stats.cancellations['Echo/Unary'] ?? 0) - cancelled0 === started,
      { message: 'every upstream call the truncated bodies started was cancelled' });
  });

  test('routes match grpc_service + grpc_method for gRPC-Web, policies and the access log see grpc_method', async () => {
    // echo-unary's policy allows only grpc_method /portcullis.test.v1.Echo/Unary: the call
    // going through shows the route match and the policy's view of the call at once.
    const u = await webCall(ctx, { mode: 'text', requests: [{ message: 'route' }] });
    checkOk(u, 1);
    const ss = await webCall(ctx, { transport: 'h2', path: SERVER_STREAM, requests: [{ message: 'route', count: 1 }] });
    checkOk(ss, 1);
    const denied = await webCall(ctx, { path: `/${ADMIN}/Reset`, requests: [{ message: 'route' }] });
    checkTrailersOnly(denied, 7);
    const entries = await eventually(() => {
      const byId = new Map(gw.accessLog().map((e) => [e.request_id, e]));
      const found = [u, ss, denied].map((r) => byId.get(r.headers['x-request-id']));
      return found.every(Boolean) && found;
    }, { message: 'the three calls in the access log' });
    const [eu, ess, ed] = entries;
    assert.deepEqual([eu.route, eu.grpc_method, eu.decision, eu.status, eu.upstream], ['echo-unary', UNARY, 'allow', 200, 'grpc'], JSON.stringify(eu));
    assert.deepEqual([ess.route, ess.grpc_method, ess.decision, ess.status], ['echo', SERVER_STREAM, 'allow', 200], JSON.stringify(ess));
    assert.deepEqual([ed.route, ed.grpc_method, ed.decision, ed.status], ['admin', `/${ADMIN}/Reset`, 'deny', 403], JSON.stringify(ed));
  });

  test('plain HTTP/JSON on the same listener still gets JSON errors and normal answers', async () => {
    // The same gRPC path without a gRPC-Web content type is an ordinary HTTP request.
    const json = await httpRequest({
      port: ctx.port, method: 'POST', path: UNARY, headers: { 'content-type': 'application/json' }, body: '{}',
    });
    checkGatewayError(assert, json, 401);
    assert.match(json.headers['content-type'], /^application\/json/);
    assert.equal(json.headers['grpc-status'], undefined);
    // A near miss is not gRPC-Web either.
    const nearMiss = await httpRequest({
      port: ctx.port, method: 'POST', path: UNARY, headers: { 'content-type': 'application/grpc-webx' }, body: 'x',
    });
    checkGatewayError(assert, nearMiss, 401);
    checkGatewayError(assert, await httpRequest({ port: ctx.port, path: '/nowhere' }), 404, 'no_route');
    checkGatewayError(assert, await httpRequest({ port: ctx.port, path: '/orders/1' }), 401);
    const ok = await httpRequest({ port: ctx.port, path: '/plain/hello', headers: { 'x-test-meta': 'plain' } });
    assert.equal(ok.status, 200, ok.body);
    assert.equal(ok.json().url, '/plain/hello');
    assert.equal(ok.json().headers['x-test-meta'], 'plain');
    // And over h2c.
    const h2 = await withTimeout(new Promise((resolve, reject) => {
      const req = ctx.session().request({ ':method': 'GET', ':path': '/nowhere' });
      let headers;
      const data = [];
      req.on('response', (h) => { headers = h; });
      req.on('data', (c) => data.push(c));
      req.on('error', reject);
      req.on('close', () => resolve({ status: Number(headers?.[':status']), headers: headers ?? {}, body: Buffer.concat(data).toString() }));
      req.end();
    }), 10_000, 'h2c GET /nowhere');
    checkGatewayError(assert, h2, 404, 'no_route');
  });
});
