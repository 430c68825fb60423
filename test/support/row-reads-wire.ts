/** Raw-wire helpers of the row transforms' tests: a Bind with one result format per column, and units summarised for comparison. */
import { serialize } from 'pg-protocol';
import type { Target } from './proxy-matrix.js';
import { RawClient, type RawMessage } from './raw-client.js';
import { rowValues } from './raw-unit.js';

/** Messages of a raw unit, DataRows decoded, tags and descriptions as sent. */
export function summary(msgs: readonly RawMessage[]): unknown[] {
  return msgs.map((m) => {
    if (m.code === 'D') return { D: rowValues(m) };
    if (m.code === 'C') return { C: m.body.subarray(0, m.body.length - 1).toString() };
    if (m.code === 'T' || m.code === 't') return { [m.code]: m.body.toString('hex') };
    return m.code;
  });
}

export async function raw(t: Target): Promise<RawClient> {
  return t.kind === 'postgres' ? RawClient.connect(t.port, 'trustuser', t.database) : RawClient.connect(t.port, t.user, t.database);
}

/** Bind with one result format per column (as JDBC does), then Describe the portal and Execute. */
export function bindEach(statement: string, formats: readonly number[]): Buffer {
  const body = Buffer.alloc(2 + statement.length + 1 + 2 + 2 + 2 + 2 * formats.length);
  let off = 1; // empty portal name
  off += body.write(`${statement}\0`, off, 'latin1');
  off = body.writeInt16BE(0, off);
  off = body.writeInt16BE(0, off);
  off = body.writeInt16BE(formats.length, off);
  for (const f of formats) off = body.writeInt16BE(f, off);
  const head = Buffer.alloc(5);
  head.write('B', 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

/** Parse, Describe, Bind with two result formats (binary, text), Execute, Close and Sync of one query, summarised. */
export async function describedUnit(w: RawClient, query: string): Promise<unknown[]> {
  w.write(Buffer.concat([
    serialize.parse({ name: 's1', text: query }),
    serialize.describe({ type: 'S', name: 's1' }),
    bindEach('s1', [1, 0]),
    serialize.execute(),
    serialize.close({ type: 'S', name: 's1' }),
    serialize.sync(),
  ]));
  return summary(await w.untilReady());
}
