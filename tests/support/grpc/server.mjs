// A real gRPC server (@grpc/grpc-js, plaintext HTTP/2 = h2c) for the gateway's gRPC tests:
// the upstream behind Portcullis, or a peer to talk to directly. Runs in the test process.
// Implements echo.proto (package portcullis.test.v1):
//
//   Echo.Unary         echoes message + payload + the request metadata it received, after
//                      delay_ms; initial metadata `x-echo-header: yes`, trailing metadata
//                      `x-echo-trailer: yes`. fail_code > 0: that status, details
//                      "requested failure", as a trailers-only response (HEADERS with
//                      END_STREAM carrying grpc-status; x-echo-trailer still set).
//   Echo.ServerStream  `count` replies, index 0..count-1, each after delay_ms; stops when the
//                      call is cancelled (client cancel, deadline, reset) and records it.
//                      fail_code > 0: that status after the `count` replies.
//   Echo.ClientStream  one reply at the end: message = all messages concatenated, index = the
//                      sum of the payload sizes, metadata as above. The first request with a
//                      fail_code > 0 makes the final status that code instead.
//   Echo.Bidi          one reply per request as it arrives (index = its position), after that
//                      request's delay_ms; a request with fail_code > 0 ends the call with it.
//   Admin.Reset        same as Echo.Unary (a second service, for allow/deny tests).
//
//   const srv = await startGrpcServer();       // 127.0.0.1, a free port ({ port } to choose)
//   await startGrpcServer({ credentials: grpc.ServerCredentials.createSsl(ca, [{ cert_chain, private_key }]) })
//                                              // over TLS (h2 by ALPN); default: insecure (h2c)
//   srv.address                                // '127.0.0.1:PORT' (srv.port: the number)
//   srv.stats.calls['Echo/Unary']              // calls started, by 'Service/Method'
//   srv.stats.cancellations['Echo/ServerStream'] // calls that ended by cancellation
//   srv.stats.cancelEvents                     // [{ method, sent, reason: 'cancelled'|'deadline' }]
//                                              // (sent: replies written before it)
//   srv.resetStats();
//   await srv.close();                         // graceful, forced after 2 s
//   await srv.forceClose();                    // GOAWAY + cancel every call now (client: CANCELLED)
//   await srv.crash();                         // TCP reset, no HTTP/2 goodbye (client: UNAVAILABLE)
//
// Max receive/send message length: 16 MiB.
import grpc from '@grpc/grpc-js';
import { loadEchoPackage, metadataToObject, MAX_MESSAGE_BYTES } from './proto.mjs';

const { Metadata, Server, ServerCredentials, status: Status } = grpc;

const DEADLINE_SLACK_MS = 25;

function newStats() {
  return { calls: {}, cancellations: {}, cancelEvents: [] };
}

/** Resolves after ms, or as soon as the call is cancelled (whichever is first). */
function pause(ms, call) {
  if (!(ms > 0) || call.cancelled) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      call.removeListener('cancelled', done);
      resolve();
    }
    call.once('cancelled', done);
  });
}

/** Resolves once a writable call can take more ('drain'), or is cancelled. */
function drained(call) {
  return new Promise((resolve) => {
    function done() {
      call.removeListener('drain', done);
      call.removeListener('cancelled', done);
      resolve();
    }
    call.once('drain', done);
    call.once('cancelled', done);
  });
}

function trailerMetadata() {
  const md = new Metadata();
  md.set('x-echo-trailer', 'yes');
  return md;
}

function headerMetadata() {
  const md = new Metadata();
  md.set('x-echo-header', 'yes');
  return md;
}

function failure(code) {
  return { code, details: 'requested failure', metadata: trailerMetadata() };
}

/**
 * Starts the server. credentials: a grpc-js ServerCredentials (default
 * ServerCredentials.createInsecure(), i.e. h2c). Resolves to { port, address, stats,
 * resetStats(), close(), forceClose(), crash(), server } (server: the grpc-js Server).
 */
