/**
 * A database whose registry already has transforms when the history migration runs: the proxy's
 * start tracks their tables, from the rows they hold then.
 */
import { afterAll, expect, it } from 'vitest';
import pg from 'pg';
import { sharedCluster, startTarget, uniqueName } from '../support/proxy-matrix.js';
import { MIGRATIONS } from '../../plugins/registry/schema.js';
import { HISTORY_MIGRATION } from '../../plugins/timetravel/history-schema.js';

const cluster = sharedCluster();
const databases: string[] = [];
afterAll(async () => {
  for (const d of databases) await cluster.psql(`DROP DATABASE IF EXISTS ${d} WITH (FORCE)`).catch(() => undefined);
});

it('tracks the tables that have transforms when the migration runs [postgres]', async () => {
  const database = uniqueName('premigration');
  await cluster.psql(`CREATE DATABASE ${database}`);
  databases.push(database);
  const su = new pg.Client({ connectionString: cluster.url({ database }) });
  await su.connect();
  const table = uniqueName('masked');
  try {
    // The schema as the releases before the history left it, with a transform registered.
    await su.query(`CREATE SCHEMA provenance;
      CREATE TABLE provenance.schema_migrations (version integer PRIMARY KEY, description text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT pg_catalog.now());
      DO $$ BEGIN CREATE ROLE provenance_admin NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
    for (const m of MIGRATIONS.filter((x) => x.version < HISTORY_MIGRATION.version)) {
      await su.query(m.sql);
      await su.query('INSERT INTO provenance.schema_migrations (version, description) VALUES ($1, $2)', [m.version, m.description]);
    }
    await su.query("INSERT INTO provenance.settings (key, value) VALUES ('sandbox_runtime_version', 'before')");
    await su.query(`CREATE TABLE public.${table} (id int, v text); INSERT INTO public.${table} VALUES (1, 'kept'), (2, 'also')`);
    await su.query("SELECT provenance.register_transform($1, $2, ARRAY['v'], '(v) => v')", [uniqueName('mask'), `public.${table}`]);
    expect((await su.query("SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = 'provenance' AND tablename = 'history_table'")).rows).toHaveLength(0);
    const before = (await su.query<{ m: string }>('SELECT pg_catalog.clock_timestamp()::text AS m')).rows[0]!.m;

    const target = await startTarget('postgres', [], { upstream: cluster.url({ database }).replace(/\?.*$/, '') + '?sslmode=disable' });
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
