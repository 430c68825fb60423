/**
 * Guards through the parents of partitions and inheritance children, on both upstreams and in both
 * protocols: the rows of a child read through its parent are served as the parent's, so a
 * transform bound to the child does not run on them. Under `values`, the parent's column of the
 * same name as a guarded column of a descendant is refused (its other columns are served), any
 * read of the rows of a parent of a table with a guarded row transform is refused, `ONLY parent`
 * is served, and a SQL PREPARE meets what its tables are when it is executed. Exempt roles, and
 * every role under `off`, read the parents as they are.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type pg from 'pg';
import { eachUpstream, uniqueName } from '../support/proxy-matrix.js';
import { SHARED_EXEMPT, expectRefused, expectServed, refusingSession, until } from '../support/guard-sessions.js';

const MASK = '(v) => v === null ? null : v.slice(0, 2) + "***"';
const HIDE_LOW = '(row, p) => row.amount < p.min ? null : row';

interface ParentFixture {
  readonly reader: string;
  /** Range-partitioned: `lo` (itself partitioned into `loA`, whose email is masked) and `hi`; a view over it. */
  readonly acct: string;
  readonly lo: string;
  readonly loA: string;
  readonly view: string;
  readonly mask: string;
  /** A parent by INHERITS with rows of its own, and its child whose email is masked. */
  readonly member: string;
  readonly vip: string;
  readonly maskVip: string;
  /** Range-partitioned: `billA`'s rows filtered by a row transform, `billB` not. */
  readonly bill: string;
  readonly billA: string;
  readonly hide: string;
  /** A parent by INHERITS with rows of its own, and its child whose rows are filtered. */
  readonly tally: string;
  readonly kid: string;
  readonly hideKid: string;
}

