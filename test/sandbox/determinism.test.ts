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

  describe('a seed given as a function', () => {
    // Each case uses its own source: the pool remembers which functions draw random numbers.
    const counted = (seed: string): { calls: number; seed: () => string } => {
      const c = { calls: 0, seed: () => (c.calls++, seed) };
      return c;
    };

    it('is never asked for when the transform draws no random number', async () => {
      const s = counted('unused');
      const result = await pool.run(column('(v) => v * 2 /* no draw */', [1, 2, 3], { seed: s.seed }));
      expect(result.items).toEqual([2, 4, 6]);
      expect(s.calls).toBe(0);
    });

    it('gives what the same seed given as a string gives, asked for once per batch', async () => {
      const source = '(v) => v + Math.random() /* lazy */';
      const eager = await pool.run(column(source, [1, 2, 3], { seed: 'lazy seed' }));
      const first = counted('lazy seed');
      const lazy = await pool.run(column('(v) => v + Math.random() /* lazy, first */', [1, 2, 3], { seed: first.seed }));
      expect(lazy.items).toEqual(eager.items);
      expect(first.calls).toBe(1);
      // Known now to draw: seeded before it runs, still once.
      const again = counted('lazy seed');
      const second = await pool.run(column('(v) => v + Math.random() /* lazy, first */', [1, 2, 3], { seed: again.seed }));
      expect(second.items).toEqual(eager.items);
      expect(again.calls).toBe(1);
    });

    it('runs again seeded a transform that caught the unseeded draw', async () => {
      const source = '(v) => { try { return Math.random(); } catch (e) { return -1; } }';
      const eager = await pool.run(column(source, [0, 0], { seed: 'caught' }));
      const lazy = await pool.run(column(`${source} /* lazy */`, [0, 0], { seed: counted('caught').seed }));
      expect(lazy.items).toEqual(eager.items);
      expect(lazy.items).not.toContain(-1);
    });

    it('fails the batch when the seed function throws', async () => {
      const err = await pool.run(column('(v) => Math.random() /* throwing seed */', [0], { seed: () => { throw new Error('no seed here'); } })).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toBe('no seed here');
    });
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
