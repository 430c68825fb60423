/**
 * Shared pieces of the column codecs: the value types, the error, and UTF-8 helpers.
 * The public entry point is codecs.ts, which re-exports what callers need.
 */
import { isAscii } from 'node:buffer';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

/** Values a transform sees and returns. */
export type JsValue = null | boolean | number | bigint | string | Date | Uint8Array | JsonValue;

/** A column as a RowDescription describes it. */
export interface ColumnType {
  readonly oid: number;
  /** atttypmod: -1 when the type has no modifier. */
  readonly typmod: number;
  /** 0 text, 1 binary. */
  readonly format: 0 | 1;
}

/** A value that does not fit its column's type, or field bytes that are not a valid value of it. */
export class CodecError extends Error {
  override readonly name = 'CodecError';
}

/** One type's two wire formats. typmod is the column's (-1 when none). */
export interface Codec {
  decodeText(raw: Buffer, typmod: number): JsValue;
  decodeBinary(raw: Buffer, typmod: number): JsValue;
  encodeText(value: JsValue, typmod: number): Buffer;
  encodeBinary(value: JsValue, typmod: number): Buffer;
}

/** A short, readable rendering of a value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string': {
      const s = value.length > 60 ? `${value.slice(0, 57)}...` : value;
      return JSON.stringify(s);
    }
    case 'number':
      return Object.is(value, -0) ? '-0' : String(value);
    case 'bigint':
      return `${value}n`;
    case 'boolean':
      return String(value);
    case 'undefined':
      return 'undefined';
    case 'function':
      return 'a function';
    case 'symbol':
      return 'a symbol';
    default:
      break;
  }
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'Invalid Date' : `Date ${value.toISOString()}`;
  if (value instanceof Uint8Array) return `Uint8Array(${value.length})`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return 'an object';
}

/** `value X does not fit T[: why]`: the one shape every encode error has. */
export function doesNotFit(value: unknown, typeName: string, why?: string): CodecError {
  return new CodecError(`value ${describe(value)} does not fit ${typeName}${why ? `: ${why}` : ''}`);
}

/** Field bytes the server could not have sent for this type. */
export function malformed(typeName: string, raw: Buffer | string, format: 0 | 1): CodecError {
  const shown =
    typeof raw === 'string' ? describe(raw) : format === 0 ? describe(raw.toString('latin1')) : `0x${raw.subarray(0, 32).toString('hex')}`;
  return new CodecError(`malformed ${typeName} value in ${format === 0 ? 'text' : 'binary'} format: ${shown}`);
}

// ignoreBOM keeps a leading U+FEFF as data instead of silently dropping it; fatal makes bytes that
// are not UTF-8 an error instead of U+FFFD, so a decoded string always re-encodes to the same bytes.
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Field bytes as a string. The session's client_encoding is assumed to be UTF8. */
export function utf8(raw: Buffer, typeName: string, format: 0 | 1): string {
  // Pure ASCII is common and Buffer's latin1 decoding of it is much faster than TextDecoder.
  if (asciiBytes(raw)) return raw.toString('latin1');
  try {
    return utf8Decoder.decode(raw);
  } catch {
    throw malformed(typeName, raw, format);
  }
}

/** isAscii, with short fields checked in a loop: cheaper than the native call's checks. */
function asciiBytes(raw: Buffer): boolean {
  const n = raw.length;
  if (n > 64) return isAscii(raw);
  let all = 0;
  for (let i = 0; i < n; i++) all |= raw[i]!;
  return all < 0x80;
}

// In a `u` regex a surrogate code unit only matches when it is not half of a pair.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** Strings up to this many UTF-16 units are encoded in JavaScript when they are plain ASCII. */
const SHORT_TEXT = 256;

/**
 * A string as the UTF-8 bytes PostgreSQL would accept as text: no NUL (text types cannot hold
 * one) and no unpaired surrogate (UTF-8 cannot encode one; Buffer.from would silently put U+FFFD).
 */
export function textBytes(value: string, typeName: string): Buffer {
  const n = value.length;
  if (n <= SHORT_TEXT) {
    // Short ASCII without NUL, the common case: stored byte by byte, which costs less than
    // Buffer.from's native call and the NUL search after it. Anything else takes the general path.
    const out = Buffer.allocUnsafe(n);
    let i = 0;
    for (; i < n; i++) {
      const c = value.charCodeAt(i);
      if (c >= 0x80 || c === 0) break;
      out[i] = c;
    }
    if (i === n) return out;
  }
  const bytes = Buffer.from(value, 'utf8');
  // As many bytes as UTF-16 units: all ASCII, so no surrogate; a native search finds a NUL.
  if (bytes.length === value.length) {
    if (bytes.indexOf(0) !== -1) throw doesNotFit(value, typeName, 'PostgreSQL text cannot contain NUL (U+0000)');
    return bytes;
  }
  if (value.includes('\u0000')) throw doesNotFit(value, typeName, 'PostgreSQL text cannot contain NUL (U+0000)');
  if (LONE_SURROGATE.test(value)) throw doesNotFit(value, typeName, 'contains an unpaired UTF-16 surrogate');
  return bytes;
}

export function hasLoneSurrogate(value: string): boolean {
  return LONE_SURROGATE.test(value);
}

export function ascii(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}
