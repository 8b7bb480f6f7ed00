// The tamper-evident audit log (docs/audit-format.md) as wired into the gateway, end to end
// through the real binary: one request record per request of every kind (allowed, denied,
// 401, 404, 400, 413, public, upstream down, cut off by the client) matched by X-Request-Id,
// no secrets in the file, `audit verify --key` on what the gateway wrote; kill -9 under load
// and a restart on the same path (torn tail); on_failure deny/allow with a missing audit
// directory; rotation and retention; `audit export` on the gateway's files; the stdout sink.
//
// The CLI-level tamper tests (edited lines, forged checkpoints, ...) on hand-made logs are in
// audit_cli.test.mjs; here every log is written by the gateway. Tokens come from a key pair
// made here (provider with jwks_file); the audit key is an Ed25519 key made here, pinned with
// --key (public PEM derived with node:crypto).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {
  startGateway, startUpstream, writeConfig, tempDir, rmTemp, freePorts, eventually, sleep,
  fetchMetrics, httpRequest, rawConnect, parseResponse, responseComplete, cleanupList
} from '../support/harness.mjs';
import { createTokenIssuer } from '../support/policy.mjs';
import {
  makeAuditKey, auditFiles, readAuditFile, readAuditChain, checkChain, auditVerify, auditExport,
  parseCsv, auditMetrics, sha256hex,
} from '../support/audit.mjs';

// ---------------------------------------------------------------------------------------
// Shared helpers

const issuer = createTokenIssuer({ alg: 'ES256', issuer: 'http://127.0.0.1:9/audit-tests', audience: 'api://audit-tests' });
const PEOPLE = {
  alice: { sub: 'alice', email: 'alice@example.com', groups: ['eng', 'readers'] },
  bob: { sub: 'bob', email: 'bob@example.org', groups: ['sales'] },
  carol: { sub: 'carol', email: 'carol@example.com', groups: ['eng'] },
};
const tokens = Object.fromEntries(Object.entries(PEOPLE).map(([k, claims]) => [k, issuer.mint(claims, { ttl: 600 })]));

let markerSeq = 0;
const marker = (tag) => `${tag}-${process.pid}-${++markerSeq}-${crypto.randomBytes(3).toString('hex')}`;

/**
 * A gateway config: one listener, admin, identity provider (jwks in dir), the given upstreams,
 * routes and audit section. Returns {config, port, admin}.
 */
async function auditConfig(dir, { upstreams, routes, audit, workers = 2, accessLog = 'stdout' }) {
  const [plain, admin] = await freePorts(2);
  const jwks = path.join(dir, 'jwks.json');
  if (!fs.existsSync(jwks)) issuer.writeJwks(dir);
  const config = {
    server: { workers, drain_timeout: '3s', instance_name: 'audit-it' },
    access_log: { path: accessLog },
    listeners: [{ name: 'plain', address: `127.0.0.1:${plain}` }],
    admin: { address: `127.0.0.1:${admin}` },
    identity_providers: [issuer.provider(jwks)],
    upstreams,
    routes,
    audit,
  };
  return { config, port: plain, admin };
}

/** Writes the config to dir/NAME and starts the gateway on it. */
async function startWith(dir, config, name = 'portcullis.yaml') {
  const configPath = writeConfig(config, { dir, name });
  return startGateway({ configPath });
}

/** GET (or `method`) with an optional bearer token; resolves the httpRequest result. */
function call(port, pathname, token, { method = 'GET', headers = {}, body, agent } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  return httpRequest({ port, path: pathname, method, headers: h, body, agent, timeoutMs: 10_000 });
}

/** Raw bytes on a fresh connection; resolves {res (parseResponse), localPort}. */
async function raw(port, bytes) {
  const conn = await rawConnect(port);
  const localPort = conn.socket.localPort;
  try {
    conn.write(bytes).catch(() => {});
    await conn.waitFor((t) => responseComplete(t), 5000).catch(() => {});
    return { res: parseResponse(conn.text()), localPort, text: conn.text() };
  } finally {
    conn.destroy();
  }
}

const DURATION_RE = /"duration_ms":\d+\.\d{3},"completed":(true|false)\}$/;

// ---------------------------------------------------------------------------------------

