/**
 * numeric, as the exact decimal text numeric_out prints: an optional '-', the integer digits
 * (at least one), and exactly dscale fraction digits after a '.' when dscale > 0; or 'NaN',
 * 'Infinity', '-Infinity'. There is no negative zero and never an exponent.
 *
 * Binary format (numeric_send), big-endian:
 *   int16  ndigits   number of base-10000 digits that follow
 *   int16  weight    power of 10000 of the first digit (the value is Σ digit[i] × 10000^(weight-i))
 *   uint16 sign      0x0000 positive, 0x4000 negative, 0xC000 NaN, 0xD000 +Infinity, 0xF000 -Infinity
 *   uint16 dscale    number of decimal digits after the point in the text form (32 for ±Infinity)
 *   int16  digit[ndigits], each 0..9999
 * The server strips leading and trailing zero digits; zero has ndigits 0, weight 0, positive sign.
 *
 * A numeric(p,s) column's typmod is ((p << 16) | (s & 0x7ff)) + 4, s an 11-bit signed scale
 * (PostgreSQL 15 allows s < 0 and s > p). Encoding applies it as the server's own input does:
 * round half away from zero to s fraction digits, then reject more than p - s integer digits.
 */
import { ascii, CodecError, doesNotFit, malformed, type Codec, type JsValue } from './codec-common.js';

const NUMERIC_POS = 0x0000;
const NUMERIC_NEG = 0x4000;
const NUMERIC_NAN = 0xc000;
const NUMERIC_PINF = 0xd000;
const NUMERIC_NINF = 0xf000;

/**
 * The dscale the server sends with ±Infinity. numeric_send reads dscale through the short-header
 * macro, and the special-value header 0xD000/0xF000 has bit 0x1000 inside that field's mask
 * (0x1F80 >> 7), so 32 goes on the wire; NaN's 0xC000 has no such bit and sends 0.
 */
const INF_DSCALE = 32;

/** Most digits before the point (weight is an int16 of base-10000 digits) and after it (dscale). */
const MAX_INT_DIGITS = 131072;
const MAX_DSCALE = 16383;

type Decimal =
  | { readonly kind: 'finite'; readonly neg: boolean; readonly int: string; readonly frac: string }
  | { readonly kind: 'nan' }
  | { readonly kind: 'inf'; readonly neg: boolean };
// For 'finite': int has no leading zeros ('' when the integer part is 0), frac has exactly dscale
// digits, and neg is false for zero.

function decimalText(d: Decimal): string {
  if (d.kind === 'nan') return 'NaN';
  if (d.kind === 'inf') return d.neg ? '-Infinity' : 'Infinity';
  return `${d.neg ? '-' : ''}${d.int || '0'}${d.frac ? `.${d.frac}` : ''}`;
}

function finite(neg: boolean, int: string, frac: string): Decimal {
  const i = int.replace(/^0+/, '');
  const zero = i === '' && !/[1-9]/.test(frac);
  return { kind: 'finite', neg: neg && !zero, int: i, frac };
}

const LITERAL = /^([+-])?(?:([0-9]+)(?:\.([0-9]*))?|\.([0-9]+))(?:[eE]([+-]?[0-9]+))?$/;
const SPECIAL = /^([+-])?(nan|inf|infinity)$/i;

/**
 * numeric_in's reading of a literal ('  -1.50e3 ', '.5', 'inf', 'NaN'): the digits shifted by the
 * exponent, with dscale = max(0, fraction digits - exponent) as the server computes it.
 * Returns a reason string when the text is not a numeric literal or overflows the format.
 */
export function parseNumericLiteral(input: string): Decimal | string {
  const text = input.trim();
  const special = SPECIAL.exec(text);
  if (special) {
    if (special[2]!.toLowerCase() === 'nan') return special[1] ? 'not a numeric literal' : { kind: 'nan' };
    return { kind: 'inf', neg: special[1] === '-' };
  }
  const m = LITERAL.exec(text);
  if (!m) return 'not a numeric literal';
  const neg = m[1] === '-';
  const intDigits = m[2] ?? '';
  const fracDigits = m[3] ?? m[4] ?? '';
  const exp = m[5] === undefined ? 0 : Number(m[5]);
  if (!Number.isSafeInteger(exp)) return 'exponent out of range';
  const all = intDigits + fracDigits;
  const lead = all.length - all.replace(/^0+/, '').length;
  const digits = all.slice(lead);
  const point = intDigits.length + exp - lead; // digits[0 .. point) are the integer part
  const dscale = Math.max(0, fracDigits.length - exp);
  if (dscale > MAX_DSCALE) return `more than ${MAX_DSCALE} digits after the decimal point`;
  if (digits === '') return finite(false, '', '0'.repeat(dscale));
  if (point > MAX_INT_DIGITS) return `more than ${MAX_INT_DIGITS} digits before the decimal point`;
  if (point <= 0) return finite(neg, '', '0'.repeat(-point) + digits + '0'.repeat(dscale + point - digits.length));
  if (point >= digits.length) return finite(neg, digits + '0'.repeat(point - digits.length), '0'.repeat(dscale));
  const frac = digits.slice(point);
  return finite(neg, digits.slice(0, point), frac + '0'.repeat(dscale - frac.length));
}

