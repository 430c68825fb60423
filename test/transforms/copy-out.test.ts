import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { serialize } from 'pg-protocol';
import { copyOutRefusal, copyOuts, mayCopyToStdout, qualifiedName } from '../../plugins/transforms/copy-out.js';
import type { Registry, TableTransforms } from '../../plugins/transforms/registry-cache.js';
import { SqlAnalyser } from '../../plugins/sql/analyser.js';
import { PluginHost } from '../../plugins/host.js';

let sql: SqlAnalyser;
beforeAll(async () => {
  sql = await SqlAnalyser.load();
});

const table = (oid: number, name: string): TableTransforms => ({ oid, name, columnNames: new Map(), chain: [] });
const registry: Registry = { tables: new Map([[1, table(1, 'public.customers')], [2, table(2, 'sales."Orders"')]]), refused: new Map() };

/** The refusal's SQLSTATE, or null when the text may be served. */
function verdict(text: string, reg: Registry | null = registry): string | null {
  return copyOutRefusal(sql.analyse(text), reg, sql)?.code ?? null;
}

/** Every COPY … TO STDOUT the parser finds in a text. */
function copies(text: string): number {
  const a = sql.analyse(text);
  return a.ok ? copyOuts(a).length : -1;
}

describe('COPY TO STDOUT, read by PostgreSQL\'s parser', () => {
  it('finds COPY … TO STDOUT in any spelling and statement position, and nothing else', () => {
    expect(copies('COPY customers TO STDOUT')).toBe(1);
    expect(copies('select 1; copy (select * from customers) to stdout with (format csv)')).toBe(1);
    expect(copies('Copy customers TO\n  StdOut')).toBe(1);
    expect(copies('COPY customers FROM STDIN')).toBe(0);
    expect(copies("COPY customers TO '/tmp/x'")).toBe(0);
    expect(copies("COPY customers TO PROGRAM 'cat'")).toBe(0);
    expect(copies('SELECT copy_count FROM stdout_log')).toBe(0);
    // What the regular expression could not see: a comment or a line break between the tokens.
    expect(copies('copy customers to/**/stdout')).toBe(1);
    expect(copies('copy customers to --x\nstdout')).toBe(1);
    expect(copies('/*a*/copy/*b*/customers/*c*/to/*d /* nested */ e*/stdout/*f*/;')).toBe(1);
    // Options in both syntaxes.
    expect(copies('copy customers to stdout csv header')).toBe(1);
    expect(copies('copy binary customers to stdout')).toBe(1);
    expect(copies("copy customers (email) to stdout with (format text, delimiter '|')")).toBe(1);
  });

  it('reads names as the server stores them', () => {
    expect(qualifiedName('public.customers', sql)).toEqual({ schema: 'public', name: 'customers' });
    expect(qualifiedName('public."Order Lines"', sql)).toEqual({ schema: 'public', name: 'Order Lines' });
    expect(qualifiedName('"my ""quoted"" schema".t', sql)).toEqual({ schema: 'my "quoted" schema', name: 't' });
    expect(qualifiedName('"a.b"', sql)).toEqual({ schema: null, name: 'a.b' });
  });

  it('refuses a table with transforms however the statement spells it', () => {
    for (const text of [
      'COPY customers TO STDOUT',
      'copy customers to/**/stdout',
      'copy customers to --x\nstdout',
      'copy U&"cust\\006Fmers" to stdout',
      'copy U&"!0063ustomers" UESCAPE \'!\' to stdout',
      'COPY PUBLIC.CUSTOMERS (email) TO STDOUT',
      'COPY "customers" TO STDOUT',
      'COPY public."customers" TO STDOUT',
      'CoPy\tcustomers\r\nTo\fStDoUt',
      'copy/**/customers/**/to/**/stdout',
      '-- a comment\ncopy\n--\ncustomers\n--\nto\n--\nstdout\n--',
      'COPY sales."Orders" TO STDOUT',
      // A bare name may resolve to it through the search_path, from any schema.
      'COPY "Orders" TO STDOUT',
      'select 1; copy customers to stdout; select 2',
      'copy customers to stdout csv header',
      'COPY customers TO STDOUT WITH (FORMAT binary)',
      'copy (select email from customers) to stdout',
      'copy (with c as (select * from public.customers) select * from c) to stdout',
    ]) expect(verdict(text), text).toBe('0A000');
  });

  it('serves tables without transforms, and COPY that does not reach the client', () => {
    for (const text of [
      'COPY plain TO STDOUT',
      'COPY sales.Orders TO STDOUT', // folds to orders, another table than "Orders"
      'COPY "Customers" TO STDOUT',
      'COPY customers_archive TO STDOUT',
      'COPY archive.customers TO STDOUT', // qualified: another schema's table
      'COPY customers FROM STDIN',
      "COPY customers TO '/tmp/x'",
      'SELECT * FROM customers',
      'copy (select 1 as customers) to stdout',
      'copy (values (1, \'a\'), (2, \'b\')) to stdout',
      'copy (with c as (select 1 as x) select x from c order by x) to stdout',
      'copy (select 1 union all select 2) to stdout',
    ]) expect(verdict(text), text).toBeNull();
  });

  it('refuses a COPY (query) TO STDOUT that reads any relation or calls anything, while transforms are registered', () => {
    for (const text of [
      'copy (select * from v_customers) to stdout', // a view may read the table
      'copy (select * from leak()) to stdout',
      'copy (select leak()) to stdout',
      'copy (select 1 + 1) to stdout', // an operator is a function call
      "copy (select '1'::mytype) to stdout", // so is a cast
      'copy (select (select 1)) to stdout',
      'copy (update plain set x = x returning *) to stdout',
      'copy (select * from pg_catalog.pg_class) to stdout',
      // A CTE's name is in scope in its own query only: outside it, or in its own body, it names a relation.
      'copy ((with v as (select 1) select * from v) union all (select * from v)) to stdout',
      'copy (with v as (select * from v) select * from v) to stdout',
      'copy (with a as (select * from b), b as (select 1) select * from a) to stdout',
    ]) expect(verdict(text), text).toBe('0A000');
    // WITH RECURSIVE: every CTE of the clause is in scope in every one of them.
    expect(verdict('copy (with recursive a as (select 1 union all select 1 from a limit 3) select * from a) to stdout')).toBeNull();
    expect(verdict('copy (with recursive a as (select * from b), b as (select 1) select * from a) to stdout')).toBeNull();
    expect(verdict('copy (with recursive a as (select * from b) select * from a) to stdout')).toBe('0A000');
  });

  it('refuses what it cannot parse, and everything while the registry is unknown', () => {
    const err = copyOutRefusal(sql.analyse('copy customers to stdout with oids'), registry, sql);
    expect(err?.code).toBe('42601');
    expect(err?.fields.position).toBe(31);
    expect(err?.message).toMatch(/syntax error at or near "oids"/);
    expect(verdict('copy customers to stdout; select \'unterminated')).toBe('42601');
    expect(verdict('copy (select 1) to stdout', null)).toBe('57P03');
    expect(verdict('copy plain from stdin', null)).toBeNull();
    // A byte that was not UTF-8 (U+FFFD once decoded) may be half of a character to the server.
    expect(verdict("select E'\uFFFD\\'; copy customers to stdout; --'")).toBe('22021');
    // A query too deep to walk is not proven safe.
    expect(verdict(`copy (select ${'1+'.repeat(5000)}1) to stdout`, { tables: new Map(), refused: new Map() })).toBe('0A000');
    // Parsing runs on the event loop: a text too long to parse quickly is not served.
    expect(verdict(`copy (select '${'x'.repeat(2 * 1024 * 1024)}') to stdout`)).toBe('54000');
  });

  it('reads a text as a server with standard_conforming_strings off does, too', () => {
    // With the setting off, \' does not end the string: the COPY is a statement of its own.
    const hidden = "select 'x\\'' ; copy customers to stdout; --'";
    const a = sql.analyse(hidden);
    expect(a.ok && a.readings.length).toBe(2);
    expect(verdict(hidden)).toBe('0A000');
    expect(verdict("select N'x\\'' ; copy customers to stdout; --'")).toBe('0A000');
    // And the other way round.
    expect(verdict("select E'x\\'' ; copy customers to stdout; --'")).toBe('0A000');
    // Backslashes that change nothing.
    expect(verdict("copy (select 'C:\\dir') to stdout")).toBeNull();
    // A text such a server would reject is read the standard way only.
    expect(verdict("copy plain to stdout with (format csv, escape '\\')")).toBeNull();
    expect(verdict("copy customers to stdout with (format csv, escape '\\')")).toBe('0A000');
  });
});

