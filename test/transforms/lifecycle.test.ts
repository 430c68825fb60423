import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startProxy } from '../../proxy/compose.js';
import { baseConfig, sharedCluster, startTarget, uniqueName, useTarget } from '../support/proxy-matrix.js';
import { startCli } from '../support/cli-process.js';
import { eventually } from '../support/eventually.js';


describe('a fresh embedded database', () => {
  it('starts with the demo: masked personal data, unmasked IBANs for auditors', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pp-demo-'));
    const proxy = await startProxy(baseConfig({ dataDir: dir, demo: true }), { log: () => undefined });
    const connect = async (user: string): Promise<pg.Client> => {
      const c = new pg.Client({ host: '127.0.0.1', port: proxy.address.port, user, database: 'postgres' });
      await c.connect();
      return c;
    };
    try {
      const admin = await connect('postgres');
      const rows = (await admin.query('SELECT id, email, iban FROM customers ORDER BY id')).rows;
      expect(rows[0]).toEqual({ id: 1, email: 'ad***@analytical.example', iban: 'GB82 **** 5432' });
      expect(rows[4]).toMatchObject({ email: null });
      await admin.query("SELECT provenance.set_transform_params('mask_email', '{\"keep\": 4}')");
      const after = await eventually(() => admin.query('SELECT email FROM customers WHERE id = 1'), (r) => r.rows[0]?.email !== 'ad***@analytical.example');
      expect(after.rows[0]).toEqual({ email: 'ada@***@analytical.example' });
      const audrey = await connect('audrey');
      expect((await audrey.query('SELECT iban FROM customers WHERE id = 1')).rows[0]).toEqual({ iban: 'GB82WEST12345698765432' });
      const alice = await connect('alice');
      expect((await alice.query('SELECT iban FROM customers WHERE id = 1')).rows[0]).toEqual({ iban: 'GB82 **** 5432' });
      // NULLs pass through the demo's transforms, masked or not.
      await admin.query('UPDATE customers SET iban = NULL, email = NULL WHERE id = 2');
      for (const c of [alice, audrey]) expect((await c.query('SELECT email, iban FROM customers WHERE id = 2')).rows).toEqual([{ email: null, iban: null }]);
      await Promise.all([admin.end(), audrey.end(), alice.end()]);
    } finally {
      await proxy.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('transform files', () => {
  it('are registered on start, and again only when a file changed', async () => {
    const cluster = sharedCluster();
    const dir = mkdtempSync(path.join(tmpdir(), 'pp-files-'));
    const transforms = path.join(dir, 'transforms');
    mkdirSync(transforms);
    const table = uniqueName('filed');
    const name = uniqueName('file_mask');
    // Straight to the database: the registry is the same whoever reads it.
    const c = new pg.Client({ connectionString: cluster.url() });
    await c.connect();
    await c.query(`CREATE TABLE ${table} (id int, secret text)`);
    await c.query(`INSERT INTO ${table} VALUES (1, 'classified')`);
    const write = (keep: number): void =>
      writeFileSync(path.join(transforms, `${name}.js`), `// @target public.${table}\n// @columns secret\n// @params {"keep": ${keep}}\n(v, p) => v.slice(0, p.keep) + '…'\n`);
    const versions = async (): Promise<number[]> =>
      (await c.query<{ version: number }>('SELECT version FROM provenance.transform_versions WHERE name = $1 ORDER BY version', [name])).rows.map((r) => r.version);
    const run = async (): Promise<string> => {
      const t = await startTarget('postgres', [], { transformsDir: transforms, upstream: cluster.url().replace(/\?.*$/, '') + '?sslmode=disable' });
      try {
        await t.proxy.registryLoaded;
        const r = await t.pg();
        const v = (await r.query(`SELECT secret FROM ${table}`)).rows[0]!.secret as string;
        await r.end();
        return v;
      } finally {
        await t.proxy.stop(2_000);
      }
    };
    try {
      write(3);
      expect(await run()).toBe('cla…');
      expect(await versions()).toEqual([1]);
      expect(await run()).toBe('cla…');
      expect(await versions()).toEqual([1]);
      write(5);
      expect(await run()).toBe('class…');
      expect(await versions()).toEqual([1, 2]);
      const origin = await c.query('SELECT origin FROM provenance.transforms WHERE name = $1', [name]);
      expect(origin.rows[0]).toEqual({ origin: `file:${name}.js` });
    } finally {
      await c.end();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('hot reload across proxy processes', () => {
  const a = useTarget('postgres');

  it('applies a change made through one proxy on another proxy process from its next statements', async () => {
    const cluster = sharedCluster();
    const dir = mkdtempSync(path.join(tmpdir(), 'pp-b-'));
    const b = await startCli(['--listen', '127.0.0.1:0', '--data-dir', dir, '--upstream', `postgres://127.0.0.1:${cluster.port}/postgres?sslmode=disable`, '--transforms', path.join(dir, 'none')],
      { PGUSER: cluster.superuser, PGPASSWORD: cluster.password });
    const viaA = await a.pg();
    const viaB = new pg.Client({ host: '127.0.0.1', port: b.port, user: 'postgres', password: cluster.password, database: 'postgres' });
    try {
      await viaB.connect();
      const table = uniqueName('shared');
      const name = uniqueName('shared_mask');
      await viaA.query(`CREATE TABLE ${table} (v text)`);
      await viaA.query(`INSERT INTO ${table} VALUES ('plain')`);
      expect((await viaB.query(`SELECT v FROM ${table}`)).rows).toEqual([{ v: 'plain' }]);
      await viaA.query("SELECT provenance.register_transform($1, $2, ARRAY['v'], '(v) => \"hidden\"')", [name, table]);
      const seen = await eventually(() => viaB.query(`SELECT v FROM ${table}`), (r) => r.rows[0]?.v === 'hidden');
      expect(seen.rows).toEqual([{ v: 'hidden' }]);
      await viaA.query('SELECT provenance.disable_transform($1)', [name]);
      const back = await eventually(() => viaB.query(`SELECT v FROM ${table}`), (r) => r.rows[0]?.v === 'plain');
      expect(back.rows).toEqual([{ v: 'plain' }]);
    } finally {
      await viaA.end();
      await viaB.end().catch(() => undefined);
      b.child.kill('SIGTERM');
      await b.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('hostile transforms through the proxy', () => {
  const t = useTarget('embedded');

  it('stops an endless loop (57014) and a memory bomb (53200), naming the transform, and keeps serving', async () => {
    const c = await t.pg();
    const other = await t.pg();
    try {
      const table = uniqueName('hostile');
      await c.query(`CREATE TABLE ${table} (v text)`);
      await c.query(`INSERT INTO ${table} VALUES ('x')`);
      const loop = uniqueName('loop');
      await c.query("SELECT provenance.register_transform($1, $2, ARRAY['v'], '(v) => { for (;;) {} }')", [loop, table]);
      const err1 = await eventually(() => c.query(`SELECT v FROM ${table}`).then(() => null, (e: unknown) => e as { code?: string; message?: string }), (e) => e !== null);
      expect(err1).toMatchObject({ code: '57014' });
      expect(err1?.message).toContain(loop);
      expect((await other.query('SELECT 1 AS alive')).rows).toEqual([{ alive: 1 }]);
      await c.query('SELECT provenance.drop_transform($1)', [loop]);
      const bomb = uniqueName('bomb');
      // Eight megabytes a step: the 64 MB limit is reached long before the time limit, loaded or not.
      await c.query("SELECT provenance.register_transform($1, $2, ARRAY['v'], '(v) => { const a = []; for (;;) a.push(new Array(1e6).fill(v)); }')", [bomb, table]);
      const err2 = await eventually(() => c.query(`SELECT v FROM ${table}`).then(() => null, (e: unknown) => e as { code?: string; message?: string }), (e) => e?.code === '53200');
      expect(err2).toMatchObject({ code: '53200' });
      expect(err2?.message).toContain(bomb);
      await c.query('SELECT provenance.drop_transform($1)', [bomb]);
      const ok = await eventually(() => c.query(`SELECT v FROM ${table}`).then((r) => r.rows, () => null), (r) => r !== null);
      expect(ok).toEqual([{ v: 'x' }]);
    } finally {
      await c.end();
      await other.end();
    }
  });
});
