/** Same batch, same output: the clock and the random sequence come from the batch. */
import { afterAll, describe, expect, it } from 'vitest';
import { SandboxPool } from '../../sandbox/index.js';
import { CLOCK, column, row } from './support/batch.js';

const pool = new SandboxPool({ isolates: 2 });
afterAll(() => pool.close());

const NOISY = `(v) => ({
  v,
  r: [Math.random(), Math.random()],
  now: Date.now(),
  date: new Date().toISOString(),
  called: Date(),
  pick: ['a', 'b', 'c', 'd'][Math.floor(Math.random() * 4)],
  id: Math.random().toString(36).slice(2),
})`;

describe('determinism', () => {
  it('gives byte-identical output for the same batch, whatever isolate runs it', async () => {
    const items = Array.from({ length: 50 }, (_, i) => i);
    const runs = await Promise.all([1, 2, 3, 4].map(() => pool.run(column(NOISY, items, { seed: 'fn-hash:input-hash' }))));
    const first = JSON.stringify(runs[0]?.items);
    for (const run of runs) expect(JSON.stringify(run.items)).toBe(first);
  });

  it('draws a different sequence for a different seed', async () => {
    const a = await pool.run(column('(v) => Math.random()', [0, 0, 0], { seed: 'one' }));
    const b = await pool.run(column('(v) => Math.random()', [0, 0, 0], { seed: 'two' }));
    expect(a.items).not.toEqual(b.items);
    for (const x of [...a.items, ...b.items]) {
      expect(typeof x).toBe('number');
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
    }
    // One sequence per batch: items draw successive numbers.
    expect(new Set(a.items).size).toBe(3);
  });

  it('restarts the sequence for each batch', async () => {
    const a = await pool.run(column('(v) => Math.random()', [0], { seed: 'again' }));
    await pool.run(column('(v) => Math.random()', [0, 0, 0, 0], { seed: 'something else' }));
    const b = await pool.run(column('(v) => Math.random()', [0], { seed: 'again' }));
    expect(b.items).toEqual(a.items);
  });

  it('spreads random numbers evenly', async () => {
    const result = await pool.run(column('(v) => Math.floor(Math.random() * 10)', Array.from({ length: 10_000 }, () => 0)));
    const counts = new Array<number>(10).fill(0);
    for (const x of result.items) counts[x as number] = (counts[x as number] ?? 0) + 1;
    for (const count of counts) expect(count).toBeGreaterThan(850);
  });

  it('fixes Date.now() and new Date() to the batch clock', async () => {
    const clock = new Date('2030-12-31T23:59:59.999Z');
    const result = await pool.run(
      column(
        `(v) => {
          const start = Date.now();
          let spin = 0;
          while (spin < 1e5) spin++;
          return [start, Date.now(), new Date().getTime(), new Date(v).toISOString(), new Date(2001, 1, 3).getFullYear(),
            Date.UTC(2000, 0, 1), Date.parse('2000-01-01T00:00:00Z'), typeof Date(), new Date() instanceof Date,
            Date.prototype.constructor === Date, Date.length, Date.name, new Intl.DateTimeFormat('en', { timeZone: 'UTC', year: 'numeric' }).format(),
            new Intl.DateTimeFormat('en', { timeZone: 'UTC', year: 'numeric' }).formatToParts()[0].value,
            new (class Later extends Date {})().getTime()];
        }`,
        [0],
        { clock },
      ),
    );
    const t = clock.getTime();
    expect(result.items).toEqual([
      [t, t, t, '1970-01-01T00:00:00.000Z', 2001, Date.UTC(2000, 0, 1), Date.UTC(2000, 0, 1), 'string', true, true, 7, 'Date', '2030', '2030', t],
    ]);
  });

  it('returns the clock as a Date value', async () => {
    const result = await pool.run(row('(r) => ({ ...r, at: new Date() })', [{ id: 1 }]));
    expect(result.items).toEqual([{ id: 1, at: CLOCK }]);
  });
});
