/**
 * Statements a row transform cannot be applied to faithfully (an aggregate, DISTINCT,
 * LIMIT/OFFSET, a window function, a set operation, an outer join, a SELECT whose rows do not reach
 * the result): refused with 42501 when its guard is `values` or `strict` (not for exempt roles),
 * served as before under `off`. While no transform has a guard, statements that name no table
 * with a row transform never reach the parser; while one has, each distinct text is parsed once.
 * Guards hold for every session of the database, so they exempt the superuser and registry admins
 * (other suites share the cluster) and the refused reads are a dedicated role's.
 */
import { describe, expect, it } from 'vitest';
import type pg from 'pg';
import { useTarget, uniqueName, type Target } from '../support/proxy-matrix.js';
import { SHARED_EXEMPT, refusingSession } from '../support/guard-sessions.js';
import { SqlAnalyser } from '../../plugins/sql/analyser.js';

interface Guarded {
  readonly table: string;
  readonly names: string;
  readonly hide: string;
  readonly reader: string;
}

async function guarded(c: pg.Client, guard: 'off' | 'values' | 'strict', exemptReader = false): Promise<Guarded> {
  const table = uniqueName('orders');
  const names = uniqueName('names');
  const hide = uniqueName('hide_low');
  const reader = uniqueName('reader');
  await c.query(`CREATE TABLE ${table} (id int, customer text, amount int)`);
  await c.query(`INSERT INTO ${table} VALUES (1, 'ann', 50), (2, 'bob', 150), (3, 'cid', 300), (4, 'dee', 20)`);
  await c.query(`CREATE TABLE ${names} AS SELECT g AS id, 'n' || g AS name FROM generate_series(1, 5) g`);
  await c.query(`CREATE ROLE ${reader} LOGIN PASSWORD 'pw'`);
  await c.query(`GRANT SELECT, UPDATE ON ${table} TO ${reader}`);
  await c.query(`GRANT SELECT ON ${names} TO ${reader}`);
  await c.query(`SELECT provenance.register_transform($1, $2, NULL, '(row, p) => row.amount < p.min ? null : row', '{"min": 100}', reads => ARRAY['amount'])`, [hide, table]);
  if (guard !== 'off') await c.query('SELECT provenance.set_transform_guard($1, $2, $3)', [hide, guard, [...SHARED_EXEMPT, ...(exemptReader ? [reader] : [])]]);
  return { table, names, hide, reader };
}

/** A session of the fixture's reader once the guard applies to it. */
function readerOf(t: Target, o: Guarded): Promise<pg.Client> {
  return refusingSession(t, o.reader, `SELECT count(*) FROM ${o.table}`);
}

const UNFAITHFUL = (table: string, names: string): [string, string][] => [
  [`SELECT count(*) FROM ${table}`, 'aggregate'],
  [`SELECT customer, max(id) FROM ${table} GROUP BY customer`, 'aggregate'],
  [`SELECT DISTINCT customer FROM ${table}`, 'DISTINCT'],
  [`SELECT id FROM ${table} ORDER BY id LIMIT 2`, 'LIMIT/OFFSET'],
  [`SELECT id FROM ${table} OFFSET 1`, 'LIMIT/OFFSET'],
  [`SELECT id, row_number() OVER () FROM ${table}`, 'window function'],
  [`SELECT id FROM ${table} UNION ALL SELECT id FROM ${names}`, 'set operation'],
  [`SELECT n.name, o.id FROM ${names} n LEFT JOIN ${table} o USING (id)`, 'outer join'],
  [`SELECT count(*) FROM (SELECT * FROM ${table}) s`, 'aggregate'],
  [`SELECT s.id FROM (SELECT id FROM ${table} LIMIT 3) s`, 'LIMIT/OFFSET'],
  [`SELECT name FROM ${names} WHERE id IN (SELECT id FROM ${table})`, 'nested SELECT'],
  [`WITH o AS (SELECT DISTINCT customer FROM ${table}) SELECT customer FROM o`, 'DISTINCT'],
  [`SELECT (SELECT o.customer FROM ${table} o WHERE o.id = n.id) FROM ${names} n`, 'nested SELECT'],
  [`CREATE TEMP TABLE copied AS SELECT * FROM ${table}`, 'nested SELECT'],
  [`UPDATE ${table} SET customer = 'zed' WHERE id = 2 RETURNING id`, 'RETURNING'],
];

