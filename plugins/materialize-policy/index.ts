/**
 * Materialisation policies, as a part of the proxy: it sees every result handed to provenance (it
 * wraps the service, changing nothing of what is recorded) and keeps a timer for the periodic
 * rules. It offers no hooks on the data path: a session pays nothing for it.
 */
import type { ProvenanceService, Services } from '../services.js';
import { PolicyRunner, type MakeMaterialization } from './runner.js';

export interface MaterializePolicyPart {
  /** The provenance service as the plugins see it: every result still goes to it, unchanged. */
  tap(service: ProvenanceService): ProvenanceService;
  close(): Promise<void>;
}

export function createMaterializePolicyPart(services: Services, make: MakeMaterialization | null, database: () => string, tickMs?: number): MaterializePolicyPart {
  const runner = new PolicyRunner({
    store: () => services.state.current(),
    make,
    roles: (user) => services.roles(user),
    database,
    log: services.log,
    cacheCounts: () => services.transforms?.takeReplayCacheCounts?.() ?? new Map(),
    ...(tickMs !== undefined ? { tickMs } : {}),
  });
  return {
    tap: (service) => ({
      get recording() {
        return service.recording;
      },
      record(s, r) {
        const recorded = service.record(s, r);
        runner.observe(s, r);
        return recorded;
      },
      ...(service.backlog ? { backlog: () => service.backlog!() } : {}),
      ...(service.records ? { records: () => service.records!() } : {}),
    }),
    close: () => runner.close(),
  };
}
