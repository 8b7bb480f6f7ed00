// The audit log's Redis stream sink (docs/audit-format.md, "Writer behaviour"; config
// `audit: {redis: {address, stream, maxlen}}`) through the real gateway and a real
// redis-server started here on a free port (tests/support/redis.mjs; installed by
// `scripts/setup.sh --test`):
//
//  - every line the gateway writes to the audit file (genesis, request, checkpoint) arrives
//    as one `XADD <stream> MAXLEN ~ <maxlen> * line <line>` entry, byte for byte and in
//    order; the stream alone is a valid chain; portcullis_audit_redis_connected and
//    portcullis_audit_shipped_total{sink="redis"} agree with the stream;
//  - Redis SIGKILLed under traffic: requests keep being served and recorded in the file (the
//    file is the primary sink), the gauge drops to 0, lines wait in the queue (nothing is
//    dropped below `queue`); a new redis-server on the same port gets every line written
//    since the crash, once reconnected (a line may arrive twice: `seq` identifies it);
//  - Redis down from the start with a small `queue`: lines beyond it are dropped and counted
//    (shipped{result="dropped"}), never touching the file; every file line is either in the
//    stream or counted as dropped;
//  - `maxlen`: the stream is trimmed (approximately) to the cap and holds the newest lines.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  startGateway, startUpstream, writeConfig, tempDir, rmTemp, freePorts, eventually, sleep,
  fetchMetrics, httpRequest, parseMetrics, metricSum, cleanupList
} from '../support/harness.mjs';
import { createTokenIssuer } from '../support/policy.mjs';
import { makeAuditKey, readAuditFile, checkChain } from '../support/audit.mjs';
import { startRedis, xrange } from '../support/redis.mjs';

// ---------------------------------------------------------------------------------------
// Shared helpers

const issuer = createTokenIssuer({ alg: 'ES256', issuer: 'http://127.0.0.1:9/audit-redis-tests', audience: 'api://audit-redis-tests' });
const tokens = {
  alice: issuer.mint({ sub: 'alice', email: 'alice@example.com', groups: ['eng'] }, { ttl: 600 }),
  bob: issuer.mint({ sub: 'bob', email: 'bob@example.org', groups: ['sales'] }, { ttl: 600 }),
};

/**
 * Starts an echo upstream and the gateway with an audit file in DIR/audit and the given
 * redis section; /api needs a bearer token of group eng (alice 200, bob 403), anything else
 * is 404. Returns {gw, port, auditPath, key}.
 */
async function startAuditGateway(cleanup, { redis, queue, checkpointEvery = 5 }) {
  const dir = tempDir('portcullis-audit-redis-');
  cleanup.add(() => rmTemp(dir));
  const auditDir = path.join(dir, 'audit');
  fs.mkdirSync(auditDir);
  const key = makeAuditKey(dir);
  const upstream = await startUpstream({ name: 'echo' });
  cleanup.add(() => upstream.close());
  const jwks = issuer.writeJwks(dir);
  const [port, admin] = await freePorts(2);
  const auditPath = path.join(auditDir, 'audit.jsonl');
  const config = {
    server: { workers: 2, drain_timeout: '3s', instance_name: 'audit-redis-it' },
    access_log: { path: 'stdout' },
    listeners: [{ name: 'plain', address: `127.0.0.1:${port}` }],
    admin: { address: `127.0.0.1:${admin}` },
    identity_providers: [issuer.provider(jwks)],
    upstreams: [{ name: 'echo', endpoints: [upstream.address] }],
    routes: [
      { name: 'api', match: { path_prefix: '/api' }, upstream: 'echo', auth: 'bearer', policy: { allow: { group: { has: 'eng' } } } },
    ],
    audit: {
      file: { path: auditPath },
      redis,
      on_failure: 'deny',
      queue,
      // A checkpoint every N request records; no time-based lines, so the file only changes
      // when requests come in.
      checkpoint: { every: checkpointEvery, interval: '0s' },
      key_file: key.keyPath,
    },
  };
  const gw = await startGateway({ configPath: writeConfig(config, { dir }) });
  cleanup.add(() => gw.stop());
  return { gw, port, auditPath, key };
}

