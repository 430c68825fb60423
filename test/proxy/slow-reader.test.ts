/**
 * A large transformed result read by a client that stops reading: the proxy stops reading the
 * upstream too, and holds no more than a bound of the result meanwhile, whatever its size.
 *
 * What the proxy holds is counted in bytes, not sampled from its heap: the upstream connection goes
 * through a counting relay, so what the proxy took from the server is what the relay delivered
 * minus what still sits in kernel buffers between them; what it passed on is what the client read
 * plus what sits in kernel buffers between the proxy and the client (Linux /proc/net/tcp). The
 * transform keeps every value's length, so the two counts are comparable byte for byte.
 * PostgreSQL only: the embedded database hands over a statement's whole answer in one piece.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { sharedCluster, startTarget, uniqueName, type Target } from '../support/proxy-matrix.js';
import { RawClient } from '../support/raw-client.js';
import { eventually } from '../support/eventually.js';
import { tcpQueues } from '../support/flood.js';

const ROWS = 400_000;
/** Every value is 40 lowercase ASCII letters and digits: upper-casing keeps its length. */
const VALUE_SQL = "rpad(md5(g::text), 40, 'x')";
/** The client reads this much of the answer slowly (a pause after each socket read), then stops reading. */
const READ_BEFORE_STOP = 16 << 20;
const PAUSE_MS = 5;
/** Past what kernel buffers (a few MiB on Linux loopback) and the proxy held when the client first fell behind. */
const SAMPLE_FROM = 10 << 20;
/** ReadyForQuery ('Z', length 5, idle): the end of the answer. */
const READY_IDLE = Buffer.from([0x5a, 0, 0, 0, 5, 0x49]);
/**
 * What the proxy may hold of a result its client does not read: a socket read of the upstream
 * (64 KiB), the batches at work in the sandbox and their output, with room to spare; the answer is
 * about 24 MiB.
 */
const HELD_BOUND = 512 << 10;

interface RelayedConnection {
  /** Bytes the relay took from the server and handed to its socket toward the proxy. */
  delivered: number;
  readonly toProxy: net.Socket;
}

