/**
 * Migration 10 of the `provenance` schema: slim execution rows.
 *
 * Most executions repeat what their neighbours already said: the same transform version over the
 * same table with the same parameters, from the same session, for the same statement. Those parts
 * are stored once, each in a table keyed by a hash of its content, and the row written per
 * execution (`provenance.execution_log`) keeps only ids, keys, hashes, counts and times:
 *
 *   executed_transform   transform name, version, function hash, table, columns, parameters
 *   execution_context    who ran it: client, user, roles, database, application, session, proxy
 *   statement            the statement's fingerprint and normalised text
 *
 * A key is the first 128 bits of the SHA-256 of the part's content as jsonb text (jsonb prints
 * equal values alike), computed by the functions below wherever a row is written, so the writer,
 * this migration and the compatibility triggers cannot disagree on it. They are STABLE, as what
 * they call (jsonb_build_array, convert_to) is: so the planner inlines them into the writer's
 * statement, where an IMMUTABLE label kept them a function call of about 50 µs each.
 *
 * `provenance.execution` becomes a view with the old table's columns (hashes as raw bytes), so
 * that what read the table reads on; the view `provenance.executions`, `dag_edges` and the audit
 * functions are made again over it, with the same columns and answers: the planner flattens the
 * view, so each still runs on the indexes of the tables beneath.
 *
 * Indexes: one per question asked of the per-execution row, and no more (the writer pays for each
 * on every execution). The id (a retried batch adds nothing), the result (lineage, dag_edges), the
 * output hash (produced, lineage_of_output), the input hash (the replay check), and the transform
 * key with the time (executions_of by name or function hash, table_history, through the small
 * transform table's own indexes). The trace index is gone: a span names its execution's id.
 */
import type { Migration } from './schema.js';
import { EXECUTION_COLUMNS, queryFunctions } from './schema-dag.js';

const COLUMNS = `${EXECUTION_COLUMNS}, e.as_of, e.replay_of, e.verified`;

/** The key expressions, over a row `r` holding the parts' columns. */
export const TRANSFORM_KEY = `provenance.transform_key(r.transform_name, r.transform_version, r.function_hash, r.table_oid,
  r.table_name, r.columns, r.params)`;
export const CONTEXT_KEY = `provenance.context_key(r.client_addr, r.client_port, r.user_name, r.current_role_name, r.roles,
  r.database, r.application_name, r.session_id, r.proxy_id)`;
export const STATEMENT_KEY = 'provenance.statement_key(r.statement_fingerprint, r.statement_text)';

/** Inserts the three parts of the rows `r` of `source` that are not stored yet. */
function storeParts(source: string): string {
  return `INSERT INTO provenance.executed_transform
SELECT DISTINCT ON (1) ${TRANSFORM_KEY}, r.transform_name, r.transform_version, r.function_hash, r.table_oid, r.table_name,
       r.columns, r.params FROM ${source}
ON CONFLICT (key) DO NOTHING;
INSERT INTO provenance.execution_context
SELECT DISTINCT ON (1) ${CONTEXT_KEY}, r.client_addr, r.client_port, r.user_name, r.current_role_name, r.roles, r.database,
       r.application_name, r.session_id, r.proxy_id FROM ${source}
ON CONFLICT (key) DO NOTHING;
INSERT INTO provenance.statement
SELECT DISTINCT ON (1) ${STATEMENT_KEY}, r.statement_fingerprint, r.statement_text FROM ${source}
ON CONFLICT (key) DO NOTHING;`;
}

/** The per-execution columns of `provenance.execution_log` after `id`, in order. */
const LOG_COLUMNS = `result_id, parent_id, chain_end, transform_key, context_key, statement_key, input_hash, output_hash,
  rows_in, rows_out, executed_at, duration_ms, kind, outcome, error, trace_id, span_id, as_of, replay_of, verified, recorded_at`;

