/**
 * `POST /results/{id}/replay` on both upstreams: a recorded read runs again as of its own moment,
 * as its recorded user, with its exact statement and parameters (text and binary), and says per
 * execution whether it reproduced the read; refusals for non-members, unknown results, and
 * results whose statement was not (or could not be) recorded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { uniqueName, useTarget } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';
import { call, httpBase } from './http-client.js';
import { PASSWORD, replay, replayUsers, type Replay } from './replay-support.js';

/** The result id of the latest read of `table` by `user`, once it is recorded. */
async function lastResult(admin: pg.Client, table: string, user: string, after: number): Promise<string> {
  const rows = await eventually(
    async () => (await admin.query<{ result_id: string }>(
      `SELECT result_id::text FROM provenance.executions WHERE table_name = $1 AND user_name = $2 AND kind = 'read'
          AND executed_at >= to_timestamp($3::float8 / 1000) ORDER BY executed_at DESC LIMIT 1`,
      [`public.${table}`, user, after],
    )).rows,
    (r) => r.length > 0,
  );
  return rows[0]!.result_id;
}

for (const kind of ['embedded', 'postgres'] as const) {
  describe(`HTTP replay of a recorded result [${kind}]`, () => {
    const t = useTarget(kind, [], () => ({ http: { host: '127.0.0.1', port: 0 }, recordStatementLimit: 300 }));
    const reader = uniqueName('reader');
    const auditor = uniqueName('auditor');
    const table = uniqueName('accounts');
    const mask = uniqueName('mask');
    let admin: pg.Client;
    let client: pg.Client;

    beforeAll(async () => {
      admin = await replayUsers(t, reader, auditor);
      await admin.query(`CREATE TABLE ${table} (id int PRIMARY KEY, email text, balance int)`);
      await admin.query(`INSERT INTO ${table} VALUES (1, 'ann@example.com', 10), (2, 'bob@example.com', 20), (3, 'cy@example.com', 30)`);
      await admin.query(`GRANT SELECT ON ${table} TO ${reader}, ${auditor}`);
      await admin.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], $3)", [mask, table, '(v) => v.slice(0, 2) + "***"']);
      client = await t.pg({ user: reader, password: PASSWORD });
      await eventually(async () => (await client.query(`SELECT email FROM ${table} WHERE id = 1`)).rows[0]?.email, (e) => e === 'an***');
    });
    afterAll(async () => {
      await client?.end();
      await admin?.end();
    });

    it('replays a read with text parameters: the same rows, each execution verified', async () => {
      const before = Date.now();
      const read = await client.query(`SELECT id, email, balance FROM public.${table} WHERE id >= $1 ORDER BY id`, [2]);
      expect(read.rows).toEqual([{ id: 2, email: 'bo***', balance: 20 }, { id: 3, email: 'cy***', balance: 30 }]);
      const id = await lastResult(admin, table, reader, before);
      const r = await replay(t, id, auditor);
      expect(r.status, r.text).toBe(200);
      const body = r.json<Replay>();
      expect(body).toMatchObject({ result_id: id, user: reader });
      expect(body.columns).toEqual([{ name: 'id', type: 'integer' }, { name: 'email', type: 'text' }, { name: 'balance', type: 'integer' }]);
      expect(body.rows).toEqual(read.rows);
      expect(body.executions.map((e) => [e.transform, e.verified])).toEqual([[mask, true]]);
    });

    it('replays a result whose rows changed since as of its own moment, binary parameters included', async () => {
      const before = Date.now();
      const param = Buffer.alloc(4);
      param.writeInt32BE(1);
      const read = await client.query(`SELECT id, email, balance FROM public.${table} WHERE id = $1`, [param]);
      expect(read.rows).toEqual([{ id: 1, email: 'an***', balance: 10 }]);
      const id = await lastResult(admin, table, reader, before);
      await new Promise((r) => setTimeout(r, 5));
      await admin.query(`UPDATE ${table} SET balance = 99, email = 'zed@example.com' WHERE id = 1`);
      const r = await replay(t, id, auditor);
      expect(r.status, r.text).toBe(200);
      const body = r.json<Replay>();
      expect(body.rows).toEqual([{ id: 1, email: 'an***', balance: 10 }]);
      expect(body.executions.map((e) => e.verified)).toEqual([true]);
      const now = await client.query(`SELECT id, email, balance FROM public.${table} WHERE id = 1`);
      expect(now.rows).toEqual([{ id: 1, email: 'ze***', balance: 99 }]);
    });

    it('replays a read of postgres.js, which declares its parameters\' types', async () => {
      const sql = t.sql({ user: reader, password: PASSWORD });
      try {
        const before = Date.now();
        const rows = await sql.unsafe(`SELECT id, email FROM public.${table} WHERE id = $1 AND email LIKE $2`, [sql.typed(3, 23), '%']);
        expect([...rows]).toEqual([{ id: 3, email: 'cy***' }]);
        const id = await lastResult(admin, table, reader, before);
        const types = await admin.query(
          `SELECT q.param_types::int8[] AS types FROM provenance.exact_statement q JOIN provenance.execution_log e ON e.exact_key = q.key
            WHERE e.result_id = $1 LIMIT 1`, [id]);
        // As its Parse declared them: int4 given, the text left to the server (0).
        expect(types.rows[0].types.map(Number)).toEqual([23, 0]);
        const r = await replay(t, id, auditor);
        expect(r.status, r.text).toBe(200);
        expect(r.json<Replay>().rows).toEqual([{ id: 3, email: 'cy***' }]);
        expect(r.json<Replay>().executions.map((e) => e.verified)).toEqual([true]);
      } finally {
        await sql.end();
      }
    });

    it('keeps replays to provenance_admin members; an unknown result is 404, a malformed id 400', async () => {
      const before = Date.now();
      await client.query(`SELECT email FROM public.${table} WHERE id = 2`);
      const id = await lastResult(admin, table, reader, before);
      const refused = await replay(t, id, reader);
      expect(refused.status).toBe(403);
      expect(refused.json()).toMatchObject({ code: '42501' });
      const missing = await replay(t, '00000000-0000-7000-8000-000000000000', auditor);
      expect(missing.status).toBe(404);
      expect(missing.json()).toMatchObject({ code: '02000' });
      expect((await replay(t, 'nope', auditor)).status).toBe(400);
      // A body is not read; one of a type the API does not take is the client's error, not the server's.
      const xml = await fetch(`${httpBase(t)}/results/${id}/replay`, {
        method: 'POST', headers: { 'content-type': 'application/xml', authorization: `Basic ${Buffer.from(`${auditor}:${PASSWORD}`).toString('base64')}` }, body: '<a/>',
      });
      expect(xml.status).toBe(415);
      expect(await xml.json()).toMatchObject({ code: '0A000' });
      expect((await call(t, `/results/${id}/replay`, { method: 'POST' })).status).toBe(401);
    });

    it('replays a statement of a simple Query of several: its own text, which of them it was, verified', async () => {
      const before = Date.now();
      const results = await client.query(
        `SELECT email FROM public.${table} WHERE id = 3; SET statement_timeout = 0; SELECT count(*) > 0 AS some FROM public.${table};\n  SELECT id, email FROM public.${table} WHERE id = 2`,
      ) as unknown as pg.QueryResult[];
      expect(results.map((r) => r.rows)).toEqual([[{ email: 'cy***' }], [], [{ some: true }], [{ id: 2, email: 'bo***' }]]);
      const ids = await eventually(
        async () => (await admin.query<{ result_id: string }>(
          `SELECT result_id::text FROM provenance.executions WHERE table_name = $1 AND user_name = $2 AND kind = 'read'
              AND executed_at >= to_timestamp($3::float8 / 1000) GROUP BY result_id ORDER BY min(executed_at)`,
          [`public.${table}`, reader, before],
        )).rows.map((r) => r.result_id),
        (r) => r.length === 2,
      );
      const first = await replay(t, ids[0]!, auditor);
      expect(first.status, first.text).toBe(200);
      expect(first.json<Replay>()).toMatchObject({
        statement: `SELECT email FROM public.${table} WHERE id = 3`, query_statement: { index: 0, of: 4 }, rows: [{ email: 'cy***' }],
      });
      expect(first.json<Replay>().executions.map((e) => e.verified)).toEqual([true]);
      const last = await replay(t, ids[1]!, auditor);
      expect(last.status, last.text).toBe(200);
      expect(last.json<Replay>()).toMatchObject({
        statement: `SELECT id, email FROM public.${table} WHERE id = 2`, query_statement: { index: 3, of: 4 }, rows: [{ id: 2, email: 'bo***' }],
      });
      expect(last.json<Replay>().executions.map((e) => e.verified)).toEqual([true]);
    });

    it('answers 409 with the reason for a statement over the recording limit, or one reading a cursor', async () => {
      let before = Date.now();
      await client.query(`SELECT email FROM public.${table} WHERE id = 2 /* ${'x'.repeat(400)} */`);
      let id = await lastResult(admin, table, reader, before);
      let r = await replay(t, id, auditor);
      expect(r.status, r.text).toBe(409);
      expect(r.json()).toMatchObject({ code: '55000' });
      expect(r.json<{ message: string }>().message).toMatch(/over the recording limit of 300 bytes/);
      before = Date.now();
      await client.query(`SELECT 1; BEGIN; DECLARE q CURSOR FOR SELECT email FROM public.${table} ORDER BY id; FETCH 1 FROM q; COMMIT`);
      id = await lastResult(admin, table, reader, before);
      r = await replay(t, id, auditor);
      expect(r.status, r.text).toBe(409);
      expect(r.json<{ message: string }>().message).toMatch(/its statement \(FETCH\)/);
      before = Date.now();
      await client.query('BEGIN');
      await client.query(`DECLARE c CURSOR FOR SELECT email FROM public.${table} ORDER BY id`);
      await client.query('FETCH 2 FROM c');
      await client.query('COMMIT');
      id = await lastResult(admin, table, reader, before);
      r = await replay(t, id, auditor);
      expect(r.status, r.text).toBe(409);
      expect(r.json<{ message: string }>().message).toMatch(/FETCH/);
    });

    it('refuses to replay a write (INSERT … RETURNING of a transformed column): 409 with 25006, and goes on', async () => {
      const writer = await t.pg();
      try {
        const before = Date.now();
        const w = await writer.query(`INSERT INTO public.${table} VALUES ($1, 'dee@example.com', 40) RETURNING email`, [4]);
        expect(w.rows).toEqual([{ email: 'de***' }]);
        const id = await lastResult(admin, table, 'postgres', before);
        const r = await replay(t, id, auditor);
        expect(r.status, r.text).toBe(409);
        expect(r.json()).toMatchObject({ code: '25006' });
        expect((await admin.query(`SELECT count(*)::int AS n FROM ${table} WHERE id = 4`)).rows[0].n).toBe(1);
      } finally {
        await writer.end();
      }
    });

    it('keeps the exact statement where only provenance_admin reads it', async () => {
      const denied = await client.query('SELECT count(*) FROM provenance.exact_statement').then(() => 'read', (e: { code?: string }) => e.code);
      expect(denied).toBe('42501');
      const auditing = await t.pg({ user: auditor, password: PASSWORD });
      try {
        const n = await auditing.query('SELECT count(*)::int AS n FROM provenance.exact_statement');
        expect(n.rows[0].n).toBeGreaterThan(0);
      } finally {
        await auditing.end();
      }
    });
  });

  describe(`HTTP replay with --record-statements off [${kind}]`, () => {
    const t = useTarget(kind, [], () => ({ http: { host: '127.0.0.1', port: 0 }, recordStatements: false }));
    const auditor = uniqueName('auditor');
    const table = uniqueName('quiet');
    let admin: pg.Client;

    beforeAll(async () => {
      await t.proxy.registryLoaded;
      admin = await t.pg();
      await admin.query(`CREATE ROLE ${auditor} LOGIN PASSWORD '${PASSWORD}'`);
      await admin.query(`GRANT provenance_admin TO ${auditor}`);
      await admin.query(`CREATE TABLE ${table} (id int PRIMARY KEY, secret text)`);
      await admin.query(`INSERT INTO ${table} VALUES (1, 'hunter2')`);
      await admin.query(`GRANT SELECT ON ${table} TO ${auditor}`);
      await admin.query("SELECT provenance.register_transform($1, $2, ARRAY['secret'], $3)", [uniqueName('hide'), table, '() => "***"']);
    });
    afterAll(async () => {
      await admin?.end();
    });

    it('keeps no literal, and a replay answers 409 saying why', async () => {
      const before = Date.now();
      await eventually(async () => (await admin.query(`SELECT secret FROM public.${table} WHERE secret = 'hunter2'`)).rows[0]?.secret, (s) => s === '***');
      const id = await lastResult(admin, table, 'postgres', before);
      const r = await replay(t, id, auditor);
      expect(r.status, r.text).toBe(409);
      expect(r.json<{ message: string }>().message).toMatch(/--record-statements off/);
      const kept = await admin.query("SELECT count(*)::int AS n FROM provenance.exact_statement WHERE statement_text LIKE '%hunter2%'");
      expect(kept.rows[0].n).toBe(0);
    });
  });
}
