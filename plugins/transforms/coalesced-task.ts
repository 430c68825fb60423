/**
 * A task that many events ask for and one run satisfies (re-reading the transform registry on
 * every NOTIFY, which any role may send): at most one run in flight and one pending, the pending
 * one standing for every request made meanwhile, and runs started at least `minIntervalMs` apart.
 * A flood of requests costs at most one run per interval.
 */
export class CoalescedTask {
  private running: Promise<void> | null = null;
  private pending: Promise<void> | null = null;
  private lastStart = -Infinity;

  constructor(
    private readonly run: () => Promise<void>,
    private readonly minIntervalMs: number,
  ) {}

  /** Resolves once a run that started after this call has ended (it never rejects). */
  request(): Promise<void> {
    if (this.pending !== null) return this.pending;
    const after = this.running ?? Promise.resolve();
    const next = after.then(async () => {
      const wait = this.lastStart + this.minIntervalMs - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      this.pending = null;
      this.running = next;
      this.lastStart = performance.now();
      try {
        await this.run();
      } catch {
        // The run reports its own failures; a request only waits for it.
      } finally {
        if (this.running === next) this.running = null;
      }
    });
    this.pending = next;
    return next;
  }
}
