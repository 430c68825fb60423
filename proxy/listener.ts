/**
 * Accepts client connections and handles what comes before a session: SSLRequest (TLS toward
 * the client when configured), GSSENCRequest, CancelRequest routing, and the StartupMessage.
 * Owns the set of live sessions, and the graceful shutdown.
 */
import net from 'node:net';
import tls from 'node:tls';
import { PgError, SqlState } from './errors.js';
import { StartupCode } from './wire/codes.js';
import { Framer } from './wire/framer.js';
import { errorResponse } from './wire/backend-messages.js';
import { decodeCancel, decodeStartup } from './wire/frontend-messages.js';
import { Session, type SessionRegistry } from './session.js';
import type { Upstream } from './upstream/link.js';
import type { PluginHost } from '../plugins/host.js';
import { cancelRequested } from '../plugins/cancel.js';
import { UnixSocketListener } from './unix-socket.js';
import type { OwnConnections } from './own-connections.js';

export interface ListenerOptions {
  readonly host: string;
  readonly port: number;
  readonly tls: tls.SecureContext | null;
  readonly maxMessageSize: number;
  /** How long a client may take to send its startup packet. */
  readonly startupTimeoutMs: number;
  readonly log: (msg: string) => void;
  /** Also listen on DIR/.s.PGSQL.<port> (see unix-socket.ts). */
  readonly unixSocketDir?: string;
  /** Named in the Unix socket's lock file. */
  readonly dataDir?: string;
  /** Connections of this process's own, opened for someone whose address their sessions carry. */
  readonly ownConnections?: OwnConnections;
}

/** Who is on the other end of a connection, for the session and its records. */
interface Peer {
  readonly address: string;
  readonly port: number;
  /** A Unix-socket client: no TLS, as a server offers none there. */
  readonly local: boolean;
  /** The listener's end of a TCP connection. */
  readonly server?: { readonly address: string; readonly port: number };
}

/** A Unix-socket client's address, as pg_stat_activity's client_port (-1) shows one. */
const LOCAL_PEER: Peer = { address: 'local', port: -1, local: true };

export class Listener implements SessionRegistry {
  private readonly server: net.Server;
  private unix: UnixSocketListener | null = null;
  private readonly sessions = new Set<Session>();
  private readonly byKey = new Map<string, Session>();
  private shuttingDown = false;

  constructor(
    private readonly upstream: Upstream,
    private readonly plugins: PluginHost,
    private readonly opts: ListenerOptions,
  ) {
    this.server = net.createServer((sock) => this.accept(sock));
    this.server.on('error', (err) => opts.log(`listener error: ${err.message}`));
  }

