/** Command-line options and their environment-variable twins. Flags win over the environment. */
import { parseArgs } from 'node:util';
import path from 'node:path';

export interface ProxyConfig {
  readonly listenHost: string;
  readonly listenPort: number;
  /** Directory of a Unix-domain socket to listen on as well (DIR/.s.PGSQL.<port>). */
  readonly listenUnix?: string | undefined;
  /** postgres:// URL of a real server; undefined for embedded PGlite. */
  readonly upstream: string | undefined;
  readonly dataDir: string;
  readonly tlsCert: string | undefined;
  readonly tlsKey: string | undefined;
  readonly maxMessageSize: number;
  readonly shutdownTimeoutMs: number;
  /** Directory of transform files synced into the registry on start. */
  readonly transformsDir: string;
  /** Seed the demo table and transforms into a brand-new embedded database. */
  readonly demo: boolean;
  readonly transformTimeoutMs: number;
  readonly transformMemoryMb: number;
  readonly transformIsolates: number;
  /** off: no execution records; async: written off the client's path; sync: durable before CommandComplete. */
  readonly provenanceDurability: 'off' | 'async' | 'sync';
  /** postgres:// URL of the database keeping the provenance DAG; undefined: the upstream (or the embedded one). */
  readonly provenanceStore: string | undefined;
  /** Query reading a user's password verifier (undefined: the default one); null: relay password logins. */
  readonly authQuery?: string | null;
  /** Where the HTTP API listens (HTTPS with tlsCert/tlsKey); undefined or null: no HTTP. */
  readonly http?: { readonly host: string; readonly port: number } | null;
  /** Bound of the cache of replayed transform results, in MiB (undefined: the default; 0: no cache). */
  readonly replayCacheMb?: number;
  /** Whether reads record their exact statement and parameters, for replays (undefined: on). */
  readonly recordStatements?: boolean;
  /** Largest statement text, and sum of parameter sizes, recorded (bytes; undefined: the default). */
  readonly recordStatementLimit?: number;
}

export const DEFAULT_RECORD_STATEMENT_LIMIT = 65_536;

export const DEFAULT_REPLAY_CACHE_MB = 256;

export const USAGE = `Usage: provenance-proxy [options]

  --listen HOST:PORT        where clients connect            (PROVENANCE_LISTEN, default 127.0.0.1:6432)
  --listen-unix DIR         also listen on the Unix socket DIR/.s.PGSQL.<port of --listen>
                            (PROVENANCE_LISTEN_UNIX; e.g. /var/run/postgresql)
  --upstream URL            postgres://HOST:PORT/DB?sslmode=… of a real PostgreSQL
                            (PROVENANCE_UPSTREAM; default: embedded PGlite in --data-dir)
  --data-dir DIR            state of this proxy; the embedded database lives here
                            (PROVENANCE_DATA_DIR, default ./.provenance)
  --tls-cert FILE           PEM certificate for TLS toward clients (PROVENANCE_TLS_CERT)
  --tls-key FILE            PEM private key for TLS toward clients (PROVENANCE_TLS_KEY)
  --max-message-size BYTES  largest client message accepted (PROVENANCE_MAX_MESSAGE_SIZE, default 134217728)
  --shutdown-timeout SECS   on SIGINT/SIGTERM, how long running statements may finish
                            (PROVENANCE_SHUTDOWN_TIMEOUT, default 30)
  --transforms DIR          transform files to register on start (PROVENANCE_TRANSFORMS, default ./transforms)
  --transform-timeout MS    time limit of one transform batch (PROVENANCE_TRANSFORM_TIMEOUT, default 1000)
  --transform-memory MB     memory limit of each sandbox isolate (PROVENANCE_TRANSFORM_MEMORY, default 64)
  --transform-isolates N    sandbox isolates running transforms in parallel (PROVENANCE_TRANSFORM_ISOLATES, default 2)
  --provenance-durability off|async|sync
                            execution records: none, written in the background (a crash may lose
                            the last 50 ms), or durable before each CommandComplete
                            (PROVENANCE_DURABILITY, default async)
  --provenance-store URL    postgres://… of another database to keep the provenance DAG in
                            (PROVENANCE_STORE; default: the upstream, or the embedded database)
  --replay-cache-size MB     memory for transform results replayed by as-of reads, shared by sessions;
                            0: none (PROVENANCE_REPLAY_CACHE_SIZE, default 256)
  --auth-query SQL|off      how the proxy reads a user's stored password, to complete SCRAM and md5
                            logins itself (channel binding on each leg); off: relay the login
                            (PROVENANCE_AUTH_QUERY, default
                            SELECT usename, passwd FROM provenance.user_lookup($1))
  --http HOST:PORT|off      the HTTP API: data, lineage, executions, /healthz, /metrics, a page at /
                            (PROVENANCE_HTTP, default 127.0.0.1:6433; HTTPS with --tls-cert/--tls-key)
  --record-statements on|off
                            record each read's exact statement and parameters (literals included;
                            provenance_admin reads them) so that it can be replayed
                            (PROVENANCE_RECORD_STATEMENTS, default on)
  --record-statement-limit BYTES
                            larger statements, or parameters, are recorded as not replayable
                            (PROVENANCE_RECORD_STATEMENT_LIMIT, default 65536)
  --no-demo                 do not seed the demo into a new embedded database (PROVENANCE_DEMO=off)
  --help                    show this text
`;

