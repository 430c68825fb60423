/**
 * Writes a batch of execution records to the provenance database: with COPY where the connection
 * can (a remote PostgreSQL, see execution-copy.ts), else with the one-statement JSON insert (the
 * embedded database: its single backend is every client session's too, where a stage table of the
 * proxy's would be seen, and dropped by a client's DISCARD). Either way a record already stored is
 * skipped, so a batch may be written again.
 */
import type { SqlRunner } from '../registry/migrate.js';
import type { StoreConnection } from '../services.js';
import { COPY_STAGE_SQL, CREATE_STAGE_SQL, copyStageRows, MOVE_STAGE_SQL } from './execution-copy.js';
import { INSERT_EXECUTIONS_SQL, insertExecutionsParams, type ExecutionRecord } from './execution-insert.js';

type Store = SqlRunner & Pick<StoreConnection, 'copyIn'>;

export class ExecutionWriter {
  /** Per connection: whether its stage table exists (false: it could not be made; the JSON insert serves). */
  private readonly stages = new WeakMap<Store, boolean>();

  constructor(private readonly log: (msg: string) => void) {}

  async write(db: Store, records: readonly ExecutionRecord[]): Promise<void> {
    if (db.copyIn && await this.staged(db)) {
      await db.copyIn(COPY_STAGE_SQL, copyStageRows(records), MOVE_STAGE_SQL);
      return;
    }
    await db.query(INSERT_EXECUTIONS_SQL, insertExecutionsParams(records), 'provenance_insert_executions');
  }

  private async staged(db: Store): Promise<boolean> {
    const known = this.stages.get(db);
    if (known !== undefined) return known;
    try {
      await db.exec(CREATE_STAGE_SQL);
      this.stages.set(db, true);
      return true;
    } catch (err) {
      // A role without TEMPORARY on the database: the insert needs no table of its own.
      if (!isTempDenied(err)) throw err;
      this.log(`provenance: cannot create a temporary table to COPY execution records through (${String(err)}); inserting them instead`);
      this.stages.set(db, false);
      return false;
    }
  }
}

function isTempDenied(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === '42501';
}
