/**
 * `provenance.set_materialize_policy`: policies are kept per tracked table, replaced, removed by
 * NULL; a bad one is refused with 22023 naming the bad key; only provenance_admin may set one.
 */
import { expect, it } from 'vitest';
import pg from 'pg';
import { eachUpstream, uniqueName } from '../support/proxy-matrix.js';

async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  const err = await p.then(() => null, (e: unknown) => e as { code: string; message: string });
  expect(err).not.toBeNull();
  return err!;
}

eachUpstream('materialisation policies', (t) => {
  async function admin(): Promise<pg.Client> {
    const c = await t().pg();
    await t().proxy.stateReady;
    return c;
  }

  it('keeps, replaces and removes a table\'s policy', async () => {
    const c = await admin();
    const table = uniqueName('policed');
    try {
      await c.query(`CREATE TABLE ${table} (id int); SELECT provenance.track('${table}')`);
      const set = await c.query('SELECT provenance.set_materialize_policy($1, $2) AS p', [table, { every: '1 day', budget_bytes: 1e9 }]);
      expect(set.rows[0]!['p']).toEqual({ every: '1 day', budget_bytes: 1e9 });
      const listed = async (): Promise<unknown[]> =>
        (await c.query('SELECT target, policy, set_by FROM provenance.materialize_policies WHERE target = $1', [table])).rows;
      expect(await listed()).toEqual([{ target: table, policy: { every: '1 day', budget_bytes: 1e9 }, set_by: t().user }]);
      await c.query('SELECT provenance.set_materialize_policy($1, $2)', [table, { after_reads: 10, within: '1 hour', after_replay_ms: 500 }]);
      expect(await listed()).toEqual([{ target: table, policy: { after_reads: 10, within: '1 hour', after_replay_ms: 500 }, set_by: t().user }]);
      await c.query('SELECT provenance.set_materialize_policy($1, NULL)', [table]);
      expect(await listed()).toEqual([]);
    } finally {
      await c.end();
    }
  });

  it('refuses a bad policy with 22023 naming the bad key, and an untracked table with 55000', async () => {
    const c = await admin();
    const table = uniqueName('badpolicy');
    const plain = uniqueName('untracked');
    try {
      await c.query(`CREATE TABLE ${table} (id int); SELECT provenance.track('${table}'); CREATE TABLE ${plain} (id int)`);
      const bad: [unknown, string][] = [
        [{ evry: '1 day' }, '"evry"'],
        [{ every: '1 day', colour: 'blue' }, '"colour"'],
        [{ every: 'often' }, '"every"'],
        [{ every: 86400 }, '"every"'],
        [{ every: '10 milliseconds' }, '"every"'],
        [{ after_replay_ms: '500' }, '"after_replay_ms"'],
        [{ after_replay_ms: -1 }, '"after_replay_ms"'],
        [{ after_reads: 2.5 }, '"after_reads"'],
        [{ after_reads: 0 }, '"after_reads"'],
        [{ after_reads: 10, within: 'soon' }, '"within"'],
        [{ within: '1 hour', budget_bytes: 10 }, '"within"'],
        [{ budget_bytes: 'lots' }, '"budget_bytes"'],
        [[1], 'JSON object'],
        [{}, 'at least one'],
      ];
      for (const [policy, named] of bad) {
        const err = await refusal(c.query('SELECT provenance.set_materialize_policy($1, $2)', [table, JSON.stringify(policy)]));
        expect(err.code, JSON.stringify(policy)).toBe('22023');
        expect(err.message, JSON.stringify(policy)).toContain(named);
      }
      const untracked = await refusal(c.query('SELECT provenance.set_materialize_policy($1, $2)', [plain, { every: '1 day' }]));
      expect(untracked.code).toBe('55000');
      expect(untracked.message).toContain(plain);
      expect((await c.query('SELECT 1 FROM provenance.materialize_policies WHERE target = $1', [table])).rows).toEqual([]);
    } finally {
      await c.end();
    }
  });

  it('lets only provenance_admin set a policy (42501 otherwise), in psql too', async () => {
    const c = await admin();
    const table = uniqueName('adminonly');
    const role = uniqueName('analyst');
    try {
      await c.query(`CREATE TABLE ${table} (id int); SELECT provenance.track('${table}')`);
      await c.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'; GRANT SELECT ON ${table} TO ${role}`);
      const other = await t().pg({ user: role, password: 'pw' });
      try {
        expect((await refusal(other.query('SELECT provenance.set_materialize_policy($1, $2)', [table, { every: '1 day' }]))).code).toBe('42501');
        expect((await refusal(other.query('SELECT * FROM provenance.materialize_log'))).code).toBe('42501');
        await c.query(`GRANT provenance_admin TO ${role}`);
        await other.query('SELECT provenance.set_materialize_policy($1, $2)', [table, { every: '1 day' }]);
        expect((await other.query('SELECT set_by FROM provenance.materialize_policies WHERE target = $1', [table])).rows).toEqual([{ set_by: role }]);
      } finally {
        await other.end();
      }
      const psql = await t().psql(['-v', 'ON_ERROR_STOP=1', '-At', '-c', `SELECT provenance.set_materialize_policy('${table}', '{"every": "1 hour", "oops": 1}')`]);
      expect(psql.code).not.toBe(0);
      expect(psql.stderr).toContain('unknown materialize policy key "oops"');
    } finally {
      await c.end();
    }
  });
});
