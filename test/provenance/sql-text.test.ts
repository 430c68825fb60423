import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { shapeOf } from '../../plugins/provenance/sql-text.js';

const norm = (text: string): string => shapeOf(text).normalized;
const summary = (text: string): string => shapeOf(text).summary;

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${SPAN_ID}-01`;

describe('normalized text', () => {
  it('replaces string literals of every kind', () => {
    expect(norm("SELECT 'a', E'b\\n', U&'d\\0061t', B'1010', X'1F', N'n', $$dollar$$, $fn$tagged$fn$")).toBe(
      'SELECT ?, ?, ?, ?, ?, ?, ?, ?',
    );
    expect(norm("select e'x', b'0', x'ff', u&'y'")).toBe('select ?, ?, ?, ?');
  });

  it('reads escaped quotes inside strings', () => {
    expect(norm("SELECT 'it''s', 'x' FROM t")).toBe('SELECT ?, ? FROM t');
    expect(norm("SELECT E'\\'', E'it\\'s', E'a''b', 1")).toBe('SELECT ?, ?, ?, ?');
    // A backslash is an ordinary character in a standard string: the string ends at the quote after it.
    expect(norm("SELECT 'C:\\', 2")).toBe('SELECT ?, ?');
  });

  it('treats dollar quotes by their own tag, so other dollar quotes inside are plain text', () => {
    const text = 'DO $outer$ BEGIN EXECUTE $inner$ SELECT 1 $inner$; END $outer$; SELECT $$ $x$ $$, 2';
    expect(norm(text)).toBe('DO ?; SELECT ?, ?');
  });

  it('keeps parameters and does not take $ inside identifiers for quotes', () => {
    expect(norm('SELECT * FROM t WHERE a = $1 AND b = $12')).toBe('SELECT * FROM t WHERE a = $1 AND b = $12');
    expect(norm('SELECT a$b$c, 1 FROM t')).toBe('SELECT a$b$c, ? FROM t');
  });

  it('replaces numbers, negative numbers and numbers of every form', () => {
    expect(norm('SELECT 1, 1.5, .5, 5., 1e10, 1.5E-3, 0x1F, 0o17, 0b101, 1_000_000')).toBe(
      'SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?',
    );
    expect(norm('SELECT -1, x - 1, x -1, x=-2, (-3), y * -4 FROM t WHERE a = -5 AND b > +6')).toBe(
      'SELECT ?, x - ?, x -?, x=?, (?), y * ? FROM t WHERE a = ? AND b > ?',
    );
  });

  it('leaves digits inside identifiers alone', () => {
    expect(norm('SELECT t1.c2, "3col" FROM t1 JOIN s2.t3 ON t1.id = t3.id')).toBe(
      'SELECT t1.c2, "3col" FROM t1 JOIN s2.t3 ON t1.id = t3.id',
    );
  });

  it('keeps quoted identifiers, including doubled quotes and U&"..."', () => {
    expect(norm('SELECT "it""s", U&"d\\0061t" FROM "My Table" WHERE "x" = \'x\'')).toBe(
      'SELECT "it""s", U&"d\\0061t" FROM "My Table" WHERE "x" = ?',
    );
  });

  it('removes comments, nested ones included, and collapses whitespace', () => {
    expect(norm('  SELECT /* a /* nested */ still comment */ 1 -- trailing\n\t FROM\r\n  t  ')).toBe('SELECT ? FROM t');
    expect(norm('SELECT a/**/FROM t')).toBe('SELECT a FROM t');
    expect(norm('SELECT 1 --')).toBe('SELECT ?');
    expect(norm('SELECT 1; -- only a comment')).toBe('SELECT ?;');
  });

  it('replaces every value of an IN list', () => {
    expect(norm("SELECT * FROM t WHERE id IN (1, 2, 3) AND s IN ('a','b') AND p IN ($1, $2)")).toBe(
      'SELECT * FROM t WHERE id IN (?, ?, ?) AND s IN (?,?) AND p IN ($1, $2)',
    );
  });

  it('replaces typed literals and keeps casts', () => {
    expect(norm("SELECT DATE '2020-01-01', interval '1 day', '5'::int, x::text FROM t")).toBe(
      'SELECT DATE ?, interval ?, ?::int, x::text FROM t',
    );
  });

  it('survives unterminated constructs', () => {
    expect(norm("SELECT 'open")).toBe('SELECT ?');
    expect(norm('SELECT $$open')).toBe('SELECT ?');
    expect(norm('SELECT "open')).toBe('SELECT "open');
    expect(norm('SELECT 1 /* open')).toBe('SELECT ?');
    expect(norm("SELECT E'\\")).toBe('SELECT ?');
    expect(norm('')).toBe('');
    expect(norm('  -- nothing\n /* at all */ ')).toBe('');
  });

  it('is linear on adversarial input', () => {
    const inputs = [
      "'".repeat(200_000),
      '$a'.repeat(100_000),
      '/*'.repeat(100_000),
      '-'.repeat(200_000),
      'x'.repeat(200_000),
      "E'\\".repeat(70_000),
      '('.repeat(100_000) + ')'.repeat(100_000),
      '/* traceparent='.repeat(20_000),
      "/*traceparent='x',".repeat(20_000),
    ];
    const started = performance.now();
    for (const text of inputs) shapeOf(text);
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

describe('fingerprint', () => {
  it('is the first 16 hex characters of the SHA-256 of the normalized text', () => {
    const s = shapeOf('SELECT 1');
    expect(s.fingerprint).toBe(createHash('sha256').update('SELECT ?').digest('hex').slice(0, 16));
    expect(s.fingerprint).toMatch(/^[0-9a-f]{16}$/);
  });

  it('is the same for texts that differ only in literal values, spacing and comments', () => {
    const a = shapeOf("SELECT * FROM orders WHERE id = 42 AND note = 'x' AND t > -1.5");
    const b = shapeOf("SELECT  *  FROM orders /* c */ WHERE id = 7 AND note = E'it\\'s' AND t > -3");
    expect(a.normalized).toBe(b.normalized);
    expect(a.fingerprint).toBe(b.fingerprint);
    expect(shapeOf("INSERT INTO t VALUES ($x$a$x$, 'b')").fingerprint).toBe(shapeOf("INSERT INTO t VALUES ('c', $$d$$)").fingerprint);
  });

  it('differs when the structure differs', () => {
    const base = shapeOf('SELECT * FROM orders WHERE id = 1').fingerprint;
    expect(shapeOf('SELECT * FROM orders WHERE id = $1').fingerprint).not.toBe(base);
    expect(shapeOf('SELECT * FROM customers WHERE id = 1').fingerprint).not.toBe(base);
    expect(shapeOf('SELECT id FROM orders WHERE id = 1').fingerprint).not.toBe(base);
    expect(shapeOf('SELECT * FROM "orders" WHERE id = 1').fingerprint).not.toBe(base);
    expect(shapeOf('SELECT * FROM orders WHERE id IN (1, 2)').fingerprint).not.toBe(base);
  });
});

describe('operation', () => {
  it('is the first keyword, upper-cased', () => {
    expect(shapeOf('select 1').operation).toBe('SELECT');
    expect(shapeOf('  /* c */ insert into t values (1)').operation).toBe('INSERT');
    expect(shapeOf('Update t set a = 1').operation).toBe('UPDATE');
    expect(shapeOf('delete from t').operation).toBe('DELETE');
    expect(shapeOf('show search_path').operation).toBe('SHOW');
    expect(shapeOf("set application_name = 'x'").operation).toBe('SET');
    expect(shapeOf('begin').operation).toBe('BEGIN');
    expect(shapeOf('COMMIT').operation).toBe('COMMIT');
    expect(shapeOf('copy t from stdin').operation).toBe('COPY');
    expect(shapeOf('(SELECT 1) UNION (SELECT 2)').operation).toBe('SELECT');
  });

  it('is the main verb after common table expressions', () => {
    expect(shapeOf('WITH x AS (SELECT 1) SELECT * FROM x').operation).toBe('SELECT');
    expect(shapeOf('WITH x AS (SELECT 1), y AS (SELECT 2) DELETE FROM t USING x').operation).toBe('DELETE');
    expect(shapeOf('WITH RECURSIVE r(n) AS (VALUES (1) UNION ALL SELECT n + 1 FROM r) INSERT INTO t SELECT n FROM r').operation).toBe(
      'INSERT',
    );
    expect(shapeOf('WITH x AS (SELECT 1)').operation).toBe('WITH');
  });

  it('is null for an empty statement and the first statement one otherwise', () => {
    expect(shapeOf('').operation).toBeNull();
    expect(shapeOf(' ; -- nothing').operation).toBeNull();
    expect(shapeOf('; BEGIN; SELECT 1; COMMIT').operation).toBe('BEGIN');
  });
});

describe('summary', () => {
  it('names the operation and its table', () => {
    expect(summary('SELECT * FROM wuser_table WHERE username = $1')).toBe('SELECT wuser_table');
    expect(summary('select * from Customers')).toBe('SELECT Customers');
    expect(summary('SeLeCt * FrOm Orders o JoIn items i On true')).toBe('SELECT Orders items');
    expect(summary('SELECT 1')).toBe('SELECT');
    expect(summary('SELECT now(), count(*) FROM generate_series(1, 10) g')).toBe('SELECT');
    expect(summary('SELECT * FROM pg_catalog.generate_series(1, 2), t')).toBe('SELECT t');
  });

  it('lists joined and comma-separated tables in order', () => {
    expect(summary('SELECT c.name, o.total FROM customers c JOIN orders o ON o.customer_id = c.id')).toBe(
      'SELECT customers orders',
    );
    expect(summary('SELECT * FROM songs, artists WHERE songs.artist_id = artists.id')).toBe('SELECT songs artists');
    expect(summary('SELECT * FROM a AS x LEFT OUTER JOIN b y USING (id) CROSS JOIN c, d NATURAL JOIN e')).toBe('SELECT a b c d e');
    expect(summary('SELECT * FROM a JOIN b ON a.id = b.id, c ORDER BY x, y')).toBe('SELECT a b c');
  });

  it('keeps schema-qualified and quoted names as written', () => {
    expect(summary('SELECT * FROM public.customers JOIN "Sales"."Order Items" ON true')).toBe(
      'SELECT public.customers "Sales"."Order Items"',
    );
    expect(summary('SELECT * FROM ONLY inventory.items')).toBe('SELECT inventory.items');
  });

  it('adds the operations of subqueries where they appear', () => {
    expect(
      summary('SELECT order_date FROM (SELECT * FROM orders o JOIN customers c ON o.customer_id = c.customer_id) sub'),
    ).toBe('SELECT SELECT orders customers');
    expect(summary('SELECT * FROM t WHERE id IN (SELECT id FROM u) AND EXISTS (SELECT 1 FROM v)')).toBe(
      'SELECT t SELECT u SELECT v',
    );
    expect(summary('SELECT a FROM t UNION ALL SELECT b FROM u')).toBe('SELECT t SELECT u');
    expect(summary('SELECT * FROM t, LATERAL (SELECT * FROM u WHERE u.t = t.id) x')).toBe('SELECT t SELECT u');
  });

  it('does not take FROM inside function arguments for a table', () => {
    expect(summary("SELECT EXTRACT(YEAR FROM created_at), substring(s FROM 2 FOR 3), trim(both 'x' from s) FROM events")).toBe(
      'SELECT events',
    );
  });

  it('summarizes INSERT, UPDATE, DELETE and MERGE', () => {
    expect(summary('INSERT INTO orders (id, total) VALUES (1, 2.5) RETURNING id')).toBe('INSERT orders');
    expect(summary('INSERT INTO shipping_details (order_id, address) SELECT order_id, address FROM orders WHERE order_id = 1')).toBe(
      'INSERT shipping_details SELECT orders',
    );
    expect(summary('INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET n = excluded.n')).toBe('INSERT t');
    expect(summary('UPDATE accounts SET balance = balance - 100 WHERE id = 1')).toBe('UPDATE accounts');
    expect(summary('UPDATE ONLY s.t SET a = u.a FROM u WHERE u.id = t.id')).toBe('UPDATE s.t u');
    expect(summary('DELETE FROM sessions WHERE expires < now()')).toBe('DELETE sessions');
    expect(summary('DELETE FROM a USING b, c WHERE a.id = b.id')).toBe('DELETE a b c');
    expect(summary('MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT (id) VALUES (s.id)')).toBe(
      'MERGE t s',
    );
    expect(summary('SELECT * FROM jobs WHERE state = 1 FOR UPDATE SKIP LOCKED')).toBe('SELECT jobs');
  });

  it('leaves common table expression names out', () => {
    expect(summary('WITH recent AS (SELECT * FROM orders WHERE d > now()) SELECT * FROM recent JOIN customers ON true')).toBe(
      'SELECT orders SELECT customers',
    );
    expect(summary('WITH d AS (DELETE FROM a RETURNING *) INSERT INTO b SELECT * FROM D')).toBe('DELETE a INSERT b SELECT');
  });

  it('summarizes DDL with its object kind', () => {
    expect(summary('CREATE TABLE IF NOT EXISTS app.users (id int PRIMARY KEY, ref int REFERENCES other(id) ON DELETE CASCADE)')).toBe(
      'CREATE TABLE app.users',
    );
    expect(summary('CREATE UNIQUE INDEX CONCURRENTLY users_email ON app.users USING btree (email)')).toBe(
      'CREATE INDEX users_email app.users',
    );
    expect(summary('CREATE OR REPLACE FUNCTION f(a int) RETURNS int AS $$ SELECT a FROM t $$ LANGUAGE sql')).toBe('CREATE FUNCTION f');
    expect(summary('CREATE MATERIALIZED VIEW mv AS SELECT * FROM t')).toBe('CREATE MATERIALIZED VIEW mv SELECT t');
    expect(summary('DROP TABLE IF EXISTS a, b CASCADE')).toBe('DROP TABLE a b');
    expect(summary('ALTER TABLE t ADD COLUMN c int DEFAULT 0')).toBe('ALTER TABLE t');
    expect(summary('TRUNCATE TABLE a, b RESTART IDENTITY')).toBe('TRUNCATE a b');
  });

  it('summarizes other statements', () => {
    expect(summary('COPY t (a, b) FROM STDIN WITH (FORMAT csv)')).toBe('COPY t');
    expect(summary('COPY (SELECT * FROM t) TO STDOUT')).toBe('COPY SELECT t');
    expect(summary('EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1')).toBe('EXPLAIN UPDATE t');
    expect(summary('CALL app.refresh(1)')).toBe('CALL app.refresh');
    expect(summary('SET search_path = app, public')).toBe('SET');
    expect(summary('GRANT SELECT ON t TO r')).toBe('GRANT');
    expect(summary('begin')).toBe('BEGIN');
  });

  it('joins the summaries of several statements', () => {
    expect(summary('BEGIN; UPDATE a SET x = 1; SELECT * FROM b; COMMIT;')).toBe('BEGIN; UPDATE a; SELECT b; COMMIT');
    expect(summary(';;')).toBe('');
  });

  it('stays within 255 characters, cut between words', () => {
    const tables = Array.from({ length: 100 }, (_, k) => `table_number_${k}`);
    const s = summary(`SELECT * FROM ${tables.join(', ')}`);
    expect(s.length).toBeLessThanOrEqual(255);
    expect(s.startsWith('SELECT table_number_0 table_number_1 ')).toBe(true);
    expect(tables).toContain(s.split(' ').at(-1));
  });
});

describe('traceparent', () => {
  it('is read from a sqlcommenter comment', () => {
    const s = shapeOf(`SELECT * FROM t /*controller='index',traceparent='${TRACEPARENT}',tracestate='x%3Dy'*/`);
    expect(s.traceparent).toEqual({ traceId: TRACE_ID, spanId: SPAN_ID, flags: 1 });
    expect(s.normalized).toBe('SELECT * FROM t');
  });

  it('is found anywhere in the text and URL-decoded', () => {
    const encoded = TRACEPARENT.replaceAll('-', '%2D');
    const s = shapeOf(`/*traceparent='${encoded}'*/ SELECT 1`);
    expect(s.traceparent).toEqual({ traceId: TRACE_ID, spanId: SPAN_ID, flags: 1 });
    expect(shapeOf(`SELECT 1 /* action='a%27b', traceparent='${TRACEPARENT.slice(0, -2)}00' */`).traceparent).toEqual({
      traceId: TRACE_ID,
      spanId: SPAN_ID,
      flags: 0,
    });
  });

  it('reads escaped quotes in other values', () => {
    expect(shapeOf(`SELECT 1 /*route='it\\'s',traceparent='${TRACEPARENT}'*/`).traceparent?.traceId).toBe(TRACE_ID);
  });

  it('is null when invalid', () => {
    const invalid = [
      `ff-${TRACE_ID}-${SPAN_ID}-01`,
      `0g-${TRACE_ID}-${SPAN_ID}-01`,
      `00-${'0'.repeat(32)}-${SPAN_ID}-01`,
      `00-${TRACE_ID}-${'0'.repeat(16)}-01`,
      `00-${TRACE_ID.toUpperCase()}-${SPAN_ID}-01`,
      `00-${TRACE_ID}-${SPAN_ID}-01-extra`,
      `00-${TRACE_ID.slice(1)}-${SPAN_ID}-01`,
      `00-${TRACE_ID}-${SPAN_ID}-1`,
      '%E0%A4%A',
    ];
    for (const value of invalid) {
      expect(shapeOf(`SELECT 1 /*traceparent='${value}'*/`).traceparent, value).toBeNull();
    }
  });

  it('accepts a later version with more fields, as the W3C recommendation asks', () => {
    expect(shapeOf(`SELECT 1 /*traceparent='01-${TRACE_ID}-${SPAN_ID}-01-future'*/`).traceparent?.spanId).toBe(SPAN_ID);
  });

  it('is only read from well-formed comments', () => {
    expect(shapeOf('SELECT 1 -- traceparent=' + `'${TRACEPARENT}'`).traceparent).toBeNull();
    expect(shapeOf(`SELECT 1 /* note: traceparent='${TRACEPARENT}' */`).traceparent).toBeNull();
    expect(shapeOf(`SELECT 1 /*traceparent=${TRACEPARENT}*/`).traceparent).toBeNull();
    expect(shapeOf(`SELECT '/*traceparent=''${TRACEPARENT}''*/'`).traceparent).toBeNull();
    expect(shapeOf('SELECT 1').traceparent).toBeNull();
  });

  it('takes the first valid one of several comments', () => {
    const other = `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`;
    expect(shapeOf(`/* plain */ SELECT 1 /*traceparent='${TRACEPARENT}'*/ /*traceparent='${other}'*/`).traceparent?.traceId).toBe(TRACE_ID);
  });
});

describe('properties', () => {
  // Pieces of SQL that stress the lexer when glued together in any order.
  const piece = fc.constantFrom(
    'SELECT', 'from', 't1', ' ', '\n', ',', '.', '(', ')', ';', "'", "''", '"', '$', '$$', '$a$', '$1', '-', '--',
    '/*', '*/', 'E', "E'", '\\', 'U&', '1', '.5', 'e', '+', '=', 'traceparent', '=\'', 'JOIN', 'WITH', 'INTO',
  );
  const sqlish = fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), fc.array(piece, { maxLength: 40 }).map((p) => p.join('')));

  it('always returns a well-formed shape', () => {
    fc.assert(
      fc.property(sqlish, (text) => {
        const s = shapeOf(text);
        expect(s.fingerprint).toMatch(/^[0-9a-f]{16}$/);
        expect(s.summary.length).toBeLessThanOrEqual(255);
        // Trimmed of SQL whitespace, unless an unterminated "identifier runs to the end with it.
        if (!text.includes('"')) expect(s.normalized).not.toMatch(/^[ \t\n\r\f\v]|[ \t\n\r\f\v]$/);
        expect(shapeOf(text)).toEqual(s);
      }),
      { numRuns: 1_000 },
    );
  });

  it('gives texts that differ only in literal values one fingerprint', () => {
    const stringLiteral = fc.string({ maxLength: 12 }).map((v) => `'${v.replaceAll("'", "''")}'`);
    const escapeLiteral = fc.string({ maxLength: 12 }).map((v) => `E'${v.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`);
    // One literal only when its closing tag is the first `$q$` after the opening one: a body
    // ending in `$q` would close it early (`$q$$q$q$` is an empty string and then `q$`, as the server reads it).
    const dollarLiteral = fc.string({ maxLength: 12 }).filter((v) => `${v}$q$`.indexOf('$q$') === v.length).map((v) => `$q$${v}$q$`);
    const number = fc.oneof(fc.integer().map(String), fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e9, max: 1e9 }).map((d) => d.toString()));
    const literal = fc.oneof(stringLiteral, escapeLiteral, dollarLiteral, number);
    const query = (a: string, b: string, c: string): string =>
      `SELECT x, ${a} FROM orders o JOIN items i ON i.o = o.id WHERE o.total > ${b} AND i.sku IN (${c}, $1)`;
    fc.assert(
      fc.property(fc.tuple(literal, literal, literal), fc.tuple(literal, literal, literal), (x, y) => {
        const a = shapeOf(query(...x));
        const b = shapeOf(query(...y));
        expect(a.normalized).toBe('SELECT x, ? FROM orders o JOIN items i ON i.o = o.id WHERE o.total > ? AND i.sku IN (?, $1)');
        expect(b.fingerprint).toBe(a.fingerprint);
        expect(a.summary).toBe('SELECT orders items');
      }),
      { numRuns: 500 },
    );
  });
});
