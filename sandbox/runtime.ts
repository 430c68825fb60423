/**
 * The bootstrap evaluated once in every isolate, before any transform exists there. It hardens the
 * isolate's global, makes it deterministic, and evaluates to the one function the host ever calls:
 * `run(payload)`, which runs a whole batch and returns plain data (see `protocol.ts` for both shapes).
 *
 * Transforms run in this same global, so the bootstrap:
 * - reads every intrinsic it uses into closure constants first; nothing a transform can reach is
 *   looked up again by the runner;
 * - replaces `Date` (no-argument forms return the batch clock), `Math.random` (sfc32 seeded per
 *   batch, the seed asked for only by batches that draw a number), the default-date forms of `Intl.DateTimeFormat`, and `console` (a no-op);
 * - deletes what is non-deterministic or needless: `WeakRef`, `FinalizationRegistry` (observe GC),
 *   `SharedArrayBuffer`, `Atomics`, `WebAssembly`, `eval` (global code could leave declarations
 *   behind for the next batch), the legacy `RegExp.$1`-style statics (they carry the last match of a
 *   previous batch); a bare V8 context has no timers, `process`, `require`, `performance` or
 *   `crypto` to begin with;
 * - freezes everything reachable from the global and the hidden intrinsics, so that one batch
 *   cannot change what the next one (perhaps another transform) sees. Freezing makes assignments
 *   such as `this.name = ...` in an Error subclass fail because the inherited property is read-only
 *   (the "override mistake"), so the few properties code commonly shadows become accessors whose
 *   setter defines an own property instead.
 *
 * Batches are hermetic: the function is re-created from its cached factory for every batch, so
 * closure state from an earlier batch never leaks into a later one. Transform source runs in strict
 * mode.
 *
 * Everything a transform returns is rebuilt, inside the isolate and under the batch timeout, into
 * fresh plain data read through property descriptors only (getters are rejected, never called), so
 * what isolated-vm then copies out is data the runner made itself.
 *
 * The source is plain JavaScript in a string (not a compiled TypeScript function's `toString()`)
 * so that what runs in the isolate is exactly what is reviewed here, whatever tool built the host.
 */
import { RUNTIME_HARDEN } from './runtime-harden.js';
import { RUNTIME_OUTPUT } from './runtime-output.js';

export { FUNCTION_CACHE_SIZE, MAX_MESSAGE_CHARS, MAX_OUTPUT_DEPTH } from './runtime-limits.js';

/** The text columns part, and the end of the bootstrap function. */
const RUNTIME_TEXT_COLUMNS = String.raw`  // ---- Text columns (see TextColumn in types.ts): one string and a length per item (-1: null).
  // String.prototype is frozen before any transform exists, so text.slice is the intrinsic.
  function splitText(text, lengths) {
    const items = [];
    let at = 0;
    for (let i = 0; i < lengths.length; i++) {
      const n = lengths[i];
      if (n < 0) items[i] = null;
      else {
        items[i] = text.slice(at, at + n);
        at += n;
      }
    }
    return items;
  }
  // A column transform given a text column: while every result is a string or null (one typeof
  // each), the results are laid end to end as they come, as joinText lays them, with the budget
  // normalize charges; the first other result hands the batch to runItems, from that item on.
  function runTextColumn(fn, text, lengths, params, ctx, compiled, cacheHit) {
    const count = lengths.length;
    const outLengths = new Int32ArrayCtor(count);
    let outText = '';
    let at = 0;
    for (let i = 0; i < count; i++) {
      const n = lengths[i];
      let item = null;
      if (n >= 0) {
        item = text.slice(at, at + n);
        at += n;
      }
      let result;
      try {
        result = fn(item, params, ctx);
      } catch (thrown) {
        return failure(classify(thrown, 'throw'), describe(thrown), i, compiled, cacheHit);
      }
      if (typeof result === 'string') {
        // Charged before the string is appended: a result near V8's longest string must fail
        // here, as normalize fails it, not in the concatenation.
        budget -= 16 + result.length;
        if (budget < 0) return tooLarge(i, compiled, cacheHit);
        if (result === item) outLengths[i] = UNCHANGED;
        else {
          outLengths[i] = result.length;
          outText += result;
        }
      } else if (result === null) {
        budget -= 8;
        if (budget < 0) return tooLarge(i, compiled, cacheHit);
        outLengths[i] = -1;
      } else {
        return runItems(fn, splitText(text, lengths), false, false, params, ctx, i, textItems(outText, outLengths, text, lengths, i), result, compiled, cacheHit);
      }
    }
    return { __proto__: null, ok: true, text: outText, lengths: outLengths, compiled, cacheHit, reads: batchReads() };
  }
  // What charge reports of a result at the top level.
  function tooLarge(index, compiled, cacheHit) {
    return failure('invalid-output', clip('output larger than ' + budgetLimit + ' bytes at $'), index, compiled, cacheHit);
  }
  // The first count results of runTextColumn as values, as normalize would have returned them.
  function textItems(outText, outLengths, text, lengths, count) {
    const items = [];
    let at = 0;
    let inAt = 0;
    for (let i = 0; i < count; i++) {
      const n = outLengths[i];
      const before = lengths[i];
      if (n === -1) items[i] = null;
      else if (n === UNCHANGED) items[i] = text.slice(inAt, inAt + before);
      else {
        items[i] = outText.slice(at, at + n);
        at += n;
      }
      if (before > 0) inAt += before;
    }
    return items;
  }
  // The changed values end to end; UNCHANGED (-2) for a value that came back as it went in.
  function joinText(items, out, compiled, cacheHit) {
    const lengths = new Int32ArrayCtor(out.length);
    let text = '';
    for (let i = 0; i < out.length; i++) {
      const v = out[i];
      if (v === items[i]) lengths[i] = v === null ? -1 : UNCHANGED;
      else if (v === null) lengths[i] = -1;
      else {
        lengths[i] = v.length;
        text += v;
      }
    }
    return { __proto__: null, ok: true, text, lengths, compiled, cacheHit, reads: batchReads() };
  }
})()
`;

/** One source, in three files by part; what is hashed into every transform's function hash. */
export const RUNTIME_SOURCE = RUNTIME_HARDEN + RUNTIME_OUTPUT + RUNTIME_TEXT_COLUMNS;
