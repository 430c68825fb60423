/**
 * One client connection after its startup packet: relays the protocol between the client
 * socket and an upstream link, and gives plugins their say on statements and results.
 *
 * Reading order of the data path:
 *   client bytes → onClientData (framed, checked) → statement hooks → link.write
 *   link data → onUpstreamData (scanned; only watched messages decoded) → result hooks → client
 *
 * A request unit is what ends with one ReadyForQuery: a simple Query, a FunctionCall, or the
 * extended-protocol messages up to Sync. Units are kept in order so that answers the proxy
 * makes itself (a denied statement, a locally answered one) reach the client in the place
 * where the upstream's answer would have been.
 */
import type { Socket } from 'node:net';
import { PgError, SqlState, toPgError } from './errors.js';
import { clientInputError } from './client-input-error.js';
import { Backend, FRONTEND_CODES, Frontend } from './wire/codes.js';
import { Framer } from './wire/framer.js';
import { ServerScanner, type Piece } from './wire/server-scanner.js';
import { BodyReader } from './wire/reader.js';
import {
  commandComplete, errorResponse, readyForQuery, rowDescription,
  type FieldDescription, type TxStatus,
} from './wire/backend-messages.js';
import {
  decodeBindHead, decodeExecute, decodeParse, decodeQuery, decodeTarget, encodeSimple,
  type StartupMessage,
} from './wire/frontend-messages.js';
import type { ClientEndpoint, Upstream, UpstreamLink } from './upstream/link.js';
import type { PluginHost, WatchedResult } from '../plugins/host.js';
import type { SessionInfo, StatementTrace } from '../plugins/hooks.js';
import { RowBatch } from './wire/row-batch.js';
import { ClientChannel } from './auth/client-channel.js';
import { AnswerFollower, type Expected, type Portal, type UnitAnswers } from './portals.js';
import { StatementPath } from './statement-path.js';
import { localAnswer } from './statement-steps.js';

export interface SessionOptions {
  readonly maxMessageSize: number;
  readonly log: (msg: string) => void;
}

export interface SessionRegistry {
  /** The backend key the client was given, so CancelRequests can find this session. */
  registerKey(session: Session, pid: number, secret: number): void;
  removed(session: Session): void;
}

/** A unit the proxy answers itself; its bytes are made when its turn comes (they end with ReadyForQuery). */
type Unit =
  | {
      readonly kind: 'upstream';
      readonly suppressReady?: boolean;
      /** The answers to Describes and Executes of this unit the session follows (see portals.ts). */
      readonly answers?: UnitAnswers | null;
      /** The client statements of this unit, while statements are tracked, in the order they run. */
      readonly statements?: StatementTrace[];
      /** A Query or Parse of it contained a word a plugin watches (see Plugin.unitWords). */
      readonly marked?: boolean;
      /** Told at its ReadyForQuery whether an error ended it (see statement-path.ts). */
      readonly onReady?: (failed: boolean) => void;
    }
  | { readonly kind: 'local'; readonly answer: (status: TxStatus) => Buffer[] };

/** The common unit: the upstream answers, nothing is added. Shared, so counting costs no allocation. */
const PLAIN_UNIT: Unit = Object.freeze({ kind: 'upstream' });

let nextSessionId = 1;

/** Upstream bytes a session reads ahead while a result hook is busy. */
const MAX_SERVER_BACKLOG = 1 << 20;
/**
 * Output to the client waits while a result hook works, up to this many bytes, so that a small
 * answer leaves in one write as it does in pass-through: a write wakes the client, and on a busy
 * machine each extra one cost about 40 µs (a point lookup with a transform went out in four).
 */
const HOLD_OUTPUT_BYTES = 64 << 10;
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

export class Session {
  readonly info: SessionInfo & { backendPid: number; serverParams: Map<string, string> };
  private link: UpstreamLink | null = null;
  private readonly framer: Framer;
  private readonly scanner: ServerScanner;
  private readonly units: Unit[] = [];
  /** Extended messages of the unit not yet closed by a Sync went upstream by the fast path. */
  private openForwarded = false;
  private txStatus: TxStatus = 'I';
  private ready = false;
  private closed = false;
  private draining = false;
  private backendSecret = 0;
  /** Statement texts by name, so a Bind hook can see what it binds. */
  private readonly statements = new Map<string, string>();
  private readonly path: StatementPath;
  /** The upstream sent an ErrorResponse since its last ReadyForQuery. */
  private unitFailed = false;

  /** Client input waiting for an async hook to finish; order is kept. */
  private clientBacklog: Buffer[] = [];
  private clientBusy = false;
  /** The upstream link refused more (write returned false): the client is not read until it drains. */
  private upstreamBlocked = false;
  /** Upstream pieces waiting for an async hook to finish. */
  private serverBacklog: Piece[] = [];
  private serverBacklogBytes = 0;
  private serverBusy = false;

