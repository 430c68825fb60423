/**
 * `POST /results/{id}/replay` of results read in chunks of a portal, on both upstreams: pg-cursor,
 * a postgres.js cursor, hand-built Executes with row limits (a limit that changes, and one without a limit for the
 * rest), the HTTP API's own reads of more than one slice. A chunk replays with its own rows, its
 * place in the portal, and its executions verified, also after its rows changed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import Cursor from 'pg-cursor';
import { serialize } from 'pg-protocol';
import { uniqueName, useTarget } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';
import { RawClient } from '../support/raw-client.js';
import { RowBatch } from '../../proxy/wire/row-batch.js';
import { call } from './http-client.js';
import { PASSWORD, replay, replayUsers, type Replay } from './replay-support.js';

/**
 * The results of `user`'s reads of `table` since `after`, in the order their Executes went
 * upstream (execution times keep milliseconds, which pipelined chunks share), once `n` are recorded.
 */
async function resultsSince(admin: pg.Client, table: string, user: string, after: number, n: number): Promise<string[]> {
  const rows = await eventually(
    async () => (await admin.query<{ result_id: string }>(
      `SELECT x.result_id::text FROM provenance.executions x JOIN provenance.execution_log l ON l.id = x.id
        WHERE x.table_name = $1 AND x.user_name = $2 AND x.kind = 'read' AND x.executed_at >= to_timestamp($3::float8 / 1000)
        GROUP BY x.result_id ORDER BY min(l.statement_at)`,
      [`public.${table}`, user, after],
    )).rows,
    (r) => r.length >= n,
  );
  expect(rows.length).toBe(n);
  return rows.map((r) => r.result_id);
}

/** Reads a cursor in chunks of the given sizes (the last read may come back short). */
async function readCursor(client: pg.Client, text: string, values: unknown[], sizes: readonly number[]): Promise<Record<string, unknown>[][]> {
  const cursor = client.query(new Cursor(text, values));
  const chunks: Record<string, unknown>[][] = [];
  for (const n of sizes) chunks.push(await cursor.read(n));
  await cursor.close();
  return chunks;
}

