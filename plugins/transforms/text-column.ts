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
import { encodeValue, type ColumnType } from './codecs.js';

const TEXT_OID = 25;
const VARCHAR_OID = 1043;

/** Whether a column's values may cross as a TextColumn. */
export function crossesAsText(type: ColumnType): boolean {
  return type.oid === TEXT_OID || (type.oid === VARCHAR_OID && type.typmod < 4);
}

/** The fields as a TextColumn, or null when they are not all ASCII. */
export function toTextColumn(raws: readonly (Buffer | null)[]): TextColumn | null {
  const lengths = new Int32Array(raws.length);
  let total = 0;
  for (let i = 0; i < raws.length; i++) {
    const b = raws[i]!;
    lengths[i] = b === null ? -1 : b.length;
    if (b !== null) total += b.length;
  }
  const all = Buffer.allocUnsafe(total);
  let at = 0;
  for (const b of raws) {
    if (b === null) continue;
    const n = b.length;
    if (n <= 64) for (let x = 0; x < n; x++) all[at + x] = b[x]!;
    else all.set(b, at);
    at += n;
  }
  if (!isAscii(all)) return null;
  return { text: all.toString('latin1'), lengths };
}

/**
 * The fields a transform's TextColumn result stands for: the original bytes where it left a value
 * unchanged, else the new value in the column's format. Throws CodecError as encodeValue does.
 */
export function fromTextColumn(result: TextColumn, raws: readonly (Buffer | null)[], type: ColumnType): (Buffer | null)[] {
  const { text, lengths } = result;
  const out = new Array<Buffer | null>(lengths.length);
  const bytes = Buffer.from(text, 'utf8');
  // As many bytes as UTF-16 units: all ASCII (no surrogate), so each value is a slice of the
  // bytes; a NUL, which text cannot hold, sends every value through the codec for its error.
  const slices = bytes.length === text.length && bytes.indexOf(0) === -1;
  let at = 0;
  for (let i = 0; i < lengths.length; i++) {
    const n = lengths[i]!;
    if (n === UNCHANGED) out[i] = raws[i] ?? null;
    else if (n < 0) out[i] = null;
    else {
      out[i] = slices ? bytes.subarray(at, at + n) : encodeValue(text.slice(at, at + n), type);
      at += n;
    }
  }
  return out;
}
