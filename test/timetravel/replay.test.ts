/**
 * Replays on both upstreams: an as-of read of a tracked table's history runs the transform chain
 * in force at the moment (parameters, order, transforms added, dropped and disabled since), only
 * the transforms bound to what the statement outputs, cached across sessions, recorded as kind
 * replay and verified against the recorded reads. Expected values are computed here from what
 * the test registered and when, not by the proxy's code.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { startTarget, uniqueName, type Target } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';
import { asOfApp, pgUtc, serverNow, TestTimeTravel } from './replay-service.js';
import { startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver.js';

const MASK = '(v, p) => v === null ? null : v.slice(0, p.keep) + "***"';
const SUFFIX = '(v, p) => v === null ? null : v + p.s';
const UPPER = '(v) => v === null ? null : v.toUpperCase()';
const HASH = '(v) => v === null ? null : v + "#"';

interface Row { id: number; email: string | null; name: string | null }
interface Exec {
  id: string; transform_name: string; kind: string; as_of: Date | null; replay_of: string | null; verified: boolean | null;
  input_hash: string; output_hash: string; function_hash: string;
}

/** The history of a table as of a moment, as the session plugin's rewrite reads it. */
function historySql(oid: number, at: string | null, columns = 'id, email, name'): string {
  const moment = at === null ? '$1::timestamptz' : `'${at}'::timestamptz`;
  return `SELECT ${columns} FROM provenance.history_${oid}
           WHERE pg_catalog.tstzrange(provenance_valid_from, provenance_valid_to) @> ${moment} ORDER BY id`;
}

async function status(c: pg.Client): Promise<Record<string, string>> {
  return (await c.query('SHOW provenance.status')).rows[0] as Record<string, string>;
}

