/**
 * A real PostgreSQL server over TCP. The client's startup packet is relayed and the client logs
 * in as itself, so the server's privileges apply. Its password exchange is relayed, or, with an
 * auth query, completed by the proxy on each leg (see auth/proxied-login.ts).
 */
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { PgError, SqlState } from '../errors.js';
import { encodeCancel, encodeSSLRequest, encodeStartup, type StartupMessage } from '../wire/frontend-messages.js';
import type { ClientConversation, ClientEndpoint, LinkEvents, Upstream, UpstreamLink } from './link.js';
import { FrameQueue } from '../auth/frame-queue.js';
import { proxiedLogin } from '../auth/proxied-login.js';
import { peerBinding } from '../auth/channel-binding.js';
import { AuthQuery } from '../auth/auth-query.js';
import { DowngradeGuard } from '../auth/downgrade-guard.js';

export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';
const SSL_MODES: readonly SslMode[] = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];

export interface RemoteTarget {
  readonly host: string;
  readonly port: number;
  readonly sslmode: SslMode;
  readonly sslrootcert: string | undefined;
  /** The database named in the URL: the proxy's own default, clients still choose theirs. */
  readonly database: string | undefined;
  readonly connectTimeoutMs: number;
}

export function parseUpstreamUrl(url: string): RemoteTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`invalid upstream URL "${url}": expected postgres://HOST:PORT/DB?sslmode=...`);
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new Error(`invalid upstream URL "${url}": the scheme must be postgres:// or postgresql://`);
  }
  const mode = (u.searchParams.get('sslmode') ?? 'prefer') as SslMode;
  if (!SSL_MODES.includes(mode)) throw new Error(`invalid sslmode "${mode}": use one of ${SSL_MODES.join(', ')}`);
  const timeout = Number(u.searchParams.get('connect_timeout') ?? '10');
  const db = decodeURIComponent(u.pathname.replace(/^\//, ''));
  return {
    host: u.hostname.replace(/^\[|\]$/g, '') || 'localhost',
    port: u.port ? Number(u.port) : 5432,
    sslmode: mode,
    sslrootcert: u.searchParams.get('sslrootcert') ?? undefined,
    database: db === '' ? undefined : db,
    connectTimeoutMs: Number.isFinite(timeout) && timeout > 0 ? timeout * 1000 : 10_000,
  };
}

function connectError(target: RemoteTarget, detail: string): PgError {
  return new PgError(
    SqlState.SqlclientUnableToEstablishSqlconnection,
    `could not connect to the upstream server at ${target.host}:${target.port}: ${detail}`,
    'FATAL',
  );
}

/**
 * The buffer every plain upstream connection reads into. One is enough: the event loop reads one
 * socket at a time, and each read is copied out before the callback returns.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 << 10);

/**
 * Where a plain (never TLS) upstream connection's reads go. Such a connection reads with `onread`
 * into READ_BUFFER, and each read is copied out at its exact size (a small one from Node's shared
 * pool): otherwise every read allocates a 64 KiB buffer and goes through the stream machinery, a
 * good part of the proxy's own cost of relaying a short query.
 */
class PlainReads {
  private handler: ((chunk: Buffer) => void) | null = null;
  private early: Buffer[] = [];
  readonly onread = {
    buffer: READ_BUFFER,
    callback: (n: number, buf: Uint8Array): boolean => {
      const chunk = Buffer.allocUnsafe(n);
      chunk.set(buf.subarray(0, n));
      if (this.handler) this.handler(chunk);
      else this.early.push(chunk);
      return true;
    },
  };

  deliverTo(handler: (chunk: Buffer) => void): void {
    this.handler = handler;
    for (const chunk of this.early.splice(0)) handler(chunk);
  }
}

/**
 * Open a TCP connection and, as the sslmode says, upgrade it to TLS. `reads` is given for a
 * connection that stays plain (sslmode disable or allow) and the proxy reads from.
 */
async function openSocket(target: RemoteTarget, reads?: PlainReads): Promise<net.Socket> {
  const sock = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host: target.host, port: target.port, ...(reads ? { onread: reads.onread } : {}) });
    const timer = setTimeout(() => s.destroy(new Error('timeout expired')), target.connectTimeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(connectError(target, err.message));
    });
  });
  sock.setNoDelay(true);
  sock.setKeepAlive(true, 60_000);
  if (target.sslmode === 'disable' || target.sslmode === 'allow') return sock;

  // SSLRequest is answered by a single byte: 'S' (go ahead with TLS) or 'N'.
  const answer = await new Promise<number>((resolve, reject) => {
    sock.once('data', (b: Buffer) => {
      if (b.length !== 1) reject(connectError(target, 'unexpected answer to SSLRequest'));
      else resolve(b[0]!);
    });
    sock.once('error', (err) => reject(connectError(target, err.message)));
    sock.write(encodeSSLRequest());
  });
  sock.removeAllListeners('error');
  if (answer !== 0x53) {
    if (target.sslmode === 'prefer') return sock;
    sock.destroy();
    throw connectError(target, `sslmode=${target.sslmode} but the server does not support SSL`);
  }
  const verify = target.sslmode === 'verify-ca' || target.sslmode === 'verify-full';
  const opts: tls.ConnectionOptions = {
    socket: sock,
    servername: net.isIP(target.host) ? undefined : target.host,
    rejectUnauthorized: verify,
  };
  if (target.sslrootcert) opts.ca = readFileSync(target.sslrootcert);
  if (target.sslmode === 'verify-ca') opts.checkServerIdentity = () => undefined;
  return await new Promise<net.Socket>((resolve, reject) => {
    const t = tls.connect(opts, () => {
      t.removeAllListeners('error');
      resolve(t);
    });
    t.once('error', (err) => reject(connectError(target, `SSL error: ${err.message}`)));
  });
}

