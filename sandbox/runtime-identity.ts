/**
 * The sandbox runtime's identity: what a transform's function hash says its source ran on. It
 * names only what a transform can observe, so that upgrades which change nothing observable keep
 * every recorded version replayable:
 *
 * - `sandbox@N`: the behaviour version, bumped by hand whenever what a transform can observe
 *   changes: the globals offered, the shape of params and ctx, the determinism rules (clock,
 *   random sequence), the accepted output and the limits' semantics, the error kinds. The golden
 *   test `test/sandbox/runtime-behaviour.test.ts` pins that behaviour, so a change without a bump
 *   fails there. isolated-vm is not named: this package pins its release, and the golden test runs
 *   on it, so a change it brings is caught like any other.
 * - `v8@M.m`: the V8 line (Chrome milestone) of the Node.js running the proxy, which users choose:
 *   it decides the language and its built-ins (a new line adds methods and globals a transform can
 *   probe). Patch releases within a line change neither, and Node.js keeps one V8 line per major.
 *
 * ICU data and the host's time zone are not named (Intl output and local-time Date methods follow
 * them, as `sandbox/index.ts` says): a transform that depends on them is verified like any other,
 * its replay's output hash against the record's, and a difference is reported, never hidden.
 */

/** Bump when the behaviour the golden test pins changes; never reuse a number. */
export const SANDBOX_BEHAVIOUR = 1;

/** `11.3.244.8-node.38` → `11.3`. */
export function v8Line(v8Version: string): string {
  const m = /^(\d+)\.(\d+)\./.exec(v8Version);
  if (m === null) throw new Error(`cannot read the V8 line of version "${v8Version}"`);
  return `${m[1]}.${m[2]}`;
}

export function runtimeIdentity(behaviour: number, line: string): string {
  return `sandbox@${behaviour};v8@${line}`;
}

/** The identity of this process's runtime. */
export const SANDBOX_RUNTIME_IDENTITY = runtimeIdentity(SANDBOX_BEHAVIOUR, v8Line(process.versions.v8));

/**
 * Identities of other runtimes this one behaves as (checked with the golden test on both): their
 * versions replay here. Empty while there has been one behaviour on one V8 line.
 */
export const COMPATIBLE_IDENTITIES: readonly string[] = [];

/**
 * Earlier releases named the runtime `isolated-vm@X;node@Y;runtime@<digest of the bootstrap's
 * source>`. Each bootstrap listed here behaves as the behaviour version given, on the V8 line of
 * its Node.js major: the golden set gave the same outputs on it (its entries in the golden file),
 * and its changes were not observable by a transform:
 * - a8ed740f26ac: the first release;
 * - 7f19465654a2: Math.random seeded only for batches that draw (the same sequence per seed);
 * - f6967796a6df: text columns cross as one string (values reach the transform unchanged);
 * - bd629e3570b7: context-read tracking, a proxy over the frozen ctx that answers property reads,
 *   `in`, descriptors and key lists as the context itself does.
 */
const EARLIER_BOOTSTRAPS: ReadonlyMap<string, number> = new Map([
  ['a8ed740f26ac', 1], ['7f19465654a2', 1], ['f6967796a6df', 1], ['bd629e3570b7', 1],
]);
const EARLIER_ISOLATED_VM = new Set(['5.0.4']);

/** The bootstrap digests and isolated-vm releases earlier identities may name, for finding a recorded version's. */
export const EARLIER_RUNTIMES = { bootstraps: [...EARLIER_BOOTSTRAPS.keys()], isolatedVm: [...EARLIER_ISOLATED_VM] } as const;
/** The V8 line each Node.js major ships with, for the identities that named Node.js instead. */
const NODE_V8_LINES: ReadonlyMap<number, string> = new Map([[20, '11.3'], [22, '12.4'], [24, '13.6']]);
const EARLIER_FORM = /^isolated-vm@([^;]+);node@(\d+)\.\d+\.\d+;runtime@([0-9a-f]{12})$/;

/** The identity an earlier release's runtime name stands for, or null when it is not one this release knows. */
export function currentForm(identity: string): string | null {
  const m = EARLIER_FORM.exec(identity);
  if (m === null) return null;
  const behaviour = EARLIER_BOOTSTRAPS.get(m[3]!);
  const line = NODE_V8_LINES.get(Number(m[2]));
  if (behaviour === undefined || line === undefined || !EARLIER_ISOLATED_VM.has(m[1]!)) return null;
  return runtimeIdentity(behaviour, line);
}

/** Whether versions registered under `identity` compute here what they computed there. */
export function behavesAs(identity: string): boolean {
  if (identity === SANDBOX_RUNTIME_IDENTITY || COMPATIBLE_IDENTITIES.includes(identity)) return true;
  const named = currentForm(identity);
  return named !== null && (named === SANDBOX_RUNTIME_IDENTITY || COMPATIBLE_IDENTITIES.includes(named));
}