  private watched: WatchedResult | null = null;
  /**
   * Row batches handed to the plugins whose rows were not written yet, oldest first. Each ends
   * after the one before it, so the last one's end is when all were written.
   */
  private readonly batchesInFlight: Promise<void>[] = [];
  /** After a result hook denied a result: drop upstream output up to ReadyForQuery. */
  private dropUntilReady = false;
  private out: Buffer[] = [];
  /** Whether plugins look at results, asked once per upstream chunk rather than per message. */
  private resultHooksNow = false;
  /** Which portal's description each Execute's rows have (see extendedFrame). */
  private readonly answers = new AnswerFollower();
  /** The result a client's Describe of a portal opened, for the portal's next Execute (hooks run once for both). */
  private readonly describedResults = new WeakMap<Portal, WatchedResult>();
  private resultSerial = 0;
  private upstreamSaidFatal = false;
  private flushQueued = false;
  /** A result hook is being awaited: small output waits for what it adds (see HOLD_OUTPUT_BYTES). */
  private holdOutput = false;
  private outBytes = 0;
  /** Whether the unit not closed yet contains a plugin's watched word. */
  private openMarked = false;
  /** A marked unit ended inside a transaction: plugins hear of it once the transaction ends. */
  private markedInTransaction = false;
  /** Statements of the unit not closed yet by a Sync (tracked statements only). */
  private openStatements: StatementTrace[] = [];
  /** Tracked statements not ended yet: while any is, the scanner watches what ends them. */
  private liveTraces = 0;
  /** Portal → text of the statement it was bound to, while statements are tracked. */
  private readonly portals = new Map<string, string>();

  constructor(
    private readonly socket: Socket,
    readonly startup: StartupMessage,
    private readonly client: ClientEndpoint,
    private readonly plugins: PluginHost,
    private readonly registry: SessionRegistry,
    private readonly opts: SessionOptions,
  ) {
    const p = startup.params;
    const user = p.get('user') ?? '';
    this.info = {
      id: nextSessionId++,
      user,
      database: p.get('database') ?? user,
      applicationName: p.get('application_name') ?? '',
      clientAddress: client.address,
      clientPort: client.port,
      serverParams: new Map(),
      startupParams: p,
      backendPid: 0,
      pluginState: new Map(),
      statementPlugins: new Set(),
      statement: null,
    };
    this.path = new StatementPath(plugins, this.info, this.statements, {
      closed: () => this.closed,
      takeForwarded: () => {
        const forwarded = this.openForwarded;
        this.openForwarded = false;
        return forwarded;
      },
      terminate: () => this.clientTerminated(),
      relay: (f) => this.forwardFrames([f]),
      answeredByCommand: (raw, text) =>
        (this.plugins.mayAnswerLocally(raw) && this.answeredLocally(text)) || (this.plugins.mayCopyOut(raw) && this.refusedCopyOut(text)),
      answerStatement: (text, make, errorCode, protocol) => this.answerLocally(text, make, errorCode, protocol),
      sendQuery: (raw, rewritten, text) => {
        if (this.plugins.tracksStatements) this.beginTrace(text, 'simple');
        if (this.plugins.mentionsUnitWord(raw)) this.openMarked = true;
        this.units.push(this.closeUnit());
        this.link?.write(rewritten);
      },
      sendExtended: (frames) => this.sendExtended(frames),
      flush: (raw) => this.link?.write(raw),
      endUnit: (sync, onReady) => {
        this.units.push(this.closeUnit({ suppressReady: onReady !== undefined, onReady }));
        this.link?.write(sync);
      },
      pushLocal: (make, endsUnit) => this.pushLocal(make, endsUnit),
    });
    this.framer = new Framer({ maxMessageSize: opts.maxMessageSize, codes: FRONTEND_CODES, peer: 'client' });
    this.scanner = new ServerScanner((code) =>
      code === Backend.ReadyForQuery ||
      code === Backend.ErrorResponse ||
      code === Backend.ParameterStatus ||
      (!this.ready && code === Backend.BackendKeyData) ||
      ((code === Backend.RowDescription || code === Backend.DataRow || code === Backend.CommandComplete || code === Backend.NoData) &&
        (this.resultHooksNow || this.answers.following)) ||
      ((code === Backend.EmptyQueryResponse || code === Backend.PortalSuspended) && this.answers.following) ||
      ((code === Backend.CommandComplete || code === Backend.EmptyQueryResponse || code === Backend.PortalSuspended) &&
        this.liveTraces > 0),
    );
  }

  /** Connect upstream and start relaying. `early` holds client bytes that came with the startup packet. */
  async start(upstream: Upstream, early: Buffer): Promise<void> {
    const sock = this.socket;
    sock.on('error', (err) => this.close(`client socket error: ${err.message}`));
    sock.on('close', () => this.close());
    const login = new ClientChannel(sock, early, this.opts.maxMessageSize);
    try {
      this.link = await upstream.connect(this.startup, this.client, {
        data: (chunk) => this.onUpstreamData(chunk),
        drain: () => this.upstreamDrained(),
        close: (error) => this.onUpstreamClosed(error),
      }, login);
    } catch (err) {
      login.release();
      this.fail(toPgError(err, 'could not connect to upstream'));
      return;
    }
    const pending = login.release();
    if (this.closed) {
      this.link.destroy();
      return;
    }
    sock.on('data', (chunk: Buffer) => this.onClientData(chunk));
    sock.on('drain', () => this.link?.resume());
    if (pending.length > 0) this.onClientData(pending);
  }

