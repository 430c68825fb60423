/** A request unit sent by a RawClient and its answer, read as tests compare it. */
import { RawClient, sqlstate, type RawMessage } from './raw-client.js';
import type { Target } from './proxy-matrix.js';
import { RowBatch } from '../../proxy/wire/row-batch.js';
import { decodeCommandComplete } from '../../proxy/wire/backend-decoders.js';

/** A DataRow's values, as text. */
export function rowValues(m: RawMessage): (string | null)[] {
  return RowBatch.fromFrames([m.raw]).values()[0]!.map((v) => (v === null ? null : v.toString('utf8')));
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
    tags: answer.filter((m) => m.code === 'C').map((m) => decodeCommandComplete(m.raw)),
  };
}

/** A raw client logged in as a role that may read what the tests grant to PUBLIC. */
export function rawClient(t: Target): Promise<RawClient> {
  return RawClient.connect(t.port, t.kind === 'postgres' ? 'trustuser' : 'postgres');
}
