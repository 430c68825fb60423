/**
 * What one SELECT of a parse tree does with the rows of its FROM, as a row transform cares: the
 * tables of its FROM (with the outer joins that may pad them with NULLs), and the forms after
 * which the rows the client gets are no longer the table's rows one by one (aggregates and
 * grouping, DISTINCT, LIMIT/OFFSET, window functions, set operations).
 */
import type { Node } from 'libpg-query';

/** The body of a SelectStmt node (set operation arms are bodies without the wrapper). */
export type SelectBody = Extract<Node, { SelectStmt: unknown }>['SelectStmt'];
export type RangeVarBody = Extract<Node, { RangeVar: unknown }>['RangeVar'];

export type RowForm =
  | 'aggregate' | 'DISTINCT' | 'LIMIT/OFFSET' | 'window function' | 'set operation' | 'outer join' | 'nested SELECT' | 'RETURNING'
  /** Forms outside any SELECT (other-reads.ts). */
  | 'write reading it' | 'COPY' | 'EXPLAIN ANALYZE';

/** A table named in a FROM, and whether an outer join may pad it with NULLs. */
export interface FromTable {
  readonly rv: RangeVarBody;
  readonly nullable: boolean;
}

/** The RangeVars of a FROM list, joins followed (subqueries and functions are not: they are SELECTs of their own). */
export function fromTables(from: readonly Node[] | undefined): FromTable[] {
  const out: FromTable[] = [];
  const visit = (n: Node | undefined, nullable: boolean): void => {
    if (n === undefined) return;
    if ('RangeVar' in n) out.push({ rv: n.RangeVar, nullable });
    else if ('JoinExpr' in n) {
      const t = n.JoinExpr.jointype;
      visit(n.JoinExpr.larg, nullable || t === 'JOIN_RIGHT' || t === 'JOIN_FULL');
      visit(n.JoinExpr.rarg, nullable || t === 'JOIN_LEFT' || t === 'JOIN_FULL');
    }
  };
  for (const n of from ?? []) visit(n, false);
  return out;
}

const AGGREGATE_FLAGS = ['agg_star', 'agg_distinct', 'agg_order', 'agg_filter', 'agg_within_group'] as const;

/**
 * Whether expressions call an aggregate (by its flags, or a name some aggregate has) or a window
 * function. Subqueries are SELECTs of their own and are not looked into.
 */
function calls(nodes: unknown, aggregates: ReadonlySet<string>): { aggregate: boolean; window: boolean } {
  const found = { aggregate: false, window: false };
  const walk = (n: unknown): void => {
    if (Array.isArray(n)) {
      for (const x of n) walk(x);
      return;
    }
    if (n === null || typeof n !== 'object') return;
    if ('SubLink' in n) return;
    const f = (n as { FuncCall?: Extract<Node, { FuncCall: unknown }>['FuncCall'] }).FuncCall;
    if (f !== undefined) {
      const name = f.funcname?.at(-1);
      // An aggregate called with OVER is a window function: it does not group the rows.
      if (f.over !== undefined) found.window = true;
      else if (AGGREGATE_FLAGS.some((k) => f[k] !== undefined && f[k] !== false) || (name !== undefined && 'String' in name && aggregates.has(name.String.sval ?? ''))) {
        found.aggregate = true;
      }
    }
    for (const v of Object.values(n)) walk(v);
  };
  walk(nodes);
  return found;
}

/** The forms of one SELECT (not of the SELECTs nested in it) that change which rows reach the client. */
export function selectForms(s: SelectBody, aggregates: ReadonlySet<string>): RowForm[] {
  const out: RowForm[] = [];
  if (s.op !== undefined && s.op !== 'SETOP_NONE') return ['set operation'];
  const c = calls([s.targetList, s.havingClause, s.sortClause], aggregates);
  if (c.aggregate || (s.groupClause?.length ?? 0) > 0 || s.havingClause !== undefined) out.push('aggregate');
  if (s.distinctClause !== undefined) out.push('DISTINCT');
  if (s.limitCount !== undefined || s.limitOffset !== undefined) out.push('LIMIT/OFFSET');
  if (c.window || (s.windowClause?.length ?? 0) > 0) out.push('window function');
  return out;
}

/** Every SELECT body in a tree, outermost first (set operation arms and nested subqueries included). */
export function selectBodies(node: unknown): SelectBody[] {
  const out: SelectBody[] = [];
  const walk = (n: unknown, isBody: boolean): void => {
    if (Array.isArray(n)) {
      for (const x of n) walk(x, false);
      return;
    }
    if (n === null || typeof n !== 'object') return;
    if (isBody) out.push(n as SelectBody);
    for (const [k, v] of Object.entries(n)) walk(v, k === 'SelectStmt' || ((k === 'larg' || k === 'rarg') && isBody));
  };
  walk(node, false);
  return out;
}