export class ConfigError extends Error {}

function hostPort(s: string, option = '--listen'): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(s);
  if (!m) throw new ConfigError(`invalid ${option} "${s}": expected HOST:PORT`);
  const port = Number(m[3]);
  if (port < 0 || port > 65535) throw new ConfigError(`invalid port in ${option} "${s}"`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

function positive(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new ConfigError(`invalid ${name} "${v}": expected a positive number`);
  return n;
}

export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ProxyConfig | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        listen: { type: 'string' },
        'listen-unix': { type: 'string' },
        upstream: { type: 'string' },
        'data-dir': { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'max-message-size': { type: 'string' },
        'shutdown-timeout': { type: 'string' },
        transforms: { type: 'string' },
        'transform-timeout': { type: 'string' },
        'transform-memory': { type: 'string' },
        'transform-isolates': { type: 'string' },
        'provenance-durability': { type: 'string' },
        'provenance-store': { type: 'string' },
        'auth-query': { type: 'string' },
        http: { type: 'string' },
        'replay-cache-size': { type: 'string' },
        'record-statements': { type: 'string' },
        'record-statement-limit': { type: 'string' },
        'no-demo': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new ConfigError(err instanceof Error ? err.message : String(err));
  }
  if (values.help) return 'help';
  const listen = hostPort(values.listen ?? env.PROVENANCE_LISTEN ?? '127.0.0.1:6432');
  const tlsCert = values['tls-cert'] ?? env.PROVENANCE_TLS_CERT;
  const tlsKey = values['tls-key'] ?? env.PROVENANCE_TLS_KEY;
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new ConfigError('--tls-cert and --tls-key go together');
  const upstream = values.upstream ?? env.PROVENANCE_UPSTREAM;
  const durability = values['provenance-durability'] ?? env.PROVENANCE_DURABILITY ?? 'async';
  if (durability !== 'off' && durability !== 'async' && durability !== 'sync') {
    throw new ConfigError(`invalid --provenance-durability "${durability}": expected off, async or sync`);
  }
  const provenanceStore = values['provenance-store'] ?? env.PROVENANCE_STORE;
  const authQuery = values['auth-query'] ?? env.PROVENANCE_AUTH_QUERY;
  const listenUnix = values['listen-unix'] ?? env.PROVENANCE_LISTEN_UNIX;
  const http = values.http ?? env.PROVENANCE_HTTP ?? '127.0.0.1:6433';
  const replayCache = values['replay-cache-size'] ?? env.PROVENANCE_REPLAY_CACHE_SIZE ?? String(DEFAULT_REPLAY_CACHE_MB);
  const replayCacheMb = Number(replayCache);
  if (replayCache.trim() === '' || !Number.isFinite(replayCacheMb) || replayCacheMb < 0) {
    throw new ConfigError(`invalid --replay-cache-size "${replayCache}": expected a number of MB, 0 or more`);
  }
  const record = (values['record-statements'] ?? env.PROVENANCE_RECORD_STATEMENTS ?? 'on').toLowerCase();
  if (record !== 'on' && record !== 'off') throw new ConfigError(`invalid --record-statements "${record}": expected on or off`);
  const recordLimit = values['record-statement-limit'] ?? env.PROVENANCE_RECORD_STATEMENT_LIMIT ?? String(DEFAULT_RECORD_STATEMENT_LIMIT);
  return {
    listenHost: listen.host,
    listenPort: listen.port,
    listenUnix: listenUnix === undefined || listenUnix === '' ? undefined : path.resolve(listenUnix),
    upstream: upstream === '' ? undefined : upstream,
    dataDir: path.resolve(values['data-dir'] ?? env.PROVENANCE_DATA_DIR ?? '.provenance'),
    tlsCert,
    tlsKey,
    maxMessageSize: positive('--max-message-size', values['max-message-size'] ?? env.PROVENANCE_MAX_MESSAGE_SIZE ?? String(128 * 1024 * 1024)),
    shutdownTimeoutMs: positive('--shutdown-timeout', values['shutdown-timeout'] ?? env.PROVENANCE_SHUTDOWN_TIMEOUT ?? '30') * 1000,
    transformsDir: path.resolve(values.transforms ?? env.PROVENANCE_TRANSFORMS ?? 'transforms'),
    demo: !values['no-demo'] && !['off', 'false', '0', 'no'].includes((env.PROVENANCE_DEMO ?? 'on').toLowerCase()),
    transformTimeoutMs: positive('--transform-timeout', values['transform-timeout'] ?? env.PROVENANCE_TRANSFORM_TIMEOUT ?? '1000'),
    transformMemoryMb: positive('--transform-memory', values['transform-memory'] ?? env.PROVENANCE_TRANSFORM_MEMORY ?? '64'),
    transformIsolates: Math.floor(positive('--transform-isolates', values['transform-isolates'] ?? env.PROVENANCE_TRANSFORM_ISOLATES ?? '2')),
    provenanceDurability: durability,
    provenanceStore: provenanceStore === '' ? undefined : provenanceStore,
    authQuery: authQuery === undefined || authQuery === '' ? undefined : authQuery.toLowerCase() === 'off' ? null : authQuery,
    http: http.toLowerCase() === 'off' ? null : hostPort(http, '--http'),
    replayCacheMb,
    recordStatements: record === 'on',
    recordStatementLimit: Math.floor(positive('--record-statement-limit', recordLimit)),
  };
}
