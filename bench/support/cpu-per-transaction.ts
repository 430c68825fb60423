/**
 * CPU microseconds per transaction of pgbench runs, for a process under test (a proxy) and for the
 * PostgreSQL server behind it (all its processes), kept per configuration and shown as medians.
 */
import { postmasterPid, processCpuMs, serverCpuMs } from './process-cpu.js';
import { median } from './stats.js';
import { fixed, formatTable } from './table.js';

export interface CpuMark {
  readonly process: number | null;
  readonly server: number | null;
}

export class CpuPerTransaction<K extends string> {
  private readonly postmaster: number;
  private readonly process = new Map<K, number[]>();
  private readonly server = new Map<K, number[]>();

  constructor(clusterDataDir: string) {
    this.postmaster = postmasterPid(clusterDataDir);
  }

  /** The CPU used so far by `pid` (none: PostgreSQL queried directly) and by the server. */
  mark(pid: number | null): CpuMark {
    return { process: pid === null ? null : processCpuMs(pid), server: serverCpuMs(this.postmaster) };
  }

  /** A run of configuration `key` between `from` and now: `pid` as given to mark(). */
  add(key: K, from: CpuMark, pid: number | null, transactions: number): void {
    if (transactions <= 0) return;
    const to = this.mark(pid);
    const perTx = (a: number | null, b: number | null): number[] => (a === null || b === null ? [] : [((b - a) * 1000) / transactions]);
    this.process.set(key, [...(this.process.get(key) ?? []), ...perTx(from.process, to.process)]);
    this.server.set(key, [...(this.server.get(key) ?? []), ...perTx(from.server, to.server)]);
  }

  /** A table of the medians: one row per [label cells, key]. */
  table(header: readonly string[], rows: readonly (readonly [readonly string[], K])[]): string {
    const cell = (list: readonly number[] | undefined): string => (list?.length ? fixed(median(list), 0) : '-');
    return formatTable(
      [...header, 'proxy', 'server'],
      rows.map(([labels, k]) => [...labels, cell(this.process.get(k)), cell(this.server.get(k))]),
      [...header.map(() => 'left' as const), 'right', 'right'],
    );
  }
}