/**
 * One request: kind 'allow' (alice, 200), 'deny' (bob, 403) or 'none' (no route, 404).
 * Resolves {id (the x-request-id the gateway answered with: the audit record's request_id),
 * kind, status}.
 */
async function send(port, kind, tag) {
  const headers = {};
  if (kind === 'allow') headers.authorization = `Bearer ${tokens.alice}`;
  if (kind === 'deny') headers.authorization = `Bearer ${tokens.bob}`;
  const res = await httpRequest({ port, path: kind === 'none' ? `/nothing/${tag}` : `/api/${tag}`, headers, timeoutMs: 10_000 });
  assert.match(res.headers['x-request-id'] ?? '', /^[0-9a-f]{32}$/, `${kind} ${tag}: x-request-id`);
  return { id: res.headers['x-request-id'], kind, status: res.status };
}

const EXPECTED_STATUS = { allow: 200, deny: 403, none: 404 };

/** The complete lines of the audit file: [{text (latin1, without LF), rec, ...}]. */
const fileLines = (auditPath) => (fs.existsSync(auditPath) ? readAuditFile(auditPath).lines : []);

/** The redis-related (and primary-sink) audit metrics. */
async function redisMetrics(gw) {
  const s = parseMetrics(await fetchMetrics(gw));
  return {
    connected: metricSum(s, 'portcullis_audit_redis_connected'),
    ok: metricSum(s, 'portcullis_audit_shipped_total', { sink: 'redis', result: 'ok' }),
    dropped: metricSum(s, 'portcullis_audit_shipped_total', { sink: 'redis', result: 'dropped' }),
    recordsDropped: metricSum(s, 'portcullis_audit_records_dropped_total'),
    sinkOk: metricSum(s, 'portcullis_audit_sink_ok'),
  };
}

/** The stream's entries as [{id, names, bytes (Buffer of the `line` field), rec}]. */
async function streamEntries(redis, stream) {
  return (await xrange(redis, stream)).map((e) => {
    let rec = null;
    try { rec = JSON.parse(e.fields.line?.toString('latin1')); } catch { /* left null */ }
    return { id: e.id, names: e.names, bytes: e.fields.line, rec };
  });
}

/** XLEN as printed by redis-cli (the tool an operator would use). */
async function xlen(redis, stream) {
  return Number((await redis.cli(['XLEN', stream])).trim());
}

const requestIds = (lines) => lines.filter((l) => l.rec?.type === 'request').map((l) => l.rec.request_id);

// ---------------------------------------------------------------------------------------

