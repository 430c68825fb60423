/**
 * The `provenance` schema, as versioned migrations. Each migration runs once, in order, inside a
 * transaction holding an advisory lock, so several proxies starting on one database agree.
 *
 * Transform versions are immutable rows: a change (new source, parameters, position, enabled
 * state, or a drop) adds a row; a version's end of validity is the start of the next one. The
 * table grants no UPDATE or DELETE to anyone but its owner, so history is never overwritten.
 */
import { PROVENANCE_MIGRATION, UNKNOWN_ROLE_MIGRATION } from './schema-dag.js';
import { guardsMigration } from './schema-guards.js';
import { HISTORY_MIGRATION } from './history-schema.js';
import { columnGuardsMigration } from './schema-column-guards.js';
import { readsMigration } from './schema-reads.js';
import { REPLAY_MIGRATION } from './schema-replay.js';
import { HISTORY_COMPILED_MIGRATION } from './history-compiled.js';
import { LINEAGE_ROWS_MIGRATION } from './schema-lineage.js';
import { MATERIALIZE_MIGRATION } from './schema-materialize.js';
import { MATERIALIZE_POLICY_MIGRATION } from './schema-materialize-policy.js';
import { EXACT_STATEMENT_MIGRATION } from './schema-exact.js';
import { RETENTION_CHECK_MIGRATION } from './schema-retention.js';
import { EXACT_CHUNKS_MIGRATION } from './schema-exact-chunks.js';
import { RUNTIME_IDENTITY_MIGRATION } from './schema-runtime-identity.js';

export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sql: string;
}

