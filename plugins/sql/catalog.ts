/**
 * What the column-source analysis needs to know of the database: relations (with their columns
 * and, for views, their definitions), functions, operators and types, by schema and name.
 *
 * The analysis is synchronous, so a catalog answers from what it holds: `undefined` means "not
 * loaded yet" (the analysis then names what it missed, and `analyseWithCatalog` in
 * column-sources.ts loads it and runs again), `null` means "there is no such object".
 */
import type { SqlRunner } from '../registry/migrate.js';

export type RelationKind = 'table' | 'partitioned' | 'view' | 'matview' | 'foreign' | 'sequence' | 'other';

export interface CatalogColumn {
  readonly name: string;
  readonly attnum: number;
}

export interface CatalogRelation {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  readonly kind: RelationKind;
  /** User columns in attnum order, dropped ones left out. */
  readonly columns: readonly CatalogColumn[];
  /** For a view or materialized view, its query as `pg_get_viewdef` prints it with only pg_catalog on the search_path (so every other name is schema-qualified). */
  readonly definition: string | null;
}

export interface CatalogFunction {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  readonly language: string;
  readonly volatility: 'immutable' | 'stable' | 'volatile';
  readonly kind: 'function' | 'aggregate' | 'window' | 'procedure';
  readonly returnsSet: boolean;
  readonly argCount: number;
  /** How many trailing arguments have defaults. */
  readonly defaults: number;
  readonly variadic: boolean;
  /**
   * False only for a built-in that computes its result from its arguments alone. Anything
   * user-defined, and the built-ins that run queries or read files and large objects, may read
   * any table.
   */
  readonly mayReadTables: boolean;
  /** The names of the columns it returns when it declares them (OUT/TABLE arguments), else null. */
  readonly outputColumns: readonly string[] | null;
}

export interface Catalog {
  /**
   * A relation by schema and name. The schema `pg_temp` stands for the temporary schema of any
   * session (the analysis asks it when it cannot know the session's own).
   */
  relation(schema: string, name: string): CatalogRelation | null | undefined;
  /** Every function of that schema and name, whatever its arguments. */
  functions(schema: string, name: string): readonly CatalogFunction[] | undefined;
  /** Whether the operators of that schema and name all run built-in functions; null if there is none. */
  operatorIsBuiltin(schema: string, name: string): boolean | null | undefined;
  /** A type by schema and name: whether it is built-in; null if there is none. */
  typeIsBuiltin(schema: string, name: string): boolean | null | undefined;
  /**
   * Whether a role may use a schema (USAGE): the server leaves the others out of a search_path.
   * Null when the schema or the role does not exist.
   */
  schemaUsable(schema: string, role: string): boolean | null | undefined;
}

/** What the analysis could not find in the catalog. */
export interface CatalogNeed {
  readonly what: 'relation' | 'function' | 'operator' | 'type' | 'usage';
  readonly schema: string;
  /** The object's name; the role's for `usage`. */
  readonly name: string;
}

/** A catalog that can fetch what it lacks. */
export interface LoadableCatalog extends Catalog {
  load(needs: readonly CatalogNeed[]): Promise<void>;
}

/** Functions whose arguments are `by name and arg count`: the ones a call of `args` arguments may mean. */
export function callable(candidates: readonly CatalogFunction[], args: number): CatalogFunction[] {
  return candidates.filter((f) => (args <= f.argCount && args >= f.argCount - f.defaults) || (f.variadic && args >= f.argCount - 1));
}

/** The first oid of objects made after initdb (FirstNormalObjectId). */
const FIRST_NORMAL_OID = 16384;

/**
 * Built-ins that read more than their arguments: they run a query or read a table, a cursor, a
 * file, a large object or logical decoding output named by an argument.
 */
const READING_BUILTINS = new Set([
  'query_to_xml', 'query_to_xmlschema', 'query_to_xml_and_xmlschema',
  'table_to_xml', 'table_to_xmlschema', 'table_to_xml_and_xmlschema',
  'cursor_to_xml', 'cursor_to_xmlschema',
  'schema_to_xml', 'schema_to_xmlschema', 'schema_to_xml_and_xmlschema',
  'database_to_xml', 'database_to_xmlschema', 'database_to_xml_and_xmlschema',
  'ts_stat', 'ts_rewrite',
  'pg_read_file', 'pg_read_binary_file',
  'lo_get', 'loread', 'lo_export', 'lo_import',
  'pg_logical_slot_get_changes', 'pg_logical_slot_peek_changes',
  'pg_logical_slot_get_binary_changes', 'pg_logical_slot_peek_binary_changes',
  'pg_stat_get_activity', 'currtid2',
]);

