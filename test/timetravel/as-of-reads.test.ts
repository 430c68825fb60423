/**
 * Reads in a session that sets `provenance.as_of`: every tracked table a statement reads comes
 * from its history as of the moment (joins, subqueries, CTEs, aliases, qualified or not, both
 * protocols, with parameters), through pg, postgres.js and psql. Expected rows are the test's own
 * record of what it wrote and when (the database's clock after each committed write).
 */
import { expect, it } from 'vitest';
import type pg from 'pg';
import { eachUpstream, uniqueName } from '../support/proxy-matrix.js';
import { moment, refusal } from './as-of-support.js';

eachUpstream('as-of reads', (t) => {
  async function client(): Promise<pg.Client> {
    const c = await t().pg();
    await t().proxy.stateReady;
    return c;
  }

  /** Two tracked tables with a known past: returns the moments and what each table held then. */
  async function past(c: pg.Client): Promise<{ a: string; b: string; m: string[]; rows: { a: unknown[][]; b: unknown[][] }[] }> {
    const a = uniqueName('acct');
    const b = uniqueName('note');
    await c.query(`CREATE TABLE ${a} (id int PRIMARY KEY, owner text, balance int); CREATE TABLE ${b} (acct int, body text)`);
    await c.query(`INSERT INTO ${a} VALUES (1, 'ann', 10), (2, 'bob', 20); INSERT INTO ${b} VALUES (1, 'first')`);
    await c.query('SELECT provenance.track($1), provenance.track($2)', [a, b]);
    const m: string[] = [await moment(c)];
    const rows = [{ a: [[1, 'ann', 10], [2, 'bob', 20]], b: [[1, 'first']] }];
    await c.query(`UPDATE ${a} SET balance = 15 WHERE id = 1; INSERT INTO ${b} VALUES (2, 'second')`);
    m.push(await moment(c));
    rows.push({ a: [[1, 'ann', 15], [2, 'bob', 20]], b: [[1, 'first'], [2, 'second']] });
    await c.query(`DELETE FROM ${a} WHERE id = 2; UPDATE ${b} SET body = 'changed' WHERE acct = 1`);
    m.push(await moment(c));
    rows.push({ a: [[1, 'ann', 15]], b: [[1, 'changed'], [2, 'second']] });
    return { a, b, m, rows };
  }

  it('reads tracked tables as of each moment, in both protocols, and the present after RESET', async () => {
    const c = await client();
    try {
      const p = await past(c);
      for (const [i, at] of p.m.entries()) {
        await c.query(`SET provenance.as_of = '${at}'`);
        const simple = await c.query({ text: `SELECT id, owner, balance FROM ${p.a} ORDER BY id`, rowMode: 'array' });
        expect(simple.rows, at).toEqual(p.rows[i]!.a);
        const extended = await c.query({ text: `SELECT x.id, x.owner, x.balance FROM public.${p.a} AS x WHERE x.id >= $1 ORDER BY 1`, values: [0], rowMode: 'array' });
        expect(extended.rows, at).toEqual(p.rows[i]!.a);
        const joined = await c.query({
          text: `WITH n AS (SELECT acct, body FROM ${p.b}) SELECT a.id, n.body FROM ${p.a} a JOIN n ON n.acct = a.id
                 WHERE a.id IN (SELECT acct FROM ${p.b}) ORDER BY 1, 2`,
          rowMode: 'array',
        });
        const expected = p.rows[i]!.a.flatMap((r) => p.rows[i]!.b.filter((n) => n[0] === r[0]).map((n) => [r[0], n[1]]));
        expect(joined.rows, at).toEqual(expected);
        const counted = await c.query({ text: `SELECT count(*)::int FROM ${p.b}`, rowMode: 'array' });
        expect(counted.rows, at).toEqual([[p.rows[i]!.b.length]]);
      }
      await c.query('RESET provenance.as_of');
      const now = await c.query({ text: `SELECT id, owner, balance FROM ${p.a} ORDER BY id`, rowMode: 'array' });
      expect(now.rows).toEqual([[1, 'ann', 15]]);
    } finally {
      await c.end();
    }
  });
});
