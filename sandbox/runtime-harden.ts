/**
 * The first part of the sandbox runtime's source (see runtime.ts): the intrinsics the runner
 * captures before any transform exists, the deterministic clock and random sequence, and the
 * hardening (the override-mistake repair, then everything reachable frozen).
 */
import { FUNCTION_CACHE_SIZE, MAX_MESSAGE_CHARS, MAX_OUTPUT_DEPTH } from './runtime-limits.js';

export const RUNTIME_HARDEN = String.raw`(function () {
  'use strict';

  // ---- Intrinsics the runner uses, captured before any transform exists.
  const G = globalThis;
  const ObjectPrototype = Object.prototype;
  const FunctionPrototype = Function.prototype;
  const ArrayPrototype = Array.prototype;
  const getPrototypeOf = Object.getPrototypeOf;
  const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
  const defineProperty = Object.defineProperty;
  const freeze = Object.freeze;
  const hasOwn = Object.hasOwn;
  const ownKeys = Reflect.ownKeys;
  const apply = Reflect.apply;
  const construct = Reflect.construct;
  const reflectGet = Reflect.get;
  const reflectHas = Reflect.has;
  const ProxyCtor = Proxy;
  const isArray = Array.isArray;
  const FunctionCtor = Function;
  const StringCtor = String;
  const TypeErrorCtor = TypeError;
  const RealDate = Date;
  const dateGetTime = Date.prototype.getTime;
  const dateToString = Date.prototype.toString;
  const Uint8ArrayCtor = Uint8Array;
  const Int32ArrayCtor = Int32Array;
  const TypedArrayPrototype = getPrototypeOf(Uint8Array.prototype);
  const typedArrayTag = getOwnPropertyDescriptor(TypedArrayPrototype, Symbol.toStringTag).get;
  const typedArrayLength = getOwnPropertyDescriptor(TypedArrayPrototype, 'length').get;
  const typedArraySet = TypedArrayPrototype.set;
  const stringSlice = String.prototype.slice;
  const stringStartsWith = String.prototype.startsWith;
  const bigintAsIntN = BigInt.asIntN;
  const RangeErrorPrototype = RangeError.prototype;
  const MapCtor = Map;
  const mapGet = Map.prototype.get;
  const mapSet = Map.prototype.set;
  const mapDelete = Map.prototype.delete;
  const mapKeys = Map.prototype.keys;
  const mapSize = getOwnPropertyDescriptor(Map.prototype, 'size').get;
  const mapIteratorNext = getPrototypeOf(new Map().keys()).next;

  const MAX_DEPTH = ${MAX_OUTPUT_DEPTH};
  const CACHE_SIZE = ${FUNCTION_CACHE_SIZE};
  const MAX_MESSAGE = ${MAX_MESSAGE_CHARS};
  // Allocation failures are ordinary RangeErrors in V8; they mean the batch ran out of memory.
  const MEMORY_MESSAGES = ['Array buffer allocation failed', 'Invalid string length', 'Invalid typed array length', 'Invalid array buffer length'];

  // ---- Determinism: one clock and one random sequence per batch.
  let clock = 0;
  // Whether the batch read the clock or drew a random number (reported with its result).
  let clockRead = false;
  let randomDrawn = false;
  function now() {
    clockRead = true;
    return clock;
  }
  let r0 = 0, r1 = 0, r2 = 0, r3 = 0;
  // A batch may come without a seed (hashing its input costs the host more than most transforms
  // do): the first Math.random call then stops it, and the host runs it again with the seed. The
  // flag, not the throw, decides: a transform that catches the throw is run again all the same.
  let seeded = false;
  let seedWanted = false;
  const NEED_SEED = freeze({ __proto__: null });
  function nextRandom() {
    if (!seeded) {
      seedWanted = true;
      throw NEED_SEED;
    }
    // sfc32: small, fast, and good enough for sampling and masking; never for secrets.
    const t = (((r0 + r1) | 0) + r3) | 0;
    r3 = (r3 + 1) | 0;
    r0 = r1 ^ (r1 >>> 9);
    r1 = (r2 + (r2 << 3)) | 0;
    r2 = (r2 << 21) | (r2 >>> 11);
    r2 = (r2 + t) | 0;
    return (t >>> 0) / 4294967296;
  }
  function seedRandom(words) {
    seedWanted = false;
    seeded = words !== null;
    if (!seeded) return;
    r0 = words[0] | 0; r1 = words[1] | 0; r2 = words[2] | 0; r3 = words[3] | 0;
    for (let i = 0; i < 15; i++) nextRandom();
  }
  // Method definitions, like built-in methods, have no prototype and cannot be constructed.
  const replacements = {
    random() {
      randomDrawn = true;
      return nextRandom();
    },
    now() { return now(); },
    noop() {},
  };
  defineProperty(Math, 'random', { value: replacements.random });

  const SafeDate = function Date(...args) {
    if (new.target === undefined) return apply(dateToString, new RealDate(now()), []);
    return construct(RealDate, args.length === 0 ? [now()] : args, new.target);
  };
  defineProperty(SafeDate, 'length', { value: 7 });
  defineProperty(SafeDate, 'prototype', { value: RealDate.prototype, writable: false });
  for (const key of ['parse', 'UTC']) {
    defineProperty(SafeDate, key, { value: RealDate[key], writable: true, enumerable: false, configurable: true });
  }
  defineProperty(SafeDate, 'now', { value: replacements.now, writable: true, enumerable: false, configurable: true });
  defineProperty(RealDate.prototype, 'constructor', { value: SafeDate });
  defineProperty(G, 'Date', { value: SafeDate });

  if (typeof Intl === 'object') {
    // Formatting with no date formats "now".
    const DateTimeFormatPrototype = Intl.DateTimeFormat.prototype;
    const realFormat = getOwnPropertyDescriptor(DateTimeFormatPrototype, 'format').get;
    const realFormatToParts = DateTimeFormatPrototype.formatToParts;
    defineProperty(DateTimeFormatPrototype, 'format', {
      get: function format() {
        const bound = apply(realFormat, this, []);
        return (date) => bound(date === undefined ? now() : date);
      },
    });
    defineProperty(DateTimeFormatPrototype, 'formatToParts', {
      value: function formatToParts(date) {
        return apply(realFormatToParts, this, [date === undefined ? now() : date]);
      },
    });
  }

  const quietConsole = {};
  for (const key of ['log', 'info', 'warn', 'error', 'debug', 'trace', 'dir', 'table', 'assert', 'count', 'group', 'groupEnd', 'time', 'timeEnd']) {
    quietConsole[key] = replacements.noop;
  }
  defineProperty(G, 'console', { value: quietConsole, writable: true, enumerable: false, configurable: true });

  // eval: indirect eval runs global code, whose let/const/class declarations would persist across
  // batches in the global lexical scope even with the global object frozen. The Function
  // constructor stays: what it creates is function code.
  for (const key of ['WeakRef', 'FinalizationRegistry', 'SharedArrayBuffer', 'Atomics', 'WebAssembly', 'eval']) delete G[key];
  for (const key of ownKeys(RegExp)) {
    // The legacy statics are the only string-keyed accessors of RegExp; Symbol.species stays.
    if (typeof key === 'string' && !hasOwn(getOwnPropertyDescriptor(RegExp, key), 'value')) delete RegExp[key];
  }

  // Prototype -> constructor name, for messages about class instances in output.
  const intrinsicNames = new MapCtor();
  const constructors = [];
  for (const key of ownKeys(G)) {
    const value = getOwnPropertyDescriptor(G, key).value;
    if (typeof key !== 'string' || typeof value !== 'function') continue;
    const prototype = getOwnPropertyDescriptor(value, 'prototype');
    if (prototype === undefined || typeof prototype.value !== 'object' || prototype.value === null) continue;
    apply(mapSet, intrinsicNames, [prototype.value, key]);
    constructors.push(value);
  }

  // ---- Harden: the override-mistake repair, then freeze everything reachable.
  // Getter -> the value it stands for, so that describe() can read e.g. TypeError.prototype.name
  // without calling anything.
  const overridable = new MapCtor();
  function allowOverride(object, key) {
    const desc = getOwnPropertyDescriptor(object, key);
    if (desc === undefined || !hasOwn(desc, 'value') || !desc.writable) return;
    const value = desc.value;
    const get = function () { return value; };
    apply(mapSet, overridable, [get, value]);
    defineProperty(object, key, {
      get,
      set: function (next) {
        if (this === object) throw new TypeErrorCtor("Cannot assign to read only property '" + StringCtor(key) + "' of a frozen intrinsic");
        defineProperty(this, key, { __proto__: null, value: next, writable: true, enumerable: true, configurable: true });
      },
      enumerable: desc.enumerable,
      configurable: false,
    });
  }
  // Not 'constructor' on the other prototypes: V8 watches Array.prototype.constructor (and the like)
  // to keep map/filter/slice on their fast paths, and nobody shadows it on an array.
  for (const key of ownKeys(ObjectPrototype)) allowOverride(ObjectPrototype, key);
  for (const ctor of constructors) {
    for (const key of ['toString', 'toLocaleString', 'valueOf']) allowOverride(ctor.prototype, key);
  }
  for (const ctor of [Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError, AggregateError]) {
    for (const key of ['constructor', 'name', 'message']) allowOverride(ctor.prototype, key);
  }

  const roots = [
    G,
    getPrototypeOf(function* () {}),
    getPrototypeOf(async function () {}),
    getPrototypeOf(async function* () {}),
    getPrototypeOf([][Symbol.iterator]()),
    getPrototypeOf(new Map()[Symbol.iterator]()),
    getPrototypeOf(new Set()[Symbol.iterator]()),
    getPrototypeOf(''[Symbol.iterator]()),
    getPrototypeOf(/x/[Symbol.matchAll]('')),
    getOwnPropertyDescriptor((function () { return arguments; })(), 'callee').get,
  ];
  if (typeof Intl === 'object' && typeof Intl.Segmenter === 'function') {
    const segments = new Intl.Segmenter().segment('');
    roots.push(getPrototypeOf(segments), getPrototypeOf(segments[Symbol.iterator]()));
  }
  const hardened = new Set();
  while (roots.length > 0) {
    const value = roots.pop();
    if (value === null || (typeof value !== 'object' && typeof value !== 'function') || hardened.has(value)) continue;
    hardened.add(value);
    freeze(value);
    roots.push(getPrototypeOf(value));
    for (const key of ownKeys(value)) {
      const desc = getOwnPropertyDescriptor(value, key);
      if (hasOwn(desc, 'value')) roots.push(desc.value);
      else roots.push(desc.get, desc.set);
    }
  }

`;
