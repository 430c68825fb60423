import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PortionHash } from '../../plugins/shared/canonical-hash.js';
import { RowBatch } from '../../proxy/wire/row-batch.js';
import type { ColumnType } from '../../plugins/shared/codecs/codecs.js';
import { mulberry32 } from '../support/rng.js';

const TEXT: ColumnType = { oid: 25, typmod: -1, format: 0 };
const INT4_TEXT: ColumnType = { oid: 23, typmod: -1, format: 0 };

/** The documented layout written out naively: per row Int16 n, per field Int32 length (-1: NULL) and bytes. */
function reference(rows: readonly (readonly (Buffer | null)[])[]): string {
  const parts: Buffer[] = [];
  for (const row of rows) {
    const head = Buffer.alloc(2);
    head.writeInt16BE(row.length);
    parts.push(head);
    for (const v of row) {
      const len = Buffer.alloc(4);
      len.writeInt32BE(v === null ? -1 : v.length);
      parts.push(len);
      if (v !== null) parts.push(v);
    }
  }
  return createHash('sha256').update(Buffer.concat(parts)).digest('hex');
}

describe('PortionHash', () => {
  it('hashes the binary DataRow layout of the chosen fields, across batches, buffer boundaries and large values', () => {
    const next = mulberry32(4242);
    const rows: (Buffer | null)[][] = [];
    for (let i = 0; i < 30_000; i++) {
      const size = i % 997 === 0 ? 70_000 + (next() % 200_000) : next() % 80;
      rows.push([Buffer.from(String(i)), next() % 11 === 0 ? null : Buffer.alloc(size, next() & 0xff), Buffer.from('x')]);
    }
    const h = new PortionHash();
    // Uneven batches; fields 2 then 1 of each row stand for "table column order" differing from the result's.
    for (let at = 0; at < rows.length; ) {
      const n = 1 + (next() % 700);
      h.add(RowBatch.fromValues(rows.slice(at, at + n)), [2, 1], [TEXT, TEXT]);
      at += n;
    }
    expect(h.hex()).toBe(reference(rows.map((r) => [r[2]!, r[1]!])));
    // Asking again gives the same digest.
    expect(h.hex()).toBe(reference(rows.map((r) => [r[2]!, r[1]!])));
  });

  it('hashes numbered adds in their order, whatever order they come in, and across a gap', () => {
    const next = mulberry32(77);
    const batches: Buffer[][][] = Array.from({ length: 40 }, (_, b) =>
      Array.from({ length: 1 + (next() % 300) }, (_, i) => [Buffer.from(`b${b}r${i}`), Buffer.alloc(next() % 200, b)]));
    const expected = reference(batches.flat().map((r) => [r[1]!, r[0]!]));
    const shuffled = batches.map((rows, order) => ({ rows, order }));
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = next() % (i + 1);
      [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
    }
    const h = new PortionHash();
    for (const { rows, order } of shuffled) {
      const batch = RowBatch.fromValues(rows);
      h.add(batch, [1, 0], [TEXT, TEXT], order);
      // The rows were laid out when added: changing them later changes nothing.
      for (let r = 0; r < batch.rows; r++) batch.set(r, 0, Buffer.from('changed after'));
    }
    expect(h.hex()).toBe(expected);

    // Batch 3 never added (it failed part way): the others still count in their order.
    const gap = new PortionHash();
    const fresh = Array.from({ length: 6 }, (_, b) => [[Buffer.from(`g${b}`)]]);
    for (const order of [5, 0, 4, 2, 1]) gap.add(RowBatch.fromValues(fresh[order]!), [0], [TEXT], order);
    expect(gap.hex()).toBe(reference([0, 1, 2, 4, 5].flatMap((b) => fresh[b]!)));
  });

  it('hashes text-format values of other types in their binary form', () => {
    const h = new PortionHash();
    h.add(RowBatch.fromValues([[Buffer.from('258')], [null]]), [0], [INT4_TEXT]);
    const int4 = Buffer.alloc(4);
    int4.writeInt32BE(258);
    expect(h.hex()).toBe(reference([[int4], [null]]));
  });

  it('refuses rows once the hash was taken', () => {
    const h = new PortionHash();
    h.hex();
    expect(() => h.add(RowBatch.fromValues([[Buffer.from('a')]]), [0], [TEXT])).toThrow(/after the hash was taken/);
  });
});
