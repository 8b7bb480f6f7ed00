// `portcullis audit verify | export` on real files, against docs/audit-format.md:
//  - a log written here from the document alone (Node crypto, no Portcullis code) must verify,
//    and each tampering of it must be located;
//  - a log written by the real AuditWriter (tests/tools/portcullis_audit_fixture) must pass an
//    independent verifier written here from the document, and the CLI on it (rotated files in
//    any order, a dropped file, a torn tail);
//  - export filters, JSON lines kept byte for byte, CSV quoting and formula neutralising.
// Env: PORTCULLIS_BIN, PORTCULLIS_AUDIT_FIXTURE (default build/tests/tools/portcullis_audit_fixture;
// the fixture-based tests are skipped when it is not built).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, runGateway, run, tempDir, rmTemp } from '../support/harness.mjs';

const FIXTURE = process.env.PORTCULLIS_AUDIT_FIXTURE ||
  path.join(ROOT, 'build', 'tests', 'tools', 'portcullis_audit_fixture');
const haveFixture = fs.existsSync(FIXTURE);

const ZERO = '0'.repeat(64);
const sha256hex = (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');
const thumbprint = (x) => crypto.createHash('sha256')
  .update(`{"crv":"Ed25519","kty":"OKP","x":"${x}"}`).digest('base64url');

function audit(args) {
  return runGateway(['audit', ...args]);
}

function readLines(file) {
  const text = fs.readFileSync(file, 'latin1');
  const parts = text.split('\n');
  return { lines: parts.slice(0, -1), torn: parts[parts.length - 1] };
}

function writeLines(file, lines) {
  fs.writeFileSync(file, lines.map((l) => `${l}\n`).join(''), 'latin1');
}

// ---------------------------------------------------------------------------------------
// A third-party writer, from docs/audit-format.md only.

function newKey() {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
  const { x } = publicKey.export({ format: 'jwk' });
  return { publicKey, privateKey, x, kid: thumbprint(x),
           pem: publicKey.export({ type: 'spki', format: 'pem' }) };
}

const START = Date.UTC(2027, 0, 15, 8, 0, 0);  // 2027-01-15T08:00:00Z
const isoMicros = (ms) => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

/**
 * Writes `records` request records (one a minute from START) with a checkpoint every
 * `every`, ending with a shutdown checkpoint, to dir/audit.jsonl. Returns the lines.
 */
function writeThirdPartyLog(dir, key, records, every = 5) {
  const lines = [];
  let prev = ZERO;
  const push = (line) => {
    lines.push(line);
    prev = sha256hex(Buffer.from(line, 'latin1'));
  };
  const head = (type) => `{"seq":${lines.length},"prev":"${prev}","type":"${type}"`;
  const checkpoint = (time, reason) => {
    const message = `${head('checkpoint')},"time":"${time}","instance":"js-writer","kid":"${key.kid}","reason":"${reason}"}`;
    const sig = crypto.sign(null, Buffer.from(message, 'latin1'), key.privateKey).toString('base64url');
    push(`${message.slice(0, -1)},"sig":"${sig}"}`);
  };
  push(`${head('genesis')},"time":"${isoMicros(START)}","format":"portcullis-audit/1","instance":"js-writer","alg":"Ed25519","kid":"${key.kid}","key":{"kty":"OKP","crv":"Ed25519","x":"${key.x}"}}`);
  for (let i = 0; i < records; i++) {
    const body = {
      time: isoMicros(START + i * 60_000), request_id: `js-${i}`, trace_id: '', listener: 'edge',
      route: i % 2 ? 'orders-api' : 'billing', method: 'GET', authority: 'api.example.com',
      path: i === 3 ? '/search,"q"\nx' : `/orders/${i}`, grpc_method: '', source: '192.0.2.7',
      source_port: 40000, subject: i === 4 ? '=HYPERLINK("http://evil")' : `user-${i % 3}`,
      email: '', issuer: 'https://idp.example.com', client_id: 'web', groups: ['staff'],
      decision: i % 4 === 0 ? 'deny' : 'allow', rule: 'policies/orders.yaml#allow[0]', reason: 'matched',
      shadow_decision: '', shadow_rule: '', cache: 'none', upstream: 'orders', upstream_address: '',
      status: i % 4 === 0 ? 403 : 200, error: '', bytes_in: 0, bytes_out: 10, duration_ms: 1.5,
      completed: true,
    };
    push(`${head('request')},${JSON.stringify(body).slice(1)}`);
    if ((i + 1) % every === 0) checkpoint(isoMicros(START + i * 60_000), 'count');
  }
  checkpoint(isoMicros(START + records * 60_000), 'shutdown');
  writeLines(path.join(dir, 'audit.jsonl'), lines);
  return lines;
}

// ---------------------------------------------------------------------------------------
// A third-party verifier, from docs/audit-format.md only. Returns {ok, error, requests, checkpoints}.

function verifyIndependently(files, pinnedX) {
  const ordered = files.map((f) => ({ f, ...readLines(f) }))
    .filter((e) => e.lines.length > 0)
    .sort((a, b) => JSON.parse(a.lines[0]).seq - JSON.parse(b.lines[0]).seq);
  let prevSeq = null, prevHash = null, key = null, requests = 0, checkpoints = 0;
  for (const { f, lines, torn } of ordered) {
    if (torn !== '') return { ok: false, error: `${f}: torn tail` };
    for (const [i, line] of lines.entries()) {
      const at = `${f}:${i + 1}`;
      if (!/^[\x20-\x7e]*$/.test(line)) return { ok: false, error: `${at}: not pure ASCII` };
      const rec = JSON.parse(line);
      if (!line.startsWith(`{"seq":${rec.seq},"prev":"${rec.prev}","type":"${rec.type}"`))
        return { ok: false, error: `${at}: seq, prev, type are not the first members` };
      if (prevSeq === null) {
        if (rec.type !== 'genesis' || rec.seq !== 0 || rec.prev !== ZERO) return { ok: false, error: `${at}: no genesis` };
      } else {
        if (rec.seq !== prevSeq + 1) return { ok: false, error: `${at}: seq ${rec.seq} after ${prevSeq}` };
        if (rec.prev !== prevHash) return { ok: false, error: `${at}: prev mismatch` };
      }
      if (['genesis', 'start', 'rotate'].includes(rec.type)) {
        if (rec.alg !== 'Ed25519' || rec.key.kty !== 'OKP' || rec.key.crv !== 'Ed25519') return { ok: false, error: `${at}: key` };
        if (thumbprint(rec.key.x) !== rec.kid) return { ok: false, error: `${at}: kid` };
        if (pinnedX && rec.key.x !== pinnedX) return { ok: false, error: `${at}: unknown key` };
        key = { kid: rec.kid, pub: crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: rec.key.x }, format: 'jwk' }) };
      }
      if (rec.type === 'request') requests++;
      if (rec.type === 'checkpoint') {
        const cut = line.lastIndexOf(',"sig":"');
        const message = `${line.slice(0, cut)}}`;
        if (line !== `${message.slice(0, -1)},"sig":"${rec.sig}"}`) return { ok: false, error: `${at}: sig is not last` };
        if (!key || rec.kid !== key.kid) return { ok: false, error: `${at}: unknown kid` };
        if (!crypto.verify(null, Buffer.from(message, 'latin1'), key.pub, Buffer.from(rec.sig, 'base64url')))
          return { ok: false, error: `${at}: bad signature` };
        checkpoints++;
      }
      prevSeq = rec.seq;
      prevHash = sha256hex(Buffer.from(line, 'latin1'));
    }
  }
  return { ok: true, requests, checkpoints };
}

