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
  /** After handOver(): bytes that still arrive here before the relay takes over. */
  private late: Buffer[] | null = null;

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
    if (this.late) {
      this.late.push(chunk);
      return;
    }
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

  /** Stop framing: everything received and not taken, in order, as raw bytes. */
  handOver(): Buffer[] {
    const out = this.frames.splice(0).map((f) => f.raw);
    const rest = this.framer.drain();
    if (rest.length > 0) out.push(rest);
    this.late = out;
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
