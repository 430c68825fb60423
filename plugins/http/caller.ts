/**
 * A request's own session: a client connection to this proxy, logged in as the HTTP caller, so
 * that what HTTP serves went through everything a psql session's read goes through (the server's
 * privileges and row-level security, the transforms with the caller's context, provenance records
 * with application_name `http`).
 */
import { Socket } from 'node:net';
import pg from 'pg';
import type { Endpoint, OwnConnectionsService } from '../services.js';
import Cursor from 'pg-cursor';
import type { Credentials } from './auth.js';
import { toHttpError } from './errors.js';
import { TEXT_TYPES } from './values.js';

export interface ProxyAddress {
  readonly host: string;
  readonly port: number;
  readonly database: string;
}

export interface Slice {
  readonly rows: (string | null)[][];
  readonly types: readonly number[];
  readonly names: readonly string[];
}

/** The HTTP caller a session is opened for, and the proxy's registry that makes its session carry the caller's address. */
export interface OnBehalfOf {
  readonly caller: Endpoint;
  readonly own: OwnConnectionsService;
}

/** One caller's session through the proxy, for one request. */
export class CallerSession {
  private constructor(private readonly client: pg.Client, private readonly forget: () => void) {}

  static async open(at: ProxyAddress, who: Credentials, behalf: OnBehalfOf): Promise<CallerSession> {
    const socket = new Socket();
    let forget = (): void => undefined;
    // Before node-postgres's own listener sends the startup packet: the proxy asks on its arrival.
    socket.once('connect', () => {
      forget = behalf.own.vouch(
        { address: socket.localAddress ?? '', port: socket.localPort ?? 0 },
        { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 },
        behalf.caller,
      );
    });
    socket.once('close', () => forget());
    const client = new pg.Client({
      host: at.host, port: at.port, database: at.database, user: who.user, password: who.password,
      application_name: 'http', types: TEXT_TYPES, connectionTimeoutMillis: 10_000, stream: () => socket,
    });
    // A failed login must never surface as the process's unhandled 'error' event.
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => undefined);
      forget();
      throw toHttpError(err, 'setup');
    }
    return new CallerSession(client, () => forget());
  }

  async query(text: string, params: readonly unknown[] = [], phase: 'setup' | 'read' = 'setup'): Promise<pg.QueryResult<Record<string, string | null>>> {
    try {
      return await this.client.query<Record<string, string | null>>({ text, values: [...params] });
    } catch (err) {
      throw toHttpError(err, phase);
    }
  }

  /** A query object of node-postgres's (see exact-query.ts), submitted in this session. */
  submit<T extends pg.Submittable>(query: T): T {
    return this.client.query(query);
  }

  /** A read in slices of at most `size` rows: the portal is executed again for each (no whole result in memory). */
  async *slices(text: string, params: readonly unknown[], size: number): AsyncGenerator<Slice> {
    const cursor = this.client.query(new Cursor(text, [...params], { rowMode: 'array', types: TEXT_TYPES }));
    try {
      for (;;) {
        const slice = await new Promise<Slice>((resolve, reject) => {
          cursor.read(size, (err, rows, result) => {
            if (err) return reject(toHttpError(err, 'read'));
            resolve({
              rows: rows as (string | null)[][],
              types: result.fields.map((f) => f.dataTypeID),
              names: result.fields.map((f) => f.name),
            });
          });
        });
        yield slice;
        if (slice.rows.length < size) return;
      }
    } finally {
      await cursor.close().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
    this.forget();
  }
}

/** Runs `body` in a caller's session, closed afterwards whatever happens. */
export async function withCaller<T>(at: ProxyAddress, who: Credentials, behalf: OnBehalfOf, body: (s: CallerSession) => Promise<T>): Promise<T> {
  const session = await CallerSession.open(at, who, behalf);
  try {
    return await body(session);
  } finally {
    await session.close();
  }
}
