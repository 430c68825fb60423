/**
 * Lineage, execution records, replay's door, /healthz and /metrics over HTTP, on both upstreams.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { uniqueName, useTarget } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';
import { call } from './http-client.js';

const PASSWORD = 'http-pw';

interface Graph {
  object: string;
  key: string | null;
  nodes: { id: string; kind: string; [k: string]: unknown }[];
  edges: { from: string; to: string }[];
}

for (const kind of ['embedded', 'postgres'] as const) {
  describe(`HTTP lineage and records [${kind}]`, () => {
    const t = useTarget(kind, [], () => ({ http: { host: '127.0.0.1', port: 0 } }));
    const reader = uniqueName('reader');
    const auditor = uniqueName('auditor');
    const table = uniqueName('chained');
    const plain = uniqueName('plain');
    const first = uniqueName('first');
    const second = uniqueName('second');
    let admin: pg.Client;
    const as = (user: string) => ({ user, password: PASSWORD });

    beforeAll(async () => {
      await t.proxy.registryLoaded;
      admin = await t.pg();
      for (const r of [reader, auditor]) await admin.query(`CREATE ROLE ${r} LOGIN PASSWORD '${PASSWORD}'`);
      await admin.query(`GRANT provenance_admin TO ${auditor}`);
      await admin.query(`CREATE TABLE ${table} (id int PRIMARY KEY, email text)`);
      await admin.query(`INSERT INTO ${table} VALUES (1, 'alice@example.com'), (2, 'bob@example.com')`);
      await admin.query(`CREATE TABLE ${plain} (id int PRIMARY KEY, v text)`);
      await admin.query(`INSERT INTO ${plain} VALUES (1, 'one')`);
      await admin.query(`GRANT SELECT ON ${table}, ${plain} TO ${reader}, ${auditor}`);
      await admin.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], $3)", [first, table, '(v) => v.toUpperCase()']);
      await admin.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], $3)", [second, table, '(v) => v.slice(0, 3) + "***"']);
      await eventually(async () => (await call(t, `/data/${table}/1`, as(reader))).text, (text) => text.includes('ALI***'));
    });
    afterAll(async () => {
      await admin?.end();
    });

    it('draws the DAG of a read: data, each execution of the chain in order, the result', async () => {
      const g = (await call(t, `/lineage/${table}`, as(reader))).json<Graph>();
      expect(g.object).toBe(`public.${table}`);
      expect(g.nodes.map((n) => n.kind)).toEqual(['data', 'execution', 'execution', 'result']);
      const executions = g.nodes.filter((n) => n.kind === 'execution');
      expect(executions.map((n) => n['transform'])).toEqual([first, second]);
      const data = g.nodes.filter((n) => n.kind === 'data');
      const results = g.nodes.filter((n) => n.kind === 'result');
      expect(data).toHaveLength(1);
      expect(results).toHaveLength(1);
      expect(data[0]).toMatchObject({ table: `public.${table}`, input_hash: executions[0]!['input_hash'] });
      expect(executions[1]!['input_hash']).toBe(executions[0]!['output_hash']);
      expect(executions[0]).toMatchObject({ version: 1, rows_in: 2, rows_out: 2, user: reader, params: {} });
      expect(executions[0]!['function_hash']).toMatch(/^[0-9a-f]{64}$/);
      expect(g.edges).toEqual([
        { from: data[0]!.id, to: executions[0]!.id },
        { from: executions[0]!.id, to: executions[1]!.id },
        { from: executions[1]!.id, to: results[0]!.id },
      ]);
      const recorded = (await admin.query('SELECT result_id::text FROM provenance.executions WHERE id = $1', [executions[0]!['execution_id']])).rows[0];
      expect(results[0]!['result_id']).toBe(recorded.result_id);
    });

    it('draws the lineage of one row, and of a table no transform touches', async () => {
      const one = (await call(t, `/lineage/${table}/2`, as(reader))).json<Graph>();
      expect(one.key).toBe('2');
      expect(one.nodes.filter((n) => n.kind === 'execution').map((n) => n['rows_out'])).toEqual([1, 1]);
      const bare = (await call(t, `/lineage/${plain}`, as(reader))).json<Graph>();
      expect(bare.nodes.map((n) => n.kind)).toEqual(['data', 'result']);
      expect(bare.edges).toHaveLength(1);
    });

    it('gives the lineage as Graphviz text and as an SVG picture', async () => {
      const dot = await call(t, `/lineage/${table}?format=dot`, as(reader));
      expect(dot.headers.get('content-type')).toMatch(/^text\/vnd.graphviz/);
      expect(dot.text).toMatch(/^digraph lineage \{/);
      expect(dot.text).toContain(`${first} v1`);
      const svg = await call(t, `/lineage/${table}?format=svg`, as(reader));
      expect(svg.status).toBe(200);
      expect(svg.headers.get('content-type')).toMatch(/^image\/svg\+xml/);
      expect(svg.text).toContain('<svg');
      expect(svg.text).toContain(`${second} v1`);
      // Graphviz writes the hyphens of the ids as &#45;, which the page reads back as hyphens.
      expect(svg.text).toMatch(/<g id="execution:[0-9a-f]{8}(&#45;[0-9a-f]{4}){3}&#45;[0-9a-f]{12}"/);
    });

    it('shows an execution record to provenance_admin members only', async () => {
      const id = (await call(t, `/data/${table}/1`, as(reader))).json<{ executions: string[] }>().executions[0]!;
      const rec = await call(t, `/executions/${id}`, as(auditor));
      expect(rec.status).toBe(200);
      expect(rec.json()).toMatchObject({ id, transform_name: first, user_name: reader, application_name: 'http', rows_out: 1, kind: 'read', columns: ['email'] });
      const refused = await call(t, `/executions/${id}`, as(reader));
      expect(refused.status).toBe(403);
      expect(refused.json()).toMatchObject({ code: '42501' });
      const missing = await call(t, '/executions/00000000-0000-7000-8000-000000000000', as(auditor));
      expect(missing.status).toBe(404);
      expect((await call(t, `/executions/${id}`)).status).toBe(401);
    });

    it('keeps replay to provenance_admin members (see replay.test.ts)', async () => {
      const id = '00000000-0000-7000-8000-000000000000';
      const refused = await call(t, `/results/${id}/replay`, { ...as(reader), method: 'POST' });
      expect(refused.status).toBe(403);
      expect(refused.json()).toMatchObject({ code: '42501' });
      const admitted = await call(t, `/results/${id}/replay`, { ...as(auditor), method: 'POST' });
      expect(admitted.status).toBe(404);
      expect(admitted.json()).toMatchObject({ code: '02000' });
    });

    it('answers /healthz and /metrics without credentials', async () => {
      const health = await call(t, '/healthz');
      expect(health.status).toBe(200);
      expect(health.json()).toEqual({ status: 'ok' });
      await call(t, `/data/${table}/x`, as(reader));
      await call(t, `/data/${table}`, as(reader));
      const m = await call(t, '/metrics');
      expect(m.status).toBe(200);
      expect(m.headers.get('content-type')).toMatch(/^text\/plain/);
      const value = (line: RegExp): number => Number(line.exec(m.text)?.[1] ?? NaN);
      expect(value(/^provenance_proxy_sessions (\d+)$/m)).toBeGreaterThanOrEqual(1);
      expect(value(/^provenance_proxy_statements_total (\d+)$/m)).toBeGreaterThan(0);
      expect(value(/^provenance_proxy_errors_total\{sqlstate="22P02"\} (\d+)$/m)).toBeGreaterThanOrEqual(1);
      expect(value(new RegExp(`^provenance_proxy_transform_executions_total\\{transform="${first}",kind="read"\\} (\\d+)$`, 'm'))).toBeGreaterThanOrEqual(1);
      expect(value(new RegExp(`^provenance_proxy_transform_duration_seconds_count\\{transform="${second}"\\} (\\d+)$`, 'm'))).toBeGreaterThanOrEqual(1);
      expect(value(/^provenance_proxy_replay_cache_total\{outcome="hit"\} (\d+)$/m)).toBe(0);
      expect(value(/^provenance_proxy_replay_cache_total\{outcome="miss"\} (\d+)$/m)).toBe(0);
      expect(value(/^provenance_proxy_provenance_queue (\d+)$/m)).toBeGreaterThanOrEqual(0);
      expect(value(/^provenance_proxy_provenance_spool (\d+)$/m)).toBeGreaterThanOrEqual(0);
      const page = await call(t, '/');
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    });
  });
}
