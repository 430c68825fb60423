/**
 * The partitions and inheritance children of tables with a guarded transform, at any depth, read
 * from pg_inherits over the proxy's own connection. The server's RowDescription names the child a
 * statement reads directly, not its parent, so none of the parent's transforms apply there: its
 * guarded columns (by name: a child has every column of its parents under the same names) and,
 * for a guarded row transform, the child's every row are guarded as the parent's (see
 * child-guards.ts). Kept until DDL through the proxy or a registry change, like the catalog.
 */
import type { SqlRunner } from '../../registry/migrate.js';
import { dotted } from '../../sql/source-model.js';
import type { Registry } from '../registry-cache.js';
import { loadRelationNames, type RelationNames } from '../row-reads/relation-names.js';

export interface InheritedTable {
  readonly oid: number;
  /** `schema.table`, for messages. */
  readonly label: string;
  /** A partition (declarative partitioning) rather than a child by INHERITS. */
  readonly partition: boolean;
  /** Column name → attnum. */
  readonly columns: ReadonlyMap<string, number>;
}

export interface Inherited {
  /** Guarded table oid → its partitions and children at every depth. */
  readonly byAncestor: ReadonlyMap<number, readonly InheritedTable[]>;
  /**
   * Every relation named as a child of a table with a guarded row transform, or as a view over
   * one (relation-names.ts): how a statement's names are told to read one.
   */
  readonly names: RelationNames;
}

export const NO_INHERITED: Inherited = { byAncestor: new Map(), names: new Map() };

// Every name qualified: this runs as the proxy's own login. pg_inherits holds one level (a
// sub-partition names its partition): followed down from the guarded tables.
const DESCENDANTS_SQL = (oids: readonly number[]): string => `
WITH RECURSIVE d(child, ancestor) AS (
  SELECT i.inhrelid, i.inhparent FROM pg_catalog.pg_inherits i
   WHERE i.inhparent OPERATOR(pg_catalog.=) ANY (ARRAY[${oids.join(',')}]::pg_catalog.oid[])
  UNION
  SELECT i.inhrelid, d.ancestor FROM d JOIN pg_catalog.pg_inherits i ON i.inhparent OPERATOR(pg_catalog.=) d.child
)
SELECT d.child::pg_catalog.int8 AS oid, d.ancestor::pg_catalog.int8 AS ancestor, n.nspname AS schema, c.relname AS name,
       c.relispartition AS partition,
       (SELECT pg_catalog.json_object_agg(a.attname, a.attnum) FROM pg_catalog.pg_attribute a
         WHERE a.attrelid OPERATOR(pg_catalog.=) d.child AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped) AS columns
  FROM d JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) d.child
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace`;

function asJson(v: unknown): unknown {
  return typeof v === 'string' ? JSON.parse(v) : v;
}

async function loadInherited(db: SqlRunner, registry: Registry): Promise<Inherited> {
  const guarded = [...registry.tables.values()].filter((t) => t.chain.some((b) => b.guard !== 'off'));
  if (guarded.length === 0) return NO_INHERITED;
  const byAncestor = new Map<number, InheritedTable[]>();
  const { rows } = await db.query(DESCENDANTS_SQL(guarded.map((t) => Math.trunc(t.oid))));
  if (rows.length === 0) return NO_INHERITED;
  for (const r of rows) {
    const columns = Object.entries((asJson(r['columns']) ?? {}) as Record<string, number>).map(([k, v]) => [k, Number(v)] as const);
    const child: InheritedTable = {
      oid: Number(r['oid']),
      label: dotted([String(r['schema']), String(r['name'])]),
      partition: r['partition'] === true,
      columns: new Map(columns),
    };
    const ancestor = Number(r['ancestor']);
    byAncestor.set(ancestor, [...(byAncestor.get(ancestor) ?? []), child]);
  }
  const rowGuarded = guarded.filter((t) => t.chain.some((b) => b.columns === null && b.guard !== 'off'));
  const rowChildren = [...new Set(rowGuarded.flatMap((t) => (byAncestor.get(t.oid) ?? []).map((c) => c.oid)))];
  return { byAncestor, names: await loadRelationNames(db, rowChildren) };
}

/** The inherited tables of a registry's guarded tables, read once until forgotten. */
export class InheritedTables {
  private loaded: { readonly registry: Registry; readonly value: Promise<Inherited> } | null = null;

  invalidate(): void {
    this.loaded = null;
  }

  of(db: SqlRunner, registry: Registry): Promise<Inherited> {
    if (this.loaded?.registry === registry) return this.loaded.value;
    const value = loadInherited(db, registry);
    const entry = { registry, value };
    this.loaded = entry;
    // A failed read is tried again by the next statement.
    value.catch(() => {
      if (this.loaded === entry) this.loaded = null;
    });
    return value;
  }
}
