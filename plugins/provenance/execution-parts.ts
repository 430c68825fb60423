/**
 * The parts of execution records that many executions share, each kind deduplicated on its own:
 *
 *   t  the executed transform (name, version, function hash, table, columns, parameters)
 *   x  the context (client, user, roles, database, application, session, proxy)
 *   s  the statement (fingerprint, normalised text)
 *   q  the exact statement (text, parameters, place in a portal or Query), when one was recorded
 *
 * Each is stored once, keyed by a hash of its content (plugins/registry/schema-lineage.ts). The
 * server computes a key and probes its table once per distinct part a batch names, not once per
 * combination of parts: point lookups, whose exact statements differ by their literal keys, each
 * bring one new exact statement, while their transform, context and statement repeat (a
 * combination per lookup cost the server four keys and four probes per execution).
 */
import { EXACT_KEY } from '../registry/schema-exact-chunks.js';
import { CONTEXT_KEY, STATEMENT_KEY, TRANSFORM_KEY } from '../registry/schema-lineage.js';
import type { ExecutionRecord } from './execution-insert.js';

interface PartKind {
  /** The record's fields the part holds. */
  readonly fields: readonly (keyof ExecutionRecord)[];
  /** A few fields that tell most parts apart; the comparison of all fields decides. */
  readonly probe: (r: ExecutionRecord) => string;
  /** The table it is stored in, the key expression over a row `r` of its fields, and its columns from `r`. */
  readonly table: string;
  readonly key: string;
  readonly columns: string;
  /** Its fields as json_to_recordset's column definitions. */
  readonly types: string;
}

const PARTS = {
  t: {
    fields: ['transform_name', 'transform_version', 'function_hash', 'table_oid', 'table_name', 'columns', 'params'],
    probe: (r) => `${r.transform_name}\u0000${r.transform_version}\u0000${r.function_hash}\u0000${r.table_oid}`,
    table: 'provenance.executed_transform',
    key: TRANSFORM_KEY,
    columns: 'r.transform_name, r.transform_version, r.function_hash, r.table_oid, r.table_name, r.columns, r.params',
    types: 'transform_name text, transform_version integer, function_hash text, table_oid oid, table_name text, columns text[], params jsonb',
  },
  x: {
    fields: ['client_addr', 'client_port', 'user_name', 'current_role_name', 'roles', 'database', 'application_name', 'session_id', 'proxy_id'],
    probe: (r) => `${r.session_id}\u0000${r.current_role_name ?? ''}\u0000${r.client_port ?? ''}`,
    table: 'provenance.execution_context',
    key: CONTEXT_KEY,
    columns: 'r.client_addr, r.client_port, r.user_name, r.current_role_name, r.roles, r.database, r.application_name, r.session_id, r.proxy_id',
    types: `client_addr text, client_port integer, user_name text, current_role_name text, roles text[], database text,
         application_name text, session_id text, proxy_id text`,
  },
  s: {
    fields: ['statement_fingerprint', 'statement_text'],
    probe: (r) => r.statement_fingerprint,
    table: 'provenance.statement',
    key: STATEMENT_KEY,
    columns: 'r.statement_fingerprint, r.statement_text',
    types: 'statement_fingerprint text, statement_text text',
  },
  q: {
    fields: [
      'exact_text', 'exact_types', 'exact_formats', 'exact_values', 'exact_refusal', 'exact_chunk', 'exact_offset', 'exact_portal_at',
      'exact_query_statement', 'exact_query_statements',
    ],
    probe: (r) => `${r.exact_text ?? ''}\u0000${r.exact_values?.join('\u0001') ?? ''}\u0000${r.exact_offset ?? ''}`,
    table: 'provenance.exact_statement',
    key: EXACT_KEY,
    columns: `r.exact_text, r.exact_types, r.exact_formats, r.exact_values, r.exact_refusal, r.exact_chunk, r.exact_offset,
         r.exact_portal_at, r.exact_query_statement, r.exact_query_statements`,
    types: `exact_text text, exact_types oid[], exact_formats int2[], exact_values bytea[], exact_refusal text, exact_chunk integer,
         exact_offset bigint, exact_portal_at timestamptz, exact_query_statement integer, exact_query_statements integer`,
  },
} as const satisfies Readonly<Record<string, PartKind>>;

