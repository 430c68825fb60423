/**
 * Text fields to a sandbox TextColumn and back (see TextColumn in sandbox/types.ts): the values of
 * a text column cross into the isolate as one string, and the changed ones come back as one, so
 * the event loop neither makes nor encodes a string per value. Only for columns whose values are
 * the field bytes as UTF-8 in either format with nothing to check but the text itself (text, and
 * varchar without a length), and only for ASCII: there, a value's length in UTF-16 units is its
 * length in bytes. Anything else takes the per-value codecs.
 */
import { isAscii } from 'node:buffer';
import { UNCHANGED, type TextColumn } from '../../sandbox/index.js';
import type { RowBatch } from '../../proxy/wire/row-batch.js';
import { encodeValue, type ColumnType } from '../shared/codecs/codecs.js';

const TEXT_OID = 25;
const VARCHAR_OID = 1043;

/** Whether a column's values may cross as a TextColumn. */
export function crossesAsText(type: ColumnType): boolean {
  return type.oid === TEXT_OID || (type.oid === VARCHAR_OID && type.typmod < 4);
}

/** A column of a batch as a TextColumn, or null when its values are not all ASCII. */
export function toTextColumn(rows: RowBatch, column: number): TextColumn | null {
  const lengths = new Int32Array(rows.rows);
  let total = 0;
  for (let r = 0; r < rows.rows; r++) {
    const n = rows.length(r, column);
    lengths[r] = n;
    if (n > 0) total += n;
  }
  const all = Buffer.allocUnsafe(total);
  let at = 0;
  for (let r = 0; r < rows.rows; r++) at = rows.copyField(r, column, all, at);
  if (!isAscii(all)) return null;
  return { text: all.toString('latin1'), lengths };
}

/**
 * Puts a transform's TextColumn result into the batch's column: where it changed a value, the new
 * value in the column's format. Throws CodecError as encodeValue does.
 */
export function fromTextColumn(result: TextColumn, rows: RowBatch, column: number, type: ColumnType): void {
  const { text, lengths } = result;
  const bytes = Buffer.from(text, 'utf8');
  // As many bytes as UTF-16 units: all ASCII (no surrogate), so each value is a range of the
  // bytes; a NUL, which text cannot hold, sends every value through the codec for its error.
  const ranges = bytes.length === text.length && bytes.indexOf(0) === -1;
  let at = 0;
  for (let r = 0; r < lengths.length; r++) {
    const n = lengths[r]!;
    if (n === UNCHANGED) continue;
    if (n < 0) rows.set(r, column, null);
    else {
      if (ranges) rows.setBytes(r, column, bytes, at, n);
      else rows.set(r, column, encodeValue(text.slice(at, at + n), type));
      at += n;
    }
  }
}
