/**
 * A TCP relay in a dozen lines of Node: each accepted connection is piped to the upstream and
 * back, nothing parsed. The passthrough benchmark runs it as a reference for what Node's own
 * socket handling costs per message, so the proxy's figures can be read against the runtime's
 * floor as well as against PgBouncer.
 *
 * Usage (as a child process): node node-relay.js LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT
 */
import net from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { freePort, startService, type Service } from './processes.js';

const HOST = '127.0.0.1';

export interface RunningRelay {
  readonly host: string;
  readonly port: number;
  readonly service: Service;
}

/** Starts the relay in front of host:port as a child process, as the proxy runs. */
export async function startNodeRelay(upstreamHost: string, upstreamPort: number): Promise<RunningRelay> {
  const port = await freePort();
  const service = startService('node-relay', process.execPath, [fileURLToPath(import.meta.url), String(port), upstreamHost, String(upstreamPort)]);
  try {
    await service.waitForOutput(/node-relay listening on /, 10_000);
  } catch (err) {
    await service.stop(2_000);
    throw err;
  }
  return { host: HOST, port, service };
}

function main(args: readonly string[]): void {
  const [listenPort, upstreamHost, upstreamPort] = [Number(args[0]), args[1] ?? HOST, Number(args[2])];
  if (!Number.isInteger(listenPort) || !Number.isInteger(upstreamPort)) {
    process.stderr.write('usage: node-relay LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT\n');
    process.exit(2);
  }
  const server = net.createServer({ noDelay: true }, (client) => {
    const upstream = net.connect({ host: upstreamHost, port: upstreamPort, noDelay: true });
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  server.listen(listenPort, HOST, () => process.stdout.write(`node-relay listening on ${HOST}:${listenPort}\n`));
  const stop = (): void => {
    server.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main(process.argv.slice(2));
