// Helpers for the policy-pipeline integration tests (tests/integration/policy_pipeline.test.mjs):
// a local token issuer (a P-256 or RSA key made in the test, its JWKS written for a provider
// with jwks_file) that mints access tokens with any sub/email/groups/scope, verification of the
// gateway's X-Portcullis-Assertion with node:crypto, editor-style file replacement, keep-alive
// request loops for reloads under load, and the policy metrics. node: built-ins only (plus
// harness.mjs).
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { httpRequest, metricSum, parseMetrics } from './harness.mjs';

export const b64url = (v) => Buffer.from(typeof v === 'string' || Buffer.isBuffer(v) ? v : JSON.stringify(v)).toString('base64url');

/** {header, payload, signingInput, signature (Buffer)} of a compact JWS; throws when malformed. */
export function decodeJws(token) {
  const parts = String(token).split('.');
  if (parts.length !== 3) throw new Error(`not a compact JWS: ${String(token).slice(0, 80)}`);
  return {
    header: JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8')),
    payload: JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')),
    signingInput: `${parts[0]}.${parts[1]}`,
    signature: Buffer.from(parts[2], 'base64url'),
  };
}

// ---------------------------------------------------------------------------------------
// A local token issuer

/**
 * A signing key made here and the tokens it signs. opts: {alg = 'ES256' | 'RS256',
 * issuer (loopback http URL; never fetched: the gateway reads jwks_file), audience}.
 * Returns {alg, kid, issuer, audience, jwks, mint(claims, {ttl, iat, header}), writeJwks(dir),
 *          provider(jwksPath, extra)}.
 */
