/**
 * A query's output columns and what each is made of: WITH, set operations, VALUES, the select
 * list (with `*` expanded), and the keys that filter, group and order its rows.
 */
import type { CommonTableExpr, Node, SelectStmt, WithClause } from 'libpg-query';
import { filter, outputName, value, windowKeys, type ExprEnv } from './expression-sources.js';
import { fromItem } from './from-sources.js';
import { dmlOutputs } from './dml-sources.js';
import { resolveColumnRef, wholeRow, type Ctes, type CteOutput, type Scope } from './source-scope.js';
import { EMPTY, merge, names, unknownVal, type Analysis, type FilterClause, type Val } from './source-model.js';

export interface Output {
  readonly name: string;
  readonly val: Val;
}

const MAX_RECURSIVE_ROUNDS = 5;

/** The outputs of a query (a SELECT, or a data-modifying statement with RETURNING in a WITH). */
export function selectOutputs(a: Analysis, node: Node, outer: Scope | null, ctes: Ctes | null): Output[] {
  if ('SelectStmt' in node) return select(a, node.SelectStmt, outer, ctes);
  if ('InsertStmt' in node || 'UpdateStmt' in node || 'DeleteStmt' in node || 'MergeStmt' in node) return dmlOutputs(a, node, outer, ctes);
  a.uncertain(`a ${Object.keys(node)[0] ?? 'statement'} where a query was expected is not understood`);
  return [];
}

/** Column aliases given to a derived table or CTE rename its first columns. */
export function renamed<T extends { readonly name: string }>(cols: readonly T[], aliases: readonly string[]): T[] {
  return cols.map((c, i) => (i < aliases.length ? { ...c, name: aliases[i] ?? c.name } : c));
}

export function withClause(a: Analysis, w: WithClause | undefined, outer: Scope | null, parent: Ctes | null): Ctes | null {
  if (w === undefined) return parent;
  const ctes: Ctes = { map: new Map(), parent };
  const list = (w.ctes ?? []).flatMap((item) => ('CommonTableExpr' in item ? [item.CommonTableExpr] : []));
  for (const cte of w.recursive === true ? recursiveOrder(a, list, ctes) : list) {
    const name = cte.ctename ?? '';
    const query = cte.ctequery;
    const aliases = names(cte.aliascolnames);
    if (query === undefined) continue;
    let outputs: Output[];
    const self = w.recursive === true && referencesName(query, name);
    if (self && 'SelectStmt' in query && query.SelectStmt.op !== undefined && query.SelectStmt.op !== 'SETOP_NONE' && query.SelectStmt.larg !== undefined) {
      // The server types a recursive CTE by its non-recursive arm; its values then flow round the
      // recursive one until nothing new is read.
      outputs = renamed(select(a, query.SelectStmt.larg, outer, ctes), aliases);
      for (let round = 0; round < MAX_RECURSIVE_ROUNDS; round++) {
        ctes.map.set(name, outputs);
        const next = renamed(selectOutputs(a, query, outer, ctes), aliases);
        const grown = next.some((o, i) => o.val.reads.length !== outputs[i]?.val.reads.length || (o.val.unknown === null) !== (outputs[i]?.val.unknown === null));
        outputs = next;
        if (!grown) break;
      }
    } else if (self) {
      a.uncertain(`the recursive query ${name} is not a UNION`);
      outputs = [];
    } else {
      outputs = renamed(selectOutputs(a, query, outer, ctes), aliases);
    }
    const extra: CteOutput[] = [];
    const all = merge(outputs.map((o) => o.val));
    if (cte.search_clause?.search_seq_column !== undefined) extra.push({ name: cte.search_clause.search_seq_column, val: all });
    if (cte.cycle_clause !== undefined) {
      if (cte.cycle_clause.cycle_mark_column !== undefined) extra.push({ name: cte.cycle_clause.cycle_mark_column, val: all });
      if (cte.cycle_clause.cycle_path_column !== undefined) extra.push({ name: cte.cycle_clause.cycle_path_column, val: all });
    }
    ctes.map.set(name, [...outputs, ...extra]);
  }
  return ctes;
}

