/**
 * The rows of every portal are transformed with the description of that portal, whatever the
 * order in which a client binds, describes and executes portals: pipelines of several portals,
 * Describe of statements or portals or none, row limits, portals resumed across Syncs inside a
 * transaction, named and unnamed, Close. Through hand-built message sequences, pg and postgres.js,
 * on both upstreams; and with a later plugin that renames the result's columns.
 */
import { expect, it } from 'vitest';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { eachUpstream, type Target } from '../support/proxy-matrix.js';
import { maskedTable } from '../support/masked-table.js';
import { rawClient, runUnit as run } from '../support/raw-unit.js';
import type { Plugin } from '../../plugins/hooks.js';

function setup(t: Target, c: pg.Client): Promise<string> {
  return maskedTable(t, c, 'customers');
}

const { parse, bind, describe, execute, sync, close, query } = serialize;

/** A plugin after transforms that renames a result's email column: the rows must stay masked. */
const renamer: Plugin = {
  name: 'renamer',
  rowDescription: (_s, r) => (r.fields.some((f) => f.name === 'email')
    ? { action: 'rewrite', fields: r.fields.map((f) => (f.name === 'email' ? { ...f, name: 'contact' } : f)), watch: false }
    : { action: 'pass' }),
};

eachUpstream('rows of each portal', (t) => {
  it('transforms a portal executed after another portal was described', async () => {
    const c = await t().pg();
    const raw = await rawClient(t());
    try {
      const table = await setup(t(), c);
      const r = await run(raw,
        parse({ name: 's1', text: `SELECT id, email FROM ${table} ORDER BY id` }), parse({ name: 's2', text: 'SELECT 1' }),
        bind({ portal: 'p1', statement: 's1' }), describe({ type: 'P', name: 'p1' }),
        bind({ portal: 'p2', statement: 's2' }), describe({ type: 'P', name: 'p2' }),
        execute({ portal: 'p1' }), execute({ portal: 'p2' }), sync());
      expect(r.codes).toBe('112T2TDDDCDCZ');
      expect(r.rows).toEqual([['1', 'al***'], ['2', 'bo***'], ['3', 'ca***'], ['1']]);
      // The same with the portals described in the other order, and unnamed statements.
      const r2 = await run(raw,
        parse({ text: `SELECT email FROM ${table} WHERE id = 2` }), bind({ portal: 'a' }),
        parse({ text: 'SELECT 2' }), bind({ portal: 'b' }),
        describe({ type: 'P', name: 'b' }), describe({ type: 'P', name: 'a' }),
        execute({ portal: 'b' }), execute({ portal: 'a' }), sync());
      expect(r2.rows).toEqual([['2'], ['bo***']]);
    } finally {
      raw.end();
      await c.end();
    }
  });

  it('transforms the rest of a portal executed with a row limit, after another portal ran in between', async () => {
    const c = await t().pg();
    const raw = await rawClient(t());
    try {
      const table = await setup(t(), c);
      const r = await run(raw,
        parse({ name: 'l1', text: `SELECT id, email FROM ${table} ORDER BY id` }), parse({ name: 'l2', text: 'SELECT 1' }),
        bind({ portal: 'p1', statement: 'l1' }), execute({ portal: 'p1', rows: 1 }),
        bind({ portal: 'p2', statement: 'l2' }), execute({ portal: 'p2' }),
        execute({ portal: 'p1' }), sync());
      expect(r.codes).toBe('112Ds2DCDDCZ');
      expect(r.rows).toEqual([['1', 'al***'], ['1'], ['2', 'bo***'], ['3', 'ca***']]);
      // The unnamed portal is replaced by each Bind: the rows of each are the right ones.
      const u = await run(raw,
        bind({ statement: 'l1' }), execute({ rows: 1 }), bind({ statement: 'l2' }), execute({}),
        bind({ statement: 'l1' }), describe({ type: 'P' }), execute({ rows: 2 }), execute({}), sync());
      expect(u.rows).toEqual([['1', 'al***'], ['1'], ['1', 'al***'], ['2', 'bo***'], ['3', 'ca***']]);
    } finally {
      raw.end();
      await c.end();
    }
  });

  it('transforms a portal of a described statement, and portals resumed across Syncs inside a transaction', async () => {
    const c = await t().pg();
    const raw = await rawClient(t());
    try {
      const table = await setup(t(), c);
      const s = await run(raw, parse({ name: 'd1', text: `SELECT email, id FROM ${table} ORDER BY id` }), describe({ type: 'S', name: 'd1' }), sync());
      expect(s.codes).toBe('1tTZ');
      const e = await run(raw, bind({ portal: 'q', statement: 'd1' }), execute({ portal: 'q' }), sync());
      expect(e.rows).toEqual([['al***', '1'], ['bo***', '2'], ['ca***', '3']]);
      // Named and unnamed portals, fetched in chunks, one Sync each, interleaved.
      expect((await run(raw, query('BEGIN'))).errors).toEqual([]);
      await run(raw, bind({ portal: 'n', statement: 'd1' }), describe({ type: 'P', name: 'n' }), execute({ portal: 'n', rows: 1 }), sync());
      const chunks: (string | null)[][] = [];
      chunks.push(...(await run(raw, bind({ statement: 'd1' }), execute({ rows: 2 }), sync())).rows);
      chunks.push(...(await run(raw, execute({ portal: 'n', rows: 1 }), sync())).rows);
      chunks.push(...(await run(raw, execute({ rows: 5 }), sync())).rows);
      chunks.push(...(await run(raw, execute({ portal: 'n' }), sync())).rows);
      expect(chunks).toEqual([['al***', '1'], ['bo***', '2'], ['bo***', '2'], ['ca***', '3'], ['ca***', '3']]);
      // A closed portal is gone; a new Bind of its name is a new portal.
      const closed = await run(raw, close({ type: 'P', name: 'n' }), execute({ portal: 'n' }), sync());
      expect(closed.errors).toEqual(['34000']);
      await run(raw, query('ROLLBACK'));
      await run(raw, query('BEGIN'));
      await run(raw, parse({ name: 'd2', text: 'SELECT $1::text AS email' }), bind({ portal: 'n', statement: 'd2', values: ['zed@example.com'] }), sync());
      const other = await run(raw, execute({ portal: 'n' }), close({ type: 'P', name: 'n' }), bind({ portal: 'n', statement: 'd1' }), execute({ portal: 'n', rows: 1 }), sync());
      expect(other.rows).toEqual([['zed@example.com'], ['al***', '1']]);
      await run(raw, query('COMMIT'));
    } finally {
      raw.end();
      await c.end();
    }
  });

  it('transforms cursors fetched in the simple and the extended protocol', async () => {
    const c = await t().pg();
    const raw = await rawClient(t());
    try {
      const table = await setup(t(), c);
      await c.query('BEGIN');
      await c.query(`DECLARE cur CURSOR FOR SELECT id, email FROM ${table} ORDER BY id`);
      const first = await c.query('FETCH 2 FROM cur');
      expect(first.rows).toEqual([{ id: 1, email: 'al***' }, { id: 2, email: 'bo***' }]);
      const rest = await c.query({ text: 'FETCH 5 FROM cur', rowMode: 'array' });
      expect(rest.rows).toEqual([[3, 'ca***']]);
      await c.query('COMMIT');
      // A cursor is a portal: Execute it by name.
      await run(raw, query(`BEGIN; DECLARE rc CURSOR FOR SELECT email FROM ${table} ORDER BY id`));
      const byName = await run(raw, execute({ portal: 'rc', rows: 2 }), sync());
      expect(byName.rows).toEqual([['al***'], ['bo***']]);
      await run(raw, query('COMMIT'));
    } finally {
      raw.end();
      await c.end();
    }
  });

  it('transforms the rows of pg pipelines and postgres.js cursors', async () => {
    const c = await t().pg();
    const sql = t().sql();
    try {
      const table = await setup(t(), c);
      const queries = await Promise.all([
        c.query({ name: 'one', text: `SELECT id, email FROM ${table} WHERE id = $1`, values: [1] }),
        c.query('SELECT 42 AS answer'),
        c.query({ name: 'one', text: `SELECT id, email FROM ${table} WHERE id = $1`, values: [3] }),
        c.query({ text: `SELECT email FROM ${table} ORDER BY id`, values: [] }),
      ]);
      expect(queries.map((q) => q.rows)).toEqual([
        [{ id: 1, email: 'al***' }], [{ answer: 42 }], [{ id: 3, email: 'ca***' }],
        [{ email: 'al***' }, { email: 'bo***' }, { email: 'ca***' }],
      ]);
      const seen: string[] = [];
      await sql.begin(async (tx) => {
        for await (const rows of tx.unsafe(`SELECT email FROM ${table} ORDER BY id`).cursor(1)) seen.push(...rows.map((r) => String(r['email'])));
        for await (const rows of tx.unsafe(`SELECT id, email FROM ${table} WHERE id > $1 ORDER BY id`, [1]).cursor(1)) seen.push(...rows.map((r) => String(r['email'])));
      });
      expect(seen).toEqual(['al***', 'bo***', 'ca***', 'bo***', 'ca***']);
      const [prepared] = await sql.unsafe(`SELECT email FROM ${table} WHERE id = $1`, [3], { prepare: true });
      expect(prepared).toEqual({ email: 'ca***' });
    } finally {
      await sql.end();
      await c.end();
    }
  });
});

eachUpstream('a plugin that renames result columns', (t) => {
  it('cannot detach the transforms: the renamed column is still masked', async () => {
    const c = await t().pg();
    const raw = await rawClient(t());
    try {
      const table = await setup(t(), c);
      const simple = await c.query(`SELECT id, email FROM ${table} WHERE id = 1`);
      expect(simple.rows).toEqual([{ id: 1, contact: 'al***' }]);
      const extended = await c.query({ text: `SELECT email FROM ${table} WHERE id = $1`, values: [2] });
      expect(extended.rows).toEqual([{ contact: 'bo***' }]);
      const pipelined = await run(raw,
        parse({ name: 'r1', text: `SELECT id, email FROM ${table} ORDER BY id` }), bind({ portal: 'x', statement: 'r1' }),
        describe({ type: 'P', name: 'x' }), execute({ portal: 'x', rows: 1 }), execute({ portal: 'x' }), sync());
      expect(pipelined.rows).toEqual([['1', 'al***'], ['2', 'bo***'], ['3', 'ca***']]);
    } finally {
      raw.end();
      await c.end();
    }
  });
}, () => [renamer]);
