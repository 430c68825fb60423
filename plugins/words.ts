/**
 * Words plugins watch for in client messages, found in the raw bytes without decoding them: a
 * cheap hint on the fast path, not a reading of the SQL. A word is ASCII and found in any mix of
 * cases, as SQL keywords and unquoted names are (`SET Provenance.As_Of` is the same statement as
 * `set provenance.as_of`).
 */

/** Each byte with ASCII upper-case letters folded to lower case (other bytes as they are). */
const FOLD = Uint8Array.from({ length: 256 }, (_, i) => (i >= 0x41 && i <= 0x5a ? i + 0x20 : i));

export class ByteWords {
  private readonly lower: readonly string[];

  constructor(words: readonly string[]) {
    this.lower = [...new Set(words.map((w) => w.toLowerCase()))].filter((w) => w.length > 0);
  }

  get empty(): boolean {
    return this.lower.length === 0;
  }

  /**
   * Whether a message (code, Int32 length, body) holds one of the words in its body. The body
   * read as latin1 and lower-cased by the engine: measured faster than searching the bytes for
   * each word in lower and in upper case, and no mix of cases escapes it.
   */
  inMessage(raw: Buffer): boolean {
    return this.inLower(raw.toString('latin1', 5).toLowerCase());
  }

  /** Whether a decoded text holds one of the words (in any case, as inMessage). */
  inText(text: string): boolean {
    return this.inLower(text.toLowerCase());
  }

  private inLower(text: string): boolean {
    for (const w of this.lower) if (text.includes(w)) return true;
    return false;
  }
}

/** Whether `word` (lower case) stands at `i` of `raw`, in any case. */
function foldedAt(raw: Buffer, i: number, word: Buffer): boolean {
  if (i + word.length > raw.length) return false;
  for (let j = 1; j < word.length; j++) if (FOLD[raw[i + j]!] !== word[j]) return false;
  return true;
}

/** Whether a message's body holds an ASCII word in any mix of cases (`word` in lower case). */
export function holdsWordAnyCase(raw: Buffer, word: string): boolean {
  const w = Buffer.from(word, 'latin1');
  const first = w[0]!;
  for (let i = 5; i <= raw.length - w.length; i++) if (FOLD[raw[i]!] === first && foldedAt(raw, i, w)) return true;
  return false;
}
