/**
 * What a session prepared, so that running it later meets the guards in force then: a statement
 * prepared while other guards held (or none, or before the session was watched) must not run
 * unchecked. Kept per session: protocol-level prepared statements (their text and the naming the
 * server resolved them with, at Parse), SQL-level PREPAREd statements (their sources, and the
 * text and naming of the PREPARE: which relations it names may be partitions, children or parents
 * of guarded tables by the time it runs) and DECLAREd cursors (their sources). A name the session
 * prepared unseen is unknown: running it is refused.
 */
import type { StatementSources } from '../../sql/column-sources.js';
import type { SessionNames } from '../../sql/source-model.js';

export interface Prepared {
  readonly text: string;
  readonly naming: SessionNames;
  /** The text that runs is not the one checked at Parse: a later plugin rewrote it. */
  readonly rewritten?: true;
}

/** A SQL-level PREPARE: what it runs, and the text (of every statement sent with it) and naming it was checked with. */
export interface SqlPrepared {
  readonly statement: StatementSources;
  readonly text: string;
  readonly naming: SessionNames;
}

export class PreparedStatements {
  private readonly parsed = new Map<string, Prepared>();
  private readonly sqlPrepared = new Map<string, SqlPrepared>();
  private readonly cursors = new Map<string, StatementSources>();

  /** A Parse that was checked and goes upstream. */
  parse(name: string, text: string, naming: SessionNames): void {
    this.parsed.set(name, { text, naming });
  }

  /**
   * The statement a Bind names, with the naming it was checked with at its Parse; null when that
   * Parse was not seen. A later plugin may have rewritten the text that went upstream (an as-of
   * read's, over the history): then that text is what runs, and what is checked.
   */
  bound(name: string, text: string | undefined): Prepared | null {
    const p = this.parsed.get(name);
    if (p === undefined || text === undefined) return null;
    return p.text === text ? p : { text, naming: p.naming, rewritten: true };
  }

  /** The PREPAREs and DECLAREs of a text that was checked and goes upstream. */
  remember(statements: readonly StatementSources[], text: string, naming: SessionNames): void {
    for (const s of statements) {
      if (s.prepare !== undefined) this.sqlPrepared.set(s.prepare.name, { statement: s.prepare.statement, text, naming });
      if (s.cursor !== undefined) this.cursors.set(s.cursor.name, s);
    }
  }

  /**
   * What an EXECUTE or FETCH runs (undefined for other statements): the sources of the prepared
   * statement or the cursor's declaration, or the name when it was prepared unseen.
   */
  deferred(s: StatementSources): StatementSources | string | undefined {
    if (s.execute !== undefined) return this.sqlPrepared.get(s.execute)?.statement ?? `prepared statement "${s.execute}"`;
    if (s.fetch !== undefined) return this.cursors.get(s.fetch) ?? `cursor "${s.fetch}"`;
    return undefined;
  }

  /** The SQL-level PREPARE of this name, if it was seen. */
  sqlPrepare(name: string): SqlPrepared | undefined {
    return this.sqlPrepared.get(name);
  }
}
