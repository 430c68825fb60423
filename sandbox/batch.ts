/** Checking a RunBatch on the host and copying it out of the host heap for the isolate. */
import ivm from 'isolated-vm';
import { SandboxError } from './errors.js';
import { hashNamesSource } from './hash.js';
import { textFits, type RuntimePayload } from './protocol.js';
import { seedWords } from './seed.js';
import type { RunBatch, SandboxFunction, SandboxLimits, TextColumn } from './types.js';

/** Longest transform source accepted, in characters. */
export const MAX_SOURCE_CHARS = 1 << 20;

/**
 * The estimated size a batch's output may reach: half the isolate's heap, because the output is
 * built in that heap next to the input, and copying it out needs room too (strings made by
 * concatenation or repeat() are flattened then).
 */
export function maxOutputBytes(limits: SandboxLimits): number {
  return (limits.memoryMb * 1024 * 1024) / 2;
}

export interface PreparedBatch {
  readonly fn: SandboxFunction;
  /** Serialized once here, deserialized inside the isolate; the host's objects never cross. */
  readonly payload: ivm.ExternalCopy<RuntimePayload>;
  readonly itemCount: number;
}

/**
 * The source and hash each function object was last found to match with: the same transform runs
 * batch after batch, and hashing its source for each one was a noticeable part of a small batch.
 */
const checked = new WeakMap<SandboxFunction, { readonly source: string; readonly hash: string }>();

function hashChecked(fn: SandboxFunction): boolean {
  const seen = checked.get(fn);
  if (seen !== undefined && seen.source === fn.source && seen.hash === fn.hash) return true;
  if (!hashNamesSource(fn.source, fn.hash)) return false;
  checked.set(fn, { source: fn.source, hash: fn.hash });
  return true;
}

/**
 * `seedNow`: compute a lazy seed up front (the function is known to draw random numbers); otherwise
 * the batch goes without and asks for it when it draws one.
 */
export function prepareBatch(batch: RunBatch, limits: SandboxLimits, seedNow: boolean): PreparedBatch {
  const { fn } = batch;
  if (typeof fn !== 'object' || fn === null || typeof fn.name !== 'string' || typeof fn.source !== 'string' || typeof fn.hash !== 'string') {
    throw new TypeError('batch.fn must be a SandboxFunction');
  }
  if (fn.kind !== 'column' && fn.kind !== 'row') throw new TypeError(`transform "${fn.name}" has unknown kind ${String(fn.kind)}`);
  if (fn.source.length > MAX_SOURCE_CHARS) {
    throw new SandboxError('compile', fn.name, `source is longer than ${MAX_SOURCE_CHARS} characters`);
  }
  // Compiled functions are cached under the hash: a hash naming another source would run that one.
  if (!hashChecked(fn)) throw new SandboxError('compile', fn.name, 'hash does not match functionHash(source) for this sandbox runtime or one it behaves as');
  if (!(batch.clock instanceof Date) || !Number.isFinite(batch.clock.getTime())) throw new TypeError('batch.clock must be a valid Date');
  const { seed } = batch;
  if (typeof seed !== 'string' && typeof seed !== 'function') throw new TypeError('batch.seed must be a string or a function');
  const { items } = batch;
  let itemCount: number;
  if (Array.isArray(items)) itemCount = items.length;
  else {
    const column = items as Partial<TextColumn>;
    if (fn.kind !== 'column' || typeof column.text !== 'string' || !(column.lengths instanceof Int32Array) || !textFits(column.text, column.lengths, false)) {
      throw new TypeError('batch.items must be an array, or for a column transform a TextColumn whose lengths add up to its text');
    }
    itemCount = column.lengths.length;
  }

  const payload: RuntimePayload = {
    hash: fn.hash,
    source: fn.source,
    kind: fn.kind,
    params: batch.params,
    ctx: batch.ctx,
    clock: batch.clock.getTime(),
    seed: typeof seed === 'string' ? seedWords(seed) : seedNow ? seedWords(lazySeed(seed, fn.name)) : null,
    items: Array.isArray(items) ? items : null,
    text: Array.isArray(items) ? null : (items as TextColumn).text,
    lengths: Array.isArray(items) ? null : (items as TextColumn).lengths,
    maxOutputBytes: maxOutputBytes(limits),
  };
  let copy: ivm.ExternalCopy<RuntimePayload>;
  try {
    copy = new ivm.ExternalCopy(payload);
  } catch (err) {
    throw new TypeError(`batch for transform "${fn.name}" is not structured-clone data: ${err instanceof Error ? err.message : String(err)}`);
  }
  return { fn, payload: copy, itemCount };
}

function lazySeed(seed: () => string, name: string): string {
  const value = seed();
  if (typeof value !== 'string') throw new TypeError(`the seed function of the batch for transform "${name}" returned no string`);
  return value;
}
