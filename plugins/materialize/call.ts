/**
 * The statements the materialize plugin answers, read from PostgreSQL's parse tree: a statement
 * that is exactly a call of `provenance.materialize(…)` (`SELECT provenance.materialize(…)`, its
 * arguments constants or parameters, by position or by name), and `SHOW provenance.last_read`.
 * Anything else that calls the function goes to the server, whose function says it runs here.
 */
import type { Node } from '../sql/analyser.js';

export const LAST_READ = 'provenance.last_read';

/** An argument: a constant (NULL: null) or the value of parameter $n. */
export type CallArg = { readonly kind: 'const'; readonly value: string | null } | { readonly kind: 'param'; readonly n: number };

export interface MaterializeCall {
  readonly target: CallArg;
  readonly asOf: CallArg | null;
  readonly asUser: CallArg | null;
}

const NAMES = ['target', 'as_of', 'as_user'] as const;

type Json = Record<string, unknown>;

const obj = (v: unknown): Json | null => (typeof v === 'object' && v !== null && !Array.isArray(v) ? v as Json : null);

function argOf(node: unknown): CallArg | null {
  const n = obj(node);
  if (n === null) return null;
  const cast = obj(n['TypeCast']);
  if (cast !== null) return argOf(cast['arg']);
  const param = obj(n['ParamRef']);
  if (param !== null) return typeof param['number'] === 'number' ? { kind: 'param', n: param['number'] } : null;
  const c = obj(n['A_Const']);
  if (c === null) return null;
  if (c['isnull'] === true) return { kind: 'const', value: null };
  const s = obj(c['sval'])?.['sval'];
  if (typeof s === 'string') return { kind: 'const', value: s };
  return obj(c['sval']) !== null ? { kind: 'const', value: '' } : null;
}

const UNUSED_CLAUSES = ['fromClause', 'whereClause', 'groupClause', 'havingClause', 'windowClause', 'sortClause', 'limitCount',
  'limitOffset', 'lockingClause', 'withClause', 'distinctClause', 'intoClause', 'valuesClause', 'larg'];

/** The call, when the statement is exactly one; null otherwise (an error-free parse is assumed). */
export function materializeCall(reading: readonly Node[]): MaterializeCall | null {
  if (reading.length !== 1) return null;
  const sel = obj(obj(reading[0])?.['SelectStmt']);
  if (sel === null || UNUSED_CLAUSES.some((k) => sel[k] !== undefined)) return null;
  const targets = sel['targetList'];
  if (!Array.isArray(targets) || targets.length !== 1) return null;
  const call = obj(obj(obj(obj(targets[0])?.['ResTarget'])?.['val'])?.['FuncCall']);
  if (call === null) return null;
  const name = (Array.isArray(call['funcname']) ? call['funcname'] : []).map((f) => obj(obj(f)?.['String'])?.['sval']);
  if (name.length !== 2 || name[0] !== 'provenance' || name[1] !== 'materialize') return null;
  if (call['agg_star'] === true || call['agg_distinct'] === true || call['over'] !== undefined || call['agg_filter'] !== undefined) return null;
  const args = Array.isArray(call['args']) ? call['args'] : [];
  const given: (CallArg | null)[] = [null, null, null];
  let named = false;
  for (const [i, a] of args.entries()) {
    const na = obj(obj(a)?.['NamedArgExpr']);
    if (na !== null) named = true;
    else if (named) return null;
    const at = na === null ? i : NAMES.indexOf(na['name'] as (typeof NAMES)[number]);
    if (at < 0 || at > 2 || given[at] !== null) return null;
    const v = argOf(na === null ? a : na['arg']);
    if (v === null) return null;
    given[at] = v;
  }
  const [target, asOf, asUser] = given;
  if (target === null || target === undefined) return null;
  return { target, asOf: asOf ?? null, asUser: asUser ?? null };
}

/** Whether the statement is `SHOW provenance.last_read`. */
export function isShowLastRead(reading: readonly Node[]): boolean {
  if (reading.length !== 1) return false;
  const show = obj(obj(reading[0])?.['VariableShowStmt']);
  return typeof show?.['name'] === 'string' && show['name'].toLowerCase() === LAST_READ;
}
