// `portcullis policy lint` end to end: findings as FILE:LINE:COLUMN lines or JSON, exit codes
// (0 clean, 1 errors or --strict warnings or a config that does not load, 2 usage), the
// default ./portcullis.yaml, and the --audit least-privilege report.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runGateway, writeConfig, tempDir, rmTemp, freePorts, ROOT } from '../support/harness.mjs';

const FIXTURES = path.join(ROOT, 'tests', 'fixtures', 'policy_lint');

const lint = (args, options) => runGateway(['policy', 'lint', ...args], options);

/** stdout lines FILE:LINE:COLUMN: SEVERITY: [code] message, parsed. */
function findings(stdout) {
  const out = [];
  for (const line of stdout.split('\n')) {
    const m = /^(.+):(\d+):(\d+): (error|warning|info): \[([a-z-]+)\] (.+)$/.exec(line);
    if (m) {
      out.push({ file: m[1], line: Number(m[2]), column: Number(m[3]), severity: m[4], code: m[5], message: m[6] });
    }
  }
  return out;
}

/** The summary line "N errors, M warnings, K notes" as numbers. */
function summary(text) {
  const m = /^(\d+) errors?, (\d+) warnings?, (\d+) notes?$/m.exec(text);
  assert.ok(m, `no summary line in:\n${text}`);
  return { errors: Number(m[1]), warnings: Number(m[2]), notes: Number(m[3]) };
}

