/**
 * The provenance DAG: one append-only row per transform execution, and the views and functions
 * auditors query it with (migration 2 of the `provenance` schema).
 *
 * The DAG has three kinds of node, named by text ids in `provenance.dag_edges`:
 *   data:<table_name>:<input_hash hex>   a table's original rows, as one chain read them
 *   execution:<uuid>                     one transform run over one table's rows
 *   result:<uuid>                        the statement result the chains fed
 * Each table a result reads through transforms is a chain: the first execution reads the data
 * node (parent_id NULL), each next one reads its parent's output, and the last (chain_end) flows
 * into the result. A join of two transformed tables is two chains meeting in one result node.
 *
 * Executions are written by the proxy's own login (the table's owner) and by nobody else: no one is
 * granted INSERT, UPDATE or DELETE, so the record is append-only. The proxy generates the ids, so a
 * batch written twice (a retry after a lost connection) adds nothing the second time.
 *
 * Reading takes `provenance_admin` (or SELECT on provenance.execution and the views): the query
 * functions run with the caller's rights and read the table itself, because its raw hashes are
 * what the indexes hold; the view shows them as lowercase hex.
 */
import type { Migration } from './schema.js';

/**
 * The columns of `provenance.executions`, in order, as a select list over `provenance.execution e`.
 * The query functions return this same projection from the table itself (rather than filtering
 * the view, whose hex hashes no index covers), so it is written once here.
 */
export const EXECUTION_COLUMNS = `e.id, e.transform_name, e.transform_version, e.function_hash, e.table_name, e.columns,
       pg_catalog.encode(e.input_hash, 'hex') AS input_hash, pg_catalog.encode(e.output_hash, 'hex') AS output_hash,
       e.rows_in, e.rows_out, e.executed_at, e.duration_ms, e.client_addr, e.user_name, e.roles, e.database,
       e.application_name, e.session_id, e.statement_fingerprint, e.params, e.kind, e.trace_id, e.span_id,
       e.result_id, e.parent_id, e.chain_end, e.table_oid, e.client_port, e.current_role_name, e.statement_text,
       e.outcome, e.error, e.proxy_id, e.recorded_at`;

/**
 * The lineage of the results whose executions `scope` (a condition on `provenance.execution s`)
 * selects, as one SELECT so that the functions built on it are inlined into the caller's query and
 * planned with its actual arguments.
 *
 * Each chain is walked from its first execution (parent_id NULL, depth 1) along parent_id to its
 * end. Rows come per result (earliest first), per table, per chain in the order the chains started,
 * then in depth order. An execution whose parent is not among its result's executions is still
 * listed, last in its result, with depth NULL: an auditor must see every execution of a result.
 */
function lineageQuery(scope: string): string {
  return `
WITH RECURSIVE scope AS MATERIALIZED (
  SELECT s.* FROM provenance.execution s WHERE ${scope}
), chain AS (
  SELECT c.id, c.table_name AS root_table, c.executed_at AS root_at, c.id AS root_id, 1 AS depth
    FROM scope c WHERE c.parent_id IS NULL
  UNION ALL
  SELECT c.id, p.root_table, p.root_at, p.root_id, p.depth + 1 FROM scope c JOIN chain p ON c.parent_id = p.id
)
SELECT ${EXECUTION_COLUMNS}, ch.depth
  FROM scope e LEFT JOIN chain ch ON ch.id = e.id
 ORDER BY pg_catalog.min(e.executed_at) OVER (PARTITION BY e.result_id), e.result_id,
          ch.root_table NULLS LAST, ch.root_at, ch.root_id, ch.depth, e.executed_at, e.id`;
}

/**
 * The audit functions, created (`create` = 'CREATE') or brought up to date ('CREATE OR REPLACE')
 * by a later migration.
 */
