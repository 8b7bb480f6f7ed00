// gRPC client helpers for the tests (@grpc/grpc-js, plaintext HTTP/2 = h2c): calls echo.proto's
// Echo/Admin services at any host:port — the gateway, or the fixture server (server.mjs).
//
// Convention: every call helper RESOLVES, also when the call fails; it never rejects for a
// gRPC status (only for a bad argument). The result always has:
//   code      the gRPC status code (0 OK, 1 CANCELLED, 4 DEADLINE_EXCEEDED, 7 PERMISSION_DENIED,
//             14 UNAVAILABLE, ...; grpc.status / Status has the names)
//   details   the status message ('OK' on success, e.g. 'requested failure')
//   headers   the response's initial metadata as a plain object ({} when none arrived)
//   trailers  the status (trailing) metadata as a plain object
//   error     the grpc-js ServiceError when code != 0 (undefined on success)
// plus `reply` (Unary, ClientStream; undefined on error) or `replies` (ServerStream, Bidi:
// every reply received before the status). Metadata objects come from metadataToObject():
// keys lower case, repeated values joined with ', ', -bin values base64.
//
//   const c = makeClient(srv.address);                       // Echo; { service: 'Admin' }
//   const r = await unary(c, { message: 'hi' }, { metadata: bearerMetadata(tok), deadlineMs: 2000 });
//   assert.equal(r.code, 0); r.reply.message; r.reply.metadata.authorization; r.trailers['x-echo-trailer']
//   await serverStream(c, { count: 5, delay_ms: 10 }, { cancelAfter: 3 }) // -> code 1, 3 replies
//   await clientStream(c, [{ message: 'a' }, { message: 'b' }])          // reply.message 'ab'
//   await bidi(c, [{ message: 'a' }, { message: 'b' }], { pingPong: true })
//   c.close();
//
// Request fields are echo.proto's (snake_case): message, payload (a Buffer — a string would be
// read as base64), count, delay_ms, fail_code. `metadata` may be a grpc Metadata or a plain
// object { key: value | [values] }. Clients allow 16 MiB messages each way.
import grpc from '@grpc/grpc-js';
import { loadEchoPackage, metadataToObject, MAX_MESSAGE_BYTES } from './proto.mjs';

export { metadataToObject };
export const Status = grpc.status;
export const { Metadata } = grpc;

/**
 * A grpc-js client for `service` ('Echo' or 'Admin') at address ('host:port'), insecure (h2c).
 * authority: the :authority to send (default: address). options: extra grpc-js channel options.
 * Close it with client.close().
 */
export function makeClient(address, { service = 'Echo', authority, options = {} } = {}) {
  const ctor = loadEchoPackage()[service];
  if (!ctor) throw new Error(`unknown service ${service} (Echo or Admin)`);
  return new ctor(address, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
    ...(authority ? { 'grpc.default_authority': authority } : {}),
    ...options,
  });
}

/** Metadata with `authorization: Bearer TOKEN` (plus any extra { key: value } pairs). */
export function bearerMetadata(token, extra = {}) {
  const md = toMetadata(extra);
  md.set('authorization', `Bearer ${token}`);
  return md;
}

/** A grpc Metadata from a Metadata (returned as is), a plain object, or undefined. */
export function toMetadata(md) {
  if (md instanceof grpc.Metadata) return md;
  const out = new grpc.Metadata();
  for (const [key, value] of Object.entries(md ?? {})) {
    for (const v of Array.isArray(value) ? value : [value]) out.add(key, v);
  }
  return out;
}

function callOptions(deadlineMs) {
  return deadlineMs > 0 ? { deadline: new Date(Date.now() + deadlineMs) } : {};
}

function method(client, name, fallback) {
  const m = name ?? (typeof client[fallback] === 'function' ? fallback : undefined) ?? 'Reset';
  if (typeof client[m] !== 'function') throw new Error(`the client has no method ${m}`);
  return m;
}

function outcome(status, error, extra) {
  return {
    code: error ? error.code : status.code,
    details: error ? error.details : status.details,
    trailers: metadataToObject(error ? error.metadata : status.metadata),
    error: error ?? undefined,
    ...extra,
  };
}

/**
 * One unary call. Options: metadata, deadlineMs, method ('Unary'; 'Reset' on an Admin
 * client). Resolves { code, details, reply, headers, trailers, error }.
 */
export function unary(client, request, { metadata, deadlineMs, method: name } = {}) {
  const m = method(client, name, 'Unary');
  return new Promise((resolve) => {
    let reply;
    let error;
    let headers = {};
    const call = client[m](request, toMetadata(metadata), callOptions(deadlineMs), (err, r) => {
      error = err;
      reply = r;
    });
    call.on('metadata', (md) => { headers = metadataToObject(md); });
    // grpc-js runs the callback before 'status'; the callback's error wins (e.g. OK without a
    // message is reported as UNIMPLEMENTED there).
    call.on('status', (status) => resolve(outcome(status, error, { reply: error ? undefined : reply, headers })));
  });
}

