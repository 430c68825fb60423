/**
 * The HTTP server (fastify: a well-kept router that streams replies and serves HTTPS itself):
 * routes, and one error handler so that every failure is `{ code, message }` with its status.
 */
import { readFileSync } from 'node:fs';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { REALM } from './auth.js';
import type { HttpContext } from './context.js';
import { HttpError } from './errors.js';
import { dataRoutes } from './routes-data.js';
import { opsRoutes } from './routes-ops.js';
import { recordRoutes } from './routes-records.js';

export interface HttpListen {
  readonly host: string;
  readonly port: number;
  /** PEM files: serve HTTPS. */
  readonly tls: { readonly cert: string; readonly key: string } | null;
}

export function buildApp(ctx: HttpContext, tls: HttpListen['tls']): FastifyInstance {
  // Errors of the router itself (a malformed URL, say) are answered in the same shape as the others.
  const frameworkErrors = (err: Error, _req: unknown, reply: FastifyReply): void => {
    const e = requestError(err) ?? new HttpError(400, '22023', 'bad request');
    void reply.code(e.status).send(e.body());
  };
  const app = (tls
    ? Fastify({ https: { cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, frameworkErrors })
    : Fastify({ frameworkErrors })) as FastifyInstance;
  app.setErrorHandler((err, _req, reply) => {
    const e = err instanceof HttpError ? err : requestError(err);
    if (e === null) {
      ctx.services.log(`http: ${err instanceof Error ? err.message : String(err)}`);
      return reply.code(500).send({ code: 'XX000', message: 'internal error' });
    }
    if (e.status === 401) reply.header('www-authenticate', `Basic realm="${REALM}", charset="UTF-8"`);
    return reply.code(e.status).send(e.body());
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ code: '42704', message: `no endpoint ${req.method} ${req.url.split('?')[0]}` }));
  opsRoutes(app, ctx);
  dataRoutes(app, ctx);
  recordRoutes(app, ctx);
  return app;
}

/**
 * An error fastify met reading the request itself (a body it cannot parse, of a type it does not
 * take, too large): its own status, with the SQLSTATE closest to it.
 */
function requestError(err: unknown): HttpError | null {
  const status = (err as { statusCode?: unknown }).statusCode;
  if (typeof status !== 'number' || status < 400 || status > 499) return null;
  const code = status === 413 ? '54000' : status === 415 ? '0A000' : '22023';
  return new HttpError(status, code, err instanceof Error ? err.message : 'bad request');
}
