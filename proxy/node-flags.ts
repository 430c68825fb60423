/**
 * The Node.js flags the proxy runs with. `npm start`, the Dockerfile's ENTRYPOINT, the tests and
 * the benchmarks all start it with these (a test checks that the first two say the same); the
 * installed binary, started without them, runs itself again with them (relaunch.ts).
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
