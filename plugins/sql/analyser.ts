/**
 * The SQL analyser: PostgreSQL's own parser (libpg-query, the server's grammar compiled to
 * WebAssembly), so the proxy reads a statement with the tokens the server reads: comments between
 * tokens, `U&"…"` identifiers, dollar quotes and odd spacing cannot make it see something else.
 *
 * Parsing costs; callers ask only about texts that need it (a byte pre-check first) and analyses
 * are cached by text. A text the parser rejects gives an analysis that says so: callers that
 * decide what may be served treat it as a refusal (fail closed).
 *
 * The parser reads plain '…' strings as the server does with standard_conforming_strings on. A
 * session may turn it off, and then a backslash before a quote no longer ends the string, so the
 * same text holds other statements. When a plain string of the text holds a backslash, the
 * analysis therefore carries a second reading: the text as a server with the setting off reads
 * it (unless such a server would reject it). Callers that decide what may be served look at
 * every reading.
 */
import { LRUCache } from 'lru-cache';
import { fingerprintSync, loadModule, normalizeSync, parseSync, scanSync, type Node } from 'libpg-query';

export type { Node };

/** The statements of a text, in order, as one setting of standard_conforming_strings reads them. */
export type Reading = readonly Node[];

export type SqlAnalysis =
  | { readonly ok: true; readonly readings: readonly Reading[] }
  | {
      readonly ok: false;
      /** SQLSTATE: 42601 a syntax error, 22021 a text the proxy could not decode, 54000/54001 too long or too complex. */
      readonly code: string;
      /** The parser's message, as the server would word it. */
      readonly message: string;
      /** 1-based character position of the error in the text, as an ErrorResponse carries it. */
      readonly position: number;
    };

export interface SqlToken {
  /** Offsets in the text's UTF-8 bytes. */
  readonly start: number;
  readonly end: number;
  readonly text: string;
  /** A keyword (in any case), not a quoted identifier that spells one. */
  readonly keyword: boolean;
}

/** Entries and their estimated size in memory (a parse tree is some ten times its text). */
const CACHE_ENTRIES = 2048;
const CACHE_BYTES = 32 * 1024 * 1024;
/**
 * The longest text parsed. Parsing runs on the event loop at some 50 ms per MiB: a longer text
 * (which callers only ask about when it holds a keyword they care for) is not analysed.
 */
const MAX_TEXT = 1024 * 1024;
/** How many plain strings with backslashes the second reading rewrites before it gives up. */
const MAX_BACKSLASH_STRINGS = 64;
const BACKSLASH = 0x5c;
const QUOTE = 0x27;

export class SqlAnalyser {
  private readonly cache = new LRUCache<string, SqlAnalysis>({
    max: CACHE_ENTRIES,
    maxSize: CACHE_BYTES,
    sizeCalculation: (_v, text) => 256 + 16 * text.length,
  });
  private readonly fingerprints = new LRUCache<string, string | false>({ max: CACHE_ENTRIES, maxSize: CACHE_BYTES / 4, sizeCalculation: (_v, text) => 64 + 2 * text.length });
  private readonly normalized = new LRUCache<string, string | false>({ max: CACHE_ENTRIES, maxSize: CACHE_BYTES / 4, sizeCalculation: (_v, text) => 64 + 4 * text.length });
  private parseCount = 0;

  private static loaded: Promise<SqlAnalyser> | null = null;

  private constructor() {}

  /**
   * The process's analyser, its parser loaded (from the installed package, no network) on the
   * first call. An analyser exists only once the parser is loaded, so no statement can be
   * analysed before.
   */
  static load(): Promise<SqlAnalyser> {
    SqlAnalyser.loaded ??= loadModule().then(() => new SqlAnalyser());
    return SqlAnalyser.loaded;
  }

  /** How many texts were given to the parser so far (cache hits are not counted). */
  get parses(): number {
    return this.parseCount;
  }

  /**
   * The tokens of a text as the server's scanner reads them, comments left out (offsets in UTF-8
   * bytes), or null if it cannot. Not cached.
   */
  tokens(text: string): readonly SqlToken[] | null {
    try {
      return scanSync(text).tokens
        .filter((t) => t.tokenName !== 'C_COMMENT' && t.tokenName !== 'SQL_COMMENT')
        .map((t) => ({ start: t.start, end: t.end, text: t.text, keyword: t.keywordKind !== 0 }));
    } catch {
      return null;
    }
  }

  /**
   * The parser's fingerprint of a text (libpg_query's: a hash of the parse tree with constants,
   * aliases, names of savepoints and the like left out, so `select 1 from t where a = 2` and
   * `SELECT 3 FROM t WHERE a = $1` share one), or null if the text does not parse. Cached.
   */
  fingerprint(text: string): string | null {
    // Some texts the grammar rejects come back from fingerprintSync as the error message.
    return this.cachedText(this.fingerprints, text, (t) => {
      const fp = fingerprintSync(t);
      return /^[0-9a-f]{16}$/.test(fp) ? fp : false;
    });
  }

