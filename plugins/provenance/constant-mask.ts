/**
 * A statement's text with its constants masked, for a cache of statement shapes: point lookups
 * sent with the simple protocol carry their keys as literals, so each text is new, while its shape
 * (statement-shape.ts) stays the same. Reading the text with the server's scanner would cost as
 * much as the shape itself, so this reads it here, but only texts whose lexical structure is plain
 * enough to be read without doubt: no comments, no dollar quotes, no backslashes, no prefixed
 * strings (E'', B'', X'', N'', U&''), no NUL, no U+FFFD. Any other text gets no mask (null) and
 * its shape is computed in full.
 *
 * In what remains the tokens that matter are the server's: '…' strings (a doubled quote inside),
 * "…" identifiers (kept as written), numbers, and `$n` parameters. Each string and number becomes a
 * NUL followed by its token class as the server's scanner returns it: s (SCONST), i (ICONST: an
 * integer that fits in 32 bits) or f (FCONST: any other number). Two texts with the same mask give
 * the parser the same sequence of token kinds, so the same grammar productions; only the values of
 * their constants differ.
 */

export interface MaskedText {
  /** The text with each constant replaced by NUL and its class. */
  readonly key: string;
  /** The constants, in order. */
  readonly constants: readonly MaskedConstant[];
}

export interface MaskedConstant {
  readonly start: number;
  readonly end: number;
  readonly kind: 's' | 'i' | 'f';
}

/** Longer texts are not masked: far below the analyser's limit, so no constant can cross it. */
const MAX_MASKED = 64 * 1024;
const INT4_MAX = 2_147_483_647;
/** Anywhere in the text, strings included: a NUL ends the text for the parser, see above for the rest. */
const UNSURE = /[\u0000\\\uFFFD]/;

const enum C {
  DOLLAR = 0x24, AMP = 0x26, QUOTE = 0x27, DQUOTE = 0x22, STAR = 0x2a, MINUS = 0x2d, DOT = 0x2e,
  SLASH = 0x2f, ZERO = 0x30, NINE = 0x39, UNDERSCORE = 0x5f, LOWER_E = 0x65, UPPER_E = 0x45,
  PLUS = 0x2b,
}

function isDigit(c: number): boolean {
  return c >= C.ZERO && c <= C.NINE;
}

/** A character that may continue an identifier (letters of any script, digits, _, $). */
function isIdentChar(c: number): boolean {
  return isDigit(c) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === C.UNDERSCORE || c === C.DOLLAR || c >= 0x80;
}

/** The masked text, or null when its lexical structure is not plain enough to be sure of. */
export function maskConstants(text: string): MaskedText | null {
  if (text.length > MAX_MASKED || UNSURE.test(text)) return null;
  const constants: MaskedConstant[] = [];
  let key = '';
  let from = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if ((c === C.MINUS && text.charCodeAt(i + 1) === C.MINUS) || (c === C.SLASH && text.charCodeAt(i + 1) === C.STAR)) return null;
    if (c === C.DQUOTE) {
      const end = closing(text, i, C.DQUOTE);
      if (end < 0) return null;
      i = end;
      continue;
    }
    if (c === C.QUOTE) {
      // A prefix (E, B, X, N, U&) or anything glued before the quote makes it another kind of string.
      const before = i > 0 ? text.charCodeAt(i - 1) : 0x20;
      if (isIdentChar(before) || before === C.AMP || before === C.QUOTE || before === C.DQUOTE) return null;
      const end = closing(text, i, C.QUOTE);
      if (end < 0) return null;
      key += `${text.slice(from, i)}\u0000s`;
      constants.push({ start: i, end, kind: 's' });
      from = i = end;
      continue;
    }
    if (c === C.DOLLAR) {
      // Only a parameter: `$` then digits, not glued to a name (a dollar quote or a name with $).
      const before = i > 0 ? text.charCodeAt(i - 1) : 0x20;
      let j = i + 1;
      while (j < n && isDigit(text.charCodeAt(j))) j++;
      if (j === i + 1 || isIdentChar(before) || (j < n && isIdentChar(text.charCodeAt(j)))) return null;
      i = j;
      continue;
    }
    if (isIdentChar(c) && !isDigit(c)) {
      let j = i + 1;
      while (j < n && isIdentChar(text.charCodeAt(j))) j++;
      i = j;
      continue;
    }
    if (isDigit(c) || (c === C.DOT && isDigit(text.charCodeAt(i + 1)))) {
      const end = numberEnd(text, i);
      if (end < 0) return null;
      const digits = text.slice(i, end);
      const kind = /^\d+$/.test(digits) && Number(digits) <= INT4_MAX ? 'i' : 'f';
      key += `${text.slice(from, i)}\u0000${kind}`;
      constants.push({ start: i, end, kind });
      from = i = end;
      continue;
    }
    i++;
  }
  return { key: key + text.slice(from), constants };
}

/** Past the quote that closes the one at `at` (a doubled one stays inside), or -1 if none does. */
function closing(text: string, at: number, quote: number): number {
  let i = at + 1;
  for (;;) {
    const j = text.indexOf(String.fromCharCode(quote), i);
    if (j < 0) return -1;
    if (text.charCodeAt(j + 1) !== quote) return j + 1;
    i = j + 2;
  }
}

/**
 * The end of the number at `at` (digits, a fraction, an exponent), or -1 when what follows it
 * would make the server's scanner cut it otherwise (a name, a second dot, a bare exponent).
 */
function numberEnd(text: string, at: number): number {
  let i = at;
  const n = text.length;
  while (i < n && isDigit(text.charCodeAt(i))) i++;
  if (text.charCodeAt(i) === C.DOT) {
    i++;
    while (i < n && isDigit(text.charCodeAt(i))) i++;
  }
  const e = text.charCodeAt(i);
  if (e === C.LOWER_E || e === C.UPPER_E) {
    let j = i + 1;
    const sign = text.charCodeAt(j);
    if (sign === C.PLUS || sign === C.MINUS) j++;
    if (!isDigit(text.charCodeAt(j))) return -1;
    while (j < n && isDigit(text.charCodeAt(j))) j++;
    i = j;
  }
  const next = text.charCodeAt(i);
  if (i < n && (isIdentChar(next) || next === C.DOT)) return -1;
  return i;
}

/**
 * The text with every constant replaced by another value of its class: how the shape cache checks
 * that a shape does not depend on the values.
 */
export function withOtherConstants(text: string, masked: MaskedText): string {
  let out = '';
  let from = 0;
  for (const k of masked.constants) {
    const value = text.slice(k.start, k.end);
    const other = k.kind === 's' ? (value === "'p'" ? "'q'" : "'p'") : k.kind === 'i' ? (value === '7' ? '8' : '7') : value === '7.5' ? '8.5' : '7.5';
    out += text.slice(from, k.start) + other;
    from = k.end;
  }
  return out + text.slice(from);
}
