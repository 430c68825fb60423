/** Text fields as one TextColumn into the sandbox and back (plugins/transforms/text-column.ts). */
import { describe, expect, it } from 'vitest';
import { UNCHANGED } from '../../sandbox/index.js';
import { CodecError } from '../../plugins/shared/codecs/codecs.js';
import { RowBatch } from '../../proxy/wire/row-batch.js';
import { crossesAsText, fromTextColumn, toTextColumn } from '../../plugins/transforms/text-column.js';

const TEXT = { oid: 25, typmod: -1, format: 0 } as const;
const b = (s: string): Buffer => Buffer.from(s, 'utf8');
/** A one-column batch of these values. */
const batchOf = (values: readonly (Buffer | null)[]): RowBatch => RowBatch.fromValues(values.map((v) => [v]));

describe('text columns', () => {
  it('are text, and varchar without a length, in either format', () => {
    expect(crossesAsText(TEXT)).toBe(true);
    expect(crossesAsText({ oid: 25, typmod: -1, format: 1 })).toBe(true);
    expect(crossesAsText({ oid: 1043, typmod: -1, format: 0 })).toBe(true);
    expect(crossesAsText({ oid: 1043, typmod: 14, format: 0 })).toBe(false);
    expect(crossesAsText({ oid: 1042, typmod: -1, format: 0 })).toBe(false);
    expect(crossesAsText({ oid: 23, typmod: -1, format: 0 })).toBe(false);
  });

  it('lay ASCII fields end to end, with -1 for NULL', () => {
    const long = 'x'.repeat(200);
    const col = toTextColumn(batchOf([b('ab'), null, b(''), b(long), b('c')]), 0);
    expect(col).not.toBeNull();
    expect(col!.text).toBe(`ab${long}c`);
    expect([...col!.lengths]).toEqual([2, -1, 0, 200, 1]);
  });

  it('are not made of fields that are not all ASCII', () => {
    expect(toTextColumn(batchOf([b('ab'), b('héllo')]), 0)).toBeNull();
  });

  it('come back in place: unchanged values as they were, changed ones as their new bytes', () => {
    const rows = RowBatch.fromValues([[b('1'), b('keep')], [b('2'), b('change')], [b('3'), null], [b('4'), b('gone')]]);
    fromTextColumn({ text: 'CHANGEDnew', lengths: Int32Array.from([UNCHANGED, 7, 3, -1]) }, rows, 1, TEXT);
    expect(rows.values().map((r) => r.map((v) => v?.toString() ?? null))).toEqual([['1', 'keep'], ['2', 'CHANGED'], ['3', 'new'], ['4', null]]);
  });

  it('encode values that are not ASCII through the codec', () => {
    const rows = batchOf([b('a'), b('b')]);
    fromTextColumn({ text: 'héllo😀', lengths: Int32Array.from([5, 2]) }, rows, 0, TEXT);
    expect(rows.values().map((r) => r[0]?.toString('utf8'))).toEqual(['héllo', '😀']);
  });

  it('refuse what text cannot hold, as the codec does', () => {
    expect(() => fromTextColumn({ text: 'a\u0000b', lengths: Int32Array.from([3]) }, batchOf([b('x')]), 0, TEXT)).toThrow(CodecError);
    expect(() => fromTextColumn({ text: 'a\ud800', lengths: Int32Array.from([2]) }, batchOf([b('x')]), 0, TEXT)).toThrow(/surrogate/);
  });
});
