/** What every suite does around its measurements: option errors, signals, clean-up, the problems list. */
import { parseArgs } from 'node:util';
import type { Suite } from '../suite.js';
import { Cleanup } from './cleanup.js';
import type { RunningProxy } from './proxy.js';

/** A bad command line: the suite prints it with its usage and exits 2. */
export class UsageError extends Error {}

/** Append what went wrong, and anything the proxy said beyond its start-up line, to the report. */
export function appendProblems(out: string[], problems: string[], proxy: RunningProxy): void {
  const proxyNotes = proxy.service
    .output()
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('provenance-proxy listening on '));
  if (proxyNotes.length > 0) {
    problems.push(`provenance-proxy output (last ${Math.min(20, proxyNotes.length)} of ${proxyNotes.length} lines):\n${proxyNotes.slice(-20).join('\n')}`);
  }
  if (problems.length > 0) {
    out.push('');
    out.push('problems:');
    for (const p of problems) out.push(`  ${p.replaceAll('\n', '\n    ')}`);
  }
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
