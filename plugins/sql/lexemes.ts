/**
 * A text's tokens as the server's scanner reads them, comments included and each token classed:
 * for what needs the words and constants of a statement without its parse tree (or of a text the
 * grammar rejects), with the server's own lexical rules.
 */
import { scanSync } from 'libpg-query';

export type LexemeKind = 'keyword' | 'constant' | 'comment' | 'semicolon' | 'open' | 'close' | 'other';

export interface Lexeme {
  /** Offsets in the text's UTF-8 bytes. */
  readonly start: number;
  readonly end: number;
  readonly text: string;
  readonly kind: LexemeKind;
}

/** The tokens of a text, or null when the scanner rejects it (an unterminated string or comment). */
export function lexemes(text: string): Lexeme[] | null {
  let tokens;
  try {
    tokens = scanSync(text).tokens;
  } catch {
    return null;
  }
  return tokens.map((t) => ({ start: t.start, end: t.end, text: t.text, kind: kindOf(t.tokenName, t.keywordKind, t.text) }));
}

function kindOf(name: string, keywordKind: number, text: string): LexemeKind {
  if (name === 'C_COMMENT' || name === 'SQL_COMMENT') return 'comment';
  if (keywordKind !== 0) return 'keyword';
  // SCONST, ICONST, FCONST; the bit-string, hex and U& strings come back unnamed but quoted.
  if (name.endsWith('CONST') || (name === 'UNKNOWN' && text.includes("'"))) return 'constant';
  if (text === ';') return 'semicolon';
  if (text === '(') return 'open';
  if (text === ')') return 'close';
  return 'other';
}
