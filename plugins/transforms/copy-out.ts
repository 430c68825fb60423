/**
 * Which `COPY … TO STDOUT` statements may not be served while transforms are registered. COPY
 * sends the client CopyData, not DataRows, so the transforms never see those rows: a statement
 * that may copy a table with transforms is refused instead. Decided on PostgreSQL's own parse of
 * the text (plugins/sql), never on its spelling.
 *
 * - `COPY name TO STDOUT`: refused when the name is that of a table with transforms. Without the
 *   session's search_path a bare name may resolve to it from any schema, so the table's own name
 *   counts in any schema; a qualified name counts in its schema only.
 * - `COPY (query) TO STDOUT`: the query may reach a table with transforms through a view, a
 *   function, an operator, a cast…, which the proxy cannot see through. So it is refused unless
 *   it is provably safe: it reads no relation other than its own CTEs and calls nothing (only
 *   constants, column references, VALUES, set operations and sorting).
 * - A text the parser rejects is refused too (the server would most likely reject it as well).
 */
import { PgError, SqlState } from '../../proxy/errors.js';
import type { Node, SqlAnalyser, SqlAnalysis } from '../sql/analyser.js';
import type { Registry, TableTransforms } from './registry-cache.js';

/** A relation as a statement names it (names as the server reads them: folded or unquoted). */
export interface RelationName {
  readonly schema: string | null;
  readonly name: string;
}

/** One COPY … TO STDOUT of a text: a relation, or a query with what it reads. */
export type CopyOut =
  | { readonly kind: 'relation'; readonly relation: RelationName }
  | {
      readonly kind: 'query';
      /** Relations it names that are not its own CTEs. */
      readonly reads: readonly RelationName[];
      /** Whether it is provably unable to read any table (see SAFE_NODES). */
      readonly safe: boolean;
    };

/**
 * Nodes that read nothing and run no code a user could define: with only these (and relations
 * that are CTEs of the query itself) a COPY query cannot reach a table with transforms. Anything
 * else (a function or operator call, a cast, a sublink, a lock clause…) is not proven safe.
 */
const SAFE_NODES = new Set([
  'SelectStmt', 'ResTarget', 'A_Const', 'ColumnRef', 'A_Star', 'String', 'Integer', 'Float', 'Boolean', 'BitString',
  'List', 'RangeSubselect', 'Alias', 'SortBy', 'RangeVar',
]);

/**
 * Whether a text may hold a COPY … TO STDOUT at all, before it is parsed: STDOUT is a keyword like
 * COPY (the host checked those letters already), and no escape or quoting can spell a keyword.
 */
export function mayCopyToStdout(text: string): boolean {
  return /stdout/i.test(text);
}

const copiesOf = new WeakMap<SqlAnalysis, readonly CopyOut[]>();

/** Every COPY … TO STDOUT of an analysed text, in every reading of it. */
export function copyOuts(analysis: SqlAnalysis & { ok: true }): readonly CopyOut[] {
  let out = copiesOf.get(analysis);
  if (out !== undefined) return out;
  const list: CopyOut[] = [];
  for (const reading of analysis.readings) {
    for (const node of reading) {
      if (!('CopyStmt' in node)) continue;
      const copy = node.CopyStmt;
      // TO a file or a program stays on the server; only TO STDOUT reaches the client.
      if (copy.is_from === true || copy.is_program === true || copy.filename !== undefined) continue;
      if (copy.relation !== undefined) {
        list.push({ kind: 'relation', relation: { schema: copy.relation.schemaname ?? null, name: copy.relation.relname ?? '' } });
      } else {
        const reads: RelationName[] = [];
        let safe: boolean;
        try {
          safe = walkQuery(copy.query, [], reads);
        } catch {
          // A tree too deep to walk (the stack ran out) is not proven safe.
          safe = false;
        }
        list.push({ kind: 'query', reads, safe });
      }
    }
  }
  out = list;
  copiesOf.set(analysis, out);
  return out;
}

/**
 * Walks a query tree (libpg-query's JSON: a node is `{ Type: {…fields} }`, fields hold nodes,
 * arrays of them, or inline structs) collecting the relations it names outside its CTE scope;
 * returns whether every node is one of SAFE_NODES.
 */
function walkQuery(value: unknown, ctes: readonly string[], reads: RelationName[]): boolean {
  if (Array.isArray(value)) {
    let safe = true;
    for (const v of value) safe = walkQuery(v, ctes, reads) && safe;
    return safe;
  }
  if (value === null || typeof value !== 'object') return true;
  let safe = true;
  for (const [key, field] of Object.entries(value as Record<string, unknown>)) {
    const isNode = key.charCodeAt(0) >= 0x41 && key.charCodeAt(0) <= 0x5a;
    if (!isNode) {
      safe = walkQuery(field, ctes, reads) && safe;
      continue;
    }
    if (!SAFE_NODES.has(key)) safe = false;
    if (key === 'RangeVar') {
      const rv = field as { schemaname?: string; catalogname?: string; relname?: string };
      const name = rv.relname ?? '';
      if (rv.schemaname !== undefined || rv.catalogname !== undefined || !ctes.includes(name)) {
        reads.push({ schema: rv.schemaname ?? null, name });
        safe = false;
      }
    } else if (key === 'SelectStmt') {
      safe = walkSelect(field as Record<string, unknown>, ctes, reads) && safe;
    } else {
      safe = walkQuery(field, ctes, reads) && safe;
    }
  }
  return safe;
}