// ---------------------------------------------------------------------------------------

describe('a log written from the format document alone', () => {
  let dir, key, lines, pub;
  before(() => {
    dir = tempDir('portcullis-audit-js-');
    key = newKey();
    lines = writeThirdPartyLog(dir, key, 20);
    pub = path.join(dir, 'audit-pub.pem');
    fs.writeFileSync(pub, key.pem);
  });
  after(() => rmTemp(dir));

  test('verifies with the pinned key, and the independent verifier agrees', async () => {
    assert.deepEqual(verifyIndependently([path.join(dir, 'audit.jsonl')], key.x),
      { ok: true, requests: 20, checkpoints: 5 });
    const r = await audit(['verify', '--key', pub, dir]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /20 request records, 5 verified checkpoints/);
    assert.match(r.stdout, /result: OK, ends with a clean shutdown/);
  });

  test('without --key it verifies but says the key is not pinned', async () => {
    const r = await audit(['verify', path.join(dir, 'audit.jsonl')]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /note: no --key given/);
    assert.match(r.stdout, /not pinned/);
  });

  test('an edited record is reported at its line', async () => {
    const t = tempDir('portcullis-audit-edit-');
    try {
      const edited = [...lines];
      edited[7] = edited[7].replace('"decision":"allow"', '"decision":"deny"');  // js-5
      assert.notEqual(edited[7], lines[7]);
      writeLines(path.join(t, 'audit.jsonl'), edited);
      const r = await audit(['verify', '--key', pub, path.join(t, 'audit.jsonl')]);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stdout, /audit\.jsonl:8: edited: /);
      assert.match(r.stdout, /result: FAILED, first bad line .*audit\.jsonl:8 \(edited\)/);
    } finally { rmTemp(t); }
  });

  test('a chain re-signed with another key fails against the pinned key', async () => {
    const t = tempDir('portcullis-audit-resign-');
    try {
      const attacker = newKey();
      writeThirdPartyLog(t, attacker, 20);
      const unpinned = await audit(['verify', t]);
      assert.equal(unpinned.code, 0, 'a complete rewrite passes without a pinned key');
      const r = await audit(['verify', '--key', pub, t]);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stdout, /audit\.jsonl:1: unknown key: genesis record announces key /);
    } finally { rmTemp(t); }
  });

  test('export: window, filters, JSON lines byte for byte', async () => {
    const all = await audit(['export', dir]);
    assert.equal(all.code, 0, all.stderr);
    assert.deepEqual(all.stdout.split('\n').slice(0, -1), lines.filter((l) => l.includes('"type":"request"')));
    assert.match(all.stderr, /exported 20 records from 1 file/);

    const window = await audit(['export', '--since', '2027-01-15T08:05:00Z', '--until', '2027-01-15T09:10:00+01:00', dir]);
    assert.deepEqual(window.stdout.trim().split('\n').map((l) => JSON.parse(l).request_id),
      ['js-5', 'js-6', 'js-7', 'js-8', 'js-9']);

    const denied = await audit(['export', '--decision', 'deny', '--route', 'billing', dir]);
    assert.deepEqual(denied.stdout.trim().split('\n').map((l) => JSON.parse(l).request_id),
      ['js-0', 'js-4', 'js-8', 'js-12', 'js-16']);

    const subject = await audit(['export', '--subject', 'user-1', dir]);
    assert.equal(subject.stdout.trim().split('\n').length, 6);

    const everything = await audit(['export', '--all', dir]);
    assert.equal(everything.stdout.split('\n').length - 1, lines.length);
  });

  test('export CSV: header, RFC 4180 quoting, formula neutralising', async () => {
    const r = await audit(['export', '--format', 'csv', '--until', '2027-01-15T08:05:00Z', dir]);
    assert.equal(r.code, 0, r.stderr);
    const rows = r.stdout.split('\r\n');
    assert.equal(rows[0].split(',')[0], 'seq');
    assert.ok(rows[0].startsWith('seq,type,time,request_id,trace_id,listener,route,method,authority,path,'));
    assert.equal(rows[rows.length - 1], '');
    assert.match(r.stdout, /,"\/search,""q""\nx",/);
    assert.match(r.stdout, /,"'=HYPERLINK\(""http:\/\/evil""\)",/);
    assert.match(r.stdout, /,"\[""staff""\]",/);
  });
});

