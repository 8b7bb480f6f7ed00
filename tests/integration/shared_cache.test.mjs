// Introspection results shared by gateway replicas through Redis (config
// `cache: {redis: {address, timeout}}`; src/authn/introspection.cpp, src/cache/
// redis_shared_cache.cpp), end to end through the real binary, several gateway processes, a
// real redis-server started here on a free port (tests/support/redis.mjs) and the real OpenID
// provider fixture (tests/support/oidc/, opaque tokens of `opaque-client`, introspected as
// `introspector`; the IdP's introspection requests are counted by its /state counters):
//
//  - gateway A introspects an opaque token (IdP +1, A's store +1, one key pc:i:v1:<64 hex>
//    holding "v1|<the IdP's JSON>" with a PX TTL <= cache_ttl, never the raw token); gateway
//    B then accepts it from Redis without asking the IdP (B's hit +1); negative results are
//    not shared;
//  - a value in Redis that fails validation (active false or "true", another iss, a past exp,
//    another aud, a refresh_token, garbage, no "v1|" prefix) is never trusted: a third gateway
//    asks the IdP and answers as it says (200 for a live token, 401 for a revoked one), and
//    the key is rewritten with the IdP's answer; an untouched value is taken from Redis;
//  - Redis SIGKILLed under a mixed load on both gateways: every answer is right (200 valid,
//    401 revoked/garbage), no 5xx, the error counter grows, portcullis_redis_connected 0; a
//    new redis-server on the same port: connected 1 again and hits again;
//  - a Redis blocked by `DEBUG SLEEP 0.5`: a fresh gateway still serves a new token (via the
//    IdP; the lookup counts as an error), and the connection is in step afterwards.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import {
  startGateway, startUpstream, tempDir, rmTemp, eventually, sleep, fetchMetrics, metricSum, cleanupList
} from '../support/harness.mjs';
import { startProvider, revoke } from '../support/oidc/client.mjs';
import { providerEntry, bearerConfig, defaultRoutes, writeSecret, call } from '../support/bearer.mjs';
import { startRedis } from '../support/redis.mjs';

// ---------------------------------------------------------------------------------------
// Shared helpers

const CACHE_TTL_S = 60;
const KEY_RE = /^pc:i:v1:[0-9a-f]{64}$/;
const REDIS_ARGS = ['--enable-debug-command', 'yes'];
const RESULTS = ['hit', 'miss', 'error', 'store', 'store_error'];

/** portcullis_shared_cache_total{kind="introspection"} by result, plus the connected gauge. */
async function sharedMetrics(gw) {
  const text = await fetchMetrics(gw);
  const out = {};
  for (const r of RESULTS) out[r] = metricSum(text, 'portcullis_shared_cache_total', { kind: 'introspection', result: r });
  out.connected = metricSum(text, 'portcullis_redis_connected');
  out.present = /^portcullis_shared_cache_total\{kind="introspection",result="hit"\} /m.test(text)
    && /^portcullis_redis_connected /m.test(text);
  return out;
}

function delta(before, after) {
  const out = {};
  for (const r of RESULTS) out[r] = after[r] - before[r];
  return out;
}

const show = (r) => `${r.status} ${String(r.body).slice(0, 300)} www-authenticate=${r.headers['www-authenticate']}`;