/**
 * A SELECT with its WITH clause: a CTE's name is in scope in the SELECT's own body and, within the
 * clause, in the CTEs after it (in all of them, itself included, WITH RECURSIVE).
 */
function walkSelect(select: Record<string, unknown>, outer: readonly string[], reads: RelationName[]): boolean {
  const withClause = select['withClause'] as { ctes?: Node[]; recursive?: boolean } | undefined;
  let safe = true;
  let scope = outer;
  if (withClause !== undefined) {
    const ctes = (withClause.ctes ?? []).map((n) => ('CommonTableExpr' in n ? n.CommonTableExpr : {}));
    const names = ctes.map((c) => c.ctename ?? '');
    ctes.forEach((cte, i) => {
      const visible = withClause.recursive === true ? names : names.slice(0, i);
      // Search and cycle clauses name only columns; anything else in a CTE is walked as a node.
      const rest: Record<string, unknown> = { ...cte };
      delete rest['ctequery'];
      safe = walkQuery(cte.ctequery, [...outer, ...visible], reads) && walkQuery(rest, outer, reads) && safe;
    });
    scope = [...outer, ...names];
  }
  for (const [key, field] of Object.entries(select)) {
    // The two sides of a set operation are SELECTs written inline, each with its own WITH.
    if (key === 'larg' || key === 'rarg') safe = walkSelect(field as Record<string, unknown>, scope, reads) && safe;
    else if (key !== 'withClause') safe = walkQuery(field, scope, reads) && safe;
  }
  return safe;
}

/** Parser-read names of the tables with transforms, per registry (names do not change within one). */
const namesOf = new WeakMap<Registry, ReadonlyMap<TableTransforms, RelationName | null>>();

function registryNames(registry: Registry, sql: SqlAnalyser): ReadonlyMap<TableTransforms, RelationName | null> {
  let names = namesOf.get(registry);
  if (names !== undefined) return names;
  const map = new Map<TableTransforms, RelationName | null>();
  for (const t of registry.tables.values()) map.set(t, qualifiedName(t.name, sql));
  namesOf.set(registry, map);
  return (names = map);
}

/** A schema-qualified name as the registry formats it (`public."Order"`), read by the parser; null if it cannot be. */
export function qualifiedName(qualified: string, sql: SqlAnalyser): RelationName | null {
  const analysis = sql.analyse(`TABLE ${qualified}`);
  if (!analysis.ok) return null;
  const node = analysis.readings[0]?.[0];
  const from = node !== undefined && 'SelectStmt' in node ? node.SelectStmt.fromClause?.[0] : undefined;
  if (from === undefined || !('RangeVar' in from) || from.RangeVar.relname === undefined) return null;
  return { schema: from.RangeVar.schemaname ?? null, name: from.RangeVar.relname };
}

/** The table with transforms a name may stand for, or null; a table whose name could not be read matches every name. */
function tableNamed(rel: RelationName, tables: ReadonlyMap<TableTransforms, RelationName | null>): TableTransforms | null {
  for (const [table, name] of tables) {
    if (name === null) return table;
    if (name.name === rel.name && (rel.schema === null || name.schema === null || rel.schema === name.schema)) return table;
  }
  return null;
}

/**
 * Why this text may not be served while these transforms are registered (null: it may). The
 * registry is null while it could not be read: then any COPY … TO STDOUT is refused.
 */
export function copyOutRefusal(analysis: SqlAnalysis, registry: Registry | null, sql: SqlAnalyser): PgError | null {
  if (!analysis.ok) {
    return new PgError(analysis.code, analysis.message, 'ERROR', {
      position: analysis.position,
      hint: 'The proxy refuses a statement holding COPY that it cannot read while transforms are registered.',
    });
  }
  const copies = copyOuts(analysis);
  if (copies.length === 0) return null;
  if (registry === null) {
    return new PgError(SqlState.CannotConnectNow, 'the transform registry is not loaded yet: COPY TO STDOUT cannot be served');
  }
  const tables = registryNames(registry, sql);
  for (const copy of copies) {
    const named = copy.kind === 'relation' ? [copy.relation] : copy.reads;
    for (const rel of named) {
      const table = tableNamed(rel, tables);
      if (table !== null) return refusal(`COPY TO STDOUT of ${table.name}, which has transforms,`);
    }
    if (copy.kind === 'query' && !copy.safe) {
      return new PgError(
        SqlState.FeatureNotSupported,
        'COPY (query) TO STDOUT is not supported through the proxy while transforms are registered: the query may read a table with transforms (through a view, a function…) and its rows would reach the client untransformed',
        'ERROR',
        { hint: 'Read with SELECT, which the transforms apply to. Only a COPY (query) that reads no table and calls no function is served.' },
      );
    }
  }
  return null;
}

function refusal(what: string): PgError {
  return new PgError(
    SqlState.FeatureNotSupported,
    `${what} is not supported through the proxy: its rows would reach the client untransformed`,
    'ERROR',
    { hint: 'Read the table with SELECT, which the transforms apply to.' },
  );
}