describe('one gateway, every kind of request, a clean stop', { timeout: 60_000 }, () => {
  const cleanup = cleanupList();
  let dir, auditDir, key, upstream, gw, exit;
  const sent = [];        // {kind, id, path, localPort, status, body, res}
  const secrets = {};     // name -> value that must not be in the audit file
  let tStart, tEnd;
  let chain;              // readAuditChain of the directory
  let records;            // request records
  const N = 3;

  before(async () => {
    dir = tempDir('portcullis-audit-all-');
    cleanup.add(() => rmTemp(dir));
    auditDir = path.join(dir, 'audit');
    fs.mkdirSync(auditDir);
    key = makeAuditKey(dir);
    upstream = await startUpstream({ name: 'echo' });
    cleanup.add(() => upstream.close());
    const [deadPort] = await freePorts(1); // nothing listens there
    const { config, port } = await auditConfig(dir, {
      upstreams: [{ name: 'echo', endpoints: [upstream.address] }, { name: 'dead', endpoints: [`127.0.0.1:${deadPort}`] }],
      routes: [
        { name: 'api', match: { path_prefix: '/api' }, upstream: 'echo', auth: 'bearer', policy: { allow: { group: { has: 'eng' } } } },
        { name: 'down', match: { path_prefix: '/down' }, upstream: 'dead', auth: 'public' },
        { name: 'pub', match: { path_prefix: '/pub' }, upstream: 'echo', auth: 'public', max_body: '1KiB' },
        { name: 'upload', match: { path_prefix: '/upload' }, upstream: 'echo', auth: 'public' },
      ],
      audit: {
        file: { path: path.join(auditDir, 'audit.jsonl'), fsync: 'always' },
        on_failure: 'deny',
        checkpoint: { every: 5, interval: '0s' },
        key_file: key.keyPath,
      },
    });
    gw = await startWith(dir, config);
    cleanup.add(() => gw.stop('SIGKILL'));

    secrets.cookie = `sess-${crypto.randomBytes(12).toString('hex')}`;
    secrets.query = `qk-${crypto.randomBytes(12).toString('hex')}`;
    secrets.garbage = `garbage-${crypto.randomBytes(12).toString('hex')}`;
    for (const who of ['alice', 'bob']) {
      secrets[`${who} token`] = tokens[who];
      secrets[`${who} signature`] = tokens[who].split('.')[2];
      secrets[`${who} payload`] = tokens[who].split('.')[1];
    }
    const headers = { cookie: `session=${secrets.cookie}; theme=dark` };
    const q = `?api_key=${secrets.query}`;
    tStart = Date.now();

    const viaHttp = async (kind, pathname, token, opts = {}) => {
      const r = await call(port, `${pathname}${q}`, token, { headers: { ...headers, ...(opts.headers ?? {}) }, ...opts });
      sent.push({ kind, id: r.headers['x-request-id'], path: pathname, localPort: r.localPort, status: r.status, body: r.body, res: r });
    };
    const viaRaw = async (kind, pathname, bytes) => {
      const { res, localPort, text } = await raw(port, bytes);
      assert.ok(res, `${kind}: no response: ${JSON.stringify(text.slice(0, 200))}`);
      sent.push({ kind, id: res.headers['x-request-id'], path: pathname, localPort, status: res.status, body: res.body, res });
    };
    for (let i = 0; i < N; i++) {
      await viaHttp('allowed', `/api/ok-${marker('allowed')}`, tokens.alice);
      await viaHttp('denied', `/api/no-${marker('denied')}`, tokens.bob);
      await viaHttp('unauthenticated', `/api/anon-${marker('anon')}`, null,
        i === 1 ? { headers: { authorization: `Bearer ${secrets.garbage}` } } : {});
      await viaHttp('no-route', `/nowhere-${marker('noroute')}`, null);
      const lower = `/pub/lower-${marker('lower')}`;
      await viaRaw('bad-method', '', `get ${lower}${q} HTTP/1.1\r\nHost: gw.test\r\nCookie: session=${secrets.cookie}\r\nAuthorization: Bearer ${tokens.alice}\r\n\r\n`);
      const slash = `/pub/a%2Fb-${marker('slash')}`;
      await viaRaw('encoded-slash', slash, `GET ${slash}${q} HTTP/1.1\r\nHost: gw.test\r\nCookie: session=${secrets.cookie}\r\n\r\n`);
      const big = `/pub/big-${marker('big')}`;
      await viaRaw('too-large', big, `POST ${big}${q} HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5000\r\nCookie: session=${secrets.cookie}\r\n\r\n`);
      await viaHttp('public', `/pub/open-${marker('public')}`, null);
      await viaHttp('upstream-down', `/down/x-${marker('down')}`, null);

      // Cut off mid-body: headers and 10 of 100000 body bytes, then the socket is destroyed.
      const cutBody = `/upload/cutbody-${marker('cutbody')}`;
      let conn = await rawConnect(port);
      sent.push({ kind: 'cut-body', id: null, path: cutBody, localPort: conn.socket.localPort, status: null });
      const received = upstream.stats.bytesReceived;
      await conn.write(`POST ${cutBody}${q} HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 100000\r\nCookie: session=${secrets.cookie}\r\n\r\n0123456789`);
      await eventually(() => upstream.requests.some((r) => r.url.startsWith(cutBody)) && upstream.stats.bytesReceived >= received + 10,
        { timeoutMs: 3000, message: 'the cut-off upload and its first 10 bytes reached the upstream' });
      conn.destroy();

      // Cut off mid-download: 50 MB asked for, the socket destroyed after 100 kB.
      const cutDl = `/pub/cutdl-${marker('cutdl')}`;
      conn = await rawConnect(port);
      const entry = { kind: 'cut-download', id: null, path: cutDl, localPort: conn.socket.localPort, status: null };
      sent.push(entry);
      await conn.write(`GET ${cutDl}${q}&stream=50000000 HTTP/1.1\r\nHost: gw.test\r\nCookie: session=${secrets.cookie}\r\n\r\n`);
      const got = await conn.waitFor((t) => t.length > 100_000, 5000);
      entry.status = parseResponse(`${got.slice(0, got.indexOf('\r\n\r\n') + 4)}`)?.status;
      entry.id = /\r\nx-request-id: ([^\r]+)\r\n/i.exec(got)?.[1] ?? null;
      conn.destroy();
    }

    // Every request is written before the stop (the cut-off ones end when the gateway notices).
    await eventually(async () => auditMetrics(await fetchMetrics(gw)).written === sent.length,
      { timeoutMs: 8000, message: `portcullis_audit_records_written_total == ${sent.length}` });
    tEnd = Date.now();
    exit = await gw.stop('SIGTERM');
    chain = readAuditChain(auditFiles(auditDir));
    records = chain.lines.filter((l) => l.rec?.type === 'request');
  });

  after(() => cleanup.run());

  const byId = (id) => records.filter((l) => l.rec.request_id === id);
  const recordOf = (s) => {
    const matches = s.id ? byId(s.id) : records.filter((l) => l.rec.path === s.path);
    assert.equal(matches.length, 1, `${s.kind} ${s.id ?? s.path}: ${matches.length} records`);
    return matches[0].rec;
  };

  test('every response had the expected status and an X-Request-Id; the gateway stopped cleanly', () => {
    const expected = {
      allowed: 200, denied: 403, unauthenticated: 401, 'no-route': 404, 'bad-method': 400,
      'encoded-slash': 400, 'too-large': 413, public: 200, 'upstream-down': 502, 'cut-download': 200,
    };
    for (const s of sent) {
      if (s.kind === 'cut-body') continue; // no response: the client left first
      const what = `${s.kind} ${s.path}: ${s.status} ${String(s.body ?? '').slice(0, 200)}`;
      if (s.kind === 'upstream-down') {
        // The first attempt fails to connect (502); passive health checking then marks the
        // only endpoint down, and later requests get 503 without an attempt.
        assert.ok([502, 503].includes(s.status), what);
      } else {
        assert.equal(s.status, expected[s.kind], what);
      }
      assert.match(s.id ?? '', /^[0-9a-f]{32}$/, `${s.kind}: x-request-id`);
    }
    assert.equal(new Set(sent.filter((s) => s.id).map((s) => s.id)).size, sent.filter((s) => s.id).length, 'request ids are unique');
    assert.deepEqual(exit, { code: 0, signal: null });
  });

  test('exactly one request record per request: request_id = X-Request-Id, cut-off requests by their path', () => {
    assert.equal(records.length, sent.length, `request records ${records.length}, requests ${sent.length}`);
    for (const s of sent) {
      const rec = recordOf(s);
      if (s.id) assert.equal(rec.request_id, s.id, `${s.kind} ${s.path}`);
      else assert.match(rec.request_id, /^[0-9a-f]{32}$/, `${s.kind}: a request id was made for the record`);
    }
    const ids = new Set(records.map((l) => l.rec.request_id));
    assert.equal(ids.size, records.length, 'no request id twice in the log');
    assert.equal(chain.lines[0].rec.type, 'genesis');
    assert.equal(chain.lines[0].rec.instance, 'audit-it');
    const last = chain.lines[chain.lines.length - 1].rec;
    assert.equal(last.type, 'checkpoint');
    assert.equal(last.reason, 'shutdown');
    assert.ok(chain.lines.filter((l) => l.rec.type === 'checkpoint' && l.rec.reason === 'count').length >= Math.floor(sent.length / 5) - 1,
      'a count checkpoint every 5 request records');
  });

  test('record fields: decision, status, error, route, identity, rule, upstream, completed', () => {
    const common = (s, rec) => {
      assert.equal(rec.listener, 'plain');
      assert.equal(rec.source, '127.0.0.1');
      assert.equal(rec.source_port, s.localPort, `${s.kind}: source_port`);
      assert.match(rec.trace_id, /^[0-9a-f]{32}$/);
      assert.equal(rec.grpc_method, '');
      assert.equal(rec.shadow_decision, '');
      assert.equal(rec.cache, 'none');
      const t = Date.parse(rec.time);
      assert.ok(t >= tStart - 1000 && t <= tEnd + 1000, `${s.kind}: time ${rec.time}`);
      assert.match(rec.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      assert.ok(!rec.path.includes('?'), `${s.kind}: the path has no query string: ${rec.path}`);
    };
    const anonymous = { subject: '', email: '', issuer: '', client_id: '', groups: [] };
    const expectations = {
      allowed: { route: 'api', method: 'GET', decision: 'allow', status: 200, error: '', reason: 'matched allow rule', upstream: 'echo', upstream_address: upstream.address, completed: true,
        subject: 'alice', email: 'alice@example.com', issuer: issuer.issuer, groups: ['eng', 'readers'] },
      denied: { route: 'api', method: 'GET', decision: 'deny', status: 403, error: 'forbidden', reason: 'no rule matched', upstream_address: '', completed: true, bytes_in: 0,
        subject: 'bob', email: 'bob@example.org', issuer: issuer.issuer, groups: ['sales'] },
      unauthenticated: { route: 'api', method: 'GET', status: 401, error: 'unauthenticated', upstream_address: '', completed: true, rule: '', ...anonymous },
      'no-route': { route: '', method: 'GET', decision: 'none', status: 404, error: 'no_route', upstream: '', upstream_address: '', completed: true, rule: '', ...anonymous },
      'bad-method': { route: '', method: 'get', decision: 'none', status: 400, error: 'bad_method', upstream: '', upstream_address: '', completed: true, ...anonymous },
      'encoded-slash': { route: 'pub', method: 'GET', decision: 'none', status: 400, error: 'bad_path', upstream_address: '', completed: true, ...anonymous },
      'too-large': { route: 'pub', method: 'POST', decision: 'none', status: 413, error: 'payload_too_large', upstream_address: '', bytes_in: 0, completed: true, ...anonymous },
      public: { route: 'pub', method: 'GET', decision: 'allow', status: 200, error: '', reason: 'public route', upstream: 'echo', upstream_address: upstream.address, completed: true, ...anonymous },
      'upstream-down': { route: 'down', method: 'GET', decision: 'allow', reason: 'public route', upstream: 'dead', completed: true, ...anonymous },
      'cut-body': { route: 'upload', method: 'POST', decision: 'allow', status: 499, error: 'client_aborted_upload', upstream: 'echo', upstream_address: upstream.address, bytes_in: 10, completed: false, ...anonymous },
      'cut-download': { route: 'pub', method: 'GET', decision: 'allow', status: 200, error: 'client_aborted_download', upstream: 'echo', upstream_address: upstream.address, completed: false, ...anonymous },
    };
    for (const s of sent) {
      const rec = recordOf(s);
      const what = `${s.kind} ${s.id ?? s.path}`;
      common(s, rec);
      for (const [k, v] of Object.entries(expectations[s.kind])) {
        assert.deepEqual(rec[k], v, `${what}: ${k} = ${JSON.stringify(rec[k])}, expected ${JSON.stringify(v)}`);
      }
      if (s.path) assert.equal(rec.path, s.path, `${what}: path`);
      if (s.status !== null) assert.equal(rec.status, s.status, `${what}: status = the status the client got`);
      if (s.status >= 400) assert.equal(rec.error, JSON.parse(s.body).error, `${what}: error = the error code of the gateway's answer`);
      if (s.kind === 'upstream-down') {
        assert.ok((rec.status === 502 && rec.error === 'upstream_connect_failed') || (rec.status === 503 && rec.error === 'no_healthy_upstream'),
          `${what}: ${rec.status} ${rec.error}`);
      }
      if (s.kind === 'allowed') assert.match(rec.rule, /route api#allow\[0\]$/);
      if (s.kind === 'denied') assert.match(rec.rule, /route api#default$/);
      if (s.kind === 'allowed' || s.kind === 'public') {
        // The trace id the upstream received is the one recorded; the bytes sent are counted.
        const echo = JSON.parse(s.body);
        assert.ok(echo.headers.traceparent?.includes(rec.trace_id), `${what}: traceparent ${echo.headers.traceparent} vs ${rec.trace_id}`);
        assert.ok(rec.bytes_out >= s.body.length, `${what}: bytes_out ${rec.bytes_out} < body ${s.body.length}`);
      }
      if (s.kind === 'cut-download') assert.ok(rec.bytes_out >= 100_000 && rec.bytes_out < 50_000_000, `${what}: bytes_out ${rec.bytes_out}`);
    }
    for (const l of records) assert.match(l.text, DURATION_RE, `duration_ms with three decimals, completed last: ${l.text.slice(-80)}`);
    // Nothing refused reached the upstream; allowed, public and cut-off requests did, once.
    for (const s of sent) {
      const hits = upstream.requests.filter((r) => s.path && r.url.split('?')[0] === s.path).length;
      const forwarded = ['allowed', 'public', 'cut-body', 'cut-download'].includes(s.kind);
      if (s.kind !== 'bad-method') assert.equal(hits, forwarded ? 1 : 0, `${s.kind} ${s.path}: upstream hits`);
    }
  });

  test('no token, Authorization value, cookie value or query string is in the audit file', () => {
    const text = auditFiles(auditDir).map((f) => fs.readFileSync(f, 'latin1')).join('');
    assert.ok(text.length > 0);
    for (const [name, value] of Object.entries(secrets)) {
      assert.ok(!text.includes(value), `the ${name} (${value.slice(0, 24)}...) is in the audit file`);
    }
    assert.ok(!/bearer/i.test(text), 'the word Bearer is in the audit file');
    assert.ok(!text.includes('api_key'), 'a query string is in the audit file');
    assert.ok(!text.includes('session='), 'a cookie is in the audit file');
  });

  test('audit verify --key PUB exits 0 and says it ends with a clean shutdown; an independent check agrees', async () => {
    const r = await auditVerify([auditDir], { key: key.pubPath });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`, ${sent.length} request records, \\d+ verified checkpoints \\(key ${key.kid}, pinned\\)`));
    assert.match(r.stdout, /^result: OK, ends with a clean shutdown$/m);
    assert.doesNotMatch(r.stdout, /^note: /m, 'no notes for a clean single-process log');
    const independent = checkChain(chain.lines, key.x);
    assert.deepEqual(independent.problems, []);
    assert.equal(independent.requests, sent.length);
  });

  test('a request refused by authentication (401) is recorded as a deny with its reason (docs/audit-format.md)', () => {
    // docs/audit-format.md: decision is `deny` by the policy or by authentication (401/403,
    // with the reason); `none` only for requests refused before any decision.
    for (const s of sent.filter((x) => x.kind === 'unauthenticated')) {
      const rec = recordOf(s);
      assert.equal(rec.decision, 'deny', `401 ${s.id}: decision ${JSON.stringify(rec.decision)}`);
      // No token, or a garbage one: the authenticator's reasons for those two.
      assert.match(rec.reason, /^(missing_token|malformed)$/, `401 ${s.id}: reason ${JSON.stringify(rec.reason)}`);
      assert.equal(rec.rule, '', 'no policy rule decided it');
    }
  });
});

// ---------------------------------------------------------------------------------------

/** `concurrency` keep-alive loops of GET PATH?n=... (bearer when token) until stop(). */
function startLoops({ port, loops }) {
  let running = true;
  const done = loops.map(async ({ pathname, token }, i) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const out = { ok: 0, errors: 0, ids: [] };
    let n = 0;
    while (running) {
      n += 1;
      try {
        const r = await call(port, `${pathname}?loop=${i}&n=${n}`, token, { agent });
        out.ok += 1;
        if (r.headers['x-request-id']) out.ids.push(r.headers['x-request-id']);
      } catch {
        out.errors += 1;
        await sleep(20);
      }
    }
    agent.destroy();
    return out;
  });
  return { async stop() { running = false; return Promise.all(done); } };
}