describe('the byte pre-check before the parser', () => {
  const host = new PluginHost([{ name: 'copy', copyOut: () => null }], () => undefined);
  // COPY is a keyword: no escape, quoting or comment can spell it, so a text the parser reads as
  // COPY holds the four letters (in some case) in its bytes.
  const space = fc.constantFrom(' ', '\n', '\t', '\r\n', '\f', '/* c */', '/* a /* nested */ b */', '-- c\n', '');
  // Spellings of the keyword, and of things that look like it but are not it.
  const copyWord = fc.constantFrom(
    'copy', 'COPY', 'CoPy', 'cOPY', 'Copy', 'c/**/opy', 'co--x\npy', 'U&"\\0063opy"', '"copy"', '"COPY"', 'ｃｏｐｙ',
    '\\u0063opy', 'e\'copy\'', '$$copy$$', 'c o p y', 'cop', 'kopy',
  );
  const target = fc.constantFrom(
    'customers', 'public.customers', '"customers"', 'U&"cust\\006Fmers"', 'U&"!0063ustomers" UESCAPE \'!\'', 'PUBLIC.CUSTOMERS',
    'customers (email)', '(select * from customers)', '(values (1))', 'binary customers',
  );
  const direction = fc.constantFrom(
    'to stdout', 'TO StdOut', 'from stdin', "to '/tmp/x'", 'to/**/stdout', 'to --x\nstdout', 'to "stdout"', 'to U&"\\0073tdout"',
    "to 'stdout'", 'to std/**/out',
  );
  const options = fc.constantFrom('', 'csv', 'csv header', 'with (format csv)', 'with binary', "with (delimiter '|')");
  const before = fc.constantFrom('', 'select 1;', 'select \'copy\';', 'begin;', '/* copy */');
  const statement = fc.tuple(before, space, copyWord, space, target, space, direction, space, options, space)
    .map(([b, s1, c, s2, t, s3, d, s4, o, s5]) => `${b}${s1}${c}${s2 === '' ? ' ' : s2}${t}${s3 === '' ? ' ' : s3}${d}${s4}${o}${s5}`);

  it('misses nothing the parser reads as COPY, over random spellings', () => {
    let seen = 0;
    fc.assert(
      fc.property(statement, (t) => {
        const a = sql.analyse(t);
        if (!a.ok) return;
        const isCopy = a.readings.some((r) => r.some((n) => 'CopyStmt' in n));
        if (!isCopy) return;
        seen++;
        expect(host.mayCopyOut(serialize.query(t)), t).toBe(true);
        expect(host.mayCopyOut(serialize.parse({ text: t })), t).toBe(true);
        // The same holds for STDOUT, checked before parsing.
        if (copyOuts(a).length > 0) expect(mayCopyToStdout(t), t).toBe(true);
      }),
      { seed: 20261204, numRuns: 3000 },
    );
    // The property was not vacuous.
    expect(seen).toBeGreaterThan(50);
  });
});
