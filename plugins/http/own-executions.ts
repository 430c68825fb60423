/**
 * The executions a request's own read caused. The HTTP part sees every result handed to
 * provenance (it wraps the service): for its own sessions, known by the HTTP caller's address and
 * port they carry (see proxy/own-connections.ts), it counts the executions reported, then reads
 * their ids back from the records once that many are written.
 */
import type { SqlRunner } from '../registry/migrate.js';
import type { Endpoint, ProvenanceService, ResultExecutions } from '../services.js';
import { chainOrder } from './lineage.js';

/** How long a request waits for its records to reach the database (async durability writes within ~50 ms). */
const WAIT_MS = 3_000;

const OWN = `
SELECT e.id::text AS id, e.parent_id::text AS parent_id FROM provenance.execution e
 WHERE e.application_name = 'http' AND e.client_addr = $1 AND e.client_port = $2 AND e.executed_at >= $3
 ORDER BY e.executed_at, e.id`;

export class OwnExecutions {
  /** Executions reported per caller (address and port) of an HTTP session that is reading. */
  private readonly reported = new Map<string, number>();

  /** The service as the plugins see it: every result still goes to provenance, unchanged. */
  tap(service: ProvenanceService, observe: (r: ResultExecutions) => void): ProvenanceService {
    const reported = this.reported;
    return {
      get recording() {
        return service.recording;
      },
      record(s, r) {
        observe(r);
        const key = s.applicationName === 'http' ? keyOf({ address: s.clientAddress, port: s.clientPort }) : null;
        const n = key === null ? undefined : reported.get(key);
        if (key !== null && n !== undefined) reported.set(key, n + r.executions.length);
        return service.record(s, r);
      },
      ...(service.backlog ? { backlog: () => service.backlog!() } : {}),
      ...(service.records ? { records: () => service.records!() } : {}),
    };
  }

  /** Starts counting for a caller's session before it reads. */
  begin(caller: Endpoint): void {
    this.reported.set(keyOf(caller), 0);
  }

  /** Stops counting for a caller's session. */
  forget(caller: Endpoint): void {
    this.reported.delete(keyOf(caller));
  }

  /** The ids of the executions reported since begin(), as recorded; stops counting. */
  async since(caller: Endpoint, startedAt: Date, store: SqlRunner | null): Promise<string[]> {
    // Results are reported once their CommandComplete went out: let the event loop hand them over.
    await new Promise((r) => setImmediate(r));
    const expected = this.reported.get(keyOf(caller)) ?? 0;
    this.reported.delete(keyOf(caller));
    if (expected === 0 || store === null) return [];
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const rows = (await store.query(OWN, [caller.address, caller.port, startedAt.toISOString()])).rows;
      if (rows.length >= expected || Date.now() > deadline) return chainOrder(rows).map((r) => String(r['id']));
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

function keyOf(e: Endpoint): string {
  return `${e.address}|${e.port}`;
}
