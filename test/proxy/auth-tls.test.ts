import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { runPsql, sharedCluster, startTarget, useTarget, type Target } from '../support/proxy-matrix.js';

/** A self-signed certificate for the proxy's TLS toward clients. */
function selfSigned(dir: string): { cert: string; key: string } {
  const cert = path.join(dir, 'server.crt');
  const key = path.join(dir, 'server.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
  return { cert, key };
}

describe('authentication is relayed to PostgreSQL', () => {
  const t = useTarget('postgres');

  const logins: [string, string, string][] = [
    ['SCRAM-SHA-256', 'scramuser', 'scrampass'],
    ['md5', 'md5user', 'md5pass'],
    ['cleartext password', 'plainuser', 'plainpass'],
    ['trust', 'trustuser', ''],
  ];
  for (const [method, user, password] of logins) {
    it(`logs in with ${method} as the real user`, async () => {
      const c = new pg.Client({ host: '127.0.0.1', port: t.port, user, password, database: 'postgres' });
      await c.connect();
      const r = await c.query<{ u: string; s: string }>('SELECT current_user AS u, session_user AS s');
      expect(r.rows[0]).toEqual({ u: user, s: user });
      await c.end();
    });
  }

  it('passes the server\'s 28P01 for a wrong password', async () => {
    for (const user of ['scramuser', 'md5user', 'plainuser']) {
      const c = new pg.Client({ host: '127.0.0.1', port: t.port, user, password: 'wrong', database: 'postgres' });
      await expect(c.connect()).rejects.toMatchObject({ code: '28P01' });
    }
  });

  it('applies the real user\'s privileges', async () => {
    const c = new pg.Client({ host: '127.0.0.1', port: t.port, user: 'scramuser', password: 'scrampass', database: 'postgres' });
    await c.connect();
    await expect(c.query('CREATE ROLE not_allowed_here')).rejects.toMatchObject({ code: '42501' });
    await c.end();
  });

  it('logs in with psql and SCRAM', async () => {
    const r = await runPsql(['-X', '-At', '-h', '127.0.0.1', '-p', String(t.port), '-U', 'scramuser', '-d', 'postgres', '-c', 'SELECT current_user'], 'scrampass');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('scramuser');
  });
});

describe('TLS', () => {
  let dir: string;
  let t: Target;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'pp-tls-'));
    const { cert, key } = selfSigned(dir);
    t = await startTarget('postgres', [], { tlsCert: cert, tlsKey: key });
  });
  afterAll(async () => {
    await t.proxy.stop(2_000);
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers SSLRequest with S and serves the session over TLS (psql sslmode=require)', async () => {
    const r = await runPsql(['-X', '-At', '-d', `host=127.0.0.1 port=${t.port} user=scramuser dbname=postgres sslmode=require`, '-c', 'SELECT 1', '-c', '\\conninfo'], 'scrampass');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^1\n/);
    expect(r.stdout).toMatch(/SSL connection \(protocol: TLSv1\.[23]/);
  });

  it('serves pg over TLS with SCRAM (channel binding is not offered through the proxy)', async () => {
    const c = new pg.Client({ host: '127.0.0.1', port: t.port, user: 'scramuser', password: 'scrampass', database: 'postgres', ssl: { rejectUnauthorized: false } });
    await c.connect();
    expect((await c.query('SELECT 2 AS n')).rows[0]).toEqual({ n: 2 });
    await c.end();
  });

  it('still serves clients that do not ask for TLS', async () => {
    const r = await runPsql(['-X', '-At', '-d', `host=127.0.0.1 port=${t.port} user=scramuser dbname=postgres sslmode=disable`, '-c', 'SELECT 3'], 'scrampass');
    expect(r.stdout.trim()).toBe('3');
  });
});

describe('TLS not configured', () => {
  const t = useTarget('embedded');

  it('answers SSLRequest with N: sslmode=prefer falls back, sslmode=require fails', async () => {
    const prefer = await runPsql(['-X', '-At', '-d', `host=127.0.0.1 port=${t.port} user=postgres dbname=postgres sslmode=prefer`, '-c', 'SELECT 4'], '');
    expect(prefer.stdout.trim()).toBe('4');
    const require = await runPsql(['-X', '-At', '-d', `host=127.0.0.1 port=${t.port} user=postgres dbname=postgres sslmode=require`, '-c', 'SELECT 5'], '');
    expect(require.code).not.toBe(0);
    expect(require.stderr).toMatch(/server does not support SSL/);
  });

  it('answers GSSENCRequest with N (psql gssencmode=prefer)', async () => {
    const r = await runPsql(['-X', '-At', '-d', `host=127.0.0.1 port=${t.port} user=postgres dbname=postgres gssencmode=prefer sslmode=disable`, '-c', 'SELECT 6'], '');
    expect(r.stdout.trim()).toBe('6');
  });
});

describe('upstream sslmode', () => {
  it('fails with a clear FATAL when sslmode=require and the server has no SSL', async () => {
    const cluster = sharedCluster();
    const t = await startTarget('postgres', [], { upstream: cluster.url().replace(/\?.*$/, '') + '?sslmode=require' });
    try {
      const c = new pg.Client({ host: '127.0.0.1', port: t.port, user: 'trustuser', database: 'postgres' });
      await expect(c.connect()).rejects.toMatchObject({ code: '08001', message: expect.stringMatching(/does not support SSL/) });
    } finally {
      await t.proxy.stop(2_000);
    }
  });
});
