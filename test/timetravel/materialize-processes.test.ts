/**
 * Materialisations live in the database: they survive a restart of the proxy, and two proxy
 * processes on one PostgreSQL database share them (one makes, the other serves; one drops, the
 * other stops serving). The built CLI, in child processes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freshDataDir, sharedCluster, uniqueName, type UpstreamKind } from '../support/proxy-matrix.js';
import { startCli, type CliProcess } from '../support/cli-process.js';
import { eventually } from '../support/eventually.js';

const NO_TRANSFORMS_DIR = path.join(tmpdir(), 'pp-no-transforms-dir');

for (const kind of ['embedded', 'postgres'] as UpstreamKind[]) {
  describe(`materialisations across proxy processes [${kind}]`, () => {
    let dataDir: string;
    let upstreamArgs: string[];
    let login: { user: string; password: string };
    beforeAll(() => {
      const cluster = sharedCluster();
      dataDir = kind === 'embedded' ? freshDataDir() : path.join(tmpdir(), uniqueName('pp-mat-'));
      upstreamArgs = kind === 'embedded' ? [] : ['--upstream', cluster.url().replace(/\?.*$/, '') + '?sslmode=disable'];
      login = kind === 'embedded' ? { user: 'postgres', password: '' } : { user: 'postgres', password: cluster.password };
    });
    afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

    const start = (dir = dataDir): Promise<CliProcess> =>
      startCli(['--listen', '127.0.0.1:0', '--data-dir', dir, '--transforms', NO_TRANSFORMS_DIR, '--no-demo', ...upstreamArgs], { OTEL_TRACES_EXPORTER: 'none' });

    async function connect(p: CliProcess): Promise<pg.Client> {
      const c = new pg.Client({ host: '127.0.0.1', port: p.port, database: 'postgres', ...login });
      await c.connect();
      return c;
    }

    async function readAsOf(c: pg.Client, table: string, at: string): Promise<{ rows: unknown[][]; how: string }> {
      await c.query(`SET provenance.as_of = '${at}'`);
      const rows = (await c.query({ text: `SELECT id, v FROM ${table} ORDER BY id`, rowMode: 'array' })).rows as unknown[][];
      const how = (await c.query<{ 'provenance.last_read': string }>('SHOW provenance.last_read')).rows[0]!['provenance.last_read'];
      await c.query('RESET provenance.as_of');
      return { rows, how };
    }

    async function materialized(c: pg.Client): Promise<{ table: string; at: string; id: number }> {
      const table = uniqueName('matproc');
      await c.query(`CREATE TABLE ${table} (id int, v text); INSERT INTO ${table} VALUES (1, 'one'), (2, 'two')`);
      await c.query(`SELECT provenance.register_transform($1, $2, ARRAY['v'], '(v) => v.toUpperCase()', '{}')`, [uniqueName('up'), table]);
      await eventually(() => c.query({ text: `SELECT v FROM ${table} WHERE id = 1`, rowMode: 'array' }).then((r) => r.rows), (r) => r[0]?.[0] === 'ONE');
      const at = (await c.query<{ m: string }>('SELECT pg_catalog.clock_timestamp()::text AS m')).rows[0]!.m;
      await new Promise((r) => setTimeout(r, 3));
      const id = Number((await c.query<{ materialize: string }>(`SELECT provenance.materialize('${table}', '${at}')`)).rows[0]!.materialize);
      return { table, at, id };
    }

    it('survives a restart of the proxy', async () => {
      let p = await start();
      let made: { table: string; at: string; id: number };
      const c = await connect(p);
      try {
        made = await materialized(c);
      } finally {
        await c.end();
      }
      p.child.kill('SIGTERM');
      await p.exited;
      p = await start();
      const d = await connect(p);
      try {
        expect(await readAsOf(d, made.table, made.at)).toEqual({ rows: [[1, 'ONE'], [2, 'TWO']], how: expect.stringMatching(/: materialized$/) as unknown });
      } finally {
        await d.end();
        p.child.kill('SIGTERM');
        await p.exited;
      }
    }, 120_000);

    if (kind === 'postgres') {
      it('is shared by two proxies on one database', async () => {
        const dirs = [path.join(tmpdir(), uniqueName('pp-mat-a-')), path.join(tmpdir(), uniqueName('pp-mat-b-'))];
        const a = await start(dirs[0]);
        const b = await start(dirs[1]);
        const ca = await connect(a);
        const cb = await connect(b);
        try {
          const made = await materialized(ca);
          expect(await readAsOf(cb, made.table, made.at)).toEqual({ rows: [[1, 'ONE'], [2, 'TWO']], how: expect.stringMatching(/: materialized$/) as unknown });
          await cb.query(`SELECT provenance.drop_materialization(${made.id})`);
          expect(await readAsOf(ca, made.table, made.at)).toEqual({ rows: [[1, 'ONE'], [2, 'TWO']], how: expect.stringMatching(/: (replayed|cached)$/) as unknown });
        } finally {
          await ca.end();
          await cb.end();
          a.child.kill('SIGTERM');
          b.child.kill('SIGTERM');
          await Promise.all([a.exited, b.exited]);
          for (const d of dirs) rmSync(d, { recursive: true, force: true });
        }
      }, 120_000);
    }
  });
}
