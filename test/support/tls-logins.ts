/**
 * A private cluster with `ssl = on` and a certificate for the proxy, for tests of logins over
 * TLS: each test file that calls useTlsLogins() gets its own, so other suites are unaffected.
 */
import { afterAll, beforeAll, expect } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runPsql, startTarget, type Target } from './proxy-matrix.js';
import { selfSignedCertificate, serverLogPath, startPgCluster, type PgCluster } from './pg-cluster.js';
import type { ProxyConfig } from '../../proxy/config.js';

/** Passwords of the cluster's test roles (see pg-cluster.ts). */
export const PASSWORDS: Readonly<Record<string, string>> = { scramuser: 'scrampass', md5user: 'md5pass' };

export interface TlsLogins {
  readonly cluster: PgCluster;
  readonly tlsCert: string;
  readonly tlsKey: string;
  /** FATAL lines the server has logged so far. */
  serverFatals(): number;
  /** The upstream URL of the cluster with this sslmode, logging in as `user` (the superuser by default). */
  upstreamUrl(sslmode: string, user?: string, password?: string): string;
  /** psql through a proxy: prints `current_user|ssl of the upstream link`, then \conninfo. */
  psql(t: Target, conn: string, user: string, password?: string): Promise<{ stdout: string; stderr: string; code: number }>;
  /** A proxy so configured completes a SCRAM login itself: channel_binding=require over TLS on both legs works. */
  expectBoundLogin(config: Partial<ProxyConfig>): Promise<void>;
}

export function useTlsLogins(): TlsLogins {
  let cluster: PgCluster | null = null;
  let dir = '';
  const env: TlsLogins = {
    get cluster() {
      if (!cluster) throw new Error('the TLS cluster is not started yet');
      return cluster;
    },
    get tlsCert() {
      return path.join(dir, 'proxy.crt');
    },
    get tlsKey() {
      return path.join(dir, 'proxy.key');
    },
    serverFatals() {
      return readFileSync(serverLogPath(env.cluster), 'utf8').split('\n').filter((l) => /\bFATAL:/.test(l)).length;
    },
    upstreamUrl(sslmode, user = 'postgres', password = env.cluster.password) {
      return `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${env.cluster.port}/postgres?sslmode=${sslmode}`;
    },
    psql(t, conn, user, password = PASSWORDS[user] ?? '') {
      return runPsql(
        ['-X', '-At', '-d', `host=127.0.0.1 port=${t.port} user=${user} dbname=postgres ${conn}`, '-c', 'SELECT current_user, (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())', '-c', '\\conninfo'],
        password,
      );
    },
    async expectBoundLogin(config) {
      const t = await startTarget('postgres', [], { tlsCert: env.tlsCert, tlsKey: env.tlsKey, ...config });
      try {
        const r = await env.psql(t, 'sslmode=require channel_binding=require', 'scramuser');
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toMatch(/^scramuser\|t\n/);
      } finally {
        await t.proxy.stop(2_000);
      }
    },
  };
  beforeAll(async () => {
    cluster = await startPgCluster({ ssl: 'self-signed' });
    dir = mkdtempSync(path.join(tmpdir(), 'pp-tls-logins-'));
    const own = selfSignedCertificate();
    writeFileSync(env.tlsCert, own.cert);
    writeFileSync(env.tlsKey, own.key, { mode: 0o600 });
  });
  afterAll(async () => {
    await cluster?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  return env;
}
