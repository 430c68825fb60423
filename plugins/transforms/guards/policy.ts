/**
 * What is guarded for a session: every column of a column transform whose guard is not `off`,
 * and the rows of every table with a row transform whose guard is not `off`, unless one of the
 * session's roles is exempt from that transform. Row transforms' guards rule over how a statement
 * reads their table's rows (plugins/transforms/row-reads/); here they only make every statement
 * of the session read, so that one whose reads cannot be told (a function that may read tables…)
 * is refused.
 */
import type { GuardLevel } from '../../registry/schema-column-guards.js';
import type { Registry } from '../registry-cache.js';

export interface GuardedColumn {
  readonly oid: number;
  readonly attnum: number;
  /** `schema.table.column`, for messages. */
  readonly label: string;
  readonly transform: string;
  readonly guard: Exclude<GuardLevel, 'off'>;
  /**
   * For the column of a partition or inheritance child, the guarded table it inherits it from:
   * the transform does not apply to it even as a plain column.
   */
  readonly inherited?: { readonly parent: string; readonly partition: boolean };
  /**
   * For the column of a parent (grandparent…), the guarded partition or inheritance child whose
   * column of the same name it holds (`ancestor`: the parent's `schema.table`): the transform does
   * not apply to it even as a plain column.
   */
  readonly descendant?: { readonly label: string; readonly partition: boolean; readonly ancestor: string };
}

/** Guarded columns by `oid.attnum`; the strictest guard first when several transforms guard one. */
export type GuardedColumns = ReadonlyMap<string, readonly GuardedColumn[]>;

export const columnKey = (oid: number, attnum: number): string => `${oid}.${attnum}`;

/** A table whose rows a guarded row transform filters. */
export interface GuardedRows {
  readonly oid: number;
  /** `schema.table`, for messages. */
  readonly label: string;
  readonly transform: string;
  readonly guard: Exclude<GuardLevel, 'off'>;
}

/** Whether any transform of the registry has a guard: only then are statements read. */
export function anyGuard(registry: Registry | null): boolean {
  if (registry === null) return false;
  for (const table of registry.tables.values()) for (const t of table.chain) if (t.guard !== 'off') return true;
  return false;
}

export function guardedRows(registry: Registry, roles: readonly string[]): readonly GuardedRows[] {
  const out: GuardedRows[] = [];
  for (const table of registry.tables.values()) {
    for (const t of table.chain) {
      if (t.columns !== null || t.guard === 'off' || t.exempt.some((r) => roles.includes(r))) continue;
      out.push({ oid: table.oid, label: table.name, transform: t.name, guard: t.guard });
    }
  }
  return out;
}

export function guardedColumns(registry: Registry, roles: readonly string[]): GuardedColumns {
  const out = new Map<string, GuardedColumn[]>();
  for (const table of registry.tables.values()) {
    for (const t of table.chain) {
      if (t.columns === null || t.guard === 'off' || t.exempt.some((r) => roles.includes(r))) continue;
      for (const attnum of t.columns) {
        const key = columnKey(table.oid, attnum);
        const label = `${table.name}.${table.columnNames.get(attnum) ?? `column ${attnum}`}`;
        const list = [...(out.get(key) ?? []), { oid: table.oid, attnum, label, transform: t.name, guard: t.guard }];
        out.set(key, list.sort((a, b) => (a.guard === b.guard ? 0 : a.guard === 'strict' ? -1 : 1)));
      }
    }
  }
  return out;
}
