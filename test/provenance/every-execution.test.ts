/**
 * Every batch of rows served is covered by a record, whatever the protocol does: portals fetched
 * in chunks (one record per Execute, with the counts and hashes of what that Execute served),
 * abandoned portals, cursors in both protocols. And the role a record names is the one the
 * statement ran as, or NULL when the proxy cannot know it.
 */
import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { uniqueName, useTarget, type Target } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';
import { maskedTable } from '../support/masked-table.js';
import { RawClient } from '../support/raw-client.js';

interface Rec {
  result_id: string;
  rows_in: string;
  rows_out: string;
  input_hash: string;
  output_hash: string;
  user_name: string;
  current_role_name: string | null;
  outcome: string;
}

const { parse, bind, execute, sync, query } = serialize;

function setup(t: Target, c: pg.Client): Promise<string> {
  return maskedTable(t, c, 'accounts');
}

/**
 * The records of a table since a moment, oldest first, once there are `count` of them: with sync
 * durability a record is in the database or the spool before the answer, and the embedded
 * database takes the proxy's own writes only between transactions.
 */
async function records(c: pg.Client, table: string, since: Date, count: number): Promise<Rec[]> {
  return eventually(async () => (await c.query<Rec>(
    'SELECT * FROM provenance.executions WHERE table_name = $1 AND executed_at >= $2 ORDER BY executed_at, result_id', [`public.${table}`, since])).rows,
  (rows) => rows.length >= count);
}

async function rawClient(t: Target): Promise<RawClient> {
  return RawClient.connect(t.port, t.kind === 'postgres' ? 'trustuser' : 'postgres');
}

/** The DataRows of the answer; an ErrorResponse fails the test with what the proxy said. */
async function send(raw: RawClient, ...messages: Buffer[]): Promise<number> {
  raw.write(Buffer.concat(messages));
  const answer = await raw.untilReady();
  const error = answer.find((m) => m.code === 'E');
  if (error !== undefined) throw new Error(`the proxy answered an error: ${error.body.toString('utf8').split('\0').join(' ')}`);
  return answer.filter((m) => m.code === 'D').length;
}

