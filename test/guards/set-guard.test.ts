/**
 * provenance.set_transform_guard: a new version of the transform carrying its guard and exempt
 * roles, kept by every later change, shown in both views, and callable by provenance_admin only.
 */
import { expect, it } from 'vitest';
import pg from 'pg';
import { eachUpstream, uniqueName } from '../support/proxy-matrix.js';

interface GuardRow {
  version: number;
  guard: string;
  exempt: string[];
}

// Guards hold for every session of the database, through every proxy: those set here exempt the
// superuser and registry admins that other suites sharing the cluster log in as.
eachUpstream('set_transform_guard', (t) => {
  async function admin(): Promise<pg.Client> {
    const c = await t().pg();
    await t().proxy.stateReady;
    return c;
  }

  it('versions the guard, carries it through later changes and shows it in both views', async () => {
    const c = await admin();
    const table = uniqueName('guarded');
    const name = uniqueName('mask');
    try {
      await c.query(`CREATE TABLE ${table} (id int, email text)`);
      await c.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], '(v) => v')", [name, table]);
      const shown = async (): Promise<GuardRow[]> =>
        (await c.query<GuardRow>('SELECT version, guard, exempt FROM provenance.transforms WHERE name = $1', [name])).rows;
      expect(await shown()).toEqual([{ version: 1, guard: 'off', exempt: [] }]);
      expect((await c.query<{ v: number }>("SELECT provenance.set_transform_guard($1, 'values', ARRAY['postgres', 'provenance_admin']) AS v", [name])).rows[0]!.v).toBe(2);
      expect((await c.query<{ v: number }>("SELECT provenance.set_transform_guard($1, 'strict', ARRAY['postgres', 'provenance_admin', 'auditor']) AS v", [name])).rows[0]!.v).toBe(3);
      await c.query("SELECT provenance.set_transform_params($1, '{\"keep\": 1}')", [name]);
      await c.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], '(v) => null')", [name, table]);
      expect(await shown()).toEqual([{ version: 5, guard: 'strict', exempt: ['postgres', 'provenance_admin', 'auditor'] }]);
      const all = await c.query<GuardRow>('SELECT version, guard, exempt FROM provenance.transform_versions WHERE name = $1 ORDER BY version', [name]);
      expect(all.rows.map((r) => r.guard)).toEqual(['off', 'values', 'strict', 'strict', 'strict']);
      // A transform registered again after a drop starts over.
      await c.query('SELECT provenance.drop_transform($1)', [name]);
      await c.query("SELECT provenance.register_transform($1, $2, NULL, '(r) => r')", [name, table]);
      expect(await shown()).toEqual([{ version: 7, guard: 'off', exempt: [] }]);
      // Row transforms take a guard too; the exemptions default to none.
      await c.query("SELECT provenance.set_transform_guard($1, 'values', ARRAY['postgres', 'provenance_admin'])", [name]);
      expect(await shown()).toEqual([{ version: 8, guard: 'values', exempt: ['postgres', 'provenance_admin'] }]);
      await c.query("SELECT provenance.set_transform_guard($1, 'off')", [name]);
      expect(await shown()).toEqual([{ version: 9, guard: 'off', exempt: [] }]);
    } finally {
      await c.query('SELECT provenance.drop_transform($1)', [name]).catch(() => undefined);
      await c.end();
    }
  });

  it('refuses bad arguments with real SQLSTATEs', async () => {
    const c = await admin();
    const table = uniqueName('guardargs');
    const name = uniqueName('mask');
    try {
      await c.query(`CREATE TABLE ${table} (email text)`);
      await c.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], '(v) => v')", [name, table]);
      await expect(c.query("SELECT provenance.set_transform_guard($1, 'loose')", [name])).rejects.toMatchObject({ code: '22023' });
      await expect(c.query('SELECT provenance.set_transform_guard($1, NULL)', [name])).rejects.toMatchObject({ code: '22004' });
      await expect(c.query("SELECT provenance.set_transform_guard($1, 'values', ARRAY[NULL::text])", [name])).rejects.toMatchObject({ code: '22004' });
      await expect(c.query("SELECT provenance.set_transform_guard('never_registered', 'values')")).rejects.toMatchObject({ code: '42704' });
      expect((await c.query('SELECT guard FROM provenance.transforms WHERE name = $1', [name])).rows).toEqual([{ guard: 'off' }]);
    } finally {
      await c.end();
    }
  });

  it('is for provenance_admin only (42501 otherwise)', async () => {
    const c = await admin();
    const role = uniqueName('analyst');
    const table = uniqueName('guardpriv');
    const name = uniqueName('mask');
    try {
      await c.query(`CREATE TABLE ${table} (email text)`);
      await c.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], '(v) => v')", [name, table]);
      await c.query(`CREATE ROLE ${role} LOGIN PASSWORD 'analyst-pw'`);
      const login = (): Promise<pg.Client> => t().pg({ user: role, password: 'analyst-pw' });
      const before = await login();
      await expect(before.query("SELECT provenance.set_transform_guard($1, 'off')", [name])).rejects.toMatchObject({ code: '42501' });
      await before.end();
      await c.query(`GRANT provenance_admin TO ${role}`);
      // A new session: exemptions (by role membership) are read when a session starts.
      const asAdmin = await login();
      try {
        expect((await asAdmin.query<{ v: number }>("SELECT provenance.set_transform_guard($1, 'values', ARRAY['postgres', 'provenance_admin']) AS v", [name])).rows[0]!.v).toBe(2);
        const made = await c.query('SELECT created_by FROM provenance.transform_versions WHERE name = $1 AND version = 2', [name]);
        expect(made.rows).toEqual([{ created_by: role }]);
      } finally {
        await asAdmin.end();
      }
    } finally {
      await c.query('SELECT provenance.drop_transform($1)', [name]).catch(() => undefined);
      await c.end();
    }
  });
});
