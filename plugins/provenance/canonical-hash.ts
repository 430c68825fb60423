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

const JSON_OID = 114;
const JSONB_OID = 3802;
const JSONB_VERSION = Buffer.from([1]);

/** The binary (send) representation of one served field. */
export function canonicalField(raw: Buffer, type: ColumnType): Buffer {
  if (type.format === 1) return raw;
  if (type.oid === JSON_OID) return raw;
  if (type.oid === JSONB_OID) return Buffer.concat([JSONB_VERSION, raw]);
  if (!isSupportedType(type.oid)) return raw;
  return encodeValue(decodeValue(raw, type), { ...type, format: 1 }) ?? raw;
}

/** A hash fed batch by batch: one per execution's input, one per its output. */
export class PortionHash {
  private readonly hash: Hash = createHash('sha256');
  private digest: string | null = null;

  /**
   * Adds rows: for each, the fields at `fields` (result column indexes, already in table column
   * order) whose types are `types`.
   */
  add(rows: readonly (readonly (Buffer | null)[])[], fields: readonly number[], types: readonly ColumnType[]): void {
    if (rows.length === 0) return;
    const parts: (Buffer | null)[] = new Array<Buffer | null>(rows.length * fields.length);
    let size = rows.length * (2 + 4 * fields.length);
    let k = 0;
    for (const row of rows) {
      for (let j = 0; j < fields.length; j++) {
        const raw = row[fields[j]!] ?? null;
        const b = raw === null ? null : canonicalField(raw, types[j]!);
        parts[k++] = b;
        if (b !== null) size += b.length;
      }
    }
    const out = Buffer.allocUnsafe(size);
    let off = 0;
    k = 0;
    for (let i = 0; i < rows.length; i++) {
      off = out.writeInt16BE(fields.length, off);
      for (let j = 0; j < fields.length; j++) {
        const b = parts[k++]!;
        if (b === null) off = out.writeInt32BE(-1, off);
        else {
          off = out.writeInt32BE(b.length, off);
          off += b.copy(out, off);
        }
      }
    }
    this.hash.update(out);
  }

  /** Lowercase hex; the hash takes no more rows after. */
  hex(): string {
    this.digest ??= this.hash.digest('hex');
    return this.digest;
  }
}
