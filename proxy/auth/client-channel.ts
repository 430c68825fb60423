/**
 * The client's side of a login the proxy takes part in: it sends the client authentication
 * requests and reads its answers, until the relay takes over the socket.
 */
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { FRONTEND_CODES } from '../wire/codes.js';
import { errorResponse } from '../wire/backend-messages.js';
import { toPgError } from '../errors.js';
import { FrameQueue } from './frame-queue.js';
import { ownBinding } from './channel-binding.js';
import type { Frame } from '../wire/framer.js';
import type { ClientConversation } from '../upstream/link.js';

export class ClientChannel implements ClientConversation {
  private readonly queue: FrameQueue;
  private readonly lost = (): void => this.queue.fail();
  private bindingData: Buffer | null | undefined;

  /** `early`: client bytes that came with the startup packet. */
  constructor(private readonly sock: Socket, early: Buffer, maxMessageSize: number) {
    this.queue = new FrameQueue('client', maxMessageSize, 'the client closed the connection during authentication', {
      codes: FRONTEND_CODES,
      // What the session would answer to the same bytes: the connection cannot go on.
      broken: (err) => sock.end(errorResponse(toPgError(err, 'protocol violation'))),
    });
    sock.on('data', this.queue.push);
    sock.on('close', this.lost);
    if (early.length > 0) this.queue.push(early);
  }

  get binding(): Buffer | null {
    if (this.bindingData === undefined) this.bindingData = this.sock instanceof TLSSocket ? ownBinding(this.sock) : null;
    return this.bindingData;
  }

  send(msg: Buffer): void {
    this.sock.write(msg);
  }

  next(): Promise<Frame> {
    return this.queue.next();
  }

  /** Stop reading for the login; what the client sent and the login did not take, in order. */
  release(): Buffer {
    const rest = this.queue.handOver();
    this.sock.off('data', this.queue.push);
    this.sock.off('close', this.lost);
    return Buffer.concat(rest);
  }
}
