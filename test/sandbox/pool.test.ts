import { afterAll, describe, expect, it } from 'vitest';
import { SandboxPool, functionHash, sandboxFunction, type SandboxFunction } from '../../sandbox/index.js';
import { CLOCK, column, row, failure } from './support/batch.js';

const pool = new SandboxPool();
afterAll(() => pool.close());


describe('column transforms', () => {
  it('maps every value, in order', async () => {
    const result = await pool.run(column("(v) => v.slice(0, 2) + '***'", ['alice', 'bob', 'carol']));
    expect(result.items).toEqual(['al***', 'bo***', 'ca***']);
  });

  it('accepts a named function expression and an immediately invoked setup', async () => {
    const named = await pool.run(column('function mask(v, p) { return p.keep ? v : null; }', ['a', 'b'], { params: { keep: false } }));
    expect(named.items).toEqual([null, null]);
    const setup = await pool.run(column("(() => { const re = /[0-9]/g; return (v) => v.replace(re, '#'); })()", ['a1b22']));
    expect(setup.items).toEqual(['a#b##']);
  });

  it('accepts a trailing line comment', async () => {
    const result = await pool.run(column('(v) => v + 1 // add one', [1]));
    expect(result.items).toEqual([2]);
  });

  it('passes params and ctx, frozen', async () => {
    const result = await pool.run(
      column(
        '(v, params, ctx) => { "use strict"; let frozen = false; try { params.n = 0; } catch { frozen = true; } return [v * params.n, ctx.user, ctx.roles[1], frozen, Object.isFrozen(ctx.roles)]; }',
        [1, 2],
        { params: { n: 10 }, ctx: { user: 'alice', roles: ['reader', 'auditor'] } },
      ),
    );
    expect(result.items).toEqual([
      [10, 'alice', 'auditor', true, true],
      [20, 'alice', 'auditor', true, true],
    ]);
  });

  it('handles an empty batch', async () => {
    expect((await pool.run(column('(v) => v', []))).items).toEqual([]);
  });

  it('chains: the output of one batch is the input of the next', async () => {
    const first = await pool.run(column('(v) => v.trim()', ['  a ', ' b']));
    const second = await pool.run(column('(v) => v.toUpperCase()', first.items));
    const third = await pool.run(column("(v, p) => p.prefix + v", second.items, { params: { prefix: '>' } }));
    expect(third.items).toEqual(['>A', '>B']);
  });
});

describe('row transforms', () => {
  it('rewrites rows and drops those mapped to null', async () => {
    const rows = [
      { id: 1, email: 'a@example.com', tenant: 't1' },
      { id: 2, email: 'b@example.com', tenant: 't2' },
      { id: 3, email: 'c@example.com', tenant: 't1' },
    ];
    const result = await pool.run(
      row("(r, p, ctx) => r.tenant !== ctx.tenant ? null : { ...r, email: r.email.replace(/^[^@]+/, p.mask) }", rows, {
        params: { mask: '***' },
        ctx: { tenant: 't1' },
      }),
    );
    expect(result.items).toEqual([{ id: 1, email: '***@example.com', tenant: 't1' }, null, { id: 3, email: '***@example.com', tenant: 't1' }]);
  });

  it('may mutate and return the row it was given', async () => {
    const result = await pool.run(row('(r) => { r.seen = true; delete r.secret; return r; }', [{ a: 1, secret: 's' }]));
    expect(result.items).toEqual([{ a: 1, seen: true }]);
  });

  it('rejects a row transform returning something other than an object or null', async () => {
    for (const source of ['(r) => 1', '(r) => [r]', '(r) => new Date(0)', '(r) => new Uint8Array(1)']) {
      const err = await failure(pool.run(row(source, [{ a: 1 }])));
      expect(err.kind).toBe('invalid-output');
      expect(err.message).toMatch(/a row transform must return an object or null/);
    }
  });
});

