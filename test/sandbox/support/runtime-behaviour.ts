/**
 * The golden set: transforms whose outputs pin what a transform can observe of the sandbox
 * runtime (the globals and built-ins offered, strict mode and frozen intrinsics, the batch clock
 * and seeded random sequence, the frozen params and context, the output accepted and how it comes
 * back, and the error kind of each way to fail). Its observations are keyed by runtime identity in
 * `runtime-behaviour.golden.json`: a change to any of them is a behaviour change, which needs a new
 * `SANDBOX_BEHAVIOUR` (sandbox/runtime-identity.ts) and a new entry, never an edited one.
 *
 * Nothing here depends on the host's time zone, locale or ICU data, which the identity does not
 * name.
 */
import { SandboxError, SandboxPool, sandboxFunction, type RunBatch, type SandboxValue, type TransformKind } from '../../../sandbox/index.js';

interface GoldenCase {
  readonly kind: TransformKind;
  readonly source: string;
  readonly items: readonly SandboxValue[];
  readonly params?: SandboxValue;
  readonly ctx?: SandboxValue;
}

/** Built-ins whose own keys are listed: what V8 offers a transform beyond the globals' names. */
const SURFACE = [
  'Object', 'Object.prototype', 'Function.prototype', 'Array', 'Array.prototype', 'String', 'String.prototype', 'Number',
  'Number.prototype', 'BigInt', 'BigInt.prototype', 'Boolean.prototype', 'Symbol', 'Math', 'JSON', 'Reflect', 'Date',
  'Date.prototype', 'RegExp', 'RegExp.prototype', 'Map', 'Map.prototype', 'Set', 'Set.prototype', 'WeakMap.prototype',
  'Promise', 'Promise.prototype', 'Error', 'Error.prototype', 'Uint8Array', 'Uint8Array.prototype', 'ArrayBuffer.prototype',
  'Intl', 'console',
];

const CTX = {
  user: 'alice', roles: ['auditor'], database: 'app', application_name: null, client_address: null, client_port: null,
  session_id: null, statement_timestamp: '2024-03-04T05:06:07.089Z', as_of: '2024-03-04T05:06:07.089Z',
};

