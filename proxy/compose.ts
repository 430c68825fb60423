/**
 * The program's composition: the proxy's own parts (server.ts) with the plugins on the seam, in
 * order, and the services through which they meet (plugins/services.ts). The only file under
 * proxy/ that imports a plugin; the CLI and the tests start the proxy here.
 */
import { DEFAULT_RECORD_STATEMENT_LIMIT, DEFAULT_REPLAY_CACHE_MB, type ProxyConfig } from './config.js';
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
import { createMaterialization, createMaterializePlugin } from '../plugins/materialize/index.js';
import { createHttpPart, type HttpPart, type RunningHttp } from '../plugins/http/index.js';
import { createMaterializePolicyPart } from '../plugins/materialize-policy/index.js';
import { parseUpstreamUrl } from './upstream/remote.js';

export interface RunningProxy extends RunningServer {
  /** Settles once the transform registry was first read. */
  readonly registryLoaded: Promise<void>;
  /** The HTTP API, when configured. */
  readonly http: RunningHttp | null;
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
  let http: HttpPart | null = null;
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
      if (config.http) {
        const tls = config.tlsCert && config.tlsKey ? { cert: config.tlsCert, key: config.tlsKey } : null;
        http = createHttpPart(services, { ...config.http, tls });
      }
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
        recordStatements: config.recordStatements === false ? null : { limit: config.recordStatementLimit ?? DEFAULT_RECORD_STATEMENT_LIMIT },
      });
      const materialize = createMaterializePlugin(services);
      services.materialize = materialize.service;
      const database = (config.upstream ? parseUpstreamUrl(config.upstream).database : undefined) ?? process.env['PGDATABASE'] ?? 'postgres';
      const policies = createMaterializePolicyPart(services, (req) => {
        const store = services.state.current();
        const transforms = services.transforms;
        if (store === null || transforms === undefined) throw new Error('the proxy\'s own connection to the database is not available');
        return createMaterialization({ store, transforms }, req);
      }, () => database);
      services.provenance = policies.tap(materialize.tap(http ? http.tap(provenance.service) : provenance.service));
      if (opts.timetravel) services.timetravel = opts.timetravel(services);
      return {
        plugins: [materialize.plugin, timetravel.plugin, transforms.guards, transforms.plugin, provenance.plugin, ...(opts.plugins ?? []), ...(http ? [http.plugin] : [])],
        async close() {
          await policies.close();
          // Every record still in memory is written (or spooled) before the database goes away.
          await provenance.close();
          await transforms.close();
        },
      };
    },
  });
  const api = await startHttp(http, running, config, registryLoaded);
  return { ...running, registryLoaded, http: api };
}

/** The HTTP API reads through the proxy as its callers: it starts once the proxy listens. */
async function startHttp(
  http: HttpPart | null, running: RunningServer, config: ProxyConfig, registryLoaded: Promise<void>,
): Promise<RunningHttp | null> {
  if (!http) return null;
  let read = false;
  registryLoaded.then(() => (read = true), () => undefined);
  const database = (config.upstream ? parseUpstreamUrl(config.upstream).database : undefined) ?? 'postgres';
  try {
    const started = await http.start({ host: running.address.address, port: running.address.port, database }, () => read);
    const stop = running.stop.bind(running);
    // The API goes first at shutdown: its requests are sessions of the proxy.
    running.stop = async (timeoutMs?: number) => {
      await started.close();
      await stop(timeoutMs);
    };
    return started;
  } catch (err) {
    await running.stop(0);
    throw err;
  }
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
