/** Function hashes: what identifies a transform, and the runtime that gives its source a meaning. */
import { createHash } from 'node:crypto';
import { SANDBOX_RUNTIME_IDENTITY, behavesAs } from './runtime-identity.js';
import type { SandboxFunction, TransformKind } from './types.js';

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * The runtime a transform's output depends on, as far as a transform can observe it (see
 * `runtime-identity.ts`): the registry records it with every version it registers.
 */
export const SANDBOX_RUNTIME_VERSION = SANDBOX_RUNTIME_IDENTITY;

/** Lowercase hex SHA-256 of `source + '\0' + identity` (this runtime's unless another is named). */
export function functionHash(source: string, identity: string = SANDBOX_RUNTIME_VERSION): string {
  return sha256Hex(`${source}\0${identity}`);
}

/** A transform with its hash filled in. */
export function sandboxFunction(name: string, kind: TransformKind, source: string): SandboxFunction {
  return { name, kind, source, hash: functionHash(source) };
}

/** Earlier runtimes this one behaves as whose functions were handed out: their hashes run here too. */
const accepted = new Set<string>();

/**
 * A version registered under `identity`, with the function hash it was registered with (so that
 * its executions, seeds and cached results are those of its records), or null when this runtime
 * does not behave as that one (or the identity was not recorded).
 */
export function registeredFunction(name: string, kind: TransformKind, source: string, identity: string | null): SandboxFunction | null {
  if (identity === null || !behavesAs(identity)) return null;
  if (identity !== SANDBOX_RUNTIME_VERSION) accepted.add(identity);
  return { name, kind, source, hash: functionHash(source, identity) };
}

/** Whether `hash` names `source` under this runtime or one it behaves as. */
export function hashNamesSource(source: string, hash: string): boolean {
  if (hash === functionHash(source)) return true;
  for (const identity of accepted) if (hash === functionHash(source, identity)) return true;
  return false;
}
