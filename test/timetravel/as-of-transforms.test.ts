/**
 * The headline, end to end: a session that sets provenance.as_of reads a table with a transform
 * as the proxy served it at that moment, the rows of then through the chain in force then.
 * Expected values are computed here from what the test wrote and registered, and when; the
 * replay's context is provenance.as_user's.
 */
import { expect, it } from 'vitest';
import type pg from 'pg';
import { eachUpstream, uniqueName } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';
import { moment } from './as-of-support.js';

const MASK = '(v, p) => v === null ? null : v.slice(0, p.keep) + "***"';
const mask = (v: string | null, keep: number): string | null => (v === null ? null : `${v.slice(0, keep)}***`);

eachUpstream('as-of reads through transforms', (t) => {
  it('serves the rows of then through the chain in force then, and the present after RESET', async () => {
    const c = await t().pg();
    await t().proxy.registryLoaded;
    try {
      const table = uniqueName('masked');
      const name = uniqueName('mask');
      await c.query(`CREATE TABLE ${table} (id int PRIMARY KEY, email text)`);
      await c.query(`INSERT INTO ${table} VALUES (1, 'alice@example.com'), (2, NULL), (3, 'bob@example.com')`);
      await c.query(`SELECT provenance.register_transform($1, $2, ARRAY['email'], $3, '{"keep": 2}')`, [name, table, MASK]);
      const read = (client: pg.Client): Promise<unknown[][]> =>
        client.query({ text: `SELECT id, email FROM ${table} ORDER BY id`, rowMode: 'array' }).then((r) => r.rows as unknown[][]);
      await eventually(() => read(c), (r) => r[0]?.[1] === 'al***');
      const rows1: [number, string | null][] = [[1, 'alice@example.com'], [2, null], [3, 'bob@example.com']];
      const m1 = await moment(c);
      await c.query('SELECT provenance.set_transform_params($1, $2)', [name, '{"keep": 4}']);
      await eventually(() => read(c), (r) => r[0]?.[1] === 'alic***');
      await c.query(`UPDATE ${table} SET email = 'carol@example.com' WHERE id = 1; DELETE FROM ${table} WHERE id = 3`);
      const rows2: [number, string | null][] = [[1, 'carol@example.com'], [2, null]];
      const m2 = await moment(c);

      await c.query(`SET provenance.as_of = '${m1}'`);
      expect(await read(c)).toEqual(rows1.map(([id, e]) => [id, mask(e, 2)]));
      await c.query(`SET provenance.as_of = '${m2}'`);
      expect(await read(c)).toEqual(rows2.map(([id, e]) => [id, mask(e, 4)]));
      const extended = await c.query({ text: `SELECT email FROM ${table} WHERE id = $1`, values: [1], rowMode: 'array' });
      expect(extended.rows).toEqual([[mask('carol@example.com', 4)]]);
      await c.query('RESET provenance.as_of');
      expect(await read(c)).toEqual(rows2.map(([id, e]) => [id, mask(e, 4)]));
    } finally {
      await c.end();
    }
  });

  it('replays in the context of provenance.as_user: that user\'s roles', async () => {
    const c = await t().pg();
    await t().proxy.registryLoaded;
    const auditor = uniqueName('aud');
    const member = uniqueName('member');
    const outsider = uniqueName('outsider');
    try {
      await c.query(`CREATE ROLE ${auditor}; CREATE ROLE ${member} LOGIN IN ROLE ${auditor}; CREATE ROLE ${outsider} LOGIN`);
      const table = uniqueName('audited');
      await c.query(`CREATE TABLE ${table} (id int, iban text); INSERT INTO ${table} VALUES (1, 'DE89370400440532013000')`);
      await c.query(`SELECT provenance.register_transform($1, $2, ARRAY['iban'], $3, $4)`, [uniqueName('iban'), table,
        '(v, p, ctx) => v === null || ctx.roles.includes(p.role) ? v : v.slice(0, 4) + "***"', JSON.stringify({ role: auditor })]);
      const read = (): Promise<unknown[][]> => c.query({ text: `SELECT iban FROM ${table}`, rowMode: 'array' }).then((r) => r.rows as unknown[][]);
      await eventually(read, (r) => r[0]?.[0] === 'DE89***');
      const at = await moment(c);
      await c.query(`SET provenance.as_of = '${at}'`);
      expect(await read()).toEqual([['DE89***']]);
      await c.query(`SET provenance.as_user = '${member}'`);
      expect(await read()).toEqual([['DE89370400440532013000']]);
      await c.query(`SET provenance.as_user = '${outsider}'`);
      expect(await read()).toEqual([['DE89***']]);
    } finally {
      await c.query('RESET ALL');
      await c.query(`DROP ROLE IF EXISTS ${member}; DROP ROLE IF EXISTS ${outsider}; DROP ROLE IF EXISTS ${auditor}`);
      await c.end();
    }
  });
});
