/** A table of three rows whose email column a registered transform masks (`alice@…` → `al***`), readable by everyone. */
import type pg from 'pg';
import { uniqueName, type Target } from './proxy-matrix.js';
import { eventually } from './eventually.js';

export const MASK_EMAIL = '(v) => v === null ? null : v.slice(0, 2) + "***"';

/** Creates it through the proxy and returns its name once reads come back masked. */
export async function maskedTable(t: Target, c: pg.Client, prefix: string): Promise<string> {
  await t.proxy.registryLoaded;
  const table = uniqueName(prefix);
  await c.query(`CREATE TABLE ${table} (id int PRIMARY KEY, email text)`);
  await c.query(`INSERT INTO ${table} VALUES (1, 'alice@example.com'), (2, 'bob@example.com'), (3, 'carol@example.com')`);
  await c.query(`GRANT SELECT ON ${table} TO PUBLIC`);
  await c.query("SELECT provenance.register_transform($1, $2, ARRAY['email'], $3)", [uniqueName('mask'), table, MASK_EMAIL]);
  // A plugin may rename the column (see the transforms' portal tests).
  await eventually(async () => (await c.query(`SELECT email FROM ${table} WHERE id = 1`)).rows, (r) => (r[0]?.email ?? r[0]?.contact) === 'al***');
  return table;
}
