/**
 * Row transforms see the columns they read: `register_transform(…, reads)` names them (NULL: every
 * column), and a statement that does not select them gets them fetched alongside and stripped
 * before the client sees the rows. What the client receives — RowDescription (a Describe's answer
 * too), rows, command tag — is what the server gives for the filtered query.
 */
import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { useTarget, uniqueName } from '../support/proxy-matrix.js';
import { describedUnit, raw, summary } from '../support/row-reads-wire.js';
import { SHARED_EXEMPT } from '../support/guard-sessions.js';

const HIDE_LOW = '(row, p) => row.amount < p.min ? null : row';

interface Orders {
  readonly table: string;
  readonly hide: string;
}

async function orders(c: pg.Client, reads: string | null = "ARRAY['amount']"): Promise<Orders> {
  const table = uniqueName('orders');
  const hide = uniqueName('hide_low');
  await c.query(`CREATE TABLE ${table} (id int, customer text, amount int)`);
  await c.query(`INSERT INTO ${table} VALUES (1, 'ann', 50), (2, 'bob', 150), (3, 'cid', 300), (4, 'dee', 20)`);
  await c.query(`GRANT SELECT ON ${table} TO PUBLIC`);
  await c.query(`SELECT provenance.register_transform($1, $2, NULL, $3, '{"min": 100}', reads => ${reads ?? 'NULL'})`, [hide, table, HIDE_LOW]);
  return { table, hide };
}

/** A RowDescription field as the client gets it, every attribute. */
function fieldsOf(r: pg.QueryResult): unknown[] {
  return r.fields.map((f) => ({ ...f }));
}

