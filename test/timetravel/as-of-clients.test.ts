/**
 * As-of reads through every kind of client: postgres.js (pipelined extended protocol, with
 * parameters), the psql walk-through of the README, a raw wire session in binary; prepared
 * statements that were prepared for another moment; the caller's privileges; and the fast path
 * of sessions that never set a moment.
 */
import { expect, it } from 'vitest';
import type pg from 'pg';
import { serialize } from 'pg-protocol';
import { eachUpstream, uniqueName } from '../support/proxy-matrix.js';
import { RawClient, sqlstate } from '../support/raw-client.js';
import { SqlAnalyser } from '../../plugins/sql/analyser.js';
import { moment, refusal } from './as-of-support.js';

eachUpstream('as-of clients', (t) => {
  async function client(opts: Partial<pg.ClientConfig> = {}): Promise<pg.Client> {
    const c = await t().pg(opts);
    await t().proxy.stateReady;
    return c;
  }

  /** A tracked table with a row changed after `then`: returns its name and the moment. */
  async function changed(c: pg.Client): Promise<{ table: string; then: string }> {
    const table = uniqueName('item');
    await c.query(`CREATE TABLE ${table} (id int, label text, price numeric(8,2))`);
    await c.query(`INSERT INTO ${table} VALUES (1, 'old', 1.50), (2, 'kept', 2.00)`);
    await c.query('SELECT provenance.track($1)', [table]);
    const then = await moment(c);
    await c.query(`UPDATE ${table} SET label = 'new', price = 9.99 WHERE id = 1; DELETE FROM ${table} WHERE id = 2`);
    return { table, then };
  }

  it('serves postgres.js (pipelined, with parameters) the rows of then', async () => {
    const c = await client();
    const { table, then } = await changed(c);
    await c.end();
    const sql = t().sql();
    try {
      await sql.unsafe(`SET provenance.as_of = '${then}'`);
      const rows = await Promise.all([
        sql`SELECT id, label, price FROM ${sql(table)} WHERE id >= ${0} ORDER BY id`,
        sql`SELECT count(*)::int AS n FROM ${sql('public')}.${sql(table)} WHERE label = ${'old'}`,
      ]);
      expect(rows[0].map((r) => [r['id'], r['label'], r['price']])).toEqual([[1, 'old', '1.50'], [2, 'kept', '2.00']]);
      expect(rows[1][0]!['n']).toBe(1);
    } finally {
      await sql.end();
    }
  });

  it('runs the README walk-through in psql', async () => {
    const c = await client();
    const { table, then } = await changed(c);
    await c.end();
    const out = await t().psql(['-v', 'ON_ERROR_STOP=1', '-q', '-A', '-t'], `SET provenance.as_of = '${then}';\nSHOW provenance.as_of;\nSELECT id, label FROM ${table} ORDER BY id;\nSET provenance.as_user = 'postgres';\nSELECT label FROM ${table} WHERE id = 1;\nRESET provenance.as_of;\nSELECT label FROM ${table};\n`);
    expect(out.code, out.stderr).toBe(0);
    const lines = out.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
    expect(lines.slice(1)).toEqual(['1|old', '2|kept', 'old', 'new']);
    const refused = await t().psql([], `SET provenance.as_of = '${then}';\nDELETE FROM ${table};\n`);
    expect(refused.stderr).toContain('cannot execute DELETE');
  });

  it('refuses a statement prepared for another moment, or before one was set', async () => {
    const c = await client();
    try {
      const { table, then } = await changed(c);
      const q = { name: 'labels', text: `SELECT label FROM ${table} WHERE id = $1`, values: [1], rowMode: 'array' as const };
      expect((await c.query(q)).rows).toEqual([['new']]);
      await c.query(`SET provenance.as_of = '${then}'`);
      // pg binds the statement it prepared before: that would read the present.
      expect((await refusal(c.query(q))).code).toBe('0A000');
      const asOf = { ...q, name: 'labels_then' };
      expect((await c.query(asOf)).rows).toEqual([['old']]);
      await c.query('RESET provenance.as_of');
      expect((await refusal(c.query(asOf))).code).toBe('0A000');
      expect((await c.query({ ...q, name: 'labels_now' })).rows).toEqual([['new']]);
    } finally {
      await c.end();
    }
  });

  it('reads as of a moment only what the caller may read now', async () => {
    const admin = await client();
    const role = uniqueName('nosy');
    try {
      const { table, then } = await changed(admin);
      await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'`);
      const other = await client({ user: role, password: 'pw' });
      try {
        await other.query(`SET provenance.as_of = '${then}'`);
        expect((await refusal(other.query(`SELECT label FROM ${table}`))).code).toBe('42501');
        await admin.query(`GRANT SELECT ON ${table} TO ${role}`);
        // Without an event trigger (a login that is not a superuser) the history's grants follow at the next write.
        if (t().kind === 'embedded') await admin.query(`UPDATE ${table} SET label = label WHERE false`);
        expect((await other.query({ text: `SELECT label FROM ${table} ORDER BY id`, rowMode: 'array' })).rows).toEqual([['old'], ['kept']]);
        // Revoked from the table, whether or not its history's grants followed yet: refused.
        await admin.query(`REVOKE SELECT ON ${table} FROM ${role}`);
        const revoked = await refusal(other.query(`SELECT label FROM ${table}`));
        expect(revoked.code).toBe('42501');
        expect(revoked.message).toContain(table);
      } finally {
        await other.end();
      }
      await admin.query(`DROP TABLE ${table}`);
    } finally {
      await admin.query(`DROP OWNED BY ${role}`);
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
      await admin.end();
    }
  });

  it('answers a raw wire session: Parse/Bind/Execute of SET, SHOW and a read in binary, and refusals that leave the session usable', async () => {
    const c = await client();
    const { table, then } = await changed(c);
    await c.end();
    const raw = await RawClient.connect(t().port, t().kind === 'postgres' ? 'trustuser' : 'postgres');
    try {
      if (t().kind === 'postgres') {
        const admin = await client();
        await admin.query(`GRANT SELECT ON ${table} TO trustuser`);
        await admin.end();
      }
      raw.write(Buffer.concat([
        serialize.parse({ text: `SET provenance.as_of = '${then}'` }), serialize.bind({}), serialize.execute({}),
        serialize.parse({ name: 's1', text: `SELECT id, label FROM ${table} WHERE id = $1` }), serialize.bind({ statement: 's1', values: ['1'], binary: true }),
        serialize.describe({ type: 'P' }), serialize.execute({}),
        serialize.sync(),
      ]));
      const answer = await raw.untilReady();
      expect(answer.map((m) => m.code).join('')).toBe('12C12TDCZ');
      const row = answer.find((m) => m.code === 'D')!;
      // Binary results: an int4 in four bytes, then the text.
      expect(row.body.readInt16BE(0)).toBe(2);
      expect(row.body.readInt32BE(2)).toBe(4);
      expect(row.body.readInt32BE(6)).toBe(1);
      expect(row.body.toString('utf8', 14)).toBe('old');
      raw.write(Buffer.concat([serialize.query(`INSERT INTO ${table} VALUES (3, 'x', 0)`)]));
      const refused = await raw.untilReady();
      expect(refused.map((m) => m.code).join('')).toBe('EZ');
      expect(sqlstate(refused[0]!.body)).toBe('25006');
      raw.write(serialize.query('SHOW provenance.as_of'));
      const shown = await raw.untilReady();
      expect(shown.map((m) => m.code).join('')).toBe('TDCZ');
    } finally {
      raw.end();
    }
  });

  it('parses nothing of sessions that never set a moment', async () => {
    const c = await client();
    try {
      const table = uniqueName('quiet');
      await c.query(`CREATE TABLE ${table} (id int)`);
      const analyser = await SqlAnalyser.load();
      const before = analyser.parses;
      for (let i = 0; i < 5; i++) await c.query({ text: `SELECT id FROM ${table} WHERE id = $1 -- ${i}`, values: [i] });
      for (let i = 0; i < 5; i++) await c.query(`SELECT ${i} FROM ${table}`);
      expect(analyser.parses).toBe(before);
      await c.query("SET provenance.as_of = '2026-01-01 00:00+00'");
      await c.query('RESET provenance.as_of');
      const after = analyser.parses;
      await c.query(`SELECT 42 FROM ${table}`);
      expect(analyser.parses).toBe(after);
    } finally {
      await c.end();
    }
  });
});
