/**
 * When a read of a table as of a moment may be served from a materialisation: only when that is
 * exactly what a replay would give.
 *
 * - The table's rows are the same: no version of it began or ended between the materialised
 *   moment and the one read (its history says so).
 * - The chain is the same: the transforms in force at the moment read are those it was made with
 *   (names, versions, function hashes, parameters, in order).
 * - The context agrees on every field its transforms read (the sandbox noted which; `clock` for
 *   the sandbox clock, which is the moment); none of them drew a random number (whose sequence
 *   depends on how rows are batched).
 * - The reader may read the table (the rewritten statement still asks the server), and with
 *   row-level security on the table the reader is the user it was made for.
 * - The statement uses the table only as the stored rows can answer (see statement-shape.ts).
 */
import type { SqlRunner } from '../registry/migrate.js';
import type { AsOfMoment, AsOfTable, ChainLink } from '../services.js';

/** The pseudo context field a materialisation's context_fields names when its transforms read the clock. */
export const CLOCK_FIELD = 'clock';

/** A materialisation as serving weighs it. */
export interface Candidate {
  readonly id: number;
  readonly atMicros: bigint;
  readonly at: string;
  readonly asUser: string;
  readonly chain: unknown;
  readonly context: Readonly<Record<string, unknown>>;
  readonly contextFields: readonly string[];
  readonly history: string;
}

// Nearest moment first: the fewer versions between, the likelier the table did not change.
const CANDIDATES_SQL = `
SELECT m.id::pg_catalog.text AS id, (EXTRACT(epoch FROM m.as_of) * 1000000)::pg_catalog.int8::pg_catalog.text AS at_micros,
       m.as_of::pg_catalog.text AS at, m.as_user, m.chain, m.context, m.context_fields, h.history::pg_catalog.text AS history
  FROM provenance.materialization m JOIN provenance.history_table h ON h.target_oid OPERATOR(pg_catalog.=) m.target_oid
 WHERE m.target_oid OPERATOR(pg_catalog.=) $1::pg_catalog.oid AND m.complete AND NOT m.batch_dependent
   AND m.database OPERATOR(pg_catalog.=) $3
 ORDER BY pg_catalog.abs(EXTRACT(epoch FROM m.as_of OPERATOR(pg_catalog.-) $2::pg_catalog.timestamptz)) LIMIT 8`;

const asJson = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : v);

export async function candidates(store: SqlRunner, oid: number, moment: AsOfMoment, database: string): Promise<Candidate[]> {
  const { rows } = await store.query(CANDIDATES_SQL, [oid, moment.at, database]);
  return rows.map((r) => ({
    id: Number(r['id']),
    atMicros: BigInt(String(r['at_micros'])),
    at: String(r['at']),
    asUser: String(r['as_user']),
    chain: asJson(r['chain']),
    context: (asJson(r['context']) ?? {}) as Record<string, unknown>,
    contextFields: (r['context_fields'] as string[] | null) ?? [],
    history: String(r['history']),
  }));
}

/** JSON with object keys sorted, so that what jsonb stored compares with what the proxy holds. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_, x: unknown) => {
    if (typeof x === 'bigint') return x.toString();
    if (x === null || typeof x !== 'object' || Array.isArray(x)) return x;
    return Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }) ?? 'undefined';
}

/** Whether a materialisation's chain and context are those of this read (the table's rows aside). */
export function sameChainAndContext(c: Candidate, chain: readonly ChainLink[], reader: Readonly<Record<string, unknown>>, moment: AsOfMoment, table: AsOfTable): boolean {
  if (canonical(c.chain) !== canonical(chain)) return false;
  if (table.rowSecurity && c.asUser !== moment.user) return false;
  const readerContext: Record<string, unknown> = { ...reader, [CLOCK_FIELD]: reader['statement_timestamp'] };
  return c.contextFields.every((f) => canonical(c.context[f]) === canonical(readerContext[f]));
}

/** Whether any version of the table began or ended after one moment and by the other. */
export async function changedBetween(store: SqlRunner, history: string, a: string, b: string): Promise<boolean> {
  const { rows } = await store.query(`
SELECT EXISTS (SELECT 1 FROM ${history} v WHERE v.provenance_valid_from > LEAST($1::pg_catalog.timestamptz, $2::pg_catalog.timestamptz)
                  AND v.provenance_valid_from <= GREATEST($1::pg_catalog.timestamptz, $2::pg_catalog.timestamptz))
    OR EXISTS (SELECT 1 FROM ${history} v WHERE v.provenance_valid_to > LEAST($1::pg_catalog.timestamptz, $2::pg_catalog.timestamptz)
                  AND v.provenance_valid_to <= GREATEST($1::pg_catalog.timestamptz, $2::pg_catalog.timestamptz)) AS changed`, [a, b]);
  return rows[0]?.['changed'] !== false;
}
