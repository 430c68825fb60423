/**
 * The proxy's own parts put together: data-directory lock, upstream, state store, listener. The
 * plugins, and the services they start and stop, come from the composition (proxy/compose.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { ProxyConfig } from './config.js';
import { Listener } from './listener.js';
import { OwnConnections } from './own-connections.js';
import { lockDataDir } from './datadir-lock.js';
import { EmbeddedUpstream, membershipsOf } from './upstream/embedded.js';
import { RemoteUpstream, parseUpstreamUrl, type RemoteTarget } from './upstream/remote.js';
import { DEFAULT_AUTH_QUERY } from './auth/auth-query.js';
import type { Upstream } from './upstream/link.js';
import { PluginHost } from '../plugins/host.js';
import type { Plugin } from '../plugins/hooks.js';
import type { ProxyServices } from '../plugins/services.js';
import type { SqlRunner } from '../plugins/registry/migrate.js';
import type { SqlAnalyser } from '../plugins/sql/analyser.js';
import { connectRemoteStore, type StateStore } from './state-store.js';
import { StateLink } from './state-link.js';

export interface RunningServer {
  readonly address: AddressInfo;
  readonly upstream: Upstream;
  readonly listener: Listener;
  /**
   * Settles once the `provenance` schema is in place. With the embedded database that is before
   * the proxy listens; with a remote one the proxy listens at once and keeps trying in the
   * background while the upstream cannot be reached.
   */
  readonly stateReady: Promise<StateStore>;
  /** Graceful stop: running statements finish (up to the timeout), sessions close, state is flushed. */
  stop(timeoutMs?: number): Promise<void>;
}

/** The plugins on the seam, in order, and how to stop what they started. */
export interface Composition {
  readonly plugins: readonly Plugin[];
  /** Called once the sessions are closed, before the state store and the upstream go. */
  close(): Promise<void>;
}

export interface ServerOptions {
  readonly log: (msg: string) => void;
  /** PostgreSQL's parser, loaded: the embedded upstream needs it. */
  readonly sql: SqlAnalyser;
  /** Brings a new state store connection's schema up to date, before anything uses it. */
  readonly prepareStore: (store: SqlRunner) => Promise<void>;
  /** Fills an embedded database created by this start. */
  readonly seedFresh?: (store: SqlRunner) => Promise<void>;
  /** Builds the plugins once the upstream is open; may wait for what they need before the proxy listens. */
  readonly compose: (proxy: ProxyServices) => Promise<Composition>;
}

