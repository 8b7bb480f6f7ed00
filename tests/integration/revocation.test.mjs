// Revocations shared through Redis (config `cache: {redis: {address}}`), end to end through
// the real binary, two (then three) gateway processes and a real redis-server started here on
// a free port (tests/support/redis.mjs):
//
//  - `portcullis revoke --subject S` (HSET portcullis:revocations + PUBLISH) denies S on every
//    gateway within a second: 401 {"error":"unauthenticated","message":"subject revoked"} with
//    WWW-Authenticate: Bearer error="invalid_token"; the access log and the audit record say
//    decision deny with that reason; other subjects are untouched; the CLI counts the gateways;
//  - `--token-id JTI` denies that token ("token revoked") while another token of the same
//    subject still works;
//  - Redis SIGKILLed: the revocations already known keep denying, /readyz is 200 "ready
//    (degraded: Redis unreachable: ...)", portcullis_revocations_synced 0, the CLI exits 1;
//    a new (empty) redis-server on the same port: the gateways resubscribe (synced 1) and a
//    revocation issued then reaches both within a second;
//  - a gateway started after a revocation was issued (a late replica) denies it from its first
//    request (it reads the whole hash when it subscribes), also with Redis 150 ms away (a
//    relay here delays every reply) and the first request sent as soon as /readyz answers 200,
//    as a load balancer would (/readyz holds 503 until the first full read of the hash, at
//    most 3 s);
//  - `--ttl 2s` stops applying once expired; usage errors exit 2; a config without cache.redis
//    exits 1.
//
// Tokens come from a key pair made in this file (provider with jwks_file, policy/route
// `{allow: {authenticated_user: true}}`).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  BIN, startGateway, startUpstream, writeConfig, tempDir, rmTemp, freePorts, runGateway,
  checkGatewayError, eventually, sleep, fetchMetrics, metricSum, httpRequest, cleanupList
} from '../support/harness.mjs';
import { createTokenIssuer, decodeJws } from '../support/policy.mjs';
import { makeAuditKey, readAuditFile } from '../support/audit.mjs';
import { startRedis } from '../support/redis.mjs';

// ---------------------------------------------------------------------------------------
// Shared helpers

const HASH = 'portcullis:revocations';
const POLL_MS = 50;
const PROPAGATION_LIMIT_MS = 1000;

const issuer = createTokenIssuer({ alg: 'ES256', issuer: 'http://127.0.0.1:9/revocation-tests', audience: 'api://revocation-tests' });
const mint = (sub, extra = {}) => issuer.mint({ sub, email: `${sub}@example.com`, ...extra }, { ttl: 600 });

/** GET /api/... through a gateway with the bearer token. */
function call(gw, token, tag = 'x') {
  return httpRequest({
    port: gw.port, path: `/api/${tag}`, headers: { authorization: `Bearer ${token}` }, timeoutMs: 5000,
  });
}

function assertAllowed(r, what) {
  assert.equal(r.status, 200, `${what}: expected 200, got ${r.status} ${String(r.body).slice(0, 300)}`);
}

/** A revocation refusal: 401 unauthenticated, the reason as message and in WWW-Authenticate. */
function assertRevoked(r, reason, what) {
  assert.equal(r.status, 401, `${what}: expected 401 (${reason}), got ${r.status} ${String(r.body).slice(0, 300)}`);
  const body = checkGatewayError(assert, r, 401, 'unauthenticated');
  assert.equal(body.message, reason, `${what}: message`);
  assert.equal(r.headers['www-authenticate'], `Bearer error="invalid_token", error_description="${reason}"`, `${what}: WWW-Authenticate`);
  return body;
}

/** `portcullis revoke --config FILE ARGS...`: {code, stdout, stderr}. */
const revoke = (configPath, args) => runGateway(['revoke', '--config', configPath, ...args], { timeoutMs: 15_000 });

/**
 * Runs `portcullis revoke` and polls every POLL_MS each gateway with `token` until every one
 * answers 401 with `reason`. Returns {cli, elapsedMs (from just before the CLI started until
 * the last gateway denied), perGateway: [ms]}.
 */
