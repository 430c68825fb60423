/**
 * What provenance records and spans say about a statement's text, read with PostgreSQL's parser
 * and scanner (plugins/sql): its fingerprint and normalised text (literals replaced, comments
 * removed), the operation and query summary of the OpenTelemetry database semantic conventions,
 * and the W3C traceparent a sqlcommenter-instrumented client put in a comment.
 *
 * - A text the parser accepts: the fingerprint is libpg_query's (a hash of the parse tree that
 *   leaves constants, parameter numbers, aliases, IN-list lengths and comments out), the
 *   normalised text libpg_query's normalisation (each constant a `$n` parameter).
 * - A text the parser rejects but the scanner reads: each constant token becomes a `$n` parameter
 *   (numbered after the text's own), and the fingerprint is the first 16 hex characters of the
 *   SHA-256 of its tokens one space apart, comments left out, constants as `?`, keywords
 *   upper-cased and unquoted names lower-cased.
 * - A text the scanner cannot read either (an unterminated string or comment): the normalised text
 *   is empty and the fingerprint that of an empty text, so none of its bytes (which may hold a
 *   secret) reach a record.
 *
 * Nothing served depends on this: which transforms ran, and on what, comes from the results.
 */
import { hash } from 'node:crypto';
import type { Node, SqlAnalyser } from '../sql/analyser.js';
import { lexemes, type Lexeme } from '../sql/lexemes.js';
import { traceParentOf, type TraceParent } from './traceparent.js';

export interface StatementShape {
  /** The text with its constants replaced by `$n` parameters and its comments removed, spaces collapsed. */
  readonly normalized: string;
  /** 16 lowercase hex characters (see above). */
  readonly fingerprint: string;
  /**
   * db.operation.name: the first keyword of the first statement, upper-cased (for WITH, the verb
   * of the main statement); null for a text without a statement.
   */
  readonly operation: string | null;
  /**
   * db.query.summary: per statement its operation and the tables it names, in the order they
   * appear (common table expressions left out), e.g. `SELECT customers orders`; several statements
   * are joined with `; `. At most 255 characters, cut between words.
   */
  readonly summary: string;
  /** The traceparent of a sqlcommenter comment, when there is one and it is valid. */
  readonly traceparent: TraceParent | null;
  /** How many statements the text holds, as the server's scanner splits it. */
  readonly statements: number;
}

const SUMMARY_MAX = 255;
const MAIN_VERBS: Readonly<Record<string, string>> = {
  SelectStmt: 'SELECT', InsertStmt: 'INSERT', UpdateStmt: 'UPDATE', DeleteStmt: 'DELETE', MergeStmt: 'MERGE',
};

export function shapeOf(sql: SqlAnalyser, text: string): StatementShape {
  const tokens = lexemes(text);
  const parsed = sql.fingerprint(text);
  const normalized = parsed === null ? null : sql.normalize(text);
  const analysis = parsed === null ? null : sql.analyse(text);
  const nodes = analysis?.ok ? analysis.readings[0] : undefined;
  const statements = tokens === null ? [] : statementsOf(tokens);
  const operations = statements.map((s, i) => operationOf(s, nodes?.[i]));
  // The tables come from the parse tree, when its statements are the scanner's.
  const withTables = nodes !== undefined && nodes.length === statements.length;
  const summaries = operations.map((op, i) => [op, ...(withTables ? tablesOf(nodes[i]!) : [])].join(' '));
  return {
    ...(parsed !== null && normalized !== null
      ? { fingerprint: parsed, normalized: render(lexemes(normalized) ?? [], () => null) }
      : tokens !== null ? unparsed(tokens) : { fingerprint: sha16(''), normalized: '' }),
    operation: operations[0] ?? null,
    summary: cut(summaries.join('; ')),
    traceparent: tokens === null || !text.includes('traceparent') ? null : traceParentOf(tokens.filter((t) => t.kind === 'comment').map((t) => t.text)),
    statements: statements.length,
  };
}

