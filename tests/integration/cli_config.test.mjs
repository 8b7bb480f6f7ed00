// CLI surface and `portcullis config check`.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runGateway, writeConfig, tempDir, rmTemp, makeCerts, freePorts } from '../support/harness.mjs';

// A valid config written line by line, so tests can compute exact line:column positions.
function validLines(ports) {
  return [
    'server:', //                                   1
    '  workers: 2', //                              2
    '  drain_timeout: 5s', //                       3
    'access_log:', //                               4
    '  path: stdout', //                            5
    'listeners:', //                                6
    '  - name: plain', //                           7
    `    address: "127.0.0.1:${ports[0]}"`, //      8
    'admin:', //                                    9
    `  address: "127.0.0.1:${ports[1]}"`, //        10
    'upstreams:', //                                11
    '  - name: app', //                             12
    `    endpoints: ["127.0.0.1:${ports[2]}"]`, //  13
    'routes:', //                                   14
    '  - name: public', //                          15
    '    match:', //                                16
    '      path_prefix: /public', //                17
    '    upstream: app', //                         18
    '    auth: public', //                          19
  ];
}

/** {line, column} (1-based) of the first occurrence of `needle`. */
function positionOf(lines, needle) {
  const i = lines.findIndex((l) => l.includes(needle));
  assert.ok(i >= 0, `test bug: ${needle} not in the config`);
  return { line: i + 1, column: lines[i].indexOf(needle) + 1 };
}

/** stderr lines of the form FILE:LINE:COLUMN: reason, parsed. */
function diagnostics(stderr, file) {
  const out = [];
  for (const line of stderr.split('\n')) {
    if (!line.startsWith(`${file}:`)) continue;
    const m = /^(\d+):(\d+): (.+)$/.exec(line.slice(file.length + 1));
    if (m) out.push({ line: Number(m[1]), column: Number(m[2]), reason: m[3], text: line });
  }
  return out;
}

describe('CLI', { timeout: 60_000 }, () => {
  test('version prints "portcullis <semver>" and exits 0', async () => {
    const r = await runGateway(['version']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.trim(), /^portcullis \d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$/);
  });

  for (const args of [['--help'], ['serve', '--help'], ['config', 'check', '--help']]) {
    test(`${args.join(' ')} prints usage and exits 0`, async () => {
      const r = await runGateway(args);
      assert.equal(r.code, 0, `exit code; stderr: ${r.stderr}`);
      assert.match(r.stdout, /usage/i, `stdout: ${r.stdout}`);
    });
  }

  test('serve --help mentions --config', async () => {
    const r = await runGateway(['serve', '--help']);
    assert.match(r.stdout, /--config/);
  });

  test('an unknown subcommand exits 2 with usage on stderr', async () => {
    const r = await runGateway(['frobnicate']);
    assert.equal(r.code, 2, `stdout: ${r.stdout} stderr: ${r.stderr}`);
    assert.match(r.stderr, /usage/i);
  });
});