for (const kind of ['embedded', 'postgres'] as const) {
  describe(`HTTP replay of chunks of a portal [${kind}]`, () => {
    const t = useTarget(kind, [], () => ({ http: { host: '127.0.0.1', port: 0 } }));
    const reader = uniqueName('reader');
    const auditor = uniqueName('auditor');
    const table = uniqueName('ledger');
    const mask = uniqueName('mask');
    const masked = (i: number): string => `u${i}***`;
    let admin: pg.Client;
    let client: pg.Client;

    beforeAll(async () => {
      admin = await replayUsers(t, reader, auditor);
      await admin.query(`CREATE TABLE ${table} (id int PRIMARY KEY, email text)`);
      await admin.query(`INSERT INTO ${table} SELECT i, 'u' || i || '@example.com' FROM generate_series(1, 1300) i`);
      const raw = kind === 'postgres' ? 'trustuser' : 'postgres';
      await admin.query(`GRANT SELECT ON ${table} TO ${reader}, ${auditor}, ${raw}`);
      await admin.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], $3)", [mask, table, '(v) => v.split("@")[0] + "***"']);
      client = await t.pg({ user: reader, password: PASSWORD });
      await eventually(async () => (await client.query(`SELECT email FROM ${table} WHERE id = 1`)).rows[0]?.email, (e) => e === masked(1));
    });
    afterAll(async () => {
      await client?.end();
      await admin?.end();
    });

    it('replays each chunk of a pg-cursor read, a middle one included: its own rows, its place, verified', async () => {
      const before = Date.now();
      const chunks = await readCursor(client, `SELECT id, email FROM public.${table} WHERE id <= $1 ORDER BY id`, [10], [4, 4, 4]);
      expect(chunks.map((c) => c.length)).toEqual([4, 4, 2]);
      const ids = await resultsSince(admin, table, reader, before, 3);
      for (const [i, id] of ids.entries()) {
        const r = await replay(t, id, auditor);
        expect(r.status, r.text).toBe(200);
        const body = r.json<Replay>();
        expect(body.chunk).toEqual({ index: i, offset: 4 * i });
        expect(body.rows).toEqual(chunks[i]);
        expect(body.executions.map((e) => [e.transform, e.verified])).toEqual([[mask, true]]);
      }
      // The answer names the replayed executions of the requested chunk only, each repeating one of its recorded ones.
      const middle = (await replay(t, ids[1]!, auditor)).json<Replay>();
      const recorded = await admin.query<{ id: string }>('SELECT id::text FROM provenance.executions WHERE result_id = $1', [ids[1]]);
      expect(middle.executions.map((e) => e.replay_of)).toEqual(recorded.rows.map((r) => r.id));
    });

    it('replays a chunk as of its portal\'s moment after its rows changed', async () => {
      const before = Date.now();
      const cursor = client.query(new Cursor(`SELECT id, email FROM public.${table} WHERE id BETWEEN 21 AND 29 ORDER BY id`, []));
      const first = await cursor.read(3);
      // On PostgreSQL the rows of the next chunk change while the portal is open: it still reads its
      // snapshot. (The embedded database has one backend, held by the open portal until it ends.)
      if (kind === 'postgres') await admin.query(`UPDATE ${table} SET email = 'changed@example.com' WHERE id BETWEEN 24 AND 26`);
      const second = await cursor.read(3);
      await cursor.close();
      expect(second.map((r) => r['email'])).toEqual([24, 25, 26].map(masked));
      await new Promise((r) => setTimeout(r, 5));
      if (kind === 'embedded') await admin.query(`UPDATE ${table} SET email = 'changed@example.com' WHERE id BETWEEN 24 AND 26`);
      const ids = await resultsSince(admin, table, reader, before, 2);
      const r = await replay(t, ids[1]!, auditor);
      expect(r.status, r.text).toBe(200);
      const body = r.json<Replay>();
      expect(body.chunk).toEqual({ index: 1, offset: 3 });
      expect(body.rows).toEqual(second);
      expect(body.executions.map((e) => e.verified)).toEqual([true]);
      expect(first).toHaveLength(3);
      const now = await client.query(`SELECT email FROM public.${table} WHERE id = 25`);
      expect(now.rows).toEqual([{ email: 'changed***' }]);
    });

    it('replays a chunk of a postgres.js cursor', async () => {
      const sql = t.sql({ user: reader, password: PASSWORD });
      try {
        const before = Date.now();
        const chunks: Record<string, unknown>[][] = [];
        for await (const rows of sql.unsafe(`SELECT id, email FROM public.${table} WHERE id BETWEEN 61 AND 67 ORDER BY id`).cursor(3)) {
          chunks.push([...rows]);
        }
        expect(chunks.map((c) => c.length)).toEqual([3, 3, 1]);
        const ids = await resultsSince(admin, table, reader, before, 3);
        const r = await replay(t, ids[1]!, auditor);
        expect(r.status, r.text).toBe(200);
        const body = r.json<Replay>();
        expect(body.chunk).toEqual({ index: 1, offset: 3 });
        expect(body.rows).toEqual(chunks[1]);
        expect(body.executions.map((e) => e.verified)).toEqual([true]);
      } finally {
        await sql.end();
      }
    });

    it('replays chunks of hand-built Executes with row limits that change, and one without a limit', async () => {
      const user = kind === 'postgres' ? 'trustuser' : 'postgres';
      const raw = await RawClient.connect(t.port, user, t.database);
      try {
        const before = Date.now();
        const id = Buffer.alloc(4);
        id.writeInt32BE(40);
        raw.write(Buffer.concat([
          serialize.parse({ text: `SELECT id, email FROM public.${table} WHERE id > $1 AND id <= 52 ORDER BY id`, types: [23] }),
          serialize.bind({ values: [id], valueMapper: (v: unknown) => v as Buffer, binary: false }),
          serialize.describe({ type: 'P' }),
          serialize.execute({ rows: 2 }),
          serialize.execute({ rows: 5 }),
          serialize.execute({ rows: 0 }),
          serialize.sync(),
        ]));
        const msgs = await raw.untilReady();
        expect(msgs.map((m) => m.code).filter((c) => c !== 'D')).toEqual(['1', '2', 'T', 's', 's', 'C', 'Z']);
        const emails = msgs.filter((m) => m.code === 'D').map((m) => RowBatch.fromFrames([m.raw]).values()[0]![1]!.toString());
        expect(emails).toEqual(Array.from({ length: 12 }, (_, i) => masked(41 + i)));
        const ids = await resultsSince(admin, table, user, before, 3);
        const expected = [[0, 0, 41, 2], [1, 2, 43, 5], [2, 7, 48, 5]] as const;
        for (const [i, [index, offset, from, n]] of expected.entries()) {
          const r = await replay(t, ids[i]!, auditor);
          expect(r.status, r.text).toBe(200);
          const body = r.json<Replay>();
          expect(body.chunk).toEqual({ index, offset });
          expect(body.rows).toEqual(Array.from({ length: n }, (_, k) => ({ id: from + k, email: masked(from + k) })));
          expect(body.executions.map((e) => e.verified)).toEqual([true]);
        }
      } finally {
        raw.end();
      }
    });

    it('keeps the key of an exact statement recorded before migration 15: one without a place is stored once', async () => {
      const same = await admin.query(
        `SELECT provenance.exact_key('SELECT 1', '{23}', '{1}', '{"\\\\x01"}', NULL)
              = provenance.exact_key('SELECT 1', '{23}', '{1}', '{"\\\\x01"}', NULL, NULL, NULL, NULL, NULL, NULL) AS same,
                provenance.exact_key('SELECT 1', '{}', '{}', '{}', NULL, 1, 4, now(), NULL, NULL)
              = provenance.exact_key('SELECT 1', '{}', '{}', '{}', NULL, 2, 4, now(), NULL, NULL) AS chunks_same`);
      expect(same.rows).toEqual([{ same: true, chunks_same: false }]);
    });

    it('replays a slice of the HTTP API\'s own read of more than one slice', async () => {
      const before = Date.now();
      const read = await call(t, `/data/${table}?limit=1100&offset=50`, { user: reader, password: PASSWORD });
      expect(read.status, read.text).toBe(200);
      const rows = read.json<{ rows: { id: number; email: string }[] }>().rows;
      expect(rows).toHaveLength(1100);
      const ids = await resultsSince(admin, table, reader, before, 3);
      const r = await replay(t, ids[1]!, auditor);
      expect(r.status, r.text).toBe(200);
      const body = r.json<Replay>();
      expect(body.chunk).toEqual({ index: 1, offset: 500 });
      expect(body.rows).toEqual(rows.slice(500, 1000));
      expect(body.executions.map((e) => e.verified)).toEqual([true]);
    });
  });
}
