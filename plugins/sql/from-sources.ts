/**
 * FROM items as range table entries: tables, views (their definitions analysed as queries), CTEs,
 * subqueries, functions, joins (USING, NATURAL, aliases) and table samples.
 */
import type { FuncCall, JoinExpr, Node, RangeFunction, RangeVar } from 'libpg-query';
import type { CatalogRelation } from './catalog.js';
import { value, type ExprEnv, filter } from './expression-sources.js';
import { renamed, selectOutputs } from './query-sources.js';
import { findCte, type Ctes, type Rte, type Scope, type ScopeColumn } from './source-scope.js';
import { dotted, EMPTY, merge, names, plainVal, unknownVal, type Analysis, type Val } from './source-model.js';

function unknownRte(a: Analysis, refname: string | null, reason: string): Rte {
  a.uncertain(reason);
  return { refname, schema: null, columns: null, opaque: unknownVal(reason), system: false, visible: true };
}

function cols(list: readonly { name: string; val: Val }[]): ScopeColumn[] {
  return list.map((c) => ({ name: c.name, val: c.val, bare: true, star: true }));
}

/**
 * The entries a FROM item adds. `left` are the entries before it at its level (what LATERAL, and a
 * function's arguments, may refer to); `outer` the enclosing levels.
 */
export function fromItem(a: Analysis, node: Node, left: readonly Rte[], outer: Scope | null, ctes: Ctes | null): Rte[] {
  const lateral: Scope = { rtes: [...left], parent: outer };
  if ('RangeVar' in node) return [rangeVar(a, node.RangeVar, ctes)];
  if ('RangeSubselect' in node) {
    const r = node.RangeSubselect;
    const refname = r.alias?.aliasname ?? null;
    if (r.subquery === undefined) return [unknownRte(a, refname, 'a subquery without a query')];
    const outputs = selectOutputs(a, r.subquery, r.lateral === true ? lateral : outer, ctes);
    return [{ refname, schema: null, columns: cols(renamed(outputs, names(r.alias?.colnames))), opaque: EMPTY, system: false, visible: true }];
  }
  if ('RangeFunction' in node) return [rangeFunction(a, node.RangeFunction, lateral, ctes)];
  if ('JoinExpr' in node) return join(a, node.JoinExpr, left, outer, ctes);
  if ('RangeTableSample' in node) {
    const s = node.RangeTableSample;
    const rtes = s.relation === undefined ? [] : fromItem(a, s.relation, left, outer, ctes);
    const e: ExprEnv = { scope: lateral, ctes, a };
    for (const arg of [...(s.args ?? []), ...(s.repeatable === undefined ? [] : [s.repeatable])]) a.filter(value(e, arg), 'where', false);
    return rtes;
  }
  if ('RangeTableFunc' in node) {
    const t = node.RangeTableFunc;
    const e: ExprEnv = { scope: lateral, ctes, a };
    const cols: ScopeColumn[] = [];
    const doc = merge([value(e, t.docexpr), value(e, t.rowexpr), ...(t.namespaces ?? []).map((n) => value(e, n))]);
    for (const c of t.columns ?? []) {
      if (!('RangeTableFuncCol' in c)) continue;
      const col = c.RangeTableFuncCol;
      const problem = col.typeName === undefined ? null : a.typeProblem(names(col.typeName.names));
      const val = col.for_ordinality === true ? EMPTY : merge([doc, value(e, col.colexpr), value(e, col.coldefexpr), problem === null ? EMPTY : unknownVal(problem)]);
      cols.push({ name: col.colname ?? '', val, bare: true, star: true });
    }
    return [{ refname: t.alias?.aliasname ?? null, schema: null, columns: renamed(cols, names(t.alias?.colnames)), opaque: EMPTY, system: false, visible: true }];
  }
  return [unknownRte(a, null, `the FROM item ${Object.keys(node)[0] ?? ''} is not understood`)];
}

