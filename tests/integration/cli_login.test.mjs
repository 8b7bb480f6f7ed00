// Integration test of `portcullis login` (OAuth 2.0 Device Authorization Grant, RFC 8628)
// against the real OIDC fixture (tests/support/oidc/, public client `portcullis-cli`), with
// headless Chromium (tests/support/browser.mjs) playing the user, and a real gateway + echo
// upstream checking that the saved token is usable.
//
// Coverage:
//  1. happy path as alice (--resource api://mesh --scope 'openid email groups' --output
//     DIR/tok/token.json): exactly one "To sign in, open <verification_uri> and enter the code
//     <user_code>" line on stderr (the fixture's /device and an XXXX-XXXX code) plus "Or open
//     <verification_uri_complete>"; alice approves in Chromium by typing the printed code;
//     exit 0; "Signed in. Token saved to <path> (expires in <N>s)"; the file is 0600, the
//     directory the command created 0700; the JSON has issuer, client_id, token_type Bearer,
//     access_token (alice, aud api://mesh, group engineering), expires_at in the future and
//     consistent with N; the ID token (if saved) carries only the asked scopes (no profile
//     claims); no token (nor any JWT segment of one) on stdout/stderr; nothing written to the
//     default location when --output is given.
//  2. that access token through a gateway bearer route (policy: group engineering): 200 and the
//     upstream sees x-portcullis-user alice; controls: no token -> 401, a valid
//     client-credentials token without the group -> 403.
//  3. default location, in parallel flows approved through the printed verification_uri_complete:
//     XDG_CONFIG_HOME set -> $XDG_CONFIG_HOME/portcullis/token.json (0600, dir created 0700);
//     XDG_CONFIG_HOME unset -> $HOME/.config/portcullis/token.json
//     (0600); the default --scope is "openid email profile" (ID token has name, no
//     groups); an existing 0644 --output file with stale content is replaced by a 0600 file
//     (--resource api://other reaches the IdP: aud api://other).
//  4. the user aborts on the IdP's device confirm page -> exit 1, stderr mentions "refused",
//     no token file.
//  5. --timeout 3s and nobody approves -> exit 1 after >= ~3 s (well before the 600 s device
//     code lifetime), stderr mentions "timed out" or "expired", no token file.
//  6. usage: no args / missing --issuer / missing --client-id / unknown option -> exit 2 and no
//     file written; --help -> exit 0 with usage naming --issuer and --client-id.
//  7. discovery checks: an IdP whose discovery `issuer` differs from --issuer, or without
//     device_authorization_endpoint, is refused (non-zero exit, no sign-in prompt, no device
//     authorization request reaches the IdP).
//
// The fixture's device polling interval is 5 s (no `interval` in its answer: the RFC default),
// so there are 5 device flows, 3 of them concurrent: about 30-40 s in all.
//
//   node --test tests/integration/cli_login.test.mjs      # needs build/portcullis, /usr/bin/chromium
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {
  BIN, run, tempDir, rmTemp, startGateway, startUpstream,
} from '../support/harness.mjs';
import { bearerConfig, providerEntry, call, waitForAccept } from '../support/bearer.mjs';
import { startProvider, decodeJwt, SELECTORS, CLI_CLIENT_ID } from '../support/oidc/client.mjs';
import { launchBrowser, approveDevice, signIn, screenshot } from '../support/browser.mjs';

const SIGN_IN_LINE = /^To sign in, open (\S+) and enter the code (\S+)$/gm;
const OR_OPEN_LINE = /^Or open (\S+)$/m;
const SIGNED_IN_LINE = /^Signed in\. Token saved to (.+) \(expires in (\d+)s\)$/m;

// ---------------------------------------------------------------------------------------
// `portcullis login` as a child process

const liveLogins = new Set();
process.on('exit', () => {
  for (const p of liveLogins) { try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ } }
});

/**
 * Spawns `portcullis login ARGS`. env: merged over process.env; unset: names removed.
 * Returns {proc, stdout(), stderr(), output(), exited, waitForStderr(re, ms), waitExit(ms), kill()}.
 */
