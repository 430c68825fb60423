/**
 * Materialisation policies at work through a real client: the proxy makes a version after a slow
 * replay and after a moment read often, at each boundary of an `every` rule (once, with two
 * proxies on one database), evicts the least read over a budget (never one made by hand), logs
 * each decision, and the read that triggered a decision is served as before.
 */
import { expect, it } from 'vitest';
import type pg from 'pg';
import { eachUpstream, startTarget, uniqueName } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';

/** Policies run on a one-second tick and make versions off the read's path: on a loaded machine that takes a while. */
const POLICY_WAIT_MS = 30_000;
import { moment } from '../timetravel/as-of-support.js';

const MASK = '(v) => v === null ? null : v.slice(0, 2) + "***"';
const masked = Array.from({ length: 20 }, (_, i) => [i + 1, `us***`]);

async function setup(c: pg.Client): Promise<{ table: string; read: () => Promise<unknown[][]> }> {
  const table = uniqueName('policed');
  await c.query(`CREATE TABLE ${table} (id int PRIMARY KEY, email text)`);
  await c.query(`INSERT INTO ${table} SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 20) g`);
  await c.query(`SELECT provenance.register_transform($1, $2, ARRAY['email'], $3)`, [uniqueName('mask'), table, MASK]);
  const read = (): Promise<unknown[][]> => c.query({ text: `SELECT id, email FROM ${table} ORDER BY id`, rowMode: 'array' }).then((r) => r.rows as unknown[][]);
  await eventually(read, (r) => r[0]?.[1] === 'us***', POLICY_WAIT_MS);
  return { table, read };
}

interface Version { id: string; as_of: string; reason: string }
const versions = (c: pg.Client, table: string): Promise<Version[]> =>
  c.query<Version>(`SELECT id::text, as_of::text, reason FROM provenance.materializations WHERE target::regclass = $1::regclass ORDER BY id`, [table]).then((r) => r.rows);
const log = (c: pg.Client, table: string): Promise<Record<string, unknown>[]> =>
  c.query(`SELECT action, rule, why, bytes, materialization_id::text AS id, as_of::text AS as_of FROM provenance.materialize_log
            WHERE target_oid = $1::regclass ORDER BY id`, [table]).then((r) => r.rows);