eachUpstream('guards through the parents of partitions and inheritance children', (t) => {
  let f: ParentFixture;

  beforeAll(async () => {
    await t().proxy.registryLoaded;
    const admin = await t().pg();
    try {
      const acct = uniqueName('acct');
      const member = uniqueName('member');
      const bill = uniqueName('bill');
      const tally = uniqueName('tally');
      const x: ParentFixture = {
        reader: uniqueName('reader'),
        acct, lo: `${acct}_lo`, loA: `${acct}_lo_a`, view: `${acct}_v`, mask: uniqueName('mask_part'),
        member, vip: `${member}_vip`, maskVip: uniqueName('mask_vip'),
        bill, billA: `${bill}_a`, hide: uniqueName('hide_part'),
        tally, kid: `${tally}_kid`, hideKid: uniqueName('hide_kid'),
      };
      await admin.query(`
        CREATE TABLE ${x.acct} (id int, email text, name text) PARTITION BY RANGE (id);
        CREATE TABLE ${x.lo} PARTITION OF ${x.acct} FOR VALUES FROM (0) TO (100) PARTITION BY RANGE (id);
        CREATE TABLE ${x.loA} PARTITION OF ${x.lo} FOR VALUES FROM (0) TO (50);
        CREATE TABLE ${x.acct}_hi PARTITION OF ${x.acct} FOR VALUES FROM (100) TO (200);
        INSERT INTO ${x.acct} VALUES (1, 'alice@example.com', 'Alice'), (150, 'bob@example.com', 'Bob');
        CREATE VIEW ${x.view} AS SELECT id, email FROM ${x.acct};
        CREATE TABLE ${x.member} (id int, email text);
        CREATE TABLE ${x.vip} () INHERITS (${x.member});
        INSERT INTO ${x.member} VALUES (1, 'dan@example.com');
        INSERT INTO ${x.vip} VALUES (2, 'eve@example.com');
        CREATE TABLE ${x.bill} (id int, amount int) PARTITION BY RANGE (id);
        CREATE TABLE ${x.billA} PARTITION OF ${x.bill} FOR VALUES FROM (0) TO (100);
        CREATE TABLE ${x.bill}_b PARTITION OF ${x.bill} FOR VALUES FROM (100) TO (200);
        INSERT INTO ${x.bill} VALUES (1, 50), (2, 150), (101, 10);
        CREATE VIEW ${x.bill}_v AS SELECT id FROM ${x.bill};
        CREATE TABLE ${x.tally} (id int, amount int);
        CREATE TABLE ${x.kid} () INHERITS (${x.tally});
        INSERT INTO ${x.tally} VALUES (1, 10);
        INSERT INTO ${x.kid} VALUES (2, 50), (3, 150);
        CREATE ROLE ${x.reader} LOGIN PASSWORD 'pw';
        GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO ${x.reader};`);
      await admin.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], $3)", [x.mask, x.loA, MASK]);
      await admin.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], $3)", [x.maskVip, x.vip, MASK]);
      await admin.query(`SELECT provenance.register_transform($1, $2, NULL, $3, '{"min": 100}')`, [x.hide, x.billA, HIDE_LOW]);
      await admin.query(`SELECT provenance.register_transform($1, $2, NULL, $3, '{"min": 100}')`, [x.hideKid, x.kid, HIDE_LOW]);
      for (const name of [x.maskVip, x.hide, x.hideKid, x.mask]) await admin.query("SELECT provenance.set_transform_guard($1, 'values', $2)", [name, SHARED_EXEMPT]);
      f = x;
    } finally {
      await admin.end();
    }
  });

  afterAll(async () => {
    const admin = await t().pg();
    for (const name of [f.mask, f.maskVip, f.hide, f.hideKid]) await admin.query('SELECT provenance.drop_transform($1)', [name]).catch(() => undefined);
    await admin.end();
  });

  const reader = (): Promise<pg.Client> => refusingSession(t(), f.reader, `SELECT lower(email) AS e FROM ${f.loA}`);

  it('refuses a column guarded in a partition (at any depth) or a child read through its ancestors, naming them, and serves their other columns', async () => {
    const c = await reader();
    try {
      const parts = [`public.${f.acct}.email`, `partition public.${f.loA}`, `"${f.mask}"`, { hint: `Bind the transform to public.${f.acct}, the table clients read` }];
      await expectRefused(c, `SELECT * FROM ${f.acct}`, ...parts);
      await expectRefused(c, `SELECT email FROM ${f.acct} ORDER BY id`, ...parts);
      await expectRefused(c, `SELECT e FROM (SELECT email AS e FROM ${f.acct}) s`, ...parts);
      await expectRefused(c, `SELECT email FROM ${f.view}`, `public.${f.acct}.email`, `partition public.${f.loA}`, `"${f.mask}"`);
      await expectRefused(c, `SELECT email FROM ${f.lo}`, `public.${f.lo}.email`, `partition public.${f.loA}`, `"${f.mask}"`);
      await expectRefused(c, `SELECT upper(email) AS e FROM ${f.acct}`, `public.${f.acct}.email`);
      await expectRefused(c, `SELECT email FROM ${f.member}`, `public.${f.member}.email`, `inheritance child public.${f.vip}`, `"${f.maskVip}"`);
      await expectServed(c, `SELECT id, name FROM ${f.acct} ORDER BY id`, [{ id: 1, name: 'Alice' }, { id: 150, name: 'Bob' }]);
      await expectServed(c, `SELECT name FROM ${f.acct} WHERE email = 'alice@example.com'`, [{ name: 'Alice' }]);
      await expectServed(c, `SELECT id FROM ${f.member} ORDER BY id`, [{ id: 1 }, { id: 2 }]);
      // ONLY leaves the child's rows out; the table the transform is bound to is served transformed.
      await expectServed(c, `SELECT email FROM ONLY ${f.member}`, [{ email: 'dan@example.com' }]);
      await expectServed(c, `SELECT email FROM ${f.vip}`, [{ email: 'ev***' }]);
      await expectServed(c, `SELECT email FROM ${f.loA}`, [{ email: 'al***' }]);
    } finally {
      await c.end();
    }
  });

  it('refuses any read of rows of an ancestor of a partition or child with a guarded row transform, and serves the filtered table', async () => {
    const c = await reader();
    try {
      const parts = [`public.${f.bill}`, `partition public.${f.billA}`, `"${f.hide}"`, { hint: `Bind the transform to public.${f.bill}, the table clients read` }];
      await expectRefused(c, `SELECT * FROM ${f.bill}`, ...parts);
      await expectRefused(c, `SELECT id FROM ${f.bill} WHERE id > 100`, ...parts);
      await expectRefused(c, `SELECT count(*) FROM ${f.bill}`, ...parts);
      await expectRefused(c, `SELECT id FROM ${f.bill}_v`, `it reads public.${f.bill} through a view`, `"${f.hide}"`);
      await expectRefused(c, `SELECT s.id FROM (SELECT id FROM ${f.bill}) s`, ...parts);
      await expectRefused(c, `SELECT id FROM ${f.acct} WHERE id IN (SELECT id FROM public.${f.bill})`, ...parts);
      await expectRefused(c, `SELECT id FROM ${f.tally}`, `public.${f.tally}`, `inheritance child public.${f.kid}`, `"${f.hideKid}"`);
      await expectServed(c, `SELECT id, amount FROM ONLY ${f.tally}`, [{ id: 1, amount: 10 }]);
      await expectServed(c, `SELECT id, amount FROM ${f.billA} ORDER BY id`, [{ id: 2, amount: 150 }]);
      await expectServed(c, `SELECT id, amount FROM ${f.kid} ORDER BY id`, [{ id: 3, amount: 150 }]);
      // A write without RETURNING reads no row.
      expect((await c.query(`INSERT INTO ${f.bill} VALUES (150, 1)`)).rowCount).toBe(1);
    } finally {
      await c.end();
    }
  });

  it('refuses reads of a parent once a partition with a guarded transform is attached through the proxy', async () => {
    const admin = await t().pg();
    const box = uniqueName('box');
    const late = `${box}_late`;
    const maskLate = uniqueName('mask_late');
    try {
      await admin.query(`
        CREATE TABLE ${box} (id int, email text) PARTITION BY RANGE (id);
        CREATE TABLE ${box}_a PARTITION OF ${box} FOR VALUES FROM (0) TO (100);
        INSERT INTO ${box} VALUES (1, 'fay@example.com');
        CREATE TABLE ${late} (id int, email text);
        INSERT INTO ${late} VALUES (150, 'gus@example.com');
        GRANT SELECT ON ${box}, ${late} TO ${f.reader}`);
      await admin.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], $3)", [maskLate, late, MASK]);
      await admin.query("SELECT provenance.set_transform_guard($1, 'values', $2)", [maskLate, SHARED_EXEMPT]);
      const c = await refusingSession(t(), f.reader, `SELECT lower(email) AS e FROM ${late}`);
      try {
        await expectServed(c, `SELECT email FROM ${box}`, [{ email: 'fay@example.com' }]);
        await c.query(`PREPARE ${box}_q AS SELECT email FROM ${box}`);
        const parsed = { name: `${box}_parsed`, text: `SELECT email FROM ${box}` };
        expect((await c.query(parsed)).rows).toEqual([{ email: 'fay@example.com' }]);
        await admin.query(`ALTER TABLE ${box} ATTACH PARTITION ${late} FOR VALUES FROM (100) TO (200)`);
        await expectRefused(c, `SELECT email FROM ${box}`, `public.${box}.email`, `partition public.${late}`, `"${maskLate}"`);
        // A statement prepared over the parent before: refused when it runs.
        await expect(c.query(`EXECUTE ${box}_q`)).rejects.toMatchObject({ code: '42501', message: expect.stringContaining(`partition public.${late}`) as unknown });
        await expect(c.query(parsed)).rejects.toMatchObject({ code: '42501', message: expect.stringContaining(`partition public.${late}`) as unknown });
        expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      } finally {
        await c.end();
      }
    } finally {
      await admin.query('SELECT provenance.drop_transform($1)', [maskLate]).catch(() => undefined);
      await admin.end();
    }
  });

  it('refuses EXECUTE of a SQL PREPARE over a table since attached or made to inherit under a row-guarded table, or given a row-guarded partition', async () => {
    const admin = await t().pg();
    const ship = uniqueName('ship');
    const hideShip = uniqueName('hide_ship');
    const hideNew = uniqueName('hide_new');
    try {
      await admin.query(`
        CREATE TABLE ${ship} (id int, amount int) PARTITION BY RANGE (id);
        CREATE TABLE ${ship}_a PARTITION OF ${ship} FOR VALUES FROM (0) TO (100);
        CREATE TABLE ${ship}_new (id int, amount int);
        INSERT INTO ${ship}_new VALUES (150, 50);
        CREATE TABLE ${ship}_heap (id int, amount int);
        CREATE TABLE ${ship}_more (id int, amount int);
        INSERT INTO ${ship}_more VALUES (1, 50);
        CREATE TABLE ${ship}_box (id int, amount int) PARTITION BY RANGE (id);
        CREATE TABLE ${ship}_box_a PARTITION OF ${ship}_box FOR VALUES FROM (0) TO (100);
        CREATE TABLE ${ship}_box_new (id int, amount int);
        GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${f.reader}`);
      await admin.query(`SELECT provenance.register_transform($1, $2, NULL, $3, '{"min": 100}')`, [hideShip, ship, HIDE_LOW]);
      await admin.query(`SELECT provenance.register_transform($1, $2, NULL, $3, '{"min": 100}')`, [`${hideShip}_heap`, `${ship}_heap`, HIDE_LOW]);
      await admin.query(`SELECT provenance.register_transform($1, $2, NULL, $3, '{"min": 100}')`, [hideNew, `${ship}_box_new`, HIDE_LOW]);
      for (const name of [hideShip, `${hideShip}_heap`, hideNew]) await admin.query("SELECT provenance.set_transform_guard($1, 'values', $2)", [name, SHARED_EXEMPT]);
      const c = await refusingSession(t(), f.reader, `SELECT count(*) FROM ${ship}_box_new`);
      try {
        await c.query(`PREPARE ${ship}_p AS SELECT id, amount FROM ${ship}_new`);
        await c.query(`PREPARE ${ship}_m AS SELECT id, amount FROM ${ship}_more`);
        await c.query(`PREPARE ${ship}_b AS SELECT id FROM ${ship}_box`);
        expect((await c.query(`EXECUTE ${ship}_p`)).rows).toEqual([{ id: 150, amount: 50 }]);
        expect((await c.query(`EXECUTE ${ship}_m`)).rows).toEqual([{ id: 1, amount: 50 }]);
        expect((await c.query(`EXECUTE ${ship}_b`)).rows).toEqual([]);
        await admin.query(`ALTER TABLE ${ship} ATTACH PARTITION ${ship}_new FOR VALUES FROM (100) TO (200)`);
        await admin.query(`ALTER TABLE ${ship}_more INHERIT ${ship}_heap`);
        await admin.query(`ALTER TABLE ${ship}_box ATTACH PARTITION ${ship}_box_new FOR VALUES FROM (100) TO (200)`);
        for (const [name, part] of [[`${ship}_p`, `a partition of public.${ship}`], [`${ship}_m`, `an inheritance child of public.${ship}_heap`], [`${ship}_b`, `partition public.${ship}_box_new`]] as const) {
          await expect(c.query(`EXECUTE ${name}`), name).rejects.toMatchObject({ code: '42501', message: expect.stringContaining(part) as unknown });
          expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
        }
        await expectRefused(c, `SELECT id FROM ${ship}_box`, `public.${ship}_box`, `partition public.${ship}_box_new`, `"${hideNew}"`);
      } finally {
        await c.end();
      }
    } finally {
      for (const name of [hideShip, `${hideShip}_heap`, hideNew]) await admin.query('SELECT provenance.drop_transform($1)', [name]).catch(() => undefined);
      await admin.end();
    }
  });

  it('serves exempt roles the parents as they are, and under off every role (the documented limit)', async () => {
    const admin = await t().pg();
    const names = [f.mask, f.maskVip, f.hide, f.hideKid];
    try {
      await (await reader()).end();
      await expectServed(admin, `SELECT email FROM ${f.acct} ORDER BY id`, [{ email: 'alice@example.com' }, { email: 'bob@example.com' }]);
      await expectServed(admin, `SELECT id FROM ${f.tally} ORDER BY id`, [{ id: 1 }, { id: 2 }, { id: 3 }]);
      for (const name of names) await admin.query("SELECT provenance.set_transform_guard($1, 'off')", [name]);
      const c = await until(async () => {
        const s = await t().pg({ user: f.reader, password: 'pw' });
        const ok = await s.query(`SELECT lower(email) AS e FROM ${f.loA}`).then(() => true, () => false);
        if (ok) return s;
        await s.end();
        return null;
      }, (s) => s !== null);
      try {
        await expectServed(c!, `SELECT email FROM ${f.acct} WHERE id < 100`, [{ email: 'alice@example.com' }]);
        await expectServed(c!, `SELECT id FROM ${f.tally} ORDER BY id`, [{ id: 1 }, { id: 2 }, { id: 3 }]);
        await expectServed(c!, `SELECT id FROM ${f.bill} WHERE id < 100 ORDER BY id`, [{ id: 1 }, { id: 2 }]);
      } finally {
        await c!.end();
      }
    } finally {
      for (const name of names) await admin.query("SELECT provenance.set_transform_guard($1, 'values', $2)", [name, SHARED_EXEMPT]);
      await admin.end();
    }
  });
});
