/**
 * How reading a table as of a moment scales with its history: two tracked tables of the same rows,
 * one with 1k versions beyond its current rows and one with 1M, read as of their latest moment and
 * as of the middle of their history, in SQL against PostgreSQL directly (the proxy's as-of reads
 * add their own costs on top, in cases of their own).
 *
 * The versions are written straight into the history tables, in the order single-row updates of
 * random rows would have written them (so a row's versions are scattered over the table as they
 * would be), rather than through a million triggered writes.
 */
import { performance } from 'node:perf_hooks';
import { log } from './support/suite-runner.js';
import { median } from './support/stats.js';
import { fixed, formatTable } from './support/table.js';
import type { AsofCase, AsofContext } from './asof.js';

export const HISTORY_START = '2026-01-01 00:00:00+00';

/** Replaces the history of `table` with `updates` single-row updates of random rows, 1 ms apart from HISTORY_START. */
function synthesize(history: string, rows: number, updates: number): string {
  return `DELETE FROM ${history};
    WITH w AS (
      SELECT 0 AS s, g AS id FROM pg_catalog.generate_series(1, ${rows}) g
      UNION ALL
      SELECT s, (pg_catalog.hashint4(s) & 2147483647) % ${rows} + 1 FROM pg_catalog.generate_series(1, ${updates}) s),
    v AS (
      SELECT s, id, timestamptz '${HISTORY_START}' + s * interval '1 ms' AS f,
             pg_catalog.lead(timestamptz '${HISTORY_START}' + s * interval '1 ms') OVER (PARTITION BY id ORDER BY s) AS t FROM w)
    INSERT INTO ${history} (provenance_valid_from, provenance_valid_to, id, v, n)
    SELECT f, t, id, pg_catalog.md5(id::text), s FROM v ORDER BY s, id`;
}

interface Subject {
  readonly label: string;
  readonly table: string;
  readonly history: string;
  readonly updates: number;
}

/**
 * Creates `table` with `ctx.opts.rows` rows, tracks it and gives it `updates` versions beyond them;
 * returns its history table.
 */
export async function versionedTable(ctx: AsofContext, table: string, updates: number): Promise<string> {
  const { admin, opts } = ctx;
  await admin.query(`CREATE TABLE ${table} (id integer PRIMARY KEY, v text, n bigint);
    INSERT INTO ${table} SELECT g, pg_catalog.md5(g::text), 0 FROM pg_catalog.generate_series(1, ${opts.rows}) g`);
  await admin.query('SELECT provenance.track($1)', [table]);
  const history = (await admin.query<{ h: string }>('SELECT history::text AS h FROM provenance.history_table WHERE target_oid = $1::regclass', [table])).rows[0]!.h;
  log(`writing ${updates} versions into the history of ${table}`);
  await admin.query(synthesize(history, opts.rows, updates));
  await admin.query(`UPDATE provenance.history_table SET since = $1 WHERE target_oid = $2::regclass`, [HISTORY_START, table]);
  await admin.query(`VACUUM ANALYZE ${history}`);
  return history;
}

async function lookup(ctx: AsofContext): Promise<string[]> {
  const { admin, opts } = ctx;
  const subjects: Subject[] = [];
  for (const [label, updates] of [['1k', 1_000], ['1M', 1_000_000]] as const) {
    const table = `asof_lookup_${label.toLowerCase()}`;
    subjects.push({ label, table, history: await versionedTable(ctx, table, updates), updates });
  }
  const moments = (s: Subject): [string, string][] => [
    ['latest', `timestamptz '${HISTORY_START}' + ${s.updates + 1} * interval '1 ms'`],
    ['middle', `timestamptz '${HISTORY_START}' + ${Math.floor(s.updates / 2)} * interval '1 ms'`],
  ];
  const reads = (s: Subject, at: string): [string, string][] => [
    ['rows_as_of', `SELECT * FROM provenance.rows_as_of(NULL::${s.table}, ${at})`],
    ['history table', `SELECT * FROM ${s.history} v WHERE (${at}) OPERATOR(pg_catalog.<@) pg_catalog.tstzrange(v.provenance_valid_from, v.provenance_valid_to)`],
  ];
  const times = new Map<string, number[]>();
  const runs = Math.max(opts.runs * 3, 9);
  // Interleaved: each query of each table once per round.
  for (let round = 0; round < runs; round++) {
    for (const s of subjects) {
      for (const [when, at] of moments(s)) {
        for (const [how, sql] of reads(s, at)) {
          ctx.cleanup.checkpoint();
          const t0 = performance.now();
          const r = await admin.query({ text: sql, rowMode: 'array' });
          const ms = performance.now() - t0;
          if (r.rows.length !== opts.rows) ctx.note(`lookup ${s.label} ${when} ${how}: ${r.rows.length} rows, expected ${opts.rows}`);
          // The server's own time, without sending and decoding the rows.
          const plan = await admin.query<{ 'QUERY PLAN': { 'Execution Time': number }[] }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`);
          const server = plan.rows[0]?.['QUERY PLAN'][0]?.['Execution Time'];
          for (const [key, v] of [[`${how}/${when}/${s.label}`, ms], [`server ${how}/${when}/${s.label}`, server ?? NaN]] as const) {
            times.set(key, [...(times.get(key) ?? []), v]);
          }
        }
      }
    }
  }
  const out: string[] = [];
  out.push(`as-of lookups in SQL: a table of ${opts.rows} rows with 1k or 1M history versions beyond them, whole table read as of a moment`);
  out.push(`  median of ${runs} interleaved runs each, milliseconds: as seen by a client on the same machine (all ${opts.rows} rows`);
  out.push('  fetched and decoded by node-postgres), and the server\'s execution time alone (EXPLAIN ANALYZE)');
  const rows: string[][] = [];
  for (const where of ['client', 'server']) {
    for (const [how] of reads(subjects[0]!, 'now()')) {
      for (const [when] of moments(subjects[0]!)) {
        const m = (label: string): number | undefined => median(times.get(`${where === 'server' ? 'server ' : ''}${how}/${when}/${label}`) ?? []);
        const small = m('1k');
        const big = m('1M');
        rows.push([where, how, when, fixed(small, 2), fixed(big, 2), fixed(small === undefined || big === undefined ? undefined : big / small, 2)]);
      }
    }
  }
  out.push(formatTable(['timed at', 'read', 'as of', '1k ms', '1M ms', '1M / 1k'], rows, ['left', 'left', 'left', 'right', 'right', 'right']));
  const worst = Math.max(...rows.map((r) => Number(r[5])));
  out.push(`target: 1M / 1k <= 1.5: worst ${fixed(worst, 2)} -> ${Number.isNaN(worst) ? 'NO RESULT' : worst <= 1.5 ? 'MET' : 'NOT MET'}`);
  return out;
}

export const LOOKUP: AsofCase = {
  name: 'lookup',
  summary: 'a 10k-row table read as of a moment in SQL with 1k vs 1M history versions (latest and middle moments)',
  run: lookup,
};
