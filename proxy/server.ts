/** Puts the parts together: upstream, plugins, listener. Used by the CLI and by tests. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { ProxyConfig } from './config.js';
import { Listener } from './listener.js';
import { lockDataDir } from './datadir-lock.js';
import { EmbeddedUpstream } from './upstream/embedded.js';
import { RemoteUpstream } from './upstream/remote.js';
import type { Upstream } from './upstream/link.js';
import { PluginHost } from '../plugins/host.js';
import type { Plugin } from '../plugins/hooks.js';

export interface RunningProxy {
  readonly address: AddressInfo;
  readonly upstream: Upstream;
  readonly listener: Listener;
  /** Graceful stop: running statements finish (up to the timeout), sessions close, state is flushed. */
  stop(timeoutMs?: number): Promise<void>;
}

export interface StartOptions {
  readonly plugins?: readonly Plugin[];
  readonly log?: (msg: string) => void;
}

export async function startProxy(config: ProxyConfig, opts: StartOptions = {}): Promise<RunningProxy> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const unlock = lockDataDir(config.dataDir);
  let upstream: Upstream;
  try {
    upstream = config.upstream
      ? new RemoteUpstream(config.upstream)
      : await EmbeddedUpstream.open({ dataDir: path.join(config.dataDir, 'pglite'), log });
  } catch (err) {
    unlock();
    throw err;
  }
  const secure = config.tlsCert && config.tlsKey
    ? tls.createSecureContext({ cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey) })
    : null;
  const plugins = new PluginHost(opts.plugins ?? [], log);
  const listener = new Listener(upstream, plugins, {
    host: config.listenHost,
    port: config.listenPort,
    tls: secure,
    maxMessageSize: config.maxMessageSize,
    startupTimeoutMs: 60_000,
    log,
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
    stop(timeoutMs = config.shutdownTimeoutMs) {
      stopping ??= (async () => {
        await listener.shutdown(timeoutMs);
        await upstream.close();
        unlock();
      })();
      return stopping;
    },
  };
}
