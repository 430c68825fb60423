/**
 * OpenTelemetry spans for client statements and the transform executions inside them.
 *
 * Configured by the standard OTEL_* variables and off unless they ask for it. When off, the same
 * calls still hand out trace and span ids (a provenance record always names a span), taken from a
 * pool of random bytes, without creating any OpenTelemetry object. When on, spans go through a
 * batching processor to an OTLP/HTTP (JSON) endpoint or to the console. The provider is not
 * registered globally: nothing else in the process picks it up or is picked up by it.
 */
import { randomBytes } from 'node:crypto';
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes as OtelAttributes,
  type Context,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { ATTR_DB_RESPONSE_STATUS_CODE, ATTR_ERROR_TYPE, ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { TraceParent } from './traceparent.js';

export interface SpanIds {
  /** 32 lowercase hex characters. */
  readonly traceId: string;
  /** 16 lowercase hex characters. */
  readonly spanId: string;
}

export type Attributes = Record<string, string | number | boolean | readonly string[]>;

export interface StatementSpan extends SpanIds {
  /**
   * A finished child span (one transform execution), with explicit start and end times in epoch
   * milliseconds (fractions allowed). Returns its ids.
   */
  child(name: string, attributes: Attributes, startMs: number, endMs: number): SpanIds;
  /**
   * Ends the statement span; errorCode is the SQLSTATE when it failed (sets
   * db.response.status_code and error.type, and the span status ERROR). Idempotent.
   */
  end(endMs: number, errorCode: string | null): void;
}

export interface Tracing {
  /**
   * True when spans are exported; when false every call still returns valid, unique ids (trace
   * id taken from `parent` when given, else random) and creates no OpenTelemetry object.
   */
  readonly enabled: boolean;
  /**
   * Starts the span of one client statement (kind SERVER), named by attributes['db.query.summary']
   * or 'postgresql', starting at startMs (epoch milliseconds). With `parent` (a client's
   * sqlcommenter traceparent) it joins that trace as a child of the remote span; a parent whose
   * sampled flag is off keeps its spans unexported (the default parent-based sampler), though
   * they still get ids.
   */
  statementSpan(attributes: Attributes, parent: TraceParent | null, startMs: number): StatementSpan;
  /** Exports everything pending (graceful shutdown); rejects when that last export fails. */
  shutdown(): Promise<void>;
}

const DEFAULT_SERVICE_NAME = 'provenance-proxy';
const DEFAULT_OTLP_TRACES_URL = 'http://localhost:4318/v1/traces';
const EXPORTERS = ['otlp', 'console', 'none'];

/**
 * From the standard variables: OTEL_SDK_DISABLED=true turns tracing off; OTEL_TRACES_EXPORTER
 * picks otlp, console or none (of a comma list, the first); OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
 * (used as is) or OTEL_EXPORTER_OTLP_ENDPOINT (with /v1/traces appended) says where OTLP goes;
 * OTEL_SERVICE_NAME names the service (default provenance-proxy). With OTEL_TRACES_EXPORTER
 * unset, spans are exported with OTLP only when an endpoint variable is set, so the default
 * costs nothing. An unknown exporter or an endpoint that is not a URL throws.
 *
 * Settings these do not cover (OTEL_TRACES_SAMPLER, OTEL_BSP_*, OTEL_EXPORTER_OTLP_HEADERS,
 * OTEL_EXPORTER_OTLP_TIMEOUT, …) are read by the OpenTelemetry SDK itself, from process.env.
 */
export function tracingFromEnv(env: NodeJS.ProcessEnv, log?: (msg: string) => void): Tracing {
  if (setting(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return new IdsOnly();
  const listed = setting(env, 'OTEL_TRACES_EXPORTER');
  const endpoint = setting(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') ?? setting(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  const name = listed?.split(',')[0]?.trim().toLowerCase() ?? (endpoint !== undefined ? 'otlp' : 'none');
  const serviceName = setting(env, 'OTEL_SERVICE_NAME') ?? DEFAULT_SERVICE_NAME;
  let exporter: SpanExporter;
  let destination: string;
  switch (name) {
    case 'none':
      return new IdsOnly();
    case 'otlp': {
      const url = otlpTracesUrl(env) ?? DEFAULT_OTLP_TRACES_URL;
      exporter = new OTLPTraceExporter({ url });
      destination = url;
      const protocol =
        setting(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? setting(env, 'OTEL_EXPORTER_OTLP_PROTOCOL');
      if (protocol !== undefined && protocol !== 'http/json') {
        log?.(`tracing: OTLP protocol ${protocol} is not supported, spans are sent as http/json`);
      }
      break;
    }
    case 'console':
      exporter = new ConsoleSpanExporter();
      destination = 'the console';
      break;
    default:
      throw new Error(
        `OTEL_TRACES_EXPORTER=${listed ?? ''}: unknown span exporter '${name}'; ` +
          `this proxy supports ${EXPORTERS.join(', ')}`,
      );
  }
  if (log !== undefined) exporter = new FailureReporting(exporter, destination, log);
  log?.(`tracing: exporting spans of service ${serviceName} to ${destination}`);
  return new Exported(exporter, serviceName);
}

/** A variable's value, with unset and empty (or blank) alike meaning "not set", as the OTel spec reads them. */
function setting(env: NodeJS.ProcessEnv, key: string): string | undefined {
  const v = env[key]?.trim();
  return v === undefined || v === '' ? undefined : v;
}

function otlpTracesUrl(env: NodeJS.ProcessEnv): string | undefined {
  const specific = setting(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  if (specific !== undefined) return checkedUrl('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', specific);
  const base = setting(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  if (base === undefined) return undefined;
  checkedUrl('OTEL_EXPORTER_OTLP_ENDPOINT', base);
  return `${base}${base.endsWith('/') ? '' : '/'}v1/traces`;
}

function checkedUrl(key: string, value: string): string {
  const protocol = URL.canParse(value) ? new URL(value).protocol : null;
  if (protocol !== 'http:' && protocol !== 'https:') {
    throw new Error(`${key}=${value} is not an http(s) URL (expected e.g. http://collector:4318)`);
  }
  return value;
}

class Exported implements Tracing {
  readonly enabled = true;
  private readonly provider: BasicTracerProvider;
  private readonly tracer: Tracer;

  constructor(exporter: SpanExporter, serviceName: string) {
    this.provider = new BasicTracerProvider({
      resource: defaultResource().merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: serviceName })),
      spanProcessors: [new BatchSpanProcessor(exporter)],
    });
    this.tracer = this.provider.getTracer(DEFAULT_SERVICE_NAME);
  }

  statementSpan(attributes: Attributes, parent: TraceParent | null, startMs: number): StatementSpan {
    const context =
      parent === null
        ? ROOT_CONTEXT
        : trace.setSpanContext(ROOT_CONTEXT, {
            traceId: parent.traceId,
            spanId: parent.spanId,
            traceFlags: parent.flags,
            isRemote: true,
          });
    const summary = attributes['db.query.summary'];
    const name = typeof summary === 'string' && summary !== '' ? summary : 'postgresql';
    const span = this.tracer.startSpan(
      name,
      { kind: SpanKind.SERVER, attributes: otelAttributes(attributes), startTime: startMs },
      context,
    );
    return new ExportedStatementSpan(this.tracer, span);
  }

  shutdown(): Promise<void> {
    return this.provider.shutdown();
  }
}

class ExportedStatementSpan implements StatementSpan {
  readonly traceId: string;
  readonly spanId: string;
  private ended = false;
  private context: Context | null = null;

  constructor(
    private readonly tracer: Tracer,
    private readonly span: Span,
  ) {
    const ids = span.spanContext();
    this.traceId = ids.traceId;
    this.spanId = ids.spanId;
  }

  child(name: string, attributes: Attributes, startMs: number, endMs: number): SpanIds {
    this.context ??= trace.setSpan(ROOT_CONTEXT, this.span);
    const child = this.tracer.startSpan(
      name,
      { kind: SpanKind.INTERNAL, attributes: otelAttributes(attributes), startTime: startMs },
      this.context,
    );
    child.end(endMs);
    const ids = child.spanContext();
    return { traceId: ids.traceId, spanId: ids.spanId };
  }

  end(endMs: number, errorCode: string | null): void {
    if (this.ended) return;
    this.ended = true;
    if (errorCode !== null) {
      // The database conventions: error.type repeats the status code when the database gives one.
      this.span.setAttribute(ATTR_DB_RESPONSE_STATUS_CODE, errorCode);
      this.span.setAttribute(ATTR_ERROR_TYPE, errorCode);
      this.span.setStatus({ code: SpanStatusCode.ERROR, message: `SQLSTATE ${errorCode}` });
    }
    this.span.end(endMs);
  }
}

/** The SDK only reads attribute values; our readonly arrays are its arrays as far as it is concerned. */
function otelAttributes(attributes: Attributes): OtelAttributes {
  return attributes as OtelAttributes;
}

/**
 * Reports export failures through the proxy's log: the SDK would only tell its own diagnostic
 * logger, which nobody installs. Once per outage, not once per batch.
 */
class FailureReporting implements SpanExporter {
  private failing = false;

  constructor(
    private readonly inner: SpanExporter,
    private readonly destination: string,
    private readonly log: (msg: string) => void,
  ) {}

  export(spans: ReadableSpan[], done: Parameters<SpanExporter['export']>[1]): void {
    this.inner.export(spans, (result) => {
      // ExportResultCode.SUCCESS (of @opentelemetry/core) is 0.
      if (result.code !== 0) {
        if (!this.failing) {
          this.failing = true;
          const why = result.error?.message ?? 'unknown error';
          this.log(
            `tracing: exporting spans to ${this.destination} failed (${why}); spans are dropped until it works again`,
          );
        }
      } else if (this.failing) {
        this.failing = false;
        this.log(`tracing: exporting spans to ${this.destination} works again`);
      }
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

/** Random ids for the disabled case: one randomBytes call per 4 KiB (about 170 statements). */
class IdPool {
  private pool = Buffer.alloc(0);
  private offset = 0;

  /** `bytes` random bytes as lowercase hex, never all zero (W3C trace-context forbids that). */
  hex(bytes: number): string {
    for (;;) {
      if (this.offset + bytes > this.pool.length) {
        this.pool = randomBytes(4096);
        this.offset = 0;
      }
      const start = this.offset;
      this.offset += bytes;
      for (let k = start; k < start + bytes; k++) {
        if (this.pool[k] !== 0) return this.pool.toString('hex', start, start + bytes);
      }
    }
  }
}

class IdsOnly implements Tracing {
  readonly enabled = false;
  private readonly ids = new IdPool();

  statementSpan(_attributes: Attributes, parent: TraceParent | null): StatementSpan {
    return new IdsOnlySpan(parent?.traceId ?? this.ids.hex(16), this.ids.hex(8), this.ids);
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

class IdsOnlySpan implements StatementSpan {
  constructor(
    readonly traceId: string,
    readonly spanId: string,
    private readonly ids: IdPool,
  ) {}

  child(): SpanIds {
    return { traceId: this.traceId, spanId: this.ids.hex(8) };
  }

  end(): void {}
}