  /** The text with its constants replaced by `$n` parameters, or null if it does not parse. Cached. */
  normalize(text: string): string | null {
    return this.cachedText(this.normalized, text, normalizeSync);
  }

  private cachedText(cache: LRUCache<string, string | false>, text: string, fn: (t: string) => string | false): string | null {
    const hit = cache.get(text);
    if (hit !== undefined) return hit === false ? null : hit;
    let out: string | false;
    try {
      out = this.analyse(text).ok ? fn(text) : false;
    } catch {
      out = false;
    }
    cache.set(text, out);
    return out === false ? null : out;
  }

  analyse(text: string): SqlAnalysis {
    const cached = this.cache.get(text);
    if (cached !== undefined) return cached;
    this.parseCount++;
    const analysis = analyseText(text);
    this.cache.set(text, analysis);
    return analysis;
  }
}

function analyseText(text: string): SqlAnalysis {
  if (text.length > MAX_TEXT) {
    return { ok: false, code: '54000', message: `the statement is too long for the proxy to analyse (${text.length} characters, at most ${MAX_TEXT})`, position: 1 };
  }
  // Bytes that were not UTF-8 reached us as U+FFFD: in a client encoding such as SJIS one may be
  // the lead byte of a character whose second byte is a backslash or a quote to us, not to the
  // server. Such a text cannot be read as the server reads it.
  const replaced = text.indexOf('\uFFFD');
  if (replaced >= 0) {
    return { ok: false, code: '22021', message: 'the statement is not valid UTF-8: the proxy cannot read it as the server does', position: replaced + 1 };
  }
  const first = parseReading(text);
  if (!isReading(first)) return first;
  const other = backslashReading(text);
  if (other === null) return { ok: true, readings: [first] };
  if (typeof other !== 'string') return other;
  const second = parseReading(other);
  // A text that does not parse with the setting off is rejected by such a server: only the
  // standard reading can run (`ESCAPE '\'` in a COPY is such a text).
  return { ok: true, readings: isReading(second) ? [first, second] : [first] };
}

function isReading(r: Reading | SqlAnalysis): r is Reading {
  return Array.isArray(r);
}

function parseReading(text: string): Reading | SqlAnalysis {
  try {
    const stmts = parseSync(text).stmts ?? [];
    const out: Node[] = [];
    for (const s of stmts) if (s.stmt !== undefined) out.push(s.stmt);
    return out;
  } catch (err) {
    return failure(err, text);
  }
}

/**
 * The text as a server with standard_conforming_strings off reads it, written for a parser that
 * has it on, or null when both read it alike. With the setting off a plain '…' string takes
 * backslash escapes as an E'…' string does; one without a backslash reads the same either way.
 * So the first plain string holding a backslash is made an E'…' string and the text scanned
 * again (that string may now end elsewhere), until no plain string holds one.
 */
function backslashReading(text: string): string | null | SqlAnalysis {
  if (!text.includes('\\')) return null;
  let bytes = Buffer.from(text, 'utf8');
  let changed = false;
  for (let round = 0; round <= MAX_BACKSLASH_STRINGS; round++) {
    let tokens;
    try {
      tokens = scanSync(bytes.toString('utf8')).tokens;
    } catch {
      // Not even its tokens read with the setting off: such a server rejects it.
      return null;
    }
    let at = -1;
    let prefix = -1;
    for (let i = 0; i < tokens.length && at < 0; i++) {
      const t = tokens[i]!;
      if (bytes[t.start] !== QUOTE || bytes.subarray(t.start, t.end).indexOf(BACKSLASH) < 0) continue;
      at = t.start;
      // N'…' is scanned as the keyword NCHAR (the letter N alone) and then the string.
      const before = tokens[i - 1];
      if (before !== undefined && before.end === t.start && before.end - before.start === 1 && (bytes[before.start]! | 0x20) === 0x6e) {
        prefix = before.start;
      }
    }
    if (at < 0) return changed ? bytes.toString('utf8') : null;
    changed = true;
    bytes = prefix >= 0
      ? Buffer.concat([bytes.subarray(0, prefix), Buffer.from('E'), bytes.subarray(at)])
      : Buffer.concat([bytes.subarray(0, at), Buffer.from('E'), bytes.subarray(at)]);
  }
  return { ok: false, code: '54001', message: 'too many string constants with backslashes to analyse', position: 1 };
}

function failure(err: unknown, text: string): SqlAnalysis {
  const message = err instanceof Error ? err.message : String(err);
  const details = (err as { sqlDetails?: { cursorPosition?: unknown } } | null)?.sqlDetails;
  const cursor = typeof details?.cursorPosition === 'number' ? details.cursorPosition : 0;
  // The cursor counts UTF-8 bytes of the text; ErrorResponse positions count characters.
  const position = Buffer.from(text, 'utf8').subarray(0, cursor).toString('utf8').length + 1;
  return { ok: false, code: '42601', message, position };
}
