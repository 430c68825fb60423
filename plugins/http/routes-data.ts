/**
 * `/data/{table}[/{key}]` and `/lineage/{table}[/{key}]`: a read of the table through the proxy as
 * the caller, as of a moment if asked; the lineage is that same read's DAG.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CallerSession, withCaller } from './caller.js';
import { behalfOf, callerOf, wantsCsv, type HttpContext } from './context.js';
import { HttpError } from './errors.js';
import { dotOf, lineageOf, svgOf } from './lineage.js';
import { paging, readAsOf } from './moment.js';
import { readBody } from './read.js';
import { keyValues, rawLastSegment, readSql, resolveTable } from './table.js';

interface ReadQuery {
  as_of?: string;
  limit?: string;
  offset?: string;
  format?: string;
}

interface ReadParams {
  table: string;
  key?: string;
}

type ReadRequest = FastifyRequest<{ Params: ReadParams; Querystring: ReadQuery }>;

interface StartedRead {
  readonly object: string;
  readonly asOf: string | null;
  readonly body: AsyncGenerator<string>;
  /** The executions the read caused, once its body has ended. */
  readonly executions: () => readonly string[];
}

/** Opens the caller's session and starts the read; the session closes when the body ends (or is abandoned). */
async function startRead(ctx: HttpContext, req: ReadRequest, format: 'json' | 'csv'): Promise<StartedRead> {
  const who = callerOf(req);
  if (!ctx.registryRead()) throw new HttpError(503, '57P03', 'the transform registry is not read yet: table data is refused until it is');
  const page = paging(req.query);
  const behalf = behalfOf(ctx, req);
  const caller = behalf.caller;
  const session = await CallerSession.open(ctx.proxy, who, behalf);
  try {
    const table = await resolveTable(session, req.params.table);
    const asOf = await readAsOf(session, req.query.as_of, ctx.services.timetravel !== undefined);
    const byKey = req.params.key !== undefined;
    const params = byKey ? keyValues(table, rawLastSegment(req.url)) : [page.limit, page.offset];
    const startedAt = new Date(Date.now() - 1);
    ctx.own.begin(caller);
    let ids: string[] = [];
    const body = await readBody({
      session, table, sql: readSql(table, byKey), params, asOf, format, single: byKey,
      executions: async () => (ids = await ctx.own.since(caller, startedAt, ctx.services.provenance?.records?.() ?? null)),
    });
    async function* closing(): AsyncGenerator<string> {
      try {
        yield* body;
      } finally {
        ctx.own.forget(caller);
        await session.close();
      }
    }
    return { object: table.name, asOf, body: closing(), executions: () => ids };
  } catch (err) {
    ctx.own.forget(caller);
    await session.close();
    throw err;
  }
}

const TABLES = `
SELECT n.nspname OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) c.relname AS name
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
 WHERE c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p', 'v', 'm', 'f']::"char"[])
   AND n.nspname OPERATOR(pg_catalog.<>) ALL (ARRAY['pg_catalog', 'information_schema', 'provenance'])
   AND n.nspname NOT LIKE 'pg\\_%' AND pg_catalog.has_table_privilege(c.oid, 'SELECT')
 ORDER BY 1`;

export function dataRoutes(app: FastifyInstance, ctx: HttpContext): void {
  // The tables the caller may read, for the page's picker.
  app.get('/tables', async (req) => {
    const rows = await withCaller(ctx.proxy, callerOf(req), behalfOf(ctx, req), async (s) => (await s.query(TABLES)).rows);
    return rows.map((r) => r['name']);
  });

  const data = async (req: ReadRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const csv = wantsCsv(req);
    const read = await startRead(ctx, req, csv ? 'csv' : 'json');
    reply.header('content-type', csv ? 'text/csv; charset=utf-8' : 'application/json; charset=utf-8');
    return reply.send(Readable.from(read.body));
  };
  app.get('/data/:table', data);
  app.get('/data/:table/:key', data);

  const lineage = async (req: ReadRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const format = req.query.format ?? 'json';
    if (format !== 'json' && format !== 'dot' && format !== 'svg') {
      throw new HttpError(400, '22023', `invalid format "${format}": expected json, dot or svg`);
    }
    // The read whose DAG this is runs as a data read would; its rows are not sent.
    const read = await startRead(ctx, req, 'json');
    for await (const chunk of read.body) void chunk;
    const graph = await lineageOf(ctx.services.provenance?.records?.() ?? null, read.executions(), {
      object: read.object, asOf: read.asOf, key: req.params.key ?? null,
    });
    if (format === 'json') return reply.send(graph);
    if (format === 'dot') return reply.type('text/vnd.graphviz; charset=utf-8').send(dotOf(graph));
    return reply.type('image/svg+xml').send(await svgOf(graph));
  };
  app.get('/lineage/:table', lineage);
  app.get('/lineage/:table/:key', lineage);
}
