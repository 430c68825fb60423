/**
 * Cuts a byte stream into whole protocol messages. Framing is kept apart from decoding:
 * a frame is just its code and bytes, and nothing is decoded here.
 *
 * A typed message is Byte1 code + Int32 length (which counts itself but not the code) + body.
 * A startup-phase message has no code: Int32 length (counting itself) + body.
 * Frames that lie wholly inside one chunk are views into it (no copy); only a frame split
 * across chunks is assembled into a fresh buffer.
 */
import { PgError, SqlState } from '../errors.js';

export interface Frame {
  /** The message type byte; 0 for startup-phase messages. */
  readonly code: number;
  /** The whole message as it came over the wire, header included. */
  readonly raw: Buffer;
}

export interface FramerOptions {
  /** Largest message accepted, header included; longer ones are a protocol violation. */
  maxMessageSize: number;
  /** Message codes accepted; anything else is a protocol violation. Omit to accept any code. */
  codes?: ReadonlySet<number>;
  /** Who sends these bytes, for error messages. */
  peer: 'client' | 'server';
}

/**
 * The longest startup packet, its length word included: the server reads at most
 * MAX_STARTUP_PACKET_LENGTH (10000) bytes after that word.
 */
export const MAX_STARTUP_PACKET = 10_004;

export class Framer {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Startup-phase framing until the caller switches it off. */
  untyped: boolean;

  constructor(private readonly opts: FramerOptions, untyped = false) {
    this.untyped = untyped;
  }

  /** Bytes received but not yet part of a whole frame. */
  get buffered(): number {
    return this.pendingBytes;
  }

  /**
   * Add a chunk and return the whole frames now available, in order.
   * Throws a PgError (08P01) when the stream cannot be a valid message sequence.
   * When `stopAfterOne` is set, at most one frame is returned and the rest stays buffered
   * (the startup phase needs to switch modes between frames).
   */
  push(chunk: Buffer, stopAfterOne = false): Frame[] {
    const frames: Frame[] = [];
    const headerLen = this.untyped ? 4 : 5;
    let off = 0;
    if (this.pendingBytes > 0) {
      // Finish the frame split across chunks first; only its own bytes are copied, once.
      if (this.pendingBytes < headerLen) {
        const take = Math.min(headerLen - this.pendingBytes, chunk.length);
        this.pending.push(chunk.subarray(0, take));
        this.pendingBytes += take;
        off = take;
        if (this.pendingBytes < headerLen) return frames;
        this.pending = [Buffer.concat(this.pending, this.pendingBytes)];
      }
      const head = this.pending[0]!;
      const code = this.untyped ? 0 : head[0]!;
      const len = head.readInt32BE(this.untyped ? 0 : 1);
      this.check(code, len);
      const total = this.untyped ? len : len + 1;
      const need = total - this.pendingBytes;
      if (need <= 0) {
        // Whole frames were left buffered by stopAfterOne: frame them together with the new bytes.
        chunk = Buffer.concat([...this.pending, chunk.subarray(off)]);
        this.pending = [];
        this.pendingBytes = 0;
        return frames.concat(this.push(chunk, stopAfterOne));
      }
      if (chunk.length - off < need) {
        if (off < chunk.length) this.pending.push(chunk.subarray(off));
        this.pendingBytes += chunk.length - off;
        return frames;
      }
      this.pending.push(chunk.subarray(off, off + need));
      frames.push({ code, raw: Buffer.concat(this.pending, total) });
      this.pending = [];
      this.pendingBytes = 0;
      off += need;
    }
    while (chunk.length - off >= headerLen) {
      if (stopAfterOne && frames.length === 1) break;
      const code = this.untyped ? 0 : chunk[off]!;
      const len = chunk.readInt32BE(this.untyped ? off : off + 1);
      this.check(code, len);
      const total = this.untyped ? len : len + 1;
      if (chunk.length - off < total) break;
      frames.push({ code, raw: chunk.subarray(off, off + total) });
      off += total;
    }
    if (off < chunk.length) {
      // Keep the partial frame as a view: socket chunks are fresh buffers, never reused.
      const rest = chunk.subarray(off);
      this.pending = [rest];
      this.pendingBytes = rest.length;
      // Reject an impossible header as soon as it is whole, unless the caller stopped early
      // and is about to switch framing modes (the rest is then a message of the other kind).
      const stoppedEarly = stopAfterOne && frames.length === 1;
      if (!stoppedEarly && rest.length >= headerLen) {
        this.check(this.untyped ? 0 : rest[0]!, rest.readInt32BE(this.untyped ? 0 : 1));
      }
    }
    return frames;
  }

  /** Take the bytes not yet framed (used when a connection is handed to TLS or elsewhere). */
  drain(): Buffer {
    const out = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    return out;
  }

  private check(code: number, len: number): void {
    const { peer } = this.opts;
    if (this.untyped) {
      if (len < 8 || len > MAX_STARTUP_PACKET) {
        throw new PgError(SqlState.ProtocolViolation, `invalid length of startup packet (${len})`, 'FATAL');
      }
      return;
    }
    if (this.opts.codes && !this.opts.codes.has(code)) {
      throw new PgError(SqlState.ProtocolViolation, `invalid ${peer === 'client' ? 'frontend' : 'backend'} message type ${code}`, 'FATAL');
    }
    if (len < 4) {
      throw new PgError(SqlState.ProtocolViolation, `invalid message length ${len} for message type ${code}`, 'FATAL');
    }
    if (len + 1 > this.opts.maxMessageSize) {
      throw new PgError(
        SqlState.ProtocolViolation,
        `message of ${len + 1} bytes exceeds the limit of ${this.opts.maxMessageSize} bytes`,
        'FATAL',
        { hint: 'Raise --max-message-size if such messages are expected.' },
      );
    }
  }
}
