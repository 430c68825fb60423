/**
 * The shape cache gives every text exactly the shape statement-shape.ts computes for it, and a
 * text that differs from a seen one only in its constants costs no call into the parser.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { ShapeCache } from '../../plugins/provenance/shape-cache.js';
import { maskConstants } from '../../plugins/provenance/constant-mask.js';
import { shapeOf } from '../../plugins/provenance/statement-shape.js';
import { SqlAnalyser } from '../../plugins/sql/analyser.js';

let sql: SqlAnalyser;
beforeAll(async () => {
  sql = await SqlAnalyser.load();
});

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

/** Texts in groups that differ only in their constants (or in a comment): each is shaped after the others. */
const GROUPS: readonly (readonly string[])[] = [
  ['SELECT abalance FROM pgbench_accounts WHERE aid = 1;', 'SELECT abalance FROM pgbench_accounts WHERE aid = 99999;', 'SELECT abalance FROM pgbench_accounts WHERE aid = 2147483648;'],
  ['SELECT email FROM people WHERE id = 5', 'SELECT email FROM people WHERE id = 6', 'SELECT email FROM people WHERE id = -6', 'SELECT email FROM people WHERE id = 6.5', 'SELECT email FROM people WHERE id = 1e5'],
  ["SELECT * FROM t WHERE name = 'a' AND x = $1", "SELECT * FROM t WHERE name = 'it''s' AND x = $1", "SELECT * FROM t WHERE name = '' AND x = $1", "SELECT * FROM t WHERE name = 'ü -- /* $$' AND x = $1"],
  ["SELECT \"it's\", \"a--b\" FROM \"My /*T*/\" WHERE k = 'v'", "SELECT \"it's\", \"a--b\" FROM \"My /*T*/\" WHERE k = 'w'"],
  ["SELECT 'a'::varchar(10) FROM t", "SELECT 'a'::varchar(11) FROM t", "SELECT 'b'::varchar(10) FROM t"],
  ['SELECT 1::float(10)', 'SELECT 1::float(30)', 'SELECT 2::float(10)'],
  ["CREATE ROLE r PASSWORD 'one'", "CREATE ROLE r PASSWORD 'two'"],
  ["SET search_path = 'a'", "SET search_path = 'b'"],
  ['SELECT 1; SELECT 2 FROM t', 'SELECT 3; SELECT 4 FROM t'],
  ['BEGIN; SELECT a FROM t WHERE b = 1; COMMIT', 'BEGIN; SELECT a FROM t WHERE b = 2; COMMIT'],
  ["SELEC password FROM users WHERE token = 'secret'", "SELEC password FROM users WHERE token = 'other'"],
  ["SELECT 'a' 'b' FROM t", "SELECT 'c' 'd' FROM t", "SELECT 'a'\n'b' FROM t", "SELECT 'c'\n'd' FROM t"],
  ["'a'", "'b'", '1', '2'],
  ["SELECT 'open secret", "SELECT 'open other", "SELECT 1 /* open", 'SELECT $$open'],
  [`SELECT a FROM t WHERE b = 1 /*traceparent='${TRACEPARENT}'*/`, `SELECT a FROM t WHERE b = 2 /*traceparent='${TRACEPARENT.replace('01', '00')}'*/`, 'SELECT a FROM t WHERE b = 3 -- x'],
  ["SELECT E'a', B'1', X'1F', N'n', U&'d' FROM t", "SELECT E'b', B'0', X'2F', N'm', U&'e' FROM t", "SELECT 'C:\\', 'x'", "SELECT 'D:\\', 'y'"],
  ['SELECT 0x1F, 1abc, 1.e5, 1..2, .5 FROM t', 'SELECT 0x2F, 2abc, 2.e5, 2..3, .6 FROM t'],
  ['SELECT a FROM t WHERE b IN (1, 2, 3)', 'SELECT a FROM t WHERE b IN (4, 5, 6)', 'SELECT a FROM t WHERE b IN (4, 5)'],
  ['WITH x AS (SELECT 1 AS a) SELECT a FROM x, t WHERE t.b = 2', 'WITH x AS (SELECT 3 AS a) SELECT a FROM x, t WHERE t.b = 4'],
  ['INSERT INTO t VALUES (1, \'a\') RETURNING id', 'INSERT INTO t VALUES (2, \'b\') RETURNING id', "UPDATE t SET a = 'x' WHERE id = 1", "UPDATE t SET a = 'y' WHERE id = 2"],
  ['SELECT a FROM t LIMIT 10 OFFSET 5', 'SELECT a FROM t LIMIT 20 OFFSET 0', 'SELECT a FROM t FETCH FIRST 3 ROWS ONLY', 'SELECT a FROM t FETCH FIRST 4 ROWS ONLY'],
  ["SELECT INTERVAL '1' DAY, interval(3) '1', '\uFFFD'", "SELECT INTERVAL '2' DAY, interval(4) '1', 'x'"],
  ['SELECT a$1 FROM t WHERE b = 1', 'SELECT a$1 FROM t WHERE b = 2', 'SELECT $1x', 'SELECT $$1$$'],
  ['SELECT 1 FROM t WHERE a = \'\u0000\'', 'SELECT 1 FROM t WHERE a = \'b\''],
];

