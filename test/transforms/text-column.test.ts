/** Text fields as one TextColumn into the sandbox and back (plugins/transforms/text-column.ts). */
import { describe, expect, it } from 'vitest';
import { UNCHANGED } from '../../sandbox/index.js';
import { CodecError } from '../../plugins/transforms/codecs.js';
import { crossesAsText, fromTextColumn, toTextColumn } from '../../plugins/transforms/text-column.js';

const TEXT = { oid: 25, typmod: -1, format: 0 } as const;
const b = (s: string): Buffer => Buffer.from(s, 'utf8');

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
    const col = toTextColumn([b('ab'), null, b(''), b(long), b('c')]);
    expect(col).not.toBeNull();
    expect(col!.text).toBe(`ab${long}c`);
    expect([...col!.lengths]).toEqual([2, -1, 0, 200, 1]);
  });

  it('are not made of fields that are not all ASCII', () => {
    expect(toTextColumn([b('ab'), b('héllo')])).toBeNull();
  });

  it('come back as the original bytes where unchanged, slices of one buffer where changed', () => {
    const raws = [b('keep'), b('change'), null, b('gone')];
    const out = fromTextColumn({ text: 'CHANGEDnew', lengths: Int32Array.from([UNCHANGED, 7, 3, -1]) }, raws, TEXT);
    expect(out[0]).toBe(raws[0]);
    expect(out.map((v) => v?.toString() ?? null)).toEqual(['keep', 'CHANGED', 'new', null]);
  });

  it('encode values that are not ASCII through the codec', () => {
    const out = fromTextColumn({ text: 'héllo😀', lengths: Int32Array.from([5, 2]) }, [b('a'), b('b')], TEXT);
    expect(out.map((v) => v?.toString('utf8'))).toEqual(['héllo', '😀']);
  });

  it('refuse what text cannot hold, as the codec does', () => {
    expect(() => fromTextColumn({ text: 'a\u0000b', lengths: Int32Array.from([3]) }, [b('x')], TEXT)).toThrow(CodecError);
    expect(() => fromTextColumn({ text: 'a\ud800', lengths: Int32Array.from([2]) }, [b('x')], TEXT)).toThrow(/surrogate/);
  });
});
