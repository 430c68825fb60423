/**
 * Benchmark entry point: `npm run bench -- <suite> [options]`.
 * Suites are loaded on demand so one suite's setup (and failures to load) never touch another.
 */
import type { Suite } from './suite.js';
import { exitWhenIdle } from '../sandbox/index.js';

interface SuiteEntry {
  readonly summary: string;
  readonly load: () => Promise<Suite>;
}

// New suites (e.g. transforms, provenance) register here.
const SUITES: Readonly<Record<string, SuiteEntry>> = {
  passthrough: {
    summary: 'pgbench through the proxy vs. PostgreSQL directly vs. PgBouncer (TPS, p50/p99)',
    load: async () => (await import('./passthrough.js')).suite,
  },
  transforms: {
    summary: 'SELECT latency through the proxy with 0, 1 and 3 column transforms; sandbox values/s vs plain Node',
    load: async () => (await import('./transforms.js')).suite,
  },
  'provenance-queries': {
    summary: 'provenance query functions over N generated executions (default 10M): median/p95 ms vs a primary-key lookup, EXPLAIN',
    load: async () => (await import('./provenance-queries.js')).suite,
  },
  sandbox: {
    summary: 'time per batch of 1, 10 and 10k values through SandboxPool (1 and 8 callers) vs plain Node and bare isolated-vm calls',
    load: async () => (await import('./sandbox.js')).suite,
  },
  provenance: {
    summary: 'select-only pgbench on a table with one transform: recording off vs async vs sync (TPS ratios, p50/p99), records checked',
    load: async () => (await import('./provenance.js')).suite,
  },
  'statement-shape': {
    summary: 'microseconds to shape point-lookup texts with fresh literal keys: shapeOf each text vs the shape cache',
    load: async () => (await import('./statement-shape.js')).suite,
  },
  memory: {
    summary: 'peak RSS of the proxy while a slow client reads a large result, with a column mask and without',
    load: async () => (await import('./memory.js')).suite,
  },
  asof: {
    summary: 'time travel: write cost of tracking history (tracked vs untracked, periods where installed); as-of lookups, 1k vs 1M versions',
    load: async () => (await import('./asof.js')).suite,
  },
};

function usage(): string {
  const names = Object.keys(SUITES);
  const width = Math.max(...names.map((n) => n.length));
  const lines = names.map((n) => `  ${n.padEnd(width)}  ${SUITES[n]?.summary ?? ''}`);
  return (
    'Usage: npm run bench -- <suite> [options]\n\n' +
    `Suites:\n${lines.join('\n')}\n\n` +
    'Environment: BENCH_QUICK=1 for a short run (fewer seconds and repetitions).\n' +
    'Options of a suite: npm run bench -- <suite> --help\n'
  );
}

async function main(argv: readonly string[]): Promise<number> {
  const name = argv[0];
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return 0;
  }
  // Object.hasOwn, not `in`: "constructor" or "toString" must not count as suites.
  const entry = name !== undefined && Object.hasOwn(SUITES, name) ? SUITES[name] : undefined;
  if (!entry) {
    process.stderr.write(`${name === undefined ? 'no suite given' : `unknown suite "${name}"`}\n\n${usage()}`);
    return 2;
  }
  const suite = await entry.load();
  return suite.run(argv.slice(1));
}

main(process.argv.slice(2)).then(
  // A suite's leftover handles (timers, sockets) must not keep the process alive for long.
  (code) => exitWhenIdle(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    exitWhenIdle(1);
  },
);
