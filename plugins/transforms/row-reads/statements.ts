/**
 * The statement side of row transforms' reads: while some row transform is registered, sessions
 * hand their statements to the transforms plugin, which rewrites those reading such a table (see
 * rewrite.ts), refuses those it cannot apply a row transform to faithfully (every statement whose
 * rows reach the client without the columns it reads; under a guard, the other forms too), and
 * gives the Binds of rewritten statements a result format for each added column. Sessions and
 * statements that touch no such table keep the fast path; the session's search_path is followed
 * (session-paths.ts) to resolve bare names as the server does.
 */
import { LRUCache } from 'lru-cache';
import { PgError, SqlState } from '../../../proxy/errors.js';
import type { SessionInfo, Statement, StatementDecision } from '../../hooks.js';
import type { SqlAnalyser } from '../../sql/analyser.js';
import type { BoundTransform, Registry, TableTransforms } from '../registry-cache.js';
import { extrasIn } from './extra-columns.js';
import { mayName, readTables, sharedSchemas, type ReadTables } from './read-tables.js';
import { SessionPaths } from './session-paths.js';
import type { NamePath } from './relation-names.js';
import { asOfReadTables, historyTable, readsHistory } from './as-of-tables.js';
import type { TransformsOptions } from '../plugin.js';
import { rewriteForReads, type ReadsRewrite, type Unfaithful } from './rewrite.js';
import type { RowForm } from './select-forms.js';

const CACHE_ENTRIES = 1024;

/** Which of these schemas a role may use (USAGE); null when that cannot be read now. */
export type SchemaUsage = (role: string, schemas: readonly string[]) => Promise<ReadonlyMap<string, boolean> | null>;
const PASS: StatementDecision = { action: 'pass' };

export class RowReadsStatements {
  private readonly sessions = new Set<SessionInfo>();
  private readonly rewrites = new LRUCache<string, ReadsRewrite>({ max: CACHE_ENTRIES });
  /** Rewritten text → how many added columns its result holds (stars over rewritten subqueries included). */
  private readonly added = new LRUCache<string, number>({ max: CACHE_ENTRIES });
  private readonly paths: SessionPaths;
  private rewritesOf: Registry | null = null;
  /** Set once some statement was rewritten: from then on results are looked at for added columns to strip. */
  rewrote = false;

  private readonly sql: SqlAnalyser;
  private readonly registry: () => Registry | null;

  constructor(
    private readonly plugin: string,
    private readonly opts: Pick<TransformsOptions, 'sql' | 'registry' | 'timetravel' | 'versions'>,
    private readonly roles: (s: SessionInfo) => readonly string[],
    initialPath?: (s: SessionInfo) => Promise<readonly string[] | null>,
    private readonly schemaUsage?: SchemaUsage,
  ) {
    this.sql = opts.sql;
    this.registry = opts.registry;
    this.paths = new SessionPaths(initialPath);
  }

  sessionStart(s: SessionInfo): void {
    this.sessions.add(s);
    const active = this.active();
    this.follow(s, active);
    this.paths.start(s, active);
  }

  sessionEnd(s: SessionInfo): void {
    this.sessions.delete(s);
    this.paths.end(s);
  }

  readyForQuery(s: SessionInfo, status: 'I' | 'T' | 'E'): void {
    this.paths.readyForQuery(s, status);
  }

  /** The registry was read again: sessions follow statements while some row transform is registered. */
  registryChanged(): void {
    const active = this.active();
    for (const s of this.sessions) {
      // A session followed only from now on may have set its search_path unseen.
      if (active && !s.statementPlugins.has(this.plugin)) this.paths.start(s, false);
      this.follow(s, active);
    }
  }

  private active(): boolean {
    const r = this.registry();
    return r !== null && readTables(r).byOid.size > 0;
  }

  private follow(s: SessionInfo, on: boolean): void {
    if (on) s.statementPlugins.add(this.plugin);
    else s.statementPlugins.delete(this.plugin);
  }

  statement(s: SessionInfo, stmt: Statement): StatementDecision | Promise<StatementDecision> {
    if (stmt.kind === 'bind') return this.bind(stmt);
    // While the session's starting path is read, only texts that may need or change it wait for it.
    const registry = this.registry();
    if (!this.paths.settled(s, stmt.text) && !readsHistory(stmt.text) && (registry === null || !mayName(stmt.text, readTables(registry)))) return PASS;
    const path = this.paths.statement(s, stmt.text, this.sql);
    return path instanceof Promise ? path.then((p) => this.decide(s, stmt, p)) : this.decide(s, stmt, path);
  }

  private decide(s: SessionInfo, stmt: Exclude<Statement, { kind: 'bind' }>, path: NamePath): StatementDecision | Promise<StatementDecision> {
    const registry = this.registry();
    if (registry === null) return PASS;
    const moment = this.opts.timetravel?.()?.asOf(s) ?? null;
    const history = moment === null ? null : this.opts.versions?.() ?? null;
    // As of a moment, the row transforms of then, through the history subqueries the time-travel plugin put in.
    const tables = history === null || moment === null ? readTables(registry) : asOfReadTables(history, moment.atMicros);
    if (moment === null ? !mayName(stmt.text, tables) : !readsHistory(stmt.text)) return PASS;
    // The server leaves schemas the user may not use out of the search_path: asked only when a bare name is shared.
    const schemas = path.user === null || this.schemaUsage === undefined ? [] : sharedSchemas(stmt.text, tables.names, path);
    if (path.user === null || schemas.length === 0 || this.schemaUsage === undefined) return this.rewrite(s, stmt, path, registry, tables, moment);
    return this.schemaUsage(path.user, schemas).then((usable) => this.rewrite(s, stmt, usable === null ? path : { ...path, usable }, registry, tables, moment));
  }

