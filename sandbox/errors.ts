/** The ways a batch can fail inside the sandbox. */

export const SANDBOX_ERROR_KINDS = ['throw', 'timeout', 'memory', 'invalid-output', 'compile'] as const;

/**
 * - `throw`: the transform threw; the message is the thrown value, described inside the isolate.
 * - `timeout`: the batch ran longer than `timeoutMs`.
 * - `memory`: the isolate ran out of memory; it is replaced and the pool keeps working.
 * - `invalid-output`: the transform returned something that is not plain data (the message says what and where).
 * - `compile`: the source does not evaluate to a plain function, or its hash does not match it.
 */
export type SandboxErrorKind = (typeof SANDBOX_ERROR_KINDS)[number];

export function isSandboxErrorKind(value: unknown): value is SandboxErrorKind {
  return typeof value === 'string' && (SANDBOX_ERROR_KINDS as readonly string[]).includes(value);
}

export class SandboxError extends Error {
  constructor(
    readonly kind: SandboxErrorKind,
    /** Name of the transform that failed. */
    readonly transform: string,
    message: string,
    /** Index of the item being transformed or checked when it failed, when the failure is about one item. */
    readonly index?: number,
  ) {
    super(`transform "${transform}" ${describeKind(kind)}${index === undefined ? '' : ` at item ${index}`}: ${message}`);
    this.name = 'SandboxError';
  }
}

function describeKind(kind: SandboxErrorKind): string {
  switch (kind) {
    case 'throw':
      return 'threw';
    case 'timeout':
      return 'timed out';
    case 'memory':
      return 'ran out of memory';
    case 'invalid-output':
      return 'returned invalid output';
    case 'compile':
      return 'failed to compile';
  }
}
