/**
 * The proxy's own connection to PostgreSQL runs one query at a time: registry reloads, role
 * look-ups at login and provenance writes overlap, and pg deprecates overlapping client.query()
 * calls (they stop working in its next major version, and it warns once per process).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { uniqueName, useTarget } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';

describe('the proxy\'s own PostgreSQL connections', () => {
  const warnings: string[] = [];
  const onWarning = (w: Error): void => void warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  afterAll(() => void process.off('warning', onWarning));
  const t = useTarget('postgres');

  it('never have a query sent while another runs, under concurrent reloads, logins and provenance writes', async () => {
    await t.proxy.registryLoaded;
    const admin = await t.pg();
    const table = uniqueName('overlap');
    const name = uniqueName('mask');
    try {
      await admin.query(`CREATE TABLE ${table} (id int, email text); INSERT INTO ${table} SELECT g, 'user' || g FROM generate_series(1, 20) g`);
      await admin.query('SELECT provenance.register_transform($1, $2, ARRAY[\'email\'], $3)', [name, table, '(v) => v.toUpperCase()']);
      await eventually(() => admin.query(`SELECT email FROM ${table} WHERE id = 1`), (r) => r.rows[0]?.['email'] === 'USER1');
      const before = Number((await admin.query('SELECT count(*) AS n FROM provenance.execution WHERE transform_name = $1', [name])).rows[0]!['n']);
      // The test's own clients never overlap queries: each runs one at a time.
      const work: Promise<unknown>[] = [(async () => {
        for (let i = 0; i < 30; i++) await admin.query(`NOTIFY provenance_registry, '${name}'`);
      })()];
      for (let i = 0; i < 30; i++) {
        work.push((async () => {
          const c = await t.pg();
          try {
            await c.query(`SELECT email FROM ${table}`);
          } finally {
            await c.end();
          }
        })());
      }
      await Promise.all(work);
      await eventually(
        async () => Number((await admin.query('SELECT count(*) AS n FROM provenance.execution WHERE transform_name = $1', [name])).rows[0]!['n']),
        (n) => n >= before + 30,
      );
      expect(warnings.filter((w) => /already executing a query/.test(w))).toEqual([]);
    } finally {
      await admin.query('SELECT provenance.drop_transform($1)', [name]).catch(() => undefined);
      await admin.end();
    }
  });
});
