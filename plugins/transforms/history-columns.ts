/**
 * Which tracked table's column each history column holds (`provenance.history_<oid>`, see
 * plugins/registry/history-schema.ts), read with the registry: a history table is readable by the
 * table's readers, so in a session reading the present its columns are bound to the table's and
 * run the current chain, and its guarded columns are guarded as the table's. A table is tracked in
 * the transaction that registers its first transform, whose NOTIFY reloads this too.
 */
import type { SqlRunner } from '../registry/migrate.js';

export interface HistorySource {
  readonly oid: number;
  readonly attnum: number;
}

/** History table oid → (history attnum → the tracked table's column). */
export type HistoryColumns = ReadonlyMap<number, ReadonlyMap<number, HistorySource>>;

// Every name qualified: this runs as the proxy's own login.
const HISTORY_COLUMNS_SQL = `
SELECT h.history::pg_catalog.oid::pg_catalog.int8 AS history_oid, h.target_oid::pg_catalog.int8 AS target_oid,
       ha.attnum AS history_attnum, c.attnum
  FROM provenance.history_table h
  JOIN provenance.history_column c ON c.target_oid OPERATOR(pg_catalog.=) h.target_oid AND NOT c.dropped
  JOIN pg_catalog.pg_attribute ha ON ha.attrelid OPERATOR(pg_catalog.=) h.history
                                 AND ha.attname OPERATOR(pg_catalog.=) c.history_name AND NOT ha.attisdropped`;

export async function loadHistoryColumns(db: SqlRunner): Promise<HistoryColumns> {
  const out = new Map<number, Map<number, HistorySource>>();
  for (const r of (await db.query(HISTORY_COLUMNS_SQL)).rows) {
    const history = Number(r['history_oid']);
    let m = out.get(history);
    if (!m) out.set(history, (m = new Map()));
    m.set(Number(r['history_attnum']), { oid: Number(r['target_oid']), attnum: Number(r['attnum']) });
  }
  return out;
}
