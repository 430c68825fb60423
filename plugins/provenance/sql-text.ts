/**
 * What provenance needs to know about a statement's text, without a SQL parser: a normalized
 * form with the literals taken out (statements that differ only in their values share a
 * fingerprint), the operation and query summary of the OpenTelemetry database semantic
 * conventions, and the W3C traceparent a sqlcommenter-instrumented client put in a comment.
 *
 * One left-to-right scan following PostgreSQL's lexical rules ("Lexical Structure" in the manual).
 * No regular expressions: every construct is consumed by a loop or an indexOf that only moves
 * forward, so the cost stays linear in the text whatever the text holds. Plain '...' strings are
 * read as with standard_conforming_strings on (the default since PostgreSQL 9.1): a backslash is
 * an ordinary character in them, and only E'...' strings escape with it.
 *
 * Nothing served depends on this reading: which transforms ran, and on what, comes from the
 * results themselves. What it shapes is the record's description of the statement; in a session
 * with standard_conforming_strings off, a string holding a backslash may keep part of a literal
 * in the normalized text. PostgreSQL's parser (plugins/sql) reads such texts exactly.
 */
import { hash } from 'node:crypto';

export interface TraceParent {
  /** 32 lowercase hex characters, not all zero. */
  readonly traceId: string;
  /** 16 lowercase hex characters, not all zero. */
  readonly spanId: string;
  /** The trace-flags byte; bit 0 is "sampled". */
  readonly flags: number;
}

export interface StatementShape {
  /**
   * The text with every literal replaced: string literals ('..', E'..', U&'..', $tag$..$tag$,
   * B'..', X'..') and numeric literals become `?`; comments removed; runs of whitespace collapsed
   * to one space; trimmed. Parameters `$1` stay. Keywords and identifiers keep their spelling.
   * Quoted identifiers "..." are kept as they are (they are names, not literals).
   */
  readonly normalized: string;
  /** First 16 lowercase hex characters of the SHA-256 of `normalized`. */
  readonly fingerprint: string;
  /**
   * db.operation.name: the first keyword upper-cased (for WITH, the verb of the main statement
   * when one follows the common table expressions); null for an empty statement. For several
   * statements in one text, the first one's.
   */
  readonly operation: string | null;
  /**
   * db.query.summary: the operations and the tables they name, in order of appearance, e.g.
   * `SELECT customers orders` or `INSERT shipping_details SELECT orders`; several statements are
   * joined with `; `. At most 255 characters, cut between words.
   */
  readonly summary: string;
  /** The traceparent of a sqlcommenter comment, when there is one and it is valid. */
  readonly traceparent: TraceParent | null;
}

const SUMMARY_MAX = 255;
/** The longest word in KEYWORDS; longer words are never looked up. */
const KEYWORD_MAX = 13;

const enum Ch {
  Tab = 9,
  LineFeed = 10,
  CarriageReturn = 13,
  Space = 32,
  DoubleQuote = 34,
  Dollar = 36,
  Ampersand = 38,
  Quote = 39,
  OpenParen = 40,
  CloseParen = 41,
  Star = 42,
  Plus = 43,
  Comma = 44,
  Minus = 45,
  Dot = 46,
  Slash = 47,
  Zero = 48,
  Nine = 57,
  Semicolon = 59,
  Equals = 61,
  Backslash = 92,
}

/** The kind of the last significant token, which decides whether a `-` before a digit is a sign. */
const enum Tok {
  None,
  Word,
  Quoted,
  Literal,
  Param,
  Operator,
  Open,
  Close,
  Comma,
  Dot,
  Semicolon,
}

/** What kind of name the summary expects next. */
const enum Expect {
  None,
  /** A FROM, JOIN or USING item: a name followed by `(` is a function call, not a table. */
  Relation,
  /** The table of INSERT INTO, UPDATE, COPY, TRUNCATE, DDL…: a `(` after it opens a column list. */
  Target,
}

/** Statements whose text names tables worth summarizing; any other is summarized by its operation alone. */
const ANALYZED = new Set([
  'SELECT', 'INSERT', 'UPDATE', 'DELETE', 'MERGE', 'WITH', 'VALUES', 'TABLE', 'EXPLAIN', 'PREPARE', 'DECLARE',
  'CREATE', 'ALTER', 'DROP', 'REFRESH', 'TRUNCATE', 'LOCK', 'CALL', 'COPY',
]);
const DDL_VERBS = new Set(['CREATE', 'ALTER', 'DROP', 'REFRESH']);

