/**
 * The recorder's own connection to a remote provenance database, kept up: when it breaks, the
 * recorder spools and this reconnects with back-off; once connected again the recorder is told,
 * so the spool is written without waiting for its next retry.
 */
import type { SqlRunner } from '../registry/migrate.js';
import type { StoreConnection } from '../services.js';

export class StoreLink {
  private store: StoreConnection | null = null;
  private stopped = false;
  private connecting: Promise<void> | null = null;

  constructor(
    private readonly connect: () => Promise<StoreConnection>,
    private readonly log: (msg: string) => void,
    private readonly onUp: () => void,
  ) {}

  /** The live connection, or null while there is none. */
  current(): SqlRunner | null {
    return this.store;
  }

  /** Connect in the background, retrying until it works or the link is closed. */
  start(): Promise<void> {
    this.connecting ??= this.loop().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  async close(): Promise<void> {
    this.stopped = true;
    const s = this.store;
    this.store = null;
    await s?.close().catch(() => undefined);
  }

  private async loop(): Promise<void> {
    let delay = 250;
    let said = false;
    while (!this.stopped) {
      try {
        const store = await this.connect();
        if (this.stopped) {
          await store.close().catch(() => undefined);
          return;
        }
        store.onLost(() => {
          if (this.store !== store) return;
          this.store = null;
          if (!this.stopped) {
            this.log('provenance store: connection lost; reconnecting');
            void this.start();
          }
        });
        this.store = store;
        if (said) this.log('provenance store: connected again');
        this.onUp();
        return;
      } catch (err) {
        if (!said) this.log(`provenance store: cannot connect (${err instanceof Error ? err.message : String(err)}); retrying`);
        said = true;
        await new Promise((r) => setTimeout(r, delay).unref());
        delay = Math.min(delay * 2, 5_000);
      }
    }
  }
}