export async function startGrpcServer({ port = 0, host = '127.0.0.1', credentials } = {}) {
  const { Echo, Admin } = loadEchoPackage();
  const stats = newStats();

  // Per call: count it, and record a cancellation that happens before we finished. (grpc-js
  // emits 'cancelled' after every call, also a completed one: ctx.finished tells them apart.)
  function track(method, call) {
    stats.calls[method] = (stats.calls[method] ?? 0) + 1;
    const ctx = { sent: 0, finished: false };
    call.on('cancelled', () => {
      if (ctx.finished) return;
      ctx.finished = true;
      // 'deadline' when the call's deadline has passed, or nearly: the client's own deadline
      // timer may fire (and reset the stream) a little before the server's copy of it does.
      const deadline = call.getDeadline();
      const ms = deadline instanceof Date ? deadline.getTime() : Number(deadline);
      const expired = Number.isFinite(ms) && Date.now() >= ms - DEADLINE_SLACK_MS;
      stats.cancellations[method] = (stats.cancellations[method] ?? 0) + 1;
      stats.cancelEvents.push({ method, sent: ctx.sent, reason: expired ? 'deadline' : 'cancelled' });
    });
    return ctx;
  }

  const reply = (call, fields) => ({ metadata: metadataToObject(call.metadata), ...fields });

  function unaryLike(method) {
    return async (call, callback) => {
      const ctx = track(method, call);
      const req = call.request;
      await pause(req.delay_ms, call);
      if (call.cancelled) return;
      ctx.finished = true;
      if (req.fail_code > 0) {
        callback(failure(req.fail_code));
        return;
      }
      call.sendMetadata(headerMetadata());
      ctx.sent = 1;
      callback(null, reply(call, { message: req.message, payload: req.payload, index: 0 }), trailerMetadata());
    };
  }

  async function serverStream(call) {
    const ctx = track('Echo/ServerStream', call);
    const req = call.request;
    call.sendMetadata(headerMetadata());
    for (let i = 0; i < req.count; i++) {
      await pause(req.delay_ms, call);
      if (call.cancelled) return;
      const more = call.write(reply(call, { message: req.message, payload: req.payload, index: i }));
      ctx.sent++;
      if (!more) await drained(call);
      if (call.cancelled) return;
    }
    ctx.finished = true;
    if (req.fail_code > 0) call.emit('error', failure(req.fail_code));
    else call.end(trailerMetadata());
  }

  function clientStream(call, callback) {
    const ctx = track('Echo/ClientStream', call);
    let message = '';
    let bytes = 0;
    let failCode = 0;
    call.on('data', (req) => {
      message += req.message;
      bytes += req.payload.length;
      if (!failCode && req.fail_code > 0) failCode = req.fail_code;
    });
    call.on('end', () => {
      if (call.cancelled) return;
      ctx.finished = true;
      if (failCode) {
        callback(failure(failCode));
        return;
      }
      ctx.sent = 1;
      callback(null, reply(call, { message, index: bytes }), trailerMetadata());
    });
    call.on('error', () => { /* a reset stream: 'cancelled' records it */ });
  }

  function bidi(call) {
    const ctx = track('Echo/Bidi', call);
    let received = 0;
    let chain = Promise.resolve(); // replies in request order, each after its delay_ms
    let failed = false;
    call.on('data', (req) => {
      const index = received++;
      chain = chain.then(async () => {
        if (failed || call.cancelled) return;
        await pause(req.delay_ms, call);
        if (call.cancelled) return;
        if (req.fail_code > 0) {
          failed = true;
          ctx.finished = true;
          call.emit('error', failure(req.fail_code));
          return;
        }
        const more = call.write(reply(call, { message: req.message, payload: req.payload, index }));
        ctx.sent++;
        if (!more) await drained(call);
      });
    });
    call.on('end', () => {
      chain = chain.then(() => {
        if (failed || call.cancelled) return;
        ctx.finished = true;
        call.end(trailerMetadata());
      });
    });
    call.on('error', () => { /* a reset stream: 'cancelled' records it */ });
  }

  const server = new Server({
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  });
  server.addService(Echo.service, {
    Unary: unaryLike('Echo/Unary'),
    ServerStream: serverStream,
    ClientStream: clientStream,
    Bidi: bidi,
  });
  server.addService(Admin.service, { Reset: unaryLike('Admin/Reset') });

  const bound = await new Promise((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, credentials ?? ServerCredentials.createInsecure(), (err, p) => {
      if (err) reject(err);
      else resolve(p);
    });
  });

  // The raw TCP sockets, for crash(). grpc-js keeps its http2 servers in a private map
  // (http2Servers); if a future version renames it, crash() falls back to forceShutdown().
  const sockets = new Set();
  for (const h2 of server.http2Servers?.keys?.() ?? []) {
    h2.on('connection', (sock) => {
      sockets.add(sock);
      sock.once('close', () => sockets.delete(sock));
    });
  }

  let closed;
  const handle = {
    port: bound,
    address: `${host}:${bound}`,
    stats,
    server,
    resetStats() {
      Object.assign(stats, newStats());
    },
    /** Stops accepting, lets in-flight calls finish for up to graceMs, then drops the rest. */
    close({ graceMs = 2000 } = {}) {
      closed ??= new Promise((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return closed;
    },
    /**
     * Ends every connection and call at once, cleanly at the HTTP/2 level (GOAWAY, sessions
     * destroyed with CANCEL): a grpc-js client sees code 1 CANCELLED 'Call cancelled'.
     */
    forceClose() {
      server.forceShutdown();
      closed ??= Promise.resolve();
      return closed;
    },
    /**
     * Like a SIGKILLed upstream: resets every TCP connection with no HTTP/2 frame first, then
     * stops listening. A grpc-js client sees code 14 UNAVAILABLE.
     */
    crash() {
      for (const sock of sockets) sock.resetAndDestroy?.() ?? sock.destroy();
      sockets.clear();
      return handle.forceClose();
    },
  };
  return handle;
}

export { Status };