/** What a keyword means to the summary; a word has all the roles its lists below give it. */
const enum Kw {
  DataVerb = 1 << 0,
  DataVerbLead = 1 << 1,
  DdlModifier = 1 << 2,
  DdlKind = 1 << 3,
  DdlOnTable = 1 << 4,
  BeforeName = 1 << 5,
  NotName = 1 << 6,
  ListEnd = 1 << 7,
  SignAfter = 1 << 8,
  Introduces = 1 << 9,
}

interface Keyword {
  readonly upper: string;
  /** Kw bits. */
  readonly roles: number;
}

/**
 * Keywords by their upper- and lower-case spelling, so a word written either way costs one
 * lookup; only a word in mixed case is upper-cased first.
 */
const KEYWORDS = new Map<string, Keyword>();
function keywords(role: Kw | 0, words: readonly string[]): void {
  for (const w of words) {
    const k = { upper: w, roles: (KEYWORDS.get(w)?.roles ?? 0) | role };
    KEYWORDS.set(w, k);
    KEYWORDS.set(w.toLowerCase(), k);
  }
}

function keywordOf(word: string): Keyword | undefined {
  if (word.length > KEYWORD_MAX) return undefined;
  const k = KEYWORDS.get(word);
  if (k !== undefined) return k;
  let lower = false;
  let upper = false;
  for (let i = 0; i < word.length; i++) {
    const c = word.charCodeAt(i);
    if (c >= 97 && c <= 122) lower = true;
    else if (c >= 65 && c <= 90) upper = true;
  }
  return lower && upper ? KEYWORDS.get(word.toUpperCase()) : undefined;
}
keywords(Kw.DataVerb, ['INSERT', 'UPDATE', 'DELETE', 'MERGE']);
// After these, INSERT, UPDATE, DELETE or MERGE start a statement (EXPLAIN ANALYZE UPDATE …,
// PREPARE p AS DELETE …) rather than being part of a clause (FOR UPDATE, DO UPDATE, ON DELETE).
keywords(Kw.DataVerbLead, ['AS', 'EXPLAIN', 'ANALYZE', 'ANALYSE', 'VERBOSE']);
keywords(Kw.DdlModifier, [
  'OR', 'REPLACE', 'TEMP', 'TEMPORARY', 'UNLOGGED', 'GLOBAL', 'LOCAL', 'UNIQUE', 'RECURSIVE', 'TRUSTED',
  'PROCEDURAL', 'DEFAULT', 'CONSTRAINT',
]);
// Object kinds, kept in the summary after the verb (`CREATE MATERIALIZED VIEW v`).
keywords(Kw.DdlKind, [
  'TABLE', 'VIEW', 'MATERIALIZED', 'FOREIGN', 'INDEX', 'SEQUENCE', 'SCHEMA', 'FUNCTION', 'PROCEDURE', 'ROUTINE',
  'AGGREGATE', 'TRIGGER', 'EVENT', 'TYPE', 'DOMAIN', 'EXTENSION', 'DATABASE', 'ROLE', 'USER', 'GROUP', 'POLICY',
  'RULE', 'COLLATION', 'CONVERSION', 'OPERATOR', 'CLASS', 'FAMILY', 'PUBLICATION', 'SUBSCRIPTION', 'SERVER',
  'STATISTICS', 'TABLESPACE', 'LANGUAGE', 'CAST', 'TRANSFORM', 'ACCESS', 'METHOD', 'TEXT', 'SEARCH',
  'CONFIGURATION', 'DICTIONARY', 'PARSER', 'TEMPLATE', 'DATA', 'WRAPPER', 'MAPPING',
]);
// Kinds whose statement names a table after ON (`CREATE INDEX i ON t`).
keywords(Kw.DdlOnTable, ['INDEX', 'TRIGGER', 'POLICY', 'RULE']);
// Words that may stand between a keyword and the name it introduces.
keywords(Kw.BeforeName, ['ONLY', 'LATERAL', 'TABLE', 'IF', 'NOT', 'EXISTS', 'CONCURRENTLY']);
// Reserved words where a name was expected: the name is absent (`INSERT INTO t VALUES`, `COPY t TO STDOUT`).
keywords(Kw.NotName, [
  'SELECT', 'VALUES', 'WITH', 'WHERE', 'ON', 'USING', 'SET', 'GROUP', 'ORDER', 'HAVING', 'LIMIT', 'OFFSET', 'FETCH',
  'FOR', 'UNION', 'INTERSECT', 'EXCEPT', 'RETURNING', 'WINDOW', 'JOIN', 'INNER', 'LEFT', 'RIGHT', 'FULL', 'CROSS',
  'NATURAL', 'AS', 'DEFAULT', 'FROM', 'INTO', 'TO', 'WHEN', 'THEN', 'AND', 'OR', 'STDIN', 'STDOUT', 'INSERT',
  'UPDATE', 'DELETE', 'MERGE', 'DO', 'IN', 'IS',
]);
// Clauses that end a FROM list: a comma after them separates something else.
keywords(Kw.ListEnd, [
  'WHERE', 'GROUP', 'HAVING', 'WINDOW', 'ORDER', 'LIMIT', 'OFFSET', 'FETCH', 'FOR', 'UNION', 'INTERSECT', 'EXCEPT',
  'RETURNING', 'SET', 'VALUES', 'WHEN',
]);
// Keywords after which `-1` is a negative number rather than a subtraction.
keywords(Kw.SignAfter, [
  'SELECT', 'WHERE', 'AND', 'OR', 'NOT', 'THEN', 'ELSE', 'WHEN', 'CASE', 'RETURN', 'LIMIT', 'OFFSET', 'BETWEEN',
  'HAVING', 'DEFAULT', 'ON', 'IS', 'IN', 'LIKE', 'ILIKE', 'DISTINCT', 'ALL', 'ANY', 'SOME', 'BY', 'AS', 'SET',
  'USING', 'FETCH', 'FIRST', 'NEXT', 'VALUES',
]);
// Words that may introduce a table name (handled in Summarizer.introduce).
keywords(Kw.Introduces, ['FROM', 'JOIN', 'INTO', 'USING', 'ON']);
// Looked up by spelling only.
keywords(0, ['SELECT', 'RECURSIVE']);

