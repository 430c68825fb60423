/**
 * The tables whose row transforms read columns a statement may not select, as the rewrite needs
 * them: by name (the parser's names are compared, so quoting and case are the server's), with the
 * columns their chain's row transforms read.
 */
import type { Registry, TableTransforms } from '../registry-cache.js';

export interface ReadTable {
  readonly table: TableTransforms;
  /** The names of the columns the table's row transforms read, in column order. */
  readonly reads: readonly string[];
  /** Names of the row transforms, for messages. */
  readonly transforms: readonly string[];
}

/** Per table name, the tables of that name with a row transform (one per schema). */
export type ReadTables = ReadonlyMap<string, readonly ReadTable[]>;

const cache = new WeakMap<Registry, ReadTables>();

export function readTables(registry: Registry): ReadTables {
  const hit = cache.get(registry);
  if (hit) return hit;
  const out = new Map<string, ReadTable[]>();
  for (const table of registry.tables.values()) {
    const rows = table.chain.filter((t) => t.columns === null);
    if (rows.length === 0 || table.relname === null || table.relname === undefined) continue;
    const attnums = new Set<number>();
    for (const t of rows) for (const a of t.reads ?? table.columnNames.keys()) attnums.add(a);
    const reads = [...attnums].sort((a, b) => a - b).map((a) => table.columnNames.get(a)!).filter((n) => n !== undefined);
    const list = out.get(table.relname) ?? [];
    list.push({ table, reads, transforms: rows.map((t) => t.name) });
    out.set(table.relname, list);
  }
  cache.set(registry, out);
  return out;
}

/** Whether a text may name one of these tables: its name in any case, a cheap check before parsing. */
export function mayName(text: string, tables: ReadTables): boolean {
  if (tables.size === 0) return false;
  const lower = text.toLowerCase();
  for (const name of tables.keys()) if (lower.includes(name.toLowerCase())) return true;
  // A U& identifier can spell a name in escapes: such a text is read to be sure.
  return lower.includes('u&');
}
