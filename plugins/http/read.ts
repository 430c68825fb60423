/**
 * A read of a table as a response body, JSON or CSV, made while it is sent: the rows come from
 * the caller's session a slice at a time (a portal executed again for each), so a large table is
 * never held whole. The first slice is read before anything is sent, so an error the read meets
 * at once (no privilege, a moment outside the history) still gets its status; one met later can
 * only cut the body short, which the caller sees as a broken response, never as a complete one.
 */
import type { CallerSession, Slice } from './caller.js';
import { HttpError } from './errors.js';
import type { ServedTable } from './table.js';
import { csvLine, jsonValue, type JsonValue } from './values.js';

const SLICE_ROWS = 500;

export interface ReadRequest {
  readonly session: CallerSession;
  readonly table: ServedTable;
  readonly sql: string;
  readonly params: readonly unknown[];
  readonly asOf: string | null;
  readonly format: 'json' | 'csv';
  /** One row by key: the JSON body has `row`, and no row is a 404. */
  readonly single: boolean;
  /** The ids of the executions the read caused, asked once its rows are sent. */
  readonly executions: () => Promise<string[]>;
}

/** Starts the read; resolves with the body once its first slice is in, rejects if that failed. */
export async function readBody(r: ReadRequest): Promise<AsyncGenerator<string>> {
  const slices = r.session.slices(r.sql, r.params, r.single ? 2 : SLICE_ROWS);
  const first = await slices.next();
  const head = first.done ? null : first.value;
  if (r.single && (head === null || head.rows.length === 0)) {
    await slices.return(undefined);
    throw new HttpError(404, '02000', `no row of ${r.table.name} has that key`);
  }
  return r.format === 'csv' ? csv(r, head, slices) : json(r, head, slices);
}

async function* rest(head: Slice | null, slices: AsyncGenerator<Slice>): AsyncGenerator<Slice> {
  if (head) yield head;
  yield* slices;
}

async function* csv(r: ReadRequest, head: Slice | null, slices: AsyncGenerator<Slice>): AsyncGenerator<string> {
  yield csvLine(head?.names ?? r.table.columns.map((c) => c.name));
  for await (const slice of rest(head, slices)) {
    if (slice.rows.length > 0) yield slice.rows.map(csvLine).join('');
  }
}

async function* json(r: ReadRequest, head: Slice | null, slices: AsyncGenerator<Slice>): AsyncGenerator<string> {
  const columns = r.table.columns.map((c) => ({ name: c.name, type: c.type }));
  yield `{"object":${JSON.stringify(r.table.name)},"as_of":${JSON.stringify(r.asOf)},"columns":${JSON.stringify(columns)},`;
  yield r.single ? '"row":' : '"rows":[';
  let first = true;
  for await (const slice of rest(head, slices)) {
    const objects = slice.rows.map((row) => JSON.stringify(rowObject(slice, row)));
    if (objects.length === 0) continue;
    yield (first ? '' : ',') + objects.join(',');
    first = false;
  }
  yield `${r.single ? '' : ']'},"executions":${JSON.stringify(await r.executions())}}`;
}

function rowObject(slice: Slice, row: readonly (string | null)[]): Record<string, JsonValue> {
  const o: Record<string, JsonValue> = {};
  slice.names.forEach((name, i) => (o[name] = jsonValue(slice.types[i] ?? 0, row[i] ?? null)));
  return o;
}