describe('kill -9 under load, then a restart on the same audit path', { timeout: 60_000 }, () => {
  const cleanup = cleanupList();
  let dir, auditDir, active, key, upstream, routes, auditSection;
  let beforeRestart; // readAuditFile(active) after the crash (and the torn tail, if made)
  let answered;      // request ids the clients got an answer for before the kill
  let tornWasNatural = false;
  let restarted;     // {start (the start record), renamed (the torn file's new name)}

  before(async () => {
    dir = tempDir('portcullis-audit-crash-');
    cleanup.add(() => rmTemp(dir));
    auditDir = path.join(dir, 'audit');
    fs.mkdirSync(auditDir);
    active = path.join(auditDir, 'audit.jsonl');
    key = makeAuditKey(dir);
    upstream = await startUpstream({ name: 'echo' });
    cleanup.add(() => upstream.close());
    routes = [
      { name: 'api', match: { path_prefix: '/api' }, upstream: 'echo', auth: 'bearer', policy: { allow: { group: { has: 'eng' } } } },
      { name: 'pub', match: { path_prefix: '/pub' }, upstream: 'echo', auth: 'public' },
    ];
    auditSection = {
      file: { path: active, fsync: 'never' },
      checkpoint: { every: 25, interval: '0s' },
      key_file: key.keyPath,
    };
  });
  after(() => cleanup.run());

  test('kill -9 under load: verify reports a torn tail precisely (FILE:LINE, truncated) or passes; every complete line verifies', async () => {
    const { config, port } = await auditConfig(dir, { upstreams: [{ name: 'echo', endpoints: [upstream.address] }], routes, audit: auditSection, workers: 3 });
    const gw = await startWith(dir, config, 'first.yaml');
    cleanup.add(() => gw.stop('SIGKILL'));
    const load = startLoops({
      port,
      loops: [
        { pathname: '/api/a', token: tokens.alice }, { pathname: '/api/b', token: tokens.bob },
        { pathname: '/api/c', token: tokens.carol }, { pathname: '/pub/d' }, { pathname: '/pub/e' },
        { pathname: '/nowhere' },
      ],
    });
    await eventually(async () => auditMetrics(await fetchMetrics(gw)).written >= 300,
      { timeoutMs: 10_000, message: '300 records written under load' });
    const exit = await gw.stop('SIGKILL');
    assert.equal(exit.signal, 'SIGKILL');
    const results = await load.stop();
    answered = new Set(results.flatMap((r) => r.ids));
    assert.ok(answered.size >= 300, `answered ${answered.size}`);

    let file = readAuditFile(active);
    assert.ok(file.lines.length > 300, `${file.lines.length} complete lines`);
    // Every complete line chains and every checkpoint in them is signed by the pinned key.
    const independent = checkChain(file.lines, key.x);
    assert.deepEqual(independent.problems, []);
    assert.ok(independent.checkpoints >= 10, `${independent.checkpoints} checkpoints`);
    // Every request record is one the clients sent (ids are unique, none invented).
    const ids = file.lines.filter((l) => l.rec.type === 'request').map((l) => l.rec.request_id);
    assert.equal(new Set(ids).size, ids.length, 'a request id twice');
    const unknown = ids.filter((id) => !answered.has(id));
    assert.ok(unknown.length <= 6, `records for requests nobody got an answer to (beyond the in-flight ones): ${unknown.length}`);

    const r = await auditVerify([active], { key: key.pubPath });
    if (file.torn) {
      tornWasNatural = true;
      const t = file.torn;
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stdout, new RegExp(`^${active}:${t.line}: truncated: torn last line at offset ${t.offset} \\(${t.length} bytes, sha256 ${t.sha256}\\)`, 'm'));
      assert.match(r.stdout, new RegExp(`^result: FAILED, first bad line ${active}:${t.line} \\(truncated\\)$`, 'm'));
      assert.equal(r.stdout.split('\n').filter((l) => l.startsWith(active)).length, 1, `one problem only:\n${r.stdout}`);
    } else {
      // The kill landed between writes: the file ends on a complete line and verifies; the
      // lines after the last checkpoint are reported unsigned, there is no clean shutdown.
      assert.equal(r.code, 0, r.stdout);
      assert.match(r.stdout, /^result: OK$/m);
      const lastCheckpoint = file.lines.map((l) => l.rec.type).lastIndexOf('checkpoint');
      const unsigned = file.lines.length - 1 - lastCheckpoint;
      if (unsigned > 0) assert.match(r.stdout, new RegExp(`note: the last ${unsigned} line\\(s\\) are not covered by a signed checkpoint`));

      // Make the crash-in-the-middle-of-a-line case happen every run: a prefix of the record the
      // writer would have written next, exactly what a write cut short by the kill leaves.
      const last = file.lines[file.lines.length - 1];
      const next = `{"seq":${last.rec.seq + 1},"prev":"${sha256hex(Buffer.from(last.text, 'latin1'))}","type":"request","time":"2026-11-30T12:00:00.000000Z","request_id":"torn"`;
      fs.appendFileSync(active, next.slice(0, 97), 'latin1');
      file = readAuditFile(active);
      assert.ok(file.torn);
      const t = file.torn;
      const torn = await auditVerify([active], { key: key.pubPath });
      assert.equal(torn.code, 1, torn.stdout);
      assert.match(torn.stdout, new RegExp(`^${active}:${t.line}: truncated: torn last line at offset ${t.offset} \\(97 bytes, sha256 ${t.sha256}\\) that no start record accounts for$`, 'm'));
      assert.match(torn.stdout, new RegExp(`^result: FAILED, first bad line ${active}:${t.line} \\(truncated\\)$`, 'm'));
      assert.equal(torn.stdout.split('\n').filter((l) => l.startsWith(active)).length, 1, `one problem only:\n${torn.stdout}`);
    }
    beforeRestart = file;
  });

  test('restart on the same path: the torn file is set aside untouched, a start record accounts for it, verify over the directory exits 0', async (t) => {
    assert.ok(beforeRestart?.torn, 'the previous test left a torn tail');
    t.diagnostic(tornWasNatural ? 'the kill -9 itself tore the last line' : 'the kill -9 ended on a complete line; the torn tail was appended');
    const tornBytes = beforeRestart.bytes;
    const lastComplete = beforeRestart.lines[beforeRestart.lines.length - 1];
    const { config, port } = await auditConfig(dir, { upstreams: [{ name: 'echo', endpoints: [upstream.address] }], routes, audit: auditSection });
    const gw = await startWith(dir, config, 'second.yaml');
    cleanup.add(() => gw.stop('SIGKILL'));
    const after = [];
    for (let i = 0; i < 4; i++) {
      const r = await call(port, `/api/after-restart-${i}`, tokens.alice);
      assert.equal(r.status, 200);
      after.push(r.headers['x-request-id']);
    }
    const exit = await gw.stop('SIGTERM');
    assert.deepEqual(exit, { code: 0, signal: null });

    // The torn file was renamed like a rotated file, byte for byte the same.
    const files = auditFiles(auditDir);
    const renamed = files.filter((f) => f !== active);
    assert.equal(renamed.length, 1, `files: ${files.map((f) => path.basename(f))}`);
    assert.match(path.basename(renamed[0]), /^audit-\d{8}T\d{6}Z-000000000000\.jsonl$/);
    assert.ok(fs.readFileSync(renamed[0]).equals(tornBytes), 'the torn file is unchanged');

    // The new active file starts with a start record that names the torn tail exactly.
    const fresh = readAuditFile(active);
    assert.equal(fresh.torn, null);
    const start = fresh.lines[0].rec;
    assert.equal(start.type, 'start');
    assert.equal(start.cause, 'startup');
    assert.equal(start.seq, lastComplete.rec.seq + 1);
    assert.equal(start.prev, sha256hex(Buffer.from(lastComplete.text, 'latin1')));
    assert.equal(start.kid, key.kid);
    restarted = { start, renamed: path.basename(renamed[0]) };
    assert.deepEqual(start.torn, {
      file: path.basename(renamed[0]), offset: beforeRestart.torn.offset,
      length: beforeRestart.torn.length, sha256: beforeRestart.torn.sha256,
    });
    const newIds = fresh.lines.filter((l) => l.rec.type === 'request').map((l) => l.rec.request_id);
    assert.deepEqual(newIds, after);

    const r = await auditVerify([auditDir], { key: key.pubPath });
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, new RegExp(`^note: torn tail of ${renamed[0]} \\(offset ${beforeRestart.torn.offset}, ${beforeRestart.torn.length} bytes\\) is accounted for by the start record at ${active}:1`, 'm'));
    assert.match(r.stdout, /^result: OK, ends with a clean shutdown$/m);
    const whole = readAuditChain(auditFiles(auditDir));
    assert.deepEqual(checkChain(whole.lines, key.x).problems, []);
  });

  test('the start record after the torn tail says it continues the renamed file (the one holding the line it chains to)', () => {
    // docs/audit-format.md: "continues":"<file name>" names the file whose last complete line
    // it chains to. After the torn file was moved aside, that file is the renamed one; the name
    // audit.jsonl now belongs to the new active file, which holds the start record itself.
    assert.ok(restarted, 'the restart test ran');
    assert.equal(restarted.start.continues, restarted.renamed,
      `start record: "continues":${JSON.stringify(restarted.start.continues)}, but the line it chains to (seq ${restarted.start.seq - 1}) is in ${restarted.renamed}`);
  });
});

