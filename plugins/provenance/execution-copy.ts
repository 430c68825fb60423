/**
 * Execution records written with COPY, where the store's connection can run COPY FROM STDIN (a
 * remote PostgreSQL): a batch is copied into a temporary stage table of the connection, then moved
 * into the lineage tables by the same statement shape the JSON insert uses, in one transaction:
 *
 *   BEGIN
 *   COPY pg_temp.provenance_execution_stage (…) FROM STDIN   -- the batch, in COPY's text format
 *   WITH … INSERT INTO provenance.execution_log … ON CONFLICT (id) DO NOTHING; COMMIT
 *
 * COPY straight into execution_log would abort on a record already there, and a retried batch (its
 * COMMIT's answer lost with the connection, or the spool offered again after a crash) must be
 * skipped, not refused: the move keeps the insert's ON CONFLICT, so a batch recorded twice adds
 * nothing. The stage is emptied at each COMMIT (ON COMMIT DELETE ROWS), and rolled back with a
 * failed batch.
 *
 * The stage holds two kinds of rows, told apart by `id`: each set of shared fields of the batch
 * once (id NULL), and each execution's own fields naming its set by `c` (see splitRecords).
 */
import { insertExecutionsFrom, SHARED_FIELDS, splitRecords, type ExecutionRecord } from './execution-insert.js';

const STAGE = 'pg_temp.provenance_execution_stage';

/** The own fields of a record, as splitRecords gives them. */
const OWN_FIELDS = [
  'id', 'result_id', 'parent_id', 'chain_end', 'input_hash', 'output_hash', 'rows_in', 'rows_out', 'executed_at',
  'duration_ms', 'outcome', 'error', 'trace_id', 'span_id', 'replay_of', 'verified',
] as const satisfies readonly (keyof ExecutionRecord)[];

/** The stage's columns, in COPY's order. */
const STAGE_FIELDS = ['c', ...SHARED_FIELDS, ...OWN_FIELDS] as const;

/** Temporary, so it is the connection's own and goes with it; the types are the JSON insert's. */
export const CREATE_STAGE_SQL = `CREATE TEMPORARY TABLE IF NOT EXISTS provenance_execution_stage (
  c integer NOT NULL,
  transform_name text, transform_version integer, function_hash text, table_oid oid, table_name text, columns text[],
  client_addr text, client_port integer, user_name text, current_role_name text, roles text[], database text,
  application_name text, session_id text, statement_fingerprint text, statement_text text, params jsonb, kind text,
  proxy_id text, as_of timestamptz,
  id uuid, result_id uuid, parent_id uuid, chain_end boolean, input_hash text, output_hash text, rows_in bigint,
  rows_out bigint, executed_at timestamptz, duration_ms double precision, outcome text, error text, trace_id text,
  span_id text, replay_of uuid, verified boolean
) ON COMMIT DELETE ROWS`;

export const COPY_STAGE_SQL = `COPY ${STAGE} (${STAGE_FIELDS.join(', ')}) FROM STDIN`;

/** Moves the stage's rows into the lineage tables (its COMMIT empties the stage). */
export const MOVE_STAGE_SQL = insertExecutionsFrom(
  `(SELECT * FROM ${STAGE} WHERE id IS NULL) AS r`,
  `(SELECT * FROM ${STAGE} WHERE id IS NOT NULL) AS e`,
);

/** COPY's text format: backslash escapes for the characters that delimit fields and rows. */
function escapeCopy(text: string): string {
  return /[\\\n\r\t]/.test(text) ? text.replace(/[\\\n\r\t]/g, (ch) => COPY_ESCAPES[ch]!) : text;
}

const COPY_ESCAPES: Readonly<Record<string, string>> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** An array literal of text elements, every element quoted: `{"a","b \\" c",NULL}`. */
function textArray(values: readonly unknown[]): string {
  const items = values.map((v) => (v === null || v === undefined ? 'NULL' : `"${String(v).replace(/[\\"]/g, '\\$&')}"`));
  return `{${items.join(',')}}`;
}

/** One field in COPY's text format; `\N` is NULL. */
function copyField(field: (typeof STAGE_FIELDS)[number], v: unknown): string {
  if (v === null || v === undefined) return '\\N';
  // jsonb: whatever JSON value the parameters are, a string included
  if (field === 'params') return escapeCopy(JSON.stringify(v));
  if (typeof v === 'string') return escapeCopy(v);
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'boolean') return v ? 't' : 'f';
  if (Array.isArray(v)) return escapeCopy(textArray(v));
  return escapeCopy(JSON.stringify(v));
}

/** The COPY input of a batch: its shared sets, then its executions, one line each. */
export function copyStageRows(records: readonly ExecutionRecord[]): string {
  const { shared, own } = splitRecords(records);
  const lines: string[] = [];
  for (const row of [...shared, ...own]) lines.push(STAGE_FIELDS.map((f) => copyField(f, row[f])).join('\t'));
  return lines.join('\n') + '\n';
}
