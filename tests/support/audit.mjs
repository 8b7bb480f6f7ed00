// Helpers for the audit-log integration tests (tests/integration/audit_pipeline.test.mjs): an
// Ed25519 audit key made here (private PKCS#8 PEM for the gateway's audit.key_file, public SPKI
// PEM for `audit verify --key`), reading the gateway's audit files as raw lines, an independent
// hash-chain check written from docs/audit-format.md, the `portcullis audit` commands, a small
// RFC 4180 parser and the portcullis_audit_* metrics. node: built-ins only (plus harness.mjs).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { runGateway, metricSum, parseMetrics } from './harness.mjs';

export const ZERO_HASH = '0'.repeat(64);
export const sha256hex = (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');
/** RFC 7638 thumbprint of an Ed25519 JWK x, as docs/audit-format.md defines `kid`. */
export const thumbprint = (x) => crypto.createHash('sha256')
  .update(`{"crv":"Ed25519","kty":"OKP","x":"${x}"}`).digest('base64url');

/**
 * A fresh Ed25519 key: DIR/audit-key.pem (PKCS#8, mode 0600) and DIR/audit-pub.pem (SPKI,
 * derived from the private PEM with node:crypto). Returns {keyPath, pubPath, x, kid}.
 */
export function makeAuditKey(dir) {
  const { privateKey } = crypto.generateKeyPairSync('ed25519');
  const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' });
  const keyPath = path.join(dir, 'audit-key.pem');
  fs.writeFileSync(keyPath, privatePem, { mode: 0o600 });
  fs.chmodSync(keyPath, 0o600);
  const publicKey = crypto.createPublicKey(privatePem);
  const pubPath = path.join(dir, 'audit-pub.pem');
  fs.writeFileSync(pubPath, publicKey.export({ type: 'spki', format: 'pem' }));
  const { x } = publicKey.export({ format: 'jwk' });
  return { keyPath, pubPath, x, kid: thumbprint(x) };
}

/** The *.jsonl files of a directory (absolute paths, sorted by name). */
export function auditFiles(dir) {
  return fs.readdirSync(dir).filter((f) => f.endsWith('.jsonl')).sort().map((f) => path.join(dir, f));
}

/**
 * One audit file as raw lines (latin1, so bytes are kept): {file, bytes, lines: [{text, rec,
 * number, offset}], torn: {offset, length, text, sha256} | null}.
 */
export function readAuditFile(file) {
  const bytes = fs.readFileSync(file);
  const text = bytes.toString('latin1');
  const parts = text.split('\n');
  const lines = [];
  let offset = 0;
  for (let i = 0; i < parts.length - 1; i++) {
    let rec = null;
    try { rec = JSON.parse(parts[i]); } catch { /* left null: the caller reports it */ }
    lines.push({ text: parts[i], rec, number: i + 1, offset, file });
    offset += parts[i].length + 1;
  }
  const last = parts[parts.length - 1];
  const torn = last === '' ? null : {
    offset, length: last.length, text: last, sha256: sha256hex(Buffer.from(last, 'latin1')), line: parts.length,
  };
  return { file, bytes, lines, torn };
}

/** All complete lines of the files, files ordered by the seq of their first line. */
export function readAuditChain(files) {
  const read = files.map(readAuditFile).filter((f) => f.lines.length > 0);
  read.sort((a, b) => a.lines[0].rec.seq - b.lines[0].rec.seq);
  return { files: read, lines: read.flatMap((f) => f.lines) };
}

/**
 * Independent check of complete lines (docs/audit-format.md "Verifying without our code",
 * steps 3 and 5): pure ASCII, seq/prev/type first, seq + 1, prev = SHA-256 of the previous
 * line, genesis with seq 0 and a zero prev, checkpoint signatures with `x` (the pinned key).
 * Returns a list of problems ([] when the chain holds) and counts.
 */
export function checkChain(lines, x) {
  const problems = [];
  const pub = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
  let prev = null;
  let checkpoints = 0;
  let requests = 0;
  for (const l of lines) {
    const at = `${path.basename(l.file)}:${l.number}`;
    if (!l.rec) { problems.push(`${at}: not JSON`); prev = l; continue; }
    const r = l.rec;
    if (!/^[\x20-\x7e]*$/.test(l.text)) problems.push(`${at}: not printable ASCII`);
    if (!l.text.startsWith(`{"seq":${r.seq},"prev":"${r.prev}","type":"${r.type}"`)) problems.push(`${at}: seq, prev, type are not first`);
    if (r.type === 'genesis' && (r.seq !== 0 || r.prev !== ZERO_HASH)) problems.push(`${at}: genesis with seq ${r.seq}`);
    if (prev) {
      if (r.seq !== prev.rec.seq + 1) problems.push(`${at}: seq ${r.seq} after ${prev.rec.seq}`);
      if (r.prev !== sha256hex(Buffer.from(prev.text, 'latin1'))) problems.push(`${at}: prev does not hash the previous line`);
    }
    if (['genesis', 'start', 'rotate'].includes(r.type)) {
      if (r.key?.x !== x || r.kid !== thumbprint(x)) problems.push(`${at}: ${r.type} announces another key`);
    }
    if (r.type === 'checkpoint') {
      const cut = l.text.lastIndexOf(',"sig":"');
      const message = `${l.text.slice(0, cut)}}`;
      if (r.kid !== thumbprint(x) || !crypto.verify(null, Buffer.from(message, 'latin1'), pub, Buffer.from(r.sig, 'base64url'))) {
        problems.push(`${at}: checkpoint signature does not verify`);
      } else {
        checkpoints++;
      }
    }
    if (r.type === 'request') requests++;
    prev = l;
  }
  return { problems, checkpoints, requests };
}

/** `portcullis audit verify [--key PUB] PATHS...` -> {code, stdout, stderr}. */
export function auditVerify(paths, { key } = {}) {
  return runGateway(['audit', 'verify', ...(key ? ['--key', key] : []), ...paths]);
}

/** `portcullis audit export ARGS... PATHS...` -> {code, stdout, stderr}. */
export function auditExport(args, paths) {
  return runGateway(['audit', 'export', ...args, ...paths]);
}

/** RFC 4180 text (CRLF rows) -> array of rows (arrays of cells); the final empty row dropped. */
export function parseCsv(text) {
  const rows = [];
  let row = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') quoted = false; else cell += c;
    } else if (c === '"') {
      quoted = true;
    } else if (c === ',') {
      row.push(cell); cell = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(cell); rows.push(row); row = []; cell = ''; i++;
    } else {
      cell += c;
    }
  }
  if (cell !== '' || row.length) { row.push(cell); rows.push(row); }
  return rows;
}

/** The portcullis_audit_* values of a /metrics text. */
export function auditMetrics(text) {
  const s = parseMetrics(text);
  return {
    written: metricSum(s, 'portcullis_audit_records_written_total'),
    dropped: metricSum(s, 'portcullis_audit_records_dropped_total'),
    writeErrors: metricSum(s, 'portcullis_audit_write_errors_total'),
    queueDepth: metricSum(s, 'portcullis_audit_queue_depth'),
    checkpoints: metricSum(s, 'portcullis_audit_checkpoints_total'),
    rotations: metricSum(s, 'portcullis_audit_rotations_total'),
    sinkOk: metricSum(s, 'portcullis_audit_sink_ok'),
    // Lines copied to stdout as a secondary sink (with a file); stdout as the only sink counts as written.
    stdoutShipped: metricSum(s, 'portcullis_audit_shipped_total', { sink: 'stdout', result: 'ok' }),
  };
}
