/**
 * A column transform's part of a batch, prepared for the sandbox and put back: one call per column
 * of the transform that the result carries. The column transforms of one stage (disjoint columns,
 * see TablePlan.stages) are prepared first and leave together in one call into an isolate (see
 * SandboxPool.runTogether): each call costs the event loop about as much as a small batch's whole
 * work, and a stage of three transforms over a socket read of rows made three.
 */
import type { FieldDescription } from '../../proxy/wire/backend-messages.js';
import type { RowBatch } from '../../proxy/wire/row-batch.js';
import type { ColumnResult, RunBatch, SandboxPool, SandboxValue } from '../../sandbox/index.js';
import { decodeValue, encodeValue, type JsValue } from '../shared/codecs/codecs.js';
import { batchSeed } from './batch-seed.js';
import type { BoundTransform } from './registry-cache.js';
import { columnType, same } from './result-plan.js';
import { crossesAsText, fromTextColumn, toTextColumn } from './text-column.js';

/** One column of a batch as one transform's call: what crosses, and how its result is put back. */
export interface ColumnCall {
  readonly batch: RunBatch;
  /** The input exactly (types and bytes), for the replay cache's key. */
  readonly input: () => string;
  /** Puts the result into the batch's column. Throws CodecError as encodeValue does. */
  readonly apply: (result: ColumnResult) => void;
}

/** Where calls go: one at a time (the replay cache, or a pool without runTogether), or together. */
export interface CallRunner {
  readonly one: (call: ColumnCall) => Promise<ColumnResult>;
  readonly together?: SandboxPool['runTogether'] | undefined;
}

/**
 * The calls of column transform `t` over `rows`, for its table's result `fields` (result field
 * index → attnum) among `desc`. Throws what decoding a value throws.
 */
export function columnCalls(
  t: BoundTransform, fields: ReadonlyMap<number, number>, desc: readonly FieldDescription[],
  rows: RowBatch, ctx: SandboxValue, clock: Date,
): ColumnCall[] {
  const calls: ColumnCall[] = [];
  for (const [index, attnum] of fields) {
    if (!t.columns!.has(attnum)) continue;
    const type = columnType(desc[index]!);
    // The values as Buffers only when they are decoded one by one, or a seed is wanted.
    const raws = (): (Buffer | null)[] => Array.from({ length: rows.rows }, (_, r) => rows.field(r, index));
    const column = crossesAsText(type) ? toTextColumn(rows, index) : null;
    const given = column === null ? raws() : null;
    const inputs = given === null ? null : given.map((b) => decodeValue(b, type));
    const seed = (): string => batchSeed(t.fn.hash, given ?? raws());
    calls.push({
      batch: { fn: t.fn, params: t.params, ctx, clock, seed, items: column ?? (inputs as SandboxValue[]) },
      input: () => `${type.oid}/${type.typmod}/${type.format}:${seed()}`,
      apply(res) {
        if ('text' in res) {
          fromTextColumn(res.text, rows, index, type);
          return;
        }
        // Items: given them, or some result of a text column was not a string or null.
        const before = given ?? raws();
        const values = inputs ?? before.map((b) => decodeValue(b, type));
        res.items.forEach((v, r) => {
          if (!same(v, values[r])) rows.set(r, index, encodeValue(v as JsValue, type));
        });
      },
    });
  }
  return calls;
}

/**
 * Sends the calls of a stage, each transform's list in chain order, and returns per transform a
 * promise that its calls' results were put back in the batch (rejecting with the first failure of
 * its columns, as if its columns had run one after the other).
 */
export function runCalls(runner: CallRunner, calls: readonly (readonly ColumnCall[])[]): Promise<void>[] {
  const flat = calls.flat();
  const sent = runner.together !== undefined && flat.length > 1 ? runner.together(flat.map((c) => c.batch)) : flat.map((c) => runner.one(c));
  // A transform whose earlier column failed does not wait for its later ones: they must not go unhandled.
  for (const p of sent) p.catch(() => undefined);
  let k = 0;
  return calls.map((mine) => {
    const results = sent.slice(k, (k += mine.length));
    return (async () => {
      for (let i = 0; i < mine.length; i++) mine[i]!.apply(await results[i]!);
    })();
  });
}