// ---------------------------------------------------------------------------------------

describe('the audit directory does not exist', { timeout: 60_000 }, () => {
  const cleanup = cleanupList();
  let upstream;
  before(async () => {
    upstream = await startUpstream({ name: 'echo' });
    cleanup.add(() => upstream.close());
  });
  after(() => cleanup.run());

  const setup = async (onFailure) => {
    const dir = tempDir(`portcullis-audit-missing-${onFailure}-`);
    cleanup.add(() => rmTemp(dir));
    const key = makeAuditKey(dir);
    const auditDir = path.join(dir, 'not-yet');
    const { config, port } = await auditConfig(dir, {
      upstreams: [{ name: 'echo', endpoints: [upstream.address] }],
      routes: [
        { name: 'api', match: { path_prefix: '/api' }, upstream: 'echo', auth: 'bearer', policy: { allow: { group: { has: 'eng' } } } },
        { name: 'pub', match: { path_prefix: '/pub' }, upstream: 'echo', auth: 'public' },
      ],
      audit: { file: { path: path.join(auditDir, 'audit.jsonl') }, on_failure: onFailure, key_file: key.keyPath },
    });
    const gw = await startWith(dir, config);
    cleanup.add(() => gw.stop('SIGKILL'));
    return { dir, key, auditDir, port, gw };
  };
  const hits = (m) => upstream.requests.filter((r) => r.url.includes(m)).length;

  test('on_failure: deny → admitted requests get 503 audit_unavailable and never reach the upstream; once the directory exists they are served and recorded', async () => {
    const { key, auditDir, port, gw } = await setup('deny');
    assert.match(gw.logText(), /audit log not writable yet .*requests are answered 503 until it is/);
    const m = marker('deny');
    for (const [pathname, token] of [[`/api/x?${m}`, tokens.alice], [`/pub/y?${m}`, null], [`/api/z?${m}`, tokens.carol]]) {
      const r = await call(port, pathname, token);
      assert.equal(r.status, 503, `${pathname}: ${r.status} ${r.body.slice(0, 200)}`);
      const body = JSON.parse(r.body);
      assert.equal(body.error, 'audit_unavailable');
      assert.equal(body.request_id, r.headers['x-request-id']);
    }
    // Requests refused for other reasons keep their own answer.
    assert.equal((await call(port, `/api/x?${m}`, tokens.bob)).status, 403, 'a policy deny is still 403');
    assert.equal((await call(port, `/api/x?${m}`, null)).status, 401, 'no token is still 401');
    assert.equal((await call(port, `/nowhere?${m}`, null)).status, 404);
    assert.equal(hits(m), 0, 'the upstream saw a request the audit log could not record');
    const down = auditMetrics(await fetchMetrics(gw));
    assert.equal(down.sinkOk, 0);
    assert.ok(down.writeErrors > 0, `write errors ${down.writeErrors}`);
    assert.equal(down.written, 0);
    assert.ok(down.dropped >= 6, `dropped ${down.dropped}`);

    fs.mkdirSync(auditDir);
    const created = Date.now();
    const m2 = marker('deny-after');
    let served;
    await eventually(async () => {
      const r = await call(port, `/api/ok?${m2}`, tokens.alice);
      if (r.status === 200) served = r;
      else assert.equal(r.status, 503);
      return r.status === 200;
    }, { timeoutMs: 3000, intervalMs: 100, message: '200 after the audit directory was created' });
    assert.ok(Date.now() - created < 3000);
    const up = auditMetrics(await fetchMetrics(gw));
    assert.equal(up.sinkOk, 1);
    assert.equal(hits(m2), 1, 'only the served request reached the upstream');
    const exit = await gw.stop('SIGTERM');
    assert.deepEqual(exit, { code: 0, signal: null });

    const lines = readAuditChain(auditFiles(auditDir)).lines;
    assert.equal(lines[0].rec.type, 'genesis');
    const recorded = lines.filter((l) => l.rec.type === 'request' && l.rec.request_id === served.headers['x-request-id']);
    assert.equal(recorded.length, 1, 'the served request is recorded');
    assert.equal(recorded[0].rec.status, 200);
    // The records that could not be written are accounted for by a "lost" record.
    const lost = lines.filter((l) => l.rec.type === 'lost').reduce((s, l) => s + l.rec.count, 0);
    assert.equal(lost, up.dropped, `lost records ${lost}, dropped metric ${up.dropped}`);
    const r = await auditVerify([auditDir], { key: key.pubPath });
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, new RegExp(`, ${lost} records reported lost by the writer`));
    assert.match(r.stdout, /^result: OK, ends with a clean shutdown$/m);
  });

  test('on_failure: allow → requests are served unaudited and portcullis_audit_records_dropped_total counts them', async () => {
    const { key, auditDir, port, gw } = await setup('allow');
    assert.match(gw.logText(), /requests are served unaudited \(on_failure: allow\)/);
    const before = auditMetrics(await fetchMetrics(gw));
    const m = marker('allow');
    for (let i = 0; i < 4; i++) {
      const r = await call(port, `/api/x${i}?${m}`, tokens.alice);
      assert.equal(r.status, 200, r.body.slice(0, 200));
    }
    assert.equal(hits(m), 4);
    // The record is submitted when the exchange finishes, just after the response is written:
    // wait for the fourth rather than read the counter at once (a race seen in CI).
    let down;
    await eventually(async () => {
      down = auditMetrics(await fetchMetrics(gw));
      return down.dropped - before.dropped >= 4;
    }, { timeoutMs: 5000, message: '4 records dropped' });
    assert.equal(down.sinkOk, 0);
    assert.ok(down.writeErrors > 0);
    assert.equal(down.dropped - before.dropped, 4, `dropped ${before.dropped} -> ${down.dropped}`);

    fs.mkdirSync(auditDir);
    await eventually(async () => auditMetrics(await fetchMetrics(gw)).sinkOk === 1, { timeoutMs: 3000, message: 'portcullis_audit_sink_ok 1' });
    const r = await call(port, '/api/after', tokens.alice);
    assert.equal(r.status, 200);
    await gw.stop('SIGTERM');
    const lines = readAuditChain(auditFiles(auditDir)).lines;
    const lost = lines.filter((l) => l.rec.type === 'lost').reduce((s, l) => s + l.rec.count, 0);
    assert.equal(lost, down.dropped);
    assert.equal(lines.filter((l) => l.rec.type === 'request' && l.rec.request_id === r.headers['x-request-id']).length, 1);
    const v = await auditVerify([auditDir], { key: key.pubPath });
    assert.equal(v.code, 0, v.stdout);
  });
});

