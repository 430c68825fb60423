/**
 * Writes execution records to the provenance database off the client's path: a bounded queue,
 * written in batches by an idempotent write (each record carries its own id). While the database
 * cannot take them, batches go to the spool file instead; once it is back, the spool is written
 * first, in order, and only then new records, so the table receives everything once and in the
 * order it happened.
 *
 * Durability: `add(rows, true)` resolves once its records are in the database or on disk in the
 * spool (the sync mode holds the client's CommandComplete until then). Without it, records wait
 * at most `flushMs` (or until a batch is full) before they are written: that is the window a
 * crash of the proxy can lose.
 */
import type { SqlRunner } from '../registry/migrate.js';
import type { Spool } from './spool.js';

export interface RecorderOptions {
  readonly spool: Spool;
  /** The connection to the provenance database now; null while it is down. */
  readonly store: () => SqlRunner | null;
  /** Writes a batch of records to the database; must skip records already there (by id). */
  readonly write: (db: SqlRunner, rows: readonly unknown[]) => Promise<void>;
  readonly batchSize?: number;
  readonly flushMs?: number;
  /** Queued records beyond which the queue is spilled to the spool rather than held in memory. */
  readonly maxQueued?: number;
  /** How soon to try the database again after it failed. */
  readonly retryMs?: number;
  readonly log: (msg: string) => void;
}

export interface RecorderStatus {
  /** In memory, not yet written anywhere. */
  readonly queued: number;
  /** In the spool file, waiting for the database. */
  readonly spooled: number;
  /** Written to the database by this process. */
  readonly written: number;
  readonly lastError: string | null;
}

interface Entry {
  readonly row: unknown;
  readonly done: (() => void) | null;
}

export class Recorder {
  private queue: Entry[] = [];
  private inFlight = 0;
  private written = 0;
  private lastError: string | null = null;
  private flushing: Promise<void> | null = null;
  /**
   * How many of the queue's first records a flush asked for and are not written yet. The writer
   * writes those, and full batches, but leaves a partial batch of newer records for their timer:
   * writing whatever arrived during the last write would make batches ever smaller under steady
   * load (a few records each), and each INSERT costs the server about 0.7 ms on top of its rows.
   */
  private requested = 0;
  private draining: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private retry: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly batchSize: number;
  private readonly flushMs: number;
  private readonly maxQueued: number;
  private readonly retryMs: number;

  constructor(private readonly opts: RecorderOptions) {
    this.batchSize = opts.batchSize ?? 500;
    this.flushMs = opts.flushMs ?? 50;
    this.maxQueued = opts.maxQueued ?? 20_000;
    this.retryMs = opts.retryMs ?? 1_000;
  }

  /** Start writing what a previous run left in the spool. */
  start(): void {
    if (this.opts.spool.count > 0) {
      this.opts.log(`provenance: ${this.opts.spool.count} spooled execution records to write`);
      void this.drain();
    }
  }

  /** The database is reachable again: write the spool now rather than at the next retry. */
  kick(): void {
    if (this.opts.spool.count > 0) void this.drain();
  }

  status(): RecorderStatus {
    return { queued: this.queue.length + this.inFlight, spooled: this.opts.spool.count, written: this.written, lastError: this.lastError };
  }

  /** Queue records; with `durable`, the promise settles once they are stored (database or spool). */
  add(rows: readonly unknown[], durable: boolean): Promise<void> | void {
    if (rows.length === 0) return;
    if (this.closed) throw new Error('the provenance recorder is closed');
    if (!durable) {
      for (const row of rows) this.queue.push({ row, done: null });
      if (this.queue.length >= this.batchSize) void this.flush();
      else this.timer ??= setTimeout(() => void this.flush(), this.flushMs);
      return;
    }
    return new Promise<void>((resolve) => {
      const last = rows.length - 1;
      rows.forEach((row, i) => this.queue.push({ row, done: i === last ? resolve : null }));
      // Gather what other sessions add in this turn of the event loop into the same batch.
      if (this.queue.length >= this.batchSize) void this.flush();
      else setImmediate(() => void this.flush());
    });
  }

  /** Writes everything queued; the promise settles when nothing is left in memory. */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.requested = this.queue.length;
    this.flushing ??= this.writeQueue().finally(() => {
      this.flushing = null;
      if (this.requested > 0) void this.flush();
      else if (this.queue.length > 0) this.timer ??= setTimeout(() => void this.flush(), this.flushMs);
    });
    return this.flushing;
  }

  /** Graceful stop: everything queued is written, or spooled if the database is down. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
    if (this.opts.spool.count > 0 && this.opts.store()) await this.drain();
    if (this.retry) clearTimeout(this.retry);
    await this.draining;
    await this.opts.spool.close();
  }

  private async writeQueue(): Promise<void> {
    while (this.queue.length > 0 && (this.requested > 0 || this.queue.length >= this.batchSize)) {
      // Far behind (a slow database): move everything to disk rather than grow without bound.
      const take = this.queue.length > this.maxQueued ? this.queue.length : this.batchSize;
      const batch = this.queue.splice(0, take);
      this.requested = Math.max(0, this.requested - batch.length);
      this.inFlight = batch.length;
      try {
        await this.store(batch.map((e) => e.row), take > this.batchSize);
      } finally {
        this.inFlight = 0;
        for (const e of batch) e.done?.();
      }
    }
  }

  /** One batch to the database, or to the spool when the spool is not empty or the database fails. */
  private async store(rows: unknown[], spill: boolean): Promise<void> {
    const spool = this.opts.spool;
    const db = this.opts.store();
    if (!spill && spool.count === 0 && db) {
      try {
        await this.opts.write(db, rows);
        this.written += rows.length;
        return;
      } catch (err) {
        this.failed(err);
      }
    }
    await spool.append(rows);
    this.scheduleDrain();
  }

  private failed(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    if (this.lastError !== message) this.opts.log(`provenance: the database did not take execution records (${message}); spooling them`);
    this.lastError = message;
  }

  private scheduleDrain(): void {
    if (this.retry || this.draining || this.closed) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      void this.drain();
    }, this.retryMs);
    this.retry.unref();
  }

  /** Writes the spool to the database, oldest first, and removes what was written. */
  private drain(): Promise<void> {
    if (this.draining) return this.draining;
    const run = this.drainSpool().finally(() => {
      if (this.draining === run) this.draining = null;
    });
    this.draining = run;
    return run;
  }

  private async drainSpool(): Promise<void> {
    const spool = this.opts.spool;
    try {
      while (spool.count > 0) {
        const db = this.opts.store();
        if (!db) throw new Error('the provenance database is not connected');
        const { records, end } = await spool.head(this.batchSize * 10);
        if (records.length === 0) break;
        for (let i = 0; i < records.length; i += this.batchSize) {
          await this.opts.write(db, records.slice(i, i + this.batchSize));
        }
        await spool.consume(end, records.length);
        this.written += records.length;
      }
      if (this.lastError !== null) this.opts.log('provenance: the spool is written; recording goes to the database again');
      this.lastError = null;
    } catch (err) {
      this.failed(err);
      // The retry timer starts once this drain has settled.
      setImmediate(() => this.scheduleDrain());
    }
  }
}
