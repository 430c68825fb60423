import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TraceParent } from '../../plugins/provenance/traceparent.js';
import { tracingFromEnv, type Tracing } from '../../plugins/provenance/tracing.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver.js';

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
/** OTLP SpanKind and status codes. */
const KIND_INTERNAL = 1;
const KIND_SERVER = 2;
const STATUS_UNSET = 0;
const STATUS_ERROR = 2;

function remoteParent(flags = 1): TraceParent {
  return { traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'), flags };
}

function only(spans: readonly ReceivedSpan[], spanId: string): ReceivedSpan {
  const found = spans.filter((s) => s.spanId === spanId);
  expect(found).toHaveLength(1);
  return found[0]!;
}

describe('exported tracing', () => {
  let receiver: OtlpReceiver;
  beforeAll(async () => {
    receiver = await startOtlpReceiver();
  });
  afterAll(async () => {
    await receiver.close();
  });

  const exporting = (log?: (msg: string) => void): Tracing =>
    tracingFromEnv(
      { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SERVICE_NAME: 'x' },
      log,
    );

  it('joins the client trace, and parents transform spans on the statement span', async () => {
    const lines: string[] = [];
    const tracing = exporting((m) => lines.push(m));
    expect(tracing.enabled).toBe(true);
    expect(lines.join('\n')).toContain(`${receiver.url}/v1/traces`);

    const parent = remoteParent();
    const start = Date.now() - 100 + 0.25;
    const attributes = {
      'db.system.name': 'postgresql',
      'db.query.summary': 'SELECT customers',
      'db.operation.name': 'SELECT',
      'db.query.text': 'SELECT * FROM customers WHERE id = $1',
      'server.port': 5432,
      'provenance.recorded': true,
      'provenance.ratio': 0.5,
      'provenance.columns': ['email', 'phone'],
    };
    const statement = tracing.statementSpan(attributes, parent, start);
    expect(statement.traceId).toBe(parent.traceId);
    expect(statement.spanId).toMatch(HEX16);
    expect(statement.spanId).not.toBe(parent.spanId);

    const child = statement.child('transform mask_email', { 'provenance.transform': 'mask_email', 'provenance.rows': 3 }, start + 1, start + 2.5);
    expect(child.traceId).toBe(parent.traceId);
    expect(child.spanId).toMatch(HEX16);
    expect(child.spanId).not.toBe(statement.spanId);
    statement.end(start + 5, null);
    await tracing.shutdown();

    const spans = await receiver.waitFor((all) => all.filter((s) => s.traceId === parent.traceId).length >= 2);
    const s = only(spans, statement.spanId);
    expect(s).toMatchObject({
      traceId: parent.traceId,
      parentSpanId: parent.spanId,
      name: 'SELECT customers',
      kind: KIND_SERVER,
      status: { code: STATUS_UNSET },
      attributes,
      resource: { 'service.name': 'x' },
    });
    expect(s.attributes).not.toHaveProperty('db.response.status_code');
    expect(s.startMs).toBeCloseTo(start, 3);
    expect(s.endMs).toBeCloseTo(start + 5, 3);

    const c = only(spans, child.spanId);
    expect(c).toMatchObject({
      traceId: parent.traceId,
      parentSpanId: statement.spanId,
      name: 'transform mask_email',
      kind: KIND_INTERNAL,
      attributes: { 'provenance.transform': 'mask_email', 'provenance.rows': 3 },
    });
    expect(c.startMs).toBeCloseTo(start + 1, 3);
    expect(c.endMs).toBeCloseTo(start + 2.5, 3);
  });

  it('marks a failed statement with its SQLSTATE, once', async () => {
    const tracing = exporting();
    const start = Date.now();
    const statement = tracing.statementSpan({ 'db.system.name': 'postgresql' }, null, start);
    expect(statement.traceId).toMatch(HEX32);
    statement.end(start + 1, '23505');
    statement.end(start + 2, '57014');
    await tracing.shutdown();

    const s = only(await receiver.waitFor((all) => all.some((x) => x.spanId === statement.spanId)), statement.spanId);
    expect(s).toMatchObject({
      traceId: statement.traceId,
      parentSpanId: null,
      name: 'postgresql',
      status: { code: STATUS_ERROR },
      attributes: { 'db.response.status_code': '23505', 'error.type': '23505' },
    });
    expect(s.endMs).toBeCloseTo(start + 1, 3);
  });

  it('exports everything pending on shutdown', async () => {
    const tracing = exporting();
    const start = Date.now();
    const ids: string[] = [];
    for (let k = 0; k < 20; k++) {
      const statement = tracing.statementSpan({ 'db.query.summary': `SELECT t${k}` }, null, start + k);
      ids.push(statement.spanId, statement.child('transform', {}, start + k, start + k + 0.5).spanId);
      statement.end(start + k + 1, null);
    }
    // The batch processor would wait seconds before sending; shutdown must not.
    await tracing.shutdown();
    const received = new Set(receiver.spans.map((s) => s.spanId));
    expect(ids.filter((id) => !received.has(id))).toEqual([]);
  });

  it('keeps the spans of an unsampled client trace unexported, with ids all the same', async () => {
    const tracing = exporting();
    const parent = remoteParent(0);
    const statement = tracing.statementSpan({}, parent, Date.now());
    expect(statement.traceId).toBe(parent.traceId);
    expect(statement.spanId).toMatch(HEX16);
    const child = statement.child('transform', {}, Date.now(), Date.now());
    expect(child).toMatchObject({ traceId: parent.traceId, spanId: expect.stringMatching(HEX16) });
    statement.end(Date.now(), null);
    await tracing.shutdown();
    expect(receiver.spans.filter((s) => s.traceId === parent.traceId)).toEqual([]);
  });

  it('logs failed exports', async () => {
    const lines: string[] = [];
    const tracing = tracingFromEnv(
      { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/nowhere` },
      (m) => lines.push(m),
    );
    tracing.statementSpan({}, null, Date.now()).end(Date.now(), null);
    await expect(tracing.shutdown()).rejects.toThrow();
    expect(lines.filter((l) => l.includes('failed'))).toHaveLength(1);
  });

  it('refuses protobuf bodies clearly', async () => {
    const res = await fetch(`${receiver.url}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf' },
      body: new Uint8Array([0x0a, 0x00]),
    });
    expect(res.status).toBe(415);
    expect(await res.text()).toContain('application/json');
  });
});

describe('tracing configuration', () => {
  it('is off by default and when asked', () => {
    expect(tracingFromEnv({}).enabled).toBe(false);
    expect(tracingFromEnv({ OTEL_TRACES_EXPORTER: 'none' }).enabled).toBe(false);
    expect(tracingFromEnv({ OTEL_TRACES_EXPORTER: 'none,otlp' }).enabled).toBe(false);
    expect(tracingFromEnv({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' }).enabled).toBe(false);
    expect(tracingFromEnv({ OTEL_SDK_DISABLED: 'TRUE', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }).enabled).toBe(false);
    expect(tracingFromEnv({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' }).enabled).toBe(false);
    expect(tracingFromEnv({ OTEL_TRACES_EXPORTER: '', OTEL_EXPORTER_OTLP_ENDPOINT: ' ' }).enabled).toBe(false);
  });

  it('says so when asked for an OTLP protocol other than http/json', async () => {
    const lines: string[] = [];
    const tracing = tracingFromEnv(
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' },
      (m) => lines.push(m),
    );
    await tracing.shutdown();
    expect(lines.some((l) => l.includes('grpc') && l.includes('http/json'))).toBe(true);
  });

  it('is on with an OTLP endpoint or an exporter named', async () => {
    for (const env of [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9/' },
      { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:9/v1/traces' },
      { OTEL_TRACES_EXPORTER: ' OTLP , console' },
      { OTEL_TRACES_EXPORTER: 'console' },
    ]) {
      const tracing = tracingFromEnv(env);
      expect(tracing.enabled, JSON.stringify(env)).toBe(true);
      await tracing.shutdown();
    }
  });

  it('refuses an unknown exporter or an endpoint that is not a URL', () => {
    expect(() => tracingFromEnv({ OTEL_TRACES_EXPORTER: 'zipkin' })).toThrow(/OTEL_TRACES_EXPORTER=zipkin.*otlp, console, none/);
    expect(() => tracingFromEnv({ OTEL_TRACES_EXPORTER: 'jaeger,otlp' })).toThrow(/'jaeger'/);
    expect(() => tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT=collector:4318/);
    expect(() => tracingFromEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'not a url' })).toThrow(/OTEL_EXPORTER_OTLP_TRACES_ENDPOINT/);
  });
});

describe('disabled tracing', () => {
  const tracing = tracingFromEnv({});

  it('hands out valid, unique ids', () => {
    const n = 5_000;
    const traceIds: string[] = [];
    const spanIds: string[] = [];
    const childTraceIds: string[] = [];
    for (let k = 0; k < n; k++) {
      const s = tracing.statementSpan({ 'db.query.summary': 'SELECT t' }, null, Date.now());
      const c = s.child('transform', {}, 0, 1);
      traceIds.push(s.traceId);
      spanIds.push(s.spanId, c.spanId);
      childTraceIds.push(c.traceId);
      s.end(Date.now(), k % 2 === 0 ? null : '42P01');
      s.end(Date.now(), null);
    }
    // Checked in bulk: an expect() per id would make this the slowest test here.
    expect(traceIds.filter((id) => !HEX32.test(id) || id === '0'.repeat(32))).toEqual([]);
    expect(spanIds.filter((id) => !HEX16.test(id) || id === '0'.repeat(16))).toEqual([]);
    expect(childTraceIds).toEqual(traceIds);
    expect(new Set(traceIds).size).toBe(n);
    expect(new Set(spanIds).size).toBe(2 * n);
  });

  it('inherits the trace id of the client trace', async () => {
    const parent = remoteParent();
    const s = tracing.statementSpan({}, parent, Date.now());
    expect(s.traceId).toBe(parent.traceId);
    expect(s.spanId).not.toBe(parent.spanId);
    expect(s.child('transform', {}, 0, 1).traceId).toBe(parent.traceId);
    await expect(tracing.shutdown()).resolves.toBeUndefined();
  });
});
