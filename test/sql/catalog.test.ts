/**
 * PgCatalog against a real PostgreSQL: it loads what statements need with its own queries, the
 * column-source cases give the same answers as over the in-memory catalog, built-ins are told from
 * functions that may read tables, and invalidation makes changed views read again.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import pg from 'pg';
import { SqlAnalyser } from '../../plugins/sql/analyser.js';
import { PgCatalog } from '../../plugins/sql/catalog.js';
import { ColumnSourcesCache } from '../../plugins/sql/sources-cache.js';
import { loadColumnSources, parseSearchPath, type SessionNames, type StatementSources } from '../../plugins/sql/column-sources.js';
import type { SqlRunner } from '../../plugins/registry/migrate.js';
import { attachPgCluster } from '../support/pg-cluster.js';
import { CASES, checkCases, NAMES_SQL, SCHEMA_SQL, type NameOf } from './column-sources-cases.js';

const cluster = attachPgCluster(inject('pg'));
const DATABASE = 'sql_catalog_test';

let client: pg.Client;
let runner: SqlRunner & { count: number };
let analyser: SqlAnalyser;
const names = new Map<string, string>();

const nameOf: NameOf = (oid, attnum) => names.get(`${oid}.${attnum}`) ?? `${oid}.${attnum}`;
const SESSION: SessionNames = { searchPath: ['$user', 'public'], user: 'postgres', tempSchema: null };

beforeAll(async () => {
  await cluster.psql(`DROP DATABASE IF EXISTS ${DATABASE}; CREATE DATABASE ${DATABASE};`);
  client = new pg.Client({ connectionString: cluster.url({ database: DATABASE }) });
  await client.connect();
  await client.query(SCHEMA_SQL);
  runner = {
    count: 0,
    async query(sql, params = []) {
      runner.count++;
      return { rows: (await client.query<Record<string, unknown>>(sql, [...params])).rows };
    },
    async exec(sql) {
      await client.query(sql);
    },
  };
  analyser = await SqlAnalyser.load();
  const { rows } = await client.query<{ oid: string; attnum: number; name: string }>(NAMES_SQL);
  for (const r of rows) names.set(`${r.oid}.${r.attnum}`, r.name);
});

afterAll(async () => {
  await client.end();
  await cluster.psql(`DROP DATABASE IF EXISTS ${DATABASE}`);
});

async function sources(catalog: PgCatalog, sql: string, session: SessionNames = SESSION): Promise<StatementSources[]> {
  const parsed = analyser.analyse(sql);
  if (!parsed.ok) throw new Error(parsed.message);
  return loadColumnSources(parsed.readings[0] ?? [], { catalog, session, analyser });
}

describe('the catalog of a real PostgreSQL', () => {
  it('gives every case the same sources as the in-memory catalog', async () => {
    const catalog = new PgCatalog(runner);
    await checkCases(async (t) => (await sources(catalog, t.sql, t.session))[t.statement ?? 0], nameOf);
  });

  it('runs every case it is sure of on the server, and agrees with the origins of RowDescription', async () => {
    // The server marks a result column with its table column when it is a plain reference (as
    // written: a view's own column for a view, whatever it computes), and with column 0 otherwise
    // (a whole-row reference with its table and column 0).
    const { rows: views } = await client.query<{ oid: string }>("SELECT oid::int8 AS oid FROM pg_class WHERE relkind IN ('v', 'm')");
    const viewOids = new Set(views.map((v) => Number(v.oid)));
    let compared = 0;
    for (const t of CASES) {
      // COPY needs the copy sub-protocol; FETCH and WHERE CURRENT OF a cursor of an earlier case.
      if (t.expect.certain === false || /^(copy|fetch)|current of/i.test(t.sql)) continue;
      const prepare = /^prepare/i.test(t.sql);
      const params = prepare || t.statement !== undefined ? 0 : Math.max(0, ...[...t.sql.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])));
      await client.query('BEGIN');
      let fields;
      try {
        if (t.session !== undefined) await client.query(`SET LOCAL search_path = ${t.session.searchPath.map((p) => `"${p}"`).join(', ')}`);
        if (t.session?.user !== undefined) await client.query(`SET LOCAL ROLE ${t.session.user}`);
        fields = (await client.query({ text: t.sql, values: new Array<null>(params).fill(null) })).fields;
      } catch (err) {
        throw new Error(`${t.sql}: ${String(err)}`);
      } finally {
        await client.query('ROLLBACK');
        if (prepare) await client.query('DEALLOCATE ALL');
      }
      if (t.expect.cols === undefined || t.statement !== undefined) continue;
      const got = (await sources(new PgCatalog(runner), t.sql, t.session))[0]?.results[0]?.columns ?? [];
      expect(got.length, t.sql).toBe(fields.length);
      fields.forEach((f, i) => {
        const ours = got[i];
        if (viewOids.has(f.tableID)) return;
        if (ours?.kind === 'column') expect([f.tableID, f.columnID], `${t.sql} column ${i + 1}`).toEqual([ours.oid, ours.attnum]);
        // Where the server sees a plain column the analysis may be more careful (a cast to the
        // column's own type is no cast to the server), but must know the column is read.
        if (ours?.kind !== 'column' && f.columnID !== 0) expect(ours?.reads, `${t.sql} column ${i + 1}`).toContainEqual({ oid: f.tableID, attnum: f.columnID });
      });
      compared++;
    }
    expect(compared).toBeGreaterThan(60);
  });

  it('reads the search_path the server shows', async () => {
    await client.query('SET search_path = App, "My ""Schema"" X", "$user", public');
    const shown = (await client.query<{ search_path: string }>('SHOW search_path')).rows[0]?.search_path ?? '';
    await client.query('RESET search_path');
    expect(parseSearchPath(shown)).toEqual(['app', 'My "Schema" X', '$user', 'public']);
  });

  it('loads a statement once, then answers from its cache', async () => {
    const catalog = new PgCatalog(runner);
    await sources(catalog, 'select domain, lower(domain) from email_domains');
    const before = runner.count;
    await sources(catalog, 'select domain, lower(domain) from email_domains');
    expect(runner.count).toBe(before);
  });

  it('tells built-ins that compute from their arguments from functions that may read tables', async () => {
    const catalog = new PgCatalog(runner);
    await catalog.load([
      { what: 'function', schema: 'pg_catalog', name: 'lower' },
      { what: 'function', schema: 'pg_catalog', name: 'count' },
      { what: 'function', schema: 'pg_catalog', name: 'query_to_xml' },
      { what: 'function', schema: 'pg_catalog', name: 'jsonb_each' },
      { what: 'function', schema: 'public', name: 'leak' },
      { what: 'function', schema: 'public', name: 'keep' },
    ]);
    expect(catalog.functions('pg_catalog', 'lower')?.every((f) => !f.mayReadTables && f.volatility === 'immutable')).toBe(true);
    expect(catalog.functions('pg_catalog', 'count')?.map((f) => f.kind)).toContain('aggregate');
    expect(catalog.functions('pg_catalog', 'query_to_xml')?.every((f) => f.mayReadTables)).toBe(true);
    expect(catalog.functions('pg_catalog', 'jsonb_each')?.[0]?.outputColumns).toEqual(['key', 'value']);
    expect(catalog.functions('public', 'leak')).toEqual([expect.objectContaining({ language: 'sql', volatility: 'stable', mayReadTables: true, argCount: 1 })]);
    expect(catalog.functions('public', 'keep')?.[0]?.kind).toBe('procedure');
    expect(catalog.functions('public', 'lower')).toEqual([]);
    const info = (await sources(catalog, "select column_name from information_schema.columns where table_name = 'customers'"))[0];
    expect(info?.certain, info?.reasons.join('; ')).toBe(true);
  });

  it('reads relations, their kinds and columns, and view definitions with every name qualified', async () => {
    // The connection's own search_path must not change how definitions are printed.
    await client.query('SET search_path = public, app');
    const catalog = new PgCatalog(runner);
    await catalog.load(['customers', 'nested', 'mv_emails', 'orders'].map((name) => ({ what: 'relation' as const, schema: 'public', name })));
    expect(catalog.relation('public', 'customers')).toMatchObject({ kind: 'table', columns: [{ name: 'id', attnum: 1 }, { name: 'email', attnum: 2 }, { name: 'name', attnum: 3 }, { name: 'created', attnum: 4 }] });
    expect(catalog.relation('app', 'customers')).toMatchObject({ kind: 'table', columns: [{ name: 'id', attnum: 1 }, { name: 'email', attnum: 2 }] });
    expect(catalog.relation('public', 'nested')?.definition).toMatch(/public\.customer_emails/);
    expect(catalog.relation('public', 'mv_emails')).toMatchObject({ kind: 'matview', definition: expect.stringMatching(/public\.customers/) });
    expect(catalog.relation('public', 'nosuch')).toBeUndefined();
    expect(catalog.relation('app', 'orders')).toBeNull();
    // Fixed for its own statement only.
    expect((await client.query<{ search_path: string }>('SHOW search_path')).rows[0]?.search_path).toBe('public, app');
    const plan = (await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN SELECT 1 FROM pg_catalog.pg_class c WHERE (SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true)) IS NOT NULL AND c.relname = ANY ($1::name[])`, [['x']])).rows;
    expect(plan.map((r) => r['QUERY PLAN']).join('\n')).toMatch(/One-Time Filter/);
    await client.query('RESET search_path');
  });

  it('reads a changed view again once invalidated', async () => {
    const catalog = new PgCatalog(runner);
    const emailOf = async (): Promise<string | undefined> => {
      const s = (await sources(catalog, 'select email from customer_emails'))[0]?.results[0]?.columns[0];
      return s?.kind === 'column' ? nameOf(s.oid, s.attnum) : s?.kind;
    };
    expect(await emailOf()).toBe('customers.email');
    await client.query('CREATE OR REPLACE VIEW public.customer_emails AS SELECT id, name AS email FROM public.customers');
    try {
      expect(await emailOf()).toBe('customers.email');
      const version = catalog.version;
      catalog.invalidate();
      expect(catalog.version).toBe(version + 1);
      expect(await emailOf()).toBe('customers.name');
    } finally {
      await client.query('CREATE OR REPLACE VIEW public.customer_emails AS SELECT id, email FROM public.customers');
    }
  });

  it('caches the sources of a text per session naming until the catalog changes', async () => {
    const catalog = new PgCatalog(runner);
    const cache = new ColumnSourcesCache(analyser, catalog);
    const text = "select email from customer_emails; select 'a\\b' || email from customers";
    const first = await cache.sources(text, SESSION);
    if (!first.ok) throw new Error(first.message);
    // A backslash in a plain string: the text has a second reading, analysed too.
    expect(first.readings.length).toBe(2);
    expect(first.readings[0]?.map((s) => s.results[0]?.columns[0]?.kind)).toEqual(['column', 'expression']);
    const before = runner.count;
    expect(await cache.sources(text, SESSION)).toBe(first);
    expect(runner.count).toBe(before);
    const other = await cache.sources(text, { ...SESSION, searchPath: ['app', 'public'] });
    expect(other).not.toBe(first);
    catalog.invalidate();
    const again = await cache.sources(text, SESSION);
    expect(again).not.toBe(first);
    expect(again).toEqual(first);
    expect(await cache.sources('select from where', SESSION)).toMatchObject({ ok: false, code: '42601' });
  });

  it('drops a load that an invalidation overtook', async () => {
    const catalog = new PgCatalog(runner);
    const loading = catalog.load([{ what: 'relation', schema: 'public', name: 'orders' }]);
    catalog.invalidate();
    await loading;
    expect(catalog.relation('public', 'orders')).toBeUndefined();
  });
});
