/**
 * The writer names the transforms, contexts and statements it knows stored by their keys
 * (plugins/provenance/known-parts.ts): a session's later batches carry none of them, only their
 * exact statements, and every record reads back as the all-in-one statement stores it. What a
 * connection learnt is not taken for known on another, nor after one of its writes failed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import { migrate, type SqlRunner } from '../../plugins/registry/migrate.js';
import { writeExecutions } from '../../plugins/provenance/execution-writer.js';
import { INSERT_EXECUTIONS_SQL, insertExecutionsParams, type ExecutionRecord } from '../../plugins/provenance/execution-insert.js';
import { sharedCluster, uniqueName } from '../support/proxy-matrix.js';

interface Db {
  readonly runner: SqlRunner;
  /** The parameters of every statement the runner was given since the last call. */
  taken(): { sql: string; params: readonly unknown[] }[];
  close(): Promise<void>;
}

function spied(query: SqlRunner['query'], exec: SqlRunner['exec'], close: () => Promise<void>): Db {
  let log: { sql: string; params: readonly unknown[] }[] = [];
  return {
    runner: {
      query: (sql, params = [], prepare) => (log.push({ sql, params }), query(sql, params, prepare)),
      exec,
    },
    taken: () => [log, (log = [])][0]!,
    close,
  };
}

const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => undefined);
});

async function postgresDb(): Promise<Db> {
  const database = uniqueName('known_parts');
  await sharedCluster().psql(`CREATE DATABASE ${database}`);
  cleanup.push(() => sharedCluster().psql(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).then(() => undefined));
  const open = async (): Promise<Db> => {
    const c = new pg.Client({ connectionString: sharedCluster().url({ database }) });
    await c.connect();
    return spied(async (sql, params) => ({ rows: (await c.query(sql, [...(params ?? [])])).rows as Record<string, unknown>[] }),
      async (sql) => void (await c.query(sql)), () => c.end());
  };
  return open();
}

async function embeddedDb(): Promise<Db> {
  const db = await PGlite.create();
  return spied(async (sql, params) => ({ rows: (await db.query<Record<string, unknown>>(sql, [...(params ?? [])])).rows }),
    async (sql) => void (await db.exec(sql)), () => db.close());
}

function lookup(session: string, key: number): ExecutionRecord {
  return {
    id: randomUUID(), result_id: randomUUID(), parent_id: null, chain_end: true, transform_name: 'mask', transform_version: 1,
    function_hash: 'ab'.repeat(32), table_oid: 16_384, table_name: 'public.people', columns: ['email'],
    input_hash: randomUUID().replaceAll('-', '').repeat(2), output_hash: 'ef'.repeat(32), rows_in: 1, rows_out: 1,
    executed_at: '2031-03-01T10:00:00.000Z', duration_ms: 0.25, client_addr: '127.0.0.1', client_port: 50_000, user_name: 'alice',
    current_role_name: 'alice', roles: ['alice', 'readers'], database: 'app', application_name: 'known.test', session_id: session,
    statement_fingerprint: '0123456789abcdef', statement_text: 'SELECT email FROM people WHERE id = $1', params: { keep: 2 },
    kind: 'read', outcome: 'complete', error: null, trace_id: '12'.repeat(16), span_id: '34'.repeat(8), proxy_id: 'p1',
    statement_at: '2031-03-01T09:59:59.500Z', exact_text: `SELECT email FROM people WHERE id = ${key}`, exact_types: [],
    exact_formats: [], exact_values: [], exact_refusal: null, exact_query_statement: null, exact_query_statements: null,
  };
}

/** Everything the view and the exact statement show of a record, without what differs between two writes of equal content. */
const READ_BACK = `SELECT e.transform_name, e.transform_version, e.function_hash, e.table_oid::int8 AS table_oid, e.table_name, e.columns,
       e.input_hash, e.rows_in::text, e.executed_at, e.client_addr, e.client_port, e.user_name,
       e.current_role_name, e.roles, e.database, e.application_name, e.session_id, e.statement_fingerprint, e.statement_text,
       e.params, e.kind, e.proxy_id, l.statement_at, q.statement_text AS exact_text, q.param_values, q.refusal
  FROM provenance.executions e JOIN provenance.execution_log l USING (id)
  LEFT JOIN provenance.exact_statement q ON q.key = l.exact_key
 WHERE e.id = $1`;

/** The parts a statement's parameters name by content: its one parameter that is a JSON object of them. */
function partsSent(params: readonly unknown[]): Record<string, unknown[]> {
  const objects = params.filter((p) => typeof p === 'string').map((p) => JSON.parse(p) as unknown)
    .filter((v) => typeof v === 'object' && v !== null && !Array.isArray(v));
  expect(objects).toHaveLength(1);
  return objects[0] as Record<string, unknown[]>;
}

