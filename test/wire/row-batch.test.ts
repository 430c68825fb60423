/** RowBatch: DataRows read where their fields lie, changed in place, and encoded back. */
import { describe, expect, it } from 'vitest';
import { PgError } from '../../proxy/errors.js';
import { dataRow } from '../../proxy/wire/backend-messages.js';
import { RowBatch } from '../../proxy/wire/row-batch.js';
import { mulberry32 } from '../support/rng.js';

const text = (rows: RowBatch): (string | null)[][] => rows.values().map((r) => r.map((v) => v?.toString('latin1') ?? null));

describe('RowBatch', () => {
  it('reads frames, and encodes them back byte for byte when nothing changed', () => {
    const next = mulberry32(9);
    const rows = Array.from({ length: 200 }, () =>
      Array.from({ length: 3 }, () => (next() % 7 === 0 ? null : Buffer.alloc(next() % 100, next() & 0xff))));
    const frames = rows.map((r) => dataRow(r));
    const batch = RowBatch.fromFrames(frames);
    expect(batch.rows).toBe(200);
    expect(batch.width).toBe(3);
    expect(batch.values()).toEqual(rows);
    expect(batch.encode()).toEqual(Buffer.concat(frames));
    expect(batch.length(0, 0)).toBe(rows[0]![0] === null ? -1 : rows[0]![0]!.length);
  });

  it('changes fields, drops and reorders rows, and encodes what is left', () => {
    const batch = RowBatch.fromFrames([dataRow([Buffer.from('a'), Buffer.from('1')]), dataRow([Buffer.from('b'), null]), dataRow([Buffer.from('c'), Buffer.from('3')])]);
    const shared = Buffer.from('xxNEWyy');
    batch.setBytes(0, 0, shared, 2, 3);
    batch.set(1, 1, Buffer.from('two'));
    batch.set(2, 1, null);
    expect(text(batch)).toEqual([['NEW', '1'], ['b', 'two'], ['c', null]]);
    batch.keep([2, 0]);
    expect(batch.rows).toBe(2);
    expect(text(batch)).toEqual([['c', null], ['NEW', '1']]);
    expect(batch.encode()).toEqual(Buffer.concat([dataRow([Buffer.from('c'), null]), dataRow([Buffer.from('NEW'), Buffer.from('1')])]));
    const out = Buffer.alloc(8, 0x2e);
    expect(batch.copyField(1, 0, out, 2)).toBe(5);
    expect(out.toString('latin1')).toBe('..NEW...');
  });

  it('refuses DataRows cut short, or of different widths, as protocol violations', () => {
    const whole = dataRow([Buffer.from('abc')]);
    const short = Buffer.from(whole.subarray(0, whole.length - 1));
    for (const frames of [[short], [whole, dataRow([Buffer.from('a'), Buffer.from('b')])]]) {
      let err: unknown;
      try {
        RowBatch.fromFrames(frames);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PgError);
      expect(err).toMatchObject({ code: '08P01', severity: 'FATAL' });
    }
  });
});
