/** Batches run on isolated-vm's threads, not on the event loop. */
import { performance } from 'node:perf_hooks';
import { afterAll, describe, expect, it } from 'vitest';
import { SandboxPool } from '../../sandbox/index.js';
import { column } from './support/batch.js';

const pool = new SandboxPool({ isolates: 1, timeoutMs: 10_000 });
afterAll(() => pool.close());

// Inside, Date.now() is the batch clock, so a busy loop is sized in iterations, calibrated from here.
const SPIN = '(n) => { let x = 0; for (let i = 0; i < n; i++) x = (x + i) | 0; return x; }';

async function timed(n: number): Promise<number> {
  const start = performance.now();
  await pool.run(column(SPIN, [n]));
  return performance.now() - start;
}

describe('concurrency', () => {
  it('keeps the event loop ticking while a batch runs a 300 ms busy loop', async () => {
    await timed(1e6);
    let n = 1e7;
    let ms = await timed(n);
    while (ms < 50) {
      n *= 4;
      ms = await timed(n);
    }
    const iterations = Math.ceil((n * 300) / ms);

    const ticks: number[] = [];
    const interval = setInterval(() => ticks.push(performance.now()), 10);
    const start = performance.now();
    await pool.run(column(SPIN, [iterations]));
    const end = performance.now();
    clearInterval(interval);

    const elapsed = end - start;
    expect(elapsed).toBeGreaterThan(150);
    const during = ticks.filter((t) => t >= start && t <= end);
    expect(during.length).toBeGreaterThan(elapsed / 10 / 3);
    const gaps = during.slice(1).map((t, i) => t - (during[i] ?? t));
    // Never stalled for anything like the length of the batch.
    expect(Math.max(...gaps)).toBeLessThan(200);
  });
});
