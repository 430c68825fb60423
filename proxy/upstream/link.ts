/**
 * What a session talks to: one backend connection, real or embedded. The session writes
 * client→server protocol bytes and receives server→client bytes, with flow control both ways.
 */
import type { StartupMessage } from '../wire/frontend-messages.js';

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

export interface Upstream {
  /** One line for the start-up banner: what this proxy fronts. */
  describe(): string;
  /**
   * Open a backend connection for a client. The returned link first carries the login
   * exchange (Authentication…, ParameterStatus, BackendKeyData, ReadyForQuery) to the client.
   * Rejects with a FATAL PgError when no backend can be had.
   */
  connect(startup: StartupMessage, client: ClientEndpoint, events: LinkEvents): Promise<UpstreamLink>;
  close(): Promise<void>;
}
