import { expect, it } from 'vitest';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { INSERT_EXECUTIONS_SQL, insertExecutionsParams, type ExecutionRecord } from '../../plugins/provenance/execution-insert.js';
import { eachUpstream, uniqueName } from '../support/proxy-matrix.js';

/** The columns auditors rely on, in order: a lineage step's, then those of replays (migration 8). */
const LINEAGE_COLUMNS = [
  'id', 'transform_name', 'transform_version', 'function_hash', 'table_name', 'columns', 'input_hash', 'output_hash',
  'rows_in', 'rows_out', 'executed_at', 'duration_ms', 'client_addr', 'user_name', 'roles', 'database',
  'application_name', 'session_id', 'statement_fingerprint', 'params', 'kind', 'trace_id', 'span_id',
  'result_id', 'parent_id', 'chain_end', 'table_oid', 'client_port', 'current_role_name', 'statement_text',
  'outcome', 'error', 'proxy_id', 'recorded_at',
];
const EXECUTIONS_COLUMNS = [...LINEAGE_COLUMNS, 'as_of', 'replay_of', 'verified', 'materialization_id'];

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
const hex = (bytes: number): string => randomBytes(bytes).toString('hex');

/** What places an execution in the DAG; the rest gets plausible defaults. */
type Placement = Pick<ExecutionRecord,
  'result_id' | 'parent_id' | 'chain_end' | 'transform_name' | 'function_hash' | 'table_name' | 'input_hash' | 'output_hash' | 'executed_at'>;

function execution(fields: Placement & Partial<ExecutionRecord>): ExecutionRecord {
  return {
    id: randomUUID(),
    transform_version: 1,
    table_oid: 16_384,
    columns: ['email'],
    rows_in: 10,
    rows_out: 10,
    duration_ms: 0.25,
    client_addr: '127.0.0.1',
    client_port: 50_000,
    user_name: 'alice',
    current_role_name: 'alice',
    roles: ['alice', 'analysts'],
    database: 'app',
    application_name: 'schema.test',
    session_id: '65f1a2b3.4c5d',
    statement_fingerprint: 'a1b2c3d4e5f60718',
    statement_text: 'SELECT id, email FROM customers WHERE id = $1',
    params: ['$1'],
    kind: 'read',
    outcome: 'complete',
    error: null,
    trace_id: hex(16),
    span_id: hex(8),
    proxy_id: 'proxy-test',
    ...fields,
  };
}

/**
 * Two results: R1 reads table A through a chain of three transforms; R2 joins A (one transform,
 * the same as R1's first, on the same data, so it produces the same output hash) and B (two).
 */
function syntheticDag() {
  const tableA = `public.${uniqueName('customers')}`;
  const tableB = `public.${uniqueName('orders')}`;
  const maskEmail = uniqueName('mask_email');
  const maskIban = uniqueName('mask_iban');
  const hideVip = uniqueName('hide_vip');
  const maskCard = uniqueName('mask_card');
  const roundTotal = uniqueName('round_total');
  const fn = (name: string): string => sha256(`function ${name}`);
  // Content hashes, distinct per DAG: the suites of an upstream share one provenance.execution.
  const state = (what: string): string => sha256(`${tableA} ${what}`);
  const dataA = state('A');
  const dataB = state('B');
  const r1 = randomUUID();
  const r2 = randomUUID();
  // One batch: a chain's executions share a timestamp, so only parent_id can order them.
  const t1 = '2031-03-01T10:00:00.000Z';
  const t2 = '2031-03-01T10:05:00.000Z';
  const e1 = execution({ result_id: r1, parent_id: null, chain_end: false, transform_name: maskEmail, function_hash: fn(maskEmail), table_name: tableA, input_hash: dataA, output_hash: state('A after mask_email'), executed_at: t1 });
  const e2 = execution({ result_id: r1, parent_id: e1.id, chain_end: false, transform_name: maskIban, function_hash: fn(maskIban), table_name: tableA, input_hash: e1.output_hash, output_hash: state('A after mask_iban'), executed_at: t1, transform_version: 3, columns: ['iban'] });
  const e3 = execution({ result_id: r1, parent_id: e2.id, chain_end: true, transform_name: hideVip, function_hash: fn(hideVip), table_name: tableA, input_hash: e2.output_hash, output_hash: state('A after hide_vip'), executed_at: t1, columns: null, rows_out: 8 });
  const e4 = execution({ result_id: r2, parent_id: null, chain_end: true, transform_name: maskEmail, function_hash: fn(maskEmail), table_name: tableA, input_hash: dataA, output_hash: e1.output_hash, executed_at: t2 });
  const e5 = execution({ result_id: r2, parent_id: null, chain_end: false, transform_name: maskCard, function_hash: fn(maskCard), table_name: tableB, input_hash: dataB, output_hash: state('B after mask_card'), executed_at: t2, columns: ['card'] });
  const e6 = execution({ result_id: r2, parent_id: e5.id, chain_end: true, transform_name: roundTotal, function_hash: fn(roundTotal), table_name: tableB, input_hash: e5.output_hash, output_hash: state('B after round_total'), executed_at: t2, columns: ['total'] });
  return { tableA, tableB, maskEmail, maskIban, dataA, dataB, r1, r2, e1, e2, e3, e4, e5, e6, all: [e1, e2, e3, e4, e5, e6] };
}

