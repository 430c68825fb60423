/**
 * Where a chunk of a portal sits in its portal (migration 15, plugins/registry/schema-exact-chunks.ts):
 * which Execute of the portal it was, how many rows the portal returned before it, and when its
 * first Execute went upstream. Every Execute of a portal carries the same Bind message, so the
 * portal is known by that buffer; what its chunks returned so far is kept until it is collected
 * with the portal. Results of a session are recorded in the order they ended, so each chunk
 * finds the ones before it counted.
 */
import type { StatementBinding, StatementTrace } from '../hooks.js';

/** The exact statement's fields that place a chunk; all null for a whole result. */
export interface ChunkFields {
  readonly exact_chunk: number | null;
  readonly exact_offset: number | null;
  /** ISO 8601 to the microsecond. */
  readonly exact_portal_at: string | null;
}

export const NO_CHUNK: ChunkFields = Object.freeze({ exact_chunk: null, exact_offset: null, exact_portal_at: null });

interface PortalSoFar {
  /** The chunk expected next. */
  next: number;
  /** Rows of the chunks counted so far. */
  rows: number;
  readonly at: string;
}

const portals = new WeakMap<Buffer, PortalSoFar>();

/** Epoch milliseconds (fractional) as ISO 8601 to the microsecond, as statement_at is written. */
function isoMicros(ms: number): string {
  const whole = Math.floor(ms);
  return new Date(whole).toISOString().replace('Z', `${String(Math.floor((ms - whole) * 1000)).padStart(3, '0')}Z`);
}

/**
 * The place of the result of `trace`, an Execute that returned `rows` rows: NO_CHUNK when it is
 * the whole result (a portal's first Execute, without a row limit or ending the portal), null
 * when a chunk before it was not counted (its place is not known).
 */
export function chunkOf(trace: StatementTrace, b: StatementBinding, rows: number): ChunkFields | null {
  let p = portals.get(b.bind);
  if (b.chunk === 0) portals.set(b.bind, (p = { next: 0, rows: 0, at: isoMicros(trace.startedAt) }));
  if (p === undefined || p.next !== b.chunk) return null;
  const offset = p.rows;
  p.next++;
  p.rows += rows;
  // A later Execute (with a limit or without) reads on from where the ones before stopped.
  if (b.chunk === 0 && (b.maxRows === 0 || rows < b.maxRows)) return NO_CHUNK;
  return { exact_chunk: b.chunk, exact_offset: offset, exact_portal_at: p.at };
}
