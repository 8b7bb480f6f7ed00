// Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by the npm package
// `playwright-core` (pinned in tests/package.json; it brings no browser of its own: never run
// `npx playwright install`). Also the steps a test takes on the test IdP's pages
// (tests/support/oidc/provider.mjs): sign in, consent, device code, logout.
//
//   import { launchBrowser, screenshot, signIn } from '../support/browser.mjs';
//   const browser = await launchBrowser();
//   const page = await browser.newPage();          // a fresh context (own cookie jar) per page
//   await page.goto(`${rp}/login`);
//   await signIn(page, { username: 'alice' });     // fills the IdP login form
//   await screenshot(page, 'signed-in');           // -> $PORTCULLIS_ARTIFACTS/signed-in.png
//   await browser.close();
//
// How Chromium is started (/work/.library/env/machines/cpp.md): executablePath /usr/bin/chromium,
// --headless --no-sandbox --disable-gpu --disable-quic --no-first-run
// --disable-background-networking --disable-component-update --disable-sync, and a fresh, empty
// --user-data-dir (Playwright makes one per launch in $TMPDIR and removes it on close; Playwright
// refuses a --user-data-dir in args). Without the background-networking flags Chromium keeps
// trying to reach Google's hosts, which this machine's closed network refuses.
//
// No orphans: the browser runs under playwright-core's launchServer(), so its pid is known;
// on process exit (also via SIGINT/SIGTERM) every browser still running is SIGKILLed by pid
// (its process group: renderers and zygotes included) and its profile directory removed.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SELECTORS, ACCOUNTS } from './oidc/provider.mjs';

export { SELECTORS };

export const CHROMIUM_PATH = process.env.PORTCULLIS_CHROMIUM || '/usr/bin/chromium';

export const CHROMIUM_ARGS = Object.freeze([
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]);

const ROOT = process.env.PORTCULLIS_ROOT
  || path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

// ---------------------------------------------------------------------------------------
// Process bookkeeping

const live = new Map(); // pid -> {userDataDir}

function killBrowser(pid) {
  // Chromium is a process-group leader (Playwright spawns it detached): kill the group first.
  try { process.kill(-pid, 'SIGKILL'); } catch { /* no group / gone */ }
  try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
}

function killAll() {
  for (const [pid, { userDataDir }] of live) {
    killBrowser(pid);
    if (userDataDir) {
      try { fs.rmSync(userDataDir, { recursive: true, force: true }); } catch { /* best effort */ }
    }
  }
  live.clear();
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => { killAll(); process.exit(130); });
}