interface Row extends Record<string, unknown> {
  id: string;
}

const ids = (rows: readonly Row[]): string[] => rows.map((r) => r.id);

/** Every executions_of argument above lies within this span. */
const FROM = '2031-03-01T00:00:00Z';
const TO = '2031-03-02T00:00:00Z';

eachUpstream('provenance DAG schema', (t) => {
  async function admin(): Promise<pg.Client> {
    const c = await t().pg();
    await t().proxy.stateReady;
    return c;
  }

  async function record(c: pg.Client, executions: readonly ExecutionRecord[]): Promise<number> {
    return (await c.query(INSERT_EXECUTIONS_SQL, insertExecutionsParams(executions))).rowCount ?? -1;
  }

  it('stores every field of every record of a batch whose records share some fields and not others', async () => {
    const c = await admin();
    const dag = syntheticDag();
    // Some fields shared between records, some not, NULLs where a column allows them, and values
    // that JSON must carry exactly (quotes, non-ASCII, large counts).
    const batch: ExecutionRecord[] = [
      { ...dag.e1, client_addr: null, client_port: null },
      { ...dag.e2, current_role_name: 'auditor', roles: ['alice', 'auditor'], params: { keep: 2, note: 'say "hi" ✓' } },
      { ...dag.e3, session_id: 'other.session', application_name: 'ünïcode app', statement_text: 'SELECT \'x\' FROM "T"' },
      { ...dag.e4, outcome: 'error', error: '38000: boom', rows_in: '9007199254740993', rows_out: 0 },
      dag.e5,
      { ...dag.e6, kind: 'replay', as_of: '2026-10-27T10:00:00.000Z', replay_of: dag.e5.id, verified: false },
    ];
    try {
      expect(await record(c, batch)).toBe(batch.length);
      const stored = await c.query<Record<string, unknown>>(
        `SELECT id::text, result_id::text, parent_id::text, chain_end, transform_name, transform_version, function_hash,
                table_oid::int8 AS table_oid, table_name, columns, encode(input_hash, 'hex') AS input_hash,
                encode(output_hash, 'hex') AS output_hash, rows_in::text, rows_out::text,
                to_char(executed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS executed_at, duration_ms,
                client_addr, client_port, user_name, current_role_name, roles, database, application_name, session_id,
                statement_fingerprint, statement_text, params, kind, outcome, error, trace_id, span_id, proxy_id,
                to_char(as_of AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS as_of, replay_of::text, verified
           FROM provenance.execution WHERE id = ANY($1::uuid[])`,
        [batch.map((r) => r.id)],
      );
      const byId = new Map(stored.rows.map((r) => [r['id'], r]));
      for (const r of batch) {
        expect(byId.get(r.id)).toEqual({
          ...r,
          table_oid: String(r.table_oid),
          rows_in: String(r.rows_in),
          rows_out: String(r.rows_out),
          as_of: r.as_of ?? null,
          replay_of: r.replay_of ?? null,
          verified: r.verified ?? null,
        });
      }
    } finally {
      await c.query('DELETE FROM provenance.execution WHERE id = ANY($1::uuid[])', [batch.map((r) => r.id)]);
      await c.end();
    }
  });

  it('records a batch once, however often it is written', async () => {
    const c = await admin();
    const dag = syntheticDag();
    try {
      const migrations = await c.query('SELECT version, description FROM provenance.schema_migrations WHERE version = 2');
      expect(migrations.rows).toEqual([{ version: 2, description: 'provenance DAG' }]);
      // Out of order: nothing may depend on the order the writer sends a batch in.
      expect(await record(c, [...dag.all].reverse())).toBe(6);
      expect(await record(c, dag.all)).toBe(0);
      expect(await record(c, [dag.e1, dag.e1])).toBe(0);
      // A batch naming a new execution twice records it once.
      const again = { ...dag.e3, id: randomUUID() };
      expect(await record(c, [again, again])).toBe(1);
      const n = await c.query<{ n: string }>('SELECT count(*) AS n FROM provenance.execution WHERE result_id = ANY($1::uuid[])', [[dag.r1, dag.r2]]);
      expect(n.rows[0]!.n).toBe('7');

      const view = await c.query<Row>('SELECT * FROM provenance.executions WHERE id = $1', [dag.e2.id]);
      expect(view.fields.map((f) => f.name)).toEqual(EXECUTIONS_COLUMNS);
      const { executed_at: executedAt, recorded_at: recordedAt, ...rest } = view.rows[0]!;
      const { executed_at: sentAt, ...sent } = dag.e2;
      expect(rest).toEqual({ ...sent, rows_in: '10', rows_out: '10', table_oid: 16_384, as_of: null, replay_of: null, verified: null, materialization_id: null });
      expect(executedAt).toEqual(new Date(sentAt));
      expect(recordedAt).toBeInstanceOf(Date);
      // The table keeps the hashes as 32 raw bytes; the view shows lowercase hex.
      const raw = await c.query<{ len: number }>('SELECT octet_length(input_hash) AS len FROM provenance.execution WHERE id = $1', [dag.e2.id]);
      expect(raw.rows[0]!.len).toBe(32);
      expect(rest['output_hash']).toMatch(/^[0-9a-f]{64}$/);
    } finally {
      await c.end();
    }
  });

  it('answers lineage, lineage_of_output, executions_of, produced, table_history and dag_edges', async () => {
    const c = await admin();
    const dag = syntheticDag();
    const { e1, e2, e3, e4, e5, e6 } = dag;
    try {
      await record(c, dag.all);

      const l1 = await c.query<Row>('SELECT * FROM provenance.lineage($1)', [dag.r1]);
      expect(l1.fields.map((f) => f.name)).toEqual([...LINEAGE_COLUMNS, 'depth']);
      expect(l1.rows.map((r) => [r.id, r['depth']])).toEqual([[e1.id, 1], [e2.id, 2], [e3.id, 3]]);
      // A join: one chain per table, the tables in name order (public.customers_… before
      // public.orders_…), each chain in data-flow order.
      const l2 = await c.query<Row>('SELECT * FROM provenance.lineage($1)', [dag.r2]);
      expect(l2.rows.map((r) => [r.id, r['depth']])).toEqual([[e4.id, 1], [e5.id, 1], [e6.id, 2]]);
      expect((await c.query('SELECT * FROM provenance.lineage($1)', [randomUUID()])).rows).toEqual([]);

      // The output of R1's chain end leads to R1. e1's output hash is also R2's chain end on A
      // (same function, same data): only R2 is a result it produced.
      expect(ids((await c.query<Row>('SELECT * FROM provenance.lineage_of_output($1)', [e3.output_hash])).rows)).toEqual([e1.id, e2.id, e3.id]);
      expect(ids((await c.query<Row>('SELECT * FROM provenance.lineage_of_output($1)', [e1.output_hash.toUpperCase()])).rows)).toEqual(ids(l2.rows));
      expect((await c.query('SELECT * FROM provenance.lineage_of_output($1)', [e2.output_hash])).rows).toEqual([]);

      const byName = await c.query<Row>('SELECT * FROM provenance.executions_of($1, $2, $3)', [dag.maskEmail, FROM, TO]);
      expect(byName.fields.map((f) => f.name)).toEqual(EXECUTIONS_COLUMNS);
      expect(ids(byName.rows)).toEqual([e1.id, e4.id]);
      expect(ids((await c.query<Row>('SELECT * FROM provenance.executions_of($1, $2, $3)', [e2.function_hash, FROM, TO])).rows)).toEqual([e2.id]);
      // [from_ts, to_ts): an execution at to_ts is outside, one at from_ts inside.
      expect(ids((await c.query<Row>('SELECT * FROM provenance.executions_of($1, $2, $3)', [dag.maskEmail, e1.executed_at, e4.executed_at])).rows)).toEqual([e1.id]);

      expect(ids((await c.query<Row>('SELECT * FROM provenance.produced($1)', [e1.output_hash])).rows)).toEqual([e1.id, e4.id]);
      expect(ids((await c.query<Row>('SELECT * FROM provenance.produced($1)', [e6.output_hash])).rows)).toEqual([e6.id]);
      await expect(c.query('SELECT * FROM provenance.produced($1)', ['not hex'])).rejects.toMatchObject({ code: '22023' });

      const unqualified = dag.tableA.slice('public.'.length);
      for (const name of [dag.tableA, unqualified]) {
        const h = await c.query<Row>('SELECT * FROM provenance.table_history($1, $2, $3)', [name, FROM, TO]);
        expect(h.rows.map((r) => r['executed_at'])).toEqual([e1, e2, e3, e4].map((e) => new Date(e.executed_at)));
        expect(new Set(ids(h.rows))).toEqual(new Set([e1.id, e2.id, e3.id, e4.id]));
      }
      expect((await c.query('SELECT * FROM provenance.table_history($1, $2, $3)', [dag.tableB, e6.executed_at, e6.executed_at])).rows).toEqual([]);

      const edges = async (result: string): Promise<string[]> => {
        const r = await c.query<{ from_node: string; to_node: string }>('SELECT from_node, to_node FROM provenance.dag_edges WHERE result_id = $1', [result]);
        return r.rows.map((e) => `${e.from_node} -> ${e.to_node}`).sort();
      };
      const x = (e: ExecutionRecord): string => `execution:${e.id}`;
      expect(await edges(dag.r1)).toEqual([
        `data:${dag.tableA}:${dag.dataA} -> ${x(e1)}`,
        `${x(e1)} -> ${x(e2)}`,
        `${x(e2)} -> ${x(e3)}`,
        `${x(e3)} -> result:${dag.r1}`,
      ].sort());
      // Two chains meeting in one result node; the data node of A is the one R1 read as well.
      expect(await edges(dag.r2)).toEqual([
        `data:${dag.tableA}:${dag.dataA} -> ${x(e4)}`,
        `${x(e4)} -> result:${dag.r2}`,
        `data:${dag.tableB}:${dag.dataB} -> ${x(e5)}`,
        `${x(e5)} -> ${x(e6)}`,
        `${x(e6)} -> result:${dag.r2}`,
      ].sort());
    } finally {
      await c.end();
    }
  });

  it('lists an execution whose parent is missing last in its result, with depth NULL', async () => {
    const c = await admin();
    const dag = syntheticDag();
    try {
      const stray = { ...dag.e2, id: randomUUID(), parent_id: randomUUID(), executed_at: '2031-02-01T00:00:00.000Z' };
      await record(c, [dag.e1, dag.e2, dag.e3, stray]);
      const l = await c.query<Row>('SELECT id, depth FROM provenance.lineage($1)', [dag.r1]);
      expect(l.rows).toEqual([{ id: dag.e1.id, depth: 1 }, { id: dag.e2.id, depth: 2 }, { id: dag.e3.id, depth: 3 }, { id: stray.id, depth: null }]);
    } finally {
      await c.end();
    }
  });

  it('lets provenance_admin read and nobody but the owner write (42501 otherwise)', async () => {
    const c = await admin();
    const role = uniqueName('auditor');
    const dag = syntheticDag();
    try {
      await record(c, dag.all);
      await c.query(`CREATE ROLE ${role} LOGIN PASSWORD 'auditor-pw'`);
      const asRole = await t().pg({ user: role, password: 'auditor-pw' });
      try {
        for (const sql of [
          'SELECT * FROM provenance.executions LIMIT 1',
          'SELECT * FROM provenance.dag_edges LIMIT 1',
          'SELECT * FROM provenance.execution LIMIT 1',
        ]) {
          await expect(asRole.query(sql)).rejects.toMatchObject({ code: '42501' });
        }
        await expect(asRole.query('SELECT * FROM provenance.lineage($1)', [dag.r1])).rejects.toMatchObject({ code: '42501' });
        await expect(asRole.query(INSERT_EXECUTIONS_SQL, insertExecutionsParams([{ ...dag.e1, id: randomUUID() }]))).rejects.toMatchObject({ code: '42501' });

        await c.query(`GRANT provenance_admin TO ${role}`);
        expect(ids((await asRole.query<Row>('SELECT * FROM provenance.executions WHERE result_id = $1 ORDER BY id', [dag.r1])).rows)).toEqual([dag.e1.id, dag.e2.id, dag.e3.id].sort());
        expect((await asRole.query('SELECT * FROM provenance.lineage($1)', [dag.r1])).rows).toHaveLength(3);
        expect((await asRole.query('SELECT * FROM provenance.dag_edges WHERE result_id = $1', [dag.r1])).rows).toHaveLength(4);
        // The record is append-only: admins read it, but cannot add, change or remove executions.
        await expect(asRole.query(INSERT_EXECUTIONS_SQL, insertExecutionsParams([{ ...dag.e1, id: randomUUID() }]))).rejects.toMatchObject({ code: '42501' });
        await expect(asRole.query('UPDATE provenance.execution SET error = NULL WHERE id = $1', [dag.e1.id])).rejects.toMatchObject({ code: '42501' });
        await expect(asRole.query('DELETE FROM provenance.execution WHERE id = $1', [dag.e1.id])).rejects.toMatchObject({ code: '42501' });
      } finally {
        await asRole.end();
      }
    } finally {
      await c.end();
    }
  });

  it('answers every query from an index (EXPLAIN, a few thousand executions, seqscan off)', async () => {
    const c = await admin();
    const dags = Array.from({ length: 500 }, () => syntheticDag());
    const sample = dags[0]!;
    try {
      await record(c, dags.flatMap((d) => d.all));
      await c.query('ANALYZE provenance.execution_log, provenance.executed_transform, provenance.execution_context, provenance.statement');
      await c.query('BEGIN');
      await c.query('SET LOCAL enable_seqscan = off');
      const plan = async (sql: string, params: unknown[]): Promise<string> =>
        (await c.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, params)).rows.map((r) => r['QUERY PLAN']).join('\n');
      const cases: [string, unknown[], string[]][] = [
        ['SELECT * FROM provenance.lineage($1)', [sample.r2], ['execution_result']],
        ['SELECT * FROM provenance.lineage_of_output($1)', [sample.e6.output_hash], ['execution_output', 'execution_result']],
        ['SELECT * FROM provenance.executions_of($1, $2, $3)', [sample.maskEmail, FROM, TO], ['executed_transform_name', 'executed_transform_function', 'execution_transform']],
        ['SELECT * FROM provenance.produced($1)', [sample.e1.output_hash], ['execution_output']],
        ['SELECT * FROM provenance.table_history($1, $2, $3)', [sample.tableA, FROM, TO], ['executed_transform_table', 'execution_transform']],
        ['SELECT * FROM provenance.dag_edges WHERE result_id = $1', [sample.r2], ['execution_result']],
        // From a span to its execution: spans carry the execution's id.
        ['SELECT * FROM provenance.executions WHERE id = $1', [sample.e1.id], ['execution_log_pkey']],
        // The replay check's lookup.
        ['SELECT id FROM provenance.execution WHERE input_hash = decode($1, \'hex\')', [sample.e1.input_hash], ['execution_input']],
      ];
      for (const [sql, params, indexes] of cases) {
        const p = await plan(sql, params);
        // A Function Scan would mean the function was not inlined, and its plan not shown here.
        expect(p, sql).not.toMatch(/Seq Scan|Function Scan/);
        for (const index of indexes) expect(p, sql).toMatch(new RegExp(`Index (Only )?Scan (using|on) ${index}\\b`));
      }
      await c.query('COMMIT');
    } finally {
      await c.query('ROLLBACK').catch(() => undefined);
      await c.end();
    }
  });
});
