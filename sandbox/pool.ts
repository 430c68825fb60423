/**
 * A fixed-size pool of isolates, each running one call at a time, with a FIFO queue in front.
 *
 * A call into an isolate crosses to isolated-vm's thread and back, which costs the process far more
 * than a small batch's work (tens of microseconds against a few). So batches are not sent as they
 * come: those that arrive in one turn of the event loop (from every session whose rows came in that
 * turn) leave together at its end, the small ones in one call (see SandboxIsolate.runMany).
 *
 * Isolates are created on demand, reused across batches and transforms, and replaced after a memory
 * failure. A batch runs on isolated-vm's threads: the event loop only serializes the batch in and
 * deserializes the result out, so other work keeps going while transforms run.
 *
 * A catastrophic V8 error (one allocation larger than the heap can ever hold, e.g.
 * `new Array(2 ** 26).fill(0)`) cannot be recovered from: the isolate's thread stays wedged and the
 * process may no longer exit on its own. The pool fails that batch with kind 'memory', abandons the
 * isolate, keeps serving with a fresh one, and tells `onCatastrophicError` so the application can
 * drain and restart (isolated-vm's advice).
 */
import { prepareBatch, type PreparedBatch } from './batch.js';
import { SandboxError } from './errors.js';
import { IsolateFailure, SandboxIsolate } from './isolate.js';
import { parseRuntimeResult, type RuntimeResult } from './protocol.js';
import type { BatchResult, ColumnResult, RunBatch, SandboxLimits, SandboxOptions, SandboxStats, SandboxValue } from './types.js';

function asFailure(err: unknown): IsolateFailure {
  return err instanceof IsolateFailure ? err : new IsolateFailure('throw', `sandbox runtime failure: ${err instanceof Error ? err.message : String(err)}`, true);
}

export const DEFAULT_LIMITS: SandboxLimits = { memoryMb: 64, timeoutMs: 1000 };
export const DEFAULT_ISOLATES = 2;

interface Job extends PreparedBatch {
  readonly batch: RunBatch;
  readonly resolve: (result: ColumnResult) => void;
  readonly reject: (err: Error) => void;
  /** Runs alone: a group it was in failed as a whole. */
  solo: boolean;
}

/** Batches of at most this many items share calls into an isolate, up to MAX_GROUP in one call. */
const SMALL_BATCH_ITEMS = 64;
const MAX_GROUP = 32;

function groupable(job: Job): boolean {
  return !job.solo && job.itemCount <= SMALL_BATCH_ITEMS;
}

export class SandboxPool {
  readonly #limits: SandboxLimits;
  readonly #size: number;
  readonly #onCatastrophicError: ((message: string) => void) | undefined;
  readonly #isolates = new Set<SandboxIsolate>();
  readonly #idle: SandboxIsolate[] = [];
  readonly #queue: Job[] = [];
  /** Executions and isolate creations in flight, awaited by close(). */
  readonly #pending = new Set<Promise<void>>();
  #creating = 0;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** A dispatch is set for the end of this turn of the event loop. */
  #dispatching = false;
  readonly #stats = { isolatesCreated: 0, isolatesDisposed: 0, isolatesLost: 0, compiled: 0, cacheHits: 0, calls: 0 };
  /** Hashes of functions seen drawing random numbers: their batches are seeded before they run. */
  readonly #drawsRandom = new Set<string>();

