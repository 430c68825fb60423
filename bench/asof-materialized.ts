/**
 * `materialized`: an as-of read served from a materialised version, against the same read served
 * now through the same proxy in the same run; and what the version costs in bytes per row against
 * the table's own (heap, indexes and TOAST).
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startProxy } from './support/proxy.js';
import { connect, timed } from './asof-read.js';
import { median } from './support/stats.js';
import { fixed, formatTable } from './support/table.js';
import type { AsofCase, AsofContext } from './asof.js';

const MASK = '(v, p) => v === null ? null : v.slice(0, p.keep) + "***"';
const SUFFIX = '(v, p) => v === null ? null : v + p.s';

async function materialized(ctx: AsofContext): Promise<string[]> {
  const { admin, opts, endpoint } = ctx;
  const table = 'asof_mat_people';
  await admin.query(`CREATE TABLE ${table} (id integer PRIMARY KEY, email text, name text);
    INSERT INTO ${table} SELECT g, 'person' || g || '@example.com', 'name ' || g FROM pg_catalog.generate_series(1, ${opts.rows}) g`);
  await admin.query(`SELECT provenance.register_transform('bench_mat_mask', $1, ARRAY['email'], $2, '{"keep": 3}')`, [table, MASK]);
  await admin.query(`SELECT provenance.register_transform('bench_mat_suffix', $1, ARRAY['email'], $2, '{"s": "!"}')`, [table, SUFFIX]);
  const p = await startProxy({
    upstream: `postgres://${endpoint.host}:${endpoint.port}/postgres?sslmode=disable`,
    dataDir: join(ctx.root, 'proxy-materialized'),
    login: { user: endpoint.user, password: endpoint.password },
    extraArgs: [],
  });
  ctx.cleanup.add('stop provenance-proxy (materialized)', () => p.service.stop());
  const sql = `SELECT id, email, name FROM ${table}`;
  const nowClient = await connect(ctx, p, null);
  await timed(ctx, nowClient, sql, 'read now');
  const at = (await admin.query<{ m: string }>('SELECT pg_catalog.clock_timestamp()::text AS m')).rows[0]!.m;
  await new Promise((r) => setTimeout(r, 20));
  const maker = await connect(ctx, p, null);
  const t0 = performance.now();
  // The proxy answers the call itself, under the function's name whatever the alias: read by position.
  const made = await maker.query<unknown[]>({ text: 'SELECT provenance.materialize($1, $2)', values: [table, at], rowMode: 'array' });
  const id = String(made.rows[0]?.[0]);
  const makeMs = performance.now() - t0;
  const mat = await connect(ctx, p, null);
  await mat.query(`SET provenance.as_of = '${at}'`);
  await timed(ctx, mat, sql, 'as of, from the materialised version');
  const served = (await mat.query<Record<string, string>>('SHOW provenance.last_read')).rows[0];
  const how = served === undefined ? '?' : Object.values(served).join(' ');
  if (!/materiali[sz]ed/.test(how)) ctx.note(`the as-of read was not served from the materialised version: last_read says "${how}"`);
  for (const [label, c] of [['now', nowClient], ['materialized', mat]] as const) {
    const r = await c.query<{ email: string }>(sql);
    const bad = r.rows.filter((x) => !/^per\*\*\*!$/.test(x.email)).length;
    if (bad > 0) ctx.note(`${label}: ${bad} rows not served through the chain`);
  }
  const times = { now: [] as number[], mat: [] as number[] };
  const runs = Math.max(opts.runs * 3, 9);
  for (let round = 0; round < runs; round++) {
    times.now.push(await timed(ctx, nowClient, sql, 'read now'));
    times.mat.push(await timed(ctx, mat, sql, 'as of, materialised'));
  }
  const now = median(times.now);
  const row = (label: string, v: number[]): string[] => {
    const m = median(v);
    return [label, fixed(m, 1), fixed(Math.min(...v), 1), fixed(Math.max(...v), 1), fixed(m === undefined || now === undefined ? undefined : m / now, 2)];
  };
  const ratio = (median(times.mat) ?? NaN) / (now ?? NaN);
  const sizes = (await admin.query<{ mat: string; own: string }>(
    `SELECT (SELECT m.bytes FROM provenance.materializations m WHERE m.id = $1)::text AS mat,
            pg_catalog.pg_total_relation_size($2::regclass)::text AS own`, [id, table])).rows[0]!;
  const perRow = (bytes: string): number => Number(bytes) / opts.rows;
  return [
    `as-of reads served from a materialised version: "${sql}" (${opts.rows} rows, a chain of two column transforms on email)`,
    `  ${runs} interleaved runs each, milliseconds; the version was made in ${fixed(makeMs, 0)} ms (provenance.materialize through the proxy)`,
    formatTable(['read', 'median', 'min', 'max', '/ now'],
      [row('served now', times.now), row('as of, materialised', times.mat)],
      ['left', 'right', 'right', 'right', 'right']),
    `  bytes per row: materialised version ${fixed(perRow(sizes.mat), 1)}, the table itself ${fixed(perRow(sizes.own), 1)}`
      + ` (${fixed(Number(sizes.mat) / Number(sizes.own), 2)}x)`,
    `target: materialised / now <= 1.1: ${fixed(ratio, 2)} -> ${Number.isNaN(ratio) ? 'NO RESULT' : ratio <= 1.1 ? 'MET' : 'NOT MET'}`,
  ];
}

export const READ_MATERIALIZED: AsofCase = {
  name: 'materialized',
  summary: 'the same read as of a moment served from a materialised version vs served now, and its bytes per row vs the table\'s',
  run: materialized,
};
