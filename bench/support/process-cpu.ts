/**
 * CPU time a process has used, all its threads, user and system, read from Linux's /proc: a
 * steadier measure than throughput on a machine whose other load comes and goes, since what the
 * proxy spends per transaction hardly depends on how long it waited for a core.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** User plus system CPU milliseconds of a running process so far; null where /proc cannot say. */
export function processCpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) in parentheses: state is the 3rd field,
    // utime the 14th and stime the 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks * 1000) / TICKS_PER_SECOND : null;
  } catch {
    return null;
  }
}

/** utime, stime, cutime and cstime of /proc/<pid>/stat, in ticks; null where /proc cannot say. */
function statTicks(pid: number): readonly [number, number, number, number] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const t = [11, 12, 13, 14].map((i) => Number(fields[i]));
    return t.every(Number.isFinite) ? [t[0]!, t[1]!, t[2]!, t[3]!] : null;
  } catch {
    return null;
  }
}

/** The parent pid of a process (the 4th field of /proc/<pid>/stat); null once it is gone. */
function parentPid(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

/**
 * CPU milliseconds a PostgreSQL server has used so far: the postmaster's own, what its exited
 * backends used (their parent collected it when it reaped them: cutime and cstime), and what its
 * living backends and auxiliary processes used. Backends come and go with every connection, so
 * only the sum over the whole tree, read before and after, says what a workload cost the server.
 */
export function serverCpuMs(postmasterPid: number): number | null {
  const own = statTicks(postmasterPid);
  if (own === null) return null;
  let ticks = own[0] + own[1] + own[2] + own[3];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === postmasterPid || parentPid(pid) !== postmasterPid) continue;
    const t = statTicks(pid);
    if (t !== null) ticks += t[0] + t[1];
  }
  return (ticks * 1000) / TICKS_PER_SECOND;
}

/** The postmaster's pid, the first line of postmaster.pid in its data directory. */
export function postmasterPid(dataDir: string): number {
  const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no postmaster pid in ${dataDir}/postmaster.pid`);
  return pid;
}
