/**
 * Making a materialised version: a table's rows as of a moment, read from its history in one
 * statement, go through the chain in force then (a replay, recorded as one) in batches, and what
 * the chain served is written, batch by batch, into `provenance.materialized_<id>`. Its catalogue
 * row (`provenance.materialization`) is complete only at the end; a run that fails or is
 * cancelled leaves nothing behind. Progress is reported as the batches go.
 */
import { PgError, SqlState } from '../../proxy/errors.js';
import type { FieldDescription } from '../../proxy/wire/backend-messages.js';
import type { SessionInfo } from '../hooks.js';
import type { SqlRunner } from '../registry/migrate.js';
import type { AsOfMoment, ChainLink, TransformsService } from '../services.js';
import { CLOCK_FIELD } from './exactness.js';

/** What a materialisation is made of: whose rows, as of when, in whose context, and why. */
export interface MaterializeRequest {
  /** The session whose statement it records its replay under (user, client, database). */
  readonly session: SessionInfo;
  readonly oid: number;
  /** The moment, and the user and roles of the context the chain runs in. */
  readonly moment: AsOfMoment;
  /** Who asked: the catalogue's created_by. */
  readonly createdBy: string;
  /** `manual`, or the policy that chose it. */
  readonly reason: string;
  /** Called with the percentage done after each batch. */
  readonly progress?: (percent: number) => void;
  readonly signal?: AbortSignal;
}

export interface MaterializeDeps {
  readonly store: SqlRunner;
  readonly transforms: TransformsService;
  /** Rows per batch through the chain and into the table. */
  readonly batchRows?: number;
}

const DEFAULT_BATCH_ROWS = 1000;

interface TableColumn {
  readonly attnum: number;
  readonly name: string;
  readonly type: string;
  readonly typid: number;
  readonly typmod: number;
  readonly len: number;
  readonly history: string | null;
}

const TABLE_SQL = `
SELECT n.nspname::pg_catalog.text AS schema, c.relname::pg_catalog.text AS name, c.relkind::pg_catalog.text AS kind, c.relrowsecurity AS rls,
       h.history::pg_catalog.text AS history, h.tracking, (EXTRACT(epoch FROM h.since) * 1000000)::pg_catalog.int8::pg_catalog.text AS since,
       (EXTRACT(epoch FROM h.until) * 1000000)::pg_catalog.int8::pg_catalog.text AS until, h.since::pg_catalog.text AS since_text,
       (EXTRACT(epoch FROM pg_catalog.now()) * 1000000)::pg_catalog.int8::pg_catalog.text AS now,
       (SELECT pg_catalog.json_agg(pg_catalog.json_build_object('attnum', a.attnum, 'name', a.attname, 'type', pg_catalog.format_type(a.atttypid, a.atttypmod),
               'typid', a.atttypid, 'typmod', a.atttypmod, 'len', a.attlen, 'history', hc.history_name) ORDER BY a.attnum)
          FROM pg_catalog.pg_attribute a
          LEFT JOIN provenance.history_column hc ON hc.target_oid OPERATOR(pg_catalog.=) a.attrelid AND hc.attnum OPERATOR(pg_catalog.=) a.attnum AND NOT hc.dropped
         WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
  LEFT JOIN provenance.history_table h ON h.target_oid OPERATOR(pg_catalog.=) c.oid
 WHERE c.oid OPERATOR(pg_catalog.=) $1::pg_catalog.oid`;

const PRIVILEGE_SQL = `SELECT pg_catalog.has_table_privilege($1::pg_catalog.name, $2::pg_catalog.oid, 'SELECT') AS ok`;

const INSERT_SQL = `
INSERT INTO provenance.materialization (target_oid, target, as_of, as_user, database, chain, context, context_fields, batch_dependent, attnums, storage, created_by, reason)
VALUES ($1, $2, $3::pg_catalog.timestamptz, $4, $5, $6::pg_catalog.jsonb, '{}', '{}', false, $7::pg_catalog.int2[], '', $8, $9)
RETURNING id::pg_catalog.text AS id`;

