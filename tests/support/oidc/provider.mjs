#!/usr/bin/env node
// A real OpenID provider for the Portcullis integration tests: npm `oidc-provider` 9.x on
// loopback, with test clients, generated signing keys and key rotation while it runs.
// TEST-ONLY: every client secret below is a public, well-known test value.
//
// As a script (what tests/support/oidc/client.mjs spawns):
//
//   node tests/support/oidc/provider.mjs [--port 0] [--control-port 0] [--algs RS256,ES256]
//        [--audiences api://mesh,api://other] [--ttl 300] [--jwks-max-age SECONDS]
//        [--cert FILE --key FILE] [--issuer URL] [--exit-with-stdin]
//
//   --port N           port of the provider on 127.0.0.1 (0 = a free one; default 0)
//   --control-port N   port of the control endpoint on 127.0.0.1 (0 = a free one; default 0)
//   --algs LIST        signing algorithms, one generated key each; the first is the default
//                      for access tokens (RS256 PS256 ES256 ES384 ES512 EdDSA ...; default RS256)
//   --audiences LIST   resource indicators the provider knows; the first is the default
//                      resource when a client sends no `resource=` (default api://mesh,api://other)
//   --ttl SECONDS      access token lifetime (default 300)
//   --jwks-max-age S   send `Cache-Control: public, max-age=S` with the JWKS (default: no header)
//   --cert/--key FILE  serve HTTPS with this PEM certificate and key; the issuer is then
//                      https://localhost:PORT (plain HTTP otherwise: http://127.0.0.1:PORT)
//   --issuer URL       override the issuer (must match how clients reach the port)
//   --exit-with-stdin  exit when standard input closes (the spawning process died)
//
// Browser SSO (authorization code + PKCE, RP-initiated and back-channel logout, device flow):
//        [--redirect-uri LIST] [--post-logout-redirect-uri LIST] [--backchannel-logout-uri URL]
//        [--consent auto|page] [--logout-confirm page|auto]
//   --redirect-uri LIST            redirect_uris of the SSO clients (portcullis-sso and
//                                  portcullis-sso-post); comma-separated and/or repeated.
//                                  Can be changed while running: POST /clients on the control port
//   --post-logout-redirect-uri L   their post_logout_redirect_uris (same rules)
//   --backchannel-logout-uri URL   their backchannel_logout_uri (OIDC back-channel logout)
//   --consent auto|page            auto (default): consent is granted without a page unless
//                                  the request has prompt=consent; page: always a consent page
//                                  (#approve / #deny buttons)
//   --logout-confirm page|auto     page (default): end_session shows "sign out?" with
//                                  #logout-yes / #logout-no; auto: it submits itself
//   Test users (ACCOUNTS): alice / alice-password (groups engineering), mallory /
//   mallory-password (groups contractors). The login page is the fixture's own (no
//   external assets): #username, #password, #sign-in, #cancel; errors in #error.
//
// When ready it prints ONE JSON line on stdout (everything else goes to stderr):
//   {"event":"ready","issuer":..,"port":..,"discovery":..,"jwks_uri":..,"token_endpoint":..,
//    "introspection_endpoint":..,"revocation_endpoint":..,"control":"http://127.0.0.1:CPORT",
//    "control_port":..,"pid":..,"algs":[..],"audiences":[..],"kids":[..],"signing":{ALG:KID}}
// and, after each key rotation, one more line {"event":"rotated", ...state}.
// SIGTERM/SIGINT close both listeners and exit 0.
//
// CONTROL INTERFACE (HTTP on 127.0.0.1:control_port, JSON in and out):
//   GET  /state          {issuer, generation, algs, kids, signing, jwks, counters}
//                        kids: every kid published at jwks_uri (newest first);
//                        signing: {ALG: kid} of the keys that sign new tokens;
//                        counters: {jwks, discovery, token, introspection} requests served,
//                        refresh_ok / refresh_failed (refresh_token grants), token_fault
//   POST /rotate         body {"keepOld": true|false, "algs": [..]} (both optional; also as
//                        query ?keepOld=false). Generates a NEW key for every signing alg,
//                        builds a NEW oidc-provider instance whose keystore is the new keys
//                        prepended to the old ones (keepOld true, the default) or the new keys
//                        alone (keepOld false), and swaps it in behind the SAME listening
//                        socket: the port never closes, the next request (also on a kept-alive
//                        connection) is served by the new instance. Answers the new state plus
//                        {"previous": {signing, kids}} once the new instance is serving.
//                        Opaque tokens issued before survive (the fixture's in-memory store
//                        is shared by all instances); JWTs signed by the old key verify only
//                        while keepOld kept it in the JWKS.
//   POST /jwks-fault     body {"mode": "none"|"status500"|"garbage"}: make jwks_uri answer
//                        normally, with HTTP 500, or with 200 and a body that is not a JWKS
//   POST /shutdown       answer {"ok":true}, then close everything and exit 0
//   SIGUSR2              same as POST /rotate with keepOld true
//   GET  /clients        metadata of the browser clients (SSO, CLI and any registered here)
//   POST /clients        body {client_id, ...metadata}: change a browser client (e.g.
//                        {"client_id":"portcullis-sso","redirect_uris":[..]}) or register a
//                        new one (defaults: confidential web client like portcullis-sso);
//                        swaps in a new provider instance like /rotate; 400 if invalid
//   GET  /accounts       the test accounts (without passwords)
//   POST /accounts       body {sub, password, email, name, groups}: add or replace one
//   POST /logout-token   body {client_id, sub, sid, deliver}: a logout token signed by the
//                        provider for that client ({logout_token}); deliver: true also POSTs
//                        it to the client's backchannel_logout_uri ({delivered, error})
//   POST /accounts/remove body {sub}: delete that account ({removed}); its refresh tokens
//                        are then refused (invalid_grant: referenced account not found)
//   GET  /tokens?sub=S&client_id=C&kind=RefreshToken  {tokens: [{value, sub, client_id,
//                        grant_id, iat, exp, ...}]}: tokens the provider holds (opaque value
//                        = id), e.g. to revoke a relying party's refresh token at
//                        revocation_endpoint with that client's credentials
//   POST /sign           body {payload, header, alg}: {jwt} signed with the provider's
//                        current key for alg (default the first); header merged over
//                        {alg, kid, typ: "JWT"} (malformed logout tokens for negative tests)
//   POST /token-fault    body {"mode": "none"|"status500"}: token_endpoint answers normally /
//                        HTTP 500 (counted as counters.token_fault)
//
// As a module: `startOidcProvider(options)` runs the same thing in the calling process and
// resolves with {issuer, port, urls.., control, rotateKey({keepOld, algs}), state(),
// setJwksFault(mode), clients(), updateClient(metadata), accounts(), setAccount(a),
// removeAccount({sub}), listTokens(o), signJwt(o), setTokenFault(mode), mintLogoutToken(o), close()}; browser options: redirectUris, postLogoutRedirectUris,
// backchannelLogoutUri, consent, logoutConfirm, accounts. `CLIENTS`, `SCOPES`, `DEFAULTS`,
// `SSO_CLIENTS`, `CLI_CLIENT_ID`, `ACCOUNTS` and `SELECTORS` describe the fixture.
// oidc-provider is imported lazily, so importing this file for the constants is cheap.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { fileURLToPath } from 'node:url';

