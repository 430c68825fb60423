/** A request unit sent by a RawClient and its answer, read as tests compare it. */
import { RawClient, sqlstate, type RawMessage } from './raw-client.js';
import type { Target } from './proxy-matrix.js';

/** DataRow: Int16 count, then per field Int32 length (-1: null) and the bytes (text format here). */
export function rowValues(m: RawMessage): (string | null)[] {
  const n = m.body.readInt16BE(0);
  const out: (string | null)[] = [];
  let off = 2;
  for (let i = 0; i < n; i++) {
    const len = m.body.readInt32BE(off);
    off += 4;
    out.push(len < 0 ? null : m.body.toString('utf8', off, off + len));
    if (len > 0) off += len;
  }
  return out;
}

export interface UnitAnswer {
  /** The codes of the messages, in order. */
  readonly codes: string;
  /** The rows, as text. */
  readonly rows: (string | null)[][];
  /** The SQLSTATEs of the errors. */
  readonly errors: string[];
  /** The CommandComplete tags. */
  readonly tags: string[];
}

/** Sends the messages and reads the answer up to ReadyForQuery. */
export async function runUnit(raw: RawClient, ...messages: Buffer[]): Promise<UnitAnswer> {
  raw.write(Buffer.concat(messages));
  const answer = await raw.untilReady();
  return {
    codes: answer.map((m) => m.code).join(''),
    rows: answer.filter((m) => m.code === 'D').map(rowValues),
    errors: answer.filter((m) => m.code === 'E').map((m) => sqlstate(m.body)),
    tags: answer.filter((m) => m.code === 'C').map((m) => m.body.toString('utf8', 0, m.body.length - 1)),
  };
}

/** A raw client logged in as a role that may read what the tests grant to PUBLIC. */
export function rawClient(t: Target): Promise<RawClient> {
  return RawClient.connect(t.port, t.kind === 'postgres' ? 'trustuser' : 'postgres');
}
