/**
 * Embedded PGlite as the upstream: one database in-process, shared by every client connection.
 *
 * PGlite has a single backend session, so the proxy makes each client look like it has its own:
 * - Work is queued and never interleaved. A session that starts a transaction (or leaves an
 *   extended-protocol unit open, or is in COPY) owns the backend until it is idle again; the
 *   others wait their turn (embedded-backend.ts).
 * - Before a different session's work runs, session state is swapped: RESET ALL, the client's
 *   user (SET SESSION AUTHORIZATION), its startup parameters and the SET commands it ran.
 * - Each session's turn rewrites its statement names and routes the answer (embedded-turns.ts);
 *   NOTIFY goes to every session that listens (embedded-channels.ts); COPY FROM STDIN is loaded
 *   from collected data (embedded-copy.ts); logins are checked against the roles (embedded-login.ts).
 */
import { PGlite } from '@electric-sql/pglite';
import { PgError, SqlState } from '../errors.js';
import { clientInputError } from '../client-input-error.js';
import { Frontend } from '../wire/codes.js';
import { errorResponse, readyForQuery } from '../wire/backend-messages.js';
import {
  decodeParse, decodeQuery, encodeQuery, encodeSimple, encodeTarget, type StartupMessage,
} from '../wire/frontend-messages.js';
import type { ClientEndpoint, LinkEvents, Upstream, UpstreamLink } from './link.js';
import { OWN_SEARCH_PATH, type StateStore } from '../state-store.js';
import type { SqlAnalyser } from '../../plugins/sql/analyser.js';
import { copyInNotAlone, EmbeddedSql } from './embedded-sql.js';
import { EmbeddedBackend } from './embedded-backend.js';
import { EmbeddedLink, type LinkScheduler } from './embedded-link.js';
import { EmbeddedLogins } from './embedded-login.js';
import { EmbeddedChannels } from './embedded-channels.js';
import { EmbeddedCopyIn } from './embedded-copy.js';
import { EmbeddedTurns } from './embedded-turns.js';
import { quoteIdent } from './sql-quote.js';

export { membershipsOf } from './embedded-login.js';

export interface EmbeddedOptions {
  readonly dataDir: string;
  readonly log: (msg: string) => void;
  /** PostgreSQL's parser, loaded: reads the statements whose effects sessions must keep apart. */
  readonly sql: SqlAnalyser;
}

export class EmbeddedUpstream implements Upstream, LinkScheduler {
  private readonly backend: EmbeddedBackend<EmbeddedLink>;
  private readonly tasks: { link: EmbeddedLink; run: () => Promise<void> }[] = [];
  private pumping = false;
  private readonly links = new Set<EmbeddedLink>();
  private nextId = 1;
  private closing = false;
  private readonly sql: EmbeddedSql;
  private readonly logins: EmbeddedLogins;
  private readonly channels: EmbeddedChannels;
  private readonly copyIn: EmbeddedCopyIn;
  private readonly turns: EmbeddedTurns;

  private constructor(db: PGlite, private readonly opts: EmbeddedOptions) {
    this.backend = new EmbeddedBackend(db);
    this.sql = new EmbeddedSql(opts.sql);
    this.logins = new EmbeddedLogins(this.backend);
    this.channels = new EmbeddedChannels(this.backend, this.sql, this.links);
    this.copyIn = new EmbeddedCopyIn(this.backend);
    this.turns = new EmbeddedTurns(this.backend, this.sql, this.channels, this.logins);
  }

  static async open(opts: EmbeddedOptions): Promise<EmbeddedUpstream> {
    const db = await PGlite.create(opts.dataDir);
    const up = new EmbeddedUpstream(db, opts);
    await up.logins.init();
    return up;
  }

  /** Whether a session holds the backend (an open transaction): the proxy's own SQL waits until it ends. */
  get busy(): boolean {
    return this.backend.owner !== null;
  }