for (const kind of ['embedded', 'postgres'] as const) {
  describe(`replay [${kind}]`, () => {
    const tt = new TestTimeTravel();
    let t: Target;
    let receiver: OtlpReceiver;
    let c: pg.Client;
    let table: string;
    let oid: number;
    const names = { a: uniqueName('mask'), b: uniqueName('suffix'), c: uniqueName('upper'), d: uniqueName('hash') };
    const moments: bigint[] = [];
    const open: pg.Client[] = [];

    const asOf = async (at: bigint): Promise<pg.Client> => {
      const client = await t.pg({ application_name: asOfApp(at) });
      open.push(client);
      return client;
    };
    /** Replays at the moment recorded since the server's clock read `since` (records are written before the CommandComplete). */
    const replays = async (at: bigint, since: bigint): Promise<Exec[]> => (await c.query<Exec>(
      `SELECT * FROM provenance.executions WHERE kind = 'replay' AND application_name = $1 AND recorded_at >= $2::timestamptz
        ORDER BY executed_at, transform_name`,
      [asOfApp(at), pgUtc(since)])).rows;

    beforeAll(async () => {
      receiver = await startOtlpReceiver();
      t = await startTarget(kind, [], { provenanceDurability: 'sync' }, { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url }, () => tt);
      await t.proxy.registryLoaded;
      c = await t.pg();
      table = uniqueName('replay');
      await c.query(`CREATE TABLE ${table} (id int PRIMARY KEY, email text, name text)`);
      await c.query(`INSERT INTO ${table} VALUES (1, 'alice@example.com', 'alice'), (2, NULL, 'bob'), (3, 'carol@example.com', NULL)`);
      oid = Number((await c.query<{ oid: string }>('SELECT $1::regclass::oid::int8::text AS oid', [table])).rows[0]!.oid);
      await c.query(`SELECT provenance.register_transform($1, $2, ARRAY['email'], $3, '{"keep": 2}')`, [names.a, table, MASK]);
      await c.query(`SELECT provenance.register_transform($1, $2, ARRAY['email'], $3, '{"s": "!"}')`, [names.b, table, SUFFIX]);
      await c.query(`SELECT provenance.register_transform($1, $2, ARRAY['name'], $3)`, [names.c, table, UPPER]);
      await tt.refresh(c);
      const current = (): Promise<pg.QueryResult<Row>> => c.query<Row>(`SELECT id, email, name FROM ${table} ORDER BY id`);
      // PGlite's clock ticks in milliseconds: the next change must not share a moment's tick.
      const mark = async (): Promise<void> => {
        moments.push(await serverNow(c));
        await new Promise((r) => setTimeout(r, 5));
      };
      // Each moment follows a read served under the chain then (recorded before its CommandComplete).
      await eventually(current, (r) => r.rows[0]?.email === 'al***!' && r.rows[0]?.name === 'ALICE');
      await mark();
      await c.query('SELECT provenance.set_transform_params($1, $2)', [names.a, '{"keep": 3}']);
      await eventually(current, (r) => r.rows[0]?.email === 'ali***!');
      await mark();
      await c.query('SELECT provenance.move_transform($1, 0)', [names.b]);
      await eventually(current, (r) => r.rows[0]?.email === 'ali***');
      await mark();
      await c.query('SELECT provenance.disable_transform($1)', [names.c]);
      await c.query('SELECT provenance.drop_transform($1)', [names.b]);
      await c.query(`SELECT provenance.register_transform($1, $2, ARRAY['name'], $3)`, [names.d, table, HASH]);
      await eventually(current, (r) => r.rows[0]?.name === 'alice#');
      await mark();
      await c.query(`UPDATE ${table} SET email = 'zed@example.com' WHERE id = 1`);
      await eventually(current, (r) => r.rows[0]?.email === 'zed***');
    });

    afterAll(async () => {
      for (const client of open) await client.end().catch(() => undefined);
      await c?.end();
      await t?.proxy.stop(2_000);
      await receiver?.close();
    });

    it('runs the chain in force at each moment, in both protocols, whatever the chain is now', async () => {
      const expected: Row[][] = [
        // A (keep 2), B, C
        [{ id: 1, email: 'al***!', name: 'ALICE' }, { id: 2, email: null, name: 'BOB' }, { id: 3, email: 'ca***!', name: null }],
        // A's parameters changed
        [{ id: 1, email: 'ali***!', name: 'ALICE' }, { id: 2, email: null, name: 'BOB' }, { id: 3, email: 'car***!', name: null }],
        // B moved before A, whose mask cuts B's suffix off
        [{ id: 1, email: 'ali***', name: 'ALICE' }, { id: 2, email: null, name: 'BOB' }, { id: 3, email: 'car***', name: null }],
        // C disabled, B dropped, D added
        [{ id: 1, email: 'ali***', name: 'alice#' }, { id: 2, email: null, name: 'bob#' }, { id: 3, email: 'car***', name: null }],
      ];
      for (const [i, at] of moments.entries()) {
        const client = await asOf(at);
        const simple = await client.query<Row>(historySql(oid, pgUtc(at)));
        expect(simple.rows, `simple protocol at moment ${i}`).toEqual(expected[i]);
        const extended = await client.query<Row>(historySql(oid, null), [pgUtc(at)]);
        expect(extended.rows, `extended protocol at moment ${i}`).toEqual(expected[i]);
      }
      const sql = t.sql({ connection: { application_name: asOfApp(moments[2]!) } });
      try {
        const rows = await sql.unsafe(historySql(oid, null), [pgUtc(moments[2]!)]);
        expect(rows.map((r) => ({ ...r }))).toEqual(expected[2]);
      } finally {
        await sql.end();
      }
    });

    it('runs only the transforms bound to what the statement outputs', async () => {
      const at = moments[0]!;
      const client = await asOf(at);
      const since = await serverNow(c);
      const r = await client.query<Row>(historySql(oid, pgUtc(at), 'id, name'));
      expect(r.rows).toEqual([{ id: 1, name: 'ALICE' }, { id: 2, name: 'BOB' }, { id: 3, name: null }]);
      const recs = await replays(at, since);
      expect(recs.filter((e) => e.transform_name !== names.c)).toEqual([]);
      expect(recs.filter((e) => e.transform_name === names.c).length).toBeGreaterThan(0);
    });

    it('records replays with their moment, verified against the recorded reads they repeat', async () => {
      const at = moments[1]!;
      const client = await asOf(at);
      const since = await serverNow(c);
      await client.query(historySql(oid, pgUtc(at)));
      const recs = await replays(at, since);
      expect(recs.map((e) => e.transform_name).sort()).toEqual([names.a, names.b, names.c].sort());
      const atText = (await c.query<{ t: string }>('SELECT $1::timestamptz::text AS t', [pgUtc(at)])).rows[0]!.t;
      for (const e of recs) {
        expect(e.kind).toBe('replay');
        expect(e.verified).toBe(true);
        expect(e.replay_of).not.toBeNull();
        const asOfText = (await c.query<{ t: string }>('SELECT as_of::text AS t FROM provenance.executions WHERE id = $1', [e.id])).rows[0]!.t;
        expect(asOfText).toBe(atText);
        // The same statement by the same user at the moment of a recorded read: its hashes again.
        const read = (await c.query<Exec>('SELECT * FROM provenance.executions WHERE id = $1', [e.replay_of])).rows[0]!;
        expect(read).toMatchObject({ kind: 'read', input_hash: e.input_hash, output_hash: e.output_hash, function_hash: e.function_hash });
      }
    });

    it('serves a repeated replay from the cache, and warns when a record does not match', async () => {
      const at = moments[0]!;
      const first = await asOf(at);
      const since = await serverNow(c);
      await first.query(historySql(oid, pgUtc(at)));
      const recs = await replays(at, since);
      const maskReplay = recs.find((e) => e.transform_name === names.a)!;
      expect(maskReplay.verified).toBe(true);
      // Someone rewrote the record of the read the replay repeats.
      await c.query("UPDATE provenance.execution SET output_hash = pg_catalog.sha256('tampered') WHERE id = $1", [maskReplay.replay_of]);
      const before = await status(c);
      const second = await asOf(at);
      const notices: { severity?: string | undefined; code?: string | undefined; message: string }[] = [];
      second.on('notice', (n) => notices.push({ severity: n.severity, code: n.code, message: n.message ?? "" }));
      const since2 = await serverNow(c);
      const r = await second.query<Row>(historySql(oid, null), [pgUtc(at)]);
      expect(r.rows[0]).toEqual({ id: 1, email: 'al***!', name: 'ALICE' });
      const after = await status(c);
      // Another session, the same moment and rows: every batch from the cache, none through the sandbox.
      expect(Number(after['replay_cache_hits']) - Number(before['replay_cache_hits'])).toBe(3);
      expect(Number(after['replay_cache_misses'])).toBe(Number(before['replay_cache_misses']));
      expect(Number(after['replay_cache_bytes'])).toBeGreaterThan(0);
      const again = await replays(at, since2);
      const tampered = again.find((e) => e.transform_name === names.a)!;
      expect(tampered).toMatchObject({ verified: false, replay_of: maskReplay.replay_of });
      expect(again.filter((e) => e.transform_name !== names.a).every((e) => e.verified === true)).toBe(true);
      expect(notices).toHaveLength(1);
      expect(notices[0]).toMatchObject({ severity: 'WARNING', code: '01000' });
      expect(notices[0]!.message).toContain(tampered.id);
      expect(notices[0]!.message).toContain(maskReplay.replay_of!);
      // The spans say the same as the records.
      const spans = await receiver.waitFor((x) => x.some((e) => e.attributes['provenance.execution.id'] === tampered.id), 20_000);
      const span = spans.find((e) => e.attributes['provenance.execution.id'] === tampered.id)!;
      expect(span.attributes).toMatchObject({
        'provenance.kind': 'replay', 'provenance.as_of': pgUtc(at), 'provenance.replay_of': maskReplay.replay_of, 'provenance.verified': false,
      });
    });

    it('replays inside a transaction, and checks the replay once the transaction lets it', async () => {
      const at = moments[2]!;
      const client = await asOf(at);
      const since = await serverNow(c);
      await client.query('BEGIN');
      const r = await client.query<Row>(historySql(oid, null), [pgUtc(at)]);
      expect(r.rows[0]).toEqual({ id: 1, email: 'ali***', name: 'ALICE' });
      await client.query('COMMIT');
      const recs = await eventually(() => replays(at, since), (x) => x.length === 3);
      expect(recs.map((e) => [e.transform_name, e.verified]).sort()).toEqual([[names.a, true], [names.b, true], [names.c, true]].sort());
    });

    it('refuses the current rows of a tracked table in an as-of session, and goes on', async () => {
      const client = await asOf(moments[3]!);
      await expect(client.query(`SELECT email FROM ${table}`)).rejects.toMatchObject({ code: '55000' });
      expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    });

    it('refuses a version whose function this sandbox runtime does not run as recorded', async () => {
      const other = uniqueName('stale');
      const mask = uniqueName('stale_mask');
      await c.query(`CREATE TABLE ${other} (id int, email text)`);
      await c.query(`INSERT INTO ${other} VALUES (1, 'dave@example.com')`);
      await c.query(`SELECT provenance.register_transform($1, $2, ARRAY['email'], $3, '{"keep": 1}')`, [mask, other, MASK]);
      await tt.refresh(c);
      const otherOid = Number((await c.query<{ oid: string }>('SELECT $1::regclass::oid::int8::text AS oid', [other])).rows[0]!.oid);
      await eventually(() => c.query(`SELECT email FROM ${other}`), (r) => r.rows[0]?.email === 'd***');
      const at = await serverNow(c);
      // As if it had been registered under another runtime (the guards refuse updates; a superuser's replica mode skips them).
      await c.query(`SET session_replication_role = replica;
        UPDATE provenance.transform_version SET function_hash = pg_catalog.repeat('0', 64) WHERE name = '${mask}';
        RESET session_replication_role;
        NOTIFY provenance_registry`);
      const client = await asOf(at);
      const sqlText = `SELECT id, email FROM provenance.history_${otherOid}
        WHERE pg_catalog.tstzrange(provenance_valid_from, provenance_valid_to) @> '${pgUtc(at)}'::timestamptz`;
      const err = await eventually(
        () => client.query(sqlText).then(() => null, (e: unknown) => e as { code?: string; message?: string }),
        (e) => e !== null,
      );
      expect(err).toMatchObject({ code: '55000' });
      expect(err?.message).toContain(`transform "${mask}" version 1`);
      // Its id column alone needs no transform: served.
      const ids = await client.query(sqlText.replace('id, email', 'id'));
      expect(ids.rows).toEqual([{ id: 1 }]);
    });
  });
}