async function revokeAndWaitDenied(configPath, args, gws, token, reason, { giveUpMs = 5000 } = {}) {
  const t0 = Date.now();
  const cliRun = revoke(configPath, args);
  const perGateway = await Promise.all(gws.map(async (gw, i) => {
    for (let n = 0; ; n++) {
      const r = await call(gw, token, `poll-${i}-${n}`);
      if (r.status === 401 && r.body.includes(reason)) return Date.now() - t0;
      if (r.status !== 200) assert.fail(`gateway ${i}: unexpected ${r.status} while waiting for "${reason}": ${r.body.slice(0, 300)}`);
      if (Date.now() - t0 > giveUpMs) return Infinity;
      await sleep(POLL_MS);
    }
  }));
  const cli = await cliRun;
  assert.equal(cli.code, 0, `revoke ${args.join(' ')} exit code; stderr: ${cli.stderr} stdout: ${cli.stdout}`);
  return { cli, elapsedMs: Math.max(...perGateway), perGateway };
}

/** The revocation metrics of one gateway. */
async function revocationMetrics(gw) {
  const text = await fetchMetrics(gw);
  return {
    synced: metricSum(text, 'portcullis_revocations_synced'),
    active: metricSum(text, 'portcullis_revocations_active'),
    present: /^portcullis_revocations_synced /m.test(text) && /^portcullis_revocations_active /m.test(text),
  };
}

/** The access-log entry (gateway stdout) for a request id, once written. */
function accessEntry(gw, requestId) {
  return eventually(() => gw.accessLog().find((e) => e.request_id === requestId), {
    timeoutMs: 3000, intervalMs: 50, message: `access log line for ${requestId}`,
  });
}

/** The audit `request` record for a request id, once written. */
function auditEntry(auditPath, requestId) {
  return eventually(() => fs.existsSync(auditPath)
    && readAuditFile(auditPath).lines.map((l) => l.rec).find((rec) => rec?.type === 'request' && rec.request_id === requestId), {
    timeoutMs: 3000, intervalMs: 50, message: `audit record for ${requestId}`,
  });
}

/**
 * A TCP relay on a free loopback port to 127.0.0.1:targetPort that holds every chunk coming
 * back from the target for `delayMs` (order kept): a Redis `delayMs` away. Returns
 * {address, close()}.
 */
async function startLatencyProxy(targetPort, delayMs) {
  const sockets = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => { client.destroy(); upstream.destroy(); });
    }
    client.on('data', (d) => upstream.write(d));
    upstream.on('data', (d) => setTimeout(() => { if (!client.destroyed) client.write(d); }, delayMs));
    client.on('end', () => upstream.end());
    upstream.on('end', () => setTimeout(() => client.end(), delayMs));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    address: `127.0.0.1:${server.address().port}`,
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

// Gateways spawned directly (not through startGateway, whose readiness poll sleeps 100 ms):
// SIGKILLed by pid when this process exits, behind the explicit stop in cleanup.
const spawned = new Set();
process.on('exit', () => {
  for (const pid of spawned) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
});

/**
 * `${BIN} serve --config FILE`, then GET /readyz every 5 ms until it first answers 200, as a
 * load balancer's health check would. Returns {pid, readyBody (that first 200's body),
 * readyAfterMs, stop()}.
 */
