import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import pg from 'pg';
import { startTarget, uniqueName, useTarget } from '../support/proxy-matrix.js';

const run = promisify(execFile);

describe('logical replication through the proxy [postgres]', () => {
  const t = useTarget('postgres');

  it('streams changes with pg_recvlogical (replication=database, CopyBoth)', async () => {
    const slot = uniqueName('slot');
    const table = uniqueName('rep');
    const bin = path.join(t.cluster.bindir, 'pg_recvlogical');
    const conn = `host=127.0.0.1 port=${t.port} dbname=postgres user=repuser sslmode=disable`;
    const env = { ...process.env, PGPASSWORD: 'reppass' };
    await run(bin, ['-d', conn, '--slot', slot, '--create-slot', '-P', 'test_decoding'], { env });
    const admin = await t.pg();
    try {
      await admin.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v text)`);
      await admin.query(`INSERT INTO ${table} VALUES (1, 'one'), (2, 'two')`);
      // The insert position, not the write position: WAL may not be written out yet.
      const { rows } = await admin.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
      const { stdout } = await run(bin, ['-d', conn, '--slot', slot, '--start', '-f', '-', '--endpos', rows[0]!.lsn, '--no-loop'], { env, timeout: 30_000 });
      expect(stdout).toContain(`table public.${table}: INSERT: id[integer]:1 v[text]:'one'`);
      expect(stdout).toContain(`table public.${table}: INSERT: id[integer]:2 v[text]:'two'`);
    } finally {
      await run(bin, ['-d', conn, '--slot', slot, '--drop-slot'], { env }).catch(() => undefined);
      await admin.query(`DROP TABLE IF EXISTS ${table}`);
      await admin.end();
    }
  });

  it('answers IDENTIFY_SYSTEM on a replication connection', async () => {
    const c = new pg.Client({ host: '127.0.0.1', port: t.port, user: 'repuser', password: 'reppass', database: 'postgres', replication: 'database' } as pg.ClientConfig);
    await c.connect();
    const r = await c.query('IDENTIFY_SYSTEM');
    expect(r.rows[0]).toHaveProperty('systemid');
    await c.end();
  });
});

describe('replication connections [embedded]', () => {
  it('are refused with 0A000 and a hint', async () => {
    const t = await startTarget('embedded');
    try {
      const c = new pg.Client({ host: '127.0.0.1', port: t.port, user: 'postgres', database: 'postgres', replication: 'database' } as pg.ClientConfig);
      await expect(c.connect()).rejects.toMatchObject({ code: '0A000' });
    } finally {
      await t.proxy.stop(2_000);
    }
  });
});
