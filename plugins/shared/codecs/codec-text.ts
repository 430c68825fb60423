/**
 * The string types (text, varchar, bpchar, name, "char"), bytea and uuid.
 *
 * text/varchar/bpchar/name send the same bytes in both formats: the string in the client
 * encoding (UTF8 assumed), with no terminator. bpchar arrives padded with spaces to its length.
 *
 * "char" is one byte. Binary sends that byte. Text (PostgreSQL 15+) prints byte 0 as the empty
 * string, bytes 1..127 as themselves and bytes 128..255 as a backslash and three octal digits
 * ('\351'), since a lone high byte is not a character in any multibyte encoding.
 *
 * bytea text output is `\x` + lowercase hex (bytea_output = hex, the default) or, with
 * bytea_output = escape, printable ASCII as itself, a backslash as `\\` and every other byte as
 * `\ooo`. Binary is the bytes themselves.
 *
 * uuid text is 8-4-4-4-12 lowercase hex; binary is the 16 bytes.
 */
import { ascii, doesNotFit, malformed, textBytes, utf8, type Codec, type JsValue } from './codec-common.js';

function toText(value: JsValue, typeName: string): string {
  if (typeof value !== 'string') throw doesNotFit(value, typeName, 'expected a string');
  return value;
}

/** Number of characters (code points), which is what varchar(n) and bpchar(n) limit. */
function codePoints(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length - 1; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n--;
        i++;
      }
    }
  }
  return n;
}

/** The UTF-16 index where the (n+1)-th code point starts (s.length when s is shorter). */
function codePointIndex(s: string, n: number): number {
  let i = 0;
  for (let k = 0; k < n && i < s.length; k++) {
    const c = s.charCodeAt(i);
    i += c >= 0xd800 && c <= 0xdbff && i + 1 < s.length ? 2 : 1;
  }
  return i;
}

/** The declared length of varchar(n) / bpchar(n): typmod is n + 4, -1 when there is none. */
function charLimit(typmod: number): number | undefined {
  return typmod >= 4 ? typmod - 4 : undefined;
}

function stringCodec(typeName: string, prepare: (s: string, typmod: number, value: JsValue) => string): Codec {
  const encode = (value: JsValue, typmod: number): Buffer => textBytes(prepare(toText(value, typeName), typmod, value), typeName);
  return {
    decodeText: (raw) => utf8(raw, typeName, 0),
    decodeBinary: (raw) => utf8(raw, typeName, 1),
    encodeText: encode,
    encodeBinary: encode,
  };
}

export const textCodec = stringCodec('text', (s) => s);

export const varcharCodec = stringCodec('varchar', (s, typmod, value) => {
  const limit = charLimit(typmod);
  if (limit !== undefined && codePoints(s) > limit) {
    throw doesNotFit(value, `varchar(${limit})`, `longer than ${limit} characters`);
  }
  return s;
});

/**
 * bpchar(n) values are padded to n characters, as the server would store and send them.
 * Trailing spaces are insignificant for bpchar, so spaces beyond n are dropped as the server's
 * own input does; any other excess does not fit.
 */
export const bpcharCodec = stringCodec('bpchar', (s, typmod, value) => {
  const limit = charLimit(typmod);
  if (limit === undefined) return s;
  const len = codePoints(s);
  if (len < limit) return s + ' '.repeat(limit - len);
  if (len === limit) return s;
  const cut = codePointIndex(s, limit);
  if (!/^ *$/.test(s.slice(cut))) throw doesNotFit(value, `bpchar(${limit})`, `longer than ${limit} characters`);
  return s.slice(0, cut);
});

/** NAMEDATALEN - 1: the server would silently truncate a longer name. */
const NAME_MAX_BYTES = 63;

export const nameCodec = stringCodec('name', (s, _typmod, value) => {
  if (Buffer.byteLength(s, 'utf8') > NAME_MAX_BYTES) throw doesNotFit(value, 'name', `longer than ${NAME_MAX_BYTES} bytes`);
  return s;
});

// ---------------------------------------------------------------------------------------------
// "char"

/** The JavaScript form of a "char" byte: '' for 0, the character below 128, '\ooo' above. */
function charString(byte: number): string {
  if (byte === 0) return '';
  if (byte < 0x80) return String.fromCharCode(byte);
  return `\\${byte.toString(8).padStart(3, '0')}`;
}

const CHAR_OCTAL = /^\\([0-3][0-7][0-7])$/;

