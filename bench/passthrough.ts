/**
 * passthrough: what the proxy costs when it only relays. pgbench runs the same workloads against
 * PostgreSQL directly, through provenance-proxy, and through PgBouncer (the usual baseline for a
 * protocol-level middlebox), and the suite reports throughput, latency percentiles and ratios.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPgCluster } from '../test/support/pg-cluster.js';
import type { Cleanup } from './support/cleanup.js';
import { clusterBinary, defineSuite, finishReport, log, parseNamedOptions, pgbenchRunOptions, positiveInt } from './support/suite-runner.js';
import { ensurePgbouncer, pgbouncerVersion, startPgbouncer } from './support/pgbouncer.js';
import {
  pgbenchInit,
  probe,
  runPgbench,
  type BuiltinScript,
  type Endpoint,
  type PgbenchOutcome,
  type QueryMode,
} from './support/pgbench.js';
import { freePort, runCommand, type Service } from './support/processes.js';
import { processCpuMs } from './support/process-cpu.js';
import { startProxy } from './support/proxy.js';
import { startNodeRelay } from './support/node-relay.js';
import { describeOutcome, ratio, summarize, summaryCells, type Summary } from './support/pgbench-summary.js';
import { median } from './support/stats.js';
import { fixed, formatTable } from './support/table.js';

const USAGE = `Usage: npm run bench -- passthrough [options]

Compares pgbench through provenance-proxy with PostgreSQL directly, with PgBouncer
(pool_mode=session) and with a bare Node TCP relay (what the runtime itself costs), for the
select-only (-S) and TPC-B-like scripts in -M simple and -M extended. The proxy runs twice: with
--http off, and as shipped (HTTP API on, whose metrics count every statement). Besides
throughput, the CPU time each Node process spent per transaction (from /proc).

  --seconds N   length of each pgbench run          (default 10; 3 with BENCH_QUICK=1)
  --runs R      runs per configuration; medians     (default 3; 1 with BENCH_QUICK=1)
  --clients C   pgbench clients (-c)                 (default 8)
  --scale S     pgbench scale factor (-i -s)         (default 10)
  --help        show this text

Needs PostgreSQL server binaries and pgbouncer; as root, a missing pgbouncer is installed with apt-get.
`;

interface Options {
  seconds: number;
  runs: number;
  clients: number;
  scale: number;
}


function parseOptions(args: readonly string[]): Options | 'help' {
  const values = parseNamedOptions(args, ['seconds', 'runs', 'clients', 'scale'] as const);
  if (values === 'help') return 'help';
  return { ...pgbenchRunOptions(values), scale: positiveInt('scale', values.scale, 10) };
}

const SCRIPTS: readonly BuiltinScript[] = ['select-only', 'tpcb-like'];
const MODES: readonly QueryMode[] = ['simple', 'extended'];
const TARGET_NAMES = ['direct', 'proxy', 'proxy-http', 'pgbouncer', 'node-relay'] as const;
/** The Node processes whose CPU time per transaction is reported. */
const CPU_TARGETS = ['proxy', 'proxy-http', 'node-relay'] as const;
type TargetName = (typeof TARGET_NAMES)[number];

interface Target {
  name: TargetName;
  endpoint: Endpoint;
  /** the process behind this target, watched for crashes between runs; null for PostgreSQL itself */
  service: Service | null;
  /** why the target is no longer benchmarked, once it failed to answer or its process died */
  broken: string | null;
}

type Key = `${BuiltinScript}|${QueryMode}|${TargetName}`;
const key = (s: BuiltinScript, m: QueryMode, t: TargetName): Key => `${s}|${m}|${t}`;



