/**
 * bool, the integer types and the float types.
 *
 * Binary formats (all big-endian): bool is one byte 0/1; int2/int4/int8 are two's complement of
 * 2/4/8 bytes; oid is an unsigned 4-byte integer; float4/float8 are IEEE 754 binary32/binary64.
 *
 * Float text is printed and read as the server does it (float-text.ts).
 */
import { ascii, doesNotFit, malformed, type Codec, type JsValue } from './codec-common.js';
import { float4Text, float8Text, parseFloat32, specialFloat } from './float-text.js';

// ---------------------------------------------------------------------------------------------
// bool

export const boolCodec: Codec = {
  decodeText(raw) {
    if (raw.length === 1 && raw[0] === 0x74) return true; // 't'
    if (raw.length === 1 && raw[0] === 0x66) return false; // 'f'
    throw malformed('bool', raw, 0);
  },
  decodeBinary(raw) {
    if (raw.length !== 1) throw malformed('bool', raw, 1);
    return raw[0] !== 0;
  },
  encodeText(value) {
    return ascii(toBool(value) ? 't' : 'f');
  },
  encodeBinary(value) {
    return Buffer.from([toBool(value) ? 1 : 0]);
  },
};

function toBool(value: JsValue): boolean {
  if (typeof value !== 'boolean') throw doesNotFit(value, 'bool', 'expected a boolean');
  return value;
}

// ---------------------------------------------------------------------------------------------
// int2, int4, oid (numbers) and int8 (bigint)

const INTEGER_TEXT = /^-?[0-9]+$/;

function decodeIntText(raw: Buffer, name: string, min: number, max: number): number {
  const text = raw.toString('latin1');
  if (!INTEGER_TEXT.test(text)) throw malformed(name, raw, 0);
  const n = Number(text);
  if (n < min || n > max) throw malformed(name, raw, 0);
  return n;
}

/** A number or bigint that is an integer within [min, max], as a number. */
function toSmallInt(value: JsValue, name: string, min: number, max: number): number {
  const range = `out of range [${min}, ${max}]`;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw doesNotFit(value, name, 'not an integer');
    if (value < min || value > max) throw doesNotFit(value, name, range);
    return value === 0 ? 0 : value; // -0 is just 0 for an integer
  }
  if (typeof value === 'bigint') {
    if (value < BigInt(min) || value > BigInt(max)) throw doesNotFit(value, name, range);
    return Number(value);
  }
  throw doesNotFit(value, name, 'expected a number');
}

function smallIntCodec(name: string, bytes: 2 | 4, min: number, max: number): Codec {
  const unsigned = min === 0;
  return {
    decodeText: (raw) => decodeIntText(raw, name, min, max),
    decodeBinary(raw) {
      if (raw.length !== bytes) throw malformed(name, raw, 1);
      if (bytes === 2) return raw.readInt16BE(0);
      return unsigned ? raw.readUInt32BE(0) : raw.readInt32BE(0);
    },
    encodeText: (value) => ascii(String(toSmallInt(value, name, min, max))),
    encodeBinary(value) {
      const n = toSmallInt(value, name, min, max);
      const b = Buffer.allocUnsafe(bytes);
      if (bytes === 2) b.writeInt16BE(n, 0);
      else if (unsigned) b.writeUInt32BE(n, 0);
      else b.writeInt32BE(n, 0);
      return b;
    },
  };
}

export const int2Codec = smallIntCodec('int2', 2, -32768, 32767);
export const int4Codec = smallIntCodec('int4', 4, -2147483648, 2147483647);
export const oidCodec = smallIntCodec('oid', 4, 0, 4294967295);

const INT8_MIN = -(2n ** 63n);
const INT8_MAX = 2n ** 63n - 1n;

function toInt8(value: JsValue): bigint {
  if (typeof value === 'bigint') {
    if (value < INT8_MIN || value > INT8_MAX) throw doesNotFit(value, 'int8', 'out of range [-2^63, 2^63-1]');
    return value;
  }
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw doesNotFit(value, 'int8', 'not an integer');
    // A larger number may already have been rounded by the transform: demand a bigint instead.
    if (!Number.isSafeInteger(value)) throw doesNotFit(value, 'int8', 'beyond 2^53 an int8 must be given as a bigint');
    return BigInt(value);
  }
  throw doesNotFit(value, 'int8', 'expected a bigint or an integer number');
}

export const int8Codec: Codec = {
  decodeText(raw) {
    const text = raw.toString('latin1');
    if (!INTEGER_TEXT.test(text)) throw malformed('int8', raw, 0);
    const n = BigInt(text);
    if (n < INT8_MIN || n > INT8_MAX) throw malformed('int8', raw, 0);
    return n;
  },
  decodeBinary(raw) {
    if (raw.length !== 8) throw malformed('int8', raw, 1);
    return raw.readBigInt64BE(0);
  },
  encodeText: (value) => ascii(toInt8(value).toString()),
  encodeBinary(value) {
    const b = Buffer.allocUnsafe(8);
    b.writeBigInt64BE(toInt8(value), 0);
    return b;
  },
};

// ---------------------------------------------------------------------------------------------
// float4, float8

const FLOAT_TEXT = /^-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;

function decodeFloatText(raw: Buffer, name: string, single: boolean): number {
  const text = raw.toString('latin1');
  const special = specialFloat(text);
  if (special !== undefined) return special;
  if (!FLOAT_TEXT.test(text)) throw malformed(name, raw, 0);
  return single ? parseFloat32(text) : Number(text);
}

function toFloat8(value: JsValue): number {
  if (typeof value !== 'number') throw doesNotFit(value, 'float8', 'expected a number');
  return value;
}

function toFloat4(value: JsValue): number {
  if (typeof value !== 'number') throw doesNotFit(value, 'float4', 'expected a number');
  const f = Math.fround(value);
  // float4in rejects what overflows to infinity or underflows to zero, and so does this.
  if (Number.isFinite(value) && !Number.isFinite(f)) throw doesNotFit(value, 'float4', 'out of range');
  if (value !== 0 && f === 0) throw doesNotFit(value, 'float4', 'too small (underflows to 0)');
  return f;
}

export const float8Codec: Codec = {
  decodeText: (raw) => decodeFloatText(raw, 'float8', false),
  decodeBinary(raw) {
    if (raw.length !== 8) throw malformed('float8', raw, 1);
    return raw.readDoubleBE(0);
  },
  encodeText: (value) => ascii(float8Text(toFloat8(value))),
  encodeBinary(value) {
    const b = Buffer.allocUnsafe(8);
    b.writeDoubleBE(toFloat8(value), 0);
    return b;
  },
};

export const float4Codec: Codec = {
  decodeText: (raw) => decodeFloatText(raw, 'float4', true),
  decodeBinary(raw) {
    if (raw.length !== 4) throw malformed('float4', raw, 1);
    return raw.readFloatBE(0);
  },
  encodeText: (value) => ascii(float4Text(toFloat4(value))),
  encodeBinary(value) {
    const b = Buffer.allocUnsafe(4);
    b.writeFloatBE(toFloat4(value), 0);
    return b;
  },
};
