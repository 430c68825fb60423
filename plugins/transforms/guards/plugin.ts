/**
 * Guarded columns: statements that would let a guarded column's value reach a client around its
 * transform are refused (42501) before they go upstream, at the simple Query or at the Parse of
 * the extended protocol (its Binds and Executes run what was checked). Guarded row transforms:
 * statements whose reads the analysis cannot tell (a function that may read their table) are
 * refused likewise; every other way of reading their rows is judged where they are filtered.
 *
 * Only sessions where some guard may apply read their statements: while no transform has a
 * guard, every session stays on the fast path. The plugin names itself in a session's
 * statementPlugins from its start once a guard exists, and in every open session when the
 * registry gains one; such a session's earlier SETs were not seen, so its search_path is unknown
 * (unless the server reports it) until it sets it again.
 *
 * Analyses are cached by text and by the session's naming (ColumnSourcesCache), so a prepared
 * statement or a repeated text is analysed once; the catalog they were made with is forgotten
 * after DDL through this proxy and at every registry change (announced too for DDL elsewhere
 * when the proxy's login may create event triggers).
 */
import { PgError, SqlState } from '../../../proxy/errors.js';
import type { Plugin, SessionInfo, Statement, StatementDecision } from '../../hooks.js';
import type { SqlRunner } from '../../registry/migrate.js';
import type { SqlAnalyser } from '../../sql/analyser.js';
import { parseSearchPath } from '../../sql/column-sources.js';
import { ColumnSourcesCache, type TextSources } from '../../sql/sources-cache.js';
import type { Registry } from '../registry-cache.js';
import type { SessionNames as Naming } from '../../sql/source-model.js';
import type { StatementSources } from '../../sql/column-sources.js';
import { GuardCatalog } from './guard-catalog.js';
import { initialPath, startupPath } from './initial-path.js';
import { anyGuard, guardedColumns, guardedRows, type GuardedColumns, type GuardedRows } from './policy.js';
import { SessionNames } from './session-names.js';
import { PreparedStatements } from './prepared.js';
import { verdict } from './verdict.js';
import { rowHistories, withHistory, type GuardedHistories } from './history-guards.js';
import type { HistoryColumns } from '../history-columns.js';
import { InheritedTables, type Inherited } from './inherited.js';
import { childRowsRefusal, namedReads, readsTables, rowRelatives, withChildren, type NamedRead } from './child-guards.js';
import { ancestorRowsRefusal, onlyAncestors, withAncestors } from './ancestor-guards.js';
import { mayHoldName, sharedSchemas } from '../row-reads/read-tables.js';
import type { NamePath } from '../row-reads/relation-names.js';
import type { Node, SqlAnalysis } from '../../sql/analyser.js';

const PLUGIN = 'guards';
/** Statements that name nothing the search_path resolves: they run while it is unknown (SET it, say). */
const NAME_FREE = new Set(['VariableSetStmt', 'VariableShowStmt', 'TransactionStmt', 'DiscardStmt']);
const PASS: StatementDecision = { action: 'pass' };
/**
 * How long a statement may wait for the catalog. The embedded database runs the proxy's own SQL
 * only between sessions' transactions: a session inside one would wait for itself.
 */
const CATALOG_WAIT_MS = 3_000;

export interface GuardsOptions {
  readonly sql: SqlAnalyser;
  readonly registry: () => Registry | null;
  /** The proxy's own connection to the database (the state store); null while it is away. */
  readonly store: () => SqlRunner | null;
  /** The roles the user belongs to (itself included); empty when they cannot be known (then no exemption applies). */
  readonly roles: (user: string) => Promise<readonly string[]>;
  /** Which table's column each history column holds (its guards apply there too). */
  readonly historyColumns?: () => HistoryColumns | null;
}

interface GuardSession {
  readonly names: Promise<SessionNames>;
  readonly roles: Promise<readonly string[]>;
  readonly prepared: PreparedStatements;
}

export class GuardsPlugin implements Plugin {
  readonly name = PLUGIN;
  /** Before any plugin that rewrites statements: the guards judge what the client sent. */
  readonly order = -100;
  /** No word brings a statement here: sessions are named (statementPlugins) while a guard exists. */
  readonly statementWords: readonly string[] = [];
  private readonly sessions = new Map<SessionInfo, GuardSession>();
  private readonly catalog: GuardCatalog;
  private readonly sources: ColumnSourcesCache;
  private readonly initialPaths = new Map<string, Promise<readonly string[] | null>>();
  private readonly inherited = new InheritedTables();