/**
 * Collects a readable call's replies until its status. cancelAfter: call.cancel() once that
 * many replies arrived (the result is then code 1 CANCELLED with exactly that many replies).
 * onReply(reply, call): called for each reply.
 */
function collect(call, { cancelAfter, onReply } = {}) {
  const state = { replies: [], headers: {}, status: undefined, error: undefined, ended: false, cancelled: false };
  const done = new Promise((resolve) => {
    const finish = () => {
      if (state.status && (state.ended || state.status.code !== 0 || state.error)) {
        resolve(outcome(state.status, state.error, { replies: state.replies, headers: state.headers }));
      }
    };
    call.on('metadata', (md) => { state.headers = metadataToObject(md); });
    call.on('data', (reply) => {
      if (state.cancelled) return;
      state.replies.push(reply);
      onReply?.(reply, call);
      if (cancelAfter > 0 && state.replies.length >= cancelAfter) {
        state.cancelled = true;
        call.cancel();
      }
    });
    call.on('error', (err) => { state.error = err; finish(); });
    call.on('end', () => { state.ended = true; finish(); });
    call.on('status', (status) => { state.status = status; finish(); });
  });
  return { state, done };
}

/** Resolves after ms, or when the call has its status (so that no write goes after it). */
function waitOrStatus(ms, state) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    state.wake = () => { clearTimeout(t); resolve(); };
  });
}

/** Writes the requests (honouring backpressure; intervalMs apart), then half-closes. */
async function writeAll(call, requests, intervalMs, state) {
  for (const [i, req] of requests.entries()) {
    if (i > 0 && intervalMs > 0) await waitOrStatus(intervalMs, state);
    if (state.status || state.cancelled) return;
    if (!call.write(req)) {
      await new Promise((resolve) => {
        call.once('drain', resolve);
        state.wake = resolve;
      });
    }
  }
  if (!state.status && !state.cancelled) call.end();
}

function wakeOnStatus(call, state) {
  call.on('status', () => state.wake?.());
}

/**
 * A server-streaming call. Options: metadata, deadlineMs, cancelAfter, onReply, method.
 * Resolves { code, details, replies, headers, trailers, error }.
 */
export function serverStream(client, request, { metadata, deadlineMs, cancelAfter, onReply, method: name } = {}) {
  const m = method(client, name, 'ServerStream');
  const call = client[m](request, toMetadata(metadata), callOptions(deadlineMs));
  return collect(call, { cancelAfter, onReply }).done;
}

/**
 * A client-streaming call: writes requests[] (intervalMs apart), half-closes, waits for the
 * one reply. Options: metadata, deadlineMs, intervalMs, method.
 * Resolves { code, details, reply, headers, trailers, error }.
 */
export function clientStream(client, requests, { metadata, deadlineMs, intervalMs = 0, method: name } = {}) {
  const m = method(client, name, 'ClientStream');
  return new Promise((resolve) => {
    const state = {};
    let reply;
    let error;
    let headers = {};
    const call = client[m](toMetadata(metadata), callOptions(deadlineMs), (err, r) => {
      error = err;
      reply = r;
    });
    call.on('metadata', (md) => { headers = metadataToObject(md); });
    call.on('status', (status) => {
      state.status = status;
      state.wake?.();
      resolve(outcome(status, error, { reply: error ? undefined : reply, headers }));
    });
    writeAll(call, requests, intervalMs, state);
  });
}

/**
 * A bidirectional call. By default writes all requests (intervalMs apart) and half-closes
 * while collecting replies. pingPong: true writes request i+1 only after reply i arrived (a
 * gateway that buffers either direction makes this hang until the deadline). Options also:
 * metadata, deadlineMs, cancelAfter, onReply, method.
 * Resolves { code, details, replies, headers, trailers, error }.
 */
export function bidi(client, requests, {
  metadata, deadlineMs, intervalMs = 0, pingPong = false, cancelAfter, onReply, method: name,
} = {}) {
  const m = method(client, name, 'Bidi');
  const call = client[m](toMetadata(metadata), callOptions(deadlineMs));
  if (!pingPong) {
    const { state, done } = collect(call, { cancelAfter, onReply });
    wakeOnStatus(call, state);
    writeAll(call, requests, intervalMs, state);
    return done;
  }
  let next = 0;
  const sendNext = () => {
    if (next < requests.length) call.write(requests[next++]);
    else call.end();
  };
  const { state, done } = collect(call, {
    cancelAfter,
    onReply: (reply, c) => {
      onReply?.(reply, c);
      if (!state.cancelled && !state.status) sendNext();
    },
  });
  sendNext();
  return done;
}
