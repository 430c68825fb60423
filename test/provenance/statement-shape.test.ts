/** What records and spans say about a statement's text: read with PostgreSQL's parser and scanner. */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { shapeOf as shapeWith, type StatementShape } from '../../plugins/provenance/statement-shape.js';
import { SqlAnalyser } from '../../plugins/sql/analyser.js';

let sql: SqlAnalyser;
beforeAll(async () => {
  sql = await SqlAnalyser.load();
});

const shapeOf = (text: string): StatementShape => shapeWith(sql, text);
const norm = (text: string): string => shapeOf(text).normalized;
const summary = (text: string): string => shapeOf(text).summary;
const sha16 = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 16);

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${SPAN_ID}-01`;

describe('normalized text', () => {
  it('replaces constants of every kind with parameters, numbered after the text\'s own', () => {
    expect(norm("SELECT 'a', E'b\\n', U&'d\\0061t', B'1010', X'1F', $$dollar$$, $fn$tagged$fn$, 1.5, 1e10, 0x1F")).toBe(
      'SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10',
    );
    expect(norm('SELECT * FROM t WHERE a = $1 AND b = 7')).toBe('SELECT * FROM t WHERE a = $1 AND b = $2');
    expect(norm("SELECT DATE '2020-01-01', '5'::int, x::text FROM t")).toBe('SELECT DATE $1, $2::int, x::text FROM t');
  });

  it('keeps quoted identifiers and names as written', () => {
    expect(norm('SELECT "it""s", "3col" FROM "My Table" WHERE "x" = \'x\'')).toBe('SELECT "it""s", "3col" FROM "My Table" WHERE "x" = $1');
  });

  it('removes comments, nested ones and sqlcommenter ones included, and collapses whitespace', () => {
    expect(norm('  SELECT /* a /* nested */ still comment */ 1 -- trailing\n\t FROM\r\n  t  ')).toBe('SELECT $1 FROM t');
    expect(norm(`SELECT a FROM t /*traceparent='${TRACEPARENT}'*/`)).toBe('SELECT a FROM t');
    expect(norm('SELECT a/**/FROM t')).toBe('SELECT a FROM t');
    expect(norm('')).toBe('');
  });

  it('reads a backslash in a plain string as the server does, so a literal cannot leak into the record', () => {
    expect(norm("SELECT 'C:\\', 'secret'")).toBe('SELECT $1, $2');
  });

  it('of a text the parser rejects: its constants replaced all the same', () => {
    expect(norm("SELEC password FROM users WHERE token = 'secret' AND n = 42")).toBe('SELEC password FROM users WHERE token = $1 AND n = $2');
    expect(norm("select a from t fetch first 3 rows with ties where x = 'y'")).not.toContain("'y'");
  });

  it('of a text the scanner cannot read: empty, none of its bytes recorded', () => {
    for (const text of ["SELECT 'open secret", 'SELECT 1 /* open', 'SELECT $$open secret']) {
      expect(shapeOf(text), text).toMatchObject({ normalized: '', fingerprint: sha16('') });
    }
  });
});

describe('fingerprint', () => {
  it('is PostgreSQL\'s parser\'s (libpg_query) for a text it accepts', () => {
    for (const text of ['SELECT 1', "select * from t where a = 'x'", 'WITH x AS (SELECT 1) SELECT * FROM x']) {
      expect(shapeOf(text).fingerprint, text).toBe(sql.fingerprint(text));
    }
  });

  it('is the same for texts that differ only in constants, spacing, case and comments', () => {
    const a = shapeOf("SELECT * FROM orders WHERE id = 42 AND note = 'x' AND t > -1.5");
    const b = shapeOf("select  *  FROM orders /* c */ WHERE id = 7 AND note = E'it\\'s' AND t > -3");
    expect(a.fingerprint).toBe(b.fingerprint);
    expect(shapeOf("INSERT INTO t VALUES ($x$a$x$, 'b')").fingerprint).toBe(shapeOf("INSERT INTO t VALUES ('c', $$d$$)").fingerprint);
    expect(shapeOf(`SELECT 1 /*traceparent='${TRACEPARENT}'*/`).fingerprint).toBe(shapeOf('SELECT 2').fingerprint);
  });

  it('differs when the structure differs', () => {
    const base = shapeOf('SELECT * FROM orders WHERE id = 1').fingerprint;
    expect(shapeOf('SELECT * FROM customers WHERE id = 1').fingerprint).not.toBe(base);
    expect(shapeOf('SELECT id FROM orders WHERE id = 1').fingerprint).not.toBe(base);
    expect(shapeOf('SELECT * FROM orders WHERE id < 1').fingerprint).not.toBe(base);
  });

  it('of a text the parser rejects: the SHA-256 of its tokens, constants left out', () => {
    const a = shapeOf("SELEC x FROM t WHERE y = 'a' -- c");
    expect(a.fingerprint).toBe(sha16('selec x FROM t WHERE y = ?'));
    expect(shapeOf("selec  x FROM t WHERE y = 42").fingerprint).toBe(a.fingerprint);
    expect(shapeOf("SELEC z FROM t WHERE y = 'a'").fingerprint).not.toBe(a.fingerprint);
  });
});

describe('operation', () => {
  it('is the first keyword, upper-cased', () => {
    expect(shapeOf('select 1').operation).toBe('SELECT');
    expect(shapeOf('  /* c */ insert into t values (1)').operation).toBe('INSERT');
    expect(shapeOf('Update t set a = 1').operation).toBe('UPDATE');
    expect(shapeOf('show search_path').operation).toBe('SHOW');
    expect(shapeOf('begin').operation).toBe('BEGIN');
    expect(shapeOf('(SELECT 1) UNION (SELECT 2)').operation).toBe('SELECT');
  });

  it('is the main verb after common table expressions', () => {
    expect(shapeOf('WITH x AS (SELECT 1) SELECT * FROM x').operation).toBe('SELECT');
    expect(shapeOf('WITH x AS (SELECT 1), y AS (SELECT 2) DELETE FROM t USING x').operation).toBe('DELETE');
    expect(shapeOf('WITH x AS (SELECT 1)').operation).toBe('WITH');
  });

  it('is null for an empty statement and the first statement\'s otherwise', () => {
    expect(shapeOf('').operation).toBeNull();
    expect(shapeOf(' ; -- nothing').operation).toBeNull();
    expect(shapeOf('; BEGIN; SELECT 1; COMMIT').operation).toBe('BEGIN');
  });
});

describe('summary', () => {
  it('names the operation and the tables, in the order they appear, each once', () => {
    expect(summary('SELECT * FROM wuser_table WHERE username = $1')).toBe('SELECT wuser_table');
    expect(summary('SELECT 1')).toBe('SELECT');
    expect(summary('SELECT c.name FROM customers c JOIN orders o ON o.customer_id = c.id, customers d')).toBe('SELECT customers orders');
    expect(summary('SELECT * FROM t WHERE id IN (SELECT id FROM u)')).toBe('SELECT t u');
    expect(summary('INSERT INTO shipping_details SELECT * FROM orders')).toBe('INSERT shipping_details orders');
  });

  it('names tables as the server reads them, quoted where they must be', () => {
    expect(summary('SELECT * FROM Public.Customers JOIN "Sales"."Order Items" ON true')).toBe('SELECT public.customers "Sales"."Order Items"');
  });

  it('does not take FROM inside function arguments, nor common table expressions, for a table', () => {
    expect(summary("SELECT EXTRACT(YEAR FROM created_at), substring(s FROM 2 FOR 3) FROM events")).toBe('SELECT events');
    expect(summary('WITH recent AS (SELECT * FROM orders) SELECT * FROM recent JOIN customers ON true')).toBe('SELECT orders customers');
  });

  it('joins the summaries of several statements', () => {
    expect(summary('BEGIN; UPDATE a SET x = 1; SELECT * FROM b; COMMIT;')).toBe('BEGIN; UPDATE a; SELECT b; COMMIT');
    expect(summary(';;')).toBe('');
    expect(summary('SELEC x FROM t; SELECT 1')).toBe('SELEC; SELECT');
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
        expect(shapeOf(text)).toEqual(s);
      }),
      { numRuns: 300 },
    );
  });

  it('gives texts that differ only in literal values one fingerprint, and never records a literal', () => {
    const secret = fc.string({ minLength: 1, maxLength: 12 }).map((v) => `zq${v}`);
    const stringLiteral = secret.map((v) => `'${v.replaceAll("'", "''")}'`);
    const dollarLiteral = secret.filter((v) => !v.includes('$')).map((v) => `$q$${v}$q$`);
    const number = fc.integer({ min: 0 }).map(String);
    const literal = fc.oneof(stringLiteral, dollarLiteral, number);
    const query = (a: string, b: string): string => `SELECT x, ${a} FROM orders o JOIN items i ON i.o = o.id WHERE o.total > ${b} AND i.sku = $1`;
    fc.assert(
      fc.property(fc.tuple(literal, literal), fc.tuple(literal, literal), (x, y) => {
        const a = shapeOf(query(...x));
        const b = shapeOf(query(...y));
        expect(a.normalized).toBe('SELECT x, $2 FROM orders o JOIN items i ON i.o = o.id WHERE o.total > $3 AND i.sku = $1');
        expect(b.fingerprint).toBe(a.fingerprint);
        expect(a.summary).toBe('SELECT orders items');
      }),
      { numRuns: 200 },
    );
  });
});