  /**
   * The proxy's own SQL (schema, registry), run between sessions' turns as the bootstrap
   * superuser. A transaction it opens owns the backend until it ends, as a session's would.
   */
  store(): StateStore {
    const link = new EmbeddedLink(0, this.logins.superuser, { data: () => undefined, drain: () => undefined, close: () => undefined }, this);
    const run = <T>(fn: (db: PGlite) => Promise<T>): Promise<T> =>
      new Promise<T>((resolve, reject) => {
        this.tasks.push({
          link,
          run: async () => {
            // The proxy's own state, whatever a session left on the backend (see OWN_SEARCH_PATH).
            if (this.backend.applied !== link) {
              await this.backend.query(`SET SESSION AUTHORIZATION ${quoteIdent(this.logins.superuser)}; RESET ALL; SET search_path = ${OWN_SEARCH_PATH}`);
              this.backend.applied = link;
            }
            try {
              resolve(await fn(this.backend.db));
            } catch (err) {
              reject(err instanceof Error ? err : new Error(String(err)));
            } finally {
              this.backend.holdIfInTransaction(link);
            }
          },
        });
        this.pump();
      });
    return {
      query: (sql, params = []) => run(async (db) => ({ rows: (await db.query<Record<string, unknown>>(sql, [...params])).rows })),
      exec: (sql) => run(async (db) => void (await db.exec(sql))),
      listen: async (channel, cb) => {
        this.channels.listenInternal(channel, cb);
        await run(async (db) => void (await db.exec(`LISTEN ${quoteIdent(channel)}`)));
      },
      onLost: () => undefined,
      close: async () => undefined,
    };
  }

  describe(): string {
    return `embedded PGlite in ${this.opts.dataDir}`;
  }

  async connect(startup: StartupMessage, _client: ClientEndpoint, events: LinkEvents): Promise<UpstreamLink> {
    if (this.closing) throw new PgError(SqlState.CannotConnectNow, 'the database system is shutting down', 'FATAL');
    const p = startup.params;
    const user = p.get('user') ?? '';
    const database = p.get('database') ?? user;
    if (p.has('replication') && p.get('replication') !== 'false' && p.get('replication') !== 'off') {
      throw new PgError(SqlState.FeatureNotSupported, 'replication connections are not supported by the embedded database', 'FATAL', {
        hint: 'Run the proxy with --upstream postgres://… for logical replication.',
      });
    }
    if (database !== 'postgres') {
      throw new PgError(SqlState.InvalidCatalogName, `database "${database}" does not exist`, 'FATAL', {
        hint: 'The embedded database has one database, named "postgres".',
      });
    }
    const link = new EmbeddedLink(this.nextId++, user, events, this);
    const settings = this.logins.startupSettings(link, startup);
    if (this.backend.owner !== null && this.logins.knows(user)) this.logins.loginFromCache(link, settings);
    else {
      await new Promise<void>((resolve, reject) => {
        this.tasks.push({ link, run: () => this.logins.login(link, () => this.apply(link)).then(resolve, reject) });
        this.pump();
      });
    }
    this.links.add(link);
    return link;
  }

  /**
   * The roles a user belongs to, as last read (at start and at each login that could run SQL).
   * Read from memory: a session holding the backend must never wait on the proxy's own query.
   */
  memberships(user: string): readonly string[] {
    return this.logins.memberships(user);
  }

  /** Make the backend's session state this link's. Returns the first error, if any. */
  private async apply(link: EmbeddedLink): Promise<PgError | null> {
    // PGlite ignores SET SESSION AUTHORIZATION DEFAULT: name its bootstrap superuser instead.
    const sql = [
      `SET SESSION AUTHORIZATION ${quoteIdent(this.logins.superuser)}`,
      'RESET ALL',
      ...(link.user === this.logins.superuser ? [] : [`SET SESSION AUTHORIZATION ${quoteIdent(link.user)}`]),
      ...link.startupSets,
    ];
    const first = await this.backend.query(sql.join('; '));
    // A replayed SET that fails now (say, a role dropped since) is skipped, as a new session would fail it.
    for (const s of link.sessionSets) await this.backend.query(s);
    this.backend.applied = link;
    return first.error;
  }

  /** A CancelRequest names a backend by (pid, secret); every session here shares the pid. */
  findBySecret(secret: number): EmbeddedLink | undefined {
    for (const l of this.links) if (l.secret === secret) return l;
    return undefined;
  }

  /**
   * A session waiting for its turn (not in a transaction, so it owns nothing) has its first
   * queued unit answered at once with 57014, as a server answers a statement cancelled while
   * waiting for a lock. Returns false when that cannot be done now.
   */
  cancelQueued(link: EmbeddedLink): boolean {
    if (this.backend.owner === link || link.copyIn) return false;
    const end = link.pending.findIndex((f) => f[0] === Frontend.Query || f[0] === Frontend.Sync || f[0] === Frontend.FunctionCall);
    if (end < 0) return false;
    link.pending.splice(0, end + 1);
    link.events.data(Buffer.concat([
      errorResponse(new PgError(SqlState.QueryCanceled, 'canceling statement due to user request')),
      readyForQuery('I'),
    ]));
    return true;
  }

  schedule(link: EmbeddedLink): void {
    if (link.queued || link.closed) return;
    link.queued = true;
    this.tasks.push({
      link,
      run: async () => {
        link.queued = false;
        await this.runPending(link);
      },
    });
    this.pump();
  }

  wake(): void {
    this.pump();
  }