  /** Requests the upstream has not answered yet (each ends with a ReadyForQuery). */
  get inFlight(): number {
    return this.units.length + (this.path.holding ? 1 : 0);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  cancel(): void {
    this.link?.cancel(this.info.backendPid, this.backendSecret);
  }

  /** Finish what is running, then end the session as a server shutdown would. */
  drain(): void {
    this.draining = true;
    if (this.inFlight === 0) this.terminateForShutdown();
  }

  private terminateForShutdown(): void {
    if (this.closed) return;
    this.write(errorResponse(new PgError(SqlState.AdminShutdown, 'terminating connection due to administrator command', 'FATAL')));
    this.close();
  }

  // ───────────────────────────── client → upstream ─────────────────────────────

  private onClientData(chunk: Buffer): void {
    if (this.closed) return;
    if (this.clientBusy) {
      this.clientBacklog.push(chunk);
      return;
    }
    let frames;
    try {
      frames = this.framer.push(chunk);
      if (frames.length === 0) return;
      if (!this.ready || !this.path.wanted(frames)) {
        this.forwardFrames(frames);
        return;
      }
    } catch (err) {
      this.fail(clientInputError(err));
      return;
    }
    this.clientBusy = true;
    this.socket.pause();
    void this.path.process(frames).then(
      () => {
        this.clientBusy = false;
        if (!this.closed && !this.upstreamBlocked) this.socket.resume();
        const backlog = this.clientBacklog;
        this.clientBacklog = [];
        for (const c of backlog) this.onClientData(c);
      },
      (err: unknown) => this.fail(clientInputError(err)),
    );
  }

  /** Fast path: no statement hooks, so frames go upstream as they are; only units are counted. */
  private forwardFrames(frames: readonly { code: number; raw: Buffer }[]): void {
    const link = this.link;
    if (!link) return;
    const send: Buffer[] = [];
    const tracking = this.ready && this.plugins.tracksStatements;
    for (const f of frames) {
      if (f.code === Frontend.Terminate) {
        for (const b of coalesce(send)) link.write(b);
        this.clientTerminated();
        return;
      }
      if (!this.ready) {
        send.push(f.raw);
        continue;
      }
      if (f.code === Frontend.Query) {
        if (this.plugins.mentionsUnitWord(f.raw)) this.openMarked = true;
        const local = this.plugins.mayAnswerLocally(f.raw);
        const copy = this.plugins.mayCopyOut(f.raw);
        if (tracking || local || copy) {
          const text = decodeQuery(f.raw);
          if (local && this.answeredLocally(text)) continue;
          if (copy && this.refusedCopyOut(text)) continue;
          if (tracking) this.beginTrace(text, 'simple');
        }
      }
      this.extendedFrame(f.code, f.raw, send, tracking);
      this.trackUnit(f.code);
    }
    let ok = true;
    for (const b of coalesce(send)) ok = link.write(b) && ok;
    if (!ok) {
      this.upstreamBlocked = true;
      this.socket.pause();
    }
  }

  /** The upstream takes client bytes again: read the client, unless a statement hook holds it. */
  private upstreamDrained(): void {
    this.upstreamBlocked = false;
    if (!this.clientBusy && !this.closed) this.socket.resume();
  }

  private trackUnit(code: number): void {
    if (code === Frontend.Query || code === Frontend.Sync || code === Frontend.FunctionCall) {
      this.units.push(this.closeUnit());
      this.openForwarded = false;
    } else if (code === Frontend.Parse || code === Frontend.Bind || code === Frontend.Describe || code === Frontend.Execute || code === Frontend.Close) {
      this.openForwarded = true;
    }
  }

  /** The unit a Sync (or Query) ends, carrying the Describes and the statements sent in it. */
  private closeUnit(extra: { suppressReady?: boolean; onReady?: (failed: boolean) => void } = {}): Unit {
    const answers = this.answers.closeUnit();
    if (answers === null && this.openStatements.length === 0 && !this.openMarked && !extra.suppressReady) {
      return PLAIN_UNIT;
    }
    const unit: Unit = {
      kind: 'upstream',
      suppressReady: extra.suppressReady ?? false,
      onReady: extra.onReady,
      answers,
      statements: this.openStatements,
      marked: this.openMarked,
    };
    this.openStatements = [];
    this.openMarked = false;
    return unit;
  }

  /** A simple Query a plugin answers itself (one mayAnswerLocally let through): queued in its place among the units. */
  private answeredLocally(text: string): boolean {
    const answer = this.plugins.localCommand(this.info, text);
    if (answer === null) return false;
    if (answer instanceof PgError) this.answerLocally(text, () => [errorResponse(answer)], answer.code);
    else this.answerLocally(text, () => localAnswer(answer), null);
    return true;
  }

  /** A COPY … TO STDOUT a plugin refuses (see Plugin.copyOut): the client gets the error in its place. */
  private refusedCopyOut(text: string): boolean {
    const refused = this.plugins.copyOut(this.info, text);
    if (refused === null) return false;
    this.answerLocally(text, () => [errorResponse(refused)], refused.code);
    return true;
  }

  /**
   * Queues the proxy's own answer to a simple Query (a local command, or a statement a plugin
   * denied or answered), or to an Execute of a statement the proxy answers (its unit goes on).
   * While statements are tracked it is a client statement like any other: it starts now and ends
   * when its answer is written.
   */
  private answerLocally(text: string, make: () => Buffer[], errorCode: string | null, protocol: 'simple' | 'extended' = 'simple'): void {
    const endsUnit = protocol === 'simple';
    if (!this.plugins.tracksStatements) {
      this.pushLocal(make, endsUnit);
      return;
    }
    const trace = newTrace(text, protocol);
    this.plugins.statementStart(this.info, trace);
    this.pushLocal(() => {
      const out = make();
      trace.errorCode = errorCode;
      trace.ended = true;
      this.plugins.statementEnd(this.info, trace);
      return out;
    }, endsUnit);
  }

  // ─────────────── statement tracking (spans, the statement behind a result) ───────────────

  private beginTrace(text: string, protocol: 'simple' | 'extended'): void {
    const trace = newTrace(text, protocol);
    this.openStatements.push(trace);
    this.liveTraces++;
    this.plugins.statementStart(this.info, trace);
  }

  private endTrace(trace: StatementTrace): void {
    if (trace.ended) return;
    trace.ended = true;
    this.liveTraces--;
    this.plugins.statementEnd(this.info, trace);
  }

  /** The statement being answered: the first not ended of the oldest unit waiting (or the open one). */
  private currentTrace(): StatementTrace | null {
    if (this.liveTraces === 0) return null;
    const head = this.units[0];
    const list = head ? (head.kind === 'upstream' ? head.statements : undefined) : this.openStatements;
    if (!list) return null;
    for (const t of list) if (!t.ended) return t;
    return null;
  }

  /** A result of the current statement ended: an Execute ends with it; a simple Query at ReadyForQuery. */
  private traceResultEnd(errorCode: string | null): void {
    const t = this.currentTrace();
    if (!t) return;
    if (errorCode !== null) t.errorCode ??= errorCode;
    if (t.protocol === 'extended') this.endTrace(t);
  }

  /** ReadyForQuery: whatever of the unit did not end ran into an earlier error and was skipped. */
  private traceUnitEnd(unit: Unit | undefined): void {
    const list = unit ? (unit.kind === 'upstream' ? unit.statements : undefined) : this.openStatements;
    if (!list) return;
    let error: string | null = null;
    for (const t of list) {
      error = t.errorCode ?? error;
      if (t.ended) continue;
      t.errorCode ??= error;
      this.endTrace(t);
    }
    if (!unit) this.openStatements = [];
  }

  /**
   * An extended-protocol message on its way upstream. While result hooks are active, the answers
   * to Describes and Executes are followed so that each Execute's rows are handled with its own
   * portal's description, and an Execute of a portal not described in its unit gets a Describe of
   * the proxy's own before it, whose answer the client never sees (see portals.ts).
   */
  private extendedFrame(code: number, raw: Buffer, send: Buffer[], tracking: boolean): void {
    if (tracking) this.trackExtended(code, raw);
    if (code === Frontend.Parse && this.plugins.mentionsUnitWord(raw)) this.openMarked = true;
    if (code === Frontend.Describe || code === Frontend.Execute || code === Frontend.Bind || code === Frontend.Close) {
      const own = this.answers.sent(code, raw, this.plugins.resultHooks);
      if (own) send.push(own);
    }
    send.push(raw);
  }

  /** The answers followed of the unit being answered: the oldest unit waiting, or the open one. */
  private answeredUnit(): UnitAnswers | undefined {
    const head = this.units[0];
    return head ? (head.kind === 'upstream' ? head.answers ?? undefined : undefined) : this.answers.openUnit;
  }

  /** Remembers which text each portal runs, and starts a trace at each Execute. */
  private trackExtended(code: number, raw: Buffer): void {
    switch (code) {
      case Frontend.Parse: {
        const p = decodeParse(raw);
        this.statements.set(p.name, p.text);
        break;
      }
      case Frontend.Bind: {
        const b = decodeBindHead(raw);
        this.portals.set(b.portal, this.statements.get(b.statement) ?? '');
        break;
      }
      case Frontend.Execute:
        this.beginTrace(this.portals.get(decodeExecute(raw).portal) ?? '', 'extended');
        break;
      case Frontend.Close: {
        const t = decodeTarget(raw);
        if (t.target === 'P') this.portals.delete(t.name);
        else if (t.name !== '') this.statements.delete(t.name);
        break;
      }
    }
  }

  private clientTerminated(): void {
    if (this.closed) return;
    this.link?.end();
    this.link = null;
    this.close();
  }

  /** Extended messages of the open unit, on their way upstream; false when the upstream is gone. */
  private sendExtended(frames: readonly Buffer[]): boolean {
    const link = this.link;
    if (!link) return false;
    const send: Buffer[] = [];
    const tracking = this.plugins.tracksStatements;
    for (const b of frames) this.extendedFrame(b[0]!, b, send, tracking);
    for (const b of send) link.write(b);
    return true;
  }

  /** Queue an answer made here; it goes out once everything before it was answered. */
  private pushLocal(make: () => Buffer[], endsUnit = true): void {
    const unit: Unit = { kind: 'local', answer: endsUnit ? (status) => [...make(), readyForQuery(status)] : make };
    this.units.push(unit);
    if (this.units.length === 1) this.emitLocalUnits();
  }

  private emitLocalUnits(): void {
    while (this.units.length > 0) {
      const u = this.units[0]!;
      if (u.kind !== 'local') return;
      this.units.shift();
      for (const b of u.answer(this.txStatus)) this.write(b);
    }
    if (this.draining && this.inFlight === 0) this.terminateForShutdown();
  }

  // ───────────────────────────── upstream → client ─────────────────────────────

  private onUpstreamData(chunk: Buffer): void {
    if (this.closed) return;
    let pieces: Piece[];
    this.resultHooksNow = this.plugins.resultHooks;
    try {
      pieces = this.scanner.scan(chunk);
    } catch (err) {
      this.fail(toPgError(err, 'upstream protocol error'));
      return;
    }
    if (this.serverBusy) {
      for (const p of pieces) this.serverBacklog.push(p);
      // Keep reading while a hook works (the upstream goes on producing rows, and the rows that
      // gather become one larger batch), up to a bound; then let TCP push back.
      this.serverBacklogBytes += chunk.length;
      if (this.serverBacklogBytes > MAX_SERVER_BACKLOG) this.link?.pause();
      return;
    }
    this.runServerPieces(pieces);
  }

  private runServerPieces(pieces: Piece[]): void {
    {
      for (let i = 0; i < pieces.length; i++) {
        const p = pieces[i]!;
        let pending: number | { promise: Promise<void> };
        let next = i + 1;
        if (this.batchesInFlight.length > 0 && (p.kind === 'raw' || p.code !== Backend.DataRow)) {
          // What follows a result's rows waits until they were written.
          pending = { promise: this.batchesInFlight.at(-1)! };
          next = i;
        } else if (p.kind === 'raw') {
          if (!this.dropUntilReady) this.write(p.bytes);
          continue;
        } else if (!this.dropUntilReady && this.answers.startsExecute(this.answeredUnit(), p.code)) {
          const opened = this.openExecute();
          if (opened) {
            pending = { promise: opened };
            next = i;
          } else pending = this.serverFrame(p.code, p.raw, pieces, i);
        } else pending = this.serverFrame(p.code, p.raw, pieces, i);
        if (typeof pending === 'number') {
          i = pending;
          continue;
        }
        // An async hook: hold the rest (and new chunks) until it is done.
        this.serverBusy = true;
        this.holdOutput = true;
        if (this.serverBacklogBytes > MAX_SERVER_BACKLOG || this.socket.writableNeedDrain) this.link?.pause();
        const rest = pieces.slice(next);
        void pending.promise.then(
          () => this.resumeServer(rest),
          (err: unknown) => this.fail(toPgError(err, 'result processing failed')),
        );
        return;
      }
    }
  }

  private resumeServer(rest: Piece[]): void {
    this.serverBusy = false;
    this.holdOutput = false;
    if (this.closed) return;
    const backlog = rest.concat(this.serverBacklog);
    this.serverBacklog = [];
    this.serverBacklogBytes = 0;
    if (!this.socket.writableNeedDrain) this.link?.resume();
    if (this.out.length > 0 && !this.flushQueued) this.queueFlush();
    this.runServerPieces(backlog);
  }

  /**
   * Handles one watched message. Returns the index of the last piece consumed when done
   * synchronously, or a promise when a hook must be awaited (the message is then handled).
   */
  private serverFrame(code: number, raw: Buffer, pieces: Piece[], index: number): number | { promise: Promise<void> } {
    switch (code) {
      case Backend.ReadyForQuery: {
        const pending = this.readyForQuery(raw);
        return pending ? { promise: pending } : index;
      }
      case Backend.ParameterStatus: {
        const r = new BodyReader(raw, 5);
        this.info.serverParams.set(r.cstring(), r.cstring());
        this.write(raw);
        return index;
      }
      case Backend.BackendKeyData: {
        this.info.backendPid = raw.readInt32BE(5);
        this.backendSecret = raw.readInt32BE(9);
        this.registry.registerKey(this, this.info.backendPid, this.backendSecret);
        this.write(raw);
        return index;
      }
      case Backend.ErrorResponse: {
        this.unitFailed = true;
        // A FATAL from the server (wrong password, terminated backend) is the client's last word.
        if (isFatal(raw)) this.upstreamSaidFatal = true;
        this.answers.endResult();
        if (this.dropUntilReady) return index;
        this.write(raw);
        if (this.liveTraces === 0 && this.watched === null) return index;
        const error = errorFields(raw);
        const watched = this.watched;
        this.watched = null;
        if (watched) {
          this.info.statement = this.currentTrace();
          void this.plugins.resultError(this.info, watched, error);
        }
        this.traceResultEnd(error.code);
        return index;
      }
      case Backend.EmptyQueryResponse:
        this.write(raw);
        this.answers.endResult();
        this.traceResultEnd(null);
        return index;
      case Backend.PortalSuspended: {
        if (this.dropUntilReady) return index;
        const watched = this.watched;
        this.watched = null;
        this.answers.endResult();
        if (!watched) {
          this.write(raw);
          this.traceResultEnd(null);
          return index;
        }
        return { promise: this.onPortalSuspended(raw, watched) };
      }
      case Backend.RowDescription:
        return { promise: this.onRowDescription(raw, this.answers.take(this.answeredUnit())) };
      case Backend.NoData: {
        const e = this.answers.take(this.answeredUnit());
        if (e?.kind === 'describe' && e.portal) e.portal.fields = 'none';
        if (!e || !(e.kind === 'describe' && e.own)) this.write(raw);
        return index;
      }
      case Backend.DataRow: {
        if (this.dropUntilReady) return index;
        if (!this.answers.resultOpen && this.answeredUnit()?.followed) {
          // Rows of no result the session knows the description of: never served as they are.
          // (Rows of an Execute sent while results were not looked at pass, as they would have a moment earlier.)
          this.abortResult(new PgError(SqlState.InternalError, 'rows arrived for a result whose description the proxy does not know; they were not served'));
          return index;
        }
        if (!this.watched || !this.watched.watchers.some((p) => p.dataRows)) {
          this.write(raw);
          return index;
        }
        // Gather the run of DataRows that follows into one batch, up to a bound.
        const frames: Buffer[] = [raw];
        let bytes = raw.length;
        let j = index + 1;
        for (; j < pieces.length && frames.length < MAX_BATCH_ROWS && bytes < MAX_BATCH_BYTES; j++) {
          const q = pieces[j]!;
          if (q.kind !== 'frame' || q.code !== Backend.DataRow) break;
          frames.push(q.raw);
          bytes += q.raw.length;
        }
        // The batch is handled as one: its pieces leave the list.
        pieces.splice(index + 1, j - 1 - index);
        this.onDataRows(frames);
        // Enough batches at work: the next waits for the oldest to be written.
        return this.batchesInFlight.length < BATCHES_IN_FLIGHT ? index : { promise: this.batchesInFlight[0]! };
      }
      case Backend.CommandComplete:
        if (this.dropUntilReady) return index;
        this.answers.endResult();
        if (!this.resultHooksNow && this.watched === null) {
          this.write(raw);
          this.traceResultEnd(null);
          return index;
        }
        return { promise: this.onCommandComplete(raw) };
      default:
        this.write(raw);
        return index;
    }
  }

  /** Returns a promise when the ReadyForQuery waits for a plugin (see Plugin.unitDone). */
  private readyForQuery(raw: Buffer): Promise<void> | undefined {
    this.txStatus = String.fromCharCode(raw[5]!) as TxStatus;
    this.dropUntilReady = false;
    this.watched = null;
    const unit = this.units[0];
    this.answers.unitDone(unit && unit.kind === 'upstream' ? unit.answers ?? undefined : undefined);
    if (this.liveTraces > 0) this.traceUnitEnd(unit);
    if (this.ready) this.plugins.readyForQuery(this.info, this.txStatus);
    const failed = this.unitFailed;
    this.unitFailed = false;
    if (unit && unit.kind === 'upstream') {
      this.units.shift();
      unit.onReady?.(failed);
      // Only outside a transaction: what it did is committed (or undone), and the proxy's own
      // SQL can run (the embedded backend is held by an open transaction until it ends).
      if (unit.marked && this.txStatus !== 'I') this.markedInTransaction = true;
      if ((unit.marked || this.markedInTransaction) && this.ready && this.txStatus === 'I') {
        this.markedInTransaction = false;
        return this.plugins.unitDone(this.info).then(() => {
          if (!unit.suppressReady) this.write(raw);
          this.emitLocalUnits();
        });
      }
    }
    if (!unit || unit.kind !== 'upstream' || !unit.suppressReady) this.write(raw);
    if (!this.ready) {
      this.ready = true;
      this.serverBusy = true;
      void this.plugins.sessionStart(this.info).then(
        () => this.resumeServer([]),
        (err: unknown) => this.fail(toPgError(err, 'session start failed')),
      );
      return;
    }
    this.emitLocalUnits();
  }

  /**
   * A RowDescription: a simple Query's result starts (no answer followed), or a Describe is
   * answered, whose portal keeps the description for its Executes. The plugins see the client's
   * (not the proxy's own Describes): what they return is what the client gets.
   */
  private async onRowDescription(raw: Buffer, answers: Expected | undefined): Promise<void> {
    if (this.dropUntilReady) return;
    const fields = decodeRowDescription(raw);
    if (answers?.kind === 'execute') {
      this.abortResult(new PgError(SqlState.ProtocolViolation, 'the upstream sent a RowDescription where the rows of an Execute were expected'));
      return;
    }
    if (answers?.portal) answers.portal.fields = fields;
    if (answers?.own) return;
    this.info.statement = this.currentTrace();
    try {
      const r = await this.plugins.rowDescription(this.info, this.newResultId(), fields);
      if (!answers) {
        this.watched = r.watched;
        this.answers.resultOpen = true;
      } else if (answers.portal) this.describedResults.set(answers.portal, r.watched);
      this.write(r.changed ? rowDescription(r.fields) : raw);
    } catch (err) {
      this.abortResult(toPgError(err, 'row description'));
    }
  }

  private newResultId(): { readonly serial: number } {
    return { serial: ++this.resultSerial };
  }

  /**
   * An Execute's answer starts: its result is opened with its own portal's description, as the
   * upstream sent it. Returns a promise when the plugins must be awaited.
   */
  private openExecute(): Promise<void> | undefined {
    const portal = this.answers.openExecute(this.answeredUnit());
    const described = portal && this.describedResults.get(portal);
    this.watched = described ?? null;
    const fields = portal?.fields ?? null;
    // NoData: a statement without rows; unknown: no rows are served (see the DataRow case).
    if (described || fields === null || fields === 'none') {
      if (described) this.describedResults.delete(portal);
      return undefined;
    }
    this.info.statement = this.currentTrace();
    return this.plugins.rowDescription(this.info, this.newResultId(), fields).then(
      (r) => {
        this.watched = r.watched;
      },
      (err: unknown) => this.abortResult(toPgError(err, 'row description')),
    );
  }

  private async onPortalSuspended(raw: Buffer, watched: WatchedResult): Promise<void> {
    this.info.statement = this.currentTrace();
    try {
      await this.plugins.portalSuspended(this.info, watched);
      this.write(raw);
      this.traceResultEnd(null);
    } catch (err) {
      this.abortResult(toPgError(err, 'portal suspended'));
    }
  }

  /**
   * Hands a batch to the plugins and writes what they return once the batches before it were
   * written. The first batch to fail ends the result; the ones after it are dropped.
   */
  private onDataRows(frames: Buffer[]): void {
    const watched = this.watched;
    if (!watched) return;
    this.info.statement = this.currentTrace();
    let work: Promise<RowBatch | null>;
    try {
      work = this.plugins.dataRows(this.info, watched, RowBatch.fromFrames(frames));
    } catch (err) {
      work = Promise.reject(err);
    }
    const before = this.batchesInFlight.at(-1);
    const done = work.then(
      async (out) => {
        await before;
        this.batchesInFlight.shift();
        if (this.dropUntilReady) return;
        if (out === null) for (const f of frames) this.write(f);
        // One buffer for the whole batch: a write per row would cost a syscall per row.
        else this.write(out.encode());
      },
      async (err: unknown) => {
        await before;
        this.batchesInFlight.shift();
        if (!this.dropUntilReady) this.abortResult(toPgError(err, 'data rows'));
      },
    );
    this.batchesInFlight.push(done);
  }

  private async onCommandComplete(raw: Buffer): Promise<void> {
    const tag = new BodyReader(raw, 5).cstring();
    const watched = this.watched;
    this.watched = null;
    this.info.statement = this.currentTrace();
    try {
      const out = await this.plugins.commandComplete(this.info, watched, tag);
      for (const n of out.notices) this.write(errorResponse(n, true));
      this.write(out.tag === tag ? raw : commandComplete(out.tag));
      this.traceResultEnd(null);
    } catch (err) {
      this.abortResult(toPgError(err, 'command complete'));
    }
  }

  /** A result a plugin refused: the client gets the error in its place, never a partial result. */
  private abortResult(err: PgError): void {
    this.write(errorResponse(err));
    this.dropUntilReady = true;
    const watched = this.watched;
    this.watched = null;
    if (watched) void this.plugins.resultError(this.info, watched, err);
    this.traceResultEnd(err.code);
  }

  private onUpstreamClosed(error?: Error): void {
    if (this.closed) return;
    this.link = null;
    if (this.upstreamSaidFatal) {
      this.close();
      return;
    }
    if (error || this.inFlight > 0 || !this.ready) {
      const reason = error ? `: ${error.message}` : '';
      this.fail(new PgError(SqlState.ConnectionFailure, `the upstream connection was lost${reason}`, 'FATAL'));
    } else {
      this.fail(new PgError(SqlState.AdminShutdown, 'terminating connection because the upstream closed it', 'FATAL'));
    }
  }

  // ───────────────────────────── both ─────────────────────────────

  /**
   * Output is gathered during one turn of the event loop and written once: adjacent pieces of
   * the same upstream chunk become one write again, so a pass-through answer costs one syscall.
   */
  private write(b: Buffer): void {
    if (this.closed) return;
    this.out.push(b);
    this.outBytes += b.length;
    // While a result hook works, what it wrote waits for it to finish: then it leaves together with
    // what follows in the same upstream chunk (a CommandComplete with its ReadyForQuery).
    if (!this.flushQueued && !this.serverBusy) this.queueFlush();
  }

  private queueFlush(): void {
    this.flushQueued = true;
    queueMicrotask(() => this.flushOut());
  }

  private flushOut(force = false): void {
    this.flushQueued = false;
    // resumeServer flushes once the hook is done (or the next write past the bound does).
    if (!force && this.holdOutput && this.outBytes < HOLD_OUTPUT_BYTES) return;
    const out = this.out;
    this.out = [];
    this.outBytes = 0;
    if (this.socket.destroyed) return;
    const pieces = coalesce(out);
    let ok = true;
    if (pieces.length === 1) {
      ok = this.socket.write(pieces[0]!);
    } else {
      // Pieces from different buffers (rows a plugin rewrote between upstream bytes): corked, they
      // leave in one writev rather than one write each.
      this.socket.cork();
      for (const b of pieces) ok = this.socket.write(b) && ok;
      this.socket.uncork();
    }
    if (!ok) this.link?.pause();
  }

  /** Send an error; a FATAL one (or any before login) ends the session. */
  fail(err: PgError): void {
    if (this.closed) return;
    if (!err.fatal && this.ready) {
      this.write(errorResponse(err));
      return;
    }
    const fatal = err.fatal ? err : new PgError(err.code, err.message, 'FATAL', err.fields);
    this.write(errorResponse(fatal));
    this.close(fatal.message);
  }

  close(reason?: string): void {
    if (this.closed) return;
    this.flushOut(true);
    this.closed = true;
    if (reason) this.opts.log(`session ${this.info.id}: ${reason}`);
    if (this.link) {
      this.link.write(encodeSimple(Frontend.Terminate));
      this.link.end();
      this.link = null;
    }
    this.socket.end();
    this.socket.destroySoon?.();
    this.registry.removed(this);
    if (this.liveTraces > 0) {
      // Statements cut short by the end of the session: their spans end as failed.
      for (const t of [...this.units.flatMap((u) => (u.kind === 'upstream' ? u.statements ?? [] : [])), ...this.openStatements]) {
        t.errorCode ??= SqlState.ConnectionFailure;
        this.endTrace(t);
      }
    }
    if (this.ready) void this.plugins.sessionEnd(this.info);
  }
}

/** Merge buffers that are adjacent views of one underlying chunk back into one view. */
export function coalesce(list: readonly Buffer[]): Buffer[] {
  if (list.length < 2) return list as Buffer[];
  const out: Buffer[] = [];
  let cur = list[0]!;
  for (let i = 1; i < list.length; i++) {
    const b = list[i]!;
    if (b.buffer === cur.buffer && cur.byteOffset + cur.length === b.byteOffset) {
      cur = Buffer.from(cur.buffer, cur.byteOffset, cur.length + b.length);
    } else {
      out.push(cur);
      cur = b;
    }
  }
  out.push(cur);
  return out;
}

/** The SQLSTATE (C) and message (M) of an ErrorResponse. */
function errorFields(raw: Buffer): { code: string; message: string } {
  const r = new BodyReader(raw, 5);
  let code = '';
  let message = '';
  while (r.remaining > 1) {
    const f = r.int8();
    if (f === 0) break;
    const value = r.cstring();
    if (f === 0x43) code = value;
    else if (f === 0x4d) message = value;
  }
  return { code, message };
}

/** ErrorResponse fields are (code byte, cstring) pairs; V (or S) is the severity. */
function isFatal(raw: Buffer): boolean {
  const r = new BodyReader(raw, 5);
  while (r.remaining > 1) {
    const code = r.int8();
    if (code === 0) break;
    const value = r.cstring();
    if (code === 0x56 || code === 0x53) return value === 'FATAL' || value === 'PANIC';
  }
  return false;
}

/** RowDescription: Int16 count, then per field name, table OID, attnum, type OID, typlen, typmod, format. */
export function decodeRowDescription(raw: Buffer): FieldDescription[] {
  const r = new BodyReader(raw, 5);
  const n = r.int16();
  const fields: FieldDescription[] = [];
  for (let i = 0; i < n; i++) {
    fields.push({
      name: r.cstring(),
      tableID: r.uint32(),
      columnID: r.int16(),
      dataTypeID: r.uint32(),
      dataTypeSize: r.int16(),
      dataTypeModifier: r.int32(),
      format: r.int16() === 1 ? 1 : 0,
    });
  }
  return fields;
}

/** A client statement starting now. */
function newTrace(text: string, protocol: 'simple' | 'extended'): StatementTrace {
  return { text, protocol, startedAt: performance.timeOrigin + performance.now(), errorCode: null, ended: false, pluginState: new Map() };
}
