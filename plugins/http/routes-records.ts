/**
 * `/executions/{id}`: one execution record, read in the caller's session, so only those who may
 * read `provenance.executions` over psql (provenance_admin) read it here. `/results/{id}/replay`
 * runs a recorded read again as of its moment (replay.ts).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { withCaller } from './caller.js';
import { behalfOf, callerOf, type HttpContext } from './context.js';
import { HttpError } from './errors.js';
import { replayResult } from './replay.js';

const EXECUTION = `SELECT e.*, pg_catalog.to_jsonb(e.columns)::text AS columns, pg_catalog.to_jsonb(e.roles)::text AS roles
  FROM provenance.executions e WHERE e.id = $1::uuid`;

/** Columns whose text is JSON, and numbers JSON can hold exactly. */
const JSON_COLUMNS = new Set(['params', 'roles', 'columns']);
const NUMBER_COLUMNS = new Set(['transform_version', 'rows_in', 'rows_out', 'duration_ms', 'table_oid', 'client_port']);

type IdRequest = FastifyRequest<{ Params: { id: string } }>;

export function recordRoutes(app: FastifyInstance, ctx: HttpContext): void {
  app.get('/executions/:id', async (req: IdRequest) => {
    const who = callerOf(req);
    const row = await withCaller(ctx.proxy, who, behalfOf(ctx, req), async (s) => (await s.query(EXECUTION, [req.params.id])).rows[0]);
    if (!row) throw new HttpError(404, '02000', `no execution ${req.params.id}`);
    return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, recordValue(k, v)]));
  });

  app.post('/results/:id/replay', async (req: IdRequest) => replayResult(ctx, callerOf(req), behalfOf(ctx, req), req.params.id));
}

function recordValue(column: string, text: string | null): unknown {
  if (text === null) return null;
  if (JSON_COLUMNS.has(column)) return JSON.parse(text) as unknown;
  if (NUMBER_COLUMNS.has(column)) return Number(text);
  if (column === 'chain_end') return text === 't';
  return text;
}
