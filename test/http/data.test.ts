/**
 * The HTTP API's reads, on both upstreams, with real users (with passwords on PostgreSQL): rows
 * as psql gets them (JSON and CSV), masked or not by the caller's roles, privileges and row-level
 * security honoured, keys, paging, streaming in slices, and the executions each read caused.
 */
import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { runPsql, uniqueName, useTarget } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';
import { call } from './http-client.js';

const PASSWORD = 'http-pw';

for (const kind of ['embedded', 'postgres'] as const) {
  describe(`HTTP reads [${kind}]`, () => {
    const t = useTarget(kind, [], () => ({ http: { host: '127.0.0.1', port: 0 } }));
    const reader = uniqueName('reader');
    const auditor = uniqueName('auditor');
    const auditors = uniqueName('auditors');
    const outsider = uniqueName('outsider');
    const table = uniqueName('people');
    const owned = uniqueName('owned');
    const pairs = uniqueName('pairs');
    const big = uniqueName('big');
    let admin: pg.Client;

    beforeAll(async () => {
      await t.proxy.registryLoaded;
      admin = await t.pg();
      await admin.query(`CREATE ROLE ${auditors} NOLOGIN`);
      for (const r of [reader, auditor, outsider]) await admin.query(`CREATE ROLE ${r} LOGIN PASSWORD '${PASSWORD}'`);
      await admin.query(`GRANT ${auditors} TO ${auditor}`);
      await admin.query(`CREATE TABLE ${table} (id int PRIMARY KEY, email text, note text, score float8, ok boolean, doc jsonb)`);
      await admin.query(`INSERT INTO ${table} VALUES
        (1, 'alice@example.com', 'a "quoted", note', 1.5, true, '{"k": [1, 2]}'),
        (2, 'bob@example.com', E'two\\nlines', NULL, false, NULL),
        (3, NULL, '', 3, NULL, '[]')`);
      await admin.query(`CREATE TABLE ${owned} (id int PRIMARY KEY, owner text, secret text)`);
      await admin.query(`INSERT INTO ${owned} VALUES (1, '${reader}', 'mine'), (2, '${auditor}', 'theirs'), (3, '${reader}', 'mine too')`);
      await admin.query(`ALTER TABLE ${owned} ENABLE ROW LEVEL SECURITY`);
      await admin.query(`CREATE POLICY own ON ${owned} USING (owner = current_user)`);
      await admin.query(`CREATE TABLE ${pairs} (a int, b text, v text, PRIMARY KEY (a, b))`);
      await admin.query(`INSERT INTO ${pairs} VALUES (1, 'x', 'one-x'), (1, 'y,z', 'one-yz'), (2, 'x', 'two-x')`);
      await admin.query(`CREATE TABLE ${big} (id int PRIMARY KEY, email text)`);
      await admin.query(`INSERT INTO ${big} SELECT i, 'user' || i || '@example.com' FROM generate_series(1, 1200) i`);
      for (const x of [table, owned, pairs, big]) await admin.query(`GRANT SELECT ON ${x} TO ${reader}, ${auditor}`);
      const mask = `(v, p, ctx) => v === null || ctx.roles.includes('${auditors}') ? v : v.slice(0, 2) + '***'`;
      await admin.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], $3)", [uniqueName('mask'), table, mask]);
      await admin.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], $3)", [uniqueName('mask'), big, mask]);
      await eventually(
        async () => (await call(t, `/data/${table}/1`, { user: reader, password: PASSWORD })).text,
        (text) => text.includes('al***'),
      );
    });
    afterAll(async () => {
      await admin?.end();
    });

    const as = (user: string) => ({ user, password: PASSWORD });
    const psqlCsv = async (user: string, sql: string): Promise<string> => {
      const r = await runPsql(['-X', '-h', '127.0.0.1', '-p', String(t.port), '-U', user, '-d', t.database, '--csv', '-c', sql], PASSWORD);
      expect(r.stderr).toBe('');
      return r.stdout;
    };

    it('serves rows as JSON, masked for a reader, with the executions the read caused', async () => {
      const r = await call(t, `/data/${table}`, as(reader));
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toMatch(/^application\/json/);
      const body = r.json<{ object: string; as_of: null; columns: unknown[]; rows: unknown[]; executions: string[] }>();
      expect(body.object).toBe(`public.${table}`);
      expect(body.as_of).toBeNull();
      expect(body.columns).toEqual([
        { name: 'id', type: 'integer' }, { name: 'email', type: 'text' }, { name: 'note', type: 'text' },
        { name: 'score', type: 'double precision' }, { name: 'ok', type: 'boolean' }, { name: 'doc', type: 'jsonb' },
      ]);
      expect(body.rows).toEqual([
        { id: 1, email: 'al***', note: 'a "quoted", note', score: 1.5, ok: true, doc: { k: [1, 2] } },
        { id: 2, email: 'bo***', note: 'two\nlines', score: null, ok: false, doc: null },
        { id: 3, email: null, note: '', score: 3, ok: null, doc: [] },
      ]);
      expect(body.executions).toHaveLength(1);
      const rec = (await admin.query('SELECT user_name, application_name, rows_out::int FROM provenance.executions WHERE id = $1', [body.executions[0]])).rows;
      expect(rec).toEqual([{ user_name: reader, application_name: 'http', rows_out: 3 }]);
    });

    it('unmasks for a member of the role the transform lets through', async () => {
      const body = (await call(t, `/data/${table}?limit=2`, as(auditor))).json<{ rows: { email: string }[] }>();
      expect(body.rows.map((r) => r.email)).toEqual(['alice@example.com', 'bob@example.com']);
    });

    it('agrees with psql, as CSV and as JSON', async () => {
      for (const user of [reader, auditor]) {
        const sql = `SELECT id, email, note, score, ok, doc FROM ${table} ORDER BY id`;
        const expected = await psqlCsv(user, sql);
        const csv = await call(t, `/data/${table}`, { ...as(user), accept: 'text/csv' });
        expect(csv.status).toBe(200);
        expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
        expect(csv.text).toBe(expected);
        const json = (await call(t, `/data/${table}`, as(user))).json<{ rows: { id: number; email: string | null }[] }>();
        const psqlLines = (await psqlCsv(user, `SELECT id, email FROM ${table} ORDER BY id`)).trim().split('\n').slice(1);
        const psqlEmails = psqlLines.map((line) => line.split(',')[1]);
        expect(json.rows.map((r) => String(r.id))).toEqual(psqlLines.map((line) => line.split(',')[0]));
        expect(json.rows.map((r) => r.email ?? '')).toEqual(psqlEmails);
      }
    });

    it('honours privileges: no SELECT is 403 with 42501', async () => {
      const r = await call(t, `/data/${table}`, as(outsider));
      expect(r.status).toBe(403);
      expect(r.json()).toMatchObject({ code: '42501' });
      expect(r.text).not.toMatch(/at .*\.js/);
    });

    it('honours row-level security', async () => {
      const mine = (await call(t, `/data/${owned}`, as(reader))).json<{ rows: { secret: string }[] }>();
      expect(mine.rows.map((r) => r.secret)).toEqual(['mine', 'mine too']);
      const theirs = (await call(t, `/data/${owned}`, as(auditor))).json<{ rows: { secret: string }[] }>();
      expect(theirs.rows.map((r) => r.secret)).toEqual(['theirs']);
      expect((await call(t, `/data/${owned}/2`, as(reader))).status).toBe(404);
    });

    it('reads one row by key, composite keys comma-separated in key order', async () => {
      const one = (await call(t, `/data/public.${table}/2`, as(reader))).json<{ row: { email: string }; executions: string[] }>();
      expect(one.row.email).toBe('bo***');
      expect(one.executions).toHaveLength(1);
      const pair = await call(t, `/data/${pairs}/${encodeURIComponent('1,x')}`, as(reader));
      expect(pair.json()).toMatchObject({ row: { a: 1, b: 'x', v: 'one-x' } });
      const csv = await call(t, `/data/${pairs}/2,x`, { ...as(reader), accept: 'text/csv' });
      expect(csv.text).toBe('a,b,v\n2,x,two-x\n');
      // A value holding a comma: each value URL-encoded, joined by a literal comma.
      const comma = await call(t, `/data/${pairs}/1,${encodeURIComponent('y,z')}`, as(reader));
      expect(comma.json()).toMatchObject({ row: { a: 1, b: 'y,z', v: 'one-yz' } });
      expect((await call(t, `/data/${pairs}/1,y%2`, as(reader))).json()).toMatchObject({ code: '22023' });
    });

    it('pages with limit and offset, 1000 rows by default, in slices of the portal', async () => {
      const first = (await call(t, `/data/${big}`, as(reader))).json<{ rows: { id: number; email: string }[]; executions: string[] }>();
      expect(first.rows).toHaveLength(1000);
      expect(first.rows[0]).toEqual({ id: 1, email: 'us***' });
      // Slices of 500 rows: each Execute of the portal is a result of its own, with its own execution.
      expect(first.executions.length).toBeGreaterThanOrEqual(2);
      const slices = (await admin.query('SELECT rows_in::int FROM provenance.executions WHERE id = ANY ($1::uuid[]) ORDER BY executed_at', [first.executions])).rows;
      expect(slices.map((r: { rows_in: number }) => r.rows_in).filter((n: number) => n > 0)).toEqual([500, 500]);
      const rest = (await call(t, `/data/${big}?limit=5000&offset=1195`, as(reader))).json<{ rows: { id: number }[] }>();
      expect(rest.rows.map((r) => r.id)).toEqual([1196, 1197, 1198, 1199, 1200]);
      const all = await call(t, `/data/${big}?limit=1200`, { ...as(auditor), accept: 'text/csv' });
      expect(all.text).toBe(await psqlCsv(auditor, `SELECT id, email FROM ${big} ORDER BY id`));
    });

    it('refuses bad input with its status and SQLSTATE', async () => {
      const cases: [string, number, string][] = [
        [`/data/${table}/x`, 400, '22P02'],
        [`/data/${pairs}/1`, 400, '22023'],
        [`/data/${table}/99`, 404, '02000'],
        [`/data/no_such_${table}`, 404, '42P01'],
        [`/data/a.b.c.d`, 400, '42601'],
        [`/data/${table}?limit=-1`, 400, '22023'],
        [`/data/${table}?offset=x`, 400, '22023'],
        [`/data/${table}?as_of=not-a-moment`, 400, '22007'],
        [`/lineage/${table}?format=png`, 400, '22023'],
        [`/executions/not-a-uuid`, 400, '22P02'],
        [`/nowhere`, 404, '42704'],
        [`/data/${table}%2`, 400, '22023'],
      ];
      for (const [path, status, code] of cases) {
        const r = await call(t, path, as(reader));
        expect({ path, status: r.status, body: r.json() }).toMatchObject({ path, status, body: { code } });
        expect(Object.keys(r.json()).sort()).toEqual(['code', 'message']);
      }
    });

    it('asks for credentials: 401 with the realm, for a missing or wrong login', async () => {
      const none = await call(t, `/data/${table}`);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/^Basic realm="provenance-proxy"/);
      expect(none.json()).toMatchObject({ code: '28000' });
      const unknown = await call(t, `/data/${table}`, { user: uniqueName('nobody'), password: 'x' });
      expect(unknown.status).toBe(401);
      expect(unknown.headers.get('www-authenticate')).toMatch(/^Basic realm="provenance-proxy"/);
      if (kind === 'postgres') {
        const wrong = await call(t, `/data/${table}`, { user: reader, password: 'wrong' });
        expect(wrong.status).toBe(401);
        expect(wrong.json()).toMatchObject({ code: '28P01' });
      }
    });

    it('refuses as_of on a table time travel does not track: 409 with 55000, never the present', async () => {
      // pairs has no transform: nothing tracks it.
      const r = await call(t, `/data/${pairs}?as_of=${new Date(Date.now() - 500).toISOString()}`, as(reader));
      expect({ status: r.status, body: r.json() }).toMatchObject({ status: 409, body: { code: '55000' } });
    });

    it('lists the tables the caller may read', async () => {
      const names = (await call(t, '/tables', as(reader))).json<string[]>();
      expect(names).toEqual(expect.arrayContaining([`public.${table}`, `public.${owned}`]));
      expect((await call(t, '/tables', as(outsider))).json<string[]>()).not.toContain(`public.${table}`);
    });
  });
}
