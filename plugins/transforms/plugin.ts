/**
 * Runs the registered transforms on the rows reads return.
 *
 * Binding goes through RowDescription: a field whose tableID/columnID names a column of a table
 * with transforms is bound, whatever the SQL looked like (aliases, joins, views over the table
 * keep no origin and are not bound). For each batch of DataRows, each bound table's chain runs in
 * position order in the sandbox: a column transform over the values of its columns, a row
 * transform over row objects built from that table's fields. Values the chain left unchanged keep
 * their original bytes; changed ones are encoded in the column's own format.
 */
import { PgError, SqlState } from '../../proxy/errors.js';
import type { FieldDescription } from '../../proxy/wire/backend-messages.js';
import type { CompleteDecision, DescriptionDecision, Plugin, ResultId, ResultInfo, RowBatch, SessionInfo, Statement, StatementDecision } from '../hooks.js';
import { type BatchResult, type ColumnResult, type RunBatch, type SandboxPool, type SandboxValue } from '../../sandbox/index.js';
import { CodecError, decodeValue, encodeValue, type JsValue } from '../shared/codecs/codecs.js';
import { batchSeed } from './batch-seed.js';
import { crossesAsText, fromTextColumn, toTextColumn } from './text-column.js';
import { copyOutRefusal, mayCopyToStdout } from './copy-out.js';
import { mayChangeRegistry } from './registry-change.js';
import type { SqlAnalyser } from '../sql/analyser.js';
import type { ProvenanceService, ReplayMismatch, TimeTravelService } from '../services.js';
import { refusedTable } from './refused-tables.js';
import type { BoundTransform, Registry, TableTransforms } from './registry-cache.js';
import { EXTRA_PREFIX, isExtra } from './row-reads/extra-columns.js';
import { RowReadsStatements, unreadRefusal, type SchemaUsage } from './row-reads/statements.js';
import { visibleFields } from './row-reads/strip.js';
import type { VersionHistory } from './version-history.js';
import type { ReplayCache } from './replay-cache.js';
import { bindAsOf, momentClock, replayContext } from './replay-plan.js';
import { columnType, portions, same, stages, type ResultPlan, type TablePlan } from './result-plan.js';
import { mismatchWarnings, sandboxError } from './transform-errors.js';
import type { HistoryColumns } from './history-columns.js';
import { presentOrigins } from './history-binding.js';

export interface TransformsOptions {
  readonly pool: Pick<SandboxPool, 'run'>;
  /** PostgreSQL's parser, loaded: decides which COPY … TO STDOUT is refused (see copy-out.ts). */
  readonly sql: SqlAnalyser;
  /**
   * The registry in force, read at each RowDescription, so a change applies from the next result
   * on; null while it could not be read yet.
   */
  readonly registry: () => Registry | null;
  /** Roles the session's user belongs to, for the transforms' context. */
  readonly roles?: (user: string) => Promise<readonly string[]>;
  /**
   * Reads the registry again now. Called after a client's request that named `provenance.`
   * (a registry change, most likely) ends, before the client gets its ReadyForQuery, so its next
   * statement sees the change without waiting for the NOTIFY.
   */
  readonly refresh?: () => Promise<void>;
  /** Why the registry cannot be read now, if known (the refusal says it). */
  readonly registryProblem?: () => string | null;
  /**
   * Where each result's executions go once it ended, if anywhere. Whether to record is asked at
   * each RowDescription.
   */
  readonly provenance?: () => ProvenanceService | undefined;
  /** The moment a session reads as of, if any: its results replay the chains of then. */
  readonly timetravel?: () => TimeTravelService | undefined;
  /** Every transform version with its span of validity; null while it could not be read yet. */
  readonly versions?: () => VersionHistory | null;
  /** Replayed batches' outputs, shared by sessions. */
  readonly replayCache?: ReplayCache;
  /** Which table's column each history column holds: read directly in the present, they go through the chain. */
  readonly historyColumns?: () => HistoryColumns | null;
}

const PLUGIN = 'transforms';
/** How long a client's ReadyForQuery may wait for the registry to be read after a change. */
const REFRESH_WAIT_MS = 1_000;

/** The roles the session's user belongs to, as read when it started. */
export function sessionRoles(s: SessionInfo): readonly string[] {
  return (s.pluginState.get(PLUGIN) as string[] | undefined) ?? [];
}