describe('config check', { timeout: 60_000 }, () => {
  let dir;
  let ports;
  let certs;
  before(async () => {
    dir = tempDir('portcullis-check-');
    ports = await freePorts(4);
    certs = await makeCerts(path.join(dir, 'certs'));
  });
  after(() => rmTemp(dir));

  const check = (file) => runGateway(['config', 'check', file]);

  test('a valid config: exit 0 and "FILE: OK"', async () => {
    const file = writeConfig(`${validLines(ports).join('\n')}\n`, { dir, name: 'valid.yaml' });
    const r = await check(file);
    assert.equal(r.code, 0, `stderr: ${r.stderr}`);
    assert.ok(r.stdout.includes(`${file}: OK`), `stdout: ${r.stdout}`);
  });

  test('the full example from the spec (TLS, limits, weights, ejection, trusted proxies) is valid', async () => {
    const yaml = `server: {workers: 2, drain_timeout: 5s, trusted_proxies: ["10.0.0.0/8"]}
access_log: {path: stdout}
listeners:
  - {name: edge, address: "127.0.0.1:${ports[0]}", tls: {cert: ${certs.cert}, key: ${certs.key}}}
  - {name: plain, address: "127.0.0.1:${ports[1]}", limits: {max_header_bytes: 8KiB, header_timeout: 2s}}
admin: {address: "127.0.0.1:${ports[2]}"}
upstreams:
  - {name: app, endpoints: ["127.0.0.1:${ports[3]}", {address: "127.0.0.1:${ports[3] + 1}", weight: 3}], timeouts: {connect: 1s, request: 2s, idle: 30s}, ejection: {consecutive_failures: 3, base_duration: 10s}, retries: 1}
  - {name: other, endpoints: ["127.0.0.1:${ports[3]}"]}
routes:
  - {name: api, match: {host: "api.localhost", path_prefix: /api}, upstream: app, auth: public, max_body: 1MiB}
  - {name: admin-area, match: {path_prefix: /admin}, upstream: other, auth: public}
  - {name: public, match: {path_prefix: /public}, upstream: app, auth: public}
  - {name: health, match: {path: /health, methods: [GET, HEAD]}, upstream: app, auth: public}
`;
    const file = writeConfig(yaml, { dir, name: 'full.yaml' });
    const r = await check(file);
    assert.equal(r.code, 0, `stderr: ${r.stderr}`);
    assert.ok(r.stdout.includes(`${file}: OK`), `stdout: ${r.stdout}`);
  });

  test('an unknown key is reported with its exact line:column', async () => {
    const lines = validLines(ports);
    lines.splice(18, 0, '    max_bdy: 1MiB'); // inside the route, becomes line 19
    const file = writeConfig(`${lines.join('\n')}\n`, { dir, name: 'unknown-key.yaml' });
    const pos = positionOf(lines, 'max_bdy');
    assert.deepEqual(pos, { line: 19, column: 5 }, 'test bug: position');
    const r = await check(file);
    assert.equal(r.code, 1, `stdout: ${r.stdout} stderr: ${r.stderr}`);
    const d = diagnostics(r.stderr, file);
    assert.ok(d.length >= 1, `no FILE:LINE:COLUMN diagnostics on stderr: ${r.stderr}`);
    const hit = d.find((x) => x.line === pos.line && x.column === pos.column);
    assert.ok(hit, `expected ${file}:${pos.line}:${pos.column}: ... on stderr, got:\n${r.stderr}`);
    assert.match(hit.reason, /max_bdy/);
  });

  test('an unknown top-level key is reported at line:1 column:1', async () => {
    const lines = ['servr:', '  workers: 2', ...validLines(ports).slice(3)];
    const file = writeConfig(`${lines.join('\n')}\n`, { dir, name: 'unknown-top.yaml' });
    const r = await check(file);
    assert.equal(r.code, 1, r.stderr);
    const d = diagnostics(r.stderr, file);
    assert.ok(d.some((x) => x.line === 1 && x.column === 1 && /servr/.test(x.reason)), r.stderr);
  });

  test('a route naming an unknown upstream', async () => {
    const lines = validLines(ports).map((l) => (l === '    upstream: app' ? '    upstream: nope' : l));
    const file = writeConfig(`${lines.join('\n')}\n`, { dir, name: 'unknown-upstream.yaml' });
    const pos = positionOf(lines, 'upstream: nope');
    const r = await check(file);
    assert.equal(r.code, 1, r.stderr);
    const d = diagnostics(r.stderr, file);
    const hit = d.find((x) => /nope/.test(x.reason));
    assert.ok(hit, `no diagnostic naming "nope": ${r.stderr}`);
    assert.equal(hit.line, pos.line, `line of the diagnostic: ${hit.text}`);
  });

  test('a missing certificate file', async () => {
    const missing = path.join(dir, 'does-not-exist.crt');
    const lines = validLines(ports);
    lines.splice(8, 0, '    tls:', `      cert: "${missing}"`, `      key: "${certs.key}"`);
    const file = writeConfig(`${lines.join('\n')}\n`, { dir, name: 'missing-cert.yaml' });
    const pos = positionOf(lines, 'cert:');
    const r = await check(file);
    assert.equal(r.code, 1, r.stderr);
    const d = diagnostics(r.stderr, file);
    const hit = d.find((x) => x.reason.includes('does-not-exist.crt'));
    assert.ok(hit, `no diagnostic naming the missing file: ${r.stderr}`);
    assert.equal(hit.line, pos.line, `line of the diagnostic: ${hit.text}`);
  });

  test('a bad duration "10 seconds"', async () => {
    const lines = validLines(ports).map((l) => (l === '  drain_timeout: 5s' ? '  drain_timeout: 10 seconds' : l));
    const file = writeConfig(`${lines.join('\n')}\n`, { dir, name: 'bad-duration.yaml' });
    const r = await check(file);
    assert.equal(r.code, 1, r.stderr);
    const d = diagnostics(r.stderr, file);
    const hit = d.find((x) => x.line === 3);
    assert.ok(hit, `no diagnostic on line 3 (drain_timeout): ${r.stderr}`);
  });

  test('two errors in one file are both reported', async () => {
    const lines = validLines(ports).map((l) => (l === '    upstream: app' ? '    upstream: nope' : l));
    lines.splice(2, 0, '  wrokers: 3'); // line 3, column 3
    const file = writeConfig(`${lines.join('\n')}\n`, { dir, name: 'two-errors.yaml' });
    const up = positionOf(lines, 'upstream: nope');
    const r = await check(file);
    assert.equal(r.code, 1, r.stderr);
    const d = diagnostics(r.stderr, file);
    assert.ok(d.some((x) => x.line === 3 && x.column === 3 && /wrokers/.test(x.reason)), `unknown key missing:\n${r.stderr}`);
    assert.ok(d.some((x) => x.line === up.line && /nope/.test(x.reason)), `unknown upstream missing:\n${r.stderr}`);
    assert.ok(!r.stdout.includes(': OK'), 'says OK despite errors');
  });

  test('a file that does not exist fails with exit 1', async () => {
    const file = path.join(dir, 'nope.yaml');
    assert.ok(!fs.existsSync(file));
    const r = await check(file);
    assert.equal(r.code, 1, `stdout: ${r.stdout} stderr: ${r.stderr}`);
    assert.ok(r.stderr.includes(file), r.stderr);
  });
});
