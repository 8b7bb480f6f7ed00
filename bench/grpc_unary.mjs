// gRPC unary benchmark with the real client (@grpc/grpc-js), side by side in one run, loopback:
//
//   direct             grpc-js client -> grpc-js server (tests/support/grpc/server.mjs, h2c)
//   portcullis-public  client -> portcullis (prior-knowledge h2c listener, auth: public route)
//                      -> same server (upstream protocol: h2c)
//   portcullis-bearer  the same with an auth: bearer route and a real JWT from the OpenID
//                      provider fixture (verification + policy; cached per worker after first use)
//
// Per target: one channel, a warm-up of 1000 calls, then N calls of a small message with C in
// flight; per-call latency from process.hrtime.bigint; CPU time per call of the client, the
// server and the gateway from /proc/PID/stat (the client is usually the bottleneck). Every
// call must end with code 0 and echo its message; failures are counted and printed. The gRPC
// server runs in a child process (this script with --serve) so it does not share the
// client's event loop. Gateways: 1 worker, no access log.
//
// Usage: node bench/grpc_unary.mjs [--calls 20000] [--concurrency 32]
// (bench/grpc_unary.sh installs the test npm packages, builds if needed, and runs this.)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values: opts } = parseArgs({
  options: {
    calls: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '32' },
    warmup: { type: 'string', default: '1000' },
    serve: { type: 'boolean', default: false },
  },
});

function startServerChild() {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve'], { stdio: ['pipe', 'pipe', 'inherit'] });
  process.on('exit', () => { try { child.kill('SIGKILL'); } catch { /* gone */ } });
  return new Promise((resolve, reject) => {
    let out = '';
    child.on('exit', (code) => reject(new Error(`grpc server child exited (${code})`)));
    child.stdout.setEncoding('utf8').on('data', (d) => {
      const m = /PORT (\d+)/.exec(out += d);
      if (m) resolve({ address: `127.0.0.1:${m[1]}`, pid: child.pid, stop: () => child.stdin.end() });
    });
  });
}

/** CPU time (user + system, all threads) of a process so far, in us (USER_HZ = 100). */
const cpuUs = (pid) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * 10_000;
};

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** n calls, `concurrency` in flight: { rps, p50, p99 (us), failures: Map 'code details' -> count }. */
async function runCalls(client, unary, n, concurrency, metadata) {
  const lat = new Float64Array(n);
  const failures = new Map();
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const message = `m${i}`;
      const t0 = process.hrtime.bigint();
      const r = await unary(client, { message }, { metadata: metadata?.(), deadlineMs: 10_000 });
      lat[i] = Number(process.hrtime.bigint() - t0) / 1000;
      const bad = r.code !== 0 ? `${r.code} ${r.details}` : (r.reply?.message !== message ? 'wrong reply' : null);
      if (bad) failures.set(bad, (failures.get(bad) ?? 0) + 1);
    }
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  lat.sort();
  return { rps: n / secs, p50: percentile(lat, 50), p99: percentile(lat, 99), failures };
}

async function main() {
  const { startGateway, basicConfig, cleanupList } = await import('../tests/support/harness.mjs');
  const { startProvider, getToken } = await import('../tests/support/oidc/client.mjs');
  const { providerEntry, bearerConfig } = await import('../tests/support/bearer.mjs');
  const { makeClient, unary, bearerMetadata } = await import('../tests/support/grpc/client.mjs');
  const CALLS = Number(opts.calls);
  const CONC = Number(opts.concurrency);
  const WARMUP = Number(opts.warmup);
  const ECHO = 'portcullis.test.v1.Echo';
  const cleanup = cleanupList();
  try {
    const server = await startServerChild();
    cleanup.add(() => server.stop());
    const idp = await startProvider({ algs: ['RS256'] });
    cleanup.add(() => idp.stop());
    const grpcUpstream = { name: 'grpc', protocol: 'h2c', endpoints: [server.address] };
    const route = (auth) => ({
      name: 'echo', match: { grpc_service: ECHO }, upstream: 'grpc', auth,
      ...(auth === 'bearer' ? { policy: { allow: { authenticated_user: true } } } : {}),
    });
    const gateway = async (config) => {
      config.access_log = { path: 'off' };
      const gw = await startGateway({ config });
      cleanup.add(() => gw.stop());
      return { address: config.listeners[0].address, pid: gw.pid };
    };
    const pub = (await basicConfig({ upstreams: [grpcUpstream], routes: [route('public')], server: { workers: 1 } })).config;
    const { config: bear } = await bearerConfig({
      upstream: { address: '127.0.0.1:1' }, providers: [providerEntry(idp)], routes: [route('bearer')], server: { workers: 1 },
    });
    bear.upstreams = [grpcUpstream];
    const token = await getToken({ scope: 'orders:read' });
    const targets = [
      { name: 'direct', address: server.address },
      { name: 'portcullis-public', ...(await gateway(pub)) },
      { name: 'portcullis-bearer', ...(await gateway(bear)), metadata: () => bearerMetadata(token) },
    ];

    const rows = [];
    for (const t of targets) {
      const client = makeClient(t.address);
      cleanup.add(() => client.close());
      const warm = await runCalls(client, unary, WARMUP, CONC, t.metadata);
      const pids = { client: process.pid, server: server.pid, gateway: t.pid };
      const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, pid && cpuUs(pid)]));
      const res = await runCalls(client, unary, CALLS, CONC, t.metadata);
      const cpu = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, pid ? (cpuUs(pid) - before[k]) / CALLS : NaN]));
      rows.push({ ...t, ...res, cpu, warmFailures: warm.failures });
      client.close();
    }

    console.log(`gRPC unary, ${CALLS} calls, ${CONC} in flight, 1 gateway worker`
      + ` (warm-up ${WARMUP}; grpc server in a child process; ${os.availableParallelism()} CPUs, node ${process.version})`);
    console.log('target              calls/s   p50 us   p99 us  vs direct  client  server gateway');
    const base = rows[0].rps;
    for (const r of rows) {
      console.log(`${r.name.padEnd(18)} ${r.rps.toFixed(0).padStart(8)} ${r.p50.toFixed(0).padStart(8)} ${r.p99.toFixed(0).padStart(8)}  ${(r.rps / base).toFixed(2).padStart(9)}${[r.cpu.client, r.cpu.server, r.cpu.gateway].map((v) => (Number.isNaN(v) ? '-' : v.toFixed(0)).padStart(8)).join('')}`);
    }
    console.log('(client, server, gateway: CPU time per measured call in us, user + system, all threads)');
    let failed = 0;
    for (const r of rows) {
      for (const [phase, map] of [['warm-up', r.warmFailures], ['measured', r.failures]]) {
        for (const [what, count] of map) {
          failed += count;
          console.log(`FAILED ${r.name} ${phase}: ${count} x ${what}`);
        }
      }
    }
    console.log(failed ? `${failed} calls failed` : 'all calls returned code 0');
    process.exitCode = failed ? 1 : 0;
  } finally {
    await cleanup.run();
  }
}

if (opts.serve) {
  // Child mode: the gRPC server alone; prints its port, exits when stdin closes.
  const { startGrpcServer } = await import('../tests/support/grpc/server.mjs');
  const srv = await startGrpcServer();
  process.stdout.write(`PORT ${srv.port}\n`);
  process.stdin.on('end', () => srv.forceClose().then(() => process.exit(0))).resume();
} else {
  await main();
}
