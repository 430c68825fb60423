/** Puts the parts together: upstream, plugins, listener. Used by the CLI and by tests. */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { ProxyConfig } from './config.js';
import { Listener } from './listener.js';
import { lockDataDir } from './datadir-lock.js';
import { EmbeddedUpstream, membershipsOf } from './upstream/embedded.js';
import { RemoteUpstream, parseUpstreamUrl } from './upstream/remote.js';
import { DEFAULT_AUTH_QUERY } from './auth/auth-query.js';
import type { Upstream } from './upstream/link.js';
import { PluginHost } from '../plugins/host.js';
import type { Plugin } from '../plugins/hooks.js';
import { migrate, type SqlRunner } from '../plugins/registry/migrate.js';
import { SANDBOX_RUNTIME_VERSION, SandboxPool } from '../sandbox/index.js';
import { TransformsPlugin } from '../plugins/transforms/plugin.js';
import { SqlAnalyser } from '../plugins/sql/analyser.js';
import { loadRegistry, type Registry } from '../plugins/transforms/registry-cache.js';
import { REGISTRY_CHANNEL } from '../plugins/registry/schema.js';
import { syncTransformFiles } from '../plugins/registry/file-sync.js';
import { seedDemo } from '../plugins/registry/demo.js';
import { connectRemoteStore, type StateStore } from './state-store.js';
import { ProvenancePlugin } from '../plugins/provenance/plugin.js';
import { Recorder } from '../plugins/provenance/recorder.js';
import { Spool } from '../plugins/provenance/spool.js';
import { StoreLink } from '../plugins/provenance/store-link.js';
import { INSERT_EXECUTIONS_SQL, insertExecutionsParams, type ExecutionRecord } from '../plugins/provenance/execution-insert.js';
import { tracingFromEnv } from '../plugins/provenance/tracing.js';
import { CoalescedTask } from '../plugins/transforms/coalesced-task.js';

/** Registry reloads start at least this far apart, however many NOTIFYs ask for them. */
const REGISTRY_RELOAD_INTERVAL_MS = 100;

export interface RunningProxy {
  readonly address: AddressInfo;
  readonly upstream: Upstream;
  readonly listener: Listener;
  /**
   * Settles once the `provenance` schema is in place. With the embedded database that is before
   * the proxy listens; with a remote one the proxy listens at once and keeps trying in the
   * background while the upstream cannot be reached.
   */
  readonly stateReady: Promise<StateStore>;
  /** Settles once the transform registry was first read. */
  readonly registryLoaded: Promise<void>;
  /** Graceful stop: running statements finish (up to the timeout), sessions close, state is flushed. */
  stop(timeoutMs?: number): Promise<void>;
}

export interface StartOptions {
  readonly plugins?: readonly Plugin[];
  readonly log?: (msg: string) => void;
  /** Where the OTEL_* variables are read; process.env by default. */
  readonly env?: NodeJS.ProcessEnv;
}

