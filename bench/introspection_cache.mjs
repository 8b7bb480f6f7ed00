// The replicas' shared cache end to end (issue 5), side by side in one run, all on loopback,
// with the real OpenID provider (opaque tokens, RFC 7662 introspection), a real redis-server
// and the echo upstream of the tests:
//
//   direct        the upstream without a gateway (the reference for added latency)
//   l1-only       a gateway without cache.redis
//   redis-l2      a gateway with cache.redis; another replica has already introspected the
//                 token, so its first use here is a Redis hit instead of an IdP call
//   redis-down    a gateway with cache.redis pointing at a port nothing listens on
//
// Two workloads per target:
//   warm   one token used over and over (answered from the per-worker L1): wrk, requests/s,
//          p50, p99. This is the hot path: L2 must not slow it down.
//   first  N fresh tokens, each used once, one at a time: p50/p99 of that first request
//          (an IdP introspection, or a Redis GET on redis-l2).
//
// Usage: node bench/introspection_cache.mjs [--duration 5] [--connections 16] [--tokens 200]
// (bench/introspection_cache.sh installs wrk and redis-server, builds, and runs this).
import { spawn } from 'node:child_process';
import http from 'node:http';
import { parseArgs } from 'node:util';
import {
  startGateway, startUpstream, tempDir, rmTemp, eventually, fetchMetrics, metricSum, freePort, cleanupList,
} from '../tests/support/harness.mjs';
import { startProvider, getToken } from '../tests/support/oidc/client.mjs';
import { providerEntry, bearerConfig, writeSecret } from '../tests/support/bearer.mjs';
import { startRedis } from '../tests/support/redis.mjs';

const { values: opts } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '16' },
    tokens: { type: 'string', default: '200' },
  },
});
const DURATION = Number(opts.duration);
const CONNECTIONS = Number(opts.connections);
const TOKENS = Number(opts.tokens);

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function get(port, path, token) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const req = http.request({
      host: '127.0.0.1', port, path, agent,
      headers: token ? { authorization: `Bearer ${token}` } : {},
    }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, us: Number(process.hrtime.bigint() - started) / 1000 }));
    });
    req.on('error', reject);
    req.end();
  });
}

