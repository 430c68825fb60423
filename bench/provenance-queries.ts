/**
 * provenance-queries: how the provenance query API answers over a large execution record. A private
 * PostgreSQL cluster gets the `provenance` schema by the proxy's own migrations, N generated
 * executions (inserted with the writer's indexes in place, as the proxy would), then each query
 * runs with varied realistic arguments. Latencies are shown against a primary-key lookup measured
 * in the same run, with each query's EXPLAIN (ANALYZE, BUFFERS) summary.
 */
import { statfs } from 'node:fs/promises';
import { availableParallelism, tmpdir, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { migrate, type SqlRunner } from '../plugins/registry/migrate.js';
import { STORE_SHARED_PARTS } from '../plugins/provenance/execution-insert.js';
import { CONTEXT_KEY, STATEMENT_KEY, TRANSFORM_KEY } from '../plugins/registry/schema-lineage.js';
import { mulberry32 } from '../test/support/rng.js';
import type { Cleanup } from './support/cleanup.js';
import { benchEnvironment, defineSuite, finishReport, log, parseNamedOptions, positiveInt, quickRun } from './support/suite-runner.js';
import { median, percentileSorted } from './support/stats.js';
import { fixed, formatTable } from './support/table.js';

const USAGE = `Usage: npm run bench -- provenance-queries [options]

Generates N transform executions in the provenance record (about 50 transforms, 200 tables, chains
of 1 to 3 per table, some results joining two tables, 30 days of executed_at) on a private
PostgreSQL cluster, then times the provenance query functions and the dag_edges view with varied
realistic arguments against a primary-key lookup, and shows EXPLAIN (ANALYZE, BUFFERS) for each.

  --rows N     executions to generate                  (default 10000000; 200000 with BENCH_QUICK=1)
  --runs R     timed runs per query, each with another argument; median and p95
                                                       (default 25; 7 with BENCH_QUICK=1)
  --batch B    executions per generating INSERT        (default 250000)
  --help       show this text

Needs PostgreSQL server binaries; starts its own cluster and removes it afterwards. Disk: about
1.2 kB per execution (table and indexes) plus up to 8 GB of WAL; 10M executions take a quarter of
an hour or so to generate.
`;

interface Options {
  rows: number;
  runs: number;
  batch: number;
}

function parseOptions(args: readonly string[]): Options | 'help' {
  const values = parseNamedOptions(args, ['rows', 'runs', 'batch'] as const);
  if (values === 'help') return 'help';
  // Quick mode only changes defaults, so `BENCH_QUICK=1 ... --rows N` still generates N.
  const quick = quickRun();
  return {
    rows: positiveInt('rows', values.rows, quick ? 200_000 : 10_000_000),
    runs: positiveInt('runs', values.runs, quick ? 7 : 25),
    batch: positiveInt('batch', values.batch, 250_000),
  };
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Server settings for a table of several gigabytes: the test clusters' 32 MB of shared buffers
 * would measure the kernel's page cache, and frequent checkpoints would slow the generation.
 */
const SERVER_SETTINGS: Readonly<Record<string, string>> = {
  shared_buffers: '1GB',
  max_wal_size: '8GB',
  checkpoint_timeout: '30min',
  maintenance_work_mem: '512MB',
};

/** Rough disk use, to refuse early rather than fill the disk: per execution (heap and indexes), and WAL (max_wal_size). */
const BYTES_PER_ROW_ON_DISK = 1200;
const WAL_BYTES = 8 * 1024 ** 3;

// --- the generated record ---

const SPAN_DAYS = 30;
const START = '2025-01-01T00:00:00Z';
const TRANSFORMS = 50;
const TABLES = 200;

/**
 * Executions come in blocks of 12 making 5 results: a chain of 3 on one table, a chain of 1, a
 * chain of 2, a join (a chain of 2 on one table and of 1 on another), and another chain of 3. Each
 * array below is indexed by the position in the block (1-based, as SQL arrays are).
 */
const BLOCK = {
  size: 12,
  results: 5,
  result: [0, 0, 0, 1, 2, 2, 3, 3, 3, 4, 4, 4],
  depth: [1, 2, 3, 1, 1, 2, 1, 2, 1, 1, 2, 3],
  end: [false, false, true, true, false, true, false, true, true, false, false, true],
  /** 1: the second table of a join */
  joined: [0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0],
} as const;

const sqlArray = (values: readonly (number | boolean)[]): string => `ARRAY[${values.join(', ')}]`;

/**
 * Executions $1..$2. Execution i (from 1) is block (i-1)/12, position (i-1)%12+1. A result reads
 * a pseudo-random table (and a second for the join); a table's chain is fixed (its transforms are
 * chosen by table and depth) and each transform's version, hence function hash, changes every ten
 * days. executed_at grows with i over the 30 days, as an append-only record does. A chain's first
 * input is its table's data, which changes every 5000 executions; later inputs are the parent's
 * output; outputs are sha256(i).
 *
 * Written as the proxy's writer stores them (plugins/provenance/execution-insert.ts): each shared
 * part (transform, context, statement) once under its key, and a slim row per execution. Through
 * the compatibility view `provenance.execution` every row would run its trigger.
 */
function generateSql(rows: number): string {
  const secondsPerRow = (SPAN_DAYS * 86_400) / rows;
  return `
WITH r AS MATERIALIZED (
SELECT r.*, ${TRANSFORM_KEY} AS tk, ${CONTEXT_KEY} AS ck, ${STATEMENT_KEY} AS sk FROM (
SELECT md5('e' || i)::uuid AS id, md5('r' || res)::uuid AS result_id,
       CASE WHEN depth > 1 THEN md5('e' || (i - 1))::uuid END AS parent_id, chain_end,
       'transform_' || lpad(fn::text, 2, '0') AS transform_name, version::integer AS transform_version,
       encode(sha256(convert_to('transform_' || fn || ':' || version, 'UTF8')), 'hex') AS function_hash,
       (16384 + tbl)::oid AS table_oid, 'public.table_' || lpad(tbl::text, 3, '0') AS table_name,
       CASE WHEN fn % 5 <> 0 THEN ARRAY['col_' || fn % 7] END AS columns,
       CASE WHEN depth = 1 THEN sha256(convert_to('data:' || tbl || ':' || i / 5000, 'UTF8'))
            ELSE sha256((i - 1)::text::bytea) END AS input_hash,
       sha256(i::text::bytea) AS output_hash,
       1 + res % 200 AS rows_in, CASE WHEN fn % 5 = 0 THEN res % 200 ELSE 1 + res % 200 END AS rows_out,
       at AS executed_at, 0.05 + (i % 1000) / 500.0 AS duration_ms,
       '10.1.' || res % 16 || '.' || res % 251 AS client_addr, 32768 + (res % 28000)::int AS client_port,
       'app_user_' || res % 40 AS user_name, 'app_user_' || res % 40 AS current_role_name,
       ARRAY['app_user_' || res % 40, 'app_readers'] AS roles,
       'app' AS database, 'service_' || res % 12 AS application_name,
       to_hex(1735689600 + res / 40) || '.' || to_hex(res % 40) AS session_id,
       left(md5('q' || res % 300), 16) AS statement_fingerprint,
       'SELECT id, name, email, iban FROM public.table_' || lpad(tbl::text, 3, '0') || ' WHERE region = $1 AND created_at > $2'
         AS statement_text,
       jsonb_build_array('region_' || res % 9, '2025-01-01') AS params,
       CASE WHEN res % 100 = 0 THEN 'replay' ELSE 'read' END AS kind,
       CASE WHEN i % 1000 = 999 THEN 'error' ELSE 'complete' END AS outcome,
       CASE WHEN i % 1000 = 999 THEN 'transform threw: TypeError: Cannot read properties of null' END AS error,
       md5('trace' || res) AS trace_id, left(md5('span' || i), 16) AS span_id, 'proxy-' || res % 3 AS proxy_id,
       at + interval '40 ms' AS recorded_at,
       CASE WHEN res % 100 = 0 THEN at - interval '1 day' END AS as_of,
       NULL::uuid AS qk, NULL::text AS exact_text, NULL::oid[] AS exact_types, NULL::int2[] AS exact_formats,
       NULL::bytea[] AS exact_values, NULL::text AS exact_refusal
  FROM generate_series($1::bigint, $2::bigint) AS i
 CROSS JOIN LATERAL (SELECT (i - 1) / ${BLOCK.size} AS block, (i - 1) % ${BLOCK.size} + 1 AS pos) b
 CROSS JOIN LATERAL (
   SELECT b.block * ${BLOCK.results} + (${sqlArray(BLOCK.result)})[b.pos] AS res,
          (${sqlArray(BLOCK.depth)})[b.pos] AS depth,
          (${sqlArray(BLOCK.end)})[b.pos] AS chain_end,
          timestamptz '${START}' + (i - 1) * ${secondsPerRow} * interval '1 second' AS at,
          1 + ((i - 1) * ${SPAN_DAYS} / ${rows}) / 10 AS version,
          (${sqlArray(BLOCK.joined)})[b.pos] AS joined) r
 CROSS JOIN LATERAL (SELECT ((r.res * 2654435761) % ${TABLES} + r.joined * 37) % ${TABLES} AS tbl) t
 CROSS JOIN LATERAL (SELECT (t.tbl * 7 + r.depth) % ${TRANSFORMS} AS fn) f
) r
), ${STORE_SHARED_PARTS}
INSERT INTO provenance.execution_log
  (id, result_id, parent_id, chain_end, transform_key, context_key, statement_key, input_hash, output_hash, rows_in, rows_out,
   executed_at, duration_ms, kind, outcome, error, trace_id, span_id, as_of, recorded_at)
SELECT r.id, r.result_id, r.parent_id, r.chain_end, r.tk, r.ck, r.sk, r.input_hash, r.output_hash, r.rows_in, r.rows_out,
       r.executed_at, r.duration_ms, r.kind, r.outcome, r.error, r.trace_id, r.span_id, r.as_of, r.recorded_at
  FROM r`;
}

/** The tables beneath `provenance.execution` (plugins/registry/schema-lineage.ts). */
const LINEAGE_TABLES = ['provenance.execution_log', 'provenance.executed_transform', 'provenance.execution_context', 'provenance.statement'];

// --- the queries ---

/** What one sampled execution offers as realistic arguments. */
interface Sample {
  id: string;
  result_id: string;
  output_hash: string;
  /** the output of a chain end of the same result */
  end_output_hash: string;
  transform_name: string;
  function_hash: string;
  /** without its schema, as an auditor would type it */
  table: string;
  trace_id: string;
  executed_at: Date;
}

interface Query {
  readonly name: string;
  readonly argument: string;
  readonly sql: string;
  readonly params: (s: Sample) => unknown[];
}

const HOUR = 3_600_000;
const around = (s: Sample, ms: number): [Date, Date] => [new Date(s.executed_at.getTime() - ms / 2), new Date(s.executed_at.getTime() + ms / 2)];

const BASELINE: Query = {
  name: 'primary-key lookup (baseline)',
  argument: 'an execution id',
  sql: 'SELECT * FROM provenance.executions WHERE id = $1',
  params: (s) => [s.id],
};

const QUERIES: readonly Query[] = [
  BASELINE,
  { name: 'lineage', argument: 'a result id', sql: 'SELECT * FROM provenance.lineage($1)', params: (s) => [s.result_id] },
  { name: 'lineage_of_output', argument: "a chain end's output hash", sql: 'SELECT * FROM provenance.lineage_of_output($1)', params: (s) => [s.end_output_hash] },
  { name: 'produced', argument: 'an output hash', sql: 'SELECT * FROM provenance.produced($1)', params: (s) => [s.output_hash] },
  { name: 'executions_of', argument: 'transform name, 1 hour', sql: 'SELECT * FROM provenance.executions_of($1, $2, $3)', params: (s) => [s.transform_name, ...around(s, HOUR)] },
  { name: 'executions_of', argument: 'function hash, 1 hour', sql: 'SELECT * FROM provenance.executions_of($1, $2, $3)', params: (s) => [s.function_hash, ...around(s, HOUR)] },
  { name: 'executions_of', argument: 'transform name, 1 day', sql: 'SELECT * FROM provenance.executions_of($1, $2, $3)', params: (s) => [s.transform_name, ...around(s, 24 * HOUR)] },
  { name: 'table_history', argument: 'table without schema, 1 hour', sql: 'SELECT * FROM provenance.table_history($1, $2, $3)', params: (s) => [s.table, ...around(s, HOUR)] },
  { name: 'table_history', argument: 'table without schema, 1 day', sql: 'SELECT * FROM provenance.table_history($1, $2, $3)', params: (s) => [s.table, ...around(s, 24 * HOUR)] },
  { name: 'dag_edges', argument: 'WHERE result_id = a result id', sql: 'SELECT * FROM provenance.dag_edges WHERE result_id = $1', params: (s) => [s.result_id] },
  { name: 'executions', argument: 'WHERE trace_id = a trace id', sql: 'SELECT * FROM provenance.executions WHERE trace_id = $1', params: (s) => [s.trace_id] },
];

const label = (q: Query): string => `${q.name} (${q.argument})`;

/** A seeded generator in [0, 1): the same samples on every run of the benchmark. */
function random(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 4_294_967_296;
}

/** Executions spread over the whole record, each with the arguments the queries take from it. */
async function pickSamples(client: pg.Client, rows: number, count: number): Promise<Sample[]> {
  const next = random(20_250_101);
  const picks = Array.from({ length: count * 2 }, () => 1 + Math.floor(next() * rows));
  const res = await client.query<Sample & { k: string }>(
    `SELECT k, e.id, e.result_id, encode(e.output_hash, 'hex') AS output_hash,
            (SELECT encode(c.output_hash, 'hex') FROM provenance.execution c
              WHERE c.result_id = e.result_id AND c.chain_end LIMIT 1) AS end_output_hash,
            e.transform_name, e.function_hash, substr(e.table_name, length('public.') + 1) AS "table", e.trace_id, e.executed_at
       FROM unnest($1::bigint[]) WITH ORDINALITY AS p(k, n)
       JOIN provenance.execution e ON e.id = md5('e' || p.k)::uuid
      ORDER BY p.n`,
    [picks],
  );
  // The last block may be cut short by N, leaving a result without a chain end.
  return res.rows.filter((r) => r.end_output_hash !== null).slice(0, count);
}

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Relation Name'?: string;
  'Shared Hit Blocks'?: number;
  'Shared Read Blocks'?: number;
  Plans?: PlanNode[];
}

interface Explained {
  Plan: PlanNode;
  'Planning Time': number;
  'Execution Time': number;
  JIT?: { Timing?: { Total?: number } };
}

/**
 * Planning and execution time inside the server, rows produced but not sent: what the database
 * spends, without the transfer and the client's decoding of every row.
 */
async function serverMs(client: pg.Client, q: Query, s: Sample): Promise<number> {
  const res = await client.query<{ 'QUERY PLAN': Explained[] }>(`EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) ${q.sql}`, q.params(s));
  const top = res.rows[0]?.['QUERY PLAN'][0];
  if (!top) throw new Error('no plan');
  return top['Planning Time'] + top['Execution Time'];
}

/** "Index Scan using execution_output, Bitmap Index Scan on execution_result; shared hit 9 read 0; plan 0.3 ms, run 0.1 ms" */
async function explainSummary(client: pg.Client, q: Query, s: Sample): Promise<string> {
  const res = await client.query<{ 'QUERY PLAN': Explained[] }>(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${q.sql}`, q.params(s));
  const top = res.rows[0]?.['QUERY PLAN'][0];
  if (!top) return 'no plan';
  const scans: string[] = [];
  const walk = (n: PlanNode): void => {
    const t = n['Node Type'];
    if (n['Index Name']) scans.push(`${t} ${t.startsWith('Bitmap') ? 'on' : 'using'} ${n['Index Name']}`);
    else if (/Seq Scan|Function Scan/.test(t)) scans.push(`${t} on ${n['Relation Name'] ?? '?'}`);
    for (const child of n.Plans ?? []) walk(child);
  };
  walk(top.Plan);
  return (
    `${[...new Set(scans)].join(', ')}; shared hit ${top.Plan['Shared Hit Blocks'] ?? 0} read ${top.Plan['Shared Read Blocks'] ?? 0}; ` +
    `plan ${top['Planning Time'].toFixed(2)} ms, run ${top['Execution Time'].toFixed(2)} ms` +
    (top.JIT ? ` (JIT ${fixed(top.JIT.Timing?.Total, 2)} ms of it)` : '')
  );
}

function bytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  return `${(n / 1024 ** 2).toFixed(1)} MiB`;
}

function seconds(ms: number): string {
  return ms >= 120_000 ? `${(ms / 60_000).toFixed(1)} min` : `${(ms / 1000).toFixed(1)} s`;
}

// --- the benchmark ---

async function benchmark(opts: Options, cleanup: Cleanup): Promise<number> {
  const fs = await statfs(tmpdir());
  const free = fs.bavail * fs.bsize;
  const need = opts.rows * BYTES_PER_ROW_ON_DISK + WAL_BYTES;
  if (free < need) {
    process.stderr.write(`bench provenance-queries: ${opts.rows} executions need about ${bytes(need)} in ${tmpdir()}, which has ${bytes(free)} free\n`);
    return 1;
  }

  const { problems, note, cluster } = await benchEnvironment(cleanup);
  await cluster.psql(Object.entries(SERVER_SETTINGS).map(([k, v]) => `ALTER SYSTEM SET ${k} = '${v}';`).join('\n'));
  await cluster.stop();
  await cluster.start();
  cleanup.checkpoint();

  const client = new pg.Client({ connectionString: cluster.url(), ssl: false, application_name: 'bench-provenance-queries' });
  client.on('error', (err) => note(`connection: ${err.message}`));
  await client.connect();
  cleanup.add('close the connection', async () => {
    await client.end().catch(() => undefined);
  });
  const runner: SqlRunner = {
    async query(sql, params = []) {
      return { rows: (await client.query<Record<string, unknown>>(sql, [...params])).rows };
    },
    async exec(sql) {
      await client.query(sql);
    },
  };
  const applied = await migrate(runner, 'bench');
  log(`migrations applied: ${applied.join(', ')}`);
  const serverVersion = (await client.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v ?? '?';

  // Generation, batch by batch, with the writer's indexes in place.
  log(`generating ${opts.rows} executions in batches of ${opts.batch}`);
  const insert = generateSql(opts.rows);
  const genStart = performance.now();
  for (let from = 1; from <= opts.rows; from += opts.batch) {
    cleanup.checkpoint();
    const to = Math.min(opts.rows, from + opts.batch - 1);
    await client.query(insert, [from, to]);
    const elapsed = performance.now() - genStart;
    const rate = to / (elapsed / 1000);
    log(`generated ${to}/${opts.rows} (${fixed(rate, 0)} executions/s, ${seconds(elapsed)} so far, about ${seconds(((opts.rows - to) / rate) * 1000)} to go)`);
  }
  const generateMs = performance.now() - genStart;
  log('VACUUM (ANALYZE) and CHECKPOINT');
  const vacuumStart = performance.now();
  await client.query(`VACUUM (ANALYZE) ${LINEAGE_TABLES.join(', ')}`);
  const vacuumMs = performance.now() - vacuumStart;
  // Nothing left for the background writer or autovacuum to do while queries are timed.
  await client.query('CHECKPOINT');

  const sizes = await client.query<{ name: string; size: string }>(
    `SELECT 'tables (heap and TOAST)' AS name, sum(pg_table_size(t::regclass)) AS size FROM unnest($1::text[]) AS t
     UNION ALL
     SELECT c.relname, pg_relation_size(c.oid)
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE i.indrelid = ANY ($1::text[]::regclass[])`,
    [LINEAGE_TABLES],
  );
  const count = Number((await client.query<{ n: string }>('SELECT count(*) AS n FROM provenance.execution')).rows[0]?.n ?? 0);
  if (count !== opts.rows) note(`provenance.execution holds ${count} executions, expected ${opts.rows}`);

  // Every query of every run takes its arguments from another execution, and so does each
  // server-side measurement, so no query finds pages another one just read; one more for EXPLAIN.
  const perPass = opts.runs * QUERIES.length;
  const wanted = 2 * perPass + 1;
  const samples = await pickSamples(client, opts.rows, wanted);
  if (samples.length < wanted) throw new Error(`only ${samples.length} usable samples for ${wanted} measurements`);
  const sample = (run: number, query: number, server: boolean): Sample => samples[(server ? perPass : 0) + run * QUERIES.length + query]!;
  const explainSample = samples[2 * perPass]!;

  // Untimed warm-up: one call of each, so the first timed run does not pay for catalog lookups.
  for (const q of QUERIES) await client.query(q.sql, q.params(explainSample));

  const times = new Map<Query, number[]>(QUERIES.map((q) => [q, []]));
  const serverTimes = new Map<Query, number[]>(QUERIES.map((q) => [q, []]));
  const rowCounts = new Map<Query, number[]>(QUERIES.map((q) => [q, []]));
  log(`${QUERIES.length} queries x ${opts.runs} runs`);
  for (let run = 0; run < opts.runs; run++) {
    cleanup.checkpoint();
    // Queries take turns, first one rotating per run, so drift hits all of them alike.
    for (let i = 0; i < QUERIES.length; i++) {
      const qi = (i + run) % QUERIES.length;
      const q = QUERIES[qi]!;
      const params = q.params(sample(run, qi, false));
      const t0 = performance.now();
      let res: pg.QueryResult;
      try {
        res = await client.query(q.sql, params);
      } catch (err) {
        note(`${label(q)} run ${run + 1}: ${message(err)}`);
        continue;
      }
      const ms = performance.now() - t0;
      // Every argument comes from an existing execution, so an empty answer is a wrong one.
      if (res.rows.length === 0) note(`${label(q)} run ${run + 1}: no rows for ${JSON.stringify(params)}`);
      times.get(q)!.push(ms);
      rowCounts.get(q)!.push(res.rows.length);
      try {
        serverTimes.get(q)!.push(await serverMs(client, q, sample(run, qi, true)));
      } catch (err) {
        note(`${label(q)} run ${run + 1}, EXPLAIN ANALYZE: ${message(err)}`);
      }
    }
  }

  log('EXPLAIN (ANALYZE, BUFFERS)');
  const plans = new Map<Query, string>();
  for (const q of QUERIES) plans.set(q, await explainSummary(client, q, explainSample).catch((err: unknown) => `EXPLAIN failed: ${message(err)}`));

  // --- report (stdout) ---
  const out: string[] = [];
  out.push('provenance-proxy provenance-queries benchmark');
  out.push(
    `  PostgreSQL ${serverVersion} (private cluster, fsync=off, ${Object.entries(SERVER_SETTINGS).map(([k, v]) => `${k}=${v}`).join(', ')}); ` +
      `Node ${process.version}; ${availableParallelism()} CPUs, ${bytes(totalmem())} RAM shared by everything`,
  );
  out.push(
    `  ${opts.rows} executions: ${TRANSFORMS} transforms, ${TABLES} tables, ${BLOCK.results} results per ${BLOCK.size} executions ` +
      `(chains of 1-3, one join of two tables in five results), ${SPAN_DAYS} days of executed_at`,
  );
  out.push(
    `  node-postgres, one connection over 127.0.0.1 TCP, extended protocol; ${opts.runs} timed runs per query, each with the ` +
      'arguments of its own execution picked at random (read beforehand, so its own pages may be cached), queries interleaved ' +
      'in rotating order after an untimed warm-up; times include planning and fetching every row; the record was just ' +
      'written, so much of it is in the page cache',
  );
  out.push('');
  out.push(`generation: ${seconds(generateMs)} (${fixed(opts.rows / (generateMs / 1000), 0)} executions/s, the writer's indexes in place); VACUUM (ANALYZE) ${seconds(vacuumMs)}`);
  const sizeRows = sizes.rows.map((r) => [r.name, bytes(Number(r.size))]);
  const total = sizes.rows.reduce((a, r) => a + Number(r.size), 0);
  const indexTotal = sizes.rows.slice(1).reduce((a, r) => a + Number(r.size), 0);
  sizeRows.push(['indexes together', bytes(indexTotal)], ['table and indexes', `${bytes(total)} (${fixed(total / opts.rows, 0)} bytes per execution)`]);
  out.push(formatTable(['relation', 'size'], sizeRows, ['left', 'right']));
  out.push('');

  const baseMedian = median(times.get(BASELINE) ?? []);
  const rows: string[][] = QUERIES.map((q) => {
    const list = times.get(q) ?? [];
    const m = median(list);
    const p95 = percentileSorted(Float64Array.from(list).sort(), 0.95);
    const server = serverTimes.get(q) ?? [];
    return [
      q.name,
      q.argument,
      fixed(median(rowCounts.get(q) ?? []), 0),
      fixed(m, 2),
      fixed(p95, 2),
      m === undefined || baseMedian === undefined || baseMedian === 0 ? 'n/a' : `${(m / baseMedian).toFixed(1)}x`,
      fixed(median(server), 2),
      fixed(percentileSorted(Float64Array.from(server).sort(), 0.95), 2),
    ];
  });
  out.push(
    formatTable(
      ['query', 'argument', 'rows (median)', 'median ms', 'p95 ms', 'vs pk lookup', 'server median ms', 'server p95 ms'],
      rows,
      ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right'],
    ),
  );
  out.push(
    '  median/p95 ms: at the client, from sending the query to the last row decoded by node-postgres; ' +
      'server ms: planning + execution as EXPLAIN (ANALYZE, TIMING OFF) reports them (rows produced, not sent), with other arguments',
  );
  out.push('');
  out.push('EXPLAIN (ANALYZE, BUFFERS) of each query, one more sampled argument:');
  for (const q of QUERIES) out.push(`  ${label(q)}: ${plans.get(q) ?? ''}`);

  return finishReport(out, problems, []);
}

export const suite = defineSuite('provenance-queries', USAGE, parseOptions, benchmark);
