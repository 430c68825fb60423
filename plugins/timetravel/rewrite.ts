/**
 * The text of a statement with references to tracked tables replaced by their rows as of a
 * moment: `FROM public.customers c` becomes `FROM (SELECT id, email … FROM provenance.history_16384
 * WHERE <moment> <@ tstzrange(provenance_valid_from, provenance_valid_to)) c`, spliced in at the
 * parse tree's locations, so the rest of the text goes up as the client wrote it. The subquery's
 * columns are the history table's own, so RowDescription still says which column each value comes
 * from (the history's, which the time-travel service maps back to the table's).
 */
import type { SqlToken } from '../sql/analyser.js';
import type { RelationRef } from '../sql/relation-refs.js';
import type { RelationInfo } from './history-catalog.js';
import { momentLiteral, type Moment } from './moment.js';
import { materializedSubquery } from './materialized-reads.js';

export interface Replacement {
  readonly ref: RelationRef;
  readonly table: RelationInfo;
  /** A view's query stands in its place (its own references are rewritten in a next pass). */
  readonly view?: boolean;
  /** Read from this materialised version rather than the history (see materialized-reads.ts). */
  readonly materialization?: number;
}

export function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

/** The history as of the moment, as a derived table with the table's columns by name. */
export function historySubquery(table: RelationInfo, moment: Moment): string {
  const h = table.history!;
  const cols = table.columns.map((c) =>
    c.historyName === null
      ? `NULL::${c.type} AS ${quoteIdent(c.name)}`
      : c.historyName === c.name ? quoteIdent(c.name) : `${quoteIdent(c.historyName)} AS ${quoteIdent(c.name)}`);
  const qualified = `${quoteIdent(table.schema)}.${quoteIdent(table.name)}`;
  // The reference to the table itself reads no row: it makes the server check the caller's
  // SELECT on the table now, so nobody reads more of it as of then than they may today.
  return `(SELECT ${cols.join(', ')} FROM ${h.name}`
    + ` WHERE ${momentLiteral(moment)} OPERATOR(pg_catalog.<@) pg_catalog.tstzrange(provenance_valid_from, provenance_valid_to)`
    + ` AND NOT EXISTS (SELECT FROM ONLY ${qualified} WHERE false))`;
}

const isKeyword = (t: SqlToken | undefined, word: string): t is SqlToken => t !== undefined && t.keyword && t.text.toLowerCase() === word;

/**
 * Where a reference stands, in bytes: its name (`schema.name`, a legacy `*` after it), with ONLY
 * before it, and the TABLE of a `TABLE name` query (which takes only a name: it becomes
 * `SELECT * FROM …`).
 */
function nameSpan(tokens: readonly SqlToken[], location: number): { start: number; end: number; table: boolean } | null {
  const i = tokens.findIndex((t) => t.start === location);
  if (i < 0) return null;
  let j = i;
  while (tokens[j + 1]?.text === '.' && tokens[j + 2] !== undefined) j += 2;
  if (tokens[j + 1]?.text === '*') j++;
  let k = i;
  if (isKeyword(tokens[k - 1], 'only')) k--;
  const table = isKeyword(tokens[k - 1], 'table');
  if (table) k--;
  return { start: tokens[k]!.start, end: tokens[j]!.end, table };
}

/** The text with each reference replaced; null when a reference is not where the tokens say. */
export function rewriteText(text: string, tokens: readonly SqlToken[], replacements: readonly Replacement[], moment: Moment): string | null {
  const bytes = Buffer.from(text, 'utf8');
  const parts: Buffer[] = [];
  let at = 0;
  const sorted = [...replacements].sort((a, b) => a.ref.location - b.ref.location);
  for (const { ref, table, view, materialization } of sorted) {
    const span = nameSpan(tokens, ref.location);
    if (span === null || span.start < at) return null;
    const alias = ref.aliased ? '' : ` AS ${quoteIdent(ref.name)}`;
    const select = span.table ? ' SELECT * FROM' : '';
    const body = view === true ? `(${table.definition})` : materialization !== undefined ? materializedSubquery(table, materialization) : historySubquery(table, moment);
    parts.push(bytes.subarray(at, span.start), Buffer.from(`${select} ${body}${alias} `, 'utf8'));
    at = span.end;
  }
  parts.push(bytes.subarray(at));
  return Buffer.concat(parts).toString('utf8');
}