function isDigit(c: number): boolean {
  return c >= Ch.Zero && c <= Ch.Nine;
}

/** PostgreSQL identifiers: letters, underscore and any non-ASCII character start one. */
function isIdentStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c >= 128;
}

function isIdentPart(c: number): boolean {
  return isIdentStart(c) || isDigit(c) || c === Ch.Dollar;
}

function isSpace(c: number): boolean {
  return c === Ch.Space || (c >= Ch.Tab && c <= Ch.CarriageReturn);
}

/** End (exclusive) of a '...' string whose body starts at `from`: `''` is a quote inside it. */
function standardStringEnd(text: string, from: number): number {
  let k = from;
  for (;;) {
    const q = text.indexOf("'", k);
    if (q < 0) return text.length;
    if (text.charCodeAt(q + 1) !== Ch.Quote) return q + 1;
    k = q + 2;
  }
}

/** End (exclusive) of an E'...' string whose body starts at `from`: a backslash escapes the next character. */
function escapeStringEnd(text: string, from: number): number {
  const n = text.length;
  let k = from;
  while (k < n) {
    const c = text.charCodeAt(k);
    if (c === Ch.Backslash) {
      k += 2;
    } else if (c === Ch.Quote) {
      if (text.charCodeAt(k + 1) !== Ch.Quote) return k + 1;
      k += 2;
    } else {
      k++;
    }
  }
  return n;
}

/** End (exclusive) of a "..." identifier whose body starts at `from`: `""` is a quote inside it. */
function quotedIdentEnd(text: string, from: number): number {
  let k = from;
  for (;;) {
    const q = text.indexOf('"', k);
    if (q < 0) return text.length;
    if (text.charCodeAt(q + 1) !== Ch.DoubleQuote) return q + 1;
    k = q + 2;
  }
}

/**
 * The index of the `$` closing a dollar-quote opening delimiter that starts at `at` ($$ or $tag$,
 * the tag being an identifier without `$`), or -1 when the `$` there opens no dollar quote.
 */
function dollarTagEnd(text: string, at: number): number {
  let k = at + 1;
  if (text.charCodeAt(k) === Ch.Dollar) return k;
  if (!isIdentStart(text.charCodeAt(k))) return -1;
  k++;
  for (;;) {
    const c = text.charCodeAt(k);
    if (c === Ch.Dollar) return k;
    if (!isIdentPart(c)) return -1;
    k++;
  }
}

/**
 * End (exclusive) of a numeric constant starting at `at`: digits with `_` separators, a fraction,
 * an exponent, or a 0x / 0o / 0b integer (PostgreSQL 16).
 */
