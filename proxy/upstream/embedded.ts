/**
 * Embedded PGlite as the upstream: one database in-process, shared by every client connection.
 *
 * PGlite has a single backend session, so the proxy makes each client look like it has its own:
 * - Work is queued and never interleaved. A session that starts a transaction (or leaves an
 *   extended-protocol unit open, or is in COPY) owns the backend until it is idle again; the
 *   others wait their turn.
 * - Before a different session's work runs, session state is swapped: RESET ALL, the client's
 *   user (SET SESSION AUTHORIZATION), its startup parameters and the SET commands it ran.
 * - Prepared statement names are made per session (a `pp<id>_` prefix), the unnamed statement
 *   included, so two clients' "s1" never collide.
 * - NOTIFY arrives inside the output of the notifying statement: it is routed to every session
 *   that listens on the channel, while the backend listens on the union of all channels.
 * - COPY FROM STDIN cannot be fed to PGlite's raw protocol (it exits the process), so the
 *   client's CopyData is collected and loaded with PGlite's own `COPY … FROM '/dev/blob'`.
 */
import { PGlite } from '@electric-sql/pglite';
import { randomInt } from 'node:crypto';
import { PgError, SqlState } from '../errors.js';
import { clientInputError } from '../client-input-error.js';
import { Backend, Frontend } from '../wire/codes.js';
import { Framer } from '../wire/framer.js';
import { BodyReader } from '../wire/reader.js';
import {
  authenticationOk, backendKeyData, commandComplete, copyInResponse, errorResponse, parameterStatus,
  readyForQuery, type TxStatus,
} from '../wire/backend-messages.js';
import {
  decodeBindHead, decodeCopyFail, decodeParse, decodeQuery, decodeTarget, encodeBindHead, encodeParse,
  encodeQuery, encodeSimple, encodeTarget, type StartupMessage,
} from '../wire/frontend-messages.js';
import type { ClientEndpoint, LinkEvents, Upstream, UpstreamLink } from './link.js';
import { OWN_SEARCH_PATH, type StateStore } from '../state-store.js';
import type { SqlAnalyser } from '../../plugins/sql/analyser.js';
import { copyInNotAlone, EmbeddedSql, type CopyInPlan } from './embedded-sql.js';

/** Parameters a real server reports at login; values are read from PGlite per session. */
const REPORTED_PARAMS = [
  'server_version', 'server_encoding', 'client_encoding', 'DateStyle', 'IntervalStyle', 'TimeZone',
  'integer_datetimes', 'standard_conforming_strings', 'is_superuser', 'session_authorization',
  'application_name', 'default_transaction_read_only', 'in_hot_standby',
] as const;

/**
 * The roles a role belongs to, itself included, following grants transitively. Not pg_has_role:
 * that counts a superuser as a member of every role, which would unmask everything for it.
 */
export function membershipsOf(roleOid: string): string {
  return `WITH RECURSIVE m(id) AS (SELECT ${roleOid} UNION SELECT a.roleid FROM pg_catalog.pg_auth_members a JOIN m ON a.member OPERATOR(pg_catalog.=) m.id)
  SELECT b.rolname::pg_catalog.text FROM m JOIN pg_catalog.pg_roles b ON b.oid OPERATOR(pg_catalog.=) m.id ORDER BY b.rolname`;
}

/** Startup parameters that are not settings. */
const NOT_SETTINGS = new Set(['user', 'database', 'options', 'replication']);


