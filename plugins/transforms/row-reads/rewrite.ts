/**
 * Rewrites a statement so that each row transform sees the columns it reads: a SELECT whose rows
 * reach the client from a table with a row transform (directly in its FROM, or through subqueries
 * and CTEs there) gets the columns it does not select as extra output columns, named with the
 * marker (extra-columns.ts), spliced into the text after the last output column of each SELECT
 * on the way (so ordinal references such as ORDER BY 1 keep their meaning; see carry.ts). The text
 * is otherwise left as the client wrote it; the result is parsed again and must be the same tree
 * with those columns appended, or it is not used.
 *
 * Only a SELECT whose rows are its FROM's rows one by one is rewritten: with an aggregate, GROUP
 * BY, DISTINCT or a set operation another column would change the result (or be an error). Those,
 * LIMIT/OFFSET, window functions and outer joins (the transform sees rows, but not the ones a
 * filter on the server would have left), and tables read in any other SELECT of the statement
 * (a predicate's subquery, INSERT … SELECT…) are reported as forms the transform cannot be applied
 * faithfully under; a table whose rows reach the client but whose columns cannot be carried out
 * (a view, a recursive CTE, a name the proxy cannot resolve, a text it cannot splice) as unread.
 */
import type { Node } from 'libpg-query';
import type { SqlAnalyser } from '../../sql/analyser.js';
import { carryBody, type CarryEnv, type Edit } from './carry.js';
import { extraName, nestedName } from './extra-columns.js';
import type { NamePath } from './relation-names.js';
import { tableRef, type ReadTable, type ReadTables } from './read-tables.js';
import { fromTables, selectBodies, selectForms, type RangeVarBody, type RowForm, type SelectBody } from './select-forms.js';
import { withoutLocations, type Tokens } from './select-text.js';
import { otherReads } from './other-reads.js';

/** A table with a row transform read under a form that keeps the transform from being applied faithfully. */
export interface Unfaithful {
  readonly table: ReadTable;
  readonly form: RowForm | 'unread columns';
  /** For unread columns: why they could not be fetched. */
  readonly why?: string;
}

export interface ReadsRewrite {
  /** The text to run: the client's, or with extra columns. */
  readonly text: string;
  /** How many extra columns its result holds. */
  readonly added: number;
  readonly unfaithful: readonly Unfaithful[];
}

/** The tables a RangeVar may be (a name of a CTE anywhere in the statement counts as the CTE). */
function tablesOf(rv: RangeVarBody, tables: ReadTables, ctes: ReadonlySet<string>, path: NamePath): readonly ReadTable[] {
  const name = rv.relname ?? '';
  if (rv.schemaname === undefined && ctes.has(name)) return [];
  const r = tableRef(tables, rv.schemaname, name, path);
  return r === null ? [] : r.kind === 'table' ? [r.table] : r.tables;
}

function cteNames(node: unknown): Set<string> {
  const out = new Set<string>();
  const walk = (n: unknown): void => {
    if (Array.isArray(n)) return n.forEach(walk);
    if (n === null || typeof n !== 'object') return;
    const c = (n as { CommonTableExpr?: { ctename?: string } }).CommonTableExpr;
    if (c?.ctename !== undefined) out.add(c.ctename);
    Object.values(n).forEach(walk);
  };
  walk(node);
  return out;
}

/** Statements that read rows (others, such as CREATE VIEW, only name tables). */
const READS_ROWS = new Set([
  'SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt', 'CreateTableAsStmt', 'CopyStmt', 'DeclareCursorStmt', 'PrepareStmt',
]);

/** The SELECT whose rows a statement returns (a cursor's, a prepared statement's), if any. */
function outputSelect(stmt: Node): SelectBody | null {
  if ('SelectStmt' in stmt) return stmt.SelectStmt.intoClause === undefined ? stmt.SelectStmt : null;
  const q = 'DeclareCursorStmt' in stmt ? stmt.DeclareCursorStmt.query : 'PrepareStmt' in stmt ? stmt.PrepareStmt.query : undefined;
  return q !== undefined && 'SelectStmt' in q ? q.SelectStmt : null;
}

/**
 * The statement as it should run for the row transforms of `tables`, and the forms under which
 * they cannot be applied faithfully. `aggregates` are the names of every aggregate and window
 * function of the database (a call of one of those names counts as an aggregate); `path` how the
 * session resolves bare names; `standsFor` recognises subqueries that stand for a table.
 */