const COMPLETE_SQL = `
UPDATE provenance.materialization SET context = $2::pg_catalog.jsonb, context_fields = $3::pg_catalog.text[], batch_dependent = $4,
       rows = $5, input_hash = $6, output_hash = $7, complete = true
 WHERE id = $1`;

const PIN_SQL = `
INSERT INTO provenance.history_pin (target_oid, at, reason) VALUES ($1, $2::pg_catalog.timestamptz, $3) ON CONFLICT DO NOTHING`;

const quote = (s: string): string => `"${s.replace(/"/g, '""')}"`;

/** The JSON of a value as the catalogue keeps it. */
const json = (v: unknown): string => JSON.stringify(v, (_, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));

function cancelled(): PgError {
  return new PgError(SqlState.QueryCanceled, 'canceling statement due to user request');
}

/** The table as the chain reads it, after the checks an as-of read makes. */
async function tableOf(store: SqlRunner, oid: number, moment: AsOfMoment): Promise<{ name: string; history: string; columns: TableColumn[] }> {
  const row = (await store.query(TABLE_SQL, [oid])).rows[0];
  if (row === undefined) throw new PgError('42P01', `relation with OID ${oid} does not exist`);
  const name = `${quote(String(row['schema']))}.${quote(String(row['name']))}`;
  if (row['history'] === null || row['kind'] !== 'r') {
    throw new PgError(SqlState.ObjectNotInPrerequisiteState, `table ${name} is not tracked: its rows as of a moment are not kept`, 'ERROR', {
      hint: `An admin can start its history with SELECT provenance.track('${name.replace(/'/g, "''")}').`,
    });
  }
  if (row['rls'] === true) {
    throw new PgError(SqlState.FeatureNotSupported, `table ${name} has row-level security, which its history does not apply: it cannot be materialised`);
  }
  const since = BigInt(String(row['since']));
  if (moment.atMicros > BigInt(String(row['now']))) throw new PgError('22023', `moment ${moment.at} is in the future`);
  if (moment.atMicros < since) {
    throw new PgError('22023', `moment ${moment.at} is before the history of table ${name} starts: the earliest moment available is ${String(row['since_text'])}`);
  }
  if (row['tracking'] !== true && row['until'] !== null && moment.atMicros >= BigInt(String(row['until']))) {
    throw new PgError('22023', `moment ${moment.at} is after the history of table ${name} ends`);
  }
  const raw = row['columns'];
  const columns = (typeof raw === 'string' ? JSON.parse(raw) : raw) as TableColumn[];
  return { name, history: String(row['history']), columns };
}

/**
 * Makes a materialisation of table `oid` as of the request's moment, in its context, and returns
 * its id. The caller checked who may ask for it; the table's SELECT privilege is checked here for
 * the context's user.
 */
