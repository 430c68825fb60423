/**
 * How the proxy writes execution records to the provenance DAG (its tables are created by the
 * registry's migrations, plugins/registry/schema-dag.ts and schema-lineage.ts).
 */
import { CONTEXT_KEY, STATEMENT_KEY, TRANSFORM_KEY } from '../registry/schema-lineage.js';
import { EXACT_KEY } from '../registry/schema-exact-chunks.js';
import type { ExactStatementFields } from './exact-statement.js';

/**
 * One execution as the writer hands it to INSERT_EXECUTIONS_SQL: the table's columns, with the
 * hashes as lowercase hex and timestamps as ISO 8601 strings (`recorded_at` is set by the server).
 */
export interface ExecutionRecord {
  readonly id: string;
  readonly result_id: string;
  readonly parent_id: string | null;
  readonly chain_end: boolean;
  readonly transform_name: string;
  readonly transform_version: number;
  readonly function_hash: string;
  readonly table_oid: number;
  readonly table_name: string;
  readonly columns: readonly string[] | null;
  readonly input_hash: string;
  readonly output_hash: string;
  /** bigint in the table: a string keeps counts beyond 2^53 exact */
  readonly rows_in: number | string;
  readonly rows_out: number | string;
  readonly executed_at: string;
  readonly duration_ms: number;
  readonly client_addr: string | null;
  readonly client_port: number | null;
  readonly user_name: string;
  /** Null when the proxy cannot know it (see role-tracker.ts). */
  readonly current_role_name: string | null;
  readonly roles: readonly string[];
  readonly database: string;
  readonly application_name: string;
  readonly session_id: string;
  readonly statement_fingerprint: string;
  readonly statement_text: string;
  readonly params: unknown;
  readonly kind: 'read' | 'replay' | 'materialized';
  readonly outcome: 'complete' | 'error';
  readonly error: string | null;
  readonly trace_id: string;
  readonly span_id: string;
  readonly proxy_id: string;
  /** A replay's moment, its recorded counterpart and whether it reproduced it (absent for reads, and in records spooled before replays). */
  readonly as_of?: string | null;
  readonly replay_of?: string | null;
  readonly verified?: boolean | null;
  /** The materialisation a read of kind `materialized` was served from. */
  readonly materialization_id?: number | null;
  /** When the statement went upstream; with the exact statement, when statements are recorded (see exact-statement.ts). */
  readonly statement_at?: string;
  readonly exact_text?: ExactStatementFields['exact_text'];
  readonly exact_types?: ExactStatementFields['exact_types'];
  readonly exact_formats?: ExactStatementFields['exact_formats'];
  readonly exact_values?: ExactStatementFields['exact_values'];
  readonly exact_refusal?: ExactStatementFields['exact_refusal'];
  readonly exact_chunk?: ExactStatementFields['exact_chunk'];
  readonly exact_offset?: ExactStatementFields['exact_offset'];
  readonly exact_portal_at?: ExactStatementFields['exact_portal_at'];
  readonly exact_query_statement?: ExactStatementFields['exact_query_statement'];
  readonly exact_query_statements?: ExactStatementFields['exact_query_statements'];
}

/**
 * Common table expressions that store the shared parts of the rows of a CTE `r` (the parts'
 * columns, and their keys as tk, ck, sk and qk, the exact statement's, null when none) that are
 * not stored yet.
 */