describe('shape cache', () => {
  it('gives every text of the corpus exactly its own shape, whatever was shaped before', () => {
    for (const group of GROUPS) {
      for (const order of [group, [...group].reverse()]) {
        const cache = new ShapeCache(sql);
        for (const text of order) expect(cache.get(text), text).toStrictEqual(shapeOf(sql, text));
        for (const text of order) expect(cache.get(text), text).toStrictEqual(shapeOf(sql, text));
      }
    }
  });

  it('gives templates with random constants their own shapes', () => {
    const cache = new ShapeCache(sql);
    const str = fc.string({ maxLength: 8 }).map((s) => `'${s.replace(/'/g, "''")}'`);
    const num = fc.oneof(fc.integer().map(String), fc.double({ noNaN: true, noDefaultInfinity: true }).map(String), fc.bigInt().map(String));
    const literal = fc.oneof(str, num);
    const templates = [
      (a: string, b: string) => `SELECT email FROM people WHERE id = ${a} AND name = ${b}`,
      (a: string, b: string) => `SELECT ${a}::varchar(${b.replace(/\D/g, '') || '1'}) FROM t`,
      (a: string, b: string) => `SELECT a FROM t WHERE b IN (${a}, ${b}) LIMIT ${a}`,
      (a: string, b: string) => `INSERT INTO t VALUES (${a}, ${b})`,
      (a: string, b: string) => `SELECT ${a} ${b}`,
    ];
    fc.assert(fc.property(fc.nat(templates.length - 1), literal, literal, (i, a, b) => {
      const text = templates[i]!(a, b);
      expect(cache.get(text), text).toStrictEqual(shapeOf(sql, text));
    }), { numRuns: 400 });
  });

  it('costs no parse for a text that differs from a seen one only in its constants', () => {
    const cache = new ShapeCache(sql);
    cache.get('SELECT email FROM people WHERE id = 1');
    const before = sql.parses;
    for (let k = 2; k < 50; k++) cache.get(`SELECT email FROM people WHERE id = ${k}`);
    cache.get("SELECT email FROM people WHERE id = 123456");
    expect(sql.parses - before).toBe(0);
  });

  it('still parses texts whose constants shape them: a type modifier, a password', () => {
    const cache = new ShapeCache(sql);
    // Texts no other test shapes, so the analyser's own cache has none of them.
    cache.get("SELECT 'a'::varchar(40) FROM t2");
    cache.get("CREATE ROLE r2 PASSWORD 'first'");
    const before = sql.parses;
    expect(cache.get("SELECT 'a'::varchar(41) FROM t2").normalized).toBe('SELECT $1::varchar(41) FROM t2');
    cache.get("CREATE ROLE r2 PASSWORD 'second'");
    expect(sql.parses - before).toBe(2);
  });
});

describe('constant mask', () => {
  it('masks strings and numbers by the class the server scans them as', () => {
    expect(maskConstants("SELECT a FROM t WHERE b = 'x''y' AND c = 5 AND d = 2147483648 AND e = 1.5 AND f = $2")?.key)
      .toBe('SELECT a FROM t WHERE b = \u0000s AND c = \u0000i AND d = \u0000f AND e = \u0000f AND f = $2');
  });

  it('masks nothing in a text whose lexical structure is not plain', () => {
    for (const text of ['SELECT 1 -- c', 'SELECT 1 /* c */', "SELECT E'a'", 'SELECT $$a$$', "SELECT 'a\\'", "SELECT U&'a'", 'SELECT 1a', "SELECT 'open", 'SELECT "open']) {
      expect(maskConstants(text), text).toBeNull();
    }
  });
});
