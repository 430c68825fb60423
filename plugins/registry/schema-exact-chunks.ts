/**
 * Migration 15: where a result sits in what its client sent, so that a result read in chunks of a
 * portal (an Execute with a row limit: JDBC's fetchSize, a cursor of pg or postgres.js, the HTTP
 * API's own reads), or of one statement of a simple Query of several, can be replayed (README,
 * "HTTP": `POST /results/{id}/replay`).
 *
 * An exact statement recorded for a chunk also says which Execute of its portal it was (`chunk`,
 * 0 for the first), how many rows the portal returned before it (`chunk_offset`), and when the
 * portal's first Execute went upstream (`portal_at`): every chunk reads the portal's snapshot, so
 * a replay reads as of that moment, and the moment with the session names the portal, whose other
 * chunks the replay splits its rows like. A whole result has none of the three.
 *
 * The exact statement of a result of a simple Query of several is its own statement's text, with
 * which statement of the Query it was (`query_statement`, 0 for the first) and how many the Query
 * held (`query_statements`).
 *
 * Rows recorded before keep their keys: the key of a statement with none of these is computed as
 * before. (The moment enters the key in UTC: jsonb would spell it in the writer's time zone.)
 */
import type { Migration } from './schema.js';

/** The key expression, over a row `r` holding the exact_* fields; NULL when nothing was recorded. */
export const EXACT_KEY = `provenance.exact_key(r.exact_text, r.exact_types, r.exact_formats, r.exact_values, r.exact_refusal,
  r.exact_chunk, r.exact_offset, r.exact_portal_at, r.exact_query_statement, r.exact_query_statements)`;

export const EXACT_CHUNKS_MIGRATION: Migration = {
  version: 15,
  description: 'exact statements of chunks of a portal and of statements of a Query: their place, for replays',
  sql: `
ALTER TABLE provenance.exact_statement
  ADD COLUMN chunk integer,
  ADD COLUMN chunk_offset bigint,
  ADD COLUMN portal_at timestamptz,
  ADD COLUMN query_statement integer,
  ADD COLUMN query_statements integer,
  ADD CHECK ((chunk IS NULL) = (chunk_offset IS NULL) AND (chunk IS NULL) = (portal_at IS NULL)),
  ADD CHECK ((query_statement IS NULL) = (query_statements IS NULL)),
  ADD CHECK ((chunk IS NULL AND query_statement IS NULL) OR statement_text IS NOT NULL);

CREATE FUNCTION provenance.exact_key(
  statement_text text, param_types oid[], param_formats int2[], param_values bytea[], refusal text,
  chunk integer, chunk_offset bigint, portal_at timestamptz, query_statement integer, query_statements integer)
RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE WHEN $6 IS NULL AND $9 IS NULL THEN provenance.exact_key($1, $2, $3, $4, $5)
            ELSE provenance.content_key(pg_catalog.jsonb_build_array($1, $2::int8[], $3, $4, $5, $6, $7, $8 AT TIME ZONE 'UTC', $9, $10)) END;

-- A replay finds the other chunks of a portal by its moment.
CREATE INDEX exact_statement_portal_at ON provenance.exact_statement (portal_at) WHERE portal_at IS NOT NULL;

REVOKE ALL ON FUNCTION provenance.exact_key(text, oid[], int2[], bytea[], text, integer, bigint, timestamptz, integer, integer) FROM PUBLIC;
`,
};