describe('a log written by the gateway\'s writer', { skip: !haveFixture && `no ${FIXTURE}` }, () => {
  let dir, pub;
  before(async () => {
    dir = tempDir('portcullis-audit-writer-');
    const r = await run(FIXTURE, [dir, '300', '--key', path.join(dir, 'key.pem'), '--max-bytes', '16384']);
    assert.equal(r.code, 0, r.stderr);
    pub = path.join(dir, 'pub.pem');
    const k = await run('openssl', ['pkey', '-in', path.join(dir, 'key.pem'), '-pubout', '-out', pub]);
    assert.equal(k.code, 0, k.stderr);
  });
  after(() => rmTemp(dir));

  const files = () => fs.readdirSync(dir).filter((f) => f.endsWith('.jsonl')).map((f) => path.join(dir, f));

  test('passes the independent verifier written from the document', () => {
    const x = crypto.createPublicKey(fs.readFileSync(pub)).export({ format: 'jwk' }).x;
    const result = verifyIndependently(files(), x);
    assert.equal(result.ok, true, result.error);
    assert.equal(result.requests, 300);
  });

  test('verify accepts the rotated files in any order', async () => {
    const list = files().reverse();
    assert.ok(list.length > 3, `expected rotated files, got ${list.length}`);
    const r = await audit(['verify', '--key', pub, ...list]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /300 request records/);
  });

  test('a dropped rotated file, a torn tail and a forged checkpoint are located', async () => {
    const t = tempDir('portcullis-audit-tamper-');
    try {
      const copy = (name) => fs.cpSync(dir, path.join(t, name), { recursive: true });
      const sorted = files().map((f) => path.basename(f)).sort();

      copy('dropped');
      fs.rmSync(path.join(t, 'dropped', sorted[2]));
      let r = await audit(['verify', '--key', pub, path.join(t, 'dropped')]);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stdout, new RegExp(`${sorted[3].replace(/[.]/g, '\\.')}:1: missing: .*a rotated file is missing`));

      copy('torn');
      const active = path.join(t, 'torn', 'audit.jsonl');
      const size = fs.statSync(active).size;
      fs.truncateSync(active, size - 10);
      r = await audit(['verify', '--key', pub, path.join(t, 'torn')]);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stdout, /audit\.jsonl:\d+: truncated: torn last line at offset \d+ \(\d+ bytes, sha256 [0-9a-f]{64}\)/);

      copy('forged');
      const victim = path.join(t, 'forged', sorted[1]);
      const { lines } = readLines(victim);
      const i = lines.findIndex((l) => l.includes('"type":"checkpoint"'));
      lines[i] = lines[i].replace(/"sig":"(.)/, (m, c) => `"sig":"${c === 'A' ? 'B' : 'A'}`);
      writeLines(victim, lines);
      r = await audit(['verify', '--key', pub, path.join(t, 'forged')]);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stdout, new RegExp(`${sorted[1].replace(/[.]/g, '\\.')}:${i + 1}: forged checkpoint: `));
    } finally { rmTemp(t); }
  });
});

describe('audit command line', () => {
  test('usage errors exit 2, --help exits 0', async () => {
    assert.equal((await audit(['verify'])).code, 2);
    assert.equal((await audit(['export', '--format', 'xml', '.'])).code, 2);
    assert.equal((await audit(['export', '--since', 'yesterday', '.'])).code, 2);
    assert.equal((await audit(['export', '--decision', 'maybe', '.'])).code, 2);
    assert.equal((await audit(['verify', '/nonexistent/audit.jsonl'])).code, 2);
    assert.equal((await audit(['frobnicate'])).code, 2);
    const help = await audit(['verify', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--key PUB\.pem/);
  });
});
