/**
 * A batch of DataRows of one result, decoded only as far as where each field lies, changed in place
 * and encoded back. Making a Buffer per field was the largest single cost of a watched result on
 * the event loop (and of the garbage collector after it): fields are read where they lie, and a
 * Buffer is made only for a field something asks for as one.
 *
 * DataRow: Byte1 'D', Int32 length, Int16 field count, then per field Int32 length (-1 = NULL)
 * and that many bytes. Every DataRow of a result has the RowDescription's field count.
 */
import { PgError, SqlState } from '../errors.js';
import { Backend } from './codes.js';

export class RowBatch {
  /**
   * Per field, row-major (row * width + column): the buffer holding its bytes, where they start,
   * and how many there are (-1: NULL). Several fields share a buffer (a frame, or the bytes a
   * transform's changed values were encoded into).
   */
  private src: Buffer[];
  private starts: Int32Array;
  private lengths: Int32Array;

  private constructor(
    /** Number of rows. */
    public rows: number,
    readonly width: number,
    src: Buffer[],
    starts: Int32Array,
    lengths: Int32Array,
  ) {
    this.src = src;
    this.starts = starts;
    this.lengths = lengths;
  }

  /** The DataRow frames as they came (each with its type byte and length). */
  static fromFrames(frames: readonly Buffer[]): RowBatch {
    const first = frames[0];
    const width = first !== undefined && first.length >= 7 ? (first[5]! << 8) | first[6]! : 0;
    const n = frames.length * width;
    const src = new Array<Buffer>(n);
    const starts = new Int32Array(n);
    const lengths = new Int32Array(n);
    let k = 0;
    for (const raw of frames) {
      const end = raw.length;
      if (end < 7) throw shortMessage();
      if (((raw[5]! << 8) | raw[6]!) !== width) {
        throw new PgError(SqlState.ProtocolViolation, 'DataRows of one result have different field counts', 'FATAL');
      }
      let pos = 7;
      for (let i = 0; i < width; i++, k++) {
        if (pos + 4 > end) throw shortMessage();
        const len = (raw[pos]! << 24) | (raw[pos + 1]! << 16) | (raw[pos + 2]! << 8) | raw[pos + 3]!;
        pos += 4;
        src[k] = raw;
        starts[k] = pos;
        if (len < 0) {
          lengths[k] = -1;
          continue;
        }
        if (pos + len > end) throw shortMessage();
        lengths[k] = len;
        pos += len;
      }
    }
    return new RowBatch(frames.length, width, src, starts, lengths);
  }

  /** Rows of field values (null for NULL), all of the same width. */
  static fromValues(rows: readonly (readonly (Uint8Array | null)[])[]): RowBatch {
    const width = rows[0]?.length ?? 0;
    const n = rows.length * width;
    const batch = new RowBatch(rows.length, width, new Array<Buffer>(n), new Int32Array(n), new Int32Array(n));
    rows.forEach((row, r) => {
      if (row.length !== width) throw new RangeError(`row ${r} has ${row.length} fields, not ${width}`);
      row.forEach((v, c) => batch.set(r, c, v === null ? null : Buffer.from(v.buffer, v.byteOffset, v.byteLength)));
    });
    return batch;
  }

  /** The bytes of a field as a Buffer (a view, made now), or null for NULL. */
  field(row: number, column: number): Buffer | null {
    const k = row * this.width + column;
    const len = this.lengths[k]!;
    if (len < 0) return null;
    const b = this.src[k]!;
    return Buffer.from(b.buffer, b.byteOffset + this.starts[k]!, len);
  }

  /** A field's length in bytes, -1 for NULL. */
  length(row: number, column: number): number {
    return this.lengths[row * this.width + column]!;
  }

