/**
 * Output to the client. It is gathered during one turn of the event loop and written once:
 * adjacent pieces of the same upstream chunk become one write again, so a pass-through answer
 * costs one syscall. What an upstream chunk makes is written as soon as the chunk is handled
 * (gather … gathered); other output at the end of the turn, from a microtask.
 */
import type { Socket } from 'node:net';

/**
 * Output to the client waits while a result hook works, up to this many bytes, so that a small
 * answer leaves in one write as it does in pass-through: a write wakes the client, and on a busy
 * machine each extra one cost about 40 µs (a point lookup with a transform went out in four).
 */
const HOLD_OUTPUT_BYTES = 64 << 10;

export interface OutputOwner {
  readonly isClosed: boolean;
  /** A result hook works: what it wrote leaves with what follows (see ServerRelay.resume). */
  readonly serverBusy: boolean;
  /** The client does not take more: stop reading the upstream. */
  pauseUpstream(): void;
}

export class ClientOutput {
  private out: Buffer[] = [];
  private bytes = 0;
  private queued = false;
  /** A result hook is being awaited: small output waits for what it adds (see HOLD_OUTPUT_BYTES). */
  hold = false;
  /** An upstream chunk is being handled: its output leaves when it is done, without a microtask. */
  private gathering = false;
  /** Output came while gathering that would have been flushed at the end of the turn. */
  private flushDue = false;

  constructor(
    private readonly socket: Socket,
    private readonly owner: OutputOwner,
  ) {}

  write(b: Buffer): void {
    if (this.owner.isClosed) return;
    this.out.push(b);
    this.bytes += b.length;
    // While a result hook works, what it wrote waits for it to finish: then it leaves together with
    // what follows in the same upstream chunk (a CommandComplete with its ReadyForQuery).
    if (this.queued || this.owner.serverBusy) return;
    if (this.gathering) this.flushDue = true;
    else this.queueFlush();
  }

  /** An upstream chunk is handled from now on: what it writes waits for gathered(). */
  gather(): void {
    this.gathering = true;
  }

  /** The chunk is handled: its output leaves now, as it would have at the end of the turn (see write). */
  gathered(): void {
    this.gathering = false;
    if (!this.flushDue) return;
    this.flushDue = false;
    if (!this.queued) this.flush();
  }

  /** A result hook finished: what waited for it leaves at the end of this turn. */
  flushSoon(): void {
    if (this.out.length > 0 && !this.queued) this.queueFlush();
  }

  private queueFlush(): void {
    this.queued = true;
    queueMicrotask(() => this.flush());
  }

  flush(force = false): void {
    this.queued = false;
    // ServerRelay.resume flushes once the hook is done (or the next write past the bound does).
    if (!force && this.hold && this.bytes < HOLD_OUTPUT_BYTES) return;
    const out = this.out;
    this.out = [];
    this.bytes = 0;
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
    if (!ok) this.owner.pauseUpstream();
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
