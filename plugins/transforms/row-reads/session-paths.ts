/**
 * How each session resolves bare names, for the row transforms' rewrite: its search_path as the
 * server reports it (PostgreSQL 18), else as given at startup and changed by the statements the
 * session sends (the guards' SessionNames follows SET, RESET, SET ROLE, DISCARD ALL and
 * transaction blocks), starting from the role's, database's or server's setting where the startup
 * parameters give none (read as the guards read it). Unknown (null) where that cannot be read, or
 * after a change the proxy cannot follow, until the session sets it; bare names shared by several
 * schemas are then not resolved.
 */
import type { SessionInfo } from '../../hooks.js';
import type { SqlAnalyser } from '../../sql/analyser.js';
import { parseSearchPath } from '../../sql/column-sources.js';
import { startupPath } from '../guards/initial-path.js';
import { SessionNames } from '../guards/session-names.js';
import type { NamePath } from './relation-names.js';

/** Words without which a text cannot change the search_path or the current user. */
const PATH_WORDS = ['search_path', 'role', 'session_authorization', 'discard', 'reset', 'set_config'];

interface Entry {
  /** Null while the path the session started with is being read. */
  names: SessionNames | null;
  readonly ready: Promise<unknown>;
}

export class SessionPaths {
  private readonly sessions = new WeakMap<SessionInfo, Entry>();

  /** `initialPath`: the path a session starts with when its startup parameters do not say (role, database and server settings). */
  constructor(private readonly initialPath?: (s: SessionInfo) => Promise<readonly string[] | null>) {}

  /** `fromStart`: the session is followed from its first statement (else it may have set its path unseen). */
  start(s: SessionInfo, fromStart: boolean): void {
    const given = startupPath(s.startupParams);
    if (given !== undefined || s.serverParams.has('search_path') || this.initialPath === undefined) {
      const initial = given ?? null;
      this.sessions.set(s, { names: new SessionNames(initial, fromStart ? initial : null, s.user), ready: Promise.resolve() });
      return;
    }
    const entry: Entry = {
      names: null,
      ready: this.initialPath(s).catch(() => null).then((p) => {
        entry.names = new SessionNames(p, fromStart ? p : null, s.user);
      }),
    };
    this.sessions.set(s, entry);
  }

  /** Whether a session's path is known or unknown for sure (not being read), or a text cannot change it: no need to wait. */
  settled(s: SessionInfo, text: string): boolean {
    if (this.sessions.get(s)?.names !== null) return true;
    const lower = text.toLowerCase();
    return !PATH_WORDS.some((w) => lower.includes(w));
  }

  end(s: SessionInfo): void {
    this.sessions.delete(s);
  }

  readyForQuery(s: SessionInfo, status: 'I' | 'T' | 'E'): void {
    const entry = this.sessions.get(s);
    if (entry?.names) entry.names.readyForQuery(status);
    else void entry?.ready.then(() => entry.names?.readyForQuery(status));
  }

  /**
   * The path a text's names resolve through, before it runs; follows what the text changes. A
   * text that changes it resolves through an unknown path (its later statements see the change).
   * Waits while the session's starting path is being read.
   */
  statement(s: SessionInfo, text: string, sql: SqlAnalyser): NamePath | Promise<NamePath> {
    const entry = this.sessions.get(s);
    if (entry !== undefined && entry.names === null) return entry.ready.then(() => this.statement(s, text, sql));
    const names = entry?.names ?? undefined;
    const reported = s.serverParams.get('search_path');
    const before: NamePath = {
      searchPath: reported !== undefined ? parseSearchPath(reported) : names?.searchPath ?? null,
      user: names?.currentUser ?? s.user,
    };
    if (names === undefined) return before;
    const lower = text.toLowerCase();
    if (!PATH_WORDS.some((w) => lower.includes(w))) return before;
    const parsed = sql.analyse(text);
    if (!parsed.ok) return before;
    const was = JSON.stringify([names.searchPath, names.currentUser]);
    names.statements(parsed.readings[0] ?? []);
    return JSON.stringify([names.searchPath, names.currentUser]) === was ? before : { searchPath: null, user: before.user };
  }
}