export class TransformsPlugin implements Plugin {
  readonly name = PLUGIN;
  /**
   * A registry change, or DDL that may drop or re-create a transform's target (the registry binds
   * by OID and must learn of a table taking a target's place before that table's next read).
   */
  readonly unitWords = ['provenance.', 'create ', 'drop ', 'alter '];
  /**
   * Only a statement that may change the registry, or DDL, waits for it to be read again (see
   * registry-change.ts): settings and reads that merely name `provenance.` do not.
   */
  marksUnit(text: string): boolean {
    return mayChangeRegistry(this.opts.sql.analyse(text));
  }
  /** Keyed by the result's id, which the seam hands to every hook of that result. */
  private readonly plans = new WeakMap<ResultId, ResultPlan>();
  /** Statements reading a table with a row transform fetch the columns it reads (see row-reads/). */
  private readonly reads: RowReadsStatements;
  /** Brings the Binds of statements rewritten for row transforms, and as-of statements (see row-reads/), to the statement hook. */
  readonly statementWords = [EXTRA_PREFIX, 'provenance.history_'];

  constructor(private readonly opts: TransformsOptions, initialPath?: (s: SessionInfo) => Promise<readonly string[] | null>, schemaUsage?: SchemaUsage) {
    this.reads = new RowReadsStatements(PLUGIN, opts, sessionRoles, initialPath, schemaUsage);
  }

  /** Statements reading a table with a row transform, and the search_path they resolve through (row-reads/). */
  readonly statement = (s: SessionInfo, stmt: Statement): StatementDecision | Promise<StatementDecision> => this.reads.statement(s, stmt);
  readonly readyForQuery = (s: SessionInfo, status: 'I' | 'T' | 'E'): void => this.reads.readyForQuery(s, status);

  /** The registry was read again. */
  registryChanged(): void {
    this.reads.registryChanged();
  }

  /**
   * Results need a look only when some transform is registered or table refused, or while the
   * registry is unknown; and while sessions may read as of a moment, whenever some table had
   * transforms or history (its past may need the chain of then, though nothing is registered now).
   */
  wantsResults(): boolean {
    const registry = this.opts.registry();
    if (registry === null || registry.tables.size > 0 || registry.refused.size > 0 || this.reads.rewrote) return true;
    if (!this.opts.timetravel?.()) return false;
    const versions = this.opts.versions?.() ?? null;
    return versions === null || versions.tables.size > 0;
  }