/** A table, view or CTE named in FROM (or the target of INSERT, UPDATE, DELETE, MERGE when `ctes` is null). */
export function rangeVar(a: Analysis, rv: RangeVar, ctes: Ctes | null): Rte {
  const name = rv.relname ?? '';
  const aliases = names(rv.alias?.colnames);
  const refname = rv.alias?.aliasname ?? name;
  if (rv.schemaname === undefined && ctes !== null) {
    const cte = findCte(ctes, name);
    if (typeof cte === 'string') return unknownRte(a, refname, cte);
    if (cte !== undefined) return { refname, schema: null, columns: cols(renamed(cte, aliases)), opaque: EMPTY, system: false, visible: true };
  }
  const rel = a.relation(rv.schemaname, name);
  if (typeof rel === 'string') return unknownRte(a, refname, rel);
  const schema = rv.alias === undefined ? rel.schema : null;
  const make = (vals: readonly Val[], system: boolean): Rte => ({
    refname,
    schema,
    columns: cols(renamed(rel.columns.map((c, i) => ({ name: c.name, val: vals[i] ?? EMPTY })), aliases)),
    opaque: EMPTY,
    system,
    visible: true,
  });
  switch (rel.kind) {
    case 'table':
    case 'partitioned':
    case 'foreign':
    case 'sequence':
      return make(rel.columns.map((c) => plainVal({ oid: rel.oid, attnum: c.attnum })), true);
    case 'view':
    case 'matview': {
      const vals = viewColumns(a, rel);
      if (typeof vals === 'string') return unknownRte(a, refname, vals);
      // A materialized view holds copies of what its query computed: never a plain reference.
      return make(rel.kind === 'matview' ? vals.map((v) => merge([v])) : vals, rel.kind === 'matview');
    }
    default:
      return unknownRte(a, refname, `relation ${dotted([rel.schema, rel.name])} is not a table or view`);
  }
}

/** A view's columns, from its definition analysed like any query. */
export function viewColumns(a: Analysis, rel: CatalogRelation): Val[] | string {
  const inner = a.forView();
  if (inner === null) return `views nest too deep under ${dotted([rel.schema, rel.name])}`;
  const query = rel.definition === null ? null : a.parseView(rel.definition);
  if (query === null) return `the definition of view ${dotted([rel.schema, rel.name])} cannot be read`;
  const outputs = selectOutputs(inner, query, null, null);
  a.absorb(inner);
  if (outputs.length !== rel.columns.length) return `the definition of view ${dotted([rel.schema, rel.name])} does not match its columns`;
  return outputs.map((o) => o.val);
}

function rangeFunction(a: Analysis, r: RangeFunction, lateral: Scope, ctes: Ctes | null): Rte {
  const e: ExprEnv = { scope: lateral, ctes, a };
  const refname = r.alias?.aliasname ?? null;
  const columns: ScopeColumn[] = [];
  const single = (r.functions ?? []).length === 1;
  for (const item of r.functions ?? []) {
    const [fn, coldefs] = 'List' in item ? item.List.items ?? [] : [];
    if (fn === undefined || !('FuncCall' in fn)) {
      const val = value(e, fn);
      columns.push({ name: refname ?? '?column?', val: merge([val]), bare: true, star: true });
      continue;
    }
    const f: FuncCall = fn.FuncCall;
    const parts = names(f.funcname);
    const args = merge((f.args ?? []).map((x) => value(e, x)));
    const candidates = a.functionCandidates(parts, (f.args ?? []).length);
    if (typeof candidates === 'string') return unknownRte(a, refname, candidates);
    const reader = candidates.find((c) => c.mayReadTables);
    if (reader !== undefined) return unknownRte(a, refname, `function ${dotted([reader.schema, reader.name])} may read tables`);
    // A column definition list belongs to its function in ROWS FROM, to the only one otherwise.
    const defs = coldefs !== undefined && 'List' in coldefs ? coldefs.List.items ?? [] : single ? r.coldeflist ?? [] : [];
    const defined = defs.flatMap((c) => ('ColumnDef' in c ? [c.ColumnDef.colname ?? ''] : []));
    // Values are converted to the declared types by their input functions.
    const typeProblem = defs.map((c) => ('ColumnDef' in c ? a.typeProblem(names(c.ColumnDef.typeName?.names)) : null)).find((p) => p !== null);
    if (typeProblem !== undefined && typeProblem !== null) return unknownRte(a, refname, typeProblem);
    const declared = candidates[0]?.outputColumns ?? null;
    const fnNames = defined.length > 0 ? defined : declared ?? [single && refname !== null ? refname : parts.at(-1) ?? '?column?'];
    for (const n of fnNames) columns.push({ name: n, val: args, bare: true, star: true });
  }
  if (r.ordinality === true) columns.push({ name: 'ordinality', val: EMPTY, bare: true, star: true });
  return { refname, schema: null, columns: renamed(columns, names(r.alias?.colnames)), opaque: EMPTY, system: false, visible: true };
}