/** Precision and scale of a numeric typmod, or undefined for none. */
function numericTypmod(typmod: number): { precision: number; scale: number } | undefined {
  if (typmod < 4) return undefined;
  const t = typmod - 4;
  return { precision: (t >> 16) & 0xffff, scale: ((t & 0x7ff) ^ 1024) - 1024 };
}

/** apply_typmod: round half away from zero to `scale` fraction digits (scale may be negative). */
function roundToScale(d: Decimal & { kind: 'finite' }, scale: number): Decimal {
  const fracLen = d.frac.length;
  const unscaled = BigInt(`${d.int}${d.frac}` || '0');
  let q: bigint;
  if (scale >= fracLen) {
    q = unscaled * 10n ** BigInt(scale - fracLen);
  } else {
    const div = 10n ** BigInt(fracLen - scale);
    q = unscaled / div;
    if ((unscaled % div) * 2n >= div) q += 1n;
  }
  // q = |value| × 10^scale
  if (scale <= 0) return finite(d.neg, q === 0n ? '' : `${q}${'0'.repeat(-scale)}`, '');
  const s = q.toString().padStart(scale + 1, '0');
  return finite(d.neg, s.slice(0, s.length - scale), s.slice(s.length - scale));
}

function applyTypmod(d: Decimal, typmod: number, value: JsValue): Decimal {
  const mod = numericTypmod(typmod);
  if (mod === undefined || d.kind === 'nan') return d;
  const typeName = `numeric(${mod.precision},${mod.scale})`;
  if (d.kind === 'inf') throw doesNotFit(value, typeName, 'a numeric with a precision cannot hold an infinite value');
  const r = roundToScale(d, mod.scale);
  if (r.kind !== 'finite') return r;
  // The position of the leading digit: 3 for 123.4, 0 for 0.5, -2 for 0.001.
  const firstFrac = r.frac.search(/[1-9]/);
  const ddigits = r.int.length > 0 ? r.int.length : firstFrac >= 0 ? -firstFrac : -Infinity;
  if (ddigits > mod.precision - mod.scale) {
    throw doesNotFit(value, typeName, `numeric field overflow (rounds to ${decimalText(r)})`);
  }
  return r;
}

function toDecimal(value: JsValue, typmod: number): Decimal {
  let parsed: Decimal | string;
  if (typeof value === 'string') {
    parsed = parseNumericLiteral(value);
  } else if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw doesNotFit(value, 'numeric', "a number must be finite (use the string 'NaN' or 'Infinity')");
    parsed = parseNumericLiteral(String(value));
  } else if (typeof value === 'bigint') {
    parsed = parseNumericLiteral(value.toString());
  } else {
    throw doesNotFit(value, 'numeric', 'expected a decimal string, a number or a bigint');
  }
  if (typeof parsed === 'string') throw doesNotFit(value, 'numeric', parsed);
  return applyTypmod(parsed, typmod, value);
}

