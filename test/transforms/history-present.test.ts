/**
 * A tracked table's history read directly in a session reading the present
 * (`select … from provenance.history_<oid>`): its columns go through the table's current chain as
 * the table's own do, and a table with a row transform has its history refused (0A000). Both
 * upstreams, both protocols.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import pg from 'pg';
import { eachUpstream, uniqueName } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';

const MASK = '(v) => v === null ? null : v.slice(0, 2) + "***"';

eachUpstream('history tables read in the present', (t) => {
  let masked = '';
  let hidden = '';
  const transforms: string[] = [];
  let statements = 0;

  async function historyOf(c: pg.Client, table: string): Promise<string> {
    return (await c.query<{ h: string }>('SELECT history::text AS h FROM provenance.history_table WHERE target_oid = $1::regclass', [table])).rows[0]!.h;
  }

  beforeAll(async () => {
    await t().proxy.registryLoaded;
    const a = uniqueName('hcol');
    const b = uniqueName('hrow');
    transforms.push(uniqueName('mask'), uniqueName('hide'));
    const c = await t().pg();
    try {
      await c.query(`
        CREATE TABLE ${a} (id int, email text, note text);
        CREATE TABLE ${b} (id int, email text);`);
      await c.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], $3)", [transforms[0], a, MASK]);
      await c.query("SELECT provenance.register_transform($1, $2, NULL, '(row) => row.id === 1 ? null : row')", [transforms[1], b]);
      await c.query(`INSERT INTO ${a} VALUES (1, 'alice@example.com', 'n1'), (2, 'bob@example.com', 'n2')`);
      await c.query(`UPDATE ${a} SET email = 'bob@example.org' WHERE id = 2`);
      await c.query(`INSERT INTO ${b} VALUES (1, 'alice@example.com'), (2, 'bob@example.com')`);
      masked = await historyOf(c, a);
      hidden = await historyOf(c, b);
    } finally {
      await c.end();
    }
  });

  afterAll(async () => {
    const c = await t().pg();
    for (const name of transforms) await c.query('SELECT provenance.drop_transform($1)', [name]).catch(() => undefined);
    await c.end();
  });

  async function run(c: pg.Client, sql: string): Promise<(pg.QueryResult | pg.DatabaseError)[]> {
    return [
      await c.query(sql).catch((e: pg.DatabaseError) => e),
      await c.query({ name: `s${statements++}`, text: sql }).catch((e: pg.DatabaseError) => e),
    ];
  }

  it('serves a column transform\'s columns of the history through it, others as they are', async () => {
    const c = await t().pg();
    try {
      const sql = `SELECT id, email, note FROM ${masked} ORDER BY provenance_valid_from, id`;
      const results = await eventually(() => run(c, sql), (rs) => rs.every((r) => !(r instanceof Error) && r.rows[0]?.['email'] === 'al***'));
      for (const r of results) {
        expect(r).not.toBeInstanceOf(Error);
        const rows = (r as pg.QueryResult).rows;
        expect(rows.map((x: Record<string, unknown>) => x['email']).sort()).toEqual(['al***', 'bo***', 'bo***']);
        expect(rows.map((x: Record<string, unknown>) => x['note']).sort()).toEqual(['n1', 'n2', 'n2']);
      }
      // Aliases and subqueries keep the column's origin, as for the table itself.
      for (const r of await run(c, `SELECT h.email AS e FROM (SELECT email FROM ${masked}) h`)) {
        expect((r as pg.QueryResult).rows.map((x: Record<string, unknown>) => x['e']).sort()).toEqual(['al***', 'bo***', 'bo***']);
      }
    } finally {
      await c.end();
    }
  });

  it('refuses the history of a table with a row transform (0A000), the session going on', async () => {
    const c = await t().pg();
    try {
      for (const r of await run(c, `SELECT id, email FROM ${hidden}`)) {
        expect(r).toBeInstanceOf(Error);
        expect((r as pg.DatabaseError).code).toBe('0A000');
        expect((r as Error).message).toMatch(/row transform .* cannot be applied to history rows/);
      }
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await c.end();
    }
  });
});
