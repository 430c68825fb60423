/**
 * How a recorded chunk of a portal is replayed (migration 15 records its place): the portal's
 * statement runs once, as of the moment its first Execute went upstream (every chunk read the
 * portal's snapshot), executed in the chunks its recorded chunks were read in, up to the one asked
 * for. Each replayed chunk is then a result whose executions are checked against the recorded
 * chunk with the same rows (a chunk's input hash covers its own rows only), and the rows answered
 * are the requested chunk's.
 */
import type { SqlRunner } from '../registry/migrate.js';

/** A recorded chunk: which Execute of its portal, the rows before it and its own, its portal. */
export interface RecordedChunk {
  readonly index: number;
  readonly offset: number;
  readonly rows: number;
  readonly portalAt: string;
  readonly sessionId: string;
}

/**
 * The other recorded chunks of the same portal before it: the same session, the same moment of
 * its first Execute, the same statement.
 */
const EARLIER = `
SELECT DISTINCT q.chunk, q.chunk_offset::text AS "offset"
  FROM provenance.exact_statement q
  JOIN provenance.execution_log e ON e.exact_key = q.key AND e.kind = 'read'
  JOIN provenance.execution_context x ON x.key = e.context_key
 WHERE q.portal_at = $1::timestamptz AND q.chunk < $2 AND q.statement_text = $3 AND x.session_id = $4
 ORDER BY q.chunk`;

/**
 * The row limit of each Execute that replays `chunk`: one per earlier recorded chunk (an
 * unrecorded one is read with the chunk before it), then the chunk's own rows (none: every row
 * left, which is what a chunk that found the portal at its end claims there is).
 */
export async function chunkLimits(store: SqlRunner, chunk: RecordedChunk, text: string): Promise<number[]> {
  const earlier = (await store.query(EARLIER, [chunk.portalAt, chunk.index, text, chunk.sessionId])).rows;
  const starts = [0, ...earlier.map((r) => Number(r['offset'])), chunk.offset];
  const limits: number[] = [];
  for (let i = 1; i < starts.length; i++) {
    const size = starts[i]! - starts[i - 1]!;
    // 0 would read every row left: a chunk that returned none is read with the one before it.
    if (size > 0) limits.push(size);
  }
  limits.push(chunk.rows);
  return limits;
}

/**
 * The start of the next millisecond on the clock execution records are stamped with (they keep
 * milliseconds): what begins after it is told apart from what began before by its record alone.
 */
export async function nextMillisecond(): Promise<Date> {
  const now = (): number => performance.timeOrigin + performance.now();
  const next = Math.floor(now()) + 1;
  while (now() < next) await new Promise((r) => setTimeout(r, 1));
  return new Date(next);
}
