/** Column transforms given a TextColumn: one string in, the changed values back as one string. */
import { afterAll, describe, expect, it } from 'vitest';
import { SandboxPool, UNCHANGED, sandboxFunction, type RunBatch, type TextColumn } from '../../sandbox/index.js';
import { CLOCK, failure } from './support/batch.js';

const pool = new SandboxPool({ isolates: 1, memoryMb: 16 });
afterAll(() => pool.close());

function textBatch(source: string, values: readonly (string | null)[], kind: 'column' | 'row' = 'column'): RunBatch {
  const items: TextColumn = {
    text: values.filter((v) => v !== null).join(''),
    lengths: Int32Array.from(values, (v) => (v === null ? -1 : v.length)),
  };
  return { fn: sandboxFunction('t', kind, source), params: {}, ctx: {}, clock: CLOCK, seed: 's', items };
}

describe('text columns in the sandbox', () => {
  it('hand each value to the transform and return the changed ones end to end', async () => {
    const result = await pool.run(textBatch(`(v) => v === null ? 'was null' : v.startsWith('k') ? v : v === 'drop' ? null : v.toUpperCase()`, ['keep', 'abc', null, 'drop', '']));
    expect('text' in result).toBe(true);
    if (!('text' in result)) return;
    expect(result.text.text).toBe('ABCwas null');
    expect([...result.text.lengths]).toEqual([UNCHANGED, 3, 8, -1, UNCHANGED]);
  });

  it('return items when a result is not a string or null', async () => {
    const result = await pool.run(textBatch('(v) => v === null ? 0 : v.length', ['ab', null, 'c']));
    expect(result).toEqual({ items: [2, 0, 1] });
  });

  it('keep the checks on output: undefined and the output bound', async () => {
    const undef = await failure(pool.run(textBatch('(v) => v === "b" ? undefined : v', ['a', 'b'])));
    expect(undef.kind).toBe('invalid-output');
    expect(undef.index).toBe(1);
    const huge = await failure(pool.run(textBatch('(v) => v.repeat(3_000_000)', ['abcd'])));
    expect(['invalid-output', 'memory']).toContain(huge.kind);
  });

  it('are refused for a row transform, or when the lengths do not add up', async () => {
    await expect(pool.run(textBatch('(r) => r', ['a'], 'row'))).rejects.toThrow(TypeError);
    const bad: RunBatch = { ...textBatch('(v) => v', ['ab']), items: { text: 'ab', lengths: Int32Array.from([3]) } };
    await expect(pool.run(bad)).rejects.toThrow(/add up/);
    const unchanged: RunBatch = { ...textBatch('(v) => v', ['ab']), items: { text: 'ab', lengths: Int32Array.from([UNCHANGED, 2]) } };
    await expect(pool.run(unchanged)).rejects.toThrow(TypeError);
  });
});
