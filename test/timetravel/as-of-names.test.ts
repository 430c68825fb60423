/**
 * Unqualified names in a session reading as of a moment resolve as the server resolves them: the
 * session's search_path (from the startup packet, SET, SET LOCAL, RESET), `$user` as the current
 * role, the temporary schema and pg_catalog first unless listed, schemas the role may not use left
 * out; a table found in several schemas is read from the history of the one the path finds first.
 */
import { expect, it } from 'vitest';
import type pg from 'pg';
import { eachUpstream, uniqueName } from '../support/proxy-matrix.js';
import { moment, refusal } from './as-of-support.js';

eachUpstream('as-of names', (t) => {
  /** Schemas a and b (and r, a role's own) each with a tracked table `item` of other rows; and `solo` in c only. */
  async function schemas(c: pg.Client): Promise<{ a: string; b: string; r: string; cs: string; at: string }> {
    const a = uniqueName('sa');
    const b = uniqueName('sb');
    const r = uniqueName('rr');
    const cs = uniqueName('sc');
    await c.query(`CREATE ROLE ${r} NOLOGIN; GRANT provenance_admin TO ${r}`);
    for (const [s, v] of [[a, 'from a'], [b, 'from b'], [r, 'from r']] as const) {
      await c.query(`CREATE SCHEMA ${s}; CREATE TABLE ${s}.item (id int PRIMARY KEY, v text); INSERT INTO ${s}.item VALUES (1, '${v}')`);
      await c.query(`GRANT USAGE ON SCHEMA ${s} TO ${r}; GRANT SELECT ON ${s}.item TO ${r}`);
      await c.query('SELECT provenance.track($1)', [`${s}.item`]);
    }
    await c.query(`CREATE SCHEMA ${cs}; CREATE TABLE ${cs}.solo (id int); SELECT provenance.track('${cs}.solo')`);
    const at = await moment(c);
    for (const s of [a, b, r]) await c.query(`UPDATE ${s}.item SET v = v || ' now'`);
    return { a, b, r, cs, at };
  }

  const read = async (c: pg.Client, text = 'SELECT v FROM item'): Promise<unknown> =>
    (await c.query({ text, rowMode: 'array' })).rows.map((r: unknown[]) => r[0]);

  it('reads the table the session\'s search_path finds first, following SET, SET LOCAL, RESET and the startup packet', async () => {
    const c = await t().pg();
    try {
      const p = await schemas(c);
      // Followed in any mix of cases, before the moment is set too.
      await c.query(`Set Search_Path = ${p.b}, ${p.a}`);
      await c.query(`SET provenance.as_of = '${p.at}'`);
      expect(await read(c)).toEqual(['from b']);
      expect((await c.query({ text: 'SELECT v FROM item WHERE id = $1', values: [1], rowMode: 'array' })).rows).toEqual([['from b']]);
      await c.query(`SET search_path = ${p.a}, ${p.b}`);
      expect(await read(c)).toEqual(['from a']);
      await c.query('BEGIN');
      await c.query(`SET LOCAL search_path TO ${p.b}`);
      expect(await read(c)).toEqual(['from b']);
      await c.query('COMMIT');
      expect(await read(c)).toEqual(['from a']);
      // RESET goes back to the path the session started with: neither schema is on it.
      await c.query('RESET search_path');
      expect((await refusal(c.query('SELECT v FROM item'))).code).toBe('42P01');
      // A table the path does not reach is not read from its history: the server says it does not exist.
      await c.query(`SET search_path = ${p.a}`);
      expect((await refusal(c.query('SELECT * FROM solo'))).code).toBe('42P01');
      expect((await c.query(`SELECT count(*)::int AS n FROM ${p.cs}.solo`)).rows).toEqual([{ n: 0 }]);
      // A change of the path among other statements would apply to them: refused.
      expect((await refusal(c.query(`SET search_path = ${p.b}; SELECT v FROM item`))).code).toBe('0A000');
    } finally {
      await c.end();
    }
    // The path the startup packet gives is the session's from its start, and what RESET goes back to.
    const s = await t().pg();
    const p = await schemas(s).finally(() => s.end());
    const c2 = await t().pg({ options: `-c search_path=${p.b},${p.a}` });
    try {
      await c2.query(`SET provenance.as_of = '${p.at}'`);
      expect(await read(c2)).toEqual(['from b']);
      await c2.query(`SET search_path = ${p.a}`);
      expect(await read(c2)).toEqual(['from a']);
      await c2.query('RESET search_path');
      expect(await read(c2)).toEqual(['from b']);
    } finally {
      await c2.end();
    }
    // The path a session starts with holds none of the test's schemas, inside a transaction block too.
    const c3 = await t().pg();
    try {
      await c3.query(`CREATE TABLE ${p.b}.solo (id int); SELECT provenance.track('${p.b}.solo')`);
      const at = await moment(c3);
      await c3.query(`SET provenance.as_of = '${at}'`);
      await c3.query('BEGIN');
      expect((await refusal(c3.query('SELECT * FROM solo'))).code).toBe('42P01');
      await c3.query('ROLLBACK');
    } finally {
      await c3.end();
    }
  });

  it('takes $user as the current role, leaves out schemas it may not use, puts pg_catalog first unless listed', async () => {
    const c = await t().pg();
    try {
      const p = await schemas(c);
      await c.query(`CREATE TABLE ${p.a}.pg_am (amname text); SELECT provenance.track('${p.a}.pg_am')`);
      const at = await moment(c);
      await c.query(`SET search_path = "$user", ${p.a}`);
      await c.query(`SET provenance.as_of = '${p.at}'`);
      expect(await read(c)).toEqual(['from a']);
      await c.query(`SET ROLE ${p.r}`);
      expect(await read(c)).toEqual(['from r']);
      await c.query('RESET ROLE');
      expect(await read(c)).toEqual(['from a']);
      // The role may not use schema r: the server skips it, and so does the proxy.
      await c.query('RESET provenance.as_of');
      await c.query(`REVOKE USAGE ON SCHEMA ${p.r} FROM ${p.r}`);
      await c.query(`SET search_path = ${p.r}, ${p.b}; SET ROLE ${p.r}`);
      await c.query(`SET provenance.as_of = '${p.at}'`);
      expect(await read(c)).toEqual(['from b']);
      await c.query('RESET ROLE');
      expect(await read(c)).toEqual(['from r']);
      // pg_catalog comes first unless the path lists it: then the table of the path's order.
      await c.query(`SET search_path = ${p.a}`);
      await c.query(`SET provenance.as_of = '${at}'`);
      expect((await c.query('SELECT count(*) > 0 AS ok FROM pg_am')).rows).toEqual([{ ok: true }]);
      await c.query(`SET search_path = ${p.a}, pg_catalog`);
      expect((await c.query('SELECT count(*)::int AS n FROM pg_am')).rows).toEqual([{ n: 0 }]);
    } finally {
      await c.end();
    }
  });

  it('refuses a name a temporary table may shadow, and one the proxy lost track of until the path is set again', async () => {
    const c = await t().pg();
    try {
      const p = await schemas(c);
      await c.query(`SET search_path = ${p.a}, ${p.b}`);
      await c.query('CREATE TEMP TABLE item (id int, v text)');
      await c.query(`SET provenance.as_of = '${p.at}'`);
      const temp = await refusal(c.query('SELECT v FROM item'));
      expect(temp.code).toBe('0A000');
      expect(temp.message).toContain('temporary');
      expect((await refusal(c.query('SELECT v FROM pg_temp.item'))).code).toBe('0A000');
      // Listed after the schemas, pg_temp comes after them.
      await c.query(`SET search_path = ${p.b}, pg_temp`);
      expect(await read(c)).toEqual(['from b']);
      await c.query('RESET provenance.as_of');
      await c.query('DROP TABLE pg_temp.item');
      await c.query(`SELECT pg_catalog.set_config('search_path', '${p.a}', false)`);
      await c.query(`SET provenance.as_of = '${p.at}'`);
      const lost = await refusal(c.query('SELECT v FROM item'));
      expect(lost.code).toBe('0A000');
      expect(lost.message).toContain('search_path');
      expect(lost.hint).toContain('SET search_path');
      await c.query(`SET search_path = ${p.a}`);
      expect(await read(c)).toEqual(['from a']);
    } finally {
      await c.end();
    }
  });
});