export function rewriteForReads(
  text: string, sql: SqlAnalyser, tables: ReadTables, aggregates: ReadonlySet<string>, path: NamePath, standsFor?: CarryEnv['standsFor'],
): ReadsRewrite {
  const parsed = sql.analyse(text);
  if (!parsed.ok) return { text, added: 0, unfaithful: [] };
  const unfaithful: Unfaithful[] = [];
  const note = (t: ReadTable, form: Unfaithful['form'], why?: string): void => {
    if (!unfaithful.some((u) => u.table === t && u.form === form)) unfaithful.push({ table: t, form, ...(why === undefined ? {} : { why }) });
  };
  let tokens: Tokens | undefined;
  let top = 0;
  let nested = 0;
  const edits: Edit[] = [];
  let added = 0;
  for (const [i, reading] of parsed.readings.entries()) {
    for (const stmt of reading) {
      const ctes = cteNames(stmt);
      const out = outputSelect(stmt);
      const readsRows = READS_ROWS.has(Object.keys(stmt)[0] ?? '');
      // RETURNING hands back the rows a statement wrote, which a row transform may hide: refused
      // here, before the write runs, rather than at its result.
      const dml = Object.values(stmt)[0] as { relation?: RangeVarBody; returningClause?: unknown } | undefined;
      if (dml?.relation !== undefined && dml.returningClause !== undefined && 'relation' in dml) {
        for (const t of tablesOf(dml.relation, tables, ctes, path)) note(t, 'RETURNING');
      }
      for (const r of otherReads(stmt)) for (const t of tablesOf(r.rv, tables, ctes, path)) note(t, r.form);
      const env: CarryEnv = {
        tables, path, aggregates,
        tokens: () => (tokens ??= sql.tokens(text)),
        name: (isTop) => (isTop ? extraName(++top) : nestedName(++nested)),
        // Under a second reading (see SqlAnalyser) the splice points may not be where the server has them: its edits are not made.
        edits: i === 0 ? edits : [],
        carried: new Set(),
        unread: (t, why) => note(t, 'unread columns', why),
        note: (t, form) => note(t, form),
        ...(standsFor === undefined ? {} : { standsFor }),
      };
      if (out !== null) {
        const carried = carryBody(env, out, null, true);
        if (i === 0) added += carried.output;
        // Both sides of a self-join carry the same table's columns: a result cannot tell whose row a field is.
        for (const t of carried.tables.filter((t, k) => carried.tables.indexOf(t) !== k)) {
          note(t, 'unread columns', 'the table is read more than once in the statement (a self-join), and a result cannot tell its rows apart');
        }
      }
      for (const s of selectBodies(stmt)) {
        const forms = selectForms(s, aggregates);
        // Rows read anywhere but on the way to the statement's result reach the client (or a
        // table) through something else: a predicate's subquery, INSERT … SELECT, CREATE TABLE AS.
        if (readsRows && !env.carried.has(s)) forms.push('nested SELECT');
        const mine = fromTables(s.fromClause);
        // The forms of this SELECT apply to every table it reads: its FROM, its set operation's
        // arms, and the SELECTs nested in them.
        for (const f of [...mine, ...selectBodies({ SelectStmt: s }).slice(1).flatMap((b) => fromTables(b.fromClause))]) {
          for (const t of tablesOf(f.rv, tables, ctes, path)) {
            for (const form of forms) note(t, form);
            if (f.nullable && mine.includes(f)) note(t, 'outer join');
          }
        }
      }
    }
  }
  if (parsed.readings.length > 1) {
    for (const e of edits) for (const t of e.tables) note(t, 'unread columns', 'the text reads differently with standard_conforming_strings off');
    return { text, added: 0, unfaithful };
  }
  if (edits.length === 0) return { text, added: 0, unfaithful };
  let bytes = Buffer.from(text, 'utf8');
  for (const e of [...edits].sort((a, b) => b.at - a.at)) {
    bytes = Buffer.concat([bytes.subarray(0, e.at), Buffer.from(e.insert, 'utf8'), bytes.subarray(e.at)]);
  }
  const rewritten = bytes.toString('utf8');
  const again = sql.analyse(rewritten);
  const same = again.ok && again.readings.length === 1 && JSON.stringify(withoutLocations(again.readings[0])) === JSON.stringify(withoutLocations(parsed.readings[0]));
  if (!same) {
    for (const e of edits) for (const t of e.tables) note(t, 'unread columns', 'the rewritten statement would not mean the same');
    return { text, added: 0, unfaithful };
  }
  return { text: rewritten, added, unfaithful };
}
