/**
 * Migration 6 of the `provenance` schema: a transform's guard, its rule for SQL that could read
 * around it (`off`, `values`, `strict`), and the roles exempt from that rule.
 *
 * Both are fields of a version, as everything a transform is: `set_transform_guard` adds a
 * version, and every other change carries the guard and exemptions of the version before it (a
 * trigger fills them in when a writer leaves them NULL), so re-registering a transform, changing
 * its parameters or adopting a new table never lowers its guard. A transform registered again
 * after a drop starts over at `off`.
 */
import type { Migration } from './schema.js';
import { registryViews } from './schema-guards.js';
import { FIXED_PATH } from './sql-fragments.js';

export const GUARD_LEVELS = ['off', 'values', 'strict'] as const;
export type GuardLevel = (typeof GUARD_LEVELS)[number];

export function columnGuardsMigration(channel: string): Migration {
  return {
    version: 6,
    description: 'guards of transforms: what SQL may do with the columns they transform',
    sql: `
ALTER TABLE provenance.transform_version
  ADD COLUMN guard text NOT NULL DEFAULT 'off' CHECK (guard IN (${GUARD_LEVELS.map((g) => `'${g}'`).join(', ')})),
  ADD COLUMN exempt text[] NOT NULL DEFAULT '{}' CHECK (pg_catalog.array_position(exempt, NULL) IS NULL);
-- No default from now on: a writer that does not say carries the previous version's.
ALTER TABLE provenance.transform_version ALTER COLUMN guard DROP DEFAULT, ALTER COLUMN exempt DROP DEFAULT;

CREATE FUNCTION provenance.carry_guard() RETURNS trigger
LANGUAGE plpgsql ${FIXED_PATH} AS $$
DECLARE
  prev provenance.transform_version;
BEGIN
  IF NEW.guard IS NULL OR NEW.exempt IS NULL THEN
    SELECT * INTO prev FROM provenance.transform_version p WHERE p.name = NEW.name ORDER BY p.version DESC LIMIT 1;
    IF NOT FOUND OR prev.dropped THEN
      prev.guard := 'off';
      prev.exempt := '{}';
    END IF;
    NEW.guard := coalesce(NEW.guard, prev.guard);
    NEW.exempt := coalesce(NEW.exempt, prev.exempt);
  END IF;
  RETURN NEW;
END $$;
-- Named to sort before guard_insert: row triggers of one event fire in name order, and the
-- checks of guard_insert see the completed row.
CREATE TRIGGER carry_guard BEFORE INSERT ON provenance.transform_version
  FOR EACH ROW EXECUTE FUNCTION provenance.carry_guard();

${registryViews(['guard', 'exempt'])}

-- SECURITY DEFINER (reviewed): like _new_version, it writes a version, which only the table's
-- owner may; EXECUTE is granted to provenance_admin alone. It takes no SQL text, builds none, and
-- calls only qualified names under a fixed search path; created_by is the caller's login.
CREATE FUNCTION provenance.set_transform_guard(name text, guard text, exempt text[] DEFAULT '{}')
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER ${FIXED_PATH} AS $$
#variable_conflict use_variable
DECLARE
  cur provenance.transform_version;
  cols text[];
BEGIN
  IF name IS NULL OR guard IS NULL OR exempt IS NULL THEN
    RAISE EXCEPTION 'name, guard and exempt must not be null' USING ERRCODE = '22004';
  END IF;
  IF guard NOT IN (${GUARD_LEVELS.map((g) => `'${g}'`).join(', ')}) THEN
    RAISE EXCEPTION 'guard must be one of ${GUARD_LEVELS.join(', ')}, not "%"', guard USING ERRCODE = '22023';
  END IF;
  IF pg_catalog.array_position(exempt, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'exempt must not hold NULL' USING ERRCODE = '22004';
  END IF;
  -- Serialise changes to one transform: two sessions must not both create version n+1.
  PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('provenance.transform:' || name));
  SELECT * INTO cur FROM provenance.transform_version v WHERE v.name = set_transform_guard.name ORDER BY v.version DESC LIMIT 1;
  IF NOT FOUND OR cur.dropped THEN
    RAISE EXCEPTION 'transform "%" does not exist', name USING ERRCODE = '42704';
  END IF;
  -- The columns' names as they are now, where they still exist (as _new_version records them).
  SELECT t.columns INTO cols FROM provenance.transforms t WHERE t.name = cur.name AND t.target_status = 'ok';
  INSERT INTO provenance.transform_version
    (name, version, target_oid, target, columns, column_attnums, source, function_hash, params, position, enabled, dropped,
     origin, guard, exempt)
  VALUES (cur.name, cur.version + 1, cur.target_oid, cur.target, coalesce(cols, cur.columns), cur.column_attnums, cur.source,
          cur.function_hash, cur.params, cur.position, cur.enabled, false, cur.origin, guard, exempt);
  PERFORM pg_catalog.pg_notify('${channel}', name);
  RETURN cur.version + 1;
END $$;

REVOKE ALL ON FUNCTION provenance.carry_guard(), provenance.set_transform_guard(text, text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION provenance.set_transform_guard(text, text, text[]) TO provenance_admin;
GRANT SELECT ON provenance.transforms, provenance.transform_versions TO PUBLIC;
`,
  };
}