  /** Run queued work one task at a time; only the owner's tasks while a session owns the backend. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    void (async () => {
      try {
        for (;;) {
          const i = this.tasks.findIndex((t) => (this.backend.owner === null || t.link === this.backend.owner) && (!t.link.paused || t.link.closed));
          if (i < 0) break;
          const [task] = this.tasks.splice(i, 1);
          try {
            await task!.run();
          } catch (err) {
            await this.backendFailed(task!.link, err);
          }
          task!.link.settle();
          // Let sockets move between two sessions' turns.
          await new Promise<void>((r) => setImmediate(r));
        }
      } finally {
        this.pumping = false;
      }
    })();
  }

  /** A thrown (not SQL) error means PGlite itself failed: start it again; sessions on it are lost. */
  private async backendFailed(link: EmbeddedLink, err: unknown): Promise<void> {
    if (err instanceof PgError) {
      this.opts.log(`embedded session ${link.id}: ${err.message}`);
      // A message of this session that could not be read (see clientInputError): it ends, as a
      // server's backend would end on a protocol violation, and no other session notices.
      if (link.id !== 0 && !link.closed) {
        link.events.data(errorResponse(clientInputError(err)));
        link.destroy();
        link.events.close();
      }
      return;
    }
    const message = err instanceof Error ? err.message : String(err);
    this.opts.log(`embedded database failed: ${message}; restarting it`);
    for (const l of this.links) {
      l.closed = true;
      l.events.close(new Error(`the embedded database failed: ${message}`));
    }
    this.links.clear();
    this.tasks.length = 0;
    this.backend.owner = null;
    this.backend.applied = null;
    try {
      await this.backend.db.close();
    } catch {
      // It is already broken.
    }
    this.backend.db = await PGlite.create(this.opts.dataDir);
    await this.logins.init();
  }

  /** Run the frames a session has sent so far. */
  private async runPending(link: EmbeddedLink): Promise<void> {
    if (link.closed) return;
    if (this.backend.owner === null && this.backend.applied !== link) await this.apply(link);
    while (link.pending.length > 0 && !link.closed) {
      if (link.skipUntilSync) {
        await this.copyIn.skipToSync(link, []);
        continue;
      }
      if (link.copyIn) {
        await this.copyIn.feed(link);
        continue;
      }
      const batch: Buffer[] = [];
      let special: Buffer | null = null;
      while (link.pending.length > 0) {
        const f = link.pending[0]!;
        if (this.feedsCopyIn(f)) {
          if (batch.length === 0) {
            special = f;
            link.pending.shift();
          }
          break;
        }
        batch.push(f);
        link.pending.shift();
        if (f[0] === Frontend.Query || f[0] === Frontend.Sync || f[0] === Frontend.FunctionCall) break;
      }
      if (special) {
        const plan = special[0] === Frontend.Query ? this.sql.copyIn(decodeQuery(special)) : copyInNotAlone();
        if (plan instanceof PgError) await this.copyIn.refuse(link, special, plan);
        else await this.copyIn.start(link, plan);
      } else await this.turns.exec(link, batch);
    }
  }

  /** Whether a Query or Parse frame may start COPY FROM STDIN. */
  private feedsCopyIn(f: Buffer): boolean {
    if (f[0] === Frontend.Query) return this.sql.feedsCopyIn(decodeQuery(f));
    if (f[0] === Frontend.Parse) return this.sql.feedsCopyIn(decodeParse(f).text);
    return false;
  }

  /** A session ended: undo what it left on the shared backend. */
  release(link: EmbeddedLink): void {
    this.links.delete(link);
    link.pending = [];
    const run = async (): Promise<void> => {
      const cleanup: Buffer[] = [encodeSimple(Frontend.Sync)];
      for (const name of link.statements) cleanup.push(encodeTarget(Frontend.Close, { target: 'S', name }));
      cleanup.push(encodeSimple(Frontend.Sync));
      if (this.backend.owner === link || this.backend.db.isInTransaction()) cleanup.push(encodeQuery('ROLLBACK'));
      await this.backend.raw(Buffer.concat(cleanup));
      await this.channels.released(link);
      if (this.backend.owner === link) this.backend.owner = null;
      if (this.backend.applied === link) this.backend.applied = null;
    };
    // Cleanup must run before anyone else, even if this session owned the backend.
    this.tasks.unshift({ link, run });
    this.pump();
  }

  async close(): Promise<void> {
    this.closing = true;
    // Sessions are closed by now; their clean-up tasks run first. Never wait forever on them.
    const deadline = Date.now() + 10_000;
    while ((this.tasks.length > 0 || this.pumping) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await this.backend.db.close();
  }
}