  /**
   * Copies a field's bytes to `out` at `at` (nothing for NULL); returns the offset after them.
   * Short fields are copied in a loop, which costs less than a native copy's call.
   */
  copyField(row: number, column: number, out: Buffer, at: number): number {
    const k = row * this.width + column;
    const len = this.lengths[k]!;
    if (len <= 0) return at;
    const b = this.src[k]!;
    const s = this.starts[k]!;
    if (len <= 64) for (let x = 0; x < len; x++) out[at + x] = b[s + x]!;
    else b.copy(out, at, s, s + len);
    return at + len;
  }

  /** Replaces a field's value (null for NULL). */
  set(row: number, column: number, value: Buffer | null): void {
    if (value === null) this.setBytes(row, column, null, 0, -1);
    else this.setBytes(row, column, value, 0, value.length);
  }

  /** Replaces a field's value with `length` bytes of `buffer` from `start` (length -1: NULL). */
  setBytes(row: number, column: number, buffer: Buffer | null, start: number, length: number): void {
    const k = row * this.width + column;
    if (buffer !== null) this.src[k] = buffer;
    this.starts[k] = start;
    this.lengths[k] = length < 0 ? -1 : length;
  }

  /** Keeps only these rows, in this order (indexes into the rows as they are now). */
  keep(rows: readonly number[]): void {
    const w = this.width;
    const n = rows.length * w;
    const src = new Array<Buffer>(n);
    const starts = new Int32Array(n);
    const lengths = new Int32Array(n);
    rows.forEach((r, i) => {
      for (let c = 0; c < w; c++) {
        src[i * w + c] = this.src[r * w + c]!;
        starts[i * w + c] = this.starts[r * w + c]!;
        lengths[i * w + c] = this.lengths[r * w + c]!;
      }
    });
    this.src = src;
    this.starts = starts;
    this.lengths = lengths;
    this.rows = rows.length;
  }

  /** A batch of these columns only, in this order (indexes into the columns as they are now). */
  pick(columns: readonly number[]): RowBatch {
    const w = columns.length;
    const n = this.rows * w;
    const out = new RowBatch(this.rows, w, new Array<Buffer>(n), new Int32Array(n), new Int32Array(n));
    for (let r = 0; r < this.rows; r++) {
      for (let i = 0; i < w; i++) {
        const from = r * this.width + columns[i]!;
        out.src[r * w + i] = this.src[from]!;
        out.starts[r * w + i] = this.starts[from]!;
        out.lengths[r * w + i] = this.lengths[from]!;
      }
    }
    return out;
  }

  /** Every row's values as Buffers (views) or null. */
  values(): (Buffer | null)[][] {
    return Array.from({ length: this.rows }, (_, r) => Array.from({ length: this.width }, (_, c) => this.field(r, c)));
  }

  /** The rows as DataRow messages, in one buffer, sized first and filled once. */
  encode(): Buffer {
    const w = this.width;
    const lengths = this.lengths;
    let size = this.rows * (7 + 4 * w);
    for (let k = 0; k < this.rows * w; k++) if (lengths[k]! > 0) size += lengths[k]!;
    const out = Buffer.allocUnsafe(size);
    let off = 0;
    for (let r = 0; r < this.rows; r++) {
      let len = 6 + 4 * w;
      for (let c = 0; c < w; c++) {
        const l = lengths[r * w + c]!;
        if (l > 0) len += l;
      }
      out[off++] = Backend.DataRow;
      off = int32At(out, off, len);
      out[off++] = (w >>> 8) & 0xff;
      out[off++] = w & 0xff;
      for (let c = 0; c < w; c++) {
        off = int32At(out, off, lengths[r * w + c]!);
        off = this.copyField(r, c, out, off);
      }
    }
    return out;
  }
}

/** Writes an Int32 big-endian with plain byte stores; returns the offset after it. */
export function int32At(out: Buffer, off: number, v: number): number {
  out[off] = (v >>> 24) & 0xff;
  out[off + 1] = (v >>> 16) & 0xff;
  out[off + 2] = (v >>> 8) & 0xff;
  out[off + 3] = v & 0xff;
  return off + 4;
}

function shortMessage(): PgError {
  return new PgError(SqlState.ProtocolViolation, 'message is shorter than its contents', 'FATAL');
}
