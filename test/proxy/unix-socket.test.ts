/**
 * `--listen-unix DIR`: the proxy also listens on DIR/.s.PGSQL.<port>, where psql (`host=DIR`)
 * and pg (a socket directory as host) find it; records name the client `local`.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { runPsql, startTarget, uniqueName } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';
import { freePort } from '../support/pg-cluster.js';

const socketDir = (): string => mkdtempSync(path.join(tmpdir(), 'pp-unix-'));

for (const kind of ['embedded', 'postgres'] as const) {
  describe(`Unix-domain socket [${kind}]`, () => {
    it('serves psql and pg on DIR/.s.PGSQL.<port>, records the client as local, removes its files at shutdown', async () => {
      const dir = socketDir();
      const t = await startTarget(kind, [], { listenUnix: dir, provenanceDurability: 'sync' });
      const socket = path.join(dir, `.s.PGSQL.${t.port}`);
      try {
        expect(statSync(socket).isSocket()).toBe(true);
        expect(statSync(socket).mode & 0o777).toBe(0o777);
        expect(readFileSync(`${socket}.lock`, 'utf8').split('\n')[0]).toBe(String(process.pid));

        const psql = await runPsql(['-X', '-A', '-t', `host=${dir} port=${t.port} user=${t.user} dbname=${t.database}`, '-c', 'select 41 + 1'], t.password);
        expect(psql.stderr).toBe('');
        expect(psql.stdout.trim()).toBe('42');

        await t.proxy.registryLoaded;
        const c = new pg.Client({ host: dir, port: t.port, user: t.user, password: t.password, database: t.database, application_name: 'pp-unix' });
        await c.connect();
        try {
          const table = uniqueName('unix_people');
          const mask = uniqueName('unix_mask');
          await c.query(`CREATE TABLE ${table} (id int, email text)`);
          await c.query(`INSERT INTO ${table} VALUES (1, 'alice@example.com')`);
          await c.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], '(v) => v.slice(0, 2)')", [mask, table]);
          const r = await eventually(() => c.query(`SELECT email FROM ${table}`), (x) => x.rows[0]?.email === 'al');
          expect(r.rows).toEqual([{ email: 'al' }]);
          const rec = await c.query('SELECT client_addr, client_port FROM provenance.executions WHERE transform_name = $1', [mask]);
          expect(rec.rows.length).toBeGreaterThan(0);
          for (const row of rec.rows) expect(row).toEqual({ client_addr: 'local', client_port: -1 });
        } finally {
          await c.end();
        }
      } finally {
        await t.proxy.stop(2_000);
      }
      expect(existsSync(socket)).toBe(false);
      expect(existsSync(`${socket}.lock`)).toBe(false);
      rmSync(dir, { recursive: true, force: true });
    }, 60_000);
  });
}

describe('Unix-domain socket files left behind', () => {
  it('replaces a stale socket whose lock names a process that is gone', async () => {
    const dir = socketDir();
    const port = await freePort();
    const socket = path.join(dir, `.s.PGSQL.${port}`);
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    writeFileSync(socket, '');
    writeFileSync(`${socket}.lock`, `${gone}\n/elsewhere\n`);
    const t = await startTarget('postgres', [], { listenPort: port, listenUnix: dir });
    try {
      expect(statSync(socket).isSocket()).toBe(true);
      const psql = await runPsql(['-X', '-A', '-t', `host=${dir} port=${port} user=${t.user} dbname=${t.database}`, '-c', 'select 1'], t.password);
      expect(psql.stdout.trim()).toBe('1');
    } finally {
      await t.proxy.stop(2_000);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start on a socket whose lock names a live process', async () => {
    const dir = socketDir();
    const port = await freePort();
    const socket = path.join(dir, `.s.PGSQL.${port}`);
    writeFileSync(`${socket}.lock`, `${process.ppid}\n/elsewhere\n`);
    await expect(startTarget('postgres', [], { listenPort: port, listenUnix: dir })).rejects.toThrow(/another server \(PID \d+\)/);
    expect(readFileSync(`${socket}.lock`, 'utf8')).toBe(`${process.ppid}\n/elsewhere\n`);
    rmSync(dir, { recursive: true, force: true });
  });
});
