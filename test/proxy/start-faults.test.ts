/**
 * Faults at start, through the command as users run it: an upstream that is not there yet and a
 * proxy password the upstream rejects keep the proxy up (listening, refusing what it cannot serve
 * with a reason, retrying) until the fault is gone; only bad configuration makes it give up.
 */
import { describe, expect, it } from 'vitest';
import net from 'node:net';
import { rmSync } from 'node:fs';
import pg from 'pg';
import { freshDataDir, sharedCluster, uniqueName } from '../support/proxy-matrix.js';
import { runCli, startCli } from '../support/cli-process.js';
import { freePort } from '../support/pg-cluster.js';
import { eventually } from '../support/eventually.js';

async function attempt<T>(fn: () => Promise<T>): Promise<{ ok: T } | { err: Error & { code?: string } }> {
  try {
    return { ok: await fn() };
  } catch (err) {
    return { err: err as Error & { code?: string } };
  }
}

async function readTable(port: number, table: string): Promise<{ ok: unknown } | { err: Error & { code?: string } }> {
  return attempt(async () => {
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'trustuser', database: 'postgres' });
    c.on('error', () => undefined);
    await c.connect();
    try {
      return (await c.query(`SELECT * FROM ${table}`)).rows;
    } finally {
      await c.end().catch(() => undefined);
    }
  });
}

describe('faults when the proxy starts', () => {
  it('with the upstream down: keeps running, says why logins fail, and serves once it is up', async () => {
    const cluster = sharedCluster();
    const port = await freePort();
    const dir = freshDataDir();
    const proxy = await startCli(
      ['--listen', '127.0.0.1:0', '--data-dir', dir, '--upstream', `postgres://127.0.0.1:${port}/postgres?sslmode=disable`],
      { PGUSER: cluster.superuser, PGPASSWORD: cluster.password },
    );
    let relay: net.Server | null = null;
    try {
      await new Promise((r) => setTimeout(r, 1_500));
      expect(proxy.child.exitCode).toBeNull();
      const down = await readTable(proxy.port, 'pg_class');
      expect('err' in down && down.err.code).toBe('08001');
      expect(proxy.stderr()).toMatch(/is unreachable \(.*ECONNREFUSED/);

      // The upstream comes up on that port.
      relay = net.createServer((s) => {
        const up = net.connect(cluster.port, '127.0.0.1');
        s.pipe(up).pipe(s);
        s.on('error', () => up.destroy());
        up.on('error', () => s.destroy());
      });
      await new Promise<void>((r) => relay!.listen(port, '127.0.0.1', r));
      const table = uniqueName('after_start');
      const admin = new pg.Client({ host: '127.0.0.1', port: cluster.port, user: cluster.superuser, password: cluster.password, database: 'postgres' });
      await admin.connect();
      await admin.query(`CREATE TABLE ${table} (a int); INSERT INTO ${table} VALUES (1); GRANT SELECT ON ${table} TO trustuser`);
      await admin.end();
      const up = await eventually(() => readTable(proxy.port, table), (r) => 'ok' in r, 40_000);
      expect(up).toEqual({ ok: [{ a: 1 }] });
    } finally {
      proxy.child.kill('SIGTERM');
      expect(await proxy.exited).toBe(0);
      relay?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('with its password rejected: refuses table data with 57P03 saying why, and serves once the login works', async () => {
    const cluster = sharedCluster();
    const role = uniqueName('pp_login');
    const admin = new pg.Client({ host: '127.0.0.1', port: cluster.port, user: cluster.superuser, password: cluster.password, database: 'postgres' });
    await admin.connect();
    const table = uniqueName('guarded');
    await admin.query(`CREATE ROLE ${role} LOGIN SUPERUSER PASSWORD 'the-right-one'`);
    await admin.query(`CREATE TABLE ${table} (a int); INSERT INTO ${table} VALUES (7); GRANT SELECT ON ${table} TO trustuser`);
    const dir = freshDataDir();
    const proxy = await startCli(
      ['--listen', '127.0.0.1:0', '--data-dir', dir, '--upstream', `postgres://127.0.0.1:${cluster.port}/postgres?sslmode=disable`],
      { PGUSER: role, PGPASSWORD: 'not-the-password' },
    );
    try {
      await new Promise((r) => setTimeout(r, 1_000));
      expect(proxy.child.exitCode).toBeNull();
      const refused = await readTable(proxy.port, table);
      expect('err' in refused && refused.err.code).toBe('57P03');
      expect('err' in refused && refused.err.message).toMatch(/rejected the proxy's login \(password authentication failed/);
      expect(proxy.stderr()).toMatch(/rejected the proxy's login/);
      // Statements without table data still pass.
      expect('ok' in (await readTable(proxy.port, '(SELECT 1 AS one) AS t'))).toBe(true);

      await admin.query(`ALTER ROLE ${role} PASSWORD 'not-the-password'`);
      const served = await eventually(() => readTable(proxy.port, table), (r) => 'ok' in r, 40_000);
      expect(served).toEqual({ ok: [{ a: 7 }] });
    } finally {
      proxy.child.kill('SIGTERM');
      expect(await proxy.exited).toBe(0);
      rmSync(dir, { recursive: true, force: true });
      await admin.query(`DROP TABLE ${table}`);
      await admin.end();
    }
  });

  it('gives up with a non-zero status on configuration it cannot use', async () => {
    const bad = await runCli(['--listen', '127.0.0.1:0', '--data-dir', freshDataDir(), '--upstream', 'postgres://[not-a-host/db']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/invalid upstream URL|Invalid URL/i);
  });
});
