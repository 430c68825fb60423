/**
 * Execution records written with COPY on PostgreSQL (plugins/provenance/execution-copy.ts): every
 * field arrives as the JSON insert stores it, whatever characters it holds, and a batch is recorded
 * once however often it is written, also when its connection dies in the middle of the COPY.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { connectRemoteStore, type StateStore } from '../../proxy/state-store.js';
import { parseUpstreamUrl } from '../../proxy/upstream/remote.js';
import { migrate } from '../../plugins/registry/migrate.js';
import { writeExecutions } from '../../plugins/provenance/execution-writer.js';
import { INSERT_EXECUTIONS_SQL, insertExecutionsParams, type ExecutionRecord } from '../../plugins/provenance/execution-insert.js';
import { sharedCluster, uniqueName } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';

function record(fields: Partial<ExecutionRecord> = {}): ExecutionRecord {
  return {
    id: randomUUID(), result_id: randomUUID(), parent_id: null, chain_end: true, transform_name: 'mask', transform_version: 1,
    function_hash: 'ab'.repeat(32), table_oid: 16_384, table_name: 'public.people', columns: ['email'],
    input_hash: 'cd'.repeat(32), output_hash: 'ef'.repeat(32), rows_in: 3, rows_out: 3, executed_at: '2031-03-01T10:00:00.000Z',
    duration_ms: 0.25, client_addr: '127.0.0.1', client_port: 50_000, user_name: 'alice', current_role_name: 'alice',
    roles: ['alice', 'readers'], database: 'app', application_name: 'copy.test', session_id: 's1.1',
    statement_fingerprint: '0123456789abcdef', statement_text: 'SELECT email FROM people', params: { keep: 2 }, kind: 'read',
    outcome: 'complete', error: null, trace_id: '12'.repeat(16), span_id: '34'.repeat(8), proxy_id: 'p1', ...fields,
  };
}

/** What the view shows of a record, without what differs between two writes of equal content. */
const VIEW = `SELECT transform_name, transform_version, function_hash, table_oid::int8 AS table_oid, table_name, columns,
       encode(input_hash, 'hex') AS input_hash, encode(output_hash, 'hex') AS output_hash, rows_in::text, rows_out::text,
       executed_at, duration_ms, client_addr, client_port, user_name, current_role_name, roles, database, application_name,
       session_id, statement_fingerprint, statement_text, params, kind, outcome, error, trace_id, span_id, proxy_id,
       as_of, verified, parent_id IS NULL AS root, replay_of IS NULL AS original, materialization_id
  FROM provenance.execution WHERE id = $1`;

