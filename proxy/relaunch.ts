/**
 * The installed `provenance-proxy` binary starts through its `#!/usr/bin/env node` line, which
 * cannot pass NODE_FLAGS. Started so, the command runs itself again as a child with them (and with
 * ALLOCATOR_ENV), passes the signals that stop it on to the child, and exits as the child did.
 */
import { spawn } from 'node:child_process';
import { withAllocatorEnv } from './node-flags.js';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export function relaunchWith(flags: readonly string[]): void {
  const script = process.argv[1];
  if (script === undefined) throw new Error('cannot relaunch: no script path in process.argv');
  const child = spawn(process.execPath, [...flags, ...process.execArgv, script, ...process.argv.slice(2)], { stdio: 'inherit', env: withAllocatorEnv(process.env) });
  const forward = (signal: NodeJS.Signals): void => {
    child.kill(signal);
  };
  for (const s of SIGNALS) process.on(s, forward);
  child.on('exit', (code, signal) => {
    for (const s of SIGNALS) process.off(s, forward);
    if (signal !== null) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
}
