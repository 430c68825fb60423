/**
 * A case of the sandbox benchmark: the runtime's own work per value on a 10,000-value TextColumn,
 * for an identity transform and for the mask. The runtime's source runs in a bare isolate, called
 * with the payload the pool sends. A synchronous call does all of a batch's work on this thread
 * (copy in, the runtime, copy out): its CPU is what the isolate's thread spends on an asynchronous
 * call. The asynchronous call's CPU (every thread of the process) less that is the main thread's
 * share. (isolated-vm's own `cpuTime` read more than the whole process used on a loaded machine.)
 * Plain Node over the same values is the baseline.
 */
import ivm from 'isolated-vm';
import { DEFAULT_LIMITS, functionHash } from '../sandbox/index.js';
import type { RuntimePayload } from '../sandbox/protocol.js';
import { RUNTIME_SOURCE } from '../sandbox/runtime.js';
import { median } from './support/stats.js';

const VALUES = 10_000;
const TRANSFORMS = [
  ['identity', '(v) => v'],
  ['mask', "(v) => v === null ? null : v.slice(0, 2) + '***'"],
] as const;

export interface ValueCost {
  readonly name: string;
  /** Microseconds per value: the isolate's thread, the main thread (copies in and out), plain Node. */
  readonly isolateUs: number;
  readonly mainUs: number;
  readonly plainUs: number;
}

function column(): { values: string[]; text: string; lengths: Int32Array } {
  const values = Array.from({ length: VALUES }, (_, i) => `user${i}@example.com`);
  return { values, text: values.join(''), lengths: Int32Array.from(values, (v) => v.length) };
}

function payload(source: string, data: ReturnType<typeof column>): RuntimePayload {
  return {
    hash: functionHash(source),
    source,
    kind: 'column',
    params: { keep: 2 },
    ctx: { user: 'postgres', roles: ['reader'], database: 'postgres' },
    clock: Date.now(),
    seed: null,
    items: null,
    text: data.text,
    lengths: data.lengths,
    maxOutputBytes: Math.floor((DEFAULT_LIMITS.memoryMb * 1024 * 1024) / 2),
  };
}

/** `batches` 10,000-value batches of each transform, `runs` times; medians of µs per value. */
export async function valueCosts(runs: number, batches: number): Promise<ValueCost[]> {
  const isolate = new ivm.Isolate({ memoryLimit: DEFAULT_LIMITS.memoryMb });
  try {
    const context = await isolate.createContext();
    const run = (await context.eval(RUNTIME_SOURCE, { reference: true })) as ivm.Reference<(p: RuntimePayload) => unknown>;
    const data = column();
    const out: ValueCost[] = [];
    for (const [name, source] of TRANSFORMS) {
      const plain = new Function(`"use strict"; return (${source});`)() as (v: string) => string;
      const options = { timeout: DEFAULT_LIMITS.timeoutMs, result: { copy: true } } as const;
      const arg = (): ivm.Copy<RuntimePayload> => new ivm.ExternalCopy(payload(source, data)).copyInto({ release: true });
      const timed = async (call: () => unknown): Promise<number> => {
        const cpu = process.cpuUsage();
        for (let i = 0; i < batches; i++) await call();
        const used = process.cpuUsage(cpu);
        return (used.user + used.system) / (batches * VALUES);
      };
      const sync = (): unknown => run.applySync(undefined, [arg()], options);
      const async = (): Promise<unknown> => run.apply(undefined, [arg()], options);
      await timed(sync);
      await timed(async);
      const isolateUs: number[] = [];
      const mainUs: number[] = [];
      const plainUs: number[] = [];
      for (let r = 0; r < runs; r++) {
        const inIsolate = await timed(sync);
        isolateUs.push(inIsolate);
        mainUs.push((await timed(async)) - inIsolate);
        plainUs.push(await timed(() => data.values.map(plain)));
      }
      out.push({ name, isolateUs: median(isolateUs) ?? NaN, mainUs: median(mainUs) ?? NaN, plainUs: median(plainUs) ?? NaN });
    }
    return out;
  } finally {
    isolate.dispose();
  }
}
