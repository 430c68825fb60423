import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { batchSeed } from '../../plugins/transforms/batch-seed.js';
import { mulberry32 } from '../support/rng.js';

/**
 * The seed's definition, hashed piece by piece as a reader of the docs would: a replay must draw
 * the same Math.random numbers as the original run, so the bytes hashed may never change.
 */
function reference(functionHash: string, inputs: readonly (Buffer | null)[]): string {
  const h = createHash('sha256').update(functionHash);
  for (const b of inputs) {
    if (b === null) h.update('\u0000N');
    else h.update(`\u0000${b.length}:`).update(b);
  }
  return h.digest('hex');
}

describe('batchSeed', () => {
  it('is SHA-256 of the function hash and each input as \\0N or \\0<length>:<bytes>', () => {
    const fn = 'a'.repeat(64);
    expect(batchSeed(fn, [])).toBe(reference(fn, []));
    const edge = [Buffer.alloc(0), null, Buffer.from('héllo'), Buffer.alloc(9, 1), Buffer.alloc(10, 2), Buffer.alloc(100_000, 3)];
    for (const b of edge) expect(batchSeed(fn, [b])).toBe(reference(fn, [b]));
    expect(batchSeed(fn, edge)).toBe(reference(fn, edge));
  });

  it('matches the definition on random batches', () => {
    const next = mulberry32(20261125);
    for (let round = 0; round < 200; round++) {
      const inputs: (Buffer | null)[] = [];
      const n = next() % 40;
      for (let i = 0; i < n; i++) {
        if (next() % 7 === 0) inputs.push(null);
        else inputs.push(Buffer.from(Array.from({ length: next() % 300 }, () => next() & 0xff)));
      }
      const fn = (next() >>> 0).toString(16);
      expect(batchSeed(fn, inputs)).toBe(reference(fn, inputs));
    }
  });

  it('tells apart a NULL, an empty value and a shifted boundary', () => {
    const fn = 'f';
    const seeds = new Set([
      batchSeed(fn, [null]),
      batchSeed(fn, [Buffer.alloc(0)]),
      batchSeed(fn, [Buffer.from('ab'), Buffer.from('c')]),
      batchSeed(fn, [Buffer.from('a'), Buffer.from('bc')]),
    ]);
    expect(seeds.size).toBe(4);
  });
});
