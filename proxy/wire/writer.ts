/**
 * A growable buffer for building protocol messages. One instance per use: nothing is shared
 * between sessions, so concurrent sessions can never interleave half-built messages.
 */
export class MessageWriter {
  private buf: Buffer;
  private pos = 0;
  private start = -1;

  constructor(size = 256) {
    this.buf = Buffer.allocUnsafe(size);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** Open a typed message; its length is filled in by end(). */
  begin(code: number): this {
    this.ensure(5);
    this.buf[this.pos] = code;
    this.start = this.pos + 1;
    this.pos += 5;
    return this;
  }

  /** Open an untyped (startup-phase) message. */
  beginUntyped(): this {
    this.ensure(4);
    this.start = this.pos;
    this.pos += 4;
    return this;
  }

  end(): this {
    this.buf.writeInt32BE(this.pos - this.start, this.start);
    this.start = -1;
    return this;
  }

  int8(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v & 0xff;
    return this;
  }

  int16(v: number): this {
    this.ensure(2);
    this.buf.writeInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }

  int32(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v | 0, this.pos);
    this.pos += 4;
    return this;
  }

  uint32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
    return this;
  }

  cstring(s: string): this {
    const n = Buffer.byteLength(s);
    this.ensure(n + 1);
    this.buf.write(s, this.pos);
    this.pos += n;
    this.buf[this.pos++] = 0;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  /** The bytes written so far (a copy-free view), and reset for reuse. */
  flush(): Buffer {
    const out = this.buf.subarray(0, this.pos);
    this.buf = Buffer.allocUnsafe(Math.max(256, this.buf.length));
    this.pos = 0;
    return out;
  }
}
