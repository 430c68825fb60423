/**
 * The statement-hook path of a session: client messages of a session whose statements some plugin
 * looks at (see StatementSteps.wanted) come here instead of going straight upstream. A simple Query
 * goes through the hooks at once; extended-protocol messages are held until Flush or Sync, then go
 * through them in order (statement-steps.ts decides each one's fate).
 *
 * An answer made here (a statement the proxy answers, or a denial) must reach the client after
 * the upstream's answers to what the unit sent before it, and not at all if one of those failed
 * (the server skips to Sync after an error): so what went before is closed with a Sync of the
 * proxy's own, whose ReadyForQuery the client never sees, and the rest of the unit waits for it.
 * That Sync ends an implicit transaction there, and portals outside a transaction, as a Sync of
 * the client's would. A denial ends the unit as an error does on a server: the rest up to Sync is
 * dropped.
 */
import { Frontend } from './wire/codes.js';
import { errorResponse } from './wire/backend-messages.js';
import { decodeQuery, encodeQuery, encodeSimple } from './wire/frontend-messages.js';
import { StatementSteps, localAnswer } from './statement-steps.js';
import type { PluginHost } from '../plugins/host.js';
import type { SessionInfo } from '../plugins/hooks.js';

export interface Frame {
  readonly code: number;
  readonly raw: Buffer;
}

/** What the path asks of its session: the unit queue, the upstream link, and the fast path's work. */
export interface SessionUnits {
  closed(): boolean;
  /** Whether messages of the open unit already went upstream by the fast path (then forgotten). */
  takeForwarded(): boolean;
  /** The client sent Terminate. */
  terminate(): void;
  /** Relays a message as the fast path does (CopyData, FunctionCall, …). */
  relay(frame: Frame): void;
  /** A simple Query answered or refused by a plugin's localCommand or copyOut: queued, true. */
  answeredByCommand(raw: Buffer, text: string): boolean;
  /**
   * Queues the proxy's own answer to a client statement, in its place among the units: a simple
   * Query's (a ReadyForQuery follows), or an Execute's. While statements are tracked it is one.
   */
  answerStatement(text: string, make: () => Buffer[], errorCode: string | null, protocol: 'simple' | 'extended'): void;
  /** Sends a Query upstream as a unit of its own (`raw`, or `rewritten` if the hooks changed it). */
  sendQuery(raw: Buffer, rewritten: Buffer, text: string): void;
  /** Sends extended messages of the open unit upstream; false when the upstream is gone. */
  sendExtended(frames: readonly Buffer[]): boolean;
  /** Sends a Flush upstream. */
  flush(raw: Buffer): void;
  /** Closes the open unit with a Sync upstream (the client's, or one of the proxy's own with onReady). */
  endUnit(sync: Buffer, onReady?: (failed: boolean) => void): void;
  /** Queues an answer made here; with endsUnit, a ReadyForQuery follows it. */
  pushLocal(make: () => Buffer[], endsUnit?: boolean): void;
}

/** Extended-protocol messages held until Sync or Flush. */
interface PendingExtended {
  frames: Buffer[];
  /** Set once a message of this unit failed (a hook denied it, or the upstream): the rest up to Sync is dropped. */
  denied: boolean;
  /** Whether any message of this unit already went upstream. */
  forwarded: boolean;
}

export class StatementPath {
  private readonly steps: StatementSteps;
  private ext: PendingExtended | null = null;

  constructor(
    private readonly plugins: PluginHost,
    private readonly info: SessionInfo,
    texts: Map<string, string>,
    private readonly session: SessionUnits,
  ) {
    this.steps = new StatementSteps(plugins, info, texts);
    info.notice = (notice) => session.pushLocal(() => [errorResponse(notice, true)], false);
  }

  /** Whether an extended unit is held here (it counts as a request in flight). */
  get holding(): boolean {
    return this.ext !== null;
  }

