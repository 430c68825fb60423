/**
 * Column value codecs for transforms: DataRow field bytes (text or binary format) to natural
 * JavaScript values and back, each checked to fit the column's type (typmod included).
 *
 * | PostgreSQL type (oid) | JavaScript value | Examples | Accepted back, and what does not fit |
 * | --- | --- | --- | --- |
 * | `bool` (16) | boolean | `true` | a boolean only |
 * | `int2` (21), `int4` (23), `oid` (26) | number | `-32768`, `4294967295` | an integer number, or a bigint, within the type's range |
 * | `int8` (20) | bigint | `9223372036854775807n` | a bigint in range, or a safe-integer number |
 * | `float4` (700), `float8` (701) | number | `0.1`, `NaN`, `-Infinity`, `-0` | any number (NaN, ±Infinity and -0 kept in both formats); float4: a value whose binary32 rounding overflows or underflows to 0 does not fit |
 * | `numeric` (1700) | string, exact | `'12345678901234567890.0001'`, `'-1.50'`, `'NaN'`, `'Infinity'` | a numeric literal string (`'1.5e3'`, `' 42 '`, `'-inf'`), a finite number, a bigint; normalized as the server would (`'1.5e3'` → `'1500'`); `numeric(p,s)` rounds half away from zero to s digits, more than p - s integer digits or an infinity does not fit |
 * | `text` (25), `varchar` (1043), `name` (19) | string | `'héllo'` | a string without U+0000 or unpaired surrogates; `varchar(n)`: at most n characters; `name`: at most 63 bytes |
 * | `bpchar` (1042) | string, padded as sent | `'ab   '` for `char(5)` | a string; `bpchar(n)` pads it to n, drops trailing spaces beyond n, and rejects other excess |
 * | `"char"` (18) | string | `'a'`, `''` (byte 0), `'\\351'` (bytes 128..255: a backslash and three octal digits, as PostgreSQL 15+ prints them) | `''`, one ASCII character, or a backslash and three octal digits |
 * | `bytea` (17) | Uint8Array (a copy) | `Uint8Array [0xde, 0xad]` | a Uint8Array (Buffer included); text output is hex `\x…`; the escape format is decoded too |
 * | `uuid` (2950) | string | `'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'` | also capitals, braces, no dashes |
 * | `json` (114), `jsonb` (3802) | parsed JSON: null, boolean, number, string, array, plain object | `{ a: [1, 'x'] }` | plain JSON data: a bigint, undefined, a function, a Date, a Uint8Array, a class instance, a cycle, a sparse array, NaN or ±Infinity does not fit; jsonb: no U+0000 in strings |
 * | `date` (1082) | string | `'2024-10-27'`, `'0044-03-15 BC'`, `'infinity'`, `'-infinity'` | that form (also `' AD'`), or a Date at midnight UTC |
 * | `time` (1083) | string, six fraction digits | `'10:00:00.000000'`, `'24:00:00.000000'` | `HH:MM[:SS[.ffffff]]` |
 * | `timestamp` (1114) | string, six fraction digits | `'2024-10-27T10:00:00.123456'`, `'0044-03-15T10:00:00.000000 BC'`, `'infinity'` | that form (`' '` for `'T'`, fewer fraction digits, no zone), or a Date (its UTC wall clock) |
 * | `timestamptz` (1184) | string, six fraction digits and the UTC offset | binary: `'2024-10-27T10:00:00.123456Z'`; text: the offset the server printed for the session TimeZone, `'2024-10-27T15:30:00.123456+05:30'` | that form with `Z` or `±HH[:MM[:SS]]` (an offset is required), or a Date |
 * | any other type | string (text format), Uint8Array (binary format) | `'1 day'` for an interval | the same kind, passed through unchecked |
 *
 * SQL NULL is null in both directions, so a top-level JSON `null` (not SQL NULL) decodes to null
 * and cannot be written back as JSON. json numbers that a double cannot hold exactly
 * (12345678901234567890, 1e400) are a CodecError when decoding rather than silently rounded.
 * Dates and timestamps are strings because a Date would lose the microseconds, the BC era, the
 * infinities and the years beyond 275760.
 *
 * Contract with the caller: encodeValue is meant for values a transform changed. A value passed
 * through unchanged should keep its original field bytes, because some forms carry more than the
 * value: json keeps its exact input text (whitespace, key order, duplicate keys), jsonb prints
 * numbers with their scale (1.50), bytea may arrive in the escape format, and a float NaN the
 * server computed may have its sign bit set (x86 does that). For everything else, and for jsonb
 * whose numbers print the way JavaScript prints them, encodeValue(decodeValue(raw, t), t) is raw,
 * byte for byte, in both formats.
 *
 * Session assumptions: client_encoding UTF8, DateStyle ISO, extra_float_digits >= 1 (the defaults
 * drivers use; a date in another DateStyle is a CodecError). The session TimeZone is never needed:
 * timestamptz text carries its offset.
 */