function charByte(value: JsValue): number {
  if (typeof value !== 'string') throw doesNotFit(value, '"char"', 'expected a string');
  if (value === '') return 0;
  if (value.length === 1 && value.charCodeAt(0) < 0x80) return value.charCodeAt(0);
  const octal = CHAR_OCTAL.exec(value);
  if (octal) return parseInt(octal[1]!, 8);
  throw doesNotFit(value, '"char"', "expected '', one ASCII character or '\\ooo' (one byte)");
}

export const charCodec: Codec = {
  decodeText(raw) {
    const text = raw.toString('latin1');
    if (raw.length === 0) return '';
    if (raw.length === 1 && raw[0]! < 0x80) return text;
    if (CHAR_OCTAL.test(text) && parseInt(text.slice(1), 8) >= 0x80) return text;
    throw malformed('"char"', raw, 0);
  },
  decodeBinary(raw) {
    if (raw.length !== 1) throw malformed('"char"', raw, 1);
    return charString(raw[0]!);
  },
  encodeText: (value) => ascii(charString(charByte(value))),
  encodeBinary: (value) => Buffer.from([charByte(value)]),
};

// ---------------------------------------------------------------------------------------------
// bytea

const HEX = /^[0-9a-fA-F]*$/;

/** byteain's escape format: `\\` is a backslash, `\ooo` an octal byte, anything else itself. */
function unescapeBytea(raw: Buffer): Uint8Array {
  const out = new Uint8Array(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c !== 0x5c) {
      out[n++] = c;
      continue;
    }
    if (raw[i + 1] === 0x5c) {
      out[n++] = 0x5c;
      i++;
      continue;
    }
    const d0 = raw[i + 1];
    const d1 = raw[i + 2];
    const d2 = raw[i + 3];
    if (
      d0 === undefined || d1 === undefined || d2 === undefined ||
      d0 < 0x30 || d0 > 0x33 || d1 < 0x30 || d1 > 0x37 || d2 < 0x30 || d2 > 0x37
    ) {
      throw malformed('bytea', raw, 0);
    }
    out[n++] = ((d0 - 0x30) << 6) | ((d1 - 0x30) << 3) | (d2 - 0x30);
    i += 3;
  }
  return out.slice(0, n);
}

function toBytes(value: JsValue): Uint8Array {
  if (!(value instanceof Uint8Array)) throw doesNotFit(value, 'bytea', 'expected a Uint8Array');
  return value;
}

export const byteaCodec: Codec = {
  decodeText(raw) {
    if (raw.length >= 2 && raw[0] === 0x5c && raw[1] === 0x78) {
      const hex = raw.toString('latin1', 2);
      if (hex.length % 2 !== 0 || !HEX.test(hex)) throw malformed('bytea', raw, 0);
      return new Uint8Array(Buffer.from(hex, 'hex'));
    }
    return unescapeBytea(raw);
  },
  // A copy: the field bytes are a view of the whole DataRow, which the transform must not reach.
  decodeBinary: (raw) => new Uint8Array(raw),
  encodeText(value) {
    const bytes = toBytes(value);
    return ascii(`\\x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')}`);
  },
  encodeBinary: (value) => Buffer.from(toBytes(value)),
};

// ---------------------------------------------------------------------------------------------
// uuid

const UUID_OUT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// What uuid_in accepts in practice: optional braces, any case, the dashes optional.
const UUID_IN = /^([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})$/i;

function uuidHex(value: JsValue): string {
  if (typeof value !== 'string') throw doesNotFit(value, 'uuid', 'expected a string');
  const inner = value.startsWith('{') && value.endsWith('}') ? value.slice(1, -1) : value;
  const m = UUID_IN.exec(inner);
  if (!m) throw doesNotFit(value, 'uuid', 'expected 32 hex digits as 8-4-4-4-12');
  return m.slice(1).join('').toLowerCase();
}

function dashed(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export const uuidCodec: Codec = {
  decodeText(raw) {
    const text = raw.toString('latin1');
    if (!UUID_OUT.test(text)) throw malformed('uuid', raw, 0);
    return text;
  },
  decodeBinary(raw) {
    if (raw.length !== 16) throw malformed('uuid', raw, 1);
    return dashed(raw.toString('hex'));
  },
  encodeText: (value) => ascii(dashed(uuidHex(value))),
  encodeBinary: (value) => Buffer.from(uuidHex(value), 'hex'),
};
