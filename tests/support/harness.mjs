// Integration-test harness for Portcullis: spawns the gateway binary, runs upstream servers
// in-process, and offers raw-socket / http / curl clients. node: built-ins only.
//
// Env: PORTCULLIS_BIN (default $PORTCULLIS_ROOT/build/portcullis),
//      PORTCULLIS_ROOT (default /work/main).
// Every process started here is remembered and SIGKILLed when the test process exits, as a
// safety net behind the explicit stop() calls in after()/finally blocks.
import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { createEchoServer, closeServer, writePattern } from './echo-upstream.mjs';

export { sleep, writePattern };

export const ROOT = process.env.PORTCULLIS_ROOT || '/work/main';
export const BIN = process.env.PORTCULLIS_BIN || path.join(ROOT, 'build', 'portcullis');

// ---------------------------------------------------------------------------------------
// Process bookkeeping (no orphans)

const liveChildren = new Set();
function killAllChildren() {
  for (const child of liveChildren) {
    try { process.kill(child.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  liveChildren.clear();
}
process.on('exit', killAllChildren);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => { killAllChildren(); process.exit(130); });
}

// ---------------------------------------------------------------------------------------
// Small utilities

/** A free TCP port on 127.0.0.1 (bind port 0, read it, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Several distinct free ports. */
export async function freePorts(n) {
  const ports = new Set();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** A fresh temporary directory (removed by the caller with rmTemp, or left in /tmp). */
export function tempDir(prefix = 'portcullis-it-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function rmTemp(dir) {
  try { fs.rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ }
}

/** Runs fn() until it returns a truthy value (returned) or timeoutMs passes (throws). */
export async function eventually(fn, { timeoutMs = 5000, intervalMs = 100, message = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastErr;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${message}${lastErr ? `: ${lastErr.message}` : ''}`);
    }
    await sleep(intervalMs);
  }
}

/** Rejects after ms with a labelled error unless the promise settles first. */
export function withTimeout(promise, ms, label = 'operation') {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${label} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------
// Certificates

const certCache = new Map();
/**
 * Runs ${ROOT}/certs/make-dev-certs.sh DIR; returns absolute paths
 * {dir, ca, cert, key, clientCert, clientKey}.
 */
export async function makeCerts(dir) {
  dir = path.resolve(dir ?? path.join(tempDir('portcullis-certs-')));
  if (!certCache.has(dir)) {
    const script = path.join(ROOT, 'certs', 'make-dev-certs.sh');
    const r = await run(script, [dir], { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`make-dev-certs.sh failed (${r.code}): ${r.stderr}${r.stdout}`);
    certCache.set(dir, {
      dir,
      ca: path.join(dir, 'ca.crt'),
      cert: path.join(dir, 'server.crt'),
      key: path.join(dir, 'server.key'),
      clientCert: path.join(dir, 'client.crt'),
      clientKey: path.join(dir, 'client.key'),
    });
  }
  return certCache.get(dir);
}

// ---------------------------------------------------------------------------------------
// YAML

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

function yamlScalar(v) {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return JSON.stringify(v); // a JSON string is a YAML double-quoted scalar
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`cannot serialise ${v}`);
    return String(v);
  }
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  throw new Error(`cannot serialise ${typeof v}`);
}

function yamlKey(k) {
  return PLAIN_KEY.test(k) ? k : JSON.stringify(k);
}

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function yamlLines(value, indent) {
  const pad = ' '.repeat(indent);
  const lines = [];
  if (Array.isArray(value)) {
    if (value.length === 0) return null; // caller writes []
    for (const item of value) {
      if (isPlainObject(item) && Object.keys(item).length > 0) {
        const inner = yamlLines(item, indent + 2);
        lines.push(`${pad}- ${inner[0].trimStart()}`, ...inner.slice(1));
      } else if (Array.isArray(item) && item.length > 0) {
        const inner = yamlLines(item, indent + 2);
        lines.push(`${pad}- ${inner[0].trimStart()}`, ...inner.slice(1));
      } else {
        lines.push(`${pad}- ${inlineValue(item)}`);
      }
    }
    return lines;
  }
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) continue;
    if ((isPlainObject(v) && Object.keys(v).length > 0) || (Array.isArray(v) && v.length > 0)) {
      lines.push(`${pad}${yamlKey(k)}:`);
      lines.push(...yamlLines(v, indent + 2));
    } else {
      lines.push(`${pad}${yamlKey(k)}: ${inlineValue(v)}`);
    }
  }
  return lines;
}

function inlineValue(v) {
  if (Array.isArray(v)) return '[]';
  if (isPlainObject(v)) return '{}';
  return yamlScalar(v);
}

/** Serialises plain objects / arrays / strings / numbers / booleans as block YAML. */
export function toYaml(obj) {
  if (!isPlainObject(obj)) throw new Error('toYaml wants an object at the top');
  return `${yamlLines(obj, 0).join('\n')}\n`;
}

/**
 * Writes a config (object -> YAML, or a YAML string verbatim) and returns the file path.
 * options: {dir, name = 'portcullis.yaml', path} (path wins; used to rewrite for reloads).
 */
export function writeConfig(config, options = {}) {
  const file = options.path ?? path.join(options.dir ?? tempDir(), options.name ?? 'portcullis.yaml');
  const text = typeof config === 'string' ? config : toYaml(config);
  // Write-then-rename so a reload never reads a half-written file.
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
  return file;
}

// ---------------------------------------------------------------------------------------
// Running commands

/** execFile that never rejects: {code, signal, stdout, stderr}. */
export function run(file, args = [], { timeoutMs = 30_000, env, input, cwd } = {}) {
  return new Promise((resolve) => {
    const child = execFile(file, args, {
      timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024,
      env: env ? { ...process.env, ...env } : process.env, cwd,
    }, (err, stdout, stderr) => {
      liveChildren.delete(child);
      let code = 0;
      if (err) code = typeof err.code === 'number' ? err.code : (err.killed ? 'killed' : err.code ?? 1);
      resolve({ code, signal: err?.signal ?? null, stdout: String(stdout), stderr: String(stderr) });
    });
    liveChildren.add(child);
    if (input !== undefined) child.stdin.end(input);
    else child.stdin?.end();
  });
}

/** curl with the given arguments: {code, stdout, stderr}. */
export function curl(args, options = {}) {
  return run('curl', ['--silent', '--show-error', '--max-time', '20', ...args], options);
}

/** The gateway binary with arguments (for CLI tests). */
export function runGateway(args, options = {}) {
  if (!fs.existsSync(BIN)) throw new Error(`gateway binary not found at ${BIN} (set PORTCULLIS_BIN)`);
  return run(BIN, args, options);
}

// ---------------------------------------------------------------------------------------
// The gateway

function adminAddressOf(config) {
  if (isPlainObject(config)) return config.admin?.address;
  if (typeof config === 'string') {
    const m = /admin:\s*\{?\s*(?:\n\s*)?address:\s*"?([^"\s,}]+)"?/.exec(config);
    return m?.[1];
  }
  return undefined;
}

/**
 * Starts `${BIN} serve --config FILE` and waits for GET http://ADMIN/readyz == 200 (10 s).
 * options: {config (object | YAML string), configPath (use an existing file instead),
 *           env, args (extra), readyTimeoutMs = 30000, adminAddress (if not in config)}
 * Returns {pid, proc, configPath, adminUrl, logs(), accessLog(), waitForLog(re),
 *          stop(signal), reload(), exited, rssKiB(), hwmKiB()}.
 */
export async function startGateway(options = {}) {
  if (!fs.existsSync(BIN)) throw new Error(`gateway binary not found at ${BIN} (set PORTCULLIS_BIN)`);
  const ownsConfigDir = !options.configPath;
  const configPath = options.configPath ?? writeConfig(options.config);
  const adminAddress = options.adminAddress ?? adminAddressOf(options.config ?? fs.readFileSync(configPath, 'utf8'));
  if (!adminAddress) throw new Error('startGateway: the config needs admin.address (or pass adminAddress)');
  const adminUrl = `http://${adminAddress}`;

  const proc = spawn(BIN, ['serve', '--config', configPath, ...(options.args ?? [])], {
    env: { ...process.env, ...(options.env ?? {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  liveChildren.add(proc);
  const out = { stdout: [], stderr: [] };
  const partial = { stdout: '', stderr: '' };
  const listeners = new Set();
  for (const stream of ['stdout', 'stderr']) {
    proc[stream].setEncoding('utf8');
    proc[stream].on('data', (chunk) => {
      const text = partial[stream] + chunk;
      const lines = text.split('\n');
      partial[stream] = lines.pop();
      for (const line of lines) out[stream].push(line);
      if (lines.length) for (const l of listeners) l();
    });
  }
  let exitInfo = null;
  const exited = new Promise((resolve) => {
    const done = (info) => {
      if (exitInfo) return;
      liveChildren.delete(proc);
      if (ownsConfigDir) rmTemp(path.dirname(configPath));
      exitInfo = info;
      resolve(exitInfo);
    };
    proc.on('exit', (code, signal) => done({ code, signal }));
    // A spawn that fails (e.g. ETXTBSY while the binary is being rebuilt) emits only
    // 'error': count it as an exit, or stop() and the readiness loop would wait forever.
    proc.on('error', (error) => done({ code: null, signal: null, error: String(error) }));
  });

  const logs = () => {
    const flush = (s) => (partial[s] ? [...out[s], partial[s]] : [...out[s]]);
    return { stdout: flush('stdout'), stderr: flush('stderr') };
  };
  const allText = () => { const l = logs(); return `${l.stdout.join('\n')}\n${l.stderr.join('\n')}`; };

  const gw = {
    pid: proc.pid,
    proc,
    configPath,
    adminUrl,
    adminAddress,
    exited,
    exitInfo: () => exitInfo,
    logs,
    logText: allText,
    /** stdout lines that parse as JSON objects (the access log). */
    accessLog() {
      const entries = [];
      for (const line of logs().stdout) {
        const s = line.trim();
        if (!s.startsWith('{')) continue;
        try { entries.push(JSON.parse(s)); } catch { /* not JSON */ }
      }
      return entries;
    },
    /** Waits until stdout+stderr matches re (string or RegExp); returns the text. */
    async waitForLog(re, timeoutMs = 5000) {
      const test = () => (typeof re === 'string' ? allText().includes(re) : re.test(allText()));
      return eventually(() => test() && allText(), { timeoutMs, message: `log matching ${re}` });
    },
    /** Sends signal (default SIGTERM), waits up to timeoutMs for exit, then SIGKILL. */
    async stop(signal = 'SIGTERM', timeoutMs = 10_000) {
      if (process.env.PORTCULLIS_TEST_LOGS && !gw.logsDumped) {
        gw.logsDumped = true;
        process.stderr.write(`--- gateway ${proc.pid} (${configPath}) output ---\n${allText()}\n--- end ---\n`);
      }
      if (exitInfo) return exitInfo;
      try { process.kill(proc.pid, signal); } catch { /* gone */ }
      let timer;
      const killed = new Promise((resolve) => {
        timer = setTimeout(() => {
          try { process.kill(proc.pid, 'SIGKILL'); } catch { /* gone */ }
          resolve();
        }, timeoutMs);
      });
      await Promise.race([exited, killed]);
      clearTimeout(timer);
      return exited;
    },
    reload() { process.kill(proc.pid, 'SIGHUP'); },
    signal(sig) { process.kill(proc.pid, sig); },
    rssKiB() { return procStatusKiB(proc.pid, 'VmRSS'); },
    hwmKiB() { return procStatusKiB(proc.pid, 'VmHWM'); },
    async admin(pathname) { return httpRequest({ url: `${adminUrl}${pathname}` }); },
  };

  const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
  for (;;) {
    if (exitInfo) {
      throw new Error(`gateway exited before ready (code ${exitInfo.code}, signal ${exitInfo.signal}${exitInfo.error ? `, ${exitInfo.error}` : ''})\n${allText()}`);
    }
    try {
      const r = await httpRequest({ url: `${adminUrl}/readyz`, timeoutMs: 1000, agent: false });
      if (r.status === 200) break;
    } catch { /* not yet */ }
    if (Date.now() > deadline) {
      await gw.stop('SIGKILL', 2000);
      throw new Error(`gateway not ready (GET ${adminUrl}/readyz != 200) within ${options.readyTimeoutMs ?? 30_000} ms\n${allText()}`);
    }
    await sleep(100);
  }
  return gw;
}

function procStatusKiB(pid, field) {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(text);
  if (!m) throw new Error(`${field} not in /proc/${pid}/status`);
  return Number(m[1]);
}

// ---------------------------------------------------------------------------------------
// Upstreams

/**
 * Starts an echo upstream (see echo-upstream.mjs) on a free 127.0.0.1 port.
 * Argument: a handler function (req, res, {bodyLength, connectionId}) or options
 * {name, delayMs, status, drop, streamBytes, handler}.
 * Returns {name, port, address, url, server, stats, requests, connectionCount(), close()}.
 */
export async function startUpstream(handlerOrOptions = {}) {
  const options = typeof handlerOrOptions === 'function' ? { handler: handlerOrOptions } : handlerOrOptions;
  const server = createEchoServer(options);
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    name: options.name ?? 'echo',
    port,
    address: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    server,
    stats: server.stats,
    get requests() { return server.stats.requests; },
    connectionCount: () => server.stats.connections,
    close: () => closeServer(server),
  };
}

// ---------------------------------------------------------------------------------------
// Clients

/**
 * One HTTP(S) request. options: {url | (port, host='127.0.0.1', path='/', tls)},
 * method, headers, body (string | Buffer), agent, ca, servername, timeoutMs = 10000,
 * discardBody (count only).
 * Resolves {status, headers, rawHeaders, body (string), bodyBuffer, bodyLength, json(), reusedSocket, localPort}.
 */
export function httpRequest(options) {
  let { url } = options;
  const isTls = url ? url.startsWith('https:') : !!options.tls;
  const mod = isTls ? https : http;
  const reqOpts = {
    method: options.method ?? 'GET',
    headers: options.headers ?? {},
    agent: options.agent ?? false,
  };
  if (url) {
    const u = new URL(url);
    reqOpts.host = options.host ?? u.hostname;
    reqOpts.port = u.port;
    reqOpts.path = options.path ?? `${u.pathname}${u.search}`;
  } else {
    reqOpts.host = options.host ?? '127.0.0.1';
    reqOpts.port = options.port;
    reqOpts.path = options.path ?? '/';
  }
  if (isTls) {
    if (options.ca) reqOpts.ca = options.ca;
    reqOpts.servername = options.servername ?? 'localhost';
  }
  const timeoutMs = options.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const req = mod.request(reqOpts, (res) => {
      const chunks = [];
      let length = 0;
      res.on('data', (c) => { length += c.length; if (!options.discardBody) chunks.push(c); });
      res.on('error', reject);
      res.on('end', () => {
        clearTimeout(timer);
        const bodyBuffer = Buffer.concat(chunks);
        const body = bodyBuffer.toString('utf8');
        resolve({
          status: res.statusCode,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          httpVersion: res.httpVersion,
          body,
          bodyBuffer,
          bodyLength: length,
          reusedSocket: req.reusedSocket,
          localPort: req.socket?.localPort,
          json() {
            try { return JSON.parse(body); } catch (e) { throw new Error(`not JSON (status ${res.statusCode}): ${body.slice(0, 500)}`); }
          },
        });
      });
    });
    const timer = setTimeout(() => {
      req.destroy(new Error(`${reqOpts.method} ${reqOpts.path} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('error', (e) => { clearTimeout(timer); reject(e); });
    if (options.body !== undefined) req.end(options.body);
    else req.end();
  });
}

/**
 * Minimal parser for a raw HTTP/1.1 response text (first non-1xx response).
 * Returns {status, reason, headers (lower-case names; repeated joined with ', '),
 * body (decoded if chunked), informational: [status...]} or null when no status line.
 */
export function parseResponse(text) {
  let rest = text;
  const informational = [];
  for (;;) {
    const headEnd = rest.indexOf('\r\n\r\n');
    if (!rest.startsWith('HTTP/') || headEnd < 0) return null;
    const head = rest.slice(0, headEnd).split('\r\n');
    const m = /^HTTP\/(\d\.\d) (\d{3})(?: (.*))?$/.exec(head[0]);
    if (!m) return null;
    const status = Number(m[2]);
    const headers = {};
    for (const line of head.slice(1)) {
      const i = line.indexOf(':');
      if (i < 0) continue;
      const k = line.slice(0, i).trim().toLowerCase();
      const v = line.slice(i + 1).trim();
      headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
    }
    rest = rest.slice(headEnd + 4);
    if (status >= 100 && status < 200) { informational.push(status); continue; }
    let body = rest;
    if (/chunked/i.test(headers['transfer-encoding'] ?? '')) body = dechunk(rest).body;
    else if (headers['content-length'] !== undefined) body = rest.slice(0, Number(headers['content-length']));
    return { version: m[1], status, reason: m[3] ?? '', headers, body, informational };
  }
}

function dechunk(text) {
  let out = '';
  let pos = 0;
  for (;;) {
    const lineEnd = text.indexOf('\r\n', pos);
    if (lineEnd < 0) return { body: out, complete: false };
    const size = parseInt(text.slice(pos, lineEnd).split(';')[0], 16);
    if (Number.isNaN(size)) return { body: out, complete: false };
    if (size === 0) {
      const end = text.indexOf('\r\n\r\n', lineEnd);
      return { body: out, complete: end >= 0 || text.slice(lineEnd, lineEnd + 4) === '\r\n\r\n' || text.endsWith('\r\n\r\n') };
    }
    if (text.length < lineEnd + 2 + size + 2) return { body: out + text.slice(lineEnd + 2), complete: false };
    out += text.slice(lineEnd + 2, lineEnd + 2 + size);
    pos = lineEnd + 2 + size + 2;
  }
}

/** True when text holds one complete final (non-1xx) response, judged by its framing. */
export function responseComplete(text, isHead = false) {
  let rest = text;
  for (;;) {
    const headEnd = rest.indexOf('\r\n\r\n');
    if (headEnd < 0) return false;
    const m = /^HTTP\/\d\.\d (\d{3})/.exec(rest);
    if (!m) return false;
    const status = Number(m[1]);
    const head = rest.slice(0, headEnd);
    rest = rest.slice(headEnd + 4);
    if (status >= 100 && status < 200) continue;
    if (isHead || status === 204 || status === 304) return true;
    if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(head)) return dechunk(rest).complete;
    const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (cl) return Buffer.byteLength(rest, 'latin1') >= Number(cl[1]);
    return false; // close-delimited: wait for close
  }
}

/**
 * Opens a raw TCP (or TLS) connection to 127.0.0.1:port. Returns a small handle:
 * {socket, write(bytes), text() (all received so far, latin1), closed (bool),
 *  waitFor(predicate(text) | RegExp, timeoutMs) -> text, waitClose(timeoutMs) -> bool, destroy()}.
 */
export async function rawConnect(port, { tls: useTls = false, servername = 'localhost', ca, timeoutMs = 5000, host = '127.0.0.1' } = {}) {
  const socket = await new Promise((resolve, reject) => {
    const onErr = (e) => { clearTimeout(timer); reject(e); };
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`connect to ${port} timed out`)); }, timeoutMs);
    const s = useTls
      ? tls.connect({ host, port, servername, ca, rejectUnauthorized: !!ca, ALPNProtocols: ['http/1.1'] }, () => { clearTimeout(timer); s.off('error', onErr); resolve(s); })
      : net.connect({ host, port }, () => { clearTimeout(timer); s.off('error', onErr); resolve(s); });
    s.once('error', onErr);
  });
  let received = Buffer.alloc(0);
  let closed = false;
  let error = null;
  const waiters = new Set();
  const notify = () => { for (const w of waiters) w(); };
  socket.on('data', (d) => { received = Buffer.concat([received, d]); notify(); });
  socket.on('error', (e) => { error = e; notify(); });
  socket.on('close', () => { closed = true; notify(); });
  const text = () => received.toString('latin1');
  const handle = {
    socket,
    get closed() { return closed; },
    get error() { return error; },
    text,
    write(bytes) {
      return new Promise((resolve, reject) => {
        socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes, (e) => (e ? reject(e) : resolve()));
      });
    },
    /** Resolves with the text once predicate(text) holds; rejects on timeout (with the text). */
    waitFor(predicate, ms = 5000) {
      const test = typeof predicate === 'function' ? predicate : (t) => predicate.test(t);
      return new Promise((resolve, reject) => {
        const check = () => {
          if (test(text())) { done(); resolve(text()); return; }
          if (closed) { done(); reject(new Error(`connection closed before condition; received: ${JSON.stringify(text().slice(0, 400))}`)); }
        };
        const timer = setTimeout(() => { done(); reject(new Error(`timed out after ${ms} ms; received: ${JSON.stringify(text().slice(0, 400))}`)); }, ms);
        const done = () => { clearTimeout(timer); waiters.delete(check); };
        waiters.add(check);
        check();
      });
    },
    /** Resolves true when the peer closed within ms, false otherwise. */
    waitClose(ms = 5000) {
      return new Promise((resolve) => {
        const check = () => { if (closed) { done(); resolve(true); } };
        const timer = setTimeout(() => { done(); resolve(false); }, ms);
        const done = () => { clearTimeout(timer); waiters.delete(check); };
        waiters.add(check);
        check();
      });
    },
    destroy() { socket.destroy(); },
  };
  return handle;
}

/**
 * Sends raw bytes (string taken as latin1, or a Buffer) to 127.0.0.1:port and returns the
 * raw response text (latin1). Returns as soon as one complete response arrived (by its
 * framing), or the peer closed, or timeoutMs passed (whatever arrived so far).
 * options: {tls, servername, ca, timeoutMs = 5000, head (response to HEAD: no body)}
 */
export async function rawRequest(port, bytes, options = {}) {
  const r = await rawExchange(port, bytes, options);
  return r.text;
}

/** Like rawRequest but resolves {text, closed, timedOut, error}. */
export async function rawExchange(port, bytes, options = {}) {
  const conn = await rawConnect(port, options);
  try {
    conn.write(bytes).catch(() => {});
    const timeoutMs = options.timeoutMs ?? 5000;
    let timedOut = false;
    try {
      await conn.waitFor((t) => responseComplete(t, options.head), timeoutMs);
    } catch (e) {
      timedOut = !conn.closed;
    }
    return { text: conn.text(), closed: conn.closed, timedOut, error: conn.error };
  } finally {
    conn.destroy();
  }
}

// ---------------------------------------------------------------------------------------
// Assertions and metrics helpers

/**
 * Checks a gateway-made error: status, JSON body {status, error, message, request_id},
 * and an x-request-id header equal to request_id. `res` is an httpRequest result or a
 * parseResponse result. Returns the parsed body.
 */
export function checkGatewayError(assert, res, status, code) {
  assert.ok(res, 'no response');
  const where = `(got ${res.status}: ${String(res.body).slice(0, 300)})`;
  assert.equal(res.status, status, `status ${where}`);
  let body;
  try { body = JSON.parse(res.body); } catch { assert.fail(`error body is not JSON ${where}`); }
  assert.equal(body.status, status, `body.status ${where}`);
  if (code !== undefined) assert.equal(body.error, code, `body.error ${where}`);
  else assert.equal(typeof body.error, 'string', `body.error ${where}`);
  assert.equal(typeof body.message, 'string', `body.message ${where}`);
  assert.equal(typeof body.request_id, 'string', `body.request_id ${where}`);
  assert.ok(body.request_id.length > 0, `empty request_id ${where}`);
  assert.equal(res.headers['x-request-id'], body.request_id, `x-request-id header vs body.request_id ${where}`);
  return body;
}

/**
 * Parses Prometheus text into [{name, labels: {...}, value}] (comments skipped).
 */
export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$/.exec(line.trim());
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let lm;
      while ((lm = re.exec(m[3]))) labels[lm[1]] = lm[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return samples;
}

/** Sum of the samples named `name` whose labels include `labels` (0 when none). */
export function metricSum(textOrSamples, name, labels = {}) {
  const samples = typeof textOrSamples === 'string' ? parseMetrics(textOrSamples) : textOrSamples;
  let sum = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  }
  return sum;
}

/** GET ADMIN/metrics and return the text (asserting 200). */
export async function fetchMetrics(gw) {
  const r = await httpRequest({ url: `${gw.adminUrl}/metrics` });
  if (r.status !== 200) throw new Error(`/metrics returned ${r.status}`);
  return r.body;
}

// ---------------------------------------------------------------------------------------
// Config building blocks

/**
 * A small complete config object: one plaintext listener, admin, the given upstreams and
 * routes. Ports are allocated here. Returns {config, ports: {plain, admin}}.
 */
export async function basicConfig({ upstreams, routes, server = {}, listeners, accessLog = 'stdout' } = {}) {
  const [plain, admin] = await freePorts(2);
  const config = {
    server: { workers: 2, drain_timeout: '5s', ...server },
    access_log: { path: accessLog },
    listeners: listeners ?? [{ name: 'plain', address: `127.0.0.1:${plain}` }],
    admin: { address: `127.0.0.1:${admin}` },
    upstreams,
    routes,
  };
  return { config, ports: { plain, admin } };
}

/** A GET through the gateway on `port` with Host `host`; returns httpRequest's result. */
export function get(port, pathname, { host, headers = {}, ...rest } = {}) {
  const h = { ...headers };
  if (host) h.host = host;
  return httpRequest({ port, path: pathname, headers: h, ...rest });
}

/** Stops everything registered, in reverse order, ignoring errors (for after()). */
export function cleanupList() {
  const items = [];
  return {
    add(fn) { items.push(fn); return fn; },
    async run() {
      while (items.length) {
        const fn = items.pop();
        try { await fn(); } catch { /* best effort */ }
      }
    },
  };
}
