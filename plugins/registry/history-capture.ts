/**
 * The capture half of the history migration: the tables that describe each history, the
 * statement-level triggers that write it, and the event trigger that keeps its columns in step
 * with the table's (see history-schema.ts for the whole design).
 */
import { FIXED_PATH, superuserEventTrigger } from './sql-fragments.js';

/**
 * A row's hash, from its columns as JSON by the table's current column names (NULLs left out, so
 * a column added without a value changes no hash).
 */
export const ROW_HASH = (json: string): string => `pg_catalog.md5(pg_catalog.jsonb_strip_nulls(${json})::text)`;

/** The live columns of table `rel`, quoted, in order (prefixed with `alias.` when given). */
const LIVE_COLUMNS = (rel: string, alias: string): string => `(
  SELECT pg_catalog.string_agg(${alias === '' ? '' : `'${alias}.' || `}pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum)
    FROM pg_catalog.pg_attribute a WHERE a.attrelid = ${rel} AND a.attnum > 0 AND NOT a.attisdropped)`;

/**
 * Computes the hashes of the open versions again from the history's columns (after the columns
 * changed: hashes follow their names). Needs a text variable `proj` and the history `h`.
 */
export const REHASH_OPEN_VERSIONS = `SELECT pg_catalog.string_agg(pg_catalog.format('v.%I', c.history_name), ', ' ORDER BY c.attnum) INTO proj
      FROM provenance.history_column c WHERE c.target_oid = h.target_oid AND NOT c.dropped;
    EXECUTE pg_catalog.format($q$UPDATE %s v SET provenance_row_hash = ${ROW_HASH('(SELECT pg_catalog.to_jsonb(r) FROM (SELECT %s) r)')}
       WHERE v.provenance_valid_to IS NULL$q$, h.history, coalesce(proj, ''));`;

/**
 * The function that brings a history's columns in step with its table's; `afterChanges` runs at
 * its end, where `changed` (columns renamed or dropped) and `added` (how many added) are known.
 */
