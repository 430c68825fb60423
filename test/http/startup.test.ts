/**
 * Configuring the HTTP API: --http / PROVENANCE_HTTP (default 127.0.0.1:6433, `off`), the startup
 * line naming its address, HTTPS with --tls-cert/--tls-key, and /healthz and table data while the
 * upstream cannot be reached.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../proxy/config.js';
import { freePort, selfSignedCertificate } from '../support/pg-cluster.js';
import { startTarget } from '../support/proxy-matrix.js';
import { startCli } from '../support/cli-process.js';
import { eventually } from '../support/eventually.js';
import { call } from './http-client.js';

describe('--http', () => {
  it('defaults to 127.0.0.1:6433, takes HOST:PORT from the flag or PROVENANCE_HTTP, and off', () => {
    const of = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
      const c = parseConfig(argv, env);
      if (c === 'help') throw new Error('help');
      return c.http;
    };
    expect(of([])).toEqual({ host: '127.0.0.1', port: 6433 });
    expect(of(['--http', '0.0.0.0:8080'])).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(of([], { PROVENANCE_HTTP: '[::1]:9000' })).toEqual({ host: '::1', port: 9000 });
    expect(of(['--http', '127.0.0.1:7000'], { PROVENANCE_HTTP: 'off' })).toEqual({ host: '127.0.0.1', port: 7000 });
    expect(of([], { PROVENANCE_HTTP: 'off' })).toBeNull();
    expect(of(['--http', 'OFF'])).toBeNull();
    expect(() => of(['--http', 'nowhere'])).toThrow(/invalid --http "nowhere"/);
  });

  it('names its address in the startup line, and serves HTTPS with the TLS certificate', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pp-http-cli-'));
    const pem = selfSignedCertificate();
    writeFileSync(path.join(dir, 'cert.pem'), pem.cert);
    writeFileSync(path.join(dir, 'key.pem'), pem.key);
    const port = await freePort();
    const proxy = await startCli([
      '--listen', '127.0.0.1:0', '--data-dir', path.join(dir, 'data'), '--http', `127.0.0.1:${port}`,
      '--tls-cert', path.join(dir, 'cert.pem'), '--tls-key', path.join(dir, 'key.pem'),
    ]);
    try {
      expect(proxy.banner).toContain(`; HTTP API on https://127.0.0.1:${port}`);
      const auth = `Basic ${Buffer.from('postgres:').toString('base64')}`;
      const body = await new Promise<string>((resolve, reject) => {
        const req = request(`https://127.0.0.1:${port}/data/customers/1`, { rejectUnauthorized: false, headers: { authorization: auth } }, (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve(text));
        });
        req.on('error', reject);
        req.end();
      });
      // The demo of a new embedded database, masked as psql would see it.
      expect(JSON.parse(body)).toMatchObject({ object: 'public.customers', row: { id: 1, email: 'ad***@analytical.example' } });
    } finally {
      proxy.child.kill('SIGTERM');
      await proxy.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is off with --http off: the startup line names no HTTP address', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pp-http-off-'));
    const proxy = await startCli(['--listen', '127.0.0.1:0', '--data-dir', dir, '--no-demo'], { PROVENANCE_HTTP: 'off' });
    try {
      expect(proxy.banner).not.toContain('HTTP');
    } finally {
      proxy.child.kill('SIGTERM');
      await proxy.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('HTTP while the provenance store cannot be reached', () => {
  it('answers /healthz 503 naming the store, and /metrics counts the records spooled meanwhile', async () => {
    const closed = await freePort();
    const t = await startTarget('embedded', [], {
      provenanceStore: `postgres://postgres:x@127.0.0.1:${closed}/postgres?sslmode=disable&connect_timeout=1`,
      http: { host: '127.0.0.1', port: 0 },
    });
    try {
      await t.proxy.registryLoaded;
      const health = await call(t, '/healthz');
      expect(health.status).toBe(503);
      expect(health.json()).toMatchObject({ code: '57P03' });
      expect(health.json<{ message: string }>().message).toMatch(/provenance store/);
      const c = await t.pg();
      try {
        await c.query('CREATE TABLE spooled (id int PRIMARY KEY, v text)');
        await c.query("INSERT INTO spooled VALUES (1, 'x')");
        await c.query("SELECT provenance.register_transform('up', 'public.spooled', ARRAY['v'], '(v) => v.toUpperCase()')");
        await eventually(async () => (await c.query('SELECT v FROM spooled')).rows[0]?.v, (v) => v === 'X');
      } finally {
        await c.end();
      }
      const spooled = await eventually(
        async () => Number(/^provenance_proxy_provenance_spool (\d+)$/m.exec((await call(t, '/metrics')).text)?.[1] ?? 0),
        (n) => n >= 1,
      );
      expect(spooled).toBeGreaterThanOrEqual(1);
    } finally {
      await t.proxy.stop(1_000);
    }
  });
});

describe('HTTP while the upstream cannot be reached', () => {
  it('answers /healthz 503 with the reason, and refuses table data with 57P03', async () => {
    const closed = await freePort();
    const t = await startTarget('postgres', [], {
      upstream: `postgres://postgres:x@127.0.0.1:${closed}/postgres?sslmode=disable&connect_timeout=1`,
      http: { host: '127.0.0.1', port: 0 },
    });
    try {
      const health = await call(t, '/healthz');
      expect(health.status).toBe(503);
      expect(health.json()).toMatchObject({ code: '57P03' });
      expect(health.json<{ message: string }>().message).toMatch(/upstream.*unreachable/);
      const data = await call(t, '/data/anything', { user: 'someone', password: 'pw' });
      expect(data.status).toBe(503);
      expect(data.json()).toMatchObject({ code: '57P03' });
    } finally {
      await t.proxy.stop(1_000);
    }
  });
});
