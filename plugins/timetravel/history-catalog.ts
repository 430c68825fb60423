/**
 * What an as-of read needs to know of the relations and functions a statement names: for every
 * relation of a name (in every schema), its kind and, when tracked, its history (the history
 * table, when it starts and ends, which history column holds which of its columns); for every
 * function of a name, whether it may read tables; which schemas a role may use. Read on the
 * proxy's own connection at each statement that needs it; kept, so that the embedded database (whose single backend a session's
 * transaction holds) answers from what was read last, and refuses what it never read.
 */
import type { SqlRunner } from '../registry/migrate.js';
import { builtinOnlyComputes } from '../sql/catalog.js';

export interface HistoryColumn {
  readonly name: string;
  /** The column's type as format_type prints it (for a NULL the history cannot give). */
  readonly type: string;
  /** The history column that holds it, and its number there; null when the history has none yet. */
  readonly historyName: string | null;
  readonly historyAttnum: number | null;
  readonly attnum: number;
}

export interface History {
  readonly oid: number;
  /** Schema-qualified and quoted, as regclass prints it. */
  readonly name: string;
  readonly since: bigint;
  readonly until: bigint | null;
  readonly tracking: boolean;
  /** Its capture triggers are all there and fire. */
  readonly intact: boolean;
}

export interface RelationInfo {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  /** pg_class.relkind */
  readonly kind: string;
  readonly temporary: boolean;
  readonly rowSecurity: boolean;
  readonly hasChildren: boolean;
  readonly history: History | null;
  readonly columns: readonly HistoryColumn[];
  /**
   * A view's query as pg_get_viewdef prints it on the proxy's own connection, whose search_path
   * holds only pg_catalog: every other name in it is schema-qualified.
   */
  readonly definition: string | null;
}

export interface FunctionInfo {
  readonly schema: string;
  readonly name: string;
  readonly mayReadTables: boolean;
}

const RELATIONS_SQL = `
SELECT c.oid::pg_catalog.int8::pg_catalog.text AS oid, n.nspname AS schema, c.relname AS name, c.relkind::pg_catalog.text AS kind,
       c.relpersistence OPERATOR(pg_catalog.=) 't' AS temporary, c.relrowsecurity AS rls, c.relhassubclass AS children,
       h.history::pg_catalog.oid::pg_catalog.int8::pg_catalog.text AS history_oid, h.history::pg_catalog.text AS history_name,
       (EXTRACT(epoch FROM h.since) OPERATOR(pg_catalog.*) 1000000)::pg_catalog.int8::pg_catalog.text AS since,
       (EXTRACT(epoch FROM h.until) OPERATOR(pg_catalog.*) 1000000)::pg_catalog.int8::pg_catalog.text AS until,
       h.tracking, CASE WHEN h.tracking THEN provenance._history_intact(c.oid) END AS intact,
       CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'v' THEN pg_catalog.pg_get_viewdef(c.oid) END AS definition,
       (SELECT pg_catalog.json_agg(pg_catalog.json_build_array(a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
                                   hc.history_name, ha.attnum, a.attnum) ORDER BY a.attnum)
          FROM pg_catalog.pg_attribute a
          LEFT JOIN provenance.history_column hc
                 ON hc.target_oid OPERATOR(pg_catalog.=) c.oid AND hc.attnum OPERATOR(pg_catalog.=) a.attnum AND NOT hc.dropped
          LEFT JOIN pg_catalog.pg_attribute ha
                 ON ha.attrelid OPERATOR(pg_catalog.=) h.history AND ha.attname OPERATOR(pg_catalog.=) hc.history_name AND NOT ha.attisdropped
         WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped) AS columns
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
  LEFT JOIN provenance.history_table h ON h.target_oid OPERATOR(pg_catalog.=) c.oid
 WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,v,m,f,S}'::pg_catalog."char"[])
   AND ($1::pg_catalog.name[] IS NULL OR c.relname OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.name[]))`;

const FUNCTIONS_SQL = `
SELECT p.oid::pg_catalog.int8::pg_catalog.text AS oid, n.nspname AS schema, p.proname AS name, l.lanname AS language
  FROM pg_catalog.pg_proc p
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
  JOIN pg_catalog.pg_language l ON l.oid OPERATOR(pg_catalog.=) p.prolang
 WHERE $1::pg_catalog.name[] IS NULL OR p.proname OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.name[])`;

/** Nothing for a role that does not exist (the server finds no `$user` schema, and USAGE cannot be told). */
const USAGE_SQL = `
SELECT n.nspname AS schema, pg_catalog.has_schema_privilege(r.oid, n.oid, 'USAGE') AS usable
  FROM pg_catalog.pg_namespace n, pg_catalog.pg_roles r
 WHERE r.rolname OPERATOR(pg_catalog.=) $1
   AND ($2::pg_catalog.name[] IS NULL OR n.nspname OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.name[]))`;

function micros(v: unknown): bigint | null {
  return v === null || v === undefined ? null : BigInt(String(v));
}

function columnsOf(v: unknown): HistoryColumn[] {
  const list = (typeof v === 'string' ? JSON.parse(v) : v ?? []) as [string, string, string | null, number | null, number][];
  return list.map(([name, type, historyName, historyAttnum, attnum]) => ({
    name, type, historyName, historyAttnum: historyAttnum === null ? null : Number(historyAttnum), attnum: Number(attnum),
  }));
}

