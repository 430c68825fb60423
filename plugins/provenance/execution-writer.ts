/**
 * Writes a batch of execution records to the provenance database: with COPY where the connection
 * can (a remote PostgreSQL, see execution-copy.ts), else with the one-statement JSON insert (the
 * embedded database, whose COPY would have to go through a file of its virtual file system). A
 * batch holding a record already stored is written by the insert, which skips it, so a batch may
 * be written again.
 */
import type { SqlRunner } from '../registry/migrate.js';
import type { StoreConnection } from '../services.js';
import { COPY_LOG_SQL, copyLogRows, STORE_PARTS_SQL } from './execution-copy.js';
import { INSERT_EXECUTIONS_SQL, insertExecutionsParams, splitRecords, type ExecutionRecord } from './execution-insert.js';

type Store = SqlRunner & Pick<StoreConnection, 'transaction'>;

/** unique_violation: the COPY met a record already stored. */
const UNIQUE_VIOLATION = '23505';

/**
 * Batches smaller than this take the insert: COPY costs four round trips (BEGIN, the parts, the
 * COPY, COMMIT) against the insert's one, and on a loaded 2-core machine a batch of 1 took 1.5-4.5
 * ms by COPY against 1.0 by the insert, 8 records 4.7-5.0 against 1.7-1.8, 100 records 17-20
 * against 10-12, and 500 records (the recorder's batch: a backlog, the spool written) 46-54
 * against 41-53.
 */
export const COPY_MIN_RECORDS = 500;

export async function writeExecutions(db: Store, records: readonly ExecutionRecord[], copyMin = COPY_MIN_RECORDS): Promise<void> {
  if (db.transaction && records.length >= copyMin) {
    const { shared, own } = splitRecords(records);
    try {
      await db.transaction(async (tx) => {
        const sets = await tx.query(STORE_PARTS_SQL, [JSON.stringify(shared)], 'provenance_store_parts');
        await tx.copyFrom(COPY_LOG_SQL, copyLogRows(own, new Map(sets.rows.map((r) => [Number(r['c']), r]))));
      });
      return;
    } catch (err) {
      if ((err as { code?: unknown } | null)?.code !== UNIQUE_VIOLATION) throw err;
    }
  }
  await db.query(INSERT_EXECUTIONS_SQL, insertExecutionsParams(records), 'provenance_insert_executions');
}
