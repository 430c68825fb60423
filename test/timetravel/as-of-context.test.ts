/**
 * The time-travel service other plugins meet: the moment and replay context a session reads as of
 * (`provenance.as_user`'s roles as recorded in that user's latest execution by then, or their
 * current membership), and where a column of a history table comes from. Driven through the
 * plugin's hooks as the proxy calls them, on the real cluster's provenance schema.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { uniqueName, useTarget } from '../support/proxy-matrix.js';
import { createTimeTravelPlugin, type TimeTravelPart } from '../../plugins/timetravel/index.js';
import { SqlAnalyser } from '../../plugins/sql/analyser.js';
import type { SessionInfo, StatementDecision } from '../../plugins/hooks.js';
import type { Services, StoreConnection } from '../../plugins/services.js';

const target = useTarget('postgres');
let direct: pg.Client;
let part: TimeTravelPart;

async function memberships(user: string): Promise<string[]> {
  const r = await direct.query<{ r: string[] }>(
    `SELECT ARRAY(SELECT b.rolname::text FROM pg_roles b WHERE pg_has_role($1, b.oid, 'MEMBER') AND b.rolname NOT LIKE 'pg\\_%' ORDER BY 1) AS r`, [user]);
  return r.rows[0]!.r;
}

beforeAll(async () => {
  await target.proxy.stateReady;
  direct = new pg.Client({ connectionString: target.cluster.url() });
  await direct.connect();
  const store = {
    query: async (sql: string, params: readonly unknown[] = []) => ({ rows: (await direct.query(sql, [...params])).rows as Record<string, unknown>[] }),
    exec: async (sql: string) => void (await direct.query(sql)),
  } as unknown as StoreConnection;
  const services = {
    log: () => undefined,
    sql: await SqlAnalyser.load(),
    state: { current: () => store },
    upstream: null,
    embedded: null,
    roles: memberships,
  } as unknown as Services;
  part = createTimeTravelPlugin(services);
});

afterAll(async () => {
  await direct.end();
});

function session(): SessionInfo {
  return {
    id: 1, user: 'postgres', database: 'postgres', applicationName: '', clientAddress: '127.0.0.1', clientPort: 1,
    serverParams: new Map([['TimeZone', 'UTC'], ['DateStyle', 'ISO, MDY'], ['is_superuser', 'on']]),
    startupParams: new Map(), backendPid: 1, pluginState: new Map(), statementPlugins: new Set(), statement: null,
  };
}

/** A statement through the hook; a local answer runs as the proxy runs it at its turn. */
async function run(s: SessionInfo, text: string): Promise<StatementDecision> {
  const d = await part.plugin.statement!(s, { kind: 'query', text });
  if (d.action === 'answer') d.result.run?.();
  if (d.action === 'deny') throw d.error;
  return d;
}

async function now(): Promise<string> {
  const m = (await direct.query<{ m: string }>('SELECT clock_timestamp()::text AS m')).rows[0]!.m;
  await new Promise((r) => setTimeout(r, 3));
  return m;
}

it('gives the replay context: as_user\'s roles as recorded by then, else their membership now', async () => {
  const user = uniqueName('alice');
  const role = uniqueName('auditor');
  await direct.query(`CREATE ROLE ${role}; CREATE ROLE ${user} LOGIN IN ROLE ${role}`);
  try {
    const beforeRecord = await now();
    // An execution recorded for the user while a member of the role.
    await direct.query(`INSERT INTO provenance.execution (id, result_id, chain_end, transform_name, transform_version, function_hash,
        table_oid, table_name, input_hash, output_hash, rows_in, rows_out, executed_at, duration_ms, user_name, current_role_name, roles,
        database, application_name, session_id, statement_fingerprint, statement_text, params, kind, outcome, trace_id, span_id, proxy_id)
      VALUES ($1, $2, true, 't', 1, 'aa', 1, 'public.t', '\\x00', '\\x00', 1, 1, clock_timestamp(), 1, $3, $3, $4, 'postgres', '', '1', 'f', 's',
        '{}', 'read', 'complete', repeat('0', 32), repeat('0', 16), 'p')`, [randomUUID(), randomUUID(), user, [user, role]]);
    const afterRecord = await now();
    await direct.query(`REVOKE ${role} FROM ${user}`);

    const s = session();
    await part.plugin.sessionOpening!(s);
    expect(part.service.asOf(s)).toBeNull();
    await run(s, `SET provenance.as_of = '${afterRecord}'`);
    expect(part.service.asOf(s)).toMatchObject({ user: 'postgres' });
    await run(s, `SET provenance.as_user = '${user}'`);
    const recorded = part.service.asOf(s)!;
    expect(recorded.user).toBe(user);
    expect([...recorded.roles].sort()).toEqual([user, role].sort());
    const utc = (await direct.query<{ m: string }>("SELECT to_char($1::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS m", [afterRecord])).rows[0]!.m;
    expect(recorded.at).toBe(`${utc.replace(/\.?0+$/, '')}+00`);
    // Before anything was recorded for the user: their membership now.
    await run(s, `SET provenance.as_of = '${beforeRecord}'`);
    expect(part.service.asOf(s)!.roles).toEqual([user]);
    await run(s, 'RESET provenance.as_of');
    expect(part.service.asOf(s)).toBeNull();
  } finally {
    await direct.query(`DELETE FROM provenance.execution WHERE user_name = $1`, [user]);
    await direct.query(`DROP ROLE ${user}; DROP ROLE ${role}`);
  }
});

it('maps a history table\'s columns back to the tracked table\'s, as RowDescription names them', async () => {
  const table = uniqueName('mapped');
  await direct.query(`CREATE TABLE ${table} (id int, gone text, v text); ALTER TABLE ${table} DROP COLUMN gone`);
  await direct.query('SELECT provenance.track($1)', [table]);
  const at = await now();
  const s = session();
  await part.plugin.sessionOpening!(s);
  await run(s, `SET provenance.as_of = '${at}'`);
  const d = await run(s, `SELECT v, id FROM ${table}`);
  expect(d.action).toBe('rewrite');
  const text = (d as { text: string }).text;
  const r = await direct.query(text);
  const oid = Number((await direct.query<{ o: string }>('SELECT $1::regclass::oid::int AS o', [table])).rows[0]!.o);
  const history = Number((await direct.query<{ h: number }>('SELECT history::oid::int AS h FROM provenance.history_table WHERE target_oid = $1', [oid])).rows[0]!.h);
  expect(r.fields.map((f) => f.tableID)).toEqual([history, history]);
  expect(r.fields.map((f) => part.service.sourceOf(f.tableID, f.columnID))).toEqual([{ oid, attnum: 3 }, { oid, attnum: 1 }]);
  expect(part.service.sourceOf(oid, 1)).toBeNull();
  // The validity columns are the history's own.
  const validFrom = (await direct.query<{ n: number }>("SELECT attnum::int AS n FROM pg_attribute WHERE attrelid = $1 AND attname = 'provenance_valid_from'", [history])).rows[0]!.n;
  expect(part.service.sourceOf(history, validFrom)).toBeNull();
});
