/** Public types of the transform sandbox. */

export type TransformKind = 'column' | 'row';

/**
 * A registered transform. `source` is one JavaScript function expression (see the accepted forms
 * in `index.ts`); `hash` is `functionHash(source)`, which the pool checks before running it because
 * compiled functions are cached under that hash.
 */
export interface SandboxFunction {
  readonly name: string;
  readonly kind: TransformKind;
  readonly source: string;
  readonly hash: string;
}

/** Limits applied to every batch. */
export interface SandboxLimits {
  /** Heap limit of each isolate, in MiB (isolated-vm's `memoryLimit`, minimum 8). Half of it caps the output of one batch. */
  readonly memoryMb: number;
  /** Wall-clock limit of one batch (compile, every item, output checks), in milliseconds. */
  readonly timeoutMs: number;
}

export interface SandboxOptions extends Partial<SandboxLimits> {
  /** Number of isolates, each running one batch at a time. */
  readonly isolates?: number;
  /**
   * Called when V8 reports an unrecoverable error in an isolate (an allocation too large to satisfy
   * at all). The pool abandons that isolate and keeps serving with a fresh one, but the abandoned
   * thread cannot be reclaimed and may keep the process from exiting: isolated-vm's advice is to
   * drain and restart the process, which only the application can decide to do.
   */
  readonly onCatastrophicError?: (message: string) => void;
}

/** Values that cross the boundary: structured-clone data only. */
export type SandboxValue =
  | null
  | boolean
  | number
  | string
  | bigint
  | Date
  | Uint8Array
  | SandboxValue[]
  | { [k: string]: SandboxValue };

export interface RunBatch {
  readonly fn: SandboxFunction;
  /** JSON parameters of the transform. */
  readonly params: SandboxValue;
  /** Context object (user, roles, database, application_name, client address, statement timestamp...). */
  readonly ctx: SandboxValue;
  /** What `Date.now()` and `new Date()` return inside, fixed for the whole batch. */
  readonly clock: Date;
  /**
   * Seeds `Math.random` (the caller passes function hash + input hash). A function is called only
   * when the batch draws a random number, and from then on before every batch of that function:
   * most transforms never draw one, and hashing a batch's input costs more than they do.
   */
  readonly seed: string | (() => string);
  /**
   * Column transform: values, or a TextColumn (strings and nulls only); row transform: rows as
   * objects `{ col: value }`.
   */
  readonly items: readonly SandboxValue[] | TextColumn;
  /** Whether the result reports what the batch read besides its items (see BatchReads). */
  readonly reportReads?: boolean;
}

/**
 * A column of strings and nulls laid end to end: what most column transforms get and return. It
 * crosses into the isolate and back as one string rather than one value per item, which cost the
 * event loop more than anything else about a batch.
 */
export interface TextColumn {
  /** The non-null values, concatenated. */
  readonly text: string;
  /** Per item, the length of its value in `text` (UTF-16 units); -1: null. */
  readonly lengths: Int32Array;
}

/** The marker in a TextColumn result's lengths for an item that came back as it went in. */
export const UNCHANGED = -2;

/**
 * What a batch's output may depend on besides its items and parameters, noted inside the isolate
 * where the transform cannot reach: the context fields it read, whether it read the clock
 * (`Date`), and whether it drew a random number (whose sequence depends on the whole batch).
 */
export interface BatchReads {
  readonly ctx: readonly string[];
  readonly clock: boolean;
  readonly random: boolean;
}

export interface BatchResult {
  /** One entry per input item, in order. Row transform: `null` means "drop this row". */
  readonly items: SandboxValue[];
  readonly reads?: BatchReads;
}

/**
 * What a column transform given a TextColumn returned: a TextColumn of the values it changed
 * (lengths UNCHANGED for the others) when every result was a string or null, else every result.
 */
export type ColumnResult = BatchResult | { readonly text: TextColumn; readonly reads?: BatchReads };

export interface SandboxStats {
  readonly isolatesCreated: number;
  /** Isolates retired by the pool: replaced after a memory failure, or closed. */
  readonly isolatesDisposed: number;
  /** Isolates abandoned after a catastrophic V8 error (see `onCatastrophicError`). */
  readonly isolatesLost: number;
  /** Sources compiled (a cache miss that compiled). */
  readonly compiled: number;
  /** Batches whose function was already compiled in the isolate that ran them. */
  readonly cacheHits: number;
  /** Calls into an isolate: each runs one batch, or several small ones that waited together. */
  readonly calls: number;
}
