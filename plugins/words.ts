/**
 * Words plugins watch for in client messages, found in the raw bytes without decoding them: a
 * cheap hint on the fast path, not a reading of the SQL. A word is looked for as written in lower
 * case and in upper case (not mixed), so `provenance.` and `PROVENANCE.` are found.
 */
export class ByteWords {
  private readonly bytes: readonly Buffer[];
  private readonly lower: readonly string[];

  constructor(words: readonly string[]) {
    this.lower = [...new Set(words.map((w) => w.toLowerCase()))];
    this.bytes = this.lower.flatMap((w) => [Buffer.from(w, 'latin1'), Buffer.from(w.toUpperCase(), 'latin1')]);
  }

  get empty(): boolean {
    return this.bytes.length === 0;
  }

  /** Whether a message (code, Int32 length, body) holds one of the words in its body. */
  inMessage(raw: Buffer): boolean {
    for (const w of this.bytes) if (raw.indexOf(w, 5) >= 0) return true;
    return false;
  }

  /** Whether a decoded text holds one of the words (in lower or upper case, as inMessage). */
  inText(text: string): boolean {
    for (const w of this.lower) if (text.includes(w) || text.includes(w.toUpperCase())) return true;
    return false;
  }
}

/** Whether a message's body holds an ASCII word in any mix of cases (`word` in lower case). */
export function holdsWordAnyCase(raw: Buffer, word: string): boolean {
  const first = word.charCodeAt(0);
  const end = raw.length - word.length + 1;
  for (let i = 5; i < end; i++) {
    if ((raw[i]! | 0x20) !== first) continue;
    let j = 1;
    while (j < word.length && (raw[i + j]! | 0x20) === word.charCodeAt(j)) j++;
    if (j === word.length) return true;
  }
  return false;
}