function startLogin(args, { env = {}, unset = [] } = {}) {
  const e = { ...process.env, ...env };
  for (const k of unset) delete e[k];
  const proc = spawn(BIN, ['login', ...args], { env: e, stdio: ['ignore', 'pipe', 'pipe'] });
  liveLogins.add(proc);
  let stdout = '';
  let stderr = '';
  let exitInfo = null;
  const waiters = new Set();
  const notify = () => { for (const w of waiters) w(); };
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stdout.on('data', (c) => { stdout += c; notify(); });
  proc.stderr.on('data', (c) => { stderr += c; notify(); });
  const started = Date.now();
  const exited = new Promise((resolve) => {
    const done = (info) => {
      if (exitInfo) return;
      liveLogins.delete(proc);
      exitInfo = { ...info, elapsedMs: Date.now() - started };
      notify();
      resolve(exitInfo);
    };
    proc.on('close', (code, signal) => done({ code, signal }));
    proc.on('error', (err) => done({ code: null, signal: null, error: String(err) }));
  });
  const describeState = () => `\n--- stderr ---\n${stderr}\n--- stdout ---\n${stdout}`;
  const handle = {
    proc,
    stdout: () => stdout,
    stderr: () => stderr,
    output: () => `${stdout}\n${stderr}`,
    exited,
    /** Resolves the match of re on stderr; rejects when the process exits first or after ms. */
    waitForStderr(re, ms = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          re.lastIndex = 0;
          const m = re.exec(stderr);
          if (m) { done(); resolve(m); return; }
          if (exitInfo) { done(); reject(new Error(`login exited (${JSON.stringify(exitInfo)}) before stderr matched ${re}${describeState()}`)); }
        };
        const timer = setTimeout(() => { done(); reject(new Error(`stderr did not match ${re} within ${ms} ms${describeState()}`)); }, ms);
        const done = () => { clearTimeout(timer); waiters.delete(check); };
        waiters.add(check);
        check();
      });
    },
    /** Resolves {code, signal, elapsedMs}; rejects (and kills) when it runs longer than ms. */
    async waitExit(ms = 20_000) {
      let timer;
      const t = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`login still running after ${ms} ms${describeState()}`)), ms);
      });
      try {
        return await Promise.race([exited, t]);
      } catch (e) {
        handle.kill();
        throw e;
      } finally {
        clearTimeout(timer);
      }
    },
    kill() { if (!exitInfo) { try { process.kill(proc.pid, 'SIGKILL'); } catch { /* gone */ } } },
  };
  return handle;
}

/** The verification_uri and user_code from the single "To sign in" line (asserts there is one). */
async function signInPrompt(login) {
  await login.waitForStderr(new RegExp(SIGN_IN_LINE.source, 'm'));
  const lines = [...login.stderr().matchAll(SIGN_IN_LINE)];
  assert.equal(lines.length, 1, `exactly one "To sign in" line${login.stderr()}`);
  const [, verificationUri, userCode] = lines[0];
  return { verificationUri, userCode };
}

/** The verification_uri_complete of the "Or open" line (the fixture always sends one). */
async function completeUri(login, { verificationUri, userCode }) {
  const [, uri] = await login.waitForStderr(OR_OPEN_LINE, 5000);
  const u = new URL(uri);
  assert.equal(`${u.origin}${u.pathname}`, verificationUri, uri);
  assert.equal(u.searchParams.get('user_code'), userCode, uri);
  return uri;
}

/**
 * Opens verification_uri_complete (the code is pre-filled: the confirm page comes first),
 * checks the code shown, then approves (signing in as username) or aborts.
 */
async function answerComplete(browser, uri, userCode, { username = 'alice', abort = false, shot } = {}) {
  const page = await browser.newPage();
  try {
    await page.goto(uri);
    await page.waitForSelector(SELECTORS.deviceConfirmPage);
    assert.equal((await page.textContent('#user-code')).trim(), userCode);
    if (abort) {
      await Promise.all([page.waitForNavigation(), page.click(SELECTORS.deviceAbort)]);
      await page.waitForSelector(SELECTORS.deviceCodePage); // "The sign-in request was interrupted."
    } else {
      await Promise.all([page.waitForNavigation(), page.click(SELECTORS.deviceConfirm)]);
      if (await page.$(SELECTORS.loginPage)) await signIn(page, { username });
      await page.waitForSelector(SELECTORS.deviceSuccessPage);
    }
    if (shot) await screenshot(page, shot);
  } finally {
    await page.context().close();
  }
}

