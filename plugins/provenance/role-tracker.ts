/**
 * The role a session's statements run as, for its records, or null when it cannot be known.
 *
 * PostgreSQL reports the session user (ParameterStatus session_authorization) but not the role
 * SET ROLE puts in force, so the role is followed from the statements that change it, as the
 * server applies them: a SET ROLE is undone when its transaction (explicit, or the implicit one
 * of a Query or of extended messages up to Sync) rolls back; SET LOCAL ROLE ends with its
 * transaction; ROLLBACK TO SAVEPOINT after a change, and any statement that may change the role
 * some other way (see role-statements.ts), make it unknown until the next lone SET ROLE or
 * RESET ROLE. What it cannot see: a function whose body runs SET ROLE, and statements sent while
 * statements were not tracked (no transform registered).
 */
import type { SqlAnalyser } from '../sql/analyser.js';
import { endsTransaction, roleEffect } from './role-statements.js';

export class RoleTracker {
  /** The role in force now. */
  private current: string | null;
  /** What a commit of the open transaction keeps (SET without LOCAL since it began). */
  private kept: string | null;
  /** The role when the open transaction began: what a rollback returns to. */
  private before: string | null;
  /** Whether the role may have changed in the open transaction. */
  private changed = false;
  /** Whether a statement of the open transaction failed, or the server said it is aborted. */
  private failed = false;
  /** Whether the open transaction is a block (BEGIN … COMMIT) rather than an implicit one. */
  private block = false;
  private lastText = '';

  /**
   * @param user the session user the server authenticated
   * @param startupRole whether the startup packet may have set the role (options, a role parameter)
   */
  constructor(private readonly sql: SqlAnalyser, private readonly user: string, startupRole: boolean) {
    this.current = this.kept = this.before = startupRole ? null : user;
  }

  /** The role in force, or null when it cannot be known. */
  get role(): string | null {
    return this.current;
  }

  /** A client statement ended (errorCode null: it succeeded). */
  statementEnd(text: string, errorCode: string | null): void {
    this.lastText = text;
    if (errorCode !== null) {
      this.failed = true;
      return;
    }
    const effect = roleEffect(this.sql, text);
    switch (effect.kind) {
      case 'set':
      case 'reset': {
        const role = effect.kind === 'set' ? effect.role ?? this.user : this.user;
        this.current = role;
        if (effect.kind === 'reset' || !effect.local) this.kept = role;
        this.changed = true;
        break;
      }
      case 'rollback-to':
        // The block goes on (an error before is undone), but what the savepoint undid is not followed.
        this.failed = false;
        if (this.changed) this.current = this.kept = null;
        break;
      case 'unknown':
        this.current = this.kept = null;
        this.changed = true;
        break;
      case 'none':
        break;
    }
  }

  /** A ReadyForQuery: in a block ('T', 'E'), or out of any transaction ('I'). */
  readyForQuery(status: 'I' | 'T' | 'E'): void {
    if (status !== 'I') {
      this.block = true;
      if (status === 'E') this.failed = true;
      return;
    }
    if (this.changed) {
      let committed: boolean | null;
      if (this.failed) committed = false;
      else if (!this.block) committed = true;
      else committed = endsTransaction(this.sql, this.lastText);
      if (committed === null) this.kept = null;
      else if (!committed) this.kept = this.before;
      this.current = this.before = this.kept;
    }
    this.changed = this.failed = this.block = false;
  }
}
