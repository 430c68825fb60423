/**
 * json and jsonb, as parsed JSON values.
 *
 * json keeps its input text exactly (whitespace, key order, duplicate keys); its binary format is
 * that same text. jsonb is stored parsed: its text output is normalized ('{"a": 1, "b": [1, 2]}':
 * ", " and ": " separators, keys ordered by byte length then bytewise, the last of duplicate keys
 * kept, numbers printed as numeric_out prints them: 1e2 as 100, 1.50 as 1.50). Its binary format
 * is a version byte 0x01 followed by that text.
 *
 * Encoding json produces compact JSON (JSON.stringify's layout). Encoding jsonb produces the
 * server's normalized text, so it is byte-identical to what the server would send for the value.
 */
import { CodecError, doesNotFit, hasLoneSurrogate, malformed, textBytes, utf8, type Codec, type JsValue, type JsonValue } from './codec-common.js';
import { numberAsNumericText, sameNumber } from './codec-numeric.js';

const JSONB_VERSION = 1;

// Strings first, so that digits inside them are skipped; what is left of the matches are numbers.
const JSON_TOKENS = /"(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+-]*/g;
const SHORT_INTEGER = /^-?[0-9]{1,15}$/;

/**
 * JSON.parse, refusing numbers a double cannot hold exactly (12345678901234567890, 1e400,
 * 0.1000000000000000000001): a transform that changes another part of the document would
 * otherwise write back a silently altered number. Numbers that differ only in scale (1.50) are
 * exact and accepted.
 */
function parseJson(text: string, typeName: string, raw: Buffer, format: 0 | 1): JsonValue {
  let value: JsonValue;
  try {
    value = JSON.parse(text) as JsonValue;
  } catch {
    throw malformed(typeName, raw, format);
  }
  for (const m of text.matchAll(JSON_TOKENS)) {
    const token = m[0];
    if (token.startsWith('"') || SHORT_INTEGER.test(token)) continue;
    const n = Number(token);
    const back = String(n);
    if (back === token || (Number.isFinite(n) && sameNumber(token, back))) continue;
    throw new CodecError(`${typeName} number ${token.length > 40 ? `${token.slice(0, 37)}...` : token} cannot be represented exactly as a JavaScript number`);
  }
  return value;
}

function isPlainObject(v: object): v is { [k: string]: unknown } {
  const proto: unknown = Object.getPrototypeOf(v);
  // Any realm's Object.prototype (its own prototype is null), or no prototype at all.
  return proto === null || Object.getPrototypeOf(proto) === null;
}

function jsonString(s: string, typeName: string, whole: JsValue, jsonb: boolean): string {
  if (hasLoneSurrogate(s)) throw doesNotFit(whole, typeName, 'a string contains an unpaired UTF-16 surrogate');
  if (jsonb && s.includes('\u0000')) throw doesNotFit(whole, typeName, 'jsonb strings cannot contain U+0000');
  // JSON.stringify escapes exactly what the server's escape_json does: " \ \b \f \n \r \t and
  // the other controls as \u00XX in lowercase hex; everything else is written as itself.
  return JSON.stringify(s);
}

/** jsonb's key order: shorter UTF-8 first, then bytewise. */
function jsonbKeyOrder(keys: string[]): string[] {
  const withBytes = keys.map((k) => ({ k, b: Buffer.from(k, 'utf8') }));
  withBytes.sort((x, y) => x.b.length - y.b.length || Buffer.compare(x.b, y.b));
  return withBytes.map((e) => e.k);
}

/** Serialize a JSON value, checking that every part of it is JSON (no bigint, undefined, Date...). */
function serialize(whole: JsValue, typeName: string, jsonb: boolean): string {
  const ancestors = new Set<object>();
  const walk = (v: unknown, path: string): string => {
    const where = path ? ` at ${path}` : '';
    if (v === null) return 'null';
    switch (typeof v) {
      case 'boolean':
        return v ? 'true' : 'false';
      case 'number':
        if (!Number.isFinite(v)) throw doesNotFit(whole, typeName, `${v} is not a JSON number${where}`);
        return jsonb ? numberAsNumericText(v, typeName) : String(v);
      case 'string':
        return jsonString(v, typeName, whole, jsonb);
      case 'object':
        break;
      default:
        throw doesNotFit(whole, typeName, `${typeof v} is not JSON${where}`);
    }
    if (ancestors.has(v)) throw doesNotFit(whole, typeName, `cyclic structure${where}`);
    ancestors.add(v);
    let out: string;
    if (Array.isArray(v)) {
      const items: string[] = [];
      for (let i = 0; i < v.length; i++) {
        if (!(i in v)) throw doesNotFit(whole, typeName, `array hole at ${path}[${i}]`);
        items.push(walk(v[i], `${path}[${i}]`));
      }
      out = jsonb ? `[${items.join(', ')}]` : `[${items.join(',')}]`;
    } else if (isPlainObject(v)) {
      const keys = jsonb ? jsonbKeyOrder(Object.keys(v)) : Object.keys(v);
      const members = keys.map((k) => {
        const name = jsonString(k, typeName, whole, jsonb);
        const member = walk(v[k], `${path}.${k}`);
        return jsonb ? `${name}: ${member}` : `${name}:${member}`;
      });
      out = jsonb ? `{${members.join(', ')}}` : `{${members.join(',')}}`;
    } else {
      const kind = v instanceof Date ? 'a Date' : v instanceof Uint8Array ? 'a Uint8Array' : 'a non-plain object';
      throw doesNotFit(whole, typeName, `${kind} is not JSON${where}`);
    }
    ancestors.delete(v);
    return out;
  };
  return walk(whole, '');
}

export const jsonCodec: Codec = {
  decodeText: (raw) => parseJson(utf8(raw, 'json', 0), 'json', raw, 0),
  decodeBinary: (raw) => parseJson(utf8(raw, 'json', 1), 'json', raw, 1),
  encodeText: (value) => textBytes(serialize(value, 'json', false), 'json'),
  encodeBinary: (value) => textBytes(serialize(value, 'json', false), 'json'),
};

export const jsonbCodec: Codec = {
  decodeText: (raw) => parseJson(utf8(raw, 'jsonb', 0), 'jsonb', raw, 0),
  decodeBinary(raw) {
    if (raw.length < 1 || raw[0] !== JSONB_VERSION) throw malformed('jsonb', raw, 1);
    const body = raw.subarray(1);
    return parseJson(utf8(body, 'jsonb', 1), 'jsonb', raw, 1);
  },
  encodeText: (value) => Buffer.from(serialize(value, 'jsonb', true), 'utf8'),
  encodeBinary: (value) => Buffer.concat([Buffer.from([JSONB_VERSION]), Buffer.from(serialize(value, 'jsonb', true), 'utf8')]),
};
