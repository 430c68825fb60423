/**
 * Execution records through the proxy, on both upstreams: what each record holds, the DAG's
 * shape, hashes that do not depend on the client or the result format, and an auditor's
 * recomputation of a hash in SQL.
 */
import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { uniqueName, useTarget, type Target } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';

interface Exec {
  id: string;
  result_id: string;
  parent_id: string | null;
  chain_end: boolean;
  transform_name: string;
  transform_version: number;
  function_hash: string;
  table_name: string;
  columns: string[] | null;
  input_hash: string;
  output_hash: string;
  rows_in: string;
  rows_out: string;
  client_addr: string;
  user_name: string;
  current_role_name: string;
  roles: string[];
  database: string;
  application_name: string;
  session_id: string;
  statement_fingerprint: string;
  statement_text: string;
  params: unknown;
  kind: string;
  outcome: string;
  trace_id: string;
  span_id: string;
}

async function executions(c: pg.Client, where: string, params: unknown[] = []): Promise<Exec[]> {
  const r = await c.query<Exec>(`SELECT * FROM provenance.executions WHERE ${where} ORDER BY executed_at, transform_name`, params);
  return r.rows;
}

const MASK = '(v, p) => v === null ? null : v.slice(0, p.keep) + "***"';
const FLIP = '(row) => ("ok" in row ? { ...row, ok: row.ok === null ? null : !row.ok } : row)';

async function setup(t: Target, c: pg.Client): Promise<{ table: string; mask: string; flip: string }> {
  await t.proxy.registryLoaded;
  const table = uniqueName('people');
  await c.query(`CREATE TABLE ${table} (id int PRIMARY KEY, email text, amount numeric(10,2), at timestamptz, doc jsonb,
    raw bytea, score float4, day date, u uuid, ok bool)`);
  await c.query(`INSERT INTO ${table} VALUES
    (1, 'alice@example.com', 10.50, '2024-10-27 10:00:00.123456+02', '{"b": [1, 2.50], "a": null}', '\\xdead', 1.1, '2024-10-27', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', true),
    (2, NULL, -0.01, 'infinity', '[]', '', -0, '0044-03-15 BC', NULL, false),
    (3, 'bob@example.com', NULL, '1999-12-31 23:59:59+00', '"x"', NULL, 'NaN', NULL, '00000000-0000-0000-0000-000000000000', NULL)`);
  const mask = uniqueName('mask');
  const flip = uniqueName('flip');
  await c.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], $3, '{\"keep\": 2}')", [mask, table, MASK]);
  await c.query('SELECT provenance.register_transform($1, $2, NULL, $3)', [flip, table, FLIP]);
  await eventually(() => c.query(`SELECT email, ok FROM ${table} WHERE id = 1`), (r) => r.rows[0]?.email === 'al***' && r.rows[0]?.ok === false);
  return { table, mask, flip };
}

