/** What every suite does around its measurements: option errors, signals, clean-up, the problems list. */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startPgCluster, type PgCluster } from '../../test/support/pg-cluster.js';
import type { Suite } from '../suite.js';
import { Cleanup } from './cleanup.js';
import type { RunningProxy } from './proxy.js';

/** A bad command line: the suite prints it with its usage and exits 2. */
export class UsageError extends Error {}

/** Progress goes to stderr so stdout holds only the report. */
export function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

/** The cluster's own bindir first, so client tools match the server; else whatever is on PATH. */
export function clusterBinary(bindir: string, name: string): string {
  const p = join(bindir, name);
  return existsSync(p) ? p : name;
}

/** What most suites start from: a problems list, a scratch directory and a private cluster, all cleaned up. */
export interface BenchEnvironment {
  readonly problems: string[];
  /** Log a problem now and list it in the report. */
  note(msg: string): void;
  readonly root: string;
  readonly cluster: PgCluster;
}

export async function benchEnvironment(cleanup: Cleanup): Promise<BenchEnvironment> {
  const problems: string[] = [];
  const root = await mkdtemp(join(tmpdir(), 'pp-bench-'));
  cleanup.add('remove temporary directory', () => rm(root, { recursive: true, force: true }));
  log('starting a private PostgreSQL cluster');
  const cluster = await startPgCluster();
  cleanup.add('stop PostgreSQL', () => cluster.destroy());
  cleanup.checkpoint();
  return {
    problems,
    note(msg) {
      problems.push(msg);
      log(msg);
    },
    root,
    cluster,
  };
}

/** Append what went wrong, and anything the proxies said beyond their start-up line, to the report. */
export function appendProblems(out: string[], problems: string[], proxies: readonly RunningProxy[]): void {
  for (const proxy of proxies) {
    const proxyNotes = proxy.service
      .output()
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.startsWith('provenance-proxy listening on '));
    if (proxyNotes.length > 0) {
      problems.push(`provenance-proxy output (last ${Math.min(20, proxyNotes.length)} of ${proxyNotes.length} lines):\n${proxyNotes.slice(-20).join('\n')}`);
    }
  }
  if (problems.length > 0) {
    out.push('');
    out.push('problems:');
    for (const p of problems) out.push(`  ${p.replaceAll('\n', '\n    ')}`);
  }
}

/**
 * Prints the report with its problems. A benchmark, not a test: a missed target or a failed run
 * is reported, not signalled by the exit code.
 */
export function finishReport(out: string[], problems: string[], proxies: readonly RunningProxy[]): number {
  appendProblems(out, problems, proxies);
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

export function defineSuite<O>(
  name: string,
  usage: string,
  parseOptions: (args: readonly string[]) => O | 'help',
  benchmark: (opts: O, cleanup: Cleanup) => Promise<number>,
): Suite {
  const run = async (args: readonly string[]): Promise<number> => {
    let opts: O | 'help';
    try {
      opts = parseOptions(args);
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      process.stderr.write(`bench ${name}: ${err.message}\n\n${usage}`);
      return 2;
    }
    if (opts === 'help') {
      process.stdout.write(usage);
      return 0;
    }
    const cleanup = new Cleanup();
    cleanup.installSignalHandlers();
    try {
      return await benchmark(opts, cleanup);
    } catch (err) {
      // After a signal, errors are just the teardown pulling processes from under the run.
      if (cleanup.interrupted) return 130;
      throw err;
    } finally {
      await cleanup.run();
    }
  };
  return { usage, run };
}

export function positiveInt(name: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a positive integer, got "${v}"`);
  return n;
}

/** Whether BENCH_QUICK=1 asks for a short run: it only changes defaults, explicit options still win. */
export function quickRun(): boolean {
  return process.env['BENCH_QUICK'] === '1';
}

/** The options every pgbench-driven suite takes: --seconds, --runs, --clients. */
export function pgbenchRunOptions(values: Partial<Record<'seconds' | 'runs' | 'clients', string>>): { seconds: number; runs: number; clients: number } {
  const quick = quickRun();
  return {
    seconds: positiveInt('seconds', values.seconds, quick ? 3 : 10),
    runs: positiveInt('runs', values.runs, quick ? 1 : 3),
    clients: positiveInt('clients', values.clients, 8),
  };
}

/** `--name VALUE` options (plus --help); unknown options are a UsageError. */
export function parseNamedOptions<K extends string>(args: readonly string[], names: readonly K[]): Partial<Record<K, string>> | 'help' {
  const options: Record<string, { type: 'string' } | { type: 'boolean'; short: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const n of names) options[n] = { type: 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: [...args], options, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  if (values['help']) return 'help';
  const out: Partial<Record<K, string>> = {};
  for (const n of names) {
    const v = values[n];
    if (typeof v === 'string') out[n] = v;
  }
  return out;
}
