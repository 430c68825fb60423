/**
 * `provenance.storage_report()`: per tracked table, the bytes of its history and of its
 * materialised versions, the replay cache counts every proxy added to the store (a read replayed
 * twice: one miss, then one hit), and the replay time the versions spared.
 */
import { expect, it } from 'vitest';
import { eachUpstream, uniqueName } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';
import { moment, refusal } from '../timetravel/as-of-support.js';

eachUpstream('storage report', (t) => {
  it('reports each tracked table\'s history and version bytes, replay cache hits and misses, and the replay time versions spared', async () => {
    const c = await t().pg();
    await t().proxy.registryLoaded;
    const table = uniqueName('reported');
    const role = uniqueName('nosy');
    try {
      await c.query(`CREATE TABLE ${table} (id int PRIMARY KEY, email text)`);
      await c.query(`INSERT INTO ${table} SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 50) g`);
      await c.query(`SELECT provenance.register_transform($1, $2, ARRAY['email'], '(v) => v.slice(0, 2) + "***"')`, [uniqueName('mask'), table]);
      await eventually(() => c.query(`SELECT email FROM ${table} WHERE id = 1`), (r) => r.rows[0]?.['email'] === 'us***');
      const report = async (): Promise<Record<string, unknown> | undefined> =>
        (await c.query('SELECT * FROM provenance.storage_report() WHERE target = $1::regclass', [table])).rows[0];
      const before = await report();
      expect(before).toMatchObject({
        target: table, history_versions: '50', materializations: '0', materialization_bytes: '0',
        replay_cache_hits: '0', replay_cache_misses: '0', replay_cache_hit_rate: null, recompute_saved_ms: 0,
      });
      expect(Number(before!['history_bytes'])).toBeGreaterThan(0);

      const at = await moment(c);
      await c.query(`SET provenance.as_of = '${at}'`);
      for (let i = 0; i < 2; i++) expect((await c.query(`SELECT email FROM ${table} WHERE id = 1`)).rows).toEqual([{ email: 'us***' }]);
      await c.query('RESET provenance.as_of');
      // The proxy adds its counts to the store's within a second or so.
      const after = await eventually(report, (r) => r?.['replay_cache_hits'] === '1');
      expect(after).toMatchObject({ replay_cache_hits: '1', replay_cache_misses: '1', replay_cache_hit_rate: 0.5, materializations: '0' });

      // A version of the moment, then two reads served from it: what they spared is counted.
      await c.query(`SELECT provenance.materialize('${table}', '${at}')`);
      await c.query(`SET provenance.as_of = '${at}'`);
      for (let i = 0; i < 2; i++) expect((await c.query(`SELECT email FROM ${table} WHERE id = 1`)).rows).toEqual([{ email: 'us***' }]);
      expect((await c.query('SHOW provenance.last_read')).rows[0]!['provenance.last_read']).toMatch(/: materialized$/);
      await c.query('RESET provenance.as_of');
      const saved = await eventually(report, (r) => Number(r?.['recompute_saved_ms']) > 0);
      expect(saved).toMatchObject({ materializations: '1' });
      expect(Number(saved!['materialization_bytes'])).toBeGreaterThan(0);
      expect(Number(saved!['recompute_saved_ms'])).toBeGreaterThan(0);

      await c.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'`);
      const other = await t().pg({ user: role, password: 'pw' });
      try {
        expect((await refusal(other.query('SELECT * FROM provenance.storage_report()'))).code).toBe('42501');
      } finally {
        await other.end();
      }
    } finally {
      await c.end();
    }
  });
});
