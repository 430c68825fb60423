/**
 * Row transforms of a past moment see what they read too. In a session reading as of a moment the
 * time-travel plugin has already replaced each tracked table of the statement by a subquery over
 * its history that outputs the table's columns by name (`(SELECT id, amount … FROM
 * provenance.history_16384 WHERE …) AS orders`); the transforms plugin sees that text. Such a
 * subquery stands for the table: the columns the row transforms in force at the moment read are
 * referred to through its alias as through the table's, and carried out like any other.
 */
import type { VersionHistory } from '../version-history.js';
import { readTable, type ReadTable, type ReadTables } from './read-tables.js';
import type { SelectBody } from './select-forms.js';

const HISTORY = /^history_([0-9]+)$/;

const cache = new WeakMap<ReadonlyMap<number, unknown>, ReadTables>();

/** The tables whose chain at the moment has a row transform, with the columns those read then. */
export function asOfReadTables(history: VersionHistory, atMicros: bigint): ReadTables {
  const chains = history.chainsAt(atMicros);
  const hit = cache.get(chains);
  if (hit) return hit;
  const byOid = new Map<number, ReadTable>();
  for (const [oid, at] of chains) {
    const read = readTable(at.table);
    if (read !== null) byOid.set(oid, read);
  }
  const out = { byOid, names: new Map() };
  cache.set(chains, out);
  return out;
}

/** The table a history subquery of the time-travel plugin stands for, when it has row transforms at the moment. */
export function historyTable(tables: ReadTables): (body: SelectBody) => ReadTable | null {
  return (body) => {
    const from = body.fromClause;
    const rv = from?.length === 1 && from[0] !== undefined && 'RangeVar' in from[0] ? from[0].RangeVar : undefined;
    if (rv?.schemaname !== 'provenance' || body.whereClause === undefined) return null;
    const oid = HISTORY.exec(rv.relname ?? '')?.[1];
    return oid === undefined ? null : tables.byOid.get(Number(oid)) ?? null;
  };
}

/** Whether a text reads some history table: an as-of statement the time-travel plugin rewrote. */
export function readsHistory(text: string): boolean {
  return text.includes('provenance.history_');
}
