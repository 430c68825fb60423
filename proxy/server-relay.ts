/**
 * The server side of a session: upstream bytes are scanned for message boundaries, and only the
 * messages the session or a plugin needs are decoded (the scanner's filter below); the rest pass
 * to the client as they came. While a result hook is awaited, what follows waits in order.
 */
import { PgError, toPgError } from './errors.js';
import type { UpstreamLink } from './upstream/link.js';
import { Backend } from './wire/codes.js';
import { ServerScanner, type Piece } from './wire/server-scanner.js';
import type { TxStatus } from './wire/backend-messages.js';
import {
  decodeBackendKeyData, decodeErrorResponse, decodeParameterStatus, decodeReadyForQuery,
} from './wire/backend-decoders.js';
import { MAX_SERVER_BACKLOG, ResultStream, SLOW_CLIENT_READ_AHEAD, type Step } from './result-stream.js';
import { answeredUnit, type SessionParts } from './session-parts.js';

/** What the server side needs of the session beyond the parts they share. */
export interface RelayOwner {
  readonly isClosed: boolean;
  readonly link: UpstreamLink | null;
  /** The client does not take more now. */
  readonly clientNeedsDrain: boolean;
  /** BackendKeyData came: CancelRequests can find the session. */
  keyData(pid: number, secret: number): void;
  fail(err: PgError): void;
  /** Answers the proxy made itself go out once everything before them was answered. */
  emitLocalUnits(): void;
}

export class ServerRelay {
  readonly results: ResultStream;
  private readonly scanner: ServerScanner;
  /** Login is over (the first ReadyForQuery came, and the plugins heard of the session). */
  ready = false;
  txStatus: TxStatus = 'I';
  /** A result hook is awaited: upstream pieces wait in the backlog. */
  busy = false;
  /** Upstream pieces waiting for an async hook to finish. */
  private backlog: Piece[] = [];
  private backlogBytes = 0;
  /** Whether plugins look at results, asked once per upstream chunk rather than per message. */
  private resultHooksNow = false;
  /** The upstream sent an ErrorResponse since its last ReadyForQuery. */
  private unitFailed = false;
  /** A FATAL from the server (wrong password, terminated backend) is the client's last word. */
  saidFatal = false;
  /** A marked unit ended inside a transaction: plugins hear of it once the transaction ends. */
  private markedInTransaction = false;

  constructor(
    private readonly s: SessionParts,
    private readonly owner: RelayOwner,
  ) {
    this.results = new ResultStream(s);
    const answers = s.answers;
    const traces = s.traces;
    this.scanner = new ServerScanner((code) =>
      code === Backend.ReadyForQuery ||
      code === Backend.ErrorResponse ||
      code === Backend.ParameterStatus ||
      (!this.ready && code === Backend.BackendKeyData) ||
      ((code === Backend.RowDescription || code === Backend.DataRow || code === Backend.CommandComplete || code === Backend.NoData) &&
        (this.resultHooksNow || answers.following)) ||
      ((code === Backend.EmptyQueryResponse || code === Backend.PortalSuspended) && answers.following) ||
      ((code === Backend.CommandComplete || code === Backend.EmptyQueryResponse || code === Backend.PortalSuspended) &&
        traces.live > 0),
    );
  }

  data(chunk: Buffer): void {
    if (this.owner.isClosed) return;
    let pieces: Piece[];
    this.resultHooksNow = this.s.plugins.resultHooks;
    try {
      pieces = this.scanner.scan(chunk);
    } catch (err) {
      this.owner.fail(toPgError(err, 'upstream protocol error'));
      return;
    }
    if (this.owner.clientNeedsDrain) this.results.slowClient = true;
    if (this.busy) {
      for (const p of pieces) this.backlog.push(p);
      // Keep reading while a hook works (the upstream goes on producing rows, and the rows that
      // gather become one larger batch), up to a bound; then let TCP push back. Not while the
      // client does not read: what is read now would only wait in memory for it.
      this.backlogBytes += chunk.length;
      if (this.backlogBytes > this.readAhead() || this.owner.clientNeedsDrain) this.owner.link?.pause();
      return;
    }
    this.s.output.gather();
    this.runGuarded(pieces);
    this.s.output.gathered();
  }

  /** A message the session must decode and cannot ends the session, never the process. */
  private runGuarded(pieces: Piece[]): void {
    try {
      this.run(pieces);
    } catch (err) {
      this.owner.fail(toPgError(err, 'upstream protocol error'));
    }
  }

