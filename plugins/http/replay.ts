/**
 * `POST /results/{result_id}/replay`: a recorded read run again as of its own moment, in the
 * context of its recorded user (README, "HTTP"). The exact statement comes from the records
 * (migration 13: only provenance_admin reads it); the caller's session then reads as of the moment
 * the statement went upstream, as that user (`SET provenance.as_of`, `provenance.as_user`), so
 * time travel serves the rows of then through the transforms of then and refuses what it cannot
 * serve (a write is 25006); provenance records each replayed execution and checks it against
 * the read it repeats (`verified`). A chunk of a portal is replayed as replay-chunks.ts says.
 */
import type { SqlRunner } from '../registry/migrate.js';
import { CallerSession, type OnBehalfOf } from './caller.js';
import type { Credentials } from './auth.js';
import type { HttpContext } from './context.js';
import { HttpError, toHttpError } from './errors.js';
import { ExactQuery, type ExactResult, type RecordedStatement } from './exact-query.js';
import { jsonValue, type JsonValue } from './values.js';
import { chunkLimits, nextMillisecond, type RecordedChunk } from './replay-chunks.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const RECORDED = `
SELECT e.kind, e.exact_key IS NOT NULL AS recorded, x.user_name,
       pg_catalog.to_char(e.statement_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at,
       q.statement_text, q.refusal, pg_catalog.array_to_json(q.param_types)::text AS types,
       pg_catalog.array_to_json(q.param_formats)::text AS formats,
       (SELECT pg_catalog.json_agg(pg_catalog.encode(u.v, 'hex') ORDER BY u.i)
          FROM pg_catalog.unnest(q.param_values) WITH ORDINALITY u(v, i))::text AS params,
       q.chunk, q.chunk_offset::text AS chunk_offset, x.session_id, q.query_statement, q.query_statements,
       pg_catalog.to_char(q.portal_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS portal_at,
       (SELECT pg_catalog.max(r.rows_in) FROM provenance.execution_log r WHERE r.result_id = e.result_id)::text AS rows
  FROM provenance.execution_log e
  JOIN provenance.execution_context x ON x.key = e.context_key
  LEFT JOIN provenance.exact_statement q ON q.key = e.exact_key
 WHERE e.result_id = $1::uuid
 ORDER BY e.executed_at LIMIT 1`;

const REPLAYED = `
SELECT e.id::text AS id, e.transform_name, e.transform_version, e.table_name, e.replay_of::text AS replay_of, e.verified
  FROM provenance.execution e WHERE e.id = ANY ($1::uuid[])`;

const ADMIN = `SELECT CASE WHEN pg_catalog.to_regrole('provenance_admin') IS NULL THEN false
                 ELSE pg_catalog.pg_has_role(current_user, 'provenance_admin', 'MEMBER') END AS ok`;

const TYPE_NAMES = `SELECT pg_catalog.format_type(t.oid, NULL) AS type
  FROM pg_catalog.unnest($1::oid[]) WITH ORDINALITY t(oid, i) ORDER BY t.i`;

export interface ReplayAnswer {
  readonly result_id: string;
  readonly as_of: string;
  readonly user: string;
  readonly statement: string;
  readonly columns: { name: string; type: string }[];
  readonly rows: Record<string, JsonValue>[];
  /** For a chunk of a portal: which Execute of it, and the rows before it. */
  readonly chunk?: { readonly index: number; readonly offset: number };
  /** For a statement of a simple Query of several (`statement` is its own text): which, of how many. */
  readonly query_statement?: { readonly index: number; readonly of: number };
  readonly executions: {
    id: string; transform: string; version: number; table: string; replay_of: string | null; verified: boolean | null;
  }[];
}

interface Recorded {
  readonly statement: RecordedStatement;
  readonly at: string;
  readonly user: string;
  readonly chunk: RecordedChunk | null;
  readonly inQuery: { readonly index: number; readonly of: number } | null;
}

/** The statement behind a recorded result, or the HTTP error saying why it cannot be replayed. */
async function recordedStatement(store: SqlRunner, id: string): Promise<Recorded> {
  const row = (await store.query(RECORDED, [id])).rows[0];
  if (!row) throw new HttpError(404, '02000', `no recorded result ${id}`);
  if (row['kind'] !== 'read') throw new HttpError(409, '55000', `result ${id} is itself a replay: replay the read it repeats`);
  if (row['recorded'] !== true) {
    throw new HttpError(409, '55000', `result ${id} cannot be replayed: its statement was not recorded (the proxy that served it ran with --record-statements off)`);
  }
  const refusal = row['refusal'];
  if (typeof refusal === 'string') throw new HttpError(409, '55000', `result ${id} cannot be replayed: ${refusal}`);
  const json = <T>(v: unknown, empty: T): T => (typeof v === 'string' ? (JSON.parse(v) as T) : empty);
  const chunk = row['chunk'] === null || row['chunk'] === undefined ? null : {
    index: Number(row['chunk']), offset: Number(row['chunk_offset']), rows: Number(row['rows'] ?? 0),
    portalAt: String(row['portal_at']), sessionId: String(row['session_id']),
  };
  return {
    statement: {
      text: String(row['statement_text']),
      paramTypes: json<number[]>(row['types'], []),
      paramFormats: json<number[]>(row['formats'], []),
      params: json<(string | null)[]>(row['params'], []).map((h) => (h === null ? null : Buffer.from(h, 'hex'))),
    },
    // Every chunk of a portal reads its snapshot: the one of its first Execute.
    at: chunk?.portalAt ?? String(row['at']),
    user: String(row['user_name']),
    chunk,
    inQuery: row['query_statement'] === null || row['query_statement'] === undefined ? null
      : { index: Number(row['query_statement']), of: Number(row['query_statements']) },
  };
}

export async function replayResult(ctx: HttpContext, who: Credentials, behalf: OnBehalfOf, id: string): Promise<ReplayAnswer> {
  if (!UUID.test(id)) throw new HttpError(400, '22P02', `invalid result id "${id}": expected a uuid`);
  const session = await CallerSession.open(ctx.proxy, who, behalf);
  try {
    if ((await session.query(ADMIN)).rows[0]?.['ok'] !== 't') {
      throw new HttpError(403, '42501', 'replaying a recorded result takes membership in provenance_admin');
    }
    if (!ctx.registryRead()) throw new HttpError(503, '57P03', 'the transform registry is not read yet: table data is refused until it is');
    const store = ctx.services.provenance?.records?.() ?? null;
    if (store === null) throw new HttpError(503, '57P03', 'the provenance records cannot be read now');
    const recorded = await recordedStatement(store, id).catch((err: unknown) => {
      throw toHttpError(err, 'setup');
    });
    if (ctx.services.timetravel === undefined) throw new HttpError(501, '0A000', 'this proxy has no time travel: a replay cannot be served');
    // Both values are the server's own quoting of what the records hold: nothing of the URL.
    const quoted = (await session.query('SELECT pg_catalog.quote_literal($1) AS at, pg_catalog.quote_literal($2) AS who', [recorded.at, recorded.user])).rows[0];
    await session.query(`SET provenance.as_of = ${String(quoted?.['at'])}`);
    await session.query(`SET provenance.as_user = ${String(quoted?.['who'])}`).catch((err: unknown) => {
      const e = toHttpError(err, 'setup');
      throw e.code === '42704' ? new HttpError(409, '55000', `result ${id} cannot be replayed: its user ${recorded.user} no longer exists`) : e;
    });
    const limits = recorded.chunk ? await chunkLimits(store, recorded.chunk, recorded.statement.text).catch((err: unknown) => {
      throw toHttpError(err, 'setup');
    }) : [0];
    let startedAt = new Date(Date.now() - 1);
    ctx.own.begin(behalf.caller);
    // Earlier chunks replayed on the way are results of their own: the answer is the last one's.
    const lastChunk = async (): Promise<void> => {
      startedAt = await nextMillisecond();
      ctx.own.begin(behalf.caller);
    };
    let result: ExactResult;
    try {
      result = await session.submit(new ExactQuery(recorded.statement, limits, lastChunk)).done;
    } catch (err) {
      ctx.own.forget(behalf.caller);
      throw toHttpError(err, 'read');
    }
    const ids = await ctx.own.since(behalf.caller, startedAt, store);
    const replayed = ids.length > 0 ? (await store.query(REPLAYED, [ids])).rows : [];
    const byId = new Map(replayed.map((r) => [String(r['id']), r]));
    await session.query('RESET provenance.as_of');
    const types = (await session.query(TYPE_NAMES, [`{${result.types.join(',')}}`])).rows.map((r) => String(r['type']));
    return {
      result_id: id,
      as_of: recorded.at,
      user: recorded.user,
      statement: recorded.statement.text,
      ...(recorded.chunk ? { chunk: { index: recorded.chunk.index, offset: recorded.chunk.offset } } : {}),
      ...(recorded.inQuery ? { query_statement: recorded.inQuery } : {}),
      columns: result.names.map((name, i) => ({ name, type: types[i] ?? 'unknown' })),
      rows: result.rows.map((row) => {
        const o: Record<string, JsonValue> = {};
        result.names.forEach((name, i) => (o[name] = jsonValue(result.types[i] ?? 0, row[i] ?? null)));
        return o;
      }),
      executions: ids.flatMap((e) => {
        const r = byId.get(e);
        if (!r) return [];
        return [{
          id: e, transform: String(r['transform_name']), version: Number(r['transform_version']), table: String(r['table_name']),
          replay_of: r['replay_of'] === null ? null : String(r['replay_of']), verified: r['verified'] === null ? null : r['verified'] === true,
        }];
      }),
    };
  } finally {
    await session.close();
  }
}
