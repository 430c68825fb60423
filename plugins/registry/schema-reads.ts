/**
 * Migration 7 of the `provenance` schema: a row transform declares the columns it reads.
 *
 * `register_transform(…, reads text[] DEFAULT NULL)`: NULL means every column of the table; a
 * list names the columns the transform's row objects must hold, whatever a statement selects (the
 * proxy fetches the missing ones alongside and strips them before the client sees the rows).
 * Column transforms take no list: they read their own columns. Like `columns`, the list is bound
 * by column number (`reads_attnums`), so renames are followed (`reads` keeps the names as
 * registered).
 *
 * Every change other than registering goes through one `_new_version`, which copies the whole
 * previous version and sets what changes, so it keeps the transform's `reads` (and whatever
 * columns later migrations add).
 */
import type { Migration } from './schema.js';
import { registryViews } from './schema-guards.js';
import { FIXED_PATH } from './sql-fragments.js';
import { GUARD_LEVELS } from './schema-column-guards.js';

export function readsMigration(channel: string): Migration {
  return {
    version: 7,
    description: 'row transforms declare the columns they read',
    sql: `
ALTER TABLE provenance.transform_version ADD COLUMN reads text[], ADD COLUMN reads_attnums smallint[];
ALTER TABLE provenance.transform_version ADD CHECK ((reads IS NULL) = (reads_attnums IS NULL)
  AND (reads IS NULL OR columns IS NULL)
  AND (reads IS NULL OR pg_catalog.cardinality(reads) = pg_catalog.cardinality(reads_attnums)));

${registryViews(['guard', 'exempt', 'reads', 'reads_attnums'])}

-- SECURITY DEFINER (reviewed, as in migration 3): only the owner inserts versions. The previous
-- version is copied whole, then the fields that change are set.
CREATE FUNCTION provenance._new_version(p_name text, p_params jsonb, p_position integer, p_enabled boolean, p_dropped boolean,
                                        p_guard text, p_exempt text[])
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
  cur.version := cur.version + 1;
  cur.columns := coalesce(cols, cur.columns);
  cur.params := coalesce(p_params, cur.params);
  cur.position := coalesce(p_position, cur.position);
  cur.enabled := coalesce(p_enabled, cur.enabled);
  cur.dropped := p_dropped;
  cur.guard := coalesce(p_guard, cur.guard);
  cur.exempt := coalesce(p_exempt, cur.exempt);
  cur.valid_from := pg_catalog.clock_timestamp();
  cur.created_by := session_user;
  INSERT INTO provenance.transform_version VALUES (cur.*);
  PERFORM pg_catalog.pg_notify('${channel}', p_name);
  RETURN cur.version;
END $$;

CREATE OR REPLACE FUNCTION provenance._new_version(p_name text, p_params jsonb, p_position integer, p_enabled boolean, p_dropped boolean)
RETURNS integer LANGUAGE sql ${FIXED_PATH} AS $$ SELECT provenance._new_version($1, $2, $3, $4, $5, NULL, NULL) $$;

CREATE OR REPLACE FUNCTION provenance.set_transform_guard(name text, guard text, exempt text[] DEFAULT '{}')
RETURNS integer LANGUAGE plpgsql ${FIXED_PATH} AS $$
BEGIN
  IF $1 IS NULL OR $2 IS NULL OR $3 IS NULL THEN
    RAISE EXCEPTION 'name, guard and exempt must not be null' USING ERRCODE = '22004';
  END IF;
  IF $2 NOT IN (${GUARD_LEVELS.map((g) => `'${g}'`).join(', ')}) THEN
    RAISE EXCEPTION 'guard must be one of ${GUARD_LEVELS.join(', ')}, not "%"', $2 USING ERRCODE = '22023';
  END IF;
  IF pg_catalog.array_position($3, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'exempt must not hold NULL' USING ERRCODE = '22004';
  END IF;
  RETURN provenance._new_version($1, NULL, NULL, NULL, false, $2, $3);
END $$;

-- One signature with reads last: an overload beside the old one would make calls ambiguous.
DROP FUNCTION provenance.register_transform(text, regclass, text[], text, jsonb, text);
CREATE FUNCTION provenance.register_transform(name text, target regclass, columns text[], source text, params jsonb DEFAULT '{}',
                                              origin text DEFAULT 'sql', reads text[] DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER ${FIXED_PATH} AS $$
#variable_conflict use_variable
DECLARE
  cur provenance.transform_version;
  col text;
  attnums smallint[];
  read_attnums smallint[];
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
    IF reads IS NOT NULL THEN
      RAISE EXCEPTION 'reads is for row transforms (columns NULL): a column transform reads its own columns' USING ERRCODE = '22023';
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
  IF reads IS NOT NULL THEN
    read_attnums := '{}';
    FOREACH col IN ARRAY reads LOOP
      SELECT a.attnum INTO attnum FROM pg_catalog.pg_attribute a
       WHERE a.attrelid = target AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
      IF NOT FOUND OR col IS NULL THEN
        RAISE EXCEPTION 'column "%" of relation % does not exist', col, target USING ERRCODE = '42703';
      END IF;
      IF attnum = ANY (read_attnums) THEN
        RAISE EXCEPTION 'column "%" is named twice in reads', col USING ERRCODE = '22023';
      END IF;
      read_attnums := read_attnums || attnum;
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
    (name, version, target_oid, target, columns, column_attnums, reads, reads_attnums, source, function_hash, params, position,
     enabled, origin)
  VALUES (name, next_version, target::oid, qualified, columns, attnums, reads, read_attnums, source, provenance.function_hash(source),
          params, next_position, coalesce(cur.enabled OR cur.dropped, true), origin);
  PERFORM pg_catalog.pg_notify('${channel}', name);
  RETURN next_version;
END $$;

-- Adopting a table binds each transform again with what it was registered with, reads included.
CREATE OR REPLACE FUNCTION provenance.adopt_table(tbl regclass) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER ${FIXED_PATH} AS $$
DECLARE
  t record;
  n integer := 0;
BEGIN
  FOR t IN SELECT v.name, v.columns, v.source, v.params, v.origin, v.reads FROM provenance.transforms x
             JOIN provenance.transform_versions v ON v.name = x.name AND v.version = x.version
            WHERE x.target_status = 'replaced' AND x.replaced_by = tbl::oid ORDER BY x.position, x.name LOOP
    PERFORM provenance.register_transform(t.name, tbl, t.columns, t.source, t.params, t.origin, t.reads);
    n := n + 1;
  END LOOP;
  IF n = 0 THEN
    RAISE EXCEPTION 'no transform in force had its target replaced by %', tbl USING ERRCODE = '42704';
  END IF;
  RETURN n;
END $$;

REVOKE ALL ON FUNCTION provenance.register_transform(text, regclass, text[], text, jsonb, text, text[]),
  provenance._new_version(text, jsonb, integer, boolean, boolean, text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION provenance._new_version(text, jsonb, integer, boolean, boolean, text, text[]) TO provenance_admin;
GRANT EXECUTE ON FUNCTION provenance.register_transform(text, regclass, text[], text, jsonb, text, text[]) TO provenance_admin;
GRANT SELECT ON provenance.transforms, provenance.transform_versions TO PUBLIC;
`,
  };
}
