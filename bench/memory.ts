/**
 * memory: what a large result costs the proxy's memory when its client reads slowly. A client
 * takes the answer to one SELECT of N rows a socket read at a time, pausing between reads, through
 * a proxy where a column mask applies to the table, and through another where nothing applies;
 * each proxy's resident memory (VmRSS) is sampled during the read.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { RawClient } from '../test/support/raw-client.js';
import type { Cleanup } from './support/cleanup.js';
import { benchEnvironment, defineSuite, UsageError, finishReport, log, parseNamedOptions, positiveInt, quickRun } from './support/suite-runner.js';
import { startProxy, type RunningProxy } from './support/proxy.js';
import type { MemorySample } from './support/memory-probe.js';
import { fixed, formatTable } from './support/table.js';

const USAGE = `Usage: npm run bench -- memory [options]

"SELECT id, email FROM <table>" of N rows read by a slow client (one socket read, then a pause)
through provenance-proxy in front of PostgreSQL: one proxy where a column mask applies to the
table (recording async, as shipped), one where nothing applies; the peak resident memory (VmRSS)
of each proxy during the read, and before it.

  --rows N     rows of the result                 (default 1000000; 200000 with BENCH_QUICK=1)
  --pause MS   pause after each socket read       (default 20)
  --breakdown on|off
               what each proxy's RSS was made of at its peak (V8 heaps, each sandbox isolate's
               heap, glibc arenas…), sampled inside it by bench/support/memory-probe.ts, whose
               module hook thread adds about 16 MiB to the RSS measured   (default off)
  --help       show this text

Needs PostgreSQL server binaries; starts its own cluster and proxies and removes them afterwards.
`;

interface Options {
  rows: number;
  pause: number;
  breakdown: boolean;
}

function parseOptions(args: readonly string[]): Options | 'help' {
  const values = parseNamedOptions(args, ['rows', 'pause', 'breakdown'] as const);
  if (values === 'help') return 'help';
  if (values.breakdown !== undefined && values.breakdown !== 'on' && values.breakdown !== 'off') {
    throw new UsageError(`--breakdown must be on or off, not ${values.breakdown}`);
  }
  return {
    rows: positiveInt('rows', values.rows, quickRun() ? 200_000 : 1_000_000),
    pause: positiveInt('pause', values.pause, 20),
    breakdown: values.breakdown === 'on',
  };
}

const MASK = '(v) => v === null ? null : v.slice(0, 2) + "***"';

/** Resident memory of a process, MiB. */
function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** ReadyForQuery ('Z', length 5, status): the end of the answer. */
const READY = Buffer.from([0x5a, 0, 0, 0, 5]);

/** Reads the whole answer slowly; resolves with the peak RSS of `pid` sampled meanwhile, and the bytes read. */
async function slowRead(port: number, table: string, pause: number, pid: number): Promise<{ peak: number; bytes: number; ms: number }> {
  const c = await RawClient.connect(port, 'trustuser');
  const sock = c.sock;
  sock.removeAllListeners('data');
  let peak = rssMiB(pid);
  const timer = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 100);
  const started = performance.now();
  let bytes = 0;
  let tail = Buffer.alloc(0);
  try {
    await new Promise<void>((resolve, reject) => {
      sock.on('error', reject);
      sock.on('data', (d: Buffer) => {
        bytes += d.length;
        // The answer's last bytes, to find its ReadyForQuery across reads.
        tail = Buffer.concat([tail, d]).subarray(-16);
        if (tail.includes(READY)) return resolve();
        sock.pause();
        setTimeout(() => sock.resume(), pause);
      });
      sock.write(serialize.query(`SELECT id, email FROM ${table}`));
    });
  } finally {
    clearInterval(timer);
    sock.destroy();
  }
  return { peak, bytes, ms: performance.now() - started };
}

const BREAKDOWN_HEADERS = ['proxy', 'RSS', 'V8 heap', 'new', 'old', 'live', 'external', 'buffers', 'isolates', 'file', 'brk', 'arenas', 'other anon', 'threads'];

function breakdownCells(m: MemorySample): string[] {
  const f = (v: number): string => fixed(v, 0);
  return [
    f(m.rss), f(m.v8Physical), f(m.newSpace), f(m.oldSpace), f(m.heapUsed), f(m.external), f(m.arrayBuffers),
    m.isolates.length === 0 ? '-' : m.isolates.map(f).join('+'),
    f(m.fileBacked), f(m.brkHeap), `${m.arenas}: ${f(m.arenaRss)}`, f(m.otherAnon), String(m.threads),
  ];
}

