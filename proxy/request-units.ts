/**
 * The request units of a session in the order they were sent, each answered by the upstream or
 * by the proxy itself. A unit the proxy answers (a denied statement, a locally answered one) is
 * queued in its place, and its bytes are made and written once every unit before it was answered.
 */
import type { PluginHost } from '../plugins/host.js';
import type { AnswerFollower } from './portals.js';
import type { StatementTraces } from './statement-traces.js';
import type { ClientOutput } from './client-output.js';
import { readyForQuery, type TxStatus } from './wire/backend-messages.js';
import { PLAIN_UNIT, type Unit } from './session-parts.js';

export interface UnitsOwner {
  /** The transaction status of the last ReadyForQuery, for the answers made here. */
  readonly txStatus: TxStatus;
  /** Answers made here were written up to the next unit the upstream answers. */
  localsWritten(): void;
}

export class RequestUnits {
  /** Whether the unit not closed yet contains a plugin's watched word. */
  openMarked = false;

  constructor(
    /** Shared with the server side, which takes units off as they are answered. */
    private readonly list: Unit[],
    private readonly plugins: PluginHost,
    private readonly answers: AnswerFollower,
    private readonly traces: StatementTraces,
    private readonly output: ClientOutput,
    private readonly owner: UnitsOwner,
  ) {}

  /** A Sync (or Query) ends the open unit, carrying the Describes and the statements sent in it. */
  close(extra: { suppressReady?: boolean; onReady?: (failed: boolean) => void } = {}): void {
    const answers = this.answers.closeUnit();
    if (answers === null && !this.traces.hasOpen && !this.openMarked && !extra.suppressReady) {
      this.list.push(PLAIN_UNIT);
      return;
    }
    this.list.push({
      kind: 'upstream',
      suppressReady: extra.suppressReady ?? false,
      onReady: extra.onReady,
      answers,
      statements: this.traces.takeOpen(),
      marked: this.openMarked,
    });
    this.openMarked = false;
  }

  /**
   * Queues the proxy's own answer to a simple Query (a local command, or a statement a plugin
   * denied or answered), or to an Execute of a statement the proxy answers (its unit goes on).
   * While statements are tracked it is a client statement like any other: it starts now and ends
   * when its answer is written.
   */
  answer(text: string, make: () => Buffer[], errorCode: string | null, protocol: 'simple' | 'extended' = 'simple'): void {
    const endsUnit = protocol === 'simple';
    const made = this.plugins.tracksStatements ? this.traces.local(text, make, errorCode, protocol) : make;
    this.pushLocal(made, endsUnit);
  }

  /** Queue an answer made here; it goes out once everything before it was answered. */
  pushLocal(make: () => Buffer[], endsUnit: boolean): void {
    this.list.push({ kind: 'local', answer: endsUnit ? (status) => [...make(), readyForQuery(status)] : make });
    if (this.list.length === 1) this.emitLocal();
  }

  /** Writes the answers made here that are next in line. */
  emitLocal(): void {
    while (this.list.length > 0) {
      const u = this.list[0]!;
      if (u.kind !== 'local') return;
      this.list.shift();
      for (const b of u.answer(this.owner.txStatus)) this.output.write(b);
    }
    this.owner.localsWritten();
  }
}