describe('policy lint', { timeout: 60_000 }, () => {
  let dir;
  let ports;
  // A config written line by line so tests know positions: one warning (a bearer route with
  // no policy at line 12) and an explicit grant list (line 20) for the audit report.
  const lines = () => [
    'listeners:', //                                                        1
    `  - {name: plain, address: "127.0.0.1:${ports[0]}"}`, //               2
    'identity_providers:', //                                               3
    '  - {name: corp, issuer: "https://idp.example.com", audiences: [api]}', // 4
    'upstreams:', //                                                        5
    `  - {name: app, endpoints: ["127.0.0.1:${ports[1]}"]}`, //             6
    'routes:', //                                                           7
    '  - name: health', //                                                  8
    '    match: {path: /health}', //                                        9
    '    upstream: app', //                                                 10
    '    auth: public', //                                                  11
    '  - name: locked', //                                                  12
    '    match: {path_prefix: /locked}', //                                 13
    '    upstream: app', //                                                 14
    '    auth: bearer', //                                                  15
    '  - name: api', //                                                     16
    '    match: {path_prefix: /api}', //                                    17
    '    upstream: app', //                                                 18
    '    auth: bearer', //                                                  19
    '    policy: {allow: {or: [{subject: {in: [alice, carol]}}, {group: {has: ops}}]}}', // 20
  ];
  let warnConfig;

  before(async () => {
    dir = tempDir('portcullis-lint-');
    ports = await freePorts(2);
    warnConfig = writeConfig(`${lines().join('\n')}\n`, { dir, name: 'warn.yaml' });
  });
  after(() => rmTemp(dir));

  test('--help prints usage and exits 0', async () => {
    const r = await lint(['--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /usage: portcullis policy lint/);
    assert.match(r.stdout, /--audit/);
  });

  test('a clean config: no findings, exit 0, also with --strict', async () => {
    const config = path.join(FIXTURES, 'clean', 'portcullis.yaml');
    for (const extra of [[], ['--strict']]) {
      const r = await lint(['--config', config, ...extra]);
      assert.equal(r.code, 0, `stdout: ${r.stdout} stderr: ${r.stderr}`);
      assert.deepEqual(findings(r.stdout), []);
      assert.deepEqual(summary(r.stdout), { errors: 0, warnings: 0, notes: 0 });
    }
  });

  test('warnings only: exit 0, and 1 with --strict; each finding has file:line:column', async () => {
    const r = await lint(['--config', warnConfig]);
    assert.equal(r.code, 0, `stdout: ${r.stdout} stderr: ${r.stderr}`);
    const f = findings(r.stdout);
    assert.deepEqual(f.map((x) => [x.file, x.line, x.column, x.severity, x.code]),
      [[warnConfig, 12, 5, 'warning', 'route-without-policy']], r.stdout);
    assert.match(f[0].message, /route 'locked' requires authentication but has no policy/);
    assert.deepEqual(summary(r.stdout), { errors: 0, warnings: 1, notes: 0 });

    const strict = await lint(['--strict', '--config', warnConfig]);
    assert.equal(strict.code, 1, `stdout: ${strict.stdout} stderr: ${strict.stderr}`);
    assert.equal(findings(strict.stdout).length, 1);
  });

  test('the risky fixture: every kind of finding, and an error exits 1', async () => {
    const r = await lint(['--config', path.join(FIXTURES, 'risky', 'portcullis.yaml')]);
    assert.equal(r.code, 1, `stdout: ${r.stdout} stderr: ${r.stderr}`);
    const f = findings(r.stdout);
    const codes = new Set(f.map((x) => x.code));
    for (const code of ['route-without-policy', 'never-matches', 'unused-policy', 'policy-error',
      'method-not-routed', 'public-email-domain', 'shadowed-rule', 'duplicate-rule',
      'shadowed-by-deny', 'allow-any-identity', 'match-all-pattern']) {
      assert.ok(codes.has(code), `no ${code} in:\n${r.stdout}`);
    }
    const orders = f.filter((x) => x.file.endsWith(path.join('policies', 'orders.yaml')));
    const at = (line, code) => orders.find((x) => x.line === line && x.code === code);
    assert.ok(at(12, 'duplicate-rule'), r.stdout);
    assert.equal(at(12, 'duplicate-rule').column, 7);
    assert.match(at(15, 'shadowed-by-deny').message, /identical to deny\[0\] \(line 22\)/);
    assert.match(at(18, 'allow-any-identity').message, /authenticated_user: true` alone/);
    assert.match(at(11, 'never-matches').message, /no SPIFFE id/);
    const broken = f.find((x) => x.code === 'policy-error');
    assert.equal(broken.severity, 'error');
    assert.deepEqual([path.basename(broken.file), broken.line, broken.column], ['broken.yaml', 3, 3]);
    assert.ok(!f.some((x) => x.file.endsWith('orders.test.yaml')), 'a policy test table is not a policy');
    assert.deepEqual(summary(r.stdout), {
      errors: f.filter((x) => x.severity === 'error').length,
      warnings: f.filter((x) => x.severity === 'warning').length,
      notes: f.filter((x) => x.severity === 'info').length,
    });
  });

  test('--format json prints one array of findings; the summary goes to stderr', async () => {
    const r = await lint(['--format', 'json', '--config', warnConfig]);
    assert.equal(r.code, 0, r.stderr);
    const parsed = JSON.parse(r.stdout);
    assert.ok(Array.isArray(parsed));
    assert.deepEqual(parsed, [{
      severity: 'warning', file: warnConfig, line: 12, column: 5, code: 'route-without-policy',
      message: parsed[0].message,
    }]);
    assert.match(parsed[0].message, /locked/);
    assert.deepEqual(summary(r.stderr), { errors: 0, warnings: 1, notes: 0 });
  });

  test('without --config, ./portcullis.yaml is linted; without one, a usage error', async () => {
    const r = await lint([], { cwd: path.join(FIXTURES, 'risky') });
    assert.equal(r.code, 1, `stdout: ${r.stdout} stderr: ${r.stderr}`);
    const f = findings(r.stdout);
    assert.ok(f.some((x) => x.file === 'portcullis.yaml' && x.line === 14 && x.code === 'route-without-policy'), r.stdout);
    assert.ok(f.some((x) => x.file === path.join('policies', 'orders.yaml')), `paths relative to the working directory:\n${r.stdout}`);

    const empty = tempDir('portcullis-lint-empty-');
    try {
      const none = await lint([], { cwd: empty });
      assert.equal(none.code, 2, `stdout: ${none.stdout} stderr: ${none.stderr}`);
      assert.match(none.stderr, /portcullis\.yaml/);
      assert.match(none.stderr, /usage/);
    } finally {
      rmTemp(empty);
    }
  });

  for (const args of [['--bogus'], ['--audit'], ['--audit', '--strict'], ['--format', 'xml'], ['--config'], ['extra.yaml']]) {
    test(`usage error: policy lint ${args.join(' ')} exits 2`, async () => {
      const r = await lint([...args, ...(args[0] === '--config' ? [] : ['--config', warnConfig])]);
      assert.equal(r.code, 2, `stdout: ${r.stdout} stderr: ${r.stderr}`);
      assert.match(r.stderr, /usage: portcullis policy lint/);
    });
  }

  test('a config that does not load: its errors as file:line:column, exit 1', async () => {
    const bad = lines();
    bad[19] = '    policy: {allow: {groups: {has: ops}}}';
    const file = writeConfig(`${bad.join('\n')}\n`, { dir, name: 'bad.yaml' });
    const r = await lint(['--config', file]);
    assert.equal(r.code, 1, `stdout: ${r.stdout} stderr: ${r.stderr}`);
    const m = new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:20:(\\d+): .*groups`, 'm').exec(r.stderr);
    assert.ok(m, `no ${file}:20:COLUMN: error on stderr:\n${r.stderr}`);
    assert.equal(r.stdout, '');

    const json = await lint(['--format', 'json', '--config', file]);
    assert.equal(json.code, 1);
    const parsed = JSON.parse(json.stdout);
    assert.equal(parsed[0].severity, 'error');
    assert.equal(parsed[0].code, 'config-error');
    assert.equal(parsed[0].line, 20);
  });

  test('--audit: grants with no allowed call, the audit window, bad lines', async () => {
    const audit = path.join(dir, 'access.jsonl');
    const other = path.join(dir, 'access-2.jsonl');
    fs.writeFileSync(audit, [
      JSON.stringify({ time: '2024-05-01T08:00:00.000000Z', route: 'api', decision: 'allow', subject: 'alice', groups: [] }),
      '',
      JSON.stringify({ time: '2024-05-01T09:00:00.000000Z', route: 'api', decision: 'deny', subject: 'carol', groups: ['ops'] }),
      '{"time": "2024-05-01T10:00:00Z", broken',
      '',
    ].join('\n'));
    fs.writeFileSync(other, `${JSON.stringify({ time: '2024-05-03T12:00:00.000000Z', route: 'locked', decision: 'deny', subject: 'dave', groups: [] })}\n`);
    const r = await lint(['--config', warnConfig, '--audit', audit, other]);
    assert.equal(r.code, 0, `stdout: ${r.stdout} stderr: ${r.stderr}`);
    const f = findings(r.stdout);
    const grants = f.filter((x) => x.code === 'unused-grant');
    assert.deepEqual(grants.map((x) => [x.file, x.line, x.severity]),
      [[warnConfig, 20, 'info'], [warnConfig, 20, 'info']], r.stdout);
    assert.match(grants[0].message, /^route 'api': subject 'carol' is granted but made no allowed call/);
    assert.match(grants[1].message, /^route 'api': group 'ops' is granted/);
    assert.ok(!grants.some((x) => /alice/.test(x.message)), 'alice made an allowed call');
    const badLine = f.find((x) => x.code === 'audit-bad-line');
    assert.deepEqual([badLine?.file, badLine?.line, badLine?.severity], [audit, 4, 'warning'], r.stdout);
    assert.match(r.stdout, /^audit window: 2024-05-01T08:00:00\.000000Z \.\. 2024-05-03T12:00:00\.000000Z \(3 records from 2 files\)$/m);
    assert.deepEqual(summary(r.stdout), { errors: 0, warnings: 2, notes: 2 });

    const strict = await lint(['--config', warnConfig, '--strict', '--audit', audit]);
    assert.equal(strict.code, 1, 'the bad line and the route without policy are warnings');
  });

  test('--audit with a file that cannot be read exits 1', async () => {
    const missing = path.join(dir, 'nope.jsonl');
    const r = await lint(['--config', warnConfig, '--audit', missing]);
    assert.equal(r.code, 1, `stdout: ${r.stdout} stderr: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: error: \\[audit-unreadable\\]`, 'm'));
  });
});