describe('failures', () => {
  it('reports a throw with the message and the item index', async () => {
    const err = await failure(pool.run(column("(v) => { if (v === 3) throw new RangeError('bad value ' + v); return v; }", [1, 2, 3, 4], { name: 'picky' })));
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('SandboxError');
    expect(err.kind).toBe('throw');
    expect(err.transform).toBe('picky');
    expect(err.index).toBe(2);
    expect(err.message).toBe('transform "picky" threw at item 2: RangeError: bad value 3');
  });

  it('describes thrown non-errors', async () => {
    expect((await failure(pool.run(column("(v) => { throw 'plain string'; }", [1])))).message).toMatch(/: plain string$/);
    expect((await failure(pool.run(column('(v) => { throw 42n; }', [1])))).message).toMatch(/: 42$/);
    expect((await failure(pool.run(column("(v) => { throw { message: 'from an object' }; }", [1])))).message).toMatch(/: from an object$/);
    expect((await failure(pool.run(column('(v) => { throw null; }', [1])))).message).toMatch(/: null$/);
    expect((await failure(pool.run(column("(v) => { throw Symbol('s'); }", [1])))).message).toMatch(/: Symbol\(s\)$/);
    const custom = await failure(pool.run(column("(v) => { class Oops extends Error { constructor(m) { super(m); this.name = 'Oops'; } } throw new Oops('mine'); }", [1])));
    expect(custom.message).toMatch(/: Oops: mine$/);
  });

  it('truncates long messages', async () => {
    const err = await failure(pool.run(column("(v) => { throw new Error('x'.repeat(100000)); }", [1])));
    expect(err.message.length).toBeLessThan(2200);
  });

  it.each([
    ['a syntax error', '(v) => {', /Unexpected end of input|Unexpected token/],
    ['an empty source', '', /Unexpected token/],
    ['a statement', 'const f = (v) => v', /Unexpected token 'const'/],
    ['an export', 'export default (v) => v', /Unexpected token 'export'/],
    ['a non-function', '42', /must evaluate to a function, not a number/],
    ['an object', '({ transform: (v) => v })', /must evaluate to a function, not an object/],
    ['an async function', 'async (v) => v', /not async, not a generator/],
    ['a generator', 'function* (v) { yield v; }', /not async, not a generator/],
    ['a throwing setup', "(() => { throw new Error('setup failed'); })()", /evaluating the source threw Error: setup failed/],
    ['a parenthesis escape', '1); (0', /must evaluate to a function|Unexpected token/],
  ])('rejects %s with kind compile', async (_, source, message) => {
    const err = await failure(pool.run(column(source, [1])));
    expect(err.kind).toBe('compile');
    expect(err.message).toMatch(message);
    expect(err.index).toBeUndefined();
  });

  it('rejects a function whose hash does not match its source', async () => {
    const fn = { ...sandboxFunction('forged', 'column', '(v) => v'), source: '(v) => "other"' };
    const err = await failure(pool.run({ fn, params: null, ctx: null, clock: CLOCK, seed: '', items: [1] }));
    expect(err.kind).toBe('compile');
    expect(err.message).toMatch(/hash does not match/);
  });

  it('checks the hash again when a function object that ran before has another source', async () => {
    const fn: { -readonly [K in keyof SandboxFunction]: SandboxFunction[K] } = { ...sandboxFunction('changed', 'column', '(v) => v') };
    expect((await pool.run({ fn, params: null, ctx: null, clock: CLOCK, seed: '', items: [1] })).items).toEqual([1]);
    fn.source = '(v) => "other"';
    const err = await failure(pool.run({ fn, params: null, ctx: null, clock: CLOCK, seed: '', items: [1] }));
    expect(err.kind).toBe('compile');
    expect(err.message).toMatch(/hash does not match/);
  });

  it('rejects undefined, which is not a value', async () => {
    const err = await failure(pool.run(column('(v) => { v; }', [1])));
    expect(err.kind).toBe('invalid-output');
    expect(err.message).toMatch(/undefined \(return null for SQL NULL\) at \$/);
    const nested = await failure(pool.run(row('(r) => ({ ...r, gone: undefined })', [{ a: 1 }])));
    expect(nested.message).toMatch(/at \$\.gone/);
  });

  it('rejects malformed batches with a TypeError before running them', async () => {
    const fn = sandboxFunction('ok', 'column', '(v) => v');
    await expect(pool.run({ fn, params: {}, ctx: {}, clock: new Date(NaN), seed: '', items: [] })).rejects.toThrow(TypeError);
    await expect(pool.run({ fn, params: {}, ctx: {}, clock: CLOCK, seed: '', items: [() => 1] as never })).rejects.toThrow(
      /not structured-clone data/,
    );
    await expect(pool.run({ fn: { ...fn, kind: 'table' as never }, params: {}, ctx: {}, clock: CLOCK, seed: '', items: [] })).rejects.toThrow(TypeError);
  });

  it('keeps working after every kind of failure', async () => {
    expect((await pool.run(column('(v) => v + 1', [1]))).items).toEqual([2]);
  });
});

