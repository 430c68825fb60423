/**
 * Migration 11 of the `provenance` schema: materialised versions.
 *
 * - `provenance.materialization`: the catalogue, one row per stored version of a table as served
 *   at a moment (the chain it was made with, the context it ran in and which of its fields the
 *   chain's transforms read); its rows live in `provenance.materialized_<id>`, one column
 *   `c<attnum>` per column of the table, readable by the schema's owner only.
 * - `provenance.materialize(…)`: made by the proxy, which runs the transforms; the SQL function
 *   only says so to a call that does not go through it.
 * - `provenance.materialized_rows(NULL::table, id)`: a materialisation's rows as the table's row
 *   type (columns added since read NULL), what an as-of read served from it reads. It runs as the
 *   owner, for a caller who may read the table and to whom the rows were served: made in their
 *   context, or in a context that did not name who reads, or for a member of provenance_admin.
 * - `provenance.drop_materialization(id)`: by whoever made it, or a member of provenance_admin.
 * - Executions of kind `materialized`, linked to their materialisation (`materialization_id`).
 */
import type { Migration } from './schema.js';
import { FIXED_PATH } from './sql-fragments.js';
import { EXECUTION_COLUMNS, queryFunctions } from './schema-dag.js';

const COLUMNS = `${EXECUTION_COLUMNS}, e.as_of, e.replay_of, e.verified, e.materialization_id`;

