/**
 * Which description the rows of each Execute have.
 *
 * The upstream answers the messages of the extended protocol in the order they were sent:
 * Describe (statement) → ParameterDescription, RowDescription | NoData; Describe (portal) →
 * RowDescription | NoData; Execute → DataRow…, then CommandComplete | EmptyQueryResponse |
 * PortalSuspended | ErrorResponse. After an error the rest of the unit, up to Sync, is skipped.
 * So the session notes, as each Describe and Execute goes upstream, what its answer will be
 * (an Expected), and takes those notes in order as the answers come back: the rows of an Execute
 * are handled with the description of its own portal, never with the latest RowDescription.
 *
 * A portal's description is trusted only within the unit (up to Sync) in which its Bind (or a
 * Describe of it) was sent: a portal lives on across Syncs only inside a transaction, and the
 * name of an ended one can be taken by a cursor (DECLARE) the proxy does not follow. An Execute of
 * a portal not described in its unit gets a Describe of the proxy's own before it, whose answer
 * the client never sees; a portal whose description never came is refused, not served.
 */
import type { FieldDescription } from './wire/backend-messages.js';
import { Backend, Frontend } from './wire/codes.js';
import { decodeBindHead, decodeExecute, decodeTarget, encodeTarget } from './wire/frontend-messages.js';

/** One portal as bound (or as the proxy first met it in its unit). Filled when its Describe is answered. */
export interface Portal {
  readonly name: string;
  /** Null until the answer to a Describe of it came; 'none' when it returns no rows (NoData). */
  fields: readonly FieldDescription[] | 'none' | null;
}

/** An answer the session waits for, in the order the upstream sends them. */
export type Expected =
  | {
      readonly kind: 'describe';
      /** Sent by the proxy: its answer is not the client's. */
      readonly own: boolean;
      /** The portal described; null for a statement's Describe (its rows' formats are not known yet). */
      readonly portal: Portal | null;
    }
  | { readonly kind: 'execute'; readonly portal: Portal };

/** A client's Describe while results are not looked at: only its place in the order counts. Shared. */
export const CLIENT_DESCRIBE: Expected = Object.freeze({ kind: 'describe', own: false, portal: null });

/** The portals of the unit being sent, by name. */
export class PortalBook {
  private readonly portals = new Map<string, Portal>();
  /** Portals whose Describe was sent in this unit since their Bind. */
  private readonly described = new Set<Portal>();

  /** A Bind replaces the portal of that name (the unnamed one too). */
  bind(name: string): void {
    this.portals.set(name, { name, fields: null });
  }

  close(name: string): void {
    this.portals.delete(name);
  }

  /** A client's Describe of a portal: what its answer will describe. */
  describe(name: string): Expected {
    const p = this.portal(name);
    this.described.add(p);
    return { kind: 'describe', own: false, portal: p };
  }

  /**
   * An Execute: what its answer will be, preceded by a Describe of the proxy's own when the portal
   * was not described in this unit (the caller sends that Describe first).
   */
  execute(name: string): { readonly ownDescribe: Expected | null; readonly execute: Expected & { readonly portal: Portal } } {
    let p = this.portals.get(name);
    let ownDescribe: Expected | null = null;
    if (!p || !this.described.has(p)) {
      p = this.portal(name);
      this.described.add(p);
      ownDescribe = { kind: 'describe', own: true, portal: p };
    }
    return { ownDescribe, execute: { kind: 'execute', portal: p } };
  }

  /** The unit ends (Sync, or a simple Query): descriptions are not trusted past it. */
  endUnit(): void {
    if (this.portals.size === 0) return;
    this.portals.clear();
    this.described.clear();
  }

  private portal(name: string): Portal {
    let p = this.portals.get(name);
    if (!p) this.portals.set(name, (p = { name, fields: null }));
    return p;
  }
}

/** The answers a unit waits for, handed from the send side to the unit (see AnswerFollower.closeUnit). */
export interface UnitAnswers {
  readonly answers: Expected[];
  /** Its Executes went upstream while results were looked at: their answers are followed. */
  readonly followed: boolean;
}

/**
 * Both sides of following answers: notes what each Describe and Execute sent will be answered
 * with, and takes those notes off as the answers come (the caller picks the unit being answered).
 */
