/**
 * Migration 16 records the sandbox runtime identity of every version: rows from before get the
 * identity of the runtime that ran the schema last where their hash was computed with it, or the
 * earlier release's runtime name their hash matches (not recorded otherwise), versions registered afterwards get the current runtime's, and a change to
 * a version of an earlier runtime is registered under the current one (it was refused before).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import { MIGRATIONS } from '../../plugins/registry/schema.js';
import { migrate, type SqlRunner } from '../../plugins/registry/migrate.js';
import { loadVersionHistory } from '../../plugins/transforms/version-history.js';
import { SANDBOX_RUNTIME_VERSION } from '../../sandbox/index.js';
import { sharedCluster, uniqueName } from '../support/proxy-matrix.js';

/** The first release's runtime, on an earlier Node.js of this major. */
const EARLIEST = `isolated-vm@5.0.4;node@${process.versions.node.split('.')[0]}.1.0;runtime@a8ed740f26ac`;
const UNKNOWN = 'isolated-vm@4.0.0;node@20.1.0;runtime@000000000000';
const PREVIOUS = `isolated-vm@5.0.4;node@${process.versions.node};runtime@bd629e3570b7`;
const SOURCE = '(v) => v === null ? null : v.slice(0, 2) + "***"';
const hashUnder = (identity: string): string => createHash('sha256').update(`${SOURCE}\0${identity}`).digest('hex');

type Db = SqlRunner & { close(): Promise<void> };
const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => undefined);
});

async function postgresDb(): Promise<Db> {
  const cluster = sharedCluster();
  const database = uniqueName('rtdb');
  const su = new pg.Client({ connectionString: cluster.url({ database: 'postgres' }) });
  await su.connect();
  await su.query(`CREATE DATABASE ${database}`);
  const c = new pg.Client({ connectionString: cluster.url({ database }) });
  await c.connect();
  cleanup.push(async () => {
    await c.end().catch(() => undefined);
    await su.query(`DROP DATABASE ${database} WITH (FORCE)`);
    await su.end();
  });
  return {
    query: async (sql, params) => ({ rows: (await c.query(sql, params as unknown[])).rows as Record<string, unknown>[] }),
    exec: async (sql) => void (await c.query(sql)),
    close: async () => undefined,
  };
}

async function pgliteDb(): Promise<Db> {
  const db = await PGlite.create();
  return {
    query: async (sql, params) => ({ rows: (await db.query<Record<string, unknown>>(sql, params as unknown[])).rows }),
    exec: async (sql) => void (await db.exec(sql)),
    close: () => db.close(),
  };
}

