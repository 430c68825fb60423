/** What crosses into the isolate's `run` and what comes back (see `runtime.ts`). */
import { isSandboxErrorKind, type SandboxErrorKind } from './errors.js';
import type { SeedWords } from './seed.js';
import { UNCHANGED, type BatchReads, type SandboxValue, type TextColumn, type TransformKind } from './types.js';

export interface RuntimePayload {
  readonly hash: string;
  readonly source: string;
  readonly kind: TransformKind;
  readonly params: SandboxValue;
  readonly ctx: SandboxValue;
  /** Milliseconds since the epoch. */
  readonly clock: number;
  /** null: not computed yet; the batch asks for it by drawing a number (see `needSeed`). */
  readonly seed: SeedWords | null;
  /** Items, or a TextColumn's (see types.ts): the string and the lengths. */
  readonly items: readonly SandboxValue[] | null;
  readonly text: string | null;
  readonly lengths: Int32Array | null;
  readonly maxOutputBytes: number;
}

interface CacheOutcome {
  /** The isolate compiled the source for this batch. */
  readonly compiled: boolean;
  /** The isolate already had the source compiled. */
  readonly cacheHit: boolean;
}

export type RuntimeResult =
  | (CacheOutcome & { readonly ok: true; readonly items: SandboxValue[]; readonly reads: BatchReads })
  | (CacheOutcome & { readonly ok: true; readonly text: TextColumn; readonly reads: BatchReads })
  /** The batch came without a seed and drew a random number: it must run again with one. */
  | (CacheOutcome & { readonly ok: false; readonly needSeed: true })
  | (CacheOutcome & {
      readonly ok: false;
      readonly kind: SandboxErrorKind;
      readonly message: string;
      /** The item being transformed or checked, or undefined when the failure is not about one item. */
      readonly index: number | undefined;
    });

/**
 * Checks the shape of what `run` returned. The values themselves need no check here: the runtime
 * rebuilt them into plain data and structured clone can only produce fresh host values.
 */
export function parseRuntimeResult(raw: unknown, itemCount: number): RuntimeResult {
  if (typeof raw !== 'object' || raw === null) throw new Error('sandbox runtime returned no result object');
  const r = raw as Record<string, unknown>;
  const compiled = r.compiled === true;
  const cacheHit = r.cacheHit === true;
  if (r.ok === true && typeof r.text === 'string') {
    const { text, lengths } = r;
    if (!(lengths instanceof Int32Array) || lengths.length !== itemCount || !textFits(text, lengths)) {
      throw new Error('sandbox runtime returned a malformed text column');
    }
    return { ok: true, text: { text, lengths }, compiled, cacheHit, reads: parseReads(r.reads) };
  }
  if (r.ok === true) {
    const items = r.items;
    if (!Array.isArray(items) || items.length !== itemCount) {
      throw new Error(`sandbox runtime returned ${Array.isArray(items) ? items.length : 'no'} items for ${itemCount}`);
    }
    return { ok: true, items: items as SandboxValue[], compiled, cacheHit, reads: parseReads(r.reads) };
  }
  if (r.ok === false && r.needSeed === true) return { ok: false, needSeed: true, compiled, cacheHit };
  if (r.ok === false && isSandboxErrorKind(r.kind) && typeof r.message === 'string' && typeof r.index === 'number') {
    return { ok: false, kind: r.kind, message: r.message, index: r.index >= 0 ? r.index : undefined, compiled, cacheHit };
  }
  throw new Error('sandbox runtime returned a malformed result');
}

/** What a batch read besides its items, as the runtime noted it. */
function parseReads(raw: unknown): BatchReads {
  if (typeof raw !== 'object' || raw === null) throw new Error('sandbox runtime returned no reads');
  const r = raw as Record<string, unknown>;
  const ctx = r.ctx;
  if (!Array.isArray(ctx) || !ctx.every((k): k is string => typeof k === 'string') || typeof r.clock !== 'boolean' || typeof r.random !== 'boolean') {
    throw new Error('sandbox runtime returned malformed reads');
  }
  return { ctx, clock: r.clock, random: r.random };
}

/** Whether a TextColumn's lengths (-1 null, UNCHANGED when `changes` allows it) add up to its text. */
export function textFits(text: string, lengths: Int32Array, changes = true): boolean {
  let total = 0;
  for (const n of lengths) {
    if (n >= 0) total += n;
    else if (n !== -1 && !(changes && n === UNCHANGED)) return false;
  }
  return total === text.length;
}