function numberEnd(text: string, at: number): number {
  let k = at;
  const radix = text.charCodeAt(k + 1) | 0x20;
  if (text.charCodeAt(k) === Ch.Zero && (radix === 120 || radix === 111 || radix === 98)) {
    k += 2;
    while (isIdentPart(text.charCodeAt(k))) k++;
    return k;
  }
  while (isDigit(text.charCodeAt(k)) || text.charCodeAt(k) === 95) k++;
  if (text.charCodeAt(k) === Ch.Dot && text.charCodeAt(k + 1) !== Ch.Dot) {
    k++;
    while (isDigit(text.charCodeAt(k)) || text.charCodeAt(k) === 95) k++;
  }
  if ((text.charCodeAt(k) | 0x20) === 101) {
    const next = text.charCodeAt(k + 1);
    const sign = next === Ch.Plus || next === Ch.Minus;
    if (isDigit(sign ? text.charCodeAt(k + 2) : next)) {
      k += sign ? 3 : 2;
      while (isDigit(text.charCodeAt(k))) k++;
    }
  }
  return k;
}

/** End (exclusive) of a /* comment starting at `at`; these comments nest. */
function blockCommentEnd(text: string, at: number): number {
  const n = text.length;
  let depth = 1;
  let k = at + 2;
  while (k < n) {
    const c = text.charCodeAt(k);
    if (c === Ch.Star && text.charCodeAt(k + 1) === Ch.Slash) {
      k += 2;
      if (--depth === 0) return k;
    } else if (c === Ch.Slash && text.charCodeAt(k + 1) === Ch.Star) {
      k += 2;
      depth++;
    } else {
      k++;
    }
  }
  return n;
}

