/**
 * The client statements of a session, while a plugin tracks them (for spans, and the statement
 * behind a result): each starts when it is sent and ends with its result, or at its unit's
 * ReadyForQuery when an earlier error made the server skip it.
 */
import type { PluginHost } from '../plugins/host.js';
import type { SessionInfo, StatementBinding, StatementTrace } from '../plugins/hooks.js';
import { SqlState } from './errors.js';
import { Frontend } from './wire/codes.js';
import { decodeBindHead, decodeExecute, decodeParse, decodeQuery, decodeTarget } from './wire/frontend-messages.js';
import type { Unit } from './session-parts.js';

export class StatementTraces {
  /** Statements of the unit not closed yet by a Sync (tracked statements only). */
  private open: StatementTrace[] = [];
  /** Tracked statements not ended yet: while any is, the scanner watches what ends them. */
  live = 0;
  /** Portal → the statement it was bound to and its Bind, while statements are tracked. */
  private readonly portals = new Map<string, BoundPortal>();
  /** Statement name → the parameter types its Parse declared. */
  private readonly paramTypes = new Map<string, readonly number[]>();

  constructor(
    private readonly plugins: PluginHost,
    private readonly info: SessionInfo,
    /** Statement texts by name, shared with the statement path. */
    private readonly statements: Map<string, string>,
    private readonly units: readonly Unit[],
  ) {}

  get hasOpen(): boolean {
    return this.open.length > 0;
  }

  /** The statements of the unit a Sync (or Query) closes. */
  takeOpen(): StatementTrace[] {
    const open = this.open;
    this.open = [];
    return open;
  }

  /** `text`: the statement's text, or a Query message whose text checkQuery found whole (decoded when read). */
  begin(text: string | Buffer, protocol: 'simple' | 'extended', binding?: StatementBinding): void {
    const trace = new Trace(text, protocol, binding);
    this.open.push(trace);
    this.live++;
    this.plugins.statementStart(this.info, trace);
  }

  private end(trace: StatementTrace): void {
    if (trace.ended) return;
    trace.ended = true;
    this.live--;
    this.plugins.statementEnd(this.info, trace);
  }

  /**
   * A statement the proxy answers itself starts now and ends when its answer is made: `make`
   * wrapped so that it does.
   */
  local(text: string, make: () => Buffer[], errorCode: string | null, protocol: 'simple' | 'extended'): () => Buffer[] {
    const trace = new Trace(text, protocol);
    this.plugins.statementStart(this.info, trace);
    return () => {
      const out = make();
      trace.errorCode = errorCode;
      trace.ended = true;
      this.plugins.statementEnd(this.info, trace);
      return out;
    };
  }

  /** The statement being answered: the first not ended of the oldest unit waiting (or the open one). */
  current(): StatementTrace | null {
    if (this.live === 0) return null;
    const head = this.units[0];
    const list = head ? (head.kind === 'upstream' ? head.statements : undefined) : this.open;
    if (!list) return null;
    for (const t of list) if (!t.ended) return t;
    return null;
  }

  /** A result of the current statement ended: an Execute ends with it; a simple Query at ReadyForQuery. */
  resultEnd(errorCode: string | null): void {
    const t = this.current();
    if (!t) return;
    if (errorCode !== null) t.errorCode ??= errorCode;
    if (t.protocol === 'extended') this.end(t);
    else if (t instanceof Trace) t.answered++;
  }

  /** ReadyForQuery: whatever of the unit did not end ran into an earlier error and was skipped. */
  unitEnd(unit: Unit | undefined): void {
    const list = unit ? (unit.kind === 'upstream' ? unit.statements : undefined) : this.open;
    if (!list) return;
    let error: string | null = null;
    for (const t of list) {
      error = t.errorCode ?? error;
      if (t.ended) continue;
      t.errorCode ??= error;
      this.end(t);
    }
    if (!unit) this.open = [];
  }

  /** The session ends: statements cut short by it end as failed. */
  cutShort(): void {
    if (this.live === 0) return;
    for (const t of [...this.units.flatMap((u) => (u.kind === 'upstream' ? u.statements ?? [] : [])), ...this.open]) {
      t.errorCode ??= SqlState.ConnectionFailure;
      this.end(t);
    }
  }

  /** Remembers which text each portal runs, and starts a trace at each Execute. */
  extended(code: number, raw: Buffer): void {
    switch (code) {
      case Frontend.Parse: {
        const p = decodeParse(raw);
        this.statements.set(p.name, p.text);
        this.paramTypes.set(p.name, p.paramTypes);
        break;
      }
      case Frontend.Bind: {
        const b = decodeBindHead(raw);
        this.portals.set(b.portal, { text: this.statements.get(b.statement) ?? '', paramTypes: this.paramTypes.get(b.statement) ?? [], bind: raw, executes: 0 });
        break;
      }
      case Frontend.Execute: {
        const e = decodeExecute(raw);
        const p = this.portals.get(e.portal);
        if (!p) {
          this.begin('', 'extended');
          break;
        }
        this.begin(p.text, 'extended', { paramTypes: p.paramTypes, bind: p.bind, maxRows: e.maxRows, chunk: p.executes++ });
        break;
      }
      case Frontend.Close: {
        const t = decodeTarget(raw);
        if (t.target === 'P') this.portals.delete(t.name);
        else if (t.name !== '') {
          this.statements.delete(t.name);
          this.paramTypes.delete(t.name);
        }
        break;
      }
    }
  }
}

interface BoundPortal {
  readonly text: string;
  readonly paramTypes: readonly number[];
  readonly bind: Buffer;
  executes: number;
}

/**
 * A client statement starting now. Plugins that only count statements (metrics) read neither its
 * text nor its state, so a Query's text is decoded, and the state made, when first read.
 */
class Trace implements StatementTrace {
  readonly startedAt = performance.timeOrigin + performance.now();
  errorCode: string | null = null;
  ended = false;
  answered = 0;
  readonly binding?: StatementBinding;
  private state: Map<string, unknown> | undefined;

  constructor(
    private source: string | Buffer,
    readonly protocol: 'simple' | 'extended',
    binding?: StatementBinding,
  ) {
    if (binding) this.binding = binding;
  }

  get text(): string {
    if (typeof this.source !== 'string') this.source = decodeQuery(this.source);
    return this.source;
  }

  get pluginState(): Map<string, unknown> {
    return (this.state ??= new Map());
  }
}
