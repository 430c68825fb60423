/**
 * Migration 8 of the `provenance` schema: what a replay adds to an execution's record.
 *
 * - `as_of`: the moment an as-of read replayed (NULL for a read).
 * - `replay_of`: the recorded read execution with the same function hash, parameters and input
 *   hash that the replay was checked against (NULL: none was recorded).
 * - `verified`: whether the replay's output hash equals that execution's (NULL: nothing to check).
 *
 * The view shows them after the columns it had; the audit functions that return its rows are made
 * again with them, so they keep answering as before for the other columns.
 */
import type { Migration } from './schema.js';
import { EXECUTION_COLUMNS, queryFunctions } from './schema-dag.js';

const COLUMNS = `${EXECUTION_COLUMNS}, e.as_of, e.replay_of, e.verified`;

export const REPLAY_MIGRATION: Migration = {
  version: 8,
  description: 'replayed executions: moment, the recorded read they replay, verification',
  sql: `
ALTER TABLE provenance.execution
  ADD COLUMN as_of timestamptz,
  ADD COLUMN replay_of uuid,
  ADD COLUMN verified boolean,
  ADD CHECK ((kind = 'replay') = (as_of IS NOT NULL)),
  ADD CHECK (replay_of IS NOT NULL OR verified IS NULL);

-- A replay looks for the recorded read it repeats by input hash (then function hash, parameters).
CREATE INDEX execution_input ON provenance.execution (input_hash);

CREATE OR REPLACE VIEW provenance.executions AS
SELECT ${COLUMNS}
  FROM provenance.execution e;

${queryFunctions('CREATE OR REPLACE', COLUMNS)}
`,
};
