/**
 * Migration 12 of the `provenance` schema: policies that make and evict materialised versions,
 * the log of every decision they take, and the storage report.
 *
 * - `provenance.set_materialize_policy(target, policy)` keeps one policy per tracked table (NULL
 *   removes it). A policy is a JSON object of rules, which combine:
 *     every            interval text: a version at each multiple of it since the Unix epoch (UTC)
 *     after_replay_ms  number: after an as-of read whose replay of the table took longer
 *     after_reads      integer, with `within` (interval text, default 1 hour): a moment read that often
 *     budget_bytes     number: evict the least read policy-made versions while over it
 *   A bad policy is refused with 22023 naming the bad key. Only provenance_admin may set one.
 * - The proxy takes the decisions (it runs the transforms); each is a row of
 *   `provenance.materialize_log`: created, evicted or skipped, with the rule that took it and why.
 * - `provenance.materialize_claim` makes one proxy the maker of a version: the first to insert
 *   (target, moment, user) makes it, the others skip it. A claim goes when its version does.
 * - `provenance.replay_stats`: the proxies' replay cache counters per table, added to by each
 *   proxy, so the report covers all of them since the table's first replay.
 */
import type { Migration } from './schema.js';
import { FIXED_PATH } from './sql-fragments.js';

/** The keys a policy may hold. */
export const POLICY_KEYS = ['every', 'after_replay_ms', 'after_reads', 'within', 'budget_bytes'] as const;

