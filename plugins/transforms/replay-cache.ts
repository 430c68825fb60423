/**
 * What replays computed, shared by every session: a batch's output by (function hash, parameters,
 * context, input), bounded in bytes. The sandbox is deterministic (fixed clock, Math.random seeded
 * from the function and the input bytes), so a batch given the same function, parameters,
 * context and input bytes returns the same output, and a hit needs no sandbox at all. The context
 * is part of the key because a transform may read it (roles unmask, say); a replay's context holds
 * only the moment's user, roles, database and moment (see replay-plan.ts), so sessions share it.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { BatchResult, ColumnResult, RunBatch, SandboxPool, SandboxValue } from '../../sandbox/index.js';

export interface ReplayCacheStats {
  readonly hits: number;
  readonly misses: number;
  readonly bytes: number;
}

/** About what a value holds in memory: enough to bound the cache, not an exact count. */
function approxBytes(v: SandboxValue): number {
  if (v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'bigint') return 16;
  if (typeof v === 'string') return 16 + v.length * 2;
  if (v instanceof Date) return 32;
  if (v instanceof Uint8Array) return 32 + v.byteLength;
  if (Array.isArray(v)) return v.reduce<number>((n, x) => n + approxBytes(x), 32);
  return Object.entries(v).reduce((n, [k, x]) => n + 16 + k.length * 2 + approxBytes(x), 32);
}

function resultBytes(r: ColumnResult): number {
  if ('text' in r) return 64 + r.text.text.length * 2 + r.text.lengths.byteLength;
  return r.items.reduce<number>((n, x) => n + approxBytes(x), 64);
}

/** Hits and misses of one table's batches not yet handed to takeTableCounts(). */
export interface TableCounts {
  hits: number;
  misses: number;
}

/** A result's count of one table's batches the cache did not hold, and that table. */
export interface Tally {
  misses: number;
  readonly table: { readonly oid: number };
}

export class ReplayCache {
  private readonly lru: LRUCache<string, ColumnResult> | null;
  private hits = 0;
  private misses = 0;
  private tables = new Map<number, TableCounts>();

  /** maxBytes 0: nothing is kept (every replayed batch runs in the sandbox). */
  constructor(private readonly pool: Pick<SandboxPool, 'run'>, maxBytes: number) {
    this.lru = maxBytes > 0 ? new LRUCache({ maxSize: maxBytes, sizeCalculation: (r) => Math.max(1, resultBytes(r)) }) : null;
  }

  stats(): ReplayCacheStats {
    return { hits: this.hits, misses: this.misses, bytes: this.lru?.calculatedSize ?? 0 };
  }

  /** Each table's hits and misses since the last call (for the store's per-table statistics). */
  takeTableCounts(): ReadonlyMap<number, TableCounts> {
    const taken = this.tables;
    this.tables = new Map();
    return taken;
  }

  private count(tally: Tally | undefined, hit: boolean): void {
    if (hit) this.hits++;
    else this.misses++;
    if (tally === undefined) return;
    if (!hit) tally.misses++;
    let c = this.tables.get(tally.table.oid);
    if (!c) this.tables.set(tally.table.oid, (c = { hits: 0, misses: 0 }));
    if (hit) c.hits++;
    else c.misses++;
  }

  /**
   * Runs a replayed batch, or returns what the same batch returned before. `input` describes the
   * batch's input exactly (its types, names and bytes), computed only when the cache is in use;
   * `tally` counts the batches that were not in it, and names the table whose chain the batch is
   * part of, for its counts.
   */
  run(batch: RunBatch & { readonly items: readonly SandboxValue[] }, input: () => string, tally?: Tally): Promise<BatchResult>;
  run(batch: RunBatch, input: () => string, tally?: Tally): Promise<ColumnResult>;
  async run(batch: RunBatch, input: () => string, tally?: Tally): Promise<ColumnResult> {
    if (this.lru === null) {
      this.count(tally, false);
      return this.pool.run(batch);
    }
    const key = createHash('sha256')
      .update(JSON.stringify([batch.fn.hash, batch.params, batch.ctx, batch.clock.toISOString()], (_, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)))
      .update('\0')
      .update(input())
      .digest('hex');
    const cached = this.lru.get(key);
    if (cached !== undefined) {
      this.count(tally, true);
      return cached;
    }
    this.count(tally, false);
    const out = await this.pool.run(batch);
    this.lru.set(key, out);
    return out;
  }
}
