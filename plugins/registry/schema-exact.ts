/**
 * Migration 13 of the `provenance` schema: the exact statement behind a recorded read, so that it
 * can be replayed as of its moment (README, "HTTP": `POST /results/{id}/replay`).
 *
 * The normalised text every record carries has no literals and no parameters; this keeps them:
 * the text as the server got it, the parameter type OIDs its Parse declared, the Bind's parameter
 * formats and values (raw bytes, NULL elements for SQL NULLs). A statement that cannot be
 * replayed as recorded (over the size limit, one of several in a Query…) has only `refusal`, the
 * reason. Stored once per distinct content, keyed like the parts of migration 10, and named by
 * each of its executions (`execution_log.exact_key`, with `statement_at`, when the statement went
 * upstream: the moment a replay reads as of). Literals may be secrets: only the owner writes it
 * and only provenance_admin reads it; `--record-statements off` records none.
 */
import type { Migration } from './schema.js';

export const EXACT_STATEMENT_MIGRATION: Migration = {
  version: 13,
  description: 'exact statements of recorded reads, for replays',
  sql: `
CREATE FUNCTION provenance.exact_key(statement_text text, param_types oid[], param_formats int2[], param_values bytea[], refusal text)
RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE WHEN $1 IS NULL AND $5 IS NULL THEN NULL
            ELSE provenance.content_key(pg_catalog.jsonb_build_array($1, $2::int8[], $3, $4, $5)) END;

CREATE TABLE provenance.exact_statement (
  key uuid PRIMARY KEY,
  statement_text text,
  param_types oid[],
  param_formats int2[],
  param_values bytea[],
  refusal text,
  CHECK ((statement_text IS NULL) = (refusal IS NOT NULL))
);

ALTER TABLE provenance.execution_log ADD COLUMN exact_key uuid, ADD COLUMN statement_at timestamptz;

REVOKE ALL ON provenance.exact_statement FROM PUBLIC;
GRANT SELECT ON provenance.exact_statement TO provenance_admin;
REVOKE ALL ON FUNCTION provenance.exact_key(text, oid[], int2[], bytea[], text) FROM PUBLIC;
`,
};