export function historySyncFunction(afterChanges: string): string {
  return `
-- History columns follow the table's columns by number: a column added is added (returns how
-- many), a rename is followed, a dropped column's history is kept under another name
-- (provenance_dropped_<number>_<name>); a column given another type is refused. When the columns
-- change, the hashes of the open versions are computed again from the columns the table has now.
CREATE OR REPLACE FUNCTION provenance._history_sync(h provenance.history_table) RETURNS integer
LANGUAGE plpgsql ${FIXED_PATH} AS $$
DECLARE
  m record;
  added integer := 0;
  changed boolean := false;
  proj text;
BEGIN
  SELECT a.attname INTO m FROM provenance.history_column c
    JOIN pg_catalog.pg_attribute a ON a.attrelid = h.target_oid AND a.attnum = c.attnum AND NOT a.attisdropped
    JOIN pg_catalog.pg_attribute x ON x.attrelid = h.history AND x.attname = c.history_name AND NOT x.attisdropped
   WHERE c.target_oid = h.target_oid AND NOT c.dropped AND (a.atttypid <> x.atttypid OR a.atttypmod <> x.atttypmod)
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'column "%" of tracked table % cannot be given another type: its history would no longer match the table',
      m.attname, h.target USING ERRCODE = '0A000',
      HINT = 'Add a column of the new type instead, or stop tracking the table with provenance.untrack first.';
  END IF;
  SELECT a.attname INTO m FROM pg_catalog.pg_attribute a
   WHERE a.attrelid = h.target_oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attname::text LIKE 'provenance\_%' LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'column name "%" of tracked table % is reserved: names starting with provenance_ are its history''s', m.attname, h.target
      USING ERRCODE = '42701';
  END IF;
  -- Dropped and renamed columns first move out of the way (names may have been swapped).
  FOR m IN SELECT c.attnum, c.history_name, a.attname IS NULL AS gone
             FROM provenance.history_column c
             LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = h.target_oid AND a.attnum = c.attnum AND NOT a.attisdropped
            WHERE c.target_oid = h.target_oid AND NOT c.dropped AND a.attname IS DISTINCT FROM c.history_name LOOP
    proj := pg_catalog.left(pg_catalog.format('provenance_%s_%s_%s', CASE WHEN m.gone THEN 'dropped' ELSE 'moving' END, m.attnum, m.history_name), 63);
    EXECUTE pg_catalog.format('ALTER TABLE %s RENAME COLUMN %I TO %I', h.history, m.history_name, proj);
    UPDATE provenance.history_column c SET history_name = proj, dropped = m.gone WHERE c.target_oid = h.target_oid AND c.attnum = m.attnum;
    changed := true;
  END LOOP;
  FOR m IN SELECT c.attnum, c.history_name, a.attname FROM provenance.history_column c
             JOIN pg_catalog.pg_attribute a ON a.attrelid = h.target_oid AND a.attnum = c.attnum AND NOT a.attisdropped
            WHERE c.target_oid = h.target_oid AND NOT c.dropped AND a.attname <> c.history_name LOOP
    EXECUTE pg_catalog.format('ALTER TABLE %s RENAME COLUMN %I TO %I', h.history, m.history_name, m.attname);
    UPDATE provenance.history_column c SET history_name = m.attname WHERE c.target_oid = h.target_oid AND c.attnum = m.attnum;
  END LOOP;
  FOR m IN SELECT a.attnum, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) AS typ
             FROM pg_catalog.pg_attribute a
            WHERE a.attrelid = h.target_oid AND a.attnum > 0 AND NOT a.attisdropped
              AND NOT EXISTS (SELECT 1 FROM provenance.history_column c WHERE c.target_oid = h.target_oid AND c.attnum = a.attnum)
            ORDER BY a.attnum LOOP
    EXECUTE pg_catalog.format('ALTER TABLE %s ADD COLUMN %I %s', h.history, m.attname, m.typ);
    INSERT INTO provenance.history_column (target_oid, attnum, history_name) VALUES (h.target_oid, m.attnum, m.attname);
    added := added + 1;
  END LOOP;
  ${afterChanges}
  RETURN added;
END $$;
`;
}

