/**
 * The one PGlite backend every embedded session shares, and who holds it: a session in a
 * transaction (or an open extended-protocol unit, or COPY) owns it until it is idle again.
 */
import type { PGlite } from '@electric-sql/pglite';
import type { PgError } from '../errors.js';
import { Backend, Frontend } from '../wire/codes.js';
import { wholeFrames } from '../wire/server-scanner.js';
import { decodeErrorResponse, decodeReadyForQuery } from '../wire/backend-decoders.js';
import { RowBatch } from '../wire/row-batch.js';
import type { TxStatus } from '../wire/backend-messages.js';
import { encodeQuery, encodeSimple } from '../wire/frontend-messages.js';

/** A holder of the backend: a session's link, or the proxy's own SQL. */
export interface BackendUser {
  readonly id: number;
}

export interface QueryOutcome {
  readonly rows: (string | null)[][];
  readonly error: PgError | null;
  readonly status: TxStatus;
}

export class EmbeddedBackend<L extends BackendUser = BackendUser> {
  /** The session whose transaction or open unit holds the backend. */
  owner: L | null = null;
  /** The session whose settings are applied on the backend now. */
  applied: L | null = null;

  constructor(public db: PGlite) {}

  /** Protocol bytes in, the backend's answer out (whole messages). */
  async raw(bytes: Buffer): Promise<Buffer> {
    const out = await this.db.execProtocolRaw(bytes, { syncToFs: false });
    return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  }

  /** Run a simple query on the backend, outside any client session's turn. */
  async query(sql: string): Promise<QueryOutcome> {
    return readOutcome(await this.raw(encodeQuery(sql)));
  }

  /** The backend's transaction status, as its ReadyForQuery would say. */
  async status(): Promise<TxStatus> {
    const z = wholeFrames(await this.raw(encodeSimple(Frontend.Sync))).find((x) => x.code === Backend.ReadyForQuery);
    return z ? decodeReadyForQuery(z.raw) : 'I';
  }

  /** After a turn of `user`: it keeps the backend while a transaction is open. */
  holdIfInTransaction(user: L): void {
    this.owner = this.db.isInTransaction() ? user : null;
  }
}

/** The text-format rows, first error and final status of a simple-query answer. */
function readOutcome(out: Buffer): QueryOutcome {
  const rows: (string | null)[][] = [];
  let error: PgError | null = null;
  let status: TxStatus = 'I';
  for (const m of wholeFrames(out)) {
    // One batch per row: the rows of several statements of one Query differ in width.
    if (m.code === Backend.DataRow) rows.push(RowBatch.fromFrames([m.raw]).values()[0]!.map((v) => (v === null ? null : v.toString('utf8'))));
    else if (m.code === Backend.ErrorResponse) error ??= decodeErrorResponse(m.raw);
    else if (m.code === Backend.ReadyForQuery) status = decodeReadyForQuery(m.raw);
  }
  return { rows, error, status };
}
