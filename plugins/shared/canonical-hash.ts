/**
 * Input and output hashes of the portion of a result a transform processed, canonical so that
 * the same values give the same hash whatever format the client asked for and whichever client
 * it is, and any change of a value, of the row order or of a NULL gives another.
 *
 * The hash is SHA-256 over the portion's rows in the order they were served, each laid out as
 * the body of a binary-format DataRow:
 *
 *   Int16  number of fields
 *   per field, in the table's column order (attnum):
 *     Int32  -1 for NULL, else the length n of the value's bytes
 *     Byte n the value in PostgreSQL's binary (send) representation: what `int4send(v)`,
 *            `textsend(v)`, `numeric_send(v)`, `timestamptz_send(v)`, `jsonb_send(v)`, … return
 *
 * A field served in binary format is hashed as it is; one served as text is converted to the
 * binary form first (through the lossless codecs of the supported types; json's binary form is its
 * text). Types the codecs do not know are hashed as served, so for them the hash depends on the
 * format. An auditor can recompute a hash with SQL alone (the README shows how).
 */
import { createHash, hash as hashAtOnce, type Hash } from 'node:crypto';
import { int32At, type RowBatch } from '../../proxy/wire/row-batch.js';
import { decodeValue, encodeValue, isSupportedType, type ColumnType } from './codecs/codecs.js';

const JSONB_OID = 3802;
const JSONB_VERSION = Buffer.from([1]);
/**
 * Types whose binary form is their text form (client_encoding UTF8): text, varchar, bpchar, name,
 * json. Their fields are hashed as they came, in either format, without decoding.
 */
const SEND_IS_TEXT: ReadonlySet<number> = new Set([25, 1043, 1042, 19, 114]);

/** Whether a column's fields are hashed as served: binary format, a SEND_IS_TEXT type, or a type the codecs do not know. */
function servedIsCanonical(type: ColumnType): boolean {
  return type.format === 1 || SEND_IS_TEXT.has(type.oid) || !isSupportedType(type.oid);
}

/** The binary (send) representation of one served field. */
export function canonicalField(raw: Buffer, type: ColumnType): Buffer {
  if (servedIsCanonical(type)) return raw;
  if (type.oid === JSONB_OID) return Buffer.concat([JSONB_VERSION, raw]);
  return encodeValue(decodeValue(raw, type), { ...type, format: 1 }) ?? raw;
}

/**
 * Integers in text format are the most common fields converted for hashing (a row transform's
 * portion holds its table's keys). The codecs make two values and a Buffer of each; here the
 * digits are read where they lie and the binary form written in place, for the values whose
 * conversion cannot fail: at most 9 digits (15 for int8, exact in a double), an optional minus
 * sign, within the type's range. Anything else goes through the codecs, which decide (and throw)
 * as before. Per oid: the width of the binary form and the largest digit count read here.
 */
interface IntText {
  readonly width: number;
  readonly digits: number;
  readonly min: number;
  readonly max: number;
}
const INT_TEXT: ReadonlyMap<number, IntText> = new Map([
  [21, { width: 2, digits: 5, min: -32768, max: 32767 }],
  [23, { width: 4, digits: 9, min: -999_999_999, max: 999_999_999 }],
  [26, { width: 4, digits: 9, min: 0, max: 999_999_999 }],
  [20, { width: 8, digits: 15, min: -999_999_999_999_999, max: 999_999_999_999_999 }],
]);
const SCRATCH = Buffer.allocUnsafe(16);

/** How a column's fields are read by intFromText, or null: not a text-format integer column. */
function intText(type: ColumnType): IntText | null {
  return type.format === 0 ? (INT_TEXT.get(type.oid) ?? null) : null;
}

/** The integer a text field holds, or NaN when the codecs must decide (see INT_TEXT). */
function intFromText(rows: RowBatch, row: number, column: number, spec: IntText): number {
  const len = rows.length(row, column);
  if (len < 1 || len > 16) return NaN;
  rows.copyField(row, column, SCRATCH, 0);
  const start = SCRATCH[0] === 0x2d ? 1 : 0;
  if (len === start || len - start > spec.digits) return NaN;
  let v = 0;
  for (let i = start; i < len; i++) {
    const d = SCRATCH[i]! - 0x30;
    if (d < 0 || d > 9) return NaN;
    v = v * 10 + d;
  }
  if (start === 1 && v !== 0) v = -v;
  if (v < spec.min || v > spec.max) return NaN;
  return v;
}