const modeOf = (p) => fs.statSync(p).mode & 0o777;
const octal = (m) => `0${m.toString(8)}`;
const nowSec = () => Math.floor(Date.now() / 1000);

/** Everything a saved token file must hold; returns the parsed JSON. */
function checkTokenFile(file, { idp, aud = 'api://mesh', sub = 'alice' }) {
  assert.ok(fs.existsSync(file), `token file ${file} exists`);
  assert.equal(octal(modeOf(file)), '0600', `mode of ${file}`);
  const saved = JSON.parse(fs.readFileSync(file, 'utf8'));
  assert.equal(saved.issuer, idp.issuer);
  assert.equal(saved.client_id, CLI_CLIENT_ID);
  assert.match(saved.token_type, /^bearer$/i);
  assert.equal(typeof saved.access_token, 'string');
  assert.equal(typeof saved.expires_at, 'number');
  assert.ok(Number.isInteger(saved.expires_at), `expires_at ${saved.expires_at} is unix seconds`);
  assert.ok(saved.expires_at > nowSec(), `expires_at ${saved.expires_at} in the future (now ${nowSec()})`);
  assert.ok(saved.expires_at <= nowSec() + 300 + 60, `expires_at ${saved.expires_at} within the fixture's 300 s ttl`);
  for (const k of ['refresh_token', 'id_token', 'scope']) {
    if (saved[k] !== undefined) assert.equal(typeof saved[k], 'string', k);
  }
  const at = decodeJwt(saved.access_token).payload;
  assert.equal(at.sub, sub);
  assert.deepEqual([at.aud].flat(), [aud]);
  assert.equal(at.client_id, CLI_CLIENT_ID);
  assert.equal(at.iss, idp.issuer);
  return saved;
}

/** No token of `saved` (nor its JWT payload/signature segments) appears in the output. */
function assertNoSecrets(login, saved) {
  const out = login.output();
  for (const k of ['access_token', 'refresh_token', 'id_token']) {
    const v = saved[k];
    if (!v) continue;
    assert.ok(!out.includes(v), `${k} printed`);
    for (const seg of v.split('.').slice(1)) {
      if (seg.length >= 16) assert.ok(!out.includes(seg), `a segment of ${k} printed`);
    }
  }
}

/** The "Signed in." line: path and N (checked against expires_at). */
function checkSignedIn(login, file, saved) {
  const m = SIGNED_IN_LINE.exec(login.stderr());
  assert.ok(m, `"Signed in. Token saved to ... (expires in Ns)" on stderr${login.stderr()}`);
  assert.equal(m[1], file);
  const n = Number(m[2]);
  assert.ok(n > 0 && n <= 300, `expires in ${n}s`);
  assert.ok(Math.abs(saved.expires_at - nowSec() - n) <= 30, `N=${n} vs expires_at ${saved.expires_at} (now ${nowSec()})`);
}

/** Lists every file under dir (relative paths), for "nothing written here" checks. */
function filesUnder(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => !d.isDirectory())
    .map((d) => path.relative(dir, path.join(d.parentPath ?? d.path, d.name)));
}

// ---------------------------------------------------------------------------------------