/**
 * Under WITH RECURSIVE every CTE of the list is visible in every other (the server orders them
 * by their references), so a name must never fall through to a table while its CTE is still to
 * come: each is marked pending until analysed, in an order where the ones it names come first.
 */
function recursiveOrder(a: Analysis, list: readonly CommonTableExpr[], ctes: Ctes): CommonTableExpr[] {
  const pending = new Map(list.map((c) => [c.ctename ?? '', c]));
  for (const name of pending.keys()) ctes.map.set(name, `WITH query ${name} is referred to before it can be analysed`);
  const ordered: CommonTableExpr[] = [];
  while (pending.size > 0) {
    const ready = [...pending.values()].find((c) => [...pending.keys()].every((n) => n === c.ctename || !referencesName(c.ctequery, n)));
    if (ready === undefined) {
      a.uncertain('WITH RECURSIVE queries refer to each other');
      break;
    }
    ordered.push(ready);
    pending.delete(ready.ctename ?? '');
  }
  return ordered;
}

function referencesName(node: unknown, name: string): boolean {
  if (Array.isArray(node)) return node.some((n) => referencesName(n, name));
  if (node === null || typeof node !== 'object') return false;
  const rv = (node as { RangeVar?: { relname?: string; schemaname?: string } }).RangeVar;
  if (rv !== undefined && rv.schemaname === undefined && rv.relname === name) return true;
  return Object.values(node).some((v) => referencesName(v, name));
}

function select(a: Analysis, s: SelectStmt, outer: Scope | null, ctesIn: Ctes | null): Output[] {
  const ctes = withClause(a, s.withClause, outer, ctesIn);
  if (s.op !== undefined && s.op !== 'SETOP_NONE') {
    const left = s.larg === undefined ? [] : select(a, s.larg, outer, ctes);
    const right = s.rarg === undefined ? [] : select(a, s.rarg, outer, ctes);
    if (left.length !== right.length) a.uncertain('the arms of a set operation have different numbers of columns');
    const outputs = left.map((o, i) => ({ name: o.name, val: merge([o.val, right[i]?.val ?? EMPTY]) }));
    tail(a, s, { scope: outputScope(outputs, outer), ctes, a }, outputs);
    return outputs;
  }
  if (s.valuesLists !== undefined) {
    const e: ExprEnv = { scope: outer, ctes, a };
    const rows = s.valuesLists.map((r) => ('List' in r ? (r.List.items ?? []).map((x) => value(e, x)) : []));
    const width = Math.max(0, ...rows.map((r) => r.length));
    const outputs: Output[] = [];
    for (let i = 0; i < width; i++) {
      const vals = rows.map((r) => r[i] ?? EMPTY);
      outputs.push({ name: `column${i + 1}`, val: vals.length === 1 ? vals[0] ?? EMPTY : merge(vals) });
    }
    tail(a, s, { scope: outputScope(outputs, outer), ctes, a }, outputs);
    return outputs;
  }
  const scope: Scope = { rtes: [], parent: outer };
  for (const item of s.fromClause ?? []) scope.rtes.push(...fromItem(a, item, scope.rtes, outer, ctes));
  const e: ExprEnv = { scope, ctes, a };
  filter(e, s.whereClause, 'where');
  const outputs = targetList(e, s.targetList ?? []);
  for (const g of s.groupClause ?? []) groupKey(e, g, outputs);
  filter(e, s.havingClause, 'having');
  for (const w of s.windowClause ?? []) if ('WindowDef' in w) windowKeys(e, w.WindowDef);
  for (const d of s.distinctClause ?? []) if (Object.keys(d).length > 0) sortKey(e, d, outputs, 'distinct on');
  tail(a, s, e, outputs);
  return outputs;
}

/** What ORDER BY of a set operation or VALUES can name: its output columns. */
function outputScope(outputs: readonly Output[], outer: Scope | null): Scope {
  const columns = outputs.map((o) => ({ ...o, bare: true, star: true }));
  return { rtes: [{ refname: null, schema: null, columns, opaque: EMPTY, system: false, visible: false }], parent: outer };
}

