/**
 * OpenTelemetry through the proxy: a real OTLP/HTTP receiver gets one span per client statement
 * (database semantic conventions) and a child span per transform execution, continuing the
 * application's trace when the statement carries a sqlcommenter traceparent; the DAG records
 * name those spans.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueName, useTarget } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver.js';

const SERVER_KIND = 2;
const ERROR_STATUS = 2;

for (const kind of ['embedded', 'postgres'] as const) {
  describe(`provenance spans [${kind}]`, () => {
    let receiver: OtlpReceiver;
    beforeAll(async () => {
      receiver = await startOtlpReceiver();
    });
    afterAll(async () => {
      await receiver.close();
    });
    const t = useTarget(kind, [], () => ({ provenanceDurability: 'sync' }), () => ({
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_SERVICE_NAME: 'pp-spans-test',
    }));

    it('exports a statement span with a child per transform execution, under the application\'s trace', async () => {
      const c = await t.pg({ application_name: 'pp-spans' });
      try {
        await t.proxy.registryLoaded;
        const table = uniqueName('traced');
        await c.query(`CREATE TABLE ${table} (id int, email text)`);
        await c.query(`INSERT INTO ${table} VALUES (1, 'alice@example.com'), (2, 'bob@example.com')`);
        const mask = uniqueName('mask');
        await c.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], '(v) => \"***\"', '{\"why\": \"test\"}')", [mask, table]);
        await eventually(() => c.query(`SELECT email FROM ${table} WHERE id = 1`), (r) => r.rows[0]?.email === '***');

        const traceId = '0af7651916cd43dd8448eb211c80319c';
        const appSpan = 'b7ad6b7169203331';
        const text = `SELECT id, email FROM ${table} WHERE email <> 'x' ORDER BY id /*controller='users',traceparent='00-${traceId}-${appSpan}-01'*/`;
        const r = await c.query(text);
        expect(r.rows).toEqual([{ id: 1, email: '***' }, { id: 2, email: '***' }]);
        const spans = await receiver.waitFor((s) => s.some((x) => x.traceId === traceId && x.parentSpanId !== appSpan), 20_000);
        const mine = spans.filter((s) => s.traceId === traceId);
        const statement = mine.find((s) => s.parentSpanId === appSpan)!;
        expect(statement).toMatchObject({
          name: `SELECT ${table}`,
          kind: SERVER_KIND,
          resource: expect.objectContaining({ 'service.name': 'pp-spans-test' }) as unknown,
        });
        expect(statement.attributes).toMatchObject({
          'db.system.name': 'postgresql',
          'db.namespace': 'postgres',
          'db.operation.name': 'SELECT',
          'db.query.summary': `SELECT ${table}`,
          'client.address': '127.0.0.1',
        });
        // Literals never leave the proxy in a span.
        expect(statement.attributes['db.query.text']).toBe(`SELECT id, email FROM ${table} WHERE email <> $1 ORDER BY id`);
        expect(statement.attributes['server.address']).toBe(kind === 'postgres' ? '127.0.0.1' : 'pglite');
        if (kind === 'postgres') expect(statement.attributes['server.port']).toBe(t.cluster.port);
        const child = mine.find((s) => s.parentSpanId === statement.spanId)!;
        expect(child.name).toBe(`transform ${mask}`);
        expect(child.attributes).toMatchObject({
          'provenance.transform.name': mask,
          'provenance.transform.version': 1,
          'provenance.table': `public.${table}`,
          'provenance.rows.in': 2,
          'provenance.rows.out': 2,
          'provenance.params': '{"why":"test"}',
        });
        expect(child.startMs).toBeGreaterThanOrEqual(statement.startMs);
        expect(child.endMs).toBeLessThanOrEqual(statement.endMs);
        // From the lineage record to its span, and back.
        const rec = await c.query('SELECT * FROM provenance.executions WHERE trace_id = $1', [traceId]);
        expect(rec.rows).toHaveLength(1);
        expect(rec.rows[0]).toMatchObject({
          span_id: child.spanId,
          input_hash: child.attributes['provenance.input.hash'],
          output_hash: child.attributes['provenance.output.hash'],
          function_hash: child.attributes['provenance.function.hash'],
        });
      } finally {
        await c.end();
      }
    });

    it('spans every statement, extended protocol included, and marks failures with their SQLSTATE', async () => {
      const c = await t.pg({ application_name: 'pp-spans-2' });
      try {
        const traceId = 'aaf7651916cd43dd8448eb211c80319c';
        const comment = `/*traceparent='00-${traceId}-b7ad6b7169203331-01'*/`;
        await expect(c.query(`SELECT 1 / 0 ${comment}`)).rejects.toMatchObject({ code: '22012' });
        const prepared = await c.query({ text: `SELECT $1::int + 41 AS n ${comment}`, values: [1] });
        expect(prepared.rows).toEqual([{ n: 42 }]);
        const spans: readonly ReceivedSpan[] = await receiver.waitFor((s) => s.filter((x) => x.traceId === traceId).length >= 2, 20_000);
        const mine = spans.filter((s) => s.traceId === traceId);
        const failed = mine.find((s) => s.attributes['db.response.status_code'] === '22012')!;
        expect(failed.status.code).toBe(ERROR_STATUS);
        expect(failed.attributes['db.query.text']).toBe(`SELECT $1 / $2`);
        const ok = mine.find((s) => s !== failed)!;
        expect(ok.attributes['db.query.text']).toBe('SELECT $1::int + $2 AS n');
        expect(ok.attributes['db.response.status_code']).toBeUndefined();
        expect(ok.status.code).not.toBe(ERROR_STATUS);
      } finally {
        await c.end();
      }
    });

    it('spans a statement the proxy answers itself', async () => {
      const c = await t.pg({ application_name: 'pp-spans-3' });
      try {
        const before = receiver.spans.length;
        const status = await c.query('SHOW provenance.status');
        expect(status.rows).toHaveLength(1);
        const spans = await receiver.waitFor(
          (s) => s.slice(before).some((x) => x.attributes['db.query.text'] === 'SHOW provenance.status'),
          20_000,
        );
        const span = spans.slice(before).find((x) => x.attributes['db.query.text'] === 'SHOW provenance.status')!;
        expect(span.parentSpanId).toBeNull();
        expect(span.kind).toBe(2);
        expect(span.attributes['db.system.name']).toBe('postgresql');
        expect(span.attributes['db.response.status_code']).toBeUndefined();
        expect(span.status.code).not.toBe(ERROR_STATUS);
        expect(span.endMs).toBeGreaterThanOrEqual(span.startMs);
      } finally {
        await c.end();
      }
    });
  });
}