/** Whether a function is one initdb made (in pg_catalog or information_schema) that reads nothing but its arguments. */
export function builtinOnlyComputes(oid: number, schema: string, language: string, name: string): boolean {
  return oid < FIRST_NORMAL_OID && (schema === 'pg_catalog' || schema === 'information_schema') && ['internal', 'c', 'sql'].includes(language) && !READING_BUILTINS.has(name);
}

const RELKINDS: Readonly<Record<string, RelationKind>> = { r: 'table', p: 'partitioned', v: 'view', m: 'matview', f: 'foreign', S: 'sequence' };
const VOLATILITY = { i: 'immutable', s: 'stable', v: 'volatile' } as const;
const PROKIND = { f: 'function', a: 'aggregate', w: 'window', p: 'procedure' } as const;

// Every name and operator is qualified, so whatever the connection's search_path holds, these read
// the system catalogs. pg_get_viewdef qualifies only the names the current search_path would not
// find, so the relations query fixes the search_path first: a condition without columns is a
// one-time filter, run before any row is read, and set_config(…, true) lasts until the end of the
// transaction (this statement, on a connection not in a transaction block).
const FIX_SEARCH_PATH = "(SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true)) IS NOT NULL";

const RELATIONS_SQL = `
SELECT c.oid::pg_catalog.int8 AS oid, n.nspname AS schema, c.relname AS name, c.relkind::pg_catalog.text AS kind,
       c.relpersistence::pg_catalog.text AS persistence,
       CASE WHEN c.relkind OPERATOR(pg_catalog.=) ANY ('{v,m}'::pg_catalog."char"[]) THEN pg_catalog.pg_get_viewdef(c.oid) END AS definition,
       (SELECT pg_catalog.json_agg(pg_catalog.json_build_array(a.attname, a.attnum) ORDER BY a.attnum)
          FROM pg_catalog.pg_attribute a
         WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped) AS columns
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
 WHERE ${FIX_SEARCH_PATH} AND c.relname OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.name[])`;

const FUNCTIONS_SQL = `
SELECT p.oid::pg_catalog.int8 AS oid, n.nspname AS schema, p.proname AS name, l.lanname AS language,
       p.provolatile::pg_catalog.text AS volatility, p.prokind::pg_catalog.text AS kind, p.proretset AS returns_set,
       p.pronargs::pg_catalog.int4 AS args, p.pronargdefaults::pg_catalog.int4 AS defaults,
       p.provariadic OPERATOR(pg_catalog.<>) 0 AS variadic,
       p.proargnames::pg_catalog.text[] AS arg_names, p.proargmodes::pg_catalog.text[] AS arg_modes
  FROM pg_catalog.pg_proc p
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
  JOIN pg_catalog.pg_language l ON l.oid OPERATOR(pg_catalog.=) p.prolang
 WHERE p.proname OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.name[])`;

const OPERATORS_SQL = `
SELECT n.nspname AS schema, o.oprname AS name,
       pg_catalog.bool_and(o.oprcode::pg_catalog.oid OPERATOR(pg_catalog.<) ${FIRST_NORMAL_OID}) AS builtin
  FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) o.oprnamespace
 WHERE o.oprname OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.name[])
 GROUP BY 1, 2`;

const TYPES_SQL = `
SELECT n.nspname AS schema, t.typname AS name, t.oid OPERATOR(pg_catalog.<) ${FIRST_NORMAL_OID} AS builtin
  FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) t.typnamespace
 WHERE t.typname OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.name[])`;

const USAGE_SQL = `
SELECT n.nspname AS schema, r.rolname AS role, pg_catalog.has_schema_privilege(r.oid, n.oid, 'USAGE') AS usable
  FROM pg_catalog.pg_namespace n CROSS JOIN pg_catalog.pg_roles r
 WHERE n.nspname OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.name[]) AND r.rolname OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.name[])`;