/** The --user-data-dir of a running Chromium (from /proc/PID/cmdline), or undefined. */
function userDataDirOf(pid) {
  try {
    const args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const a = args.find((x) => x.startsWith('--user-data-dir='));
    return a ? a.slice('--user-data-dir='.length) : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------
// Launch

/**
 * Starts headless Chromium. options: {args: extra flags, timeoutMs = 30000, env,
 * contextDefaults: options for every newContext/newPage (default {ignoreHTTPSErrors: true,
 * viewport: {width: 1024, height: 720}})}.
 * Resolves {browser, pid, userDataDir, version, newContext(opts), newPage(opts), close()}:
 * newPage() opens a page in a NEW context (its own cookies and storage, like a private
 * window); page.context() is that context; several pages of one user: newContext().newPage().
 * close() closes every context, the browser and removes the profile; idempotent.
 */
export async function launchBrowser(options = {}) {
  const { chromium } = await import('playwright-core');
  if (!fs.existsSync(CHROMIUM_PATH)) {
    throw new Error(`${CHROMIUM_PATH} not found: install Debian's chromium (scripts/setup.sh --test)`);
  }
  const server = await chromium.launchServer({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...CHROMIUM_ARGS, ...(options.args ?? [])],
    timeout: options.timeoutMs ?? 30_000,
    env: options.env ?? process.env,
    // Our own exit/signal handlers kill the browser by pid.
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  });
  const pid = server.process().pid;
  const userDataDir = userDataDirOf(pid);
  live.set(pid, { userDataDir });
  let browser;
  try {
    browser = await chromium.connect(server.wsEndpoint(), { timeout: options.timeoutMs ?? 30_000 });
  } catch (e) {
    live.delete(pid);
    await server.kill().catch(() => {});
    throw e;
  }
  const contextDefaults = { ignoreHTTPSErrors: true, viewport: { width: 1024, height: 720 }, ...options.contextDefaults };
  let closing;
  const handle = {
    browser,
    server,
    pid,
    userDataDir,
    version: browser.version(),
    newContext: (opts = {}) => browser.newContext({ ...contextDefaults, ...opts }),
    newPage: async (opts = {}) => {
      const context = await handle.newContext(opts);
      const page = await context.newPage();
      page.setDefaultTimeout(opts.timeoutMs ?? 15_000);
      return page;
    },
    close: () => {
      closing ??= (async () => {
        try { await browser.close(); } catch { /* already gone */ }
        try { await server.close(); } catch { await server.kill().catch(() => {}); }
        live.delete(pid);
        if (userDataDir) {
          try { fs.rmSync(userDataDir, { recursive: true, force: true }); } catch { /* best effort */ }
        }
      })();
      return closing;
    },
  };
  return handle;
}

// ---------------------------------------------------------------------------------------
// Artifacts

/** Where screenshots go: $PORTCULLIS_ARTIFACTS, else <repo>/build/test-artifacts (created). */
export function artifactDir() {
  const dir = path.resolve(process.env.PORTCULLIS_ARTIFACTS || path.join(ROOT, 'build', 'test-artifacts'));
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** Saves a full-page PNG of page as <artifactDir>/<name>.png (name sanitised); resolves the path. */
export async function screenshot(page, name, { fullPage = true } = {}) {
  const safe = String(name).replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^\.+/, '') || 'screenshot';
  const file = path.join(artifactDir(), safe.endsWith('.png') ? safe : `${safe}.png`);
  await page.screenshot({ path: file, fullPage });
  return file;
}

// ---------------------------------------------------------------------------------------
// The test IdP's pages (tests/support/oidc/provider.mjs)

/**
 * On the IdP's login page (waits for it): fills username/password and submits; approves the
 * consent page if one follows (provider started with consent: 'page') unless approve: false.
 * password defaults to the account's (ACCOUNTS). Resolves when the IdP's pages are left
 * (the page is then at the redirect target, or still on the login page with #error shown
 * when the password was wrong: check with expectError: true). Resolves {consentShown}.
 */
export async function signIn(page, {
  username = 'alice', password, approve = true, expectError = false, timeoutMs = 15_000,
} = {}) {
  await page.waitForSelector(SELECTORS.loginPage, { timeout: timeoutMs });
  await page.fill(SELECTORS.username, username);
  await page.fill(SELECTORS.password, password ?? ACCOUNTS[username]?.password ?? '');
  await Promise.all([
    page.waitForNavigation({ timeout: timeoutMs }),
    page.click(SELECTORS.signIn),
  ]);
  if (expectError) {
    await page.waitForSelector(`${SELECTORS.loginPage} ${SELECTORS.error}`, { timeout: timeoutMs });
    return;
  }
  const consentShown = !!await page.$(SELECTORS.consentPage);
  if (approve && consentShown) {
    await Promise.all([page.waitForNavigation({ timeout: timeoutMs }), page.click(SELECTORS.approve)]);
  }
  return { consentShown };
}

/** On the IdP's "sign out?" page (end_session_endpoint): clicks yes (or no). */
export async function confirmLogout(page, { yes = true, timeoutMs = 15_000 } = {}) {
  await page.waitForSelector(SELECTORS.logoutPage, { timeout: timeoutMs });
  await Promise.all([
    page.waitForNavigation({ timeout: timeoutMs }),
    page.click(yes ? SELECTORS.logoutYes : SELECTORS.logoutNo),
  ]);
}

/**
 * Device flow in the browser: opens verificationUri, types userCode, confirms, signs in as
 * username; resolves when the IdP shows its "device signed in" page.
 */
export async function approveDevice(page, {
  verificationUri, userCode, username = 'alice', password, timeoutMs = 15_000,
}) {
  await page.goto(verificationUri);
  await page.waitForSelector(SELECTORS.deviceCodePage, { timeout: timeoutMs });
  await page.fill(SELECTORS.userCode, userCode);
  await Promise.all([page.waitForNavigation({ timeout: timeoutMs }), page.click(SELECTORS.deviceContinue)]);
  await page.waitForSelector(SELECTORS.deviceConfirmPage, { timeout: timeoutMs });
  await Promise.all([page.waitForNavigation({ timeout: timeoutMs }), page.click(SELECTORS.deviceConfirm)]);
  if (await page.$(SELECTORS.loginPage)) await signIn(page, { username, password, timeoutMs });
  await page.waitForSelector(SELECTORS.deviceSuccessPage, { timeout: timeoutMs });
}
