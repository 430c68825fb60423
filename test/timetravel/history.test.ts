/**
 * The history of the original rows of tracked tables: every write kind is captured inside the
 * database (also writes straight to PostgreSQL), and `provenance.rows_as_of` serves the rows as
 * of a moment. Expected answers are the test's own record of what it wrote and when.
 */
import { expect, it } from 'vitest';
import pg from 'pg';
import { eachUpstream, uniqueName } from '../support/proxy-matrix.js';
import { moment } from '../support/history.js';

type Row = [number, string | null];

async function asOf(c: pg.Client, table: string, at: string, cols = 'id, v'): Promise<unknown[][]> {
  const r = await c.query({ text: `SELECT ${cols} FROM provenance.rows_as_of(NULL::${table}, $1) ORDER BY 1, 2`, values: [at], rowMode: 'array' });
  return r.rows as unknown[][];
}

const sorted = (rows: readonly Row[]): Row[] => [...rows].sort((a, b) => a[0] - b[0] || String(a[1]).localeCompare(String(b[1])));

async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  const err = await p.then(() => null, (e: unknown) => e as { code: string; message: string });
  expect(err).not.toBeNull();
  return err!;
}

eachUpstream('history of tracked tables', (t) => {
  async function admin(): Promise<pg.Client> {
    const c = await t().pg();
    await t().proxy.stateReady;
    return c;
  }

  it('tracks, lists and untracks a table; refuses moments outside its history', async () => {
    const c = await admin();
    const table = uniqueName('tracked');
    try {
      await c.query(`CREATE TABLE ${table} (id int, v text); INSERT INTO ${table} VALUES (1, 'a'), (2, 'b')`);
      const before = await moment(c);
      const since = (await c.query<{ s: string }>('SELECT provenance.track($1)::text AS s', [table])).rows[0]!.s;
      expect(since > before).toBe(true);
      // Tracking again changes nothing and answers the same start.
      expect((await c.query<{ s: string }>('SELECT provenance.track($1)::text AS s', [table])).rows[0]!.s).toBe(since);
      const listed = await c.query('SELECT target, since::text, tracking, versions::int, bytes::int, retention FROM provenance.tracked WHERE target = $1', [table]);
      expect(listed.rows).toHaveLength(1);
      expect(listed.rows[0]).toMatchObject({ target: table, since, tracking: true, versions: 2, retention: null });
      expect(listed.rows[0]!['bytes']).toBeGreaterThan(0);
      expect(await asOf(c, table, since)).toEqual([[1, 'a'], [2, 'b']]);

      const early = await refusal(c.query(`SELECT * FROM provenance.rows_as_of(NULL::${table}, $1)`, [before]));
      expect(early.code).toBe('22023');
      expect(early.message).toContain(table);
      expect(early.message).toContain(since);
      const future = await refusal(c.query(`SELECT * FROM provenance.rows_as_of(NULL::${table}, pg_catalog.clock_timestamp() + interval '1 minute')`));
      expect(future.code).toBe('22023');
      expect(future.message).toContain(table);
      expect(future.message).toContain(since);

      await c.query(`UPDATE ${table} SET v = 'a2' WHERE id = 1`);
      const m1 = await moment(c);
      const ended = (await c.query<{ e: string }>('SELECT provenance.untrack($1)::text AS e', [table])).rows[0]!.e;
      await c.query(`UPDATE ${table} SET v = 'a3' WHERE id = 1`);
      expect((await c.query('SELECT tracking, until::text FROM provenance.tracked WHERE target = $1', [table])).rows[0]).toEqual({ tracking: false, until: ended });
      // History kept up to the end of tracking, and nothing after it.
      expect(await asOf(c, table, m1)).toEqual([[1, 'a2'], [2, 'b']]);
      expect((await refusal(c.query(`SELECT * FROM provenance.rows_as_of(NULL::${table}, $1)`, [await moment(c)]))).code).toBe('22023');
      const untracked = uniqueName('untracked');
      await c.query(`CREATE TABLE ${untracked} (id int)`);
      const never = await refusal(c.query(`SELECT * FROM provenance.rows_as_of(NULL::${untracked}, pg_catalog.now())`));
      expect(never.code).toBe('55000');
      expect(never.message).toContain(untracked);
    } finally {
      await c.end();
    }
  });

  it('captures INSERT, UPDATE, DELETE, COPY FROM and TRUNCATE, each version from its moment', async () => {
    const c = await admin();
    const table = uniqueName('writes');
    try {
      await c.query(`CREATE TABLE ${table} (id int, v text)`);
      await c.query('SELECT provenance.track($1)', [table]);
      let state: Row[] = [];
      const seen: { at: string; rows: Row[] }[] = [{ at: await moment(c), rows: [] }];
      const step = async (sql: string, next: Row[]): Promise<void> => {
        await c.query(sql);
        state = next;
        seen.push({ at: await moment(c), rows: sorted(state) });
      };
      await step(`INSERT INTO ${table} VALUES (1, 'a'), (2, 'b'), (2, 'b')`, [[1, 'a'], [2, 'b'], [2, 'b']]);
      await step(`UPDATE ${table} SET v = 'a2' WHERE id = 1`, [[1, 'a2'], [2, 'b'], [2, 'b']]);
      // Identical rows: deleting one by ctid leaves the other.
      await step(`DELETE FROM ${table} WHERE ctid = (SELECT min(ctid) FROM ${table} WHERE id = 2)`, [[1, 'a2'], [2, 'b']]);
      await step(`INSERT INTO ${table} VALUES (3, NULL) ON CONFLICT DO NOTHING`, [[1, 'a2'], [2, 'b'], [3, null]]);
      const copied = await t().psql(['-v', 'ON_ERROR_STOP=1'], `COPY ${table} FROM STDIN;\n4\tcopied\n5\t\\N\n\\.\n`);
      expect(copied.code, copied.stderr).toBe(0);
      state = [...state, [4, 'copied'], [5, null]];
      seen.push({ at: await moment(c), rows: sorted(state) });
      // A transaction that writes and rewrites a row leaves only what it committed.
      await step(`BEGIN; INSERT INTO ${table} VALUES (6, 'tmp'); UPDATE ${table} SET v = 'kept' WHERE id = 6; COMMIT`,
        [...state, [6, 'kept']]);
      await step(`TRUNCATE ${table}`, []);
      await step(`INSERT INTO ${table} VALUES (7, 'after')`, [[7, 'after']]);
      if (t().kind === 'postgres') {
        // Straight to PostgreSQL, around the proxy.
        const direct = new pg.Client({ connectionString: t().cluster.url() });
        await direct.connect();
        try {
          await direct.query(`UPDATE ${table} SET v = 'direct' WHERE id = 7; INSERT INTO ${table} VALUES (8, 'direct')`);
          state = [[7, 'direct'], [8, 'direct']];
          seen.push({ at: await moment(c), rows: sorted(state) });
          await direct.query(`DELETE FROM ${table} WHERE id = 8`);
          state = [[7, 'direct']];
          seen.push({ at: await moment(c), rows: sorted(state) });
        } finally {
          await direct.end();
        }
      }
      for (const s of seen) expect(await asOf(c, table, s.at), s.at).toEqual(s.rows);
      // Every version was kept: 3 + 1 + 1 + 2 + 1 (tmp, never visible) + 1 + 1 (+ 2 direct).
      const versions = (await c.query<{ n: number }>('SELECT versions::int AS n FROM provenance.tracked WHERE target = $1', [table])).rows[0]!.n;
      expect(versions).toBe(t().kind === 'postgres' ? 12 : 10);
    } finally {
      await c.end();
    }
  });

  it('dates a version from its transaction\'s start, also when that transaction was open across a read', async () => {
    const writer = await admin();
    const reader = await t().pg();
    const table = uniqueName('validity');
    const seenBy = async (c: pg.Client): Promise<{ at: string; rows: unknown[][] }> => {
      const r = await c.query({ text: `SELECT pg_catalog.clock_timestamp()::text AS at, id, v FROM ${table} ORDER BY id`, rowMode: 'array' });
      await new Promise((res) => setTimeout(res, 3));
      return { at: String(r.rows[0]![0]), rows: r.rows.map((x: unknown[]) => x.slice(1)) };
    };
    try {
      await writer.query(`CREATE TABLE ${table} (id int, v text); INSERT INTO ${table} VALUES (1, 'old')`);
      await writer.query('SELECT provenance.track($1)', [table]);
      // Plain: no transaction open across the read; as of its moment, the rows it saw.
      await writer.query(`UPDATE ${table} SET v = 'plain'`);
      const plain = await seenBy(reader);
      expect(plain.rows).toEqual([[1, 'plain']]);
      expect(await asOf(reader, table, plain.at)).toEqual(plain.rows);
      if (t().kind === 'embedded') return; // one backend: a transaction holds it until it ends
      // Edge: the writer's transaction starts, writes, and is still open when the reader reads.
      await writer.query('BEGIN');
      const started = (await writer.query<{ s: string }>('SELECT pg_catalog.now()::text AS s')).rows[0]!.s;
      const justBefore = (await writer.query<{ s: string }>("SELECT (pg_catalog.now() - interval '1 microsecond')::text AS s")).rows[0]!.s;
      await writer.query(`UPDATE ${table} SET v = 'open across the read'`);
      const edge = await seenBy(reader);
      expect(edge.rows).toEqual([[1, 'plain']]);
      await writer.query('COMMIT');
      // The version is valid from the writer's start, before the read: as of the read's moment the
      // history answers the committed write the read could not see.
      expect(edge.at > started).toBe(true);
      expect(await asOf(reader, table, edge.at)).toEqual([[1, 'open across the read']]);
      expect(await asOf(reader, table, started)).toEqual([[1, 'open across the read']]);
      expect(await asOf(reader, table, justBefore)).toEqual([[1, 'plain']]);
    } finally {
      await reader.end();
      await writer.end();
    }
  });

  it('follows ADD COLUMN (older versions read NULL), RENAME and DROP COLUMN, and refuses ALTER TYPE', async () => {
    const c = await admin();
    const table = uniqueName('altered');
    try {
      await c.query(`CREATE TABLE ${table} (id int, v text); INSERT INTO ${table} VALUES (1, 'a')`);
      await c.query('SELECT provenance.track($1)', [table]);
      const m0 = await moment(c);
      await c.query(`ALTER TABLE ${table} ADD COLUMN extra text DEFAULT 'x'`);
      const m1 = await moment(c);
      await c.query(`INSERT INTO ${table} VALUES (2, 'b', 'y')`);
      const m2 = await moment(c);
      expect(await asOf(c, table, m0, 'id, v, extra')).toEqual([[1, 'a', null]]);
      expect(await asOf(c, table, m1, 'id, v, extra')).toEqual([[1, 'a', 'x']]);
      expect(await asOf(c, table, m2, 'id, v, extra')).toEqual([[1, 'a', 'x'], [2, 'b', 'y']]);
      const retype = await refusal(c.query(`ALTER TABLE ${table} ALTER COLUMN id TYPE bigint`));
      expect(retype.code).toBe('0A000');
      expect(retype.message).toContain(table);
      // The session goes on, the table is as it was, and its history too.
      await c.query(`UPDATE ${table} SET v = 'b2' WHERE id = 2`);
      const m3 = await moment(c);
      expect(await asOf(c, table, m3, 'id, v, extra')).toEqual([[1, 'a', 'x'], [2, 'b2', 'y']]);
      // Renamed (swapped, even) and dropped columns: reads as of any moment use the names of now;
      // a column dropped and added again under its name starts empty.
      await c.query(`ALTER TABLE ${table} RENAME COLUMN v TO tmp; ALTER TABLE ${table} RENAME COLUMN extra TO v; ALTER TABLE ${table} RENAME COLUMN tmp TO extra`);
      await c.query(`UPDATE ${table} SET v = 'z' WHERE id = 1`);
      const m4 = await moment(c);
      await c.query(`ALTER TABLE ${table} DROP COLUMN extra; ALTER TABLE ${table} ADD COLUMN extra text`);
      await c.query(`UPDATE ${table} SET extra = 'new' WHERE id = 2`);
      const m5 = await moment(c);
      expect(await asOf(c, table, m0, 'id, v, extra')).toEqual([[1, null, null]]);
      expect(await asOf(c, table, m3, 'id, v, extra')).toEqual([[1, 'x', null], [2, 'y', null]]);
      expect(await asOf(c, table, m4, 'id, v, extra')).toEqual([[1, 'z', null], [2, 'y', null]]);
      expect(await asOf(c, table, m5, 'id, v, extra')).toEqual([[1, 'z', null], [2, 'y', 'new']]);
      const oid = (await c.query<{ o: number }>('SELECT $1::regclass::oid::int AS o', [table])).rows[0]!.o;
      // The dropped column's values stay in the history, under a name of their own.
      const kept = await c.query(`SELECT count(*)::int AS n FROM provenance.history_${oid} WHERE provenance_dropped_2_extra = 'b2'`);
      expect(kept.rows[0]).toEqual({ n: 1 });
    } finally {
      await c.end();
    }
  });

  it('refuses to drop or disable the capture triggers of a tracked table', async () => {
    const c = await admin();
    const table = uniqueName('guarded_triggers');
    try {
      await c.query(`CREATE TABLE ${table} (id int)`);
      await c.query('SELECT provenance.track($1)', [table]);
      for (const ddl of [
        `ALTER TABLE ${table} DISABLE TRIGGER provenance_history_update`, `ALTER TABLE ${table} DISABLE TRIGGER ALL`,
        `DROP TRIGGER provenance_history_insert ON ${table}`, `ALTER TRIGGER provenance_history_delete ON ${table} RENAME TO x`,
      ]) {
        const err = await refusal(c.query(ddl));
        expect(err.code, ddl).toBe('55000');
        expect(err.message).toContain(table);
      }
      await c.query(`INSERT INTO ${table} VALUES (1)`);
      expect(await asOf(c, table, await moment(c), 'id, id')).toEqual([[1, 1]]);
      // Untracking drops them.
      await c.query('SELECT provenance.untrack($1)', [table]);
      expect((await c.query('SELECT tgname FROM pg_catalog.pg_trigger WHERE tgrelid = $1::regclass', [table])).rows).toEqual([]);
    } finally {
      await c.end();
    }
  });

  it('keeps the versions the retention window or a pinned moment needs, and prunes the rest', async () => {
    const c = await admin();
    const table = uniqueName('pruned');
    const pinned = uniqueName('pinned');
    try {
      await c.query(`CREATE TABLE ${table} (id int, v text); INSERT INTO ${table} VALUES (1, 'v1')`);
      await c.query(`CREATE TABLE ${pinned} (id int, v text); INSERT INTO ${pinned} VALUES (1, 'v1')`);
      for (const x of [table, pinned]) await c.query('SELECT provenance.track($1)', [x]);
      const old = await moment(c);
      for (const x of [table, pinned]) await c.query(`UPDATE ${x} SET v = 'v2'`);
      await c.query(`INSERT INTO provenance.history_pin (target_oid, at, reason) VALUES ($1::regclass, $2, 'test')`, [pinned, old]);
      await new Promise((r) => setTimeout(r, 1_500));
      const recent = await moment(c);
      for (const x of [table, pinned]) await c.query(`UPDATE ${x} SET v = 'v3'`);
      for (const x of [table, pinned]) await c.query("SELECT provenance.set_retention($1, interval '1 second')", [x]);
      await c.query('SELECT provenance.prune_history()');
      const count = async (x: string): Promise<number> =>
        (await c.query<{ n: number }>('SELECT versions::int AS n FROM provenance.tracked WHERE target = $1', [x])).rows[0]!.n;
      // v1 ended before the window: gone unless pinned; v2 was valid inside the window: kept.
      expect(await count(table)).toBe(2);
      expect(await count(pinned)).toBe(3);
      expect(await asOf(c, table, recent)).toEqual([[1, 'v2']]);
      expect(await asOf(c, table, await moment(c))).toEqual([[1, 'v3']]);
      const gone = await refusal(c.query(`SELECT * FROM provenance.rows_as_of(NULL::${table}, $1)`, [old]));
      expect(gone.code).toBe('22023');
      for (const keep of ['-1 day', '0']) {
        const bad = await refusal(c.query('SELECT provenance.set_retention($1, $2::interval)', [table, keep]));
        expect(bad.code).toBe('22023');
        expect(bad.message).toMatch(/must be a positive interval/);
      }
      await c.query("SELECT provenance.set_retention($1, NULL)", [table]);
      expect((await c.query('SELECT retention FROM provenance.tracked WHERE target = $1', [table])).rows[0]).toEqual({ retention: null });
    } finally {
      await c.end();
    }
  });

  it('tracks a table when a transform is registered on it', async () => {
    const c = await admin();
    const table = uniqueName('auto');
    try {
      await c.query(`CREATE TABLE ${table} (id int, v text); INSERT INTO ${table} VALUES (1, 'secret')`);
      expect((await c.query('SELECT 1 FROM provenance.tracked WHERE target = $1', [table])).rows).toHaveLength(0);
      await c.query("SELECT provenance.register_transform($1, $2, ARRAY['v'], '(v) => \"***\"')", [uniqueName('mask'), table]);
      const r = await c.query<{ since: string }>('SELECT since::text AS since FROM provenance.tracked WHERE target = $1 AND tracking', [table]);
      expect(r.rows).toHaveLength(1);
      // rows_as_of serves the original rows (transforms apply to what a statement returns, later).
      expect(await asOf(c, table, r.rows[0]!.since)).toEqual([[1, 'secret']]);
    } finally {
      await c.end();
    }
  });

  it('serves history only to roles that may read the table', async () => {
    const c = await admin();
    const table = uniqueName('guarded');
    const role = uniqueName('reader');
    try {
      await c.query(`CREATE TABLE ${table} (id int, v text); INSERT INTO ${table} VALUES (1, 'a')`);
      await c.query('SELECT provenance.track($1)', [table]);
      await c.query(`CREATE ROLE ${role}`);
      const at = await moment(c);
      const history = (await c.query<{ h: string }>('SELECT history::text AS h FROM provenance.tracked WHERE target = $1', [table])).rows[0]!.h;
      const asRole = async <T>(f: () => Promise<T>): Promise<T> => {
        await c.query(`SET ROLE ${role}`);
        try {
          return await f();
        } finally {
          await c.query('RESET ROLE');
        }
      };
      for (const sql of [`SELECT * FROM provenance.rows_as_of(NULL::${table}, '${at}')`, `SELECT * FROM ${history}`]) {
        expect((await asRole(() => refusal(c.query(sql)))).code, sql).toBe('42501');
      }
      await c.query(`GRANT SELECT ON ${table} TO ${role}`);
      expect(await asRole(() => asOf(c, table, at))).toEqual([[1, 'a']]);
      await c.query(`REVOKE SELECT ON ${table} FROM ${role}`);
      for (const sql of [`SELECT * FROM provenance.rows_as_of(NULL::${table}, '${at}')`, `SELECT * FROM ${history}`]) {
        expect((await asRole(() => refusal(c.query(sql)))).code, sql).toBe('42501');
      }
    } finally {
      await c.query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
      await c.end();
    }
  });
});