/** A text the parser rejects: constants become parameters numbered after the text's own. */
function unparsed(tokens: readonly Lexeme[]): { fingerprint: string; normalized: string } {
  let n = 0;
  for (const t of tokens) if (/^\$\d+$/.test(t.text)) n = Math.max(n, Number(t.text.slice(1)));
  const words = tokens.filter((t) => t.kind !== 'comment').map(fingerprintWord);
  return { fingerprint: sha16(words.join(' ')), normalized: render(tokens, (t) => (t.kind === 'constant' ? `$${++n}` : null)) };
}

/** A token as the fingerprint of an unparsed text sees it: names folded as the server folds them. */
function fingerprintWord(t: Lexeme): string {
  if (t.kind === 'constant') return '?';
  if (t.kind === 'keyword') return t.text.toUpperCase();
  return t.text.startsWith('"') ? t.text : t.text.toLowerCase();
}

/** Tokens without comments, one space where the text had space or a comment between two. */
function render(tokens: readonly Lexeme[], replace: (t: Lexeme) => string | null): string {
  let out = '';
  let end = -1;
  for (const t of tokens) {
    if (t.kind === 'comment') continue;
    if (end >= 0 && t.start > end) out += ' ';
    out += replace(t) ?? t.text;
    end = t.end;
  }
  return out;
}

/** The statements of a text: its tokens (comments left out) between semicolons outside parentheses. */
function statementsOf(tokens: readonly Lexeme[]): Lexeme[][] {
  const out: Lexeme[][] = [];
  let cur: Lexeme[] = [];
  let depth = 0;
  for (const t of tokens) {
    if (t.kind === 'comment') continue;
    if (t.kind === 'open') depth++;
    else if (t.kind === 'close' && depth > 0) depth--;
    if (t.kind === 'semicolon' && depth === 0) {
      if (cur.length > 0) out.push(cur);
      cur = [];
    } else cur.push(t);
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

function operationOf(statement: readonly Lexeme[], node: Node | undefined): string {
  const first = (statement.find((t) => t.kind !== 'open') ?? statement[0]!).text.toUpperCase();
  if (first !== 'WITH' || node === undefined) return first;
  const kind = Object.keys(node)[0];
  return (kind !== undefined ? MAIN_VERBS[kind] : undefined) ?? first;
}

/** The tables a statement names, in the order they appear, each once; common table expressions left out. */
function tablesOf(node: Node): string[] {
  const ctes = new Set<string>();
  const found: { name: string; location: number }[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) {
      for (const x of v) walk(x);
      return;
    }
    if (v === null || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    if (typeof o.ctename === 'string') ctes.add(o.ctename);
    // A RangeVar, wrapped in a node or (a statement's target) bare.
    if (typeof o.relname === 'string') {
      const schema = typeof o.schemaname === 'string' ? o.schemaname : null;
      found.push({ name: schema === null ? o.relname : `${schema}\u0000${o.relname}`, location: typeof o.location === 'number' ? o.location : 0 });
    }
    for (const x of Object.values(o)) walk(x);
  };
  walk(node);
  found.sort((a, b) => a.location - b.location);
  const out: string[] = [];
  for (const f of found) {
    if (ctes.has(f.name)) continue;
    const name = f.name.split('\u0000').map(quoteIdent).join('.');
    if (!out.includes(name)) out.push(name);
  }
  return out;
}

function quoteIdent(s: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(s) ? s : `"${s.replace(/"/g, '""')}"`;
}

/** At most SUMMARY_MAX characters, cut between words. */
function cut(s: string): string {
  if (s.length <= SUMMARY_MAX) return s;
  const at = s.lastIndexOf(' ', SUMMARY_MAX);
  return s.slice(0, at > 0 ? at : SUMMARY_MAX);
}

function sha16(s: string): string {
  return hash('sha256', s, 'hex').slice(0, 16);
}
