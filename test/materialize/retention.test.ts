/**
 * Retention never removes a version a materialisation still needs: the versions valid at its
 * moment stay while it exists (they are what it was made from, and what tells whether a later
 * moment still reads the same), and go with the next pruning once it is dropped.
 */
import { expect, it } from 'vitest';
import { eachUpstream, uniqueName } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';
import { moment } from '../timetravel/as-of-support.js';

eachUpstream('retention and materialised versions', (t) => {
  it('keeps the versions a materialisation needs through pruning, and prunes them once it is dropped', async () => {
    const c = await t().pg();
    await t().proxy.registryLoaded;
    const table = uniqueName('retained');
    try {
      await c.query(`CREATE TABLE ${table} (id int PRIMARY KEY, email text); INSERT INTO ${table} VALUES (1, 'v1@example.com')`);
      await c.query(`SELECT provenance.register_transform($1, $2, ARRAY['email'], '(v) => v.slice(0, 2) + "***"')`, [uniqueName('mask'), table]);
      await eventually(() => c.query(`SELECT email FROM ${table}`), (r) => r.rows[0]?.['email'] === 'v1***');
      const m0 = await moment(c);
      const id = (await c.query<{ materialize: string }>(`SELECT provenance.materialize('${table}', '${m0}')`)).rows[0]!.materialize;
      await c.query(`UPDATE ${table} SET email = 'v2@example.com'`);
      await c.query(`UPDATE ${table} SET email = 'v3@example.com'`);
      await new Promise((r) => setTimeout(r, 1_500));
      await c.query("SELECT provenance.set_retention($1, interval '1 second')", [table]);
      const count = async (): Promise<number> =>
        (await c.query<{ n: number }>('SELECT versions::int AS n FROM provenance.tracked WHERE target = $1', [table])).rows[0]!.n;
      expect(await count()).toBe(3);
      await c.query('SELECT provenance.prune_history()');
      // v1, valid at the materialised moment, stays; v2 began and ended inside the pruned span.
      expect(await count()).toBe(2);
      const pins = await c.query('SELECT reason FROM provenance.history_pin WHERE target_oid = $1::regclass', [table]);
      expect(pins.rows).toEqual([{ reason: `materialization ${id}` }]);
      await c.query('SELECT provenance.drop_materialization($1)', [id]);
      await c.query('SELECT provenance.prune_history()');
      expect(await count()).toBe(1);
      expect((await c.query('SELECT 1 FROM provenance.history_pin WHERE target_oid = $1::regclass', [table])).rows).toEqual([]);
    } finally {
      await c.end();
    }
  });
});
