/**
 * The Node.js flags the proxy runs with. `npm start`, the Dockerfile's ENTRYPOINT, the tests and
 * the benchmarks all start it with these (a test checks that the first two say the same); the
 * installed binary, started without them, runs itself again with them (relaunch.ts), and with
 * ALLOCATOR_ENV.
 *
 * - `--no-node-snapshot`: isolated-vm crashes under Node's startup snapshot.
 * - `--max-semi-space-size=32` (MiB): rows with transforms are short-lived objects by the
 *   hundred thousand (field bytes, decoded values, re-encoded values) that live across the
 *   sandbox's asynchronous call; with V8's default young generation many of them are promoted and
 *   left to full GCs. With 32 MiB semi-spaces a 3-transform chain over 100k rows cost the proxy
 *   19 % less CPU (median of three interleaved pairs: 780 to 630 ms; V8's GC helper threads fell
 *   from about 45 to about 20 ms each per query) and took 8 % less time. It costs up to a few tens
 *   of MiB of memory under load.
 */
export const NODE_FLAGS: readonly string[] = ['--no-node-snapshot', '--max-semi-space-size=32'];

/**
 * Environment the C allocator (glibc) reads when the process starts, set wherever NODE_FLAGS are
 * (`npm start`, the Dockerfile's ENV, the relaunch, the tests and benchmarks). A large transformed
 * result churns through buffers of 64 KiB to 1 MiB (socket reads, encoded batches, payloads copied
 * in and out of isolates) on several threads (the event loop, isolated-vm's, V8's helpers). With
 * glibc's defaults each thread gets an arena of its own (14 at the peak of a 1M-row read), a
 * freed buffer stays in the arena that served it, and the threshold above which buffers get pages
 * of their own (returned at free) climbs to the largest buffer freed so far: freed memory stays
 * resident. With two arenas, buffers of 64 KiB and more mapped and unmapped, and free memory at
 * the top of a heap returned past 128 KiB, the proxy's peak RSS during a 1M-row slow read fell
 * from 290 to 250 MiB (one run each); three alternated runs of `npm run bench -- transforms` with
 * and without showed no slowdown within their noise (median ratios to pass-through 1.16/1.95/1.46/
 * 1.89 against 2.56/1.51/1.60/1.77, sandbox throughput 1.21M against 0.77M values/s, on a loaded
 * machine). Values already in the environment are kept.
 */
export const ALLOCATOR_ENV: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: '65536',
  MALLOC_TRIM_THRESHOLD_: '131072',
};

/** ALLOCATOR_ENV under `env`: values `env` has are kept. */
export function withAllocatorEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...ALLOCATOR_ENV, ...env };
}

/** A flag's name, without its value: `--max-semi-space-size=32` → `--max-semi-space-size`. */
function flagName(flag: string): string {
  const eq = flag.indexOf('=');
  return eq < 0 ? flag : flag.slice(0, eq);
}

/**
 * The flags of NODE_FLAGS this process was started without, by name: one given with another value
 * (on the command line or in NODE_OPTIONS) counts as given.
 */
export function missingNodeFlags(execArgv: readonly string[] = process.execArgv, nodeOptions: string = process.env['NODE_OPTIONS'] ?? ''): string[] {
  const given = new Set([...execArgv, ...nodeOptions.split(/\s+/)].map(flagName));
  return NODE_FLAGS.filter((f) => !given.has(flagName(f)));
}