export class AnswerFollower {
  private readonly book = new PortalBook();
  private open: Expected[] = [];
  private openFollowed = false;
  /** Notes of every unit, other than CLIENT_DESCRIBE, not answered yet. */
  private pending = 0;
  /** A result's rows may come now: a simple Query's RowDescription, or a followed Execute with a description, started one. */
  resultOpen = false;
  /** The answer to a followed Execute is arriving (until its CommandComplete, error, or PortalSuspended). */
  private executeOpen = false;

  /** Whether any answer is followed now: while one is, results must be looked at. */
  get following(): boolean {
    return this.pending > 0;
  }

  /**
   * An extended-protocol message on its way upstream. Returns the Describe of the proxy's own to
   * send before it, if any. Without result hooks only the place of each Describe is noted.
   */
  sent(code: number, raw: Buffer, resultHooks: boolean): Buffer | null {
    if (code === Frontend.Describe) {
      if (!resultHooks) this.open.push(CLIENT_DESCRIBE);
      else {
        const t = decodeTarget(raw);
        this.note(t.target === 'P' ? this.book.describe(t.name) : CLIENT_DESCRIBE);
      }
      return null;
    }
    if (!resultHooks) return null;
    if (code === Frontend.Bind) this.book.bind(decodeBindHead(raw).portal);
    else if (code === Frontend.Close) {
      const t = decodeTarget(raw);
      if (t.target === 'P') this.book.close(t.name);
    } else if (code === Frontend.Execute) {
      const { ownDescribe, execute } = this.book.execute(decodeExecute(raw).portal);
      if (ownDescribe) this.note(ownDescribe);
      this.note(execute);
      this.openFollowed = true;
      return ownDescribe ? encodeTarget(Frontend.Describe, { target: 'P', name: execute.portal.name }) : null;
    }
    return null;
  }

  /** The unit being sent ends (Sync, Query): its notes, or null when it has none. */
  closeUnit(): UnitAnswers | null {
    this.book.endUnit();
    if (this.open.length === 0 && !this.openFollowed) return null;
    const unit = { answers: this.open, followed: this.openFollowed };
    this.open = [];
    this.openFollowed = false;
    return unit;
  }

  /** The notes of the unit not closed yet (answers can come before its Sync, after a Flush). */
  get openUnit(): UnitAnswers {
    return { answers: this.open, followed: this.openFollowed };
  }

  /** The next answer of a unit, taken off: a RowDescription or NoData answers a Describe. */
  take(unit: UnitAnswers | undefined): Expected | undefined {
    const e = unit?.answers.shift();
    if (e && e !== CLIENT_DESCRIBE) this.pending--;
    return e;
  }

  /** The unit got its ReadyForQuery: what it did not answer was skipped after an error. */
  unitDone(unit: UnitAnswers | undefined): void {
    this.endResult();
    if (unit) for (const e of unit.answers.splice(0)) if (e !== CLIENT_DESCRIBE) this.pending--;
  }

  /** Whether an upstream message is the first answer to a followed Execute of the unit. */
  startsExecute(unit: UnitAnswers | undefined, code: number): boolean {
    if (this.pending === 0 || this.executeOpen) return false;
    if (code !== Backend.DataRow && code !== Backend.CommandComplete && code !== Backend.PortalSuspended &&
      code !== Backend.EmptyQueryResponse && code !== Backend.ErrorResponse) return false;
    return unit?.answers[0]?.kind === 'execute';
  }

  /** Takes the Execute off and returns its portal (see Portal.fields for its description). */
  openExecute(unit: UnitAnswers | undefined): Portal | null {
    const e = this.take(unit);
    this.executeOpen = true;
    const portal = e?.kind === 'execute' ? e.portal : null;
    this.resultOpen = portal !== null && portal.fields !== null && portal.fields !== 'none';
    return portal;
  }

  /** A result ended: CommandComplete, EmptyQueryResponse, PortalSuspended, ErrorResponse. */
  endResult(): void {
    this.resultOpen = false;
    this.executeOpen = false;
  }

  private note(e: Expected): void {
    this.open.push(e);
    if (e !== CLIENT_DESCRIBE) this.pending++;
  }
}
