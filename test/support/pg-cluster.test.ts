import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { attachPgCluster, startPgCluster } from './pg-cluster.js';

const cluster = attachPgCluster(inject('pg'));

async function query(opts: { user: string; password?: string; database?: string }, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({
    host: cluster.host,
    port: cluster.port,
    user: opts.user,
    password: opts.password,
    database: opts.database ?? 'postgres',
  });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

// Authentication request codes from the protocol's 'R' message.
const AUTH_OK = 0;
const AUTH_CLEARTEXT = 3;
const AUTH_MD5 = 5;
const AUTH_SASL = 10;

/**
 * Sends a bare StartupMessage and returns the first authentication request code, so the
 * test sees which method pg_hba.conf actually picked (a client library hides that).
 */
function authRequestCode(user: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const params = Buffer.from(`user\0${user}\0database\0postgres\0\0`, 'utf8');
    const msg = Buffer.alloc(8 + params.length);
    msg.writeInt32BE(msg.length, 0);
    msg.writeInt32BE(196608, 4); // protocol 3.0
    params.copy(msg, 8);
    const sock = connect({ host: cluster.host, port: cluster.port });
    let buf = Buffer.alloc(0);
    sock.setTimeout(10_000, () => sock.destroy(new Error('timeout waiting for auth request')));
    sock.on('error', reject);
    sock.on('connect', () => sock.write(msg));
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 9) return;
      const type = String.fromCharCode(buf[0] ?? 0);
      sock.destroy();
      if (type !== 'R') reject(new Error(`expected an Authentication message, got '${type}'`));
      else resolve(buf.readInt32BE(5));
    });
  });
}

describe('provided PostgreSQL cluster', () => {
  it('accepts the superuser over SCRAM', async () => {
    expect(await authRequestCode('postgres')).toBe(AUTH_SASL);
    const res = await query({ user: cluster.superuser, password: cluster.password }, 'SELECT current_user AS u');
    expect(res.rows[0]).toEqual({ u: 'postgres' });
  });

  it('accepts md5user with md5 auth and an md5-stored password', async () => {
    expect(await authRequestCode('md5user')).toBe(AUTH_MD5);
    const stored = await cluster.psql(`SELECT left(rolpassword, 3) FROM pg_authid WHERE rolname = 'md5user'`);
    expect(stored.trim()).toBe('md5');
    const res = await query({ user: 'md5user', password: 'md5pass' }, 'SELECT current_user AS u');
    expect(res.rows[0]).toEqual({ u: 'md5user' });
  });

  it('accepts plainuser with cleartext password auth', async () => {
    expect(await authRequestCode('plainuser')).toBe(AUTH_CLEARTEXT);
    const res = await query({ user: 'plainuser', password: 'plainpass' }, 'SELECT current_user AS u');
    expect(res.rows[0]).toEqual({ u: 'plainuser' });
  });

  it('accepts trustuser without a password', async () => {
    expect(await authRequestCode('trustuser')).toBe(AUTH_OK);
    const res = await query({ user: 'trustuser' }, 'SELECT current_user AS u');
    expect(res.rows[0]).toEqual({ u: 'trustuser' });
  });

  it('accepts scramuser over SCRAM and connects to the app database via url()', async () => {
    expect(await authRequestCode('scramuser')).toBe(AUTH_SASL);
    const client = new pg.Client({
      connectionString: cluster.url({ user: 'scramuser', password: 'scrampass', database: 'app' }),
    });
    await client.connect();
    try {
      const res = await client.query<{ db: string }>('SELECT current_database() AS db');
      expect(res.rows[0]?.db).toBe('app');
    } finally {
      await client.end();
    }
  });

  it('rejects a wrong password with SQLSTATE 28P01', async () => {
    await expect(query({ user: 'scramuser', password: 'wrong' }, 'SELECT 1')).rejects.toMatchObject({ code: '28P01' });
    await expect(query({ user: 'md5user', password: 'wrong' }, 'SELECT 1')).rejects.toMatchObject({ code: '28P01' });
  });

  it('runs with wal_level=logical and a replication-capable repuser', async () => {
    expect((await cluster.psql('SHOW wal_level')).trim()).toBe('logical');
    const res = await query({ user: cluster.superuser, password: cluster.password }, 'SHOW wal_level');
    expect(res.rows[0]).toEqual({ wal_level: 'logical' });
    const rep = await cluster.psql(`SELECT rolreplication FROM pg_roles WHERE rolname = 'repuser'`);
    expect(rep.trim()).toBe('t');
  });

  it('listens only on the loopback address it reports', async () => {
    expect(cluster.host).toBe('127.0.0.1');
    expect((await cluster.psql('SHOW listen_addresses')).trim()).toBe('127.0.0.1');
  });
});

// Lifecycle is exercised on a private cluster: stopping the shared one would break test
// files running concurrently in the other worker.
describe('startPgCluster lifecycle', () => {
  it('stops, restarts on the same port and data dir, and cleans up on destroy', async () => {
    const own = await startPgCluster();
    try {
      expect(own.port).not.toBe(cluster.port);
      const url = own.url({ user: 'trustuser' });
      expect(url).toBe(`postgres://trustuser@127.0.0.1:${own.port}/postgres`);
      await own.psql('CREATE TABLE kept (v int); INSERT INTO kept VALUES (42);', 'app');

      await own.stop();
      const down = new pg.Client({ connectionString: url });
      await expect(down.connect()).rejects.toMatchObject({ code: 'ECONNREFUSED' });

      await own.start();
      expect((await own.psql('SELECT v FROM kept', 'app')).trim()).toBe('42');

      await own.stop('immediate');
      await own.start();
      const up = new pg.Client({ connectionString: url });
      await up.connect();
      await up.end();

      await expect(own.psql('SELECT * FROM no_such_table')).rejects.toThrow(/no_such_table/);
    } finally {
      await own.destroy();
    }
    expect(existsSync(dirname(own.dataDir))).toBe(false);
  });

  it('refuses to destroy the shared cluster from a worker', async () => {
    await expect(cluster.destroy()).rejects.toThrow(/owned by another process/);
  });
});

describe('test worker', () => {
  it('runs with --no-node-snapshot, which isolated-vm requires', () => {
    expect(process.execArgv).toContain('--no-node-snapshot');
  });
});
