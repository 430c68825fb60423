/**
 * provenance: what recording transform executions costs. One table with one column transform, a
 * select-only pgbench workload on it, and three proxies on the same cluster that differ only in
 * --provenance-durability (off, async, sync), run interleaved in the same process so their TPS
 * ratios are comparable; PostgreSQL queried directly is shown for context. Afterwards the async
 * and sync proxies' SHOW provenance.status and the rows in provenance.executions show that the
 * records were really written, against the transactions pgbench completed.
 */
import { writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { migrate, type SqlRunner } from '../plugins/registry/migrate.js';
import { SANDBOX_RUNTIME_VERSION } from '../sandbox/index.js';
import type { Cleanup } from './support/cleanup.js';
import { benchEnvironment, clusterBinary, defineSuite, finishReport, log, parseNamedOptions, pgbenchRunOptions, UsageError } from './support/suite-runner.js';
import { runPgbench, type Endpoint, type PgbenchOutcome, type QueryMode } from './support/pgbench.js';
import { runCommand } from './support/processes.js';
import { startProxy, type RunningProxy } from './support/proxy.js';
import { describeOutcome, ratio, summarize, summaryCells, type Summary } from './support/pgbench-summary.js';
import { median } from './support/stats.js';
import { CpuPerTransaction } from './support/cpu-per-transaction.js';
import { fixed, formatTable } from './support/table.js';

const USAGE = `Usage: npm run bench -- provenance [options]

A select-only pgbench workload (one random primary-key lookup per transaction) on a table with one
column transform, through three provenance-proxy instances on the same cluster that differ only in
--provenance-durability: off, async and sync. Runs are interleaved; PostgreSQL directly is shown
for context. Reports TPS, p50/p99 latency, the async/off and sync/off TPS ratios, and the CPU per
transaction of each proxy and of the PostgreSQL server (all its processes, the records' writes
included: a run is measured until its proxy has written what it held), then checks that the async
and sync proxies recorded one execution per transaction.

  --seconds N   length of each pgbench run                  (default 10; 3 with BENCH_QUICK=1)
  --runs R      runs per configuration and mode; medians    (default 3; 1 with BENCH_QUICK=1)
  --clients C   pgbench clients (-c)                        (default 8)
  --modes LIST  pgbench query modes (-M), comma-separated   (default simple,extended)
  --cpu-prof DIR  run each proxy with node --cpu-prof, its profile in DIR/<durability>
  --help        show this text

Needs PostgreSQL server binaries (and pgbench); starts its own cluster and proxies and removes them
afterwards.
`;

interface Options {
  seconds: number;
  runs: number;
  clients: number;
  modes: QueryMode[];
  cpuProf: string | null;
}

const ALL_MODES: readonly QueryMode[] = ['simple', 'extended', 'prepared'];

function parseModes(v: string | undefined): QueryMode[] {
  if (v === undefined) return ['simple', 'extended'];
  const out: QueryMode[] = [];
  for (const part of v.split(',')) {
    const m = ALL_MODES.find((x) => x === part.trim());
    if (!m) throw new UsageError(`--modes: unknown mode "${part.trim()}" (expected ${ALL_MODES.join(', ')})`);
    if (!out.includes(m)) out.push(m);
  }
  return out;
}

function parseOptions(args: readonly string[]): Options | 'help' {
  const values = parseNamedOptions(args, ['seconds', 'runs', 'clients', 'modes', 'cpu-prof'] as const);
  if (values === 'help') return 'help';
  return { ...pgbenchRunOptions(values), modes: parseModes(values.modes), cpuProf: values['cpu-prof'] ?? null };
}


function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));


// --- the data, the transform, the workload ---

const TABLE = 'bench_people';
const TABLE_ROWS = 100_000;
const TRANSFORM_NAME = 'bench_mask';
const TRANSFORM_SOURCE = '(v) => v === null ? null : v.slice(0, 2) + "***"';

const CREATE_SQL = `
CREATE TABLE ${TABLE} (id int PRIMARY KEY, email text, name text);
INSERT INTO ${TABLE}
SELECT i, 'user' || i || '@example.com', 'Person ' || i FROM generate_series(1, ${TABLE_ROWS}) AS i;
`;