export async function createMaterialization(deps: MaterializeDeps, req: MaterializeRequest): Promise<number> {
  const { store, transforms } = deps;
  const { session: s, oid, moment } = req;
  const ok = (await store.query(PRIVILEGE_SQL, [moment.user, oid])).rows[0]?.['ok'];
  if (ok !== true) throw new PgError(SqlState.InsufficientPrivilege, `permission denied for table with OID ${oid}`);
  const table = await tableOf(store, oid, moment);
  const chain: readonly ChainLink[] | PgError | null = transforms.chainAt?.(oid, moment.atMicros) ?? null;
  if (chain === null) throw new PgError(SqlState.CannotConnectNow, 'the transform registry is not loaded yet: nothing can be materialised');
  if (chain instanceof PgError) throw chain;
  if (transforms.runTable === undefined || transforms.replayContext === undefined) {
    throw new PgError(SqlState.FeatureNotSupported, 'this proxy runs no transforms: nothing can be materialised');
  }
  const id = Number((await store.query(INSERT_SQL, [
    oid, table.name, moment.at, moment.user, s.database, json(chain), `{${table.columns.map((c) => c.attnum).join(',')}}`, req.createdBy, req.reason,
  ])).rows[0]!['id']);
  const storage = `provenance.materialized_${id}`;
  let run: ReturnType<NonNullable<TransformsService['runTable']>> | null = null;
  try {
    await store.exec(`CREATE TABLE ${storage} (${table.columns.map((c) => `${quote(`c${c.attnum}`)} ${c.type}`).join(', ')});
      REVOKE ALL ON ${storage} FROM PUBLIC;
      UPDATE provenance.materialization SET storage = '${storage}' WHERE id = ${id};`);
    const select = table.columns.map((c, i) => `${c.history === null ? 'NULL' : quote(c.history)}::pg_catalog.text AS c${i}`);
    const { rows } = await store.query(`SELECT ${select.join(', ')} FROM ${table.history}
      WHERE $1::pg_catalog.timestamptz OPERATOR(pg_catalog.<@) pg_catalog.tstzrange(provenance_valid_from, provenance_valid_to)`, [moment.at]);
    const fields: FieldDescription[] = table.columns.map((c) => ({
      name: c.name, tableID: oid, columnID: c.attnum, dataTypeID: c.typid, dataTypeSize: c.len, dataTypeModifier: c.typmod, format: 0,
    }));
    run = transforms.runTable(s, oid, moment, fields);
    const size = deps.batchRows ?? DEFAULT_BATCH_ROWS;
    const insert = `INSERT INTO ${storage} SELECT ${table.columns.map((c, i) => `(r OPERATOR(pg_catalog.->>) ${i})::${c.type}`).join(', ')}
      FROM pg_catalog.json_array_elements($1::pg_catalog.json) r`;
    let stored = 0;
    for (let at = 0; at < rows.length || at === 0; at += size) {
      if (req.signal?.aborted) throw cancelled();
      const batch = rows.slice(at, at + size).map((r) => table.columns.map((_, i) => {
        const v = r[`c${i}`];
        return v === null || v === undefined ? null : Buffer.from(String(v), 'utf8');
      }));
      const served = await run.batch(batch);
      if (served.length > 0) await store.query(insert, [JSON.stringify(served.map((r) => r.map((v) => (v === null ? null : v.toString('utf8')))))]);
      stored += served.length;
      req.progress?.(rows.length === 0 ? 100 : Math.floor((Math.min(at + size, rows.length) * 100) / rows.length));
      if (rows.length === 0) break;
    }
    if (req.signal?.aborted) throw cancelled();
    const ended = await run.end('complete');
    run = null;
    const context: Record<string, unknown> = { ...transforms.replayContext(s, moment) };
    context[CLOCK_FIELD] = context['statement_timestamp'];
    const fieldsRead = [...ended.reads.ctx].sort();
    if (ended.reads.clock) fieldsRead.push(CLOCK_FIELD);
    await store.query(COMPLETE_SQL, [id, json(context), `{${fieldsRead.map((f) => quote(f)).join(',')}}`, ended.reads.random, stored, ended.inputHash, ended.outputHash]);
    await store.query(PIN_SQL, [oid, moment.at, `materialization ${id}`]);
    // What an as-of read asks to know whether the table changed since (see exactness.ts).
    await store.exec(`CREATE INDEX IF NOT EXISTS ${quote(`${table.history.replace(/^provenance\./, '').replace(/"/g, '')}_from`)} ON ${table.history} (provenance_valid_from);
      CREATE INDEX IF NOT EXISTS ${quote(`${table.history.replace(/^provenance\./, '').replace(/"/g, '')}_to`)} ON ${table.history} (provenance_valid_to);`);
    return id;
  } catch (err) {
    await run?.end('error').catch(() => undefined);
    await store.exec(`DROP TABLE IF EXISTS ${storage}; DELETE FROM provenance.materialization WHERE id = ${id};`).catch(() => undefined);
    throw err;
  }
}
