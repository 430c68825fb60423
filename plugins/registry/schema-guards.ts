/**
 * Migration 3 of the `provenance` schema: nothing in it can be turned against the proxy's login or
 * its history, and masking never stops silently.
 *
 * - Every function runs with `search_path = pg_catalog, pg_temp` and qualifies what it calls: a
 *   function is run by whoever calls it (often the proxy's own, privileged login), and a role
 *   that may create objects in a schema on the caller's path could otherwise shadow a name it
 *   uses. Operators resolve in pg_catalog through the fixed path. The audit functions instead
 *   have SQL-standard bodies, resolved once when created (so that they can still be inlined).
 * - Transforms bind to their table and columns by identity (table OID, column numbers), so a
 *   rename is followed. `provenance.transforms.target_status` says whether the target is still
 *   there (`ok`), gone (`dropped`), or gone with another table (or column) now holding its name
 *   (`replaced`, `replaced_by` naming it): the proxy refuses reads of that table to everyone but
 *   `provenance_admin` until an admin registers the transform again or adopts the new table.
 * - Versions are written only through the functions. The table takes writes from its owner (the
 *   proxy's login) alone; the functions that write run as that owner (SECURITY DEFINER, reviewed
 *   below), and a trigger checks every row: the function hash matches the source, valid_from is
 *   the writing transaction's time, created_by the login that made the change, versions follow
 *   each other; no row is ever updated or deleted.
 */
import type { Migration } from './schema.js';
import { PROVENANCE_FUNCTIONS_UPDATE } from './schema-dag.js';
import { FIXED_PATH, superuserEventTrigger } from './sql-fragments.js';

/** How every function of the schema resolves names. */

/**
 * The live state of a version's target, as a lateral subquery over `v` (a transform_versions
 * row): the table's current name and columns (by OID and column number), and its status.
 */
const TARGET_STATE = `
CROSS JOIN LATERAL (
  SELECT (SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)
            FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           WHERE c.oid = v.target_oid) AS qualified,
         CASE WHEN v.column_attnums IS NOT NULL THEN ARRAY(
           SELECT a.attname::text FROM pg_catalog.unnest(v.column_attnums) WITH ORDINALITY AS k(attnum, i)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = v.target_oid AND a.attnum = k.attnum AND NOT a.attisdropped
            ORDER BY k.i) END AS columns,
         pg_catalog.to_regclass(v.target)::oid AS by_name
) live
CROSS JOIN LATERAL (
  SELECT CASE
           WHEN live.qualified IS NULL THEN CASE WHEN live.by_name IS NULL THEN 'dropped' ELSE 'replaced' END
           WHEN v.column_attnums IS NULL OR pg_catalog.cardinality(live.columns) = pg_catalog.cardinality(v.column_attnums) THEN 'ok'
           WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                         WHERE a.attrelid = v.target_oid AND a.attnum > 0 AND NOT a.attisdropped
                           AND a.attname::text = ANY (v.columns) AND a.attnum <> ALL (v.column_attnums)) THEN 'replaced'
           ELSE 'dropped'
         END AS status
) st`;

/**
 * The two views of the registry, over transform_version's columns; \`added\` are columns of the
 * table that later migrations add to both views (CREATE OR REPLACE VIEW appends them at the end).
 */
export function registryViews(added: readonly string[]): string {
  const more = (prefix: string): string => added.map((c) => `, ${prefix}${c}`).join('');
  return `CREATE OR REPLACE VIEW provenance.transform_versions AS
SELECT name, version, target, target_oid, columns, function_hash, source, params, position, enabled, dropped, origin,
       valid_from,
       pg_catalog.lead(valid_from) OVER (PARTITION BY name ORDER BY version) AS valid_to,
       created_by, column_attnums${more('')}
  FROM provenance.transform_version;

-- target and columns are the table's and columns' names now (renames followed) while the target
-- is there, and as registered otherwise.
CREATE OR REPLACE VIEW provenance.transforms AS
SELECT v.name, v.version,
       CASE WHEN live.qualified IS NULL THEN v.target ELSE v.target_oid::regclass::text END AS target,
       v.target_oid,
       (CASE WHEN st.status = 'ok' THEN live.columns ELSE v.columns END) COLLATE pg_catalog."default" AS columns,
       v.function_hash, v.source, v.params, v.position, v.enabled, v.origin, v.valid_from, v.valid_to,
       st.status AS target_status,
       CASE WHEN st.status = 'replaced' THEN coalesce(live.by_name, v.target_oid) END AS replaced_by,
       v.column_attnums${more('v.')}
  FROM provenance.transform_versions v${TARGET_STATE}
 WHERE v.valid_to IS NULL AND NOT v.dropped;`;
}