export function quoteLiteral(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

export function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

/** set_config takes the value as a server does from a startup packet (a list stays a list). */
function setConfig(name: string, value: string): string {
  return `SELECT pg_catalog.set_config(${quoteLiteral(name)}, ${quoteLiteral(value)}, false)`;
}

/** Split a backend byte stream into whole messages (PGlite returns whole messages). */
function messages(out: Uint8Array): Buffer[] {
  const buf = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  const list: Buffer[] = [];
  let off = 0;
  while (off + 5 <= buf.length) {
    const len = buf.readInt32BE(off + 1);
    list.push(buf.subarray(off, off + 1 + len));
    off += 1 + len;
  }
  return list;
}

/** The fields of an ErrorResponse, as a PgError. */
function decodeError(raw: Buffer): PgError {
  const r = new BodyReader(raw, 5);
  const f = new Map<string, string>();
  for (;;) {
    const code = r.int8();
    if (code === 0) break;
    f.set(String.fromCharCode(code), r.cstring());
  }
  const severity = (f.get('V') ?? f.get('S') ?? 'ERROR') as PgError['severity'];
  const position = f.get('P');
  return new PgError(f.get('C') ?? SqlState.InternalError, f.get('M') ?? 'unknown error', severity, {
    ...(f.has('D') ? { detail: f.get('D') } : {}),
    ...(f.has('H') ? { hint: f.get('H') } : {}),
    ...(position ? { position: Number(position) } : {}),
  });
}

interface QueryOutcome {
  readonly rows: (string | null)[][];
  readonly error: PgError | null;
  readonly status: TxStatus;
}

/** Parse the text-format rows, first error and final status out of a simple-query answer. */
function readOutcome(out: Uint8Array): QueryOutcome {
  const rows: (string | null)[][] = [];
  let error: PgError | null = null;
  let status: TxStatus = 'I';
  for (const m of messages(out)) {
    if (m[0] === Backend.DataRow) {
      const r = new BodyReader(m, 5);
      const row: (string | null)[] = [];
      for (let n = r.int16(); n > 0; n--) {
        const len = r.int32();
        row.push(len < 0 ? null : r.bytes(len).toString('utf8'));
      }
      rows.push(row);
    } else if (m[0] === Backend.ErrorResponse) error ??= decodeError(m);
    else if (m[0] === Backend.ReadyForQuery) status = String.fromCharCode(m[5]!) as TxStatus;
  }
  return { rows, error, status };
}

interface CopyIn {
  readonly sql: string;
  readonly chunks: Buffer[];
}

/**
 * Client messages a session may queue while the backend is busy (another session's transaction
 * holds it, or this one's work is running): past this, write() returns false and the session
 * stops reading its client, as a server that does not read its socket makes a client wait.
 * Without it a client could queue without bound.
 */
const MAX_PENDING_BYTES = 64 << 10;

class EmbeddedLink implements UpstreamLink {
  readonly secret = randomInt(1, 0x7fffffff);
  /** Frames received from the client and not yet run. */
  pending: Buffer[] = [];
  /** Bytes in `pending`: counted as they arrive, recounted after each turn on the backend (settle). */
  private pendingBytes = 0;
  private needDrain = false;
  queued = false;
  paused = false;
  closed = false;
  cancelRequested = false;
  /** SET statements to run again whenever this session gets the backend back. */
  readonly startupSets: string[] = [];
  readonly sessionSets: string[] = [];
  readonly statements = new Set<string>();
  readonly listening = new Set<string>();
  /** Reported settings as the client was last told (ParameterStatus). */
  readonly reported = new Map<string, string>();
  copyIn: CopyIn | null = null;
  /** An error ended the current extended-protocol unit: drop messages up to its Sync. */
  skipUntilSync = false;
  /** CloseCompletes produced by Closes the proxy added, to drop from the output. */
  dropCloseCompletes = 0;
  private readonly framer = new Framer({ maxMessageSize: Number.MAX_SAFE_INTEGER, peer: 'client' });

  constructor(
    readonly id: number,
    readonly user: string,
    readonly events: LinkEvents,
    private readonly engine: EmbeddedUpstream,
  ) {}

  write(frames: Buffer): boolean {
    if (this.closed) return true;
    let boundary = false;
    for (const f of this.framer.push(frames)) {
      if (f.code === Frontend.Terminate) continue;
      this.pending.push(f.raw);
      this.pendingBytes += f.raw.length;
      boundary = true;
    }
    if (boundary) this.engine.schedule(this);
    if (this.pendingBytes < MAX_PENDING_BYTES) return true;
    this.needDrain = true;
    return false;
  }

  /** After a turn on the backend: tell the session it may send again once the queue went down. */
  settle(): void {
    this.pendingBytes = 0;
    for (const f of this.pending) this.pendingBytes += f.length;
    if (!this.needDrain || (this.pendingBytes >= MAX_PENDING_BYTES && !this.closed)) return;
    this.needDrain = false;
    if (!this.closed) this.events.drain();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    // Work may have been queued while paused: schedule it, and wake the scheduler either way.
    this.engine.schedule(this);
    this.engine.wake();
  }

  cancel(): void {
    // PGlite runs on this thread: a cancel can only stop work that has not started yet.
    if (this.pending.length > 0 && !this.engine.cancelQueued(this)) this.cancelRequested = true;
  }

  end(): void {
    this.destroy();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.engine.release(this);
  }

  /** The backend-local name for a client's statement name. */
  statementName(name: string): string {
    return `pp${this.id}_${name}`;
  }
}

export interface EmbeddedOptions {
  readonly dataDir: string;
  readonly log: (msg: string) => void;
  /** PostgreSQL's parser, loaded: reads the statements whose effects sessions must keep apart. */
  readonly sql: SqlAnalyser;
}

export class EmbeddedUpstream implements Upstream {
  private db: PGlite;
  private readonly tasks: { link: EmbeddedLink; run: () => Promise<void> }[] = [];
  private pumping = false;
  /** The session whose transaction or open unit holds the backend. */
  private owner: EmbeddedLink | null = null;
  /** The session whose settings are applied on the backend now. */
  private applied: EmbeddedLink | null = null;
  private readonly links = new Set<EmbeddedLink>();
  /** The proxy's own LISTENs (registry changes), fed from every session's output. */
  private readonly internalListeners = new Map<string, Set<(payload: string) => void>>();
  private nextId = 1;
  private backendPid = 0;
  private superuser = 'postgres';
  /** Reported parameters as a new session has them, read at start. */
  private readonly defaults = new Map<string, string>();
  /** Roles as last read; used for logins while the backend is busy with a transaction. */
  private readonly roles = new Map<string, { canLogin: boolean; superuser: boolean; memberOf: string[] }>();
  private closing = false;
  private readonly sql: EmbeddedSql;

  private constructor(db: PGlite, private readonly opts: EmbeddedOptions) {
    this.db = db;
    this.sql = new EmbeddedSql(opts.sql);
  }

  static async open(opts: EmbeddedOptions): Promise<EmbeddedUpstream> {
    const db = await PGlite.create(opts.dataDir);
    const up = new EmbeddedUpstream(db, opts);
    await up.init();
    return up;
  }

  private async init(): Promise<void> {
    const r = await this.query(`SELECT pg_catalog.pg_backend_pid(), session_user, ${REPORTED_PARAMS.map((n) => `pg_catalog.current_setting(${quoteLiteral(n)}, true)`).join(', ')}`);
    const row = r.rows[0] ?? [];
    this.backendPid = Number(row[0] ?? 0);
    this.superuser = row[1] ?? 'postgres';
    REPORTED_PARAMS.forEach((name, i) => {
      const v = row[i + 2];
      if (v !== null && v !== undefined) this.defaults.set(name, v);
    });
    await this.loadRoles();
  }

  /** Whether a session holds the backend (an open transaction): the proxy's own SQL waits until it ends. */
  get busy(): boolean {
    return this.owner !== null;
  }

  /**
   * The proxy's own SQL (schema, registry), run between sessions' turns as the bootstrap
   * superuser. A transaction it opens owns the backend until it ends, as a session's would.
   */
  store(): StateStore {
    const link = new EmbeddedLink(0, this.superuser, { data: () => undefined, drain: () => undefined, close: () => undefined }, this);
    const run = <T>(fn: (db: PGlite) => Promise<T>): Promise<T> =>
      new Promise<T>((resolve, reject) => {
        this.tasks.push({
          link,
          run: async () => {
            // The proxy's own state, whatever a session left on the backend (see OWN_SEARCH_PATH).
            if (this.applied !== link) {
              await this.query(`SET SESSION AUTHORIZATION ${quoteIdent(this.superuser)}; RESET ALL; SET search_path = ${OWN_SEARCH_PATH}`);
              this.applied = link;
            }
            try {
              resolve(await fn(this.db));
            } catch (err) {
              reject(err instanceof Error ? err : new Error(String(err)));
            } finally {
              this.owner = this.db.isInTransaction() ? link : null;
            }
          },
        });
        this.pump();
      });
    return {
      query: (sql, params = []) => run(async (db) => ({ rows: (await db.query<Record<string, unknown>>(sql, [...params])).rows })),
      exec: (sql) => run(async (db) => void (await db.exec(sql))),
      listen: async (channel, cb) => {
        let set = this.internalListeners.get(channel);
        if (!set) this.internalListeners.set(channel, (set = new Set()));
        set.add(cb);
        await run(async (db) => void (await db.exec(`LISTEN ${quoteIdent(channel)}`)));
      },
      onLost: () => undefined,
      close: async () => undefined,
    };
  }

  describe(): string {
    return `embedded PGlite in ${this.opts.dataDir}`;
  }

  /** Run a simple query on the backend, outside any client session's turn. */
  private async query(sql: string): Promise<QueryOutcome> {
    return readOutcome(await this.db.execProtocolRaw(encodeQuery(sql), { syncToFs: false }));
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
    const settings: [string, string][] = [...p].filter(([name]) => !NOT_SETTINGS.has(name));
    settings.push(...parseOptions(p.get('options') ?? ''));
    for (const [name, value] of settings) link.startupSets.push(setConfig(name, value));
    if (this.owner !== null && this.roles.has(user)) this.loginFromCache(link, settings);
    else {
      await new Promise<void>((resolve, reject) => {
        this.tasks.push({ link, run: () => this.login(link).then(resolve, reject) });
        this.pump();
      });
    }
    this.links.add(link);
    return link;
  }

  /** Check the role, apply the session's settings and send what a server sends after authentication. */
  private async login(link: EmbeddedLink): Promise<void> {
    await this.loadRoles();
    this.checkRole(link.user);
    const err = await this.apply(link);
    if (err) throw new PgError(err.code, err.message, 'FATAL', err.fields);
    const shown = await this.query(`SELECT ${REPORTED_PARAMS.map((n) => `pg_catalog.current_setting(${quoteLiteral(n)}, true)`).join(', ')}`);
    const values = new Map<string, string>();
    REPORTED_PARAMS.forEach((name, i) => {
      const v = shown.rows[0]?.[i];
      if (v !== null && v !== undefined) values.set(name, v);
    });
    this.sendLogin(link, values);
  }

  /**
   * Login while another session's transaction holds the backend: nothing can run on it, so the
   * role and the reported parameters come from what was last read, with the client's own
   * settings on top. The settings themselves are applied before the session's first statement.
   */
  private loginFromCache(link: EmbeddedLink, settings: readonly [string, string][]): void {
    const role = this.checkRole(link.user);
    const values = new Map(this.defaults);
    values.set('is_superuser', role.superuser ? 'on' : 'off');
    values.set('session_authorization', link.user);
    values.set('application_name', '');
    const reported = new Map(REPORTED_PARAMS.map((n) => [n.toLowerCase(), n] as const));
    for (const [name, value] of settings) {
      const key = reported.get(name.toLowerCase());
      if (key) values.set(key, value);
    }
    this.sendLogin(link, values);
  }

  private sendLogin(link: EmbeddedLink, values: ReadonlyMap<string, string>): void {
    for (const [k, v] of values) link.reported.set(k, v);
    const out: Buffer[] = [authenticationOk()];
    for (const [name, v] of values) out.push(parameterStatus(name, v));
    out.push(backendKeyData(this.backendPid, link.secret), readyForQuery('I'));
    link.events.data(Buffer.concat(out));
  }

  private async loadRoles(): Promise<void> {
    const r = await this.query(`SELECT r.rolname, r.rolcanlogin, r.rolsuper,
      pg_catalog.array_to_string(ARRAY(${membershipsOf('r.oid')}), pg_catalog.chr(1))
      FROM pg_catalog.pg_roles r`);
    this.roles.clear();
    for (const [name, canLogin, superuser, member] of r.rows) {
      this.roles.set(name ?? '', { canLogin: canLogin === 't', superuser: superuser === 't', memberOf: (member ?? '').split('\u0001').filter((x) => x !== '') });
    }
  }

  /**
   * The roles a user belongs to, as last read (at start and at each login that could run SQL).
   * Read from memory: a session holding the backend must never wait on the proxy's own query.
   */
  memberships(user: string): readonly string[] {
    return this.roles.get(user)?.memberOf ?? [];
  }

  private checkRole(user: string): { canLogin: boolean; superuser: boolean; memberOf: string[] } {
    const role = this.roles.get(user);
    if (!role) throw new PgError(SqlState.InvalidAuthorizationSpecification, `role "${user}" does not exist`, 'FATAL');
    if (!role.canLogin) throw new PgError(SqlState.InvalidAuthorizationSpecification, `role "${user}" is not permitted to log in`, 'FATAL');
    return role;
  }

  /** Make the backend's session state this link's. Returns the first error, if any. */
  private async apply(link: EmbeddedLink): Promise<PgError | null> {
    // PGlite ignores SET SESSION AUTHORIZATION DEFAULT: name its bootstrap superuser instead.
    const sql = [
      `SET SESSION AUTHORIZATION ${quoteIdent(this.superuser)}`,
      'RESET ALL',
      ...(link.user === this.superuser ? [] : [`SET SESSION AUTHORIZATION ${quoteIdent(link.user)}`]),
      ...link.startupSets,
    ];
    const first = await this.query(sql.join('; '));
    // A replayed SET that fails now (say, a role dropped since) is skipped, as a new session would fail it.
    for (const s of link.sessionSets) await this.query(s);
    this.applied = link;
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
    if (this.owner === link || link.copyIn) return false;
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
          const i = this.tasks.findIndex((t) => (this.owner === null || t.link === this.owner) && (!t.link.paused || t.link.closed));
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
    this.owner = null;
    this.applied = null;
    try {
      await this.db.close();
    } catch {
      // It is already broken.
    }
    this.db = await PGlite.create(this.opts.dataDir);
    await this.init();
  }

  /** Run the frames a session has sent so far. */
  private async runPending(link: EmbeddedLink): Promise<void> {
    if (link.closed) return;
    if (this.owner === null && this.applied !== link) await this.apply(link);
    while (link.pending.length > 0 && !link.closed) {
      if (link.skipUntilSync) {
        await this.skipToSync(link, []);
        continue;
      }
      if (link.copyIn) {
        await this.feedCopy(link);
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
        if (plan instanceof PgError) await this.refuseCopy(link, special, plan);
        else await this.startCopy(link, plan);
      } else await this.exec(link, batch);
    }
  }

  /** Send frames to the backend, rewritten for this session; route what comes back. */
  private async exec(link: EmbeddedLink, frames: Buffer[]): Promise<void> {
    const last = frames[frames.length - 1]!;
    if (link.cancelRequested) {
      link.cancelRequested = false;
      if (last[0] === Frontend.Query || last[0] === Frontend.Sync) {
        link.events.data(Buffer.concat([
          errorResponse(new PgError(SqlState.QueryCanceled, 'canceling statement due to user request')),
          readyForQuery(this.db.isInTransaction() ? 'T' : 'I'),
        ]));
        return;
      }
    }
    const sent: Buffer[] = [];
    let unlisten = false;
    let sessionSet: string | null = null;
    let settingsMayChange = false;
    for (const f of frames) {
      switch (f[0]) {
        case Frontend.Query: {
          const text = decodeQuery(f);
          unlisten = this.trackListen(link, text) || unlisten;
          sessionSet = this.sql.sessionSet(text) ?? sessionSet;
          settingsMayChange ||= this.sql.changesSettings(text);
          sent.push(f);
          break;
        }
        case Frontend.Parse: {
          const m = decodeParse(f);
          unlisten = this.trackListen(link, m.text) || unlisten;
          if (m.paramTypes.length === 0) sessionSet = this.sql.sessionSet(m.text) ?? sessionSet;
          settingsMayChange ||= this.sql.changesSettings(m.text);
          const name = link.statementName(m.name);
          if (m.name === '') {
            // The unnamed statement is replaced by each Parse; a named one must be closed first.
            sent.push(encodeTarget(Frontend.Close, { target: 'S', name }));
            link.dropCloseCompletes++;
          }
          link.statements.add(name);
          sent.push(encodeParse({ ...m, name }));
          break;
        }
        case Frontend.Bind: {
          const b = decodeBindHead(f);
          sent.push(encodeBindHead({ ...b, statement: link.statementName(b.statement) }));
          break;
        }
        case Frontend.Describe:
        case Frontend.Close: {
          const t = decodeTarget(f);
          if (t.target === 'S') {
            const name = link.statementName(t.name);
            if (f[0] === Frontend.Close) link.statements.delete(name);
            sent.push(encodeTarget(f[0], { target: 'S', name }));
          } else sent.push(f);
          break;
        }
        case Frontend.Password:
          // A server ends the session for this (invalid frontend message type); PGlite never returns from it.
          throw new PgError(SqlState.ProtocolViolation, `invalid frontend message type ${Frontend.Password}`, 'FATAL');
        case Frontend.CopyData:
        case Frontend.CopyDone:
        case Frontend.CopyFail:
          // Only meaningful inside COPY FROM STDIN, which is handled apart; a stray one is ignored, as a server does.
          break;
        default:
          sent.push(f);
      }
    }
    if (sent.length === 0) return;
    const out = await this.db.execProtocolRaw(Buffer.concat(sent), { syncToFs: false });
    const kept: Buffer[] = [];
    let status: TxStatus | null = null;
    let failed = false;
    for (const m of messages(out)) {
      switch (m[0]) {
        case Backend.CloseComplete:
          if (link.dropCloseCompletes > 0) {
            link.dropCloseCompletes--;
            continue;
          }
          break;
        case Backend.NotificationResponse:
          this.routeNotification(link, m, kept);
          continue;
        case Backend.ErrorResponse:
          failed = true;
          break;
        case Backend.ReadyForQuery:
          status = String.fromCharCode(m[5]!) as TxStatus;
          link.dropCloseCompletes = 0;
          break;
      }
      kept.push(m);
    }
    if (sessionSet && !failed && status === 'I') link.sessionSets.push(sessionSet.trim().replace(/;$/, ''));
    // PGlite does not report setting changes itself: a server sends ParameterStatus before ReadyForQuery.
    if (settingsMayChange) {
      const changed = await this.reportChanges(link);
      const z = kept.findLastIndex((m) => m[0] === Backend.ReadyForQuery);
      kept.splice(z < 0 ? kept.length : z, 0, ...changed);
    }
    if (unlisten) await this.relisten();
    // Idle again (the unit is over and no transaction is open): others may have the backend.
    const unitOver = last[0] === Frontend.Query || last[0] === Frontend.Sync || last[0] === Frontend.FunctionCall;
    this.owner = unitOver && status === 'I' ? null : link;
    if (!link.closed && kept.length > 0) link.events.data(Buffer.concat(kept));
  }

  /** ParameterStatus for each reported setting whose value differs from what the client was told. */
  private async reportChanges(link: EmbeddedLink): Promise<Buffer[]> {
    const shown = await this.query(`SELECT ${REPORTED_PARAMS.map((n) => `pg_catalog.current_setting(${quoteLiteral(n)}, true)`).join(', ')}`);
    const out: Buffer[] = [];
    REPORTED_PARAMS.forEach((name, i) => {
      const v = shown.rows[0]?.[i];
      if (v === null || v === undefined || link.reported.get(name) === v) return;
      link.reported.set(name, v);
      out.push(parameterStatus(name, v));
    });
    return out;
  }

  /** Note LISTEN/UNLISTEN in a statement; true when the backend must re-listen afterwards. */
  private trackListen(link: EmbeddedLink, text: string): boolean {
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
  private async relisten(): Promise<void> {
    const all = new Set<string>(this.internalListeners.keys());
    for (const l of this.links) for (const c of l.listening) all.add(c);
    const sql = [...all].map((c) => `LISTEN ${quoteIdent(c)}`);
    if (sql.length > 0) await this.query(sql.join('; '));
  }

  /** NotificationResponse: Int32 pid, channel, payload. Each listening session gets it once. */
  private routeNotification(link: EmbeddedLink, m: Buffer, kept: Buffer[]): void {
    const r = new BodyReader(m, 9);
    const channel = r.cstring();
    const internal = this.internalListeners.get(channel);
    if (internal) {
      const payload = r.cstring();
      for (const cb of internal) cb(payload);
    }
    for (const l of this.links) {
      if (l.closed || !l.listening.has(channel)) continue;
      if (l === link) kept.push(m);
      else l.events.data(m);
    }
  }

  /**
   * COPY FROM STDIN that is not a lone simple query (inside a multi-statement Query, or in a
   * Parse) would put PGlite into COPY mode, where client data kills it: refuse it, and skip
   * the rest of an extended-protocol unit up to its Sync, as a server does after an error.
   */
  private async refuseCopy(link: EmbeddedLink, frame: Buffer, error: PgError): Promise<void> {
    const out: Buffer[] = [errorResponse(error)];
    if (frame[0] === Frontend.Query) {
      out.push(readyForQuery(await this.status()));
    } else {
      link.skipUntilSync = true;
      await this.skipToSync(link, out);
      return;
    }
    this.owner = this.db.isInTransaction() ? link : null;
    link.events.data(Buffer.concat(out));
  }

  /** After an error in an extended-protocol unit, drop its messages up to Sync, which is answered. */
  private async skipToSync(link: EmbeddedLink, out: Buffer[]): Promise<void> {
    while (link.pending.length > 0) {
      const f = link.pending.shift()!;
      if (f[0] === Frontend.Sync) {
        link.skipUntilSync = false;
        out.push(readyForQuery(await this.status()));
        break;
      }
    }
    // Until the Sync arrives, this session keeps the backend so nothing runs in between.
    this.owner = link.skipUntilSync || this.db.isInTransaction() ? link : null;
    if (out.length > 0) link.events.data(Buffer.concat(out));
  }

  /** COPY … FROM STDIN: check the target, then ask the client for its data. */
  private async startCopy(link: EmbeddedLink, plan: CopyInPlan): Promise<void> {
    let columns = plan.columns;
    if (columns === null) {
      const probe = await this.db.execProtocolRaw(encodeQuery(`SELECT * FROM ${plan.relation} LIMIT 0`), { syncToFs: false });
      const msgs = messages(probe);
      const err = msgs.find((x) => x[0] === Backend.ErrorResponse);
      if (err) {
        this.owner = this.db.isInTransaction() ? link : null;
        link.events.data(Buffer.concat([err, readyForQuery(await this.status())]));
        return;
      }
      const desc = msgs.find((x) => x[0] === Backend.RowDescription);
      columns = desc ? desc.readInt16BE(5) : 0;
    }
    link.copyIn = { sql: plan.sql, chunks: [] };
    this.owner = link;
    link.events.data(copyInResponse(plan.binary ? 1 : 0, columns));
  }

  /** Collect CopyData; on CopyDone load it all, on CopyFail give up. */
  private async feedCopy(link: EmbeddedLink): Promise<void> {
    const copy = link.copyIn!;
    while (link.pending.length > 0) {
      const f = link.pending.shift()!;
      if (f[0] === Frontend.CopyData) {
        copy.chunks.push(f.subarray(5));
        continue;
      }
      if (f[0] === Frontend.Flush || f[0] === Frontend.Sync) continue; // ignored during COPY, as a server does
      link.copyIn = null;
      let reply: Buffer;
      if (f[0] === Frontend.CopyDone) {
        try {
          const res = await this.db.query(copy.sql, [], { blob: new Blob(copy.chunks) });
          reply = commandComplete(`COPY ${res.affectedRows ?? 0}`);
        } catch (err) {
          reply = errorResponse(fromPgliteError(err));
        }
      } else if (f[0] === Frontend.CopyFail) {
        reply = errorResponse(new PgError(SqlState.QueryCanceled, `COPY from stdin failed: ${decodeCopyFail(f)}`));
      } else {
        reply = errorResponse(new PgError(SqlState.ProtocolViolation, `unexpected message type 0x${f[0]!.toString(16)} during COPY from stdin`));
      }
      const status = await this.status();
      this.owner = status === 'I' ? null : link;
      link.events.data(Buffer.concat([reply, readyForQuery(status)]));
      return;
    }
  }

  /** Whether a Query or Parse frame may start COPY FROM STDIN. */
  private feedsCopyIn(f: Buffer): boolean {
    if (f[0] === Frontend.Query) return this.sql.feedsCopyIn(decodeQuery(f));
    if (f[0] === Frontend.Parse) return this.sql.feedsCopyIn(decodeParse(f).text);
    return false;
  }

  /** The backend's transaction status, as its ReadyForQuery would say. */
  private async status(): Promise<TxStatus> {
    const out = await this.db.execProtocolRaw(encodeSimple(Frontend.Sync), { syncToFs: false });
    const z = messages(out).find((x) => x[0] === Backend.ReadyForQuery);
    return z ? (String.fromCharCode(z[5]!) as TxStatus) : 'I';
  }

  /** A session ended: undo what it left on the shared backend. */
  release(link: EmbeddedLink): void {
    this.links.delete(link);
    link.pending = [];
    const run = async (): Promise<void> => {
      const cleanup: Buffer[] = [encodeSimple(Frontend.Sync)];
      for (const name of link.statements) cleanup.push(encodeTarget(Frontend.Close, { target: 'S', name }));
      cleanup.push(encodeSimple(Frontend.Sync));
      if (this.owner === link || this.db.isInTransaction()) cleanup.push(encodeQuery('ROLLBACK'));
      await this.db.execProtocolRaw(Buffer.concat(cleanup), { syncToFs: false });
      if (link.listening.size > 0) {
        const still = new Set<string>(this.internalListeners.keys());
        for (const l of this.links) for (const c of l.listening) still.add(c);
        const gone = [...link.listening].filter((c) => !still.has(c));
        if (gone.length > 0) await this.query(gone.map((c) => `UNLISTEN ${quoteIdent(c)}`).join('; '));
      }
      if (this.owner === link) this.owner = null;
      if (this.applied === link) this.applied = null;
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
    await this.db.close();
  }
}

/** Map an error thrown by PGlite's query API to a client error. */
function fromPgliteError(err: unknown): PgError {
  if (err instanceof PgError) return err;
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'string') {
    const e = err as { code: string; message?: string; detail?: string; hint?: string };
    return new PgError(e.code, e.message ?? 'error', 'ERROR', {
      ...(e.detail ? { detail: e.detail } : {}),
      ...(e.hint ? { hint: e.hint } : {}),
    });
  }
  return new PgError(SqlState.InternalError, err instanceof Error ? err.message : String(err));
}

/** The `options` startup parameter: `-c name=value` and `--name=value`, backslash escapes spaces. */
export function parseOptions(options: string): [string, string][] {
  const words: string[] = [];
  let cur = '';
  for (let i = 0; i < options.length; i++) {
    const ch = options[i]!;
    if (ch === '\\' && i + 1 < options.length) cur += options[++i];
    else if (/\s/.test(ch)) {
      if (cur) words.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur) words.push(cur);
  const out: [string, string][] = [];
  for (let i = 0; i < words.length; i++) {
    let w = words[i]!;
    if (w === '-c' && i + 1 < words.length) w = words[++i]!;
    else if (w.startsWith('-c')) w = w.slice(2);
    else if (w.startsWith('--')) w = w.slice(2);
    else continue;
    const eq = w.indexOf('=');
    if (eq > 0) out.push([w.slice(0, eq).replace(/-/g, '_'), w.slice(eq + 1)]);
  }
  return out;
}
