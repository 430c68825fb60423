/**
 * How much a client can write before its writes stop being taken: the amount a peer that does
 * not read lets pile up in kernel buffers and its own memory.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import type { RawClient } from './raw-client.js';

/**
 * Write `chunk` again and again while the socket takes it; stop once nothing more was taken for
 * `quietMs`. Returns the bytes the socket handed to the kernel (those whose write completed).
 */
export async function floodUntilBlocked(client: RawClient, chunk: Buffer, quietMs = 1_500, maxBytes = 256 << 20): Promise<number> {
  const sock = client.sock;
  let taken = 0;
  let lastProgress = Date.now();
  let queued = 0;
  for (;;) {
    while (sock.writableLength < chunk.length && queued < maxBytes && !sock.destroyed) {
      queued += chunk.length;
      sock.write(chunk, (err) => {
        if (err) return;
        taken += chunk.length;
        lastProgress = Date.now();
      });
    }
    if (sock.destroyed || queued >= maxBytes) return taken;
    await new Promise((r) => setTimeout(r, 50));
    if (Date.now() - lastProgress > quietMs) return taken;
  }
}

export interface TcpQueue {
  readonly localPort: number;
  readonly remotePort: number;
  /** Bytes written and not yet acknowledged by the peer (Send-Q). */
  readonly tx: number;
  /** Bytes received and not yet read by the application (Recv-Q). */
  readonly rx: number;
  readonly inode: number;
}

/** The kernel's queues of every IPv4 TCP socket of the machine (Linux /proc/net/tcp). */
export function tcpQueues(): TcpQueue[] {
  return readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1).filter((l) => l.trim() !== '').map((line) => {
    const f = line.trim().split(/\s+/);
    const [tx, rx] = f[4]!.split(':').map((h) => parseInt(h, 16));
    return {
      localPort: parseInt(f[1]!.split(':')[1]!, 16),
      remotePort: parseInt(f[2]!.split(':')[1]!, 16),
      tx: tx!, rx: rx!,
      inode: Number(f[9]),
    };
  });
}

/** Inodes of the sockets this process has open. */
export function ownSocketInodes(): Set<number> {
  const out = new Set<number>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (m) out.add(Number(m[1]));
    } catch {
      // closed meanwhile
    }
  }
  return out;
}