const SCRIPT_LINES = [`\\set id random(1, ${TABLE_ROWS})`, `SELECT id, email, name FROM ${TABLE} WHERE id = :id;`];

/** What every proxy must serve for a row: the mask applied to email, the rest untouched. */
function expectedRow(id: number): { id: number; email: string; name: string } {
  return { id, email: `user${id}@example.com`.slice(0, 2) + '***', name: `Person ${id}` };
}

function rowMismatch(row: Record<string, unknown> | undefined, id: number): string | null {
  const want = expectedRow(id);
  if (row === undefined) return `row ${id} missing`;
  for (const c of ['id', 'email', 'name'] as const) {
    if (row[c] !== want[c]) return `id ${id}: ${c} = ${JSON.stringify(row[c])}, expected ${JSON.stringify(want[c])}`;
  }
  return null;
}

// --- targets ---

const DURABILITIES = ['off', 'async', 'sync'] as const;
type Durability = (typeof DURABILITIES)[number];
type TargetName = 'direct' | Durability;
const TARGET_NAMES: readonly TargetName[] = ['direct', ...DURABILITIES];

interface Target {
  name: TargetName;
  endpoint: Endpoint;
  /** null for PostgreSQL itself */
  proxy: RunningProxy | null;
  /** a connection through the proxy for probes and SHOW provenance.status; idle while pgbench runs */
  control: pg.Client | null;
  /** the control connection's application_name, which its execution records carry */
  appName: string;
  /** results of probe queries that ran the transform: each is one execution record when recording */
  probeExecutions: number;
  /** why the target is no longer benchmarked, once its process died */
  broken: string | null;
}

/** A query that outlives this is a hung proxy, reported as such rather than waited for. */
const QUERY_TIMEOUT_MS = 120_000;

async function connect(ep: Endpoint, appName: string, onError: (msg: string) => void): Promise<pg.Client> {
  const client = new pg.Client({
    host: ep.host,
    port: ep.port,
    user: ep.user,
    password: ep.password,
    database: ep.database,
    ssl: false,
    application_name: appName,
    connectionTimeoutMillis: 15_000,
    query_timeout: QUERY_TIMEOUT_MS,
  });
  // Without a listener, a connection dropped while idle (a crashed proxy) would crash the benchmark.
  client.on('error', (err) => onError(`${appName} connection: ${err.message}`));
  await client.connect();
  return client;
}

async function closeClient(client: pg.Client): Promise<void> {
  // end() waits for the server to close the socket; a hung proxy must not hold up the teardown.
  await Promise.race([client.end().catch(() => undefined), sleep(3_000)]);
}

/**
 * Polls one row through the proxy, in the simple protocol, until it comes back masked, then checks
 * another in the extended protocol (pgbench uses both). 57P03 (registry not loaded yet) counts as
 * "not yet". Anything but a masked row after the timeout is an error: timing a proxy that does not
 * run the transform would measure nothing of interest.
 */
async function ensureMasking(t: Target, timeoutMs: number): Promise<void> {
  const client = t.control;
  if (!client) throw new Error(`${t.name}: no connection`);
  const start = performance.now();
  let last = '';
  for (;;) {
    try {
      const res = await client.query<Record<string, unknown>>(`SELECT id, email, name FROM ${TABLE} WHERE id = 1`);
      last = rowMismatch(res.rows[0], 1) ?? '';
      if (last === '') {
        t.probeExecutions++;
        break;
      }
    } catch (err) {
      if (!(err instanceof pg.DatabaseError && err.code === '57P03')) throw err;
      last = err.message;
    }
    if (performance.now() - start > timeoutMs) {
      throw new Error(`the ${t.name} proxy does not apply ${TRANSFORM_NAME} after ${timeoutMs} ms; last probe: ${last}`);
    }
    await sleep(20);
  }
  const res = await client.query<Record<string, unknown>>({
    text: `SELECT id, email, name FROM ${TABLE} WHERE id = $1`,
    values: [2],
  });
  const bad = rowMismatch(res.rows[0], 2);
  if (bad) throw new Error(`the ${t.name} proxy does not apply ${TRANSFORM_NAME} in the extended protocol: ${bad}`);
  t.probeExecutions++;
}

