/**
 * A real OTLP/HTTP trace receiver for tests: POST /v1/traces with an OTLP JSON
 * ExportTraceServiceRequest, its spans flattened and kept in arrival order.
 *
 * OTLP JSON (opentelemetry-proto's JSON mapping): resourceSpans[].scopeSpans[].spans[], ids as
 * hex strings, attributes as [{ key, value: AnyValue }] where AnyValue is one of stringValue,
 * boolValue, intValue (a decimal string, though some senders use a number), doubleValue,
 * arrayValue { values }, kvlistValue { values }, bytesValue (base64). Protobuf bodies are refused
 * with 415 rather than misread.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

export interface ReceivedSpan {
  /** Lowercase hex. */
  readonly traceId: string;
  readonly spanId: string;
  /** null for a root span. */
  readonly parentSpanId: string | null;
  readonly name: string;
  /** The OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  readonly kind: number;
  readonly attributes: Record<string, unknown>;
  /** code: 0 unset, 1 ok, 2 error. */
  readonly status: { readonly code: number; readonly message?: string };
  /** Epoch milliseconds (from the nanosecond timestamps). */
  readonly startMs: number;
  readonly endMs: number;
  /** The attributes of the resource that sent it (service.name, …). */
  readonly resource: Record<string, unknown>;
}

export interface OtlpReceiver {
  /** The base URL, as OTEL_EXPORTER_OTLP_ENDPOINT takes it (exporters append /v1/traces). */
  readonly url: string;
  /** Every span received so far, in arrival order. */
  readonly spans: readonly ReceivedSpan[];
  /** Resolves with all spans once `predicate` holds for them; rejects after timeoutMs, listing what came. */
  waitFor(predicate: (spans: readonly ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<readonly ReceivedSpan[]>;
  close(): Promise<void>;
}

interface Waiter {
  check(): void;
  fail(err: Error): void;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const waiters = new Set<Waiter>();

  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => reply(res, 500, String(err)));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.url !== '/v1/traces') return reply(res, 404, `no such path ${req.url ?? ''}; traces go to /v1/traces`);
    if (req.method !== 'POST') return reply(res, 405, 'POST OTLP/HTTP JSON to /v1/traces');
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json') {
      const refusal = `content-type ${type ?? ''} refused: this receiver takes only OTLP/HTTP JSON (application/json)`;
      return reply(res, 415, refusal);
    }
    let body = await readBody(req);
    if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
    let request: unknown;
    try {
      request = JSON.parse(body.toString('utf8'));
    } catch (err) {
      return reply(res, 400, `not JSON: ${String(err)}`);
    }
    spans.push(...flatten(request));
    reply(res, 200, '{}', 'application/json');
    for (const w of [...waiters]) w.check();
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    waitFor(predicate, timeoutMs = 5_000) {
      if (predicate(spans)) return Promise.resolve(spans);
      return new Promise((resolve, reject) => {
        const waiter: Waiter = {
          check() {
            if (!predicate(spans)) return;
            clearTimeout(timer);
            waiters.delete(waiter);
            resolve(spans);
          },
          fail(err) {
            clearTimeout(timer);
            waiters.delete(waiter);
            reject(err);
          },
        };
        const timer = setTimeout(() => {
          const seen = spans.map((s) => `${s.name} (${s.traceId}/${s.spanId})`).join(', ');
          waiter.fail(new Error(`the expected spans did not arrive in ${timeoutMs} ms; received: ${seen || 'none'}`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    async close() {
      for (const w of [...waiters]) w.fail(new Error('the OTLP receiver was closed'));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function reply(res: ServerResponse, status: number, body: string, type = 'text/plain'): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': type });
  res.end(body);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

type Json = Record<string, unknown>;

function objects(v: unknown): Json[] {
  return Array.isArray(v) ? v.filter((x): x is Json => typeof x === 'object' && x !== null) : [];
}

function flatten(request: unknown): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of objects((request as Json | null)?.resourceSpans)) {
    const resource = keyValues((rs.resource as Json | undefined)?.attributes);
    for (const ss of objects(rs.scopeSpans)) {
      for (const s of objects(ss.spans)) {
        const status = (s.status ?? {}) as Json;
        const parent = hexId(s.parentSpanId);
        out.push({
          traceId: hexId(s.traceId),
          spanId: hexId(s.spanId),
          parentSpanId: parent === '' ? null : parent,
          name: String(s.name ?? ''),
          kind: Number(s.kind ?? 0),
          attributes: keyValues(s.attributes),
          status: {
            code: Number(status.code ?? 0),
            ...(typeof status.message === 'string' && status.message !== '' ? { message: status.message } : {}),
          },
          startMs: Number(s.startTimeUnixNano ?? 0) / 1e6,
          endMs: Number(s.endTimeUnixNano ?? 0) / 1e6,
          resource,
        });
      }
    }
  }
  return out;
}

/** The JSON mapping says hex; base64 (the generic protobuf JSON mapping of bytes) is accepted too. */
function hexId(v: unknown): string {
  if (typeof v !== 'string' || v === '') return '';
  if (/^[0-9a-fA-F]+$/.test(v) && (v.length === 32 || v.length === 16)) return v.toLowerCase();
  return Buffer.from(v, 'base64').toString('hex');
}

function keyValues(v: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of objects(v)) {
    if (typeof kv.key === 'string') out[kv.key] = anyValue(kv.value);
  }
  return out;
}

function anyValue(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Json;
  if ('stringValue' in o) return o.stringValue;
  if ('boolValue' in o) return o.boolValue;
  if ('intValue' in o) return Number(o.intValue);
  if ('doubleValue' in o) return Number(o.doubleValue);
  if ('arrayValue' in o) return objects((o.arrayValue as Json | undefined)?.values).map(anyValue);
  if ('kvlistValue' in o) return keyValues((o.kvlistValue as Json | undefined)?.values);
  if ('bytesValue' in o) return o.bytesValue;
  return undefined;
}
