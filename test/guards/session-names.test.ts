/**
 * How the guards follow a session's search_path and role from its statements (PostgreSQL 15 does
 * not report search_path), and read it from the startup parameters.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { SqlAnalyser } from '../../plugins/sql/analyser.js';
import { SessionNames } from '../../plugins/transforms/guards/session-names.js';
import { startupPath } from '../../plugins/transforms/guards/initial-path.js';

let sql: SqlAnalyser;
beforeAll(async () => {
  sql = await SqlAnalyser.load();
});

function run(n: SessionNames, text: string, status: 'I' | 'T' | 'E' = 'I'): void {
  const a = sql.analyse(text);
  if (!a.ok) throw new Error(a.message);
  n.statements(a.readings[0]!);
  n.readyForQuery(status);
}

describe('session names', () => {
  const initial = ['$user', 'public'];

  it('follows SET, RESET and DISCARD ALL, quoting as the parser reads it', () => {
    const n = new SessionNames(initial, initial, 'alice');
    run(n, 'SET search_path TO app, "Mixed Case", public');
    expect(n.searchPath).toEqual(['app', 'Mixed Case', 'public']);
    run(n, '/* a comment */ set\nsearch_path = U&"\\0061pp"');
    expect(n.searchPath).toEqual(['app']);
    run(n, 'RESET search_path');
    expect(n.searchPath).toEqual(initial);
    run(n, 'SET search_path = other; SET ROLE bob');
    expect([n.searchPath, n.currentUser]).toEqual([['other'], 'bob']);
    run(n, 'DISCARD ALL');
    expect([n.searchPath, n.currentUser]).toEqual([initial, 'alice']);
  });

  it('knows SET LOCAL ends with its transaction, and not whether a session-level SET in one stayed', () => {
    const n = new SessionNames(initial, initial, 'alice');
    run(n, 'SET LOCAL search_path = ignored');
    expect(n.searchPath).toEqual(initial);
    run(n, 'BEGIN', 'T');
    run(n, 'SET LOCAL search_path = app', 'T');
    expect(n.searchPath).toEqual(['app']);
    run(n, 'COMMIT', 'I');
    expect(n.searchPath).toEqual(initial);
    run(n, 'BEGIN; SET search_path = app', 'T');
    expect(n.searchPath).toEqual(['app']);
    run(n, 'ROLLBACK', 'I');
    expect(n.searchPath).toBeNull();
    run(n, 'SET search_path = public');
    expect(n.searchPath).toEqual(['public']);
  });

  it('does not know the path after set_config, nor a session it did not see from the start', () => {
    const n = new SessionNames(initial, initial, 'alice');
    run(n, "SELECT set_config('search_path', 'app', false)");
    expect(n.searchPath).toBeNull();
    const late = new SessionNames(initial, null, 'alice');
    expect(late.searchPath).toBeNull();
    run(late, 'RESET search_path');
    expect(late.searchPath).toEqual(initial);
  });

  it('reads search_path from the startup parameters', () => {
    expect(startupPath(new Map())).toBeUndefined();
    expect(startupPath(new Map([['search_path', 'app, "X y"']]))).toEqual(['app', 'X y']);
    expect(startupPath(new Map([['options', '-c search_path=app,public -c statement_timeout=5']]))).toEqual(['app', 'public']);
    expect(startupPath(new Map([['options', '--search-path=app\\,\\ public']]))).toEqual(['app', 'public']);
    expect(startupPath(new Map([['options', '-csearch_path="unterminated']]))).toBeNull();
  });
});
