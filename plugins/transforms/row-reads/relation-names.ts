/**
 * The relations a statement may mean when it names a table with a row transform, or a view over
 * one: every relation of such a name in any schema, read with the registry, so that a bare name
 * is resolved through the session's search_path as the server resolves it, and a view (or
 * materialized view) whose query reads such a table, however deeply, is known as one.
 */
import type { SqlRunner } from '../../registry/migrate.js';

export interface NamedRelation {
  readonly oid: number;
  readonly schema: string;
  /** For a view or materialized view, the tables with a row transform its query reads (through other views too); else empty. */
  readonly viewOf: readonly number[];
}

/** Relation name → every relation of that name (tables, views, materialized views, foreign tables). */
export type RelationNames = ReadonlyMap<string, readonly NamedRelation[]>;

// Every name qualified: this runs as the proxy's own login. A view's rewrite rule depends on each
// relation its query reads; followed from the tables up through views of views.
const NAMES_SQL = (oids: readonly number[]): string => `
WITH RECURSIVE dep(view_oid, target_oid) AS (
  SELECT r.ev_class, d.refobjid
    FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite r ON r.oid OPERATOR(pg_catalog.=) d.objid
   WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass
     AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
     AND d.refobjid OPERATOR(pg_catalog.=) ANY (ARRAY[${oids.join(',')}]::pg_catalog.oid[])
     AND r.ev_class OPERATOR(pg_catalog.<>) d.refobjid
  UNION
  SELECT r.ev_class, dep.target_oid
    FROM dep JOIN pg_catalog.pg_depend d ON d.refobjid OPERATOR(pg_catalog.=) dep.view_oid
     AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass
     AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
    JOIN pg_catalog.pg_rewrite r ON r.oid OPERATOR(pg_catalog.=) d.objid AND r.ev_class OPERATOR(pg_catalog.<>) d.refobjid
), named AS (
  SELECT c.relname FROM pg_catalog.pg_class c
   WHERE c.oid OPERATOR(pg_catalog.=) ANY (ARRAY[${oids.join(',')}]::pg_catalog.oid[])
      OR c.oid IN (SELECT view_oid FROM dep)
)
SELECT c.oid::pg_catalog.int8 AS oid, n.nspname AS schema, c.relname AS name,
       (SELECT pg_catalog.array_agg(DISTINCT dep.target_oid::pg_catalog.int8) FROM dep WHERE dep.view_oid OPERATOR(pg_catalog.=) c.oid) AS view_of
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
 WHERE c.relname IN (SELECT relname FROM named) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')`;

export async function loadRelationNames(db: SqlRunner, rowTables: readonly number[]): Promise<RelationNames> {
  const out = new Map<string, NamedRelation[]>();
  if (rowTables.length === 0) return out;
  for (const r of (await db.query(NAMES_SQL(rowTables.map((o) => Math.trunc(o))))).rows) {
    const name = String(r['name']);
    const viewOf = ((r['view_of'] as (number | string)[] | null) ?? []).map(Number);
    const list = out.get(name) ?? [];
    list.push({ oid: Number(r['oid']), schema: String(r['schema']), viewOf });
    out.set(name, list);
  }
  return out;
}

/** What a name of a statement means, as far as row transforms care. */
export type Resolved =
  | { readonly kind: 'relation'; readonly relation: NamedRelation }
  /** The server may resolve it to any of these (the search_path is not known, or a temporary table may shadow it). */
  | { readonly kind: 'unsure'; readonly candidates: readonly NamedRelation[] }
  | null;

export interface NamePath {
  /** The session's search_path as written (`$user`, `pg_temp` included); null when not known. */
  readonly searchPath: readonly string[] | null;
  readonly user: string | null;
  /**
   * Whether the user may use each schema (USAGE) that holds a relation of a name the statement may
   * mean; a schema not here is not known, and a bare name found there resolves unsure.
   */
  readonly usable?: ReadonlyMap<string, boolean>;
}

/**
 * Resolves a (schema, name) as the server does: a qualified name in its schema; a bare name
 * through the search_path, with the session's temporary schema first and pg_catalog before the
 * path unless listed, schemas the user may not use skipped (as the server leaves them out).
 */
export function resolveName(schema: string | undefined, name: string, names: RelationNames, path: NamePath): Resolved {
  const list = names.get(name);
  if (list === undefined || list.length === 0) return null;
  if (schema !== undefined) {
    const hit = list.find((r) => r.schema === schema);
    return hit === undefined ? null : { kind: 'relation', relation: hit };
  }
  const temp = list.filter((r) => r.schema.startsWith('pg_temp_'));
  if (list.length === 1 && temp.length === 0) return { kind: 'relation', relation: list[0]! };
  if (path.searchPath === null) return { kind: 'unsure', candidates: list };
  const schemas = [...path.searchPath];
  if (!schemas.includes('pg_catalog')) schemas.unshift('pg_catalog');
  if (!schemas.includes('pg_temp')) schemas.unshift('pg_temp');
  for (const s of schemas) {
    if (s === 'pg_temp') {
      // Another session's temporary table is invisible here, the session's own is not: which one it is is not known.
      if (temp.length > 0) return { kind: 'unsure', candidates: list };
      continue;
    }
    const wanted = s === '$user' ? path.user : s;
    if (wanted === null) return { kind: 'unsure', candidates: list };
    const hit = list.find((r) => r.schema === wanted);
    if (hit === undefined) continue;
    const usable = wanted === 'pg_catalog' ? true : path.usable?.get(wanted);
    if (usable === undefined) return { kind: 'unsure', candidates: list };
    if (usable) return { kind: 'relation', relation: hit };
  }
  return null;
}
