/**
 * Time travel end to end, on both upstreams: two tracked tables change over time (some writes
 * straight to PostgreSQL, bypassing the proxy), and so do their transforms (parameters, order,
 * sources, one dropped and one added). At a moment between every change, sessions of pg (text
 * and binary), postgres.js and psql read as of it and get what the test computes itself from what
 * it wrote and when (scenario-model.ts). A read served now and replayed at its moment is verified;
 * writes, moments before history and untracked tables are refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startTarget, uniqueName, type Target } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';
import { refusal } from './as-of-support.js';
import { Timeline, type Chains, type Customer, type Order, type Step } from './scenario-model.js';

const MASK = '(v, p) => v === null ? null : v.slice(0, p.keep) + "***"';
const mask = (keep: number) => (v: string | null): string | null => (v === null ? null : `${v.slice(0, keep)}***`);
const MASK_DOMAIN = '(v, p) => v === null ? null : v.slice(0, p.keep) + "***" + v.slice(v.indexOf("@"))';
const maskDomain = (keep: number) => (v: string | null): string | null =>
  (v === null ? null : `${v.slice(0, keep)}***${v.slice(v.indexOf('@'))}`);
const HIDE_SMALL = '(row, p) => row.amount < p.min ? null : row';
const hideSmall = (min: number) => (o: Order): boolean => !(o.amount < min);
const UPPER = '(v) => v === null ? null : v.toUpperCase()';
const upper = (v: string | null): string | null => (v === null ? null : v.toUpperCase());
const TAG = '(v, p) => v === null ? null : v + p.tag';
const tag = (s: string) => (v: string | null): string | null => (v === null ? null : v + s);
const INITIAL = '(v) => v === null ? null : v.slice(0, 1) + "."';
const initial = (v: string | null): string | null => (v === null ? null : `${v.slice(0, 1)}.`);

interface Moment { text: string; micros: bigint }

for (const kind of ['embedded', 'postgres'] as const) {
  describe(`time travel scenario [${kind}]`, () => {
    let t: Target;
    let c: pg.Client;
    /** Writes that bypass the proxy on PostgreSQL; through it on the embedded database. */
    let direct: pg.Client;
    const customers = uniqueName('customers');
    const orders = uniqueName('orders');
    const n = { email: uniqueName('mask_email'), small: uniqueName('hide_small'), upper: uniqueName('note_upper'),
      tag: uniqueName('note_tag'), name: uniqueName('mask_name') };
    const timeline = new Timeline();
    const moments: Moment[] = [];
    let beforeHistory: Moment;

    /** The server's clock after everything so far committed; returns once it moved on (PGlite ticks in ms). */
    const moment = async (): Promise<Moment> => {
      const r = (await c.query<{ text: string; micros: string }>(`SELECT m::text AS text,
        (extract(epoch FROM m) * 1000000)::int8::text AS micros FROM (SELECT pg_catalog.clock_timestamp() AS m) x`)).rows[0]!;
      await new Promise((res) => setTimeout(res, 5));
      return { text: r.text, micros: BigInt(r.micros) };
    };
    /** One transaction, whose now() the timeline keeps with what it changed. */
    const write = async (client: pg.Client, sql: string, apply: (tb: ReturnType<Timeline['rowsAt']>) => void): Promise<void> => {
      await client.query('BEGIN');
      await client.query(sql);
      const at = (await client.query<{ at: string }>('SELECT (extract(epoch FROM now()) * 1000000)::int8::text AS at')).rows[0]!.at;
      await client.query('COMMIT');
      timeline.wrote(BigInt(at), apply);
    };
    const asOf = async (m: Moment, binary = false): Promise<pg.Client> => {
      // pg asks for binary results in the extended protocol when its client config says `binary` (untyped in @types/pg).
      const client = await t.pg(binary ? ({ binary: true } as Partial<pg.ClientConfig>) : {});
      await client.query(`SET provenance.as_of = '${m.text}'`);
      return client;
    };

    beforeAll(async () => {
      t = await startTarget(kind, [], { provenanceDurability: 'sync' });
      await t.proxy.registryLoaded;
      c = await t.pg();
      if (kind === 'postgres') {
        direct = new pg.Client({ connectionString: t.cluster.url() });
        await direct.connect();
      } else {
        direct = await t.pg();
      }
      await c.query(`CREATE TABLE ${customers} (id int PRIMARY KEY, name text, email text);
        CREATE TABLE ${orders} (id int PRIMARY KEY, customer_id int, amount int, note text);
        INSERT INTO ${customers} VALUES (1, 'alice', 'alice@example.com'), (2, 'bob', NULL), (3, 'carol', 'carol@example.org');
        INSERT INTO ${orders} VALUES (1, 1, 5, 'first'), (2, 1, 20, 'second'), (3, 2, 100, NULL)`);
      timeline.wrote(0n, (tb) => {
        for (const r of [{ id: 1, name: 'alice', email: 'alice@example.com' }, { id: 2, name: 'bob', email: null },
          { id: 3, name: 'carol', email: 'carol@example.org' }]) tb.customers.set(r.id, r);
        for (const r of [{ id: 1, customer_id: 1, amount: 5, note: 'first' }, { id: 2, customer_id: 1, amount: 20, note: 'second' },
          { id: 3, customer_id: 2, amount: 100, note: null }]) tb.orders.set(r.id, r);
      });
      beforeHistory = await moment();

      // Registering a transform on a table starts its history.
      const reg = (name: string, table: string, columns: string | null, source: string, params: string, reads?: string): Promise<unknown> =>
        c.query(`SELECT provenance.register_transform($1, $2, ${columns === null ? 'NULL' : `ARRAY['${columns}']`}, $3, $4${reads ? `, reads => ARRAY['${reads}']` : ''})`,
          [name, table, source, params]);
      await reg(n.email, customers, 'email', MASK, '{"keep": 2}');
      await reg(n.small, orders, null, HIDE_SMALL, '{"min": 10}', 'amount');
      await reg(n.upper, orders, 'note', UPPER, '{}');
      const chain: Chains = {
        customers: [{ name: n.email, column: 'email', fn: mask(2) }],
        orders: [{ name: n.small, row: hideSmall(10) }, { name: n.upper, column: 'note', fn: upper }],
      };
      await eventually(() => c.query<Customer>(`SELECT email FROM ${customers} WHERE id = 1`), (r) => r.rows[0]?.email === 'al***');
      const m0 = await moment();
      timeline.chainsFrom(m0.micros, chain);
      moments.push(m0);

      // Written straight to PostgreSQL: the history captures it all the same.
      await write(direct, `UPDATE ${customers} SET email = 'alice@new.org' WHERE id = 1;
        INSERT INTO ${orders} VALUES (4, 3, 60, 'fourth')`, (tb) => {
        tb.customers.get(1)!.email = 'alice@new.org';
        tb.orders.set(4, { id: 4, customer_id: 3, amount: 60, note: 'fourth' });
      });
      moments.push(await moment());

      await c.query('SELECT provenance.set_transform_params($1, $2)', [n.small, '{"min": 50}']);
      await c.query('SELECT provenance.set_transform_params($1, $2)', [n.email, '{"keep": 4}']);
      chain.customers = [{ name: n.email, column: 'email', fn: mask(4) }];
      chain.orders = [{ name: n.small, row: hideSmall(50) }, { name: n.upper, column: 'note', fn: upper }];
      const m2 = await moment();
      timeline.chainsFrom(m2.micros, chain);
      moments.push(m2);

      await write(direct, `DELETE FROM ${orders} WHERE id = 3; UPDATE ${orders} SET amount = 70, note = 'second!' WHERE id = 2`, (tb) => {
        tb.orders.delete(3);
        Object.assign(tb.orders.get(2)!, { amount: 70, note: 'second!' });
      });
      await reg(n.tag, orders, 'note', TAG, '{"tag": "-x"}');
      chain.orders = [...chain.orders, { name: n.tag, column: 'note', fn: tag('-x') }];
      const m3 = await moment();
      timeline.chainsFrom(m3.micros, chain);
      moments.push(m3);

      // The tag moves before the upper-casing; the email mask gets a new source.
      await c.query('SELECT provenance.move_transform($1, 0)', [n.tag]);
      await reg(n.email, customers, 'email', MASK_DOMAIN, '{"keep": 4}');
      chain.orders = [{ name: n.tag, column: 'note', fn: tag('-x') }, { name: n.small, row: hideSmall(50) }, { name: n.upper, column: 'note', fn: upper }];
      chain.customers = [{ name: n.email, column: 'email', fn: maskDomain(4) }];
      const m4 = await moment();
      timeline.chainsFrom(m4.micros, chain);
      moments.push(m4);

      await c.query('SELECT provenance.drop_transform($1)', [n.upper]);
      await reg(n.name, customers, 'name', INITIAL, '{}');
      chain.orders = chain.orders.filter((s) => s.name !== n.upper);
      chain.customers = [...chain.customers, { name: n.name, column: 'name', fn: initial }] as Step<Customer>[];
      await write(c, `DELETE FROM ${customers} WHERE id = 3; INSERT INTO ${customers} VALUES (4, 'dave', 'dave@example.net')`, (tb) => {
        tb.customers.delete(3);
        tb.customers.set(4, { id: 4, name: 'dave', email: 'dave@example.net' });
      });
      const m5 = await moment();
      timeline.chainsFrom(m5.micros, chain);
      moments.push(m5);
    }, 60_000);

    afterAll(async () => {
      await c?.end();
      if (direct !== c) await direct?.end();
      await t?.proxy.stop(2_000);
    });

    const customersSql = (): string => `SELECT id, name, email FROM ${customers} ORDER BY id`;
    const ordersSql = (): string => `SELECT id, customer_id, amount, note FROM ${orders} ORDER BY id`;
    /** With a parameter, so pg takes the extended protocol (where its results may be binary). */
    const withParam = (sql: string): pg.QueryConfig => ({ text: sql.replace(' ORDER BY', ' WHERE id >= $1 ORDER BY'), values: [0] });

    it('serves pg, in text and binary, what was served at a moment between every change', async () => {
      for (const [i, m] of moments.entries()) {
        for (const binary of [false, true]) {
          const client = await asOf(m, binary);
          try {
            const label = `moment ${i}${binary ? ', binary' : ''}`;
            const read = async <R extends pg.QueryResultRow>(sql: string): Promise<R[]> =>
              (await (binary ? client.query<R>(withParam(sql)) : client.query<R>(sql))).rows;
            expect(await read<Customer>(customersSql()), label).toEqual(timeline.customersAt(m.micros));
            expect(await read<Order>(ordersSql()), label).toEqual(timeline.ordersAt(m.micros));
            // Object rows: pg's rowMode 'array' misreads binary int4 (whatever serves them).
            const join = await client.query<{ id: number; email: string | null; note: string | null }>({
              text: `SELECT o.id, c.email, o.note, o.amount FROM ${orders} o JOIN public.${customers} c
              ON c.id = o.customer_id WHERE o.id >= $1 ORDER BY o.id`, values: [0] });
            expect(join.rows.map((r) => [r.id, r.email, r.note]), label).toEqual(timeline.joinAt(m.micros));
          } finally {
            await client.end();
          }
        }
      }
    });

    it('serves postgres.js (pipelined, with parameters) and psql the same', async () => {
      for (const [i, m] of moments.entries()) {
        const sql = t.sql();
        try {
          await sql.unsafe(`SET provenance.as_of = '${m.text}'`);
          const [cs, os] = await Promise.all([
            sql`SELECT id, name, email FROM ${sql(customers)} WHERE id > ${0} ORDER BY id`,
            sql`SELECT id, customer_id, amount, note FROM ${sql(orders)} WHERE id > ${0} ORDER BY id`,
          ]);
          expect(cs.map((r) => ({ ...r })), `moment ${i}`).toEqual(timeline.customersAt(m.micros));
          expect(os.map((r) => ({ ...r })), `moment ${i}`).toEqual(timeline.ordersAt(m.micros));
        } finally {
          await sql.end();
        }
      }
      const m = moments[3]!;
      const out = await t.psql(['-v', 'ON_ERROR_STOP=1', '-q', '-A', '-t'],
        `SET provenance.as_of = '${m.text}';\n${customersSql()};\n${ordersSql()};\n`);
      expect(out.code, out.stderr).toBe(0);
      const cell = (v: string | number | null): string => (v === null ? '' : String(v));
      expect(out.stdout.trim().split('\n')).toEqual([
        ...timeline.customersAt(m.micros).map((r) => [r.id, r.name, r.email].map(cell).join('|')),
        ...timeline.ordersAt(m.micros).map((r) => [r.id, r.customer_id, r.amount, r.note].map(cell).join('|')),
      ]);
    });

    it('replays a read served now at its moment, verified against its records', async () => {
      const now = [(await c.query<Customer>(customersSql())).rows, (await c.query<Order>(ordersSql())).rows];
      const at = await moment();
      expect(now).toEqual([timeline.customersAt(at.micros), timeline.ordersAt(at.micros)]);
      const client = await asOf(at);
      try {
        expect((await client.query<Customer>(customersSql())).rows).toEqual(now[0]);
        expect((await client.query<Order>(ordersSql())).rows).toEqual(now[1]);
      } finally {
        await client.end();
      }
      const recs = (await c.query<{ transform_name: string; verified: boolean | null }>(
        `SELECT transform_name, verified FROM provenance.executions WHERE kind = 'replay' AND as_of = $1::timestamptz ORDER BY transform_name`,
        [at.text])).rows;
      expect(recs.map((r) => r.transform_name).sort()).toEqual([n.email, n.name, n.small, n.tag].sort());
      expect(recs.every((r) => r.verified === true), JSON.stringify(recs)).toBe(true);
    });

    it('refuses writes, a moment before history and an untracked table, and goes on', async () => {
      const client = await asOf(moments[2]!);
      const plain = uniqueName('untracked');
      try {
        await c.query(`CREATE TABLE ${plain} (id int)`);
        expect((await refusal(client.query(`INSERT INTO ${orders} VALUES (9, 1, 1, 'x')`))).code).toBe('25006');
        expect((await refusal(client.query(`DELETE FROM ${customers}`))).code).toBe('25006');
        const untracked = await refusal(client.query(`SELECT id FROM ${plain}`));
        expect(untracked.code).toBe('55000');
        expect(untracked.hint).toContain('provenance.track');
        // The row transform gets the amount fetched alongside and hides small orders, read now and
        // as of a moment alike (through the history subquery, with its parameters of then).
        const noAmount = `SELECT o.id, o.note FROM ${orders} o JOIN ${customers} c ON c.id = o.customer_id ORDER BY o.id`;
        expect((await c.query(noAmount)).rows.map((r: { id: number }) => r.id)).toEqual(timeline.joinAt((await moment()).micros).map((r) => r[0]));
        expect((await client.query(noAmount)).rows.map((r: { id: number; note: string | null }) => [r.id, r.note]))
          .toEqual(timeline.joinAt(moments[2]!.micros).map((r) => [r[0], r[2]]));
        expect((await client.query(`SELECT id, note FROM ${orders} ORDER BY id`)).rows)
          .toEqual(timeline.ordersAt(moments[2]!.micros).map((o) => ({ id: o.id, note: o.note })));
        expect((await client.query<Customer>(customersSql())).rows).toEqual(timeline.customersAt(moments[2]!.micros));
        await client.query(`SET provenance.as_of = '${beforeHistory.text}'`);
        const early = await refusal(client.query(customersSql()));
        expect(early.code).toBe('22023');
        expect(early.message).toContain(customers);
      } finally {
        await client.end();
      }
    });
  });
}