for (const kind of ['embedded', 'postgres'] as const) {
  describe(`every execution is recorded [${kind}]`, () => {
    const t = useTarget(kind, [], () => ({ provenanceDurability: 'sync' }));

    it('records each chunk of a portal fetched with a row limit, with the counts and hashes of what it served', async () => {
      const c = await t.pg();
      const raw = await rawClient(t);
      try {
        const table = await setup(t, c);
        // What each row alone hashes to, read with a plain statement.
        const single: Rec[] = [];
        for (const id of [1, 2, 3]) {
          const since = new Date();
          await c.query(`SELECT id, email FROM ${table} WHERE id = ${id}`);
          single.push(...(await records(c, table, since, 1)));
        }
        expect(single.map((r) => r.rows_in)).toEqual(['1', '1', '1']);
        const since = new Date();
        await send(raw, query('BEGIN'));
        expect(await send(raw, parse({ text: `SELECT id, email FROM ${table} ORDER BY id` }), bind({}), execute({ rows: 1 }), sync())).toBe(1);
        expect(await send(raw, execute({ rows: 1 }), sync())).toBe(1);
        expect(await send(raw, execute({ rows: 5 }), sync())).toBe(1);
        await send(raw, query('COMMIT'));
        const chunks = await records(c, table, since, 3);
        expect(chunks.map((r) => [r.rows_in, r.rows_out, r.outcome])).toEqual([['1', '1', 'complete'], ['1', '1', 'complete'], ['1', '1', 'complete']]);
        expect(new Set(chunks.map((r) => r.result_id)).size).toBe(3);
        expect(chunks.map((r) => [r.input_hash, r.output_hash])).toEqual(single.map((r) => [r.input_hash, r.output_hash]));
        // A portal abandoned after its first chunk: what it served is recorded.
        const abandoned = new Date();
        await send(raw, query('BEGIN'));
        expect(await send(raw, parse({ text: `SELECT id, email FROM ${table} ORDER BY id` }), bind({ portal: 'a' }), execute({ portal: 'a', rows: 2 }), sync())).toBe(2);
        await send(raw, query('ROLLBACK'));
        expect((await records(c, table, abandoned, 1)).map((r) => r.rows_in)).toEqual(['2']);
      } finally {
        raw.end();
        await c.end();
      }
    });

    it('records cursors fetched in the simple protocol and through postgres.js', async () => {
      const c = await t.pg();
      const sql = t.sql();
      try {
        const table = await setup(t, c);
        const since = new Date();
        await c.query('BEGIN');
        await c.query(`DECLARE cur CURSOR FOR SELECT id, email FROM ${table} ORDER BY id`);
        expect((await c.query('FETCH 2 FROM cur')).rows).toHaveLength(2);
        expect((await c.query('FETCH 5 FROM cur')).rows).toHaveLength(1);
        await c.query('COMMIT');
        expect((await records(c, table, since, 2)).map((r) => r.rows_in)).toEqual(['2', '1']);
        const later = new Date();
        let served = 0;
        await sql.begin(async (tx) => {
          for await (const rows of tx.unsafe(`SELECT email FROM ${table} ORDER BY id`).cursor(2)) served += rows.length;
        });
        expect(served).toBe(3);
        const recs = await records(c, table, later, 2);
        expect(recs.reduce((n, r) => n + Number(r.rows_in), 0)).toBe(3);
        expect(recs.map((r) => r.rows_in).slice(0, 2)).toEqual(['2', '1']);
      } finally {
        await sql.end();
        await c.end();
      }
    });

    it('names the role a statement ran as, follows transactions, and says NULL when it cannot know', async () => {
      const c = await t.pg();
      const reader = await t.pg();
      try {
        const table = await setup(t, c);
        const team = uniqueName('team');
        await c.query(`CREATE ROLE ${team}`);
        await c.query(`GRANT SELECT ON ${table} TO ${team}`);
        const since = new Date();
        // The role each read should be recorded with; the records are read at the end (the
        // embedded database writes them once the session's transaction is over).
        const expected: (string | null)[] = [];
        const read = async (role: string | null): Promise<void> => {
          await c.query(`SELECT email FROM ${table} WHERE id = 1`);
          expected.push(role);
        };
        await read(t.user);
        await c.query('BEGIN');
        await c.query(`SET ROLE ${team}`);
        await read(team);
        await c.query('ROLLBACK');
        await read(t.user);
        await c.query('BEGIN');
        await c.query(`SET LOCAL ROLE ${team}`);
        await read(team);
        await c.query('COMMIT');
        await read(t.user);
        await c.query('BEGIN');
        await c.query(`SET ROLE ${team}`);
        await c.query('COMMIT');
        await read(team);
        await c.query('RESET ROLE');
        await read(t.user);
        // A transaction that failed after its SET ROLE rolls it back, whatever the client ends it with.
        await c.query('BEGIN');
        await c.query(`SET ROLE ${team}`);
        await expect(c.query('SELECT 1/0')).rejects.toThrow();
        await c.query('COMMIT');
        await read(t.user);
        // The extended protocol's implicit transaction: a SET ROLE that went through stays.
        await c.query({ text: `SET ROLE ${team}`, values: [] });
        await read(team);
        await c.query('RESET ROLE');
        // Changed some other way: unknown, until a SET ROLE or RESET ROLE the proxy follows.
        await c.query('SELECT set_config($1, $2, false)', ['role', team]);
        await read(null);
        await c.query('RESET ROLE');
        await read(t.user);
        await c.query('BEGIN');
        await c.query('SAVEPOINT s');
        await c.query(`SET ROLE ${team}`);
        await c.query('ROLLBACK TO SAVEPOINT s');
        await read(null);
        await c.query('COMMIT');
        await read(null);
        await c.query('RESET ROLE');
        await read(t.user);
        // Read as the server reads it: comments and line breaks between the words change nothing.
        await c.query(`SET/**/ROLE --x\n ${team}`);
        await read(team);
        await c.query('reset/* y */role');
        await read(t.user);
        await c.query(`SELECT 1; SET ROLE ${team}`);
        await read(null);
        await c.query('SET ROLE NONE');
        await read(t.user);
        const recs = await records(reader, table, since, expected.length);
        expect(recs.map((r) => r.current_role_name)).toEqual(expected);
        expect(new Set(recs.map((r) => r.user_name))).toEqual(new Set([t.user]));
      } finally {
        await reader.end();
        await c.end();
      }
    });
  });
}
