/**
 * Materialised versions in a session: the proxy answers a statement that is exactly a call of
 * `provenance.materialize(…)` itself (the transforms run here), in both protocols, with NOTICEs of
 * its progress, stopped by a CancelRequest; it answers `SHOW provenance.last_read`; and it records
 * the reads the time-travel plugin served from a materialisation (see serving.ts) as executions of
 * kind `materialized`, counting them in the catalogue.
 */
import { PgError, SqlState } from '../../proxy/errors.js';
import type { CompleteDecision, DescriptionDecision, LocalResult, Plugin, ResultInfo, RowBatch, RowsDecision, SessionInfo, Statement, StatementDecision } from '../hooks.js';
import type { AsOfMoment, AsOfTable, ChainLink, Execution, ResultExecutions, Services } from '../services.js';
import type { SqlRunner } from '../registry/migrate.js';
import { LAST_READ, isShowLastRead, materializeCall, type MaterializeCall } from './call.js';
import { createMaterialization } from './create.js';
import { resolveCall } from './request.js';
import { MaterializedTargets, servedTables } from './serving.js';

const PLUGIN = 'materialize';
const COLUMN = 'materialize';

type Served = 'replayed' | 'cached' | 'materialized';

interface Pending {
  readonly id: number;
  readonly table: AsOfTable;
  readonly moment: AsOfMoment;
}

interface SessionState {
  status: 'I' | 'T' | 'E';
  /** Statements prepared as a call, by name. */
  readonly prepared: Map<string, MaterializeCall>;
  /** The run under way, which a CancelRequest stops. */
  running: AbortController | null;
  /** How each table of the session's last as-of read was served, by name. */
  lastRead: Map<string, Served>;
  /** Tables of the statement being read that are served from a materialisation, for its next result. */
  pending: readonly Pending[];
  /** The result recording them, and the rows it served. */
  recording: { readonly result: ResultInfo['id']; rows: number; readonly startedAt: number } | null;
}

