// Operations: admin endpoints, metrics, /config, access log, SIGHUP reloads (good, broken,
// under load) and SIGTERM draining.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import {
  startGateway, startUpstream, freePorts, makeCerts, tempDir, rmTemp, writeConfig, toYaml, httpRequest,
  rawRequest, parseResponse, fetchMetrics, metricSum, parseMetrics, eventually, sleep, withTimeout,
} from '../support/harness.mjs';

describe('operations', { timeout: 300_000 }, () => {
  let gw;
  let dir;
  let certs;
  let configPath;
  const ups = {};
  const ports = {};
  let dead;

  function makeConfig(publicUpstream, extraRoutes = []) {
    return {
      server: { workers: 2, drain_timeout: '5s' },
      access_log: { path: 'stdout' },
      listeners: [
        { name: 'edge', address: `127.0.0.1:${ports.edge}`, tls: { cert: certs.cert, key: certs.key } },
        { name: 'plain', address: `127.0.0.1:${ports.plain}` },
      ],
      admin: { address: `127.0.0.1:${ports.admin}` },
      upstreams: [
        { name: 'blue', endpoints: [ups.blue.address] },
        { name: 'green', endpoints: [ups.green.address] },
        { name: 'dead', endpoints: [`127.0.0.1:${dead}`], retries: 0 },
      ],
      routes: [
        { name: 'public', match: { path_prefix: '/public' }, upstream: publicUpstream, auth: 'public' },
        { name: 'dead', match: { path_prefix: '/dead' }, upstream: 'dead', auth: 'public' },
        ...extraRoutes,
      ],
    };
  }

  const reloads = async (result) => metricSum(await fetchMetrics(gw), 'portcullis_config_reloads_total', { result });
  const publicName = async () => {
    const r = await httpRequest({ port: ports.plain, path: '/public/who' });
    assert.equal(r.status, 200, r.body);
    return r.json().name;
  };

  before(async () => {
    dir = tempDir('portcullis-ops-');
    certs = await makeCerts(path.join(dir, 'certs'));
    ups.blue = await startUpstream({ name: 'blue' });
    ups.green = await startUpstream({ name: 'green' });
    [ports.edge, ports.plain, ports.admin, dead] = await freePorts(4);
    configPath = writeConfig(makeConfig('blue'), { dir });
    gw = await startGateway({ configPath });
  });

  after(async () => {
    await gw?.stop();
    for (const u of Object.values(ups)) await u.close();
    rmTemp(dir);
  });

  // --- admin ------------------------------------------------------------------------------

  test('GET /healthz -> 200 and /readyz -> 200', async () => {
    assert.equal((await gw.admin('/healthz')).status, 200);
    assert.equal((await gw.admin('/readyz')).status, 200);
  });

  test('/metrics: request counters per route and status class increase', async () => {
    const before = metricSum(await fetchMetrics(gw), 'portcullis_requests_total', { route: 'public', status_class: '2xx' });
    for (let i = 0; i < 3; i++) assert.equal((await httpRequest({ port: ports.plain, path: '/public/m' })).status, 200);
    const after = await eventually(async () => {
      const v = metricSum(await fetchMetrics(gw), 'portcullis_requests_total', { route: 'public', status_class: '2xx' });
      return v >= before + 3 && v;
    }, { timeoutMs: 5000, message: 'portcullis_requests_total{route="public",status_class="2xx"} to grow by 3' });
    assert.ok(after >= before + 3);
  });

  test('/metrics: Prometheus text with the duration histogram and upstream counters', async () => {
    const r = await httpRequest({ port: ports.plain, path: '/dead/x' }); // makes an upstream error
    assert.equal(r.status, 502, r.body);
    const m = await gw.admin('/metrics');
    assert.equal(m.status, 200);
    assert.match(m.headers['content-type'] ?? '', /^text\/plain/);
    const text = m.body;
    assert.match(text, /^# TYPE portcullis_requests_total counter$/m);
    assert.match(text, /^portcullis_requests_total\{[^}]*route="public"[^}]*\} \d/m);
    const samples = parseMetrics(text);
    const buckets = samples.filter((s) => s.name === 'portcullis_request_duration_seconds_bucket');
    assert.ok(buckets.length > 0, 'no portcullis_request_duration_seconds_bucket');
    assert.ok(buckets.some((s) => s.labels.le === '+Inf'), 'no le="+Inf" bucket');
    assert.ok(samples.some((s) => s.name === 'portcullis_request_duration_seconds_count'), 'no _count');
    assert.ok(samples.some((s) => s.name === 'portcullis_request_duration_seconds_sum'), 'no _sum');
    assert.ok(metricSum(samples, 'portcullis_upstream_connections_total') >= 1, 'portcullis_upstream_connections_total missing or 0');
    await eventually(async () => metricSum(await fetchMetrics(gw), 'portcullis_upstream_errors_total') >= 1,
      { timeoutMs: 5000, message: 'portcullis_upstream_errors_total >= 1' });
    await eventually(async () => metricSum(await fetchMetrics(gw), 'portcullis_requests_total', { route: 'dead', status_class: '5xx' }) >= 1,
      { timeoutMs: 5000, message: 'portcullis_requests_total{route="dead",status_class="5xx"} >= 1' });
  });

  test('/config returns the running config as JSON without key file contents', async () => {
    const r = await gw.admin('/config');
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'] ?? '', /json/);
    const cfg = r.json();
    const text = JSON.stringify(cfg);
    assert.ok(text.includes('"public"') && text.includes('"blue"'), `routes/upstreams missing: ${text.slice(0, 500)}`);
    assert.doesNotMatch(r.body, /PRIVATE KEY/);
    const keyBody = fs.readFileSync(certs.key, 'utf8').split('\n').filter((l) => l && !l.startsWith('-----'));
    for (const line of keyBody) assert.ok(!r.body.includes(line), 'key material in /config');
  });

  // --- access log -------------------------------------------------------------------------

  test('one JSON access-log line per request with request_id, route, status, method, path', async () => {
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const r = await httpRequest({ port: ports.plain, path: `/public/log/${i}?q=1` });
      assert.equal(r.status, 200);
      ids.push(r.headers['x-request-id']);
    }
    const nf = await httpRequest({ port: ports.plain, path: '/nowhere' });
    assert.equal(nf.status, 404);
    ids.push(nf.headers['x-request-id']);
    const entries = await eventually(() => {
      const log = gw.accessLog();
      const found = ids.map((id) => log.filter((e) => e.request_id === id));
      return found.every((f) => f.length >= 1) && found;
    }, { timeoutMs: 5000, message: 'access-log lines for 4 requests' });
    for (let i = 0; i < 3; i++) {
      assert.equal(entries[i].length, 1, `request ${ids[i]} logged ${entries[i].length} times`);
      const e = entries[i][0];
      assert.equal(e.route, 'public');
      assert.equal(Number(e.status), 200);
      assert.equal(e.method, 'GET');
      assert.ok(String(e.path).startsWith(`/public/log/${i}`), `path ${e.path}`);
    }
    assert.equal(Number(entries[3][0].status), 404);
  });

  /** Waits for the stdout line carrying request id `id`; asserts it is one JSON object. */
  async function logLineFor(id) {
    const line = await eventually(() => gw.logs().stdout.find((l) => l.includes(id)), { timeoutMs: 5000, message: `access-log line for ${id}` });
    let entry;
    assert.doesNotThrow(() => { entry = JSON.parse(line); }, `not JSON: ${line}`);
    assert.equal(entry.request_id, id);
    assert.ok(!line.includes('\t'), `raw tab in the log line: ${line}`);
    return entry;
  }

  test('quotes, tabs and backslashes in headers cannot break the access-log JSON', async () => {
    const ua = 'evil"agent\tx\\y';
    const text = await rawRequest(ports.plain,
      `GET /public/log-ua HTTP/1.1\r\nHost: a\r\nUser-Agent: ${ua}\r\nReferer: "},{"x":"\r\nConnection: close\r\n\r\n`);
    const res = parseResponse(text);
    assert.ok(res, JSON.stringify(text.slice(0, 300)));
    assert.equal(res.status, 200, res.body);
    const id = res.headers['x-request-id'];
    assert.ok(id, 'no x-request-id');
    const entry = await logLineFor(id);
    assert.equal(entry.route, 'public');
    for (const [k, v] of Object.entries(entry)) {
      if (typeof v === 'string' && /agent/.test(v)) assert.equal(v, ua, `field ${k}`);
    }
  });

  test('a path with %0A stays percent-encoded in the access log', async () => {
    const text = await rawRequest(ports.plain, 'GET /public/log%0Ainjected HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    const res = parseResponse(text);
    assert.ok(res, JSON.stringify(text.slice(0, 300)));
    assert.equal(res.status, 200, res.body);
    const entry = await logLineFor(res.headers['x-request-id']);
    assert.equal(entry.route, 'public');
    assert.equal(entry.path, '/public/log%0Ainjected');
  });

  test('a raw quote in the path cannot break the access-log JSON', async () => {
    const text = await rawRequest(ports.plain, 'GET /public/q"},{"x":"y HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    const res = parseResponse(text);
    assert.ok(res, JSON.stringify(text.slice(0, 300)));
    const id = res.headers['x-request-id'];
    assert.ok(id, `no x-request-id (status ${res.status})`);
    await logLineFor(id);
  });

  test('every stdout line that looks like a JSON record parses', () => {
    const lines = gw.logs().stdout.filter((l) => l.trim().startsWith('{'));
    assert.ok(lines.length > 0, 'no JSON lines on stdout');
    for (const l of lines) assert.doesNotThrow(() => JSON.parse(l), `broken log line: ${l}`);
  });

  test('%0A in a path is routed and reaches the upstream percent-encoded', async () => {
    const r = await httpRequest({ port: ports.plain, path: '/public/a%0Ab' });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json().url, '/public/a%0Ab');
  });

  // --- reloads ----------------------------------------------------------------------------

  test('SIGHUP reload: a route moved to another upstream takes effect', async () => {
    assert.equal(await publicName(), 'blue');
    const okBefore = await reloads('success');
    writeConfig(makeConfig('green'), { path: configPath });
    gw.reload();
    await eventually(async () => (await publicName()) === 'green', { timeoutMs: 5000, message: 'requests to reach green' });
    await eventually(async () => (await reloads('success')) >= okBefore + 1, { timeoutMs: 5000, message: 'reloads_total{result="success"} +1' });
  });

  test('SIGHUP with a broken file keeps the old config and says why (file:line)', async () => {
    const failBefore = await reloads('failure');
    const good = toYaml(makeConfig('blue'));
    const lines = good.trimEnd().split('\n');
    lines.push('bogus_key: 1');
    const badLine = lines.length;
    writeConfig(`${lines.join('\n')}\n`, { path: configPath });
    gw.reload();
    await gw.waitForLog(`${configPath}:${badLine}`, 5000);
    await eventually(async () => (await reloads('failure')) >= failBefore + 1, { timeoutMs: 5000, message: 'reloads_total{result="failure"} +1' });
    // still the previous (green) config
    for (let i = 0; i < 5; i++) assert.equal(await publicName(), 'green');
    assert.equal((await gw.admin('/readyz')).status, 200);
  });

  test('reload under load: 10 SIGHUPs during ~2000 requests from 8 clients, zero failures', { timeout: 180_000 }, async (t) => {
    writeConfig(makeConfig('green'), { path: configPath });
    gw.reload();
    await eventually(async () => (await publicName()) === 'green', { timeoutMs: 5000, message: 'green after restoring the config' });

    const failures = [];
    let total = 0;
    let reloadsDone = false;
    const deadline = Date.now() + 120_000;
    const client = async (i) => {
      const agent = i % 2 === 0 ? new http.Agent({ keepAlive: true, maxSockets: 1 }) : false;
      try {
        while ((total < 2000 || !reloadsDone) && Date.now() < deadline) {
          total += 1;
          try {
            const r = await httpRequest({ port: ports.plain, path: `/public/load/${i}/${total}`, agent, timeoutMs: 10_000 });
            if (r.status !== 200) failures.push(`status ${r.status}: ${r.body.slice(0, 200)}`);
          } catch (e) {
            failures.push(`error: ${e.message}`);
          }
        }
      } finally {
        if (agent) agent.destroy();
      }
    };
    const load = Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map(client));
    try {
      const base = await reloads('success');
      for (let k = 1; k <= 10; k++) {
        // alternate between two equivalent configs that differ in an unused route
        const extra = k % 2 ? [{ name: `extra-${k}`, match: { path_prefix: `/extra${k}` }, upstream: 'blue', auth: 'public' }] : [];
        writeConfig(makeConfig('green', extra), { path: configPath });
        gw.reload();
        await eventually(async () => (await reloads('success')) >= base + k, { timeoutMs: 5000, message: `reload ${k} to succeed` });
        await sleep(50);
      }
    } finally {
      reloadsDone = true;
      await withTimeout(load, 150_000, 'load clients');
    }
    t.diagnostic(`${total} requests, ${failures.length} failures`);
    assert.ok(total >= 2000, `only ${total} requests`);
    assert.deepEqual(failures.slice(0, 10), [], `${failures.length} failed requests`);
  });
});

