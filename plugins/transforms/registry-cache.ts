/**
 * The transforms in force, as the proxy applies them: read from `provenance.transforms` and
 * swapped whole on every change, so one statement always sees one consistent registry.
 */
import type { SqlRunner } from '../registry/migrate.js';
import type { SandboxFunction, SandboxValue } from '../../sandbox/index.js';
import { GUARD_LEVELS, type GuardLevel } from '../registry/schema-column-guards.js';
import { loadRelationNames, type RelationNames } from './row-reads/relation-names.js';
import { recordedOf, servedFunction } from './version-function.js';

export interface BoundTransform {
  readonly name: string;
  readonly version: number;
  readonly fn: SandboxFunction;
  readonly params: SandboxValue;
  readonly position: number;
  /** Column numbers (attnum) a column transform applies to; null for a row transform. */
  readonly columns: ReadonlySet<number> | null;
  /** What SQL may do with the columns it transforms (see guards/). */
  readonly guard: GuardLevel;
  /** Roles whose members the guard does not refuse (the transform still runs for them). */
  readonly exempt: readonly string[];
  /**
   * Column numbers a row transform reads (its row objects hold them whatever a statement selects);
   * null: every column of the table. Null for a column transform.
   */
  readonly reads: ReadonlySet<number> | null;
}

export interface TableTransforms {
  readonly oid: number;
  /** Schema-qualified, quoted where needed (`public.customers`). */
  readonly name: string;
  /** The table's own name and schema, as the parser spells names; null if it cannot be read. */
  readonly relname?: string | null;
  readonly schema?: string | null;
  /** Whether another relation of any schema has the same name (a bare name may then mean it). */
  readonly sharedName?: boolean;
  /** attnum → column name, for building row objects. */
  readonly columnNames: ReadonlyMap<number, string>;
  /** In chain order. */
  readonly chain: readonly BoundTransform[];
}

export interface RefusedTable {
  /** The name the gone target was registered under. */
  readonly name: string;
  readonly transforms: readonly string[];
}

export interface Registry {
  readonly tables: ReadonlyMap<number, TableTransforms>;
  /**
   * Tables that took the place (or a column's name) of a transform's target that is gone: table
   * OID → the transforms concerned. Their data is refused to everyone but provenance_admin until
   * an admin registers the transforms again or adopts the table (fail closed).
   */
  readonly refused: ReadonlyMap<number, RefusedTable>;
  /** Names of the database's aggregate and window functions, read while some row transform is registered. */
  readonly aggregates?: ReadonlySet<string>;
  /** Every relation named as a table with a row transform or a view over one, read while some row transform is registered. */
  readonly relationNames?: RelationNames;
}

/** Members of this role may read a refused table, to decide what to do with it. */
export const REGISTRY_ADMIN_ROLE = 'provenance_admin';

// Every name qualified: this runs as the proxy's own login (see state-store.ts). Columns bind by
// number, as registered, so renames are followed; target_status says whether the target is there.
const LOAD_SQL = `
SELECT t.name, t.version, t.target_oid::pg_catalog.int8 AS target_oid, t.target_status,
       t.replaced_by::pg_catalog.int8 AS replaced_by, t.target, t.column_attnums, t.reads_attnums, t.source, t.params, t.position,
       t.guard, t.exempt, t.function_hash, t.runtime_identity,
       (SELECT pg_catalog.json_object_agg(a.attnum, a.attname) FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = t.target_oid AND a.attnum > 0 AND NOT a.attisdropped) AS attnames,
       (SELECT pg_catalog.json_build_array(n.nspname, c.relname,
                 EXISTS (SELECT 1 FROM pg_catalog.pg_class o
                          WHERE o.relname = c.relname AND o.oid <> c.oid AND o.relkind IN ('r', 'p', 'v', 'm', 'f')))
          FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE c.oid = t.target_oid) AS relation
  FROM provenance.transforms t
 WHERE t.enabled
 ORDER BY t.target_oid, t.position, t.name`;

const AGGREGATES_SQL = `SELECT DISTINCT p.proname AS name FROM pg_catalog.pg_proc p WHERE p.prokind IN ('a', 'w')`;

function asJson(v: unknown): unknown {
  return typeof v === 'string' ? JSON.parse(v) : v;
}

/** An unknown level (a newer schema than this proxy) is taken as the strictest. */
export function guardLevel(v: unknown): GuardLevel {
  return GUARD_LEVELS.find((g) => g === v) ?? 'strict';
}

export async function loadRegistry(db: SqlRunner): Promise<Registry> {
  const { rows } = await db.query(LOAD_SQL);
  const tables = new Map<number, TableTransforms & { chain: BoundTransform[] }>();
  const refused = new Map<number, RefusedTable>();
  for (const r of rows) {
    const name = String(r['name']);
    const status = String(r['target_status']);
    if (status === 'replaced') {
      const by = Number(r['replaced_by']);
      refused.set(by, { name: String(r['target']), transforms: [...(refused.get(by)?.transforms ?? []), name] });
    }
    if (status === 'dropped' || (status === 'replaced' && Number(r['replaced_by']) !== Number(r['target_oid']))) continue;
    const oid = Number(r['target_oid']);
    let table = tables.get(oid);
    if (!table) {
      const names = (asJson(r['attnames']) ?? {}) as Record<string, string>;
      const relation = asJson(r['relation']) as [string, string, boolean] | null;
      table = {
        oid,
        name: String(r['target']),
        schema: relation?.[0] ?? null,
        relname: relation?.[1] ?? null,
        sharedName: relation?.[2] ?? true,
        columnNames: new Map(Object.entries(names).map(([k, v]) => [Number(k), v])),
        chain: [],
      };
      tables.set(oid, table);
    }
    const attnums = r['column_attnums'] as (number | null)[] | null;
    const live = (list: (number | null)[] | null): Set<number> | null =>
      list === null ? null : new Set(list.filter((a): a is number => a !== null && table.columnNames.has(a)));
    const columns = live(attnums);
    table.chain.push({
      name,
      version: Number(r['version']),
      fn: servedFunction(recordedOf(name, columns ? 'column' : 'row', String(r['source']), r)),
      params: asJson(r['params']) as SandboxValue,
      position: Number(r['position']),
      columns,
      guard: guardLevel(r['guard']),
      exempt: (r['exempt'] as string[] | null) ?? [],
      reads: columns === null ? live(r['reads_attnums'] as (number | null)[] | null) : null,
    });
  }
  // A row transform cannot be applied faithfully to a grouped result: calls of these names count
  // as aggregates wherever they come from (see row-reads/select-forms.ts).
  const rowTransforms = [...tables.values()].some((t) => t.chain.some((b) => b.columns === null));
  const aggregates = rowTransforms ? new Set((await db.query(AGGREGATES_SQL)).rows.map((r) => String(r['name']))) : new Set<string>();
  const rowTables = [...tables.values()].filter((t) => t.chain.some((b) => b.columns === null)).map((t) => t.oid);
  return { tables, refused, aggregates, relationNames: await loadRelationNames(db, rowTables) };
}
