/**
 * One client session's link to the embedded backend: the client's messages queue here until the
 * session's turn on the backend, and what it must get back on its next turn (its SET commands,
 * its prepared statements, the channels it listens on) is kept here.
 */
import { randomInt } from 'node:crypto';
import { Frontend } from '../wire/codes.js';
import { Framer } from '../wire/framer.js';
import type { LinkEvents, UpstreamLink } from './link.js';

/**
 * Client messages a session may queue while the backend is busy (another session's transaction
 * holds it, or this one's work is running): past this, write() returns false and the session
 * stops reading its client, as a server that does not read its socket makes a client wait.
 * Without it a client could queue without bound.
 */
const MAX_PENDING_BYTES = 64 << 10;

export interface CopyIn {
  readonly sql: string;
  readonly chunks: Buffer[];
}

/** What a link asks of the embedded upstream that runs it. */
export interface LinkScheduler {
  /** The link has messages to run: give it a turn. */
  schedule(link: EmbeddedLink): void;
  /** Run what waits, a paused link having resumed. */
  wake(): void;
  /** Answer the link's first queued unit as cancelled; false when that cannot be done now. */
  cancelQueued(link: EmbeddedLink): boolean;
  /** The session ended: undo what it left on the backend. */
  release(link: EmbeddedLink): void;
}

export class EmbeddedLink implements UpstreamLink {
  readonly secret = randomInt(1, 0x7fffffff);
  /** Frames received from the client and not yet run. */
  pending: Buffer[] = [];
  /** Bytes in `pending`: counted as they arrive, recounted after each turn on the backend (settle). */
  private pendingBytes = 0;
  private needDrain = false;
  queued = false;
  paused = false;
  closed = false;
  cancelRequested = false;
  /** SET statements to run again whenever this session gets the backend back. */
  readonly startupSets: string[] = [];
  readonly sessionSets: string[] = [];
  readonly statements = new Set<string>();
  readonly listening = new Set<string>();
  /** Reported settings as the client was last told (ParameterStatus). */
  readonly reported = new Map<string, string>();
  copyIn: CopyIn | null = null;
  /** An error ended the current extended-protocol unit: drop messages up to its Sync. */
  skipUntilSync = false;
  /** CloseCompletes produced by Closes the proxy added, to drop from the output. */
  dropCloseCompletes = 0;
  private readonly framer = new Framer({ maxMessageSize: Number.MAX_SAFE_INTEGER, peer: 'client' });

  constructor(
    readonly id: number,
    readonly user: string,
    readonly events: LinkEvents,
    private readonly engine: LinkScheduler,
  ) {}

  write(frames: Buffer): boolean {
    if (this.closed) return true;
    let boundary = false;
    for (const f of this.framer.push(frames)) {
      if (f.code === Frontend.Terminate) continue;
      this.pending.push(f.raw);
      this.pendingBytes += f.raw.length;
      boundary = true;
    }
    if (boundary) this.engine.schedule(this);
    if (this.pendingBytes < MAX_PENDING_BYTES) return true;
    this.needDrain = true;
    return false;
  }

  /** After a turn on the backend: tell the session it may send again once the queue went down. */
  settle(): void {
    this.pendingBytes = 0;
    for (const f of this.pending) this.pendingBytes += f.length;
    if (!this.needDrain || (this.pendingBytes >= MAX_PENDING_BYTES && !this.closed)) return;
    this.needDrain = false;
    if (!this.closed) this.events.drain();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    // Work may have been queued while paused: schedule it, and wake the scheduler either way.
    this.engine.schedule(this);
    this.engine.wake();
  }

  cancel(): void {
    // PGlite runs on this thread: a cancel can only stop work that has not started yet.
    if (this.pending.length > 0 && !this.engine.cancelQueued(this)) this.cancelRequested = true;
  }

  end(): void {
    this.destroy();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.engine.release(this);
  }

  /** The backend-local name for a client's statement name. */
  statementName(name: string): string {
    return `pp${this.id}_${name}`;
  }
}
