/**
 * A small time-travel service for the replay tests, standing in for the session plugin: a session
 * whose application_name is `asof <epoch microseconds>` reads as of that moment, and a history
 * table's columns map back to their table's through provenance.history_table/history_column.
 * The tests read `provenance.history_<oid>` with the validity predicate themselves, as the
 * session plugin's rewrite will.
 */
import type pg from 'pg';
import type { SessionInfo } from '../../plugins/hooks.js';
import type { AsOfMoment, TimeTravelService } from '../../plugins/services.js';

const PREFIX = 'asof ';

/** A moment as PostgreSQL prints a timestamptz in UTC, to the microsecond. */
export function pgUtc(micros: bigint): string {
  const iso = new Date(Number(micros / 1000n)).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${String(micros % 1_000_000n).padStart(6, '0')}+00`;
}

/** The database's clock now, in epoch microseconds. */
export async function serverNow(c: pg.Client): Promise<bigint> {
  const r = await c.query<{ m: string }>('SELECT (EXTRACT(epoch FROM pg_catalog.clock_timestamp()) * 1000000)::int8::text AS m');
  return BigInt(r.rows[0]!.m);
}

/** The application_name that makes a session read as of the moment. */
export function asOfApp(micros: bigint): string {
  return `${PREFIX}${micros}`;
}

export class TestTimeTravel implements TimeTravelService {
  private sources = new Map<number, Map<number, { oid: number; attnum: number }>>();
  /** Roles the replays run with (the moment's, as the session plugin would find them). */
  roles: readonly string[] = [];

  asOf(s: SessionInfo): AsOfMoment | null {
    if (!s.applicationName.startsWith(PREFIX)) return null;
    const micros = BigInt(s.applicationName.slice(PREFIX.length));
    return { at: pgUtc(micros), atMicros: micros, user: s.user, roles: this.roles };
  }

  sourceOf(relationOid: number, attnum: number): { readonly oid: number; readonly attnum: number } | null {
    return this.sources.get(relationOid)?.get(attnum) ?? null;
  }

  /** Reads which history column holds which table column. */
  async refresh(c: pg.Client): Promise<void> {
    const r = await c.query<{ hoid: string; hattnum: number; oid: string; attnum: number }>(`
      SELECT h.history::oid::int8::text AS hoid, a.attnum::int AS hattnum, h.target_oid::int8::text AS oid, hc.attnum::int AS attnum
        FROM provenance.history_table h
        JOIN provenance.history_column hc ON hc.target_oid = h.target_oid AND NOT hc.dropped
        JOIN pg_catalog.pg_attribute a ON a.attrelid = h.history AND a.attname = hc.history_name`);
    const sources = new Map<number, Map<number, { oid: number; attnum: number }>>();
    for (const row of r.rows) {
      let m = sources.get(Number(row.hoid));
      if (!m) sources.set(Number(row.hoid), (m = new Map()));
      m.set(row.hattnum, { oid: Number(row.oid), attnum: row.attnum });
    }
    this.sources = sources;
  }
}