describe('every audit line is shipped to the Redis stream, byte for byte and in order', { timeout: 30_000 }, () => {
  const cleanup = cleanupList();
  const stream = `it:audit:${process.pid}:all`;
  let redis, gw, port, auditPath, key;
  const sent = [];
  let lines, entries, metrics;

  before(async () => {
    redis = await startRedis();
    cleanup.add(() => redis.stop());
    ({ gw, port, auditPath, key } = await startAuditGateway(cleanup, { redis: { address: redis.address, stream } }));
    const kinds = ['allow', 'deny', 'none'];
    for (let i = 0; i < 24; i++) sent.push(await send(port, kinds[i % 3], `all${i}`));
    // Wait until the writer has written all 24 request records and the stream caught up.
    await eventually(async () => {
      lines = fileLines(auditPath);
      return requestIds(lines).length === sent.length && (await xlen(redis, stream)) === lines.length;
    }, { timeoutMs: 8000, message: 'all 24 request records in the file and as many stream entries as file lines' });
    entries = await streamEntries(redis, stream);
    metrics = await redisMetrics(gw);
  });
  after(() => cleanup.run());

  test('the requests got their statuses (mixed 200/403/404)', () => {
    for (const s of sent) assert.equal(s.status, EXPECTED_STATUS[s.kind], `${s.kind} ${s.id}`);
  });

  test('XLEN equals the number of lines in the audit file: every record type is shipped', async () => {
    assert.equal(await xlen(redis, stream), lines.length);
    assert.equal(entries.length, lines.length);
    const types = new Set(lines.map((l) => l.rec.type));
    for (const t of ['genesis', 'request', 'checkpoint']) assert.ok(types.has(t), `the file has a ${t} record`);
    assert.deepEqual(entries.map((e) => e.rec?.type), lines.map((l) => l.rec.type));
    assert.equal(lines.filter((l) => l.rec.type === 'checkpoint').length, 4, '24 requests, checkpoint every 5');
  });

  test('each entry is one field named `line` holding the exact bytes of the file line (without its LF), in file order', () => {
    for (let i = 0; i < lines.length; i++) {
      assert.deepEqual(entries[i].names, ['line'], `entry ${i} fields`);
      const want = Buffer.from(lines[i].text, 'latin1');
      assert.ok(entries[i].bytes.equals(want),
        `entry ${i} (${entries[i].id}) differs from file line ${i + 1}:\n  stream: ${entries[i].bytes.toString('latin1').slice(0, 200)}\n  file:   ${lines[i].text.slice(0, 200)}`);
    }
    // XADD * ids: strictly increasing.
    const ids = entries.map((e) => e.id.split('-').map(BigInt));
    for (let i = 1; i < ids.length; i++) {
      assert.ok(ids[i][0] > ids[i - 1][0] || (ids[i][0] === ids[i - 1][0] && ids[i][1] > ids[i - 1][1]), `id ${entries[i].id} after ${entries[i - 1].id}`);
    }
  });

  test('the request records in the stream are the requests sent (ids, statuses, decisions)', () => {
    const recs = entries.filter((e) => e.rec.type === 'request').map((e) => e.rec);
    assert.deepEqual(recs.map((r) => r.request_id), sent.map((s) => s.id));
    const decision = { allow: 'allow', deny: 'deny', none: 'none' };
    recs.forEach((r, i) => {
      assert.equal(r.status, EXPECTED_STATUS[sent[i].kind], `status of ${r.request_id}`);
      assert.equal(r.decision, decision[sent[i].kind], `decision of ${r.request_id}`);
    });
  });

  test('the stream alone is a valid chain: seq/prev hold and every checkpoint verifies with the pinned key', () => {
    const asLines = entries.map((e, i) => ({ text: e.bytes.toString('latin1'), rec: e.rec, number: i + 1, file: stream }));
    const { problems, checkpoints, requests } = checkChain(asLines, key.x);
    assert.deepEqual(problems, []);
    assert.equal(checkpoints, 4);
    assert.equal(requests, sent.length);
  });

  test('metrics: redis_connected 1, shipped{redis,ok} = stream length, nothing dropped', () => {
    assert.equal(metrics.connected, 1);
    assert.equal(metrics.ok, lines.length);
    assert.equal(metrics.dropped, 0);
    assert.equal(metrics.recordsDropped, 0);
  });
});

// ---------------------------------------------------------------------------------------