export const SCOPES = ['orders:read', 'orders:write', 'payments:read', 'payments:write', 'admin'];

export const DEFAULTS = Object.freeze({
  host: '127.0.0.1',
  port: 0,
  controlPort: 0,
  algs: ['RS256'],
  audiences: ['api://mesh', 'api://other'],
  ttl: 300,
});

// TEST-ONLY credentials. `gateway-tests-<alg>` clients (e.g. gateway-tests-es256) are added
// for every configured alg: same secret and scopes as gateway-tests, tokens signed with <alg>.
export const CLIENTS = Object.freeze({
  'gateway-tests': {
    secret: 'gateway-tests-secret',
    scope: SCOPES.join(' '),
    tokenFormat: 'jwt',
    purpose: 'client_credentials -> JWT access tokens (default alg), for calling the gateway',
  },
  introspector: {
    secret: 'introspector-secret',
    scope: '',
    tokenFormat: 'jwt',
    purpose: 'the only client whose introspection requests are answered (RFC 7662); gets no tokens',
  },
  'opaque-client': {
    secret: 'opaque-client-secret',
    scope: SCOPES.join(' '),
    tokenFormat: 'opaque',
    purpose: 'client_credentials -> OPAQUE access tokens (same audiences), for introspection tests',
  },
});
export const ALG_CLIENT_SECRET = CLIENTS['gateway-tests'].secret;

// ---------------------------------------------------------------------------------------
// Browser SSO: TEST-ONLY accounts and clients.

/** Scopes of the browser clients; the ID token carries the claims of all of them. */
export const SSO_SCOPES = ['openid', 'email', 'profile', 'groups', 'offline_access'];
/** What a relying party asks for by default. */
export const SSO_SCOPE = 'openid email profile groups';

/** Confidential authorization-code clients for the gateway's browser SSO. */
export const SSO_CLIENTS = Object.freeze({
  'portcullis-sso': {
    secret: 'portcullis-sso-secret',
    tokenEndpointAuthMethod: 'client_secret_basic',
    purpose: 'browser SSO: authorization code + PKCE (S256), client_secret_basic, refresh tokens',
  },
  'portcullis-sso-post': {
    secret: 'portcullis-sso-post-secret',
    tokenEndpointAuthMethod: 'client_secret_post',
    purpose: 'browser SSO: same as portcullis-sso but client_secret_post',
  },
});

/** Public native client for `portcullis login`: device flow, or loopback redirect (any port). */
export const CLI_CLIENT_ID = 'portcullis-cli';
export const CLI_REDIRECT_URIS = ['http://127.0.0.1/callback', 'http://[::1]/callback'];

/** Placeholder redirect URI of the SSO clients until --redirect-uri or POST /clients sets one. */
export const PLACEHOLDER_REDIRECT_URI = 'https://localhost/.portcullis/callback';

/** TEST-ONLY users of the login page. sub = the username. */
export const ACCOUNTS = Object.freeze({
  alice: Object.freeze({
    password: 'alice-password', email: 'alice@example.test', name: 'Alice Example', groups: ['engineering'],
  }),
  mallory: Object.freeze({
    password: 'mallory-password', email: 'mallory@contractor.example', name: 'Mallory Contractor', groups: ['contractors'],
  }),
});

/** CSS selectors of the fixture's HTML pages (each page's <body data-page="..."> names it). */
export const SELECTORS = Object.freeze({
  loginPage: 'body[data-page="login"]',
  username: '#username',
  password: '#password',
  signIn: '#sign-in',
  cancel: '#cancel',
  error: '#error',
  consentPage: 'body[data-page="consent"]',
  approve: '#approve',
  deny: '#deny',
  errorPage: 'body[data-page="error"]',
  errorCode: '#error-code',
  logoutPage: 'body[data-page="logout"]',
  logoutYes: '#logout-yes',
  logoutNo: '#logout-no',
  loggedOutPage: 'body[data-page="logged-out"]',
  deviceCodePage: 'body[data-page="device-code"]',
  userCode: 'input[name="user_code"]',
  deviceContinue: '#device-continue',
  deviceConfirmPage: 'body[data-page="device-confirm"]',
  deviceConfirm: '#device-confirm',
  deviceAbort: '#device-abort',
  deviceSuccessPage: 'body[data-page="device-success"]',
});

const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
export const INTROSPECTORS = new Set(['introspector']);

const SUPPORTED_ALGS = new Set([
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA',
]);

/** The client id that gets tokens signed with `alg` ("gateway-tests-es256"). */
export function algClientId(alg) {
  return `gateway-tests-${alg.toLowerCase()}`;
}

// ---------------------------------------------------------------------------------------
// Keys

let kidCounter = 0;

/** A fresh private JWK for `alg` with kid, alg and use set. */
export function generateSigningJwk(alg, generation = 0) {
  let pair;
  if (/^(RS|PS)/.test(alg)) {
    pair = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  } else if (alg === 'ES256') {
    pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  } else if (alg === 'ES384') {
    pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' });
  } else if (alg === 'ES512') {
    pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-521' });
  } else if (alg === 'EdDSA') {
    pair = crypto.generateKeyPairSync('ed25519');
  } else {
    throw new Error(`unsupported signing alg ${alg}`);
  }
  const jwk = pair.privateKey.export({ format: 'jwk' });
  kidCounter += 1;
  const kid = `${alg.toLowerCase()}-g${generation}-${kidCounter}-${crypto.randomBytes(3).toString('hex')}`;
  return { ...jwk, kid, alg, use: 'sig' };
}

function publicJwk(jwk) {
  const pub = crypto.createPublicKey({ key: jwk, format: 'jwk' }).export({ format: 'jwk' });
  return { ...pub, kid: jwk.kid, alg: jwk.alg, use: jwk.use };
}

function parseList(v, fallback) {
  if (v === undefined || v === null || v === '') return [...fallback];
  const list = Array.isArray(v) ? v : String(v).split(',');
  return list.map((s) => String(s).trim()).filter(Boolean);
}

function checkAlgs(algs) {
  if (!algs.length) throw new Error('at least one signing alg is needed');
  for (const a of algs) if (!SUPPORTED_ALGS.has(a)) throw new Error(`unsupported signing alg ${a}`);
  if (new Set(algs).size !== algs.length) throw new Error(`duplicate alg in ${algs.join(',')}`);
}

// ---------------------------------------------------------------------------------------
// Storage shared by every Provider instance of this process. oidc-provider 9's default
// in-memory adapter is per instance, so a key rotation (a new instance) would forget every
// opaque token; this one lives as long as the fixture. Entries expire with their artifact.

