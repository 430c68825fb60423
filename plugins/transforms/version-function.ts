/**
 * The function a registered version runs as. A version's function hash names its source and the
 * sandbox runtime identity it was registered under (plugins/registry/schema-runtime-identity.ts);
 * where this sandbox behaves as that runtime, the version runs under the hash it was registered
 * with, so that its executions, the seeds of its random numbers and its cached results are the
 * ones its records name, whichever release computes them.
 */
import { registeredFunction } from '../../sandbox/hash.js';
import { behavesAs } from '../../sandbox/runtime-identity.js';
import { sandboxFunction, type SandboxFunction, type TransformKind } from '../../sandbox/index.js';

export interface RecordedFunction {
  readonly name: string;
  readonly kind: TransformKind;
  readonly source: string;
  readonly functionHash: string;
  /** Null: registered before versions recorded it. */
  readonly runtimeIdentity: string | null;
}

/** Null when this sandbox cannot compute what the version computed where it was registered. */
export function recordedFunction(v: RecordedFunction): SandboxFunction | null {
  const fn = registeredFunction(v.name, v.kind, v.source, v.runtimeIdentity);
  return fn !== null && fn.hash === v.functionHash ? fn : null;
}

/** Why a version cannot be replayed here, naming the runtime it was registered under and this one. */
export function unreplayableReason(identity: string | null, current: string): string {
  if (identity === null) return `it was registered under a sandbox runtime that was not recorded, not this one (${current})`;
  if (behavesAs(identity)) return `its recorded function hash does not match its source under the sandbox runtime it was registered under (${identity})`;
  return `it was registered under sandbox runtime ${identity}, which this runtime (${current}) does not behave as`;
}

/**
 * The function a version in force serves reads with: as registered where this runtime behaves as
 * the one it was registered under; otherwise under this runtime's hash, which its executions then
 * name (such a version's reads are served, but a moment it was in force cannot be replayed).
 */
export function servedFunction(v: RecordedFunction): SandboxFunction {
  return recordedFunction(v) ?? sandboxFunction(v.name, v.kind, v.source);
}

/** A version's recorded hash and identity from a registry row (`function_hash`, `runtime_identity`). */
export function recordedOf(name: string, kind: TransformKind, source: string, row: Readonly<Record<string, unknown>>): RecordedFunction {
  const identity = row['runtime_identity'];
  return { name, kind, source, functionHash: String(row['function_hash']), runtimeIdentity: typeof identity === 'string' ? identity : null };
}
