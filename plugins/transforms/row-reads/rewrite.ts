/**
 * Rewrites a statement so that each row transform sees the columns it reads: a SELECT that reads a
 * table with a row transform gets the columns it does not select as extra output columns, named
 * with the marker (extra-columns.ts), spliced into the text after its last output column (so
 * ordinal references such as ORDER BY 1 keep their meaning). The text is otherwise left as the
 * client wrote it; the result is parsed again and must be the same tree with those columns
 * appended, or it is not used.
 *
 * Only the SELECT a statement returns is rewritten, and only when its rows are the FROM's rows one
 * by one: with an aggregate, GROUP BY, DISTINCT or a set operation another column would change
 * the result (or be an error). Those, LIMIT/OFFSET, window functions and outer joins (the
 * transform sees rows, but not the ones a filter on the server would have left), and tables read
 * in any other SELECT of the statement are reported as forms the transform cannot be applied
 * faithfully under.
 */
import type { Node } from 'libpg-query';
import type { SqlAnalyser } from '../../sql/analyser.js';
import { extraName, EXTRA_PREFIX } from './extra-columns.js';
import type { ReadTable, ReadTables } from './read-tables.js';
import { fromTables, selectBodies, selectForms, type RangeVarBody, type RowForm, type SelectBody } from './select-forms.js';

/** A table with a row transform read under a form that keeps the transform from being applied faithfully. */
export interface Unfaithful {
  readonly table: ReadTable;
  readonly form: RowForm | 'unread columns';
}

export interface ReadsRewrite {
  /** The text to run: the client's, or with extra columns. */
  readonly text: string;
  /** How many extra columns it holds. */
  readonly added: number;
  readonly unfaithful: readonly Unfaithful[];
}

interface Edit {
  readonly at: number;
  readonly insert: string;
}

const quote = (name: string): string => `"${name.replaceAll('"', '""')}"`;

/** The table a RangeVar names, when it surely is that one (a CTE of the name, or a name other schemas share, make it unsure). */
function tableOf(rv: RangeVarBody, tables: ReadTables, ctes: ReadonlySet<string>): ReadTable | null {
  const name = rv.relname ?? '';
  const candidates = tables.get(name);
  if (!candidates) return null;
  if (rv.schemaname === undefined) {
    if (ctes.has(name) || candidates.length !== 1 || candidates[0]!.table.sharedName !== false) return null;
    return candidates[0]!;
  }
  return candidates.find((c) => c.table.schema === rv.schemaname) ?? null;
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

/** The names a RangeVar's columns are referred to by in its SELECT: its alias, or its (schema-qualified) name. */
function refOf(rv: RangeVarBody): string[] {
  if (rv.alias?.aliasname !== undefined) return [rv.alias.aliasname];
  return rv.schemaname === undefined ? [rv.relname ?? ''] : [rv.schemaname, rv.relname ?? ''];
}

/** Columns of a RangeVar the select list already holds as plain references (`*`, `t.*`, `t.c`, or `c` when it is the only table). */
function selected(s: SelectBody, rv: RangeVarBody, only: boolean): Set<string> | 'all' {
  const ref = refOf(rv);
  const out = new Set<string>();
  for (const t of s.targetList ?? []) {
    if (!('ResTarget' in t)) continue;
    const v = t.ResTarget.val;
    if (v === undefined || !('ColumnRef' in v)) continue;
    const parts = (v.ColumnRef.fields ?? []).map((f) => ('String' in f ? f.String.sval ?? '' : 'A_Star' in f ? '*' : '\u0000'));
    const last = parts.at(-1)!;
    const qualifier = parts.slice(0, -1);
    const mine = qualifier.length === 0 ? only || last === '*' : qualifier.length === ref.length && qualifier.every((p, i) => p === ref[i]);
    if (!mine) continue;
    if (last === '*') return 'all';
    out.add(last);
  }
  return out;
}

/** Where the select list of `s` ends in the text (UTF-8 byte offset), found with the server's tokens. */
function selectListEnd(s: SelectBody, tokens: ReturnType<SqlAnalyser['tokens']>): number | null {
  const last = s.targetList?.at(-1);
  if (tokens === null || last === undefined || !('ResTarget' in last) || last.ResTarget.location === undefined) return null;
  const from = last.ResTarget.location;
  let depth = 0;
  let prev: { end: number; text: string } | null = null;
  for (const t of tokens) {
    if (t.start < from) continue;
    const word = t.text.toLowerCase();
    if (t.text === '(' || t.text === '[') depth++;
    else if (t.text === ')' || t.text === ']') {
      if (depth === 0) return null;
      depth--;
    } else if (depth === 0 && t.keyword && word === 'from' && prev?.text.toLowerCase() !== 'distinct') {
      return prev === null ? null : prev.end;
    }
    prev = t;
  }
  return null;
}

function withoutLocations(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutLocations);
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'location' || k === 'stmt_location' || k === 'stmt_len') continue;
    if (k === 'targetList' && Array.isArray(v)) {
      out[k] = withoutLocations(v.filter((t: { ResTarget?: { name?: string } }) => !(t.ResTarget?.name ?? '').startsWith(EXTRA_PREFIX)));
      continue;
    }
    out[k] = withoutLocations(v);
  }
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
 * function of the database (a call of one of those names counts as an aggregate).
 */
