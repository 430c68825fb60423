/**
 * One side of a login conversation: whole messages from a peer, awaited one at a time. When
 * the login is over, what was read but not taken goes back to the relay in order.
 */
import { PgError, SqlState } from '../errors.js';
import { Framer, type Frame } from '../wire/framer.js';

export class FrameQueue {
  private readonly framer: Framer;
  private readonly frames: Frame[] = [];
  private waiter: { resolve: (f: Frame) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;

  /** `broken`: called when the peer's bytes cannot be a message sequence (they are not kept). */
  constructor(
    peer: 'client' | 'server',
    maxMessageSize: number,
    private readonly lostMessage: string,
    opts: { codes?: ReadonlySet<number>; broken?: (err: Error) => void } = {},
  ) {
    this.framer = new Framer({ maxMessageSize, peer, ...(opts.codes ? { codes: opts.codes } : {}) });
    this.broken = opts.broken;
  }

  private readonly broken: ((err: Error) => void) | undefined;

  /** Feed received bytes. */
  readonly push = (chunk: Buffer): void => {
    try {
      this.frames.push(...this.framer.push(chunk));
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      this.fail(e);
      this.broken?.(e);
      return;
    }
    this.wake();
  };

  /** The peer is gone, or its bytes made no sense. */
  fail(err?: Error): void {
    this.failure ??= err ?? new PgError(SqlState.ConnectionFailure, this.lostMessage, 'FATAL');
    this.wake();
  }

  next(): Promise<Frame> {
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.wake();
    });
  }

  /**
   * Everything received and not taken, in order, as raw bytes. The caller stops feeding this
   * queue in the same turn, before the relay reads the peer.
   */
  handOver(): Buffer[] {
    const out = this.frames.splice(0).map((f) => f.raw);
    const rest = this.framer.drain();
    if (rest.length > 0) out.push(rest);
    return out;
  }

  private wake(): void {
    const w = this.waiter;
    if (!w) return;
    const f = this.frames.shift();
    if (f) {
      this.waiter = null;
      w.resolve(f);
    } else if (this.failure) {
      this.waiter = null;
      w.reject(this.failure);
    }
  }
}