import { doesNotFit, textBytes, utf8, type Codec, type ColumnType, type JsValue } from './codec-common.js';
import { charCodec, bpcharCodec, byteaCodec, nameCodec, textCodec, uuidCodec, varcharCodec } from './codec-text.js';
import { boolCodec, float4Codec, float8Codec, int2Codec, int4Codec, int8Codec, oidCodec } from './codec-numbers.js';
import { numericCodec } from './codec-numeric.js';
import { dateCodec, timeCodec, timestampCodec, timestamptzCodec } from './codec-datetime.js';
import { jsonbCodec, jsonCodec } from './codec-json.js';

export { CodecError } from './codec-common.js';
export type { ColumnType, JsonValue, JsValue } from './codec-common.js';

const CODECS: ReadonlyMap<number, { readonly name: string; readonly codec: Codec }> = new Map([
  [16, { name: 'bool', codec: boolCodec }],
  [17, { name: 'bytea', codec: byteaCodec }],
  [18, { name: 'char', codec: charCodec }],
  [19, { name: 'name', codec: nameCodec }],
  [20, { name: 'int8', codec: int8Codec }],
  [21, { name: 'int2', codec: int2Codec }],
  [23, { name: 'int4', codec: int4Codec }],
  [25, { name: 'text', codec: textCodec }],
  [26, { name: 'oid', codec: oidCodec }],
  [114, { name: 'json', codec: jsonCodec }],
  [700, { name: 'float4', codec: float4Codec }],
  [701, { name: 'float8', codec: float8Codec }],
  [1042, { name: 'bpchar', codec: bpcharCodec }],
  [1043, { name: 'varchar', codec: varcharCodec }],
  [1082, { name: 'date', codec: dateCodec }],
  [1083, { name: 'time', codec: timeCodec }],
  [1114, { name: 'timestamp', codec: timestampCodec }],
  [1184, { name: 'timestamptz', codec: timestamptzCodec }],
  [1700, { name: 'numeric', codec: numericCodec }],
  [2950, { name: 'uuid', codec: uuidCodec }],
  [3802, { name: 'jsonb', codec: jsonbCodec }],
]);

/** The supported types: oid → pg_type.typname. */
export const TYPE_NAMES: ReadonlyMap<number, string> = new Map([...CODECS].map(([oid, c]) => [oid, c.name]));

export function isSupportedType(oid: number): boolean {
  return CODECS.has(oid);
}

/**
 * The value of one DataRow field (raw is null for SQL NULL). Throws CodecError when the bytes are
 * not a value of the type as the server prints it (e.g. a DateStyle other than ISO), or when a
 * json number cannot be held exactly.
 */
export function decodeValue(raw: Buffer | null, type: ColumnType): JsValue {
  if (raw === null) return null;
  const entry = CODECS.get(type.oid);
  if (entry === undefined) {
    // Unsupported types pass through: text as a string, binary as a copy of the bytes.
    return type.format === 0 ? utf8(raw, `type ${type.oid}`, 0) : new Uint8Array(raw);
  }
  return type.format === 0 ? entry.codec.decodeText(raw, type.typmod) : entry.codec.decodeBinary(raw, type.typmod);
}

/**
 * The field bytes of a value in the column's format (null for SQL NULL). Throws CodecError when
 * the value does not fit the column's type, typmod included.
 */
export function encodeValue(value: JsValue, type: ColumnType): Buffer | null {
  if (value === null) return null;
  const entry = CODECS.get(type.oid);
  if (entry === undefined) {
    const typeName = `type ${type.oid}`;
    if (type.format === 0 && typeof value === 'string') return textBytes(value, typeName);
    if (type.format === 1 && value instanceof Uint8Array) return Buffer.from(value);
    const expected = type.format === 0 ? 'a string in text format' : 'a Uint8Array in binary format';
    throw doesNotFit(value, typeName, `an unsupported type is passed through and must be ${expected}`);
  }
  return type.format === 0 ? entry.codec.encodeText(value, type.typmod) : entry.codec.encodeBinary(value, type.typmod);
}
