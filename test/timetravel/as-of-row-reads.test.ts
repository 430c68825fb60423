/**
 * As of a moment, a row transform of then sees the columns it read then, fetched through the
 * history subquery as they are for reads served now: `select id` is filtered by the chain in
 * force at the moment. A version registered later with other reads, and a row transform added
 * later, do not apply to earlier moments. Expected rows are computed here from what the test
 * wrote and registered, and when.
 */
import { expect, it } from 'vitest';
import { eachUpstream, uniqueName } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';
import { moment } from './as-of-support.js';

interface Row { id: number; customer: string; amount: number; flag: boolean }

const ROWS: Row[] = [
  { id: 1, customer: 'ann', amount: 50, flag: false },
  { id: 2, customer: 'bob', amount: 150, flag: true },
  { id: 3, customer: 'cid', amount: 300, flag: false },
  { id: 4, customer: 'dee', amount: 20, flag: true },
];

eachUpstream('as-of reads fetch what row transforms of then read', (t) => {
  it('filters `select id` by the reads of the chain in force at each moment, in both protocols', async () => {
    const c = await t().pg();
    await t().proxy.registryLoaded;
    const sql = t().sql();
    try {
      const table = uniqueName('orders');
      const hide = uniqueName('hide');
      const hideCid = uniqueName('hide_cid');
      await c.query(`CREATE TABLE ${table} (id int PRIMARY KEY, customer text, amount int, flag bool)`);
      await c.query(`INSERT INTO ${table} VALUES ${ROWS.map((r) => `(${r.id}, '${r.customer}', ${r.amount}, ${r.flag})`).join(', ')}`);
      await c.query('SELECT provenance.track($1)', [table]);
      const ids = (keep: (r: Row) => boolean): number[] => ROWS.filter(keep).map((r) => r.id);
      const present = (): Promise<number[]> => c.query(`SELECT id FROM ${table} ORDER BY id`).then((r) => r.rows.map((x: { id: number }) => x.id));
      const expected: [string, number[]][] = [];

      expected.push([await moment(c), ids(() => true)]);
      await c.query(`SELECT provenance.register_transform($1, $2, NULL, '(row, p) => row.amount < p.min ? null : row', '{"min": 100}', reads => ARRAY['amount'])`, [hide, table]);
      const lowHidden = ids((r) => r.amount >= 100);
      await eventually(present, (r) => r.join() === lowHidden.join());
      expected.push([await moment(c), lowHidden]);
      // A new version of the same transform that reads another column: `amount` is not fetched for it any more.
      await c.query(`SELECT provenance.register_transform($1, $2, NULL, '(row) => row.flag ? null : row', '{}', reads => ARRAY['flag'])`, [hide, table]);
      const flaggedHidden = ids((r) => !r.flag);
      await eventually(present, (r) => r.join() === flaggedHidden.join());
      expected.push([await moment(c), flaggedHidden]);
      await c.query(`SELECT provenance.register_transform($1, $2, NULL, '(row) => row.customer === "cid" ? null : row', '{}', reads => ARRAY['customer'])`, [hideCid, table]);
      const both = ids((r) => !r.flag && r.customer !== 'cid');
      await eventually(present, (r) => r.join() === both.join());
      expected.push([await moment(c), both]);

      const forms = [
        `SELECT id FROM ${table} ORDER BY id`,
        `SELECT o.id FROM ${table} o WHERE o.id > 0 ORDER BY 1`,
        `SELECT id FROM (SELECT id FROM ${table}) s ORDER BY id`,
        `WITH w AS (SELECT id FROM ${table}) SELECT id FROM w ORDER BY id`,
      ];
      for (const [at, want] of expected) {
        await c.query(`SET provenance.as_of = '${at}'`);
        await sql.unsafe(`SET provenance.as_of = '${at}'`);
        for (const text of forms) {
          const simple = await c.query(text);
          expect(simple.rows.map((r: { id: number }) => r.id), `${at}: ${text}`).toEqual(want);
          expect(simple.fields.map((f) => f.name), text).toEqual(['id']);
          expect(simple.rowCount, text).toBe(want.length);
          const extended = await c.query({ text, values: [] });
          expect(extended.rows.map((r: { id: number }) => r.id), `${at}: ${text}`).toEqual(want);
          const js = await sql.unsafe(text, [], { prepare: true });
          expect([...js].map((r) => r['id']), `${at}: ${text}`).toEqual(want);
        }
        // The customer only: the chain of then reads amount, or flag, not the column selected.
        const names = await c.query({ text: `SELECT customer FROM ${table} WHERE id >= $1 ORDER BY id`, values: [0] });
        expect(names.rows.map((r: { customer: string }) => r.customer)).toEqual(ROWS.filter((r) => want.includes(r.id)).map((r) => r.customer));
      }
      await c.query('RESET provenance.as_of');
      await c.query('SELECT provenance.drop_transform($1)', [hide]);
      await c.query('SELECT provenance.drop_transform($1)', [hideCid]);
    } finally {
      await sql.end();
      await c.end();
    }
  });
});