export const GOLDEN_CASES: Readonly<Record<string, GoldenCase>> = {
  globals: { kind: 'column', source: '(v) => Object.getOwnPropertyNames(globalThis).sort()', items: [null] },
  surface: {
    kind: 'column',
    source: `(paths) => paths.map((p) => [p, Reflect.ownKeys(p.split('.').reduce((o, k) => o[k], globalThis)).map(String).sort()])`,
    items: [SURFACE],
  },
  absent: {
    kind: 'column',
    source: `(v) => ['eval', 'WeakRef', 'FinalizationRegistry', 'SharedArrayBuffer', 'Atomics', 'WebAssembly', 'require', 'process',
      'setTimeout', 'setInterval', 'setImmediate', 'queueMicrotask', 'fetch', 'performance', 'crypto', 'structuredClone', 'gc',
      'Buffer', 'module', 'exports'].map((n) => [n, typeof globalThis[n]])`,
    items: [null],
  },
  frozen: {
    kind: 'column',
    source: `(v) => [globalThis, Object, Object.prototype, Array.prototype, String.prototype, Function.prototype, Math, JSON,
      Reflect, Date, Date.prototype, RegExp, Promise.prototype, Intl, Intl.DateTimeFormat.prototype, console, Error.prototype,
      Object.getPrototypeOf(Uint8Array), Object.getPrototypeOf(function* () {})].map((o) => Object.isFrozen(o))`,
    items: [null],
  },
  strict: {
    kind: 'column',
    source: `(v) => {
      const assign = (f) => { try { f(); return 'ok'; } catch (e) { return e.constructor.name; } };
      return [(function () { return this; })() === undefined, assign(() => { Array.prototype.x = 1; }), assign(() => { undeclared = 1; }),
        assign(() => { const o = {}; o.toString = () => 'own'; return o; }), Function('a', 'return a * 2')(21),
        (/(a)(b)/.exec('ab'), typeof RegExp.$1)];
    }`,
    items: [null],
  },
  clock: {
    kind: 'column',
    source: `(v) => [Date.now(), new Date().toISOString(), new Date(0).toISOString(), Date.UTC(2020, 0, 1), typeof Date(),
      new Date(v).getTime(), Date.parse('2024-01-02T03:04:05Z'),
      new Intl.DateTimeFormat('en-US', { timeZone: 'UTC' }).format() === new Intl.DateTimeFormat('en-US', { timeZone: 'UTC' }).format(Date.now())]`,
    items: [86_400_000],
  },
  random: { kind: 'column', source: '(v) => [Math.random(), Math.random()]', items: [0, 0, 0] },
  closure: { kind: 'column', source: '(() => { let n = 0; return (v) => v + ++n; })()', items: [10, 10, 10] },
  'params and context': {
    kind: 'column',
    source: `(v, p, c) => [Object.isFrozen(p), Object.isFrozen(p.nested), Object.isFrozen(c), Object.isFrozen(c.roles), Object.keys(c),
      JSON.stringify(c), 'user' in c, Object.getOwnPropertyDescriptor(c, 'user'), p.nested.list.length]`,
    items: [null],
    params: { keep: 2, nested: { list: [1, 2, 3] } },
    ctx: CTX,
  },
  values: {
    kind: 'column',
    source: '(v) => v',
    items: [null, true, 0, -0, 1.5, 'text', 12345678901234567890n, new Date(1_700_000_000_000), new Uint8Array([1, 2, 255]),
      [1, [2]], { a: { b: null } }],
  },
  'returns bigints, dates and bytes': { kind: 'column', source: '(v) => [1n, new Date(0), new Uint8Array([1, 2]), null]', items: [null] },
  'returns special numbers': { kind: 'column', source: '(v) => [NaN, Infinity, -Infinity, -0]', items: [null] },
  'returns an object without a prototype': { kind: 'column', source: '(v) => ({ __proto__: null, x: 1 })', items: [null] },
  'returns an object of a class': { kind: 'column', source: '(v) => new (class Point { constructor() { this.x = 1; } })()', items: [null] },
  'returns a sparse array': { kind: 'column', source: '(v) => [1, , 3]', items: [null] },
  rows: {
    kind: 'row',
    source: '(r, p) => r.id === p.drop ? null : { ...r, email: r.email === null ? null : r.email.slice(0, 2) + "***" }',
    items: [{ id: 1, email: 'alice@example.com' }, { id: 2, email: 'bob@example.com' }, { id: 3, email: null }],
    params: { drop: 2 },
  },
  'throws': { kind: 'column', source: "(v) => { throw new Error('boom'); }", items: [1] },
  'throws a non-error': { kind: 'column', source: "(v) => { throw 'plain'; }", items: [1] },
  'syntax error': { kind: 'column', source: '(v) => {', items: [1] },
  'not a function': { kind: 'column', source: '42', items: [1] },
  'async function': { kind: 'column', source: 'async (v) => v', items: [1] },
  'a statement': { kind: 'column', source: 'const f = (v) => v;', items: [1] },
  'returns undefined': { kind: 'column', source: '(v) => undefined', items: [1] },
  'returns a function': { kind: 'column', source: '(v) => () => v', items: [1] },
  'returns a getter': { kind: 'column', source: '(v) => ({ get x() { return 1; } })', items: [1] },
  'returns a symbol': { kind: 'column', source: '(v) => Symbol("s")', items: [1] },
  'returns a Map': { kind: 'column', source: '(v) => new Map([[1, 2]])', items: [1] },
  'returns a promise': { kind: 'column', source: '(v) => Promise.resolve(v)', items: [1] },
  'returns too deep': { kind: 'column', source: '(v) => { let a = 1; for (let i = 0; i < 65; i++) a = [a]; return a; }', items: [1] },
  'returns 64 deep': { kind: 'column', source: '(v) => { let a = 1; for (let i = 0; i < 63; i++) a = [a]; return a.length; }', items: [1] },
  'a row that is not an object': { kind: 'row', source: '(r) => 42', items: [{ id: 1 }] },
  'runs too long': { kind: 'column', source: '(v) => { for (;;) {} }', items: [1] },
};

/** Observations that are plain JSON, whatever the runtime returned (bigints, Dates and bytes named). */
function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return { bigint: v.toString() };
  if (v instanceof Date) return { date: v.toISOString() };
  if (v instanceof Uint8Array) return { bytes: [...v] };
  if (typeof v === 'number' && !Number.isFinite(v)) return { number: String(v) };
  if (Object.is(v, -0)) return { number: '-0' };
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object') {
    return { ...(Object.getPrototypeOf(v) === null ? { prototype: null } : {}), ...Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)])) };
  }
  return v;
}

export const GOLDEN_CLOCK = new Date('2024-03-04T05:06:07.089Z');

/** Every case's output (or the kind of error it failed with), run in a pool of its own. */
export async function observeRuntime(): Promise<Record<string, unknown>> {
  const pool = new SandboxPool({ isolates: 1, timeoutMs: 300 });
  try {
    const out: Record<string, unknown> = {};
    for (const [name, c] of Object.entries(GOLDEN_CASES)) {
      const batch: RunBatch = {
        fn: sandboxFunction(name, c.kind, c.source), params: c.params ?? {}, ctx: c.ctx ?? {}, clock: GOLDEN_CLOCK,
        seed: `golden ${name}`, items: c.items,
      };
      try {
        const result = await pool.run(batch);
        out[name] = { items: plain('items' in result ? result.items : null) };
      } catch (err) {
        if (!(err instanceof SandboxError)) throw err;
        out[name] = { error: err.kind, index: err.index ?? null };
      }
    }
    return out;
  } finally {
    await pool.close();
  }
}