/** An integer's binary (big-endian two's complement) form of `width` bytes at `off`. */
function writeInt(out: Buffer, off: number, v: number, width: number): number {
  if (width === 2) {
    out[off] = (v >> 8) & 0xff;
    out[off + 1] = v & 0xff;
    return off + 2;
  }
  if (width === 4) return int32At(out, off, v);
  const high = Math.floor(v / 0x1_0000_0000);
  return int32At(out, int32At(out, off, high), v - high * 0x1_0000_0000);
}

/**
 * Bytes laid out for hashing later at most: beyond it they are hashed at once, so a large result
 * never holds more than this.
 */
const MAX_PENDING_BYTES = 8 << 20;
/**
 * Layout buffers start small (most results are a few rows; a small Buffer comes from Node's shared
 * pool) and double up to this size; a row larger than that gets a buffer of its own size.
 */
const FIRST_CHUNK_BYTES = 512;
const CHUNK_BYTES = 64 << 10;
const EMPTY = Buffer.alloc(0);

/**
 * A hash fed batch by batch: one per execution's input, one per its output. Each batch's rows are
 * laid out at once in the canonical form, into large buffers that hold no reference to the batch
 * (the rows go on to the client, and the garbage collector does not have to keep every field of a
 * large result alive); hashing happens when the hash is asked for, typically after the result was
 * sent, or when too much is waiting.
 */
export class PortionHash {
  /** Made when there is something to hash (most portions are hashed once, at the end). */
  private hash: Hash | null = null;
  private digest: string | null = null;
  /** Filled layout buffers, oldest first, and the one being filled. */
  private full: Buffer[] = [];
  private fullBytes = 0;
  private chunk: Buffer | null = null;
  private used = 0;
  private asServed: readonly boolean[] | undefined;
  private allServed: boolean | undefined;
  private intSpecs: readonly (IntText | null)[] | undefined;
  /** The order number the next add in turn has, and the layouts of adds that came before their turn. */
  private next = 0;
  private readonly early = new Map<number, Buffer[]>();

  /**
   * Adds rows: for each, the fields at `fields` (result column indexes, already in table column
   * order) whose types are `types` (the same on every call). `order` numbers the adds from 0 when
   * they may come out of order (batches worked on at the same time): an add is laid out at once
   * and hashed in its turn; a number never added leaves a gap.
   */
  add(rows: RowBatch, fields: readonly number[], types: readonly ColumnType[], order = this.next): void {
    if (this.digest !== null) throw new Error('PortionHash: rows added after the hash was taken');
    if (order !== this.next) {
      this.early.set(order, this.layoutAlone(rows, fields, types));
      return;
    }
    this.layout(rows, fields, types);
    this.next++;
    for (let e = this.early.get(this.next); e !== undefined; e = this.early.get(this.next)) {
      this.early.delete(this.next);
      this.append(e);
      this.next++;
    }
    if (this.fullBytes > MAX_PENDING_BYTES) this.flush();
  }

  /** Lays rows out in buffers of their own, leaving the ones in turn as they are. */
  private layoutAlone(rows: RowBatch, fields: readonly number[], types: readonly ColumnType[]): Buffer[] {
    const { full, fullBytes, chunk, used } = this;
    this.full = [];
    this.fullBytes = 0;
    this.chunk = null;
    this.used = 0;
    this.layout(rows, fields, types);
    this.retire();
    const mine = this.full;
    this.full = full;
    this.fullBytes = fullBytes;
    this.chunk = chunk;
    this.used = used;
    return mine;
  }

  private append(buffers: readonly Buffer[]): void {
    this.retire();
    for (const b of buffers) {
      this.full.push(b);
      this.fullBytes += b.length;
    }
  }

