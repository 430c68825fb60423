/** Building batches for tests. */
import { SandboxError, sandboxFunction, type RunBatch, type SandboxValue, type TransformKind } from '../../../sandbox/index.js';

/** A batch of items (not a TextColumn): its result has items. */
export type ItemBatch = RunBatch & { readonly items: readonly SandboxValue[] };

export const CLOCK = new Date('2024-03-04T05:06:07.089Z');

export function batch(
  kind: TransformKind,
  source: string,
  items: readonly SandboxValue[],
  extra: Partial<Omit<RunBatch, 'fn' | 'items'>> & { name?: string } = {},
): ItemBatch {
  const { name = 'test', ...rest } = extra;
  return { fn: sandboxFunction(name, kind, source), params: {}, ctx: {}, clock: CLOCK, seed: 'seed', items, ...rest };
}

export const column = (source: string, items: readonly SandboxValue[], extra?: Parameters<typeof batch>[3]): ItemBatch =>
  batch('column', source, items, extra);
export const row = (source: string, items: readonly SandboxValue[], extra?: Parameters<typeof batch>[3]): ItemBatch =>
  batch('row', source, items, extra);

/** The SandboxError a batch failed with (anything else fails the test). */
export async function failure(promise: Promise<unknown>): Promise<SandboxError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof SandboxError)) throw new Error(`expected a SandboxError, got ${String(err)}`);
  return err;
}
