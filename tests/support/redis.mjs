// A throwaway redis-server for integration tests (installed by `scripts/setup.sh --test`;
// no systemd: the test starts and stops it itself). node: built-ins only (plus harness.mjs).
//
//   const redis = await startRedis();              // a free port, no persistence
//   await redis.command('XLEN', 'portcullis:audit') // -> 3 (RESP; bulk strings as Buffers)
//   await redis.cli(['XLEN', 'portcullis:audit'])  // -> '3\n' (redis-cli's stdout)
//   await redis.kill9();                           // SIGKILL, as a crash
//   const again = await startRedis({ port: redis.port }); // same port, empty data
//   await again.stop();
//
// Every redis-server started here is SIGKILLed when the test process exits, behind the
// explicit stop() in after() hooks.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { freePort, tempDir, rmTemp, run, sleep } from './harness.mjs';

export const REDIS_SERVER = process.env.REDIS_SERVER || 'redis-server';
export const REDIS_CLI = process.env.REDIS_CLI || 'redis-cli';

const live = new Set();
process.on('exit', () => {
  for (const p of live) {
    try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
  }
});

/** The argv of one Redis command as RESP bytes. */
function encode(args) {
  const parts = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a), 'latin1');
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/**
 * Parses one RESP2 reply at buf[pos]: {value, end} or null when incomplete. Simple strings
 * are strings, integers numbers, bulk strings Buffers (null for nil), arrays arrays, errors
 * {error: 'ERR ...'}.
 */
function parseReply(buf, pos = 0) {
  const lineEnd = buf.indexOf('\r\n', pos);
  if (lineEnd < 0) return null;
  const type = String.fromCharCode(buf[pos]);
  const head = buf.toString('latin1', pos + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case '+': return { value: head, end: next };
    case '-': return { value: { error: head }, end: next };
    case ':': return { value: Number(head), end: next };
    case '$': {
      const n = Number(head);
      if (n < 0) return { value: null, end: next };
      if (buf.length < next + n + 2) return null;
      return { value: buf.subarray(next, next + n), end: next + n + 2 };
    }
    case '*': {
      const n = Number(head);
      if (n < 0) return { value: null, end: next };
      const items = [];
      let at = next;
      for (let i = 0; i < n; i++) {
        const r = parseReply(buf, at);
        if (!r) return null;
        items.push(r.value);
        at = r.end;
      }
      return { value: items, end: at };
    }
    default: throw new Error(`unexpected RESP type byte ${JSON.stringify(type)}`);
  }
}

/**
 * One command on a fresh connection to 127.0.0.1:port; resolves the parsed reply (see
 * parseReply), rejects on a connection error, a timeout or an error reply.
 */
export function redisCommand(port, args, { timeoutMs = 3000 } = {}) {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const socket = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`redis ${args[0]} timed out after ${timeoutMs} ms`)); }, timeoutMs);
    const finish = (err, value) => { clearTimeout(timer); socket.destroy(); if (err) reject(err); else resolve(value); };
    socket.on('error', (e) => finish(e));
    socket.on('close', () => finish(new Error(`redis connection closed before the reply to ${args[0]}`)));
    socket.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      let r;
      try { r = parseReply(buf); } catch (e) { finish(e); return; }
      if (!r) return;
      if (r.value && typeof r.value === 'object' && 'error' in r.value) finish(new Error(`redis ${args[0]}: ${r.value.error}`));
      else finish(null, r.value);
    });
    socket.write(encode(args));
  });
}

/**
 * Starts `redis-server --port P --bind 127.0.0.1 --save '' --appendonly no --daemonize no`
 * (plus `args`, e.g. ['--stream-node-max-entries', '10']) in a temporary working directory
 * and waits until it answers PING. options: {port (default: a free one), args, readyTimeoutMs}.
 * Returns {port, address, pid, exited, logs(), command(...args), cli(args), stop(), kill9()}.
 */
export async function startRedis({ port, args = [], readyTimeoutMs = 20_000 } = {}) {
  port = port ?? await freePort();
  const dir = tempDir('portcullis-redis-');
  const proc = spawn(REDIS_SERVER, [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--daemonize', 'no', '--dir', dir, '--logfile', '', ...args,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  let output = '';
  proc.stdout.setEncoding('utf8').on('data', (c) => { output += c; });
  proc.stderr.setEncoding('utf8').on('data', (c) => { output += c; });
  let exitInfo = null;
  const exited = new Promise((resolve) => {
    const done = (info) => {
      if (exitInfo) return;
      exitInfo = info;
      live.delete(proc);
      rmTemp(dir);
      resolve(info);
    };
    proc.on('exit', (code, signal) => done({ code, signal }));
    proc.on('error', (e) => done({ code: null, signal: null, error: String(e) }));
  });

  async function waitExit(signal, timeoutMs) {
    if (exitInfo) return exitInfo;
    try { process.kill(proc.pid, signal); } catch { /* gone */ }
    let timer;
    const late = new Promise((resolve) => {
      timer = setTimeout(() => {
        try { process.kill(proc.pid, 'SIGKILL'); } catch { /* gone */ }
        resolve();
      }, timeoutMs);
    });
    await Promise.race([exited, late]);
    clearTimeout(timer);
    return exited;
  }

  const redis = {
    port,
    address: `127.0.0.1:${port}`,
    pid: proc.pid,
    exited,
    logs: () => output,
    /** RESP round trip on a fresh connection: bulk strings come back as Buffers (exact bytes). */
    command: (...cmd) => redisCommand(port, cmd),
    /** `redis-cli -p PORT ARGS...`; resolves its stdout, throws when it fails. */
    async cli(cliArgs) {
      const r = await run(REDIS_CLI, ['-p', String(port), ...cliArgs], { timeoutMs: 10_000 });
      if (r.code !== 0) throw new Error(`redis-cli ${cliArgs.join(' ')} failed (${r.code}): ${r.stderr}${r.stdout}`);
      return r.stdout;
    },
    /** SIGTERM (a clean shutdown, nothing saved), SIGKILL after timeoutMs; resolves the exit. */
    stop: (timeoutMs = 5000) => waitExit('SIGTERM', timeoutMs),
    /** SIGKILL, as a crash; resolves once the process is gone. */
    kill9: () => waitExit('SIGKILL', 5000),
  };

  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (exitInfo) throw new Error(`redis-server on port ${port} exited before ready (${JSON.stringify(exitInfo)})\n${output}`);
    try {
      if (await redisCommand(port, ['PING'], { timeoutMs: 500 }) === 'PONG') break;
    } catch { /* not yet */ }
    if (Date.now() > deadline) {
      await redis.kill9();
      throw new Error(`redis-server on port ${port} not answering PING within ${readyTimeoutMs} ms\n${output}`);
    }
    await sleep(50);
  }
  return redis;
}

/** XRANGE KEY - + as [{id, fields: {name: Buffer}}], in stream order. */
export async function xrange(redis, key) {
  const entries = await redis.command('XRANGE', key, '-', '+');
  return entries.map(([id, kv]) => {
    const fields = {};
    const names = [];
    for (let i = 0; i < kv.length; i += 2) {
      const name = kv[i].toString('latin1');
      names.push(name);
      fields[name] = kv[i + 1];
    }
    return { id: id.toString('latin1'), names, fields };
  });
}
