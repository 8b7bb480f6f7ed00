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
//                        counters: {jwks, discovery, token, introspection} requests served
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
//
// As a module: `startOidcProvider(options)` runs the same thing in the calling process and
// resolves with {issuer, port, urls.., control, rotateKey({keepOld, algs}), state(),
// setJwksFault(mode), close()}. `CLIENTS`, `SCOPES` and `DEFAULTS` describe the fixture.
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
  return { get, set, delete: (k) => entries.delete(k) };
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

function buildConfiguration({ keys, signing, algs, audiences, ttl, cookieKeys, errors, adapter }) {
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

  const algForClient = (clientId) => {
    for (const alg of algs) if (algClientId(alg) === clientId) return alg;
    return algs[0];
  };
  const knownAudiences = new Set(audiences);

  return {
    adapter,
    clients,
    jwks: { keys },
    scopes: ['openid', 'offline_access', ...SCOPES],
    cookies: { keys: cookieKeys },
    clientBasedCORS: () => false,
    findAccount: async () => undefined,
    features: {
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
// The running fixture

/**
 * Starts the provider (and its control endpoint) in this process.
 * options: {host, port, controlPort, algs, audiences, ttl, jwksMaxAge, cert, key, issuer,
 *           log(line)}; cert/key are PEM strings or Buffers (HTTPS), or file paths via certFile/keyFile.
 */
export async function startOidcProvider(options = {}) {
  const { default: Provider, errors } = await import('oidc-provider');

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
  const adapter = sharedAdapterFactory(createSharedStore());

  const counters = { jwks: 0, discovery: 0, token: 0, introspection: 0, revocation: 0 };
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
  const buildProvider = async (ks, sg) => {
    const p = new Provider(issuer, buildConfiguration({
      keys: ks.map((k) => structuredClone(k)), signing: sg, algs, audiences, ttl, cookieKeys, errors, adapter,
    }));
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
      else if (ctx.path === '/token') counters.token += 1;
      else if (ctx.path === '/token/introspection') counters.introspection += 1;
      else if (ctx.path === '/token/revocation') counters.revocation += 1;
      await next();
      if (ctx.path === '/jwks' && jwksMaxAge !== undefined && ctx.status === 200) {
        ctx.set('Cache-Control', `public, max-age=${jwksMaxAge}`);
      }
    });
    p.on('server_error', (ctx, err) => log(`oidc-provider server_error: ${err?.stack ?? err}`));
    return p;
  };

  // One listening socket for the whole life of the fixture; the handler is swapped on rotation.
  const listener = (req, res) => handler(req, res);
  const server = tlsOn ? https.createServer({ cert, key }, listener) : http.createServer(listener);
  server.keepAliveTimeout = 5000;
  await listen(server, options.port ?? DEFAULTS.port, host);
  const { port } = server.address();
  issuer = options.issuer ?? (tlsOn ? `https://localhost:${port}` : `http://${host}:${port}`);

  // First generation: one key per alg.
  keys = algs.map((a) => generateSigningJwk(a, 0));
  signing = Object.fromEntries(keys.map((k) => [k.alg, k.kid]));
  provider = await buildProvider(keys, signing);
  handler = provider.callback();

  const state = () => ({
    issuer,
    generation,
    algs,
    audiences,
    kids: keys.map((k) => k.kid),
    signing: { ...signing },
    jwks: { keys: keys.map(publicJwk) },
    jwks_fault: jwksFault,
    counters: { ...counters },
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
      return send(404, { error: 'not_found', endpoints: ['GET /state', 'POST /rotate', 'POST /jwks-fault', 'POST /shutdown'] });
    } catch (e) {
      return send(400, { error: String(e?.message ?? e) });
    }
  });
  try {
    await listen(control, options.controlPort ?? DEFAULTS.controlPort, host);
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
    control: controlUrl,
    control_port: control.address().port,
    get provider() { return provider; },
    state,
    rotateKey,
    setJwksFault,
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
    out[name] = value;
  }
  return out;
}

async function main() {
  // Keep stdout for the JSON lines: oidc-provider prints its notices with console.info.
  console.info = (...a) => console.error(...a);
  console.log = (...a) => console.error(...a);
  const args = parseArgs(process.argv.slice(2));
  const known = new Set(['port', 'control-port', 'algs', 'audiences', 'ttl', 'jwks-max-age', 'cert', 'key', 'issuer', 'host', 'exit-with-stdin']);
  for (const k of Object.keys(args)) if (!known.has(k)) throw new Error(`unknown option --${k}`);

  const emit = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
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
    onRotate: (s) => emit({ event: 'rotated', ...summary(s) }),
    onShutdown: () => process.exit(0),
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
    control: fx.control,
    control_port: fx.control_port,
    pid: process.pid,
    ...summary(s),
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
