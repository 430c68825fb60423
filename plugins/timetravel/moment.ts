/**
 * A moment to read as of: the client's text resolved to one instant as the server reads a
 * timestamptz in the session (its TimeZone and DateStyle, as the server last reported them), so
 * `'2026-10-27 10:00'`, `'yesterday'` or `'27/10/2026 10:00 Europe/Paris'` mean what they mean in
 * that session. The server does the reading, on the proxy's own connection with the session's
 * two settings for that one statement.
 */
import { PgError, SqlState } from '../../proxy/errors.js';
import type { SqlRunner } from '../registry/migrate.js';

export interface Moment {
  /** As PostgreSQL prints a timestamptz in UTC: '2026-10-27 10:00:00.123456+00'. */
  readonly at: string;
  /** Epoch microseconds. */
  readonly micros: bigint;
}

// The settings are made in a subquery that must produce its row before the outer select list
// reads the text (OFFSET 0 keeps it a subquery); set_config(…, true) ends with the statement's
// transaction. The text is a text parameter, cast when the statement runs, not when it is bound.
const RESOLVE_SQL = `
SELECT pg_catalog.isfinite(m.at) AS finite,
       CASE WHEN pg_catalog.isfinite(m.at) THEN (EXTRACT(epoch FROM m.at) OPERATOR(pg_catalog.*) 1000000)::pg_catalog.int8::pg_catalog.text END AS micros
  FROM (SELECT ($1::pg_catalog.text)::pg_catalog.timestamptz AS at
          FROM (SELECT pg_catalog.set_config('TimeZone', $2, true), pg_catalog.set_config('DateStyle', $3, true) OFFSET 0) s) m`;

/** Whether a thrown value carries a SQLSTATE (a server's error through either client). */
function serverError(err: unknown): PgError | null {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (e === null || typeof e !== 'object' || typeof e.code !== 'string' || !/^[0-9A-Z]{5}$/.test(e.code)) return null;
  return new PgError(e.code, typeof e.message === 'string' ? e.message : 'invalid moment');
}

export async function resolveMoment(store: SqlRunner, input: string, timeZone: string, dateStyle: string): Promise<Moment> {
  let rows: Record<string, unknown>[];
  try {
    rows = (await store.query(RESOLVE_SQL, [input, timeZone, dateStyle])).rows;
  } catch (err) {
    throw serverError(err) ?? new PgError(SqlState.InternalError, `could not read the moment: ${err instanceof Error ? err.message : String(err)}`);
  }
  const row = rows[0];
  if (row === undefined || row['finite'] !== true) {
    throw new PgError('22023', `invalid value for parameter "provenance.as_of": "${input}"`, 'ERROR', { detail: 'The moment must be a finite timestamp.' });
  }
  return fromMicros(BigInt(String(row['micros'])));
}

/**
 * A moment written with its UTC offset (ISO 8601, or PostgreSQL's own output), read without the
 * server: what the embedded database can resolve while a session holds its single backend.
 */
const WITH_OFFSET = /^\s*(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?\s*(?:(Z|UTC)|([+-])(\d{2})(?::?(\d{2}))?)\s*$/i;

export function momentWithOffset(input: string): Moment | null {
  const m = WITH_OFFSET.exec(input);
  if (m === null) return null;
  const [, y, mo, d, h, mi, s, frac, utc, sign, oh, om] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s ?? 0));
  const back = new Date(ms);
  if (Number.isNaN(ms) || back.getUTCDate() !== Number(d) || back.getUTCHours() !== Number(h)) return null;
  const offsetMin = utc !== undefined ? 0 : (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om ?? 0));
  const micros = BigInt(ms) * 1000n + BigInt((frac ?? '').padEnd(6, '0') || '0') - BigInt(offsetMin) * 60_000_000n;
  return fromMicros(micros);
}

export function fromMicros(micros: bigint): Moment {
  const ms = Number(micros / 1000n);
  const sub = Number(((micros % 1_000_000n) + 1_000_000n) % 1_000_000n);
  const iso = new Date(ms - (ms % 1000 + 1000) % 1000).toISOString().slice(0, 19).replace('T', ' ');
  const frac = sub === 0 ? '' : `.${String(sub).padStart(6, '0').replace(/0+$/, '')}`;
  return { at: `${iso}${frac}+00`, micros };
}

/** ISO 8601 in UTC, as SHOW gives it: 2026-10-27T10:00:00.123456Z. */
export function iso8601(m: Moment): string {
  return `${m.at.slice(0, -3).replace(' ', 'T')}Z`;
}

/** The moment as a constant of the rewritten SQL, read alike whatever the session's DateStyle. */
export function momentLiteral(m: Moment): string {
  return `'${m.at}'::pg_catalog.timestamptz`;
}
