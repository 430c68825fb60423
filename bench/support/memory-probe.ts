/**
 * Loaded into a proxy with `node --import` by the memory benchmark: samples what the process's
 * resident memory is made of every 100 ms and keeps, in the file named by MEMORY_PROBE_FILE, the
 * sample taken when the resident memory was highest. Only the benchmark loads it; the proxy knows
 * nothing of it.
 *
 * Sandbox isolates are found through a resolution hook (memory-probe-hooks.ts) that hands the
 * proxy an isolated-vm whose Isolate records each instance (memory-probe-isolated-vm.ts).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { register } from 'node:module';
import v8 from 'node:v8';
import type ivm from 'isolated-vm';

const MiB = 2 ** 20;
const ARENA_BYTES = 64 * MiB;
export interface MemorySample {
  readonly rss: number;
  /** process.memoryUsage(), MiB. */
  readonly heapTotal: number;
  readonly heapUsed: number;
  readonly external: number;
  readonly arrayBuffers: number;
  /** The main V8 heap's committed memory, its new space (semi-spaces) and old space, MiB. */
  readonly v8Physical: number;
  readonly newSpace: number;
  readonly oldSpace: number;
  /** Each live sandbox isolate's committed heap, MiB. */
  readonly isolates: readonly number[];
  /** From smaps: file-backed resident memory (code of node and its addons), the brk heap, glibc's thread arenas. */
  readonly fileBacked: number;
  readonly brkHeap: number;
  readonly arenas: number;
  readonly arenaRss: number;
  readonly otherAnon: number;
  readonly threads: number;
}

register('./memory-probe-hooks.js', import.meta.url);
/** Symbol.for of memory-probe-isolated-vm.ts, not imported: that module must load only through the proxy's import. */
const PROBE_ISOLATES = Symbol.for('provenance-proxy.memory-probe.isolates');

function isolateHeaps(): number[] {
  const out: number[] = [];
  const isolates = (globalThis as { [PROBE_ISOLATES]?: Set<WeakRef<ivm.Isolate>> })[PROBE_ISOLATES] ?? new Set();
  for (const ref of isolates) {
    const iso = ref.deref();
    if (iso === undefined || iso.isDisposed) {
      isolates.delete(ref);
      continue;
    }
    try {
      out.push(iso.getHeapStatisticsSync().total_physical_size / MiB);
    } catch {
      // disposed between the check and the call
    }
  }
  return out;
}

interface Region {
  start: number;
  end: number;
  perms: string;
  path: string;
  rss: number;
}

function regions(): Region[] {
  const out: Region[] = [];
  let cur: Region | undefined;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) {
      cur = { start: parseInt(head[1]!, 16), end: parseInt(head[2]!, 16), perms: head[3]!, path: head[4]!, rss: 0 };
      out.push(cur);
    } else if (cur && line.startsWith('Rss:')) cur.rss = Number(/(\d+)/.exec(line)![1]) * 1024;
  }
  return out;
}

/**
 * glibc gives each thread arena a 64 MiB reservation aligned on 64 MiB: a read-write part that
 * grows as it is used, followed by the inaccessible rest.
 */
function smapsBreakdown(): Pick<MemorySample, 'fileBacked' | 'brkHeap' | 'arenas' | 'arenaRss' | 'otherAnon'> {
  const rs = regions();
  let fileBacked = 0;
  let brkHeap = 0;
  let arenas = 0;
  let arenaRss = 0;
  let otherAnon = 0;
  for (let i = 0; i < rs.length; i++) {
    const r = rs[i]!;
    if (r.path.startsWith('/')) fileBacked += r.rss;
    else if (r.path === '[heap]') brkHeap += r.rss;
    else if (r.path === '' && r.perms.startsWith('rw') && r.start % ARENA_BYTES === 0) {
      const next = rs[i + 1];
      const size = r.end - r.start + (next && next.start === r.end && next.perms.startsWith('---') && next.path === '' ? next.end - next.start : 0);
      if (size === ARENA_BYTES) {
        arenas++;
        arenaRss += r.rss;
      } else otherAnon += r.rss;
    } else otherAnon += r.rss;
  }
  return { fileBacked: fileBacked / MiB, brkHeap: brkHeap / MiB, arenas, arenaRss: arenaRss / MiB, otherAnon: otherAnon / MiB };
}

function sample(): MemorySample {
  const m = process.memoryUsage();
  const spaces = v8.getHeapSpaceStatistics();
  const space = (name: string): number => (spaces.find((s) => s.space_name === name)?.physical_space_size ?? 0) / MiB;
  const threads = Number(/Threads:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN);
  return {
    rss: m.rss / MiB,
    heapTotal: m.heapTotal / MiB,
    heapUsed: m.heapUsed / MiB,
    external: m.external / MiB,
    arrayBuffers: m.arrayBuffers / MiB,
    v8Physical: v8.getHeapStatistics().total_physical_size / MiB,
    newSpace: space('new_space'),
    oldSpace: space('old_space'),
    isolates: isolateHeaps(),
    ...smapsBreakdown(),
    threads,
  };
}

const file = process.env['MEMORY_PROBE_FILE'];
if (file !== undefined) {
  let peak = 0;
  setInterval(() => {
    const rss = process.memoryUsage.rss();
    if (rss <= peak) return;
    peak = rss;
    writeFileSync(file, JSON.stringify(sample()));
  }, 100).unref();
}
