/**
 * History in databases of their own (PostgreSQL): one whose registry already has transforms when
 * the history migration runs (the proxy's start tracks their tables, from the rows they hold
 * then), and one without the event trigger, as with a login that is not superuser (every write
 * then brings the history's columns and grants in step).
 */
import { expect, it } from 'vitest';
import pg from 'pg';
import { startTarget, uniqueName } from '../support/proxy-matrix.js';
import { ownDatabases, schemaBefore } from '../support/history.js';
import { HISTORY_MIGRATION } from '../../plugins/registry/history-schema.js';

const { cluster, create: newDatabase, upstream } = ownDatabases();

it('tracks the tables that have transforms when the migration runs [postgres]', async () => {
  const database = await newDatabase('premigration');
  const su = new pg.Client({ connectionString: cluster.url({ database }) });
  await su.connect();
  const table = uniqueName('masked');
  try {
    // The schema as the releases before the history left it, with a transform registered.
    await schemaBefore(su, HISTORY_MIGRATION.version);
    await su.query(`CREATE TABLE public.${table} (id int, v text); INSERT INTO public.${table} VALUES (1, 'kept'), (2, 'also')`);
    await su.query("SELECT provenance.register_transform($1, $2, ARRAY['v'], '(v) => v')", [uniqueName('mask'), `public.${table}`]);
    expect((await su.query("SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = 'provenance' AND tablename = 'history_table'")).rows).toHaveLength(0);
    const before = (await su.query<{ m: string }>('SELECT pg_catalog.clock_timestamp()::text AS m')).rows[0]!.m;

    const target = await startTarget('postgres', [], { upstream: upstream(database) });
    try {
      await target.proxy.stateReady;
      const tracked = await su.query<{ since: string; versions: number }>(
        'SELECT since::text AS since, versions::int AS versions FROM provenance.tracked WHERE target = $1 AND tracking', [table]);
      expect(tracked.rows).toHaveLength(1);
      expect(tracked.rows[0]!.since > before).toBe(true);
      expect(tracked.rows[0]!.versions).toBe(2);
      await su.query(`UPDATE public.${table} SET v = 'changed' WHERE id = 2`);
      const now = (await su.query<{ m: string }>('SELECT pg_catalog.clock_timestamp()::text AS m')).rows[0]!.m;
      const rows = async (at: string): Promise<unknown[][]> => (await su.query({
        text: `SELECT id, v FROM provenance.rows_as_of(NULL::public.${table}, $1) ORDER BY id`, values: [at], rowMode: 'array',
      })).rows as unknown[][];
      expect(await rows(tracked.rows[0]!.since)).toEqual([[1, 'kept'], [2, 'also']]);
      expect(await rows(now)).toEqual([[1, 'kept'], [2, 'changed']]);
    } finally {
      await target.proxy.stop(2_000);
    }
  } finally {
    await su.end();
  }
});

it('keeps columns and grants in step at each write without the event trigger [postgres]', async () => {
  const database = await newDatabase('noevent');
  const target = await startTarget('postgres', [], { upstream: upstream(database) });
  const su = new pg.Client({ connectionString: cluster.url({ database }) });
  const table = uniqueName('lazy');
  const role = uniqueName('lazy_reader');
  try {
    await target.proxy.stateReady;
    await su.connect();
    await su.query('ALTER EVENT TRIGGER provenance_history_ddl DISABLE');
    await su.query(`CREATE TABLE ${table} (id int, v text); INSERT INTO ${table} VALUES (1, 'a')`);
    await su.query('SELECT provenance.track($1)', [table]);
    const at = async (): Promise<string> => {
      const m = (await su.query<{ m: string }>('SELECT pg_catalog.clock_timestamp()::text AS m')).rows[0]!.m;
      await new Promise((r) => setTimeout(r, 3));
      return m;
    };
    const rows = async (m: string): Promise<unknown[][]> =>
      (await su.query({ text: `SELECT * FROM provenance.rows_as_of(NULL::${table}, $1) ORDER BY 1`, values: [m], rowMode: 'array' })).rows as unknown[][];
    await su.query(`ALTER TABLE ${table} ADD COLUMN extra text; ALTER TABLE ${table} RENAME COLUMN v TO w`);
    const m1 = await at();
    expect(await rows(m1)).toEqual([[1, 'a', null]]);
    await su.query(`UPDATE ${table} SET extra = 'e' WHERE id = 1`);
    const m2 = await at();
    expect(await rows(m1)).toEqual([[1, 'a', null]]);
    expect(await rows(m2)).toEqual([[1, 'a', 'e']]);
    // A change of type: the next write is refused, and the table stays as the history has it.
    await su.query(`ALTER TABLE ${table} ALTER COLUMN id TYPE bigint`);
    await expect(su.query(`INSERT INTO ${table} VALUES (2, 'b', 'c')`)).rejects.toMatchObject({ code: '0A000' });
    await su.query(`ALTER TABLE ${table} ALTER COLUMN id TYPE int`);
    // Grants reach the history at the next write.
    await su.query(`CREATE ROLE ${role}; GRANT SELECT ON ${table} TO ${role}`);
    await su.query(`INSERT INTO ${table} VALUES (2, 'b', 'c')`);
    const m3 = await at();
    await su.query(`SET ROLE ${role}`);
    expect(await rows(m3)).toEqual([[1, 'a', 'e'], [2, 'b', 'c']]);
    await su.query('RESET ROLE');
    // Triggers dropped behind its back: reads refuse the table.
    await su.query(`DROP TRIGGER provenance_history_update ON ${table}`);
    await expect(rows(m3)).rejects.toMatchObject({ code: '55000' });
  } finally {
    await su.query('RESET ROLE').catch(() => undefined);
    await su.end();
    await target.proxy.stop(2_000);
  }
});