  async listen(): Promise<net.AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.server.address() as net.AddressInfo;
    if (this.opts.unixSocketDir !== undefined) {
      try {
        this.unix = await UnixSocketListener.open(this.opts.unixSocketDir, address.port, (sock) => this.accept(sock, LOCAL_PEER), this.opts.dataDir ?? '');
      } catch (err) {
        await new Promise<void>((r) => this.server.close(() => r()));
        throw err;
      }
    }
    return address;
  }

  /** The Unix socket's path, when the proxy listens on one. */
  get unixSocketPath(): string | undefined {
    return this.unix?.path;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  registerKey(session: Session, pid: number, secret: number): void {
    this.byKey.set(`${pid}:${secret}`, session);
  }

  removed(session: Session): void {
    this.sessions.delete(session);
    for (const [k, s] of this.byKey) if (s === session) this.byKey.delete(k);
  }

  private accept(raw: net.Socket, peer?: Peer): void {
    if (!peer) {
      raw.setNoDelay(true);
      raw.setKeepAlive(true, 60_000);
    }
    this.negotiate(raw, false, peer ?? {
      address: raw.remoteAddress ?? '', port: raw.remotePort ?? 0, local: false,
      server: { address: raw.localAddress ?? '', port: raw.localPort ?? 0 },
    });
  }

  /**
   * Read startup-phase packets until a StartupMessage (or a CancelRequest) arrives. As the server
   * does: a packet of impossible length, or a CancelRequest, is answered by closing the
   * connection without a word; a StartupMessage that cannot be read gets a FATAL ErrorResponse.
   */
  private negotiate(sock: net.Socket, encrypted: boolean, peer: Peer): void {
    const framer = new Framer({ maxMessageSize: this.opts.maxMessageSize, peer: 'client' }, true);
    const timer = setTimeout(() => sock.destroy(), this.opts.startupTimeoutMs);
    const fail = (err: PgError): void => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.end(errorResponse(err));
    };
    const drop = (): void => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.destroy();
    };
    const onData = (chunk: Buffer): void => {
      let frames;
      try {
        frames = framer.push(chunk, true);
      } catch {
        drop();
        return;
      }
      const first = frames[0];
      if (!first) return;
      try {
        this.startupPacket(sock, first.raw, framer, encrypted, peer, { fail, drop, onData, timer });
      } catch (err) {
        if (err instanceof PgError) fail(err);
        else {
          this.opts.log(`startup packet from ${peer.address}: ${err instanceof Error ? err.message : String(err)}`);
          drop();
        }
      }
    };
    sock.on('data', onData);
    sock.on('error', () => sock.destroy());
  }

  /** One whole startup-phase packet. Throws a PgError for the client, or anything else to drop it. */
  private startupPacket(
    sock: net.Socket, raw: Buffer, framer: Framer, encrypted: boolean, peer: Peer,
    on: { fail(err: PgError): void; drop(): void; onData(chunk: Buffer): void; timer: NodeJS.Timeout },
  ): void {
    const { fail } = on;
    const code = raw.readInt32BE(4);
    if (code === StartupCode.SSLRequest || code === StartupCode.GSSENCRequest) {
      if (framer.buffered > 0) {
        // Bytes after an SSLRequest, before the answer, could be injected by a third party.
        fail(new PgError(SqlState.ProtocolViolation, 'received unencrypted data after SSL request', 'FATAL'));
        return;
      }
      sock.off('data', on.onData);
      clearTimeout(on.timer);
      if (code === StartupCode.SSLRequest && this.opts.tls && !encrypted && !peer.local) {
        sock.write('S');
        const secure = new tls.TLSSocket(sock, { isServer: true, secureContext: this.opts.tls });
        secure.on('error', () => secure.destroy());
        Object.defineProperty(secure, 'remoteAddress', { value: peer.address });
        this.negotiate(secure, true, peer);
      } else {
        sock.write('N');
        this.negotiate(sock, encrypted, peer);
      }
      return;
    }
    if (code === StartupCode.CancelRequest) {
      const key = decodeCancel(raw);
      const session = key ? this.byKey.get(`${key.pid}:${key.secret}`) : undefined;
      if (session) {
        session.cancel();
        cancelRequested(this.plugins, session.info, this.opts.log);
      }
      on.drop();
      return;
    }
    if (code >> 16 !== 3) {
      fail(new PgError(SqlState.FeatureNotSupported, `unsupported frontend protocol ${code >> 16}.${code & 0xffff}: server supports 3.0`, 'FATAL'));
      return;
    }
    if (this.shuttingDown) {
      fail(new PgError(SqlState.CannotConnectNow, 'the database system is shutting down', 'FATAL'));
      return;
    }
    const startup = decodeStartup(raw);
    if (!startup.params.get('user')) {
      fail(new PgError(SqlState.InvalidAuthorizationSpecification, 'no PostgreSQL user name specified in startup packet', 'FATAL'));
      return;
    }
    sock.off('data', on.onData);
    clearTimeout(on.timer);
    // Asked only now: the process's own client vouches for its connection before its startup packet.
    const caller = peer.server ? this.opts.ownConnections?.callerOf(peer, peer.server) ?? null : null;
    const shown = caller ?? peer;
    const session = new Session(sock, startup, { address: shown.address, port: shown.port, tls: encrypted }, this.plugins, this, {
      maxMessageSize: this.opts.maxMessageSize,
      log: this.opts.log,
    });
    this.sessions.add(session);
    void session.start(this.upstream, framer.drain());
  }

  /**
   * Stop accepting; let running statements finish; close idle sessions as a server shutdown does
   * (FATAL 57P01). Whatever still runs after the timeout is cancelled and closed.
   */
  async shutdown(timeoutMs: number): Promise<void> {
    this.shuttingDown = true;
    const closed = Promise.all([new Promise<void>((r) => this.server.close(() => r())), this.unix?.close()]);
    for (const s of this.sessions) s.drain();
    const deadline = Date.now() + timeoutMs;
    while (this.sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const s of [...this.sessions]) {
      s.cancel();
      s.fail(new PgError(SqlState.AdminShutdown, 'terminating connection due to administrator command', 'FATAL'));
    }
    await closed;
  }
}