describe('the function cache', () => {
  it('compiles a source once per isolate and counts hits', async () => {
    const local = new SandboxPool({ isolates: 1 });
    try {
      const source = '(v) => v * 3';
      await local.run(column(source, [1]));
      expect(local.stats).toMatchObject({ compiled: 1, cacheHits: 0 });
      await local.run(column(source, [2]));
      await local.run(column(source, [3], { name: 'same source, other name' }));
      expect(local.stats).toMatchObject({ compiled: 1, cacheHits: 2 });
      await local.run(column('(v) => v * 4', [1]));
      expect(local.stats).toMatchObject({ compiled: 2, cacheHits: 2, isolatesCreated: 1 });
    } finally {
      await local.close();
    }
  });

  it('evicts the least recently used source beyond 256 per isolate', async () => {
    const local = new SandboxPool({ isolates: 1 });
    try {
      const first = '(v) => v + 0';
      await local.run(column(first, [1]));
      for (let i = 1; i <= 256; i++) await local.run(column(`(v) => v + ${i}`, [1]));
      expect(local.stats.compiled).toBe(257);
      await local.run(column(first, [1]));
      expect(local.stats).toMatchObject({ compiled: 258, cacheHits: 0 });
      // The most recent ones are still there.
      await local.run(column('(v) => v + 256', [1]));
      expect(local.stats.cacheHits).toBe(1);
    } finally {
      await local.close();
    }
  });

  it('re-creates the function for every batch: closure state does not outlive a batch', async () => {
    const local = new SandboxPool({ isolates: 1 });
    try {
      const counter = column('(() => { let n = 0; return (v) => v + n++; })()', [0, 0, 0]);
      expect((await local.run(counter)).items).toEqual([0, 1, 2]);
      expect((await local.run(counter)).items).toEqual([0, 1, 2]);
      expect(local.stats.cacheHits).toBe(1);
    } finally {
      await local.close();
    }
  });

  it('leaves no global state behind for the next batch', async () => {
    const local = new SandboxPool({ isolates: 1 });
    try {
      const write = column("(v) => { try { globalThis.leak = v; } catch {} try { Function('leak2 = 1')(); } catch {} return typeof leak2; }", [1]);
      expect((await local.run(write)).items).toEqual(['undefined']);
      const read = await local.run(column("(v) => [typeof globalThis.leak, typeof globalThis.leak2, Object.isFrozen(Array.prototype)]", [1]));
      expect(read.items).toEqual([['undefined', 'undefined', true]]);
    } finally {
      await local.close();
    }
  });
});

describe('the pool', () => {
  it('queues batches beyond its size and never creates more isolates than that', async () => {
    const local = new SandboxPool({ isolates: 2 });
    try {
      const square = '(v) => { let i = 0; while (i < 1e6) i++; return v * v; }';
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => local.run(column(square, [i]))));
      expect(results.map((r) => r.items[0])).toEqual(Array.from({ length: 12 }, (_, i) => i * i));
    } finally {
      await local.close();
    }
    // Both were asked for; the second may still have been starting when the first finished the queue.
    expect(local.stats.isolatesCreated).toBeGreaterThanOrEqual(1);
    expect(local.stats.isolatesCreated).toBeLessThanOrEqual(2);
    expect(local.stats.isolatesDisposed).toBe(local.stats.isolatesCreated);
  });

  it('fails queued batches on close and refuses new ones', async () => {
    const local = new SandboxPool({ isolates: 1 });
    // Once the isolate exists, a batch starts at the end of the turn of the event loop it came in.
    await local.run(column('(v) => v', [0]));
    const running = local.run(column('(v) => { let i = 0; while (i < 2e6) i++; return v; }', [1]));
    await new Promise(setImmediate);
    const queued = local.run(column('(v) => v', [2]));
    const closed = local.close();
    await expect(queued).rejects.toThrow(/closed before the batch ran/);
    expect((await running).items).toEqual([1]);
    await closed;
    await expect(local.run(column('(v) => v', [3]))).rejects.toThrow(/closed/);
    expect(local.stats.isolatesDisposed).toBe(1);
  });

  it('validates its options', () => {
    expect(() => new SandboxPool({ memoryMb: 4 })).toThrow(RangeError);
    expect(() => new SandboxPool({ timeoutMs: 0 })).toThrow(RangeError);
    expect(() => new SandboxPool({ timeoutMs: 0.5 })).toThrow(RangeError);
    expect(() => new SandboxPool({ isolates: 0 })).toThrow(RangeError);
  });

  it('exposes a hash that names the runtime', () => {
    expect(functionHash('(v) => v')).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('small batches run together', () => {
  it('gives each batch of a shared call its own result, and a failing batch fails alone', async () => {
    const own = new SandboxPool({ isolates: 1, timeoutMs: 200 });
    try {
      // One isolate and many batches at once: the waiting ones share calls into the isolate.
      const batches = Array.from({ length: 40 }, (_, i) => {
        if (i === 7) return own.run(column('(v) => { for (;;) {} }', [i]));
        if (i === 13) return own.run(column('(v) => { throw new Error("thirteen") }', [i]));
        return own.run(column('(v, p, ctx) => v * 2 + ctx.k', [i, i + 1], { ctx: { k: i } }));
      });
      const settled = await Promise.allSettled(batches);
      settled.forEach((r, i) => {
        if (i === 7) expect(r).toMatchObject({ status: 'rejected', reason: { kind: 'timeout' } });
        else if (i === 13) expect(r).toMatchObject({ status: 'rejected', reason: { kind: 'throw', message: expect.stringContaining('thirteen') as unknown } });
        else expect(r).toEqual({ status: 'fulfilled', value: { items: [i * 3, (i + 1) * 2 + i] } });
      });
    } finally {
      await own.close();
    }
  });
});
