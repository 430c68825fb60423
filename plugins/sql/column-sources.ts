/**
 * Where every value of a statement's results comes from, read from PostgreSQL's own parse tree
 * (SqlAnalyser) and the catalog, resolving names as the server does.
 *
 * For each statement of a text it gives:
 * - `results`: each result the statement returns (a SELECT, RETURNING), column by column:
 *   `{kind:'column', oid, attnum}` for a plain reference to a table column, `{kind:'expression',
 *   reads}` for a value computed from the table columns `reads`, `{kind:'unknown', reason, reads}`
 *   where the analysis cannot be sure (`reads` then holds what it did see). A plain reference
 *   through a view is reported as the view's table column, while the server's RowDescription
 *   names the view's own column;
 * - `filters`: table columns compared, grouped or ordered by (WHERE, JOIN ON/USING/NATURAL,
 *   GROUP BY, HAVING, ORDER BY, DISTINCT ON, window PARTITION BY/ORDER BY, LIMIT/OFFSET, ON CONFLICT
 *   and MERGE conditions, a view's own WHERE), `direct` when compared as they are rather than
 *   through an expression (a function or cast on a column can show its value in an error message
 *   or through a side effect);
 * - `flows`: table columns whose values go elsewhere than to a result: INSERT (… SELECT, VALUES,
 *   ON CONFLICT DO UPDATE), UPDATE SET, MERGE, CREATE TABLE AS / CREATE MATERIALIZED VIEW, SELECT
 *   INTO, COPY (table or query) TO, CALL arguments, EXPLAIN ANALYZE, REFRESH MATERIALIZED VIEW;
 * - `cursor` for DECLARE (its query's columns, for the FETCHes that return them) and `fetch` for
 *   FETCH; `prepare` for PREPARE (the analysis of its statement) and `execute` for EXECUTE: the
 *   caller maps them, by name, within the session;
 * - `certain`, false with `reasons` when anything above is not sure.
 *
 * Understood:
 * - names: the session's search_path (pg_catalog first unless listed, the temporary schema first
 *   for relations unless listed, `$user`, schemas the user may not use left out), schema-qualified
 *   names, quoted and `U&` identifiers (the parser resolves them), CTE names before tables (a CTE
 *   is not visible in its own body unless RECURSIVE, where every CTE of the list sees every
 *   other), aliases and column aliases, system columns, outer-level (correlated) references;
 * - FROM: tables, partitioned and foreign tables, views (their definitions from the catalog analysed
 *   like any query, recursively), materialized views (their columns are copies: expressions of what
 *   their query reads), CTEs (RECURSIVE, SEARCH, CYCLE, data-modifying ones with RETURNING),
 *   subqueries, LATERAL, joins of every kind with ON, USING (and its alias), NATURAL and join
 *   aliases, VALUES, TABLESAMPLE, XMLTABLE, functions (ROWS FROM, WITH ORDINALITY, column
 *   definition lists) when they are built-ins that compute from their arguments;
 * - select lists: `*` and `t.*` expanded, `(t).c` as the column c, whole-row references (`t`, `t.*`
 *   in an expression) reading every column, operators, casts, function calls, aggregates (ORDER BY,
 *   FILTER), window functions, CASE, COALESCE, GREATEST/LEAST, NULLIF, arrays, rows, COLLATE,
 *   subscripts and fields, XML expressions, scalar/ARRAY/EXISTS/IN/ANY/ALL subqueries, set
 *   operations (every arm feeds every output column, which is never plain);
 * - statements: SELECT, INSERT, UPDATE, DELETE, MERGE, CREATE TABLE AS, SELECT INTO, COPY, CALL,
 *   DECLARE/FETCH, PREPARE/EXECUTE, EXPLAIN, REFRESH MATERIALIZED VIEW, and utility statements that
 *   read no table data (SET, SHOW, BEGIN…, CREATE TABLE/VIEW/FUNCTION, DROP, GRANT…).
 *
 * Reported as unknown (and `certain: false`): a function, procedure or operator that is not a
 * built-in computing from its arguments only (user-defined, or built-ins that run queries or read
 * files, cursors and large objects: query_to_xml, cursor_to_xml, ts_stat…), a cast or column
 * definition to a user-defined type (its input function or domain checks may run any code), a
 * name that does not resolve or is ambiguous, a temporary table that may shadow a name when the
 * session's temporary schema is not given, a table found in a schema of the search_path when the
 * user is not given (the server skips schemas the user may not use), `*` over a FROM function
 * whose columns are not known, a view definition that cannot be read or nests too deep, an
 * expression or FROM form not listed above, DO, any other utility statement (ALTER TABLE, CREATE
 * INDEX, CREATE TRIGGER… can show values through errors or later), and the statements after one
 * in the same text that may change what names mean (DDL, SET, a call of set_config, anything the
 * analysis is unsure of).
 * Not seen: code the server runs on its own (triggers, rules, column defaults, policies);
 * inheritance children and partitions are reported as their parent's columns; the statistics
 * catalogs (pg_stats) are reported as their own columns.
 */