const bare = (name: string): string => name.replace(/"/g, '');

export class MaterializePlugin implements Plugin {
  readonly name = PLUGIN;
  /** Before time travel: a call of materialize is answered here, in any session. */
  readonly order = -20;
  readonly statementWords = ['provenance.materialize', LAST_READ];
  /** Sessions with served reads not recorded yet. */
  private pendingSessions = 0;
  private readonly targets = new MaterializedTargets();

  constructor(private readonly services: Services) {}

  private state(s: SessionInfo): SessionState {
    let st = s.pluginState.get(PLUGIN) as SessionState | undefined;
    if (st === undefined) {
      st = { status: 'I', prepared: new Map(), running: null, lastRead: new Map(), pending: [], recording: null };
      s.pluginState.set(PLUGIN, st);
    }
    return st;
  }

  /** The proxy's connection when a query on it cannot wait on this session (the embedded database's single backend). */
  private store(): SqlRunner | null {
    if (this.services.embedded?.busy()) return null;
    return this.services.state.current();
  }

  readyForQuery(s: SessionInfo, status: 'I' | 'T' | 'E'): void {
    const st = s.pluginState.get(PLUGIN) as SessionState | undefined;
    if (st !== undefined) st.status = status;
    else if (status !== 'I') this.state(s).status = status;
  }

  cancel(s: SessionInfo): void {
    (s.pluginState.get(PLUGIN) as SessionState | undefined)?.running?.abort();
  }

  async statement(s: SessionInfo, stmt: Statement): Promise<StatementDecision> {
    const st = this.state(s);
    if (stmt.kind === 'bind') {
      const call = st.prepared.get(stmt.statement);
      if (call === undefined) return { action: 'pass' };
      if (stmt.paramFormats.some((f) => f === 1)) {
        return { action: 'deny', error: new PgError(SqlState.FeatureNotSupported, 'provenance.materialize() takes its parameters in text format') };
      }
      return this.answerCall(s, st, call, stmt.params);
    }
    const analysis = this.services.sql.analyse(stmt.text);
    if (!analysis.ok || analysis.readings.length !== 1) return { action: 'pass' };
    const reading = analysis.readings[0]!;
    if (isShowLastRead(reading)) {
      const show = (): string => [...st.lastRead].map(([t, how]) => `${t}: ${how}`).join(', ');
      return { action: 'answer', result: { columns: [LAST_READ], rows: [[show()]], tag: 'SHOW', run: () => ({ rows: [[show()]], tag: 'SHOW' }) } };
    }
    const call = materializeCall(reading);
    if (call === null) return { action: 'pass' };
    if (stmt.kind === 'parse') {
      st.prepared.set(stmt.name, call);
      return { action: 'answer', result: { columns: [COLUMN], tag: 'SELECT 0', rows: [] } };
    }
    return this.answerCall(s, st, call, null);
  }

  private async answerCall(s: SessionInfo, st: SessionState, call: MaterializeCall, params: readonly (Buffer | null)[] | null): Promise<StatementDecision> {
    if (st.status !== 'I') {
      return { action: 'deny', error: new PgError('25001', 'provenance.materialize() cannot run inside a transaction block') };
    }
    const store = this.services.state.current();
    const transforms = this.services.transforms;
    if (store === null || transforms === undefined) {
      return { action: 'deny', error: new PgError(SqlState.CannotConnectNow, 'the proxy\'s own connection to the database is not available: nothing can be materialised') };
    }
    const running = new AbortController();
    st.running = running;
    try {
      const req = await resolveCall(this.services, store, s, call, params);
      const id = await createMaterialization({ store, transforms }, {
        session: s, oid: req.oid, moment: req.moment, createdBy: s.user, reason: 'manual', signal: running.signal,
        progress: (percent) => s.notice?.(new PgError('00000', `materialize: ${percent}% done`, 'NOTICE')),
      });
      this.targets.changed();
      const result: LocalResult = { columns: [COLUMN], rows: [[String(id)]], tag: 'SELECT 1' };
      return { action: 'answer', result };
    } catch (err) {
      if (err instanceof PgError) return { action: 'deny', error: err };
      throw err;
    } finally {
      st.running = null;
    }
  }

  /** The service time travel asks while it rewrites an as-of statement. */
  async serving(s: SessionInfo, text: string, tables: readonly AsOfTable[]): Promise<ReadonlyMap<number, number>> {
    const st = this.state(s);
    const served = await servedTables(this.services, this.store(), s, text, tables, this.targets);
    st.lastRead = new Map(tables.map((t) => [t.name, served.has(t.location) ? 'materialized' : 'replayed']));
    if (st.pending.length === 0 && served.size > 0) this.pendingSessions++;
    st.pending = [...served.values()];
    return new Map([...served].map(([location, p]) => [location, p.id]));
  }

  /** A replay's record: which of its tables the replay cache served whole. */
  noteRecord(s: SessionInfo, r: ResultExecutions): void {
    if (r.kind !== 'replay') return;
    const st = s.pluginState.get(PLUGIN) as SessionState | undefined;
    if (st === undefined) return;
    const cached = new Set((r.cached ?? []).map(bare));
    for (const e of r.executions) {
      const name = bare(e.table.name);
      for (const t of st.lastRead.keys()) if (bare(t) === name) st.lastRead.set(t, cached.has(name) ? 'cached' : 'replayed');
    }
  }

  wantsResults(): boolean {
    return this.pendingSessions > 0;
  }

  rowDescription(s: SessionInfo, result: ResultInfo): DescriptionDecision {
    const st = s.pluginState.get(PLUGIN) as SessionState | undefined;
    if (st === undefined || st.pending.length === 0 || st.recording !== null) return { action: 'pass' };
    st.recording = { result: result.id, rows: 0, startedAt: Date.now() };
    return { action: 'watch' };
  }

  dataRows(s: SessionInfo, result: ResultInfo, rows: RowBatch): RowsDecision {
    const st = s.pluginState.get(PLUGIN) as SessionState | undefined;
    if (st?.recording?.result === result.id) st.recording.rows += rows.rows;
    return { action: 'pass' };
  }

  async commandComplete(s: SessionInfo, result: ResultInfo | null): Promise<CompleteDecision> {
    const st = s.pluginState.get(PLUGIN) as SessionState | undefined;
    if (st === undefined || result === null || st.recording?.result !== result.id) return { action: 'pass' };
    const { rows, startedAt } = st.recording;
    const pending = st.pending;
    st.recording = null;
    st.pending = [];
    this.pendingSessions--;
    await this.record(s, pending, rows, startedAt);
    return { action: 'pass' };
  }

  resultError(s: SessionInfo, result: ResultInfo): void {
    const st = s.pluginState.get(PLUGIN) as SessionState | undefined;
    if (st?.recording?.result !== result.id) return;
    st.recording = null;
    st.pending = [];
    this.pendingSessions--;
  }

  sessionEnd(s: SessionInfo): void {
    const st = s.pluginState.get(PLUGIN) as SessionState | undefined;
    if (st !== undefined && st.pending.length > 0) this.pendingSessions--;
    st?.running?.abort();
  }

  /** Reads served from materialisations: an execution of kind `materialized` each, and the catalogue's count. */
  private async record(s: SessionInfo, served: readonly Pending[], rows: number, startedAt: number): Promise<void> {
    const store = this.services.state.current();
    for (const p of served) {
      void store?.query(`UPDATE provenance.materialization SET reads_served = reads_served + 1, last_read = pg_catalog.now() WHERE id = $1`, [p.id])
        .catch((err: unknown) => this.services.log(`materialize: counting a read of materialisation ${p.id} failed: ${err instanceof Error ? err.message : String(err)}`));
    }
    const provenance = this.services.provenance;
    if (!provenance?.recording || store === null) return;
    for (const p of served) {
      const row = (await store.query(`SELECT chain, input_hash, output_hash FROM provenance.materialization WHERE id = $1`, [p.id])).rows[0];
      if (row === undefined) continue;
      const chain = (typeof row['chain'] === 'string' ? JSON.parse(row['chain']) : row['chain']) as ChainLink[];
      const last = chain[chain.length - 1];
      if (last === undefined) continue;
      const digest = (hex: unknown): { hex(): string } => ({ hex: () => String(hex ?? '') });
      const execution: Execution = {
        transform: { name: last.name, version: last.version, fn: { hash: last.function_hash }, params: last.params },
        table: { oid: p.table.oid, name: p.table.name },
        columns: null,
        input: digest(row['input_hash']),
        output: digest(row['output_hash']),
        rowsIn: rows,
        rowsOut: rows,
        startedAt,
        durationMs: Date.now() - startedAt,
        parent: null,
        chainEnd: true,
      };
      await provenance.record(s, {
        kind: 'materialized', executions: [execution], outcome: 'complete', error: null, roles: p.moment.roles,
        asOf: { at: p.moment.at, user: p.moment.user }, materialization: p.id,
      });
    }
  }
}
