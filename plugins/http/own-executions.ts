/**
 * The executions a request's own read caused. The HTTP part sees every result handed to
 * provenance (it wraps the service): for its own sessions, known by their client port, it counts
 * the executions reported, then reads their ids back from the records once that many are written.
 */
import type { SqlRunner } from '../registry/migrate.js';
import type { ProvenanceService, ResultExecutions } from '../services.js';
import { chainOrder } from './lineage.js';

/** How long a request waits for its records to reach the database (async durability writes within ~50 ms). */
const WAIT_MS = 3_000;

const OWN = `
SELECT e.id::text AS id, e.parent_id::text AS parent_id FROM provenance.execution e
 WHERE e.application_name = 'http' AND e.client_port = $1 AND e.executed_at >= $2
 ORDER BY e.executed_at, e.id`;

export class OwnExecutions {
  /** Executions reported per client port of an HTTP session that is reading. */
  private readonly reported = new Map<number, number>();

  /** The service as the plugins see it: every result still goes to provenance, unchanged. */
  tap(service: ProvenanceService, observe: (r: ResultExecutions) => void): ProvenanceService {
    const reported = this.reported;
    return {
      get recording() {
        return service.recording;
      },
      record(s, r) {
        observe(r);
        const n = s.applicationName === 'http' ? reported.get(s.clientPort) : undefined;
        if (n !== undefined) reported.set(s.clientPort, n + r.executions.length);
        return service.record(s, r);
      },
      ...(service.backlog ? { backlog: () => service.backlog!() } : {}),
      ...(service.records ? { records: () => service.records!() } : {}),
    };
  }

  /** Starts counting for a session (its client port) before it reads. */
  begin(port: number): void {
    this.reported.set(port, 0);
  }

  /** Stops counting for a session. */
  forget(port: number): void {
    this.reported.delete(port);
  }

  /** The ids of the executions reported since begin(), as recorded; stops counting. */
  async since(port: number, startedAt: Date, store: SqlRunner | null): Promise<string[]> {
    // Results are reported once their CommandComplete went out: let the event loop hand them over.
    await new Promise((r) => setImmediate(r));
    const expected = this.reported.get(port) ?? 0;
    this.reported.delete(port);
    if (expected === 0 || store === null) return [];
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const rows = (await store.query(OWN, [port, startedAt.toISOString()])).rows;
      if (rows.length >= expected || Date.now() > deadline) return chainOrder(rows).map((r) => String(r['id']));
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}