import type { Node } from 'libpg-query';
import type { Reading, SqlAnalyser } from './analyser.js';
import type { Catalog, CatalogNeed, LoadableCatalog } from './catalog.js';
import { value } from './expression-sources.js';
import { rangeVar, viewColumns } from './from-sources.js';
import { dmlOutputs } from './dml-sources.js';
import { selectOutputs, type Output } from './query-sources.js';
import { Analysis, fromSource, merge, names, toSource, type ColumnSource, type FilterUse, type Flow, type FlowTarget, type SessionNames } from './source-model.js';

export type { ColumnSource, FilterUse, Flow, SessionNames, TableColumn } from './source-model.js';
export { parseSearchPath } from './source-model.js';

export interface ResultSources {
  readonly names: readonly string[];
  readonly columns: readonly ColumnSource[];
}

export interface StatementSources {
  readonly results: readonly ResultSources[];
  readonly filters: readonly FilterUse[];
  readonly flows: readonly Flow[];
  readonly cursor?: { readonly name: string; readonly result: ResultSources };
  readonly fetch?: string;
  readonly prepare?: { readonly name: string; readonly statement: StatementSources };
  readonly execute?: string;
  readonly certain: boolean;
  readonly reasons: readonly string[];
  /** Catalog entries the analysis lacked (a LoadableCatalog loads them; see loadColumnSources). */
  readonly needs: readonly CatalogNeed[];
  /**
   * Why names may mean something else after this statement has run (DDL, SET, set_config,
   * anything the analysis is unsure of), or null: the later statements of its text are then
   * uncertain, and a session's later texts need the search_path and catalog read again.
   */
  readonly changesNames: string | null;
}

/** Utility statements that read no table data. */
const NO_DATA = new Set([
  'TransactionStmt', 'VariableSetStmt', 'VariableShowStmt', 'DiscardStmt', 'ListenStmt', 'UnlistenStmt', 'NotifyStmt',
  'DeallocateStmt', 'ClosePortalStmt', 'CreateStmt', 'DropStmt', 'ViewStmt', 'CreateFunctionStmt', 'CreateSchemaStmt',
  'CommentStmt', 'GrantStmt', 'GrantRoleStmt', 'CreateRoleStmt', 'AlterRoleStmt', 'DropRoleStmt', 'LockStmt', 'CheckPointStmt',
  'CreateSeqStmt', 'AlterSeqStmt', 'TruncateStmt', 'RenameStmt', 'AlterOwnerStmt', 'CreateDomainStmt', 'CompositeTypeStmt',
  'CreateEnumStmt', 'DefineStmt', 'ConstraintsSetStmt', 'CreatePolicyStmt', 'DropOwnedStmt', 'ReassignOwnedStmt',
]);

/** Statements after which the next ones of a text still mean what the catalog and session say. */
const KEEPS_NAMES = new Set([
  'SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt', 'TransactionStmt', 'VariableShowStmt', 'DeclareCursorStmt',
  'FetchStmt', 'ClosePortalStmt', 'ExplainStmt', 'CopyStmt', 'ListenStmt', 'UnlistenStmt', 'NotifyStmt',
  'PrepareStmt', 'DeallocateStmt', 'LockStmt',
]);

/** What a statement leaves for a later one (DECLARE, PREPARE) or takes from an earlier one (FETCH, EXECUTE). */
type Deferred = { -readonly [K in 'cursor' | 'fetch' | 'prepare' | 'execute']?: StatementSources[K] };

function result(a: Analysis, outputs: readonly Output[]): ResultSources {
  for (const o of outputs) if (o.val.unknown !== null) a.uncertain(o.val.unknown);
  return { names: outputs.map((o) => o.name), columns: outputs.map((o) => toSource(o.val)) };
}

function kindOf(node: Node): string {
  return Object.keys(node)[0] ?? '';
}

export interface SourcesEnv {
  readonly catalog: Catalog;
  readonly session: SessionNames;
  readonly analyser: SqlAnalyser;
}

