/**
 * The proxy's metrics in the Prometheus text format (prom-client): what sessions and statements
 * pass through the seam, what transforms ran (from the results handed to provenance), and the
 * replay cache's and provenance's own counts, read from their services when scraped.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Plugin, SessionInfo, StatementTrace } from '../hooks.js';
import type { ResultExecutions, Services } from '../services.js';

export class ProxyMetrics {
  readonly registry = new Registry();
  private readonly sessions = new Gauge({ name: 'provenance_proxy_sessions', help: 'Client sessions open now', registers: [this.registry] });
  private readonly statements = new Counter({ name: 'provenance_proxy_statements_total', help: 'Client statements run', registers: [this.registry] });
  private readonly errors = new Counter({
    name: 'provenance_proxy_errors_total', help: 'Client statements that failed, by SQLSTATE', labelNames: ['sqlstate'], registers: [this.registry],
  });
  private readonly executions = new Counter({
    name: 'provenance_proxy_transform_executions_total', help: 'Transform executions', labelNames: ['transform', 'kind'], registers: [this.registry],
  });
  private readonly duration = new Histogram({
    name: 'provenance_proxy_transform_duration_seconds', help: 'Time one transform execution took over its result',
    labelNames: ['transform'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers: [this.registry],
  });
  constructor(services: Services) {
    collectDefaultMetrics({ register: this.registry, prefix: 'provenance_proxy_' });
    new Counter({
      name: 'provenance_proxy_replay_cache_total', help: 'Replayed batches served from the replay cache (hit) or run in the sandbox (miss)',
      labelNames: ['outcome'], registers: [this.registry],
      collect() {
        const stats = services.transforms?.replayCache() ?? { hits: 0, misses: 0 };
        this.reset();
        this.inc({ outcome: 'hit' }, stats.hits);
        this.inc({ outcome: 'miss' }, stats.misses);
      },
    });
    const backlog = (which: 'queued' | 'spooled') => (): number => services.provenance?.backlog?.()[which] ?? 0;
    new Gauge({
      name: 'provenance_proxy_provenance_queue', help: 'Execution records in memory, not yet written', registers: [this.registry],
      collect() { this.set(backlog('queued')()); },
    });
    new Gauge({
      name: 'provenance_proxy_provenance_spool', help: 'Execution records in the spool file, waiting for the database', registers: [this.registry],
      collect() { this.set(backlog('spooled')()); },
    });
  }

  executed(r: ResultExecutions): void {
    for (const e of r.executions) {
      this.executions.inc({ transform: e.transform.name, kind: r.kind });
      this.duration.observe({ transform: e.transform.name }, e.durationMs / 1000);
    }
  }

  /** The seam's view of sessions and statements; its hooks are synchronous and only count. */
  plugin(): Plugin {
    return {
      name: 'metrics',
      order: 1_000,
      sessionStart: () => this.sessions.inc(),
      sessionEnd: () => this.sessions.dec(),
      statementEnd: (_s: SessionInfo, t: StatementTrace) => {
        this.statements.inc();
        if (t.errorCode !== null) this.errors.inc({ sqlstate: t.errorCode });
      },
    };
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
