/**
 * Runs the same tests against every upstream: embedded PGlite and the private PostgreSQL
 * cluster of this test run. Each suite gets a proxy of its own on a free port.
 */
import { afterAll, beforeAll, describe, inject } from 'vitest';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import pg from 'pg';
import postgres from 'postgres';
import { startProxy, type RunningProxy, type StartOptions } from '../../proxy/compose.js';
import type { ProxyConfig } from '../../proxy/config.js';
import type { Plugin } from '../../plugins/hooks.js';
import { attachPgCluster, type PgCluster } from './pg-cluster.js';

export type UpstreamKind = 'embedded' | 'postgres';

export interface Target {
  readonly kind: UpstreamKind;
  readonly proxy: RunningProxy;
  readonly port: number;
  /** Login that works on this upstream (the superuser). */
  readonly user: string;
  readonly password: string;
  readonly database: string;
  /** The real cluster (for the postgres upstream; the shared cluster of the run otherwise). */
  readonly cluster: PgCluster;
  /** A connected node-postgres client through the proxy. */
  pg(opts?: Partial<pg.ClientConfig>): Promise<pg.Client>;
  /** A postgres.js pool through the proxy. */
  sql(opts?: postgres.Options<Record<string, postgres.PostgresType>>): postgres.Sql;
  /** The real psql binary through the proxy; resolves with stdout, stderr and exit code. */
  psql(args: readonly string[], input?: string): Promise<{ stdout: string; stderr: string; code: number }>;
  url(): string;
}

/** A new data directory holding a copy of the run's initialised PGlite database. */
export function freshDataDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'pp-test-'));
  cpSync(inject('pgliteTemplate'), path.join(dir, 'pglite'), { recursive: true });
  return dir;
}

export function baseConfig(overrides: Partial<ProxyConfig> = {}): ProxyConfig {
  return {
    listenHost: '127.0.0.1',
    listenPort: 0,
    upstream: undefined,
    dataDir: overrides.dataDir ?? freshDataDir(),
    tlsCert: undefined,
    tlsKey: undefined,
    maxMessageSize: 16 * 1024 * 1024,
    shutdownTimeoutMs: 5_000,
    transformsDir: path.join(tmpdir(), 'pp-no-transforms-dir'),
    demo: false,
    transformTimeoutMs: 1_000,
    transformMemoryMb: 64,
    transformIsolates: 2,
    provenanceDurability: 'async',
    provenanceStore: undefined,
    ...overrides,
  };
}

export function sharedCluster(): PgCluster {
  return attachPgCluster(inject('pg'));
}

/** Start a proxy on an upstream; the caller stops it. */
export async function startTarget(
  kind: UpstreamKind, plugins: readonly Plugin[] = [], config: Partial<ProxyConfig> = {}, env?: NodeJS.ProcessEnv,
  timetravel?: StartOptions['timetravel'],
): Promise<Target> {
  const cluster = sharedCluster();
  const cfg = baseConfig({
    upstream: kind === 'postgres' ? cluster.url().replace(/\?.*$/, '') + '?sslmode=disable' : undefined,
    ...config,
  });
  const logs: string[] = [];
  // Spans are exported only where a test asks for them (OTEL_* of the environment are not used).
  const proxy = await startProxy(cfg, { plugins, log: (m) => logs.push(m), env: env ?? {}, ...(timetravel ? { timetravel } : {}) });
  const port = proxy.address.port;
  const user = 'postgres';
  const password = kind === 'postgres' ? cluster.password : '';
  const database = 'postgres';
  const stop = proxy.stop.bind(proxy);
  const wrapped: RunningProxy = {
    ...proxy,
    async stop(t?: number) {
      await stop(t);
      rmSync(cfg.dataDir, { recursive: true, force: true });
    },
  };
  const url = (): string => `postgres://${user}${password ? ':' + encodeURIComponent(password) : ''}@127.0.0.1:${port}/${database}`;
  return {
    kind, proxy: wrapped, port, user, password, database, cluster, url,
    async pg(opts = {}) {
      const c = new pg.Client({ host: '127.0.0.1', port, user, password, database, ...opts });
      await c.connect();
      return c;
    },
    sql(opts = {}) {
      return postgres({ host: '127.0.0.1', port, user, password, database, max: 1, onnotice: () => undefined, ...opts });
    },
    psql(args, input) {
      return runPsql(['-X', '-h', '127.0.0.1', '-p', String(port), '-U', user, '-d', database, ...args], password, input);
    },
  };
}

export function runPsql(args: readonly string[], password: string, input?: string): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn('psql', [...args], {
      env: { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: '10', PGSSLMODE: 'disable' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ stdout, stderr, code: code ?? -1 }));
    child.stdin.end(input ?? '');
  });
}

/**
 * A proxy started before the suite's tests and stopped after them. The returned object stands
 * for the target once started (it forwards every property to it).
 */
export function useTarget(
  kind: UpstreamKind, plugins: readonly Plugin[] = [], config: () => Partial<ProxyConfig> = () => ({}), env?: () => NodeJS.ProcessEnv,
): Target {
  let target: Target | undefined;
  beforeAll(async () => {
    target = await startTarget(kind, plugins, config(), env?.());
  });
  afterAll(async () => {
    await target?.proxy.stop(2_000);
  });
  return new Proxy({} as Target, {
    get(_, key) {
      if (!target) throw new Error('proxy not started');
      return Reflect.get(target, key) as unknown;
    },
  });
}

/** `describe` once per upstream, with a started proxy available through the getter. */
export function eachUpstream(name: string, body: (t: () => Target) => void, plugins: () => readonly Plugin[] = () => []): void {
  for (const kind of ['embedded', 'postgres'] as const) {
    describe(`${name} [${kind}]`, () => {
      const target = useTarget(kind, plugins());
      body(() => target);
    });
  }
}

/** A unique name per test, so suites sharing the real cluster never collide. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
}