export const MATERIALIZE_MIGRATION: Migration = {
  version: 11,
  description: 'materialised versions: catalogue, stored rows, executions served from them',
  sql: `
CREATE TABLE provenance.materialization (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  target_oid oid NOT NULL,
  target text NOT NULL,
  as_of timestamptz NOT NULL,
  as_user text NOT NULL,
  database text NOT NULL,
  -- Per transform of the chain in force at as_of, in order: name, version, function_hash, params, columns.
  chain jsonb NOT NULL,
  -- The context the chain ran in (every field), and those its transforms read ('clock' for the sandbox clock).
  context jsonb NOT NULL,
  context_fields text[] NOT NULL,
  -- Some batch drew a random number: its output depends on how rows were batched, so it is never served.
  batch_dependent boolean NOT NULL,
  -- Attnums of the table's columns it holds.
  attnums smallint[] NOT NULL,
  storage text NOT NULL,
  input_hash text,
  output_hash text,
  rows bigint NOT NULL DEFAULT 0,
  complete boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
  created_by text NOT NULL,
  reason text NOT NULL DEFAULT 'manual',
  reads_served bigint NOT NULL DEFAULT 0,
  last_read timestamptz
);
CREATE INDEX materialization_target ON provenance.materialization (target_oid, as_of);

CREATE VIEW provenance.materializations AS
SELECT m.id, m.target, m.as_of, m.as_user, m.chain, m.context_fields, m.rows,
       pg_catalog.pg_total_relation_size(pg_catalog.to_regclass(m.storage)) AS bytes,
       m.created_at, m.created_by, m.reason, m.reads_served, m.last_read
  FROM provenance.materialization m
 WHERE m.complete;

CREATE FUNCTION provenance.materialize(target regclass, as_of timestamptz DEFAULT pg_catalog.now(), as_user text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql ${FIXED_PATH} AS $$
BEGIN
  RAISE EXCEPTION 'provenance.materialize() runs in provenance-proxy, which runs the transforms'
    USING ERRCODE = '0A000',
          HINT = 'Call it through the proxy, as a statement of its own: SELECT provenance.materialize(''schema.table'', ''moment'');';
END $$;

-- SECURITY DEFINER (reviewed): only the owner may read or drop the stored rows.
CREATE FUNCTION provenance.materialized_rows(target anyelement, id bigint) RETURNS SETOF anyelement
LANGUAGE plpgsql STABLE SECURITY DEFINER ${FIXED_PATH} AS $$
DECLARE
  m provenance.materialization;
  cols text;
BEGIN
  SELECT * INTO m FROM provenance.materialization x WHERE x.id = materialized_rows.id AND x.complete;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'materialisation % does not exist', materialized_rows.id USING ERRCODE = '42704';
  END IF;
  IF m.target_oid IS DISTINCT FROM (SELECT t.typrelid FROM pg_catalog.pg_type t WHERE t.oid = pg_catalog.pg_typeof(target)) THEN
    RAISE EXCEPTION 'materialisation % holds rows of %, not of %', m.id, m.target, pg_catalog.pg_typeof(target) USING ERRCODE = '22023';
  END IF;
  IF NOT pg_catalog.has_table_privilege(session_user, m.target_oid, 'SELECT') THEN
    RAISE EXCEPTION 'permission denied for table %', m.target USING ERRCODE = '42501';
  END IF;
  IF m.context_fields OPERATOR(pg_catalog.&&) ARRAY['user', 'roles'] AND m.as_user OPERATOR(pg_catalog.<>) session_user
     AND NOT pg_catalog.pg_has_role(session_user, 'provenance_admin', 'MEMBER') THEN
    RAISE EXCEPTION 'materialisation % was served to %, not to %', m.id, m.as_user, session_user USING ERRCODE = '42501';
  END IF;
  SELECT pg_catalog.string_agg(CASE WHEN a.attnum OPERATOR(pg_catalog.=) ANY (m.attnums) THEN pg_catalog.format('%I', 'c' || a.attnum)
                                    ELSE pg_catalog.format('NULL::%s', pg_catalog.format_type(a.atttypid, a.atttypmod)) END,
                               ', ' ORDER BY a.attnum)
    INTO cols
    FROM pg_catalog.pg_attribute a WHERE a.attrelid = m.target_oid AND a.attnum > 0 AND NOT a.attisdropped;
  RETURN QUERY EXECUTE pg_catalog.format('SELECT %s FROM %s', cols, m.storage);
END $$;

-- SECURITY DEFINER (reviewed): its maker or a member of provenance_admin.
CREATE FUNCTION provenance.drop_materialization(id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER ${FIXED_PATH} AS $$
DECLARE
  m provenance.materialization;
BEGIN
  SELECT * INTO m FROM provenance.materialization x WHERE x.id = drop_materialization.id AND x.complete FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'materialisation % does not exist', drop_materialization.id USING ERRCODE = '42704';
  END IF;
  IF m.created_by OPERATOR(pg_catalog.<>) session_user AND NOT pg_catalog.pg_has_role(session_user, 'provenance_admin', 'MEMBER') THEN
    RAISE EXCEPTION 'permission denied to drop materialisation %', m.id USING ERRCODE = '42501',
      DETAIL = 'Only the role that made it and members of provenance_admin may drop it.';
  END IF;
  EXECUTE pg_catalog.format('DROP TABLE IF EXISTS %s', m.storage);
  DELETE FROM provenance.history_pin p WHERE p.target_oid = m.target_oid AND p.at = m.as_of AND p.reason = 'materialization ' || m.id;
  DELETE FROM provenance.materialization x WHERE x.id = m.id;
END $$;

DO $$
DECLARE c record;
BEGIN
  FOR c IN SELECT k.conname FROM pg_catalog.pg_constraint k
            WHERE k.conrelid = 'provenance.execution_log'::regclass AND k.contype = 'c'
              AND pg_catalog.pg_get_constraintdef(k.oid) LIKE '%kind%' LOOP
    EXECUTE pg_catalog.format('ALTER TABLE provenance.execution_log DROP CONSTRAINT %I', c.conname);
  END LOOP;
END $$;
ALTER TABLE provenance.execution_log
  ADD COLUMN materialization_id bigint,
  ADD CONSTRAINT execution_log_kind_check CHECK (kind IN ('read', 'replay', 'materialized')),
  ADD CONSTRAINT execution_log_as_of_check CHECK ((kind IN ('replay', 'materialized')) = (as_of IS NOT NULL)),
  ADD CONSTRAINT execution_log_materialization_check CHECK ((kind = 'materialized') = (materialization_id IS NOT NULL));

CREATE OR REPLACE VIEW provenance.execution AS
SELECT e.id, e.result_id, e.parent_id, e.chain_end, t.transform_name, t.transform_version, t.function_hash, t.table_oid,
       t.table_name, t.columns, e.input_hash, e.output_hash, e.rows_in, e.rows_out, e.executed_at, e.duration_ms,
       x.client_addr, x.client_port, x.user_name, x.current_role_name, x.roles, x.database, x.application_name,
       x.session_id, s.statement_fingerprint, s.statement_text, t.params, e.kind, e.outcome, e.error, e.trace_id,
       e.span_id, x.proxy_id, e.recorded_at, e.as_of, e.replay_of, e.verified, e.materialization_id
  FROM provenance.execution_log e
  LEFT JOIN provenance.executed_transform t ON t.key = e.transform_key
  LEFT JOIN provenance.execution_context x ON x.key = e.context_key
  LEFT JOIN provenance.statement s ON s.key = e.statement_key;

CREATE OR REPLACE VIEW provenance.executions AS
SELECT ${COLUMNS}
  FROM provenance.execution e;

${queryFunctions('CREATE OR REPLACE', COLUMNS)}

REVOKE ALL ON provenance.materialization, provenance.materializations FROM PUBLIC;
REVOKE ALL ON FUNCTION provenance.materialized_rows(anyelement, bigint), provenance.drop_materialization(bigint),
  provenance.materialize(regclass, timestamptz, text) FROM PUBLIC;
GRANT SELECT ON provenance.materializations TO PUBLIC;
GRANT EXECUTE ON FUNCTION provenance.materialized_rows(anyelement, bigint), provenance.drop_materialization(bigint),
  provenance.materialize(regclass, timestamptz, text) TO PUBLIC;
`,
};
