/**
 * The compiled history capture in databases of their own (PostgreSQL): one whose histories were
 * written by the capture before it (carried over by the migration, history intact), and one
 * without the event trigger (every write brings the capture in step with the table first).
 */
import { expect, it } from 'vitest';
import pg from 'pg';
import { startTarget, uniqueName } from '../support/proxy-matrix.js';
import { moment, ownDatabases, schemaBefore } from '../support/history.js';
import { HISTORY_COMPILED_MIGRATION } from '../../plugins/registry/history-compiled.js';

const { cluster, create: newDatabase, upstream } = ownDatabases();

const rowsAsOf = async (c: pg.Client, table: string, at: string): Promise<unknown[][]> => (await c.query({
  text: `SELECT * FROM provenance.rows_as_of(NULL::${table}, $1) ORDER BY 1, 2`, values: [at], rowMode: 'array',
})).rows as unknown[][];

const triggerFunctions = async (c: pg.Client, table: string): Promise<string[]> => (await c.query<{ f: string }>(
  'SELECT DISTINCT tgfoid::regprocedure::text AS f FROM pg_catalog.pg_trigger WHERE tgrelid = $1::regclass', [table])).rows.map((r) => r.f);

it('carries histories written by the earlier capture over, and captures on from them [postgres]', async () => {
  const database = await newDatabase('carried');
  const su = new pg.Client({ connectionString: cluster.url({ database }) });
  await su.connect();
  const keyed = `public.${uniqueName('keyed')}`;
  const keyless = `public.${uniqueName('keyless')}`;
  try {
    await schemaBefore(su, HISTORY_COMPILED_MIGRATION.version);
    await su.query(`CREATE TABLE ${keyed} (id int PRIMARY KEY, v text); INSERT INTO ${keyed} VALUES (1, 'a'), (2, 'b');
      CREATE TABLE ${keyless} (id int, v text); INSERT INTO ${keyless} VALUES (1, 'a'), (1, 'a')`);
    await su.query('SELECT provenance.track($1), provenance.track($2)', [keyed, keyless]);
    await su.query(`UPDATE ${keyed} SET v = 'a2' WHERE id = 1; UPDATE ${keyless} SET v = 'a2' WHERE ctid = (SELECT min(ctid) FROM ${keyless})`);
    const before = await moment(su);
    expect(await triggerFunctions(su, keyed)).toEqual(['provenance.capture_history()']);

    const target = await startTarget('postgres', [], { upstream: upstream(database) });
    try {
      await target.proxy.stateReady;
      const keyedOid = (await su.query<{ o: string }>('SELECT $1::regclass::oid::text AS o', [keyed])).rows[0]!.o;
      expect(await triggerFunctions(su, keyed)).toEqual([`provenance.history_${keyedOid}_capture()`]);
      const keys = await su.query<{ target: string; k: number[] }>('SELECT target, capture_key::int[] AS k FROM provenance.history_table ORDER BY target');
      expect(keys.rows.map((r) => [r.target, r.k])).toEqual([[keyed, [1]], [keyless, []]].sort((a, b) => String(a[0]).localeCompare(String(b[0]))));
      // Versions found by the earlier capture's hashes end by key now.
      await su.query(`UPDATE ${keyed} SET v = 'a3' WHERE id = 1; DELETE FROM ${keyed} WHERE id = 2; INSERT INTO ${keyed} VALUES (3, 'c')`);
      await su.query(`UPDATE ${keyless} SET v = 'a3' WHERE v = 'a'`);
      const after = await moment(su);
      expect(await rowsAsOf(su, keyed, before)).toEqual([[1, 'a2'], [2, 'b']]);
      expect(await rowsAsOf(su, keyed, after)).toEqual([[1, 'a3'], [3, 'c']]);
      expect(await rowsAsOf(su, keyless, before)).toEqual([[1, 'a'], [1, 'a2']]);
      expect(await rowsAsOf(su, keyless, after)).toEqual([[1, 'a2'], [1, 'a3']]);
    } finally {
      await target.proxy.stop(2_000);
    }
  } finally {
    await su.end();
  }
});

it('brings the compiled capture in step with columns and key at the next write without the event trigger [postgres]', async () => {
  const database = await newDatabase('uncompiled');
  const target = await startTarget('postgres', [], { upstream: upstream(database) });
  const su = new pg.Client({ connectionString: cluster.url({ database }) });
  const table = uniqueName('lazy_keyed');
  try {
    await target.proxy.stateReady;
    await su.connect();
    await su.query('ALTER EVENT TRIGGER provenance_history_ddl DISABLE');
    await su.query(`CREATE TABLE ${table} (id int NOT NULL, v text); INSERT INTO ${table} VALUES (1, 'a')`);
    await su.query('SELECT provenance.track($1)', [table]);
    // A column added behind the capture's back: the write that follows keeps its value.
    await su.query(`ALTER TABLE ${table} ADD COLUMN extra text`);
    await su.query(`UPDATE ${table} SET extra = 'e' WHERE id = 1`);
    const m1 = await moment(su);
    expect(await rowsAsOf(su, table, m1)).toEqual([[1, 'a', 'e']]);
    // A key added: the next write finds versions by it.
    await su.query(`ALTER TABLE ${table} ADD PRIMARY KEY (id)`);
    await su.query(`UPDATE ${table} SET v = 'b' WHERE id = 1; INSERT INTO ${table} VALUES (2, 'c', NULL)`);
    const m2 = await moment(su);
    const key = await su.query<{ k: number[] }>('SELECT capture_key::int[] AS k FROM provenance.history_table WHERE target_oid = $1::regclass', [table]);
    expect(key.rows[0]!.k).toEqual([1]);
    expect(await rowsAsOf(su, table, m1)).toEqual([[1, 'a', 'e']]);
    expect(await rowsAsOf(su, table, m2)).toEqual([[1, 'b', 'e'], [2, 'c', null]]);
  } finally {
    await su.end();
    await target.proxy.stop(2_000);
  }
});
