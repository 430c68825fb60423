/**
 * Connections this process opens to its own listener on someone's behalf: the HTTP API logs in
 * to the proxy as its caller, and the session it opens is to carry the HTTP caller's address and
 * port in its records, not the loopback address of the API's own socket.
 *
 * The API vouches for a connection once its socket is connected and before it sends the startup
 * packet: the connection is named by both ends of the TCP connection (unique while it lives),
 * and the listener asks here when a startup packet arrives. Nothing a client sends can set an
 * address: only code in this process can vouch, and only for a connection it holds.
 */
import type { Endpoint, OwnConnectionsService } from '../plugins/services.js';

/** An address as records show it: an IPv4 client on a dual-stack socket without its `::ffff:`. */
export function plainAddress(a: string): string {
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

function key(client: Endpoint, server: Endpoint): string {
  return `${plainAddress(client.address)}|${client.port}|${plainAddress(server.address)}|${server.port}`;
}

export class OwnConnections implements OwnConnectionsService {
  private readonly callers = new Map<string, Endpoint>();

  vouch(client: Endpoint, server: Endpoint, caller: Endpoint): () => void {
    const k = key(client, server);
    this.callers.set(k, { address: plainAddress(caller.address), port: caller.port });
    return () => {
      this.callers.delete(k);
    };
  }

  /** Whom the connection between these ends (as the listener sees them) was opened for; null: itself. */
  callerOf(client: Endpoint, server: Endpoint): Endpoint | null {
    return this.callers.get(key(client, server)) ?? null;
  }
}
