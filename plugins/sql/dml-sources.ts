/**
 * INSERT, UPDATE, DELETE and MERGE: where the values they write come from (flows), what they
 * compare, and what RETURNING gives back (their result).
 */
import type { Node, RangeVar, ReturningClause, WithClause } from 'libpg-query';
import { filter, value, type ExprEnv } from './expression-sources.js';
import { fromItem, rangeVar } from './from-sources.js';
import { selectOutputs, targetList, withClause, type Output } from './query-sources.js';
import type { Ctes, Rte, Scope } from './source-scope.js';
import type { Analysis, FlowTarget } from './source-model.js';

function target(a: Analysis, rv: RangeVar | undefined): Rte[] {
  return rv === undefined ? [] : [rangeVar(a, rv, null)];
}

function returning(e: ExprEnv, r: ReturningClause | undefined): Output[] {
  return r === undefined ? [] : targetList(e, r.exprs ?? []);
}

/** SET targets and INSERT … VALUES of MERGE: every value written flows into the table. */
function assignments(e: ExprEnv, list: readonly Node[] | undefined, into: FlowTarget): void {
  for (const item of list ?? []) e.a.flow(value(e, 'ResTarget' in item ? item.ResTarget.val : item), into);
}

/** The scope of UPDATE, DELETE and MERGE: the target, then FROM / USING / the source. */
function targetEnv(a: Analysis, rv: RangeVar | undefined, items: readonly Node[], w: WithClause | undefined, outer: Scope | null, ctesIn: Ctes | null): ExprEnv {
  const ctes = withClause(a, w, outer, ctesIn);
  const scope: Scope = { rtes: target(a, rv), parent: outer };
  for (const item of items) scope.rtes.push(...fromItem(a, item, scope.rtes, outer, ctes));
  return { scope, ctes, a };
}

/** The RETURNING outputs of a data-modifying statement, its flows and predicates recorded. */
export function dmlOutputs(a: Analysis, node: Node, outer: Scope | null, ctesIn: Ctes | null): Output[] {
  if ('InsertStmt' in node) {
    const s = node.InsertStmt;
    const ctes = withClause(a, s.withClause, outer, ctesIn);
    if (s.selectStmt !== undefined) for (const o of selectOutputs(a, s.selectStmt, outer, ctes)) a.flow(o.val, 'insert');
    const rtes = target(a, s.relation);
    const scope: Scope = { rtes, parent: outer };
    const c = s.onConflictClause;
    if (c !== undefined) {
      // EXCLUDED is the row proposed for insertion, with the target's columns.
      const excluded = rtes.map((r) => ({ ...r, refname: 'excluded', schema: null }));
      const ce: ExprEnv = { scope: { rtes: [...rtes, ...excluded], parent: outer }, ctes, a };
      assignments(ce, c.targetList, 'update');
      filter(ce, c.whereClause, 'on conflict');
    }
    return returning({ scope, ctes, a }, s.returningClause);
  }
  if ('UpdateStmt' in node) {
    const s = node.UpdateStmt;
    const e = targetEnv(a, s.relation, s.fromClause ?? [], s.withClause, outer, ctesIn);
    filter(e, s.whereClause, 'where');
    assignments(e, s.targetList, 'update');
    return returning(e, s.returningClause);
  }
  if ('DeleteStmt' in node) {
    const s = node.DeleteStmt;
    const e = targetEnv(a, s.relation, s.usingClause ?? [], s.withClause, outer, ctesIn);
    filter(e, s.whereClause, 'where');
    return returning(e, s.returningClause);
  }
  if ('MergeStmt' in node) {
    const s = node.MergeStmt;
    const e = targetEnv(a, s.relation, s.sourceRelation === undefined ? [] : [s.sourceRelation], s.withClause, outer, ctesIn);
    filter(e, s.joinCondition, 'merge');
    for (const w of s.mergeWhenClauses ?? []) {
      if (!('MergeWhenClause' in w)) continue;
      filter(e, w.MergeWhenClause.condition, 'merge');
      assignments(e, w.MergeWhenClause.targetList, 'merge');
      assignments(e, w.MergeWhenClause.values, 'merge');
    }
    return returning(e, s.returningClause);
  }
  return [];
}