  constructor(private readonly opts: GuardsOptions) {
    const current = (): SqlRunner => {
      const db = opts.store();
      if (db === null) throw new Error('the proxy\'s connection to the database is down');
      return db;
    };
    const store: SqlRunner = { query: async (sql, params) => current().query(sql, params), exec: async (sql) => current().exec(sql) };
    this.catalog = new GuardCatalog(store);
    this.sources = new ColumnSourcesCache(opts.sql, this.catalog);
  }

  sessionStart(s: SessionInfo): void {
    if (anyGuard(this.opts.registry())) this.watch(s, true);
    else this.sessions.set(s, { names: Promise.resolve(new SessionNames(null, null, s.user)), roles: Promise.resolve([]), prepared: new PreparedStatements() });
  }

  sessionEnd(s: SessionInfo): void {
    this.sessions.delete(s);
  }

  /** The registry was read again: sessions are watched while some guard exists; the catalog may have changed. */
  registryChanged(): void {
    this.catalog.invalidate();
    this.inherited.invalidate();
    this.initialPaths.clear();
    // While the registry cannot be read, sessions that were watched stay so (and are refused).
    const registry = this.opts.registry();
    if (registry === null) return;
    const active = anyGuard(registry);
    for (const s of this.sessions.keys()) {
      if (active && !s.statementPlugins.has(PLUGIN)) this.watch(s, false);
      if (!active) s.statementPlugins.delete(PLUGIN);
    }
  }

  /** DDL and grants through this proxy: names may mean something else now (USAGE decides the search_path too). */
  readonly unitWords = ['create ', 'drop ', 'alter ', 'grant ', 'revoke '];

  /** Only while some guard exists: the client's ReadyForQuery waits for the unit's end hooks. */
  marksUnit(): boolean {
    return anyGuard(this.opts.registry());
  }

  unitDone(): void {
    this.catalog.invalidate();
    this.inherited.invalidate();
    this.initialPaths.clear();
  }

  readyForQuery(s: SessionInfo, status: 'I' | 'T' | 'E'): void {
    if (!s.statementPlugins.has(PLUGIN)) return;
    void this.sessions.get(s)?.names.then((n) => n.readyForQuery(status));
  }

  async statement(s: SessionInfo, stmt: Statement): Promise<StatementDecision> {
    const session = this.sessions.get(s);
    if (session === undefined) return PASS;
    const registry = this.opts.registry();
    if (registry === null) {
      return deny(new PgError(SqlState.CannotConnectNow,
        'the transform registry cannot be read now, so the proxy cannot tell which transforms are guarded'));
    }
    const roles = await session.roles;
    const own = guardedColumns(registry, roles);
    const rows = guardedRows(registry, roles);
    const histories = rowHistories(rows, this.opts.historyColumns?.() ?? null);
    const guarded = own.size > 0 || rows.length > 0;
    if (stmt.kind === 'bind') {
      if (!guarded) return PASS;
      // Checked again under the guards in force now, as the server resolved it at its Parse.
      const p = session.prepared.bound(stmt.statement, stmt.text);
      if (p === null) return deny(unseen(`prepared statement "${stmt.statement}"`));
      const sources = await this.check(p.text, p.naming);
      // An as-of statement time travel rewrote reads the history in the table's place, for the row transforms of then.
      const read: GuardedHistories = p.rewritten === true ? new Map() : histories;
      if (typeof sources === 'string') return deny(new PgError(SqlState.ObjectNotInPrerequisiteState, sources));
      const through = await this.throughChildren(registry, own, rows, p.text, this.opts.sql.analyse(p.text), sources, p.naming, session.prepared);
      const refused = judge(sources, { columns: this.withHistory(through.columns), rows, histories: read }, session.prepared);
      return refused.action !== 'pass' || through.refusal === null ? refused : deny(through.refusal);
    }
    const names = await session.names;
    const parsed = this.opts.sql.analyse(stmt.text);
    if (guarded) {
      if (!parsed.ok) return deny(new PgError(parsed.code, parsed.message, 'ERROR', { position: parsed.position }));
      const reported = s.serverParams.get('search_path');
      const searchPath = reported === undefined ? names.searchPath : parseSearchPath(reported);
      if (searchPath === null && !parsed.readings.every((r) => r.every((n) => NAME_FREE.has(Object.keys(n)[0] ?? '')))) {
        return deny(new PgError(SqlState.InsufficientPrivilege,
          'the proxy does not know this session\'s search_path, so it cannot tell which tables the statement reads, and some transforms are guarded',
          'ERROR', { hint: 'Set it (SET search_path = …) outside a transaction block; the proxy follows SET and RESET, not set_config() or a SET in a transaction that may have rolled back.' }));
      }
      const naming: Naming = { searchPath: searchPath ?? [], ...(names.currentUser === null ? {} : { user: names.currentUser }) };
      const sources = await this.check(stmt.text, naming);
      if (typeof sources === 'string') return deny(new PgError(SqlState.ObjectNotInPrerequisiteState, sources));
      const through = await this.throughChildren(registry, own, rows, stmt.text, parsed, sources, naming, session.prepared);
      const refused = judge(sources, { columns: this.withHistory(through.columns), rows, histories }, session.prepared);
      if (refused.action !== 'pass') return refused;
      if (through.refusal !== null) return deny(through.refusal);
      if (stmt.kind === 'parse') session.prepared.parse(stmt.name, stmt.text, naming);
      session.prepared.remember(sources[0] ?? [], stmt.text, naming);
    }
    if (parsed.ok) names.statements(parsed.readings[0] ?? []);
    return PASS;
  }

