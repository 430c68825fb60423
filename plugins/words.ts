/**
 * Words plugins watch for in client messages, found in the raw bytes without decoding them: a
 * cheap hint on the fast path, not a reading of the SQL. Words are ASCII and found in any mix of
 * cases (SQL keywords and unquoted names are case-insensitive), so `provenance.`,
 * `PROVENANCE.` and `Provenance.` are all found.
 *
 * Every group of words (a plugin's statementWords, another's unitWords, COPY…) is searched in one
 * pass over the message: a table of the words' first two bytes says at which positions a word may
 * start, and only there are the candidates compared. A message is scanned once however many groups and
 * questions there are: the answer for the last message asked about is kept.
 */

/** ASCII case folding of one byte: A–Z to a–z, every other byte as it is. */
const FOLD = new Uint8Array(256).map((_, c) => (c >= 0x41 && c <= 0x5a ? c + 0x20 : c));

interface Candidate {
  /** The word in lower case, its first byte included. */
  readonly bytes: Uint8Array;
  /** The groups it belongs to (bit i: group i). */
  readonly groups: number;
}

/** The most groups one matcher can tell apart (bits of a small integer). */
const MAX_GROUPS = 30;

export class WordGroups {
  /** Per folded first byte, the words that start with it; undefined for most bytes. */
  private readonly byFirst: (readonly Candidate[] | undefined)[] = new Array<readonly Candidate[] | undefined>(256);
  /** 1 at (first byte << 8 | second byte), folded, where some word starts so. */
  private readonly starts = new Uint8Array(1 << 16);
  /** Every group that has at least one word. */
  private readonly all: number;
  private lastRaw: Buffer | null = null;
  private lastFound = 0;

  /** Group i is `groups[i]`, reported as bit i. */
  constructor(groups: readonly (readonly string[])[]) {
    if (groups.length > MAX_GROUPS) throw new Error(`at most ${MAX_GROUPS} groups of words, not ${groups.length}`);
    const byWord = new Map<string, number>();
    groups.forEach((words, i) => {
      for (const w of words) {
        if (w.length < 2 || !/^[\x20-\x7e]+$/.test(w)) throw new Error(`a watched word must be two or more printable ASCII characters: ${JSON.stringify(w)}`);
        const lower = w.toLowerCase();
        byWord.set(lower, (byWord.get(lower) ?? 0) | (1 << i));
      }
    });
    let all = 0;
    const lists = new Map<number, Candidate[]>();
    for (const [word, mask] of byWord) {
      const bytes = Buffer.from(word, 'latin1');
      const list = lists.get(bytes[0]!) ?? [];
      lists.set(bytes[0]!, list);
      list.push({ bytes, groups: mask });
      this.starts[(bytes[0]! << 8) | bytes[1]!] = 1;
      all |= mask;
    }
    for (const [first, list] of lists) this.byFirst[first] = list;
    this.all = all;
  }

  /** Whether no group has a word: nothing can ever be found. */
  get empty(): boolean {
    return this.all === 0;
  }

  /** The groups with a word in the body of a message (code, Int32 length, body), as bits. */
  inMessage(raw: Buffer): number {
    if (raw !== this.lastRaw) {
      this.lastFound = this.scan(raw, 5);
      this.lastRaw = raw;
    }
    return this.lastFound;
  }

  /** The groups with a word in a decoded text, as inMessage finds them in its bytes. */
  inText(text: string): number {
    return this.scan(Buffer.from(text, 'utf8'), 0);
  }

  private scan(b: Buffer, start: number): number {
    const all = this.all;
    if (all === 0) return 0;
    const { byFirst, starts } = this;
    let found = 0;
    for (let i = start; i < b.length - 1; i++) {
      const first = FOLD[b[i]!]!;
      if (starts[(first << 8) | FOLD[b[i + 1]!]!] === 0) continue;
      for (const c of byFirst[first]!) {
        if ((found & c.groups) === c.groups) continue;
        const word = c.bytes;
        if (i + word.length > b.length) continue;
        let j = 1;
        while (j < word.length && FOLD[b[i + j]!] === word[j]) j++;
        if (j < word.length) continue;
        found |= c.groups;
        if (found === all) return found;
      }
    }
    return found;
  }
}
