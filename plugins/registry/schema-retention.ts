/**
 * Migration 14: `provenance.set_retention` says what is wrong with a window that is not positive
 * (22023, naming the table and the value) instead of failing on the history table's check
 * constraint, which named an internal table.
 */
import type { Migration } from './schema.js';
import { FIXED_PATH } from './sql-fragments.js';

export const RETENTION_CHECK_MIGRATION: Migration = {
  version: 14,
  description: 'set_retention refuses a window that is not positive with 22023',
  sql: `
-- SECURITY DEFINER (reviewed): provenance_admin only.
CREATE OR REPLACE FUNCTION provenance.set_retention(target regclass, keep interval) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER ${FIXED_PATH} AS $$
#variable_conflict use_variable
BEGIN
  IF keep IS NOT NULL AND keep <= interval '0' THEN
    RAISE EXCEPTION 'retention of % must be a positive interval, not %', target, keep
      USING ERRCODE = '22023', HINT = 'Pass NULL to keep every version.';
  END IF;
  UPDATE provenance.history_table t SET retention = keep WHERE t.target_oid = target;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'table % is not tracked', target USING ERRCODE = '55000';
  END IF;
END $$;
`,
};