  constructor(opts: SandboxOptions = {}) {
    const memoryMb = opts.memoryMb ?? DEFAULT_LIMITS.memoryMb;
    const timeoutMs = opts.timeoutMs ?? DEFAULT_LIMITS.timeoutMs;
    const isolates = opts.isolates ?? DEFAULT_ISOLATES;
    // isolated-vm refuses less than 8 MiB.
    if (!Number.isInteger(memoryMb) || memoryMb < 8) throw new RangeError(`memoryMb must be an integer of at least 8, not ${memoryMb}`);
    // Whole milliseconds: isolated-vm takes the timeout as a uint32 where 0 means no timeout at all.
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 0x7fffffff) {
      throw new RangeError(`timeoutMs must be a positive integer, not ${timeoutMs}`);
    }
    if (!Number.isInteger(isolates) || isolates < 1) throw new RangeError(`isolates must be a positive integer, not ${isolates}`);
    this.#limits = { memoryMb, timeoutMs };
    this.#size = isolates;
    this.#onCatastrophicError = opts.onCatastrophicError;
  }

  get stats(): SandboxStats {
    return { ...this.#stats };
  }

  /**
   * Runs one batch: one call into an isolate, which applies the transform to every item. Rejects
   * with a SandboxError when the transform fails; with a TypeError when the batch itself is malformed.
   */
  run(batch: RunBatch & { readonly items: readonly SandboxValue[] }): Promise<BatchResult>;
  run(batch: RunBatch): Promise<ColumnResult>;
  run(batch: RunBatch): Promise<ColumnResult> {
    if (this.#closed) return Promise.reject(new Error('SandboxPool is closed'));
    let prepared: PreparedBatch;
    try {
      prepared = prepareBatch(batch, this.#limits, this.#drawsRandom.has(batch.fn?.hash));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return new Promise<ColumnResult>((resolve, reject) => {
      this.#queue.push({ ...prepared, batch, resolve, reject, solo: false });
      this.#dispatchAtTurnEnd();
    });
  }

  /**
   * setImmediate runs after the I/O callbacks of the current turn: every batch that the rows read
   * in this turn produced is queued by then, and the small ones leave in one call.
   */
  #dispatchAtTurnEnd(): void {
    if (this.#dispatching) return;
    this.#dispatching = true;
    setImmediate(() => {
      this.#dispatching = false;
      this.#pump();
    });
  }

  /** Fails queued batches, waits for running ones, then disposes every isolate. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    for (const job of this.#queue.splice(0)) {
      job.payload.release();
      job.reject(new Error('SandboxPool was closed before the batch ran'));
    }
    this.#closing = (async () => {
      while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
      for (const isolate of this.#isolates) this.#retire(isolate);
      this.#idle.length = 0;
    })();
    return this.#closing;
  }

  #pump(): void {
    if (this.#closed) return;
    for (let isolate = this.#idle.pop(); isolate !== undefined; isolate = this.#idle.pop()) {
      const group = this.#nextCall();
      if (group[0] === undefined) {
        this.#idle.push(isolate);
        break;
      }
      this.#stats.calls++;
      this.#track(group.length === 1 ? this.#execute(isolate, group[0]) : this.#executeGroup(isolate, group));
    }
    const wanted = Math.min(this.#queue.length, this.#size - this.#isolates.size - this.#creating);
    for (let i = 0; i < wanted; i++) this.#track(this.#spawn());
  }

  /**
   * The batches of the next call: the oldest one, and when it is small, the other small ones
   * waiting (a large batch between them does not hold them back: it gets an isolate of its own).
   */
  #nextCall(): Job[] {
    const first = this.#queue.shift();
    if (first === undefined) return [];
    if (!groupable(first)) return [first];
    const group = [first];
    for (let i = 0; i < this.#queue.length && group.length < MAX_GROUP; ) {
      const job = this.#queue[i]!;
      if (groupable(job)) {
        group.push(job);
        this.#queue.splice(i, 1);
      } else i++;
    }
    return group;
  }

  #track(work: Promise<void>): void {
    this.#pending.add(work);
    void work.finally(() => this.#pending.delete(work));
  }

  async #spawn(): Promise<void> {
    this.#creating++;
    let isolate: SandboxIsolate;
    try {
      isolate = await SandboxIsolate.create(this.#limits.memoryMb, (lost, message) => this.#onLost(lost, message));
    } catch (err) {
      this.#creating--;
      // The oldest waiting batch learns why there is no isolate; the others wait for another attempt.
      const job = this.#queue.shift();
      if (job) {
        job.payload.release();
        job.reject(err instanceof Error ? err : new Error(String(err)));
      }
      this.#pump();
      return;
    }
    this.#creating--;
    this.#stats.isolatesCreated++;
    this.#isolates.add(isolate);
    if (this.#closed) {
      this.#retire(isolate);
      return;
    }
    this.#idle.push(isolate);
    this.#pump();
  }

  async #execute(isolate: SandboxIsolate, job: Job): Promise<void> {
    let outcome: RuntimeResult | IsolateFailure;
    try {
      outcome = parseRuntimeResult(await isolate.run(job.payload, this.#limits.timeoutMs), job.itemCount);
    } catch (err) {
      outcome = asFailure(err);
    }
    this.#release(isolate, this.#settle(job, outcome));
  }

  /**
   * Several small batches in one call, within one batch's time limit. If the call fails as a whole
   * (a timeout, a memory breach, a lost isolate), which batch caused it is unknown: each runs again
   * alone, so only the culprit fails, with its own full limits.
   */
  async #executeGroup(isolate: SandboxIsolate, jobs: Job[]): Promise<void> {
    let outcomes: (RuntimeResult | IsolateFailure)[] | IsolateFailure;
    try {
      const raw = await isolate.runMany(jobs.map((j) => j.payload), this.#limits.timeoutMs);
      outcomes = jobs.map((j, i) => {
        try {
          return parseRuntimeResult(raw[i], j.itemCount);
        } catch (err) {
          return asFailure(err);
        }
      });
    } catch (err) {
      outcomes = asFailure(err);
    }
    let retire: boolean;
    if (outcomes instanceof IsolateFailure) {
      retire = outcomes.retire;
      for (const j of jobs) j.solo = true;
      if (this.#closed) {
        for (const j of jobs) {
          j.payload.release();
          j.reject(new Error('SandboxPool was closed before the batch ran'));
        }
      } else this.#queue.unshift(...jobs);
    } else {
      retire = false;
      jobs.forEach((j, i) => {
        j.payload.release();
        retire = this.#settle(j, outcomes[i]!) || retire;
      });
    }
    this.#release(isolate, retire);
  }

  /** An isolate's call is over: it serves the next batch, unless it must not. */
  #release(isolate: SandboxIsolate, retire: boolean): void {
    if (retire || this.#closed || isolate.lost) this.#retire(isolate);
    else this.#idle.push(isolate);
    this.#pump();
  }

  /** Resolves or rejects a batch; returns whether its isolate must not run another. */
  #settle(job: Job, outcome: RuntimeResult | IsolateFailure): boolean {
    let retire: boolean;
    if (outcome instanceof IsolateFailure) {
      job.reject(new SandboxError(outcome.kind, job.fn.name, outcome.message));
      retire = outcome.retire;
    } else {
      if (outcome.compiled) this.#stats.compiled++;
      if (outcome.cacheHit) this.#stats.cacheHits++;
      if (!outcome.ok && 'needSeed' in outcome) return this.#runSeeded(job);
      if (outcome.ok) {
        const reads = job.batch.reportReads === true ? { reads: outcome.reads } : {};
        job.resolve('text' in outcome ? { text: outcome.text, ...reads } : { items: outcome.items, ...reads });
      }
      else job.reject(new SandboxError(outcome.kind, job.fn.name, outcome.message, outcome.index));
      // An allocation failure the transform surfaced as a RangeError still leaves a heap near its
      // limit: start the next batch on a fresh isolate.
      retire = !outcome.ok && outcome.kind === 'memory';
    }
    return retire;
  }

  /**
   * A batch that went without a seed drew a random number: it runs again first in line, seeded
   * (batches are hermetic, so the stopped run left nothing behind), and so does every later batch
   * of its function. The isolate may serve on.
   */
  #runSeeded(job: Job): false {
    this.#drawsRandom.add(job.fn.hash);
    if (this.#closed) {
      job.reject(new Error('SandboxPool was closed before the batch ran'));
      return false;
    }
    if (typeof job.batch.seed === 'string') {
      job.reject(new SandboxError('throw', job.fn.name, 'sandbox runtime asked for the seed it was given'));
      return false;
    }
    let prepared: PreparedBatch;
    try {
      prepared = prepareBatch(job.batch, this.#limits, true);
    } catch (err) {
      job.reject(err instanceof Error ? err : new Error(String(err)));
      return false;
    }
    this.#queue.unshift({ ...job, ...prepared });
    return false;
  }

  #retire(isolate: SandboxIsolate): void {
    if (!this.#isolates.delete(isolate)) return;
    if (isolate.lost) return;
    isolate.dispose();
    this.#stats.isolatesDisposed++;
  }

  #onLost(isolate: SandboxIsolate, message: string): void {
    if (this.#isolates.delete(isolate)) this.#stats.isolatesLost++;
    const idle = this.#idle.indexOf(isolate);
    if (idle >= 0) this.#idle.splice(idle, 1);
    try {
      this.#onCatastrophicError?.(message);
    } catch {
      // The application's handler must not break the pool.
    }
  }
}