function parseView(analyser: SqlAnalyser): (text: string) => Node | null {
  return (text) => {
    const r = analyser.analyse(text);
    const stmts = r.ok ? r.readings[0] : undefined;
    return stmts !== undefined && stmts.length === 1 ? stmts[0] ?? null : null;
  };
}

/** The sources of one statement. */
export function statementSources(stmt: Node, env: SourcesEnv): StatementSources {
  const a = new Analysis(env.catalog, env.session, parseView(env.analyser));
  const extra: Deferred = {};
  try {
    const s = finish(a, statement(a, stmt, env, extra), extra);
    return { ...s, changesNames: mayChangeNames(stmt, s) };
  } catch (err) {
    // The parser accepts nesting deeper than the analysis's recursion can follow.
    if (!(err instanceof RangeError)) throw err;
    const deep = new Analysis(env.catalog, env.session, a.parseView);
    deep.uncertain('the statement nests too deeply for the analysis');
    return { ...finish(deep, [], {}), changesNames: 'a statement the analysis could not follow' };
  }
}

function finish(a: Analysis, results: ResultSources[], extra: Deferred): StatementSources {
  const seenFilters = new Set<string>();
  const filters = a.filters.filter((f) => {
    const k = `${f.oid}.${f.attnum}.${f.clause}.${f.direct}`;
    return !seenFilters.has(k) && seenFilters.add(k) !== undefined;
  });
  const seenFlows = new Set<string>();
  const flows = a.flows.filter((f) => {
    const k = `${f.oid}.${f.attnum}.${f.into}`;
    return !seenFlows.has(k) && seenFlows.add(k) !== undefined;
  });
  const reasons = [...a.reasons];
  if (extra.prepare !== undefined) reasons.push(...extra.prepare.statement.reasons);
  return { results, filters, flows, ...extra, certain: reasons.length === 0, reasons, needs: a.needs, changesNames: null };
}

function flowAll(a: Analysis, outputs: readonly Output[], into: FlowTarget): void {
  for (const o of outputs) a.flow(o.val, into);
}

function statement(a: Analysis, stmt: Node, env: SourcesEnv, extra: Deferred): ResultSources[] {
  if ('SelectStmt' in stmt) {
    const outputs = selectOutputs(a, stmt, null, null);
    if (stmt.SelectStmt.intoClause === undefined) return [result(a, outputs)];
    flowAll(a, outputs, 'select into');
    return [];
  }
  if ('InsertStmt' in stmt || 'UpdateStmt' in stmt || 'DeleteStmt' in stmt || 'MergeStmt' in stmt) {
    const outputs = dmlOutputs(a, stmt, null, null);
    const body = Object.values(stmt)[0] as { returningClause?: unknown };
    return body.returningClause === undefined ? [] : [result(a, outputs)];
  }
  if ('CreateTableAsStmt' in stmt) {
    const s = stmt.CreateTableAsStmt;
    if (s.query === undefined || 'ExecuteStmt' in s.query) {
      a.uncertain('CREATE TABLE AS EXECUTE runs a prepared statement the analysis does not see');
      return [];
    }
    const outputs = selectOutputs(a, s.query, null, null);
    if (s.into?.skipData !== true) flowAll(a, outputs, s.is_select_into === true ? 'select into' : 'create table as');
    return [];
  }
  if ('CopyStmt' in stmt) {
    const s = stmt.CopyStmt;
    if (s.query !== undefined) flowAll(a, selectOutputs(a, s.query, null, null), 'copy');
    else if (s.relation !== undefined && s.is_from !== true) {
      const rte = rangeVar(a, s.relation, null);
      const wanted = names(s.attlist);
      for (const c of rte.columns ?? []) if (wanted.length === 0 || wanted.includes(c.name)) a.flow(c.val, 'copy');
      if (rte.columns === null) a.flow(rte.opaque, 'copy');
    }
    return [];
  }
  if ('CallStmt' in stmt) {
    const f = stmt.CallStmt.funccall;
    if (f !== undefined) {
      a.flow(merge((f.args ?? []).map((x) => value({ scope: null, ctes: null, a }, x))), 'call');
      const problem = a.functionProblem(names(f.funcname), (f.args ?? []).length);
      if (problem !== null) a.uncertain(problem);
    }
    return [];
  }
  if ('DeclareCursorStmt' in stmt) {
    const s = stmt.DeclareCursorStmt;
    if (s.query !== undefined) extra.cursor = { name: s.portalname ?? '', result: result(a, selectOutputs(a, s.query, null, null)) };
    return [];
  }
  if ('FetchStmt' in stmt) {
    if (stmt.FetchStmt.ismove !== true) extra.fetch = stmt.FetchStmt.portalname ?? '';
    return [];
  }
  if ('PrepareStmt' in stmt) {
    const q = stmt.PrepareStmt.query;
    if (q !== undefined) extra.prepare = { name: stmt.PrepareStmt.name ?? '', statement: statementSources(q, env) };
    return [];
  }
  if ('ExecuteStmt' in stmt) {
    extra.execute = stmt.ExecuteStmt.name ?? '';
    return [];
  }
  if ('ExplainStmt' in stmt) {
    const s = stmt.ExplainStmt;
    const analyze = (s.options ?? []).some((o) => 'DefElem' in o && o.DefElem.defname === 'analyze' && !isFalse(o.DefElem.arg));
    if (analyze && s.query !== undefined) {
      for (const r of statement(a, s.query, env, {})) for (const c of r.columns) a.flow(fromSource(c), 'explain analyze');
    }
    return [];
  }
  if ('RefreshMatViewStmt' in stmt) {
    const s = stmt.RefreshMatViewStmt;
    const rel = s.relation === undefined ? 'no relation' : a.relation(s.relation.schemaname, s.relation.relname ?? '');
    if (typeof rel === 'string') a.uncertain(rel);
    else if (s.skipData !== true) {
      const vals = viewColumns(a, rel);
      if (typeof vals === 'string') a.uncertain(vals);
      else for (const v of vals) a.flow(v, 'refresh materialized view');
    }
    return [];
  }
  if ('DoStmt' in stmt) {
    a.uncertain('DO runs code the proxy cannot read');
    return [];
  }
  if (!NO_DATA.has(kindOf(stmt))) a.uncertain(`the statement ${kindOf(stmt)} is not understood`);
  return [];
}

