/** Which fields of a description the client sees: all but the columns added for row transforms. */
import type { FieldDescription } from '../../../proxy/wire/backend-messages.js';
import { isExtra } from './extra-columns.js';

/** Indexes of the client's fields, or null when the description holds no added column (the common case). */
export function visibleFields(fields: readonly FieldDescription[]): number[] | null {
  if (!fields.some(isExtra)) return null;
  const keep: number[] = [];
  fields.forEach((f, i) => {
    if (!isExtra(f)) keep.push(i);
  });
  return keep;
}
