/**
 * How each session resolves bare names, for the row transforms' rewrite: its search_path as the
 * server reports it (PostgreSQL 18), else as given at startup and changed by the statements the
 * session sends (the guards' SessionNames follows SET, RESET, SET ROLE, DISCARD ALL and
 * transaction blocks). Unknown (null) when the session started without one (the server's default
 * then comes from its configuration or the role's settings), until it sets it; bare names shared
 * by several schemas are then not resolved.
 */
import type { SessionInfo } from '../../hooks.js';
import type { SqlAnalyser } from '../../sql/analyser.js';
import { parseSearchPath } from '../../sql/column-sources.js';
import { startupPath } from '../guards/initial-path.js';
import { SessionNames } from '../guards/session-names.js';
import type { NamePath } from './relation-names.js';

/** Words without which a text cannot change the search_path or the current user. */
const PATH_WORDS = ['search_path', 'role', 'session_authorization', 'discard', 'reset', 'set_config'];

export class SessionPaths {
  private readonly sessions = new WeakMap<SessionInfo, SessionNames>();

  /** `fromStart`: the session is followed from its first statement (else it may have set its path unseen). */
  start(s: SessionInfo, fromStart: boolean): void {
    const initial = startupPath(s.startupParams) ?? null;
    this.sessions.set(s, new SessionNames(initial, fromStart ? initial : null, s.user));
  }

  end(s: SessionInfo): void {
    this.sessions.delete(s);
  }

  readyForQuery(s: SessionInfo, status: 'I' | 'T' | 'E'): void {
    this.sessions.get(s)?.readyForQuery(status);
  }

  /**
   * The path a text's names resolve through, before it runs; follows what the text changes. A
   * text that changes it resolves through an unknown path (its later statements see the change).
   */
  statement(s: SessionInfo, text: string, sql: SqlAnalyser): NamePath {
    const names = this.sessions.get(s);
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
