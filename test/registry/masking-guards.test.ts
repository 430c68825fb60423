/**
 * Masking never stops silently: transforms follow renames (bound by table OID and column number),
 * a table that takes a dropped target's name is refused (55000) to all but provenance_admin until
 * an admin decides, and the registry's history takes no forged rows. (The demo's handling of NULL
 * is tested with the demo, in transforms/lifecycle.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { eachUpstream, uniqueName, useTarget } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';

const MASK = '(v) => v === null ? null : v.slice(0, 2) + "***"';

eachUpstream('masking guards', (t) => {
  async function withRole(admin: pg.Client, body: (c: pg.Client, role: string) => Promise<void>): Promise<void> {
    const role = uniqueName('reader');
    await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'`);
    const c = await t().pg({ user: role, password: 'pw' });
    try {
      await body(c, role);
    } finally {
      await c.end();
    }
  }

  it('follows a renamed column and table', async () => {
    await t().proxy.registryLoaded;
    const admin = await t().pg();
    const table = uniqueName('renamed');
    const name = uniqueName('mask');
    try {
      await admin.query(`CREATE TABLE ${table} (id int, email text); INSERT INTO ${table} VALUES (1, 'ada@example.org')`);
      await admin.query('SELECT provenance.register_transform($1, $2, ARRAY[\'email\'], $3)', [name, table, MASK]);
      await admin.query(`ALTER TABLE ${table} RENAME COLUMN email TO mail`);
      await admin.query(`ALTER TABLE ${table} RENAME TO ${table}_2`);
      const shown = await admin.query('SELECT target, columns, target_status FROM provenance.transforms WHERE name = $1', [name]);
      expect(shown.rows).toEqual([{ target: `${table}_2`, columns: ['mail'], target_status: 'ok' }]);
      expect((await admin.query(`SELECT mail FROM ${table}_2`)).rows).toEqual([{ mail: 'ad***' }]);
      await admin.query('SELECT provenance.drop_transform($1)', [name]);
    } finally {
      await admin.end();
    }
  });

  it('refuses a table that took a dropped target\'s name (55000) to all but admins, until one adopts it', async () => {
    await t().proxy.registryLoaded;
    const admin = await t().pg();
    const table = uniqueName('recreated');
    const name = uniqueName('mask');
    try {
      await admin.query(`CREATE TABLE ${table} (id int, email text); INSERT INTO ${table} VALUES (1, 'ada@example.org')`);
      await admin.query('SELECT provenance.register_transform($1, $2, ARRAY[\'email\'], $3)', [name, table, MASK]);
      await admin.query(`DROP TABLE ${table}`);
      expect((await admin.query('SELECT target_status FROM provenance.transforms WHERE name = $1', [name])).rows).toEqual([{ target_status: 'dropped' }]);
      await admin.query(`CREATE TABLE ${table} (id int, email text); INSERT INTO ${table} VALUES (1, 'ada@example.org')`);
      await withRole(admin, async (reader, role) => {
        await admin.query(`GRANT SELECT ON ${table} TO ${role}`);
        const refused = await reader.query(`SELECT id, email FROM ${table}`).then(() => null, (err: unknown) => err as pg.DatabaseError);
        expect(refused).toMatchObject({ code: '55000' });
        expect(refused!.message).toContain(name);
        expect(refused!.hint).toMatch(/provenance\.adopt_table/);
        // A column of the table anywhere in the result is enough; the session goes on.
        await expect(reader.query(`SELECT 1 AS one, t.id FROM ${table} t`)).rejects.toMatchObject({ code: '55000' });
        expect((await reader.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
        const status = await admin.query<{ target_status: string; replaced_by: number }>('SELECT target_status, replaced_by FROM provenance.transforms WHERE name = $1', [name]);
        expect(status.rows[0]!.target_status).toBe('replaced');
        expect(Number(status.rows[0]!.replaced_by)).toBe(Number((await admin.query(`SELECT '${table}'::regclass::oid AS o`)).rows[0]!.o));

        // An admin may read it, to decide; then binds the transform to it.
        await admin.query(`GRANT provenance_admin TO ${role}`);
        const asAdmin = await t().pg({ user: role, password: 'pw' });
        try {
          expect((await asAdmin.query(`SELECT email FROM ${table}`)).rows).toEqual([{ email: 'ada@example.org' }]);
          expect((await asAdmin.query<{ n: number }>('SELECT provenance.adopt_table($1) AS n', [table])).rows[0]!.n).toBe(1);
        } finally {
          await asAdmin.end();
        }
        await admin.query(`REVOKE provenance_admin FROM ${role}`);
        expect((await admin.query('SELECT target_status FROM provenance.transforms WHERE name = $1', [name])).rows).toEqual([{ target_status: 'ok' }]);
        expect((await reader.query(`SELECT email FROM ${table}`)).rows).toEqual([{ email: 'ad***' }]);
      });
      await admin.query('SELECT provenance.drop_transform($1)', [name]);
    } finally {
      await admin.end();
    }
  });

  it('learns of a target re-created inside a transaction once it commits', async () => {
    await t().proxy.registryLoaded;
    const admin = await t().pg();
    const table = uniqueName('in_tx');
    const name = uniqueName('mask');
    try {
      await admin.query(`CREATE TABLE ${table} (id int, email text); INSERT INTO ${table} VALUES (1, 'ada@example.org')`);
      await admin.query('SELECT provenance.register_transform($1, $2, ARRAY[\'email\'], $3)', [name, table, MASK]);
      await withRole(admin, async (reader, role) => {
        await admin.query('BEGIN');
        await admin.query(`DROP TABLE ${table}`);
        await admin.query(`CREATE TABLE ${table} (id int, email text)`);
        await admin.query(`INSERT INTO ${table} VALUES (1, 'ada@example.org')`);
        await admin.query(`GRANT SELECT ON ${table} TO ${role}`);
        await admin.query('COMMIT');
        await expect(reader.query(`SELECT email FROM ${table}`)).rejects.toMatchObject({ code: '55000' });
      });
      await admin.query('SELECT provenance.drop_transform($1)', [name]);
    } finally {
      await admin.end();
    }
  });

  it('refuses a table whose masked column was dropped and added again', async () => {
    await t().proxy.registryLoaded;
    const admin = await t().pg();
    const table = uniqueName('recolumned');
    const name = uniqueName('mask');
    try {
      await admin.query(`CREATE TABLE ${table} (id int, email text); INSERT INTO ${table} VALUES (1, 'ada@example.org')`);
      await admin.query('SELECT provenance.register_transform($1, $2, ARRAY[\'email\'], $3)', [name, table, MASK]);
      await admin.query(`ALTER TABLE ${table} DROP COLUMN email; ALTER TABLE ${table} ADD COLUMN email text; UPDATE ${table} SET email = 'bob@example.org'`);
      await withRole(admin, async (reader, role) => {
        await admin.query(`GRANT SELECT ON ${table} TO ${role}`);
        await expect(reader.query(`SELECT email FROM ${table}`)).rejects.toMatchObject({ code: '55000' });
      });
      expect((await admin.query('SELECT target_status FROM provenance.transforms WHERE name = $1', [name])).rows).toEqual([{ target_status: 'replaced' }]);
      await admin.query('SELECT provenance.adopt_table($1)', [table]);
      await admin.query(`GRANT SELECT ON ${table} TO PUBLIC`);
      await withRole(admin, async (reader) => {
        expect((await reader.query(`SELECT email FROM ${table}`)).rows).toEqual([{ email: 'bo***' }]);
      });
      await admin.query('SELECT provenance.drop_transform($1)', [name]);
    } finally {
      await admin.end();
    }
  });

  it('takes versions only through the functions: no forged rows, no rewriting, even from the owner', async () => {
    await t().proxy.registryLoaded;
    const admin = await t().pg();
    const table = uniqueName('forged');
    const name = uniqueName('mask');
    try {
      await admin.query(`CREATE TABLE ${table} (id int, email text)`);
      const source = '(row) => row';
      await admin.query('SELECT provenance.register_transform($1, $2, NULL, $3)', [name, table, source]);
      const insert = (overrides: Record<string, string>): Promise<unknown> => {
        const cols: Record<string, string> = {
          name: `'${name}'`, version: '2', target_oid: `'${table}'::regclass`, target: `'public.${table}'`, columns: 'NULL',
          source: `'${source}'`, function_hash: `provenance.function_hash('${source}')`, params: "'{}'", position: '1', enabled: 'true',
          ...overrides,
        };
        return admin.query(`INSERT INTO provenance.transform_version (${Object.keys(cols).join(', ')}) VALUES (${Object.values(cols).join(', ')})`);
      };
      // The schema's owner (this login) inserting by hand: every forgery is caught.
      await expect(insert({ function_hash: "repeat('0', 64)" })).rejects.toMatchObject({ code: '23514' });
      await expect(insert({ source: "'(v) => v'" })).rejects.toMatchObject({ code: '23514' });
      await expect(insert({ valid_from: "now() - interval '1 day'" })).rejects.toMatchObject({ code: '23514' });
      await expect(insert({ valid_from: "now() + interval '1 day'" })).rejects.toMatchObject({ code: '23514' });
      await expect(insert({ created_by: "'somebody_else'" })).rejects.toMatchObject({ code: '23514' });
      await expect(insert({ version: '5' })).rejects.toMatchObject({ code: '23514' });
      await expect(admin.query('UPDATE provenance.transform_version SET params = \'{"x": 1}\' WHERE name = $1', [name])).rejects.toMatchObject({ code: '42501' });
      await expect(admin.query('DELETE FROM provenance.transform_version WHERE name = $1', [name])).rejects.toMatchObject({ code: '42501' });
      await expect(admin.query('TRUNCATE provenance.transform_version')).rejects.toMatchObject({ code: '42501' });
      // provenance_admin changes the registry through the functions only.
      await withRole(admin, async (c, role) => {
        await admin.query(`GRANT provenance_admin TO ${role}`);
        await expect(c.query(`INSERT INTO provenance.transform_version SELECT * FROM provenance.transform_version WHERE name = '${name}'`)).rejects.toMatchObject({ code: '42501' });
        expect((await c.query<{ v: number }>('SELECT provenance.set_transform_params($1, \'{"k": 1}\') AS v', [name])).rows[0]!.v).toBe(2);
        const row = await admin.query('SELECT created_by, valid_from <= now() AS timely FROM provenance.transform_version WHERE name = $1 AND version = 2', [name]);
        expect(row.rows).toEqual([{ created_by: role, timely: true }]);
      });
      expect((await admin.query('SELECT count(*)::int AS n FROM provenance.transform_version WHERE name = $1', [name])).rows[0]).toEqual({ n: 2 });
      await admin.query('SELECT provenance.drop_transform($1)', [name]);
    } finally {
      await admin.end();
    }
  });
});

describe('masking guards [postgres]: DDL made straight on the database', () => {
  const t = useTarget('postgres');
  it('is learnt of at once: a table re-created under a target\'s name is refused', async () => {
    await t.proxy.registryLoaded;
    const admin = await t.pg();
    const table = uniqueName('direct');
    const name = uniqueName('mask');
    const direct = new pg.Client({ connectionString: t.cluster.url() });
    await direct.connect();
    try {
      await admin.query(`CREATE TABLE ${table} (id int, email text); INSERT INTO ${table} VALUES (1, 'ada@example.org')`);
      await admin.query('SELECT provenance.register_transform($1, $2, ARRAY[\'email\'], $3)', [name, table, MASK]);
      await direct.query(`DROP TABLE ${table}; CREATE TABLE ${table} (id int, email text); INSERT INTO ${table} VALUES (1, 'ada@example.org')`);
      await direct.query(`GRANT SELECT ON ${table} TO trustuser`);
      const reader = await t.pg({ user: 'trustuser', password: '' });
      try {
        const r = await eventually(
          () => reader.query(`SELECT email FROM ${table}`).then(() => 'served', (err: pg.DatabaseError) => err.code),
          (code) => code === '55000',
          2_000,
        );
        expect(r).toBe('55000');
      } finally {
        await reader.end();
      }
      await admin.query('SELECT provenance.drop_transform($1)', [name]);
    } finally {
      await direct.end();
      await admin.end();
    }
  });
});
