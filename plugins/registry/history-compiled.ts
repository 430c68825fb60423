/**
 * Migration 9 of the `provenance` schema: history capture compiled per tracked table, so that a
 * write pays for little more than the versions it closes and adds.
 *
 * Measured on migration 5's capture, a one-row UPDATE on a tracked table cost ten times one on an
 * untracked table: the generic trigger function built and planned its statements again at every
 * firing (EXECUTE format(...): two thirds of the time), looked the table up, and hashed every old
 * and new row to find the open versions. Now:
 *
 * - Each tracked table has its own trigger function `provenance.history_<table oid>_capture()`,
 *   generated from the table's columns and key with static SQL, so each session plans its
 *   statements once; an UPDATE closes and adds versions in one statement. The function is
 *   generated again whenever the columns or the key change (by the event trigger at the DDL, or,
 *   without it, by the next write, which then runs the statements just built).
 * - The key that finds a row's open version is the table's primary key when it has one that is
 *   not deferrable, with the default operator classes and the database's collation (unique among
 *   the current rows whenever a statement's triggers fire); the history then keeps an index on
 *   those columns over the open versions, and `provenance_row_hash` is NULL for versions added in
 *   this mode. Tables without such a key keep the row hash (identical rows interchangeable), and
 *   switching to it computes the hashes of the open versions again.
 * - Semantics are unchanged (see history-schema.ts): the same history layout, validity from the
 *   writing transaction's start, refusals and the count check that fails a write whose old rows
 *   the history does not hold.
 *
 * Existing history tables are carried over: the hash becomes nullable, the capture is compiled,
 * and the triggers are replaced in place (CREATE OR REPLACE TRIGGER, which the event trigger
 * guarding them does not see as a drop).
 */
import type { Migration } from './schema.js';
import { REHASH_OPEN_VERSIONS, ROW_HASH, historySyncFunction } from './history-capture.js';
import { captureTriggers } from './history-schema.js';
import { FIXED_PATH } from './sql-fragments.js';

/** Name of a per-table object of the history of `oid` (an SQL expression), as an identifier. */
const HISTORY_NAME = (oid: string, suffix: string): string => `'history_' || ${oid}::text || '_${suffix}'`;

/** The history's columns and the table's columns they hold (needs the history `h`). */
const MAPPED_COLUMNS = `
  SELECT a.attnum, a.attname, c.history_name FROM pg_catalog.pg_attribute a
    JOIN provenance.history_column c ON c.target_oid = a.attrelid AND c.attnum = a.attnum AND NOT c.dropped
   WHERE a.attrelid = h.target_oid AND a.attnum > 0 AND NOT a.attisdropped`;

/** The generic capture function, as an SQL expression. */
const GENERIC = `'provenance.capture_history()'::pg_catalog.regprocedure`;

/** Whether the event trigger keeps histories in step at the DDL (without it, every write does). */
const EVENT_TRIGGER_ON = `EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger e WHERE e.evtname = 'provenance_history_ddl' AND e.evtenabled <> 'D')`;

const SYNC = `PERFORM provenance._history_sync(h);
      PERFORM provenance._history_grants(h);`;

/** Declarations of a capture function's body. */
const CAPTURE_DECLARE = `
DECLARE
  provenance_at timestamptz := pg_catalog.now();
  provenance_closed bigint;
  provenance_expected bigint;
  h provenance.history_table;`;

/** Capture by statements built at the firing, after \`sync\` (PL/pgSQL) brings the history in step. */
const DYNAMIC_CAPTURE = (sync: string): string => `
    SELECT * INTO h FROM provenance.history_table t WHERE t.target_oid = TG_RELID AND t.tracking;
    IF NOT FOUND THEN
      RETURN NULL;
    END IF;
    ${sync}
    IF TG_OP = 'TRUNCATE' THEN
      PERFORM provenance._history_end(h, provenance_at);
      RETURN NULL;
    END IF;
    SELECT * INTO h FROM provenance.history_table t WHERE t.target_oid = TG_RELID;
    EXECUTE provenance._history_capture_sql(h, coalesce(h.capture_key, '{}'), TG_OP, '$1')
      INTO provenance_closed, provenance_expected USING provenance_at;`;

/** The end of a capture function's body; \`pct\` is how a RAISE placeholder is written where it is put. */
const COUNT_CHECK = (pct: string): string => `
  IF provenance_closed <> provenance_expected THEN
    RAISE EXCEPTION 'history of tracked table ${pct} does not hold ${pct} of the rows this ${pct} changes', TG_RELID::regclass,
      provenance_expected - provenance_closed, TG_OP
      USING ERRCODE = 'XX000', HINT = 'Track the table again with provenance.untrack and provenance.track.';
  END IF;
  RETURN NULL;
END`;