/** A TCP relay in front of PostgreSQL that counts what it delivers to the proxy and honours its backpressure. */
async function countingRelay(pgPort: number): Promise<{ port: number; connections: RelayedConnection[]; close(): void }> {
  const connections: RelayedConnection[] = [];
  const server = net.createServer((toProxy) => {
    const toServer = net.connect({ host: '127.0.0.1', port: pgPort });
    const c: RelayedConnection = { delivered: 0, toProxy };
    connections.push(c);
    toProxy.pipe(toServer);
    toServer.on('data', (d: Buffer) => {
      c.delivered += d.length;
      if (!toProxy.write(d)) toServer.pause();
    });
    toProxy.on('drain', () => toServer.resume());
    toServer.on('end', () => toProxy.end());
    const close = (): void => {
      toProxy.destroy();
      toServer.destroy();
    };
    toProxy.on('error', close);
    toServer.on('error', close);
    toProxy.on('close', close);
    toServer.on('close', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections,
    close: () => {
      for (const c of connections) c.toProxy.destroy();
      server.close();
    },
  };
}

/** Kernel bytes queued on the TCP connection between two local ports, both directions' ends. */
function queued(fromPort: number, toPort: number): number {
  let n = 0;
  for (const q of tcpQueues()) {
    if (q.localPort === fromPort && q.remotePort === toPort) n += q.tx; // the sender's Send-Q
    else if (q.localPort === toPort && q.remotePort === fromPort) n += q.rx; // the receiver's Recv-Q
  }
  return n;
}

describe('a client that stops reading a large transformed result', () => {
  let relay: Awaited<ReturnType<typeof countingRelay>>;
  let t: Target;
  const table = uniqueName('slow_read');

  beforeAll(async () => {
    const cluster = sharedCluster();
    relay = await countingRelay(cluster.port);
    const upstream = new URL(cluster.url());
    upstream.hostname = '127.0.0.1';
    upstream.port = String(relay.port);
    upstream.search = '?sslmode=disable';
    t = await startTarget('postgres', [], { upstream: upstream.href });
    const admin = new pg.Client({ connectionString: cluster.url() });
    await admin.connect();
    try {
      await admin.query(`CREATE TABLE ${table} (id int, v text)`);
      await admin.query(`INSERT INTO ${table} SELECT g, ${VALUE_SQL} FROM generate_series(1, ${ROWS}) g`);
      await admin.query(`GRANT SELECT ON ${table} TO trustuser`);
      await admin.query(`SELECT provenance.register_transform($1, $2, ARRAY['v'], '(v) => v === null ? null : v.toUpperCase()')`, [uniqueName('upper'), table]);
    } finally {
      await admin.end();
    }
    const c = await t.pg();
    await eventually(() => c.query<{ v: string }>(`SELECT v FROM ${table} WHERE id = 1`), (r) => r.rows[0]?.v === r.rows[0]?.v.toUpperCase());
    await c.end();
  }, 120_000);

  afterAll(async () => {
    await t?.proxy.stop(2_000);
    relay?.close();
  });

  it('is not read ahead of by the proxy beyond a bound, and gets the whole result once it reads again', async () => {
    const before = new Set(relay.connections);
    const c = await RawClient.connect(t.port, 'trustuser');
    onTestFinished(() => {
      c.sock.destroy();
    });
    const upstreamLeg = relay.connections.find((r) => !before.has(r));
    expect(upstreamLeg).toBeDefined();
    const leg = upstreamLeg!;
    const sock = c.sock;
    sock.removeAllListeners('data');
    const received: Buffer[] = [];
    let got = 0;
    let tail = Buffer.alloc(0);
    let stopped = false;
    let finishing = false;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    sock.on('data', (d: Buffer) => {
      received.push(d);
      got += d.length;
      tail = Buffer.concat([tail, d]).subarray(-6);
      if (tail.equals(READY_IDLE)) done();
      if (finishing) return;
      sock.pause();
      if (got < READ_BEFORE_STOP) setTimeout(() => sock.resume(), PAUSE_MS);
      else stopped = true;
    });
    const proxyUpstreamPort = (): number => leg.toProxy.remotePort!;
    /** Bytes the proxy took from the server and did not pass on to the client, now. */
    const held = (): { taken: number; passed: number } => ({
      taken: leg.delivered - leg.toProxy.writableLength - queued(relay.port, proxyUpstreamPort()),
      // What the client's socket read from the kernel and holds for its next 'data' counts as passed on.
      passed: got + sock.readableLength + queued(t.port, sock.localPort!),
    });
    // While the client reads slowly, once it fell behind for good (what the proxy read ahead when
    // it first fell behind has reached it).
    let mostHeld = 0;
    const sampler = setInterval(() => {
      if (got < SAMPLE_FROM || stopped) return;
      const h = held();
      mostHeld = Math.max(mostHeld, h.taken - h.passed);
    }, 10);
    onTestFinished(() => clearInterval(sampler));
    sock.write(serialize.query(`SELECT id, v FROM ${table} ORDER BY id`));

    // Wait until the client stopped reading, then until the proxy stopped taking the server's
    // bytes (nothing delivered for a second).
    const deadline = Date.now() + 60_000;
    while (!stopped && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(stopped).toBe(true);
    let last = -1;
    let still = 0;
    while (still < 5 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      if (leg.delivered === last) still++;
      else {
        still = 0;
        last = leg.delivered;
      }
    }
    expect(still).toBe(5);
    const atStop = held();
    process.stderr.write(
      `slow reader: at most ${mostHeld} bytes held while reading slowly; then the client stopped after ${got} bytes: ` +
        `the proxy took ${atStop.taken} from the server, passed on ${atStop.passed} (client and kernel), holds ${atStop.taken - atStop.passed}\n`,
    );
    expect(mostHeld).toBeLessThan(HELD_BOUND);
    expect(atStop.taken - atStop.passed).toBeLessThan(HELD_BOUND);

    finishing = true;
    sock.resume();
    await finished;
    // Every row came, once, in order, through the transform (upper case), and the result ended normally.
    const answer = Buffer.concat(received);
    let rows = 0;
    let wrong = 0;
    let complete = '';
    for (let at = 0; at < answer.length; ) {
      const code = answer[at]!;
      const len = answer.readInt32BE(at + 1);
      if (code === 0x44) {
        rows++;
        const idLen = answer.readInt32BE(at + 7);
        const id = Number(answer.toString('latin1', at + 11, at + 11 + idLen));
        const vAt = at + 11 + idLen;
        const v = answer.toString('latin1', vAt + 4, vAt + 4 + answer.readInt32BE(vAt));
        if (id !== rows || v.length !== 40 || v !== v.toUpperCase()) wrong++;
      } else if (code === 0x43) complete = answer.toString('latin1', at + 5, at + 1 + len);
      at += 1 + len;
    }
    expect({ rows, wrong, complete }).toEqual({ rows: ROWS, wrong: 0, complete: `SELECT ${ROWS}\0` });
  }, 120_000);
});
