/**
 * Relay mode: a proxy whose login may not run the auth query, or with --auth-query off, relays
 * the whole login. What a relayed login cannot do toward a server on TLS (bind) is refused by
 * the proxy, and libpq's unencrypted retry with it, so sslmode=prefer never lands in clear.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startTarget, type Target } from '../support/proxy-matrix.js';
import { useTlsLogins } from '../support/tls-logins.js';
import { USER_LOOKUP_FUNCTION } from '../../proxy/auth/auth-query.js';

const env = useTlsLogins();
const { serverFatals, upstreamUrl, psql, expectBoundLogin } = env;

describe('relay mode: a proxy whose login may not read verifiers', () => {
  let relay: Target;
  let off: Target;
  let plainUpstream: Target;
  beforeAll(async () => {
    // No proxy of a superuser ran here: the lookup function is missing, and this login may not create it.
    await env.cluster.psql("CREATE ROLE proxylogin LOGIN PASSWORD 'proxypass'");
    relay = await startTarget('postgres', [], { upstream: upstreamUrl('require', 'proxylogin', 'proxypass'), tlsCert: env.tlsCert, tlsKey: env.tlsKey });
    off = await startTarget('postgres', [], { upstream: upstreamUrl('require'), tlsCert: env.tlsCert, tlsKey: env.tlsKey, authQuery: null });
    plainUpstream = await startTarget('postgres', [], { upstream: upstreamUrl('disable', 'proxylogin', 'proxypass'), tlsCert: env.tlsCert, tlsKey: env.tlsKey });
  });
  afterAll(async () => {
    await Promise.all([relay.proxy.stop(2_000), off.proxy.stop(2_000), plainUpstream.proxy.stop(2_000)]);
  });

  it('relays logins that need no binding, over TLS on both legs', async () => {
    for (const t of [relay, off]) {
      const scram = await psql(t, 'sslmode=require channel_binding=disable', 'scramuser');
      expect(scram.code, scram.stderr).toBe(0);
      expect(scram.stdout).toMatch(/^scramuser\|t\n/);
      const md5 = await psql(t, 'sslmode=prefer channel_binding=prefer', 'md5user');
      expect(md5.code, md5.stderr).toBe(0);
      expect(md5.stdout).toMatch(/^md5user\|t\n/);
      expect(md5.stdout).toMatch(/SSL connection/);
    }
  });

  it('refuses a SCRAM client that could bind toward a TLS upstream, and its unencrypted retry: sslmode=prefer never lands in clear', async () => {
    for (const t of [relay, off]) {
      const fatals = serverFatals();
      const require = await psql(t, 'sslmode=require channel_binding=prefer', 'scramuser');
      expect(require.code).not.toBe(0);
      expect(require.stderr).toContain('SCRAM channel binding negotiation error');
      const prefer = await psql(t, 'sslmode=prefer channel_binding=prefer', 'scramuser');
      expect(prefer.code).not.toBe(0);
      expect(prefer.stderr).toContain('refusing an unencrypted retry of a login the proxy refused over TLS');
      const bound = await psql(t, 'sslmode=require channel_binding=require', 'scramuser');
      expect(bound.stderr).toMatch(/channel binding is required, but server did not offer an authentication method that supports channel binding/);
      const client = (enableChannelBinding: boolean): pg.Client => new pg.Client({
        host: '127.0.0.1', port: t.port, user: 'scramuser', password: 'scrampass', database: 'postgres', ssl: { rejectUnauthorized: false }, enableChannelBinding,
      });
      await expect(client(true).connect()).rejects.toMatchObject({ code: '08P01', message: 'SCRAM channel binding negotiation error' });
      const unbound = client(false);
      await unbound.connect();
      await unbound.end();
      expect(serverFatals() - fatals).toBe(0);
    }
  });

  it('relays every SCRAM login toward an upstream without TLS (the server does not bind there)', async () => {
    const r = await psql(plainUpstream, 'sslmode=prefer channel_binding=prefer', 'scramuser');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^scramuser\|f\n/);
    expect(r.stdout).toMatch(/SSL connection/);
    const c = new pg.Client({ host: '127.0.0.1', port: plainUpstream.port, user: 'scramuser', password: 'scrampass', database: 'postgres', ssl: { rejectUnauthorized: false } });
    await c.connect();
    await c.end();
  });

  it('wrong passwords still get the server\'s 28P01', async () => {
    // scramuser's refused TLS login above makes its plain logins from here look like retries for a moment.
    for (const [t, user] of [[relay, 'md5user'], [plainUpstream, 'scramuser']] as const) {
      const c = new pg.Client({ host: '127.0.0.1', port: t.port, user, password: 'wrong', database: 'postgres' });
      await expect(c.connect()).rejects.toMatchObject({ code: '28P01', message: `password authentication failed for user "${user}"` });
    }
  });

  it('once a DBA creates the function and grants it to the proxy\'s login, that proxy completes logins itself (channel_binding=require over TLS)', async () => {
    await env.cluster.psql(`${USER_LOOKUP_FUNCTION}
      GRANT USAGE ON SCHEMA provenance TO proxylogin;
      GRANT EXECUTE ON FUNCTION provenance.user_lookup(text) TO proxylogin;`);
    await expectBoundLogin({ upstream: upstreamUrl('require', 'proxylogin', 'proxypass') });
  });
});