// ---------------------------------------------------------------------------------------

describe('rotation through the gateway', { timeout: 60_000 }, () => {
  const cleanup = cleanupList();
  let upstream;
  before(async () => {
    upstream = await startUpstream({ name: 'echo' });
    cleanup.add(() => upstream.close());
  });
  after(() => cleanup.run());

  const ROTATED_RE = /^audit-(\d{8}T\d{6}Z)-(\d{12,})(?:-\d+)?\.jsonl$/;
  const MAX_BYTES = 4096;

  /** A gateway with max_bytes 4KiB and `keep`; `count` requests, 4 at a time; clean stop. */
  const run = async (keep, count) => {
    const dir = tempDir(`portcullis-audit-rotate-${keep}-`);
    cleanup.add(() => rmTemp(dir));
    const key = makeAuditKey(dir);
    const auditDir = path.join(dir, 'audit');
    fs.mkdirSync(auditDir);
    const { config, port } = await auditConfig(dir, {
      upstreams: [{ name: 'echo', endpoints: [upstream.address] }],
      routes: [{ name: 'api', match: { path_prefix: '/api' }, upstream: 'echo', auth: 'bearer', policy: { allow: { group: { has: 'eng' } } } }],
      audit: { file: { path: path.join(auditDir, 'audit.jsonl'), max_bytes: '4KiB', keep }, key_file: key.keyPath },
    });
    const gw = await startWith(dir, config);
    cleanup.add(() => gw.stop('SIGKILL'));
    const ids = [];
    let next = 0;
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (next < count) {
        const i = next++;
        const r = await call(port, `/api/rot-${i}`, i % 3 ? tokens.alice : tokens.carol);
        assert.equal(r.status, 200);
        ids.push(r.headers['x-request-id']);
      }
    }));
    await eventually(async () => auditMetrics(await fetchMetrics(gw)).written === count, { timeoutMs: 5000, message: `${count} written` });
    const metrics = auditMetrics(await fetchMetrics(gw));
    assert.deepEqual(await gw.stop('SIGTERM'), { code: 0, signal: null });
    return { dir, key, auditDir, ids, metrics };
  };

  const checkRotatedFiles = (auditDir) => {
    const files = auditFiles(auditDir);
    const rotated = files.filter((f) => path.basename(f) !== 'audit.jsonl');
    for (const f of rotated) {
      const file = readAuditFile(f);
      const name = path.basename(f);
      const m = ROTATED_RE.exec(name);
      assert.ok(m, `rotated file name ${name}`);
      assert.equal(Number(m[2]), file.lines[0].rec.seq, `${name}: the number is the seq of its first line`);
      assert.equal(file.torn, null);
      const last = file.lines[file.lines.length - 1].rec;
      assert.equal(last.type, 'checkpoint', `${name} ends with a checkpoint`);
      assert.equal(last.reason, 'rotate');
      // "a file can exceed max_bytes by one record plus the rotation checkpoint"
      const withoutLastTwo = file.lines[file.lines.length - 2].offset;
      assert.ok(withoutLastTwo < MAX_BYTES, `${name}: ${file.bytes.length} bytes, ${withoutLastTwo} before its last record and checkpoint (max_bytes ${MAX_BYTES})`);
    }
    // Each file after the first in chain order starts with a rotate record naming its predecessor.
    const chain = readAuditChain(files);
    for (let i = 1; i < chain.files.length; i++) {
      const first = chain.files[i].lines[0].rec;
      assert.equal(first.type, 'rotate', `${path.basename(chain.files[i].file)} starts with a rotate record`);
      assert.equal(first.previous_file, path.basename(chain.files[i - 1].file));
    }
    return { files, rotated, chain };
  };

  test('keep: 2 → only 2 rotated files remain; verify notes the chain starts after retention and checks from there (exit 0)', async () => {
    const { key, auditDir, metrics } = await run(2, 40);
    assert.ok(metrics.rotations >= 4, `rotations ${metrics.rotations}`);
    const { files, rotated, chain } = checkRotatedFiles(auditDir);
    assert.equal(rotated.length, 2, `files: ${files.map((f) => path.basename(f))}`);
    assert.ok(chain.lines[0].rec.seq > 0 && chain.lines[0].rec.type === 'rotate', 'the oldest remaining file starts in the middle of the chain');
    const seqs = chain.lines.map((l) => l.rec.seq);
    assert.deepEqual(seqs, seqs.map((_, i) => seqs[0] + i), 'seq runs on across the remaining files');
    const r = await auditVerify([auditDir], { key: key.pubPath });
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, new RegExp(`^note: the chain starts at seq ${seqs[0]} \\(${rotated.find((f) => readAuditFile(f).lines[0].rec.seq === seqs[0])}:1\\), not at a genesis record: earlier files were not given \\(or were removed by retention\\)`, 'm'));
    assert.match(r.stdout, /^result: OK, ends with a clean shutdown$/m);
  });

  test('a large keep → every file remains; seq runs on across them; verify over all of them exits 0 with every request', async () => {
    const { key, auditDir, ids, metrics } = await run(1000, 40);
    const { files, rotated, chain } = checkRotatedFiles(auditDir);
    // The metrics were read before the stop; the shutdown checkpoint can still rotate once.
    assert.ok(rotated.length >= metrics.rotations && rotated.length <= metrics.rotations + 1,
      `${rotated.length} rotated vs ${metrics.rotations} rotations; files: ${files.map((f) => path.basename(f))}`);
    assert.ok(rotated.length >= 4, `${rotated.length} rotated files`);
    assert.equal(chain.lines[0].rec.type, 'genesis');
    const seqs = chain.lines.map((l) => l.rec.seq);
    assert.deepEqual(seqs, seqs.map((_, i) => i), 'seq 0, 1, 2, ... across files');
    assert.deepEqual(checkChain(chain.lines, key.x).problems, []);
    const recorded = chain.lines.filter((l) => l.rec.type === 'request').map((l) => l.rec.request_id);
    assert.deepEqual([...recorded].sort(), [...ids].sort());
    const r = await auditVerify([auditDir], { key: key.pubPath });
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, new RegExp(`^${files.length} files, ${chain.lines.length} lines \\(seq 0\\.\\.${seqs.length - 1}\\), 40 request records`, 'm'));
    assert.match(r.stdout, /^result: OK, ends with a clean shutdown$/m);
  });
});

