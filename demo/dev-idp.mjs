#!/usr/bin/env node
// A development stand-in for an identity provider, for the demo only (node: built-ins only).
//   node demo/dev-idp.mjs keygen DIR          writes DIR/token-signing.key (EC P-256, PKCS#8) and
//                                             DIR/demo-jwks.json (its public JWKS, kid "demo-1")
//   node demo/dev-idp.mjs mint DIR [--sub S] [--scope "a b"] [--aud A] [--ttl SECONDS] [--email E]
//                                             prints an ES256 access token (typ at+jwt) signed
//                                             with DIR/token-signing.key
// The issuer is https://idp.demo.portcullis.local, the audience api://demo, as in config/demo.yaml.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const ISSUER = 'https://idp.demo.portcullis.local';
const KID = 'demo-1';
const [cmd, dir, ...rest] = process.argv.slice(2);
if (!cmd || !dir) {
  console.error('usage: dev-idp.mjs keygen DIR | mint DIR [--sub S] [--scope S] [--aud A] [--ttl N]');
  process.exit(2);
}
const keyFile = path.join(dir, 'token-signing.key');
const b64url = (buf) => Buffer.from(buf).toString('base64url');

if (cmd === 'keygen') {
  fs.mkdirSync(dir, { recursive: true });
  if (!fs.existsSync(keyFile)) {
    const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    fs.writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  }
  const pub = crypto.createPublicKey(fs.readFileSync(keyFile)).export({ format: 'jwk' });
  const jwks = { keys: [{ ...pub, kid: KID, alg: 'ES256', use: 'sig' }] };
  fs.writeFileSync(path.join(dir, 'demo-jwks.json'), JSON.stringify(jwks, null, 2) + '\n');
  console.log(`demo signing key and JWKS in ${dir}`);
} else if (cmd === 'mint') {
  const opt = { sub: 'alice', scope: 'orders:read', aud: 'api://demo', ttl: '3600', email: 'alice@example.com' };
  for (let i = 0; i < rest.length; i += 2) opt[rest[i].replace(/^--/, '')] = rest[i + 1];
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: 'ES256', typ: 'at+jwt', kid: KID };
  const payload = {
    iss: ISSUER, sub: opt.sub, aud: opt.aud, iat: now, exp: now + Number(opt.ttl),
    scope: opt.scope, email: opt.email, client_id: 'demo-cli', jti: crypto.randomUUID(),
  };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  const sig = crypto.sign('sha256', Buffer.from(input), { key: fs.readFileSync(keyFile), dsaEncoding: 'ieee-p1363' });
  console.log(`${input}.${b64url(sig)}`);
} else {
  console.error(`unknown command ${cmd}`);
  process.exit(2);
}
