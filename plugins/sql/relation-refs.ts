/**
 * The relations and functions a parsed statement names, with where each name stands in the text:
 * what a rewrite that reads tables otherwise needs. Names of the statement's own CTEs are left
 * out where they are visible as the server sees them (a CTE is visible to the CTEs after it in
 * its WITH, to itself only under RECURSIVE, and to the query the WITH belongs to, subqueries
 * included), so `WITH t AS (SELECT * FROM t) …` still names the table t inside the CTE.
 */
import type { Node } from './analyser.js';

/** A relation named in FROM (or anywhere else a RangeVar stands). */
export interface RelationRef {
  readonly schema: string | null;
  readonly name: string;
  /** Byte offset of the name's first character in the text (its schema's, when qualified). */
  readonly location: number;
  /** Whether the reference has its own alias (`t AS x`, `t x(a, b)`). */
  readonly aliased: boolean;
  /** False under ONLY. */
  readonly inherited: boolean;
  /** Whether it is sampled (TABLESAMPLE), where only a table may stand. */
  readonly sampled: boolean;
}

/** A function called by name. */
export interface FunctionRef {
  readonly schema: string | null;
  readonly name: string;
}

export interface StatementRefs {
  readonly relations: readonly RelationRef[];
  readonly functions: readonly FunctionRef[];
}

type Json = unknown;

interface Walk {
  readonly relations: RelationRef[];
  readonly functions: FunctionRef[];
}

function strings(list: Json): string[] {
  if (!Array.isArray(list)) return [];
  return list.flatMap((n: Json) => {
    const s = (n as { String?: { sval?: string } }).String?.sval;
    return s === undefined ? [] : [s];
  });
}

function visit(node: Json, ctes: ReadonlySet<string>, w: Walk, sampled = false): void {
  if (Array.isArray(node)) {
    for (const item of node) visit(item, ctes, w);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const obj = node as Record<string, Json>;
  if ('RangeVar' in obj) {
    const rv = obj['RangeVar'] as { schemaname?: string; relname?: string; alias?: unknown; inh?: boolean; location?: number };
    const schema = rv.schemaname ?? null;
    const name = rv.relname ?? '';
    if (schema !== null || !ctes.has(name)) {
      w.relations.push({ schema, name, location: rv.location ?? -1, aliased: rv.alias !== undefined, inherited: rv.inh === true, sampled });
    }
    return;
  }
  if ('RangeTableSample' in obj) {
    const s = obj['RangeTableSample'] as Record<string, Json>;
    for (const [k, v] of Object.entries(s)) visit(v, ctes, w, k === 'relation');
    return;
  }
  if ('FuncCall' in obj) {
    const names = strings((obj['FuncCall'] as { funcname?: Json }).funcname);
    if (names.length > 0) w.functions.push({ schema: names.length > 1 ? names[names.length - 2]! : null, name: names[names.length - 1]! });
  }
  const withClause = obj['withClause'] as { ctes?: Json[]; recursive?: boolean } | undefined;
  if (withClause !== undefined) {
    const list = (withClause.ctes ?? []).flatMap((c) => {
      const cte = (c as { CommonTableExpr?: { ctename?: string; ctequery?: Json } }).CommonTableExpr;
      return cte === undefined ? [] : [cte];
    });
    const all = new Set([...ctes, ...list.map((c) => c.ctename ?? '')]);
    let seen = new Set(ctes);
    for (const cte of list) {
      visit(cte.ctequery, withClause.recursive === true ? all : seen, w);
      seen = new Set([...seen, cte.ctename ?? '']);
    }
    for (const [k, v] of Object.entries(obj)) if (k !== 'withClause') visit(v, all, w);
    return;
  }
  for (const v of Object.values(obj)) visit(v, ctes, w);
}

/** Every relation and function a statement names, in the order they stand in its tree. */
export function statementRefs(stmt: Node): StatementRefs {
  const w: Walk = { relations: [], functions: [] };
  visit(stmt, new Set(), w);
  return w;
}
