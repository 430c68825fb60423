/**
 * `provenance.as_of` and `provenance.as_user` as settings: every form of SET, RESET and SHOW, in
 * both protocols, in the startup packet, and the server's GUC semantics (a rolled back SET is
 * undone, SET LOCAL ends with its transaction). Moments are resolved in the session's TimeZone.
 */
import { expect, it } from 'vitest';
import pg from 'pg';
import { eachUpstream, runPsql, uniqueName } from '../support/proxy-matrix.js';
import { moment, refusal } from './as-of-support.js';

/** A psql login with these startup settings running SELECT 1: rejects with the SQLSTATE of its error. */
async function psqlLogin(psql: (args: readonly string[], input?: string) => Promise<{ stderr: string; code: number }>, setting: string): Promise<void> {
  const env = process.env['PGOPTIONS'];
  process.env['PGOPTIONS'] = `-c ${setting}`;
  try {
    const r = await psql(['-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose'], 'SELECT 1;\n');
    const code = /(?:FATAL|ERROR):\s+([0-9A-Z]{5})/.exec(r.stderr)?.[1];
    if (r.code !== 0 || code !== undefined) throw Object.assign(new Error(r.stderr), { code: code ?? 'none' });
  } finally {
    if (env === undefined) delete process.env['PGOPTIONS'];
    else process.env['PGOPTIONS'] = env;
  }
}

async function show(c: pg.Client, name = 'provenance.as_of'): Promise<string> {
  const r = await c.query({ text: `SHOW ${name}`, rowMode: 'array' });
  return String((r.rows[0] as unknown[])[0]);
}

