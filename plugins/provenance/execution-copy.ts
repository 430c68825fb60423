/**
 * Execution records written with COPY, where the store's connection can run COPY FROM STDIN (a
 * remote PostgreSQL). In one transaction:
 *
 *   STORE_PARTS_SQL   the batch's shared parts (transform, context, statement, exact statement),
 *                     each distinct part once, stored unless present; answers each part's key
 *   COPY provenance.execution_log FROM STDIN   a slim row per execution, naming its parts' keys
 *
 * A record already stored makes the COPY fail (unique violation): the transaction is rolled back
 * and the batch goes through the JSON insert, which skips what is there. That is a retried batch
 * (its COMMIT's answer lost with the connection, the spool written again after a crash), rare
 * against the batches written once.
 */
import { PART_KEYS, storeParts, type PartName } from './execution-parts.js';

/** $1: the batch's parts as a JSON object (SplitRecords.parts); answers each part's kind, number and key. */
export const STORE_PARTS_SQL = `${storeParts('$1')}
${PART_KEYS}`;

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

/** Each kind's parts' keys by number, from STORE_PARTS_SQL's answer. */
export type PartKeys = Readonly<Record<PartName, readonly string[]>>;

export function partKeys(rows: readonly Readonly<Record<string, unknown>>[]): PartKeys {
  const keys: Record<PartName, string[]> = { t: [], x: [], s: [], q: [] };
  for (const r of rows) keys[r['part'] as PartName][Number(r['i'])] = String(r['key']);
  return keys;
}

/** The COPY input of a batch's executions (SplitRecords.own), with their parts' keys. */
export function copyLogRows(own: readonly Readonly<Record<string, unknown>>[], keys: PartKeys): string {
  let out = '';
  for (const e of own) {
    const key = (n: PartName): string | undefined => (e[n] === null ? undefined : keys[n][e[n] as number]);
    const [t, x, s, q] = [key('t'), key('x'), key('s'), key('q')];
    if (t === undefined || x === undefined || s === undefined || (q === undefined && e['q'] !== null)) {
      throw new Error('an execution names a shared part that was not stored');
    }
    const row: Record<string, unknown> = {
      ...e, transform_key: t, context_key: x, statement_key: s, exact_key: q,
      // bytea's hex input form (its backslash is escaped with the rest)
      input_hash: `\\x${String(e['input_hash'])}`, output_hash: `\\x${String(e['output_hash'])}`,
    };
    out += LOG_FIELDS.map((f) => copyField(row[f])).join('\t') + '\n';
  }
  return out;
}
