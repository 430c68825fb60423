/** Command-line options and their environment-variable twins. Flags win over the environment. */
import { parseArgs } from 'node:util';
import path from 'node:path';

export interface ProxyConfig {
  readonly listenHost: string;
  readonly listenPort: number;
  /** postgres:// URL of a real server; undefined for embedded PGlite. */
  readonly upstream: string | undefined;
  readonly dataDir: string;
  readonly tlsCert: string | undefined;
  readonly tlsKey: string | undefined;
  readonly maxMessageSize: number;
  readonly shutdownTimeoutMs: number;
}

export const USAGE = `Usage: provenance-proxy [options]

  --listen HOST:PORT        where clients connect            (PROVENANCE_LISTEN, default 127.0.0.1:6432)
  --upstream URL            postgres://HOST:PORT/DB?sslmode=… of a real PostgreSQL
                            (PROVENANCE_UPSTREAM; default: embedded PGlite in --data-dir)
  --data-dir DIR            state of this proxy; the embedded database lives here
                            (PROVENANCE_DATA_DIR, default ./.provenance)
  --tls-cert FILE           PEM certificate for TLS toward clients (PROVENANCE_TLS_CERT)
  --tls-key FILE            PEM private key for TLS toward clients (PROVENANCE_TLS_KEY)
  --max-message-size BYTES  largest client message accepted (PROVENANCE_MAX_MESSAGE_SIZE, default 134217728)
  --shutdown-timeout SECS   on SIGINT/SIGTERM, how long running statements may finish
                            (PROVENANCE_SHUTDOWN_TIMEOUT, default 30)
  --help                    show this text
`;

export class ConfigError extends Error {}

function hostPort(s: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(s);
  if (!m) throw new ConfigError(`invalid --listen "${s}": expected HOST:PORT`);
  const port = Number(m[3]);
  if (port < 0 || port > 65535) throw new ConfigError(`invalid port in --listen "${s}"`);
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
        upstream: { type: 'string' },
        'data-dir': { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'max-message-size': { type: 'string' },
        'shutdown-timeout': { type: 'string' },
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
  return {
    listenHost: listen.host,
    listenPort: listen.port,
    upstream: upstream === '' ? undefined : upstream,
    dataDir: path.resolve(values['data-dir'] ?? env.PROVENANCE_DATA_DIR ?? '.provenance'),
    tlsCert,
    tlsKey,
    maxMessageSize: positive('--max-message-size', values['max-message-size'] ?? env.PROVENANCE_MAX_MESSAGE_SIZE ?? String(128 * 1024 * 1024)),
    shutdownTimeoutMs: positive('--shutdown-timeout', values['shutdown-timeout'] ?? env.PROVENANCE_SHUTDOWN_TIMEOUT ?? '30') * 1000,
  };
}
