/**
 * Integers in text format are laid out for hashing without the codecs where their conversion
 * cannot fail: the hash is the one the codecs' binary form gives, byte for byte, and what the
 * codecs refuse is still refused.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PortionHash, canonicalField } from '../../plugins/shared/canonical-hash.js';
import { CodecError, type ColumnType } from '../../plugins/shared/codecs/codecs.js';
import { RowBatch } from '../../proxy/wire/row-batch.js';
import { mulberry32 } from '../support/rng.js';

const INT2: ColumnType = { oid: 21, typmod: -1, format: 0 };
const INT4: ColumnType = { oid: 23, typmod: -1, format: 0 };
const OID: ColumnType = { oid: 26, typmod: -1, format: 0 };
const INT8: ColumnType = { oid: 20, typmod: -1, format: 0 };
const TEXT: ColumnType = { oid: 25, typmod: -1, format: 0 };
const TYPES = [INT2, INT4, OID, INT8, TEXT];

/** The layout through the codecs (canonicalField), hashed. */
function reference(rows: readonly (readonly (string | null)[])[], types: readonly ColumnType[]): string {
  const parts: Buffer[] = [];
  for (const row of rows) {
    const head = Buffer.alloc(2);
    head.writeInt16BE(row.length);
    parts.push(head);
    row.forEach((v, j) => {
      const b = v === null ? null : canonicalField(Buffer.from(v, 'latin1'), types[j]!);
      const len = Buffer.alloc(4);
      len.writeInt32BE(b === null ? -1 : b.length);
      parts.push(len);
      if (b !== null) parts.push(b);
    });
  }
  return createHash('sha256').update(Buffer.concat(parts)).digest('hex');
}

function hashed(rows: readonly (readonly (string | null)[])[], types: readonly ColumnType[]): string {
  const h = new PortionHash();
  h.add(RowBatch.fromValues(rows.map((row) => row.map((v) => (v === null ? null : Buffer.from(v, 'latin1'))))), types.map((_, j) => j), types);
  return h.hex();
}

describe('PortionHash over text-format integers', () => {
  it('gives the codecs\' binary form at the edges of every width', () => {
    const rows: (string | null)[][] = [
      ['0', '0', '0', '0', 'a'],
      ['-0', '-0', '-0', '-0', ''],
      ['007', '-007', '007', '-007', null],
      ['32767', '2147483647', '4294967295', '9223372036854775807', 'b'],
      ['-32768', '-2147483648', '999999999', '-9223372036854775808', 'c'],
      ['9999', '999999999', '1000000000', '999999999999999', 'd'],
      ['-9999', '-999999999', '1', '-999999999999999', 'e'],
      ['12345', '-1000000000', '3000000000', '9007199254740993', 'f'],
      ['-1', '-1', '42', '-1', 'g'],
      [null, null, null, null, null],
      ['00000000000000000001', '00000000000000000001', '0000000000000001', '0000000000000000000001', 'h'],
    ];
    expect(hashed(rows, TYPES)).toBe(reference(rows, TYPES));
  });

  it('gives the codecs\' binary form for random values of every size', () => {
    const u32 = mulberry32(1717);
    const next = (): number => u32() / 4294967296;
    const int = (digits: number): string => {
      let s = String(1 + Math.floor(next() * 9));
      for (let i = 1; i < digits; i++) s += String(Math.floor(next() * 10));
      return next() < 0.5 ? `-${s}` : s;
    };
    const rows = Array.from({ length: 500 }, () => [
      String(Math.floor(next() * 65536) - 32768),
      String(Math.floor(next() * 4294967296) - 2147483648),
      String(Math.floor(next() * 4294967296)),
      int(1 + Math.floor(next() * 18)),
      next() < 0.1 ? null : int(3),
    ]);
    expect(hashed(rows, TYPES)).toBe(reference(rows, TYPES));
  });

  it.each([
    ['int2 out of range', INT2, '32768'],
    ['int2, not a number', INT2, '12a'],
    ['int4 out of range', INT4, '2147483648'],
    ['int4, a sign alone', INT4, '-'],
    ['int4, a plus sign', INT4, '+5'],
    ['oid, negative', OID, '-5'],
    ['int8 out of range', INT8, '9223372036854775808'],
    ['int8, spaces', INT8, ' 1'],
    ['int4, empty', INT4, ''],
  ])('refuses what the codecs refuse: %s', (_, type, text) => {
    expect(() => canonicalField(Buffer.from(text), type)).toThrow(CodecError);
    expect(() => hashed([[text]], [type])).toThrow(CodecError);
  });
});
