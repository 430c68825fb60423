/**
 * A column transform given a TextColumn returns exactly what it returns given the same values as
 * items: the same values (as a text column while every result is a string or null), and the same
 * failures (kind, message, item), whatever mix of results comes back.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { SandboxError, SandboxPool, UNCHANGED, sandboxFunction, type ColumnResult, type RunBatch, type SandboxValue, type TextColumn } from '../../sandbox/index.js';
import { CLOCK, column } from './support/batch.js';

const pool = new SandboxPool({ isolates: 1, memoryMb: 16 });
afterAll(() => pool.close());

type Values = readonly (string | null)[];

function textColumn(values: Values): TextColumn {
  return { text: values.filter((v) => v !== null).join(''), lengths: Int32Array.from(values, (v) => (v === null ? -1 : v.length)) };
}

function textBatch(source: string, values: Values, params: SandboxValue = {}): RunBatch {
  return { fn: sandboxFunction('test', 'column', source), params, ctx: {}, clock: CLOCK, seed: 's', items: textColumn(values) };
}

/** A text result back into values: UNCHANGED is the input's value. */
function decoded(result: ColumnResult, input: Values): unknown {
  if (!('text' in result)) return result.items;
  const out: (string | null)[] = [];
  let at = 0;
  result.text.lengths.forEach((n, i) => {
    if (n === -1) out.push(null);
    else if (n === UNCHANGED) out.push(input[i] ?? null);
    else {
      out.push(result.text.text.slice(at, at + n));
      at += n;
    }
  });
  return out;
}

/** What a batch gave: its values, or its failure's kind, message and item. */
async function outcome(run: Promise<ColumnResult>, input: Values): Promise<unknown> {
  try {
    return { values: decoded(await run, input) };
  } catch (err) {
    if (!(err instanceof SandboxError)) throw err;
    return { kind: err.kind, message: err.message, index: err.index };
  }
}

async function both(source: string, input: Values, params: SandboxValue = {}): Promise<{ text: unknown; items: unknown; textForm: boolean }> {
  const text = await outcome(pool.run(textBatch(source, input, params)), input);
  const items = await outcome(pool.run(column(source, input, { params })), input);
  const asText = await pool.run(textBatch(source, input, params)).then((r) => 'text' in r, () => false);
  return { text, items, textForm: asText };
}

const INPUT: Values = ['ab', null, 'o', 'd', 'u', '', 'n', 'b', 't', 'zz', null];

describe('a text column result', () => {
  it.each([
    ['strings, unchanged', '(v) => v', true],
    ['strings, changed', "(v) => v === null ? null : v + '!'", true],
    ['nulls and strings', "(v) => v === null ? 'was null' : null", true],
    ['numbers', '(v) => v === null ? 0 : v.length', false],
    ['booleans', '(v) => v !== null && v.length > 1', false],
    ['bigints after a null', '(v) => v === null ? null : BigInt(v.length)', false],
    ['a number after strings', "(v) => v === 'n' ? 3 : v", false],
    ['a boolean after strings', "(v) => v === 'b' ? false : v", false],
  ])('of %s is the same as for items', async (_, source, textForm) => {
    const got = await both(source, INPUT);
    expect(got.text).toEqual(got.items);
    expect(got.text).toHaveProperty('values');
    expect(got.textForm).toBe(textForm);
  });

  it('of primitives and objects in one batch keeps every earlier value', async () => {
    const source = "(v) => v === 'o' ? { a: [1, v], d: new Date(0) } : v === 'd' ? new Date(5) : v === 'u' ? new Uint8Array([1, 2]) : v === 'n' ? 3 : v === 'b' ? true : v === 'zz' ? v + '?' : v";
    const got = await both(source, INPUT);
    expect(got.text).toEqual(got.items);
    expect(got.text).toEqual({
      values: ['ab', null, { a: [1, 'o'], d: new Date(0) }, new Date(5), new Uint8Array([1, 2]), '', 3, true, 't', 'zz?', null],
    });
  });

  it.each([
    ['a getter', "(v) => v === 'o' ? { get a() { return 1; } } : v"],
    ['a symbol', "(v) => v === 'd' ? Symbol('s') : v"],
    ['a function', "(v) => v === 'u' ? () => 1 : v"],
    ['a nested function', "(v) => v === 'u' ? { f: [() => 1] } : v"],
    ['a cycle', "(() => { const o = { v: 1 }; o.self = [o]; return (v) => v === 'n' ? o : v; })()"],
    ['undefined', "(v) => v === 'b' ? undefined : v"],
    ['a proxy', "(v) => v === 't' ? new Proxy({ a: 1 }, { getOwnPropertyDescriptor() { throw new Error('trap'); } }) : v"],
    ['a class instance', "(v) => v === 'o' ? new (class Point {})() : v"],
    ['a throw', "(v) => { if (v === 'zz') throw new RangeError('no zz'); return v; }"],
    ['a string near the longest V8 makes', "(v) => v === 'zz' ? 'x'.repeat(2 ** 29 - 30) : v === null ? v : v + '!'"],
    ['deep nesting', "(v) => { if (v !== 'zz') return v; let o = 1; for (let i = 0; i < 200; i++) o = [o]; return o; }"],
  ])('with %s after strings fails as for items', async (_, source) => {
    const got = await both(source, INPUT);
    expect(got.text).toEqual(got.items);
    expect(got.text).toHaveProperty('index');
  });

  it('of strings up to the output bound passes, one character more fails at that item', async () => {
    // The bound is half of 16 MiB; a string is charged 16 bytes and its length, whether it changed or not.
    const bound = 8 * 1024 * 1024;
    const big = 'a'.repeat(bound - 16 - (16 + 1000));
    const source = "(v, p) => v === 'b' ? 'z'.repeat(p.n) : v";
    const fits = await both(source, [big, 'b'], { n: 1000 });
    expect(fits.text).toEqual(fits.items);
    expect(fits.textForm).toBe(true);
    const over = await both(source, [big, 'b'], { n: 1001 });
    expect(over.text).toEqual(over.items);
    expect(over.text).toEqual({ kind: 'invalid-output', message: `transform "test" returned invalid output at item 1: output larger than ${bound} bytes at $`, index: 1 });
  });
});