export function guardsMigration(channel: string): Migration {
  return {
    version: 3,
    description: 'fixed search paths; transforms bound by identity; versions written only through the functions',
    sql: `
ALTER TABLE provenance.transform_version ADD COLUMN column_attnums smallint[];
-- Rows from before: columns by the numbers they have now, targets schema-qualified (the name a
-- table taking the place of a dropped one would be found by).
UPDATE provenance.transform_version v
   SET column_attnums = ARRAY(
         SELECT a.attnum FROM pg_catalog.unnest(v.columns) WITH ORDINALITY AS k(name, i)
           LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = v.target_oid AND a.attname = k.name AND a.attnum > 0 AND NOT a.attisdropped
          ORDER BY k.i)
 WHERE v.columns IS NOT NULL;
UPDATE provenance.transform_version v
   SET target = pg_catalog.format('%I.%I', n.nspname, c.relname)
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.oid = v.target_oid;
ALTER TABLE provenance.transform_version ALTER COLUMN created_by SET DEFAULT session_user;
ALTER TABLE provenance.transform_version ADD CHECK ((columns IS NULL) = (column_attnums IS NULL)
  AND (columns IS NULL OR pg_catalog.cardinality(columns) = pg_catalog.cardinality(column_attnums)));

-- Only the owner writes, and only through the functions below.
REVOKE INSERT ON provenance.transform_version FROM provenance_admin;

CREATE FUNCTION provenance.guard_transform_version() RETURNS trigger
LANGUAGE plpgsql ${FIXED_PATH} AS $$
DECLARE
  prev provenance.transform_version;
BEGIN
  IF TG_OP <> 'INSERT' THEN
    RAISE EXCEPTION 'transform versions are never changed or removed (%)', TG_OP USING ERRCODE = '42501';
  END IF;
  IF NEW.function_hash IS DISTINCT FROM provenance.function_hash(NEW.source) THEN
    RAISE EXCEPTION 'function_hash of transform "%" version % does not match its source', NEW.name, NEW.version
      USING ERRCODE = '23514';
  END IF;
  IF NEW.valid_from < pg_catalog.transaction_timestamp() OR NEW.valid_from > pg_catalog.clock_timestamp() THEN
    RAISE EXCEPTION 'valid_from of transform "%" version % must be the time of the change', NEW.name, NEW.version
      USING ERRCODE = '23514';
  END IF;
  IF NEW.created_by IS DISTINCT FROM session_user::text THEN
    RAISE EXCEPTION 'created_by of transform "%" version % must be the login making the change', NEW.name, NEW.version
      USING ERRCODE = '23514';
  END IF;
  SELECT * INTO prev FROM provenance.transform_version p WHERE p.name = NEW.name ORDER BY p.version DESC LIMIT 1;
  IF NEW.version IS DISTINCT FROM coalesce(prev.version, 0) + 1 OR NEW.valid_from < prev.valid_from THEN
    RAISE EXCEPTION 'transform "%" version % does not follow version %', NEW.name, NEW.version, coalesce(prev.version, 0)
      USING ERRCODE = '23514';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER guard_insert BEFORE INSERT OR UPDATE OR DELETE ON provenance.transform_version
  FOR EACH ROW EXECUTE FUNCTION provenance.guard_transform_version();
CREATE TRIGGER guard_truncate BEFORE TRUNCATE ON provenance.transform_version
  FOR EACH STATEMENT EXECUTE FUNCTION provenance.guard_transform_version();

${registryViews([])}

CREATE OR REPLACE FUNCTION provenance.function_hash(source text) RETURNS text
LANGUAGE sql STABLE ${FIXED_PATH} AS $$
  SELECT pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(source, 'UTF8') || '\\x00'::bytea ||
         pg_catalog.convert_to((SELECT s.value FROM provenance.settings s WHERE s.key = 'sandbox_runtime_version'), 'UTF8')), 'hex')
$$;

-- SECURITY DEFINER (reviewed): the table takes inserts from its owner alone, so the functions
-- that add versions run as the owner. EXECUTE on them is what grants the right to change the
-- registry (provenance_admin). They take no SQL text, build none, and call only qualified names
-- under a fixed search path; created_by is the caller's login (session_user).
CREATE OR REPLACE FUNCTION provenance._new_version(p_name text, p_params jsonb, p_position integer, p_enabled boolean, p_dropped boolean)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER ${FIXED_PATH} AS $$
#variable_conflict use_variable
DECLARE
  cur provenance.transform_version;
  cols text[];
BEGIN
  -- Serialise changes to one transform: two sessions must not both create version n+1.
  PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('provenance.transform:' || p_name));
  SELECT * INTO cur FROM provenance.transform_version WHERE name = p_name ORDER BY version DESC LIMIT 1;
  IF NOT FOUND OR cur.dropped THEN
    RAISE EXCEPTION 'transform "%" does not exist', p_name USING ERRCODE = '42704';
  END IF;
  -- The columns' names as they are now, where they still exist.
  SELECT t.columns INTO cols FROM provenance.transforms t WHERE t.name = p_name AND t.target_status = 'ok';
  INSERT INTO provenance.transform_version
    (name, version, target_oid, target, columns, column_attnums, source, function_hash, params, position, enabled, dropped, origin)
  VALUES (cur.name, cur.version + 1, cur.target_oid, cur.target, coalesce(cols, cur.columns), cur.column_attnums,
          cur.source, cur.function_hash, coalesce(p_params, cur.params), coalesce(p_position, cur.position),
          coalesce(p_enabled, cur.enabled), p_dropped, cur.origin);
  PERFORM pg_catalog.pg_notify('${channel}', p_name);
  RETURN cur.version + 1;
END $$;

CREATE OR REPLACE FUNCTION provenance.register_transform(name text, target regclass, columns text[], source text, params jsonb DEFAULT '{}', origin text DEFAULT 'sql')
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER ${FIXED_PATH} AS $$
#variable_conflict use_variable
DECLARE
  cur provenance.transform_version;
  col text;
  attnums smallint[];
  attnum smallint;
  qualified text;
  next_version integer;
  next_position integer;
BEGIN
  IF name IS NULL OR target IS NULL OR source IS NULL THEN
    RAISE EXCEPTION 'name, target and source must not be null' USING ERRCODE = '22004';
  END IF;
  IF params IS NULL OR pg_catalog.jsonb_typeof(params) <> 'object' THEN
    RAISE EXCEPTION 'params must be a JSON object' USING ERRCODE = '22023';
  END IF;
  IF columns IS NOT NULL THEN
    IF pg_catalog.cardinality(columns) = 0 THEN
      RAISE EXCEPTION 'columns must be NULL (a row transform) or name at least one column' USING ERRCODE = '22023';
    END IF;
    attnums := '{}';
    FOREACH col IN ARRAY columns LOOP
      SELECT a.attnum INTO attnum FROM pg_catalog.pg_attribute a
       WHERE a.attrelid = target AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
      IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of relation % does not exist', col, target USING ERRCODE = '42703';
      END IF;
      attnums := attnums || attnum;
    END LOOP;
  END IF;
  SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) INTO qualified
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = target;
  PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('provenance.transform:' || name));
  SELECT * INTO cur FROM provenance.transform_version v WHERE v.name = register_transform.name ORDER BY v.version DESC LIMIT 1;
  next_version := coalesce(cur.version, 0) + 1;
  IF cur.name IS NOT NULL AND NOT cur.dropped AND cur.target_oid = target::oid THEN
    next_position := cur.position;
  ELSE
    SELECT coalesce(pg_catalog.max(t.position), 0) + 1 INTO next_position FROM provenance.transforms t WHERE t.target_oid = target::oid;
  END IF;
  INSERT INTO provenance.transform_version
    (name, version, target_oid, target, columns, column_attnums, source, function_hash, params, position, enabled, origin)
  VALUES (name, next_version, target::oid, qualified, columns, attnums, source, provenance.function_hash(source), params,
          next_position, coalesce(cur.enabled OR cur.dropped, true), origin);
  PERFORM pg_catalog.pg_notify('${channel}', name);
  RETURN next_version;
END $$;

-- An admin's decision on a table that took the place (or name) of a transform's target: bind
-- every transform in force whose target it replaced to it, columns matched by the names they
-- were registered with. Returns how many were bound.
CREATE FUNCTION provenance.adopt_table(tbl regclass) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER ${FIXED_PATH} AS $$
DECLARE
  t record;
  n integer := 0;
BEGIN
  FOR t IN SELECT v.name, v.columns, v.source, v.params, v.origin FROM provenance.transforms x
             JOIN provenance.transform_versions v ON v.name = x.name AND v.version = x.version
            WHERE x.target_status = 'replaced' AND x.replaced_by = tbl::oid ORDER BY x.position, x.name LOOP
    PERFORM provenance.register_transform(t.name, tbl, t.columns, t.source, t.params, t.origin);
    n := n + 1;
  END LOOP;
  IF n = 0 THEN
    RAISE EXCEPTION 'no transform in force had its target replaced by %', tbl USING ERRCODE = '42704';
  END IF;
  RETURN n;
END $$;

CREATE OR REPLACE FUNCTION provenance.set_transform_params(name text, params jsonb) RETURNS integer
LANGUAGE plpgsql ${FIXED_PATH} AS $$
BEGIN
  IF $2 IS NULL OR pg_catalog.jsonb_typeof($2) <> 'object' THEN
    RAISE EXCEPTION 'params must be a JSON object' USING ERRCODE = '22023';
  END IF;
  RETURN provenance._new_version($1, $2, NULL, NULL, false);
END $$;

CREATE OR REPLACE FUNCTION provenance.move_transform(name text, "position" integer) RETURNS integer
LANGUAGE sql ${FIXED_PATH} AS $$ SELECT provenance._new_version($1, NULL, $2, NULL, false) $$;

CREATE OR REPLACE FUNCTION provenance.disable_transform(name text) RETURNS integer
LANGUAGE sql ${FIXED_PATH} AS $$ SELECT provenance._new_version($1, NULL, NULL, false, false) $$;

CREATE OR REPLACE FUNCTION provenance.enable_transform(name text) RETURNS integer
LANGUAGE sql ${FIXED_PATH} AS $$ SELECT provenance._new_version($1, NULL, NULL, true, false) $$;

CREATE OR REPLACE FUNCTION provenance.drop_transform(name text) RETURNS integer
LANGUAGE sql ${FIXED_PATH} AS $$ SELECT provenance._new_version($1, NULL, NULL, NULL, true) $$;

${PROVENANCE_FUNCTIONS_UPDATE}
-- Any function of the schema not replaced above gets the fixed path too, but those with an
-- SQL-standard body: it was resolved when created, and the planner inlines it only without one.
DO $$
DECLARE f regprocedure;
BEGIN
  FOR f IN SELECT p.oid FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'provenance'::regnamespace AND p.prosqlbody IS NULL
              AND NOT coalesce(p.proconfig, '{}') @> ARRAY['search_path=pg_catalog, pg_temp'] LOOP
    EXECUTE pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp', f);
  END LOOP;
END $$;

-- Tables created, altered or dropped outside the proxy: proxies read the registry again, so a
-- table taking a target's place is refused from then on. Event triggers take a superuser; with
-- another login the proxy learns of such changes at the next registry change or through its own
-- clients' DDL.
CREATE FUNCTION provenance.announce_table_change() RETURNS event_trigger
LANGUAGE plpgsql ${FIXED_PATH} AS $$
BEGIN
  PERFORM pg_catalog.pg_notify('${channel}', '');
END $$;
${superuserEventTrigger('provenance_table_change', ['CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE', 'DROP TABLE'], 'provenance.announce_table_change')}

REVOKE ALL ON FUNCTION provenance.adopt_table(regclass), provenance.guard_transform_version(), provenance.announce_table_change() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION provenance.adopt_table(regclass) TO provenance_admin;
GRANT SELECT ON provenance.transforms, provenance.transform_versions TO PUBLIC;
`,
  };
}
