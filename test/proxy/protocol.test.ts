import { expect, it } from 'vitest';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { eachUpstream, uniqueName } from '../support/proxy-matrix.js';
import { RawClient } from '../support/raw-client.js';

eachUpstream('protocol', (t) => {
  it('runs several statements in one simple Query', async () => {
    const c = await t().pg();
    try {
      const res = (await c.query('SELECT 1 AS a; SELECT 2 AS b, 3 AS c')) as unknown as pg.QueryResult[];
      expect(res).toHaveLength(2);
      expect(res[0]!.rows).toEqual([{ a: 1 }]);
      expect(res[1]!.rows).toEqual([{ b: 2, c: 3 }]);
    } finally {
      await c.end();
    }
  });

  it('sends ParameterStatus at login and when a reported setting changes', async () => {
    const c = await RawClient.connect(t().port, t().kind === 'postgres' ? 'trustuser' : 'postgres');
    const pairs = (msgs: readonly { code: string; body: Buffer }[]): string[][] =>
      msgs.filter((m) => m.code === 'S').map((m) => m.body.toString('utf8').split('\0').slice(0, 2));
    try {
      const atLogin = new Map(pairs(c.login).map(([k, v]) => [k!, v!]));
      for (const name of ['server_version', 'server_encoding', 'client_encoding', 'DateStyle', 'TimeZone', 'integer_datetimes', 'standard_conforming_strings']) {
        expect(atLogin.has(name), name).toBe(true);
      }
      expect(c.login.map((m) => m.code).slice(-2)).toEqual(['K', 'Z']);
      c.write(serialize.query("SET application_name = 'renamed'"));
      expect(pairs(await c.untilReady())).toContainEqual(['application_name', 'renamed']);
    } finally {
      c.end();
    }
  });

  it('reports the real backend process id in BackendKeyData', async () => {
    const c = await t().pg();
    try {
      const { rows } = await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      expect((c as unknown as { processID: number }).processID).toBe(rows[0]!.pid);
    } finally {
      await c.end();
    }
  });

  it('relays startup parameters (application_name, options)', async () => {
    const c = await t().pg({ application_name: 'matrix-app', options: '-c search_path=pg_catalog,public -c statement_timeout=12345' });
    try {
      const { rows } = await c.query("SELECT current_setting('application_name') AS app, current_setting('search_path') AS sp, current_setting('statement_timeout') AS st");
      expect(rows[0]).toEqual({ app: 'matrix-app', sp: 'pg_catalog,public', st: '12345ms' });
    } finally {
      await c.end();
    }
  });

  it('runs named prepared statements with binary results through pg', async () => {
    const c = await t().pg({ binary: true } as Partial<pg.ClientConfig>);
    try {
      for (let i = 0; i < 3; i++) {
        const r = await c.query({ name: 'add-one', text: 'SELECT $1::int8 + 1 AS n, $2::text AS s, now() AS ts', values: [41 + i, 'x'] });
        expect(r.rows[0]!.n).toBe(String(42 + i));
        expect(r.rows[0]!.s).toBe('x');
        expect(r.rows[0]!.ts).toBeInstanceOf(Date);
      }
    } finally {
      await c.end();
    }
  });

  it('pipelines extended-protocol queries with postgres.js, with an error in the middle', async () => {
    const sql = t().sql({ max: 1 });
    try {
      const results = await Promise.allSettled([
        sql`SELECT ${1}::int AS a`,
        sql`SELECT 1/${0}::int AS boom`,
        sql`SELECT ${'after'}::text AS b`,
      ]);
      expect(results[0]).toMatchObject({ status: 'fulfilled', value: [{ a: 1 }] });
      expect(results[1]).toMatchObject({ status: 'rejected', reason: { code: '22012' } });
      expect(results[2]).toMatchObject({ status: 'fulfilled', value: [{ b: 'after' }] });
      // Many pipelined statements on one connection, answered in order.
      const many = await Promise.all(Array.from({ length: 50 }, (_, i) => sql`SELECT ${i}::int AS i`));
      expect(many.map((r) => r[0]!.i)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    } finally {
      await sql.end();
    }
  });

  it('tracks transactions and their status, including a failed one', async () => {
    const table = uniqueName('tx');
    const c = await t().pg();
    try {
      await c.query(`CREATE TABLE ${table} (a int)`);
      await c.query('BEGIN');
      await c.query(`INSERT INTO ${table} VALUES (1)`);
      await expect(c.query('SELECT 1/0')).rejects.toMatchObject({ code: '22012' });
      await expect(c.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
      await c.query('ROLLBACK');
      const r = await c.query(`SELECT count(*)::int AS n FROM ${table}`);
      expect(r.rows[0]).toEqual({ n: 0 });
      await c.query(`DROP TABLE ${table}`);
    } finally {
      await c.end();
    }
  });

  it('delivers NOTICE messages', async () => {
    const c = await t().pg();
    try {
      const notices: string[] = [];
      c.on('notice', (n) => notices.push(n.message ?? ''));
      await c.query("DO $$ BEGIN RAISE NOTICE 'hello from %', 'plpgsql'; END $$");
      expect(notices).toContain('hello from plpgsql');
    } finally {
      await c.end();
    }
  });

  it('delivers NOTIFY to an idle listener', async () => {
    const channel = uniqueName('chan');
    const listener = await t().pg();
    const notifier = await t().pg();
    try {
      await listener.query(`LISTEN ${channel}`);
      const got = new Promise<pg.Notification>((resolve) => listener.on('notification', resolve));
      await notifier.query(`NOTIFY ${channel}, 'payload-1'`);
      const n = await got;
      expect(n.channel).toBe(channel);
      expect(n.payload).toBe('payload-1');
      // After UNLISTEN, nothing more arrives.
      await listener.query(`UNLISTEN ${channel}`);
      let late = false;
      listener.on('notification', () => (late = true));
      await notifier.query(`NOTIFY ${channel}, 'payload-2'`);
      await listener.query('SELECT 1');
      expect(late).toBe(false);
    } finally {
      await listener.end();
      await notifier.end();
    }
  });

  it('copies in and out through psql', async () => {
    const table = uniqueName('cp');
    const setup = await t().psql(['-v', 'ON_ERROR_STOP=1', '-c', `CREATE TABLE ${table} (a int, b text)`]);
    expect(setup.code, setup.stderr).toBe(0);
    const load = await t().psql(['-v', 'ON_ERROR_STOP=1', '-c', `\\copy ${table} from stdin`], '1\tone\n2\ttwo\n3\t\\N\n\\.\n');
    expect(load.code, load.stderr).toBe(0);
    expect(load.stdout).toContain('COPY 3');
    // The table itself, not a COPY (query): while any table of the database has transforms (other
    // suites register some on the shared cluster), a COPY (query) that reads a table is refused.
    const out = await t().psql(['-v', 'ON_ERROR_STOP=1', '-c', `\\copy ${table} to stdout`]);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toBe('1\tone\n2\ttwo\n3\t\\N\n');
    const bad = await t().psql(['-c', `\\copy ${table} from stdin`], 'not-a-number\tx\n\\.\n');
    expect(bad.stderr).toMatch(/invalid input syntax for type integer/);
    const after = await t().psql(['-At', '-c', `SELECT count(*) FROM ${table}`, '-c', `DROP TABLE ${table}`]);
    expect(after.stdout.split('\n')[0]).toBe('3');
  });

  it('copies in through postgres.js streams', async () => {
    const table = uniqueName('cps');
    const sql = t().sql();
    try {
      await sql.unsafe(`CREATE TABLE ${table} (a int, b text)`);
      const w = await sql.unsafe(`COPY ${table} FROM STDIN`).writable();
      await new Promise<void>((resolve, reject) => {
        w.on('error', reject);
        w.on('finish', resolve);
        for (let i = 0; i < 1000; i++) w.write(`${i}\trow ${i}\n`);
        w.end();
      });
      const [row] = await sql.unsafe(`SELECT count(*)::int AS n, sum(a)::int AS s FROM ${table}`);
      expect(row).toEqual({ n: 1000, s: 499500 });
      await sql.unsafe(`DROP TABLE ${table}`);
    } finally {
      await sql.end();
    }
  });

  it('scripts psql with meta-commands and reports errors with their SQLSTATE', async () => {
    const r = await t().psql(['-v', 'VERBOSITY=verbose', '-c', 'SELECT 1/0'], '');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/22012/);
    const ok = await t().psql(['-At', '-f', '-'], 'SELECT 40 + 2;\n\\echo done\nSELECT current_user;\n');
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toBe(`42\ndone\n${t().user}\n`);
  });

  it('serves many concurrent clients', async () => {
    const clients = await Promise.all(Array.from({ length: 40 }, () => t().pg()));
    try {
      const results = await Promise.all(clients.map(async (c, i) => {
        await c.query('BEGIN');
        const r = await c.query<{ v: number }>('SELECT $1::int * 2 AS v', [i]);
        await c.query('COMMIT');
        return r.rows[0]!.v;
      }));
      expect(results).toEqual(clients.map((_, i) => i * 2));
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it('ends the session on Terminate and keeps serving others', async () => {
    const a = await t().pg();
    const b = await t().pg();
    await a.end();
    const r = await b.query('SELECT 7 AS n');
    expect(r.rows[0]).toEqual({ n: 7 });
    await b.end();
  });
});
