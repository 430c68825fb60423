/**
 * What an expression is made of (the table columns it reads, or why that cannot be told), and the
 * table columns a predicate, ordering or grouping key compares.
 */
import type { Node, SubLink, FuncCall, WindowDef, A_Expr } from 'libpg-query';
import { resolveColumnRef, rowField, type Ctes, type Scope } from './source-scope.js';
import { EMPTY, merge, names, unknownVal, type Analysis, type FilterClause, type Val } from './source-model.js';
import { selectOutputs } from './query-sources.js';

/** Where an expression stands: its scope, the CTEs in force, and the statement's state. */
export interface ExprEnv {
  readonly scope: Scope | null;
  readonly ctes: Ctes | null;
  readonly a: Analysis;
}

/** Nodes that only combine the values of their children. */
const COMBINING = new Set([
  'BoolExpr', 'NullTest', 'BooleanTest', 'CoalesceExpr', 'MinMaxExpr', 'A_ArrayExpr', 'RowExpr', 'CaseExpr', 'CaseWhen',
  'CollateClause', 'NamedArgExpr', 'List', 'A_Indirection', 'A_Indices', 'XmlExpr', 'XmlSerialize', 'GroupingFunc', 'ResTarget',
  'MultiAssignRef',
]);

/** Nodes without a value of a table in them. */
const CONSTANT = new Set(['A_Const', 'ParamRef', 'SQLValueFunction', 'SetToDefault', 'CurrentOfExpr', 'A_Star', 'String', 'Integer', 'Float', 'Boolean', 'TypeName']);

/** Comparison operators: their result shows no more of an operand than how it compares. */
const COMPARISONS = new Set(['=', '<>', '!=', '<', '>', '<=', '>=', '~~', '!~~', '~~*', '!~~*', '~', '!~', '~*', '!~*']);

const COMPARING_KINDS = new Set([
  'AEXPR_OP_ANY', 'AEXPR_OP_ALL', 'AEXPR_DISTINCT', 'AEXPR_NOT_DISTINCT', 'AEXPR_IN', 'AEXPR_LIKE', 'AEXPR_ILIKE', 'AEXPR_SIMILAR',
  'AEXPR_BETWEEN', 'AEXPR_NOT_BETWEEN', 'AEXPR_BETWEEN_SYM', 'AEXPR_NOT_BETWEEN_SYM',
]);

function kindOf(node: Node): string {
  return Object.keys(node)[0] ?? '';
}

function children(body: unknown): Node[] {
  const out: Node[] = [];
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(visit);
    else if (v !== null && typeof v === 'object') {
      const keys = Object.keys(v);
      // A node is an object of one key naming its type, with an object (its fields) as value.
      if (keys.length === 1 && /^[A-Z]/.test(keys[0] ?? '')) out.push(v as Node);
      else for (const k of keys) if (k !== 'typeName') visit((v as Record<string, unknown>)[k]);
    }
  };
  visit(body);
  return out;
}

function bodyOf(node: Node): unknown {
  return (node as Record<string, unknown>)[kindOf(node)];
}

/** BETWEEN is named by its keyword in the tree; the server runs >= and <= for it. */
const BETWEEN = new Set(['AEXPR_BETWEEN', 'AEXPR_NOT_BETWEEN', 'AEXPR_BETWEEN_SYM', 'AEXPR_NOT_BETWEEN_SYM']);

function exprOperators(e: ExprEnv, x: A_Expr): Val {
  if (BETWEEN.has(x.kind ?? '')) return merge(['>=', '<='].map((op) => operatorCheck(e, [{ String: { sval: op } }])));
  return operatorCheck(e, x.name);
}

function operatorCheck(e: ExprEnv, name: readonly Node[] | undefined): Val {
  const parts = names(name);
  if (parts.length === 0) return EMPTY;
  const problem = e.a.operatorProblem(parts);
  return problem === null ? EMPTY : unknownVal(problem);
}

/** What the value of `node` is made of. */
export function value(e: ExprEnv, node: Node | undefined): Val {
  if (node === undefined) return EMPTY;
  if ('ColumnRef' in node) return resolveColumnRef(e.scope, node.ColumnRef.fields ?? []);
  const kind = kindOf(node);
  if (CONSTANT.has(kind)) return EMPTY;
  if ('A_Expr' in node) return merge([exprOperators(e, node.A_Expr), ...children(node.A_Expr).map((c) => value(e, c))]);
  if ('TypeCast' in node) {
    const t = node.TypeCast.typeName;
    const problem = t === undefined ? null : e.a.typeProblem(names(t.names));
    return merge([value(e, node.TypeCast.arg), ...(problem === null ? [] : [unknownVal(problem)])]);
  }
  if ('FuncCall' in node) return call(e, node.FuncCall);
  if ('SubLink' in node) return sublink(e, node.SubLink, null);
  if ('SortBy' in node) return merge([value(e, node.SortBy.node), operatorCheck(e, node.SortBy.useOp)]);
  if ('A_Indirection' in node) {
    const { arg, indirection = [] } = node.A_Indirection;
    const [first, ...rest] = indirection;
    const field = arg !== undefined && 'ColumnRef' in arg && first !== undefined && 'String' in first
      ? rowField(e.scope, arg.ColumnRef.fields ?? [], first.String.sval ?? '')
      : null;
    if (field !== null) return rest.length === 0 ? field : merge([field, ...rest.map((x) => value(e, x))]);
  }
  if (COMBINING.has(kind)) return merge(children(bodyOf(node)).map((c) => value(e, c)));
  return unknownVal(`the expression form ${kind} is not understood`);
}

