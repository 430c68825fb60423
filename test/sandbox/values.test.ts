/** What crosses the boundary, in both directions, and what the output checks accept. */
import { types } from 'node:util';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { SandboxPool, type SandboxValue } from '../../sandbox/index.js';
import { column, row, failure } from './support/batch.js';

const pool = new SandboxPool({ isolates: 1 });
afterAll(() => pool.close());


const SAMPLES: readonly SandboxValue[] = [
  null,
  true,
  false,
  0,
  -0,
  1.5,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  '',
  'text with \u00e9 and \u{1F600}',
  0n,
  -(2n ** 200n),
  new Date('2020-02-29T12:34:56.789Z'),
  new Uint8Array([0, 1, 254, 255]),
  new Uint8Array(0),
  [],
  [1, 'two', [3n, { four: new Date(4) }]],
  {},
  { nested: { deep: [{ bytes: new Uint8Array([7]) }] }, 'key with spaces': 1, '0': 'index-like key' },
];

describe('values crossing in and out', () => {
  it('arrive inside as the same types', async () => {
    const probe = `(v) => {
      if (v === null) return 'null';
      if (typeof v !== 'object') return typeof v;
      if (v instanceof Date) return 'Date';
      if (v instanceof Uint8Array) return 'Uint8Array';
      if (Array.isArray(v)) return 'Array';
      return Object.getPrototypeOf(v) === Object.prototype ? 'Object' : 'other';
    }`;
    const result = await pool.run(column(probe, SAMPLES));
    const expected = SAMPLES.map((v) => {
      if (v === null) return 'null';
      if (typeof v !== 'object') return typeof v;
      if (v instanceof Date) return 'Date';
      if (v instanceof Uint8Array) return 'Uint8Array';
      return Array.isArray(v) ? 'Array' : 'Object';
    });
    expect(result.items).toEqual(expected);
  });

  it('come back equal, as fresh host values', async () => {
    const result = await pool.run(column('(v) => v', SAMPLES));
    expect(result.items).toEqual(SAMPLES);
    expect(Object.is(result.items[4], -0)).toBe(true);
    result.items.forEach((item, i) => {
      if (typeof item === 'object' && item !== null) {
        expect(item).not.toBe(SAMPLES[i]);
        expect(types.isProxy(item)).toBe(false);
      }
    });
    const date = result.items[12];
    expect(date).toBeInstanceOf(Date);
    const bytes = result.items[13];
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect(Object.getPrototypeOf(result.items[18])).toBe(Object.prototype);
  });

  it('can be made inside: bigint, Date, Uint8Array, nested JSON', async () => {
    const result = await pool.run(
      column(
        `(v) => ({
          big: 10n ** 30n + BigInt(v),
          when: new Date(Date.UTC(2001, 0, 2) + v),
          bytes: Uint8Array.from([v, v + 1, 255]),
          json: JSON.parse('{"a":[1,{"b":null}],"c":"d"}'),
        })`,
        [1],
      ),
    );
    expect(result.items).toEqual([
      {
        big: 10n ** 30n + 1n,
        when: new Date(Date.UTC(2001, 0, 2) + 1),
        bytes: new Uint8Array([1, 2, 255]),
        json: { a: [1, { b: null }], c: 'd' },
      },
    ]);
  });

  it('copy a Uint8Array view exactly, not its whole buffer', async () => {
    const result = await pool.run(column('(v) => new Uint8Array(new ArrayBuffer(16), 4, 3).fill(9)', [null]));
    expect(result.items).toEqual([new Uint8Array([9, 9, 9])]);
    expect((result.items[0] as Uint8Array).buffer.byteLength).toBe(3);
  });

  it('turn a Date subclass instance into a Date', async () => {
    const result = await pool.run(column('(v) => new (class Stamp extends Date {})(v)', [86_400_000]));
    expect(result.items[0]).toEqual(new Date(86_400_000));
    expect(Object.getPrototypeOf(result.items[0])).toBe(Date.prototype);
  });

  it('skip non-enumerable properties, as structured clone and JSON do', async () => {
    const result = await pool.run(row("(r) => Object.defineProperty({ ...r }, 'hidden', { value: 1, enumerable: false })", [{ a: 1 }]));
    expect(result.items).toEqual([{ a: 1 }]);
  });

  it('accept null-prototype objects and return them as ordinary objects', async () => {
    const result = await pool.run(row('(r) => Object.assign(Object.create(null), r)', [{ a: 1 }]));
    expect(result.items).toEqual([{ a: 1 }]);
    expect(Object.getPrototypeOf(result.items[0])).toBe(Object.prototype);
  });

  it('accept 64 levels of nesting and no more', async () => {
    const nest = (levels: number): string => `(v) => { let o = v; for (let i = 0; i < ${levels}; i++) o = [o]; return o; }`;
    await expect(pool.run(column(nest(64), [1]))).resolves.toBeDefined();
    const err = await failure(pool.run(column(nest(65), [1])));
    expect(err.kind).toBe('invalid-output');
    expect(err.message).toMatch(/more than 64 levels of nesting at \$(\[0\]){64}$/);
  });

  it.each([
    ['a sparse array', '(v) => [1, , 3]', /a hole \(sparse array\) at \$\[1\]/],
    ['an Array subclass', '(v) => new (class List extends Array {})()', /an instance of an Array subclass/],
    ['a symbol key', "(v) => ({ [Symbol('k')]: 1 })", /a symbol-keyed property/],
    ['a Float64Array', '(v) => new Float64Array(2)', /a Float64Array \(of typed arrays only Uint8Array crosses\)/],
    ['an ArrayBuffer', '(v) => new ArrayBuffer(8)', /an ArrayBuffer instance/],
    ['a boxed string', "(v) => ({ s: new String('x') })", /a String instance .* at \$\.s/],
    ['a Promise', '(v) => Promise.resolve(v)', /a Promise instance/],
    ['an Error', "(v) => new Error('e')", /an Error instance/],
    ['a RegExp', '(v) => /x/', /a RegExp instance/],
    ['a WeakMap', '(v) => new WeakMap()', /a WeakMap instance/],
  ])('reject %s', async (_, source, message) => {
    const err = await failure(pool.run(column(source, [1])));
    expect(err.kind).toBe('invalid-output');
    expect(err.message).toMatch(message);
    expect(err.index).toBe(0);
  });

  it('names the path of what was wrong', async () => {
    const err = await failure(pool.run(row('(r) => ({ ok: 1, list: [1, 2, { deep: { fn() {} } }] })', [{}, {}])));
    expect(err.message).toMatch(/a function at \$\.list\[2\]\.deep\.fn$/);
    expect(err.index).toBe(0);
  });

  it('cap the output of a batch at half the memory limit', async () => {
    const small = new SandboxPool({ isolates: 1, memoryMb: 16 });
    try {
      const items = Array.from({ length: 40 }, (_, i) => i);
      const err = await failure(small.run(column("(v) => 'z'.repeat(1 << 19)", items)));
      expect(err.kind).toBe('invalid-output');
      expect(err.message).toMatch(/output larger than 8388608 bytes/);
      const ok = await small.run(column("(v) => 'z'.repeat(1 << 19)", items.slice(0, 10)));
      expect(ok.items).toHaveLength(10);
    } finally {
      await small.close();
    }
  });

  it('count bigints by their size', async () => {
    // One 500 KB bigint, 200 times: little heap inside, 100 MB once copied out. Computing and
    // measuring it takes a while on a loaded machine: the time limit is not what is tested here.
    const roomy = new SandboxPool({ isolates: 1, timeoutMs: 20_000 });
    onTestFinished(() => roomy.close());
    const err = await failure(roomy.run(column('(v) => { const big = 1n << 4000000n; return Array.from({ length: 200 }, () => big); }', [1])));
    expect(err.kind).toBe('invalid-output');
    expect(err.message).toMatch(/output larger than/);
  });
});
