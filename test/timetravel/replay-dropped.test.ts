/**
 * A past with transforms and a present without: once every transform is dropped, reads of now
 * pass through untouched, but a read as of a moment when transforms were in force still runs
 * them (a row transform that drops rows included, with the count the client sees corrected).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { startTarget, uniqueName, type Target } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';
import { asOfApp, pgUtc, serverNow, TestTimeTravel } from './replay-service.js';

const MASK = '(v) => v === null ? null : v[0] + "***"';
const HIDE = '(row) => row.ok === false ? null : row';

for (const kind of ['embedded', 'postgres'] as const) {
  describe(`replay of transforms dropped since [${kind}]`, () => {
    const tt = new TestTimeTravel();
    let t: Target;
    let c: pg.Client;
    beforeAll(async () => {
      t = await startTarget(kind, [], { provenanceDurability: 'sync' }, undefined, () => tt);
      await t.proxy.registryLoaded;
      c = await t.pg();
    });
    afterAll(async () => {
      await c?.end();
      await t?.proxy.stop(2_000);
    });

    it('runs the chain of then, row transform included, when nothing is registered now', async () => {
      const table = uniqueName('dropped');
      const mask = uniqueName('mask');
      const hide = uniqueName('hide');
      await c.query(`CREATE TABLE ${table} (id int, email text, ok bool)`);
      await c.query(`INSERT INTO ${table} VALUES (1, 'alice@example.com', true), (2, 'bob@example.com', false), (3, NULL, NULL)`);
      await c.query(`SELECT provenance.register_transform($1, $2, ARRAY['email'], $3)`, [mask, table, MASK]);
      await c.query('SELECT provenance.register_transform($1, $2, NULL, $3)', [hide, table, HIDE]);
      await tt.refresh(c);
      const current = (): Promise<pg.QueryResult> => c.query(`SELECT id, email, ok FROM ${table} ORDER BY id`);
      const then = [{ id: 1, email: 'a***', ok: true }, { id: 3, email: null, ok: null }];
      await eventually(current, (r) => r.rows.length === 2 && r.rows[0]?.email === 'a***');
      const at = await serverNow(c);
      await new Promise((r) => setTimeout(r, 5));
      await c.query('SELECT provenance.drop_transform($1)', [mask]);
      await c.query('SELECT provenance.drop_transform($1)', [hide]);
      await eventually(current, (r) => r.rows.length === 3);
      expect((await current()).rows[0]).toEqual({ id: 1, email: 'alice@example.com', ok: true });

      const oid = Number((await c.query<{ oid: string }>('SELECT $1::regclass::oid::int8::text AS oid', [table])).rows[0]!.oid);
      const past = await t.pg({ application_name: asOfApp(at) });
      try {
        const since = await serverNow(c);
        const r = await past.query(`SELECT id, email, ok FROM provenance.history_${oid}
          WHERE pg_catalog.tstzrange(provenance_valid_from, provenance_valid_to) @> $1::timestamptz ORDER BY id`, [pgUtc(at)]);
        expect(r.rows).toEqual(then);
        expect(r.rowCount).toBe(2);
        const recs = await c.query<{ transform_name: string; verified: boolean | null }>(
          `SELECT transform_name, verified FROM provenance.executions WHERE kind = 'replay' AND table_oid = $1 AND recorded_at >= $2::timestamptz`,
          [oid, pgUtc(since)]);
        expect(recs.rows.map((e) => [e.transform_name, e.verified]).sort()).toEqual([[hide, true], [mask, true]].sort());
      } finally {
        await past.end();
      }
    });
  });
}
