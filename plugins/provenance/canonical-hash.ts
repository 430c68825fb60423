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
import { createHash, type Hash } from 'node:crypto';
import { decodeValue, encodeValue, isSupportedType, type ColumnType } from '../transforms/codecs.js';

const JSONB_OID = 3802;
const JSONB_VERSION = Buffer.from([1]);
/**
 * Types whose binary form is their text form (client_encoding UTF8): text, varchar, bpchar, name,
 * json. Their fields are hashed as they came, in either format, without decoding.
 */
const SEND_IS_TEXT: ReadonlySet<number> = new Set([25, 1043, 1042, 19, 114]);

/** The binary (send) representation of one served field. */
export function canonicalField(raw: Buffer, type: ColumnType): Buffer {
  if (type.format === 1 || SEND_IS_TEXT.has(type.oid)) return raw;
  if (type.oid === JSONB_OID) return Buffer.concat([JSONB_VERSION, raw]);
  if (!isSupportedType(type.oid)) return raw;
  return encodeValue(decodeValue(raw, type), { ...type, format: 1 }) ?? raw;
}

/**
 * Field bytes held for hashing later at most: beyond it they are hashed at once, so a large result
 * never keeps more than this of the upstream's chunks alive.
 */
const MAX_PENDING_BYTES = 8 << 20;

/**
 * A hash fed batch by batch: one per execution's input, one per its output. The batches' field
 * values are only noted as they pass (the rows go on to the client at once); hashing happens when
 * the hash is asked for, typically after the result was sent, or when too much is waiting.
 */
export class PortionHash {
  private readonly hash: Hash = createHash('sha256');
  private digest: string | null = null;
  /** Noted field values, row after row, and the types of a row's fields. */
  private pending: (Buffer | null)[] = [];
  private pendingBytes = 0;
  private types: readonly ColumnType[] = [];

  /**
   * Adds rows: for each, the fields at `fields` (result column indexes, already in table column
   * order) whose types are `types` (the same on every call).
   */
  add(rows: readonly (readonly (Buffer | null)[])[], fields: readonly number[], types: readonly ColumnType[]): void {
    this.types = types;
    const pending = this.pending;
    let bytes = this.pendingBytes;
    for (const row of rows) {
      for (let j = 0; j < fields.length; j++) {
        const raw = row[fields[j]!] ?? null;
        pending.push(raw);
        if (raw !== null) bytes += raw.length;
      }
    }
    this.pendingBytes = bytes;
    if (bytes > MAX_PENDING_BYTES) this.flush();
  }

  /** Lowercase hex; the hash takes no more rows after. */
  hex(): string {
    if (this.digest === null) {
      this.flush();
      this.digest = this.hash.digest('hex');
    }
    return this.digest;
  }

  /** Hashes what was noted, as binary DataRow bodies. */
  private flush(): void {
    const values = this.pending;
    const types = this.types;
    const n = types.length;
    this.pending = [];
    this.pendingBytes = 0;
    if (values.length === 0 || n === 0) return;
    const rows = values.length / n;
    let size = rows * (2 + 4 * n);
    for (let k = 0; k < values.length; k++) {
      const raw = values[k]!;
      if (raw === null) continue;
      const b = canonicalField(raw, types[k % n]!);
      values[k] = b;
      size += b.length;
    }
    const out = Buffer.allocUnsafe(size);
    let off = 0;
    let k = 0;
    // Plain byte stores: Buffer's write and copy methods cost more than the few bytes they move.
    for (let i = 0; i < rows; i++) {
      out[off++] = n >>> 8;
      out[off++] = n & 0xff;
      for (let j = 0; j < n; j++) {
        const b = values[k++]!;
        if (b === null) {
          out[off++] = 0xff;
          out[off++] = 0xff;
          out[off++] = 0xff;
          out[off++] = 0xff;
          continue;
        }
        const len = b.length;
        out[off++] = len >>> 24;
        out[off++] = (len >>> 16) & 0xff;
        out[off++] = (len >>> 8) & 0xff;
        out[off++] = len & 0xff;
        if (len <= 64) for (let x = 0; x < len; x++) out[off++] = b[x]!;
        else {
          out.set(b, off);
          off += len;
        }
      }
    }
    this.hash.update(out);
  }
}
