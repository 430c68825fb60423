/** What the history tests share: moments to read as of, and databases of their own at a given schema version. */
import { afterAll } from 'vitest';
import pg from 'pg';
import { MIGRATIONS } from '../../plugins/registry/schema.js';
import { sharedCluster, uniqueName } from './proxy-matrix.js';
import type { PgCluster } from './pg-cluster.js';

/**
 * The database's clock now, as text (a moment to read as of). Returns once the clock has moved
 * past it (PGlite's clock ticks in milliseconds), so the next write is surely later.
 */
export async function moment(c: pg.Client): Promise<string> {
  const m = (await c.query<{ m: string }>('SELECT pg_catalog.clock_timestamp()::text AS m')).rows[0]!.m;
  await new Promise((r) => setTimeout(r, 3));
  return m;
}

export interface OwnDatabases {
  readonly cluster: PgCluster;
  /** A new database of the shared cluster, dropped after the file's tests. */
  create(prefix: string): Promise<string>;
  /** The URL a proxy fronting `database` is given. */
  upstream(database: string): string;
}

export function ownDatabases(): OwnDatabases {
  const cluster = sharedCluster();
  const databases: string[] = [];
  afterAll(async () => {
    for (const d of databases) await cluster.psql(`DROP DATABASE IF EXISTS ${d} WITH (FORCE)`).catch(() => undefined);
  });
  return {
    cluster,
    async create(prefix) {
      const database = uniqueName(prefix);
      await cluster.psql(`CREATE DATABASE ${database}`);
      databases.push(database);
      return database;
    },
    upstream: (database) => cluster.url({ database }).replace(/\?.*$/, '') + '?sslmode=disable',
  };
}

/** The `provenance` schema as the releases before migration `version` left it. */
export async function schemaBefore(su: pg.Client, version: number): Promise<void> {
  await su.query(`CREATE SCHEMA provenance;
    CREATE TABLE provenance.schema_migrations (version integer PRIMARY KEY, description text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT pg_catalog.now());
    DO $$ BEGIN CREATE ROLE provenance_admin NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
  for (const m of MIGRATIONS.filter((x) => x.version < version)) {
    await su.query(m.sql);
    await su.query('INSERT INTO provenance.schema_migrations (version, description) VALUES ($1, $2)', [m.version, m.description]);
  }
  await su.query("INSERT INTO provenance.settings (key, value) VALUES ('sandbox_runtime_version', 'before')");
}