/** The same, as values taken from a row `r` of the old layout. */
const LOG_VALUES = `r.result_id, r.parent_id, r.chain_end, ${TRANSFORM_KEY}, ${CONTEXT_KEY}, ${STATEMENT_KEY}, r.input_hash,
  r.output_hash, r.rows_in, r.rows_out, r.executed_at, r.duration_ms, r.kind, r.outcome, r.error, r.trace_id, r.span_id,
  r.as_of, r.replay_of, r.verified`;

export const LINEAGE_ROWS_MIGRATION: Migration = {
  version: 10,
  description: 'slim execution rows: transform, context and statement stored once',
  sql: `
CREATE FUNCTION provenance.content_key(content jsonb) RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
RETURN pg_catalog.encode(pg_catalog.substr(pg_catalog.sha256(pg_catalog.convert_to(content::text, 'UTF8')), 1, 16), 'hex')::uuid;

CREATE FUNCTION provenance.transform_key(transform_name text, transform_version integer, function_hash text, table_oid oid,
  table_name text, columns text[], params jsonb) RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
RETURN provenance.content_key(pg_catalog.jsonb_build_array($1, $2, $3, $4::text, $5, $6, $7));

CREATE FUNCTION provenance.context_key(client_addr text, client_port integer, user_name text, current_role_name text,
  roles text[], database text, application_name text, session_id text, proxy_id text) RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
RETURN provenance.content_key(pg_catalog.jsonb_build_array($1, $2, $3, $4, $5, $6, $7, $8, $9));

CREATE FUNCTION provenance.statement_key(statement_fingerprint text, statement_text text) RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
RETURN provenance.content_key(pg_catalog.jsonb_build_array($1, $2));

CREATE TABLE provenance.executed_transform (
  key uuid PRIMARY KEY,
  transform_name text NOT NULL,
  transform_version integer NOT NULL,
  function_hash text NOT NULL,
  table_oid oid NOT NULL,
  table_name text NOT NULL,
  columns text[],
  params jsonb NOT NULL
);
CREATE INDEX executed_transform_name ON provenance.executed_transform (transform_name);   -- executions_of by name
CREATE INDEX executed_transform_function ON provenance.executed_transform (function_hash); -- executions_of by hash
CREATE INDEX executed_transform_table ON provenance.executed_transform (table_name);       -- table_history

CREATE TABLE provenance.execution_context (
  key uuid PRIMARY KEY,
  client_addr text,
  client_port integer,
  user_name text NOT NULL,
  current_role_name text,
  roles text[] NOT NULL,
  database text NOT NULL,
  application_name text NOT NULL,
  session_id text NOT NULL,
  proxy_id text NOT NULL
);

CREATE TABLE provenance.statement (
  key uuid PRIMARY KEY,
  statement_fingerprint text NOT NULL,
  statement_text text NOT NULL
);

CREATE TABLE provenance.execution_log (
  id uuid PRIMARY KEY,
  result_id uuid NOT NULL,
  parent_id uuid,
  chain_end boolean NOT NULL,
  transform_key uuid NOT NULL,
  context_key uuid NOT NULL,
  statement_key uuid NOT NULL,
  input_hash bytea NOT NULL,
  output_hash bytea NOT NULL,
  rows_in bigint NOT NULL,
  rows_out bigint NOT NULL,
  executed_at timestamptz NOT NULL,
  duration_ms double precision NOT NULL,
  kind text NOT NULL CHECK (kind IN ('read', 'replay')),
  outcome text NOT NULL CHECK (outcome IN ('complete', 'error')),
  error text,
  trace_id text NOT NULL,
  span_id text NOT NULL,
  as_of timestamptz,
  replay_of uuid,
  verified boolean,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  CHECK ((kind = 'replay') = (as_of IS NOT NULL)),
  CHECK (replay_of IS NOT NULL OR verified IS NULL)
);

${storeParts('provenance.execution r')}
INSERT INTO provenance.execution_log (id, ${LOG_COLUMNS})
SELECT r.id, ${LOG_VALUES}, r.recorded_at FROM provenance.execution r;

DROP FUNCTION provenance.lineage(uuid), provenance.lineage_of_output(text),
  provenance.executions_of(text, timestamptz, timestamptz), provenance.produced(text),
  provenance.table_history(text, timestamptz, timestamptz);
DROP VIEW provenance.executions, provenance.dag_edges;
DROP TABLE provenance.execution;

-- After the old table's indexes, whose names these take over.
CREATE INDEX execution_result ON provenance.execution_log (result_id);                 -- lineage, dag_edges
CREATE INDEX execution_output ON provenance.execution_log (output_hash);               -- produced, lineage_of_output
CREATE INDEX execution_input ON provenance.execution_log (input_hash);                 -- the replay check
CREATE INDEX execution_transform ON provenance.execution_log (transform_key, executed_at); -- executions_of, table_history

-- The old table's columns, in its order. Every part is there (written in the same statement as
-- its execution); outer joins let the planner skip the parts a query does not use.
CREATE VIEW provenance.execution AS
SELECT e.id, e.result_id, e.parent_id, e.chain_end, t.transform_name, t.transform_version, t.function_hash, t.table_oid,
       t.table_name, t.columns, e.input_hash, e.output_hash, e.rows_in, e.rows_out, e.executed_at, e.duration_ms,
       x.client_addr, x.client_port, x.user_name, x.current_role_name, x.roles, x.database, x.application_name,
       x.session_id, s.statement_fingerprint, s.statement_text, t.params, e.kind, e.outcome, e.error, e.trace_id,
       e.span_id, x.proxy_id, e.recorded_at, e.as_of, e.replay_of, e.verified
  FROM provenance.execution_log e
  LEFT JOIN provenance.executed_transform t ON t.key = e.transform_key
  LEFT JOIN provenance.execution_context x ON x.key = e.context_key
  LEFT JOIN provenance.statement s ON s.key = e.statement_key;

-- The owner may still write through the view (maintenance, tests): each row's parts are stored
-- once like the writer's.
CREATE FUNCTION provenance.execution_write() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    DELETE FROM provenance.execution_log WHERE id = OLD.id;
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  ${storeParts('(SELECT NEW.*) r').replace(/\n/g, '\n  ')}
  INSERT INTO provenance.execution_log (id, ${LOG_COLUMNS})
  SELECT r.id, ${LOG_VALUES}, coalesce(r.recorded_at, now()) FROM (SELECT NEW.*) r
  ON CONFLICT (id) DO NOTHING;
  RETURN NEW;
END $$;
CREATE TRIGGER execution_write INSTEAD OF INSERT OR UPDATE OR DELETE ON provenance.execution
  FOR EACH ROW EXECUTE FUNCTION provenance.execution_write();

CREATE VIEW provenance.executions AS
SELECT ${COLUMNS}
  FROM provenance.execution e;

CREATE VIEW provenance.dag_edges AS
SELECT e.result_id,
       CASE WHEN e.parent_id IS NULL THEN 'data:' || t.table_name || ':' || encode(e.input_hash, 'hex')
            ELSE 'execution:' || e.parent_id END AS from_node,
       'execution:' || e.id AS to_node
  FROM provenance.execution_log e JOIN provenance.executed_transform t ON t.key = e.transform_key
UNION ALL
SELECT e.result_id, 'execution:' || e.id, 'result:' || e.result_id
  FROM provenance.execution_log e
 WHERE e.chain_end;

${queryFunctions('CREATE', COLUMNS)}
REVOKE ALL ON provenance.execution, provenance.executions, provenance.dag_edges, provenance.execution_log,
  provenance.executed_transform, provenance.execution_context, provenance.statement FROM PUBLIC;
GRANT SELECT ON provenance.execution, provenance.executions, provenance.dag_edges, provenance.execution_log,
  provenance.executed_transform, provenance.execution_context, provenance.statement TO provenance_admin;
REVOKE ALL ON FUNCTION provenance.execution_write() FROM PUBLIC;
`,
};