for (const kind of ['embedded', 'postgres'] as const) {
  describe(`row transforms read what they declare [${kind}]`, () => {
    const t = useTarget(kind);

    it('registers reads, shows them in both views, and keeps them through every later change', async () => {
      await t.proxy.registryLoaded;
      const c = await t.pg();
      try {
        const o = await orders(c);
        const view = async (): Promise<unknown> => (await c.query('SELECT reads, version FROM provenance.transforms WHERE name = $1', [o.hide])).rows[0];
        expect(await view()).toEqual({ reads: ['amount'], version: 1 });
        await c.query(`SELECT provenance.set_transform_params($1, '{"min": 200}')`, [o.hide]);
        // Guards hold for every session of the database (the cluster is shared): the superuser and registry admins are exempt.
        await c.query("SELECT provenance.set_transform_guard($1, 'values', $2)", [o.hide, SHARED_EXEMPT]);
        await c.query('SELECT provenance.move_transform($1, 3)', [o.hide]);
        expect(await view()).toEqual({ reads: ['amount'], version: 4 });
        const versions = await c.query('SELECT version, reads, guard FROM provenance.transform_versions WHERE name = $1 ORDER BY version', [o.hide]);
        expect(versions.rows.map((r) => r.reads)).toEqual([['amount'], ['amount'], ['amount'], ['amount']]);
        expect(versions.rows.map((r) => r.guard)).toEqual(['off', 'off', 'values', 'values']);
        // The old signature (six arguments) still registers, with reads NULL: every column.
        const every = uniqueName('every');
        await c.query("SELECT provenance.register_transform($1, $2, NULL, '(r) => r', '{}', 'sql')", [every, o.table]);
        expect((await c.query('SELECT reads FROM provenance.transforms WHERE name = $1', [every])).rows).toEqual([{ reads: null }]);
        await expect(c.query("SELECT provenance.register_transform('x_reads', $1, ARRAY['id'], '(v) => v', reads => ARRAY['amount'])", [o.table]))
          .rejects.toMatchObject({ code: '22023' });
        await expect(c.query("SELECT provenance.register_transform('x_reads', $1, NULL, '(r) => r', reads => ARRAY['nope'])", [o.table]))
          .rejects.toMatchObject({ code: '42703' });
        await c.query('SELECT provenance.drop_transform($1)', [every]);
        await c.query('SELECT provenance.drop_transform($1)', [o.hide]);
      } finally {
        await c.end();
      }
    });

    it('filters `select id` by a column it does not select: rows, description and tag as the filtered query', async () => {
      await t.proxy.registryLoaded;
      const c = await t.pg();
      try {
        const o = await orders(c);
        const got = await c.query(`SELECT id FROM ${o.table} ORDER BY id`);
        const want = await c.query(`SELECT id FROM ${o.table} WHERE amount >= 100 ORDER BY id`);
        expect(got.rows).toEqual([{ id: 2 }, { id: 3 }]);
        expect(got.command).toBe('SELECT');
        expect(got.rowCount).toBe(2);
        expect(fieldsOf(got)).toEqual(fieldsOf(want));
        expect(got.fields).toHaveLength(1);
        // Aliases, a join, a WHERE, a bare select list of other columns, and `select 1`.
        expect((await c.query(`SELECT o.customer AS who FROM ${o.table} o WHERE o.id > 1 ORDER BY 1`)).rows).toEqual([{ who: 'bob' }, { who: 'cid' }]);
        expect((await c.query(`SELECT 1 AS one FROM ${o.table}`)).rowCount).toBe(2);
        const names = uniqueName('names');
        await c.query(`CREATE TABLE ${names} AS SELECT g AS id, 'n' || g AS name FROM generate_series(1, 4) g`);
        await c.query(`GRANT SELECT ON ${names} TO PUBLIC`);
        expect((await c.query(`SELECT n.name, x.id FROM ${names} n JOIN ${o.table} x USING (id) ORDER BY 1`)).rows)
          .toEqual([{ name: 'n2', id: 2 }, { name: 'n3', id: 3 }]);
        // Selecting the column too changes nothing.
        expect((await c.query(`SELECT amount, id FROM ${o.table} ORDER BY id`)).rows).toEqual([{ amount: 150, id: 2 }, { amount: 300, id: 3 }]);
        if (t.kind === 'postgres') {
          // The server itself, for the filtered query: the same description and tag.
          const direct = new pg.Client({ connectionString: t.cluster.url() });
          await direct.connect();
          try {
            const server = await direct.query(`SELECT id FROM ${o.table} WHERE amount >= 100 ORDER BY id`);
            expect(fieldsOf(got)).toEqual(fieldsOf(server));
            expect(got.rows).toEqual(server.rows);
          } finally {
            await direct.end();
          }
        }
        await c.query('SELECT provenance.drop_transform($1)', [o.hide]);
      } finally {
        await c.end();
      }
    });

    it('splices the columns in as the server reads the text: comments, quoting, ordinals, non-ASCII, CTEs, schemas', async () => {
      await t.proxy.registryLoaded;
      const c = await t.pg();
      try {
        const o = await orders(c);
        const cases: [string, unknown[]][] = [
          [`SELECT id /* a comment, FROM nothing */ FROM ${o.table} ORDER BY 1 DESC`, [{ id: 3 }, { id: 2 }]],
          [`SELECT id -- FROM\n, customer FROM ${o.table} ORDER BY 2`, [{ id: 2, customer: 'bob' }, { id: 3, customer: 'cid' }]],
          [`SELECT id IS DISTINCT FROM 2 AS other FROM "${o.table}" ORDER BY id`, [{ other: false }, { other: true }]],
          [`SELECT 'é€' AS e, (id) AS "FROM" FROM public.${o.table} ORDER BY id`, [{ e: 'é€', FROM: 2 }, { e: 'é€', FROM: 3 }]],
          [`SELECT x.* FROM ${o.table} AS x WHERE x.id = 2`, [{ id: 2, customer: 'bob', amount: 150 }]],
          [`WITH ${o.table} AS (SELECT 9 AS id) SELECT id FROM ${o.table}`, [{ id: 9 }]],
          [`SELECT (ARRAY[id, 1])[1] AS a FROM ${o.table} ORDER BY id`, [{ a: 2 }, { a: 3 }]],
        ];
        for (const [text, rows] of cases) {
          const r = await c.query(text);
          expect(r.rows, text).toEqual(rows);
          expect(r.fields.map((f) => f.name).some((n) => n.startsWith('pp_read_')), text).toBe(false);
        }
        await c.query('SELECT provenance.drop_transform($1)', [o.hide]);
      } finally {
        await c.end();
      }
    });

    it('gives a row transform with reads NULL every column of its table', async () => {
      await t.proxy.registryLoaded;
      const c = await t.pg();
      try {
        const o = await orders(c, null);
        const keys = uniqueName('keys');
        await c.query("SELECT provenance.register_transform($1, $2, NULL, '(row) => ({ ...row, customer: row.customer === null ? null : Object.keys(row).join() })')", [keys, o.table]);
        const r = await c.query(`SELECT customer FROM ${o.table} ORDER BY id`);
        expect(r.rows).toEqual([{ customer: 'id,customer,amount' }, { customer: 'id,customer,amount' }]);
        await c.query('SELECT provenance.drop_transform($1)', [keys]);
        await c.query('SELECT provenance.drop_transform($1)', [o.hide]);
      } finally {
        await c.end();
      }
    });

    it('serves prepared statements, binary results, postgres.js and cursors the same', async () => {
      await t.proxy.registryLoaded;
      const c = await t.pg();
      const sql = t.sql();
      try {
        const o = await orders(c);
        const text = `SELECT id, customer FROM ${o.table} WHERE id <> $1 ORDER BY id`;
        const named = await c.query({ name: uniqueName('q'), text, values: [0] });
        const filtered = await c.query({ name: uniqueName('q'), text: `SELECT id, customer FROM ${o.table} WHERE id <> $1 AND amount >= 100 ORDER BY id`, values: [0] });
        expect(named.rows).toEqual([{ id: 2, customer: 'bob' }, { id: 3, customer: 'cid' }]);
        expect(fieldsOf(named)).toEqual(fieldsOf(filtered));
        const binary = await t.pg({ binary: true } as Partial<pg.ClientConfig>);
        try {
          const b = await binary.query(text, [0]);
          expect(b.rows).toEqual([{ id: 2, customer: 'bob' }, { id: 3, customer: 'cid' }]);
          expect(b.fields.map((f) => f.format)).toEqual(['binary', 'binary']);
        } finally {
          await binary.end();
        }
        const js = await sql.unsafe(`SELECT id FROM ${o.table} ORDER BY id`, [], { prepare: true });
        expect([...js]).toEqual([{ id: 2 }, { id: 3 }]);
        expect(js.columns.map((col) => col.name)).toEqual(['id']);
        expect(js.count).toBe(2);
        await c.query('BEGIN');
        await c.query(`DECLARE rr CURSOR FOR SELECT customer FROM ${o.table} ORDER BY id`);
        const fetched = await c.query('FETCH ALL FROM rr');
        expect(fetched.rows).toEqual([{ customer: 'bob' }, { customer: 'cid' }]);
        expect(fetched.fields.map((f) => f.name)).toEqual(['customer']);
        await c.query('COMMIT');
        await c.query('SELECT provenance.drop_transform($1)', [o.hide]);
      } finally {
        await sql.end();
        await c.end();
      }
    });

    it('answers Describe and per-column result formats on the raw wire as for the filtered query', async () => {
      await t.proxy.registryLoaded;
      const c = await t.pg();
      const w = await raw(t);
      try {
        const o = await orders(c);
        const unit = (query: string): Promise<unknown[]> => describedUnit(w, query);
        const got = await unit(`SELECT id, customer FROM ${o.table} ORDER BY id`);
        const want = await unit(`SELECT id, customer FROM ${o.table} WHERE amount >= 100 ORDER BY id`);
        expect(got).toEqual(want);
        expect(got.filter((m) => typeof m === 'object' && m !== null && 'D' in m)).toHaveLength(2);
        expect(got).toContainEqual({ C: 'SELECT 2' });
        // The simple protocol too, two statements in one Query.
        w.write(serialize.query(`SELECT id FROM ${o.table} ORDER BY id; SELECT customer FROM ${o.table} WHERE id > 2`));
        const simple = summary(await w.untilReady());
        w.write(serialize.query(`SELECT id FROM ${o.table} WHERE amount >= 100 ORDER BY id; SELECT customer FROM ${o.table} WHERE id > 2 AND amount >= 100`));
        expect(simple).toEqual(summary(await w.untilReady()));
        await c.query('SELECT provenance.drop_transform($1)', [o.hide]);
      } finally {
        w.end();
        await c.end();
      }
    });
  });
}