function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** wrk for DURATION s: {rps, p50_us, p99_us, non2xx}. */
function wrk(port, token) {
  return new Promise((resolve, reject) => {
    const args = ['-t', '1', '-c', String(CONNECTIONS), '-d', `${DURATION}s`, '--latency',
      '-H', `Authorization: Bearer ${token}`, `http://127.0.0.1:${port}/orders/bench`];
    const p = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (c) => { out += c; });
    p.stderr.on('data', (c) => { out += c; });
    p.on('error', reject);
    p.on('exit', () => {
      const unit = (v, u) => Number(v) * ({ us: 1, ms: 1000, s: 1e6 }[u]);
      const pct = (n) => {
        const m = new RegExp(`^\\s+${n}%\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm').exec(out);
        return m ? unit(m[1], m[2]) : NaN;
      };
      const rps = Number((/Requests\/sec:\s+([\d.]+)/.exec(out) ?? [])[1]);
      const non2xx = Number((/Non-2xx or 3xx responses:\s+(\d+)/.exec(out) ?? [0, 0])[1]);
      if (!rps) return reject(new Error(`wrk output not understood:\n${out}`));
      resolve({ rps, p50_us: pct(50), p99_us: pct(99), non2xx });
    });
  });
}

const cleanup = cleanupList();
try {
  const dir = tempDir('portcullis-bench-introspection-');
  cleanup.add(() => rmTemp(dir));
  const secretFile = writeSecret(dir, 'introspector.secret', 'introspector-secret');
  const idp = await startProvider({ algs: ['RS256'] });
  cleanup.add(() => idp.stop());
  const upstream = await startUpstream({ name: 'echo' });
  cleanup.add(() => upstream.close());
  const redis = await startRedis();
  cleanup.add(() => redis.stop());
  const deadPort = await freePort();

  const gateway = async (redisAddress) => {
    const { config } = await bearerConfig({
      upstream,
      server: { workers: 1 },
      providers: [providerEntry(idp, {
        introspection: {
          endpoint: idp.introspectionEndpoint, client_id: 'introspector',
          client_secret_file: secretFile, cache_ttl: '5m',
        },
      })],
    });
    if (redisAddress) config.cache = { redis: { address: redisAddress, timeout: '25ms' } };
    config.access_log = { path: 'off' };
    const gw = await startGateway({ config });
    cleanup.add(() => gw.stop());
    gw.port = Number(config.listeners[0].address.split(':')[1]);
    return gw;
  };
  const targets = {
    'l1-only': await gateway(null),
    'redis-l2': await gateway(redis.address),
    'redis-down': await gateway(`127.0.0.1:${deadPort}`),
  };
  const seeder = await gateway(redis.address); // "another replica"
  await eventually(async () => metricSum(await fetchMetrics(targets['redis-l2']), 'portcullis_redis_connected') === 1,
    { timeoutMs: 5000, message: 'redis-l2 connected' });
  await eventually(async () => metricSum(await fetchMetrics(seeder), 'portcullis_redis_connected') === 1,
    { timeoutMs: 5000, message: 'seeder connected' });

  const newToken = () => getToken({ clientId: 'opaque-client', scope: 'orders:read' });
  const rows = [];

  // warm: one token, answered from L1 after its first use.
  const warmToken = await newToken();
  const direct = await wrk(Number(upstream.address.split(':')[1]), warmToken);
  rows.push({ target: 'direct', workload: 'warm', ...direct });
  for (const [name, gw] of Object.entries(targets)) {
    const first = await get(gw.port, '/orders/warmup', warmToken);
    if (first.status !== 200) throw new Error(`${name}: warm-up answered ${first.status}`);
    rows.push({ target: name, workload: 'warm', ...(await wrk(gw.port, warmToken)) });
  }

  // first use of fresh tokens, one at a time (the seeder introspects them first for redis-l2).
  for (const [name, gw] of Object.entries(targets)) {
    const lat = [];
    for (let i = 0; i < TOKENS; i++) {
      const token = await newToken();
      if (name === 'redis-l2') {
        const s = await get(seeder.port, '/orders/seed', token);
        if (s.status !== 200) throw new Error(`seeder answered ${s.status}`);
        // The seeder's SET is asynchronous: give it a moment to land.
        await new Promise((r) => setTimeout(r, 2));
      }
      const r = await get(gw.port, '/orders/first', token);
      if (r.status !== 200) throw new Error(`${name}: first use answered ${r.status}`);
      lat.push(r.us);
    }
    lat.sort((a, b) => a - b);
    const text = await fetchMetrics(gw);
    rows.push({
      target: name, workload: 'first', requests: TOKENS,
      p50_us: percentile(lat, 50), p99_us: percentile(lat, 99),
      l2_hits: metricSum(text, 'portcullis_shared_cache_total', { result: 'hit' }),
      l2_errors: metricSum(text, 'portcullis_shared_cache_total', { result: 'error' }),
    });
  }
  const idpCalls = (await idp.state()).counters.introspection;

  const baseline = rows.find((r) => r.target === 'direct');
  const l1 = rows.find((r) => r.target === 'l1-only' && r.workload === 'first');
  console.log(`introspection cache bench: ${DURATION}s wrk runs, ${CONNECTIONS} connections, 1 worker; ${TOKENS} fresh tokens per target`);
  console.log('target      workload  req/s     ratio  p50(us)  p99(us)  notes');
  for (const r of rows) {
    const ratio = r.workload === 'warm' ? (r.rps / baseline.rps).toFixed(2) : '';
    const notes = r.workload === 'warm'
      ? (r.non2xx ? `non-2xx ${r.non2xx}` : '')
      : `L2 hits ${r.l2_hits}, L2 errors ${r.l2_errors}, p50 vs l1-only ${(r.p50_us / l1.p50_us).toFixed(2)}`;
    console.log(`${r.target.padEnd(11)} ${r.workload.padEnd(9)} ${r.rps ? r.rps.toFixed(0).padStart(8) : '       -'}  ${ratio.padStart(5)}  ${r.p50_us.toFixed(0).padStart(7)}  ${r.p99_us.toFixed(0).padStart(7)}  ${notes}`);
  }
  console.log(`IdP introspection requests in all: ${idpCalls}`);
} finally {
  agent.destroy();
  await cleanup.run();
}
