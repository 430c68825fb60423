/**
 * Guarded row transforms through real clients, on both upstreams and in both protocols: every way
 * for a table's rows to reach a client around its row transform is refused under `values`
 * (naming the transform), and the forms it can filter are served filtered. A statement whose
 * reads the analysis cannot tell (a function that may read tables, query_to_xml, DO) is refused
 * whatever it names, as for guarded columns; under `off` such a function's rows pass unfiltered.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { eachUpstream, uniqueName } from '../support/proxy-matrix.js';
import { SHARED_EXEMPT, bothProtocols, refusingSession, until } from '../support/guard-sessions.js';

const HIDE_LOW = '(row, p) => row.amount < p.min ? null : row';

interface Fixture {
  readonly orders: string;
  readonly hide: string;
  readonly reader: string;
  readonly sink: string;
  readonly view: string;
  readonly viewOfView: string;
  readonly rowsOf: string;
  readonly countOf: string;
  /** Its history table (`provenance.history_<oid>`), which keeps every row. */
  readonly history: string;
  /** A moment after the rows were written, to read as of. */
  readonly moment: string;
}

eachUpstream('guarded row transforms', (t) => {
  let f: Fixture;

  beforeAll(async () => {
    await t().proxy.registryLoaded;
    const admin = await t().pg();
    try {
      const x = {
        orders: uniqueName('orders'), hide: uniqueName('hide_low'), reader: uniqueName('reader'), sink: uniqueName('sink'),
        view: uniqueName('orders_v'), viewOfView: uniqueName('orders_vv'), rowsOf: uniqueName('rows_of'), countOf: uniqueName('count_of'),
      };
      await admin.query(`
        CREATE TABLE ${x.orders} (id int PRIMARY KEY, customer text, amount int);
        INSERT INTO ${x.orders} VALUES (1, 'ann', 50), (2, 'bob', 150), (3, 'cid', 300), (4, 'dee', 20);
        CREATE TABLE ${x.sink} (v int);
        INSERT INTO ${x.sink} VALUES (1), (2);
        CREATE VIEW ${x.view} AS SELECT id, customer FROM ${x.orders};
        CREATE VIEW ${x.viewOfView} AS SELECT id FROM ${x.view};
        CREATE FUNCTION ${x.rowsOf}() RETURNS SETOF ${x.orders} LANGUAGE sql STABLE AS 'SELECT * FROM ${x.orders}';
        CREATE FUNCTION ${x.countOf}() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT count(*) FROM ${x.orders}';
        CREATE ROLE ${x.reader} LOGIN PASSWORD 'pw';
        GRANT SELECT, UPDATE ON ${x.orders} TO ${x.reader};
        GRANT SELECT, INSERT, UPDATE, DELETE ON ${x.sink} TO ${x.reader};
        GRANT SELECT ON ${x.view}, ${x.viewOfView} TO ${x.reader};
        GRANT CREATE ON SCHEMA public TO ${x.reader};`);
      await admin.query(`SELECT provenance.register_transform($1, $2, NULL, $3, '{"min": 100}', reads => ARRAY['amount'])`, [x.hide, x.orders, HIDE_LOW]);
      await admin.query("SELECT provenance.set_transform_guard($1, 'values', $2)", [x.hide, SHARED_EXEMPT]);
      const history = (await admin.query<{ h: string }>('SELECT history::text AS h FROM provenance.history_table WHERE target_oid = $1::regclass', [x.orders])).rows[0]!.h;
      const moment = (await admin.query<{ m: string }>('SELECT clock_timestamp()::text AS m')).rows[0]!.m;
      f = { ...x, history, moment };
    } finally {
      await admin.end();
    }
  });

  afterAll(async () => {
    const admin = await t().pg();
    await admin.query('SELECT provenance.drop_transform($1)', [f.hide]).catch(() => undefined);
    await admin.end();
  });

  const reader = (): Promise<pg.Client> => refusingSession(t(), f.reader, `SELECT * FROM ${f.rowsOf}()`);

  async function expectRefused(c: pg.Client, sql: string, message?: RegExp, code = '42501'): Promise<void> {
    for (const [i, r] of (await bothProtocols(c, sql)).entries()) {
      const protocol = i === 0 ? 'simple' : 'extended';
      expect(r, `${protocol}: ${sql}`).toBeInstanceOf(Error);
      expect((r as pg.DatabaseError).code, `${protocol}: ${sql}: ${(r as Error).message}`).toBe(code);
      if (message !== undefined) expect((r as Error).message, `${protocol}: ${sql}`).toMatch(message);
      else expect((r as Error).message, `${protocol}: ${sql}`).toContain(f.hide);
    }
    // The session goes on.
    expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  }

  describe('refused under values, in both protocols', () => {
    const historyRefusal = (x: Fixture): RegExp => new RegExp(`rows of public\\.${x.orders} are filtered by transform "${x.hide}" .*its history keeps every row`);
    const unsure = (x: Fixture, what: string): RegExp =>
      new RegExp(`cannot tell whether this statement reads around the guards on .*the rows of public\\.${x.orders} \\(transform "${x.hide}"\\).*: .*${what}`);
    const forms: [string, (x: Fixture) => string, ((x: Fixture) => RegExp)?, string?][] = [
      ['a set-returning function that reads the table', (x) => `SELECT * FROM ${x.rowsOf}()`, (x) => unsure(x, `function public\\.${x.rowsOf} may read tables`)],
      ['a function in the select list', (x) => `SELECT ${x.countOf}() AS n`, (x) => unsure(x, `function public\\.${x.countOf} may read tables`)],
      ['a function in WHERE of another table', (x) => `SELECT v FROM ${x.sink} WHERE v < ${x.countOf}()`, (x) => unsure(x, `function public\\.${x.countOf} may read tables`)],
      ['query_to_xml', (x) => `SELECT query_to_xml('SELECT id FROM ${x.orders}', true, false, '')`, (x) => unsure(x, 'query_to_xml may read tables')],
      ['DO', () => 'DO $$ BEGIN PERFORM 1; END $$', (x) => unsure(x, 'DO runs code')],
      ['a view', (x) => `SELECT id FROM ${x.view}`],
      ['a view of a view', (x) => `SELECT id FROM ${x.viewOfView}`],
      ['row_to_json through a view', (x) => `SELECT row_to_json(v) FROM ${x.view} v`],
      ['COPY of a query to STDOUT', (x) => `COPY (SELECT id FROM ${x.orders}) TO STDOUT`, () => /COPY TO STDOUT of .* has transforms/, '0A000'],
      ['COPY of a query to a file', (x) => `COPY (SELECT id FROM ${x.orders}) TO '/tmp/${x.orders}'`],
      ['COPY of the table to a file', (x) => `COPY ${x.orders} TO '/tmp/${x.orders}'`],
      ['CREATE TABLE AS', (x) => `CREATE TABLE ${x.orders}_copy AS SELECT * FROM ${x.orders}`],
      ['SELECT INTO', (x) => `SELECT * INTO ${x.orders}_into FROM ${x.orders}`],
      ['INSERT … SELECT', (x) => `INSERT INTO ${x.sink} SELECT id FROM ${x.orders}`],
      ['UPDATE … FROM', (x) => `UPDATE ${x.sink} SET v = o.amount FROM ${x.orders} o WHERE o.id = ${x.sink}.v`],
      ['DELETE … USING', (x) => `DELETE FROM ${x.sink} USING ${x.orders} o WHERE o.id = ${x.sink}.v`],
      ['MERGE … USING', (x) => `MERGE INTO ${x.sink} s USING ${x.orders} o ON s.v = o.id WHEN MATCHED THEN UPDATE SET v = o.amount`],
      ['EXPLAIN ANALYZE', (x) => `EXPLAIN ANALYZE SELECT id FROM ${x.orders} WHERE amount < 100`],
      ['RETURNING of a write', (x) => `UPDATE ${x.orders} SET customer = customer WHERE id = 1 RETURNING id, customer`],
      ['an expression over its history', (x) => `SELECT amount + 0 AS a FROM ${x.history}`, historyRefusal],
      ['a predicate on its history', (x) => `SELECT count(*) FROM ${x.history} WHERE amount < 100`, historyRefusal],
    ];
    for (const [name, sql, message, code] of forms) {
      it(name, async () => {
        const c = await reader();
        try {
          await expectRefused(c, sql(f), message?.(f), code);
        } finally {
          await c.end();
        }
      });
    }

    it('cursors and prepared statements over such forms', async () => {
      const c = await reader();
      try {
        for (const sql of [`PREPARE ${f.rowsOf}_p AS SELECT * FROM ${f.rowsOf}()`, `PREPARE ${f.rowsOf}_q AS SELECT id FROM ${f.viewOfView}`]) {
          await expectRefused(c, sql);
        }
        for (const query of [`SELECT * FROM ${f.rowsOf}()`, `SELECT id FROM ${f.view}`, `SELECT count(*) FROM ${f.orders}`]) {
          // Outside a transaction block first: the embedded database's catalog is read between transactions.
          await expectRefused(c, query);
          await c.query('BEGIN');
          await expect(c.query(`DECLARE cur CURSOR FOR ${query}`), query).rejects.toMatchObject({ code: '42501', message: expect.stringContaining(f.hide) as unknown });
          await c.query('ROLLBACK');
        }
        // Refused before they ran: nothing was written or created.
        const admin = await t().pg();
        try {
          expect((await admin.query(`SELECT v FROM ${f.sink} ORDER BY v`)).rows).toEqual([{ v: 1 }, { v: 2 }]);
          expect((await admin.query('SELECT to_regclass($1) AS r', [`${f.orders}_copy`])).rows).toEqual([{ r: null }]);
        } finally {
          await admin.end();
        }
      } finally {
        await c.end();
      }
    });
  });

  it('serves the forms it filters filtered: plain reads, parameters, row_to_json, cursors, prepared statements, postgres.js', async () => {
    const c = await reader();
    const sql = t().sql({ user: f.reader, password: 'pw' });
    try {
      for (const r of await bothProtocols(c, `SELECT id FROM ${f.orders} ORDER BY id`)) expect((r as pg.QueryResult).rows).toEqual([{ id: 2 }, { id: 3 }]);
      expect((await c.query(`SELECT id FROM ${f.orders} WHERE id > $1 ORDER BY id`, [0])).rows).toEqual([{ id: 2 }, { id: 3 }]);
      for (const r of await bothProtocols(c, `SELECT row_to_json(o)::text AS j FROM ${f.orders} o ORDER BY id`)) {
        expect((r as pg.QueryResult).rows.map((row: { j: string }) => (JSON.parse(row.j) as { id: number }).id)).toEqual([2, 3]);
      }
      expect([...await sql.unsafe(`SELECT customer FROM ${f.orders} WHERE id <> $1 ORDER BY id`, [0], { prepare: true })]).toEqual([{ customer: 'bob' }, { customer: 'cid' }]);
      await c.query(`PREPARE ${f.orders}_p (int) AS SELECT id FROM ${f.orders} WHERE id > $1 ORDER BY id`);
      expect((await c.query(`EXECUTE ${f.orders}_p(0)`)).rows).toEqual([{ id: 2 }, { id: 3 }]);
      await c.query('BEGIN');
      await c.query(`DECLARE cur CURSOR FOR SELECT customer FROM ${f.orders} ORDER BY id`);
      expect((await c.query('FETCH ALL FROM cur')).rows).toEqual([{ customer: 'bob' }, { customer: 'cid' }]);
      await c.query('COMMIT');
      // Statements that read no table with a guarded transform run as they are.
      expect((await c.query(`SELECT v FROM ${f.sink} ORDER BY v`)).rows).toEqual([{ v: 1 }, { v: 2 }]);
    } finally {
      await sql.end();
      await c.end();
    }
  });

  it('serves reads as of a moment filtered, through the history time travel reads in the table\'s place', async () => {
    const c = await reader();
    try {
      await c.query(`SET provenance.as_of = '${f.moment}'`);
      const text = `SELECT id FROM ${f.orders} WHERE id > $1 ORDER BY id`;
      expect((await c.query(text.replace('$1', '0'))).rows).toEqual([{ id: 2 }, { id: 3 }]);
      expect((await c.query(text, [0])).rows).toEqual([{ id: 2 }, { id: 3 }]);
      expect((await c.query({ name: `${f.orders}_asof`, text, values: [0] })).rows).toEqual([{ id: 2 }, { id: 3 }]);
    } finally {
      await c.end();
    }
  });

  it('lets exempt roles call the function (its rows unfiltered), and under off every role (the documented limit)', async () => {
    const admin = await t().pg();
    try {
      expect((await admin.query(`SELECT count(*)::int AS n FROM ${f.rowsOf}()`)).rows).toEqual([{ n: 4 }]);
      await (await reader()).end();
      await admin.query("SELECT provenance.set_transform_guard($1, 'off')", [f.hide]);
      const served = await until(async () => {
        const c = await t().pg({ user: f.reader, password: 'pw' });
        try {
          return await c.query(`SELECT count(*)::int AS n FROM ${f.rowsOf}()`).then((r) => r.rows as unknown, (e: pg.DatabaseError) => e.message);
        } finally {
          await c.end();
        }
      }, (r) => Array.isArray(r));
      expect(served).toEqual([{ n: 4 }]);
      await admin.query("SELECT provenance.set_transform_guard($1, 'values', $2)", [f.hide, SHARED_EXEMPT]);
      await (await reader()).end();
    } finally {
      await admin.end();
    }
  });
});
