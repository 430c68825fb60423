/** The built provenance-proxy CLI as a child process, the way a user would run it. */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cleanEnv, freePort, startService, type Service } from './processes.js';
import { NODE_FLAGS, withAllocatorEnv } from '../../proxy/node-flags.js';

export interface RunningProxy {
  readonly host: string;
  readonly port: number;
  readonly service: Service;
}

/** dist/bench/support/proxy.js -> dist/proxy/cli.js: the compiled CLI next to this compiled file. */
function cliPath(): string {
  return fileURLToPath(new URL('../../proxy/cli.js', import.meta.url));
}

const HOST = '127.0.0.1';

/** PROVENANCE_* variables would otherwise add settings (e.g. TLS) the command line does not show. */
function proxyEnv(): NodeJS.ProcessEnv {
  const env = cleanEnv();
  for (const k of Object.keys(env)) {
    if (k.startsWith('PROVENANCE_')) delete env[k];
  }
  return env;
}
const READY = /provenance-proxy listening on /;

/**
 * `login` is the proxy's own login for its `provenance` schema, passed as PGUSER/PGPASSWORD so
 * that the password stays out of the process list.
 */
export async function startProxy(opts: {
  upstream: string;
  dataDir: string;
  login?: { user: string; password: string };
  extraArgs?: readonly string[];
  /** Node.js options after NODE_FLAGS (e.g. `--import` of a probe), and environment variables to add. */
  nodeArgs?: readonly string[];
  env?: NodeJS.ProcessEnv;
}): Promise<RunningProxy> {
  const cli = cliPath();
  if (!existsSync(cli)) throw new Error(`${cli} not found: build first (npx tsc -p .)`);
  let lastError: unknown = null;
  // The free port can be taken between freePort() and the proxy's listen; retry on that only.
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const service = startService(
      'provenance-proxy',
      process.execPath,
      [
        ...NODE_FLAGS,
        ...(opts.nodeArgs ?? []),
        cli,
        '--listen', `${HOST}:${port}`,
        '--upstream', opts.upstream,
        '--data-dir', opts.dataDir,
        // Teardown should not wait the default 30 s for a statement a killed pgbench left behind.
        '--shutdown-timeout', '5',
        '--http', 'off',
        ...(opts.extraArgs ?? []),
      ],
      { env: { ...withAllocatorEnv(proxyEnv()), ...(opts.login ? { PGUSER: opts.login.user, PGPASSWORD: opts.login.password } : {}), ...opts.env } },
    );
    try {
      await service.waitForOutput(READY, 30_000);
      return { host: HOST, port, service };
    } catch (err) {
      lastError = err;
      await service.stop(2_000);
      if (!/EADDRINUSE|address already in use/i.test(service.output())) break;
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}