interface ProvenanceStatus {
  durability: string;
  queued: number;
  spooled: number;
  written: number;
  store: string;
  tracing: string;
  lastError: string | null;
}

/** SHOW provenance.status, which the proxy answers itself (simple protocol: pg sends no parameters). */
async function provenanceStatus(client: pg.Client): Promise<ProvenanceStatus> {
  const res = await client.query<Record<string, string | null>>('SHOW provenance.status');
  const row = res.rows[0];
  if (!row) throw new Error('SHOW provenance.status returned no row');
  const num = (k: string): number => {
    const n = Number(row[k]);
    if (!Number.isFinite(n)) throw new Error(`SHOW provenance.status: ${k} = ${JSON.stringify(row[k])} is not a number`);
    return n;
  };
  return {
    durability: row['durability'] ?? '',
    queued: num('queued'),
    spooled: num('spooled'),
    written: num('written'),
    store: row['store'] ?? '',
    tracing: row['tracing'] ?? '',
    lastError: row['last_error'] ?? null,
  };
}

/**
 * Waits until the proxy holds no unwritten records. Between runs this keeps one configuration's
 * background writes out of the next one's measurement; at the end it makes the counts comparable.
 */
async function drained(client: pg.Client, timeoutMs: number): Promise<{ ms: number; status: ProvenanceStatus; complete: boolean }> {
  const start = performance.now();
  for (;;) {
    const status = await provenanceStatus(client);
    const ms = performance.now() - start;
    if (status.queued === 0 && status.spooled === 0) return { ms, status, complete: true };
    if (ms > timeoutMs) return { ms, status, complete: false };
    await sleep(10);
  }
}


type Key = `${QueryMode}|${TargetName}`;
const key = (m: QueryMode, t: TargetName): Key => `${m}|${t}`;

/** How long the async/sync proxies may take to write what they hold before that is a problem. */
const DRAIN_TIMEOUT_MS = 120_000;

