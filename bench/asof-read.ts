/**
 * As-of reads through the proxy, against baselines read through the same proxy in the same run.
 *
 * `replay`: a 10k-row table with a two-transform chain, read whole as of a moment with a cold
 * replay cache (a second proxy started with `--replay-cache-size 0`, so every read recomputes)
 * and with a warm one (repeated reads on a proxy with the default cache), against the same read
 * served now. `versions`: the same table shape with 1k and with 1M history versions (written as
 * random one-row updates would leave them, see asof-lookup.ts), read through the proxy as of its
 * latest and its middle moment.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { startProxy, type RunningProxy } from './support/proxy.js';
import { median } from './support/stats.js';
import { fixed, formatTable } from './support/table.js';
import { HISTORY_START, versionedTable } from './asof-lookup.js';
import type { AsofCase, AsofContext } from './asof.js';

const MASK = '(v, p) => v === null ? null : v.slice(0, p.keep) + "***"';
const SUFFIX = '(v, p) => v === null ? null : v + p.s';

async function proxy(ctx: AsofContext, name: string, extraArgs: readonly string[]): Promise<RunningProxy> {
  const { endpoint } = ctx;
  const p = await startProxy({
    upstream: `postgres://${endpoint.host}:${endpoint.port}/postgres?sslmode=disable`,
    dataDir: join(ctx.root, `proxy-${name}`),
    login: { user: endpoint.user, password: endpoint.password },
    extraArgs,
  });
  ctx.cleanup.add(`stop provenance-proxy (${name})`, () => p.service.stop());
  return p;
}

export async function connect(ctx: AsofContext, p: RunningProxy, asOf: string | null): Promise<pg.Client> {
  const c = new pg.Client({ ...ctx.endpoint, host: p.host, port: p.port, ssl: false, application_name: 'bench-asof-read' });
  await c.connect();
  ctx.cleanup.add('close a client connection', () => c.end().catch(() => undefined));
  if (asOf !== null) await c.query(`SET provenance.as_of = '${asOf}'`);
  return c;
}

/** Milliseconds of one whole read, checked for its row count. */
export async function timed(ctx: AsofContext, c: pg.Client, sql: string, label: string): Promise<number> {
  ctx.cleanup.checkpoint();
  const t0 = performance.now();
  const r = await c.query({ text: sql, rowMode: 'array' });
  const ms = performance.now() - t0;
  if (r.rows.length !== ctx.opts.rows) ctx.note(`${label}: ${r.rows.length} rows, expected ${ctx.opts.rows}`);
  return ms;
}

function verdict(ratio: number | undefined, target: number): string {
  return ratio === undefined || Number.isNaN(ratio) ? 'NO RESULT' : ratio <= target ? 'MET' : 'NOT MET';
}

async function replay(ctx: AsofContext): Promise<string[]> {
  const { admin, opts } = ctx;
  const table = 'asof_read_people';
  await admin.query(`CREATE TABLE ${table} (id integer PRIMARY KEY, email text, name text);
    INSERT INTO ${table} SELECT g, 'person' || g || '@example.com', 'name ' || g FROM pg_catalog.generate_series(1, ${opts.rows}) g`);
  await admin.query(`SELECT provenance.register_transform('bench_mask', $1, ARRAY['email'], $2, '{"keep": 3}')`, [table, MASK]);
  await admin.query(`SELECT provenance.register_transform('bench_suffix', $1, ARRAY['email'], $2, '{"s": "!"}')`, [table, SUFFIX]);
  const warmProxy = await proxy(ctx, 'warm', []);
  const coldProxy = await proxy(ctx, 'cold', ['--replay-cache-size', '0']);
  const sql = `SELECT id, email, name FROM ${table}`;
  const nowClient = await connect(ctx, warmProxy, null);
  await timed(ctx, nowClient, sql, 'read now');
  const at = (await admin.query<{ m: string }>('SELECT pg_catalog.clock_timestamp()::text AS m')).rows[0]!.m;
  await new Promise((r) => setTimeout(r, 20));
  const warm = await connect(ctx, warmProxy, at);
  const cold = await connect(ctx, coldProxy, at);
  await timed(ctx, warm, sql, 'as of, warming the cache');
  await timed(ctx, cold, sql, 'as of, no cache');
  // Every read is served through the chain: the masked and suffixed emails, whichever path served it.
  for (const [label, c] of [['now', nowClient], ['cold', cold], ['warm', warm]] as const) {
    const r = await c.query<{ email: string }>(sql);
    const bad = r.rows.filter((x) => !/^per\*\*\*!$/.test(x.email)).length;
    if (bad > 0) ctx.note(`${label}: ${bad} rows not served through the chain`);
  }
  const times = { now: [] as number[], cold: [] as number[], warm: [] as number[] };
  const runs = Math.max(opts.runs * 3, 9);
  for (let round = 0; round < runs; round++) {
    times.now.push(await timed(ctx, nowClient, sql, 'read now'));
    times.cold.push(await timed(ctx, cold, sql, 'as of, cold cache'));
    times.warm.push(await timed(ctx, warm, sql, 'as of, warm cache'));
  }
  const now = median(times.now);
  const row = (label: string, v: number[]): string[] => {
    const m = median(v);
    return [label, fixed(m, 1), fixed(Math.min(...v), 1), fixed(Math.max(...v), 1), fixed(m === undefined || now === undefined ? undefined : m / now, 2)];
  };
  const cache = async (c: pg.Client): Promise<string> => {
    const st = (await c.query<Record<string, string>>('SHOW provenance.status')).rows[0] ?? {};
    return `${st['replay_cache_hits'] ?? '?'} hits, ${st['replay_cache_misses'] ?? '?'} misses`;
  };
  const caches = `replay cache: warm proxy ${await cache(warm)}; cold proxy ${await cache(cold)}`;
  const coldRatio = (median(times.cold) ?? NaN) / (now ?? NaN);
  const warmRatio = (median(times.warm) ?? NaN) / (now ?? NaN);
  return [
    `as-of reads through the proxy: "${sql}" (${opts.rows} rows, a chain of two column transforms on email)`,
    `  ${runs} interleaved runs each, milliseconds; cold: a proxy with --replay-cache-size 0 (every read recomputes in the sandbox)`,
    formatTable(['read', 'median', 'min', 'max', '/ now'],
      [row('served now', times.now), row('as of, cold cache', times.cold), row('as of, warm cache', times.warm)],
      ['left', 'right', 'right', 'right', 'right']),
    `  ${caches}`,
    `target: cold / now <= 3: ${fixed(coldRatio, 2)} -> ${verdict(coldRatio, 3)}; warm / now <= 1.5: ${fixed(warmRatio, 2)} -> ${verdict(warmRatio, 1.5)}`,
  ];
}

