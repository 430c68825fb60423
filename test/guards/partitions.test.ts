/**
 * Guards through partitions and inheritance children, on both upstreams and in both protocols: a
 * partition (at any depth, attached after the guard was set too) or an inheritance child read
 * directly is served as a table of its own, without its parent's transforms. Under `values`, a
 * guarded column of the parent read there is refused (its other columns are served, as the
 * parent's), and so is any read of a child of a table with a guarded row transform; reads through
 * the parent are served transformed. Exempt roles, and every role under `off`, read the children
 * as they are (the documented limit).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { eachUpstream, uniqueName } from '../support/proxy-matrix.js';
import { SHARED_EXEMPT, expectRefused, expectServed, refusingSession, until } from '../support/guard-sessions.js';

const MASK = '(v) => v === null ? null : v.slice(0, 2) + "***"';
const HIDE_LOW = '(row, p) => row.amount < p.min ? null : row';

interface Fixture {
  readonly reader: string;
  /** Range-partitioned, email masked: `lo` (itself partitioned into `loA`, `loB`) and `hi`. */
  readonly cust: string;
  readonly lo: string;
  readonly loA: string;
  readonly hi: string;
  readonly mask: string;
  /** A parent by INHERITS (email masked) and its child. */
  readonly people: string;
  readonly staff: string;
  readonly maskPeople: string;
  /** Range-partitioned, rows filtered by a row transform; a view over its partition. */
  readonly orders: string;
  readonly ordersA: string;
  readonly ordersView: string;
  readonly hide: string;
  /** A parent by INHERITS, rows filtered by a row transform, and its child. */
  readonly ledger: string;
  readonly ledgerChild: string;
  readonly hideLedger: string;
}

