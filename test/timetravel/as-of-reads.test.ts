/**
 * Reads in a session that sets `provenance.as_of`: every tracked table a statement reads comes
 * from its history as of the moment (joins, subqueries, CTEs, aliases, qualified or not, both
 * protocols, with parameters), through pg, postgres.js and psql. Expected rows are the test's own
 * record of what it wrote and when (the database's clock after each committed write).
 */
import { expect, it } from 'vitest';
import type pg from 'pg';
import { eachUpstream, uniqueName } from '../support/proxy-matrix.js';
import { moment, refusal } from './as-of-support.js';

eachUpstream('as-of reads', (t) => {
  async function client(): Promise<pg.Client> {
    const c = await t().pg();
    await t().proxy.stateReady;
    return c;
  }

  /** Two tracked tables with a known past: returns the moments and what each table held then. */
  async function past(c: pg.Client): Promise<{ a: string; b: string; m: string[]; rows: { a: unknown[][]; b: unknown[][] }[] }> {
    const a = uniqueName('acct');
    const b = uniqueName('note');
    await c.query(`CREATE TABLE ${a} (id int PRIMARY KEY, owner text, balance int); CREATE TABLE ${b} (acct int, body text)`);
    await c.query(`INSERT INTO ${a} VALUES (1, 'ann', 10), (2, 'bob', 20); INSERT INTO ${b} VALUES (1, 'first')`);
    await c.query('SELECT provenance.track($1), provenance.track($2)', [a, b]);
    const m: string[] = [await moment(c)];
    const rows = [{ a: [[1, 'ann', 10], [2, 'bob', 20]], b: [[1, 'first']] }];
    await c.query(`UPDATE ${a} SET balance = 15 WHERE id = 1; INSERT INTO ${b} VALUES (2, 'second')`);
    m.push(await moment(c));
    rows.push({ a: [[1, 'ann', 15], [2, 'bob', 20]], b: [[1, 'first'], [2, 'second']] });
    await c.query(`DELETE FROM ${a} WHERE id = 2; UPDATE ${b} SET body = 'changed' WHERE acct = 1`);
    m.push(await moment(c));
    rows.push({ a: [[1, 'ann', 15]], b: [[1, 'changed'], [2, 'second']] });
    return { a, b, m, rows };
  }

  it('reads tracked tables as of each moment, in both protocols, and the present after RESET', async () => {
    const c = await client();
    try {
      const p = await past(c);
      for (const [i, at] of p.m.entries()) {
        await c.query(`SET provenance.as_of = '${at}'`);
        const simple = await c.query({ text: `SELECT id, owner, balance FROM ${p.a} ORDER BY id`, rowMode: 'array' });
        expect(simple.rows, at).toEqual(p.rows[i]!.a);
        const extended = await c.query({ text: `SELECT x.id, x.owner, x.balance FROM public.${p.a} AS x WHERE x.id >= $1 ORDER BY 1`, values: [0], rowMode: 'array' });
        expect(extended.rows, at).toEqual(p.rows[i]!.a);
        const joined = await c.query({
          text: `WITH n AS (SELECT acct, body FROM ${p.b}) SELECT a.id, n.body FROM ${p.a} a JOIN n ON n.acct = a.id
                 WHERE a.id IN (SELECT acct FROM ${p.b}) ORDER BY 1, 2`,
          rowMode: 'array',
        });
        const expected = p.rows[i]!.a.flatMap((r) => p.rows[i]!.b.filter((n) => n[0] === r[0]).map((n) => [r[0], n[1]]));
        expect(joined.rows, at).toEqual(expected);
        const counted = await c.query({ text: `SELECT count(*)::int FROM ${p.b}`, rowMode: 'array' });
        expect(counted.rows, at).toEqual([[p.rows[i]!.b.length]]);
      }
      await c.query('RESET provenance.as_of');
      const now = await c.query({ text: `SELECT id, owner, balance FROM ${p.a} ORDER BY id`, rowMode: 'array' });
      expect(now.rows).toEqual([[1, 'ann', 15]]);
    } finally {
      await c.end();
    }
  });

  it('refuses writes, locks, sequences and DDL with 25006; lets transaction control, SET, SHOW and reads run', async () => {
    const c = await client();
    try {
      const p = await past(c);
      await c.query(`CREATE SEQUENCE ${p.a}_seq; CREATE PROCEDURE ${p.a}_proc() LANGUAGE sql AS 'SELECT 1'`);
      await c.query(`SET provenance.as_of = '${p.m[1]}'`);
      const writes = [
        `INSERT INTO ${p.a} VALUES (9, 'x', 0)`, `UPDATE ${p.a} SET balance = 0`, `DELETE FROM ${p.a}`,
        `MERGE INTO ${p.a} t USING (SELECT 1 AS id) s ON t.id = s.id WHEN MATCHED THEN DELETE`,
        `COPY ${p.a} FROM STDIN`, `CREATE TABLE ${p.a}_new (x int)`, `ALTER TABLE ${p.a} ADD COLUMN y int`, `DROP TABLE ${p.b}`,
        `TRUNCATE ${p.b}`, `SELECT * FROM ${p.a} FOR UPDATE`, `SELECT id FROM ${p.a} FOR SHARE`, `SELECT nextval('${p.a}_seq')`,
        `SELECT setval('${p.a}_seq', 5)`, `CALL ${p.a}_proc()`, `WITH d AS (DELETE FROM ${p.b} RETURNING *) SELECT * FROM d`,
        `SELECT * INTO ${p.a}_copy FROM ${p.a}`, 'DO $$ BEGIN END $$', `GRANT SELECT ON ${p.a} TO PUBLIC`,
      ];
      const code = (q: Promise<unknown>): Promise<string> => q.then(() => 'none', (e: { code?: string }) => e.code ?? 'none');
      for (const [i, w] of writes.entries()) {
        expect(await code(c.query(w)), w).toBe('25006');
        // The extended protocol: refused at its Parse.
        if (!w.startsWith('COPY')) expect(await code(c.query({ text: w, values: [], name: `w${i}` })), w).toBe('25006');
      }
      await c.query('BEGIN');
      await c.query('SAVEPOINT s');
      expect((await c.query({ text: `SELECT id FROM ${p.a} ORDER BY id`, rowMode: 'array' })).rows).toEqual(p.rows[1]!.a.map((r) => [r[0]]));
      await c.query('SET LOCAL work_mem = \'8MB\'');
      await c.query('SHOW work_mem');
      await c.query('RELEASE SAVEPOINT s');
      await c.query('COMMIT');
      await c.query('RESET provenance.as_of');
      // Writes are back once the session reads the present.
      await c.query(`INSERT INTO ${p.b} VALUES (3, 'later')`);
      expect((await c.query(`SELECT count(*)::int AS n FROM ${p.b}`)).rows[0]!['n']).toBe(3);
    } finally {
      await c.end();
    }
  });

  it('expands views; refuses untracked tables (55000), table-reading functions (0A000), moments outside the history (22023)', async () => {
    const c = await client();
    try {
      const p = await past(c);
      const plain = uniqueName('plain');
      await c.query(`CREATE TABLE ${plain} (x int); CREATE VIEW ${plain}_v AS SELECT * FROM ${p.a}`);
      await c.query(`CREATE FUNCTION ${plain}_f() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM ${p.a}'`);
      const since = (await c.query<{ s: string }>('SELECT since::text AS s FROM provenance.tracked WHERE target = $1', [p.a])).rows[0]!.s;
      await c.query(`SET provenance.as_of = '${p.m[0]}'`);
      const untracked = await refusal(c.query(`SELECT * FROM ${p.a} JOIN ${plain} ON true`));
      expect(untracked.code).toBe('55000');
      expect(untracked.message).toContain(plain);
      expect(untracked.hint).toContain('provenance.track');
      expect((await refusal(c.query({ text: `SELECT * FROM public.${plain} WHERE x = $1`, values: [1] }))).code).toBe('55000');
      // A view is expanded into its query, read as of the moment in turn.
      expect((await c.query({ text: `SELECT id, owner FROM ${plain}_v ORDER BY id`, rowMode: 'array' })).rows).toEqual(p.rows[0]!.a.map((r) => [r[0], r[1]]));
      await c.query(`RESET provenance.as_of`);
      await c.query(`CREATE VIEW ${plain}_vv (who) AS SELECT owner FROM ${plain}_v WHERE balance > 12; CREATE VIEW ${plain}_vp AS SELECT * FROM ${plain}`);
      await c.query(`SET provenance.as_of = '${p.m[1]}'`);
      expect((await c.query({ text: `SELECT who FROM ${plain}_vv ORDER BY 1`, rowMode: 'array' })).rows).toEqual(p.rows[1]!.a.filter((r) => (r[2] as number) > 12).map((r) => [r[1]]));
      expect((await refusal(c.query(`SELECT * FROM ${plain}_vp`))).code).toBe('55000');
      await c.query(`SET provenance.as_of = '${p.m[0]}'`);
      const fn = await refusal(c.query(`SELECT ${plain}_f()`));
      expect(fn.code).toBe('0A000');
      expect(fn.message).toContain(`${plain}_f`);
      expect((await refusal(c.query(`SELECT * FROM ${p.a} WHERE id < (SELECT ${plain}_f())`))).code).toBe('0A000');
      // System catalogs read as now, also beside a tracked table.
      const cat = await c.query({ text: `SELECT c.relname FROM pg_catalog.pg_class c, ${p.a} a WHERE c.relname = $1 AND a.id = 1`, values: [plain], rowMode: 'array' });
      expect(cat.rows).toEqual([[plain]]);
      expect((await c.query('SELECT count(*) > 0 AS ok FROM pg_class')).rows[0]!['ok']).toBe(true);

      const before = (await c.query<{ m: string }>("SELECT ($1::timestamptz - interval '1 hour')::text AS m", [since])).rows[0]!.m;
      await c.query(`SET provenance.as_of = '${before}'`);
      const early = await refusal(c.query(`SELECT * FROM ${p.a}`));
      expect(early.code).toBe('22023');
      expect(early.message).toContain(p.a);
      const earliest = (await c.query<{ m: string }>("SELECT to_char($1::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS m", [since])).rows[0]!.m;
      expect(early.message).toContain(earliest);
      await c.query("SET provenance.as_of = 'tomorrow'");
      const future = await refusal(c.query({ text: `SELECT * FROM ${p.a} WHERE id = $1`, values: [1] }));
      expect(future.code).toBe('22023');
      expect(future.message).toContain('future');
      expect(future.message).toContain(p.a);
    } finally {
      await c.end();
    }
  });

  it('rewrites every form of reference: subqueries, a CTE named as its table, column aliases, ONLY, TABLE, several statements, EXPLAIN, cursors', async () => {
    const c = await client();
    try {
      const p = await past(c);
      const at = p.m[0]!;
      const then = p.rows[0]!;
      await c.query(`SET provenance.as_of = '${at}'`);
      const q = async (text: string): Promise<unknown[][]> => (await c.query({ text, rowMode: 'array' })).rows as unknown[][];
      expect(await q(`SELECT s.owner FROM (SELECT * FROM ${p.a} WHERE balance > 5) s ORDER BY 1`)).toEqual(then.a.map((r) => [r[1]]));
      // The CTE's own body still names the table; the query names the CTE.
      expect(await q(`WITH ${p.a} AS (SELECT id, balance * 2 AS b FROM ${p.a}) SELECT b FROM ${p.a} ORDER BY 1`))
        .toEqual(then.a.map((r) => [(r[2] as number) * 2]));
      expect(await q(`SELECT x.k, x.o FROM ONLY ${p.a} AS x(k, o) ORDER BY 1`)).toEqual(then.a.map((r) => [r[0], r[1]]));
      expect(await q(`TABLE ${p.a} ORDER BY id`)).toEqual(then.a);
      expect(await q(`SELECT count(*)::int FROM (TABLE ONLY public.${p.b}) n`)).toEqual([[then.b.length]]);
      expect(await q(`SELECT (SELECT count(*) FROM ${p.b} n WHERE n.acct = a.id)::int FROM "public".${p.a} a ORDER BY a.id`))
        .toEqual(then.a.map((r) => [then.b.filter((n) => n[0] === r[0]).length]));
      const several = await c.query(`SELECT count(*)::int AS n FROM ${p.a}; SELECT count(*)::int AS n FROM ${p.b}`) as unknown as pg.QueryResult[];
      expect(several.map((r) => r.rows[0]!['n'])).toEqual([then.a.length, then.b.length]);
      const plan = await q(`EXPLAIN SELECT * FROM ${p.a}`);
      expect(plan.flat().join('\n')).toMatch(/history_\d+/);
      await c.query('BEGIN');
      await c.query(`DECLARE cur CURSOR FOR SELECT id FROM ${p.a} ORDER BY id`);
      expect(await q('FETCH ALL FROM cur')).toEqual(then.a.map((r) => [r[0]]));
      await c.query('COMMIT');
      // A cursor declared to read the present is not fetched from as of a moment.
      await c.query('RESET provenance.as_of');
      await c.query('BEGIN');
      await c.query(`DECLARE now_cur CURSOR FOR SELECT id FROM ${p.a}`);
      await c.query(`SET provenance.as_of = '${at}'`);
      expect((await refusal(c.query('FETCH ALL FROM now_cur'))).code).toBe('0A000');
      await c.query('ROLLBACK');
    } finally {
      await c.end();
    }
  });

  it('never serves a table made after the moment was set, also inside a transaction (embedded: looked up beforehand)', async () => {
    const c = await client();
    const other = await client();
    try {
      const p = await past(c);
      await c.query(`SET provenance.as_of = '${p.m[0]}'`);
      const later = uniqueName('later');
      await other.query(`CREATE TABLE ${later} (x int); INSERT INTO ${later} VALUES (1)`);
      await c.query('BEGIN');
      // Tracked tables read then are known; a name never looked up cannot be while the transaction holds the embedded database.
      expect((await c.query(`SELECT count(*)::int AS n FROM ${p.a}`)).rows[0]!['n']).toBe(p.rows[0]!.a.length);
      const refused = await refusal(c.query(`SELECT * FROM ${later}`));
      expect(refused.code).toBe(t().kind === 'embedded' ? '0A000' : '55000');
      await c.query('ROLLBACK');
      expect((await refusal(c.query(`SELECT * FROM ${later}`))).code).toBe('55000');
    } finally {
      await other.end();
      await c.end();
    }
  });
});
