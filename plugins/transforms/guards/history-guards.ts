/**
 * A tracked table's history (`provenance.history_<oid>`) holds its columns' original values and
 * is readable by the table's readers: each history column of a guarded column is guarded as that
 * column, so reading around the transform through the history is refused as through the table.
 */
import type { HistoryColumns } from '../history-columns.js';
import { columnKey, type GuardedColumn, type GuardedColumns } from './policy.js';

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
