/** Function hashes: what identifies a transform, and the runtime that gives its source a meaning. */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { RUNTIME_SOURCE } from './runtime.js';
import type { SandboxFunction, TransformKind } from './types.js';

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function isolatedVmVersion(): string {
  const pkg: unknown = createRequire(import.meta.url)('isolated-vm/package.json');
  if (typeof pkg === 'object' && pkg !== null && 'version' in pkg && typeof pkg.version === 'string') return pkg.version;
  throw new Error('cannot read the version of isolated-vm');
}

/**
 * The engine a transform's output depends on: the isolated-vm release; the Node.js release, which
 * fixes the V8 that runs the code and the ICU data behind Intl, localeCompare and time zones; and
 * the bootstrap itself, named by a digest of its source so that any edit to it changes every
 * function hash without anyone having to remember to bump a number.
 */
export const SANDBOX_RUNTIME_VERSION = `isolated-vm@${isolatedVmVersion()};node@${process.versions.node};runtime@${sha256Hex(RUNTIME_SOURCE).slice(0, 12)}`;

/** Lowercase hex SHA-256 of `source + '\0' + SANDBOX_RUNTIME_VERSION`. */
export function functionHash(source: string): string {
  return sha256Hex(`${source}\0${SANDBOX_RUNTIME_VERSION}`);
}

/** A transform with its hash filled in. */
export function sandboxFunction(name: string, kind: TransformKind, source: string): SandboxFunction {
  return { name, kind, source, hash: functionHash(source) };
}