async function versions(ctx: AsofContext): Promise<string[]> {
  const { admin, opts } = ctx;
  const subjects: { label: string; table: string; updates: number }[] = [];
  for (const [label, updates] of [['1k', 1_000], ['1M', 1_000_000]] as const) {
    const table = `asof_read_${label.toLowerCase()}`;
    await versionedTable(ctx, table, updates);
    subjects.push({ label, table, updates });
  }
  const p = await proxy(ctx, 'versions', []);
  const moment = async (offsetMs: number): Promise<string> =>
    (await admin.query<{ m: string }>(`SELECT (timestamptz '${HISTORY_START}' + $1 * interval '1 ms')::text AS m`, [offsetMs])).rows[0]!.m;
  const sessions: { key: string; client: pg.Client; sql: string }[] = [];
  for (const s of subjects) {
    for (const [when, offset] of [['latest', s.updates + 1], ['middle', Math.floor(s.updates / 2)]] as const) {
      sessions.push({ key: `${when}/${s.label}`, client: await connect(ctx, p, await moment(offset)), sql: `SELECT id, v, n FROM ${s.table}` });
    }
  }
  for (const s of sessions) await timed(ctx, s.client, s.sql, `as of ${s.key}, first`);
  const times = new Map<string, number[]>();
  const runs = Math.max(opts.runs * 3, 9);
  for (let round = 0; round < runs; round++) {
    for (const s of sessions) times.set(s.key, [...(times.get(s.key) ?? []), await timed(ctx, s.client, s.sql, `as of ${s.key}`)]);
  }
  const rows = ['latest', 'middle'].map((when) => {
    const small = median(times.get(`${when}/1k`) ?? []);
    const big = median(times.get(`${when}/1M`) ?? []);
    return [when, fixed(small, 1), fixed(big, 1), fixed(small === undefined || big === undefined ? undefined : big / small, 2)];
  });
  const worst = Math.max(...rows.map((r) => Number(r[3])));
  return [
    `as-of reads through the proxy: a ${opts.rows}-row table with 1k or 1M history versions, read whole as of a moment (no transforms)`,
    `  median of ${runs} interleaved runs each, milliseconds at the client`,
    formatTable(['as of', '1k ms', '1M ms', '1M / 1k'], rows, ['left', 'right', 'right', 'right']),
    `target: 1M / 1k <= 1.5: worst ${fixed(worst, 2)} -> ${verdict(worst, 1.5)}`,
  ];
}

export const READ_REPLAY: AsofCase = {
  name: 'replay',
  summary: 'a 10k-row table with a two-transform chain read through the proxy as of a moment, cold and warm replay cache vs served now',
  run: replay,
};

export const READ_VERSIONS: AsofCase = {
  name: 'versions',
  summary: 'a 10k-row table read through the proxy as of a moment with 1k vs 1M history versions',
  run: versions,
};