class RemoteLink implements UpstreamLink {
  private error: Error | undefined;

  /** `first`: server bytes the login read that go to the client before anything else. */
  constructor(private readonly sock: net.Socket, private readonly target: RemoteTarget, events: LinkEvents, reads: PlainReads | null, first: readonly Buffer[] = []) {
    for (const b of first) events.data(b);
    if (reads) reads.deliverTo(events.data);
    else sock.on('data', events.data);
    sock.on('drain', events.drain);
    sock.on('error', (err) => {
      this.error = err;
    });
    sock.on('close', () => events.close(this.error));
  }

  write(frames: Buffer): boolean {
    if (this.sock.destroyed) return true;
    return this.sock.write(frames);
  }

  pause(): void {
    this.sock.pause();
  }

  resume(): void {
    this.sock.resume();
  }

  cancel(pid: number, secret: number): void {
    sendCancel(this.target, pid, secret);
  }

  end(): void {
    this.sock.end();
  }

  destroy(): void {
    this.sock.destroy();
  }
}

/** A CancelRequest goes on a connection of its own, which the server closes. */
function sendCancel(target: RemoteTarget, pid: number, secret: number): void {
  openSocket(target).then(
    (s) => {
      s.on('error', () => undefined);
      s.end(encodeCancel(pid, secret));
    },
    () => undefined,
  );
}

export interface RemoteOptions {
  /** The auth query (see auth/auth-query.ts); null: password logins are relayed as a whole. */
  readonly authQuery: string | null;
  readonly log: (msg: string) => void;
}

export class RemoteUpstream implements Upstream {
  readonly target: RemoteTarget;
  private readonly authQuery: AuthQuery | null;
  private readonly guard = new DowngradeGuard();

  constructor(url: string, opts: RemoteOptions = { authQuery: null, log: () => undefined }) {
    this.target = parseUpstreamUrl(url);
    this.authQuery = opts.authQuery === null ? null : new AuthQuery(url, this.target, opts.authQuery, opts.log);
  }

  describe(): string {
    const logins = this.authQuery ? 'password logins completed with the auth query' : 'logins relayed';
    return `PostgreSQL at ${this.target.host}:${this.target.port} (sslmode=${this.target.sslmode}, ${logins})`;
  }

  async connect(startup: StartupMessage, client: ClientEndpoint, events: LinkEvents, conversation?: ClientConversation): Promise<UpstreamLink> {
    const plain = this.target.sslmode === 'disable' || this.target.sslmode === 'allow';
    const reads = plain ? new PlainReads() : null;
    const user = startup.params.get('user') ?? '';
    const database = startup.params.get('database') ?? user;
    if (!client.tls && this.guard.isRetry(client.address, user, database)) {
      throw new PgError(SqlState.InvalidAuthorizationSpecification, 'refusing an unencrypted retry of a login the proxy refused over TLS', 'FATAL', {
        hint: 'Connect with sslmode=require and channel_binding=disable, or let the proxy\'s login run its auth query.',
      });
    }
    const sock = await openSocket(this.target, reads ?? undefined);
    if (!conversation) {
      const link = new RemoteLink(sock, this.target, events, reads);
      sock.write(encodeStartup(startup.params, startup.protocol));
      return link;
    }
    const server = new FrameQueue('server', 1 << 20, 'the upstream server closed the connection during authentication');
    const lost = (): void => server.fail();
    if (reads) reads.deliverTo(server.push);
    else sock.on('data', server.push);
    sock.on('close', lost);
    sock.on('error', lost);
    sock.write(encodeStartup(startup.params, startup.protocol));
    let first: Buffer[];
    try {
      first = await proxiedLogin({
        user,
        client: conversation,
        server,
        writeServer: (msg) => sock.write(msg),
        serverBinding: sock instanceof tls.TLSSocket ? peerBinding(sock) : null,
        lookup: this.authQuery?.secret ?? null,
        bindingRefused: () => this.guard.refused(client.address, user, database),
      });
    } catch (err) {
      // A close during the password exchange is one the server does not log.
      sock.destroy();
      throw err;
    }
    const rest = server.handOver();
    if (!reads) sock.off('data', server.push);
    sock.off('close', lost);
    sock.off('error', lost);
    return new RemoteLink(sock, this.target, events, reads, [...first, ...rest]);
  }

  async close(): Promise<void> {
    // Nothing pooled: each session owns its connection.
    await this.authQuery?.close();
  }
}
