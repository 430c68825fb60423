/**
 * The column-source analysis over a catalog held in memory that mirrors SCHEMA_SQL (the same
 * cases run against a real server's catalog in catalog.test.ts).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { SqlAnalyser } from '../../plugins/sql/analyser.js';
import { MemoryCatalog, type CatalogFunction, type CatalogRelation } from '../../plugins/sql/catalog.js';
import { parseSearchPath, readingSources, type StatementSources } from '../../plugins/sql/column-sources.js';
import type { SessionNames } from '../../plugins/sql/source-model.js';
import { CASES, check, type NameOf } from './column-sources-cases.js';

let analyser: SqlAnalyser;
beforeAll(async () => {
  analyser = await SqlAnalyser.load();
});

const rel = (oid: number, schema: string, name: string, cols: string[], kind: CatalogRelation['kind'] = 'table', definition: string | null = null): CatalogRelation => ({
  oid, schema, name, kind, definition, columns: cols.map((n, i) => ({ name: n, attnum: i + 1 })),
});

let nextOid = 100;
const fn = (name: string, argCount: number, extra: Partial<CatalogFunction> = {}): CatalogFunction => ({
  oid: nextOid++, schema: 'pg_catalog', name, language: 'internal', volatility: 'immutable', kind: 'function', returnsSet: false,
  argCount, defaults: 0, variadic: false, mayReadTables: false, outputColumns: null, ...extra,
});
const user = (schema: string, name: string, argCount: number, extra: Partial<CatalogFunction> = {}): CatalogFunction =>
  fn(name, argCount, { oid: 20000 + nextOid++, schema, language: 'sql', mayReadTables: true, ...extra });

const RELATIONS = [
  rel(16401, 'public', 'customers', ['id', 'email', 'name', 'created']),
  rel(16402, 'public', 'orders', ['id', 'customer_id', 'amount']),
  rel(16403, 'app', 'customers', ['id', 'email']),
  rel(16404, 'public', 'Weird Name', ['Mixed Col', 'x']),
  rel(16410, 'public', 'customer_emails', ['id', 'email'], 'view', 'SELECT customers.id,\n    customers.email\n   FROM public.customers;'),
  rel(16411, 'public', 'email_domains', ['id', 'domain'], 'view', "SELECT customers.id, split_part(customers.email, '@'::text, 2) AS domain FROM public.customers;"),
  rel(16412, 'public', 'nested', ['address'], 'view', 'SELECT e.email AS address FROM public.customer_emails e WHERE (e.id > 0);'),
  rel(16413, 'public', 'mv_emails', ['id', 'email'], 'matview', 'SELECT customers.id, customers.email FROM public.customers;'),
  rel(16420, 'pg_temp_3', 'orders', ['id']),
];

function memoryCatalog(): MemoryCatalog {
  const c = new MemoryCatalog();
  for (const r of RELATIONS) c.addRelation(r);
  c.addRelation({ ...rel(16420, 'pg_temp', 'orders', ['id']), schema: 'pg_temp' });
  for (const f of [
    fn('lower', 1), fn('bool_or', 1, { kind: 'aggregate' }), fn('upper', 1), fn('length', 1), fn('row_to_json', 1), fn('row_to_json', 2), fn('to_jsonb', 1),
    fn('max', 1, { kind: 'aggregate' }), fn('count', 0, { kind: 'aggregate' }), fn('count', 1, { kind: 'aggregate' }),
    fn('string_agg', 2, { kind: 'aggregate' }), fn('row_number', 0, { kind: 'window' }), fn('lag', 3, { kind: 'window', defaults: 2 }),
    fn('split_part', 3), fn('generate_series', 2, { returnsSet: true }), fn('generate_series', 3, { returnsSet: true }),
    fn('unnest', 1, { returnsSet: true }), fn('json_build_object', 1, { variadic: true }),
    fn('jsonb_each', 1, { returnsSet: true, outputColumns: ['key', 'value'] }),
    fn('query_to_xml', 4, { mayReadTables: true }), fn('nullif', 2), fn('substring', 3), fn('extract', 2), fn('json_to_record', 1, { returnsSet: false }),
    fn('similar_to_escape', 1), fn('similar_to_escape', 2), fn('set_config', 3, { volatility: 'volatile' }),
    user('public', 'leak', 1), user('public', 'same', 1), user('public', 'all_emails', 0, { returnsSet: true }),
    user('public', 'keep', 1, { kind: 'procedure' }), user('public', 'eq3', 2), user('app', 'lower', 1),
  ]) c.addFunction(f);
  for (const op of ['=', '<>', '<', '>', '<=', '>=', '||', '+', '*', '~~', '~']) c.addOperator('pg_catalog', op, true);
  c.addOperator('public', '===', false);
  for (const t of ['int4', 'text', 'varchar', 'numeric', 'date', 'bool']) c.addType('pg_catalog', t, true);
  c.addType('public', 'email_address', false);
  c.denyUsage('app', 'outsider');
  return c;
}

const nameOf: NameOf = (oid, attnum) => {
  const r = RELATIONS.find((x) => x.oid === oid);
  if (r === undefined) return `${oid}.${attnum}`;
  return `${r.schema === 'public' ? '' : `${r.schema}.`}${r.name}.${r.columns.find((c) => c.attnum === attnum)?.name ?? attnum}`;
};

const SESSION: SessionNames = { searchPath: ['$user', 'public'], user: 'postgres', tempSchema: null };

function sourcesOf(sql: string, session: SessionNames = SESSION): StatementSources[] {
  const parsed = analyser.analyse(sql);
  if (!parsed.ok) throw new Error(parsed.message);
  return readingSources(parsed.readings[0] ?? [], { catalog: memoryCatalog(), session, analyser });
}

describe('column sources over an in-memory catalog', () => {
  it('covers at least 60 statements', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(60);
  });

  for (const t of CASES) {
    it(t.sql, () => {
      const got = sourcesOf(t.sql, t.session)[t.statement ?? 0];
      if (got === undefined) throw new Error('no such statement');
      check(got, t.expect, nameOf);
      expect(got.needs).toEqual([]);
    });
  }

  it('finds the session temporary table first, and is unsure when it cannot know the temporary schema', () => {
    const temp = sourcesOf('select id from orders', { searchPath: ['public'], user: 'postgres', tempSchema: 'pg_temp_3' })[0];
    expect(temp?.results[0]?.columns).toEqual([{ kind: 'column', oid: 16420, attnum: 1 }]);
    const listed = sourcesOf('select id from orders', { searchPath: ['public', 'pg_temp'], user: 'postgres', tempSchema: 'pg_temp_3' })[0];
    expect(listed?.results[0]?.columns).toEqual([{ kind: 'column', oid: 16402, attnum: 1 }]);
    const none = sourcesOf('select id from orders', { searchPath: ['public'], user: 'postgres', tempSchema: null })[0];
    expect(none?.results[0]?.columns).toEqual([{ kind: 'column', oid: 16402, attnum: 1 }]);
    const unsure = sourcesOf('select id from orders', { searchPath: ['public'], user: 'postgres' })[0];
    expect(unsure?.certain).toBe(false);
    expect(unsure?.reasons.join()).toMatch(/temporary table/);
    const explicit = sourcesOf('select id from pg_temp.orders', { searchPath: ['public'], user: 'postgres', tempSchema: 'pg_temp_3' })[0];
    expect(explicit?.results[0]?.columns).toEqual([{ kind: 'column', oid: 16420, attnum: 1 }]);
    expect(sourcesOf('select id from pg_temp.orders', { searchPath: ['public'] })[0]?.certain).toBe(false);
    expect(sourcesOf('select id from pg_temp.orders', { searchPath: ['public'], tempSchema: null })[0]?.certain).toBe(false);
  });

  it('names what was not understood', () => {
    const s = sourcesOf('select leak(id), email::email_address from customers')[0];
    expect(s?.reasons).toEqual(expect.arrayContaining([
      expect.stringMatching(/function public\.leak may read tables/),
      expect.stringMatching(/type public\.email_address is user-defined/),
    ]));
    expect(s?.results[0]?.columns[0]).toMatchObject({ kind: 'unknown', reads: [{ oid: 16401, attnum: 1 }] });
  });

  it('says which statements may change what names mean after them', () => {
    const s = sourcesOf("set role app; select set_config('search_path', 'app', false); execute p; create table t (a int); select 1");
    expect(s.map((x) => x.changesNames)).toEqual([
      'VariableSetStmt', 'a call of set_config', 'ExecuteStmt', 'CreateStmt', null,
    ]);
    expect(s.map((x) => x.certain)).toEqual([true, false, false, false, false]);
  });

  it('reports a statement nested deeper than it can follow as uncertain rather than failing', () => {
    // Where the parser's own limit lies depends on the stack; some depth below it is too deep for the analysis.
    const reasons: string[] = [];
    for (let depth = 1000; depth <= 8000; depth += 500) {
      const parsed = analyser.analyse(`select ${'id + '.repeat(depth)}1 from customers`);
      if (!parsed.ok) break;
      const s = readingSources(parsed.readings[0] ?? [], { catalog: memoryCatalog(), session: SESSION, analyser })[0];
      reasons.push(...(s?.reasons ?? []));
    }
    expect(reasons).toContain('the statement nests too deeply for the analysis');
  });

  it('reads a search_path as the server reports it', () => {
    expect(parseSearchPath('"$user", public')).toEqual(['$user', 'public']);
    expect(parseSearchPath('App,  "My ""Schema"" X" ,pg_temp')).toEqual(['app', 'My "Schema" X', 'pg_temp']);
    expect(parseSearchPath('')).toEqual([]);
    expect(parseSearchPath('a b')).toBeNull();
    expect(parseSearchPath('"open')).toBeNull();
    expect(parseSearchPath('a,,b')).toBeNull();
  });

  it('analyses every statement of a text', () => {
    const s = sourcesOf('select email from customers; select amount from orders; begin');
    expect(s.map((x) => x.results.length)).toEqual([1, 1, 0]);
    expect(s.map((x) => x.changesNames)).toEqual([null, null, null]);
    expect(s[1]?.results[0]?.columns).toEqual([{ kind: 'column', oid: 16402, attnum: 3 }]);
  });
});