  /** The sources of every reading of a text, or why they could not be had. */
  private async check(text: string, naming: Naming): Promise<(readonly StatementSources[])[] | string> {
    let sources: TextSources;
    try {
      sources = await withTimeout(this.sources.sources(text, naming));
    } catch (err) {
      return `the proxy could not read the catalog to check the statement against guarded transforms: ${err instanceof Error ? err.message : String(err)}`
        + ' (on the embedded database the catalog is read between transactions: run the statement once outside a transaction block first)';
    }
    if (!sources.ok) return `${sources.code}: ${sources.message}`;
    return sources.readings.map((r) => [...r]);
  }

  private withHistory(columns: GuardedColumns): GuardedColumns {
    return withHistory(columns, this.opts.historyColumns?.() ?? null);
  }

  /**
   * The guarded columns with their tables' partitions', children's and ancestors', and the refusal
   * of a text that reads rows a guarded row transform does not filter there: a child's or an
   * ancestor's of its table (or that could not be checked). The names of the PREPAREs its EXECUTEs
   * run are read as they were prepared, with what the tables are now. Children are read only for a
   * statement that reads some table: one that reads none (COMMIT, SET, SELECT 1) never waits for
   * the catalog.
   */
  private async throughChildren(
    registry: Registry, own: GuardedColumns, rows: readonly GuardedRows[], text: string, parsed: SqlAnalysis,
    sources: readonly (readonly StatementSources[])[], naming: Naming, prepared: PreparedStatements,
  ): Promise<{ readonly columns: GuardedColumns; readonly refusal: PgError | null }> {
    if (!readsTables(sources, parsed)) return { columns: own, refusal: null };
    const inherited = await this.inheritedOf(registry);
    if (typeof inherited === 'string') return { columns: own, refusal: new PgError(SqlState.ObjectNotInPrerequisiteState, inherited) };
    const reads: NamedRead[] = [];
    if (inherited.names.size > 0) {
      reads.push(...await this.namedReads(text, parsed.ok ? parsed.readings.flat() : [], naming, inherited));
      for (const name of new Set(sources.flat().flatMap((s) => (s.execute === undefined ? [] : [s.execute])))) {
        const p = prepared.sqlPrepare(name);
        const analysis = p === undefined ? null : this.opts.sql.analyse(p.text);
        if (p === undefined || analysis?.ok !== true) continue;
        const statements = analysis.readings.flat().filter((n) => 'PrepareStmt' in n && n.PrepareStmt.name === name);
        reads.push(...await this.namedReads(p.text, statements, p.naming, inherited));
      }
    }
    const refusal = childRowsRefusal(reads, rowRelatives(rows, inherited.byAncestor)) ?? ancestorRowsRefusal(reads, rowRelatives(rows, inherited.byDescendant));
    return { columns: withAncestors(withChildren(own, inherited, registry), own, inherited, registry, onlyAncestors(reads, inherited)), refusal };
  }