describe('Redis SIGKILLed under traffic, then restarted on the same port', { timeout: 30_000 }, () => {
  const cleanup = cleanupList();
  const stream = `it:audit:${process.pid}:crash`;
  let redis, redis2, gw, port, auditPath;
  let before1, lastSeqBefore;      // file lines and last seq before the kill
  const during = [];               // requests while Redis was down
  const afterRestart = [];         // requests after the restart
  let downMetrics, sawDisconnected = false;
  let lines, entries, finalMetrics;

  before(async () => {
    redis = await startRedis();
    cleanup.add(() => redis.stop());
    ({ gw, port, auditPath } = await startAuditGateway(cleanup, { redis: { address: redis.address, stream } }));
    for (let i = 0; i < 6; i++) assert.equal((await send(port, 'allow', `pre${i}`)).status, 200);
    await eventually(async () => {
      before1 = fileLines(auditPath);
      return requestIds(before1).length === 6 && (await xlen(redis, stream)) === before1.length
        && (await redisMetrics(gw)).ok === before1.length;
    }, { timeoutMs: 8000, message: 'the first 6 requests shipped' });
    lastSeqBefore = before1.at(-1).rec.seq;

    await redis.kill9();
    // Requests keep coming while Redis is gone; at least 8, and until the gauge shows 0.
    const deadline = Date.now() + 6000;
    while (Date.now() < deadline && (during.length < 8 || !sawDisconnected)) {
      during.push(await send(port, 'allow', `down${during.length}`));
      const m = await redisMetrics(gw);
      if (m.connected === 0) { sawDisconnected = true; downMetrics = m; }
      await sleep(100);
    }
    // Every request of the outage is in the file.
    await eventually(() => requestIds(fileLines(auditPath)).length === 6 + during.length,
      { timeoutMs: 5000, message: 'the outage requests in the audit file' });
    downMetrics = { ...(await redisMetrics(gw)), connectedSeen: downMetrics?.connected };

    redis2 = await startRedis({ port: redis.port });
    cleanup.add(() => redis2.stop());
    for (let i = 0; i < 4; i++) afterRestart.push(await send(port, 'allow', `post${i}`));
    // The shipper retries every second: wait until every line since the crash is in the new stream.
    await eventually(async () => {
      lines = fileLines(auditPath);
      if (requestIds(lines).length !== 6 + during.length + afterRestart.length) return false;
      entries = await streamEntries(redis2, stream);
      const seqs = new Set(entries.map((e) => e.rec?.seq));
      return lines.filter((l) => l.rec.seq > lastSeqBefore).every((l) => seqs.has(l.rec.seq));
    }, { timeoutMs: 8000, message: 'every line written since the crash in the new stream' });
    finalMetrics = await redisMetrics(gw);
  });
  after(() => cleanup.run());

  test('requests are served while Redis is down: all 200, no 5xx (the file is the primary sink)', () => {
    assert.ok(during.length >= 8, `${during.length} requests during the outage`);
    for (const s of during) assert.equal(s.status, 200, `${s.id} during the outage`);
    for (const s of afterRestart) assert.equal(s.status, 200, `${s.id} after the restart`);
  });

  test('while down: redis_connected 0, the file sink OK, nothing dropped (lines wait in the queue)', (t) => {
    t.diagnostic(`${during.length} requests while down: ${JSON.stringify(downMetrics)}; new stream ${entries.length} entries for ${lines.length - before1.length} lines since the crash`);
    assert.ok(sawDisconnected, 'portcullis_audit_redis_connected never showed 0 during the outage');
    assert.equal(downMetrics.connected, 0);
    assert.equal(downMetrics.sinkOk, 1);
    assert.equal(downMetrics.recordsDropped, 0);
    assert.equal(downMetrics.dropped, 0, 'below `queue` waiting lines nothing is dropped');
    assert.equal(downMetrics.ok, before1.length, 'a dead server acknowledges nothing: shipped{ok} stays at the pre-crash count');
  });

  test('the audit file holds every request in order, unaffected by the outage', () => {
    assert.deepEqual(requestIds(lines), [...before1.filter((l) => l.rec.type === 'request').map((l) => l.rec.request_id),
      ...during.map((s) => s.id), ...afterRestart.map((s) => s.id)]);
    assert.equal(lines.filter((l) => l.rec.type === 'lost').length, 0, 'no lost record: the file lost nothing');
  });

  test('after the restart: reconnected (redis_connected 1) and the new stream has every line written since the crash, byte for byte, in order (duplicates allowed, identified by seq)', () => {
    assert.equal(finalMetrics.connected, 1);
    const bySeq = new Map(lines.map((l) => [l.rec.seq, l.text]));
    for (const e of entries) {
      assert.deepEqual(e.names, ['line']);
      assert.ok(e.rec, `entry ${e.id} is not JSON`);
      assert.ok(e.rec.seq > lastSeqBefore, `seq ${e.rec.seq} was acknowledged by the old server before the crash and must not be re-sent`);
      assert.ok(e.bytes.equals(Buffer.from(bySeq.get(e.rec.seq), 'latin1')), `entry seq ${e.rec.seq} differs from the file line`);
    }
    // First occurrences, in stream order, are exactly the file lines after the crash, in order.
    const seen = new Set();
    const firsts = [];
    for (const e of entries) if (!seen.has(e.rec.seq)) { seen.add(e.rec.seq); firsts.push(e.rec.seq); }
    assert.deepEqual(firsts, lines.filter((l) => l.rec.seq > lastSeqBefore).map((l) => l.rec.seq));
    // The requests of the outage were queued, not lost.
    const shippedIds = new Set(entries.filter((e) => e.rec.type === 'request').map((e) => e.rec.request_id));
    for (const s of [...during, ...afterRestart]) assert.ok(shippedIds.has(s.id), `${s.id} not in the new stream`);
  });

  test('shipped{redis,ok} counts every acknowledged XADD: the old stream plus the new one; nothing dropped', () => {
    assert.equal(finalMetrics.ok, before1.length + entries.length);
    assert.equal(finalMetrics.dropped, 0);
    assert.equal(finalMetrics.recordsDropped, 0);
  });
});

