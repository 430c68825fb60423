/**
 * Provenance: turns each result's transform executions into DAG records (written by the
 * Recorder) and OpenTelemetry spans, one span per client statement with a child per execution.
 * Also answers `SHOW provenance.status`.
 *
 * Records of one result: each execution gets an id; its parent is the execution before it in its
 * table's chain (none: it read the table's rows, a data node carrying its input hash); the last
 * of each chain feeds the result node (result_id), where the chains of a join meet.
 */
import type { LocalResult, Plugin, SessionInfo, StatementTrace } from '../hooks.js';
import type { Execution, ProvenanceService, ReplayMismatch, ResultExecutions } from '../services.js';
import type { StatementShape } from './statement-shape.js';
import { ShapeCache } from './shape-cache.js';
import type { Attributes, StatementSpan, Tracing } from './tracing.js';
import type { Recorder } from './recorder.js';
import { uuidv7 } from './ids.js';
import { RoleTracker } from './role-tracker.js';
import type { SqlAnalyser } from '../sql/analyser.js';
import type { ExecutionRecord } from './execution-insert.js';
import type { SqlRunner } from '../registry/migrate.js';
import { recordedReads, type RecordedRead } from './replay-check.js';
import { exactStatementOf, type ExactStatementOptions } from './exact-statement.js';

export type Durability = 'off' | 'async' | 'sync';

export interface ProvenanceOptions {
  readonly durability: Durability;
  /** Null when durability is off. */
  readonly recorder: Recorder | null;
  readonly tracing: Tracing;
  /** Whether any transform is registered: without one there is nothing to record. */
  readonly transformsActive: () => boolean;
  /** Unique per proxy process: session ids are made of it. */
  readonly proxyId: string;
  /** The database server, for the spans' server.address and server.port. */
  readonly server: { readonly address: string; readonly port: number | null };
  /** Where records go, for SHOW provenance.status. */
  readonly storeName: string;
  /** PostgreSQL's parser, to read the statements that change the role. */
  readonly sql: SqlAnalyser;
  /**
   * Where replays look up the reads they repeat: the database holding the records, and whether
   * it can answer before the client's CommandComplete (the embedded one cannot while a session
   * holds it: the lookup then waits for its turn and only the record carries the outcome).
   */
  readonly records?: () => { readonly db: SqlRunner; readonly now: boolean } | null;
  /** Whether reads record their exact statement (text and parameters) for replays; null: not. */
  readonly recordStatements?: ExactStatementOptions | null;
  /** The cache of replayed results, for SHOW provenance.status. */
  readonly replayCache?: () => { readonly hits: number; readonly misses: number; readonly bytes: number } | undefined;
  readonly log: (msg: string) => void;
}

const PLUGIN = 'provenance';
const STATUS = /^\s*show\s+provenance\.status\s*;?\s*$/i;

interface SessionState {
  readonly role: RoleTracker;
}

/** The session user as the server reports it (it authenticated the login), else the login's name. */
function sessionUser(s: SessionInfo): string {
  return s.serverParams.get('session_authorization') ?? s.user;
}

/** Whether the startup packet may have set a role (a role parameter, or -c role=… in options). */
function startupSetsRole(s: SessionInfo): boolean {
  return s.startupParams.has('role') || /role/i.test(s.startupParams.get('options') ?? '');
}

/** Epoch milliseconds (fractional) as ISO 8601 to the microsecond. */
function isoMicros(ms: number): string {
  const whole = Math.floor(ms);
  const micros = Math.floor((ms - whole) * 1000);
  return new Date(whole).toISOString().replace('Z', `${String(micros).padStart(3, '0')}Z`);
}

