/**
 * One client connection after its startup packet: relays the protocol between the client
 * socket and an upstream link, and gives plugins their say on statements and results.
 *
 * Reading order of the data path:
 *   client bytes → onClientData (framed, checked) → statement hooks (statement-path.ts) → link.write
 *   link data → ServerRelay (server-relay.ts: scanned; only watched messages decoded)
 *             → ResultStream (result-stream.ts: result hooks, row batches) → ClientOutput → client
 *
 * A request unit is what ends with one ReadyForQuery: a simple Query, a FunctionCall, or the
 * extended-protocol messages up to Sync. Units are kept in order (session-parts.ts) so that
 * answers the proxy makes itself (a denied statement, a locally answered one) reach the client in
 * the place where the upstream's answer would have been.
 */
import type { Socket } from 'node:net';
import { PgError, SqlState, toPgError } from './errors.js';
import { clientInputError } from './client-input-error.js';
import { FRONTEND_CODES, Frontend } from './wire/codes.js';
import { Framer } from './wire/framer.js';
import { errorResponse, type TxStatus } from './wire/backend-messages.js';
import { checkQuery, decodeQuery, encodeSimple, type StartupMessage } from './wire/frontend-messages.js';
import type { ClientEndpoint, Upstream, UpstreamLink } from './upstream/link.js';
import type { PluginHost } from '../plugins/host.js';
import { ClientChannel } from './auth/client-channel.js';
import { AnswerFollower } from './portals.js';
import { StatementPath } from './statement-path.js';
import { localAnswer } from './statement-steps.js';
import { ClientOutput, coalesce } from './client-output.js';
import { StatementTraces } from './statement-traces.js';
import { ServerRelay } from './server-relay.js';
import type { SessionParts, SessionState, Unit } from './session-parts.js';
import { RequestUnits } from './request-units.js';

export interface SessionOptions {
  readonly maxMessageSize: number;
  readonly log: (msg: string) => void;
}

export interface SessionRegistry {
  /** The backend key the client was given, so CancelRequests can find this session. */
  registerKey(session: Session, pid: number, secret: number): void;
  removed(session: Session): void;
}

let nextSessionId = 1;

export class Session implements SessionParts {
  readonly info: SessionState;
  link: UpstreamLink | null = null;
  private readonly framer: Framer;
  readonly units: Unit[] = [];
  /** Extended messages of the unit not yet closed by a Sync went upstream by the fast path. */
  private openForwarded = false;
  private closed = false;
  private draining = false;
  private backendSecret = 0;
  /** Statement texts by name, so a Bind hook can see what it binds. */
  private readonly statements = new Map<string, string>();
  private readonly path: StatementPath;

  /** Client input waiting for an async hook to finish; order is kept. */
  private clientBacklog: Buffer[] = [];
  private clientBusy = false;
  /** The upstream link refused more (write returned false): the client is not read until it drains. */
  private upstreamBlocked = false;

  /** Which portal's description each Execute's rows have (see extendedFrame). */
  readonly answers = new AnswerFollower();
  readonly traces: StatementTraces;
  readonly output: ClientOutput;
  private readonly relay: ServerRelay;
  private readonly requests: RequestUnits;

