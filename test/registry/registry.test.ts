import { expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import pg from 'pg';
import { SANDBOX_RUNTIME_VERSION } from '../../sandbox/index.js';
import { eachUpstream, uniqueName } from '../support/proxy-matrix.js';

interface VersionRow {
  name: string;
  version: number;
  target: string;
  columns: string[] | null;
  function_hash: string;
  params: Record<string, unknown>;
  position: number;
  enabled: boolean;
  valid_from: Date;
  valid_to: Date | null;
}

eachUpstream('transform registry', (t) => {
  async function admin(): Promise<pg.Client> {
    const c = await t().pg();
    await t().proxy.stateReady;
    return c;
  }

  it('registers, versions and drops transforms, keeping every version', async () => {
    const c = await admin();
    const table = uniqueName('people');
    const name = uniqueName('mask');
    try {
      await c.query(`CREATE TABLE ${table} (id int, email text, phone text)`);
      const source = '(v, p) => v.slice(0, p.keep) + "***"';
      const v1 = await c.query<{ v: number }>('SELECT provenance.register_transform($1, $2, $3, $4, $5) AS v', [name, table, ['email'], source, { keep: 2 }]);
      expect(v1.rows[0]!.v).toBe(1);
      expect((await c.query<{ v: number }>('SELECT provenance.set_transform_params($1, $2) AS v', [name, { keep: 3 }])).rows[0]!.v).toBe(2);
      expect((await c.query<{ v: number }>('SELECT provenance.move_transform($1, 5) AS v', [name])).rows[0]!.v).toBe(3);
      expect((await c.query<{ v: number }>('SELECT provenance.disable_transform($1) AS v', [name])).rows[0]!.v).toBe(4);
      expect((await c.query<{ v: number }>('SELECT provenance.enable_transform($1) AS v', [name])).rows[0]!.v).toBe(5);
      const now = await c.query<VersionRow>('SELECT * FROM provenance.transforms WHERE name = $1', [name]);
      expect(now.rows).toHaveLength(1);
      expect(now.rows[0]).toMatchObject({ version: 5, target: table, columns: ['email'], params: { keep: 3 }, position: 5, enabled: true, valid_to: null });
      const expectedHash = createHash('sha256').update(Buffer.concat([Buffer.from(source), Buffer.from([0]), Buffer.from(SANDBOX_RUNTIME_VERSION)])).digest('hex');
      expect(now.rows[0]!.function_hash).toBe(expectedHash);

      await c.query('SELECT provenance.drop_transform($1)', [name]);
      expect((await c.query('SELECT * FROM provenance.transforms WHERE name = $1', [name])).rows).toHaveLength(0);
      const all = await c.query<VersionRow>('SELECT * FROM provenance.transform_versions WHERE name = $1 ORDER BY version', [name]);
      expect(all.rows.map((r) => r.version)).toEqual([1, 2, 3, 4, 5, 6]);
      // Each version ends where the next begins; the history is contiguous.
      for (let i = 0; i < all.rows.length - 1; i++) expect(all.rows[i]!.valid_to).toEqual(all.rows[i + 1]!.valid_from);
      expect(all.rows.map((r) => r.params)).toEqual([{ keep: 2 }, { keep: 3 }, { keep: 3 }, { keep: 3 }, { keep: 3 }, { keep: 3 }]);
      // Registering the name again starts a new life with the next version number.
      expect((await c.query<{ v: number }>('SELECT provenance.register_transform($1, $2, NULL, $3) AS v', [name, table, '(row) => row'])).rows[0]!.v).toBe(7);
      expect((await c.query<VersionRow>('SELECT * FROM provenance.transforms WHERE name = $1', [name])).rows[0]).toMatchObject({ columns: null, params: {} });
    } finally {
      await c.end();
    }
  });

  it('appends new transforms to the end of their table\'s chain', async () => {
    const c = await admin();
    const table = uniqueName('chain');
    try {
      await c.query(`CREATE TABLE ${table} (a text)`);
      const names = [uniqueName('first'), uniqueName('second'), uniqueName('third')];
      for (const n of names) await c.query('SELECT provenance.register_transform($1, $2, ARRAY[$3], $4)', [n, table, 'a', '(v) => v']);
      const r = await c.query<{ name: string; position: number }>('SELECT name, position FROM provenance.transforms WHERE target = $1 ORDER BY position', [table]);
      expect(r.rows).toEqual(names.map((name, i) => ({ name, position: i + 1 })));
    } finally {
      await c.end();
    }
  });

  it('rejects bad arguments with a real SQLSTATE and leaves the session usable', async () => {
    const c = await admin();
    const table = uniqueName('bad');
    try {
      await c.query(`CREATE TABLE ${table} (a text)`);
      await expect(c.query("SELECT provenance.register_transform('x', 'no_such_table_here', NULL, '(r) => r')")).rejects.toMatchObject({ code: '42P01' });
      await expect(c.query("SELECT provenance.register_transform('x', $1, ARRAY['nope'], '(v) => v')", [table])).rejects.toMatchObject({ code: '42703' });
      await expect(c.query("SELECT provenance.register_transform('x', $1, NULL, '(r) => r', '[1]')", [table])).rejects.toMatchObject({ code: '22023' });
      await expect(c.query("SELECT provenance.register_transform('bad name!', $1, NULL, '(r) => r')", [table])).rejects.toMatchObject({ code: '23514' });
      await expect(c.query("SELECT provenance.set_transform_params('never_registered', '{}')")).rejects.toMatchObject({ code: '42704' });
      expect((await c.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    } finally {
      await c.end();
    }
  });

  it('lets only the database owner and provenance_admin change the registry (42501 otherwise)', async () => {
    const c = await admin();
    const role = uniqueName('analyst');
    const table = uniqueName('priv');
    try {
      await c.query(`CREATE TABLE ${table} (a text)`);
      await c.query(`CREATE ROLE ${role} LOGIN PASSWORD 'analyst-pw'`);
      await c.query(`GRANT SELECT ON ${table} TO ${role}`);
      const asRole = await t().pg({ user: role, password: 'analyst-pw' });
      try {
        await expect(asRole.query("SELECT provenance.register_transform('sneaky', $1, NULL, '(r) => r')", [table])).rejects.toMatchObject({ code: '42501' });
        await expect(asRole.query('INSERT INTO provenance.transform_version SELECT * FROM provenance.transform_version LIMIT 0')).rejects.toMatchObject({ code: '42501' });
        // Reading what is in force is open to all.
        expect((await asRole.query('SELECT count(*) FROM provenance.transforms')).rows).toHaveLength(1);
        await c.query(`GRANT provenance_admin TO ${role}`);
        const v = await asRole.query<{ v: number }>("SELECT provenance.register_transform($1, $2, NULL, '(r) => r') AS v", [uniqueName('granted'), table]);
        expect(v.rows[0]!.v).toBe(1);
        // Nobody rewrites history, admins included.
        await expect(asRole.query('UPDATE provenance.transform_version SET params = \'{}\'')).rejects.toMatchObject({ code: '42501' });
        await expect(asRole.query('DELETE FROM provenance.transform_version')).rejects.toMatchObject({ code: '42501' });
      } finally {
        await asRole.end();
      }
    } finally {
      await c.end();
    }
  });

  it('announces every change on the provenance_registry channel', async () => {
    const listener = await admin();
    const c = await t().pg();
    const table = uniqueName('notify');
    const name = uniqueName('announced');
    try {
      await listener.query('LISTEN provenance_registry');
      const heard: string[] = [];
      listener.on('notification', (n) => heard.push(n.payload ?? ''));
      await c.query(`CREATE TABLE ${table} (a text)`);
      await c.query("SELECT provenance.register_transform($1, $2, NULL, '(r) => r')", [name, table]);
      await c.query('SELECT provenance.disable_transform($1)', [name]);
      await listener.query('SELECT 1');
      await new Promise((r) => setTimeout(r, 100));
      expect(heard.filter((p) => p === name)).toHaveLength(2);
    } finally {
      await listener.end();
      await c.end();
    }
  });
});
