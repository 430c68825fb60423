/**
 * Execution records written with COPY, where the store's connection can run COPY FROM STDIN (a
 * remote PostgreSQL). In one transaction:
 *
 *   STORE_PARTS_SQL   the batch's shared parts (transform, context, statement, exact statement),
 *                     each distinct set once, stored unless present; answers each set's keys
 *   COPY provenance.execution_log FROM STDIN   a slim row per execution, naming its parts' keys
 *
 * A record already stored makes the COPY fail (unique violation): the transaction is rolled back
 * and the batch goes through the JSON insert, which skips what is there. That is a retried batch
 * (its COMMIT's answer lost with the connection, the spool written again after a crash), rare
 * against the batches written once.
 */
import { storeSharedSets } from './execution-insert.js';

/** $1: the batch's shared sets as a JSON array (SplitRecords.shared); answers each one's keys by c. */
export const STORE_PARTS_SQL = `${storeSharedSets('$1')}
SELECT r.c, r.tk::text, r.ck::text, r.sk::text, r.qk::text, r.kind, r.as_of::text FROM r`;

/** execution_log's columns the COPY fills (recorded_at takes its default). */
const LOG_FIELDS = [
  'id', 'result_id', 'parent_id', 'chain_end', 'transform_key', 'context_key', 'statement_key', 'input_hash', 'output_hash',
  'rows_in', 'rows_out', 'executed_at', 'duration_ms', 'kind', 'outcome', 'error', 'trace_id', 'span_id', 'as_of', 'replay_of',
  'verified', 'exact_key', 'statement_at', 'materialization_id',
] as const;

export const COPY_LOG_SQL = `COPY provenance.execution_log (${LOG_FIELDS.join(', ')}) FROM STDIN`;

/** COPY's text format: backslash escapes for the characters that delimit fields and rows. */
function escapeCopy(text: string): string {
  return /[\\\n\r\t]/.test(text) ? text.replace(/[\\\n\r\t]/g, (ch) => COPY_ESCAPES[ch]!) : text;
}

const COPY_ESCAPES: Readonly<Record<string, string>> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** One field in COPY's text format; `\\N` is NULL. */
function copyField(v: unknown): string {
  if (v === null || v === undefined) return '\\N';
  if (typeof v === 'string') return escapeCopy(v);
  if (typeof v === 'boolean') return v ? 't' : 'f';
  return String(v);
}

/** A set's keys and the fields its executions take from it, as STORE_PARTS_SQL answers them. */
export type PartKeys = ReadonlyMap<number, Readonly<Record<string, unknown>>>;

/** The COPY input of a batch's executions (SplitRecords.own), with their sets' keys. */
export function copyLogRows(own: readonly Readonly<Record<string, unknown>>[], keys: PartKeys): string {
  let out = '';
  for (const e of own) {
    const set = keys.get(e['c'] as number);
    if (set === undefined) throw new Error('an execution names a shared set that was not stored');
    const row: Record<string, unknown> = {
      ...e, transform_key: set['tk'], context_key: set['ck'], statement_key: set['sk'], exact_key: set['qk'], kind: set['kind'],
      as_of: set['as_of'],
      // bytea's hex input form (its backslash is escaped with the rest)
      input_hash: `\\x${String(e['input_hash'])}`, output_hash: `\\x${String(e['output_hash'])}`,
    };
    out += LOG_FIELDS.map((f) => copyField(row[f])).join('\t') + '\n';
  }
  return out;
}
