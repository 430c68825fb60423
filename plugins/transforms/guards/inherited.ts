/**
 * The partitions and inheritance children of tables with a guarded transform, at any depth, and
 * the tables they are partitions or children of, read from pg_inherits over the proxy's own
 * connection. The server's RowDescription names the table a statement reads, not the partition or
 * child a row comes from, nor the parent of one: a child read directly gets none of its parent's
 * transforms, and a parent read gets none of its children's. So a guarded column is guarded, by
 * name, in its table's children (a child has every column of its parents under the same names) and
 * ancestors, and the rows of a table with a guarded row transform in its children and ancestors
 * (see child-guards.ts, ancestor-guards.ts). Kept until DDL through the proxy or a registry
 * change, like the catalog.
 */
import type { SqlRunner } from '../../registry/migrate.js';
import { dotted } from '../../sql/source-model.js';
import type { Registry } from '../registry-cache.js';
import { loadRelationNames, type RelationNames } from '../row-reads/relation-names.js';

export interface InheritedTable {
  readonly oid: number;
  /** `schema.table`, for messages. */
  readonly label: string;
  /**
   * A partition (declarative partitioning) rather than a child by INHERITS; for an ancestor, said
   * of the guarded table under it.
   */
  readonly partition: boolean;
  /** Column name → attnum. */
  readonly columns: ReadonlyMap<string, number>;
}

export interface Inherited {
  /** Guarded table oid → its partitions and children at every depth. */
  readonly byAncestor: ReadonlyMap<number, readonly InheritedTable[]>;
  /**
   * Guarded table oid → the tables it is a partition or child of, at every depth (`partition`:
   * the guarded table is a partition rather than a child by INHERITS; `columns` the ancestor's).
   */
  readonly byDescendant: ReadonlyMap<number, readonly InheritedTable[]>;
  /**
   * Every relation named as a child of a table with a guarded row transform, as an ancestor of a
   * guarded table, or as a view over one (relation-names.ts): how a statement's names are told to
   * read one.
   */
  readonly names: RelationNames;
}

export const NO_INHERITED: Inherited = { byAncestor: new Map(), byDescendant: new Map(), names: new Map() };

// Every name qualified: this runs as the proxy's own login. pg_inherits holds one level (a
// sub-partition names its partition): followed down from the guarded tables to their children
// (d), and up to their ancestors (u).
const INHERITED_SQL = (oids: readonly number[]): string => `
WITH RECURSIVE d(rel, guarded) AS (
  SELECT i.inhrelid, i.inhparent FROM pg_catalog.pg_inherits i
   WHERE i.inhparent OPERATOR(pg_catalog.=) ANY (ARRAY[${oids.join(',')}]::pg_catalog.oid[])
  UNION
  SELECT i.inhrelid, d.guarded FROM d JOIN pg_catalog.pg_inherits i ON i.inhparent OPERATOR(pg_catalog.=) d.rel
), u(rel, guarded) AS (
  SELECT i.inhparent, i.inhrelid FROM pg_catalog.pg_inherits i
   WHERE i.inhrelid OPERATOR(pg_catalog.=) ANY (ARRAY[${oids.join(',')}]::pg_catalog.oid[])
  UNION
  SELECT i.inhparent, u.guarded FROM u JOIN pg_catalog.pg_inherits i ON i.inhrelid OPERATOR(pg_catalog.=) u.rel
), r(rel, guarded, up) AS (
  SELECT d.rel, d.guarded, false FROM d UNION ALL SELECT u.rel, u.guarded, true FROM u
)
SELECT r.rel::pg_catalog.int8 AS oid, r.guarded::pg_catalog.int8 AS guarded, r.up, n.nspname AS schema, c.relname AS name,
       CASE WHEN r.up THEN g.relispartition ELSE c.relispartition END AS partition,
       (SELECT pg_catalog.json_object_agg(a.attname, a.attnum) FROM pg_catalog.pg_attribute a
         WHERE a.attrelid OPERATOR(pg_catalog.=) r.rel AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped) AS columns
  FROM r JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) r.rel
  JOIN pg_catalog.pg_class g ON g.oid OPERATOR(pg_catalog.=) r.guarded
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace`;

function asJson(v: unknown): unknown {
  return typeof v === 'string' ? JSON.parse(v) : v;
}

async function loadInherited(db: SqlRunner, registry: Registry): Promise<Inherited> {
  const guarded = [...registry.tables.values()].filter((t) => t.chain.some((b) => b.guard !== 'off'));
  if (guarded.length === 0) return NO_INHERITED;
  const byAncestor = new Map<number, InheritedTable[]>();
  const byDescendant = new Map<number, InheritedTable[]>();
  const { rows } = await db.query(INHERITED_SQL(guarded.map((t) => Math.trunc(t.oid))));
  if (rows.length === 0) return NO_INHERITED;
  for (const r of rows) {
    const columns = Object.entries((asJson(r['columns']) ?? {}) as Record<string, number>).map(([k, v]) => [k, Number(v)] as const);
    const rel: InheritedTable = {
      oid: Number(r['oid']),
      label: dotted([String(r['schema']), String(r['name'])]),
      partition: r['partition'] === true,
      columns: new Map(columns),
    };
    const by = r['up'] === true ? byDescendant : byAncestor;
    const table = Number(r['guarded']);
    by.set(table, [...(by.get(table) ?? []), rel]);
  }
  const rowGuarded = guarded.filter((t) => t.chain.some((b) => b.columns === null && b.guard !== 'off'));
  const rowChildren = rowGuarded.flatMap((t) => (byAncestor.get(t.oid) ?? []).map((c) => c.oid));
  const ancestors = [...byDescendant.values()].flatMap((l) => l.map((a) => a.oid));
  return { byAncestor, byDescendant, names: await loadRelationNames(db, [...new Set([...rowChildren, ...ancestors])]) };
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
