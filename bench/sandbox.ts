/**
 * sandbox: what one batch costs in the transform sandbox, small batches above all. A column mask
 * over 1, 10 and 10,000 values (a TextColumn, as the proxy sends text) goes through a SandboxPool
 * from one caller and from eight concurrent callers; in the same run, interleaved, the same batches
 * go through four baselines: the function in plain Node, one bare isolated-vm call of the same
 * function over the same values, synchronous and asynchronous (no runtime, no limits besides the
 * timeout, no checks), and the same synchronous call made by a worker thread that gets the values
 * in a message (see sandbox-worker.ts). A 1-value batch also goes after a 1 ms pause each, as a
 * proxy's point lookups come (the threads involved have gone to sleep, their caches gone cold), with
 * plain Node after the same pause measuring the pause's own cost. Wall time and CPU time (every
 * thread of the process) per batch, medians.
 */
import { availableParallelism, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import ivm from 'isolated-vm';
import { DEFAULT_ISOLATES, DEFAULT_LIMITS, SandboxPool, sandboxFunction, type SandboxValue, type TextColumn } from '../sandbox/index.js';
import type { Cleanup } from './support/cleanup.js';
import { UsageError, defineSuite, log, parseNamedOptions, positiveInt, quickRun } from './support/suite-runner.js';
import { median } from './support/stats.js';
import { fixed, formatTable } from './support/table.js';
import { startWorkerCall } from './sandbox-worker.js';
import { valueCosts } from './sandbox-values.js';

const USAGE = `Usage: npm run bench -- sandbox [options]

Time per batch of a column mask over 1, 10 and 10000 values through a SandboxPool (one caller, and
eight concurrent callers), against the same function in plain Node, in one bare isolated-vm call
(synchronous and asynchronous), and in a synchronous call made by a worker thread that gets the
values in a message, interleaved in one run; a 1-value batch also after a 1 ms pause each. Medians
of wall and CPU microseconds per batch. Then the runtime's own work per value on a 10000-value
batch (identity and mask): microseconds on the isolate's thread and on the main thread.

  --runs R      timed runs of every case; medians   (default 7; 3 with BENCH_QUICK=1)
  --batches B   small batches per case and run       (default 4000; 1000 with BENCH_QUICK=1)
  --cases C     batches,values or one of them        (default both)
  --help        show this text

Needs nothing but this process; on a shared machine, compare the ratios, not the times.
`;

interface Options {
  readonly runs: number;
  readonly batches: number;
  readonly cases: ReadonlySet<string>;
}

function parseOptions(args: readonly string[]): Options | 'help' {
  const values = parseNamedOptions(args, ['runs', 'batches', 'cases'] as const);
  if (values === 'help') return 'help';
  const quick = quickRun();
  const cases = new Set((values.cases ?? 'batches,values').split(','));
  if ([...cases].some((c) => c !== 'batches' && c !== 'values')) throw new UsageError(`--cases: batches, values or both, not ${values.cases}`);
  return { runs: positiveInt('runs', values.runs, quick ? 3 : 7), batches: positiveInt('batches', values.batches, quick ? 1000 : 4000), cases };
}

const MASK_SOURCE = "(v) => v === null ? null : v.slice(0, 2) + '***'";
const SIZES = [1, 10, 10_000] as const;
const CONCURRENT = 8;
/** Paused batches take a millisecond each: fewer of them keep each case's time alike. */
const PAUSED_SHARE = 8;
/** A 10,000-value batch costs about what 300 small ones do: fewer of them keep each case's time alike. */
const BIG_SHARE = 100;

type Runner = 'pool' | 'plain' | 'ivm-sync' | 'ivm-async' | 'worker';
interface Case {
  readonly runner: Runner;
  readonly size: number;
  readonly callers: number;
  /** A pause before each batch, as between a proxy's point lookups: the threads involved go to sleep. */
  readonly pauseMs?: number;
}

const PAUSE_MS = 1;

const key = (c: Case): string => `${c.runner}/${c.size}/${c.callers}${c.pauseMs ? `/pause ${c.pauseMs}` : ''}`;

function cases(): Case[] {
  const out: Case[] = [];
  for (const size of SIZES) {
    for (const runner of ['plain', 'ivm-sync', 'ivm-async', 'worker', 'pool'] as const) out.push({ runner, size, callers: 1 });
    if (size < 1000) out.push({ runner: 'pool', size, callers: CONCURRENT });
  }
  // Plain Node after the pause measures the pause's own cost.
  for (const runner of ['plain', 'ivm-async', 'worker', 'pool'] as const) out.push({ runner, size: 1, callers: 1, pauseMs: PAUSE_MS });
  return out;
}

/** What a batch carries: the values, and the same as a TextColumn. */
interface Input {
  readonly values: string[];
  readonly column: TextColumn;
}

function input(size: number): Input {
  const values = Array.from({ length: size }, (_, i) => `user${i}@example.com`);
  return { values, column: { text: values.join(''), lengths: Int32Array.from(values, (v) => v.length) } };
}

/** What the proxy passes as the context: made afresh for every statement. */
function context(i: number): SandboxValue {
  return {
    user: 'postgres',
    roles: ['reader'],
    database: 'postgres',
    application_name: 'bench',
    client_address: '127.0.0.1',
    client_port: 50000 + (i % 1000),
    session_id: i % CONCURRENT,
    statement_timestamp: new Date().toISOString(),
  };
}

type Mask = (v: string | null) => string | null;

function localMask(): Mask {
  const made: unknown = new Function(`"use strict"; return (${MASK_SOURCE});`)();
  if (typeof made !== 'function') throw new Error('the mask source is not a function expression');
  return made as Mask;
}

/** Runs one batch and returns the masked values, for the check against plain Node. */
type BatchFn = (i: number) => Promise<(string | null)[]>;

interface Runners {
  readonly batch: (runner: Runner, data: Input) => BatchFn;
  readonly pool: SandboxPool;
}

async function makeRunners(cleanup: Cleanup): Promise<Runners> {
  const pool = new SandboxPool();
  cleanup.add('close the sandbox pool', () => pool.close());
  const fn = sandboxFunction('bench_mask', 'column', MASK_SOURCE);
  const params: SandboxValue = { keep: 2 };
  const mask = localMask();

  const isolate = new ivm.Isolate({ memoryLimit: DEFAULT_LIMITS.memoryMb });
  cleanup.add('dispose the bare isolate', () => Promise.resolve(isolate.dispose()));
  const ivmContext = await isolate.createContext();
  const bare = (await ivmContext.eval(`(() => { const mask = ${MASK_SOURCE}; return (values) => values.map(mask); })()`, {
    reference: true,
  })) as ivm.Reference<(values: string[]) => (string | null)[]>;
  const call = { timeout: DEFAULT_LIMITS.timeoutMs, result: { copy: true } } as const;
  const worker = await startWorkerCall(MASK_SOURCE, DEFAULT_LIMITS.memoryMb, DEFAULT_LIMITS.timeoutMs);
  cleanup.add('stop the bare worker', () => worker.close());
  const args = (data: Input): [ivm.Copy<string[]>] => [new ivm.ExternalCopy(data.values).copyInto({ release: true })];

  const viaPool = (data: Input): BatchFn => async (i) => {
    const clock = new Date();
    const res = await pool.run({ fn, params, ctx: context(i), clock, seed: () => `${fn.hash}:${i}`, items: data.column });
    return 'text' in res ? fromText(res.text, data.values) : (res.items as (string | null)[]);
  };
  const batch = (runner: Runner, data: Input): BatchFn => {
    switch (runner) {
      case 'plain':
        return () => Promise.resolve(data.values.map(mask));
      case 'ivm-sync':
        return () => Promise.resolve(bare.applySync(undefined, args(data), call));
      case 'ivm-async':
        return () => bare.apply(undefined, args(data), call);
      case 'worker':
        return () => worker.call(data.values);
      case 'pool':
        return viaPool(data);
    }
  };
  return { batch, pool };
}

/** A pool's TextColumn result back into values (UNCHANGED: the input's). */
function fromText(result: TextColumn, before: readonly string[]): (string | null)[] {
  const out: (string | null)[] = [];
  let at = 0;
  result.lengths.forEach((n, i) => {
    if (n === -1) out.push(null);
    else if (n < 0) out.push(before[i] ?? null);
    else {
      out.push(result.text.slice(at, at + n));
      at += n;
    }
  });
  return out;
}

function label(c: Case): string {
  return runnerLabel(c) + (c.pauseMs ? `, ${c.pauseMs} ms pauses` : '');
}

function runnerLabel(c: Case): string {
  switch (c.runner) {
    case 'pool':
      return `SandboxPool, ${c.callers} caller${c.callers > 1 ? 's' : ''}`;
    case 'plain':
      return 'plain Node';
    case 'worker':
      return 'worker thread, sync call inside';
    default:
      return `bare isolated-vm ${c.runner === 'ivm-sync' ? 'sync' : 'async'} call`;
  }
}

interface Sample {
  readonly wallUs: number;
  readonly cpuUs: number;
}

/** `count` batches split among `callers` that each wait for one (and the pause) before sending the next. */
async function measure(run: BatchFn, count: number, callers: number, pauseMs = 0): Promise<Sample> {
  const each = Math.ceil(count / callers);
  const caller = async (c: number): Promise<void> => {
    for (let i = 0; i < each; i++) {
      if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
      await run(c * each + i);
    }
  };
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: callers }, (_, c) => caller(c)));
  const wallUs = ((performance.now() - t0) * 1000) / (each * callers);
  const used = process.cpuUsage(cpu);
  return { wallUs, cpuUs: (used.user + used.system) / (each * callers) };
}