describe('execution records written with COPY [postgres]', () => {
  const database = uniqueName('copy_writes');
  let store: StateStore;
  let admin: pg.Client;
  /** Every batch by COPY, however small, counting the transactions that carry them. */
  let copies = 0;
  const write = (db: StateStore, batch: readonly ExecutionRecord[]): Promise<void> => writeExecutions({
    query: (sql, params, prepare) => db.query(sql, params, prepare),
    exec: (sql) => db.exec(sql),
    transaction: (body) => (copies++, db.transaction!(body)),
  }, batch, 1);
  const url = (): string => sharedCluster().url({ database });
  const connect = (): Promise<StateStore> => connectRemoteStore(url(), parseUpstreamUrl(url()));

  beforeAll(async () => {
    await sharedCluster().psql(`CREATE DATABASE ${database}`);
    store = await connect();
    await migrate(store, 'test');
    admin = new pg.Client({ connectionString: url() });
    await admin.connect();
  }, 60_000);
  afterAll(async () => {
    await store?.close().catch(() => undefined);
    await admin?.end();
    await sharedCluster().psql(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  });

  const count = async (ids: readonly string[]): Promise<number> =>
    Number((await admin.query<{ n: string }>('SELECT count(*) AS n FROM provenance.execution_log WHERE id = ANY($1::uuid[])', [ids])).rows[0]!.n);

  it('takes the COPY path, and stores every field as the insert does, characters COPY escapes included', async () => {
    expect(typeof store.transaction).toBe('function');
    const nasty = 'tab\there, line\nbreak, cr\r, back\\slash \\N, "quotes", {braces}, ünï ✓';
    const variants: Partial<ExecutionRecord>[] = [
      {},
      { statement_text: nasty, application_name: nasty, error: nasty, outcome: 'error', roles: [nasty, 'NULL', '', 'a,b'] },
      { params: nasty, columns: null, client_addr: null, client_port: null, current_role_name: null },
      { params: { note: nasty, list: [1, null, 'x'] }, rows_in: '9007199254740993', rows_out: 0, duration_ms: 1e-7 },
      { kind: 'replay', as_of: '2026-10-27T10:00:00.000Z', replay_of: randomUUID(), verified: false, parent_id: randomUUID() },
      { kind: 'materialized', as_of: '2026-10-27T10:00:00.000Z', materialization_id: 42 },
      {
        statement_at: '2031-03-01T09:59:59.500Z', exact_text: `SELECT email FROM people WHERE note = $1 -- ${nasty}`,
        exact_types: [25], exact_formats: [0], exact_values: ['\\x7461620968657265'], exact_refusal: null,
      },
      { statement_at: '2031-03-01T09:59:59.500Z', exact_text: null, exact_types: null, exact_formats: null, exact_values: null, exact_refusal: 'a cursor' },
    ];
    for (const v of variants) {
      const viaCopy = record(v);
      const viaInsert = record(v);
      await write(store, [viaCopy]);
      await admin.query(INSERT_EXECUTIONS_SQL, insertExecutionsParams([viaInsert]));
      const copied = (await admin.query(VIEW, [viaCopy.id])).rows;
      expect(copied).toHaveLength(1);
      expect(copied).toEqual((await admin.query(VIEW, [viaInsert.id])).rows);
      const exact = async (id: string): Promise<unknown[]> => (await admin.query(
        `SELECT l.statement_at, q.* FROM provenance.execution_log l LEFT JOIN provenance.exact_statement q ON q.key = l.exact_key
          WHERE l.id = $1`, [id])).rows;
      const copiedExact = await exact(viaCopy.id);
      expect(copiedExact).toEqual(await exact(viaInsert.id));
      if (v.exact_text) expect(copiedExact[0]).toMatchObject({ key: expect.any(String), statement_text: v.exact_text });
    }
    expect(copies).toBe(variants.length);
  });

  it('records a batch once however often it is written, and nothing of a write whose connection died', async () => {
    const batch = Array.from({ length: 50 }, (_, i) => record({ session_id: `s${i % 3}` }));
    const ids = batch.map((r) => r.id);
    await write(store, batch);
    await write(store, batch);
    await write(store, [...batch].reverse().slice(0, 10));
    expect(await count(ids)).toBe(50);

    // A write held in its COPY (the log is locked), its backend then terminated.
    const next = Array.from({ length: 50 }, () => record());
    const nextIds = next.map((r) => r.id);
    const victim = await connect();
    await write(victim, [batch[0]!]);
    const pid = Number((await victim.query('SELECT pg_backend_pid() AS pid')).rows[0]!['pid']);
    await admin.query('BEGIN');
    await admin.query('LOCK TABLE provenance.execution_log IN EXCLUSIVE MODE');
    const cut = write(victim, [...next, ...batch.slice(0, 5)]);
    cut.catch(() => undefined);
    const waiting = await eventually(
      // Read afresh: in a transaction, activity is a snapshot taken at the first read.
      async () => (await admin.query('SELECT pg_stat_clear_snapshot()'), await admin.query("SELECT query FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND wait_event_type = 'Lock'", [pid])).rows,
      (r) => r.length === 1,
    );
    expect(waiting[0]!['query']).toContain('COPY provenance.execution_log');
    await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    await admin.query('COMMIT');
    await expect(cut).rejects.toThrow();
    expect(await count(nextIds)).toBe(0);

    // Written again on a new connection: once, with the records of the first batch it repeats
    // (the COPY meets them and the batch goes through the insert).
    const again = await connect();
    await write(again, [...next, ...batch.slice(0, 5)]);
    expect(await count(nextIds)).toBe(50);
    expect(await count(ids)).toBe(50);
    await again.close();
  });
});