eachUpstream('guards through partitions and inheritance children', (t) => {
  let f: Fixture;

  beforeAll(async () => {
    await t().proxy.registryLoaded;
    const admin = await t().pg();
    try {
      const cust = uniqueName('cust');
      const people = uniqueName('people');
      const orders = uniqueName('orders');
      const x: Fixture = {
        reader: uniqueName('reader'),
        cust, lo: `${cust}_lo`, loA: `${cust}_lo_a`, hi: `${cust}_hi`, mask: uniqueName('mask'),
        people, staff: `${people}_staff`, maskPeople: uniqueName('mask_people'),
        orders, ordersA: `${orders}_a`, ordersView: `${orders}_a_v`, hide: uniqueName('hide_low'),
        ledger: uniqueName('ledger'), ledgerChild: uniqueName('ledger_child'), hideLedger: uniqueName('hide_ledger'),
      };
      await admin.query(`
        CREATE TABLE ${x.cust} (id int, email text, name text) PARTITION BY RANGE (id);
        CREATE TABLE ${x.lo} PARTITION OF ${x.cust} FOR VALUES FROM (0) TO (100) PARTITION BY RANGE (id);
        CREATE TABLE ${x.loA} PARTITION OF ${x.lo} FOR VALUES FROM (0) TO (50);
        CREATE TABLE ${x.lo}_b PARTITION OF ${x.lo} FOR VALUES FROM (50) TO (100);
        CREATE TABLE ${x.hi} PARTITION OF ${x.cust} FOR VALUES FROM (100) TO (200);
        INSERT INTO ${x.cust} VALUES (1, 'alice@example.com', 'Alice'), (150, 'bob@example.com', 'Bob');
        CREATE TABLE ${x.people} (id int, email text);
        CREATE TABLE ${x.staff} (dept text) INHERITS (${x.people});
        INSERT INTO ${x.staff} VALUES (1, 'carol@example.com', 'ops');
        CREATE TABLE ${x.orders} (id int, amount int) PARTITION BY RANGE (id);
        CREATE TABLE ${x.ordersA} PARTITION OF ${x.orders} FOR VALUES FROM (0) TO (100);
        INSERT INTO ${x.orders} VALUES (1, 50), (2, 150);
        CREATE VIEW ${x.ordersView} AS SELECT id FROM ${x.ordersA};
        CREATE TABLE ${x.ledger} (id int, amount int);
        CREATE TABLE ${x.ledgerChild} () INHERITS (${x.ledger});
        INSERT INTO ${x.ledgerChild} VALUES (1, 50), (2, 150);
        CREATE ROLE ${x.reader} LOGIN PASSWORD 'pw';
        GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${x.reader};`);
      await admin.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], $3)", [x.mask, x.cust, MASK]);
      await admin.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], $3)", [x.maskPeople, x.people, MASK]);
      await admin.query(`SELECT provenance.register_transform($1, $2, NULL, $3, '{"min": 100}', reads => ARRAY['amount'])`, [x.hide, x.orders, HIDE_LOW]);
      await admin.query(`SELECT provenance.register_transform($1, $2, NULL, $3, '{"min": 100}')`, [x.hideLedger, x.ledger, HIDE_LOW]);
      for (const name of [x.mask, x.maskPeople, x.hide, x.hideLedger]) await admin.query("SELECT provenance.set_transform_guard($1, 'values', $2)", [name, SHARED_EXEMPT]);
      f = x;
    } finally {
      await admin.end();
    }
  });

  afterAll(async () => {
    const admin = await t().pg();
    for (const name of [f.mask, f.maskPeople, f.hide, f.hideLedger]) await admin.query('SELECT provenance.drop_transform($1)', [name]).catch(() => undefined);
    await admin.end();
  });

  const reader = (): Promise<pg.Client> => refusingSession(t(), f.reader, `SELECT email FROM ${f.hi}`);

  describe('a guarded column', () => {
    it('is refused read from a partition, a sub-partition or an inheritance child, naming the table, the parent and the transform', async () => {
      const c = await reader();
      try {
        await expectRefused(c, `SELECT email FROM ${f.hi}`, `public.${f.hi}.email`, `a partition of public.${f.cust}`, `"${f.mask}"`);
        await expectRefused(c, `SELECT * FROM ${f.hi} ORDER BY id`, `public.${f.hi}.email`, `"${f.mask}"`);
        await expectRefused(c, `SELECT email FROM ${f.lo}`, `public.${f.lo}.email`, `a partition of public.${f.cust}`);
        await expectRefused(c, `SELECT email FROM ${f.loA}`, `public.${f.loA}.email`, `a partition of public.${f.cust}`, `"${f.mask}"`);
        await expectRefused(c, `SELECT upper(email) AS e FROM ${f.loA}`, `public.${f.loA}.email`);
        await expectRefused(c, `SELECT email FROM ${f.staff}`, `public.${f.staff}.email`, `an inheritance child of public.${f.people}`, `"${f.maskPeople}"`);
        await expectRefused(c, `SELECT s FROM ${f.staff} s`, `public.${f.staff}.email`);
      } finally {
        await c.end();
      }
    });

    it('is served masked through the parent, and the children\'s other columns as they are (comparisons as on the parent)', async () => {
      const c = await reader();
      try {
        await expectServed(c, `SELECT id, email FROM ${f.cust} ORDER BY id`, [{ id: 1, email: 'al***' }, { id: 150, email: 'bo***' }]);
        await expectServed(c, `SELECT email FROM ${f.people}`, [{ email: 'ca***' }]);
        await expectServed(c, `SELECT id, name FROM ${f.hi}`, [{ id: 150, name: 'Bob' }]);
        await expectServed(c, `SELECT id, dept FROM ${f.staff} WHERE email = 'carol@example.com'`, [{ id: 1, dept: 'ops' }]);
        expect((await c.query(`SELECT name FROM ${f.loA} WHERE email = $1`, ['alice@example.com'])).rows).toEqual([{ name: 'Alice' }]);
      } finally {
        await c.end();
      }
    });

    it('is refused read from a partition attached, or a child made to inherit, after the guard was set', async () => {
      const admin = await t().pg();
      const late = `${f.cust}_late`;
      const made = `${f.cust}_made`;
      const heir = `${f.people}_heir`;
      try {
        await (await reader()).end();
        await admin.query(`
          CREATE TABLE ${late} (id int, email text, name text);
          INSERT INTO ${late} VALUES (250, 'dan@example.com', 'Dan');
          GRANT SELECT ON ${late} TO ${f.reader}`);
        // Prepared while it is a table of its own: its Binds are checked again under what it is then.
        const before = await t().pg({ user: f.reader, password: 'pw' });
        const prepared = { name: `${late}_q`, text: `SELECT email FROM ${late}` };
        expect((await before.query(prepared)).rows).toEqual([{ email: 'dan@example.com' }]);
        await admin.query(`ALTER TABLE ${f.cust} ATTACH PARTITION ${late} FOR VALUES FROM (200) TO (300)`);
        await expect(before.query(prepared)).rejects.toMatchObject({ code: '42501', message: expect.stringContaining(`a partition of public.${f.cust}`) as unknown });
        await before.end();
        await admin.query(`CREATE TABLE ${made} PARTITION OF ${f.cust} FOR VALUES FROM (300) TO (400)`);
        await admin.query(`CREATE TABLE ${heir} (id int, email text)`);
        await admin.query(`ALTER TABLE ${heir} INHERIT ${f.people}`);
        await admin.query(`GRANT SELECT ON ${made}, ${heir} TO ${f.reader}`);
        const c = await t().pg({ user: f.reader, password: 'pw' });
        try {
          await expectRefused(c, `SELECT email FROM ${late}`, `public.${late}.email`, `a partition of public.${f.cust}`, `"${f.mask}"`);
          await expectRefused(c, `SELECT email FROM ${made}`, `public.${made}.email`, `a partition of public.${f.cust}`);
          await expectRefused(c, `SELECT email FROM ${heir}`, `public.${heir}.email`, `an inheritance child of public.${f.people}`);
          await expectServed(c, `SELECT email FROM ${f.cust} WHERE id = 250`, [{ email: 'da***' }]);
        } finally {
          await c.end();
        }
      } finally {
        await admin.end();
      }
    });
  });

  describe('a guarded row transform', () => {
    it('refuses any read of a partition or an inheritance child, directly or through a view, and filters reads through the parent', async () => {
      const c = await reader();
      try {
        const parts = [`public.${f.ordersA}`, `a partition of public.${f.orders}`, `"${f.hide}"`];
        await expectRefused(c, `SELECT * FROM ${f.ordersA}`, ...parts);
        await expectRefused(c, `SELECT id FROM ${f.ordersA} WHERE id > 0`, ...parts);
        await expectRefused(c, `SELECT count(*) FROM ${f.ordersA}`, ...parts);
        await expectRefused(c, `SELECT 1 AS one FROM ${f.ordersA} LIMIT 1`, ...parts);
        await expectRefused(c, `SELECT id FROM ${f.ordersView}`, ...parts);
        await expectRefused(c, `SELECT id FROM ${f.cust} WHERE id IN (SELECT id FROM public.${f.ordersA})`, ...parts);
        await expectServed(c, `SELECT id, amount FROM ${f.orders} ORDER BY id`, [{ id: 2, amount: 150 }]);
        await expectRefused(c, `SELECT id FROM ${f.ledgerChild}`, `public.${f.ledgerChild}`, `an inheritance child of public.${f.ledger}`, `"${f.hideLedger}"`);
        await expectServed(c, `SELECT id, amount FROM ${f.ledger} ORDER BY id`, [{ id: 2, amount: 150 }]);
      } finally {
        await c.end();
      }
    });

    it('refuses reads of a partition whose quoted name holds a double quote', async () => {
      const admin = await t().pg();
      const odd = `"${f.orders}_q""t"`;
      try {
        await admin.query(`CREATE TABLE ${odd} PARTITION OF ${f.orders} FOR VALUES FROM (100) TO (200)`);
        await admin.query(`GRANT SELECT ON ${odd} TO ${f.reader}`);
        const c = await reader();
        try {
          await until(() => c.query(`SELECT id FROM ${odd}`).then(() => 'served', (e: { code?: string }) => e.code), (code) => code === '42501');
          await expectRefused(c, `SELECT id FROM ${odd}`, `a partition of public.${f.orders}`, `"${f.hide}"`);
        } finally {
          await c.end();
        }
      } finally {
        await admin.query(`DROP TABLE IF EXISTS ${odd}`);
        await admin.end();
      }
    });
  });

  it('serves exempt roles the children as they are', async () => {
    const admin = await t().pg();
    try {
      await (await reader()).end();
      await expectServed(admin, `SELECT email FROM ${f.hi}`, [{ email: 'bob@example.com' }]);
      await expectServed(admin, `SELECT email FROM ${f.staff}`, [{ email: 'carol@example.com' }]);
      await expectServed(admin, `SELECT id FROM ${f.ordersA} ORDER BY id`, [{ id: 1 }, { id: 2 }]);
    } finally {
      await admin.end();
    }
  });

  it('under off serves every role the children as they are, untransformed (the documented limit)', async () => {
    const admin = await t().pg();
    try {
      await (await reader()).end();
      for (const name of [f.mask, f.maskPeople, f.hide]) await admin.query("SELECT provenance.set_transform_guard($1, 'off')", [name]);
      const served = await until(async () => {
        const c = await t().pg({ user: f.reader, password: 'pw' });
        try {
          return await c.query(`SELECT email FROM ${f.hi}`).then((r) => r.rows as unknown, (e: pg.DatabaseError) => e.message);
        } finally {
          await c.end();
        }
      }, (r) => Array.isArray(r));
      expect(served).toEqual([{ email: 'bob@example.com' }]);
      const c = await t().pg({ user: f.reader, password: 'pw' });
      try {
        await expectServed(c, `SELECT email FROM ${f.loA}`, [{ email: 'alice@example.com' }]);
        await expectServed(c, `SELECT email FROM ${f.staff}`, [{ email: 'carol@example.com' }]);
        await expectServed(c, `SELECT id FROM ${f.ordersA} ORDER BY id`, [{ id: 1 }, { id: 2 }]);
        await expectServed(c, `SELECT email FROM ${f.cust} WHERE id < 200 ORDER BY id`, [{ email: 'al***' }, { email: 'bo***' }]);
      } finally {
        await c.end();
      }
    } finally {
      for (const name of [f.mask, f.maskPeople, f.hide]) await admin.query("SELECT provenance.set_transform_guard($1, 'values', $2)", [name, SHARED_EXEMPT]);
      await admin.end();
    }
  });
});
