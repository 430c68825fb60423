/**
 * Row transforms see the columns they read through subqueries and CTEs: the proxy carries them
 * out to the result, so `select id from (select id from orders) s` is filtered as if the filter
 * ran on the server. Where they cannot be carried out (a view, a recursive CTE, a self-join, a bare
 * name other schemas share that the proxy cannot resolve), the statement is refused under every
 * guard, naming the row transform; bare names resolve through the session's search_path.
 */
import { describe, expect, it } from 'vitest';
import type pg from 'pg';
import { serialize } from 'pg-protocol';
import { useTarget, uniqueName } from '../support/proxy-matrix.js';
import { describedUnit, raw, summary } from '../support/row-reads-wire.js';
import { SHARED_EXEMPT, refusingSession } from '../support/guard-sessions.js';

const HIDE_LOW = '(row, p) => row.amount < p.min ? null : row';

interface Fixture {
  readonly table: string;
  readonly names: string;
  readonly hide: string;
}

async function fixture(c: pg.Client, guard: 'off' | 'values' = 'off'): Promise<Fixture> {
  // Guards hold for every session of the database (the cluster is shared): the superuser and registry admins are exempt.
  const table = uniqueName('orders');
  const names = uniqueName('names');
  const hide = uniqueName('hide_low');
  await c.query(`CREATE TABLE ${table} (id int, customer text, amount int)`);
  await c.query(`INSERT INTO ${table} VALUES (1, 'ann', 50), (2, 'bob', 150), (3, 'cid', 300), (4, 'dee', 20)`);
  await c.query(`CREATE TABLE ${names} AS SELECT g AS id, 'n' || g AS name FROM generate_series(1, 5) g`);
  await c.query(`GRANT SELECT ON ${table}, ${names} TO PUBLIC`);
  await c.query(`SELECT provenance.register_transform($1, $2, NULL, $3, '{"min": 100}', reads => ARRAY['amount'])`, [hide, table, HIDE_LOW]);
  if (guard !== 'off') await c.query('SELECT provenance.set_transform_guard($1, $2, $3)', [hide, guard, SHARED_EXEMPT]);
  return { table, names, hide };
}

/** A statement through subqueries or CTEs, and the same with the filter written into it: the server's answer. */
const CARRIED = (t: string, n: string): [string, string][] => [
  [`SELECT id FROM (SELECT id FROM ${t}) s ORDER BY id`, `SELECT id FROM (SELECT id FROM ${t} WHERE amount >= 100) s ORDER BY id`],
  [`SELECT s.who FROM (SELECT customer AS who, id FROM ${t}) AS s ORDER BY 1`, `SELECT s.who FROM (SELECT customer AS who, id FROM ${t} WHERE amount >= 100) AS s ORDER BY 1`],
  [`SELECT x FROM (SELECT id AS x FROM (SELECT id FROM ${t}) a) b ORDER BY 1`, `SELECT x FROM (SELECT id AS x FROM (SELECT id FROM ${t} WHERE amount >= 100) a) b ORDER BY 1`],
  [`WITH o AS (SELECT id FROM ${t}) SELECT id FROM o ORDER BY id`, `WITH o AS (SELECT id FROM ${t} WHERE amount >= 100) SELECT id FROM o ORDER BY id`],
  [`WITH o(k) AS (SELECT id FROM ${t}) SELECT k FROM o ORDER BY k`, `WITH o(k) AS (SELECT id FROM ${t} WHERE amount >= 100) SELECT k FROM o ORDER BY k`],
  [`WITH o AS (SELECT * FROM ${t}) SELECT id FROM (SELECT id FROM o) s ORDER BY id`, `WITH o AS (SELECT * FROM ${t} WHERE amount >= 100) SELECT id FROM (SELECT id FROM o) s ORDER BY id`],
  [`SELECT * FROM (SELECT id, customer FROM ${t}) s ORDER BY id`, `SELECT * FROM (SELECT id, customer FROM ${t} WHERE amount >= 100) s ORDER BY id`],
  [`SELECT s.* FROM (SELECT id FROM ${t}) s ORDER BY 1`, `SELECT s.* FROM (SELECT id FROM ${t} WHERE amount >= 100) s ORDER BY 1`],
  [`SELECT n.name FROM ${n} n JOIN (SELECT id FROM ${t}) s USING (id) ORDER BY 1`, `SELECT n.name FROM ${n} n JOIN (SELECT id FROM ${t} WHERE amount >= 100) s USING (id) ORDER BY 1`],
  [`SELECT id FROM (SELECT * FROM ${t}) s WHERE s.id > 1 ORDER BY id`, `SELECT id FROM (SELECT * FROM ${t} WHERE amount >= 100) s WHERE s.id > 1 ORDER BY id`],
  [`SELECT 1 AS one FROM (SELECT id FROM ${t}) s`, `SELECT 1 AS one FROM (SELECT id FROM ${t} WHERE amount >= 100) s`],
  [`SELECT a FROM ${t} AS x(a, b) ORDER BY a`, `SELECT a FROM ${t} AS x(a, b) WHERE amount >= 100 ORDER BY a`],
  [`SELECT a FROM ${t} AS x(a, b, c) ORDER BY a`, `SELECT a FROM ${t} AS x(a, b, c) WHERE c >= 100 ORDER BY a`],
  [`SELECT id, id AS again FROM ${t} ORDER BY id`, `SELECT id, id AS again FROM ${t} WHERE amount >= 100 ORDER BY id`],
  [`SELECT id, amount, amount AS twice FROM (SELECT * FROM ${t}) s ORDER BY id`, `SELECT id, amount, amount AS twice FROM (SELECT * FROM ${t} WHERE amount >= 100) s ORDER BY id`],
];

