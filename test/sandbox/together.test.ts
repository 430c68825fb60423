/**
 * SandboxPool.runTogether: the batches of one stage of a chain (large ones too) leave in one call
 * into an isolate, each settling on its own as run() would settle it; a call that fails as a whole
 * runs each batch again alone, so only the culprit fails, with its own error and full limits.
 */
import { describe, expect, it } from 'vitest';
import { SandboxPool, type TextColumn } from '../../sandbox/index.js';
import { column } from './support/batch.js';

const MASK = "(v) => v === null ? null : v.slice(0, 2) + '***'";
const UPPER = '(v) => v === null ? null : v.toUpperCase()';
const DOUBLE = '(v) => v * 2';

async function withPool<T>(opts: ConstructorParameters<typeof SandboxPool>[0], body: (p: SandboxPool) => Promise<T>): Promise<T> {
  const own = new SandboxPool(opts);
  try {
    return await body(own);
  } finally {
    await own.close();
  }
}

function text(values: readonly (string | null)[]): TextColumn {
  return { text: values.filter((v) => v !== null).join(''), lengths: Int32Array.from(values.map((v) => (v === null ? -1 : v.length))) };
}

const many = (n: number, f: (i: number) => string): string[] => Array.from({ length: n }, (_, i) => f(i));

describe('batches run together', () => {
  it('leave in one call however large, each with what run() gives it alone', async () => {
    await withPool({ isolates: 2 }, async (p) => {
      const emails = many(5000, (i) => `user${i}@example.com`);
      const phones = [...many(4999, (i) => `tel:${i}`), null];
      const numbers = many(3000, (i) => String(i)).map(Number);
      const batches = [column(MASK, []), column(UPPER, []), column(DOUBLE, numbers)];
      const made = [
        { ...batches[0]!, items: text(emails) },
        { ...batches[1]!, items: text(phones) },
        batches[2]!,
      ];
      const alone = await Promise.all(made.map((b) => p.run(b)));
      const before = p.stats.calls;
      const together = await Promise.all(p.runTogether(made));
      expect(p.stats.calls - before).toBe(1);
      expect(together).toEqual(alone);
      expect('items' in together[2]! && together[2].items).toEqual(numbers.map((v) => v * 2));
    });
  });

  it('fail only the batch that failed: the others of the call keep their results', async () => {
    await withPool({ isolates: 1 }, async (p) => {
      const settled = await Promise.allSettled(p.runTogether([
        column(DOUBLE, [1, 2]),
        column("(v) => { if (v === 7) throw new Error('seven'); return v; }", [6, 7, 8]),
        column('(v) => {', [1]),
        column(DOUBLE, [3]),
      ]));
      expect(settled.map((s) => (s.status === 'fulfilled' ? ('items' in s.value ? s.value.items : null) : (s.reason as { kind: string; index?: number }).kind))).toEqual([
        [2, 4],
        'throw',
        'compile',
        [6],
      ]);
      expect(settled[1]).toMatchObject({ reason: { index: 1 } });
    });
  });

  it('run each batch again alone when the call times out: only the endless one fails, with its own limit', async () => {
    await withPool({ isolates: 1, timeoutMs: 300 }, async (p) => {
      await p.run(column(DOUBLE, [0]));
      const before = p.stats.calls;
      const settled = await Promise.allSettled(p.runTogether([column(DOUBLE, [1]), column('(v) => { for (;;) {} }', [2]), column(DOUBLE, [3])]));
      expect(settled[0]).toEqual({ status: 'fulfilled', value: { items: [2] } });
      expect(settled[1]).toMatchObject({ status: 'rejected', reason: { kind: 'timeout', message: expect.stringMatching(/did not finish within 300 ms/) as unknown } });
      expect(settled[2]).toEqual({ status: 'fulfilled', value: { items: [6] } });
      // The shared call, then each batch alone.
      expect(p.stats.calls - before).toBe(4);
    });
  });

  it('rejects a malformed batch at once and still runs the others', async () => {
    await withPool({ isolates: 1 }, async (p) => {
      const bad = { ...column(DOUBLE, [1]), clock: new Date(Number.NaN) };
      const settled = await Promise.allSettled(p.runTogether([column(DOUBLE, [1]), bad, column(DOUBLE, [2])]));
      expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect(settled[1]).toMatchObject({ reason: expect.any(TypeError) as unknown });
    });
  });
});
