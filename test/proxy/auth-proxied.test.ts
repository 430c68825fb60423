/**
 * Logins the proxy completes itself (auth query + SCRAM key pass-through, md5 pass-through),
 * through real clients with TLS toward the proxy, against a private cluster with `ssl = on`
 * reached with and without TLS.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { TLSSocket } from 'node:tls';
import path from 'node:path';
import pg from 'pg';
import postgres from 'postgres';
import { serialize } from 'pg-protocol';
import { runPsql, startTarget, type Target } from '../support/proxy-matrix.js';
import { RawClient, sqlstate } from '../support/raw-client.js';
import { parseConfig, type ProxyConfig } from '../../proxy/config.js';
import { selfSignedCertificate } from '../support/pg-cluster.js';
import { PASSWORDS, useTlsLogins } from '../support/tls-logins.js';

const env = useTlsLogins();
const { serverFatals, upstreamUrl, psql, expectBoundLogin } = env;

beforeAll(async () => {
  await env.cluster.psql("CREATE ROLE nopassword LOGIN; CREATE ROLE nologin PASSWORD 'nologinpass'");
});

for (const upstreamTls of [true, false]) {
  describe(`the proxy completes the login (upstream link ${upstreamTls ? 'with' : 'without'} TLS)`, () => {
    let t: Target;
    let fatalsBefore = 0;
    beforeAll(async () => {
      t = await startTarget('postgres', [], { upstream: upstreamUrl(upstreamTls ? 'require' : 'disable'), tlsCert: env.tlsCert, tlsKey: env.tlsKey });
      fatalsBefore = serverFatals();
    });
    afterAll(async () => {
      await t.proxy.stop(2_000);
    });

    for (const user of ['scramuser', 'md5user']) {
      for (const sslmode of ['require', 'prefer']) {
        for (const cb of ['prefer', 'require', 'disable']) {
          // libpq refuses md5 under channel_binding=require, as it does against the server itself.
          const works = !(user === 'md5user' && cb === 'require');
          it(`psql ${user} sslmode=${sslmode} channel_binding=${cb}: ${works ? 'logs in over TLS' : 'refused by libpq'}`, async () => {
            const r = await psql(t, `sslmode=${sslmode} channel_binding=${cb}`, user);
            if (!works) {
              expect(r.code).not.toBe(0);
              expect(r.stderr).toMatch(/channel binding required/);
              return;
            }
            expect(r.code, r.stderr).toBe(0);
            expect(r.stdout).toMatch(new RegExp(`^${user}\\|${upstreamTls ? 't' : 'f'}\\n`));
            expect(r.stdout).toMatch(/SSL connection \(protocol: TLSv1\.[23]/);
          });
        }
      }
    }

    for (const user of ['scramuser', 'md5user']) {
      for (const enableChannelBinding of [true, false]) {
        it(`pg ${user} over TLS, enableChannelBinding=${enableChannelBinding}`, async () => {
          const c = new pg.Client({
            host: '127.0.0.1', port: t.port, user, password: PASSWORDS[user]!, database: 'postgres',
            ssl: { rejectUnauthorized: false }, enableChannelBinding,
          });
          await c.connect();
          const r = await c.query<{ u: string; ssl: boolean }>('SELECT current_user AS u, (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS ssl');
          expect(r.rows[0]).toEqual({ u: user, ssl: upstreamTls });
          await c.end();
        });
      }
      it(`pg ${user} with connection strings sslmode=require and sslmode=prefer (libpq semantics)`, async () => {
        for (const sslmode of ['require', 'prefer']) {
          const c = new pg.Client({
            connectionString: `postgres://${user}:${PASSWORDS[user]!}@127.0.0.1:${t.port}/postgres?uselibpqcompat=true&sslmode=${sslmode}`,
          });
          await c.connect();
          const r = await c.query<{ u: string; ssl: boolean }>('SELECT current_user AS u, (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS ssl');
          expect(r.rows[0]).toEqual({ u: user, ssl: upstreamTls });
          expect((c as unknown as { connection: { stream: object } }).connection.stream).toBeInstanceOf(TLSSocket);
          await c.end();
        }
      });

      it(`pg ${user} without TLS toward the proxy`, async () => {
        const c = new pg.Client({ host: '127.0.0.1', port: t.port, user, password: PASSWORDS[user]!, database: 'postgres' });
        await c.connect();
        expect((await c.query<{ u: string }>('SELECT current_user AS u')).rows[0]).toEqual({ u: user });
        await c.end();
      });
    }

    it('postgres.js over TLS, SCRAM and md5', async () => {
      for (const user of ['scramuser', 'md5user']) {
        const sql = postgres({ host: '127.0.0.1', port: t.port, user, password: PASSWORDS[user]!, database: 'postgres', ssl: { rejectUnauthorized: false }, max: 1 });
        try {
          const rows = await sql<{ u: string }[]>`SELECT current_user AS u`;
          expect(rows[0]!.u).toBe(user);
        } finally {
          await sql.end();
        }
      }
    });

    it('a trust user and a cleartext-password user are relayed', async () => {
      const trust = new pg.Client({ host: '127.0.0.1', port: t.port, user: 'trustuser', database: 'postgres', ssl: { rejectUnauthorized: false } });
      await trust.connect();
      await trust.end();
      const plain = await psql(t, 'sslmode=require', 'plainuser', 'plainpass');
      expect(plain.code, plain.stderr).toBe(0);
      expect(plain.stdout).toMatch(/^plainuser\|/);
    });

    it('the server logged no FATAL for these correct logins', () => {
      expect(serverFatals() - fatalsBefore).toBe(0);
    });

    it('wrong passwords: FATAL 28P01 worded as the server words it, from psql and pg; the server logs nothing', async () => {
      const fatals = serverFatals();
      for (const user of ['scramuser', 'md5user']) {
        const r = await psql(t, 'sslmode=require', user, 'wrong');
        expect(r.code).not.toBe(0);
        expect(r.stderr).toContain(`FATAL:  password authentication failed for user "${user}"`);
        for (const ssl of [{ rejectUnauthorized: false }, false] as const) {
          const c = new pg.Client({ host: '127.0.0.1', port: t.port, user, password: 'wrong', database: 'postgres', ssl });
          await expect(c.connect()).rejects.toMatchObject({ code: '28P01', severity: 'FATAL', message: `password authentication failed for user "${user}"` });
        }
      }
      expect(serverFatals() - fatals).toBe(0);
    });

    it('roles without a password, unknown, or without LOGIN are refused in the server\'s words (psql channel_binding=prefer over TLS)', async () => {
      for (const [user, password, message] of [
        ['nopassword', 'any', 'password authentication failed for user "nopassword"'],
        ['nosuchrole', 'any', 'password authentication failed for user "nosuchrole"'],
        ['nologin', 'nologinpass', 'role "nologin" is not permitted to log in'],
      ] as const) {
        const r = await psql(t, 'sslmode=require channel_binding=prefer', user, password);
        expect(r.code).not.toBe(0);
        expect(r.stderr).toContain(`FATAL:  ${message}`);
      }
    });

    it('a client that hangs up when asked for a password (psql without one) leaves the server nothing to log', async () => {
      const fatals = serverFatals();
      const r = await psql(t, 'sslmode=require', 'scramuser', '');
      expect(r.stderr).toMatch(/no password supplied/);
      expect(serverFatals() - fatals).toBe(0);
      const after = await psql(t, 'sslmode=require', 'scramuser');
      expect(after.code, after.stderr).toBe(0);
    });

    it('a changed password applies to the next login', async () => {
      const role = `changer_${upstreamTls ? 'tls' : 'plain'}`;
      await env.cluster.psql(`CREATE ROLE ${role} LOGIN PASSWORD 'first'`);
      const login = async (password: string): Promise<void> => {
        const c = new pg.Client({ host: '127.0.0.1', port: t.port, user: role, password, database: 'postgres', ssl: { rejectUnauthorized: false } });
        await c.connect();
        await c.end();
      };
      await login('first');
      await env.cluster.psql(`ALTER ROLE ${role} PASSWORD 'second'`);
      await expect(login('first')).rejects.toMatchObject({ code: '28P01' });
      await login('second');
    });
  });
}

describe('the lookup function the proxy creates', () => {
  it('reads pg_authid as its owner, with a fixed search_path, for its creator only', async () => {
    const r = await env.cluster.psql(
      "SELECT prosecdef, proconfig, has_function_privilege('scramuser', oid, 'EXECUTE'), has_function_privilege('postgres', oid, 'EXECUTE') " +
        "FROM pg_proc WHERE oid = 'provenance.user_lookup(text)'::regprocedure",
    );
    expect(r.trim()).toBe('t|{"search_path=pg_catalog, pg_temp"}|f|t');
  });
});

describe('--auth-query', () => {
  it('reads the flag, then PROVENANCE_AUTH_QUERY; off relays; unset is the default query', () => {
    expect((parseConfig(['--auth-query', 'SELECT 1'], {}) as ProxyConfig).authQuery).toBe('SELECT 1');
    expect((parseConfig([], { PROVENANCE_AUTH_QUERY: 'SELECT 2' }) as ProxyConfig).authQuery).toBe('SELECT 2');
    expect((parseConfig(['--auth-query', 'off'], { PROVENANCE_AUTH_QUERY: 'SELECT 2' }) as ProxyConfig).authQuery).toBeNull();
    expect((parseConfig([], {}) as ProxyConfig).authQuery).toBeUndefined();
  });

  it('a query of one\'s own: any SQL that returns passwd for $1', async () => {
    await expectBoundLogin({
      upstream: upstreamUrl('require'),
      authQuery: 'SELECT rolname AS usename, rolpassword AS passwd FROM pg_catalog.pg_authid WHERE rolname = $1',
    });
  });
});

describe('channel binding data', () => {
  it('binds with the hash of the certificate\'s signature (SHA-384, SHA-512), as libpq computes it', async () => {
    for (const digest of ['sha384', 'sha512']) {
      const own = selfSignedCertificate(digest);
      const cert = path.join(path.dirname(env.tlsCert), `${digest}.crt`);
      const key = path.join(path.dirname(env.tlsCert), `${digest}.key`);
      writeFileSync(cert, own.cert);
      writeFileSync(key, own.key, { mode: 0o600 });
      await expectBoundLogin({ upstream: upstreamUrl('require'), tlsCert: cert, tlsKey: key });
    }
  });
});

describe('the embedded upstream (no passwords)', () => {
  it('still serves TLS clients', async () => {
    const t = await startTarget('embedded', [], { tlsCert: env.tlsCert, tlsKey: env.tlsKey });
    try {
      const r = await runPsql(['-X', '-At', '-d', `host=127.0.0.1 port=${t.port} user=postgres dbname=postgres sslmode=require channel_binding=prefer`, '-c', 'SELECT 7', '-c', '\\conninfo'], '');
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^7\n/);
      expect(r.stdout).toMatch(/SSL connection/);
    } finally {
      await t.proxy.stop(2_000);
    }
  });
});

describe('a client that breaks the SCRAM exchange gets the server\'s answers', () => {
  let t: Target;
  beforeAll(async () => {
    t = await startTarget('postgres', [], { upstream: upstreamUrl('require'), tlsCert: env.tlsCert, tlsKey: env.tlsKey });
  });
  afterAll(async () => {
    await t.proxy.stop(2_000);
  });

  /** Start a SCRAM login as scramuser; resolves once the proxy asked for SASL. */
  async function saslStart(): Promise<RawClient> {
    const c = await RawClient.start(t.port, 'scramuser');
    const m = await c.next();
    expect(m.code).toBe('R');
    expect(m.body.readInt32BE(0)).toBe(10);
    // No TLS toward the proxy: binding is not offered.
    expect(m.body.subarray(4).toString().split('\0').filter(Boolean)).toEqual(['SCRAM-SHA-256']);
    return c;
  }

  async function fatal(c: RawClient): Promise<{ code: string; text: string }> {
    const m = await c.next();
    expect(m.code).toBe('E');
    await c.waitClosed();
    return { code: sqlstate(m.body), text: m.body.toString() };
  }

  it('refuses bad first and final messages with 08P01, logs nothing on the server, and goes on serving', async () => {
    const fatals = serverFatals();
    let c = await saslStart();
    c.write(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256-PLUS', 'p=tls-server-end-point,,n=,r=abc'));
    expect(await fatal(c)).toMatchObject({ code: '08P01', text: expect.stringContaining('client selected an invalid SASL authentication mechanism') });

    c = await saslStart();
    c.write(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'garbage'));
    expect(await fatal(c)).toMatchObject({ code: '08P01', text: expect.stringContaining('malformed SCRAM message') });

    c = await saslStart();
    c.write(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'n,,n=,r=clientnonce'));
    const cont = await c.next();
    expect(cont.body.readInt32BE(0)).toBe(11);
    c.write(serialize.sendSCRAMClientFinalMessage(`c=biws,r=othernonce,p=${Buffer.alloc(32).toString('base64')}`));
    expect(await fatal(c)).toMatchObject({ code: '08P01', text: expect.stringContaining('Nonce does not match') });

    expect(serverFatals() - fatals).toBe(0);
    const r = await psql(t, 'sslmode=require', 'scramuser');
    expect(r.code, r.stderr).toBe(0);
  });

  it('answers bytes that are no protocol message with 08P01 and closes, also in a login it relays', async () => {
    const c = await saslStart();
    c.write(Buffer.from([0x01, 0, 0, 0, 4]));
    expect((await fatal(c)).code).toBe('08P01');
    const relayed = await RawClient.start(t.port, 'plainuser');
    relayed.write(Buffer.from([0x01, 0, 0, 0, 4]));
    expect((await fatal(relayed)).code).toBe('08P01');
  });

  it('completes logins again at once after the server restarted under its auth query connection', async () => {
    expect((await psql(t, 'sslmode=require channel_binding=require', 'scramuser')).code).toBe(0);
    await env.cluster.stop('fast');
    await env.cluster.start();
    const r = await psql(t, 'sslmode=require channel_binding=require', 'scramuser');
    expect(r.code, r.stderr).toBe(0);
  });
});
