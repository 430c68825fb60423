/**
 * The role a session's statements run as, for its records, or null when it cannot be known.
 *
 * PostgreSQL reports the session user (ParameterStatus session_authorization) but not the role
 * SET ROLE puts in force, so the role is followed from the statements that change it, as the
 * server applies them: a SET ROLE is undone when its transaction (explicit, or the implicit one
 * of a Query or of extended messages up to Sync) rolls back; SET LOCAL ROLE ends with its
 * transaction; ROLLBACK TO SAVEPOINT after a change, and any statement that may change the role
 * some other way (see MAY_CHANGE_ROLE), make it unknown until the next lone SET ROLE or
 * RESET ROLE. What it cannot see: a function whose body runs SET ROLE, and statements sent while
 * statements were not tracked (no transform registered).
 */
import { identifierName } from '../shared/identifier.js';

/** A statement that is one SET [SESSION | LOCAL] ROLE, SET ROLE NONE, or RESET ROLE, nothing else. */
const SET_ROLE = /^\s*(?:set\s+(session\s+|local\s+)?role\s+(?:to\s+|=\s*)?("(?:[^"]|"")+"|'(?:[^']|'')+'|[^\s;'"]+)|reset\s+role)\s*;?\s*$/i;
/**
 * Anything else that may change the role, or reset it to a default the proxy does not know:
 * SET ROLE among other statements, set_config (its setting's name may be a parameter), SET SESSION
 * AUTHORIZATION, RESET ALL, DISCARD ALL.
 */
const MAY_CHANGE_ROLE = /\b(?:(?:set|reset)\s+(?:(?:session|local)\s+)?role\b|set_config\b|session\s+authorization\b|reset\s+all\b|discard\s+all\b)/i;
const ROLLBACK_TO = /^\s*rollback\s+(?:work\s+|transaction\s+)?to\b/i;
const COMMIT = /^\s*(?:commit|end)(?:\s+(?:work|transaction))?\s*;?\s*$/i;
const ROLLBACK = /^\s*(?:rollback|abort)(?:\s+(?:work|transaction))?\s*;?\s*$/i;

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
  constructor(private readonly user: string, startupRole: boolean) {
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
    const m = SET_ROLE.exec(text);
    if (m) {
      const word = m[2];
      const role = word === undefined || /^none$/i.test(word) ? this.user : roleName(word);
      this.current = role;
      if (!/^local/i.test(m[1] ?? '')) this.kept = role;
      this.changed = true;
    } else if (ROLLBACK_TO.test(text)) {
      // The block goes on (an error before is undone), but what the savepoint undid is not followed.
      this.failed = false;
      if (this.changed) this.current = this.kept = null;
    } else if (MAY_CHANGE_ROLE.test(text)) {
      this.current = this.kept = null;
      this.changed = true;
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
      else committed = COMMIT.test(this.lastText) ? true : ROLLBACK.test(this.lastText) ? false : null;
      if (committed === null) this.kept = null;
      else if (!committed) this.kept = this.before;
      this.current = this.before = this.kept;
    }
    this.changed = this.failed = this.block = false;
  }
}

/** A role as SET ROLE names it: an identifier (folded unless quoted) or a string literal. */
function roleName(word: string): string {
  if (word.startsWith("'")) return word.slice(1, -1).replace(/''/g, "'");
  return identifierName(word);
}
