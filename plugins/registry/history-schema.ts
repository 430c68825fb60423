/**
 * Migration 5 of the `provenance` schema: the history of the original rows of tracked tables,
 * captured inside the database so that writes that bypass the proxy are kept too.
 *
 * - Each tracked table has a history table `provenance.history_<table oid>`: the table's columns
 *   (by name and type), then `provenance_valid_from`, `provenance_valid_to` (NULL: still valid)
 *   and `provenance_row_hash` (finds the open version of a row that changes; tables need no key;
 *   since migration 9 a table with a usable primary key is found by that, and its hash is NULL).
 * - Statement-level triggers with transition tables (INSERT, incl. COPY FROM and the insert arm of
 *   ON CONFLICT; UPDATE; DELETE; TRUNCATE) close the versions a statement replaces and add the
 *   ones it writes, in one query each (since migration 9 in a function generated per table:
 *   history-compiled.ts).
 * - A version is valid from its writing transaction's start (`now()`, as SQL:2011 system
 *   versioning): the answer as of a moment holds every transaction that had started by then and
 *   committed, also one still open when a read at that moment ran (which did not see it).
 * - ALTER TABLE on a tracked table: history columns follow the table's by column number. A column
 *   added is added (older versions read NULL; with a default, every row gets a version at the
 *   ALTER), a rename is followed, a dropped column's values stay in the history under
 *   `provenance_dropped_<number>_<name>`; a change of type is refused (0A000). With a superuser
 *   login an event trigger does this at the ALTER; otherwise the next write to the table does it
 *   (or is refused), and until then reads give added columns NULL.
 *
 * The trigger and event-trigger functions and the admin functions run as the schema's owner
 * (SECURITY DEFINER, reviewed below): only the owner writes history tables. Reading goes through
 * `provenance.rows_as_of`, run as the caller: the history table grants SELECT to the roles that
 * may read the table (kept in step on GRANT/REVOKE and at every write), and the function checks
 * the caller's SELECT on the table itself.
 */
import type { Migration } from './schema.js';
import { HISTORY_CAPTURE_SQL } from './history-capture.js';
import { FIXED_PATH } from './sql-fragments.js';

/**
 * PL/pgSQL that creates (`verb`: CREATE, or CREATE OR REPLACE) the four capture triggers of table
 * `target` calling function `fn` (SQL expressions; needs a text variable `stmt`), skipping those
 * for which `skip` holds (an SQL condition on `stmt`).
 */
export const captureTriggers = (verb: string, target: string, fn: string, skip = 'false'): string => `FOREACH stmt IN ARRAY ARRAY[
    'insert AFTER INSERT ON %s REFERENCING NEW TABLE AS provenance_new',
    'update AFTER UPDATE ON %s REFERENCING OLD TABLE AS provenance_old NEW TABLE AS provenance_new',
    'delete AFTER DELETE ON %s REFERENCING OLD TABLE AS provenance_old',
    'truncate AFTER TRUNCATE ON %s'] LOOP
    CONTINUE WHEN ${skip};
    EXECUTE pg_catalog.format('${verb} TRIGGER provenance_history_' || stmt || ' FOR EACH STATEMENT EXECUTE FUNCTION %s()', ${target}, ${fn});
  END LOOP;`;

