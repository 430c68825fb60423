/**
 * asof: what time travel costs. Each case is a function that sets up what it needs in a private
 * PostgreSQL cluster holding the `provenance` schema, measures against a baseline of its own in
 * the same run, and returns its report; the suite runs the cases asked for, in order.
 */
import { availableParallelism } from 'node:os';
import pg from 'pg';
import { migrate, type SqlRunner } from '../plugins/registry/migrate.js';
import { SANDBOX_RUNTIME_VERSION } from '../sandbox/index.js';
import type { Cleanup } from './support/cleanup.js';
import type { Endpoint } from './support/pgbench.js';
import { runCommand } from './support/processes.js';
import { benchEnvironment, clusterBinary, defineSuite, finishReport, log, parseNamedOptions, pgbenchRunOptions, positiveInt, quickRun, UsageError } from './support/suite-runner.js';
import { WRITE_COST } from './asof-write.js';
import { LOOKUP } from './asof-lookup.js';
import { READ_REPLAY, READ_VERSIONS } from './asof-read.js';
import { READ_MATERIALIZED } from './asof-materialized.js';

export interface AsofOptions {
  seconds: number;
  runs: number;
  clients: number;
  rows: number;
  cases: readonly AsofCase[];
}

/** What a case gets: the cluster's superuser connection and endpoint, with the schema migrated. */
export interface AsofContext {
  readonly opts: AsofOptions;
  readonly admin: pg.Client;
  readonly endpoint: Endpoint;
  /** the cluster's pgbench */
  readonly pgbench: string;
  /** scratch directory, removed afterwards */
  readonly root: string;
  readonly cleanup: Cleanup;
  /** log a problem now and list it in the report */
  note(msg: string): void;
}

export interface AsofCase {
  readonly name: string;
  readonly summary: string;
  /** measures and returns the report's lines */
  run(ctx: AsofContext): Promise<string[]>;
}

const CASES: readonly AsofCase[] = [WRITE_COST, LOOKUP, READ_REPLAY, READ_VERSIONS, READ_MATERIALIZED];

const USAGE = `Usage: npm run bench -- asof [options]

What time travel costs, case by case, each against a baseline measured in the same run:
${CASES.map((c) => `  ${c.name.padEnd(12)} ${c.summary}`).join('\n')}

  --cases LIST  cases to run, comma-separated            (default: all)
  --rows N      rows of each table                       (default 10000)
  --seconds N   length of each pgbench run               (default 10; 3 with BENCH_QUICK=1)
  --runs R      interleaved rounds; medians              (default 5; 1 with BENCH_QUICK=1)
  --clients C   pgbench clients (-c)                     (default 4)
  --help        show this text

Needs PostgreSQL server binaries (and pgbench); starts its own cluster and removes it afterwards.
Compares with the periods extension's system versioning where it is installed
(Debian: apt-get install postgresql-15-periods).
`;

function parseCases(v: string | undefined): AsofCase[] {
  if (v === undefined) return [...CASES];
  return v.split(',').map((name) => {
    const c = CASES.find((x) => x.name === name.trim());
    if (!c) throw new UsageError(`--cases: unknown case "${name.trim()}" (expected ${CASES.map((x) => x.name).join(', ')})`);
    return c;
  });
}

function parseOptions(args: readonly string[]): AsofOptions | 'help' {
  const values = parseNamedOptions(args, ['seconds', 'runs', 'clients', 'rows', 'cases'] as const);
  if (values === 'help') return 'help';
  const base = pgbenchRunOptions(values);
  return {
    ...base,
    runs: positiveInt('runs', values.runs, quickRun() ? 1 : 5),
    clients: positiveInt('clients', values.clients, 4),
    rows: positiveInt('rows', values.rows, 10_000),
    cases: parseCases(values.cases),
  };
}

async function benchmark(opts: AsofOptions, cleanup: Cleanup): Promise<number> {
  const { problems, note, root, cluster } = await benchEnvironment(cleanup);
  const endpoint: Endpoint = { host: cluster.host, port: cluster.port, user: cluster.superuser, password: cluster.password, database: 'postgres' };
  const admin = new pg.Client({ ...endpoint, ssl: false, application_name: 'bench-asof' });
  admin.on('error', (err) => note(`admin connection: ${err.message}`));
  await admin.connect();
  cleanup.add('close admin connection', () => admin.end().catch(() => undefined));
  const runner: SqlRunner = {
    async query(sql, params = []) {
      return { rows: (await admin.query<Record<string, unknown>>(sql, [...params])).rows };
    },
    async exec(sql) {
      await admin.query(sql);
    },
  };
  log(`provenance schema: migrations applied: ${(await migrate(runner, SANDBOX_RUNTIME_VERSION)).join(', ')}`);
  const pgbench = clusterBinary(cluster.bindir, 'pgbench');
  const ctx: AsofContext = { opts, admin, endpoint, pgbench, root, cleanup, note };

  const serverVersion = (await admin.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v ?? '?';
  const pgbenchVersion = (await runCommand(pgbench, ['--version'], { timeoutMs: 10_000 })).stdout.trim();
  const out: string[] = [];
  out.push('provenance-proxy time travel benchmark');
  out.push(`  ${pgbenchVersion}; PostgreSQL ${serverVersion} (private cluster, fsync=off, synchronous_commit=off); Node ${process.version}`);
  out.push(`  everything shares this machine's ${availableParallelism()} CPUs`);
  for (const c of opts.cases) {
    log(`case ${c.name}`);
    out.push('');
    out.push(...(await c.run(ctx)));
  }
  return finishReport(out, problems, []);
}

export const suite = defineSuite('asof', USAGE, parseOptions, benchmark);
