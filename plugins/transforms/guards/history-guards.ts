/**
 * A tracked table's history (`provenance.history_<oid>`) holds its columns' original values and
 * is readable by the table's readers: each history column of a guarded column is guarded as that
 * column, so reading around the transform through the history is refused as through the table.
 * The history of a table whose rows a guarded row transform filters holds the hidden rows too.
 */
import type { HistoryColumns } from '../history-columns.js';
import { columnKey, type GuardedColumn, type GuardedColumns, type GuardedRows } from './policy.js';

/** History table oid → the guarded rows whose table it keeps the history of. */
export type GuardedHistories = ReadonlyMap<number, GuardedRows>;

export function rowHistories(rows: readonly GuardedRows[], history: HistoryColumns | null): GuardedHistories {
  const out = new Map<number, GuardedRows>();
  if (rows.length === 0 || history === null) return out;
  for (const [historyOid, map] of history) {
    const source = map.values().next().value;
    const guarded = source === undefined ? undefined : rows.find((r) => r.oid === source.oid);
    if (guarded !== undefined) out.set(historyOid, guarded);
  }
  return out;
}

export function withHistory(columns: GuardedColumns, history: HistoryColumns | null): GuardedColumns {
  if (columns.size === 0 || history === null || history.size === 0) return columns;
  const out = new Map<string, readonly GuardedColumn[]>(columns);
  for (const [historyOid, map] of history) {
    for (const [historyAttnum, source] of map) {
      const guarded = columns.get(columnKey(source.oid, source.attnum));
      if (guarded !== undefined) out.set(columnKey(historyOid, historyAttnum), guarded);
    }
  }
  return out;
}
