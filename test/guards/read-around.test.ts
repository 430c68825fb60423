/**
 * Guarded columns through real clients, on both upstreams and in both protocols: every way named
 * for reading a guarded column around its transform is refused under `values` (42501, naming the
 * column and the transform), and the legitimate forms are still served transformed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { eachUpstream, runPsql, uniqueName } from '../support/proxy-matrix.js';
import { bothProtocols, eachOwnRegistry, refusingSession, until } from '../support/guard-sessions.js';

const MASK = '(v) => v === null ? null : v.slice(0, 2) + "***"';
const MASKED = ['al***', 'bo***'];

interface Fixture {
  readonly table: string;
  readonly transform: string;
  readonly reader: string;
  readonly auditor: string;
  readonly sink: string;
  readonly view: string;
  readonly leak: string;
  readonly other: string;
}

eachUpstream('guarded columns', (t) => {
  let f: Fixture;
  let statements = 0;

  beforeAll(async () => {
    await t().proxy.registryLoaded;
    const admin = await t().pg();
    try {
      const fx = {
        table: uniqueName('guarded'), transform: uniqueName('mask'), reader: uniqueName('reader'), auditor: uniqueName('auditor'),
        sink: uniqueName('sink'), view: uniqueName('emails'), leak: uniqueName('leak'), other: uniqueName('other'),
      };
      await admin.query(`
        CREATE TABLE ${fx.table} (id int PRIMARY KEY, email text, name text);
        INSERT INTO ${fx.table} VALUES (1, 'alice@example.com', 'Alice'), (2, 'bob@example.com', 'Bob');
        CREATE TABLE ${fx.sink} (v text);
        CREATE VIEW ${fx.view} AS SELECT id, email FROM ${fx.table};
        CREATE FUNCTION ${fx.leak}(int) RETURNS text LANGUAGE sql STABLE AS $$ SELECT email FROM ${fx.table} WHERE id = $1 $$;
        CREATE SCHEMA ${fx.other};
        CREATE TABLE ${fx.other}.${fx.table} (id int, email text);
        INSERT INTO ${fx.other}.${fx.table} VALUES (1, 'unguarded@example.com');
        CREATE ROLE ${fx.reader} LOGIN PASSWORD 'pw';
        CREATE ROLE ${fx.auditor} LOGIN PASSWORD 'pw';
        GRANT SELECT, UPDATE ON ${fx.table} TO ${fx.reader}, ${fx.auditor};
        GRANT SELECT, INSERT ON ${fx.sink} TO ${fx.reader};
        GRANT SELECT ON ${fx.view} TO ${fx.reader};
        GRANT USAGE, CREATE ON SCHEMA ${fx.other} TO ${fx.reader};
        GRANT SELECT ON ${fx.other}.${fx.table} TO ${fx.reader};
        GRANT CREATE ON SCHEMA public TO ${fx.reader};`);
      await admin.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], $3)", [fx.transform, fx.table, MASK]);
      // Guards hold for every session of the database: the superuser and registry admins other
      // suites sharing the cluster log in as are exempt.
      await admin.query("SELECT provenance.set_transform_guard($1, 'values', ARRAY['postgres', 'provenance_admin', $2])", [fx.transform, fx.auditor]);
      f = fx;
    } finally {
      await admin.end();
    }
  });

  afterAll(async () => {
    const admin = await t().pg();
    await admin.query('SELECT provenance.drop_transform($1)', [f.transform]).catch(() => undefined);
    await admin.end();
  });

  /** A new session of a user, once the proxy applies the guard (from its registry's next read on). */
  async function reader(user = f.reader): Promise<pg.Client> {
    await until(async () => {
      const probe = await t().pg({ user: f.reader, password: 'pw' });
      try {
        return await probe.query(`SELECT email || '' AS e FROM ${f.table} WHERE id = 1`).then(() => 'served', (e: pg.DatabaseError) => e.message);
      } finally {
        await probe.end();
      }
    }, (r) => r.includes('guarded by transform'));
    return t().pg({ user, password: 'pw' });
  }

  async function expectRefused(c: pg.Client, sql: string, message: RegExp = /guarded by transform/, code = '42501'): Promise<void> {
    for (const [i, r] of (await bothProtocols(c, sql)).entries()) {
      const protocol = i === 0 ? 'simple' : 'extended';
      expect(r, `${protocol}: ${sql}`).toBeInstanceOf(Error);
      expect((r as pg.DatabaseError).code, `${protocol}: ${sql}: ${(r as Error).message}`).toBe(code);
      expect((r as Error).message, `${protocol}: ${sql}`).toMatch(message);
      if (message.source === 'guarded by transform') {
        expect((r as Error).message).toContain(`${f.table}.email`);
        expect((r as Error).message).toContain(f.transform);
      }
    }
    // The session goes on.
    expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  }

  async function expectServed(c: pg.Client, sql: string, values: unknown[] = [], column = 'email'): Promise<void> {
    const simple = values.length === 0 ? await c.query(sql) : null;
    const extended = await c.query({ name: `s${statements++}`, text: sql, values });
    for (const r of [simple, extended]) {
      if (r === null) continue;
      const got = r.rows.map((row: Record<string, unknown>) => row[column]);
      expect(got.length, sql).toBeGreaterThan(0);
      for (const v of got) expect(MASKED, sql).toContain(v);
    }
  }

  describe('refused under values, in both protocols', () => {
    // COPY … TO STDOUT of a table with transforms is refused whatever the guard (0A000, see
    // transforms/copy-out.ts); COPY to a file meets the guard.
    const copyOut = /COPY TO STDOUT of .* has transforms/;
    const forms: [string, (fx: Fixture) => string, RegExp?, string?][] = [
      ['an expression', (x) => `SELECT email || '' FROM ${x.table}`],
      ['a function argument', (x) => `SELECT lower(email) FROM ${x.table}`],
      ['a cast', (x) => `SELECT email::varchar(200) FROM ${x.table}`],
      ['an aggregate', (x) => `SELECT max(email) FROM ${x.table}`],
      ['a whole-row reference', (x) => `SELECT c FROM ${x.table} c`],
      ['row_to_json of the row', (x) => `SELECT row_to_json(c) FROM ${x.table} c`],
      ['a UNION arm', (x) => `SELECT email FROM ${x.table} UNION SELECT 'x'`],
      ['a scalar subquery', (x) => `SELECT (SELECT email FROM ${x.table} WHERE id = 1) AS email`],
      ['a RETURNING expression', (x) => `UPDATE ${x.table} SET name = name WHERE id = 1 RETURNING upper(email)`],
      ['CREATE TABLE AS', (x) => `CREATE TABLE ${x.table}_copy AS SELECT email FROM ${x.table}`],
      ['SELECT INTO', (x) => `SELECT email INTO ${x.table}_into FROM ${x.table}`],
      ['INSERT … SELECT', (x) => `INSERT INTO ${x.sink} SELECT email FROM ${x.table}`],
      ['UPDATE … SET from it', (x) => `UPDATE ${x.table} SET name = email WHERE id = 1`],
      ['COPY of a query to STDOUT', (x) => `COPY (SELECT email FROM ${x.table}) TO STDOUT`, copyOut, '0A000'],
      ['COPY of the table to STDOUT', (x) => `COPY ${x.table} (email) TO STDOUT`, copyOut, '0A000'],
      ['COPY of a query to a file', (x) => `COPY (SELECT email FROM ${x.table}) TO '/tmp/${x.table}'`],
      ['COPY of the table to a file', (x) => `COPY ${x.table} TO '/tmp/${x.table}'`],
      ['a view\'s column', (x) => `SELECT email FROM ${x.view}`],
      ['a function that may read the table', (x) => `SELECT ${x.leak}(1)`, /cannot tell whether this statement reads around the guards on .*may read tables/],
      ['query_to_xml', (x) => `SELECT query_to_xml('SELECT email FROM ${x.table}', true, false, '')`, /cannot tell .*query_to_xml may read tables/],
      ['a function in WHERE', (x) => `SELECT id FROM ${x.table} WHERE lower(email) = 'alice@example.com'`],
      ['a cast in WHERE (its error would show the value)', (x) => `SELECT id FROM ${x.table} WHERE email::int = 1`],
      ['a CTE fed by an expression', (x) => `WITH e AS (SELECT upper(email) AS email FROM ${x.table}) SELECT email FROM e`],
      ['a subquery in FROM fed by an expression', (x) => `SELECT s.e FROM (SELECT email || '!' AS e FROM ${x.table}) s`],
      ['a quoted, schema-qualified name', (x) => `SELECT "email" || '' FROM public."${x.table}"`],
      ['a U& identifier', (x) => `SELECT U&"\\0065mail" || '' FROM ${x.table}`],
      ['a comment between tokens', (x) => `SELECT email/* hidden */|| '' FROM ${x.table}`],
      ['DO', () => 'DO $$ BEGIN PERFORM 1; END $$', /cannot tell .*DO runs code/],
    ];
    for (const [name, sql, message, code] of forms) {
      it(name, async () => {
        const c = await reader();
        try {
          await expectRefused(c, sql(f), message, code);
        } finally {
          await c.end();
        }
      });
    }
  });

  it('serves the legitimate forms transformed: plain, aliases, joins, CTEs, subqueries in FROM, predicates, prepared statements', async () => {
    const c = await reader();
    try {
      await expectServed(c, `SELECT id, email FROM ${f.table} ORDER BY id`);
      await expectServed(c, `SELECT c.email AS mail FROM ${f.table} AS c`, [], 'mail');
      await expectServed(c, `SELECT a.email FROM ${f.table} a JOIN ${f.table} b ON a.id = b.id`);
      await expectServed(c, `WITH x AS (SELECT id, email FROM ${f.table}) SELECT email FROM x`);
      await expectServed(c, `SELECT s.email FROM (SELECT email FROM ${f.table}) s`);
      await expectServed(c, `SELECT email FROM ${f.table} WHERE email = $1`, ['alice@example.com']);
      await expectServed(c, `SELECT email FROM ${f.table} WHERE email LIKE '%example%' ORDER BY email`);
      await expectServed(c, `SELECT email FROM ${f.table} GROUP BY email`);
      await expectServed(c, `UPDATE ${f.table} SET name = name WHERE id = 1 RETURNING email`);
      // A CTE of the table's name shadows it: nothing guarded is read.
      expect((await c.query(`WITH ${f.table} AS (SELECT 'x' AS email) SELECT email || '' AS e FROM ${f.table}`)).rows).toEqual([{ e: 'x' }]);
    } finally {
      await c.end();
    }
  });

  it('answers psql as the server would: a refusal in its words, the session going on', async () => {
    await (await reader()).end();
    const out = await runPsql(['-X', '-h', '127.0.0.1', '-p', String(t().port), '-U', f.reader, '-d', t().database, '-At'], 'pw', `SELECT lower(email) FROM ${f.table};\nSELECT email FROM ${f.table} ORDER BY id;\n`);
    expect(out.stderr).toMatch(/ERROR: {2}column public\.\S+\.email is guarded by transform/);
    expect(out.stdout.trim().split('\n')).toEqual(MASKED);
  });

  it('serves cursors transformed, and refuses one declared over an expression', async () => {
    const c = await reader();
    try {
      await c.query('BEGIN');
      await c.query(`DECLARE cur CURSOR FOR SELECT email FROM ${f.table} ORDER BY id`);
      expect((await c.query('FETCH ALL FROM cur')).rows.map((r: { email: string }) => r.email)).toEqual(MASKED);
      await expect(c.query(`DECLARE cur2 CURSOR FOR SELECT email || '' FROM ${f.table}`)).rejects.toMatchObject({ code: '42501' });
      await c.query('ROLLBACK');
    } finally {
      await c.end();
    }
  });

  it('resolves names as the server does: search_path set and reset, set_config, temporary tables', async () => {
    const c = await reader();
    try {
      await c.query(`SET search_path = ${f.other}, public`);
      // Now the name means the unguarded table of the other schema.
      expect((await c.query(`SELECT email || '' AS e FROM ${f.table}`)).rows).toEqual([{ e: 'unguarded@example.com' }]);
      await expectRefused(c, `SELECT email || '' FROM public.${f.table}`);
      await c.query('RESET search_path');
      await expectRefused(c, `SELECT email || '' FROM ${f.table}`);
      await c.query(`SELECT set_config('search_path', '${f.other}, public', false)`);
      // Until it is set again, the proxy cannot tell what any name means.
      for (const sql of [`SELECT email FROM ${f.table}`, 'SELECT 1']) {
        await expect(c.query(sql)).rejects.toMatchObject({ code: '42501', message: expect.stringMatching(/does not know this session's search_path/) as unknown });
      }
      await c.query('SET search_path = "$user", public');
      await expectServed(c, `SELECT email FROM ${f.table}`);
      // A temporary table that may shadow the guarded one: the proxy cannot tell which is read.
      await c.query(`CREATE TEMP TABLE ${f.table} (id int, email text)`);
      await expectRefused(c, `SELECT email || '' FROM ${f.table}`, /temporary table/);
      // The embedded database shares temporary tables between sessions.
      await c.query(`DROP TABLE pg_temp.${f.table}`);
    } finally {
      await c.end();
    }
  });

  it('lets members of an exempt role through; the transform still runs for them', async () => {
    const c = await reader(f.auditor);
    try {
      expect((await c.query(`SELECT upper(email) AS e FROM ${f.table} ORDER BY id`)).rows).toEqual([{ e: 'ALICE@EXAMPLE.COM' }, { e: 'BOB@EXAMPLE.COM' }]);
      await expectServed(c, `SELECT email FROM ${f.table}`);
    } finally {
      await c.end();
    }
  });

  it('refuses predicates under strict, and serves plain reads', async () => {
    const admin = await t().pg();
    const table = uniqueName('strict');
    const name = uniqueName('mask');
    try {
      await admin.query(`CREATE TABLE ${table} (id int, email text); INSERT INTO ${table} VALUES (1, 'alice@example.com'), (2, 'bob@example.com')`);
      await admin.query(`GRANT SELECT ON ${table} TO ${f.reader}`);
      await admin.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], $3)", [name, table, MASK]);
      await admin.query("SELECT provenance.set_transform_guard($1, 'strict', ARRAY['postgres', 'provenance_admin'])", [name]);
      const c = await reader();
      try {
        await until(async () => c.query(`SELECT id FROM ${table} WHERE email = 'x'`).then(() => 'served', (e: pg.DatabaseError) => e.code), (r) => r === '42501');
        for (const sql of [`SELECT id FROM ${table} WHERE email = $1`, `SELECT id FROM ${table} ORDER BY email`, `SELECT count(*) FROM ${table} GROUP BY email`,
          `SELECT a.id FROM ${table} a JOIN ${table} b ON a.email = b.email`]) {
          const r = await c.query({ name: `s${statements++}`, text: sql, values: sql.includes('$1') ? ['x'] : [] }).catch((e: pg.DatabaseError) => e);
          expect(r, sql).toMatchObject({ code: '42501' });
          expect((r as Error).message).toMatch(/guard strict.*may not be used in/);
        }
        expect((await c.query(`SELECT email FROM ${table} ORDER BY id`)).rows).toEqual([{ email: 'al***' }, { email: 'bo***' }]);
      } finally {
        await c.end();
      }
    } finally {
      await admin.query('SELECT provenance.drop_transform($1)', [name]).catch(() => undefined);
      await admin.end();
    }
  });
});

