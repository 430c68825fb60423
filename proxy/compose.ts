/**
 * The program's composition: the proxy's own parts (server.ts) with the plugins on the seam, in
 * order, and the services through which they meet (plugins/services.ts). The only file under
 * proxy/ that imports a plugin; the CLI and the tests start the proxy here.
 */
import { DEFAULT_REPLAY_CACHE_MB, type ProxyConfig } from './config.js';
import { startServer, type RunningServer } from './server.js';
import type { Plugin } from '../plugins/hooks.js';
import type { Services, TimeTravelService } from '../plugins/services.js';
import { migrate } from '../plugins/registry/migrate.js';
import { seedDemo } from '../plugins/registry/demo.js';
import { SqlAnalyser } from '../plugins/sql/analyser.js';
import { SANDBOX_RUNTIME_VERSION } from '../sandbox/index.js';
import { createTransformsPlugin } from '../plugins/transforms/index.js';
import { createProvenancePlugin } from '../plugins/provenance/index.js';
import { createTimeTravelPlugin } from '../plugins/timetravel/index.js';

export interface RunningProxy extends RunningServer {
  /** Settles once the transform registry was first read. */
  readonly registryLoaded: Promise<void>;
}

export interface StartOptions {
  /** More plugins, after the proxy's own. */
  readonly plugins?: readonly Plugin[];
  readonly log?: (msg: string) => void;
  /** Where the OTEL_* variables are read; process.env by default. */
  readonly env?: NodeJS.ProcessEnv;
  /** A time-travel service of the caller's (tests), given the services. */
  readonly timetravel?: (services: Services) => TimeTravelService;
}

export async function startProxy(config: ProxyConfig, opts: StartOptions = {}): Promise<RunningProxy> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  // Loaded before anything listens: every statement that needs the parser finds it ready.
  const sql = await SqlAnalyser.load();
  let registryLoaded: Promise<void> = Promise.resolve();
  const running = await startServer(config, {
    log,
    sql,
    prepareStore: async (store) => {
      await migrate(store, SANDBOX_RUNTIME_VERSION);
    },
    ...(config.demo ? { seedFresh: seedDemo } : {}),
    compose: async (proxy) => {
      const services: Services = { ...proxy };
      const timetravel = createTimeTravelPlugin(services);
      services.timetravel = timetravel.service;
      const transforms = createTransformsPlugin(services, {
        isolates: config.transformIsolates,
        timeoutMs: config.transformTimeoutMs,
        memoryMb: config.transformMemoryMb,
        transformsDir: config.transformsDir,
        replayCacheMb: config.replayCacheMb ?? DEFAULT_REPLAY_CACHE_MB,
      });
      services.transforms = transforms.service;
      registryLoaded = transforms.loaded;
      await untilRead(transforms.loaded, proxy.embedded !== null);
      const provenance = await createProvenancePlugin(services, {
        durability: config.provenanceDurability,
        dataDir: config.dataDir,
        store: config.provenanceStore,
        upstreamUrl: config.upstream,
        env: opts.env ?? process.env,
      });
      services.provenance = provenance.service;
      if (opts.timetravel) services.timetravel = opts.timetravel(services);
      return {
        plugins: [timetravel.plugin, transforms.guards, transforms.plugin, provenance.plugin, ...(opts.plugins ?? [])],
        async close() {
          // Every record still in memory is written (or spooled) before the database goes away.
          await provenance.close();
          await transforms.close();
        },
      };
    },
  });
  return { ...running, registryLoaded };
}

/**
 * Until the registry is read, table data is refused (fail closed). The embedded database is read
 * before the proxy listens; a remote one gets a moment first. The timer holds the process up
 * meanwhile: nothing else does before the listener (retries are unref'd).
 */
async function untilRead(loaded: Promise<void>, embedded: boolean): Promise<void> {
  if (embedded) {
    await loaded;
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([loaded.catch(() => undefined), new Promise((r) => (timer = setTimeout(r, 5_000)))]);
  clearTimeout(timer);
}
