import { describe, expect, it } from 'vitest';
import { SqlAnalyser } from '../../plugins/sql/analyser.js';
import { mayChangeRegistry } from '../../plugins/transforms/registry-change.js';

describe('which statements naming provenance. wait for the registry', () => {
  it('settings and reads do not; calls, writes and other statements on the schema do', async () => {
    const sql = await SqlAnalyser.load();
    const waits = (text: string): boolean => mayChangeRegistry(sql.analyse(text));
    for (const text of [
      "SET provenance.as_of = '2024-10-27T10:00:00Z'", 'SET LOCAL provenance.x TO 1', 'RESET provenance.as_of', 'SHOW provenance.as_of',
      "SELECT current_setting('provenance.as_of')", 'SELECT * FROM provenance.transforms', "set provenance.x = 'y'; show provenance.x",
    ]) expect(waits(text), text).toBe(false);
    for (const text of [
      "SELECT provenance.register_transform('m', 'public.t', ARRAY['c'], '(v) => v')", "SELECT 1; SELECT provenance.drop_transform('m')",
      "INSERT INTO provenance.transforms (name) VALUES ('x')", "UPDATE provenance.transforms SET enabled = false",
      'WITH d AS (DELETE FROM provenance.transforms RETURNING 1) SELECT * FROM d', 'DROP TABLE provenance.transforms',
      "CALL provenance.refresh()", 'SELEC provenance.oops',
    ]) expect(waits(text), text).toBe(true);
  });
});