function sameValues(a: readonly (string | null)[], b: readonly (string | null)[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

async function batchBenchmark(opts: Options, cleanup: Cleanup): Promise<number> {
  const runners = await makeRunners(cleanup);
  const inputs = new Map(SIZES.map((s) => [s, input(s)] as const));
  const all = cases();
  const count = (c: Case): number =>
    c.size >= 1000 ? Math.max(5, Math.round(opts.batches / BIG_SHARE)) : c.pauseMs ? Math.max(50, Math.round(opts.batches / PAUSED_SHARE)) : opts.batches;
  const fns = new Map(all.map((c) => [key(c), runners.batch(c.runner, inputs.get(c.size as (typeof SIZES)[number])!)] as const));

  // Untimed warm-up, checked: creates the isolates, compiles the function, warms the JIT.
  const problems: string[] = [];
  const mask = localMask();
  for (const c of all) {
    const data = inputs.get(c.size as (typeof SIZES)[number])!;
    const got = await fns.get(key(c))!(0);
    if (!sameValues(got, data.values.map(mask))) problems.push(`${key(c)}: output differs from plain Node`);
    await measure(fns.get(key(c))!, Math.ceil(count(c) / 4), c.callers, c.pauseMs);
  }

  const samples = new Map<string, Sample[]>();
  /** Batches per call into an isolate, for the pool's cases. */
  const perCall = new Map<string, number[]>();
  for (let r = 0; r < opts.runs; r++) {
    cleanup.checkpoint();
    // Rotating order, so that no case always runs first or right after the same one.
    for (let k = 0; k < all.length; k++) {
      const c = all[(k + r) % all.length]!;
      const calls = runners.pool.stats.calls;
      const s = await measure(fns.get(key(c))!, count(c), c.callers, c.pauseMs);
      samples.set(key(c), [...(samples.get(key(c)) ?? []), s]);
      if (c.runner === 'pool') perCall.set(key(c), [...(perCall.get(key(c)) ?? []), count(c) / (runners.pool.stats.calls - calls)]);
    }
    log(`run ${r + 1}/${opts.runs} done`);
  }

  const med = (c: Case, what: keyof Sample): number | undefined => median((samples.get(key(c)) ?? []).map((s) => s[what]));
  const spread = (c: Case): string => {
    const walls = (samples.get(key(c)) ?? []).map((s) => s.wallUs);
    const m = median(walls);
    if (m === undefined || m === 0) return 'n/a';
    return `${Math.round((100 * (Math.max(...walls) - Math.min(...walls))) / m)}%`;
  };
  const ratio = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined || b === 0 ? 'n/a' : `${(a / b).toFixed(2)}x`);

  const rows = all.map((c) => {
    const base = { runner: 'ivm-sync', size: c.size, callers: 1 } as const;
    const plain = { runner: 'plain', size: c.size, callers: 1 } as const;
    return [
      String(c.size),
      label(c),
      fixed(med(c, 'wallUs'), 1),
      spread(c),
      fixed(med(c, 'cpuUs'), 1),
      ratio(med(c, 'wallUs'), med(base, 'wallUs')),
      ratio(med(c, 'cpuUs'), med(base, 'cpuUs')),
      ratio(med(c, 'wallUs'), med(plain, 'wallUs')),
      c.runner === 'pool' ? fixed(median(perCall.get(key(c)) ?? []), 1) : '',
    ];
  });

  const out: string[] = [];
  out.push('provenance-proxy sandbox benchmark: cost per batch');
  out.push(`  Node ${process.version}; ${availableParallelism()} CPUs shared by everything; load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  out.push(`  SandboxPool of ${DEFAULT_ISOLATES} isolates (${DEFAULT_LIMITS.memoryMb} MiB, ${DEFAULT_LIMITS.timeoutMs} ms); column mask ${MASK_SOURCE}`);
  out.push(
    `  ${opts.runs} timed runs, cases interleaved in rotating order after a checked warm-up; ${opts.batches} batches per small case ` +
      `and run (${count({ runner: 'pool', size: 10_000, callers: 1 })} of 10000 values); ${CONCURRENT} callers each wait for their batch before the next`,
  );
  out.push('  us/batch: wall time per batch (with several callers: elapsed / batches); cpu: all threads of the process; spread: (max - min) / median of wall');
  out.push('');
  out.push(
    formatTable(
      ['values', 'runner', 'us/batch', 'spread', 'cpu us', 'wall vs sync call', 'cpu vs sync call', 'wall vs plain Node', 'batches/call'],
      rows,
      ['right', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
    ),
  );
  const pool1 = { runner: 'pool', size: 1, callers: 1 } as const;
  const pool8 = { runner: 'pool', size: 1, callers: CONCURRENT } as const;
  const async1 = { runner: 'ivm-async', size: 1, callers: 1 } as const;
  out.push('');
  out.push(`1-value batch, SandboxPool vs a bare async isolated-vm call: ${ratio(med(pool1, 'wallUs'), med(async1, 'wallUs'))} wall, ${ratio(med(pool1, 'cpuUs'), med(async1, 'cpuUs'))} cpu`);
  for (const size of SIZES) {
    const w = { runner: 'worker', size, callers: 1 } as const;
    const a = { runner: 'ivm-async', size, callers: 1 } as const;
    out.push(`${size}-value batch, worker thread (message + sync call) vs a bare async isolated-vm call: ${ratio(med(w, 'wallUs'), med(a, 'wallUs'))} wall, ${ratio(med(w, 'cpuUs'), med(a, 'cpuUs'))} cpu`);
  }
  out.push(`1-value batch, ${CONCURRENT} callers vs 1 (per batch): ${ratio(med(pool8, 'wallUs'), med(pool1, 'wallUs'))} wall, ${ratio(med(pool8, 'cpuUs'), med(pool1, 'cpuUs'))} cpu`);
  // What a batch costs after a pause, less the pause's own (plain Node after the same pause).
  const pauseCpu = med({ runner: 'plain', size: 1, callers: 1, pauseMs: PAUSE_MS }, 'cpuUs');
  const afterPause = (runner: Runner): string => {
    const paused = med({ runner, size: 1, callers: 1, pauseMs: PAUSE_MS }, 'cpuUs');
    const at = paused === undefined || pauseCpu === undefined ? undefined : paused - pauseCpu;
    return `${runnerLabel({ runner, size: 1, callers: 1 })} ${fixed(at, 1)} us (${ratio(at, med({ runner, size: 1, callers: 1 }, 'cpuUs'))})`;
  };
  out.push(
    `1-value batch after a ${PAUSE_MS} ms pause, cpu less the pause's own (${fixed(pauseCpu, 1)} us), and its ratio to back to back: ` +
      (['ivm-async', 'worker', 'pool'] as const).map(afterPause).join('; '),
  );
  out.push(`pool stats: ${JSON.stringify(runners.pool.stats)}`);
  if (problems.length > 0) out.push('', 'problems:', ...problems.map((p) => `  ${p}`));
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

async function benchmark(opts: Options, cleanup: Cleanup): Promise<number> {
  if (opts.cases.has('batches')) await batchBenchmark(opts, cleanup);
  if (!opts.cases.has('values')) return 0;
  const batches = 20;
  const costs = await valueCosts(opts.runs, batches);
  const rows = costs.map((c) => [c.name, fixed(c.isolateUs, 3), fixed(c.mainUs, 3), fixed(c.plainUs, 3), `${(c.isolateUs / c.plainUs).toFixed(1)}x`]);
  const out = [
    '',
    `The runtime's own work per value: ${batches} batches of 10000 values (a TextColumn) per run, ${opts.runs} runs, medians`,
    formatTable(['transform', 'isolate us/value', 'main us/value', 'plain Node us/value', 'isolate vs plain'], rows, ['left', 'right', 'right', 'right', 'right']),
  ];
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

export const suite = defineSuite('sandbox', USAGE, parseOptions, benchmark);