eachUpstream('as-of settings', (t) => {
  async function client(opts: Partial<pg.ClientConfig> = {}): Promise<pg.Client> {
    const c = await t().pg(opts);
    await t().proxy.stateReady;
    return c;
  }

  /**
   * How a login with these startup options ends: the code of the error that failed the connect
   * itself (no ReadyForQuery came before it), or 'connected'.
   */
  async function loginError(options: string, url = t().url()): Promise<string> {
    const c = new pg.Client({ connectionString: url, options });
    c.on('error', () => undefined);
    try {
      return await c.connect().then(() => 'connected', (e: Error & { code?: string }) => e.code ?? e.message);
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  it('SET, SET TO, SHOW in ISO 8601, RESET, SET TO DEFAULT, RESET ALL, DISCARD ALL and an empty value', async () => {
    const c = await client();
    try {
      expect(await show(c)).toBe('');
      // Keywords and names in any mix of cases are the same statement to the server.
      await c.query("Set Provenance.As_Of = '2026-10-27 11:00:00+00'");
      expect(await show(c, 'PROVENANCE.as_of')).toBe('2026-10-27T11:00:00Z');
      await c.query('Reset Provenance.As_Of');
      expect(await show(c)).toBe('');
      await c.query("SET provenance.as_of = '2026-10-27 10:00:00.5+00'");
      expect(await show(c)).toBe('2026-10-27T10:00:00.5Z');
      await c.query('RESET provenance.as_of');
      expect(await show(c)).toBe('');
      await c.query("SET SESSION provenance.as_of TO '2026-10-27T12:30:00+02:00'");
      expect(await show(c)).toBe('2026-10-27T10:30:00Z');
      await c.query('SET provenance.as_of TO DEFAULT');
      expect(await show(c)).toBe('');
      await c.query("SET provenance.as_of = '2026-10-27 10:00+00'");
      await c.query('RESET ALL');
      expect(await show(c)).toBe('');
      await c.query("SET provenance.as_of = '2026-10-27 10:00+00'");
      await c.query('DISCARD ALL');
      expect(await show(c)).toBe('');
      await c.query("SET provenance.as_of = '2026-10-27 10:00+00'");
      await c.query("SET provenance.as_of = ''");
      expect(await show(c)).toBe('');
      const bad = await refusal(c.query("SET provenance.as_of = 'not a moment'"));
      expect(bad.code).toBe('22007');
      expect((await refusal(c.query("SET provenance.as_of = '2026-10-27 10:00+00', 'x'"))).code).toBe('22023');
      // Answered by the proxy, so a statement of its own.
      expect((await refusal(c.query("SELECT 1; SET provenance.as_of = '2026-10-27 10:00+00'"))).code).toBe('0A000');
      expect(await show(c)).toBe('');
    } finally {
      await c.end();
    }
  });

  it('takes the setting spelt in any mix of cases, as the server takes names, in both protocols', async () => {
    const c = await client();
    try {
      await c.query("SET Provenance.As_Of = '2026-10-27 10:00+00'");
      expect(await show(c)).toBe('2026-10-27T10:00:00Z');
      expect(await show(c, 'PROVENANCE.AS_OF')).toBe('2026-10-27T10:00:00Z');
      await c.query('Reset Provenance.As_Of');
      expect(await show(c)).toBe('');
      await c.query({ name: 'mixed-case-set', text: "set provenance.AS_of = '2026-10-27 11:00+00'" });
      expect(await show(c)).toBe('2026-10-27T11:00:00Z');
      await c.query('Discard All');
      expect(await show(c)).toBe('');
    } finally {
      await c.end();
    }
  });

  it('resolves the moment in the session\'s TimeZone and DateStyle', async () => {
    const c = await client();
    try {
      await c.query("SET TimeZone = 'America/New_York'");
      await c.query("SET DateStyle = 'ISO, DMY'");
      await c.query("SET provenance.as_of = '02/03/2026 05:00'");
      // 2 March 2026, 05:00 in New York (EST, UTC-5).
      expect(await show(c)).toBe('2026-03-02T10:00:00Z');
      const expected = (await c.query<{ m: string }>("SELECT to_char('02/03/2026 05:00'::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS m")).rows[0]!.m;
      expect(await show(c)).toBe(expected);
    } finally {
      await c.end();
    }
  });

  it('undoes a SET rolled back, keeps one committed, ends SET LOCAL with its transaction, follows savepoints', async () => {
    const c = await client();
    try {
      await c.query('BEGIN');
      await c.query("SET provenance.as_of = '2026-10-27 10:00+00'");
      expect(await show(c)).toBe('2026-10-27T10:00:00Z');
      await c.query('ROLLBACK');
      expect(await show(c)).toBe('');

      await c.query('BEGIN');
      await c.query("SET provenance.as_of = '2026-10-27 10:00+00'");
      await c.query('COMMIT');
      expect(await show(c)).toBe('2026-10-27T10:00:00Z');

      await c.query('BEGIN');
      await c.query("SET LOCAL provenance.as_of = '2026-10-28 10:00+00'");
      expect(await show(c)).toBe('2026-10-28T10:00:00Z');
      await c.query('COMMIT');
      expect(await show(c)).toBe('2026-10-27T10:00:00Z');

      await c.query('BEGIN');
      await c.query('SAVEPOINT s1');
      await c.query("SET provenance.as_of = '2026-10-29 10:00+00'");
      await c.query('ROLLBACK TO SAVEPOINT s1');
      expect(await show(c)).toBe('2026-10-27T10:00:00Z');
      await c.query('RESET provenance.as_of');
      await c.query('COMMIT');
      expect(await show(c)).toBe('');

      // A failed transaction ends in a rollback, whatever its last word.
      await c.query('BEGIN');
      await c.query("SET provenance.as_of = '2026-10-27 10:00+00'");
      await refusal(c.query('SELECT 1/0'));
      expect((await refusal(c.query("SET provenance.as_of = '2026-10-28 10:00+00'"))).code).toBe('25P02');
      await c.query('COMMIT');
      expect(await show(c)).toBe('');
      // SET LOCAL outside a transaction block changes nothing.
      await c.query("SET LOCAL provenance.as_of = '2026-10-27 10:00+00'");
      expect(await show(c)).toBe('');
    } finally {
      await c.end();
    }
  });

  it('takes the moment from the startup packet (options=-c), and RESET goes back to it', async () => {
    const c = await client({ options: '-c provenance.as_of=2026-10-27\\ 10:00:00+00' });
    try {
      expect(await show(c)).toBe('2026-10-27T10:00:00Z');
      await c.query("SET provenance.as_of = '2026-10-28 10:00+00'");
      await c.query('RESET provenance.as_of');
      expect(await show(c)).toBe('2026-10-27T10:00:00Z');
    } finally {
      await c.end();
    }
    // A moment the server does not read ends the login before it completes, as the server's own
    // FATAL for a bad -c option does: the connect fails, with the server's code.
    expect(await loginError('-c provenance.as_of=garbage')).toBe('22007');
    expect(await loginError('-c provenance.as_user=no_such_role_here')).toBe('42704');
    expect(await loginError('-c TimeZone=garbage', t().cluster.url())).toBe('22023');
    const bad = await refusal(psqlLogin(t().psql.bind(null), 'provenance.as_of=garbage'));
    expect(bad.message).toMatch(/connection to server .* failed: FATAL:\s+invalid input syntax for type timestamp with time zone: "garbage"/);
    const server = await refusal(psqlLogin((args, input) => runPsql(['-X', '-h', '127.0.0.1', '-p', String(t().cluster.port), '-U', t().cluster.superuser, '-d', 'postgres', ...args], t().cluster.password, input), 'TimeZone=garbage'));
    expect(server.message).toMatch(/connection to server .* failed: FATAL:\s+invalid value for parameter "TimeZone"/);
    const sql = t().sql({ connection: { options: '-c provenance.as_of=2026-10-27T11:00:00Z' } });
    try {
      const [row] = await sql.unsafe('SHOW provenance.as_of');
      expect(Object.values(row!)).toEqual(['2026-10-27T11:00:00Z']);
    } finally {
      await sql.end();
    }
  });

  it('answers SET and SHOW in the extended protocol (postgres.js), with GUC semantics', async () => {
    const sql = t().sql();
    try {
      await sql.unsafe("SET provenance.as_of = '2026-10-27 10:00+00'");
      expect(Object.values((await sql.unsafe('SHOW provenance.as_of'))[0]!)).toEqual(['2026-10-27T10:00:00Z']);
      await sql.begin(async (tx) => {
        await tx.unsafe("SET LOCAL provenance.as_of = '2026-10-28 10:00+00'");
        expect(Object.values((await tx.unsafe('SHOW provenance.as_of'))[0]!)).toEqual(['2026-10-28T10:00:00Z']);
      });
      expect(Object.values((await sql.unsafe('SHOW provenance.as_of'))[0]!)).toEqual(['2026-10-27T10:00:00Z']);
      await sql.begin(async (tx) => {
        await tx.unsafe('RESET provenance.as_of');
        throw new Error('roll back');
      }).catch(() => undefined);
      expect(Object.values((await sql.unsafe('SHOW provenance.as_of'))[0]!)).toEqual(['2026-10-27T10:00:00Z']);
    } finally {
      await sql.end();
    }
  });

  it('lets only provenance_admin members SET provenance.as_user, to a role that exists', async () => {
    const admin = await client();
    const role = uniqueName('reader');
    try {
      await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'`);
      const at = await moment(admin);
      await admin.query(`SET provenance.as_of = '${at}'`);
      await admin.query(`SET provenance.as_user = '${role}'`);
      expect(await show(admin, 'provenance.as_user')).toBe(role);
      expect((await refusal(admin.query("SET provenance.as_user = 'no_such_role_here'"))).code).toBe('42704');
      const other = await client({ user: role, password: 'pw' });
      try {
        const denied = await refusal(other.query('SET provenance.as_user = postgres'));
        expect(denied.code).toBe('42501');
        expect(await show(other, 'provenance.as_user')).toBe('');
      } finally {
        await other.end();
      }
      await admin.query('RESET provenance.as_user');
      expect(await show(admin, 'provenance.as_user')).toBe('');
    } finally {
      await admin.query('RESET ALL');
      await admin.query(`DROP ROLE ${role}`);
      await admin.end();
    }
  });
});