async function benchmark(opts: Options, cleanup: Cleanup): Promise<number> {
  const pgbouncerBin = await ensurePgbouncer(log);
  if (pgbouncerBin === null) return 1;

  const root = await mkdtemp(join(tmpdir(), 'pp-bench-'));
  cleanup.add('remove temporary directory', () => rm(root, { recursive: true, force: true }));
  // pgbouncer runs as the cluster's OS user when we are root and needs to reach its directory in here.
  await chmod(root, 0o755);

  log('starting a private PostgreSQL cluster');
  const cluster = await startPgCluster();
  cleanup.add('stop PostgreSQL', () => cluster.destroy());
  cleanup.checkpoint();
  const pgbench = clusterBinary(cluster.bindir, 'pgbench');
  const psql = clusterBinary(cluster.bindir, 'psql');
  const direct: Endpoint = {
    host: cluster.host,
    port: cluster.port,
    user: cluster.superuser,
    password: cluster.password,
    database: 'postgres',
  };

  log(`pgbench -i -s ${opts.scale}`);
  await pgbenchInit(pgbench, direct, opts.scale);
  cleanup.checkpoint();

  log('starting provenance-proxy');
  // Credentials stay out of the upstream URL: the proxy relays each client's own authentication.
  const proxy = await startProxy({
    upstream: `postgres://${cluster.host}:${cluster.port}/postgres?sslmode=disable`,
    dataDir: join(root, 'proxy-data'),
    login: { user: cluster.superuser, password: cluster.password },
  });
  cleanup.add('stop provenance-proxy', () => proxy.service.stop());
  cleanup.checkpoint();
  log('starting provenance-proxy with its HTTP API (the default configuration)');
  const proxyHttp = await startProxy({
    upstream: `postgres://${cluster.host}:${cluster.port}/postgres?sslmode=disable`,
    dataDir: join(root, 'proxy-http-data'),
    login: { user: cluster.superuser, password: cluster.password },
    extraArgs: ['--http', `127.0.0.1:${await freePort()}`],
  });
  cleanup.add('stop provenance-proxy (HTTP on)', () => proxyHttp.service.stop());
  cleanup.checkpoint();

  log('starting pgbouncer');
  const bouncer = await startPgbouncer({
    bin: pgbouncerBin,
    dir: join(root, 'pgbouncer'),
    upstreamHost: cluster.host,
    upstreamPort: cluster.port,
    database: 'postgres',
    user: cluster.superuser,
    password: cluster.password,
    // pgbench holds one extra connection for its pre-run vacuum; the pool must never queue clients.
    poolSize: opts.clients + 2,
    osUser: cluster.osUser,
  });
  cleanup.add('stop pgbouncer', () => bouncer.service.stop());
  cleanup.checkpoint();

  // What Node itself costs: a relay that parses nothing (see node-relay.ts).
  log('starting node-relay');
  const relay = await startNodeRelay(cluster.host, cluster.port);
  cleanup.add('stop node-relay', () => relay.service.stop());
  cleanup.checkpoint();

  const targets: Target[] = [
    { name: 'direct', endpoint: direct, service: null, broken: null },
    { name: 'proxy', endpoint: { ...direct, host: proxy.host, port: proxy.port }, service: proxy.service, broken: null },
    { name: 'proxy-http', endpoint: { ...direct, host: proxyHttp.host, port: proxyHttp.port }, service: proxyHttp.service, broken: null },
    { name: 'pgbouncer', endpoint: { ...direct, host: bouncer.host, port: bouncer.port }, service: bouncer.service, broken: null },
    { name: 'node-relay', endpoint: { ...direct, host: relay.host, port: relay.port }, service: relay.service, broken: null },
  ];
  for (const t of targets) {
    const err = await probe(psql, t.endpoint);
    if (err) {
      t.broken = `connection check failed: ${err}`;
      log(`${t.name}: ${t.broken}`);
    }
  }
  if (targets[0]?.broken) throw new Error(`PostgreSQL itself is not reachable: ${targets[0].broken}`);

  const serverVersion = (await cluster.psql('SHOW server_version')).trim();
  const pgbenchVersion = (await runCommand(pgbench, ['--version'], { timeoutMs: 10_000 })).stdout.trim();
  const bouncerVersion = await pgbouncerVersion(pgbouncerBin);
  const threads = Math.min(2, opts.clients);

  const results = new Map<Key, PgbenchOutcome[]>();
  /** CPU microseconds per transaction of each run of a Node target. */
  const cpu = new Map<Key, number[]>();
  const configs = SCRIPTS.length * MODES.length * targets.length;
  log(
    `${configs} configurations x ${opts.runs} run(s) x ${opts.seconds} s ` +
      `= at least ${Math.ceil((configs * opts.runs * opts.seconds) / 60)} min`,
  );
  for (let round = 0; round < opts.runs; round++) {
    for (const script of SCRIPTS) {
      for (const mode of MODES) {
        // Targets take turns within each configuration, and who goes first rotates per round, so
        // drift over time (caches warming, table bloat, a noisy neighbour) hits all of them alike.
        for (let i = 0; i < targets.length; i++) {
          const t = targets[(i + round) % targets.length];
          if (!t) continue;
          const k = key(script, mode, t.name);
          const list = results.get(k) ?? [];
          results.set(k, list);
          const where = `round ${round + 1}/${opts.runs} ${script} -M ${mode} ${t.name}`;
          if (t.broken) {
            list.push({ ok: false, error: `skipped: ${t.broken.split('\n')[0] ?? ''}` });
            continue;
          }
          cleanup.checkpoint();
          const cpuBefore = t.service ? processCpuMs(t.service.pid) : null;
          const outcome = await runPgbench(
            pgbench,
            t.endpoint,
            { script, mode, clients: opts.clients, threads, seconds: opts.seconds },
            join(root, 'pgbench-logs'),
          );
          const cpuAfter = t.service ? processCpuMs(t.service.pid) : null;
          // A run cut short by Ctrl-C is no result, and its errors are ours, not the target's.
          cleanup.checkpoint();
          list.push(outcome);
          if (outcome.ok && outcome.transactions > 0 && cpuBefore !== null && cpuAfter !== null) {
            cpu.set(k, [...(cpu.get(k) ?? []), ((cpuAfter - cpuBefore) * 1000) / outcome.transactions]);
          }
          log(`${where}: ${describeOutcome(outcome)}`);
          if (!outcome.ok) log(outcome.error);
          const died = t.service?.exitStatus();
          if (t.service && died) {
            t.broken = `${t.service.name} exited (${died}); its last output:\n${t.service.output().trim()}`;
            log(`${t.name}: ${t.broken}`);
          }
        }
      }
    }
  }

  // --- report (stdout) ---
  const out: string[] = [];
  out.push('provenance-proxy passthrough benchmark');
  out.push(`  ${pgbenchVersion}; PostgreSQL ${serverVersion} (private cluster, fsync=off); ${bouncerVersion}`);
  out.push(
    `  pgbench -c ${opts.clients} -j ${threads} -T ${opts.seconds}, scale ${opts.scale}, ${opts.runs} run(s) per configuration, ` +
      'targets interleaved; medians of the runs shown',
  );
  out.push(
    `  pgbouncer: pool_mode=${bouncer.poolMode} (each client keeps one server connection, as with the proxy), auth scram-sha-256`,
  );
  out.push(`  all connections over 127.0.0.1 TCP without TLS; everything shares this machine's ${availableParallelism()} CPUs`);
  out.push('');

  const rows: string[][] = [];
  const summaries = new Map<Key, Summary>();
  for (const script of SCRIPTS) {
    for (const mode of MODES) {
      for (const name of TARGET_NAMES) {
        const s = summarize(results.get(key(script, mode, name)) ?? []);
        summaries.set(key(script, mode, name), s);
        rows.push([
          script,
          mode,
          name,
          ...summaryCells(s),
        ]);
      }
    }
  }
  out.push(
    formatTable(
      ['script', 'mode', 'target', 'TPS', 'p50 ms', 'p99 ms', 'runs ok', 'failed tx'],
      rows,
      ['left', 'left', 'left', 'right', 'right', 'right', 'right', 'right'],
    ),
  );
  out.push('');

  const ratioRows: string[][] = [];
  for (const script of SCRIPTS) {
    for (const mode of MODES) {
      const tps = (t: TargetName): number | undefined => summaries.get(key(script, mode, t))?.tps;
      ratioRows.push([
        script,
        mode,
        fixed(ratio(tps('proxy'), tps('direct')), 3),
        fixed(ratio(tps('proxy'), tps('pgbouncer')), 3),
        fixed(ratio(tps('proxy'), tps('node-relay')), 3),
        fixed(ratio(tps('proxy-http'), tps('node-relay')), 3),
        fixed(ratio(tps('node-relay'), tps('pgbouncer')), 3),
      ]);
    }
  }
  out.push(
    formatTable(
      ['script', 'mode', 'proxy/direct TPS', 'proxy/pgbouncer TPS', 'proxy/node-relay TPS', 'proxy-http/node-relay TPS', 'node-relay/pgbouncer TPS'],
      ratioRows,
      ['left', 'left', 'right', 'right', 'right', 'right', 'right'],
    ),
  );
  out.push('  node-relay: a Node TCP relay that parses nothing (socket.pipe both ways), the floor of any Node.js proxy here');
  out.push('  proxy: --http off; proxy-http: as shipped, with the HTTP API (its metrics count every statement)');
  out.push('');

  // CPU per transaction: what each Node process spent (user + system, all threads), medians of the runs.
  const cpuOf = (script: BuiltinScript, mode: QueryMode, t: TargetName): number | undefined => median(cpu.get(key(script, mode, t)) ?? []);
  const cpuRows: string[][] = [];
  for (const script of SCRIPTS) {
    for (const mode of MODES) {
      const [p, h, r] = CPU_TARGETS.map((t) => cpuOf(script, mode, t));
      cpuRows.push([script, mode, fixed(p, 1), fixed(h, 1), fixed(r, 1), fixed(ratio(r, p), 3), fixed(ratio(r, h), 3)]);
    }
  }
  out.push(
    formatTable(
      ['script', 'mode', 'proxy CPU µs/tx', 'proxy-http CPU µs/tx', 'node-relay CPU µs/tx', 'node-relay/proxy CPU', 'node-relay/proxy-http CPU'],
      cpuRows,
      ['left', 'left', 'right', 'right', 'right', 'right', 'right'],
    ),
  );
  out.push('  CPU time of the Node process per transaction (/proc, 10 ms ticks), as a ratio comparable to the TPS ratios (higher is better)');
  out.push('');

  for (const mode of MODES) {
    const r = ratio(summaries.get(key('select-only', mode, 'proxy'))?.tps, summaries.get(key('select-only', mode, 'pgbouncer'))?.tps);
    const verdict = r === undefined ? 'NO RESULT' : r >= 1.0 ? 'MET' : 'NOT MET';
    out.push(`target select-only -M ${mode}: proxy/pgbouncer >= 1.0: ${fixed(r, 3)} -> ${verdict}`);
  }

  const problems: string[] = [];
  for (const [k, list] of results) {
    const seen = new Map<string, number>();
    for (const o of list) if (!o.ok) seen.set(o.error, (seen.get(o.error) ?? 0) + 1);
    for (const [error, n] of seen) problems.push(`${k.replaceAll('|', ' ')} (${n}x): ${error}`);
  }
  for (const t of targets) if (t.broken) problems.push(`${t.name}: ${t.broken}`);
  return finishReport(out, problems, [proxy, proxyHttp]);
}

export const suite = defineSuite('passthrough', USAGE, parseOptions, benchmark);
