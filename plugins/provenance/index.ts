/**
 * The provenance plugin, built from the services it needs: execution records go to the DAG
 * (through the spool while the database is away), spans to OpenTelemetry.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Plugin } from '../hooks.js';
import type { ProvenanceService, Services } from '../services.js';
import type { SqlRunner } from '../registry/migrate.js';
import { ProvenancePlugin, type Durability } from './plugin.js';
import { Recorder } from './recorder.js';
import { Spool } from './spool.js';
import { StoreLink } from './store-link.js';
import type { ExecutionRecord } from './execution-insert.js';
import { writeExecutions } from './execution-writer.js';
import { tracingFromEnv } from './tracing.js';
import type { ExactStatementOptions } from './exact-statement.js';

export interface ProvenanceConfig {
  readonly durability: Durability;
  /** Where the spool lives. */
  readonly dataDir: string;
  /** A separate database for the records; by default the one holding the proxy's state. */
  readonly store: string | undefined;
  /** The upstream's URL, when it is a remote PostgreSQL. */
  readonly upstreamUrl: string | undefined;
  /** Where the OTEL_* variables are read. */
  readonly env: NodeJS.ProcessEnv;
  /** Whether reads record their exact statement, for replays (see exact-statement.ts); null: not. */
  readonly recordStatements?: ExactStatementOptions | null;
}

export interface ProvenancePart {
  readonly plugin: Plugin;
  readonly service: ProvenanceService;
  /** Writes (or spools) every record still in memory, then lets go of connections and exporters. */
  close(): Promise<void>;
}

export async function createProvenancePlugin(services: Services, config: ProvenanceConfig): Promise<ProvenancePart> {
  const { log } = services;
  const tracing = tracingFromEnv(config.env, log);
  const durability = config.durability;
  let recorder: Recorder | null = null;
  let storeLink: StoreLink | null = null;
  if (durability !== 'off') {
    const spool = new Spool(path.join(config.dataDir, 'provenance.spool'));
    await spool.open();
    let current: () => SqlRunner | null;
    if (!config.store && services.embedded) {
      const embedded = services.embedded;
      const store = embedded.store;
      // With sync durability a statement waits for its records: while a session holds the single
      // embedded backend (an open transaction), they go to the spool rather than wait for it.
      current = durability === 'sync' ? () => (embedded.busy() ? null : store) : () => store;
    } else {
      const url = config.store ?? config.upstreamUrl ?? '';
      const link = (storeLink = new StoreLink(() => services.state.open(url), log, () => recorder?.kick()));
      current = () => link.current();
      void link.start();
    }
    recorder = new Recorder({
      spool,
      store: current,
      // The recorder holds what ProvenancePlugin gave it (or the spool kept): ExecutionRecords.
      write: (db, rows) => writeExecutions(db, rows as readonly ExecutionRecord[]),
      log,
    });
    recorder.start();
  }
  const upstream = services.upstream;
  const plugin = new ProvenancePlugin({
    durability,
    recorder,
    tracing,
    transformsActive: () => services.transforms?.active() ?? false,
    proxyId: randomBytes(4).toString('hex'),
    server: upstream ? { address: upstream.host, port: upstream.port } : { address: 'pglite', port: null },
    storeName: config.store ? redactUrl(config.store) : upstream ? 'upstream' : 'embedded',
    sql: services.sql,
    records: () => {
      if (!config.store && services.embedded) return { db: services.embedded.store, now: !services.embedded.busy() };
      const db = storeLink ? storeLink.current() : services.state.current();
      return db ? { db, now: true } : null;
    },
    replayCache: () => services.transforms?.replayCache(),
    recordStatements: config.recordStatements ?? null,
    log,
  });
  const records = storeLink ? () => storeLink?.current() ?? null : () => services.embedded?.store ?? null;
  const service: ProvenanceService = {
    get recording() {
      return plugin.recording;
    },
    record: (s, r) => plugin.record(s, r),
    backlog: () => recorder?.status() ?? { queued: 0, spooled: 0 },
    ...(recorder ? { records } : {}),
  };
  return {
    plugin,
    service,
    async close() {
      await recorder?.close().catch((err: unknown) => log(`provenance: closing the recorder failed: ${String(err)}`));
      await storeLink?.close();
      await tracing.shutdown().catch(() => undefined);
    },
  };
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
