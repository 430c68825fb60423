/**
 * Backpressure: while the upstream does not read, a client can write about what it could write
 * straight to PostgreSQL before its writes block; the proxy itself holds next to nothing of it.
 * Figures are measured in the same run against the real server, and printed.
 */
import { describe, expect, it } from 'vitest';
import { serialize } from 'pg-protocol';
import { sharedCluster, startTarget, type Target } from '../support/proxy-matrix.js';
import { RawClient } from '../support/raw-client.js';
import type { Plugin } from '../../plugins/hooks.js';
import { floodUntilBlocked, ownSocketInodes, tcpQueues } from '../support/flood.js';

/** A Query of about 8 KB, as a driver pipelining a large batch sends them. */
const QUERY = serialize.query(`select '${'x'.repeat(8_000)}'`);
const KiB = (n: number): string => `${Math.round(n / 1024)} KiB`;

/** What a client can write straight to the server while its backend sleeps. */
async function directFigure(): Promise<number> {
  const c = await RawClient.connect(sharedCluster().port, 'trustuser');
  try {
    c.write(serialize.query('select pg_sleep(60)'));
    return await floodUntilBlocked(c, QUERY);
  } finally {
    c.end();
  }
}

describe('backpressure toward the upstream', () => {
  it('embedded: a session waiting for the backend queues no more than a socket pair holds', async () => {
    const direct = await directFigure();
    const t = await startTarget('embedded');
    try {
      // Another session's open transaction holds the single backend: the flooding one waits its turn.
      const holder = await RawClient.connect(t.port);
      holder.write(serialize.query('begin'));
      await holder.untilReady();
      const c = await RawClient.connect(t.port);
      const through = await floodUntilBlocked(c, QUERY, 1_500, 64 << 20);
      process.stderr.write(`backpressure [embedded]: direct ${KiB(direct)}, through the proxy ${KiB(through)}\n`);
      expect(through).toBeLessThan(direct * 1.5 + (1 << 20));
      holder.write(serialize.query('commit'));
      await holder.untilReady();
      holder.end();
      c.end();
    } finally {
      await t.proxy.stop(2_000);
    }
  }, 60_000);

  // A plugin with a statement hook and no words puts every session on the statement path.
  const everyStatement: Plugin = { name: 'every-statement', statement: () => ({ action: 'pass' }) };
  for (const [path, plugins] of [['fast path', []], ['statement path', [everyStatement]]] as const) {
  it(`postgres, ${path}: what the client wrote sits in kernel socket buffers, not in the proxy`, async () => {
    const direct = await directFigure();
    const pgPort = sharedCluster().port;
    const t: Target = await startTarget('postgres', plugins);
    try {
      const c = await RawClient.connect(t.port, 'trustuser');
      c.write(serialize.query('select pg_sleep(60)'));
      const through = await floodUntilBlocked(c, QUERY);
      const mine = ownSocketInodes();
      const queues = tcpQueues();
      const clientPort = c.sock.localPort!;
      const upstreamPorts = new Set(queues.filter((q) => mine.has(q.inode) && q.remotePort === pgPort && q.tx > 0).map((q) => q.localPort));
      let kernel = 0;
      for (const q of queues) {
        if (q.localPort === clientPort && q.remotePort === t.port) kernel += q.tx; // the client's Send-Q
        else if (q.localPort === t.port && q.remotePort === clientPort) kernel += q.rx; // the proxy's Recv-Q
        else if (upstreamPorts.has(q.localPort) && q.remotePort === pgPort) kernel += q.tx; // the proxy's Send-Q upstream
        else if (q.localPort === pgPort && upstreamPorts.has(q.remotePort)) kernel += q.rx; // the server's Recv-Q
      }
      const inProxy = through - kernel;
      process.stderr.write(
        `backpressure [postgres, ${path}]: direct ${KiB(direct)}, through the proxy ${KiB(through)}, ` +
          `of which in kernel buffers ${KiB(kernel)}, in the proxy ${KiB(inProxy)}\n`,
      );
      expect(upstreamPorts.size).toBe(1);
      // The server read the first statement and perhaps one buffer more; the proxy holds at most a read's worth.
      expect(Math.abs(inProxy)).toBeLessThan(256 << 10);
      c.end();
    } finally {
      await t.proxy.stop(2_000);
    }
  }, 60_000);
  }
});