export function createTokenIssuer({ alg = 'ES256', issuer = 'http://127.0.0.1:9/policy-tests', audience = 'api://policy-tests' } = {}) {
  const { privateKey, publicKey } = alg === 'ES256'
    ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = `${alg.toLowerCase()}-${crypto.randomBytes(6).toString('hex')}`;
  const publicJwk = { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
  const jwks = { keys: [publicJwk] };
  return {
    alg,
    kid,
    issuer,
    audience,
    jwks,
    /**
     * A signed access token: iss/aud/iat/exp/jti filled in, `claims` merged over them
     * (a claim set to undefined is left out). ttl in seconds (default 300).
     */
    mint(claims = {}, { ttl = 300, iat = Math.floor(Date.now() / 1000), header = {} } = {}) {
      const payload = { iss: issuer, aud: audience, iat, exp: iat + ttl, jti: crypto.randomUUID(), ...claims };
      for (const k of Object.keys(payload)) if (payload[k] === undefined) delete payload[k];
      const h = { alg, typ: 'at+jwt', kid, ...header };
      const input = `${b64url(h)}.${b64url(payload)}`;
      const sig = alg === 'ES256'
        ? crypto.sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' })
        : crypto.sign('sha256', Buffer.from(input), privateKey);
      return `${input}.${sig.toString('base64url')}`;
    },
    /** Writes the public JWKS to DIR/jwks.json; returns the path. */
    writeJwks(dir, name = 'jwks.json') {
      const file = path.join(dir, name);
      fs.writeFileSync(file, JSON.stringify(jwks));
      return file;
    },
    /** The identity_providers entry for this issuer with keys from `jwksPath`. */
    provider(jwksPath, extra = {}) {
      return { name: 'local', issuer, audiences: [audience], jwks_file: jwksPath, algorithms: [alg], ...extra };
    },
  };
}

// ---------------------------------------------------------------------------------------
// The gateway's identity assertion

/** GET /.well-known/portcullis/jwks.json on a gateway listener; returns the parsed JWKS. */
export async function fetchAssertionJwks(port) {
  const r = await httpRequest({ port, path: '/.well-known/portcullis/jwks.json' });
  if (r.status !== 200) throw new Error(`assertion JWKS: ${r.status} ${r.body.slice(0, 200)}`);
  return { jwks: r.json(), response: r };
}

/**
 * Verifies an ES256 compact JWS against a JWKS (the key named by its kid) with node:crypto.
 * Returns {valid, reason, header, payload, key}.
 */
export function verifyEs256(token, jwks) {
  let parts;
  try {
    parts = decodeJws(token);
  } catch (e) {
    return { valid: false, reason: e.message };
  }
  const { header, payload, signingInput, signature } = parts;
  if (header.alg !== 'ES256') return { valid: false, reason: `alg ${header.alg}`, header, payload };
  const jwk = (jwks.keys ?? []).find((k) => k.kid === header.kid);
  if (!jwk) return { valid: false, reason: `no key with kid ${header.kid}`, header, payload };
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  const valid = signature.length === 64
    && crypto.verify('sha256', Buffer.from(signingInput), { key, dsaEncoding: 'ieee-p1363' }, signature);
  return { valid, reason: valid ? '' : 'bad signature', header, payload, key: jwk };
}

// ---------------------------------------------------------------------------------------
// Files

/** Replaces `file` the way editors and config managers do: write a temp file, rename it over. */
export function replaceFile(file, text) {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.swp-${process.pid}-${crypto.randomBytes(3).toString('hex')}`);
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

// ---------------------------------------------------------------------------------------
// Load

/**
 * `concurrency` loops, each on its own keep-alive connection (an Agent with one socket),
 * sending GET PATH with the bearer token back to back until stop(). Every answer is recorded
 * as {status, start, end, reused, body} and every failure as {error, start, end}.
 * Returns {loops: [[record...]...], stop() -> Promise<loops>, total()}.
 */
export function startLoops({ port, pathname, token, concurrency = 4, timeoutMs = 5000 }) {
  let running = true;
  const loops = Array.from({ length: concurrency }, () => []);
  const agents = loops.map(() => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  const done = loops.map(async (records, i) => {
    let n = 0;
    while (running) {
      n += 1;
      const start = Date.now();
      try {
        const r = await httpRequest({
          port, path: `${pathname}?loop=${i}&n=${n}`, agent: agents[i], timeoutMs,
          headers: { authorization: `Bearer ${token}` },
        });
        records.push({ status: r.status, start, end: Date.now(), reused: r.reusedSocket, body: r.status === 200 ? '' : r.body.slice(0, 300) });
      } catch (e) {
        records.push({ error: e.message, start, end: Date.now() });
      }
    }
  });
  return {
    loops,
    total: () => loops.reduce((s, l) => s + l.length, 0),
    async stop() {
      running = false;
      await Promise.all(done);
      for (const a of agents) a.destroy();
      return loops;
    },
  };
}

// ---------------------------------------------------------------------------------------
// Metrics

/** The policy counters of one route from a /metrics text. */
export function policyCounters(text, route) {
  const samples = parseMetrics(text);
  const d = (mode, decision) => metricSum(samples, 'portcullis_policy_decisions_total', { route, mode, decision });
  return {
    enforcedAllow: d('enforced', 'allow'),
    enforcedDeny: d('enforced', 'deny'),
    shadowAllow: d('shadow', 'allow'),
    shadowDeny: d('shadow', 'deny'),
    mismatch: metricSum(samples, 'portcullis_policy_shadow_mismatch_total', { route }),
  };
}

/** after - before, field by field. */
export function counterDelta(before, after) {
  const out = {};
  for (const k of Object.keys(after)) out[k] = after[k] - (before[k] ?? 0);
  return out;
}

// ---------------------------------------------------------------------------------------
// A raw upstream

/**
 * A TCP upstream that records each request line exactly as received (method case included;
 * Node's HTTP server would refuse a lower-case method before any handler saw it) and answers
 * 200 "ok" with keep-alive. Requests must have no body (Content-Length: 0 or none).
 * Returns {address, lines: [string], close()}.
 */
export async function startRawUpstream() {
  const lines = [];
  const sockets = new Set();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let pending = '';
    socket.on('data', (d) => {
      pending += d.toString('latin1');
      for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
        lines.push(pending.slice(0, pending.indexOf('\r\n')));
        pending = pending.slice(end + 4);
        socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok');
      }
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    address: `127.0.0.1:${server.address().port}`,
    lines,
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