async function spawnUntilReady(configPath, adminAddress, { timeoutMs = 10_000 } = {}) {
  const proc = spawn(BIN, ['serve', '--config', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  spawned.add(proc.pid);
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (c) => { stderr += c; });
  let exitInfo = null;
  const exited = new Promise((resolve) => {
    const done = (info) => { if (!exitInfo) { exitInfo = info; spawned.delete(proc.pid); resolve(info); } };
    proc.on('exit', (code, signal) => done({ code, signal }));
    proc.on('error', (e) => done({ code: null, signal: null, error: String(e) }));
  });
  const stop = async () => {
    if (exitInfo) return exitInfo;
    try { process.kill(proc.pid, 'SIGTERM'); } catch { /* gone */ }
    const timer = setTimeout(() => { try { process.kill(proc.pid, 'SIGKILL'); } catch { /* gone */ } }, 5000);
    await exited;
    clearTimeout(timer);
    return exitInfo;
  };
  const t0 = Date.now();
  for (;;) {
    if (exitInfo) throw new Error(`gateway exited before ready (${JSON.stringify(exitInfo)})\n${stderr}`);
    try {
      const r = await httpRequest({ url: `http://${adminAddress}/readyz`, timeoutMs: 500 });
      if (r.status === 200) return { pid: proc.pid, readyBody: r.body, readyAfterMs: Date.now() - t0, stop };
    } catch { /* not yet */ }
    if (Date.now() - t0 > timeoutMs) {
      await stop();
      throw new Error(`gateway not ready within ${timeoutMs} ms\n${stderr}`);
    }
    await sleep(5);
  }
}

/**
 * Starts an echo upstream (once per replica) and a gateway with cache.redis on `redisAddress`:
 * /api needs a bearer token and allows any authenticated user. With `audit`, an audit file in
 * DIR/audit. Returns {gw (with .port), configPath, auditPath, dir}.
 */
async function startReplica(cleanup, { redisAddress, name, audit = false, redisExtra = {}, start = true }) {
  const dir = tempDir(`portcullis-revocation-${name}-`);
  cleanup.add(() => rmTemp(dir));
  const upstream = await startUpstream({ name: 'echo' });
  cleanup.add(() => upstream.close());
  const jwks = issuer.writeJwks(dir);
  const [port, admin] = await freePorts(2);
  const config = {
    server: { workers: 2, drain_timeout: '2s', instance_name: `revocation-${name}` },
    access_log: { path: 'stdout' },
    listeners: [{ name: 'plain', address: `127.0.0.1:${port}` }],
    admin: { address: `127.0.0.1:${admin}` },
    identity_providers: [issuer.provider(jwks)],
    upstreams: [{ name: 'echo', endpoints: [upstream.address] }],
    routes: [
      { name: 'api', match: { path_prefix: '/api' }, upstream: 'echo', auth: 'bearer', policy: { allow: { authenticated_user: true } } },
    ],
    cache: { redis: { address: redisAddress, ...redisExtra } },
  };
  let auditPath;
  if (audit) {
    const auditDir = path.join(dir, 'audit');
    fs.mkdirSync(auditDir);
    auditPath = path.join(auditDir, 'audit.jsonl');
    config.audit = {
      file: { path: auditPath },
      on_failure: 'deny',
      checkpoint: { every: 50, interval: '0s' },
      key_file: makeAuditKey(dir).keyPath,
    };
  }
  const configPath = writeConfig(config, { dir });
  if (!start) return { configPath, dir, port, adminAddress: `127.0.0.1:${admin}` };
  const gw = await startGateway({ configPath });
  cleanup.add(() => gw.stop());
  gw.port = port;
  return { gw, configPath, auditPath, dir };
}

// ---------------------------------------------------------------------------------------

describe('revocations shared through Redis (two gateway processes, one redis-server)', { timeout: 60_000 }, () => {
  const cleanup = cleanupList();
  let redis;
  let a; // replica A (with an audit file)
  let b; // replica B
  let gws;
  const tokens = {};

  before(async () => {
    redis = await startRedis();
    cleanup.add(() => redis.stop());
    a = await startReplica(cleanup, { redisAddress: redis.address, name: 'a', audit: true });
    b = await startReplica(cleanup, { redisAddress: redis.address, name: 'b' });
    gws = [a.gw, b.gw];
    for (const s of ['alice', 'bob', 'carol', 'grace']) tokens[s] = mint(s);
    tokens.daveOld = mint('dave', { jti: `dave-old-${process.pid}` });
    tokens.daveNew = mint('dave', { jti: `dave-new-${process.pid}` });
    // Both replicas subscribed and read the (empty) hash before anything is revoked.
    for (const gw of gws) {
      await eventually(async () => (await revocationMetrics(gw)).synced === 1, {
        timeoutMs: 5000, intervalMs: 50, message: `portcullis_revocations_synced 1 on ${gw.adminUrl}`,
      });
    }
  });

  after(async () => { await cleanup.run(); });

  test('--subject: denied on both gateways within 1 s, others untouched, logged and audited', async () => {
    for (const [i, gw] of gws.entries()) {
      assertAllowed(await call(gw, tokens.alice), `alice on gateway ${i} before`);
      assertAllowed(await call(gw, tokens.bob), `bob on gateway ${i} before`);
      const m = await revocationMetrics(gw);
      assert.ok(m.present, `gateway ${i}: revocation metrics exported`);
      assert.equal(m.active, 0, `gateway ${i}: no revocation yet`);
    }
    const readyz = await a.gw.admin('/readyz');
    assert.equal(readyz.status, 200);
    assert.equal(readyz.body, 'ready\n', 'synced: /readyz is plain ready');

    const { cli, elapsedMs, perGateway } = await revokeAndWaitDenied(
      a.configPath, ['--subject', 'alice'], gws, tokens.alice, 'subject revoked');
    assert.ok(elapsedMs <= PROPAGATION_LIMIT_MS,
      `alice denied on both gateways within ${PROPAGATION_LIMIT_MS} ms (took ${perGateway.join(' / ')} ms)`);
    assert.match(cli.stdout, /revoked subject 'alice'/, cli.stdout);
    assert.match(cli.stdout, /announced to 2 gateway\(s\)/, cli.stdout);

    // The hash holds it until about a day from now (the default ttl).
    const until = Number((await redis.command('HGET', HASH, 'subject alice'))?.toString());
    const now = Math.floor(Date.now() / 1000);
    assert.ok(until >= now + 86_400 - 60 && until <= now + 86_400 + 1, `HGET ${HASH} "subject alice" = ${until} (now ${now})`);

    for (const [i, gw] of gws.entries()) {
      const denied = await call(gw, tokens.alice, `denied-${i}`);
      const body = assertRevoked(denied, 'subject revoked', `alice on gateway ${i}`);
      assertAllowed(await call(gw, tokens.bob), `bob on gateway ${i} after`);
      const entry = await accessEntry(gw, body.request_id);
      assert.equal(entry.decision, 'deny', `gateway ${i}: access log decision`);
      assert.equal(entry.reason, 'subject revoked', `gateway ${i}: access log reason`);
      assert.equal(entry.status, 401, `gateway ${i}: access log status`);
      assert.equal(entry.subject, 'alice', `gateway ${i}: access log subject`);
      assert.equal(entry.upstream_address, '', `gateway ${i}: nothing forwarded`);
      if (gw === a.gw) {
        const rec = await auditEntry(a.auditPath, body.request_id);
        assert.equal(rec.decision, 'deny', 'audit decision');
        assert.equal(rec.reason, 'subject revoked', 'audit reason');
        assert.equal(rec.status, 401, 'audit status');
        assert.equal(rec.subject, 'alice', 'audit subject');
      }
      assert.equal((await revocationMetrics(gw)).active, 1, `gateway ${i}: portcullis_revocations_active`);
    }
  });

  test('--token-id: that token denied on both, a fresh token of the same subject still works', async () => {
    const jti = decodeJws(tokens.daveOld).payload.jti;
    for (const [i, gw] of gws.entries()) {
      assertAllowed(await call(gw, tokens.daveOld), `dave's old token on gateway ${i} before`);
      assertAllowed(await call(gw, tokens.daveNew), `dave's new token on gateway ${i} before`);
    }
    const { cli, elapsedMs, perGateway } = await revokeAndWaitDenied(
      b.configPath, ['--token-id', jti], gws, tokens.daveOld, 'token revoked');
    assert.ok(elapsedMs <= PROPAGATION_LIMIT_MS, `token denied on both within ${PROPAGATION_LIMIT_MS} ms (took ${perGateway.join(' / ')} ms)`);
    assert.match(cli.stdout, /announced to 2 gateway\(s\)/, cli.stdout);
    assert.ok(await redis.command('HGET', HASH, `token_id ${jti}`), `HGET ${HASH} "token_id ${jti}"`);
    for (const [i, gw] of gws.entries()) {
      const body = assertRevoked(await call(gw, tokens.daveOld), 'token revoked', `dave's old token on gateway ${i}`);
      const entry = await accessEntry(gw, body.request_id);
      assert.equal(entry.decision, 'deny');
      assert.equal(entry.reason, 'token revoked');
      assert.equal(entry.subject, 'dave');
      assertAllowed(await call(gw, tokens.daveNew), `dave's new token (another jti) on gateway ${i}`);
      // A token minted now (a fresh random jti) as well.
      assertAllowed(await call(gw, mint('dave')), `a fresh token for dave on gateway ${i}`);
      assert.equal((await revocationMetrics(gw)).active, 2, `gateway ${i}: portcullis_revocations_active`);
    }
  });

  test('Redis SIGKILLed: known revocations still deny, degraded readyz, CLI exits 1; restarted Redis: resync and new revocations flow', async () => {
    await redis.kill9();
    for (const [i, gw] of gws.entries()) {
      await eventually(async () => (await revocationMetrics(gw)).synced === 0, {
        timeoutMs: 5000, intervalMs: 50, message: `gateway ${i}: portcullis_revocations_synced 0 after the crash`,
      });
      const readyz = await gw.admin('/readyz');
      assert.equal(readyz.status, 200, `gateway ${i}: /readyz stays 200 while Redis is down`);
      assert.match(readyz.body, /^ready \(degraded: Redis unreachable: .+\)\n$/, `gateway ${i}: /readyz body ${JSON.stringify(readyz.body)}`);
      assertRevoked(await call(gw, tokens.alice), 'subject revoked', `alice on gateway ${i} with Redis down`);
      assertRevoked(await call(gw, tokens.daveOld), 'token revoked', `dave's old token on gateway ${i} with Redis down`);
      assertAllowed(await call(gw, tokens.bob), `bob on gateway ${i} with Redis down`);
      assertAllowed(await call(gw, tokens.daveNew), `dave's new token on gateway ${i} with Redis down`);
      assert.equal((await revocationMetrics(gw)).active, 2, `gateway ${i}: revocations kept while Redis is down`);
    }

    const down = await revoke(a.configPath, ['--subject', 'carol']);
    assert.equal(down.code, 1, `revoke with Redis down: exit 1 (stdout ${down.stdout} stderr ${down.stderr})`);
    assert.match(down.stderr, new RegExp(`portcullis revoke: cannot connect to Redis at 127\\.0\\.0\\.1:${redis.port}`), down.stderr);
    assert.doesNotMatch(down.stdout, /announced/, 'nothing announced');
    for (const gw of gws) assertAllowed(await call(gw, tokens.carol), 'carol (the failed revocation) still allowed');

    // A new redis-server on the same port; without persistence it is empty (the hash is gone).
    redis = await startRedis({ port: redis.port });
    cleanup.add(() => redis.stop());
    assert.equal(await redis.command('EXISTS', HASH), 0, 'the restarted Redis is empty');
    for (const [i, gw] of gws.entries()) {
      await eventually(async () => (await revocationMetrics(gw)).synced === 1, {
        timeoutMs: 8000, intervalMs: 50, message: `gateway ${i}: portcullis_revocations_synced 1 after the restart`,
      });
      const readyz = await gw.admin('/readyz');
      assert.equal(readyz.status, 200);
      assert.equal(readyz.body, 'ready\n', `gateway ${i}: /readyz no longer degraded`);
    }

    const { cli, elapsedMs, perGateway } = await revokeAndWaitDenied(
      a.configPath, ['--subject', 'carol'], gws, tokens.carol, 'subject revoked');
    assert.ok(elapsedMs <= PROPAGATION_LIMIT_MS, `carol denied on both within ${PROPAGATION_LIMIT_MS} ms after the restart (took ${perGateway.join(' / ')} ms)`);
    assert.match(cli.stdout, /announced to 2 gateway\(s\)/, cli.stdout);
    for (const [i, gw] of gws.entries()) {
      // What the replicas knew before the crash is still enforced; bob is still fine.
      assertRevoked(await call(gw, tokens.alice), 'subject revoked', `alice on gateway ${i} after the restart`);
      assertAllowed(await call(gw, tokens.bob), `bob on gateway ${i} after the restart`);
      assert.equal((await revocationMetrics(gw)).active, 3, `gateway ${i}: portcullis_revocations_active after the restart`);
    }
  });

  test('a gateway started after a revocation (late replica) denies it from its first request', async () => {
    const erinToken = mint('erin', { jti: `erin-${process.pid}` });
    const late = await revoke(b.configPath, ['--subject', 'mallory']);
    assert.equal(late.code, 0, late.stderr);
    assert.match(late.stdout, /announced to 2 gateway\(s\)/, late.stdout);
    const lateJti = await revoke(b.configPath, ['--token-id', `erin-${process.pid}`]);
    assert.equal(lateJti.code, 0, lateJti.stderr);

    const c = await startReplica(cleanup, { redisAddress: redis.address, name: 'c' });
    // The very first requests, as soon as the admin port says ready.
    const first = await Promise.all([call(c.gw, mint('mallory'), 'first'), call(c.gw, erinToken, 'first-erin')]);
    assertRevoked(first[0], 'subject revoked', 'mallory: first request to the late replica');
    assertRevoked(first[1], 'token revoked', "erin's revoked token: first request to the late replica");
    // Carol was revoked after the Redis restart, so it is in the hash too.
    assertRevoked(await call(c.gw, tokens.carol), 'subject revoked', 'carol on the late replica');
    assertAllowed(await call(c.gw, tokens.bob), 'bob on the late replica');
    assertAllowed(await call(c.gw, mint('erin')), 'another token of erin on the late replica');
    const m = await revocationMetrics(c.gw);
    assert.equal(m.synced, 1, 'late replica synced');
    assert.equal(m.active, 3, 'late replica: carol, mallory, erin\'s token from the hash');

    // Now three subscribers hear announcements.
    const { cli, elapsedMs, perGateway } = await revokeAndWaitDenied(
      c.configPath, ['--subject', 'bob'], [a.gw, b.gw, c.gw], tokens.bob, 'subject revoked');
    assert.match(cli.stdout, /announced to 3 gateway\(s\)/, cli.stdout);
    assert.ok(elapsedMs <= PROPAGATION_LIMIT_MS, `bob denied on all three within ${PROPAGATION_LIMIT_MS} ms (took ${perGateway.join(' / ')} ms)`);
    await c.gw.stop();
  });

  test('a late replica with Redis 150 ms away denies a revoked subject on the first request after /readyz says 200', async () => {
    // Redis a little further away (another zone): every reply takes 150 ms, within the
    // configured command timeout. `mallory` was revoked before this replica existed.
    const proxy = await startLatencyProxy(redis.port, 150);
    cleanup.add(() => proxy.close());
    const r = await startReplica(cleanup, {
      redisAddress: proxy.address, name: 'far', redisExtra: { timeout: '2s', connect_timeout: '2s' }, start: false,
    });
    const gw = await spawnUntilReady(r.configPath, r.adminAddress);
    cleanup.add(() => gw.stop());
    const gwLike = { port: r.port };
    const first = await call(gwLike, mint('mallory'), 'first-far');
    const readyBody = gw.readyBody;
    // Once caught up, it does deny (so the revocation itself reaches this replica).
    const caughtUp = await eventually(async () => (await call(gwLike, mint('mallory'), 'later-far')).status === 401, {
      timeoutMs: 5000, intervalMs: 50, message: 'mallory denied on the far replica once synced',
    });
    assert.ok(caughtUp);
    assertRevoked(first, 'subject revoked',
      `mallory: the first request to a replica that answered /readyz 200 (${JSON.stringify(readyBody)}, `
      + `${gw.readyAfterMs} ms after spawn) must already be denied`);
    await gw.stop();
  });

  test('--ttl 2s: the revocation stops applying once it expires', async () => {
    for (const gw of gws) assertAllowed(await call(gw, tokens.grace), 'grace before');
    const t0 = Date.now();
    const { cli, elapsedMs, perGateway } = await revokeAndWaitDenied(
      a.configPath, ['--subject', 'grace', '--ttl', '2s'], gws, tokens.grace, 'subject revoked');
    assert.ok(elapsedMs <= PROPAGATION_LIMIT_MS, `grace denied on both within ${PROPAGATION_LIMIT_MS} ms (took ${perGateway.join(' / ')} ms)`);
    assert.match(cli.stdout, /for 2s/, cli.stdout);
    const until = Number((await redis.command('HGET', HASH, 'subject grace'))?.toString());
    assert.ok(Math.abs(until - (t0 / 1000 + 2)) <= 1.5, `the hash entry ends about 2 s from now (until ${until}, t0 ${t0 / 1000})`);

    // Allowed again on both once expired (the time is in whole seconds: 1-2 s after the revoke).
    const lifted = await Promise.all(gws.map(async (gw, i) => {
      for (let n = 0; ; n++) {
        const r = await call(gw, tokens.grace, `ttl-${i}-${n}`);
        if (r.status === 200) return Date.now() - t0;
        assertRevoked(r, 'subject revoked', `grace on gateway ${i} before expiry`);
        if (Date.now() - t0 > 6000) return Infinity;
        await sleep(POLL_MS);
      }
    }));
    for (const [i, ms] of lifted.entries()) {
      assert.ok(ms >= 900 && ms <= 3500, `gateway ${i}: grace allowed again ${ms} ms after the revoke (expected ~1-3 s)`);
    }
    // And stays allowed; alice (24h) is still denied.
    await sleep(200);
    for (const [i, gw] of gws.entries()) {
      assertAllowed(await call(gw, tokens.grace), `grace on gateway ${i} after expiry`);
      assertRevoked(await call(gw, tokens.alice), 'subject revoked', `alice on gateway ${i} (24h)`);
    }
  });
});

describe('portcullis revoke: usage and configuration errors', { timeout: 30_000 }, () => {
  const cleanup = cleanupList();
  let dir;
  let withRedis;
  let withoutRedis;

  before(() => {
    dir = tempDir('portcullis-revoke-cli-');
    cleanup.add(() => rmTemp(dir));
    const base = {
      listeners: [{ name: 'plain', address: '127.0.0.1:1' }],
      upstreams: [{ name: 'echo', endpoints: ['127.0.0.1:2'] }],
      routes: [{ name: 'all', match: { path_prefix: '/' }, upstream: 'echo', auth: 'public' }],
    };
    // Port 9 (discard) on loopback: nothing listens there, but these cases never connect.
    withRedis = writeConfig({ ...base, cache: { redis: { address: '127.0.0.1:9' } } }, { dir, name: 'with-redis.yaml' });
    withoutRedis = writeConfig(base, { dir, name: 'without-redis.yaml' });
  });

  after(async () => { await cleanup.run(); });

  test('usage errors exit 2: no kind, two kinds, bad or too short ttl, missing value, unknown flag', async () => {
    const cases = [
      { args: ['revoke', '--config', withRedis], why: 'no kind' },
      { args: ['revoke', '--subject', 'alice'], why: 'no --config' },
      { args: ['revoke', '--config', withRedis, '--subject', 'alice', '--token-id', 'j1'], why: 'two kinds', re: /give one of --subject, --token-id, --session/ },
      { args: ['revoke', '--config', withRedis, '--subject', 'alice', '--session', 's1'], why: 'two kinds (session)', re: /give one of/ },
      { args: ['revoke', '--config', withRedis, '--subject', 'alice', '--ttl', 'soon'], why: 'bad ttl', re: /--ttl needs a duration/ },
      { args: ['revoke', '--config', withRedis, '--subject', 'alice', '--ttl', '500ms'], why: 'ttl below 1s', re: /--ttl needs a duration of at least 1s/ },
      { args: ['revoke', '--config', withRedis, '--subject'], why: 'missing value', re: /--subject needs a value/ },
      { args: ['revoke', '--config', withRedis, '--subject', 'alice', '--frobnicate', 'x'], why: 'unknown flag', re: /unknown argument '--frobnicate'/ },
    ];
    for (const c of cases) {
      const r = await runGateway(c.args, { timeoutMs: 10_000 });
      assert.equal(r.code, 2, `${c.why}: exit 2 (got ${r.code}; stderr ${r.stderr})`);
      assert.equal(r.stdout, '', `${c.why}: nothing on stdout`);
      assert.match(r.stderr, c.re ?? /usage: portcullis revoke --config FILE/, `${c.why}: stderr ${r.stderr}`);
    }
  });

  test('a config without cache.redis exits 1 with a clear message', async () => {
    const r = await runGateway(['revoke', '--config', withoutRedis, '--subject', 'alice'], { timeoutMs: 10_000 });
    assert.equal(r.code, 1, `exit 1 (got ${r.code}; stderr ${r.stderr})`);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /portcullis revoke: .*without-redis\.yaml has no cache\.redis/, r.stderr);
  });

  test('--help prints the usage and exits 0', async () => {
    const r = await runGateway(['revoke', '--help'], { timeoutMs: 10_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /usage: portcullis revoke --config FILE \(--subject S \| --token-id JTI \| --session ID\)/);
  });
});
