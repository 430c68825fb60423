/**
 * The proxy's connection to the database that holds its state, as plugins see it
 * (plugins/services.ts): the store in use, why there is none, and who must hear when it is
 * attached again after a break or lost.
 */
import type { StateService, StoreConnection, StoreWatcher } from '../plugins/services.js';
import type { StateStore } from './state-store.js';

export interface StateLinkOptions {
  /**
   * A connection, its schema up to date: the first one, and a new one each time the last broke.
   * Retries until it works or the proxy stops, telling `failed` why each attempt did not.
   */
  readonly connect: (failed: (reason: string) => void) => Promise<StateStore>;
  /** A connection to another database, its schema up to date. */
  readonly open: (url: string) => Promise<StateStore>;
  readonly stopped: () => boolean;
  readonly log: (msg: string) => void;
}

export class StateLink implements StateService {
  private store: StateStore | null = null;
  private why: string | null = null;
  private readonly watchers: StoreWatcher[] = [];
  private firstAttach: Promise<StoreConnection> | null = null;
  /** Settles with the first connection. */
  readonly ready: Promise<StateStore>;

  constructor(private readonly opts: StateLinkOptions) {
    this.ready = opts.connect((reason) => (this.why = reason));
  }

  current(): StoreConnection | null {
    return this.store;
  }

  problem(): string | null {
    return this.why;
  }

  watch(watcher: StoreWatcher): void {
    if (this.firstAttach) throw new Error('state store watchers must be registered before it is attached');
    this.watchers.push(watcher);
  }

  attached(): Promise<StoreConnection> {
    this.firstAttach ??= this.ready.then(async (store) => {
      await this.attach(store);
      return store;
    });
    return this.firstAttach;
  }

  open(url: string): Promise<StoreConnection> {
    return this.opts.open(url);
  }

  async close(): Promise<void> {
    await this.store?.close();
  }

  // The connection can break (the upstream restarts): watchers hear it at once, so that what they
  // read through it (the registry) counts as unknown until it is read again.
  private async attach(store: StateStore): Promise<void> {
    this.store = store;
    this.why = null;
    store.onLost(() => {
      if (this.opts.stopped()) return;
      this.store = null;
      for (const w of this.watchers) w.lost();
      this.why = 'the proxy lost its connection to the database; reconnecting';
      this.opts.log('state store: connection lost; reconnecting');
      void this.opts.connect((reason) => (this.why = reason)).then((next) => this.attach(next), () => undefined);
    });
    for (const w of this.watchers) await w.attached(store);
  }
}