// ---------------------------------------------------------------------------------------

describe('Redis down from the start, small queue: lines beyond it are dropped and counted', { timeout: 30_000 }, () => {
  const cleanup = cleanupList();
  const stream = `it:audit:${process.pid}:overflow`;
  let redisPort, redis, gw, port, auditPath;
  const down = [];
  const up = [];
  let downMetrics, lines, entries, finalMetrics;

  before(async () => {
    [redisPort] = await freePorts(1); // nothing listens there yet
    ({ gw, port, auditPath } = await startAuditGateway(cleanup, {
      redis: { address: `127.0.0.1:${redisPort}`, stream }, queue: 16,
    }));
    // 60 requests, 6 at a time: far more lines than 16 within the shipper's 1 s retry delay.
    for (let i = 0; i < 60; i += 6) {
      down.push(...await Promise.all([0, 1, 2, 3, 4, 5].map((j) => send(port, 'allow', `ovf${i + j}`))));
    }
    await eventually(() => requestIds(fileLines(auditPath)).length === down.length,
      { timeoutMs: 5000, message: 'the 60 requests in the file' });
    downMetrics = await redisMetrics(gw);

    redis = await startRedis({ port: redisPort });
    cleanup.add(() => redis.stop());
    // Once reconnected, new lines flow again.
    await eventually(async () => (await redisMetrics(gw)).connected === 1, { timeoutMs: 5000, message: 'redis_connected 1' });
    for (let i = 0; i < 3; i++) up.push(await send(port, 'allow', `up${i}`));
    await eventually(async () => {
      lines = fileLines(auditPath);
      const m = await redisMetrics(gw);
      return requestIds(lines).length === down.length + up.length && m.ok + m.dropped === lines.length
        && (await xlen(redis, stream)) === m.ok;
    }, { timeoutMs: 8000, message: 'every file line shipped or counted as dropped' });
    entries = await streamEntries(redis, stream);
    finalMetrics = await redisMetrics(gw);
  });
  after(() => cleanup.run());

  test('the gateway starts and serves with Redis unreachable; the file records everything', () => {
    for (const s of [...down, ...up]) assert.equal(s.status, 200, s.id);
    // (6 requests at a time: their order in the file is the order they finished.)
    assert.deepEqual([...requestIds(lines)].sort(), [...down, ...up].map((s) => s.id).sort());
    assert.equal(lines.filter((l) => l.rec.type === 'lost').length, 0, 'Redis drops never reach the file');
  });

  test('while unreachable: redis_connected 0, lines beyond `queue` dropped and counted, the file sink OK', (t) => {
    t.diagnostic(`while down: ${JSON.stringify(downMetrics)}; at the end: ${JSON.stringify(finalMetrics)}, ${lines.length} file lines`);
    assert.equal(downMetrics.connected, 0);
    assert.equal(downMetrics.ok, 0);
    assert.ok(downMetrics.dropped > 0, `shipped{redis,dropped} = ${downMetrics.dropped}`);
    assert.equal(downMetrics.sinkOk, 1);
    assert.equal(downMetrics.recordsDropped, 0);
  });

  test('after Redis comes up: every file line is either in the stream (byte for byte, in file order) or counted as dropped', () => {
    assert.equal(finalMetrics.connected, 1);
    assert.equal(finalMetrics.ok + finalMetrics.dropped, lines.length);
    assert.equal(entries.length, finalMetrics.ok);
    // The stream is a subsequence of the file (no duplicates here: no connection broke mid-batch).
    let at = 0;
    for (const e of entries) {
      while (at < lines.length && lines[at].rec.seq !== e.rec?.seq) at++;
      assert.ok(at < lines.length, `entry ${e.id} (seq ${e.rec?.seq}) is not a file line after the previous entry`);
      assert.ok(e.bytes.equals(Buffer.from(lines[at].text, 'latin1')), `entry seq ${e.rec.seq} differs from the file line`);
      at++;
    }
    const shippedIds = new Set(entries.filter((e) => e.rec.type === 'request').map((e) => e.rec.request_id));
    for (const s of up) assert.ok(shippedIds.has(s.id), `${s.id} (sent after Redis came up) not in the stream`);
  });
});

