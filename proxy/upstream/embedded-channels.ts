/**
 * LISTEN/NOTIFY on the embedded database. NOTIFY arrives inside the output of the notifying
 * statement: it is routed to every session that listens on the channel, while the backend
 * listens on the union of all sessions' channels and the proxy's own.
 */
import { decodeNotificationResponse } from '../wire/backend-decoders.js';
import type { EmbeddedBackend } from './embedded-backend.js';
import type { EmbeddedLink } from './embedded-link.js';
import type { EmbeddedSql } from './embedded-sql.js';
import { quoteIdent } from './sql-quote.js';

export class EmbeddedChannels {
  /** The proxy's own LISTENs (registry changes), fed from every session's output. */
  private readonly internal = new Map<string, Set<(payload: string) => void>>();

  constructor(
    private readonly backend: EmbeddedBackend,
    private readonly sql: EmbeddedSql,
    /** The sessions on the backend. */
    private readonly links: ReadonlySet<EmbeddedLink>,
  ) {}

  /** The proxy's own listener; the caller runs the LISTEN. */
  listenInternal(channel: string, cb: (payload: string) => void): void {
    let set = this.internal.get(channel);
    if (!set) this.internal.set(channel, (set = new Set()));
    set.add(cb);
  }

  /** Note LISTEN/UNLISTEN in a statement; true when the backend must re-listen afterwards. */
  track(link: EmbeddedLink, text: string): boolean {
    const changes = this.sql.listens(text);
    if (changes === null) return false;
    for (const channel of changes.listen) link.listening.add(channel);
    for (const channel of changes.unlisten) {
      if (channel === '*') link.listening.clear();
      else link.listening.delete(channel);
    }
    return changes.unlisten.length > 0;
  }

  /** The backend listens on every channel some session listens on. */
  async relisten(): Promise<void> {
    const sql = [...this.all()].map((c) => `LISTEN ${quoteIdent(c)}`);
    if (sql.length > 0) await this.backend.query(sql.join('; '));
  }

  /** A session ended: the backend stops listening on the channels no one else listens on. */
  async released(link: EmbeddedLink): Promise<void> {
    if (link.listening.size === 0) return;
    const still = this.all();
    const gone = [...link.listening].filter((c) => !still.has(c));
    if (gone.length > 0) await this.backend.query(gone.map((c) => `UNLISTEN ${quoteIdent(c)}`).join('; '));
  }

  private all(): Set<string> {
    const all = new Set<string>(this.internal.keys());
    for (const l of this.links) for (const c of l.listening) all.add(c);
    return all;
  }

  /** NotificationResponse: Int32 pid, channel, payload. Each listening session gets it once. */
  route(link: EmbeddedLink, m: Buffer, kept: Buffer[]): void {
    const { channel, payload } = decodeNotificationResponse(m);
    const internal = this.internal.get(channel);
    if (internal) for (const cb of internal) cb(payload);
    for (const l of this.links) {
      if (l.closed || !l.listening.has(channel)) continue;
      if (l === link) kept.push(m);
      else l.events.data(m);
    }
  }
}