export const STORE_SHARED_PARTS = `t AS (
  INSERT INTO provenance.executed_transform
  SELECT DISTINCT ON (r.tk) r.tk, r.transform_name, r.transform_version, r.function_hash, r.table_oid, r.table_name, r.columns,
         r.params FROM r
  ON CONFLICT (key) DO NOTHING
), x AS (
  INSERT INTO provenance.execution_context
  SELECT DISTINCT ON (r.ck) r.ck, r.client_addr, r.client_port, r.user_name, r.current_role_name, r.roles, r.database,
         r.application_name, r.session_id, r.proxy_id FROM r
  ON CONFLICT (key) DO NOTHING
), s AS (
  INSERT INTO provenance.statement
  SELECT DISTINCT ON (r.sk) r.sk, r.statement_fingerprint, r.statement_text FROM r
  ON CONFLICT (key) DO NOTHING
), q AS (
  INSERT INTO provenance.exact_statement
  SELECT DISTINCT ON (r.qk) r.qk, r.exact_text, r.exact_types, r.exact_formats, r.exact_values, r.exact_refusal, r.exact_chunk,
         r.exact_offset, r.exact_portal_at, r.exact_query_statement, r.exact_query_statements FROM r
   WHERE r.qk IS NOT NULL
  ON CONFLICT (key) DO NOTHING
)`;

/**
 * Records a batch of executions in one statement, with the parameters insertExecutionsParams
 * makes: $1 a JSON array of each execution's own fields, each naming (`c`) an entry of $2, a JSON
 * array of the fields executions share (transform, context, statement, exact statement), once per
 * distinct set. A batch is mostly a few sessions running the same statements, so the server parses a third of
 * the JSON it would for whole records, and stores each shared part once (plugins/registry/
 * schema-lineage.ts): the parts a batch names are added unless present, and each execution's
 * row holds their keys. Ids already recorded are skipped (ON CONFLICT DO NOTHING), so replaying a
 * batch is harmless and the command tag's row count says how many were new.
 *
 * The embedded database's way, and a remote one's for batches too small for COPY to pay off
 * (execution-writer.ts): one statement per batch, prepared once.
 */
export const INSERT_EXECUTIONS_SQL = `${storeSharedSets('$2')}
INSERT INTO provenance.execution_log
  (id, result_id, parent_id, chain_end, transform_key, context_key, statement_key, input_hash, output_hash, rows_in, rows_out,
   executed_at, duration_ms, kind, outcome, error, trace_id, span_id, as_of, replay_of, verified, exact_key, statement_at,
   materialization_id)
SELECT e.id, e.result_id, e.parent_id, e.chain_end, r.tk, r.ck, r.sk, pg_catalog.decode(e.input_hash, 'hex'),
       pg_catalog.decode(e.output_hash, 'hex'), e.rows_in, e.rows_out, e.executed_at, e.duration_ms, r.kind, e.outcome, e.error,
       e.trace_id, e.span_id, r.as_of, e.replay_of, e.verified, r.qk, e.statement_at, e.materialization_id
  FROM pg_catalog.json_to_recordset($1::json) AS e(
       id uuid, result_id uuid, parent_id uuid, chain_end boolean, input_hash text, output_hash text,
       rows_in bigint, rows_out bigint, executed_at timestamptz, duration_ms double precision, outcome text,
       error text, trace_id text, span_id text, replay_of uuid, verified boolean, statement_at timestamptz, materialization_id bigint,
       c integer)
  JOIN r USING (c)
ON CONFLICT (id) DO NOTHING`;

/**
 * The start of a statement: the shared sets of the JSON array parameter `param` as a CTE `r`
 * (with their keys tk, ck, sk and qk), and the parts they name stored unless present.
 */
export function storeSharedSets(param: string): string {
  return `WITH r AS MATERIALIZED (
  SELECT r.*, ${TRANSFORM_KEY} AS tk, ${CONTEXT_KEY} AS ck, ${STATEMENT_KEY} AS sk, ${EXACT_KEY} AS qk
    FROM pg_catalog.json_to_recordset(${param}::json) AS r(
         c integer, transform_name text, transform_version integer, function_hash text, table_oid oid, table_name text,
         columns text[], client_addr text, client_port integer, user_name text, current_role_name text, roles text[],
         database text, application_name text, session_id text, statement_fingerprint text, statement_text text,
         params jsonb, kind text, proxy_id text, as_of timestamptz, exact_text text, exact_types oid[], exact_formats int2[],
         exact_values bytea[], exact_refusal text, exact_chunk integer, exact_offset bigint, exact_portal_at timestamptz,
         exact_query_statement integer, exact_query_statements integer)
), ${STORE_SHARED_PARTS}`;
}