for (const kind of ['embedded', 'postgres'] as const) {
  describe(`row transforms under a guard [${kind}]`, () => {
    const t = useTarget(kind);

    it('refuses what it cannot filter faithfully under values and strict, in both protocols', async () => {
      await t.proxy.registryLoaded;
      const c = await t.pg();
      try {
        for (const guard of ['values', 'strict'] as const) {
          const o = await guarded(c, guard);
          const r = await readerOf(t, o);
          const sql = t.sql({ user: o.reader, password: 'pw' });
          try {
            for (const [text, form] of UNFAITHFUL(o.table, o.names)) {
              const simple = await r.query(text).then(() => null, (e: pg.DatabaseError) => e);
              expect(simple, text).toMatchObject({ code: '42501' });
              expect(simple!.message, text).toContain(o.hide);
              expect(simple!.message, text).toContain(form);
              await expect(sql.unsafe(text, [], { prepare: true }), text).rejects.toMatchObject({ code: '42501' });
            }
            // Refused before it ran: the UPDATE … RETURNING changed nothing.
            expect((await c.query(`SELECT customer FROM ${o.table} WHERE id = 2`)).rows).toEqual([{ customer: 'bob' }]);
            // The session goes on, and plain reads are served filtered.
            expect((await r.query(`SELECT id FROM ${o.table} ORDER BY id`)).rows).toEqual([{ id: 2 }, { id: 3 }]);
            expect([...await sql.unsafe(`SELECT customer FROM ${o.table} WHERE id > $1 ORDER BY id`, [1], { prepare: true })]).toEqual([{ customer: 'bob' }, { customer: 'cid' }]);
            expect((await r.query(`SELECT n.name FROM ${o.names} n JOIN ${o.table} o USING (id) ORDER BY 1`)).rows).toEqual([{ name: 'n2' }, { name: 'n3' }]);
          } finally {
            await sql.end();
            await r.end();
          }
          await c.query('SELECT provenance.drop_transform($1)', [o.hide]);
        }
      } finally {
        await c.end();
      }
    });

    it('serves them as before under off, and to members of an exempt role', async () => {
      await t.proxy.registryLoaded;
      const c = await t.pg();
      try {
        const off = await guarded(c, 'off');
        const r = await t.pg({ user: off.reader, password: 'pw' });
        try {
          expect((await r.query(`SELECT count(*)::int AS n FROM ${off.table}`)).rows).toEqual([{ n: 4 }]);
          // LIMIT applies on the server, before the filter: fewer rows than a filter there would give.
          expect((await r.query(`SELECT id FROM ${off.table} ORDER BY id LIMIT 2`)).rows).toEqual([{ id: 2 }]);
        } finally {
          await r.end();
        }
        await c.query('SELECT provenance.drop_transform($1)', [off.hide]);
        const exempt = await guarded(c, 'values', true);
        const e = await t.pg({ user: exempt.reader, password: 'pw' });
        try {
          expect((await e.query(`SELECT count(*)::int AS n FROM ${exempt.table}`)).rows).toEqual([{ n: 4 }]);
        } finally {
          await e.end();
        }
        // The superuser is exempt too (every guard of these suites exempts it).
        expect((await c.query(`SELECT count(*)::int AS n FROM ${exempt.table}`)).rows).toEqual([{ n: 4 }]);
        await c.query('SELECT provenance.drop_transform($1)', [exempt.hide]);
      } finally {
        await c.end();
      }
    });

    it('parses no statement that names no table with a row transform while no transform is guarded; once one is, each text once', async () => {
      await t.proxy.registryLoaded;
      const c = await t.pg();
      try {
        const o = await guarded(c, 'off');
        const plain = uniqueName('plain');
        await c.query(`CREATE TABLE ${plain} (note text)`);
        await c.query(`SELECT id FROM ${o.table}`);
        const analyser = await SqlAnalyser.load();
        const run = async (): Promise<void> => {
          for (let i = 0; i < 10; i++) {
            await c.query(`SELECT note FROM ${plain} WHERE note <> $1`, [String(i)]);
            await c.query(`SELECT ${i} AS n_${o.hide}`);
          }
        };
        // Other suites sharing the PostgreSQL cluster may guard transforms meanwhile: only the embedded registry is this suite's alone.
        let before = analyser.parses;
        await run();
        if (t.kind === 'embedded') expect(analyser.parses).toBe(before);
        await c.query('SELECT provenance.set_transform_guard($1, $2, $3)', [o.hide, 'values', SHARED_EXEMPT]);
        await c.query('SELECT 1');
        before = analyser.parses;
        // Eleven distinct texts, each parsed once and read from the cache after.
        await run();
        if (t.kind === 'embedded') expect(analyser.parses - before).toBe(11);
        else expect(analyser.parses - before).toBeLessThanOrEqual(11);
        before = analyser.parses;
        await run();
        expect(analyser.parses).toBe(before);
        await c.query('SELECT provenance.drop_transform($1)', [o.hide]);
      } finally {
        await c.end();
      }
    });
  });
}
