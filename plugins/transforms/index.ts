/**
 * The transforms plugin, built from the services it needs: a pool of sandboxes, and the registry
 * read from the state store once it is attached and again on every change announced on
 * REGISTRY_CHANNEL (and at once after a client's request that may have changed it).
 */
import type { Plugin } from '../hooks.js';
import type { Services, TransformsService } from '../services.js';
import { REGISTRY_CHANNEL } from '../registry/schema.js';
import { syncTransformFiles } from '../registry/file-sync.js';
import { SandboxPool } from '../../sandbox/index.js';
import { CoalescedTask } from './coalesced-task.js';
import { TransformsPlugin } from './plugin.js';
import { loadRegistry, type Registry } from './registry-cache.js';
import { loadVersionHistory, type VersionHistory } from './version-history.js';
import { ReplayCache } from './replay-cache.js';
import { GuardsPlugin } from './guards/plugin.js';
import { loadHistoryColumns, type HistoryColumns } from './history-columns.js';
import { momentClock, replayContext } from './replay-plan.js';
import { chainAt, startTableRun } from './table-run.js';

/** Registry reloads start at least this far apart, however many NOTIFYs ask for them. */
const REGISTRY_RELOAD_INTERVAL_MS = 100;

export interface TransformsConfig {
  readonly isolates: number;
  readonly timeoutMs: number;
  readonly memoryMb: number;
  /** Transform files registered at start (see plugins/registry/file-sync.ts). */
  readonly transformsDir: string;
  /** Bound of the cache of replayed results, in MiB (0: none). */
  readonly replayCacheMb: number;
}

export interface TransformsPart {
  readonly plugin: Plugin;
  /** Refuses statements that would read around a guarded column (see guards/plugin.ts). */
  readonly guards: Plugin;
  readonly service: TransformsService;
  /** Settles once the registry was first read (and the transforms directory registered). */
  readonly loaded: Promise<void>;
  close(): Promise<void>;
}

export function createTransformsPlugin(services: Services, config: TransformsConfig): TransformsPart {
  const { log, state } = services;
  let registry: Registry | null = null;
  let historyColumns: HistoryColumns | null = null;
  const guards = new GuardsPlugin({
    sql: services.sql, registry: () => registry, store: () => state.current(), roles: (user) => services.roles(user),
    historyColumns: () => historyColumns,
  });
  let versions: VersionHistory | null = null;
  const pool = new SandboxPool({
    isolates: config.isolates,
    timeoutMs: config.timeoutMs,
    memoryMb: config.memoryMb,
    // The isolate was abandoned and replaced; its thread may linger, so say so loudly.
    onCatastrophicError: (message) => log(`sandbox: an isolate failed beyond recovery and was replaced (${message}); restarting the proxy when convenient reclaims it`),
  });
  // While the store is away the registry is unknown, and table data is refused meanwhile rather
  // than served with stale rules. A NOTIFY on the channel may come from anyone: all it can cause
  // is a reload, coalesced.
  const reloads = new CoalescedTask(async () => {
    const store = state.current();
    if (store === null) return;
    try {
      const [loaded, history, columns] = await Promise.all([loadRegistry(store), loadVersionHistory(store), loadHistoryColumns(store)]);
      if (state.current() === store) {
        registry = loaded;
        versions = history;
        historyColumns = columns;
        plugin.registryChanged();
      }
      guards.registryChanged();
    } catch (err) {
      log(`transform registry: reload failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }, REGISTRY_RELOAD_INTERVAL_MS);
  const reload = (): Promise<void> => reloads.request();
  state.watch({
    attached: async (store) => {
      await store.listen(REGISTRY_CHANNEL, () => void reload());
      await reload();
    },
    lost: () => {
      registry = null;
      guards.registryChanged();
      versions = null;
      historyColumns = null;
    },
  });
  const loaded = state.attached().then(async (store) => {
    const synced = await syncTransformFiles(store, config.transformsDir, log);
    if (synced.length > 0) {
      log(`transforms directory: registered ${synced.join(', ')}`);
      await reload();
    }
  });
  loaded.catch(() => undefined);
  const replayCache = new ReplayCache(pool, config.replayCacheMb * 1024 * 1024);
  const plugin = new TransformsPlugin({
    pool,
    sql: services.sql,
    registry: () => registry,
    refresh: reload,
    registryProblem: () => state.problem(),
    provenance: () => services.provenance,
    roles: (user) => services.roles(user),
    timetravel: () => services.timetravel,
    versions: () => versions,
    replayCache,
    historyColumns: () => historyColumns,
  }, (s) => guards.initialPath(s), (role, schemas) => guards.schemaUsage(role, schemas));
  return {
    plugin,
    guards,
    service: {
      active: () => registry !== null && registry.tables.size > 0,
      replayCache: () => replayCache.stats(),
      takeReplayCacheCounts: () => replayCache.takeTableCounts(),
      chainAt: (oid, atMicros) => chainAt(versions, oid, atMicros),
      replayContext: (s, moment) => replayContext(s, moment, momentClock(moment)) as Readonly<Record<string, unknown>>,
      runTable: (s, oid, moment, fields) => startTableRun(
        { pool, sql: services.sql, registry: () => registry, versions: () => versions, provenance: () => services.provenance }, s, oid, moment, fields),
    },
    loaded,
    close: () => pool.close(),
  };
}
