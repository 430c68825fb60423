/**
 * Batches submitted in one turn of the event loop leave together, the small ones in one call into
 * an isolate. Each caller still gets its own result, exactly once; a batch that fails on its own
 * fails only its caller; a call that fails as a whole (a timeout, a memory breach) runs each of its
 * batches again alone, so that only the culprit fails, with its own error and full limits.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { SandboxPool } from '../../sandbox/index.js';
import { CLOCK, column, row } from './support/batch.js';

const pool = new SandboxPool({ isolates: 2 });
afterAll(() => pool.close());

const DOUBLE = '(v, p, ctx) => v * 2 + ctx.k';

async function withPool<T>(opts: ConstructorParameters<typeof SandboxPool>[0], body: (p: SandboxPool) => Promise<T>): Promise<T> {
  const own = new SandboxPool(opts);
  try {
    return await body(own);
  } finally {
    await own.close();
  }
}

describe('batches of one turn', () => {
  it('leave in one call, each caller getting its own results in order', async () => {
    await pool.run(column(DOUBLE, [0], { ctx: { k: 0 } }));
    const before = pool.stats.calls;
    const runs = Array.from({ length: 20 }, (_, i) => pool.run(column(DOUBLE, [i, i + 1, i + 2], { ctx: { k: i } })));
    const results = await Promise.all(runs);
    results.forEach((r, i) => expect(r.items).toEqual([3 * i, 3 * i + 2, 3 * i + 4]));
    expect(pool.stats.calls - before).toBe(1);
  });

  it('share calls when many callers each wait for their batch before the next', async () => {
    const before = pool.stats.calls;
    const seen: number[][] = Array.from({ length: 8 }, () => []);
    const caller = async (c: number): Promise<void> => {
      for (let i = 0; i < 25; i++) {
        const v = c * 1000 + i;
        const r = await pool.run(column(DOUBLE, [v], { ctx: { k: c } }));
        seen[c]!.push(r.items[0] as number);
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, c) => caller(c)));
    seen.forEach((values, c) => expect(values).toEqual(Array.from({ length: 25 }, (_, i) => (c * 1000 + i) * 2 + c)));
    // 200 batches in 25 rounds of the eight callers: about one call per round.
    expect(pool.stats.calls - before).toBeLessThanOrEqual(40);
  });

  it('keep every batch hermetic: its own clock, closure state and seeded random sequence', async () => {
    const clocks = Array.from({ length: 6 }, (_, i) => new Date(CLOCK.getTime() + i * 1000));
    const counter = '(() => { let n = 0; return (v) => [v, n++, Date.now(), Math.random()]; })()';
    const make = (i: number): ReturnType<typeof column> => column(counter, [i, i], { clock: clocks[i]!, seed: () => `seed ${i}` });
    const together = await withPool({ isolates: 1 }, (p) => Promise.all(clocks.map((_, i) => p.run(make(i)))));
    const alone = await withPool({ isolates: 1 }, async (p) => {
      const out = [];
      for (let i = 0; i < clocks.length; i++) out.push(await p.run(make(i)));
      return out;
    });
    expect(together).toEqual(alone);
    together.forEach((r, i) => {
      expect(r.items.map((item) => (item as unknown[]).slice(0, 3))).toEqual([
        [i, 0, clocks[i]!.getTime()],
        [i, 1, clocks[i]!.getTime()],
      ]);
    });
  });

  it('leave a large batch a call of its own, and gather the small ones around it', async () => {
    await withPool({ isolates: 2 }, async (p) => {
      await p.run(column(DOUBLE, [0], { ctx: { k: 0 } }));
      const before = p.stats.calls;
      const big = Array.from({ length: 1000 }, (_, i) => i);
      const [a, large, b] = await Promise.all([
        p.run(column(DOUBLE, [1], { ctx: { k: 1 } })),
        p.run(column(DOUBLE, big, { ctx: { k: 0 } })),
        p.run(column(DOUBLE, [2], { ctx: { k: 2 } })),
      ]);
      expect([a.items, b.items]).toEqual([[3], [6]]);
      expect(large.items).toEqual(big.map((v) => v * 2));
      expect(p.stats.calls - before).toBe(2);
    });
  });
});

describe('failures in a shared call', () => {
  it('fail only the batch that threw, returned bad output or did not compile', async () => {
    const settled = await Promise.allSettled([
      pool.run(column(DOUBLE, [1], { ctx: { k: 0 } })),
      pool.run(column("(v) => { throw new Error('mine'); }", [1])),
      pool.run(column(DOUBLE, [2], { ctx: { k: 0 } })),
      pool.run(row('(r) => 1', [{ a: 1 }])),
      pool.run(column('(v) => {', [1])),
      pool.run(column("(v) => 'x'.repeat(2 ** 29)", [1])),
      pool.run(column(DOUBLE, [3], { ctx: { k: 0 } })),
    ]);
    expect(settled.map((s) => (s.status === 'fulfilled' ? s.value.items : (s.reason as { kind: string }).kind))).toEqual([
      [2],
      'throw',
      [4],
      'invalid-output',
      'compile',
      'memory',
      [6],
    ]);
  });

  it('run every batch again alone when the call times out: only the endless one fails', async () => {
    await withPool({ isolates: 1, timeoutMs: 300 }, async (p) => {
      await p.run(column(DOUBLE, [0], { ctx: { k: 0 } }));
      const before = p.stats.calls;
      const runs = Array.from({ length: 10 }, (_, i) =>
        i === 4 ? p.run(column('(v) => { for (;;) {} }', [i])) : p.run(column(DOUBLE, [i], { ctx: { k: 1 } })),
      );
      const settled = await Promise.allSettled(runs);
      settled.forEach((s, i) => {
        if (i === 4) expect(s).toMatchObject({ status: 'rejected', reason: { kind: 'timeout', message: expect.stringMatching(/did not finish within 300 ms/) as unknown } });
        else expect(s).toEqual({ status: 'fulfilled', value: { items: [i * 2 + 1] } });
      });
      // The shared call, then each batch alone.
      expect(p.stats.calls - before).toBe(11);
    });
  });

  it('run every batch again alone on a fresh isolate when the call breaks the memory limit', async () => {
    await withPool({ isolates: 1, memoryMb: 16, timeoutMs: 20_000 }, async (p) => {
      const runs = Array.from({ length: 6 }, (_, i) =>
        i === 2
          ? p.run(column('(v) => { const keep = []; for (;;) keep.push({ v, n: keep.length, pad: [1, 2, 3] }); }', [i]))
          : p.run(column(DOUBLE, [i], { ctx: { k: 0 } })),
      );
      const settled = await Promise.allSettled(runs);
      settled.forEach((s, i) => {
        if (i === 2) expect(s).toMatchObject({ status: 'rejected', reason: { kind: 'memory' } });
        else expect(s).toEqual({ status: 'fulfilled', value: { items: [i * 2] } });
      });
      expect(p.stats.isolatesDisposed).toBeGreaterThanOrEqual(1);
      expect((await p.run(column(DOUBLE, [5], { ctx: { k: 0 } }))).items).toEqual([10]);
    });
  });

  it('settle each batch exactly once, whatever its neighbours did', async () => {
    await withPool({ isolates: 1, timeoutMs: 300 }, async (p) => {
      let settledCount = 0;
      const runs = Array.from({ length: 30 }, (_, i) => {
        const source = i % 10 === 3 ? '(v) => { for (;;) {} }' : i % 7 === 5 ? "(v) => { throw new Error('no'); }" : DOUBLE;
        return p.run(column(source, [i], { ctx: { k: 0 } })).finally(() => settledCount++);
      });
      const settled = await Promise.allSettled(runs);
      expect(settledCount).toBe(30);
      settled.forEach((s, i) => {
        if (i % 10 === 3) expect(s).toMatchObject({ status: 'rejected', reason: { kind: 'timeout' } });
        else if (i % 7 === 5) expect(s).toMatchObject({ status: 'rejected', reason: { kind: 'throw' } });
        else expect(s).toEqual({ status: 'fulfilled', value: { items: [i * 2] } });
      });
    });
  });

  it('still rejects a batch with its own error when the pool closes while its call runs', async () => {
    await withPool({ isolates: 1 }, async (p) => {
      await p.run(column(DOUBLE, [0], { ctx: { k: 0 } }));
      const running = [p.run(column('(v) => { let i = 0; while (i < 2e6) i++; return v; }', [1])), p.run(column(DOUBLE, [2], { ctx: { k: 0 } }))];
      await new Promise(setImmediate);
      const late = p.run(column(DOUBLE, [3], { ctx: { k: 0 } }));
      const closed = p.close();
      await expect(late).rejects.toThrow(/closed before the batch ran/);
      expect((await Promise.all(running)).map((r) => r.items)).toEqual([[1], [4]]);
      await closed;
    });
  });
});