eachUpstream('materialisation policies at work', (t) => {
  it('makes a version after a replay slower than after_replay_ms, off the read\'s path, and serves the moment from it', async () => {
    const c = await t().pg();
    await t().proxy.registryLoaded;
    try {
      const { table, read } = await setup(c);
      await c.query('SELECT provenance.set_materialize_policy($1, $2)', [table, { after_replay_ms: 0 }]);
      const at = await moment(c);
      await c.query(`SET provenance.as_of = '${at}'`);
      expect(await read()).toEqual(masked);
      const made = await eventually(() => versions(c, table), (v) => v.length === 1, POLICY_WAIT_MS);
      expect(made).toMatchObject([{ reason: 'policy:after_replay_ms' }]);
      const logged = await eventually(() => log(c, table), (l) => l.length === 1, POLICY_WAIT_MS);
      expect(logged).toMatchObject([{ action: 'created', rule: 'after_replay_ms', id: made[0]!.id }]);
      expect(Number(logged[0]!['bytes'])).toBeGreaterThan(0);
      // Proxies learn which tables have versions within a second; until then the read replays (no new decision).
      const served = async (): Promise<string> => {
        expect(await read()).toEqual(masked);
        return String((await c.query('SHOW provenance.last_read')).rows[0]!['provenance.last_read']);
      };
      expect(await eventually(served, (how) => how.endsWith(': materialized'), POLICY_WAIT_MS)).toMatch(/: materialized$/);
      // Served from the version: no further replay, no further decision.
      await new Promise((r) => setTimeout(r, 300));
      expect(await versions(c, table)).toHaveLength(1);
    } finally {
      await c.end();
    }
  });

  it('makes a version of a moment read after_reads times within the window', async () => {
    const c = await t().pg();
    await t().proxy.registryLoaded;
    try {
      const { table, read } = await setup(c);
      await c.query('SELECT provenance.set_materialize_policy($1, $2)', [table, { after_reads: 3, within: '1 hour' }]);
      const at = await moment(c);
      await c.query(`SET provenance.as_of = '${at}'`);
      for (let i = 0; i < 2; i++) expect(await read()).toEqual(masked);
      await new Promise((r) => setTimeout(r, 500));
      expect(await versions(c, table)).toEqual([]);
      expect(await read()).toEqual(masked);
      expect(await eventually(() => versions(c, table), (v) => v.length === 1, POLICY_WAIT_MS)).toMatchObject([{ reason: 'policy:after_reads' }]);
      expect(await eventually(() => log(c, table), (l) => l.length === 1, POLICY_WAIT_MS)).toMatchObject([{ action: 'created', rule: 'after_reads' }]);
    } finally {
      await c.end();
    }
  });

  it('evicts the least read policy-made version over budget_bytes, never the one just made nor one made by hand', async () => {
    const c = await t().pg();
    await t().proxy.registryLoaded;
    try {
      const { table, read } = await setup(c);
      const byHand = await moment(c);
      const manual = (await c.query<{ materialize: string }>(`SELECT provenance.materialize('${table}', '${byHand}')`)).rows[0]!.materialize;
      await c.query('SELECT provenance.set_materialize_policy($1, $2)', [table, { after_replay_ms: 0, budget_bytes: 1 }]);
      // A change after each moment: no version of one serves a read of the next.
      const change = (v: string): Promise<unknown> => c.query(`UPDATE ${table} SET email = $1 WHERE id = 20`, [v]);
      await change('user20a@example.com');
      const m1 = await moment(c);
      await change('user20b@example.com');
      const m2 = await moment(c);
      await c.query(`SET provenance.as_of = '${m1}'`);
      expect(await read()).toEqual(masked);
      const first = await eventually(() => versions(c, table), (v) => v.length === 2, POLICY_WAIT_MS);
      expect(first.map((v) => v.reason)).toEqual(['manual', 'policy:after_replay_ms']);
      // Over budget already, but the rest is needed: said once.
      expect(await eventually(() => log(c, table), (l) => l.length === 2, POLICY_WAIT_MS)).toMatchObject([
        { action: 'created', rule: 'after_replay_ms' },
        { action: 'skipped', rule: 'budget_bytes' },
      ]);
      await c.query(`SET provenance.as_of = '${m2}'`);
      expect(await read()).toEqual(masked);
      const second = await eventually(() => versions(c, table), (v) => v.length === 2 && v[1]!.id !== first[1]!.id, POLICY_WAIT_MS);
      expect(second.map((v) => v.id)).toEqual([manual, expect.any(String)]);
      const l = await eventually(() => log(c, table), (x) => x.some((e) => e['action'] === 'evicted'), POLICY_WAIT_MS);
      expect(l.find((e) => e['action'] === 'evicted')).toMatchObject({ rule: 'budget_bytes', id: first[1]!.id });
    } finally {
      await c.end();
    }
  });

  it('makes a version at each boundary of an every rule, once, however many proxies serve the database', async () => {
    const c = await t().pg();
    await t().proxy.registryLoaded;
    const second = t().kind === 'postgres' ? await startTarget('postgres') : null;
    try {
      const { table } = await setup(c);
      await c.query('SELECT provenance.set_materialize_policy($1, $2)', [table, { every: '2 seconds' }]);
      const made = await eventually(() => versions(c, table), (v) => v.length >= 2, POLICY_WAIT_MS);
      const moments = made.map((v) => Date.parse(v.as_of.replace(' ', 'T').replace(/\+00$/, 'Z')));
      for (const m of moments) expect(m % 2000).toBe(0);
      // One version per boundary, whichever proxy made it.
      expect(new Set(moments).size).toBe(moments.length);
      expect(made.every((v) => v.reason === 'policy:every')).toBe(true);
      // Each logged once its version is made.
      const created = (await eventually(() => log(c, table), (l) => made.every((v) => l.some((e) => e['id'] === v.id)), POLICY_WAIT_MS)).filter((e) => e['action'] === 'created');
      expect(created.map((e) => e['id']).sort()).toEqual(expect.arrayContaining(made.map((v) => v.id).sort()));
      expect(new Set(created.map((e) => e['as_of'])).size).toBe(created.length);
      await c.query('SELECT provenance.set_materialize_policy($1, NULL)', [table]);
    } finally {
      await second?.proxy.stop(2_000);
      await c.end();
    }
  });
});