  /**
   * Waits for the registry to be read again, but not long: the embedded database runs the proxy's
   * own SQL only between other sessions' transactions, and the NOTIFY applies the change anyway.
   */
  async unitDone(): Promise<void> {
    if (!this.opts.refresh) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.opts.refresh(),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, REFRESH_WAIT_MS))),
    ]);
    clearTimeout(timer);
  }

  /**
   * Refuses a COPY … TO STDOUT that may read a table with transforms: its rows would reach the
   * client as CopyData, which the transforms never see (see copy-out.ts). A text without the
   * keyword STDOUT cannot be one, parsed or not.
   */
  copyOut(_s: SessionInfo, text: string): PgError | null {
    if (!mayCopyToStdout(text)) return null;
    return copyOutRefusal(this.opts.sql.analyse(text), this.opts.registry(), this.opts.sql);
  }

  async sessionStart(s: SessionInfo): Promise<void> {
    // First, before anything awaited: the client may send its first statement meanwhile.
    this.reads.sessionStart(s);
    const roles = this.opts.roles ? await this.opts.roles(s.user).catch(() => [] as string[]) : [];
    s.pluginState.set(PLUGIN, roles);
  }

  sessionEnd(s: SessionInfo): void {
    this.reads.sessionEnd(s);
  }

  rowDescription(s: SessionInfo, result: ResultInfo): DescriptionDecision {
    const keep = visibleFields(result.fields);
    const timetravel = this.opts.timetravel?.();
    const moment = timetravel?.asOf(s) ?? null;
    if (timetravel && moment) {
      const bound = bindAsOf(this.opts.versions?.() ?? null, timetravel, result.fields, moment);
      if (bound instanceof PgError) return { action: 'deny', error: bound };
      const clock = momentClock(moment);
      return this.watch(result, bound.tables, clock, { moment, ctx: replayContext(s, moment, clock) }, keep);
    }
    const registry = this.opts.registry();
    if (registry === null) {
      // Fail closed: without the registry there is no telling which columns must be masked.
      if (result.fields.every((f) => f.tableID === 0)) return { action: 'pass' };
      const why = this.opts.registryProblem?.();
      return { action: 'deny', error: new PgError(SqlState.CannotConnectNow, `the transform registry is not loaded yet: table data cannot be served${why ? ` (${why})` : ''}`, 'ERROR', {
        hint: 'The proxy logs in with the --upstream URL\'s user and password (or PGUSER/PGPASSWORD) to read it; see its log.',
      }) };
    }
    if (registry.refused.size > 0) {
      const refused = refusedTable(registry, result.fields, sessionRoles(s));
      if (refused !== null) return { action: 'deny', error: refused };
    }
    if (registry.tables.size === 0 && keep === null) return { action: 'pass' };
    const origins = presentOrigins(result.fields, this.opts.historyColumns?.() ?? null, registry);
    if (origins instanceof PgError) return { action: 'deny', error: origins };
    const byTable = new Map<number, Map<number, number>>();
    origins.forEach((f, i) => {
      if (f.tableID === 0 || !registry.tables.has(f.tableID)) return;
      let m = byTable.get(f.tableID);
      if (!m) byTable.set(f.tableID, (m = new Map()));
      // A column added for a row transform that the client selected too: its own field serves.
      if (keep !== null && isExtra(f) && [...m.values()].includes(f.columnID)) return;
      m.set(i, f.columnID);
    });
    const bound = new Map<TableTransforms, ReadonlyMap<number, number>>();
    for (const [oid, fields] of byTable) {
      const table = registry.tables.get(oid)!;
      if (!table.chain.some((t) => t.columns === null || [...fields.values()].some((a) => t.columns!.has(a)))) continue;
      const unread = unreadRefusal(table, fields, sessionRoles(s));
      if (unread !== null) return { action: 'deny', error: unread };
      bound.set(table, fields);
    }
    return this.watch(result, bound, new Date(), null, keep);
  }

  /**
   * Plans the result's chains (tables whose chain has something to do) and watches its rows; a
   * result carrying columns added for row transforms is watched to strip them.
   */
  private watch(
    result: ResultInfo, bound: ReadonlyMap<TableTransforms, ReadonlyMap<number, number>>, clock: Date, replay: ResultPlan['replay'],
    keep: readonly number[] | null,
  ): DescriptionDecision {
    if (bound.size === 0 && keep === null) return { action: 'pass' };
    const recording = this.opts.provenance?.()?.recording ?? false;
    const tables: TablePlan[] = [...bound].map(([table, fields]) => (
      { table, fields, executions: recording ? portions(table, fields, result.fields) : new Map(), stages: stages(table, fields), misses: 0 }
    ));
    this.plans.set(result.id, { fields: result.fields, tables, clock, dropped: 0, batches: 0, reported: false, replay, keep });
    return keep === null ? { action: 'watch' } : { action: 'rewrite', fields: keep.map((i) => result.fields[i]!), watch: true };
  }

  async dataRows(s: SessionInfo, result: ResultInfo, rows: RowBatch): Promise<{ action: 'rewrite'; rows: RowBatch } | { action: 'deny'; error: PgError }> {
    const plan = this.plans.get(result.id);
    // Watched results all have a plan: rows without one are refused, never served as they are.
    if (!plan) return { action: 'deny', error: new PgError(SqlState.InternalError, 'rows of a result the transforms have no plan for') };
    const fields = plan.fields;
    const ctx = plan.replay?.ctx ?? this.context(s, plan.clock);
    const order = plan.batches++;
    // The batch is this result's own: the transforms change it in place.
    for (const tp of plan.tables) {
      for (const stage of tp.stages) {
        if (stage.length === 1 && stage[0]!.columns === null) {
          const t = stage[0]!;
          const began = this.noteInput(tp, t, rows, order);
          await this.runRowTransform(t, tp, fields, rows, ctx, plan);
          this.noteOutput(tp, t, rows, began, order);
          continue;
        }
        const runs = stage.map(async (t) => {
          const began = this.noteInput(tp, t, rows, order);
          await this.runColumnTransform(t, tp, fields, rows, ctx, plan);
          return began;
        });
        const settled = await Promise.allSettled(runs);
        // The first failure in chain order is the one reported, as if they had run one by one.
        for (const r of settled) if (r.status === 'rejected') throw r.reason;
        settled.forEach((r, i) => this.noteOutput(tp, stage[i]!, rows, (r as PromiseFulfilledResult<number>).value, order));
      }
    }
    return { action: 'rewrite', rows: plan.keep === null ? rows : rows.pick(plan.keep) };
  }

  /** Provenance: a transform's input for batch number `order`; returns when it started. */
  private noteInput(tp: TablePlan, t: BoundTransform, rows: RowBatch, order: number): number {
    const portion = tp.executions.get(t);
    const began = performance.now();
    if (portion) {
      const e = portion.execution;
      if (order === 0) e.startedAt = performance.timeOrigin + began;
      e.input.add(rows, portion.fields, portion.types, order);
      e.rowsIn += rows.rows;
    }
    return began;
  }

  private noteOutput(tp: TablePlan, t: BoundTransform, rows: RowBatch, began: number, order: number): void {
    const portion = tp.executions.get(t);
    if (!portion) return;
    const e = portion.execution;
    e.output.add(rows, portion.fields, portion.types, order);
    e.rowsOut += rows.rows;
    // The union of the batches' spans: time overlapping an earlier batch's is counted once.
    const ended = performance.now();
    e.durationMs += Math.max(0, ended - Math.max(began, e.busyUntil));
    e.busyUntil = Math.max(e.busyUntil, ended);
  }

  /**
   * An Execute that stopped at its row limit: the rows served so far are this result's, recorded
   * now; the portal's next Execute is a result (and a record) of its own.
   */
  async portalSuspended(s: SessionInfo, result: ResultInfo): Promise<void> {
    const plan = this.plans.get(result.id);
    if (plan) await this.report(s, plan, 'complete', null);
  }

  async commandComplete(s: SessionInfo, result: ResultInfo | null, tag: string): Promise<CompleteDecision> {
    const plan = result ? this.plans.get(result.id) : undefined;
    if (!plan) return { action: 'pass' };
    const notices = mismatchWarnings(await this.report(s, plan, 'complete', null));
    if (plan.dropped === 0) return { action: 'pass', notices };
    // "SELECT n" (or "FETCH n", "COPY n"): the count the client sees is what it received.
    const m = /^(\w+) (\d+)$/.exec(tag);
    return m ? { action: 'rewrite', tag: `${m[1]} ${Number(m[2]) - plan.dropped}`, notices } : { action: 'pass', notices };
  }

  async resultError(s: SessionInfo, result: ResultInfo, error: { code: string; message: string }): Promise<void> {
    const plan = this.plans.get(result.id);
    if (plan) await this.report(s, plan, 'error', `${error.code}: ${error.message}`);
  }

  /** Hands a result's executions to provenance, once; returns the replayed ones that did not reproduce their record. */
  private async report(s: SessionInfo, plan: ResultPlan, outcome: 'complete' | 'error', error: string | null): Promise<readonly ReplayMismatch[]> {
    const provenance = this.opts.provenance?.();
    if (plan.reported || !provenance) return [];
    plan.reported = true;
    const executions = plan.tables.flatMap((tp) => [...tp.executions.values()].map((p) => p.execution));
    if (executions.length === 0) return [];
    const replay = plan.replay;
    const recorded = await provenance.record(s, replay
      ? { kind: 'replay', executions, outcome, error, roles: replay.moment.roles, asOf: { at: replay.moment.at, user: replay.moment.user }, cached: plan.tables.filter((tp) => tp.misses === 0).map((tp) => tp.table.name) }
      : { kind: 'read', executions, outcome, error, roles: sessionRoles(s) });
    return recorded ?? [];
  }

  /** A batch through the sandbox; a replayed one through the replay cache. */
  private run(plan: ResultPlan, tp: TablePlan, batch: RunBatch & { readonly items: readonly SandboxValue[] }, input: () => string): Promise<BatchResult>;
  private run(plan: ResultPlan, tp: TablePlan, batch: RunBatch, input: () => string): Promise<ColumnResult>;
  private run(plan: ResultPlan, tp: TablePlan, batch: RunBatch, input: () => string): Promise<ColumnResult> {
    const cache = this.opts.replayCache;
    return plan.replay && cache ? cache.run(batch, input, tp) : this.opts.pool.run(batch);
  }

  private context(s: SessionInfo, clock: Date): SandboxValue {
    return {
      user: s.user,
      roles: [...sessionRoles(s)],
      database: s.database,
      application_name: s.applicationName,
      client_address: s.clientAddress,
      client_port: s.clientPort,
      session_id: s.id,
      statement_timestamp: clock.toISOString(),
    };
  }

  private async runColumnTransform(
    t: BoundTransform, tp: TablePlan, fields: readonly FieldDescription[], rows: RowBatch, ctx: SandboxValue, plan: ResultPlan,
  ): Promise<void> {
    for (const [index, attnum] of tp.fields) {
      if (!t.columns!.has(attnum)) continue;
      const type = columnType(fields[index]!);
      // The values as Buffers only when they are decoded one by one, or a seed is wanted.
      const raws = (): (Buffer | null)[] => Array.from({ length: rows.rows }, (_, r) => rows.field(r, index));
      try {
        const column = crossesAsText(type) ? toTextColumn(rows, index) : null;
        const given = column === null ? raws() : null;
        const inputs = given === null ? null : given.map((b) => decodeValue(b, type));
        const seed = (): string => batchSeed(t.fn.hash, given ?? raws());
        const res = await this.run(plan, tp, {
          fn: t.fn, params: t.params, ctx, clock: plan.clock, seed, items: column ?? (inputs as SandboxValue[]),
        }, () => `${type.oid}/${type.typmod}/${type.format}:${seed()}`);
        if ('text' in res) {
          fromTextColumn(res.text, rows, index, type);
          continue;
        }
        // Items: given them, or some result of a text column was not a string or null.
        const before = given ?? raws();
        const values = inputs ?? before.map((b) => decodeValue(b, type));
        res.items.forEach((v, r) => {
          if (!same(v, values[r])) rows.set(r, index, encodeValue(v as JsValue, type));
        });
      } catch (err) {
        throw sandboxError(err, t);
      }
    }
  }

  private async runRowTransform(
    t: BoundTransform, tp: TablePlan, fields: readonly FieldDescription[], rows: RowBatch, ctx: SandboxValue, plan: ResultPlan,
  ): Promise<void> {
    // Keyed in the table's column order, whatever the select list's.
    const cols = [...tp.fields].sort((a, b) => a[1] - b[1]).map(([index, attnum]) => {
      const f = fields[index]!;
      return { index, name: tp.table.columnNames.get(attnum) ?? f.name, type: columnType(f) };
    });
    const kept: number[] = [];
    try {
      const inputs = Array.from({ length: rows.rows }, (_, r) => Object.fromEntries(cols.map((c) => [c.name, decodeValue(rows.field(r, c.index), c.type)])));
      const raws = (): (Buffer | null)[] => Array.from({ length: rows.rows }, (_, r) => cols.map((c) => rows.field(r, c.index))).flat();
      const seed = (): string => batchSeed(t.fn.hash, raws());
      const res = await this.run(plan, tp, { fn: t.fn, params: t.params, ctx, clock: plan.clock, seed, items: inputs as SandboxValue[] },
        () => `${JSON.stringify(cols.map((c) => [c.name, c.type.oid, c.type.typmod, c.type.format]))}:${seed()}`);
      res.items.forEach((item, r) => {
        if (item === null) {
          plan.dropped++;
          return;
        }
        if (typeof item !== 'object' || Array.isArray(item) || item instanceof Date || item instanceof Uint8Array) {
          throw new CodecError(`a row transform must return an object or null, got ${Array.isArray(item) ? 'an array' : typeof item}`);
        }
        const keys = Object.keys(item);
        if (keys.length !== new Set(cols.map((c) => c.name)).size || cols.some((c) => !(c.name in item))) {
          throw new CodecError(`a row transform may not add or remove columns (expected ${cols.map((c) => c.name).join(', ')}; got ${keys.join(', ')})`);
        }
        for (const c of cols) {
          const v = item[c.name] as JsValue;
          if (!same(v, inputs[r]![c.name])) rows.set(r, c.index, encodeValue(v, c.type));
        }
        kept.push(r);
      });
    } catch (err) {
      throw sandboxError(err, t);
    }
    if (kept.length !== rows.rows) rows.keep(kept);
  }
}