function createSharedStore(maxEntries = 100000) {
  const entries = new Map(); // key -> {value, expiresAt}
  const get = (k) => {
    const e = entries.get(k);
    if (!e) return undefined;
    if (e.expiresAt <= Date.now()) { entries.delete(k); return undefined; }
    return e.value;
  };
  const set = (k, value, expiresIn) => {
    entries.delete(k);
    if (entries.size >= maxEntries) entries.delete(entries.keys().next().value);
    entries.set(k, { value, expiresAt: typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity });
  };
  /** [key, value] of every live entry whose key starts with `prefix`. */
  const list = (prefix) => {
    const out = [];
    for (const k of [...entries.keys()]) {
      if (!k.startsWith(prefix)) continue;
      const v = get(k);
      if (v !== undefined) out.push([k, v]);
    }
    return out;
  };
  return { get, set, delete: (k) => entries.delete(k), list };
}

function sharedAdapterFactory(store) {
  return class SharedMemoryAdapter {
    constructor(model) { this.model = model; }

    key(id) { return `${this.model}:${id}`; }

    async upsert(id, payload, expiresIn) {
      store.set(this.key(id), payload, expiresIn);
      if (payload.grantId) {
        const gk = `grant:${payload.grantId}`;
        store.set(gk, [...(store.get(gk) ?? []), this.key(id)], expiresIn);
      }
      if (payload.uid) store.set(`uid:${payload.uid}`, id, expiresIn);
      if (payload.userCode) store.set(`userCode:${payload.userCode}`, id, expiresIn);
    }

    async find(id) { return store.get(this.key(id)); }

    async findByUid(uid) { const id = store.get(`uid:${uid}`); return id && this.find(id); }

    async findByUserCode(code) { const id = store.get(`userCode:${code}`); return id && this.find(id); }

    async consume(id) {
      const p = store.get(this.key(id));
      if (p) p.consumed = Math.floor(Date.now() / 1000);
    }

    async destroy(id) { store.delete(this.key(id)); }

    async revokeByGrantId(grantId) {
      for (const k of store.get(`grant:${grantId}`) ?? []) store.delete(k);
      store.delete(`grant:${grantId}`);
    }
  };
}

// ---------------------------------------------------------------------------------------
// Provider configuration

function buildConfiguration({
  keys, signing, algs, audiences, ttl, cookieKeys, errors, adapter,
  browserClients = [], findAccountById = () => undefined, logoutConfirm = 'page',
}) {
  const clients = [];
  const addClient = (id, secret, scope, grantTypes) => clients.push({
    client_id: id,
    client_secret: secret,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: grantTypes,
    response_types: [],
    redirect_uris: [],
    ...(scope ? { scope } : {}), // oidc-provider refuses an empty scope string
  });
  for (const [id, c] of Object.entries(CLIENTS)) {
    addClient(id, c.secret, c.scope, id === 'introspector' ? [] : ['client_credentials']);
  }
  for (const alg of algs) addClient(algClientId(alg), ALG_CLIENT_SECRET, SCOPES.join(' '), ['client_credentials']);
  for (const c of browserClients) clients.push(structuredClone(c));

  const algForClient = (clientId) => {
    for (const alg of algs) if (algClientId(alg) === clientId) return alg;
    return algs[0];
  };
  const knownAudiences = new Set(audiences);

  return {
    adapter,
    clients,
    jwks: { keys },
    scopes: ['openid', 'offline_access', ...SCOPES, 'email', 'profile', 'groups'],
    // Claims per scope. conformIdTokenClaims false: they go into the ID token too (not only
    // to userinfo), so a relying party gets email and groups from the ID token alone.
    claims: {
      acr: null,
      sid: null,
      auth_time: null,
      iss: null,
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
    },
    conformIdTokenClaims: false,
    cookies: { keys: cookieKeys },
    clientBasedCORS: () => false,
    findAccount: async (ctx, sub) => findAccountById(sub),
    // Access tokens of a user (authorization code, device flow) carry email and groups, so a
    // token from `portcullis login` meets the same group policies as a browser session.
    extraTokenClaims: async (ctx, token) => {
      if (!token.accountId) return undefined;
      const account = findAccountById(token.accountId);
      if (!account) return undefined;
      const c = await account.claims('access_token', 'openid email groups');
      return { email: c.email, groups: c.groups };
    },
    // Refresh tokens for every client allowed the refresh_token grant (no need for
    // offline_access + prompt=consent), so a gateway can renew sessions silently.
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    pkce: { required: () => true },
    // Outgoing requests (back-channel logout) go to loopback test servers: skip oidc-provider's
    // SSRF guard (it refuses 127.0.0.0/8). HTTPS receivers are trusted through the process's
    // CA store (NODE_EXTRA_CA_CERTS, see client.mjs `extraCa`).
    fetch: (url, options) => {
      const { dispatcher, ...rest } = options; // eslint-disable-line no-unused-vars
      return globalThis.fetch(url, rest);
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = htmlPage('error', 'Sign-in error', `
        <h1>Sign-in error</h1>
        <p><code id="error-code">${htmlEscape(out.error)}</code></p>
        <p id="error-description">${htmlEscape(out.error_description ?? '')}</p>`);
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // Only the introspector clients get answers; anybody else gets {active:false}.
        allowedPolicy: async (ctx, client) => INTROSPECTORS.has(client.clientId),
      },
      revocation: {
        enabled: true,
        allowedPolicy: async (ctx, client, token) => token.clientId === client.clientId
          || INTROSPECTORS.has(client.clientId),
      },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          const auto = logoutConfirm === 'auto';
          ctx.body = htmlPage('logout', 'Sign out', `
            <h1>Sign out of the test IdP?</h1>
            ${form}
            <button id="logout-yes" type="submit" form="op.logoutForm" name="logout" value="yes" autofocus>Yes, sign me out</button>
            <button id="logout-no" class="secondary" type="submit" form="op.logoutForm">No, stay signed in</button>
            ${auto ? `<script>(function(){var f=document.getElementById('op.logoutForm');var i=document.createElement('input');
              i.type='hidden';i.name='logout';i.value='yes';f.appendChild(i);f.submit();})();</script>` : ''}`);
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.body = htmlPage('logged-out', 'Signed out', `
            <h1>Signed out</h1><p id="logged-out">You are signed out of the test IdP.</p>`);
        },
      },
      backchannelLogout: { enabled: true },
      deviceFlow: {
        enabled: true,
        userCodeInputSource: async (ctx, form, out, err) => {
          let msg = '<p>Enter the code shown by your device.</p>';
          if (err && (err.userCode || err.name === 'NoCodeError')) msg = '<p id="error" role="alert">The code you entered is incorrect. Try again.</p>';
          else if (err && err.name === 'AbortedError') msg = '<p id="error" role="alert">The sign-in request was interrupted.</p>';
          else if (err) msg = '<p id="error" role="alert">There was an error processing your request.</p>';
          ctx.body = htmlPage('device-code', 'Device sign-in', `
            <h1>Device sign-in</h1>${msg}${form}
            <button id="device-continue" type="submit" form="op.deviceInputForm">Continue</button>`);
        },
        userCodeConfirmSource: async (ctx, form, client, deviceInfo, userCode) => {
          ctx.body = htmlPage('device-confirm', 'Confirm device', `
            <h1>Confirm device</h1>
            <p><strong id="client-id">${htmlEscape(client.clientName || client.clientId)}</strong> asks to sign in.
               The device should show this code:</p>
            <p><code id="user-code">${htmlEscape(userCode)}</code></p>
            ${form}
            <button id="device-confirm" type="submit" form="op.deviceConfirmForm" autofocus>Continue</button>
            <button id="device-abort" class="secondary" type="submit" form="op.deviceConfirmForm" name="abort" value="yes">Abort</button>`);
        },
        successSource: async (ctx) => {
          ctx.body = htmlPage('device-success', 'Device signed in', `
            <h1>Device signed in</h1><p id="device-success">You can close this page and return to your device.</p>`);
        },
      },
      resourceIndicators: {
        enabled: true,
        // No `resource=` in the request: the first configured audience.
        defaultResource: async (ctx, client, oneOf) => (oneOf ?? audiences[0]),
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, resourceIndicator, client) => {
          if (!knownAudiences.has(resourceIndicator)) {
            throw new errors.InvalidTarget(`unknown resource ${resourceIndicator}`);
          }
          const opaque = CLIENTS[client.clientId]?.tokenFormat === 'opaque';
          const alg = algForClient(client.clientId);
          return {
            scope: SCOPES.join(' '),
            audience: resourceIndicator,
            accessTokenTTL: ttl,
            accessTokenFormat: opaque ? 'opaque' : 'jwt',
            ...(opaque ? {} : { jwt: { sign: { alg, kid: signing[alg] } } }),
          };
        },
      },
    },
    ttl: {
      AccessToken: () => ttl,
      ClientCredentials: () => ttl,
      AuthorizationCode: 60,
      IdToken: ttl,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
      DeviceCode: 600,
      RefreshToken: 86400,
    },
    enabledJWA: {
      idTokenSigningAlgValues: [...SUPPORTED_ALGS],
      userinfoSigningAlgValues: [...SUPPORTED_ALGS],
      introspectionSigningAlgValues: [...SUPPORTED_ALGS],
      authorizationSigningAlgValues: [...SUPPORTED_ALGS],
    },
  };
}

