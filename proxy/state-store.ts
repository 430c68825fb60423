/**
 * The proxy's own connection to the database that keeps its state (the `provenance` schema):
 * the upstream by default. Clients log in as themselves; this login is the proxy's, taken from
 * the upstream URL's user and password, or from PGUSER/PGPASSWORD.
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { ConnectionOptions } from 'node:tls';
import type { SqlRunner } from '../plugins/registry/migrate.js';
import type { RemoteTarget } from './upstream/remote.js';

export interface StateStore extends SqlRunner {
  /** Call `cb` with the payload of every NOTIFY on `channel`, from any session or process. */
  listen(channel: string, cb: (payload: string) => void): Promise<void>;
  /** Called once if the connection breaks (a remote store); a closed store is never reused. */
  onLost(cb: () => void): void;
  close(): Promise<void>;
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

class RemoteStore implements StateStore {
  private closing = false;

  constructor(private readonly client: pg.Client) {}

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
    const r = await this.client.query<Record<string, unknown>>(
      prepare === undefined ? { text: sql, values: [...params] } : { name: prepare, text: sql, values: [...params] },
    );
    return { rows: r.rows };
  }

  async exec(sql: string): Promise<void> {
    await this.client.query(sql);
  }

  async listen(channel: string, cb: (payload: string) => void): Promise<void> {
    this.client.on('notification', (n) => {
      if (n.channel === channel) cb(n.payload ?? '');
    });
    await this.client.query(`LISTEN "${channel.replace(/"/g, '""')}"`);
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