function join(a: Analysis, j: JoinExpr, before: readonly Rte[], outer: Scope | null, ctes: Ctes | null): Rte[] {
  const leftRtes = j.larg === undefined ? [] : fromItem(a, j.larg, before, outer, ctes);
  const rightRtes = j.rarg === undefined ? [] : fromItem(a, j.rarg, [...before, ...leftRtes], outer, ctes);
  const starCols = (rtes: readonly Rte[]): ScopeColumn[] => rtes.flatMap((r) => (r.columns ?? []).filter((c) => c.star));
  let using = names(j.usingClause);
  if (j.isNatural === true) {
    const right = new Set(starCols(rightRtes).map((c) => c.name));
    using = starCols(leftRtes).map((c) => c.name).filter((n) => right.has(n));
  }
  const scopeOf = (rtes: readonly Rte[]): Scope => ({ rtes: [...rtes], parent: outer });
  const merged: ScopeColumn[] = [];
  const e: ExprEnv = { scope: scopeOf([...before, ...leftRtes, ...rightRtes]), ctes, a };
  for (const n of using) {
    const lv = value({ ...e, scope: scopeOf(leftRtes) }, columnRef(n));
    const rv = value({ ...e, scope: scopeOf(rightRtes) }, columnRef(n));
    a.filter(lv, 'join', true);
    a.filter(rv, 'join', true);
    const val = j.jointype === 'JOIN_FULL' ? merge([lv, rv]) : j.jointype === 'JOIN_RIGHT' ? rv : lv;
    merged.push({ name: n, val, bare: true, star: true });
  }
  const hide = (r: Rte): Rte =>
    r.columns === null ? r : { ...r, columns: r.columns.map((c) => (using.includes(c.name) ? { ...c, bare: false, star: false } : c)) };
  const sides = [...leftRtes, ...rightRtes].map(hide);
  const mergedRte: Rte = { refname: null, schema: null, columns: merged, opaque: EMPTY, system: false, visible: false };
  filter({ ...e, scope: scopeOf([...before, mergedRte, ...sides]) }, j.quals, 'join');
  const out: Rte[] = [];
  if (j.join_using_alias?.aliasname !== undefined) {
    out.push({ refname: j.join_using_alias.aliasname, schema: null, columns: merged.map((c) => ({ ...c, bare: false, star: false })), opaque: EMPTY, system: false, visible: true });
  }
  if (j.alias?.aliasname !== undefined) {
    if (sides.some((r) => r.columns === null)) return [...out, unknownRte(a, j.alias.aliasname, `the columns of join ${j.alias.aliasname} are not known`)];
    const all = [...merged, ...starCols(sides)];
    out.push({ refname: j.alias.aliasname, schema: null, columns: renamed(all, names(j.alias.colnames)), opaque: EMPTY, system: false, visible: true });
    return out;
  }
  return [mergedRte, ...out, ...sides];
}

function columnRef(name: string): Node {
  return { ColumnRef: { fields: [{ String: { sval: name } }] } };
}
