/** The proxy as users run it: the built CLI in a child process. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS, withAllocatorEnv } from '../../proxy/node-flags.js';

export const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/proxy/cli.js');

export interface CliProcess {
  readonly child: ChildProcess;
  /** The line printed once it listens. */
  readonly banner: string;
  readonly port: number;
  stderr(): string;
  /** Resolves with the exit code (or signal name) once the process ended. */
  readonly exited: Promise<number | string>;
  /** Resident and peak resident memory of the process, in MiB, from /proc. */
  memory(): { rss: number; peak: number };
}

/** `nodeFlags`: what `node` is started with (the installed binary's `#!/usr/bin/env node` gives none). */
export async function startCli(args: readonly string[], env: NodeJS.ProcessEnv = {}, nodeFlags: readonly string[] = NODE_FLAGS): Promise<CliProcess> {
  const child = spawn(process.execPath, [...nodeFlags, CLI, ...args], {
    // A free port for the HTTP API, unless a test names one: CLI tests run in parallel.
    env: withAllocatorEnv({ ...process.env, PROVENANCE_HTTP: '127.0.0.1:0', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const banner = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner within 60s; stderr: ${err}`)), 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(out.slice(0, nl));
      }
    });
    void exited.then((code) => reject(new Error(`exited with ${code} before listening: ${err}`)));
  });
  const m = /listening on [^ ]+:(\d+),/.exec(banner);
  if (!m) throw new Error(`unexpected banner: ${banner}`);
  return {
    child, banner, port: Number(m[1]), exited,
    stderr: () => err,
    memory() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kb = (key: string): number => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
      return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
    },
  };
}

/** Run the CLI to completion (for --help and bad options). */
export function runCli(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...NODE_FLAGS, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
