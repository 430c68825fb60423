/**
 * A result of a session reading the present may take columns from a history table directly
 * (`select email from provenance.history_<oid>`): those hold the tracked table's original values,
 * so they are bound to the table's columns and go through its current chain like the table's own.
 * A row transform would need row objects as the table's rows; a history table's rows are versions
 * of them (several per row, with validity columns), which the transform was not written for: such
 * a result is refused rather than served raw or transformed unfaithfully.
 */
import { PgError, SqlState } from '../../proxy/errors.js';
import type { FieldDescription } from '../../proxy/wire/backend-messages.js';
import type { HistoryColumns } from './history-columns.js';
import type { Registry } from './registry-cache.js';

/** The fields with history columns given the table and column they hold (others unchanged), or the refusal. */
export function presentOrigins(
  fields: readonly FieldDescription[], history: HistoryColumns | null, registry: Registry,
): readonly FieldDescription[] | PgError {
  if (history === null || history.size === 0 || !fields.some((f) => history.has(f.tableID))) return fields;
  const out: FieldDescription[] = [];
  for (const f of fields) {
    const source = history.get(f.tableID)?.get(f.columnID);
    if (source === undefined) {
      out.push(f);
      continue;
    }
    const table = registry.tables.get(source.oid);
    const row = table?.chain.find((t) => t.columns === null);
    if (table !== undefined && row !== undefined) {
      return new PgError(SqlState.FeatureNotSupported,
        `column "${f.name}" is read from the history of ${table.name}, whose row transform "${row.name}" cannot be applied to history rows: read the table itself, or read as of a moment (SET provenance.as_of)`);
    }
    out.push({ ...f, tableID: source.oid, columnID: source.attnum });
  }
  return out;
}
