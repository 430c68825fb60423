/**
 * The `as_of` and paging parameters of a request. A moment is whatever PostgreSQL accepts as a
 * timestamptz: the caller's session parses it (a bad one is a 400 with the server's SQLSTATE) and
 * its session then reads as of it (`SET provenance.as_of`), as a psql session would.
 */
import type { CallerSession } from './caller.js';
import { HttpError } from './errors.js';

export interface Paging {
  readonly limit: number;
  readonly offset: number;
}

export const DEFAULT_LIMIT = 1000;

function count(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d{1,15}$/.test(value)) throw new HttpError(400, '22023', `invalid ${name} "${value}": expected a non-negative integer`);
  return Number(value);
}

export function paging(query: { limit?: string; offset?: string }): Paging {
  return { limit: count('limit', query.limit, DEFAULT_LIMIT), offset: count('offset', query.offset, 0) };
}

/**
 * Makes the session read as of `asOf`, and returns the moment as the server prints it (ISO 8601,
 * UTC); null without one. Without time travel in this proxy such a read cannot be served as of
 * the moment, so it is refused rather than answered with the present.
 */
export async function readAsOf(s: CallerSession, asOf: string | undefined, timeTravel: boolean): Promise<string | null> {
  if (asOf === undefined) return null;
  if (asOf === '' || asOf.length > 100) throw new HttpError(400, '22007', `invalid as_of "${asOf}"`);
  const row = (await s.query(
    `SELECT pg_catalog.to_char($1::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS iso`, [asOf],
  )).rows[0];
  const iso = String(row?.['iso']);
  if (!timeTravel) throw new HttpError(501, '0A000', 'this proxy has no time travel: as_of cannot be served');
  // The moment is the server's own printing of a timestamptz: nothing of the URL reaches this text.
  await s.query(`SET provenance.as_of = '${iso}'`);
  return iso;
}
