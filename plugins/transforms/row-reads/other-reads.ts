/**
 * Where a statement reads a table's rows outside any SELECT, so that no filter can be carried to
 * them: the FROM of UPDATE and the USING of DELETE and MERGE (the rows a row transform would hide
 * decide what is written, and the command tag counts them), COPY of the table itself to a file or
 * a program (COPY … TO STDOUT of a table with transforms is refused whatever the guard, see
 * copy-out.ts), and EXPLAIN ANALYZE (its row counts count the hidden rows). Subqueries there are
 * SELECTs of their own, judged as nested ones.
 */
import type { Node } from 'libpg-query';
import { fromTables, type RangeVarBody, type RowForm } from './select-forms.js';

export interface OtherRead {
  readonly rv: RangeVarBody;
  readonly form: RowForm;
}

function rangeVars(node: unknown, out: RangeVarBody[] = []): RangeVarBody[] {
  if (Array.isArray(node)) {
    for (const n of node) rangeVars(n, out);
    return out;
  }
  if (node === null || typeof node !== 'object') return out;
  const rv = (node as { RangeVar?: RangeVarBody }).RangeVar;
  if (rv !== undefined) out.push(rv);
  for (const v of Object.values(node)) rangeVars(v, out);
  return out;
}

function analyze(options: readonly Node[] | undefined): boolean {
  return (options ?? []).some((o) => {
    if (!('DefElem' in o) || o.DefElem.defname !== 'analyze') return false;
    const arg = o.DefElem.arg;
    if (arg === undefined) return true;
    if ('Boolean' in arg) return arg.Boolean.boolval === true;
    if ('Integer' in arg) return arg.Integer.ival !== undefined && arg.Integer.ival !== 0;
    return !('String' in arg) || !['false', 'off', 'no', '0'].includes((arg.String.sval ?? '').toLowerCase());
  });
}

export function otherReads(stmt: Node): OtherRead[] {
  const of = (items: readonly Node[] | undefined, form: RowForm): OtherRead[] => fromTables(items).map((f) => ({ rv: f.rv, form }));
  if ('UpdateStmt' in stmt) return of(stmt.UpdateStmt.fromClause, 'write reading it');
  if ('DeleteStmt' in stmt) return of(stmt.DeleteStmt.usingClause, 'write reading it');
  if ('MergeStmt' in stmt) return of(stmt.MergeStmt.sourceRelation === undefined ? [] : [stmt.MergeStmt.sourceRelation], 'write reading it');
  if ('CopyStmt' in stmt) {
    const c = stmt.CopyStmt;
    return c.relation !== undefined && c.is_from !== true ? [{ rv: c.relation, form: 'COPY' }] : [];
  }
  if ('ExplainStmt' in stmt && analyze(stmt.ExplainStmt.options)) return rangeVars(stmt.ExplainStmt.query).map((rv) => ({ rv, form: 'EXPLAIN ANALYZE' }));
  return [];
}
