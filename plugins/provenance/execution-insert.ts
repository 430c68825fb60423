/**
 * How the proxy writes execution records to `provenance.execution` (the table is created by
 * the registry's migrations, plugins/registry/schema-dag.ts).
 */

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
  readonly kind: 'read' | 'replay';
  readonly outcome: 'complete' | 'error';
  readonly error: string | null;
  readonly trace_id: string;
  readonly span_id: string;
  readonly proxy_id: string;
  /** A replay's moment, its recorded counterpart and whether it reproduced it (absent for reads, and in records spooled before replays). */
  readonly as_of?: string | null;
  readonly replay_of?: string | null;
  readonly verified?: boolean | null;
}

/**
 * Records a batch of executions in one statement, with the parameters insertExecutionsParams
 * makes: $1 a JSON array of each execution's own fields, each naming (`c`) an entry of $2, a JSON
 * array of the fields executions share (transform, context, statement), once per distinct set. A
 * batch is mostly a few sessions running the same statements, so the server parses a third of
 * the JSON it would for whole records, which was most of what an insert cost it. Ids already
 * recorded are skipped (ON CONFLICT DO NOTHING), so replaying a batch is harmless and the command
 * tag's row count says how many were new.
 */
export const INSERT_EXECUTIONS_SQL = `INSERT INTO provenance.execution
  (id, result_id, parent_id, chain_end, transform_name, transform_version, function_hash, table_oid, table_name, columns,
   input_hash, output_hash, rows_in, rows_out, executed_at, duration_ms, client_addr, client_port, user_name,
   current_role_name, roles, database, application_name, session_id, statement_fingerprint, statement_text, params,
   kind, outcome, error, trace_id, span_id, proxy_id, as_of, replay_of, verified)
SELECT r.id, r.result_id, r.parent_id, r.chain_end, c.transform_name, c.transform_version, c.function_hash, c.table_oid,
       c.table_name, c.columns, pg_catalog.decode(r.input_hash, 'hex'), pg_catalog.decode(r.output_hash, 'hex'), r.rows_in, r.rows_out,
       r.executed_at, r.duration_ms, c.client_addr, c.client_port, c.user_name, c.current_role_name, c.roles, c.database,
       c.application_name, c.session_id, c.statement_fingerprint, c.statement_text, c.params, c.kind, r.outcome, r.error,
       r.trace_id, r.span_id, c.proxy_id, c.as_of, r.replay_of, r.verified
  FROM pg_catalog.json_to_recordset($1::json) AS r(
       id uuid, result_id uuid, parent_id uuid, chain_end boolean, input_hash text, output_hash text,
       rows_in bigint, rows_out bigint, executed_at timestamptz, duration_ms double precision, outcome text,
       error text, trace_id text, span_id text, replay_of uuid, verified boolean, c integer)
  JOIN pg_catalog.json_to_recordset($2::json) AS c(
       c integer, transform_name text, transform_version integer, function_hash text, table_oid oid, table_name text,
       columns text[], client_addr text, client_port integer, user_name text, current_role_name text, roles text[],
       database text, application_name text, session_id text, statement_fingerprint text, statement_text text,
       params jsonb, kind text, proxy_id text, as_of timestamptz) USING (c)
ON CONFLICT (id) DO NOTHING`;

/** The fields of a record that many executions share, in INSERT_EXECUTIONS_SQL's $2. */
const SHARED_FIELDS = [
  'transform_name', 'transform_version', 'function_hash', 'table_oid', 'table_name', 'columns', 'client_addr',
  'client_port', 'user_name', 'current_role_name', 'roles', 'database', 'application_name', 'session_id',
  'statement_fingerprint', 'statement_text', 'params', 'kind', 'proxy_id', 'as_of',
] as const satisfies readonly (keyof ExecutionRecord)[];

/** Whether two fields of records hold the same data (arrays and objects compared by content). */
function sameField(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => v === b[i]);
  return typeof a === 'object' && a !== null && typeof b === 'object' && b !== null && JSON.stringify(a) === JSON.stringify(b);
}

/** INSERT_EXECUTIONS_SQL's two parameters for a batch of records. */
export function insertExecutionsParams(records: readonly ExecutionRecord[]): [string, string] {
  // Candidates by a few fields that tell most sets apart; the full comparison decides. (A JSON key
  // of all the shared fields cost more per record than the rest of this function.)
  const candidates = new Map<string, { readonly c: number; readonly record: ExecutionRecord }[]>();
  const shared: Record<string, unknown>[] = [];
  const own: unknown[] = [];
  for (const r of records) {
    const probe = `${r.session_id}\u0000${r.transform_name}\u0000${r.transform_version}\u0000${r.statement_fingerprint}`;
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
      ...(r.replay_of ? { replay_of: r.replay_of, verified: r.verified } : {}), c,
    });
  }
  return [JSON.stringify(own), JSON.stringify(shared)];
}
