/**
 * How history capture finds the open versions a write ends: by the table's primary key where it
 * has a usable one, by the row hash otherwise, switching when the key changes, with a capture
 * function of the table's own. Expected answers are the test's own record of what it wrote.
 */
import { expect, it } from 'vitest';
import pg from 'pg';
import { eachUpstream, uniqueName } from '../support/proxy-matrix.js';
import { moment } from '../support/history.js';

async function asOf(c: pg.Client, table: string, at: string): Promise<unknown[][]> {
  const r = await c.query({ text: `SELECT id, v FROM provenance.rows_as_of(NULL::${table}, $1) ORDER BY 1, 2`, values: [at], rowMode: 'array' });
  return r.rows as unknown[][];
}

/** Runs writes and remembers, after each, the moment and the rows the table then holds. */
class Recorder {
  readonly seen: { at: string; rows: unknown[][] }[] = [];

  constructor(private readonly c: pg.Client, private readonly table: string) {}

  async step(sql: string): Promise<void> {
    await this.c.query(sql);
    const rows = (await this.c.query({ text: `SELECT id, v FROM ${this.table} ORDER BY 1, 2`, rowMode: 'array' })).rows as unknown[][];
    this.seen.push({ at: await moment(this.c), rows });
  }

  async check(): Promise<void> {
    for (const s of this.seen) expect(await asOf(this.c, this.table, s.at), s.at).toEqual(s.rows);
  }
}

async function captureOf(c: pg.Client, table: string): Promise<{ key: number[]; functions: string[] }> {
  const key = await c.query<{ k: number[] }>(
    'SELECT capture_key::int[] AS k FROM provenance.history_table WHERE target_oid = $1::regclass', [table]);
  const fns = await c.query<{ f: string }>(
    'SELECT DISTINCT tgfoid::regprocedure::text AS f FROM pg_catalog.pg_trigger WHERE tgrelid = $1::regclass', [table]);
  return { key: key.rows[0]!.k, functions: fns.rows.map((r) => r.f) };
}