export function queryFunctions(create: 'CREATE' | 'CREATE OR REPLACE', executionColumns = EXECUTION_COLUMNS): string {
  return `-- The functions are plain SQL, STABLE and not STRICT so that the planner inlines them into the
-- calling query: each then runs as an index scan planned for its actual arguments. Their bodies
-- are SQL-standard (BEGIN ATOMIC): parsed when created, under the migration's search path, with
-- every function qualified, so the caller's search path never decides what they call and no one
-- can slip a function or operator of their own into an auditor's query. (A SET search_path
-- clause would do that too, but keeps the planner from inlining them.) Hashes are given as hex
-- (either case); malformed hex is an error (22023).

-- The DAG of one result: its executions in data-flow order (see lineage_step for depth).
${create} FUNCTION provenance.lineage(result uuid) RETURNS SETOF provenance.lineage_step
LANGUAGE sql STABLE
BEGIN ATOMIC${lineageQuery('s.result_id = $1')}
;
END;

-- The lineage of every result whose chain end produced this output hash (a result's output is
-- the combination of its chain ends' outputs).
${create} FUNCTION provenance.lineage_of_output(output_hash text) RETURNS SETOF provenance.lineage_step
LANGUAGE sql STABLE
BEGIN ATOMIC${lineageQuery(`s.result_id IN (
    SELECT o.result_id FROM provenance.execution o WHERE o.output_hash = pg_catalog.decode($1, 'hex') AND o.chain_end)`)}
;
END;

-- Every execution of a function, named by transform name or by function hash, with executed_at
-- in [from_ts, to_ts).
${create} FUNCTION provenance.executions_of(fn text, from_ts timestamptz, to_ts timestamptz)
RETURNS SETOF provenance.executions LANGUAGE sql STABLE
BEGIN ATOMIC
SELECT ${executionColumns}
  FROM provenance.execution e
 WHERE (e.transform_name = $1 OR e.function_hash = pg_catalog.lower($1))
   AND e.executed_at >= $2 AND e.executed_at < $3
 ORDER BY e.executed_at, e.id
;
END;

-- What produced an output hash: every execution whose output it was.
${create} FUNCTION provenance.produced(output_hash text) RETURNS SETOF provenance.executions
LANGUAGE sql STABLE
BEGIN ATOMIC
SELECT ${executionColumns}
  FROM provenance.execution e
 WHERE e.output_hash = pg_catalog.decode($1, 'hex')
 ORDER BY e.executed_at, e.id
;
END;

-- The history of one table's served data: the executions on it with executed_at in
-- [from_ts, to_ts), oldest first. The table is named as recorded ('public.customers'), or without
-- the schema for a table in public ('customers').
${create} FUNCTION provenance.table_history(tbl text, from_ts timestamptz, to_ts timestamptz)
RETURNS SETOF provenance.executions LANGUAGE sql STABLE
BEGIN ATOMIC
SELECT ${executionColumns}
  FROM provenance.execution e
 WHERE e.table_name IN ($1, 'public.' || $1)
   AND e.executed_at >= $2 AND e.executed_at < $3
 ORDER BY e.executed_at, e.id
;
END;

`;
}

/** Migration 3's part: the audit functions with a fixed search path and qualified names. */
export const PROVENANCE_FUNCTIONS_UPDATE = queryFunctions('CREATE OR REPLACE');

/** The role statements ran as is recorded as NULL when the proxy cannot know it (see role-tracker.ts). */
export const UNKNOWN_ROLE_MIGRATION: Migration = {
  version: 4,
  description: 'execution role may be unknown',
  sql: 'ALTER TABLE provenance.execution ALTER COLUMN current_role_name DROP NOT NULL;',
};