describe('introspection results shared by the replicas through Redis', { timeout: 150_000 }, () => {
  const cleanup = cleanupList();
  let idp;
  let upstream;
  let redis; // replaced when Redis is restarted
  let dir;
  let secretFile;
  let gwA;
  let gwB;

  const introspections = async () => (await idp.state()).counters.introspection;
  const newOpaque = async () => {
    const t = await idp.getToken({ clientId: 'opaque-client', scope: 'orders:read' });
    assert.equal(t.split('.').length, 1, 'test bug: not an opaque token');
    return t;
  };
  const keys = async () => (await redis.command('KEYS', 'pc:i:v1:*')).map((b) => b.toString('latin1'));
  const getValue = async (key) => {
    const v = await redis.command('GET', key);
    return v === null ? null : v.toString('latin1');
  };

  async function startReplica({ ordersPolicy } = {}) {
    const routes = defaultRoutes();
    if (ordersPolicy) routes[0].policy = ordersPolicy;
    const { config } = await bearerConfig({
      upstream,
      routes,
      providers: [providerEntry(idp, {
        introspection: {
          endpoint: idp.introspectionEndpoint,
          client_id: 'introspector',
          client_secret_file: secretFile,
          cache_ttl: `${CACHE_TTL_S}s`,
        },
      })],
    });
    config.cache = { redis: { address: redis.address, timeout: '25ms' } };
    const gw = await startGateway({ config });
    cleanup.add(() => gw.stop());
    gw.port = Number(config.listeners[0].address.split(':')[1]);
    await eventually(async () => (await sharedMetrics(gw)).connected === 1,
      { timeoutMs: 5000, message: 'portcullis_redis_connected 1 on a new gateway' });
    return gw;
  }

  /**
   * Has gateway A introspect a new opaque token (200) and waits for its Redis key.
   * Returns {token, key, value (the stored string)}.
   */
  async function storedByA() {
    const token = await newOpaque();
    const before = new Set(await keys());
    const mA0 = await sharedMetrics(gwA);
    const r = await call(gwA.port, '/orders/seed', token);
    assert.equal(r.status, 200, `gateway A, a new opaque token: ${show(r)}`);
    await eventually(async () => (await sharedMetrics(gwA)).store === mA0.store + 1,
      { timeoutMs: 3000, message: "A's store counter +1" });
    const fresh = (await keys()).filter((k) => !before.has(k));
    assert.equal(fresh.length, 1, `new keys after A's introspection: ${JSON.stringify(fresh)}`);
    const value = await getValue(fresh[0]);
    assert.ok(value && value.startsWith('v1|'), `stored value: ${value}`);
    return { token, key: fresh[0], value };
  }

  before(async () => {
    dir = tempDir('portcullis-shared-cache-');
    cleanup.add(() => rmTemp(dir));
    secretFile = writeSecret(dir, 'introspector.secret', 'introspector-secret');
    idp = await startProvider({ algs: ['RS256'] });
    cleanup.add(() => idp.stop());
    upstream = await startUpstream({ name: 'echo' });
    cleanup.add(() => upstream.close());
    redis = await startRedis({ args: REDIS_ARGS });
    cleanup.add(() => redis.stop()); // whichever redis-server is current then
    gwA = await startReplica();
    gwB = await startReplica();
  });

  after(() => cleanup.run());

  test('A introspects an opaque token and stores it; B accepts it from Redis without asking the IdP', async (t) => {
    const token = await newOpaque();
    const keysBefore = new Set(await keys());
    const c0 = await introspections();
    const mA0 = await sharedMetrics(gwA);
    const mB0 = await sharedMetrics(gwB);
    assert.ok(mA0.present && mB0.present, 'portcullis_shared_cache_total / portcullis_redis_connected missing from /metrics');

    const rA = await call(gwA.port, '/orders/a', token);
    assert.equal(rA.status, 200, `gateway A: ${show(rA)}`);
    assert.equal(rA.json().headers.authorization, `Bearer ${token}`);
    assert.equal(await introspections(), c0 + 1, 'gateway A: IdP introspection requests');
    await eventually(async () => (await sharedMetrics(gwA)).store === mA0.store + 1,
      { timeoutMs: 3000, message: "A's portcullis_shared_cache_total{result=store} +1" });
    const dA = delta(mA0, await sharedMetrics(gwA));
    assert.deepEqual(dA, { hit: 0, miss: 1, error: 0, store: 1, store_error: 0 }, "A's shared-cache counters");

    // The key: one new pc:i:v1:<64 hex>, a PX TTL within cache_ttl, the IdP's answer inside.
    const fresh = (await keys()).filter((k) => !keysBefore.has(k));
    assert.equal(fresh.length, 1, `new keys: ${JSON.stringify(fresh)}`);
    const [key] = fresh;
    assert.match(key, KEY_RE);
    const pttl = await redis.command('PTTL', key);
    t.diagnostic(`PTTL ${key} = ${pttl} ms (cache_ttl ${CACHE_TTL_S}s)`);
    assert.ok(pttl > 0 && pttl <= CACHE_TTL_S * 1000, `PTTL ${pttl} not in (0, ${CACHE_TTL_S * 1000}]`);
    const value = await getValue(key);
    assert.ok(value.startsWith('v1|'), `value: ${value}`);
    const claims = JSON.parse(value.slice(3));
    assert.equal(claims.active, true);
    assert.equal(claims.iss, idp.issuer);
    assert.equal(claims.client_id, 'opaque-client');
    assert.equal(claims.aud, 'api://mesh');
    assert.ok(String(claims.scope).split(' ').includes('orders:read'), `scope: ${claims.scope}`);
    assert.ok(claims.exp * 1000 > Date.now(), `exp ${claims.exp} in the past`);
    assert.ok(pttl <= claims.exp * 1000 - Date.now() + 1000, `PTTL ${pttl} beyond exp ${claims.exp}`);
    assert.ok(!key.includes(token) && !value.includes(token), 'the raw token is in Redis');

    // B: from Redis, no IdP request.
    const rB = await call(gwB.port, '/orders/b', token);
    assert.equal(rB.status, 200, `gateway B: ${show(rB)}`);
    assert.equal(rB.json().headers.authorization, `Bearer ${token}`);
    assert.equal(await introspections(), c0 + 1, 'gateway B asked the IdP for a token in the shared cache');
    assert.deepEqual(delta(mB0, await sharedMetrics(gwB)), { hit: 1, miss: 0, error: 0, store: 0, store_error: 0 }, "B's shared-cache counters");
    // Then from B's own cache: neither Redis nor the IdP.
    for (let i = 0; i < 3; i++) assert.equal((await call(gwB.port, `/orders/b${i}`, token)).status, 200);
    assert.equal(await introspections(), c0 + 1, 'repeated uses on B asked the IdP');
    assert.equal((await sharedMetrics(gwB)).hit, mB0.hit + 1, 'repeated uses on B went to Redis again');
  });

  test('negative results are not shared: a garbage token is asked of the IdP by each gateway', async () => {
    const garbage = `not-a-token-${crypto.randomBytes(12).toString('hex')}`;
    const keysBefore = (await keys()).length;
    const c0 = await introspections();
    const mB0 = await sharedMetrics(gwB);
    const rA = await call(gwA.port, '/orders/g', garbage);
    assert.equal(rA.status, 401, `gateway A: ${show(rA)}`);
    assert.equal(await introspections(), c0 + 1);
    const rB = await call(gwB.port, '/orders/g', garbage);
    assert.equal(rB.status, 401, `gateway B: ${show(rB)}`);
    assert.equal(await introspections(), c0 + 2, 'gateway B did not ask the IdP about a token A found inactive');
    const dB = delta(mB0, await sharedMetrics(gwB));
    assert.equal(dB.miss, 1, `B's counters: ${JSON.stringify(dB)}`);
    assert.equal(dB.hit, 0, `B's counters: ${JSON.stringify(dB)}`);
    await sleep(200); // a (wrong) SET would be asynchronous
    assert.equal((await keys()).length, keysBefore, 'a negative result was written to Redis');
  });

  test('a value in Redis that fails validation is never trusted: a third gateway asks the IdP', async (t) => {
    const gwC = await startReplica();

    // Control: an untouched value is taken from Redis (so the refusals below are validation).
    {
      const { token } = await storedByA();
      const c0 = await introspections();
      const m0 = await sharedMetrics(gwC);
      const r = await call(gwC.port, '/orders/c', token);
      assert.equal(r.status, 200, `control: ${show(r)}`);
      assert.equal(await introspections(), c0, 'control: C asked the IdP despite a valid shared value');
      assert.equal((await sharedMetrics(gwC)).hit, m0.hit + 1, 'control: C hit');
    }

    const nowS = () => Math.floor(Date.now() / 1000);
    const json = (mutate) => (value) => {
      const o = JSON.parse(value.slice(3));
      mutate(o);
      return `v1|${JSON.stringify(o)}`;
    };
    const variants = [
      ['"active": false', json((o) => { o.active = false; })],
      ['"active": "true" (a string)', json((o) => { o.active = 'true'; })],
      ['no "active"', json((o) => { delete o.active; })],
      ['another "iss"', json((o) => { o.iss = 'http://127.0.0.1:1/evil-issuer'; })],
      ['a past "exp"', json((o) => { o.exp = nowS() - 120; })],
      ['another "aud"', json((o) => { o.aud = 'api://other'; })],
      ['"token_type": "refresh_token"', json((o) => { o.token_type = 'refresh_token'; })],
      ['garbage after v1|', () => 'v1|{"active":true,"iss":'],
      ['binary garbage', () => crypto.randomBytes(40).toString('latin1')],
      ['no "v1|" prefix', (v) => v.slice(3)],
      ['another version prefix', (v) => `v2|${v.slice(3)}`],
    ];
    for (const [what, corrupt] of variants) {
      const { token, key, value } = await storedByA();
      const bad = corrupt(value);
      // Keep the key's TTL; the value is now the corrupted one.
      assert.equal(await redis.command('SET', key, Buffer.from(bad, 'latin1'), 'KEEPTTL'), 'OK');
      assert.equal(await getValue(key), bad, `${what}: test bug: the value was not replaced`);
      const c0 = await introspections();
      const m0 = await sharedMetrics(gwC);
      const r = await call(gwC.port, '/orders/c', token);
      assert.equal(r.status, 200, `${what}: the IdP says active: ${show(r)}`);
      assert.equal(await introspections(), c0 + 1, `${what}: C did not ask the IdP (trusted the Redis value)`);
      await eventually(async () => (await sharedMetrics(gwC)).store === m0.store + 1,
        { timeoutMs: 3000, message: `${what}: C stores the IdP's answer` });
      const d = delta(m0, await sharedMetrics(gwC));
      t.diagnostic(`${what}: C's counters ${JSON.stringify(d)}`);
      assert.equal(d.hit + d.miss, 1, `${what}: C looked into Redis once: ${JSON.stringify(d)}`);
      assert.equal(d.error, 0, `${what}: ${JSON.stringify(d)}`);
      // The key now holds the IdP's answer again.
      const healed = await getValue(key);
      assert.ok(healed?.startsWith('v1|'), `${what}: value after C: ${healed}`);
      const claims = JSON.parse(healed.slice(3));
      assert.equal(claims.active, true, `${what}: healed value ${healed}`);
      assert.equal(claims.iss, idp.issuer, `${what}: healed value ${healed}`);
    }

    // A revoked token whose shared entry was corrupted: C asks the IdP, which says inactive.
    {
      const { token, key, value } = await storedByA();
      assert.equal(await revoke(token, { provider: idp }), 200);
      const bad = json((o) => { o.iss = 'http://127.0.0.1:1/evil-issuer'; })(value);
      assert.equal(await redis.command('SET', key, bad, 'KEEPTTL'), 'OK');
      const c0 = await introspections();
      const r = await call(gwC.port, '/orders/c', token);
      assert.equal(r.status, 401, `revoked token, corrupted entry: ${show(r)}`);
      assert.match(String(r.headers['www-authenticate']), /invalid_token/);
      assert.equal(await introspections(), c0 + 1, 'revoked token: C did not ask the IdP');
      await sleep(200);
      assert.equal(await getValue(key), bad, 'a negative answer overwrote the shared entry');
    }
  });

  test('Redis SIGKILLed under mixed load on both gateways: right answers, no 5xx; restarted: hits again', async (t) => {
    // Tokens: some already shared (A used them), some never used (first use during the outage),
    // some revoked at the IdP, plus a fresh garbage string per request.
    const shared = [];
    for (let i = 0; i < 4; i++) shared.push((await storedByA()).token);
    const unused = [];
    for (let i = 0; i < 16; i++) unused.push(await newOpaque());
    const revoked = [];
    for (let i = 0; i < 4; i++) {
      const tok = await newOpaque();
      assert.equal(await revoke(tok, { provider: idp }), 200);
      revoked.push(tok);
    }
    const m0 = [await sharedMetrics(gwA), await sharedMetrics(gwB)];
    const gws = [gwA, gwB];
    const results = [];
    let phase = 'before';
    let stop = false;
    let n = 0;
    const pick = (a) => a[Math.floor(Math.random() * a.length)];
    const worker = async (w) => {
      while (!stop) {
        const i = n++;
        const gw = gws[i % 2];
        const roll = i % 4;
        let kind;
        let token;
        if (roll === 0) { kind = 'valid'; token = pick(shared); }
        else if (roll === 1) { kind = 'revoked'; token = pick(revoked); }
        else if (roll === 2) { kind = 'garbage'; token = `garbage-${w}-${i}-${crypto.randomBytes(6).toString('hex')}`; }
        else { kind = 'valid'; token = unused.length && phase === 'down' ? unused.pop() : pick(shared); }
        const at = phase;
        try {
          const r = await call(gw.port, `/orders/load${i}`, token, { timeoutMs: 10_000 });
          results.push({ gw: gw === gwA ? 'A' : 'B', kind, phase: at, status: r.status, body: String(r.body).slice(0, 200) });
        } catch (e) {
          results.push({ gw: gw === gwA ? 'A' : 'B', kind, phase: at, status: 0, body: String(e) });
        }
      }
    };
    const load = Promise.all([0, 1, 2, 3, 4, 5].map(worker));
    await sleep(300);
    const killedPort = redis.port;
    await redis.kill9();
    phase = 'down';
    await sleep(1500);
    stop = true;
    await load;

    const bad = results.filter((r) => r.status !== (r.kind === 'valid' ? 200 : 401));
    const down = results.filter((r) => r.phase === 'down');
    const counts = {};
    for (const r of results) counts[`${r.phase}/${r.kind}/${r.status}`] = (counts[`${r.phase}/${r.kind}/${r.status}`] ?? 0) + 1;
    t.diagnostic(`load: ${results.length} requests ${JSON.stringify(counts)}; tokens never used before the outage left: ${unused.length}`);
    assert.deepEqual(bad, [], 'wrong answers during the Redis crash');
    assert.ok(results.every((r) => r.status < 500), 'a 5xx');
    assert.ok(down.length >= 20, `only ${down.length} requests while Redis was down`);
    assert.ok(down.some((r) => r.kind === 'garbage') && down.some((r) => r.kind === 'revoked'), 'no invalid tokens while down');
    assert.ok(unused.length < 16, 'no never-used valid token was tried while Redis was down');

    for (const [i, gw] of gws.entries()) {
      const m = await eventually(async () => { const x = await sharedMetrics(gw); return x.connected === 0 && x; },
        { timeoutMs: 5000, message: `portcullis_redis_connected 0 on gateway ${'AB'[i]}` });
      const d = delta(m0[i], m);
      t.diagnostic(`gateway ${'AB'[i]} while down: ${JSON.stringify(d)}`);
      assert.ok(d.error > 0, `gateway ${'AB'[i]}: error counter did not grow: ${JSON.stringify(d)}`);
    }

    // A new (empty) redis-server on the same port: both reconnect, sharing works again.
    redis = await startRedis({ port: killedPort, args: REDIS_ARGS });
    const t0 = Date.now();
    for (const [i, gw] of gws.entries()) {
      await eventually(async () => (await sharedMetrics(gw)).connected === 1,
        { timeoutMs: 8000, intervalMs: 100, message: `gateway ${'AB'[i]} reconnected to the restarted Redis` });
    }
    t.diagnostic(`both reconnected ${Date.now() - t0} ms after the restart`);
    const { token } = await storedByA();
    const c0 = await introspections();
    const mB = await sharedMetrics(gwB);
    const r = await call(gwB.port, '/orders/after', token);
    assert.equal(r.status, 200, `B after the restart: ${show(r)}`);
    assert.equal(await introspections(), c0, 'B asked the IdP after the restart');
    assert.equal((await sharedMetrics(gwB)).hit, mB.hit + 1, 'B: no hit after the restart');
  });

  test('a Redis blocked by DEBUG SLEEP 0.5: a fresh gateway serves a new token via the IdP; in step afterwards', async (t) => {
    const gwD = await startReplica();
    const token = await newOpaque();
    const c0 = await introspections();
    const m0 = await sharedMetrics(gwD);

    const t0 = Date.now();
    let sleptAt = null;
    const sleeping = redis.command('DEBUG', 'SLEEP', '0.5').then((v) => { sleptAt = Date.now() - t0; return v; });
    await sleep(30); // the DEBUG SLEEP is being served (Redis is single-threaded)
    const r = await call(gwD.port, '/orders/slow', token);
    const answeredAt = Date.now() - t0;
    assert.equal(r.status, 200, `during DEBUG SLEEP: ${show(r)}`);
    assert.equal(r.json().headers.authorization, `Bearer ${token}`);
    assert.equal(await introspections(), c0 + 1, 'the IdP was not asked while Redis was blocked');
    const m1 = await sharedMetrics(gwD);
    const d = delta(m0, m1);
    assert.equal(d.error, 1, `the blocked lookup was not an error (timeout): ${JSON.stringify(d)}`);
    assert.equal(d.hit + d.miss, 0, `the lookup got an answer from a blocked Redis?: ${JSON.stringify(d)}`);
    assert.equal(await sleeping, 'OK');
    t.diagnostic(`gateway answered ${answeredAt} ms after DEBUG SLEEP was sent; Redis replied to it after ${sleptAt} ms; counters ${JSON.stringify(d)}`);

    // The late replies (to the timed-out GET, and to the SET of the IdP's answer) arrive now:
    // they must be dropped, not crash the gateway.
    await sleep(300);
    const died = gwD.exitInfo();
    assert.equal(died, null, `gateway D exited after Redis woke up and sent the late replies: ${JSON.stringify(died)}\n${gwD.logText().slice(-1500)}`);

    // Afterwards the connection is in step: a new shared token is a hit with no IdP request,
    // a garbage token is refused.
    await eventually(async () => (await sharedMetrics(gwD)).connected === 1, { timeoutMs: 5000, message: 'D connected after the sleep' });
    for (let i = 0; i < 3; i++) {
      const { token: shared } = await storedByA();
      const c1 = await introspections();
      const mD = await sharedMetrics(gwD);
      const ok = await call(gwD.port, `/orders/after${i}`, shared);
      assert.equal(ok.status, 200, `after the sleep: ${show(ok)}`);
      assert.equal(await introspections(), c1, `after the sleep (${i}): D asked the IdP for a shared token`);
      assert.equal((await sharedMetrics(gwD)).hit, mD.hit + 1, `after the sleep (${i}): no hit`);
      const no = await call(gwD.port, `/orders/after-garbage${i}`, `garbage-after-sleep-${i}-${crypto.randomBytes(6).toString('hex')}`);
      assert.equal(no.status, 401, `garbage after the sleep: ${show(no)}`);
    }
  });
  test('a policy reload applies at once to tokens whose introspection is cached (L1 and Redis): no stale allow', async () => {
    const policyFile = `${dir}/orders-reload.yaml`;
    const allowText = 'allow:\n  scope: {has: orders:read}\n';
    const denyText = 'allow:\n  scope: {has: orders:read}\ndeny:\n  client_id: {is: opaque-client}\n';
    fs.writeFileSync(policyFile, allowText);
    const gwC = await startReplica({ ordersPolicy: policyFile });
    const { token } = await storedByA();
    const c0 = await introspections();
    const m0 = await sharedMetrics(gwC);
    const r1 = await call(gwC.port, '/orders/before', token);
    assert.equal(r1.status, 200, `C before the reload: ${show(r1)}`);
    assert.equal((await sharedMetrics(gwC)).hit, m0.hit + 1, "C's first use came from Redis");
    assert.equal((await call(gwC.port, '/orders/again', token)).status, 200);

    // Same token, same caches; the policy now denies it: every answer after the reload is 403.
    const cacheHits = async () => {
      const text = await fetchMetrics(gwC);
      return metricSum(text, 'portcullis_local_cache_total', { result: 'hit' })
        + metricSum(text, 'portcullis_shared_cache_total', { result: 'hit' });
    };
    const hitsBefore = await cacheHits();
    const reloadsBefore = metricSum(await fetchMetrics(gwC), 'portcullis_config_reloads_total', { result: 'success' });
    fs.writeFileSync(`${policyFile}.tmp`, denyText);
    fs.renameSync(`${policyFile}.tmp`, policyFile);
    gwC.reload();
    await eventually(async () => metricSum(await fetchMetrics(gwC), 'portcullis_config_reloads_total', { result: 'success' }) > reloadsBefore,
      { timeoutMs: 5000, message: 'C reloaded' });
    for (let i = 0; i < 5; i++) {
      const r = await call(gwC.port, `/orders/after${i}`, token);
      assert.equal(r.status, 403, `C after the reload (${i}): ${show(r)}`);
    }
    // The identity came from the caches (L1 token/introspection or Redis), never the IdP: the
    // identity is cached, the decision is not.
    assert.equal(await introspections(), c0, 'C asked the IdP again');
    const hits = (await cacheHits()) - hitsBefore;
    assert.ok(hits >= 5, `cache hits on C for the 5 denied requests: ${hits}`);

    // And back: allowed again, still without the IdP.
    fs.writeFileSync(`${policyFile}.tmp`, allowText);
    fs.renameSync(`${policyFile}.tmp`, policyFile);
    gwC.reload();
    await eventually(async () => (await call(gwC.port, '/orders/restored', token)).status === 200,
      { timeoutMs: 5000, message: 'allowed again after the second reload' });
    assert.equal(await introspections(), c0);
    await gwC.stop();
  });

  test('/metrics: L1 counters and the Redis round-trip histogram', async () => {
    const text = await fetchMetrics(gwA);
    for (const [cache, result] of [['token', 'hit'], ['token', 'miss'], ['introspection', 'hit'], ['introspection', 'miss']]) {
      assert.match(text, new RegExp(`^portcullis_local_cache_total\\{cache="${cache}",result="${result}"\\} \\d+$`, 'm'));
    }
    assert.ok(metricSum(text, 'portcullis_local_cache_total', { cache: 'introspection', result: 'miss' }) >= 1);
    const count = metricSum(text, 'portcullis_redis_round_trip_seconds_count', { client: 'shared_cache' });
    assert.ok(count >= 1, `portcullis_redis_round_trip_seconds_count ${count}`);
    const inf = metricSum(text, 'portcullis_redis_round_trip_seconds_bucket', { client: 'shared_cache', le: '+Inf' });
    assert.equal(inf, count, 'the +Inf bucket equals the count');
    assert.match(text, /^portcullis_redis_round_trip_seconds_bucket\{client="shared_cache",le="5e-05"\} \d+$/m);
  });
});
