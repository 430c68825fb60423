/**
 * Binding a result of an as-of session: its columns come from history tables (the time-travel
 * plugin rewrites each read of a tracked table into one over `provenance.history_<oid>`), so each
 * is bound through the time-travel service to the tracked table's column, and runs the chain that
 * table had at the moment. A column read from a tracked table itself would be current data: the
 * result is refused, never served.
 */
import { PgError, SqlState } from '../../proxy/errors.js';
import type { FieldDescription } from '../../proxy/wire/backend-messages.js';
import type { SessionInfo } from '../hooks.js';
import type { AsOfMoment, TimeTravelService } from '../services.js';
import { SANDBOX_RUNTIME_VERSION, type SandboxValue } from '../../sandbox/index.js';
import type { TableTransforms } from './registry-cache.js';
import type { VersionHistory } from './version-history.js';
import { isExtra } from './row-reads/extra-columns.js';
import { unreplayableReason } from './version-function.js';

/** The tables a result reads through transforms: table → (result field index → attnum). */
export interface BoundResult {
  readonly tables: ReadonlyMap<TableTransforms, ReadonlyMap<number, number>>;
}

/** Binds an as-of result's fields to the chains in force at the moment, or says why it is refused. */
export function bindAsOf(
  history: VersionHistory | null, timetravel: TimeTravelService, fields: readonly FieldDescription[], moment: AsOfMoment,
): BoundResult | PgError {
  if (fields.every((f) => f.tableID === 0)) return { tables: new Map() };
  if (history === null) {
    return new PgError(SqlState.CannotConnectNow, 'the transform registry is not loaded yet: table data cannot be served as of a moment');
  }
  const chains = history.chainsAt(moment.atMicros);
  const byTable = new Map<number, Map<number, number>>();
  for (const [i, f] of fields.entries()) {
    if (f.tableID === 0) continue;
    const source = timetravel.sourceOf(f.tableID, f.columnID);
    if (source === null) {
      if (history.tables.has(f.tableID)) {
        return new PgError(SqlState.ObjectNotInPrerequisiteState,
          `column "${f.name}" would be read from the current rows of a tracked table (oid ${f.tableID}) in a session reading as of ${moment.at}: current data is not served as of a moment`);
      }
      continue;
    }
    let m = byTable.get(source.oid);
    if (!m) byTable.set(source.oid, (m = new Map()));
    // A column added for a row transform that the client selected too: its own field serves.
    if (isExtra(f) && [...m.values()].includes(source.attnum)) continue;
    m.set(i, source.attnum);
  }
  const tables = new Map<TableTransforms, ReadonlyMap<number, number>>();
  for (const [oid, bound] of byTable) {
    const at = chains.get(oid);
    if (!at) continue;
    const attnums = new Set(bound.values());
    const applies = (columns: ReadonlySet<number> | null): boolean => columns === null || [...columns].some((a) => attnums.has(a));
    const stale = at.stale.find((v) => applies(v.columns));
    if (stale) {
      return new PgError(SqlState.ObjectNotInPrerequisiteState,
        `transform "${stale.name}" version ${stale.version}, in force at ${moment.at}, cannot be replayed: ${unreplayableReason(stale.runtimeIdentity, SANDBOX_RUNTIME_VERSION)}`, 'ERROR', {
          hint: 'Its output then cannot be recomputed here: read as of a moment after a version registered under this runtime (registering the transform again makes one), or with a release that behaves as that runtime.',
        });
    }
    const unread = unreadAsOf(at.table, attnums, moment);
    if (unread !== null) return unread;
    if (at.table.chain.some((t) => applies(t.columns))) tables.set(at.table, bound);
  }
  return { tables };
}

/**
 * A row transform of then needs every column it reads in its row objects. They are fetched through
 * the time-travel plugin's history subqueries (row-reads/as-of-tables.ts); a result that still
 * lacks them (the statement could not be rewritten) would have the transform decide on missing
 * values and serve rows it hides: refused instead, whatever its guard.
 */
function unreadAsOf(table: TableTransforms, selected: ReadonlySet<number>, moment: AsOfMoment): PgError | null {
  for (const t of table.chain) {
    if (t.columns !== null) continue;
    const missing = [...(t.reads ?? table.columnNames.keys())].filter((a) => !selected.has(a));
    if (missing.length === 0) continue;
    const names = missing.map((a) => table.columnNames.get(a) ?? `#${a}`).join(', ');
    return new PgError(SqlState.FeatureNotSupported,
      `row transform "${t.name}" on ${table.name}, in force at ${moment.at}, reads columns the result does not carry (${names}), which the proxy could not fetch for it`, 'ERROR', {
        hint: `Select ${names} from ${table.name} as well.`,
      });
  }
  return null;
}

/**
 * The context a replay runs in: the moment's user and roles, the session's database, and the
 * moment as both `statement_timestamp` and `as_of`. The replaying connection's address, port,
 * session and application are not the past's and are left out (null), which also lets sessions
 * share replayed results (see replay-cache.ts).
 */
export function replayContext(s: SessionInfo, moment: AsOfMoment, clock: Date): SandboxValue {
  return {
    user: moment.user,
    roles: [...moment.roles],
    database: s.database,
    application_name: null,
    client_address: null,
    client_port: null,
    session_id: null,
    statement_timestamp: clock.toISOString(),
    as_of: clock.toISOString(),
  };
}

/** The moment as the sandbox's clock (millisecond precision, as statement timestamps are given). */
export function momentClock(moment: AsOfMoment): Date {
  return new Date(Number(moment.atMicros / 1000n));
}