export async function startServer(config: ProxyConfig, opts: ServerOptions): Promise<RunningServer> {
  const { log, sql } = opts;
  const unlock = lockDataDir(config.dataDir);
  let upstream: Upstream;
  const pgliteDir = path.join(config.dataDir, 'pglite');
  const freshEmbedded = !config.upstream && !existsSync(pgliteDir);
  try {
    upstream = config.upstream
      ? new RemoteUpstream(config.upstream, { authQuery: config.authQuery === undefined ? DEFAULT_AUTH_QUERY : config.authQuery, log })
      : await EmbeddedUpstream.open({ dataDir: pgliteDir, log, sql });
  } catch (err) {
    unlock();
    throw err;
  }
  let stopped = false;
  const embedded = upstream instanceof EmbeddedUpstream ? upstream : null;
  const remote = upstream instanceof RemoteUpstream ? upstream : null;
  const state = new StateLink({
    connect: embedded
      ? () => Promise.resolve(embedded.store())
      : (failed) => connectWithRetry(config.upstream ?? '', remote as RemoteUpstream, opts.prepareStore, log, () => stopped, failed),
    open: (url) => openStore(url, parseUpstreamUrl(url), opts.prepareStore),
    stopped: () => stopped,
    log,
  });
  const stateReady = state.ready;
  if (embedded) {
    try {
      const store = await stateReady;
      await opts.prepareStore(store);
      if (freshEmbedded && opts.seedFresh) await opts.seedFresh(store);
    } catch (err) {
      await upstream.close();
      unlock();
      throw err;
    }
  }
  const ownConnections = new OwnConnections();
  const composition = await opts.compose({
    log,
    sql,
    state,
    upstream: remote ? { host: remote.target.host, port: remote.target.port } : null,
    embedded: embedded ? { store: embedded.store(), busy: () => embedded.busy } : null,
    roles: async (user) => {
      if (embedded) return embedded.memberships(user);
      // Never hold a login up waiting for the store: without it, the context has no roles.
      const store = state.current();
      if (store === null) return [];
      const r = await store.query(
        `SELECT ARRAY(${membershipsOf('(SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) $1)')}) AS roles`,
        [user],
      );
      return (r.rows[0]?.['roles'] as string[] | undefined) ?? [];
    },
    ownConnections,
  });
  state.attached().catch(() => undefined);
  const secure = config.tlsCert && config.tlsKey
    ? tls.createSecureContext({ cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey) })
    : null;
  const plugins = new PluginHost(composition.plugins, log);
  const listener = new Listener(upstream, plugins, {
    host: config.listenHost,
    port: config.listenPort,
    tls: secure,
    maxMessageSize: config.maxMessageSize,
    startupTimeoutMs: 60_000,
    log,
    unixSocketDir: config.listenUnix,
    dataDir: config.dataDir,
    ownConnections,
  });
  let address: AddressInfo;
  try {
    address = await listener.listen();
  } catch (err) {
    await upstream.close();
    unlock();
    throw err;
  }
  let stopping: Promise<void> | null = null;
  return {
    address,
    upstream,
    listener,
    stateReady,
    stop(timeoutMs = config.shutdownTimeoutMs) {
      stopping ??= (async () => {
        stopped = true;
        await listener.shutdown(timeoutMs);
        await composition.close();
        await state.close();
        await upstream.close();
        unlock();
      })();
      return stopping;
    },
  };
}

/** A connection to a remote database as the proxy, its schema brought up to date (closed again if that fails). */
async function openStore(
  url: string, target: RemoteTarget, prepare: (store: SqlRunner) => Promise<void>, stopped: () => boolean = () => false,
): Promise<StateStore> {
  const store = await connectRemoteStore(url, target);
  try {
    if (stopped()) throw new Error('the proxy is stopping');
    await prepare(store);
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
  return store;
}

/**
 * Log in to a remote upstream as the proxy and bring the schema up to date, retrying with
 * back-off while it cannot (the upstream may be down when the proxy starts, or refuse the
 * proxy's password until someone fixes it); each failure's reason goes to `failed`.
 */
async function connectWithRetry(
  url: string, upstream: RemoteUpstream, prepare: (store: SqlRunner) => Promise<void>,
  log: (m: string) => void, stopped: () => boolean, failed: (reason: string) => void,
): Promise<StateStore> {
  let delay = 500;
  for (;;) {
    try {
      return await openStore(url, upstream.target, prepare, stopped);
    } catch (err) {
      if (stopped()) throw err;
      const reason = storeFailure(err, upstream);
      failed(reason);
      log(`provenance schema: ${reason}; retrying in ${delay / 1000}s`);
      await new Promise((r) => setTimeout(r, delay).unref());
      if (stopped()) throw err;
      delay = Math.min(delay * 2, 30_000);
    }
  }
}

/** Why the proxy's own login failed, in words an operator can act on. */
function storeFailure(err: unknown, upstream: RemoteUpstream): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown }).code;
  const at = `${upstream.target.host}:${upstream.target.port}`;
  if (code === '28P01' || code === '28000') {
    return `the upstream at ${at} rejected the proxy's login (${message}); ` +
      'the proxy logs in with the --upstream URL\'s user and password, or PGUSER/PGPASSWORD';
  }
  if ((typeof code === 'string' && /^(E[A-Z]+|08...)$/.test(code)) || /timeout|ECONN|ENOTFOUND|EHOSTUNREACH|terminated/i.test(message)) {
    return `the upstream at ${at} is unreachable (${message})`;
  }
  return `the proxy cannot set up its schema on the upstream at ${at} (${message})`;
}