eachUpstream('guarded columns: what off leaves open, and the analysis cache', (t) => {
  it('under off, expressions read around the transform (as the README says); values closes that', async () => {
    await t().proxy.registryLoaded;
    const admin = await t().pg();
    const table = uniqueName('offguard');
    const name = uniqueName('mask');
    const role = uniqueName('reader');
    try {
      await admin.query(`CREATE TABLE ${table} (id int, email text); INSERT INTO ${table} VALUES (1, 'alice@example.com')`);
      await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'; GRANT SELECT ON ${table} TO ${role}`);
      await admin.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], $3)", [name, table, MASK]);
      const sql = `SELECT email, email || '' AS around FROM ${table}`;
      await until(async () => (await admin.query(`SELECT email FROM ${table}`)).rows, (r) => r[0]?.email === 'al***');
      const open = await t().pg({ user: role, password: 'pw' });
      expect((await open.query(sql)).rows).toEqual([{ email: 'al***', around: 'alice@example.com' }]);
      await open.end();
      await admin.query("SELECT provenance.set_transform_guard($1, 'values', ARRAY['postgres', 'provenance_admin'])", [name]);
      await (await refusingSession(t(), role, sql)).end();
    } finally {
      await admin.query('SELECT provenance.drop_transform($1)', [name]).catch(() => undefined);
      await admin.end();
    }
  });

  it('reads a prepared statement once, checks it at its Parse, and forgets the catalog after DDL', async () => {
    await t().proxy.registryLoaded;
    const admin = await t().pg();
    const table = uniqueName('cached');
    const name = uniqueName('mask');
    const role = uniqueName('reader');
    const schema = uniqueName('shadow');
    try {
      await admin.query(`
        CREATE TABLE ${table} (id int, email text); INSERT INTO ${table} VALUES (1, 'alice@example.com');
        CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.${table} (id int, email text); INSERT INTO ${schema}.${table} VALUES (1, 'free@example.com');
        CREATE ROLE ${role} LOGIN PASSWORD 'pw';
        GRANT SELECT ON ${table}, ${schema}.${table} TO ${role}; GRANT USAGE ON SCHEMA ${schema} TO ${role};`);
      await admin.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], $3)", [name, table, MASK]);
      await admin.query("SELECT provenance.set_transform_guard($1, 'values', ARRAY['postgres', 'provenance_admin'])", [name]);
      const reader = await refusingSession(t(), role, `SELECT email || '' FROM ${table}`);
      try {
        const { SqlAnalyser } = await import('../../plugins/sql/analyser.js');
        const analyser = await SqlAnalyser.load();
        const text = `SELECT email FROM ${table} WHERE id = $1`;
        const before = analyser.parses;
        for (let i = 0; i < 5; i++) {
          const r = await reader.query({ name: 'lookup', text, values: [1] });
          expect(r.rows).toEqual([{ email: 'al***' }]);
        }
        expect(analyser.parses - before).toBeLessThanOrEqual(1);
        // Refused at the Parse: the statement never reaches the server, and the session goes on.
        await expect(reader.query({ name: 'around', text: `SELECT email || $1 FROM ${table}`, values: [''] })).rejects.toMatchObject({ code: '42501' });
        // postgres.js pipelines Parse, Bind, Describe, Execute and Sync.
        const sql = t().sql({ user: role, password: 'pw' });
        try {
          await expect(sql.unsafe(`SELECT upper(email) AS e FROM ${table} WHERE id = $1`, [1])).rejects.toMatchObject({ code: '42501' });
          expect(await sql.unsafe(`SELECT email FROM ${table} WHERE email = $1`, ['alice@example.com'])).toEqual([{ email: 'al***' }]);
        } finally {
          await sql.end();
        }
        // The other schema's table first on the path: an expression of its column is fine.
        await reader.query(`SET search_path = ${schema}, public`);
        expect((await reader.query(`SELECT email || '' AS e FROM ${table}`)).rows).toEqual([{ e: 'free@example.com' }]);
        // Dropped: the name now means the guarded table, and the proxy knows it.
        await admin.query(`DROP TABLE ${schema}.${table}`);
        await expect(reader.query(`SELECT email || '' AS e FROM ${table}`)).rejects.toMatchObject({ code: '42501' });
      } finally {
        await reader.end();
      }
    } finally {
      await admin.query('SELECT provenance.drop_transform($1)', [name]).catch(() => undefined);
      await admin.end();
    }
  });
});