/** IPv4 clients show as `::ffff:a.b.c.d` on a dual-stack socket; auditors expect `a.b.c.d`. */
function clientAddress(a: string): string {
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

export class ProvenancePlugin implements Plugin, ProvenanceService {
  readonly name = PLUGIN;
  readonly localCommandKeywords = ['show'];
  /** Statement texts repeat, or differ only in their constants: normalise each kind once. */
  private readonly shapes: ShapeCache;

  constructor(private readonly opts: ProvenanceOptions) {
    this.shapes = new ShapeCache(opts.sql);
  }

  /** Whether results' executions are to be reported at all. */
  get recording(): boolean {
    return this.opts.durability !== 'off' || this.opts.tracing.enabled;
  }

  wantsStatements(): boolean {
    return this.opts.tracing.enabled || (this.recording && this.opts.transformsActive());
  }

  sessionStart(s: SessionInfo): void {
    s.pluginState.set(PLUGIN, { role: new RoleTracker(this.opts.sql, sessionUser(s), startupSetsRole(s)) } satisfies SessionState);
  }

  statementStart(s: SessionInfo, t: StatementTrace): void {
    if (this.opts.tracing.enabled) t.pluginState.set(PLUGIN, this.startSpan(s, t));
  }

  statementEnd(s: SessionInfo, t: StatementTrace): void {
    (t.pluginState.get(PLUGIN) as StatementSpan | undefined)?.end(performance.timeOrigin + performance.now(), t.errorCode);
    (s.pluginState.get(PLUGIN) as SessionState | undefined)?.role.statementEnd(t.text, t.errorCode);
  }

  readyForQuery(s: SessionInfo, status: 'I' | 'T' | 'E'): void {
    (s.pluginState.get(PLUGIN) as SessionState | undefined)?.role.readyForQuery(status);
  }

  localCommand(_s: SessionInfo, text: string): LocalResult | null {
    if (!STATUS.test(text)) return null;
    const st = this.opts.recorder?.status() ?? { queued: 0, spooled: 0, written: 0, lastError: null };
    const cache = this.opts.replayCache?.() ?? { hits: 0, misses: 0, bytes: 0 };
    return {
      columns: ['durability', 'queued', 'spooled', 'written', 'store', 'tracing', 'last_error', 'replay_cache_hits', 'replay_cache_misses', 'replay_cache_bytes'],
      rows: [[
        this.opts.durability, String(st.queued), String(st.spooled), String(st.written), this.opts.storeName,
        this.opts.tracing.enabled ? 'on' : 'off', st.lastError, String(cache.hits), String(cache.misses), String(cache.bytes),
      ]],
      tag: 'SHOW',
    };
  }

  /**
   * A result's executions: records to the recorder, child spans under the statement's span. With
   * sync durability the client's CommandComplete waits for them; otherwise they are made once the
   * client has its answer (hashing the portions is most of the work).
   */
  record(s: SessionInfo, r: ResultExecutions): Promise<void | readonly ReplayMismatch[]> | void {
    const trace = s.statement;
    const state = s.pluginState.get(PLUGIN) as SessionState | undefined;
    const currentRole = state ? state.role.role : null;
    const later = r.kind !== 'replay' && this.opts.durability !== 'sync';
    // Untraced, a span is only ids: in async mode it (and the statement's shape it needs for a
    // traceparent) is made with the records, once the client has its answer. Results are
    // recorded in the order they came, so a statement's later results still share its span.
    const made = later && !this.opts.tracing.enabled ? null : this.statementSpanOf(s, trace, r);
    const span = (): { span: StatementSpan; own: boolean } => made ?? this.statementSpanOf(s, trace, r);
    if (r.kind === 'replay') return this.replay(s, trace, span(), currentRole, r);
    // Which statement of a simple Query the result is of: known now, not once the next one ended.
    const inQuery = trace?.answered ?? 0;
    if (!later) return this.write(s, trace, span(), currentRole, r, undefined, inQuery);
    setImmediate(() => {
      try {
        void this.write(s, trace, span(), currentRole, r, undefined, inQuery);
      } catch (err) {
        this.opts.log(`provenance: recording an execution failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
  }

  /**
   * A replay's executions, each checked against the recorded read it repeats (see
   * replay-check.ts), then recorded with the outcome. The client waits for the check where the
   * database can answer at once; otherwise the check waits for its turn and a mismatch is logged.
   */
  private async replay(
    s: SessionInfo, trace: StatementTrace | null, span: { span: StatementSpan; own: boolean }, currentRole: string | null, r: ResultExecutions,
  ): Promise<readonly ReplayMismatch[]> {
    const records = this.opts.records?.() ?? null;
    const keys = r.executions.map((e) => ({ functionHash: e.transform.fn.hash, params: e.transform.params, inputHash: e.input.hex() }));
    const check = async (): Promise<readonly ReplayMismatch[]> => {
      let reads: (RecordedRead | null)[] = keys.map(() => null);
      if (records === null) this.opts.log('provenance: the records cannot be read now; replayed executions are recorded unchecked');
      else reads = await recordedReads(records.db, keys, r.asOf?.user ?? sessionUser(s), r.asOf?.at ?? null);
      const ids = new Map<Execution, string>();
      await this.write(s, trace, span, currentRole, r, (e, id) => {
        ids.set(e, id);
        return reads[r.executions.indexOf(e)] ?? null;
      });
      return r.executions.flatMap((e, i) => {
        const read = reads[i];
        const output = e.output.hex();
        if (!read || read.outputHash === output) return [];
        return [{ transform: e.transform, replay: ids.get(e) ?? '', recorded: read.id, output, recordedOutput: read.outputHash }];
      });
    };
    if (records === null || records.now) return check();
    void check().then(
      (found) => found.forEach((m) => this.opts.log(`provenance: replayed execution ${m.replay} did not reproduce recorded execution ${m.recorded}`)),
      (err: unknown) => this.opts.log(`provenance: recording a replay failed: ${err instanceof Error ? err.message : String(err)}`),
    );
    return [];
  }

  /** The span of the statement behind a result (made now if it was not traced from its start). */
  private statementSpanOf(s: SessionInfo, trace: StatementTrace | null, r: ResultExecutions): { span: StatementSpan; own: boolean } {
    const span = trace ? (trace.pluginState.get(PLUGIN) as StatementSpan | undefined) : undefined;
    if (span) return { span, own: false };
    // Not traced from its start (tracking began mid-statement, or tracing is off): the ids still
    // come from a span, so a record always names one (an exported one when tracing is on).
    const made = this.startSpan(s, trace ?? { text: '', startedAt: r.executions[0]?.startedAt ?? Date.now() });
    if (trace) trace.pluginState.set(PLUGIN, made);
    return { span: made, own: trace === null };
  }

  private write(
    s: SessionInfo, trace: StatementTrace | null, statementSpan: { span: StatementSpan; own: boolean }, currentRole: string | null, r: ResultExecutions,
    replayOf: (e: Execution, id: string) => RecordedRead | null = () => null, inQuery = 0,
  ): Promise<void> | void {
    const shape = this.shape(trace?.text ?? '');
    const { span, own: ownSpan } = statementSpan;
    const resultId = uuidv7();
    const exact = this.opts.recordStatements && trace && r.kind === 'read'
      ? { ...exactStatementOf(trace, shape, Math.max(0, ...r.executions.map((e) => e.rowsIn)), this.opts.recordStatements, inQuery),
          statement_at: isoMicros(trace.startedAt) }
      : null;
    const ids = new Map<Execution, string>();
    const rows: ExecutionRecord[] = [];
    for (const e of r.executions) {
      const id = uuidv7();
      ids.set(e, id);
      const t = e.transform;
      const inputHash = e.input.hex();
      const outputHash = e.output.hex();
      const read = replayOf(e, id);
      const verified = read === null ? null : read.outputHash === outputHash;
      // Untraced, a span is only ids: attributes would be dropped unread.
      const child = span.child(`transform ${t.name}`, !this.opts.tracing.enabled ? {} : {
        'provenance.execution.id': id,
        'provenance.result.id': resultId,
        'provenance.transform.name': t.name,
        'provenance.transform.version': t.version,
        'provenance.function.hash': t.fn.hash,
        'provenance.table': e.table.name,
        ...(e.columns ? { 'provenance.columns': e.columns } : {}),
        'provenance.input.hash': inputHash,
        'provenance.output.hash': outputHash,
        'provenance.rows.in': e.rowsIn,
        'provenance.rows.out': e.rowsOut,
        'provenance.params': JSON.stringify(t.params),
        'provenance.outcome': r.outcome,
        'provenance.kind': r.kind,
        ...(r.asOf !== undefined ? { 'provenance.as_of': r.asOf.at } : {}),
        ...(read ? { 'provenance.replay_of': read.id, 'provenance.verified': verified === true } : {}),
        ...(r.materialization !== undefined ? { 'provenance.materialization': r.materialization } : {}),
      }, e.startedAt, e.startedAt + e.durationMs);
      rows.push({
        id,
        result_id: resultId,
        parent_id: e.parent ? ids.get(e.parent) ?? null : null,
        chain_end: e.chainEnd,
        transform_name: t.name,
        transform_version: t.version,
        function_hash: t.fn.hash,
        table_oid: e.table.oid,
        table_name: e.table.name,
        columns: e.columns,
        input_hash: inputHash,
        output_hash: outputHash,
        rows_in: e.rowsIn,
        rows_out: e.rowsOut,
        executed_at: new Date(e.startedAt).toISOString(),
        duration_ms: e.durationMs,
        client_addr: clientAddress(s.clientAddress),
        client_port: s.clientPort,
        user_name: sessionUser(s),
        current_role_name: currentRole,
        roles: r.roles,
        database: s.database,
        application_name: s.applicationName,
        session_id: `${this.opts.proxyId}-${s.id}`,
        statement_fingerprint: shape.fingerprint,
        statement_text: shape.normalized,
        params: t.params,
        kind: r.kind,
        outcome: r.outcome,
        error: r.error,
        trace_id: child.traceId,
        span_id: child.spanId,
        proxy_id: this.opts.proxyId,
        ...(r.kind === 'replay' ? { as_of: r.asOf?.at ?? null, replay_of: read?.id ?? null, verified } : {}),
        ...(r.kind === 'materialized' ? { as_of: r.asOf?.at ?? null, materialization_id: r.materialization ?? null } : {}),
        ...exact,
      });
    }
    if (ownSpan) span.end(performance.timeOrigin + performance.now(), r.outcome === 'error' ? 'XX000' : null);
    if (this.opts.durability === 'off' || !this.opts.recorder) return;
    return this.opts.recorder.add(rows, this.opts.durability === 'sync');
  }

  private shape(text: string): StatementShape {
    return this.shapes.get(text);
  }

  private startSpan(s: SessionInfo, t: { readonly text: string; readonly startedAt: number }): StatementSpan {
    const shape = this.shape(t.text);
    const attributes: Attributes = {
      'db.system.name': 'postgresql',
      'db.namespace': s.database,
      'db.query.summary': shape.summary,
      'db.query.text': shape.normalized,
      'server.address': this.opts.server.address,
      'client.address': clientAddress(s.clientAddress),
      'client.port': s.clientPort,
      'db.user': s.user,
      'provenance.session.id': `${this.opts.proxyId}-${s.id}`,
    };
    if (shape.operation) attributes['db.operation.name'] = shape.operation;
    if (this.opts.server.port !== null) attributes['server.port'] = this.opts.server.port;
    if (s.applicationName) attributes['provenance.application_name'] = s.applicationName;
    return this.opts.tracing.statementSpan(attributes, shape.traceparent, t.startedAt);
  }
}
