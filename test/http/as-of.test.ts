/**
 * Reads as of a moment over HTTP agree with the time-travel session they stand for: the same
 * rows as psql gets after `SET provenance.as_of`, transformed by the transforms of then, and the
 * same refusals.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { runPsql, uniqueName, useTarget } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';
import { call } from './http-client.js';

const PASSWORD = 'http-pw';

/** The database's clock now; returns once it moved past it, so the next write is later. */
async function moment(c: pg.Client): Promise<string> {
  const m = (await c.query<{ m: string }>('SELECT pg_catalog.clock_timestamp()::text AS m')).rows[0]!.m;
  await new Promise((r) => setTimeout(r, 3));
  return m;
}

/** A moment as the API names it: ISO 8601 in UTC, to the microsecond. */
function body0AsOf(at: string): string {
  const d = new Date(at);
  const micros = /\.(\d+)/.exec(at)?.[1]?.padEnd(6, '0').slice(0, 6) ?? '000000';
  return `${d.toISOString().slice(0, 19)}.${micros}Z`;
}

for (const kind of ['embedded', 'postgres'] as const) {
  describe(`HTTP as of a moment [${kind}]`, () => {
    const t = useTarget(kind, [], () => ({ http: { host: '127.0.0.1', port: 0 } }));
    const reader = uniqueName('reader');
    const table = uniqueName('accounts');
    const moments: string[] = [];
    let admin: pg.Client;
    const as = { user: reader, password: PASSWORD };

    beforeAll(async () => {
      await t.proxy.registryLoaded;
      admin = await t.pg();
      await admin.query(`CREATE ROLE ${reader} LOGIN PASSWORD '${PASSWORD}'`);
      await admin.query(`CREATE TABLE ${table} (id int PRIMARY KEY, email text, balance int)`);
      await admin.query(`INSERT INTO ${table} VALUES (1, 'ann@example.com', 10), (2, 'bob@example.com', 20)`);
      await admin.query(`GRANT SELECT ON ${table} TO ${reader}`);
      await admin.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], $3)", [uniqueName('mask'), table, '(v) => v.slice(0, 2) + "***"']);
      await eventually(async () => (await call(t, `/data/${table}/1`, as)).text, (text) => text.includes('an***'));
      moments.push(await moment(admin));
      await admin.query(`UPDATE ${table} SET balance = 15 WHERE id = 1; DELETE FROM ${table} WHERE id = 2`);
      moments.push(await moment(admin));
    });
    afterAll(async () => {
      await admin?.end();
    });

    it('serves the rows as of each moment, as a psql session reading as of it gets them', async () => {
      const expected = [[[1, 'an***', 10], [2, 'bo***', 20]], [[1, 'an***', 15]]];
      for (const [i, at] of moments.entries()) {
        const r = await call(t, `/data/${table}?as_of=${encodeURIComponent(at)}`, as);
        expect(r.status, r.text).toBe(200);
        const body = r.json<{ as_of: string; rows: { id: number; email: string; balance: number }[] }>();
        expect(body.as_of).toBe(body0AsOf(at));
        const psql = await runPsql(
          ['-X', '-h', '127.0.0.1', '-p', String(t.port), '-U', reader, '-d', t.database, '--csv', '-c', `SET provenance.as_of = '${at}'`,
            '-c', `SELECT id, email, balance FROM public.${table} ORDER BY id`],
          PASSWORD,
        );
        const csv = await call(t, `/data/${table}?as_of=${encodeURIComponent(at)}`, { ...as, accept: 'text/csv' });
        expect(csv.text).toBe(psql.stdout.replace(/^SET\n/, ''));
        expect(body.rows.map((row) => [row.id, row.email, row.balance])).toEqual(expected[i]);
      }
      const row = (await call(t, `/data/${table}/2?as_of=${encodeURIComponent(moments[0]!)}`, as)).json<{ row: unknown }>();
      expect(row.row).toEqual({ id: 2, email: 'bo***', balance: 20 });
      expect((await call(t, `/data/${table}/2?as_of=${encodeURIComponent(moments[1]!)}`, as)).status).toBe(404);
      const lineage = (await call(t, `/lineage/${table}?as_of=${encodeURIComponent(moments[0]!)}`, as)).json<{ as_of: string; nodes: { kind: string }[] }>();
      expect(lineage.as_of).toBe(body0AsOf(moments[0]!));
      // The transforms of then, replayed as of the moment: recorded as replays.
      const replayed = lineage.nodes.filter((n) => n.kind === 'execution');
      expect(replayed.map((n) => (n as { kind_of_run?: string }).kind_of_run)).toEqual(['replay']);
      const metrics = (await call(t, '/metrics')).text;
      expect(Number(/^provenance_proxy_replay_cache_total\{outcome="miss"\} (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0);
    });

    it('answers a moment outside the table\'s history with 409', async () => {
      const r = await call(t, `/data/${table}?as_of=2000-01-01T00:00:00Z`, as);
      expect(r.status).toBe(409);
      expect(r.json()).toMatchObject({ code: '22023' });
    });
  });
}
