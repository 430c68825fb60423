/**
 * How an as-of session resolves an unqualified table name, as its server would: the search_path
 * the server reports (PostgreSQL 18), else the one it started with (startup parameters, else
 * ALTER ROLE/DATABASE … SET, else the server's default) followed through the SET, RESET and SET
 * ROLE statements the session sent; the temporary schema first and pg_catalog next unless
 * listed, `$user` as the current role, and schemas that role may not use left out.
 */
import type { Node } from 'libpg-query';
import type { SessionInfo } from '../hooks.js';
import type { SqlRunner } from '../registry/migrate.js';
import { callsSetConfig, parseSearchPath } from '../sql/column-sources.js';
import { initialPath, startupPath } from '../sql/initial-path.js';
import { SessionNames } from '../sql/session-names.js';

/** Stands for the path the session started with until it is needed (it costs a query to read). */
const INITIAL: readonly string[] = Object.freeze(['\0initial']);

/** A session's search_path and current role at a statement; `path` null: not known. */
export interface Naming {
  readonly path: readonly string[] | null;
  readonly role: string | null;
  /** Why the path is not known, for a refusal's hint. */
  readonly unknown?: string;
}

export class SessionPath {
  private readonly names: SessionNames;
  /** The path the session started with, once read (null: it cannot be told). */
  private initial: Promise<readonly string[] | null> | null = null;

  constructor(private readonly s: SessionInfo) {
    const given = startupPath(s.startupParams);
    const start = given === undefined ? INITIAL : given;
    this.names = new SessionNames(start, start, s.user);
  }

  /** The statements of a text about to run (its standard reading). */
  statements(stmts: readonly Node[]): void {
    this.names.statements(stmts);
  }

  readyForQuery(status: 'I' | 'T' | 'E'): void {
    this.names.readyForQuery(status);
  }

  /** What names mean at the statement about to run; `store` reads the initial path when it is first needed. */
  async naming(store: SqlRunner | null): Promise<Naming> {
    const role = this.names.currentUser;
    const reported = this.s.serverParams.get('search_path');
    if (reported !== undefined) {
      const path = parseSearchPath(reported);
      return path === null ? { path, role, unknown: `the server reported a search_path the proxy cannot read (${reported})` } : { path, role };
    }
    let path = this.names.searchPath;
    if (path === null) {
      return { path: null, role, unknown: 'the session changed it where the proxy cannot follow (set_config(), or a transaction block that may have rolled back)' };
    }
    if (path === INITIAL) {
      if (this.initial === null && store !== null) {
        this.initial = initialPath(store, this.s.user, this.s.database).catch(() => null);
      }
      path = this.initial === null ? null : await this.initial;
      if (path === null) return { path: null, role, unknown: 'the proxy could not read the search_path the session started with' };
    }
    return { path, role };
  }
}

/**
 * The schemas searched for an unqualified relation, in order: `pg_temp` stands for the session's
 * temporary schema (first unless the path lists it), pg_catalog comes next unless listed.
 */
export function searchOrder(path: readonly string[], role: string): string[] {
  const out: string[] = [];
  if (!path.includes('pg_temp')) out.push('pg_temp');
  if (!path.includes('pg_catalog')) out.push('pg_catalog');
  for (const s of path) out.push(s === '$user' ? role : s);
  return out;
}

const NAMING_SETTINGS = new Set(['search_path', 'role', 'session_authorization']);

/** Whether a statement may change how the statements after it in the same text resolve names. */
export function changesNaming(stmt: Node): boolean {
  if ('VariableSetStmt' in stmt) {
    const v = stmt.VariableSetStmt;
    return v.kind === 'VAR_RESET_ALL' || NAMING_SETTINGS.has(v.name?.toLowerCase() ?? '');
  }
  return ('DiscardStmt' in stmt && stmt.DiscardStmt.target === 'DISCARD_ALL') || callsSetConfig(stmt);
}