  private rewrite(
    s: SessionInfo, stmt: Exclude<Statement, { kind: 'bind' }>, path: NamePath, registry: Registry, tables: ReadTables, moment: { readonly atMicros: bigint } | null,
  ): StatementDecision {
    if (this.rewritesOf !== registry) {
      this.rewrites.clear();
      this.rewritesOf = registry;
    }
    // Bare names resolve through the path: the same text may mean other tables in another session.
    const usable = path.usable === undefined ? null : [...path.usable].sort((a, b) => a[0].localeCompare(b[0]));
    const key = `${JSON.stringify([path.searchPath, path.user, usable, moment?.atMicros.toString() ?? null])}\0${stmt.text}`;
    let r = this.rewrites.get(key);
    if (r === undefined) {
      r = rewriteForReads(stmt.text, this.sql, tables, registry.aggregates ?? new Set(), path, moment === null ? undefined : historyTable(tables));
      this.rewrites.set(key, r);
    }
    const refused = guardRefusal(r.unfaithful, this.roles(s));
    if (refused) return { action: 'deny', error: refused };
    if (r.added === 0) return PASS;
    this.rewrote = true;
    this.added.set(r.text, r.added);
    return { action: 'rewrite', text: r.text };
  }

  /**
   * A Bind giving one format per result column names the client's columns only: the added ones
   * are asked for in text (they never reach the client).
   */
  private bind(stmt: Extract<Statement, { kind: 'bind' }>): StatementDecision {
    if (stmt.text === undefined || stmt.resultFormats.length <= 1) return PASS;
    const added = this.added.get(stmt.text) ?? extrasIn(stmt.text);
    if (added === 0) return PASS;
    return { action: 'rewrite', params: stmt.params, resultFormats: [...stmt.resultFormats, ...new Array<number>(added).fill(0)] };
  }
}

/**
 * The refusal of a statement under which a row transform cannot be applied faithfully: whatever
 * its guard when the table's rows reach the client without the columns it reads (it would decide
 * on missing values); under `values` or `strict` also when its rows are not the table's rows one
 * by one, unless the session's user is a member of a role the transform exempts.
 */
export function guardRefusal(unfaithful: readonly Unfaithful[], roles: readonly string[]): PgError | null {
  for (const u of unfaithful) {
    for (const t of u.table.table.chain) {
      if (t.columns !== null) continue;
      const refused = refusal(t, u.table.table, u.form, roles) ?? (u.form === 'unread columns' ? unfetched(t, u.table.table, u.why) : null);
      if (refused) return refused;
    }
  }
  return null;
}

/** Columns a row transform reads that the proxy cannot fetch: refused under every guard (fail closed). */
function unfetched(t: BoundTransform, table: TableTransforms, why: string | undefined): PgError {
  return new PgError(SqlState.FeatureNotSupported,
    `row transform "${t.name}" on ${table.name} cannot see the columns it reads in this statement${why === undefined ? '' : `: ${why}`}`, 'ERROR', {
      hint: `Read ${table.name} by its schema-qualified name directly in the FROM of the SELECT (or of a subquery or CTE there).`,
    });
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

/** Forms whose remedy is to read the table in a plain SELECT. */
const PLAIN_READ: ReadonlySet<Unfaithful['form']> = new Set(['nested SELECT', 'write reading it', 'COPY', 'EXPLAIN ANALYZE']);

function refusal(t: BoundTransform, table: TableTransforms, form: Unfaithful['form'], roles: readonly string[]): PgError | null {
  if (t.guard === 'off' || t.exempt.some((r) => roles.includes(r))) return null;
  const what = form === 'unread columns' ? 'a result without columns it reads that the proxy could not fetch' : `a statement with ${article(form)}`;
  return new PgError(SqlState.InsufficientPrivilege, `row transform "${t.name}" on ${table.name} cannot be applied faithfully to ${what}`, 'ERROR', {
    hint: `Its guard is "${t.guard}": read ${table.name} ${form === 'unread columns' ? 'in a plain SELECT of the table' : PLAIN_READ.has(form) ? 'directly in the FROM of a plain SELECT' : `without the ${form}`}, or ask an admin to exempt your role.`,
  });
}

function article(form: RowForm): string {
  if (form === 'nested SELECT') return 'a nested SELECT reading it (a subquery, a CTE, INSERT … SELECT, CREATE TABLE AS)';
  if (form === 'write reading it') return 'a write reading its rows (UPDATE … FROM, DELETE … USING, MERGE … USING)';
  if (form === 'COPY') return 'a COPY of the table';
  if (form === 'EXPLAIN ANALYZE') return 'EXPLAIN ANALYZE (its row counts count the rows the transform hides)';
  return form === 'aggregate' || form === 'outer join' ? `an ${form}` : form === 'DISTINCT' || form === 'LIMIT/OFFSET' || form === 'RETURNING' ? form : `a ${form}`;
}