eachUpstream('history capture by key', (t) => {
  async function admin(): Promise<pg.Client> {
    const c = await t().pg();
    await t().proxy.stateReady;
    return c;
  }

  it('finds the open versions of a table with a primary key by that key, with a capture function of its own', async () => {
    const c = await admin();
    const table = uniqueName('keyed');
    try {
      await c.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v text); INSERT INTO ${table} VALUES (1, 'a'), (2, 'b'), (3, 'c')`);
      await c.query('SELECT provenance.track($1)', [table]);
      const oid = (await c.query<{ o: string }>('SELECT $1::regclass::oid::text AS o', [table])).rows[0]!.o;
      expect(await captureOf(c, table)).toEqual({ key: [1], functions: [`provenance.history_${oid}_capture()`] });
      const r = new Recorder(c, table);
      await r.step(`UPDATE ${table} SET v = 'a2' WHERE id = 1`);
      // Keys changed: each old row ends its own version.
      await r.step(`UPDATE ${table} SET id = id + 10 WHERE id IN (1, 2)`);
      await r.step(`UPDATE ${table} SET id = id - 10 WHERE id > 10`);
      await r.step(`DELETE FROM ${table} WHERE id = 3`);
      // Deleted and written again under its key in one statement.
      await r.step(`WITH d AS (DELETE FROM ${table} WHERE id = 2 RETURNING id) INSERT INTO ${table} SELECT id, 'again' FROM d`);
      await r.step(`INSERT INTO ${table} VALUES (3, 'c2'), (4, NULL) ON CONFLICT (id) DO UPDATE SET v = 'never'`);
      await r.step(`INSERT INTO ${table} VALUES (4, 'd'), (5, 'e') ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v`);
      await r.step(`BEGIN; UPDATE ${table} SET v = 'tx1' WHERE id = 5; UPDATE ${table} SET v = 'tx2' WHERE id = 5; COMMIT`);
      await r.step(`UPDATE ${table} SET v = v WHERE id > 0`);
      await r.step(`TRUNCATE ${table}`);
      await r.step(`INSERT INTO ${table} SELECT g, 'bulk' FROM pg_catalog.generate_series(1, 500) g`);
      await r.step(`UPDATE ${table} SET v = 'bulk2' WHERE id % 2 = 0`);
      await r.check();
      // Key-found versions carry no row hash; each write added exactly the versions it wrote.
      const hashes = await c.query<{ n: number }>(`SELECT count(provenance_row_hash)::int AS n FROM provenance.history_${oid} WHERE provenance_valid_from > (SELECT since FROM provenance.history_table WHERE target_oid = ${oid})`);
      expect(hashes.rows[0]!.n).toBe(0);
      const open = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM provenance.history_${oid} WHERE provenance_valid_to IS NULL`);
      expect(open.rows[0]!.n).toBe(500);
    } finally {
      await c.end();
    }
  });

  it('switches between the key and the row hash as the primary key is added, dropped or made deferrable', async () => {
    const c = await admin();
    const table = uniqueName('rekeyed');
    try {
      await c.query(`CREATE TABLE ${table} (id int NOT NULL, v text); INSERT INTO ${table} VALUES (1, 'a'), (2, 'b')`);
      await c.query('SELECT provenance.track($1)', [table]);
      const r = new Recorder(c, table);
      await r.step(`UPDATE ${table} SET v = 'a2' WHERE id = 1`);
      expect((await captureOf(c, table)).key).toEqual([]);
      await r.step(`ALTER TABLE ${table} ADD CONSTRAINT ${table}_pk PRIMARY KEY (id)`);
      await r.step(`UPDATE ${table} SET v = 'b2' WHERE id = 2`);
      expect((await captureOf(c, table)).key).toEqual([1]);
      await r.step(`DELETE FROM ${table} WHERE id = 1`);
      await r.step(`ALTER TABLE ${table} DROP CONSTRAINT ${table}_pk`);
      // Without a key, identical rows: one of them ends.
      await r.step(`INSERT INTO ${table} VALUES (2, 'b2'), (3, 'c')`);
      await r.step(`DELETE FROM ${table} WHERE ctid = (SELECT min(ctid) FROM ${table} WHERE id = 2)`);
      expect((await captureOf(c, table)).key).toEqual([]);
      await r.step(`UPDATE ${table} SET v = 'b3' WHERE id = 2`);
      // A deferrable key may hold duplicates between statements: the row hash finds versions.
      await r.step(`ALTER TABLE ${table} ADD PRIMARY KEY (id) DEFERRABLE INITIALLY IMMEDIATE`);
      await r.step(`UPDATE ${table} SET v = 'c2' WHERE id = 3`);
      expect((await captureOf(c, table)).key).toEqual([]);
      // A key column renamed is followed.
      await c.query(`ALTER TABLE ${table} DROP CONSTRAINT ${table}_pkey; ALTER TABLE ${table} ADD PRIMARY KEY (id)`);
      await c.query(`ALTER TABLE ${table} RENAME COLUMN id TO ident; ALTER TABLE ${table} RENAME COLUMN ident TO id`);
      await r.step(`UPDATE ${table} SET v = 'c3' WHERE id = 3`);
      expect((await captureOf(c, table)).key).toEqual([1]);
      await r.check();
    } finally {
      await c.end();
    }
  });

  it('refuses a write whose old rows the history does not hold, and keeps the session usable', async () => {
    const c = await admin();
    const table = uniqueName('lost');
    try {
      await c.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v text); INSERT INTO ${table} VALUES (1, 'a')`);
      await c.query('SELECT provenance.track($1)', [table]);
      const history = (await c.query<{ h: string }>('SELECT history::text AS h FROM provenance.history_table WHERE target_oid = $1::regclass', [table])).rows[0]!.h;
      await c.query(`DELETE FROM ${history}`);
      await expect(c.query(`UPDATE ${table} SET v = 'b' WHERE id = 1`)).rejects.toMatchObject({ code: 'XX000' });
      expect((await c.query(`SELECT v FROM ${table}`)).rows).toEqual([{ v: 'a' }]);
    } finally {
      await c.end();
    }
  });
});