function isFalse(arg: Node | undefined): boolean {
  if (arg === undefined) return false;
  if ('String' in arg) return ['false', 'off', 'no', '0'].includes((arg.String.sval ?? '').toLowerCase());
  if ('Boolean' in arg) return arg.Boolean.boolval !== true;
  if ('Integer' in arg) return arg.Integer.ival === 0 || arg.Integer.ival === undefined;
  return false;
}

/** Every statement of one reading of a text, in order. */
export function readingSources(reading: Reading, env: SourcesEnv): StatementSources[] {
  const out: StatementSources[] = [];
  let changer: string | null = null;
  for (const stmt of reading) {
    const s = statementSources(stmt, env);
    if (changer === null) out.push(s);
    else {
      const reason = `an earlier statement of the same text (${changer}) may change what its names mean`;
      out.push({ ...s, certain: false, reasons: [...s.reasons, reason] });
    }
    changer ??= s.changesNames;
  }
  return out;
}

/**
 * Why the statements after `stmt` in its text may not mean what the catalog and the session say,
 * or null: DDL and SET change them, and so may anything the analysis is unsure of or a call of
 * set_config (search_path, role).
 */
function mayChangeNames(stmt: Node, s: StatementSources): string | null {
  if (!KEEPS_NAMES.has(kindOf(stmt))) return kindOf(stmt);
  if (!s.certain) return `a ${kindOf(stmt)} the analysis is unsure of`;
  return callsSetConfig(stmt) ? 'a call of set_config' : null;
}

/** Whether a statement calls set_config (which may change the search_path or the role). */
export function callsSetConfig(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(callsSetConfig);
  if (node === null || typeof node !== 'object') return false;
  const f = (node as { FuncCall?: { funcname?: Node[] } }).FuncCall;
  if (f !== undefined && names(f.funcname).at(-1) === 'set_config') return true;
  return Object.values(node).some(callsSetConfig);
}

const MAX_LOAD_ROUNDS = 8;

/**
 * The sources of every statement of a reading, the catalog first loaded with what they need (a
 * view's definition names more relations, so this may take a few rounds).
 */
export async function loadColumnSources(reading: Reading, env: SourcesEnv & { readonly catalog: LoadableCatalog }): Promise<StatementSources[]> {
  let sources = readingSources(reading, env);
  for (let round = 0; round < MAX_LOAD_ROUNDS; round++) {
    const needs = allNeeds(sources);
    if (needs.length === 0) break;
    await env.catalog.load(needs);
    sources = readingSources(reading, env);
  }
  return sources;
}

function allNeeds(sources: readonly StatementSources[]): CatalogNeed[] {
  return sources.flatMap((s) => [...s.needs, ...(s.prepare === undefined ? [] : allNeeds([s.prepare.statement]))]);
}