export const HISTORY_MIGRATION: Migration = {
  version: 5,
  description: 'history of the original rows of tracked tables',
  sql: `
${HISTORY_CAPTURE_SQL}
-- SECURITY DEFINER (reviewed): only provenance_admin may call it. It creates the history table
-- and triggers from quoted catalog names; the owner needs TRIGGER and SELECT on the table.
CREATE FUNCTION provenance.track(target regclass) RETURNS timestamptz
LANGUAGE plpgsql SECURITY DEFINER ${FIXED_PATH} AS $$
#variable_conflict use_variable
DECLARE
  h provenance.history_table;
  started timestamptz := pg_catalog.now();
  qualified text;
  hist text;
  stmt text;
BEGIN
  IF target IS NULL THEN
    RAISE EXCEPTION 'target must not be null' USING ERRCODE = '22004';
  END IF;
  SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) INTO qualified
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE c.oid = target AND c.relkind = 'r';
  IF qualified IS NULL THEN
    RAISE EXCEPTION '% is not an ordinary table: only those can be tracked', target USING ERRCODE = '42809';
  END IF;
  PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('provenance.history:' || target::oid::text));
  SELECT * INTO h FROM provenance.history_table t WHERE t.target_oid = target;
  IF FOUND AND h.tracking THEN
    RETURN h.since;
  END IF;
  -- No write may fall between the first versions and the triggers.
  EXECUTE pg_catalog.format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', target);
  IF h.target_oid IS NULL THEN
    hist := pg_catalog.format('provenance.%I', 'history_' || target::oid::text);
    -- The table's columns are added by _history_sync below.
    EXECUTE pg_catalog.format(
      'CREATE TABLE %s (provenance_valid_from timestamptz NOT NULL, provenance_valid_to timestamptz, provenance_row_hash text NOT NULL,'
      ' CHECK (provenance_valid_to >= provenance_valid_from))', hist);
    EXECUTE pg_catalog.format(
      'CREATE INDEX ON %s USING gist (pg_catalog.tstzrange(provenance_valid_from, provenance_valid_to))', hist);
    EXECUTE pg_catalog.format('CREATE INDEX ON %s (provenance_row_hash) WHERE provenance_valid_to IS NULL', hist);
    EXECUTE pg_catalog.format('REVOKE ALL ON %s FROM PUBLIC', hist);
    INSERT INTO provenance.history_table (target_oid, target, history, since)
      VALUES (target, qualified, hist::regclass, started) RETURNING * INTO h;
  ELSE
    UPDATE provenance.history_table t SET tracking = true, until = NULL, since = started, target = qualified
     WHERE t.target_oid = target RETURNING * INTO h;
  END IF;
  ${captureTriggers('CREATE', 'target', "'provenance.capture_history'")}
  -- After the triggers: the history's ALTERs below fire the event trigger, which checks them.
  PERFORM provenance._history_sync(h);
  PERFORM provenance._history_snapshot(h, started);
  PERFORM provenance._history_grants(h);
  RETURN started;
END $$;

-- SECURITY DEFINER (reviewed): provenance_admin only; drops the capture triggers, keeps the history.
CREATE FUNCTION provenance.untrack(target regclass) RETURNS timestamptz
LANGUAGE plpgsql SECURITY DEFINER ${FIXED_PATH} AS $$
#variable_conflict use_variable
DECLARE
  h provenance.history_table;
  ended timestamptz := pg_catalog.now();
  op text;
BEGIN
  PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('provenance.history:' || target::oid::text));
  SELECT * INTO h FROM provenance.history_table t WHERE t.target_oid = target AND t.tracking;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'table % is not tracked', target USING ERRCODE = '55000';
  END IF;
  UPDATE provenance.history_table t SET tracking = false, until = ended WHERE t.target_oid = target;
  FOREACH op IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
    EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS %I ON %s', 'provenance_history_' || op, target);
  END LOOP;
  PERFORM provenance._history_end(h, ended);
  RETURN ended;
END $$;

-- The rows of a tracked table as of a moment, as the table's own row type:
--   SELECT * FROM provenance.rows_as_of(NULL::public.customers, '2026-10-27 10:00+00') AS customers
-- Runs as the caller, who needs SELECT on the table.
CREATE FUNCTION provenance.rows_as_of(target anyelement, at timestamptz) RETURNS SETOF anyelement
LANGUAGE plpgsql STABLE ${FIXED_PATH} AS $$
DECLARE
  rel oid;
  h provenance.history_table;
  cols text;
BEGIN
  SELECT t.typrelid INTO rel FROM pg_catalog.pg_type t WHERE t.oid = pg_catalog.pg_typeof(target);
  IF rel IS NULL OR rel = 0 THEN
    RAISE EXCEPTION 'rows_as_of takes a row of the table, e.g. NULL::customers' USING ERRCODE = '42809';
  END IF;
  IF at IS NULL THEN
    RAISE EXCEPTION 'the moment must not be null' USING ERRCODE = '22004';
  END IF;
  IF NOT pg_catalog.has_table_privilege(rel, 'SELECT') THEN
    RAISE EXCEPTION 'permission denied for table %', rel::regclass USING ERRCODE = '42501';
  END IF;
  SELECT * INTO h FROM provenance.history_table t WHERE t.target_oid = rel;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'table % is not tracked: it has no history', rel::regclass USING ERRCODE = '55000',
      HINT = 'An admin can start its history with provenance.track.';
  END IF;
  IF at > pg_catalog.clock_timestamp() THEN
    RAISE EXCEPTION 'moment % is in the future: the history of table % starts at % and ends now', at, rel::regclass, h.since
      USING ERRCODE = '22023';
  END IF;
  IF h.tracking AND NOT provenance._history_intact(rel) THEN
    RAISE EXCEPTION 'the history of table % is incomplete: its capture triggers were dropped or disabled', rel::regclass
      USING ERRCODE = '55000', HINT = 'Track it again: provenance.untrack, then provenance.track.';
  END IF;
  IF at < h.since THEN
    RAISE EXCEPTION 'moment % is before the history of table % starts: the earliest moment available is %', at, rel::regclass, h.since
      USING ERRCODE = '22023';
  END IF;
  IF NOT h.tracking AND at >= h.until THEN
    RAISE EXCEPTION 'moment % is after the history of table % ends at % (history available from %)', at, rel::regclass, h.until, h.since
      USING ERRCODE = '22023';
  END IF;
  -- Columns by number; those the history does not hold yet (added without an event trigger) read NULL.
  SELECT pg_catalog.string_agg(
           CASE WHEN c.history_name IS NULL THEN pg_catalog.format('NULL::%s', pg_catalog.format_type(a.atttypid, a.atttypmod))
                ELSE pg_catalog.format('v.%I', c.history_name) END, ', ' ORDER BY a.attnum)
    INTO cols FROM pg_catalog.pg_attribute a
    LEFT JOIN provenance.history_column c ON c.target_oid = rel AND c.attnum = a.attnum AND NOT c.dropped
   WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped;
  RETURN QUERY EXECUTE pg_catalog.format(
    'SELECT %s FROM %s v WHERE pg_catalog.tstzrange(v.provenance_valid_from, v.provenance_valid_to) OPERATOR(pg_catalog.@>) $1',
    coalesce(cols, ''), h.history) USING at;
END $$;

-- SECURITY DEFINER (reviewed): provenance_admin only; counts the versions of one history table.
CREATE FUNCTION provenance._history_versions(h regclass) RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER ${FIXED_PATH} AS $$
DECLARE
  n bigint;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM provenance.history_table t WHERE t.history = h) THEN
    RAISE EXCEPTION '% is not a history table', h USING ERRCODE = '42809';
  END IF;
  EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM %s', h) INTO n;
  RETURN n;
END $$;

CREATE VIEW provenance.tracked AS
SELECT coalesce((SELECT c.oid::regclass::text FROM pg_catalog.pg_class c WHERE c.oid = t.target_oid), t.target) AS target,
       t.target_oid, t.since, t.tracking, t.until,
       provenance._history_versions(t.history) AS versions,
       pg_catalog.pg_total_relation_size(t.history) AS bytes,
       t.retention, t.history
  FROM provenance.history_table t;

-- SECURITY DEFINER (reviewed): provenance_admin only.
CREATE FUNCTION provenance.set_retention(target regclass, keep interval) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER ${FIXED_PATH} AS $$
#variable_conflict use_variable
BEGIN
  UPDATE provenance.history_table t SET retention = keep WHERE t.target_oid = target;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'table % is not tracked', target USING ERRCODE = '55000';
  END IF;
END $$;

-- SECURITY DEFINER (reviewed): provenance_admin only. Removes the versions that ended before the
-- retention window starts and are valid at no pinned moment; the history then starts at the
-- window's start. Returns how many versions it removed.
CREATE FUNCTION provenance.prune_history() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER ${FIXED_PATH} AS $$
DECLARE
  h provenance.history_table;
  cutoff timestamptz;
  n bigint;
  total bigint := 0;
BEGIN
  FOR h IN SELECT * FROM provenance.history_table t WHERE t.retention IS NOT NULL ORDER BY t.target_oid LOOP
    cutoff := pg_catalog.now() - h.retention;
    EXECUTE pg_catalog.format(
      'DELETE FROM %s v WHERE v.provenance_valid_to <= $1
          AND NOT EXISTS (SELECT 1 FROM provenance.history_pin p WHERE p.target_oid = $2
                             AND pg_catalog.tstzrange(v.provenance_valid_from, v.provenance_valid_to) OPERATOR(pg_catalog.@>) p.at)',
      h.history) USING cutoff, h.target_oid;
    GET DIAGNOSTICS n = ROW_COUNT;
    total := total + n;
    UPDATE provenance.history_table t SET since = GREATEST(t.since, cutoff) WHERE t.target_oid = h.target_oid;
  END LOOP;
  RETURN total;
END $$;

-- A table gets tracked when a transform is registered on it. A table that cannot be (not an
-- ordinary table, no privilege) does not stop the registration: the registering session gets a
-- WARNING and reads as of a moment will refuse the table.
CREATE FUNCTION provenance._track_for_transform(target_oid oid) RETURNS void
LANGUAGE plpgsql ${FIXED_PATH} AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM provenance.history_table t WHERE t.target_oid = _track_for_transform.target_oid AND t.tracking)
     OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = _track_for_transform.target_oid AND c.relkind = 'r') THEN
    RETURN;
  END IF;
  PERFORM provenance.track(target_oid::regclass);
EXCEPTION WHEN OTHERS THEN
  RAISE WARNING 'table % is not tracked: %', target_oid::regclass, SQLERRM;
END $$;

CREATE FUNCTION provenance.track_transform_target() RETURNS trigger
LANGUAGE plpgsql ${FIXED_PATH} AS $$
BEGIN
  IF NOT NEW.dropped THEN
    PERFORM provenance._track_for_transform(NEW.target_oid);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER track_target AFTER INSERT ON provenance.transform_version
  FOR EACH ROW EXECUTE FUNCTION provenance.track_transform_target();

SELECT provenance._track_for_transform(t.target_oid)
  FROM (SELECT DISTINCT x.target_oid FROM provenance.transforms x WHERE x.target_status = 'ok') t;

REVOKE ALL ON provenance.history_table, provenance.history_column, provenance.history_pin, provenance.tracked FROM PUBLIC;
REVOKE ALL ON FUNCTION provenance._history_sync(provenance.history_table), provenance._history_grants(provenance.history_table),
  provenance._history_end(provenance.history_table, timestamptz),
  provenance._history_snapshot(provenance.history_table, timestamptz), provenance.capture_history(),
  provenance.track(regclass), provenance.untrack(regclass), provenance._history_versions(regclass),
  provenance.set_retention(regclass, interval), provenance.prune_history(), provenance._track_for_transform(oid),
  provenance.track_transform_target(), provenance.history_ddl() FROM PUBLIC;
GRANT SELECT ON provenance.history_table, provenance.history_column TO PUBLIC;
GRANT SELECT ON provenance.tracked, provenance.history_pin TO provenance_admin;
GRANT EXECUTE ON FUNCTION provenance.track(regclass), provenance.untrack(regclass), provenance._history_versions(regclass),
  provenance.set_retention(regclass, interval), provenance.prune_history() TO provenance_admin;
`,
};
