/**
 * COPY FROM STDIN on the embedded database. PGlite's raw protocol cannot be fed CopyData (it
 * exits the process), so the client's data is collected here and loaded with PGlite's own
 * `COPY … FROM '/dev/blob'`; a COPY FROM STDIN that is not a lone simple Query is refused.
 */
import { PgError, SqlState } from '../errors.js';
import { Backend, Frontend } from '../wire/codes.js';
import { wholeFrames } from '../wire/server-scanner.js';
import { decodeRowDescription } from '../wire/backend-decoders.js';
import { commandComplete, copyInResponse, errorResponse, readyForQuery } from '../wire/backend-messages.js';
import { decodeCopyFail, encodeQuery } from '../wire/frontend-messages.js';
import type { EmbeddedBackend } from './embedded-backend.js';
import type { EmbeddedLink } from './embedded-link.js';
import type { CopyInPlan } from './embedded-sql.js';

export class EmbeddedCopyIn {
  constructor(private readonly backend: EmbeddedBackend<EmbeddedLink>) {}

  /**
   * COPY FROM STDIN that is not a lone simple query (inside a multi-statement Query, or in a
   * Parse) would put PGlite into COPY mode, where client data kills it: refuse it, and skip
   * the rest of an extended-protocol unit up to its Sync, as a server does after an error.
   */
  async refuse(link: EmbeddedLink, frame: Buffer, error: PgError): Promise<void> {
    const out: Buffer[] = [errorResponse(error)];
    if (frame[0] === Frontend.Query) {
      out.push(readyForQuery(await this.backend.status()));
    } else {
      link.skipUntilSync = true;
      await this.skipToSync(link, out);
      return;
    }
    this.backend.holdIfInTransaction(link);
    link.events.data(Buffer.concat(out));
  }

  /** After an error in an extended-protocol unit, drop its messages up to Sync, which is answered. */
  async skipToSync(link: EmbeddedLink, out: Buffer[]): Promise<void> {
    while (link.pending.length > 0) {
      const f = link.pending.shift()!;
      if (f[0] === Frontend.Sync) {
        link.skipUntilSync = false;
        out.push(readyForQuery(await this.backend.status()));
        break;
      }
    }
    // Until the Sync arrives, this session keeps the backend so nothing runs in between.
    this.backend.owner = link.skipUntilSync || this.backend.db.isInTransaction() ? link : null;
    if (out.length > 0) link.events.data(Buffer.concat(out));
  }

  /** COPY … FROM STDIN: check the target, then ask the client for its data. */
  async start(link: EmbeddedLink, plan: CopyInPlan): Promise<void> {
    let columns = plan.columns;
    if (columns === null) {
      const msgs = wholeFrames(await this.backend.raw(encodeQuery(`SELECT * FROM ${plan.relation} LIMIT 0`)));
      const err = msgs.find((x) => x.code === Backend.ErrorResponse);
      if (err) {
        this.backend.holdIfInTransaction(link);
        link.events.data(Buffer.concat([err.raw, readyForQuery(await this.backend.status())]));
        return;
      }
      const desc = msgs.find((x) => x.code === Backend.RowDescription);
      columns = desc ? decodeRowDescription(desc.raw).length : 0;
    }
    link.copyIn = { sql: plan.sql, chunks: [] };
    this.backend.owner = link;
    link.events.data(copyInResponse(plan.binary ? 1 : 0, columns));
  }

  /** Collect CopyData; on CopyDone load it all, on CopyFail give up. */
  async feed(link: EmbeddedLink): Promise<void> {
    const copy = link.copyIn!;
    while (link.pending.length > 0) {
      const f = link.pending.shift()!;
      if (f[0] === Frontend.CopyData) {
        copy.chunks.push(f.subarray(5));
        continue;
      }
      if (f[0] === Frontend.Flush || f[0] === Frontend.Sync) continue; // ignored during COPY, as a server does
      link.copyIn = null;
      let reply: Buffer;
      if (f[0] === Frontend.CopyDone) {
        try {
          const res = await this.backend.db.query(copy.sql, [], { blob: new Blob(copy.chunks) });
          reply = commandComplete(`COPY ${res.affectedRows ?? 0}`);
        } catch (err) {
          reply = errorResponse(fromPgliteError(err));
        }
      } else if (f[0] === Frontend.CopyFail) {
        reply = errorResponse(new PgError(SqlState.QueryCanceled, `COPY from stdin failed: ${decodeCopyFail(f)}`));
      } else {
        reply = errorResponse(new PgError(SqlState.ProtocolViolation, `unexpected message type 0x${f[0]!.toString(16)} during COPY from stdin`));
      }
      const status = await this.backend.status();
      this.backend.owner = status === 'I' ? null : link;
      link.events.data(Buffer.concat([reply, readyForQuery(status)]));
      return;
    }
  }
}

/** Map an error thrown by PGlite's query API to a client error. */
function fromPgliteError(err: unknown): PgError {
  if (err instanceof PgError) return err;
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'string') {
    const e = err as { code: string; message?: string; detail?: string; hint?: string };
    return new PgError(e.code, e.message ?? 'error', 'ERROR', {
      ...(e.detail ? { detail: e.detail } : {}),
      ...(e.hint ? { hint: e.hint } : {}),
    });
  }
  return new PgError(SqlState.InternalError, err instanceof Error ? err.message : String(err));
}
