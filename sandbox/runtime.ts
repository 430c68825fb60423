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

/** Deepest nesting of arrays and objects accepted in output. */
export const MAX_OUTPUT_DEPTH = 64;
/** Compiled transforms kept per isolate (least recently used are dropped). */
export const FUNCTION_CACHE_SIZE = 256;
/** Longest thrown or invalid-output message passed back, in characters. */
export const MAX_MESSAGE_CHARS = 2000;

export const RUNTIME_SOURCE = String.raw`(function () {
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
    random() { return nextRandom(); },
    now() { return clock; },
    noop() {},
  };
  defineProperty(Math, 'random', { value: replacements.random });

  const SafeDate = function Date(...args) {
    if (new.target === undefined) return apply(dateToString, new RealDate(clock), []);
    return construct(RealDate, args.length === 0 ? [clock] : args, new.target);
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
        return (date) => bound(date === undefined ? clock : date);
      },
    });
    defineProperty(DateTimeFormatPrototype, 'formatToParts', {
      value: function formatToParts(date) {
        return apply(realFormatToParts, this, [date === undefined ? clock : date]);
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

  // ---- Compiled transforms, least recently used first.
  const factories = new MapCtor();
  function lookup(hash) {
    const factory = apply(mapGet, factories, [hash]);
    if (factory !== undefined) {
      apply(mapDelete, factories, [hash]);
      apply(mapSet, factories, [hash, factory]);
    }
    return factory;
  }
  function remember(hash, factory) {
    apply(mapSet, factories, [hash, factory]);
    while (apply(mapSize, factories, []) > CACHE_SIZE) {
      const oldest = apply(mapIteratorNext, apply(mapKeys, factories, []), []);
      apply(mapDelete, factories, [oldest.value]);
    }
  }

  // ---- Describing values without running transform code where it can be avoided.
  function clip(text) {
    return text.length > MAX_MESSAGE ? apply(stringSlice, text, [0, MAX_MESSAGE]) + '...' : text;
  }
  function article(noun) {
    const first = noun[0];
    return (first === 'A' || first === 'E' || first === 'I' || first === 'O' || first === 'U' ? 'an ' : 'a ') + noun;
  }
  function instanceName(proto) {
    if (proto === ObjectPrototype || proto === null) return 'an object';
    const name = apply(mapGet, intrinsicNames, [proto]);
    return name === undefined ? 'an instance of a class' : article(name + ' instance');
  }
  function typeName(value) {
    if (value === null) return 'null';
    const type = typeof value;
    if (type !== 'object') return type === 'undefined' ? 'undefined' : 'a ' + type;
    try {
      // A revoked Proxy makes isArray throw; its traps may throw too.
      if (isArray(value)) return 'an array';
      const tag = apply(typedArrayTag, value, []);
      return tag === undefined ? instanceName(getPrototypeOf(value)) : article(tag);
    } catch (_) {
      return 'an object';
    }
  }
  // A string property, looked up along the prototype chain through descriptors only: a getter is
  // never called unless it is one of the bootstrap's own (see allowOverride).
  function dataString(object, key) {
    for (let i = 0; i < 32 && object !== null; i++) {
      const desc = getOwnPropertyDescriptor(object, key);
      if (desc !== undefined) {
        const value = hasOwn(desc, 'value') ? desc.value : apply(mapGet, overridable, [desc.get]);
        return typeof value === 'string' ? value : undefined;
      }
      object = getPrototypeOf(object);
    }
    return undefined;
  }
  function describe(thrown) {
    try {
      if (thrown === null || (typeof thrown !== 'object' && typeof thrown !== 'function')) return clip(StringCtor(thrown));
      const name = dataString(thrown, 'name');
      const message = dataString(thrown, 'message');
      if (message !== undefined) return clip(name === undefined || name === '' ? message : name + ': ' + message);
      if (name !== undefined) return clip(name);
      return typeName(thrown) + ' (not an Error)';
    } catch (_) {
      return 'a value that could not be described';
    }
  }
  function classify(thrown, otherwise) {
    try {
      if (thrown !== null && typeof thrown === 'object' && getPrototypeOf(thrown) === RangeErrorPrototype) {
        const message = dataString(thrown, 'message');
        if (message !== undefined) {
          for (let i = 0; i < MEMORY_MESSAGES.length; i++) {
            if (apply(stringStartsWith, message, [MEMORY_MESSAGES[i]])) return 'memory';
          }
        }
      }
    } catch (_) {
      // An object that cannot even be inspected is not an allocation failure.
    }
    return otherwise;
  }

  // ---- Output: rebuilt into fresh plain data, or rejected with a reason and a path.
  const INVALID = freeze({ __proto__: null });
  let invalidMessage = '';
  let budget = 0;
  let budgetLimit = 0;
  const path = [];
  const ancestors = [];
  function where(depth) {
    let text = '$';
    for (let i = 0; i < depth; i++) {
      const key = path[i];
      text += typeof key === 'number' ? '[' + key + ']' : '.' + (key.length > 100 ? apply(stringSlice, key, [0, 100]) + '...' : key);
    }
    return text;
  }
  function invalid(what, depth) {
    invalidMessage = clip(what + ' at ' + where(depth));
    throw INVALID;
  }
  function charge(bytes, depth) {
    budget -= bytes;
    if (budget < 0) invalid('output larger than ' + budgetLimit + ' bytes', depth);
  }
  function bigintBytes(value) {
    if (bigintAsIntN(64, value) === value) return 24;
    let low = 65;
    let high = 1073741824;
    while (low < high) {
      const mid = low + ((high - low) >>> 1);
      if (bigintAsIntN(mid, value) === value) high = mid;
      else low = mid + 1;
    }
    return 16 + ((low + 7) >>> 3);
  }
  function normalize(value, depth) {
    switch (typeof value) {
      case 'string':
        charge(16 + value.length, depth);
        return value;
      case 'number':
      case 'boolean':
        charge(8, depth);
        return value;
      case 'bigint':
        charge(bigintBytes(value), depth);
        return value;
      case 'undefined':
        return invalid('undefined (return null for SQL NULL)', depth);
      case 'symbol':
        return invalid('a symbol', depth);
      case 'function':
        return invalid('a function', depth);
    }
    if (value === null) {
      charge(8, depth);
      return null;
    }
    if (depth >= MAX_DEPTH) invalid('more than ' + MAX_DEPTH + ' levels of nesting', depth);
    for (let i = 0; i < depth; i++) {
      if (ancestors[i] === value) invalid('a cycle', depth);
    }
    const tag = apply(typedArrayTag, value, []);
    if (tag !== undefined) {
      if (tag !== 'Uint8Array') invalid(article(tag) + ' (of typed arrays only Uint8Array crosses)', depth);
      const length = apply(typedArrayLength, value, []);
      charge(64 + length, depth);
      const copy = new Uint8ArrayCtor(length);
      apply(typedArraySet, copy, [value]);
      return copy;
    }
    ancestors[depth] = value;
    const proto = getPrototypeOf(value);
    if (isArray(value)) {
      if (proto !== ArrayPrototype) invalid('an instance of an Array subclass', depth);
      const length = getOwnPropertyDescriptor(value, 'length').value;
      charge(32, depth);
      const copy = [];
      for (let i = 0; i < length; i++) {
        path[depth] = i;
        const desc = getOwnPropertyDescriptor(value, i);
        if (desc === undefined) invalid('a hole (sparse array)', depth + 1);
        if (!hasOwn(desc, 'value')) invalid('a getter or setter', depth + 1);
        copy[i] = normalize(desc.value, depth + 1);
      }
      return copy;
    }
    if (proto !== ObjectPrototype && proto !== null) {
      let time;
      try {
        time = apply(dateGetTime, value, []);
      } catch (_) {
        invalid(instanceName(proto) + ' (only plain objects, arrays, Date and Uint8Array cross)', depth);
      }
      charge(32, depth);
      return new RealDate(time);
    }
    const keys = ownKeys(value);
    // An ordinary object, not a null-prototype one (V8 keeps those as slow dictionaries). Assigning
    // to it is safe: Object.prototype is frozen, so its only setters are __proto__ (rejected below)
    // and the bootstrap's own override setters, which define an own property.
    const copy = {};
    charge(32, depth);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i];
      if (typeof key === 'symbol') invalid('a symbol-keyed property', depth);
      path[depth] = key;
      const desc = getOwnPropertyDescriptor(value, key);
      if (desc === undefined) continue;
      if (!hasOwn(desc, 'value')) invalid('a getter or setter', depth + 1);
      // Like structured clone and JSON, only enumerable properties are data.
      if (!desc.enumerable) continue;
      // Data, but a trap for host code that copies rows with Object.assign or a[k] = v.
      if (key === '__proto__') invalid('a "__proto__" key', depth + 1);
      charge(16 + key.length, depth + 1);
      copy[key] = normalize(desc.value, depth + 1);
    }
    return copy;
  }
  function normalizeRow(value) {
    if (value === null) return null;
    if (typeof value !== 'object' || isArray(value) || apply(typedArrayTag, value, []) !== undefined) {
      invalid('a row transform must return an object or null, not ' + typeName(value), 0);
    }
    const proto = getPrototypeOf(value);
    if (proto !== ObjectPrototype && proto !== null) invalid('a row transform must return an object or null, not ' + instanceName(proto), 0);
    return normalize(value, 0);
  }

  // Parameters are shared by every item of a batch: frozen so one item cannot change them for the next.
  function deepFreeze(value, depth) {
    if (value === null || typeof value !== 'object' || depth > MAX_DEPTH) return value;
    // Typed arrays with elements cannot be frozen.
    if (apply(typedArrayTag, value, []) !== undefined) return value;
    freeze(value);
    const keys = ownKeys(value);
    for (let i = 0; i < keys.length; i++) deepFreeze(value[keys[i]], depth + 1);
    return value;
  }

  function failure(kind, message, index, compiled, cacheHit) {
    return { __proto__: null, ok: false, kind, message, index, compiled, cacheHit };
  }

  // The payload is a fresh structured-clone copy made for this call: no transform has touched it.
  return function run(payload) {
    const result = runBatch(payload);
    if (seedWanted) return { __proto__: null, ok: false, needSeed: true, compiled: result.compiled, cacheHit: result.cacheHit };
    return result;
  };

  function runBatch(payload) {
    const kind = payload.kind;
    const text = payload.text;
    const lengths = payload.lengths;
    const fromText = text !== null;
    const items = fromText ? splitText(text, lengths) : payload.items;
    clock = payload.clock;
    seedRandom(payload.seed);
    budget = budgetLimit = payload.maxOutputBytes;
    const params = deepFreeze(payload.params, 0);
    const ctx = deepFreeze(payload.ctx, 0);

    let factory = lookup(payload.hash);
    const cacheHit = factory !== undefined;
    let compiled = false;
    if (factory === undefined) {
      try {
        // The newline keeps a trailing line comment in the source from swallowing the parenthesis.
        factory = new FunctionCtor('"use strict";\nreturn (' + payload.source + '\n);');
      } catch (thrown) {
        return failure(classify(thrown, 'compile'), describe(thrown), -1, false, false);
      }
      remember(payload.hash, factory);
      compiled = true;
    }
    let fn;
    try {
      fn = factory();
    } catch (thrown) {
      return failure(classify(thrown, 'compile'), 'evaluating the source threw ' + describe(thrown), -1, compiled, cacheHit);
    }
    if (typeof fn !== 'function') {
      return failure('compile', 'the source must evaluate to a function, not ' + typeName(fn), -1, compiled, cacheHit);
    }
    let fnProto;
    try {
      fnProto = getPrototypeOf(fn);
    } catch (_) {
      fnProto = undefined;
    }
    if (fnProto !== FunctionPrototype) {
      return failure('compile', 'the source must evaluate to an ordinary function (not async, not a generator)', -1, compiled, cacheHit);
    }

    const rows = kind === 'row';
    const out = [];
    const count = items.length;
    // Given a text column, whether every result so far is a string or null: then the results go
    // back as a text column too.
    let allText = fromText;
    for (let i = 0; i < count; i++) {
      let result;
      try {
        result = fn(items[i], params, ctx);
      } catch (thrown) {
        return failure(classify(thrown, 'throw'), describe(thrown), i, compiled, cacheHit);
      }
      try {
        out[i] = rows ? normalizeRow(result) : normalize(result, 0);
      } catch (thrown) {
        if (thrown === INVALID) return failure('invalid-output', invalidMessage, i, compiled, cacheHit);
        return failure(classify(thrown, 'invalid-output'), 'inspecting the output threw ' + describe(thrown), i, compiled, cacheHit);
      }
      if (allText && out[i] !== null && typeof out[i] !== 'string') allText = false;
    }
    if (allText) return joinText(items, out, compiled, cacheHit);
    return { __proto__: null, ok: true, items: out, compiled, cacheHit };
  }

  // ---- Text columns (see TextColumn in types.ts): one string and a length per item (-1: null).
  function splitText(text, lengths) {
    const items = [];
    let at = 0;
    for (let i = 0; i < lengths.length; i++) {
      const n = lengths[i];
      if (n < 0) items[i] = null;
      else {
        items[i] = apply(stringSlice, text, [at, at + n]);
        at += n;
      }
    }
    return items;
  }
  // The changed values end to end; UNCHANGED (-2) for a value that came back as it went in.
  function joinText(items, out, compiled, cacheHit) {
    const lengths = new Int32ArrayCtor(out.length);
    let text = '';
    for (let i = 0; i < out.length; i++) {
      const v = out[i];
      if (v === items[i]) lengths[i] = v === null ? -1 : -2;
      else if (v === null) lengths[i] = -1;
      else {
        lengths[i] = v.length;
        text += v;
      }
    }
    return { __proto__: null, ok: true, text, lengths, compiled, cacheHit };
  }
})()
`;
