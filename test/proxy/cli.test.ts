import { describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import pg from 'pg';
import { freshDataDir, sharedCluster } from '../support/proxy-matrix.js';
import { runCli, startCli } from '../support/cli-process.js';
import { RawClient } from '../support/raw-client.js';
import { serialize } from 'pg-protocol';

describe('the provenance-proxy command', () => {
  it('prints its options with --help and refuses unknown ones', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    for (const flag of ['--listen', '--upstream', '--data-dir', '--tls-cert', '--tls-key', '--shutdown-timeout']) expect(help.stdout).toContain(flag);
    const bad = await runCli(['--no-such-flag']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/no-such-flag/);
    const badListen = await runCli(['--listen', 'nowhere']);
    expect(badListen.code).toBe(2);
    expect(badListen.stderr).toMatch(/expected HOST:PORT/);
  });

  it('starts on embedded PGlite from environment variables and says how to connect', async () => {
    const dir = freshDataDir();
    const proxy = await startCli([], { PROVENANCE_LISTEN: '127.0.0.1:0', PROVENANCE_DATA_DIR: dir });
    try {
      expect(proxy.banner).toMatch(/^provenance-proxy listening on 127\.0\.0\.1:\d+, fronting embedded PGlite in .*pglite; connect with: psql "postgresql:\/\/postgres@127\.0\.0\.1:\d+\/postgres"; HTTP API on http:\/\/127\.0\.0\.1:\d+$/);
      const c = new pg.Client({ host: '127.0.0.1', port: proxy.port, user: 'postgres', database: 'postgres' });
      await c.connect();
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      await c.end();
      // A second proxy on the same data directory refuses to start.
      const second = await runCli(['--listen', '127.0.0.1:0', '--data-dir', dir]);
      expect(second.code).toBe(1);
      expect(second.stderr).toMatch(/in use by another provenance-proxy/);
    } finally {
      proxy.child.kill('SIGTERM');
      expect(await proxy.exited).toBe(0);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('on SIGTERM lets a running statement finish, ends sessions with 57P01 and exits 0', async () => {
    const cluster = sharedCluster();
    const dir = freshDataDir();
    const proxy = await startCli(['--listen', '127.0.0.1:0', '--data-dir', dir, '--upstream', `postgres://127.0.0.1:${cluster.port}/postgres?sslmode=disable`, '--shutdown-timeout', '20'], { PGUSER: cluster.superuser, PGPASSWORD: cluster.password });
    try {
      const busy = new pg.Client({ host: '127.0.0.1', port: proxy.port, user: 'trustuser', database: 'postgres' });
      const idle = new pg.Client({ host: '127.0.0.1', port: proxy.port, user: 'trustuser', database: 'postgres' });
      await busy.connect();
      await idle.connect();
      const idleErr = new Promise<Error & { code?: string }>((resolve) => idle.on('error', resolve));
      const busyErr = new Promise<Error & { code?: string }>((resolve) => busy.on('error', resolve));
      const running = busy.query("SELECT pg_sleep(1.5), 'finished' AS state");
      await new Promise((r) => setTimeout(r, 300));
      proxy.child.kill('SIGTERM');
      expect((await idleErr).code).toBe('57P01');
      expect((await running).rows[0]).toMatchObject({ state: 'finished' });
      expect((await busyErr).code).toBe('57P01');
      expect(await proxy.exited).toBe(0);
      expect(proxy.stderr()).toMatch(/SIGTERM received/);
    } finally {
      proxy.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps its memory bounded while a slow client reads a 1M-row result', async () => {
    const cluster = sharedCluster();
    const dir = freshDataDir();
    const proxy = await startCli(['--listen', '127.0.0.1:0', '--data-dir', dir, '--upstream', `postgres://127.0.0.1:${cluster.port}/postgres?sslmode=disable`], { PGUSER: cluster.superuser, PGPASSWORD: cluster.password });
    try {
      const c = await RawClient.connect(proxy.port, 'trustuser');
      const before = proxy.memory();
      // About 130 MB of DataRows.
      c.write(serialize.query("SELECT i, repeat('x', 100) AS pad FROM generate_series(1, 1000000) i"));
      c.sock.pause();
      await new Promise((r) => setTimeout(r, 3_000));
      const stalled = proxy.memory();
      c.sock.resume();
      let rows = 0;
      for (;;) {
        const m = await c.next(60_000);
        if (m.code === 'D') rows++;
        if (m.code === 'Z') break;
        // Read slowly: yield to the event loop now and then so the proxy sees a slow reader.
        if (rows % 50_000 === 0) await new Promise((r) => setTimeout(r, 20));
      }
      const after = proxy.memory();
      expect(rows).toBe(1_000_000);
      // The proxy stops reading the upstream while the client does not read: it never holds the result.
      expect(after.peak - before.rss).toBeLessThan(64);
      console.log(`proxy RSS before ${before.rss.toFixed(1)} MiB, while stalled ${stalled.rss.toFixed(1)} MiB, peak ${after.peak.toFixed(1)} MiB for a ~130 MB result`);
      c.end();
    } finally {
      proxy.child.kill('SIGTERM');
      await proxy.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
