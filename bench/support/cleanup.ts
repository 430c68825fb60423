/**
 * Ordered teardown for a benchmark: steps run last-registered first (the proxy goes before the
 * cluster it fronts), exactly once, whether the run ends normally, by an error or by a signal.
 */
import { killAllChildren, killCommands } from './processes.js';

interface Step {
  name: string;
  fn: () => Promise<void>;
}

export class Interrupted extends Error {
  constructor(signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
    this.name = 'Interrupted';
  }
}

export class Cleanup {
  private readonly steps: Step[] = [];
  private running: Promise<void> | null = null;
  private signalled: NodeJS.Signals | null = null;
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    if (this.signalled) {
      // A second Ctrl-C while tearing down: give up on the orderly path.
      killAllChildren();
      process.exit(130);
    }
    this.signalled = signal;
    process.stderr.write(`\n${signal} received: stopping benchmark processes and removing temporary files\n`);
    // pgbench etc. run in their own process groups, so they did not see the terminal's signal.
    killCommands();
    void this.run().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };

  /** Set once a signal arrived: errors from then on are consequences of the teardown. */
  get interrupted(): boolean {
    return this.signalled !== null;
  }

  /** Throw if a signal arrived, so the benchmark stops starting new work while teardown runs. */
  checkpoint(): void {
    if (this.signalled) throw new Interrupted(this.signalled);
  }

  add(name: string, fn: () => Promise<void>): void {
    this.steps.push({ name, fn });
  }

  installSignalHandlers(): void {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
    process.on('SIGHUP', this.onSignal);
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      while (this.steps.length > 0) {
        const step = this.steps.pop();
        if (!step) break;
        try {
          await step.fn();
        } catch (err) {
          // Keep going: one failed step must not leave the remaining processes behind.
          process.stderr.write(`cleanup: ${step.name}: ${err instanceof Error ? err.message : String(err)}\n`);
        }
      }
      process.off('SIGINT', this.onSignal);
      process.off('SIGTERM', this.onSignal);
      process.off('SIGHUP', this.onSignal);
    })();
    return this.running;
  }
}