export type PartName = keyof typeof PARTS;
export const PART_NAMES = Object.keys(PARTS) as readonly PartName[];

/** Whether two fields of records hold the same data (arrays and objects compared by content). */
function sameField(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => v === b[i]);
  return typeof a === 'object' && a !== null && typeof b === 'object' && b !== null && JSON.stringify(a) === JSON.stringify(b);
}

/** The distinct parts of one kind in a batch, each numbered `i` in the order first seen. */
class PartList {
  readonly entries: Record<string, unknown>[] = [];
  private readonly candidates = new Map<string, { readonly i: number; readonly record: ExecutionRecord }[]>();

  constructor(private readonly kind: PartKind) {}

  /** The number of the record's part, added if new. */
  of(r: ExecutionRecord): number {
    const probe = this.kind.probe(r);
    let list = this.candidates.get(probe);
    if (list === undefined) this.candidates.set(probe, (list = []));
    const found = list.find((e) => this.kind.fields.every((f) => sameField(e.record[f], r[f])));
    if (found !== undefined) return found.i;
    const i = this.entries.length;
    list.push({ i, record: r });
    const entry: Record<string, unknown> = { i };
    for (const f of this.kind.fields) entry[f] = r[f];
    this.entries.push(entry);
    return i;
  }
}

/** A batch's parts: each kind's distinct entries, in the JSON the statements below read. */
export type BatchParts = Readonly<Record<PartName, readonly Record<string, unknown>[]>>;

/** Numbers a batch's parts; `numbers(r)` gives a record's t, x, s and q (null when it has no exact statement). */
export function partsOf(): { numbers(r: ExecutionRecord): Record<PartName, number | null>; parts(): BatchParts } {
  const lists = { t: new PartList(PARTS.t), x: new PartList(PARTS.x), s: new PartList(PARTS.s), q: new PartList(PARTS.q) };
  return {
    numbers: (r) => ({
      t: lists.t.of(r), x: lists.x.of(r), s: lists.s.of(r),
      // The key of an exact statement with neither text nor refusal is NULL: nothing was recorded.
      q: (r.exact_text ?? r.exact_refusal ?? null) === null ? null : lists.q.of(r),
    }),
    parts: () => ({ t: lists.t.entries, x: lists.x.entries, s: lists.s.entries, q: lists.q.entries }),
  };
}

/** The end of a statement begun by storeParts: each part's kind, number and key. */
export const PART_KEYS = PART_NAMES.map((n) => `SELECT '${n}' AS part, ${n}.i, ${n}.key::text FROM ${n}`).join('\nUNION ALL ');

/** A part's content as a string: equal strings, equal parts (and so equal keys). */
export function partContent(name: PartName, entry: Readonly<Record<string, unknown>>): string {
  return JSON.stringify(PARTS[name].fields.map((f) => entry[f] ?? null));
}

/**
 * The start of a statement: for each kind of `kinds`, a CTE named after it with the parts of the
 * JSON object parameter `param` (BatchParts) and their keys (`i`, `key`), and the parts stored
 * unless present.
 */
export function storeParts(param: string, kinds: readonly PartName[] = PART_NAMES): string {
  return `WITH ${kinds.map((n) => {
    const p: PartKind = PARTS[n];
    return `${n} AS MATERIALIZED (
  SELECT r.i, ${p.key} AS key, ${p.columns}
    FROM pg_catalog.json_to_recordset(${param}::json -> '${n}') AS r(i integer, ${p.types})
), ${n}_stored AS (
  INSERT INTO ${p.table} SELECT DISTINCT ON (r.key) r.key, ${p.columns} FROM ${n} r
  ON CONFLICT (key) DO NOTHING
)`;
  }).join(', ')}`;
}
