/**
 * Child processes for benchmarks: long-running services (proxy, pgbouncer) and one-shot
 * commands (pgbench, psql), all of which must be gone when the benchmark ends, however it ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';

/** Bytes of output kept per process: enough for the last error messages, bounded for chatty children. */
const OUTPUT_TAIL_BYTES = 64 * 1024;

/** Every child still running, so an exit path that skips the orderly cleanup can still kill them. */
const live = new Set<ChildProcess>();
/** The one-shot commands among them (pgbench, psql): on interrupt these go at once, services in order. */
const commands = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Only synchronous work is possible in 'exit'; SIGKILL is the one thing that cannot be ignored.
  process.on('exit', () => {
    for (const child of live) killTree(child, 'SIGKILL');
  });
}

/**
 * Services are spawned detached, i.e. as leaders of their own process group, so signalling the
 * group also reaches grandchildren (pgbouncer under runuser) and a terminal's Ctrl-C does not hit
 * them before we have decided the order of shutdown.
 */
function killTree(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/** Environment without the developer's PG* variables, so PGHOST/PGPORT cannot redirect a run. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('PG')) env[k] = v;
  }
  return { ...env, ...extra };
}

class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  private dropped = false;

  push(b: Buffer): void {
    this.chunks.push(b);
    this.size += b.length;
    while (this.size > OUTPUT_TAIL_BYTES && this.chunks.length > 1) {
      const first = this.chunks.shift();
      if (first) this.size -= first.length;
      this.dropped = true;
    }
  }

  text(): string {
    const s = Buffer.concat(this.chunks).toString('utf8');
    return this.dropped ? `[...]\n${s}` : s;
  }
}

export interface Service {
  readonly name: string;
  readonly pid: number;
  /** null while running, else a description such as "exit code 1" */
  exitStatus(): string | null;
  /** tail of stdout and stderr, interleaved as received */
  output(): string;
  /** resolve once the output matches, reject if the process exits or the time runs out first */
  waitForOutput(pattern: RegExp, timeoutMs: number): Promise<void>;
  /** SIGTERM the process group, SIGKILL it if still there after graceMs */
  stop(graceMs?: number): Promise<void>;
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `killed by ${signal}` : `exit code ${String(code)}`;
}

export function startService(
  name: string,
  cmd: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Service {
  installExitHook();
  const child = spawn(cmd, [...args], {
    env: opts.env ?? cleanEnv(),
    cwd: opts.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  if (child.pid === undefined) {
    // spawn reports ENOENT etc. asynchronously; without a pid there is nothing to manage.
    throw new Error(`could not start ${name} (${cmd})`);
  }
  const pid = child.pid;
  live.add(child);
  const tail = new Tail();
  const listeners = new Set<() => void>();
  let status: string | null = null;
  const exited = new Promise<void>((resolve) => {
    child.on('exit', (code, signal) => {
      status = describeExit(code, signal);
      live.delete(child);
      resolve();
      for (const l of listeners) l();
    });
  });
  child.on('error', (err) => {
    tail.push(Buffer.from(`\n[spawn error: ${err.message}]\n`));
  });
  const onData = (b: Buffer): void => {
    tail.push(b);
    for (const l of listeners) l();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);

  return {
    name,
    pid,
    exitStatus: () => status,
    output: () => tail.text(),
    waitForOutput(pattern, timeoutMs) {
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (pattern.test(tail.text())) {
            done();
            resolve();
          } else if (status !== null) {
            done();
            reject(new Error(`${name} exited (${status}) before it was ready:\n${tail.text().trim()}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${name} not ready after ${timeoutMs} ms:\n${tail.text().trim()}`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    async stop(graceMs = 10_000) {
      if (status !== null) return;
      killTree(child, 'SIGTERM');
      const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), graceMs).unref());
      if ((await Promise.race([exited.then(() => 'exited' as const), timer])) === 'timeout') {
        killTree(child, 'SIGKILL');
        await exited;
      }
    },
  };
}

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * Run a command to completion and never throw for a non-zero exit: benchmarks report a failing
 * run and go on. timeoutMs guards against a target that stops answering (pgbench would wait forever).
 */
export function runCommand(
  cmd: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {},
): Promise<CommandResult> {
  installExitHook();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...args], {
      env: opts.env ?? cleanEnv(),
      stdio: ['pipe', 'pipe', 'pipe'],
      // Own process group too, so a Ctrl-C reaches only us and we stop children in order.
      detached: true,
    });
    live.add(child);
    commands.add(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            killTree(child, 'SIGKILL');
          }, opts.timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      live.delete(child);
      commands.delete(child);
      reject(e);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      live.delete(child);
      commands.delete(child);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
      });
    });
    // A child that exits before reading stdin would otherwise surface EPIPE as an unhandled error.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** Kill the running one-shot commands; services are left to their orderly stop. */
export function killCommands(): void {
  for (const child of commands) killTree(child, 'SIGKILL');
}

/** Kill every child still running, services included; the last resort. */
export function killAllChildren(): void {
  for (const child of live) killTree(child, 'SIGKILL');
}

export function commandFailure(what: string, r: CommandResult): string {
  const how = r.timedOut ? 'timed out' : describeExit(r.code, r.signal);
  const text = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-20).join('\n');
  return `${what} failed (${how})${text ? `:\n${text}` : ''}`;
}

export { freePort } from '../../test/support/pg-cluster.js';

/** Poll until something accepts TCP connections on host:port. */
export async function waitForPort(host: string, port: number, timeoutMs: number, service?: Service): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    const status = service?.exitStatus();
    if (service && status) {
      throw new Error(`${service.name} exited (${status}) before listening:\n${service.output().trim()}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`nothing listening on ${host}:${port} after ${timeoutMs} ms${service ? `:\n${service.output().trim()}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}