describe.each([['postgres', postgresDb], ['embedded', embeddedDb]] as const)('known parts [%s]', (_name, open) => {
  let db: Db;
  beforeAll(async () => {
    db = await open();
    await migrate(db.runner, 'test');
    db.taken();
  }, 60_000);
  afterAll(() => db?.close());

  it("sends a session's transform, context and statement once, and its records read back as the all-in-one statement stores them", async () => {
    const first = [lookup('s1', 1), lookup('s2', 2)];
    await writeExecutions(db.runner, first, Infinity);
    // One statement stores the parts it does not know with the records, and answers their keys.
    const firstSent = db.taken().map((s) => partsSent(s.params));
    expect(firstSent).toHaveLength(1);
    expect(firstSent[0]).toMatchObject({ t: [expect.anything()], s: [expect.anything()] });
    expect(firstSent[0]!['x']).toHaveLength(2);

    const later = [lookup('s1', 3), lookup('s2', 4), lookup('s1', 5)];
    await writeExecutions(db.runner, later, Infinity);
    const laterSent = db.taken();
    expect(laterSent).toHaveLength(1);
    const sent = partsSent(laterSent[0]!.params);
    expect(Object.keys(sent)).toEqual(['q']);
    expect(sent['q']).toHaveLength(3);

    // The same records again, through the statement that stores every part by content.
    for (const r of [...first, ...later]) {
      const twin = { ...r, id: randomUUID() };
      await db.runner.query(INSERT_EXECUTIONS_SQL, insertExecutionsParams([twin]));
      const [mine, theirs] = [(await db.runner.query(READ_BACK, [r.id])).rows, (await db.runner.query(READ_BACK, [twin.id])).rows];
      expect(mine).toHaveLength(1);
      expect(mine).toEqual(theirs);
      expect(mine[0]).toMatchObject({ transform_name: 'mask', session_id: r.session_id, exact_text: r.exact_text });
    }
    // Each part stored once, whichever statement wrote it.
    const counts = (await db.runner.query(`SELECT (SELECT count(*) FROM provenance.executed_transform)::int AS t,
      (SELECT count(*) FROM provenance.execution_context)::int AS x, (SELECT count(*) FROM provenance.statement)::int AS s`)).rows[0];
    expect(counts).toEqual({ t: 1, x: 2, s: 1 });
  });

  it('takes nothing for known once a write failed (the schema may have been made again)', async () => {
    await writeExecutions(db.runner, [lookup('s4', 8)], Infinity);
    await writeExecutions(db.runner, [lookup('s4', 9)], Infinity);
    expect(Object.keys(partsSent(db.taken().at(-1)!.params))).toEqual(['q']);
    await expect(writeExecutions(db.runner, [{ ...lookup('s4', 10), outcome: 'bogus' as 'error' }], Infinity)).rejects.toThrow();
    db.taken();
    await writeExecutions(db.runner, [lookup('s4', 11)], Infinity);
    const sent = db.taken().map((s) => partsSent(s.params));
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ t: [expect.anything()], x: [expect.anything()], s: [expect.anything()] });
  });

  it('stores a batch by content when a part it knew stored is gone (a store made again behind the connection)', async () => {
    await writeExecutions(db.runner, [lookup('s5', 12)], Infinity);
    await writeExecutions(db.runner, [lookup('s5', 13)], Infinity);
    expect(Object.keys(partsSent(db.taken().at(-1)!.params))).toEqual(['q']);
    await db.runner.query("DELETE FROM provenance.execution_context WHERE session_id = 's5'");
    db.taken();
    const after = lookup('s5', 14);
    await writeExecutions(db.runner, [after], Infinity);
    // The named write wrote nothing and said so; the batch went again with every part.
    const sent = db.taken().map((s) => partsSent(s.params));
    expect(sent.map((p) => Object.keys(p).sort())).toEqual([['q'], ['q', 's', 't', 'x']]);
    expect((await db.runner.query(READ_BACK, [after.id])).rows).toMatchObject([{ session_id: 's5', exact_text: after.exact_text }]);
    // Known again from then on.
    await writeExecutions(db.runner, [lookup('s5', 15)], Infinity);
    expect(Object.keys(partsSent(db.taken().at(-1)!.params))).toEqual(['q']);
  });

  it('takes nothing for known on another connection, and records a batch once however often it is written', async () => {
    const other = spied(db.runner.query.bind(db.runner), db.runner.exec.bind(db.runner), () => Promise.resolve());
    const batch = [lookup('s3', 6), lookup('s3', 7)];
    await writeExecutions(other.runner, batch, Infinity);
    const sent = other.taken().map((s) => partsSent(s.params));
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ t: [expect.anything()], x: [expect.anything()], s: [expect.anything()] });
    await writeExecutions(other.runner, batch, Infinity);
    await writeExecutions(db.runner, batch, Infinity);
    const n = (await db.runner.query('SELECT count(*)::int AS n FROM provenance.execution_log WHERE id = ANY($1::uuid[])', [batch.map((r) => r.id)])).rows[0];
    expect(n).toEqual({ n: 2 });
  });
});