/** numeric_send's layout of a Decimal. */
function decimalBinary(d: Decimal): Buffer {
  if (d.kind !== 'finite') {
    const b = Buffer.alloc(8);
    b.writeUInt16BE(d.kind === 'nan' ? NUMERIC_NAN : d.neg ? NUMERIC_NINF : NUMERIC_PINF, 4);
    if (d.kind === 'inf') b.writeUInt16BE(INF_DSCALE, 6);
    return b;
  }
  const intPadded = '0'.repeat((4 - (d.int.length % 4)) % 4) + d.int;
  const fracPadded = d.frac + '0'.repeat((4 - (d.frac.length % 4)) % 4);
  const all = intPadded + fracPadded;
  let weight = intPadded.length / 4 - 1;
  let first = 0;
  let end = all.length / 4;
  while (first < end && all.slice(first * 4, first * 4 + 4) === '0000') {
    first++;
    weight--;
  }
  while (end > first && all.slice(end * 4 - 4, end * 4) === '0000') end--;
  const ndigits = end - first;
  if (ndigits === 0) weight = 0;
  const b = Buffer.allocUnsafe(8 + 2 * ndigits);
  b.writeInt16BE(ndigits, 0);
  b.writeInt16BE(weight, 2);
  b.writeUInt16BE(d.neg ? NUMERIC_NEG : NUMERIC_POS, 4);
  b.writeUInt16BE(d.frac.length, 6);
  for (let i = 0; i < ndigits; i++) b.writeInt16BE(Number(all.slice((first + i) * 4, (first + i) * 4 + 4)), 8 + 2 * i);
  return b;
}

/** numeric_out of a numeric_send payload. */
function binaryText(raw: Buffer): string {
  if (raw.length < 8) throw malformed('numeric', raw, 1);
  const ndigits = raw.readInt16BE(0);
  const weight = raw.readInt16BE(2);
  const sign = raw.readUInt16BE(4);
  const dscale = raw.readUInt16BE(6);
  if (ndigits < 0 || raw.length !== 8 + 2 * ndigits || dscale > MAX_DSCALE) throw malformed('numeric', raw, 1);
  if (sign === NUMERIC_NAN) return 'NaN';
  if (sign === NUMERIC_PINF) return 'Infinity';
  if (sign === NUMERIC_NINF) return '-Infinity';
  if (sign !== NUMERIC_POS && sign !== NUMERIC_NEG) throw malformed('numeric', raw, 1);
  let all = '';
  for (let i = 0; i < ndigits; i++) {
    const digit = raw.readInt16BE(8 + 2 * i);
    if (digit < 0 || digit > 9999) throw malformed('numeric', raw, 1);
    all += String(digit).padStart(4, '0');
  }
  // all holds the digits of 10000^weight down; the point is after (weight + 1) groups.
  const point = (weight + 1) * 4;
  let int: string;
  let frac: string;
  if (point <= 0) {
    int = '';
    frac = '0'.repeat(-point) + all;
  } else if (point >= all.length) {
    int = all + '0'.repeat(point - all.length);
    frac = '';
  } else {
    int = all.slice(0, point);
    frac = all.slice(point);
  }
  // numeric_out prints exactly dscale fraction digits (digits beyond it are not printed).
  frac = frac.length >= dscale ? frac.slice(0, dscale) : frac + '0'.repeat(dscale - frac.length);
  int = int.replace(/^0+/, '');
  return `${sign === NUMERIC_NEG ? '-' : ''}${int || '0'}${frac ? `.${frac}` : ''}`;
}

const NUMERIC_OUT = /^(?:-?[0-9]+(?:\.[0-9]+)?|NaN|-?Infinity)$/;

export const numericCodec: Codec = {
  decodeText(raw) {
    const text = raw.toString('latin1');
    if (!NUMERIC_OUT.test(text)) throw malformed('numeric', raw, 0);
    return text;
  },
  decodeBinary: (raw) => binaryText(raw),
  encodeText: (value, typmod) => ascii(decimalText(toDecimal(value, typmod))),
  encodeBinary: (value, typmod) => decimalBinary(toDecimal(value, typmod)),
};

/** The canonical numeric text of a JSON number (what jsonb prints for it), or a CodecError. */
export function numberAsNumericText(n: number, typeName: string): string {
  if (!Number.isFinite(n)) throw doesNotFit(n, typeName, 'JSON has no NaN or Infinity');
  const d = parseNumericLiteral(String(n));
  if (typeof d === 'string') throw new CodecError(`value ${n} does not fit ${typeName}: ${d}`);
  return decimalText(d);
}

/** Whether two numeric literals denote the same number (ignoring scale: 1.50 equals 1.5). */
export function sameNumber(a: string, b: string): boolean {
  const da = parseNumericLiteral(a);
  const db = parseNumericLiteral(b);
  if (typeof da === 'string' || typeof db === 'string' || da.kind !== 'finite' || db.kind !== 'finite') return false;
  return da.neg === db.neg && da.int === db.int && da.frac.replace(/0+$/, '') === db.frac.replace(/0+$/, '');
}
