/**
 * How a session resolves names (its search_path and current user), as the statements it sends
 * change them: PostgreSQL 15 does not report search_path in ParameterStatus (18 does, and what the
 * server reports wins), so `SET`, `SET LOCAL` and `RESET` of search_path and role are followed
 * here, read with PostgreSQL's parser. Where the outcome cannot be known, the path is unknown
 * (null) until the next SET or RESET of it outside a transaction block: after
 * `set_config('search_path', …)` in a query, and after a transaction block that changed it for
 * the session (it may have been rolled back).
 */
import type { Node } from 'libpg-query';
import { callsSetConfig } from './column-sources.js';

type Path = readonly string[] | null;

export class SessionNames {
  private path: Path;
  private user: string | null;
  /** The path and user when the open transaction block first changed them (restored at its end). */
  private saved: { path: Path; user: string | null; sessionLevel: boolean } | null = null;
  private inBlock = false;

  /**
   * `initialPath`: what RESET gives; `startPath`: the path now (null when the session may have
   * changed it unseen).
   */
  constructor(private readonly initialPath: Path, startPath: Path, private readonly loginUser: string) {
    this.path = startPath;
    this.user = loginUser;
  }

  get searchPath(): Path {
    return this.path;
  }

  get currentUser(): string | null {
    return this.user;
  }

  /** The statements of a text about to run (its standard reading). */
  statements(stmts: readonly Node[]): void {
    for (const stmt of stmts) {
      if ('TransactionStmt' in stmt) {
        const k = stmt.TransactionStmt.kind;
        if (k === 'TRANS_STMT_BEGIN' || k === 'TRANS_STMT_START') this.inBlock = true;
        continue;
      }
      if ('VariableSetStmt' in stmt) this.set(stmt.VariableSetStmt);
      else if ('DiscardStmt' in stmt && stmt.DiscardStmt.target === 'DISCARD_ALL') this.reset(true, true);
      else if (callsSetConfig(stmt)) this.change(null, this.user, false);
    }
  }

  /** ReadyForQuery: `I` ends any transaction block. */
  readyForQuery(status: 'I' | 'T' | 'E'): void {
    if (status !== 'I') {
      this.inBlock = true;
      return;
    }
    this.inBlock = false;
    if (this.saved === null) return;
    // Committed or rolled back: a session-level change may or may not have stayed.
    this.path = this.saved.sessionLevel ? null : this.saved.path;
    this.user = this.saved.sessionLevel ? null : this.saved.user;
    this.saved = null;
  }

  private set(v: { kind?: string; name?: string; args?: Node[]; is_local?: boolean }): void {
    const name = v.name?.toLowerCase();
    if (v.kind === 'VAR_RESET_ALL') return this.reset(true, true, v.is_local === true);
    if (name === 'search_path') {
      if (v.kind === 'VAR_SET_VALUE') {
        const schemas = (v.args ?? []).map((a) => ('A_Const' in a && a.A_Const.sval !== undefined ? a.A_Const.sval.sval ?? '' : null));
        this.change(schemas.includes(null) ? null : (schemas as string[]), this.user, v.is_local === true);
      } else if (v.kind === 'VAR_RESET' || v.kind === 'VAR_SET_DEFAULT') this.reset(true, false, v.is_local === true);
      else this.change(null, this.user, v.is_local === true);
    } else if (name === 'role' || name === 'session_authorization') {
      const arg = v.args?.[0];
      const role = arg !== undefined && 'A_Const' in arg ? arg.A_Const.sval?.sval ?? null : null;
      if (v.kind === 'VAR_SET_VALUE') this.change(this.path, role === 'none' ? this.loginUser : role, v.is_local === true);
      else if (v.kind === 'VAR_RESET' || v.kind === 'VAR_SET_DEFAULT') this.reset(false, true, v.is_local === true);
      else this.change(this.path, null, v.is_local === true);
    }
  }

  private reset(path: boolean, user: boolean, local = false): void {
    this.change(path ? this.initialPath : this.path, user ? this.loginUser : this.user, local);
  }

  private change(path: Path, user: string | null, local: boolean): void {
    // SET LOCAL outside a transaction block changes nothing (the server warns).
    if (local && !this.inBlock) return;
    if (this.inBlock) {
      this.saved ??= { path: this.path, user: this.user, sessionLevel: false };
      if (!local) this.saved.sessionLevel = true;
    }
    this.path = path;
    this.user = user;
  }
}

