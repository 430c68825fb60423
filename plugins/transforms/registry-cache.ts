/**
 * The transforms in force, as the proxy applies them: read from `provenance.transforms` and
 * swapped whole on every change, so one statement always sees one consistent registry.
 */
import type { SqlRunner } from '../registry/migrate.js';
import { sandboxFunction, type SandboxFunction, type SandboxValue } from '../../sandbox/index.js';

export interface BoundTransform {
  readonly name: string;
  readonly version: number;
  readonly fn: SandboxFunction;
  readonly params: SandboxValue;
  readonly position: number;
  /** Column numbers (attnum) a column transform applies to; null for a row transform. */
  readonly columns: ReadonlySet<number> | null;
}

export interface TableTransforms {
  readonly oid: number;
  /** Schema-qualified, quoted where needed (`public.customers`). */
  readonly name: string;
  /** attnum → column name, for building row objects. */
  readonly columnNames: ReadonlyMap<number, string>;
  /** In chain order. */
  readonly chain: readonly BoundTransform[];
}

export interface Registry {
  readonly tables: ReadonlyMap<number, TableTransforms>;
}

const LOAD_SQL = `
SELECT t.name, t.version, t.target_oid::int8 AS target_oid,
       coalesce((SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.oid = t.target_oid), t.target) AS target, t.columns, t.source, t.params, t.position,
       (SELECT json_object_agg(a.attnum, a.attname) FROM pg_attribute a
         WHERE a.attrelid = t.target_oid AND a.attnum > 0 AND NOT a.attisdropped) AS attnames
  FROM provenance.transforms t
 WHERE t.enabled
 ORDER BY t.target_oid, t.position, t.name`;

function asJson(v: unknown): unknown {
  return typeof v === 'string' ? JSON.parse(v) : v;
}

export async function loadRegistry(db: SqlRunner): Promise<Registry> {
  const { rows } = await db.query(LOAD_SQL);
  const tables = new Map<number, { oid: number; name: string; columnNames: Map<number, string>; chain: BoundTransform[] }>();
  for (const r of rows) {
    const oid = Number(r['target_oid']);
    let table = tables.get(oid);
    if (!table) {
      const names = (asJson(r['attnames']) ?? {}) as Record<string, string>;
      table = {
        oid,
        name: String(r['target']),
        columnNames: new Map(Object.entries(names).map(([k, v]) => [Number(k), v])),
        chain: [],
      };
      tables.set(oid, table);
    }
    const columnList = r['columns'] as string[] | null;
    let columns: Set<number> | null = null;
    if (columnList) {
      columns = new Set();
      for (const [attnum, name] of table.columnNames) if (columnList.includes(name)) columns.add(attnum);
    }
    const name = String(r['name']);
    table.chain.push({
      name,
      version: Number(r['version']),
      fn: sandboxFunction(name, columns ? 'column' : 'row', String(r['source'])),
      params: asJson(r['params']) as SandboxValue,
      position: Number(r['position']),
      columns,
    });
  }
  return { tables };
}
