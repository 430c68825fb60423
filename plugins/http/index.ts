/**
 * The HTTP API (README, "HTTP"): built before the proxy listens, so that its metrics see every
 * session and result from the start; started once the proxy listens, since every request reads
 * through the proxy itself, as its caller.
 */
import type { AddressInfo } from 'node:net';
import type { Plugin } from '../hooks.js';
import type { ProvenanceService, Services } from '../services.js';
import { ProxyMetrics } from './metrics.js';
import { OwnExecutions } from './own-executions.js';
import { buildApp, type HttpListen } from './server.js';

export type { HttpListen } from './server.js';

export interface RunningHttp {
  readonly address: AddressInfo;
  /** `http://…` or `https://…`, for the startup line. */
  readonly url: string;
  close(): Promise<void>;
}

export interface HttpPart {
  /** Counts sessions and statements for /metrics; hooks that only count. */
  readonly plugin: Plugin;
  /** The provenance service as the other plugins are to see it: results are counted on their way. */
  tap(service: ProvenanceService): ProvenanceService;
  start(proxy: { host: string; port: number; database: string }, registryRead: () => boolean): Promise<RunningHttp>;
}

export function createHttpPart(services: Services, listen: HttpListen): HttpPart {
  const metrics = new ProxyMetrics(services);
  const own = new OwnExecutions();
  return {
    plugin: metrics.plugin(),
    tap: (service) => own.tap(service, (r) => metrics.executed(r)),
    async start(proxy, registryRead) {
      // A proxy listening on every address is reached on loopback.
      const host = proxy.host === '0.0.0.0' ? '127.0.0.1' : proxy.host === '::' ? '::1' : proxy.host;
      const app = buildApp({ proxy: { ...proxy, host }, services, own, metrics, registryRead }, listen.tls);
      await app.listen({ host: listen.host, port: listen.port });
      const address = app.server.address() as AddressInfo;
      const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      return { address, url: `${listen.tls ? 'https' : 'http'}://${shown}:${address.port}`, close: () => app.close() };
    },
  };
}
