/**
 * The result/row pipeline of a session: each result a plugin watches, from its description to its
 * end, with its DataRows handed to the plugins in batches and written in order. A result a plugin
 * refuses is replaced by the error, never sent in part; the rest of its unit is dropped up to
 * ReadyForQuery.
 */
import { PgError, SqlState, toPgError } from './errors.js';
import type { WatchedResult } from '../plugins/host.js';
import { Backend } from './wire/codes.js';
import type { Piece } from './wire/server-scanner.js';
import { commandComplete, errorResponse, rowDescription } from './wire/backend-messages.js';
import { decodeCommandComplete, decodeRowDescription } from './wire/backend-decoders.js';
import { RowBatch } from './wire/row-batch.js';
import type { Expected, Portal } from './portals.js';
import { answeredUnit, type SessionParts } from './session-parts.js';

/** Upstream bytes a session reads ahead while a result hook is busy. */
export const MAX_SERVER_BACKLOG = 1 << 20;
/**
 * Batches of a watched result whose hooks may work at the same time. While one batch is in the
 * sandbox, the event loop decodes the next and encodes the one before: with one at a time it sat
 * idle for a fifth of a transformed result. Their rows still leave in order.
 */
const BATCHES_IN_FLIGHT = 2;
/**
 * Bounds of one batch. Rows that arrive together (the embedded database answers a statement in
 * one piece) are cut into batches of at most this much, so that one sandbox call's time and memory
 * limits apply to a bounded batch, and a large result is worked on in overlapping batches. Not
 * smaller: each batch costs a call into the sandbox per transform, and batches of 1,000 rows made
 * a 3-transform chain over 100k rows cost the event loop a fifth more than batches of 10,000.
 */
const MAX_BATCH_ROWS = 10_000;
const MAX_BATCH_BYTES = MAX_SERVER_BACKLOG;
/**
 * Upstream bytes read ahead, and bytes of one batch, once the client of a result did not take what
 * it was sent: large batches only pay off while the client keeps up, and otherwise what the proxy
 * read ahead would wait in its memory (a megabyte and more of rows and their copies, per session).
 */
export const SLOW_CLIENT_READ_AHEAD = 64 << 10;

/** Index of the last piece consumed when handled synchronously, or a promise when a hook must be awaited. */
export type Step = number | { readonly promise: Promise<void> };

export class ResultStream {
  watched: WatchedResult | null = null;
  /**
   * Row batches handed to the plugins whose rows were not written yet, oldest first. Each ends
   * after the one before it, so the last one's end is when all were written.
   */
  readonly batchesInFlight: Promise<void>[] = [];
  /** After a result hook denied a result: drop upstream output up to ReadyForQuery. */
  dropUntilReady = false;
  /**
   * The client did not take what it was sent since the request unit began: read ahead and batch
   * by SLOW_CLIENT_READ_AHEAD until its ReadyForQuery.
   */
  slowClient = false;
  /** The result a client's Describe of a portal opened, for the portal's next Execute (hooks run once for both). */
  private readonly describedResults = new WeakMap<Portal, WatchedResult>();
  private resultSerial = 0;

  constructor(private readonly s: SessionParts) {}

  /** ReadyForQuery: the unit's results are over. */
  unitEnded(): void {
    this.dropUntilReady = false;
    this.slowClient = false;
    this.watched = null;
  }

  /**
   * A RowDescription: a simple Query's result starts (no answer followed), or a Describe is
   * answered, whose portal keeps the description for its Executes. The plugins see the client's
   * (not the proxy's own Describes): what they return is what the client gets.
   */
  async rowDescription(raw: Buffer, answers: Expected | undefined): Promise<void> {
    if (this.dropUntilReady) return;
    const fields = decodeRowDescription(raw);
    if (answers?.kind === 'execute') {
      this.abort(new PgError(SqlState.ProtocolViolation, 'the upstream sent a RowDescription where the rows of an Execute were expected'));
      return;
    }
    if (answers?.portal) answers.portal.fields = fields;
    if (answers?.own) return;
    const s = this.s;
    s.info.statement = s.traces.current();
    try {
      const r = await s.plugins.rowDescription(s.info, this.newResultId(), fields);
      if (!answers) {
        this.watched = r.watched;
        s.answers.resultOpen = true;
      } else if (answers.portal) this.describedResults.set(answers.portal, r.watched);
      s.output.write(r.changed ? rowDescription(r.fields) : raw);
    } catch (err) {
      this.abort(toPgError(err, 'row description'));
    }
  }

  private newResultId(): { readonly serial: number } {
    return { serial: ++this.resultSerial };
  }

  /**
   * An Execute's answer starts: its result is opened with its own portal's description, as the
   * upstream sent it. Returns a promise when the plugins must be awaited.
   */
  openExecute(): Promise<void> | undefined {
    const s = this.s;
    const portal = s.answers.openExecute(answeredUnit(s));
    const described = portal && this.describedResults.get(portal);
    this.watched = described ?? null;
    const fields = portal?.fields ?? null;
    // NoData: a statement without rows; unknown: no rows are served (see dataRow).
    if (described || fields === null || fields === 'none') {
      if (described) this.describedResults.delete(portal);
      return undefined;
    }
    s.info.statement = s.traces.current();
    return s.plugins.rowDescription(s.info, this.newResultId(), fields).then(
      (r) => {
        this.watched = r.watched;
      },
      (err: unknown) => this.abort(toPgError(err, 'row description')),
    );
  }