export async function startProxy(config: ProxyConfig, opts: StartOptions = {}): Promise<RunningProxy> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  // Loaded before anything listens: every statement that needs the parser finds it ready.
  const sql = await SqlAnalyser.load();
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
  /** Why the registry cannot be read, while it cannot (said in the 57P03 refusing table data). */
  let storeProblem: string | null = null;
  const onStoreFailure = (reason: string): void => {
    storeProblem = reason;
  };
  const stateReady: Promise<StateStore> =
    upstream instanceof EmbeddedUpstream
      ? Promise.resolve(upstream.store())
      : connectWithRetry(config.upstream ?? '', (upstream as RemoteUpstream), log, () => stopped, onStoreFailure);
  if (upstream instanceof EmbeddedUpstream) {
    try {
      const store = await stateReady;
      await migrate(store, SANDBOX_RUNTIME_VERSION);
      if (freshEmbedded && config.demo) await seedDemo(store);
    } catch (err) {
      await upstream.close();
      unlock();
      throw err;
    }
  }
  /** The store in use, once attached (and again after each reconnection). */
  let readyStore: StateStore | null = null;

  // Transforms: the registry is read once the state store is up, and again on every change.
  let registry: Registry | null = null;
  const pool = new SandboxPool({
    isolates: config.transformIsolates,
    timeoutMs: config.transformTimeoutMs,
    memoryMb: config.transformMemoryMb,
    // The isolate was abandoned and replaced; its thread may linger, so say so loudly.
    onCatastrophicError: (message) => log(`sandbox: an isolate failed beyond recovery and was replaced (${message}); restarting the proxy when convenient reclaims it`),
  });
  // The store connection can break (the upstream restarts): then the registry is unknown until
  // it is read again, and table data is refused meanwhile rather than served with stale rules.
  // A NOTIFY on the channel may come from anyone: all it can cause is a reload, coalesced.
  const reloads = new CoalescedTask(async () => {
    const store = readyStore;
    if (store === null) return;
    try {
      const loaded = await loadRegistry(store);
      if (readyStore === store) registry = loaded;
    } catch (err) {
      log(`transform registry: reload failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }, REGISTRY_RELOAD_INTERVAL_MS);
  const reload = (): Promise<void> => reloads.request();
  const attach = async (store: StateStore): Promise<void> => {
    readyStore = store;
    storeProblem = null;
    store.onLost(() => {
      if (stopped) return;
      readyStore = null;
      registry = null;
      storeProblem = 'the proxy lost its connection to the database; reconnecting';
      log('state store: connection lost; reconnecting');
      void connectWithRetry(config.upstream ?? '', upstream as RemoteUpstream, log, () => stopped, onStoreFailure).then(attach, () => undefined);
    });
    await store.listen(REGISTRY_CHANNEL, () => void reload());
    await reload();
  };
  const registryLoaded = stateReady.then(async (store) => {
    await attach(store);
    const synced = await syncTransformFiles(store, config.transformsDir, log);
    if (synced.length > 0) {
      log(`transforms directory: registered ${synced.join(', ')}`);
      await reload();
    }
  });
  registryLoaded.catch(() => undefined);
  if (upstream instanceof EmbeddedUpstream) await registryLoaded;
  // Until the registry is read, table data is refused (fail closed); give it a moment first. The
  // timer holds the process up meanwhile: nothing else does before the listener (retries are unref'd).
  else {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([registryLoaded.catch(() => undefined), new Promise((r) => (timer = setTimeout(r, 5_000)))]);
    clearTimeout(timer);
  }
  // Provenance: execution records to the DAG (through the spool when the database is away), spans.
  const tracing = tracingFromEnv(opts.env ?? process.env, log);
  const durability = config.provenanceDurability;
  let recorder: Recorder | null = null;
  let storeLink: StoreLink | null = null;
  if (durability !== 'off') {
    const spool = new Spool(path.join(config.dataDir, 'provenance.spool'));
    await spool.open();
    let current: () => SqlRunner | null;
    if (!config.provenanceStore && upstream instanceof EmbeddedUpstream) {
      const embedded = upstream;
      const store = embedded.store();
      // With sync durability a statement waits for its records: while a session holds the single
      // embedded backend (an open transaction), they go to the spool rather than wait for it.
      current = durability === 'sync' ? () => (embedded.busy ? null : store) : () => store;
    } else {
      const url = config.provenanceStore ?? config.upstream ?? '';
      const target = parseUpstreamUrl(url);
      const link = (storeLink = new StoreLink(async () => {
        const store = await connectRemoteStore(url, target);
        try {
          await migrate(store, SANDBOX_RUNTIME_VERSION);
        } catch (err) {
          await store.close().catch(() => undefined);
          throw err;
        }
        return store;
      }, log, () => recorder?.kick()));
      current = () => link.current();
      void link.start();
    }
    recorder = new Recorder({
      spool,
      store: current,
      insertSql: INSERT_EXECUTIONS_SQL,
      insertName: 'provenance_insert_executions',
      // The recorder holds what ProvenancePlugin gave it (or the spool kept): ExecutionRecords.
      insertParams: (rows) => insertExecutionsParams(rows as readonly ExecutionRecord[]),
      log,
    });
    recorder.start();
  }
  const upstreamTarget = config.upstream ? parseUpstreamUrl(config.upstream) : null;
  const provenance = new ProvenancePlugin({
    durability,
    recorder,
    tracing,
    transformsActive: () => registry !== null && registry.tables.size > 0,
    proxyId: randomBytes(4).toString('hex'),
    server: upstreamTarget ? { address: upstreamTarget.host, port: upstreamTarget.port } : { address: 'pglite', port: null },
    storeName: config.provenanceStore ? redactUrl(config.provenanceStore) : upstreamTarget ? 'upstream' : 'embedded',
    log,
  });
  const transforms = new TransformsPlugin({
    pool,
    sql,
    registry: () => registry,
    refresh: reload,
    registryProblem: () => storeProblem,
    record: {
      enabled: () => provenance.recording,
      executions: (s, r) => provenance.executions(s, r),
    },
    roles: async (user) => {
      if (upstream instanceof EmbeddedUpstream) return upstream.memberships(user);
      // Never hold a login up waiting for the store: without it, the context has no roles.
      if (readyStore === null) return [];
      const store = readyStore;
      const r = await store.query(
        `SELECT ARRAY(${membershipsOf('(SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) $1)')}) AS roles`,
        [user],
      );
      return (r.rows[0]?.['roles'] as string[] | undefined) ?? [];
    },
  });
  const secure = config.tlsCert && config.tlsKey
    ? tls.createSecureContext({ cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey) })
    : null;
  const plugins = new PluginHost([transforms, provenance, ...(opts.plugins ?? [])], log);
  const listener = new Listener(upstream, plugins, {
    host: config.listenHost,
    port: config.listenPort,
    tls: secure,
    maxMessageSize: config.maxMessageSize,
    startupTimeoutMs: 60_000,
    log,
    unixSocketDir: config.listenUnix,
    dataDir: config.dataDir,
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
    registryLoaded,
    stop(timeoutMs = config.shutdownTimeoutMs) {
      stopping ??= (async () => {
        stopped = true;
        await listener.shutdown(timeoutMs);
        // Every record still in memory is written (or spooled) before the database goes away.
        await recorder?.close().catch((err: unknown) => log(`provenance: closing the recorder failed: ${String(err)}`));
        await storeLink?.close();
        await tracing.shutdown().catch(() => undefined);
        await readyStore?.close();
        await pool.close();
        await upstream.close();
        unlock();
      })();
      return stopping;
    },
  };
}

/**
 * Log in to a remote upstream as the proxy and bring the schema up to date, retrying with
 * back-off while it cannot (the upstream may be down when the proxy starts, or refuse the
 * proxy's password until someone fixes it); each failure's reason goes to `failed`.
 */
async function connectWithRetry(
  url: string, upstream: RemoteUpstream, log: (m: string) => void, stopped: () => boolean, failed: (reason: string) => void,
): Promise<StateStore> {
  let delay = 500;
  for (;;) {
    try {
      const store = await connectRemoteStore(url, upstream.target);
      try {
        if (stopped()) throw new Error('the proxy is stopping');
        await migrate(store, SANDBOX_RUNTIME_VERSION);
      } catch (err) {
        await store.close().catch(() => undefined);
        throw err;
      }
      return store;
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

/** A URL as it may be shown: without its password. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'another database';
  }
}
