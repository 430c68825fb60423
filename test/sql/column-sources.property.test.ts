/**
 * Random queries over SCHEMA_SQL (tables, a view, subqueries in FROM, joins, expressions, whole
 * rows, scalar subqueries, set operations) run on the real server: the analysis is sure of each,
 * every column it calls plain is the one RowDescription names, and every column the server names
 * is among those it says are read.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import fc from 'fast-check';
import pg from 'pg';
import { SqlAnalyser } from '../../plugins/sql/analyser.js';
import { PgCatalog } from '../../plugins/sql/catalog.js';
import { loadColumnSources } from '../../plugins/sql/column-sources.js';
import { attachPgCluster } from '../support/pg-cluster.js';
import { SCHEMA_SQL } from './column-sources-cases.js';

const cluster = attachPgCluster(inject('pg'));
const DATABASE = 'sql_sources_property_test';

let client: pg.Client;
let catalog: PgCatalog;
let analyser: SqlAnalyser;
const viewOids = new Set<number>();

beforeAll(async () => {
  await cluster.psql(`DROP DATABASE IF EXISTS ${DATABASE}; CREATE DATABASE ${DATABASE};`);
  client = new pg.Client({ connectionString: cluster.url({ database: DATABASE }) });
  await client.connect();
  await client.query(SCHEMA_SQL);
  catalog = new PgCatalog({
    query: async (sql, params = []) => ({ rows: (await client.query<Record<string, unknown>>(sql, [...params])).rows }),
    exec: async (sql) => void (await client.query(sql)),
  });
  analyser = await SqlAnalyser.load();
  for (const r of (await client.query<{ oid: string }>("SELECT oid::int8 AS oid FROM pg_class WHERE relkind IN ('v', 'm')")).rows) viewOids.add(Number(r.oid));
});

afterAll(async () => {
  await client.end();
  await cluster.psql(`DROP DATABASE IF EXISTS ${DATABASE}`);
});

const TABLES = {
  customers: ['id', 'email', 'name', 'created'],
  orders: ['id', 'customer_id', 'amount'],
  customer_emails: ['id', 'email'],
  'app.customers': ['id', 'email'],
} as const;
type Table = keyof typeof TABLES;

interface FromItem {
  readonly sql: string;
  readonly alias: string;
  readonly columns: readonly string[];
  /** A table or view (so `(t).c` and whole-row references make sense as the server reads them). */
  readonly relation: boolean;
}

const table = fc.constantFrom(...(Object.keys(TABLES) as Table[]));

function fromItem(alias: string): fc.Arbitrary<FromItem> {
  const plain = table.map((t): FromItem => ({ sql: `${t} ${alias}`, alias, columns: TABLES[t], relation: true }));
  const sub = table.chain((t) =>
    fc.subarray([...TABLES[t]], { minLength: 1 }).chain((cols) =>
      fc.array(fc.boolean(), { minLength: cols.length, maxLength: cols.length }).map((renames): FromItem => {
        const names = cols.map((c, i) => (renames[i] === true ? `${c}_r` : c));
        const list = cols.map((c, i) => (renames[i] === true ? `x.${c} AS ${c}_r` : `x.${c}`)).join(', ');
        return { sql: `(SELECT ${list} FROM ${t} x) ${alias}`, alias, columns: names, relation: false };
      }),
    ),
  );
  return fc.oneof(plain, sub);
}

function expression(items: readonly FromItem[]): fc.Arbitrary<string> {
  const col = fc.constantFrom(...items.flatMap((i) => i.columns.map((c) => `${i.alias}.${c}`)));
  const rel = items.filter((i) => i.relation);
  const options: fc.Arbitrary<string>[] = [
    col,
    col,
    col.map((c) => `${c} || ''`),
    col.map((c) => `lower(${c}::text)`),
    fc.tuple(col, col).map(([a, b]) => `coalesce(${a}::text, ${b}::text)`),
    fc.tuple(table, fc.nat(3)).map(([t, i]) => `(SELECT max(s.${TABLES[t][i % TABLES[t].length] ?? 'id'}::text) FROM ${t} s)`),
    col.map((c) => `count(*) OVER (PARTITION BY ${c})`),
    fc.constantFrom(...items.map((i) => `${i.alias}.*`)),
  ];
  if (rel.length > 0) {
    options.push(fc.constantFrom(...rel.map((i) => `row_to_json(${i.alias})`)));
    options.push(fc.constantFrom(...rel.flatMap((i) => i.columns.map((c) => `(${i.alias}).${c}`))));
  }
  return fc.oneof(...options);
}

const query: fc.Arbitrary<string> = fc
  .tuple(fromItem('t1'), fc.option(fromItem('t2')))
  .chain(([a, b]) => {
    const items = b === null ? [a] : [a, b];
    const from = b === null ? a.sql : `${a.sql} JOIN ${b.sql} ON t1.${a.columns[0] ?? 'id'}::text = t2.${b.columns[0] ?? 'id'}::text`;
    return fc.tuple(fc.array(expression(items), { minLength: 1, maxLength: 4 }), fc.boolean()).map(([exprs, union]) => {
      const select = `SELECT ${exprs.join(', ')} FROM ${from}`;
      return union && !exprs.some((e) => e.endsWith('.*') || e.startsWith('row_to_json') || e.includes('OVER')) ? `${select} UNION ALL ${select}` : select;
    });
  });

describe('column sources of random queries', () => {
  it('agree with the server', async () => {
    await fc.assert(
      fc.asyncProperty(query, async (sql) => {
        const { fields } = await client.query(sql);
        const parsed = analyser.analyse(sql);
        if (!parsed.ok) throw new Error(parsed.message);
        const sources = (await loadColumnSources(parsed.readings[0] ?? [], {
          catalog, analyser, session: { searchPath: ['$user', 'public'], user: 'postgres', tempSchema: null },
        }))[0];
        expect(sources?.certain, sources?.reasons.join('; ')).toBe(true);
        const cols = sources?.results[0]?.columns ?? [];
        expect(cols.length).toBe(fields.length);
        fields.forEach((f, i) => {
          const ours = cols[i];
          if (viewOids.has(f.tableID)) return;
          if (ours?.kind === 'column') expect([f.tableID, f.columnID], `column ${i + 1}`).toEqual([ours.oid, ours.attnum]);
          else if (f.columnID !== 0) expect(ours?.reads, `column ${i + 1}`).toContainEqual({ oid: f.tableID, attnum: f.columnID });
        });
      }),
      { numRuns: 200 },
    );
  });
});
