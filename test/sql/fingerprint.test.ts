/** Statement fingerprints and normalised texts from PostgreSQL's parser. */
import { beforeAll, describe, expect, it } from 'vitest';
import { SqlAnalyser } from '../../plugins/sql/analyser.js';

let analyser: SqlAnalyser;
beforeAll(async () => {
  analyser = await SqlAnalyser.load();
});

describe('fingerprint', () => {
  it('is the same for texts that differ in constants, parameters, spacing, case, comments and IN-list lengths', () => {
    const fp = analyser.fingerprint('select 1 from t where a = 2');
    expect(fp).toMatch(/^[0-9a-f]{16}$/);
    for (const same of [
      'SELECT 3 FROM t WHERE a = $1',
      'select  1\nfrom t -- why\nwhere a = /* c */ 99',
    ]) expect(analyser.fingerprint(same)).toBe(fp);
    expect(analyser.fingerprint('select a from t where b in (1, 2, 3)')).toBe(analyser.fingerprint('select a from t where b in (4)'));
    expect(analyser.fingerprint('select a as x from t')).toBe(analyser.fingerprint('select a as y from t'));
    expect(analyser.fingerprint('SAVEPOINT a')).toBe(analyser.fingerprint('savepoint b'));
  });

  it('differs for other tables, columns and operators', () => {
    const fp = analyser.fingerprint('select a from t where b = 1');
    for (const other of ['select a from u where b = 1', 'select c from t where b = 1', 'select a from t where b < 1', 'select a from t where d = 1']) {
      expect(analyser.fingerprint(other), other).not.toBe(fp);
    }
  });

  it('reads PostgreSQL 15 syntax, and gives null for a text that does not parse', () => {
    for (const sql of [
      'merge into t using s on t.a = s.a when matched then update set b = s.b when not matched then insert values (s.a, s.b)',
      'create table u (a int unique nulls not distinct)',
      'select a from t group by distinct rollup (a, b)',
      'with recursive r as (select 1 as n union all select n + 1 from r) search depth first by n set ord select * from r',
      'select a from t order by a fetch first 3 rows with ties',
    ]) {
      expect(analyser.fingerprint(sql), sql).toMatch(/^[0-9a-f]{16}$/);
      expect(analyser.normalize(sql), sql).toEqual(expect.any(String));
    }
    for (const bad of ['select from where', 'select a from t fetch first 3 rows with ties']) {
      expect(analyser.fingerprint(bad), bad).toBeNull();
      expect(analyser.normalize(bad), bad).toBeNull();
    }
  });
});

describe('normalize', () => {
  it('replaces constants with parameters and keeps the rest of the text', () => {
    expect(analyser.normalize("select * from t where a = 'secret' and b = 42")).toBe('select * from t where a = $1 and b = $2');
    expect(analyser.normalize('SELECT $1, 7')).toBe('SELECT $1, $2');
    expect(analyser.normalize('select x from t limit 10')).toBe('select x from t limit $1');
  });

  it('answers the same text from its cache', () => {
    const text = "select * from cached where a = 'x'";
    const first = analyser.normalize(text);
    expect(analyser.normalize(text)).toBe(first);
    expect(analyser.fingerprint(text)).toBe(analyser.fingerprint(text));
  });
});
