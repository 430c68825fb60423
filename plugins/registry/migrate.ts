/** Creates and upgrades the `provenance` schema: each pending migration once, in order. */
import { MIGRATIONS } from './schema.js';

/** The proxy's own SQL access to the database that holds its state. */
export interface SqlRunner {
  /**
   * One statement. `prepare` names a statement run again and again on this connection: a server
   * that supports it parses and plans it once (the name must always come with the same SQL).
   */
  query(sql: string, params?: readonly unknown[], prepare?: string): Promise<{ rows: Record<string, unknown>[] }>;
  /** Several statements, no parameters, no result. */
  exec(sql: string): Promise<void>;
}

/** Every proxy starting on the database takes this lock, so migrations never run twice. */
const MIGRATION_LOCK = "pg_catalog.hashtext('provenance-proxy migrations')";

export async function migrate(db: SqlRunner, sandboxRuntimeVersion: string): Promise<number[]> {
  await db.exec('BEGIN');
  try {
    await db.exec(`
      SELECT pg_catalog.pg_advisory_xact_lock(${MIGRATION_LOCK});
      CREATE SCHEMA IF NOT EXISTS provenance;
      CREATE TABLE IF NOT EXISTS provenance.schema_migrations (
        version integer PRIMARY KEY,
        description text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT pg_catalog.now()
      );
      DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'provenance_admin') THEN
          CREATE ROLE provenance_admin NOLOGIN;
        END IF;
      EXCEPTION WHEN duplicate_object THEN
        NULL; -- roles are cluster-wide: a proxy on another database of the cluster made it first
      END $$;`);
    const done = new Set((await db.query('SELECT version FROM provenance.schema_migrations')).rows.map((r) => Number(r['version'])));
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      await db.exec(m.sql);
      await db.query('INSERT INTO provenance.schema_migrations (version, description) VALUES ($1, $2)', [m.version, m.description]);
      applied.push(m.version);
    }
    await db.query(
      `INSERT INTO provenance.settings (key, value) VALUES ('sandbox_runtime_version', $1)
       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
      [sandboxRuntimeVersion],
    );
    // The database owner may manage transforms too, as the documentation promises.
    await db.exec(`
      DO $$ DECLARE owner name; BEGIN
        SELECT r.rolname INTO owner FROM pg_catalog.pg_database d JOIN pg_catalog.pg_roles r ON r.oid = d.datdba
         WHERE d.datname = pg_catalog.current_database() AND NOT r.rolsuper;
        IF owner IS NOT NULL AND NOT pg_catalog.pg_has_role(owner, 'provenance_admin', 'MEMBER') THEN
          EXECUTE pg_catalog.format('GRANT provenance_admin TO %I', owner);
        END IF;
      END $$;`);
    await db.exec('COMMIT');
    return applied;
  } catch (err) {
    await db.exec('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
