import { beforeAll, describe, expect, it } from 'vitest';
import { SqlAnalyser } from '../../plugins/sql/analyser.js';
import { endsTransaction, roleEffect } from '../../plugins/provenance/role-statements.js';

let sql: SqlAnalyser;
beforeAll(async () => {
  sql = await SqlAnalyser.load();
});

describe('what a statement does to the role, as the server reads it', () => {
  it('reads SET ROLE and RESET ROLE in every spelling', () => {
    expect(roleEffect(sql, 'SET ROLE team')).toEqual({ kind: 'set', role: 'team', local: false });
    expect(roleEffect(sql, 'set/**/session/* x */role\n--c\n"Team";')).toEqual({ kind: 'set', role: 'Team', local: false });
    expect(roleEffect(sql, "SET LOCAL ROLE 'a b'")).toEqual({ kind: 'set', role: 'a b', local: true });
    expect(roleEffect(sql, 'SET ROLE U&"t\\0065am"')).toEqual({ kind: 'set', role: 'team', local: false });
    expect(roleEffect(sql, 'set role none')).toEqual({ kind: 'set', role: null, local: false });
    expect(roleEffect(sql, 'RESET ROLE')).toEqual({ kind: 'reset' });
    expect(roleEffect(sql, 'SET ROLE TO DEFAULT')).toEqual({ kind: 'reset' });
    expect(roleEffect(sql, 'ROLLBACK TO SAVEPOINT s')).toEqual({ kind: 'rollback-to' });
  });

  it('says unknown for anything else that may change the role, or that it cannot read', () => {
    for (const text of [
      'SELECT 1; SET ROLE team',
      "SELECT set_config('role', 'team', false)",
      'SELECT pg_catalog.set_config($1, $2, false)',
      'SET SESSION AUTHORIZATION bob',
      'RESET ALL',
      'DISCARD ALL',
      'SET ROLE', // not SQL: the server refuses it too, the proxy cannot tell
      // With standard_conforming_strings off the string ends early and a SET ROLE follows.
      "SELECT 'x\\'; SET ROLE team; --'",
    ]) expect(roleEffect(sql, text), text).toEqual({ kind: 'unknown' });
  });

  it('leaves statements that cannot change the role alone, without parsing most of them', () => {
    const before = sql.parses;
    expect(roleEffect(sql, 'SELECT email FROM customers WHERE id = 1')).toEqual({ kind: 'none' });
    expect(sql.parses).toBe(before);
    expect(roleEffect(sql, "SELECT 'role' AS r")).toEqual({ kind: 'none' });
    expect(roleEffect(sql, 'SET search_path = app')).toEqual({ kind: 'none' });
  });

  it('tells COMMIT from ROLLBACK', () => {
    expect(endsTransaction(sql, 'COMMIT')).toBe(true);
    expect(endsTransaction(sql, 'end work;')).toBe(true);
    expect(endsTransaction(sql, 'ROLLBACK')).toBe(false);
    expect(endsTransaction(sql, 'abort')).toBe(false);
    expect(endsTransaction(sql, 'ROLLBACK TO s')).toBe(null);
    expect(endsTransaction(sql, 'SELECT 1')).toBe(null);
  });
});
