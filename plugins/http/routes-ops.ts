/** What needs no credentials (it shows no table data): `/healthz`, `/metrics`, and the page at `/`. */
import type { FastifyInstance } from 'fastify';
import type { HttpContext } from './context.js';
import { PAGE } from './page.js';
import type { SqlRunner } from '../registry/migrate.js';

const CHECK_MS = 2_000;

async function answers(store: SqlRunner, what: string): Promise<string | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((r) => (timer = setTimeout(() => r(`${what} did not answer within ${CHECK_MS / 1000}s`), CHECK_MS)));
  try {
    return await Promise.race([store.query('SELECT 1').then(() => null, (err: unknown) => `${what} failed: ${err instanceof Error ? err.message : String(err)}`), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Why the proxy cannot serve now, or null when the upstream and the provenance store answer. */
async function unhealthy(ctx: HttpContext): Promise<string | null> {
  const { state, provenance } = ctx.services;
  const store = state.current();
  if (store === null) return `the upstream is not connected${state.problem() ? `: ${state.problem()}` : ''}`;
  const upstream = await answers(store, 'the upstream');
  if (upstream) return upstream;
  if (!ctx.registryRead()) return 'the transform registry is not read yet';
  if (provenance?.records) {
    const records = provenance.records();
    if (records === null && provenance.backlog) return 'the provenance store is not connected';
    if (records !== null && records !== store) return await answers(records, 'the provenance store');
  }
  return null;
}

export function opsRoutes(app: FastifyInstance, ctx: HttpContext): void {
  app.get('/healthz', async (_req, reply) => {
    const reason = await unhealthy(ctx);
    if (reason === null) return { status: 'ok' };
    return reply.code(503).send({ code: '57P03', message: reason });
  });
  app.get('/metrics', async (_req, reply) => reply.type(ctx.metrics.registry.contentType).send(await ctx.metrics.text()));
  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(PAGE));
}
