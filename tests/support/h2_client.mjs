// HTTP/2 client helpers for the gateway's HTTP/2 tests: node:http2 sessions and requests,
// curl -i output parsing, and raw frames for what well-behaved clients refuse to send.
//
//   const s = await connectH2(port);
//   const r = await h2request(s, { ':path': '/x' });      // {status, headers, body, trailers}
//   const bytes = Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]);
//   const { frames, rest } = parseFramesWithRest(received);
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http2 from 'node:http2';
import { withTimeout } from './harness.mjs';

/** Parses `curl -i` output: {version, status, headers (lower-case), body}, after any 1xx. */
export function parseCurlHead(stdout) {
  // Interim answers (HTTP/1.1 100 Continue) come first: skip them.
  while (/^HTTP\/\S+ 1\d\d/.test(stdout) && stdout.includes('\r\n\r\n')) {
    stdout = stdout.slice(stdout.indexOf('\r\n\r\n') + 4);
  }
  const end = stdout.indexOf('\r\n\r\n');
  assert.ok(end > 0, `no header block in curl output: ${stdout.slice(0, 300)}`);
  const lines = stdout.slice(0, end).split('\r\n');
  const m = /^HTTP\/(\S+) (\d{3})/.exec(lines[0]);
  assert.ok(m, `no status line: ${lines[0]}`);
  const headers = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { version: m[1], status: Number(m[2]), headers, body: stdout.slice(end + 4) };
}

/** Opens a prior-knowledge h2c session to the gateway; resolves once connected. */
export async function connectH2(port, options = {}) {
  const session = http2.connect(`http://127.0.0.1:${port}`, options);
  session.on('error', () => { /* reported through the requests / close */ });
  await withTimeout(new Promise((resolve, reject) => {
    session.once('connect', resolve);
    session.once('error', reject);
  }), 5000, 'h2c connect');
  return session;
}

/**
 * One request on a session. Resolves {status, headers, body (Buffer), trailers} or
 * {error, rstCode} when the stream fails.
 */
export function h2request(session, headers, body, { timeoutMs = 10_000 } = {}) {
  return withTimeout(new Promise((resolve) => {
    let req;
    try {
      req = session.request({ ':method': body === undefined ? 'GET' : 'POST', ...headers });
    } catch (e) {
      resolve({ error: `${e.code ?? ''} ${e.message}` });
      return;
    }
    let respHeaders = null;
    let trailers = null;
    const chunks = [];
    req.on('response', (h) => { respHeaders = h; });
    req.on('trailers', (t) => { trailers = t; });
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve({
      status: Number(respHeaders?.[':status']), headers: respHeaders, body: Buffer.concat(chunks), trailers,
    }));
    req.on('error', (e) => resolve({ error: `${e.code ?? ''} ${e.message}`, rstCode: req.rstCode }));
    if (body === undefined) req.end(); else req.end(body);
  }), timeoutMs, `h2 request ${headers[':path']}`);
}

/** Resolves true once the session is closed/destroyed (false after ms). */
export function sessionClosed(session, ms) {
  if (session.closed || session.destroyed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    session.once('close', () => { clearTimeout(t); resolve(true); });
  });
}

// Raw HTTP/2 frames.
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const FRAME = {
  DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9,
};
export const FLAG = { ACK: 0x1, END_STREAM: 0x1, END_HEADERS: 0x4 };

export function frame(type, flags, streamId, payload = Buffer.alloc(0)) {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

/** Splits buf into complete frames: {frames, rest} (GOAWAY/RST_STREAM get errorCode). */
export function parseFramesWithRest(buf) {
  const frames = [];
  let off = 0;
  while (buf.length - off >= 9) {
    const len = buf.readUIntBE(off, 3);
    if (buf.length - off < 9 + len) break;
    const f = {
      type: buf[off + 3], flags: buf[off + 4], streamId: buf.readUInt32BE(off + 5) & 0x7fffffff,
      payload: Buffer.from(buf.subarray(off + 9, off + 9 + len)),
    };
    if (f.type === FRAME.GOAWAY && len >= 8) f.errorCode = f.payload.readUInt32BE(4);
    if (f.type === FRAME.RST_STREAM && len >= 4) f.errorCode = f.payload.readUInt32BE(0);
    frames.push(f);
    off += 9 + len;
  }
  return { frames, rest: buf.subarray(off) };
}

export function parseFrames(buf) {
  return parseFramesWithRest(buf).frames;
}

export function describeFrames(frames) {
  const names = Object.fromEntries(Object.entries(FRAME).map(([k, v]) => [v, k]));
  return frames.map((f) => `${names[f.type] ?? f.type}(s${f.streamId},f${f.flags}${f.errorCode !== undefined ? `,err=${f.errorCode}` : ''})`).join(' ') || '(none)';
}

/** sha256 of `n` bytes of the a..z pattern the test upstreams generate. */
export function patternSha256(n) {
  const pattern = Buffer.alloc(64 * 1024);
  for (let i = 0; i < pattern.length; i++) pattern[i] = 97 + (i % 26);
  const h = crypto.createHash('sha256');
  for (let left = n; left > 0; left -= pattern.length) h.update(left >= pattern.length ? pattern : pattern.subarray(0, left));
  return h.digest('hex');
}
