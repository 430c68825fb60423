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

export interface Replacement {
  readonly ref: RelationRef;
  readonly table: RelationInfo;
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

/** Where the name a reference starts with ends (after `schema.name`, and a legacy `*`), in bytes. */
function nameSpan(tokens: readonly SqlToken[], location: number): { start: number; end: number } | null {
  const i = tokens.findIndex((t) => t.start === location);
  if (i < 0) return null;
  let j = i;
  while (tokens[j + 1]?.text === '.' && tokens[j + 2] !== undefined) j += 2;
  if (tokens[j + 1]?.text === '*') j++;
  const before = tokens[i - 1];
  const only = before !== undefined && before.keyword && before.text.toLowerCase() === 'only';
  return { start: only ? before.start : tokens[i]!.start, end: tokens[j]!.end };
}

/** The text with each reference replaced; null when a reference is not where the tokens say. */
export function rewriteText(text: string, tokens: readonly SqlToken[], replacements: readonly Replacement[], moment: Moment): string | null {
  const bytes = Buffer.from(text, 'utf8');
  const parts: Buffer[] = [];
  let at = 0;
  const sorted = [...replacements].sort((a, b) => a.ref.location - b.ref.location);
  for (const { ref, table } of sorted) {
    const span = nameSpan(tokens, ref.location);
    if (span === null || span.start < at) return null;
    const alias = ref.aliased ? '' : ` AS ${quoteIdent(ref.name)}`;
    parts.push(bytes.subarray(at, span.start), Buffer.from(` ${historySubquery(table, moment)}${alias} `, 'utf8'));
    at = span.end;
  }
  parts.push(bytes.subarray(at));
  return Buffer.concat(parts).toString('utf8');
}
