/**
 * Float text as PostgreSQL prints and reads it (PostgreSQL 12+, extra_float_digits >= 1, the
 * default): the shortest decimal that reads back as the same float (Ryu), in fixed notation when
 * the decimal exponent E of the first digit is in [-4, 14] for float8 and [-4, 5] for float4, else
 * as `d.ddde±XX` with at least two exponent digits (printf style, unlike JavaScript's `1.5e-7`);
 * and float4 input rounded as float4in rounds it.
 */
import { CodecError } from './codec-common.js';

export function specialFloat(text: string): number | undefined {
  if (text === 'NaN') return NaN;
  if (text === 'Infinity') return Infinity;
  if (text === '-Infinity') return -Infinity;
  return undefined;
}

/**
 * Shortest digits and exponent as PostgreSQL prints them: `digits` has no leading or trailing
 * zeros and the value is 0.d1d2d3... × 10^(exp + 1), i.e. exp is the exponent of the first digit.
 */
function formatFloat(negative: boolean, digits: string, exp: number, maxFixedExp: number): string {
  const sign = negative ? '-' : '';
  if (exp >= -4 && exp <= maxFixedExp) {
    if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
    if (digits.length <= exp + 1) return `${sign}${digits}${'0'.repeat(exp + 1 - digits.length)}`;
    return `${sign}${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  }
  const mantissa = digits.length > 1 ? `${digits[0]!}.${digits.slice(1)}` : digits;
  const absExp = Math.abs(exp);
  return `${sign}${mantissa}e${exp < 0 ? '-' : '+'}${absExp < 10 ? '0' : ''}${absExp}`;
}

/** Split a JavaScript number's decimal text (`123.45`, `1.5e-7`, `1e+21`) into digits and exponent. */
function splitDecimal(text: string): { digits: string; exp: number } {
  const e = text.search(/[eE]/);
  const mant = e < 0 ? text : text.slice(0, e);
  let exp10 = e < 0 ? 0 : Number(text.slice(e + 1));
  const dot = mant.indexOf('.');
  let digits = mant;
  if (dot >= 0) {
    digits = mant.slice(0, dot) + mant.slice(dot + 1);
    exp10 -= mant.length - dot - 1;
  }
  // now value = digits × 10^exp10
  digits = digits.replace(/^0+/, '');
  const trimmed = digits.replace(/0+$/, '');
  exp10 += digits.length - trimmed.length;
  return { digits: trimmed, exp: exp10 + trimmed.length - 1 };
}

function specialText(x: number): string | undefined {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  return undefined;
}

/**
 * float8out. JavaScript's shortest round-trip digits are almost always PostgreSQL's too; they
 * differ only when JavaScript's digits lie exactly halfway to a neighbouring double, which
 * JavaScript accepts (the halfway decimal reads back by round-half-even) and PostgreSQL's Ryu
 * does not (it is built without STRICTLY_SHORTEST, so its interval excludes both ends).
 */
export function float8Text(x: number): string {
  const special = specialText(x);
  if (special !== undefined) return special;
  const abs = Math.abs(x);
  let { digits, exp } = splitDecimal(String(abs));
  if (mayBeHalfway(digits, exp, abs)) ({ digits, exp } = shortestInside(abs, 64, digits.length));
  return formatFloat(x < 0, digits, exp, 14);
}

/** float4out: the shortest decimal strictly inside the interval that reads back as the binary32. */
export function float4Text(x: number): string {
  const special = specialText(x);
  if (special !== undefined) return special;
  const abs = Math.abs(x);
  // The first length whose closest decimal reads back as x, by double arithmetic, is the answer's
  // length or one more; exact arithmetic starts one below it to be sure.
  let fast = 1;
  while (fast < 9 && Math.fround(Number(abs.toPrecision(fast))) !== abs) fast++;
  const { digits, exp } = shortestInside(abs, 32, Math.max(1, fast - 1));
  return formatFloat(x < 0, digits, exp, 5);
}

/**
 * Whether digits × 10^(exp - len + 1) can be exactly halfway between two doubles (a cheap filter
 * before exact arithmetic). Halfway points are dyadic: a decimal with a negative power of ten is
 * dyadic only if 5^-e divides its ≤ 17 digits, so e ≥ -24; an integer one needs an ulp ≥ 2.
 */
function mayBeHalfway(digits: string, exp: number, abs: number): boolean {
  const e10 = exp - digits.length + 1;
  if (e10 >= 0) return abs >= 2 ** 53;
  // Trailing zeros are stripped, so a multiple of 5 ends in 5.
  if (e10 < -24 || !digits.endsWith('5')) return false;
  return BigInt(digits) % 5n ** BigInt(-e10) === 0n;
}

// --- exact binary arithmetic, for the shortest-digits search and for correctly rounded input

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);

interface BinaryParts {
  /** x = m × 2^q */
  readonly m: bigint;
  readonly q: number;
  /** The halfway points to the neighbours: lowNum × 2^lowE2 and highNum × 2^highE2. */
  readonly lowNum: bigint;
  readonly lowE2: number;
  readonly highNum: bigint;
  readonly highE2: number;
}

/** A positive finite binary32 or binary64 as an exact integer times a power of two. */
function binaryParts(x: number, width: 32 | 64): BinaryParts {
  let frac: bigint;
  let expBits: number;
  let m: bigint;
  let q: number;
  if (width === 32) {
    f32[0] = x;
    const bits = u32[0]!;
    expBits = (bits >>> 23) & 0xff;
    frac = BigInt(bits & 0x7fffff);
    m = expBits === 0 ? frac : frac | 0x800000n;
    q = expBits === 0 ? -149 : expBits - 150;
  } else {
    f64[0] = x;
    const bits = u64[0]!;
    expBits = Number((bits >> 52n) & 0x7ffn);
    frac = bits & 0xfffffffffffffn;
    m = expBits === 0 ? frac : frac | 0x10000000000000n;
    q = expBits === 0 ? -1074 : expBits - 1075;
  }
  // Just above a power of two the gap below is half as wide as the gap above.
  const narrowBelow = frac === 0n && expBits > 1;
  return {
    m,
    q,
    lowNum: narrowBelow ? 4n * m - 1n : 2n * m - 1n,
    lowE2: narrowBelow ? q - 2 : q - 1,
    highNum: 2n * m + 1n,
    highE2: q - 1,
  };
}

const pow10Cache = new Map<number, bigint>();
const pow10 = (k: number): bigint => {
  let v = pow10Cache.get(k);
  if (v === undefined) pow10Cache.set(k, (v = 10n ** BigInt(k)));
  return v;
};

/** n × 10^e10 × 2^e2 scaled by 10^K × 2^L (both large enough to make it an integer). */
function scaled(n: bigint, e10: number, e2: number, K: number, L: number): bigint {
  return (n * pow10(e10 + K)) << BigInt(e2 + L);
}

/**
 * Where the decimal n × 10^e10 lies relative to the interval of reals that read as x:
 * 'inside' strictly, 'edge' exactly on a halfway point, or 'outside'.
 */
function placeOf(n: bigint, e10: number, p: BinaryParts): 'inside' | 'lowEdge' | 'highEdge' | 'outside' {
  const K = Math.max(0, -e10);
  const L = Math.max(0, -p.lowE2);
  const d = scaled(n, e10, 0, K, L);
  const lo = scaled(p.lowNum, 0, p.lowE2, K, L);
  const hi = scaled(p.highNum, 0, p.highE2, K, L);
  if (d > lo && d < hi) return 'inside';
  if (d === lo) return 'lowEdge';
  if (d === hi) return 'highEdge';
  return 'outside';
}

/** Whether the decimal n × 10^e10 reads (round half to even) as x. */
function readsAs(n: bigint, e10: number, x: number, width: 32 | 64): boolean {
  const p = binaryParts(x, width);
  const place = placeOf(n, e10, p);
  return place === 'inside' || (place !== 'outside' && (p.m & 1n) === 0n);
}

/** toPrecision's output (`1.20`, `0.00120`, `1.20e+5`) as an integer of exactly its digits × 10^e10. */
function precisionDigits(text: string): { n: bigint; e10: number } {
  const e = text.indexOf('e');
  const mant = e < 0 ? text : text.slice(0, e);
  const dot = mant.indexOf('.');
  const fracLen = dot < 0 ? 0 : mant.length - dot - 1;
  return { n: BigInt(mant.replace('.', '')), e10: (e < 0 ? 0 : Number(text.slice(e + 1))) - fracLen };
}

/** Where a candidate decimal lies relative to x's interval, by double arithmetic when that is exact. */
function classify(c: bigint, e10: number, x: number, width: 32 | 64, parts: () => BinaryParts): 'inside' | 'outside' {
  if (width === 32) {
    // The halfway points between binary32 neighbours are exact doubles, and a correctly rounded
    // double of the decimal is on the same side of them as the decimal unless it lands on one.
    const y = Number(`${c}e${e10}`);
    const below = nextFloat32(x, false);
    const above = nextFloat32(x, true);
    const lo = (x + below) / 2;
    const hi = above === Infinity ? x + (x - below) / 2 : (x + above) / 2;
    if (y > lo && y < hi) return 'inside';
    if (y !== lo && y !== hi) return 'outside';
  }
  return placeOf(c, e10, parts()) === 'inside' ? 'inside' : 'outside';
}

/**
 * Ryu's choice: the fewest digits strictly inside x's interval, then the closest to x, then an
 * even last digit. Searches from `fromDigits` significant digits up.
 */
function shortestInside(x: number, width: 32 | 64, fromDigits: number): { digits: string; exp: number } {
  let cached: BinaryParts | undefined;
  const parts = (): BinaryParts => (cached ??= binaryParts(x, width));
  for (let prec = fromDigits; prec <= 17; prec++) {
    // toPrecision is the closest prec-digit decimal; the answer is it or one of its neighbours,
    // since the interval can be narrower on one side of x than the other.
    const { n, e10 } = precisionDigits(x.toPrecision(prec));
    const inside = [n, n - 1n, n + 1n].filter((c) => c > 0n && classify(c, e10, x, width, parts) === 'inside');
    if (inside.length === 0) continue;
    let best = inside[0]!;
    if (inside.length > 1) {
      // Rarely two are inside: compare their distances to x exactly (ties go to the even one).
      const p = parts();
      const K = Math.max(0, -e10);
      const L = Math.max(0, -p.q);
      const xs = scaled(p.m, 0, p.q, K, L);
      const dist = (c: bigint): bigint => {
        const d = scaled(c, e10, 0, K, L) - xs;
        return d < 0n ? -d : d;
      };
      let bestDist = dist(best);
      for (const c of inside.slice(1)) {
        const d = dist(c);
        if (d < bestDist || (d === bestDist && c % 2n === 0n)) {
          best = c;
          bestDist = d;
        }
      }
    }
    const s = best.toString();
    const trimmed = s.replace(/0+$/, '');
    return { digits: trimmed, exp: e10 + s.length - 1 };
  }
  throw new CodecError(`no shortest digits found for ${x}`); // unreachable: 17 digits always suffice
}

function parseDigits(text: string): { n: bigint; e10: number } {
  const { digits, exp } = splitDecimal(text);
  return digits === '' ? { n: 0n, e10: 0 } : { n: BigInt(digits), e10: exp - digits.length + 1 };
}

/** The binary32 next to x (> 0) in the given direction. */
function nextFloat32(x: number, up: boolean): number {
  f32[0] = x;
  u32[0] = u32[0]! + (up ? 1 : -1);
  return f32[0];
}

/**
 * strtof: decimal text correctly rounded to binary32. Math.fround(Number(text)) rounds twice,
 * which goes wrong only when the double lands exactly on a halfway point between two binary32
 * values; then exact arithmetic decides.
 */
export function parseFloat32(text: string): number {
  const y = Math.abs(Number(text));
  const f = Math.fround(y);
  if (y === f || f === 0 || f === Infinity) return text.startsWith('-') ? -f : f;
  const g = nextFloat32(f, y > f);
  let result = f;
  if ((f + g) / 2 === y) {
    const { n, e10 } = parseDigits(text.replace(/^-/, ''));
    result = readsAs(n, e10, f, 32) ? f : g;
  }
  return text.startsWith('-') ? -result : result;
}
