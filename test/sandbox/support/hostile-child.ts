/**
 * Runs one hostile batch in a pool of one isolate, then an ordinary batch on the same pool, and
 * prints one JSON line describing both. Run in its own process by hostile.test.ts.
 */
import { types } from 'node:util';
import { SandboxError, SandboxPool, exitWhenIdle, sandboxFunction, type SandboxValue, type TransformKind } from '../../../sandbox/index.js';

export interface HostileCase {
  readonly source: string;
  readonly kind: TransformKind;
  readonly items: SandboxValue[];
  readonly memoryMb: number;
  readonly timeoutMs: number;
}

export type Outcome =
  | { readonly ok: true; readonly items: unknown[]; readonly proxies: number }
  | { readonly ok: false; readonly name: string; readonly kind?: string; readonly message: string; readonly index?: number };

export interface HostileReport {
  readonly hostile: Outcome;
  readonly elapsedMs: number;
  /** Ticks of a 10 ms interval on the main thread while the hostile batch ran. */
  readonly ticks: number;
  readonly followUp: unknown;
  readonly stats: Record<string, number>;
  readonly catastrophic: string[];
  /** Keys that appeared on the host's Object.prototype (must be none). */
  readonly hostPrototypeKeys: string[];
}

const ORIGINAL_KEYS = new Set(Object.getOwnPropertyNames(Object.prototype));
const spec = JSON.parse(process.argv[2] ?? '') as HostileCase;
const catastrophic: string[] = [];
const pool = new SandboxPool({
  isolates: 1,
  memoryMb: spec.memoryMb,
  timeoutMs: spec.timeoutMs,
  onCatastrophicError: (message) => catastrophic.push(message),
});
const base = { params: {}, ctx: {}, clock: new Date('2024-05-06T07:08:09Z'), seed: 'hostile' };

let ticks = 0;
const ticker = setInterval(() => ticks++, 10);
const started = performance.now();
let hostile: Outcome;
try {
  const result = await pool.run({ ...base, fn: sandboxFunction('hostile', spec.kind, spec.source), items: spec.items });
  const proxies = result.items.filter((item) => typeof item === 'object' && item !== null && types.isProxy(item)).length;
  hostile = { ok: true, items: result.items, proxies };
} catch (err) {
  hostile =
    err instanceof SandboxError
      ? { ok: false, name: err.name, kind: err.kind, message: err.message, ...(err.index === undefined ? {} : { index: err.index }) }
      : { ok: false, name: err instanceof Error ? err.name : typeof err, message: String(err) };
}
const elapsedMs = performance.now() - started;
clearInterval(ticker);

const followUp: unknown = await pool
  .run({ ...base, fn: sandboxFunction('double', 'column', '(v) => v * 2'), items: [1, 2, 3] })
  .then((result) => result.items, (err: unknown) => String(err));

const report: HostileReport = {
  hostile,
  elapsedMs,
  ticks,
  followUp,
  stats: { ...pool.stats },
  catastrophic,
  hostPrototypeKeys: Object.getOwnPropertyNames(Object.prototype).filter((key) => !ORIGINAL_KEYS.has(key)),
};
process.stdout.write(`${JSON.stringify(report, (_, value: unknown) => (typeof value === 'bigint' ? `${value}n` : value))}\n`);
await pool.close();
exitWhenIdle(0);
