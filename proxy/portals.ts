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
