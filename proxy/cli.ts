#!/usr/bin/env node
/** `provenance-proxy`: parse options, start, print where to connect, stop cleanly on signals. */
import { ConfigError, USAGE, parseConfig } from './config.js';
import { startProxy } from './compose.js';
import { DataDirInUse } from './datadir-lock.js';
import { exitWhenIdle } from '../sandbox/index.js';
import { missingNodeFlags } from './node-flags.js';
import { relaunchWith } from './relaunch.js';

async function main(): Promise<number> {
  let config;
  try {
    config = parseConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`provenance-proxy: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }
  if (config === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  let proxy;
  try {
    proxy = await startProxy(config);
  } catch (err) {
    if (err instanceof DataDirInUse || err instanceof Error) {
      process.stderr.write(`provenance-proxy: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  const { address, port } = proxy.address;
  const host = address.includes(':') ? `[${address}]` : address;
  const user = config.upstream ? '<user>' : 'postgres';
  const db = config.upstream ? '<database>' : 'postgres';
  process.stdout.write(
    `provenance-proxy listening on ${host}:${port}${proxy.listener.unixSocketPath ? ` and ${proxy.listener.unixSocketPath}` : ''}, fronting ${proxy.upstream.describe()}; ` +
      `connect with: psql "postgresql://${user}@${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}/${db}"` +
      `${proxy.http ? `; HTTP API on ${proxy.http.url}` : ''}\n`,
  );
  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`provenance-proxy: ${signal} received, finishing running statements (up to ${config.shutdownTimeoutMs / 1000}s)\n`);
      proxy.stop().then(
        () => resolve(0),
        (err: unknown) => {
          process.stderr.write(`provenance-proxy: shutdown failed: ${String(err)}\n`);
          resolve(1);
        },
      );
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
}

const missing = missingNodeFlags();
if (missing.length > 0) {
  relaunchWith(missing);
} else {
  void main().then(
    (code) => exitWhenIdle(code),
    (err: unknown) => {
      process.stderr.write(`provenance-proxy: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      exitWhenIdle(1);
    },
  );
}