const key = (schema: string, name: string): string => `${schema}\u0000${name}`;

function asJson(v: unknown): unknown {
  return typeof v === 'string' ? JSON.parse(v) : v;
}

function textArray(v: unknown): string[] | null {
  if (v === null || v === undefined) return null;
  if (Array.isArray(v)) return v.map(String);
  return null;
}

function outputColumns(names: string[] | null, modes: string[] | null): string[] | null {
  if (names === null || modes === null) return null;
  const out = names.filter((_, i) => modes[i] === 'o' || modes[i] === 't' || modes[i] === 'b');
  return out.length > 0 ? out : null;
}

/**
 * A catalog read from a PostgreSQL (or PGlite) database over the proxy's own connection, loading
 * by name what statements need and keeping it until `invalidate()` (after DDL, or when told the
 * catalog changed). Its queries run on the connection as they come: give it one that is not left
 * in a transaction block by another user (the relations query sets the search_path for its
 * transaction).
 */
export class PgCatalog implements LoadableCatalog {
  private relations = new Map<string, CatalogRelation | null>();
  private funcs = new Map<string, CatalogFunction[]>();
  private operators = new Map<string, boolean | null>();
  private types = new Map<string, boolean | null>();
  private usage = new Map<string, boolean>();
  private loadedNames = { relation: new Set<string>(), function: new Set<string>(), operator: new Set<string>(), type: new Set<string>(), usage: new Set<string>() };
  private generation = 0;

  constructor(private readonly db: SqlRunner) {}

  /** Bumped by every invalidation; a load that began under an older one is dropped. */
  get version(): number {
    return this.generation;
  }

  invalidate(): void {
    this.generation++;
    this.relations = new Map();
    this.funcs = new Map();
    this.operators = new Map();
    this.types = new Map();
    this.usage = new Map();
    this.loadedNames = { relation: new Set(), function: new Set(), operator: new Set(), type: new Set(), usage: new Set() };
  }

  relation(schema: string, name: string): CatalogRelation | null | undefined {
    if (!this.loadedNames.relation.has(name)) return undefined;
    return this.relations.get(key(schema, name)) ?? null;
  }

  functions(schema: string, name: string): readonly CatalogFunction[] | undefined {
    if (!this.loadedNames.function.has(name)) return undefined;
    return this.funcs.get(key(schema, name)) ?? [];
  }

  operatorIsBuiltin(schema: string, name: string): boolean | null | undefined {
    if (!this.loadedNames.operator.has(name)) return undefined;
    return this.operators.get(key(schema, name)) ?? null;
  }

  typeIsBuiltin(schema: string, name: string): boolean | null | undefined {
    if (!this.loadedNames.type.has(name)) return undefined;
    return this.types.get(key(schema, name)) ?? null;
  }

  schemaUsable(schema: string, role: string): boolean | null | undefined {
    const k = key(schema, role);
    if (!this.loadedNames.usage.has(k)) return undefined;
    return this.usage.get(k) ?? null;
  }