describe('portcullis login (device authorization grant) with the fixture IdP and Chromium', { timeout: 90_000 }, () => {
  let idp;
  let browser;
  let root; // temp dir of this file
  let aliceToken; // from test 1, for test 2
  let aliceFile; // from test 1, for test 8
  const logins = [];
  const login = (args, opts) => { const l = startLogin(args, opts); logins.push(l); return l; };
  /** A sandbox HOME and XDG_CONFIG_HOME so no run can touch the real user's config. */
  const sandbox = (name) => {
    const dir = path.join(root, name);
    fs.mkdirSync(path.join(dir, 'home'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'xdg'), { recursive: true });
    return { dir, home: path.join(dir, 'home'), xdg: path.join(dir, 'xdg') };
  };
  const sandboxEnv = (s) => ({ HOME: s.home, XDG_CONFIG_HOME: s.xdg });

  before(async () => {
    assert.ok(fs.existsSync(BIN), `gateway binary ${BIN}`);
    root = tempDir('portcullis-login-');
    [idp, browser] = await Promise.all([startProvider({}), launchBrowser()]);
  });

  after(async () => {
    for (const l of logins) l.kill();
    await Promise.all(logins.map((l) => l.exited));
    await browser?.close();
    await idp?.stop();
    if (root) rmTemp(root);
  });

  test('1. happy path: alice approves the printed code in Chromium; 0600 token file in a 0700 dir', async (t) => {
    const s = sandbox('happy');
    const out = path.join(s.dir, 'tok', 'token.json');
    const l = login([
      '--issuer', idp.issuer, '--client-id', CLI_CLIENT_ID, '--resource', 'api://mesh',
      '--scope', 'openid email groups', '--output', out,
    ], { env: sandboxEnv(s) });
    const prompt = await signInPrompt(l);
    assert.equal(prompt.verificationUri, idp.deviceVerificationUri);
    assert.match(prompt.userCode, /^[A-Z]{4}-[A-Z]{4}$/);
    await completeUri(l, prompt);
    assert.ok(!fs.existsSync(out), 'no token file before the user approved');

    const page = await browser.newPage();
    try {
      await approveDevice(page, { ...prompt, username: 'alice' });
      t.diagnostic(`device page: ${await screenshot(page, 'cli-login-device-approved')}`);
    } finally {
      await page.context().close();
    }

    const r = await l.waitExit(25_000);
    assert.equal(r.code, 0, `exit code${l.stderr()}`);
    t.diagnostic(`login finished ${r.elapsedMs} ms after start`);
    assert.equal(octal(modeOf(path.dirname(out))), '0700', 'mode of the directory login created');
    const saved = checkTokenFile(out, { idp });
    const at = decodeJwt(saved.access_token).payload;
    assert.deepEqual(at.groups, ['engineering']);
    assert.equal(at.email, 'alice@example.test');
    if (saved.id_token) {
      const id = decodeJwt(saved.id_token).payload;
      assert.equal(id.sub, 'alice');
      assert.equal(id.aud, CLI_CLIENT_ID);
      assert.equal(id.email, 'alice@example.test');
      assert.equal(id.name, undefined, 'scope was "openid email groups": no profile claims (--scope reached the IdP)');
    }
    checkSignedIn(l, out, saved);
    assertNoSecrets(l, saved);
    assert.deepEqual([...filesUnder(s.home), ...filesUnder(s.xdg)], [], 'nothing written to the default location');
    aliceToken = saved.access_token;
    aliceFile = out;
  });

  test('2. the saved token works on a gateway bearer route (group engineering); controls 401/403', async () => {
    assert.ok(aliceToken, 'needs the token of test 1');
    const upstream = await startUpstream();
    let gw;
    try {
      const { config, ports } = await bearerConfig({
        upstream,
        providers: [providerEntry(idp, { audiences: ['api://mesh'] })],
        routes: [{
          name: 'api', match: { path_prefix: '/api' }, upstream: 'echo', auth: 'bearer',
          providers: ['local'], policy: { allow: { group: { has: 'engineering' } } },
        }],
      });
      gw = await startGateway({ config });
      const ok = await waitForAccept(ports.plain, '/api/whoami', aliceToken);
      const echo = JSON.parse(ok.body);
      assert.equal(echo.headers['x-portcullis-user'], 'alice');
      assert.equal(echo.headers['x-portcullis-email'], 'alice@example.test');
      assert.equal(echo.headers['x-portcullis-groups'], 'engineering');

      const before = upstream.requests.length;
      const none = await call(ports.plain, '/api/whoami', null);
      assert.equal(none.status, 401);
      const machine = await idp.getToken({ clientId: 'gateway-tests', resource: 'api://mesh' });
      const noGroup = await call(ports.plain, '/api/whoami', machine);
      assert.equal(noGroup.status, 403, `a valid token without group engineering: ${noGroup.body}`);
      assert.equal(upstream.requests.length, before, 'refused requests never reach the upstream');
    } finally {
      await gw?.stop();
      await upstream.close();
    }
  });

  test('3. default location ($XDG_CONFIG_HOME, else $HOME/.config) and replacing an existing file', async () => {
    // Three concurrent flows (one polling interval for all), approved one after the other
    // through the printed verification_uri_complete.
    const a = sandbox('xdg');
    const xdgFile = path.join(a.xdg, 'portcullis', 'token.json');
    const xdgLogin = login(['--issuer', idp.issuer, '--client-id', CLI_CLIENT_ID], { env: sandboxEnv(a) });

    const b = sandbox('home');
    const homeFile = path.join(b.home, '.config', 'portcullis', 'token.json');
    const homeLogin = login(['--issuer', idp.issuer, '--client-id', CLI_CLIENT_ID, '--resource', 'api://mesh'], {
      env: { HOME: b.home }, unset: ['XDG_CONFIG_HOME'],
    });

    const c = sandbox('replace');
    const oldFile = path.join(c.dir, 'existing.json');
    fs.writeFileSync(oldFile, `${JSON.stringify({ stale: true, padding: 'x'.repeat(8192) })}\n`, { mode: 0o644 });
    fs.chmodSync(oldFile, 0o644);
    const replaceLogin = login([
      '--issuer', idp.issuer, '--client-id', CLI_CLIENT_ID, '--resource', 'api://other', '--output', oldFile,
    ], { env: sandboxEnv(c) });

    for (const [l, shot] of [[xdgLogin, 'cli-login-xdg'], [homeLogin, undefined], [replaceLogin, undefined]]) {
      const prompt = await signInPrompt(l);
      const uri = await completeUri(l, prompt);
      await answerComplete(browser, uri, prompt.userCode, { shot });
    }
    const [rx, rh, rr] = await Promise.all([xdgLogin.waitExit(25_000), homeLogin.waitExit(25_000), replaceLogin.waitExit(25_000)]);

    assert.equal(rx.code, 0, `XDG run${xdgLogin.stderr()}`);
    assert.equal(octal(modeOf(path.dirname(xdgFile))), '0700', `mode of ${path.dirname(xdgFile)}`);
    const sx = checkTokenFile(xdgFile, { idp });
    checkSignedIn(xdgLogin, xdgFile, sx);
    assertNoSecrets(xdgLogin, sx);
    assert.deepEqual(filesUnder(a.home), [], 'nothing under $HOME when XDG_CONFIG_HOME is set');
    if (sx.id_token) {
      const id = decodeJwt(sx.id_token).payload;
      assert.equal(id.name, 'Alice Example', 'the default scope includes profile');
      // The default is "openid email profile": portable across IdPs (Entra and others refuse
      // unknown scopes such as "groups"); pass --scope to ask for more.
      assert.equal(id.groups, undefined, 'the default scope ("openid email profile") asks for no groups');
    }

    assert.equal(rh.code, 0, `HOME run${homeLogin.stderr()}`);
    const sh = checkTokenFile(homeFile, { idp });
    checkSignedIn(homeLogin, homeFile, sh);
    assertNoSecrets(homeLogin, sh);

    assert.equal(rr.code, 0, `replace run${replaceLogin.stderr()}`);
    const sr = checkTokenFile(oldFile, { idp, aud: 'api://other' }); // mode 0600 even though it was 0644
    assert.equal(sr.stale, undefined, 'old content replaced');
    checkSignedIn(replaceLogin, oldFile, sr);
    assertNoSecrets(replaceLogin, sr);
    assert.deepEqual(filesUnder(c.home).concat(filesUnder(c.xdg)), [], 'nothing written to the default location');
    assert.deepEqual(fs.readdirSync(c.dir).sort(), ['existing.json', 'home', 'xdg'], 'no temp file left next to the token');
  });

  test('4. the user aborts on the device page: exit 1, "refused", no token file', async () => {
    const s = sandbox('refuse');
    const out = path.join(s.dir, 'token.json');
    const l = login(['--issuer', idp.issuer, '--client-id', CLI_CLIENT_ID, '--output', out], { env: sandboxEnv(s) });
    const prompt = await signInPrompt(l);
    const uri = await completeUri(l, prompt);
    await answerComplete(browser, uri, prompt.userCode, { abort: true, shot: 'cli-login-device-aborted' });
    const r = await l.waitExit(25_000);
    assert.equal(r.code, 1, `exit code${l.stderr()}`);
    assert.match(l.stderr(), /refused/i);
    assert.ok(!fs.existsSync(out), 'no token file');
    assert.deepEqual([...filesUnder(s.home), ...filesUnder(s.xdg)], []);
  });

  test('5. --timeout 3s with nobody approving: exit 1, "timed out" or "expired", no token file', async () => {
    const s = sandbox('timeout');
    const out = path.join(s.dir, 'token.json');
    const l = login(['--issuer', idp.issuer, '--client-id', CLI_CLIENT_ID, '--timeout', '3s', '--output', out], {
      env: sandboxEnv(s),
    });
    await signInPrompt(l);
    const r = await l.waitExit(15_000);
    assert.equal(r.code, 1, `exit code${l.stderr()}`);
    assert.match(l.stderr(), /timed out|expired/i);
    assert.ok(r.elapsedMs >= 2500, `gave up after ${r.elapsedMs} ms, before --timeout 3s`);
    assert.ok(r.elapsedMs <= 12_000, `gave up after ${r.elapsedMs} ms, long after --timeout 3s`);
    assert.ok(!fs.existsSync(out), 'no token file');
    assert.deepEqual([...filesUnder(s.home), ...filesUnder(s.xdg)], []);
  });

  test('6. usage errors exit 2 and write nothing; --help exits 0', async () => {
    const s = sandbox('usage');
    const env = sandboxEnv(s);
    const out = path.join(s.dir, 'token.json');
    const cases = [
      [],
      ['--client-id', CLI_CLIENT_ID, '--output', out],
      ['--issuer', idp.issuer, '--output', out],
      ['--issuer', idp.issuer, '--client-id', CLI_CLIENT_ID, '--output', out, '--no-such-option'],
    ];
    const before = (await idp.state()).counters.device_authorization;
    for (const args of cases) {
      const r = await run(BIN, ['login', ...args], { env, timeoutMs: 10_000 });
      assert.equal(r.code, 2, `login ${args.join(' ')}: ${r.stderr}${r.stdout}`);
      assert.ok(r.stderr.trim().length > 0, `login ${args.join(' ')}: says why on stderr`);
    }
    assert.equal((await idp.state()).counters.device_authorization, before, 'no device authorization for a usage error');
    assert.ok(!fs.existsSync(out));
    assert.deepEqual([...filesUnder(s.home), ...filesUnder(s.xdg)], []);

    const help = await run(BIN, ['login', '--help'], { env, timeoutMs: 10_000 });
    assert.equal(help.code, 0, help.stderr);
    const text = `${help.stdout}${help.stderr}`;
    for (const opt of ['--issuer', '--client-id', '--output', '--timeout']) assert.ok(text.includes(opt), `--help mentions ${opt}`);
  });

  test('7. discovery: an issuer mismatch or no device_authorization_endpoint is refused before any prompt', async () => {
    const real = await idp.discovery();
    const seen = [];
    const server = http.createServer((req, res) => {
      seen.push(req.url);
      const base = `http://127.0.0.1:${server.address().port}`;
      let doc;
      if (req.url === '/mismatch/.well-known/openid-configuration') doc = { ...real }; // issuer: the fixture's, not ours
      else if (req.url === '/nodevice/.well-known/openid-configuration') {
        doc = { ...real, issuer: `${base}/nodevice` };
        delete doc.device_authorization_endpoint;
      }
      if (!doc) { res.writeHead(404); res.end(); return; }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(doc));
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${server.address().port}`;
    const s = sandbox('discovery');
    try {
      const before = (await idp.state()).counters.device_authorization;
      for (const name of ['mismatch', 'nodevice']) {
        const out = path.join(s.dir, `${name}.json`);
        const r = await run(BIN, ['login', '--issuer', `${base}/${name}`, '--client-id', CLI_CLIENT_ID, '--output', out, '--timeout', '10s'], {
          env: sandboxEnv(s), timeoutMs: 15_000,
        });
        assert.equal(r.signal, null, `${name}: died by a signal${r.stderr}`);
        assert.notEqual(r.code, 0, `${name}: exit code${r.stderr}`);
        assert.ok(r.stderr.trim().length > 0, `${name}: says why on stderr`);
        assert.ok(!/To sign in/.test(r.stderr), `${name}: no sign-in prompt${r.stderr}`);
        assert.ok(seen.includes(`/${name}/.well-known/openid-configuration`), `${name}: discovery was fetched (${seen})`);
        assert.ok(!fs.existsSync(out));
      }
      assert.equal((await idp.state()).counters.device_authorization, before, 'no device authorization request reached the IdP');
    } finally {
      await new Promise((resolve) => { server.close(resolve); server.closeAllConnections?.(); });
    }
  });
  test('8. --refresh trades the saved refresh token for a new access token; refusals exit 1 and keep the file', async () => {
    assert.ok(aliceFile, 'needs the file of test 1');
    const s = sandbox('refresh');
    const env = sandboxEnv(s);
    const out = path.join(s.dir, 'token.json');
    fs.copyFileSync(aliceFile, out);
    fs.chmodSync(out, 0o600);
    const before = JSON.parse(fs.readFileSync(out, 'utf8'));
    assert.equal(typeof before.refresh_token, 'string', 'the device grant gave a refresh token');
    assert.equal(before.resource, 'api://mesh', 'the resource asked for is kept for the refresh');
    const tokensBefore = (await idp.state()).counters.token;
    await new Promise((r) => setTimeout(r, 1100)); // a new token has a later iat
    const r = await run(BIN, ['login', '--refresh', '--output', out], { env, timeoutMs: 15_000 });
    assert.equal(r.code, 0, `refresh: ${r.stderr}${r.stdout}`);
    assert.match(r.stderr, /^Token refreshed and saved to .+ \(expires in \d+s\)$/m);
    assert.ok((await idp.state()).counters.token > tokensBefore, 'through the token endpoint');
    const after = checkTokenFile(out, { idp });
    assert.notEqual(after.access_token, before.access_token, 'a new access token');
    assert.ok(decodeJwt(after.access_token).payload.iat > decodeJwt(before.access_token).payload.iat);
    assert.equal(typeof after.refresh_token, 'string');
    for (const secret of [after.access_token, after.refresh_token, before.refresh_token]) {
      assert.ok(!`${r.stdout}${r.stderr}`.includes(secret), 'no token printed');
    }
    assert.deepEqual([...filesUnder(s.home), ...filesUnder(s.xdg)], [], 'nothing written elsewhere');

    // The IdP refuses an unknown refresh token: exit 1, says so, the file is left as it was.
    const bogus = JSON.stringify({ ...after, refresh_token: 'not-a-refresh-token-of-this-idp' });
    fs.writeFileSync(out, bogus, { mode: 0o600 });
    const refused = await run(BIN, ['login', '--refresh', '--output', out], { env, timeoutMs: 15_000 });
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /refresh was refused \(invalid_grant, HTTP 400\); sign in again/);
    assert.equal(fs.readFileSync(out, 'utf8'), bogus, 'a refused refresh changes nothing');

    // No refresh token saved, no file: exit 1 before any request; --refresh with --issuer: usage.
    const noRt = { ...after };
    delete noRt.refresh_token;
    fs.writeFileSync(out, JSON.stringify(noRt), { mode: 0o600 });
    const tokensNow = (await idp.state()).counters.token;
    const none = await run(BIN, ['login', '--refresh', '--output', out], { env, timeoutMs: 15_000 });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /holds no refresh token/);
    const missing = await run(BIN, ['login', '--refresh', '--output', path.join(s.dir, 'nope.json')], { env, timeoutMs: 15_000 });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read/);
    assert.equal((await idp.state()).counters.token, tokensNow, 'no token request without a refresh token');
    const mixed = await run(BIN, ['login', '--refresh', '--issuer', idp.issuer, '--output', out], { env, timeoutMs: 10_000 });
    assert.equal(mixed.code, 2, mixed.stderr);
  });
});
