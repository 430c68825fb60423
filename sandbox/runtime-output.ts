/**
 * The middle part of the sandbox runtime's source (see runtime.ts): the cache of compiled
 * transforms, how values are described in messages, and the rebuilding of a transform's output
 * into fresh plain data (or its rejection with a reason and a path).
 */

import { UNCHANGED } from './types.js';

export const RUNTIME_OUTPUT = String.raw`  // ---- Compiled transforms, least recently used first.
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
  const NO_RESULT = freeze({ __proto__: null });
  // The arguments of the intrinsic getters normalize applies to every object: one frozen list
  // rather than a fresh one per call.
  const NO_ARGS = freeze([]);
  // In a text column result's lengths: the item came back as it went in (UNCHANGED in types.ts).
  const UNCHANGED = ${UNCHANGED};
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
    const tag = apply(typedArrayTag, value, NO_ARGS);
    if (tag !== undefined) {
      if (tag !== 'Uint8Array') invalid(article(tag) + ' (of typed arrays only Uint8Array crosses)', depth);
      const length = apply(typedArrayLength, value, NO_ARGS);
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
        time = apply(dateGetTime, value, NO_ARGS);
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
    if (typeof value !== 'object' || isArray(value) || apply(typedArrayTag, value, NO_ARGS) !== undefined) {
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

  // ---- The context a transform reads: which of its fields it read is noted here, where the
  // transform cannot reach, and reported with the batch's result. Every way to a field's value
  // (a property read, in, a descriptor, the list of keys) goes through a trap of this proxy over
  // the frozen context; only the context's own fields are noted.
  let ctxTarget = null;
  let ctxReadKeys = [];
  function noteCtx(key) {
    if (typeof key !== 'string' || !hasOwn(ctxTarget, key)) return;
    for (let i = 0; i < ctxReadKeys.length; i++) if (ctxReadKeys[i] === key) return;
    ctxReadKeys[ctxReadKeys.length] = key;
  }
  const ctxTraps = freeze({
    __proto__: null,
    get(target, key, receiver) {
      noteCtx(key);
      return reflectGet(target, key, receiver);
    },
    has(target, key) {
      noteCtx(key);
      return reflectHas(target, key);
    },
    getOwnPropertyDescriptor(target, key) {
      noteCtx(key);
      return getOwnPropertyDescriptor(target, key);
    },
    ownKeys(target) {
      const keys = ownKeys(target);
      for (let i = 0; i < keys.length; i++) noteCtx(keys[i]);
      return keys;
    },
  });
  function watchedContext(ctx) {
    ctxReadKeys = [];
    ctxTarget = ctx;
    if (ctx === null || typeof ctx !== 'object') return ctx;
    return new ProxyCtor(ctx, ctxTraps);
  }
  function batchReads() {
    const ctx = [];
    for (let i = 0; i < ctxReadKeys.length; i++) ctx[i] = ctxReadKeys[i];
    return { __proto__: null, ctx, clock: clockRead, random: randomDrawn };
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
    clock = payload.clock;
    seedRandom(payload.seed);
    budget = budgetLimit = payload.maxOutputBytes;
    const params = deepFreeze(payload.params, 0);
    clockRead = false;
    randomDrawn = false;
    const ctx = watchedContext(deepFreeze(payload.ctx, 0));

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
    if (fromText && !rows) return runTextColumn(fn, text, lengths, params, ctx, compiled, cacheHit);
    return runItems(fn, fromText ? splitText(text, lengths) : payload.items, rows, fromText, params, ctx, 0, [], NO_RESULT, compiled, cacheHit);
  }

  // Items from start on, each result rebuilt by normalize into out (which holds the earlier ones);
  // pending, unless NO_RESULT, is what the transform already returned for items[start].
  function runItems(fn, items, rows, fromText, params, ctx, start, out, pending, compiled, cacheHit) {
    const count = items.length;
    // Given a text column, whether every result so far is a string or null: then the results go
    // back as a text column too.
    let allText = fromText;
    for (let i = start; i < count; i++) {
      let result = pending;
      pending = NO_RESULT;
      if (result === NO_RESULT) {
        try {
          result = fn(items[i], params, ctx);
        } catch (thrown) {
          return failure(classify(thrown, 'throw'), describe(thrown), i, compiled, cacheHit);
        }
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
    return { __proto__: null, ok: true, items: out, compiled, cacheHit, reads: batchReads() };
  }

`;