// ---------------------------------------------------------------------------------------

describe('maxlen: XADD MAXLEN ~ trims the stream to about the cap', { timeout: 30_000 }, () => {
  const cleanup = cleanupList();
  const stream = `it:audit:${process.pid}:maxlen`;
  const MAXLEN = 10;
  // MAXLEN ~ only removes whole stream nodes; with Redis' default of 100 entries a node, 51
  // lines would never be trimmed. Nodes of 10 make the approximate trim visible: the stream
  // then holds between MAXLEN and MAXLEN + 10 - 1 entries.
  const NODE = 10;
  let redis, gw, port, auditPath;
  const sent = [];
  let lines, entries, metrics, len;

  before(async () => {
    redis = await startRedis({ args: ['--stream-node-max-entries', String(NODE)] });
    cleanup.add(() => redis.stop());
    ({ gw, port, auditPath } = await startAuditGateway(cleanup, {
      redis: { address: redis.address, stream, maxlen: MAXLEN }, checkpointEvery: 0,
    }));
    for (let i = 0; i < 50; i++) sent.push(await send(port, 'allow', `ml${i}`));
    await eventually(async () => {
      lines = fileLines(auditPath);
      return requestIds(lines).length === 50 && (await redisMetrics(gw)).ok === lines.length;
    }, { timeoutMs: 8000, message: 'all 50 requests shipped' });
    len = await xlen(redis, stream);
    entries = await streamEntries(redis, stream);
    metrics = await redisMetrics(gw);
  });
  after(() => cleanup.run());

  test('all 51 lines were XADDed (genesis + 50 requests), all 200', () => {
    for (const s of sent) assert.equal(s.status, 200, s.id);
    assert.equal(lines.length, 51);
    assert.equal(metrics.ok, 51);
    assert.equal(metrics.dropped, 0);
  });

  test(`XLEN stays about the cap: ${MAXLEN} <= XLEN < ${MAXLEN + NODE}, far below the 51 lines shipped`, () => {
    assert.ok(len >= MAXLEN, `XLEN ${len} < maxlen ${MAXLEN}`);
    assert.ok(len < MAXLEN + NODE, `XLEN ${len} is not trimmed to about ${MAXLEN}`);
    assert.equal(entries.length, len);
  });

  test('the stream keeps the newest lines: exactly the last XLEN lines of the file, byte for byte', () => {
    const tail = lines.slice(lines.length - len);
    entries.forEach((e, i) => {
      assert.deepEqual(e.names, ['line']);
      assert.ok(e.bytes.equals(Buffer.from(tail[i].text, 'latin1')), `entry ${i} (seq ${e.rec?.seq}) vs file seq ${tail[i].rec.seq}`);
    });
    assert.equal(entries.at(-1).rec.request_id, sent.at(-1).id);
  });
});

describe('an idle gateway notices that Redis went away (the gauge never goes stale)', { timeout: 30_000 }, () => {
  const cleanup = cleanupList();
  after(() => cleanup.run());

  test('Redis SIGKILLed with no traffic: redis_connected goes 0 within a few seconds; back to 1 after a restart', async () => {
    let redis = await startRedis();
    cleanup.add(() => redis.stop());
    const stream = `it:audit:${process.pid}:idle`;
    const { gw } = await startAuditGateway(cleanup, { redis: { address: redis.address, stream } });
    await eventually(async () => (await redisMetrics(gw)).connected === 1, { timeoutMs: 8000, message: 'connected at start (idle probe)' });
    const port = redis.port;
    await redis.kill9();
    const t0 = Date.now();
    await eventually(async () => (await redisMetrics(gw)).connected === 0, { timeoutMs: 8000, message: 'redis_connected 0 without any request' });
    assert.ok(Date.now() - t0 < 8000);
    redis = await startRedis({ port });
    cleanup.add(() => redis.stop());
    await eventually(async () => (await redisMetrics(gw)).connected === 1, { timeoutMs: 8000, message: 'redis_connected 1 again without any request' });
  });
});
