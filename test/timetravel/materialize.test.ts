/**
 * Materialised versions: provenance.materialize stores what a table served at a moment (through
 * the chain of then, in a user's context), an as-of read is served from it exactly when a replay
 * would give the same, and never otherwise. Expected values are computed here from what the test
 * wrote and registered.
 */
import { expect, it } from 'vitest';
import type pg from 'pg';
import { eachUpstream, uniqueName } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';
import { moment, refusal } from './as-of-support.js';

const MASK = '(v, p) => v === null ? null : v.slice(0, p.keep) + "***"';
const mask = (v: string, keep: number): string => `${v.slice(0, keep)}***`;

async function lastRead(c: pg.Client): Promise<string> {
  return (await c.query<{ 'provenance.last_read': string }>('SHOW provenance.last_read')).rows[0]!['provenance.last_read'];
}

async function setup(c: pg.Client): Promise<{ table: string; name: string; read: () => Promise<unknown[][]> }> {
  const table = uniqueName('mat');
  const name = uniqueName('mask');
  await c.query(`CREATE TABLE ${table} (id int PRIMARY KEY, email text)`);
  await c.query(`INSERT INTO ${table} SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 30) g`);
  await c.query(`SELECT provenance.register_transform($1, $2, ARRAY['email'], $3, '{"keep": 2}')`, [name, table, MASK]);
  const read = (): Promise<unknown[][]> => c.query({ text: `SELECT id, email FROM ${table} ORDER BY id`, rowMode: 'array' }).then((r) => r.rows as unknown[][]);
  await eventually(read, (r) => r[0]?.[1] === 'us***');
  return { table, name, read };
}

const expected = (n: number, keep: number): unknown[][] => Array.from({ length: n }, (_, i) => [i + 1, mask(`user${i + 1}@example.com`, keep)]);