  constructor(
    private readonly socket: Socket,
    readonly startup: StartupMessage,
    private readonly client: ClientEndpoint,
    readonly plugins: PluginHost,
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
      answerStatement: (text, make, errorCode, protocol) => this.requests.answer(text, make, errorCode, protocol),
      sendQuery: (raw, rewritten, text) => {
        if (this.plugins.tracksStatements) this.traces.begin(text, 'simple');
        if (this.plugins.mentionsUnitWord(raw)) this.requests.openMarked = true;
        this.requests.close();
        this.writeUpstream(rewritten);
      },
      sendExtended: (frames) => this.sendExtended(frames),
      flush: (raw) => this.writeUpstream(raw),
      endUnit: (sync, onReady) => {
        this.requests.close({ suppressReady: onReady !== undefined, onReady });
        this.writeUpstream(sync);
      },
      pushLocal: (make, endsUnit) => this.requests.pushLocal(make, endsUnit ?? true),
    });
    this.framer = new Framer({ maxMessageSize: opts.maxMessageSize, codes: FRONTEND_CODES, peer: 'client' });
    this.traces = new StatementTraces(plugins, this.info, this.statements, this.units);
    this.output = new ClientOutput(socket, this);
    this.relay = new ServerRelay(this, this);
    this.requests = new RequestUnits(this.units, plugins, this.answers, this.traces, this.output, this);
  }

  /** Connect upstream and start relaying. `early` holds client bytes that came with the startup packet. */
  async start(upstream: Upstream, early: Buffer): Promise<void> {
    const sock = this.socket;
    sock.on('error', (err) => this.close(`client socket error: ${err.message}`));
    sock.on('close', () => this.close());
    const login = new ClientChannel(sock, early, this.opts.maxMessageSize);
    try {
      this.link = await upstream.connect(this.startup, this.client, {
        data: (chunk) => this.relay.data(chunk),
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
    this.output.write(errorResponse(new PgError(SqlState.AdminShutdown, 'terminating connection due to administrator command', 'FATAL')));
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
      if (!this.relay.ready || !this.path.wanted(frames)) {
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
    const tracking = this.relay.ready && this.plugins.tracksStatements;
    for (const f of frames) {
      if (f.code === Frontend.Terminate) {
        for (const b of coalesce(send)) link.write(b);
        this.clientTerminated();
        return;
      }
      if (!this.relay.ready) {
        send.push(f.raw);
        continue;
      }
      if (f.code === Frontend.Query) {
        if (this.plugins.mentionsUnitWord(f.raw)) this.requests.openMarked = true;
        const local = this.plugins.mayAnswerLocally(f.raw);
        const copy = this.plugins.mayCopyOut(f.raw);
        if (local || copy) {
          const text = decodeQuery(f.raw);
          if ((local && this.answeredLocally(text)) || (copy && this.refusedCopyOut(text))) continue;
        }
        // The text is decoded when a plugin reads it; a frame it would fail on ends the session here.
        if (tracking) this.traces.begin(checkQuery(f.raw), 'simple');
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
      this.requests.close();
      this.openForwarded = false;
    } else if (code === Frontend.Parse || code === Frontend.Bind || code === Frontend.Describe || code === Frontend.Execute || code === Frontend.Close) {
      this.openForwarded = true;
    }
  }

  /** A simple Query a plugin answers itself (one mayAnswerLocally let through): queued in its place among the units. */
  private answeredLocally(text: string): boolean {
    const answer = this.plugins.localCommand(this.info, text);
    if (answer === null) return false;
    if (answer instanceof PgError) this.requests.answer(text, () => [errorResponse(answer)], answer.code);
    else this.requests.answer(text, () => localAnswer(answer), null);
    return true;
  }

  /** A COPY … TO STDOUT a plugin refuses (see Plugin.copyOut): the client gets the error in its place. */
  private refusedCopyOut(text: string): boolean {
    const refused = this.plugins.copyOut(this.info, text);
    if (refused === null) return false;
    this.requests.answer(text, () => [errorResponse(refused)], refused.code);
    return true;
  }

  /**
   * An extended-protocol message on its way upstream. While result hooks are active, the answers
   * to Describes and Executes are followed so that each Execute's rows are handled with its own
   * portal's description, and an Execute of a portal not described in its unit gets a Describe of
   * the proxy's own before it, whose answer the client never sees (see portals.ts).
   */
  private extendedFrame(code: number, raw: Buffer, send: Buffer[], tracking: boolean): void {
    if (tracking) this.traces.extended(code, raw);
    if (code === Frontend.Parse && this.plugins.mentionsUnitWord(raw)) this.requests.openMarked = true;
    if (code === Frontend.Describe || code === Frontend.Execute || code === Frontend.Bind || code === Frontend.Close) {
      const own = this.answers.sent(code, raw, this.plugins.resultHooks);
      if (own) send.push(own);
    }
    send.push(raw);
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
    for (const b of send) this.writeUpstream(b);
    return true;
  }

  /**
   * A write of the statement path: when the upstream stops taking bytes, the client is not read
   * again (the path resumes it only while upstreamBlocked is clear) until the link drains.
   */
  private writeUpstream(b: Buffer): void {
    if (this.link && !this.link.write(b)) this.upstreamBlocked = true;
  }

  // ───────────────────────────── upstream → client (server-relay.ts) ─────────────────────────────

  get txStatus(): TxStatus {
    return this.relay.txStatus;
  }

  emitLocalUnits(): void {
    this.requests.emitLocal();
  }

  localsWritten(): void {
    if (this.draining && this.inFlight === 0) this.terminateForShutdown();
  }

  get serverBusy(): boolean {
    return this.relay.busy;
  }

  get clientNeedsDrain(): boolean {
    return this.socket.writableNeedDrain;
  }

  pauseUpstream(): void {
    this.link?.pause();
  }

  keyData(pid: number, secret: number): void {
    this.info.backendPid = pid;
    this.backendSecret = secret;
    this.registry.registerKey(this, pid, secret);
  }

  private onUpstreamClosed(error?: Error): void {
    if (this.closed) return;
    this.link = null;
    if (this.relay.saidFatal) {
      this.close();
      return;
    }
    if (error || this.inFlight > 0 || !this.relay.ready) {
      const reason = error ? `: ${error.message}` : '';
      this.fail(new PgError(SqlState.ConnectionFailure, `the upstream connection was lost${reason}`, 'FATAL'));
    } else {
      this.fail(new PgError(SqlState.AdminShutdown, 'terminating connection because the upstream closed it', 'FATAL'));
    }
  }

  // ───────────────────────────── both ─────────────────────────────

  /** Send an error; a FATAL one (or any before login) ends the session. */
  fail(err: PgError): void {
    if (this.closed) return;
    if (!err.fatal && this.relay.ready) {
      this.output.write(errorResponse(err));
      return;
    }
    const fatal = err.fatal ? err : new PgError(err.code, err.message, 'FATAL', err.fields);
    this.output.write(errorResponse(fatal));
    this.close(fatal.message);
  }

  close(reason?: string): void {
    if (this.closed) return;
    this.output.flush(true);
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
    // Statements cut short by the end of the session: their spans end as failed.
    this.traces.cutShort();
    if (this.relay.ready) void this.plugins.sessionEnd(this.info);
  }
}
