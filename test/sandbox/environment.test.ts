/** What a transform sees around it: a frozen, quiet, deterministic global that still behaves like JavaScript. */
import { afterAll, describe, expect, it } from 'vitest';
import { SandboxPool } from '../../sandbox/index.js';
import { column, row } from './support/batch.js';

const pool = new SandboxPool({ isolates: 1 });
afterAll(() => pool.close());

async function evaluate(expression: string): Promise<unknown> {
  const result = await pool.run(column(`(v) => (${expression})`, [null]));
  return result.items[0];
}

describe('the global a transform runs in', () => {
  it('is frozen, built-ins and all', async () => {
    expect(
      await evaluate(`[globalThis, Object.prototype, Array.prototype, String.prototype, JSON, Math, Reflect, Intl.DateTimeFormat.prototype,
        Object.getPrototypeOf(function* () {}), Object.getPrototypeOf([][Symbol.iterator]()), Object.getPrototypeOf(Uint8Array)]
        .every((o) => Object.isFrozen(o))`),
    ).toBe(true);
  });

  it('still lets ordinary code shadow inherited properties', async () => {
    expect(
      await evaluate(`(() => {
        const o = {};
        o.toString = () => 'mine';
        o.constructor = 'c';
        o.hasOwnProperty = 1;
        class Custom extends Error { constructor(m) { super(m); this.name = 'Custom'; } }
        const e = new Custom('m');
        e.message = 'changed';
        return [String(o), o.constructor, o.hasOwnProperty, e.name, e.message, e instanceof Error, ({}).toString(), Object.keys(o)];
      })()`),
    ).toEqual(['mine', 'c', 1, 'Custom', 'changed', true, '[object Object]', ['toString', 'constructor', 'hasOwnProperty']]);
  });

  it('copies rows whose columns are named like Object.prototype members', async () => {
    const input = { constructor: 1, toString: 'two', valueOf: null, hasOwnProperty: [3], isPrototypeOf: { x: 1 } };
    const result = await pool.run(row('(r) => ({ ...r })', [input]));
    expect(result.items).toEqual([input]);
  });

  it('runs transforms in strict mode', async () => {
    expect(await evaluate('(function () { return this === undefined; })()')).toBe(true);
    expect(await pool.run(column('function (v) { return typeof this; }', [1]))).toEqual({ items: ['undefined'] });
  });

  it('has a console that does nothing', async () => {
    expect(await evaluate("[typeof console.log, console.log('x') === undefined, console.error(new Error('e')) === undefined, Object.isFrozen(console)]")).toEqual([
      'function',
      true,
      true,
      true,
    ]);
  });

  it('keeps the Function constructor and has no eval', async () => {
    expect(await evaluate("[Function('a', 'b', 'return a + b')(1, 2), typeof eval]")).toEqual([3, 'undefined']);
  });

  it('keeps the usual built-ins working', async () => {
    expect(
      await evaluate(`[
        [3, 1, 2].sort().map((x) => x * 2).filter((x) => x > 2).join(','),
        JSON.stringify({ a: [1, 'b'] }), 'a-b-c'.split('-').reverse().join(''), [...new Set([1, 1, 2])].length,
        new Map([['k', 'v']]).get('k'), 'abc'.replace(/b/g, 'B'), 'x'.padStart(3, '.'), encodeURIComponent('a b'),
        (12345.678).toFixed(1), parseInt('ff', 16), Array.from({ length: 3 }, (_, i) => i).reduce((s, x) => s + x, 0),
        Object.entries({ a: 1 })[0][0], typeof structuredClone, 'é'.normalize('NFD').length, typeof TextDecoder,
      ]`),
    ).toEqual(['4,6', '{"a":[1,"b"]}', 'cba', 2, 'v', 'aBc', '..x', 'a%20b', '12345.7', 255, 3, 'a', 'undefined', 2, 'undefined']);
  });

  it('replaces Date and Math.random with look-alikes', async () => {
    expect(
      await evaluate(`[Date.name, Date.length, typeof Date.now, Date.prototype.constructor === Date, 'prototype' in Math.random,
        Math.random.name, new Date(0) instanceof Date, Object.prototype.toString.call(new Date())]`),
    ).toEqual(['Date', 7, 'function', true, false, 'random', true, '[object Date]']);
  });

  it('does not keep the last RegExp match between batches', async () => {
    await evaluate("/(secret)/.exec('a secret')");
    expect(await evaluate("[typeof RegExp.$1, typeof RegExp.lastMatch, typeof RegExp[Symbol.species]]")).toEqual(['undefined', 'undefined', 'function']);
  });
});