export const PROVENANCE_MIGRATION: Migration = {
  version: 2,
  description: 'provenance DAG',
  sql: `
CREATE TABLE provenance.execution (
  id uuid PRIMARY KEY,
  result_id uuid NOT NULL,          -- the statement result this execution fed (a DAG node of its own)
  parent_id uuid,                   -- the previous execution in the table's chain; NULL: the table's original rows (a data node)
  chain_end boolean NOT NULL,       -- last execution of its table's chain: its output flows into the result
  transform_name text NOT NULL,
  transform_version integer NOT NULL,
  function_hash text NOT NULL,      -- lowercase hex
  table_oid oid NOT NULL,
  table_name text NOT NULL,         -- schema-qualified, as provenance.transforms.target shows it, e.g. public.customers
  columns text[],                   -- NULL for a row transform
  input_hash bytea NOT NULL,        -- SHA-256, 32 bytes
  output_hash bytea NOT NULL,
  rows_in bigint NOT NULL,
  rows_out bigint NOT NULL,
  executed_at timestamptz NOT NULL,
  duration_ms double precision NOT NULL,
  client_addr text,
  client_port integer,
  user_name text NOT NULL,          -- session_user
  current_role_name text NOT NULL,
  roles text[] NOT NULL,            -- roles user_name belongs to
  database text NOT NULL,
  application_name text NOT NULL,
  session_id text NOT NULL,
  statement_fingerprint text NOT NULL,
  statement_text text NOT NULL,     -- normalised, literals removed
  params jsonb NOT NULL,
  kind text NOT NULL CHECK (kind IN ('read', 'replay')),
  outcome text NOT NULL CHECK (outcome IN ('complete', 'error')),
  error text,
  trace_id text NOT NULL,           -- 32 lowercase hex
  span_id text NOT NULL,            -- 16 lowercase hex
  proxy_id text NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now()
);

-- One index per question the functions below answer (and auditors following an OpenTelemetry
-- trace: executions WHERE trace_id = …), and no more: the proxy's writer pays for each on every
-- execution it records.
CREATE INDEX execution_result ON provenance.execution (result_id);                     -- lineage, dag_edges
CREATE INDEX execution_output ON provenance.execution (output_hash);                   -- produced, lineage_of_output
CREATE INDEX execution_transform ON provenance.execution (transform_name, executed_at); -- executions_of by name
CREATE INDEX execution_function ON provenance.execution (function_hash, executed_at);   -- executions_of by hash
CREATE INDEX execution_table ON provenance.execution (table_name, executed_at);        -- table_history
CREATE INDEX execution_trace ON provenance.execution (trace_id);                       -- from a trace to its executions

-- What auditors read: every execution, hashes as lowercase hex.
CREATE VIEW provenance.executions AS
SELECT ${EXECUTION_COLUMNS}
  FROM provenance.execution e;

-- Edges of the DAG between nodes 'data:<table_name>:<input_hash hex>', 'execution:<id>' and
-- 'result:<result_id>'. Each execution has one incoming edge, from its table's original rows or from
-- its parent, and a chain end one outgoing edge, into its result. Filter on result_id for one
-- result's DAG.
CREATE VIEW provenance.dag_edges AS
SELECT e.result_id,
       CASE WHEN e.parent_id IS NULL THEN 'data:' || e.table_name || ':' || encode(e.input_hash, 'hex')
            ELSE 'execution:' || e.parent_id END AS from_node,
       'execution:' || e.id AS to_node
  FROM provenance.execution e
UNION ALL
SELECT e.result_id, 'execution:' || e.id, 'result:' || e.result_id
  FROM provenance.execution e
 WHERE e.chain_end;

-- A row of a lineage: an execution as provenance.executions shows it, and its depth in its
-- table's chain (1: it read the table's original rows; NULL: its parent is not in the result).
CREATE TYPE provenance.lineage_step AS (
  id uuid, transform_name text, transform_version integer, function_hash text, table_name text, columns text[],
  input_hash text, output_hash text, rows_in bigint, rows_out bigint, executed_at timestamptz,
  duration_ms double precision, client_addr text, user_name text, roles text[], database text,
  application_name text, session_id text, statement_fingerprint text, params jsonb, kind text, trace_id text,
  span_id text, result_id uuid, parent_id uuid, chain_end boolean, table_oid oid, client_port integer,
  current_role_name text, statement_text text, outcome text, error text, proxy_id text,
  recorded_at timestamptz, depth integer
);

${queryFunctions('CREATE')}
-- The functions keep PUBLIC's EXECUTE: they run with the caller's rights, so only those who may
-- SELECT from the table get answers from them.
REVOKE ALL ON provenance.execution, provenance.executions, provenance.dag_edges FROM PUBLIC;
GRANT SELECT ON provenance.execution, provenance.executions, provenance.dag_edges TO provenance_admin;
`,
};
