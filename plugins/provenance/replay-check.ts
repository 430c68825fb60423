/**
 * Replay verification: a replayed execution is checked against the recorded read with the same
 * function hash, parameters and input hash. The sandbox is deterministic, so that read's output
 * hash must come out again; when it does not, the record, the stored history or the sandbox is
 * not what it claims to be.
 */
import type { SqlRunner } from '../registry/migrate.js';

/** What a replayed execution is checked by. */
export interface ReplayKey {
  readonly functionHash: string;
  readonly params: unknown;
  /** Lowercase hex. */
  readonly inputHash: string;
}

/** The recorded read a replayed execution repeats. */
export interface RecordedRead {
  readonly id: string;
  /** Lowercase hex. */
  readonly outputHash: string;
}

/**
 * One recorded read per key (null: none). Among several, the one of the replay's user, then one
 * executed by the moment, then the latest: the read the replay most likely repeats. Only complete
 * reads count: an aborted one's output hash covers part of its rows.
 */
const LOOKUP_SQL = `
SELECT DISTINCT ON (k.i) k.i, e.id::text AS id, pg_catalog.encode(e.output_hash, 'hex') AS output_hash
  FROM pg_catalog.json_to_recordset($1::json) AS k(i integer, function_hash text, params jsonb, input_hash text)
  JOIN provenance.execution e
    ON e.input_hash = pg_catalog.decode(k.input_hash, 'hex') AND e.function_hash = k.function_hash AND e.params = k.params
 WHERE e.kind = 'read' AND e.outcome = 'complete'
 ORDER BY k.i, (e.user_name = $2) DESC, (e.executed_at <= $3::timestamptz) DESC, e.executed_at DESC, e.id`;

export async function recordedReads(
  db: SqlRunner, keys: readonly ReplayKey[], user: string, asOf: string | null,
): Promise<(RecordedRead | null)[]> {
  const out: (RecordedRead | null)[] = keys.map(() => null);
  if (keys.length === 0) return out;
  const arg = JSON.stringify(keys.map((k, i) => ({ i, function_hash: k.functionHash, params: k.params, input_hash: k.inputHash })));
  const { rows } = await db.query(LOOKUP_SQL, [arg, user, asOf]);
  for (const r of rows) out[Number(r['i'])] = { id: String(r['id']), outputHash: String(r['output_hash']) };
  return out;
}