  /** Whether client frames must come here rather than take the fast path (see StatementSteps.wanted). */
  wanted(frames: readonly Frame[]): boolean {
    return this.ext !== null || this.steps.wanted(frames);
  }

  async process(frames: readonly Frame[]): Promise<void> {
    const session = this.session;
    for (const f of frames) {
      if (session.closed()) return;
      switch (f.code) {
        case Frontend.Terminate:
          session.terminate();
          return;
        case Frontend.Query:
          await this.simpleQuery(f.raw);
          break;
        case Frontend.Parse:
        case Frontend.Bind:
        case Frontend.Describe:
        case Frontend.Execute:
        case Frontend.Close:
          // Messages of this unit the fast path already sent count as forwarded.
          this.ext ??= { frames: [], denied: false, forwarded: session.takeForwarded() };
          if (!this.ext.denied) this.ext.frames.push(f.raw);
          break;
        case Frontend.Flush:
        case Frontend.Sync:
          await this.flushExtended(f.code, f.raw);
          break;
        default:
          // CopyData/CopyDone/CopyFail, FunctionCall, password messages: relayed as they are.
          session.relay(f);
      }
    }
  }

  private async simpleQuery(raw: Buffer): Promise<void> {
    const text = decodeQuery(raw);
    if (this.session.answeredByCommand(raw, text)) return;
    const outcome = await this.plugins.statement(this.info, { kind: 'query', text });
    switch (outcome.action) {
      case 'pass': {
        const rewritten = outcome.statement.text ?? text;
        this.session.sendQuery(raw, rewritten === text ? raw : encodeQuery(rewritten), text);
        return;
      }
      case 'deny':
        this.session.answerStatement(text, () => [errorResponse(outcome.error)], outcome.error.code, 'simple');
        return;
      case 'answer': {
        const r = outcome.result;
        this.session.answerStatement(text, () => localAnswer(r), null, 'simple');
        return;
      }
    }
  }

  /** Runs the held messages through the hooks in order; see the top of this file for the order of answers. */
  private async flushExtended(code: number, raw: Buffer): Promise<void> {
    const session = this.session;
    const ext = this.ext ?? { frames: [], denied: false, forwarded: session.takeForwarded() };
    this.ext = null;
    let batch: Buffer[] = [];
    if (!ext.denied) {
      for (const frame of ext.frames) {
        const step = await this.steps.step(frame);
        if (session.closed()) return;
        if (step.kind === 'upstream') {
          batch.push(step.raw);
          continue;
        }
        if (ext.forwarded || batch.length > 0) {
          const failed = await this.mark(batch);
          batch = [];
          ext.forwarded = false;
          if (failed) {
            ext.denied = true;
            break;
          }
        }
        if (step.kind === 'deny') {
          session.pushLocal(() => [errorResponse(step.error)], false);
          ext.denied = true;
          break;
        }
        const answer = step.answer;
        if (step.ran === undefined) session.pushLocal(() => [...answer], false);
        else session.answerStatement(step.ran, () => [...answer], null, 'extended');
      }
    }
    ext.frames = [];
    if (batch.length > 0) {
      if (!session.sendExtended(batch)) return;
      ext.forwarded = true;
    }
    if (code === Frontend.Flush) {
      if (ext.forwarded) session.flush(raw);
      this.ext = ext;
      return;
    }
    if (ext.denied || !ext.forwarded) session.pushLocal(() => []);
    else session.endUnit(raw);
  }

  /**
   * Sends these messages of the open unit with a Sync of the proxy's own; resolves, once the
   * upstream answered all of the unit, with whether an error ended it.
   */
  private mark(frames: readonly Buffer[]): Promise<boolean> {
    if (!this.session.sendExtended(frames)) return Promise.resolve(true);
    return new Promise((resolve) => this.session.endUnit(encodeSimple(Frontend.Sync), resolve));
  }
}
