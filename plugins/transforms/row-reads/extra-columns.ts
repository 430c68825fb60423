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

export function isExtra(f: FieldDescription): boolean {
  return f.name.startsWith(EXTRA_PREFIX);
}

/** How many of a text's output columns are the proxy's (the highest number its markers carry). */
export function extrasIn(text: string): number {
  let count = 0;
  for (let at = text.indexOf(EXTRA_PREFIX); at >= 0; at = text.indexOf(EXTRA_PREFIX, at + 1)) count++;
  return count;
}
