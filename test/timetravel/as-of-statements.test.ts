/**
 * The pieces an as-of session is read with, on their own: which statements write, which
 * relations a statement names (CTEs left out where the server sees them), the settings in a
 * startup packet's options, and the GUC semantics of one setting.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { SqlAnalyser, type Node } from '../../plugins/sql/analyser.js';
import { writeOf } from '../../plugins/sql/read-only.js';
import { statementRefs } from '../../plugins/sql/relation-refs.js';
import { startupSettings } from '../../plugins/timetravel/commands.js';
import { TxSetting } from '../../plugins/timetravel/setting.js';
import { fromMicros, iso8601, momentWithOffset } from '../../plugins/timetravel/moment.js';

let sql: SqlAnalyser;
beforeAll(async () => {
  sql = await SqlAnalyser.load();
});

function stmt(text: string): Node {
  const a = sql.analyse(text);
  if (!a.ok) throw new Error(a.message);
  return a.readings[0]![0]!;
}

describe('writeOf', () => {
  it('lets reads, settings and transaction control through and names every kind of write', () => {
    for (const read of ['SELECT 1', 'BEGIN', 'COMMIT', 'SAVEPOINT a', "SET x.y = '1'", 'SHOW work_mem', 'EXPLAIN SELECT 1',
      'DECLARE c CURSOR FOR SELECT 1', 'FETCH ALL c', 'CLOSE c', 'COPY (SELECT 1) TO STDOUT', 'DISCARD ALL', 'LISTEN x']) {
      expect(writeOf(stmt(read)), read).toBeNull();
    }
    const writes: [string, string][] = [
      ['INSERT INTO t VALUES (1)', 'INSERT'], ['UPDATE t SET a = 1', 'UPDATE'], ['DELETE FROM t', 'DELETE'],
      ['MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE', 'MERGE'], ['COPY t FROM STDIN', 'COPY FROM'],
      ['CREATE TABLE x (a int)', 'CREATE'], ['DROP TABLE t', 'DROP'], ['TRUNCATE t', 'TRUNCATE'], ['CALL p()', 'CALL'],
      ['SELECT * FROM t FOR UPDATE', 'SELECT FOR UPDATE/SHARE'], ['SELECT * FROM t FOR KEY SHARE', 'SELECT FOR UPDATE/SHARE'],
      ['SELECT nextval(\'s\')', 'nextval()'], ['SELECT pg_catalog.setval(\'s\', 1)', 'setval()'], ['SELECT 1 INTO x', 'SELECT INTO'],
      ['WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', 'DELETE'], ['EXPLAIN ANALYZE INSERT INTO t VALUES (1)', 'INSERT'],
      ['DO $$ BEGIN END $$', 'DO'], ['VACUUM t', 'VACUUM'], ['LOCK t', 'LOCK'], ['PREPARE p AS SELECT 1', 'PREPARE'], ['EXECUTE p', 'EXECUTE'],
      ['COPY (DELETE FROM t RETURNING *) TO STDOUT', 'DELETE'],
    ];
    for (const [w, words] of writes) expect(writeOf(stmt(w)), w).toContain(words);
  });
});

describe('statementRefs', () => {
  it('names tables, with their place and alias, and leaves out CTEs where they are visible', () => {
    const text = 'WITH t AS (SELECT * FROM t), u AS (SELECT * FROM t) SELECT * FROM u, s.t AS x JOIN ONLY v ON true WHERE EXISTS (SELECT 1 FROM t)';
    const refs = statementRefs(stmt(text)).relations;
    expect(refs.map((r) => [r.schema, r.name, text.slice(r.location, r.location + r.name.length + (r.schema ? r.schema.length + 1 : 0)), r.aliased, r.inherited]))
      .toEqual([[null, 't', 't', false, true], ['s', 't', 's.t', true, true], [null, 'v', 'v', false, false]]);
    const recursive = statementRefs(stmt('WITH RECURSIVE t AS (SELECT 1 UNION ALL SELECT * FROM t) SELECT * FROM t')).relations;
    expect(recursive).toEqual([]);
    expect(statementRefs(stmt('SELECT f(1), s.g() FROM h()')).functions).toEqual([{ schema: null, name: 'f' }, { schema: 's', name: 'g' }, { schema: null, name: 'h' }]);
    expect(statementRefs(stmt('SELECT * FROM t TABLESAMPLE system (10)')).relations[0]!.sampled).toBe(true);
  });
});

describe('startupSettings', () => {
  it('reads -c and -- settings, with backslash-escaped spaces, and nothing else', () => {
    expect([...startupSettings('-c provenance.as_of=2026-10-27\\ 10:00+00 -c work_mem=4MB --provenance.as_user=alice')])
      .toEqual([['provenance.as_of', '2026-10-27 10:00+00'], ['provenance.as_user', 'alice']]);
    expect([...startupSettings('-cprovenance.AS_OF=x')]).toEqual([['provenance.as_of', 'x']]);
    expect(startupSettings(undefined).size).toBe(0);
  });
});

describe('TxSetting', () => {
  it('follows the server: SET lasts if committed, SET LOCAL ends with the transaction, savepoints roll back', () => {
    const s = new TxSetting<string>('start');
    s.set('local outside', true);
    expect(s.value).toBe('start');
    s.begin();
    s.set('a', false);
    s.set('b', true);
    expect(s.value).toBe('b');
    s.end(true);
    expect(s.value).toBe('a');
    s.begin();
    s.set('c', false);
    s.end(false);
    expect(s.value).toBe('a');
    s.begin();
    s.savepoint('p');
    s.set('d', false);
    s.rollbackTo('p');
    expect(s.value).toBe('a');
    s.set('default', false);
    s.release('p');
    s.end(true);
    expect(s.value).toBe('start');
  });
});

describe('moments', () => {
  it('reads moments with a UTC offset alone, and prints them as PostgreSQL and ISO 8601 do', () => {
    expect(momentWithOffset('2026-10-27 12:00:00.25+02')?.at).toBe('2026-10-27 10:00:00.25+00');
    expect(momentWithOffset('2026-10-27T10:00Z')?.at).toBe('2026-10-27 10:00:00+00');
    expect(momentWithOffset('2026-02-30 10:00+00')).toBeNull();
    expect(momentWithOffset('yesterday')).toBeNull();
    expect(iso8601(fromMicros(1_800_000_000_000_001n))).toBe('2027-01-15T08:00:00.000001Z');
  });
});