for (const kind of ['embedded', 'postgres'] as const) {
  describe(`provenance records [${kind}]`, () => {
    const t = useTarget(kind, [], () => ({ provenanceDurability: 'sync' }));

    it('records each execution with its context, as a chain from the table to the result', async () => {
      const c = await t.pg({ application_name: 'pp-records' });
      try {
        const { table, mask, flip } = await setup(t, c);
        const before = new Date();
        const r = await c.query(`SELECT id, email, ok FROM ${table} WHERE id > 1 ORDER BY id`);
        expect(r.rows).toEqual([{ id: 2, email: null, ok: true }, { id: 3, email: 'bo***', ok: null }]);
        // Sync durability: the records were written before the client got its CommandComplete.
        const recs = await executions(c, 'application_name = $1 AND executed_at >= $2', ['pp-records', before]);
        expect(recs.map((e) => e.transform_name)).toEqual(expect.arrayContaining([mask, flip]));
        expect(recs).toHaveLength(2);
        const m = recs.find((e) => e.transform_name === mask)!;
        const f = recs.find((e) => e.transform_name === flip)!;
        expect(m).toMatchObject({
          transform_version: 1, table_name: `public.${table}`, columns: ['email'], rows_in: '2', rows_out: '2',
          client_addr: '127.0.0.1', user_name: t.user, current_role_name: t.user, database: 'postgres',
          application_name: 'pp-records', params: { keep: 2 }, kind: 'read', outcome: 'complete',
          parent_id: null, chain_end: false,
        });
        expect(m.roles).toContain(t.user);
        expect(f).toMatchObject({ columns: null, parent_id: m.id, chain_end: true, result_id: m.result_id, rows_in: '2', rows_out: '2' });
        const fn = await c.query('SELECT function_hash FROM provenance.transforms WHERE name = $1', [mask]);
        expect(m.function_hash).toBe(fn.rows[0].function_hash);
        for (const e of recs) {
          expect(e.input_hash).toMatch(/^[0-9a-f]{64}$/);
          expect(e.trace_id).toMatch(/^[0-9a-f]{32}$/);
          expect(e.span_id).toMatch(/^[0-9a-f]{16}$/);
          // The statement's fingerprint, without its literal values.
          expect(e.statement_text).toBe(`SELECT id, email, ok FROM ${table} WHERE id > $1 ORDER BY id`);
          expect(e.statement_fingerprint).toMatch(/^[0-9a-f]{16}$/);
        }
        expect(m.span_id).not.toBe(f.span_id);
        expect(m.trace_id).toBe(f.trace_id);
        // The same statement with another literal has the same fingerprint.
        await c.query(`SELECT id, email, ok FROM ${table} WHERE id > 2 ORDER BY id`);
        const again = await executions(c, 'application_name = $1 AND result_id <> $2 AND executed_at >= $3', ['pp-records', m.result_id, before]);
        expect(again.map((e) => e.statement_fingerprint)).toEqual([m.statement_fingerprint, m.statement_fingerprint]);
        // The DAG: data → mask → flip → result.
        const edges = await c.query('SELECT from_node, to_node FROM provenance.dag_edges WHERE result_id = $1', [m.result_id]);
        expect(edges.rows).toEqual(expect.arrayContaining([
          { from_node: `data:public.${table}:${m.input_hash}`, to_node: `execution:${m.id}` },
          { from_node: `execution:${m.id}`, to_node: `execution:${f.id}` },
          { from_node: `execution:${f.id}`, to_node: `result:${m.result_id}` },
        ]));
        expect(edges.rows).toHaveLength(3);
        const lineage = await c.query('SELECT id FROM provenance.lineage($1)', [m.result_id]);
        expect(lineage.rows.map((x: { id: string }) => x.id)).toEqual([m.id, f.id]);
      } finally {
        await c.end();
      }
    });

    it('hashes the same values the same for every client and format, and differently for any change', async () => {
      const setupClient = await t.pg();
      const text = await t.pg({ application_name: 'pp-hash-text' });
      const binary = await t.pg({ application_name: 'pp-hash-binary', binary: true } as Partial<pg.ClientConfig>);
      const sql = t.sql({ connection: { application_name: 'pp-hash-postgresjs' } });
      try {
        const { table, mask, flip } = await setup(t, setupClient);
        const query = `SELECT * FROM ${table} ORDER BY id`;
        await text.query(query);
        await binary.query(query);
        await sql.unsafe(query, [], { prepare: true });
        process.env['PGAPPNAME'] = 'pp-hash-psql';
        try {
          const out = await t.psql(['-At', '-c', query]);
          expect(out.code).toBe(0);
        } finally {
          delete process.env['PGAPPNAME'];
        }
        const hashes = async (app: string): Promise<string[]> => {
          const recs = await executions(setupClient, 'application_name = $1 AND table_name = $2', [app, `public.${table}`]);
          return [mask, flip].flatMap((n) => {
            const e = recs.find((x) => x.transform_name === n)!;
            return [e.input_hash, e.output_hash];
          });
        };
        const reference = await hashes('pp-hash-text');
        expect(new Set(reference).size).toBe(4);
        for (const app of ['pp-hash-binary', 'pp-hash-postgresjs', 'pp-hash-psql']) expect(await hashes(app), app).toEqual(reference);

        // An auditor recomputes the mask's input and output hashes with SQL alone: each row is a
        // binary DataRow body of the portion (here one text field).
        const field = (e: string): string => `CASE WHEN ${e} IS NULL THEN int4send(-1) ELSE int4send(octet_length(textsend(${e}))) || textsend(${e}) END`;
        const recomputed = await setupClient.query(`SELECT
            encode(sha256(string_agg(int2send(1::int2) || ${field('email')}, ''::bytea ORDER BY id)), 'hex') AS input,
            encode(sha256(string_agg(int2send(1::int2) || ${field("left(email, 2) || '***'")}, ''::bytea ORDER BY id)), 'hex') AS output
          FROM ${table}`);
        expect([recomputed.rows[0].input, recomputed.rows[0].output]).toEqual(reference.slice(0, 2));

        // Another row order, a changed value, a NULL for an empty string: other hashes.
        await text.query(`SELECT * FROM ${table} ORDER BY id DESC`);
        await setupClient.query(`UPDATE ${table} SET amount = 10.51 WHERE id = 1`);
        await text.query(query);
        await setupClient.query(`UPDATE ${table} SET amount = 10.50, email = '' WHERE id = 1`);
        await text.query(query);
        await setupClient.query(`UPDATE ${table} SET email = NULL WHERE id = 1`);
        await text.query(query);
        const flips = (await executions(setupClient, 'application_name = $1 AND transform_name = $2', ['pp-hash-text', flip])).map((e) => e.input_hash);
        expect(flips).toHaveLength(5);
        expect(new Set(flips).size).toBe(5);
      } finally {
        await setupClient.end();
        await text.end();
        await binary.end();
        await sql.end();
      }
    });

    it('hashes a result of many batches, worked on at the same time, as an auditor recomputes it', async () => {
      const c = await t.pg({ application_name: 'pp-hash-batches' });
      try {
        await t.proxy.registryLoaded;
        const table = uniqueName('many');
        // Enough rows for several batches on either upstream (at most 10,000 rows each).
        await c.query(`CREATE TABLE ${table} AS SELECT i AS id, CASE WHEN i % 97 = 0 THEN NULL ELSE 'user' || i || '@example.com' END AS email
          FROM generate_series(1, 35000) AS i`);
        const mask = uniqueName('mask');
        await c.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], $3, '{\"keep\": 3}')", [mask, table, MASK]);
        const served = await eventually(() => c.query(`SELECT id, email FROM ${table} ORDER BY id`), (r) => r.rows[0]?.email === 'use***');
        expect(served.rows).toHaveLength(35000);
        expect(served.rows[96]).toEqual({ id: 97, email: null });
        expect(served.rows[34999]).toEqual({ id: 35000, email: 'use***' });
        const recs = await executions(c, 'transform_name = $1 AND rows_in = 35000', [mask]);
        expect(recs).toHaveLength(1);
        const field = (e: string): string => `CASE WHEN ${e} IS NULL THEN int4send(-1) ELSE int4send(octet_length(textsend(${e}))) || textsend(${e}) END`;
        const recomputed = await c.query(`SELECT
            encode(sha256(string_agg(int2send(1::int2) || ${field('email')}, ''::bytea ORDER BY id)), 'hex') AS input,
            encode(sha256(string_agg(int2send(1::int2) || ${field("left(email, 3) || '***'")}, ''::bytea ORDER BY id)), 'hex') AS output
          FROM ${table}`);
        expect([recs[0]!.input_hash, recs[0]!.output_hash]).toEqual([recomputed.rows[0].input, recomputed.rows[0].output]);
      } finally {
        await c.end();
      }
    });

    it('records a join of two transformed tables as two chains meeting in one result', async () => {
      const c = await t.pg({ application_name: 'pp-join' });
      try {
        const { table, mask, flip } = await setup(t, c);
        const orders = uniqueName('orders');
        await c.query(`CREATE TABLE ${orders} (id int, person int, note text)`);
        await c.query(`INSERT INTO ${orders} VALUES (10, 1, 'n1'), (11, 3, 'n2')`);
        const note = uniqueName('note');
        await c.query("SELECT provenance.register_transform($1, $2, ARRAY['note'], '(v) => v.toUpperCase()')", [note, orders]);
        const r = await eventually(
          () => c.query(`SELECT o.note, p.email FROM ${orders} o JOIN ${table} p ON p.id = o.person ORDER BY o.id`),
          (x) => x.rows[0]?.note === 'N1',
        );
        expect(r.rows).toEqual([{ note: 'N1', email: 'al***' }, { note: 'N2', email: 'bo***' }]);
        const recs = await executions(c, 'application_name = $1 AND transform_name = $2', ['pp-join', note]);
        const resultId = recs.at(-1)!.result_id;
        const all = await c.query<Exec>('SELECT * FROM provenance.executions WHERE result_id = $1', [resultId]);
        expect(all.rows.map((e) => e.transform_name).sort()).toEqual([mask, flip, note].sort());
        const ends = await c.query("SELECT from_node FROM provenance.dag_edges WHERE result_id = $1 AND to_node = 'result:' || $1", [resultId]);
        expect(ends.rows).toHaveLength(2);
      } finally {
        await c.end();
      }
    });

    it('answers SHOW provenance.status, and names the trace of a sqlcommenter traceparent', async () => {
      const c = await t.pg({ application_name: 'pp-status' });
      try {
        const { table } = await setup(t, c);
        const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
        await c.query(`SELECT email FROM ${table} /*traceparent='00-${traceId}-00f067aa0ba902b7-01'*/`);
        const recs = await executions(c, 'application_name = $1', ['pp-status']);
        expect(recs.at(-1)!.trace_id).toBe(traceId);
        const viaPsql = await t.psql(['-A', '-c', 'SHOW provenance.status']);
        expect(viaPsql.code).toBe(0);
        const [head, values] = viaPsql.stdout.split('\n');
        expect(head).toBe('durability|queued|spooled|written|store|tracing|last_error|replay_cache_hits|replay_cache_misses|replay_cache_bytes');
        const [durability, queued, spooled, written] = values!.split('|');
        expect(durability).toBe('sync');
        expect(Number(queued)).toBe(0);
        expect(Number(spooled)).toBe(0);
        expect(Number(written)).toBeGreaterThan(0);
        // The session goes on.
        expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      } finally {
        await c.end();
      }
    });
  });
}
