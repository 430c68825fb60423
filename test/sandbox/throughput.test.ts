/**
 * Throughput of a simple column mask, sandboxed versus plain Node in this process. Logged, not
 * asserted: the numbers depend on the machine; only the output is checked.
 */
import { performance } from 'node:perf_hooks';
import { afterAll, describe, expect, it } from 'vitest';
import { SandboxPool } from '../../sandbox/index.js';
import { column } from './support/batch.js';

const TOTAL = 100_000;
const CHUNK = 1000;
const MASK = "(v) => v.slice(0, 2) + '***'";

const pool = new SandboxPool({ isolates: 2 });
afterAll(() => pool.close());

const values = Array.from({ length: TOTAL }, (_, i) => `user${i}@example.com`);
const chunks = Array.from({ length: TOTAL / CHUNK }, (_, i) => values.slice(i * CHUNK, (i + 1) * CHUNK));

function rate(ms: number): string {
  return `${Math.round((TOTAL / ms) * 1000).toLocaleString('en')} values/s`;
}

describe('throughput', () => {
  it(`masks ${TOTAL} values in chunks of ${CHUNK}`, async () => {
    // Warm up both, so that neither measurement includes isolate creation or JIT warm-up.
    await Promise.all(chunks.slice(0, 4).map((items) => pool.run(column(MASK, items))));
    const plain = (v: string): string => v.slice(0, 2) + '***';
    for (const items of chunks.slice(0, 4)) items.map(plain);

    let start = performance.now();
    const sequential: string[] = [];
    for (const items of chunks) sequential.push(...((await pool.run(column(MASK, items))).items as string[]));
    const sequentialMs = performance.now() - start;

    start = performance.now();
    const parallel = (await Promise.all(chunks.map((items) => pool.run(column(MASK, items))))).flatMap((r) => r.items);
    const parallelMs = performance.now() - start;

    start = performance.now();
    const native: string[] = [];
    for (const items of chunks) native.push(...items.map(plain));
    const nativeMs = performance.now() - start;

    expect(sequential).toEqual(native);
    expect(parallel).toEqual(native);
    expect(native[12345]).toBe('us***');

    console.log(
      [
        `sandbox, one batch at a time:  ${rate(sequentialMs)} (${sequentialMs.toFixed(1)} ms, ${(sequentialMs / chunks.length).toFixed(3)} ms per batch)`,
        `sandbox, 2 isolates, all queued: ${rate(parallelMs)} (${parallelMs.toFixed(1)} ms)`,
        `plain Node, same process:        ${rate(nativeMs)} (${nativeMs.toFixed(1)} ms)`,
        `ratio plain/sandbox: ${(sequentialMs / nativeMs).toFixed(1)}x one at a time, ${(parallelMs / nativeMs).toFixed(1)}x with 2 isolates`,
      ].join('\n'),
    );
  });
});
