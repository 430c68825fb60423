/**
 * Versions registered under an earlier sandbox runtime, on both upstreams: one whose runtime this
 * one declares it behaves as is served and replayed under the function hash it was registered
 * with, and the replay verifies against the read served then (random numbers included, whose seed
 * comes from that hash); one under a runtime this one does not know is refused (55000) naming both
 * runtimes, and its reads now are still served through it.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { SANDBOX_RUNTIME_VERSION } from '../../sandbox/index.js';
import { startTarget, uniqueName, type Target } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';
import { asOfApp, pgUtc, serverNow, TestTimeTravel } from './replay-service.js';

/** The previous release's name for this runtime, on this Node.js. */
const PREVIOUS = `isolated-vm@5.0.4;node@${process.versions.node};runtime@bd629e3570b7`;
const UNKNOWN = 'sandbox@99;v8@1.0';
const NOISY = '(v) => v === null ? null : v.slice(0, 2) + "-" + Math.floor(Math.random() * 1e9)';
const MASK = '(v) => v === null ? null : v.slice(0, 2) + "***"';

const hashUnder = (source: string, identity: string): string => createHash('sha256').update(`${source}\0${identity}`).digest('hex');

interface Exec { id: string; kind: string; function_hash: string; replay_of: string | null; verified: boolean | null; output_hash: string }

for (const kind of ['embedded', 'postgres'] as const) {
  describe(`versions of earlier sandbox runtimes [${kind}]`, () => {
    const tt = new TestTimeTravel();
    let t: Target;
    let c: pg.Client;
    const open: pg.Client[] = [];

    beforeAll(async () => {
      t = await startTarget(kind, [], { provenanceDurability: 'sync' }, undefined, () => tt);
      await t.proxy.registryLoaded;
      c = await t.pg();
    });
    afterAll(async () => {
      for (const client of open) await client.end().catch(() => undefined);
      await c?.end();
      await t?.proxy.stop(2_000);
    });

    /** A table with one transform registered while the registry's runtime was `identity`, as an earlier release registered it. */
    async function registeredUnder(identity: string, source: string): Promise<{ table: string; oid: number; name: string }> {
      const table = uniqueName('rt');
      const name = uniqueName('rt_mask');
      await c.query(`CREATE TABLE ${table} (id int PRIMARY KEY, email text)`);
      await c.query(`INSERT INTO ${table} VALUES (1, 'alice@example.com'), (2, NULL), (3, 'carol@example.com')`);
      // One transaction: no other session ever sees the setting of the earlier runtime.
      await c.query('BEGIN');
      await c.query("UPDATE provenance.settings SET value = $1 WHERE key = 'sandbox_runtime_version'", [identity]);
      await c.query(`SELECT provenance.register_transform($1, $2, ARRAY['email'], $3)`, [name, table, source]);
      await c.query("UPDATE provenance.settings SET value = $1 WHERE key = 'sandbox_runtime_version'", [SANDBOX_RUNTIME_VERSION]);
      await c.query('COMMIT');
      await tt.refresh(c);
      const oid = Number((await c.query<{ oid: string }>('SELECT $1::regclass::oid::int8::text AS oid', [table])).rows[0]!.oid);
      const v = await c.query('SELECT function_hash, runtime_identity FROM provenance.transform_versions WHERE name = $1', [name]);
      expect(v.rows).toEqual([{ function_hash: hashUnder(source, identity), runtime_identity: identity }]);
      return { table, oid, name };
    }

    const asOfRead = async (oid: number, at: bigint): Promise<pg.Client> => {
      const client = await t.pg({ application_name: asOfApp(at) });
      open.push(client);
      return client;
    };
    const historySql = (oid: number, at: bigint): string => `SELECT id, email FROM provenance.history_${oid}
      WHERE pg_catalog.tstzrange(provenance_valid_from, provenance_valid_to) @> '${pgUtc(at)}'::timestamptz ORDER BY id`;

    it('serves and replays a version of a runtime this one behaves as, under the hash it was registered with, verified', async () => {
      const { table, oid, name } = await registeredUnder(PREVIOUS, NOISY);
      const registered = hashUnder(NOISY, PREVIOUS);
      const served = await eventually(() => c.query(`SELECT id, email FROM ${table} ORDER BY id`), (r) => /^al-\d+$/.test(String(r.rows[0]?.email)));
      const reads = await c.query<Exec>("SELECT * FROM provenance.executions WHERE transform_name = $1 AND kind = 'read'", [name]);
      expect(reads.rows.length).toBeGreaterThan(0);
      expect(reads.rows.every((e) => e.function_hash === registered)).toBe(true);
      const at = await serverNow(c);

      const since = await serverNow(c);
      const client = await asOfRead(oid, at);
      const replayed = await client.query(historySql(oid, at));
      expect(replayed.rows).toEqual(served.rows);
      const recs = await eventually(
        () => c.query<Exec>("SELECT * FROM provenance.executions WHERE transform_name = $1 AND kind = 'replay' AND recorded_at >= $2::timestamptz", [name, pgUtc(since)]),
        (r) => r.rows.length > 0,
      );
      for (const e of recs.rows) expect(e).toMatchObject({ function_hash: registered, verified: true });
      expect(reads.rows.map((e) => e.id)).toContain(recs.rows[0]!.replay_of);
    });

    it('refuses to replay a version of a runtime this one does not know (55000, naming both), and still serves it now', async () => {
      const { table, oid, name } = await registeredUnder(UNKNOWN, MASK);
      await eventually(() => c.query(`SELECT email FROM ${table} ORDER BY id`), (r) => r.rows[0]?.email === 'al***');
      const at = await serverNow(c);
      const client = await asOfRead(oid, at);
      const err = await client.query(historySql(oid, at)).then(() => null, (e: unknown) => e as { code?: string; message?: string });
      expect(err).toMatchObject({ code: '55000' });
      expect(err?.message).toContain(`transform "${name}" version 1`);
      expect(err?.message).toContain(UNKNOWN);
      expect(err?.message).toContain(SANDBOX_RUNTIME_VERSION);
      // The session goes on; the id column alone needs no transform.
      expect((await client.query(historySql(oid, at).replace('id, email', 'id'))).rows).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
    });

    it('registers a change to such a version under this runtime, which then replays', async () => {
      const { table, oid, name } = await registeredUnder(UNKNOWN, MASK);
      await c.query('SELECT provenance.set_transform_params($1, $2)', [name, '{"n": 1}']);
      const v = await c.query('SELECT version, function_hash, runtime_identity FROM provenance.transform_versions WHERE name = $1 ORDER BY version', [name]);
      expect(v.rows).toEqual([
        { version: 1, function_hash: hashUnder(MASK, UNKNOWN), runtime_identity: UNKNOWN },
        { version: 2, function_hash: hashUnder(MASK, SANDBOX_RUNTIME_VERSION), runtime_identity: SANDBOX_RUNTIME_VERSION },
      ]);
      await eventually(() => c.query(`SELECT email FROM ${table} ORDER BY id`), (r) => r.rows[0]?.email === 'al***');
      const at = await serverNow(c);
      const client = await asOfRead(oid, at);
      const rows = await eventually(() => client.query(historySql(oid, at)).then((r) => r.rows, () => null), (r) => r !== null);
      expect(rows?.[0]).toEqual({ id: 1, email: 'al***' });
    });
  });
}
