/**
 * Reads a user's stored password verifier from the server, with the proxy's own login, on a
 * connection of its own: the auth query (PgBouncer's auth_query). Asked once per login that
 * needs it and never cached, so a changed password applies to the next login.
 *
 * When the query cannot run (the function is missing, the login lacks EXECUTE, the server is
 * unreachable) the answer is "unavailable" and the login is relayed as a whole instead.
 */
import { connectRemoteStore, type StateStore } from '../state-store.js';
import type { RemoteTarget } from '../upstream/remote.js';

export const DEFAULT_AUTH_QUERY = 'SELECT usename, passwd FROM provenance.user_lookup($1)';

/**
 * The function the default query calls. SECURITY DEFINER so that it reads pg_authid with its
 * owner's rights (a superuser's), with a fixed search_path so that no object of a caller's can
 * stand in for a catalog one, and executable only by the login that created it. A role whose
 * password expired gets no verifier, so its login fails as the server fails it.
 */
export const USER_LOOKUP_FUNCTION = `
CREATE SCHEMA IF NOT EXISTS provenance;
CREATE OR REPLACE FUNCTION provenance.user_lookup(i_username text, OUT usename name, OUT passwd text)
  RETURNS SETOF record LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
  AS $$ SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END
        FROM pg_catalog.pg_authid WHERE rolname = i_username $$;
REVOKE ALL ON FUNCTION provenance.user_lookup(text) FROM PUBLIC;
`;

/** A failed query is not tried again for this long: each login in between is relayed. */
const RETRY_AFTER_MS = 10_000;

/** `undefined`: the query is unavailable; `null`: no such user, or no password stored. */
export type SecretLookup = (user: string) => Promise<string | null | undefined>;

export class AuthQuery {
  private conn: Promise<StateStore> | null = null;
  /** Queries run one after another on the one connection. */
  private tail: Promise<unknown> = Promise.resolve();
  private unavailableUntil = 0;

  constructor(
    private readonly url: string,
    private readonly target: RemoteTarget,
    private readonly sql: string,
    private readonly log: (msg: string) => void,
  ) {}

  readonly secret: SecretLookup = (user) => {
    if (Date.now() < this.unavailableUntil) return Promise.resolve(undefined);
    const run = this.tail.then(() => this.run(user));
    this.tail = run.catch(() => undefined);
    return run;
  };

  async close(): Promise<void> {
    const conn = this.conn;
    this.conn = null;
    if (conn) await conn.then((c) => c.close(), () => undefined).catch(() => undefined);
  }

  /** `fresh`: a new connection was just opened for this query (an old one may have broken since its last use). */
  private async run(user: string, fresh = this.conn === null): Promise<string | null | undefined> {
    let store: StateStore;
    try {
      store = await (this.conn ??= this.open());
    } catch (err) {
      this.conn = null;
      return this.unavailable(err);
    }
    try {
      const { rows } = await withTimeout(store.query(this.sql, [user]), this.target.connectTimeoutMs);
      const passwd = rows[0]?.['passwd'];
      return typeof passwd === 'string' && passwd !== '' ? passwd : null;
    } catch (err) {
      // A refused query waits RETRY_AFTER_MS; a broken connection (the server restarted) is opened again at once.
      if (serverAnswered(err)) return this.unavailable(err);
      this.conn = null;
      void store.close().catch(() => undefined);
      return fresh ? this.unavailable(err) : this.run(user, true);
    }
  }

  private async open(): Promise<StateStore> {
    const store = await connectRemoteStore(this.url, this.target);
    if (this.sql === DEFAULT_AUTH_QUERY) await this.ensureFunction(store);
    return store;
  }

  /** Create the lookup function when it is missing and this login is a superuser (the only one that may). */
  private async ensureFunction(store: StateStore): Promise<void> {
    const { rows } = await store.query(
      "SELECT to_regprocedure('provenance.user_lookup(text)') IS NOT NULL AS present, " +
        '(SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) AS superuser',
    );
    if (rows[0]?.['present'] === true || rows[0]?.['superuser'] !== true) return;
    // The schema may be created at the same time by the proxy's migration: try again once.
    for (let attempt = 1; ; attempt++) {
      try {
        await store.exec(`BEGIN;${USER_LOOKUP_FUNCTION}COMMIT;`);
        this.log('auth query: created provenance.user_lookup(text)');
        return;
      } catch (err) {
        await store.exec('ROLLBACK').catch(() => undefined);
        if (attempt === 2) {
          this.log(`auth query: could not create provenance.user_lookup(text): ${message(err)}`);
          return;
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  private unavailable(err: unknown): undefined {
    this.unavailableUntil = Date.now() + RETRY_AFTER_MS;
    this.log(`auth query unavailable (${message(err)}): logins are relayed to the server as a whole`);
    return undefined;
  }
}

/**
 * Whether the server refused the query itself (node-postgres gives its SQLSTATE as `code`), rather
 * than the connection failing (no code, class 08, or 57P: the server shutting down).
 */
function serverAnswered(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !/^(08|57P)/.test(code);
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
