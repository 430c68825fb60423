/**
 * The Unix-domain socket clients find by directory and port, `DIR/.s.PGSQL.<port>`, as libpq and
 * postgres.js look for it (`host=/var/run/postgresql`). As PostgreSQL does, a lock file next to it
 * (`.s.PGSQL.<port>.lock`, holding this process's PID) says the socket is in use: a socket whose
 * lock names a live process is refused, a stale one (left by a crash) is removed. The socket is
 * made 0777, PostgreSQL's default unix_socket_permissions: who may log in is decided by
 * authentication, not by the file.
 */
import net from 'node:net';
import path from 'node:path';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

export class UnixSocketInUse extends Error {}

export function unixSocketPath(dir: string, port: number): string {
  return path.join(dir, `.s.PGSQL.${port}`);
}

/** The PID of a live process named in a lock file, or null when there is none. */
function liveOwner(lockPath: string): number | null {
  let pid: number;
  try {
    pid = Number(readFileSync(lockPath, 'utf8').split('\n')[0]);
  } catch {
    return null;
  }
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return null;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : null;
  }
}

/** A listening Unix socket with its lock file; close() removes both. */
export class UnixSocketListener {
  readonly path: string;
  private readonly lockPath: string;

  private constructor(private readonly server: net.Server, socketPath: string) {
    this.path = socketPath;
    this.lockPath = `${socketPath}.lock`;
  }

  static async open(dir: string, port: number, onConnection: (sock: net.Socket) => void, dataDir: string): Promise<UnixSocketListener> {
    const socketPath = unixSocketPath(dir, port);
    const lockPath = `${socketPath}.lock`;
    const owner = liveOwner(lockPath);
    if (owner !== null) {
      throw new UnixSocketInUse(`lock file "${lockPath}" already exists: is another server (PID ${owner}) using socket file "${socketPath}"?`);
    }
    rmSync(socketPath, { force: true });
    rmSync(lockPath, { force: true });
    writeFileSync(lockPath, `${process.pid}\n${dataDir}\n`, { flag: 'wx', mode: 0o600 });
    const server = net.createServer(onConnection);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(socketPath, () => {
          server.off('error', reject);
          resolve();
        });
      });
      chmodSync(socketPath, 0o777);
    } catch (err) {
      server.close();
      rmSync(lockPath, { force: true });
      throw err;
    }
    return new UnixSocketListener(server, socketPath);
  }

  /** Stop accepting; resolves once the server closed (existing connections may still run). */
  close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.path, { force: true });
    return closed.then(() => rmSync(this.lockPath, { force: true }));
  }
}