export function rewriteForReads(text: string, sql: SqlAnalyser, tables: ReadTables, aggregates: ReadonlySet<string>): ReadsRewrite {
  const unchanged = (unfaithful: Unfaithful[]): ReadsRewrite => ({ text, added: 0, unfaithful });
  const parsed = sql.analyse(text);
  if (!parsed.ok) return unchanged([]);
  const unfaithful: Unfaithful[] = [];
  const note = (t: ReadTable, form: Unfaithful['form']): void => {
    if (!unfaithful.some((u) => u.table === t && u.form === form)) unfaithful.push({ table: t, form });
  };
  const edits: Edit[] = [];
  let added = 0;
  let tokens: ReturnType<SqlAnalyser['tokens']> | undefined;
  // Under a second reading (see SqlAnalyser) the splice points may not be where the server has them.
  const rewritable = parsed.readings.length === 1;
  for (const reading of parsed.readings) {
    for (const stmt of reading) {
      const ctes = cteNames(stmt);
      const top = outputSelect(stmt);
      const readsRows = READS_ROWS.has(Object.keys(stmt)[0] ?? '');
      // RETURNING hands back the rows a statement wrote, which a row transform may hide: refused
      // here, before the write runs, rather than at its result.
      const dml = Object.values(stmt)[0] as { relation?: RangeVarBody; returningClause?: unknown } | undefined;
      if (dml?.relation !== undefined && dml.returningClause !== undefined && 'relation' in dml) {
        const t = tableOf(dml.relation, tables, ctes);
        if (t !== null) note(t, 'RETURNING');
      }
      for (const s of selectBodies(stmt)) {
        const forms = selectForms(s, aggregates);
        // Rows read anywhere but in the FROM of the SELECT a statement returns reach the client
        // (or a table) through something else: a subquery, a CTE, INSERT … SELECT, CREATE TABLE AS.
        if (readsRows && s !== top) forms.push('nested SELECT');
        const mine = fromTables(s.fromClause);
        // The forms of this SELECT apply to every table it reads: its FROM, its set operation's
        // arms, and the SELECTs nested in them.
        for (const f of [...mine, ...selectBodies({ SelectStmt: s }).slice(1).flatMap((b) => fromTables(b.fromClause))]) {
          const t = tableOf(f.rv, tables, ctes);
          if (t === null) continue;
          for (const form of forms) note(t, form);
          if (f.nullable && mine.includes(f)) note(t, 'outer join');
        }
        if (s !== top || !rewritable || forms.includes('aggregate') || forms.includes('DISTINCT') || forms.includes('set operation')) continue;
        let insert = '';
        for (const f of mine) {
          const t = tableOf(f.rv, tables, ctes);
          if (t === null) continue;
          if ((f.rv.alias?.colnames?.length ?? 0) > 0) {
            note(t, 'unread columns');
            continue;
          }
          const have = selected(s, f.rv, mine.length === 1 && (s.fromClause?.length ?? 0) === 1);
          if (have === 'all') continue;
          const ref = refOf(f.rv).map(quote).join('.');
          for (const col of t.reads) if (!have.has(col)) insert += `, ${ref}.${quote(col)} AS ${quote(extraName(++added))}`;
        }
        if (insert === '') continue;
        tokens ??= sql.tokens(text);
        const at = selectListEnd(s, tokens);
        if (at === null) {
          for (const f of mine) {
            const t = tableOf(f.rv, tables, ctes);
            if (t !== null) note(t, 'unread columns');
          }
          continue;
        }
        edits.push({ at, insert });
      }
    }
  }
  if (edits.length === 0) return { text, added: 0, unfaithful };
  let bytes = Buffer.from(text, 'utf8');
  for (const e of edits.sort((a, b) => b.at - a.at)) {
    bytes = Buffer.concat([bytes.subarray(0, e.at), Buffer.from(e.insert, 'utf8'), bytes.subarray(e.at)]);
  }
  const out = bytes.toString('utf8');
  const again = sql.analyse(out);
  const same = again.ok && again.readings.length === 1 && JSON.stringify(withoutLocations(again.readings[0])) === JSON.stringify(withoutLocations(parsed.readings[0]));
  return same ? { text: out, added, unfaithful } : { text, added: 0, unfaithful };
}
