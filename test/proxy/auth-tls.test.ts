import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { runPsql, sharedCluster, startTarget, useTarget, type Target } from '../support/proxy-matrix.js';
import { startPgCluster, type PgCluster } from '../support/pg-cluster.js';

/** A self-signed certificate for the proxy's TLS toward clients. */
function selfSigned(dir: string): { cert: string; key: string } {
  const cert = path.join(dir, 'server.crt');
  const key = path.join(dir, 'server.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
  return { cert, key };
}

describe('clients log in to PostgreSQL as themselves', () => {
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

  it('serves pg over TLS with SCRAM', async () => {
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

describe('upstream TLS as the URL\'s sslmode says', () => {
  let dir: string;
  let cluster: PgCluster;
  let ca: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'pp-upstream-tls-'));
    ca = path.join(dir, 'ca.crt');
    const caKey = path.join(dir, 'ca.key');
    const key = path.join(dir, 'server.key');
    const csr = path.join(dir, 'server.csr');
    const cert = path.join(dir, 'server.crt');
    const ext = path.join(dir, 'ext.cnf');
    const openssl = (args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore' });
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', caKey, '-out', ca, '-days', '1', '-subj', '/CN=test-ca']);
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=localhost']);
    writeFileSync(ext, 'subjectAltName=DNS:localhost\n');
    openssl(['x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-CAcreateserial', '-out', cert, '-days', '1', '-extfile', ext]);
    cluster = await startPgCluster({ ssl: { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') } });
  });
  afterAll(async () => {
    await cluster.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Whether the proxy's upstream connection for a fresh session is encrypted. */
  async function upstreamSsl(query: string): Promise<boolean> {
    const t = await startTarget('postgres', [], { upstream: `postgres://postgres:${encodeURIComponent(cluster.password)}@localhost:${cluster.port}/postgres?${query}` });
    try {
      const c = new pg.Client({ host: '127.0.0.1', port: t.port, user: 'trustuser', database: 'postgres' });
      await c.connect();
      const r = await c.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
      await c.end();
      return r.rows[0]!.ssl;
    } finally {
      await t.proxy.stop(2_000);
    }
  }

  it('uses TLS with prefer, require and verify-full (with the right CA), and not with disable', async () => {
    expect(await upstreamSsl('sslmode=prefer')).toBe(true);
    expect(await upstreamSsl('sslmode=require')).toBe(true);
    expect(await upstreamSsl(`sslmode=verify-full&sslrootcert=${encodeURIComponent(ca)}`)).toBe(true);
    expect(await upstreamSsl(`sslmode=verify-ca&sslrootcert=${encodeURIComponent(ca)}`)).toBe(true);
    expect(await upstreamSsl('sslmode=disable')).toBe(false);
  });

  it('refuses a server certificate it cannot verify', async () => {
    const t = await startTarget('postgres', [], { upstream: `postgres://localhost:${cluster.port}/postgres?sslmode=verify-full` });
    try {
      const c = new pg.Client({ host: '127.0.0.1', port: t.port, user: 'trustuser', database: 'postgres' });
      await expect(c.connect()).rejects.toMatchObject({ code: '08001', message: expect.stringMatching(/SSL error/) });
    } finally {
      await t.proxy.stop(2_000);
    }
  });
});