// ---------------------------------------------------------------------------------------

describe('audit export on the gateway\'s files', { timeout: 60_000 }, () => {
  const cleanup = cleanupList();
  let auditDir;
  const phases = [[], [], []]; // [{id, who, route, status}]
  let t1, t2;
  let lines; // request lines in chain order

  before(async () => {
    const dir = tempDir('portcullis-audit-export-');
    cleanup.add(() => rmTemp(dir));
    const key = makeAuditKey(dir);
    auditDir = path.join(dir, 'audit');
    fs.mkdirSync(auditDir);
    const upstream = await startUpstream({ name: 'echo' });
    cleanup.add(() => upstream.close());
    const { config, port } = await auditConfig(dir, {
      upstreams: [{ name: 'echo', endpoints: [upstream.address] }],
      routes: [
        { name: 'api', match: { path_prefix: '/api' }, upstream: 'echo', auth: 'bearer', policy: { allow: { group: { has: 'eng' } } } },
        { name: 'reports', match: { path_prefix: '/reports' }, upstream: 'echo', auth: 'bearer', policy: { allow: { email: { ends_with: '@example.com' } } } },
        { name: 'pub', match: { path_prefix: '/pub' }, upstream: 'echo', auth: 'public' },
      ],
      audit: { file: { path: path.join(auditDir, 'audit.jsonl'), max_bytes: '8KiB', keep: 0 }, key_file: key.keyPath },
    });
    const gw = await startWith(dir, config);
    cleanup.add(() => gw.stop('SIGKILL'));
    const send = async (phase, who, pathname, route) => {
      const r = await call(port, pathname, who ? tokens[who] : null);
      phases[phase].push({ id: r.headers['x-request-id'], who: who ?? '', route, status: r.status });
    };
    // Phase 0
    await send(0, 'alice', '/api/p0-a', 'api');
    await send(0, 'bob', '/api/p0-b', 'api');
    await send(0, 'carol', '/reports/p0-c', 'reports');
    await send(0, null, '/pub/p0', 'pub');
    await sleep(60);
    t1 = new Date().toISOString();
    await sleep(60);
    // Phase 1
    await send(1, 'alice', '/api/p1-a', 'api');
    await send(1, 'alice', '/reports/p1-a', 'reports');
    await send(1, 'bob', '/api/p1-b', 'api');
    await send(1, 'bob', '/reports/p1-b', 'reports');
    await send(1, 'carol', '/api/p1-c', 'api');
    await send(1, null, '/pub/p1', 'pub');
    await sleep(60);
    t2 = new Date().toISOString();
    await sleep(60);
    // Phase 2
    await send(2, 'bob', '/api/p2-b', 'api');
    await send(2, 'carol', '/reports/p2-c', 'reports');
    await send(2, 'alice', '/api/p2-a', 'api');
    await eventually(async () => auditMetrics(await fetchMetrics(gw)).written === 13, { timeoutMs: 5000, message: '13 written' });
    assert.deepEqual(await gw.stop('SIGTERM'), { code: 0, signal: null });
    lines = readAuditChain(auditFiles(auditDir)).lines.filter((l) => l.rec.type === 'request');
  });
  after(() => cleanup.run());

  const all = () => phases.flat();
  const exportIds = async (args) => {
    const r = await auditExport(args, [auditDir]);
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdout.split('\n');
    assert.equal(out.pop(), '', 'output ends with LF');
    return { ids: out.map((l) => JSON.parse(l).request_id), out, r };
  };

  test('the requests had the expected answers (bob is denied on api; example.com may use reports)', () => {
    const expected = { 'alice api': 200, 'bob api': 403, 'carol api': 200, 'alice reports': 200, 'bob reports': 403, 'carol reports': 200, ' pub': 200 };
    for (const s of all()) assert.equal(s.status, expected[`${s.who} ${s.route}`], `${s.who} ${s.route}`);
    assert.equal(lines.length, 13);
  });

  test('--decision deny returns exactly the denied requests, byte for byte; --decision allow the others', async () => {
    const denied = await exportIds(['--decision', 'deny']);
    assert.deepEqual(denied.ids, all().filter((s) => s.status === 403).map((s) => s.id));
    const raw = new Map(lines.map((l) => [l.rec.request_id, l.text]));
    for (const l of denied.out) assert.equal(l, raw.get(JSON.parse(l).request_id), 'exported line = line in the file');
    assert.match(denied.r.stderr, /exported 4 records from \d+ files? /);
    const allowed = await exportIds(['--decision', 'allow']);
    assert.deepEqual(allowed.ids, all().filter((s) => s.status === 200).map((s) => s.id));
  });

  test('--route and --subject filter, alone and together', async () => {
    assert.deepEqual((await exportIds(['--route', 'reports'])).ids, all().filter((s) => s.route === 'reports').map((s) => s.id));
    assert.deepEqual((await exportIds(['--subject', 'alice'])).ids, all().filter((s) => s.who === 'alice').map((s) => s.id));
    assert.deepEqual((await exportIds(['--subject', 'bob', '--route', 'api'])).ids,
      all().filter((s) => s.who === 'bob' && s.route === 'api').map((s) => s.id));
    assert.deepEqual((await exportIds(['--route', 'nope'])).ids, []);
  });

  test('--since/--until: only the records of the window', async () => {
    assert.deepEqual((await exportIds(['--since', t1, '--until', t2])).ids, phases[1].map((s) => s.id));
    assert.deepEqual((await exportIds(['--until', t1])).ids, phases[0].map((s) => s.id));
    assert.deepEqual((await exportIds(['--since', t2])).ids, phases[2].map((s) => s.id));
    assert.deepEqual((await exportIds(['--since', t1, '--until', t2, '--decision', 'deny'])).ids,
      phases[1].filter((s) => s.status === 403).map((s) => s.id));
  });

  test('--format csv: the documented header row and one row per record', async () => {
    const r = await auditExport(['--format', 'csv'], [auditDir]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.endsWith('\r\n'));
    assert.ok(!/[^\r]\n/.test(r.stdout), 'CRLF line ends');
    const rows = parseCsv(r.stdout);
    const header = 'seq,type,time,request_id,trace_id,listener,route,method,authority,path,grpc_method,source,source_port,subject,email,issuer,client_id,groups,decision,rule,reason,shadow_decision,shadow_rule,cache,upstream,upstream_address,status,error,bytes_in,bytes_out,duration_ms,completed'.split(',');
    assert.deepEqual(rows[0], header);
    assert.equal(rows.length, 1 + 13);
    const col = (name) => header.indexOf(name);
    for (const [i, l] of lines.entries()) {
      const row = rows[i + 1];
      assert.equal(row.length, header.length);
      assert.equal(row[col('request_id')], l.rec.request_id);
      assert.equal(Number(row[col('seq')]), l.rec.seq);
      assert.equal(row[col('type')], 'request');
      assert.equal(row[col('subject')], l.rec.subject);
      assert.equal(row[col('decision')], l.rec.decision);
      assert.equal(row[col('status')], String(l.rec.status));
      assert.deepEqual(JSON.parse(row[col('groups')]), l.rec.groups);
    }
    const denied = parseCsv((await auditExport(['--format', 'csv', '--decision', 'deny'], [auditDir])).stdout);
    assert.equal(denied.length, 1 + 4);
  });
});

