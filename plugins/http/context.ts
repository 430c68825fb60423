/** What every route of the HTTP part works with. */
import type { FastifyRequest } from 'fastify';
import { basicCredentials, type Credentials } from './auth.js';
import type { OnBehalfOf, ProxyAddress } from './caller.js';
import type { ProxyMetrics } from './metrics.js';
import type { OwnExecutions } from './own-executions.js';
import type { Services } from '../services.js';

export interface HttpContext {
  /** Where this proxy takes client sessions: requests read through it as their caller. */
  readonly proxy: ProxyAddress;
  readonly services: Services;
  readonly own: OwnExecutions;
  readonly metrics: ProxyMetrics;
  /** Whether the transform registry was read (until then table data is refused, 57P03). */
  readonly registryRead: () => boolean;
}

export function callerOf(req: FastifyRequest): Credentials {
  return basicCredentials(req.headers.authorization);
}

/** The request's caller as its session's records are to name it: the HTTP peer's address and port. */
export function behalfOf(ctx: HttpContext, req: FastifyRequest): OnBehalfOf {
  const address = req.socket.remoteAddress ?? '';
  return {
    caller: { address: address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address, port: req.socket.remotePort ?? 0 },
    own: ctx.services.ownConnections,
  };
}

/** Whether the Accept header asks for CSV (before JSON, when it names both). */
export function wantsCsv(req: FastifyRequest): boolean {
  const accept = req.headers.accept ?? '';
  return /\btext\/csv\b/i.test(accept) && !/\bapplication\/json\b/i.test(accept.split('text/csv')[0] ?? '');
}