/** ORDER BY, LIMIT and OFFSET. */
function tail(a: Analysis, s: SelectStmt, e: ExprEnv, outputs: readonly Output[]): void {
  for (const o of s.sortClause ?? []) sortKey(e, o, outputs, 'order by');
  if (s.limitCount !== undefined) a.filter(value(e, s.limitCount), 'limit', false);
  if (s.limitOffset !== undefined) a.filter(value(e, s.limitOffset), 'limit', false);
}

export function targetList(e: ExprEnv, list: readonly Node[]): Output[] {
  const out: Output[] = [];
  for (const item of list) {
    if (!('ResTarget' in item)) continue;
    const rt = item.ResTarget;
    const v = rt.val;
    if (v !== undefined && 'ColumnRef' in v && v.ColumnRef.fields?.some((f) => 'A_Star' in f)) {
      out.push(...expandStar(e, v.ColumnRef.fields));
      continue;
    }
    out.push({ name: rt.name ?? outputName(v), val: value(e, v) });
  }
  return out;
}

function expandStar(e: ExprEnv, fields: readonly Node[]): Output[] {
  const qualifier = fields.flatMap((f) => ('String' in f ? [f.String.sval ?? ''] : []));
  const rtes = qualifier.length === 0 ? e.scope?.rtes ?? [] : [];
  if (qualifier.length > 0) {
    let found = null;
    for (let s = e.scope; s !== null && found === null; s = s.parent) {
      found = s.rtes.find((r) => r.visible && r.refname === qualifier.at(-1) && (qualifier.length < 2 || r.schema === qualifier.at(-2))) ?? null;
    }
    if (found === null) return [{ name: '?column?', val: resolveColumnRef(e.scope, fields) }];
    rtes.push(found);
  }
  const out: Output[] = [];
  for (const r of rtes) {
    if (r.columns === null) out.push({ name: '?column?', val: unknownVal(`* cannot be expanded over ${r.refname ?? 'a FROM item'}: its columns are not known`, wholeRow(r).reads) });
    else for (const c of r.columns) if (c.star) out.push({ name: c.name, val: c.val });
  }
  return out;
}

/** An output column named by position (`ORDER BY 2`) or by its name. */
function outputRef(node: Node, outputs: readonly Output[]): Val | null {
  if ('A_Const' in node && node.A_Const.ival !== undefined) {
    return outputs[(node.A_Const.ival.ival ?? 0) - 1]?.val ?? unknownVal('a position beyond the select list');
  }
  if ('ColumnRef' in node && node.ColumnRef.fields?.length === 1) {
    const f = node.ColumnRef.fields[0];
    const name = f !== undefined && 'String' in f ? f.String.sval : undefined;
    const hits = outputs.filter((o) => o.name === name);
    if (hits.length === 1) return hits[0]?.val ?? null;
    if (hits.length > 1) return merge(hits.map((h) => h.val));
  }
  return null;
}

/** ORDER BY and DISTINCT ON: an output column first, else an expression of the input. */
function sortKey(e: ExprEnv, node: Node, outputs: readonly Output[], clause: FilterClause): void {
  const inner = 'SortBy' in node ? node.SortBy.node : node;
  if (inner === undefined) return;
  const out = outputRef(inner, outputs);
  if (out !== null) e.a.filter(out, clause, true);
  else filter(e, inner, clause);
  if ('SortBy' in node && node.SortBy.useOp !== undefined) filter(e, node, clause);
}

/** GROUP BY: an input column first, else an output column, else an expression. */
function groupKey(e: ExprEnv, node: Node, outputs: readonly Output[]): void {
  if ('GroupingSet' in node) {
    for (const c of node.GroupingSet.content ?? []) groupKey(e, c, outputs);
    return;
  }
  if ('List' in node) {
    for (const c of node.List.items ?? []) groupKey(e, c, outputs);
    return;
  }
  if ('ColumnRef' in node) {
    const v = value(e, node);
    const out = v.unknown !== null ? outputRef(node, outputs) : null;
    e.a.filter(out ?? v, 'group by', true);
    return;
  }
  const out = 'A_Const' in node ? outputRef(node, outputs) : null;
  if (out !== null) e.a.filter(out, 'group by', true);
  else e.a.filter(value(e, node), 'group by', true);
}
