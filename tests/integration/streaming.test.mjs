// 1 GiB up and 1 GiB down through the gateway with bounded memory. Streams are generated
// on the fly and counted, never held in memory.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startGateway, startUpstream, basicConfig, writePattern } from '../support/harness.mjs';

const GiB = 1024 * 1024 * 1024;
const SIZE = Number(process.env.PORTCULLIS_STREAM_BYTES || GiB);
const HWM_LIMIT_KIB = 200 * 1024;

function mbps(bytes, ms) {
  return ((bytes / (1024 * 1024)) / (ms / 1000)).toFixed(1);
}

describe('streaming', { timeout: 600_000 }, () => {
  let gw;
  let up;
  let port;
  let sampler;
  let peakRssKiB = 0;

  before(async () => {
    up = await startUpstream({ name: 'bulk' });
    const { config, ports } = await basicConfig({
      upstreams: [{ name: 'bulk', endpoints: [up.address], timeouts: { connect: '1s', request: '300s', idle: '60s' } }],
      routes: [{ name: 'bulk', match: { path_prefix: '/bulk' }, upstream: 'bulk', auth: 'public', max_body: '2GiB' }],
    });
    port = ports.plain;
    gw = await startGateway({ config });
    sampler = setInterval(() => {
      try { peakRssKiB = Math.max(peakRssKiB, gw.rssKiB()); } catch { /* exited */ }
    }, 250);
  });

  after(async () => {
    clearInterval(sampler);
    await gw?.stop();
    await up?.close();
  });

  test(`upload ${SIZE} bytes: the upstream counts every byte`, { timeout: 300_000 }, async (t) => {
    const started = Date.now();
    const result = await new Promise((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1', port, path: '/bulk/upload', method: 'POST', agent: false,
        headers: { 'content-length': String(SIZE), 'content-type': 'application/octet-stream' },
      }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => { body += c; });
        res.on('end', () => resolve({ status: res.statusCode, body }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.setTimeout(60_000, () => req.destroy(new Error('upload stalled for 60 s')));
      writePattern(req, SIZE).then(() => req.end(), reject);
    });
    const ms = Date.now() - started;
    assert.equal(result.status, 200, result.body.slice(0, 300));
    const echo = JSON.parse(result.body);
    assert.equal(echo.bodyLength, SIZE);
    t.diagnostic(`upload: ${SIZE} bytes in ${ms} ms = ${mbps(SIZE, ms)} MiB/s`);
  });

  test(`download ${SIZE} bytes: the client counts every byte`, { timeout: 300_000 }, async (t) => {
    const started = Date.now();
    const result = await new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: `/bulk/download?stream=${SIZE}`, agent: false }, (res) => {
        let count = 0;
        res.on('data', (c) => { count += c.length; });
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, count }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.setTimeout(60_000, () => req.destroy(new Error('download stalled for 60 s')));
      req.end();
    });
    const ms = Date.now() - started;
    assert.equal(result.status, 200);
    assert.equal(result.count, SIZE);
    if (result.headers['content-length'] !== undefined) assert.equal(Number(result.headers['content-length']), SIZE);
    t.diagnostic(`download: ${SIZE} bytes in ${ms} ms = ${mbps(SIZE, ms)} MiB/s`);
  });

  test('the gateway\'s peak memory (VmHWM) stays below 200 MiB', (t) => {
    const hwm = gw.hwmKiB();
    t.diagnostic(`gateway VmHWM ${hwm} KiB, peak sampled VmRSS ${peakRssKiB} KiB`);
    assert.ok(hwm > 0);
    assert.ok(hwm < HWM_LIMIT_KIB, `VmHWM ${hwm} KiB >= ${HWM_LIMIT_KIB} KiB`);
  });
});