describe('migration 16: the runtime identity of each version', () => {
  for (const [kind, open] of [['postgres', postgresDb], ['embedded', pgliteDb]] as const) {
    it(`carries versions of the last runtime over, and registers changes under the current one [${kind}]`, async () => {
      const db = await open();
      try {
        // The schema as the previous release left it, with versions registered under two runtimes.
        await db.exec(`CREATE SCHEMA provenance;
          CREATE TABLE provenance.schema_migrations (version integer PRIMARY KEY, description text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT pg_catalog.now());
          DO $$ BEGIN CREATE ROLE provenance_admin NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;`);
        for (const m of MIGRATIONS.filter((x) => x.version < 16)) {
          await db.exec(m.sql);
          await db.query('INSERT INTO provenance.schema_migrations (version, description) VALUES ($1, $2)', [m.version, m.description]);
        }
        await db.exec(`CREATE TABLE public.people (id int, email text);
          INSERT INTO provenance.settings (key, value) VALUES ('sandbox_runtime_version', '${EARLIEST}')`);
        await db.query("SELECT provenance.register_transform('old_mask', 'public.people', ARRAY['email'], $1)", [SOURCE]);
        await db.query("UPDATE provenance.settings SET value = $1 WHERE key = 'sandbox_runtime_version'", [UNKNOWN]);
        await db.query("SELECT provenance.register_transform('lost_mask', 'public.people', ARRAY['id'], $1)", [SOURCE]);
        await db.query("UPDATE provenance.settings SET value = $1 WHERE key = 'sandbox_runtime_version'", [PREVIOUS]);
        await db.query("SELECT provenance.register_transform('mask', 'public.people', ARRAY['email'], $1)", [SOURCE]);
        await db.query("SELECT provenance.set_transform_params('mask', '{\"keep\": 2}')");
        // What the previous release refused after any upgrade: a change copies the hash of the runtime before.
        const before = BigInt(String((await db.query(
          'SELECT (EXTRACT(epoch FROM pg_catalog.clock_timestamp()) * 1000000)::int8::text AS m')).rows[0]!['m']));

        expect(await migrate(db, SANDBOX_RUNTIME_VERSION)).toEqual([16]);
        const versions = async (): Promise<unknown[]> => (await db.query(
          'SELECT name, version, function_hash, runtime_identity FROM provenance.transform_versions ORDER BY name, version')).rows;
        expect(await versions()).toEqual([
          { name: 'lost_mask', version: 1, function_hash: hashUnder(UNKNOWN), runtime_identity: null },
          { name: 'mask', version: 1, function_hash: hashUnder(PREVIOUS), runtime_identity: PREVIOUS },
          { name: 'mask', version: 2, function_hash: hashUnder(PREVIOUS), runtime_identity: PREVIOUS },
          { name: 'old_mask', version: 1, function_hash: hashUnder(EARLIEST), runtime_identity: EARLIEST },
        ]);

        // As of then: the earlier releases' versions replay here under their hashes; the unrecorded one does not.
        const history = await loadVersionHistory(db);
        const [chain] = [...history.chainsAt(before).values()];
        expect(chain!.table.chain.map((t) => [t.name, t.fn.hash])).toEqual([
          ['old_mask', hashUnder(EARLIEST)], ['lost_mask', hashUnder(UNKNOWN)], ['mask', hashUnder(PREVIOUS)],
        ]);
        expect(chain!.stale).toEqual([{ name: 'lost_mask', version: 1, columns: new Set([1]), runtimeIdentity: null }]);

        // Changes from now on: under the current runtime, hashed again; nothing else is accepted.
        await db.query("SELECT provenance.set_transform_params('old_mask', '{\"keep\": 3}')");
        await db.query("SELECT provenance.disable_transform('mask')");
        await db.query("SELECT provenance.register_transform('new_mask', 'public.people', ARRAY['email'], $1)", [SOURCE]);
        const current = await db.query(`SELECT name, version, function_hash, runtime_identity FROM provenance.transform_versions
          WHERE runtime_identity = $1 ORDER BY name, version`, [SANDBOX_RUNTIME_VERSION]);
        expect(current.rows).toEqual([
          { name: 'mask', version: 3, function_hash: hashUnder(SANDBOX_RUNTIME_VERSION), runtime_identity: SANDBOX_RUNTIME_VERSION },
          { name: 'new_mask', version: 1, function_hash: hashUnder(SANDBOX_RUNTIME_VERSION), runtime_identity: SANDBOX_RUNTIME_VERSION },
          { name: 'old_mask', version: 2, function_hash: hashUnder(SANDBOX_RUNTIME_VERSION), runtime_identity: SANDBOX_RUNTIME_VERSION },
        ]);
        const forged = db.query(`INSERT INTO provenance.transform_version
            (name, version, target_oid, target, columns, column_attnums, source, function_hash, params, position, enabled, runtime_identity)
          SELECT 'new_mask', 2, target_oid, target, columns, column_attnums, source, $1, params, position, enabled, $2
            FROM provenance.transform_version WHERE name = 'new_mask'`, [hashUnder(PREVIOUS), PREVIOUS]);
        await expect(forged).rejects.toMatchObject({ code: '23514' });
      } finally {
        await db.close();
      }
    }, 60_000);
  }
});
