/**
 * How the proxy writes execution records to the provenance DAG (its tables are created by the
 * registry's migrations, plugins/registry/schema-dag.ts and schema-lineage.ts).
 */
import type { ExactStatementFields } from './exact-statement.js';
import { PART_KEYS, partsOf, storeParts, type BatchParts } from './execution-parts.js';

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
 * makes: $1 a JSON array of each execution's own fields, each naming by number its transform (t),
 * context (x), statement (s) and exact statement (q), entries of $2, a JSON object of the batch's
 * distinct parts of each kind (execution-parts.ts). A batch is mostly a few sessions running the
 * same statements, so the server parses a fraction of the JSON it would for whole records, and
 * stores each part once (plugins/registry/schema-lineage.ts): the parts a batch names are added
 * unless present, and each execution's row holds their keys. Ids already recorded are skipped (ON
 * CONFLICT DO NOTHING), so replaying a batch is harmless and the command tag's row count says how
 * many were new.
 *
 * The statement that needs nothing known beforehand (maintenance, tests); the writer
 * (execution-writer.ts) uses its kin below, which names parts it knows stored by their keys.
 */
export const INSERT_EXECUTIONS_SQL = `${storeParts('$2')}
${insertLog('t.key, x.key, s.key', 't integer, x integer, s integer', 'JOIN t ON t.i = e.t JOIN x ON x.i = e.x JOIN s ON s.i = e.s')}`;

/**
 * The embedded database's way, and a remote one's for batches too small for COPY to pay off: one
 * statement per batch, prepared once, for a batch whose transforms, contexts and statements are
 * known stored (known-parts.ts):
 * $1 names them by key (tk, ck, sk), and $2 holds only the exact statements (BatchParts' q), which
 * each point lookup brings anew. The server computes no key for the rest, and probes each distinct
 * key once ($3, $4, $5: the transforms', contexts' and statements' keys, $6 how many they are):
 * unless every one is there (a store dropped and made again behind a connection that stayed), no
 * row is written and the answer's `present` says fewer, so that the writer stores the batch by
 * content instead. A row naming a part that is not stored would vanish from every audit view.
 */
export const INSERT_NAMED_EXECUTIONS_SQL = `${storeParts('$2', ['q'])}, present AS MATERIALIZED (
  SELECT (SELECT pg_catalog.count(*) FROM provenance.executed_transform p WHERE p.key = ANY ($3::uuid[]))
       + (SELECT pg_catalog.count(*) FROM provenance.execution_context p WHERE p.key = ANY ($4::uuid[]))
       + (SELECT pg_catalog.count(*) FROM provenance.statement p WHERE p.key = ANY ($5::uuid[])) AS n
), logged AS (
${insertLog('e.tk, e.ck, e.sk', 'tk uuid, ck uuid, sk uuid', '', 'WHERE (SELECT n FROM present) = $6::bigint')}
)
SELECT (SELECT n FROM present)::integer AS present`;

/**
 * INSERT_EXECUTIONS_SQL that also answers each part's key (STORE_PARTS_SQL's answer): the writer's
 * statement for a batch naming a part it does not know stored (a new session's first batch), so
 * that it knows them from then on, in the same one round trip.
 */
export const INSERT_EXECUTIONS_LEARNING_SQL = `${storeParts('$2')}, logged AS (
${insertLog('t.key, x.key, s.key', 't integer, x integer, s integer', 'JOIN t ON t.i = e.t JOIN x ON x.i = e.x JOIN s ON s.i = e.s')}
)
${PART_KEYS}`;

/** The INSERT of INSERT_EXECUTIONS_SQL and its kin, the transform, context and statement keys from `keys`. */
function insertLog(keys: string, keyColumns: string, joins: string, where = ''): string {
  return `INSERT INTO provenance.execution_log
  (id, result_id, parent_id, chain_end, transform_key, context_key, statement_key, input_hash, output_hash, rows_in, rows_out,
   executed_at, duration_ms, kind, outcome, error, trace_id, span_id, as_of, replay_of, verified, exact_key, statement_at,
   materialization_id)
SELECT e.id, e.result_id, e.parent_id, e.chain_end, ${keys}, pg_catalog.decode(e.input_hash, 'hex'),
       pg_catalog.decode(e.output_hash, 'hex'), e.rows_in, e.rows_out, e.executed_at, e.duration_ms, e.kind, e.outcome, e.error,
       e.trace_id, e.span_id, e.as_of, e.replay_of, e.verified, q.key, e.statement_at, e.materialization_id
  FROM pg_catalog.json_to_recordset($1::json) AS e(
       id uuid, result_id uuid, parent_id uuid, chain_end boolean, input_hash text, output_hash text,
       rows_in bigint, rows_out bigint, executed_at timestamptz, duration_ms double precision, kind text, outcome text,
       error text, trace_id text, span_id text, as_of timestamptz, replay_of uuid, verified boolean, statement_at timestamptz,
       materialization_id bigint, ${keyColumns}, q integer)
  ${joins} LEFT JOIN q ON q.i = e.q ${where}
ON CONFLICT (id) DO NOTHING`;
}

/** A batch of records split: the distinct parts of each kind once, and each record's own fields naming its parts. */
export interface SplitRecords {
  readonly parts: BatchParts;
  /** Fresh objects, the caller's to complete. */
  readonly own: readonly Record<string, unknown>[];
}

/** INSERT_EXECUTIONS_SQL's two parameters for a batch of records. */
export function insertExecutionsParams(records: readonly ExecutionRecord[]): [string, string] {
  const { own, parts } = splitRecords(records);
  return [JSON.stringify(own), JSON.stringify(parts)];
}

/** Splits a batch in time linear in its size (parts are found by a probe of a few fields, see execution-parts.ts). */
export function splitRecords(records: readonly ExecutionRecord[]): SplitRecords {
  const numbering = partsOf();
  const own: Record<string, unknown>[] = [];
  for (const r of records) {
    const { t, x, s, q } = numbering.numbers(r);
    own.push({
      id: r.id, result_id: r.result_id, parent_id: r.parent_id, chain_end: r.chain_end, input_hash: r.input_hash,
      output_hash: r.output_hash, rows_in: r.rows_in, rows_out: r.rows_out, executed_at: r.executed_at,
      duration_ms: r.duration_ms, kind: r.kind, outcome: r.outcome, error: r.error, trace_id: r.trace_id, span_id: r.span_id,
      ...(r.as_of ? { as_of: r.as_of } : {}),
      ...(r.replay_of ? { replay_of: r.replay_of, verified: r.verified } : {}),
      ...(r.materialization_id ? { materialization_id: r.materialization_id } : {}),
      ...(r.statement_at !== undefined ? { statement_at: r.statement_at } : {}), t, x, s, q,
    });
  }
  return { own, parts: numbering.parts() };
}
