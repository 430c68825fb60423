/**
 * Writes a batch of execution records to the provenance database: with COPY where the connection
 * can (a remote PostgreSQL, see execution-copy.ts), else with the one-statement JSON insert (the
 * embedded database, whose COPY would have to go through a file of its virtual file system). A
 * batch holding a record already stored is written by the insert, which skips it, so a batch may
 * be written again.
 *
 * The insert names the transforms, contexts and statements it knows stored by their keys
 * (known-parts.ts); a batch with one it does not know stores every part by content, in the same
 * statement, and learns their keys (a new session's first batch, a new statement's).
 */
import type { SqlRunner } from '../registry/migrate.js';
import type { StoreConnection } from '../services.js';
import { COPY_LOG_SQL, copyLogRows, partKeys, STORE_PARTS_SQL, type PartKeys } from './execution-copy.js';
import {
  INSERT_EXECUTIONS_LEARNING_SQL, INSERT_NAMED_EXECUTIONS_SQL, splitRecords, type ExecutionRecord, type SplitRecords,
} from './execution-insert.js';
import { partContent, type PartName } from './execution-parts.js';
import { knownParts, type KnownParts } from './known-parts.js';

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

const NAMED: readonly PartName[] = ['t', 'x', 's'];

export async function writeExecutions(db: Store, records: readonly ExecutionRecord[], copyMin = COPY_MIN_RECORDS): Promise<void> {
  const known = knownParts(db);
  try {
    await write(db, splitRecords(records), records.length >= copyMin, known);
  } catch (err) {
    known.forget();
    throw err;
  }
}

async function write(db: Store, split: SplitRecords, copy: boolean, known: KnownParts): Promise<void> {
  if (db.transaction && copy) {
    try {
      let keys: PartKeys | null = null;
      await db.transaction(async (tx) => {
        keys = partKeys((await tx.query(STORE_PARTS_SQL, [JSON.stringify(split.parts)], 'provenance_store_parts')).rows);
        await tx.copyFrom(COPY_LOG_SQL, copyLogRows(split.own, keys));
      });
      // Only once committed: a rolled-back transaction stored no part.
      if (keys !== null) learn(known, split, keys);
      return;
    } catch (err) {
      if ((err as { code?: unknown } | null)?.code !== UNIQUE_VIOLATION) throw err;
    }
  }
  const named = namedKeys(known, split);
  if (named !== null) {
    // The rows are this batch's own (splitRecords made them): named in place, without a copy each.
    for (const e of split.own) {
      e['tk'] = named.t[e['t'] as number];
      e['ck'] = named.x[e['x'] as number];
      e['sk'] = named.s[e['s'] as number];
    }
    const keys = [[...new Set(named.t)], [...new Set(named.x)], [...new Set(named.s)]];
    const expected = keys.reduce((n, k) => n + k.length, 0);
    const r = await db.query(INSERT_NAMED_EXECUTIONS_SQL, [JSON.stringify(split.own), JSON.stringify({ q: split.parts.q }), ...keys, expected],
      'provenance_insert_named_executions');
    if (Number(r.rows[0]?.['present']) === expected) return;
    // A part known stored is not there any more: nothing was written, and nothing known is trusted.
    known.forget();
  }
  const params = [JSON.stringify(split.own), JSON.stringify(split.parts)];
  learn(known, split, partKeys((await db.query(INSERT_EXECUTIONS_LEARNING_SQL, params, 'provenance_insert_executions_learning')).rows));
}

/** The keys of the batch's transforms, contexts and statements, when all are known stored. */
function namedKeys(known: KnownParts, split: SplitRecords): Readonly<Record<'t' | 'x' | 's', readonly string[]>> | null {
  const out: Record<string, string[]> = {};
  for (const n of NAMED) {
    const keys: string[] = [];
    for (const entry of split.parts[n]) {
      const key = known.get(n, partContent(n, entry));
      if (key === undefined) return null;
      keys.push(key);
    }
    out[n] = keys;
  }
  return out as Record<'t' | 'x' | 's', string[]>;
}

function learn(known: KnownParts, split: SplitRecords, keys: PartKeys): void {
  for (const n of NAMED) split.parts[n].forEach((entry, i) => {
    const key = keys[n][i];
    if (key !== undefined) known.learn(n, partContent(n, entry), key);
  });
}
