/**
 * Guards where time travel reads: a read-around of a guarded column is refused in a session
 * reading as of a moment (the guards judge the statement the client sent, not its rewrite over
 * the history), through the table's history read directly in a present session, and through
 * provenance.rows_as_of, which returns the table's rows without column origins (under `values`
 * and `strict`; under `off` it is a read-around like any function). Both upstreams, both protocols.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import pg from 'pg';
import { eachUpstream, uniqueName } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';

const MASK = '(v) => v === null ? null : v.slice(0, 2) + "***"';
const MASKED = ['al***', 'bo***'];

eachUpstream('guards over the history', (t) => {
  let table = '';
  let transform = '';
  let reader = '';
  let history = '';
  let moment = '';
  let statements = 0;

  beforeAll(async () => {
    await t().proxy.registryLoaded;
    table = uniqueName('hguarded');
    transform = uniqueName('mask');
    reader = uniqueName('reader');
    const admin = await t().pg();
    try {
      await admin.query(`
        CREATE TABLE ${table} (id int PRIMARY KEY, email text);
        CREATE ROLE ${reader} LOGIN PASSWORD 'pw';
        GRANT SELECT ON ${table} TO ${reader};`);
      await admin.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], $3)", [transform, table, MASK]);
      await admin.query(`INSERT INTO ${table} VALUES (1, 'alice@example.com'), (2, 'bob@example.com')`);
      // The guard holds for every session of the database: the superuser and registry admins
      // other suites sharing the cluster log in as are exempt.
      await admin.query("SELECT provenance.set_transform_guard($1, 'values', ARRAY['postgres', 'provenance_admin'])", [transform]);
      history = (await admin.query<{ h: string }>('SELECT history::text AS h FROM provenance.history_table WHERE target_oid = $1::regclass', [table])).rows[0]!.h;
      moment = (await admin.query<{ m: string }>('SELECT now()::text AS m')).rows[0]!.m;
      await admin.query(`UPDATE ${table} SET email = 'bob@example.org' WHERE id = 2`);
    } finally {
      await admin.end();
    }
  });

  afterAll(async () => {
    const admin = await t().pg();
    await admin.query('SELECT provenance.drop_transform($1)', [transform]).catch(() => undefined);
    await admin.end();
  });

  /** A session of the reader once the proxy applies the guard, reading as of the moment if asked. */
  async function session(asOf: boolean): Promise<pg.Client> {
    const seen = await eventually(async () => {
      const probe = await t().pg({ user: reader, password: 'pw' });
      try {
        return await probe.query(`SELECT lower(email) AS e FROM ${table}`).then(() => 'served', (e: pg.DatabaseError) => e.message);
      } finally {
        await probe.end();
      }
    }, (r) => r.includes('guarded by transform'));
    expect(seen).toContain('guarded by transform');
    const c = await t().pg({ user: reader, password: 'pw' });
    if (asOf) await c.query(`SET provenance.as_of = '${moment}'`);
    return c;
  }

  async function expectRefused(c: pg.Client, sql: string, message = /guarded by transform/): Promise<void> {
    for (const extended of [false, true]) {
      const r = await (extended ? c.query({ name: `s${statements++}`, text: sql }) : c.query(sql)).catch((e: pg.DatabaseError) => e);
      const protocol = extended ? 'extended' : 'simple';
      expect(r, `${protocol}: ${sql}`).toBeInstanceOf(Error);
      expect((r as pg.DatabaseError).code, `${protocol}: ${sql}: ${(r as Error).message}`).toBe('42501');
      expect((r as Error).message, `${protocol}: ${sql}`).toMatch(message);
    }
    expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  }

  async function expectMasked(c: pg.Client, sql: string): Promise<void> {
    for (const extended of [false, true]) {
      const r = await (extended ? c.query({ name: `s${statements++}`, text: sql }) : c.query(sql));
      const got = r.rows.map((row: Record<string, unknown>) => row['email']);
      expect(got.length, sql).toBeGreaterThan(0);
      for (const v of got) expect(MASKED, sql).toContain(v);
    }
  }

  it('refuses a read-around in a session reading as of a moment, and serves the plain column replayed', async () => {
    const c = await session(true);
    try {
      await expectRefused(c, `SELECT lower(email) FROM ${table}`);
      await expectRefused(c, `SELECT email || '' AS e FROM ${table} WHERE id = 2`);
      await expectMasked(c, `SELECT email FROM ${table} ORDER BY id`);
    } finally {
      await c.end();
    }
  });

  it('refuses a read-around through the history table read directly, in present and as-of sessions', async () => {
    for (const asOf of [false, true]) {
      const c = await session(asOf);
      try {
        await expectRefused(c, `SELECT lower(email) FROM ${history}`, /guarded by transform/);
        await expectRefused(c, `SELECT id FROM ${history} WHERE upper(email) LIKE 'A%'`, /guarded by transform/);
      } finally {
        await c.end();
      }
    }
  });

  it('serves the history\'s plain column through the transform in a present session', async () => {
    const c = await session(false);
    try {
      await expectMasked(c, `SELECT email FROM ${history} ORDER BY provenance_valid_from`);
    } finally {
      await c.end();
    }
  });

  it('refuses provenance.rows_as_of of a guarded table, in present and as-of sessions', async () => {
    for (const asOf of [false, true]) {
      const c = await session(asOf);
      try {
        await expectRefused(c, `SELECT email FROM provenance.rows_as_of(NULL::${table}, now())`, /rows_as_of/);
        await expectRefused(c, `SELECT r.email FROM provenance.rows_as_of(NULL::${table}, '${moment}') r`, /rows_as_of/);
      } finally {
        await c.end();
      }
    }
  });

  it('refuses provenance.rows_as_of under strict; under off it is a read-around like any function (as documented)', async () => {
    const admin = await t().pg();
    try {
      await admin.query("SELECT provenance.set_transform_guard($1, 'strict', ARRAY['postgres', 'provenance_admin'])", [transform]);
      const probe = `SELECT id FROM ${table} WHERE email = 'alice@example.com'`;
      const c = await t().pg({ user: reader, password: 'pw' });
      try {
        const seen = await eventually(() => c.query(probe).then(() => 'served', (e: pg.DatabaseError) => e.message), (r) => r.includes('guard strict'));
        expect(seen).toContain('guard strict');
        await expectRefused(c, `SELECT email FROM provenance.rows_as_of(NULL::${table}, now())`, /rows_as_of/);
      } finally {
        await c.end();
      }
      await admin.query("SELECT provenance.set_transform_guard($1, 'off')", [transform]);
      // As the superuser: the test cluster is shared, and other suites' guards exempt only it (and
      // provenance_admin), so a reader could be refused for their guarded columns meanwhile.
      const d = await t().pg();
      try {
        const rows = await eventually(
          () => d.query(`SELECT email FROM provenance.rows_as_of(NULL::${table}, now()) ORDER BY id`).then((r) => r.rows, (e: Error) => e.message),
          (r) => Array.isArray(r));
        expect(rows).toEqual([{ email: 'alice@example.com' }, { email: 'bob@example.org' }]);
        // The table itself is still served through its transform.
        expect((await d.query(`SELECT email FROM ${table} ORDER BY id`)).rows).toEqual([{ email: 'al***' }, { email: 'bo***' }]);
      } finally {
        await d.end();
      }
    } finally {
      await admin.end();
    }
  });
});