export const HISTORY_CAPTURE_SQL = `
CREATE TABLE provenance.history_table (
  target_oid oid PRIMARY KEY,
  target text NOT NULL,
  history regclass NOT NULL,
  since timestamptz NOT NULL,
  tracking boolean NOT NULL DEFAULT true,
  until timestamptz,
  retention interval CHECK (retention > interval '0')
);

-- Which column of the table (by number) each history column holds.
CREATE TABLE provenance.history_column (
  target_oid oid NOT NULL REFERENCES provenance.history_table,
  attnum smallint NOT NULL,
  history_name name NOT NULL,
  dropped boolean NOT NULL DEFAULT false,
  PRIMARY KEY (target_oid, attnum)
);

-- Moments whose versions pruning keeps whatever the retention (materialised reads will pin theirs).
CREATE TABLE provenance.history_pin (
  target_oid oid NOT NULL REFERENCES provenance.history_table,
  at timestamptz NOT NULL,
  reason text NOT NULL,
  PRIMARY KEY (target_oid, at, reason)
);

${historySyncFunction(`IF changed OR added > 0 THEN
    ${REHASH_OPEN_VERSIONS}
  END IF;`)}

-- The history table grants SELECT to exactly the roles the table grants it to (owner included).
CREATE FUNCTION provenance._history_grants(h provenance.history_table) RETURNS void
LANGUAGE plpgsql ${FIXED_PATH} AS $$
DECLARE
  g record;
BEGIN
  FOR g IN
    WITH want AS (
      SELECT DISTINCT x.grantee FROM pg_catalog.pg_class c,
             pg_catalog.aclexplode(coalesce(c.relacl, pg_catalog.acldefault('r', c.relowner))) x
       WHERE c.oid = h.target_oid AND x.privilege_type = 'SELECT'
         AND x.grantee <> (SELECT o.relowner FROM pg_catalog.pg_class o WHERE o.oid = h.history)),
    have AS (
      SELECT DISTINCT x.grantee FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) x
       WHERE c.oid = h.history AND x.privilege_type = 'SELECT' AND x.grantee <> c.relowner)
    SELECT w.grantee, true AS give FROM want w WHERE w.grantee NOT IN (SELECT grantee FROM have)
    UNION ALL
    SELECT v.grantee, false FROM have v WHERE v.grantee NOT IN (SELECT grantee FROM want)
  LOOP
    EXECUTE pg_catalog.format(CASE WHEN g.give THEN 'GRANT SELECT ON %s TO %s' ELSE 'REVOKE SELECT ON %s FROM %s' END,
      h.history, CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) END);
  END LOOP;
END $$;

-- Every version still valid ends at \`at\` (no earlier than it started).
CREATE FUNCTION provenance._history_end(h provenance.history_table, at timestamptz) RETURNS void
LANGUAGE plpgsql ${FIXED_PATH} AS $$
BEGIN
  EXECUTE pg_catalog.format(
    'UPDATE %s v SET provenance_valid_to = GREATEST(v.provenance_valid_from, $1) WHERE v.provenance_valid_to IS NULL', h.history)
    USING at;
END $$;

-- The table's current rows become versions valid from \`at\`; open versions end there.
CREATE FUNCTION provenance._history_snapshot(h provenance.history_table, at timestamptz) RETURNS void
LANGUAGE plpgsql ${FIXED_PATH} AS $$
DECLARE
  cols text := ${LIVE_COLUMNS('h.target_oid', '')};
BEGIN
  PERFORM provenance._history_end(h, at);
  EXECUTE pg_catalog.format(
    $q$INSERT INTO %1$s (%2$s provenance_valid_from, provenance_row_hash) SELECT %3$s $1, ${ROW_HASH('pg_catalog.to_jsonb(t)')} FROM %4$s t$q$,
    h.history, coalesce(cols || ', ', ''), coalesce(${LIVE_COLUMNS('h.target_oid', 't')} || ', ', ''), h.target_oid::regclass)
    USING at;
END $$;

-- SECURITY DEFINER (reviewed): runs as the owner of the history tables, the only role that
-- writes them. It reads only the statement's transition tables and the catalogs, builds SQL from
-- quoted catalog names alone, and writes only the history table of the table it fires on.
CREATE FUNCTION provenance.capture_history() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER ${FIXED_PATH} AS $$
DECLARE
  h provenance.history_table;
  at timestamptz := pg_catalog.now();
  cols text;
  from_new text;
  closed bigint;
  expected bigint;
BEGIN
  SELECT * INTO h FROM provenance.history_table t WHERE t.target_oid = TG_RELID AND t.tracking;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  -- The event trigger keeps columns and grants in step at the DDL; without it, every write does.
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger e WHERE e.evtname = 'provenance_history_ddl' AND e.evtenabled <> 'D') THEN
    PERFORM provenance._history_sync(h);
    PERFORM provenance._history_grants(h);
  END IF;
  IF TG_OP = 'TRUNCATE' THEN
    PERFORM provenance._history_end(h, at);
    RETURN NULL;
  END IF;
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    -- Each old row ends one open version with the same content (identical rows are interchangeable).
    EXECUTE pg_catalog.format($q$
      WITH gone AS (SELECT ${ROW_HASH('pg_catalog.to_jsonb(o)')} AS k, pg_catalog.count(*) AS n FROM provenance_old o GROUP BY 1),
      victims AS (
        SELECT v.ctid AS t FROM (
          SELECT x.ctid, x.provenance_row_hash AS k,
                 pg_catalog.row_number() OVER (PARTITION BY x.provenance_row_hash) AS i
            FROM %1$s x WHERE x.provenance_valid_to IS NULL AND x.provenance_row_hash IN (SELECT g.k FROM gone g)) v
        JOIN gone g ON g.k = v.k AND v.i <= g.n),
      closed AS (
        UPDATE %1$s v SET provenance_valid_to = GREATEST(v.provenance_valid_from, $1)
         WHERE v.ctid IN (SELECT t FROM victims) RETURNING 1)
      SELECT (SELECT pg_catalog.count(*) FROM closed), (SELECT coalesce(pg_catalog.sum(g.n), 0) FROM gone g)$q$, h.history)
      INTO closed, expected USING at;
    IF closed <> expected THEN
      RAISE EXCEPTION 'history of tracked table % does not hold % of the rows this % changes', h.target, expected - closed, TG_OP
        USING ERRCODE = 'XX000', HINT = 'Track the table again with provenance.untrack and provenance.track.';
    END IF;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname) || ', ', '' ORDER BY a.attnum),
           pg_catalog.string_agg('n.' || pg_catalog.quote_ident(a.attname) || ', ', '' ORDER BY a.attnum)
      INTO cols, from_new FROM pg_catalog.pg_attribute a WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped;
    EXECUTE pg_catalog.format(
      $q$INSERT INTO %1$s (%2$s provenance_valid_from, provenance_row_hash) SELECT %3$s $1, ${ROW_HASH('pg_catalog.to_jsonb(n)')} FROM provenance_new n$q$,
      h.history, coalesce(cols, ''), coalesce(from_new, ''))
      USING at;
  END IF;
  RETURN NULL;
END $$;

-- Whether the four capture triggers of a table are there and fire.
CREATE FUNCTION provenance._history_intact(target_oid oid) RETURNS boolean
LANGUAGE sql STABLE ${FIXED_PATH} AS $$
  SELECT pg_catalog.count(*) = 4 FROM pg_catalog.pg_trigger t
   WHERE t.tgrelid = $1 AND t.tgfoid = 'provenance.capture_history()'::pg_catalog.regprocedure AND t.tgenabled IN ('O', 'A')
     AND t.tgname IN ('provenance_history_insert', 'provenance_history_update', 'provenance_history_delete', 'provenance_history_truncate')
$$;

-- SECURITY DEFINER (reviewed): an event trigger runs as whoever runs the DDL, and only the owner
-- alters history tables. It acts on tracked tables named by the command alone.
CREATE FUNCTION provenance.history_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER ${FIXED_PATH} AS $$
DECLARE
  h provenance.history_table;
BEGIN
  IF TG_TAG IN ('GRANT', 'REVOKE') THEN
    FOR h IN SELECT * FROM provenance.history_table t WHERE t.tracking
               AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = t.target_oid) LOOP
      PERFORM provenance._history_grants(h);
    END LOOP;
    RETURN;
  END IF;
  FOR h IN SELECT t.* FROM provenance.history_table t
            WHERE t.tracking AND t.target_oid IN (SELECT c.objid FROM pg_catalog.pg_event_trigger_ddl_commands() c) LOOP
    -- A column added is a change of every row at this moment (its default is what rows hold now).
    IF provenance._history_sync(h) > 0 THEN
      PERFORM provenance._history_snapshot(h, pg_catalog.now());
    END IF;
  END LOOP;
  -- Writes that no trigger captures would leave a silent gap in the history.
  SELECT t.* INTO h FROM provenance.history_table t JOIN pg_catalog.pg_class c ON c.oid = t.target_oid
   WHERE t.tracking AND NOT provenance._history_intact(t.target_oid) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'the capture triggers of tracked table % cannot be dropped, renamed or disabled', h.target_oid::regclass
      USING ERRCODE = '55000', HINT = 'Stop tracking the table with provenance.untrack first.';
  END IF;
END $$;
${superuserEventTrigger('provenance_history_ddl', ['ALTER TABLE', 'GRANT', 'REVOKE', 'DROP TRIGGER', 'ALTER TRIGGER'], 'provenance.history_ddl')}

`;
