/**
 * Every transform version ever registered, with the span it was in force, and the tracked tables:
 * what a replay needs to run the chain in force at a past moment. Versions are immutable rows
 * (plugins/registry/schema.ts), so the history is read whole with the registry, and the chain at
 * any moment is computed here, without asking the database in the middle of a client's statement
 * (the embedded database could not answer while that client's transaction holds it).
 */
import { LRUCache } from 'lru-cache';
import type { SqlRunner } from '../registry/migrate.js';
import { sandboxFunction, type SandboxValue } from '../../sandbox/index.js';
import { guardLevel, type BoundTransform, type TableTransforms } from './registry-cache.js';
import { recordedFunction } from './version-function.js';

/** One row of provenance.transform_versions, as a replay uses it. */
interface VersionRow {
  readonly name: string;
  readonly version: number;
  readonly targetOid: number;
  readonly target: string;
  readonly attnums: readonly number[] | null;
  /** A row transform's columns it reads (null: every column), and the guard, as the version had them. */
  readonly reads: readonly number[] | null;
  readonly guard: BoundTransform['guard'];
  readonly exempt: readonly string[];
  readonly source: string;
  /** As recorded when the version was registered, with the runtime identity it was computed with (null: not recorded). */
  readonly functionHash: string;
  readonly runtimeIdentity: string | null;
  readonly params: SandboxValue;
  readonly position: number;
  readonly enabled: boolean;
  readonly dropped: boolean;
  /** Epoch microseconds; validTo null: still in force. */
  readonly validFrom: bigint;
  readonly validTo: bigint | null;
}

/** A version in force at the moment whose function this sandbox cannot run as it ran then. */
export interface StaleVersion {
  readonly name: string;
  readonly version: number;
  readonly columns: ReadonlySet<number> | null;
  /** The runtime it was registered under (null: not recorded). */
  readonly runtimeIdentity: string | null;
}

/** One table's chain at a moment. */
export interface ChainAt {
  readonly table: TableTransforms;
  /** Versions of the chain registered under a runtime this one does not behave as. */
  readonly stale: readonly StaleVersion[];
}

// Every name qualified: this runs as the proxy's own login. Moments as epoch microseconds, exact.
const VERSIONS_SQL = `
SELECT v.name, v.version, v.target_oid::pg_catalog.int8 AS target_oid, v.target, v.column_attnums, v.source,
       v.function_hash, v.runtime_identity, v.params, v.position, v.enabled, v.dropped, v.reads_attnums, v.guard, v.exempt,
       (EXTRACT(epoch FROM v.valid_from) * 1000000)::pg_catalog.int8::text AS valid_from,
       (EXTRACT(epoch FROM v.valid_to) * 1000000)::pg_catalog.int8::text AS valid_to
  FROM provenance.transform_versions v
 ORDER BY v.target_oid, v.name, v.version`;

const TABLES_SQL = `
SELECT h.target_oid::pg_catalog.int8 AS target_oid,
       (SELECT pg_catalog.json_object_agg(a.attnum, a.attname) FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = h.target_oid AND a.attnum > 0 AND NOT a.attisdropped) AS attnames
  FROM provenance.history_table h
UNION ALL
SELECT v.target_oid::pg_catalog.int8,
       (SELECT pg_catalog.json_object_agg(a.attnum, a.attname) FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = v.target_oid AND a.attnum > 0 AND NOT a.attisdropped)
  FROM (SELECT DISTINCT x.target_oid FROM provenance.transform_version x) v`;

function asJson(v: unknown): unknown {
  return typeof v === 'string' ? JSON.parse(v) : v;
}

export class VersionHistory {
  /** Chains by moment: an as-of session asks for the same moment at every statement. */
  private readonly chains = new LRUCache<bigint, ReadonlyMap<number, ChainAt>>({ max: 64 });

  constructor(
    private readonly versions: readonly VersionRow[],
    /** Tables with history, or with some transform ever: their current rows are never served as of a moment. */
    readonly tables: ReadonlySet<number>,
    private readonly columnNames: ReadonlyMap<number, ReadonlyMap<number, string>>,
  ) {}

  /** Each table's chain in force at the moment: enabled, not dropped versions, in position order. */
  chainsAt(atMicros: bigint): ReadonlyMap<number, ChainAt> {
    let out = this.chains.get(atMicros);
    if (out) return out;
    const built = new Map<number, { table: TableTransforms & { chain: BoundTransform[] }; stale: StaleVersion[] }>();
    const inForce = this.versions.filter((v) => v.validFrom <= atMicros && (v.validTo === null || v.validTo > atMicros) && v.enabled && !v.dropped);
    inForce.sort((a, b) => a.targetOid - b.targetOid || a.position - b.position || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const v of inForce) {
      let entry = built.get(v.targetOid);
      if (!entry) {
        const columnNames = this.columnNames.get(v.targetOid) ?? new Map<number, string>();
        entry = { table: { oid: v.targetOid, name: v.target, columnNames, chain: [] }, stale: [] };
        built.set(v.targetOid, entry);
      }
      const columns = v.attnums === null ? null : new Set(v.attnums);
      const kind = columns ? 'column' : 'row';
      // The hash names the source and the runtime it ran on: a runtime that does not behave as that
      // one may compute another output, so such a version is refused where it would run, never
      // skipped or run anyway.
      const fn = recordedFunction({ ...v, kind });
      if (fn === null) entry.stale.push({ name: v.name, version: v.version, columns, runtimeIdentity: v.runtimeIdentity });
      entry.table.chain.push({
        name: v.name, version: v.version, fn: fn ?? { ...sandboxFunction(v.name, kind, v.source), hash: v.functionHash }, params: v.params, position: v.position, columns,
        reads: v.reads === null ? null : new Set(v.reads), guard: v.guard, exempt: v.exempt,
      });
    }
    out = built;
    this.chains.set(atMicros, out);
    return out;
  }
}

export async function loadVersionHistory(db: SqlRunner): Promise<VersionHistory> {
  const [versions, tables] = await Promise.all([db.query(VERSIONS_SQL), db.query(TABLES_SQL)]);
  const rows: VersionRow[] = versions.rows.map((r) => ({
    name: String(r['name']),
    version: Number(r['version']),
    targetOid: Number(r['target_oid']),
    target: String(r['target']),
    attnums: (r['column_attnums'] as (number | null)[] | null)?.filter((a): a is number => a !== null) ?? null,
    reads: (r['reads_attnums'] as (number | null)[] | null)?.filter((a): a is number => a !== null) ?? null,
    guard: guardLevel(r['guard']),
    exempt: (r['exempt'] as string[] | null) ?? [],
    source: String(r['source']),
    functionHash: String(r['function_hash']),
    runtimeIdentity: typeof r['runtime_identity'] === 'string' ? r['runtime_identity'] : null,
    params: asJson(r['params']) as SandboxValue,
    position: Number(r['position']),
    enabled: r['enabled'] === true,
    dropped: r['dropped'] === true,
    validFrom: BigInt(String(r['valid_from'])),
    validTo: r['valid_to'] === null ? null : BigInt(String(r['valid_to'])),
  }));
  const columnNames = new Map<number, ReadonlyMap<number, string>>();
  for (const r of tables.rows) {
    const names = (asJson(r['attnames']) ?? {}) as Record<string, string>;
    columnNames.set(Number(r['target_oid']), new Map(Object.entries(names).map(([k, v]) => [Number(k), v])));
  }
  return new VersionHistory(rows, new Set(columnNames.keys()), columnNames);
}
