/**
 * What a session talks to: one backend connection, real or embedded. The session writes
 * client→server protocol bytes and receives server→client bytes, with flow control both ways.
 */
import type { StartupMessage } from '../wire/frontend-messages.js';
import type { Frame } from '../wire/framer.js';

export interface LinkEvents {
  /** Server→client protocol bytes, in order. */
  data(chunk: Buffer): void;
  /** The link can take more writes after write() returned false. */
  drain(): void;
  /** The backend connection is gone; `error` when it broke rather than ended. */
  close(error?: Error): void;
}

export interface UpstreamLink {
  /** Whole client→server messages. Returns false when the caller should wait for drain(). */
  write(frames: Buffer): boolean;
  /** Stop delivering data() until resume(): the client is not reading. */
  pause(): void;
  resume(): void;
  /** Ask the backend to cancel what this session runs; (pid, secret) are its BackendKeyData. */
  cancel(pid: number, secret: number): void;
  /** Close after the client's Terminate, letting queued bytes go first. */
  end(): void;
  /** Close now. */
  destroy(): void;
}

export interface ClientEndpoint {
  readonly address: string;
  readonly port: number;
  /** Whether the client's connection to the proxy is encrypted. */
  readonly tls: boolean;
}

/** The client during its login, for an upstream that authenticates clients itself. */
export interface ClientConversation {
  /** tls-server-end-point binding data of the certificate the proxy showed this client; null without TLS. */
  readonly binding: Buffer | null;
  send(msg: Buffer): void;
  /** The client's next message; rejects when the client is gone. */
  next(): Promise<Frame>;
}

export interface Upstream {
  /** One line for the start-up banner: what this proxy fronts. */
  describe(): string;
  /**
   * Open a backend connection for a client. The returned link first carries the login
   * exchange (Authentication…, ParameterStatus, BackendKeyData, ReadyForQuery) to the client.
   * Rejects with a FATAL PgError when no backend can be had, or the client failed to log in.
   * `conversation` lets the upstream take the client's login into its own hands; what it
   * does not take is relayed.
   */
  connect(startup: StartupMessage, client: ClientEndpoint, events: LinkEvents, conversation?: ClientConversation): Promise<UpstreamLink>;
  close(): Promise<void>;
}
