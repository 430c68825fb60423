/**
 * One statement of a simple Query of several, as the server splits it (PostgreSQL's parser): its
 * own text, so that a result of it can be replayed alone (README, "HTTP"). The parser gives each
 * statement's place in UTF-8 bytes, leading spaces and comments left out.
 */
import { parseSync } from 'libpg-query';

export interface QueryStatement {
  readonly text: string;
  /** The parse tree's node type (SelectStmt, FetchStmt…). */
  readonly kind: string;
  /** How many statements the Query holds. */
  readonly of: number;
}

/** Statement `index` (0-based) of `text`, or null when the parser does not read the text or it has no such statement. */
export function statementOfQuery(text: string, index: number): QueryStatement | null {
  let stmts;
  try {
    stmts = parseSync(text).stmts ?? [];
  } catch {
    return null;
  }
  const s = stmts[index];
  if (s === undefined) return null;
  const bytes = Buffer.from(text);
  const start = s.stmt_location ?? 0;
  const end = s.stmt_len ? start + s.stmt_len : bytes.length;
  return { text: bytes.subarray(start, end).toString().trimEnd(), kind: Object.keys(s.stmt ?? {})[0] ?? '', of: stmts.length };
}
