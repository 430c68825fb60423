/**
 * Transforms on a seam shared with other plugins: a plugin that renames and reorders result
 * columns (before or after transforms) cannot unmask rows; settings of the `provenance.`
 * namespace do not wait for the registry; a COPY prepared before a transform was registered is
 * refused at its Bind and Execute.
 */
import { expect, it } from 'vitest';
import type pg from 'pg';
import { serialize } from 'pg-protocol';
import { eachUpstream, uniqueName } from '../support/proxy-matrix.js';
import { maskedTable, MASK_EMAIL } from '../support/masked-table.js';
import { eventually } from '../support/eventually.js';
import { rawClient, runUnit as run } from '../support/raw-unit.js';
import { RowBatch } from '../../proxy/wire/row-batch.js';
import type { Plugin } from '../../plugins/hooks.js';

const { parse, bind, execute, sync, query } = serialize;

/** Reverses and renames the columns of every result of sessions whose application_name is its name. */
function reorderer(name: string, order: number): Plugin {
  return {
    name,
    order,
    rowDescription: (s, r) => (s.applicationName === name
      ? { action: 'rewrite', fields: [...r.fields].reverse().map((f) => ({ ...f, name: `${f.name}_r` })), watch: true }
      : { action: 'pass' }),
    dataRows: (_s, _r, rows) => ({ action: 'rewrite', rows: RowBatch.fromValues(rows.values().map((row) => [...row].reverse())) }),
  };
}

/** Counts the request units some plugin waited for at their ReadyForQuery (registry reloads). */
const waits = { count: 0 };
const unitWaits: Plugin = { name: 'unit-waits', unitDone: () => void waits.count++ };

/** A table of one row with an email, readable by everyone, without transforms. */
async function unmaskedTable(c: pg.Client, prefix: string): Promise<string> {
  const table = uniqueName(prefix);
  await c.query(`CREATE TABLE ${table} (id int, email text)`);
  await c.query(`INSERT INTO ${table} VALUES (1, 'alice@example.com')`);
  await c.query(`GRANT SELECT ON ${table} TO PUBLIC`);
  return table;
}

/** Registers a transform masking its email column, and waits until reads are masked. */
async function mask(c: pg.Client, table: string): Promise<void> {
  await c.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], $3)", [uniqueName('mask'), table, MASK_EMAIL]);
  await eventually(async () => (await c.query(`SELECT email FROM ${table}`)).rows, (r) => r[0]?.email === 'al***');
}

eachUpstream('transforms among other plugins', (t) => {
  it('keeps rows masked when a plugin after or before it renames and reorders the columns', async () => {
    const setup = await t().pg();
    const table = await maskedTable(t(), setup, 'reordered');
    await setup.end();
    for (const app of ['reorder-after', 'reorder-before']) {
      const c = await t().pg({ application_name: app });
      try {
        const simple = await c.query(`SELECT id, email FROM ${table} ORDER BY id`);
        expect(simple.fields.map((f) => f.name), app).toEqual(['email_r', 'id_r']);
        expect(simple.rows.map((r: { email_r: string }) => r.email_r), app).toEqual(['al***', 'bo***', 'ca***']);
        const extended = await c.query(`SELECT email, id FROM ${table} WHERE id = $1`, [2]);
        expect(extended.rows, app).toEqual([{ id_r: 2, email_r: 'bo***' }]);
        expect(JSON.stringify([simple.rows, extended.rows]), app).not.toContain('@example.com');
      } finally {
        await c.end();
      }
    }
  });

  it('answers SET, SHOW and RESET of provenance settings without waiting for the registry', async () => {
    await t().proxy.registryLoaded;
    const c = await t().pg();
    try {
      waits.count = 0;
      await c.query("SET provenance.x = 'y'");
      expect((await c.query('SHOW provenance.x')).rows).toEqual([{ 'provenance.x': 'y' }]);
      await c.query('RESET provenance.x');
      await c.query('SET provenance.x TO $$z$$; SHOW provenance.x');
      await c.query({ text: "SET provenance.x = 'w'", values: [], queryMode: 'extended' } as never);
      await c.query('SELECT current_setting($1) AS v', ['provenance.x']);
      expect(waits.count).toBe(0);
      const table = uniqueName('waited');
      // DDL waits too: a new table may take the name of a dropped target (see refused-tables.ts).
      await c.query(`CREATE TABLE ${table} (v text)`);
      expect(waits.count).toBe(1);
      await c.query("SELECT provenance.register_transform($1, $2, ARRAY['v'], '(v) => v')", [uniqueName('noop'), table]);
      expect(waits.count).toBe(2);
    } finally {
      await c.end();
    }
  });

  it('refuses a COPY prepared while its table had no transform, once one is registered', async () => {
    await t().proxy.registryLoaded;
    const c = await t().pg();
    const table = await unmaskedTable(c, 'copied_later');
    const raw = await rawClient(t());
    try {
      expect((await run(raw, parse({ name: 's_copy', text: `COPY ${table} TO STDOUT` }), sync())).codes).toBe('1Z');
      await mask(c, table);
      const copied = await run(raw, bind({ statement: 's_copy' }), execute({}), sync());
      expect(copied.codes).toBe('EZ');
      expect(copied.errors).toEqual(['0A000']);
      // The session goes on, and the statement stays refused.
      expect((await run(raw, bind({ statement: 's_copy', portal: 'p' }), execute({ portal: 'p' }), sync())).errors).toEqual(['0A000']);
      expect((await run(raw, query('SELECT 1'))).rows).toEqual([['1']]);
    } finally {
      raw.end();
      await c.end();
    }
  });

  it('refuses the Execute of a COPY portal bound before a transform was registered', async () => {
    // A portal outlives its Sync only in a transaction, and the embedded database runs one at a time.
    if (t().kind !== 'postgres') return;
    await t().proxy.registryLoaded;
    const c = await t().pg();
    const table = await unmaskedTable(c, 'bound_before');
    const raw = await rawClient(t());
    try {
      await run(raw, query('BEGIN'));
      expect((await run(raw, parse({ text: `COPY ${table} TO STDOUT` }), bind({}), sync())).codes).toBe('12Z');
      await mask(c, table);
      const copied = await run(raw, execute({}), sync());
      expect(copied.codes).toBe('EZ');
      expect(copied.errors).toEqual(['0A000']);
      await run(raw, query('ROLLBACK'));
    } finally {
      raw.end();
      await c.end();
    }
  });
}, () => [reorderer('reorder-after', 10), reorderer('reorder-before', -10), unitWaits]);
