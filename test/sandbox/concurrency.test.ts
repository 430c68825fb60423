/** Batches run on isolated-vm's threads, not on the event loop. */
import { afterAll, describe, expect, it } from 'vitest';
import { SandboxPool } from '../../sandbox/index.js';
import { column } from './support/batch.js';

const pool = new SandboxPool({ isolates: 1, timeoutMs: 30_000 });
afterAll(() => pool.close());

// Inside, Date.now() is the batch clock, so a busy loop is sized in iterations.
const SPIN = '(n) => { let x = 0; for (let i = 0; i < n; i++) x = (x + i) | 0; return x; }';

describe('concurrency', () => {
  it('lets timers and I/O callbacks run while a batch is busy (the order of events shows it, no timing)', async () => {
    const events: string[] = [];
    // Had the batch run on this thread, its promise would settle (a microtask) before any timer.
    const timer = new Promise<void>((resolve) => setTimeout(() => {
      events.push('timer');
      resolve();
    }, 0));
    const immediate = new Promise<void>((resolve) => setImmediate(() => {
      events.push('immediate');
      resolve();
    }));
    const result = await pool.run(column(SPIN, [2e8]));
    events.push('batch');
    await Promise.all([timer, immediate]);
    expect(result.items).toHaveLength(1);
    expect(events.indexOf('batch')).toBe(2);
  });
});
