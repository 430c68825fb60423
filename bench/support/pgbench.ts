/** Running pgbench against one endpoint and reading back throughput and latency percentiles. */
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { cleanEnv, commandFailure, runCommand } from './processes.js';
import { percentileSorted } from './stats.js';

export interface Endpoint {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

/** pgbench's built-in scripts: `-S` and the default TPC-B-like one. */
export type BuiltinScript = 'select-only' | 'tpcb-like';
/** A script file of our own (pgbench -f), for workloads on tables other than pgbench's. */
export interface CustomScript {
  readonly file: string;
}
export type QueryMode = 'simple' | 'extended' | 'prepared';

export interface PgbenchSpec {
  script: BuiltinScript | CustomScript;
  mode: QueryMode;
  clients: number;
  threads: number;
  seconds: number;
}

export type PgbenchOutcome =
  | {
      ok: true;
      tps: number;
      transactions: number;
      failedTransactions: number;
      p50Ms: number;
      p99Ms: number;
    }
  | { ok: false; error: string };

/**
 * The environment pgbench and psql get: credentials via PGPASSWORD (not on the command line, where
 * ps would show them), no TLS so no target pays for a handshake the others skip, and the C locale
 * so numbers in the summary always use a decimal point.
 */
export function pgEnv(ep: Endpoint): NodeJS.ProcessEnv {
  return cleanEnv({ PGPASSWORD: ep.password, PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '10', LC_ALL: 'C', LANG: 'C' });
}

export function connArgs(ep: Endpoint): string[] {
  return ['-h', ep.host, '-p', String(ep.port), '-U', ep.user];
}

/** Append-only array of doubles; a 10 s select-only run can log millions of transactions. */
class Samples {
  private buf = new Float64Array(1 << 16);
  private n = 0;

  push(v: number): void {
    if (this.n === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.n++] = v;
  }

  sorted(): Float64Array {
    return this.buf.slice(0, this.n).sort();
  }
}

/**
 * Per-transaction log lines are "client_id transaction_no time script_no time_epoch time_us ...",
 * time being the transaction's latency in microseconds, or "failed"/"skipped" for transactions
 * without one (which are counted in pgbench's summary instead).
 */
async function readLatencies(dir: string, samples: Samples): Promise<void> {
  for (const name of await readdir(dir)) {
    const lines = createInterface({ input: createReadStream(join(dir, name)), crlfDelay: Infinity });
    for await (const line of lines) {
      const field = line.split(' ', 3)[2];
      if (field === undefined) continue;
      const us = Number(field);
      if (Number.isFinite(us)) samples.push(us);
    }
  }
}

function summaryNumber(stdout: string, re: RegExp): number | undefined {
  const m = re.exec(stdout);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

export async function pgbenchInit(pgbench: string, ep: Endpoint, scale: number): Promise<void> {
  const r = await runCommand(pgbench, ['-i', '-q', '-s', String(scale), ...connArgs(ep), ep.database], {
    env: pgEnv(ep),
    timeoutMs: 30 * 60_000,
  });
  if (r.code !== 0) throw new Error(commandFailure(`pgbench -i -s ${scale}`, r));
}

function scriptArgs(script: BuiltinScript | CustomScript): string[] {
  // -n: without it pgbench vacuums its own pgbench_* tables first, which a custom workload lacks.
  if (typeof script === 'object') return ['-n', '-f', script.file];
  return script === 'select-only' ? ['-S'] : [];
}

/**
 * One timed pgbench run. logDir must be empty and is emptied again afterwards: the logs are only
 * needed to compute percentiles and can reach hundreds of megabytes over a whole benchmark.
 */
export async function runPgbench(pgbench: string, ep: Endpoint, spec: PgbenchSpec, logDir: string): Promise<PgbenchOutcome> {
  await rm(logDir, { recursive: true, force: true });
  await mkdir(logDir, { recursive: true });
  const args = [
    ...connArgs(ep),
    '-c', String(spec.clients),
    '-j', String(spec.threads),
    '-T', String(spec.seconds),
    '-M', spec.mode,
    '-l',
    `--log-prefix=${join(logDir, 'tx')}`,
    ...scriptArgs(spec.script),
    ep.database,
  ];
  try {
    // The watchdog is generous (pre-run vacuum, connection setup), but finite: a target that stops
    // answering would otherwise hang pgbench, and with it the benchmark, forever.
    const r = await runCommand(pgbench, args, { env: pgEnv(ep), timeoutMs: (spec.seconds + 120) * 1000 });
    if (r.timedOut) {
      return { ok: false, error: commandFailure(`pgbench did not finish within ${spec.seconds + 120} s (target hung?); pgbench`, r) };
    }
    // pgbench exits 2 when clients aborted ("Run was aborted; the above results are incomplete").
    if (r.code !== 0) return { ok: false, error: commandFailure('pgbench', r) };
    const tps = summaryNumber(r.stdout, /^tps = ([\d.]+)/m);
    const transactions = summaryNumber(r.stdout, /^number of transactions actually processed: (\d+)/m);
    const failed = summaryNumber(r.stdout, /^number of failed transactions: (\d+)/m) ?? 0;
    if (tps === undefined || transactions === undefined) {
      return { ok: false, error: `could not parse pgbench output:\n${r.stdout.trim()}` };
    }
    const samples = new Samples();
    await readLatencies(logDir, samples);
    const sorted = samples.sorted();
    const p50 = percentileSorted(sorted, 0.5);
    const p99 = percentileSorted(sorted, 0.99);
    if (p50 === undefined || p99 === undefined) {
      return { ok: false, error: 'pgbench wrote no per-transaction latencies' };
    }
    return { ok: true, tps, transactions, failedTransactions: failed, p50Ms: p50 / 1000, p99Ms: p99 / 1000 };
  } finally {
    await rm(logDir, { recursive: true, force: true });
  }
}

/** Connect once and run a trivial query, so a broken target is reported plainly before timing starts. */
export async function probe(psql: string, ep: Endpoint): Promise<string | null> {
  const r = await runCommand(psql, ['-X', '-q', '-A', '-t', ...connArgs(ep), '-d', ep.database, '-c', 'SELECT 1'], {
    env: pgEnv(ep),
    timeoutMs: 30_000,
  });
  if (r.code === 0 && r.stdout.trim() === '1') return null;
  return commandFailure('psql -c "SELECT 1"', r);
}