function breakdownReport(rows: readonly string[][]): string[] {
  return [
    '  what the resident memory was made of at its peak, MiB (sampled in the proxy every 100 ms; see bench/support/memory-probe.ts):',
    '  V8: the main heap committed (new space = semi-spaces, old space) and live; isolates: each sandbox heap committed;',
    '  smaps: file-backed (code), brk heap, glibc thread arenas (count: resident), other anonymous (V8 and isolate pages, stacks)',
    formatTable(BREAKDOWN_HEADERS, rows, BREAKDOWN_HEADERS.map((_, i) => (i === 0 ? 'left' : 'right'))),
  ];
}

async function benchmark(opts: Options, cleanup: Cleanup): Promise<number> {
  const { problems, root, cluster } = await benchEnvironment(cleanup);
  const proxies: RunningProxy[] = [];
  const probeFiles = new Map<RunningProxy, string>();
  const probe = fileURLToPath(new URL('./support/memory-probe.js', import.meta.url));
  const start = async (name: string): Promise<RunningProxy> => {
    const probeFile = join(root, `${name}-memory.json`);
    const p = await startProxy({
      ...(opts.breakdown ? { nodeArgs: ['--import', probe], env: { MEMORY_PROBE_FILE: probeFile } } : {}),
      upstream: `postgres://${cluster.host}:${cluster.port}/postgres?sslmode=disable`,
      dataDir: join(root, name),
      login: { user: cluster.superuser, password: cluster.password },
      extraArgs: ['--transforms', join(root, 'no-transforms')],
    });
    cleanup.add(`stop proxy ${name}`, () => p.service.stop(5_000));
    proxies.push(p);
    probeFiles.set(p, probeFile);
    return p;
  };
  const masked = await start('masked');
  const plain = await start('plain');

  log(`creating two tables of ${opts.rows} rows`);
  const admin = new pg.Client({ connectionString: cluster.url() });
  await admin.connect();
  try {
    for (const t of ['bench_big_masked', 'bench_big_plain']) {
      await admin.query(`CREATE TABLE ${t} (id int PRIMARY KEY, email text)`);
      await admin.query(`INSERT INTO ${t} SELECT g, 'user' || g || '@example.com' FROM generate_series(1, $1::int) g`, [opts.rows]);
      await admin.query(`GRANT SELECT ON ${t} TO trustuser`);
    }
    await admin.query("SELECT provenance.register_transform('bench_big_mask', 'bench_big_masked', ARRAY['email'], $1)", [MASK]);
  } finally {
    await admin.end();
  }
  // The registry reaches the proxies by NOTIFY: a read through the masked one shows the mask.
  const check = await RawClient.connect(masked.port, 'trustuser');
  for (let i = 0; i < 100; i++) {
    check.write(serialize.query('SELECT email FROM bench_big_masked WHERE id = 1'));
    const answer = await check.untilReady();
    if (answer.some((m) => m.code === 'D' && m.body.includes(Buffer.from('us***')))) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  check.end();

  const rows: string[][] = [];
  const breakdowns: string[][] = [];
  for (const [name, proxy, table] of [['no transform', plain, 'bench_big_plain'], ['column mask', masked, 'bench_big_masked']] as const) {
    const before = rssMiB(proxy.service.pid);
    log(`${name}: reading ${opts.rows} rows slowly`);
    const r = await slowRead(proxy.port, table, opts.pause, proxy.service.pid);
    rows.push([name, fixed(before, 0), fixed(r.peak, 0), fixed(r.peak - before, 0), fixed(r.bytes / 2 ** 20, 1), fixed(r.ms / 1000, 1)]);
    const file = probeFiles.get(proxy)!;
    if (existsSync(file)) breakdowns.push([name, ...breakdownCells(JSON.parse(readFileSync(file, 'utf8')) as MemorySample)]);
  }

  const out: string[] = [];
  out.push('provenance-proxy memory benchmark');
  out.push(`  "SELECT id, email" of ${opts.rows} rows over the simple protocol, read one socket read at a time with a ${opts.pause} ms pause after each; PostgreSQL upstream`);
  out.push(`  VmRSS of each proxy sampled every 100 ms during the read; mask: ${MASK}`);
  out.push('');
  out.push(formatTable(['proxy', 'RSS before MiB', 'peak RSS MiB', 'growth MiB', 'answer MiB', 'read s'], rows, ['left', 'right', 'right', 'right', 'right', 'right']));
  if (breakdowns.length > 0) out.push('', ...breakdownReport(breakdowns));
  return finishReport(out, problems, proxies);
}

export const suite = defineSuite('memory', USAGE, parseOptions, benchmark);
