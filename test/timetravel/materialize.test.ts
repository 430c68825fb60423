/**
 * Materialised versions: provenance.materialize stores what a table served at a moment (through
 * the chain of then, in a user's context), an as-of read is served from it exactly when a replay
 * would give the same, and never otherwise. Expected values are computed here from what the test
 * wrote and registered.
 */
import { expect, it } from 'vitest';
import type pg from 'pg';
import { eachUpstream, uniqueName } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';
import { moment, refusal } from './as-of-support.js';

const MASK = '(v, p) => v === null ? null : v.slice(0, p.keep) + "***"';
const mask = (v: string, keep: number): string => `${v.slice(0, keep)}***`;

async function lastRead(c: pg.Client): Promise<string> {
  return (await c.query<{ 'provenance.last_read': string }>('SHOW provenance.last_read')).rows[0]!['provenance.last_read'];
}

async function setup(c: pg.Client): Promise<{ table: string; name: string; read: () => Promise<unknown[][]> }> {
  const table = uniqueName('mat');
  const name = uniqueName('mask');
  await c.query(`CREATE TABLE ${table} (id int PRIMARY KEY, email text)`);
  await c.query(`INSERT INTO ${table} SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 30) g`);
  await c.query(`SELECT provenance.register_transform($1, $2, ARRAY['email'], $3, '{"keep": 2}')`, [name, table, MASK]);
  const read = (): Promise<unknown[][]> => c.query({ text: `SELECT id, email FROM ${table} ORDER BY id`, rowMode: 'array' }).then((r) => r.rows as unknown[][]);
  await eventually(read, (r) => r[0]?.[1] === 'us***');
  return { table, name, read };
}

const expected = (n: number, keep: number): unknown[][] => Array.from({ length: n }, (_, i) => [i + 1, mask(`user${i + 1}@example.com`, keep)]);

eachUpstream('materialised versions', (t) => {
  it('stores what a table served at a moment, serves matching as-of reads from it, and records them', async () => {
    const c = await t().pg();
    await t().proxy.registryLoaded;
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(n.message ?? ''));
    try {
      const { table, read } = await setup(c);
      const m1 = await moment(c);
      const id = Number((await c.query<{ materialize: string }>(`SELECT provenance.materialize('${table}', '${m1}')`)).rows[0]!.materialize);
      expect(id).toBeGreaterThan(0);
      expect(notices.some((n) => /materialize: 100% done/.test(n))).toBe(true);
      const [view] = (await c.query(`SELECT * FROM provenance.materializations WHERE id = $1`, [id])).rows as Record<string, unknown>[];
      expect(view).toMatchObject({ as_user: 'postgres', rows: '30', reason: 'manual', created_by: 'postgres', reads_served: '0', context_fields: [] });
      expect(Number(view!['bytes'])).toBeGreaterThan(0);
      expect(view!['chain']).toMatchObject([{ version: 1, params: { keep: 2 } }]);

      // Anything but a call of its own reaches the database's function, which says where it runs.
      const other = await refusal(c.query(`SELECT 1, provenance.materialize('${table}')`));
      expect(other.code).toBe('0A000');
      expect(other.message).toMatch(/runs in provenance-proxy/);

      await c.query(`SET provenance.as_of = '${m1}'`);
      expect(await read()).toEqual(expected(30, 2));
      expect(await lastRead(c)).toMatch(/: materialized$/);
      // Filtering on a transformed column is evaluated on the rows before the chain: replayed.
      const filtered = await c.query({ text: `SELECT email FROM ${table} WHERE email = 'user3@example.com'`, rowMode: 'array' });
      expect(filtered.rows).toEqual([[mask('user3@example.com', 2)]]);
      expect(await lastRead(c)).toMatch(/: (replayed|cached)$/);
      // On an untransformed column it is the same either way: served.
      const byId = await c.query({ text: `SELECT email FROM ${table} WHERE id = $1`, values: [4], rowMode: 'array' });
      expect(byId.rows).toEqual([[mask('user4@example.com', 2)]]);
      expect(await lastRead(c)).toMatch(/: materialized$/);
      await c.query('RESET provenance.as_of');

      await eventually(async () => (await c.query(`SELECT reads_served, last_read FROM provenance.materializations WHERE id = $1`, [id])).rows[0] as Record<string, unknown>,
        (r) => r['reads_served'] === '2' && r['last_read'] !== null);
      await eventually(async () => (await c.query(`SELECT kind, materialization_id, as_of, rows_out FROM provenance.executions WHERE materialization_id = $1 ORDER BY executed_at`, [id])).rows,
        (rows) => rows.length === 2 && rows.every((r) => r['kind'] === 'materialized'));
    } finally {
      await c.query('RESET ALL').catch(() => undefined);
      await c.end();
    }
  });
});
