/**
 * Which table with transforms a `COPY … TO STDOUT` statement may read. COPY sends the client
 * CopyData, not DataRows, so the transforms never see those rows: such a statement is refused
 * instead. The check is deliberately coarse and errs towards refusing: any identifier in the text
 * (unquoted ones folded to lower case, as the server folds them) that equals the table name of a
 * table with transforms counts, whatever schema, alias or comment it came from.
 */
import { identifierName } from '../../proxy/identifier.js';
import type { TableTransforms } from './registry-cache.js';

const COPY_TO_STDOUT = /\bcopy\b[\s\S]*?\bto\s+stdout\b/i;
// A quoted identifier ("" inside stands for "), or an unquoted word.
const IDENTIFIER = /"(?:[^"]|"")*"|[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*/g;

/** Whether the text holds a COPY … TO STDOUT at all. */
export function isCopyToStdout(text: string): boolean {
  return COPY_TO_STDOUT.test(text);
}

/** The names of the identifiers in a text, in order, as the server reads them. */
function identifiers(text: string): string[] {
  return Array.from(text.matchAll(IDENTIFIER), (m) => identifierName(m[0]));
}

/** A table's own name (its last part), as the server stores it: `public."Order"` → `Order`. */
export function relationName(qualified: string): string {
  return identifiers(qualified).at(-1) ?? '';
}

/** The first table with transforms whose name appears in the statement, or null. */
export function copiedTable(text: string, tables: Iterable<TableTransforms>): TableTransforms | null {
  const names = new Set(identifiers(text));
  for (const t of tables) if (names.has(relationName(t.name))) return t;
  return null;
}
