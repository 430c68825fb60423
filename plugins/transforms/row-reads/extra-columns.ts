/**
 * Columns the proxy adds to a statement so that a row transform sees what it reads: each is named
 * with this process's marker, so whatever the description belongs to (a Query's result, a
 * Describe's answer, a portal or cursor executed later) they are found by name and stripped before
 * the client sees them. A client's own column named so would be stripped too: it only loses it.
 */
import { randomBytes } from 'node:crypto';
import type { FieldDescription } from '../../../proxy/wire/backend-messages.js';

/** Short enough that every name stays under NAMEDATALEN (63 bytes), where the server would truncate it with a NOTICE. */
export const EXTRA_PREFIX = `pp_read_${randomBytes(5).toString('hex')}_`;

export function extraName(n: number): string {
  return `${EXTRA_PREFIX}${n}`;
}

/** A column added to a nested SELECT (a subquery, a CTE) to carry a read column out to the statement's own list. */
export function nestedName(n: number): string {
  return `${EXTRA_PREFIX}v${n}`;
}

export function isExtra(f: FieldDescription): boolean {
  return f.name.startsWith(EXTRA_PREFIX);
}

/**
 * How many columns a text adds to its output list (each named once there; nested ones are not
 * counted). Stars over a rewritten subquery output its added columns too: the rewrite knows
 * those (see statements.ts).
 */
export function extrasIn(text: string): number {
  let count = 0;
  for (let at = text.indexOf(EXTRA_PREFIX); at >= 0; at = text.indexOf(EXTRA_PREFIX, at + 1)) {
    if (/[0-9]/.test(text[at + EXTRA_PREFIX.length] ?? '')) count++;
  }
  return count;
}
