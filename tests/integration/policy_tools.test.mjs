// `portcullis policy test` and `portcullis policy explain`, end to end on the real binary:
// table-test suites (passing, failing, unloadable) including the repository's example for
// policies/orders.yaml, and explanations of allow / deny / gated / unknown-route requests.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, runGateway, tempDir, rmTemp } from '../support/harness.mjs';

const FIXTURES = path.join(ROOT, 'tests', 'fixtures', 'policy_test');
const GATEWAY = path.join(FIXTURES, 'gateway.yaml');
const ADMIN_POLICY = path.join(FIXTURES, 'policies', 'admin.yaml');

/** stdout lines starting with `prefix`. */
function linesStarting(stdout, prefix) {
  return stdout.split('\n').filter((l) => l.startsWith(prefix));
}

describe('policy test', { timeout: 60_000 }, () => {
  let dir;
  before(() => { dir = tempDir('portcullis-policy-test-'); });
  after(() => rmTemp(dir));

  test('a passing directory of suites: a PASS line per case, PASS: n/n, exit 0', async () => {
    const r = await runGateway(['policy', 'test', path.join(FIXTURES, 'pass')]);
    assert.equal(r.code, 0, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    const pass = linesStarting(r.stdout, 'PASS ');
    assert.ok(pass.length >= 20, r.stdout);
    assert.deepEqual(linesStarting(r.stdout, 'FAIL'), []);
    assert.ok(pass.some((l) => l.startsWith(`PASS ${path.join(FIXTURES, 'pass', 'admin_policy_test.yaml')}:5: admin on the corporate network is allowed`)), r.stdout);
    assert.ok(r.stdout.includes(`\nPASS: ${pass.length}/${pass.length}\n`), r.stdout);
  });

  test('the repository example policies/orders_test.yaml passes (file and directory)', async () => {
    const file = path.join(ROOT, 'policies', 'orders_test.yaml');
    const r = await runGateway(['policy', 'test', file]);
    assert.equal(r.code, 0, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.match(r.stdout, /^PASS .*orders_test\.yaml:\d+: a contractor is denied whatever the scopes/m);
    assert.match(r.stdout, /\nPASS: 7\/7\n/);

    const all = await runGateway(['policy', 'test', path.join(ROOT, 'policies')]);
    assert.equal(all.code, 0, `stdout: ${all.stdout}\nstderr: ${all.stderr}`);
    assert.match(all.stdout, /\nPASS: (\d+)\/\1\n/);
  });

  test('a failing suite: FAIL lines with expected vs actual and the trace, exit 1', async () => {
    const file = path.join(FIXTURES, 'fail', 'mixed_test.yaml');
    const r = await runGateway(['policy', 'test', file]);
    assert.equal(r.code, 1, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.ok(r.stdout.includes(`PASS ${file}:4: admin on the corporate network is allowed\n`), r.stdout);
    assert.ok(r.stdout.includes(
      `FAIL ${file}:9: wrongly expects an admin from the internet to be allowed\n` +
      '    expected: allow\n' +
      `    actual:   deny by ${ADMIN_POLICY}#default (no rule matched)\n`), r.stdout);
    assert.ok(r.stdout.includes('✗ source_ip: {in: [10.0.0.0/8, "fd00::/8"]}   source_ip = "198.51.100.7"   (7:11)'), r.stdout);
    assert.ok(r.stdout.includes(`FAIL ${file}:14: right decision, wrong rule\n    expected: deny by deny[1]\n`), r.stdout);
    assert.match(r.stdout, /\nPASS: 1\/3\nFAIL: 2\/3\n/);
  });

  test('unloadable files: FILE:LINE:COLUMN: reason on stderr, exit 1, other files still run', async () => {
    const typo = path.join(FIXTURES, 'bad', 'unknown_key_test.yaml');
    const badPolicy = path.join(FIXTURES, 'bad', 'bad_policy_test.yaml');
    const good = path.join(ROOT, 'policies', 'orders_test.yaml');
    const r = await runGateway(['policy', 'test', typo, badPolicy, good]);
    assert.equal(r.code, 1, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.ok(r.stderr.includes(`${typo}:6:5: unknown key \`requets\` in a case`), r.stderr);
    assert.ok(r.stderr.includes(`${badPolicy}:3:5: unknown operator or criterion \`groups\``), r.stderr);
    assert.match(r.stdout, /\nPASS: 7\/7\n/);
    assert.match(r.stdout, /ERROR: 2 files could not be loaded/);
  });

  test('a YAML syntax error and a missing file are load errors with positions', async () => {
    const broken = path.join(dir, 'broken_test.yaml');
    fs.writeFileSync(broken, 'policy: {allow: {group: {has: a}}}\ncases:\n  - name: [unclosed\n');
    const missing = path.join(dir, 'missing_test.yaml');
    const r = await runGateway(['policy', 'test', broken, missing]);
    assert.equal(r.code, 1, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^${broken.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: `, 'm'));
    assert.ok(r.stderr.includes(`${missing}: cannot read the table test file`), r.stderr);
  });

  test('usage: no files exits 2, --help exits 0', async () => {
    const none = await runGateway(['policy', 'test']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /usage: portcullis policy test/);
    const help = await runGateway(['policy', 'test', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /docs\/policy-testing\.md/);
  });
});

describe('policy explain', { timeout: 60_000 }, () => {
  let dir;
  let ada;
  let contractor;
  before(() => {
    dir = tempDir('portcullis-policy-explain-');
    ada = path.join(dir, 'ada.json');
    fs.writeFileSync(ada, JSON.stringify({
      iss: 'https://idp.corp.example', sub: 'ada', email: 'ada@example.com',
      realm_access: { roles: ['admins'] }, exp: 4102444800,
    }));
    contractor = path.join(dir, 'contractor.json');
    fs.writeFileSync(contractor, JSON.stringify({
      iss: 'https://idp.corp.example', sub: 'cy', email: 'cy@contractors.example.com',
      realm_access: { roles: ['admins'] },
    }));
  });
  after(() => rmTemp(dir));

  const explain = (args, options) => runGateway(['policy', 'explain', '--config', GATEWAY, ...args], options);

  test('allowed: exit 0, the trace criterion by criterion, the decision and the shadow', async () => {
    const r = await explain(['--route', 'admin', '--identity', ada, '--method', 'POST',
      '--path', '/admin/users', '--source-ip', '10.1.2.3']);
    assert.equal(r.code, 0, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.match(r.stdout, /^route: +admin \(auth: bearer\)$/m);
    // The loader names a policy by its path (relative or resolved): match its end.
    assert.match(r.stdout, /^policy: +\S*policies\/admin\.yaml \(version [0-9a-f]{16}\)$/m);
    assert.match(r.stdout, /mapped with the claims mapping of provider 'corp'/);
    assert.ok(r.stdout.includes('  deny[0]  no match\n    ✗ domain: {is: contractors.example.com}   domain = "example.com"   (13:7)\n'), r.stdout);
    assert.ok(r.stdout.includes('  allow[0]  MATCH\n    ✓ and   (5:7)\n      ✓ group: {has: admins}   groups = ["admins"]   (6:11)\n'), r.stdout);
    assert.ok(r.stdout.includes('      ✓ source_ip: {in: [10.0.0.0/8, "fd00::/8"]}   source_ip = "10.1.2.3"   (7:11)\n'), r.stdout);
    assert.ok(r.stdout.includes('  allow[1]  not evaluated\n'), r.stdout);
    assert.match(r.stdout, /^decision: ALLOW by \S*policies\/admin\.yaml#allow\[0\] \(matched allow rule\)$/m);
    assert.match(r.stdout, /^shadow decision: would DENY by .*admin_strict\.yaml#default \(no rule matched\)$/m);
  });

  test('denied: exit 1 naming the deny rule; the identity can come from stdin', async () => {
    const r = await explain(['--route', 'admin', '--identity', '-', '--method', 'GET', '--path', '/admin'],
      { input: fs.readFileSync(contractor, 'utf8') });
    assert.equal(r.code, 1, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.ok(r.stdout.includes('  deny[0]  MATCH\n    ✓ domain: {is: contractors.example.com}   domain = "contractors.example.com"   (13:7)\n'), r.stdout);
    assert.match(r.stdout, /^decision: DENY by \S*policies\/admin\.yaml#deny\[0\] \(matched deny rule\)$/m);
  });

  test('--format json describes the same decision for machines', async () => {
    const r = await explain(['--route', 'admin', '--identity', contractor, '--method', 'GET',
      '--path', '/admin/../admin/x', '--format', 'json']);
    assert.equal(r.code, 1, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    const out = JSON.parse(r.stdout);
    assert.equal(out.route, 'admin');
    assert.equal(out.status, 403);
    assert.equal(out.request.path, '/admin/x');
    assert.equal(out.identity.provider, 'corp');
    assert.deepEqual(out.identity.groups, ['admins']);
    assert.equal(out.decision.decision, 'deny');
    assert.match(out.decision.rule, /policies\/admin\.yaml#deny\[0\]$/);
    assert.equal(out.policy.rules[0].rule, 'deny[0]');
    assert.equal(out.policy.rules[0].matched, true);
    assert.equal(out.policy.rules[0].node.input.value, 'contractors.example.com');
    assert.equal(out.policy.rules[2].evaluated, false);
    assert.equal(out.shadow.decision.decision, 'allow');
  });

  test('anonymous on a bearer route: refused before the policy (401), exit 1', async () => {
    const r = await explain(['--route', 'admin', '--anonymous', '--method', 'GET', '--path', '/admin']);
    assert.equal(r.code, 1, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.match(r.stdout, /^gate: +no identity: the route needs a bearer token \(401/m);
    assert.match(r.stdout, /^decision: DENY by authentication \(a bearer token is required\)$/m);
    assert.doesNotMatch(r.stdout, /^trace:/m);
  });

  test('a public route without a policy allows everyone, exit 0', async () => {
    const r = await explain(['--route', 'open', '--anonymous', '--method', 'GET', '--path', '/anything']);
    assert.equal(r.code, 0, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.match(r.stdout, /^decision: ALLOW by public \(public route\)$/m);
  });

  test('an unknown route exits 2 and lists the routes', async () => {
    const r = await explain(['--route', 'nope', '--anonymous', '--method', 'GET', '--path', '/']);
    assert.equal(r.code, 2, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.match(r.stderr, /no route named 'nope' \(routes: admin, reports, locked, status, open\)/);
    assert.equal(r.stdout, '');
  });

  test('usage and input errors exit 2', async () => {
    const noRoute = await explain(['--anonymous', '--method', 'GET', '--path', '/']);
    assert.equal(noRoute.code, 2);
    assert.match(noRoute.stderr, /needs --route NAME/);
    const both = await explain(['--route', 'admin', '--anonymous', '--identity', ada, '--method', 'GET', '--path', '/']);
    assert.equal(both.code, 2);
    const notJson = path.join(dir, 'not.json');
    fs.writeFileSync(notJson, '{"sub": ');
    const badJson = await explain(['--route', 'admin', '--identity', notJson, '--method', 'GET', '--path', '/admin']);
    assert.equal(badJson.code, 2);
    assert.match(badJson.stderr, /not valid JSON/);
    const badIp = await explain(['--route', 'admin', '--anonymous', '--method', 'GET', '--path', '/', '--source-ip', 'x']);
    assert.equal(badIp.code, 2);
    const help = await runGateway(['policy', 'explain', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--format text\|json/);
  });
});