// ---------------------------------------------------------------------------------------
// HTML pages of the fixture: self-contained (no external assets), stable ids.

function htmlEscape(v) {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  }[c]));
}

function htmlPage(pageId, title, body) {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${htmlEscape(title)} - Portcullis test IdP</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:"Liberation Sans",Arial,sans-serif;background:#eef1f5;color:#1d2330;margin:0;padding:48px 16px}
main{max-width:360px;margin:0 auto;background:#fff;border-radius:8px;box-shadow:0 2px 8px rgba(0,0,0,.12);padding:24px 32px}
h1{font-size:1.4em;margin:0 0 16px}label{display:block;font-size:.9em;margin:12px 0 4px}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;font-size:1em;padding:8px;border:1px solid #b8c0cc;border-radius:4px}
button{display:block;width:100%;margin-top:16px;padding:10px;font-size:1em;border:0;border-radius:4px;background:#2f5fd0;color:#fff;cursor:pointer}
button.secondary{background:#e3e7ee;color:#1d2330;margin-top:8px}#error{color:#b00020}
code{font-size:1.2em}footer{text-align:center;font-size:.75em;color:#6b7280;margin-top:16px}
</style></head>
<body data-page="${pageId}"><main>${body}</main><footer>Portcullis test IdP (oidc-provider) - test-only accounts</footer></body></html>`;
}

// ---------------------------------------------------------------------------------------
// Browser SSO helpers

const INTERACTION_ROUTE = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|consent|abort))?$/;

async function readForm(req, limit = 65536) {
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > limit) throw new Error('form too large');
    chunks.push(c);
  }
  return Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
}

function checkAccount(a) {
  if (!a || typeof a.sub !== 'string' || !/^[A-Za-z0-9._@-]{1,128}$/.test(a.sub)) {
    throw new Error('an account needs a sub of 1-128 characters [A-Za-z0-9._@-]');
  }
  if (typeof a.password !== 'string' || !a.password) throw new Error('an account needs a password');
  if (a.groups !== undefined && !(Array.isArray(a.groups) && a.groups.every((g) => typeof g === 'string'))) {
    throw new Error('groups must be an array of strings');
  }
  return a;
}

function accountRecord(a) {
  return {
    password: a.password,
    email: a.email ?? `${a.sub}@example.test`,
    name: a.name ?? a.sub,
    groups: [...(a.groups ?? [])],
  };
}

/** Metadata of an SSO client (confidential web client, authorization code + PKCE). */
function ssoClientMetadata(id, {
  algs, secret, redirect_uris, post_logout_redirect_uris = [], backchannel_logout_uri, tokenEndpointAuthMethod,
}) {
  return {
    client_id: id,
    client_secret: secret ?? SSO_CLIENTS[id]?.secret ?? `${id}-secret`,
    token_endpoint_auth_method: tokenEndpointAuthMethod ?? SSO_CLIENTS[id]?.tokenEndpointAuthMethod ?? 'client_secret_basic',
    application_type: 'web',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: [...redirect_uris],
    post_logout_redirect_uris: [...post_logout_redirect_uris],
    ...(backchannel_logout_uri
      ? { backchannel_logout_uri, backchannel_logout_session_required: true } : {}),
    scope: [...SSO_SCOPES, ...SCOPES].join(' '),
    id_token_signed_response_alg: algs[0],
    require_auth_time: true,
  };
}

// ---------------------------------------------------------------------------------------
// The running fixture

/**
 * Starts the provider (and its control endpoint) in this process.
 * options: {host, port, controlPort, algs, audiences, ttl, jwksMaxAge, cert, key, issuer,
 *           log(line), stage(name)}; cert/key are PEM strings or Buffers (HTTPS), or file paths via
 * certFile/keyFile. stage(name) is called as start-up passes each step (script mode writes
 * them to stderr with timestamps, so a start that hangs shows where).
 */
export async function startOidcProvider(options = {}) {
  const stage = options.stage ?? (() => {});
  const { default: Provider, errors } = await import('oidc-provider');
  stage('oidc-provider imported');

  const host = options.host ?? DEFAULTS.host;
  const algs = parseList(options.algs, DEFAULTS.algs);
  checkAlgs(algs);
  const audiences = parseList(options.audiences, DEFAULTS.audiences);
  if (!audiences.length) throw new Error('at least one audience is needed');
  const ttl = Number(options.ttl ?? DEFAULTS.ttl);
  if (!Number.isInteger(ttl) || ttl <= 0) throw new Error(`bad ttl ${options.ttl}`);
  const jwksMaxAge = options.jwksMaxAge === undefined || options.jwksMaxAge === null
    ? undefined : Number(options.jwksMaxAge);
  const log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
  const cert = options.cert ?? (options.certFile ? fs.readFileSync(options.certFile) : undefined);
  const key = options.key ?? (options.keyFile ? fs.readFileSync(options.keyFile) : undefined);
  if (!!cert !== !!key) throw new Error('--cert and --key go together');
  const tlsOn = !!cert;
  const cookieKeys = [crypto.randomBytes(32).toString('base64url')];
  const sharedStore = createSharedStore();
  const adapter = sharedAdapterFactory(sharedStore);

  const counters = {
    jwks: 0, discovery: 0, token: 0, introspection: 0, revocation: 0,
    authorization: 0, end_session: 0, device_authorization: 0, userinfo: 0, login_ok: 0, login_failed: 0,
    refresh_ok: 0, refresh_failed: 0, token_fault: 0,
  };
  let tokenFault = 'none'; // 'none' | 'status500': how the token endpoint answers (POST /token-fault)
  const backchannelLog = []; // back-channel logout deliveries, oldest first (last 100)

  // Browser SSO: test accounts and browser clients (shared by every provider instance).
  const accounts = new Map(Object.entries(ACCOUNTS).map(([sub, a]) => [sub, structuredClone({ ...a })]));
  for (const a of options.accounts ?? []) accounts.set(checkAccount(a).sub, accountRecord(a));
  const findAccountById = (sub) => {
    const a = accounts.get(sub);
    if (!a) return undefined;
    return {
      accountId: sub,
      claims: async () => ({
        sub,
        email: a.email,
        email_verified: true,
        name: a.name,
        preferred_username: sub,
        groups: [...a.groups],
      }),
    };
  };
  const consent = options.consent ?? 'auto';
  if (!['auto', 'page'].includes(consent)) throw new Error(`bad consent mode ${consent} (auto|page)`);
  const logoutConfirm = options.logoutConfirm ?? 'page';
  if (!['auto', 'page'].includes(logoutConfirm)) throw new Error(`bad logout-confirm mode ${logoutConfirm} (page|auto)`);
  const redirectUris = parseList(options.redirectUris, [PLACEHOLDER_REDIRECT_URI]);
  const postLogoutRedirectUris = parseList(options.postLogoutRedirectUris, []);
  const browserClients = new Map();
  for (const id of Object.keys(SSO_CLIENTS)) {
    browserClients.set(id, ssoClientMetadata(id, {
      algs,
      redirect_uris: redirectUris,
      post_logout_redirect_uris: postLogoutRedirectUris,
      backchannel_logout_uri: options.backchannelLogoutUri,
    }));
  }
  browserClients.set(CLI_CLIENT_ID, {
    client_id: CLI_CLIENT_ID,
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    grant_types: [DEVICE_CODE_GRANT, 'authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: [...CLI_REDIRECT_URIS],
    scope: [...SSO_SCOPES, ...SCOPES].join(' '),
    id_token_signed_response_alg: algs[0],
  });
  let jwksFault = 'none';
  let generation = 0;
  let keys = [];           // private JWKs, newest first
  let signing = {};        // alg -> kid
  let provider;            // the oidc-provider instance in service
  let handler;             // its request listener

  const rotateInternal = async ({ keepOld = true, algs: rotAlgs } = {}) => {
    const list = rotAlgs ? parseList(rotAlgs, algs) : algs;
    checkAlgs(list);
    for (const a of list) {
      if (!algs.includes(a)) throw new Error(`alg ${a} is not one of the configured algs ${algs.join(',')}`);
    }
    generation += 1;
    const fresh = list.map((a) => generateSigningJwk(a, generation));
    const nextSigning = { ...signing };
    for (const k of fresh) nextSigning[k.alg] = k.kid;
    // Keep the current signing key of any alg not rotated now, even when keepOld is false.
    const kept = keepOld ? keys : keys.filter((k) => nextSigning[k.alg] === k.kid);
    const nextKeys = [...fresh, ...kept];
    const next = await buildProvider(nextKeys, nextSigning);
    const previous = { signing, kids: keys.map((k) => k.kid) };
    keys = nextKeys;
    signing = nextSigning;
    provider = next;
    handler = next.callback();
    return previous;
  };

  let issuer;
  const buildProvider = async (ks, sg, bc = browserClients) => {
    const p = new Provider(issuer, buildConfiguration({
      keys: ks.map((k) => structuredClone(k)), signing: sg, algs, audiences, ttl, cookieKeys, errors, adapter,
      browserClients: [...bc.values()], findAccountById, logoutConfirm,
    }));
    // Every browser client must be valid metadata (oidc-provider checks static clients lazily).
    for (const id of bc.keys()) await p.Client.find(id);
    p.use(async (ctx, next) => {
      if (ctx.path === '/jwks') {
        counters.jwks += 1;
        if (jwksFault === 'status500') {
          ctx.status = 500;
          ctx.type = 'application/json';
          ctx.body = { error: 'server_error', error_description: 'injected by /jwks-fault' };
          return;
        }
        if (jwksFault === 'garbage') {
          ctx.status = 200;
          ctx.type = 'application/json';
          ctx.body = '{"keys": [{"kty": "RSA", "n": 42}'; // truncated, not a JWKS
          return;
        }
      } else if (ctx.path === '/.well-known/openid-configuration') counters.discovery += 1;
      else if (ctx.path === '/token') {
        counters.token += 1;
        if (tokenFault === 'status500') {
          counters.token_fault += 1;
          ctx.status = 500;
          ctx.type = 'application/json';
          ctx.body = { error: 'server_error', error_description: 'injected by /token-fault' };
          return;
        }
      }
      else if (ctx.path === '/token/introspection') counters.introspection += 1;
      else if (ctx.path === '/token/revocation') counters.revocation += 1;
      else if (ctx.path === '/auth') counters.authorization += 1;
      else if (ctx.path === '/session/end') counters.end_session += 1;
      else if (ctx.path === '/device/auth') counters.device_authorization += 1;
      else if (ctx.path === '/me') counters.userinfo += 1;
      const m = INTERACTION_ROUTE.exec(ctx.path);
      if (m) {
        await handleInteraction(p, ctx, m[1], m[2]);
        return;
      }
      await next();
      if (ctx.path === '/jwks' && jwksMaxAge !== undefined && ctx.status === 200) {
        ctx.set('Cache-Control', `public, max-age=${jwksMaxAge}`);
      }
    });
    p.on('server_error', (ctx, err) => log(`oidc-provider server_error: ${err?.stack ?? err}`));
    // refresh_token grants served / refused (e.g. invalid_grant after a revocation).
    p.on('grant.success', (ctx) => {
      if (ctx.oidc?.params?.grant_type === 'refresh_token') counters.refresh_ok += 1;
    });
    p.on('grant.error', (ctx, err) => {
      if (ctx.oidc?.params?.grant_type !== 'refresh_token') return;
      counters.refresh_failed += 1;
      log(`oidc fixture: refresh_token grant refused: ${err?.error ?? ''} ${err?.error_description ?? err?.message ?? err}`);
    });
    const noteBackchannel = (entry) => {
      backchannelLog.push({ at: new Date().toISOString(), ...entry });
      if (backchannelLog.length > 100) backchannelLog.shift();
    };
    p.on('backchannel.success', (ctx, client, sub, sid) => {
      noteBackchannel({ ok: true, client_id: client.clientId, uri: client.backchannelLogoutUri, sub, sid });
    });
    p.on('backchannel.error', (ctx, err, client, sub, sid) => {
      log(`oidc fixture: back-channel logout to ${client.backchannelLogoutUri} failed: ${err?.message ?? err}`);
      noteBackchannel({
        ok: false, client_id: client.clientId, uri: client.backchannelLogoutUri, sub, sid, error: String(err?.message ?? err),
      });
    });
    return p;
  };

  // The login and consent pages (oidc-provider's "interactions"), served by every instance.
  const finishInteraction = async (p, ctx, result, mergeWithLastSubmission) => {
    const returnTo = await p.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission });
    ctx.status = 303;
    ctx.redirect(returnTo);
  };
  const grantConsent = async (p, details) => {
    const { prompt: { details: missing }, grantId, session, params } = details;
    const grant = grantId
      ? await p.Grant.find(grantId)
      : new p.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scope] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scope.join(' '));
      }
    }
    if (missing.rar) for (const detail of missing.rar) grant.addRar(detail);
    return { consent: { grantId: await grant.save() } };
  };
  const handleInteraction = async (p, ctx, uid, action) => {
    ctx.set('cache-control', 'no-store');
    let details;
    try {
      details = await p.interactionDetails(ctx.req, ctx.res);
      if (details.uid !== uid) throw new Error('interaction mismatch');
    } catch (e) {
      ctx.status = 400;
      ctx.type = 'html';
      ctx.body = htmlPage('error', 'Sign-in error', `<h1>Sign-in error</h1>
        <p><code id="error-code">invalid_interaction</code></p>
        <p id="error-description">${htmlEscape(e.message)} (start the sign-in again)</p>`);
      return;
    }
    const { prompt, params } = details;
    const clientId = params.client_id;
    const loginPage = (error, login = params.login_hint ?? '') => {
      ctx.type = 'html';
      ctx.body = htmlPage('login', 'Sign in', `
        <h1>Sign in</h1>
        <p>to <strong id="client-id">${htmlEscape(clientId)}</strong></p>
        ${error ? `<p id="error" role="alert">${htmlEscape(error)}</p>` : ''}
        <form id="login-form" method="post" action="/interaction/${htmlEscape(uid)}/login" autocomplete="off">
          <label for="username">Username</label>
          <input id="username" name="login" type="text" value="${htmlEscape(login)}" autofocus required>
          <label for="password">Password</label>
          <input id="password" name="password" type="password" required>
          <button id="sign-in" type="submit">Sign in</button>
        </form>
        <form method="post" action="/interaction/${htmlEscape(uid)}/abort">
          <button id="cancel" class="secondary" type="submit">Cancel</button>
        </form>`);
    };
    if (!action) {
      if (prompt.name === 'login') return loginPage();
      if (prompt.name === 'consent') {
        // auto: granted without a page, unless the client asked for one (prompt=consent).
        const asked = String(params.prompt ?? '').split(' ').includes('consent');
        if (consent === 'auto' && !asked) return finishInteraction(p, ctx, await grantConsent(p, details), true);
        const scopes = [...new Set([...(prompt.details.missingOIDCScope ?? []),
          ...Object.values(prompt.details.missingResourceScopes ?? {}).flat()])];
        ctx.type = 'html';
        ctx.body = htmlPage('consent', 'Authorize', `
          <h1>Authorize <span id="client-id">${htmlEscape(clientId)}</span></h1>
          <p>Signed in as <strong id="account">${htmlEscape(details.session?.accountId)}</strong>. The application asks for:</p>
          <ul id="scopes">${scopes.map((sc) => `<li>${htmlEscape(sc)}</li>`).join('')}</ul>
          <form method="post" action="/interaction/${htmlEscape(uid)}/consent"><button id="approve" type="submit" autofocus>Allow</button></form>
          <form method="post" action="/interaction/${htmlEscape(uid)}/abort"><button id="deny" class="secondary" type="submit">Deny</button></form>`);
        return undefined;
      }
      ctx.throw(501, `interaction prompt ${prompt.name} is not implemented`);
    }
    if (ctx.method !== 'POST') ctx.throw(405, 'POST only');
    const form = await readForm(ctx.req);
    if (action === 'abort') {
      return finishInteraction(p, ctx, { error: 'access_denied', error_description: 'End-User aborted interaction' }, false);
    }
    if (action === 'login') {
      if (prompt.name !== 'login') ctx.throw(400, `this interaction is at ${prompt.name}, not login`);
      const login = String(form.login ?? '');
      const sub = accounts.has(login) ? login : [...accounts].find(([, a]) => a.email === login)?.[0];
      if (!sub || accounts.get(sub).password !== String(form.password ?? '')) {
        counters.login_failed += 1;
        return loginPage('Invalid username or password.', login);
      }
      counters.login_ok += 1;
      return finishInteraction(p, ctx, { login: { accountId: sub } }, false);
    }
    // consent
    if (prompt.name !== 'consent') ctx.throw(400, `this interaction is at ${prompt.name}, not consent`);
    return finishInteraction(p, ctx, await grantConsent(p, details), true);
  };

  // One listening socket for the whole life of the fixture; the handler is swapped on rotation.
  const listener = (req, res) => handler(req, res);
  const server = tlsOn ? https.createServer({ cert, key }, listener) : http.createServer(listener);
  server.keepAliveTimeout = 5000;
  await listen(server, options.port ?? DEFAULTS.port, host);
  stage('provider port listening');
  const { port } = server.address();
  issuer = options.issuer ?? (tlsOn ? `https://localhost:${port}` : `http://${host}:${port}`);

  // First generation: one key per alg.
  keys = algs.map((a) => generateSigningJwk(a, 0));
  signing = Object.fromEntries(keys.map((k) => [k.alg, k.kid]));
  stage('signing keys generated');
  provider = await buildProvider(keys, signing);
  handler = provider.callback();
  stage('provider built');

  const state = () => ({
    issuer,
    generation,
    algs,
    audiences,
    kids: keys.map((k) => k.kid),
    signing: { ...signing },
    jwks: { keys: keys.map(publicJwk) },
    jwks_fault: jwksFault,
    token_fault: tokenFault,
    counters: { ...counters },
    backchannel_logouts: backchannelLog.map((e) => ({ ...e })),
  });

  let rotating = Promise.resolve();
  const rotateKey = (opts = {}) => {
    const run = rotating.then(async () => {
      const previous = await rotateInternal(opts);
      const s = { ...state(), previous };
      log(`oidc fixture: rotated keys (generation ${generation}, keepOld ${opts.keepOld ?? true}): signing ${JSON.stringify(signing)}`);
      options.onRotate?.(s);
      return s;
    });
    rotating = run.catch(() => {});
    return run;
  };

  // Browser clients and accounts (control: /clients, /accounts, /logout-token).
  const clientsInfo = () => [...browserClients.values()].map((c) => structuredClone(c));
  const updateClient = (metadata = {}) => {
    const run = rotating.then(async () => {
      const id = metadata.client_id;
      if (typeof id !== 'string' || !id) throw new Error('client_id is required');
      if (CLIENTS[id] || id.startsWith('gateway-tests')) throw new Error(`${id} is a client_credentials client of the fixture`);
      const base = browserClients.get(id) ?? ssoClientMetadata(id, { algs, redirect_uris: redirectUris });
      const merged = { ...base, ...structuredClone(metadata) };
      if (merged.backchannel_logout_uri && merged.backchannel_logout_session_required === undefined) {
        merged.backchannel_logout_session_required = true;
      }
      for (const [k, v] of Object.entries(merged)) if (v === null) delete merged[k]; // null removes a field
      const next = new Map(browserClients);
      next.set(id, merged);
      const built = await buildProvider(keys, signing, next); // throws on invalid metadata
      browserClients.set(id, merged);
      provider = built;
      handler = built.callback();
      log(`oidc fixture: client ${id} is now ${JSON.stringify(merged)}`);
      return structuredClone(merged);
    });
    rotating = run.catch(() => {});
    return run;
  };
  const accountsInfo = () => [...accounts].map(([sub, a]) => ({ sub, email: a.email, name: a.name, groups: [...a.groups] }));
  const setAccount = (a) => {
    checkAccount(a);
    accounts.set(a.sub, accountRecord(a));
    return accountsInfo().find((x) => x.sub === a.sub);
  };
  const removeAccount = ({ sub } = {}) => {
    if (typeof sub !== 'string' || !sub) throw new Error('sub is required');
    return { removed: accounts.delete(sub) };
  };
  // Refresh tokens (or other token kinds) the provider holds, e.g. to revoke the one a relying
  // party keeps to itself through the revocation endpoint. The opaque token value is its id.
  const listTokens = ({ sub, client_id: clientId, kind = 'RefreshToken' } = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return sharedStore.list(`${kind}:`)
      .map(([k, v]) => ({ value: k.slice(kind.length + 1), ...v }))
      .filter((t) => (!sub || t.accountId === sub) && (!clientId || t.clientId === clientId))
      .filter((t) => !(typeof t.exp === 'number' && t.exp <= now))
      .map((t) => ({
        kind, value: t.value, sub: t.accountId, client_id: t.clientId, grant_id: t.grantId,
        iat: t.iat, exp: t.exp, consumed: t.consumed ?? null, session_uid: t.sessionUid, sid: t.sid,
      }));
  };
  // Any JWS signed with one of the provider's current signing keys (for negative tests: a
  // logout token without its event, with a nonce, expired...). header is merged over
  // {alg, kid, typ: 'JWT'}; alg defaults to the first configured one.
  const signJwt = ({ payload, header = {}, alg = algs[0] } = {}) => {
    if (!payload || typeof payload !== 'object') throw new Error('payload (an object) is required');
    const jwk = keys.find((k) => k.kid === signing[alg]);
    if (!jwk) throw new Error(`no signing key for ${alg}`);
    const h = { alg, kid: jwk.kid, typ: 'JWT', ...header };
    const input = `${Buffer.from(JSON.stringify(h)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
    const key = crypto.createPrivateKey({ key: jwk, format: 'jwk' });
    const hash = alg === 'EdDSA' ? null : `sha${alg.slice(2)}`;
    const sig = crypto.sign(hash, Buffer.from(input), {
      key,
      ...(alg.startsWith('ES') ? { dsaEncoding: 'ieee-p1363' } : {}),
      ...(alg.startsWith('PS') ? { padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST } : {}),
    });
    return { jwt: `${input}.${sig.toString('base64url')}` };
  };
  const setTokenFault = (mode) => {
    if (!['none', 'status500'].includes(mode)) throw new Error(`bad token fault mode ${mode}`);
    tokenFault = mode;
    return state();
  };
  const mintLogoutToken = async ({ client_id: clientId, sub, sid, deliver = false } = {}) => {
    const client = await provider.Client.find(String(clientId ?? ''));
    if (!client) throw new Error(`unknown client ${clientId}`);
    if (typeof sub !== 'string' || !sub) throw new Error('sub is required');
    if (deliver) {
      if (!client.backchannelLogoutUri) throw new Error(`${clientId} has no backchannel_logout_uri`);
      try {
        await client.backchannelLogout(sub, sid);
        return { delivered: true, uri: client.backchannelLogoutUri };
      } catch (e) {
        return { delivered: false, uri: client.backchannelLogoutUri, error: String(e?.message ?? e) };
      }
    }
    const token = new provider.IdToken({ sub }, { client, ctx: undefined });
    token.mask = { sub: null };
    token.set('events', { 'http://schemas.openid.net/event/backchannel-logout': {} });
    token.set('jti', crypto.randomBytes(16).toString('base64url'));
    if (sid) token.set('sid', sid);
    return { logout_token: await token.issue({ use: 'logout' }) };
  };

  const setJwksFault = (mode) => {
    if (!['none', 'status500', 'garbage'].includes(mode)) throw new Error(`bad jwks fault mode ${mode}`);
    jwksFault = mode;
    return state();
  };

  // Control endpoint
  let closeAll;
  const control = http.createServer(async (req, res) => {
    const send = (status, body) => {
      const data = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
      res.end(data);
    };
    try {
      const url = new URL(req.url, 'http://control');
      const chunks = [];
      for await (const c of req) chunks.push(c);
      const raw = Buffer.concat(chunks).toString('utf8');
      const body = raw.trim() ? JSON.parse(raw) : {};
      if (req.method === 'GET' && url.pathname === '/state') return send(200, state());
      if (req.method === 'POST' && url.pathname === '/rotate') {
        let keepOld = body.keepOld ?? true;
        if (url.searchParams.has('keepOld')) keepOld = url.searchParams.get('keepOld') !== 'false';
        if (typeof keepOld !== 'boolean') return send(400, { error: 'keepOld must be a boolean' });
        return send(200, await rotateKey({ keepOld, algs: body.algs }));
      }
      if (req.method === 'POST' && url.pathname === '/jwks-fault') {
        return send(200, setJwksFault(body.mode ?? url.searchParams.get('mode') ?? 'none'));
      }
      if (req.method === 'POST' && url.pathname === '/shutdown') {
        send(200, { ok: true });
        res.on('finish', () => { closeAll().then(() => options.onShutdown?.()); });
        return undefined;
      }
      if (req.method === 'GET' && url.pathname === '/clients') return send(200, { clients: clientsInfo() });
      if (req.method === 'POST' && url.pathname === '/clients') return send(200, await updateClient(body));
      if (req.method === 'GET' && url.pathname === '/accounts') return send(200, { accounts: accountsInfo() });
      if (req.method === 'POST' && url.pathname === '/accounts') return send(200, setAccount(body));
      if (req.method === 'POST' && url.pathname === '/accounts/remove') return send(200, removeAccount(body));
      if (req.method === 'POST' && url.pathname === '/logout-token') return send(200, await mintLogoutToken(body));
      if (req.method === 'GET' && url.pathname === '/tokens') {
        return send(200, { tokens: listTokens(Object.fromEntries(url.searchParams)) });
      }
      if (req.method === 'POST' && url.pathname === '/sign') return send(200, signJwt(body));
      if (req.method === 'POST' && url.pathname === '/token-fault') {
        return send(200, setTokenFault(body.mode ?? url.searchParams.get('mode') ?? 'none'));
      }
      return send(404, {
        error: 'not_found',
        endpoints: ['GET /state', 'POST /rotate', 'POST /jwks-fault', 'POST /token-fault', 'POST /shutdown',
          'GET /clients', 'POST /clients', 'GET /accounts', 'POST /accounts', 'POST /accounts/remove',
          'POST /logout-token', 'GET /tokens', 'POST /sign'],
      });
    } catch (e) {
      return send(400, { error: String(e?.message ?? e) });
    }
  });
  try {
    await listen(control, options.controlPort ?? DEFAULTS.controlPort, host);
    stage('control port listening');
  } catch (e) {
    await closeServer(server);
    throw e;
  }
  const controlUrl = `http://${host}:${control.address().port}`;

  let closed;
  closeAll = () => {
    closed ??= Promise.all([closeServer(server), closeServer(control)]).then(() => undefined);
    return closed;
  };

  return {
    issuer,
    port,
    host,
    tls: tlsOn,
    discovery: `${issuer}/.well-known/openid-configuration`,
    jwks_uri: `${issuer}/jwks`,
    token_endpoint: `${issuer}/token`,
    introspection_endpoint: `${issuer}/token/introspection`,
    revocation_endpoint: `${issuer}/token/revocation`,
    authorization_endpoint: `${issuer}/auth`,
    end_session_endpoint: `${issuer}/session/end`,
    device_authorization_endpoint: `${issuer}/device/auth`,
    device_verification_uri: `${issuer}/device`,
    userinfo_endpoint: `${issuer}/me`,
    control: controlUrl,
    control_port: control.address().port,
    get provider() { return provider; },
    state,
    rotateKey,
    setJwksFault,
    clients: clientsInfo,
    updateClient,
    accounts: accountsInfo,
    setAccount,
    removeAccount,
    listTokens,
    signJwt,
    setTokenFault,
    mintLogoutToken,
    consent,
    logoutConfirm,
    close: closeAll,
  };
}

function listen(server, port, host) {
  return new Promise((resolve, reject) => {
    const onError = (e) => reject(e);
    server.once('error', onError);
    server.listen(Number(port), host, () => { server.off('error', onError); resolve(); });
  });
}

function closeServer(server) {
  return new Promise((resolve) => {
    if (!server.listening) { resolve(); return; }
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}

// ---------------------------------------------------------------------------------------
// Script mode

function parseArgs(argv) {
  const out = {};
  const flags = new Set(['exit-with-stdin']);
  const repeatable = new Set(['redirect-uri', 'post-logout-redirect-uri']);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    let name = a.slice(2);
    let value;
    const eq = name.indexOf('=');
    if (eq >= 0) { value = name.slice(eq + 1); name = name.slice(0, eq); }
    if (flags.has(name)) { out[name] = true; continue; }
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new Error(`--${name} needs a value`);
    }
    out[name] = repeatable.has(name) && out[name] !== undefined ? `${out[name]},${value}` : value;
  }
  return out;
}

async function main() {
  // Keep stdout for the JSON lines: oidc-provider prints its notices with console.info.
  console.info = (...a) => console.error(...a);
  console.log = (...a) => console.error(...a);
  const args = parseArgs(process.argv.slice(2));
  const known = new Set(['port', 'control-port', 'algs', 'audiences', 'ttl', 'jwks-max-age', 'cert', 'key', 'issuer', 'host', 'exit-with-stdin',
    'redirect-uri', 'post-logout-redirect-uri', 'backchannel-logout-uri', 'consent', 'logout-confirm']);
  for (const k of Object.keys(args)) if (!known.has(k)) throw new Error(`unknown option --${k}`);

  const emit = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
  const started = performance.now();
  const stage = (name) => process.stderr.write(`[oidc fixture +${Math.round(performance.now() - started)} ms] ${name}\n`);
  stage(`main (node up ${Math.round(started)} ms after process start)`);
  let fx;
  const shutdown = async (code = 0) => {
    try { await fx?.close(); } finally { process.exit(code); }
  };
  fx = await startOidcProvider({
    host: args.host,
    port: args.port ?? 0,
    controlPort: args['control-port'] ?? 0,
    algs: args.algs,
    audiences: args.audiences,
    ttl: args.ttl,
    jwksMaxAge: args['jwks-max-age'],
    certFile: args.cert,
    keyFile: args.key,
    issuer: args.issuer,
    redirectUris: args['redirect-uri'],
    postLogoutRedirectUris: args['post-logout-redirect-uri'],
    backchannelLogoutUri: args['backchannel-logout-uri'],
    consent: args.consent,
    logoutConfirm: args['logout-confirm'],
    onRotate: (s) => emit({ event: 'rotated', ...summary(s) }),
    onShutdown: () => process.exit(0),
    stage,
  });
  for (const sig of ['SIGTERM', 'SIGINT']) process.once(sig, () => { shutdown(0); });
  process.on('SIGUSR2', () => {
    fx.rotateKey({ keepOld: true }).catch((e) => process.stderr.write(`rotation failed: ${e.stack}\n`));
  });
  if (args['exit-with-stdin']) {
    process.stdin.on('end', () => shutdown(0));
    process.stdin.on('error', () => shutdown(0));
    process.stdin.resume();
  }
  const s = fx.state();
  emit({
    event: 'ready',
    issuer: fx.issuer,
    port: fx.port,
    discovery: fx.discovery,
    jwks_uri: fx.jwks_uri,
    token_endpoint: fx.token_endpoint,
    introspection_endpoint: fx.introspection_endpoint,
    revocation_endpoint: fx.revocation_endpoint,
    authorization_endpoint: fx.authorization_endpoint,
    end_session_endpoint: fx.end_session_endpoint,
    device_authorization_endpoint: fx.device_authorization_endpoint,
    device_verification_uri: fx.device_verification_uri,
    userinfo_endpoint: fx.userinfo_endpoint,
    control: fx.control,
    control_port: fx.control_port,
    pid: process.pid,
    ...summary(s),
    clients: fx.clients().map((c) => ({
      client_id: c.client_id,
      redirect_uris: c.redirect_uris,
      post_logout_redirect_uris: c.post_logout_redirect_uris,
      backchannel_logout_uri: c.backchannel_logout_uri,
    })),
    consent: fx.consent,
    logout_confirm: fx.logoutConfirm,
  });
}

function summary(s) {
  return {
    generation: s.generation, algs: s.algs, audiences: s.audiences, kids: s.kids, signing: s.signing,
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) {
  main().catch((e) => {
    process.stderr.write(`oidc fixture failed to start: ${e?.stack ?? e}\n`);
    process.exit(1);
  });
}