  private run(pieces: Piece[]): void {
    const results = this.results;
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i]!;
      let pending: Step;
      let next = i + 1;
      if (results.batchesInFlight.length > 0 && (p.kind === 'raw' || p.code !== Backend.DataRow)) {
        // What follows a result's rows waits until they were written.
        pending = { promise: results.batchesInFlight.at(-1)! };
        next = i;
      } else if (p.kind === 'raw') {
        if (!results.dropUntilReady) this.s.output.write(p.bytes);
        continue;
      } else if (!results.dropUntilReady && this.s.answers.startsExecute(answeredUnit(this.s), p.code)) {
        const opened = results.openExecute();
        if (opened) {
          pending = { promise: opened };
          next = i;
        } else pending = this.frame(p.code, p.raw, pieces, i);
      } else pending = this.frame(p.code, p.raw, pieces, i);
      if (typeof pending === 'number') {
        i = pending;
        continue;
      }
      // An async hook: hold the rest (and new chunks) until it is done.
      this.busy = true;
      this.s.output.hold = true;
      if (this.owner.clientNeedsDrain) results.slowClient = true;
      if (this.backlogBytes > this.readAhead() || this.owner.clientNeedsDrain) this.owner.link?.pause();
      const rest = pieces.slice(next);
      void pending.promise.then(
        () => this.resume(rest),
        (err: unknown) => this.owner.fail(toPgError(err, 'result processing failed')),
      );
      return;
    }
  }

  /** Upstream bytes read while a hook works, before the upstream is paused. */
  private readAhead(): number {
    return this.results.slowClient ? SLOW_CLIENT_READ_AHEAD : MAX_SERVER_BACKLOG;
  }

  private resume(rest: Piece[]): void {
    this.busy = false;
    this.s.output.hold = false;
    if (this.owner.isClosed) return;
    const backlog = rest.concat(this.backlog);
    this.backlog = [];
    this.backlogBytes = 0;
    if (!this.owner.clientNeedsDrain) this.owner.link?.resume();
    this.s.output.flushSoon();
    this.runGuarded(backlog);
  }

  /** Handles one watched message. */
  private frame(code: number, raw: Buffer, pieces: Piece[], index: number): Step {
    const s = this.s;
    switch (code) {
      case Backend.ReadyForQuery: {
        const pending = this.readyForQuery(raw);
        return pending ? { promise: pending } : index;
      }
      case Backend.ParameterStatus: {
        const p = decodeParameterStatus(raw);
        s.info.serverParams.set(p.name, p.value);
        s.output.write(raw);
        return index;
      }
      case Backend.BackendKeyData: {
        const k = decodeBackendKeyData(raw);
        this.owner.keyData(k.pid, k.secret);
        s.output.write(raw);
        return index;
      }
      case Backend.ErrorResponse: {
        this.unitFailed = true;
        const error = decodeErrorResponse(raw);
        if (error.fatal) this.saidFatal = true;
        this.results.error(raw, error);
        return index;
      }
      case Backend.EmptyQueryResponse:
        s.output.write(raw);
        s.answers.endResult();
        s.traces.resultEnd(null);
        return index;
      case Backend.PortalSuspended:
        return this.results.portalSuspended(raw, index);
      case Backend.RowDescription:
        return { promise: this.results.rowDescription(raw, s.answers.take(answeredUnit(s))) };
      case Backend.NoData: {
        const e = s.answers.take(answeredUnit(s));
        if (e?.kind === 'describe' && e.portal) e.portal.fields = 'none';
        if (!e || !(e.kind === 'describe' && e.own)) s.output.write(raw);
        return index;
      }
      case Backend.DataRow:
        return this.results.dataRow(raw, pieces, index);
      case Backend.CommandComplete:
        return this.results.commandComplete(raw, index, this.resultHooksNow);
      default:
        s.output.write(raw);
        return index;
    }
  }

  /** Returns a promise when the ReadyForQuery waits for a plugin (see Plugin.unitDone). */
  private readyForQuery(raw: Buffer): Promise<void> | undefined {
    const s = this.s;
    this.txStatus = decodeReadyForQuery(raw);
    this.results.unitEnded();
    const unit = s.units[0];
    s.answers.unitDone(unit && unit.kind === 'upstream' ? unit.answers ?? undefined : undefined);
    if (s.traces.live > 0) s.traces.unitEnd(unit);
    if (this.ready) s.plugins.readyForQuery(s.info, this.txStatus);
    const failed = this.unitFailed;
    this.unitFailed = false;
    if (unit && unit.kind === 'upstream') {
      s.units.shift();
      unit.onReady?.(failed);
      // Only outside a transaction: what it did is committed (or undone), and the proxy's own
      // SQL can run (the embedded backend is held by an open transaction until it ends).
      if (unit.marked && this.txStatus !== 'I') this.markedInTransaction = true;
      if ((unit.marked || this.markedInTransaction) && this.ready && this.txStatus === 'I') {
        this.markedInTransaction = false;
        return s.plugins.unitDone(s.info).then(() => {
          if (!unit.suppressReady) s.output.write(raw);
          this.owner.emitLocalUnits();
        });
      }
    }
    const write = !unit || unit.kind !== 'upstream' || !unit.suppressReady;
    if (!this.ready) {
      // The login's ReadyForQuery waits for the plugins' checks of the startup packet: one they
      // refuse ends the login with a FATAL instead, as the server does for a bad startup option.
      this.ready = true;
      this.busy = true;
      void s.plugins.sessionOpening(s.info).then(
        () => {
          if (write) s.output.write(raw);
          s.output.flushSoon();
          return s.plugins.sessionStart(s.info);
        },
        (err: unknown) => {
          const e = toPgError(err, 'session start failed');
          throw e.fatal ? e : new PgError(e.code, e.message, 'FATAL', e.fields);
        },
      ).then(
        () => this.resume([]),
        (err: unknown) => this.owner.fail(toPgError(err, 'session start failed')),
      );
      return;
    }
    if (write) s.output.write(raw);
    this.owner.emitLocalUnits();
  }
}
