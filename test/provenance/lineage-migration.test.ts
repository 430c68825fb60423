/**
 * Migration 10 carries executions recorded in the wide layout over to slim rows: every view and
 * audit function answers as before, and the parts it stored are the ones the writer names.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createHash, randomUUID } from 'node:crypto';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import { MIGRATIONS } from '../../plugins/registry/schema.js';
import { INSERT_EXECUTIONS_SQL, insertExecutionsParams, type ExecutionRecord } from '../../plugins/provenance/execution-insert.js';
import { sharedCluster, uniqueName } from '../support/proxy-matrix.js';

interface Db {
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

const SLIM = 10;
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => undefined);
});

async function postgresDb(): Promise<Db> {
  const cluster = sharedCluster();
  const database = uniqueName('slimdb');
  const su = new pg.Client({ connectionString: cluster.url({ database: 'postgres' }) });
  await su.connect();
  await su.query(`CREATE DATABASE ${database}`);
  cleanup.push(async () => {
    await su.query(`DROP DATABASE ${database} WITH (FORCE)`);
    await su.end();
  });
  const c = new pg.Client({ connectionString: cluster.url({ database }) });
  await c.connect();
  return {
    query: async (sql, params) => (await c.query(sql, params)).rows as Record<string, unknown>[],
    exec: async (sql) => void (await c.query(sql)),
    close: () => c.end(),
  };
}

async function pgliteDb(): Promise<Db> {
  const db = await PGlite.create();
  return {
    query: async (sql, params) => (await db.query<Record<string, unknown>>(sql, params)).rows,
    exec: async (sql) => void (await db.exec(sql)),
    close: () => db.close(),
  };
}

/** Executions in the layout before migration 10: two chains sharing transforms, sessions, statements. */
function oldRows(): Record<string, unknown>[] {
  const base = {
    transform_version: 1, function_hash: sha('f'), table_oid: 16_384, table_name: 'public.customers', columns: ['email'],
    rows_in: 3, rows_out: 3, duration_ms: 0.5, client_addr: '10.0.0.1', client_port: 5000, user_name: 'alice',
    current_role_name: 'alice', roles: ['alice', 'auditor'], database: 'app', application_name: 'psql ✓',
    session_id: 's1', statement_fingerprint: 'fp1', statement_text: 'SELECT email FROM customers WHERE id = $1',
    params: { keep: 2, note: 'a "b"' }, kind: 'read', outcome: 'complete', error: null, proxy_id: 'p1',
    as_of: null, replay_of: null, verified: null,
  };
  const rows: Record<string, unknown>[] = [];
  for (let i = 0; i < 4; i++) {
    const first = randomUUID();
    const result = randomUUID();
    const input = sha(`data ${i % 2}`);
    const out1 = sha(`out1 ${i % 2}`);
    rows.push({ ...base, id: first, result_id: result, parent_id: null, chain_end: false, transform_name: 'mask_email',
      input_hash: `\\x${input}`, output_hash: `\\x${out1}`, executed_at: `2030-01-0${i + 1}T10:00:00Z`, trace_id: sha(`t${i}`).slice(0, 32),
      span_id: sha(`s${i}`).slice(0, 16), session_id: i < 2 ? 's1' : 's2', recorded_at: '2030-01-10T00:00:00Z' });
    rows.push({ ...base, id: randomUUID(), result_id: result, parent_id: first, chain_end: true, transform_name: 'hide_vip',
      function_hash: sha('g'), columns: null, params: {}, input_hash: `\\x${out1}`, output_hash: `\\x${sha(`out2 ${i}`)}`,
      executed_at: `2030-01-0${i + 1}T10:00:00Z`, trace_id: sha(`t${i}`).slice(0, 32), span_id: sha(`u${i}`).slice(0, 16),
      error: i === 3 ? 'boom' : null, outcome: i === 3 ? 'error' : 'complete', recorded_at: '2030-01-10T00:00:00Z' });
  }
  return rows;
}

/** Everything an auditor can ask, as text so that both layouts compare exactly. */
async function answers(db: Db, rows: Record<string, unknown>[]): Promise<unknown[]> {
  const text = async (sql: string, params: unknown[] = []): Promise<string[]> =>
    (await db.query(`SELECT q::text AS t FROM (${sql}) q`, params)).map((r) => String(r['t']));
  const result = String(rows[0]!['result_id']);
  const out = String(rows[0]!['output_hash']).slice(2);
  return [
    await text('SELECT * FROM provenance.executions ORDER BY id'),
    await text('SELECT * FROM provenance.dag_edges ORDER BY 1, 2, 3'),
    await text('SELECT * FROM provenance.lineage($1)', [result]),
    await text('SELECT * FROM provenance.lineage_of_output($1)', [String(rows[1]!['output_hash']).slice(2)]),
    await text('SELECT * FROM provenance.produced($1)', [out]),
    await text("SELECT * FROM provenance.executions_of('mask_email', '2030-01-01', '2030-01-03')"),
    await text('SELECT * FROM provenance.executions_of($1, $2, $3)', [sha('g'), '2030-01-01', '2031-01-01']),
    await text("SELECT * FROM provenance.table_history('customers', '2030-01-02', '2031-01-01')"),
  ];
}

describe('migration 10: slim execution rows', () => {
  for (const [kind, open] of [['postgres', postgresDb], ['embedded', pgliteDb]] as const) {
    it(`carries recorded executions over with every answer unchanged [${kind}]`, async () => {
      const db = await open();
      try {
        await db.exec(`CREATE SCHEMA provenance;
          DO $$ BEGIN CREATE ROLE provenance_admin NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;`);
        for (const m of MIGRATIONS.filter((m) => m.version < SLIM)) await db.exec(m.sql);
        const rows = oldRows();
        await db.query('INSERT INTO provenance.execution SELECT * FROM json_populate_recordset(NULL::provenance.execution, $1::json)', [JSON.stringify(rows)]);
        const before = await answers(db, rows);
        expect((before[0] as string[]).length).toBe(rows.length);

        await db.exec(MIGRATIONS.find((m) => m.version === SLIM)!.sql);
        expect(await answers(db, rows)).toEqual(before);
        const parts = async (): Promise<unknown> =>
          (await db.query(`SELECT (SELECT count(*) FROM provenance.executed_transform)::int AS t,
            (SELECT count(*) FROM provenance.execution_context)::int AS x, (SELECT count(*) FROM provenance.statement)::int AS s`))[0];
        // Two transforms; sessions s1 and s2 (the second execution of a chain keeps s1); one statement.
        expect(await parts()).toEqual({ t: 2, x: 2, s: 1 });

        // The writer names the same parts for the same content: nothing is stored twice (with
        // the migrations after this one, which the writer of this version needs).
        for (const m of MIGRATIONS.filter((m) => m.version > SLIM)) await db.exec(m.sql);
        const again: ExecutionRecord = {
          ...(rows[0] as unknown as ExecutionRecord), id: randomUUID(), input_hash: sha('new in'), output_hash: sha('new out'),
          executed_at: '2030-02-01T00:00:00.000Z',
        };
        expect((await db.query(INSERT_EXECUTIONS_SQL, insertExecutionsParams([again])))).toEqual([]);
        expect(await parts()).toEqual({ t: 2, x: 2, s: 1 });
        expect((await db.query('SELECT count(*)::int AS n FROM provenance.execution_log'))[0]).toEqual({ n: rows.length + 1 });
      } finally {
        await db.close();
      }
    });
  }
});