  /** Loads every object of the needed names, in every schema (one query per kind of object). */
  async load(needs: readonly CatalogNeed[]): Promise<void> {
    const names = (what: Exclude<CatalogNeed['what'], 'usage'>): string[] =>
      [...new Set(needs.filter((n) => n.what === what && !this.loadedNames[what].has(n.name)).map((n) => n.name))];
    const usage = needs.filter((n) => n.what === 'usage' && !this.loadedNames.usage.has(key(n.schema, n.name)));
    const want = { relation: names('relation'), function: names('function'), operator: names('operator'), type: names('type') };
    if (usage.length > 0) {
      const generation = this.generation;
      const { rows } = await this.db.query(USAGE_SQL, [[...new Set(usage.map((n) => n.schema))], [...new Set(usage.map((n) => n.name))]]);
      if (generation !== this.generation) return;
      for (const r of rows) this.usage.set(key(String(r['schema']), String(r['role'])), r['usable'] === true);
      for (const n of usage) this.loadedNames.usage.add(key(n.schema, n.name));
    }
    if (Object.values(want).every((w) => w.length === 0)) return;
    const generation = this.generation;
    // One after the other: a connection runs one query at a time.
    const run = async (sql: string, names: string[]): Promise<Record<string, unknown>[]> => (names.length > 0 ? (await this.db.query(sql, [names])).rows : []);
    const rels = await run(RELATIONS_SQL, want.relation);
    const fns = await run(FUNCTIONS_SQL, want.function);
    const ops = await run(OPERATORS_SQL, want.operator);
    const tys = await run(TYPES_SQL, want.type);
    if (generation !== this.generation) return;
    for (const r of rels) {
      const columns = ((asJson(r['columns']) ?? []) as [string, number][]).map(([n, a]) => ({ name: n, attnum: Number(a) }));
      const rel: CatalogRelation = {
        oid: Number(r['oid']),
        schema: String(r['schema']),
        name: String(r['name']),
        kind: RELKINDS[String(r['kind'])] ?? 'other',
        columns,
        definition: r['definition'] === null || r['definition'] === undefined ? null : String(r['definition']),
      };
      this.relations.set(key(rel.schema, rel.name), rel);
      if (String(r['persistence']) === 't') this.relations.set(key('pg_temp', rel.name), rel);
    }
    for (const r of fns) {
      const oid = Number(r['oid']);
      const schema = String(r['schema']);
      const name = String(r['name']);
      const language = String(r['language']);
      const f: CatalogFunction = {
        oid, schema, name, language,
        volatility: VOLATILITY[String(r['volatility']) as keyof typeof VOLATILITY] ?? 'volatile',
        kind: PROKIND[String(r['kind']) as keyof typeof PROKIND] ?? 'function',
        returnsSet: r['returns_set'] === true,
        argCount: Number(r['args']),
        defaults: Number(r['defaults']),
        variadic: r['variadic'] === true,
        mayReadTables: !builtinOnlyComputes(oid, schema, language, name),
        outputColumns: outputColumns(textArray(r['arg_names']), textArray(r['arg_modes'])),
      };
      const k = key(schema, name);
      this.funcs.set(k, [...(this.funcs.get(k) ?? []), f]);
    }
    for (const r of ops) this.operators.set(key(String(r['schema']), String(r['name'])), r['builtin'] === true);
    for (const r of tys) {
      const k = key(String(r['schema']), String(r['name']));
      // Several types of one name in one schema cannot be; keep "not built-in" if ever in doubt.
      this.types.set(k, (this.types.get(k) ?? true) && r['builtin'] === true);
    }
    for (const what of ['relation', 'function', 'operator', 'type'] as const) for (const n of want[what]) this.loadedNames[what].add(n);
  }
}

/** A catalog held in memory: for tests, and for objects known without asking the database. */
export class MemoryCatalog implements Catalog {
  private readonly rels = new Map<string, CatalogRelation>();
  private readonly fns = new Map<string, CatalogFunction[]>();
  private readonly ops = new Map<string, boolean>();
  private readonly tys = new Map<string, boolean>();
  private readonly usage = new Map<string, boolean>();

  addRelation(r: CatalogRelation): this {
    this.rels.set(key(r.schema, r.name), r);
    return this;
  }

  addFunction(f: CatalogFunction): this {
    const k = key(f.schema, f.name);
    this.fns.set(k, [...(this.fns.get(k) ?? []), f]);
    return this;
  }

  addOperator(schema: string, name: string, builtin: boolean): this {
    this.ops.set(key(schema, name), builtin);
    return this;
  }

  addType(schema: string, name: string, builtin: boolean): this {
    this.tys.set(key(schema, name), builtin);
    return this;
  }

  relation(schema: string, name: string): CatalogRelation | null {
    return this.rels.get(key(schema, name)) ?? null;
  }

  functions(schema: string, name: string): readonly CatalogFunction[] {
    return this.fns.get(key(schema, name)) ?? [];
  }

  operatorIsBuiltin(schema: string, name: string): boolean | null {
    return this.ops.get(key(schema, name)) ?? null;
  }

  typeIsBuiltin(schema: string, name: string): boolean | null {
    return this.tys.get(key(schema, name)) ?? null;
  }

  /** Denies a role the use of a schema (every role may use every schema otherwise). */
  denyUsage(schema: string, role: string): this {
    this.usage.set(key(schema, role), false);
    return this;
  }

  schemaUsable(schema: string, role: string): boolean {
    return this.usage.get(key(schema, role)) ?? true;
  }
}