  /** The partitions and children of guarded tables, or why they could not be read. */
  private async inheritedOf(registry: Registry): Promise<Inherited | string> {
    const db = this.opts.store();
    if (db === null) return 'the proxy\'s connection to the database is down, so it cannot tell which tables are partitions or children of guarded ones';
    try {
      return await withTimeout(this.inherited.of(db, registry));
    } catch (err) {
      return `the proxy could not read which tables are partitions or children of guarded ones: ${err instanceof Error ? err.message : String(err)}`
        + ' (on the embedded database the catalog is read between transactions: run the statement once outside a transaction block first)';
    }
  }

  /** The names of these statements (of `text`) that may mean a partition, child or ancestor of a guarded table, or a view over one. */
  private async namedReads(text: string, statements: readonly Node[], naming: Naming, inherited: Inherited): Promise<NamedRead[]> {
    if (statements.length === 0 || !mayHoldName(text, inherited.names.keys())) return [];
    const path: NamePath = { searchPath: naming.searchPath, user: naming.user ?? null };
    // The server leaves schemas the user may not use out of the search_path: asked only when a bare name is shared.
    const schemas = path.user === null ? [] : sharedSchemas(text, inherited.names, path);
    const usable = path.user === null || schemas.length === 0 ? null : await this.schemaUsage(path.user, schemas);
    return namedReads(statements, inherited, usable === null ? path : { ...path, usable });
  }

  private watch(s: SessionInfo, fromStart: boolean): void {
    s.statementPlugins.add(PLUGIN);
    const initial = this.initialPath(s);
    // A session watched only from now on may have changed its path unseen.
    const names = initial.then((p) => new SessionNames(p, fromStart ? p : null, s.user));
    names.catch(() => undefined);
    const roles = this.opts.roles(s.user).catch(() => []);
    this.sessions.set(s, { names, roles, prepared: new PreparedStatements() });
  }

  /**
   * Which of these schemas a role may use (USAGE), read with the guards' catalog and kept until
   * it is forgotten (DDL or grants through the proxy, registry changes); null when that cannot be
   * read now (row transforms' name resolution then stays unsure).
   */
  async schemaUsage(role: string, schemas: readonly string[]): Promise<ReadonlyMap<string, boolean> | null> {
    try {
      if (schemas.some((schema) => this.catalog.schemaUsable(schema, role) === undefined)) {
        await withTimeout(this.catalog.load(schemas.map((schema) => ({ what: 'usage', schema, name: role }))));
      }
    } catch {
      return null;
    }
    const out = new Map<string, boolean>();
    for (const schema of schemas) {
      const usable = this.catalog.schemaUsable(schema, role);
      if (usable === undefined || usable === null) return null;
      out.set(schema, usable);
    }
    return out;
  }

  /** The search_path a session starts with (see initial-path.ts), read once per user and database. */
  initialPath(s: SessionInfo): Promise<readonly string[] | null> {
    const given = startupPath(s.startupParams);
    if (given !== undefined || s.serverParams.has('search_path')) return Promise.resolve(given ?? null);
    const key = JSON.stringify([s.user, s.database]);
    let p = this.initialPaths.get(key);
    if (p !== undefined) return p;
    const db = this.opts.store();
    if (db === null) return Promise.resolve(null);
    p = withTimeout(initialPath(db, s.user, s.database)).catch(() => null);
    this.initialPaths.set(key, p);
    return p;
  }
}

/** Every statement of every reading, and what an EXECUTE or FETCH among them runs. */
interface Guarded {
  readonly columns: GuardedColumns;
  readonly rows: readonly GuardedRows[];
  readonly histories: GuardedHistories;
}

function judge(readings: readonly (readonly StatementSources[])[], g: Guarded, prepared: PreparedStatements): StatementDecision {
  for (const reading of readings) {
    for (const statement of reading) {
      const deferred = prepared.deferred(statement);
      if (typeof deferred === 'string') return deny(unseen(deferred));
      const refused = verdict(statement, g.columns, g.rows, g.histories) ?? (deferred === undefined ? null : verdict(deferred, g.columns, g.rows, g.histories));
      if (refused !== null) return deny(refused);
    }
  }
  return PASS;
}

function unseen(what: string): PgError {
  return new PgError(SqlState.InsufficientPrivilege,
    `${what} was prepared before the proxy checked this session's statements against guarded transforms: it cannot tell what it reads`,
    'ERROR', { hint: 'Prepare it again (or reconnect).' });
}

function deny(error: PgError): StatementDecision {
  return { action: 'deny', error };
}

function withTimeout<T>(p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${CATALOG_WAIT_MS / 1000} s`)), CATALOG_WAIT_MS))),
  ]).finally(() => clearTimeout(timer));
}
