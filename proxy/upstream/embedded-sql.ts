/**
 * What the embedded upstream must know about the statements it runs for its sessions, read with
 * PostgreSQL's own parser (plugins/sql): whether a text would start COPY FROM STDIN (which would
 * wedge PGlite), which SET to put back on the session's next turn, whether settings may have
 * changed, and which channels it listens on.
 *
 * Each question first looks for a keyword's letters in the text (a keyword cannot be spelt with
 * escapes, so a text without them cannot hold that statement); only then is it parsed, once per
 * text. A text read two ways (see SqlAnalysis.readings) must mean the same in both for an answer
 * that acts on it, or it is treated as the risky case.
 */
import { PgError, SqlState } from '../errors.js';
import type { Node, SqlAnalyser, SqlAnalysis } from '../../plugins/sql/analyser.js';
import { quoteIdent } from './sql-quote.js';

/** A lone COPY … FROM STDIN, ready to be loaded from collected data instead. */
export interface CopyInPlan {
  /** The same statement reading from PGlite's `/dev/blob`. */
  readonly sql: string;
  /** The target relation, quoted, to learn its column count when the statement lists none. */
  readonly relation: string;
  /** Columns listed in the statement, or null for all of the relation's. */
  readonly columns: number | null;
  readonly binary: boolean;
}

/** Changes to the channels a session listens on: names to add, names to drop ('*' for all). */
export interface ListenChanges {
  readonly listen: readonly string[];
  readonly unlisten: readonly string[];
}

export class EmbeddedSql {
  constructor(private readonly sql: SqlAnalyser) {}

  /** Whether a text may start COPY FROM STDIN: it holds one, or holds COPY and STDIN and cannot be parsed. */
  feedsCopyIn(text: string): boolean {
    if (!/copy/i.test(text) || !/stdin/i.test(text)) return false;
    const a = this.sql.analyse(text);
    return !a.ok || a.readings.some((r) => r.some(isCopyFromStdin));
  }

  /**
   * A text that feeds COPY FROM STDIN, as it can be served: a plan when it is that statement alone
   * (in every reading of it), else the error for the client.
   */
  copyIn(text: string): CopyInPlan | PgError {
    const a = this.sql.analyse(text);
    if (!a.ok) return new PgError(a.code, a.message, 'ERROR', { position: a.position });
    const stmts = lone(a);
    const copy = stmts !== null && stmts.every(isCopyFromStdin) && 'CopyStmt' in stmts[0]! ? stmts[0]!.CopyStmt : null;
    const tokens = copy ? this.sql.tokens(text) : null;
    const stdin = tokens?.findIndex((t, i) => i > 0 && t.keyword && lower(t.text) === 'stdin' && lower(tokens[i - 1]!.text) === 'from') ?? -1;
    if (copy === null || copy.relation === undefined || tokens === null || stdin < 0) {
      return copyInNotAlone();
    }
    // Trailing semicolons are dropped: the statement is run on its own through PGlite's query API.
    let end = tokens.length;
    while (end > 0 && tokens[end - 1]!.text === ';') end--;
    const bytes = Buffer.from(text, 'utf8');
    const at = tokens[stdin]!;
    const sql = `${bytes.toString('utf8', 0, at.start)}'/dev/blob'${bytes.toString('utf8', at.end, tokens[end - 1]!.end)}`;
    const rel = copy.relation;
    const relation = [rel.schemaname, rel.relname ?? ''].filter((p) => p !== undefined).map((p) => quoteIdent(p)).join('.');
    const binary = (copy.options ?? []).some((o) => 'DefElem' in o && o.DefElem.defname === 'format' && o.DefElem.arg !== undefined
      && 'String' in o.DefElem.arg && lower(o.DefElem.arg.String.sval ?? '') === 'binary');
    return { sql, relation, columns: copy.attlist ? copy.attlist.length : null, binary };
  }

  /**
   * The text of a session-level SET or RESET sent alone, to be run again on the session's next
   * turn; null for anything else (SET LOCAL and SET TRANSACTION end with their transaction).
   */
  sessionSet(text: string): string | null {
    if (!/set/i.test(text)) return null;
    const a = this.sql.analyse(text);
    if (!a.ok) return null;
    const stmts = lone(a);
    if (stmts === null) return null;
    for (const stmt of stmts) {
      if (!('VariableSetStmt' in stmt)) return null;
      const set = stmt.VariableSetStmt;
      if (set.is_local === true || (set.kind === 'VAR_SET_MULTI' && set.name === 'TRANSACTION')) return null;
    }
    return text;
  }

  /**
   * Whether a text may change a reported setting: a SET or RESET, a set_config call anywhere, or a
   * text holding SET that cannot be read (asking costs one query; missing a change misleads the client).
   */
  changesSettings(text: string): boolean {
    if (!/set/i.test(text)) return false;
    const a = this.sql.analyse(text);
    return !a.ok || a.readings.some((r) => r.some((n) => 'VariableSetStmt' in n || callsSetConfig(n)));
  }

  /** LISTEN and UNLISTEN statements of a text, or null when it has none. */
  listens(text: string): ListenChanges | null {
    if (!/listen/i.test(text)) return null;
    const a = this.sql.analyse(text);
    if (!a.ok) return null;
    const listen: string[] = [];
    const unlisten: string[] = [];
    for (const n of a.readings[0]!) {
      if ('ListenStmt' in n) listen.push(n.ListenStmt.conditionname ?? '');
      else if ('UnlistenStmt' in n) unlisten.push(n.UnlistenStmt.conditionname ?? '*');
    }
    return listen.length + unlisten.length > 0 ? { listen, unlisten } : null;
  }
}

/**
 * COPY FROM STDIN inside a multi-statement Query or in a Parse would put PGlite into COPY mode,
 * where client data kills it: it is refused.
 */
export function copyInNotAlone(): PgError {
  return new PgError(SqlState.FeatureNotSupported,
    'the embedded database supports COPY FROM STDIN only as a simple query on its own', 'ERROR',
    { hint: 'Send the COPY … FROM STDIN statement alone, with the simple query protocol.' });
}

function isCopyFromStdin(n: Node): boolean {
  return 'CopyStmt' in n && n.CopyStmt.is_from === true && n.CopyStmt.is_program !== true && n.CopyStmt.filename === undefined;
}

/** The one statement of each reading of a text, or null when some reading holds more or none. */
function lone(a: SqlAnalysis & { ok: true }): Node[] | null {
  const out: Node[] = [];
  for (const r of a.readings) {
    if (r.length !== 1) return null;
    out.push(r[0]!);
  }
  return out;
}

/** Whether a tree calls a function named set_config, in any schema. Iterative: trees may be deep. */
function callsSetConfig(tree: unknown): boolean {
  const stack: unknown[] = [tree];
  while (stack.length > 0) {
    const value = stack.pop();
    if (Array.isArray(value)) {
      stack.push(...value);
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    for (const [key, field] of Object.entries(value as Record<string, unknown>)) {
      if (key === 'FuncCall') {
        const name = (field as { funcname?: Node[] }).funcname?.at(-1);
        if (name !== undefined && 'String' in name && name.String.sval === 'set_config') return true;
      }
      stack.push(field);
    }
  }
  return false;
}

function lower(s: string): string {
  return s.toLowerCase();
}
