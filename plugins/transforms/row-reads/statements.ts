/**
 * The statement side of row transforms' reads: while some row transform is registered, sessions
 * hand their statements to the transforms plugin, which rewrites those reading such a table (see
 * rewrite.ts), refuses those it cannot apply a guarded row transform to faithfully, and gives the
 * Binds of rewritten statements a result format for each added column. Sessions and statements
 * that touch no such table keep the fast path.
 */
import { LRUCache } from 'lru-cache';
import { PgError, SqlState } from '../../../proxy/errors.js';
import type { SessionInfo, Statement, StatementDecision } from '../../hooks.js';
import type { SqlAnalyser } from '../../sql/analyser.js';
import type { BoundTransform, Registry, TableTransforms } from '../registry-cache.js';
import { extrasIn } from './extra-columns.js';
import { mayName, readTables } from './read-tables.js';
import { rewriteForReads, type ReadsRewrite, type Unfaithful } from './rewrite.js';
import type { RowForm } from './select-forms.js';

const CACHE_ENTRIES = 1024;
const PASS: StatementDecision = { action: 'pass' };

export class RowReadsStatements {
  private readonly sessions = new Set<SessionInfo>();
  private readonly rewrites = new LRUCache<string, ReadsRewrite>({ max: CACHE_ENTRIES });
  private rewritesOf: Registry | null = null;
  /** Set once some statement was rewritten: from then on results are looked at for added columns to strip. */
  rewrote = false;

  constructor(
    private readonly plugin: string,
    private readonly sql: SqlAnalyser,
    private readonly registry: () => Registry | null,
    private readonly roles: (s: SessionInfo) => readonly string[],
  ) {}

  sessionStart(s: SessionInfo): void {
    this.sessions.add(s);
    this.follow(s, this.active());
  }

  sessionEnd(s: SessionInfo): void {
    this.sessions.delete(s);
  }

  /** The registry was read again: sessions follow statements while some row transform is registered. */
  registryChanged(): void {
    const active = this.active();
    for (const s of this.sessions) this.follow(s, active);
  }

  private active(): boolean {
    const r = this.registry();
    return r !== null && readTables(r).size > 0;
  }

  private follow(s: SessionInfo, on: boolean): void {
    if (on) s.statementPlugins.add(this.plugin);
    else s.statementPlugins.delete(this.plugin);
  }

  statement(s: SessionInfo, stmt: Statement): StatementDecision {
    if (stmt.kind === 'bind') return this.bind(stmt);
    const registry = this.registry();
    if (registry === null) return PASS;
    const tables = readTables(registry);
    if (!mayName(stmt.text, tables)) return PASS;
    if (this.rewritesOf !== registry) {
      this.rewrites.clear();
      this.rewritesOf = registry;
    }
    let r = this.rewrites.get(stmt.text);
    if (r === undefined) {
      r = rewriteForReads(stmt.text, this.sql, tables, registry.aggregates ?? new Set());
      this.rewrites.set(stmt.text, r);
    }
    const refused = guardRefusal(r.unfaithful, this.roles(s));
    if (refused) return { action: 'deny', error: refused };
    if (r.added === 0) return PASS;
    this.rewrote = true;
    return { action: 'rewrite', text: r.text };
  }

  /**
   * A Bind giving one format per result column names the client's columns only: the added ones
   * are asked for in text (they never reach the client).
   */
  private bind(stmt: Extract<Statement, { kind: 'bind' }>): StatementDecision {
    if (stmt.text === undefined || stmt.resultFormats.length <= 1) return PASS;
    const added = extrasIn(stmt.text);
    if (added === 0) return PASS;
    return { action: 'rewrite', params: stmt.params, resultFormats: [...stmt.resultFormats, ...new Array<number>(added).fill(0)] };
  }
}

/**
 * The refusal of a statement under which a row transform whose guard is `values` or `strict`
 * cannot be applied faithfully (its rows are not the table's rows one by one), unless the
 * session's user is a member of a role the transform exempts.
 */
export function guardRefusal(unfaithful: readonly Unfaithful[], roles: readonly string[]): PgError | null {
  for (const u of unfaithful) {
    for (const t of u.table.table.chain) {
      const refused = t.columns === null ? refusal(t, u.table.table, u.form, roles) : null;
      if (refused) return refused;
    }
  }
  return null;
}

/**
 * The refusal of a result that carries fields of a table but not every column a guarded row
 * transform of it reads (the statement could not be rewritten to fetch them: a subquery, a view
 * of the table's columns, RETURNING…), or null.
 */
export function unreadRefusal(table: TableTransforms, fields: ReadonlyMap<number, number>, roles: readonly string[]): PgError | null {
  const present = new Set(fields.values());
  for (const t of table.chain) {
    if (t.columns !== null) continue;
    const reads = t.reads ?? table.columnNames.keys();
    if ([...reads].every((a) => present.has(a))) continue;
    const refused = refusal(t, table, 'unread columns', roles);
    if (refused) return refused;
  }
  return null;
}

function refusal(t: BoundTransform, table: TableTransforms, form: Unfaithful['form'], roles: readonly string[]): PgError | null {
  if (t.guard === 'off' || t.exempt.some((r) => roles.includes(r))) return null;
  const what = form === 'unread columns' ? 'a result without columns it reads that the proxy could not fetch' : `a statement with ${article(form)}`;
  return new PgError(SqlState.InsufficientPrivilege, `row transform "${t.name}" on ${table.name} cannot be applied faithfully to ${what}`, 'ERROR', {
    hint: `Its guard is "${t.guard}": read ${table.name} ${form === 'unread columns' ? 'in a plain SELECT of the table' : form === 'nested SELECT' ? 'directly in the FROM of a plain SELECT' : `without the ${form}`}, or ask an admin to exempt your role.`,
  });
}

function article(form: RowForm): string {
  if (form === 'nested SELECT') return 'a nested SELECT reading it (a subquery, a CTE, INSERT … SELECT, CREATE TABLE AS)';
  return form === 'aggregate' || form === 'outer join' ? `an ${form}` : form === 'DISTINCT' || form === 'LIMIT/OFFSET' || form === 'RETURNING' ? form : `a ${form}`;
}