// ---------------------------------------------------------------------------------------

describe('stdout as the only audit sink', { timeout: 60_000 }, () => {
  const cleanup = cleanupList();
  after(() => cleanup.run());

  test('access log lines and audit lines both appear on stdout; the audit lines form a chain that verifies; each process starts a new one', async () => {
    // docs/audit-format.md: "without a file it is the only sink and every process starts a new
    // chain" (a genesis record), so the lines taken from stdout are a complete, checkable log.
    // The document also warns that access log and audit lines on one stdout could interleave;
    // at this volume (a few sub-4KiB lines, written whole) they must not.
    const dir = tempDir('portcullis-audit-stdout-');
    cleanup.add(() => rmTemp(dir));
    const key = makeAuditKey(dir);
    const upstream = await startUpstream({ name: 'echo' });
    cleanup.add(() => upstream.close());
    const runOnce = async (name) => {
      const { config, port } = await auditConfig(dir, {
        upstreams: [{ name: 'echo', endpoints: [upstream.address] }],
        routes: [
          { name: 'api', match: { path_prefix: '/api' }, upstream: 'echo', auth: 'bearer', policy: { allow: { group: { has: 'eng' } } } },
          { name: 'pub', match: { path_prefix: '/pub' }, upstream: 'echo', auth: 'public' },
        ],
        audit: { stdout: true, key_file: key.keyPath, checkpoint: { every: 3 } },
      });
      const gw = await startWith(dir, config, `${name}.yaml`);
      cleanup.add(() => gw.stop('SIGKILL'));
      const ids = [];
      for (const [p, who] of [['/api/a', 'alice'], ['/api/b', 'bob'], ['/api/c', null], ['/pub/d', null], ['/nowhere', null], ['/api/e', 'carol'], ['/pub/f', null]]) {
        const r = await call(port, p, who && tokens[who]);
        ids.push(r.headers['x-request-id']);
      }
      // stdout is the primary sink here: its lines count as written.
      await eventually(async () => auditMetrics(await fetchMetrics(gw)).written === ids.length, { timeoutMs: 5000, message: 'audit records written to stdout' });
      assert.deepEqual(await gw.stop('SIGTERM'), { code: 0, signal: null });
      const out = gw.logs().stdout;
      const auditLines = out.filter((l) => l.startsWith('{"seq":'));
      const access = gw.accessLog().filter((e) => e.seq === undefined && e.request_id);
      return { ids, auditLines, access, out };
    };

    const first = await runOnce('first');
    assert.deepEqual(first.access.map((e) => e.request_id), first.ids, 'one access log line per request');
    const auditRequests = first.auditLines.map((l) => JSON.parse(l)).filter((r) => r.type === 'request');
    assert.deepEqual(auditRequests.map((r) => r.request_id), first.ids, 'one audit request record per request');
    for (const l of first.auditLines) assert.match(l, /^\{"seq":\d+,"prev":"[0-9a-f]{64}","type":"[a-z]+"/);
    const file = path.join(dir, 'from-stdout.jsonl');
    fs.writeFileSync(file, first.auditLines.map((l) => `${l}\n`).join(''));
    const first0 = JSON.parse(first.auditLines[0]);
    assert.equal(first0.type, 'genesis');
    const r = await auditVerify([file], { key: key.pubPath });
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, new RegExp(`, ${first.ids.length} request records, [1-9]\\d* verified checkpoints \\(key ${key.kid}, pinned\\)`));
    assert.match(r.stdout, /^result: OK, ends with a clean shutdown$/m);
    assert.deepEqual(checkChain(readAuditFile(file).lines, key.x).problems, []);
    // Nothing else on stdout: every line is an access log line or an audit line.
    const other = first.out.filter((l) => l.trim() && !l.startsWith('{"seq":') && !(l.startsWith('{') && JSON.parse(l).request_id));
    assert.deepEqual(other, []);

    const second = await runOnce('second');
    const second0 = JSON.parse(second.auditLines[0]);
    assert.equal(second0.type, 'genesis', 'a second process starts a new chain');
    assert.equal(second0.seq, 0);
  });
});