/** Statements whose rows reach the client without a way to carry the column out: refused under every guard. */
const UNREAD = (t: string, view: string): [string, string][] => [
  [`SELECT id FROM ${view} ORDER BY id`, 'view'],
  [`SELECT id FROM (SELECT id FROM ${view}) s`, 'view'],
  [`WITH RECURSIVE r AS (SELECT id FROM ${t} UNION ALL SELECT id + 10 FROM r WHERE id < 0) SELECT id FROM r`, 'recursive CTE'],
  [`SELECT a.id, b.id FROM ${t} a JOIN ${t} b ON a.id = b.id`, 'self-join'],
  [`SELECT a.id FROM ${t} a JOIN (SELECT id FROM ${t}) b USING (id)`, 'self-join'],
];

function fields(r: pg.QueryResult): unknown[] {
  return r.fields.map((f) => ({ ...f }));
}

for (const kind of ['embedded', 'postgres'] as const) {
  describe(`row transforms read through subqueries and CTEs [${kind}]`, () => {
    const t = useTarget(kind);

    it('filters through subqueries, CTEs and alias lists as the filtered query, in both protocols, text and binary', async () => {
      await t.proxy.registryLoaded;
      const c = await t.pg();
      const binary = await t.pg({ binary: true } as Partial<pg.ClientConfig>);
      const sql = t.sql();
      try {
        const o = await fixture(c);
        for (const [text, filtered] of CARRIED(o.table, o.names)) {
          const got = await c.query(text);
          const want = await c.query(filtered);
          expect(got.rows, text).toEqual(want.rows);
          expect(got.rowCount, text).toBe(want.rowCount);
          expect(fields(got), text).toEqual(fields(want));
          expect(got.rows.length, text).toBeLessThan(4);
          const extended = await c.query({ text, values: [] });
          expect(extended.rows, text).toEqual(want.rows);
          expect((await binary.query({ text, values: [] })).rows, text).toEqual((await binary.query({ text: filtered, values: [] })).rows);
          const js = await sql.unsafe(text, [], { prepare: true });
          expect([...js], text).toEqual([...await sql.unsafe(filtered, [], { prepare: true })]);
          expect(js.count, text).toBe(want.rowCount);
        }
        // Rows the server itself filters, for a subquery on PostgreSQL.
        expect((await c.query(`SELECT id FROM (SELECT id FROM ${o.table}) s ORDER BY id`)).rows).toEqual([{ id: 2 }, { id: 3 }]);
        await c.query('SELECT provenance.drop_transform($1)', [o.hide]);
      } finally {
        await sql.end();
        await binary.end();
        await c.end();
      }
    });

    it('answers Describe and per-column result formats of a star over a subquery as for the filtered query', async () => {
      await t.proxy.registryLoaded;
      const c = await t.pg();
      const w = await raw(t);
      try {
        const o = await fixture(c);
        const unit = (query: string): Promise<unknown[]> => describedUnit(w, query);
        const got = await unit(`SELECT * FROM (SELECT id, customer FROM ${o.table}) s ORDER BY id`);
        expect(got).toEqual(await unit(`SELECT * FROM (SELECT id, customer FROM ${o.table} WHERE amount >= 100) s ORDER BY id`));
        expect(got).toContainEqual({ C: 'SELECT 2' });
        w.write(serialize.query(`WITH x AS (SELECT customer FROM ${o.table}) SELECT customer FROM x ORDER BY 1`));
        const simple = summary(await w.untilReady());
        w.write(serialize.query(`WITH x AS (SELECT customer FROM ${o.table} WHERE amount >= 100) SELECT customer FROM x ORDER BY 1`));
        expect(simple).toEqual(summary(await w.untilReady()));
        await c.query('SELECT provenance.drop_transform($1)', [o.hide]);
      } finally {
        w.end();
        await c.end();
      }
    });

    it('refuses views, recursive CTEs and self-joins of the table under every guard (0A000 under off, 42501 under values)', async () => {
      await t.proxy.registryLoaded;
      const c = await t.pg();
      try {
        for (const guard of ['off', 'values'] as const) {
          const o = await fixture(c, guard);
          const view = uniqueName('orders_view');
          const reader = uniqueName('reader');
          await c.query(`CREATE VIEW ${view} AS SELECT id, customer FROM ${o.table}`);
          await c.query(`GRANT SELECT ON ${view} TO PUBLIC`);
          await c.query(`CREATE ROLE ${reader} LOGIN PASSWORD 'pw'`);
          const code = guard === 'off' ? '0A000' : '42501';
          // The guard (exempting the superuser) applies to the reader's sessions from the registry's next read on.
          const r = guard === 'off' ? await t.pg({ user: reader, password: 'pw' }) : await refusingSession(t, reader, `SELECT id FROM ${view}`);
          const sql = t.sql({ user: reader, password: 'pw' });
          try {
            for (const [text, what] of UNREAD(o.table, view)) {
              const simple = await r.query(text).then(() => null, (e: pg.DatabaseError) => e);
              expect(simple, text).toMatchObject({ code });
              expect(simple!.message, text).toContain(o.hide);
              if (guard === 'off') expect(simple!.message, text).toContain(what);
              await expect(sql.unsafe(text, [], { prepare: true }), text).rejects.toMatchObject({ code });
            }
            // The session goes on; forms documented under off still pass there.
            expect((await r.query(`SELECT id FROM (SELECT id FROM ${o.table}) s ORDER BY id`)).rows).toEqual([{ id: 2 }, { id: 3 }]);
            if (guard === 'off') {
              expect((await r.query(`SELECT count(*)::int AS n FROM (SELECT * FROM ${o.table}) s`)).rows).toEqual([{ n: 4 }]);
              expect((await r.query(`SELECT count(*)::int AS n FROM ${o.names} WHERE id IN (SELECT id FROM ${o.table})`)).rows).toEqual([{ n: 4 }]);
            }
          } finally {
            await sql.end();
            await r.end();
          }
          await c.query(`DROP VIEW ${view}`);
          await c.query('SELECT provenance.drop_transform($1)', [o.hide]);
        }
      } finally {
        await c.end();
      }
    });

    it('resolves a bare name other schemas share through the session\'s search_path, and refuses it while that is unknown', async () => {
      await t.proxy.registryLoaded;
      const c = await t.pg();
      try {
        const name = uniqueName('shared');
        const [a, b] = [uniqueName('sa'), uniqueName('sb')];
        const hide = uniqueName('hide_low');
        for (const s of [a, b]) {
          await c.query(`CREATE SCHEMA ${s}`);
          await c.query(`GRANT USAGE ON SCHEMA ${s} TO PUBLIC`);
          await c.query(`CREATE TABLE ${s}.${name} (id int, amount int)`);
          await c.query(`INSERT INTO ${s}.${name} VALUES (1, 50), (2, 150)`);
          await c.query(`GRANT SELECT ON ${s}.${name} TO PUBLIC`);
        }
        await c.query(`SELECT provenance.register_transform($1, $2, NULL, $3, '{"min": 100}', reads => ARRAY['amount'])`, [hide, `${a}.${name}`, HIDE_LOW]);
        // And one in public, which the server's default search_path ("$user", public) finds.
        await c.query(`CREATE TABLE public.${name} (id int, amount int)`);
        await c.query(`INSERT INTO public.${name} VALUES (1, 50), (2, 150), (3, 10)`);
        await c.query(`GRANT SELECT ON public.${name} TO PUBLIC`);
        const d = await t.pg();
        try {
          expect((await d.query(`SELECT id FROM ${name} ORDER BY id`)).rows).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
          // set_config: the proxy cannot follow it, and refuses the name until the session sets the path.
          await d.query(`SELECT set_config('search_path', '${a}', false)`);
          const refused = await d.query(`SELECT id FROM ${name}`).then(() => null, (e: pg.DatabaseError) => e);
          expect(refused).toMatchObject({ code: '0A000' });
          expect(refused!.message).toContain(hide);
          expect(refused!.message).toContain('search_path');
          expect((await d.query(`SELECT id FROM ${a}.${name} ORDER BY id`)).rows).toEqual([{ id: 2 }]);
          await d.query(`SET search_path = ${b}, public`);
          expect((await d.query(`SELECT id FROM ${name} ORDER BY id`)).rows).toEqual([{ id: 1 }, { id: 2 }]);
          await d.query(`SET search_path = ${a}, public`);
          expect((await d.query(`SELECT id FROM ${name} ORDER BY id`)).rows).toEqual([{ id: 2 }]);
          expect((await d.query(`SELECT id FROM (SELECT id FROM ${name}) s ORDER BY id`)).rows).toEqual([{ id: 2 }]);
          // A SET in a transaction that rolls back is undone; the proxy follows.
          await d.query('BEGIN');
          await d.query(`SET search_path = ${b}`);
          expect((await d.query(`SELECT id FROM ${name} ORDER BY id`)).rows).toEqual([{ id: 1 }, { id: 2 }]);
          await d.query('ROLLBACK');
          await expect(d.query(`SELECT id FROM ${name} ORDER BY id`)).rejects.toMatchObject({ code: '0A000' });
          await d.query(`SET search_path = ${a}`);
          expect((await d.query(`SELECT id FROM ${name} ORDER BY id`)).rows).toEqual([{ id: 2 }]);
        } finally {
          await d.end();
        }
        // Given at startup.
        const e = await t.pg({ options: `-c search_path=${a}` } as Partial<pg.ClientConfig>);
        try {
          expect((await e.query(`SELECT id FROM ${name} ORDER BY id`)).rows).toEqual([{ id: 2 }]);
        } finally {
          await e.end();
        }
        await c.query('SELECT provenance.drop_transform($1)', [hide]);
        await c.query(`DROP TABLE public.${name}`);
      } finally {
        await c.end();
      }
    });

    it('skips schemas the session\'s role may not use when resolving a bare name, as the server does', async () => {
      await t.proxy.registryLoaded;
      const c = await t.pg();
      try {
        const name = uniqueName('usage');
        const [hidden, open] = [uniqueName('su'), uniqueName('sv')];
        const hide = uniqueName('hide_low');
        const reader = uniqueName('reader');
        await c.query(`CREATE ROLE ${reader} LOGIN PASSWORD 'pw'`);
        for (const s of [hidden, open]) {
          await c.query(`CREATE SCHEMA ${s}`);
          await c.query(`CREATE TABLE ${s}.${name} (id int, amount int)`);
          await c.query(`GRANT SELECT ON ${s}.${name} TO ${reader}`);
        }
        await c.query(`INSERT INTO ${hidden}.${name} VALUES (1, 5), (2, 5), (3, 5)`);
        await c.query(`INSERT INTO ${open}.${name} VALUES (1, 50), (2, 150)`);
        // The reader may not use the first schema of its path: the server reads the second one's table, which has the row transform.
        await c.query(`GRANT USAGE ON SCHEMA ${open} TO ${reader}`);
        await c.query(`SELECT provenance.register_transform($1, $2, NULL, $3, '{"min": 100}', reads => ARRAY['amount'])`, [hide, `${open}.${name}`, HIDE_LOW]);
        const r = await t.pg({ user: reader, password: 'pw', options: `-c search_path=${hidden},${open}` } as Partial<pg.ClientConfig>);
        try {
          const text = `SELECT id FROM ${name} ORDER BY id`;
          expect((await r.query(text)).rows).toEqual([{ id: 2 }]);
          expect((await r.query({ text, values: [] })).rows).toEqual([{ id: 2 }]);
          expect((await r.query(`SELECT id FROM (SELECT id FROM ${name}) s WHERE id > $1 ORDER BY id`, [0])).rows).toEqual([{ id: 2 }]);
          // Once it may use the first schema, the name means that schema's table, which has no transform.
          await c.query(`GRANT USAGE ON SCHEMA ${hidden} TO ${reader}`);
          expect((await r.query(text)).rows).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
        } finally {
          await r.end();
        }
        await c.query('SELECT provenance.drop_transform($1)', [hide]);
      } finally {
        await c.end();
      }
    });
  });
}