async function benchmark(opts: Options, cleanup: Cleanup): Promise<number> {
  const { problems, note, root, cluster } = await benchEnvironment(cleanup);
  const pgbench = clusterBinary(cluster.bindir, 'pgbench');
  const direct: Endpoint = {
    host: cluster.host,
    port: cluster.port,
    user: cluster.superuser,
    password: cluster.password,
    database: 'postgres',
  };

  const open = async (ep: Endpoint, appName: string): Promise<pg.Client> => {
    const client = await connect(ep, appName, note);
    // Registered after the process it connects to, so it is closed before that stops: otherwise
    // each proxy's shutdown would show up as a dropped connection.
    cleanup.add(`close connection ${appName}`, () => closeClient(client));
    return client;
  };
  const admin = await open(direct, 'bench-provenance-admin');

  log(`creating ${TABLE} with ${TABLE_ROWS} rows`);
  await admin.query(CREATE_SQL);
  // On its own: a multi-statement query is one transaction, where VACUUM cannot run.
  await admin.query(`VACUUM ANALYZE ${TABLE}`);
  cleanup.checkpoint();

  // The schema the proxies would create on start, created here first so the transform can be
  // registered before any proxy runs and all three start with the same registry.
  const runner: SqlRunner = {
    async query(sql, params = []) {
      return { rows: (await admin.query<Record<string, unknown>>(sql, [...params])).rows };
    },
    async exec(sql) {
      await admin.query(sql);
    },
  };
  const applied = await migrate(runner, SANDBOX_RUNTIME_VERSION);
  log(`provenance schema: migrations applied: ${applied.join(', ') || 'none'}`);
  await admin.query('SELECT provenance.register_transform($1::text, $2::regclass, ARRAY[$3::text], $4::text)', [
    TRANSFORM_NAME,
    TABLE,
    'email',
    TRANSFORM_SOURCE,
  ]);
  log(`registered ${TRANSFORM_NAME} on ${TABLE}.email`);

  const targets: Target[] = [
    { name: 'direct', endpoint: direct, proxy: null, control: null, appName: 'bench-provenance-direct', probeExecutions: 0, broken: null },
  ];
  for (const durability of DURABILITIES) {
    cleanup.checkpoint();
    log(`starting provenance-proxy --provenance-durability ${durability}`);
    // Credentials stay out of the upstream URL: clients authenticate as themselves through the
    // proxy, and the proxy's own login (for its registry and records) comes from PGUSER/PGPASSWORD.
    const proxy = await startProxy({
      upstream: `postgres://${cluster.host}:${cluster.port}/postgres?sslmode=disable`,
      dataDir: join(root, `proxy-${durability}`),
      login: { user: cluster.superuser, password: cluster.password },
      nodeArgs: opts.cpuProf === null ? [] : ['--cpu-prof', '--cpu-prof-dir', join(opts.cpuProf, durability)],
      extraArgs: [
        '--provenance-durability', durability,
        // An empty directory: a transforms directory where the benchmark is started must not add
        // transforms to the one measured.
        '--transforms', join(root, 'no-transforms'),
      ],
    });
    cleanup.add(`stop provenance-proxy (${durability})`, () => proxy.service.stop());
    const endpoint: Endpoint = { ...direct, host: proxy.host, port: proxy.port };
    const appName = `bench-provenance-${durability}`;
    const t: Target = { name: durability, endpoint, proxy, control: null, appName, probeExecutions: 0, broken: null };
    t.control = await open(endpoint, appName);
    targets.push(t);
  }

  // Nothing is timed until every proxy serves masked rows and reports the durability it was given.
  for (const t of targets) {
    if (!t.proxy || !t.control) continue;
    cleanup.checkpoint();
    log(`${t.name}: checking that the proxy masks ${TABLE}.email`);
    await ensureMasking(t, 60_000);
    const st = await provenanceStatus(t.control);
    if (st.durability !== t.name) {
      throw new Error(`the ${t.name} proxy reports durability "${st.durability}" in SHOW provenance.status`);
    }
  }

  const scriptFile = join(root, 'select.sql');
  await writeFile(scriptFile, `${SCRIPT_LINES.join('\n')}\n`);

  const serverVersion = (await admin.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v ?? '?';
  const pgbenchVersion = (await runCommand(pgbench, ['--version'], { timeoutMs: 10_000 })).stdout.trim();
  const threads = Math.min(2, opts.clients);

  // An untimed run per target and mode first: each proxy is its own Node process, and its first
  // seconds (JIT, isolates compiling the transform, connection set-up) should not count against
  // whichever configuration happens to run first.
  const warmupSeconds = Math.min(2, opts.seconds);
  const warmupTx = new Map<TargetName, number>();
  for (const mode of opts.modes) {
    for (const t of targets) {
      cleanup.checkpoint();
      const o = await runPgbench(
        pgbench,
        t.endpoint,
        { script: { file: scriptFile }, mode, clients: opts.clients, threads, seconds: warmupSeconds },
        join(root, 'pgbench-logs'),
      );
      cleanup.checkpoint();
      log(`warm-up -M ${mode} ${t.name}: ${describeOutcome(o)}`);
      if (!o.ok) throw new Error(`warm-up run through ${t.name} -M ${mode} failed:\n${o.error}`);
      warmupTx.set(t.name, (warmupTx.get(t.name) ?? 0) + o.transactions);
      if (t.control && t.name !== 'off') await drained(t.control, DRAIN_TIMEOUT_MS);
    }
  }

  const results = new Map<Key, PgbenchOutcome[]>();
  const cpu = new CpuPerTransaction<Key>(cluster.dataDir);
  const drainMs = new Map<TargetName, number[]>();
  const runs = opts.modes.length * TARGET_NAMES.length * opts.runs;
  log(`${opts.modes.length} mode(s) x ${TARGET_NAMES.length} targets x ${opts.runs} run(s) x ${opts.seconds} s = at least ${Math.ceil((runs * opts.seconds) / 60)} min`);
  for (let round = 0; round < opts.runs; round++) {
    for (const mode of opts.modes) {
      // off, async, sync take turns within each round (direct first, for context only), so drift
      // over time (caches warming, the execution table growing, a noisy neighbour) hits them alike.
      for (const t of targets) {
        const k = key(mode, t.name);
        const list = results.get(k) ?? [];
        results.set(k, list);
        const where = `round ${round + 1}/${opts.runs} -M ${mode} ${t.name}`;
        if (t.broken) {
          list.push({ ok: false, error: `skipped: ${t.broken.split('\n')[0] ?? ''}` });
          continue;
        }
        cleanup.checkpoint();
        const cpu0 = cpu.mark(t.proxy?.service.pid ?? null);
        const outcome = await runPgbench(
          pgbench,
          t.endpoint,
          { script: { file: scriptFile }, mode, clients: opts.clients, threads, seconds: opts.seconds },
          join(root, 'pgbench-logs'),
        );
        // A run cut short by Ctrl-C is no result, and its errors are ours, not the target's.
        cleanup.checkpoint();
        list.push(outcome);
        log(`${where}: ${describeOutcome(outcome)}`);
        if (!outcome.ok) log(outcome.error);
        const died = t.proxy?.service.exitStatus();
        if (t.proxy && died) {
          t.broken = `provenance-proxy (${t.name}) exited (${died}); its last output:\n${t.proxy.service.output().trim()}`;
          note(`${t.name}: ${t.broken}`);
          continue;
        }
        if (t.control && t.name !== 'off') {
          try {
            const d = await drained(t.control, DRAIN_TIMEOUT_MS);
            const list2 = drainMs.get(t.name) ?? [];
            list2.push(d.ms);
            drainMs.set(t.name, list2);
            if (!d.complete) {
              note(`${where}: records still unwritten after ${DRAIN_TIMEOUT_MS} ms (queued ${d.status.queued}, spooled ${d.status.spooled})`);
            }
          } catch (err) {
            if (cleanup.interrupted) throw err;
            note(`${where}: SHOW provenance.status failed: ${message(err)}`);
          }
        }
        if (outcome.ok) cpu.add(k, cpu0, t.proxy?.service.pid ?? null, outcome.transactions);
      }
    }
  }

  // --- did recording happen? ---
  interface Recording {
    status: ProvenanceStatus | null;
    drainedOk: boolean;
    proxyId: string | null;
    rows: number | null;
    pgbenchTx: number;
    incompleteRuns: number;
  }
  const recording = new Map<Durability, Recording>();
  for (const t of targets) {
    if (t.name === 'direct' || !t.control) continue;
    const outcomes = opts.modes.flatMap((m) => results.get(key(m, t.name)) ?? []);
    const rec: Recording = {
      status: null,
      drainedOk: false,
      proxyId: null,
      rows: null,
      pgbenchTx: summarize(outcomes).transactions,
      incompleteRuns: outcomes.filter((o) => !o.ok).length,
    };
    recording.set(t.name, rec);
    if (t.broken) continue;
    try {
      const d = await drained(t.control, DRAIN_TIMEOUT_MS);
      rec.status = d.status;
      rec.drainedOk = d.complete;
    } catch (err) {
      note(`${t.name}: SHOW provenance.status failed: ${message(err)}`);
    }
    if (t.name === 'off') continue;
    // Which records are this proxy's: its probes' records carry the control connection's
    // application_name, and every record carries the proxy's id.
    const ids = await admin.query<{ proxy_id: string }>(
      'SELECT DISTINCT proxy_id FROM provenance.executions WHERE transform_name = $1 AND application_name = $2',
      [TRANSFORM_NAME, t.appName],
    );
    if (ids.rows.length !== 1) {
      note(`${t.name}: expected the probe records of one proxy, found proxy ids ${JSON.stringify(ids.rows.map((r) => r.proxy_id))}`);
      continue;
    }
    rec.proxyId = ids.rows[0]?.proxy_id ?? null;
    const n = await admin.query<{ n: string }>(
      'SELECT count(*) AS n FROM provenance.executions WHERE transform_name = $1 AND proxy_id = $2',
      [TRANSFORM_NAME, rec.proxyId],
    );
    rec.rows = Number(n.rows[0]?.n ?? NaN);
  }
  const totalRes = await admin.query<{ n: string }>(`SELECT count(*) AS n FROM provenance.executions WHERE transform_name = '${TRANSFORM_NAME}'`);
  const totalRows = Number(totalRes.rows[0]?.n ?? NaN);

  // --- report (stdout) ---
  const out: string[] = [];
  out.push('provenance-proxy provenance recording benchmark');
  out.push(`  ${pgbenchVersion}; PostgreSQL ${serverVersion} (private cluster, fsync=off, synchronous_commit=off); Node ${process.version}`);
  out.push(`  ${TABLE}: ${TABLE_ROWS} rows; pgbench script: ${SCRIPT_LINES.map((l) => JSON.stringify(l)).join(' ')}`);
  out.push(`  transform ${TRANSFORM_NAME} on ${TABLE}.email: ${TRANSFORM_SOURCE}`);
  out.push(
    `  pgbench -c ${opts.clients} -j ${threads} -T ${opts.seconds} -n, ${opts.runs} run(s) per configuration and mode, ` +
      `interleaved (direct, off, async, sync in each round) after an untimed ${warmupSeconds} s warm-up of each; medians of the runs shown`,
  );
  out.push(
    '  three proxies on the same cluster, one per --provenance-durability, recording into its provenance schema; ' +
      'after each async/sync run the next starts once that proxy has written everything it held',
  );
  out.push(`  all connections over 127.0.0.1 TCP without TLS; everything shares this machine's ${availableParallelism()} CPUs`);
  out.push('');

  const summaries = new Map<Key, Summary>();
  const rows: string[][] = [];
  for (const mode of opts.modes) {
    for (const name of TARGET_NAMES) {
      const s = summarize(results.get(key(mode, name)) ?? []);
      summaries.set(key(mode, name), s);
      rows.push([
        mode,
        name === 'direct' ? 'direct (reference)' : name,
        ...summaryCells(s),
        String(s.transactions),
      ]);
    }
  }
  out.push(
    formatTable(
      ['mode', 'config', 'TPS', 'p50 ms', 'p99 ms', 'runs ok', 'failed tx', 'transactions'],
      rows,
      ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right'],
    ),
  );
  out.push('');

  const tps = (m: QueryMode, t: TargetName): number | undefined => summaries.get(key(m, t))?.tps;
  out.push(
    formatTable(
      ['mode', 'async/off TPS', 'sync/off TPS', 'off/direct TPS'],
      opts.modes.map((m) => [m, fixed(ratio(tps(m, 'async'), tps(m, 'off')), 3), fixed(ratio(tps(m, 'sync'), tps(m, 'off')), 3), fixed(ratio(tps(m, 'off'), tps(m, 'direct')), 3)]),
      ['left', 'right', 'right', 'right'],
    ),
  );
  out.push('');
  out.push('CPU µs per transaction, medians of the runs (a run until its proxy had written what it held; the server: all its processes):');
  out.push(cpu.table(['mode', 'config'], opts.modes.flatMap((m) => TARGET_NAMES.map((n) => [[m, n], key(m, n)] as const))), '');
  for (const m of opts.modes) {
    const r = ratio(tps(m, 'async'), tps(m, 'off'));
    const verdict = r === undefined ? 'NO RESULT' : r >= 0.9 ? 'MET' : 'NOT MET';
    out.push(`target -M ${m}: async >= 0.9 x off TPS: ${fixed(r, 3)} -> ${verdict}`);
  }
  out.push('');

  out.push('recording, after the runs (SHOW provenance.status once nothing is queued; rows counted in provenance.executions):');
  const recRows: string[][] = [];
  for (const d of DURABILITIES) {
    const rec = recording.get(d);
    const t = targets.find((x) => x.name === d);
    if (!rec || !t) continue;
    const st = rec.status;
    const recorded = d !== 'off';
    const warm = warmupTx.get(d) ?? 0;
    const expected = recorded ? rec.pgbenchTx + warm + t.probeExecutions : 0;
    recRows.push([
      d,
      st ? String(st.queued) : 'n/a',
      st ? String(st.spooled) : 'n/a',
      st ? String(st.written) : 'n/a',
      recorded ? (rec.rows === null ? 'n/a' : String(rec.rows)) : '-',
      String(rec.pgbenchTx),
      String(warm),
      recorded ? String(t.probeExecutions) : '-',
      recorded ? String(expected) : '-',
      st ? `${st.store}, tracing ${st.tracing}` : 'n/a',
      st?.lastError ?? '',
    ]);
    if (!recorded) {
      if (st && st.written !== 0) note(`off: SHOW provenance.status reports ${st.written} records written`);
      continue;
    }
    if (!st) continue;
    if (!rec.drainedOk) note(`${d}: records still unwritten ${DRAIN_TIMEOUT_MS} ms after the runs (queued ${st.queued}, spooled ${st.spooled})`);
    if (st.lastError !== null) note(`${d}: SHOW provenance.status last_error: ${st.lastError}`);
    if (st.written < expected) {
      note(`${d}: WARNING: written ${st.written} < ${expected} (pgbench transactions ${rec.pgbenchTx} + warm-up ${warm} + probe queries ${t.probeExecutions})`);
    }
    if (rec.rows !== null && rec.rows < expected) {
      note(`${d}: WARNING: ${rec.rows} rows in provenance.executions < ${expected} (pgbench transactions ${rec.pgbenchTx} + warm-up ${warm} + probe queries ${t.probeExecutions})`);
    }
    if (rec.incompleteRuns > 0) note(`${d}: ${rec.incompleteRuns} pgbench run(s) failed; their transactions are not in the totals`);
  }
  out.push(
    formatTable(
      ['config', 'queued', 'spooled', 'written', 'rows in table', 'pgbench tx', 'warm-up tx', 'probes', 'expected', 'store', 'last_error'],
      recRows,
      ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'left', 'left'],
    ),
  );
  const recordedTx = (['async', 'sync'] as const).reduce((n, d) => n + (recording.get(d)?.pgbenchTx ?? 0), 0);
  const extraTx = (['async', 'sync'] as const).reduce(
    (n, d) => n + (warmupTx.get(d) ?? 0) + (targets.find((t) => t.name === d)?.probeExecutions ?? 0),
    0,
  );
  out.push(
    `SELECT count(*) FROM provenance.executions WHERE transform_name = '${TRANSFORM_NAME}': ${totalRows}; ` +
      `timed pgbench transactions through async + sync: ${recordedTx} (+ ${extraTx} warm-up and probe queries = ${recordedTx + extraTx})`,
  );
  if (totalRows < recordedTx + extraTx) note(`WARNING: ${totalRows} executions recorded < ${recordedTx + extraTx} transactions and probes through async + sync`);
  const byProxy = [...recording.values()].reduce((n, r) => n + (r.rows ?? 0), 0);
  if (totalRows !== byProxy) note(`${totalRows} executions in the table, but ${byProxy} carry the async or sync proxy's id`);
  for (const d of ['async', 'sync'] as const) {
    const list = drainMs.get(d) ?? [];
    if (list.length > 0) {
      out.push(`${d}: time until everything was written after a run: median ${fixed(median(list), 0)} ms, max ${fixed(Math.max(...list), 0)} ms`);
    }
  }

  for (const t of targets) {
    if (!t.proxy) continue;
    const lines = t.proxy.service
      .output()
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.startsWith('provenance-proxy listening on '));
    if (lines.length > 0) {
      problems.push(`provenance-proxy (${t.name}) output (last ${Math.min(20, lines.length)} of ${lines.length} lines):\n${lines.slice(-20).join('\n')}`);
    }
  }
  for (const [k, list] of results) {
    const seen = new Map<string, number>();
    for (const o of list) if (!o.ok) seen.set(o.error, (seen.get(o.error) ?? 0) + 1);
    for (const [error, n] of seen) problems.push(`${k.replaceAll('|', ' ')} (${n}x): ${error}`);
  }
  return finishReport(out, problems, targets.flatMap((t) => (t.proxy ? [t.proxy] : [])));
}

export const suite = defineSuite('provenance', USAGE, parseOptions, benchmark);