  private layout(rows: RowBatch, fields: readonly number[], types: readonly ColumnType[]): void {
    const n = fields.length;
    // Whether a field's bytes are already canonical (most are): then they are copied where they lie.
    const asServed = (this.asServed ??= types.map(servedIsCanonical));
    if (this.allServed ??= asServed.every(Boolean)) {
      this.layoutServed(rows, fields);
      return;
    }
    const converted: (Buffer | null)[] = new Array<Buffer | null>(n);
    const intSpecs = (this.intSpecs ??= types.map(intText));
    // Per field of the row: an integer read from its text (see intFromText), or NaN.
    const ints = new Float64Array(n);
    for (let r = 0; r < rows.rows; r++) {
      let size = 2 + 4 * n;
      for (let j = 0; j < n; j++) {
        if (asServed[j]) {
          size += Math.max(0, rows.length(r, fields[j]!));
          continue;
        }
        const spec = intSpecs[j]!;
        const v = (ints[j] = spec === null ? NaN : intFromText(rows, r, fields[j]!, spec));
        if (v === v) {
          size += spec!.width;
          continue;
        }
        const raw = rows.field(r, fields[j]!);
        const b = raw === null ? null : canonicalField(raw, types[j]!);
        converted[j] = b;
        if (b !== null) size += b.length;
      }
      const out = this.room(size);
      let off = this.used;
      // Plain byte stores: Buffer's write and copy methods cost more than the few bytes they move.
      out[off++] = n >>> 8;
      out[off++] = n & 0xff;
      for (let j = 0; j < n; j++) {
        if (asServed[j]) {
          off = int32At(out, off, rows.length(r, fields[j]!));
          off = rows.copyField(r, fields[j]!, out, off);
          continue;
        }
        const v = ints[j]!;
        if (v === v) {
          const width = intSpecs[j]!.width;
          off = writeInt(out, int32At(out, off, width), v, width);
          continue;
        }
        const b = converted[j]!;
        off = int32At(out, off, b === null ? -1 : b.length);
        if (b !== null) {
          out.set(b, off);
          off += b.length;
        }
      }
      this.used = off;
    }
  }

  /**
   * The common case, every field as served (a column transform's one text column): the batch is
   * sized in one pass and laid out in one buffer, each field's length read once.
   */
  private layoutServed(rows: RowBatch, fields: readonly number[]): void {
    const n = fields.length;
    const count = rows.rows;
    let size = count * (2 + 4 * n);
    for (let r = 0; r < count; r++) {
      for (let j = 0; j < n; j++) size += Math.max(0, rows.length(r, fields[j]!));
    }
    const out = this.room(size);
    let off = this.used;
    for (let r = 0; r < count; r++) {
      out[off++] = n >>> 8;
      out[off++] = n & 0xff;
      for (let j = 0; j < n; j++) {
        const f = fields[j]!;
        off = int32At(out, off, rows.length(r, f));
        off = rows.copyField(r, f, out, off);
      }
    }
    this.used = off;
  }

  /** Lowercase hex; the hash takes no more rows after. */
  hex(): string {
    if (this.digest === null) {
      // Adds after a gap (a batch that failed part way) count in their order.
      for (const order of [...this.early.keys()].sort((a, b) => a - b)) this.append(this.early.get(order)!);
      this.early.clear();
      this.retire();
      if (this.hash === null && this.full.length <= 1) {
        // All of it in one buffer (most results): one call, without a Hash object.
        this.digest = hashAtOnce('sha256', this.full[0] ?? EMPTY, 'hex');
        this.full = [];
        this.fullBytes = 0;
      } else {
        this.flush();
        this.digest = (this.hash ?? createHash('sha256')).digest('hex');
      }
    }
    return this.digest;
  }

  /** The buffer being filled, with room for `size` more bytes after `used`. */
  private room(size: number): Buffer {
    const out = this.chunk;
    if (out !== null && this.used + size <= out.length) return out;
    const grown = out === null ? FIRST_CHUNK_BYTES : Math.min(CHUNK_BYTES, out.length * 2);
    this.retire();
    return (this.chunk = Buffer.allocUnsafe(Math.max(grown, size)));
  }

  /** Moves the buffer being filled to the ones waiting. */
  private retire(): void {
    if (this.chunk !== null && this.used > 0) {
      this.full.push(this.chunk.subarray(0, this.used));
      this.fullBytes += this.used;
    }
    this.chunk = null;
    this.used = 0;
  }

  /** Hashes what waits. */
  private flush(): void {
    if (this.full.length === 0) return;
    const hash = (this.hash ??= createHash('sha256'));
    for (const b of this.full) hash.update(b);
    this.full = [];
    this.fullBytes = 0;
  }
}
