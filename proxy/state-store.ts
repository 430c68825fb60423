/**
 * The proxy's own connection to the database that keeps its state (the `provenance` schema):
 * the upstream by default. Clients log in as themselves; this login is the proxy's, taken from
 * the upstream URL's user and password, or from PGUSER/PGPASSWORD.
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { from as copyFromStdin } from 'pg-copy-streams';
import type { ConnectionOptions } from 'node:tls';
import type { SqlRunner } from '../plugins/registry/migrate.js';
import type { CopyRunner } from '../plugins/services.js';
import type { RemoteTarget } from './upstream/remote.js';

export interface StateStore extends SqlRunner {
  /** Call `cb` with the payload of every NOTIFY on `channel`, from any session or process. */
  listen(channel: string, cb: (payload: string) => void): Promise<void>;
  /** Called once if the connection breaks (a remote store); a closed store is never reused. */
  onLost(cb: () => void): void;
  close(): Promise<void>;
  /** Runs `body` in a transaction, with COPY FROM STDIN at hand (a remote store). */
  transaction?<T>(body: (tx: CopyRunner) => Promise<T>): Promise<T>;
}

function sslOptions(target: RemoteTarget): ConnectionOptions | false {
  switch (target.sslmode) {
    case 'disable':
    case 'allow':
      return false;
    case 'prefer':
    case 'require':
      return { rejectUnauthorized: false };
    case 'verify-ca':
    case 'verify-full': {
      const opts: ConnectionOptions = { rejectUnauthorized: true };
      if (target.sslrootcert) opts.ca = readFileSync(target.sslrootcert);
      if (target.sslmode === 'verify-ca') opts.checkServerIdentity = () => undefined;
      return opts;
    }
  }
}

/**
 * What the proxy's own connections search for unqualified names: the catalog only, temporary
 * objects last (never first, where a relation of pg_temp would shadow one of pg_catalog).
 * Nothing any other role can create in is on it, so no one can slip a function or operator under
 * a name the proxy's SQL uses; the SQL qualifies every name besides.
 */
export const OWN_SEARCH_PATH = 'pg_catalog, pg_temp';

class RemoteStore implements StateStore {
  private closing = false;
  /**
   * One query at a time on the connection: pg queues overlapping calls itself but is deprecating
   * that (it stops in its next major version), and callers here (registry reloads, role lookups,
   * provenance writes) overlap freely.
   */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly client: pg.Client) {}

  private serial<T>(run: () => Promise<T>): Promise<T> {
    const next = this.tail.then(run, run);
    this.tail = next.catch(() => undefined);
    return next;
  }

  onLost(cb: () => void): void {
    let fired = false;
    const lost = (): void => {
      if (fired || this.closing) return;
      fired = true;
      cb();
    };
    this.client.on('error', lost);
    this.client.on('end', lost);
  }

  async query(sql: string, params: readonly unknown[] = [], prepare?: string): Promise<{ rows: Record<string, unknown>[] }> {
    const r = await this.serial(() => this.client.query<Record<string, unknown>>(
      prepare === undefined ? { text: sql, values: [...params] } : { name: prepare, text: sql, values: [...params] },
    ));
    return { rows: r.rows };
  }

  async exec(sql: string): Promise<void> {
    await this.serial(() => this.client.query(sql));
  }

  /**
   * Runs `body` in a transaction, with no other caller's statement in between, and commits (rolls
   * back when it throws). Its runner can COPY FROM STDIN, which pg's own query cannot (it answers
   * the server's CopyInResponse with a CopyFail, "no source stream"): that needs a query object
   * that feeds CopyData, which pg-copy-streams is.
   */
  transaction<T>(body: (tx: CopyRunner) => Promise<T>): Promise<T> {
    const client = this.client;
    const tx: CopyRunner = {
      async query(sql, params = [], prepare) {
        const r = await client.query<Record<string, unknown>>(
          prepare === undefined ? { text: sql, values: [...params] } : { name: prepare, text: sql, values: [...params] },
        );
        return { rows: r.rows };
      },
      async exec(sql) {
        await client.query(sql);
      },
      copyFrom: (sql, data) => new Promise<void>((resolve, reject) => {
        const stream = client.query(copyFromStdin(sql));
        stream.on('error', reject);
        stream.on('finish', resolve);
        stream.end(data);
      }),
    };
    return this.serial(async () => {
      await client.query('BEGIN');
      try {
        const out = await body(tx);
        await client.query('COMMIT');
        return out;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  async listen(channel: string, cb: (payload: string) => void): Promise<void> {
    this.client.on('notification', (n) => {
      if (n.channel === channel) cb(n.payload ?? '');
    });
    await this.serial(() => this.client.query(`LISTEN "${channel.replace(/"/g, '""')}"`));
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.client.end();
  }
}

export async function connectRemoteStore(url: string, target: RemoteTarget): Promise<StateStore> {
  const u = new URL(url);
  const config: pg.ClientConfig = {
    host: target.host,
    port: target.port,
    database: target.database ?? process.env['PGDATABASE'] ?? 'postgres',
    user: u.username ? decodeURIComponent(u.username) : process.env['PGUSER'],
    password: u.password ? decodeURIComponent(u.password) : process.env['PGPASSWORD'],
    application_name: 'provenance-proxy',
    connectionTimeoutMillis: target.connectTimeoutMs,
  };
  const ssl = sslOptions(target);
  const attempt = async (useSsl: ConnectionOptions | false): Promise<pg.Client> => {
    const client = new pg.Client({ ...config, ssl: useSsl });
    client.on('error', () => undefined);
    await client.connect();
    try {
      await client.query(`SET search_path = ${OWN_SEARCH_PATH}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    return client;
  };
  let client: pg.Client;
  try {
    client = await attempt(ssl);
  } catch (err) {
    // sslmode=prefer: a server without TLS is fine too.
    if (target.sslmode !== 'prefer' || !/does not support SSL/i.test(String(err))) throw err;
    client = await attempt(false);
  }
  return new RemoteStore(client);
}