function relation(r: Record<string, unknown>): RelationInfo {
  const historyOid = r['history_oid'];
  const history: History | null = historyOid === null || historyOid === undefined ? null : {
    oid: Number(historyOid),
    name: String(r['history_name']),
    since: micros(r['since'])!,
    until: micros(r['until']),
    tracking: r['tracking'] === true,
    intact: r['intact'] !== false,
  };
  return {
    oid: Number(r['oid']), schema: String(r['schema']), name: String(r['name']), kind: String(r['kind']),
    temporary: r['temporary'] === true, rowSecurity: r['rls'] === true, hasChildren: r['children'] === true,
    history, columns: columnsOf(r['columns']),
    definition: r['definition'] === null || r['definition'] === undefined ? null : String(r['definition']).trim().replace(/;$/, ''),
  };
}

export class HistoryCatalog {
  private relations = new Map<string, RelationInfo[]>();
  /** Whether a role may use a schema (USAGE), by `role\0schema`. */
  private usage = new Map<string, boolean>();
  private functions = new Map<string, FunctionInfo[]>();
  /** History table oid → (history attnum → the tracked table's oid and attnum). */
  private readonly sources = new Map<number, Map<number, { readonly oid: number; readonly attnum: number }>>();

  /**
   * Every relation and function of these names. Read again when `store` is given; from what was
   * read before otherwise (null: a name never read, which the caller must refuse).
   */
  async load(store: SqlRunner | null, relationNames: readonly string[], functionNames: readonly string[]): Promise<{
    relations: ReadonlyMap<string, readonly RelationInfo[]>;
    functions: ReadonlyMap<string, readonly FunctionInfo[]>;
  } | null> {
    const rels = [...new Set(relationNames)];
    const fns = [...new Set(functionNames)];
    if (store !== null) await this.read(store, rels, fns);
    // Without the store, a name not read before may be an object made since: refused, not guessed.
    if (rels.some((n) => !this.relations.has(n)) || fns.some((n) => !this.functions.has(n))) return null;
    return {
      relations: new Map(rels.map((n) => [n, this.relations.get(n) ?? []])),
      functions: new Map(fns.map((n) => [n, this.functions.get(n) ?? []])),
    };
  }

  /**
   * Which of these schemas the role may use (the server leaves the others out of a search_path).
   * Read again when `store` is given; null when some was never read.
   */
  async usable(store: SqlRunner | null, role: string, schemas: readonly string[]): Promise<ReadonlyMap<string, boolean> | null> {
    if (store !== null) await this.readUsage(store, role, [...new Set(schemas)]);
    const out = new Map<string, boolean>();
    for (const schema of schemas) {
      const u = this.usage.get(`${role}\0${schema}`);
      if (u === undefined) return null;
      out.set(schema, u);
    }
    return out;
  }

  private async readUsage(store: SqlRunner, role: string, schemas: readonly string[] | null): Promise<void> {
    if (schemas !== null && schemas.length === 0) return;
    const { rows } = await store.query(USAGE_SQL, [role, schemas]);
    for (const r of rows) this.usage.set(`${role}\0${String(r['schema'])}`, r['usable'] === true);
  }

  /**
   * Every relation and function, for a database the proxy cannot ask while a session's
   * transaction holds it (the embedded one): read when a session starts reading as of a moment.
   * Taken in whole once read, so that a statement in between never sees half of it.
   */
  async snapshot(store: SqlRunner, role: string): Promise<void> {
    const fresh = new HistoryCatalog();
    await fresh.read(store, null, null);
    await fresh.readUsage(store, role, null);
    this.relations = fresh.relations;
    this.functions = fresh.functions;
    for (const [k, u] of fresh.usage) this.usage.set(k, u);
    for (const [oid, m] of fresh.sources) this.sources.set(oid, m);
  }

  private async read(store: SqlRunner, rels: readonly string[] | null, fns: readonly string[] | null): Promise<void> {
    if (rels === null || rels.length > 0) {
      const { rows } = await store.query(RELATIONS_SQL, [rels]);
      for (const name of rels ?? []) this.relations.set(name, []);
      for (const r of rows.map(relation)) {
        const list = this.relations.get(r.name) ?? [];
        this.relations.set(r.name, [...list.filter((x) => x.oid !== r.oid), r]);
        if (r.history !== null) this.noteSources(r);
      }
    }
    if (fns === null || fns.length > 0) {
      const { rows } = await store.query(FUNCTIONS_SQL, [fns]);
      for (const name of fns ?? []) this.functions.set(name, []);
      for (const r of rows) {
        const schema = String(r['schema']);
        const name = String(r['name']);
        const f = { schema, name, mayReadTables: !builtinOnlyComputes(Number(r['oid']), schema, String(r['language']), name) };
        this.functions.set(name, [...(this.functions.get(name) ?? []), f]);
      }
    }
  }

  sourceOf(relationOid: number, attnum: number): { readonly oid: number; readonly attnum: number } | null {
    return this.sources.get(relationOid)?.get(attnum) ?? null;
  }

  private noteSources(r: RelationInfo): void {
    const map = new Map<number, { oid: number; attnum: number }>();
    for (const c of r.columns) if (c.historyAttnum !== null) map.set(c.historyAttnum, { oid: r.oid, attnum: c.attnum });
    this.sources.set(r.history!.oid, map);
  }
}