describe('SIGTERM drain', { timeout: 60_000 }, () => {
  let gw;
  let up;
  const ports = {};

  before(async () => {
    up = await startUpstream({ name: 'slow' });
    [ports.plain, ports.admin] = await freePorts(2);
    gw = await startGateway({
      config: {
        server: { workers: 2, drain_timeout: '5s' },
        access_log: { path: 'stdout' },
        listeners: [{ name: 'plain', address: `127.0.0.1:${ports.plain}` }],
        admin: { address: `127.0.0.1:${ports.admin}` },
        upstreams: [{ name: 'slow', endpoints: [up.address], timeouts: { request: '10s' } }],
        routes: [{ name: 'slow', match: { path_prefix: '/slow' }, upstream: 'slow', auth: 'public' }],
      },
    });
  });

  after(async () => {
    await gw?.stop('SIGKILL');
    await up?.close();
  });

  function tryConnect(port) {
    return new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      const timer = setTimeout(() => { s.destroy(); resolve('timeout'); }, 1000);
      s.once('connect', () => { clearTimeout(timer); s.destroy(); resolve('connected'); });
      s.once('error', (e) => { clearTimeout(timer); resolve(e.code); });
    });
  }

  test('in-flight request completes, new connections are refused, exit 0 within drain_timeout', async (t) => {
    let inflightDone = false;
    const inflight = httpRequest({ port: ports.plain, path: '/slow/x?delay=1500', timeoutMs: 15_000 })
      .finally(() => { inflightDone = true; });
    await eventually(() => up.requests.length >= 1, { timeoutMs: 5000, message: 'the upstream to receive the slow request' });

    const sentAt = Date.now();
    gw.signal('SIGTERM');

    // Poll: a new connection must be refused while the slow request is still in flight.
    let refused = false;
    const attempts = [];
    while (!inflightDone && !gw.exitInfo()) {
      const r = await tryConnect(ports.plain);
      attempts.push(r);
      if (r === 'ECONNREFUSED') { refused = true; break; }
      await sleep(50);
    }

    const res = await inflight;
    assert.equal(res.status, 200, `in-flight request: ${res.status} ${res.body.slice(0, 200)}`);
    assert.equal(res.json().url, '/slow/x?delay=1500');

    // drain_timeout is 5s; the bound below adds a generous margin for a loaded machine.
    const exit = await withTimeout(gw.exited, 5000 + 3000, 'gateway exit after SIGTERM (drain_timeout 5s)');
    t.diagnostic(`exited ${Date.now() - sentAt} ms after SIGTERM`);
    assert.ok(refused, `new connections were not refused during the drain (attempts: ${attempts.join(',')})`);
    assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}`);
    assert.equal(await tryConnect(ports.plain), 'ECONNREFUSED');
  });
});