/** Channel on which every registry change is announced (the payload names the transform). */
export const REGISTRY_CHANNEL = 'provenance_registry';

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'transform registry',
    sql: `
CREATE TABLE provenance.settings (
  key text PRIMARY KEY,
  value text NOT NULL
);

CREATE TABLE provenance.transform_version (
  name text NOT NULL CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_.-]*$'),
  version integer NOT NULL CHECK (version > 0),
  target_oid oid NOT NULL,
  target text NOT NULL,
  columns text[],
  source text NOT NULL,
  function_hash text NOT NULL,
  params jsonb NOT NULL,
  position integer NOT NULL,
  enabled boolean NOT NULL,
  dropped boolean NOT NULL DEFAULT false,
  origin text NOT NULL DEFAULT 'sql',
  valid_from timestamptz NOT NULL DEFAULT clock_timestamp(),
  created_by text NOT NULL DEFAULT current_user,
  PRIMARY KEY (name, version)
);
CREATE INDEX transform_version_target ON provenance.transform_version (target_oid, valid_from);
CREATE INDEX transform_version_valid ON provenance.transform_version (valid_from);

-- Every version with the span during which it was in force (valid_to NULL: still in force).
CREATE VIEW provenance.transform_versions AS
SELECT name, version, target, target_oid, columns, function_hash, source, params, position, enabled, dropped, origin,
       valid_from,
       lead(valid_from) OVER (PARTITION BY name ORDER BY version) AS valid_to,
       created_by
  FROM provenance.transform_version;

-- What is in force now: the latest version of each transform that was not dropped.
CREATE VIEW provenance.transforms AS
SELECT name, version, target, target_oid, columns, function_hash, source, params, position, enabled, origin,
       valid_from, valid_to
  FROM provenance.transform_versions
 WHERE valid_to IS NULL AND NOT dropped;

CREATE FUNCTION provenance.function_hash(source text) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT encode(sha256(convert_to(source, 'UTF8') || '\\x00'::bytea ||
         convert_to((SELECT value FROM provenance.settings WHERE key = 'sandbox_runtime_version'), 'UTF8')), 'hex')
$$;

-- Adds a version of an existing transform with some fields changed; the others are carried over.
CREATE FUNCTION provenance._new_version(p_name text, p_params jsonb, p_position integer, p_enabled boolean, p_dropped boolean)
RETURNS integer LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
  cur provenance.transform_version;
BEGIN
  -- Serialise changes to one transform: two sessions must not both create version n+1.
  PERFORM pg_advisory_xact_lock(hashtext('provenance.transform:' || p_name));
  SELECT * INTO cur FROM provenance.transform_version WHERE name = p_name ORDER BY version DESC LIMIT 1;
  IF NOT FOUND OR cur.dropped THEN
    RAISE EXCEPTION 'transform "%" does not exist', p_name USING ERRCODE = '42704';
  END IF;
  INSERT INTO provenance.transform_version
    (name, version, target_oid, target, columns, source, function_hash, params, position, enabled, dropped, origin)
  VALUES (cur.name, cur.version + 1, cur.target_oid, cur.target, cur.columns, cur.source, cur.function_hash,
          coalesce(p_params, cur.params), coalesce(p_position, cur.position), coalesce(p_enabled, cur.enabled),
          p_dropped, cur.origin);
  PERFORM pg_notify('${REGISTRY_CHANNEL}', p_name);
  RETURN cur.version + 1;
END $$;

CREATE FUNCTION provenance.register_transform(name text, target regclass, columns text[], source text, params jsonb DEFAULT '{}', origin text DEFAULT 'sql')
RETURNS integer LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
  cur provenance.transform_version;
  col text;
  next_version integer;
  next_position integer;
BEGIN
  IF name IS NULL OR target IS NULL OR source IS NULL THEN
    RAISE EXCEPTION 'name, target and source must not be null' USING ERRCODE = '22004';
  END IF;
  IF params IS NULL OR jsonb_typeof(params) <> 'object' THEN
    RAISE EXCEPTION 'params must be a JSON object' USING ERRCODE = '22023';
  END IF;
  IF columns IS NOT NULL THEN
    IF cardinality(columns) = 0 THEN
      RAISE EXCEPTION 'columns must be NULL (a row transform) or name at least one column' USING ERRCODE = '22023';
    END IF;
    FOREACH col IN ARRAY columns LOOP
      IF NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = target AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'column "%" of relation % does not exist', col, target USING ERRCODE = '42703';
      END IF;
    END LOOP;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('provenance.transform:' || name));
  SELECT * INTO cur FROM provenance.transform_version v WHERE v.name = register_transform.name ORDER BY v.version DESC LIMIT 1;
  next_version := coalesce(cur.version, 0) + 1;
  IF cur.name IS NOT NULL AND NOT cur.dropped AND cur.target_oid = target::oid THEN
    next_position := cur.position;
  ELSE
    SELECT coalesce(max(t.position), 0) + 1 INTO next_position FROM provenance.transforms t WHERE t.target_oid = target::oid;
  END IF;
  INSERT INTO provenance.transform_version
    (name, version, target_oid, target, columns, source, function_hash, params, position, enabled, origin)
  VALUES (name, next_version, target::oid, target::text, columns, source, provenance.function_hash(source), params,
          next_position, coalesce(cur.enabled OR cur.dropped, true), origin);
  PERFORM pg_notify('${REGISTRY_CHANNEL}', name);
  RETURN next_version;
END $$;

CREATE FUNCTION provenance.set_transform_params(name text, params jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
  IF $2 IS NULL OR jsonb_typeof($2) <> 'object' THEN
    RAISE EXCEPTION 'params must be a JSON object' USING ERRCODE = '22023';
  END IF;
  RETURN provenance._new_version($1, $2, NULL, NULL, false);
END $$;

CREATE FUNCTION provenance.move_transform(name text, "position" integer) RETURNS integer
LANGUAGE sql AS $$ SELECT provenance._new_version($1, NULL, $2, NULL, false) $$;

CREATE FUNCTION provenance.disable_transform(name text) RETURNS integer
LANGUAGE sql AS $$ SELECT provenance._new_version($1, NULL, NULL, false, false) $$;

CREATE FUNCTION provenance.enable_transform(name text) RETURNS integer
LANGUAGE sql AS $$ SELECT provenance._new_version($1, NULL, NULL, true, false) $$;

CREATE FUNCTION provenance.drop_transform(name text) RETURNS integer
LANGUAGE sql AS $$ SELECT provenance._new_version($1, NULL, NULL, NULL, true) $$;

-- Only the owner (the proxy's login) and provenance_admin may change the registry; anyone may read it.
REVOKE ALL ON ALL TABLES IN SCHEMA provenance FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA provenance FROM PUBLIC;
GRANT USAGE ON SCHEMA provenance TO PUBLIC;
GRANT SELECT ON provenance.transforms, provenance.transform_versions, provenance.settings TO PUBLIC;
GRANT EXECUTE ON FUNCTION provenance.function_hash(text) TO PUBLIC;
GRANT SELECT, INSERT ON provenance.transform_version TO provenance_admin;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA provenance TO provenance_admin;
`,
  },
  PROVENANCE_MIGRATION,
  guardsMigration(REGISTRY_CHANNEL),
  UNKNOWN_ROLE_MIGRATION,
  HISTORY_MIGRATION,
  columnGuardsMigration(REGISTRY_CHANNEL),
  readsMigration(REGISTRY_CHANNEL),
  REPLAY_MIGRATION,
  HISTORY_COMPILED_MIGRATION,
  LINEAGE_ROWS_MIGRATION,
  MATERIALIZE_MIGRATION,
  MATERIALIZE_POLICY_MIGRATION,
  EXACT_STATEMENT_MIGRATION,
  RETENTION_CHECK_MIGRATION,
  EXACT_CHUNKS_MIGRATION,
  RUNTIME_IDENTITY_MIGRATION,
];
