/**
 * Migration 16 of the `provenance` schema: every version records the sandbox runtime identity it
 * was registered under (`runtime_identity`), the one its `function_hash` is computed with, so that
 * a later release can tell whether it still computes what that version computed (see
 * `sandbox/runtime-identity.ts`) instead of refusing every version made before an upgrade.
 *
 * - Rows from before: the identity of the runtime that ran the schema last (the setting
 *   `sandbox_runtime_version`, still the previous one while migrations run) where their function
 *   hash was computed with it. Else the identity is searched among the names earlier releases
 *   gave their runtimes, `isolated-vm@X;node@M.m.p;runtime@D`, for the bootstraps and isolated-vm
 *   releases this one knows and every Node.js release of the last runtime's major (up to minor 29,
 *   patch 12): a hash that matches one names it, since no other text hashes alike. That is some
 *   1,500 hashes per distinct source left over, once (versions the previous release refused to
 *   replay anyway). NULL (not recorded) for what remains.
 * - From now on a version is registered under the runtime that writes it: a trigger fills the
 *   identity in, and a version carried over whole from the one before (a change of parameters,
 *   position, state or guard copies its function) is hashed again under the current runtime when
 *   the previous one was registered under another. The guard trigger then checks the hash as
 *   before, against the source under the current runtime.
 */
import type { Migration } from './schema.js';
import { registryViews } from './schema-guards.js';
import { FIXED_PATH } from './sql-fragments.js';
import { EARLIER_RUNTIMES } from '../../sandbox/runtime-identity.js';

const CURRENT = `(SELECT s.value FROM provenance.settings s WHERE s.key = 'sandbox_runtime_version')`;

export const RUNTIME_IDENTITY_MIGRATION: Migration = {
  version: 16,
  description: 'transform versions record the sandbox runtime identity they were registered under',
  sql: `
ALTER TABLE provenance.transform_version ADD COLUMN runtime_identity text;

-- The guards refuse updates; this one fills in a fact the rows always implied.
ALTER TABLE provenance.transform_version DISABLE TRIGGER guard_insert;
UPDATE provenance.transform_version v
   SET runtime_identity = s.value
  FROM provenance.settings s
 WHERE s.key = 'sandbox_runtime_version'
   AND v.function_hash = pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(v.source, 'UTF8') || '\\x00'::bytea ||
                                            pg_catalog.convert_to(s.value, 'UTF8')), 'hex');
WITH major AS (
  SELECT pg_catalog.substring(s.value, '^isolated-vm@[^;]+;node@([0-9]+)\\.') AS m
    FROM provenance.settings s WHERE s.key = 'sandbox_runtime_version'
), candidate AS (
  SELECT pg_catalog.format('isolated-vm@%s;node@%s.%s.%s;runtime@%s', ivm, major.m, minor, patch, bootstrap) AS identity
    FROM major,
         pg_catalog.unnest(ARRAY[${EARLIER_RUNTIMES.isolatedVm.map((v) => `'${v}'`).join(', ')}]::text[]) ivm,
         pg_catalog.unnest(ARRAY[${EARLIER_RUNTIMES.bootstraps.map((d) => `'${d}'`).join(', ')}]::text[]) bootstrap,
         pg_catalog.generate_series(0, 29) minor, pg_catalog.generate_series(0, 12) patch
   WHERE major.m IS NOT NULL
), found AS (
  SELECT DISTINCT ON (u.source, u.function_hash) u.source, u.function_hash, c.identity
    FROM (SELECT DISTINCT v.source, v.function_hash FROM provenance.transform_version v WHERE v.runtime_identity IS NULL) u
    JOIN candidate c
      ON u.function_hash = pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(u.source, 'UTF8') || '\\x00'::bytea ||
                                                                pg_catalog.convert_to(c.identity, 'UTF8')), 'hex')
)
UPDATE provenance.transform_version v
   SET runtime_identity = f.identity
  FROM found f
 WHERE v.runtime_identity IS NULL AND v.source = f.source AND v.function_hash = f.function_hash;
ALTER TABLE provenance.transform_version ENABLE TRIGGER guard_insert;

CREATE FUNCTION provenance.carry_runtime_identity() RETURNS trigger
LANGUAGE plpgsql ${FIXED_PATH} AS $$
DECLARE
  prev provenance.transform_version;
  current_identity text := ${CURRENT};
BEGIN
  SELECT * INTO prev FROM provenance.transform_version p WHERE p.name = NEW.name ORDER BY p.version DESC LIMIT 1;
  IF FOUND AND NEW.source = prev.source AND NEW.function_hash = prev.function_hash
     AND NEW.runtime_identity IS NOT DISTINCT FROM prev.runtime_identity
     AND NEW.runtime_identity IS DISTINCT FROM current_identity THEN
    NEW.function_hash := provenance.function_hash(NEW.source);
    NEW.runtime_identity := current_identity;
  ELSIF NEW.runtime_identity IS NULL THEN
    NEW.runtime_identity := current_identity;
  END IF;
  IF NEW.runtime_identity IS DISTINCT FROM current_identity THEN
    RAISE EXCEPTION 'transform "%" version % must be registered under the sandbox runtime writing it (%), not %',
      NEW.name, NEW.version, current_identity, NEW.runtime_identity USING ERRCODE = '23514';
  END IF;
  RETURN NEW;
END $$;
-- Named to sort after carry_guard and before guard_insert (row triggers of one event fire in name
-- order): the guard checks the hash of the completed row.
CREATE TRIGGER carry_runtime_identity BEFORE INSERT ON provenance.transform_version
  FOR EACH ROW EXECUTE FUNCTION provenance.carry_runtime_identity();
REVOKE ALL ON FUNCTION provenance.carry_runtime_identity() FROM PUBLIC;

${registryViews(['guard', 'exempt', 'reads', 'reads_attnums', 'runtime_identity'])}
GRANT SELECT ON provenance.transforms, provenance.transform_versions TO PUBLIC;
`,
};
