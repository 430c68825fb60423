/**
 * Runs a batch that its timeout stops, closes the pool at once and ends the process the way the
 * proxy does. Run in its own process by hostile.test.ts, which checks the exit code.
 */
import { SandboxPool, exitWhenIdle, sandboxFunction } from '../../../sandbox/index.js';

const pool = new SandboxPool({ isolates: 1, memoryMb: 64, timeoutMs: 50 });
const fn = sandboxFunction('spin', 'column', "(v) => { try { for (;;) {} } catch (e) { return 'escaped'; } }");
const outcome = await pool.run({ fn, items: [1], params: {}, ctx: {}, clock: new Date(0), seed: 'exit' }).then(
  () => 'returned',
  (err: unknown) => (err instanceof Error ? err.message : String(err)),
);
await pool.close();
process.stdout.write(`${JSON.stringify(outcome)}\n`);
exitWhenIdle(0);
