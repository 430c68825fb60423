/**
 * One proxy per data directory: two PGlite instances on one directory would corrupt it. A pid
 * file taken with O_EXCL; a file left by a process that no longer runs is taken over.
 */
import { mkdirSync, openSync, readFileSync, unlinkSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';

export class DataDirInUse extends Error {}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Directories this process holds: the pid file alone cannot tell two proxies in one process apart. */
const held = new Set<string>();

export function lockDataDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  if (held.has(dir)) throw new DataDirInUse(`data directory ${dir} is in use by another provenance-proxy (pid ${process.pid})`);
  const file = path.join(dir, 'proxy.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      held.add(dir);
      return () => {
        held.delete(dir);
        try {
          unlinkSync(file);
        } catch {
          // Already gone.
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new DataDirInUse(`data directory ${dir} is in use by another provenance-proxy (pid ${pid})`);
      }
      unlinkSync(file);
    }
  }
  throw new DataDirInUse(`could not lock data directory ${dir}`);
}