// Its sessions must start while no guard exists: a registry of its own.
eachOwnRegistry('guarded columns: sessions open before the guard', (t) => {
  it('refuses what they prepared or declared unseen, and their statements until they set the search_path', async () => {
    await t().proxy.registryLoaded;
    const admin = await t().pg();
    const table = uniqueName('before');
    const name = uniqueName('mask');
    const role = uniqueName('reader');
    const early = await (async () => {
      await admin.query(`CREATE TABLE ${table} (id int, email text); INSERT INTO ${table} VALUES (1, 'alice@example.com')`);
      await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'; GRANT SELECT ON ${table} TO ${role}`);
      await admin.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], $3)", [name, table, MASK]);
      return t().pg({ user: role, password: 'pw' });
    })();
    const around = { name: 'around', text: `SELECT email || '' AS e FROM ${table}` };
    try {
      // Before the guard: prepared (protocol and SQL) and run, the expression in clear.
      expect((await early.query(around)).rows).toEqual([{ e: 'alice@example.com' }]);
      await early.query(`PREPARE sqlaround AS SELECT email || '' AS e FROM ${table}`);
      await admin.query("SELECT provenance.set_transform_guard($1, 'values', ARRAY['postgres', 'provenance_admin'])", [name]);
      // Its earlier SETs were not seen: nothing but SET and the like runs until it sets the path.
      await until(async () => early.query('SELECT 1').then(() => 'served', (e: pg.DatabaseError) => e.message), (r) => r.includes('search_path'));
      await early.query('SET search_path = public');
      expect((await early.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      // Only a Bind and an Execute go out for a statement the driver prepared already.
      await expect(early.query(around)).rejects.toMatchObject({ code: '42501', message: expect.stringContaining('was prepared before') as unknown });
      await expect(early.query('EXECUTE sqlaround')).rejects.toMatchObject({ code: '42501', message: expect.stringContaining('was prepared before') as unknown });
      expect((await early.query(`SELECT email FROM ${table}`)).rows).toEqual([{ email: 'al***' }]);
    } finally {
      await early.end();
      await admin.query('SELECT provenance.drop_transform($1)', [name]).catch(() => undefined);
      await admin.end();
    }
  });

  it('checks statements prepared under one guard again when another column is guarded', async () => {
    await t().proxy.registryLoaded;
    const admin = await t().pg();
    const table = uniqueName('later');
    const first = uniqueName('mask');
    const second = uniqueName('mask');
    const role = uniqueName('reader');
    try {
      await admin.query(`CREATE TABLE ${table} (id int, email text, phone text); INSERT INTO ${table} VALUES (1, 'alice@example.com', '0601')`);
      await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'; GRANT SELECT ON ${table} TO ${role}`);
      await admin.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], $3)", [first, table, MASK]);
      await admin.query("SELECT provenance.register_transform($1, $2, ARRAY['phone'], $3)", [second, table, MASK]);
      await admin.query("SELECT provenance.set_transform_guard($1, 'values', ARRAY['postgres', 'provenance_admin'])", [first]);
      const reader = await refusingSession(t(), role, `SELECT email || '' FROM ${table}`);
      try {
        const phone = { name: 'phone', text: `SELECT phone || '' AS p FROM ${table}` };
        expect((await reader.query(phone)).rows).toEqual([{ p: '0601' }]);
        await admin.query("SELECT provenance.set_transform_guard($1, 'values', ARRAY['postgres', 'provenance_admin'])", [second]);
        await until(async () => reader.query(phone).then(() => 'served', (e: pg.DatabaseError) => e.code), (r) => r === '42501');
      } finally {
        await reader.end();
      }
    } finally {
      for (const n of [first, second]) await admin.query('SELECT provenance.drop_transform($1)', [n]).catch(() => undefined);
      await admin.end();
    }
  });
});
