/**
 * The tables whose row transforms read columns a statement may not select, as the rewrite needs
 * them: by OID, with the columns their chain's row transforms read, and the relations a name of a
 * statement may mean (relation-names.ts).
 */
import type { Registry, TableTransforms } from '../registry-cache.js';
import { resolveName, type NamePath, type NamedRelation, type RelationNames } from './relation-names.js';

export interface ReadTable {
  readonly table: TableTransforms;
  /** The names of the columns the table's row transforms read, in column order. */
  readonly reads: readonly string[];
  /** Names of the row transforms, for messages. */
  readonly transforms: readonly string[];
}

export interface ReadTables {
  /** The tables with a row transform, by OID. */
  readonly byOid: ReadonlyMap<number, ReadTable>;
  /** Every relation named as one of them, or as a view over one. */
  readonly names: RelationNames;
}

const cache = new WeakMap<Registry, ReadTables>();

/** A table's row transforms and the columns they read, or null when its chain has none. */
export function readTable(table: TableTransforms): ReadTable | null {
  const rows = table.chain.filter((t) => t.columns === null);
  if (rows.length === 0) return null;
  const attnums = new Set<number>();
  for (const t of rows) for (const a of t.reads ?? table.columnNames.keys()) attnums.add(a);
  const reads = [...attnums].sort((a, b) => a - b).map((a) => table.columnNames.get(a)!).filter((n) => n !== undefined);
  return { table, reads, transforms: rows.map((t) => t.name) };
}

export function readTables(registry: Registry): ReadTables {
  const hit = cache.get(registry);
  if (hit) return hit;
  const byOid = new Map<number, ReadTable>();
  const names = new Map<string, NamedRelation[]>();
  for (const table of registry.tables.values()) {
    const read = readTable(table);
    if (read === null) continue;
    byOid.set(table.oid, read);
    // Without the catalog's list (a registry built by hand), the table's own name, shared if it may be.
    if (registry.relationNames === undefined && table.relname !== null && table.relname !== undefined) {
      const list = names.get(table.relname) ?? [];
      list.push({ oid: table.oid, schema: table.schema ?? '', viewOf: [] });
      if (table.sharedName !== false) list.push({ oid: 0, schema: '', viewOf: [] });
      names.set(table.relname, list);
    }
  }
  const out = { byOid, names: registry.relationNames ?? names };
  cache.set(registry, out);
  return out;
}

/** What a statement's reference to a relation means for row transforms. */
export type TableRef =
  | { readonly kind: 'table'; readonly table: ReadTable }
  /** A view whose query reads these tables: their columns cannot be fetched through it. */
  | { readonly kind: 'view'; readonly tables: readonly ReadTable[]; readonly name: string }
  /** A bare name the server may resolve to one of these tables (or views over them). */
  | { readonly kind: 'unsure'; readonly tables: readonly ReadTable[]; readonly name: string }
  | null;

function tablesOf(tables: ReadTables, r: NamedRelation): ReadTable[] {
  const direct = tables.byOid.get(r.oid);
  return direct !== undefined ? [direct] : r.viewOf.map((o) => tables.byOid.get(o)).filter((t): t is ReadTable => t !== undefined);
}

/** A RangeVar's (schema, name) resolved against the tables with row transforms. */
export function tableRef(tables: ReadTables, schema: string | undefined, name: string, path: NamePath): TableRef {
  const r = resolveName(schema, name, tables.names, path);
  if (r === null) return null;
  if (r.kind === 'unsure') {
    const all = [...new Set(r.candidates.flatMap((c) => tablesOf(tables, c)))];
    return all.length === 0 ? null : { kind: 'unsure', tables: all, name };
  }
  const direct = tables.byOid.get(r.relation.oid);
  if (direct !== undefined) return { kind: 'table', table: direct };
  const via = tablesOf(tables, r.relation);
  return via.length === 0 ? null : { kind: 'view', tables: via, name: `${r.relation.schema}.${name}` };
}

/** Whether a lower-cased text may hold a relation's name: as it is, or quoted with its quotes doubled. */
function holdsName(lower: string, name: string): boolean {
  const n = name.toLowerCase();
  return lower.includes(n) || (n.includes('"') && lower.includes(n.replaceAll('"', '""')));
}

/**
 * Whether a text may name one of these relations, in any case: a cheap check before parsing or
 * resolving its names. A U& identifier can spell a name in escapes: such a text is read to be sure.
 */
export function mayHoldName(text: string, names: Iterable<string>): boolean {
  const lower = text.toLowerCase();
  if (lower.includes('u&')) return true;
  for (const name of names) if (holdsName(lower, name)) return true;
  return false;
}

/** Whether a text may name one of these relations (mayHoldName). */
export function mayName(text: string, tables: ReadTables): boolean {
  return tables.byOid.size > 0 && mayHoldName(text, tables.names.keys());
}

/**
 * The schemas of the search_path that hold a relation of a name a text may hold, where several
 * schemas hold one: whether the user may use them decides which one a bare name means.
 */
export function sharedSchemas(text: string, names: RelationNames, path: NamePath): string[] {
  if (path.searchPath === null) return [];
  const lower = text.toLowerCase();
  const escaped = lower.includes('u&');
  const onPath = new Set(path.searchPath.map((s) => (s === '$user' ? path.user ?? '' : s)));
  const out = new Set<string>();
  for (const [name, list] of names) {
    if (list.length < 2 || !(escaped || holdsName(lower, name))) continue;
    for (const r of list) if (onPath.has(r.schema) && r.schema !== 'pg_catalog') out.add(r.schema);
  }
  return [...out].sort();
}