/** The fields of a record that many executions share, in INSERT_EXECUTIONS_SQL's $2. */
const SHARED_FIELDS = [
  'transform_name', 'transform_version', 'function_hash', 'table_oid', 'table_name', 'columns', 'client_addr',
  'client_port', 'user_name', 'current_role_name', 'roles', 'database', 'application_name', 'session_id',
  'statement_fingerprint', 'statement_text', 'params', 'kind', 'proxy_id', 'as_of', 'exact_text', 'exact_types', 'exact_formats',
  'exact_values', 'exact_refusal', 'exact_chunk', 'exact_offset', 'exact_portal_at',
  'exact_query_statement', 'exact_query_statements',
] as const satisfies readonly (keyof ExecutionRecord)[];

/** Whether two fields of records hold the same data (arrays and objects compared by content). */
function sameField(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => v === b[i]);
  return typeof a === 'object' && a !== null && typeof b === 'object' && b !== null && JSON.stringify(a) === JSON.stringify(b);
}

/** A batch of records split: each distinct set of shared fields once, numbered `c`, and each record's own fields naming its set. */
export interface SplitRecords {
  readonly shared: readonly Record<string, unknown>[];
  readonly own: readonly Record<string, unknown>[];
}

/** INSERT_EXECUTIONS_SQL's two parameters for a batch of records. */
export function insertExecutionsParams(records: readonly ExecutionRecord[]): [string, string] {
  const { own, shared } = splitRecords(records);
  return [JSON.stringify(own), JSON.stringify(shared)];
}

export function splitRecords(records: readonly ExecutionRecord[]): SplitRecords {
  // Candidates by a few fields that tell most sets apart; the full comparison decides. (A JSON key
  // of all the shared fields cost more per record than the rest of this function.) The exact
  // statement is among them: with literals or parameters in it, point lookups of one session each
  // have their own set, and without it every record was compared with all before it.
  const candidates = new Map<string, { readonly c: number; readonly record: ExecutionRecord }[]>();
  const shared: Record<string, unknown>[] = [];
  const own: Record<string, unknown>[] = [];
  for (const r of records) {
    const probe = `${r.session_id}\u0000${r.transform_name}\u0000${r.transform_version}\u0000${r.statement_fingerprint}\u0000${r.exact_text ?? ''}\u0000${r.exact_values?.join('\u0001') ?? ''}`;
    let list = candidates.get(probe);
    if (list === undefined) candidates.set(probe, (list = []));
    let c = list.find((e) => SHARED_FIELDS.every((f) => sameField(e.record[f], r[f])))?.c;
    if (c === undefined) {
      c = shared.length;
      list.push({ c, record: r });
      const entry: Record<string, unknown> = { c };
      for (const f of SHARED_FIELDS) entry[f] = r[f];
      shared.push(entry);
    }
    own.push({
      id: r.id, result_id: r.result_id, parent_id: r.parent_id, chain_end: r.chain_end, input_hash: r.input_hash,
      output_hash: r.output_hash, rows_in: r.rows_in, rows_out: r.rows_out, executed_at: r.executed_at,
      duration_ms: r.duration_ms, outcome: r.outcome, error: r.error, trace_id: r.trace_id, span_id: r.span_id,
      ...(r.replay_of ? { replay_of: r.replay_of, verified: r.verified } : {}),
      ...(r.materialization_id ? { materialization_id: r.materialization_id } : {}),
      ...(r.statement_at !== undefined ? { statement_at: r.statement_at } : {}), c,
    });
  }
  return { own, shared };
}
