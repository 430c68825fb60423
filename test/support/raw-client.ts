/** A bare protocol client for tests that must send what no driver would. */
import net from 'node:net';
import { serialize } from 'pg-protocol';
import { decodeErrorResponse } from '../../proxy/wire/backend-decoders.js';

export interface RawMessage {
  code: string;
  body: Buffer;
  /** The whole frame: code, length and body. */
  raw: Buffer;
}

export class RawClient {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;
  /** Everything the server sent during login, ReadyForQuery included. */
  readonly login: RawMessage[] = [];

  private constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
    sock.on('error', () => undefined);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Connect and send the startup packet; the caller runs the login. */
  static async start(port: number, user = 'postgres', database = 'postgres'): Promise<RawClient> {
    const sock = net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    const c = new RawClient(sock);
    sock.write(serialize.startup({ user, database }));
    return c;
  }

  static async connect(port: number, user = 'postgres', database = 'postgres', password = ''): Promise<RawClient> {
    const c = await RawClient.start(port, user, database);
    const sock = c.sock;
    for (;;) {
      const m = await c.next();
      c.login.push(m);
      if (m.code === 'R' && m.body.readInt32BE(0) === 3) sock.write(serialize.password(password));
      if (m.code === 'R' && m.body.readInt32BE(0) === 10) throw new Error('RawClient does not do SCRAM: use trustuser or cleartext');
      if (m.code === 'E') throw new Error(`login failed: ${m.body.toString()}`);
      if (m.code === 'Z') return c;
    }
  }

  /** The next whole message; rejects when the connection closed first. */
  async next(timeoutMs = 10_000): Promise<RawMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.buf.length >= 5) {
        const len = this.buf.readInt32BE(1);
        if (this.buf.length >= len + 1) {
          const m = { code: String.fromCharCode(this.buf[0]!), body: this.buf.subarray(5, len + 1), raw: this.buf.subarray(0, len + 1) };
          this.buf = this.buf.subarray(len + 1);
          return m;
        }
      }
      if (this.closed) throw new Error('connection closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a message');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Messages up to and including ReadyForQuery. */
  async untilReady(): Promise<RawMessage[]> {
    const out: RawMessage[] = [];
    for (;;) {
      const m = await this.next();
      out.push(m);
      if (m.code === 'Z') return out;
    }
  }

  /** Resolves when the server closed the connection. */
  async waitClosed(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (!this.closed) throw new Error('connection still open');
  }

  write(b: Buffer | Uint8Array): void {
    this.sock.write(b);
  }

  end(): void {
    this.sock.destroy();
  }
}

/** The SQLSTATE (C field) of an ErrorResponse body. */
export function sqlstate(body: Buffer): string {
  return decodeErrorResponse(body, 0).code;
}
