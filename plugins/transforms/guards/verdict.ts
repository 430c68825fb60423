/**
 * Whether a statement may run under the guards in force for its session, from the sources the
 * SQL analysis found in it (plugins/sql/column-sources.ts):
 * - a guarded column may reach a result only as a plain output column, which the transform binds
 *   to through the RowDescription; any expression of it (a function argument, a cast, an
 *   aggregate, a whole-row reference, a set operation, a scalar subquery, a view's column…) would
 *   reach the client around the transform;
 * - its values may not go anywhere else (INSERT … SELECT, CREATE TABLE AS, SELECT INTO, COPY,
 *   UPDATE SET, CALL…): from there they would be read in clear;
 * - under `values` it may be compared as it is in WHERE, JOIN, GROUP BY, HAVING, ORDER BY and the
 *   like (`where email = $1`); an expression over it there could show it in an error message.
 *   Under `strict` it may not be compared, ordered or grouped by at all;
 * - a statement the analysis is not sure of is refused: it could read a guarded column, or the
 *   rows of a table a guarded row transform filters, unseen (a function that may read tables, say:
 *   its rows would reach the client unfiltered). How a statement the analysis is sure of reads
 *   such rows is judged where they are filtered (plugins/transforms/row-reads/).
 */
import { PgError, SqlState } from '../../../proxy/errors.js';
import type { ResultSources, StatementSources, TableColumn } from '../../sql/column-sources.js';
import type { FilterClause } from '../../sql/source-model.js';
import { columnKey, type GuardedColumn, type GuardedColumns, type GuardedRows } from './policy.js';
import type { GuardedHistories } from './history-guards.js';
import { inheritedFrom } from './child-guards.js';
import { descendantName } from './ancestor-guards.js';

/** Where `values` lets a guarded column be compared as it is. */
const COMPARED: ReadonlySet<FilterClause> = new Set(['where', 'join', 'group by', 'having', 'order by', 'distinct on', 'window', 'on conflict', 'merge']);

const HINT = 'A transform\'s guard is set with provenance.set_transform_guard; members of a role it exempts are not refused.';

function refusal(g: GuardedColumn, how: string): PgError {
  const of = g.inherited !== undefined ? `, of ${inheritedFrom(g.inherited.partition, g.inherited.parent)},`
    : g.descendant !== undefined ? `, inherited by ${descendantName(g.descendant.partition, g.descendant.label)},` : '';
  return new PgError(SqlState.InsufficientPrivilege, `column ${g.label}${of} is guarded by transform "${g.transform}" (guard ${g.guard}): ${how}`, 'ERROR',
    { hint: g.descendant === undefined ? HINT : `Bind the transform to ${g.descendant.ancestor}, the table clients read. ${HINT}` });
}

function guarded(columns: GuardedColumns, c: TableColumn): GuardedColumn | undefined {
  return columns.get(columnKey(c.oid, c.attnum))?.[0];
}

/** The refusal of one statement (and of the statement a PREPARE holds), or null when it may run. */
export function verdict(s: StatementSources, columns: GuardedColumns, rows: readonly GuardedRows[] = [], histories: GuardedHistories = new Map()): PgError | null {
  if (!s.certain) {
    const names = [...new Set([
      ...[...columns.values()].map((l) => `${l[0]!.label} (transform "${l[0]!.transform}")`),
      ...rows.map((r) => `the rows of ${r.label} (transform "${r.transform}")`),
    ])].join(', ');
    return new PgError(SqlState.InsufficientPrivilege,
      `the proxy cannot tell whether this statement reads around the guards on ${names}: ${s.reasons.join('; ')}`, 'ERROR', { hint: HINT });
  }
  const results = [...s.results, ...(s.cursor === undefined ? [] : [s.cursor.result])];
  const history = histories.size === 0 ? undefined : historyRead(results, s, histories);
  if (history !== undefined) {
    return new PgError(SqlState.InsufficientPrivilege,
      `the rows of ${history.label} are filtered by transform "${history.transform}" (guard ${history.guard}): its history keeps every row, hidden ones too, and is not read through the transform`,
      'ERROR', { hint: `Read ${history.label} itself, or as of a moment (SET provenance.as_of). ${HINT}` });
  }
  for (const r of results) {
    for (const [i, src] of r.columns.entries()) {
      if (src.kind === 'column') {
        const g = guarded(columns, src);
        if (g?.inherited !== undefined) return refusal(g, `it feeds output column "${r.names[i] ?? '?column?'}" read from the ${g.inherited.partition ? 'partition' : 'child'} directly, where the transform does not apply (it applies when ${g.inherited.parent} is read)`);
        if (g?.descendant !== undefined) return refusal(g, `it feeds output column "${r.names[i] ?? '?column?'}" read through ${g.descendant.ancestor}, where the transform does not apply (it applies when ${g.descendant.label} is read)`);
        continue;
      }
      for (const c of src.reads) {
        const g = guarded(columns, c);
        if (g !== undefined) return refusal(g, `it feeds output column "${r.names[i] ?? '?column?'}" through an expression, not as a plain column the transform applies to (a function, cast, aggregate, whole-row reference, set operation, subquery or view reads around it)`);
      }
    }
  }
  for (const f of s.flows) {
    const g = guarded(columns, f);
    if (g !== undefined) return refusal(g, `its values would be copied by ${f.into.toUpperCase()}, where the transform does not apply`);
  }
  for (const f of s.filters) {
    const g = guarded(columns, f);
    if (g === undefined) continue;
    if (g.guard === 'strict') return refusal(g, `it may not be used in ${f.clause.toUpperCase()} either`);
    if (!f.direct || !COMPARED.has(f.clause)) return refusal(g, `in ${f.clause.toUpperCase()} it may only be compared as it is, not through a function, cast or other expression`);
  }
  return s.prepare === undefined ? null : verdict(s.prepare.statement, columns, rows, histories);
}

/** The guarded rows whose history a statement reads anything of (a result, a predicate, a copy), if any. */
function historyRead(results: readonly ResultSources[], s: StatementSources, histories: GuardedHistories): GuardedRows | undefined {
  const touched: TableColumn[] = [...s.filters, ...s.flows];
  for (const r of results) for (const src of r.columns) touched.push(...(src.kind === 'column' ? [src] : src.reads));
  for (const c of touched) {
    const g = histories.get(c.oid);
    if (g !== undefined) return g;
  }
  return undefined;
}