  /** An ErrorResponse ended the result (or the statement) being answered. */
  error(raw: Buffer, e: PgError): void {
    const s = this.s;
    s.answers.endResult();
    if (this.dropUntilReady) return;
    s.output.write(raw);
    if (s.traces.live === 0 && this.watched === null) return;
    const watched = this.watched;
    this.watched = null;
    if (watched) {
      s.info.statement = s.traces.current();
      void s.plugins.resultError(s.info, watched, e);
    }
    s.traces.resultEnd(e.code);
  }

  portalSuspended(raw: Buffer, index: number): Step {
    if (this.dropUntilReady) return index;
    const s = this.s;
    const watched = this.watched;
    this.watched = null;
    s.answers.endResult();
    if (!watched) {
      s.output.write(raw);
      s.traces.resultEnd(null);
      return index;
    }
    return { promise: this.suspended(raw, watched) };
  }

  private async suspended(raw: Buffer, watched: WatchedResult): Promise<void> {
    const s = this.s;
    s.info.statement = s.traces.current();
    try {
      await s.plugins.portalSuspended(s.info, watched);
      s.output.write(raw);
      s.traces.resultEnd(null);
    } catch (err) {
      this.abort(toPgError(err, 'portal suspended'));
    }
  }

  /** A DataRow, and the run of DataRows after it in `pieces`, which leave the list as one batch. */
  dataRow(raw: Buffer, pieces: Piece[], index: number): Step {
    if (this.dropUntilReady) return index;
    const s = this.s;
    if (!s.answers.resultOpen && answeredUnit(s)?.followed) {
      // Rows of no result the session knows the description of: never served as they are.
      // (Rows of an Execute sent while results were not looked at pass, as they would have a moment earlier.)
      this.abort(new PgError(SqlState.InternalError, 'rows arrived for a result whose description the proxy does not know; they were not served'));
      return index;
    }
    if (!this.watched || !this.watched.watchers.some((p) => p.dataRows)) {
      s.output.write(raw);
      return index;
    }
    // Gather the run of DataRows that follows into one batch, up to a bound.
    const frames: Buffer[] = [raw];
    let bytes = raw.length;
    let j = index + 1;
    const maxBytes = this.slowClient ? SLOW_CLIENT_READ_AHEAD : MAX_BATCH_BYTES;
    for (; j < pieces.length && frames.length < MAX_BATCH_ROWS && bytes < maxBytes; j++) {
      const q = pieces[j]!;
      if (q.kind !== 'frame' || q.code !== Backend.DataRow) break;
      frames.push(q.raw);
      bytes += q.raw.length;
    }
    // The batch is handled as one: its pieces leave the list.
    pieces.splice(index + 1, j - 1 - index);
    this.dataRows(frames);
    // Enough batches at work: the next waits for the oldest to be written.
    return this.batchesInFlight.length < BATCHES_IN_FLIGHT ? index : { promise: this.batchesInFlight[0]! };
  }

  /**
   * Hands a batch to the plugins and writes what they return once the batches before it were
   * written. The first batch to fail ends the result; the ones after it are dropped.
   */
  private dataRows(frames: Buffer[]): void {
    const s = this.s;
    const watched = this.watched;
    if (!watched) return;
    s.info.statement = s.traces.current();
    let work: Promise<RowBatch | null>;
    try {
      work = s.plugins.dataRows(s.info, watched, RowBatch.fromFrames(frames));
    } catch (err) {
      work = Promise.reject(err);
    }
    const before = this.batchesInFlight.at(-1);
    const done = work.then(
      async (out) => {
        await before;
        this.batchesInFlight.shift();
        if (this.dropUntilReady) return;
        if (out === null) for (const f of frames) s.output.write(f);
        // One buffer for the whole batch: a write per row would cost a syscall per row.
        else s.output.write(out.encode());
      },
      async (err: unknown) => {
        await before;
        this.batchesInFlight.shift();
        if (!this.dropUntilReady) this.abort(toPgError(err, 'data rows'));
      },
    );
    this.batchesInFlight.push(done);
  }

  commandComplete(raw: Buffer, index: number, resultHooksNow: boolean): Step {
    if (this.dropUntilReady) return index;
    const s = this.s;
    s.answers.endResult();
    if (!resultHooksNow && this.watched === null) {
      s.output.write(raw);
      s.traces.resultEnd(null);
      return index;
    }
    return { promise: this.completed(raw) };
  }

  private async completed(raw: Buffer): Promise<void> {
    const s = this.s;
    const tag = decodeCommandComplete(raw);
    const watched = this.watched;
    this.watched = null;
    s.info.statement = s.traces.current();
    try {
      const out = await s.plugins.commandComplete(s.info, watched, tag);
      for (const n of out.notices) s.output.write(errorResponse(n, true));
      s.output.write(out.tag === tag ? raw : commandComplete(out.tag));
      s.traces.resultEnd(null);
    } catch (err) {
      this.abort(toPgError(err, 'command complete'));
    }
  }

  /** A result a plugin refused: the client gets the error in its place, never a partial result. */
  abort(err: PgError): void {
    const s = this.s;
    s.output.write(errorResponse(err));
    this.dropUntilReady = true;
    const watched = this.watched;
    this.watched = null;
    if (watched) void s.plugins.resultError(s.info, watched, err);
    s.traces.resultEnd(err.code);
  }
}