export const MATERIALIZE_POLICY_MIGRATION: Migration = {
  version: 12,
  description: 'materialisation policies, their log, replay statistics and the storage report',
  sql: `
CREATE TABLE provenance.materialize_policy (
  target_oid oid PRIMARY KEY REFERENCES provenance.history_table,
  policy jsonb NOT NULL,
  set_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
  set_by text NOT NULL DEFAULT session_user
);

CREATE VIEW provenance.materialize_policies AS
SELECT coalesce(c.oid::regclass::text, h.target) AS target, p.target_oid, p.policy, p.set_at, p.set_by
  FROM provenance.materialize_policy p
  JOIN provenance.history_table h ON h.target_oid = p.target_oid
  LEFT JOIN pg_catalog.pg_class c ON c.oid = p.target_oid;

CREATE TABLE provenance.materialize_log (
  id bigserial PRIMARY KEY,
  logged_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
  target_oid oid NOT NULL,
  target text NOT NULL,
  as_of timestamptz,
  as_user text,
  action text NOT NULL CHECK (action IN ('created', 'evicted', 'skipped')),
  rule text NOT NULL,
  why text NOT NULL,
  bytes bigint,
  materialization_id bigint,
  proxy_id text
);
CREATE INDEX materialize_log_target ON provenance.materialize_log (target_oid, logged_at);

CREATE TABLE provenance.materialize_claim (
  target_oid oid NOT NULL,
  as_of timestamptz NOT NULL,
  as_user text NOT NULL,
  rule text NOT NULL,
  claimed_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
  proxy_id text,
  materialization_id bigint,
  PRIMARY KEY (target_oid, as_of, as_user)
);

CREATE TABLE provenance.replay_stats (
  target_oid oid PRIMARY KEY,
  cache_hits bigint NOT NULL DEFAULT 0,
  cache_misses bigint NOT NULL DEFAULT 0,
  replay_ms double precision NOT NULL DEFAULT 0,
  replay_rows bigint NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);

-- As-of reads that replayed, per table, moment and user, for the after_reads rule (kept for the
-- rule's window, then purged by the next count).
CREATE TABLE provenance.moment_read (
  target_oid oid NOT NULL,
  as_of timestamptz NOT NULL,
  as_user text NOT NULL,
  read_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
CREATE INDEX moment_read_moment ON provenance.moment_read (target_oid, as_of, as_user, read_at);

-- The policies in force, their intervals in milliseconds, with the start of each table's history.
CREATE FUNCTION provenance._materialize_policies()
RETURNS TABLE (target_oid oid, target text, set_by text, every_ms double precision, after_replay_ms double precision,
               after_reads integer, within_ms double precision, budget_bytes double precision, since_ms double precision)
LANGUAGE sql STABLE ${FIXED_PATH} AS $$
  SELECT p.target_oid, coalesce(c.oid::regclass::text, h.target), p.set_by,
         pg_catalog.date_part('epoch', (p.policy ->> 'every')::interval) * 1000,
         (p.policy ->> 'after_replay_ms')::double precision,
         (p.policy ->> 'after_reads')::integer,
         pg_catalog.date_part('epoch', coalesce((p.policy ->> 'within')::interval, interval '1 hour')) * 1000,
         (p.policy ->> 'budget_bytes')::double precision,
         pg_catalog.date_part('epoch', h.since) * 1000
    FROM provenance.materialize_policy p
    JOIN provenance.history_table h ON h.target_oid = p.target_oid AND h.tracking
    LEFT JOIN pg_catalog.pg_class c ON c.oid = p.target_oid
$$;

-- Notes a replayed as-of read and returns how many reads of that moment by that user the window holds.
CREATE FUNCTION provenance._moment_read(target_oid oid, as_of timestamptz, as_user text, within interval) RETURNS bigint
LANGUAGE plpgsql ${FIXED_PATH} AS $$
#variable_conflict use_column
DECLARE
  n bigint;
BEGIN
  DELETE FROM provenance.moment_read r
   WHERE r.target_oid = $1 AND r.read_at < pg_catalog.clock_timestamp() - $4;
  INSERT INTO provenance.moment_read (target_oid, as_of, as_user) VALUES ($1, $2, $3);
  SELECT pg_catalog.count(*) INTO n FROM provenance.moment_read r
   WHERE r.target_oid = $1 AND r.as_of = $2 AND r.as_user = $3;
  RETURN n;
END $$;

-- Makes the caller the one proxy that makes the version of (table, moment, user): true for the
-- first caller, false while a claim stands (its version exists, or is being made).
CREATE FUNCTION provenance._materialize_claim(target_oid oid, as_of timestamptz, as_user text, rule text, proxy_id text) RETURNS boolean
LANGUAGE sql ${FIXED_PATH} AS $$
  WITH c AS (
    INSERT INTO provenance.materialize_claim (target_oid, as_of, as_user, rule, proxy_id) VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT DO NOTHING RETURNING 1)
  SELECT EXISTS (SELECT 1 FROM c)
$$;

-- Adds this proxy's replay cache counts, and the time its replays took over how many rows, of
-- some tables to the totals.
CREATE FUNCTION provenance._replay_stats_add(target_oids oid[], hits bigint[], misses bigint[], ms double precision[], rows_in bigint[])
RETURNS void LANGUAGE sql ${FIXED_PATH} AS $$
  INSERT INTO provenance.replay_stats AS s (target_oid, cache_hits, cache_misses, replay_ms, replay_rows)
  SELECT u.o, u.h, u.m, u.t, u.r
    FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5)) u(o, h, m, t, r)
  ON CONFLICT (target_oid) DO UPDATE
    SET cache_hits = s.cache_hits + EXCLUDED.cache_hits, cache_misses = s.cache_misses + EXCLUDED.cache_misses,
        replay_ms = s.replay_ms + EXCLUDED.replay_ms, replay_rows = s.replay_rows + EXCLUDED.replay_rows,
        updated_at = pg_catalog.clock_timestamp()
$$;

-- A claim goes with its version (evicted, or dropped by hand), so that a rule may ask for it again.
CREATE FUNCTION provenance._materialize_unclaim() RETURNS trigger
LANGUAGE plpgsql ${FIXED_PATH} AS $$
BEGIN
  DELETE FROM provenance.materialize_claim c WHERE c.materialization_id = OLD.id;
  RETURN NULL;
END $$;
CREATE TRIGGER materialize_unclaim AFTER DELETE ON provenance.materialization
  FOR EACH ROW EXECUTE FUNCTION provenance._materialize_unclaim();

-- Checks one policy; raises 22023 naming the first bad key. Returns it as stored.
CREATE FUNCTION provenance._check_materialize_policy(policy jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE ${FIXED_PATH} AS $$
DECLARE
  k text;
  v jsonb;
  span interval;
BEGIN
  IF pg_catalog.jsonb_typeof(policy) IS DISTINCT FROM 'object' THEN
    RAISE EXCEPTION 'a materialize policy must be a JSON object (or NULL to remove it)' USING ERRCODE = '22023';
  END IF;
  FOR k, v IN SELECT e.key, e.value FROM pg_catalog.jsonb_each(policy) e ORDER BY e.key LOOP
    CASE k
    WHEN 'every', 'within' THEN
      IF pg_catalog.jsonb_typeof(v) <> 'string' THEN
        RAISE EXCEPTION 'materialize policy key "%" must be an interval as text, e.g. "1 day"', k USING ERRCODE = '22023';
      END IF;
      BEGIN
        span := (v #>> '{}')::interval;
      EXCEPTION WHEN others THEN
        RAISE EXCEPTION 'materialize policy key "%": % is not an interval', k, v USING ERRCODE = '22023';
      END;
      IF span < interval '1 second' THEN
        RAISE EXCEPTION 'materialize policy key "%" must be at least 1 second, not %', k, v USING ERRCODE = '22023';
      END IF;
    WHEN 'after_replay_ms', 'budget_bytes' THEN
      IF pg_catalog.jsonb_typeof(v) <> 'number' OR (v #>> '{}')::numeric < 0 THEN
        RAISE EXCEPTION 'materialize policy key "%" must be a number of at least 0, not %', k, v USING ERRCODE = '22023';
      END IF;
    WHEN 'after_reads' THEN
      IF pg_catalog.jsonb_typeof(v) <> 'number' OR (v #>> '{}')::numeric < 1 OR (v #>> '{}')::numeric % 1 <> 0 THEN
        RAISE EXCEPTION 'materialize policy key "%" must be a whole number of at least 1, not %', k, v USING ERRCODE = '22023';
      END IF;
    ELSE
      RAISE EXCEPTION 'unknown materialize policy key "%": the keys are ${POLICY_KEYS.join(', ')}', k USING ERRCODE = '22023';
    END CASE;
  END LOOP;
  IF NOT (policy ?| ARRAY['every', 'after_replay_ms', 'after_reads', 'budget_bytes']) THEN
    RAISE EXCEPTION 'a materialize policy needs at least one of the keys every, after_replay_ms, after_reads, budget_bytes'
      USING ERRCODE = '22023';
  END IF;
  IF policy ? 'within' AND NOT policy ? 'after_reads' THEN
    RAISE EXCEPTION 'materialize policy key "within" goes with "after_reads"' USING ERRCODE = '22023';
  END IF;
  RETURN policy;
END $$;

-- SECURITY DEFINER (reviewed): only provenance_admin may call it; it writes one row of the policy table.
CREATE FUNCTION provenance.set_materialize_policy(target regclass, policy jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER ${FIXED_PATH} AS $$
#variable_conflict use_variable
BEGIN
  IF target IS NULL THEN
    RAISE EXCEPTION 'target must not be null' USING ERRCODE = '22004';
  END IF;
  IF policy IS NULL THEN
    DELETE FROM provenance.materialize_policy p WHERE p.target_oid = target;
    RETURN NULL;
  END IF;
  PERFORM provenance._check_materialize_policy(policy);
  IF NOT EXISTS (SELECT 1 FROM provenance.history_table t WHERE t.target_oid = target AND t.tracking) THEN
    RAISE EXCEPTION 'table % is not tracked: only the versions of a tracked table can be materialised', target
      USING ERRCODE = '55000', HINT = 'An admin can start its history with provenance.track.';
  END IF;
  INSERT INTO provenance.materialize_policy AS p (target_oid, policy) VALUES (target, policy)
  ON CONFLICT (target_oid) DO UPDATE SET policy = EXCLUDED.policy, set_at = EXCLUDED.set_at, set_by = EXCLUDED.set_by;
  RETURN policy;
END $$;

-- SECURITY DEFINER (reviewed): provenance_admin only; reads sizes and counters, writes nothing.
-- Per tracked table: its history, its materialised versions, how the replay cache did for it, and
-- the replay time its materialised versions spared: the reads each served, times its rows, times
-- the table's mean replay time per row over every replay the proxies timed. The target is a regclass, so that it prints as the caller's search path
-- has it.
CREATE FUNCTION provenance.storage_report()
RETURNS TABLE (target regclass, history_versions bigint, history_bytes bigint, materializations bigint, materialization_bytes bigint,
               replay_cache_hits bigint, replay_cache_misses bigint, replay_cache_hit_rate double precision,
               recompute_saved_ms double precision)
LANGUAGE plpgsql STABLE SECURITY DEFINER ${FIXED_PATH} AS $$
BEGIN
  RETURN QUERY
  SELECT h.target_oid::regclass,
         provenance._history_versions(h.history),
         pg_catalog.pg_total_relation_size(h.history),
         coalesce(m.n, 0), coalesce(m.bytes, 0),
         coalesce(s.cache_hits, 0), coalesce(s.cache_misses, 0),
         CASE WHEN coalesce(s.cache_hits + s.cache_misses, 0) = 0 THEN NULL
              ELSE s.cache_hits::double precision / (s.cache_hits + s.cache_misses) END,
         CASE WHEN coalesce(s.replay_rows, 0) = 0 THEN 0::double precision
              ELSE coalesce(m.rows_served, 0) * s.replay_ms / s.replay_rows END
    FROM provenance.history_table h
    LEFT JOIN provenance.replay_stats s ON s.target_oid = h.target_oid
    LEFT JOIN LATERAL (
      SELECT pg_catalog.count(*) AS n,
             pg_catalog.sum(coalesce(pg_catalog.pg_total_relation_size(pg_catalog.to_regclass(x.storage)), 0))::bigint AS bytes,
             pg_catalog.sum(x.reads_served * x.rows) AS rows_served
        FROM provenance.materialization x WHERE x.target_oid = h.target_oid AND x.complete) m ON true
   ORDER BY 1;
END $$;

REVOKE ALL ON provenance.materialize_policy, provenance.materialize_policies, provenance.materialize_log,
  provenance.materialize_claim, provenance.replay_stats, provenance.moment_read FROM PUBLIC;
REVOKE ALL ON FUNCTION provenance._check_materialize_policy(jsonb), provenance.set_materialize_policy(regclass, jsonb),
  provenance.storage_report(), provenance._materialize_policies(), provenance._moment_read(oid, timestamptz, text, interval),
  provenance._materialize_claim(oid, timestamptz, text, text, text), provenance._materialize_unclaim(),
  provenance._replay_stats_add(oid[], bigint[], bigint[], double precision[], bigint[]) FROM PUBLIC;
GRANT SELECT ON provenance.materialize_policies, provenance.materialize_log, provenance.replay_stats TO provenance_admin;
GRANT EXECUTE ON FUNCTION provenance.set_materialize_policy(regclass, jsonb), provenance.storage_report() TO provenance_admin;
`,
};