function isLowerHex(s: string): boolean {
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (!(isDigit(c) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

function isZeros(s: string): boolean {
  for (let k = 0; k < s.length; k++) if (s.charCodeAt(k) !== Ch.Zero) return false;
  return true;
}

/**
 * A W3C trace-context traceparent: `version-traceid-parentid-flags`, lowercase hex. Version ff is
 * invalid; version 00 has exactly these four fields, a later version may append `-` and more,
 * which is ignored (the recommendation's forward-compatibility rule).
 */
function parseTraceParent(v: string): TraceParent | null {
  if (v.length < 55 || v[2] !== '-' || v[35] !== '-' || v[52] !== '-') return null;
  const version = v.slice(0, 2);
  if (!isLowerHex(version) || version === 'ff') return null;
  if (v.length > 55 && (version === '00' || v[55] !== '-')) return null;
  const traceId = v.slice(3, 35);
  const spanId = v.slice(36, 52);
  const flags = v.slice(53, 55);
  if (!isLowerHex(traceId) || !isLowerHex(spanId) || !isLowerHex(flags)) return null;
  if (isZeros(traceId) || isZeros(spanId)) return null;
  return { traceId, spanId, flags: parseInt(flags, 16) };
}

function urlDecode(s: string): string | null {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

/**
 * The traceparent of a sqlcommenter comment body (text[from, to)): `key='value'` pairs separated
 * by commas, keys and values URL-encoded, a quote inside a value escaped as `\'`. A body in any
 * other shape is an ordinary comment.
 */
function traceParentOfComment(text: string, from: number, to: number): TraceParent | null {
  let k = from;
  while (k < to) {
    while (k < to && isSpace(text.charCodeAt(k))) k++;
    if (k >= to) return null;
    const keyStart = k;
    while (k < to && text.charCodeAt(k) !== Ch.Equals) k++;
    if (k + 1 >= to || text.charCodeAt(k + 1) !== Ch.Quote) return null;
    const key = text.slice(keyStart, k).trim();
    k += 2;
    let value = '';
    let piece = k;
    for (;;) {
      if (k >= to) return null;
      const c = text.charCodeAt(k);
      if (c === Ch.Quote) break;
      if (c === Ch.Backslash && k + 1 < to) {
        value += text.slice(piece, k);
        piece = k + 1;
        k += 2;
      } else {
        k++;
      }
    }
    value += text.slice(piece, k);
    if (urlDecode(key) === 'traceparent') {
      const decoded = urlDecode(value);
      return decoded === null ? null : parseTraceParent(decoded);
    }
    k++;
    while (k < to && isSpace(text.charCodeAt(k))) k++;
    if (k < to) {
      if (text.charCodeAt(k) !== Ch.Comma) return null;
      k++;
    }
  }
  return null;
}

/**
 * Builds the normalized text. Tokens kept verbatim are gathered as spans of the original text
 * (a single space between two of them included), so a statement without literals or odd spacing
 * costs a handful of slices rather than one per token.
 */
class Normalizer {
  private out = '';
  private spanStart = -1;
  private spanEnd = -1;
  private gap = false;

  constructor(private readonly text: string) {}

  /** Whitespace or a comment: one space if another token follows. */
  space(): void {
    this.gap = true;
  }

  keep(start: number, end: number): void {
    if (this.spanStart >= 0) {
      if (start === this.spanEnd && !this.gap) {
        this.spanEnd = end;
        return;
      }
      if (this.gap && start === this.spanEnd + 1 && this.text.charCodeAt(this.spanEnd) === Ch.Space) {
        this.spanEnd = end;
        this.gap = false;
        return;
      }
      this.out += this.text.slice(this.spanStart, this.spanEnd);
    }
    if (this.gap && this.out.length > 0) this.out += ' ';
    this.gap = false;
    this.spanStart = start;
    this.spanEnd = end;
  }

  placeholder(): void {
    this.flush();
    if (this.gap && this.out.length > 0) this.out += ' ';
    this.gap = false;
    this.out += '?';
  }

  result(): string {
    this.flush();
    return this.out;
  }

  private flush(): void {
    if (this.spanStart < 0) return;
    this.out += this.text.slice(this.spanStart, this.spanEnd);
    this.spanStart = -1;
  }
}

/**
 * Builds db.query.summary from the token stream: each operation (SELECT, INSERT, …) as it
 * appears, and each table named where a table is expected (after FROM, JOIN, INTO, UPDATE, a DDL
 * object kind, …), spelled as written. Names of common table expressions are left out, as are
 * functions called in FROM. State is per statement; `;` starts the next one.
 */
class Summarizer {
  summary = '';
  /** db.operation.name of the first statement with one. */
  operation: string | null = null;
  private full = false;
  private partsInStatement = 0;

  private op: string | null = null;
  private opaque = false;
  private depth = 0;
  /** Whether the parentheses at each depth hold a query, where FROM and INTO name tables (not EXTRACT(x FROM y)). */
  private readonly queryLevel: boolean[] = [true];
  /** The expectation a comma renews at each depth: a FROM list, TRUNCATE a, b, … */
  private readonly listAt: Expect[] = [Expect.None];
  private expect = Expect.None;
  private pending: string | null = null;
  private pendingKind = Expect.None;
  private pendingAwaitsPart = false;
  private prev = Tok.None;
  /** The Kw roles of the previous token when it was a word. */
  private prevRoles = 0;
  private ddl = false;
  private ddlOnTable = false;
  private inWith = false;
  private cteExpectName = false;
  private cteNames: string[] = [];
  private mainVerb: string | null = null;

  constructor(private readonly text: string) {}

  word(start: number, end: number): void {
    if (this.opaque) {
      this.prev = Tok.Word;
      return;
    }
    const raw = this.text.slice(start, end);
    const keyword = keywordOf(raw);
    const roles = keyword?.roles ?? 0;
    this.onWord(raw, keyword?.upper ?? null, roles);
    this.prev = Tok.Word;
    this.prevRoles = roles;
  }

  quoted(start: number, end: number): void {
    if (!this.opaque && this.op !== null) {
      this.ddl = false;
      const raw = this.text.slice(start, end);
      if (this.pending !== null && this.pendingAwaitsPart) {
        this.pending += raw;
        this.pendingAwaitsPart = false;
      } else {
        this.commit();
        if (this.inWith && this.depth === 0 && this.cteExpectName) {
          this.cteNames.push(raw);
          this.cteExpectName = false;
        } else if (this.expect !== Expect.None) {
          this.startName(raw);
        }
      }
    }
    this.prev = Tok.Quoted;
  }

  dot(): void {
    if (this.pending !== null && !this.pendingAwaitsPart) {
      this.pending += '.';
      this.pendingAwaitsPart = true;
    } else {
      this.commit();
    }
    this.prev = Tok.Dot;
  }

  open(): void {
    let inner = false;
    let expectInside = Expect.None;
    if (this.pending !== null) {
      // A relation followed by `(` was a function call; a target's `(` opens its column list.
      if (this.pendingKind === Expect.Relation) {
        this.pending = null;
        this.pendingAwaitsPart = false;
      } else {
        this.commit();
      }
    } else if (this.expect !== Expect.None) {
      // A subquery or a parenthesized join where a table was expected.
      inner = true;
      expectInside = this.expect;
    }
    this.ddl = false;
    this.depth++;
    this.queryLevel[this.depth] = inner;
    this.listAt[this.depth] = Expect.None;
    this.expect = expectInside;
    this.prev = Tok.Open;
  }

  close(): void {
    this.commit();
    this.expect = Expect.None;
    if (this.depth > 0) this.depth--;
    this.prev = Tok.Close;
  }

  comma(): void {
    this.commit();
    this.expect = this.listAt[this.depth] ?? Expect.None;
    if (this.inWith && this.depth === 0) this.cteExpectName = true;
    this.prev = Tok.Comma;
  }

  semicolon(): void {
    this.endStatement();
    this.prev = Tok.Semicolon;
  }

  /** A literal, a parameter, an operator: none of them is part of a name. */
  other(kind: Tok): void {
    this.commit();
    this.expect = Expect.None;
    this.ddl = false;
    this.prev = kind;
  }

  finish(): void {
    this.endStatement();
  }

  /** `upper` is set when the word is one of KEYWORDS. */
  private onWord(raw: string, upper: string | null, roles: number): void {
    if (this.op === null) {
      this.firstWord(upper ?? raw.toUpperCase());
      if (this.op !== 'SELECT' && (roles & Kw.DataVerb) === 0) return;
    } else if (this.opaque) {
      return;
    }
    if (this.pending !== null) {
      if (this.pendingAwaitsPart) {
        this.pending += raw;
        this.pendingAwaitsPart = false;
        return;
      }
      this.commit();
    }
    if (this.ddl) {
      if ((roles & Kw.DdlModifier) !== 0) return;
      if (upper !== null && (roles & Kw.DdlKind) !== 0) {
        this.part(upper);
        this.expect = Expect.Target;
        if ((roles & Kw.DdlOnTable) !== 0) this.ddlOnTable = true;
        if (this.op === 'DROP') this.listAt[0] = Expect.Target;
        return;
      }
      this.ddl = false;
    }
    if (this.inWith && this.depth === 0 && this.cteExpectName) {
      if (upper !== 'RECURSIVE') {
        this.cteNames.push(raw);
        this.cteExpectName = false;
      }
      return;
    }
    if (upper === 'SELECT' || (upper !== null && (roles & Kw.DataVerb) !== 0 && this.startsStatement())) {
      this.operationWord(upper);
      return;
    }
    if (this.expect !== Expect.None) {
      if ((roles & Kw.BeforeName) !== 0) return;
      if ((roles & Kw.NotName) === 0) {
        this.startName(raw);
        return;
      }
      this.expect = Expect.None;
    }
    if ((roles & Kw.Introduces) !== 0 && upper !== null) this.introduce(upper);
    else if ((roles & Kw.ListEnd) !== 0) this.listAt[this.depth] = Expect.None;
  }

  /** FROM, JOIN, INTO, USING or ON: whether a table name follows depends on where they stand. */
  private introduce(keyword: string): void {
    const query = this.queryLevel[this.depth] === true;
    switch (keyword) {
      case 'FROM':
        if (query) {
          this.expect = Expect.Relation;
          this.listAt[this.depth] = Expect.Relation;
        }
        return;
      case 'JOIN':
        if (query) this.expect = Expect.Relation;
        return;
      case 'INTO':
        if (query) this.expect = Expect.Target;
        return;
      case 'USING':
        if (this.depth === 0 && (this.op === 'DELETE' || this.op === 'MERGE')) {
          this.expect = Expect.Relation;
          if (this.op === 'DELETE') this.listAt[0] = Expect.Relation;
        }
        return;
      case 'ON':
        if (this.ddlOnTable && this.depth === 0) this.expect = Expect.Target;
        return;
    }
  }

  private firstWord(op: string): void {
    this.op = op;
    if (!ANALYZED.has(op)) {
      this.opaque = true;
      this.part(op);
      return;
    }
    switch (op) {
      case 'SELECT':
      case 'INSERT':
      case 'UPDATE':
      case 'DELETE':
      case 'MERGE':
        return;
      case 'WITH':
        this.inWith = true;
        this.cteExpectName = true;
        return;
      case 'COPY':
        // COPY t FROM STDIN: that FROM names a file, not a table.
        this.queryLevel[0] = false;
        this.part(op);
        this.expect = Expect.Target;
        return;
      case 'TRUNCATE':
      case 'LOCK':
        this.listAt[0] = Expect.Target;
        this.part(op);
        this.expect = Expect.Target;
        return;
      case 'TABLE':
      case 'CALL':
        this.part(op);
        this.expect = Expect.Target;
        return;
      default:
        this.part(op);
        this.ddl = DDL_VERBS.has(op);
    }
  }

  /** Whether an INSERT, UPDATE, DELETE or MERGE here starts a statement rather than being part of a clause. */
  private startsStatement(): boolean {
    switch (this.prev) {
      case Tok.None:
      case Tok.Semicolon:
      case Tok.Open:
      case Tok.Close:
        return true;
      case Tok.Word:
        return (this.prevRoles & Kw.DataVerbLead) !== 0;
      default:
        return false;
    }
  }

  private operationWord(verb: string): void {
    this.part(verb);
    if (this.inWith && this.depth === 0) {
      this.mainVerb ??= verb;
      this.inWith = false;
    }
    this.queryLevel[this.depth] = true;
    this.listAt[this.depth] = Expect.None;
    this.expect = verb === 'UPDATE' ? Expect.Target : Expect.None;
  }

  private startName(raw: string): void {
    this.pending = raw;
    this.pendingKind = this.expect;
    this.pendingAwaitsPart = false;
    this.expect = Expect.None;
  }

  private commit(): void {
    let name = this.pending;
    if (name === null) return;
    this.pending = null;
    if (this.pendingAwaitsPart) {
      // `schema.` with no name after it: keep what there is.
      this.pendingAwaitsPart = false;
      name = name.slice(0, -1);
    }
    if (this.pendingKind === Expect.Relation && this.isCteName(name)) return;
    this.part(name);
  }

  private isCteName(name: string): boolean {
    if (this.cteNames.length === 0) return false;
    const quoted = name.charCodeAt(0) === Ch.DoubleQuote;
    for (const cte of this.cteNames) {
      if (cte === name) return true;
      // Unquoted names are case-insensitive.
      if (!quoted && cte.charCodeAt(0) !== Ch.DoubleQuote && cte.toLowerCase() === name.toLowerCase()) return true;
    }
    return false;
  }

  private part(word: string): void {
    if (this.full) return;
    const separator = this.summary.length === 0 ? 0 : this.partsInStatement === 0 ? 2 : 1;
    if (this.summary.length + separator + word.length > SUMMARY_MAX) {
      this.full = true;
      return;
    }
    this.summary += separator === 0 ? word : separator === 2 ? `; ${word}` : ` ${word}`;
    this.partsInStatement++;
  }

  private endStatement(): void {
    this.commit();
    if (this.op !== null && this.operation === null) {
      this.operation = this.op === 'WITH' ? (this.mainVerb ?? 'WITH') : this.op;
    }
    this.partsInStatement = 0;
    this.op = null;
    this.opaque = false;
    this.depth = 0;
    this.queryLevel[0] = true;
    this.listAt[0] = Expect.None;
    this.expect = Expect.None;
    this.pendingAwaitsPart = false;
    this.ddl = false;
    this.ddlOnTable = false;
    this.inWith = false;
    this.cteExpectName = false;
    if (this.cteNames.length > 0) this.cteNames = [];
    this.mainVerb = null;
  }
}

export function shapeOf(text: string): StatementShape {
  const normalized = new Normalizer(text);
  const summary = new Summarizer(text);
  // One pass over the whole text decides whether comments need reading at all.
  const mayCarryTrace = text.includes('traceparent');
  let traceparent: TraceParent | null = null;
  let prev = Tok.None;
  let prevWordStart = 0;
  let prevWordEnd = 0;
  const n = text.length;
  let i = 0;

  const literal = (end: number): void => {
    normalized.placeholder();
    summary.other(Tok.Literal);
    prev = Tok.Literal;
    i = end;
  };

  while (i < n) {
    const c = text.charCodeAt(i);
    if (isSpace(c)) {
      normalized.space();
      i++;
      continue;
    }
    const next = text.charCodeAt(i + 1);
    if (c === Ch.Minus && next === Ch.Minus) {
      i += 2;
      while (i < n && text.charCodeAt(i) !== Ch.LineFeed && text.charCodeAt(i) !== Ch.CarriageReturn) i++;
      normalized.space();
      continue;
    }
    if (c === Ch.Slash && next === Ch.Star) {
      const end = blockCommentEnd(text, i);
      if (mayCarryTrace && traceparent === null) {
        const closed = end - i >= 4 && text.charCodeAt(end - 1) === Ch.Slash && text.charCodeAt(end - 2) === Ch.Star;
        traceparent = traceParentOfComment(text, i + 2, closed ? end - 2 : end);
      }
      normalized.space();
      i = end;
      continue;
    }
    if (isIdentStart(c)) {
      let end = i + 1;
      while (isIdentPart(text.charCodeAt(end))) end++;
      if (end === i + 1) {
        // One-letter prefixes of string constants: E'..', B'..', X'..', N'..', U&'..', and U&"..".
        const letter = c | 0x20;
        if (next === Ch.Quote) {
          if (letter === 101) {
            literal(escapeStringEnd(text, i + 2));
            continue;
          }
          if (letter === 98 || letter === 120 || letter === 110) {
            literal(standardStringEnd(text, i + 2));
            continue;
          }
        } else if (letter === 117 && next === Ch.Ampersand) {
          const after = text.charCodeAt(i + 2);
          if (after === Ch.Quote) {
            literal(standardStringEnd(text, i + 3));
            continue;
          }
          if (after === Ch.DoubleQuote) {
            const identEnd = quotedIdentEnd(text, i + 3);
            normalized.keep(i, identEnd);
            summary.quoted(i, identEnd);
            prev = Tok.Quoted;
            i = identEnd;
            continue;
          }
        }
      }
      normalized.keep(i, end);
      summary.word(i, end);
      prev = Tok.Word;
      prevWordStart = i;
      prevWordEnd = end;
      i = end;
      continue;
    }
    const fraction = c === Ch.Dot && isDigit(next) && prev !== Tok.Word && prev !== Tok.Quoted && prev !== Tok.Close;
    if (isDigit(c) || fraction) {
      literal(numberEnd(text, i));
      continue;
    }
    if ((c === Ch.Minus || c === Ch.Plus) && (isDigit(next) || (next === Ch.Dot && isDigit(text.charCodeAt(i + 2))))) {
      if (signContext(prev, text, prevWordStart, prevWordEnd)) {
        literal(numberEnd(text, i + 1));
        continue;
      }
    }
    switch (c) {
      case Ch.Quote:
        literal(standardStringEnd(text, i + 1));
        continue;
      case Ch.DoubleQuote: {
        const end = quotedIdentEnd(text, i + 1);
        normalized.keep(i, end);
        summary.quoted(i, end);
        prev = Tok.Quoted;
        i = end;
        continue;
      }
      case Ch.Dollar: {
        if (isDigit(next)) {
          let end = i + 1;
          while (isDigit(text.charCodeAt(end))) end++;
          normalized.keep(i, end);
          summary.other(Tok.Param);
          prev = Tok.Param;
          i = end;
          continue;
        }
        const tagEnd = dollarTagEnd(text, i);
        if (tagEnd >= 0) {
          // The body runs to the same delimiter; other dollar quotes inside it are plain text.
          const delimiter = text.slice(i, tagEnd + 1);
          const close = text.indexOf(delimiter, tagEnd + 1);
          literal(close < 0 ? n : close + delimiter.length);
          continue;
        }
        break;
      }
      case Ch.OpenParen:
        normalized.keep(i, i + 1);
        summary.open();
        prev = Tok.Open;
        i++;
        continue;
      case Ch.CloseParen:
        normalized.keep(i, i + 1);
        summary.close();
        prev = Tok.Close;
        i++;
        continue;
      case Ch.Comma:
        normalized.keep(i, i + 1);
        summary.comma();
        prev = Tok.Comma;
        i++;
        continue;
      case Ch.Dot:
        normalized.keep(i, i + 1);
        summary.dot();
        prev = Tok.Dot;
        i++;
        continue;
      case Ch.Semicolon:
        normalized.keep(i, i + 1);
        summary.semicolon();
        prev = Tok.Semicolon;
        i++;
        continue;
    }
    normalized.keep(i, i + 1);
    summary.other(Tok.Operator);
    prev = Tok.Operator;
    i++;
  }
  summary.finish();

  const norm = normalized.result();
  return {
    normalized: norm,
    fingerprint: hash('sha256', norm, 'hex').slice(0, 16),
    operation: summary.operation,
    summary: summary.summary,
    traceparent,
  };
}

/** Whether a `-` or `+` right before a digit, after this token, is the sign of a number. */
function signContext(prev: Tok, text: string, wordStart: number, wordEnd: number): boolean {
  switch (prev) {
    case Tok.None:
    case Tok.Operator:
    case Tok.Open:
    case Tok.Comma:
    case Tok.Semicolon:
      return true;
    case Tok.Word: {
      const roles = wordEnd - wordStart <= KEYWORD_MAX ? (keywordOf(text.slice(wordStart, wordEnd))?.roles ?? 0) : 0;
      return (roles & Kw.SignAfter) !== 0;
    }
    default:
      return false;
  }
}
