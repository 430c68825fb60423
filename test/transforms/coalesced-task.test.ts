import { describe, expect, it } from 'vitest';
import { CoalescedTask } from '../../plugins/transforms/coalesced-task.js';

describe('a coalesced task (registry reloads asked for by NOTIFY)', () => {
  it('runs once in flight and once pending however many ask, and each asker waits for a run that started after it asked', async () => {
    const starts: number[] = [];
    let asked = 0;
    const task = new CoalescedTask(async () => {
      starts.push(asked);
      await new Promise((r) => setTimeout(r, 20));
    }, 0);
    // A burst: one run, started after the last of them asked.
    await Promise.all(Array.from({ length: 500 }, () => (asked++, task.request())));
    expect(starts).toEqual([500]);
    // A run in flight and a burst meanwhile: the burst shares one pending run after it.
    const inFlight = (asked++, task.request());
    await new Promise((r) => setTimeout(r, 5));
    expect(starts).toEqual([500, 501]);
    let done = 0;
    const burst = Array.from({ length: 500 }, () => (asked++, task.request().then(() => void done++)));
    await inFlight;
    expect(done).toBe(0);
    await Promise.all(burst);
    expect(starts).toEqual([500, 501, 1001]);
  });

  it('keeps runs at least the minimum interval apart under a steady flood', async () => {
    const starts: number[] = [];
    const task = new CoalescedTask(async () => void starts.push(performance.now()), 50);
    const until = performance.now() + 500;
    const waits: Promise<void>[] = [];
    while (performance.now() < until) {
      waits.push(task.request());
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(waits);
    expect(waits.length).toBeGreaterThan(200);
    expect(starts.length).toBeLessThanOrEqual(500 / 50 + 2);
    for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBeGreaterThanOrEqual(45);
  });

  it('survives a failing run', async () => {
    let n = 0;
    const task = new CoalescedTask(async () => {
      n++;
      throw new Error('database away');
    }, 0);
    await task.request();
    await task.request();
    expect(n).toBe(2);
  });
});