function call(e: ExprEnv, f: FuncCall): Val {
  const args = f.args ?? [];
  const problem = e.a.functionProblem(names(f.funcname), f.agg_star === true ? 0 : args.length);
  const vals = args.map((a) => value(e, a));
  for (const s of f.agg_order ?? []) vals.push(value(e, s));
  if (f.agg_filter !== undefined) vals.push(value(e, f.agg_filter));
  if (f.over !== undefined) windowKeys(e, f.over);
  if (problem !== null) vals.push(unknownVal(problem));
  return merge(vals);
}

/** PARTITION BY and ORDER BY of a window: keys it compares. */
export function windowKeys(e: ExprEnv, w: WindowDef): void {
  for (const p of w.partitionClause ?? []) filter(e, p, 'window');
  for (const o of w.orderClause ?? []) filter(e, o, 'window');
  if (w.startOffset !== undefined) e.a.filter(value(e, w.startOffset), 'window', false);
  if (w.endOffset !== undefined) e.a.filter(value(e, w.endOffset), 'window', false);
}

/**
 * A subquery in an expression. Its own predicates are recorded as it is analysed; its result
 * feeds the value (a scalar or ARRAY subquery) or is compared (IN, ANY, ALL; then `clause` says
 * where, when the sublink is a predicate).
 */
function sublink(e: ExprEnv, s: SubLink, clause: FilterClause | null): Val {
  const outputs = s.subselect === undefined ? [] : selectOutputs(e.a, s.subselect, e.scope, e.ctes);
  const type = s.subLinkType ?? 'EXPR_SUBLINK';
  if (type === 'EXISTS_SUBLINK') return EMPTY;
  const test = s.testexpr === undefined ? null : value(e, s.testexpr);
  const opProblem = operatorCheck(e, s.operName);
  if (type === 'EXPR_SUBLINK' || type === 'ARRAY_SUBLINK' || type === 'MULTIEXPR_SUBLINK' || type === 'CTE_SUBLINK' || clause === null) {
    return merge([...(test === null ? [] : [test]), ...outputs.map((o) => o.val), opProblem]);
  }
  if (test !== null) e.a.filter(test, clause, true);
  for (const o of outputs) e.a.filter(o.val, clause, true);
  if (opProblem.unknown !== null) e.a.uncertain(opProblem.unknown);
  return EMPTY;
}

/** Records the table columns a predicate or a key compares (`direct` where compared as they are). */
export function filter(e: ExprEnv, node: Node | undefined, clause: FilterClause): void {
  if (node === undefined) return;
  if ('BoolExpr' in node) {
    for (const a of node.BoolExpr.args ?? []) filter(e, a, clause);
    return;
  }
  if ('SortBy' in node) {
    filter(e, node.SortBy.node, clause);
    const op = operatorCheck(e, node.SortBy.useOp);
    if (op.unknown !== null) e.a.uncertain(op.unknown);
    return;
  }
  if ('A_Expr' in node && comparing(node.A_Expr)) {
    const op = exprOperators(e, node.A_Expr);
    if (op.unknown !== null) e.a.uncertain(op.unknown);
    for (const operand of children(node.A_Expr)) operandUse(e, operand, clause);
    return;
  }
  if ('NullTest' in node) return operandUse(e, node.NullTest.arg, clause);
  if ('BooleanTest' in node) return operandUse(e, node.BooleanTest.arg, clause);
  if ('SubLink' in node) {
    e.a.filter(sublink(e, node.SubLink, clause), clause, true);
    return;
  }
  e.a.filter(value(e, node), clause, true);
}

function comparing(x: A_Expr): boolean {
  if (x.kind === 'AEXPR_OP') return COMPARISONS.has(names(x.name).at(-1) ?? '');
  return COMPARING_KINDS.has(x.kind ?? '');
}

function operandUse(e: ExprEnv, operand: Node | undefined, clause: FilterClause): void {
  if (operand === undefined) return;
  if ('List' in operand) {
    for (const item of operand.List.items ?? []) operandUse(e, item, clause);
    return;
  }
  if ('SubLink' in operand) {
    e.a.filter(sublink(e, operand.SubLink, clause), clause, true);
    return;
  }
  e.a.filter(value(e, operand), clause, true);
}

/** The name the server gives an output column written without AS (FigureColname). */
export function outputName(node: Node | undefined): string {
  if (node === undefined) return '?column?';
  if ('ColumnRef' in node) {
    const last = node.ColumnRef.fields?.at(-1);
    return last !== undefined && 'String' in last ? last.String.sval ?? '?column?' : '?column?';
  }
  if ('FuncCall' in node) return names(node.FuncCall.funcname).at(-1) ?? '?column?';
  if ('TypeCast' in node) {
    const inner = outputName(node.TypeCast.arg);
    return inner !== '?column?' ? inner : names(node.TypeCast.typeName?.names).at(-1) ?? '?column?';
  }
  if ('A_Indirection' in node) {
    const last = node.A_Indirection.indirection?.at(-1);
    return last !== undefined && 'String' in last ? last.String.sval ?? '?column?' : outputName(node.A_Indirection.arg);
  }
  if ('CaseExpr' in node) return 'case';
  if ('CoalesceExpr' in node) return 'coalesce';
  if ('SubLink' in node) {
    if (node.SubLink.subLinkType === 'EXISTS_SUBLINK') return 'exists';
    if (node.SubLink.subLinkType === 'ARRAY_SUBLINK') return 'array';
    return '?column?';
  }
  if ('A_ArrayExpr' in node) return 'array';
  if ('RowExpr' in node) return 'row';
  return '?column?';
}
