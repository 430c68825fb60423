/**
 * The transform sandbox: runs registered JavaScript transforms on batches of values or rows inside
 * isolated-vm isolates, deterministically, with memory and time limits.
 *
 * ## Transform source
 *
 * A transform's source is ONE JavaScript function expression, for example
 *
 *     (v, params, ctx) => v.slice(0, 2) + '***'
 *     function mask(v, params, ctx) { return v === null ? null : params.prefix + v; }
 *     (() => { const re = /\d/g; return (v) => v.replace(re, '#'); })()
 *
 * It is evaluated as `(SOURCE)` in strict mode, so anything that is an expression evaluating to a
 * function works, including an immediately invoked setup function as above; statements, `export`,
 * async functions and generators do not, and fail with kind 'compile'. The expression is evaluated
 * afresh for every batch (the compiled code is cached), so state kept in a closure lasts one batch.
 *
 * - Column transform: `(value, params, ctx) => value`, called once per value.
 * - Row transform: `(row, params, ctx) => row | null`, where a row is `{ column: value }`; `null`
 *   drops the row.
 *
 * `params` and `ctx` are frozen copies. Results must be plain data: null, booleans, numbers,
 * strings, bigints, Dates, Uint8Arrays, arrays and plain objects, at most 64 levels deep, and all
 * the results of a batch together at most half of `memoryMb` (estimated); `undefined` is not a
 * value (return null).
 *
 * Inside, there is no `require`, `process`, timers, network or file system; `console` exists and
 * does nothing; there is no `eval` (the Function constructor remains); `Date.now()` and
 * `new Date()` return the batch clock; `Math.random()` is seeded from the batch seed; the built-ins
 * are frozen. Local-time Date methods and `Intl` defaults follow the host process's time zone and
 * locale (run with TZ=UTC for output that does not depend on the host).
 */
export { SANDBOX_RUNTIME_VERSION, functionHash, sandboxFunction } from './hash.js';
export { SandboxError, SANDBOX_ERROR_KINDS, type SandboxErrorKind } from './errors.js';
export { SandboxPool, DEFAULT_LIMITS, DEFAULT_ISOLATES } from './pool.js';
export { exitWhenIdle, EXIT_GRACE_MS } from './exit.js';
export { MAX_OUTPUT_DEPTH, FUNCTION_CACHE_SIZE } from './runtime.js';
export { MAX_SOURCE_CHARS } from './batch.js';
export { UNCHANGED } from './types.js';
export type {
  BatchReads,
  BatchResult,
  ColumnResult,
  TextColumn,
  RunBatch,
  SandboxFunction,
  SandboxLimits,
  SandboxOptions,
  SandboxStats,
  SandboxValue,
  TransformKind,
} from './types.js';
