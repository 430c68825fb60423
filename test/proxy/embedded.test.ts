import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { startProxy } from '../../proxy/compose.js';
import { baseConfig, uniqueName, useTarget } from '../support/proxy-matrix.js';

describe('embedded PGlite shared by many clients', () => {
  const t = useTarget('embedded');

  it('keeps one client\'s open transaction out of another\'s statements, queuing the other', async () => {
    const table = uniqueName('iso');
    const a = await t.pg();
    const b = await t.pg();
    try {
      await a.query(`CREATE TABLE ${table} (v int)`);
      await a.query('BEGIN');
      await a.query(`INSERT INTO ${table} VALUES (1)`);
      let bDone = false;
      const bRead = b.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`).then((r) => {
        bDone = true;
        return r.rows[0]!.n;
      });
      await new Promise((r) => setTimeout(r, 200));
      expect(bDone).toBe(false); // queued behind a's transaction, not run inside it
      await a.query('ROLLBACK');
      expect(await bRead).toBe(0);
    } finally {
      await a.end();
      await b.end();
    }
  });

  it('gives each client its own prepared statement names', async () => {
    const sqlA = t.sql();
    const sqlB = t.sql();
    try {
      // postgres.js names its statements per connection, so both use the same names.
      for (let i = 0; i < 3; i++) {
        const [[x], [y]] = await Promise.all([sqlA`SELECT ${i}::int + 100 AS v`, sqlB`SELECT ${i}::text || 'b' AS v`]);
        expect(x).toEqual({ v: 100 + i });
        expect(y).toEqual({ v: `${i}b` });
      }
      const c = await t.pg();
      const d = await t.pg();
      await c.query({ name: 'same', text: 'SELECT 1 AS v' });
      await d.query({ name: 'same', text: 'SELECT 2 AS v' });
      expect((await c.query({ name: 'same', text: 'SELECT 1 AS v' })).rows[0]).toEqual({ v: 1 });
      expect((await d.query({ name: 'same', text: 'SELECT 2 AS v' })).rows[0]).toEqual({ v: 2 });
      await c.end();
      await d.end();
    } finally {
      await sqlA.end();
      await sqlB.end();
    }
  });

  it('keeps each client\'s session settings its own', async () => {
    const a = await t.pg({ application_name: 'client-a' });
    const b = await t.pg({ application_name: 'client-b' });
    try {
      const defaults = await b.query("SELECT current_setting('search_path') AS sp, current_setting('TimeZone') AS tz");
      await a.query("SET search_path TO pg_catalog");
      await a.query("SET TimeZone TO 'Asia/Tokyo'");
      const rb = await b.query("SELECT current_setting('search_path') AS sp, current_setting('TimeZone') AS tz, current_setting('application_name') AS app");
      expect(rb.rows[0]).toEqual({ ...defaults.rows[0], app: 'client-b' });
      expect(defaults.rows[0]).not.toEqual({ sp: 'pg_catalog', tz: 'Asia/Tokyo' });
      const ra = await a.query("SELECT current_setting('search_path') AS sp, current_setting('TimeZone') AS tz, current_setting('application_name') AS app");
      expect(ra.rows[0]).toEqual({ sp: 'pg_catalog', tz: 'Asia/Tokyo', app: 'client-a' });
    } finally {
      await a.end();
      await b.end();
    }
  });

  it('logs clients in as their own role, with its privileges', async () => {
    const role = uniqueName('reader');
    const admin = await t.pg();
    try {
      await admin.query(`CREATE ROLE ${role} LOGIN`);
      const c = await t.pg({ user: role });
      const r = await c.query('SELECT current_user AS u, session_user AS s');
      expect(r.rows[0]).toEqual({ u: role, s: role });
      await expect(c.query('CREATE ROLE should_fail')).rejects.toMatchObject({ code: '42501' });
      await c.end();
      const unknown = new pg.Client({ host: '127.0.0.1', port: t.port, user: 'nobody_here', database: 'postgres' });
      await expect(unknown.connect()).rejects.toMatchObject({ code: '28000' });
      const wrongDb = new pg.Client({ host: '127.0.0.1', port: t.port, user: 'postgres', database: 'other' });
      await expect(wrongDb.connect()).rejects.toMatchObject({ code: '3D000' });
    } finally {
      await admin.end();
    }
  });

  it('rolls back a transaction left open by a client that disconnects', async () => {
    const table = uniqueName('gone');
    const a = await t.pg();
    await a.query(`CREATE TABLE ${table} (v int)`);
    await a.query('BEGIN');
    await a.query(`INSERT INTO ${table} VALUES (1)`);
    await a.end();
    const b = await t.pg();
    expect((await b.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]).toEqual({ n: 0 });
    await b.end();
  });

  it('refuses COPY FROM STDIN it cannot serve, and stays usable', async () => {
    const c = await t.pg();
    await c.query('CREATE TABLE IF NOT EXISTS copy_refused (v int)');
    await expect(c.query('SELECT 1; COPY copy_refused FROM STDIN')).rejects.toMatchObject({ code: '0A000' });
    // A named statement makes pg use the extended protocol.
    await expect(c.query({ name: 'copy-in', text: 'COPY copy_refused FROM STDIN' })).rejects.toMatchObject({ code: '0A000' });
    expect((await c.query('SELECT 5 AS ok')).rows[0]).toEqual({ ok: 5 });
    await c.end();
  });
});

describe('embedded data directory', () => {
  it('keeps the data across a restart on the same --data-dir, and refuses a second proxy on it', async () => {
    const cfg = baseConfig();
    const first = await startProxy(cfg, { log: () => undefined });
    const c = new pg.Client({ host: '127.0.0.1', port: first.address.port, user: 'postgres', database: 'postgres' });
    await c.connect();
    await c.query('CREATE TABLE kept (v text)');
    await c.query("INSERT INTO kept VALUES ('survives')");
    await c.end();
    await expect(startProxy(cfg, { log: () => undefined })).rejects.toThrow(/in use by another provenance-proxy/);
    await first.stop();
    const second = await startProxy(cfg, { log: () => undefined });
    const d = new pg.Client({ host: '127.0.0.1', port: second.address.port, user: 'postgres', database: 'postgres' });
    await d.connect();
    expect((await d.query('SELECT v FROM kept')).rows).toEqual([{ v: 'survives' }]);
    await d.end();
    await second.stop();
  });
});