export const HISTORY_COMPILED_MIGRATION: Migration = {
  version: 9,
  description: 'history capture compiled per tracked table, keyed by the primary key where there is one',
  sql: `
ALTER TABLE provenance.history_table ADD COLUMN capture_key smallint[];
COMMENT ON COLUMN provenance.history_table.capture_key IS
  'attnums of the primary key that finds open versions; empty: the row hash; NULL: not compiled yet';

-- The columns (attnums, in key order) of the table's primary key when it can find open versions:
-- not deferrable (unique whenever a statement's triggers fire), default operator classes, no
-- collation but the database's (the history's columns have that one). Empty otherwise.
CREATE FUNCTION provenance._history_key(target_oid oid) RETURNS smallint[]
LANGUAGE sql STABLE ${FIXED_PATH} AS $$
  SELECT coalesce((
    SELECT pg_catalog.array_agg(k.attnum ORDER BY k.i)
      FROM pg_catalog.pg_constraint p
      JOIN pg_catalog.pg_index x ON x.indexrelid = p.conindid
     CROSS JOIN LATERAL pg_catalog.unnest(p.conkey) WITH ORDINALITY k(attnum, i)
      JOIN pg_catalog.pg_attribute a ON a.attrelid = p.conrelid AND a.attnum = k.attnum
      JOIN pg_catalog.pg_opclass o ON o.oid = x.indclass[(k.i - 1)::integer]
     WHERE p.conrelid = $1 AND p.contype = 'p' AND NOT p.condeferrable
    HAVING pg_catalog.bool_and(o.opcdefault AND a.attcollation IN (0, 100) AND x.indcollation[(k.i - 1)::integer] IN (0, 100))),
    '{}')
$$;

-- The capture statement of one kind of write ('INSERT', 'UPDATE' or 'DELETE'), reading the
-- transition tables provenance_old / provenance_new and the moment \`moment\` (an SQL expression),
-- keyed by \`k\` (see _history_key). It yields (versions closed, versions it had to close).
CREATE FUNCTION provenance._history_capture_sql(h provenance.history_table, k smallint[], op text, moment text) RETURNS text
LANGUAGE plpgsql STABLE ${FIXED_PATH} AS $$
DECLARE
  hist_cols text;
  new_cols text;
  key_match text;
  closing text;
  adding text;
BEGIN
  SELECT pg_catalog.string_agg(pg_catalog.quote_ident(m.history_name) || ', ', '' ORDER BY m.attnum),
         pg_catalog.string_agg('n.' || pg_catalog.quote_ident(m.attname) || ', ', '' ORDER BY m.attnum)
    INTO hist_cols, new_cols FROM (${MAPPED_COLUMNS}) m;
  adding := pg_catalog.format(
    'provenance_added AS (INSERT INTO %s (%s provenance_valid_from, provenance_row_hash) SELECT %s %s, %s FROM provenance_new n)',
    h.history, coalesce(hist_cols, ''), coalesce(new_cols, ''), moment,
    CASE WHEN k = '{}' THEN '${ROW_HASH('pg_catalog.to_jsonb(n)')}' ELSE 'NULL' END);
  IF op = 'INSERT' THEN
    RETURN 'WITH ' || adding || ' SELECT 0::bigint, 0::bigint';
  END IF;
  IF k = '{}' THEN
    -- Each old row ends one open version with the same content (identical rows are interchangeable).
    closing := pg_catalog.format($q$
      provenance_gone AS (SELECT ${ROW_HASH('pg_catalog.to_jsonb(o)')} AS k, pg_catalog.count(*) AS n FROM provenance_old o GROUP BY 1),
      provenance_closed AS (
        UPDATE %1$s v SET provenance_valid_to = GREATEST(v.provenance_valid_from, %2$s)
         WHERE v.ctid IN (
           SELECT w.t FROM (
             SELECT x.ctid AS t, x.provenance_row_hash AS k,
                    pg_catalog.row_number() OVER (PARTITION BY x.provenance_row_hash) AS i
               FROM %1$s x WHERE x.provenance_valid_to IS NULL AND x.provenance_row_hash IN (SELECT g.k FROM provenance_gone g)) w
             JOIN provenance_gone g ON g.k = w.k AND w.i <= g.n)
         RETURNING 1)$q$, h.history, moment);
    RETURN 'WITH ' || closing || CASE WHEN op = 'UPDATE' THEN ', ' || adding ELSE '' END
      || ' SELECT (SELECT pg_catalog.count(*) FROM provenance_closed), (SELECT coalesce(pg_catalog.sum(g.n), 0)::bigint FROM provenance_gone g)';
  END IF;
  SELECT pg_catalog.string_agg(pg_catalog.format(' AND v.%I OPERATOR(pg_catalog.=) o.%I', m.history_name, m.attname), '' ORDER BY u.i)
    INTO key_match FROM pg_catalog.unnest(k) WITH ORDINALITY u(attnum, i) JOIN (${MAPPED_COLUMNS}) m ON m.attnum = u.attnum;
  closing := pg_catalog.format(
    'provenance_closed AS (UPDATE %s v SET provenance_valid_to = GREATEST(v.provenance_valid_from, %s)'
    ' FROM provenance_old o WHERE v.provenance_valid_to IS NULL%s RETURNING 1)', h.history, moment, key_match);
  RETURN 'WITH ' || closing || CASE WHEN op = 'UPDATE' THEN ', ' || adding ELSE '' END
    || ' SELECT (SELECT pg_catalog.count(*) FROM provenance_closed), (SELECT pg_catalog.count(*) FROM provenance_old)';
END $$;

-- How many of the four capture triggers of a table are there, fire, and call one of \`fns\`.
CREATE FUNCTION provenance._history_triggers(target_oid oid, fns oid[]) RETURNS integer
LANGUAGE sql STABLE ${FIXED_PATH} AS $$
  SELECT pg_catalog.count(*)::integer FROM pg_catalog.pg_trigger t
   WHERE t.tgrelid = $1 AND t.tgfoid = ANY ($2) AND t.tgenabled IN ('O', 'A')
     AND t.tgname IN ('provenance_history_insert', 'provenance_history_update', 'provenance_history_delete', 'provenance_history_truncate')
$$;

-- The four capture triggers are there and fire, with the table's own capture or the generic one.
CREATE OR REPLACE FUNCTION provenance._history_intact(target_oid oid) RETURNS boolean
LANGUAGE sql STABLE ${FIXED_PATH} AS $$
  SELECT provenance._history_triggers($1, ARRAY[${GENERIC},
    pg_catalog.to_regprocedure(pg_catalog.format('provenance.%I()', ${HISTORY_NAME('$1', 'capture')}))]) = 4
$$;

-- Chooses the key, keeps the history's index of open versions for it, generates the table's
-- trigger function and points the triggers at it. \`columns_changed\`: the history's columns were
-- renamed, added or dropped (row hashes follow the column names). Its DDL's notices (an index
-- that does not exist yet) are no news to whoever tracks or alters the table.
CREATE FUNCTION provenance._history_compile(h provenance.history_table, columns_changed boolean) RETURNS void
LANGUAGE plpgsql ${FIXED_PATH} SET client_min_messages = warning AS $$
DECLARE
  k smallint[] := provenance._history_key(h.target_oid);
  was smallint[];
  fn text := pg_catalog.format('provenance.%I', ${HISTORY_NAME('h.target_oid', 'capture')});
  stmt text;
  proj text;
  body text;
BEGIN
  -- A key column the history does not hold yet (columns not in step) cannot find anything.
  IF EXISTS (SELECT 1 FROM pg_catalog.unnest(k) u(attnum) WHERE u.attnum NOT IN (SELECT m.attnum FROM (${MAPPED_COLUMNS}) m)) THEN
    k := '{}';
  END IF;
  SELECT t.capture_key INTO was FROM provenance.history_table t WHERE t.target_oid = h.target_oid;
  IF NOT columns_changed AND was IS NOT DISTINCT FROM k AND provenance._history_triggers(h.target_oid, ARRAY[${GENERIC}]) = 0 THEN
    RETURN;
  END IF;
  IF was IS NULL THEN
    -- Made by migration 5's track: NOT NULL row hashes and an index on them named by PostgreSQL.
    EXECUTE pg_catalog.format('ALTER TABLE %s ALTER COLUMN provenance_row_hash DROP NOT NULL', h.history);
    EXECUTE pg_catalog.format(CASE WHEN k = '{}' THEN 'ALTER INDEX IF EXISTS provenance.%I RENAME TO %I' ELSE 'DROP INDEX IF EXISTS provenance.%I' END,
      ${HISTORY_NAME('h.target_oid', 'provenance_row_hash_idx')}, ${HISTORY_NAME('h.target_oid', 'open_hash')});
  END IF;
  IF was IS DISTINCT FROM k THEN
    EXECUTE pg_catalog.format('DROP INDEX IF EXISTS provenance.%I', ${HISTORY_NAME('h.target_oid', 'open_key')});
    IF k = '{}' THEN
      EXECUTE pg_catalog.format('CREATE INDEX IF NOT EXISTS %I ON %s (provenance_row_hash) WHERE provenance_valid_to IS NULL',
        ${HISTORY_NAME('h.target_oid', 'open_hash')}, h.history);
    ELSE
      EXECUTE pg_catalog.format('DROP INDEX IF EXISTS provenance.%I', ${HISTORY_NAME('h.target_oid', 'open_hash')});
      SELECT pg_catalog.string_agg(pg_catalog.quote_ident(m.history_name), ', ' ORDER BY u.i) INTO proj
        FROM pg_catalog.unnest(k) WITH ORDINALITY u(attnum, i) JOIN (${MAPPED_COLUMNS}) m ON m.attnum = u.attnum;
      EXECUTE pg_catalog.format('CREATE INDEX %I ON %s (%s) WHERE provenance_valid_to IS NULL',
        ${HISTORY_NAME('h.target_oid', 'open_key')}, h.history, proj);
    END IF;
    UPDATE provenance.history_table t SET capture_key = k WHERE t.target_oid = h.target_oid;
  END IF;
  IF k = '{}' AND (columns_changed OR was IS DISTINCT FROM k) THEN
    ${REHASH_OPEN_VERSIONS}
  END IF;
  -- Static SQL, planned once per session. Without the event trigger each write first brings the
  -- history in step (which may generate this function again) and runs what that built.
  body := pg_catalog.format($b$${CAPTURE_DECLARE}
BEGIN
  IF NOT ${EVENT_TRIGGER_ON} THEN${DYNAMIC_CAPTURE(SYNC)}
  ELSIF TG_OP = 'INSERT' THEN
    %1$s INTO provenance_closed, provenance_expected;
  ELSIF TG_OP = 'UPDATE' THEN
    %2$s INTO provenance_closed, provenance_expected;
  ELSIF TG_OP = 'DELETE' THEN
    %3$s INTO provenance_closed, provenance_expected;
  ELSE
    UPDATE %4$s v SET provenance_valid_to = GREATEST(v.provenance_valid_from, provenance_at) WHERE v.provenance_valid_to IS NULL;
    RETURN NULL;
  END IF;${COUNT_CHECK('%%')}$b$,
    provenance._history_capture_sql(h, k, 'INSERT', 'provenance_at'), provenance._history_capture_sql(h, k, 'UPDATE', 'provenance_at'),
    provenance._history_capture_sql(h, k, 'DELETE', 'provenance_at'), h.history);
  -- SECURITY DEFINER (reviewed): as capture_history, it writes only this table's history, from the
  -- statement's transition tables, with SQL built from quoted catalog names.
  EXECUTE pg_catalog.format('CREATE OR REPLACE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER ${FIXED_PATH} AS %L', fn, body);
  EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s() FROM PUBLIC', fn);
  -- Only triggers that call the generic capture and fire move to this one: one dropped or
  -- disabled stays so (a gap in the history), for reads and the event trigger to refuse.
  ${captureTriggers('CREATE OR REPLACE', 'h.target_oid::regclass', 'fn', `NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
      WHERE t.tgrelid = h.target_oid AND t.tgname = 'provenance_history_' || pg_catalog.split_part(stmt, ' ', 1)
        AND t.tgfoid = ${GENERIC} AND t.tgenabled IN ('O', 'A'))`)}
END $$;
${historySyncFunction('PERFORM provenance._history_compile(h, changed OR added > 0);')}
-- SECURITY DEFINER (reviewed): the generic capture, by statements built at each firing; a
-- table's triggers call it only until the table's own capture is compiled.
CREATE OR REPLACE FUNCTION provenance.capture_history() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER ${FIXED_PATH} AS $$${CAPTURE_DECLARE}
BEGIN${DYNAMIC_CAPTURE(`IF NOT ${EVENT_TRIGGER_ON} THEN
      ${SYNC}
    END IF;`)}${COUNT_CHECK('%')} $$;

SELECT provenance._history_compile(t, false) FROM provenance.history_table t
 WHERE t.tracking AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = t.target_oid);

REVOKE ALL ON FUNCTION provenance._history_key(oid), provenance._history_capture_sql(provenance.history_table, smallint[], text, text),
  provenance._history_compile(provenance.history_table, boolean) FROM PUBLIC;
`,
};
