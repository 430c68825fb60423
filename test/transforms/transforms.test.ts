import { expect, it } from 'vitest';
import pg from 'pg';
import { eachUpstream, uniqueName, type Target } from '../support/proxy-matrix.js';
import { serialize } from 'pg-protocol';
import { eventually } from '../support/eventually.js';
import { RawClient, sqlstate } from '../support/raw-client.js';


async function setup(t: Target, c: pg.Client): Promise<string> {
  await t.proxy.registryLoaded;
  const table = uniqueName('customers');
  await c.query(`CREATE TABLE ${table} (id int PRIMARY KEY, email text, phone text, vip boolean, balance numeric(12,2))`);
  await c.query(`INSERT INTO ${table} VALUES (1, 'alice@example.com', '555-0101', false, 10.50), (2, 'bob@example.com', '555-0102', true, 99999.99), (3, NULL, '555-0103', false, 0)`);
  return table;
}

eachUpstream('transforms on read', (t) => {
  it('masks a column for every client, protocol and format, leaving other columns as they were', async () => {
    const c = await t().pg();
    const b = await t().pg({ binary: true } as Partial<pg.ClientConfig>);
    const sql = t().sql();
    try {
      const table = await setup(t(), c);
      const name = uniqueName('mask_email');
      await c.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], $3, '{\"keep\": 2}')", [name, table, '(v, p) => v === null ? null : v.slice(0, p.keep) + "***"']);
      const rows = await eventually(async () => (await c.query(`SELECT id, email AS e, phone FROM ${table} ORDER BY id`)).rows, (r) => r[0]?.e === 'al***');
      expect(rows).toEqual([{ id: 1, e: 'al***', phone: '555-0101' }, { id: 2, e: 'bo***', phone: '555-0102' }, { id: 3, e: null, phone: '555-0103' }]);
      // Binary results, a prepared statement, a CTE and a join on itself.
      expect((await b.query({ name: 'p1', text: `SELECT email FROM ${table} WHERE id = $1`, values: [2] })).rows).toEqual([{ email: 'bo***' }]);
      expect((await c.query(`WITH x AS (SELECT * FROM ${table}) SELECT x.email FROM x WHERE id = 1`)).rows).toEqual([{ email: 'al***' }]);
      // postgres.js pipelines extended-protocol messages, and re-executes its prepared statement
      // without asking for a RowDescription again: still masked every time.
      for (let i = 0; i < 3; i++) expect(await sql.unsafe(`SELECT email FROM ${table} WHERE id = $1`, [1], { prepare: true })).toEqual([{ email: 'al***' }]);
      // The real psql binary.
      const viaPsql = await t().psql(['-At', '-c', `SELECT email FROM ${table} ORDER BY id`]);
      expect(viaPsql.stdout).toBe('al***\nbo***\n\n');
      // A computed column carries no origin: it is not transformed (a documented hole).
      expect((await c.query(`SELECT upper(email) AS u FROM ${table} WHERE id = 1`)).rows).toEqual([{ u: 'ALICE@EXAMPLE.COM' }]);
      // Parameters change from the next statement on.
      await c.query("SELECT provenance.set_transform_params($1, '{\"keep\": 4}')", [name]);
      const after = await eventually(async () => (await c.query(`SELECT email FROM ${table} WHERE id = 1`)).rows, (r) => r[0]?.email === 'alic***');
      expect(after).toEqual([{ email: 'alic***' }]);
      await c.query('SELECT provenance.drop_transform($1)', [name]);
      const dropped = await eventually(async () => (await c.query(`SELECT email FROM ${table} WHERE id = 1`)).rows, (r) => r[0]?.email === 'alice@example.com');
      expect(dropped).toEqual([{ email: 'alice@example.com' }]);
    } finally {
      await c.end();
      await b.end();
      await sql.end();
    }
  });

  it('refuses COPY TO STDOUT of a table with transforms, whatever the client, and the session goes on', async () => {
    const c = await t().pg();
    try {
      const table = await setup(t(), c);
      const plain = uniqueName('plain');
      await c.query(`CREATE TABLE ${plain} (id int, note text)`);
      await c.query(`INSERT INTO ${plain} VALUES (1, 'kept')`);
      const name = uniqueName('mask_copy');
      await c.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], '(v) => v === null ? null : \"***\"')", [name, table]);
      await eventually(async () => (await c.query(`SELECT email FROM ${table} WHERE id = 1`)).rows, (r) => r[0]?.email === '***');
      for (const sql of [
        `COPY ${table} TO STDOUT`,
        `copy public.${table.toUpperCase()} (email) to stdout with (format csv)`,
        `COPY (SELECT email FROM ${table} ORDER BY id) TO STDOUT`,
        `SELECT 1; COPY ${table} TO STDOUT`,
      ]) {
        const r = await t().psql(['-c', sql]);
        expect(r.code, sql).not.toBe(0);
        expect(r.stderr, sql).toMatch(/COPY TO STDOUT of public\.\S+, which has transforms, is not supported/);
        expect(r.stdout, sql).not.toContain('alice@example.com');
      }
      // psql's \copy sends COPY … TO STDOUT too.
      const meta = await t().psql([], `\\copy ${table} to stdout\n`);
      expect(meta.stderr).toMatch(/which has transforms, is not supported/);
      expect(meta.stdout).not.toContain('alice@example.com');
      // node-postgres: the refusal is an ordinary error, with its SQLSTATE, and the session is usable.
      await expect(c.query(`COPY ${table} TO STDOUT`)).rejects.toMatchObject({ code: '0A000' });
      expect((await c.query(`SELECT email FROM ${table} WHERE id = 2`)).rows).toEqual([{ email: '***' }]);
      // Tables without transforms copy as before, and COPY FROM is not affected.
      const copied = await t().psql(['-c', `COPY ${plain} TO STDOUT`]);
      expect(copied).toMatchObject({ code: 0, stdout: '1\tkept\n' });
      const loaded = await t().psql(['-c', `COPY ${plain} FROM STDIN`], '2\tloaded\n\\.\n');
      expect(loaded.code).toBe(0);
      expect((await c.query(`SELECT count(*)::int AS n FROM ${plain}`)).rows).toEqual([{ n: 2 }]);
      await c.query('SELECT provenance.drop_transform($1)', [name]);
    } finally {
      await c.end();
    }
  });

  it('refuses COPY TO STDOUT of a table with transforms in the extended protocol too, in order', async () => {
    const c = await t().pg();
    const raw = await RawClient.connect(t().port, t().kind === 'postgres' ? 'trustuser' : 'postgres');
    try {
      const table = await setup(t(), c);
      const name = uniqueName('mask_copy_ext');
      await c.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], '(v) => v === null ? null : \"***\"')", [name, table]);
      await eventually(async () => (await c.query(`SELECT email FROM ${table} WHERE id = 1`)).rows, (r) => r[0]?.email === '***');
      const copy = Buffer.concat([serialize.parse({ text: `COPY ${table} TO STDOUT` }), serialize.bind({}), serialize.execute({}), serialize.sync()]);
      raw.write(copy);
      const refused = await raw.untilReady();
      expect(refused.map((m) => m.code).join('')).toBe('EZ');
      expect(sqlstate(refused[0]!.body)).toBe('0A000');
      // A unit whose first statement went upstream before the COPY arrived: the upstream's answers
      // to it come first, then the refusal, then one ReadyForQuery.
      raw.write(Buffer.concat([serialize.parse({ text: 'SELECT 1 AS first' }), serialize.bind({}), serialize.execute({})]));
      await new Promise((r) => setTimeout(r, 100));
      raw.write(copy);
      const split = await raw.untilReady();
      expect(split.map((m) => m.code).join('')).toBe('12DCEZ');
      expect(sqlstate(split[4]!.body)).toBe('0A000');
      raw.write(serialize.query('SELECT 2 AS second'));
      expect((await raw.untilReady()).map((m) => m.code).join('')).toBe('TDCZ');
      await c.query('SELECT provenance.drop_transform($1)', [name]);
    } finally {
      raw.end();
      await c.end();
    }
  });

  it('runs a chain in position order, and row transforms that drop rows (the row count follows)', async () => {
    const c = await t().pg();
    try {
      const table = await setup(t(), c);
      const a = uniqueName('append_a');
      const bName = uniqueName('append_b');
      const hide = uniqueName('hide_vip');
      await c.query("SELECT provenance.register_transform($1, $2, ARRAY['phone'], '(v) => v + \"-a\"')", [a, table]);
      await c.query("SELECT provenance.register_transform($1, $2, ARRAY['phone'], '(v) => v + \"-b\"')", [bName, table]);
      await c.query("SELECT provenance.register_transform($1, $2, NULL, '(row) => row.vip ? null : (\"balance\" in row ? { ...row, balance: \"0.00\" } : row)')", [hide, table]);
      // A row transform sees the columns of its table that the result carries.
      const r = await eventually(() => c.query(`SELECT id, phone, vip, balance FROM ${table} ORDER BY id`), (x) => x.rowCount === 2);
      expect(r.rows).toEqual([{ id: 1, phone: '555-0101-a-b', vip: false, balance: '0.00' }, { id: 3, phone: '555-0103-a-b', vip: false, balance: '0.00' }]);
      expect(r.rowCount).toBe(2);
      await c.query('SELECT provenance.move_transform($1, 10)', [a]);
      const moved = await eventually(() => c.query(`SELECT phone FROM ${table} WHERE id = 1`), (x) => x.rows[0]?.phone === '555-0101-b-a');
      expect(moved.rows).toEqual([{ phone: '555-0101-b-a' }]);
    } finally {
      await c.end();
    }
  });

  it('applies a change made through this proxy from the changing session\'s next statement', async () => {
    const c = await t().pg();
    const sql = t().sql();
    try {
      const table = await setup(t(), c);
      const name = uniqueName('instant');
      // No waiting between the change and the read: the proxy reads the registry again before it
      // hands the client the ReadyForQuery of a request that named provenance.
      await c.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], '(v, p) => p.tag', '{\"tag\": \"v1\"}')", [name, table]);
      expect((await c.query(`SELECT email FROM ${table} WHERE id = 1`)).rows).toEqual([{ email: 'v1' }]);
      for (let i = 2; i <= 5; i++) {
        await sql.unsafe(`SELECT provenance.set_transform_params('${name}', '{"tag": "v${i}"}')`, [], { prepare: true });
        expect(await sql.unsafe(`SELECT email FROM ${table} WHERE id = 1`)).toEqual([{ email: `v${i}` }]);
      }
      await c.query('SELECT provenance.drop_transform($1)', [name]);
      expect((await c.query(`SELECT email FROM ${table} WHERE id = 1`)).rows).toEqual([{ email: 'alice@example.com' }]);
    } finally {
      await c.end();
      await sql.end();
    }
  });

  it('transforms both sides of a join', async () => {
    const c = await t().pg();
    try {
      const people = await setup(t(), c);
      const orders = uniqueName('orders');
      await c.query(`CREATE TABLE ${orders} (id int, customer int, note text)`);
      await c.query(`INSERT INTO ${orders} VALUES (10, 1, 'secret note'), (11, 2, 'another')`);
      await c.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], '(v) => \"[email]\"')", [uniqueName('m1'), people]);
      await c.query("SELECT provenance.register_transform($1, $2, ARRAY['note'], '(v) => v.length + \" chars\"')", [uniqueName('m2'), orders]);
      const r = await eventually(
        () => c.query(`SELECT o.id, p.email, o.note FROM ${orders} o JOIN ${people} p ON p.id = o.customer ORDER BY o.id`),
        (x) => x.rows[0]?.note === '11 chars' && x.rows[0]?.email === '[email]',
      );
      expect(r.rows).toEqual([{ id: 10, email: '[email]', note: '11 chars' }, { id: 11, email: '[email]', note: '7 chars' }]);
    } finally {
      await c.end();
    }
  });

  it('turns a failing transform into an ErrorResponse naming it, and keeps the session', async () => {
    const c = await t().pg();
    try {
      const table = await setup(t(), c);
      const name = uniqueName('broken');
      await c.query("SELECT provenance.register_transform($1, $2, ARRAY['phone'], '(v) => { throw new Error(\"no phones today\") }')", [name, table]);
      const err = await eventually(
        () => c.query(`SELECT phone FROM ${table}`).then(() => null, (e: unknown) => e as { code?: string; message?: string }),
        (e) => e !== null,
      );
      expect(err).toMatchObject({ code: '38000' });
      expect(err?.message).toContain(name);
      expect(err?.message).toContain('no phones today');
      expect((await c.query(`SELECT id FROM ${table} ORDER BY id`)).rows).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
      await c.query("SELECT provenance.register_transform($1, $2, ARRAY['phone'], '(v) => 42')", [name, table]);
      const misfit = await eventually(
        () => c.query(`SELECT phone FROM ${table}`).then(() => null, (e: unknown) => e as { code?: string; message?: string }),
        (e) => e?.message?.includes('does not fit') === true,
      );
      expect(misfit).toMatchObject({ code: '22000' });
      // Text values come back in one piece (see text-column.ts): a NUL is still refused, and values
      // that are not ASCII still arrive intact.
      await c.query("SELECT provenance.register_transform($1, $2, ARRAY['phone'], '(v) => v + String.fromCharCode(0)')", [name, table]);
      const nul = await eventually(
        () => c.query(`SELECT phone FROM ${table}`).then(() => null, (e: unknown) => e as { code?: string; message?: string }),
        (e) => e?.message?.includes('NUL') === true,
      );
      expect(nul).toMatchObject({ code: '22000' });
      await c.query("SELECT provenance.register_transform($1, $2, ARRAY['phone'], '(v) => v === null ? v : \"☎ \" + v')", [name, table]);
      const phones = await eventually(
        () => c.query(`SELECT phone FROM ${table} ORDER BY id`).then((r) => r.rows as { phone: string | null }[]),
        (rows) => rows.some((r) => r.phone?.startsWith('☎ ') === true),
      );
      for (const r of phones) if (r.phone !== null) expect(r.phone).toMatch(/^☎ \S/);
    } finally {
      await c.end();
    }
  });

  it('gives transforms the session context', async () => {
    const c = await t().pg({ application_name: 'ctx-test' });
    try {
      const table = await setup(t(), c);
      await c.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], '(v, p, ctx) => ctx.user + \"|\" + ctx.application_name + \"|\" + ctx.database + \"|\" + ctx.roles.includes(ctx.user)')", [uniqueName('ctx'), table]);
      const r = await eventually(() => c.query(`SELECT email FROM ${table} WHERE id = 1`), (x) => String(x.rows[0]?.email).includes('|'));
      expect(r.rows[0]!.email).toBe(`${t().user}|ctx-test|postgres|true`);
    } finally {
      await c.end();
    }
  });
});