eachUpstream('materialised versions', (t) => {
  it('stores what a table served at a moment, serves matching as-of reads from it, and records them', async () => {
    const c = await t().pg();
    await t().proxy.registryLoaded;
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(n.message ?? ''));
    try {
      const { table, read } = await setup(c);
      const m1 = await moment(c);
      const id = Number((await c.query<{ materialize: string }>(`SELECT provenance.materialize('${table}', '${m1}')`)).rows[0]!.materialize);
      expect(id).toBeGreaterThan(0);
      expect(notices.some((n) => /materialize: 100% done/.test(n))).toBe(true);
      const [view] = (await c.query(`SELECT * FROM provenance.materializations WHERE id = $1`, [id])).rows as Record<string, unknown>[];
      expect(view).toMatchObject({ as_user: 'postgres', rows: '30', reason: 'manual', created_by: 'postgres', reads_served: '0', context_fields: [] });
      expect(Number(view!['bytes'])).toBeGreaterThan(0);
      expect(view!['chain']).toMatchObject([{ version: 1, params: { keep: 2 } }]);

      // It writes outside the client's transaction, so not inside one.
      await c.query('BEGIN');
      expect((await refusal(c.query(`SELECT provenance.materialize('${table}', '${m1}')`))).code).toBe('25001');
      await c.query('ROLLBACK');
      // Anything but a call of its own reaches the database's function, which says where it runs.
      const other = await refusal(c.query(`SELECT 1, provenance.materialize('${table}')`));
      expect(other.code).toBe('0A000');
      expect(other.message).toMatch(/runs in provenance-proxy/);

      await c.query(`SET provenance.as_of = '${m1}'`);
      expect(await read()).toEqual(expected(30, 2));
      expect(await lastRead(c)).toMatch(/: materialized$/);
      // Filtering on a transformed column is evaluated on the rows before the chain: replayed.
      const filtered = await c.query({ text: `SELECT email FROM ${table} WHERE email = 'user3@example.com'`, rowMode: 'array' });
      expect(filtered.rows).toEqual([[mask('user3@example.com', 2)]]);
      expect(await lastRead(c)).toMatch(/: (replayed|cached)$/);
      await c.query({ text: `SELECT email FROM ${table} WHERE email = 'user3@example.com'`, rowMode: 'array' });
      expect(await lastRead(c)).toMatch(/: cached$/);
      // On an untransformed column it is the same either way: served.
      const byId = await c.query({ text: `SELECT email FROM ${table} WHERE id = $1`, values: [4], rowMode: 'array' });
      expect(byId.rows).toEqual([[mask('user4@example.com', 2)]]);
      expect(await lastRead(c)).toMatch(/: materialized$/);
      await c.query('RESET provenance.as_of');

      await eventually(async () => (await c.query(`SELECT reads_served, last_read FROM provenance.materializations WHERE id = $1`, [id])).rows[0] as Record<string, unknown>,
        (r) => r['reads_served'] === '2' && r['last_read'] !== null);
      await eventually(async () => (await c.query(`SELECT kind, materialization_id, as_of, rows_out FROM provenance.executions WHERE materialization_id = $1 ORDER BY executed_at`, [id])).rows,
        (rows) => rows.length === 2 && rows.every((r) => r['kind'] === 'materialized'));
    } finally {
      await c.query('RESET ALL').catch(() => undefined);
      await c.end();
    }
  });

  it('is never served stale: a change of data, of parameters or of the chain after its moment replays', async () => {
    const c = await t().pg();
    await t().proxy.registryLoaded;
    try {
      const { table, name, read } = await setup(c);
      const m1 = await moment(c);
      const id = Number((await c.query<{ materialize: string }>({ text: 'SELECT provenance.materialize($1, $2)', values: [table, m1] })).rows[0]!.materialize);
      const same = await moment(c);
      await c.query('SELECT provenance.set_transform_params($1, $2)', [name, '{"keep": 4}']);
      await eventually(read, (r) => r[0]?.[1] === 'user***');
      const params = await moment(c);
      await c.query(`UPDATE ${table} SET email = 'changed@example.com' WHERE id = 1`);
      const data = await moment(c);
      await c.query(`SELECT provenance.register_transform($1, $2, ARRAY['id'], '(v) => v', '{}')`, [uniqueName('ids'), table]);
      await eventually(read, (r) => r[0]?.[1] === 'chan***');
      const chain = await moment(c);

      const at = async (m: string): Promise<{ rows: unknown[][]; how: string }> => {
        await c.query(`SET provenance.as_of = '${m}'`);
        return { rows: await read(), how: await lastRead(c) };
      };
      // Nothing changed between m1 and this moment: served from it.
      const served = await at(same);
      expect(served.rows).toEqual(expected(30, 2));
      expect(served.how).toMatch(/: materialized$/);
      const afterParams = await at(params);
      expect(afterParams.rows).toEqual(expected(30, 4));
      expect(afterParams.how).not.toMatch(/materialized/);
      const afterData = await at(data);
      expect(afterData.rows).toEqual([[1, mask('changed@example.com', 4)], ...expected(30, 4).slice(1)]);
      expect(afterData.how).not.toMatch(/materialized/);
      const afterChain = await at(chain);
      expect(afterChain.rows).toEqual(afterData.rows);
      expect(afterChain.how).not.toMatch(/materialized/);
      await c.query('RESET provenance.as_of');
      await eventually(async () => (await c.query(`SELECT reads_served FROM provenance.materializations WHERE id = $1`, [id])).rows[0] as Record<string, unknown>,
        (r) => r['reads_served'] === '1');
    } finally {
      await c.query('RESET ALL').catch(() => undefined);
      await c.end();
    }
  });

  it('records the context fields its transforms read, and is not served to a reader whose roles changed since', async () => {
    const c = await t().pg();
    await t().proxy.registryLoaded;
    const auditor = uniqueName('aud');
    const reader = uniqueName('reader');
    try {
      await c.query(`CREATE ROLE ${auditor}; CREATE ROLE ${reader} LOGIN`);
      const table = uniqueName('matroles');
      await c.query(`CREATE TABLE ${table} (id int, iban text); INSERT INTO ${table} VALUES (1, 'DE89370400440532013000')`);
      await c.query(`GRANT SELECT ON ${table} TO ${reader}`);
      await c.query(`SELECT provenance.register_transform($1, $2, ARRAY['iban'], $3, $4)`, [uniqueName('iban'), table,
        '(v, p, ctx) => v === null || ctx.roles.includes(p.role) ? v : v.slice(0, 4) + "***"', JSON.stringify({ role: auditor })]);
      const read = (): Promise<unknown[][]> => c.query({ text: `SELECT iban FROM ${table}`, rowMode: 'array' }).then((r) => r.rows as unknown[][]);
      await eventually(read, (r) => r[0]?.[0] === 'DE89***');
      const m = await moment(c);
      const id = Number((await c.query<{ materialize: string }>(`SELECT provenance.materialize('${table}', '${m}', '${reader}')`)).rows[0]!.materialize);
      const row = (await c.query(`SELECT as_user, context_fields FROM provenance.materializations WHERE id = $1`, [id])).rows[0] as Record<string, unknown>;
      expect(row).toEqual({ as_user: reader, context_fields: ['roles'] });

      await c.query(`SET provenance.as_of = '${m}'`);
      await c.query(`SET provenance.as_user = '${reader}'`);
      expect(await read()).toEqual([['DE89***']]);
      expect(await lastRead(c)).toMatch(/: materialized$/);
      // A user whose roles differ replays.
      await c.query('SET provenance.as_user = postgres');
      await read();
      expect(await lastRead(c)).not.toMatch(/materialized/);
      await c.query('RESET provenance.as_of');
      await c.query('RESET provenance.as_user');

      await c.query(`GRANT ${auditor} TO ${reader}`);
      // A new session: the roles of a user at a moment are read once per session.
      const d = await t().pg();
      try {
        await d.query(`SET provenance.as_of = '${m}'`);
        await d.query(`SET provenance.as_user = '${reader}'`);
        expect((await d.query({ text: `SELECT iban FROM ${table}`, rowMode: 'array' })).rows).toEqual([['DE89370400440532013000']]);
        expect(await lastRead(d)).not.toMatch(/materialized/);
      } finally {
        await d.end();
      }
    } finally {
      await c.query('RESET ALL').catch(() => undefined);
      await c.query(`DROP OWNED BY ${reader}; DROP ROLE IF EXISTS ${reader}; DROP ROLE IF EXISTS ${auditor}`).catch(() => undefined);
      await c.end();
    }
  });

  it('reports progress, and a CancelRequest stops it leaving nothing behind (57014)', async () => {
    const c = await t().pg();
    await t().proxy.registryLoaded;
    const notices: string[] = [];
    const sql = t().sql({ fetch_types: false, onnotice: (n) => notices.push(String(n['message'])) });
    try {
      const table = uniqueName('matslow');
      await c.query(`CREATE TABLE ${table} (id int, v text); INSERT INTO ${table} SELECT g, 'x' || g FROM generate_series(1, 20000) g`);
      await c.query(`SELECT provenance.register_transform($1, $2, ARRAY['v'], $3, '{}')`, [uniqueName('slow'), table,
        '(v) => { let n = 0; for (let i = 0; i < 40000; i++) n += i; return v + n % 2; }']);
      await eventually(() => c.query({ text: `SELECT v FROM ${table} WHERE id = 1`, rowMode: 'array' }).then((r) => r.rows), (r) => r[0]?.[0] === 'x10');
      const m = await moment(c);
      const count = async (): Promise<number> => Number((await c.query(`SELECT count(*) AS n FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'provenance' AND c.relname LIKE 'materialized\\_%'`)).rows[0]!['n']);
      const tablesBefore = await count();
      const q = sql`SELECT provenance.materialize(${table}, ${m})`;
      const timer = setInterval(() => {
        if (notices.some((n) => /materialize: \d+% done/.test(n))) {
          clearInterval(timer);
          q.cancel();
        }
      }, 5);
      await expect(q).rejects.toMatchObject({ code: '57014' });
      clearInterval(timer);
      expect(notices.some((n) => /materialize: 100% done/.test(n))).toBe(false);
      expect(await count()).toBe(tablesBefore);
      expect((await c.query(`SELECT count(*) AS n FROM provenance.materialization WHERE target_oid = $1::regclass`, [table])).rows[0]).toEqual({ n: '0' });
      // The session goes on.
      const [one] = await sql`SELECT 1 AS one`;
      expect(one).toEqual({ one: 1 });
    } finally {
      await sql.end();
      await c.end();
    }
  });

  it('takes provenance_admin to materialise for or drop what belongs to someone else; the stored rows are the proxy\'s', async () => {
    const c = await t().pg();
    await t().proxy.registryLoaded;
    const user = uniqueName('matuser');
    try {
      const { table } = await setup(c);
      await c.query(`CREATE ROLE ${user} LOGIN PASSWORD 'secret'; GRANT SELECT ON ${table} TO ${user}`);
      const m = await moment(c);
      const id = Number((await c.query<{ materialize: string }>(`SELECT provenance.materialize('${table}', '${m}')`)).rows[0]!.materialize);
      const u = await t().pg({ user, password: 'secret' });
      try {
        const other = await refusal(u.query(`SELECT provenance.materialize('${table}', '${m}', 'postgres')`));
        expect(other.code).toBe('42501');
        const own = Number((await u.query<{ materialize: string }>(`SELECT provenance.materialize('${table}', '${m}')`)).rows[0]!.materialize);
        expect((await u.query(`SELECT as_user, created_by FROM provenance.materializations WHERE id = $1`, [own])).rows).toEqual([{ as_user: user, created_by: user }]);
        expect((await refusal(u.query(`SELECT * FROM provenance.materialized_${id}`))).code).toBe('42501');
        expect((await refusal(u.query(`SELECT provenance.drop_materialization(${id})`))).code).toBe('42501');
        await u.query(`SELECT provenance.drop_materialization(${own})`);
        expect((await u.query(`SELECT count(*) AS n FROM provenance.materializations WHERE id = $1`, [own])).rows).toEqual([{ n: '0' }]);
      } finally {
        await u.end();
      }
      await c.query(`SELECT provenance.drop_materialization(${id})`);
      expect((await refusal(c.query(`SELECT provenance.drop_materialization(${id})`))).code).toBe('42704');
      expect((await c.query(`SELECT to_regclass('provenance.materialized_${id}') AS t`)).rows).toEqual([{ t: null }]);
    } finally {
      await c.query(`DROP OWNED BY ${user}; DROP ROLE IF EXISTS ${user}`).catch(() => undefined);
      await c.end();
    }
  });

  it('stores what a row transform kept, made from psql; serves only the reads a replay answers alike', async () => {
    const c = await t().pg();
    await t().proxy.registryLoaded;
    try {
      const table = uniqueName('matrow');
      await c.query(`CREATE TABLE ${table} (id int, v text); INSERT INTO ${table} SELECT g, 'v' || g FROM generate_series(1, 6) g`);
      await c.query(`SELECT provenance.register_transform($1, $2, NULL, '(r) => r.id % 2 === 0 ? null : { ...r, v: r.v.toUpperCase() }', '{}')`,
        [uniqueName('odd'), table]);
      const read = (): Promise<unknown[][]> => c.query({ text: `SELECT id, v FROM ${table} ORDER BY id`, rowMode: 'array' }).then((r) => r.rows as unknown[][]);
      await eventually(read, (r) => r.length === 3);
      const m = await moment(c);
      const made = await t().psql(['-v', 'ON_ERROR_STOP=1', '-At', '-c', `SELECT provenance.materialize('${table}', '${m}')`]);
      expect(made.code).toBe(0);
      expect(made.stdout.trim()).toMatch(/^\d+$/);
      expect(made.stderr).toMatch(/NOTICE: {2}materialize: 100% done/);
      expect((await c.query(`SELECT rows FROM provenance.materializations WHERE id = $1`, [Number(made.stdout)])).rows).toEqual([{ rows: '3' }]);

      await c.query(`SET provenance.as_of = '${m}'`);
      expect(await read()).toEqual([[1, 'V1'], [3, 'V3'], [5, 'V5']]);
      // ORDER BY makes it a statement the stored rows cannot answer as a replay would: replayed, same rows.
      expect(await lastRead(c)).toMatch(/: (replayed|cached)$/);
      const all = await c.query({ text: `SELECT id, v FROM ${table}`, rowMode: 'array' });
      expect((all.rows as [number, string][]).sort((a, b) => a[0] - b[0])).toEqual([[1, 'V1'], [3, 'V3'], [5, 'V5']]);
      expect(await lastRead(c)).toMatch(/: materialized$/);
    } finally {
      await c.query('RESET ALL').catch(() => undefined);
      await c.end();
    }
  });
});
